/*
 * The documents of a workspace in memory: every row of the docs table,
 * loaded once per transaction (and again only when another process has
 * written the store, which PRAGMA data_version tells), with a hash on the
 * live paths so that a scan's stat comparison is one probe per file. A text
 * document's CRDT is loaded on first use from its snapshot and the deltas
 * appended since; when those deltas grow past a share of the snapshot they
 * are folded into a new one (compaction), so loading stays cheap and the
 * store stays close to the size of the CRDT encoding.
 */
#include <string.h>

#include "ws/ws_int.h"

#define COMPACT_DELTAS    1024 /* deltas before a new snapshot (bounds load time) */
#define COMPACT_MIN_BYTES 8192 /* ... or bytes beyond an eighth of the snapshot */
#define SNAPSHOT_LEVEL    9    /* zstd: within a few % of 19's size, several times faster */

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void doc_free(ws_doc *d)
{
    if (!d)
        return;
    kith_doc_free(d->crdt);
    kith_free(d->path);
    kith_free(d);
}

void ws_docs_free(kith_ws *ws)
{
    for (size_t i = 0; i < ws->ndocs; i++)
        doc_free(ws->docs[i]);
    kith_free(ws->docs);
    kith_free(ws->pathtab);
    ws->docs = NULL;
    ws->pathtab = NULL;
    ws->ndocs = ws->capdocs = ws->pathcap = 0;
    ws->docs_loaded = false;
}

/* After a failed transaction the in-memory CRDTs may hold operations the
 * store does not: drop everything and load again next time. */
void ws_docs_forget_crdt(kith_ws *ws)
{
    ws_docs_free(ws);
}

static int pathtab_rebuild(kith_ws *ws)
{
    size_t cap = 64;
    while (cap < ws->ndocs * 2 + 16)
        cap *= 2;
    size_t *tab = kith_calloc(cap, sizeof *tab);
    if (!tab)
        return KITH_ENOMEM;
    kith_free(ws->pathtab);
    ws->pathtab = tab;
    ws->pathcap = cap;
    for (size_t i = 0; i < ws->ndocs; i++) {
        if (ws->docs[i]->deleted)
            continue;
        size_t h = path_hash(ws->docs[i]->path) & (cap - 1);
        while (tab[h])
            h = (h + 1) & (cap - 1);
        tab[h] = i + 1;
    }
    return KITH_OK;
}

ws_doc *ws_doc_by_path(kith_ws *ws, const char *path)
{
    if (!ws->pathcap)
        return NULL;
    size_t h = path_hash(path) & (ws->pathcap - 1);
    while (ws->pathtab[h]) {
        ws_doc *d = ws->docs[ws->pathtab[h] - 1];
        if (!d->deleted && !strcmp(d->path, path))
            return d;
        h = (h + 1) & (ws->pathcap - 1);
    }
    return NULL;
}

/* The most recently changed deleted document last named @path. */
ws_doc *ws_doc_deleted_by_path(kith_ws *ws, const char *path)
{
    ws_doc *best = NULL;
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->deleted && !strcmp(d->path, path) && (!best || d->lamport > best->lamport))
            best = d;
    }
    return best;
}

ws_doc *ws_doc_by_uuid(kith_ws *ws, const uint8_t uuid[16])
{
    for (size_t i = 0; i < ws->ndocs; i++)
        if (!memcmp(ws->docs[i]->uuid, uuid, 16))
            return ws->docs[i];
    return NULL;
}

static int push_doc(kith_ws *ws, ws_doc *d)
{
    if (kith_grow((void **)&ws->docs, &ws->capdocs, ws->ndocs + 1, sizeof *ws->docs))
        return KITH_ENOMEM;
    ws->docs[ws->ndocs++] = d;
    return KITH_OK;
}

/* Adds a new document (its row is written by ws_doc_save_row). */
int ws_doc_add(kith_ws *ws, ws_doc *d)
{
    int rc = push_doc(ws, d);
    if (!rc && ws->ndocs * 2 + 16 > ws->pathcap)
        return pathtab_rebuild(ws);
    if (!rc && !d->deleted) {
        size_t h = path_hash(d->path) & (ws->pathcap - 1);
        while (ws->pathtab[h])
            h = (h + 1) & (ws->pathcap - 1);
        ws->pathtab[h] = ws->ndocs;
    }
    return rc;
}

/* Renames, deletes or brings back @d in memory; the row is saved later. */
int ws_doc_set_path(kith_ws *ws, ws_doc *d, const char *path, bool deleted)
{
    if (path != d->path) {
        char *p = kith_strndup(path, strlen(path));
        if (!p)
            return KITH_ENOMEM;
        kith_free(d->path);
        d->path = p;
    }
    d->deleted = deleted;
    return pathtab_rebuild(ws);
}

static int64_t data_version(kith_ws *ws)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (ws_prepare(ws, &st, "PRAGMA data_version"))
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int load_row(kith_ws *ws, sqlite3_stmt *st)
{
    ws_doc *d = kith_calloc(1, sizeof *d);
    if (!d)
        return KITH_ENOMEM;
    d->id = sqlite3_column_int64(st, 0);
    if (sqlite3_column_bytes(st, 1) == 16)
        memcpy(d->uuid, sqlite3_column_blob(st, 1), 16);
    d->kind = sqlite3_column_int(st, 2);
    const char *path = (const char *)sqlite3_column_text(st, 3);
    d->path = kith_strndup(path ? path : "", path ? strlen(path) : 0);
    d->deleted = sqlite3_column_int(st, 4) != 0;
    d->lamport = sqlite3_column_int64(st, 5);
    d->lamport_author = sqlite3_column_int64(st, 6);
    if (sqlite3_column_bytes(st, 7) == 32)
        memcpy(d->blob, sqlite3_column_blob(st, 7), 32);
    d->size = sqlite3_column_int64(st, 8);
    d->mtime_ns = sqlite3_column_int64(st, 9);
    d->ino = sqlite3_column_int64(st, 10);
    d->dev = sqlite3_column_int64(st, 11);
    d->snap_bytes = sqlite3_column_int64(st, 12);
    d->path_lamport = sqlite3_column_int64(st, 13);
    d->path_author = sqlite3_column_int64(st, 14);
    if (!d->path || push_doc(ws, d)) {
        doc_free(d);
        return KITH_ENOMEM;
    }
    return KITH_OK;
}

/* Loads the docs table, unless what is in memory is still current. */
int ws_docs_load(kith_ws *ws)
{
    int64_t v = data_version(ws);
    if (ws->docs_loaded && v == ws->data_version)
        return KITH_OK;
    ws_docs_free(ws);
    sqlite3_stmt *st = NULL;
    int rc =
        ws_prepare(ws, &st,
                   "SELECT id, uuid, kind, path, deleted, lamport, lamport_author, blob, "
                   "size, mtime_ns, ino, dev, length(snap), path_lamport, path_author FROM docs "
                   "ORDER BY id");
    if (rc)
        return rc;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && !rc)
        rc = load_row(ws, st);
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading documents");
    sqlite3_finalize(st);
    if (!rc)
        rc = pathtab_rebuild(ws);
    if (!rc) {
        ws->docs_loaded = true;
        ws->data_version = v;
    } else {
        ws_docs_free(ws);
    }
    return rc;
}

static int load_deltas(kith_ws *ws, ws_doc *d, kith_doc *doc)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT data FROM deltas WHERE doc=? ORDER BY id");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        rc = kith_doc_apply(doc, sqlite3_column_blob(st, 0), n);
        if (rc)
            rc = ws_error(ws, KITH_ECORRUPT, "%s: a stored change does not apply (%s)", d->path,
                          kith_doc_errmsg(doc));
        d->ndeltas++;
        d->delta_bytes += (int64_t)n;
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading changes");
    sqlite3_finalize(st);
    return rc;
}

/* The CRDT of text document @d, loaded on first use; borrowed from @d. */
int ws_doc_crdt(kith_ws *ws, ws_doc *d, kith_doc **out)
{
    if (d->crdt) {
        *out = d->crdt;
        return KITH_OK;
    }
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT snap FROM docs WHERE id=?");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    kith_doc *doc = NULL;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
        rc = kith_doc_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &doc);
        if (rc)
            rc = ws_error(ws, KITH_ECORRUPT, "%s: the stored document is corrupt (%s)", d->path,
                          kith_strerror(rc));
    } else if (src == SQLITE_ROW || src == SQLITE_DONE) {
        rc = kith_doc_new(&doc);
    } else {
        rc = ws_sqlerr(ws, src, "reading a document");
    }
    sqlite3_finalize(st);
    d->ndeltas = d->delta_bytes = 0;
    if (!rc)
        rc = load_deltas(ws, d, doc);
    if (rc) {
        kith_doc_free(doc);
        return rc;
    }
    *out = d->crdt = doc;
    return KITH_OK;
}

static int compact(kith_ws *ws, ws_doc *d)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    int rc = kith_doc_encode_level(d->crdt, SNAPSHOT_LEVEL, &enc, &len);
    if (rc)
        return ws_error(ws, rc, "%s: encoding: %s", d->path, kith_doc_errmsg(d->crdt));
    sqlite3_stmt *st = NULL;
    if (!(rc = ws_prepare(ws, &st, "UPDATE docs SET snap=? WHERE id=?"))) {
        sqlite3_bind_blob64(st, 1, enc, len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, d->id);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = ws_sqlerr(ws, src, "writing a document");
        sqlite3_finalize(st);
    }
    kith_free(enc);
    if (!rc && !(rc = ws_prepare(ws, &st, "DELETE FROM deltas WHERE doc=?"))) {
        sqlite3_bind_int64(st, 1, d->id);
        int src = sqlite3_step(st);
        if (src != SQLITE_DONE)
            rc = ws_sqlerr(ws, src, "writing a document");
        sqlite3_finalize(st);
    }
    if (!rc) {
        d->snap_bytes = (int64_t)len;
        d->ndeltas = d->delta_bytes = 0;
    }
    return rc;
}

/* Stores the operations a change added to @d's CRDT, folding the deltas
 * into a new snapshot when they have grown large. */
int ws_doc_append_delta(kith_ws *ws, ws_doc *d, const uint8_t *delta, size_t len)
{
    d->ndeltas++;
    d->delta_bytes += (int64_t)len;
    if (d->ndeltas > COMPACT_DELTAS || d->delta_bytes > d->snap_bytes / 8 + COMPACT_MIN_BYTES ||
        d->snap_bytes == 0)
        return compact(ws, d);
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "INSERT INTO deltas(doc, data) VALUES(?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_blob64(st, 2, delta, len, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing a change");
    sqlite3_finalize(st);
    return rc;
}

/* Inserts or updates @d's row (all but the snapshot). */
int ws_doc_save_row(kith_ws *ws, ws_doc *d)
{
    sqlite3_stmt *st = NULL;
    int rc =
        ws_prepare(ws, &st,
                   d->id ? "UPDATE docs SET uuid=?1, kind=?2, path=?3, deleted=?4, lamport=?5, "
                           "lamport_author=?6, blob=?7, size=?8, mtime_ns=?9, ino=?10, "
                           "dev=?11, path_lamport=?13, path_author=?14 WHERE id=?12"
                         : "INSERT INTO docs(uuid, kind, path, deleted, lamport, "
                           "lamport_author, blob, size, mtime_ns, ino, dev, path_lamport, "
                           "path_author) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, ?14)");
    if (rc)
        return rc;
    static const uint8_t zero[32];
    sqlite3_bind_blob(st, 1, d->uuid, 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, d->kind);
    sqlite3_bind_text(st, 3, d->path, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, d->deleted);
    sqlite3_bind_int64(st, 5, d->lamport);
    sqlite3_bind_int64(st, 6, d->lamport_author);
    if (memcmp(d->blob, zero, 32))
        sqlite3_bind_blob(st, 7, d->blob, 32, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, d->size);
    sqlite3_bind_int64(st, 9, d->mtime_ns);
    sqlite3_bind_int64(st, 10, d->ino);
    sqlite3_bind_int64(st, 11, d->dev);
    if (d->id)
        sqlite3_bind_int64(st, 12, d->id);
    sqlite3_bind_int64(st, 13, d->path_lamport);
    sqlite3_bind_int64(st, 14, d->path_author);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing a document");
    else if (!d->id)
        d->id = sqlite3_last_insert_rowid(ws->db);
    sqlite3_finalize(st);
    return rc;
}

/* Saves only the stat cache of @d (a file touched but not changed). */
int ws_doc_save_stat(kith_ws *ws, ws_doc *d)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "UPDATE docs SET size=?, mtime_ns=?, ino=?, dev=? WHERE id=?");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, d->size);
    sqlite3_bind_int64(st, 2, d->mtime_ns);
    sqlite3_bind_int64(st, 3, d->ino);
    sqlite3_bind_int64(st, 4, d->dev);
    sqlite3_bind_int64(st, 5, d->id);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "writing a document");
    sqlite3_finalize(st);
    return rc;
}
