/*
 * A workspace's changes, packed in runs (src/ws/changes.c), read back
 * through the virtual table `changes` exactly as written: a random history
 * of several authors (their changes interleaved, numbers arriving with gaps
 * and late, changes known already, some dropped, vias) is stored beside an
 * in-memory model, then every query shape the workspace uses is compared
 * with the model. A run that does not decode reads as an error.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"
#include "tt.h"
#include "ws/ws_int.h"

static char root[256];

typedef struct mchange {
    int64_t id, author, seq, time_ms, lamport;
    char via[40];
    bool has_via, gone;
} mchange;

static mchange model[6000];
static size_t nmodel;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(uint64_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % n;
}

static void row_text(char *out, size_t cap, int64_t id, int64_t author, int64_t seq, int64_t t,
                     int64_t l, const char *via)
{
    snprintf(out, cap, "%lld|%lld|%lld|%lld|%lld|%s", (long long)id, (long long)author,
             (long long)seq, (long long)t, (long long)l, via ? via : "(null)");
}

static void model_text(const mchange *m, char *out, size_t cap)
{
    row_text(out, cap, m->id, m->author, m->seq, m->time_ms, m->lamport,
             m->has_via ? m->via : NULL);
}

/* Runs @sql and compares its rows with @want[0..n), in order. */
static int compare(sqlite3 *db, const char *sql, const int64_t *args, int nargs,
                   const mchange *const *want, size_t n)
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
    char a[256], b[256];
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        row_text(a, sizeof a, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                 sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                 sqlite3_column_int64(st, 4), (const char *)sqlite3_column_text(st, 5));
        if (k < n) {
            model_text(want[k], b, sizeof b);
            if (strcmp(a, b)) {
                fprintf(stderr, "  %s (%lld): row %zu\n    got  %s\n    want %s\n", sql,
                        nargs ? (long long)args[0] : 0LL, k, a, b);
                bad++;
            }
        } else {
            fprintf(stderr, "  %s: extra row %s\n", sql, a);
            bad++;
        }
        k++;
    }
    if (src != SQLITE_DONE) {
        fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
        bad++;
    }
    if (k < n) {
        fprintf(stderr, "  %s (%lld): %zu rows, want %zu\n", sql, nargs ? (long long)args[0] : 0LL,
                k, n);
        bad++;
    }
    sqlite3_finalize(st);
    return bad;
}

#define COLS "SELECT id, author, seq, time_ms, lamport, via FROM changes "

static mchange *by_seq(int64_t author, int64_t seq)
{
    for (size_t i = 0; i < nmodel; i++)
        if (!model[i].gone && model[i].author == author && model[i].seq == seq)
            return &model[i];
    return NULL;
}

TT_TEST(changes_read_back_as_written)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/changes", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    sqlite3 *db = ws->db;
    int64_t next[5] = {0, 1, 1, 1, 1}, t = 1795000000000, lamport = 0, last_id = 0;
    nmodel = 0;
    TT_OK(ws_begin(ws));
    while (nmodel < 5000) {
        int64_t author = 1 + (int64_t)rnd(4);
        int burst = 1 + (int)rnd(rnd(4) == 0 ? 60 : 3); /* one author's changes in a row */
        for (int k = 0; k < burst && nmodel < 5000; k++) {
            mchange m = {0};
            m.author = author;
            m.seq = next[author]++;
            if (rnd(30) == 0) /* a gap: a number that arrives later, or never */
                m.seq = next[author]++;
            t += rnd(10) == 0 ? (int64_t)rnd(86400000) : (int64_t)rnd(40000);
            m.time_ms = rnd(50) == 0 ? t - (int64_t)rnd(100000) : t; /* clocks go back */
            lamport += rnd(3) == 0 ? 1 + (int64_t)rnd(20) : 1;
            m.lamport = rnd(40) == 0 ? (int64_t)rnd((uint64_t)lamport + 1) : lamport;
            if (rnd(15) == 0) {
                m.has_via = true;
                snprintf(m.via, sizeof m.via, "model:%llu", (unsigned long long)rnd(1000));
            }
            ws_change_row row = {0,         m.author,  m.seq,
                                 m.time_ms, m.lamport, m.has_via ? m.via : NULL};
            bool added = false;
            TT_OK(ws_change_put(ws, &row, &added));
            TT_ASSERT(added);
            /* after the newest, or the newest's place if that was dropped */
            TT_ASSERT(row.id > (nmodel && !model[nmodel - 1].gone ? model[nmodel - 1].id : 0));
            TT_ASSERT(row.id <= last_id + 1);
            m.id = row.id;
            if (m.id > last_id)
                last_id = m.id;
            model[nmodel++] = m;
        }
        if (rnd(10) == 0) { /* a number from the gaps, late */
            int64_t a = 1 + (int64_t)rnd(4);
            for (int64_t s = 1; s < next[a]; s++) {
                if (by_seq(a, s))
                    continue;
                mchange m = {.author = a, .seq = s, .time_ms = t, .lamport = ++lamport};
                ws_change_row row = {0, a, s, t, m.lamport, NULL};
                bool added = false;
                TT_OK(ws_change_put(ws, &row, &added));
                TT_ASSERT(added);
                m.id = row.id;
                if (m.id > last_id)
                    last_id = m.id;
                model[nmodel++] = m;
                break;
            }
        }
        if (rnd(10) == 0 && nmodel) { /* known already: the held id comes back */
            mchange *h = &model[rnd(nmodel)];
            if (!h->gone) {
                ws_change_row row = {0, h->author, h->seq, 1, 2, NULL};
                bool added = true;
                TT_OK(ws_change_put(ws, &row, &added));
                TT_ASSERT(!added);
                TT_EQ(row.id, h->id);
            }
        }
        if (rnd(25) == 0 && nmodel) { /* dropped: the newest, or any */
            mchange *h = rnd(2) ? &model[nmodel - 1] : &model[rnd(nmodel)];
            if (!h->gone) {
                TT_OK(ws_change_drop(ws, h->id));
                h->gone = true;
            }
        }
    }
    TT_OK(ws_commit_tx(ws));
    static const mchange *want[6000];
    size_t n = 0;
    int bad = 0;
    for (size_t i = 0; i < nmodel; i++)
        if (!model[i].gone)
            want[n++] = &model[i];
    bad += compare(db, COLS "ORDER BY id", NULL, 0, want, n);
    for (size_t i = 0; i < n / 2; i++) {
        const mchange *x = want[i];
        want[i] = want[n - 1 - i];
        want[n - 1 - i] = x;
    }
    bad += compare(db, COLS "ORDER BY id DESC", NULL, 0, want, n);
    /* by id: every id, dropped ones and those past the end included */
    for (int64_t id = 0; id <= last_id + 1 && bad < 20; id++) {
        const mchange *m = NULL;
        for (size_t i = 0; i < nmodel; i++)
            if (model[i].id == id && !model[i].gone)
                m = &model[i];
        bad += compare(db, COLS "WHERE id=?1", &id, 1, &m, m != NULL);
    }
    /* by author: in number order either way, bounded, and one number */
    for (int64_t a = 1; a <= 5; a++) {
        n = 0;
        for (int64_t s = 1; s < 6000; s++) {
            const mchange *m = by_seq(a, s);
            if (m)
                want[n++] = m;
        }
        bad += compare(db, COLS "WHERE author=?1 ORDER BY seq", &a, 1, want, n);
        for (int k = 0; k < 40; k++) {
            int64_t args[2] = {a, (int64_t)rnd(a <= 4 ? (uint64_t)next[a] + 2 : 3)};
            const mchange *eq = by_seq(a, args[1]), *below = NULL, *at = NULL;
            for (size_t i = 0; i < n; i++) {
                if (want[i]->seq < args[1])
                    below = want[i];
                if (want[i]->seq <= args[1])
                    at = want[i];
            }
            bad += compare(db, COLS "WHERE author=?1 AND seq=?2", args, 2, &eq, eq != NULL);
            bad += compare(db, COLS "WHERE author=?1 AND seq<?2 ORDER BY seq DESC LIMIT 1", args, 2,
                           &below, below != NULL);
            bad += compare(db, COLS "WHERE author=?1 AND seq<=?2 ORDER BY seq DESC LIMIT 1", args,
                           2, &at, at != NULL);
        }
        int64_t seq = 0, lam = 0, maxlam = 0;
        TT_OK(ws_change_last(ws, a, &seq, &lam));
        TT_EQ(seq, n ? want[n - 1]->seq : 0);
        for (size_t i = 0; i < nmodel; i++)
            if (!model[i].gone && model[i].lamport > maxlam)
                maxlam = model[i].lamport;
        TT_EQ(lam, maxlam);
    }
    /* a join as the history code makes it: by id from another table */
    TT_EQ(sqlite3_exec(db, "CREATE TEMP TABLE probe(id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    for (size_t i = 0; i < nmodel; i += 7)
        if (!model[i].gone) {
            char sql[96];
            snprintf(sql, sizeof sql, "INSERT INTO probe VALUES(%lld)", (long long)model[i].id);
            TT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        }
    n = 0;
    for (size_t i = 0; i < nmodel; i += 7)
        if (!model[i].gone)
            want[n++] = &model[i];
    bad += compare(db,
                   "SELECT c.id, c.author, c.seq, c.time_ms, c.lamport, c.via FROM probe p "
                   "JOIN changes c ON c.id=p.id ORDER BY p.id",
                   NULL, 0, want, n);
    TT_EQ(bad, 0);
    kith_ws_close(ws);
}

TT_TEST(change_runs_are_compact)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/compact", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    TT_OK(ws_begin(ws));
    for (int64_t s = 1; s <= 3000; s++) {
        ws_change_row row = {0, 1, s, 1795000000000 + s * 20000, s, NULL};
        bool added = false;
        TT_OK(ws_change_put(ws, &row, &added));
        TT_EQ(row.id, s);
    }
    TT_OK(ws_commit_tx(ws));
    sqlite3_stmt *st = NULL;
    TT_EQ(sqlite3_prepare_v2(ws->db, "SELECT count(*), sum(length(data)) FROM change_runs", -1, &st,
                             NULL),
          SQLITE_OK);
    TT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t runs = sqlite3_column_int64(st, 0), bytes = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    TT_ASSERT(bytes < 3000 * 7); /* ~6 bytes a change: a save every 20 s */
    TT_ASSERT(runs < 3000 / 25);
    kith_ws_close(ws);
}

TT_TEST(damaged_change_run_is_an_error)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/damaged", root);
    TT_OK(kith_ws_init(dir, "Alice", &ws));
    TT_OK(ws_begin(ws));
    for (int64_t s = 1; s <= 3; s++) {
        ws_change_row row = {0, 1, s, 1000 * s, s, NULL};
        bool added = false;
        TT_OK(ws_change_put(ws, &row, &added));
    }
    TT_OK(ws_commit_tx(ws));
    static const char *const damage[] = {
        "UPDATE change_runs SET data=x'ff'",         /* a varint that never ends */
        "UPDATE change_runs SET n=5",                /* a count the records do not have */
        "UPDATE change_runs SET data=x'02000000'",   /* unknown flags */
        "UPDATE change_runs SET data=x'0100020205'", /* a via past the end */
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        TT_EQ(sqlite3_exec(ws->db, damage[i], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        TT_EQ(sqlite3_prepare_v2(ws->db, "SELECT seq FROM changes WHERE author=1", -1, &st, NULL),
              SQLITE_OK);
        int src = sqlite3_step(st);
        sqlite3_finalize(st);
        if (src != SQLITE_CORRUPT)
            TT_FAIL_("%s: step gave %d, want SQLITE_CORRUPT", damage[i], src);
        ws_change_row row = {0, 1, 4, 4000, 4, NULL};
        bool added = false;
        TT_EQ(ws_change_put(ws, &row, &added), KITH_ECORRUPT);
        TT_ASSERT(strstr(kith_ws_errmsg(ws), "corrupt"));
    }
    kith_ws_close(ws);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-changes-test", root, sizeof root);
}

TT_MAIN(TT_CASE(changes_read_back_as_written), TT_CASE(change_runs_are_compact),
        TT_CASE(damaged_change_run_is_an_error))
