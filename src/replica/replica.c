/*
 * The replica's public calls: attach a workspace to its sync state, manage
 * remotes, run one exchange with every remote, and membership (invite,
 * join, members, remove with key rotation). Connections are conn.c's;
 * live mode is live.c's; bundles bundle.c's.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "replica/replica_int.h"
#include "util/util_int.h"

#define TIMEOUT_MS 15000
#define ENV_LEN    229
#define ENV_CTX    "kith-key-v1"

int rp_conn_exchange(struct rconn *k, int timeout_ms, int force_snapshot);

int kith_replica_open(kith_ws *ws, kith_replica **out)
{
    *out = NULL;
    if (sodium_init() < 0)
        return KITH_EIO;
    kith_replica *r = calloc(1, sizeof *r);
    if (!r)
        return KITH_ENOMEM;
    *out = r;
    r->ws = ws;
    r->sk = sodium_malloc(64);
    if (!r->sk)
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    int rc = kith_ws_device_keys(ws, r->pk, r->sk);
    if (rc)
        return rp_fail(r, rc, "%s", kith_ws_errmsg(ws));
    const char *id = kith_ws_id(ws);
    if (sodium_hex2bin(r->ws_id, 16, id, strlen(id), NULL, NULL, NULL) != 0)
        return rp_fail(r, KITH_ECORRUPT, "workspace id '%s' is not 32 hex digits", id);
    rc = rp_store_open(r);
    if (rc)
        return rc;
    /* The workspace's key file is the first key this replica knows of. */
    uint32_t epoch = 0;
    uint8_t key[32], have[32];
    if (kith_ws_workspace_key(ws, &epoch, key) == KITH_OK && rp_key_get(r, epoch, have) != KITH_OK)
        rc = rp_key_put(r, epoch, key);
    sodium_memzero(key, sizeof key);
    sodium_memzero(have, sizeof have);
    if (rc == KITH_OK)
        rc = rp_ws_vv(r, &r->held);
    return rc;
}

void rp_live_free(kith_replica *r); /* live.c */

void kith_replica_close(kith_replica *r)
{
    if (!r)
        return;
    kith_replica_detach(r);
    if (r->loop)
        kith_sync_loop_free(r->loop);
    kith_vv_free(r->held);
    if (r->db)
        sqlite3_close(r->db);
    sodium_free(r->sk);
    free(r);
}

const char *kith_replica_errmsg(const kith_replica *r)
{
    return r ? r->err : "out of memory";
}

/* Closes a one-shot connection and lets the loop send what it queued. */
static void conn_done(struct rconn *k)
{
    if (!k)
        return;
    if (k->c && !k->closed) {
        kith_sync_client_close(k->c);
        for (int i = 0; i < 10 && !k->closed; i++)
            if (kith_sync_loop_run(k->r->loop, 10) != KITH_OK)
                break;
    }
    rp_conn_free(k);
}

static void add_report(kith_replica_report *to, const kith_replica_report *from)
{
    to->pushed += from->pushed;
    to->pulled += from->pulled;
    to->files += from->files;
    to->bytes_sent += from->bytes_sent;
    to->bytes_received += from->bytes_received;
}

/* ---- remotes ------------------------------------------------------------------------------- */

int kith_replica_remote_add(kith_replica *r, const char *url, const char *fingerprint)
{
    char g[80];
    struct rconn *k = NULL;
    if (strncmp(url, "wss://", 6) != 0)
        return rp_fail(r, KITH_EINVAL, "'%s' is not a hub address (wss://HOST:PORT)", url);
    int rc = rp_conn_new(r, url, fingerprint, &k);
    if (rc)
        return rc;
    if (rp_meta_get(r, "genesis", g, sizeof g) != KITH_OK) {
        /* No chain yet: this device made the workspace and registers it. */
        k->mode = KITH_SYNC_REGISTER;
        rc = kith_member_op_genesis(r->ws_id, r->sk, (uint64_t)rp_now_ms(), &k->genesis_op,
                                    &k->genesis_op_len);
        if (rc) {
            rp_conn_free(k);
            return rp_fail(r, rc, "cannot sign the membership genesis");
        }
    }
    rc = rp_remote_insert(r, url, fingerprint);
    if (rc == KITH_OK)
        rc = rp_conn_start(k);
    if (rc == KITH_OK)
        rc = rp_conn_exchange(k, TIMEOUT_MS, 1);
    if (rc == KITH_OK && k->err)
        rc = rp_fail(r, k->err, "%s", k->errmsg);
    if (rc == KITH_OK)
        rc = rp_remote_result(r, url, NULL, k->hub_known);
    if (rc == KITH_OK)
        rp_state_write(r, 1);
    conn_done(k);
    if (rc != KITH_OK && rc != KITH_EEXIST) {
        char keep[sizeof r->err];
        memcpy(keep, r->err, sizeof keep);
        rp_remote_delete(r, url);
        memcpy(r->err, keep, sizeof keep);
    }
    return rc;
}

int kith_replica_remotes(kith_replica *r, int (*cb)(const kith_replica_remote *rm, void *ctx),
                         void *ctx)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT url, fingerprint, last_sync_ms, last_error FROM remotes"
                           " ORDER BY added_ms",
                           -1, &st, NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    int stop = 0;
    while (!stop && sqlite3_step(st) == SQLITE_ROW) {
        kith_replica_remote rm = {
            (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
            sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3)};
        stop = cb(&rm, ctx);
    }
    sqlite3_finalize(st);
    return KITH_OK;
}

/* ---- sync --------------------------------------------------------------------------------------
 */

int kith_replica_sync(kith_replica *r, int timeout_ms, kith_replica_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (timeout_ms <= 0)
        timeout_ms = TIMEOUT_MS;
    kith_vv_free(r->held);
    r->held = NULL;
    int rc = rp_ws_vv(r, &r->held);
    if (rc)
        return rc;
    /* Remotes are read first: an exchange writes to the table. */
    char urls[16][256], fps[16][80];
    int n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT url, fingerprint FROM remotes ORDER BY added_ms", -1, &st,
                           NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(urls[n], sizeof urls[n], "%s", (const char *)sqlite3_column_text(st, 0));
        const char *fp = (const char *)sqlite3_column_text(st, 1);
        snprintf(fps[n], sizeof fps[n], "%s", fp ? fp : "");
        n++;
    }
    sqlite3_finalize(st);
    int first_err = KITH_OK;
    char first_msg[sizeof r->err] = "";
    for (int i = 0; i < n; i++) {
        struct rconn *k = NULL;
        rc = rp_conn_new(r, urls[i], fps[i], &k);
        if (rc == KITH_OK)
            rc = rp_conn_start(k);
        if (rc == KITH_OK)
            rc = rp_conn_exchange(k, timeout_ms, 0);
        if (rc == KITH_OK && k->err)
            rc = rp_fail(r, k->err, "%s: %s", urls[i], k->errmsg);
        if (k) {
            add_report(rep, &k->rep);
            if (k->hub_known && k->got_hub_vv)
                rp_remote_result(r, urls[i], NULL, k->hub_known);
        }
        if (rc == KITH_OK) {
            rep->remotes_ok++;
        } else {
            rep->remotes_failed++;
            rp_remote_result(r, urls[i], r->err, NULL);
            if (!first_err) {
                first_err = rc;
                memcpy(first_msg, r->err, sizeof first_msg);
            }
        }
        conn_done(k);
    }
    rp_state_write(r, rep->remotes_ok > 0);
    if (first_err) {
        memcpy(r->err, first_msg, sizeof r->err);
        /* A reader's local changes or a refused push: reported, but the pull worked. */
        return first_err;
    }
    return KITH_OK;
}

/* ---- membership ------------------------------------------------------------------------------ */

/* Connects to the first remote as a member and waits until ready. */
static int connect_first(kith_replica *r, struct rconn **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    char url[256] = "", fp[80] = "";
    if (sqlite3_prepare_v2(r->db, "SELECT url, fingerprint FROM remotes ORDER BY added_ms LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(url, sizeof url, "%s", (const char *)sqlite3_column_text(st, 0));
        const char *f = (const char *)sqlite3_column_text(st, 1);
        snprintf(fp, sizeof fp, "%s", f ? f : "");
    }
    sqlite3_finalize(st);
    if (!url[0])
        return rp_fail(r, KITH_ENOTFOUND, "no remote: add a hub first (kith remote add URL)");
    struct rconn *k = NULL;
    int rc = rp_conn_new(r, url, fp, &k);
    if (rc == KITH_OK)
        rc = rp_conn_start(k);
    if (rc == KITH_OK)
        rc = rp_conn_run(k, rp_conn_ready_or_closed, TIMEOUT_MS);
    if (rc) {
        conn_done(k);
        return rc;
    }
    *out = k;
    return KITH_OK;
}

int kith_replica_invite(kith_replica *r, int role, int64_t expires_ms, char **link)
{
    *link = NULL;
    if (role < KITH_ROLE_READER || role > KITH_ROLE_OWNER)
        return rp_fail(r, KITH_EINVAL, "unknown role %d", role);
    if (expires_ms <= 0)
        expires_ms = 7LL * 24 * 3600 * 1000;
    struct rconn *k = NULL;
    int rc = connect_first(r, &k);
    if (rc)
        return rc;
    kith_invite inv;
    memset(&inv, 0, sizeof inv);
    kith_invite_random(&inv);
    if (strlen(k->url) > KITH_INVITE_URL_MAX) {
        conn_done(k);
        return rp_fail(r, KITH_EINVAL, "the hub address is too long for a link");
    }
    memcpy(inv.hub_url, k->url, strlen(k->url) + 1);
    if (k->has_fp)
        memcpy(inv.fingerprint, k->fp, 32);
    memcpy(inv.ws_id, r->ws_id, 16);
    const kith_members *m = kith_sync_client_members(k->c);
    memcpy(inv.genesis, kith_members_genesis(m), 32);
    uint8_t cap_pk[32], *w = NULL, *op = NULL;
    size_t wl = 0, ol = 0, nk = 0;
    kith_ws_key *keys = NULL;
    kith_invite_cap_pk(inv.cap_seed, cap_pk);
    rc = rp_keys_all(r, &keys, &nk);
    if (rc == KITH_OK && nk == 0)
        rc = rp_fail(r, KITH_ENOTFOUND, "this device holds no workspace key to hand on");
    if (rc == KITH_OK && kith_invite_wrap(inv.invite_key, r->ws_id, cap_pk, keys, nk, &w, &wl))
        rc = rp_fail(r, KITH_EIO, "cannot wrap the workspace keys");
    if (keys)
        sodium_memzero(keys, nk * sizeof *keys);
    kith_free(keys);
    int64_t now = rp_now_ms();
    if (rc == KITH_OK && kith_member_op_invite(m, r->sk, cap_pk, role, (uint64_t)(now + expires_ms),
                                               (uint64_t)now, &op, &ol) != KITH_OK)
        rc = rp_fail(r, KITH_EIO, "cannot sign the invite");
    if (rc == KITH_OK)
        rc = rp_conn_member_op(k, op, ol, w, wl, TIMEOUT_MS);
    if (rc == KITH_OK && kith_invite_encode(&inv, link) != KITH_OK)
        rc = rp_fail(r, KITH_ENOMEM, "out of memory");
    kith_free(w);
    sodium_memzero(&inv, sizeof inv);
    conn_done(k);
    return rc;
}

static _Thread_local char join_err[600];

const char *kith_replica_join_errmsg(void)
{
    return join_err;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

int kith_replica_join(const char *link, const char *dir, const char *name, kith_ws **wsp,
                      kith_replica_report *rep)
{
    kith_invite inv;
    kith_ws *ws = NULL;
    kith_replica *r = NULL;
    struct rconn *k = NULL;
    char hex[80], kdir[4200], errbuf[600] = "";
    *wsp = NULL;
    memset(rep, 0, sizeof *rep);
    int rc = kith_invite_parse(link, &inv);
    join_err[0] = 0;
    if (rc) {
        snprintf(join_err, sizeof join_err, "not a kith join link (kith://join/...), or damaged");
        return KITH_ECORRUPT;
    }
    sodium_bin2hex(hex, sizeof hex, inv.ws_id, 16);
    rc = kith_ws_init_as(dir, name, hex, &ws);
    if (rc) {
        snprintf(join_err, sizeof join_err, "%s", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return rc;
    }
    snprintf(kdir, sizeof kdir, "%s/.kith", kith_ws_root(ws));
    rc = kith_replica_open(ws, &r);
    /* init_as made a key of its own; the invite's keys replace it. */
    if (rc == KITH_OK)
        rc = rp_exec(r, "DELETE FROM keys");
    sodium_bin2hex(hex, sizeof hex, inv.genesis, 32);
    if (rc == KITH_OK)
        rc = rp_meta_set(r, "genesis", hex);
    static const uint8_t zero[32];
    char fp[80] = "";
    if (sodium_memcmp(inv.fingerprint, zero, 32) != 0)
        kith_fingerprint_format(inv.fingerprint, fp);
    if (rc == KITH_OK)
        rc = rp_remote_insert(r, inv.hub_url, fp[0] ? fp : NULL);
    if (rc == KITH_OK)
        rc = rp_conn_new(r, inv.hub_url, fp, &k);
    if (rc == KITH_OK) {
        k->mode = KITH_SYNC_JOIN;
        k->cap_seed = inv.cap_seed;
        rc = rp_conn_start(k);
    }
    if (rc == KITH_OK)
        rc = rp_conn_run(k, rp_conn_ready_or_closed, TIMEOUT_MS);
    kith_ws_key *keys = NULL;
    size_t nk = 0;
    uint8_t cap_pk[32];
    kith_invite_cap_pk(inv.cap_seed, cap_pk);
    if (rc == KITH_OK && kith_invite_unwrap(inv.invite_key, inv.ws_id, cap_pk, k->wrapped,
                                            k->wrapped_len, &keys, &nk) != KITH_OK)
        rc = rp_fail(r, KITH_EAUTH, "the invite's keys do not unwrap with this link");
    for (size_t i = 0; rc == KITH_OK && i < nk; i++)
        rc = rp_key_put(r, keys[i].epoch, keys[i].key);
    if (keys)
        sodium_memzero(keys, nk * sizeof *keys);
    kith_free(keys);
    /* A member from here on: the same connection pulls everything. */
    if (rc == KITH_OK) {
        k->mode = KITH_SYNC_MEMBER;
        rc = rp_conn_exchange(k, TIMEOUT_MS * 4, 0);
    }
    if (rc == KITH_OK) {
        *rep = k->rep;
        rep->remotes_ok = 1;
        rp_remote_result(r, inv.hub_url, NULL, k->hub_known);
        rp_state_write(r, 1);
    }
    sodium_memzero(&inv, sizeof inv);
    if (rc && r)
        snprintf(errbuf, sizeof errbuf, "%s", r->err);
    conn_done(k);
    kith_replica_close(r);
    if (rc) {
        kith_log(KITH_LOG_WARN, "replica: join failed: %s", errbuf);
        /* This call made the workspace: take it back, so a second try can start clean. */
        kith_ws_close(ws);
        nftw(kdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        ws = NULL;
        snprintf(join_err, sizeof join_err, "%s", errbuf);
        return rc;
    }
    *wsp = ws;
    return KITH_OK;
}

/* ---- names -------------------------------------------------------------------------------------
 */

struct names {
    struct {
        char dev[65];
        char name[64];
    } * v;
    size_t n, cap;
};

static int name_cb(const kith_ws_change *c, void *ctx)
{
    struct names *ns = ctx;
    for (size_t i = 0; i < ns->n; i++)
        if (!strcmp(ns->v[i].dev, c->device))
            return 0;
    if (kith_grow((void **)&ns->v, &ns->cap, ns->n + 1, sizeof *ns->v) != 0)
        return 1;
    snprintf(ns->v[ns->n].dev, sizeof ns->v[ns->n].dev, "%s", c->device);
    snprintf(ns->v[ns->n].name, sizeof ns->v[ns->n].name, "%s", c->author);
    ns->n++;
    return 0;
}

static const char *name_of(struct names *ns, const char *dev)
{
    for (size_t i = 0; i < ns->n; i++)
        if (!strcmp(ns->v[i].dev, dev))
            return ns->v[i].name;
    return "";
}

int kith_replica_members(kith_replica *r, int (*cb)(const kith_replica_member *m, void *ctx),
                         void *ctx)
{
    struct names ns = {0};
    if (kith_ws_log(r->ws, NULL, 0, name_cb, &ns) != KITH_OK)
        ns.n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT device, role, removed FROM members"
                           " ORDER BY removed, role DESC, device",
                           -1, &st, NULL) != SQLITE_OK) {
        kith_free(ns.v);
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    }
    int stop = 0;
    while (!stop && sqlite3_step(st) == SQLITE_ROW) {
        char dev[65];
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        sodium_bin2hex(dev, sizeof dev, sqlite3_column_blob(st, 0), 32);
        kith_replica_member m = {name_of(&ns, dev), dev, sqlite3_column_int(st, 1),
                                 sqlite3_column_int(st, 2)};
        stop = cb(&m, ctx);
    }
    sqlite3_finalize(st);
    kith_free(ns.v);
    return KITH_OK;
}

/* The current member @who names: a user name, or 4+ hex digits of a device id. */
static int resolve_member(kith_replica *r, const kith_members *m, const char *who, uint8_t pk[32])
{
    struct names ns = {0};
    if (kith_ws_log(r->ws, NULL, 0, name_cb, &ns) != KITH_OK)
        ns.n = 0;
    int found = 0;
    size_t wl = strlen(who);
    for (size_t i = 0; i < kith_members_count(m); i++) {
        int role;
        const uint8_t *p = kith_members_get(m, i, &role);
        char dev[65];
        sodium_bin2hex(dev, sizeof dev, p, 32);
        int hit =
            !strcmp(name_of(&ns, dev), who) || (wl >= 4 && wl <= 64 && !strncasecmp(dev, who, wl));
        if (hit) {
            if (found && memcmp(pk, p, 32) != 0) {
                kith_free(ns.v);
                return rp_fail(r, KITH_EINVAL,
                               "'%s' names more than one member: give more of "
                               "the device id (kith members)",
                               who);
            }
            memcpy(pk, p, 32);
            found = 1;
        }
    }
    kith_free(ns.v);
    return found ? KITH_OK : rp_fail(r, KITH_ENOTFOUND, "no current member '%s'", who);
}

int kith_replica_remove(kith_replica *r, const char *who)
{
    struct rconn *k = NULL;
    int rc = connect_first(r, &k);
    if (rc)
        return rc;
    const kith_members *m = kith_sync_client_members(k->c);
    uint8_t pk[32], key[32], *op = NULL;
    size_t ol = 0;
    rc = resolve_member(r, m, who, pk);
    if (rc == KITH_OK && !memcmp(pk, r->pk, 32))
        rc = rp_fail(r, KITH_EINVAL, "this device cannot remove itself");
    /* The cut-off (PROTOCOL.md 3.2): after a sync, the last seq of the
     * device that this replica or the hub holds; later blobs are refused. */
    if (rc == KITH_OK)
        rc = rp_conn_exchange(k, TIMEOUT_MS, 0);
    if (rc == KITH_OK)
        m = kith_sync_client_members(k->c);
    uint64_t last = kith_vv_get(r->held, pk);
    if (rc == KITH_OK && k->hub_known && kith_vv_get(k->hub_known, pk) > last)
        last = kith_vv_get(k->hub_known, pk);
    uint32_t epoch = kith_members_epoch(m) + 1;
    randombytes_buf(key, sizeof key);
    if (rc == KITH_OK &&
        kith_member_op_remove(m, r->sk, pk, last, (uint64_t)rp_now_ms(), &op, &ol) != KITH_OK)
        rc = rp_fail(r, KITH_EIO, "cannot sign the removal");
    if (rc == KITH_OK)
        rc = rp_conn_member_op(k, op, ol, NULL, 0, TIMEOUT_MS);
    /* The removed device knew every key so far: new changes get a new one,
     * handed to each remaining member in an envelope only it can open. */
    if (rc == KITH_OK)
        rc = rp_key_put(r, epoch, key);
    sodium_memzero(key, sizeof key);
    if (rc == KITH_OK)
        rc = rp_keys_send_envelopes(k, 1);
    conn_done(k);
    return rc;
}

/* ---- key envelopes
 * ------------------------------------------------------------------------------- */

int rp_envelope_make(kith_replica *r, uint32_t epoch, const uint8_t key[32],
                     const uint8_t recipient[32], uint8_t out[ENV_LEN])
{
    uint8_t xpk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, recipient) != 0)
        return rp_fail(r, KITH_EINVAL, "a member's device id is not a valid key");
    out[0] = 1;
    memcpy(out + 1, r->ws_id, 16);
    out[17] = (uint8_t)(epoch >> 24);
    out[18] = (uint8_t)(epoch >> 16);
    out[19] = (uint8_t)(epoch >> 8);
    out[20] = (uint8_t)epoch;
    memcpy(out + 21, recipient, 32);
    memcpy(out + 53, r->pk, 32);
    crypto_box_seal(out + 85, key, 32, xpk);
    uint8_t msg[sizeof ENV_CTX - 1 + 165];
    memcpy(msg, ENV_CTX, sizeof ENV_CTX - 1);
    memcpy(msg + sizeof ENV_CTX - 1, out, 165);
    crypto_sign_detached(out + 165, NULL, msg, sizeof msg, r->sk);
    return KITH_OK;
}

static int member_role_now(kith_replica *r, const uint8_t *pk)
{
    sqlite3_stmt *st = NULL;
    int role = 0;
    if (sqlite3_prepare_v2(r->db, "SELECT role FROM members WHERE device = ? AND removed = 0", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        role = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return role;
}

int rp_keys_take_envelopes(kith_replica *r, const uint8_t *p, size_t len)
{
    uint8_t xpk[32], xsk[32], key[32];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, r->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(xsk, r->sk) != 0)
        return rp_fail(r, KITH_EINVAL, "this device's key does not convert");
    int rc = KITH_OK;
    for (size_t off = 0; rc == KITH_OK && off + ENV_LEN <= len; off += ENV_LEN) {
        const uint8_t *e = p + off;
        uint32_t epoch =
            ((uint32_t)e[17] << 24) | ((uint32_t)e[18] << 16) | ((uint32_t)e[19] << 8) | e[20];
        uint8_t have[32], msg[sizeof ENV_CTX - 1 + 165];
        if (e[0] != 1 || memcmp(e + 1, r->ws_id, 16) || memcmp(e + 21, r->pk, 32) ||
            rp_key_get(r, epoch, have) == KITH_OK)
            continue;
        memcpy(msg, ENV_CTX, sizeof ENV_CTX - 1);
        memcpy(msg + sizeof ENV_CTX - 1, e, 165);
        /* Only a current writer or more hands out keys. */
        if (crypto_sign_verify_detached(e + 165, msg, sizeof msg, e + 53) != 0 ||
            member_role_now(r, e + 53) < KITH_ROLE_WRITER) {
            kith_log(KITH_LOG_WARN, "replica: refused a key envelope for epoch %u", epoch);
            continue;
        }
        if (crypto_box_seal_open(key, e + 85, 80, xpk, xsk) != 0) {
            kith_log(KITH_LOG_WARN, "replica: a key envelope for epoch %u does not open", epoch);
            continue;
        }
        rc = rp_key_put(r, epoch, key);
    }
    sodium_memzero(xsk, sizeof xsk);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* Envelopes of the newest key for every current member that this device
 * has not sent one to (a member removed meanwhile, a device that joined with
 * an invite made before the rotation). Epoch 0 travels in invites only. */
int rp_keys_send_envelopes(struct rconn *k, int wait)
{
    kith_replica *r = k->r;
    uint32_t epoch = 0;
    uint8_t key[32];
    if (!k->ready || k->role < KITH_ROLE_WRITER || rp_key_newest(r, &epoch, key) != KITH_OK ||
        epoch == 0)
        return KITH_OK;
    const kith_members *m = kith_sync_client_members(k->c);
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = KITH_OK;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM env_sent WHERE epoch = ? AND recipient = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    for (size_t i = 0; rc == KITH_OK && i < kith_members_count(m) && n < 256; i++) {
        int role;
        const uint8_t *pk = kith_members_get(m, i, &role);
        if (!memcmp(pk, r->pk, 32))
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, epoch);
        sqlite3_bind_blob(st, 2, pk, 32, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            continue;
        if (kith_grow((void **)&buf, &cap, (n + 1) * ENV_LEN, 1) != 0)
            rc = rp_fail(r, KITH_ENOMEM, "out of memory");
        else
            rc = rp_envelope_make(r, epoch, key, pk, buf + n++ * ENV_LEN);
    }
    sqlite3_finalize(st);
    sodium_memzero(key, sizeof key);
    if (rc == KITH_OK && n) {
        memcpy(k->member_hash, kith_members_head(m), 32);
        k->member_wait = 1;
        k->member_done = 0;
        rc = kith_sync_client_keys_put(k->c, buf, n * ENV_LEN);
        if (rc == KITH_OK && wait)
            rc = rp_conn_run(k, rp_conn_member_done, TIMEOUT_MS);
        k->member_wait = 0;
        if (rc == KITH_OK && k->member_status != KITH_OK)
            rc = rp_fail(r, k->member_status, "%s", k->errmsg);
        if (rc == KITH_OK &&
            sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO env_sent VALUES(?, ?)", -1, &st,
                               NULL) == SQLITE_OK) {
            for (size_t i = 0; i < n; i++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, epoch);
                sqlite3_bind_blob(st, 2, buf + i * ENV_LEN + 21, 32, SQLITE_STATIC);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
        }
    }
    kith_free(buf);
    return rc;
}
