/*
 * tt.h: kith's tiny test harness. A test file defines TT_TEST(name) functions,
 * lists them in TT_MAIN(...), and gets: a filter by argv[1] (substring of the
 * test name), assertion macros that print both values and file:line, and the
 * closing line "N passed, N failed" that CI reads. A failed assertion ends
 * the current test only.
 */
#ifndef KITH_TT_H
#define KITH_TT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tt_failed_current;

#define TT_TEST(name) static void name(void)

#define TT_FAIL_(...)                                                                  \
    do {                                                                               \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                              \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fprintf(stderr, "\n");                                                         \
        tt_failed_current = 1;                                                         \
        return;                                                                        \
    } while (0)

#define TT_ASSERT(c)                                                                   \
    do {                                                                               \
        if (!(c))                                                                      \
            TT_FAIL_("assertion failed: %s", #c);                                      \
    } while (0)

#define TT_EQ(a, b)                                                                    \
    do {                                                                               \
        long long tt_a = (long long)(a), tt_b = (long long)(b);                        \
        if (tt_a != tt_b)                                                              \
            TT_FAIL_("%s == %s: %lld != %lld", #a, #b, tt_a, tt_b);                    \
    } while (0)

/* rc checks print the kith error name. */
#define TT_OK(expr)                                                                    \
    do {                                                                               \
        int tt_rc = (expr);                                                            \
        if (tt_rc != 0)                                                                \
            TT_FAIL_("%s returned %d (%s)", #expr, tt_rc, kith_err_name(tt_rc));       \
    } while (0)

#define TT_STREQ(a, b)                                                                 \
    do {                                                                               \
        const char *tt_a = (a), *tt_b = (b);                                           \
        if (!tt_a || !tt_b || strcmp(tt_a, tt_b) != 0)                                 \
            TT_FAIL_("%s == %s:\n    \"%s\"\n != \"%s\"", #a, #b, tt_a ? tt_a : "(null)",    \
                     tt_b ? tt_b : "(null)");                                          \
    } while (0)

#define TT_NEAR(a, b, eps)                                                             \
    do {                                                                               \
        double tt_a = (a), tt_b = (b);                                                 \
        if (!(tt_a - tt_b <= (eps) && tt_b - tt_a <= (eps)))                           \
            TT_FAIL_("%s ~= %s: %g vs %g (eps %g)", #a, #b, tt_a, tt_b, (double)(eps)); \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} tt_case;

#define TT_CASE(fn) {#fn, fn}

static inline int tt_run(const tt_case *cases, size_t n, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1]))
            continue;
        tt_failed_current = 0;
        cases[i].fn();
        if (tt_failed_current) {
            fprintf(stderr, "FAIL %s\n", cases[i].name);
            failed++;
        } else {
            printf("ok   %s\n", cases[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TT_MAIN(...)                                                                   \
    int main(int argc, char **argv)                                                    \
    {                                                                                  \
        static const tt_case cases[] = {__VA_ARGS__};                                  \
        return tt_run(cases, sizeof cases / sizeof cases[0], argc, argv);              \
    }

/* A fresh folder /tmp/<prefix>-XXXXXX for a test file's workspaces (ctest
 * runs test files in parallel: each gets its own), removed with all in it
 * at exit; its path goes to @out. Aborts when none can be made: no test
 * could run. */
static inline char *tt_tmpdir_path(void)
{
    static char dir[256];
    return dir;
}

static inline void tt_tmpdir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tt_tmpdir_path());
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tt_tmpdir_path());
}

static inline void tt_tmpdir(const char *prefix, char *out, size_t cap)
{
    char *dir = tt_tmpdir_path();
    snprintf(dir, 256, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(dir))
        abort();
    atexit(tt_tmpdir_remove);
    snprintf(out, cap, "%s", dir);
}

/* Path of a file in ../shared (KITH_SHARED from ctest) or the repo (KITH_SRC). */
static inline const char *tt_path(const char *env, const char *rel, char *buf, size_t cap)
{
    const char *base = getenv(env);
    snprintf(buf, cap, "%s/%s", base ? base : ".", rel);
    return buf;
}

#endif
