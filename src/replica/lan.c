/*
 * LAN discovery (include/kith/replica.h, "LAN"; docs/PROTOCOL.md, "LAN").
 * Every few seconds the daemon sends a beacon to an administratively scoped
 * IPv4 multicast group on each interface, and listens on the group. A
 * beacon names no workspace: its only clear fields are a version, the
 * 10-minute epoch and a tag that rotates with it, keyed by the workspace
 * key, so that only members can tell which workspace it belongs to, and
 * beacons of different epochs cannot be linked by an outsider. The body
 * (device id, listening port, certificate fingerprint) is encrypted and
 * authenticated with another key derived from the workspace key.
 *
 * Sends use uv_udp_try_send after pointing IP_MULTICAST_IF at one
 * interface at a time: a queued uv_udp_send could leave after the next
 * interface was chosen.
 *
 * With a replica, the daemon also listens for sessions (lanpeer.c) and its
 * beacons say where: a found member is handed to the replica, which
 * connects to it when its own device id is the smaller of the two.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#include "kith/replica.h"
#include "replica/lan.h"
#include "util/util_int.h"

/* ---- the beacon's bytes ---------------------------------------------------------------- */

static const uint8_t magic[4] = {0x6B, 0x4C, 0x42, 0x01}; /* "kLB", version 1 */
#define HDR_LEN   52                                      /* magic, epoch, tag, nonce */
#define PLAIN_LEN (LAN_INSTANCE_LEN + 32 + 2 + 32 + 8)
_Static_assert(HDR_LEN + PLAIN_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES == LAN_BEACON_LEN,
               "beacon layout");

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* BLAKE2b-256 keyed by @key over @ctx || @id. */
static void derive(uint8_t out[32], const uint8_t key[32], const char *ctx, const uint8_t id[16])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)ctx, strlen(ctx));
    crypto_generichash_update(&st, id, 16);
    crypto_generichash_final(&st, out, 32);
}

void lan_keys_derive(const uint8_t ws_key[32], const uint8_t ws_id[16], struct lan_keys *k)
{
    derive(k->tag, ws_key, "kith-lan-tag-v1", ws_id);
    derive(k->seal, ws_key, "kith-lan-seal-v1", ws_id);
}

void lan_keys_wipe(struct lan_keys *k)
{
    sodium_memzero(k, sizeof *k);
}

uint64_t lan_epoch(uint64_t unix_s)
{
    return unix_s / LAN_EPOCH_S;
}

void lan_tag(const struct lan_keys *k, uint64_t epoch, uint8_t tag[16])
{
    uint8_t e[8];
    put64(e, epoch);
    crypto_generichash(tag, 16, e, sizeof e, k->tag, sizeof k->tag);
}

void lan_beacon_seal(const struct lan_keys *k, const struct lan_beacon *b,
                     uint8_t out[LAN_BEACON_LEN])
{
    uint8_t plain[PLAIN_LEN], *p = plain;
    memcpy(p, b->instance, LAN_INSTANCE_LEN), p += LAN_INSTANCE_LEN;
    memcpy(p, b->device, 32), p += 32;
    *p++ = (uint8_t)(b->port >> 8);
    *p++ = (uint8_t)b->port;
    memcpy(p, b->fingerprint, 32), p += 32;
    put64(p, b->time_ms);

    memcpy(out, magic, 4);
    put64(out + 4, b->epoch);
    lan_tag(k, b->epoch, out + 12);
    randombytes_buf(out + 28, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + HDR_LEN, NULL, plain, sizeof plain, out,
                                               HDR_LEN, NULL, out + 28, k->seal);
    sodium_memzero(plain, sizeof plain);
}

int lan_beacon_open(const struct lan_keys *k, uint64_t now_epoch, const uint8_t *buf, size_t len,
                    struct lan_beacon *b)
{
    if (len != LAN_BEACON_LEN || memcmp(buf, magic, 4))
        return -1;
    uint64_t epoch = get64(buf + 4);
    /* One epoch either way: clocks differ, and a beacon sent just before
     * the boundary arrives after it. */
    if (epoch + 1 < now_epoch || epoch > now_epoch + 1)
        return -1;
    uint8_t tag[16];
    lan_tag(k, epoch, tag);
    if (sodium_memcmp(tag, buf + 12, 16)) /* another workspace's, most likely */
        return -1;
    uint8_t plain[PLAIN_LEN];
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, buf + HDR_LEN, len - HDR_LEN,
                                                   buf, HDR_LEN, buf + 28, k->seal))
        return -1;
    const uint8_t *p = plain;
    b->epoch = epoch;
    memcpy(b->instance, p, LAN_INSTANCE_LEN), p += LAN_INSTANCE_LEN;
    memcpy(b->device, p, 32), p += 32;
    b->port = (uint16_t)(p[0] << 8 | p[1]), p += 2;
    memcpy(b->fingerprint, p, 32), p += 32;
    b->time_ms = get64(p);
    sodium_memzero(plain, sizeof plain);
    return 0;
}

/* ---- peers ---------------------------------------------------------------------------------- */

#define PEERS_MAX     64 /* a LAN with more devices of one workspace waits for slots */
#define IFACES_MAX    32
#define INTERVAL_DEF  5000
#define ANSWER_GAP_MS 250

struct lan_peer {
    uint8_t instance[LAN_INSTANCE_LEN];
    uint8_t device[32];
    struct sockaddr_in addr; /* where its beacons come from */
    uint16_t port;
    uint8_t fingerprint[32];
    uint64_t last_seen; /* loop time */
};

struct kith_lan {
    uv_loop_t *loop;
    kith_replica *r;
    kith_ws *ws;
    uv_udp_t udp;
    uv_timer_t timer;
    int closing, open_handles;
    struct sockaddr_in group;
    int interval_ms;
    int quick; /* beacons left to send at a short interval (start, network change) */
    uint8_t ws_id[16];
    uint8_t device[32];
    uint8_t instance[LAN_INSTANCE_LEN];
    uint16_t port;         /* where sessions are served; 0: discovery only */
    uint8_t fp[32];        /* SHA-256 of that listener's certificate */
    struct lan_keys *keys; /* sodium_malloc'd */
    uint32_t key_epoch;
    struct in_addr joined[IFACES_MAX];
    size_t njoined;
    struct lan_peer peers[PEERS_MAX];
    size_t npeers;
    uint64_t last_answer; /* uv_now of the last beacon sent to answer a new device */
};

static uint64_t now_unix_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void hex12(const uint8_t *b, char out[13])
{
    sodium_bin2hex(out, 13, b, 6);
}

/* Reads the workspace key again: a removal rotates it, and then beacons of
 * the old key are no longer this workspace's. */
static int refresh_keys(kith_lan *l)
{
    uint8_t key[32];
    uint32_t epoch;
    int rc = kith_ws_workspace_key(l->ws, &epoch, key);
    if (rc)
        return rc;
    lan_keys_derive(key, l->ws_id, l->keys);
    l->key_epoch = epoch;
    sodium_memzero(key, sizeof key);
    return KITH_OK;
}

static struct lan_peer *find_peer(kith_lan *l, const uint8_t instance[LAN_INSTANCE_LEN])
{
    for (size_t i = 0; i < l->npeers; i++)
        if (!memcmp(l->peers[i].instance, instance, LAN_INSTANCE_LEN))
            return &l->peers[i];
    return NULL;
}

static void send_beacon(kith_lan *l);

static void note_peer(kith_lan *l, const struct lan_beacon *b, const struct sockaddr_in *from)
{
    struct lan_peer *p = find_peer(l, b->instance);
    int first = !p;
    char dev[13], ip[INET_ADDRSTRLEN];
    hex12(b->device, dev);
    uv_ip4_name(from, ip, sizeof ip);
    if (!p) {
        if (l->npeers == PEERS_MAX)
            return;
        p = &l->peers[l->npeers++];
        memcpy(p->instance, b->instance, LAN_INSTANCE_LEN);
        kith_log(KITH_LOG_INFO, "lan: found device %s at %s (port %u)", dev, ip, b->port);
    } else if (p->addr.sin_addr.s_addr != from->sin_addr.s_addr || p->port != b->port) {
        kith_log(KITH_LOG_INFO, "lan: device %s moved to %s (port %u)", dev, ip, b->port);
    }
    memcpy(p->device, b->device, 32);
    p->addr = *from;
    p->port = b->port;
    memcpy(p->fingerprint, b->fingerprint, 32);
    p->last_seen = uv_now(l->loop);
    /* A device not heard before (a daemon starting, or `kith sync` looking
     * for peers) hears from us at once rather than within an interval:
     * one answer per ANSWER_GAP_MS at most. */
    if (first && !l->closing && uv_now(l->loop) - l->last_answer >= ANSWER_GAP_MS) {
        l->last_answer = uv_now(l->loop);
        send_beacon(l);
    }
    /* Every beacon, not only the first: a session that ended is tried
     * again at the next one (the beacon interval is the retry delay). */
    if (l->r && l->port && b->port)
        rp_lan_found(l->r, b->device, ip, b->port, b->fingerprint, first);
}

static void expire_peers(kith_lan *l)
{
    uint64_t now = uv_now(l->loop), ttl = 3 * (uint64_t)l->interval_ms + 1000;
    for (size_t i = 0; i < l->npeers;) {
        if (now - l->peers[i].last_seen <= ttl) {
            i++;
            continue;
        }
        char dev[13];
        hex12(l->peers[i].device, dev);
        kith_log(KITH_LOG_INFO, "lan: lost device %s", dev);
        l->peers[i] = l->peers[--l->npeers];
    }
}

/* ---- sockets -----------------------------------------------------------------------------------
 */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[2048]; /* one loop thread; a datagram is consumed before the next read */
    buf->base = slab;
    buf->len = sizeof slab;
}

static void on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    kith_lan *l = u->data;
    if (n <= 0 || !addr || addr->sa_family != AF_INET || (flags & UV_UDP_PARTIAL) || l->closing)
        return;
    struct lan_beacon b;
    uint64_t epoch = lan_epoch(now_unix_ms() / 1000);
    if (lan_beacon_open(l->keys, epoch, (const uint8_t *)buf->base, (size_t)n, &b))
        return; /* not ours: other workspaces share the group, silently */
    if (!memcmp(b.instance, l->instance, LAN_INSTANCE_LEN))
        return; /* our own, looped back */
    note_peer(l, &b, (const struct sockaddr_in *)addr);
}

static int joined(const kith_lan *l, struct in_addr a)
{
    for (size_t i = 0; i < l->njoined; i++)
        if (l->joined[i].s_addr == a.s_addr)
            return 1;
    return 0;
}

/* Joins the group on every IPv4 interface not joined yet, and, when @send,
 * sends @beacon out of each. Loopback is left out: it carries no multicast
 * by default, and devices on one host see each other through any interface
 * thanks to IP_MULTICAST_LOOP. */
static void each_interface(kith_lan *l, const uint8_t *beacon)
{
    uv_interface_address_t *ifs;
    int n;
    if (uv_interface_addresses(&ifs, &n))
        return;
    char group[INET_ADDRSTRLEN];
    uv_ip4_name(&l->group, group, sizeof group);
    for (int i = 0; i < n; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
            continue;
        char ip[INET_ADDRSTRLEN];
        uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
        struct in_addr a = ifs[i].address.address4.sin_addr;
        if (!joined(l, a) && l->njoined < IFACES_MAX) {
            int rc = uv_udp_set_membership(&l->udp, group, ip, UV_JOIN_GROUP);
            if (rc && rc != UV_EADDRINUSE)
                kith_log(KITH_LOG_DEBUG, "lan: cannot join %s on %s: %s", group, ip,
                         uv_strerror(rc));
            else
                l->joined[l->njoined++] = a;
        }
        if (!beacon || uv_udp_set_multicast_interface(&l->udp, ip))
            continue;
        uv_buf_t b = uv_buf_init((char *)beacon, LAN_BEACON_LEN);
        int rc = uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&l->group);
        if (rc < 0)
            kith_log(KITH_LOG_DEBUG, "lan: beacon on %s: %s", ip, uv_strerror(rc));
    }
    uv_free_interface_addresses(ifs, n);
}

static void send_beacon(kith_lan *l)
{
    if (refresh_keys(l))
        return;
    struct lan_beacon b = {.port = l->port, .time_ms = now_unix_ms()};
    memcpy(b.fingerprint, l->fp, 32);
    b.epoch = lan_epoch(b.time_ms / 1000);
    memcpy(b.instance, l->instance, LAN_INSTANCE_LEN);
    memcpy(b.device, l->device, 32);
    uint8_t out[LAN_BEACON_LEN];
    lan_beacon_seal(l->keys, &b, out);
    each_interface(l, out);
}

/* Next beacon: soon while starting (datagrams get lost), then every
 * interval with +-20% jitter so that devices do not stay in step. */
static uint64_t next_delay(kith_lan *l)
{
    if (l->quick > 0) {
        l->quick--;
        return 300 + randombytes_uniform(200);
    }
    uint32_t spread = (uint32_t)l->interval_ms * 2 / 5;
    return (uint64_t)l->interval_ms - spread / 2 + randombytes_uniform(spread + 1);
}

static void on_tick(uv_timer_t *t)
{
    kith_lan *l = t->data;
    expire_peers(l);
    send_beacon(l);
    uv_timer_start(&l->timer, on_tick, next_delay(l), 0);
}

/* ---- lifetime ----------------------------------------------------------------------------------
 */

static void lan_free(kith_lan *l)
{
    if (l->keys) {
        lan_keys_wipe(l->keys);
        sodium_free(l->keys);
    }
    kith_free(l);
}

static void on_closed(uv_handle_t *h)
{
    kith_lan *l = h->data;
    if (--l->open_handles == 0)
        lan_free(l);
}

static int open_socket(kith_lan *l, int port)
{
    struct sockaddr_in any;
    uv_ip4_addr("0.0.0.0", port, &any);
    int rc = uv_udp_bind(&l->udp, (const struct sockaddr *)&any, UV_UDP_REUSEADDR);
    if (!rc)
        rc = uv_udp_set_multicast_ttl(&l->udp, 1); /* never past the first router */
    if (!rc)
        rc = uv_udp_set_multicast_loop(&l->udp, 1); /* two devices on one host */
    if (!rc)
        rc = uv_udp_recv_start(&l->udp, on_alloc, on_recv);
    if (rc)
        kith_log(KITH_LOG_WARN, "lan: cannot listen on UDP port %d: %s", port, uv_strerror(rc));
    return rc ? KITH_ENET : KITH_OK;
}

static int lan_init(kith_lan *l, kith_replica *r, kith_ws *ws, uv_loop_t *loop,
                    const kith_lan_opts *o)
{
    l->loop = loop;
    l->r = r;
    l->ws = ws;
    l->interval_ms = o && o->interval_ms > 0 ? o->interval_ms : INTERVAL_DEF;
    l->quick = 3;
    const char *group = o && o->group ? o->group : KITH_LAN_GROUP_DEFAULT;
    int port = o && o->port > 0 ? o->port : KITH_LAN_PORT_DEFAULT;
    if (uv_ip4_addr(group, port, &l->group) || !IN_MULTICAST(ntohl(l->group.sin_addr.s_addr)))
        return KITH_EINVAL;
    if (sodium_hex2bin(l->ws_id, 16, kith_ws_id(ws), strlen(kith_ws_id(ws)), NULL, NULL, NULL) ||
        sodium_hex2bin(l->device, 32, kith_ws_device(ws), strlen(kith_ws_device(ws)), NULL, NULL,
                       NULL))
        return KITH_ECORRUPT;
    randombytes_buf(l->instance, sizeof l->instance);
    l->keys = sodium_malloc(sizeof *l->keys);
    if (!l->keys)
        return KITH_ENOMEM;
    int rc = refresh_keys(l);
    if (rc)
        return rc;
    return KITH_OK;
}

int kith_lan_start(kith_replica *r, kith_ws *ws, void *uv_loop, const kith_lan_opts *opts,
                   kith_lan **out)
{
    *out = NULL;
    if (!ws || !uv_loop || (opts && opts->size < sizeof *opts))
        return KITH_EINVAL;
    if (sodium_init() < 0)
        return KITH_EIO;
    kith_lan *l = kith_malloc(sizeof *l);
    if (!l)
        return KITH_ENOMEM;
    memset(l, 0, sizeof *l);
    int rc = lan_init(l, r, ws, uv_loop, opts);
    if (rc) {
        lan_free(l);
        return rc;
    }
    uv_udp_init(l->loop, &l->udp);
    uv_timer_init(l->loop, &l->timer);
    l->udp.data = l->timer.data = l;
    l->open_handles = 2;
    rc = open_socket(l, ntohs(l->group.sin_port));
    if (rc) {
        kith_lan_stop(l);
        return rc;
    }
    /* Sessions need a live replica; without one, discovery still runs. */
    if (r && rp_lan_open(r, &l->port, l->fp) == KITH_OK)
        kith_log(KITH_LOG_INFO, "lan: listening for peers on TCP port %u", l->port);
    else if (r)
        kith_log(KITH_LOG_WARN, "lan: no LAN sessions: %s", kith_replica_errmsg(r));
    uv_timer_start(&l->timer, on_tick, 0, 0);
    *out = l;
    return KITH_OK;
}

void kith_lan_network_changed(kith_lan *lan)
{
    if (!lan || lan->closing)
        return;
    /* Addresses may have changed: join again where needed (joined[] keeps
     * addresses, so a new address is a new join). */
    lan->njoined = 0;
    lan->quick = 2;
    uv_timer_start(&lan->timer, on_tick, 0, 0);
}

size_t kith_lan_peers(const kith_lan *lan)
{
    return lan ? lan->npeers : 0;
}

size_t kith_lan_sessions(const kith_lan *lan)
{
    return lan && lan->r && lan->port ? rp_lan_connected(lan->r) : 0;
}

void kith_lan_stop(kith_lan *lan)
{
    if (!lan || lan->closing)
        return;
    lan->closing = 1;
    if (lan->r && lan->port)
        rp_lan_close(lan->r);
    uv_close((uv_handle_t *)&lan->udp, on_closed);
    uv_close((uv_handle_t *)&lan->timer, on_closed);
}
