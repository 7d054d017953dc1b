/*
 * The hub: a WebSocket/TLS 1.3 server (libwebsockets on its own poll loop,
 * one thread) that authenticates members, stores sealed blobs and
 * membership in SQLite, answers the version-vector exchange and relays new
 * blobs to the other connected members of a workspace. It never holds a
 * workspace key: it checks signatures and roles, never contents.
 *
 * Every peer input is validated before it changes anything; a malformed
 * frame closes that connection (after an ERROR frame saying why) and the
 * hub keeps serving everyone else.
 */
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sync/hubstore.h"
#include "sync/sync_int.h"
#include "util/util_int.h"

#define HUB_AUTH_TIMEOUT_S 30
#define HUB_TXQ_MAX        (64u << 20) /* bytes queued to one slow peer before dropping it */
#define HUB_CATCHUP_BATCH  64

struct hconn;

/* One workspace's membership, cached: the verified chain and its wire form,
 * and the index of its authenticated sessions (relays and membership
 * updates walk only these, not every connection of the hub). */
struct hub_ws {
    struct hconn *conns; /* READY sessions of this workspace (hconn.ws_next) */
    size_t n_conns;
    struct hub_ws *next;
    int64_t wid;
    uint8_t ws_id[16];
    char hex[33];
    kith_members *m;
    struct sbuf ops; /* WELCOME list items */
    uint32_t n_ops;
};

enum { HC_CHALLENGED = 1, HC_JOINING, HC_READY };

/* Per connection; libwebsockets allocates it zeroed (per_session_data_size). */
struct hconn {
    struct hconn *next, *prev;
    struct hconn *ws_next, *ws_prev; /* in ws->conns once READY */
    int indexed;
    struct lws *wsi;
    struct sync_peer peer;
    int state, role;
    int catching, live;
    int64_t cursor;
    kith_vv *peer_vv;
    struct hub_ws *ws;
    uint8_t challenge[32], cb[32];
    uint8_t pk[32], cap_pk[32];
    char who[80]; /* "device ab12cd34 (127.0.0.1)" for log lines */
};

struct kith_hub {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    hubstore *st;
    struct hub_ws *wss;
    struct hconn *conns;
    uint8_t fp[32];
    int port;
    size_t max_blob;
    volatile sig_atomic_t stop;
    char *cert, *key;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- workspace cache --------------------------------------------------------------- */

static void hub_ws_free(struct hub_ws *w)
{
    kith_members_free(w->m);
    sb_release(&w->ops);
    kith_free(w);
}

static int hub_ws_load(kith_hub *h, struct hub_ws *w)
{
    kith_members *m = NULL;
    struct sbuf ops;
    sb_init(&ops);
    int rc = hs_ops_load(h->st, w->wid, w->ws_id, &m, &ops);
    if (rc) {
        sb_release(&ops);
        return rc;
    }
    kith_members_free(w->m);
    sb_release(&w->ops);
    w->m = m;
    w->ops = ops;
    w->n_ops = (uint32_t)kith_members_length(m);
    return KITH_OK;
}

/* The cached workspace @ws_id; KITH_ENOTFOUND if the hub does not hold it. */
static int hub_ws_get(kith_hub *h, const uint8_t *ws_id, struct hub_ws **out)
{
    for (struct hub_ws *w = h->wss; w; w = w->next)
        if (!memcmp(w->ws_id, ws_id, 16)) {
            *out = w;
            return KITH_OK;
        }
    int64_t wid;
    int rc = hs_ws_find(h->st, ws_id, &wid);
    if (rc)
        return rc;
    struct hub_ws *w = kith_calloc(1, sizeof *w);
    if (!w)
        return KITH_ENOMEM;
    w->wid = wid;
    memcpy(w->ws_id, ws_id, 16);
    sync_hex(ws_id, 16, w->hex);
    rc = hub_ws_load(h, w);
    if (rc) {
        hub_ws_free(w);
        return rc;
    }
    w->next = h->wss;
    h->wss = w;
    *out = w;
    return KITH_OK;
}

/* ---- sending ------------------------------------------------------------------------ */

static void send_frame(struct hconn *c, struct sbuf *b)
{
    if (sync_peer_send(&c->peer, c->wsi, b) != KITH_OK)
        sync_peer_error(&c->peer, c->wsi, SYNC_ST_INTERNAL, "out of memory");
}

/* Refuses and closes: an ERROR frame, then the connection ends. */
__attribute__((format(printf, 3, 4))) static void refuse(struct hconn *c, unsigned code,
                                                         const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kith_log(KITH_LOG_WARN, "closing %s: %s", c->who, msg);
    sync_peer_error(&c->peer, c->wsi, code, msg);
}

static void send_push_result(struct hconn *c, const uint8_t *author, uint64_t seq, unsigned st,
                             const char *text)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_PUSH_RESULT);
    sb_raw(&b, author, 32);
    sb_u64(&b, seq);
    sb_u16(&b, (uint16_t)st);
    sb_bytes(&b, text, strlen(text));
    send_frame(c, &b);
}

static void send_member_result(struct hconn *c, unsigned st, uint64_t length, const char *text)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_MEMBER_RESULT);
    sb_u16(&b, (uint16_t)st);
    sb_u64(&b, length);
    sb_bytes(&b, text, strnlen(text, SYNC_TEXT_MAX));
    send_frame(c, &b);
}

static void send_welcome(struct hconn *c, int role, const uint8_t *wrapped, size_t wlen)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_WELCOME);
    sb_u8(&b, (uint8_t)role);
    sb_u32(&b, kith_members_epoch(c->ws->m));
    sb_u32(&b, c->ws->n_ops);
    sb_raw(&b, c->ws->ops.p, c->ws->ops.len);
    sb_bytes(&b, wrapped, wlen);
    send_frame(c, &b);
}

static void send_blob(struct hconn *c, const uint8_t *data, size_t len)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_BLOB);
    sb_bytes(&b, data, len);
    send_frame(c, &b);
}

static void set_who(struct hconn *c, const uint8_t *pk)
{
    char hex[65], addr[48] = "?";
    sync_hex(pk, 32, hex);
    lws_get_peer_simple(c->wsi, addr, sizeof addr);
    snprintf(c->who, sizeof c->who, "device %.16s (%s)", hex, addr);
}

/* ---- authentication --------------------------------------------------------------- */

/* The workspace index: a session joins it on becoming READY (member auth,
 * registration, an accepted JOIN) and leaves it on close. */
static void ws_index_add(struct hconn *c)
{
    struct hub_ws *w = c->ws;
    if (c->indexed)
        return;
    c->ws_prev = NULL;
    c->ws_next = w->conns;
    if (w->conns)
        w->conns->ws_prev = c;
    w->conns = c;
    w->n_conns++;
    c->indexed = 1;
}

static void ws_index_remove(struct hconn *c)
{
    struct hub_ws *w = c->ws;
    if (!c->indexed)
        return;
    if (c->ws_prev)
        c->ws_prev->ws_next = c->ws_next;
    else
        w->conns = c->ws_next;
    if (c->ws_next)
        c->ws_next->ws_prev = c->ws_prev;
    w->n_conns--;
    c->indexed = 0;
}

static void become_ready(struct hconn *c, int role)
{
    c->state = HC_READY;
    c->role = role;
    ws_index_add(c);
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
    kith_log(KITH_LOG_INFO, "%s: %s of workspace %s", c->who, kith_role_name(role), c->ws->hex);
}

static void auth_member(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    int rc = hub_ws_get(h, m->u.auth.ws_id, &c->ws);
    int role = rc == KITH_OK ? kith_members_role(c->ws->m, c->pk) : KITH_ROLE_NONE;
    if (rc != KITH_OK && rc != KITH_ENOTFOUND) {
        refuse(c, SYNC_ST_INTERNAL, "cannot load workspace: %s", kith_strerror(rc));
        return;
    }
    if (role == KITH_ROLE_NONE) {
        char hex[33];
        sync_hex(m->u.auth.ws_id, 16, hex);
        refuse(c, SYNC_ST_NOT_MEMBER, "refused: not a member of workspace %s", hex);
        return;
    }
    become_ready(c, role);
    /* A member's key envelopes ride in WELCOME's wrapped field. */
    uint8_t *env = NULL;
    size_t elen = 0;
    if (hs_env_get(h->st, c->ws->wid, c->pk, SYNC_WRAP_MAX, &env, &elen) != KITH_OK)
        kith_log(KITH_LOG_WARN, "%s: cannot load key envelopes", c->who);
    send_welcome(c, role, env, elen);
    kith_free(env);
}

static void auth_register(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    struct hub_ws *w = NULL;
    int rc = hub_ws_get(h, m->u.auth.ws_id, &w);
    if (rc == KITH_OK) {
        refuse(c, SYNC_ST_EXISTS, "workspace %s is already registered", w->hex);
        return;
    }
    kith_members *chk = NULL;
    kith_member_op op;
    rc = kith_members_new(m->u.auth.ws_id, &chk);
    if (rc == KITH_OK)
        rc = kith_members_apply(chk, m->u.auth.extra, m->u.auth.extra_len);
    if (rc == KITH_OK)
        rc = kith_member_op_parse(m->u.auth.extra, m->u.auth.extra_len, &op);
    if (rc == KITH_OK && memcmp(op.signer, c->pk, 32) != 0)
        rc = KITH_EAUTH;
    kith_members_free(chk);
    if (rc) {
        refuse(c, SYNC_ST_INVALID, "refused registration: bad genesis op (%s)", kith_strerror(rc));
        return;
    }
    int64_t wid;
    rc = hs_ws_create(h->st, m->u.auth.ws_id, m->u.auth.extra, m->u.auth.extra_len, now_ms(), &wid);
    if (rc == KITH_OK)
        rc = hub_ws_get(h, m->u.auth.ws_id, &c->ws);
    if (rc) {
        refuse(c, SYNC_ST_INTERNAL, "cannot store workspace: %s", hs_errmsg(h->st));
        return;
    }
    kith_log(KITH_LOG_INFO, "workspace %s registered by %s", c->ws->hex, c->who);
    become_ready(c, KITH_ROLE_OWNER);
    send_welcome(c, KITH_ROLE_OWNER, NULL, 0);
}

/* JOIN: the device proved it holds the capability key (a second signature
 * over the same transcript); it gets the chain and the wrapped key, and
 * becomes a member once its signed JOIN op is appended. */
static void auth_join(kith_hub *h, struct hconn *c, const struct sync_msg *m, const uint8_t *tr)
{
    if (m->u.auth.extra_len != 96) {
        refuse(c, SYNC_ST_MALFORMED, "join without a capability");
        return;
    }
    const uint8_t *cap_pk = m->u.auth.extra, *cap_sig = m->u.auth.extra + 32;
    if (sync_verify(SYNC_CAP_CTX, tr, 113, cap_pk, cap_sig) != KITH_OK) {
        refuse(c, SYNC_ST_BAD_AUTH, "refused join: bad capability signature");
        return;
    }
    int rc = hub_ws_get(h, m->u.auth.ws_id, &c->ws);
    struct hs_invite inv = {0};
    if (rc == KITH_OK)
        rc = hs_invite_get(h->st, c->ws->wid, cap_pk, &inv);
    if (rc == KITH_ENOTFOUND) {
        refuse(c, SYNC_ST_NOT_FOUND, "refused join: no such invite");
    } else if (rc) {
        refuse(c, SYNC_ST_INTERNAL, "cannot read invite: %s", kith_strerror(rc));
    } else if (inv.used) {
        refuse(c, SYNC_ST_USED, "refused join: invite already used");
    } else if ((uint64_t)now_ms() > inv.expires_ms) {
        refuse(c, SYNC_ST_EXPIRED, "refused join: invite expired");
    } else if (kith_members_role(c->ws->m, c->pk) != KITH_ROLE_NONE) {
        refuse(c, SYNC_ST_INVALID, "refused join: already a member");
    } else {
        memcpy(c->cap_pk, cap_pk, 32);
        c->state = HC_JOINING;
        kith_log(KITH_LOG_INFO, "%s: joining workspace %s as %s", c->who, c->ws->hex,
                 kith_role_name(inv.role));
        send_welcome(c, inv.role, inv.wrapped, inv.wrapped_len);
    }
    kith_free(inv.wrapped);
}

static void on_auth(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    uint8_t tr[113];
    memcpy(c->pk, m->u.auth.device_pk, 32);
    set_who(c, c->pk);
    sync_auth_transcript(tr, c->challenge, c->cb, m->u.auth.ws_id, c->pk, m->u.auth.mode);
    if (sync_verify(SYNC_AUTH_CTX, tr, sizeof tr, c->pk, m->u.auth.sig) != KITH_OK) {
        refuse(c, SYNC_ST_BAD_AUTH, "refused: bad authentication signature");
        return;
    }
    switch (m->u.auth.mode) {
    case SYNC_MODE_MEMBER:
        auth_member(h, c, m);
        break;
    case SYNC_MODE_REGISTER:
        auth_register(h, c, m);
        break;
    case SYNC_MODE_JOIN:
        auth_join(h, c, m, tr);
        break;
    }
}

/* ---- membership --------------------------------------------------------------------- */

static unsigned status_of(int rc)
{
    switch (rc) {
    case KITH_EAUTH:
        return SYNC_ST_BAD_SIGNATURE;
    case KITH_EPERM:
        return SYNC_ST_FORBIDDEN;
    case KITH_ECORRUPT:
    case KITH_EVERSION:
        return SYNC_ST_MALFORMED;
    default:
        return SYNC_ST_INVALID;
    }
}

/* After the chain changed: tell the other members, update roles of live
 * connections and close those of removed devices. */
static void after_op(kith_hub *h, struct hconn *from, const uint8_t *op, size_t len)
{
    (void)h;
    for (struct hconn *o = from->ws->conns; o; o = o->ws_next) {
        if (o->state != HC_READY || o->peer.close_after)
            continue;
        o->role = kith_members_role(o->ws->m, o->pk);
        if (o->role == KITH_ROLE_NONE) {
            refuse(o, SYNC_ST_NOT_MEMBER, "removed from workspace %s", o->ws->hex);
            continue;
        }
        if (o == from)
            continue;
        struct sbuf b;
        sb_init(&b);
        sync_frame_begin(&b, SYNC_MEMBER_UPDATE);
        sb_bytes(&b, op, len);
        send_frame(o, &b);
    }
}

/* Appends a verified op: memory first (that is the check), then the
 * database; if the database fails the cache is reloaded from it. */
static int append_op(kith_hub *h, struct hconn *c, const struct sync_msg *m, const char **why)
{
    struct hub_ws *w = c->ws;
    const uint8_t *op = m->u.member_op.op;
    size_t len = m->u.member_op.op_len;
    kith_member_op o;
    int rc = kith_member_op_parse(op, len, &o);
    if (rc) {
        *why = "malformed op";
        return SYNC_ST_MALFORMED;
    }
    if (memcmp(o.signer, c->pk, 32) != 0) {
        *why = "op not signed by this device";
        return SYNC_ST_FORBIDDEN;
    }
    if (c->state == HC_JOINING ? o.type != KITH_MOP_JOIN || memcmp(o.subject, c->cap_pk, 32)
                               : o.type == KITH_MOP_JOIN || o.type == KITH_MOP_GENESIS) {
        *why = "op type not allowed here";
        return SYNC_ST_INVALID;
    }
    if (o.type == KITH_MOP_INVITE && m->u.member_op.wrapped_len == 0) {
        *why = "invite without a wrapped key";
        return SYNC_ST_INVALID;
    }
    if (o.type == KITH_MOP_JOIN && (uint64_t)now_ms() > o.time_ms + 600000) {
        *why = "join op too old";
        return SYNC_ST_INVALID;
    }
    if (memcmp(o.prev, kith_members_head(w->m), 32) != 0) {
        *why = "stale: the chain has moved on; re-sign against the new head";
        return SYNC_ST_STALE;
    }
    /* New removals name a cut-off (plain REMOVEs stay valid in older chains). */
    if (o.type == KITH_MOP_REMOVE) {
        *why = "a removal must name its cut-off (REMOVE_AT): update this device";
        return SYNC_ST_INVALID;
    }
    /* A cut-off below what the hub stored (and may have relayed) would
     * split the members' histories: the remover syncs and re-signs. */
    if (o.type == KITH_MOP_REMOVE_AT && hs_blob_max(h->st, w->wid, o.subject) > o.last_seq) {
        *why = "the hub holds later blobs of the removed device than the op's cut-off; "
               "sync, then re-sign";
        return SYNC_ST_INVALID;
    }
    uint64_t idx = kith_members_length(w->m);
    rc = kith_members_apply(w->m, op, len);
    if (rc) {
        *why = kith_members_errmsg(w->m);
        return status_of(rc);
    }
    rc = hs_begin(h->st);
    if (rc == KITH_OK)
        rc = hs_op_add(h->st, w->wid, (int64_t)idx, op, len);
    if (rc == KITH_OK && o.type == KITH_MOP_INVITE)
        rc = hs_invite_add(h->st, w->wid, o.subject, o.role, o.expires_ms, m->u.member_op.wrapped,
                           m->u.member_op.wrapped_len);
    if (rc == KITH_OK && o.type == KITH_MOP_JOIN)
        rc = hs_invite_use(h->st, w->wid, o.subject);
    if (rc == KITH_OK)
        rc = hs_commit(h->st);
    else
        hs_rollback(h->st);
    if (rc == KITH_OK) {
        sb_bytes(&w->ops, op, len);
        w->n_ops++;
        rc = w->ops.err;
    }
    if (rc) {
        kith_log(KITH_LOG_ERROR, "workspace %s: cannot store op: %s", w->hex, hs_errmsg(h->st));
        if (hub_ws_load(h, w) != KITH_OK)
            kith_log(KITH_LOG_ERROR, "workspace %s: cannot reload membership", w->hex);
        *why = "hub storage error";
        return SYNC_ST_INTERNAL;
    }
    return SYNC_ST_OK;
}

static void on_member_op(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    const char *why = "";
    unsigned st = SYNC_ST_FORBIDDEN;
    if (c->state == HC_READY && c->role < KITH_ROLE_ADMIN)
        why = "only owners and admins change membership";
    else
        st = append_op(h, c, m, &why);
    if (st != SYNC_ST_OK) {
        kith_log(KITH_LOG_WARN, "%s: membership op refused: %s", c->who, why);
        if (c->state == HC_JOINING) {
            refuse(c, st, "join refused: %s", why);
            return;
        }
        send_member_result(c, st, kith_members_length(c->ws->m), why);
        return;
    }
    if (c->state == HC_JOINING) {
        become_ready(c, kith_members_role(c->ws->m, c->pk));
    }
    kith_log(KITH_LOG_INFO, "workspace %s: membership op %zu by %s", c->ws->hex,
             kith_members_length(c->ws->m) - 1, c->who);
    send_member_result(c, SYNC_ST_OK, kith_members_length(c->ws->m), "");
    after_op(h, c, m->u.member_op.op, m->u.member_op.op_len);
}

/* Key envelopes after a rotation: each names its epoch, recipient and
 * sender in clear and is signed by the sender (PROTOCOL.md "Key rotation"). */
static void on_keys_put(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    const char *why = "";
    unsigned st = SYNC_ST_OK;
    const uint8_t *p = m->u.keys.env;
    size_t n = m->u.keys.len / SYNC_ENV_LEN;
    if (c->role < KITH_ROLE_WRITER) {
        st = SYNC_ST_FORBIDDEN;
        why = "only writers and up hand out keys";
    }
    for (size_t i = 0; st == SYNC_ST_OK && i < n; i++) {
        const uint8_t *e = p + i * SYNC_ENV_LEN;
        uint32_t epoch = get_u32(e + 17);
        if (e[0] != 1 || memcmp(e + 1, c->ws->ws_id, 16) != 0 || memcmp(e + 53, c->pk, 32) != 0) {
            st = SYNC_ST_INVALID;
            why = "key envelope of another workspace or sender";
        } else if (sync_verify("kith-key-v1", e, 165, e + 53, e + 165) != KITH_OK) {
            st = SYNC_ST_BAD_SIGNATURE;
            why = "key envelope signature does not verify";
        } else if (epoch == 0 || epoch > kith_members_epoch(c->ws->m) ||
                   kith_members_role(c->ws->m, e + 21) == KITH_ROLE_NONE) {
            st = SYNC_ST_INVALID;
            why = "key envelope for an unknown epoch or a non-member";
        }
    }
    if (st == SYNC_ST_OK && hs_begin(h->st) == KITH_OK) {
        for (size_t i = 0; st == SYNC_ST_OK && i < n; i++) {
            const uint8_t *e = p + i * SYNC_ENV_LEN;
            if (hs_env_put(h->st, c->ws->wid, get_u32(e + 17), e + 21, e + 53, e, SYNC_ENV_LEN) !=
                KITH_OK)
                st = SYNC_ST_INTERNAL;
        }
        if (st != SYNC_ST_OK || hs_commit(h->st) != KITH_OK) {
            hs_rollback(h->st);
            st = SYNC_ST_INTERNAL;
            why = "hub storage error";
        }
    } else if (st == SYNC_ST_OK) {
        st = SYNC_ST_INTERNAL;
        why = "hub storage error";
    }
    if (st != SYNC_ST_OK)
        kith_log(KITH_LOG_WARN, "%s: key envelopes refused: %s", c->who, why);
    else
        kith_log(KITH_LOG_INFO, "workspace %s: %zu key envelope%s from %s", c->ws->hex, n,
                 n == 1 ? "" : "s", c->who);
    send_member_result(c, st, kith_members_length(c->ws->m), why);
}

/* ---- blobs ---------------------------------------------------------------------------- */

/* Checks a pushed blob; returns a status and the parsed header. */
static unsigned check_blob(kith_hub *h, struct hconn *c, const uint8_t *blob, size_t len, int kind,
                           kith_blob_info *info, const char **why)
{
    int rc = kith_blob_parse(blob, len, info);
    if (rc) {
        *why = rc == KITH_EVERSION ? "unknown blob version" : "malformed blob";
        return SYNC_ST_MALFORMED;
    }
    if (c->role < KITH_ROLE_WRITER) {
        *why = "readers may not push";
        return SYNC_ST_FORBIDDEN;
    }
    if (info->plain_len > h->max_blob) {
        *why = "blob too big";
        return SYNC_ST_TOO_BIG;
    }
    /* A version 2 blob binds the workspace without naming it: one of
     * another workspace fails the signature check below. */
    if ((info->version == 1 && memcmp(info->ws_id, c->ws->ws_id, 16) != 0) ||
        info->kind != kind) {
        *why = "blob for another workspace or of the wrong kind";
        return SYNC_ST_INVALID;
    }
    if (kith_members_role(c->ws->m, info->author) < KITH_ROLE_WRITER) {
        /* A device removed by a REMOVE_AT: its changes up to the cut-off
         * stay valid (another member may push them), none beyond. */
        uint64_t last = 0;
        int was = KITH_ROLE_NONE;
        if (kind != KITH_BLOB_CHANGE ||
            kith_members_cutoff(c->ws->m, info->author, &last, &was) != KITH_OK ||
            was < KITH_ROLE_WRITER) {
            *why = "author is not a writer of this workspace";
            return SYNC_ST_FORBIDDEN;
        }
        if (info->seq > last) {
            *why = "author was removed; seq beyond its cut-off";
            return SYNC_ST_FORBIDDEN;
        }
    }
    if (kith_blob_verify(blob, len, c->ws->ws_id, info) != KITH_OK) {
        *why = "bad signature";
        return SYNC_ST_BAD_SIGNATURE;
    }
    return SYNC_ST_OK;
}

/* O(sessions of this workspace): the index, not the hub's connection list. */
static void relay(kith_hub *h, struct hconn *from, const uint8_t *blob, size_t len)
{
    (void)h;
    for (struct hconn *o = from->ws->conns; o; o = o->ws_next) {
        if (o == from || !o->live || o->peer.close_after)
            continue;
        if (o->peer.tx_bytes > HUB_TXQ_MAX) {
            refuse(o, SYNC_ST_INTERNAL, "too far behind; reconnect to catch up");
            continue;
        }
        send_blob(o, blob, len);
    }
}

static void on_push(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    static const uint8_t zero[32];
    const uint8_t *blob = m->u.blob.blob;
    size_t len = m->u.blob.len;
    kith_blob_info info;
    const char *why = "";
    unsigned st = check_blob(h, c, blob, len, KITH_BLOB_CHANGE, &info, &why);
    if (st == SYNC_ST_OK) {
        uint64_t max = hs_blob_max(h->st, c->ws->wid, info.author);
        if (info.seq <= max) {
            st = SYNC_ST_DUPLICATE;
            why = "already held";
        } else if (info.seq != max + 1) {
            st = SYNC_ST_GAP;
            why = "an earlier seq of this author is missing";
        } else if (hs_blob_add(h->st, c->ws->wid, info.author, info.seq, blob, len) != KITH_OK) {
            kith_log(KITH_LOG_ERROR, "cannot store blob: %s", hs_errmsg(h->st));
            st = SYNC_ST_INTERNAL;
            why = "hub storage error";
        }
    }
    const uint8_t *author = st == SYNC_ST_MALFORMED ? zero : info.author;
    if (st != SYNC_ST_OK && st != SYNC_ST_DUPLICATE) {
        char hex[65];
        sync_hex(author, 32, hex);
        kith_log(KITH_LOG_WARN, "%s: rejected blob author %.16s seq %llu: %s", c->who, hex,
                 (unsigned long long)info.seq, why);
    }
    send_push_result(c, author, info.seq, st, why);
    if (st == SYNC_ST_OK)
        relay(h, c, blob, len);
}

static uint64_t vv_total(const uint8_t *e, uint32_t n)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s = get_u64(e + (size_t)i * 40 + 32);
        t = s > UINT64_MAX - t ? UINT64_MAX : t + s;
    }
    return t;
}

static int snap_total(void *ud, const uint8_t *vv, size_t vv_len, uint64_t total,
                      const uint8_t *data, size_t len)
{
    *(uint64_t *)ud = total;
    return KITH_OK;
}

static void on_snapshot_put(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    kith_blob_info info;
    const char *why = "";
    unsigned st =
        check_blob(h, c, m->u.snapshot.blob, m->u.snapshot.len, KITH_BLOB_SNAPSHOT, &info, &why);
    uint64_t total = vv_total(m->u.snapshot.vv, m->u.snapshot.n), old = 0;
    if (st == SYNC_ST_OK) {
        int rc = hs_snapshot_get(h->st, c->ws->wid, snap_total, &old);
        if (rc == KITH_OK && old > total) {
            st = SYNC_ST_DUPLICATE;
            why = "the hub holds a newer snapshot";
        } else if (hs_snapshot_put(h->st, c->ws->wid, m->u.snapshot.vv,
                                   (size_t)m->u.snapshot.n * 40, total, m->u.snapshot.blob,
                                   m->u.snapshot.len) != KITH_OK) {
            st = SYNC_ST_INTERNAL;
            why = "hub storage error";
        }
    }
    if (st != SYNC_ST_OK)
        kith_log(KITH_LOG_WARN, "%s: snapshot refused: %s", c->who, why);
    send_push_result(c, info.author, info.seq, st, why);
}

static int snap_send(void *ud, const uint8_t *vv, size_t vv_len, uint64_t total,
                     const uint8_t *data, size_t len)
{
    struct hconn *c = ud;
    if (vv_len % 40 != 0)
        return KITH_ECORRUPT;
    kith_vv *v = NULL;
    int rc = sync_vv_from_wire(vv, (uint32_t)(vv_len / 40), &v);
    if (rc)
        return rc;
    kith_vv_free(c->peer_vv);
    c->peer_vv = v; /* the catch-up starts after what the snapshot covers */
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_SNAPSHOT);
    sb_vv(&b, v);
    sb_bytes(&b, data, len);
    send_frame(c, &b);
    return KITH_OK;
}

static void on_hello(kith_hub *h, struct hconn *c, const struct sync_msg *m)
{
    kith_vv *hub = NULL;
    kith_vv_free(c->peer_vv);
    c->peer_vv = NULL;
    int rc = sync_vv_from_wire(m->u.hello.vv, m->u.hello.n, &c->peer_vv);
    if (rc == KITH_OK)
        rc = hs_vv(h->st, c->ws->wid, &hub);
    if (rc) {
        refuse(c, SYNC_ST_INTERNAL, "cannot read vector: %s", kith_strerror(rc));
        return;
    }
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_HELLO_REPLY);
    sb_vv(&b, hub);
    send_frame(c, &b);
    kith_vv_free(hub);
    if ((m->u.hello.flags & SYNC_HELLO_WANT_SNAPSHOT) && m->u.hello.n == 0)
        (void)hs_snapshot_get(h->st, c->ws->wid, snap_send, c);
    c->catching = 1;
    c->live = 0;
    c->cursor = 0;
    lws_callback_on_writable(c->wsi);
}

struct catchup {
    struct hconn *c;
    int rows, sent;
};

static int catchup_row(void *ud, int64_t id, const uint8_t *author, uint64_t seq,
                       const uint8_t *data, size_t len)
{
    struct catchup *k = ud;
    k->rows++;
    k->c->cursor = id;
    if (seq > kith_vv_get(k->c->peer_vv, author)) {
        send_blob(k->c, data, len);
        k->sent++;
    }
    return KITH_OK;
}

/* Queues the next catch-up blobs, in store order, skipping what the peer
 * holds; at the end the peer turns live and relays reach it directly. */
static void catchup(kith_hub *h, struct hconn *c)
{
    struct catchup k = {c, 0, 0};
    do {
        k.rows = 0;
        if (hs_blobs_after(h->st, c->ws->wid, c->cursor, HUB_CATCHUP_BATCH, catchup_row, &k)) {
            refuse(c, SYNC_ST_INTERNAL, "cannot read blobs: %s", hs_errmsg(h->st));
            return;
        }
    } while (k.rows > 0 && k.sent == 0);
    if (k.rows == 0) {
        c->catching = 0;
        c->live = 1;
        struct sbuf b;
        sb_init(&b);
        sync_frame_begin(&b, SYNC_CAUGHT_UP);
        send_frame(c, &b);
    }
}

/* ---- dispatch -------------------------------------------------------------------------- */

static void on_frame(kith_hub *h, struct hconn *c)
{
    struct sync_msg m;
    const char *why = NULL;
    int rc = sync_frame_decode(c->peer.rx, c->peer.rx_len, &m, &why);
    if (rc == KITH_EVERSION) {
        refuse(c, SYNC_ST_VERSION, "protocol version %u not supported; this hub speaks %u",
               m.version, SYNC_VERSION);
        return;
    }
    if (rc) {
        refuse(c, SYNC_ST_MALFORMED, "malformed frame (type 0x%02x): %s", m.type, why);
        return;
    }
    if (m.type == SYNC_ERROR) {
        kith_log(KITH_LOG_WARN, "%s says: %s (%.*s)", c->who, sync_status_name(m.u.error.code),
                 (int)m.u.error.text_len, (const char *)m.u.error.text);
        c->peer.close_after = 1;
        lws_callback_on_writable(c->wsi);
        return;
    }
    if (c->state == HC_CHALLENGED && m.type == SYNC_AUTH) {
        on_auth(h, c, &m);
    } else if (c->state == HC_JOINING && m.type == SYNC_MEMBER_OP) {
        on_member_op(h, c, &m);
    } else if (c->state == HC_READY) {
        switch (m.type) {
        case SYNC_HELLO:
            on_hello(h, c, &m);
            return;
        case SYNC_PUSH:
            on_push(h, c, &m);
            return;
        case SYNC_MEMBER_OP:
            on_member_op(h, c, &m);
            return;
        case SYNC_SNAPSHOT_PUT:
            on_snapshot_put(h, c, &m);
            return;
        case SYNC_KEYS_PUT:
            on_keys_put(h, c, &m);
            return;
        default:
            refuse(c, SYNC_ST_BAD_STATE, "unexpected message type 0x%02x", m.type);
        }
    } else {
        refuse(c, SYNC_ST_BAD_STATE, "unexpected message type 0x%02x before authentication",
               m.type);
    }
}

static int on_open(kith_hub *h, struct hconn *c, struct lws *wsi)
{
    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    char addr[48] = "?";
    lws_get_peer_simple(wsi, addr, sizeof addr);
    snprintf(c->who, sizeof c->who, "connection from %s", addr);
    if (sync_tls_binding(lws_get_ssl(wsi), c->cb) != KITH_OK) {
        kith_log(KITH_LOG_WARN, "closing %s: no TLS 1.3 channel binding", c->who);
        return -1;
    }
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    c->state = HC_CHALLENGED;
    randombytes_buf(c->challenge, 32);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HUB_AUTH_TIMEOUT_S);
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_CHALLENGE);
    sb_raw(&b, c->challenge, 32);
    send_frame(c, &b);
    return 0;
}

static void on_closed(kith_hub *h, struct hconn *c)
{
    if (!c->state)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ws_index_remove(c);
    sync_peer_release(&c->peer);
    kith_vv_free(c->peer_vv);
    kith_log(KITH_LOG_INFO, "closed %s", c->who);
    c->state = 0;
}

static int hub_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    kith_hub *h = ctx ? lws_context_user(ctx) : NULL;
    struct hconn *c = user;
    int r;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return on_open(h, c, wsi);
    case LWS_CALLBACK_RECEIVE:
        if (!c->state || c->peer.close_after)
            return 0; /* refusing: ignore what else comes */
        r = sync_peer_rx(&c->peer, wsi, in, len);
        if (r < 0) {
            refuse(c, SYNC_ST_MALFORMED,
                   r == -2 ? "text frame (binary frames only)"
                           : "message larger than the frame limit");
            sync_peer_rx_done(&c->peer);
            return 0;
        }
        if (r == 1) {
            on_frame(h, c);
            sync_peer_rx_done(&c->peer);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!c->state)
            return -1;
        if (c->catching && !c->peer.head && !c->peer.close_after)
            catchup(h, c);
        r = sync_peer_write(&c->peer, wsi);
        /* the queue ran dry mid catch-up: come back for the next batch */
        if (r == 0 && c->catching && !c->peer.head)
            lws_callback_on_writable(wsi);
        return r;
    case LWS_CALLBACK_CLOSED:
        on_closed(h, c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static int parse_listen(const char *s, char *host, size_t hl, int *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon)
        return KITH_EINVAL;
    const char *h0 = s, *h1 = colon;
    if (*h0 == '[') {
        if (h1 - h0 < 2 || h1[-1] != ']')
            return KITH_EINVAL;
        h0++;
        h1--;
    }
    if (h1 <= h0 || (size_t)(h1 - h0) >= hl)
        return KITH_EINVAL;
    memcpy(host, h0, (size_t)(h1 - h0));
    host[h1 - h0] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return KITH_EINVAL;
    *port = (int)p;
    return KITH_OK;
}

int kith_hub_open(const kith_hub_opts *opts, kith_hub **out)
{
    *out = NULL;
    if (!opts || opts->size < sizeof *opts || !opts->data_dir || !opts->listen ||
        (!opts->cert_file != !opts->key_file))
        return KITH_EINVAL;
    char host[128], err[300] = "";
    int port, rc = parse_listen(opts->listen, host, sizeof host, &port);
    if (rc) {
        kith_log(KITH_LOG_ERROR, "bad listen address '%s' (want ADDR:PORT)", opts->listen);
        return rc;
    }
    if (sync_sodium_init())
        return KITH_EIO;
    kith_hub *h = kith_calloc(1, sizeof *h);
    if (!h)
        return KITH_ENOMEM;
    h->max_blob = opts->max_blob ? opts->max_blob : KITH_BLOB_MAX_DEFAULT;
    if (mkdir(opts->data_dir, 0700) != 0 && errno != EEXIST) {
        kith_log(KITH_LOG_ERROR, "cannot create '%s': %s", opts->data_dir, strerror(errno));
        rc = KITH_EIO;
        goto fail;
    }
    rc = sync_tls_hub_cert(opts->data_dir, opts->cert_file, opts->key_file, &h->cert, &h->key,
                           h->fp, err, sizeof err);
    if (rc == KITH_OK)
        rc = hs_open(opts->data_dir, &h->st, err, sizeof err);
    if (rc) {
        kith_log(KITH_LOG_ERROR, "%s", err);
        goto fail;
    }
    sync_lws_logging();
    h->protocols[0] = (struct lws_protocols){
        .name = SYNC_WS_PROTOCOL,
        .callback = hub_callback,
        .per_session_data_size = sizeof(struct hconn),
        .rx_buffer_size = 65536,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = h;
    info.gid = -1;
    info.uid = -1;
    h->ctx = lws_create_context(&info);
    if (!h->ctx) {
        kith_log(KITH_LOG_ERROR, "cannot create the network context");
        rc = KITH_EIO;
        goto fail;
    }
    info.port = port;
    info.iface = host;
    info.protocols = h->protocols;
    info.vhost_name = "kith-hub";
    info.ssl_cert_filepath = h->cert;
    info.ssl_private_key_filepath = h->key;
    /* TLS 1.3 only: the channel binding is defined for it (RFC 9266). */
    info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
    info.pt_serv_buf_size = 65536;
    h->vh = lws_create_vhost(h->ctx, &info);
    if (!h->vh) {
        kith_log(KITH_LOG_ERROR, "cannot listen on %s", opts->listen);
        rc = KITH_EIO;
        goto fail;
    }
    h->port = lws_get_vhost_listen_port(h->vh);
    *out = h;
    return KITH_OK;
fail:
    kith_hub_close(h);
    return rc;
}

int kith_hub_port(const kith_hub *hub)
{
    return hub->port;
}

const uint8_t *kith_hub_fingerprint(const kith_hub *hub)
{
    return hub->fp;
}

int kith_hub_run(kith_hub *h)
{
    while (!h->stop)
        if (lws_service(h->ctx, 0) < 0)
            return KITH_EIO;
    return KITH_OK;
}

void kith_hub_stop(kith_hub *h)
{
    h->stop = 1;
    if (h->ctx)
        lws_cancel_service(h->ctx);
}

void kith_hub_close(kith_hub *h)
{
    if (!h)
        return;
    /* Destroying the context closes every connection (CLOSED callbacks). */
    if (h->ctx)
        lws_context_destroy(h->ctx);
    while (h->wss) {
        struct hub_ws *w = h->wss;
        h->wss = w->next;
        hub_ws_free(w);
    }
    hs_close(h->st);
    kith_free(h->cert);
    kith_free(h->key);
    kith_free(h);
}
