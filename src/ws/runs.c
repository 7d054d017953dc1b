/*
 * Edits kept as runs. Every change leaves one edit per document it touched
 * (what happened, the counts, the CRDT operations it added, the version it
 * made), and a row per edit cost ~45 bytes with its index: at a save every
 * few hundred keystrokes, more than the text's own history. So a
 * document's consecutive edits are packed into one blob of varint records,
 * each field stored as its difference from what the record before predicts
 * (docs/FORMAT.md, "Edit runs"); a typing session's edit costs ~8 bytes.
 *
 * A run spans fewer than RUN_SPAN change ids, which keeps "the edits of
 * change X" one range probe on edit_runs_first, and holds at most RUN_BYTES
 * of records, which keeps a row inside its b-tree page and an append cheap.
 *
 * Readers see the runs as the eponymous virtual table `edits`, with the
 * columns schema 2's view had, so history queries stay plain SQL; the plans
 * it offers SQLite are by document (in change order, either way) and by
 * change. Writers go through ws_edit_put.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/bytes.h"
#include "ws/ws_int.h"

#define RUN_SPAN  256 /* a run's changes lie in [first, first + RUN_SPAN) */
#define RUN_BYTES 192 /* fits a WITHOUT ROWID row on a 1 KB page */

/* Record flags (docs/FORMAT.md). A record states only what its
 * predecessor does not predict; at a run's start the prediction is an
 * edit (what 1) of a text document (kind 0) whose version is unknown. */
enum {
    R_PATH = 1,    /* the path follows; else the previous record's */
    R_OLD = 2,     /* an old path follows */
    R_VERSION = 4, /* a version follows (as pairs); else NULL */
    R_VTEXT = 8,   /* ... as text */
    R_BLOB = 16,   /* a blob follows */
    R_KIND = 32,   /* what and kind follow; else the previous record's */
    R_VSAME = 64,  /* the version is "A:last", A the author of the previous pairs */
    R_ALL = 127
};

/* A decoded record; its strings are offsets into the run's arena (-1: NULL). */
typedef struct rec {
    int64_t change, what, kind, ins, del, opseq, opcount;
    int64_t path, old_path, version, blob;
    size_t path_len, old_len, version_len, blob_len;
    /* A version in pairs is turned into text only when asked for (most
     * queries never read it): V_SAME is "vauthor:vlast", V_PAIRS the pairs
     * whose bytes are at vpos (vlen bytes) in the arena. */
    uint8_t vlazy;
    int64_t vauthor;
    uint64_t vlast;
    size_t vpos, vlen;
} rec;

enum { V_TEXT = 0, V_SAME = 1, V_PAIRS = 2 };

typedef struct run {
    int64_t doc, first;
    rec *recs;
    size_t n, cap;
    ws_wbuf arena; /* the records' strings, each NUL-terminated */
} run;

static void run_clear(run *r)
{
    r->n = 0;
    r->arena.n = 0;
    r->arena.err = 0;
}

static void run_free(run *r)
{
    kith_free(r->recs);
    kith_free(r->arena.p);
    memset(r, 0, sizeof *r);
}

static int64_t arena_put(ws_wbuf *a, const void *s, size_t len)
{
    int64_t off = (int64_t)a->n;
    ws_wb_bytes(a, s, len);
    ws_wb_bytes(a, "", 1);
    return a->err ? -1 : off;
}

static const char *str_at(const run *r, int64_t off)
{
    return off < 0 ? NULL : (const char *)r->arena.p + off;
}

/* ---- versions as pairs ----------------------------------------------------------- */

/* A stored version is "author:seq,..." with the authors' row ids (version.c).
 * Parses one decimal without sign or leading zero; NULL if there is none. */
static const char *parse_dec(const char *p, const char *end, uint64_t *v)
{
    if (p == end || *p < '0' || *p > '9' ||
        (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
        return NULL;
    uint64_t x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (x > (uint64_t)INT64_MAX / 10 || x * 10 + (uint64_t)(*p - '0') > (uint64_t)INT64_MAX)
            return NULL;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *v = x;
    return p;
}

/* Counts @v's pairs if it is in canonical "a:s,a:s" form, else -1. */
static long count_pairs(const char *v, size_t len)
{
    const char *p = v, *end = v + len;
    long n = 0;
    uint64_t a, s;
    while (p < end) {
        if (n && *p++ != ',')
            return -1;
        if (!(p = parse_dec(p, end, &a)) || p == end || *p++ != ':' || !(p = parse_dec(p, end, &s)))
            return -1;
        n++;
    }
    return n;
}

/* The one pair of @v, if it has exactly one. */
static bool one_pair(const char *v, size_t len, uint64_t *a, uint64_t *s)
{
    const char *p = parse_dec(v, v + len, a);
    if (!p || p == v + len || *p++ != ':')
        return false;
    p = parse_dec(p, v + len, s);
    return p == v + len;
}

/* Pairs are stored against the record's last operation: a version made by
 * the edit itself is that operation's id, so its seq costs one byte. */
static void put_pairs(ws_wbuf *w, const char *v, size_t len, long n, uint64_t last)
{
    const char *p = v, *end = v + len;
    uint64_t a, s;
    ws_wb_var(w, (uint64_t)n);
    while (p < end) {
        if (*p == ',')
            p++;
        p = parse_dec(p, end, &a) + 1;
        p = parse_dec(p, end, &s);
        ws_wb_var(w, a);
        ws_wb_var(w, ws_zigzag(s - last));
    }
}

static void format_pair(ws_wbuf *arena, bool comma, uint64_t a, uint64_t s)
{
    char buf[48];
    int k = snprintf(buf, sizeof buf, "%s%llu:%llu", comma ? "," : "", (unsigned long long)a,
                     (unsigned long long)s);
    ws_wb_bytes(arena, buf, (size_t)k);
}

/* Checks the pairs at @rb and steps past them; *author: the first pair's,
 * if any. */
static int skip_pairs(ws_rbuf *rb, uint64_t last, int64_t *author)
{
    uint64_t n = ws_rb_var(rb, rb->n);
    for (uint64_t i = 0; i < n && !rb->err; i++) {
        uint64_t a = ws_rb_var(rb, INT64_MAX);
        uint64_t s = last + ws_unzigzag(ws_rb_var(rb, UINT64_MAX));
        if (s > INT64_MAX)
            rb->err = true;
        if (i == 0)
            *author = (int64_t)a;
    }
    return rb->err ? SQLITE_CORRUPT : SQLITE_OK;
}

/* Appends the text of checked pairs @p (@len bytes) to @arena. */
static void format_pairs(ws_wbuf *arena, const uint8_t *p, size_t len, uint64_t last)
{
    ws_rbuf rb = {p, len, 0, false};
    uint64_t n = ws_rb_var(&rb, len);
    for (uint64_t i = 0; i < n && !rb.err; i++) {
        uint64_t a = ws_rb_var(&rb, INT64_MAX);
        format_pair(arena, i > 0, a, last + ws_unzigzag(ws_rb_var(&rb, UINT64_MAX)));
    }
}

/* Gives record @e of @r its version as text in the arena. */
static int version_text(run *r, rec *e)
{
    if (e->vlazy == V_TEXT)
        return SQLITE_OK;
    size_t off = r->arena.n;
    if (e->vlazy == V_SAME)
        format_pair(&r->arena, false, (uint64_t)e->vauthor, e->vlast);
    else { /* from a copy: appending may move the arena */
        uint8_t *copy = kith_malloc(e->vlen + 1);
        if (!copy)
            return SQLITE_NOMEM;
        memcpy(copy, r->arena.p + e->vpos, e->vlen);
        format_pairs(&r->arena, copy, e->vlen, e->vlast);
        kith_free(copy);
    }
    e->version = (int64_t)off;
    e->version_len = r->arena.n - off;
    ws_wb_bytes(&r->arena, "", 1);
    e->vlazy = V_TEXT;
    return r->arena.err ? SQLITE_NOMEM : SQLITE_OK;
}

static int versions_text(run *r)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; !rc && i < r->n; i++)
        rc = version_text(r, &r->recs[i]);
    return rc;
}

/* ---- records ------------------------------------------------------------------------ */

/* What the previous record predicts of the next. */
typedef struct pred {
    uint64_t change, next_op;
    int64_t what, kind, author; /* author: -1 until a version in pairs */
} pred;

static pred pred_start(int64_t first)
{
    return (pred){(uint64_t)first, 0, KITH_WS_MODIFIED, WS_TEXT, -1};
}

static void put_str(ws_wbuf *w, const char *s, size_t len)
{
    ws_wb_var(w, len);
    ws_wb_bytes(w, s, len);
}

static bool same_str(const run *r, int64_t a, size_t alen, int64_t b, size_t blen)
{
    if (a < 0 || b < 0)
        return a < 0 && b < 0;
    return alen == blen && !memcmp(str_at(r, a), str_at(r, b), alen);
}

/* Encodes @r's records (sorted by change, first = the first's) into @w. */
static int run_encode(const run *r, ws_wbuf *w)
{
    w->n = 0;
    w->err = 0;
    pred p = pred_start(r->first);
    for (size_t i = 0; i < r->n; i++) {
        const rec *e = &r->recs[i];
        bool path = i == 0 ? e->path >= 0
                           : !same_str(r, e->path, e->path_len, r->recs[i - 1].path,
                                       r->recs[i - 1].path_len);
        const char *v = str_at(r, e->version);
        long pairs = v ? count_pairs(v, e->version_len) : -1;
        uint64_t last = (uint64_t)e->opseq + (uint64_t)e->opcount - 1, a = 0, sq = 0;
        bool vsame = pairs == 1 && p.author >= 0 && one_pair(v, e->version_len, &a, &sq) &&
                     a == (uint64_t)p.author && sq == last;
        unsigned flags = (path ? R_PATH : 0) | (e->old_path >= 0 ? R_OLD : 0) |
                         (e->blob >= 0 ? R_BLOB : 0) |
                         (e->what != p.what || e->kind != p.kind ? R_KIND : 0);
        if (v)
            flags |= R_VERSION | (pairs < 0 ? R_VTEXT : vsame ? R_VSAME : 0);
        ws_wb_var(w, flags);
        ws_wb_var(w, (uint64_t)e->change - p.change);
        if (flags & R_KIND) {
            ws_wb_var(w, (uint64_t)e->what);
            ws_wb_var(w, (uint64_t)e->kind);
        }
        ws_wb_var(w, (uint64_t)e->ins);
        ws_wb_var(w, (uint64_t)e->del);
        ws_wb_var(w, ws_zigzag((uint64_t)e->opseq - p.next_op));
        ws_wb_var(w, ws_zigzag((uint64_t)e->opcount - (uint64_t)e->ins - (uint64_t)e->del));
        if (flags & R_VTEXT)
            put_str(w, v, e->version_len);
        else if (v && !vsame)
            put_pairs(w, v, e->version_len, pairs, last);
        if (path)
            put_str(w, str_at(r, e->path), e->path_len);
        if (flags & R_OLD)
            put_str(w, str_at(r, e->old_path), e->old_len);
        if (flags & R_BLOB)
            put_str(w, str_at(r, e->blob), e->blob_len);
        p.change = (uint64_t)e->change;
        p.next_op = (uint64_t)e->opseq + (uint64_t)e->opcount;
        p.what = e->what;
        p.kind = e->kind;
        if (v && pairs > 0 && !vsame)
            one_pair(v, strcspn(v, ","), &a, &sq), p.author = (int64_t)a;
    }
    return w->err ? SQLITE_NOMEM : SQLITE_OK;
}

static int get_str(ws_rbuf *rb, ws_wbuf *arena, int64_t *off, size_t *len)
{
    *len = (size_t)ws_rb_var(rb, rb->n);
    const uint8_t *p = ws_rb_bytes(rb, *len);
    if (!p)
        return SQLITE_CORRUPT;
    *off = arena_put(arena, p, *len);
    return *off < 0 ? SQLITE_NOMEM : SQLITE_OK;
}

static int grow_recs(run *r)
{
    return kith_grow((void **)&r->recs, &r->cap, r->n + 1, sizeof *r->recs) ? SQLITE_NOMEM
                                                                            : SQLITE_OK;
}

static int get_version(ws_rbuf *rb, run *r, rec *e, uint64_t flags, pred *p)
{
    uint64_t last = (uint64_t)e->opseq + (uint64_t)e->opcount - 1;
    if (!(flags & R_VERSION))
        return (flags & (R_VTEXT | R_VSAME)) ? SQLITE_CORRUPT : SQLITE_OK;
    if ((flags & R_VTEXT) && (flags & R_VSAME))
        return SQLITE_CORRUPT;
    if (flags & R_VTEXT)
        return get_str(rb, &r->arena, &e->version, &e->version_len);
    e->vlast = last;
    e->version = 0; /* not NULL; the text comes from version_text */
    if (flags & R_VSAME) {
        if (p->author < 0 || last > INT64_MAX)
            return SQLITE_CORRUPT;
        e->vlazy = V_SAME;
        e->vauthor = p->author;
        return SQLITE_OK;
    }
    size_t start = rb->off;
    int rc = skip_pairs(rb, last, &p->author);
    if (rc)
        return rc;
    e->vlazy = V_PAIRS;
    e->vlen = rb->off - start;
    e->vpos = r->arena.n;
    ws_wb_bytes(&r->arena, rb->p + start, e->vlen);
    return r->arena.err ? SQLITE_NOMEM : SQLITE_OK;
}

/* Decodes run @data of @doc starting at change @first into @r. Anything out
 * of shape (a bad varint, an overrun, unknown flags, changes not rising,
 * counts beyond SQLite's integers) is SQLITE_CORRUPT: a damaged store must
 * read as damaged, never crash or return garbage. */
static int run_decode(run *r, int64_t doc, int64_t first, const void *data, size_t len)
{
    run_clear(r);
    r->doc = doc;
    r->first = first;
    ws_rbuf rb = {data, len, 0, false};
    pred p = pred_start(first);
    int rc = SQLITE_OK;
    while (!rc && rb.off < rb.n) {
        if ((rc = grow_recs(r)))
            break;
        rec *e = &r->recs[r->n];
        memset(e, 0, sizeof *e);
        e->path = e->old_path = e->version = e->blob = -1;
        uint64_t flags = ws_rb_var(&rb, R_ALL);
        uint64_t step = ws_rb_var(&rb, RUN_SPAN - 1);
        if ((r->n && step == 0) || (!r->n && step != 0) ||
            p.change + step >= (uint64_t)first + RUN_SPAN)
            rb.err = true;
        e->change = (int64_t)(p.change += step);
        e->what = flags & R_KIND ? (int64_t)ws_rb_var(&rb, INT64_MAX) : p.what;
        e->kind = flags & R_KIND ? (int64_t)ws_rb_var(&rb, INT64_MAX) : p.kind;
        e->ins = (int64_t)ws_rb_var(&rb, INT64_MAX);
        e->del = (int64_t)ws_rb_var(&rb, INT64_MAX);
        uint64_t opseq = p.next_op + ws_unzigzag(ws_rb_var(&rb, UINT64_MAX));
        uint64_t opcount =
            (uint64_t)e->ins + (uint64_t)e->del + ws_unzigzag(ws_rb_var(&rb, UINT64_MAX));
        if (rb.err || opseq > INT64_MAX || opcount > INT64_MAX)
            return SQLITE_CORRUPT;
        e->opseq = (int64_t)opseq;
        e->opcount = (int64_t)opcount;
        rc = get_version(&rb, r, e, flags, &p);
        if (!rc && (flags & R_PATH))
            rc = get_str(&rb, &r->arena, &e->path, &e->path_len);
        else if (!rc && r->n) {
            e->path = r->recs[r->n - 1].path;
            e->path_len = r->recs[r->n - 1].path_len;
        }
        if (!rc && (flags & R_OLD))
            rc = get_str(&rb, &r->arena, &e->old_path, &e->old_len);
        if (!rc && (flags & R_BLOB))
            rc = get_str(&rb, &r->arena, &e->blob, &e->blob_len);
        p.next_op = opseq + opcount;
        p.what = e->what;
        p.kind = e->kind;
        r->n++;
    }
    if (!rc && r->n == 0)
        rc = SQLITE_CORRUPT;
    return rc;
}

/* ---- writing ------------------------------------------------------------------------ */

static int set_rec(run *r, rec *e, const ws_edit *in)
{
    memset(e, 0, sizeof *e);
    e->change = in->change;
    e->what = in->what;
    e->kind = in->kind;
    e->ins = in->ins;
    e->del = in->del;
    e->opseq = in->opseq;
    e->opcount = in->opcount;
    e->path = e->old_path = e->version = e->blob = -1;
    if (in->path) {
        e->path_len = strlen(in->path);
        e->path = arena_put(&r->arena, in->path, e->path_len);
    }
    if (in->old_path) {
        e->old_len = strlen(in->old_path);
        e->old_path = arena_put(&r->arena, in->old_path, e->old_len);
    }
    if (in->version) {
        e->version_len = strlen(in->version);
        e->version = arena_put(&r->arena, in->version, e->version_len);
    }
    if (in->blob) {
        e->blob_len = in->blob_len;
        e->blob = arena_put(&r->arena, in->blob, in->blob_len);
    }
    return r->arena.err ? SQLITE_NOMEM : SQLITE_OK;
}

static int step_done(kith_ws *ws, sqlite3_stmt *st)
{
    int src = sqlite3_step(st);
    return src == SQLITE_DONE ? KITH_OK : ws_sqlerr(ws, src, "recording history");
}

/* Writes @r (records [from, to)) as the row keyed by its first change. */
static int save_run(kith_ws *ws, run *r, size_t from, size_t to, bool insert)
{
    run part = *r;
    part.recs = r->recs + from;
    part.n = to - from;
    part.first = r->recs[from].change;
    ws_wbuf w = {0};
    int rc = run_encode(&part, &w) ? KITH_ENOMEM : KITH_OK;
    sqlite3_stmt *st = NULL;
    if (!rc)
        rc = ws_prepare(ws, &st,
                        insert
                            ? "INSERT INTO edit_runs(doc, first, last, data) VALUES(?1, ?2, ?3, ?4)"
                            : "UPDATE edit_runs SET last=?3, data=?4 WHERE doc=?1 AND first=?2");
    if (!rc) {
        sqlite3_bind_int64(st, 1, r->doc);
        sqlite3_bind_int64(st, 2, part.first);
        sqlite3_bind_int64(st, 3, part.recs[part.n - 1].change);
        sqlite3_bind_blob64(st, 4, w.p, w.n, SQLITE_STATIC);
        rc = step_done(ws, st);
    }
    sqlite3_finalize(st);
    kith_free(w.p);
    return rc;
}

static size_t encoded_size(const run *r, int *rc)
{
    ws_wbuf w = {0};
    *rc = run_encode(r, &w) ? KITH_ENOMEM : KITH_OK;
    kith_free(w.p);
    return w.n;
}

/* Loads the run of @doc that holds (or would hold) change @change: the one
 * with the greatest first change at or before it. *found false: none. */
static int load_run(kith_ws *ws, run *r, int64_t doc, int64_t change, bool *found)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT first, data FROM edit_runs WHERE doc=?1 AND first<=?2 "
                        "ORDER BY first DESC LIMIT 1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, doc);
    sqlite3_bind_int64(st, 2, change);
    int src = sqlite3_step(st);
    *found = src == SQLITE_ROW;
    if (src == SQLITE_ROW) {
        int drc = run_decode(r, doc, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                             (size_t)sqlite3_column_bytes(st, 1));
        if (!drc)
            drc = versions_text(r); /* the encoder reads them */
        if (drc == SQLITE_NOMEM)
            rc = KITH_ENOMEM;
        else if (drc)
            rc = ws_error(ws, KITH_ECORRUPT,
                          "the store %s/store.db is corrupt (the history of document %lld near "
                          "change %lld does not decode); restore it from a backup or another "
                          "replica",
                          ws->kithdir ? ws->kithdir : ".kith", (long long)doc, (long long)change);
    } else if (src != SQLITE_DONE) {
        rc = ws_sqlerr(ws, src, "reading history");
    }
    sqlite3_finalize(st);
    return rc;
}

static int check_edit(kith_ws *ws, const ws_edit *e)
{
    if (e->change <= 0 || e->doc <= 0 || e->what < 0 || e->kind < 0 || e->ins < 0 || e->del < 0 ||
        e->opseq < 0 || e->opcount < 0 || !e->path)
        return ws_error(ws, KITH_EINVAL,
                        "an edit of change %lld has a negative count, id or no path",
                        (long long)e->change);
    return KITH_OK;
}

int ws_edit_put(kith_ws *ws, const ws_edit *e, bool replace)
{
    int rc = check_edit(ws, e);
    if (rc)
        return rc;
    run r = {0};
    bool found = false;
    if ((rc = load_run(ws, &r, e->doc, e->change, &found)))
        goto out;
    if (!found || e->change - r.first >= RUN_SPAN) { /* a run of its own */
        run_clear(&r);
        r.doc = e->doc;
        r.first = e->change;
        if (grow_recs(&r) || set_rec(&r, &r.recs[0], e)) {
            rc = KITH_ENOMEM;
            goto out;
        }
        r.n = 1;
        rc = save_run(ws, &r, 0, 1, true);
        goto out;
    }
    size_t pos = 0;
    while (pos < r.n && r.recs[pos].change < e->change)
        pos++;
    if (pos < r.n && r.recs[pos].change == e->change) {
        if (!replace)
            goto out;
        if (set_rec(&r, &r.recs[pos], e)) {
            rc = KITH_ENOMEM;
            goto out;
        }
    } else {
        if (grow_recs(&r)) {
            rc = KITH_ENOMEM;
            goto out;
        }
        memmove(r.recs + pos + 1, r.recs + pos, (r.n - pos) * sizeof *r.recs);
        r.n++;
        if (set_rec(&r, &r.recs[pos], e)) {
            rc = KITH_ENOMEM;
            goto out;
        }
    }
    size_t size = encoded_size(&r, &rc);
    if (rc || size <= RUN_BYTES || r.n == 1) {
        if (!rc)
            rc = save_run(ws, &r, 0, r.n, false);
    } else if (pos == r.n - 1) { /* the run is full: the edit starts the next */
        rc = save_run(ws, &r, 0, r.n - 1, false);
        if (!rc)
            rc = save_run(ws, &r, r.n - 1, r.n, true);
    } else { /* grown in the middle: split it in two */
        size_t half = r.n / 2;
        rc = save_run(ws, &r, 0, half, false);
        if (!rc)
            rc = save_run(ws, &r, half, r.n, true);
    }
out:
    run_free(&r);
    return rc;
}

/* ---- the `edits` virtual table ----------------------------------------------------- */

enum {
    C_CHANGE,
    C_DOC,
    C_WHAT,
    C_KIND,
    C_PATH,
    C_OLD,
    C_INS,
    C_DEL,
    C_OPSEQ,
    C_OPCOUNT,
    C_VERSION,
    C_BLOB
};

/* Plan bits (idxNum): the arguments come in this order. */
enum { P_DOC = 1, P_CEQ = 2, P_CMAX = 4, P_CLT = 8, P_DESC = 16 };

typedef struct ev_cursor {
    sqlite3_vtab_cursor base;
    sqlite3_stmt *st; /* the runs, in the plan's order */
    int slot;         /* st's in the table's statements */
    run r;            /* the current run, decoded */
    size_t pos;       /* records of r passed, in the plan's direction */
    size_t runs;      /* runs read since the filter */
    bool eof, desc;
    int plan;
    int64_t ceq, cmax, rowid;
} ev_cursor;

static int ev_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    return ws_vt_connect(db,
                         "CREATE TABLE x(change INTEGER, doc INTEGER, what INTEGER, "
                         "kind INTEGER, path TEXT, old_path TEXT, ins INTEGER, "
                         "del INTEGER, opseq INTEGER, opcount INTEGER, "
                         "version TEXT, blob BLOB)",
                         out);
}

/* Whether the rows of @plan already come in @ix's ORDER BY: by document
 * they come in change order (either way), by change sorted by document,
 * and a full scan by document, then change. */
static bool order_given(const sqlite3_index_info *ix, int plan)
{
    for (int k = 0; k < ix->nOrderBy; k++) {
        int col = ix->aOrderBy[k].iColumn;
        bool desc = ix->aOrderBy[k].desc;
        if (col == C_CHANGE && (plan & P_CEQ))
            continue;
        if (col == C_DOC && (plan & P_DOC))
            continue;
        if (col == C_CHANGE && (plan & P_DOC) && desc == !!(plan & P_DESC))
            continue;
        if (col == C_DOC && !(plan & P_DOC) && !desc)
            continue;
        return false;
    }
    return true;
}

static int ev_best_index(sqlite3_vtab *v, sqlite3_index_info *ix)
{
    (void)v;
    int doc = -1, ceq = -1, cmax = -1, plan = 0;
    for (int i = 0; i < ix->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &ix->aConstraint[i];
        if (!c->usable)
            continue;
        if (c->iColumn == C_DOC && c->op == SQLITE_INDEX_CONSTRAINT_EQ && doc < 0)
            doc = i;
        else if (c->iColumn == C_CHANGE && c->op == SQLITE_INDEX_CONSTRAINT_EQ && ceq < 0)
            ceq = i;
        else if (c->iColumn == C_CHANGE && cmax < 0 &&
                 (c->op == SQLITE_INDEX_CONSTRAINT_LE || c->op == SQLITE_INDEX_CONSTRAINT_LT))
            cmax = i;
    }
    int arg = 1;
    if (doc >= 0) {
        plan |= P_DOC;
        ix->aConstraintUsage[doc].argvIndex = arg++;
    }
    if (ceq >= 0) {
        plan |= P_CEQ;
        ix->aConstraintUsage[ceq].argvIndex = arg++;
    } else if (cmax >= 0 && doc >= 0) {
        plan |= P_CMAX | (ix->aConstraint[cmax].op == SQLITE_INDEX_CONSTRAINT_LT ? P_CLT : 0);
        ix->aConstraintUsage[cmax].argvIndex = arg++;
    }
    for (int k = 0; (plan & P_DOC) && k < ix->nOrderBy; k++)
        if (ix->aOrderBy[k].iColumn == C_CHANGE && ix->aOrderBy[k].desc)
            plan |= P_DESC;
    /* SQLite checks every constraint again (omit stays 0): the plan only
     * narrows what is read. */
    ix->orderByConsumed = order_given(ix, plan);
    ix->idxNum = plan;
    if ((plan & (P_DOC | P_CEQ)) == (P_DOC | P_CEQ)) {
        ix->estimatedCost = 5;
        ix->estimatedRows = 1;
        ix->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    } else if (plan & P_CEQ) {
        ix->estimatedCost = 20;
        ix->estimatedRows = 2;
    } else if (plan & P_DOC) {
        ix->estimatedCost = plan & P_CMAX ? 200 : 300;
        ix->estimatedRows = 100;
    } else {
        ix->estimatedCost = 1e6;
        ix->estimatedRows = 1000000;
    }
    return SQLITE_OK;
}

static int ev_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
    (void)v;
    ev_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int ev_close(sqlite3_vtab_cursor *cur)
{
    ev_cursor *c = (ev_cursor *)cur;
    ws_vt_give(&((ws_vt *)cur->pVtab)->stmts, c->slot, c->st);
    run_free(&c->r);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int cursor_error(ev_cursor *c, int src)
{
    return ws_vt_error(c->base.pVtab, src,
                       src == SQLITE_CORRUPT
                           ? sqlite3_mprintf("the history of document %lld from change %lld "
                                             "does not decode",
                                             (long long)c->r.doc, (long long)c->r.first)
                           : NULL);
}

/* Reads and decodes the next run; eof when there is none. By document and
 * change, only the run holding that change can have it. */
static int next_run(ev_cursor *c)
{
    c->r.n = 0;
    c->pos = 0;
    if ((c->plan & P_DOC) && (c->plan & P_CEQ) && c->runs) {
        c->eof = true;
        return SQLITE_OK;
    }
    int src = sqlite3_step(c->st);
    if (src == SQLITE_DONE) {
        c->eof = true;
        return SQLITE_OK;
    }
    if (src != SQLITE_ROW)
        return cursor_error(c, src);
    c->runs++;
    int drc = run_decode(&c->r, sqlite3_column_int64(c->st, 0), sqlite3_column_int64(c->st, 1),
                         sqlite3_column_blob(c->st, 2), (size_t)sqlite3_column_bytes(c->st, 2));
    return drc ? cursor_error(c, drc) : SQLITE_OK;
}

static rec *current(ev_cursor *c)
{
    return &c->r.recs[c->desc ? c->r.n - 1 - c->pos : c->pos];
}

static bool wanted(const ev_cursor *c, const rec *e)
{
    if ((c->plan & P_CEQ) && e->change != c->ceq)
        return false;
    return !(c->plan & P_CMAX) || e->change <= c->cmax;
}

/* Moves to the first wanted record from the current position on. */
static int settle(ev_cursor *c)
{
    while (!c->eof) {
        for (; c->pos < c->r.n; c->pos++) {
            const rec *e = current(c);
            if (wanted(c, e))
                return SQLITE_OK;
            /* by document in rising change order, nothing later qualifies */
            if ((c->plan & P_DOC) && !c->desc && (c->plan & (P_CEQ | P_CMAX)) &&
                e->change > ((c->plan & P_CEQ) ? c->ceq : c->cmax)) {
                c->eof = true;
                return SQLITE_OK;
            }
        }
        int src = next_run(c);
        if (src)
            return src;
    }
    return SQLITE_OK;
}

static int ev_filter(sqlite3_vtab_cursor *cur, int plan, const char *idxStr, int argc,
                     sqlite3_value **argv)
{
    (void)idxStr;
    ev_cursor *c = (ev_cursor *)cur;
    ws_vt_give(&((ws_vt *)cur->pVtab)->stmts, c->slot, c->st);
    c->st = NULL;
    c->r.n = c->pos = c->runs = 0;
    c->plan = plan;
    c->eof = false;
    c->desc = plan & P_DESC;
    c->rowid = 0;
    c->cmax = INT64_MAX;
    int64_t doc = 0;
    int arg = 0;
    bool ok = true;
    if (plan & P_DOC)
        ok = arg < argc && ws_vt_eq_arg(argv[arg++], &doc);
    if (ok && (plan & P_CEQ))
        ok = arg < argc && ws_vt_eq_arg(argv[arg++], &c->ceq);
    if (ok && (plan & P_CMAX))
        ok = arg < argc && ws_vt_max_arg(argv[arg++], plan & P_CLT, &c->cmax);
    if (!ok) {
        c->eof = true;
        return SQLITE_OK;
    }
    static const char *const sqls[] = {
        "SELECT doc, first, data FROM edit_runs WHERE doc=?1 AND first<=?2 ORDER BY first DESC",
        "SELECT doc, first, data FROM edit_runs WHERE doc=?1 AND first<=?2 ORDER BY first",
        ("SELECT doc, first, data FROM edit_runs WHERE first>=?1 AND first<=?2 AND last>=?2 "
         "ORDER BY doc"),
        "SELECT doc, first, data FROM edit_runs ORDER BY doc, first",
    };
    int slot = (plan & P_DOC) ? (c->desc || (plan & P_CEQ) ? 0 : 1) : (plan & P_CEQ) ? 2 : 3;
    const char *sql = sqls[slot];
    int src =
        ws_vt_take(((ws_vt *)cur->pVtab)->db, &((ws_vt *)cur->pVtab)->stmts, slot, sql, &c->st);
    c->slot = slot;
    if (src != SQLITE_OK)
        return cursor_error(c, src);
    if (plan & P_DOC) {
        sqlite3_bind_int64(c->st, 1, doc);
        sqlite3_bind_int64(c->st, 2, (plan & P_CEQ) ? c->ceq : c->cmax);
    } else if (plan & P_CEQ) {
        sqlite3_bind_int64(c->st, 1,
                           c->ceq > INT64_MIN + RUN_SPAN ? c->ceq - RUN_SPAN + 1 : INT64_MIN);
        sqlite3_bind_int64(c->st, 2, c->ceq);
    }
    return settle(c);
}

static int ev_next(sqlite3_vtab_cursor *cur)
{
    ev_cursor *c = (ev_cursor *)cur;
    c->pos++;
    c->rowid++;
    return settle(c);
}

static int ev_eof(sqlite3_vtab_cursor *cur)
{
    return ((ev_cursor *)cur)->eof;
}

static void result_str(sqlite3_context *ctx, const run *r, int64_t off, size_t len)
{
    if (off < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_text(ctx, str_at(r, off), (int)len, SQLITE_TRANSIENT);
}

static int ev_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    ev_cursor *c = (ev_cursor *)cur;
    rec *e = current(c);
    switch (col) {
    case C_CHANGE:
        sqlite3_result_int64(ctx, e->change);
        break;
    case C_DOC:
        sqlite3_result_int64(ctx, c->r.doc);
        break;
    case C_WHAT:
        sqlite3_result_int64(ctx, e->what);
        break;
    case C_KIND:
        sqlite3_result_int64(ctx, e->kind);
        break;
    case C_PATH:
        result_str(ctx, &c->r, e->path, e->path_len);
        break;
    case C_OLD:
        result_str(ctx, &c->r, e->old_path, e->old_len);
        break;
    case C_INS:
        sqlite3_result_int64(ctx, e->ins);
        break;
    case C_DEL:
        sqlite3_result_int64(ctx, e->del);
        break;
    case C_OPSEQ:
        sqlite3_result_int64(ctx, e->opseq);
        break;
    case C_OPCOUNT:
        sqlite3_result_int64(ctx, e->opcount);
        break;
    case C_VERSION:
        if (version_text(&c->r, e))
            return SQLITE_NOMEM;
        result_str(ctx, &c->r, e->version, e->version_len);
        break;
    case C_BLOB:
        if (e->blob < 0)
            sqlite3_result_null(ctx);
        else
            sqlite3_result_blob(ctx, str_at(&c->r, e->blob), (int)e->blob_len, SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

static int ev_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    *out = ((ev_cursor *)cur)->rowid;
    return SQLITE_OK;
}

/* Eponymous only (no xCreate): `edits` exists in every connection that
 * registers it and in no schema, and it is read-only (no xUpdate). */
static const sqlite3_module edits_module = {
    .iVersion = 0,
    .xConnect = ev_connect,
    .xBestIndex = ev_best_index,
    .xDisconnect = ws_vt_disconnect,
    .xOpen = ev_open,
    .xClose = ev_close,
    .xFilter = ev_filter,
    .xNext = ev_next,
    .xEof = ev_eof,
    .xColumn = ev_column,
    .xRowid = ev_rowid,
};

int ws_edits_register(sqlite3 *db)
{
    return sqlite3_create_module(db, "edits", &edits_module, NULL);
}
