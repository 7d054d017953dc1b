/*
 * The membership chain (PROTOCOL.md "Membership"): signed operations, each
 * naming the BLAKE2b hash of the one before, so the whole list is one
 * tamper-evident history that the hub and every member replay and verify
 * the same way. The hub orders concurrent operations (an op that does not
 * link to the current head is refused as stale and re-signed by its author),
 * which keeps the chain linear and the resulting state a pure function of it.
 *
 * Invites: an INVITE op publishes the public half of a capability key whose
 * seed only the inviter and the invitee hold (it travels in the link). The
 * JOIN op must be signed by that capability key as well as by the joining
 * device, so the hub, which sees only the public half, cannot invent a
 * member, and one capability admits one device.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

#define OP_VERSION 1
#define OP_HDR     90 /* version, type, ws, prev, time, signer */
#define OP_SIG     64
#define OP_CTX     "kith-member-v1"
#define JOIN_CTX   "kith-join-v1"

struct member {
    uint8_t pk[32];
    int role;
};

/* A device removed by a REMOVE_AT op: its blobs up to last_seq stay valid. */
struct cutoff {
    uint8_t pk[32];
    uint64_t last_seq;
    int role; /* its role when removed */
};

struct invite {
    uint8_t cap_pk[32];
    int role;
    uint64_t expires_ms;
    int used;
};

struct kith_members {
    uint8_t ws_id[16];
    uint8_t head[32], genesis[32];
    size_t length;
    uint32_t epoch;
    struct member *m;
    size_t n, cap;
    struct invite *inv;
    size_t n_inv, cap_inv;
    struct cutoff *cut;
    size_t n_cut, cap_cut;
    char err[160];
};

static size_t body_len(uint8_t type)
{
    switch (type) {
    case KITH_MOP_GENESIS:
        return 0;
    case KITH_MOP_ADD:
        return 33;
    case KITH_MOP_REMOVE:
        return 32;
    case KITH_MOP_INVITE:
        return 41;
    case KITH_MOP_JOIN:
        return 96;
    case KITH_MOP_REMOVE_AT:
        return 40;
    }
    return SIZE_MAX;
}

int kith_member_op_parse(const uint8_t *op, size_t len, kith_member_op *out)
{
    memset(out, 0, sizeof *out);
    if (!op || len < OP_HDR + OP_SIG)
        return KITH_ECORRUPT;
    if (op[0] != OP_VERSION)
        return KITH_EVERSION;
    size_t bl = body_len(op[1]);
    if (bl == SIZE_MAX || len != OP_HDR + bl + OP_SIG)
        return KITH_ECORRUPT;
    out->type = op[1];
    memcpy(out->ws_id, op + 2, 16);
    memcpy(out->prev, op + 18, 32);
    out->time_ms = get_u64(op + 50);
    memcpy(out->signer, op + 58, 32);
    const uint8_t *b = op + OP_HDR;
    switch (out->type) {
    case KITH_MOP_ADD:
    case KITH_MOP_INVITE:
        out->role = b[32];
        if (out->role < KITH_ROLE_READER || out->role > KITH_ROLE_OWNER)
            return KITH_ECORRUPT;
        if (out->type == KITH_MOP_INVITE)
            out->expires_ms = get_u64(b + 33);
        /* fall through */
    case KITH_MOP_REMOVE_AT:
        if (out->type == KITH_MOP_REMOVE_AT)
            out->last_seq = get_u64(b + 32);
        /* fall through */
    case KITH_MOP_REMOVE:
    case KITH_MOP_JOIN:
        memcpy(out->subject, b, 32);
        break;
    }
    return KITH_OK;
}

/* ---- state ---------------------------------------------------------------------- */

int kith_members_new(const uint8_t ws_id[KITH_WS_ID_BYTES], kith_members **out)
{
    *out = NULL;
    if (sync_sodium_init())
        return KITH_EIO;
    kith_members *m = kith_calloc(1, sizeof *m);
    if (!m)
        return KITH_ENOMEM;
    memcpy(m->ws_id, ws_id, 16);
    *out = m;
    return KITH_OK;
}

void kith_members_free(kith_members *m)
{
    if (!m)
        return;
    kith_free(m->m);
    kith_free(m->inv);
    kith_free(m->cut);
    kith_free(m);
}

const char *kith_members_errmsg(const kith_members *m)
{
    return m->err;
}

static struct member *find_member(const kith_members *m, const uint8_t *pk)
{
    for (size_t i = 0; i < m->n; i++)
        if (!memcmp(m->m[i].pk, pk, 32))
            return &m->m[i];
    return NULL;
}

static struct cutoff *find_cutoff(const kith_members *m, const uint8_t *pk)
{
    for (size_t i = 0; i < m->n_cut; i++)
        if (!memcmp(m->cut[i].pk, pk, 32))
            return &m->cut[i];
    return NULL;
}

static struct invite *find_invite(const kith_members *m, const uint8_t *cap_pk)
{
    for (size_t i = 0; i < m->n_inv; i++)
        if (!memcmp(m->inv[i].cap_pk, cap_pk, 32))
            return &m->inv[i];
    return NULL;
}

int kith_members_role(const kith_members *m, const uint8_t pk[KITH_PK_BYTES])
{
    const struct member *e = find_member(m, pk);
    return e ? e->role : KITH_ROLE_NONE;
}

uint32_t kith_members_epoch(const kith_members *m)
{
    return m->epoch;
}

size_t kith_members_length(const kith_members *m)
{
    return m->length;
}

const uint8_t *kith_members_head(const kith_members *m)
{
    return m->head;
}

const uint8_t *kith_members_genesis(const kith_members *m)
{
    return m->genesis;
}

size_t kith_members_count(const kith_members *m)
{
    return m->n;
}

const uint8_t *kith_members_get(const kith_members *m, size_t i, int *role)
{
    if (i >= m->n) {
        *role = KITH_ROLE_NONE;
        return NULL;
    }
    *role = m->m[i].role;
    return m->m[i].pk;
}

int kith_members_invite(const kith_members *m, const uint8_t cap_pk[KITH_PK_BYTES], int *role,
                        uint64_t *expires_ms)
{
    const struct invite *v = find_invite(m, cap_pk);
    if (!v || v->used)
        return KITH_ENOTFOUND;
    *role = v->role;
    *expires_ms = v->expires_ms;
    return KITH_OK;
}

int kith_members_cutoff(const kith_members *m, const uint8_t pk[KITH_PK_BYTES], uint64_t *last_seq,
                        int *role)
{
    const struct cutoff *c = find_cutoff(m, pk);
    if (!c || find_member(m, pk))
        return KITH_ENOTFOUND;
    *last_seq = c->last_seq;
    *role = c->role;
    return KITH_OK;
}

static int owners(const kith_members *m)
{
    int n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->m[i].role == KITH_ROLE_OWNER;
    return n;
}

__attribute__((format(printf, 3, 4))) static int fail(kith_members *m, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* The authority rules: may @signer (role @sr) give @target (currently role
 * @cur, NONE if new) the role @nr (NONE for a removal)? */
static int may_set_role(int sr, int cur, int nr)
{
    if (sr < KITH_ROLE_ADMIN)
        return 0;
    if ((cur == KITH_ROLE_OWNER || nr == KITH_ROLE_OWNER) && sr != KITH_ROLE_OWNER)
        return 0;
    return 1;
}

/* Checks @op against the state; on success fills what apply must change. */
static int check_op(kith_members *m, const uint8_t *op, size_t len, const kith_member_op *o)
{
    if (memcmp(o->ws_id, m->ws_id, 16) != 0)
        return fail(m, KITH_EINVAL, "op %zu is for another workspace", m->length);
    if (memcmp(o->prev, m->head, 32) != 0)
        return fail(m, KITH_EINVAL, "op %zu does not link to the chain head", m->length);
    if ((m->length == 0) != (o->type == KITH_MOP_GENESIS))
        return fail(m, KITH_EINVAL, "op %zu: a chain has exactly one genesis, first", m->length);
    if (sync_verify(OP_CTX, op, len - OP_SIG, o->signer, op + len - OP_SIG) != KITH_OK)
        return fail(m, KITH_EAUTH, "op %zu: bad signature", m->length);
    int sr = kith_members_role(m, o->signer);
    struct member *t;
    struct invite *v;
    switch (o->type) {
    case KITH_MOP_GENESIS:
        return KITH_OK;
    case KITH_MOP_ADD:
        t = find_member(m, o->subject);
        if (!may_set_role(sr, t ? t->role : KITH_ROLE_NONE, o->role))
            return fail(m, KITH_EPERM, "op %zu: signer may not grant role %s", m->length,
                        kith_role_name(o->role));
        if (t && t->role == KITH_ROLE_OWNER && o->role != KITH_ROLE_OWNER && owners(m) == 1)
            return fail(m, KITH_EINVAL, "op %zu: would leave no owner", m->length);
        return KITH_OK;
    case KITH_MOP_REMOVE:
    case KITH_MOP_REMOVE_AT:
        t = find_member(m, o->subject);
        if (!t)
            return fail(m, KITH_EINVAL, "op %zu: removes a non-member", m->length);
        if (!may_set_role(sr, t->role, KITH_ROLE_NONE))
            return fail(m, KITH_EPERM, "op %zu: signer may not remove a %s", m->length,
                        kith_role_name(t->role));
        if (t->role == KITH_ROLE_OWNER && owners(m) == 1)
            return fail(m, KITH_EINVAL, "op %zu: would leave no owner", m->length);
        return KITH_OK;
    case KITH_MOP_INVITE:
        if (!may_set_role(sr, KITH_ROLE_NONE, o->role))
            return fail(m, KITH_EPERM, "op %zu: signer may not invite a %s", m->length,
                        kith_role_name(o->role));
        if (find_invite(m, o->subject))
            return fail(m, KITH_EINVAL, "op %zu: capability already invited", m->length);
        return KITH_OK;
    case KITH_MOP_JOIN:
        v = find_invite(m, o->subject);
        if (!v)
            return fail(m, KITH_EINVAL, "op %zu: joins with an unknown capability", m->length);
        if (v->used)
            return fail(m, KITH_EINVAL, "op %zu: capability already used", m->length);
        if (o->time_ms > v->expires_ms)
            return fail(m, KITH_EINVAL, "op %zu: invite expired", m->length);
        if (sr != KITH_ROLE_NONE)
            return fail(m, KITH_EINVAL, "op %zu: joining device is already a member", m->length);
        if (sync_verify(JOIN_CTX, op, OP_HDR + 32, o->subject, op + OP_HDR + 32) != KITH_OK)
            return fail(m, KITH_EAUTH, "op %zu: bad capability signature", m->length);
        return KITH_OK;
    }
    return fail(m, KITH_ECORRUPT, "op %zu: unknown type", m->length);
}

static int set_role(kith_members *m, const uint8_t *pk, int role)
{
    struct member *t = find_member(m, pk);
    if (t) {
        t->role = role;
        return KITH_OK;
    }
    if (kith_grow((void **)&m->m, &m->cap, m->n + 1, sizeof *m->m) != 0)
        return KITH_ENOMEM;
    memcpy(m->m[m->n].pk, pk, 32);
    m->m[m->n].role = role;
    m->n++;
    return KITH_OK;
}

int kith_members_apply(kith_members *m, const uint8_t *op, size_t len)
{
    kith_member_op o;
    int rc = kith_member_op_parse(op, len, &o);
    if (rc)
        return fail(m, rc, "op %zu is malformed", m->length);
    rc = check_op(m, op, len, &o);
    if (rc)
        return rc;
    /* Reserve first so that nothing below can fail half-way. */
    if (kith_grow((void **)&m->m, &m->cap, m->n + 1, sizeof *m->m) != 0 ||
        kith_grow((void **)&m->inv, &m->cap_inv, m->n_inv + 1, sizeof *m->inv) != 0 ||
        kith_grow((void **)&m->cut, &m->cap_cut, m->n_cut + 1, sizeof *m->cut) != 0)
        return fail(m, KITH_ENOMEM, "out of memory");
    struct member *t;
    struct invite *v;
    struct cutoff *c;
    switch (o.type) {
    case KITH_MOP_GENESIS:
        rc = set_role(m, o.signer, KITH_ROLE_OWNER);
        break;
    case KITH_MOP_ADD:
        rc = set_role(m, o.subject, o.role);
        break;
    case KITH_MOP_REMOVE:
    case KITH_MOP_REMOVE_AT:
        t = find_member(m, o.subject);
        /* A REMOVE_AT records the cut-off (replacing one from an earlier
         * removal); a plain REMOVE (older chains) leaves none. */
        c = find_cutoff(m, o.subject);
        if (o.type == KITH_MOP_REMOVE_AT) {
            if (!c) {
                c = &m->cut[m->n_cut++];
                memcpy(c->pk, o.subject, 32);
            }
            c->last_seq = o.last_seq;
            c->role = t->role;
        } else if (c) {
            *c = m->cut[--m->n_cut];
        }
        *t = m->m[--m->n];
        m->epoch++;
        break;
    case KITH_MOP_INVITE:
        v = &m->inv[m->n_inv++];
        memcpy(v->cap_pk, o.subject, 32);
        v->role = o.role;
        v->expires_ms = o.expires_ms;
        v->used = 0;
        break;
    case KITH_MOP_JOIN:
        v = find_invite(m, o.subject);
        v->used = 1;
        rc = set_role(m, o.signer, v->role);
        break;
    }
    if (rc)
        return fail(m, rc, "out of memory");
    sync_hash(op, len, m->head);
    if (m->length == 0)
        memcpy(m->genesis, m->head, 32);
    m->length++;
    m->err[0] = 0;
    return KITH_OK;
}

/* ---- builders ----------------------------------------------------------------------- */

static int build(uint8_t type, const uint8_t ws_id[16], const uint8_t prev[32], uint64_t time_ms,
                 const uint8_t sk[64], const uint8_t *body, size_t blen, uint8_t **out,
                 size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int rc = sync_sodium_init();
    if (rc)
        return rc;
    size_t len = OP_HDR + blen + OP_SIG;
    uint8_t *op = kith_malloc(len);
    if (!op)
        return KITH_ENOMEM;
    op[0] = OP_VERSION;
    op[1] = type;
    memcpy(op + 2, ws_id, 16);
    memcpy(op + 18, prev, 32);
    put_u64(op + 50, time_ms);
    memcpy(op + 58, sk + 32, 32);
    if (blen)
        memcpy(op + OP_HDR, body, blen);
    rc = sync_sign(OP_CTX, op, len - OP_SIG, sk, op + len - OP_SIG);
    if (rc) {
        kith_free(op);
        return rc;
    }
    *out = op;
    *out_len = len;
    return KITH_OK;
}

int kith_member_op_genesis(const uint8_t ws_id[KITH_WS_ID_BYTES],
                           const uint8_t owner_sk[KITH_SK_BYTES], uint64_t time_ms, uint8_t **op,
                           size_t *len)
{
    static const uint8_t zero[32];
    return build(KITH_MOP_GENESIS, ws_id, zero, time_ms, owner_sk, NULL, 0, op, len);
}

int kith_member_op_add(const kith_members *m, const uint8_t signer_sk[KITH_SK_BYTES],
                       const uint8_t pk[KITH_PK_BYTES], int role, uint64_t time_ms, uint8_t **op,
                       size_t *len)
{
    if (role < KITH_ROLE_READER || role > KITH_ROLE_OWNER)
        return KITH_EINVAL;
    uint8_t body[33];
    memcpy(body, pk, 32);
    body[32] = (uint8_t)role;
    return build(KITH_MOP_ADD, m->ws_id, m->head, time_ms, signer_sk, body, sizeof body, op, len);
}

int kith_member_op_remove(const kith_members *m, const uint8_t signer_sk[KITH_SK_BYTES],
                          const uint8_t pk[KITH_PK_BYTES], uint64_t last_seq, uint64_t time_ms,
                          uint8_t **op, size_t *len)
{
    uint8_t body[40];
    memcpy(body, pk, 32);
    put_u64(body + 32, last_seq);
    return build(KITH_MOP_REMOVE_AT, m->ws_id, m->head, time_ms, signer_sk, body, sizeof body, op,
                 len);
}

int kith_member_op_invite(const kith_members *m, const uint8_t signer_sk[KITH_SK_BYTES],
                          const uint8_t cap_pk[KITH_PK_BYTES], int role, uint64_t expires_ms,
                          uint64_t time_ms, uint8_t **op, size_t *len)
{
    if (role < KITH_ROLE_READER || role > KITH_ROLE_OWNER)
        return KITH_EINVAL;
    uint8_t body[41];
    memcpy(body, cap_pk, 32);
    body[32] = (uint8_t)role;
    put_u64(body + 33, expires_ms);
    return build(KITH_MOP_INVITE, m->ws_id, m->head, time_ms, signer_sk, body, sizeof body, op,
                 len);
}

int kith_member_op_join(const kith_members *m, const uint8_t device_sk[KITH_SK_BYTES],
                        const uint8_t cap_seed[KITH_CAP_BYTES], uint64_t time_ms, uint8_t **op,
                        size_t *len)
{
    *op = NULL;
    *len = 0;
    int rc = sync_sodium_init();
    if (rc)
        return rc;
    /* The capability signs the op's header and its own public key; the
     * device then signs the whole, capability signature included. */
    uint8_t cap_pk[32], cap_sk[64];
    crypto_sign_seed_keypair(cap_pk, cap_sk, cap_seed);
    uint8_t pre[OP_HDR + 32];
    pre[0] = OP_VERSION;
    pre[1] = KITH_MOP_JOIN;
    memcpy(pre + 2, m->ws_id, 16);
    memcpy(pre + 18, m->head, 32);
    put_u64(pre + 50, time_ms);
    memcpy(pre + 58, device_sk + 32, 32);
    memcpy(pre + OP_HDR, cap_pk, 32);
    uint8_t body[96];
    memcpy(body, cap_pk, 32);
    rc = sync_sign(JOIN_CTX, pre, sizeof pre, cap_sk, body + 32);
    sodium_memzero(cap_sk, sizeof cap_sk);
    if (rc)
        return rc;
    return build(KITH_MOP_JOIN, m->ws_id, m->head, time_ms, device_sk, body, sizeof body, op, len);
}
