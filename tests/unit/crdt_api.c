/*
 * Unit tests of the text CRDT's public API (include/kith/crdt.h): editing with
 * multi-byte UTF-8 and code-point positions, refused edits that change
 * nothing, commits and via tags in blame, versions and their strings, text_at
 * and diff of past versions, edit_at + merge, encode/decode round trips, delta
 * sync with duplicates and missing parents, every truncation and every bit
 * flip of an encoding, and an allocator that fails the Nth call.
 */
#include "kith/kith.h"
#include "tt.h"

/* ---- helpers ------------------------------------------------------------------ */

/* 1 if the current text of @d is exactly @want; prints both otherwise. */
static int text_is(kith_doc *d, const char *want)
{
    char *t = NULL;
    size_t len = 0;
    int rc = kith_doc_text(d, &t, &len);
    int ok = rc == KITH_OK && len == strlen(want) && memcmp(t, want, len) == 0 && t[len] == 0;
    if (!ok)
        fprintf(stderr, "  text is \"%.*s\" (%s), expected \"%s\"\n", t ? (int)len : 0, t ? t : "",
                kith_err_name(rc), want);
    kith_free(t);
    return ok;
}

static int text_at_is(kith_doc *d, const kith_id *v, size_t n, const char *want)
{
    char *t = NULL;
    size_t len = 0;
    int rc = kith_doc_text_at(d, v, n, &t, &len);
    int ok = rc == KITH_OK && len == strlen(want) && memcmp(t, want, len) == 0 && t[len] == 0;
    if (!ok)
        fprintf(stderr, "  text_at is \"%.*s\" (%s), expected \"%s\"\n", t ? (int)len : 0,
                t ? t : "", kith_err_name(rc), want);
    kith_free(t);
    return ok;
}

/* Everything observable about a doc, to check that a refused call changed
 * nothing: text, version, op count and its whole encoding. */
typedef struct snap {
    char *text;
    size_t len;
    char *vstr;
    uint64_t ops;
    uint8_t *enc;
    size_t enc_len;
} snap;

static void snap_release(snap *s)
{
    kith_free(s->text);
    kith_free(s->vstr);
    kith_free(s->enc);
    memset(s, 0, sizeof *s);
}

static int snap_take(kith_doc *d, snap *s)
{
    kith_id *v = NULL;
    size_t n = 0;
    memset(s, 0, sizeof *s);
    s->ops = kith_doc_op_count(d);
    int rc = kith_doc_text(d, &s->text, &s->len);
    if (rc == KITH_OK)
        rc = kith_doc_version(d, &v, &n);
    if (rc == KITH_OK)
        rc = kith_doc_version_str(d, v, n, &s->vstr);
    if (rc == KITH_OK)
        rc = kith_doc_encode(d, &s->enc, &s->enc_len);
    kith_free(v);
    if (rc != KITH_OK)
        fprintf(stderr, "  snapshot failed: %s\n", kith_err_name(rc));
    return rc;
}

/* 1 if @d still matches @s; prints what changed otherwise. */
static int snap_same(kith_doc *d, const snap *s, const char *what)
{
    snap now;
    if (snap_take(d, &now) != KITH_OK)
        return 0;
    const char *bad = NULL;
    if (now.len != s->len || memcmp(now.text, s->text, s->len) != 0)
        bad = "text";
    else if (strcmp(now.vstr, s->vstr) != 0)
        bad = "version";
    else if (now.ops != s->ops)
        bad = "op count";
    else if (now.enc_len != s->enc_len || memcmp(now.enc, s->enc, s->enc_len) != 0)
        bad = "encoding";
    if (bad)
        fprintf(stderr,
                "  %s changed the doc's %s: text \"%s\" -> \"%s\", version \"%s\" -> \"%s\"\n",
                what, bad, s->text, now.text, s->vstr, now.vstr);
    snap_release(&now);
    return bad == NULL;
}

/* Applies @np patches to @from (each deletes @del code points at @pos, then
 * inserts). Caller frees *out with free. */
static int apply_patches(const char *from, size_t from_len, const kith_patch *p, size_t np,
                         char **out, size_t *out_len)
{
    size_t cap = from_len + 1, len = from_len;
    for (size_t i = 0; i < np; i++)
        cap += p[i].ins_len;
    char *t = malloc(cap);
    if (!t)
        return KITH_ENOMEM;
    memcpy(t, from, from_len);
    for (size_t i = 0; i < np; i++) {
        size_t b = 0, cp = 0, e, k = 0;
        for (; b < len && cp < p[i].pos; cp++)
            for (b++; b < len && ((unsigned char)t[b] & 0xc0) == 0x80; b++)
                ;
        for (e = b; e < len && k < p[i].del; k++)
            for (e++; e < len && ((unsigned char)t[e] & 0xc0) == 0x80; e++)
                ;
        if (cp != p[i].pos || k != p[i].del) {
            fprintf(stderr, "  patch %zu (pos %zu del %zu) is out of range\n", i, p[i].pos,
                    p[i].del);
            free(t);
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

/* 1 if the diff @from -> @to applied to text_at(@from) gives text_at(@to). */
static int diff_reproduces(kith_doc *d, const kith_id *from, size_t nf, const kith_id *to,
                           size_t nt)
{
    char *a = NULL, *b = NULL, *got = NULL;
    size_t al = 0, bl = 0, gl = 0, np = 0;
    kith_patch *p = NULL;
    int rc = kith_doc_text_at(d, from, nf, &a, &al);
    if (rc == KITH_OK)
        rc = kith_doc_text_at(d, to, nt, &b, &bl);
    if (rc == KITH_OK)
        rc = kith_doc_diff(d, from, nf, to, nt, &p, &np);
    if (rc == KITH_OK)
        rc = apply_patches(a, al, p, np, &got, &gl);
    int ok = rc == KITH_OK && gl == bl && memcmp(got, b, bl) == 0;
    if (!ok)
        fprintf(stderr, "  diff \"%s\" -> \"%s\" (%zu patches) gave \"%s\" (%s)\n", a ? a : "",
                b ? b : "", np, got ? got : "", kith_err_name(rc));
    kith_free(a);
    kith_free(b);
    kith_free(p);
    free(got);
    return ok;
}

/* Sorts ids by (agent name, seq) so that versions compare as sets. */
static const kith_doc *sort_doc;

static int id_cmp(const void *x, const void *y)
{
    const kith_id *a = x, *b = y;
    int c =
        strcmp(kith_doc_agent_name(sort_doc, a->agent), kith_doc_agent_name(sort_doc, b->agent));
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* 1 if versions @a (in @da) and @b (in @db) name the same ids. */
static int same_version(const kith_doc *da, kith_id *a, size_t na, const kith_doc *db, kith_id *b,
                        size_t nb)
{
    if (na != nb)
        return 0;
    sort_doc = da;
    qsort(a, na, sizeof *a, id_cmp);
    sort_doc = db;
    qsort(b, nb, sizeof *b, id_cmp);
    for (size_t i = 0; i < na; i++)
        if (a[i].seq != b[i].seq ||
            strcmp(kith_doc_agent_name(da, a[i].agent), kith_doc_agent_name(db, b[i].agent)))
            return 0;
    return 1;
}

static int id_is(const kith_doc *d, kith_id id, const char *name, uint64_t seq)
{
    const char *n = kith_doc_agent_name(d, id.agent);
    int ok = n && strcmp(n, name) == 0 && id.seq == seq;
    if (!ok)
        fprintf(stderr, "  id is %s:%" PRIu64 ", expected %s:%" PRIu64 "\n", n ? n : "?", id.seq,
                name, seq);
    return ok;
}

static int blame_is(const kith_doc *d, const kith_blame *b, size_t pos, size_t len,
                    const char *name, uint64_t seq, const char *cname, uint64_t cseq, int64_t time,
                    const char *via)
{
    int ok = b->pos == pos && b->len == len && id_is(d, b->id, name, seq) &&
             id_is(d, b->change, cname, cseq) && b->time_ms == time &&
             (via ? b->via && strcmp(b->via, via) == 0 : b->via == NULL);
    if (!ok)
        fprintf(stderr,
                "  span %zu+%zu time %" PRId64 " via %s; expected %zu+%zu time %" PRId64
                " via %s\n",
                b->pos, b->len, b->time_ms, b->via ? b->via : "(null)", pos, len, time,
                via ? via : "(null)");
    return ok;
}

/*
 * The history most tests use. Versions: v[0] "hello" (alice, t 1000),
 * v[1] "hello wörld" (+bob, t 2000, via ai:stories260K), v[2] "Hello wörld"
 * (alice replaced h, t 3000), v[3] "He€llo wörld" (carol's edit made at v[0],
 * t 4000 via ai:x, merged).
 */
#define RICH_N 4
static const char *const rich_text[RICH_N] = {"hello", "hello w\xc3\xb6rld", "Hello w\xc3\xb6rld",
                                              "He\xe2\x82\xacllo w\xc3\xb6rld"};

static int build_rich(kith_doc **out, kith_id **v, size_t *nv)
{
    kith_doc *d = NULL;
    kith_agent alice = 0, bob = 0, carol = 0;
    kith_id last;
    int rc = kith_doc_new(&d);
    if (rc == KITH_OK)
        rc = kith_doc_agent(d, "alice", &alice);
    if (rc == KITH_OK)
        rc = kith_doc_agent(d, "bob", &bob);
    if (rc == KITH_OK)
        rc = kith_doc_agent(d, "carol", &carol);
    if (rc == KITH_OK)
        rc = kith_doc_insert(d, alice, 0, "hello", 5);
    if (rc == KITH_OK)
        rc = kith_doc_commit(d, 1000, NULL);
    if (rc == KITH_OK && v)
        rc = kith_doc_version(d, &v[0], &nv[0]);
    if (rc == KITH_OK)
        rc = kith_doc_insert(d, bob, 5, " w\xc3\xb6rld", 7);
    if (rc == KITH_OK)
        rc = kith_doc_commit(d, 2000, "ai:stories260K");
    if (rc == KITH_OK && v)
        rc = kith_doc_version(d, &v[1], &nv[1]);
    if (rc == KITH_OK)
        rc = kith_doc_delete(d, alice, 0, 1);
    if (rc == KITH_OK)
        rc = kith_doc_insert(d, alice, 0, "H", 1);
    if (rc == KITH_OK)
        rc = kith_doc_commit(d, 3000, NULL);
    if (rc == KITH_OK && v)
        rc = kith_doc_version(d, &v[2], &nv[2]);
    kith_id at0 = {alice, 4};
    if (rc == KITH_OK)
        rc = kith_doc_edit_at(d, carol, &at0, 1, 2, 0, "\xe2\x82\xac", 3, &last);
    if (rc == KITH_OK)
        rc = kith_doc_commit(d, 4000, "ai:x");
    if (rc == KITH_OK)
        rc = kith_doc_merge(d, NULL, 0);
    if (rc == KITH_OK && v)
        rc = kith_doc_version(d, &v[3], &nv[3]);
    if (rc != KITH_OK) {
        fprintf(stderr, "  build_rich: %s (%s)\n", kith_err_name(rc), d ? kith_doc_errmsg(d) : "");
        kith_doc_free(d);
        d = NULL;
    }
    *out = d;
    return rc;
}

static void free_versions(kith_id **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kith_free(v[i]);
}

/* ---- lifetime and agents ------------------------------------------------------ */

TT_TEST(empty_doc)
{
    kith_doc *d = NULL;
    kith_id *v = NULL;
    size_t n = 99;
    char *s = NULL;
    TT_OK(kith_doc_new(&d));
    TT_ASSERT(d != NULL);
    TT_ASSERT(kith_doc_errmsg(d) != NULL);
    TT_EQ(kith_doc_len(d), 0);
    TT_EQ(kith_doc_op_count(d), 0);
    TT_ASSERT(kith_doc_mem(d) > 0);
    TT_ASSERT(text_is(d, ""));
    TT_OK(kith_doc_version(d, &v, &n));
    TT_EQ(n, 0);
    kith_free(v);
    TT_OK(kith_doc_version_str(d, NULL, 0, &s));
    TT_STREQ(s, "");
    kith_free(s);
    TT_ASSERT(text_at_is(d, NULL, 0, ""));
    kith_doc_free(d);
    kith_doc_free(NULL);
    kith_free(NULL);
}

TT_TEST(agents)
{
    kith_doc *d = NULL;
    kith_agent a, a2, b, x;
    char name[KITH_AGENT_MAX + 2];
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_agent(d, "bob", &b));
    TT_OK(kith_doc_agent(d, "alice", &a2));
    TT_EQ(a, a2);
    TT_ASSERT(a != b);
    TT_STREQ(kith_doc_agent_name(d, a), "alice");
    TT_STREQ(kith_doc_agent_name(d, b), "bob");
    TT_ASSERT(kith_doc_agent_name(d, a + b + 1000) == NULL);
    TT_OK(kith_doc_agent(d, "\xc3\xa9mile", &x));
    TT_STREQ(kith_doc_agent_name(d, x), "\xc3\xa9mile");
    memset(name, 'n', sizeof name);
    name[KITH_AGENT_MAX] = 0;
    TT_OK(kith_doc_agent(d, name, &x)); /* exactly KITH_AGENT_MAX bytes */
    TT_STREQ(kith_doc_agent_name(d, x), name);
    name[KITH_AGENT_MAX] = 'n';
    name[KITH_AGENT_MAX + 1] = 0;
    TT_ASSERT(kith_doc_agent(d, name, &x) != KITH_OK); /* one byte too long */
    TT_EQ(kith_doc_agent(d, "", &x), KITH_EINVAL);
    kith_doc_free(d);
}

/* ---- local editing -------------------------------------------------------------- */

TT_TEST(insert_delete_ascii)
{
    kith_doc *d = NULL;
    kith_agent a;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_insert(d, a, 0, "hello", 5));
    TT_OK(kith_doc_insert(d, a, 5, " world", 6));
    TT_OK(kith_doc_insert(d, a, 5, ",", 1));
    TT_ASSERT(text_is(d, "hello, world"));
    TT_EQ(kith_doc_len(d), 12);
    TT_OK(kith_doc_delete(d, a, 5, 1));
    TT_ASSERT(text_is(d, "hello world"));
    TT_OK(kith_doc_delete(d, a, 0, 6));
    TT_ASSERT(text_is(d, "world"));
    TT_OK(kith_doc_insert(d, a, 0, "", 0)); /* empty edits are no-ops */
    TT_OK(kith_doc_delete(d, a, 5, 0));
    TT_ASSERT(text_is(d, "world"));
    TT_EQ(kith_doc_len(d), 5);
    /* one operation per code point inserted or deleted */
    TT_EQ(kith_doc_op_count(d), 5 + 6 + 1 + 1 + 6);
    kith_id *v = NULL;
    size_t n = 0;
    TT_OK(kith_doc_version(d, &v, &n));
    TT_EQ(n, 1);
    TT_ASSERT(id_is(d, v[0], "alice", 18));
    kith_free(v);
    kith_doc_free(d);
}

TT_TEST(insert_delete_utf8)
{
    kith_doc *d = NULL;
    kith_agent a;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_insert(d, a, 0, "h\xe2\x82\xacllo", 7)); /* h€llo: € is 3 bytes */
    TT_EQ(kith_doc_len(d), 5);
    TT_OK(kith_doc_insert(d, a, 1, "\xc3\xa9", 2)); /* é: 2 bytes, at code point 1 */
    TT_ASSERT(text_is(d, "h\xc3\xa9\xe2\x82\xacllo"));
    TT_OK(kith_doc_insert(d, a, 3, "\xf0\x9f\x98\x80", 4)); /* 😀: 4 bytes, after € */
    TT_ASSERT(text_is(d, "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80llo"));
    TT_EQ(kith_doc_len(d), 7);
    TT_OK(kith_doc_delete(d, a, 2, 2)); /* € and 😀 */
    TT_ASSERT(text_is(d, "h\xc3\xa9llo"));
    TT_OK(kith_doc_insert(d, a, 5, "\xc3\x9f\xe4\xb8\xad\xf0\x90\x8d\x88", 9)); /* ß中𐍈 */
    TT_ASSERT(text_is(d, "h\xc3\xa9llo\xc3\x9f\xe4\xb8\xad\xf0\x90\x8d\x88"));
    TT_OK(kith_doc_delete(d, a, 6, 1)); /* 中 */
    TT_ASSERT(text_is(d, "h\xc3\xa9llo\xc3\x9f\xf0\x90\x8d\x88"));
    TT_EQ(kith_doc_len(d), 7);
    TT_OK(kith_doc_delete(d, a, 0, 1));
    TT_OK(kith_doc_delete(d, a, 5, 1)); /* the last code point, 4 bytes */
    TT_ASSERT(text_is(d, "\xc3\xa9llo\xc3\x9f"));
    TT_OK(kith_doc_insert(d, a, 5, "\x00z", 2)); /* U+0000 is a code point too */
    TT_EQ(kith_doc_len(d), 7);
    kith_doc_free(d);
}

TT_TEST(bad_edits_change_nothing)
{
    static const char *const bad_utf8[] = {
        "\xc3",             /* truncated 2-byte */
        "\x80",             /* lone continuation byte */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xf0\x80\x80\xaf", /* overlong, 4 bytes */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80",
        "\xff",
        "ok\xe2\x82",   /* valid start, truncated end */
        "\xe2\x28\xa1", /* bad continuation */
        "abc\xc3(",
    };
    kith_doc *d = NULL;
    kith_agent a;
    snap s;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_insert(d, a, 0, "h\xc3\xa9\xe2\x82\xac", 6)); /* 3 code points, 6 bytes */
    TT_OK(kith_doc_commit(d, 1, NULL));
    TT_OK(snap_take(d, &s));
    TT_EQ(kith_doc_insert(d, a, 4, "x", 1), KITH_ERANGE);
    TT_EQ(kith_doc_insert(d, a, 6, "x", 1), KITH_ERANGE); /* byte length is not the limit */
    TT_EQ(kith_doc_insert(d, a, SIZE_MAX, "x", 1), KITH_ERANGE);
    TT_EQ(kith_doc_delete(d, a, 2, 2), KITH_ERANGE);
    TT_EQ(kith_doc_delete(d, a, 3, 1), KITH_ERANGE);
    TT_EQ(kith_doc_delete(d, a, 4, 0), KITH_ERANGE);
    TT_EQ(kith_doc_delete(d, a, 0, SIZE_MAX), KITH_ERANGE);
    TT_EQ(kith_doc_delete(d, a, SIZE_MAX, 2), KITH_ERANGE); /* pos + count wraps */
    TT_EQ(kith_doc_delete(d, a, 1, SIZE_MAX), KITH_ERANGE);
    TT_ASSERT(snap_same(d, &s, "an out-of-range edit"));
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        int rc = kith_doc_insert(d, a, 1, bad_utf8[i], strlen(bad_utf8[i]));
        if (rc != KITH_EUTF8)
            fprintf(stderr, "  invalid UTF-8 #%zu\n", i);
        TT_EQ(rc, KITH_EUTF8);
    }
    TT_EQ(kith_doc_insert(d, a, 1, "ab\x00\xff", 4), KITH_EUTF8);
    TT_ASSERT(snap_same(d, &s, "an invalid UTF-8 insert"));
    TT_ASSERT(kith_doc_insert(d, a + 1000, 0, "x", 1) != KITH_OK); /* unknown agent */
    TT_ASSERT(kith_doc_delete(d, a + 1000, 0, 1) != KITH_OK);
    TT_ASSERT(snap_same(d, &s, "an edit by an unknown agent"));
    TT_ASSERT(kith_doc_errmsg(d) != NULL);
    snap_release(&s);
    kith_doc_free(d);
}

/* ---- commits, via and blame ------------------------------------------------------- */

TT_TEST(commit_via_blame)
{
    kith_doc *d = NULL;
    kith_agent a, b;
    kith_blame *bl = NULL;
    size_t n = 0;
    kith_id *v1 = NULL;
    size_t nv1 = 0;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_blame(d, NULL, 0, &bl, &n));
    TT_EQ(n, 0);
    kith_free(bl);
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_agent(d, "bob", &b));
    TT_OK(kith_doc_insert(d, a, 0, "hello", 5));
    TT_OK(kith_doc_commit(d, 1000, NULL));
    TT_OK(kith_doc_insert(d, b, 5, " w\xc3\xb6rld", 7));
    TT_OK(kith_doc_commit(d, 2000, "ai:stories260K"));
    TT_OK(kith_doc_version(d, &v1, &nv1));
    TT_OK(kith_doc_blame(d, NULL, 0, &bl, &n));
    TT_EQ(n, 2);
    TT_ASSERT(blame_is(d, &bl[0], 0, 5, "alice", 0, "alice", 0, 1000, NULL));
    TT_ASSERT(blame_is(d, &bl[1], 5, 6, "bob", 0, "bob", 0, 2000, "ai:stories260K"));
    kith_free(bl);

    /* an insert inside alice's span splits it */
    TT_OK(kith_doc_insert(d, a, 2, "X", 1));
    TT_OK(kith_doc_commit(d, 3000, NULL));
    TT_ASSERT(text_is(d, "heXllo w\xc3\xb6rld"));
    TT_OK(kith_doc_blame(d, NULL, 0, &bl, &n));
    TT_EQ(n, 4);
    TT_ASSERT(blame_is(d, &bl[0], 0, 2, "alice", 0, "alice", 0, 1000, NULL));
    TT_ASSERT(blame_is(d, &bl[1], 2, 1, "alice", 5, "alice", 5, 3000, NULL));
    TT_ASSERT(blame_is(d, &bl[2], 3, 3, "alice", 2, "alice", 0, 1000, NULL));
    TT_ASSERT(blame_is(d, &bl[3], 6, 6, "bob", 0, "bob", 0, 2000, "ai:stories260K"));
    kith_free(bl);

    /* blame of a past version */
    TT_OK(kith_doc_blame(d, v1, nv1, &bl, &n));
    TT_EQ(n, 2);
    TT_ASSERT(blame_is(d, &bl[0], 0, 5, "alice", 0, "alice", 0, 1000, NULL));
    TT_ASSERT(blame_is(d, &bl[1], 5, 6, "bob", 0, "bob", 0, 2000, "ai:stories260K"));
    kith_free(bl);

    /* deleted text leaves blame; bob deletes "heX", his delete is no span */
    TT_OK(kith_doc_delete(d, b, 0, 3));
    TT_OK(kith_doc_commit(d, 4000, NULL));
    TT_OK(kith_doc_blame(d, NULL, 0, &bl, &n));
    TT_EQ(n, 2);
    TT_ASSERT(blame_is(d, &bl[0], 0, 3, "alice", 2, "alice", 0, 1000, NULL));
    TT_ASSERT(blame_is(d, &bl[1], 3, 6, "bob", 0, "bob", 0, 2000, "ai:stories260K"));
    kith_free(bl);
    kith_free(v1);
    kith_doc_free(d);
}

TT_TEST(agent_switch_commits)
{
    kith_doc *d = NULL;
    kith_agent a, b;
    kith_blame *bl = NULL;
    size_t n = 0;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_agent(d, "bob", &b));
    TT_OK(kith_doc_insert(d, a, 0, "a\xc3\xa9", 3));
    TT_OK(kith_doc_insert(d, b, 2, "b", 1)); /* commits alice's change with time 0 */
    TT_OK(kith_doc_insert(d, b, 3, "c", 1));
    TT_OK(kith_doc_commit(d, 5, "ai:v"));
    TT_OK(kith_doc_insert(d, a, 4, "d", 1));
    TT_OK(kith_doc_commit(d, 6, NULL));
    TT_OK(kith_doc_commit(d, 7, "ignored")); /* nothing open: no change */
    TT_OK(kith_doc_blame(d, NULL, 0, &bl, &n));
    TT_EQ(n, 3);
    TT_ASSERT(blame_is(d, &bl[0], 0, 2, "alice", 0, "alice", 0, 0, NULL));
    TT_ASSERT(blame_is(d, &bl[1], 2, 2, "bob", 0, "bob", 0, 5, "ai:v"));
    TT_ASSERT(blame_is(d, &bl[2], 4, 1, "alice", 2, "alice", 2, 6, NULL));
    kith_free(bl);
    kith_doc_free(d);
}

/* ---- concurrency ------------------------------------------------------------------ */

/* YjsMod's tie-break between concurrent inserts at one place: the lower agent
 * name (bytewise) goes first, and runs never interleave. */
TT_TEST(tie_break_lower_name_first)
{
    static const struct {
        const char *n1, *t1, *n2, *t2, *want;
    } cases[] = {
        {"alice", "A", "bob", "B", "AB"},
        {"bob", "B", "alice", "A", "AB"},
        {"bob", "bbb", "alice", "aaa", "aaabbb"},
        {"a", "1", "ab", "2", "12"}, /* a prefix first */
        {"a", "x", "B", "y", "yx"},  /* 'B' (0x42) < 'a' (0x61) */
        {"\xc3\xa9", "\xc3\xa9\xc3\xa9", "z", "\xf0\x9f\x98\x80",
         "\xf0\x9f\x98\x80\xc3\xa9\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kith_doc *d = NULL;
        kith_agent x, y;
        kith_id lx = {0}, ly = {0};
        TT_OK(kith_doc_new(&d));
        TT_OK(kith_doc_agent(d, cases[i].n1, &x));
        TT_OK(kith_doc_agent(d, cases[i].n2, &y));
        TT_OK(kith_doc_edit_at(d, x, NULL, 0, 0, 0, cases[i].t1, strlen(cases[i].t1), &lx));
        TT_OK(kith_doc_edit_at(d, y, NULL, 0, 0, 0, cases[i].t2, strlen(cases[i].t2), &ly));
        TT_OK(kith_doc_merge(d, NULL, 0));
        if (!text_is(d, cases[i].want))
            fprintf(stderr, "  case %zu: %s vs %s\n", i, cases[i].n1, cases[i].n2);
        TT_ASSERT(text_is(d, cases[i].want));
        kith_doc_free(d);
    }
}

TT_TEST(edit_at_then_merge)
{
    kith_doc *d = NULL;
    kith_agent a, b, c;
    kith_id *v0 = NULL, l1 = {0}, l2 = {0}, l3 = {0}, sentinel = {77, 77};
    size_t n0 = 0;
    snap s;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_agent(d, "bob", &b));
    TT_OK(kith_doc_agent(d, "carol", &c));
    TT_OK(kith_doc_insert(d, a, 0, "hello", 5));
    TT_OK(kith_doc_commit(d, 1, NULL));
    TT_OK(kith_doc_version(d, &v0, &n0));
    TT_OK(kith_doc_insert(d, a, 5, " world", 6));
    TT_OK(kith_doc_commit(d, 2, NULL));

    /* bob, at v0, prefixes "Oh "; nothing shows until merged */
    TT_OK(kith_doc_edit_at(d, b, v0, n0, 0, 0, "Oh ", 3, &l1));
    TT_ASSERT(id_is(d, l1, "bob", 2));
    TT_ASSERT(text_is(d, "hello world"));
    TT_EQ(kith_doc_op_count(d), 14);
    TT_ASSERT(text_at_is(d, &l1, 1, "Oh hello"));
    /* bob goes on from his own edit: "Oh" -> "Oh!" */
    TT_OK(kith_doc_edit_at(d, b, &l1, 1, 2, 1, "!", 1, &l2));
    TT_ASSERT(id_is(d, l2, "bob", 4));
    TT_ASSERT(text_at_is(d, &l2, 1, "Oh!hello"));
    TT_OK(kith_doc_merge(d, &l2, 1));
    TT_ASSERT(text_is(d, "Oh!hello world"));

    /* carol, at v0, turns "hello" into "hippo" */
    TT_OK(kith_doc_edit_at(d, c, v0, n0, 1, 3, "ipp", 3, &l3));
    TT_ASSERT(id_is(d, l3, "carol", 5)); /* 3 deletes, then 3 inserts */
    TT_ASSERT(text_at_is(d, &l3, 1, "hippo"));
    TT_ASSERT(text_is(d, "Oh!hello world"));
    TT_OK(kith_doc_merge(d, NULL, 0));
    TT_ASSERT(text_is(d, "Oh!hippo world"));
    kith_id *v = NULL;
    size_t nv = 0;
    TT_OK(kith_doc_version(d, &v, &nv));
    TT_EQ(nv, 3); /* alice's " world", bob's "!", carol's "ipp" are concurrent */
    kith_free(v);

    /* an empty edit leaves *last alone; refused edit_at calls change nothing */
    kith_id keep = sentinel;
    TT_OK(kith_doc_edit_at(d, c, v0, n0, 2, 0, "", 0, &keep));
    TT_EQ(keep.agent, sentinel.agent);
    TT_EQ(keep.seq, sentinel.seq);
    TT_OK(snap_take(d, &s));
    TT_EQ(kith_doc_edit_at(d, c, v0, n0, 6, 0, "x", 1, &keep), KITH_ERANGE); /* "hello" has 5 */
    TT_EQ(kith_doc_edit_at(d, c, v0, n0, 3, 3, "", 0, &keep), KITH_ERANGE);
    TT_EQ(kith_doc_edit_at(d, c, v0, n0, 0, 0, "\xc3", 1, &keep), KITH_EUTF8);
    kith_id ghost = {a, 999};
    TT_ASSERT(kith_doc_edit_at(d, c, &ghost, 1, 0, 0, "x", 1, &keep) != KITH_OK);
    TT_ASSERT(kith_doc_merge(d, &ghost, 1) != KITH_OK);
    TT_ASSERT(snap_same(d, &s, "a refused edit_at"));
    snap_release(&s);
    kith_free(v0);
    kith_doc_free(d);
}

/* ---- versions and history ------------------------------------------------------------ */

TT_TEST(version_strings)
{
    kith_doc *d = NULL;
    kith_agent a, b;
    kith_id *v = NULL, *p = NULL, last;
    size_t n = 0, np = 0;
    char *s = NULL;
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_agent(d, "alice", &a));
    TT_OK(kith_doc_agent(d, "bob", &b));
    TT_OK(kith_doc_version_parse(d, "", &p, &np));
    TT_EQ(np, 0);
    kith_free(p);
    TT_OK(kith_doc_insert(d, a, 0, "hello", 5));
    TT_OK(kith_doc_version(d, &v, &n));
    TT_EQ(n, 1);
    TT_ASSERT(id_is(d, v[0], "alice", 4));
    TT_OK(kith_doc_version_str(d, v, n, &s));
    TT_STREQ(s, "alice:4");
    TT_OK(kith_doc_version_parse(d, s, &p, &np));
    TT_EQ(np, 1);
    TT_EQ(p[0].agent, a);
    TT_EQ(p[0].seq, 4);
    kith_free(s);
    kith_free(p);
    kith_free(v);
    kith_id mid = {a, 2};
    TT_OK(kith_doc_version_str(d, &mid, 1, &s));
    TT_STREQ(s, "alice:2");
    kith_free(s);

    /* a frontier of two concurrent ids */
    TT_OK(kith_doc_edit_at(d, b, NULL, 0, 0, 0, "yo", 2, &last));
    TT_OK(kith_doc_merge(d, NULL, 0));
    TT_OK(kith_doc_version(d, &v, &n));
    TT_EQ(n, 2);
    TT_OK(kith_doc_version_str(d, v, n, &s));
    TT_ASSERT(strcmp(s, "alice:4,bob:1") == 0 || strcmp(s, "bob:1,alice:4") == 0);
    TT_OK(kith_doc_version_parse(d, s, &p, &np));
    TT_ASSERT(same_version(d, v, n, d, p, np));
    kith_free(s);
    kith_free(p);
    kith_free(v);

    static const char *const bad[] = {
        "carol:0",        "alice:5",       "alice",    "alice:",   ":4",
        "alice:x",        "alice:4,",      ",alice:4", "alice:-1", "alice:99999999999999999999999",
        "alice:4,,bob:1", "alice:4;bob:1", " alice:4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = NULL;
        int rc = kith_doc_version_parse(d, bad[i], &p, &np);
        if (rc == KITH_OK)
            fprintf(stderr, "  parsed bad version \"%s\"\n", bad[i]);
        kith_free(p);
        TT_ASSERT(rc != KITH_OK);
    }
    kith_doc_free(d);
}

TT_TEST(text_at_and_diff)
{
    kith_doc *d = NULL;
    kith_id *v[RICH_N + 1] = {0};
    size_t nv[RICH_N + 1] = {0};
    TT_OK(build_rich(&d, v, nv));
    TT_ASSERT(text_is(d, rich_text[RICH_N - 1]));
    for (int i = 0; i < RICH_N; i++)
        TT_ASSERT(text_at_is(d, v[i], nv[i], rich_text[i]));
    TT_ASSERT(text_at_is(d, NULL, 0, ""));
    /* carol's edit alone, at its own version */
    kith_id carol_only = {0, 0}; /* carol inserted one code point */
    TT_OK(kith_doc_agent(d, "carol", &carol_only.agent));
    TT_ASSERT(text_at_is(d, &carol_only, 1, "he\xe2\x82\xacllo"));
    /* an id the doc lacks */
    kith_id ghost = {carol_only.agent, 3};
    char *t = NULL;
    size_t tl = 0;
    TT_ASSERT(kith_doc_text_at(d, &ghost, 1, &t, &tl) != KITH_OK);
    kith_free(t);
    /* diff between every pair, the empty version and carol's branch included */
    v[RICH_N] = NULL;
    nv[RICH_N] = 0;
    for (int i = 0; i <= RICH_N; i++) {
        for (int j = 0; j <= RICH_N; j++) {
            if (!diff_reproduces(d, v[i], nv[i], v[j], nv[j]))
                fprintf(stderr, "  diff v%d -> v%d\n", i, j);
            TT_ASSERT(diff_reproduces(d, v[i], nv[i], v[j], nv[j]));
        }
        TT_ASSERT(diff_reproduces(d, &carol_only, 1, v[i], nv[i]));
        TT_ASSERT(diff_reproduces(d, v[i], nv[i], &carol_only, 1));
    }
    /* no change, no patch */
    kith_patch *p = NULL;
    size_t np = 9;
    TT_OK(kith_doc_diff(d, v[2], nv[2], v[2], nv[2], &p, &np));
    TT_EQ(np, 0);
    kith_free(p);
    free_versions(v, RICH_N);
    kith_doc_free(d);
}

/* ---- encoding -------------------------------------------------------------------- */

/* 1 if @x and @y hold the same text, version, ops, agents and blame. */
static int docs_equal(kith_doc *x, kith_doc *y)
{
    kith_id *vx = NULL, *vy = NULL;
    size_t nx = 0, ny = 0, bx = 0, by = 0;
    kith_blame *blx = NULL, *bly = NULL;
    char *tx = NULL;
    size_t tl = 0;
    int ok = kith_doc_text(x, &tx, &tl) == KITH_OK && text_is(y, tx) &&
             kith_doc_op_count(x) == kith_doc_op_count(y) && kith_doc_len(x) == kith_doc_len(y) &&
             kith_doc_version(x, &vx, &nx) == KITH_OK && kith_doc_version(y, &vy, &ny) == KITH_OK &&
             same_version(x, vx, nx, y, vy, ny) &&
             kith_doc_blame(x, NULL, 0, &blx, &bx) == KITH_OK &&
             kith_doc_blame(y, NULL, 0, &bly, &by) == KITH_OK && bx == by;
    for (size_t i = 0; ok && i < bx; i++) {
        const kith_blame *p = &blx[i], *q = &bly[i];
        ok = p->pos == q->pos && p->len == q->len && p->time_ms == q->time_ms &&
             p->id.seq == q->id.seq && p->change.seq == q->change.seq &&
             !strcmp(kith_doc_agent_name(x, p->id.agent), kith_doc_agent_name(y, q->id.agent)) &&
             !strcmp(kith_doc_agent_name(x, p->change.agent),
                     kith_doc_agent_name(y, q->change.agent)) &&
             (!p->via) == (!q->via) && (!p->via || !strcmp(p->via, q->via));
        if (!ok)
            fprintf(stderr, "  blame span %zu differs\n", i);
    }
    kith_free(tx);
    kith_free(vx);
    kith_free(vy);
    kith_free(blx);
    kith_free(bly);
    return ok;
}

TT_TEST(encode_decode_round_trip)
{
    kith_doc *d = NULL, *e = NULL, *f = NULL;
    kith_id *v[RICH_N] = {0};
    size_t nv[RICH_N] = {0};
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;

    /* the empty doc */
    TT_OK(kith_doc_new(&d));
    TT_OK(kith_doc_encode(d, &buf, &len));
    TT_ASSERT(len > 0);
    TT_OK(kith_doc_decode(buf, len, &e));
    TT_ASSERT(docs_equal(d, e));
    kith_free(buf);
    kith_doc_free(d);
    kith_doc_free(e);

    TT_OK(build_rich(&d, v, nv));
    TT_OK(kith_doc_encode(d, &buf, &len));
    TT_OK(kith_doc_decode(buf, len, &e));
    TT_ASSERT(docs_equal(d, e));
    /* past versions, named by string, check out of the decoded doc */
    for (int i = 0; i < RICH_N; i++) {
        char *s = NULL;
        kith_id *p = NULL;
        size_t np = 0;
        TT_OK(kith_doc_version_str(d, v[i], nv[i], &s));
        TT_OK(kith_doc_version_parse(e, s, &p, &np));
        TT_ASSERT(text_at_is(e, p, np, rich_text[i]));
        kith_blame *b1 = NULL, *b2 = NULL;
        size_t n1 = 0, n2 = 0;
        TT_OK(kith_doc_blame(d, v[i], nv[i], &b1, &n1));
        TT_OK(kith_doc_blame(e, p, np, &b2, &n2));
        TT_EQ(n1, n2);
        kith_free(b1);
        kith_free(b2);
        kith_free(p);
        kith_free(s);
    }
    /* a second generation is the same doc again */
    TT_OK(kith_doc_encode(e, &buf2, &len2));
    TT_OK(kith_doc_decode(buf2, len2, &f));
    TT_ASSERT(docs_equal(d, f));
    /* the decoded doc goes on: alice's next op continues her numbering */
    kith_agent a;
    TT_OK(kith_doc_agent(e, "alice", &a));
    uint64_t ops = kith_doc_op_count(e);
    TT_OK(kith_doc_insert(e, a, 0, "\xf0\x9f\x98\x80", 4));
    TT_OK(kith_doc_commit(e, 5000, NULL));
    TT_EQ(kith_doc_op_count(e), ops + 1);
    kith_id *cur = NULL;
    size_t ncur = 0;
    TT_OK(kith_doc_version(e, &cur, &ncur));
    TT_EQ(ncur, 1);
    TT_ASSERT(id_is(e, cur[0], "alice", 7)); /* 5 + 1 delete + 1 insert before */
    kith_free(cur);
    TT_ASSERT(text_is(e, "\xf0\x9f\x98\x80He\xe2\x82\xacllo w\xc3\xb6rld"));
    kith_free(buf);
    kith_free(buf2);
    kith_doc_free(f);
    kith_doc_free(e);
    free_versions(v, RICH_N);
    kith_doc_free(d);
}

/* ---- sync --------------------------------------------------------------------------- */

/* dst gets what src has and dst lacks. */
static int sync_to(kith_doc *src, kith_doc *dst)
{
    uint8_t *sum = NULL, *delta = NULL;
    size_t sl = 0, dl = 0;
    int rc = kith_doc_summary(dst, &sum, &sl);
    if (rc == KITH_OK)
        rc = kith_doc_encode_since(src, sum, sl, &delta, &dl);
    if (rc == KITH_OK)
        rc = kith_doc_apply(dst, delta, dl);
    if (rc != KITH_OK)
        fprintf(stderr, "  sync: %s (%s)\n", kith_err_name(rc), kith_doc_errmsg(dst));
    kith_free(sum);
    kith_free(delta);
    return rc;
}

TT_TEST(delta_sync)
{
    kith_doc *a = NULL, *b = NULL;
    kith_agent aa, bb;
    uint8_t *sum = NULL, *delta = NULL, *whole = NULL;
    size_t sl = 0, dl = 0, wl = 0;
    snap s;
    TT_OK(kith_doc_new(&a));
    TT_OK(kith_doc_new(&b));
    TT_OK(kith_doc_agent(a, "alice", &aa));
    TT_OK(kith_doc_agent(b, "bob", &bb));
    TT_OK(kith_doc_summary(a, &sum, &sl)); /* an empty doc has a summary too */
    kith_free(sum);
    TT_OK(kith_doc_insert(a, aa, 0, "h\xc3\xa9llo", 6));
    TT_OK(kith_doc_commit(a, 1, NULL));
    TT_OK(kith_doc_insert(b, bb, 0, "w\xf0\x9f\x98\x80rld", 8));
    TT_OK(kith_doc_commit(b, 2, "ai:m"));

    TT_OK(kith_doc_summary(a, &sum, &sl));
    TT_OK(kith_doc_encode_since(b, sum, sl, &delta, &dl));
    kith_free(sum);
    TT_OK(kith_doc_apply(a, delta, dl));
    TT_OK(sync_to(a, b));
    char *ta = NULL;
    size_t tal = 0;
    TT_OK(kith_doc_text(a, &ta, &tal));
    TT_ASSERT(text_is(b, ta));
    TT_ASSERT(strcmp(ta, "h\xc3\xa9llow\xf0\x9f\x98\x80rld") == 0 ||
              strcmp(ta, "w\xf0\x9f\x98\x80rldh\xc3\xa9llo") == 0);
    kith_free(ta);
    TT_ASSERT(docs_equal(a, b));

    /* duplicates are no-ops: the same delta, a whole encoding, an empty delta */
    TT_OK(snap_take(a, &s));
    TT_OK(kith_doc_apply(a, delta, dl));
    TT_OK(kith_doc_encode(b, &whole, &wl));
    TT_OK(kith_doc_apply(a, whole, wl));
    TT_OK(sync_to(b, a));
    TT_ASSERT(snap_same(a, &s, "a duplicate apply"));
    snap_release(&s);
    kith_free(delta);
    kith_free(whole);

    /* both edit again, then converge */
    TT_OK(kith_doc_delete(a, aa, 0, 2));
    TT_OK(kith_doc_commit(a, 3, NULL));
    TT_OK(kith_doc_insert(b, bb, 3, "\xe4\xb8\xad", 3));
    TT_OK(kith_doc_commit(b, 4, NULL));
    TT_OK(sync_to(a, b));
    TT_OK(sync_to(b, a));
    TT_ASSERT(docs_equal(a, b));
    kith_doc_free(a);
    kith_doc_free(b);
}

TT_TEST(apply_missing_parents)
{
    kith_doc *a = NULL, *b = NULL, *c = NULL, *h = NULL;
    kith_agent aa, bb;
    kith_id lb;
    uint8_t *d2 = NULL, *mixed = NULL, *e1 = NULL, *sum = NULL;
    size_t l2 = 0, ml = 0, l1 = 0, sl = 0;
    snap s;
    TT_OK(kith_doc_new(&a));
    TT_OK(kith_doc_new(&b));
    TT_OK(kith_doc_new(&c));
    TT_OK(kith_doc_new(&h));
    TT_OK(kith_doc_agent(a, "alice", &aa));
    TT_OK(kith_doc_insert(a, aa, 0, "hello", 5));
    TT_OK(kith_doc_commit(a, 1, NULL));
    TT_OK(sync_to(a, b)); /* b and h hold "hello" */
    TT_OK(sync_to(a, h));
    TT_OK(kith_doc_insert(a, aa, 5, "!", 1));
    TT_OK(kith_doc_commit(a, 2, NULL));
    TT_OK(kith_doc_summary(b, &sum, &sl));
    TT_OK(kith_doc_encode_since(a, sum, sl, &d2, &l2)); /* only "!" */
    kith_free(sum);

    /* c lacks "hello": the delta is refused and changes nothing */
    TT_OK(snap_take(c, &s));
    TT_EQ(kith_doc_apply(c, d2, l2), KITH_EMISSING);
    TT_ASSERT(snap_same(c, &s, "an apply with missing parents"));

    /* a delta mixing ops c could take (bob's, made at the empty version)
     * with ops it cannot: nothing at all is applied */
    TT_OK(kith_doc_apply(b, d2, l2));
    TT_OK(kith_doc_agent(b, "bob", &bb));
    TT_OK(kith_doc_edit_at(b, bb, NULL, 0, 0, 0, "B", 1, &lb));
    TT_OK(kith_doc_merge(b, NULL, 0));
    TT_OK(kith_doc_commit(b, 3, NULL));
    TT_OK(kith_doc_summary(h, &sum, &sl));
    TT_OK(kith_doc_encode_since(b, sum, sl, &mixed, &ml)); /* "!" and "B" */
    kith_free(sum);
    TT_EQ(kith_doc_apply(c, mixed, ml), KITH_EMISSING);
    TT_ASSERT(snap_same(c, &s, "an apply of a mixed delta with missing parents"));
    snap_release(&s);
    TT_OK(kith_doc_apply(h, mixed, ml));
    TT_ASSERT(docs_equal(h, b));

    /* once the parents arrive, the same deltas apply */
    TT_OK(kith_doc_encode(a, &e1, &l1));
    TT_OK(kith_doc_apply(c, e1, l1));
    TT_ASSERT(text_is(c, "hello!"));
    TT_OK(kith_doc_apply(c, d2, l2)); /* now a duplicate */
    TT_OK(kith_doc_apply(c, mixed, ml));
    TT_ASSERT(docs_equal(c, b));
    kith_free(d2);
    kith_free(mixed);
    kith_free(e1);
    kith_doc_free(a);
    kith_doc_free(b);
    kith_doc_free(c);
    kith_doc_free(h);
}

/* ---- malformed input ---------------------------------------------------------------- */

/* A small encoding and a small delta, and a target doc to apply them to. */
static int small_inputs(uint8_t **enc, size_t *el, uint8_t **delta, size_t *dl, kith_doc **target)
{
    kith_doc *a = NULL, *b = NULL;
    kith_agent aa = 0, bb = 0;
    uint8_t *sum = NULL;
    size_t sl = 0;
    int rc = kith_doc_new(&a);
    if (rc == KITH_OK)
        rc = kith_doc_new(&b);
    if (rc == KITH_OK)
        rc = kith_doc_agent(a, "alice", &aa);
    if (rc == KITH_OK)
        rc = kith_doc_agent(b, "bob", &bb);
    if (rc == KITH_OK)
        rc = kith_doc_insert(a, aa, 0, "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10);
    if (rc == KITH_OK)
        rc = kith_doc_commit(a, 1700000000000, "ai:s");
    if (rc == KITH_OK)
        rc = kith_doc_insert(b, bb, 0, "xyz", 3);
    if (rc == KITH_OK)
        rc = kith_doc_commit(b, 5, NULL);
    if (rc == KITH_OK)
        rc = sync_to(b, a);
    if (rc == KITH_OK)
        rc = kith_doc_delete(a, aa, 1, 2);
    if (rc == KITH_OK)
        rc = kith_doc_commit(a, 6, NULL);
    if (rc == KITH_OK)
        rc = kith_doc_encode(a, enc, el);
    if (rc == KITH_OK)
        rc = kith_doc_summary(b, &sum, &sl);
    if (rc == KITH_OK)
        rc = kith_doc_encode_since(a, sum, sl, delta, dl);
    kith_free(sum);
    kith_doc_free(a);
    *target = b; /* bob's doc: the delta applies to it */
    if (rc != KITH_OK) {
        kith_doc_free(b);
        *target = NULL;
    }
    return rc;
}

TT_TEST(truncated_input)
{
    uint8_t *enc = NULL, *delta = NULL;
    size_t el = 0, dl = 0;
    kith_doc *t = NULL;
    snap s;
    TT_OK(small_inputs(&enc, &el, &delta, &dl, &t));
    TT_OK(snap_take(t, &s));
    for (size_t n = 0; n < el; n++) {
        kith_doc *d = (kith_doc *)&s; /* must come back NULL */
        int rc = kith_doc_decode(enc, n, &d);
        if (rc == KITH_OK || d != NULL)
            fprintf(stderr, "  decode of %zu of %zu bytes: %s\n", n, el, kith_err_name(rc));
        TT_ASSERT(rc != KITH_OK);
        TT_ASSERT(d == NULL);
        rc = kith_doc_apply(t, enc, n);
        if (rc == KITH_OK)
            fprintf(stderr, "  apply of %zu of %zu bytes of an encoding succeeded\n", n, el);
        TT_ASSERT(rc != KITH_OK);
    }
    for (size_t n = 0; n < dl; n++) {
        int rc = kith_doc_apply(t, delta, n);
        if (rc == KITH_OK)
            fprintf(stderr, "  apply of %zu of %zu bytes of a delta succeeded\n", n, dl);
        TT_ASSERT(rc != KITH_OK);
    }
    TT_ASSERT(snap_same(t, &s, "a truncated input"));
    /* trailing garbage is malformed too */
    uint8_t *longer = malloc(el + 1);
    TT_ASSERT(longer != NULL);
    memcpy(longer, enc, el);
    longer[el] = 0;
    kith_doc *d = NULL;
    int rc = kith_doc_decode(longer, el + 1, &d);
    kith_doc_free(d);
    free(longer);
    TT_ASSERT(rc != KITH_OK);
    /* the untouched inputs work */
    TT_OK(kith_doc_apply(t, delta, dl));
    TT_OK(kith_doc_decode(enc, el, &d));
    TT_ASSERT(docs_equal(d, t));
    kith_doc_free(d);
    snap_release(&s);
    kith_free(enc);
    kith_free(delta);
    kith_doc_free(t);
}

TT_TEST(bit_flipped_input)
{
    uint8_t *enc = NULL, *delta = NULL;
    size_t el = 0, dl = 0;
    kith_doc *t = NULL;
    snap s;
    TT_OK(small_inputs(&enc, &el, &delta, &dl, &t));
    TT_OK(snap_take(t, &s));
    size_t accepted = 0;
    for (int which = 0; which < 2; which++) {
        uint8_t *buf = which ? delta : enc;
        size_t len = which ? dl : el;
        for (size_t bit = 0; bit < len * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            kith_doc *d = NULL;
            int rc = which ? KITH_ECORRUPT : kith_doc_decode(buf, len, &d);
            int rc2 = kith_doc_apply(t, buf, len);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (rc == KITH_OK || rc2 == KITH_OK) {
                if (accepted++ < 5)
                    fprintf(stderr, "  %s with bit %zu of %zu flipped: decode %s, apply %s\n",
                            which ? "delta" : "encoding", bit, len * 8, kith_err_name(rc),
                            kith_err_name(rc2));
            }
            kith_doc_free(d);
            if (rc2 == KITH_OK) { /* it must not have changed t; restore for the next flip */
                kith_doc_free(t);
                t = NULL;
                TT_OK(kith_doc_decode(s.enc, s.enc_len, &t));
            }
        }
    }
    TT_EQ(accepted, 0);
    TT_ASSERT(snap_same(t, &s, "a bit-flipped input"));
    snap_release(&s);
    kith_free(enc);
    kith_free(delta);
    kith_doc_free(t);
}

/* ---- a failing allocator ------------------------------------------------------------------ */

static struct {
    int armed;
    long calls, fail_at, live;
} fa;

static void *fa_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    if (n == 0) { /* free */
        if (p)
            fa.live--;
        free(p);
        return NULL;
    }
    if (fa.armed && ++fa.calls == fa.fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        fa.live++;
    return q;
}

static void fa_arm(long n)
{
    fa.calls = 0;
    fa.fail_at = n;
    fa.armed = 1;
}

/* Inputs shared by the operations run under the failing allocator. */
typedef struct oom_env {
    uint8_t *enc, *delta, *sum;
    size_t el, dl, sl;
    kith_doc *src, *dst; /* fresh for every attempt: decoded from enc / tenc */
    uint8_t *tenc;
    size_t tl;
    char *merged; /* dst's text once the delta is in */
    kith_doc *out;
    uint8_t *buf;
    size_t len;
    char *text;
    kith_blame *blame;
    kith_patch *patch;
    kith_id *ids;
    size_t n;
} oom_env;

enum { OOM_KEEPS_DST = 1 }; /* on failure dst must be unchanged */

static int op_new(oom_env *e)
{
    return kith_doc_new(&e->out);
}
static int op_decode(oom_env *e)
{
    return kith_doc_decode(e->enc, e->el, &e->out);
}
static int op_encode(oom_env *e)
{
    return kith_doc_encode(e->src, &e->buf, &e->len);
}
static int op_summary(oom_env *e)
{
    return kith_doc_summary(e->dst, &e->buf, &e->len);
}
static int op_encode_since(oom_env *e)
{
    return kith_doc_encode_since(e->src, e->sum, e->sl, &e->buf, &e->len);
}
static int op_apply_delta(oom_env *e)
{
    return kith_doc_apply(e->dst, e->delta, e->dl);
}
static int op_apply_whole(oom_env *e)
{
    return kith_doc_apply(e->dst, e->enc, e->el);
}
static int op_insert(oom_env *e)
{
    kith_agent a;
    int rc = kith_doc_agent(e->dst, "zoe", &a);
    return rc ? rc : kith_doc_insert(e->dst, a, 1, "\xc3\xa9\xf0\x9f\x98\x80", 6);
}
static int op_text(oom_env *e)
{
    return kith_doc_text(e->src, &e->text, &e->len);
}
static int op_blame(oom_env *e)
{
    return kith_doc_blame(e->src, NULL, 0, &e->blame, &e->n);
}
static int op_text_at(oom_env *e)
{
    kith_id v = {0, 1};
    int rc = kith_doc_agent(e->src, "bob", &v.agent);
    return rc ? rc : kith_doc_text_at(e->src, &v, 1, &e->text, &e->len);
}
static int op_diff(oom_env *e)
{
    kith_id v = {0, 1};
    int rc = kith_doc_agent(e->src, "bob", &v.agent);
    return rc ? rc : kith_doc_diff(e->src, &v, 1, NULL, 0, &e->patch, &e->n);
}
static int op_version_str(oom_env *e)
{
    kith_id *v = NULL;
    size_t n = 0;
    int rc = kith_doc_version(e->src, &v, &n);
    if (rc == KITH_OK)
        rc = kith_doc_version_str(e->src, v, n, &e->text);
    kith_free(v);
    return rc;
}
static int op_version_parse(oom_env *e)
{
    return kith_doc_version_parse(e->src, "alice:3,bob:2", &e->ids, &e->n);
}

/* Checks the result of a successful run; 1 if right. */
static int oom_result_ok(const char *name, oom_env *e)
{
    if (!strcmp(name, "new"))
        return e->out != NULL && kith_doc_len(e->out) == 0;
    if (!strcmp(name, "decode"))
        return e->out != NULL && docs_equal(e->out, e->src);
    if (!strcmp(name, "encode") || !strcmp(name, "encode_since") || !strcmp(name, "summary"))
        return e->buf != NULL && e->len > 0;
    if (!strcmp(name, "apply delta") || !strcmp(name, "apply whole"))
        return text_is(e->dst, e->merged);
    if (!strcmp(name, "text"))
        return e->text != NULL;
    return 1;
}

static int oom_run(const char *name, int (*op)(oom_env *), oom_env *e, int flags)
{
    for (long n = 1; n < 100000; n++) {
        long base = fa.live;
        snap s;
        int rc = kith_doc_decode(e->enc, e->el, &e->src);
        if (rc == KITH_OK)
            rc = kith_doc_decode(e->tenc, e->tl, &e->dst);
        if (rc == KITH_OK)
            rc = snap_take(e->dst, &s);
        if (rc != KITH_OK) {
            fprintf(stderr, "  %s: setup failed: %s\n", name, kith_err_name(rc));
            return -1;
        }
        e->out = NULL;
        e->buf = NULL;
        e->text = NULL;
        e->blame = NULL;
        e->patch = NULL;
        e->ids = NULL;
        fa_arm(n);
        rc = op(e);
        fa.armed = 0;
        int bad = 0;
        if (rc == KITH_OK) {
            if (!oom_result_ok(name, e)) {
                fprintf(stderr, "  %s: wrong result after allocation %ld failed\n", name, n);
                bad = 1;
            }
        } else if (rc != KITH_ENOMEM) {
            fprintf(stderr, "  %s: allocation %ld failed: returned %s, not KITH_ENOMEM\n", name, n,
                    kith_err_name(rc));
            bad = 1;
        } else if (e->out || e->buf || e->text || e->blame || e->patch || e->ids) {
            fprintf(stderr, "  %s: allocation %ld failed: out-param not NULL\n", name, n);
            bad = 1;
        } else if ((flags & OOM_KEEPS_DST) && !snap_same(e->dst, &s, name)) {
            fprintf(stderr, "  %s: allocation %ld failed and the doc changed\n", name, n);
            bad = 1;
        }
        snap_release(&s);
        kith_doc_free(e->out);
        kith_free(e->buf);
        kith_free(e->text);
        kith_free(e->blame);
        kith_free(e->patch);
        kith_free(e->ids);
        kith_doc_free(e->src);
        kith_doc_free(e->dst);
        e->src = e->dst = NULL;
        if (fa.live != base) {
            fprintf(stderr, "  %s: %ld blocks leaked when allocation %ld failed (%s)\n", name,
                    fa.live - base, n, kith_err_name(rc));
            bad = 1;
        }
        if (bad)
            return -1;
        if (rc == KITH_OK)
            return 0;
    }
    fprintf(stderr, "  %s: never succeeded\n", name);
    return -1;
}

TT_TEST(failing_allocator)
{
    static const struct {
        const char *name;
        int (*op)(oom_env *);
        int flags;
    } ops[] = {
        {"new", op_new, 0},
        {"decode", op_decode, 0},
        {"encode", op_encode, 0},
        {"summary", op_summary, 0},
        {"encode_since", op_encode_since, 0},
        {"apply delta", op_apply_delta, OOM_KEEPS_DST},
        {"apply whole", op_apply_whole, OOM_KEEPS_DST},
        {"insert", op_insert, OOM_KEEPS_DST},
        {"text", op_text, 0},
        {"blame", op_blame, 0},
        {"text_at", op_text_at, 0},
        {"diff", op_diff, 0},
        {"version_str", op_version_str, 0},
        {"version_parse", op_version_parse, 0},
    };
    oom_env e;
    kith_doc *t = NULL;
    memset(&e, 0, sizeof e);
    memset(&fa, 0, sizeof fa);
    kith_set_allocator(fa_realloc, NULL);
    int rc = small_inputs(&e.enc, &e.el, &e.delta, &e.dl, &t);
    if (rc == KITH_OK)
        rc = kith_doc_encode(t, &e.tenc, &e.tl);
    if (rc == KITH_OK)
        rc = kith_doc_summary(t, &e.sum, &e.sl);
    if (rc == KITH_OK)
        rc = kith_doc_apply(t, e.delta, e.dl);
    if (rc == KITH_OK)
        rc = kith_doc_text(t, &e.merged, &e.n);
    kith_doc_free(t);
    int failed = rc != KITH_OK;
    for (size_t i = 0; !failed && i < sizeof ops / sizeof ops[0]; i++)
        failed = oom_run(ops[i].name, ops[i].op, &e, ops[i].flags) != 0;
    kith_free(e.enc);
    kith_free(e.delta);
    kith_free(e.sum);
    kith_free(e.tenc);
    kith_free(e.merged);
    kith_set_allocator(NULL, NULL);
    TT_OK(rc);
    TT_ASSERT(!failed);
}

/* One author's seq range travels on its own, once its parents are there. */
TT_TEST(encode_range_per_change)
{
    kith_doc *a = NULL, *b = NULL;
    kith_agent aa, ab, bb;
    uint8_t *enc = NULL, *d1 = NULL, *d2 = NULL;
    size_t el = 0, l1 = 0, l2 = 0;
    TT_OK(kith_doc_new(&a));
    TT_OK(kith_doc_agent(a, "alice", &aa));
    TT_OK(kith_doc_agent(a, "bob", &ab));
    TT_OK(kith_doc_insert(a, aa, 0, "hello", 5)); /* alice 0..4 */
    TT_OK(kith_doc_commit(a, 1, NULL));
    TT_OK(kith_doc_encode(a, &enc, &el));
    TT_OK(kith_doc_insert(a, ab, 5, " world", 6)); /* bob 0..5 */
    TT_OK(kith_doc_commit(a, 2, NULL));
    TT_OK(kith_doc_insert(a, aa, 11, "!", 1)); /* alice 5 */
    TT_OK(kith_doc_delete(a, aa, 0, 1));        /* alice 6 */
    TT_OK(kith_doc_commit(a, 3, NULL));
    TT_OK(kith_doc_decode(enc, el, &b));
    TT_OK(kith_doc_agent(b, "bob", &bb));
    /* Alice's second change needs Bob's first: refused until it is there. */
    TT_OK(kith_doc_encode_range(a, aa, 5, 7, &d2, &l2));
    TT_EQ(kith_doc_apply(b, d2, l2), KITH_EMISSING);
    TT_OK(kith_doc_encode_range(a, ab, 0, 6, &d1, &l1));
    TT_OK(kith_doc_apply(b, d1, l1));
    TT_OK(kith_doc_apply(b, d2, l2));
    TT_ASSERT(text_is(b, "ello world!"));
    TT_ASSERT(docs_equal(a, b));
    uint8_t *bad = NULL;
    size_t bl = 0;
    TT_EQ(kith_doc_encode_range(a, aa, 5, 8, &bad, &bl), KITH_EINVAL);
    TT_EQ(kith_doc_encode_range(a, aa, 3, 2, &bad, &bl), KITH_EINVAL);
    kith_free(enc);
    kith_free(d1);
    kith_free(d2);
    kith_doc_free(a);
    kith_doc_free(b);
}

TT_MAIN(TT_CASE(encode_range_per_change), TT_CASE(empty_doc), TT_CASE(agents), TT_CASE(insert_delete_ascii),
        TT_CASE(insert_delete_utf8), TT_CASE(bad_edits_change_nothing), TT_CASE(commit_via_blame),
        TT_CASE(agent_switch_commits), TT_CASE(tie_break_lower_name_first),
        TT_CASE(edit_at_then_merge), TT_CASE(version_strings), TT_CASE(text_at_and_diff),
        TT_CASE(encode_decode_round_trip), TT_CASE(delta_sync), TT_CASE(apply_missing_parents),
        TT_CASE(truncated_input), TT_CASE(bit_flipped_input), TT_CASE(failing_allocator))
