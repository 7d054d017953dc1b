/*
 * What the virtual tables `edits` (runs.c) and `changes` (changes.c) share:
 * the table object, error messages, reading constraint arguments, and the
 * prepared statements kept for their cursors. SQLite opens a cursor per
 * execution of a query, and a join probes `changes` by id once per row:
 * preparing the runs query each time cost more than decoding the run (kith
 * log spent half its time there). A cursor takes the table's statement for
 * its plan, or prepares its own while another cursor holds it, and gives
 * it back reset.
 */
#include <math.h>
#include <string.h>

#include "ws/ws_int.h"

int ws_vt_connect(sqlite3 *db, const char *schema, sqlite3_vtab **out)
{
    int src = sqlite3_declare_vtab(db, schema);
    if (src != SQLITE_OK)
        return src;
    ws_vt *v = sqlite3_malloc(sizeof *v);
    if (!v)
        return SQLITE_NOMEM;
    memset(v, 0, sizeof *v);
    v->db = db;
    *out = &v->base;
    return SQLITE_OK;
}

int ws_vt_disconnect(sqlite3_vtab *v)
{
    ws_vt_free(&((ws_vt *)v)->stmts);
    sqlite3_free(v);
    return SQLITE_OK;
}

int ws_vt_error(sqlite3_vtab *v, int src, char *corrupt)
{
    sqlite3_free(v->zErrMsg);
    v->zErrMsg = NULL;
    if (src == SQLITE_CORRUPT)
        v->zErrMsg = corrupt, corrupt = NULL;
    else if (src != SQLITE_NOMEM)
        v->zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(((ws_vt *)v)->db));
    sqlite3_free(corrupt);
    return src;
}

bool ws_vt_eq_arg(sqlite3_value *v, int64_t *out)
{
    int t = sqlite3_value_numeric_type(v);
    if (t == SQLITE_INTEGER) {
        *out = sqlite3_value_int64(v);
        return true;
    }
    double d = sqlite3_value_double(v);
    if (t != SQLITE_FLOAT || d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return false;
    *out = (int64_t)d;
    return true;
}

bool ws_vt_max_arg(sqlite3_value *v, bool lt, int64_t *out)
{
    int t = sqlite3_value_numeric_type(v);
    *out = INT64_MAX;
    if (t == SQLITE_NULL)
        return false;
    if (t == SQLITE_INTEGER) {
        *out = sqlite3_value_int64(v);
        return !lt || (*out)-- > INT64_MIN;
    }
    if (t != SQLITE_FLOAT)
        return true;
    double d = sqlite3_value_double(v), f = floor(d);
    if (d != d || f < -9.2e18)
        return false;
    if (f < 9.2e18)
        *out = (int64_t)f - (lt && f == d);
    return true;
}

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
