/*
 * Exchanges with a hub, one connection per remote, shared by the one-shot
 * verbs (sync, remote add, invite, join, remove: built-in poll loop) and
 * live mode (the daemon's libuv loop, live.c). What arrives is checked
 * here before anything is applied: the blob's signature and workspace, that
 * its author may write, then kith_ws_apply_change_from, which applies the
 * payload inside as the change the blob names (a version 0 payload must
 * name the same author and seq, so no member can pass off a change as
 * another's). Blobs whose parents have not
 * arrived are kept in sync.db and applied by rp_drain once they have.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "replica/lan.h"
#include "replica/replica_int.h"
#include "util/util_int.h"

#define SNAPSHOT_EVERY 256 /* changes on the hub between snapshots this device uploads */

/* ---- checks and apply ---------------------------------------------------------------------- */

/* The cut-off of a device removed by a REMOVE_AT op (PROTOCOL.md 3.2),
 * kept in meta as "cutoff.<hex device>"; KITH_ENOTFOUND if none. */
static int cutoff_get(kith_replica *r, const uint8_t *author, uint64_t *last)
{
    char k[80], v[32];
    memcpy(k, "cutoff.", 7);
    sodium_bin2hex(k + 7, 65, author, 32);
    int rc = rp_meta_get(r, k, v, sizeof v);
    if (rc == KITH_OK)
        *last = strtoull(v, NULL, 10);
    return rc;
}

/* Records the chain's cut-offs for the removed devices sync.db lists (after
 * rp_members_save): set for a REMOVE_AT, dropped otherwise. */
static int cutoffs_save(kith_replica *r, const kith_members *m)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT device FROM members WHERE removed = 1", -1, &st, NULL) !=
        SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    int rc = KITH_OK;
    while (rc == KITH_OK && sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *pk = sqlite3_column_blob(st, 0);
        uint64_t last = 0;
        int was = 0;
        char k[80], v[32];
        if (!pk || sqlite3_column_bytes(st, 0) != 32)
            continue;
        memcpy(k, "cutoff.", 7);
        sodium_bin2hex(k + 7, 65, pk, 32);
        if (kith_members_cutoff(m, pk, &last, &was) == KITH_OK) {
            snprintf(v, sizeof v, "%llu", (unsigned long long)last);
            rc = rp_meta_set(r, k, v);
        } else {
            sqlite3_stmt *d = NULL;
            if (sqlite3_prepare_v2(r->db, "DELETE FROM meta WHERE k = ?", -1, &d, NULL) !=
                SQLITE_OK)
                rc = rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
            else {
                sqlite3_bind_text(d, 1, k, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(d) != SQLITE_DONE)
                    rc = rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
            }
            sqlite3_finalize(d);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int rp_members_save_all(kith_replica *r, const kith_members *m)
{
    int rc = rp_members_save(r, m);
    return rc ? rc : cutoffs_save(r, m);
}

/* 1 (r->err set) if @author was removed with a cut-off below @seq. Checked
 * on arrival and again right before applying: a blob kept waiting for its
 * parents may have arrived before the removal did. */
static int beyond_cutoff(kith_replica *r, const uint8_t *author, uint64_t seq)
{
    sqlite3_stmt *st = NULL;
    int removed = 0;
    uint64_t last = 0;
    if (sqlite3_prepare_v2(r->db, "SELECT removed FROM members WHERE device = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
        removed = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (!removed || cutoff_get(r, author, &last) != KITH_OK || seq <= last)
        return 0;
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, author, 32);
    rp_fail(r, KITH_EPERM,
            "refused a blob of removed device %.16s: seq %llu is beyond its cut-off %llu", hex,
            (unsigned long long)seq, (unsigned long long)last);
    return 1;
}

/* May @author write blobs sealed with @epoch? A current writer, or a former
 * one for blobs sealed before the removal moved the epoch on and, when the
 * removal named a cut-off (REMOVE_AT), with @seq at most that. */
static int author_may_write(kith_replica *r, const uint8_t *author, uint32_t epoch, uint64_t seq)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT role, removed FROM members WHERE device = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
    int ok = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int role = sqlite3_column_int(st, 0), removed = sqlite3_column_int(st, 1);
        char e[32] = "0";
        if (rp_meta_get(r, "epoch", e, sizeof e) != KITH_OK)
            snprintf(e, sizeof e, "0");
        ok = role >= KITH_ROLE_WRITER && (!removed || epoch < (uint32_t)strtoul(e, NULL, 10));
    }
    sqlite3_finalize(st);
    if (ok && beyond_cutoff(r, author, seq))
        ok = -1;
    return ok;
}

static void on_file(const kith_ws_file *f, void *ctx)
{
    kith_replica_report *rep = ctx;
    if (f->what != KITH_WS_WARNING)
        rep->files++;
}

/* Opens and applies a verified blob: KITH_OK, KITH_EMISSING (keep it), else refused. */
static int apply_blob(kith_replica *r, const kith_blob_info *info, const uint8_t *blob, size_t len,
                      kith_replica_report *rep)
{
    uint8_t key[32];
    uint8_t *plain = NULL;
    size_t pl = 0;
    kith_blob_info got;
    if (beyond_cutoff(r, info->author, info->seq))
        return KITH_EPERM;
    int rc = rp_key_get(r, info->epoch, key);
    if (rc)
        return rp_fail(r, KITH_EMISSING, "no key for epoch %u yet", info->epoch);
    rc = kith_blob_open(blob, len, r->ws_id, key, &got, &plain, &pl);
    sodium_memzero(key, sizeof key);
    if (rc)
        return rp_fail(r, rc, "a change blob does not open: %s", kith_strerror(rc));
    /* The change is the one the blob's header names: a version 1 payload
     * takes its author and seq from there, a version 0 one must name them
     * (a member could else pass off another's change). */
    kith_ws_result res;
    kith_replica_report tmp = {0};
    rc = kith_ws_apply_change_from(r->ws, got.author, got.seq, plain, pl, on_file, &tmp, &res);
    if (rc == KITH_OK) {
        if (kith_vv_get(r->held, info->author) < info->seq &&
            kith_vv_set(r->held, info->author, info->seq) != KITH_OK)
            rc = KITH_ENOMEM;
        rep->pulled++;
        rep->files += tmp.files;
        kith_log(KITH_LOG_DEBUG, "sync: applied change %.12s (%zu file%s)", res.change, tmp.files,
                 tmp.files == 1 ? "" : "s");
    } else if (rc != KITH_EMISSING) {
        rp_fail(r, rc, "a change from the hub does not apply: %s", kith_ws_errmsg(r->ws));
    }
    if (plain)
        sodium_memzero(plain, pl);
    kith_free(plain);
    return rc;
}

int rp_take_blob(kith_replica *r, const uint8_t *blob, size_t len, kith_replica_report *rep)
{
    kith_blob_info info;
    int rc = kith_blob_verify(blob, len, r->ws_id, &info);
    if (rc)
        return rp_fail(r, rc, "refused a blob: %s", kith_strerror(rc));
    if (info.kind != KITH_BLOB_CHANGE)
        return rp_fail(r, KITH_EINVAL, "refused a blob of another kind or workspace");
    if (kith_vv_check(r->held, info.author, info.seq) == KITH_SEQ_DUP)
        return KITH_OK;
    int may = author_may_write(r, info.author, info.epoch, info.seq);
    if (may < 0)
        return KITH_EPERM; /* beyond a removed device's cut-off; r->err says so */
    if (!may)
        return rp_fail(r, KITH_EPERM, "refused a blob whose author may not write");
    rc = rp_blob_put(r, &info, blob, len, 0);
    if (rc)
        return rc;
    if (kith_vv_check(r->held, info.author, info.seq) != KITH_SEQ_NEXT)
        return KITH_OK; /* rp_drain applies it once the earlier ones are here */
    rc = apply_blob(r, &info, blob, len, rep);
    if (rc == KITH_EMISSING)
        return KITH_OK;
    if (rc == KITH_OK)
        return rp_blob_mark(r, info.author, info.seq);
    kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    rp_blob_mark(r, info.author, info.seq); /* never retried */
    return rc;
}

int rp_drain(kith_replica *r, kith_replica_report *rep)
{
    for (int progress = 1; progress;) {
        progress = 0;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(r->db,
                               "SELECT author, seq, data FROM blobs WHERE applied = 0"
                               " ORDER BY id",
                               -1, &st, NULL) != SQLITE_OK)
            return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
        /* Marks are written after the walk: collect them. */
        struct mark {
            uint8_t a[32];
            uint64_t s;
        } *marks = NULL;
        size_t nm = 0, cap = 0;
        int rc = KITH_OK;
        while (rc == KITH_OK && sqlite3_step(st) == SQLITE_ROW) {
            kith_blob_info info;
            const uint8_t *b = sqlite3_column_blob(st, 2);
            size_t bl = (size_t)sqlite3_column_bytes(st, 2);
            if (kith_blob_parse(b, bl, &info) != KITH_OK)
                continue;
            enum kith_seq_check c = kith_vv_check(r->held, info.author, info.seq);
            int done = c == KITH_SEQ_DUP;
            if (c == KITH_SEQ_NEXT) {
                int arc = apply_blob(r, &info, b, bl, rep);
                if (arc == KITH_OK)
                    progress = 1;
                done = arc != KITH_EMISSING;
                if (arc != KITH_OK && arc != KITH_EMISSING)
                    kith_log(KITH_LOG_WARN, "replica: %s", r->err);
            }
            if (done) {
                if (kith_grow((void **)&marks, &cap, nm + 1, sizeof *marks) != 0) {
                    rc = KITH_ENOMEM;
                    break;
                }
                memcpy(marks[nm].a, info.author, 32);
                marks[nm++].s = info.seq;
            }
        }
        sqlite3_finalize(st);
        for (size_t i = 0; rc == KITH_OK && i < nm; i++)
            rc = rp_blob_mark(r, marks[i].a, marks[i].s);
        kith_free(marks);
        if (rc)
            return rc;
    }
    return KITH_OK;
}

/* ---- pushing -----------------------------------------------------------------------------------
 */

struct push_ctx {
    struct rconn *k;
    uint32_t epoch;
    uint8_t key[32];
    uint8_t skip[8][32]; /* authors whose next blob we lack: later ones would be gaps */
    int nskip;
    int rc;
};

static int push_one(const uint8_t author[32], uint64_t seq, const uint8_t *payload, size_t len,
                    void *ctx)
{
    struct push_ctx *p = ctx;
    struct rconn *k = p->k;
    kith_replica *r = k->r;
    uint8_t *blob = NULL;
    size_t bl = 0;
    for (int i = 0; i < p->nskip; i++)
        if (!memcmp(p->skip[i], author, 32))
            return 0;
    int rc;
    if (!memcmp(author, r->pk, 32))
        rc = kith_blob_seal(KITH_BLOB_CHANGE, r->ws_id, r->sk, seq, p->epoch, p->key, payload, len,
                            &blob, &bl);
    else
        rc = rp_blob_get(r, author, seq, &blob, &bl);
    if (rc == KITH_ENOTFOUND) {
        /* Another author's change that came inside a snapshot: the hub
         * already has it or gets it from its author. */
        if (p->nskip < 8)
            memcpy(p->skip[p->nskip++], author, 32);
        return 0;
    }
    if (rc == KITH_OK)
        rc = kith_sync_client_push(k->c, blob, bl);
    if (rc == KITH_OK) {
        k->pushes_out++;
        k->rep.bytes_sent += bl + 12;
        if (kith_vv_get(k->hub_known, author) < seq)
            rc = kith_vv_set(k->hub_known, author, seq);
    }
    kith_free(blob);
    p->rc = rc;
    return rc ? 1 : 0;
}

int rp_push_missing(struct rconn *k)
{
    kith_replica *r = k->r;
    if (!k->hub_known || !k->ready)
        return KITH_OK;
    if (k->role < KITH_ROLE_WRITER) {
        kith_vv *mine = NULL;
        int rc = rp_ws_vv(r, &mine);
        uint64_t n = 0;
        for (size_t i = 0; rc == KITH_OK && i < kith_vv_count(mine); i++) {
            uint64_t a = kith_vv_seq(mine, i),
                     b = kith_vv_get(k->hub_known, kith_vv_author(mine, i));
            n += a > b ? a - b : 0;
        }
        kith_vv_free(mine);
        if (n && !k->err) {
            k->err = KITH_EPERM;
            snprintf(k->errmsg, sizeof k->errmsg,
                     "this device is a %s of the workspace: its %llu change%s stay here",
                     kith_role_name(k->role), (unsigned long long)n, n == 1 ? "" : "s");
        }
        return KITH_OK;
    }
    size_t n = kith_vv_count(k->hub_known);
    kith_ws_vv_entry *e = kith_malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        memcpy(e[i].author, kith_vv_author(k->hub_known, i), 32);
        e[i].seq = kith_vv_seq(k->hub_known, i);
    }
    struct push_ctx p = {.k = k};
    int rc = rp_key_newest(r, &p.epoch, p.key);
    if (rc == KITH_OK)
        rc = kith_ws_changes_since(r->ws, e, n, push_one, &p);
    if (rc == KITH_OK)
        rc = p.rc;
    else if (rc != KITH_ENOTFOUND)
        rp_fail(r, rc, "%s", kith_ws_errmsg(r->ws));
    sodium_memzero(p.key, sizeof p.key);
    kith_free(e);
    return rc;
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static uint64_t vv_total(const kith_vv *vv)
{
    uint64_t t = 0;
    for (size_t i = 0; i < kith_vv_count(vv); i++)
        t += kith_vv_seq(vv, i);
    return t;
}

/* Uploads kith_ws_export as a snapshot when the hub has moved on by
 * SNAPSHOT_EVERY changes since this device's last one (or @force). Returns
 * 1 when one is on its way. */
static int maybe_snapshot(struct rconn *k, int force)
{
    kith_replica *r = k->r;
    char name[300], v[32];
    snprintf(name, sizeof name, "snap:%s", k->url);
    uint64_t last = 0, total = vv_total(r->held);
    if (rp_meta_get(r, name, v, sizeof v) == KITH_OK)
        last = strtoull(v, NULL, 10);
    if (k->role < KITH_ROLE_WRITER || total == 0 || (!force && total < last + SNAPSHOT_EVERY))
        return 0;
    uint8_t *exp = NULL, *blob = NULL, key[32];
    size_t el = 0, bl = 0;
    uint32_t epoch = 0;
    kith_vv *covers = NULL;
    int rc = rp_ws_vv(r, &covers);
    if (rc == KITH_OK && kith_ws_export(r->ws, &exp, &el) != KITH_OK)
        rc = rp_fail(r, KITH_EIO, "%s", kith_ws_errmsg(r->ws));
    if (rc == KITH_OK && el > KITH_BLOB_MAX_DEFAULT) {
        kith_log(KITH_LOG_INFO, "replica: snapshot of %zu bytes is over the hub's limit", el);
        rc = KITH_ETOOBIG;
    }
    uint64_t sseq = 1;
    if (rc == KITH_OK && rp_meta_get(r, "snap_seq", v, sizeof v) == KITH_OK)
        sseq = strtoull(v, NULL, 10) + 1;
    if (rc == KITH_OK)
        rc = rp_key_newest(r, &epoch, key);
    if (rc == KITH_OK)
        rc = kith_blob_seal(KITH_BLOB_SNAPSHOT, r->ws_id, r->sk, sseq, epoch, key, exp, el, &blob,
                            &bl);
    sodium_memzero(key, sizeof key);
    if (rc == KITH_OK)
        rc = kith_sync_client_snapshot(k->c, covers, blob, bl);
    if (rc == KITH_OK) {
        k->rep.bytes_sent += bl + 16 + 40 * kith_vv_count(covers);
        snprintf(v, sizeof v, "%llu", (unsigned long long)sseq);
        rp_meta_set(r, "snap_seq", v);
        snprintf(v, sizeof v, "%llu", (unsigned long long)vv_total(covers));
        rp_meta_set(r, name, v);
        k->snap_pending = 1;
    }
    kith_free(exp);
    kith_free(blob);
    kith_vv_free(covers);
    return rc == KITH_OK;
}

/* ---- callbacks --------------------------------------------------------------------------------
 */

static void cb_ready(void *ud, kith_sync_client *c, int role, const kith_members *m,
                     const uint8_t *wrapped, size_t wl)
{
    struct rconn *k = ud;
    kith_replica *r = k->r;
    k->ready = 1;
    k->role = role;
    kith_log(KITH_LOG_INFO, "sync: %s: connected as %s", k->url, kith_role_name(role));
    size_t cl = 0;
    const uint8_t *chain = kith_sync_client_chain(c, &cl, NULL);
    if (rp_members_save_all(r, m) != KITH_OK || rp_lan_chain_save(r, chain, cl) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    kith_free(k->wrapped);
    k->wrapped = NULL;
    k->wrapped_len = 0;
    if (wl && (k->wrapped = kith_malloc(wl))) {
        memcpy(k->wrapped, wrapped, wl);
        k->wrapped_len = wl;
    }
    if (k->mode == KITH_SYNC_MEMBER && wl && rp_keys_take_envelopes(r, wrapped, wl) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    if (!k->live)
        return;
    /* Live: catch up at once, then stay for the relay. */
    if (rp_keys_send_envelopes(k, 0) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    if (kith_sync_client_hello(c, r->held, kith_vv_count(r->held) == 0) != KITH_OK)
        kith_sync_client_close(c);
}

static void cb_hub_vv(void *ud, kith_sync_client *c, const kith_vv *hub)
{
    struct rconn *k = ud;
    kith_vv_free(k->hub_known);
    k->hub_known = NULL;
    int rc = kith_vv_new(&k->hub_known);
    for (size_t i = 0; rc == KITH_OK && i < kith_vv_count(hub); i++)
        rc = kith_vv_set(k->hub_known, kith_vv_author(hub, i), kith_vv_seq(hub, i));
    k->got_hub_vv = 1;
    k->rep.bytes_received += 12 + 40 * kith_vv_count(hub);
    if (rc == KITH_OK)
        rc = rp_push_missing(k);
    if (rc && !k->err) {
        k->err = rc;
        snprintf(k->errmsg, sizeof k->errmsg, "%s", k->r->err);
    }
}

static void cb_blob(void *ud, kith_sync_client *c, const uint8_t *blob, size_t len)
{
    struct rconn *k = ud;
    kith_blob_info info;
    k->rep.bytes_received += len + 12;
    if (k->hub_known && kith_blob_parse(blob, len, &info) == KITH_OK &&
        kith_vv_get(k->hub_known, info.author) < info.seq &&
        kith_vv_set(k->hub_known, info.author, info.seq) != KITH_OK)
        return;
    if (rp_take_blob(k->r, blob, len, &k->rep) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", k->r->err);
    rp_lan_changed(k->r); /* LAN peers get it too */
    if (k->live && k->caught_up)
        rp_state_write(k->r, 1);
}

static void cb_snapshot(void *ud, kith_sync_client *c, const kith_vv *covers, const uint8_t *blob,
                        size_t len)
{
    struct rconn *k = ud;
    kith_replica *r = k->r;
    kith_blob_info info;
    uint8_t key[32], *plain = NULL;
    size_t pl = 0;
    k->rep.bytes_received += len + 16 + 40 * kith_vv_count(covers);
    int rc = kith_blob_parse(blob, len, &info);
    if (rc == KITH_OK)
        rc = rp_key_get(r, info.epoch, key);
    if (rc == KITH_OK)
        rc = kith_blob_open(blob, len, r->ws_id, key, &info, &plain, &pl);
    sodium_memzero(key, sizeof key);
    if (rc == KITH_OK &&
        (info.kind != KITH_BLOB_SNAPSHOT ||
         /* a removed author's snapshot may cover none of its changes beyond the cut-off */
         author_may_write(r, info.author, info.epoch, kith_vv_get(covers, info.author)) <= 0))
        rc = KITH_EPERM;
    kith_ws_result res;
    kith_replica_report tmp = {0};
    if (rc == KITH_OK && kith_ws_import(r->ws, plain, pl, on_file, &tmp, &res) != KITH_OK) {
        rc = KITH_ECORRUPT;
        kith_log(KITH_LOG_WARN, "replica: the hub's snapshot does not import: %s",
                 kith_ws_errmsg(r->ws));
    }
    if (plain)
        sodium_memzero(plain, pl);
    kith_free(plain);
    if (rc) {
        kith_log(KITH_LOG_WARN, "replica: snapshot refused: %s", kith_strerror(rc));
        return;
    }
    /* The hub holds a snapshot this large: no need to send it another soon. */
    char name[300], v[32];
    snprintf(name, sizeof name, "snap:%s", k->url);
    snprintf(v, sizeof v, "%llu", (unsigned long long)vv_total(covers));
    rp_meta_set(r, name, v);
    kith_vv *now = NULL;
    if (rp_ws_vv(r, &now) == KITH_OK) {
        k->rep.pulled += vv_total(now) - vv_total(r->held);
        kith_vv_free(r->held);
        r->held = now;
    }
    k->rep.files += tmp.files;
}

static void cb_caught_up(void *ud, kith_sync_client *c)
{
    struct rconn *k = ud;
    k->caught_up = 1;
    k->rep.bytes_received += 8;
    if (rp_drain(k->r, &k->rep) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", k->r->err);
    if (k->live) {
        k->backoff_ms = 0;
        rp_remote_result(k->r, k->url, NULL, k->hub_known);
        rp_state_write(k->r, 1);
    }
}

static void cb_push_result(void *ud, kith_sync_client *c, const uint8_t author[32], uint64_t seq,
                           int status, const char *text)
{
    struct rconn *k = ud;
    k->rep.bytes_received += 8 + 32 + 8 + 2 + 4 + strlen(text);
    if (k->snap_pending && k->pushes_out == 0) {
        k->snap_pending = 0;
        if (status != KITH_OK)
            kith_log(KITH_LOG_INFO, "replica: the hub did not take the snapshot: %s", text);
        return;
    }
    if (k->pushes_out > 0)
        k->pushes_out--;
    if (status == KITH_OK) {
        k->rep.pushed++;
    } else {
        if (!k->err) {
            k->err = status;
            snprintf(k->errmsg, sizeof k->errmsg, "the hub refused a change: %s", text);
        }
        /* Not there after all: the next exchange tries it again. */
        if (k->hub_known && kith_vv_get(k->hub_known, author) >= seq &&
            kith_vv_set(k->hub_known, author, seq - 1) != KITH_OK)
            return;
    }
    if (k->live && k->pushes_out == 0) {
        rp_remote_result(k->r, k->url, NULL, k->hub_known);
        rp_state_write(k->r, 1);
    }
}

static void cb_member_op(void *ud, kith_sync_client *c, int status, const char *text,
                         const kith_members *m)
{
    struct rconn *k = ud;
    size_t cl = 0;
    const uint8_t *chain = kith_sync_client_chain(c, &cl, NULL);
    if (status == KITH_OK &&
        (rp_members_save_all(k->r, m) != KITH_OK || rp_lan_chain_save(k->r, chain, cl) != KITH_OK))
        kith_log(KITH_LOG_WARN, "replica: %s", k->r->err);
    if (!k->member_wait)
        return;
    if (status != KITH_OK) {
        k->member_done = 1;
        k->member_status = status;
        snprintf(k->errmsg, sizeof k->errmsg, "the hub refused the membership change: %s", text);
    } else if (!memcmp(kith_members_head(m), k->member_hash, 32)) {
        k->member_done = 1;
        k->member_status = KITH_OK;
    }
}

static void cb_closed(void *ud, kith_sync_client *c, int err, const char *msg)
{
    struct rconn *k = ud;
    k->closed = 1;
    if (err && !k->err) {
        k->err = err;
        snprintf(k->errmsg, sizeof k->errmsg, "%s", msg);
    }
    if (k->live)
        rp_live_closed(k);
}

/* ---- connections --------------------------------------------------------------------------------
 */

int rp_conn_new(kith_replica *r, const char *url, const char *fp_text, struct rconn **out)
{
    struct rconn *k = calloc(1, sizeof *k);
    *out = NULL;
    if (!k)
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    k->r = r;
    snprintf(k->url, sizeof k->url, "%s", url);
    if (fp_text && *fp_text) {
        if (kith_fingerprint_parse(fp_text, k->fp) != KITH_OK) {
            free(k);
            return rp_fail(r, KITH_EINVAL, "'%s' is not a fingerprint (SHA256:<64 hex digits>)",
                           fp_text);
        }
        k->has_fp = 1;
    }
    k->mode = KITH_SYNC_MEMBER;
    *out = k;
    return KITH_OK;
}

void rp_conn_free(struct rconn *k)
{
    if (!k)
        return;
    kith_sync_client_free(k->c);
    kith_vv_free(k->hub_known);
    kith_free(k->genesis_op);
    if (k->wrapped)
        sodium_memzero(k->wrapped, k->wrapped_len);
    kith_free(k->wrapped);
    free(k);
}

int rp_conn_start(struct rconn *k)
{
    kith_replica *r = k->r;
    int rc;
    if (!r->loop) {
        kith_sync_loop_opts lo = {.size = sizeof lo, .uv_loop = r->uv_loop};
        rc = kith_sync_loop_new(&lo, &r->loop);
        if (rc)
            return rp_fail(r, rc, "cannot start the network: %s", kith_strerror(rc));
    }
    kith_sync_client_free(k->c);
    k->c = NULL;
    k->ready = k->closed = k->caught_up = k->got_hub_vv = k->snap_pending = 0;
    k->pushes_out = 0;
    k->err = 0;
    k->errmsg[0] = 0;
    kith_sync_client_opts o = {.size = sizeof o};
    uint8_t genesis[32];
    char hex[80];
    o.url = k->url;
    o.fingerprint = k->has_fp ? k->fp : NULL;
    memcpy(o.ws_id, r->ws_id, 16);
    o.device_sk = r->sk;
    o.mode = k->mode;
    o.genesis_op = k->genesis_op;
    o.genesis_op_len = k->genesis_op_len;
    o.cap_seed = k->cap_seed;
    if (k->mode != KITH_SYNC_REGISTER && rp_meta_get(r, "genesis", hex, sizeof hex) == KITH_OK &&
        sodium_hex2bin(genesis, 32, hex, strlen(hex), NULL, NULL, NULL) == 0)
        o.genesis = genesis;
    o.cb = (kith_sync_callbacks){cb_ready,     cb_hub_vv,      cb_blob,      cb_snapshot,
                                 cb_caught_up, cb_push_result, cb_member_op, cb_closed};
    o.ud = k;
    rc = kith_sync_client_new(r->loop, &o, &k->c);
    if (rc)
        return rp_fail(r, rc, "cannot connect to '%s': %s", k->url, kith_strerror(rc));
    return KITH_OK;
}

int rp_conn_run(struct rconn *k, int (*done)(struct rconn *k), int timeout_ms)
{
    int64_t end = rp_now_ms() + timeout_ms;
    while (!done(k) && !k->closed && rp_now_ms() < end)
        if (kith_sync_loop_run(k->r->loop, 20) != KITH_OK)
            break;
    if (done(k))
        return KITH_OK;
    if (k->closed)
        return rp_fail(k->r, k->err ? k->err : KITH_ENET, "%s: %s", k->url,
                       k->errmsg[0] ? k->errmsg : "connection closed");
    return rp_fail(k->r, KITH_ENET, "%s: no answer within %d ms", k->url, timeout_ms);
}

int rp_conn_ready_or_closed(struct rconn *k)
{
    return k->ready;
}

int rp_conn_exchange_done(struct rconn *k)
{
    return k->caught_up && k->got_hub_vv && k->pushes_out == 0 && !k->snap_pending;
}

int rp_conn_member_done(struct rconn *k)
{
    return k->member_done;
}

/* Sends a membership op (taking @op) and waits for the hub's verdict. */
int rp_conn_member_op(struct rconn *k, uint8_t *op, size_t len, const uint8_t *wrapped, size_t wl,
                      int timeout_ms)
{
    crypto_generichash(k->member_hash, 32, op, len, NULL, 0);
    k->member_wait = 1;
    k->member_done = 0;
    int rc = kith_sync_client_member_op(k->c, op, len, wrapped, wl);
    kith_free(op);
    if (rc)
        return rp_fail(k->r, rc, "cannot send the membership change: %s", kith_strerror(rc));
    rc = rp_conn_run(k, rp_conn_member_done, timeout_ms);
    k->member_wait = 0;
    if (rc == KITH_OK && k->member_status != KITH_OK)
        rc = rp_fail(k->r, k->member_status, "%s", k->errmsg);
    return rc;
}

/* One exchange on a started connection: hello, pushes, pulls, maybe a snapshot. */
int rp_conn_exchange(struct rconn *k, int timeout_ms, int force_snapshot);
int rp_conn_exchange(struct rconn *k, int timeout_ms, int force_snapshot)
{
    kith_replica *r = k->r;
    int rc = rp_conn_run(k, rp_conn_ready_or_closed, timeout_ms);
    if (rc)
        return rc;
    if (rp_keys_send_envelopes(k, 1) != KITH_OK)
        kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    int empty = kith_vv_count(r->held) == 0;
    rc = kith_sync_client_hello(k->c, r->held, empty);
    if (rc)
        return rp_fail(r, rc, "%s: cannot say hello: %s", k->url, kith_strerror(rc));
    k->rep.bytes_sent += 13 + 40 * kith_vv_count(r->held);
    rc = rp_conn_run(k, rp_conn_exchange_done, timeout_ms);
    if (rc)
        return rc;
    if (maybe_snapshot(k, force_snapshot))
        rc = rp_conn_run(k, rp_conn_exchange_done, timeout_ms);
    return rc;
}
