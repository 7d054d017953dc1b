/*
 * Exchange between replicas of one workspace: kith_ws_export encodes what a
 * replica holds (authors, changes with their per-file edits, documents with
 * their whole CRDT history, whole-file versions), kith_ws_import merges such
 * an encoding (docs/FORMAT.md, "Workspace export"). Everything a peer sends
 * is validated before the store is touched: paths may not leave the folder,
 * hashes must match their content, CRDT encodings are checked by
 * kith_doc_apply. Files are written through a journal (the writes table):
 * temporary files are made and fsync'd before the transaction commits, and
 * renamed into place after it, so a crash leaves either the old state or
 * one that the next scan completes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "ws/bytes.h"
#include "ws/change1.h"
#include "ws/ws_int.h"

static const uint8_t magic[8] = {'K', 'I', 'T', 'H', 'W', 'X', '1', 0};

/* ---- writing ---------------------------------------------------------------------- */

static void wb_str(ws_wbuf *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    ws_wb_var(w, n);
    ws_wb_bytes(w, s, n);
}

/* NULL and "" differ: NULL is 0, a string is its length + 1. */
static void wb_optstr(ws_wbuf *w, const char *s)
{
    if (!s) {
        ws_wb_var(w, 0);
        return;
    }
    ws_wb_var(w, strlen(s) + 1);
    ws_wb_bytes(w, s, strlen(s));
}

static void wb_optblob(ws_wbuf *w, const void *p, size_t n)
{
    ws_wb_var(w, p ? 1 : 0);
    if (p)
        ws_wb_bytes(w, p, n);
}

static int export_authors(kith_ws *ws, ws_wbuf *w, int64_t **ids, size_t *nids)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT id, key, name FROM authors ORDER BY id");
    if (rc)
        return rc;
    size_t n = 0, cap = 0;
    ws_wbuf body = {0};
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (kith_grow((void **)ids, &cap, n + 1, sizeof **ids)) {
            rc = KITH_ENOMEM;
            break;
        }
        (*ids)[n++] = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) != 32) {
            rc = ws_error(ws, KITH_ECORRUPT, "an author's key is malformed in the store");
            break;
        }
        ws_wb_bytes(&body, sqlite3_column_blob(st, 1), 32);
        wb_str(&body, (const char *)sqlite3_column_text(st, 2));
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading authors");
    sqlite3_finalize(st);
    ws_wb_var(w, n);
    ws_wb_bytes(w, body.p, body.n);
    kith_free(body.p);
    *nids = n;
    return rc ? rc : body.err ? body.err : w->err;
}

static uint64_t author_index(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return i;
    return 0;
}

/* Writes the edit record of the current row of @ed (columns: uuid, what,
 * kind, path, old_path, ins, del, opseq, opcount, version, blob), the same
 * in exports and change payloads; versions go out in their full form. */
static int write_edit(kith_ws *ws, sqlite3_stmt *ed, ws_wbuf *w)
{
    ws_wb_bytes(w, sqlite3_column_blob(ed, 0), 16);
    ws_wb_var(w, (uint64_t)sqlite3_column_int(ed, 1));
    ws_wb_var(w, (uint64_t)sqlite3_column_int(ed, 2));
    wb_str(w, (const char *)sqlite3_column_text(ed, 3));
    wb_optstr(w, (const char *)sqlite3_column_text(ed, 4));
    for (int k = 5; k <= 8; k++)
        ws_wb_var(w, (uint64_t)sqlite3_column_int64(ed, k));
    char *full = NULL;
    int rc = sqlite3_column_text(ed, 9)
                 ? ws_version_from_db(ws, (const char *)sqlite3_column_text(ed, 9), &full)
                 : KITH_OK;
    if (rc)
        return rc;
    wb_optstr(w, full);
    kith_free(full);
    wb_optblob(w, sqlite3_column_bytes(ed, 10) == 32 ? sqlite3_column_blob(ed, 10) : NULL, 32);
    return w->err;
}

static int export_changes(kith_ws *ws, ws_wbuf *w, const int64_t *ids, size_t nids)
{
    sqlite3_stmt *st = NULL, *ed = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT id, author, seq, time_ms, lamport, via FROM changes "
                        "ORDER BY id");
    if (!rc)
        rc = ws_prepare(ws, &ed,
                        "SELECT d.uuid, e.what, e.kind, e.path, e.old_path, e.ins, e.del, "
                        "e.opseq, e.opcount, e.version, e.blob FROM edits e JOIN docs d ON "
                        "d.id=e.doc WHERE e.change=? ORDER BY e.doc");
    if (rc) {
        sqlite3_finalize(st);
        return rc;
    }
    ws_wbuf body = {0};
    uint64_t n = 0;
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        ws_wb_var(&body, author_index(ids, nids, sqlite3_column_int64(st, 1)));
        ws_wb_var(&body, (uint64_t)sqlite3_column_int64(st, 2));
        ws_wb_var(&body, kith_zigzag(sqlite3_column_int64(st, 3)));
        ws_wb_var(&body, (uint64_t)sqlite3_column_int64(st, 4));
        wb_optstr(&body, (const char *)sqlite3_column_text(st, 5));
        sqlite3_reset(ed);
        sqlite3_bind_int64(ed, 1, sqlite3_column_int64(st, 0));
        ws_wbuf edits = {0};
        uint64_t ne = 0;
        int esrc = SQLITE_DONE;
        while (!rc && (esrc = sqlite3_step(ed)) == SQLITE_ROW) {
            ne++;
            rc = write_edit(ws, ed, &edits);
        }
        if (!rc && esrc != SQLITE_DONE)
            rc = ws_sqlerr(ws, esrc, "reading history");
        ws_wb_var(&body, ne);
        ws_wb_bytes(&body, edits.p, edits.n);
        if (edits.err)
            rc = edits.err;
        kith_free(edits.p);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    sqlite3_finalize(st);
    sqlite3_finalize(ed);
    ws_wb_var(w, n);
    ws_wb_bytes(w, body.p, body.n);
    kith_free(body.p);
    return rc ? rc : body.err ? body.err : w->err;
}

static int export_docs(kith_ws *ws, ws_wbuf *w, const int64_t *ids, size_t nids)
{
    static const uint8_t zero[32];
    ws_wb_var(w, ws->ndocs);
    for (size_t i = 0; i < ws->ndocs && !w->err; i++) {
        ws_doc *d = ws->docs[i];
        ws_wb_bytes(w, d->uuid, 16);
        ws_wb_var(w, (uint64_t)d->kind);
        wb_str(w, d->path);
        ws_wb_var(w, d->deleted);
        ws_wb_var(w, (uint64_t)d->lamport);
        ws_wb_var(w, author_index(ids, nids, d->lamport_author));
        ws_wb_var(w, (uint64_t)d->path_lamport);
        ws_wb_var(w, author_index(ids, nids, d->path_author));
        wb_optblob(w, memcmp(d->blob, zero, 32) ? d->blob : NULL, 32);
        kith_doc *doc = NULL;
        uint8_t *enc = NULL;
        size_t len = 0;
        int rc = ws_doc_crdt(ws, d, &doc);
        if (!rc)
            rc = kith_doc_encode(doc, &enc, &len);
        if (rc)
            return rc;
        ws_wb_var(w, len);
        ws_wb_bytes(w, enc, len);
        kith_free(enc);
    }
    return w->err;
}

static int export_blobs(kith_ws *ws, ws_wbuf *w)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT hash, data FROM blobs");
    if (rc)
        return rc;
    ws_wbuf body = {0};
    uint64_t n = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        ws_wb_bytes(&body, sqlite3_column_blob(st, 0), 32);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        ws_wb_var(&body, len);
        ws_wb_bytes(&body, sqlite3_column_blob(st, 1), len);
    }
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading file versions");
    sqlite3_finalize(st);
    ws_wb_var(w, n);
    ws_wb_bytes(w, body.p, body.n);
    kith_free(body.p);
    return rc ? rc : body.err ? body.err : w->err;
}

/* Compresses the body of an export (everything after the workspace id) into
 * a version-1 export: the id stays readable (kith_ws_join needs it first). */
static int compress_export(const ws_wbuf *plain, size_t body_off, ws_wbuf *out)
{
    size_t raw = plain->n - body_off;
    size_t bound = ZSTD_compressBound(raw);
    uint8_t *z = kith_malloc(bound ? bound : 1);
    if (!z)
        return KITH_ENOMEM;
    size_t zn = ZSTD_compress(z, bound, plain->p + body_off, raw, 9);
    if (ZSTD_isError(zn)) {
        kith_free(z);
        return KITH_ENOMEM;
    }
    ws_wb_bytes(out, plain->p, body_off);
    out->p[7] = 1;
    ws_wb_var(out, raw);
    ws_wb_bytes(out, z, zn);
    kith_free(z);
    return out->err;
}

int kith_ws_export(kith_ws *ws, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    ws->err[0] = 0;
    ws_wbuf w = {0}, packed = {0};
    int64_t *ids = NULL;
    size_t nids = 0;
    /* A read transaction: one consistent snapshot of the store. */
    int rc = sqlite3_exec(ws->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
                 ? KITH_OK
                 : ws_sqlerr(ws, sqlite3_errcode(ws->db), "store");
    if (rc)
        return rc;
    rc = ws_docs_load(ws);
    ws_wb_bytes(&w, magic, sizeof magic);
    wb_str(&w, ws->wsid);
    size_t body_off = w.n;
    if (!rc)
        rc = export_authors(ws, &w, &ids, &nids);
    if (!rc)
        rc = export_changes(ws, &w, ids, nids);
    if (!rc)
        rc = export_docs(ws, &w, ids, nids);
    if (!rc)
        rc = export_blobs(ws, &w);
    ws_rollback(ws);
    kith_free(ids);
    if (!rc)
        rc = w.err ? w.err : compress_export(&w, body_off, &packed);
    kith_free(w.p);
    if (!rc) {
        uint8_t sum[16];
        crypto_generichash(sum, sizeof sum, packed.p, packed.n, NULL, 0);
        ws_wb_bytes(&packed, sum, sizeof sum);
        rc = packed.err;
    }
    if (rc) {
        kith_free(packed.p);
        return rc;
    }
    *out = packed.p;
    *len = packed.n;
    return KITH_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

/* A counted string copied out (NUL-terminated); NULL on error. */
static char *rb_str(ws_rbuf *r, size_t max)
{
    size_t n = (size_t)ws_rb_var(r, max);
    const uint8_t *p = ws_rb_bytes(r, n);
    if (!p)
        return NULL;
    if (memchr(p, 0, n) || kith_utf8_count((const char *)p, n) < 0) {
        r->err = true;
        return NULL;
    }
    char *s = kith_strndup((const char *)p, n);
    if (!s)
        r->err = true;
    return s;
}

static char *rb_optstr(ws_rbuf *r, size_t max, bool *present)
{
    size_t n = (size_t)ws_rb_var(r, max + 1);
    *present = n > 0;
    if (!n || r->err)
        return NULL;
    const uint8_t *p = ws_rb_bytes(r, n - 1);
    if (!p || memchr(p, 0, n - 1) || kith_utf8_count((const char *)p, n - 1) < 0) {
        r->err = true;
        return NULL;
    }
    char *s = kith_strndup((const char *)p, n - 1);
    if (!s)
        r->err = true;
    return s;
}

/* A path a peer may name: relative, '/'-separated, no empty, "." or ".."
 * segment, nothing under .kith/. */
static bool path_ok(const char *p)
{
    if (!*p || *p == '/' || strlen(p) >= PATH_MAX / 2)
        return false;
    if (!strcmp(p, ".kith") || !strncmp(p, ".kith/", 6))
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n + (e ? 1 : 0);
        if (e && !*s)
            return false;
    }
    return true;
}

typedef struct x_author {
    uint8_t key[32];
    char *name;
    int64_t local;
} x_author;

typedef struct x_edit {
    uint8_t uuid[16];
    int what, kind;
    char *path, *old_path, *version;
    uint64_t ins, del, opseq, opcount;
    bool has_blob;
    uint8_t blob[32];
} x_edit;

typedef struct x_change {
    uint64_t author, seq, lamport;
    int64_t time_ms;
    char *via;
    x_edit *edits;
    size_t nedits;
} x_change;

typedef struct x_doc {
    uint8_t uuid[16];
    int kind;
    char *path;
    bool deleted, has_blob;
    uint64_t lamport, lamport_author, path_lamport, path_author;
    uint8_t blob[32];
    const uint8_t *enc;
    size_t enclen;
} x_doc;

typedef struct x_blob {
    uint8_t hash[32];
    const uint8_t *data;
    size_t len;
} x_blob;

typedef struct xport {
    uint8_t *owned; /* a decompressed body the pointers below point into */
    x_author *authors;
    size_t nauthors;
    x_change *changes;
    size_t nchanges;
    x_doc *docs;
    size_t ndocs;
    x_blob *blobs;
    size_t nblobs;
} xport;

static void xport_free(xport *x)
{
    /* A parse that failed part way leaves counts whose arrays were never
     * allocated: each loop checks its array. */
    for (size_t i = 0; x->authors && i < x->nauthors; i++)
        kith_free(x->authors[i].name);
    for (size_t i = 0; x->changes && i < x->nchanges; i++) {
        x_change *c = &x->changes[i];
        for (size_t k = 0; c->edits && k < c->nedits; k++) {
            kith_free(c->edits[k].path);
            kith_free(c->edits[k].old_path);
            kith_free(c->edits[k].version);
        }
        kith_free(c->edits);
        kith_free(c->via);
    }
    for (size_t i = 0; x->docs && i < x->ndocs; i++)
        kith_free(x->docs[i].path);
    kith_free(x->authors);
    kith_free(x->changes);
    kith_free(x->docs);
    kith_free(x->blobs);
    kith_free(x->owned);
}

/* Allocates @n zeroed elements, refusing counts the input cannot hold. */
static void *rb_array(ws_rbuf *r, size_t n, size_t elem, size_t min_bytes_each)
{
    if (r->err || n > (r->n - r->off) / (min_bytes_each ? min_bytes_each : 1)) {
        r->err = true;
        return NULL;
    }
    void *p = kith_calloc(n + 1, elem);
    if (!p)
        r->err = true;
    return p;
}

static void parse_edit(ws_rbuf *r, x_edit *e, size_t nauthors)
{
    bool present;
    const uint8_t *u = ws_rb_bytes(r, 16);
    if (u)
        memcpy(e->uuid, u, 16);
    e->what = (int)ws_rb_var(r, KITH_WS_RESTORED);
    e->kind = (int)ws_rb_var(r, WS_NOTE);
    e->path = rb_str(r, PATH_MAX / 2);
    e->old_path = rb_optstr(r, PATH_MAX / 2, &present);
    e->ins = ws_rb_var(r, UINT32_MAX);
    e->del = ws_rb_var(r, UINT32_MAX);
    e->opseq = ws_rb_var(r, UINT32_MAX);
    e->opcount = ws_rb_var(r, UINT32_MAX);
    e->version = rb_optstr(r, 1 << 20, &present);
    e->has_blob = ws_rb_var(r, 1);
    if (e->has_blob && (u = ws_rb_bytes(r, 32)))
        memcpy(e->blob, u, 32);
    if (!r->err &&
        (e->kind == WS_NOTE ? !ws_note_path_ok(e->path, e->uuid) || e->old_path
                            : !path_ok(e->path) || (e->old_path && !path_ok(e->old_path))))
        r->err = true;
}

static void parse_changes(ws_rbuf *r, xport *x)
{
    x->nchanges = (size_t)ws_rb_var(r, UINT32_MAX);
    if (!(x->changes = rb_array(r, x->nchanges, sizeof *x->changes, 5)))
        return;
    for (size_t i = 0; i < x->nchanges && !r->err; i++) {
        x_change *c = &x->changes[i];
        bool present;
        c->author = ws_rb_var(r, x->nauthors ? x->nauthors - 1 : 0);
        c->seq = ws_rb_var(r, INT64_MAX);
        c->time_ms = kith_unzigzag(ws_rb_var(r, UINT64_MAX));
        c->lamport = ws_rb_var(r, INT64_MAX);
        c->via = rb_optstr(r, 255, &present);
        c->nedits = (size_t)ws_rb_var(r, UINT32_MAX);
        if (!x->nauthors || c->seq == 0 ||
            !(c->edits = rb_array(r, c->nedits, sizeof *c->edits, 28)))
            r->err = true;
        for (size_t k = 0; k < c->nedits && !r->err; k++)
            parse_edit(r, &c->edits[k], x->nauthors);
    }
}

static void parse_docs(ws_rbuf *r, xport *x)
{
    x->ndocs = (size_t)ws_rb_var(r, UINT32_MAX);
    if (!(x->docs = rb_array(r, x->ndocs, sizeof *x->docs, 24)))
        return;
    for (size_t i = 0; i < x->ndocs && !r->err; i++) {
        x_doc *d = &x->docs[i];
        const uint8_t *u = ws_rb_bytes(r, 16);
        if (u)
            memcpy(d->uuid, u, 16);
        d->kind = (int)ws_rb_var(r, WS_NOTE);
        d->path = rb_str(r, PATH_MAX / 2);
        d->deleted = ws_rb_var(r, 1);
        d->lamport = ws_rb_var(r, INT64_MAX);
        d->lamport_author = ws_rb_var(r, x->nauthors ? x->nauthors - 1 : 0);
        d->path_lamport = ws_rb_var(r, INT64_MAX);
        d->path_author = ws_rb_var(r, x->nauthors ? x->nauthors - 1 : 0);
        d->has_blob = ws_rb_var(r, 1);
        if (d->has_blob && (u = ws_rb_bytes(r, 32)))
            memcpy(d->blob, u, 32);
        d->enclen = (size_t)ws_rb_var(r, SIZE_MAX);
        d->enc = ws_rb_bytes(r, d->enclen);
        if (!r->err &&
            (d->kind == WS_NOTE ? !ws_note_path_ok(d->path, d->uuid) : !path_ok(d->path)))
            r->err = true;
        if (!r->err && d->kind == WS_BINARY && !d->has_blob)
            r->err = true;
        for (size_t k = 0; k < i && !r->err; k++)
            if (!memcmp(x->docs[k].uuid, d->uuid, 16))
                r->err = true;
    }
}

static int parse(kith_ws *ws, const uint8_t *buf, size_t len, xport *x)
{
    memset(x, 0, sizeof *x);
    if (len < sizeof magic + 16 || memcmp(buf, magic, 7))
        return ws_error(ws, KITH_ECORRUPT, "not a kith workspace export");
    if (buf[7] > 1)
        return ws_error(ws, KITH_EVERSION, "workspace export of an unknown version %d", buf[7]);
    uint8_t sum[16];
    crypto_generichash(sum, sizeof sum, buf, len - 16, NULL, 0);
    if (memcmp(sum, buf + len - 16, 16))
        return ws_error(ws, KITH_ECORRUPT, "workspace export: checksum mismatch (damaged)");
    ws_rbuf r = {buf, len - 16, sizeof magic, false};
    char *wsid = rb_str(&r, 64);
    if (wsid && strcmp(wsid, ws->wsid)) {
        kith_free(wsid);
        return ws_error(ws, KITH_EINVAL, "the export is of another workspace");
    }
    kith_free(wsid);
    if (buf[7] == 1) { /* version 1: the rest is one zstd frame */
        uint64_t raw = ws_rb_var(&r, (uint64_t)1 << 32);
        const uint8_t *z = r.err ? NULL : r.p + r.off;
        size_t zn = r.n - r.off;
        if (!z || ZSTD_getFrameContentSize(z, zn) != raw)
            return ws_error(ws, KITH_ECORRUPT, "workspace export: malformed compressed body");
        if (!(x->owned = kith_malloc(raw ? (size_t)raw : 1)))
            return KITH_ENOMEM;
        size_t got = ZSTD_decompress(x->owned, (size_t)raw, z, zn);
        if (ZSTD_isError(got) || got != raw)
            return ws_error(ws, KITH_ECORRUPT, "workspace export: malformed compressed body");
        r = (ws_rbuf){x->owned, (size_t)raw, 0, false};
    }
    x->nauthors = (size_t)ws_rb_var(&r, UINT32_MAX);
    if ((x->authors = rb_array(&r, x->nauthors, sizeof *x->authors, 33))) {
        for (size_t i = 0; i < x->nauthors && !r.err; i++) {
            const uint8_t *k = ws_rb_bytes(&r, 32);
            if (k)
                memcpy(x->authors[i].key, k, 32);
            x->authors[i].name = rb_str(&r, 255);
        }
    }
    parse_changes(&r, x);
    parse_docs(&r, x);
    x->nblobs = (size_t)ws_rb_var(&r, UINT32_MAX);
    if ((x->blobs = rb_array(&r, x->nblobs, sizeof *x->blobs, 33))) {
        for (size_t i = 0; i < x->nblobs && !r.err; i++) {
            x_blob *b = &x->blobs[i];
            const uint8_t *h = ws_rb_bytes(&r, 32);
            if (h)
                memcpy(b->hash, h, 32);
            b->len = (size_t)ws_rb_var(&r, SIZE_MAX);
            b->data = ws_rb_bytes(&r, b->len);
            uint8_t real[32];
            if (!r.err) {
                ws_blob_hash(real, b->data, b->len);
                if (memcmp(real, b->hash, 32))
                    r.err = true;
            }
        }
    }
    if (r.err || r.off != r.n)
        return ws_error(ws, KITH_ECORRUPT, "workspace export: malformed at byte %zu", r.off);
    return KITH_OK;
}

/* ---- merging ---------------------------------------------------------------------- */

/* A file version named by the export must come with it or be here. */
static int blob_known(kith_ws *ws, const xport *x, const uint8_t h[32])
{
    for (size_t i = 0; i < x->nblobs; i++)
        if (!memcmp(x->blobs[i].hash, h, 32))
            return KITH_OK;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT 1 FROM blobs WHERE hash=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src == SQLITE_ROW)
        return KITH_OK;
    return src == SQLITE_DONE ? ws_error(ws, KITH_ECORRUPT,
                                         "workspace export: it names a file version it does "
                                         "not carry")
                              : ws_sqlerr(ws, src, "reading file versions");
}

static int check_blobs(kith_ws *ws, const xport *x)
{
    int rc = KITH_OK;
    for (size_t i = 0; !rc && i < x->ndocs; i++)
        if (x->docs[i].has_blob)
            rc = blob_known(ws, x, x->docs[i].blob);
    for (size_t i = 0; !rc && i < x->nchanges; i++)
        for (size_t k = 0; !rc && k < x->changes[i].nedits; k++)
            if (x->changes[i].edits[k].has_blob)
                rc = blob_known(ws, x, x->changes[i].edits[k].blob);
    return rc;
}

static int import_authors(kith_ws *ws, xport *x)
{
    for (size_t i = 0; i < x->nauthors; i++) {
        char hex[65];
        ws_hex(hex, x->authors[i].key, 32);
        bool self = !strcmp(hex, ws->device);
        int rc = ws_author_id(ws, x->authors[i].key, self ? ws->user : x->authors[i].name,
                              &x->authors[i].local);
        if (rc)
            return rc;
    }
    return KITH_OK;
}

/* Last-writer-wins order of a remote register (@rl, @rkey) against a local
 * one (@ll, local author @lauthor): > 0 when the remote one wins. Clocks
 * first, then the authors' keys, so every replica picks the same winner. */
static int lww_cmp(kith_ws *ws, int64_t rl, const uint8_t rkey[32], int64_t ll, int64_t lauthor)
{
    if (rl != ll)
        return rl > ll ? 1 : -1;
    sqlite3_stmt *st = NULL;
    int cmp = 0;
    if (ws_prepare(ws, &st, "SELECT key FROM authors WHERE id=?"))
        return 0;
    sqlite3_bind_int64(st, 1, lauthor);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32)
        cmp = memcmp(rkey, sqlite3_column_blob(st, 0), 32);
    sqlite3_finalize(st);
    return cmp;
}

typedef struct touched {
    ws_doc *d;
    char *old_path; /* live path before the import, NULL if none */
    char *base;     /* text documents: the version the file holds (store form) */
} touched;

static int merge_text(kith_ws *ws, ws_doc *d, const x_doc *xd, bool *changed)
{
    kith_doc *doc = NULL;
    uint8_t *summary = NULL, *delta = NULL;
    size_t sumlen = 0, deltalen = 0;
    int rc = ws_doc_crdt(ws, d, &doc);
    if (rc || !xd->enclen)
        return rc;
    uint64_t before = kith_doc_op_count(doc);
    if ((rc = kith_doc_summary(doc, &summary, &sumlen)))
        return rc;
    rc = kith_doc_apply(doc, xd->enc, xd->enclen);
    if (rc)
        rc = ws_error(ws, rc, "%s: the export's history does not merge (%s); nothing was imported",
                      xd->path, kith_doc_errmsg(doc));
    if (!rc && kith_doc_op_count(doc) != before) {
        *changed = true;
        rc = kith_doc_encode_since(doc, summary, sumlen, &delta, &deltalen);
        if (!rc)
            rc = ws_doc_append_delta(ws, d, delta, deltalen);
    }
    kith_free(summary);
    kith_free(delta);
    return rc;
}

static int merge_doc(kith_ws *ws, xport *x, x_doc *xd, touched *t)
{
    ws_doc *d = ws_doc_by_uuid(ws, xd->uuid);
    bool changed = false;
    int rc;
    if (!d) {
        if (!(d = kith_calloc(1, sizeof *d)) ||
            !(d->path = kith_strndup(xd->path, strlen(xd->path)))) {
            kith_free(d);
            return KITH_ENOMEM;
        }
        memcpy(d->uuid, xd->uuid, 16);
        d->kind = xd->kind;
        d->deleted = true; /* until the registers below say otherwise */
        d->lamport = d->path_lamport = -1;
        if ((rc = ws_doc_add(ws, d)) || (rc = ws_doc_save_row(ws, d)))
            return rc;
    }
    /* A note stays a note: its path is its id, and it is never a file. */
    if ((d->kind == WS_NOTE) != (xd->kind == WS_NOTE))
        return ws_error(ws, KITH_ECORRUPT, "%s: a note and a file share an id", xd->path);
    t->d = d;
    if (!d->deleted && !(t->old_path = kith_strndup(d->path, strlen(d->path))))
        return KITH_ENOMEM;
    if (!d->deleted && d->kind == WS_TEXT) {
        /* The folder holds this version's text until the file is replaced:
         * a save in between is an edit made at it (ws_writes_finish). */
        kith_doc *doc = NULL;
        if ((rc = ws_doc_crdt(ws, d, &doc)) || (rc = ws_doc_version_db(ws, doc, &t->base)))
            return rc;
    }
    if ((rc = merge_text(ws, d, xd, &changed)))
        return rc;
    if (lww_cmp(ws, (int64_t)xd->lamport, x->authors[xd->lamport_author].key, d->lamport,
                d->lamport_author) > 0) {
        changed |= d->deleted != xd->deleted || d->kind != xd->kind ||
                   (xd->has_blob && memcmp(d->blob, xd->blob, 32));
        if ((rc = ws_doc_set_path(ws, d, d->path, xd->deleted)))
            return rc;
        d->kind = xd->kind;
        if (xd->has_blob)
            memcpy(d->blob, xd->blob, 32);
        d->lamport = (int64_t)xd->lamport;
        d->lamport_author = x->authors[xd->lamport_author].local;
    }
    if (lww_cmp(ws, (int64_t)xd->path_lamport, x->authors[xd->path_author].key, d->path_lamport,
                d->path_author) > 0) {
        changed |= strcmp(d->path, xd->path) != 0;
        if ((rc = ws_doc_set_path(ws, d, xd->path, d->deleted)))
            return rc;
        d->path_lamport = (int64_t)xd->path_lamport;
        d->path_author = x->authors[xd->path_author].local;
    }
    if (!changed) {
        kith_free(t->old_path);
        kith_free(t->base);
        t->old_path = t->base = NULL;
        t->d = NULL;
    }
    return ws_doc_save_row(ws, d);
}

/* A recorded version from a peer must name operations the merged history
 * holds, or reading the past at that change would fail later. */
static int version_holds(kith_ws *ws, ws_doc *d, const char *version)
{
    kith_doc *doc = NULL;
    kith_id *ids = NULL;
    size_t n = 0;
    int rc = ws_doc_crdt(ws, d, &doc);
    if (rc)
        return rc;
    if (kith_doc_version_parse(doc, version, &ids, &n))
        rc = ws_error(ws, KITH_ECORRUPT,
                      "workspace export: a change names a version of %s "
                      "that its history does not hold",
                      d->path);
    kith_free(ids);
    return rc;
}

static int import_changes(kith_ws *ws, xport *x)
{
    int rc = KITH_OK;
    for (size_t i = 0; !rc && i < x->nchanges; i++) {
        x_change *c = &x->changes[i];
        ws_change_row row = {.author = x->authors[c->author].local,
                             .seq = (int64_t)c->seq,
                             .time_ms = c->time_ms,
                             .lamport = (int64_t)c->lamport,
                             .via = c->via};
        bool added = false;
        if ((rc = ws_change_put(ws, &row, &added)) || !added) /* or known already */
            continue;
        int64_t id = row.id;
        for (size_t k = 0; !rc && k < c->nedits; k++) {
            x_edit *e = &c->edits[k];
            ws_doc *d = ws_doc_by_uuid(ws, e->uuid);
            if (!d) {
                rc = ws_error(ws, KITH_ECORRUPT,
                              "workspace export: a change names an unknown "
                              "document");
                break;
            }
            char *dbv = NULL;
            if (e->version && (rc = version_holds(ws, d, e->version)))
                break;
            if (e->version && (rc = ws_version_to_db(ws, e->version, &dbv)))
                break;
            ws_edit ed = {.change = id,
                          .doc = d->id,
                          .what = e->what,
                          .kind = e->kind,
                          .path = e->path,
                          .old_path = e->old_path,
                          .ins = (int64_t)e->ins,
                          .del = (int64_t)e->del,
                          .opseq = (int64_t)e->opseq,
                          .opcount = (int64_t)e->opcount,
                          .version = dbv,
                          .blob = e->has_blob ? e->blob : NULL,
                          .blob_len = e->has_blob ? 32 : 0};
            rc = ws_edit_put(ws, &ed, false);
            kith_free(dbv);
        }
    }
    return rc;
}

/* Two live documents cannot share a path: when a merge makes them (two
 * replicas renamed different files to one name), the one that lost the
 * last-writer-wins order moves aside to "name~<id>.ext", keeping both. */
static int separate_clashes(kith_ws *ws, touched *t, size_t nt)
{
    for (size_t i = 0; i < nt; i++) {
        ws_doc *d = t[i].d;
        if (!d || d->deleted)
            continue;
        for (size_t k = 0; k < ws->ndocs; k++) {
            ws_doc *o = ws->docs[k];
            if (o == d || o->deleted || strcmp(o->path, d->path))
                continue;
            ws_doc *loser = o->path_lamport < d->path_lamport ? o : d;
            char hex[9], moved[PATH_MAX];
            ws_hex(hex, loser->uuid, 4);
            const char *slash = strrchr(loser->path, '/');
            const char *dot = strrchr(slash ? slash + 1 : loser->path, '.');
            if (dot && dot != (slash ? slash + 1 : loser->path))
                snprintf(moved, sizeof moved, "%.*s~%s%s", (int)(dot - loser->path), loser->path,
                         hex, dot);
            else
                snprintf(moved, sizeof moved, "%s~%s", loser->path, hex);
            int rc = ws_doc_set_path(ws, loser, moved, false);
            if (!rc)
                rc = ws_doc_save_row(ws, loser);
            if (rc)
                return rc;
            kith_log(KITH_LOG_WARN, "two files were named %s; one is now %s", o->path, moved);
        }
    }
    return KITH_OK;
}

/* The stat of @rel now: what a later write must still find there. */
typedef struct ostat {
    int64_t size, mtime, ino; /* all -1: no file */
} ostat;

static ostat stat_now(kith_ws *ws, const char *rel)
{
    char path[PATH_MAX * 2];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", ws->root, rel);
    if (lstat(path, &st))
        return (ostat){-1, -1, -1};
    return (ostat){(int64_t)st.st_size,
                   (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec,
                   (int64_t)st.st_ino};
}

static int journal(kith_ws *ws, const char *tmp, const char *path, const ws_doc *d,
                   const char *base, ostat was)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "INSERT INTO writes(tmp, path, doc, base, osize, omtime, oino) "
                        "VALUES(?, ?, ?, ?, ?, ?, ?)");
    if (rc)
        return rc;
    if (tmp)
        sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->id);
    if (base)
        sqlite3_bind_text(st, 4, base, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, was.size);
    sqlite3_bind_int64(st, 6, was.mtime);
    sqlite3_bind_int64(st, 7, was.ino);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing the store");
    sqlite3_finalize(st);
    return rc;
}

/* Stages @text (@len bytes) as the new content of text document @d's file,
 * through the journal, for ws_writes_finish after the commit: the scan of a
 * save made from a stale buffer, whose merge with what arrived differs from
 * what the editor wrote. @base is the version (store form) of what the file
 * holds now. @d's stat becomes the staged file's. */
int ws_stage_write(kith_ws *ws, ws_doc *d, const char *text, size_t len, const char *base)
{
    char *tmp = NULL;
    struct stat st;
    ostat was = stat_now(ws, d->path);
    int rc = ws_write_tmp(ws, d->path, text, len, &st, &tmp);
    if (!rc)
        rc = journal(ws, tmp, d->path, d, base, was);
    if (!rc) {
        d->size = (int64_t)st.st_size;
        d->mtime_ns = 0;
        d->ino = (int64_t)st.st_ino;
        d->dev = (int64_t)st.st_dev;
        rc = ws_doc_save_stat(ws, d);
    }
    kith_free(tmp);
    return rc;
}

/* Whether the file of @d holds the text of @base: the user may have saved
 * it after the scan that preceded this merge. Read after stat_now, so a
 * save after this check changes the stat that ws_writes_finish compares. */
static bool file_holds(kith_ws *ws, ws_doc *d, const char *base)
{
    kith_doc *doc = NULL;
    kith_id *ids = NULL;
    size_t n = 0, tlen = 0, flen = 0;
    char *text = NULL, *file = NULL;
    bool same = false;
    if (!ws_doc_crdt(ws, d, &doc) && !ws_version_ids(ws, doc, base, &ids, &n) &&
        !kith_doc_text_at(doc, ids, n, &text, &tlen)) {
        int rc = ws_read_file(ws, d->path, &file, &flen, NULL);
        same = rc == KITH_ENOTFOUND || (!rc && flen == tlen && !memcmp(file, text, tlen));
    }
    kith_free(ids);
    kith_free(text);
    kith_free(file);
    return same;
}

/* Stages the file of each touched document: a temporary file for a live
 * one, a removal of its old path for a moved or deleted one. */
static int stage_files(kith_ws *ws, touched *t, size_t nt)
{
    for (size_t i = 0; i < nt; i++) {
        ws_doc *d = t[i].d;
        if (!d || d->kind == WS_NOTE)
            continue;
        int rc = KITH_OK;
        if (t[i].old_path && (d->deleted || strcmp(t[i].old_path, d->path)))
            rc = journal(ws, NULL, t[i].old_path, d, NULL, stat_now(ws, t[i].old_path));
        if (!rc && !d->deleted) {
            char *data = NULL, *tmp = NULL;
            size_t len = 0;
            struct stat st;
            if (d->kind == WS_BINARY) {
                rc = ws_blob_get(ws, d->blob, &data, &len);
            } else {
                kith_doc *doc = NULL;
                if (!(rc = ws_doc_crdt(ws, d, &doc)))
                    rc = kith_doc_text(doc, &data, &len);
            }
            ostat was = stat_now(ws, d->path);
            if (!rc && t[i].base && !file_holds(ws, d, t[i].base))
                was = (ostat){-2, -2, -2}; /* saved since the scan: merge, don't replace */
            if (!rc)
                rc = ws_write_tmp(ws, d->path, data, len, &st, &tmp);
            if (!rc)
                rc = journal(ws, tmp, d->path, d, t[i].base, was);
            if (!rc) {
                d->size = (int64_t)st.st_size;
                d->mtime_ns = 0; /* fresh: the next scan looks once more */
                d->ino = (int64_t)st.st_ino;
                d->dev = (int64_t)st.st_dev;
                rc = ws_doc_save_stat(ws, d);
            }
            kith_free(data);
            kith_free(tmp);
        }
        if (rc)
            return rc;
    }
    return KITH_OK;
}

/*
 * A user saved over a file while a merge was being written to it: the
 * save is an edit made at @base, the version the file held. Records it as
 * such (the CRDT merges it with what arrived) and writes the result, trying
 * again if the user saves once more meanwhile.
 */
static int concurrent_save(kith_ws *ws, int64_t docid, const char *base0, const char *rel,
                           const char *given, size_t given_len)
{
    char *owned = NULL; /* the base after a retry */
    const char *base = base0;
    int rc = KITH_OK;
    for (int attempt = 0; attempt < 3 && !rc; attempt++) {
        char *data = NULL, *merged = NULL;
        size_t len = 0, mlen = 0;
        ws_change *c = NULL;
        struct stat st;
        ostat was = stat_now(ws, rel);
        if (given && attempt == 0) { /* what was written into the replaced file */
            rc = (data = kith_strndup(given, given_len)) ? KITH_OK : KITH_ENOMEM;
            len = given_len;
        } else {
            rc = ws_read_file(ws, rel, &data, &len, &st);
        }
        if (!rc && kith_utf8_count(data, len) < 0)
            rc = KITH_EUTF8; /* not text any more: the next scan takes it whole */
        if (!rc)
            rc = ws_begin(ws);
        if (rc) {
            kith_free(data);
            /* Gone or no longer text: the next scan records what it is. */
            rc = rc == KITH_EUTF8 || rc == KITH_ENOTFOUND ? KITH_OK : rc;
            break;
        }
        ws_doc *d = NULL;
        rc = ws_docs_load(ws);
        for (size_t i = 0; !rc && i < ws->ndocs; i++)
            if (ws->docs[i]->id == docid)
                d = ws->docs[i];
        if (!rc && (!d || d->kind != WS_TEXT || d->deleted))
            rc = KITH_ENOTFOUND;
        if (!rc)
            rc = ws_change_begin(ws, &c, NULL);
        if (!rc)
            rc = ws_change_text_at(c, d, base, data, len);
        kith_doc *doc = NULL;
        if (!rc && !(rc = ws_doc_crdt(ws, d, &doc)))
            rc = kith_doc_text(doc, &merged, &mlen);
        if (!rc && !(given && attempt == 0)) { /* the file is still the merge's */
            d->size = (int64_t)st.st_size;
            d->mtime_ns = 0;
            d->ino = (int64_t)st.st_ino;
            d->dev = (int64_t)st.st_dev;
            rc = ws_doc_save_stat(ws, d);
        }
        if (!rc)
            rc = ws_change_finish(c, NULL, NULL, NULL);
        ws_change_free(c);
        if (rc) {
            ws_rollback(ws);
            ws_docs_forget_crdt(ws);
            kith_free(data);
            kith_free(merged);
            rc = rc == KITH_ENOTFOUND ? KITH_OK : rc;
            break;
        }
        kith_log(KITH_LOG_INFO, "%s: saved while a merge was written; both kept", rel);
        bool done = mlen == len && !memcmp(merged, data, len);
        kith_free(data);
        /* The merged text is the recorded one now: a later save is an edit
         * at its version. */
        char *v = NULL;
        if (!done && (rc = ws_doc_version_db(ws, doc, &v))) {
            kith_free(merged);
            break;
        }
        if (done) {
            kith_free(merged);
            break;
        }
        /* Write the merge, unless the user saved yet again. */
        char *tmp = NULL, path[PATH_MAX * 2];
        rc = ws_write_tmp(ws, rel, merged, mlen, NULL, &tmp);
        kith_free(merged);
        if (rc) {
            kith_free(v);
            break;
        }
        ostat now = stat_now(ws, rel);
        snprintf(path, sizeof path, "%s/%s", ws->root, rel);
        if (now.size == was.size && now.mtime == was.mtime && now.ino == was.ino) {
            rc = rename(tmp, path) ? ws_error(ws, KITH_EIO, "%s: %s", rel, strerror(errno)) : 0;
            kith_free(tmp);
            kith_free(v);
            break;
        }
        unlink(tmp);
        kith_free(tmp);
        kith_free(owned);
        owned = v;
        base = owned;
    }
    kith_free(owned);
    return rc;
}

typedef struct jrow {
    int64_t id, doc;
    char *tmp, *rel, *base;
    ostat was;
} jrow;

static void jrows_free(jrow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kith_free(rows[i].tmp);
        kith_free(rows[i].rel);
        kith_free(rows[i].base);
    }
    kith_free(rows);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? kith_strndup(s, strlen(s)) : NULL;
}

static int jrows_read(kith_ws *ws, jrow **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc = ws_prepare(ws, &st,
                        "SELECT id, tmp, path, doc, base, osize, omtime, oino FROM "
                        "writes ORDER BY id");
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (kith_grow((void **)out, &cap, *n + 1, sizeof **out)) {
            rc = KITH_ENOMEM;
            break;
        }
        jrow *r = &(*out)[(*n)++];
        r->id = sqlite3_column_int64(st, 0);
        r->tmp = col_dup(st, 1);
        r->rel = col_dup(st, 2);
        r->doc = sqlite3_column_int64(st, 3);
        r->base = col_dup(st, 4);
        r->was = (ostat){sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6),
                         sqlite3_column_int64(st, 7)};
        if (!r->rel) {
            rc = KITH_ENOMEM;
            break;
        }
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading the store");
    sqlite3_finalize(st);
    return rc;
}

/* ---- writes into a replaced file ------------------------------------------------------ */

/* Keeps @fd, the file that the journal row @r replaced (@st its stat now),
 * open: a process that opened it before the replace may still write. */
static void orphan_keep(kith_ws *ws, int fd, const jrow *r, const struct stat *st)
{
    struct stat fst;
    if (fd < 0)
        return;
    if (fstat(fd, &fst) || fst.st_ino != st->st_ino || !r->base || !r->doc ||
        kith_grow((void **)&ws->orphans, &ws->caporphans, ws->norphans + 1, sizeof *ws->orphans)) {
        close(fd);
        return;
    }
    struct ws_orphan *o = &ws->orphans[ws->norphans];
    *o = (struct ws_orphan){fd,
                            r->doc,
                            kith_strndup(r->base, strlen(r->base)),
                            kith_strndup(r->rel, strlen(r->rel)),
                            (int64_t)fst.st_size,
                            (int64_t)fst.st_mtim.tv_sec * 1000000000ll + fst.st_mtim.tv_nsec,
                            ws_now_ms()};
    if (!o->base || !o->rel) {
        kith_free(o->base);
        kith_free(o->rel);
        close(fd);
        return;
    }
    ws->norphans++;
    if (ws->norphans > 64) /* a bound on open files: the oldest is checked now */
        ws_orphans_check(ws, false);
}

/* What a writer put into the replaced file @o since: its whole text when it
 * changed (caller frees), else NULL. */
static char *orphan_read(const struct ws_orphan *o, size_t *len)
{
    struct stat st;
    if (fstat(o->fd, &st) || st.st_size > (off_t)KITH_WS_TEXT_MAX ||
        ((int64_t)st.st_size == o->size &&
         (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec == o->mtime))
        return NULL;
    char *buf = kith_malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t got = pread(o->fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    if (!buf || n != (size_t)st.st_size || kith_utf8_count(buf, n) < 0) {
        kith_free(buf);
        return NULL; /* gone short, or not text: nothing to merge as text */
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/*
 * Merges what was written into files this process replaced (a shell's >>
 * that opened the old file just before), as an edit made at the version the
 * old file held, and closes those that no one can write into any more: all
 * with @all (closing the workspace), else those replaced over a second ago
 * (the next scan comes soon after a replace, which its own rename causes)
 * and, past 64, the oldest.
 */
void ws_orphans_check(kith_ws *ws, bool all)
{
    int64_t now = ws_now_ms();
    size_t keep = 0;
    for (size_t i = 0; i < ws->norphans; i++) {
        struct ws_orphan *o = &ws->orphans[i];
        size_t len = 0;
        char *data = orphan_read(o, &len);
        if (data) {
            kith_log(KITH_LOG_INFO, "%s: written into while kith replaced it; both kept", o->rel);
            if (concurrent_save(ws, o->doc, o->base, o->rel, data, len))
                kith_log(KITH_LOG_WARN, "%s: %s", o->rel, ws->err);
            kith_free(data);
            /* the new size is the baseline for later writes */
            struct stat st;
            if (!fstat(o->fd, &st)) {
                o->size = (int64_t)st.st_size;
                o->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
            }
        }
        bool old = all || now - o->since_ms > 1000 || (ws->norphans - i > 64 && i == 0);
        if (old) {
            close(o->fd);
            kith_free(o->base);
            kith_free(o->rel);
        } else {
            ws->orphans[keep++] = *o;
        }
    }
    ws->norphans = keep;
    if (all) {
        kith_free(ws->orphans);
        ws->orphans = NULL;
        ws->caporphans = 0;
    }
}

/*
 * Renames the staged file over @path, which was checked to still be the
 * file staged against. A save can land between that check and the rename:
 * so the two are exchanged atomically (renameat2 RENAME_EXCHANGE) and what
 * comes out is checked again. If it is not the file expected, it is the
 * user's save: it goes back in place and false is returned, for the caller
 * to merge it (ws_writes_finish). Where the exchange is not available (no
 * file there yet, or a file system without it), a plain rename.
 */
static bool put_in_place(kith_ws *ws, const jrow *r, const char *path)
{
    int old = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (renameat2(AT_FDCWD, r->tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
        struct stat st;
        bool expected =
            lstat(r->tmp, &st) == 0 && (int64_t)st.st_size == r->was.size &&
            (int64_t)st.st_ino == r->was.ino &&
            (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec == r->was.mtime;
        if (expected) {
            unlink(r->tmp);
            orphan_keep(ws, old, r, &st);
            return true;
        }
        if (old >= 0)
            close(old);
        if (rename(r->tmp, path)) /* the save back in place */
            kith_log(KITH_LOG_WARN, "%s: %s", path, strerror(errno));
        return false;
    }
    if (old >= 0)
        close(old);
    if (rename(r->tmp, path) && errno != ENOENT)
        kith_log(KITH_LOG_WARN, "%s: %s", path, strerror(errno));
    return true;
}

/*
 * Carries out the journal: renames staged files into place and removes the
 * files of moved and deleted documents, each only if the file is still as it
 * was when staged. A file the user saved meanwhile is not overwritten: with
 * @live (right after an import, outside a transaction) the save is recorded
 * as a concurrent edit and merged; at the start of a scan (finishing what a
 * crash interrupted) it is left for the scan to record.
 */
int ws_writes_finish(kith_ws *ws, bool live)
{
    jrow *rows = NULL;
    size_t n = 0;
    int rc = jrows_read(ws, &rows, &n);
    bool *saved = rc ? NULL : kith_calloc(n + 1, sizeof *saved);
    if (!rc && !saved)
        rc = KITH_ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        jrow *r = &rows[i];
        ostat now = stat_now(ws, r->rel);
        bool same = now.size == r->was.size && now.mtime == r->was.mtime && now.ino == r->was.ino;
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", ws->root, r->rel);
        if (same && r->tmp) {
            same = put_in_place(ws, r, path);
            if (same && r->base && r->doc)
                ws_overwrite_note(ws, r->doc, r->base);
            if (!same) {
                saved[i] = live && r->base;
                if (!saved[i])
                    kith_log(KITH_LOG_WARN, "%s changed while kith was writing it; left as saved",
                             r->rel);
            }
        } else if (same) {
            if (unlink(path) && errno != ENOENT)
                kith_log(KITH_LOG_WARN, "%s: %s", path, strerror(errno));
        } else {
            if (r->tmp)
                unlink(r->tmp);
            saved[i] = live && r->tmp && r->base;
            if (!saved[i])
                kith_log(KITH_LOG_WARN, "%s changed while kith was writing it; left as saved",
                         r->rel);
        }
        sqlite3_stmt *del = NULL;
        if (!(rc = ws_prepare(ws, &del, "DELETE FROM writes WHERE id=?"))) {
            sqlite3_bind_int64(del, 1, r->id);
            int src = sqlite3_step(del);
            if (src != SQLITE_DONE)
                rc = ws_sqlerr(ws, src, "writing the store");
            sqlite3_finalize(del);
        }
    }
    /* Saves made over a file being replaced: each is an edit at the
     * version the file held, merged with what arrived. */
    for (size_t i = 0; !rc && i < n; i++)
        if (saved[i])
            rc = concurrent_save(ws, rows[i].doc, rows[i].base, rows[i].rel, NULL, 0);
    kith_free(saved);
    jrows_free(rows, n);
    return rc;
}

static void report(touched *t, size_t nt, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    for (size_t i = 0; i < nt; i++) {
        ws_doc *d = t[i].d;
        if (!d || d->kind == WS_NOTE)
            continue;
        res->files++;
        kith_ws_file f = {KITH_WS_MODIFIED, d->path, NULL, 0, 0, d->kind == WS_BINARY, NULL};
        if (d->deleted)
            f.what = KITH_WS_DELETED;
        else if (!t[i].old_path)
            f.what = KITH_WS_ADDED;
        else if (strcmp(t[i].old_path, d->path)) {
            f.what = KITH_WS_RENAMED;
            f.old_path = t[i].old_path;
        }
        if (cb)
            cb(&f, ctx);
    }
}

/* Merges a parsed export or change into the store and the folder: one
 * transaction, files staged through the journal, reported once durable. */
static int merge_xport(kith_ws *ws, xport *x, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    touched *t = kith_calloc(x->ndocs + 1, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    int rc = ws_begin(ws);
    if (rc) {
        kith_free(t);
        return rc;
    }
    rc = ws_docs_load(ws);
    if (!rc)
        rc = check_blobs(ws, x);
    if (!rc)
        rc = import_authors(ws, x);
    for (size_t i = 0; !rc && i < x->nblobs; i++)
        rc = ws_blob_put(ws, x->blobs[i].hash, x->blobs[i].data, x->blobs[i].len);
    for (size_t i = 0; !rc && i < x->ndocs; i++)
        rc = merge_doc(ws, x, &x->docs[i], &t[i]);
    if (!rc)
        rc = import_changes(ws, x);
    if (!rc)
        rc = separate_clashes(ws, t, x->ndocs);
    if (!rc)
        rc = stage_files(ws, t, x->ndocs);
    if (!rc)
        rc = ws_commit_tx(ws);
    if (rc) {
        ws_rollback(ws);
        ws_docs_forget_crdt(ws);
        /* Temporary files staged before the failure are left to the
         * default ignore rules; the journal rows were rolled back. */
    } else {
        if (ws->test_before_writes)
            ws->test_before_writes(ws->test_ctx);
        ws_writes_finish(ws, true);
        report(t, x->ndocs, cb, ctx, res);
    }
    for (size_t i = 0; i < x->ndocs; i++) {
        kith_free(t[i].old_path);
        kith_free(t[i].base);
    }
    kith_free(t);
    return rc;
}

int kith_ws_import(kith_ws *ws, const uint8_t *buf, size_t len, kith_ws_file_cb cb, void *ctx,
                   kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    xport x;
    int rc = parse(ws, buf, len, &x);
    if (!rc) {
        kith_ws_result scanned;
        rc = kith_ws_scan(ws, NULL, NULL, &scanned);
    }
    if (!rc)
        rc = merge_xport(ws, &x, cb, ctx, res);
    xport_free(&x);
    return rc;
}

int kith_ws_join(const char *dir, const char *name, const uint8_t *buf, size_t len, kith_ws **out)
{
    ws_rbuf r = {buf, len, sizeof magic, false};
    bool ours = len > sizeof magic && !memcmp(buf, magic, 7) && buf[7] <= 1;
    char *wsid = ours ? rb_str(&r, 64) : NULL;
    int rc = kith_ws_init_as(dir, name, wsid ? wsid : "-", out);
    if (!wsid && *out)
        rc = ws_error(*out, KITH_ECORRUPT, "not a kith workspace export");
    kith_free(wsid);
    if (!rc) {
        kith_ws_result res;
        rc = kith_ws_import(*out, buf, len, NULL, NULL, &res);
    }
    return rc;
}

/* ---- one change at a time (sync) ----------------------------------------------------- */

static const uint8_t cmagic[8] = {'K', 'I', 'T', 'H', 'W', 'C', '1', 0};

int kith_ws_vv(kith_ws *ws, kith_ws_vv_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    ws->err[0] = 0;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        /* changes.c's runs: a run's last number is seq + n - 1 */
                        "SELECT a.key, MAX(r.seq + r.n - 1) FROM change_runs r JOIN authors a "
                        "ON a.id=r.author GROUP BY r.author ORDER BY a.key");
    if (rc)
        return rc;
    size_t cap = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        if (kith_grow((void **)out, &cap, *n + 1, sizeof **out)) {
            rc = KITH_ENOMEM;
            break;
        }
        memcpy((*out)[*n].author, sqlite3_column_blob(st, 0), 32);
        (*out)[*n].seq = (uint64_t)sqlite3_column_int64(st, 1);
        (*n)++;
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading changes");
    sqlite3_finalize(st);
    if (rc) {
        kith_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

static ws_doc *doc_by_id(kith_ws *ws, int64_t id)
{
    for (size_t i = 0; i < ws->ndocs; i++)
        if (ws->docs[i]->id == id)
            return ws->docs[i];
    return NULL;
}

/* The CRDT operations of one edit row: the author's seqs it lists. */
static int edit_delta(kith_ws *ws, int64_t docid, const uint8_t key[32], uint64_t opseq,
                      uint64_t opcount, ws_wbuf *w)
{
    ws_doc *d = doc_by_id(ws, docid);
    kith_doc *doc = NULL;
    uint8_t *delta = NULL;
    size_t len = 0;
    char agent[33];
    ws_hex(agent, key, 16);
    kith_agent a;
    int rc =
        d ? ws_doc_crdt(ws, d, &doc) : ws_error(ws, KITH_ECORRUPT, "an edit names no document");
    if (!rc)
        rc = kith_doc_agent(doc, agent, &a);
    if (!rc)
        rc = kith_doc_encode_range(doc, a, opseq, opseq + opcount, &delta, &len);
    if (rc == KITH_EINVAL)
        rc = ws_error(ws, KITH_ECORRUPT, "%s: a change's operations are missing from its history",
                      d ? d->path : "?");
    if (!rc) {
        ws_wb_var(w, len);
        ws_wb_bytes(w, delta, len);
    }
    kith_free(delta);
    return rc;
}

/* Encodes change @id (changes.id) as a sync payload into @w. */
static int change_payload(kith_ws *ws, int64_t id, ws_wbuf *w)
{
    sqlite3_stmt *st = NULL, *ed = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT a.key, a.name, c.seq, c.time_ms, c.lamport, c.via FROM "
                        "changes c JOIN authors a ON a.id=c.author WHERE c.id=?");
    if (!rc)
        rc = ws_prepare(ws, &ed,
                        "SELECT d.uuid, e.what, e.kind, e.path, e.old_path, e.ins, e.del, "
                        "e.opseq, e.opcount, e.version, e.blob, e.doc FROM edits e JOIN docs d ON "
                        "d.id=e.doc WHERE e.change=? ORDER BY e.doc");
    if (rc)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32) {
        rc = ws_error(ws, KITH_ENOTFOUND, "no such change");
        goto out;
    }
    uint8_t key[32];
    memcpy(key, sqlite3_column_blob(st, 0), 32);
    ws_wb_bytes(w, cmagic, sizeof cmagic);
    wb_str(w, ws->wsid);
    ws_wb_bytes(w, key, 32);
    wb_str(w, (const char *)sqlite3_column_text(st, 1));
    ws_wb_var(w, (uint64_t)sqlite3_column_int64(st, 2));
    ws_wb_var(w, kith_zigzag(sqlite3_column_int64(st, 3)));
    ws_wb_var(w, (uint64_t)sqlite3_column_int64(st, 4));
    wb_optstr(w, (const char *)sqlite3_column_text(st, 5));
    /* Edits are counted first: a change has a handful. */
    ws_wbuf body = {0};
    uint64_t ne = 0;
    sqlite3_bind_int64(ed, 1, id);
    int src;
    while (!rc && (src = sqlite3_step(ed)) == SQLITE_ROW) {
        ne++;
        if ((rc = write_edit(ws, ed, &body)))
            break;
        bool blob = sqlite3_column_bytes(ed, 10) == 32;
        /* The operations, then the bytes of a whole-file version. */
        uint64_t opcount = (uint64_t)sqlite3_column_int64(ed, 8);
        if (sqlite3_column_int(ed, 2) != WS_BINARY && opcount) /* text and notes */
            rc = edit_delta(ws, sqlite3_column_int64(ed, 11), key,
                            (uint64_t)sqlite3_column_int64(ed, 7), opcount, &body);
        else
            ws_wb_var(&body, 0);
        if (!rc && blob) {
            char *data = NULL;
            size_t len = 0;
            uint8_t h[32];
            memcpy(h, sqlite3_column_blob(ed, 10), 32);
            if (!(rc = ws_blob_get(ws, h, &data, &len))) {
                ws_wb_var(&body, len);
                ws_wb_bytes(&body, data, len);
            }
            kith_free(data);
        }
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading history");
    ws_wb_var(w, ne);
    ws_wb_bytes(w, body.p, body.n);
    if (!rc && body.err)
        rc = body.err;
    kith_free(body.p);
    if (!rc) {
        uint8_t sum[16];
        crypto_generichash(sum, sizeof sum, w->p, w->n, NULL, 0);
        ws_wb_bytes(w, sum, sizeof sum);
        rc = w->err;
    }
out:
    sqlite3_finalize(st);
    sqlite3_finalize(ed);
    return rc;
}

static uint64_t vv_seq(const kith_ws_vv_entry *vv, size_t n, const uint8_t key[32])
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(vv[i].author, key, 32))
            return vv[i].seq;
    return 0;
}

int kith_ws_changes_since(kith_ws *ws, const kith_ws_vv_entry *vv, size_t n,
                          int (*cb)(const uint8_t author[32], uint64_t seq, const uint8_t *payload,
                                    size_t len, void *ctx),
                          void *ctx)
{
    ws->err[0] = 0;
    int rc = sqlite3_exec(ws->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
                 ? KITH_OK
                 : ws_sqlerr(ws, sqlite3_errcode(ws->db), "store");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = ws_docs_load(ws);
    if (!rc)
        rc = ws_prepare(ws, &st,
                        "SELECT c.id, a.key, c.seq FROM changes c JOIN authors a ON "
                        "a.id=c.author ORDER BY c.id");
    int src = SQLITE_DONE;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != 32)
            continue;
        uint8_t key[32];
        memcpy(key, sqlite3_column_blob(st, 1), 32);
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 2);
        if (seq <= vv_seq(vv, n, key))
            continue;
        ws_wbuf w = {0};
        uint8_t *v1 = NULL;
        size_t v1len = 0;
        rc = change_payload(ws, sqlite3_column_int64(st, 0), &w);
        if (!rc)
            rc = ws_change_pack(ws, key, seq, w.p, w.n, &v1, &v1len);
        if (!rc && cb(key, seq, v1, v1len, ctx))
            rc = KITH_ECANCELED;
        kith_free(v1);
        kith_free(w.p);
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading changes");
    sqlite3_finalize(st);
    ws_rollback(ws);
    return rc == KITH_ECANCELED ? KITH_OK : rc;
}

/* Reads a change payload into an xport of one author, one change and one
 * document entry per edit (the registers the change wrote). */
static int parse_change(kith_ws *ws, const uint8_t *buf, size_t len, xport *x)
{
    memset(x, 0, sizeof *x);
    if (len < sizeof cmagic + 16 || memcmp(buf, cmagic, 7))
        return ws_error(ws, KITH_ECORRUPT, "not a kith change");
    if (buf[7] != 0)
        return ws_error(ws, KITH_EVERSION, "a kith change of an unknown version %d", buf[7]);
    uint8_t sum[16];
    crypto_generichash(sum, sizeof sum, buf, len - 16, NULL, 0);
    if (memcmp(sum, buf + len - 16, 16))
        return ws_error(ws, KITH_ECORRUPT, "change: checksum mismatch (damaged)");
    ws_rbuf r = {buf, len - 16, sizeof cmagic, false};
    char *wsid = rb_str(&r, 64);
    bool other = wsid && strcmp(wsid, ws->wsid);
    kith_free(wsid);
    if (other)
        return ws_error(ws, KITH_EINVAL, "the change is of another workspace");
    x->nauthors = 1;
    x->nchanges = 1;
    x->authors = kith_calloc(1, sizeof *x->authors);
    x->changes = kith_calloc(1, sizeof *x->changes);
    if (!x->authors || !x->changes)
        return KITH_ENOMEM;
    const uint8_t *k = ws_rb_bytes(&r, 32);
    if (k)
        memcpy(x->authors[0].key, k, 32);
    x->authors[0].name = rb_str(&r, 255);
    x_change *c = &x->changes[0];
    bool present;
    c->author = 0;
    c->seq = ws_rb_var(&r, INT64_MAX);
    c->time_ms = kith_unzigzag(ws_rb_var(&r, UINT64_MAX));
    c->lamport = ws_rb_var(&r, INT64_MAX);
    c->via = rb_optstr(&r, 255, &present);
    c->nedits = (size_t)ws_rb_var(&r, UINT32_MAX);
    if (c->seq == 0)
        r.err = true;
    if ((c->edits = rb_array(&r, c->nedits, sizeof *c->edits, 28)) &&
        (x->docs = rb_array(&r, c->nedits, sizeof *x->docs, 1)) &&
        (x->blobs = rb_array(&r, c->nedits, sizeof *x->blobs, 1))) {
        x->ndocs = c->nedits;
        for (size_t i = 0; i < c->nedits && !r.err; i++) {
            x_edit *e = &c->edits[i];
            parse_edit(&r, e, 1);
            x_doc *d = &x->docs[i];
            memcpy(d->uuid, e->uuid, 16);
            d->kind = e->kind;
            d->path = e->path ? kith_strndup(e->path, strlen(e->path)) : NULL;
            d->deleted = e->what == KITH_WS_DELETED;
            d->lamport = c->lamport; /* every edit writes existence */
            bool names_path = e->what == KITH_WS_ADDED || e->what == KITH_WS_RENAMED;
            d->path_lamport = names_path ? c->lamport : 0;
            d->has_blob = e->has_blob;
            memcpy(d->blob, e->blob, 32);
            d->enclen = (size_t)ws_rb_var(&r, SIZE_MAX);
            d->enc = ws_rb_bytes(&r, d->enclen);
            if (e->has_blob) {
                x_blob *b = &x->blobs[x->nblobs++];
                memcpy(b->hash, e->blob, 32);
                b->len = (size_t)ws_rb_var(&r, SIZE_MAX);
                b->data = ws_rb_bytes(&r, b->len);
                uint8_t real[32];
                if (!r.err) {
                    ws_blob_hash(real, b->data, b->len);
                    if (memcmp(real, b->hash, 32))
                        r.err = true;
                }
            }
            if (!r.err && !d->path)
                r.err = true;
            for (size_t k2 = 0; k2 < i && !r.err; k2++)
                if (!memcmp(x->docs[k2].uuid, d->uuid, 16))
                    r.err = true;
        }
    }
    if (r.err || r.off != r.n)
        return ws_error(ws, KITH_ECORRUPT, "change: malformed at byte %zu", r.off);
    return KITH_OK;
}

/* True when a file the change touches holds edits not recorded yet. */
static bool folder_ahead(kith_ws *ws, const xport *x)
{
    for (size_t i = 0; i < x->ndocs; i++) {
        ws_doc *d = ws_doc_by_uuid(ws, x->docs[i].uuid);
        if (!d || d->deleted || d->kind == WS_NOTE)
            continue;
        char path[PATH_MAX * 2];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", ws->root, d->path);
        if (lstat(path, &st) || d->mtime_ns == 0 || d->size != (int64_t)st.st_size ||
            d->ino != (int64_t)st.st_ino ||
            d->mtime_ns != (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec)
            return true;
    }
    return false;
}

static int held_seq(kith_ws *ws, const uint8_t key[32], uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    *out = 0;
    int rc = ws_prepare(ws, &st,
                        "SELECT COALESCE(MAX(r.seq + r.n - 1), 0) FROM change_runs r JOIN "
                        "authors a ON a.id=r.author WHERE a.key=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = ws_sqlerr(ws, src, "reading changes");
    sqlite3_finalize(st);
    return rc;
}

/* Applies a version 0 payload; with @author, it must be that author's
 * change @seq. */
static int apply_v0(kith_ws *ws, const uint8_t *author, uint64_t seq, const uint8_t *buf,
                    size_t len, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    xport x;
    uint64_t held = 0;
    int rc = parse_change(ws, buf, len, &x);
    if (!rc && author && (memcmp(x.authors[0].key, author, 32) || x.changes[0].seq != seq))
        rc = ws_error(ws, KITH_EAUTH, "the change names another author or seq than its sender");
    if (!rc)
        rc = held_seq(ws, x.authors[0].key, &held);
    if (!rc && x.changes[0].seq <= held) { /* had it already */
        xport_free(&x);
        return KITH_OK;
    }
    if (!rc && x.changes[0].seq > held + 1)
        rc = ws_error(ws, KITH_EMISSING, "change %llu of its author arrived before change %llu",
                      (unsigned long long)x.changes[0].seq, (unsigned long long)held + 1);
    if (!rc)
        rc = ws_docs_load(ws);
    if (!rc && folder_ahead(ws, &x)) {
        kith_ws_result scanned;
        rc = kith_ws_scan(ws, NULL, NULL, &scanned);
    }
    if (!rc)
        rc = merge_xport(ws, &x, cb, ctx, res);
    if (!rc)
        ws_change_hash(x.authors[0].key, (int64_t)x.changes[0].seq, res->change);
    xport_free(&x);
    return rc;
}

int kith_ws_apply_change(kith_ws *ws, const uint8_t *buf, size_t len, kith_ws_file_cb cb, void *ctx,
                         kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    if (ws_change_is_v1(buf, len))
        return ws_error(ws, KITH_EINVAL,
                        "a change of version 1 needs its author and seq "
                        "(kith_ws_apply_change_from)");
    return apply_v0(ws, NULL, 0, buf, len, cb, ctx, res);
}

int kith_ws_apply_change_from(kith_ws *ws, const uint8_t author[32], uint64_t seq,
                              const uint8_t *buf, size_t len, kith_ws_file_cb cb, void *ctx,
                              kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    if (!ws_change_is_v1(buf, len))
        return apply_v0(ws, author, seq, buf, len, cb, ctx, res);
    uint64_t held = 0;
    int rc = seq == 0 ? ws_error(ws, KITH_EINVAL, "a change's seq starts at 1")
                      : held_seq(ws, author, &held);
    if (rc || seq <= held) /* had it already */
        return rc;
    if (seq > held + 1)
        return ws_error(ws, KITH_EMISSING, "change %llu of its author arrived before change %llu",
                        (unsigned long long)seq, (unsigned long long)held + 1);
    uint8_t *v0 = NULL;
    size_t v0len = 0;
    rc = ws_change_unpack(ws, author, seq, buf, len, &v0, &v0len);
    if (!rc)
        rc = apply_v0(ws, author, seq, v0, v0len, cb, ctx, res);
    kith_free(v0);
    return rc;
}
