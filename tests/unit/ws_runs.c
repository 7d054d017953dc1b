/*
 * The edits of a workspace's history, packed in runs (src/ws/runs.c), read
 * back through the virtual table `edits` exactly as written: a random
 * history (several documents, changes touching several, gaps in change ids,
 * replaced and ignored edits, edits arriving out of order, paths that change,
 * versions of every shape) is stored beside an in-memory model, then every
 * query shape the history code uses is compared with the model. A run that
 * does not decode reads as an error, never as rows.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"
#include "tt.h"
#include "ws/ws_int.h"

static char root[256];

typedef struct medit {
    int64_t change, doc, what, kind, ins, del, opseq, opcount;
    char path[400], old_path[64], version[128];
    bool has_old, has_version, has_blob;
    uint8_t blob[32];
} medit;

static medit model[4000];
static size_t nmodel;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static medit *find(int64_t change, int64_t doc)
{
    for (size_t i = 0; i < nmodel; i++)
        if (model[i].change == change && model[i].doc == doc)
            return &model[i];
    return NULL;
}

/* The row as text, the same for the model and the table. */
static void row_text(char *out, size_t cap, int64_t change, int64_t doc, int64_t what, int64_t kind,
                     const char *path, const char *old, int64_t ins, int64_t del, int64_t opseq,
                     int64_t opcount, const char *version, const uint8_t *blob, int blen)
{
    char hex[65] = "-";
    if (blob) {
        for (int i = 0; i < blen && i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", blob[i]);
    }
    snprintf(out, cap, "%lld|%lld|%lld|%lld|%s|%s|%lld|%lld|%lld|%lld|%s|%s", (long long)change,
             (long long)doc, (long long)what, (long long)kind, path ? path : "(null)",
             old ? old : "(null)", (long long)ins, (long long)del, (long long)opseq,
             (long long)opcount, version ? version : "(null)", hex);
}

static void model_text(const medit *m, char *out, size_t cap)
{
    row_text(out, cap, m->change, m->doc, m->what, m->kind, m->path,
             m->has_old ? m->old_path : NULL, m->ins, m->del, m->opseq, m->opcount,
             m->has_version ? m->version : NULL, m->has_blob ? m->blob : NULL, 32);
}

static void stmt_text(sqlite3_stmt *st, char *out, size_t cap)
{
    row_text(out, cap, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
             sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
             (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 5),
             sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7), sqlite3_column_int64(st, 8),
             sqlite3_column_int64(st, 9), (const char *)sqlite3_column_text(st, 10),
             sqlite3_column_blob(st, 11), sqlite3_column_bytes(st, 11));
}

static int cmp_change_doc(const void *a, const void *b)
{
    const medit *x = a, *y = b;
    if (x->change != y->change)
        return x->change < y->change ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Runs @sql (columns in the table's order) and compares its rows with the
 * model's rows @want[0..n), in order. Returns the number of mismatches. */
static int compare(sqlite3 *db, const char *sql, const int64_t *args, int nargs,
                   const medit *const *want, size_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "  prepare %s: %s\n", sql, sqlite3_errmsg(db));
        return 1;
    }
    for (int i = 0; i < nargs; i++)
        sqlite3_bind_int64(st, i + 1, args[i]);
    size_t k = 0;
    int bad = 0, src;
    char a[1024], b[1024];
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        stmt_text(st, a, sizeof a);
        if (k >= n) {
            fprintf(stderr, "  %s: extra row %s\n", sql, a);
            bad++;
        } else {
            model_text(want[k], b, sizeof b);
            if (strcmp(a, b)) {
                fprintf(stderr, "  %s (args %lld): row %zu\n    got  %s\n    want %s\n", sql,
                        nargs ? (long long)args[0] : 0LL, k, a, b);
                bad++;
            }
        }
        k++;
    }
    if (src != SQLITE_DONE) {
        fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
        bad++;
    }
    if (k < n) {
        fprintf(stderr, "  %s (args %lld): %zu rows, want %zu\n", sql,
                nargs ? (long long)args[0] : 0LL, k, n);
        bad++;
    }
    sqlite3_finalize(st);
    return bad;
}

#define COLS                                                                                       \
    "SELECT change, doc, what, kind, path, old_path, ins, del, opseq, opcount, version, "          \
    "blob FROM edits "

static void random_edit(ws_edit *e, medit *m, int64_t change, int64_t doc, char paths[][400])
{
    memset(m, 0, sizeof *m);
    m->change = change;
    m->doc = doc;
    m->what = (int64_t)rnd(8) == 0 ? (int64_t)rnd(6) : 2;
    m->kind = rnd(10) == 0 ? 1 : 0;
    m->ins = (int64_t)rnd(5) == 0 ? (int64_t)rnd(100000) : (int64_t)rnd(40);
    m->del = (int64_t)rnd(30);
    m->opseq = (int64_t)(rnd(4) == 0 ? rnd(1u << 30) : rnd(300000));
    m->opcount = (int64_t)rnd(3) == 0 ? 0 : (int64_t)rnd(500);
    if (rnd(12) == 0) { /* a rename: a new path, the old one kept */
        m->has_old = true;
        snprintf(m->old_path, sizeof m->old_path, "%.60s", paths[doc]);
        size_t len = rnd(7) == 0 ? 300 : 5 + rnd(20);
        for (size_t i = 0; i < len; i++)
            paths[doc][i] = (char)('a' + rnd(26));
        paths[doc][len] = 0;
    }
    snprintf(m->path, sizeof m->path, "%s", paths[doc]);
    switch (rnd(8)) {
    case 0:
        break; /* NULL */
    case 1:
        snprintf(m->version, sizeof m->version, "%s", "");
        m->has_version = true;
        break;
    case 2: /* several authors */
        snprintf(m->version, sizeof m->version, "1:%lld,2:%llu,10:0", (long long)m->opseq,
                 (unsigned long long)rnd(1000000));
        m->has_version = true;
        break;
    case 3: /* not in canonical form: kept as text */
        snprintf(m->version, sizeof m->version, "%s", rnd(2) ? "01:5" : "x,y");
        m->has_version = true;
        break;
    default: /* the edit's own last operation, the common case */
        snprintf(m->version, sizeof m->version, "%llu:%lld", (unsigned long long)(1 + rnd(3)),
                 (long long)(m->opseq + m->opcount - 1 < 0 ? 0 : m->opseq + m->opcount - 1));
        m->has_version = true;
    }
    if (rnd(9) == 0) {
        m->has_blob = true;
        for (int i = 0; i < 32; i++)
            m->blob[i] = (uint8_t)rnd(256);
    }
    *e = (ws_edit){m->change,
                   m->doc,
                   m->what,
                   m->kind,
                   m->path,
                   m->has_old ? m->old_path : NULL,
                   m->ins,
                   m->del,
                   m->opseq,
                   m->opcount,
                   m->has_version ? m->version : NULL,
                   m->has_blob ? m->blob : NULL,
                   m->has_blob ? 32 : 0};
}

TT_TEST(runs_read_back_as_written)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/runs", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    sqlite3 *db = ws->db;
    char paths[8][400];
    for (int d = 1; d < 8; d++)
        snprintf(paths[d], sizeof paths[d], "doc%d.md", d);
    nmodel = 0;
    int64_t change = 0;
    TT_OK(ws_begin(ws));
    while (nmodel < 3000) {
        change += rnd(10) == 0 ? 1 + (int64_t)rnd(600) : 1; /* gaps, some past a run's span */
        int ndocs = rnd(10) == 0 ? 1 + (int)rnd(7) : 1;
        int64_t doc = rnd(3) == 0 ? 1 + (int64_t)rnd(7) : 1; /* doc 1 is edited most */
        for (int k = 0; k < ndocs && nmodel < 3000; k++, doc = 1 + (doc % 7)) {
            ws_edit e;
            medit m;
            random_edit(&e, &m, change, doc, paths);
            TT_OK(ws_edit_put(ws, &e, true));
            medit *old = find(change, doc);
            if (old)
                *old = m;
            else
                model[nmodel++] = m;
        }
        if (rnd(20) == 0 && nmodel) { /* again: ignored, or replaced */
            medit *t = &model[rnd(nmodel)];
            ws_edit e;
            medit m;
            char keep[400];
            snprintf(keep, sizeof keep, "%s", paths[t->doc]);
            random_edit(&e, &m, t->change, t->doc, paths);
            snprintf(paths[t->doc], sizeof paths[t->doc], "%s", keep);
            bool replace = rnd(2);
            TT_OK(ws_edit_put(ws, &e, replace));
            if (replace)
                *t = m;
        }
        if (rnd(40) == 0 && change > 3) { /* an older change, arriving late */
            int64_t at = 1 + (int64_t)rnd((uint64_t)change - 1);
            int64_t d = 1 + (int64_t)rnd(7);
            if (!find(at, d)) {
                ws_edit e;
                medit m;
                char keep[400];
                snprintf(keep, sizeof keep, "%s", paths[d]);
                random_edit(&e, &m, at, d, paths);
                snprintf(paths[d], sizeof paths[d], "%s", keep);
                TT_OK(ws_edit_put(ws, &e, false));
                model[nmodel++] = m;
            }
        }
    }
    TT_OK(ws_commit_tx(ws));
    qsort(model, nmodel, sizeof *model, cmp_change_doc);
    static const medit *want[4000];
    int bad = 0;

    /* everything, in (change, doc) order: SQLite sorts */
    for (size_t i = 0; i < nmodel; i++)
        want[i] = &model[i];
    bad += compare(db, COLS "ORDER BY change, doc", NULL, 0, want, nmodel);

    /* by document, both ways, bounded or not */
    for (int64_t d = 1; d < 8; d++) {
        size_t n = 0;
        for (size_t i = 0; i < nmodel; i++)
            if (model[i].doc == d)
                want[n++] = &model[i];
        bad += compare(db, COLS "WHERE doc=?1 ORDER BY change", &d, 1, want, n);
        for (size_t i = 0; i < n / 2; i++) {
            const medit *t = want[i];
            want[i] = want[n - 1 - i];
            want[n - 1 - i] = t;
        }
        bad += compare(db, COLS "WHERE doc=?1 ORDER BY change DESC", &d, 1, want, n);
        for (int k = 0; k < 30; k++) {
            int64_t args[2] = {d, (int64_t)rnd((uint64_t)change + 2)};
            const medit *last = NULL, *before = NULL, *exact = NULL;
            for (size_t i = 0; i < nmodel; i++) {
                if (model[i].doc != d)
                    continue;
                if (model[i].change <= args[1])
                    last = &model[i];
                if (model[i].change < args[1])
                    before = &model[i];
                if (model[i].change == args[1])
                    exact = &model[i];
            }
            bad += compare(db, COLS "WHERE doc=?1 AND change<=?2 ORDER BY change DESC LIMIT 1",
                           args, 2, &last, last != NULL);
            bad += compare(db, COLS "WHERE doc=?1 AND change<?2 ORDER BY change DESC LIMIT 1", args,
                           2, &before, before != NULL);
            bad += compare(db, COLS "WHERE doc=?1 AND change=?2", args, 2, &exact, exact != NULL);
        }
    }
    /* by change: every change id, and ids between them */
    for (int64_t c = 0; c <= change + 1; c++) {
        size_t n = 0;
        for (size_t i = 0; i < nmodel; i++)
            if (model[i].change == c)
                want[n++] = &model[i];
        bad += compare(db, COLS "WHERE change=?1 ORDER BY doc", &c, 1, want, n);
        if (bad > 20)
            break;
    }
    TT_EQ(bad, 0);

    /* counts from the plans agree with a full scan */
    sqlite3_stmt *st = NULL;
    TT_EQ(
        sqlite3_prepare_v2(db, "SELECT count(*), sum(ins), max(change) FROM edits", -1, &st, NULL),
        SQLITE_OK);
    TT_EQ(sqlite3_step(st), SQLITE_ROW);
    TT_EQ(sqlite3_column_int64(st, 0), (int64_t)nmodel);
    int64_t ins = 0;
    for (size_t i = 0; i < nmodel; i++)
        ins += model[i].ins;
    TT_EQ(sqlite3_column_int64(st, 1), ins);
    sqlite3_finalize(st);
    kith_ws_close(ws);
}

TT_TEST(runs_are_compact)
{
    /* one document typed into: a change per save, each edit the last op's
     * version; ~10 bytes an edit, not a row's ~45 */
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/compact", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    TT_OK(ws_begin(ws));
    int64_t op = 0;
    for (int64_t c = 1; c <= 2000; c++) {
        char v[64];
        int64_t n = 20 + (c * 7) % 200;
        snprintf(v, sizeof v, "1:%lld", (long long)(op + n - 1));
        ws_edit e = {c, 1, 2, 0, "notes/paper.md", NULL, n - 3, 3, op, n, v, NULL, 0};
        TT_OK(ws_edit_put(ws, &e, true));
        op += n;
    }
    TT_OK(ws_commit_tx(ws));
    sqlite3_stmt *st = NULL;
    TT_EQ(sqlite3_prepare_v2(ws->db, "SELECT count(*), sum(length(data)) FROM edit_runs", -1, &st,
                             NULL),
          SQLITE_OK);
    TT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t runs = sqlite3_column_int64(st, 0), bytes = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    TT_ASSERT(runs >= 2000 / 30 && runs <= 2000 / 8);
    TT_ASSERT(bytes < 2000 * 12);
    kith_ws_close(ws);
}

TT_TEST(damaged_run_is_an_error)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/damaged", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    ws_edit e = {5, 1, 2, 0, "a.md", NULL, 1, 0, 0, 1, "1:0", NULL, 0};
    TT_OK(ws_begin(ws));
    TT_OK(ws_edit_put(ws, &e, true));
    TT_OK(ws_commit_tx(ws));
    static const char *const damage[] = {
        "UPDATE edit_runs SET data=x'ff'",                   /* a varint that never ends */
        "UPDATE edit_runs SET data=x'40000202'",             /* unknown flags */
        "UPDATE edit_runs SET data=x'0001020000000001'",     /* first record not at first */
        "UPDATE edit_runs SET data=x'01000200000000000509'", /* path longer than the run */
        "UPDATE edit_runs SET data=x''",                     /* no record */
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        TT_EQ(sqlite3_exec(ws->db, damage[i], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        TT_EQ(sqlite3_prepare_v2(ws->db, "SELECT path FROM edits WHERE doc=1", -1, &st, NULL),
              SQLITE_OK);
        int src = sqlite3_step(st);
        sqlite3_finalize(st);
        if (src != SQLITE_CORRUPT)
            TT_FAIL_("%s: step gave %d, want SQLITE_CORRUPT", damage[i], src);
        /* and a writer meets it as a clear error, not a crash */
        ws_edit next = {6, 1, 2, 0, "a.md", NULL, 1, 0, 1, 1, "1:1", NULL, 0};
        TT_EQ(ws_edit_put(ws, &next, true), KITH_ECORRUPT);
        TT_ASSERT(strstr(kith_ws_errmsg(ws), "corrupt"));
    }
    kith_ws_close(ws);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-runs-test", root, sizeof root);
}

TT_MAIN(TT_CASE(runs_read_back_as_written), TT_CASE(runs_are_compact),
        TT_CASE(damaged_run_is_an_error))
