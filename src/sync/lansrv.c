/*
 * The listening half of a LAN session (sync_lan.h; docs/PROTOCOL.md "LAN").
 * A vhost on the kith_sync_loop's libwebsockets context, so that it runs on
 * the daemon's libuv loop beside the hub clients, with the hub's transport:
 * TLS 1.3 only, WebSocket subprotocol kith-sync-1, the same frames.
 *
 * The handshake is the hub's, plus one frame: after the connecting device's
 * AUTH has verified and the application has admitted it as a current
 * member, the listener sends an AUTH of its own, signed over the same
 * challenge and channel binding with another context string, before
 * WELCOME. A device that is not a member learns nothing, not even which
 * device listens.
 *
 * Chains (PROTOCOL.md 13.3): the connector's AUTH extra may hold a count
 * (u32) of membership ops that follow as MEMBER_UPDATE frames, its chain;
 * the listener collects them (after the AUTH signature verified) and hands
 * them to admit, which may adopt them when they verify and strictly extend
 * its own. WELCOME carries the listener's chain as admit returns it, for the
 * connector to do the same.
 *
 * The listener struct is freed when it is closed and no session still
 * points at it: libwebsockets may deliver a session's CLOSED after
 * sync_listener_close, while it tears the vhost down.
 */
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sync/sync_int.h"
#include "sync/sync_lan.h"
#include "util/util_int.h"

#define LAN_AUTH_TIMEOUT_S 10
#define LAN_TXQ_MAX        (64u << 20) /* as the hub: a peer this far behind reconnects */
#define LAN_CHAIN_MAX      65536       /* ops of a connector's chain */
#define LAN_CHAIN_BYTES    (16u << 20) /* and their bytes */

enum { LS_CHALLENGED = 1, LS_CHAIN, LS_READY };

/* Per connection; libwebsockets allocates it zeroed (per_session_data_size). */
struct kith_sync_session {
    struct kith_sync_session *next, *prev;
    kith_sync_listener *l; /* NULL once the listener closed */
    struct lws *wsi;
    struct sync_peer peer;
    int state, role, counted;
    uint8_t challenge[32], cb[32], pk[32];
    struct sbuf chain; /* LS_CHAIN: the connector's ops so far, each u32 length + bytes */
    uint32_t chain_want, chain_got;
    char addr[48];
    char who[96]; /* "device ab12cd34ef567890 (10.0.0.2)" for log lines */
    void *user;
};

struct kith_sync_listener {
    kith_sync_loop *loop;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    kith_sync_session *sessions;
    uint8_t ws_id[16], pk[32], fp[32];
    const uint8_t *sk;
    int port, closing, refs;
    char *cert, *key;
    sync_listener_callbacks cb;
    void *ud;
};

static void listener_unref(kith_sync_listener *l)
{
    if (--l->refs > 0)
        return;
    kith_free(l->cert);
    kith_free(l->key);
    kith_free(l);
}

static void send_frame(kith_sync_session *s, struct sbuf *b)
{
    if (s->peer.close_after || sync_peer_send(&s->peer, s->wsi, b) != KITH_OK) {
        sb_release(b);
        if (!s->peer.close_after)
            sync_peer_error(&s->peer, s->wsi, SYNC_ST_INTERNAL, "out of memory");
    }
}

void sync_session_refuse(kith_sync_session *s, unsigned code, const char *text)
{
    if (s->peer.close_after)
        return;
    kith_log(KITH_LOG_WARN, "lan: closing %s: %s", s->who, text);
    sync_peer_error(&s->peer, s->wsi, code, text);
}

/* ---- handshake ----------------------------------------------------------------------------- */

static void admit(kith_sync_listener *l, kith_sync_session *s);

static void on_auth(kith_sync_listener *l, kith_sync_session *s, const struct sync_msg *m)
{
    char hex[65];
    uint8_t tr[113];
    memcpy(s->pk, m->u.auth.device_pk, 32);
    sync_hex(s->pk, 32, hex);
    snprintf(s->who, sizeof s->who, "device %.16s (%s)", hex, s->addr);
    if (memcmp(m->u.auth.ws_id, l->ws_id, 16) != 0) {
        sync_session_refuse(s, SYNC_ST_NOT_MEMBER, "refused: not a member of this workspace");
        return;
    }
    sync_auth_transcript(tr, s->challenge, s->cb, l->ws_id, s->pk, m->u.auth.mode);
    if (m->u.auth.mode != SYNC_MODE_MEMBER ||
        (m->u.auth.extra_len != 0 && m->u.auth.extra_len != 4)) {
        sync_session_refuse(s, SYNC_ST_INVALID, "refused: LAN sessions are for members only");
        return;
    }
    if (sync_verify(SYNC_AUTH_CTX, tr, sizeof tr, s->pk, m->u.auth.sig) != KITH_OK) {
        sync_session_refuse(s, SYNC_ST_BAD_AUTH, "refused: bad authentication signature");
        return;
    }
    s->chain_want = m->u.auth.extra_len == 4 ? get_u32(m->u.auth.extra) : 0;
    if (s->chain_want > LAN_CHAIN_MAX) {
        sync_session_refuse(s, SYNC_ST_INVALID, "refused: membership chain too long");
        return;
    }
    if (s->chain_want) {
        s->state = LS_CHAIN; /* its ops follow as MEMBER_UPDATE */
        return;
    }
    admit(l, s);
}

/* The connector's chain, one op per MEMBER_UPDATE, right after its AUTH. */
static void on_chain_op(kith_sync_listener *l, kith_sync_session *s, const struct sync_msg *m)
{
    if (s->chain.len + 4 + m->u.member_update.op_len > LAN_CHAIN_BYTES) {
        sync_session_refuse(s, SYNC_ST_TOO_BIG, "refused: membership chain too large");
        return;
    }
    sb_u32(&s->chain, (uint32_t)m->u.member_update.op_len);
    sb_raw(&s->chain, m->u.member_update.op, m->u.member_update.op_len);
    if (s->chain.err) {
        sync_session_refuse(s, SYNC_ST_INTERNAL, "out of memory");
        return;
    }
    if (++s->chain_got == s->chain_want)
        admit(l, s);
}

/* Authenticated (and its chain, if any, received): a member here? */
static void admit(kith_sync_listener *l, kith_sync_session *s)
{
    uint8_t tr[113], sig[64];
    uint32_t epoch = 0;
    int role = KITH_ROLE_NONE;
    uint8_t *mine = NULL;
    size_t mine_len = 0;
    if (memcmp(s->pk, l->pk, 32) != 0 && l->cb.admit)
        role = l->cb.admit(l->ud, s->pk, s->chain.p, s->chain_got ? s->chain.len : 0, &epoch, &mine,
                           &mine_len);
    sb_release(&s->chain);
    sb_init(&s->chain);
    if (role == KITH_ROLE_NONE) {
        kith_free(mine);
        sync_session_refuse(s, SYNC_ST_NOT_MEMBER,
                            "refused: not a current member of this workspace");
        return;
    }
    /* Our proof: the same challenge and binding, our key, our context. */
    sync_auth_transcript(tr, s->challenge, s->cb, l->ws_id, l->pk, SYNC_MODE_MEMBER);
    if (sync_sign(SYNC_LAN_AUTH_CTX, tr, sizeof tr, l->sk, sig) != KITH_OK) {
        kith_free(mine);
        sync_session_refuse(s, SYNC_ST_INTERNAL, "cannot sign");
        return;
    }
    uint32_t nops = 0;
    for (size_t pos = 0; mine && pos + 4 <= mine_len; nops++)
        pos += 4 + (size_t)get_u32(mine + pos);
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_AUTH);
    sb_raw(&b, l->ws_id, 16);
    sb_raw(&b, l->pk, 32);
    sb_u8(&b, SYNC_MODE_MEMBER);
    sb_raw(&b, sig, 64);
    sb_bytes(&b, NULL, 0);
    send_frame(s, &b);
    sb_init(&b);
    sync_frame_begin(&b, SYNC_WELCOME);
    sb_u8(&b, (uint8_t)role);
    sb_u32(&b, epoch);
    sb_u32(&b, nops); /* our chain (PROTOCOL.md 13.3) */
    sb_raw(&b, mine, nops ? mine_len : 0);
    sb_bytes(&b, NULL, 0);
    kith_free(mine);
    send_frame(s, &b);
    s->state = LS_READY;
    s->role = role;
    lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
    kith_log(KITH_LOG_INFO, "lan: %s connected as %s", s->who, kith_role_name(role));
    if (l->cb.ready)
        l->cb.ready(l->ud, s, s->pk, role, s->addr);
}

static void on_push(kith_sync_listener *l, kith_sync_session *s, const struct sync_msg *m)
{
    static const uint8_t zero[32];
    kith_blob_info info;
    if (kith_blob_parse(m->u.blob.blob, m->u.blob.len, &info) != KITH_OK) {
        sync_session_push_result(s, zero, 0, KITH_ECORRUPT, "malformed blob");
        return;
    }
    if (s->role < KITH_ROLE_WRITER) {
        kith_log(KITH_LOG_WARN, "lan: %s: a reader pushed; refused", s->who);
        sync_session_push_result(s, info.author, info.seq, KITH_EPERM, "readers may not push");
        return;
    }
    if (l->cb.push)
        l->cb.push(l->ud, s, m->u.blob.blob, m->u.blob.len);
}

static void on_frame(kith_sync_listener *l, kith_sync_session *s)
{
    struct sync_msg m;
    const char *why = NULL;
    char msg[200];
    int rc = sync_frame_decode(s->peer.rx, s->peer.rx_len, &m, &why);
    if (rc == KITH_EVERSION) {
        snprintf(msg, sizeof msg, "protocol version %u not supported; this device speaks %u",
                 m.version, SYNC_VERSION);
        sync_session_refuse(s, SYNC_ST_VERSION, msg);
        return;
    }
    if (rc) {
        snprintf(msg, sizeof msg, "malformed frame (type 0x%02x): %s", m.type, why);
        sync_session_refuse(s, SYNC_ST_MALFORMED, msg);
        return;
    }
    if (m.type == SYNC_ERROR) {
        kith_log(KITH_LOG_WARN, "lan: %s says: %s (%.*s)", s->who, sync_status_name(m.u.error.code),
                 (int)m.u.error.text_len, (const char *)m.u.error.text);
        s->peer.close_after = 1;
        lws_callback_on_writable(s->wsi);
        return;
    }
    if (s->state == LS_CHALLENGED && m.type == SYNC_AUTH) {
        on_auth(l, s, &m);
        return;
    }
    if (s->state == LS_CHAIN && m.type == SYNC_MEMBER_UPDATE) {
        on_chain_op(l, s, &m);
        return;
    }
    if (s->state == LS_READY && m.type == SYNC_HELLO) {
        kith_vv *vv = NULL;
        if (sync_vv_from_wire(m.u.hello.vv, m.u.hello.n, &vv) != KITH_OK) {
            sync_session_refuse(s, SYNC_ST_INTERNAL, "out of memory");
            return;
        }
        if (l->cb.hello)
            l->cb.hello(l->ud, s, vv);
        kith_vv_free(vv);
        return;
    }
    if (s->state == LS_READY && m.type == SYNC_PUSH) {
        on_push(l, s, &m);
        return;
    }
    /* Membership, snapshots and keys go through a hub, which orders them
     * (a chain crosses a LAN session only in the handshake). */
    snprintf(msg, sizeof msg, "unexpected message type 0x%02x on a LAN session", m.type);
    sync_session_refuse(s, SYNC_ST_BAD_STATE, msg);
}

/* ---- libwebsockets --------------------------------------------------------------------------- */

static int on_open(kith_sync_listener *l, kith_sync_session *s, struct lws *wsi)
{
    memset(s, 0, sizeof *s);
    s->wsi = wsi;
    lws_get_peer_simple(wsi, s->addr, sizeof s->addr);
    if (!strncmp(s->addr, "::ffff:", 7)) /* an IPv4 peer on the dual-stack socket */
        memmove(s->addr, s->addr + 7, strlen(s->addr + 7) + 1);
    snprintf(s->who, sizeof s->who, "connection from %s", s->addr);
    if (l->closing)
        return -1;
    if (sync_tls_binding(lws_get_ssl(wsi), s->cb) != KITH_OK) {
        kith_log(KITH_LOG_WARN, "lan: closing %s: no TLS 1.3 channel binding", s->who);
        return -1;
    }
    s->l = l;
    l->refs++;
    s->counted = 1;
    s->next = l->sessions;
    if (l->sessions)
        l->sessions->prev = s;
    l->sessions = s;
    s->state = LS_CHALLENGED;
    randombytes_buf(s->challenge, 32);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LAN_AUTH_TIMEOUT_S);
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_CHALLENGE);
    sb_raw(&b, s->challenge, 32);
    send_frame(s, &b);
    return 0;
}

static void on_closed(kith_sync_session *s)
{
    kith_sync_listener *l = s->l;
    int was_ready = s->state == LS_READY;
    s->state = 0;
    sync_peer_release(&s->peer);
    sb_release(&s->chain);
    if (!s->counted)
        return;
    s->counted = 0;
    if (!l)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->l = NULL;
    if (was_ready && !l->closing && l->cb.closed)
        l->cb.closed(l->ud, s, "connection closed");
    listener_unref(l);
}

static int lan_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    kith_sync_listener *l = vh ? lws_vhost_user(vh) : NULL;
    kith_sync_session *s = user;
    int r;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return l && s ? on_open(l, s, wsi) : -1;
    case LWS_CALLBACK_RECEIVE:
        if (!s || !s->state || !s->l || s->peer.close_after)
            return 0; /* refusing: ignore what else comes */
        r = sync_peer_rx(&s->peer, wsi, in, len);
        if (r < 0) {
            sync_session_refuse(s, SYNC_ST_MALFORMED,
                                r == -2 ? "text frame (binary frames only)"
                                        : "message larger than the frame limit");
            sync_peer_rx_done(&s->peer);
            return 0;
        }
        if (r == 1) {
            on_frame(s->l, s);
            sync_peer_rx_done(&s->peer);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!s || !s->state || !s->l)
            return -1;
        return sync_peer_write(&s->peer, wsi);
    case LWS_CALLBACK_CLOSED:
        if (s && s->state)
            on_closed(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static int split_listen(const char *s, char *host, size_t hl, int *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || (size_t)(colon - s) >= hl)
        return KITH_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return KITH_EINVAL;
    *port = (int)p;
    return KITH_OK;
}

int sync_listener_open(const sync_listener_opts *o, kith_sync_listener **out)
{
    char host[64], err[300] = "";
    int port, rc;
    *out = NULL;
    if (!o || !o->loop || !o->device_sk || !o->cert_dir ||
        split_listen(o->listen, host, sizeof host, &port) != KITH_OK)
        return KITH_EINVAL;
    kith_sync_listener *l = kith_calloc(1, sizeof *l);
    if (!l)
        return KITH_ENOMEM;
    l->refs = 1;
    l->loop = o->loop;
    l->sk = o->device_sk;
    memcpy(l->pk, o->device_sk + 32, 32);
    memcpy(l->ws_id, o->ws_id, 16);
    l->cb = o->cb;
    l->ud = o->ud;
    if (mkdir(o->cert_dir, 0700) != 0 && errno != EEXIST) {
        kith_log(KITH_LOG_WARN, "lan: cannot create '%s': %s", o->cert_dir, strerror(errno));
        rc = KITH_EIO;
        goto fail;
    }
    rc = sync_tls_hub_cert(o->cert_dir, NULL, NULL, &l->cert, &l->key, l->fp, err, sizeof err);
    if (rc) {
        kith_log(KITH_LOG_WARN, "lan: %s", err);
        goto fail;
    }
    l->protocols[0] = (struct lws_protocols){
        .name = SYNC_WS_PROTOCOL,
        .callback = lan_callback,
        .per_session_data_size = sizeof(struct kith_sync_session),
        .rx_buffer_size = 65536,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    /* Without it libwebsockets leaves the vhost's TLS off (tls-server.c). */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = port;
    info.iface = host[0] && strcmp(host, "0.0.0.0") != 0 ? host : NULL;
    info.protocols = l->protocols;
    info.vhost_name = "kith-lan";
    info.user = l;
    info.ssl_cert_filepath = l->cert;
    info.ssl_private_key_filepath = l->key;
    /* TLS 1.3 only: the channel binding is defined for it (RFC 9266). */
    info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
    info.pt_serv_buf_size = 65536;
    l->vh = lws_create_vhost(sync_loop_context(o->loop), &info);
    if (!l->vh) {
        kith_log(KITH_LOG_WARN, "lan: cannot listen on %s", o->listen);
        rc = KITH_ENET;
        goto fail;
    }
    l->port = lws_get_vhost_listen_port(l->vh);
    *out = l;
    return KITH_OK;
fail:
    listener_unref(l);
    return rc;
}

int sync_listener_port(const kith_sync_listener *l)
{
    return l->port;
}

const uint8_t *sync_listener_fingerprint(const kith_sync_listener *l)
{
    return l->fp;
}

void sync_listener_close(kith_sync_listener *l)
{
    if (!l || l->closing)
        return;
    l->closing = 1;
    memset(&l->cb, 0, sizeof l->cb);
    /* Each session lets go of the listener now; libwebsockets ends the
     * connections as it destroys the vhost. */
    while (l->sessions) {
        kith_sync_session *s = l->sessions;
        l->sessions = s->next;
        s->next = s->prev = NULL;
        s->l = NULL;
        s->counted = 0;
        sync_peer_release(&s->peer);
        sb_release(&s->chain);
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        l->refs--;
    }
    lws_vhost_destroy(l->vh);
    l->vh = NULL;
    listener_unref(l);
}

/* ---- sessions ---------------------------------------------------------------------------- */

void sync_session_set_user(kith_sync_session *s, void *user)
{
    s->user = user;
}

void *sync_session_user(const kith_sync_session *s)
{
    return s->user;
}

int sync_session_hello_reply(kith_sync_session *s, const kith_vv *held)
{
    if (s->peer.close_after || !s->l)
        return KITH_ENET;
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_HELLO_REPLY);
    sb_vv(&b, held);
    send_frame(s, &b);
    return KITH_OK;
}

int sync_session_blob(kith_sync_session *s, const uint8_t *blob, size_t len)
{
    if (s->peer.close_after || !s->l)
        return KITH_ENET;
    if (s->peer.tx_bytes > LAN_TXQ_MAX) {
        sync_session_refuse(s, SYNC_ST_INTERNAL, "too far behind; reconnect to catch up");
        return KITH_ENET;
    }
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_BLOB);
    sb_bytes(&b, blob, len);
    send_frame(s, &b);
    return KITH_OK;
}

int sync_session_caught_up(kith_sync_session *s)
{
    if (s->peer.close_after || !s->l)
        return KITH_ENET;
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_CAUGHT_UP);
    send_frame(s, &b);
    return KITH_OK;
}

static unsigned status_of(int rc)
{
    switch (rc) {
    case KITH_OK:
        return SYNC_ST_OK;
    case KITH_EPERM:
        return SYNC_ST_FORBIDDEN;
    case KITH_EAUTH:
        return SYNC_ST_BAD_SIGNATURE;
    case KITH_ECORRUPT:
    case KITH_EVERSION:
        return SYNC_ST_MALFORMED;
    case KITH_ETOOBIG:
        return SYNC_ST_TOO_BIG;
    case KITH_EMISSING:
        return SYNC_ST_GAP;
    case KITH_EINVAL:
        return SYNC_ST_INVALID;
    default:
        return SYNC_ST_INTERNAL;
    }
}

int sync_session_push_result(kith_sync_session *s, const uint8_t author[32], uint64_t seq, int rc,
                             const char *text)
{
    if (s->peer.close_after || !s->l)
        return KITH_ENET;
    struct sbuf b;
    size_t tl = strlen(text);
    sb_init(&b);
    sync_frame_begin(&b, SYNC_PUSH_RESULT);
    sb_raw(&b, author, 32);
    sb_u64(&b, seq);
    sb_u16(&b, (uint16_t)status_of(rc));
    sb_bytes(&b, text, tl > SYNC_TEXT_MAX ? SYNC_TEXT_MAX : tl);
    send_frame(s, &b);
    return KITH_OK;
}

size_t sync_session_queued(const kith_sync_session *s)
{
    return s->peer.tx_bytes;
}
