/*
 * The replica's own state, beside the workspace's store: .kith/sync.db
 * (SQLite, WAL, mode 0600: it holds the workspace keys of every epoch) and
 * .kith/sync-state.json, the summary `kith status` prints, replaced
 * atomically after each exchange. Schema and JSON in docs/PROTOCOL.md,
 * "Replica state".
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replica/lan.h"
#include "replica/replica_int.h"
#include "sync/sync_int.h"
#include "util/util_int.h"

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keys(epoch INTEGER PRIMARY KEY, key BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS remotes(url TEXT PRIMARY KEY, fingerprint TEXT,"
    " added_ms INTEGER NOT NULL, last_sync_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT, hub_vv BLOB);"
    "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, author BLOB NOT NULL,"
    " seq INTEGER NOT NULL, data BLOB NOT NULL, applied INTEGER NOT NULL,"
    " UNIQUE(author, seq));"
    "CREATE INDEX IF NOT EXISTS blobs_pending ON blobs(applied) WHERE applied = 0;"
    "CREATE TABLE IF NOT EXISTS members(device BLOB PRIMARY KEY, role INTEGER NOT NULL,"
    " removed INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS env_sent(epoch INTEGER NOT NULL, recipient BLOB NOT NULL,"
    " PRIMARY KEY(epoch, recipient));";

int64_t rp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rp_fail(kith_replica *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return rc;
}

static int db_fail(kith_replica *r, const char *what)
{
    return rp_fail(r, KITH_EIO, "sync state: %s: %s", what, sqlite3_errmsg(r->db));
}

int rp_exec(kith_replica *r, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rp_fail(r, KITH_EIO, "sync state: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return KITH_EIO;
    }
    return KITH_OK;
}

int rp_store_open(kith_replica *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.kith/sync.db", kith_ws_root(r->ws));
    /* Made 0600 before SQLite opens it: it holds the workspace keys. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return rp_fail(r, KITH_EIO, "cannot open '%s': %s", path, strerror(errno));
    close(fd);
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return db_fail(r, "open");
    sqlite3_busy_timeout(r->db, 10000);
    return rp_exec(r, schema);
}

static sqlite3_stmt *prep(kith_replica *r, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail(r, "prepare");
        return NULL;
    }
    return st;
}

static int step_done(kith_replica *r, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? KITH_OK : db_fail(r, what);
}

int rp_meta_get(kith_replica *r, const char *k, char *out, size_t cap)
{
    sqlite3_stmt *st = prep(r, "SELECT v FROM meta WHERE k = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = KITH_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = KITH_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int rp_meta_set(kith_replica *r, const char *k, const char *v)
{
    sqlite3_stmt *st = prep(r, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    return step_done(r, st, "meta");
}

/* ---- keys ---------------------------------------------------------------------------------- */

int rp_key_get(kith_replica *r, uint32_t epoch, uint8_t key[32])
{
    sqlite3_stmt *st = prep(r, "SELECT key FROM keys WHERE epoch = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_int64(st, 1, epoch);
    int rc = KITH_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(key, sqlite3_column_blob(st, 0), 32);
        rc = KITH_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int rp_key_put(kith_replica *r, uint32_t epoch, const uint8_t key[32])
{
    sqlite3_stmt *st = prep(r, "INSERT OR IGNORE INTO keys(epoch, key) VALUES(?, ?)");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_int64(st, 1, epoch);
    sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
    int rc = step_done(r, st, "keys");
    if (rc)
        return rc;
    /* The workspace's own key file names the newest epoch. */
    uint32_t ne = 0;
    uint8_t nk[32];
    if (rp_key_newest(r, &ne, nk) == KITH_OK && ne == epoch &&
        kith_ws_set_workspace_key(r->ws, epoch, key) != KITH_OK)
        rc = rp_fail(r, KITH_EIO, "%s", kith_ws_errmsg(r->ws));
    sodium_memzero(nk, sizeof nk);
    return rc;
}

int rp_key_newest(kith_replica *r, uint32_t *epoch, uint8_t key[32])
{
    sqlite3_stmt *st = prep(r, "SELECT epoch, key FROM keys ORDER BY epoch DESC LIMIT 1");
    if (!st)
        return KITH_EIO;
    int rc = rp_fail(r, KITH_ENOTFOUND, "this device holds no workspace key");
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
        *epoch = (uint32_t)sqlite3_column_int64(st, 0);
        memcpy(key, sqlite3_column_blob(st, 1), 32);
        rc = KITH_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int rp_keys_all(kith_replica *r, kith_ws_key **keys, size_t *n)
{
    *keys = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = prep(r, "SELECT epoch, key FROM keys ORDER BY epoch");
    if (!st)
        return KITH_EIO;
    int rc = KITH_OK;
    while (sqlite3_step(st) == SQLITE_ROW && *n < RP_KEYS_MAX) {
        if (sqlite3_column_bytes(st, 1) != 32)
            continue;
        if (kith_grow((void **)keys, &cap, *n + 1, sizeof **keys) != 0) {
            rc = rp_fail(r, KITH_ENOMEM, "out of memory");
            break;
        }
        (*keys)[*n].epoch = (uint32_t)sqlite3_column_int64(st, 0);
        memcpy((*keys)[*n].key, sqlite3_column_blob(st, 1), 32);
        (*n)++;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- blobs ---------------------------------------------------------------------------------- */

int rp_blob_put(kith_replica *r, const kith_blob_info *info, const uint8_t *blob, size_t len,
                int applied)
{
    sqlite3_stmt *st = prep(r, "INSERT OR IGNORE INTO blobs(author, seq, data, applied)"
                               " VALUES(?, ?, ?, ?)");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_blob(st, 1, info->author, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)info->seq);
    sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, applied);
    return step_done(r, st, "blobs");
}

int rp_blob_get(kith_replica *r, const uint8_t author[32], uint64_t seq, uint8_t **blob,
                size_t *len)
{
    *blob = NULL;
    *len = 0;
    sqlite3_stmt *st = prep(r, "SELECT data FROM blobs WHERE author = ? AND seq = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    int rc = KITH_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *blob = kith_malloc(n ? n : 1);
        if (*blob) {
            memcpy(*blob, sqlite3_column_blob(st, 0), n);
            *len = n;
            rc = KITH_OK;
        } else {
            rc = KITH_ENOMEM;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int rp_blob_mark(kith_replica *r, const uint8_t author[32], uint64_t seq)
{
    sqlite3_stmt *st = prep(r, "UPDATE blobs SET applied = 1 WHERE author = ? AND seq = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_blob(st, 1, author, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    return step_done(r, st, "blobs");
}

/* ---- remotes ----------------------------------------------------------------------------------
 */

int rp_remote_insert(kith_replica *r, const char *url, const char *fp)
{
    sqlite3_stmt *st = prep(r, "INSERT INTO remotes(url, fingerprint, added_ms) VALUES(?, ?, ?)");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
    if (fp)
        sqlite3_bind_text(st, 2, fp, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rp_now_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        return rp_fail(r, KITH_EEXIST, "remote '%s' already exists", url);
    return rc == SQLITE_DONE ? KITH_OK : db_fail(r, "remotes");
}

int rp_remote_delete(kith_replica *r, const char *url)
{
    sqlite3_stmt *st = prep(r, "DELETE FROM remotes WHERE url = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
    return step_done(r, st, "remotes");
}

static int vv_to_blob(const kith_vv *vv, uint8_t **out, size_t *len)
{
    size_t n = kith_vv_count(vv);
    *out = kith_malloc(n * 40 + 1);
    if (!*out)
        return KITH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        memcpy(*out + i * 40, kith_vv_author(vv, i), 32);
        uint64_t s = kith_vv_seq(vv, i);
        for (int b = 0; b < 8; b++)
            (*out)[i * 40 + 32 + b] = (uint8_t)(s >> (56 - 8 * b));
    }
    *len = n * 40;
    return KITH_OK;
}

int rp_remote_result(kith_replica *r, const char *url, const char *error, const kith_vv *hub)
{
    sqlite3_stmt *st = prep(r, error ? "UPDATE remotes SET last_error = ? WHERE url = ?"
                                     : "UPDATE remotes SET last_error = ?, last_sync_ms = ?,"
                                       " hub_vv = ? WHERE url = ?");
    if (!st)
        return KITH_EIO;
    uint8_t *vb = NULL;
    size_t vl = 0;
    if (!error && hub && vv_to_blob(hub, &vb, &vl) != KITH_OK) {
        sqlite3_finalize(st);
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    }
    if (error) {
        sqlite3_bind_text(st, 1, error, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 1);
        sqlite3_bind_int64(st, 2, rp_now_ms());
        if (vb)
            sqlite3_bind_blob(st, 3, vb, (int)vl, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, url, -1, SQLITE_STATIC);
    }
    int rc = step_done(r, st, "remotes");
    kith_free(vb);
    return rc;
}

int rp_remote_hub_vv(kith_replica *r, const char *url, kith_vv **out)
{
    int rc = kith_vv_new(out);
    if (rc)
        return rp_fail(r, rc, "out of memory");
    sqlite3_stmt *st = prep(r, "SELECT hub_vv FROM remotes WHERE url = ?");
    if (!st)
        return KITH_EIO;
    sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0) / 40;
        for (size_t i = 0; p && rc == KITH_OK && i < n; i++)
            rc = kith_vv_set(*out, p + i * 40, get_u64(p + i * 40 + 32));
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- members -----------------------------------------------------------------------------------
 */

int rp_members_save(kith_replica *r, const kith_members *m)
{
    int rc = rp_exec(r, "BEGIN; UPDATE members SET removed = 1");
    if (rc)
        return rc;
    sqlite3_stmt *st = prep(r, "INSERT OR REPLACE INTO members(device, role, removed)"
                               " VALUES(?, ?, 0)");
    for (size_t i = 0; st && rc == KITH_OK && i < kith_members_count(m); i++) {
        int role = 0;
        const uint8_t *pk = kith_members_get(m, i, &role);
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, role);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(r, "members");
    }
    if (!st)
        rc = KITH_EIO;
    sqlite3_finalize(st);
    char hex[65], num[32];
    sodium_bin2hex(hex, sizeof hex, kith_members_genesis(m), 32);
    if (rc == KITH_OK)
        rc = rp_meta_set(r, "genesis", hex);
    snprintf(num, sizeof num, "%u", kith_members_epoch(m));
    if (rc == KITH_OK)
        rc = rp_meta_set(r, "epoch", num);
    if (rc == KITH_OK)
        return rp_exec(r, "COMMIT");
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- state file ---------------------------------------------------------------------------------
 */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int rp_ws_vv(kith_replica *r, kith_vv **out)
{
    kith_ws_vv_entry *e = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = kith_ws_vv(r->ws, &e, &n);
    if (rc)
        return rp_fail(r, rc, "%s", kith_ws_errmsg(r->ws));
    rc = kith_vv_new(out);
    for (size_t i = 0; rc == KITH_OK && i < n; i++)
        rc = kith_vv_set(*out, e[i].author, e[i].seq);
    kith_free(e);
    if (rc) {
        kith_vv_free(*out);
        *out = NULL;
        return rp_fail(r, rc, "out of memory");
    }
    return KITH_OK;
}

/* Changes held here that @hub lacks. */
static uint64_t pending(const kith_vv *mine, const kith_vv *hub)
{
    uint64_t n = 0;
    for (size_t i = 0; i < kith_vv_count(mine); i++) {
        uint64_t a = kith_vv_seq(mine, i), b = kith_vv_get(hub, kith_vv_author(mine, i));
        n += a > b ? a - b : 0;
    }
    return n;
}

int rp_state_write(kith_replica *r, int online)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/.kith/sync-state.json", kith_ws_root(r->ws));
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    kith_vv *mine = NULL;
    int rc = rp_ws_vv(r, &mine);
    if (rc)
        return rc;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        kith_vv_free(mine);
        return rp_fail(r, KITH_EIO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    fprintf(f, "{\"version\":1,\"updated_ms\":%lld,\"online\":%s,\"remotes\":[",
            (long long)rp_now_ms(), online ? "true" : "false");
    sqlite3_stmt *st = prep(r, "SELECT url, last_sync_ms, last_error FROM remotes ORDER BY url");
    uint64_t most = 0;
    int first = 1;
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        const char *url = (const char *)sqlite3_column_text(st, 0);
        const char *e = (const char *)sqlite3_column_text(st, 2);
        kith_vv *hub = NULL;
        uint64_t p = 0;
        if (rp_remote_hub_vv(r, url, &hub) == KITH_OK)
            p = pending(mine, hub);
        kith_vv_free(hub);
        most = p > most ? p : most;
        fprintf(f, "%s{\"url\":", first ? "" : ",");
        json_str(f, url);
        fprintf(f, ",\"last_sync_ms\":%lld,\"pending\":%llu,\"last_error\":",
                (long long)sqlite3_column_int64(st, 1), (unsigned long long)p);
        if (e)
            json_str(f, e);
        else
            fputs("null", f);
        fputc('}', f);
        first = 0;
    }
    sqlite3_finalize(st);
    fputc(']', f);
    rp_lan_state_json(r, f); /* LAN peers connected (lanpeer.c) */
    fprintf(f, ",\"pending\":%llu}\n", (unsigned long long)most);
    kith_vv_free(mine);
    int bad = ferror(f) != 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return rp_fail(r, KITH_EIO, "cannot write '%s': %s", path, strerror(errno));
    }
    return KITH_OK;
}
