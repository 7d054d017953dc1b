/*
 * LAN sessions (docs/PROTOCOL.md "LAN", 3): the replica's changes travel
 * directly between members' daemons found by discovery (lan.c), with or
 * without a hub. Each daemon listens (src/sync/lansrv.c, a vhost on the
 * replica's sync loop) and serves its own replica as a hub would: HELLO is
 * answered with this replica's vector and, in causal order, every change the
 * peer lacks (this device's own sealed fresh, others' as the blobs it kept),
 * then CAUGHT_UP, then live BLOBs as changes arrive; PUSHes are applied.
 * Of the two devices of a pair, the one with the smaller device id connects
 * (kith_sync_client with opts.peer_device), so a pair holds one session.
 *
 * Both ends authenticate each other against their own view of the chain
 * (sync.db's members, as last verified from a hub): a device that is not a
 * current member here is refused whichever end it is. What arrives goes
 * through rp_take_blob, as a hub's blobs do: the same checks, the same
 * held-back application, duplicates dropped.
 *
 * Relay: whenever this replica's vector may have grown (a local change, a
 * blob from a hub or a peer), a pass on the next loop turn (kick) sends every
 * session what it lacks, and hubs what LAN peers brought, so changes cross a
 * chain of peers and reach the hub from a device that got them on the LAN.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "replica/lan.h"
#include "replica/replica_int.h"
#include "sync/sync_lan.h"
#include "util/util_int.h"

#define KICK_DELAY_MS 2 /* coalesces a burst of blobs into one pass */

struct lpeer {
    struct lpeer *next;
    struct rp_lan *L;
    int outgoing;
    uint8_t device[32];
    char hex[17]; /* first 16 hex digits of the device id, for log lines */
    char addr[48];
    kith_sync_client *c;  /* outgoing */
    kith_sync_session *s; /* incoming; NULL once closed */
    int ready, caught_up, got_vv, closed, role;
    int pushes_out;
    kith_vv *known; /* what the peer holds, as far as we know */
    int64_t since_ms, last_sync_ms;
    size_t pulled, pushed;
};

struct rp_lan {
    kith_replica *r;
    kith_sync_listener *lis;
    struct lpeer *peers;
    uv_timer_t *kick;
    int in_kick, from_lan, closing;
};

static void kick_soon(struct rp_lan *L);

/* What the state file calls online: a hub connection is up (live.c's rule). */
static int hubs_online(const kith_replica *r)
{
    int online = 0;
    for (const struct rconn *k = r->conns; k; k = k->next)
        online |= k->ready && !k->closed;
    return online;
}

/* ---- membership, as this device last verified it ----------------------------------------- */

static int member_role(kith_replica *r, const uint8_t pk[32])
{
    sqlite3_stmt *st = NULL;
    int role = KITH_ROLE_NONE;
    if (!memcmp(pk, r->pk, 32) ||
        sqlite3_prepare_v2(r->db, "SELECT role FROM members WHERE device = ? AND removed = 0", -1,
                           &st, NULL) != SQLITE_OK)
        return KITH_ROLE_NONE;
    sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        role = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return role;
}

/* ---- sending what a peer lacks -----------------------------------------------------------------
 */

struct walk {
    struct lpeer *p;
    uint32_t epoch;
    uint8_t key[32];
    uint8_t skip[8][32]; /* authors whose next blob we lack: later ones would be gaps */
    int nskip;
    int rc;
};

static int send_one(const uint8_t author[32], uint64_t seq, const uint8_t *payload, size_t len,
                    void *ctx)
{
    struct walk *w = ctx;
    struct lpeer *p = w->p;
    kith_replica *r = p->L->r;
    uint8_t *blob = NULL;
    size_t bl = 0;
    for (int i = 0; i < w->nskip; i++)
        if (!memcmp(w->skip[i], author, 32))
            return 0;
    /* As conn.c's push_one: this device's own changes are sealed fresh,
     * another author's go as the blob it signed. */
    int rc;
    if (!memcmp(author, r->pk, 32))
        rc = kith_blob_seal(KITH_BLOB_CHANGE, r->ws_id, r->sk, seq, w->epoch, w->key, payload, len,
                            &blob, &bl);
    else
        rc = rp_blob_get(r, author, seq, &blob, &bl);
    if (rc == KITH_ENOTFOUND) { /* it came inside a snapshot: its author sends it */
        if (w->nskip < 8)
            memcpy(w->skip[w->nskip++], author, 32);
        return 0;
    }
    if (rc == KITH_OK) {
        if (p->outgoing) {
            rc = kith_sync_client_push(p->c, blob, bl);
            p->pushes_out += rc == KITH_OK;
        } else {
            rc = sync_session_blob(p->s, blob, bl);
        }
    }
    if (rc == KITH_OK) {
        p->pushed++;
        if (kith_vv_get(p->known, author) < seq)
            rc = kith_vv_set(p->known, author, seq);
    }
    kith_free(blob);
    w->rc = rc;
    return rc ? 1 : 0;
}

/* Sends @p, in causal order, every change held here that it lacks. */
static int send_missing(struct lpeer *p)
{
    kith_replica *r = p->L->r;
    if (!p->got_vv || p->closed || (p->outgoing && p->role < KITH_ROLE_WRITER))
        return KITH_OK; /* a reader's changes stay with it, as with a hub */
    size_t n = kith_vv_count(p->known);
    kith_ws_vv_entry *e = kith_malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        memcpy(e[i].author, kith_vv_author(p->known, i), 32);
        e[i].seq = kith_vv_seq(p->known, i);
    }
    struct walk w = {.p = p};
    int rc = rp_key_newest(r, &w.epoch, w.key);
    if (rc == KITH_OK)
        rc = kith_ws_changes_since(r->ws, e, n, send_one, &w);
    if (rc == KITH_OK)
        rc = w.rc;
    else if (rc != KITH_ENOTFOUND)
        rp_fail(r, rc, "%s", kith_ws_errmsg(r->ws));
    else
        rc = KITH_OK;
    sodium_memzero(w.key, sizeof w.key);
    kith_free(e);
    return rc;
}

/* A blob from @p: the hub path's checks and application (conn.c). */
static int take(struct lpeer *p, const uint8_t *blob, size_t len)
{
    kith_replica *r = p->L->r;
    kith_blob_info info;
    if (kith_blob_parse(blob, len, &info) == KITH_OK &&
        kith_vv_get(p->known, info.author) < info.seq &&
        kith_vv_set(p->known, info.author, info.seq) != KITH_OK)
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    kith_replica_report rep = {0};
    int rc = rp_take_blob(r, blob, len, &rep);
    if (rc)
        kith_log(KITH_LOG_WARN, "lan: device %s: %s", p->hex, r->err);
    p->pulled += rep.pulled;
    if (rep.pulled) {
        p->L->from_lan = 1;
        kith_log(KITH_LOG_INFO, "lan: applied %zu change%s from device %s", rep.pulled,
                 rep.pulled == 1 ? "" : "s", p->hex);
    }
    kick_soon(p->L);
    return rc;
}

static void synced(struct lpeer *p)
{
    p->last_sync_ms = rp_now_ms();
    rp_state_write(p->L->r, hubs_online(p->L->r));
}

/* ---- peers ------------------------------------------------------------------------------------
 */

static struct lpeer *peer_new(struct rp_lan *L, const uint8_t device[32], const char *addr,
                              int outgoing)
{
    struct lpeer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (kith_vv_new(&p->known) != KITH_OK) {
        free(p);
        return NULL;
    }
    p->L = L;
    p->outgoing = outgoing;
    memcpy(p->device, device, 32);
    sodium_bin2hex(p->hex, sizeof p->hex, device, 8);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    p->since_ms = rp_now_ms();
    p->next = L->peers;
    L->peers = p;
    return p;
}

static void peer_free(struct lpeer *p)
{
    kith_sync_client_free(p->c);
    kith_vv_free(p->known);
    free(p);
}

static void mark_closed(struct lpeer *p, const char *why)
{
    if (p->closed)
        return;
    p->closed = 1;
    kith_log(KITH_LOG_INFO, "lan: session with device %s (%s) ended: %s", p->hex, p->addr, why);
    kick_soon(p->L); /* frees it outside the callbacks of its connection */
}

/* ---- connecting: kith_sync_client callbacks ---------------------------------------------- */

static void c_ready(void *ud, kith_sync_client *c, int role, const kith_members *m,
                    const uint8_t *wrapped, size_t wl)
{
    struct lpeer *p = ud;
    kith_replica *r = p->L->r;
    /* It proved it is the device its beacon named; is that a member here? */
    if (member_role(r, p->device) == KITH_ROLE_NONE) {
        kith_log(KITH_LOG_WARN,
                 "lan: refused device %s (%s): not a current member of this workspace", p->hex,
                 p->addr);
        kith_sync_client_close(c);
        mark_closed(p, "refused");
        return;
    }
    p->ready = 1;
    p->role = role;
    kith_log(KITH_LOG_INFO, "lan: connected to device %s (%s) as %s", p->hex, p->addr,
             kith_role_name(role));
    if (kith_sync_client_hello(c, r->held, 0) != KITH_OK)
        kith_sync_client_close(c);
}

static void c_vv(void *ud, kith_sync_client *c, const kith_vv *peer)
{
    struct lpeer *p = ud;
    int rc = KITH_OK;
    for (size_t i = 0; rc == KITH_OK && i < kith_vv_count(peer); i++)
        if (kith_vv_get(p->known, kith_vv_author(peer, i)) < kith_vv_seq(peer, i))
            rc = kith_vv_set(p->known, kith_vv_author(peer, i), kith_vv_seq(peer, i));
    p->got_vv = 1;
    if (rc == KITH_OK)
        rc = send_missing(p);
    if (rc)
        kith_log(KITH_LOG_WARN, "lan: device %s: %s", p->hex, p->L->r->err);
}

static void c_blob(void *ud, kith_sync_client *c, const uint8_t *blob, size_t len)
{
    take(ud, blob, len);
}

static void c_snapshot(void *ud, kith_sync_client *c, const kith_vv *covers, const uint8_t *blob,
                       size_t len)
{
    /* client.c refuses SNAPSHOT from a LAN peer before this is called */
}

static void c_caught_up(void *ud, kith_sync_client *c)
{
    struct lpeer *p = ud;
    kith_replica *r = p->L->r;
    p->caught_up = 1;
    kith_replica_report rep = {0};
    if (rp_drain(r, &rep) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    p->pulled += rep.pulled;
    kith_log(KITH_LOG_INFO, "lan: in sync with device %s (pulled %zu, pushed %zu)", p->hex,
             p->pulled, p->pushed);
    synced(p);
}

static void c_push_result(void *ud, kith_sync_client *c, const uint8_t author[32], uint64_t seq,
                          int status, const char *text)
{
    struct lpeer *p = ud;
    if (p->pushes_out > 0)
        p->pushes_out--;
    if (status != KITH_OK) {
        kith_log(KITH_LOG_WARN, "lan: device %s refused a change: %s", p->hex, text);
        /* Not there after all: the next pass sends it again. */
        if (kith_vv_get(p->known, author) >= seq && kith_vv_set(p->known, author, seq - 1))
            return;
    }
    if (p->pushes_out == 0 && p->caught_up)
        synced(p);
}

static void c_member_op(void *ud, kith_sync_client *c, int status, const char *text,
                        const kith_members *m)
{
    /* client.c refuses membership frames from a LAN peer */
}

static void c_closed(void *ud, kith_sync_client *c, int err, const char *msg)
{
    mark_closed(ud, msg && *msg ? msg : "closed");
}

/* Connects to a peer found by discovery, unless a session is up. */
void rp_lan_found(kith_replica *r, const uint8_t device[32], const char *ip, uint16_t port,
                  const uint8_t fp[32], int first)
{
    struct rp_lan *L = r->lan;
    if (!L || L->closing || !port || !memcmp(r->pk, device, 32))
        return; /* the same id: this device, or a copy of its folder */
    if (member_role(r, device) == KITH_ROLE_NONE) {
        /* It holds the workspace key (its beacon opened) but is no member
         * in the chain this device verified: a copied key, or a device
         * that joined since this one last saw a hub. Neither end serves it. */
        if (first) {
            char hex[17];
            sodium_bin2hex(hex, sizeof hex, device, 8);
            kith_log(KITH_LOG_WARN,
                     "lan: refused device %s (%s): announces this workspace but is not a "
                     "current member here",
                     hex, ip);
        }
        return;
    }
    if (memcmp(r->pk, device, 32) > 0)
        return; /* the device with the smaller id connects */
    for (struct lpeer *p = L->peers; p; p = p->next)
        if (!memcmp(p->device, device, 32) && !p->closed)
            return;
    struct lpeer *p = peer_new(L, device, ip, 1);
    if (!p)
        return;
    char url[96];
    snprintf(url, sizeof url, "wss://%s:%u", ip, port);
    kith_sync_client_opts o = {.size = sizeof o};
    o.url = url;
    o.fingerprint = fp;
    memcpy(o.ws_id, r->ws_id, 16);
    o.device_sk = r->sk;
    o.mode = KITH_SYNC_MEMBER;
    o.peer_device = device;
    o.cb = (kith_sync_callbacks){c_ready,     c_vv,          c_blob,      c_snapshot,
                                 c_caught_up, c_push_result, c_member_op, c_closed};
    o.ud = p;
    kith_log(KITH_LOG_INFO, "lan: connecting to device %s at %s", p->hex, url + 6);
    if (kith_sync_client_new(r->loop, &o, &p->c) != KITH_OK)
        mark_closed(p, "cannot connect");
}

/* ---- listening: sync_listener callbacks ---------------------------------------------------- */

static int l_admit(void *ud, const uint8_t pk[32], uint32_t *epoch)
{
    struct rp_lan *L = ud;
    uint8_t key[32];
    if (rp_key_newest(L->r, epoch, key) != KITH_OK)
        *epoch = 0;
    sodium_memzero(key, sizeof key);
    return member_role(L->r, pk);
}

static void l_ready(void *ud, kith_sync_session *s, const uint8_t pk[32], int role,
                    const char *addr)
{
    struct lpeer *p = peer_new(ud, pk, addr, 0);
    if (!p) {
        sync_session_refuse(s, 15, "out of memory");
        return;
    }
    p->s = s;
    p->ready = 1;
    p->role = role;
    sync_session_set_user(s, p);
}

static void l_hello(void *ud, kith_sync_session *s, const kith_vv *peer)
{
    struct lpeer *p = sync_session_user(s);
    kith_replica *r = p->L->r;
    kith_vv *now = NULL;
    if (rp_ws_vv(r, &now) == KITH_OK) {
        kith_vv_free(r->held);
        r->held = now;
    }
    int rc = KITH_OK;
    for (size_t i = 0; rc == KITH_OK && i < kith_vv_count(peer); i++)
        rc = kith_vv_set(p->known, kith_vv_author(peer, i), kith_vv_seq(peer, i));
    p->got_vv = 1;
    if (rc == KITH_OK)
        rc = sync_session_hello_reply(s, r->held);
    if (rc == KITH_OK)
        rc = send_missing(p);
    if (rc == KITH_OK)
        rc = sync_session_caught_up(s);
    if (rc) {
        kith_log(KITH_LOG_WARN, "lan: device %s: %s", p->hex, r->err);
        return;
    }
    p->caught_up = 1;
    kith_log(KITH_LOG_INFO, "lan: device %s (%s) caught up (sent %zu)", p->hex, p->addr, p->pushed);
    synced(p);
}

static void l_push(void *ud, kith_sync_session *s, const uint8_t *blob, size_t len)
{
    struct lpeer *p = sync_session_user(s);
    kith_blob_info info;
    memset(&info, 0, sizeof info);
    if (kith_blob_parse(blob, len, &info) != KITH_OK) {
        sync_session_push_result(s, info.author, 0, KITH_ECORRUPT, "malformed blob");
        return;
    }
    int rc = take(p, blob, len);
    sync_session_push_result(s, info.author, info.seq, rc, rc ? p->L->r->err : "");
    if (rc == KITH_OK)
        p->last_sync_ms = rp_now_ms();
}

static void l_closed(void *ud, kith_sync_session *s, const char *why)
{
    struct lpeer *p = sync_session_user(s);
    if (!p)
        return;
    p->s = NULL;
    mark_closed(p, why);
}

/* ---- the pass after changes ------------------------------------------------------------------ */

static void on_kick(uv_timer_t *t)
{
    struct rp_lan *L = t->data;
    kith_replica *r = L->r;
    L->in_kick = 1;
    for (struct lpeer **pp = &L->peers; *pp;) {
        struct lpeer *p = *pp;
        if (p->closed && !p->s) {
            *pp = p->next;
            peer_free(p);
            rp_state_write(r, hubs_online(r));
            continue;
        }
        pp = &p->next;
    }
    if (L->from_lan) {
        /* Changes that came over the LAN: on to the hubs (and the state file). */
        L->from_lan = 0;
        kith_replica_local_changed(r);
    }
    for (struct lpeer *p = L->peers; p; p = p->next)
        if (p->ready && p->got_vv && !p->closed && send_missing(p) != KITH_OK)
            kith_log(KITH_LOG_WARN, "lan: device %s: %s", p->hex, r->err);
    L->in_kick = 0;
}

static void kick_soon(struct rp_lan *L)
{
    if (L->closing || L->in_kick || uv_is_active((uv_handle_t *)L->kick))
        return;
    uv_timer_start(L->kick, on_kick, KICK_DELAY_MS, 0);
}

void rp_lan_changed(kith_replica *r)
{
    if (r && r->lan)
        kick_soon(r->lan);
}

/* ---- lifetime ----------------------------------------------------------------------------------
 */

int rp_lan_open(kith_replica *r, uint16_t *port, uint8_t fp[32])
{
    *port = 0;
    if (r->lan)
        return KITH_EINVAL;
    if (!r->attached || !r->uv_loop)
        return rp_fail(r, KITH_EINVAL, "LAN sessions need a live replica (kith_replica_attach)");
    if (!r->loop) {
        kith_sync_loop_opts lo = {.size = sizeof lo, .uv_loop = r->uv_loop};
        int rc = kith_sync_loop_new(&lo, &r->loop);
        if (rc)
            return rp_fail(r, rc, "cannot start the network: %s", kith_strerror(rc));
    }
    struct rp_lan *L = calloc(1, sizeof *L);
    uv_timer_t *kick = calloc(1, sizeof *kick);
    if (!L || !kick) {
        free(L);
        free(kick);
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    }
    L->r = r;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/.kith/lan", kith_ws_root(r->ws));
    sync_listener_opts o = {.loop = r->loop, .listen = "0.0.0.0:0", .cert_dir = dir};
    memcpy(o.ws_id, r->ws_id, 16);
    o.device_sk = r->sk;
    o.cb = (sync_listener_callbacks){l_admit, l_ready, l_hello, l_push, l_closed};
    o.ud = L;
    int rc = sync_listener_open(&o, &L->lis);
    if (rc) {
        free(L);
        free(kick);
        return rp_fail(r, rc, "cannot listen for LAN peers");
    }
    uv_timer_init(r->uv_loop, kick);
    kick->data = L;
    L->kick = kick;
    r->lan = L;
    *port = (uint16_t)sync_listener_port(L->lis);
    memcpy(fp, sync_listener_fingerprint(L->lis), 32);
    return KITH_OK;
}

static void kick_closed(uv_handle_t *h)
{
    free(h);
}

void rp_lan_close(kith_replica *r)
{
    struct rp_lan *L = r ? r->lan : NULL;
    if (!L)
        return;
    L->closing = 1;
    r->lan = NULL;
    sync_listener_close(L->lis); /* no more listener callbacks */
    while (L->peers) {
        struct lpeer *p = L->peers;
        L->peers = p->next;
        if (p->c && !p->closed)
            kith_sync_client_close(p->c);
        peer_free(p);
    }
    uv_timer_stop(L->kick);
    uv_close((uv_handle_t *)L->kick, kick_closed);
    free(L);
}

size_t rp_lan_connected(const kith_replica *r)
{
    size_t n = 0;
    for (const struct lpeer *p = r->lan ? r->lan->peers : NULL; p; p = p->next)
        n += p->ready && !p->closed;
    return n;
}

void rp_lan_state_json(const kith_replica *r, FILE *f)
{
    fputs(",\"lan\":[", f);
    int first = 1;
    for (const struct lpeer *p = r->lan ? r->lan->peers : NULL; p; p = p->next) {
        if (!p->ready || p->closed)
            continue;
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, p->device, 32);
        fprintf(f,
                "%s{\"device\":\"%s\",\"address\":\"%s\",\"direction\":\"%s\","
                "\"since_ms\":%lld,\"last_sync_ms\":%lld,\"pulled\":%zu,\"pushed\":%zu}",
                first ? "" : ",", hex, p->addr, p->outgoing ? "out" : "in", (long long)p->since_ms,
                (long long)p->last_sync_ms, p->pulled, p->pushed);
        first = 0;
    }
    fputc(']', f);
}
