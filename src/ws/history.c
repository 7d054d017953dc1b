/*
 * Looking at the past: version specs, log, ls, blame, cat, diff, and the
 * two kinds of restore (old content of a file, a deleted file). The store
 * keeps, per change and document, the document's CRDT version after the
 * change (edits.version): the text "at change C" is the CRDT's text at the
 * version of the last edit of that document at or before C, in the order
 * this replica recorded or received changes.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ws/textdiff.h"
#include "ws/ws_int.h"

/* ---- version specs --------------------------------------------------------------- */

static int unit_ms(const char *u, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"s", 1000},        {"sec", 1000},       {"secs", 1000},      {"second", 1000},
                 {"seconds", 1000},  {"m", 60000},        {"min", 60000},      {"mins", 60000},
                 {"minute", 60000},  {"minutes", 60000},  {"h", 3600000},      {"hour", 3600000},
                 {"hours", 3600000}, {"d", 86400000},     {"day", 86400000},   {"days", 86400000},
                 {"w", 604800000},   {"week", 604800000}, {"weeks", 604800000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(u, units[i].name)) {
            *ms = units[i].ms;
            return 0;
        }
    return -1;
}

/* "2h ago", "3 days ago", "yesterday", "now", ISO dates: ms since epoch. */
static bool parse_time(const char *s, int64_t *out)
{
    int64_t now = ws_now_ms();
    if (!strcmp(s, "now")) {
        *out = now;
        return true;
    }
    if (!strcmp(s, "yesterday")) {
        *out = now - 86400000;
        return true;
    }
    char unit[16];
    long long n;
    int used = 0;
    if (sscanf(s, "%lld%15[a-z] ago%n", &n, unit, &used) == 2 && used == (int)strlen(s)) {
        int64_t ms;
        if (unit_ms(unit, &ms) == 0 && n >= 0) {
            *out = now - n * ms;
            return true;
        }
    }
    used = 0; /* "2h", "30min": "ago" is implied */
    if (sscanf(s, "%lld%15[a-z]%n", &n, unit, &used) == 2 && used == (int)strlen(s)) {
        int64_t ms;
        if (unit_ms(unit, &ms) == 0 && n >= 0) {
            *out = now - n * ms;
            return true;
        }
    }
    used = 0;
    if (sscanf(s, "%lld %15[a-z] ago%n", &n, unit, &used) == 2 && used == (int)strlen(s)) {
        int64_t ms;
        if (unit_ms(unit, &ms) == 0 && n >= 0) {
            *out = now - n * ms;
            return true;
        }
    }
    struct tm tm = {0};
    int y, mo, d, h = 23, mi = 59, sec = 59;
    char rest[8] = "";
    int k = sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%7s", &y, &mo, &d, &h, &mi, &sec, rest);
    if (k < 3)
        return false;
    if (k == 3) { /* a bare date means the end of that day */
        h = 23;
        mi = sec = 59;
        if (strlen(s) != 10)
            return false;
    } else if (k == 4) {
        return false;
    } else if (k == 5) {
        /* "YYYY-MM-DDTHH:MM" possibly followed by Z */
        sec = 0;
        const char *z = strchr(s + 11, ':');
        if (z && z[3] == 'Z')
            rest[0] = 'Z';
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    time_t t = rest[0] == 'Z' ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (int64_t)t * 1000 + 999;
    return true;
}

static bool all_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
}

/* Resolves @spec to a changes.id (local order) and its hash. */
static int resolve(kith_ws *ws, const char *spec, int64_t *change, char hash[KITH_WS_ID_HEX + 1])
{
    sqlite3_stmt *st = NULL;
    int rc, src;
    size_t n = strlen(spec);
    if (n >= 4 && n <= KITH_WS_ID_HEX && all_hex(spec)) {
        /* Ids are hashes of (author, number), which the store does not
         * keep: every change's is computed and compared (~1 us each). */
        char want[KITH_WS_ID_HEX + 1];
        for (size_t i = 0; i <= n; i++)
            want[i] = (char)tolower((unsigned char)spec[i]);
        if ((rc = ws_prepare(ws, &st,
                             "SELECT c.id, kith_id(a.key, c.seq) FROM changes c JOIN "
                             "authors a ON a.id=c.author")))
            return rc;
        int found = 0;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 1);
            if (!id || strncmp(id, want, n))
                continue;
            *change = sqlite3_column_int64(st, 0);
            snprintf(hash, KITH_WS_ID_HEX + 1, "%s", id);
            found++;
        }
        rc = src == SQLITE_DONE ? KITH_OK : ws_sqlerr(ws, src, "reading changes");
        sqlite3_finalize(st);
        if (rc)
            return rc;
        if (found == 1)
            return KITH_OK;
        if (found > 1)
            return ws_error(ws, KITH_EINVAL, "%s: ambiguous change id; give more digits", spec);
    }
    int64_t t;
    if (!parse_time(spec, &t) && n >= 4 && n <= KITH_WS_ID_HEX && all_hex(spec))
        return ws_error(ws, KITH_ENOTFOUND, "%s: no such change", spec);
    if (!parse_time(spec, &t))
        return ws_error(ws, KITH_EINVAL,
                        "%s: not a change id, nor a time ('2h ago', '2026-11-27', "
                        "'2026-11-27T10:30')",
                        spec);
    if ((rc = ws_prepare(ws, &st,
                         "SELECT c.id, kith_id(a.key, c.seq) FROM changes c JOIN "
                         "authors a ON a.id=c.author WHERE c.time_ms <= ? "
                         "ORDER BY c.id DESC LIMIT 1")))
        return rc;
    sqlite3_bind_int64(st, 1, t);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *change = sqlite3_column_int64(st, 0);
        snprintf(hash, KITH_WS_ID_HEX + 1, "%s", (const char *)sqlite3_column_text(st, 1));
    } else if (src == SQLITE_DONE) {
        rc =
            ws_error(ws, KITH_ENOTFOUND, "%s: no change was recorded at or before that time", spec);
    } else {
        rc = ws_sqlerr(ws, src, "reading changes");
    }
    sqlite3_finalize(st);
    return rc;
}

int kith_ws_resolve(kith_ws *ws, const char *spec, char id[KITH_WS_ID_HEX + 1])
{
    int64_t c;
    ws->err[0] = 0;
    return resolve(ws, spec, &c, id);
}

/* ---- documents by path ----------------------------------------------------------- */

static int find_doc(kith_ws *ws, const char *arg, ws_doc **out)
{
    char *rel = NULL;
    int rc = ws_path_check(ws, arg, &rel);
    if (!rc)
        rc = ws_docs_load(ws);
    if (rc) {
        kith_free(rel);
        return rc;
    }
    ws_doc *d = ws_doc_by_path(ws, rel);
    if (!d)
        d = ws_doc_deleted_by_path(ws, rel);
    if (!d)
        rc = ws_error(ws, KITH_ENOTFOUND, "%s: not in the workspace's history", arg);
    kith_free(rel);
    *out = d;
    return rc;
}

/* Content of @d as recorded now (the last content if deleted). */
static int content_now(kith_ws *ws, ws_doc *d, char **out, size_t *len)
{
    if (d->kind == WS_BINARY)
        return ws_blob_get(ws, d->blob, out, len);
    kith_doc *doc = NULL;
    int rc = ws_doc_crdt(ws, d, &doc);
    return rc ? rc : kith_doc_text(doc, out, len);
}

/* Content of @d after change @change (local order). */
static int content_at(kith_ws *ws, ws_doc *d, int64_t change, const char *spec, char **out,
                      size_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT what, kind, version, blob FROM edits WHERE doc=? AND "
                        "change<=? ORDER BY change DESC LIMIT 1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, change);
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = ws_error(ws, KITH_ENOTFOUND, "%s did not exist at %s", d->path, spec);
    } else if (src != SQLITE_ROW) {
        rc = ws_sqlerr(ws, src, "reading history");
    } else if (sqlite3_column_int(st, 0) == KITH_WS_DELETED) {
        rc = ws_error(ws, KITH_ENOTFOUND, "%s was deleted at %s", d->path, spec);
    } else if (sqlite3_column_int(st, 1) == WS_BINARY) {
        uint8_t h[32];
        if (sqlite3_column_bytes(st, 3) != 32)
            rc = ws_error(ws, KITH_ECORRUPT, "%s: a file version is missing", d->path);
        else {
            memcpy(h, sqlite3_column_blob(st, 3), 32);
            rc = ws_blob_get(ws, h, out, len);
        }
    } else {
        const char *v = (const char *)sqlite3_column_text(st, 2);
        kith_doc *doc = NULL;
        kith_id *ids = NULL;
        size_t n = 0;
        rc = ws_doc_crdt(ws, d, &doc);
        if (!rc)
            rc = ws_version_ids(ws, doc, v, &ids, &n);
        if (!rc && (rc = kith_doc_text_at(doc, ids, n, out, len)))
            rc = ws_error(ws, rc, "%s: %s", d->path, kith_doc_errmsg(doc));
        kith_free(ids);
    }
    sqlite3_finalize(st);
    return rc;
}

static int content_spec(kith_ws *ws, ws_doc *d, const char *at, char **out, size_t *len)
{
    if (!at)
        return content_now(ws, d, out, len);
    int64_t c;
    char hash[KITH_WS_ID_HEX + 1];
    int rc = resolve(ws, at, &c, hash);
    return rc ? rc : content_at(ws, d, c, at, out, len);
}

int kith_ws_cat(kith_ws *ws, const char *path, const char *at, char **out, size_t *len)
{
    ws_doc *d = NULL;
    *out = NULL;
    *len = 0;
    ws->err[0] = 0;
    int rc = find_doc(ws, path, &d);
    return rc ? rc : content_spec(ws, d, at, out, len);
}

int kith_ws_diff(kith_ws *ws, const char *path, const char *from, const char *to, bool color,
                 char **out, size_t *len)
{
    ws_doc *d = NULL;
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    *out = NULL;
    *len = 0;
    ws->err[0] = 0;
    int rc = find_doc(ws, path, &d);
    if (!rc)
        rc = content_spec(ws, d, from, &a, &alen);
    if (!rc && to) {
        rc = content_spec(ws, d, to, &b, &blen);
    } else if (!rc) {
        rc = ws_read_file(ws, d->path, &b, &blen, NULL);
        if (rc == KITH_ENOTFOUND) { /* deleted in the folder: diff to nothing */
            rc = KITH_OK;
            b = NULL;
            blen = 0;
        }
    }
    if (!rc &&
        (d->kind == WS_BINARY || !ws_looks_text(a, alen) || !ws_looks_text(b ? b : "", blen))) {
        bool same = alen == blen && (!alen || !memcmp(a, b, alen));
        char msg[PATH_MAX];
        int n = same ? 0
                     : snprintf(msg, sizeof msg, "Binary files a/%s and b/%s differ\n", d->path,
                                d->path);
        *out = kith_strndup(msg, (size_t)n);
        *len = (size_t)n;
        rc = *out ? KITH_OK : KITH_ENOMEM;
    } else if (!rc) {
        char la[PATH_MAX + 64], lb[PATH_MAX + 64];
        snprintf(la, sizeof la, "a/%s", d->path);
        snprintf(lb, sizeof lb, "b/%s", d->path);
        rc = ws_unified_diff(a, alen, b ? b : "", blen, la, lb, 3, color, out, len);
    }
    kith_free(a);
    kith_free(b);
    return rc;
}

/* ---- log and ls ------------------------------------------------------------------ */

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static void strvec_clear(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        kith_free(s->v[i]);
    s->n = 0;
}

static int strvec_push(strvec *s, const char *str)
{
    if (kith_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v))
        return KITH_ENOMEM;
    if (!(s->v[s->n] = kith_strndup(str, strlen(str))))
        return KITH_ENOMEM;
    s->n++;
    return KITH_OK;
}

/* The files change @change touched (notes counted apart: they are not
 * files) and the code points it inserted and deleted in them. */
static int change_files(kith_ws *ws, sqlite3_stmt *st, int64_t change, strvec *paths,
                        kith_ws_change *c)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, change);
    strvec_clear(paths);
    uint64_t *ins = &c->inserted, *del = &c->deleted;
    *ins = *del = 0;
    int src, rc = KITH_OK;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 3) == WS_NOTE) {
            c->nnotes++;
            continue;
        }
        rc = strvec_push(paths, (const char *)sqlite3_column_text(st, 0));
        *ins += (uint64_t)sqlite3_column_int64(st, 1);
        *del += (uint64_t)sqlite3_column_int64(st, 2);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    return rc;
}

int kith_ws_log(kith_ws *ws, const char *path, size_t limit,
                int (*cb)(const kith_ws_change *c, void *ctx), void *ctx)
{
    ws_doc *d = NULL;
    ws->err[0] = 0;
    int rc = path ? find_doc(ws, path, &d) : KITH_OK;
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL, *files = NULL;
    rc = ws_prepare(ws, &st,
                    d ? "SELECT c.id, kith_id(a.key, c.seq), c.time_ms, a.name, hex(a.key), c.via "
                        "FROM changes c "
                        "JOIN authors a ON a.id=c.author WHERE c.id IN (SELECT change FROM edits "
                        "WHERE doc=?1) ORDER BY c.id DESC LIMIT ?2"
                      : "SELECT c.id, kith_id(a.key, c.seq), c.time_ms, a.name, hex(a.key), c.via "
                        "FROM changes c "
                        "JOIN authors a ON a.id=c.author ORDER BY c.id DESC LIMIT ?2");
    if (!rc)
        rc = ws_prepare(ws, &files,
                        "SELECT path, ins, del, kind FROM edits WHERE change=? ORDER BY path");
    if (rc) {
        sqlite3_finalize(st);
        return rc;
    }
    if (d)
        sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    strvec paths = {0};
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        kith_ws_change c = {0};
        char dev[65];
        snprintf(dev, sizeof dev, "%s", (const char *)sqlite3_column_text(st, 4));
        for (char *p = dev; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        c.id = (const char *)sqlite3_column_text(st, 1);
        c.time_ms = sqlite3_column_int64(st, 2);
        c.author = (const char *)sqlite3_column_text(st, 3);
        c.device = dev;
        c.via = (const char *)sqlite3_column_text(st, 5);
        if ((rc = change_files(ws, files, sqlite3_column_int64(st, 0), &paths, &c)))
            break;
        c.npaths = paths.n;
        c.paths = (const char *const *)paths.v;
        if (cb(&c, ctx))
            break;
    }
    if (!rc && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    strvec_clear(&paths);
    kith_free(paths.v);
    sqlite3_finalize(st);
    sqlite3_finalize(files);
    return rc;
}

static int cmp_docpath(const void *a, const void *b)
{
    return strcmp((*(ws_doc *const *)a)->path, (*(ws_doc *const *)b)->path);
}

int kith_ws_ls(kith_ws *ws, int (*cb)(const kith_ws_entry *e, void *ctx), void *ctx)
{
    ws->err[0] = 0;
    int rc = ws_docs_load(ws);
    if (rc)
        return rc;
    ws_doc **live = kith_malloc((ws->ndocs + 1) * sizeof *live);
    if (!live)
        return KITH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < ws->ndocs; i++)
        if (!ws->docs[i]->deleted && ws->docs[i]->kind != WS_NOTE)
            live[n++] = ws->docs[i];
    qsort(live, n, sizeof *live, cmp_docpath);
    sqlite3_stmt *st = NULL;
    rc =
        ws_prepare(ws, &st,
                   "SELECT kith_id(a.key, c.seq), a.name, c.time_ms FROM edits e JOIN changes c ON "
                   "c.id=e.change JOIN authors a ON a.id=c.author WHERE e.doc=? "
                   "ORDER BY e.change DESC LIMIT 1");
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, live[i]->id);
        int src = sqlite3_step(st);
        if (src != SQLITE_ROW && src != SQLITE_DONE) {
            rc = ws_sqlerr(ws, src, "reading history");
            break;
        }
        kith_ws_entry e = {live[i]->path,
                           live[i]->kind == WS_BINARY,
                           (uint64_t)live[i]->size,
                           src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "",
                           src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 1) : "",
                           src == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0};
        if (cb(&e, ctx))
            break;
    }
    sqlite3_finalize(st);
    kith_free(live);
    return rc;
}

/* ---- blame ------------------------------------------------------------------------- */

typedef struct who {
    kith_agent agent;
    uint64_t seq;
    char change[KITH_WS_ID_HEX + 1];
    char author[128];
} who;

/* Which change made which CRDT operations of a document: its edits that
 * added any, by first operation. Read once per blame, since a document's
 * edits are read by decoding its runs (runs.c). */
typedef struct made {
    int64_t opseq, change;
    char agent[33];
} made;

static int cmp_made(const void *a, const void *b)
{
    const made *x = a, *y = b;
    return x->opseq < y->opseq ? -1 : x->opseq > y->opseq;
}

static int load_made(kith_ws *ws, ws_doc *d, made **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc = ws_prepare(ws, &st,
                        "SELECT e.opseq, e.change, lower(substr(hex(a.key), 1, 32)) FROM edits e "
                        "JOIN changes c ON c.id=e.change JOIN authors a ON a.id=c.author "
                        "WHERE e.doc=? AND e.opcount>0");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (kith_grow((void **)out, &cap, *n + 1, sizeof **out)) {
            rc = KITH_ENOMEM;
            break;
        }
        made *m = &(*out)[(*n)++];
        m->opseq = sqlite3_column_int64(st, 0);
        m->change = sqlite3_column_int64(st, 1);
        snprintf(m->agent, sizeof m->agent, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    sqlite3_finalize(st);
    if (!rc)
        qsort(*out, *n, sizeof **out, cmp_made);
    return rc;
}

/* The change (and its author) that made CRDT change @id. */
static int who_made(kith_ws *ws, const made *m, size_t nm, kith_doc *doc, kith_id id, who *w)
{
    w->agent = id.agent;
    w->seq = id.seq;
    snprintf(w->change, sizeof w->change, "?");
    const char *agent = kith_doc_agent_name(doc, id.agent);
    snprintf(w->author, sizeof w->author, "%s", agent);
    size_t lo = 0, hi = nm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m[mid].opseq < (int64_t)id.seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < nm && m[lo].opseq == (int64_t)id.seq; lo++)
        if (!strcmp(m[lo].agent, agent))
            break;
    if (lo == nm || m[lo].opseq != (int64_t)id.seq)
        return KITH_OK;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT kith_id(a.key, c.seq), a.name FROM changes c JOIN authors a ON "
                        "a.id=c.author WHERE c.id=?");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, m[lo].change);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        snprintf(w->change, sizeof w->change, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(w->author, sizeof w->author, "%s", (const char *)sqlite3_column_text(st, 1));
    } else if (src != SQLITE_DONE) {
        rc = ws_sqlerr(ws, src, "reading history");
    }
    sqlite3_finalize(st);
    return rc;
}

static int blame_lines(kith_ws *ws, ws_doc *d, kith_doc *doc, const char *text, size_t len,
                       const kith_blame *spans, size_t nspans,
                       int (*cb)(const kith_ws_blame_line *l, void *ctx), void *ctx)
{
    who *cache = NULL;
    size_t ncache = 0, capcache = 0, si = 0, cp = 0, line = 1, nmade = 0;
    made *byop = NULL;
    int rc = load_made(ws, d, &byop, &nmade);
    for (size_t off = 0; off < len && !rc;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len;
        long ncp = kith_utf8_count(text + off, end - off);
        size_t line_cp = (size_t)(ncp < 0 ? 0 : ncp), last = line_cp + (nl ? 1 : 0);
        /* The most recent span among those covering this line's code
         * points (its newline only when the line is empty). */
        size_t lo = cp, hi = cp + (line_cp ? line_cp : last);
        const kith_blame *best = NULL;
        while (si < nspans && spans[si].pos + spans[si].len <= lo)
            si++;
        for (size_t k = si; k < nspans && spans[k].pos < hi; k++)
            if (!best || spans[k].time_ms >= best->time_ms)
                best = &spans[k];
        kith_ws_blame_line bl = {line, text + off, end - off, "", "", 0, NULL};
        if (best) {
            size_t c;
            for (c = 0; c < ncache; c++)
                if (cache[c].agent == best->change.agent && cache[c].seq == best->change.seq)
                    break;
            if (c == ncache) {
                if (kith_grow((void **)&cache, &capcache, ncache + 1, sizeof *cache)) {
                    rc = KITH_ENOMEM;
                    break;
                }
                if ((rc = who_made(ws, byop, nmade, doc, best->change, &cache[ncache])))
                    break;
                ncache++;
            }
            bl.change = cache[c].change;
            bl.author = cache[c].author;
            bl.time_ms = best->time_ms;
            bl.via = best->via;
        }
        if (cb(&bl, ctx))
            break;
        cp += last;
        off = nl ? end + 1 : len;
        line++;
    }
    kith_free(cache);
    kith_free(byop);
    return rc;
}

int kith_ws_blame(kith_ws *ws, const char *path, const char *at,
                  int (*cb)(const kith_ws_blame_line *l, void *ctx), void *ctx)
{
    ws_doc *d = NULL;
    kith_doc *doc = NULL;
    kith_id *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;
    kith_blame *spans = NULL;
    size_t nspans = 0;
    ws->err[0] = 0;
    int rc = find_doc(ws, path, &d);
    if (!rc && d->kind == WS_BINARY)
        rc = ws_error(ws, KITH_EUNSUPPORTED, "%s: a binary file has no lines to blame", path);
    if (!rc)
        rc = ws_doc_crdt(ws, d, &doc);
    if (!rc && at) {
        /* The version recorded by the last edit at or before @at. */
        int64_t c;
        char hash[KITH_WS_ID_HEX + 1];
        sqlite3_stmt *st = NULL;
        if (!(rc = resolve(ws, at, &c, hash)) &&
            !(rc = ws_prepare(ws, &st,
                              "SELECT version FROM edits WHERE doc=? AND change<=? "
                              "ORDER BY change DESC LIMIT 1"))) {
            sqlite3_bind_int64(st, 1, d->id);
            sqlite3_bind_int64(st, 2, c);
            if (sqlite3_step(st) != SQLITE_ROW)
                rc = ws_error(ws, KITH_ENOTFOUND, "%s did not exist at %s", path, at);
            else
                rc = ws_version_ids(ws, doc, (const char *)sqlite3_column_text(st, 0), &ids, &n);
            sqlite3_finalize(st);
        }
    }
    if (!rc)
        rc = at ? kith_doc_text_at(doc, ids, n, &text, &len) : kith_doc_text(doc, &text, &len);
    if (!rc)
        rc = kith_doc_blame(doc, at ? ids : NULL, n, &spans, &nspans);
    if (!rc)
        rc = blame_lines(ws, d, doc, text, len, spans, nspans, cb, ctx);
    kith_free(ids);
    kith_free(text);
    kith_free(spans);
    return rc;
}

/* ---- restore -------------------------------------------------------------------------- */

/* Writes @data as the file of the document @uuid (brought back to life if
 * deleted) and records it as a change. The document is looked up again
 * inside the transaction: another process may have written meanwhile. */
static int write_and_record(kith_ws *ws, const uint8_t uuid[16], const char *data, size_t len,
                            int what, kith_ws_result *res)
{
    struct stat st;
    ws_change *c = NULL;
    ws_doc *d = NULL;
    int rc = ws_begin(ws);
    if (rc)
        return rc;
    rc = ws_docs_load(ws);
    if (!rc && !(d = ws_doc_by_uuid(ws, uuid)))
        rc = ws_error(ws, KITH_ENOTFOUND, "the document vanished from the store");
    if (!rc && d->deleted) {
        if (ws_doc_by_path(ws, d->path))
            rc = ws_error(ws, KITH_EEXIST, "%s exists; move it away first", d->path);
        else
            rc = ws_doc_set_path(ws, d, d->path, false);
    }
    if (!rc)
        rc = ws_change_begin(ws, &c, NULL);
    if (!rc)
        rc = ws_write_file(ws, d->path, data, len, &st);
    if (!rc) {
        d->size = (int64_t)st.st_size;
        d->mtime_ns = 0; /* just written: let the next scan look again */
        d->ino = (int64_t)st.st_ino;
        d->dev = (int64_t)st.st_dev;
        if (d->kind == WS_BINARY)
            rc = ws_change_binary(c, d, what, NULL, (const uint8_t *)data, len);
        else
            rc = ws_change_text(c, d, what, NULL, data, len);
    }
    if (!rc)
        rc = ws_change_finish(c, NULL, NULL, res);
    ws_change_free(c);
    if (rc) {
        ws_rollback(ws);
        ws_docs_forget_crdt(ws);
    }
    return rc;
}

/* Records what is pending in the folder first: a restore never loses an
 * edit the user saved but kith had not seen yet. */
static int scan_first(kith_ws *ws)
{
    kith_ws_result r;
    return kith_ws_scan(ws, NULL, NULL, &r);
}

int kith_ws_restore(kith_ws *ws, const char *path, const char *at, kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    char *data = NULL, *rel = NULL;
    size_t len = 0;
    ws_doc *d = NULL;
    int rc = scan_first(ws);
    if (!rc)
        rc = find_doc(ws, path, &d);
    if (!rc)
        rc = content_spec(ws, d, at, &data, &len);
    if (!rc) {
        uint8_t uuid[16];
        memcpy(uuid, d->uuid, 16);
        rc = write_and_record(ws, uuid, data, len, KITH_WS_RESTORED, res);
    }
    kith_free(data);
    kith_free(rel);
    return rc;
}

int kith_ws_restore_deleted(kith_ws *ws, const char *path, kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    char *rel = NULL, *data = NULL;
    size_t len = 0;
    int rc = scan_first(ws);
    if (!rc)
        rc = ws_path_check(ws, path, &rel);
    if (!rc)
        rc = ws_docs_load(ws);
    ws_doc *d = NULL;
    if (!rc) {
        if (ws_doc_by_path(ws, rel))
            rc = ws_error(ws, KITH_EEXIST, "%s exists; it is not deleted", path);
        else if (!(d = ws_doc_deleted_by_path(ws, rel)))
            rc = ws_error(ws, KITH_ENOTFOUND, "%s: no deleted file by that name", path);
    }
    if (!rc)
        rc = content_now(ws, d, &data, &len);
    if (!rc) {
        uint8_t uuid[16];
        memcpy(uuid, d->uuid, 16);
        rc = write_and_record(ws, uuid, data, len, KITH_WS_RESTORED, res);
    }
    kith_free(rel);
    kith_free(data);
    return rc;
}

/* ---- check -------------------------------------------------------------------------- */

static int integrity(kith_ws *ws)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "PRAGMA integrity_check");
    if (rc)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok"))
        rc = ws_error(ws, KITH_ECORRUPT, "store integrity check: %s",
                      (const char *)sqlite3_column_text(st, 0));
    else if (src != SQLITE_ROW)
        rc = ws_sqlerr(ws, src, "store integrity check");
    sqlite3_finalize(st);
    return rc;
}

/* Every version recorded for @d reads back from its history. */
static int check_versions(kith_ws *ws, ws_doc *d, kith_doc *doc)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT version FROM edits WHERE doc=? AND version IS NOT NULL");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        kith_id *ids = NULL;
        size_t n = 0;
        char *text = NULL;
        size_t len = 0;
        if (ws_version_ids(ws, doc, (const char *)sqlite3_column_text(st, 0), &ids, &n) ||
            kith_doc_text_at(doc, ids, n, &text, &len))
            rc = ws_error(ws, KITH_ECORRUPT, "%s: recorded version %s does not read back (%s)",
                          d->path, (const char *)sqlite3_column_text(st, 0), kith_doc_errmsg(doc));
        kith_free(ids);
        kith_free(text);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    sqlite3_finalize(st);
    return rc;
}

int kith_ws_check(kith_ws *ws)
{
    ws->err[0] = 0;
    int rc = integrity(ws);
    if (!rc)
        rc = ws_docs_load(ws);
    for (size_t i = 0; !rc && i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        kith_doc *doc = NULL;
        char *text = NULL;
        size_t len = 0;
        if (d->kind == WS_BINARY) {
            rc = ws_blob_get(ws, d->blob, &text, &len);
        } else if (!(rc = ws_doc_crdt(ws, d, &doc)) && !(rc = kith_doc_text(doc, &text, &len))) {
            rc = check_versions(ws, d, doc);
        }
        kith_free(text);
    }
    return rc;
}
