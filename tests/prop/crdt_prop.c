/*
 * Property test of the text CRDT (include/kith/crdt.h). Each session runs 3-5
 * replicas through random local edits (multi-byte UTF-8 included) and random
 * partial syncs: summary / encode_since / apply between random pairs in random
 * orders, duplicated deliveries, stale and misaddressed deltas (which must be
 * refused with KITH_EMISSING and change nothing), whole-document encodings and
 * reloads through encode/decode. Every replica is checked against a naive
 * reference model fed the same operations in the same delivery orders: an
 * array of characters with tombstones, integrated with Gentle's YjsMod rule
 * (reference-crdts integrateYjsMod, shown equivalent to FugueMax). Checked:
 * the text after every step, blame, version frontiers, convergence, that runs
 * typed concurrently at one place never interleave, and the checkout (text_at,
 * diff, version_str/parse) of versions recorded along the way.
 *
 * KITH_PROP_ITERS sets the number of sessions (default 5000; 1000 when
 * KITH_ASAN=1). KITH_SEED fixes the seed of the first session (session i uses
 * seed + i, so a failing session reruns alone). A failure prints the seed, the
 * command to rerun it and the session's action log.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kith/kith.h"

/* ---- the two rules the reference model must share with the engine ------- */

/*
 * Order of two concurrent inserts with the same origins (the "raw conflict"
 * of YjsMod): nonzero when the item by @na/@sa goes before the one by
 * @nb/@sb. reference-crdts: lower agent name first, names compared bytewise
 * (a proper prefix first); same name: lower seq first. Flip here if the
 * engine's tie-break differs.
 */
static int model_tie_before(const char *na, uint32_t sa, const char *nb, uint32_t sb)
{
    int c = strcmp(na, nb); /* strcmp compares as unsigned char: bytewise */
    if (c != 0)
        return c < 0;
    return sa < sb;
}

/*
 * Origins of a local insert at visible position p. Eg-walker (its reference
 * implementation and diamond-types): origin-left is the visible character at
 * p-1, origin-right the next item after it in the raw list, deleted or not.
 * reference-crdts' localInsert instead takes the visible character at p as
 * origin-right and the raw item before it as origin-left. The two differ when
 * tombstones sit between p-1 and p; 1 selects Eg-walker's rule.
 */
#define MODEL_ORIGINS_EGWALKER 1

/* ---- random numbers, log and failure report ------------------------------ */

static uint64_t rng;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

static int chance(unsigned pct)
{
    return below(100) < pct;
}

/* The session's action log, printed when a check fails. */
static char logbuf[1 << 16];
static size_t loglen;

__attribute__((format(printf, 1, 2))) static void plog(const char *fmt, ...)
{
    if (loglen > sizeof logbuf - 512) { /* keep the newest half */
        size_t keep = sizeof logbuf / 2;
        memmove(logbuf, logbuf + loglen - keep, keep);
        memcpy(logbuf, "...\n", 4);
        loglen = keep;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(logbuf + loglen, sizeof logbuf - loglen, fmt, ap);
    va_end(ap);
    if (n > 0)
        loglen += (size_t)n < sizeof logbuf - loglen ? (size_t)n : sizeof logbuf - loglen - 1;
}

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "crdt_prop: check failed at %s:%d: %s\n  ", __FILE__, __LINE__, #c);   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

#define CHECK_OK(doc, expr)                                                                        \
    do {                                                                                           \
        int ck_rc = (expr);                                                                        \
        CHECK(ck_rc == KITH_OK, "%s returned %s (%s)", #expr, kith_err_name(ck_rc),                \
              (doc) ? kith_doc_errmsg(doc) : "");                                                  \
    } while (0)

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((expr) != 0)                                                                           \
            return -1;                                                                             \
    } while (0)

/* ---- UTF-8 ------------------------------------------------------------------- */

static size_t utf8_put(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xc0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xe0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        p[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes well-formed UTF-8 (the engine's output) into @out; returns the count
 * or -1 if malformed. */
static long utf8_decode(const char *s, size_t len, uint32_t *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t c = p[i], need, min;
        if (c < 0x80) {
            need = 0, min = 0;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, min = 0x10000, c &= 0x07;
        } else {
            return -1;
        }
        if (need && i + need >= len)
            return -1;
        for (uint32_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return -1;
            c = (c << 6) | (p[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return -1;
        if (n < cap)
            out[n] = c;
        n++;
        i += need + 1;
    }
    return (long)n;
}

/* Text alphabet: 1-, 2-, 3- and 4-byte code points. Runs typed in the
 * interleaving phase use code points outside it, one per run. */
static const uint32_t alphabet[] = {'a',  'b',  'c',    'd',    'e',     ' ',    '\n',
                                    0xe9, 0xdf, 0x20ac, 0x4e2d, 0x1f600, 0x10348};

static uint32_t run_cp(unsigned k)
{
    static const uint32_t base[4] = {'A', 0x391, 0x3041, 0x1f680};
    return base[k % 4] + k / 4;
}

/* ---- the reference model ---------------------------------------------------- */

#define MAXR   5
#define MAXREC 8
#define MAXQ   8

typedef struct mid {
    int agent; /* replica index; -1: none (document start or end) */
    uint32_t seq;
} mid;

static const mid MID_NONE = {-1, 0};

typedef struct mop {
    int is_del;
    uint32_t cp;         /* insert: the code point */
    mid ol, orr;         /* insert: origin-left, origin-right */
    mid target;          /* delete: the item deleted */
    size_t change;       /* index into session.ch */
    uint32_t deps[MAXR]; /* ops of each agent its creator held */
} mop;

typedef struct mchange {
    mid first;
    int64_t time;
    const char *via;
} mchange;

typedef struct mitem {
    mid id;
    int del;
} mitem;

typedef struct mrep {
    mitem *items;
    size_t n, cap;
    uint32_t vv[MAXR]; /* ops held per agent: always a prefix of its ops */
} mrep;

typedef struct vrec {
    int r;
    unsigned gen;
    kith_id *v;
    size_t nv;
    char *vstr;
    char *text;
    size_t text_len;
} vrec;

typedef struct qdelta {
    uint8_t *buf;
    size_t len;
    uint32_t lo[MAXR], hi[MAXR];
    int src, dst;
} qdelta;

typedef struct session {
    int R;
    const char *name[MAXR];
    kith_doc *doc[MAXR];
    kith_agent ag[MAXR];
    unsigned gen[MAXR]; /* bumped when a replica reloads from its encoding */
    mop *ops[MAXR];
    size_t cap_ops[MAXR];
    mchange *ch;
    size_t nch, cap_ch;
    long open_ch[MAXR];
    mrep m[MAXR];
    vrec rec[MAXREC];
    int nrec;
    qdelta q[MAXQ];
    int nq;
    unsigned runs;
} session;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "crdt_prop: out of memory\n");
        exit(2);
    }
    return q;
}

static int mid_eq(mid a, mid b)
{
    return a.agent == b.agent && (a.agent < 0 || a.seq == b.seq);
}

static mop *op_of(session *s, mid id)
{
    return &s->ops[id.agent][id.seq];
}

static long m_find(const mrep *m, mid id)
{
    if (id.agent < 0)
        return -1;
    for (size_t i = 0; i < m->n; i++)
        if (mid_eq(m->items[i].id, id))
            return (long)i;
    fprintf(stderr, "crdt_prop: model bug: item %d:%u not found\n", id.agent, id.seq);
    abort();
}

static void m_insert_at(mrep *m, size_t at, mid id)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->items = xrealloc(m->items, m->cap * sizeof *m->items);
    }
    memmove(m->items + at + 1, m->items + at, (m->n - at) * sizeof *m->items);
    m->items[at].id = id;
    m->items[at].del = 0;
    m->n++;
}

/* integrateYjsMod: places item @id between its origins among the concurrent
 * items already there. */
static void m_integrate(session *s, mrep *m, mid id)
{
    const mop *op = op_of(s, id);
    long n = (long)m->n;
    long left = m_find(m, op->ol);
    long right = op->orr.agent < 0 ? n : m_find(m, op->orr);
    long dest = left + 1;
    int scanning = 0;
    for (long i = left + 1;; i++) {
        if (!scanning)
            dest = i;
        if (i == n || i == right)
            break;
        const mitem *o = &m->items[i];
        const mop *oop = op_of(s, o->id);
        long oleft = m_find(m, oop->ol);
        long oright = oop->orr.agent < 0 ? n : m_find(m, oop->orr);
        if (oleft < left)
            break;
        if (oleft > left)
            continue;
        if (oright < right) {
            scanning = 1;
            continue;
        }
        scanning = 0;
        if (oright == right &&
            model_tie_before(s->name[id.agent], id.seq, s->name[o->id.agent], o->id.seq))
            break;
    }
    m_insert_at(m, (size_t)dest, id);
}

static void m_apply_op(session *s, mrep *m, mid id)
{
    const mop *op = op_of(s, id);
    if (m->vv[id.agent] != id.seq) {
        fprintf(stderr, "crdt_prop: model bug: op %d:%u out of order\n", id.agent, id.seq);
        abort();
    }
    if (op->is_del)
        m->items[m_find(m, op->target)].del = 1;
    else
        m_integrate(s, m, id);
    m->vv[id.agent]++;
}

/* Raw index of the visible item at @pos, or m->n if @pos is the length. */
static size_t m_raw_of_visible(const mrep *m, size_t pos)
{
    size_t i = 0;
    for (; i < m->n; i++) {
        if (m->items[i].del)
            continue;
        if (pos == 0)
            return i;
        pos--;
    }
    return i;
}

static size_t m_len(const mrep *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += !m->items[i].del;
    return n;
}

static mid m_new_op(session *s, int r, mop op)
{
    mrep *m = &s->m[r];
    mid id = {r, m->vv[r]};
    if (s->open_ch[r] < 0) {
        if (s->nch == s->cap_ch) {
            s->cap_ch = s->cap_ch ? s->cap_ch * 2 : 16;
            s->ch = xrealloc(s->ch, s->cap_ch * sizeof *s->ch);
        }
        s->ch[s->nch] = (mchange){id, 0, NULL};
        s->open_ch[r] = (long)s->nch++;
    }
    op.change = (size_t)s->open_ch[r];
    memcpy(op.deps, m->vv, sizeof op.deps);
    if (id.seq == s->cap_ops[r]) {
        s->cap_ops[r] = s->cap_ops[r] ? s->cap_ops[r] * 2 : 64;
        s->ops[r] = xrealloc(s->ops[r], s->cap_ops[r] * sizeof *s->ops[r]);
    }
    s->ops[r][id.seq] = op;
    m_apply_op(s, m, id);
    return id;
}

static void m_local_insert(session *s, int r, size_t pos, uint32_t cp)
{
    mrep *m = &s->m[r];
    mop op = {0};
    op.cp = cp;
#if MODEL_ORIGINS_EGWALKER
    if (pos == 0) {
        op.ol = MID_NONE;
        op.orr = m->n ? m->items[0].id : MID_NONE;
    } else {
        size_t k = m_raw_of_visible(m, pos - 1);
        op.ol = m->items[k].id;
        op.orr = k + 1 < m->n ? m->items[k + 1].id : MID_NONE;
    }
#else
    size_t i = m_raw_of_visible(m, pos);
    op.ol = i ? m->items[i - 1].id : MID_NONE;
    op.orr = i < m->n ? m->items[i].id : MID_NONE;
#endif
    m_new_op(s, r, op);
}

static void m_local_delete(session *s, int r, size_t pos)
{
    mop op = {0};
    op.is_del = 1;
    op.target = s->m[r].items[m_raw_of_visible(&s->m[r], pos)].id;
    m_new_op(s, r, op);
}

/* The model text of replica @r, UTF-8, in a buffer reused between calls. */
static const char *m_text(const session *s, int r, size_t *len)
{
    static char *buf;
    static size_t cap;
    const mrep *m = &s->m[r];
    if (cap < m->n * 4 + 1) {
        cap = m->n * 4 + 64;
        buf = xrealloc(buf, cap);
    }
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!m->items[i].del)
            n += utf8_put(buf + n, s->ops[m->items[i].id.agent][m->items[i].id.seq].cp);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Would a delta holding every agent q's ops [lo[q], hi[q]) lack parents at
 * replica @dst? Its ops plus dst's must be causally closed. */
static int m_missing(const session *s, int dst, const uint32_t *lo, const uint32_t *hi)
{
    const uint32_t *vv = s->m[dst].vv;
    uint32_t u[MAXR]; /* the held prefix of each agent after the delta */
    for (int x = 0; x < s->R; x++)
        u[x] = lo[x] <= vv[x] ? (hi[x] > vv[x] ? hi[x] : vv[x]) : vv[x];
    for (int q = 0; q < s->R; q++) {
        for (uint32_t seq = lo[q] > vv[q] ? lo[q] : vv[q]; seq < hi[q]; seq++) {
            if (lo[q] > vv[q])
                return 1;
            const mop *op = &s->ops[q][seq];
            for (int x = 0; x < s->R; x++)
                if (x != q && op->deps[x] > u[x])
                    return 1;
        }
    }
    return 0;
}

/* Integrates the ops of a delta (see m_missing) in a causal order. */
static void m_apply_range(session *s, int dst, const uint32_t *lo, const uint32_t *hi)
{
    mrep *m = &s->m[dst];
    for (;;) {
        int progress = 0;
        for (int q = 0; q < s->R; q++) {
            while (m->vv[q] < hi[q] && m->vv[q] >= lo[q]) {
                const mop *op = &s->ops[q][m->vv[q]];
                int ready = 1;
                for (int x = 0; x < s->R; x++)
                    if (op->deps[x] > m->vv[x])
                        ready = 0;
                if (!ready)
                    break;
                m_apply_op(s, m, (mid){q, m->vv[q]});
                progress = 1;
            }
        }
        if (!progress)
            break;
    }
    for (int q = 0; q < s->R; q++) {
        if (m->vv[q] < hi[q] && m->vv[q] >= lo[q]) {
            fprintf(stderr, "crdt_prop: model bug: delta not causally closed\n");
            abort();
        }
    }
}

/* ---- checks of one replica against its model ---------------------------------- */

static void print_escaped(const char *label, const char *s, size_t len)
{
    fprintf(stderr, "  %s (%zu bytes): \"", label, len);
    for (size_t i = 0; i < len && i < 600; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else
            fputc(c, stderr);
    }
    fprintf(stderr, "%s\"\n", len > 600 ? "..." : "");
}

static int check_text(session *s, int r, const char *when)
{
    char *t = NULL;
    size_t len = 0, mlen;
    CHECK_OK(s->doc[r], kith_doc_text(s->doc[r], &t, &len));
    const char *mt = m_text(s, r, &mlen);
    int same = len == mlen && memcmp(t, mt, len) == 0 && t[len] == 0;
    if (!same) {
        fprintf(stderr, "crdt_prop: replica %d (%s) differs from the model after %s\n", r,
                s->name[r], when);
        print_escaped("engine", t, len);
        print_escaped("model ", mt, mlen);
        /* A hint for the report: the engine's own replay of its log. */
        kith_id *v = NULL;
        size_t nv = 0;
        char *r2 = NULL;
        size_t l2 = 0;
        if (kith_doc_version(s->doc[r], &v, &nv) == KITH_OK &&
            kith_doc_text_at(s->doc[r], v, nv, &r2, &l2) == KITH_OK)
            print_escaped("engine text_at(current version)", r2, l2);
        kith_free(r2);
        kith_free(v);
    }
    kith_free(t);
    CHECK(same, "text of replica %d after %s", r, when);
    CHECK(kith_doc_len(s->doc[r]) == m_len(&s->m[r]), "kith_doc_len %zu, model %zu",
          kith_doc_len(s->doc[r]), m_len(&s->m[r]));
    return 0;
}

static int agent_index(const session *s, const kith_doc *doc, kith_agent a)
{
    const char *nm = kith_doc_agent_name(doc, a);
    for (int q = 0; nm && q < s->R; q++)
        if (strcmp(nm, s->name[q]) == 0)
            return q;
    return -1;
}

/* A hint for failure reports: the engine's version vector, read from its
 * summary if that has the layout of format 1 (version byte, count, then name
 * length, name, ops held); silent otherwise. */
static void print_summary(const kith_doc *d)
{
    uint8_t *b = NULL;
    size_t n = 0, o = 1;
    if (kith_doc_summary(d, &b, &n) != KITH_OK || n < 2 || b[0] != 1) {
        kith_free(b);
        return;
    }
    uint64_t cnt = 0, v;
    int sh = 0;
    for (; o < n && sh < 63; sh += 7) {
        cnt |= (uint64_t)(b[o] & 0x7f) << sh;
        if (!(b[o++] & 0x80))
            break;
    }
    fprintf(stderr, "  engine's summary:");
    for (uint64_t i = 0; i < cnt && o < n; i++) {
        size_t l = b[o++];
        if (l > 64 || o + l >= n)
            break;
        fprintf(stderr, " %.*s=", (int)l, (const char *)b + o);
        o += l;
        v = 0;
        for (sh = 0; o < n && sh < 63; sh += 7) {
            v |= (uint64_t)(b[o] & 0x7f) << sh;
            if (!(b[o++] & 0x80))
                break;
        }
        fprintf(stderr, "%" PRIu64, v);
    }
    fprintf(stderr, "\n");
    kith_free(b);
}

/* The version is the frontier of the model's held set, and op_count its size. */
static int check_version(session *s, int r)
{
    const mrep *m = &s->m[r];
    kith_id *v = NULL;
    size_t n = 0, heads = 0;
    uint64_t total = 0;
    int head[MAXR] = {0};
    for (int q = 0; q < s->R; q++) {
        total += m->vv[q];
        if (!m->vv[q])
            continue;
        head[q] = 1;
        for (int x = 0; x < s->R; x++)
            if (x != q && m->vv[x] && s->ops[x][m->vv[x] - 1].deps[q] >= m->vv[q])
                head[q] = 0;
        heads += (size_t)head[q];
    }
    if (kith_doc_op_count(s->doc[r]) != total) {
        print_summary(s->doc[r]);
        fprintf(stderr, "  model's version vector:");
        for (int q = 0; q < s->R; q++)
            fprintf(stderr, " %s=%u", s->name[q], m->vv[q]);
        fprintf(stderr, "\n");
    }
    CHECK(kith_doc_op_count(s->doc[r]) == total, "replica %d: op_count %" PRIu64 ", model %" PRIu64,
          r, kith_doc_op_count(s->doc[r]), total);
    CHECK_OK(s->doc[r], kith_doc_version(s->doc[r], &v, &n));
    int ok = n == heads, seen[MAXR] = {0};
    for (size_t i = 0; ok && i < n; i++) {
        int q = agent_index(s, s->doc[r], v[i].agent);
        ok = q >= 0 && head[q] && !seen[q] && v[i].seq == m->vv[q] - 1;
        if (q >= 0)
            seen[q] = 1;
    }
    if (!ok) {
        fprintf(stderr, "crdt_prop: replica %d version:", r);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s:%" PRIu64, kith_doc_agent_name(s->doc[r], v[i].agent), v[i].seq);
        fprintf(stderr, "\n  model frontier:");
        for (int q = 0; q < s->R; q++)
            if (head[q])
                fprintf(stderr, " %s:%u", s->name[q], m->vv[q] - 1);
        fprintf(stderr, "\n");
    }
    kith_free(v);
    CHECK(ok, "version frontier of replica %d", r);
    return 0;
}

/* Every code point's inserting agent and change (id, time, via) as the model
 * says; spans tile the text in order. */
static int check_blame(session *s, int r)
{
    kith_blame *b = NULL;
    size_t nb = 0, pos = 0, raw = 0;
    const mrep *m = &s->m[r];
    CHECK_OK(s->doc[r], kith_doc_blame(s->doc[r], NULL, 0, &b, &nb));
    int rc = 0;
    for (size_t i = 0; i < nb && !rc; i++) {
        if (b[i].pos != pos || b[i].len == 0) {
            fprintf(stderr, "crdt_prop: blame span %zu at %zu+%zu, expected at %zu\n", i, b[i].pos,
                    b[i].len, pos);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < b[i].len && !rc; k++, pos++) {
            while (raw < m->n && m->items[raw].del)
                raw++;
            if (raw == m->n) {
                fprintf(stderr, "crdt_prop: blame spans past the end (%zu)\n", pos);
                rc = -1;
                break;
            }
            mid id = m->items[raw++].id;
            const mchange *c = &s->ch[s->ops[id.agent][id.seq].change];
            int who = agent_index(s, s->doc[r], b[i].id.agent);
            int cwho = agent_index(s, s->doc[r], b[i].change.agent);
            int bad = who != id.agent || (k == 0 && b[i].id.seq != id.seq) ||
                      cwho != c->first.agent || b[i].change.seq != c->first.seq ||
                      b[i].time_ms != c->time || (!b[i].via) != (!c->via) ||
                      (c->via && strcmp(b[i].via, c->via) != 0);
            if (bad) {
                fprintf(stderr,
                        "crdt_prop: replica %d blame at %zu: span %zu id %s:%" PRIu64
                        " change %s:%" PRIu64 " time %" PRId64 " via %s\n"
                        "  model: id %s:%u change %s:%u time %" PRId64 " via %s\n",
                        r, pos, i, who >= 0 ? s->name[who] : "?", b[i].id.seq,
                        cwho >= 0 ? s->name[cwho] : "?", b[i].change.seq, b[i].time_ms,
                        b[i].via ? b[i].via : "(null)", s->name[id.agent], id.seq,
                        s->name[c->first.agent], c->first.seq, c->time, c->via ? c->via : "(null)");
                rc = -1;
            }
        }
    }
    kith_free(b);
    CHECK(rc == 0, "blame of replica %d", r);
    CHECK(pos == m_len(m), "blame covers %zu of %zu code points", pos, m_len(m));
    return 0;
}

/* ---- actions ---------------------------------------------------------------------- */

static const char *const vias[] = {NULL, NULL, "ai:stories260K", "ai:\xc3\xa9t\xc3\xa9"};

static int commit(session *s, int r)
{
    int64_t t = 1700000000000 + (int64_t)below(1000000000);
    const char *via = vias[below(4)];
    CHECK_OK(s->doc[r], kith_doc_commit(s->doc[r], t, via));
    if (s->open_ch[r] >= 0) {
        s->ch[s->open_ch[r]].time = t;
        s->ch[s->open_ch[r]].via = via;
        s->open_ch[r] = -1;
        plog("commit %d t=%" PRId64 " via=%s\n", r, t, via ? via : "-");
    }
    return 0;
}

static int do_insert(session *s, int r, size_t pos, const uint32_t *cps, size_t n)
{
    char buf[64];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += utf8_put(buf + len, cps[i]);
    plog("insert %d @%zu \"%.*s\"\n", r, pos, (int)len, buf);
    CHECK_OK(s->doc[r], kith_doc_insert(s->doc[r], s->ag[r], pos, buf, len));
    for (size_t i = 0; i < n; i++)
        m_local_insert(s, r, pos + i, cps[i]);
    return check_text(s, r, "a local insert");
}

static int act_edit(session *s, int r)
{
    size_t len = m_len(&s->m[r]);
    if (len == 0 || chance(65)) {
        uint32_t cps[8];
        size_t n = 1 + below(chance(20) ? 8 : 3);
        for (size_t i = 0; i < n; i++)
            cps[i] = alphabet[below(sizeof alphabet / sizeof alphabet[0])];
        TRY(do_insert(s, r, below((uint32_t)len + 1), cps, n));
    } else {
        size_t pos = below((uint32_t)len);
        size_t n = 1 + below(chance(20) ? 8 : 3);
        if (n > len - pos)
            n = len - pos;
        plog("delete %d @%zu +%zu\n", r, pos, n);
        CHECK_OK(s->doc[r], kith_doc_delete(s->doc[r], s->ag[r], pos, n));
        for (size_t i = 0; i < n; i++)
            m_local_delete(s, r, pos);
        TRY(check_text(s, r, "a local delete"));
    }
    if (chance(30))
        TRY(commit(s, r));
    return 0;
}

/* Edits the engine must refuse without changing anything. */
static int act_bad_edit(session *s, int r)
{
    size_t len = m_len(&s->m[r]);
    uint64_t ops = kith_doc_op_count(s->doc[r]);
    static const char *const bad[] = {
        "\xc3", "a\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "ab\xe2\x82"};
    int rc;
    switch (below(3)) {
    case 0:
        rc = kith_doc_insert(s->doc[r], s->ag[r], len + 1 + below(3), "x", 1);
        plog("bad insert past end %d -> %s\n", r, kith_err_name(rc));
        CHECK(rc == KITH_ERANGE, "insert past the end returned %s", kith_err_name(rc));
        break;
    case 1:
        rc = kith_doc_delete(s->doc[r], s->ag[r], below((uint32_t)len + 1), len + 1);
        plog("bad delete past end %d -> %s\n", r, kith_err_name(rc));
        CHECK(rc == KITH_ERANGE, "delete past the end returned %s", kith_err_name(rc));
        break;
    default: {
        const char *t = bad[below(sizeof bad / sizeof bad[0])];
        rc = kith_doc_insert(s->doc[r], s->ag[r], below((uint32_t)len + 1), t, strlen(t));
        plog("bad utf-8 insert %d -> %s\n", r, kith_err_name(rc));
        CHECK(rc == KITH_EUTF8, "invalid UTF-8 insert returned %s", kith_err_name(rc));
    }
    }
    CHECK(kith_doc_op_count(s->doc[r]) == ops, "a refused edit changed op_count");
    return check_text(s, r, "a refused edit");
}

/* Applies @buf (ops [lo, hi) per agent) to replica @dst: KITH_EMISSING and no
 * change where the model says parents are missing, else merged. */
static int deliver(session *s, int dst, const uint8_t *buf, size_t len, const uint32_t *lo,
                   const uint32_t *hi, const char *what)
{
    int missing = m_missing(s, dst, lo, hi);
    uint64_t ops = kith_doc_op_count(s->doc[dst]);
    int rc = kith_doc_apply(s->doc[dst], buf, len);
    plog("  apply %s (%zu bytes) to %d -> %s%s\n", what, len, dst, kith_err_name(rc),
         missing ? " (model: missing parents)" : "");
    if (missing) {
        CHECK(rc == KITH_EMISSING, "applying a %s with missing parents to replica %d returned %s",
              what, dst, kith_err_name(rc));
        CHECK(kith_doc_op_count(s->doc[dst]) == ops, "a refused apply changed op_count");
    } else {
        CHECK(rc == KITH_OK, "applying a %s to replica %d returned %s (%s)", what, dst,
              kith_err_name(rc), kith_doc_errmsg(s->doc[dst]));
        m_apply_range(s, dst, lo, hi);
    }
    TRY(check_version(s, dst));
    return check_text(s, dst, what);
}

static int make_delta(session *s, int src, int dst, uint8_t **out, size_t *len)
{
    uint8_t *sum = NULL;
    size_t sl = 0;
    CHECK_OK(s->doc[dst], kith_doc_summary(s->doc[dst], &sum, &sl));
    int rc = kith_doc_encode_since(s->doc[src], sum, sl, out, len);
    kith_free(sum);
    CHECK(rc == KITH_OK, "encode_since returned %s", kith_err_name(rc));
    return 0;
}

/* src -> dst through summary / encode_since / apply (sometimes twice). */
static int sync_delta(session *s, int src, int dst)
{
    uint8_t *d = NULL;
    size_t len = 0;
    uint32_t lo[MAXR], hi[MAXR];
    TRY(commit(s, src));
    TRY(commit(s, dst));
    plog("sync %d -> %d\n", src, dst);
    memcpy(lo, s->m[dst].vv, sizeof lo);
    memcpy(hi, s->m[src].vv, sizeof hi);
    TRY(make_delta(s, src, dst, &d, &len));
    int rc = deliver(s, dst, d, len, lo, hi, "delta");
    if (!rc && chance(15))
        rc = deliver(s, dst, d, len, lo, hi, "duplicate delta");
    kith_free(d);
    return rc;
}

/* src -> dst by a whole-document encoding, sometimes decoded on the way. */
static int sync_whole(session *s, int src, int dst)
{
    uint8_t *e = NULL;
    size_t len = 0;
    uint32_t lo[MAXR] = {0}, hi[MAXR];
    TRY(commit(s, src));
    TRY(commit(s, dst));
    plog("sync whole %d -> %d\n", src, dst);
    memcpy(hi, s->m[src].vv, sizeof hi);
    CHECK_OK(s->doc[src], kith_doc_encode(s->doc[src], &e, &len));
    if (chance(50)) {
        kith_doc *c = NULL;
        char *t1 = NULL, *t2 = NULL;
        size_t l1 = 0, l2 = 0;
        int rc = kith_doc_decode(e, len, &c);
        if (rc == KITH_OK && kith_doc_text(c, &t1, &l1) == KITH_OK &&
            kith_doc_text(s->doc[src], &t2, &l2) == KITH_OK)
            rc = l1 == l2 && memcmp(t1, t2, l1) == 0 ? 0 : 1;
        kith_free(t1);
        kith_free(t2);
        kith_doc_free(c);
        if (rc) {
            kith_free(e);
            CHECK(0, "decode of replica %d's encoding: %s", src,
                  rc > 0 ? "text differs" : kith_err_name(rc));
        }
    }
    int rc = deliver(s, dst, e, len, lo, hi, "whole encoding");
    kith_free(e);
    return rc;
}

/* A delta made for @dst's summary now, delivered later (to @dst or another). */
static int queue_delta(session *s, int src, int dst)
{
    if (s->nq == MAXQ)
        return 0;
    qdelta *q = &s->q[s->nq];
    TRY(commit(s, src));
    TRY(commit(s, dst));
    memcpy(q->lo, s->m[dst].vv, sizeof q->lo);
    memcpy(q->hi, s->m[src].vv, sizeof q->hi);
    TRY(make_delta(s, src, dst, &q->buf, &q->len));
    q->src = src;
    q->dst = dst;
    plog("queue delta %d -> %d (%zu bytes) as #%d\n", src, dst, q->len, s->nq);
    s->nq++;
    return 0;
}

static int deliver_queued(session *s)
{
    if (!s->nq)
        return 0;
    int i = (int)below((uint32_t)s->nq);
    qdelta *q = &s->q[i];
    int dst = chance(70) ? q->dst : (int)below((uint32_t)s->R);
    TRY(commit(s, dst));
    plog("deliver queued #%d (%d -> %d) to %d\n", i, q->src, q->dst, dst);
    TRY(deliver(s, dst, q->buf, q->len, q->lo, q->hi, "queued delta"));
    if (chance(70)) { /* else it stays queued: a later duplicate */
        kith_free(q->buf);
        s->q[i] = s->q[--s->nq];
    }
    return 0;
}

/* Replica @r restarts from its own encoding. */
static int reload(session *s, int r)
{
    uint8_t *e = NULL;
    size_t len = 0;
    kith_doc *d = NULL;
    TRY(commit(s, r));
    CHECK_OK(s->doc[r], kith_doc_encode(s->doc[r], &e, &len));
    int rc = kith_doc_decode(e, len, &d);
    kith_free(e);
    plog("reload %d (%zu bytes) -> %s\n", r, len, kith_err_name(rc));
    CHECK(rc == KITH_OK, "decode of replica %d's own encoding returned %s", r, kith_err_name(rc));
    kith_doc_free(s->doc[r]);
    s->doc[r] = d;
    s->gen[r]++;
    CHECK_OK(d, kith_doc_agent(d, s->name[r], &s->ag[r]));
    TRY(check_text(s, r, "a reload"));
    return check_version(s, r);
}

static int record_version(session *s, int r)
{
    if (s->nrec == MAXREC)
        return 0;
    vrec *v = &s->rec[s->nrec];
    memset(v, 0, sizeof *v);
    v->r = r;
    v->gen = s->gen[r];
    CHECK_OK(s->doc[r], kith_doc_version(s->doc[r], &v->v, &v->nv));
    s->nrec++; /* from here on session_free frees it */
    CHECK_OK(s->doc[r], kith_doc_version_str(s->doc[r], v->v, v->nv, &v->vstr));
    CHECK_OK(s->doc[r], kith_doc_text(s->doc[r], &v->text, &v->text_len));
    plog("record version #%d of %d: \"%s\"\n", s->nrec - 1, r, v->vstr);
    return 0;
}

/* Everyone's ops gathered at a hub, then spread from it, in random orders. */
static int full_sync(session *s)
{
    int order[MAXR], hub = (int)below((uint32_t)s->R);
    for (int i = 0; i < s->R; i++)
        order[i] = i;
    for (int i = s->R - 1; i > 0; i--) {
        int j = (int)below((uint32_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    plog("full sync via %d\n", hub);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->R; i++) {
            int o = order[pass ? s->R - 1 - i : i];
            if (o == hub)
                continue;
            int src = pass ? hub : o, dst = pass ? o : hub;
            TRY(chance(85) ? sync_delta(s, src, dst) : sync_whole(s, src, dst));
        }
    }
    return 0;
}

/* Some replicas each type a run at one place concurrently; after syncing,
 * each run must be contiguous (Fugue's non-interleaving). */
static int run_phase(session *s)
{
    TRY(full_sync(s));
    size_t len = m_len(&s->m[0]);
    size_t at = below((uint32_t)len + 1);
    int who[MAXR], k = 2 + (int)below((uint32_t)s->R - 1);
    uint32_t cp[MAXR];
    size_t runlen[MAXR], typed[MAXR] = {0};
    int fwd[MAXR];
    for (int i = 0; i < s->R; i++)
        who[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)below((uint32_t)(s->R - i)), t = who[i];
        who[i] = who[j];
        who[j] = t;
        cp[i] = run_cp(s->runs++);
        runlen[i] = 2 + below(6);
        fwd[i] = chance(60);
    }
    plog("run phase at %zu, %d replicas\n", at, k);
    for (int busy = 1; busy;) {
        busy = 0;
        for (int i = 0; i < k; i++) {
            if (typed[i] == runlen[i] || chance(30)) {
                busy |= typed[i] < runlen[i];
                continue;
            }
            busy = 1;
            uint32_t chunk[3] = {cp[i], cp[i], cp[i]};
            size_t n = fwd[i] ? 1 + below(3) : 1;
            if (n > runlen[i] - typed[i])
                n = runlen[i] - typed[i];
            TRY(do_insert(s, who[i], fwd[i] ? at + typed[i] : at, chunk, n));
            typed[i] += n;
            if (chance(30))
                TRY(commit(s, who[i]));
        }
    }
    TRY(full_sync(s));
    char *t = NULL;
    size_t tl = 0;
    CHECK_OK(s->doc[0], kith_doc_text(s->doc[0], &t, &tl));
    size_t ncp = tl + 1;
    uint32_t *cps = xrealloc(NULL, ncp * sizeof *cps);
    long n = utf8_decode(t, tl, cps, ncp);
    int bad = -1;
    for (int i = 0; i < k && bad < 0 && n >= 0; i++) {
        long first = -1, count = 0;
        for (long j = 0; j < n; j++) {
            if (cps[j] != cp[i])
                continue;
            if (first < 0)
                first = j;
            count++;
            if (j - first + 1 != count)
                bad = i;
        }
        if (count != (long)runlen[i])
            bad = i;
    }
    if (bad >= 0)
        print_escaped("merged text", t, tl);
    kith_free(t);
    free(cps);
    CHECK(n >= 0, "engine text is not valid UTF-8");
    CHECK(bad < 0, "run %d (U+%04X x%zu, %s, by %s) is not contiguous", bad, cp[bad < 0 ? 0 : bad],
          runlen[bad < 0 ? 0 : bad], fwd[bad < 0 ? 0 : bad] ? "forward" : "backward",
          s->name[who[bad < 0 ? 0 : bad]]);
    return 0;
}

/* ---- a session ------------------------------------------------------------------------ */

/* Names chosen so that bytewise order matters: prefixes, case, UTF-8. */
static const char *const names[] = {"alice",     "bob",          "a",    "ab", "B",  "carol",
                                    "z\xc3\xa9", "\xc3\xa9mile", "dave", "Z",  "aa", "b0"};

static void session_free(session *s)
{
    for (int r = 0; r < s->R; r++) {
        kith_doc_free(s->doc[r]);
        free(s->ops[r]);
        free(s->m[r].items);
    }
    for (int i = 0; i < s->nrec; i++) {
        kith_free(s->rec[i].v);
        kith_free(s->rec[i].vstr);
        kith_free(s->rec[i].text);
    }
    for (int i = 0; i < s->nq; i++)
        kith_free(s->q[i].buf);
    free(s->ch);
    memset(s, 0, sizeof *s);
}

static int apply_patches(const char *from, size_t from_len, const kith_patch *p, size_t np,
                         char **out, size_t *out_len);

/* Recorded versions still check out, from their replica and from another. */
static int check_records(session *s)
{
    for (int i = 0; i < s->nrec; i++) {
        vrec *v = &s->rec[i];
        int r = v->r, o = (int)below((uint32_t)s->R);
        char *t = NULL, *full = NULL, *back = NULL;
        size_t tl = 0, fl = 0, bl = 0, nv = 0, np = 0;
        kith_id *pv = NULL, *cur = NULL;
        kith_patch *p = NULL;
        if (v->gen == s->gen[r]) {
            CHECK_OK(s->doc[r], kith_doc_text_at(s->doc[r], v->v, v->nv, &t, &tl));
            int same = tl == v->text_len && memcmp(t, v->text, tl) == 0;
            if (!same) {
                print_escaped("text_at", t, tl);
                print_escaped("recorded", v->text, v->text_len);
            }
            kith_free(t);
            CHECK(same, "text_at recorded version #%d (%s) on replica %d", i, v->vstr, r);
        }
        CHECK_OK(s->doc[o], kith_doc_version_parse(s->doc[o], v->vstr, &pv, &nv));
        int rc = kith_doc_text_at(s->doc[o], pv, nv, &t, &tl);
        int same = rc == KITH_OK && tl == v->text_len && memcmp(t, v->text, tl) == 0;
        if (rc == KITH_OK && !same) {
            print_escaped("text_at", t, tl);
            print_escaped("recorded", v->text, v->text_len);
        }
        kith_free(t);
        if (rc != KITH_OK || !same) {
            kith_free(pv);
            CHECK(0, "text_at of version #%d (%s) parsed on replica %d: %s", i, v->vstr, o,
                  rc ? kith_err_name(rc) : "text differs");
        }
        /* diff recorded -> current reproduces the current text, and back */
        rc = kith_doc_version(s->doc[o], &cur, &nv);
        if (rc == KITH_OK)
            rc = kith_doc_text(s->doc[o], &full, &fl);
        size_t npv = 0;
        kith_free(pv);
        pv = NULL;
        if (rc == KITH_OK)
            rc = kith_doc_version_parse(s->doc[o], v->vstr, &pv, &npv);
        if (rc == KITH_OK)
            rc = kith_doc_diff(s->doc[o], pv, npv, cur, nv, &p, &np);
        if (rc == KITH_OK)
            rc = apply_patches(v->text, v->text_len, p, np, &back, &bl);
        same = rc == KITH_OK && bl == fl && memcmp(back, full, fl) == 0;
        free(back);
        back = NULL;
        kith_free(p);
        p = NULL;
        if (rc == KITH_OK && same) {
            rc = kith_doc_diff(s->doc[o], cur, nv, pv, npv, &p, &np);
            if (rc == KITH_OK)
                rc = apply_patches(full, fl, p, np, &back, &bl);
            same = rc == KITH_OK && bl == v->text_len && memcmp(back, v->text, bl) == 0;
        }
        free(back);
        kith_free(p);
        kith_free(pv);
        kith_free(cur);
        kith_free(full);
        CHECK(rc == KITH_OK && same, "diff between version #%d (%s) and the current one on %d: %s",
              i, v->vstr, o, rc ? kith_err_name(rc) : "patches do not reproduce the text");
    }
    return 0;
}

/* The encoding round-trips: the decoded doc, and an empty doc that applied
 * the encoding, pass the same checks against the model as the original. */
static int check_round_trip(session *s, int r)
{
    uint8_t *e = NULL;
    size_t len = 0;
    kith_doc *d[2] = {NULL, NULL};
    CHECK_OK(s->doc[r], kith_doc_encode(s->doc[r], &e, &len));
    int rc = kith_doc_decode(e, len, &d[0]);
    if (rc == KITH_OK)
        rc = kith_doc_new(&d[1]);
    if (rc == KITH_OK)
        rc = kith_doc_apply(d[1], e, len);
    kith_free(e);
    if (rc != KITH_OK) {
        kith_doc_free(d[0]);
        kith_doc_free(d[1]);
        CHECK(0, "round trip of replica %d's encoding (%zu bytes): %s", r, len, kith_err_name(rc));
    }
    kith_doc *keep = s->doc[r];
    for (int i = 0; i < 2 && rc == 0; i++) {
        s->doc[r] = d[i]; /* the copies must pass the same checks */
        plog("round trip check of %d (%s)\n", r, i ? "apply to empty" : "decode");
        rc = check_text(s, r, i ? "apply of the encoding to an empty doc" : "decode") ||
             check_version(s, r) || check_blame(s, r);
    }
    s->doc[r] = keep;
    kith_doc_free(d[0]);
    kith_doc_free(d[1]);
    return rc ? -1 : 0;
}

static int run_session(session *s, uint64_t seed)
{
    rng = seed;
    loglen = 0;
    memset(s, 0, sizeof *s);
    s->R = 3 + (int)below(3);
    int pick[sizeof names / sizeof names[0]];
    int nn = (int)(sizeof names / sizeof names[0]);
    for (int i = 0; i < nn; i++)
        pick[i] = i;
    for (int r = 0; r < s->R; r++) {
        int j = r + (int)below((uint32_t)(nn - r)), t = pick[r];
        pick[r] = pick[j];
        pick[j] = t;
        s->name[r] = names[pick[r]];
        s->open_ch[r] = -1;
    }
    for (int r = 0; r < s->R; r++) {
        CHECK_OK(NULL, kith_doc_new(&s->doc[r]));
        CHECK_OK(s->doc[r], kith_doc_agent(s->doc[r], s->name[r], &s->ag[r]));
        plog("replica %d is \"%s\"\n", r, s->name[r]);
    }
    int steps = 10 + (int)below(chance(20) ? 150 : 60);
    for (int step = 0; step < steps; step++) {
        int r = (int)below((uint32_t)s->R), o = (int)below((uint32_t)s->R - 1);
        o += o >= r;
        unsigned a = below(100);
        if (a < 50)
            TRY(act_edit(s, r));
        else if (a < 52)
            TRY(act_bad_edit(s, r));
        else if (a < 68)
            TRY(sync_delta(s, r, o));
        else if (a < 72)
            TRY(sync_whole(s, r, o));
        else if (a < 80)
            TRY(queue_delta(s, r, o));
        else if (a < 88)
            TRY(deliver_queued(s));
        else if (a < 90)
            TRY(reload(s, r));
        else if (a < 94)
            TRY(record_version(s, r));
        else if (a < 97)
            TRY(check_blame(s, r) || check_version(s, r));
        else if (a < 98 && s->runs < 12)
            TRY(run_phase(s));
    }
    TRY(full_sync(s));
    char *t0 = NULL;
    size_t l0 = 0;
    CHECK_OK(s->doc[0], kith_doc_text(s->doc[0], &t0, &l0));
    int diverged = -1;
    for (int r = 1; r < s->R && diverged < 0; r++) {
        char *t = NULL;
        size_t l = 0;
        if (kith_doc_text(s->doc[r], &t, &l) != KITH_OK || l != l0 || memcmp(t, t0, l) != 0)
            diverged = r;
        kith_free(t);
    }
    kith_free(t0);
    CHECK(diverged < 0, "replicas 0 and %d did not converge", diverged);
    for (int r = 0; r < s->R; r++) {
        size_t a = 0, b = 0;
        const char *mt = m_text(s, r, &a);
        char *copy = xrealloc(NULL, a + 1);
        memcpy(copy, mt, a + 1);
        const char *m0 = m_text(s, 0, &b);
        int same = a == b && memcmp(copy, m0, a) == 0;
        free(copy);
        CHECK(same, "model bug: model replicas 0 and %d did not converge", r);
        TRY(check_version(s, r));
        TRY(check_blame(s, r));
    }
    TRY(check_records(s));
    return check_round_trip(s, (int)below((uint32_t)s->R));
}

/* Applies @np patches to @from: each deletes then inserts at its position. */
static int apply_patches(const char *from, size_t from_len, const kith_patch *p, size_t np,
                         char **out, size_t *out_len)
{
    size_t cap = from_len + 1, len = from_len;
    for (size_t i = 0; i < np; i++)
        cap += p[i].ins_len;
    char *t = xrealloc(NULL, cap);
    memcpy(t, from, from_len);
    for (size_t i = 0; i < np; i++) {
        /* byte offsets of code points pos and pos+del */
        size_t b = 0, cp = 0, e, k = 0;
        for (; b < len && cp < p[i].pos; cp++)
            for (b++; b < len && ((unsigned char)t[b] & 0xc0) == 0x80; b++)
                ;
        for (e = b; e < len && k < p[i].del; k++)
            for (e++; e < len && ((unsigned char)t[e] & 0xc0) == 0x80; e++)
                ;
        if (cp != p[i].pos || k != p[i].del) {
            free(t);
            fprintf(stderr, "crdt_prop: patch %zu (pos %zu del %zu) is out of range\n", i, p[i].pos,
                    p[i].del);
            return KITH_ERANGE;
        }
        memmove(t + b + p[i].ins_len, t + e, len - e);
        if (p[i].ins_len)
            memcpy(t + b, p[i].ins, p[i].ins_len);
        len = len - (e - b) + p[i].ins_len;
    }
    t[len] = 0;
    *out = t;
    *out_len = len;
    return KITH_OK;
}

int main(void)
{
    const char *e = getenv("KITH_PROP_ITERS");
    const char *sd = getenv("KITH_SEED");
    const char *asan = getenv("KITH_ASAN");
    long iters = asan && *asan && strcmp(asan, "0") != 0 ? 1000 : 5000;
    if (e && *e)
        iters = strtol(e, NULL, 0);
    uint64_t seed =
        sd && *sd ? strtoull(sd, NULL, 0) : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)clock();
    printf("crdt_prop: %ld sessions, KITH_SEED=%" PRIu64 "\n", iters, seed);
    fflush(stdout);
    session s;
    uint64_t total_ops = 0;
    for (long i = 0; i < iters; i++) {
        uint64_t ss = seed + (uint64_t)i;
        int rc = run_session(&s, ss);
        if (rc) {
            fprintf(stderr, "crdt_prop: FAILED in session %ld, seed %" PRIu64 " (replicas:", i, ss);
            for (int r = 0; r < s.R; r++)
                fprintf(stderr, " %d=\"%s\"", r, s.name[r]);
            fprintf(stderr,
                    ")\n  rerun: KITH_SEED=%" PRIu64 " KITH_PROP_ITERS=1 %s\n"
                    "  action log of the session:\n%.*s",
                    ss, "test_crdt_prop", (int)loglen, logbuf);
            session_free(&s);
            printf("0 passed, 1 failed\n");
            return 1;
        }
        for (int r = 0; r < s.R; r++)
            total_ops += s.m[r].vv[r];
        session_free(&s);
    }
    printf("crdt_prop: %ld sessions, %" PRIu64 " operations, all converged and matched the model\n",
           iters, total_ops);
    printf("1 passed, 0 failed\n");
    return 0;
}
