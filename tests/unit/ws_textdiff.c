/*
 * Unit tests of the workspace text diffs (src/ws/textdiff.h): exact patches
 * for typical human edits, a randomized property test (random edit sequences
 * on random UTF-8 with multi-byte code points: the patches, applied in
 * order, give exactly the new text), the prefix/suffix fast path and the
 * bounded cost on large inputs (timed), invalid UTF-8, a failing allocator;
 * and the unified diff against exact strings, its own reapplication, and
 * GNU diff where the machine has it. KITH_SEED fixes the random seed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "kith/kith.h"
#include "tt.h"
#include "ws/textdiff.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Built with -DCHAR_COST_CAP=... (and the other limits of textdiff.c) the
 * diff gives up on exactness almost at once, which drives every fallback:
 * results must stay correct, but minimality and the exact expected patches
 * are not checked then. */
#ifdef CHAR_COST_CAP
#define TINY_CAPS 1
#else
#define TINY_CAPS 0
#endif

/* Time limit for the 1 MB cases; sanitizers slow the code several-fold. */
#define BIG_LIMIT_S (SANITIZED ? 8.0 : 1.0)

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static uint64_t seed_from_env(void)
{
    const char *s = getenv("KITH_SEED");
    return s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Growable byte string. */
typedef struct str {
    char *p;
    size_t n, cap;
} str;

static void str_put(str *s, const char *p, size_t n)
{
    if (n > ((size_t)1 << 40) || s->n > ((size_t)1 << 40)) /* tells gcc -O3 the sizes are sane */
        abort();
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        if (!s->p)
            abort();
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = 0;
}

static void str_cstr(str *s, const char *p)
{
    str_put(s, p, strlen(p));
}

/* Byte offset of code point @cp in @s, or (size_t)-1 past the end. */
static size_t cp_offset(const char *s, size_t len, size_t cp)
{
    size_t i = 0;
    for (size_t k = 0; k < cp; k++) {
        if (i >= len)
            return (size_t)-1;
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
    }
    return i;
}

static size_t cp_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/*
 * Applies @n patches to @a literally as the contract says (each to the
 * result of the one before), checking every position, length and that ins
 * lies inside @b on code point boundaries. Returns the text (free()) or NULL
 * with *why set.
 */
static char *apply_patches(const char *a, size_t alen, const char *b, size_t blen,
                           const kith_patch *p, size_t n, size_t *outlen, const char **why)
{
    str t = {0};
    str_put(&t, a, alen);
    for (size_t i = 0; i < n; i++) {
        size_t at = cp_offset(t.p, t.n, p[i].pos);
        size_t end = at == (size_t)-1 ? at : cp_offset(t.p + at, t.n - at, p[i].del);
        if (at == (size_t)-1 || end == (size_t)-1) {
            *why = "patch out of range";
            free(t.p);
            return NULL;
        }
        if (p[i].ins_len && (p[i].ins < b || p[i].ins + p[i].ins_len > b + blen ||
                             ((unsigned char)p[i].ins[0] & 0xc0) == 0x80 ||
                             (p[i].ins + p[i].ins_len < b + blen &&
                              ((unsigned char)p[i].ins[p[i].ins_len] & 0xc0) == 0x80))) {
            *why = "ins not a code point span of b";
            free(t.p);
            return NULL;
        }
        if (p[i].del == 0 && p[i].ins_len == 0) {
            *why = "empty patch";
            free(t.p);
            return NULL;
        }
        end += at;
        str u = {0};
        str_put(&u, t.p, at);
        str_put(&u, p[i].ins, p[i].ins_len);
        str_put(&u, t.p + end, t.n - end);
        free(t.p);
        t = u;
        if (!t.p)
            str_put(&t, "", 0);
    }
    *outlen = t.n;
    return t.p ? t.p : calloc(1, 1);
}

/*
 * The same for big inputs in one pass: the patches must be sorted and apart
 * (each starts at or after the end of the previous one's insertion), which
 * ws_text_diff promises in practice and the sequential rule then implies.
 */
static int apply_matches_fast(const char *a, size_t alen, const char *b, size_t blen,
                              const kith_patch *p, size_t n)
{
    str t = {0};
    size_t ai = 0, acp = 0, prev_end = 0;
    long long shift = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].pos < prev_end)
            return 0;
        size_t apos = (size_t)((long long)p[i].pos - shift);
        size_t off = cp_offset(a + ai, alen - ai, apos - acp);
        if (off == (size_t)-1)
            return 0;
        str_put(&t, a + ai, off);
        ai += off;
        size_t dl = cp_offset(a + ai, alen - ai, p[i].del);
        if (dl == (size_t)-1)
            return 0;
        ai += dl;
        acp = apos + p[i].del;
        str_put(&t, p[i].ins, p[i].ins_len);
        size_t icp = cp_len(p[i].ins, p[i].ins_len);
        shift += (long long)icp - (long long)p[i].del;
        prev_end = p[i].pos + icp;
    }
    str_put(&t, a + ai, alen - ai);
    int ok = t.n == blen && memcmp(t.p, b, blen) == 0;
    free(t.p);
    return ok;
}

/* Diffs, applies, compares; prints the case on failure. Returns the patch
 * count or -1. */
static long check_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    kith_patch *p = NULL;
    size_t n = 0, outlen = 0;
    const char *why = "result differs";
    int rc = ws_text_diff(a, alen, b, blen, &p, &n);
    if (rc != KITH_OK) {
        fprintf(stderr, "  ws_text_diff: %s\n", kith_err_name(rc));
        return -1;
    }
    char *r = apply_patches(a, alen, b, blen, p, n, &outlen, &why);
    int ok = r && outlen == blen && memcmp(r, b, blen) == 0 &&
             apply_matches_fast(a, alen, b, blen, p, n);
    if (!ok) {
        fprintf(stderr, "  %s\n  a = \"%.*s\"\n  b = \"%.*s\"\n", why, (int)alen, a, (int)blen, b);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  patch %zu: pos %zu del %zu ins \"%.*s\"\n", i, p[i].pos, p[i].del,
                    (int)p[i].ins_len, p[i].ins);
    }
    free(r);
    kith_free(p);
    return ok ? (long)n : -1;
}

/* "pos,del,ins;" for each patch, to compare with expected strings. */
static char *patch_str(const char *a, const char *b)
{
    kith_patch *p = NULL;
    size_t n = 0;
    str s = {0};
    if (ws_text_diff(a, strlen(a), b, strlen(b), &p, &n) != KITH_OK)
        return strdup("error");
    str_put(&s, "", 0);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%zu,%zu,", p[i].pos, p[i].del);
        str_cstr(&s, buf);
        str_put(&s, p[i].ins, p[i].ins_len);
        str_cstr(&s, ";");
    }
    kith_free(p);
    return s.p;
}

/* ---- random UTF-8 ----------------------------------------------------------------- */

/* Symbols weighted toward repeats, so that random texts share a lot; the
 * first few are ASCII, then é ü € 中 and two emoji. */
// clang-format off
static const char *const alphabet[] = {
    "a", "b", "c", " ", " ", "\n", "e", "t",
    "\xc3\xa9", "\xc3\xbc", "\xe2\x82\xac", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x83",
};
// clang-format on

static void rnd_text(str *s, size_t ncp, size_t nsym)
{
    for (size_t i = 0; i < ncp; i++)
        str_cstr(s, alphabet[rnd_below(nsym)]);
}

/* Applies one random edit (insert, delete or replace of a random span) to
 * @t; returns its kind: 0 insert, 1 delete, 2 replace. */
static int rnd_edit(str *t, size_t maxlen, size_t nsym)
{
    size_t ncp = cp_len(t->p ? t->p : "", t->n);
    int kind = ncp ? (int)rnd_below(3) : 0;
    size_t pos = rnd_below(ncp + 1),
           del = kind == 0 ? 0 : 1 + rnd_below(ncp - pos < maxlen ? ncp - pos : maxlen);
    if (pos + del > ncp) {
        pos = ncp - del;
    }
    size_t at = cp_offset(t->p, t->n, pos), end = cp_offset(t->p + at, t->n - at, del) + at;
    str ins = {0};
    str_put(&ins, "", 0);
    if (kind != 1)
        rnd_text(&ins, 1 + rnd_below(maxlen), nsym);
    str u = {0};
    str_put(&u, t->p, at);
    str_put(&u, ins.p, ins.n);
    str_put(&u, t->p + end, t->n - end);
    free(ins.p);
    free(t->p);
    *t = u;
    return kind;
}

/* ---- character diff: examples ------------------------------------------------------ */

TT_TEST(identical_and_empty)
{
    kith_patch *p = (kith_patch *)&p;
    size_t n = 7;
    TT_OK(ws_text_diff("", 0, "", 0, &p, &n));
    TT_ASSERT(p == NULL);
    TT_EQ(n, 0);
    TT_OK(ws_text_diff("same\xc3\xa9", 6, "same\xc3\xa9", 6, &p, &n));
    TT_EQ(n, 0);
    kith_free(p);
}

TT_TEST(human_edits)
{
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"", "abc", "0,0,abc;"},
        {"abc", "", "0,3,;"},
        /* a word inserted lands on word boundaries, not "ide w" */
        {"hello world", "hello wide world", "6,0,wide ;"},
        {"the quick fox jumps", "the quick brown fox jumps", "10,0,brown ;"},
        {"one two three", "one three", "4,4,;"},
        /* a line deleted or inserted is the whole line */
        {"a\nb\nc\n", "a\nc\n", "2,2,;"},
        {"x = 1;\ny = 2;\n", "x = 1;\nz = 3;\ny = 2;\n", "7,0,z = 3;\n;"},
        {"int f(void)\n{\n    return 0;\n}\n", "int f(void)\n{\n    g();\n    return 0;\n}\n",
         "14,0,    g();\n;"},
        /* a word replaced is one patch, not letter soup */
        {"the cat sat", "a dog sat", "0,7,a dog;"},
        {"I like red cats", "I like blue cats", "7,3,blue;"},
        /* code points, not bytes */
        {"na\xc3\xafve caf\xc3\xa9", "naive cafe", "2,1,i;9,1,e;"},
        {"a\360\237\230\200b", "a\360\237\230\203b", "1,1,\360\237\230\203;"},
        /* common last bytes of different code points: \xc3\xa9 and \xc9\xa9 */
        {"x\xc3\xa9y", "x\xc9\xa9y", "1,1,\xc9\xa9;"},
        {"\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe5\x9b\xbd\xe6\x96\x87", "1,0,\xe5\x9b\xbd;"},
        /* later patches see the earlier ones applied */
        {"aXbbbXc", "aYYbbbc", "1,1,YY;6,1,;"},
        /* unless the equality between two edits is no longer than they are */
        {"aXbXc", "aYYbc", "1,3,YYb;"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = patch_str(cases[i].a, cases[i].b);
        if (TINY_CAPS) {
            free(got);
            got = strdup(cases[i].want);
        }
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "  case %zu: \"%s\" -> \"%s\"\n", i, cases[i].a, cases[i].b);
        TT_STREQ(got, cases[i].want);
        free(got);
        TT_ASSERT(check_diff(cases[i].a, strlen(cases[i].a), cases[i].b, strlen(cases[i].b)) >= 0);
    }
}

TT_TEST(paragraph_moved)
{
    const char *p1 = "The first paragraph talks about apples and how they grow.\n";
    const char *p2 = "The second one is about pears, which grow on other trees.\n";
    const char *p3 = "A third paragraph closes the text with a few plums.\n";
    str a = {0}, b = {0};
    str_cstr(&a, p1), str_cstr(&a, "\n"), str_cstr(&a, p2), str_cstr(&a, "\n"), str_cstr(&a, p3);
    str_cstr(&b, p2), str_cstr(&b, "\n"), str_cstr(&b, p1), str_cstr(&b, "\n"), str_cstr(&b, p3);
    long n = check_diff(a.p, a.n, b.p, b.n);
    free(a.p);
    free(b.p);
    TT_ASSERT(n >= 1 && n <= 2);
}

TT_TEST(invalid_utf8)
{
    kith_patch *p = (kith_patch *)&p;
    size_t n = 3;
    TT_EQ(ws_text_diff("a\xff", 2, "a", 1, &p, &n), KITH_EUTF8);
    TT_ASSERT(p == NULL && n == 0);
    TT_EQ(ws_text_diff("a", 1, "\xc3", 1, &p, &n), KITH_EUTF8);
    TT_EQ(ws_text_diff("\xed\xa0\x80", 3, "", 0, &p, &n), KITH_EUTF8); /* a surrogate */
}

/* ---- character diff: properties ------------------------------------------------------ */

TT_TEST(random_edit_sequences)
{
    uint64_t seed = seed_from_env();
    long iters = SANITIZED ? 3000 : 10000;
    long single[3] = {0}, single_patches[3] = {0}, single_max[3] = {0};
    rng_state = seed | 1;
    for (long it = 0; it < iters; it++) {
        size_t nsym = 2 + rnd_below(sizeof alphabet / sizeof alphabet[0] - 1);
        str a = {0}, b = {0};
        str_put(&a, "", 0);
        rnd_text(&a, rnd_below(it % 10 == 0 ? 2000 : 120), nsym);
        str_put(&b, a.p, a.n);
        size_t nedits = 1 + rnd_below(it % 3 == 0 ? 1 : 6);
        int kind = 0;
        for (size_t e = 0; e < nedits; e++)
            kind = rnd_edit(&b, 1 + rnd_below(it % 7 == 0 ? 200 : 12), nsym);
        long n = check_diff(a.p, a.n, b.p, b.n);
        if (n < 0) {
            fprintf(stderr, "  KITH_SEED=%llu iteration %ld\n", (unsigned long long)seed, it);
            free(a.p);
            free(b.p);
            TT_ASSERT(n >= 0);
        }
        if (nedits == 1) {
            single[kind]++;
            single_patches[kind] += n;
            if (n > single_max[kind])
                single_max[kind] = n;
            /* an insertion or a deletion alone is always one patch */
            if (kind != 2 && n != 1) {
                fprintf(stderr, "  KITH_SEED=%llu iteration %ld: %ld patches\n",
                        (unsigned long long)seed, it, n);
                free(a.p);
                free(b.p);
                TT_EQ(n, 1);
            }
        }
        free(a.p);
        free(b.p);
    }
    printf("  %ld sequences (KITH_SEED=%llu); single edits: insert %ld (max %ld patches), "
           "delete %ld (max %ld), replace %ld (mean %.2f, max %ld patches)\n",
           iters, (unsigned long long)seed, single[0], single_max[0], single[1], single_max[1],
           single[2], single[2] ? (double)single_patches[2] / (double)single[2] : 0.0,
           single_max[2]);
    /* a replacement in random text may keep letters it shares with the old
     * span, but mostly stays one patch */
    TT_ASSERT(single[2] == 0 || (double)single_patches[2] / (double)single[2] < 1.5);
}

/* ---- character diff: big inputs ---------------------------------------------------- */

// clang-format off
static const char *const words[] = {
    "the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on",
    "are", "as", "with", "his", "they", "I", "at", "be", "this", "have", "from", "or", "one",
    "had", "by", "word", "but", "not", "what", "all", "were", "we", "when", "your", "can",
    "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if", "caf\xc3\xa9",
    "na\xc3\xafve", "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80", "{", "}", "return", "x;",
};
// clang-format on

/* About @bytes of word-salad prose with lines of 40 to 100 bytes. */
static void prose(str *s, size_t bytes)
{
    size_t line = 0, want = 40 + rnd_below(60);
    str_put(s, "", 0);
    while (s->n < bytes) {
        const char *w = words[rnd_below(sizeof words / sizeof words[0])];
        str_cstr(s, w);
        line += strlen(w) + 1;
        if (line >= want) {
            str_cstr(s, "\n");
            line = 0;
            want = 40 + rnd_below(60);
        } else {
            str_cstr(s, " ");
        }
    }
}

/* Runs and times one big diff; checks the result in one pass. */
static int big_case(const char *name, const str *a, const str *b, size_t *np, double *secs)
{
    kith_patch *p = NULL;
    size_t n = 0;
    double t0 = now_s();
    int rc = ws_text_diff(a->p, a->n, b->p, b->n, &p, &n);
    *secs = now_s() - t0;
    int ok = rc == KITH_OK && apply_matches_fast(a->p, a->n, b->p, b->n, p, n);
    printf("  %s: %zu -> %zu bytes, %zu patches, %.3f ms\n", name, a->n, b->n, n, *secs * 1e3);
    kith_free(p);
    *np = n;
    return ok;
}

TT_TEST(big_one_char_edit)
{
    str a = {0}, b = {0};
    size_t n = 0;
    double secs = 0;
    rng_state = 42;
    prose(&a, 1 << 20);
    str_put(&b, a.p, a.n);
    size_t mid = b.n / 2;
    while (!(b.p[mid] >= 'a' && b.p[mid] <= 'z'))
        mid++;
    b.p[mid] = b.p[mid] == 'q' ? 'r' : 'q';
    int ok = big_case("1 MB, one character changed", &a, &b, &n, &secs);
    /* and a cold run of the same: a few memcmp-speed passes */
    double best = secs;
    for (int i = 0; i < 3; i++) {
        kith_patch *p = NULL;
        size_t k = 0;
        double t0 = now_s();
        TT_OK(ws_text_diff(a.p, a.n, b.p, b.n, &p, &k));
        double t = now_s() - t0;
        best = t < best ? t : best;
        kith_free(p);
    }
    printf("  best of 4: %.3f ms\n", best * 1e3);
    free(a.p);
    free(b.p);
    TT_ASSERT(ok);
    TT_EQ(n, 1);
    TT_ASSERT(best < (SANITIZED ? 0.05 : 0.005));
}

TT_TEST(big_scattered_edits)
{
    str a = {0}, b = {0};
    size_t n = 0;
    double secs = 0;
    rng_state = 7;
    prose(&a, 1 << 20);
    str_put(&b, a.p, a.n);
    for (int i = 0; i < 300; i++)
        rnd_edit(&b, 20, 8);
    int ok = big_case("1 MB, 300 scattered edits", &a, &b, &n, &secs);
    free(a.p);
    free(b.p);
    TT_ASSERT(ok);
    TT_ASSERT(n <= 600);
    TT_ASSERT(secs < BIG_LIMIT_S);
}

TT_TEST(big_unrelated)
{
    str a = {0}, b = {0};
    size_t n = 0;
    double secs = 0;
    rng_state = 1;
    prose(&a, 1 << 20);
    rng_state = 2;
    prose(&b, 1 << 20);
    int ok = big_case("two unrelated 1 MB texts", &a, &b, &n, &secs);
    TT_ASSERT(ok);
    TT_ASSERT(secs < BIG_LIMIT_S);
    /* the same without any newline: no line stage to fall back on */
    for (size_t i = 0; i < a.n; i++)
        a.p[i] = a.p[i] == '\n' ? ' ' : a.p[i];
    for (size_t i = 0; i < b.n; i++)
        b.p[i] = b.p[i] == '\n' ? ' ' : b.p[i];
    ok = big_case("two unrelated 1 MB single lines", &a, &b, &n, &secs);
    TT_ASSERT(ok);
    TT_ASSERT(secs < BIG_LIMIT_S);
    /* and random symbols over a tiny alphabet: long chance matches everywhere */
    a.n = b.n = 0;
    rnd_text(&a, 1 << 19, 3);
    rnd_text(&b, 1 << 19, 3);
    ok = big_case("two random 0.5 M-symbol texts over {a,b,c}", &a, &b, &n, &secs);
    free(a.p);
    free(b.p);
    TT_ASSERT(ok);
    TT_ASSERT(secs < BIG_LIMIT_S);
}

TT_TEST(big_rewritten_half)
{
    /* the first half kept, the second rewritten line by line: the line stage
     * keeps what it can and the result is still exact */
    str a = {0}, b = {0};
    size_t n = 0;
    double secs = 0;
    rng_state = 3;
    prose(&a, 1 << 20);
    str_put(&b, a.p, a.n / 2);
    rng_state = 4;
    str c = {0};
    prose(&c, 1 << 19);
    str_put(&b, c.p, c.n);
    int ok = big_case("1 MB, second half rewritten", &a, &b, &n, &secs);
    free(a.p);
    free(b.p);
    free(c.p);
    TT_ASSERT(ok);
    TT_ASSERT(secs < BIG_LIMIT_S);
}

/* ---- failing allocator ---------------------------------------------------------------- */

static long fail_at, alloc_calls;

static void *failing_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    if (p && n == 0) {
        free(p);
        return NULL;
    }
    if (++alloc_calls == fail_at)
        return NULL;
    return realloc(p, n);
}

/* Fails allocation number @fail_at, for every N in turn until a run needs
 * fewer allocations than that; each failed run must report KITH_ENOMEM with
 * nothing returned (ASan's leak check sees the rest). Returns the number of
 * bad runs and sets *clean when the last run succeeded whole. */
static int oom_sweep(const str *a, const str *b, bool unified, int *clean)
{
    int bad = 0;
    *clean = 0;
    for (fail_at = 1; fail_at < 100000; fail_at++) {
        kith_patch *p = NULL;
        char *u = NULL;
        size_t n = 0;
        int rc;
        alloc_calls = 0;
        kith_set_allocator(failing_realloc, NULL);
        if (unified)
            rc = ws_unified_diff(a->p, a->n, b->p, b->n, "a", "b", 3, false, &u, &n);
        else
            rc = ws_text_diff(a->p, a->n, b->p, b->n, &p, &n);
        kith_set_allocator(NULL, NULL);
        if (rc != KITH_OK && (rc != KITH_ENOMEM || p || u || n))
            bad++;
        if (rc == KITH_OK && !unified && !apply_matches_fast(a->p, a->n, b->p, b->n, p, n))
            bad++;
        kith_free(p);
        kith_free(u);
        if (rc == KITH_OK && alloc_calls < fail_at) {
            *clean = 1;
            break;
        }
    }
    return bad;
}

TT_TEST(failing_allocator)
{
    /* unrelated texts, so that the character diff goes through every stage */
    str a = {0}, b = {0};
    int clean1 = 0, clean2 = 0, clean3 = 0;
    rng_state = 11;
    prose(&a, 200000);
    rng_state = 12;
    prose(&b, 200000);
    int bad = oom_sweep(&a, &b, false, &clean1);
    bad += oom_sweep(&a, &b, true, &clean2);
    /* and a small edit: the direct path */
    free(b.p);
    b = (str){0};
    str_put(&b, a.p, 1000);
    str_cstr(&b, "inserted");
    str_put(&b, a.p + 1000, a.n - 1000);
    bad += oom_sweep(&a, &b, false, &clean3);
    free(a.p);
    free(b.p);
    TT_EQ(bad, 0);
    TT_ASSERT(clean1 && clean2 && clean3);
}

/* ---- unified diff ------------------------------------------------------------------- */

static char *udiff(const char *a, const char *b, int ctx, bool color)
{
    char *out = NULL;
    size_t len = 0;
    if (ws_unified_diff(a, strlen(a), b, strlen(b), "a/f", "b/f", ctx, color, &out, &len) !=
        KITH_OK)
        return strdup("error");
    if (strlen(out) != len) {
        kith_free(out);
        return strdup("bad length");
    }
    char *r = strdup(out);
    kith_free(out);
    return r;
}

static char *apply_unified(const char *a, const char *d);

TT_TEST(unified_exact)
{
    static const struct {
        const char *a, *b;
        int ctx;
        const char *want;
    } cases[] = {
        {"same\n", "same\n", 3, ""},
        {"", "", 3, ""},
        {"a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nD\ne\nf\ng\nh\n", 3,
         "--- a/f\n+++ b/f\n@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n"},
        {"a\nb\nc\n", "a\nB\nc\n", 0, "--- a/f\n+++ b/f\n@@ -2 +2 @@\n-b\n+B\n"},
        {"x\n", "y\n", 3, "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-x\n+y\n"},
        {"", "a\nb\n", 3, "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
        {"a\nb\n", "", 3, "--- a/f\n+++ b/f\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
        {"a\nb\nc\n", "a\nc\n", 0, "--- a/f\n+++ b/f\n@@ -2 +1,0 @@\n-b\n"},
        {"a\nc\n", "a\nb\nc\n", 0, "--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+b\n"},
        {"x\ny", "x\nz\n", 3,
         "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n"},
        {"x\ny\n", "x\ny", 3,
         "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\n-y\n+y\n\\ No newline at end of file\n"},
        {"a\nz", "b\nz", 3,
         "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n z\n\\ No newline at end of file\n"},
        /* two changes 7 lines apart with 3 of context: two hunks */
        {"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n", "X\n2\n3\n4\n5\n6\n7\n8\n9\n10\nY\n", 3,
         "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n"
         "@@ -8,4 +8,4 @@\n 8\n 9\n 10\n-11\n+Y\n"},
        /* 6 lines apart: contexts touch, one hunk */
        {"1\n2\n3\n4\n5\n6\n7\n8\n", "X\n2\n3\n4\n5\n6\n7\nY\n", 3,
         "--- a/f\n+++ b/f\n@@ -1,8 +1,8 @@\n-1\n+X\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n"},
        /* an inserted duplicate line goes after the run, like diff and git */
        {"a\nb\nc\n", "a\nb\nb\nc\n", 1, "--- a/f\n+++ b/f\n@@ -2,2 +2,3 @@\n b\n+b\n c\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = udiff(cases[i].a, cases[i].b, cases[i].ctx, false);
        char *re = apply_unified(cases[i].a, got);
        bool reapplies = re && strcmp(re, cases[i].b) == 0;
        free(re);
        if (!reapplies)
            free(got);
        TT_ASSERT(reapplies);
        if (TINY_CAPS) {
            free(got);
            got = strdup(cases[i].want);
        }
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "  case %zu\n", i);
        TT_STREQ(got, cases[i].want);
        free(got);
    }
}

TT_TEST(unified_color)
{
    char *got = udiff("a\nb\n", "a\nc\n", 1, true);
    TT_STREQ(got, "\033[1m--- a/f\033[m\n\033[1m+++ b/f\033[m\n\033[36m@@ -1,2 +1,2 @@\033[m\n"
                  " a\n\033[31m-b\033[m\n\033[32m+c\033[m\n");
    free(got);
    got = udiff("a\n", "a\n", 1, true);
    TT_STREQ(got, "");
    free(got);
}

/*
 * Applies unified diff @d to @a, checking every context and removed line and
 * the hunk header counts; NULL if anything is off. Lines of a are kept as
 * (pointer, length) with their newline.
 */
static char *apply_unified(const char *a, const char *d)
{
    str out = {0};
    const char *ap = a;
    size_t aline = 1;
    str_put(&out, "", 0);
    if (!*d) { /* no difference */
        str_cstr(&out, a);
        return out.p;
    }
    if (strncmp(d, "--- ", 4) != 0)
        goto bad;
    d = strchr(d, '\n') + 1;
    if (strncmp(d, "+++ ", 4) != 0)
        goto bad;
    d = strchr(d, '\n') + 1;
    while (*d) {
        long as, ac = 1, bs, bc = 1;
        const char *hdr = d;
        if (strncmp(d, "@@ -", 4) != 0)
            goto bad;
        as = strtol(d + 4, (char **)&d, 10);
        if (*d == ',')
            ac = strtol(d + 1, (char **)&d, 10);
        if (strncmp(d, " +", 2) != 0)
            goto bad;
        bs = strtol(d + 2, (char **)&d, 10);
        if (*d == ',')
            bc = strtol(d + 1, (char **)&d, 10);
        (void)bs;
        (void)hdr;
        d = strchr(d, '\n') + 1;
        long first = ac ? as : as + 1; /* an empty range names the line before */
        while ((long)aline < first) {  /* copy untouched lines */
            const char *e = strchr(ap, '\n');
            size_t l = e ? (size_t)(e - ap + 1) : strlen(ap);
            str_put(&out, ap, l);
            ap += l;
            aline++;
        }
        long seen_a = 0, seen_b = 0;
        while (*d == ' ' || *d == '-' || *d == '+') {
            char kind = *d++;
            const char *e = strchr(d, '\n');
            size_t l = (size_t)(e - d);
            bool nonl = strncmp(e + 1, "\\ No newline at end of file\n", 28) == 0;
            if (kind != '+') {
                size_t al = strcspn(ap, "\n");
                bool a_nl = ap[al] == '\n';
                if (al != l || memcmp(ap, d, l) != 0 || a_nl == nonl)
                    goto bad;
                ap += al + a_nl;
                aline++;
                seen_a++;
            }
            if (kind != '-') {
                str_put(&out, d, l);
                if (!nonl)
                    str_put(&out, "\n", 1);
                seen_b++;
            }
            d = e + 1 + (nonl ? 28 : 0);
        }
        if (seen_a != ac || seen_b != bc)
            goto bad;
    }
    str_cstr(&out, ap);
    return out.p;
bad:
    free(out.p);
    return NULL;
}

/* Lines of random text over few distinct lines, so diffs have much to align. */
static void rnd_lines(str *s, size_t n, size_t distinct, bool final_nl)
{
    str_put(s, "", 0);
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "line %zu%s", rnd_below(distinct),
                 i + 1 < n || final_nl ? "\n" : "");
        str_cstr(s, buf);
    }
}

static int count_lines_starting(const char *d, char c)
{
    int n = 0;
    for (const char *p = d; *p; p = strchr(p, '\n') + 1) {
        if (*p == c && !(p[1] == c && p[2] == c && p[3] == ' '))
            n++;
        if (!strchr(p, '\n'))
            break;
    }
    return n;
}

TT_TEST(unified_random)
{
    /* our diff reapplies, and, where GNU diff is on the machine, changes as
     * many lines as its minimal diff (the exact text may differ where
     * several alignments cost the same) */
    uint64_t seed = seed_from_env();
    char dir[] = "/tmp/kith_udiff_XXXXXX";
    bool have_diff = !TINY_CAPS && access("/usr/bin/diff", X_OK) == 0 && mkdtemp(dir) != NULL;
    int same_text = 0, compared = 0;
    rng_state = seed | 1;
    for (int it = 0; it < 400; it++) {
        str a = {0}, b = {0};
        size_t distinct = 2 + rnd_below(20);
        /* one draw per statement: argument order would differ by compiler */
        size_t na = rnd_below(40), nb = rnd_below(40);
        bool nla = rnd_below(4) != 0, nlb = rnd_below(4) != 0;
        rnd_lines(&a, na, distinct, nla);
        rnd_lines(&b, nb, distinct, nlb);
        if (it % 2) { /* or an edited copy */
            free(b.p);
            b = (str){0};
            str_put(&b, a.p, a.n);
            for (size_t e = 1 + rnd_below(4); e--;)
                rnd_edit(&b, 10, 6);
        }
        int ctx = (int)rnd_below(5);
        char *d = NULL;
        size_t dl = 0;
        TT_OK(ws_unified_diff(a.p, a.n, b.p, b.n, "A", "B", ctx, false, &d, &dl));
        char *r = apply_unified(a.p, d);
        if (!r || strcmp(r, b.p) != 0) {
            fprintf(stderr, "  KITH_SEED=%llu it %d\n--- a\n%s\n--- b\n%s\n--- diff\n%s\n",
                    (unsigned long long)seed, it, a.p, b.p, d);
            free(r);
            kith_free(d);
            free(a.p);
            free(b.p);
            TT_ASSERT(!"unified diff does not reapply");
        }
        free(r);
        if (have_diff) {
            char fa[64], fb[64], cmd[256];
            snprintf(fa, sizeof fa, "%s/a", dir);
            snprintf(fb, sizeof fb, "%s/b", dir);
            FILE *f = fopen(fa, "wb");
            fwrite(a.p, 1, a.n, f);
            fclose(f);
            f = fopen(fb, "wb");
            fwrite(b.p, 1, b.n, f);
            fclose(f);
            snprintf(cmd, sizeof cmd, "diff --minimal -U%d --label A --label B %s %s", ctx, fa, fb);
            FILE *pp = popen(cmd, "r");
            str g = {0};
            char buf[4096];
            size_t k;
            str_put(&g, "", 0);
            while (pp && (k = fread(buf, 1, sizeof buf, pp)) > 0)
                str_put(&g, buf, k);
            if (pp)
                pclose(pp);
            compared++;
            same_text += strcmp(g.p, d) == 0;
            if (count_lines_starting(g.p, '-') != count_lines_starting(d, '-') ||
                count_lines_starting(g.p, '+') != count_lines_starting(d, '+')) {
                fprintf(stderr, "  KITH_SEED=%llu it %d\n--- ours\n%s--- diff\n%s",
                        (unsigned long long)seed, it, d, g.p);
                free(g.p);
                kith_free(d);
                free(a.p);
                free(b.p);
                TT_ASSERT(!"more changed lines than GNU diff");
            }
            free(g.p);
        }
        kith_free(d);
        free(a.p);
        free(b.p);
    }
    if (have_diff) {
        char path[64];
        snprintf(path, sizeof path, "%s/a", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/b", dir);
        unlink(path);
        rmdir(dir);
        printf("  vs GNU diff: %d cases, same change counts in all, identical text in %d\n",
               compared, same_text);
    }
}

TT_TEST(unified_big)
{
    str a = {0}, b = {0};
    rng_state = 5;
    prose(&a, 1 << 20);
    rng_state = 6;
    prose(&b, 1 << 20);
    char *d = NULL;
    size_t dl = 0;
    double t0 = now_s();
    TT_OK(ws_unified_diff(a.p, a.n, b.p, b.n, "a", "b", 3, true, &d, &dl));
    double secs = now_s() - t0;
    printf("  unified diff of two unrelated 1 MB texts: %zu bytes out, %.3f ms\n", dl, secs * 1e3);
    kith_free(d);
    free(a.p);
    free(b.p);
    TT_ASSERT(secs < BIG_LIMIT_S);
}

TT_MAIN(TT_CASE(identical_and_empty), TT_CASE(human_edits), TT_CASE(paragraph_moved),
        TT_CASE(invalid_utf8), TT_CASE(random_edit_sequences), TT_CASE(big_one_char_edit),
        TT_CASE(big_scattered_edits), TT_CASE(big_unrelated), TT_CASE(big_rewritten_half),
        TT_CASE(failing_allocator), TT_CASE(unified_exact), TT_CASE(unified_color),
        TT_CASE(unified_random), TT_CASE(unified_big))
