/*
 * The hub's SQLite store (hubstore.c). Single-threaded: the hub's loop is
 * its only user. Blobs carry a store-order id (the rowid), the order in
 * which catch-up replays them.
 */
#ifndef KITH_SYNC_HUBSTORE_H
#define KITH_SYNC_HUBSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "kith/sync.h"

typedef struct hubstore hubstore;

enum {
    HS_WS_FIND,
    HS_WS_ADD,
    HS_OP_ADD,
    HS_OPS,
    HS_INV_ADD,
    HS_INV_GET,
    HS_INV_USE,
    HS_BLOB_MAX,
    HS_BLOB_ADD,
    HS_VV,
    HS_AFTER,
    HS_SNAP_GET,
    HS_SNAP_PUT,
    HS_ENV_PUT,
    HS_ENV_GET,
    HS_BEGIN,
    HS_COMMIT,
    HS_ROLLBACK,
    HS_NSTMT
};

struct hs_invite {
    int role;
    uint64_t expires_ms;
    int used;
    uint8_t *wrapped; /* kith_free */
    size_t wrapped_len;
};

int hs_open(const char *dir, hubstore **out, char *err, size_t errlen);
void hs_close(hubstore *s);
const char *hs_errmsg(hubstore *s);
int hs_begin(hubstore *s);
int hs_commit(hubstore *s);
void hs_rollback(hubstore *s);

int hs_ws_find(hubstore *s, const uint8_t ws_id[16], int64_t *wid);
int hs_ws_create(hubstore *s, const uint8_t ws_id[16], const uint8_t *genesis, size_t len,
                 int64_t now_ms, int64_t *wid);
int hs_op_add(hubstore *s, int64_t wid, int64_t idx, const uint8_t *op, size_t len);
struct sbuf;
/* Replays the stored chain; KITH_ECORRUPT if it does not verify. Appends
 * each op to @wire as a length-prefixed item (the WELCOME list). */
int hs_ops_load(hubstore *s, int64_t wid, const uint8_t ws_id[16], kith_members **out,
                struct sbuf *wire);
int hs_invite_add(hubstore *s, int64_t wid, const uint8_t cap_pk[32], int role,
                  uint64_t expires_ms, const uint8_t *wrapped, size_t wlen);
int hs_invite_get(hubstore *s, int64_t wid, const uint8_t cap_pk[32], struct hs_invite *inv);
/* Marks it used (and drops the wrapped key); KITH_EINVAL if it already was. */
int hs_invite_use(hubstore *s, int64_t wid, const uint8_t cap_pk[32]);

uint64_t hs_blob_max(hubstore *s, int64_t wid, const uint8_t author[32]);
int hs_blob_add(hubstore *s, int64_t wid, const uint8_t author[32], uint64_t seq,
                const uint8_t *data, size_t len);
int hs_vv(hubstore *s, int64_t wid, kith_vv **out);
typedef int (*hs_blob_fn)(void *ud, int64_t id, const uint8_t *author, uint64_t seq,
                          const uint8_t *data, size_t len);
/* Up to @limit blobs with store id > @after, in store order. */
int hs_blobs_after(hubstore *s, int64_t wid, int64_t after, int limit, hs_blob_fn fn, void *ud);

typedef int (*hs_snapshot_fn)(void *ud, const uint8_t *vv, size_t vv_len, uint64_t total,
                              const uint8_t *data, size_t len);
int hs_snapshot_put(hubstore *s, int64_t wid, const uint8_t *vv, size_t vv_len, uint64_t total,
                    const uint8_t *data, size_t len);
/* Calls @fn with the stored snapshot; KITH_ENOTFOUND if none. */
int hs_snapshot_get(hubstore *s, int64_t wid, hs_snapshot_fn fn, void *ud);
/* Key envelopes (PROTOCOL.md "Key rotation"): opaque to the hub but for
 * their clear header; get concatenates those for @recipient, newest epoch first. */
int hs_env_put(hubstore *s, int64_t wid, uint32_t epoch, const uint8_t recipient[32],
               const uint8_t sender[32], const uint8_t *data, size_t len);
int hs_env_get(hubstore *s, int64_t wid, const uint8_t recipient[32], size_t max,
               uint8_t **out, size_t *len);

#endif
