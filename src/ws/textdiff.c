/*
 * Text diffs for the workspace (see textdiff.h). The character diff runs in
 * stages so that its cost stays bounded whatever the input:
 *  1. the common prefix and suffix are trimmed on bytes, so a one-character
 *     edit in a big file costs about a memcmp;
 *  2. the middle is decoded to code points and diffed by Myers' linear-space
 *     O(ND) algorithm, given up past an edit-cost cap or a work budget;
 *  3. then a line diff of the middle picks the changed line hunks (lines found
 *     in one text only are set aside first, as xdiff does), and each hunk is
 *     diffed by code point again under the caps, or replaced whole;
 *  4. pure insertions and deletions slide to word and line boundaries, and
 *     equalities shorter than the edits around them are folded in, so that
 *     the patches read like a person's edit.
 * The unified diff reuses the line stage on the lines of the whole texts.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kith/err.h"
#include "util/util_int.h"
#include "ws/textdiff.h"

typedef ptrdiff_t idx;

/*
 * Limits of the exact diffs. A Myers search round costs about its edit cost
 * in diagonals plus the matches it slides over; "work" counts both. The cap
 * is per search direction, so an exact character diff handles up to about
 * 2 * CHAR_COST_CAP edits. Budgets grow with the input so that big files with
 * scattered edits still get exact diffs, yet stay in the tens of
 * milliseconds; see the timing tests in tests/unit/ws_textdiff.c.
 */
#ifndef CHAR_COST_CAP /* tests build with tiny limits to drive every fallback */
#define CHAR_COST_CAP  2048
#define CHAR_WORK_BASE ((uint64_t)16 << 20)
#define LINE_COST_CAP  1024
#define LINE_WORK_BASE ((uint64_t)16 << 20)
#define WORK_PER_ELEM  16
#endif

/* ---- change flags and hunks ---------------------------------------------------- */

/* One change: a[a_off, a_off + a_len) becomes b[b_off, b_off + b_len). */
typedef struct hunk {
    idx a_off, a_len, b_off, b_len;
} hunk;

typedef struct hunks {
    hunk *v;
    size_t n, cap;
} hunks;

static int hunks_push(hunks *h, hunk x)
{
    if (kith_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v))
        return KITH_ENOMEM;
    h->v[h->n++] = x;
    return KITH_OK;
}

/*
 * Turns per-element change flags into maximal hunks. Unchanged elements of
 * @a and @b pair up in order; if the counts disagree (a bug upstream), the
 * excess is treated as changed so that the hunks still turn a into b.
 */
static int flags_to_hunks(const uint8_t *ca, idx n1, const uint8_t *cb, idx n2, hunks *out)
{
    idx i = 0, j = 0;
    out->n = 0;
    while (i < n1 || j < n2) {
        int ch_a = i < n1 && ca[i], ch_b = j < n2 && cb[j];
        if (!ch_a && !ch_b && i < n1 && j < n2) {
            i++, j++;
            continue;
        }
        hunk h = {i, 0, j, 0};
        while (i < n1 && (ca[i] || j >= n2))
            i++;
        while (j < n2 && (cb[j] || i >= n1))
            j++;
        h.a_len = i - h.a_off;
        h.b_len = j - h.b_off;
        if (hunks_push(out, h))
            return KITH_ENOMEM;
    }
    return KITH_OK;
}

/* ---- Myers' linear-space diff -------------------------------------------------- */

/* A rectangle of the edit graph still to diff: a[off1, lim1) against b[off2, lim2). */
typedef struct box {
    idx off1, lim1, off2, lim2;
} box;

enum { DIFF_TOO_FAR = 1 }; /* positive: not an error, the exact diff gave up */

enum split_rc { SPLIT_OK, SPLIT_GIVE_UP, SPLIT_WHOLE };

/*
 * Diff state over two sequences of uint32 symbols (code points or line ids).
 * Exact mode gives up (DIFF_TOO_FAR) past the cap or the budget, so that the
 * caller can try something coarser; approx mode instead splits at the best
 * point found so far past the cap (xdiff's heuristic) and marks boxes whole
 * once the budget is spent, so it always finishes.
 */
typedef struct myers {
    const uint32_t *a, *b;
    uint8_t *ca, *cb; /* set for elements outside the common subsequence */
    idx *vf, *vb;     /* furthest points per diagonal, windows of 2 * cap + 5 */
    idx cap;
    uint64_t work, budget;
    bool approx;
    box *stack;
    size_t nstack, capstack;
} myers;

static int myers_init(myers *m, idx cap, uint64_t budget, bool approx)
{
    memset(m, 0, sizeof *m);
    m->cap = cap;
    m->budget = budget;
    m->approx = approx;
    m->vf = kith_malloc((size_t)(2 * cap + 5) * sizeof *m->vf);
    m->vb = kith_malloc((size_t)(2 * cap + 5) * sizeof *m->vb);
    return m->vf && m->vb ? KITH_OK : KITH_ENOMEM;
}

static void myers_release(myers *m)
{
    kith_free(m->vf);
    kith_free(m->vb);
    kith_free(m->stack);
    memset(m, 0, sizeof *m);
}

static void mark_box(myers *m, const box *r)
{
    memset(m->ca + r->off1, 1, (size_t)(r->lim1 - r->off1));
    memset(m->cb + r->off2, 1, (size_t)(r->lim2 - r->off2));
}

/*
 * Past the cap in approx mode: split where the forward or the backward search
 * got furthest along its diagonals, so the box still shrinks. Only points
 * strictly inside the box make progress; anything else means "whole".
 */
static int split_best(const myers *m, const box *r, idx fmin, idx fmax, idx fmid, idx bmin,
                      idx bmax, idx bmid, idx *s1, idx *s2)
{
    const idx w = m->cap + 2;
    idx fbest = -1, fb1 = 0, bbest = PTRDIFF_MAX, bb1 = 0;
    for (idx k = fmax; k >= fmin; k -= 2) {
        idx i1 = m->vf[k - fmid + w], i2 = i1 - k;
        if (i1 <= r->lim1 && i2 <= r->lim2 && i1 + i2 > fbest)
            fbest = i1 + i2, fb1 = i1;
    }
    for (idx k = bmax; k >= bmin; k -= 2) {
        idx i1 = m->vb[k - bmid + w], i2 = i1 - k;
        if (i1 >= r->off1 && i2 >= r->off2 && i1 + i2 < bbest)
            bbest = i1 + i2, bb1 = i1;
    }
    if (fbest < 0 && bbest == PTRDIFF_MAX)
        return SPLIT_WHOLE;
    if (fbest >= 0 &&
        (bbest == PTRDIFF_MAX || fbest - (r->off1 + r->off2) >= (r->lim1 + r->lim2) - bbest)) {
        *s1 = fb1;
        *s2 = fbest - fb1;
    } else {
        *s1 = bb1;
        *s2 = bbest - bb1;
    }
    if (*s1 + *s2 <= r->off1 + r->off2 || *s1 + *s2 >= r->lim1 + r->lim2)
        return SPLIT_WHOLE;
    return SPLIT_OK;
}

/*
 * Finds a point on an optimal path through @r (both sides non-empty, first
 * and last symbols differing) by running the search from both corners until
 * the paths meet (Myers 1986, section 4b, in the shape of xdiff's xdl_split).
 * Diagonal k holds the points with i1 - i2 == k; vf[k] is the furthest i1
 * the forward search reached on it, vb[k] the smallest the backward one did.
 */
static int split(myers *m, const box *r, idx *s1, idx *s2)
{
    const uint32_t *a = m->a, *b = m->b;
    const idx off1 = r->off1, lim1 = r->lim1, off2 = r->off2, lim2 = r->lim2;
    const idx dmin = off1 - lim2, dmax = lim1 - off2;
    const idx fmid = off1 - off2, bmid = lim1 - lim2;
    const bool odd = (fmid - bmid) & 1;
    const idx w = m->cap + 2;
    idx fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;
#define VF(k) m->vf[(k)-fmid + w]
#define VB(k) m->vb[(k)-bmid + w]

    VF(fmid) = off1;
    VB(bmid) = lim1;
    for (idx ec = 1;; ec++) {
        if (m->work > m->budget)
            return m->approx ? SPLIT_WHOLE : SPLIT_GIVE_UP;
        if (ec > m->cap) {
            if (!m->approx)
                return SPLIT_GIVE_UP;
            return split_best(m, r, fmin, fmax, fmid, bmin, bmax, bmid, s1, s2);
        }
        /* One more diagonal each side, or one less where the box ends; the
         * sentinels outside spare the loop its edge tests. */
        if (fmin > dmin)
            VF(--fmin - 1) = -1;
        else
            ++fmin;
        if (fmax < dmax)
            VF(++fmax + 1) = -1;
        else
            --fmax;
        for (idx k = fmax; k >= fmin; k -= 2) {
            idx i1 = VF(k - 1) >= VF(k + 1) ? VF(k - 1) + 1 : VF(k + 1);
            idx i2 = i1 - k, from = i1;
            while (i1 < lim1 && i2 < lim2 && a[i1] == b[i2])
                i1++, i2++;
            m->work += 1 + (uint64_t)(i1 - from);
            VF(k) = i1;
            if (odd && bmin <= k && k <= bmax && VB(k) <= i1) {
                *s1 = i1;
                *s2 = i2;
                return SPLIT_OK;
            }
        }

        if (bmin > dmin)
            VB(--bmin - 1) = PTRDIFF_MAX;
        else
            ++bmin;
        if (bmax < dmax)
            VB(++bmax + 1) = PTRDIFF_MAX;
        else
            --bmax;
        for (idx k = bmax; k >= bmin; k -= 2) {
            idx i1 = VB(k - 1) < VB(k + 1) ? VB(k - 1) : VB(k + 1) - 1;
            idx i2 = i1 - k, from = i1;
            while (i1 > off1 && i2 > off2 && a[i1 - 1] == b[i2 - 1])
                i1--, i2--;
            m->work += 1 + (uint64_t)(from - i1);
            VB(k) = i1;
            if (!odd && fmin <= k && k <= fmax && i1 <= VF(k)) {
                *s1 = i1;
                *s2 = i2;
                return SPLIT_OK;
            }
        }
    }
#undef VF
#undef VB
}

static int push_box(myers *m, idx off1, idx lim1, idx off2, idx lim2)
{
    if (kith_grow((void **)&m->stack, &m->capstack, m->nstack + 1, sizeof *m->stack))
        return KITH_ENOMEM;
    m->stack[m->nstack++] = (box){off1, lim1, off2, lim2};
    return KITH_OK;
}

/*
 * Diffs a[0, n1) against b[0, n2), setting the change flags (which must start
 * clear). Boxes wait on an explicit stack rather than in recursion, since
 * approx mode may split unevenly many times. Returns KITH_OK, DIFF_TOO_FAR
 * (exact mode; the flags are then partly set) or KITH_ENOMEM.
 */
static int myers_run(myers *m, idx n1, idx n2)
{
    const uint32_t *a = m->a, *b = m->b;
    m->nstack = 0;
    if (push_box(m, 0, n1, 0, n2))
        return KITH_ENOMEM;
    while (m->nstack) {
        box r = m->stack[--m->nstack];
        idx before = r.off1;
        while (r.off1 < r.lim1 && r.off2 < r.lim2 && a[r.off1] == b[r.off2])
            r.off1++, r.off2++;
        m->work += (uint64_t)(r.off1 - before);
        before = r.lim1;
        while (r.off1 < r.lim1 && r.off2 < r.lim2 && a[r.lim1 - 1] == b[r.lim2 - 1])
            r.lim1--, r.lim2--;
        m->work += (uint64_t)(before - r.lim1);
        if (r.off1 == r.lim1 || r.off2 == r.lim2) {
            mark_box(m, &r);
            continue;
        }
        idx s1 = 0, s2 = 0;
        int rc = split(m, &r, &s1, &s2);
        if (rc == SPLIT_GIVE_UP)
            return DIFF_TOO_FAR;
        if (rc == SPLIT_WHOLE) {
            mark_box(m, &r);
            continue;
        }
        if (push_box(m, s1, r.lim1, s2, r.lim2) || push_box(m, r.off1, s1, r.off2, s2))
            return KITH_ENOMEM;
    }
    return KITH_OK;
}

/* Runs @m on the given slices (flags clear on entry). */
static int myers_on(myers *m, const uint32_t *a, idx n1, const uint32_t *b, idx n2, uint8_t *ca,
                    uint8_t *cb)
{
    m->a = a;
    m->b = b;
    m->ca = ca;
    m->cb = cb;
    return myers_run(m, n1, n2);
}

/* ---- lines ----------------------------------------------------------------------- */

/* Lines of a sequence: line i is elements [start[i], start[i + 1]); id[i] is
 * the same number for lines with the same content (ids start at 1). */
typedef struct linetab {
    idx *start;
    idx n;
    uint32_t *id;
} linetab;

static void linetab_release(linetab *t)
{
    kith_free(t->start);
    kith_free(t->id);
    memset(t, 0, sizeof *t);
}

/* Element @i of a sequence of bytes (@elem 1) or code points (@elem 4). */
static uint32_t elem_at(const void *s, size_t elem, idx i)
{
    return elem == 1 ? ((const unsigned char *)s)[i] : ((const uint32_t *)s)[i];
}

/* Splits @n elements of @elem bytes at newlines (a last line may lack one). */
static int lines_split(const void *s, idx n, size_t elem, linetab *t)
{
    idx nl = 0;
    memset(t, 0, sizeof *t);
    for (idx i = 0; i < n; i++)
        nl += elem_at(s, elem, i) == '\n';
    t->start = kith_malloc((size_t)(nl + 2) * sizeof *t->start);
    if (!t->start)
        return KITH_ENOMEM;
    t->start[0] = 0;
    for (idx i = 0; i < n; i++)
        if (elem_at(s, elem, i) == '\n')
            t->start[++t->n] = i + 1;
    if (t->start[t->n] != n)
        t->start[++t->n] = n;
    return KITH_OK;
}

static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

/* Interns the lines of both tables: a hash table of ids over the line bytes,
 * each id remembering its first line's bytes for the equality check. */
typedef struct interner {
    uint32_t *slot; /* id or 0 */
    uint32_t *hash; /* low bits of the hash, per id, to skip most memcmps */
    const unsigned char **rep;
    size_t *rep_len;
    size_t mask;
    uint32_t n;
} interner;

static int intern_lines(interner *in, const void *s, size_t elem, linetab *t)
{
    const unsigned char *base = s;
    t->id = kith_malloc((size_t)(t->n ? t->n : 1) * sizeof *t->id);
    if (!t->id)
        return KITH_ENOMEM;
    for (idx i = 0; i < t->n; i++) {
        const unsigned char *p = base + (size_t)t->start[i] * elem;
        size_t len = (size_t)(t->start[i + 1] - t->start[i]) * elem;
        uint64_t h = hash_bytes(p, len);
        size_t j = (size_t)h & in->mask;
        uint32_t id;
        while ((id = in->slot[j])) {
            if (in->hash[id] == (uint32_t)h && in->rep_len[id] == len &&
                memcmp(in->rep[id], p, len) == 0)
                break;
            j = (j + 1) & in->mask;
        }
        if (!id) {
            id = ++in->n;
            in->slot[j] = id;
            in->hash[id] = (uint32_t)h;
            in->rep[id] = p;
            in->rep_len[id] = len;
        }
        t->id[i] = id;
    }
    return KITH_OK;
}

/* Gives the lines of @ta (over @sa) and @tb (over @sb) ids; *nid is one more
 * than the largest. */
static int lines_number(linetab *ta, const void *sa, linetab *tb, const void *sb, size_t elem,
                        uint32_t *nid)
{
    interner in = {0};
    size_t total = (size_t)(ta->n + tb->n), size = 16;
    int rc = KITH_ENOMEM;
    if (total >= UINT32_MAX / 2)
        return KITH_ENOMEM;
    while (size < 2 * total)
        size *= 2;
    in.mask = size - 1;
    in.slot = kith_calloc(size, sizeof *in.slot);
    in.hash = kith_malloc((total + 1) * sizeof *in.hash);
    in.rep = kith_malloc((total + 1) * sizeof *in.rep);
    in.rep_len = kith_malloc((total + 1) * sizeof *in.rep_len);
    if (in.slot && in.hash && in.rep && in.rep_len) {
        rc = intern_lines(&in, sa, elem, ta);
        if (rc == KITH_OK)
            rc = intern_lines(&in, sb, elem, tb);
    }
    *nid = in.n + 1;
    kith_free(in.slot);
    kith_free(in.hash);
    kith_free(in.rep);
    kith_free(in.rep_len);
    return rc;
}

/*
 * Line change flags (@lca, @lcb, clear on entry) for two numbered tables. A
 * line whose content never occurs on the other side cannot be in the common
 * subsequence, so it is marked now and Myers runs on the rest: for unrelated
 * texts that leaves almost nothing, and the result is still minimal.
 */
static int line_flags(const linetab *ta, const linetab *tb, uint32_t nid, uint8_t *lca,
                      uint8_t *lcb)
{
    uint8_t *in_a = kith_calloc(nid, 1), *in_b = kith_calloc(nid, 1);
    uint32_t *ra = kith_malloc((size_t)(ta->n + 1) * sizeof *ra);
    uint32_t *rb = kith_malloc((size_t)(tb->n + 1) * sizeof *rb);
    idx *mapa = kith_malloc((size_t)(ta->n + 1) * sizeof *mapa);
    idx *mapb = kith_malloc((size_t)(tb->n + 1) * sizeof *mapb);
    uint8_t *rca = kith_calloc((size_t)ta->n + 1, 1), *rcb = kith_calloc((size_t)tb->n + 1, 1);
    myers m = {0};
    idx na = 0, nb = 0;
    int rc = KITH_ENOMEM;
    if (!in_a || !in_b || !ra || !rb || !mapa || !mapb || !rca || !rcb)
        goto out;
    for (idx i = 0; i < ta->n; i++)
        in_a[ta->id[i]] = 1;
    for (idx i = 0; i < tb->n; i++)
        in_b[tb->id[i]] = 1;
    for (idx i = 0; i < ta->n; i++) {
        if (!in_b[ta->id[i]])
            lca[i] = 1;
        else
            ra[na] = ta->id[i], mapa[na++] = i;
    }
    for (idx i = 0; i < tb->n; i++) {
        if (!in_a[tb->id[i]])
            lcb[i] = 1;
        else
            rb[nb] = tb->id[i], mapb[nb++] = i;
    }
    rc = myers_init(&m, LINE_COST_CAP, LINE_WORK_BASE + WORK_PER_ELEM * (uint64_t)(na + nb), true);
    if (rc == KITH_OK)
        rc = myers_on(&m, ra, na, rb, nb, rca, rcb);
    for (idx k = 0; rc == KITH_OK && k < na; k++)
        lca[mapa[k]] = rca[k];
    for (idx k = 0; rc == KITH_OK && k < nb; k++)
        lcb[mapb[k]] = rcb[k];
out:
    myers_release(&m);
    kith_free(in_a);
    kith_free(in_b);
    kith_free(ra);
    kith_free(rb);
    kith_free(mapa);
    kith_free(mapb);
    kith_free(rca);
    kith_free(rcb);
    return rc;
}

/* Line hunks of two sequences (elements of @elem bytes), their line tables
 * returned in @ta/@tb for the caller to release. */
static int line_hunks(const void *a, idx n1, const void *b, idx n2, size_t elem, linetab *ta,
                      linetab *tb, hunks *out)
{
    uint8_t *lca = NULL, *lcb = NULL;
    uint32_t nid = 0;
    int rc = lines_split(a, n1, elem, ta);
    if (rc == KITH_OK)
        rc = lines_split(b, n2, elem, tb);
    if (rc == KITH_OK)
        rc = lines_number(ta, a, tb, b, elem, &nid);
    if (rc == KITH_OK) {
        lca = kith_calloc((size_t)ta->n + 1, 1);
        lcb = kith_calloc((size_t)tb->n + 1, 1);
        rc = lca && lcb ? KITH_OK : KITH_ENOMEM;
    }
    if (rc == KITH_OK)
        rc = line_flags(ta, tb, nid, lca, lcb);
    if (rc == KITH_OK)
        rc = flags_to_hunks(lca, ta->n, lcb, tb->n, out);
    kith_free(lca);
    kith_free(lcb);
    return rc;
}

/* ---- making hunks read naturally ------------------------------------------------ */

/* How good a place for an edit to start or end the boundary between code
 * points c1 and c2 is (-1: the edge of the text), after diff-match-patch's
 * semantic score: edges and line breaks, then spaces, then punctuation. */
static int boundary_score(int64_t c1, int64_t c2)
{
    if (c1 < 0 || c2 < 0)
        return 6;
    if (c1 == '\n' && c2 == '\n')
        return 5;
    if (c1 == '\n' || c2 == '\n')
        return 4;
    bool sp1 = c1 == ' ' || c1 == '\t' || c1 == '\r', sp2 = c2 == ' ' || c2 == '\t' || c2 == '\r';
    if (sp1 || sp2)
        return 2;
    /* anything outside ASCII counts as a letter: scripts without spaces get no
     * preference rather than a wrong one */
    bool w1 = c1 >= 0x80 || (c1 >= '0' && c1 <= '9') || ((c1 | 0x20) >= 'a' && (c1 | 0x20) <= 'z');
    bool w2 = c2 >= 0x80 || (c2 >= '0' && c2 <= '9') || ((c2 | 0x20) >= 'a' && (c2 | 0x20) <= 'z');
    return w1 && w2 ? 0 : 1;
}

static int64_t sym_at(const uint32_t *s, idx n, idx i)
{
    return i < 0 || i >= n ? -1 : (int64_t)s[i];
}

/* The shift in [-up, down] of the run s[off, off + len) with the best
 * boundaries; ties go to the later place. */
static idx best_shift(const uint32_t *s, idx n, idx off, idx len, idx up, idx down)
{
    idx best = 0;
    int best_score = -1;
    for (idx t = -up; t <= down; t++) {
        idx lo = off + t, hi = off + t + len;
        int sc = boundary_score(sym_at(s, n, lo - 1), sym_at(s, n, lo)) +
                 boundary_score(sym_at(s, n, hi - 1), sym_at(s, n, hi));
        if (sc >= best_score)
            best_score = sc, best = t;
    }
    return best;
}

/*
 * A pure insertion or deletion can slide along the equal text around it
 * while the symbol leaving one end equals the one joining the other. Slide
 * each to touch a neighbour (one hunk less), else to the bottom (@bottom, as
 * diff and git do for lines) or to the best word/line boundary. Hunks that
 * end up adjacent merge. The pairing of equal symbols stays valid: sliding
 * swaps two equal symbols between the run and the equal text. The first
 * @guard_lo and last @guard_hi symbols (common to both sides) stay put: they
 * are context from outside the diffed window, there to be scored against.
 */
static void shift_hunks(hunks *hs, const uint32_t *a, idx n1, const uint32_t *b, idx n2,
                        bool bottom, idx guard_lo, idx guard_hi)
{
    size_t w = 0;
    for (size_t i = 0; i < hs->n; i++) {
        hunk cur = hs->v[i];
        const hunk *prev = w ? &hs->v[w - 1] : NULL;
        const hunk *next = i + 1 < hs->n ? &hs->v[i + 1] : NULL;
        bool ins = cur.a_len == 0, del = cur.b_len == 0;
        if (ins != del) {
            const uint32_t *s = ins ? b : a;
            idx n = ins ? n2 : n1, off = ins ? cur.b_off : cur.a_off,
                len = ins ? cur.b_len : cur.a_len;
            idx lo =
                prev ? (ins ? prev->b_off + prev->b_len : prev->a_off + prev->a_len) : guard_lo;
            idx hi = next ? (ins ? next->b_off : next->a_off) : n - guard_hi;
            idx up = 0, down = 0, t;
            while (off - up > lo && s[off - up - 1] == s[off + len - up - 1])
                up++;
            while (off + len + down < hi && s[off + down] == s[off + len + down])
                down++;
            if (prev && off - up == lo)
                t = -up;
            else if (next && off + len + down == hi)
                t = down;
            else if (bottom)
                t = down;
            else
                t = best_shift(s, n, off, len, up, down);
            cur.a_off += t;
            cur.b_off += t;
        }
        hunk *last = w ? &hs->v[w - 1] : NULL;
        if (last && cur.a_off == last->a_off + last->a_len &&
            cur.b_off == last->b_off + last->b_len) {
            last->a_len += cur.a_len;
            last->b_len += cur.b_len;
        } else {
            hs->v[w++] = cur;
        }
    }
    hs->n = w;
}

static idx max_idx(idx x, idx y)
{
    return x > y ? x : y;
}

/*
 * Folds an equality into the hunks around it when it is no longer than the
 * bigger side of either (diff-match-patch's semantic cleanup): "the cat" to
 * "a dog" is one replacement rather than two edits around a kept space, and
 * a scatter of one-letter matches inside a rewritten word disappears.
 */
static void merge_small_equalities(hunks *hs)
{
    size_t w = 0;
    for (size_t i = 0; i < hs->n; i++) {
        hunk cur = hs->v[i];
        while (w) {
            const hunk *prev = &hs->v[w - 1];
            idx eq = cur.a_off - (prev->a_off + prev->a_len);
            if (eq > max_idx(prev->a_len, prev->b_len) || eq > max_idx(cur.a_len, cur.b_len))
                break;
            cur.a_len = cur.a_off + cur.a_len - prev->a_off;
            cur.b_len = cur.b_off + cur.b_len - prev->b_off;
            cur.a_off = prev->a_off;
            cur.b_off = prev->b_off;
            w--;
        }
        hs->v[w++] = cur;
    }
    hs->n = w;
}

/* ---- the character diff -------------------------------------------------------- */

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Code points in @n bytes of valid UTF-8: the bytes that are not
 * continuation bytes. Eight at a time, with one counter per byte lane,
 * summed every 255 words before a lane can overflow (a popcount would be a
 * libgcc call without -mpopcnt). */
static size_t count_cp(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cont = 0, i = 0;
    while (i + 8 <= n) {
        uint64_t lanes = 0;
        for (int k = 0; k < 255 && i + 8 <= n; k++, i += 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            /* bit 7 set and bit 6 clear: 10xxxxxx */
            lanes += (x & ~(x << 1) & 0x8080808080808080ull) >> 7;
        }
        /* pairs of lanes into 16 bits (at most 510 each), then all four */
        lanes = (lanes & 0x00ff00ff00ff00ffull) + ((lanes >> 8) & 0x00ff00ff00ff00ffull);
        cont += (size_t)((lanes * 0x0001000100010001ull) >> 48);
    }
    for (; i < n; i++)
        cont += is_cont(p[i]);
    return n - cont;
}

/* Decodes @n bytes of valid UTF-8 into @out; returns the code point count.
 * Bytes that do not fit the pattern (never, after validation) decode as
 * themselves rather than being read past. */
static idx decode_cp(const char *s, size_t n, uint32_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    idx k = 0;
    for (size_t i = 0; i < n; k++) {
        unsigned c = p[i];
        size_t need = c < 0xc0 ? 0 : c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
        uint32_t cp = need ? c & (0x3fu >> need) : c;
        if (i + need >= n)
            need = n - i - 1;
        for (size_t j = 1; j <= need; j++)
            cp = (cp << 6) | (p[i + j] & 0x3f);
        out[k] = cp;
        i += need + 1;
    }
    return k;
}

/* Byte length of the common prefix of @a and @b that ends on a code point
 * boundary of both. */
static size_t common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    /* big blocks first: the C library's memcmp is the fastest scan there is */
    while (i + 4096 <= n && memcmp(a + i, b + i, 4096) == 0)
        i += 4096;
    while (i + 8 <= n && memcmp(a + i, b + i, 8) == 0)
        i += 8;
    while (i < n && a[i] == b[i])
        i++;
    while (i > 0 && ((i < alen && is_cont((unsigned char)a[i])) ||
                     (i < blen && is_cont((unsigned char)b[i]))))
        i--;
    return i;
}

/* Same for the suffix, at most @max bytes (so it does not overlap the prefix). */
static size_t common_suffix(const char *a, size_t alen, const char *b, size_t blen, size_t max)
{
    size_t i = 0;
    while (i + 4096 <= max && memcmp(a + alen - i - 4096, b + blen - i - 4096, 4096) == 0)
        i += 4096;
    while (i + 8 <= max && memcmp(a + alen - i - 8, b + blen - i - 8, 8) == 0)
        i += 8;
    while (i < max && a[alen - i - 1] == b[blen - i - 1])
        i++;
    while (i > 0 && is_cont((unsigned char)a[alen - i]))
        i--;
    return i;
}

/* Exact code point diff of one line hunk, or the whole hunk replaced when
 * that is too costly. Each hunk adds to the shared budget in proportion to
 * its size, so many small hunks all get exact diffs and the total stays
 * linear. */
static int diff_hunk_chars(myers *m, const uint32_t *a, idx n1, const uint32_t *b, idx n2,
                           uint8_t *ca, uint8_t *cb)
{
    m->budget += WORK_PER_ELEM * (uint64_t)(n1 + n2);
    int rc = myers_on(m, a, n1, b, n2, ca, cb);
    if (rc == DIFF_TOO_FAR) {
        memset(ca, 1, (size_t)n1);
        memset(cb, 1, (size_t)n2);
        rc = KITH_OK;
    }
    return rc;
}

/* Stage 3: the middle by lines, then each changed line hunk by code points. */
static int diff_by_lines(myers *m, const uint32_t *a, idx n1, const uint32_t *b, idx n2,
                         uint8_t *ca, uint8_t *cb)
{
    linetab ta = {0}, tb = {0};
    hunks lh = {0};
    int rc = line_hunks(a, n1, b, n2, sizeof *a, &ta, &tb, &lh);
    for (size_t i = 0; rc == KITH_OK && i < lh.n; i++) {
        const hunk *h = &lh.v[i];
        idx o1 = ta.start[h->a_off], e1 = ta.start[h->a_off + h->a_len];
        idx o2 = tb.start[h->b_off], e2 = tb.start[h->b_off + h->b_len];
        if (o1 == 0 && e1 == n1 && o2 == 0 && e2 == n2) {
            /* everything changed: the character diff already failed on it */
            memset(ca, 1, (size_t)n1);
            memset(cb, 1, (size_t)n2);
            continue;
        }
        rc = diff_hunk_chars(m, a + o1, e1 - o1, b + o2, e2 - o2, ca + o1, cb + o2);
    }
    kith_free(lh.v);
    linetab_release(&ta);
    linetab_release(&tb);
    return rc;
}

/* Stages 2 to 4 on the decoded middles: the hunks that turn @a into @b. The
 * guards are as for shift_hunks. */
static int diff_middle(const uint32_t *a, idx n1, const uint32_t *b, idx n2, idx guard_lo,
                       idx guard_hi, hunks *out)
{
    uint8_t *ca = kith_calloc((size_t)n1 + 1, 1), *cb = kith_calloc((size_t)n2 + 1, 1);
    myers m;
    int rc =
        myers_init(&m, CHAR_COST_CAP, CHAR_WORK_BASE + WORK_PER_ELEM * (uint64_t)(n1 + n2), false);
    if (rc == KITH_OK && (!ca || !cb))
        rc = KITH_ENOMEM;
    if (rc == KITH_OK)
        rc = myers_on(&m, a, n1, b, n2, ca, cb);
    if (rc == DIFF_TOO_FAR) {
        memset(ca, 0, (size_t)n1);
        memset(cb, 0, (size_t)n2);
        /* a fresh budget: the failed attempt may have overshot its own by a
         * search round, which would starve the first hunks */
        m.work = 0;
        m.budget = CHAR_WORK_BASE;
        rc = diff_by_lines(&m, a, n1, b, n2, ca, cb);
    }
    if (rc == KITH_OK)
        rc = flags_to_hunks(ca, n1, cb, n2, out);
    if (rc == KITH_OK) {
        shift_hunks(out, a, n1, b, n2, false, guard_lo, guard_hi);
        merge_small_equalities(out);
    }
    myers_release(&m);
    kith_free(ca);
    kith_free(cb);
    return rc;
}

/* Advances *byte through @b (@blen bytes) by @count code points. */
static void skip_cp(const char *b, size_t blen, size_t *byte, size_t count)
{
    size_t i = *byte;
    while (count-- && i < blen) {
        i++;
        while (i < blen && is_cont((unsigned char)b[i]))
            i++;
    }
    *byte = i;
}

/* Patches from hunks of the middles; the middle of @b starts at byte @pre,
 * code point @pre_cp. An edit's position in the text being patched is its
 * position in @b: everything before it already reads as @b does. */
static int hunks_to_patches(const hunks *hs, const char *b, size_t blen, size_t pre, size_t pre_cp,
                            kith_patch **out, size_t *n)
{
    kith_patch *p = kith_malloc((hs->n ? hs->n : 1) * sizeof *p);
    size_t byte = pre, cp = 0;
    if (!p)
        return KITH_ENOMEM;
    for (size_t i = 0; i < hs->n; i++) {
        const hunk *h = &hs->v[i];
        skip_cp(b, blen, &byte, (size_t)h->b_off - cp);
        size_t start = byte;
        skip_cp(b, blen, &byte, (size_t)h->b_len);
        cp = (size_t)(h->b_off + h->b_len);
        p[i] = (kith_patch){pre_cp + (size_t)h->b_off, (size_t)h->a_len, b + start, byte - start};
    }
    *out = p;
    *n = hs->n;
    return KITH_OK;
}

/*
 * Code points of the common prefix and suffix kept on each side of the
 * changed middle. Cutting the prefix greedily puts edits mid-word ("hello
 * world" to "hello wide world" inserts "ide w"); with some context the edit
 * can slide to a boundary ("wide "). The outermost kept code point is a
 * guard, when the text goes on beyond it: scored against, never moved into.
 */
#define SLACK_CP 64

/* @pos moved back by up to @count code points. */
static size_t back_cp(const char *s, size_t pos, size_t count)
{
    while (count-- && pos > 0) {
        pos--;
        while (pos > 0 && is_cont((unsigned char)s[pos]))
            pos--;
    }
    return pos;
}

int ws_text_diff(const char *a, size_t alen, const char *b, size_t blen, kith_patch **out,
                 size_t *n)
{
    *out = NULL;
    *n = 0;
    if (alen > PTRDIFF_MAX / 8 || blen > PTRDIFF_MAX / 8)
        return KITH_ENOMEM;
    size_t pre = common_prefix(a, alen, b, blen);
    size_t suf = common_suffix(a, alen, b, blen, (alen < blen ? alen : blen) - pre);
    if (pre == alen && pre == blen)
        return KITH_OK;
    /* widen the middle by the slack; the suffix is the same bytes in both */
    pre = back_cp(a, pre, SLACK_CP);
    size_t end_a = alen - suf;
    skip_cp(a, alen, &end_a, SLACK_CP);
    suf = alen - end_a;
    size_t ma = alen - pre - suf, mb = blen - pre - suf;
    /* Only the middles are checked: they become the patches, while the
     * common text is the caller's to validate and is only counted here
     * (by its non-continuation bytes), so that the fast path stays a scan. */
    if (kith_utf8_count(a + pre, ma) < 0 || kith_utf8_count(b + pre, mb) < 0)
        return KITH_EUTF8;
    size_t pre_cp = count_cp(a, pre);

    uint32_t *ua = kith_malloc((ma + 1) * sizeof *ua), *ub = kith_malloc((mb + 1) * sizeof *ub);
    hunks hs = {0};
    int rc = KITH_ENOMEM;
    if (ua && ub) {
        idx n1 = decode_cp(a + pre, ma, ua), n2 = decode_cp(b + pre, mb, ub);
        rc = diff_middle(ua, n1, ub, n2, pre > 0, suf > 0, &hs);
    }
    if (rc == KITH_OK)
        rc = hunks_to_patches(&hs, b, blen - suf, pre, pre_cp, out, n);
    kith_free(hs.v);
    kith_free(ua);
    kith_free(ub);
    return rc;
}

/* ---- the unified diff ------------------------------------------------------------- */

/* Output with a sticky error, so the renderer checks once at the end. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int err;
} sbuf;

static void sb_put(sbuf *sb, const char *s, size_t len)
{
    if (sb->err)
        return;
    if (kith_grow((void **)&sb->p, &sb->cap, sb->n + len + 1, 1)) {
        sb->err = KITH_ENOMEM;
        return;
    }
    memcpy(sb->p + sb->n, s, len);
    sb->n += len;
    sb->p[sb->n] = 0;
}

static void sb_str(sbuf *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

#define C_META  "\033[1m"
#define C_FRAG  "\033[36m"
#define C_OLD   "\033[31m"
#define C_NEW   "\033[32m"
#define C_RESET "\033[m"

typedef struct udiff {
    sbuf sb;
    bool color;
    const char *a, *b;
    linetab ta, tb;
} udiff;

/* One line of @text (@t) with its one-character prefix and, for a last line
 * without newline, diff's marker. */
static void put_line(udiff *u, const char *text, const linetab *t, idx i, char mark,
                     const char *color)
{
    const char *s = text + t->start[i];
    size_t len = (size_t)(t->start[i + 1] - t->start[i]);
    bool nl = len && s[len - 1] == '\n';
    if (u->color && color)
        sb_str(&u->sb, color);
    sb_put(&u->sb, &mark, 1);
    sb_put(&u->sb, s, len - nl);
    if (u->color && color)
        sb_str(&u->sb, C_RESET);
    sb_put(&u->sb, "\n", 1);
    if (!nl)
        sb_str(&u->sb, "\\ No newline at end of file\n");
}

/* "l,s" of a hunk header: diff leaves out ",1", and an empty range names the
 * line before it. */
static void put_range(sbuf *sb, idx start, idx count)
{
    char buf[64];
    if (count == 1)
        snprintf(buf, sizeof buf, "%td", start + 1);
    else
        snprintf(buf, sizeof buf, "%td,%td", count ? start + 1 : start, count);
    sb_str(sb, buf);
}

/* Hunks v[0, n) as one @@ block with @ctx lines of context around them. */
static void put_block(udiff *u, const hunk *v, size_t n, idx ctx)
{
    const hunk *first = &v[0], *last = &v[n - 1];
    idx a_lo = first->a_off - ctx < 0 ? 0 : first->a_off - ctx;
    idx a_end = last->a_off + last->a_len;
    idx a_hi = a_end + ctx > u->ta.n ? u->ta.n : a_end + ctx;
    idx b_lo = first->b_off - (first->a_off - a_lo);
    idx b_hi = last->b_off + last->b_len + (a_hi - a_end);
    if (u->color)
        sb_str(&u->sb, C_FRAG);
    sb_str(&u->sb, "@@ -");
    put_range(&u->sb, a_lo, a_hi - a_lo);
    sb_str(&u->sb, " +");
    put_range(&u->sb, b_lo, b_hi - b_lo);
    sb_str(&u->sb, " @@");
    if (u->color)
        sb_str(&u->sb, C_RESET);
    sb_str(&u->sb, "\n");
    idx x = a_lo;
    for (size_t k = 0; k < n; k++) {
        for (; x < v[k].a_off; x++)
            put_line(u, u->a, &u->ta, x, ' ', NULL);
        for (idx i = 0; i < v[k].a_len; i++)
            put_line(u, u->a, &u->ta, v[k].a_off + i, '-', C_OLD);
        for (idx i = 0; i < v[k].b_len; i++)
            put_line(u, u->b, &u->tb, v[k].b_off + i, '+', C_NEW);
        x = v[k].a_off + v[k].a_len;
    }
    for (; x < a_hi; x++)
        put_line(u, u->a, &u->ta, x, ' ', NULL);
}

static void put_header(udiff *u, const char *tag, const char *label)
{
    if (u->color)
        sb_str(&u->sb, C_META);
    sb_str(&u->sb, tag);
    sb_str(&u->sb, label ? label : "");
    if (u->color)
        sb_str(&u->sb, C_RESET);
    sb_str(&u->sb, "\n");
}

static void render(udiff *u, const hunks *hs, const char *label_a, const char *label_b, idx ctx)
{
    put_header(u, "--- ", label_a);
    put_header(u, "+++ ", label_b);
    for (size_t i = 0; i < hs->n;) {
        size_t j = i;
        /* hunks whose contexts touch or overlap share a block */
        while (j + 1 < hs->n && hs->v[j + 1].a_off - (hs->v[j].a_off + hs->v[j].a_len) <= 2 * ctx)
            j++;
        put_block(u, hs->v + i, j - i + 1, ctx);
        i = j + 1;
    }
}

int ws_unified_diff(const char *a, size_t alen, const char *b, size_t blen, const char *label_a,
                    const char *label_b, int context, bool color, char **out, size_t *out_len)
{
    udiff u = {.color = color, .a = a, .b = b};
    hunks hs = {0};
    int rc = KITH_OK;
    *out = NULL;
    *out_len = 0;
    if (alen > PTRDIFF_MAX / 8 || blen > PTRDIFF_MAX / 8)
        return KITH_ENOMEM;
    if (alen != blen || memcmp(a, b, alen) != 0) {
        rc = line_hunks(a, (idx)alen, b, (idx)blen, 1, &u.ta, &u.tb, &hs);
        if (rc == KITH_OK) /* line ids are the symbols to slide on */
            shift_hunks(&hs, u.ta.id, u.ta.n, u.tb.id, u.tb.n, true, 0, 0);
        if (rc == KITH_OK && hs.n)
            render(&u, &hs, label_a, label_b, context < 0 ? 0 : context);
    }
    if (rc == KITH_OK && !u.sb.p)
        sb_put(&u.sb, "", 0);
    if (rc == KITH_OK)
        rc = u.sb.err;
    if (rc == KITH_OK) {
        *out = u.sb.p;
        *out_len = u.sb.n;
    } else {
        kith_free(u.sb.p);
    }
    kith_free(hs.v);
    linetab_release(&u.ta);
    linetab_release(&u.tb);
    return rc;
}
