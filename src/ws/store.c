/*
 * The workspace store: one SQLite database in .kith/store.db, in WAL mode
 * with synchronous=FULL so that a change reported to the user is on disk.
 * This file owns the schema (docs/FORMAT.md, "Workspace store"), its version
 * (PRAGMA user_version) and migrations, transactions and the error mapping
 * from SQLite's codes to kith's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_int.h"

/* Schema 4 (docs/FORMAT.md). A store's size is mostly what each change
 * adds, so that is packed: the changes live in runs of one author's
 * consecutive changes (changes.c), the edits in runs of one document's
 * (runs.c), each a few bytes a change; a change's id (a hash of author and
 * number) is computed where needed, not stored. */
static const char *const schema_v4 =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE authors(id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE,"
    "  name TEXT NOT NULL);"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, uuid BLOB NOT NULL UNIQUE,"
    "  kind INTEGER NOT NULL, path TEXT NOT NULL, deleted INTEGER NOT NULL,"
    "  lamport INTEGER NOT NULL, lamport_author INTEGER NOT NULL, path_lamport INTEGER NOT NULL,"
    "  path_author INTEGER NOT NULL, blob BLOB, snap BLOB,"
    "  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL,"
    "  dev INTEGER NOT NULL);"
    "CREATE TABLE deltas(id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX deltas_doc ON deltas(doc);"
    "CREATE TABLE blobs(hash BLOB PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL)"
    "  WITHOUT ROWID;"
    "CREATE TABLE writes(id INTEGER PRIMARY KEY, tmp TEXT, path TEXT NOT NULL, doc INTEGER,"
    "  base TEXT, osize INTEGER, omtime INTEGER, oino INTEGER);";

static const char *const schema_change_runs =
    "CREATE TABLE change_runs(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
    "  author INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  lamport INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX change_runs_author ON change_runs(author, seq);";

static const char *const schema_edit_runs =
    "CREATE TABLE edit_runs(doc INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,"
    "  data BLOB NOT NULL, PRIMARY KEY(doc, first)) WITHOUT ROWID;"
    "CREATE INDEX edit_runs_first ON edit_runs(first, last);";

/* Schema 1 to 2: the edits move into edit_rows, each path kept only where
 * it differs from the same document's edit before it. (Schema 2's view
 * `edits` is not made: 2 to 3 follows at once.) */
static const char *const migrate_1_2 =
    "DROP INDEX changes_hid;"
    "ALTER TABLE edits RENAME TO edits_v1;"
    "CREATE TABLE edit_rows(change INTEGER NOT NULL, doc INTEGER NOT NULL,"
    "  what INTEGER NOT NULL, kind INTEGER NOT NULL, path TEXT, old_path TEXT,"
    "  ins INTEGER NOT NULL, del INTEGER NOT NULL, opseq INTEGER NOT NULL,"
    "  opcount INTEGER NOT NULL, version TEXT, blob BLOB, PRIMARY KEY(doc, change))"
    "  WITHOUT ROWID;"
    "INSERT INTO edit_rows SELECT change, doc, what, kind,"
    "  CASE WHEN path IS lag(path) OVER w THEN NULL ELSE path END, old_path, ins, del,"
    "  opseq, opcount, version, blob FROM edits_v1 WINDOW w AS (PARTITION BY doc ORDER BY change);"
    "DROP TABLE edits_v1;";

/* Schema 2 to 3, after the edits are packed: what schema 2 had instead.
 * Its view `edits` is dropped first, and only where it exists (a store
 * coming from schema 1 has none): with no view, the name is the virtual
 * table's, which cannot be dropped. */
static const char *const migrate_2_3_view =
    "SELECT count(*) FROM sqlite_schema WHERE type='view' AND name='edits'";
static const char *const migrate_2_3_after = "DROP TABLE edit_rows;"
                                             "ALTER TABLE changes DROP COLUMN hid;";

int ws_error(kith_ws *ws, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ws->err, sizeof ws->err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Maps an SQLite result to a kith error with a message a user can act on. */
int ws_sqlerr(kith_ws *ws, int src, const char *what)
{
    const char *msg = ws->db ? sqlite3_errmsg(ws->db) : sqlite3_errstr(src);
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ws_error(ws, KITH_EBUSY,
                        "%s: the workspace is busy (another kith process holds its lock; "
                        "waited %d ms)",
                        what, ws->busy_ms);
    case SQLITE_FULL:
        return ws_error(ws, KITH_ENOSPC, "%s: disk full; nothing was recorded", what);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ws_error(ws, KITH_ECORRUPT,
                        "%s: the store %s/store.db is corrupt (%s); restore it from a backup or "
                        "another replica",
                        what, ws->kithdir ? ws->kithdir : ".kith", msg);
    case SQLITE_NOMEM:
        return ws_error(ws, KITH_ENOMEM, "%s: out of memory", what);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
        return ws_error(ws, KITH_EPERM, "%s: cannot open or write the store: %s", what, msg);
    default:
        return ws_error(ws, KITH_EIO, "%s: %s", what, msg);
    }
}

int ws_prepare(kith_ws *ws, sqlite3_stmt **st, const char *sql)
{
    int src = sqlite3_prepare_v2(ws->db, sql, -1, st, NULL);
    return src == SQLITE_OK ? KITH_OK : ws_sqlerr(ws, src, "store");
}

static int exec(kith_ws *ws, const char *sql, const char *what)
{
    int src = sqlite3_exec(ws->db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? KITH_OK : ws_sqlerr(ws, src, what);
}

/* IMMEDIATE: take the write lock up front, so two processes queue on the
 * busy timeout instead of failing later with a deadlock on upgrade. */
int ws_begin(kith_ws *ws)
{
    return exec(ws, "BEGIN IMMEDIATE", "store");
}

int ws_commit_tx(kith_ws *ws)
{
    return exec(ws, "COMMIT", "store");
}

/* Rolls back the open transaction, and forgets what memory cached of rows
 * it may have written (an author's row id could be reused by the next). */
void ws_rollback(kith_ws *ws)
{
    if (!sqlite3_get_autocommit(ws->db))
        sqlite3_exec(ws->db, "ROLLBACK", NULL, NULL, NULL);
    ws_authors_forget(ws);
}

/* KITH_SYNC=off skips fsync: for benchmarks that separate kith's own cost
 * from the disk's, and for throwaway workspaces. Never the default. */
static bool sync_off(void)
{
    const char *v = getenv("KITH_SYNC");
    return v && !strcmp(v, "off");
}

/* SQL function kith_id(author key, seq): a change's id in hex, so that
 * queries can print ids the store does not keep. */
static void sql_kith_id(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char hex[KITH_WS_ID_HEX + 1];
    if (sqlite3_value_bytes(argv[0]) != 32) {
        sqlite3_result_null(ctx);
        return;
    }
    ws_change_hash(sqlite3_value_blob(argv[0]), sqlite3_value_int64(argv[1]), hex);
    sqlite3_result_text(ctx, hex, KITH_WS_ID_HEX, SQLITE_TRANSIENT);
}

static int configure(kith_ws *ws)
{
    sqlite3_create_function(ws->db, "kith_id", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            sql_kith_id, NULL, NULL);
    int src = ws_edits_register(ws->db);
    if (src == SQLITE_OK)
        src = ws_changes_register(ws->db);
    if (src != SQLITE_OK)
        return ws_sqlerr(ws, src, "store");
    sqlite3_busy_timeout(ws->db, ws->busy_ms);
    sqlite3_extended_result_codes(ws->db, 1);
    int rc = exec(ws, "PRAGMA journal_mode=WAL", "store");
    if (!rc)
        rc = exec(ws, sync_off() ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL", "store");
    return rc;
}

/* Small pages: most rows are short and a workspace has a dozen tables, each
 * at least a page; big snapshots spill into overflow pages either way.
 * auto_vacuum gives back the pages of folded deltas and old snapshots.
 * Both must be set before the first write makes the file. */
static const char *const layout = "PRAGMA page_size=1024; PRAGMA auto_vacuum=FULL;";

static int open_db(kith_ws *ws, const char *path, int flags)
{
    /* A kith_ws is used from one thread at a time: no SQLite mutexes. */
    int src = sqlite3_open_v2(path, &ws->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK)
        return ws_sqlerr(ws, src, path);
    if ((flags & SQLITE_OPEN_CREATE) && (src = sqlite3_exec(ws->db, layout, NULL, NULL, NULL)))
        return ws_sqlerr(ws, src, path);
    return configure(ws);
}

static int user_version(kith_ws *ws, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "PRAGMA user_version");
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        rc = ws_sqlerr(ws, src, "reading the store");
    sqlite3_finalize(st);
    return rc;
}

static int set_user_version(kith_ws *ws, int v, const char *what)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
    return exec(ws, sql, what);
}

int ws_store_create(kith_ws *ws, const char *path)
{
    int rc = open_db(ws, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (rc)
        return rc;
    if ((rc = ws_begin(ws)))
        return rc;
    rc = exec(ws, schema_v4, "creating the store");
    if (!rc)
        rc = exec(ws, schema_change_runs, "creating the store");
    if (!rc)
        rc = exec(ws, schema_edit_runs, "creating the store");
    if (!rc)
        rc = set_user_version(ws, KITH_WS_SCHEMA, "creating the store");
    if (!rc)
        rc = ws_commit_tx(ws);
    if (rc)
        ws_rollback(ws);
    return rc;
}

/* Packs schema 3's change rows into runs, in id order (ids are kept: the
 * edits refer to them). */
static int pack_changes(kith_ws *ws)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT id, author, seq, time_ms, lamport, via FROM changes ORDER BY id");
    int src = SQLITE_DONE;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        ws_change_row c = {.id = sqlite3_column_int64(st, 0),
                           .author = sqlite3_column_int64(st, 1),
                           .seq = sqlite3_column_int64(st, 2),
                           .time_ms = sqlite3_column_int64(st, 3),
                           .lamport = sqlite3_column_int64(st, 4),
                           .via = (const char *)sqlite3_column_text(st, 5)};
        bool added = false;
        rc = ws_change_put(ws, &c, &added);
        if (!rc && !added)
            rc = ws_error(ws, KITH_ECORRUPT, "the store holds change %lld twice", (long long)c.id);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "upgrading the store");
    sqlite3_finalize(st);
    return rc;
}

/* Packs schema 2's edit rows into runs, in (document, change) order: each
 * edit appends to its document's last run. A NULL path is the one of the
 * document's edit before. */
static int pack_edit_rows(kith_ws *ws)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT change, doc, what, kind, path, old_path, ins, del, opseq, "
                        "opcount, version, blob FROM edit_rows ORDER BY doc, change");
    char *path = NULL;
    int64_t path_doc = -1;
    int src = SQLITE_DONE;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        ws_edit e = {.change = sqlite3_column_int64(st, 0),
                     .doc = sqlite3_column_int64(st, 1),
                     .what = sqlite3_column_int64(st, 2),
                     .kind = sqlite3_column_int64(st, 3),
                     .old_path = (const char *)sqlite3_column_text(st, 5),
                     .ins = sqlite3_column_int64(st, 6),
                     .del = sqlite3_column_int64(st, 7),
                     .opseq = sqlite3_column_int64(st, 8),
                     .opcount = sqlite3_column_int64(st, 9),
                     .version = (const char *)sqlite3_column_text(st, 10),
                     .blob = sqlite3_column_blob(st, 11),
                     .blob_len = (size_t)sqlite3_column_bytes(st, 11)};
        const char *p = (const char *)sqlite3_column_text(st, 4);
        if (p || e.doc != path_doc) {
            kith_free(path);
            path = p ? kith_strndup(p, strlen(p)) : NULL;
            path_doc = e.doc;
            if (p && !path) {
                rc = KITH_ENOMEM;
                break;
            }
        }
        e.path = path;
        if (!e.path)
            rc = ws_error(ws, KITH_ECORRUPT, "the store's edit of change %lld has no path",
                          (long long)e.change);
        if (!rc)
            rc = ws_edit_put(ws, &e, false);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "upgrading the store");
    kith_free(path);
    sqlite3_finalize(st);
    return rc;
}

/* Upgrades a store written by an older kith, one version at a time, in one
 * transaction: a crash or a full disk midway leaves the old store as it was.
 * The version is read again under the write lock, since another kith
 * process may have migrated the store while this one waited for it. */
static int migrate(kith_ws *ws, int from)
{
    static const char what[] = "upgrading the store";
    if (from == 0)
        return ws_error(ws, KITH_ECORRUPT,
                        "the store %s/store.db holds no kith schema (empty or damaged)",
                        ws->kithdir ? ws->kithdir : ".kith");
    int rc = ws_begin(ws), v = 0;
    if (!rc)
        rc = user_version(ws, &v);
    if (!rc && v == 1) {
        rc = exec(ws, migrate_1_2, what);
        if (!rc)
            rc = set_user_version(ws, v = 2, what);
    }
    if (!rc && v == 2) {
        rc = exec(ws, schema_edit_runs, what);
        if (!rc)
            rc = pack_edit_rows(ws);
        int64_t view = 0;
        if (!rc)
            rc = ws_query_int(ws, migrate_2_3_view, -1, &view);
        if (!rc && view)
            rc = exec(ws, "DROP VIEW edits", what);
        if (!rc)
            rc = exec(ws, migrate_2_3_after, what);
        if (!rc)
            rc = set_user_version(ws, v = 3, what);
    }
    if (!rc && v == 3) {
        rc = exec(ws, schema_change_runs, what);
        if (!rc)
            rc = pack_changes(ws);
        if (!rc)
            rc = exec(ws, "DROP TABLE changes", what);
        if (!rc)
            rc = set_user_version(ws, v = 4, what);
    }
    if (!rc && v != KITH_WS_SCHEMA)
        rc = ws_error(ws, KITH_EVERSION,
                      "store schema %d is not one this kith knows how to migrate", v);
    if (!rc)
        rc = ws_commit_tx(ws);
    if (rc)
        ws_rollback(ws);
    return rc;
}

int ws_store_open(kith_ws *ws, const char *path)
{
    int rc = open_db(ws, path, SQLITE_OPEN_READWRITE);
    if (rc)
        return rc;
    int v = 0;
    if ((rc = user_version(ws, &v)))
        return rc;
    if (v > KITH_WS_SCHEMA)
        return ws_error(ws, KITH_EVERSION,
                        "the store was written by a newer kith (schema %d; this kith reads up to "
                        "%d): upgrade kith",
                        v, KITH_WS_SCHEMA);
    if (v < KITH_WS_SCHEMA)
        return migrate(ws, v);
    return KITH_OK;
}

int ws_query_int(kith_ws *ws, const char *sql, int64_t bind, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, sql);
    if (rc)
        return rc;
    if (bind >= 0)
        sqlite3_bind_int64(st, 1, bind);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = ws_sqlerr(ws, src, "reading the store");
    sqlite3_finalize(st);
    return rc;
}

int ws_meta_get(kith_ws *ws, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT value FROM meta WHERE key=?");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    } else if (src == SQLITE_DONE) {
        rc = ws_error(ws, KITH_ECORRUPT, "the store has no '%s' entry", key);
    } else {
        rc = ws_sqlerr(ws, src, "reading the store");
    }
    sqlite3_finalize(st);
    return rc;
}

int ws_meta_set(kith_ws *ws, const char *key, const char *value)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing the store");
    sqlite3_finalize(st);
    return rc;
}

/* The authors row of device @key, made (with @name) if missing; a known
 * author's name is updated when @name is given and differs. */
int ws_author_id(kith_ws *ws, const uint8_t key[32], const char *name, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT id, name FROM authors WHERE key=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    int src = sqlite3_step(st);
    bool found = src == SQLITE_ROW;
    bool rename = false;
    if (found) {
        *out = sqlite3_column_int64(st, 0);
        rename = name && strcmp(name, (const char *)sqlite3_column_text(st, 1));
    } else if (src != SQLITE_DONE) {
        rc = ws_sqlerr(ws, src, "reading authors");
    }
    sqlite3_finalize(st);
    if (rc || (found && !rename))
        return rc;
    if (found) {
        if ((rc = ws_prepare(ws, &st, "UPDATE authors SET name=? WHERE id=?")))
            return rc;
        sqlite3_bind_int64(st, 2, *out);
    } else {
        if ((rc = ws_prepare(ws, &st, "INSERT INTO authors(name, key) VALUES(?, ?)")))
            return rc;
        sqlite3_bind_blob(st, 2, key, 32, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 1, name ? name : "unknown", -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing authors");
    else if (!found)
        *out = sqlite3_last_insert_rowid(ws->db);
    ws_authors_forget(ws);
    sqlite3_finalize(st);
    return rc;
}
