/*
 * Binary encoding of a document's history (docs/FORMAT.md): the whole
 * document, or a delta holding only what a peer lacks, in one format. The
 * log's run-length tables are written as columns of varints, then the body
 * is zstd-compressed when that makes it smaller. A whole-document encoding
 * also carries the current text, so loading it needs no replay.
 *
 * Decoding parses and checks every count, length, index and id into
 * temporary arrays first; only a fully valid input touches the document, and
 * a failure while applying (unknown parents, positions past the end) rolls
 * the log back to where it was.
 */
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "crdt/crdt_int.h"

#define ENC_MAGIC   "KITH"
#define ENC_VERSION 1
#define ENC_ZSTD    0x01 /* flags: body is one zstd frame */
#define ENC_DELTA   0x02 /* flags: a delta (may name parents outside it) */
#define SUM_VERSION 1
#define MAX_BODY    (1u << 30) /* 1 GiB uncompressed: a hostile size is refused */

enum { SEC_AGENTS = 1, SEC_VIAS, SEC_OPS, SEC_CONTENT, SEC_ARUNS, SEC_GRAPH, SEC_CHANGES, SEC_TEXT };

/* ---- writing ------------------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int err;
} wbuf;

static void wb_bytes(wbuf *w, const void *b, size_t n)
{
    if (w->err)
        return;
    if (kith_grow((void **)&w->p, &w->cap, w->n + n, 1)) {
        w->err = KITH_ENOMEM;
        return;
    }
    if (n)
        memcpy(w->p + w->n, b, n);
    w->n += n;
}

static void wb_var(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    wb_bytes(w, b, kith_varint_put(b, v));
}

static void wb_section(wbuf *out, uint8_t tag, wbuf *sec)
{
    wb_bytes(out, &tag, 1);
    wb_var(out, sec->n);
    wb_bytes(out, sec->p, sec->n);
    if (sec->err)
        out->err = sec->err;
    kith_free(sec->p);
    memset(sec, 0, sizeof *sec);
}

/* Appends "varint count, then the records" to @w and frees @body. */
static void wb_counted(wbuf *w, uint64_t count, wbuf *body)
{
    wb_var(w, count);
    wb_bytes(w, body->p, body->n);
    if (body->err)
        w->err = body->err;
    kith_free(body->p);
    memset(body, 0, sizeof *body);
}

/* The ops to encode: sorted LV ranges. */
typedef struct lvr {
    uint32_t a, b, base; /* base: encoding index of a */
} lvr;

typedef struct encoder {
    const kith_doc *doc;
    lvr *r;
    size_t nr;
    int32_t *amap; /* doc agent -> encoding agent, -1 if unused */
    uint32_t nagents;
    uint32_t *alist;
} encoder;

static int64_t enc_index(const encoder *e, uint32_t lv)
{
    size_t lo = 0, hi = e->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (lv < e->r[mid].a)
            hi = mid;
        else if (lv >= e->r[mid].b)
            lo = mid + 1;
        else
            return e->r[mid].base + (lv - e->r[mid].a);
    }
    return -1;
}

static uint32_t enc_agent(encoder *e, uint32_t agent)
{
    if (e->amap[agent] < 0) {
        e->amap[agent] = (int32_t)e->nagents;
        e->alist[e->nagents++] = agent;
    }
    return (uint32_t)e->amap[agent];
}

static void write_ops(encoder *e, wbuf *ops, wbuf *content)
{
    const oplog *log = &e->doc->log;
    uint64_t count = 0;
    wbuf body = {0};
    int64_t prev_pos = 0;
    for (size_t i = 0; i < e->nr; i++) {
        for (uint32_t lv = e->r[i].a; lv < e->r[i].b;) {
            const op_run *r = oplog_find_op(log, lv, NULL);
            uint32_t end = r->lv + r->len < e->r[i].b ? r->lv + r->len : e->r[i].b;
            uint32_t k = lv - r->lv, len = end - lv;
            int64_t pos = r->kind == OP_DEL && r->back ? (int64_t)r->pos - k
                          : r->kind == OP_INS           ? (int64_t)r->pos + k
                                                        : (int64_t)r->pos;
            wb_var(&body, ((uint64_t)len << 2) | ((uint64_t)r->kind << 1) | (r->back && len > 1));
            wb_var(&body, kith_zigzag(pos - prev_pos));
            prev_pos = pos;
            if (r->kind == OP_INS) {
                size_t a = oplog_ins_offset(log, r, k), b = oplog_ins_offset(log, r, k + len);
                wb_bytes(content, log->ins + a, b - a);
            }
            count++;
            lv = end;
        }
    }
    wb_counted(ops, count, &body);
}

static void write_aruns(encoder *e, wbuf *w)
{
    const oplog *log = &e->doc->log;
    uint64_t count = 0;
    wbuf body = {0};
    for (size_t i = 0; i < e->nr; i++) {
        for (uint32_t lv = e->r[i].a; lv < e->r[i].b;) {
            size_t ai;
            const agent_run *ar = oplog_find_agent(log, lv, &ai);
            uint32_t end = oplog_agent_run_end(log, ai);
            if (end > e->r[i].b)
                end = e->r[i].b;
            wb_var(&body, enc_agent(e, ar->agent));
            wb_var(&body, end - lv);
            wb_var(&body, ar->seq + (lv - ar->lv));
            count++;
            lv = end;
        }
    }
    wb_counted(w, count, &body);
}

static void write_parent(encoder *e, wbuf *w, uint32_t lv, uint32_t p)
{
    int64_t pi = enc_index(e, p);
    if (pi >= 0) {
        wb_var(w, (uint64_t)(enc_index(e, lv) - pi) << 1);
        return;
    }
    kith_id id;
    oplog_id_of(&e->doc->log, p, &id);
    wb_var(w, ((uint64_t)enc_agent(e, id.agent) << 1) | 1);
    wb_var(w, id.seq);
}

static void write_graph(encoder *e, wbuf *w)
{
    const oplog *log = &e->doc->log;
    uint64_t count = 0;
    wbuf body = {0};
    for (size_t i = 0; i < e->nr; i++) {
        for (uint32_t lv = e->r[i].a; lv < e->r[i].b;) {
            const graph_run *g = oplog_find_graph(log, lv);
            uint32_t end = g->lv + g->len < e->r[i].b ? g->lv + g->len : e->r[i].b;
            wb_var(&body, end - lv);
            if (lv == g->lv) {
                wb_var(&body, g->npar);
                for (uint32_t k = 0; k < g->npar; k++)
                    write_parent(e, &body, lv, log->par[g->poff + k]);
            } else {
                wb_var(&body, 1);
                write_parent(e, &body, lv, lv - 1);
            }
            count++;
            lv = end;
        }
    }
    wb_counted(w, count, &body);
}

static void write_changes(encoder *e, wbuf *w)
{
    const oplog *log = &e->doc->log;
    uint64_t count = 0;
    wbuf body = {0};
    int64_t prev_time = 0;
    for (size_t i = 0; i < e->nr; i++) {
        for (uint32_t lv = e->r[i].a; lv < e->r[i].b;) {
            const change *c = oplog_find_change(log, lv);
            uint32_t end = oplog_change_end(log, c);
            if (end > e->r[i].b)
                end = e->r[i].b;
            kith_id id;
            oplog_id_of(log, lv, &id);
            wb_var(&body, end - lv);
            wb_var(&body, kith_zigzag(c->time_ms - prev_time));
            prev_time = c->time_ms;
            wb_var(&body, (uint64_t)(c->via + 1));
            wb_var(&body, id.seq - c->fseq); /* > 0: continues a change begun earlier */
            count++;
            lv = end;
        }
    }
    wb_counted(w, count, &body);
}

/* Encodes the ops in ranges @r; with @text, the current text too. */
static int encode_ranges(kith_doc *doc, lvr *r, size_t nr, bool delta, int level, uint8_t **out,
                         size_t *len)
{
    *out = NULL;
    *len = 0;
    /* An open change is closed now, so that every replica that gets these
     * ops sees the same change boundaries and metadata. */
    if (doc->log.change_open) {
        int rc = oplog_commit(&doc->log, (int64_t)time(NULL) * 1000, NULL);
        if (rc)
            return rc;
    }
    encoder e = {.doc = doc, .r = r, .nr = nr};
    e.amap = kith_malloc((doc->log.nagents + 1) * sizeof(int32_t));
    e.alist = kith_malloc((doc->log.nagents + 1) * sizeof(uint32_t));
    wbuf body = {0}, sec = {0}, content = {0}, ops = {0};
    int rc = KITH_ENOMEM;
    if (!e.amap || !e.alist)
        goto out;
    for (size_t i = 0; i < doc->log.nagents; i++)
        e.amap[i] = -1;

    wbuf aruns = {0}, graph = {0}, changes = {0};
    write_ops(&e, &ops, &content);
    write_aruns(&e, &aruns);
    write_graph(&e, &graph);
    write_changes(&e, &changes);

    if (!delta) {
        /* The text and its version first, so that loading needs no replay
         * and decompresses only the start of the body. The inserted
         * content after it compresses against it, so this costs no size. */
        wb_var(&sec, doc->nversion);
        for (size_t i = 0; i < doc->nversion; i++)
            wb_var(&sec, (uint64_t)enc_index(&e, doc->version[i]));
        for (size_t i = 0; i < doc->text.n; i++)
            wb_bytes(&sec, doc->text.chunks[i].bytes, doc->text.chunks[i].nbytes);
        wb_section(&body, SEC_TEXT, &sec);
    }
    wb_var(&sec, e.nagents);
    for (uint32_t i = 0; i < e.nagents; i++) {
        const agent_info *a = &doc->log.agents[e.alist[i]];
        wb_var(&sec, a->name_len);
        wb_bytes(&sec, a->name, a->name_len);
    }
    wb_section(&body, SEC_AGENTS, &sec);
    wb_var(&sec, doc->log.nvias);
    for (size_t i = 0; i < doc->log.nvias; i++) {
        size_t n = strlen(doc->log.vias[i]);
        wb_var(&sec, n);
        wb_bytes(&sec, doc->log.vias[i], n);
    }
    wb_section(&body, SEC_VIAS, &sec);
    wb_section(&body, SEC_OPS, &ops);
    wb_section(&body, SEC_ARUNS, &aruns);
    wb_section(&body, SEC_GRAPH, &graph);
    wb_section(&body, SEC_CHANGES, &changes);
    wb_section(&body, SEC_CONTENT, &content);
    if (body.err) {
        rc = body.err;
        goto out;
    }

    size_t bound = ZSTD_compressBound(body.n);
    uint8_t *res = kith_malloc(6 + 10 + 4 + (bound > body.n ? bound : body.n));
    if (!res)
        goto out;
    memcpy(res, ENC_MAGIC, 4);
    res[4] = ENC_VERSION;
    res[5] = delta ? ENC_DELTA : 0;
    size_t n = 6;
    n += kith_varint_put(res + n, body.n);
    /* A large delta (a big paste, a first version) is encoded once and
     * sent or stored at once: a middle level is worth much more time than
     * the few % that 19 saves on it. */
    if (delta && body.n > 65536 && level > 9)
        level = 9;
    size_t z = body.n > 64 ? ZSTD_compress(res + n, bound, body.p, body.n, level) : 0;
    if (z && !ZSTD_isError(z) && z < body.n) {
        res[5] |= ENC_ZSTD;
        n += z;
    } else {
        memcpy(res + n, body.p, body.n);
        n += body.n;
    }
    /* A CRC-32 of everything before it: a flipped bit anywhere is an error,
     * not a different document. */
    uint32_t crc = (uint32_t)crc32(0L, res, (uInt)n);
    for (int i = 0; i < 4; i++)
        res[n++] = (uint8_t)(crc >> (8 * i));
    *out = res;
    *len = n;
    rc = KITH_OK;
out:
    kith_free(body.p);
    kith_free(e.amap);
    kith_free(e.alist);
    return rc;
}

int kith_doc_encode_level(kith_doc *doc, int level, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (level < 1 || level > ZSTD_maxCLevel())
        return KITH_EINVAL;
    int rc = doc_ready(doc);
    if (rc)
        return rc;
    lvr all = {0, doc->log.n, 0};
    return encode_ranges(doc, &all, doc->log.n ? 1 : 0, false, level, out, len);
}

int kith_doc_encode(kith_doc *doc, uint8_t **out, size_t *len)
{
    return kith_doc_encode_level(doc, 19, out, len);
}

/* ---- reading -------------------------------------------------------------------- */

typedef struct rbuf {
    const uint8_t *p;
    size_t n, off;
    int err;
} rbuf;

static uint64_t rb_var(rbuf *r)
{
    uint64_t v = 0;
    if (r->err)
        return 0;
    size_t k = kith_varint_get(r->p + r->off, r->n - r->off, &v);
    if (!k) {
        r->err = KITH_ECORRUPT;
        return 0;
    }
    r->off += k;
    return v;
}

/* A varint that must be at most @max (a count, index or length). */
static uint64_t rb_max(rbuf *r, uint64_t max)
{
    uint64_t v = rb_var(r);
    if (v > max)
        r->err = KITH_ECORRUPT;
    return r->err ? 0 : v;
}

static const uint8_t *rb_bytes(rbuf *r, size_t n)
{
    if (r->err || n > r->n - r->off) {
        r->err = KITH_ECORRUPT;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

typedef struct d_op {
    uint32_t len, kind, back;
    int64_t pos;
} d_op;
typedef struct d_arun {
    uint32_t agent, len, seq;
} d_arun;
typedef struct d_par {
    uint32_t ext; /* 0: internal (x = distance back), 1: external (x = agent) */
    uint32_t x;
    uint64_t seq;
} d_par;
typedef struct d_grun {
    uint32_t len, npar, poff;
} d_grun;
typedef struct d_change {
    uint32_t len;
    int64_t time;
    int32_t via;
    uint32_t back; /* seq offset from the change's first op */
} d_change;

typedef struct decoded {
    uint32_t flags;
    uint32_t nagents;
    const char **anames;
    uint32_t *alens;
    uint32_t nvias;
    char **vias;
    d_op *ops;
    size_t nops;
    d_arun *aruns;
    size_t naruns;
    d_grun *gruns;
    size_t ngruns;
    d_par *par;
    size_t npar;
    d_change *changes;
    size_t nchanges;
    const char *content;
    size_t ncontent;
    uint64_t nops_total;
    uint64_t nins_cps; /* code points in content (= insert ops) */
    bool has_text;
    uint32_t *tver;
    size_t ntver;
    const char *text;
    size_t ntext;
    uint8_t *body; /* owned when decompressed */
} decoded;

static void decoded_free(decoded *d)
{
    kith_free(d->anames);
    kith_free(d->alens);
    for (uint32_t i = 0; i < d->nvias; i++)
        kith_free(d->vias ? d->vias[i] : NULL);
    kith_free(d->vias);
    kith_free(d->ops);
    kith_free(d->aruns);
    kith_free(d->gruns);
    kith_free(d->par);
    kith_free(d->changes);
    kith_free(d->tver);
    kith_free(d->body);
}

/* Allocates an array of @n elements of @size for a count read from input:
 * the count was bounded by the section's bytes first, so this is safe. */
static void *dec_array(size_t n, size_t size)
{
    return kith_calloc(n ? n : 1, size);
}

static int parse_section(decoded *d, uint8_t tag, rbuf *s)
{
    size_t max = s->n; /* no count can exceed the section's bytes */
    switch (tag) {
    case SEC_AGENTS: {
        d->nagents = (uint32_t)rb_max(s, max);
        d->anames = dec_array(d->nagents, sizeof(char *));
        d->alens = dec_array(d->nagents, sizeof(uint32_t));
        if (!d->anames || !d->alens)
            return KITH_ENOMEM;
        for (uint32_t i = 0; i < d->nagents && !s->err; i++) {
            d->alens[i] = (uint32_t)rb_max(s, KITH_AGENT_MAX);
            d->anames[i] = (const char *)rb_bytes(s, d->alens[i]);
            if (!s->err && !agent_name_ok(d->anames[i], d->alens[i]))
                s->err = KITH_ECORRUPT;
        }
        break;
    }
    case SEC_VIAS: {
        uint32_t n = (uint32_t)rb_max(s, max);
        d->vias = dec_array(n, sizeof(char *));
        if (!d->vias)
            return KITH_ENOMEM;
        for (uint32_t i = 0; i < n && !s->err; i++) {
            size_t l = rb_max(s, max);
            const uint8_t *b = rb_bytes(s, l);
            if (s->err)
                break;
            if (memchr(b, 0, l) || kith_utf8_count((const char *)b, l) < 0) {
                s->err = KITH_ECORRUPT;
                break;
            }
            d->vias[i] = kith_strndup((const char *)b, l);
            if (!d->vias[i])
                return KITH_ENOMEM;
            d->nvias = i + 1;
        }
        break;
    }
    case SEC_OPS: {
        d->nops = rb_max(s, max);
        d->ops = dec_array(d->nops, sizeof(d_op));
        if (!d->ops)
            return KITH_ENOMEM;
        int64_t pos = 0;
        for (size_t i = 0; i < d->nops && !s->err; i++) {
            uint64_t h = rb_var(s);
            uint64_t len = h >> 2;
            if (len == 0 || len > UINT32_MAX)
                s->err = KITH_ECORRUPT;
            pos += kith_unzigzag(rb_var(s));
            if (pos < 0 || pos > UINT32_MAX)
                s->err = KITH_ECORRUPT;
            d->ops[i] = (d_op){(uint32_t)len, (uint32_t)(h >> 1) & 1, (uint32_t)h & 1, pos};
            if (d->ops[i].kind == OP_INS && d->ops[i].back)
                s->err = KITH_ECORRUPT;
            if (d->ops[i].back && (uint64_t)pos + 1 < len)
                s->err = KITH_ECORRUPT;
            d->nops_total += len;
        }
        break;
    }
    case SEC_ARUNS: {
        d->naruns = rb_max(s, max);
        d->aruns = dec_array(d->naruns, sizeof(d_arun));
        if (!d->aruns)
            return KITH_ENOMEM;
        for (size_t i = 0; i < d->naruns && !s->err; i++) {
            d->aruns[i].agent = (uint32_t)rb_max(s, UINT32_MAX);
            d->aruns[i].len = (uint32_t)rb_max(s, UINT32_MAX);
            d->aruns[i].seq = (uint32_t)rb_max(s, UINT32_MAX);
            if (!s->err && (d->aruns[i].agent >= d->nagents || d->aruns[i].len == 0))
                s->err = KITH_ECORRUPT;
        }
        break;
    }
    case SEC_GRAPH: {
        d->ngruns = rb_max(s, max);
        d->gruns = dec_array(d->ngruns, sizeof(d_grun));
        d->par = dec_array(max, sizeof(d_par));
        if (!d->gruns || !d->par)
            return KITH_ENOMEM;
        for (size_t i = 0; i < d->ngruns && !s->err; i++) {
            d->gruns[i].len = (uint32_t)rb_max(s, UINT32_MAX);
            d->gruns[i].npar = (uint32_t)rb_max(s, max - d->npar);
            d->gruns[i].poff = (uint32_t)d->npar;
            if (d->gruns[i].len == 0)
                s->err = KITH_ECORRUPT;
            for (uint32_t k = 0; k < d->gruns[i].npar && !s->err; k++) {
                uint64_t v = rb_var(s);
                d_par p = {(uint32_t)(v & 1), 0, 0};
                if ((v >> 1) > UINT32_MAX)
                    s->err = KITH_ECORRUPT;
                p.x = (uint32_t)(v >> 1);
                if (p.ext) {
                    p.seq = rb_max(s, UINT32_MAX);
                    if (p.x >= d->nagents)
                        s->err = KITH_ECORRUPT;
                } else if (p.x == 0) {
                    s->err = KITH_ECORRUPT;
                }
                d->par[d->npar++] = p;
            }
        }
        break;
    }
    case SEC_CHANGES: {
        d->nchanges = rb_max(s, max);
        d->changes = dec_array(d->nchanges, sizeof(d_change));
        if (!d->changes)
            return KITH_ENOMEM;
        int64_t t = 0;
        for (size_t i = 0; i < d->nchanges && !s->err; i++) {
            d->changes[i].len = (uint32_t)rb_max(s, UINT32_MAX);
            t += kith_unzigzag(rb_var(s));
            d->changes[i].time = t;
            d->changes[i].via = (int32_t)rb_max(s, d->nvias) - 1;
            d->changes[i].back = (uint32_t)rb_max(s, UINT32_MAX);
            if (d->changes[i].len == 0)
                s->err = KITH_ECORRUPT;
        }
        break;
    }
    case SEC_CONTENT:
        d->content = (const char *)s->p;
        d->ncontent = s->n;
        s->off = s->n;
        break;
    case SEC_TEXT: {
        d->has_text = true;
        d->ntver = rb_max(s, max);
        d->tver = dec_array(d->ntver, sizeof(uint32_t));
        if (!d->tver)
            return KITH_ENOMEM;
        for (size_t i = 0; i < d->ntver && !s->err; i++)
            d->tver[i] = (uint32_t)rb_max(s, UINT32_MAX);
        d->text = (const char *)s->p + s->off;
        d->ntext = s->n - s->off;
        s->off = s->n;
        break;
    }
    default:
        s->off = s->n; /* unknown sections are skipped: room to grow */
    }
    if (!s->err && s->off != s->n)
        s->err = KITH_ECORRUPT;
    return s->err;
}

/* Checks that the tables agree with each other. */
static int check_decoded(decoded *d)
{
    uint64_t total = d->nops_total, a = 0, g = 0, c = 0;
    for (size_t i = 0; i < d->naruns; i++)
        a += d->aruns[i].len;
    for (size_t i = 0; i < d->nchanges; i++)
        c += d->changes[i].len;
    uint64_t idx = 0;
    for (size_t i = 0; i < d->ngruns; i++) {
        for (uint32_t k = 0; k < d->gruns[i].npar; k++) {
            const d_par *p = &d->par[d->gruns[i].poff + k];
            if (!p->ext && p->x > idx)
                return KITH_ECORRUPT; /* a parent before the start */
        }
        if (!(d->flags & ENC_DELTA))
            for (uint32_t k = 0; k < d->gruns[i].npar; k++)
                if (d->par[d->gruns[i].poff + k].ext)
                    return KITH_ECORRUPT; /* whole documents are self-contained */
        g += d->gruns[i].len;
        idx += d->gruns[i].len;
    }
    if (a != total || g != total || c != total || total > 0x7fffffffu)
        return KITH_ECORRUPT;
    /* An op run is a chain: no graph run may start inside one. */
    uint64_t ostart = 0, gstart = 0;
    for (size_t i = 0, j = 0; i < d->nops; i++) {
        uint64_t oend = ostart + d->ops[i].len;
        while (j < d->ngruns && gstart < oend) {
            if (gstart > ostart)
                return KITH_ECORRUPT;
            gstart += d->gruns[j++].len;
        }
        ostart = oend;
    }
    /* Inserted text: valid UTF-8 with one code point per insert op. */
    long cps = kith_utf8_count(d->content ? d->content : "", d->ncontent);
    uint64_t ins = 0;
    for (size_t i = 0; i < d->nops; i++)
        if (d->ops[i].kind == OP_INS)
            ins += d->ops[i].len;
    if (cps < 0 || (uint64_t)cps != ins)
        return KITH_ECORRUPT;
    d->nins_cps = ins;
    if (d->has_text) {
        if (kith_utf8_count(d->text, d->ntext) < 0)
            return KITH_ECORRUPT;
        for (size_t i = 0; i < d->ntver; i++)
            if (d->tver[i] >= total)
                return KITH_ECORRUPT;
    }
    return KITH_OK;
}

/* The envelope: magic, version, flags, CRC, and the body (decompressed
 * into d->body when compressed). */
/* The envelope without the body: magic, version, CRC, flags, the body's
 * size and where its bytes (compressed or not) are. */
static int parse_header(const uint8_t *buf, size_t len, uint32_t *flags, uint64_t *body_lenp,
                        const uint8_t **payload, size_t *payload_len)
{
    if (len < 11 || memcmp(buf, ENC_MAGIC, 4) != 0)
        return KITH_ECORRUPT;
    if (buf[4] != ENC_VERSION)
        return KITH_EVERSION;
    len -= 4;
    uint32_t want = (uint32_t)buf[len] | (uint32_t)buf[len + 1] << 8 |
                    (uint32_t)buf[len + 2] << 16 | (uint32_t)buf[len + 3] << 24;
    if (len > UINT32_MAX || (uint32_t)crc32(0L, buf, (uInt)len) != want)
        return KITH_ECORRUPT;
    *flags = buf[5];
    if (*flags & ~(ENC_ZSTD | ENC_DELTA))
        return KITH_EVERSION;
    size_t k = kith_varint_get(buf + 6, len - 6, body_lenp);
    if (!k || *body_lenp > MAX_BODY)
        return KITH_ECORRUPT;
    *payload = buf + 6 + k;
    *payload_len = len - 6 - k;
    if (!(*flags & ENC_ZSTD) && *payload_len != *body_lenp)
        return KITH_ECORRUPT;
    if ((*flags & ENC_ZSTD) &&
        ZSTD_getFrameContentSize(*payload, *payload_len) != (unsigned long long)*body_lenp)
        return KITH_ECORRUPT;
    return KITH_OK;
}

/* A whole zstd body into a new buffer. */
static int inflate_all(const uint8_t *payload, size_t payload_len, uint64_t body_len,
                       uint8_t **out)
{
    *out = kith_malloc(body_len ? body_len : 1);
    if (!*out)
        return KITH_ENOMEM;
    size_t got = ZSTD_decompress(*out, body_len, payload, payload_len);
    if (ZSTD_isError(got) || got != body_len) {
        kith_free(*out);
        *out = NULL;
        return KITH_ECORRUPT;
    }
    return KITH_OK;
}

static int parse_envelope(const uint8_t *buf, size_t len, decoded *d, const uint8_t **bodyp,
                          size_t *body_lenp)
{
    memset(d, 0, sizeof *d);
    uint64_t body_len;
    const uint8_t *payload;
    size_t payload_len;
    int rc = parse_header(buf, len, &d->flags, &body_len, &payload, &payload_len);
    if (rc)
        return rc;
    if (d->flags & ENC_ZSTD) {
        rc = inflate_all(payload, payload_len, body_len, &d->body);
        if (rc)
            return rc;
        payload = d->body;
    }
    *bodyp = payload;
    *body_lenp = (size_t)body_len;
    return KITH_OK;
}

/* The sections of a body, then the checks across them. */
static int parse_body(decoded *d, const uint8_t *body, size_t body_len)
{
    rbuf r = {body, body_len, 0, 0};
    uint32_t seen = 0;
    while (r.off < r.n) {
        uint8_t tag = *rb_bytes(&r, 1);
        uint64_t slen = rb_var(&r);
        if (r.err || slen > r.n - r.off)
            return KITH_ECORRUPT;
        if (tag < 32) {
            if (seen & (1u << tag))
                return KITH_ECORRUPT; /* each section once */
            seen |= 1u << tag;
        }
        /* Sections that index others must come after them. */
        if ((tag == SEC_ARUNS || tag == SEC_GRAPH) && !(seen & (1u << SEC_AGENTS)))
            return KITH_ECORRUPT;
        if (tag == SEC_CHANGES && !(seen & (1u << SEC_VIAS)))
            return KITH_ECORRUPT;
        rbuf s = {r.p + r.off, (size_t)slen, 0, 0};
        int rc = parse_section(d, tag, &s);
        if (rc)
            return rc;
        r.off += slen;
    }
    return check_decoded(d);
}

static int parse(const uint8_t *buf, size_t len, decoded *d)
{
    const uint8_t *body;
    size_t body_len;
    int rc = parse_envelope(buf, len, d, &body, &body_len);
    return rc ? rc : parse_body(d, body, body_len);
}

/* ---- applying ---------------------------------------------------------------------- */

/* Cursor over one of the decoded run tables. */
typedef struct cur {
    size_t i;
    uint32_t used; /* ops of run i already consumed */
} cur;

static int apply_decoded(kith_doc *doc, decoded *d, bool use_text)
{
    oplog *log = &doc->log;
    if (log->change_open) {
        int rc = oplog_commit(log, (int64_t)time(NULL) * 1000, NULL);
        if (rc)
            return rc;
    }
    oplog_mark mark;
    int rc = oplog_mark_take(log, &mark);
    if (rc)
        return rc;
    uint32_t first_new = log->n;
    uint32_t *amap = dec_array(d->nagents, sizeof(uint32_t));
    int32_t *vmap = dec_array(d->nvias, sizeof(int32_t));
    uint32_t *map = kith_malloc((d->nops_total + 1) * sizeof(uint32_t)); /* enc index -> LV */
    uint32_t *pbuf = dec_array(d->npar + 1, sizeof(uint32_t));
    if (!amap || !vmap || !map || !pbuf) {
        rc = KITH_ENOMEM;
        goto fail;
    }
    rc = oplog_reserve(log, d->nops, d->ncontent, d->naruns, d->ngruns, d->npar, d->nchanges);
    if (rc)
        goto fail;
    for (uint32_t i = 0; i < d->nagents; i++) {
        rc = oplog_agent(log, d->anames[i], d->alens[i], &amap[i]);
        if (rc)
            goto fail;
    }
    for (uint32_t i = 0; i < d->nvias; i++) {
        rc = oplog_via_index(log, d->vias[i], &vmap[i]);
        if (rc)
            goto fail;
    }
    /* Into an empty document every op is new and keeps its index as LV. */
    bool identity = log->n == 0;
    bool ascii;
    {
        uint64_t ins = 0;
        for (size_t i = 0; i < d->nops; i++)
            if (d->ops[i].kind == OP_INS)
                ins += d->ops[i].len;
        ascii = ins == d->ncontent;
    }
    cur co = {0, 0}, ca = {0, 0}, cg = {0, 0}, cc = {0, 0};
    size_t content_off = 0;
    bool change_started = false;
    for (uint32_t idx = 0; idx < d->nops_total;) {
        const d_op *op = &d->ops[co.i];
        const d_arun *ar = &d->aruns[ca.i];
        const d_grun *gr = &d->gruns[cg.i];
        const d_change *ch = &d->changes[cc.i];
        uint32_t len = op->len - co.used;
        if (ar->len - ca.used < len)
            len = ar->len - ca.used;
        if (gr->len - cg.used < len)
            len = gr->len - cg.used;
        if (ch->len - cc.used < len)
            len = ch->len - cc.used;
        uint32_t agent = amap[ar->agent];
        uint64_t seq = (uint64_t)ar->seq + ca.used;
        uint32_t k = co.used;
        int64_t pos = op->kind == OP_INS ? op->pos + k : op->back ? op->pos - k : op->pos;
        size_t cbytes = 0;
        if (op->kind == OP_INS && ascii) {
            cbytes = len;
        } else if (op->kind == OP_INS) {
            const unsigned char *c = (const unsigned char *)d->content + content_off;
            for (uint32_t j = 0; j < len; j++) {
                unsigned b = c[cbytes];
                cbytes += b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
            }
        }
        if (cc.used == 0)
            change_started = false;
        agent_info *ai = &log->agents[agent];
        uint32_t known = 0;
        if (seq < ai->next_seq)
            known = ai->next_seq - seq < len ? (uint32_t)(ai->next_seq - seq) : len;
        if (known && identity) {
            rc = KITH_ECORRUPT; /* the same op twice in one encoding */
            goto fail;
        }
        if (known) {
            /* Ops we hold already: only remember where they are. */
            for (uint32_t j = 0; j < known; j++)
                map[idx + j] = oplog_lv_of(log, agent, seq + j);
            len = known;
            if (op->kind == OP_INS && ascii) {
                cbytes = len;
            } else if (op->kind == OP_INS) { /* consume only @known code points */
                const unsigned char *c = (const unsigned char *)d->content + content_off;
                cbytes = 0;
                for (uint32_t j = 0; j < len; j++) {
                    unsigned b = c[cbytes];
                    cbytes += b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
                }
            }
        } else {
            if (seq != ai->next_seq) {
                doc_error(doc, "apply: operation %s:%llu arrives before %s:%u",
                          ai->name, (unsigned long long)seq, ai->name, ai->next_seq);
                rc = KITH_EMISSING;
                goto fail;
            }
            size_t np = 0;
            if (cg.used == 0) {
                for (uint32_t j = 0; j < gr->npar; j++) {
                    const d_par *p = &d->par[gr->poff + j];
                    uint32_t lv = p->ext        ? oplog_lv_of(log, amap[p->x], p->seq)
                                  : identity ? idx - p->x
                                             : map[idx - p->x];
                    if (lv == LV_NONE) {
                        doc_error(doc, "apply: a parent of %s:%llu is missing", ai->name,
                                  (unsigned long long)seq);
                        rc = KITH_EMISSING;
                        goto fail;
                    }
                    pbuf[np++] = lv;
                }
            } else {
                pbuf[np++] = identity ? idx - 1 : map[idx - 1];
            }
            if (!change_started)
                log->change_open = false; /* a new change begins here */
            rc = oplog_add_run(log, agent, pbuf, np, (uint8_t)op->kind, (uint32_t)pos, len,
                               op->back, op->kind == OP_INS ? d->content + content_off : NULL,
                               cbytes);
            if (rc)
                goto fail;
            if (!change_started) {
                if ((uint64_t)ch->back + cc.used > seq) {
                    rc = KITH_ECORRUPT; /* a change that starts before seq 0 */
                    goto fail;
                }
                change *c = &log->changes[log->nchanges - 1];
                c->time_ms = ch->time;
                c->via = ch->via >= 0 ? vmap[ch->via] : -1;
                c->fseq = (uint32_t)(seq - cc.used - ch->back);
                change_started = true;
            }
            if (!identity)
                for (uint32_t j = 0; j < len; j++)
                    map[idx + j] = log->n - len + j;
        }
        content_off += cbytes;
        idx += len;
        /* Advance the four cursors. */
        if ((co.used += len) == op->len) {
            co.i++;
            co.used = 0;
        }
        if ((ca.used += len) == ar->len) {
            ca.i++;
            ca.used = 0;
        }
        if ((cg.used += len) == gr->len) {
            cg.i++;
            cg.used = 0;
        }
        if ((cc.used += len) == ch->len) {
            cc.i++;
            cc.used = 0;
        }
    }
    log->change_open = false;

    if (use_text && d->has_text && first_new == 0) {
        /* A whole document into an empty one: take the cached text. */
        long ncp = kith_utf8_count(d->text, d->ntext);
        if ((rc = rope_insert(&doc->text, 0, d->text, d->ntext, (size_t)ncp)))
            goto fail;
        if (kith_grow((void **)&doc->version, &doc->capversion, d->ntver + 1, sizeof(uint32_t))) {
            rc = KITH_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < d->ntver; i++)
            doc->version[i] = d->tver[i]; /* identity: the doc was empty */
        doc->nversion = d->ntver;
        frontier_reduce(log, doc->version, &doc->nversion);
    } else if (log->n > first_new) {
        uint32_t *to = kith_malloc((log->nfrontier + 1) * sizeof(uint32_t));
        if (!to) {
            rc = KITH_ENOMEM;
            goto fail;
        }
        if (log->nfrontier)
            memcpy(to, log->frontier, log->nfrontier * sizeof(uint32_t));
        rc = doc_merge_lvs(doc, to, log->nfrontier);
        kith_free(to);
        if (rc)
            goto fail;
    }
    oplog_mark_free(&mark);
    kith_free(amap);
    kith_free(vmap);
    kith_free(map);
    kith_free(pbuf);
    return KITH_OK;
fail:
    oplog_rollback(log, &mark);
    oplog_mark_free(&mark);
    kith_free(amap);
    kith_free(vmap);
    kith_free(map);
    kith_free(pbuf);
    return rc;
}

/* Bytes of the first @cps code points of valid UTF-8 @s: ASCII eight bytes
 * at a time. */
static size_t utf8_bytes_of(const char *s, uint32_t cps)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0;
    while (cps >= 8) {
        uint64_t w;
        memcpy(&w, u + b, 8);
        if (w & 0x8080808080808080ull)
            break;
        b += 8;
        cps -= 8;
    }
    while (cps--) {
        unsigned x = u[b];
        b += x < 0x80 ? 1 : (x & 0xe0) == 0xc0 ? 2 : (x & 0xf0) == 0xe0 ? 3 : 4;
        if (cps >= 8 && x < 0x80) { /* back to words after a non-ASCII char */
            uint64_t w;
            while (cps >= 8) {
                memcpy(&w, u + b, 8);
                if (w & 0x8080808080808080ull)
                    break;
                b += 8;
                cps -= 8;
            }
        }
    }
    return b;
}

/*
 * A whole document into an empty one: the decoded tables become the log's
 * tables directly, run by run, with no per-op work. Equivalent to
 * apply_decoded with the cached text.
 */
static int decode_bulk(kith_doc *doc, decoded *d, bool with_text)
{
    oplog *log = &doc->log;
    uint32_t *na = NULL; /* offsets of multi-byte characters in the content */
    size_t nna = 0, na_i = 0;
    int rc = oplog_reserve(log, d->nops, d->ncontent, d->naruns, d->ngruns, d->npar,
                           d->nchanges);
    if (rc)
        return rc;
    uint32_t *amap = dec_array(d->nagents, sizeof(uint32_t));
    if (!amap)
        return KITH_ENOMEM;
    for (uint32_t i = 0; i < d->nagents && rc == KITH_OK; i++)
        rc = oplog_agent(log, d->anames[i], d->alens[i], &amap[i]);
    for (uint32_t i = 0; i < d->nvias && rc == KITH_OK; i++) {
        int32_t vi;
        rc = oplog_via_index(log, d->vias[i], &vi);
    }
    if (rc)
        goto out;
    if (log->nvias != d->nvias || log->nagents != d->nagents) {
        rc = KITH_ECORRUPT; /* a name listed twice */
        goto out;
    }
    /* Byte lengths of insert runs: the content is mostly ASCII, so note
     * where its multi-byte characters start and skip ASCII runs in O(1). */
    if (d->ncontent != d->nins_cps) {
        const unsigned char *c = (const unsigned char *)d->content;
        /* Each multi-byte character has at least one continuation byte, so
         * there are at most (bytes - code points) of them. */
        na = kith_malloc((d->ncontent - d->nins_cps + 1) * sizeof(uint32_t));
        if (!na) {
            rc = KITH_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < d->ncontent;) {
            uint64_t w;
            if (i + 8 <= d->ncontent) {
                memcpy(&w, c + i, 8);
                if (!(w & 0x8080808080808080ull)) {
                    i += 8;
                    continue;
                }
            }
            if (c[i] >= 0xc0)
                na[nna++] = (uint32_t)i;
            i++;
        }
    }
    uint32_t lv = 0;
    size_t coff = 0;
    for (size_t i = 0; i < d->nops; i++) {
        const d_op *o = &d->ops[i];
        log->ops[log->nops++] = (op_run){.lv = lv,
                                         .len = o->len,
                                         .pos = (uint32_t)o->pos,
                                         .kind = (uint8_t)o->kind,
                                         .back = (uint8_t)(o->back && o->len > 1),
                                         .content = (uint32_t)coff,
                                         .len0 = LEN_UNKNOWN};
        if (o->kind == OP_INS) {
            while (na_i < nna && na[na_i] < coff)
                na_i++;
            if (na_i >= nna || na[na_i] >= coff + o->len)
                coff += o->len; /* all ASCII */
            else
                coff += utf8_bytes_of(d->content + coff, o->len);
        }
        lv += o->len;
    }
    if (d->ncontent)
        memcpy(log->ins, d->content, d->ncontent);
    log->nins = d->ncontent;
    lv = 0;
    for (size_t i = 0; i < d->naruns; i++) {
        const d_arun *r = &d->aruns[i];
        agent_info *ai = &log->agents[amap[r->agent]];
        if (r->seq != ai->next_seq || (uint64_t)r->seq + r->len > UINT32_MAX) {
            rc = KITH_ECORRUPT; /* seqs of an agent are dense from 0 */
            goto out;
        }
        if (!log->naruns || log->aruns[log->naruns - 1].agent != amap[r->agent])
            log->aruns[log->naruns++] =
                (agent_run){.lv = lv, .agent = amap[r->agent], .seq = r->seq};
        seq_run *sr = ai->nseqs ? &ai->seqs[ai->nseqs - 1] : NULL;
        if (sr && sr->lv + sr->len == lv) {
            sr->len += r->len;
        } else {
            if (kith_grow((void **)&ai->seqs, &ai->capseqs, ai->nseqs + 1, sizeof(seq_run))) {
                rc = KITH_ENOMEM;
                goto out;
            }
            ai->seqs[ai->nseqs++] = (seq_run){.seq = r->seq, .lv = lv, .len = r->len};
        }
        ai->next_seq += r->len;
        lv += r->len;
    }
    lv = 0;
    for (size_t i = 0; i < d->ngruns; i++) {
        const d_grun *g = &d->gruns[i];
        graph_run *gr = &log->gruns[log->ngruns++];
        *gr = (graph_run){.lv = lv, .len = g->len, .poff = (uint32_t)log->npar, .npar = g->npar};
        for (uint32_t k = 0; k < g->npar; k++)
            log->par[log->npar++] = lv - d->par[g->poff + k].x;
        rc = frontier_advance(&log->frontier, &log->nfrontier, &log->capfrontier,
                              lv + g->len - 1, log->par + gr->poff, gr->npar);
        if (rc)
            goto out;
        lv += g->len;
    }
    log->n = lv;
    /* Lengths along chains: a run after its parent knows where it starts. */
    for (size_t i = 0, gi = 0; i < log->nops; i++) {
        op_run *r = &log->ops[i];
        while (gi + 1 < log->ngruns && log->gruns[gi + 1].lv <= r->lv)
            gi++;
        const graph_run *g = &log->gruns[gi];
        if (r->lv == g->lv) {
            r->len0 = g->npar == 0   ? 0
                      : g->npar == 1 ? oplog_len_after(log, log->par[g->poff])
                                     : LEN_UNKNOWN;
        } else {
            /* The op before is the last of the previous run: no search. */
            const op_run *p = r - 1;
            r->len0 = p->len0 == LEN_UNKNOWN                  ? LEN_UNKNOWN
                      : p->kind == OP_INS                     ? p->len0 + p->len
                      : p->len0 >= p->len ? p->len0 - p->len : LEN_UNKNOWN;
        }
    }
    lv = 0;
    for (size_t i = 0; i < d->nchanges; i++) {
        const d_change *c = &d->changes[i];
        kith_id id;
        oplog_id_of(log, lv, &id);
        if (c->back > id.seq) {
            rc = KITH_ECORRUPT; /* a change that starts before seq 0 */
            goto out;
        }
        log->changes[log->nchanges++] = (change){.lv = lv,
                                                 .via = c->via,
                                                 .time_ms = c->time,
                                                 .fagent = id.agent,
                                                 .fseq = (uint32_t)(id.seq - c->back)};
        lv += c->len;
    }
    log->change_open = false;
    if (with_text) {
        long ncp = kith_utf8_count(d->text, d->ntext);
        rc = rope_insert(&doc->text, 0, d->text, d->ntext, (size_t)ncp);
        if (rc)
            goto out;
    }
    if (kith_grow((void **)&doc->version, &doc->capversion, d->ntver + 1, sizeof(uint32_t))) {
        rc = KITH_ENOMEM;
        goto out;
    }
    if (d->ntver)
        memcpy(doc->version, d->tver, d->ntver * sizeof(uint32_t));
    doc->nversion = d->ntver;
    rc = frontier_reduce(log, doc->version, &doc->nversion);
out:
    kith_free(amap);
    kith_free(na);
    return rc;
}

/* The TEXT section of a body, without parsing the others; false if none. */
static bool find_text(const uint8_t *body, size_t n, const char **text, size_t *ntext)
{
    rbuf r = {body, n, 0, 0};
    while (r.off < r.n) {
        const uint8_t *tag = rb_bytes(&r, 1);
        uint64_t slen = rb_var(&r);
        if (r.err || slen > r.n - r.off)
            return false;
        if (*tag == SEC_TEXT) {
            rbuf t = {r.p + r.off, (size_t)slen, 0, 0};
            uint64_t k = rb_max(&t, t.n);
            for (uint64_t i = 0; i < k && !t.err; i++)
                rb_var(&t);
            if (t.err)
                return false;
            *text = (const char *)t.p + t.off;
            *ntext = t.n - t.off;
            return true;
        }
        r.off += slen;
    }
    return false;
}

/*
 * The first @want bytes of a zstd body, decompressed into @buf (which holds
 * the whole body): zstd works block by block, so a prefix costs only the
 * blocks it spans.
 */
static int inflate_prefix(ZSTD_DCtx *z, ZSTD_inBuffer *in, uint8_t *buf, size_t *have,
                          size_t want)
{
    ZSTD_outBuffer out = {buf, want, *have};
    while (out.pos < want) {
        size_t before_in = in->pos, before_out = out.pos;
        size_t r = ZSTD_decompressStream(z, &out, in);
        if (ZSTD_isError(r))
            return KITH_ECORRUPT;
        if (out.pos == before_out && in->pos == before_in)
            return KITH_ECORRUPT; /* the frame ends before the size it declared */
    }
    *have = out.pos;
    return KITH_OK;
}

/*
 * Loading a document shows its text at once: the envelope and CRC are
 * checked and the cached text (the body's first section, as the encoder
 * writes it) is decompressed and taken; the rest of the history stays
 * compressed until a call needs it (doc_ready). That call parses and checks
 * it fully, and fails with KITH_ECORRUPT, for good, if it is malformed.
 */
int kith_doc_decode(const uint8_t *buf, size_t len, kith_doc **out)
{
    *out = NULL;
    uint32_t flags;
    uint64_t body_len;
    const uint8_t *payload;
    size_t payload_len, have = 0;
    uint8_t *body = NULL;
    ZSTD_DCtx *z = NULL;
    kith_doc *doc = NULL;
    const char *text = NULL;
    size_t ntext = 0;
    int rc = parse_header(buf, len, &flags, &body_len, &payload, &payload_len);
    if (rc == KITH_OK && (flags & ENC_DELTA))
        rc = KITH_ECORRUPT; /* a delta is not a document */
    if (rc)
        return rc;
    const uint8_t *b = payload;
    size_t nb = payload_len;
    if (flags & ENC_ZSTD) {
        /* Decompress the first section's header, then the section. */
        body = kith_malloc(body_len ? body_len : 1);
        z = ZSTD_createDCtx();
        if (!body || !z) {
            rc = KITH_ENOMEM;
            goto out;
        }
        ZSTD_inBuffer in = {payload, payload_len, 0};
        size_t want = body_len < 11 ? (size_t)body_len : 11;
        if ((rc = inflate_prefix(z, &in, body, &have, want)))
            goto out;
        uint64_t slen = 0;
        size_t k = have > 1 ? kith_varint_get(body + 1, have - 1, &slen) : 0;
        if (k && body[0] == SEC_TEXT && slen <= body_len - 1 - k)
            want = 1 + k + (size_t)slen;
        else
            want = (size_t)body_len; /* the text is not first: take it all */
        if ((rc = inflate_prefix(z, &in, body, &have, want)))
            goto out;
        b = body;
        nb = have;
    }
    if (!find_text(b, nb, &text, &ntext)) {
        /* No cached text: parse and replay now. */
        decoded d;
        memset(&d, 0, sizeof d);
        if ((flags & ENC_ZSTD) && have < body_len)
            rc = KITH_ECORRUPT; /* a first TEXT section that does not parse */
        if (rc == KITH_OK)
            rc = parse_body(&d, b, (size_t)body_len);
        if (rc == KITH_OK)
            rc = kith_doc_new(&doc);
        if (rc == KITH_OK)
            rc = apply_decoded(doc, &d, true);
        decoded_free(&d);
        goto out;
    }
    long ncp = kith_utf8_count(text, ntext);
    if (ncp < 0) {
        rc = KITH_ECORRUPT;
        goto out;
    }
    rc = kith_doc_new(&doc);
    if (rc == KITH_OK)
        rc = rope_insert(&doc->text, 0, text, ntext, (size_t)ncp);
    if (rc)
        goto out;
    /* Keep the history as it came, compressed or not, for doc_ready. */
    doc->lazy = kith_malloc(payload_len ? payload_len : 1);
    if (!doc->lazy) {
        rc = KITH_ENOMEM;
        goto out;
    }
    memcpy(doc->lazy, payload, payload_len);
    doc->lazy_len = payload_len;
    doc->lazy_body_len = (size_t)body_len;
    doc->lazy_zstd = (flags & ENC_ZSTD) != 0;
out:
    kith_free(body);
    ZSTD_freeDCtx(z);
    if (rc) {
        kith_doc_free(doc);
        return rc;
    }
    *out = doc;
    return KITH_OK;
}

int doc_ready(kith_doc *doc)
{
    if (doc->lazy_rc)
        return doc->lazy_rc;
    if (!doc->lazy)
        return KITH_OK;
    decoded d;
    memset(&d, 0, sizeof d);
    const uint8_t *body = doc->lazy;
    int rc = KITH_OK;
    if (doc->lazy_zstd) {
        rc = inflate_all(doc->lazy, doc->lazy_len, doc->lazy_body_len, &d.body);
        body = d.body;
    }
    if (rc == KITH_OK)
        rc = parse_body(&d, body, doc->lazy_body_len);
    if (rc == KITH_OK && !d.has_text)
        rc = KITH_ECORRUPT;
    if (rc == KITH_OK)
        rc = decode_bulk(doc, &d, false);
    decoded_free(&d);
    if (rc == KITH_ENOMEM) {
        /* Out of memory: leave the bytes, the next call tries again. */
        oplog_free(&doc->log);
        oplog_init(&doc->log);
        doc->nversion = 0;
        return rc;
    }
    kith_free(doc->lazy);
    doc->lazy = NULL;
    doc->lazy_len = doc->lazy_body_len = 0;
    if (rc) {
        /* A malformed history: the document keeps its text, every call
         * that needs the history reports the error. */
        oplog_free(&doc->log);
        oplog_init(&doc->log);
        doc->nversion = 0;
        doc->lazy_rc = rc;
        doc_error(doc, "the document's history is malformed");
    }
    return rc;
}

int kith_doc_apply(kith_doc *doc, const uint8_t *buf, size_t len)
{
    decoded d;
    int rc = doc_ready(doc);
    if (rc)
        return rc;
    rc = parse(buf, len, &d);
    if (rc) {
        doc_error(doc, "apply: malformed encoding");
    } else {
        /* Validate first, against a scratch copy of nothing: apply_decoded
         * rolls the log back on any failure, and the text is only changed
         * by a merge that has fully succeeded. */
        rc = apply_decoded(doc, &d, false);
    }
    decoded_free(&d);
    return rc;
}

/* ---- version vectors --------------------------------------------------------------- */

int kith_doc_summary(const kith_doc *cdoc, uint8_t **out, size_t *len)
{
    /* Loading the history of a decoded document is logically const. */
    kith_doc *doc = (kith_doc *)cdoc;
    int rc = doc_ready(doc);
    if (rc) {
        *out = NULL;
        *len = 0;
        return rc;
    }
    wbuf w = {0};
    uint8_t v = SUM_VERSION;
    *out = NULL;
    *len = 0;
    wb_bytes(&w, &v, 1);
    wb_var(&w, doc->log.nagents);
    for (size_t i = 0; i < doc->log.nagents; i++) {
        const agent_info *a = &doc->log.agents[i];
        wb_var(&w, a->name_len);
        wb_bytes(&w, a->name, a->name_len);
        wb_var(&w, a->next_seq);
    }
    if (w.err) {
        kith_free(w.p);
        return w.err;
    }
    *out = w.p;
    *len = w.n;
    return KITH_OK;
}

int kith_doc_encode_since(kith_doc *doc, const uint8_t *summary, size_t summary_len,
                          uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc0 = doc_ready(doc);
    if (rc0)
        return rc0;
    if (summary_len < 1 || summary[0] != SUM_VERSION)
        return summary_len < 1 ? KITH_ECORRUPT : KITH_EVERSION;
    rbuf r = {summary + 1, summary_len - 1, 0, 0};
    /* What the peer holds, per agent of ours. */
    uint32_t *have = kith_calloc(doc->log.nagents + 1, sizeof(uint32_t));
    if (!have)
        return KITH_ENOMEM;
    uint64_t n = rb_max(&r, r.n);
    for (uint64_t i = 0; i < n && !r.err; i++) {
        size_t l = rb_max(&r, KITH_AGENT_MAX);
        const uint8_t *name = rb_bytes(&r, l);
        uint64_t seq = rb_max(&r, UINT32_MAX);
        if (r.err)
            break;
        for (size_t a = 0; a < doc->log.nagents; a++)
            if (doc->log.agents[a].name_len == l && !memcmp(doc->log.agents[a].name, name, l))
                have[a] = (uint32_t)seq;
    }
    if (r.err || r.off != r.n) {
        kith_free(have);
        return KITH_ECORRUPT;
    }
    /* The ops the peer lacks, as LV ranges: per agent run, the part past
     * what the peer holds. */
    lvr *ranges = NULL;
    size_t nr = 0, cap = 0;
    int rc = KITH_OK;
    uint32_t base = 0;
    for (size_t i = 0; i < doc->log.naruns; i++) {
        const agent_run *ar = &doc->log.aruns[i];
        uint32_t end = oplog_agent_run_end(&doc->log, i);
        uint32_t start = ar->lv;
        if (have[ar->agent] > ar->seq)
            start = ar->lv + (have[ar->agent] - ar->seq < end - ar->lv
                                  ? have[ar->agent] - ar->seq
                                  : end - ar->lv);
        if (start >= end)
            continue;
        if (nr && ranges[nr - 1].b == start) {
            ranges[nr - 1].b = end;
        } else {
            if (kith_grow((void **)&ranges, &cap, nr + 1, sizeof(lvr))) {
                rc = KITH_ENOMEM;
                break;
            }
            ranges[nr++] = (lvr){start, end, base};
        }
        base += end - start;
    }
    if (rc == KITH_OK)
        rc = encode_ranges(doc, ranges, nr, true, 19, out, len);
    kith_free(ranges);
    kith_free(have);
    return rc;
}

/* One author's operations with seqs in [from, to): what one change of a
 * workspace carries when it is synced on its own. */
int kith_doc_encode_range(kith_doc *doc, kith_agent agent, uint64_t from, uint64_t to,
                          uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = doc_ready(doc);
    if (rc)
        return rc;
    if (agent >= doc->log.nagents || from > to || to > doc->log.agents[agent].next_seq)
        return KITH_EINVAL;
    lvr *ranges = NULL;
    size_t nr = 0, cap = 0;
    uint32_t base = 0;
    for (size_t i = 0; i < doc->log.naruns && rc == KITH_OK; i++) {
        const agent_run *ar = &doc->log.aruns[i];
        if (ar->agent != agent)
            continue;
        uint32_t end = oplog_agent_run_end(&doc->log, i);
        uint64_t s0 = ar->seq, s1 = ar->seq + (uint64_t)(end - ar->lv);
        uint64_t a = s0 > from ? s0 : from, b = s1 < to ? s1 : to;
        if (a >= b)
            continue;
        uint32_t start = ar->lv + (uint32_t)(a - s0), stop = ar->lv + (uint32_t)(b - s0);
        if (nr && ranges[nr - 1].b == start) {
            ranges[nr - 1].b = stop;
        } else if (kith_grow((void **)&ranges, &cap, nr + 1, sizeof(lvr))) {
            rc = KITH_ENOMEM;
        } else {
            ranges[nr++] = (lvr){start, stop, base};
        }
        base += stop - start;
    }
    if (rc == KITH_OK)
        rc = encode_ranges(doc, ranges, nr, true, 19, out, len);
    kith_free(ranges);
    return rc;
}
