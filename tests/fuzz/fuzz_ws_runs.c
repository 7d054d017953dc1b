/*
 * Fuzz target: the decoders of edit runs (src/ws/runs.c) and change runs
 * (src/ws/changes.c), through the virtual tables `edits` and `changes` as
 * the workspace queries them. The first byte picks which (even: an edit
 * run of document 1 from change 1; odd: a change run of author 1 from id 1,
 * numbers 1..(byte / 2)), the rest is the run's bytes, stored in an
 * in-memory store; every plan (a full scan, either way, by document, by
 * change, by id, by author and number, bounded) must give rows or
 * SQLITE_CORRUPT, never a crash or a read out of bounds.
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
    if (size < 1)
        return 0;
    bool change_run = data[0] & 1;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || ws_edits_register(db) != SQLITE_OK ||
        ws_changes_register(db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TABLE edit_runs(doc INTEGER NOT NULL, first INTEGER NOT NULL,"
                     " last INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(doc, first))"
                     " WITHOUT ROWID;"
                     "CREATE INDEX edit_runs_first ON edit_runs(first, last);"
                     "CREATE TABLE change_runs(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
                     " author INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
                     " lamport INTEGER NOT NULL, data BLOB NOT NULL);"
                     "CREATE INDEX change_runs_author ON change_runs(author, seq);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_stmt *st = NULL;
    const char *insert = change_run ? "INSERT INTO change_runs VALUES(1, 300, 1, 1, ?2, 0, ?1)"
                                    : "INSERT INTO edit_runs VALUES(1, 1, 300, ?1)";
    if (sqlite3_prepare_v2(db, insert, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, data + 1, (int)size - 1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, data[0] >> 1);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (change_run) {
        drain(db, "SELECT * FROM changes");
        drain(db, "SELECT * FROM changes ORDER BY id DESC");
        drain(db, "SELECT * FROM changes WHERE id=3");
        drain(db, "SELECT * FROM changes WHERE author=1 AND seq=2");
        drain(db, "SELECT * FROM changes WHERE author=1 AND seq<9 ORDER BY seq DESC LIMIT 1");
    } else {
        drain(db, "SELECT * FROM edits");
        drain(db, "SELECT * FROM edits WHERE doc=1 ORDER BY change DESC");
        drain(db, "SELECT * FROM edits WHERE doc=1 AND change<=40 ORDER BY change DESC LIMIT 1");
        drain(db, "SELECT * FROM edits WHERE change=3 ORDER BY doc");
        drain(db, "SELECT * FROM edits WHERE doc=1 AND change=2");
    }
    sqlite3_close(db);
    return 0;
}
