/*
 * Fuzz target: the decoder of edit runs (src/ws/runs.c), through the
 * virtual table `edits` as the history code queries it. The input is one
 * run's bytes, stored for document 1 from change 1 in an in-memory store;
 * every plan (a full scan, by document either way, by change, bounded) must
 * give rows or SQLITE_CORRUPT, never a crash or a read out of bounds.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "ws/ws_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(st); i++)
            (void)sqlite3_column_text(st, i);
    sqlite3_finalize(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || ws_edits_register(db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE edit_runs(doc INTEGER NOT NULL, first INTEGER NOT NULL,"
                     " last INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(doc, first))"
                     " WITHOUT ROWID;"
                     "CREATE INDEX edit_runs_first ON edit_runs(first, last);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO edit_runs VALUES(1, 1, 300, ?)", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_blob(st, 1, data, (int)size, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    drain(db, "SELECT * FROM edits");
    drain(db, "SELECT * FROM edits WHERE doc=1 ORDER BY change DESC");
    drain(db, "SELECT * FROM edits WHERE doc=1 AND change<=40 ORDER BY change DESC LIMIT 1");
    drain(db, "SELECT * FROM edits WHERE change=3 ORDER BY doc");
    drain(db, "SELECT * FROM edits WHERE doc=1 AND change=2");
    sqlite3_close(db);
    return 0;
}
