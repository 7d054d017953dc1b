/*
 * Prepared statements kept by the virtual tables `edits` and `changes` for
 * their cursors. SQLite opens a cursor per execution of a query, and a
 * join probes `changes` by id once per row: preparing the runs query each
 * time cost more than decoding the run (kith log spent 4/5 of its time
 * there). A cursor takes the table's statement for its plan, or prepares
 * its own while another cursor holds it, and gives it back reset.
 */
#include "ws/ws_int.h"

int ws_vt_take(sqlite3 *db, ws_vt_stmts *c, int slot, const char *sql, sqlite3_stmt **out)
{
    if (slot >= 0 && slot < WS_VT_STMTS && c->st[slot]) {
        *out = c->st[slot];
        c->st[slot] = NULL;
        return SQLITE_OK;
    }
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
}

void ws_vt_give(ws_vt_stmts *c, int slot, sqlite3_stmt *st)
{
    if (!st)
        return;
    if (slot < 0 || slot >= WS_VT_STMTS || c->st[slot]) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    c->st[slot] = st;
}

void ws_vt_free(ws_vt_stmts *c)
{
    for (int i = 0; i < WS_VT_STMTS; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
}
