/*
 * Internals of the replica module (include/kith/replica.h): the sync state
 * database (.kith/sync.db, store.c), connections to hubs shared by one-shot
 * exchanges and live mode (conn.c), membership and keys (members.c), and
 * bundles (bundle.c). docs/PROTOCOL.md, "Replicas", specifies the bytes.
 */
#ifndef KITH_REPLICA_INT_H
#define KITH_REPLICA_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "kith/replica.h"
#include "kith/sync.h"

#define RP_KEYS_MAX 1024 /* epochs a replica keeps (the wrap format's limit) */

/* One connection to a hub, for one exchange or kept live. */
struct rconn {
    kith_replica *r;
    struct rconn *next;
    char url[256];
    uint8_t fp[32];
    int has_fp;
    kith_sync_client *c;
    enum kith_sync_mode mode;
    uint8_t *genesis_op; /* REGISTER */
    size_t genesis_op_len;
    const uint8_t *cap_seed; /* JOIN (borrowed) */
    int live;
    /* progress of the exchange */
    int ready, role, closed, caught_up, got_hub_vv, snap_pending;
    int pushes_out;
    int member_wait, member_done, member_status;
    uint8_t member_hash[32];
    int err;
    char errmsg[600];
    kith_vv *hub_known; /* what the hub holds, as far as we know */
    kith_replica_report rep;
    uint8_t *wrapped; /* JOIN: the invite's wrapped keys; MEMBER: key envelopes */
    size_t wrapped_len;
    /* live */
    void *timer; /* uv_timer_t * */
    int backoff_ms;
    int push_again;
};

struct kith_replica {
    kith_ws *ws;
    sqlite3 *db;
    uint8_t pk[32];
    uint8_t *sk; /* sodium_malloc'd, 64 bytes */
    uint8_t ws_id[16];
    kith_vv *held; /* the workspace's vector, kept current while syncing */
    kith_members *members; /* last chain verified on a connection; NULL before */
    char err[512];
    /* live mode */
    kith_sync_loop *loop;
    void *uv_loop;
    struct rconn *conns;
    int attached;
    struct rp_lan *lan; /* LAN sessions (lanpeer.c); NULL unless the daemon listens */
};

__attribute__((format(printf, 3, 4))) int rp_fail(kith_replica *r, int rc, const char *fmt, ...);
int64_t rp_now_ms(void);

/* ---- store.c: .kith/sync.db ---------------------------------------------------------- */
int rp_store_open(kith_replica *r);
int rp_exec(kith_replica *r, const char *sql);
int rp_meta_get(kith_replica *r, const char *k, char *out, size_t cap); /* ENOTFOUND */
int rp_meta_set(kith_replica *r, const char *k, const char *v);
/* Keys of every epoch held. */
int rp_key_get(kith_replica *r, uint32_t epoch, uint8_t key[32]);
int rp_key_put(kith_replica *r, uint32_t epoch, const uint8_t key[32]);
int rp_key_newest(kith_replica *r, uint32_t *epoch, uint8_t key[32]);
int rp_keys_all(kith_replica *r, kith_ws_key **keys, size_t *n); /* wipe + kith_free */
/* Sealed blobs received (kept to relay to hubs, peers and bundles). */
int rp_blob_put(kith_replica *r, const kith_blob_info *info, const uint8_t *blob, size_t len,
                int applied);
int rp_blob_get(kith_replica *r, const uint8_t author[32], uint64_t seq, uint8_t **blob,
                size_t *len);
int rp_blob_mark(kith_replica *r, const uint8_t author[32], uint64_t seq);
/* Remotes. */
int rp_remote_insert(kith_replica *r, const char *url, const char *fp);
int rp_remote_delete(kith_replica *r, const char *url);
int rp_remote_result(kith_replica *r, const char *url, const char *error, const kith_vv *hub);
int rp_remote_hub_vv(kith_replica *r, const char *url, kith_vv **out);
/* Members as last seen on a hub's chain. */
int rp_members_save(kith_replica *r, const kith_members *m);
/* rp_members_save, then the cut-offs of removed devices (conn.c). */
int rp_members_save_all(kith_replica *r, const kith_members *m);
/* .kith/sync-state.json */
int rp_state_write(kith_replica *r, int online);
/* The workspace's vector as a kith_vv. */
int rp_ws_vv(kith_replica *r, kith_vv **out);

/* ---- conn.c: exchanges with a hub ------------------------------------------------------ */
int rp_conn_new(kith_replica *r, const char *url, const char *fp_text, struct rconn **out);
void rp_conn_free(struct rconn *k);
int rp_conn_start(struct rconn *k);
/* Runs the built-in loop until @done(k) or the timeout; KITH_ENET on timeout. */
int rp_conn_run(struct rconn *k, int (*done)(struct rconn *k), int timeout_ms);
int rp_conn_exchange_done(struct rconn *k);
int rp_conn_ready_or_closed(struct rconn *k);
int rp_conn_member_done(struct rconn *k);
int rp_conn_exchange(struct rconn *k, int timeout_ms, int force_snapshot);
void rp_live_closed(struct rconn *k);
int rp_conn_member_op(struct rconn *k, uint8_t *op, size_t len, const uint8_t *wrapped,
                      size_t wl, int timeout_ms);
/* Opens, checks and applies (or keeps) one received change blob. */
int rp_take_blob(kith_replica *r, const uint8_t *blob, size_t len, kith_replica_report *rep);
/* Applies kept blobs whose parents have arrived since. */
int rp_drain(kith_replica *r, kith_replica_report *rep);
/* Pushes every change the hub lacks (k->hub_known), in causal order. */
int rp_push_missing(struct rconn *k);
/* Key envelopes (PROTOCOL.md "Key rotation"). */
int rp_keys_take_envelopes(kith_replica *r, const uint8_t *p, size_t len);
int rp_keys_send_envelopes(struct rconn *k, int wait);
int rp_envelope_make(kith_replica *r, uint32_t epoch, const uint8_t key[32],
                     const uint8_t recipient[32], uint8_t out[229]);

#endif
