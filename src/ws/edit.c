/*
 * Programmatic edits (a tool, or the on-device model writing on a person's
 * behalf): kith_ws_edit gathers the new text of each document in memory,
 * kith_ws_commit records them as one change with its "via" tag and writes
 * the files. Recording goes through the same character diff as a scan, so
 * the operations are the same as if the person had typed the text.
 */
#include <string.h>

#include "ws/ws_int.h"

static struct ws_pending *pending_of(kith_ws *ws, const uint8_t uuid[16])
{
    for (size_t i = 0; i < ws->npend; i++)
        if (!memcmp(ws->pend[i].uuid, uuid, 16))
            return &ws->pend[i];
    return NULL;
}

static void pending_clear(kith_ws *ws)
{
    for (size_t i = 0; i < ws->npend; i++)
        kith_free(ws->pend[i].text);
    ws->npend = 0;
}

/* Byte offset of code point @cp in @s (@len bytes), or -1 past the end. */
static long cp_offset(const char *s, size_t len, size_t cp)
{
    size_t off = 0;
    for (size_t i = 0; i < cp; i++) {
        if (off >= len)
            return -1;
        off++;
        while (off < len && ((uint8_t)s[off] & 0xC0) == 0x80)
            off++;
    }
    return (long)off;
}

/* The first edit of a document checks that the file holds what was
 * recorded: an edit on top of unrecorded changes would overwrite them. */
int ws_check_unchanged(kith_ws *ws, ws_doc *d, const char *text, size_t len)
{
    char *file = NULL;
    size_t flen = 0;
    int rc = ws_read_file(ws, d->path, &file, &flen, NULL);
    if (rc)
        return rc;
    bool same = flen == len && !memcmp(file, text, len);
    kith_free(file);
    return same ? KITH_OK
                : ws_error(ws, KITH_EBUSY,
                           "%s has edits kith has not recorded yet; run 'kith status' first",
                           d->path);
}

int kith_ws_edit(kith_ws *ws, const char *path, size_t pos, size_t del, const char *ins,
                 size_t ins_len)
{
    ws->err[0] = 0;
    char *rel = NULL, *base = NULL;
    size_t blen = 0;
    int rc = ws_path_check(ws, path, &rel);
    if (!rc)
        rc = ws_docs_load(ws);
    ws_doc *d = rc ? NULL : ws_doc_by_path(ws, rel);
    kith_free(rel);
    if (rc)
        return rc;
    if (!d || d->kind != WS_TEXT)
        return ws_error(ws, d ? KITH_EUNSUPPORTED : KITH_ENOTFOUND,
                        d ? "%s: a binary file cannot be edited as text"
                          : "%s: no such text document (run 'kith status' to record new files)",
                        path);
    if (kith_utf8_count(ins ? ins : "", ins_len) < 0)
        return ws_error(ws, KITH_EUTF8, "the inserted text is not UTF-8");
    struct ws_pending *p = pending_of(ws, d->uuid);
    const char *cur = p ? p->text : NULL;
    size_t curlen = p ? p->len : 0;
    if (!p) {
        kith_doc *doc = NULL;
        if ((rc = ws_doc_crdt(ws, d, &doc)) || (rc = kith_doc_text(doc, &base, &blen)))
            return rc;
        cur = base;
        curlen = blen;
    }
    long a = cp_offset(cur, curlen, pos);
    long b = a < 0 ? -1 : cp_offset(cur + a, curlen - (size_t)a, del);
    if (a < 0 || b < 0) {
        kith_free(base);
        return ws_error(ws, KITH_ERANGE, "%s: edit at %zu+%zu is past the end of the text", path,
                        pos, del);
    }
    if (!p && (rc = ws_check_unchanged(ws, d, base, blen))) {
        kith_free(base);
        return rc;
    }
    size_t nlen = curlen - (size_t)b + ins_len;
    char *t = kith_malloc(nlen + 1);
    if (!t) {
        kith_free(base);
        return KITH_ENOMEM;
    }
    memcpy(t, cur, (size_t)a);
    if (ins_len)
        memcpy(t + a, ins, ins_len);
    memcpy(t + a + ins_len, cur + a + b, curlen - (size_t)a - (size_t)b);
    t[nlen] = 0;
    kith_free(base);
    if (!p) {
        if (kith_grow((void **)&ws->pend, &ws->cappend, ws->npend + 1, sizeof *ws->pend)) {
            kith_free(t);
            return KITH_ENOMEM;
        }
        p = &ws->pend[ws->npend++];
        memcpy(p->uuid, d->uuid, 16);
        p->text = NULL;
    }
    kith_free(p->text);
    p->text = t;
    p->len = nlen;
    return KITH_OK;
}

int kith_ws_commit(kith_ws *ws, const char *via, kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    if (!ws->npend)
        return KITH_OK;
    ws_change *c = NULL;
    int rc = ws_begin(ws);
    if (!rc)
        rc = ws_docs_load(ws);
    if (!rc)
        rc = ws_change_begin(ws, &c, via);
    for (size_t i = 0; !rc && i < ws->npend; i++) {
        ws_doc *d = ws_doc_by_uuid(ws, ws->pend[i].uuid);
        struct stat st;
        if (!d || d->deleted) {
            rc = ws_error(ws, KITH_ENOTFOUND, "an edited document was deleted meanwhile");
            break;
        }
        /* Time passes between edits and commit (a model generating):
         * the file must still hold what was recorded. */
        kith_doc *doc = NULL;
        char *recorded = NULL;
        size_t rlen = 0;
        if (!(rc = ws_doc_crdt(ws, d, &doc)) && !(rc = kith_doc_text(doc, &recorded, &rlen)))
            rc = ws_check_unchanged(ws, d, recorded, rlen);
        kith_free(recorded);
        if (rc || (rc = ws_write_file(ws, d->path, ws->pend[i].text, ws->pend[i].len, &st)))
            break;
        d->size = (int64_t)st.st_size;
        d->mtime_ns = 0;
        d->ino = (int64_t)st.st_ino;
        d->dev = (int64_t)st.st_dev;
        rc = ws_change_text(c, d, KITH_WS_MODIFIED, NULL, ws->pend[i].text, ws->pend[i].len);
    }
    if (!rc)
        rc = ws_change_finish(c, NULL, NULL, res);
    ws_change_free(c);
    if (rc) {
        ws_rollback(ws);
        ws_docs_forget_crdt(ws);
    }
    pending_clear(ws);
    return rc;
}
