/*
 * Fuzz target: the sync frame decoder on arbitrary bytes, and every decoder
 * a peer's frame feeds: blob headers and signatures, membership ops (parsed
 * and applied to a chain), version vectors, the WELCOME op list, and the
 * invite-link parser (the input as text; a link that parses must re-encode
 * to the same text). Anything refused must leave no partial result, and
 * the sizes a decoder reports must match its input. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"
#include "sync/sync_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                    \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                \
            abort();                                                               \
        }                                                                          \
    } while (0)

static void check_blob(const uint8_t *b, size_t n)
{
    kith_blob_info info;
    int rc = kith_blob_parse(b, n, &info);
    MUST(rc == KITH_OK || rc == KITH_ECORRUPT || rc == KITH_EVERSION);
    if (rc)
        return;
    MUST(info.plain_len + KITH_BLOB_MIN_OVERHEAD <= n &&
         info.plain_len + KITH_BLOB_OVERHEAD >= n && info.seq > 0);
    MUST(info.version == 2 || info.plain_len + KITH_BLOB_OVERHEAD == n);
    /* version 2 does not name its workspace: try the first bytes' */
    uint8_t ws[16] = {0};
    memcpy(ws, info.version == 1 ? info.ws_id : b, 16);
    rc = kith_blob_verify(b, n, ws, &info);
    MUST(rc == KITH_OK || rc == KITH_EAUTH);
    uint8_t key[32] = {0}, *pt = (uint8_t *)&pt;
    size_t pl = 7;
    rc = kith_blob_open(b, n, ws, key, &info, &pt, &pl);
    MUST(rc != KITH_OK || pl == info.plain_len);
    if (rc)
        MUST(pt == NULL && pl == 0);
    kith_free(pt);
}

static void check_op(const uint8_t *op, size_t n)
{
    kith_member_op o;
    int rc = kith_member_op_parse(op, n, &o);
    MUST(rc == KITH_OK || rc == KITH_ECORRUPT || rc == KITH_EVERSION);
    kith_members *m = NULL;
    MUST(kith_members_new(rc == KITH_OK ? o.ws_id : (const uint8_t *)"0123456789abcdef", &m) ==
         KITH_OK);
    rc = kith_members_apply(m, op, n);
    MUST(rc <= 0);
    MUST(kith_members_length(m) == (rc == KITH_OK ? 1u : 0u));
    if (rc == KITH_OK)
        MUST(kith_members_role(m, o.signer) == KITH_ROLE_OWNER);
    kith_members_free(m);
}

static void check_vv(const uint8_t *e, uint32_t n)
{
    kith_vv *vv = NULL;
    MUST(sync_vv_from_wire(e, n, &vv) == KITH_OK);
    MUST(kith_vv_count(vv) == n);
    for (uint32_t i = 0; i < n; i++)
        MUST(kith_vv_get(vv, e + (size_t)i * 40) == get_u64(e + (size_t)i * 40 + 32));
    kith_vv_free(vv);
}

static void check_frame(const uint8_t *data, size_t size)
{
    struct sync_msg m;
    const char *why = NULL;
    int rc = sync_frame_decode(data, size, &m, &why);
    MUST(rc == KITH_OK || rc == KITH_ECORRUPT || rc == KITH_EVERSION);
    if (rc) {
        MUST(why != NULL);
        return;
    }
    MUST(size >= SYNC_HDR && get_u32(data + 4) == size - SYNC_HDR);
    size_t pos = 0, len;
    const uint8_t *it;
    uint32_t k = 0;
    switch (m.type) {
    case SYNC_AUTH:
        if (m.u.auth.mode == SYNC_MODE_REGISTER)
            check_op(m.u.auth.extra, m.u.auth.extra_len);
        break;
    case SYNC_WELCOME:
        while (sync_list_next(&m.u.welcome.ops, &pos, &it, &len)) {
            check_op(it, len);
            k++;
        }
        MUST(k == m.u.welcome.ops.n);
        break;
    case SYNC_HELLO:
        check_vv(m.u.hello.vv, m.u.hello.n);
        break;
    case SYNC_HELLO_REPLY:
        check_vv(m.u.hello_reply.vv, m.u.hello_reply.n);
        break;
    case SYNC_BLOB:
    case SYNC_PUSH:
        check_blob(m.u.blob.blob, m.u.blob.len);
        break;
    case SYNC_MEMBER_OP:
        check_op(m.u.member_op.op, m.u.member_op.op_len);
        break;
    case SYNC_MEMBER_UPDATE:
        check_op(m.u.member_update.op, m.u.member_update.op_len);
        break;
    case SYNC_SNAPSHOT_PUT:
    case SYNC_SNAPSHOT:
        check_vv(m.u.snapshot.vv, m.u.snapshot.n);
        check_blob(m.u.snapshot.blob, m.u.snapshot.len);
        break;
    default:
        break;
    }
}

static void check_link(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    MUST(s != NULL);
    memcpy(s, data, size);
    s[size] = 0;
    kith_invite inv;
    int rc = kith_invite_parse(s, &inv);
    MUST(rc == KITH_OK || rc == KITH_ECORRUPT || rc == KITH_EVERSION);
    if (rc == KITH_OK) {
        /* one spelling per link: re-encoding gives the input back */
        char *again = NULL;
        MUST(kith_invite_encode(&inv, &again) == KITH_OK);
        MUST(strcmp(again, s) == 0);
        kith_free(again);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_frame(data, size);
    check_link(data, size);
    /* also the payload alone as each inner decoder's input */
    if (size > 0 && data[0] == 1) {
        check_blob(data, size);
        check_op(data, size);
    }
    return 0;
}
