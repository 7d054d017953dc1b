/*
 * Unit tests of .kithignore matching (src/ws/ignore.h): one table of
 * (.kithignore files, path, is_dir, expected) covering every piece of
 * gitignore syntax, the built-in defaults and re-including them, nested
 * files and their precedence, paths inside ignored folders, and .kith/ that
 * nothing re-includes; then long paths and a failing allocator.
 */
#include <stdbool.h>

#include "kith/kith.h"
#include "tt.h"
#include "ws/ignore.h"

/* A .kithignore: the folder it is in and its text. */
typedef struct kfile {
    const char *base, *text;
} kfile;

typedef struct icase {
    kfile files[3]; /* added in order; text NULL ends the list */
    const char *path;
    bool is_dir, want;
} icase;

// clang-format off
#define F1(b, t)         {{b, t}}
#define F2(b, t, c, u)   {{b, t}, {c, u}}
#define NONE             {{NULL, NULL}}
#define ROOT(t)          F1("", t)
// clang-format on

static const icase table[] = {
    /* ---- defaults ---- */
    {NONE, "README.md", false, false},
    {NONE, "src/main.c", false, false},
    {NONE, ".git", true, true},
    {NONE, "sub/.git", true, true},
    {NONE, ".git/config", false, true}, /* inside an ignored folder */
    {NONE, ".git", false, true},        /* the file of a git worktree too */
    {NONE, ".hg", true, true},
    {NONE, "a/.svn", true, true},
    {NONE, ".kith", true, true},
    {NONE, ".kith/store.db", false, true},
    {NONE, "deep/er/.kith", true, true},
    {NONE, "notes.swp", false, true},
    {NONE, "d/.notes.md.swp", false, true},
    {NONE, ".notes.md.swo", false, true},
    {NONE, ".notes.md.swx", false, true},
    {NONE, ".notes.md.swn", false, true}, /* .*.sw? */
    {NONE, "notes.swpx", false, false},
    {NONE, "4913", false, true},
    {NONE, "sub/4913", false, true},
    {NONE, "49130", false, false},
    {NONE, "notes.txt~", false, true},
    {NONE, "#notes.txt#", false, true},
    {NONE, "#notes.txt", false, false},
    {NONE, ".#notes.txt", false, true},
    {NONE, ".DS_Store", false, true},
    {NONE, "pics/Thumbs.db", false, true},
    {NONE, ".~lock.report.odt#", false, true},
    {NONE, "x.tmp", false, true},
    {NONE, "x.tmpl", false, false},
    {NONE, ".notes.md.kith-tmp", false, true},
    {NONE, "d/.notes.md.kith-tmp.1234", false, true},
    {NONE, "notes.md.kith-tmp", false, false},
    {NONE, "", true, false},

    /* ---- blank lines, comments, escapes, trailing spaces ---- */
    {ROOT("# a comment\n\n*.log\n"), "a.log", false, true},
    {ROOT("# a comment\n\n*.log\n"), "d/e/b.log", false, true},
    {ROOT("# a comment\n\n*.log\n"), "# a comment", false, false},
    {ROOT("\\#foo\n"), "#foo", false, true},
    {ROOT("\\!important\n"), "!important", false, true},
    {ROOT("\\!important\n"), "important", false, false},
    {ROOT("foo bar  \n"), "foo bar", false, true},
    {ROOT("foo bar  \n"), "foo bar  ", false, false},
    {ROOT("foo\\ \n"), "foo ", false, true},
    {ROOT("foo\\ \n"), "foo", false, false},
    {ROOT("*.log\r\n"), "a.log", false, true},     /* CRLF */
    {ROOT("foo\\\nbar\n"), "foo\\", false, false}, /* dangling escape: skipped */
    {ROOT("foo\\\nbar\n"), "bar", false, true},
    {ROOT("!\n/\n\n"), "x", false, false}, /* empty patterns: skipped */

    /* ---- negation, last match wins ---- */
    {ROOT("*.log\n!keep.log\n"), "x.log", false, true},
    {ROOT("*.log\n!keep.log\n"), "keep.log", false, false},
    {ROOT("*.log\n!keep.log\n"), "d/keep.log", false, false},
    {ROOT("!keep.log\n*.log\n"), "keep.log", false, true},
    {ROOT("build/\n!build/keep.txt\n"), "build/keep.txt", false, true}, /* parent excluded */
    {ROOT("!x.tmp\n"), "x.tmp", false, false},                          /* a default taken back */
    {ROOT("!.git/\n"), ".git", true, false},
    {ROOT("!.kith/\n!.kith\n!/.kith\n"), ".kith", true, true}, /* never */
    {ROOT("!.kith/\n!.kith\n!.kith/**\n"), ".kith/x", false, true},

    /* ---- trailing slash: folders only ---- */
    {ROOT("build/\n"), "build", true, true},
    {ROOT("build/\n"), "build", false, false},
    {ROOT("build/\n"), "src/build", true, true},
    {ROOT("build/\n"), "build/out/x.o", false, true},
    {ROOT("logs/\n"), "logs", false, false},

    /* ---- anchoring: a slash at the start or in the middle ---- */
    {ROOT("/build\n"), "build", false, true},
    {ROOT("/build\n"), "src/build", false, false},
    {ROOT("doc/frotz\n"), "doc/frotz", true, true},
    {ROOT("doc/frotz\n"), "a/doc/frotz", true, false},
    {ROOT("doc/frotz/\n"), "doc/frotz", true, true},
    {ROOT("doc/frotz/\n"), "doc/frotz", false, false},
    {ROOT("frotz/\n"), "a/frotz", true, true},
    {ROOT("/*.c\n"), "a.c", false, true},
    {ROOT("/*.c\n"), "d/a.c", false, false},
    {ROOT("foo/*\n"), "foo/test.json", false, true},
    {ROOT("foo/*\n"), "foo/bar", true, true},
    {ROOT("foo/*\n"), "foo/bar/hello.c", false, true}, /* as its folder is */
    {ROOT("foo/*\n"), "foo", true, false},

    /* ---- wildcards ---- */
    {ROOT("a?c\n"), "abc", false, true},
    {ROOT("a?c\n"), "ac", false, false},
    {ROOT("a/?\n"), "a/b", false, true},
    {ROOT("a?b\n"), "a/b", false, false}, /* '?' never matches '/' */
    {ROOT("a*b\n"), "a/b", false, false},
    {ROOT("[abc].txt\n"), "b.txt", false, true},
    {ROOT("[abc].txt\n"), "d.txt", false, false},
    {ROOT("[!abc].txt\n"), "d.txt", false, true},
    {ROOT("[!abc].txt\n"), "a.txt", false, false},
    {ROOT("[a-c]x\n"), "bx", false, true},
    {ROOT("[a-c]x\n"), "dx", false, false},
    {ROOT("*\n"), "anything/at/all", false, true},
    {ROOT(".*\n"), "x/.hidden", false, true},
    {ROOT(".*\n"), "x/visible", false, false},

    /* ---- ** ---- */
    {ROOT("**/logs\n"), "logs", true, true},
    {ROOT("**/logs\n"), "a/b/logs", true, true},
    {ROOT("**/logs/debug.log\n"), "logs/debug.log", false, true},
    {ROOT("**/logs/debug.log\n"), "x/y/logs/debug.log", false, true},
    {ROOT("**/logs/debug.log\n"), "logs/x/debug.log", false, false},
    {ROOT("abc/**\n"), "abc/x", false, true},
    {ROOT("abc/**\n"), "abc/x/y", false, true},
    {ROOT("abc/**\n"), "abc", true, false},
    {ROOT("abc/**\n"), "x/abc/y", false, false},
    {ROOT("a/**/b\n"), "a/b", false, true},
    {ROOT("a/**/b\n"), "a/x/b", false, true},
    {ROOT("a/**/b\n"), "a/x/y/z/b", false, true},
    {ROOT("a/**/b\n"), "a/xb", false, false},
    {ROOT("a/**/b\n"), "x/a/b", false, false},
    {ROOT("a/**/**/b\n"), "a/b", false, true},
    {ROOT("**/x/**/y/**\n"), "p/x/q/r/y/z", false, true},
    {ROOT("**/x/**/y/**\n"), "p/x/q/r/y", true, false},
    {ROOT("**\n"), "x", false, true},
    {ROOT("x**y\n"), "xaby", false, true}, /* not next to a slash: like '*' */
    {ROOT("x**y\n"), "xa/by", false, false},

    /* ---- files in subfolders: scope and precedence ---- */
    {F1("src", "*.c\n"), "src/a.c", false, true},
    {F1("src", "*.c\n"), "src/x/a.c", false, true},
    {F1("src", "*.c\n"), "a.c", false, false},
    {F1("src", "*.c\n"), "srcx/a.c", false, false},
    {F1("src", "/gen\n"), "src/gen", true, true},
    {F1("src", "/gen\n"), "src/x/gen", true, false},
    {F1("src", "/gen\n"), "gen", true, false},
    {F1("src", "lib/gen\n"), "src/lib/gen", false, true},
    {F1("src", "lib/gen\n"), "lib/gen", false, false},
    {F1("src", "src\n"), "src", true, false}, /* the folder itself is not below it */
    {F1("src/", "/gen\n"), "src/gen", true, true},
    {F1("a/b", "c\n"), "a/b/c", false, true},
    {F1("a/b", "c\n"), "a/c", false, false},
    {F2("", "*.log\n", "sub", "!important.log\n"), "sub/important.log", false, false},
    {F2("", "*.log\n", "sub", "!important.log\n"), "important.log", false, true},
    {F2("", "*.log\n", "sub", "!important.log\n"), "other/important.log", false, true},
    {F2("", "!*.log\n", "sub", "*.log\n"), "sub/a.log", false, true},
    {F2("", "!*.log\n", "sub", "*.log\n"), "a.log", false, false},
    {F2("", "out/\n", "out", "!keep\n"), "out/keep", false, true}, /* out/ itself is ignored */
};

static int run_case(const icase *c)
{
    ws_ignore *ig = NULL;
    if (ws_ignore_new(&ig) != KITH_OK)
        return -1;
    for (int i = 0; i < 3 && c->files[i].text; i++)
        if (ws_ignore_add(ig, c->files[i].base, c->files[i].text, strlen(c->files[i].text)) !=
            KITH_OK) {
            ws_ignore_free(ig);
            return -1;
        }
    int got = ws_ignore_match(ig, c->path, c->is_dir);
    ws_ignore_free(ig);
    return got;
}

TT_TEST(rule_table)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const icase *c = &table[i];
        int got = run_case(c);
        if (got != c->want) {
            fprintf(stderr, "  case %zu: path \"%s\"%s: got %d, want %d; rules:", i, c->path,
                    c->is_dir ? " (dir)" : "", got, c->want);
            for (int k = 0; k < 3 && c->files[k].text; k++)
                fprintf(stderr, " [%s] \"%s\"", c->files[k].base, c->files[k].text);
            fprintf(stderr, "\n");
            bad++;
        }
    }
    printf("  %zu cases\n", sizeof table / sizeof table[0]);
    TT_EQ(bad, 0);
}

TT_TEST(paths_and_lines_of_any_length)
{
    ws_ignore *ig = NULL;
    TT_OK(ws_ignore_new(&ig));
    /* a deep path past the stack buffers, and a long line */
    char *path = malloc(2001), *line = malloc(5003);
    for (int i = 0; i < 1000; i++)
        memcpy(path + 2 * i, i % 2 ? "b/" : "a/", 2);
    strcpy(path + 1998, "z"); /* "a/b/a/b/.../a/z" */
    memset(line, 'x', 5000);
    memcpy(line + 5000, "\n", 2);
    TT_OK(ws_ignore_add(ig, "", line, strlen(line)));
    TT_ASSERT(!ws_ignore_match(ig, path, false));
    TT_OK(ws_ignore_add(ig, "", "a/**/z\n", 7));
    TT_ASSERT(ws_ignore_match(ig, path, false));
    TT_OK(ws_ignore_add(ig, "", "!a/**/z\n**/b/**/b/**/b/**/q\n", 28));
    TT_ASSERT(!ws_ignore_match(ig, path, false));
    line[5000] = 0;
    TT_ASSERT(ws_ignore_match(ig, line, false)); /* the 5000-byte rule itself */
    memset(line + 1, 'y', 4998);
    TT_ASSERT(!ws_ignore_match(ig, line, false));
    TT_OK(ws_ignore_add(ig, "", "x*x\n", 4));
    TT_ASSERT(ws_ignore_match(ig, line, false));
    /* NUL bytes inside a file: that line is dropped, the rest stays */
    TT_OK(ws_ignore_add(ig, "", "nul\0here\nafter\n", 15));
    TT_ASSERT(ws_ignore_match(ig, "after", false));
    TT_ASSERT(!ws_ignore_match(ig, "nul", false));
    /* odd paths */
    TT_ASSERT(!ws_ignore_match(ig, "", false));
    TT_ASSERT(!ws_ignore_match(ig, NULL, false));
    TT_ASSERT(ws_ignore_match(ig, "//after//", false));
    free(path);
    free(line);
    ws_ignore_free(ig);
    ws_ignore_free(NULL);
}

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

TT_TEST(failing_allocator)
{
    /* each allocation of new + add, failed in turn: ENOMEM, nothing leaked
     * (ASan checks), and a failed add leaves the rules as they were */
    static const char text[] = "*.log\n!keep.log\nbuild/\n/a/**/b\n";
    int bad = 0, clean = 0;
    for (fail_at = 1; fail_at < 1000 && !clean; fail_at++) {
        ws_ignore *ig = NULL;
        alloc_calls = 0;
        kith_set_allocator(failing_realloc, NULL);
        int rc = ws_ignore_new(&ig);
        if (rc == KITH_OK) {
            rc = ws_ignore_add(ig, "", text, sizeof text - 1);
            if (rc == KITH_ENOMEM &&
                (ws_ignore_match(ig, "x.log", false) || !ws_ignore_match(ig, "x.tmp", false)))
                bad++;
            if (rc == KITH_OK && alloc_calls < fail_at)
                clean = 1;
        } else if (rc != KITH_ENOMEM || ig) {
            bad++;
        }
        kith_set_allocator(NULL, NULL);
        if (rc == KITH_OK &&
            !(ws_ignore_match(ig, "x.log", false) && !ws_ignore_match(ig, "keep.log", false)))
            bad++;
        ws_ignore_free(ig);
    }
    TT_EQ(bad, 0);
    TT_ASSERT(clean);
}

TT_MAIN(TT_CASE(rule_table), TT_CASE(paths_and_lines_of_any_length), TT_CASE(failing_allocator))
