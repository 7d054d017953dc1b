/*
 * The client side of the hub protocol over libwebsockets. A kith_sync_loop
 * is one libwebsockets context (one SSL_CTX, one poll set) that many
 * clients share; it runs on libwebsockets' own poll loop, or on a libuv loop
 * the caller owns (the daemon's, which also carries its file watcher and
 * timers), through libwebsockets' libuv event-library support.
 *
 * The client checks everything the hub says that it can: the certificate
 * (pinned fingerprint or CA), TLS 1.3, the membership chain it is handed
 * (every op verified, anchored to a known genesis hash when given), and
 * that the role the hub claims matches the chain.
 */
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "sync/sync_int.h"
#include "sync/sync_lan.h"
#include "util/util_int.h"

struct kith_sync_loop {
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    lws_sorted_usec_list_t sul;
    int brk, uv;
    uv_loop_t *uv_loop;
};

struct pending_op {
    struct pending_op *next;
    size_t len;
    uint8_t op[];
};

struct kith_sync_client {
    kith_sync_loop *loop;
    struct lws *wsi;
    struct sync_peer peer;
    int state;
    enum kith_sync_mode mode;
    uint8_t ws_id[16], pk[32];
    const uint8_t *sk;
    int pinned, anchored;
    int lan, peer_ok; /* a LAN peer (opts.peer_device); its AUTH verified */
    uint8_t peer_pk[32], nonce[32];
    uint8_t fp[32], genesis[32], cap_seed[32], cb[32];
    uint8_t *genesis_op, *join_op, *wrapped;
    size_t genesis_op_len, join_op_len, wrapped_len;
    struct pending_op *pend, *pend_tail;
    kith_members *members;
    struct sbuf chain; /* the ops of members, each u32 length + bytes (kith_sync_client_chain) */
    size_t chain_n;
    uint8_t *lan_chain; /* a LAN connector's own chain, sent after AUTH (opts.lan_chain) */
    size_t lan_chain_len, lan_chain_n;
    kith_sync_callbacks cb_;
    void *ud;
    int reported, starting, user_closed;
    char err[300];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 2, 3))) static void set_err(kith_sync_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

/* A failure the client detected: say why to the hub, log it, close. */
__attribute__((format(printf, 3, 4))) static void fail(kith_sync_client *c, unsigned code,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    kith_log(KITH_LOG_WARN, "sync: %s", c->err);
    sync_peer_error(&c->peer, c->wsi, code, c->err);
}

static void report_closed(kith_sync_client *c, int err)
{
    c->state = KITH_SYNC_CLOSED;
    if (c->reported || c->starting)
        return;
    c->reported = 1;
    if (c->cb_.closed)
        c->cb_.closed(c->ud, c, err, c->err);
}

static int send_frame(kith_sync_client *c, struct sbuf *b)
{
    if (!c->wsi || c->peer.close_after) {
        sb_release(b);
        return KITH_ENET;
    }
    return sync_peer_send(&c->peer, c->wsi, b);
}

/* ---- handshake ----------------------------------------------------------------------------- */

static int on_established(kith_sync_client *c)
{
    void *ssl = lws_get_ssl(c->wsi);
    if (c->pinned) {
        uint8_t got[32];
        char g[72], w[72];
        if (sync_tls_peer_fp(ssl, got) != KITH_OK || sodium_memcmp(got, c->fp, 32) != 0) {
            kith_fingerprint_format(got, g);
            kith_fingerprint_format(c->fp, w);
            set_err(c, "hub certificate fingerprint %s does not match the pinned %s", g, w);
            kith_log(KITH_LOG_WARN, "sync: %s", c->err);
            return -1;
        }
    }
    if (sync_tls_binding(ssl, c->cb) != KITH_OK) {
        set_err(c, "hub did not negotiate TLS 1.3");
        return -1;
    }
    c->state = KITH_SYNC_AUTHENTICATING;
    return 0;
}

static void on_challenge(kith_sync_client *c, const struct sync_msg *m)
{
    uint8_t tr[113], sig[64], extra[96];
    const uint8_t *x = NULL;
    size_t xl = 0;
    memcpy(c->nonce, m->u.challenge.nonce, 32); /* a LAN peer signs it too */
    sync_auth_transcript(tr, m->u.challenge.nonce, c->cb, c->ws_id, c->pk, (uint8_t)c->mode);
    int rc = sync_sign(SYNC_AUTH_CTX, tr, sizeof tr, c->sk, sig);
    if (c->mode == KITH_SYNC_REGISTER) {
        x = c->genesis_op;
        xl = c->genesis_op_len;
    } else if (c->mode == KITH_SYNC_JOIN && rc == KITH_OK) {
        /* Proof of the capability, bound to this session like the device's. */
        uint8_t cap_sk[64];
        crypto_sign_seed_keypair(extra, cap_sk, c->cap_seed);
        rc = sync_sign(SYNC_CAP_CTX, tr, sizeof tr, cap_sk, extra + 32);
        sodium_memzero(cap_sk, sizeof cap_sk);
        x = extra;
        xl = sizeof extra;
    } else if (c->lan && c->lan_chain_n) {
        /* PROTOCOL.md 13.3: the count of our chain's ops, which follow as
         * MEMBER_UPDATE frames. */
        uint32_t n = (uint32_t)c->lan_chain_n;
        extra[0] = (uint8_t)(n >> 24);
        extra[1] = (uint8_t)(n >> 16);
        extra[2] = (uint8_t)(n >> 8);
        extra[3] = (uint8_t)n;
        x = extra;
        xl = 4;
    }
    if (rc) {
        fail(c, SYNC_ST_INTERNAL, "cannot sign the challenge: %s", kith_strerror(rc));
        return;
    }
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_AUTH);
    sb_raw(&b, c->ws_id, 16);
    sb_raw(&b, c->pk, 32);
    sb_u8(&b, (uint8_t)c->mode);
    sb_raw(&b, sig, 64);
    sb_bytes(&b, x, xl);
    if (send_frame(c, &b) != KITH_OK) {
        fail(c, SYNC_ST_INTERNAL, "out of memory");
        return;
    }
    for (size_t pos = 0; c->lan && c->lan_chain_n && pos + 4 <= c->lan_chain_len;) {
        size_t n = get_u32(c->lan_chain + pos);
        sb_init(&b);
        sync_frame_begin(&b, SYNC_MEMBER_UPDATE);
        sb_bytes(&b, c->lan_chain + pos + 4, n);
        if (send_frame(c, &b) != KITH_OK) {
            fail(c, SYNC_ST_INTERNAL, "out of memory");
            return;
        }
        pos += 4 + n;
    }
}

/* Keeps the bytes of an op applied to c->members (kith_sync_client_chain). */
static void chain_add(kith_sync_client *c, const uint8_t *op, size_t len)
{
    sb_u32(&c->chain, (uint32_t)len);
    sb_raw(&c->chain, op, len);
    c->chain_n++;
}

static void become_ready(kith_sync_client *c, int role)
{
    c->state = KITH_SYNC_READY;
    if (c->cb_.ready)
        c->cb_.ready(c->ud, c, role, c->members, c->wrapped, c->wrapped_len);
}

/* Verifies the chain the hub sent and the role it claims. */
static int load_chain(kith_sync_client *c, const struct sync_msg *m)
{
    kith_members *mm = NULL;
    int rc = kith_members_new(c->ws_id, &mm);
    size_t pos = 0, len;
    const uint8_t *op;
    while (rc == KITH_OK && sync_list_next(&m->u.welcome.ops, &pos, &op, &len))
        rc = kith_members_apply(mm, op, len);
    if (rc) {
        set_err(c, "hub sent a membership chain that does not verify: %s",
                mm ? kith_members_errmsg(mm) : kith_strerror(rc));
        kith_members_free(mm);
        return rc;
    }
    if (c->anchored &&
        (kith_members_length(mm) == 0 || memcmp(kith_members_genesis(mm), c->genesis, 32) != 0)) {
        set_err(c, "hub sent the chain of another workspace (genesis differs)");
        kith_members_free(mm);
        return KITH_EAUTH;
    }
    kith_members_free(c->members);
    c->members = mm;
    sb_release(&c->chain);
    sb_init(&c->chain);
    c->chain_n = 0;
    pos = 0;
    while (sync_list_next(&m->u.welcome.ops, &pos, &op, &len))
        chain_add(c, op, len);
    return KITH_OK;
}

/* A LAN peer's proof of identity (PROTOCOL.md 13.2): its signature over
 * our challenge's nonce and this session's binding, with the LAN context. */
static void on_peer_auth(kith_sync_client *c, const struct sync_msg *m)
{
    uint8_t tr[113];
    sync_auth_transcript(tr, c->nonce, c->cb, c->ws_id, m->u.auth.device_pk, 0);
    if (c->peer_ok || memcmp(m->u.auth.ws_id, c->ws_id, 16) != 0 || m->u.auth.mode != 0 ||
        m->u.auth.extra_len != 0 || memcmp(m->u.auth.device_pk, c->peer_pk, 32) != 0) {
        fail(c, SYNC_ST_BAD_AUTH, "LAN peer is not the device its beacon named");
        return;
    }
    if (sync_verify(SYNC_LAN_AUTH_CTX, tr, sizeof tr, c->peer_pk, m->u.auth.sig) != KITH_OK) {
        fail(c, SYNC_ST_BAD_AUTH, "LAN peer's authentication signature does not verify");
        return;
    }
    c->peer_ok = 1;
}

static void on_welcome(kith_sync_client *c, const struct sync_msg *m)
{
    if (c->lan) {
        /* The peer's chain, if it sent one, verified op by op here; the
         * caller decides whether to adopt it (PROTOCOL.md 13.3). */
        if (!c->peer_ok) {
            fail(c, SYNC_ST_BAD_AUTH, "LAN peer did not prove its identity");
            return;
        }
        if (m->u.welcome.ops.n && load_chain(c, m) != KITH_OK) {
            fail(c, SYNC_ST_INVALID, "LAN peer's chain: %s", c->err);
            return;
        }
        become_ready(c, m->u.welcome.role);
        return;
    }
    if (load_chain(c, m) != KITH_OK) {
        fail(c, SYNC_ST_INVALID, "%s", c->err);
        return;
    }
    int role = m->u.welcome.role;
    kith_free(c->wrapped);
    c->wrapped = NULL;
    c->wrapped_len = m->u.welcome.wrapped_len;
    if (c->wrapped_len) {
        c->wrapped = kith_malloc(c->wrapped_len);
        if (!c->wrapped) {
            fail(c, SYNC_ST_INTERNAL, "out of memory");
            return;
        }
        memcpy(c->wrapped, m->u.welcome.wrapped, c->wrapped_len);
    }
    if (c->mode != KITH_SYNC_JOIN) {
        if (kith_members_role(c->members, c->pk) != role) {
            fail(c, SYNC_ST_INVALID, "hub claims role %s that the chain does not give",
                 kith_role_name(role));
            return;
        }
        become_ready(c, role);
        return;
    }
    uint8_t cap_pk[32];
    int irole;
    uint64_t exp;
    kith_invite_cap_pk(c->cap_seed, cap_pk);
    if (kith_members_invite(c->members, cap_pk, &irole, &exp) != KITH_OK || irole != role) {
        fail(c, SYNC_ST_INVALID, "the chain holds no matching invite");
        return;
    }
    kith_free(c->join_op);
    int rc = kith_member_op_join(c->members, c->sk, c->cap_seed, (uint64_t)now_ms(), &c->join_op,
                                 &c->join_op_len);
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_MEMBER_OP);
    sb_bytes(&b, c->join_op, c->join_op_len);
    sb_bytes(&b, NULL, 0);
    if (rc || send_frame(c, &b) != KITH_OK)
        fail(c, SYNC_ST_INTERNAL, "cannot make the join op");
}

/* ---- membership after ready ------------------------------------------------------------------ */

static void on_member_result(kith_sync_client *c, const struct sync_msg *m)
{
    unsigned st = m->u.member_result.status;
    char text[SYNC_TEXT_MAX + 1];
    snprintf(text, sizeof text, "%.*s", (int)m->u.member_result.text_len,
             (const char *)m->u.member_result.text);
    if (c->state == KITH_SYNC_AUTHENTICATING && c->join_op) {
        if (st != SYNC_ST_OK || kith_members_apply(c->members, c->join_op, c->join_op_len)) {
            fail(c, SYNC_ST_INVALID, "join refused: %s", text);
            return;
        }
        chain_add(c, c->join_op, c->join_op_len);
        become_ready(c, kith_members_role(c->members, c->pk));
        return;
    }
    struct pending_op *p = c->pend;
    if (!p) {
        fail(c, SYNC_ST_BAD_STATE, "member result without a pending op");
        return;
    }
    c->pend = p->next;
    if (!c->pend)
        c->pend_tail = NULL;
    int err = sync_status_err(st);
    if (st == SYNC_ST_OK && p->len && kith_members_apply(c->members, p->op, p->len) != KITH_OK) {
        kith_free(p);
        fail(c, SYNC_ST_INVALID, "hub accepted an op that does not verify here");
        return;
    }
    if (st == SYNC_ST_OK && p->len)
        chain_add(c, p->op, p->len);
    kith_free(p);
    if (c->cb_.member_op)
        c->cb_.member_op(c->ud, c,
                         st == SYNC_ST_OK ? KITH_OK
                         : err            ? err
                                          : KITH_EINVAL,
                         text, c->members);
}

static void on_member_update(kith_sync_client *c, const struct sync_msg *m)
{
    if (kith_members_apply(c->members, m->u.member_update.op, m->u.member_update.op_len)) {
        fail(c, SYNC_ST_INVALID, "hub relayed a membership op that does not verify: %s",
             kith_members_errmsg(c->members));
        return;
    }
    chain_add(c, m->u.member_update.op, m->u.member_update.op_len);
    if (c->cb_.member_op)
        c->cb_.member_op(c->ud, c, KITH_OK, "", c->members);
}

/* ---- frames ------------------------------------------------------------------------------------
 */

static void deliver_vv(kith_sync_client *c, const uint8_t *e, uint32_t n, const uint8_t *blob,
                       size_t len, int snapshot)
{
    kith_vv *vv = NULL;
    if (sync_vv_from_wire(e, n, &vv) != KITH_OK) {
        fail(c, SYNC_ST_INTERNAL, "out of memory");
        return;
    }
    if (snapshot && c->cb_.snapshot)
        c->cb_.snapshot(c->ud, c, vv, blob, len);
    else if (!snapshot && c->cb_.hub_vv)
        c->cb_.hub_vv(c->ud, c, vv);
    kith_vv_free(vv);
}

static void on_ready_frame(kith_sync_client *c, const struct sync_msg *m)
{
    char text[SYNC_TEXT_MAX + 1];
    if (c->lan && (m->type == SYNC_MEMBER_RESULT || m->type == SYNC_MEMBER_UPDATE ||
                   m->type == SYNC_SNAPSHOT)) {
        /* Membership and snapshots come from a hub, which orders them. */
        fail(c, SYNC_ST_BAD_STATE, "unexpected message type 0x%02x from a LAN peer", m->type);
        return;
    }
    switch (m->type) {
    case SYNC_HELLO_REPLY:
        deliver_vv(c, m->u.hello_reply.vv, m->u.hello_reply.n, NULL, 0, 0);
        return;
    case SYNC_SNAPSHOT:
        deliver_vv(c, m->u.snapshot.vv, m->u.snapshot.n, m->u.snapshot.blob, m->u.snapshot.len, 1);
        return;
    case SYNC_BLOB:
        if (c->cb_.blob)
            c->cb_.blob(c->ud, c, m->u.blob.blob, m->u.blob.len);
        return;
    case SYNC_CAUGHT_UP:
        if (c->cb_.caught_up)
            c->cb_.caught_up(c->ud, c);
        return;
    case SYNC_PUSH_RESULT:
        snprintf(text, sizeof text, "%.*s", (int)m->u.push_result.text_len,
                 (const char *)m->u.push_result.text);
        if (c->cb_.push_result)
            c->cb_.push_result(c->ud, c, m->u.push_result.author, m->u.push_result.seq,
                               m->u.push_result.status == SYNC_ST_OK ||
                                       m->u.push_result.status == SYNC_ST_DUPLICATE
                                   ? KITH_OK
                                   : sync_status_err(m->u.push_result.status),
                               text);
        return;
    case SYNC_MEMBER_RESULT:
        on_member_result(c, m);
        return;
    case SYNC_MEMBER_UPDATE:
        on_member_update(c, m);
        return;
    default:
        fail(c, SYNC_ST_BAD_STATE, "unexpected message type 0x%02x from the hub", m->type);
    }
}

static void on_frame(kith_sync_client *c)
{
    struct sync_msg m;
    const char *why = NULL;
    int rc = sync_frame_decode(c->peer.rx, c->peer.rx_len, &m, &why);
    if (rc == KITH_EVERSION) {
        fail(c, SYNC_ST_VERSION, "hub speaks protocol version %u; this client speaks %u", m.version,
             SYNC_VERSION);
        return;
    }
    if (rc) {
        fail(c, SYNC_ST_MALFORMED, "malformed frame from the hub: %s", why);
        return;
    }
    if (m.type == SYNC_ERROR) {
        set_err(c, "%s refused: %.*s (%s)", c->lan ? "LAN peer" : "hub", (int)m.u.error.text_len,
                (const char *)m.u.error.text, sync_status_name(m.u.error.code));
        kith_log(KITH_LOG_WARN, "sync: %s", c->err);
        c->peer.close_after = 1;
        lws_callback_on_writable(c->wsi);
        return;
    }
    if (c->state == KITH_SYNC_READY) {
        on_ready_frame(c, &m);
    } else if (m.type == SYNC_CHALLENGE) {
        on_challenge(c, &m);
    } else if (m.type == SYNC_AUTH && c->lan && c->state == KITH_SYNC_AUTHENTICATING) {
        on_peer_auth(c, &m);
    } else if (m.type == SYNC_WELCOME) {
        on_welcome(c, &m);
    } else if (m.type == SYNC_MEMBER_RESULT && c->join_op) {
        on_member_result(c, &m);
    } else {
        fail(c, SYNC_ST_BAD_STATE, "unexpected message type 0x%02x during the handshake", m.type);
    }
}

static int client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    kith_sync_client *c = lws_get_opaque_user_data(wsi);
    int r;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            if (!c->err[0]) /* keep the reason when we refused the hub ourselves */
                set_err(c, "cannot connect to the hub: %s",
                        in ? (const char *)in : "unknown error");
            c->wsi = NULL;
            report_closed(c, KITH_ENET);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        return c ? on_established(c) : -1;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c)
            return -1;
        if (c->peer.close_after)
            return 0;
        r = sync_peer_rx(&c->peer, wsi, in, len);
        if (r < 0)
            fail(c, SYNC_ST_MALFORMED, "oversized or text message from the hub");
        else if (r == 1)
            on_frame(c);
        if (r != 0)
            sync_peer_rx_done(&c->peer);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? sync_peer_write(&c->peer, wsi) : -1;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c && c->wsi == wsi) {
            c->wsi = NULL;
            if (!c->err[0])
                set_err(c, "connection closed");
            report_closed(c, c->user_closed ? KITH_OK : KITH_ENET);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- loop --------------------------------------------------------------------------------------
 */

int kith_sync_loop_new(const kith_sync_loop_opts *opts, kith_sync_loop **out)
{
    *out = NULL;
    if (opts && opts->size < sizeof *opts)
        return KITH_EINVAL;
    if (sync_sodium_init())
        return KITH_EIO;
    kith_sync_loop *l = kith_calloc(1, sizeof *l);
    if (!l)
        return KITH_ENOMEM;
    sync_lws_logging();
    l->protocols[0] = (struct lws_protocols){
        .name = SYNC_WS_PROTOCOL,
        .callback = client_callback,
        .rx_buffer_size = 65536,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {opts ? opts->uv_loop : NULL};
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (loops[0]) {
        info.options |= LWS_SERVER_OPTION_LIBUV;
        info.foreign_loops = loops;
        l->uv = 1;
        l->uv_loop = loops[0];
    }
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = l->protocols;
    info.user = l;
    info.pcontext = &l->ctx;
    info.gid = -1;
    info.uid = -1;
    info.client_ssl_ca_filepath = opts ? opts->ca_file : NULL;
    info.ssl_client_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
    info.pt_serv_buf_size = 65536;
    l->ctx = lws_create_context(&info);
    if (!l->ctx) {
        kith_free(l);
        return KITH_EIO;
    }
    *out = l;
    return KITH_OK;
}

static void loop_timeout(lws_sorted_usec_list_t *sul)
{
    kith_sync_loop *l = lws_container_of(sul, kith_sync_loop, sul);
    l->brk = 1;
    /* lws may run a ripe timer at the start of lws_service and then poll
     * until its next own timer (tens of seconds): wake that poll. */
    lws_cancel_service(l->ctx);
}

int kith_sync_loop_run(kith_sync_loop *l, int timeout_ms)
{
    if (l->uv)
        return KITH_EINVAL; /* the caller's uv_run drives it */
    l->brk = 0;
    lws_sul_schedule(l->ctx, 0, &l->sul, loop_timeout, (lws_usec_t)timeout_ms * 1000);
    while (!l->brk)
        if (lws_service(l->ctx, 0) < 0)
            break;
    lws_sul_cancel(&l->sul);
    return KITH_OK;
}

struct lws_context *sync_loop_context(kith_sync_loop *l)
{
    return l->ctx;
}

void kith_sync_loop_break(kith_sync_loop *l)
{
    l->brk = 1;
    lws_cancel_service(l->ctx);
}

void kith_sync_loop_free(kith_sync_loop *l)
{
    if (!l)
        return;
    lws_sul_cancel(&l->sul);
    if (!l->uv) {
        lws_context_destroy(l->ctx);
        kith_free(l);
        return;
    }
    /* On a foreign libuv loop libwebsockets closes its handles
     * asynchronously and finishes the destruction from their close
     * callbacks, then clears l->ctx (info.pcontext): run the loop until then. */
    lws_context_destroy(l->ctx);
    for (int i = 0; i < 1000 && l->ctx; i++)
        uv_run(l->uv_loop, UV_RUN_NOWAIT);
    if (l->ctx) {
        /* libwebsockets 4.1.6 does not get there on a foreign loop: a second
         * destroy frees what it can; its client SSL_CTX stays allocated
         * (once per loop, see tests/unit/sync_uvloop.c). */
        kith_log(KITH_LOG_DEBUG, "sync: libwebsockets did not finish closing on the uv loop");
        lws_context_destroy(l->ctx);
    }
    kith_free(l);
}

/* ---- client -------------------------------------------------------------------------------------
 */

static int copy_bytes(uint8_t **dst, const uint8_t *src, size_t n)
{
    *dst = kith_malloc(n ? n : 1);
    if (!*dst)
        return KITH_ENOMEM;
    memcpy(*dst, src, n);
    return KITH_OK;
}

int kith_sync_client_new(kith_sync_loop *loop, const kith_sync_client_opts *o,
                         kith_sync_client **out)
{
    *out = NULL;
    if (!loop || !o || o->size < sizeof *o || !o->url || !o->device_sk ||
        (o->mode == KITH_SYNC_REGISTER && !o->genesis_op) ||
        (o->mode == KITH_SYNC_JOIN && !o->cap_seed) || o->mode > KITH_SYNC_JOIN)
        return KITH_EINVAL;
    char url[KITH_INVITE_URL_MAX + 1];
    const char *prot, *host, *path;
    int port;
    size_t ul = strlen(o->url);
    if (ul > KITH_INVITE_URL_MAX)
        return KITH_EINVAL;
    memcpy(url, o->url, ul + 1); /* lws_parse_uri cuts its input up */
    if (lws_parse_uri(url, &prot, &host, &port, &path) || strcmp(prot, "wss") != 0)
        return KITH_EINVAL;
    char fullpath[KITH_INVITE_URL_MAX + 2];
    snprintf(fullpath, sizeof fullpath, "/%s", path);

    kith_sync_client *c = kith_calloc(1, sizeof *c);
    if (!c)
        return KITH_ENOMEM;
    c->loop = loop;
    c->mode = o->mode;
    c->sk = o->device_sk;
    memcpy(c->pk, o->device_sk + 32, 32);
    memcpy(c->ws_id, o->ws_id, 16);
    c->cb_ = o->cb;
    c->ud = o->ud;
    c->state = KITH_SYNC_CONNECTING;
    if (o->fingerprint) {
        c->pinned = 1;
        memcpy(c->fp, o->fingerprint, 32);
    }
    if (o->genesis) {
        c->anchored = 1;
        memcpy(c->genesis, o->genesis, 32);
    }
    if (o->peer_device) {
        c->lan = 1;
        memcpy(c->peer_pk, o->peer_device, 32);
        /* Our chain, to send after AUTH: whole items only. */
        for (size_t pos = 0; o->lan_chain && pos + 4 <= o->lan_chain_len;) {
            size_t n = get_u32(o->lan_chain + pos);
            if (n > SYNC_OP_MAX || n > o->lan_chain_len - pos - 4)
                break;
            pos += 4 + n;
            c->lan_chain_len = pos;
            c->lan_chain_n++;
        }
        if (c->lan_chain_n && copy_bytes(&c->lan_chain, o->lan_chain, c->lan_chain_len)) {
            kith_sync_client_free(c);
            return KITH_ENOMEM;
        }
    }
    if (o->cap_seed)
        memcpy(c->cap_seed, o->cap_seed, 32);
    if (o->genesis_op && copy_bytes(&c->genesis_op, o->genesis_op, o->genesis_op_len)) {
        kith_sync_client_free(c);
        return KITH_ENOMEM;
    }
    c->genesis_op_len = o->genesis_op_len;

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = loop->ctx;
    ci.address = host;
    ci.port = port;
    ci.path = fullpath;
    ci.host = host;
    ci.origin = host;
    ci.protocol = SYNC_WS_PROTOCOL;
    ci.ssl_connection = LCCSCF_USE_SSL;
    if (c->pinned) /* the fingerprint check in on_established replaces CA checks */
        ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                             LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    /* A failure inside the call must not run the closed callback on a
     * client the caller has not received yet. */
    c->starting = 1;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    c->starting = 0;
    if (!wsi || c->state == KITH_SYNC_CLOSED) {
        c->wsi = NULL;
        kith_log(KITH_LOG_WARN, "sync: cannot connect to '%s': %s", o->url,
                 c->err[0] ? c->err : "connection failed");
        kith_sync_client_free(c);
        return KITH_ENET;
    }
    *out = c;
    return KITH_OK;
}

int kith_sync_client_hello(kith_sync_client *c, const kith_vv *held, int want_snapshot)
{
    if (c->state != KITH_SYNC_READY)
        return KITH_EINVAL;
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_HELLO);
    sb_u8(&b, want_snapshot ? SYNC_HELLO_WANT_SNAPSHOT : 0);
    sb_vv(&b, held);
    return send_frame(c, &b);
}

int kith_sync_client_push(kith_sync_client *c, const uint8_t *blob, size_t len)
{
    if (c->state != KITH_SYNC_READY)
        return KITH_EINVAL;
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_PUSH);
    sb_bytes(&b, blob, len);
    return send_frame(c, &b);
}

/* MEMBER_OP, or KEYS_PUT when @op is NULL (its answer is a MEMBER_RESULT
 * too; the pending entry has no op to apply). */
static int member_frame(kith_sync_client *c, const uint8_t *op, size_t len, const uint8_t *wrapped,
                        size_t wrapped_len)
{
    if (c->state != KITH_SYNC_READY || len > SYNC_OP_MAX || wrapped_len > SYNC_WRAP_MAX)
        return KITH_EINVAL;
    struct pending_op *p = kith_malloc(sizeof *p + len);
    if (!p)
        return KITH_ENOMEM;
    p->next = NULL;
    p->len = len;
    /* Not memcpy(.., NULL, 0): the compiler may then assume op != NULL. */
    if (len)
        memcpy(p->op, op, len);
    struct sbuf b;
    sb_init(&b);
    if (len) {
        sync_frame_begin(&b, SYNC_MEMBER_OP);
        sb_bytes(&b, op, len);
    } else {
        sync_frame_begin(&b, SYNC_KEYS_PUT);
    }
    sb_bytes(&b, wrapped, wrapped_len);
    int rc = send_frame(c, &b);
    if (rc) {
        kith_free(p);
        return rc;
    }
    if (c->pend_tail)
        c->pend_tail->next = p;
    else
        c->pend = p;
    c->pend_tail = p;
    return KITH_OK;
}

int kith_sync_client_member_op(kith_sync_client *c, const uint8_t *op, size_t len,
                               const uint8_t *wrapped, size_t wrapped_len)
{
    if (!op || !len)
        return KITH_EINVAL;
    return member_frame(c, op, len, wrapped, wrapped_len);
}

int kith_sync_client_keys_put(kith_sync_client *c, const uint8_t *env, size_t len)
{
    if (!len || len % SYNC_ENV_LEN)
        return KITH_EINVAL;
    return member_frame(c, NULL, 0, env, len);
}

int kith_sync_client_snapshot(kith_sync_client *c, const kith_vv *covers, const uint8_t *blob,
                              size_t len)
{
    if (c->state != KITH_SYNC_READY)
        return KITH_EINVAL;
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_SNAPSHOT_PUT);
    sb_vv(&b, covers);
    sb_bytes(&b, blob, len);
    return send_frame(c, &b);
}

int kith_sync_client_state(const kith_sync_client *c)
{
    return c->state;
}

const kith_members *kith_sync_client_members(const kith_sync_client *c)
{
    return c->state == KITH_SYNC_READY ? c->members : NULL;
}

const uint8_t *kith_sync_client_chain(const kith_sync_client *c, size_t *len, size_t *n)
{
    int ok = c->state == KITH_SYNC_READY && c->members && !c->chain.err && c->chain_n;
    *len = ok ? c->chain.len : 0;
    if (n)
        *n = ok ? c->chain_n : 0;
    return ok ? c->chain.p : NULL;
}

const char *kith_sync_client_errmsg(const kith_sync_client *c)
{
    return c->err;
}

void kith_sync_client_close(kith_sync_client *c)
{
    if (!c->wsi || c->peer.close_after)
        return;
    set_err(c, "closed");
    c->user_closed = 1;
    c->peer.close_after = 1;
    lws_callback_on_writable(c->wsi);
}

void kith_sync_client_free(kith_sync_client *c)
{
    if (!c)
        return;
    if (c->wsi) {
        /* The connection outlives us briefly: detach, then let the loop kill it. */
        lws_set_opaque_user_data(c->wsi, NULL);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    sync_peer_release(&c->peer);
    while (c->pend) {
        struct pending_op *p = c->pend;
        c->pend = p->next;
        kith_free(p);
    }
    kith_members_free(c->members);
    sb_release(&c->chain);
    kith_free(c->lan_chain);
    kith_free(c->genesis_op);
    kith_free(c->join_op);
    if (c->wrapped)
        sodium_memzero(c->wrapped, c->wrapped_len);
    kith_free(c->wrapped);
    sodium_memzero(c->cap_seed, sizeof c->cap_seed);
    kith_free(c);
}

/* Tests only (sync_int.h): queues @n raw bytes as one WebSocket message,
 * bypassing the encoder, to show what the hub does with malformed frames. */
int sync_client_send_raw(kith_sync_client *c, const uint8_t *p, size_t n)
{
    if (!c->wsi)
        return KITH_ENET;
    struct sync_txq *q = kith_malloc(sizeof *q);
    uint8_t *buf = kith_malloc(SYNC_PRE + n + 1);
    if (!q || !buf) {
        kith_free(q);
        kith_free(buf);
        return KITH_ENOMEM;
    }
    memcpy(buf + SYNC_PRE, p, n);
    q->next = NULL;
    q->buf = buf;
    q->len = n;
    if (c->peer.tail)
        c->peer.tail->next = q;
    else
        c->peer.head = q;
    c->peer.tail = q;
    c->peer.tx_bytes += n;
    lws_callback_on_writable(c->wsi);
    return KITH_OK;
}
