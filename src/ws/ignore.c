/*
 * Which workspace paths are not documents (see ignore.h): .kithignore files
 * in gitignore syntax (https://git-scm.com/docs/gitignore) over built-in
 * defaults. A rule keeps the folder of its file and its pattern split at '/';
 * segments match path segments by fnmatch(3) (a literal or "*.ext" segment by
 * a plain compare, since most rules are those), and "**" segments, which
 * match any number of folders, by a small dynamic program. The last rule
 * that matches decides, so deeper files, added later, override shallower.
 */
#include <fnmatch.h>
#include <stdint.h>
#include <string.h>

#include "kith/err.h"
#include "util/util_int.h"
#include "ws/ignore.h"

enum rule_flags {
    RULE_NEGATE = 1 << 0,   /* "!pattern": re-includes */
    RULE_DIR = 1 << 1,      /* "pattern/": folders only */
    RULE_ANCHORED = 1 << 2, /* a '/' before the end: relative to the base folder */
};

enum seg_kind {
    SEG_GLOB,    /* fnmatch */
    SEG_LITERAL, /* no wildcard or escape: strcmp */
    SEG_SUFFIX,  /* '*' then a literal: compare the tail */
    SEG_ANY,     /* "**": zero or more folders */
};

typedef struct seg {
    const char *s;
    size_t len;
    enum seg_kind kind;
} seg;

typedef struct rule {
    void *mem;        /* owns the segments and strings below */
    const char *base; /* folder of the .kithignore, normalized; "" for the root */
    size_t base_len, nbase;
    seg *seg;
    size_t nseg;
    unsigned flags;
} rule;

struct ws_ignore {
    rule *v;
    size_t n, cap;
};

/*
 * The defaults, as a .kithignore at the root read before any real one, so a
 * user's "!" can take any of them back (.kith/ excepted: ws_ignore_match
 * checks it first). "4913" is the file vim creates to test whether a folder
 * is writable; "#*#" needs its escape or it would be a comment.
 */
static const char default_rules[] = ".git\n" /* a folder, or the file of a worktree */
                                    ".kith/\n"
                                    ".hg/\n"
                                    ".svn/\n"
                                    "*.swp\n"
                                    "*.swo\n"
                                    "*.swx\n"
                                    ".*.sw?\n"
                                    "4913\n"
                                    "*~\n"
                                    "\\#*#\n"
                                    ".#*\n"
                                    ".DS_Store\n"
                                    "Thumbs.db\n"
                                    ".~lock.*#\n"
                                    "*.tmp\n"
                                    ".*.kith-tmp*\n";

/* ---- parsing -------------------------------------------------------------------- */

static bool has_special(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\')
            return true;
    return false;
}

static enum seg_kind seg_classify(const char *s, size_t len)
{
    if (len == 2 && s[0] == '*' && s[1] == '*')
        return SEG_ANY;
    if (!has_special(s, len))
        return SEG_LITERAL;
    if (s[0] == '*' && !has_special(s + 1, len - 1))
        return SEG_SUFFIX;
    return SEG_GLOB;
}

/* Length of @line without trailing spaces, keeping an escaped one ("\ "). */
static size_t trim_trailing_spaces(const char *line, size_t len)
{
    size_t end = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\' && i + 1 < len)
            end = ++i + 1;
        else if (line[i] != ' ')
            end = i + 1;
    }
    return end;
}

/* True when @s ends in a backslash that escapes nothing: git drops such
 * patterns, and fnmatch's reading of them is unspecified. */
static bool dangling_escape(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\\' && ++i == len)
            return true;
    return false;
}

/* Joins the non-empty '/'-separated segments of @s[0, len) into @dst with
 * single slashes; returns the length written and sets *nseg. @dst needs
 * @len + 1 bytes and ends NUL-terminated. */
static size_t normalize(char *dst, const char *s, size_t len, size_t *nseg)
{
    size_t n = 0;
    *nseg = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        if (j > i) {
            if (n)
                dst[n++] = '/';
            memcpy(dst + n, s + i, j - i);
            n += j - i;
            ++*nseg;
        }
        i = j + 1;
    }
    dst[n] = 0;
    return n;
}

/* Stores one parsed pattern (its segments copied, NUL-terminated) as a rule. */
static int push_rule(ws_ignore *ig, const char *base, size_t base_len, const char *pat, size_t len,
                     unsigned flags)
{
    size_t nseg = 1;
    for (size_t i = 0; i < len; i++)
        nseg += pat[i] == '/';
    if (kith_grow((void **)&ig->v, &ig->cap, ig->n + 1, sizeof *ig->v))
        return KITH_ENOMEM;
    char *mem = kith_malloc(nseg * sizeof(seg) + base_len + 1 + len + 1);
    if (!mem)
        return KITH_ENOMEM;
    rule *r = &ig->v[ig->n];
    r->mem = mem;
    r->seg = (seg *)(void *)mem;
    r->nseg = nseg;
    r->flags = flags;
    char *b = mem + nseg * sizeof(seg);
    r->base = b;
    r->base_len = normalize(b, base, base_len, &r->nbase);
    char *p = b + r->base_len + 1;
    memcpy(p, pat, len);
    p[len] = 0;
    for (size_t i = 0, k = 0; k < nseg; k++) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        p[j] = 0; /* at len this overwrites the terminator with itself */
        r->seg[k] = (seg){p + i, j - i, seg_classify(p + i, j - i)};
        i = j + 1;
    }
    ig->n++;
    return KITH_OK;
}

/* One line of a .kithignore, in the order git reads it. Lines that are
 * blank, comments or malformed add nothing. */
static int add_line(ws_ignore *ig, const char *base, size_t base_len, const char *line, size_t len)
{
    unsigned flags = 0;
    if (len && line[len - 1] == '\r') /* written on Windows */
        len--;
    if (!len || line[0] == '#' || memchr(line, 0, len))
        return KITH_OK;
    len = trim_trailing_spaces(line, len);
    if (len && line[0] == '!') {
        flags |= RULE_NEGATE;
        line++, len--;
    }
    if (len && line[len - 1] == '/') {
        flags |= RULE_DIR;
        len--;
    }
    if (len && line[0] == '/') {
        flags |= RULE_ANCHORED;
        line++, len--;
    }
    if (memchr(line, '/', len))
        flags |= RULE_ANCHORED;
    if (!len || dangling_escape(line, len))
        return KITH_OK;
    return push_rule(ig, base, base_len, line, len, flags);
}

static void rule_release(rule *r)
{
    kith_free(r->mem);
}

int ws_ignore_add(ws_ignore *ig, const char *base, const char *text, size_t len)
{
    if (!ig || (!text && len))
        return KITH_EINVAL;
    size_t before = ig->n, base_len = base ? strlen(base) : 0;
    int rc = KITH_OK;
    if (!base)
        base = "";
    for (size_t i = 0; rc == KITH_OK && i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        rc = add_line(ig, base, base_len, text + i, end - i);
        i = end + 1;
    }
    if (rc != KITH_OK) { /* all of the file or none of it */
        while (ig->n > before)
            rule_release(&ig->v[--ig->n]);
    }
    return rc;
}

int ws_ignore_new(ws_ignore **out)
{
    ws_ignore *ig = kith_calloc(1, sizeof *ig);
    *out = NULL;
    if (!ig)
        return KITH_ENOMEM;
    int rc = ws_ignore_add(ig, "", default_rules, sizeof default_rules - 1);
    if (rc != KITH_OK) {
        ws_ignore_free(ig);
        return rc;
    }
    *out = ig;
    return KITH_OK;
}

void ws_ignore_free(ws_ignore *ig)
{
    if (!ig)
        return;
    for (size_t i = 0; i < ig->n; i++)
        rule_release(&ig->v[i]);
    kith_free(ig->v);
    kith_free(ig);
}

/* ---- matching ------------------------------------------------------------------- */

/* A path split into NUL-terminated segments; norm is the same path with
 * single slashes, to compare rule bases against. */
typedef struct pathsegs {
    const char *norm;
    size_t norm_len;
    const char **seg;
    size_t n;
} pathsegs;

static bool seg_match(const seg *p, const char *name)
{
    size_t n;
    switch (p->kind) {
    case SEG_LITERAL:
        return strcmp(p->s, name) == 0;
    case SEG_SUFFIX:
        n = strlen(name);
        return n >= p->len - 1 && memcmp(name + n - (p->len - 1), p->s + 1, p->len - 1) == 0;
    case SEG_ANY:
        return true;
    case SEG_GLOB:
        break;
    }
    /* Most globs start with a literal: a first-byte check spares fnmatch. */
    if (p->s[0] != '*' && p->s[0] != '?' && p->s[0] != '[' && p->s[0] != '\\' && p->s[0] != name[0])
        return false;
    return fnmatch(p->s, name, 0) == 0;
}

/*
 * Anchored pattern @r against path segments s[0, ns). m[si] says whether
 * pattern segments [pi, nseg) match path segments [si, ns); rows go from
 * the last pattern segment back. "**" matches zero or more segments, but at
 * the end of a pattern at least one (a trailing "**" is what is inside the folder).
 * @work holds 2 * (ns + 1) bools.
 */
static bool match_anchored(const rule *r, const char *const *s, size_t ns, bool *work)
{
    bool *next = work, *cur = work + ns + 1;
    for (size_t si = 0; si <= ns; si++)
        next[si] = si == ns;
    for (size_t pi = r->nseg; pi-- > 0;) {
        const seg *p = &r->seg[pi];
        if (p->kind == SEG_ANY && pi == r->nseg - 1) {
            for (size_t si = 0; si <= ns; si++)
                cur[si] = si < ns;
        } else if (p->kind == SEG_ANY) {
            cur[ns] = next[ns];
            for (size_t si = ns; si-- > 0;)
                cur[si] = next[si] || cur[si + 1];
        } else {
            cur[ns] = false;
            for (size_t si = ns; si-- > 0;)
                cur[si] = next[si + 1] && seg_match(p, s[si]);
        }
        bool *t = next;
        next = cur;
        cur = t;
    }
    return next[0];
}

/* Whether @r matches the first @depth segments of @ps, a folder if @is_dir. */
static bool rule_matches(const rule *r, const pathsegs *ps, size_t depth, bool is_dir, bool *work)
{
    if ((r->flags & RULE_DIR) && !is_dir)
        return false;
    if (depth <= r->nbase)
        return false;
    if (r->nbase && (ps->norm_len <= r->base_len || ps->norm[r->base_len] != '/' ||
                     memcmp(ps->norm, r->base, r->base_len) != 0))
        return false;
    if (!(r->flags & RULE_ANCHORED))
        return seg_match(&r->seg[0], ps->seg[depth - 1]);
    return match_anchored(r, ps->seg + r->nbase, depth - r->nbase, work);
}

/* The verdict of the last rule matching the first @depth segments. */
static bool decide(const ws_ignore *ig, const pathsegs *ps, size_t depth, bool is_dir, bool *work)
{
    for (size_t i = ig->n; i-- > 0;) {
        const rule *r = &ig->v[i];
        if (rule_matches(r, ps, depth, is_dir, work))
            return !(r->flags & RULE_NEGATE);
    }
    return false;
}

static bool match_split(const ws_ignore *ig, const pathsegs *ps, bool is_dir, bool *work)
{
    /* .kith holds the workspace's own state: ignored whatever the rules say */
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->seg[i], ".kith") == 0)
            return true;
    /* A path inside an ignored folder is ignored (git never looks inside);
     * callers walking down stop there anyway, but a watcher may not. */
    for (size_t d = 1; d < ps->n; d++)
        if (decide(ig, ps, d, true, work))
            return true;
    return ps->n && decide(ig, ps, ps->n, is_dir, work);
}

/* Stack room for typical paths; longer ones go to the heap. */
enum { PATH_STACK = 1024, SEGS_STACK = PATH_STACK / 2 + 1 };

bool ws_ignore_match(const ws_ignore *ig, const char *path, bool is_dir)
{
    char norm_stack[PATH_STACK], copy_stack[PATH_STACK];
    const char *seg_stack[SEGS_STACK];
    bool work_stack[2 * (SEGS_STACK + 1)];
    size_t len = path ? strlen(path) : 0, nseg = 0;
    char *heap = NULL;
    char *norm = norm_stack, *copy = copy_stack;
    const char **segs = seg_stack;
    bool *work = work_stack;

    if (!ig || !len)
        return false;
    if (len >= PATH_STACK) {
        /* a normalized path of len bytes has at most len / 2 + 1 segments */
        size_t maxseg = len / 2 + 1;
        heap = kith_malloc(2 * (len + 1) + maxseg * sizeof *segs + 2 * (maxseg + 1));
        if (!heap)
            return false;
        segs = (const char **)(void *)heap;
        norm = heap + maxseg * sizeof *segs;
        copy = norm + len + 1;
        work = (bool *)(copy + len + 1);
    }
    pathsegs ps = {norm, normalize(norm, path, len, &nseg), segs, 0};
    memcpy(copy, norm, ps.norm_len + 1);
    for (char *p = copy; ps.n < nseg; p++) {
        segs[ps.n++] = p;
        while (*p && *p != '/')
            p++;
        *p = 0;
    }
    bool res = match_split(ig, &ps, is_dir, work);
    kith_free(heap);
    return res;
}
