/*
 * What every verb of the kith commands shares (kith and kith-net): error
 * messages, colour on terminals only, times, and opening the workspace with
 * the options every workspace verb has (-C DIR, --json, --help).
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
