/*
 * Suggestions and comments ("notes"). A note is a small text document of
 * kind WS_NOTE named .kith/notes/<uuid>, never written to the folder, so
 * that it is recorded, exported and synced by the machinery every document
 * goes through, and its author is the author of the change that added it.
 * Its text (docs/FORMAT.md, "Notes") says which document it is about, that
 * document's version when it was made (portable ids) and the code points
 * of the anchored text in that version.
 *
 * Where a note is now is found through the CRDT, not by searching for its
 * text: the patches from its version to the current one (operation-exact,
 * because that version is an ancestor) carry its points along, and a
 * deletion of anchored or replaced text, or an insertion into replaced
 * text, makes it stale. Accepting a suggestion edits the current text at
 * the point found, right after the anchored text: before anything a
 * teammate typed at that point meanwhile, which a listing shows too.
 *
 * A note is open while it lives; accept and reject delete it (an accepted
 * one in the same change that inserts its text, which is how a listing
 * tells the two apart later).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/ws_int.h"

#define NOTE_DIR   ".kith/notes/"
#define NOTE_MAGIC "kith-note 1\n"
#define NOTE_MAX   (1u << 20) /* bytes of a note's text */

bool ws_note_path_ok(const char *path, const uint8_t uuid[16])
{
    char hex[33];
    ws_hex(hex, uuid, 16);
    return !strncmp(path, NOTE_DIR, sizeof NOTE_DIR - 1) &&
           !strcmp(path + sizeof NOTE_DIR - 1, hex);
}

/* ---- the note's text ---------------------------------------------------- */

typedef struct note {
    int type;
    uint8_t doc[16];
    char *base; /* "agent:seq,..." */
    size_t pos, len, del;
    char *via;
    char *content; /* owns the text below */
    const char *text;
    size_t text_len;
} note;

static void note_free(note *n)
{
    kith_free(n->base);
    kith_free(n->via);
    kith_free(n->content);
    memset(n, 0, sizeof *n);
}

static int note_format(const note *n, const char *text, size_t len, char **out, size_t *outlen)
{
    char hex[33];
    ws_hex(hex, n->doc, 16);
    size_t head = 256 + strlen(n->base) + (n->via ? strlen(n->via) : 0);
    char *s = kith_malloc(head + len + 1);
    if (!s)
        return KITH_ENOMEM;
    int k =
        snprintf(s, head, NOTE_MAGIC "type %s\ndoc %s\nbase %s\nanchor %zu %zu\ndel %zu\n%s%s%s\n",
                 n->type == KITH_WS_COMMENT ? "comment" : "suggestion", hex, n->base, n->pos,
                 n->len, n->del, n->via ? "via " : "", n->via ? n->via : "", n->via ? "\n" : "");
    memcpy(s + k, text, len);
    s[(size_t)k + len] = 0;
    *out = s;
    *outlen = (size_t)k + len;
    return KITH_OK;
}

static char *dup_line_value(const char *v, size_t n)
{
    return kith_strndup(v, n);
}

/* Parses a note's text (any peer's: every field checked). Takes @content. */
static int note_parse(char *content, size_t len, note *n)
{
    memset(n, 0, sizeof *n);
    n->content = content;
    n->type = -1;
    bool have_doc = false, have_anchor = false;
    if (len < sizeof NOTE_MAGIC - 1 || memcmp(content, NOTE_MAGIC, sizeof NOTE_MAGIC - 1))
        goto bad;
    const char *p = content + sizeof NOTE_MAGIC - 1, *end = content + len;
    while (p < end && *p != '\n') {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            goto bad;
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        size_t klen = sp ? (size_t)(sp - p) : (size_t)(nl - p);
        const char *v = sp ? sp + 1 : nl;
        size_t vlen = (size_t)(nl - v);
        char buf[64];
        if (klen == 4 && !memcmp(p, "type", 4)) {
            n->type = vlen == 7 && !memcmp(v, "comment", 7)        ? KITH_WS_COMMENT
                      : vlen == 10 && !memcmp(v, "suggestion", 10) ? KITH_WS_SUGGESTION
                                                                   : -1;
        } else if (klen == 3 && !memcmp(p, "doc", 3)) {
            if (vlen != 32 || ws_unhex(n->doc, v, 16))
                goto bad;
            have_doc = true;
        } else if (klen == 4 && !memcmp(p, "base", 4)) {
            kith_free(n->base);
            if (!(n->base = dup_line_value(v, vlen)))
                return KITH_ENOMEM;
        } else if ((klen == 6 && !memcmp(p, "anchor", 6)) || (klen == 3 && !memcmp(p, "del", 3))) {
            if (vlen >= sizeof buf)
                goto bad;
            memcpy(buf, v, vlen);
            buf[vlen] = 0;
            unsigned long long a = 0, b = 0;
            int used = 0;
            if (klen == 6 && sscanf(buf, "%llu %llu%n", &a, &b, &used) == 2 &&
                (size_t)used == vlen && a <= UINT32_MAX && b <= UINT32_MAX) {
                n->pos = (size_t)a;
                n->len = (size_t)b;
                have_anchor = true;
            } else if (klen == 3 && sscanf(buf, "%llu%n", &a, &used) == 1 && (size_t)used == vlen &&
                       a <= UINT32_MAX) {
                n->del = (size_t)a;
            } else {
                goto bad;
            }
        } else if (klen == 3 && !memcmp(p, "via", 3)) {
            kith_free(n->via);
            if (vlen > 255 || !(n->via = dup_line_value(v, vlen)))
                goto bad;
        } /* other keys: a later kith's; ignored */
        p = nl + 1;
    }
    if (p >= end || n->type < 0 || !have_doc || !have_anchor || !n->base)
        goto bad;
    n->text = p + 1;
    n->text_len = (size_t)(end - p - 1);
    return KITH_OK;
bad:
    return KITH_ECORRUPT;
}

static int note_load(kith_ws *ws, ws_doc *nd, note *n)
{
    kith_doc *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = ws_doc_crdt(ws, nd, &doc);
    if (!rc)
        rc = kith_doc_text(doc, &text, &len);
    if (rc)
        return rc;
    rc = note_parse(text, len, n);
    if (rc == KITH_ECORRUPT)
        ws_error(ws, rc, "note %.8s: malformed", nd->path + sizeof NOTE_DIR - 1);
    if (rc)
        note_free(n);
    return rc;
}

/* ---- where a note is now ------------------------------------------------- */

typedef struct where {
    bool known; /* the note's version is held here (false until synced) */
    bool stale;
    /* Points in the text: the anchored text is [pos, mid), the suggestion
     * goes at mid, the text it replaces is [rs, end) (rs == mid until a
     * teammate types between the two). */
    size_t pos, mid, rs, end;
    size_t line;
    char *anchor; /* the anchored text at the note's version */
    size_t anchor_len;
    kith_id *ids; /* the note's version */
    size_t nids;
} where;

static void where_free(where *w)
{
    kith_free(w->anchor);
    kith_free(w->ids);
}

/* Byte offset of code point @cp in @s, or -1 past the end. */
static long cp_byte(const char *s, size_t len, size_t cp)
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

/* Carries the note's points through one patch (its deletion, then its
 * insertion, as kith_patch applies them). */
static void carry(where *w, const kith_patch *p)
{
    if (p->del) {
        size_t a = p->pos, b = p->pos + p->del;
        if ((a < w->mid && b > w->pos) || (a < w->end && b > w->rs)) {
            w->stale = true; /* anchored or replaced text deleted */
            return;
        }
        size_t *pts[] = {&w->pos, &w->mid, &w->rs, &w->end};
        for (size_t i = 0; i < 4; i++)
            if (b <= *pts[i])
                *pts[i] -= p->del;
    }
    size_t ins = p->ins_len ? (size_t)kith_utf8_count(p->ins, p->ins_len) : 0, x = p->pos;
    if (!ins)
        return;
    if (x > w->rs && x < w->end) {
        w->stale = true; /* the replaced text was edited */
        return;
    }
    /* Text typed right at a point: before the anchored text, after the
     * insertion point, before the replaced text. */
    bool empty_anchor = w->pos == w->mid, empty_repl = w->rs == w->end;
    if (x < w->pos || (x == w->pos && !empty_anchor))
        w->pos += ins;
    if (x < w->mid)
        w->mid += ins;
    if (x <= w->rs)
        w->rs += ins;
    if (x < w->end || (x == w->end && empty_repl))
        w->end += ins;
}

static int locate(kith_ws *ws, ws_doc *td, const note *n, where *w)
{
    memset(w, 0, sizeof *w);
    kith_doc *doc = NULL;
    char *btext = NULL, *cur = NULL;
    size_t blen = 0, curlen = 0, np = 0, ncur = 0;
    kith_patch *p = NULL;
    kith_id *cv = NULL;
    int rc = ws_doc_crdt(ws, td, &doc);
    if (rc)
        return rc;
    if (kith_doc_version_parse(doc, n->base, &w->ids, &w->nids))
        return KITH_OK; /* operations not here yet: not known */
    if ((rc = kith_doc_text_at(doc, w->ids, w->nids, &btext, &blen)))
        goto out;
    long a = cp_byte(btext, blen, n->pos);
    long b = a < 0 ? -1 : cp_byte(btext, blen, n->pos + n->len);
    long e = b < 0 ? -1 : cp_byte(btext, blen, n->pos + n->len + n->del);
    if (e < 0) { /* a peer's note that does not fit its own version */
        w->known = true;
        w->stale = true;
        goto out;
    }
    w->anchor_len = (size_t)(b - a);
    if (!(w->anchor = kith_strndup(btext + a, w->anchor_len))) {
        rc = KITH_ENOMEM;
        goto out;
    }
    w->known = true;
    w->pos = n->pos;
    w->mid = w->rs = n->pos + n->len;
    w->end = w->mid + n->del;
    if ((rc = kith_doc_version(doc, &cv, &ncur)) ||
        (rc = kith_doc_diff(doc, w->ids, w->nids, cv, ncur, &p, &np)))
        goto out;
    for (size_t i = 0; i < np && !w->stale; i++)
        carry(w, &p[i]);
    if ((rc = kith_doc_text(doc, &cur, &curlen)))
        goto out;
    const char *text = w->stale ? btext : cur;
    size_t tlen = w->stale ? blen : curlen;
    long m = cp_byte(text, tlen, w->stale ? n->pos + n->len : w->mid);
    w->line = 1;
    for (long i = 0; i < (m < 0 ? (long)tlen : m); i++)
        w->line += text[i] == '\n';
out:
    kith_free(btext);
    kith_free(cur);
    kith_free(p);
    kith_free(cv);
    return rc;
}

/* ---- adding -------------------------------------------------------------- */

static int spec_check(kith_ws *ws, const kith_ws_note_spec *s)
{
    if (!s || !s->path || (s->type != KITH_WS_SUGGESTION && s->type != KITH_WS_COMMENT))
        return ws_error(ws, KITH_EINVAL, "a note needs a type and a path");
    if (s->text_len > NOTE_MAX)
        return ws_error(ws, KITH_ETOOBIG, "a note's text is limited to %u bytes", NOTE_MAX);
    if (kith_utf8_count(s->text ? s->text : "", s->text_len) < 0)
        return ws_error(ws, KITH_EUTF8, "the note's text is not UTF-8");
    if (s->type == KITH_WS_SUGGESTION ? !s->text_len && !s->del : !s->text_len)
        return ws_error(ws, KITH_EINVAL, "an empty %s",
                        s->type == KITH_WS_COMMENT ? "comment" : "suggestion");
    if (s->type == KITH_WS_COMMENT && s->del)
        return ws_error(ws, KITH_EINVAL, "a comment replaces nothing");
    if (s->via && (strlen(s->via) > 255 || strchr(s->via, '\n')))
        return ws_error(ws, KITH_EINVAL, "bad via tag");
    return KITH_OK;
}

/* The new note's document, added to the table (saved with its text). */
static int note_doc_new(kith_ws *ws, ws_doc **out)
{
    ws_doc *d = kith_calloc(1, sizeof *d);
    char hex[33];
    if (!d || !(d->path = kith_malloc(sizeof NOTE_DIR + 32))) {
        kith_free(d);
        return KITH_ENOMEM;
    }
    randombytes_buf(d->uuid, 16);
    ws_hex(hex, d->uuid, 16);
    snprintf(d->path, sizeof NOTE_DIR + 32, NOTE_DIR "%s", hex);
    d->kind = WS_NOTE;
    d->seen = true;
    int rc = ws_doc_add(ws, d);
    if (rc) {
        kith_free(d->path);
        kith_free(d);
        return rc;
    }
    *out = d;
    return KITH_OK;
}

int kith_ws_note_add(kith_ws *ws, const kith_ws_note_spec *spec, char id[KITH_WS_ID_HEX + 1])
{
    ws->err[0] = 0;
    if (id)
        id[0] = 0;
    int rc = spec_check(ws, spec);
    if (rc)
        return rc;
    char *rel = NULL, *content = NULL;
    size_t clen = 0;
    kith_id *v = NULL;
    size_t nv = 0;
    ws_change *c = NULL;
    ws_doc *nd = NULL;
    note n = {.type = (int)spec->type,
              .pos = spec->pos,
              .len = spec->len,
              .del = spec->del,
              .via = (char *)spec->via};
    if ((rc = ws_path_check(ws, spec->path, &rel)) || (rc = ws_begin(ws)))
        goto done;
    if ((rc = ws_docs_load(ws)))
        goto fail;
    ws_doc *d = ws_doc_by_path(ws, rel);
    kith_doc *doc = NULL;
    if (!d || d->kind != WS_TEXT) {
        rc = ws_error(ws, d ? KITH_EUNSUPPORTED : KITH_ENOTFOUND,
                      d ? "%s: notes go on text files" : "%s: no such recorded document",
                      spec->path);
        goto fail;
    }
    if ((rc = ws_doc_crdt(ws, d, &doc)))
        goto fail;
    size_t total = kith_doc_len(doc);
    if (spec->pos > total || spec->len > total - spec->pos ||
        spec->del > total - spec->pos - spec->len) {
        rc = ws_error(ws, KITH_ERANGE, "%s: %zu+%zu+%zu is past the end of the text (%zu)",
                      spec->path, spec->pos, spec->len, spec->del, total);
        goto fail;
    }
    memcpy(n.doc, d->uuid, 16);
    if ((rc = kith_doc_version(doc, &v, &nv)) || (rc = kith_doc_version_str(doc, v, nv, &n.base)) ||
        (rc = note_format(&n, spec->text ? spec->text : "", spec->text_len, &content, &clen)) ||
        (rc = note_doc_new(ws, &nd)) || (rc = ws_change_begin(ws, &c, spec->via)) ||
        (rc = ws_change_text(c, nd, KITH_WS_ADDED, NULL, content, clen)) ||
        (rc = ws_change_finish(c, NULL, NULL, NULL)))
        goto fail;
    if (id)
        ws_hex(id, nd->uuid, 16);
    goto done;
fail:
    ws_rollback(ws);
    ws_docs_forget_crdt(ws);
done:
    ws_change_free(c);
    kith_free(rel);
    kith_free(content);
    kith_free(n.base);
    kith_free(v);
    return rc;
}

/* ---- listing -------------------------------------------------------------- */

typedef struct creator {
    int64_t time_ms;
    char *name;
    char device[65];
} creator;

static int note_creator(kith_ws *ws, ws_doc *nd, creator *cr)
{
    sqlite3_stmt *st = NULL;
    memset(cr, 0, sizeof *cr);
    int rc = ws_prepare(ws, &st,
                        "SELECT c.time_ms, a.name, a.key FROM edits e JOIN changes c ON "
                        "c.id=e.change JOIN authors a ON a.id=c.author WHERE e.doc=? "
                        "ORDER BY e.change LIMIT 1");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, nd->id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        cr->time_ms = sqlite3_column_int64(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        cr->name = kith_strndup(name ? name : "", name ? strlen(name) : 0);
        if (sqlite3_column_bytes(st, 2) == 32)
            ws_hex(cr->device, sqlite3_column_blob(st, 2), 32);
        if (!cr->name)
            rc = KITH_ENOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

/* A closed note was accepted when the change that closed it also edited
 * its document. */
static int closed_status(kith_ws *ws, ws_doc *nd, ws_doc *td, int *status)
{
    sqlite3_stmt *st = NULL;
    *status = KITH_WS_NOTE_REJECTED;
    if (!td)
        return KITH_OK;
    int rc = ws_prepare(ws, &st,
                        "SELECT 1 FROM edits WHERE doc=?2 AND change=(SELECT MAX(change) FROM "
                        "edits WHERE doc=?1 AND what=?3)");
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, nd->id);
    sqlite3_bind_int64(st, 2, td->id);
    sqlite3_bind_int(st, 3, KITH_WS_DELETED);
    if (sqlite3_step(st) == SQLITE_ROW)
        *status = KITH_WS_NOTE_ACCEPTED;
    sqlite3_finalize(st);
    return KITH_OK;
}

typedef struct listed {
    ws_doc *nd;
    creator cr; /* owns cr.name */
} listed;

static int cmp_listed(const void *a, const void *b)
{
    const listed *x = a, *y = b;
    if (x->cr.time_ms != y->cr.time_ms)
        return x->cr.time_ms < y->cr.time_ms ? -1 : 1;
    return x->nd->id < y->nd->id ? -1 : x->nd->id > y->nd->id;
}

static int show_note(kith_ws *ws, ws_doc *nd, const creator *cr, const ws_doc *only,
                     int (*cb)(const kith_ws_note *n, void *ctx), void *ctx, int *stop)
{
    note n;
    where w = {0};
    int rc = note_load(ws, nd, &n);
    if (rc == KITH_ECORRUPT) /* a peer's garbage hides nothing else */
        return KITH_OK;
    if (rc)
        return rc;
    ws_doc *td = ws_doc_by_uuid(ws, n.doc);
    if (only && td != only)
        goto out;
    kith_ws_note out = {0};
    char id[33];
    ws_hex(id, nd->uuid, 16);
    int status = KITH_WS_NOTE_OPEN;
    if (nd->deleted)
        rc = closed_status(ws, nd, td, &status);
    else if (!td || td->deleted || td->kind != WS_TEXT)
        status = KITH_WS_NOTE_STALE;
    else if (!(rc = locate(ws, td, &n, &w)) && w.stale)
        status = KITH_WS_NOTE_STALE;
    if (rc)
        goto out;
    out.id = id;
    out.type = (enum kith_ws_note_type)n.type;
    out.status = (enum kith_ws_note_status)status;
    out.path = td ? td->path : "";
    out.author = cr->name ? cr->name : "";
    out.device = cr->device;
    out.via = n.via;
    out.time_ms = cr->time_ms;
    out.line = w.line;
    out.pos = w.known && !w.stale ? w.pos : n.pos;
    out.len = w.known && !w.stale ? w.mid - w.pos : 0;
    out.anchor = w.anchor ? w.anchor : "";
    out.anchor_len = w.anchor_len;
    out.del = n.del;
    out.text = n.text;
    out.text_len = n.text_len;
    *stop = cb(&out, ctx);
out:
    where_free(&w);
    note_free(&n);
    return rc;
}

int kith_ws_notes(kith_ws *ws, const char *path, bool all,
                  int (*cb)(const kith_ws_note *n, void *ctx), void *ctx)
{
    ws->err[0] = 0;
    char *rel = NULL;
    listed *ls = NULL;
    size_t n = 0;
    ws_doc *only = NULL;
    int rc = path ? ws_path_check(ws, path, &rel) : KITH_OK;
    if (!rc)
        rc = ws_docs_load(ws);
    if (!rc && rel && !(only = ws_doc_by_path(ws, rel)))
        rc = ws_error(ws, KITH_ENOTFOUND, "%s: no such recorded document", path);
    if (!rc && !(ls = kith_malloc((ws->ndocs + 1) * sizeof *ls)))
        rc = KITH_ENOMEM;
    for (size_t i = 0; !rc && i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->kind != WS_NOTE || (d->deleted && !all))
            continue;
        ls[n].nd = d;
        if (!(rc = note_creator(ws, d, &ls[n].cr)))
            n++;
    }
    if (!rc)
        qsort(ls, n, sizeof *ls, cmp_listed);
    int stop = 0;
    for (size_t i = 0; !rc && !stop && i < n; i++)
        rc = show_note(ws, ls[i].nd, &ls[i].cr, only, cb, ctx, &stop);
    for (size_t i = 0; i < n; i++)
        kith_free(ls[i].cr.name);
    kith_free(ls);
    kith_free(rel);
    return rc;
}

/* ---- accept and reject ------------------------------------------------------ */

/* The note named by @spec, a hex prefix of its id (4 digits at least). */
static int note_find(kith_ws *ws, const char *spec, ws_doc **out)
{
    size_t len = spec ? strlen(spec) : 0;
    *out = NULL;
    if (len < 4 || len > 32 || strspn(spec, "0123456789abcdefABCDEF") != len)
        return ws_error(ws, KITH_EINVAL, "'%s' is not a note id (4 to 32 hex digits)",
                        spec ? spec : "");
    char lower[33];
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)(spec[i] >= 'A' && spec[i] <= 'F' ? spec[i] + 32 : spec[i]);
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->kind != WS_NOTE || strncmp(d->path + sizeof NOTE_DIR - 1, lower, len))
            continue;
        if (*out)
            return ws_error(ws, KITH_EINVAL, "note id '%s' is ambiguous; give more digits", spec);
        *out = d;
    }
    return *out ? KITH_OK : ws_error(ws, KITH_ENOTFOUND, "no note %s", spec);
}

/* Closes @nd in change @c. */
static int note_close(kith_ws *ws, ws_change *c, ws_doc *nd)
{
    int rc = ws_doc_set_path(ws, nd, nd->path, true);
    return rc ? rc : ws_change_meta(c, nd, KITH_WS_DELETED, NULL);
}

/* Records the suggestion's text in @td where it is anchored now (@w) and
 * writes the file. */
static int apply_suggestion(kith_ws *ws, ws_change *c, ws_doc *td, const note *n, const where *w)
{
    kith_doc *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int rc = ws_doc_crdt(ws, td, &doc);
    if (!rc && !(rc = kith_doc_text(doc, &text, &len)))
        rc = ws_check_unchanged(ws, td, text, len);
    kith_free(text);
    text = NULL;
    kith_patch p[2] = {{w->rs, w->end - w->rs, "", 0}, {w->mid, 0, n->text, n->text_len}};
    if (!rc) /* the replaced text lies after the insertion point */
        rc = w->end > w->rs ? ws_change_patch(c, td, p, 2) : ws_change_patch(c, td, p + 1, 1);
    if (!rc && !(rc = ws_doc_crdt(ws, td, &doc)) && !(rc = kith_doc_text(doc, &text, &len)) &&
        !(rc = ws_write_file(ws, td->path, text, len, &st))) {
        td->size = (int64_t)st.st_size;
        td->mtime_ns = 0;
        td->ino = (int64_t)st.st_ino;
        td->dev = (int64_t)st.st_dev;
        rc = ws_doc_save_row(ws, td);
    }
    kith_free(text);
    return rc;
}

static int resolve_note(kith_ws *ws, const char *id, bool accept, kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    ws_doc *nd = NULL, *td = NULL;
    ws_change *c = NULL;
    note n = {0};
    where w = {0};
    int rc = KITH_OK;
    if (accept) { /* what is in the folder is recorded first, never overwritten */
        kith_ws_result scanned;
        if ((rc = kith_ws_scan(ws, NULL, NULL, &scanned)))
            return rc;
    }
    if ((rc = ws_begin(ws)))
        return rc;
    if ((rc = ws_docs_load(ws)) || (rc = note_find(ws, id, &nd)) || (rc = note_load(ws, nd, &n)))
        goto fail;
    char short_id[9];
    snprintf(short_id, sizeof short_id, "%s", nd->path + sizeof NOTE_DIR - 1);
    if (nd->deleted) {
        rc = ws_error(ws, KITH_EINVAL, "note %s is closed already", short_id);
        goto fail;
    }
    td = ws_doc_by_uuid(ws, n.doc);
    if (accept) {
        if (n.type != KITH_WS_SUGGESTION) {
            rc = ws_error(ws, KITH_EINVAL, "%s is a comment: reject it to dismiss it", short_id);
            goto fail;
        }
        if (!td || td->deleted || td->kind != WS_TEXT) {
            rc =
                ws_error(ws, KITH_ESTALE, "suggestion %s is stale: its file was deleted", short_id);
            goto fail;
        }
        if ((rc = locate(ws, td, &n, &w)))
            goto fail;
        if (!w.known) {
            rc = ws_error(ws, KITH_EMISSING,
                          "suggestion %s was made on a version of %s not here yet; sync first",
                          short_id, td->path);
            goto fail;
        }
        if (w.stale) {
            rc = ws_error(ws, KITH_ESTALE,
                          "suggestion %s is stale: the text it was anchored to or replaces in %s "
                          "(\"%.40s\") was deleted or edited meanwhile; nothing was applied",
                          short_id, td->path, w.anchor ? w.anchor : "");
            goto fail;
        }
    }
    if ((rc = ws_change_begin(ws, &c, accept ? n.via : NULL)))
        goto fail;
    if (accept && (rc = apply_suggestion(ws, c, td, &n, &w)))
        goto fail;
    if ((rc = note_close(ws, c, nd)) || (rc = ws_change_finish(c, NULL, NULL, res)))
        goto fail;
    goto done;
fail:
    ws_rollback(ws);
    ws_docs_forget_crdt(ws);
done:
    ws_change_free(c);
    where_free(&w);
    note_free(&n);
    return rc;
}

int kith_ws_accept(kith_ws *ws, const char *id, kith_ws_result *res)
{
    return resolve_note(ws, id, true, res);
}

int kith_ws_reject(kith_ws *ws, const char *id, kith_ws_result *res)
{
    return resolve_note(ws, id, false, res);
}
