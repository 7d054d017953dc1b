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
 * (sync.db's members, as last verified from a hub or adopted from a peer):
 * a device that is not a current member here is refused whichever end it
 * is. The handshake carries both chains (the connector's after its AUTH,
 * the listener's in WELCOME); each end adopts the other's only when it
 * verifies op by op, has our genesis and strictly extends ours (ours is a
 * byte prefix of it), then checks the peer against what it holds: so a
 * member who joined after this device last saw a hub is admitted, and a
 * chain that forks or is shorter changes nothing (PROTOCOL.md 13.3). What
 * arrives goes through rp_take_blob, as a hub's blobs do: the same checks,
 * the same held-back application, duplicates dropped.
 *
 * One-shot (kith_replica_lan_sync, `kith sync`): the same sessions for a
 * short window on a private loop, each peer found synced once and reported.
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

#define KICK_DELAY_MS      2     /* coalesces a burst of blobs into one pass */
#define RETRY_NONMEMBER_MS 60000 /* a device refused for its chain: not tried again before */
#define REFUSED_MAX        16
#define ONESHOT_IDLE_MS    600 /* an incoming one-shot session quiet this long is done */

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
    int64_t since_ms, last_sync_ms, last_rx_ms;
    size_t pulled, pushed, files;
    size_t need, got; /* one-shot, incoming: pushes its HELLO said it would send, received */
    int reported;     /* one-shot: in the results */
    char why[160];    /* why it closed */
};

struct refused {
    uint8_t device[32];
    int64_t until_ms;
};

struct rp_lan {
    kith_replica *r;
    kith_sync_listener *lis;
    struct lpeer *peers;
    uv_timer_t *kick;
    int in_kick, from_lan, closing;
    struct refused refused[REFUSED_MAX]; /* non-members tried lately (RETRY_NONMEMBER_MS) */
    /* one-shot */
    int oneshot, no_new;
    kith_replica_lan_result *res;
    size_t nres;
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

/* The chain as last verified (from a hub, or adopted from a peer): its ops,
 * each u32 length + bytes, in sync.db's lan_chain (one row). */
static int chain_table(kith_replica *r)
{
    return rp_exec(r, "CREATE TABLE IF NOT EXISTS lan_chain(k INTEGER PRIMARY KEY CHECK (k = 1),"
                      " ops BLOB NOT NULL)");
}

int rp_lan_chain_save(kith_replica *r, const uint8_t *ops, size_t len)
{
    sqlite3_stmt *st = NULL;
    if (!ops || !len)
        return KITH_OK;
    int rc = chain_table(r);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO lan_chain(k, ops) VALUES(1, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: chain: %s", sqlite3_errmsg(r->db));
    sqlite3_bind_blob(st, 1, ops, (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? KITH_OK : KITH_EIO;
    sqlite3_finalize(st);
    return rc ? rp_fail(r, rc, "sync state: chain: %s", sqlite3_errmsg(r->db)) : KITH_OK;
}

/* A copy (kith_malloc'd) of the chain held; KITH_ENOTFOUND when none was stored. */
static int chain_load(kith_replica *r, uint8_t **ops, size_t *len)
{
    sqlite3_stmt *st = NULL;
    *ops = NULL;
    *len = 0;
    int rc = chain_table(r);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(r->db, "SELECT ops FROM lan_chain WHERE k = 1", -1, &st, NULL) !=
        SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: chain: %s", sqlite3_errmsg(r->db));
    rc = KITH_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *ops = kith_malloc(n);
        rc = *ops ? KITH_OK : KITH_ENOMEM;
        if (*ops) {
            memcpy(*ops, sqlite3_column_blob(st, 0), n);
            *len = n;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Verifies @ops (each u32 length + bytes) op by op as one chain of this workspace. */
static int chain_verify(kith_replica *r, const uint8_t *ops, size_t len, kith_members **out,
                        char *why, size_t wl)
{
    kith_members *m = NULL;
    size_t pos = 0, i = 0;
    *out = NULL;
    int rc = kith_members_new(r->ws_id, &m);
    while (rc == KITH_OK && pos < len) {
        size_t n = pos + 4 <= len ? rd32(ops + pos) : 0;
        if (pos + 4 > len || n > len - pos - 4) {
            snprintf(why, wl, "op %zu is cut short", i + 1);
            rc = KITH_ECORRUPT;
            break;
        }
        rc = kith_members_apply(m, ops + pos + 4, n);
        if (rc)
            snprintf(why, wl, "op %zu does not verify: %s", i + 1, kith_members_errmsg(m));
        pos += 4 + n;
        i++;
    }
    if (rc == KITH_OK && !kith_members_length(m)) {
        snprintf(why, wl, "it is empty");
        rc = KITH_ECORRUPT;
    }
    if (rc) {
        kith_members_free(m);
        return rc;
    }
    *out = m;
    return KITH_OK;
}

enum { CH_NONE, CH_SAME, CH_ADOPTED, CH_BEHIND, CH_REFUSED };

static void forget_refusals(struct rp_lan *L)
{
    memset(L->refused, 0, sizeof L->refused);
}

/* A peer's chain (PROTOCOL.md 13.3): adopted when it verifies completely,
 * starts at our genesis and strictly extends the chain held here (which is
 * then a byte prefix of it); a shorter one (a prefix of ours) or a fork is
 * not, and is logged. Whatever happens, the caller then checks the peer
 * against the chain held here. */
static int chain_consider(struct rp_lan *L, const char *who, const uint8_t *ops, size_t len)
{
    kith_replica *r = L->r;
    uint8_t *own = NULL, gen[32];
    size_t own_len = 0, n = 0, pos = 0, same = 0;
    char why[200] = "", hex[65];
    kith_members *theirs = NULL;
    if (!ops || !len)
        return CH_NONE;
    int rc = chain_load(r, &own, &own_len);
    if (rc) {
        /* Nothing to extend (state from before chains were kept): its
         * next hub sync stores one. */
        kith_log(KITH_LOG_INFO, "lan: device %s sent its membership chain; none held here yet",
                 who);
        return CH_NONE;
    }
    /* Its shape, and how many of its first ops are ours byte for byte.
     * Only a strict extension is verified (ops are checked from the
     * genesis on, so a bad op after ours costs one check): an equal or
     * shorter one is ours or a prefix of ours, verified already. */
    while (pos < len) {
        size_t l = pos + 4 <= len ? rd32(ops + pos) : 0;
        if (pos + 4 > len || l > len - pos - 4) {
            kith_log(KITH_LOG_WARN, "lan: refused device %s's membership chain: malformed", who);
            kith_free(own);
            return CH_REFUSED;
        }
        if (pos + 4 + l <= own_len && same == n && !memcmp(ops + pos, own + pos, 4 + l))
            same++;
        pos += 4 + l;
        n++;
    }
    int out = CH_REFUSED;
    int prefix = len <= own_len ? !memcmp(ops, own, len) : !memcmp(ops, own, own_len);
    if (prefix && len == own_len) {
        out = CH_SAME;
    } else if (prefix && len < own_len) {
        out = CH_BEHIND;
        kith_log(KITH_LOG_INFO,
                 "lan: device %s's membership chain is behind ours (%zu ops); kept ours (refused "
                 "a shorter chain)",
                 who, n);
    } else if (!prefix) {
        if (same == 0)
            kith_log(KITH_LOG_WARN,
                     "lan: refused device %s's membership chain: another genesis (another "
                     "workspace's history)",
                     who);
        else
            kith_log(KITH_LOG_WARN,
                     "lan: refused device %s's membership chain: it forks from ours after op %zu "
                     "(%zu ops); kept ours",
                     who, same, n);
    } else if (chain_verify(r, ops, len, &theirs, why, sizeof why) != KITH_OK) {
        kith_log(KITH_LOG_WARN, "lan: refused device %s's membership chain: %s", who, why);
    } else if (rp_meta_get(r, "genesis", hex, sizeof hex) != KITH_OK ||
               sodium_hex2bin(gen, 32, hex, strlen(hex), NULL, NULL, NULL) != 0 ||
               memcmp(gen, kith_members_genesis(theirs), 32) != 0) {
        kith_log(KITH_LOG_WARN,
                 "lan: refused device %s's membership chain: its genesis is not the one held here",
                 who);
    } else if (rp_members_save_all(r, theirs) != KITH_OK ||
               rp_lan_chain_save(r, ops, len) != KITH_OK) {
        kith_log(KITH_LOG_WARN, "lan: cannot keep device %s's membership chain: %s", who, r->err);
    } else {
        forget_refusals(L);
        out = CH_ADOPTED;
        kith_log(KITH_LOG_INFO,
                 "lan: adopted device %s's membership chain (%zu ops, %zu new; it extends ours)",
                 who, n, n - same);
    }
    kith_members_free(theirs);
    kith_free(own);
    return out;
}

static int refused_lately(struct rp_lan *L, const uint8_t device[32])
{
    int64_t now = rp_now_ms();
    for (int i = 0; i < REFUSED_MAX; i++)
        if (!memcmp(L->refused[i].device, device, 32) && L->refused[i].until_ms > now)
            return 1;
    return 0;
}

static void note_refused(struct rp_lan *L, const uint8_t device[32])
{
    int k = 0;
    for (int i = 0; i < REFUSED_MAX; i++) {
        if (!memcmp(L->refused[i].device, device, 32)) {
            k = i;
            break;
        }
        if (L->refused[i].until_ms < L->refused[k].until_ms)
            k = i;
    }
    memcpy(L->refused[k].device, device, 32);
    L->refused[k].until_ms = rp_now_ms() + RETRY_NONMEMBER_MS;
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
    p->files += rep.files;
    p->last_rx_ms = rp_now_ms();
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
    if (!p->L->oneshot) /* a one-shot sync leaves the daemon's state file alone */
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
    p->since_ms = p->last_rx_ms = rp_now_ms();
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
    snprintf(p->why, sizeof p->why, "%s", why);
    kith_log(KITH_LOG_INFO, "lan: session with device %s (%s) ended: %s", p->hex, p->addr, why);
    kick_soon(p->L); /* frees it outside the callbacks of its connection */
}

/* ---- connecting: kith_sync_client callbacks ---------------------------------------------- */

static void c_ready(void *ud, kith_sync_client *c, int role, const kith_members *m,
                    const uint8_t *wrapped, size_t wl)
{
    struct lpeer *p = ud;
    kith_replica *r = p->L->r;
    /* It proved it is the device its beacon named; its chain (verified op
     * by op by the client) may extend ours; then: a member here? */
    size_t cl = 0;
    const uint8_t *chain = m ? kith_sync_client_chain(c, &cl, NULL) : NULL;
    chain_consider(p->L, p->hex, chain, cl);
    if (member_role(r, p->device) == KITH_ROLE_NONE) {
        kith_log(KITH_LOG_WARN,
                 "lan: refused device %s (%s): not a current member of this workspace", p->hex,
                 p->addr);
        note_refused(p->L, p->device);
        kith_sync_client_close(c);
        mark_closed(p, "refused: not a current member");
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
    p->files += rep.files;
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
    if (!L || L->closing || L->no_new || !port || !memcmp(r->pk, device, 32))
        return; /* the same id: this device, or a copy of its folder */
    if (memcmp(r->pk, device, 32) > 0)
        return; /* the device with the smaller id connects */
    if (member_role(r, device) == KITH_ROLE_NONE) {
        /* It holds the workspace key (its beacon opened) but is no member
         * in the chain held here: a device that joined since this one last
         * saw a hub (its WELCOME's chain then extends ours), or a copied
         * key (refused after the handshake). Tried again only after a
         * while, or once our chain has grown. */
        uint8_t *own = NULL;
        size_t ol = 0;
        if (refused_lately(L, device) || chain_load(r, &own, &ol) != KITH_OK)
            return;
        kith_free(own);
        if (first) {
            char hex[17];
            sodium_bin2hex(hex, sizeof hex, device, 8);
            kith_log(KITH_LOG_INFO,
                     "lan: device %s (%s) announces this workspace but is not a member in the "
                     "chain held here; asking for its chain",
                     hex, ip);
        }
    }
    for (struct lpeer *p = L->peers; p; p = p->next)
        if (!memcmp(p->device, device, 32) && !p->closed)
            return;
    struct lpeer *p = peer_new(L, device, ip, 1);
    if (!p)
        return;
    char url[96];
    snprintf(url, sizeof url, "wss://%s:%u", ip, port);
    kith_sync_client_opts o = {.size = sizeof o};
    uint8_t *own = NULL;
    size_t ol = 0;
    if (chain_load(r, &own, &ol) == KITH_OK) { /* ours, for it to adopt (13.3) */
        o.lan_chain = own;
        o.lan_chain_len = ol;
    }
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
    int rc = kith_sync_client_new(r->loop, &o, &p->c);
    kith_free(own);
    if (rc != KITH_OK)
        mark_closed(p, "cannot connect");
}

/* ---- listening: sync_listener callbacks ---------------------------------------------------- */

static int l_admit(void *ud, const uint8_t pk[32], const uint8_t *chain, size_t chain_len,
                   uint32_t *epoch, uint8_t **mine, size_t *mine_len)
{
    struct rp_lan *L = ud;
    uint8_t key[32];
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, pk, 8);
    chain_consider(L, hex, chain, chain_len);
    if (rp_key_newest(L->r, epoch, key) != KITH_OK)
        *epoch = 0;
    sodium_memzero(key, sizeof key);
    int role = member_role(L->r, pk);
    if (role != KITH_ROLE_NONE && chain_load(L->r, mine, mine_len) != KITH_OK) {
        *mine = NULL; /* none held: WELCOME without ops */
        *mine_len = 0;
    }
    return role;
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
    p->need = 0; /* what it will push (a one-shot sync waits for it) */
    for (size_t i = 0; rc == KITH_OK && i < kith_vv_count(peer); i++) {
        uint64_t theirs = kith_vv_seq(peer, i),
                 ours = kith_vv_get(r->held, kith_vv_author(peer, i));
        if (theirs > ours && p->role >= KITH_ROLE_WRITER)
            p->need += (size_t)(theirs - ours);
        rc = kith_vv_set(p->known, kith_vv_author(peer, i), theirs);
    }
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
    p->got++;
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
        if (p->closed && !p->s && (!L->oneshot || p->reported)) {
            *pp = p->next;
            peer_free(p);
            if (!L->oneshot)
                rp_state_write(r, hubs_online(r));
            continue;
        }
        pp = &p->next;
    }
    if (L->from_lan) {
        /* Changes that came over the LAN: on to the hubs (and the state file). */
        L->from_lan = 0;
        if (!L->oneshot)
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
    kith_free(L->res);
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

/* ---- one-shot: kith sync ----------------------------------------------------------------------
 */

struct oneshot {
    struct rp_lan *L;
    uv_timer_t timer;
    int64_t start_ms, window_ms, deadline_ms;
    int stop;
};

/* One peer's exchange is over: out of the window's accounting, into the results. */
static int peer_done(const struct lpeer *p, int64_t now)
{
    if (p->closed)
        return 1;
    if (!p->ready)
        return 0;
    if (p->outgoing)
        return p->caught_up && p->pushes_out == 0;
    return p->caught_up && (p->got >= p->need || now - p->last_rx_ms >= ONESHOT_IDLE_MS);
}

static void report_peer(struct rp_lan *L, struct lpeer *p)
{
    if (p->reported || (!p->ready && !p->closed))
        return;
    p->reported = 1;
    if (!p->ready)
        return; /* never got past the handshake: logged, not a peer synced */
    kith_replica_lan_result *n = kith_realloc(L->res, (L->nres + 1) * sizeof *n);
    if (!n)
        return;
    L->res = n;
    kith_replica_lan_result *e = &L->res[L->nres++];
    memset(e, 0, sizeof *e);
    memcpy(e->device, p->device, 32);
    snprintf(e->address, sizeof e->address, "%s", p->addr);
    e->pushed = p->pushed;
    e->pulled = p->pulled;
    e->files = p->files;
    e->ok = p->caught_up && !(p->closed && p->outgoing && p->pushes_out);
    if (!e->ok)
        snprintf(e->error, sizeof e->error, "%s", p->why[0] ? p->why : "did not finish");
}

static void oneshot_tick(uv_timer_t *t)
{
    struct oneshot *o = t->data;
    struct rp_lan *L = o->L;
    int64_t now = rp_now_ms();
    int busy = 0;
    for (struct lpeer *p = L->peers; p; p = p->next) {
        if (peer_done(p, now))
            report_peer(L, p);
        else
            busy = 1;
    }
    if (now - o->start_ms >= o->window_ms)
        L->no_new = 1; /* beacons after the window start nothing */
    if ((L->no_new && !busy) || now >= o->deadline_ms) {
        o->stop = 1;
        uv_stop(t->loop);
    }
}

int kith_replica_lan_sync(kith_replica *r, const kith_lan_opts *opts, int window_ms, int timeout_ms,
                          kith_replica_lan_result **results, size_t *n, kith_replica_report *rep)
{
    *results = NULL;
    *n = 0;
    if (rep)
        memset(rep, 0, sizeof *rep);
    if (r->attached)
        return rp_fail(r, KITH_EINVAL, "already attached: its LAN sessions are live");
    char gen[80];
    if (rp_meta_get(r, "genesis", gen, sizeof gen) != KITH_OK)
        return KITH_OK; /* not a member of a shared workspace: no one to find */
    if (r->loop) {      /* a one-shot hub loop from kith_replica_sync */
        kith_sync_loop_free(r->loop);
        r->loop = NULL;
    }
    uv_loop_t *lp = calloc(1, sizeof *lp);
    if (!lp || uv_loop_init(lp) != 0) {
        free(lp);
        return rp_fail(r, KITH_ENOMEM, "cannot start the network");
    }
    /* Attached to the private loop for LAN sessions only: no hub connection. */
    r->uv_loop = lp;
    r->attached = 1;
    kith_vv_free(r->held);
    r->held = NULL;
    int rc = rp_ws_vv(r, &r->held);
    kith_lan *lan = NULL;
    if (rc == KITH_OK)
        rc = kith_lan_start(r, r->ws, lp, opts, &lan);
    if (rc == KITH_OK && !r->lan)
        rc = rp_fail(r, KITH_ENET, "cannot listen for LAN peers");
    else if (rc && !r->err[0])
        rp_fail(r, rc, "cannot start LAN discovery: %s", kith_strerror(rc));
    struct oneshot o = {.L = r->lan};
    if (rc == KITH_OK) {
        o.L->oneshot = 1;
        o.start_ms = rp_now_ms();
        o.window_ms = window_ms > 0 ? window_ms : 1500;
        o.deadline_ms = o.start_ms + o.window_ms + (timeout_ms > 0 ? timeout_ms : 15000);
        uv_timer_init(lp, &o.timer);
        o.timer.data = &o;
        uv_timer_start(&o.timer, oneshot_tick, 50, 50);
        while (!o.stop)
            uv_run(lp, UV_RUN_DEFAULT);
        uv_timer_stop(&o.timer);
        uv_close((uv_handle_t *)&o.timer, NULL);
        struct rp_lan *L = o.L;
        for (struct lpeer *p = L->peers; p; p = p->next) {
            if (!p->reported && p->ready && !peer_done(p, rp_now_ms()))
                snprintf(p->why, sizeof p->why, "timed out");
            report_peer(L, p);
        }
        *results = L->res;
        *n = L->nres;
        L->res = NULL;
        L->nres = 0;
        for (size_t i = 0; rep && i < *n; i++) {
            rep->pushed += (*results)[i].pushed;
            rep->pulled += (*results)[i].pulled;
            rep->files += (*results)[i].files;
        }
    }
    kith_lan_stop(lan); /* closes the sessions (rp_lan_close) */
    if (r->lan)
        rp_lan_close(r);
    r->attached = 0;
    kith_sync_loop_free(r->loop); /* lets go of its libuv handles */
    r->loop = NULL;
    r->uv_loop = NULL;
    for (int i = 0; i < 400 && uv_run(lp, UV_RUN_NOWAIT) != 0; i++)
        uv_sleep(5);
    if (uv_loop_close(lp) == 0)
        free(lp);
    else /* a handle still open points into it: leave it */
        kith_log(KITH_LOG_WARN, "lan: a handle outlived the one-shot sync");
    return rc;
}
