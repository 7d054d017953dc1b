/*
 * The daemon's log: one line per event, "time pid level message", on
 * stderr (which --detach points at a log file). Lines are written with one
 * write(2) each so that lines from the library and from the daemon never
 * interleave inside a line, even when two daemons share a log file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/net/daemon_int.h"

static int min_level = KITH_LOG_INFO;

void dlog_init(int min)
{
    min_level = min;
    kith_log_set(dlog_lib, NULL);
}

static void emit(enum kith_log_level level, const char *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if ((int)level < min_level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    char line[1200];
    int n = snprintf(line, sizeof line, "%s.%03d %d %s %s\n", ts, (int)(tv.tv_usec / 1000),
                     (int)getpid(), names[(unsigned)level < 4 ? level : 3], msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) { /* keep the newline of a long line */
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nowhere to report a failed log write */
}

void dlog(enum kith_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, msg);
}

void dlog_lib(void *ud, enum kith_log_level level, const char *msg)
{
    emit(level, msg);
}
