/*
 * Fuzz target: the workspace text diffs and .kithignore rules. The first
 * byte sets the options, the rest splits at its first 0xff byte (never part
 * of UTF-8) into an old and a new text; without one, the new text is the old
 * one with its halves swapped. Invalid UTF-8 is tried as is (an error, never
 * a crash) and then with each bad byte made '?'. The patches of ws_text_diff,
 * applied in order, must give the new text exactly; the unified diff must be
 * well-formed; the old text read as a .kithignore and the new one's lines as
 * paths must not crash. Any violation aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"
#include "ws/ignore.h"
#include "ws/textdiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Length of the well-formed UTF-8 sequence at @p (@n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0], need;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        need = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        need = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        need = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n <= need)
        return 0;
    for (unsigned k = 1; k <= need; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

/* Replaces each byte that starts no well-formed sequence with '?'; returns
 * whether anything changed. */
static bool sanitize(char *s, size_t n)
{
    bool changed = false;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (!k) {
            s[i] = '?';
            changed = true;
            k = 1;
        }
        i += k;
    }
    return changed;
}

/* Byte offset of code point @cp in valid UTF-8 @s, or SIZE_MAX past the end. */
static size_t cp_at(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (cp--) {
        if (i >= n)
            return SIZE_MAX;
        i++;
        while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
    }
    return i;
}

/* Applies the patches one after the other, as the contract says, and
 * aborts unless that gives @b. */
static void check_patches(const char *a, size_t alen, const char *b, size_t blen,
                          const kith_patch *p, size_t n)
{
    size_t cap = alen + blen + 1, len = alen;
    char *t = malloc(cap);
    MUST(t);
    memcpy(t, a, alen);
    for (size_t i = 0; i < n; i++) {
        MUST(p[i].del || p[i].ins_len);
        MUST(p[i].ins_len == 0 || (p[i].ins >= b && p[i].ins + p[i].ins_len <= b + blen));
        size_t at = cp_at(t, len, p[i].pos);
        MUST(at != SIZE_MAX);
        size_t dl = cp_at(t + at, len - at, p[i].del);
        MUST(dl != SIZE_MAX);
        MUST(len - dl + p[i].ins_len <= cap);
        memmove(t + at + p[i].ins_len, t + at + dl, len - at - dl);
        memcpy(t + at, p[i].ins, p[i].ins_len);
        len = len - dl + p[i].ins_len;
    }
    MUST(len == blen && memcmp(t, b, blen) == 0);
    free(t);
}

static void check_text_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    kith_patch *p = NULL;
    size_t n = 0;
    int rc = ws_text_diff(a, alen, b, blen, &p, &n);
    MUST(rc == KITH_OK);
    MUST(n == 0 || p != NULL);
    if (alen == blen && memcmp(a, b, alen) == 0)
        MUST(n == 0);
    else
        MUST(n > 0);
    check_patches(a, alen, b, blen, p, n);
    kith_free(p);
}

static void check_unified(const char *a, size_t alen, const char *b, size_t blen, int ctx,
                          bool color)
{
    char *out = NULL;
    size_t len = 0;
    MUST(ws_unified_diff(a, alen, b, blen, "a/x", "b/x", ctx, color, &out, &len) == KITH_OK);
    MUST(out && out[len] == 0);
    bool same = alen == blen && memcmp(a, b, alen) == 0;
    MUST(same == (len == 0));
    if (!same) {
        const char *head = color ? "\033[1m--- a/x" : "--- a/x";
        MUST(len > strlen(head) && memcmp(out, head, strlen(head)) == 0);
        MUST(out[len - 1] == '\n');
    }
    kith_free(out);
}

/* The old text as a .kithignore (in the root or a subfolder), each line of
 * the new one as a path. Only the absence of crashes is checked, plus the
 * one rule nothing can change: .kith is ignored. */
static void check_ignore(const char *rules, size_t rlen, const char *paths, size_t plen,
                         unsigned flags)
{
    ws_ignore *ig = NULL;
    MUST(ws_ignore_new(&ig) == KITH_OK);
    MUST(ws_ignore_add(ig, flags & 1 ? "sub/dir" : "", rules, rlen) == KITH_OK);
    char *line = malloc(plen + 1);
    MUST(line);
    for (size_t i = 0, k = 0; i < plen; i = k + 1) {
        const char *nl = memchr(paths + i, '\n', plen - i);
        k = nl ? (size_t)(nl - paths) : plen;
        memcpy(line, paths + i, k - i);
        line[k - i] = 0;
        (void)ws_ignore_match(ig, line, (k & 1) != 0);
    }
    MUST(ws_ignore_match(ig, ".kith", true));
    MUST(ws_ignore_match(ig, "sub/dir/.kith/x", false));
    free(line);
    ws_ignore_free(ig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *sep = memchr(rest, 0xff, n);
    size_t alen = sep ? (size_t)(sep - rest) : n;
    char *a = malloc(alen + 1), *b = malloc(n + 1);
    size_t blen;
    MUST(a && b);
    memcpy(a, rest, alen);
    if (sep) {
        blen = n - alen - 1;
        memcpy(b, sep + 1, blen);
    } else { /* halves swapped: a move */
        blen = alen;
        memcpy(b, rest + alen / 2, alen - alen / 2);
        memcpy(b + alen - alen / 2, rest, alen / 2);
    }

    /* invalid UTF-8: an error or a diff of the valid middles, never a crash */
    kith_patch *p = NULL;
    size_t np = 0;
    int rc = ws_text_diff(a, alen, b, blen, &p, &np);
    MUST(rc == KITH_OK || (rc == KITH_EUTF8 && p == NULL && np == 0));
    kith_free(p);

    check_ignore(a, alen, b, blen, flags);
    check_unified(a, alen, b, blen, (int)(flags >> 1) & 7, flags & 16);
    sanitize(a, alen);
    sanitize(b, blen);
    check_text_diff(a, alen, b, blen);
    check_text_diff(b, blen, a, alen);
    free(a);
    free(b);
    return 0;
}
