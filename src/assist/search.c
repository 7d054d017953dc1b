/*
 * search.c: the passages that answer a question. .kith/search.db is an
 * SQLite FTS5 table of passages (KITH_ASSIST_CHUNK_LINES lines each) of the
 * recorded text, plus a table of (path, size, hash) saying which text each
 * file's passages come from. Before a search every recorded file is
 * compared with it and only the files that changed are cut up again, in
 * one transaction; a file that is no longer recorded loses its passages.
 * The index is a cache: deleting it loses nothing. It lives apart from the
 * store so that searching never holds the store's write lock.
 */
#include <ctype.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assist/assist_int.h"
#include "kith/assist.h"
#include "util/util_int.h"

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

typedef struct ix_ctx {
    kith_ws *ws;
    sqlite3 *db;
    sqlite3_stmt *get, *del, *put, *chunk, *seen;
    int failed; /* an SQLite step failed */
} ix_ctx;

static int ix_step(ix_ctx *x, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        x->failed = 1;
    sqlite3_reset(st);
    return rc;
}

static int ix_file(const kith_ws_entry *e, void *vctx)
{
    ix_ctx *x = vctx;
    char *text = NULL;
    size_t len = 0;
    if (e->binary)
        return 0;
    if (kith_ws_cat(x->ws, e->path, NULL, &text, &len))
        return 0; /* unreadable now: left out of the index */
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a(text, len));
    sqlite3_bind_text(x->seen, 1, e->path, -1, SQLITE_TRANSIENT);
    ix_step(x, x->seen);
    sqlite3_bind_text(x->get, 1, e->path, -1, SQLITE_TRANSIENT);
    int same = 0;
    if (sqlite3_step(x->get) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(x->get, 1);
        same = sqlite3_column_int64(x->get, 0) == (sqlite3_int64)len && h && !strcmp(h, hash);
    }
    sqlite3_reset(x->get);
    if (same) {
        kith_free(text);
        return 0;
    }
    sqlite3_bind_text(x->del, 1, e->path, -1, SQLITE_TRANSIENT);
    ix_step(x, x->del);
    size_t off = 0;
    int line = 1;
    while (off < len) {
        size_t start = off;
        int l0 = line;
        for (int k = 0; k < KITH_ASSIST_CHUNK_LINES && off < len; k++) {
            const char *nl = memchr(text + off, '\n', len - off);
            off = nl ? (size_t)(nl - text) + 1 : len;
            line++;
        }
        sqlite3_bind_text(x->chunk, 1, text + start, (int)(off - start), SQLITE_TRANSIENT);
        sqlite3_bind_text(x->chunk, 2, e->path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(x->chunk, 3, l0);
        sqlite3_bind_int(x->chunk, 4, line - 1);
        ix_step(x, x->chunk);
    }
    sqlite3_bind_text(x->put, 1, e->path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(x->put, 2, (sqlite3_int64)len);
    sqlite3_bind_text(x->put, 3, hash, -1, SQLITE_TRANSIENT);
    ix_step(x, x->put);
    kith_free(text);
    return x->failed; /* stop the walk at the first failure */
}

/* Opens .kith/search.db and brings it up to date with the recorded text. */
static int ix_update(kith_ws *ws, sqlite3 **dbp, char *err, size_t errlen)
{
    char path[PATH_MAX];
    ix_ctx x = {.ws = ws};
    int rc = KITH_EIO;
    char *msg = NULL;
    snprintf(path, sizeof path, "%s/.kith/search.db", kith_ws_root(ws));
    if (sqlite3_open(path, &x.db) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open '%s': %s", path, sqlite3_errmsg(x.db));
        goto fail;
    }
    sqlite3_busy_timeout(x.db, 10000);
    static const char schema[] =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER, hash TEXT);"
        "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(body, path UNINDEXED, "
        "l0 UNINDEXED, l1 UNINDEXED, tokenize='unicode61');"
        "CREATE TEMP TABLE seen(path TEXT PRIMARY KEY);"
        "BEGIN IMMEDIATE;";
    if (sqlite3_exec(x.db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_prepare_v2(x.db, "SELECT size, hash FROM files WHERE path=?", -1, &x.get, NULL) ||
        sqlite3_prepare_v2(x.db, "DELETE FROM chunks WHERE path=?", -1, &x.del, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT OR REPLACE INTO files VALUES(?,?,?)", -1, &x.put, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT INTO chunks(body, path, l0, l1) VALUES(?,?,?,?)", -1,
                           &x.chunk, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT OR IGNORE INTO seen VALUES(?)", -1, &x.seen, NULL)) {
        snprintf(err, errlen, "search index: %s", msg ? msg : sqlite3_errmsg(x.db));
        goto fail;
    }
    int wrc = kith_ws_ls(ws, ix_file, &x);
    if (x.failed) {
        snprintf(err, errlen, "search index: %s", sqlite3_errmsg(x.db));
        goto fail;
    }
    if (wrc) {
        snprintf(err, errlen, "%s", kith_ws_errmsg(ws));
        rc = wrc;
        goto fail;
    }
    sqlite3_finalize(x.get);
    sqlite3_finalize(x.del);
    sqlite3_finalize(x.put);
    sqlite3_finalize(x.chunk);
    sqlite3_finalize(x.seen);
    x.get = x.del = x.put = x.chunk = x.seen = NULL;
    if (sqlite3_exec(x.db,
                     "DELETE FROM chunks WHERE path NOT IN (SELECT path FROM seen);"
                     "DELETE FROM files WHERE path NOT IN (SELECT path FROM seen);"
                     "COMMIT;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "search index: %s", msg ? msg : sqlite3_errmsg(x.db));
        goto fail;
    }
    *dbp = x.db;
    return KITH_OK;
fail:
    sqlite3_free(msg);
    sqlite3_finalize(x.get);
    sqlite3_finalize(x.del);
    sqlite3_finalize(x.put);
    sqlite3_finalize(x.chunk);
    sqlite3_finalize(x.seen);
    sqlite3_close(x.db); /* rolls back an open transaction */
    return rc;
}

/* An FTS5 query matching any word of @q (each quoted, so that no word is
 * read as an operator); NULL without a word of two characters or more. */
static char *fts_query(const char *q)
{
    as_buf b = {0};
    const char *p = q;
    while (*p) {
        while (*p && !(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        const char *w = p;
        while (*p && (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        if (p - w >= 2) {
            if (b.len)
                as_str(&b, " OR ");
            as_str(&b, "\"");
            as_add(&b, w, (size_t)(p - w));
            as_str(&b, "\"");
        }
    }
    if (!b.len && !b.oom)
        return NULL;
    return as_take(&b);
}

void kith_assist_sources_free(kith_assist_source *s, size_t n)
{
    for (size_t k = 0; s && k < n; k++) {
        kith_free(s[k].path);
        kith_free(s[k].text);
    }
    kith_free(s);
}

/* A passage's ranks for the fusion. */
typedef struct cand {
    sqlite3_int64 rowid;
    int bm25_rank; /* 1-based; 0: not among the BM25 matches */
    int cos_rank;  /* 1-based; 0: no vector */
    float cos;
    double score;
} cand;

static int cmp_cos(const void *a, const void *b)
{
    float x = ((const cand *)a)->cos, y = ((const cand *)b)->cos;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->rowid < y->rowid ? -1 : x->rowid > y->rowid;
}

#define RRF_K     60.0
#define BM25_POOL 64 /* BM25 matches that take part in the fusion */

/* Embeds @text into @v (@dim floats) with @c; a passage longer than the
 * context is cut until it fits. */
static int embed_text(kith_ctx *c, const char *text, float *v, size_t dim)
{
    size_t len = strlen(text);
    int rc = kith_embed(c, text, v, dim);
    while (rc == KITH_ERANGE && len > 64) {
        len = as_utf8_floor(text, len / 2);
        char *cut = kith_strndup(text, len);
        if (!cut)
            return KITH_ENOMEM;
        rc = kith_embed(c, cut, v, dim);
        kith_free(cut);
    }
    return rc;
}

/* Fills @cs[0..*nc) with every passage's ranks: BM25 for the matches of
 * @q, cosine for those with a vector (computing up to a batch of missing
 * ones, kept in the index), and the fused score. */
static int fuse(sqlite3 *db, const char *q, const char *question, kith_ctx *embed, size_t dim,
                const char *model, cand **csp, size_t *nc, char *err, size_t errlen)
{
    sqlite3_stmt *all = NULL, *bm = NULL, *get = NULL, *put = NULL;
    float *qv = NULL, *v = NULL;
    cand *cs = NULL;
    size_t n = 0, cap = 0;
    int rc = KITH_EIO, budget = KITH_ASSIST_EMBED_BATCH, erc;
    /* one transaction: the new vectors are written once, not one fsync each */
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS vecs(hash TEXT, model TEXT, vec BLOB, "
                     "PRIMARY KEY(hash, model)); BEGIN IMMEDIATE;",
                     NULL, NULL, NULL) ||
        sqlite3_prepare_v2(db, "SELECT rowid, body FROM chunks", -1, &all, NULL) ||
        sqlite3_prepare_v2(db,
                           "SELECT rowid FROM chunks WHERE chunks MATCH ? "
                           "ORDER BY bm25(chunks), path, l0 LIMIT ?",
                           -1, &bm, NULL) ||
        sqlite3_prepare_v2(db, "SELECT vec FROM vecs WHERE hash=? AND model=?", -1, &get, NULL) ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO vecs VALUES(?,?,?)", -1, &put, NULL)) {
        snprintf(err, errlen, "search index: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (!(qv = kith_malloc(dim * sizeof *qv)))
        goto oom;
    if ((erc = embed_text(embed, question, qv, dim))) {
        snprintf(err, errlen, "embedding the question: %s", kith_strerror(erc));
        rc = erc;
        goto out;
    }
    if (!(v = kith_malloc(dim * sizeof *v)))
        goto oom;
    while (sqlite3_step(all) == SQLITE_ROW) {
        const char *body = (const char *)sqlite3_column_text(all, 1);
        body = body ? body : "";
        if (n == cap) {
            void *p = cs;
            if (kith_grow(&p, &cap, n + 1, sizeof *cs))
                goto oom;
            cs = p;
        }
        cand *c = &cs[n++];
        memset(c, 0, sizeof *c);
        c->rowid = sqlite3_column_int64(all, 0);
        char hash[17];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a(body, strlen(body)));
        sqlite3_bind_text(get, 1, hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(get, 2, model, -1, SQLITE_TRANSIENT);
        int have = 0;
        if (sqlite3_step(get) == SQLITE_ROW &&
            (size_t)sqlite3_column_bytes(get, 0) == dim * sizeof *v) {
            memcpy(v, sqlite3_column_blob(get, 0), dim * sizeof *v);
            have = 1;
        }
        sqlite3_reset(get);
        if (!have && budget > 0 && *body) {
            budget--;
            if (embed_text(embed, body, v, dim) == 0) {
                have = 1;
                sqlite3_bind_text(put, 1, hash, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(put, 2, model, -1, SQLITE_TRANSIENT);
                sqlite3_bind_blob(put, 3, v, (int)(dim * sizeof *v), SQLITE_TRANSIENT);
                sqlite3_step(put); /* a cache: a failed write costs a later embedding */
                sqlite3_reset(put);
            }
        }
        if (have) {
            double dot = 0;
            for (size_t k = 0; k < dim; k++)
                dot += (double)qv[k] * v[k];
            c->cos = (float)dot;
            c->cos_rank = -1; /* set below */
        }
    }
    /* cosine ranks: sort by similarity, passages without a vector last */
    qsort(cs, n, sizeof *cs, cmp_cos);
    for (size_t k = 0, r = 1; k < n; k++)
        if (cs[k].cos_rank)
            cs[k].cos_rank = (int)r++;
    sqlite3_bind_text(bm, 1, q, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(bm, 2, BM25_POOL);
    for (int r = 1; sqlite3_step(bm) == SQLITE_ROW; r++) {
        sqlite3_int64 id = sqlite3_column_int64(bm, 0);
        for (size_t k = 0; k < n; k++)
            if (cs[k].rowid == id) {
                cs[k].bm25_rank = r;
                break;
            }
    }
    for (size_t k = 0; k < n; k++)
        cs[k].score = (cs[k].bm25_rank ? 1.0 / (RRF_K + cs[k].bm25_rank) : 0) +
                      (cs[k].cos_rank > 0 ? 1.0 / (RRF_K + cs[k].cos_rank) : 0);
    qsort(cs, n, sizeof *cs, cmp_score);
    *csp = cs;
    *nc = n;
    cs = NULL;
    rc = KITH_OK;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
    rc = KITH_ENOMEM;
out:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    kith_free(cs);
    kith_free(qv);
    kith_free(v);
    sqlite3_finalize(all);
    sqlite3_finalize(bm);
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    return rc;
}

int kith_assist_search(kith_ws *ws, const char *question, size_t max, kith_assist_source **out,
                       size_t *n, char *err, size_t errlen)
{
    return kith_assist_search_embed(ws, question, max, NULL, NULL, NULL, out, n, err, errlen);
}

int kith_assist_search_embed(kith_ws *ws, const char *question, size_t max, const kith_model *m,
                             kith_ctx *embed, const char *model, kith_assist_source **out,
                             size_t *n, char *err, size_t errlen)
{
    char dummy[8];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    kith_assist_source *src = NULL;
    cand *cs = NULL;
    size_t nh = 0, nc = 0, next = 0;
    int rc;
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    *n = 0;
    char *q = fts_query(question ? question : "");
    if (!q) {
        snprintf(err, errlen, "the question has no words to search for");
        return KITH_EINVAL;
    }
    if ((rc = ix_update(ws, &db, err, errlen)))
        goto out;
    struct kith_model_info in = {.size = sizeof in};
    if (embed && (!m || kith_model_info(m, &in) || in.n_embd <= 0)) {
        embed = NULL; /* no dimension to embed with: BM25 alone */
    }
    if (embed && (rc = fuse(db, q, question, embed, (size_t)in.n_embd, model ? model : "", &cs, &nc,
                            err, errlen)))
        goto out;
    rc = KITH_ENOMEM;
    if (max && !(src = kith_calloc(max, sizeof *src)))
        goto out;
    /* with embeddings, the fused order; else BM25's */
    const char *sql = embed ? "SELECT path, l0, l1, body FROM chunks WHERE rowid = ?"
                            : "SELECT path, l0, l1, body FROM chunks WHERE chunks MATCH ? "
                              "ORDER BY bm25(chunks), path, l0 LIMIT ?";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "search: %s", sqlite3_errmsg(db));
        rc = KITH_EIO;
        goto out;
    }
    if (!embed) {
        sqlite3_bind_text(st, 1, q, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    }
    while (nh < max) {
        if (embed) {
            if (next == nc || cs[next].score <= 0)
                break;
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, cs[next++].rowid);
        }
        if (sqlite3_step(st) != SQLITE_ROW)
            break;
        const char *p = (const char *)sqlite3_column_text(st, 0);
        const char *body = (const char *)sqlite3_column_text(st, 3);
        src[nh].path = kith_strndup(p ? p : "", p ? strlen(p) : 0);
        src[nh].text = kith_strndup(body ? body : "", body ? strlen(body) : 0);
        src[nh].first = sqlite3_column_int(st, 1);
        src[nh].last = sqlite3_column_int(st, 2);
        nh++;
        if (!src[nh - 1].path || !src[nh - 1].text)
            goto out;
    }
    *out = src;
    *n = nh;
    src = NULL;
    rc = KITH_OK;
out:
    if (rc == KITH_ENOMEM)
        snprintf(err, errlen, "out of memory");
    kith_assist_sources_free(src, nh);
    kith_free(cs);
    sqlite3_finalize(st);
    sqlite3_close(db);
    kith_free(q);
    return rc;
}
