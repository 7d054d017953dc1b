/*
 * The hub's storage: one SQLite database (WAL) in the data folder. It holds
 * only what the hub may see: workspace ids, the signed membership chains,
 * sealed blobs by (workspace, author, seq), invites (capability public key,
 * role, expiry, wrapped key) and the latest sealed snapshot. Every write is
 * one transaction, committed before the hub acknowledges it.
 *
 * synchronous=NORMAL in WAL mode survives a crash of the hub process but may
 * lose the last transactions on power loss; that is acceptable here because
 * every blob also lives on its author's device, which re-pushes what the
 * hub's vector lacks on the next connection.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sync/hubstore.h"
#include "sync/sync_int.h"
#include "util/util_int.h"

struct hubstore {
    sqlite3 *db;
    sqlite3_stmt *st[HS_NSTMT];
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS workspaces(id INTEGER PRIMARY KEY, ws BLOB UNIQUE NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS member_ops(wid INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " op BLOB NOT NULL, PRIMARY KEY(wid, idx));"
    "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, wid INTEGER NOT NULL,"
    " author BLOB NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE(wid, author, seq));"
    "CREATE TABLE IF NOT EXISTS invites(wid INTEGER NOT NULL, cap_pk BLOB NOT NULL,"
    " role INTEGER NOT NULL, expires_ms INTEGER NOT NULL, wrapped BLOB NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(wid, cap_pk));"
    "CREATE TABLE IF NOT EXISTS snapshots(wid INTEGER PRIMARY KEY, vv BLOB NOT NULL,"
    " total INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keyenv(wid INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " recipient BLOB NOT NULL, sender BLOB NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(wid, recipient, epoch, sender));";

static const char *const sql[HS_NSTMT] = {
    [HS_WS_FIND] = "SELECT id FROM workspaces WHERE ws=?1",
    [HS_WS_ADD] = "INSERT INTO workspaces(ws, created_ms) VALUES(?1, ?2)",
    [HS_OP_ADD] = "INSERT INTO member_ops(wid, idx, op) VALUES(?1, ?2, ?3)",
    [HS_OPS] = "SELECT op FROM member_ops WHERE wid=?1 ORDER BY idx",
    [HS_INV_ADD] = "INSERT INTO invites(wid, cap_pk, role, expires_ms, wrapped)"
                   " VALUES(?1, ?2, ?3, ?4, ?5)",
    [HS_INV_GET] = "SELECT role, expires_ms, used, wrapped FROM invites WHERE wid=?1 AND cap_pk=?2",
    [HS_INV_USE] = "UPDATE invites SET used=1, wrapped=x'' WHERE wid=?1 AND cap_pk=?2 AND used=0",
    [HS_BLOB_MAX] = "SELECT MAX(seq) FROM blobs WHERE wid=?1 AND author=?2",
    [HS_BLOB_ADD] = "INSERT INTO blobs(wid, author, seq, data) VALUES(?1, ?2, ?3, ?4)",
    [HS_VV] = "SELECT author, MAX(seq) FROM blobs WHERE wid=?1 GROUP BY author ORDER BY author",
    [HS_AFTER] = "SELECT id, author, seq, data FROM blobs WHERE wid=?1 AND id>?2 ORDER BY id"
                 " LIMIT ?3",
    [HS_SNAP_GET] = "SELECT vv, total, data FROM snapshots WHERE wid=?1",
    [HS_SNAP_PUT] = "INSERT OR REPLACE INTO snapshots(wid, vv, total, data) VALUES(?1, ?2, ?3, ?4)",
    [HS_ENV_PUT] = "INSERT OR REPLACE INTO keyenv(wid, epoch, recipient, sender, data)"
                   " VALUES(?1, ?2, ?3, ?4, ?5)",
    [HS_ENV_GET] = "SELECT data FROM keyenv WHERE wid=?1 AND recipient=?2 ORDER BY epoch DESC",
    [HS_BEGIN] = "BEGIN IMMEDIATE",
    [HS_COMMIT] = "COMMIT",
    [HS_ROLLBACK] = "ROLLBACK",
};

int hs_open(const char *dir, hubstore **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/hub.db", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "data folder path too long");
        return KITH_EINVAL;
    }
    hubstore *s = kith_calloc(1, sizeof *s);
    if (!s)
        return KITH_ENOMEM;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(s->db, 2000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
    for (int i = 0; i < HS_NSTMT && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open '%s': %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        hs_close(s);
        return KITH_EIO;
    }
    chmod(path, 0600);
    *out = s;
    return KITH_OK;
}

void hs_close(hubstore *s)
{
    if (!s)
        return;
    for (int i = 0; i < HS_NSTMT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    kith_free(s);
}

const char *hs_errmsg(hubstore *s)
{
    return sqlite3_errmsg(s->db);
}

/* Runs a statement that returns no rows; resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_CONSTRAINT)
        return KITH_EEXIST;
    return rc == SQLITE_DONE ? KITH_OK : KITH_EIO;
}

int hs_begin(hubstore *s)
{
    return step_done(s->st[HS_BEGIN]);
}

int hs_commit(hubstore *s)
{
    int rc = step_done(s->st[HS_COMMIT]);
    if (rc)
        hs_rollback(s);
    return rc;
}

void hs_rollback(hubstore *s)
{
    if (!sqlite3_get_autocommit(s->db))
        (void)step_done(s->st[HS_ROLLBACK]);
}

int hs_ws_find(hubstore *s, const uint8_t ws_id[16], int64_t *wid)
{
    sqlite3_stmt *st = s->st[HS_WS_FIND];
    sqlite3_bind_blob(st, 1, ws_id, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *wid = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? KITH_OK : rc == SQLITE_DONE ? KITH_ENOTFOUND : KITH_EIO;
}

int hs_ws_create(hubstore *s, const uint8_t ws_id[16], const uint8_t *genesis, size_t len,
                 int64_t now_ms, int64_t *wid)
{
    int rc = hs_begin(s);
    if (rc)
        return rc;
    sqlite3_stmt *st = s->st[HS_WS_ADD];
    sqlite3_bind_blob(st, 1, ws_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    rc = step_done(st);
    if (rc)
        goto fail;
    *wid = sqlite3_last_insert_rowid(s->db);
    rc = hs_op_add(s, *wid, 0, genesis, len);
    if (rc)
        goto fail;
    return hs_commit(s);
fail:
    hs_rollback(s);
    return rc;
}

int hs_op_add(hubstore *s, int64_t wid, int64_t idx, const uint8_t *op, size_t len)
{
    sqlite3_stmt *st = s->st[HS_OP_ADD];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_int64(st, 2, idx);
    sqlite3_bind_blob(st, 3, op, (int)len, SQLITE_STATIC);
    return step_done(st);
}

int hs_ops_load(hubstore *s, int64_t wid, const uint8_t ws_id[16], kith_members **out,
                struct sbuf *wire)
{
    kith_members *m = NULL;
    int rc = kith_members_new(ws_id, &m);
    if (rc)
        return rc;
    sqlite3_stmt *st = s->st[HS_OPS];
    sqlite3_bind_int64(st, 1, wid);
    int sr = SQLITE_DONE;
    while (rc == KITH_OK && (sr = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *op = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        rc = kith_members_apply(m, op, n);
        sb_bytes(wire, op, n);
    }
    if (rc == KITH_OK && wire->err)
        rc = wire->err;
    if (rc == KITH_OK && sr != SQLITE_DONE)
        rc = KITH_EIO;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        kith_log(KITH_LOG_ERROR, "membership chain of workspace %lld does not verify: %s",
                 (long long)wid, kith_members_errmsg(m));
        kith_members_free(m);
        return rc == KITH_EIO ? rc : KITH_ECORRUPT;
    }
    *out = m;
    return KITH_OK;
}

int hs_invite_add(hubstore *s, int64_t wid, const uint8_t cap_pk[32], int role, uint64_t expires_ms,
                  const uint8_t *wrapped, size_t wlen)
{
    sqlite3_stmt *st = s->st[HS_INV_ADD];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, cap_pk, 32, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, role);
    sqlite3_bind_int64(st, 4, (int64_t)(expires_ms > INT64_MAX ? INT64_MAX : expires_ms));
    sqlite3_bind_blob(st, 5, wrapped, (int)wlen, SQLITE_STATIC);
    return step_done(st);
}

int hs_invite_get(hubstore *s, int64_t wid, const uint8_t cap_pk[32], struct hs_invite *inv)
{
    sqlite3_stmt *st = s->st[HS_INV_GET];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, cap_pk, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? KITH_OK : rc == SQLITE_DONE ? KITH_ENOTFOUND : KITH_EIO;
    if (rc == SQLITE_ROW) {
        inv->role = sqlite3_column_int(st, 0);
        inv->expires_ms = (uint64_t)sqlite3_column_int64(st, 1);
        inv->used = sqlite3_column_int(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 3);
        const void *w = sqlite3_column_blob(st, 3);
        inv->wrapped = n ? kith_malloc(n) : NULL;
        inv->wrapped_len = n;
        if (n && !inv->wrapped)
            ret = KITH_ENOMEM;
        else if (n)
            memcpy(inv->wrapped, w, n);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int hs_invite_use(hubstore *s, int64_t wid, const uint8_t cap_pk[32])
{
    sqlite3_stmt *st = s->st[HS_INV_USE];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, cap_pk, 32, SQLITE_STATIC);
    int rc = step_done(st);
    if (rc == KITH_OK && sqlite3_changes(s->db) != 1)
        rc = KITH_EINVAL;
    return rc;
}

uint64_t hs_blob_max(hubstore *s, int64_t wid, const uint8_t author[32])
{
    sqlite3_stmt *st = s->st[HS_BLOB_MAX];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, author, 32, SQLITE_STATIC);
    uint64_t v = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return v;
}

int hs_blob_add(hubstore *s, int64_t wid, const uint8_t author[32], uint64_t seq,
                const uint8_t *data, size_t len)
{
    if (seq > INT64_MAX)
        return KITH_ERANGE;
    sqlite3_stmt *st = s->st[HS_BLOB_ADD];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, author, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)seq);
    sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
    return step_done(st);
}

int hs_vv(hubstore *s, int64_t wid, kith_vv **out)
{
    kith_vv *vv = NULL;
    int rc = kith_vv_new(&vv);
    if (rc)
        return rc;
    sqlite3_stmt *st = s->st[HS_VV];
    sqlite3_bind_int64(st, 1, wid);
    int sr = SQLITE_DONE;
    while (rc == KITH_OK && (sr = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        rc = kith_vv_set(vv, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        kith_vv_free(vv);
        return rc;
    }
    *out = vv;
    return KITH_OK;
}

int hs_blobs_after(hubstore *s, int64_t wid, int64_t after, int limit, hs_blob_fn fn, void *ud)
{
    sqlite3_stmt *st = s->st[HS_AFTER];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    int rc = KITH_OK, sr = SQLITE_DONE;
    while (rc == KITH_OK && (sr = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != 32)
            continue;
        rc = fn(ud, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                (uint64_t)sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3),
                (size_t)sqlite3_column_bytes(st, 3));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int hs_snapshot_put(hubstore *s, int64_t wid, const uint8_t *vv, size_t vv_len, uint64_t total,
                    const uint8_t *data, size_t len)
{
    sqlite3_stmt *st = s->st[HS_SNAP_PUT];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, vv, (int)vv_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)(total > INT64_MAX ? INT64_MAX : total));
    sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
    return step_done(st);
}

int hs_snapshot_get(hubstore *s, int64_t wid, hs_snapshot_fn fn, void *ud)
{
    sqlite3_stmt *st = s->st[HS_SNAP_GET];
    sqlite3_bind_int64(st, 1, wid);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? KITH_OK : rc == SQLITE_DONE ? KITH_ENOTFOUND : KITH_EIO;
    if (rc == SQLITE_ROW)
        ret = fn(ud, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                 (uint64_t)sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                 (size_t)sqlite3_column_bytes(st, 2));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int hs_env_put(hubstore *s, int64_t wid, uint32_t epoch, const uint8_t recipient[32],
               const uint8_t sender[32], const uint8_t *data, size_t len)
{
    sqlite3_stmt *st = s->st[HS_ENV_PUT];
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_int64(st, 2, epoch);
    sqlite3_bind_blob(st, 3, recipient, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sender, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, data, (int)len, SQLITE_STATIC);
    return step_done(st);
}

int hs_env_get(hubstore *s, int64_t wid, const uint8_t recipient[32], size_t max, uint8_t **out,
               size_t *len)
{
    sqlite3_stmt *st = s->st[HS_ENV_GET];
    size_t cap = 0;
    int rc = KITH_OK, step;
    *out = NULL;
    *len = 0;
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_blob(st, 2, recipient, 32, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (*len + n > max)
            break;
        if (kith_grow((void **)out, &cap, *len + n, 1) != 0) {
            rc = KITH_ENOMEM;
            break;
        }
        memcpy(*out + *len, sqlite3_column_blob(st, 0), n);
        *len += n;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = KITH_EIO;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc) {
        kith_free(*out);
        *out = NULL;
        *len = 0;
    }
    return rc;
}
