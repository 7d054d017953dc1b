/*
 * Building one change: the changes row, then per file an edits row and the
 * CRDT operations (as a delta appended to the document), all inside the
 * caller's transaction. What the change did is reported to the caller only
 * after ws_change_finish has committed it, so that "recorded" always means
 * durable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ws/textdiff.h"
#include "ws/ws_int.h"

typedef struct ws_event {
    int what;
    char *path, *old_path, *message;
    uint64_t ins, del;
    bool binary;
} ws_event;

struct ws_change {
    kith_ws *ws;
    int64_t id, seq, lamport, time_ms;
    char *via;
    char hash[KITH_WS_ID_HEX + 1];
    ws_event *ev;
    size_t nev, capev;
    size_t nfiles, nwarn;
};

int ws_change_begin(kith_ws *ws, ws_change **out, const char *via)
{
    *out = NULL;
    ws_change *c = kith_calloc(1, sizeof *c);
    if (!c)
        return KITH_ENOMEM;
    c->ws = ws;
    c->time_ms = ws_now_ms();
    if (via && !(c->via = kith_strndup(via, strlen(via)))) {
        kith_free(c);
        return KITH_ENOMEM;
    }
    *out = c;
    return KITH_OK;
}

/* The change's row, written when it first records something: a scan that
 * finds nothing writes nothing (no WAL frame, no fsync). */
static int change_row(ws_change *c)
{
    kith_ws *ws = c->ws;
    if (c->id)
        return KITH_OK;
    uint8_t key[32];
    if (ws_unhex(key, ws->device, 32))
        return ws_error(ws, KITH_ECORRUPT, "bad device id");
    int rc = ws_author_id(ws, key, ws->user, &ws->self);
    int64_t maxlamport = 0, doclamport = 0;
    if (!rc)
        rc = ws_change_last(ws, ws->self, &c->seq, &maxlamport);
    c->seq++;
    if (!rc)
        rc = ws_query_int(ws, "SELECT COALESCE(MAX(MAX(lamport), MAX(path_lamport)), 0) FROM docs",
                          -1, &doclamport);
    if (rc)
        return rc;
    c->lamport = (maxlamport > doclamport ? maxlamport : doclamport) + 1;
    ws_change_hash(key, c->seq, c->hash);
    ws_change_row row = {.author = ws->self,
                         .seq = c->seq,
                         .time_ms = c->time_ms,
                         .lamport = c->lamport,
                         .via = c->via};
    bool added = false;
    rc = ws_change_put(ws, &row, &added);
    if (!rc && !added)
        rc = ws_error(ws, KITH_ECORRUPT, "change %lld of this device is recorded already",
                      (long long)c->seq);
    if (!rc)
        c->id = row.id;
    return rc;
}

void ws_change_free(ws_change *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nev; i++) {
        kith_free(c->ev[i].path);
        kith_free(c->ev[i].old_path);
        kith_free(c->ev[i].message);
    }
    kith_free(c->ev);
    kith_free(c->via);
    kith_free(c);
}

size_t ws_change_files(const ws_change *c)
{
    return c->nfiles;
}

static int push_event(ws_change *c, int what, const char *path, const char *old_path, uint64_t ins,
                      uint64_t del, bool binary, const char *message)
{
    if (kith_grow((void **)&c->ev, &c->capev, c->nev + 1, sizeof *c->ev))
        return KITH_ENOMEM;
    ws_event *e = &c->ev[c->nev];
    memset(e, 0, sizeof *e);
    e->what = what;
    e->ins = ins;
    e->del = del;
    e->binary = binary;
    e->path = kith_strndup(path, strlen(path));
    if (old_path)
        e->old_path = kith_strndup(old_path, strlen(old_path));
    if (message)
        e->message = kith_strndup(message, strlen(message));
    c->nev++;
    if (!e->path || (old_path && !e->old_path) || (message && !e->message))
        return KITH_ENOMEM;
    if (what == KITH_WS_WARNING)
        c->nwarn++;
    else
        c->nfiles++;
    return KITH_OK;
}

int ws_change_warn(ws_change *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return push_event(c, KITH_WS_WARNING, path, NULL, 0, 0, false, msg);
}

typedef struct edit_row {
    int what;
    const char *path, *old_path;
    uint64_t ins, del, opseq, opcount;
    const char *version;
    const uint8_t *blob;
} edit_row;

static int insert_edit(ws_change *c, ws_doc *d, const edit_row *e)
{
    ws_edit ed = {.change = c->id,
                  .doc = d->id,
                  .what = e->what,
                  .kind = d->kind,
                  .path = e->path,
                  .old_path = e->old_path,
                  .ins = (int64_t)e->ins,
                  .del = (int64_t)e->del,
                  .opseq = (int64_t)e->opseq,
                  .opcount = (int64_t)e->opcount,
                  .version = e->version,
                  .blob = e->blob,
                  .blob_len = e->blob ? 32 : 0};
    return ws_edit_put(c->ws, &ed, true);
}

/* The frontier of @doc in the store's form ("author:seq,..."); caller
 * frees. */
int ws_doc_version_db(kith_ws *ws, kith_doc *doc, char **out)
{
    kith_id *v = NULL;
    size_t n = 0;
    char *full = NULL;
    int rc = kith_doc_version(doc, &v, &n);
    if (!rc)
        rc = kith_doc_version_str(doc, v, n, &full);
    if (!rc)
        rc = ws_version_to_db(ws, full, out);
    kith_free(v);
    kith_free(full);
    return rc;
}

static int apply_patches(kith_doc *doc, kith_agent agent, const kith_patch *p, size_t n,
                         uint64_t *ins, uint64_t *del)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (p[i].del && (rc = kith_doc_delete(doc, agent, p[i].pos, p[i].del)))
            return rc;
        if (p[i].ins_len && (rc = kith_doc_insert(doc, agent, p[i].pos, p[i].ins, p[i].ins_len)))
            return rc;
        *del += p[i].del;
        *ins += (uint64_t)kith_utf8_count(p[i].ins, p[i].ins_len);
    }
    return KITH_OK;
}

/* Stamps @d's registers with this change: existence (and binary content)
 * always, the path when the change names it anew. */
static void stamp(ws_change *c, ws_doc *d, int what)
{
    d->lamport = c->lamport;
    d->lamport_author = c->ws->self;
    if (what == KITH_WS_ADDED || what == KITH_WS_RENAMED) {
        d->path_lamport = c->lamport;
        d->path_author = c->ws->self;
    }
}

/* Saves @d's row, giving a new document its id first. */
static int save_doc(kith_ws *ws, ws_doc *d)
{
    return ws_doc_save_row(ws, d);
}

/* The end of recording a text edit: registers, the edits row, the
 * document's row, and what the change reports. */
static int record_edit(ws_change *c, ws_doc *d, const edit_row *e)
{
    stamp(c, d, e->what);
    int rc = insert_edit(c, d, e);
    if (!rc)
        rc = save_doc(c->ws, d);
    if (!rc)
        rc = push_event(c, e->what, d->path, e->old_path, e->ins, e->del, false, NULL);
    return rc;
}

/*
 * Records @d's new text @text (valid UTF-8): a character diff against the
 * recorded text, applied as this device's operations. @what is
 * KITH_WS_ADDED, MODIFIED, RENAMED (with @old_path) or RESTORED. A MODIFIED
 * with no difference records nothing but the stat (the caller's).
 */
int ws_change_text(ws_change *c, ws_doc *d, int what, const char *old_path, const char *text,
                   size_t len)
{
    kith_ws *ws = c->ws;
    kith_doc *doc = NULL;
    char *old = NULL, *version = NULL;
    uint8_t *summary = NULL, *delta = NULL;
    size_t oldlen = 0, sumlen = 0, deltalen = 0, npatch = 0;
    kith_patch *patches = NULL;
    uint64_t ins = 0, del = 0, opseq = 0, opend = 0;
    kith_agent agent;
    int rc = save_doc(ws, d);
    if (!rc)
        rc = ws_doc_crdt(ws, d, &doc);
    if (rc)
        return rc;
    /* CRDT and diff calls: their failures are worded here ("crdt_fail");
     * the store's own calls have set the message already ("fail"). */
    if ((rc = kith_doc_text(doc, &old, &oldlen)) ||
        (rc = ws_text_diff(old, oldlen, text, len, &patches, &npatch)))
        goto crdt_fail;
    if (npatch == 0 && what == KITH_WS_MODIFIED) {
        rc = save_doc(ws, d);
        goto done;
    }
    if ((rc = change_row(c)))
        goto done;
    if ((rc = kith_doc_summary(doc, &summary, &sumlen)) ||
        (rc = kith_doc_agent(doc, ws->agent, &agent)) ||
        (rc = kith_doc_agent_ops(doc, agent, &opseq)) ||
        (rc = apply_patches(doc, agent, patches, npatch, &ins, &del)) ||
        (npatch && (rc = kith_doc_commit(doc, c->time_ms, c->via))) ||
        (rc = kith_doc_agent_ops(doc, agent, &opend)))
        goto crdt_fail;
    if ((rc = ws_doc_version_db(ws, doc, &version)))
        goto done;
    if (npatch) {
        /* A document without a snapshot gets one: no delta to encode. */
        if (d->snap_bytes && (rc = kith_doc_encode_since(doc, summary, sumlen, &delta, &deltalen)))
            goto crdt_fail;
        if ((rc = ws_doc_append_delta(ws, d, delta, deltalen)))
            goto done;
    }
    edit_row e = {what, d->path, old_path, ins, del, opseq, opend - opseq, version, NULL};
    rc = record_edit(c, d, &e);
    goto done;
crdt_fail:
    ws_error(ws, rc, "%s: %s", d->path,
             doc && *kith_doc_errmsg(doc) ? kith_doc_errmsg(doc) : kith_strerror(rc));
done:
    kith_free(old);
    kith_free(version);
    kith_free(summary);
    kith_free(delta);
    kith_free(patches);
    return rc;
}

/* Applies @p (patches against the text at @base, each to the result of
 * the one before) as edits made at that version, then merges. */
static int edit_at_patches(kith_doc *doc, kith_agent agent, const kith_id *base, size_t nbase,
                           const kith_patch *p, size_t n, uint64_t *ins, uint64_t *del)
{
    kith_id last;
    bool chained = false;
    for (size_t i = 0; i < n; i++) {
        if (!p[i].del && !p[i].ins_len)
            continue;
        int rc = kith_doc_edit_at(doc, agent, chained ? &last : base, chained ? 1 : nbase, p[i].pos,
                                  p[i].del, p[i].ins, p[i].ins_len, &last);
        if (rc)
            return rc;
        chained = true;
        *del += p[i].del;
        *ins += (uint64_t)kith_utf8_count(p[i].ins, p[i].ins_len);
    }
    return kith_doc_merge(doc, NULL, 0);
}

/* Records @p (@n patches against the text at version @ids) as edits made at
 * that version, merged with everything recorded since; with @ids NULL, as
 * edits of the current text. */
static int record_patches_at(ws_change *c, ws_doc *d, kith_doc *doc, const kith_id *ids,
                             size_t nids, const kith_patch *p, size_t n)
{
    kith_ws *ws = c->ws;
    char *version = NULL;
    uint8_t *summary = NULL, *delta = NULL;
    size_t sumlen = 0, deltalen = 0;
    uint64_t ins = 0, del = 0, opseq = 0, opend = 0;
    kith_agent agent;
    int rc = change_row(c);
    if (rc)
        return rc;
    if ((rc = kith_doc_summary(doc, &summary, &sumlen)) ||
        (rc = kith_doc_agent(doc, ws->agent, &agent)) ||
        (rc = kith_doc_agent_ops(doc, agent, &opseq)) ||
        (rc = ids ? edit_at_patches(doc, agent, ids, nids, p, n, &ins, &del)
                  : apply_patches(doc, agent, p, n, &ins, &del)) ||
        (rc = kith_doc_commit(doc, c->time_ms, c->via)) ||
        (rc = kith_doc_agent_ops(doc, agent, &opend)) ||
        (rc = kith_doc_encode_since(doc, summary, sumlen, &delta, &deltalen))) {
        ws_error(ws, rc, "%s: %s", d->path,
                 *kith_doc_errmsg(doc) ? kith_doc_errmsg(doc) : kith_strerror(rc));
        goto done;
    }
    if ((rc = ws_doc_version_db(ws, doc, &version)) ||
        (rc = ws_doc_append_delta(ws, d, delta, deltalen)))
        goto done;
    edit_row e = {KITH_WS_MODIFIED, d->path, NULL, ins, del, opseq, opend - opseq, version, NULL};
    rc = record_edit(c, d, &e);
done:
    kith_free(version);
    kith_free(summary);
    kith_free(delta);
    return rc;
}

/*
 * Records @text as an edit of @d made at the past version @base (store
 * form): the file held @base's text when the user saved over it, while a
 * merge moved the recorded text on. The user's edit and the merged changes
 * are concurrent, and the CRDT merges them; nothing of either is lost.
 */
int ws_change_text_at(ws_change *c, ws_doc *d, const char *base, const char *text, size_t len)
{
    kith_ws *ws = c->ws;
    kith_doc *doc = NULL;
    kith_id *ids = NULL;
    size_t nids = 0, oldlen = 0, npatch = 0;
    char *old = NULL;
    kith_patch *patches = NULL;
    int rc = ws_doc_crdt(ws, d, &doc);
    if (!rc)
        rc = ws_version_ids(ws, doc, base, &ids, &nids);
    if (rc)
        return rc;
    if ((rc = kith_doc_text_at(doc, ids, nids, &old, &oldlen)) ||
        (rc = ws_text_diff(old, oldlen, text, len, &patches, &npatch)))
        ws_error(ws, rc, "%s: %s", d->path,
                 *kith_doc_errmsg(doc) ? kith_doc_errmsg(doc) : kith_strerror(rc));
    else if (npatch)
        rc = record_patches_at(c, d, doc, ids, nids, patches, npatch);
    kith_free(ids);
    kith_free(old);
    kith_free(patches);
    return rc;
}

/* Records @p (@n patches, each against the result of the one before) as
 * edits of @d's current text: an accepted suggestion, placed where it was
 * found to be anchored now. */
int ws_change_patch(ws_change *c, ws_doc *d, const kith_patch *p, size_t n)
{
    kith_doc *doc = NULL;
    int rc = ws_doc_crdt(c->ws, d, &doc);
    return rc ? rc : record_patches_at(c, d, doc, NULL, 0, p, n);
}

/* Records a whole-file version of binary (or oversized) document @d. */
int ws_change_binary(ws_change *c, ws_doc *d, int what, const char *old_path, const uint8_t *data,
                     size_t len)
{
    kith_ws *ws = c->ws;
    uint8_t h[32];
    ws_blob_hash(h, data, len);
    if (what == KITH_WS_MODIFIED && d->kind == WS_BINARY && !memcmp(h, d->blob, 32))
        return save_doc(ws, d);
    int rc = change_row(c);
    if (!rc)
        rc = ws_blob_put(ws, h, data, len);
    if (rc)
        return rc;
    memcpy(d->blob, h, 32);
    d->kind = WS_BINARY;
    stamp(c, d, what);
    if ((rc = save_doc(ws, d)))
        return rc;
    edit_row e = {what, d->path, old_path, 0, 0, 0, 0, NULL, h};
    if ((rc = insert_edit(c, d, &e)))
        return rc;
    return push_event(c, what, d->path, old_path, 0, 0, true, NULL);
}

/* Records a change of @d's path or existence without new content. */
int ws_change_meta(ws_change *c, ws_doc *d, int what, const char *old_path)
{
    kith_ws *ws = c->ws;
    char *version = NULL;
    int rc = change_row(c);
    if (rc)
        return rc;
    stamp(c, d, what);
    rc = save_doc(ws, d);
    if (!rc && d->kind == WS_TEXT) {
        kith_doc *doc = NULL;
        if (!(rc = ws_doc_crdt(ws, d, &doc)))
            rc = ws_doc_version_db(ws, doc, &version);
    }
    if (!rc) {
        edit_row e = {
            what, d->path, old_path, 0, 0, 0, 0, version, d->kind == WS_BINARY ? d->blob : NULL};
        rc = insert_edit(c, d, &e);
    }
    kith_free(version);
    if (!rc)
        rc = push_event(c, what, d->path, old_path, 0, 0, d->kind == WS_BINARY, NULL);
    return rc;
}

/* Commits the transaction (dropping the change row when it holds nothing)
 * and only then reports what was recorded. */
int ws_change_finish(ws_change *c, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    kith_ws *ws = c->ws;
    int rc = KITH_OK;
    if (c->id && c->nfiles == 0) { /* a row, yet nothing in it */
        rc = ws_change_drop(ws, c->id);
    }
    if (!rc)
        rc = ws_commit_tx(ws);
    if (rc)
        return rc;
    if (res) {
        snprintf(res->change, sizeof res->change, "%s", c->nfiles ? c->hash : "");
        res->files = c->nfiles;
        res->warnings = c->nwarn;
    }
    for (size_t i = 0; cb && i < c->nev; i++) {
        ws_event *e = &c->ev[i];
        kith_ws_file f = {(enum kith_ws_what)e->what,
                          e->path,
                          e->old_path,
                          e->ins,
                          e->del,
                          e->binary,
                          e->message};
        cb(&f, ctx);
    }
    return KITH_OK;
}
