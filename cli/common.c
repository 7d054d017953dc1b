/*
 * What every verb of the kith commands shares (kith and kith-net): error
 * messages, colour on terminals only, times, and opening the workspace with
 * the options every workspace verb has (-C DIR, --json, --help).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("kith: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_color(void)
{
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && (!term || strcmp(term, "dumb"));
}

void cli_time(char *buf, size_t cap, long long ms, int iso)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (iso) {
        gmtime_r(&t, &tm);
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    } else {
        localtime_r(&t, &tm);
        strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
    }
}

/* Takes the options every workspace verb has (-C DIR, --json, --help) out
 * of argv, leaving the rest in order. Returns -1 after printing help. */
int ws_cli_common(int *argc, char **argv, ws_cli_opts *o, const char *usage)
{
    int out = 1;
    memset(o, 0, sizeof *o);
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return -1;
        }
        if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "-C") && i + 1 < *argc) {
            if (chdir(argv[++i])) {
                cli_error("cannot change to %s: %s", argv[i], strerror(errno));
                return -2;
            }
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    o->color = !o->json && cli_color();
    return 0;
}

kith_ws *ws_cli_open(void)
{
    kith_ws *ws = NULL;
    int rc = kith_ws_open(NULL, &ws);
    if (rc) {
        cli_error("%s", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return NULL;
    }
    return ws;
}

int ws_cli_fail(kith_ws *ws)
{
    cli_error("%s", kith_ws_errmsg(ws));
    kith_ws_close(ws);
    return 1;
}

const char *ws_cli_what(enum kith_ws_what w)
{
    static const char *const names[] = {"added",   "modified", "deleted",
                                        "renamed", "restored", "warning"};
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "?";
}

/* ---- finding the model ------------------------------------------------------------------ */

#define BUNDLED "stories260K-f32.gguf"

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* @a/@b into @out; 1 if it fit. */
static int pjoin(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

int cli_ai_models_dir(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        return snprintf(buf, cap, "%s/kith/models", xdg) < (int)cap;
    if (home && *home)
        return snprintf(buf, cap, "%s/.local/share/kith/models", home) < (int)cap;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first *.gguf of @dir in name order (default.gguf first). */
static int first_gguf(const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX];
    if (pjoin(path, sizeof path, dir, "default.gguf") && is_file(path))
        return snprintf(out, cap, "%s", path) < (int)cap;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".gguf"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    int found = 0;
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (!found && names[i]) {
            if (pjoin(path, sizeof path, dir, names[i]) && is_file(path))
                found = snprintf(out, cap, "%s", path) < (int)cap;
        }
        free(names[i]);
    }
    return found;
}

int cli_find_model(const char *opt, char *out, size_t cap)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (opt) {
        if (is_file(opt))
            return snprintf(out, cap, "%s", opt) >= (int)cap;
        if (!strchr(opt, '/') && cli_ai_models_dir(dir, sizeof dir)) {
            char name[NAME_MAX + 8];
            if (pjoin(path, sizeof path, dir, opt) && is_file(path))
                return snprintf(out, cap, "%s", path) >= (int)cap;
            int n = snprintf(name, sizeof name, "%s.gguf", opt);
            if (n > 0 && (size_t)n < sizeof name && pjoin(path, sizeof path, dir, name) &&
                is_file(path))
                return snprintf(out, cap, "%s", path) >= (int)cap;
        }
        return cli_error("model '%s' not found", opt);
    }
    const char *env = getenv("KITH_MODEL");
    if (env && *env)
        return cli_find_model(env, out, cap);
    if (cli_ai_models_dir(dir, sizeof dir) && first_gguf(dir, out, cap))
        return 0;
    /* bundled: <exe dir>/../models, <exe dir>/../share/kith/models */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"../models", "../share/kith/models", "models"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            char sub[64];
            snprintf(sub, sizeof sub, "%s/%s", rel[i], BUNDLED);
            if (pjoin(path, sizeof path, exe, sub) && is_file(path))
                return snprintf(out, cap, "%s", path) >= (int)cap;
        }
    }
    return cli_error("no model found: pass --model PATH, set KITH_MODEL, or put a .gguf in "
                     "~/.local/share/kith/models/");
}
