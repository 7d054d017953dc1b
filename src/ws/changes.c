/*
 * Changes kept as runs. A change row (author, number, time, Lamport clock,
 * via) cost ~36 bytes with its (author, seq) index, as much as the text's
 * own history per save at a save every hundred keystrokes. So one author's
 * changes with consecutive numbers are packed into one change_runs row
 * (docs/FORMAT.md, "Change runs"): the row holds the author, the first
 * change's id and number and the count, and each change is a record of
 * differences from the one before (~5 bytes).
 *
 * Two rules keep lookups one probe. Numbers in a run are consecutive, so
 * (author, seq) is in the author's run with the greatest first number at or
 * below it, or nowhere. A change joins only the newest run (the greatest
 * first id), so runs' id ranges never overlap and an id is in the run with
 * the greatest first id at or below it, or nowhere.
 *
 * Readers see the runs as the eponymous virtual table `changes`, with the
 * columns the table of schema 3 had; writers go through ws_change_put and
 * ws_change_drop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/bytes.h"
#include "ws/ws_int.h"

#define CRUN_BYTES 192 /* a run's records: one row well inside a 1 KB page */

enum { CR_VIA = 1, CR_ALL = 1 };

typedef struct crec {
    int64_t id, time_ms, lamport;
    int64_t via; /* offset in the arena, -1: NULL */
    size_t via_len;
} crec;

typedef struct crun {
    int64_t first, author, seq; /* seq: the first change's */
    crec *recs;
    size_t n, cap;
    ws_wbuf arena;
} crun;

static void crun_clear(crun *r)
{
    r->n = 0;
    r->arena.n = 0;
    r->arena.err = 0;
}

static void crun_free(crun *r)
{
    kith_free(r->recs);
    kith_free(r->arena.p);
    memset(r, 0, sizeof *r);
}

static int grow(crun *r)
{
    return kith_grow((void **)&r->recs, &r->cap, r->n + 1, sizeof *r->recs) ? SQLITE_NOMEM
                                                                            : SQLITE_OK;
}

static int64_t max_lamport(const crun *r)
{
    int64_t m = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->recs[i].lamport > m)
            m = r->recs[i].lamport;
    return m;
}

/* Each record: flags, then the id, time and clock as differences from the
 * previous record's (id + 1 apart, the same time, the clock + 1 predicted;
 * the first record against id `first`, time 0 and clock 0). */
static int crun_encode(const crun *r, ws_wbuf *w)
{
    w->n = 0;
    w->err = 0;
    uint64_t id = (uint64_t)r->first, time = 0, clock = 0;
    for (size_t i = 0; i < r->n; i++) {
        const crec *e = &r->recs[i];
        ws_wb_var(w, e->via >= 0 ? CR_VIA : 0);
        ws_wb_var(w, (uint64_t)e->id - id);
        ws_wb_var(w, ws_zigzag((uint64_t)e->time_ms - time));
        ws_wb_var(w, ws_zigzag((uint64_t)e->lamport - clock));
        if (e->via >= 0) {
            ws_wb_var(w, e->via_len);
            ws_wb_bytes(w, r->arena.p + e->via, e->via_len);
        }
        id = (uint64_t)e->id + 1;
        time = (uint64_t)e->time_ms;
        clock = (uint64_t)e->lamport + 1;
    }
    return w->err ? SQLITE_NOMEM : SQLITE_OK;
}

/* Decodes run @data; anything out of shape (ids not rising, a count that
 * disagrees with the row's, a bad varint, an overrun) is SQLITE_CORRUPT. */
static int crun_decode(crun *r, int64_t first, int64_t author, int64_t seq, int64_t n,
                       const void *data, size_t len)
{
    crun_clear(r);
    r->first = first;
    r->author = author;
    r->seq = seq;
    ws_rbuf rb = {data, len, 0, false};
    uint64_t id = (uint64_t)first, time = 0, clock = 0;
    while (rb.off < rb.n) {
        if (grow(r))
            return SQLITE_NOMEM;
        crec *e = &r->recs[r->n];
        uint64_t flags = ws_rb_var(&rb, CR_ALL);
        uint64_t step = ws_rb_var(&rb, INT64_MAX);
        id += step;
        time += ws_unzigzag(ws_rb_var(&rb, UINT64_MAX));
        clock += ws_unzigzag(ws_rb_var(&rb, UINT64_MAX));
        if (rb.err || id > INT64_MAX || clock > INT64_MAX)
            return SQLITE_CORRUPT;
        e->id = (int64_t)id;
        e->time_ms = (int64_t)time;
        e->lamport = (int64_t)clock;
        e->via = -1;
        e->via_len = 0;
        if (flags & CR_VIA) {
            e->via_len = (size_t)ws_rb_var(&rb, rb.n);
            const uint8_t *p = ws_rb_bytes(&rb, e->via_len);
            if (!p)
                return SQLITE_CORRUPT;
            e->via = (int64_t)r->arena.n;
            ws_wb_bytes(&r->arena, p, e->via_len);
            ws_wb_bytes(&r->arena, "", 1);
            if (r->arena.err)
                return SQLITE_NOMEM;
        }
        id++;
        clock++;
        r->n++;
    }
    if (r->n == 0 || (int64_t)r->n != n || seq < 1 || seq > INT64_MAX - n || r->recs[0].id != first)
        return SQLITE_CORRUPT;
    return SQLITE_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

static int corrupt_run(kith_ws *ws, int64_t first)
{
    return ws_error(ws, KITH_ECORRUPT,
                    "the store %s/store.db is corrupt (the changes from %lld do not decode); "
                    "restore it from a backup or another replica",
                    ws->kithdir ? ws->kithdir : ".kith", (long long)first);
}

/* Loads the row @st stepped to (first, author, seq, n, data) into @r. */
static int load_row(kith_ws *ws, sqlite3_stmt *st, crun *r)
{
    int drc = crun_decode(r, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                          sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                          sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4));
    if (drc == SQLITE_NOMEM)
        return KITH_ENOMEM;
    return drc ? corrupt_run(ws, sqlite3_column_int64(st, 0)) : KITH_OK;
}

/* One run by @sql (binding @a and @b): *found false when there is none. */
static int load_run(kith_ws *ws, const char *sql, int64_t a, int64_t b, crun *r, bool *found)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, sql);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int src = sqlite3_step(st);
    *found = src == SQLITE_ROW;
    if (src == SQLITE_ROW)
        rc = load_row(ws, st, r);
    else if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading changes");
    sqlite3_finalize(st);
    return rc;
}

#define RUN_COLS "SELECT first, author, seq, n, data FROM change_runs "

static int save_run(kith_ws *ws, const crun *r, bool insert)
{
    ws_wbuf w = {0};
    int rc = crun_encode(r, &w) ? KITH_ENOMEM : KITH_OK;
    sqlite3_stmt *st = NULL;
    if (!rc)
        rc = ws_prepare(ws, &st,
                        insert ? "INSERT INTO change_runs(first, last, author, seq, n, lamport, "
                                 "data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                               : "UPDATE change_runs SET last=?2, n=?5, lamport=?6, data=?7 "
                                 "WHERE first=?1");
    if (!rc) {
        sqlite3_bind_int64(st, 1, r->first);
        sqlite3_bind_int64(st, 2, r->recs[r->n - 1].id);
        sqlite3_bind_int64(st, 3, r->author);
        sqlite3_bind_int64(st, 4, r->seq);
        sqlite3_bind_int64(st, 5, (int64_t)r->n);
        sqlite3_bind_int64(st, 6, max_lamport(r));
        sqlite3_bind_blob64(st, 7, w.p, w.n, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = ws_sqlerr(ws, src, "recording a change");
    }
    sqlite3_finalize(st);
    kith_free(w.p);
    return rc;
}

static int set_rec(crun *r, crec *e, const ws_change_row *c)
{
    e->id = c->id;
    e->time_ms = c->time_ms;
    e->lamport = c->lamport;
    e->via = -1;
    e->via_len = 0;
    if (c->via) {
        e->via_len = strlen(c->via);
        e->via = (int64_t)r->arena.n;
        ws_wb_bytes(&r->arena, c->via, e->via_len);
        ws_wb_bytes(&r->arena, "", 1);
    }
    return r->arena.err ? KITH_ENOMEM : KITH_OK;
}

/* An author's runs hold disjoint numbers, so the highest is in the run
 * with the highest first number: one probe of change_runs_author. */
int ws_change_last(kith_ws *ws, int64_t author, int64_t *seq, int64_t *lamport)
{
    int rc = ws_query_int(ws,
                          "SELECT COALESCE((SELECT seq + n - 1 FROM change_runs WHERE author=?1 "
                          "ORDER BY seq DESC LIMIT 1), 0)",
                          author, seq);
    if (!rc)
        rc = ws_query_int(ws, "SELECT COALESCE(MAX(lamport), 0) FROM change_runs", -1, lamport);
    return rc;
}

int ws_change_put(kith_ws *ws, ws_change_row *c, bool *added)
{
    *added = false;
    if (c->author <= 0 || c->seq <= 0 || c->lamport < 0 || (c->id < 0))
        return ws_error(ws, KITH_EINVAL, "a change with a bad author, number or clock");
    crun r = {0};
    bool found = false;
    /* known already? */
    int rc = load_run(ws, RUN_COLS "WHERE author=?1 AND seq<=?2 ORDER BY seq DESC LIMIT 1",
                      c->author, c->seq, &r, &found);
    if (!rc && found && c->seq < r.seq + (int64_t)r.n) {
        c->id = r.recs[c->seq - r.seq].id;
        goto out;
    }
    int64_t last = 0;
    if (!rc)
        /* runs' ids never overlap: the newest run holds the highest */
        rc = ws_query_int(ws,
                          "SELECT COALESCE((SELECT last FROM change_runs ORDER BY first DESC "
                          "LIMIT 1), 0)",
                          -1, &last);
    if (rc)
        goto out;
    if (c->id == 0)
        c->id = last + 1;
    else if (c->id <= last) {
        rc = ws_error(ws, KITH_ECORRUPT, "change id %lld is not after the last (%lld)",
                      (long long)c->id, (long long)last);
        goto out;
    }
    /* the newest run takes it if it is the same author's next number */
    if ((rc = load_run(ws, RUN_COLS "ORDER BY first DESC LIMIT ?1", 1, 0, &r, &found)))
        goto out;
    if (found && r.author == c->author && r.seq + (int64_t)r.n == c->seq) {
        if ((rc = grow(&r) ? KITH_ENOMEM : set_rec(&r, &r.recs[r.n], c)))
            goto out;
        r.n++;
        ws_wbuf w = {0};
        rc = crun_encode(&r, &w) ? KITH_ENOMEM : KITH_OK;
        kith_free(w.p);
        if (!rc && w.n <= CRUN_BYTES) {
            rc = save_run(ws, &r, false);
            *added = !rc;
            goto out;
        }
        if (rc)
            goto out;
    }
    crun_clear(&r);
    r.first = c->id;
    r.author = c->author;
    r.seq = c->seq;
    if ((rc = grow(&r) ? KITH_ENOMEM : set_rec(&r, &r.recs[0], c)))
        goto out;
    r.n = 1;
    rc = save_run(ws, &r, true);
    *added = !rc;
out:
    crun_free(&r);
    return rc;
}

int ws_change_drop(kith_ws *ws, int64_t id)
{
    crun r = {0};
    bool found = false;
    int rc =
        load_run(ws, RUN_COLS "WHERE first<=?1 ORDER BY first DESC LIMIT 1", id, 0, &r, &found);
    size_t k = 0;
    while (!rc && found && k < r.n && r.recs[k].id != id)
        k++;
    if (rc || !found || k == r.n)
        goto out;
    sqlite3_stmt *st = NULL;
    if (k == 0) { /* the run goes, and its later changes start one */
        if (!(rc = ws_prepare(ws, &st, "DELETE FROM change_runs WHERE first=?"))) {
            sqlite3_bind_int64(st, 1, r.first);
            int src = sqlite3_step(st);
            if (src != SQLITE_DONE)
                rc = ws_sqlerr(ws, src, "recording a change");
            sqlite3_finalize(st);
        }
        if (!rc && r.n > 1) {
            memmove(r.recs, r.recs + 1, (r.n - 1) * sizeof *r.recs);
            r.n--;
            r.first = r.recs[0].id;
            r.seq++;
            rc = save_run(ws, &r, true);
        }
    } else if (k == r.n - 1) {
        r.n--;
        rc = save_run(ws, &r, false);
    } else {
        /* numbers in a run are consecutive: a change from the middle
         * splits it (never done by kith itself, which drops only the
         * change it is writing) */
        crun tail = r;
        tail.recs = r.recs + k + 1;
        tail.n = r.n - k - 1;
        tail.first = tail.recs[0].id;
        tail.seq = r.seq + (int64_t)k + 1;
        r.n = k;
        rc = save_run(ws, &r, false);
        if (!rc)
            rc = save_run(ws, &tail, true);
    }
out:
    crun_free(&r);
    return rc;
}

/* ---- the `changes` virtual table --------------------------------------------------- */

enum { C_ID, C_AUTHOR, C_SEQ, C_TIME, C_LAMPORT, C_VIA };

/* Plan bits (idxNum); the arguments come in this order. */
enum { P_ID = 1, P_AUTH = 2, P_SEQEQ = 4, P_SEQMAX = 8, P_SEQLT = 16, P_DESC = 32 };

typedef struct cv_cursor {
    sqlite3_vtab_cursor base;
    sqlite3_stmt *st;
    int slot; /* st's in the table's statements */
    crun r;
    size_t pos; /* records of r passed, in the plan's direction */
    bool eof, desc;
    int plan;
    int64_t id, seq, seqmax;
} cv_cursor;

static int cv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    return ws_vt_connect(db,
                         "CREATE TABLE x(id INTEGER, author INTEGER, seq INTEGER, "
                         "time_ms INTEGER, lamport INTEGER, via TEXT)",
                         out);
}

/* Whether the rows of @plan come in @ix's ORDER BY: by id, one row; by
 * author, in number order (either way); all, in id order (either way). */
static bool order_given(const sqlite3_index_info *ix, int plan)
{
    if (plan & P_ID)
        return true;
    for (int k = 0; k < ix->nOrderBy; k++) {
        int col = ix->aOrderBy[k].iColumn;
        bool desc = ix->aOrderBy[k].desc;
        if ((plan & P_AUTH) && col == C_AUTHOR)
            continue;
        if ((plan & P_AUTH) && col == C_SEQ && desc == !!(plan & P_DESC))
            continue;
        if (!(plan & P_AUTH) && col == C_ID && desc == !!(plan & P_DESC))
            continue;
        return false;
    }
    return true;
}

static int cv_best_index(sqlite3_vtab *v, sqlite3_index_info *ix)
{
    (void)v;
    int id = -1, author = -1, seq = -1, seqmax = -1, plan = 0;
    for (int i = 0; i < ix->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &ix->aConstraint[i];
        if (!c->usable)
            continue;
        bool eq = c->op == SQLITE_INDEX_CONSTRAINT_EQ;
        if (c->iColumn == C_ID && eq && id < 0)
            id = i;
        else if (c->iColumn == C_AUTHOR && eq && author < 0)
            author = i;
        else if (c->iColumn == C_SEQ && eq && seq < 0)
            seq = i;
        else if (c->iColumn == C_SEQ && seqmax < 0 &&
                 (c->op == SQLITE_INDEX_CONSTRAINT_LE || c->op == SQLITE_INDEX_CONSTRAINT_LT))
            seqmax = i;
    }
    int arg = 1;
    if (id >= 0) {
        plan = P_ID;
        ix->aConstraintUsage[id].argvIndex = arg++;
    } else if (author >= 0) {
        plan = P_AUTH;
        ix->aConstraintUsage[author].argvIndex = arg++;
        if (seq >= 0) {
            plan |= P_SEQEQ;
            ix->aConstraintUsage[seq].argvIndex = arg++;
        } else if (seqmax >= 0) {
            plan |=
                P_SEQMAX | (ix->aConstraint[seqmax].op == SQLITE_INDEX_CONSTRAINT_LT ? P_SEQLT : 0);
            ix->aConstraintUsage[seqmax].argvIndex = arg++;
        }
    }
    for (int k = 0; k < ix->nOrderBy; k++) {
        int col = ix->aOrderBy[k].iColumn;
        if (ix->aOrderBy[k].desc && ((plan & P_AUTH) ? col == C_SEQ : col == C_ID))
            plan |= P_DESC;
    }
    /* SQLite checks every constraint again (omit stays 0) */
    ix->orderByConsumed = order_given(ix, plan);
    ix->idxNum = plan;
    if (plan & P_ID) {
        ix->estimatedCost = 2;
        ix->estimatedRows = 1;
        ix->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    } else if (plan & P_SEQEQ) {
        ix->estimatedCost = 4;
        ix->estimatedRows = 1;
    } else if (plan & P_AUTH) {
        ix->estimatedCost = plan & P_SEQMAX ? 300 : 500;
        ix->estimatedRows = 500;
    } else {
        ix->estimatedCost = 1e6;
        ix->estimatedRows = 1000000;
    }
    return SQLITE_OK;
}

static int cv_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
    (void)v;
    cv_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int cv_close(sqlite3_vtab_cursor *cur)
{
    cv_cursor *c = (cv_cursor *)cur;
    ws_vt_give(&((ws_vt *)cur->pVtab)->stmts, c->slot, c->st);
    crun_free(&c->r);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int cursor_error(cv_cursor *c, int src)
{
    return ws_vt_error(
        c->base.pVtab, src,
        src == SQLITE_CORRUPT
            ? sqlite3_mprintf("the changes from %lld do not decode", (long long)c->r.first)
            : NULL);
}

static int next_run(cv_cursor *c)
{
    c->r.n = 0;
    c->pos = 0;
    int src = sqlite3_step(c->st);
    if (src == SQLITE_DONE) {
        c->eof = true;
        return SQLITE_OK;
    }
    if (src != SQLITE_ROW)
        return cursor_error(c, src);
    int drc = crun_decode(&c->r, sqlite3_column_int64(c->st, 0), sqlite3_column_int64(c->st, 1),
                          sqlite3_column_int64(c->st, 2), sqlite3_column_int64(c->st, 3),
                          sqlite3_column_blob(c->st, 4), (size_t)sqlite3_column_bytes(c->st, 4));
    if (drc) {
        c->r.first = sqlite3_column_int64(c->st, 0);
        return cursor_error(c, drc);
    }
    return SQLITE_OK;
}

static size_t index_of(const cv_cursor *c)
{
    return c->desc ? c->r.n - 1 - c->pos : c->pos;
}

static bool wanted(const cv_cursor *c, size_t k)
{
    int64_t seq = c->r.seq + (int64_t)k;
    if ((c->plan & P_ID) && c->r.recs[k].id != c->id)
        return false;
    if ((c->plan & P_SEQEQ) && seq != c->seq)
        return false;
    return !(c->plan & P_SEQMAX) || seq <= c->seqmax;
}

static int settle(cv_cursor *c)
{
    while (!c->eof) {
        for (; c->pos < c->r.n; c->pos++)
            if (wanted(c, index_of(c)))
                return SQLITE_OK;
        /* by id or by (author, seq), only the first run can hold it */
        if ((c->plan & (P_ID | P_SEQEQ)) && c->r.n) {
            c->eof = true;
            return SQLITE_OK;
        }
        int src = next_run(c);
        if (src)
            return src;
    }
    return SQLITE_OK;
}

static int cv_filter(sqlite3_vtab_cursor *cur, int plan, const char *idxStr, int argc,
                     sqlite3_value **argv)
{
    (void)idxStr;
    cv_cursor *c = (cv_cursor *)cur;
    ws_vt_give(&((ws_vt *)cur->pVtab)->stmts, c->slot, c->st);
    c->st = NULL;
    c->r.n = c->pos = 0;
    c->plan = plan;
    c->eof = false;
    c->desc = plan & P_DESC;
    c->seqmax = INT64_MAX;
    int64_t author = 0;
    int arg = 0;
    bool ok = true;
    if (plan & P_ID)
        ok = arg < argc && ws_vt_eq_arg(argv[arg++], &c->id);
    if (ok && (plan & P_AUTH))
        ok = arg < argc && ws_vt_eq_arg(argv[arg++], &author);
    if (ok && (plan & P_SEQEQ))
        ok = arg < argc && ws_vt_eq_arg(argv[arg++], &c->seq);
    if (ok && (plan & P_SEQMAX))
        ok = arg < argc && ws_vt_max_arg(argv[arg++], plan & P_SEQLT, &c->seqmax);
    if (!ok) {
        c->eof = true;
        return SQLITE_OK;
    }
    static const char *const sqls[] = {
        RUN_COLS "WHERE first<=?1 ORDER BY first DESC LIMIT 1",
        RUN_COLS "WHERE author=?1 AND seq<=?2 ORDER BY seq DESC LIMIT 1",
        RUN_COLS "WHERE author=?1 AND seq<=?2 ORDER BY seq DESC",
        RUN_COLS "WHERE author=?1 AND seq<=?2 ORDER BY seq",
        RUN_COLS "ORDER BY first DESC",
        RUN_COLS "ORDER BY first",
    };
    int slot = (plan & P_ID)      ? 0
               : (plan & P_SEQEQ) ? 1
               : (plan & P_AUTH)  ? (c->desc ? 2 : 3)
                                  : (c->desc ? 4 : 5);
    const char *sql = sqls[slot];
    int src =
        ws_vt_take(((ws_vt *)cur->pVtab)->db, &((ws_vt *)cur->pVtab)->stmts, slot, sql, &c->st);
    c->slot = slot;
    if (src != SQLITE_OK)
        return cursor_error(c, src);
    if (plan & P_ID) {
        sqlite3_bind_int64(c->st, 1, c->id);
    } else if (plan & P_AUTH) {
        sqlite3_bind_int64(c->st, 1, author);
        sqlite3_bind_int64(c->st, 2, (plan & P_SEQEQ) ? c->seq : c->seqmax);
    }
    return settle(c);
}

static int cv_next(sqlite3_vtab_cursor *cur)
{
    cv_cursor *c = (cv_cursor *)cur;
    c->pos++;
    return settle(c);
}

static int cv_eof(sqlite3_vtab_cursor *cur)
{
    return ((cv_cursor *)cur)->eof;
}

static int cv_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    cv_cursor *c = (cv_cursor *)cur;
    size_t k = index_of(c);
    const crec *e = &c->r.recs[k];
    switch (col) {
    case C_ID:
        sqlite3_result_int64(ctx, e->id);
        break;
    case C_AUTHOR:
        sqlite3_result_int64(ctx, c->r.author);
        break;
    case C_SEQ:
        sqlite3_result_int64(ctx, c->r.seq + (int64_t)k);
        break;
    case C_TIME:
        sqlite3_result_int64(ctx, e->time_ms);
        break;
    case C_LAMPORT:
        sqlite3_result_int64(ctx, e->lamport);
        break;
    case C_VIA:
        if (e->via < 0)
            sqlite3_result_null(ctx);
        else
            sqlite3_result_text(ctx, (const char *)c->r.arena.p + e->via, (int)e->via_len,
                                SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

static int cv_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    cv_cursor *c = (cv_cursor *)cur;
    *out = c->r.recs[index_of(c)].id;
    return SQLITE_OK;
}

/* Eponymous only and read-only, like `edits` (runs.c). */
static const sqlite3_module changes_module = {
    .iVersion = 0,
    .xConnect = cv_connect,
    .xBestIndex = cv_best_index,
    .xDisconnect = ws_vt_disconnect,
    .xOpen = cv_open,
    .xClose = cv_close,
    .xFilter = cv_filter,
    .xNext = cv_next,
    .xEof = cv_eof,
    .xColumn = cv_column,
    .xRowid = cv_rowid,
};

int ws_changes_register(sqlite3 *db)
{
    return sqlite3_create_module(db, "changes", &changes_module, NULL);
}
