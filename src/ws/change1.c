/*
 * Change payload version 1 (docs/FORMAT.md, "Change payload"): the form a
 * change travels in, small enough that one typed character fits in one
 * sealed blob of under 200 bytes. It is a compression of version 0 against
 * what the receiver is sure to hold, so it is written by packing the
 * version 0 payload and read by unpacking it back into version 0, which
 * the one version 0 reader then validates and merges:
 *
 * - the workspace id, the author's key and the seq are left out: the
 *   sealed blob that carries the payload authenticates them (the caller
 *   passes them in);
 * - time and lamport are deltas from the author's previous change, which a
 *   receiver holds before it may apply this one (changes apply in seq
 *   order), and so is the path of the author's previous edit of the same
 *   document, which an edit may name instead of repeating it; an edit that
 *   only modifies a document it does not rename may leave the path to the
 *   receiver, which holds the document (its operations build on ones the
 *   receiver must hold first), so a first keystroke into a teammate's file
 *   costs the same whatever the length of its path;
 * - the author's name travels in its first change and every 64th;
 * - an edit's CRDT operations leave out what the change already says (the
 *   author's agent, their seqs, time and via), other agents' names go as
 *   16 binary bytes, and counts and version that follow from the
 *   operations are left out. The writer checks that the receiver's rebuild
 *   gives back the same encoding body; anything else goes as it was.
 */
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "ws/bytes.h"
#include "ws/change1.h"
#include "ws/ws_int.h"

#define V1_VERSION 0x10 /* high 4 bits of the first byte */
#define F_NAME     0x01
#define F_VIA      0x02
#define F_ONE      0x04 /* exactly one edit */
#define F_LAMPORT1 0x08 /* lamport = previous + 1 */
#define NAME_EVERY 64   /* the name travels with seq 1 and every 64th */
#define E_WHAT     0x007
#define E_C        0x008 /* compact operations */
#define E_D        0x010 /* ins, del, version follow from them */
#define E_P        0x020 /* path = the author's previous edit's */
#define E_KIND_SH  6
#define E_O        0x100  /* old path */
#define E_B        0x200  /* whole-file version */
#define E_R        0x400  /* raw operations (a kith_doc encoding) */
#define E_W        0x800  /* compact operations carry vias */
#define E_Q        0x1000 /* path = the receiver's name of the document */
#define E_ALL      0x1fff
#define AGENT_MAX  64
#define COUNT_MAX  ((uint64_t)1 << 32)

static const uint8_t v0magic[8] = {'K', 'I', 'T', 'H', 'W', 'C', '1', 0};

/* ---- bytes ------------------------------------------------------------------------ */

static void ob_str(ws_wbuf *o, const uint8_t *p, size_t n)
{
    ws_wb_var(o, n);
    ws_wb_bytes(o, p, n);
}

/* A span: bytes borrowed from an input. */
typedef struct span {
    const uint8_t *p;
    size_t n;
    bool set;
} span;

static span ib_str(ws_rbuf *r, size_t max)
{
    span s = {NULL, 0, true};
    s.n = (size_t)ws_rb_var(r, max);
    if (!(s.p = ws_rb_bytes(r, s.n)))
        s.n = 0;
    return s;
}

/* v0's optstr: 0 absent, else length + 1. */
static span ib_optstr(ws_rbuf *r, size_t max)
{
    span s = {NULL, 0, false};
    size_t n = (size_t)ws_rb_var(r, (uint64_t)max + 1);
    if (n) {
        s.set = true;
        s.n = n - 1;
        if (!(s.p = ws_rb_bytes(r, s.n)))
            s.n = 0;
    }
    return s;
}

static void ob_optstr(ws_wbuf *o, span s)
{
    if (!s.set) {
        ws_wb_var(o, 0);
        return;
    }
    ws_wb_var(o, s.n + 1);
    ws_wb_bytes(o, s.p, s.n);
}

static bool span_eq(span a, const char *s)
{
    return a.set && a.n == strlen(s) && !memcmp(a.p, s, a.n);
}

/* ---- version 0, read ------------------------------------------------------------ */

typedef struct v0edit {
    const uint8_t *uuid;
    uint64_t what, kind, ins, del, opseq, opcount;
    span path, old_path, version, ops, file;
    const uint8_t *blob; /* hash, or NULL */
} v0edit;

typedef struct v0change {
    span name, via;
    uint64_t seq, lamport;
    int64_t time_ms;
    v0edit *e;
    size_t ne;
} v0change;

/* Structure only: the writer reads what it wrote itself. */
static int v0_read(const uint8_t *buf, size_t len, v0change *c)
{
    memset(c, 0, sizeof *c);
    if (len < sizeof v0magic + 16 || memcmp(buf, v0magic, sizeof v0magic))
        return KITH_ECORRUPT;
    ws_rbuf r = {buf, len - 16, sizeof v0magic, false};
    ib_str(&r, 64);
    ws_rb_bytes(&r, 32);
    c->name = ib_str(&r, 255);
    c->seq = ws_rb_var(&r, INT64_MAX);
    c->time_ms = kith_unzigzag(ws_rb_var(&r, UINT64_MAX));
    c->lamport = ws_rb_var(&r, INT64_MAX);
    c->via = ib_optstr(&r, 255);
    c->ne = (size_t)ws_rb_var(&r, (r.n - r.off) / 16);
    if (r.err || !(c->e = kith_calloc(c->ne + 1, sizeof *c->e)))
        return r.err ? KITH_ECORRUPT : KITH_ENOMEM;
    for (size_t i = 0; i < c->ne && !r.err; i++) {
        v0edit *e = &c->e[i];
        e->uuid = ws_rb_bytes(&r, 16);
        e->what = ws_rb_var(&r, E_WHAT);
        e->kind = ws_rb_var(&r, 3);
        e->path = ib_str(&r, SIZE_MAX);
        e->old_path = ib_optstr(&r, SIZE_MAX - 1);
        e->ins = ws_rb_var(&r, UINT64_MAX);
        e->del = ws_rb_var(&r, UINT64_MAX);
        e->opseq = ws_rb_var(&r, UINT64_MAX);
        e->opcount = ws_rb_var(&r, UINT64_MAX);
        e->version = ib_optstr(&r, SIZE_MAX - 1);
        if (ws_rb_var(&r, 1))
            e->blob = ws_rb_bytes(&r, 32);
        e->ops = ib_str(&r, SIZE_MAX);
        if (e->blob)
            e->file = ib_str(&r, SIZE_MAX);
    }
    if (r.err || r.off != r.n) {
        kith_free(c->e);
        c->e = NULL;
        return KITH_ECORRUPT;
    }
    return KITH_OK;
}

/* ---- store lookups both sides make alike ------------------------------------------ */

/* Time and lamport of change @seq of @key; KITH_ENOTFOUND if not held. */
static int change_clock(kith_ws *ws, const uint8_t key[32], uint64_t seq, int64_t *time_ms,
                        uint64_t *lamport)
{
    *time_ms = 0;
    *lamport = 0;
    if (seq == 0)
        return KITH_OK;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st,
                        "SELECT c.time_ms, c.lamport FROM changes c JOIN authors a ON "
                        "a.id=c.author WHERE a.key=? AND c.seq=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *time_ms = sqlite3_column_int64(st, 0);
        *lamport = (uint64_t)sqlite3_column_int64(st, 1);
    } else {
        rc = src == SQLITE_DONE ? KITH_ENOTFOUND : ws_sqlerr(ws, src, "reading changes");
    }
    sqlite3_finalize(st);
    return rc;
}

/* The path of the latest edit of document @uuid by @key before its change
 * @seq; *out NULL (and KITH_OK) when it has none. Caller frees *out. */
static int prev_path(kith_ws *ws, const uint8_t key[32], const uint8_t uuid[16], uint64_t seq,
                     char **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    /* The author's changes newest first, each probed for an edit of the
     * document: the first hit is usually the change before. CROSS JOIN
     * fixes that order; led by the document's edits instead, SQLite would
     * read all of them (and their changes) to sort by seq, per change
     * packed. */
    int rc = ws_prepare(ws, &st,
                        "SELECT e.path FROM authors a CROSS JOIN changes c CROSS JOIN edits e "
                        "WHERE a.key=?1 AND c.author=a.id AND c.seq<?3 AND e.change=c.id AND "
                        "e.doc=(SELECT id FROM docs WHERE uuid=?2) ORDER BY c.seq DESC LIMIT 1");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, uuid, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)seq);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        if (!(*out = kith_strndup(p, strlen(p))))
            rc = KITH_ENOMEM;
    } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = ws_sqlerr(ws, src, "reading history");
    }
    sqlite3_finalize(st);
    return rc;
}

static int author_name(kith_ws *ws, const uint8_t key[32], char **out)
{
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT name FROM authors WHERE key=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        if (!(*out = kith_strndup(p, strlen(p))))
            rc = KITH_ENOMEM;
    } else {
        rc = src == SQLITE_ROW || src == SQLITE_DONE ? KITH_ENOTFOUND
                                                     : ws_sqlerr(ws, src, "reading authors");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- compact operations ------------------------------------------------------------ */

enum { SEC_AGENTS = 1, SEC_VIAS, SEC_OPS, SEC_CONTENT, SEC_ARUNS, SEC_GRAPH, SEC_CHANGES };

/* What the change says about an edit's operations. */
typedef struct opctx {
    char agent[33]; /* the author's agent: 32 hex digits of its key's first 16 bytes */
    uint64_t opseq;
    int64_t time_ms;
    span via;
} opctx;

static bool is_hex32(const uint8_t *p, size_t n)
{
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

static void ob_section(ws_wbuf *o, uint8_t tag, const ws_wbuf *sec)
{
    ws_wb_bytes(o, &tag, 1);
    ws_wb_var(o, sec->n);
    ws_wb_bytes(o, sec->p, sec->n);
    if (sec->err)
        o->err = sec->err;
}

/* Copies a varint from @r to @o and returns it. */
static uint64_t cp_var(ws_rbuf *r, ws_wbuf *o, uint64_t max)
{
    uint64_t v = ws_rb_var(r, max);
    if (!r->err)
        ws_wb_var(o, v);
    return v;
}

/*
 * Reads compact operations from @r and writes the body of the kith_doc
 * encoding they stand for into @body; *opcount, *ins and *del get what the
 * operations count. Returns false when malformed.
 */
static bool unpack_body(ws_rbuf *r, const opctx *c, bool vias, ws_wbuf *body, uint64_t *opcount,
                        uint64_t *ins, uint64_t *del)
{
    ws_wbuf sec = {0};
    /* AGENTS: the author's, then the others */
    uint64_t k = ws_rb_var(r, r->n - r->off);
    ws_wb_var(&sec, k + 1);
    ob_str(&sec, (const uint8_t *)c->agent, 32);
    for (uint64_t i = 0; i < k && !r->err; i++) {
        uint64_t l = ws_rb_var(r, AGENT_MAX);
        const uint8_t *p = ws_rb_bytes(r, l ? l : 16);
        if (!p)
            break;
        if (l) {
            ob_str(&sec, p, l);
            continue;
        }
        char hex[33];
        ws_hex(hex, p, 16);
        ob_str(&sec, (const uint8_t *)hex, 32);
    }
    ob_section(body, SEC_AGENTS, &sec);
    sec.n = 0;
    /* VIAS, and the change's via among them */
    uint64_t via_idx = 0;
    uint64_t nv = vias ? cp_var(r, &sec, r->n - r->off) : 0;
    if (!vias)
        ws_wb_var(&sec, 0);
    if (vias && nv == 0)
        r->err = true;
    for (uint64_t i = 0; i < nv && !r->err; i++) {
        size_t l = (size_t)cp_var(r, &sec, r->n - r->off);
        const uint8_t *p = ws_rb_bytes(r, l);
        ws_wb_bytes(&sec, p, p ? l : 0);
        if (p && !via_idx && c->via.set && l == c->via.n && !memcmp(p, c->via.p, l))
            via_idx = i + 1;
    }
    if (c->via.set && !via_idx)
        r->err = true;
    ob_section(body, SEC_VIAS, &sec);
    sec.n = 0;
    /* OPS */
    uint64_t n = cp_var(r, &sec, r->n - r->off);
    *opcount = *ins = *del = 0;
    if (n == 0)
        r->err = true;
    for (uint64_t i = 0; i < n && !r->err; i++) {
        uint64_t h = cp_var(r, &sec, COUNT_MAX << 2 | 3);
        cp_var(r, &sec, UINT64_MAX);
        uint64_t len = h >> 2;
        if (len == 0)
            r->err = true;
        *opcount += len;
        *((h >> 1) & 1 ? del : ins) += len;
        if (*opcount > COUNT_MAX)
            r->err = true;
    }
    ob_section(body, SEC_OPS, &sec);
    sec.n = 0;
    /* ARUNS: one run, the author's */
    ws_wb_var(&sec, 1);
    ws_wb_var(&sec, 0);
    ws_wb_var(&sec, *opcount);
    ws_wb_var(&sec, c->opseq);
    ob_section(body, SEC_ARUNS, &sec);
    sec.n = 0;
    /* GRAPH */
    n = cp_var(r, &sec, r->n - r->off);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        cp_var(r, &sec, COUNT_MAX);
        uint64_t np = cp_var(r, &sec, r->n - r->off);
        for (uint64_t j = 0; j < np && !r->err; j++)
            if (cp_var(r, &sec, UINT64_MAX) & 1)
                cp_var(r, &sec, UINT64_MAX);
    }
    ob_section(body, SEC_GRAPH, &sec);
    sec.n = 0;
    /* CHANGES: one run, this change */
    ws_wb_var(&sec, 1);
    ws_wb_var(&sec, *opcount);
    ws_wb_var(&sec, kith_zigzag(c->time_ms));
    ws_wb_var(&sec, via_idx);
    ws_wb_var(&sec, 0);
    ob_section(body, SEC_CHANGES, &sec);
    sec.n = 0;
    /* CONTENT: one code point per insert */
    size_t start = r->off;
    for (uint64_t i = 0; i < *ins && !r->err; i++) {
        const uint8_t *b = ws_rb_bytes(r, 1);
        if (!b)
            break;
        size_t more = *b < 0x80 ? 0 : *b >= 0xf0 ? 3 : *b >= 0xe0 ? 2 : *b >= 0xc0 ? 1 : 4;
        if (more == 4)
            r->err = true;
        const uint8_t *t = ws_rb_bytes(r, more);
        for (size_t j = 0; t && j < more; j++)
            if ((t[j] & 0xc0) != 0x80)
                r->err = true;
    }
    if (!r->err)
        ws_wb_bytes(&sec, r->p + start, r->off - start);
    ob_section(body, SEC_CONTENT, &sec);
    kith_free(sec.p);
    return !r->err && !body->err;
}

/* The kith_doc encoding (a delta) of @body into @o. */
static void ob_envelope(ws_wbuf *o, const ws_wbuf *body)
{
    size_t start = o->n;
    ws_wb_bytes(o, "KITH\x01\x02", 6);
    ws_wb_var(o, body->n);
    ws_wb_bytes(o, body->p, body->n);
    if (o->err)
        return;
    uint32_t crc = (uint32_t)crc32(0L, o->p + start, (uInt)(o->n - start));
    uint8_t le[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    ws_wb_bytes(o, le, 4);
}

/* The body of kith_doc encoding @enc (decompressed into @own if need be). */
static bool enc_body(span enc, uint8_t **own, span *body)
{
    *own = NULL;
    ws_rbuf r = {enc.p, enc.n, 6, false};
    if (enc.n < 11 || memcmp(enc.p, "KITH\x01", 5) || (enc.p[5] & ~3) || !(enc.p[5] & 2))
        return false;
    uint64_t bl = ws_rb_var(&r, 1u << 30);
    if (r.err || enc.n - r.off < 4)
        return false;
    const uint8_t *p = enc.p + r.off;
    size_t n = enc.n - r.off - 4;
    if (enc.p[5] & 1) {
        if (!(*own = kith_malloc(bl ? (size_t)bl : 1)))
            return false;
        size_t got = ZSTD_decompress(*own, (size_t)bl, p, n);
        if (ZSTD_isError(got) || got != bl)
            return false;
        p = *own;
        n = (size_t)bl;
    } else if (n != bl) {
        return false;
    }
    *body = (span){p, n, true};
    return true;
}

/*
 * Writes @enc (the author's operations of one edit) in compact form into
 * @o, if the receiver's rebuild gives back the same body; *vias tells
 * whether the vias went along, and *opcount, *ins and *del what they count.
 */
static bool pack_ops(span enc, const opctx *c, ws_wbuf *o, bool *vias, uint64_t *opcount,
                     uint64_t *ins, uint64_t *del)
{
    uint8_t *own = NULL;
    span body;
    span sec[SEC_CHANGES + 1] = {{0}};
    ws_wbuf out = {0}, again = {0};
    bool ok = false;
    if (!enc_body(enc, &own, &body))
        goto out;
    ws_rbuf r = {body.p, body.n, 0, false};
    while (!r.err && r.off < r.n) {
        const uint8_t *tag = ws_rb_bytes(&r, 1);
        size_t l = (size_t)ws_rb_var(&r, r.n - r.off);
        const uint8_t *p = ws_rb_bytes(&r, l);
        if (!tag || !p || *tag < SEC_AGENTS || *tag > SEC_CHANGES || sec[*tag].set)
            goto out;
        sec[*tag] = (span){p, l, true};
    }
    /* AGENTS: the author's first */
    ws_rbuf a = {sec[SEC_AGENTS].p, sec[SEC_AGENTS].n, 0, !sec[SEC_AGENTS].set};
    uint64_t na = ws_rb_var(&a, a.n);
    span first = ib_str(&a, AGENT_MAX);
    if (a.err || na == 0 || first.n != 32 || memcmp(first.p, c->agent, 32))
        goto out;
    ws_wb_var(&out, na - 1);
    for (uint64_t i = 1; i < na && !a.err; i++) {
        span s = ib_str(&a, AGENT_MAX);
        uint8_t bin[16];
        if (!a.err && is_hex32(s.p, s.n) &&
            !sodium_hex2bin(bin, 16, (const char *)s.p, 32, NULL, NULL, NULL)) {
            ws_wb_var(&out, 0);
            ws_wb_bytes(&out, bin, 16);
        } else {
            ob_str(&out, s.p, s.n);
        }
    }
    ws_rbuf v = {sec[SEC_VIAS].p, sec[SEC_VIAS].n, 0, !sec[SEC_VIAS].set};
    *vias = ws_rb_var(&v, v.n) > 0;
    if (a.err || v.err || !sec[SEC_OPS].set || !sec[SEC_GRAPH].set || !sec[SEC_CONTENT].set)
        goto out;
    if (*vias)
        ws_wb_bytes(&out, sec[SEC_VIAS].p, sec[SEC_VIAS].n);
    ws_wb_bytes(&out, sec[SEC_OPS].p, sec[SEC_OPS].n);
    ws_wb_bytes(&out, sec[SEC_GRAPH].p, sec[SEC_GRAPH].n);
    ws_wb_bytes(&out, sec[SEC_CONTENT].p, sec[SEC_CONTENT].n);
    if (out.err)
        goto out;
    /* What the receiver will make of it must be what was encoded. */
    ws_rbuf back = {out.p, out.n, 0, false};
    ok = unpack_body(&back, c, *vias, &again, opcount, ins, del) && back.off == back.n &&
         again.n == body.n && !memcmp(again.p, body.p, body.n);
    if (ok)
        ws_wb_bytes(o, out.p, out.n);
out:
    kith_free(own);
    kith_free(out.p);
    kith_free(again.p);
    return ok;
}

/* ---- version 1 --------------------------------------------------------------------- */

bool ws_change_is_v1(const uint8_t *buf, size_t len)
{
    return len > 0 && (buf[0] & 0xf0) == V1_VERSION;
}

static void version_of(char *out, size_t n, const opctx *c, uint64_t last)
{
    snprintf(out, n, "%s:%llu", c->agent, (unsigned long long)last);
}

int ws_change_pack(kith_ws *ws, const uint8_t key[32], uint64_t seq, const uint8_t *v0, size_t len,
                   uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    v0change c;
    int rc = v0_read(v0, len, &c);
    if (rc)
        return ws_error(ws, rc, "a change payload to pack is malformed");
    int64_t ptime = 0;
    uint64_t plamport = 0;
    ws_wbuf o = {0};
    if (c.seq != seq) {
        rc = ws_error(ws, KITH_EINVAL, "a change payload to pack has another seq");
        goto out;
    }
    if ((rc = change_clock(ws, key, seq - 1, &ptime, &plamport)) == KITH_ENOTFOUND)
        rc = ws_error(ws, KITH_ECORRUPT, "change %llu of an author is missing from the store",
                      (unsigned long long)seq - 1);
    if (rc)
        goto out;
    bool name = seq == 1 || seq % NAME_EVERY == 0;
    bool lam1 = c.lamport == plamport + 1;
    uint8_t flags = V1_VERSION | (name ? F_NAME : 0) | (c.via.set ? F_VIA : 0) |
                    (c.ne == 1 ? F_ONE : 0) | (lam1 ? F_LAMPORT1 : 0);
    ws_wb_bytes(&o, &flags, 1);
    if (name)
        ob_str(&o, c.name.p, c.name.n);
    ws_wb_var(&o, kith_zigzag(c.time_ms - ptime));
    if (!lam1)
        ws_wb_var(&o, kith_zigzag((int64_t)(c.lamport - plamport)));
    if (c.via.set)
        ob_str(&o, c.via.p, c.via.n);
    if (c.ne != 1)
        ws_wb_var(&o, c.ne);
    for (size_t i = 0; i < c.ne && !rc; i++) {
        v0edit *e = &c.e[i];
        char *pp = NULL;
        if ((rc = prev_path(ws, key, e->uuid, seq, &pp)))
            break;
        bool same_path = pp && span_eq(e->path, pp);
        kith_free(pp);
        bool their_path = false;
        if (!same_path && e->what == KITH_WS_MODIFIED && !(rc = ws_docs_load(ws))) {
            ws_doc *d = ws_doc_by_uuid(ws, e->uuid);
            their_path = d && !d->deleted && span_eq(e->path, d->path);
        }
        if (rc)
            break;
        opctx oc = {.opseq = e->opseq, .time_ms = c.time_ms, .via = c.via};
        ws_hex(oc.agent, key, 16);
        ws_wbuf ops = {0};
        bool vias = false, compact = false, derived = false;
        uint64_t opcount = 0, ins = 0, del = 0;
        if (e->ops.n)
            compact =
                pack_ops(e->ops, &oc, &ops, &vias, &opcount, &ins, &del) && opcount == e->opcount;
        if (compact && e->opcount && e->version.set) {
            char want[64];
            version_of(want, sizeof want, &oc, e->opseq + e->opcount - 1);
            derived = ins == e->ins && del == e->del && span_eq(e->version, want);
        }
        uint64_t ef = e->what | (compact ? E_C : 0) | (derived ? E_D : 0) |
                      (same_path    ? E_P
                       : their_path ? E_Q
                                    : 0) |
                      e->kind << E_KIND_SH | (e->old_path.set ? E_O : 0) | (e->blob ? E_B : 0) |
                      (e->ops.n && !compact ? E_R : 0) | (compact && vias ? E_W : 0);
        ws_wb_bytes(&o, e->uuid, 16);
        ws_wb_var(&o, ef);
        if (!same_path && !their_path)
            ob_str(&o, e->path.p, e->path.n);
        if (e->old_path.set)
            ob_str(&o, e->old_path.p, e->old_path.n);
        ws_wb_var(&o, e->opseq);
        if (!compact)
            ws_wb_var(&o, e->opcount);
        if (!derived) {
            ws_wb_var(&o, e->ins);
            ws_wb_var(&o, e->del);
            ob_optstr(&o, e->version);
        }
        if (e->blob)
            ws_wb_bytes(&o, e->blob, 32);
        if (compact)
            ws_wb_bytes(&o, ops.p, ops.n);
        else if (e->ops.n)
            ob_str(&o, e->ops.p, e->ops.n);
        if (e->blob)
            ob_str(&o, e->file.p, e->file.n);
        if (ops.err)
            o.err = ops.err;
        kith_free(ops.p);
    }
    if (!rc)
        rc = o.err;
out:
    kith_free(c.e);
    if (rc) {
        kith_free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.n;
    return KITH_OK;
}

int ws_change_unpack(kith_ws *ws, const uint8_t key[32], uint64_t seq, const uint8_t *buf,
                     size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    ws_rbuf r = {buf, len, 1, false};
    ws_wbuf o = {0};
    char *name = NULL;
    int64_t ptime = 0;
    uint64_t plamport = 0;
    int rc = KITH_OK;
    if (!ws_change_is_v1(buf, len) || seq == 0 || seq > INT64_MAX)
        return ws_error(ws, KITH_ECORRUPT, "not a kith change of version 1");
    uint8_t flags = buf[0] & 0x0f;
    if ((rc = change_clock(ws, key, seq - 1, &ptime, &plamport)) == KITH_ENOTFOUND)
        return ws_error(ws, KITH_EMISSING, "change %llu of its author arrived before change %llu",
                        (unsigned long long)seq, (unsigned long long)seq - 1);
    if (rc)
        return rc;
    span sname = {0};
    if (flags & F_NAME)
        sname = ib_str(&r, 255);
    else if ((rc = author_name(ws, key, &name)) == KITH_ENOTFOUND)
        return ws_error(ws, KITH_ECORRUPT, "change: the first change of an author has no name");
    else if (rc)
        return rc;
    else
        sname = (span){(const uint8_t *)name, strlen(name), true};
    int64_t time_ms = ptime + kith_unzigzag(ws_rb_var(&r, UINT64_MAX));
    uint64_t lamport = plamport + 1;
    if (!(flags & F_LAMPORT1))
        lamport = plamport + (uint64_t)kith_unzigzag(ws_rb_var(&r, UINT64_MAX));
    span via = {0};
    if (flags & F_VIA)
        via = ib_str(&r, 255);
    size_t ne = flags & F_ONE ? 1 : (size_t)ws_rb_var(&r, (r.n - r.off) / 18);
    ws_wb_bytes(&o, v0magic, sizeof v0magic);
    ob_str(&o, (const uint8_t *)ws->wsid, strlen(ws->wsid));
    ws_wb_bytes(&o, key, 32);
    ob_str(&o, sname.p, sname.n);
    ws_wb_var(&o, seq);
    ws_wb_var(&o, kith_zigzag(time_ms));
    ws_wb_var(&o, lamport);
    ob_optstr(&o, via);
    ws_wb_var(&o, ne);
    for (size_t i = 0; i < ne && !r.err && !rc; i++) {
        const uint8_t *uuid = ws_rb_bytes(&r, 16);
        uint64_t ef = ws_rb_var(&r, E_ALL);
        if (r.err)
            break;
        bool compact = ef & E_C, derived = ef & E_D;
        if ((derived && !compact) || (compact && (ef & E_R)) || (!compact && (ef & E_W))) {
            r.err = true;
            break;
        }
        char *pp = NULL;
        span path;
        if ((ef & E_Q) && ((ef & E_P) || (ef & E_WHAT) != KITH_WS_MODIFIED)) {
            r.err = true;
            break;
        }
        if (ef & E_Q) { /* the document is ours too, or not here yet */
            ws_doc *d = (rc = ws_docs_load(ws)) ? NULL : ws_doc_by_uuid(ws, uuid);
            if (!rc && !d)
                rc = ws_error(ws, KITH_EMISSING, "a change edits a document not here yet");
            if (rc)
                break;
            if (!(pp = kith_strndup(d->path, strlen(d->path)))) {
                rc = KITH_ENOMEM;
                break;
            }
            path = (span){(const uint8_t *)pp, strlen(pp), true};
        } else if (ef & E_P) {
            if ((rc = prev_path(ws, key, uuid, seq, &pp)))
                break;
            if (!pp) {
                r.err = true;
                break;
            }
            path = (span){(const uint8_t *)pp, strlen(pp), true};
        } else {
            path = ib_str(&r, PATH_MAX);
        }
        span old = {0};
        if (ef & E_O)
            old = ib_str(&r, PATH_MAX);
        opctx oc = {.opseq = ws_rb_var(&r, UINT32_MAX), .time_ms = time_ms, .via = via};
        ws_hex(oc.agent, key, 16);
        uint64_t opcount = compact ? 0 : ws_rb_var(&r, UINT32_MAX), ins = 0, del = 0;
        span version = {0};
        if (!derived) {
            ins = ws_rb_var(&r, UINT32_MAX);
            del = ws_rb_var(&r, UINT32_MAX);
            version = ib_optstr(&r, 1 << 20);
        }
        const uint8_t *blob = ef & E_B ? ws_rb_bytes(&r, 32) : NULL;
        if (r.err) {
            kith_free(pp);
            break;
        }
        ws_wbuf ops = {0}, body = {0};
        uint64_t cins = 0, cdel = 0;
        if (compact && unpack_body(&r, &oc, ef & E_W, &body, &opcount, &cins, &cdel))
            ob_envelope(&ops, &body);
        else if (compact)
            r.err = true;
        char vbuf[64];
        if (derived) {
            ins = cins;
            del = cdel;
            version_of(vbuf, sizeof vbuf, &oc, oc.opseq + opcount - 1);
            version = (span){(const uint8_t *)vbuf, strlen(vbuf), true};
        }
        ws_wb_bytes(&o, uuid, 16);
        ws_wb_var(&o, ef & E_WHAT);
        ws_wb_var(&o, ef >> E_KIND_SH & 3);
        ob_str(&o, path.p, path.n);
        ob_optstr(&o, old);
        ws_wb_var(&o, ins);
        ws_wb_var(&o, del);
        ws_wb_var(&o, oc.opseq);
        ws_wb_var(&o, opcount);
        ob_optstr(&o, version);
        ws_wb_var(&o, blob ? 1 : 0);
        if (blob)
            ws_wb_bytes(&o, blob, 32);
        if (compact) {
            ob_str(&o, ops.p, ops.n);
        } else if (ef & E_R) {
            span raw = ib_str(&r, SIZE_MAX);
            if (!r.err && raw.n == 0)
                r.err = true;
            ob_str(&o, raw.p, r.err ? 0 : raw.n);
        } else {
            ws_wb_var(&o, 0);
        }
        if (blob) {
            span file = ib_str(&r, SIZE_MAX);
            ob_str(&o, file.p, r.err ? 0 : file.n);
        }
        if (ops.err || body.err)
            o.err = KITH_ENOMEM;
        kith_free(ops.p);
        kith_free(body.p);
        kith_free(pp);
    }
    kith_free(name);
    if (!rc && (r.err || r.off != r.n))
        rc = ws_error(ws, KITH_ECORRUPT, "change: malformed at byte %zu", r.off);
    if (!rc && !o.err) {
        uint8_t sum[16];
        crypto_generichash(sum, sizeof sum, o.p, o.n, NULL, 0);
        ws_wb_bytes(&o, sum, sizeof sum);
    }
    if (!rc)
        rc = o.err;
    if (rc) {
        kith_free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.n;
    return KITH_OK;
}
