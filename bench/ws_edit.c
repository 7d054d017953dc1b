/*
 * bench_ws_edit: the cost of recording a one-character edit in a large text
 * file, measured inside the process (kith_ws_scan from the file's write to
 * the committed change), with SQLite's fsync on and off, so that kith's own
 * work and the disk's flush show separately.
 *
 *   bench_ws_edit DIR [BYTES] [RUNS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kith/kith.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of @runs one-character edits, each recorded by a scan. */
static double edits(const char *dir, const char *file, size_t bytes, int runs, const char *sync)
{
    setenv("KITH_SYNC", sync, 1);
    kith_ws *ws = NULL;
    if (kith_ws_open(dir, &ws)) {
        fprintf(stderr, "%s\n", kith_ws_errmsg(ws));
        exit(1);
    }
    double *t = calloc((size_t)runs, sizeof *t);
    int fd = open(file, O_RDWR);
    for (int r = 0; r < runs; r++) {
        off_t at = (off_t)(bytes / 2 + (size_t)r * 7919 % (bytes / 4));
        char c;
        if (pread(fd, &c, 1, at) != 1)
            exit(1);
        c = c == 'x' ? 'y' : 'x'; /* always a change, always ASCII */
        if (pwrite(fd, &c, 1, at) != 1)
            exit(1);
        double t0 = now_ms();
        kith_ws_result res;
        if (kith_ws_scan(ws, NULL, NULL, &res) || res.files != 1) {
            fprintf(stderr, "scan: %s (%zu files)\n", kith_ws_errmsg(ws), res.files);
            exit(1);
        }
        t[r] = now_ms() - t0;
        /* The next edit must look new to the stat check: let the racy
         * window pass by back-dating this one. */
        struct timespec ts[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
        futimens(fd, ts);
        if (kith_ws_scan(ws, NULL, NULL, &res))
            exit(1);
    }
    close(fd);
    kith_ws_close(ws);
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double m = t[runs / 2];
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [BYTES] [RUNS]\n", argv[0]);
        return 2;
    }
    size_t bytes = argc > 2 ? (size_t)atol(argv[2]) : 1 << 20;
    int runs = argc > 3 ? atoi(argv[3]) : 21;
    kith_ws *ws = NULL;
    if (kith_ws_init(argv[1], "Bench", &ws)) {
        fprintf(stderr, "%s\n", kith_ws_errmsg(ws));
        return 1;
    }
    char file[4096];
    snprintf(file, sizeof file, "%s/big.md", kith_ws_root(ws));
    FILE *f = fopen(file, "w");
    size_t n = 0;
    for (int line = 0; n < bytes; line++)
        n += (size_t)fprintf(f, "Line %d of a large document, with some words to edit here.\n",
                             line);
    fclose(f);
    kith_ws_result res;
    double t0 = now_ms();
    if (kith_ws_scan(ws, NULL, NULL, &res))
        return 1;
    double first = now_ms() - t0;
    kith_ws_close(ws);
    double with_sync = edits(argv[1], file, n, runs, "full");
    double no_sync = edits(argv[1], file, n, runs, "off");
    printf("file %zu bytes: first recording %.1f ms; one-character edit recorded in %.2f ms "
           "(median of %d) with fsync, %.2f ms without\n",
           n, first, with_sync, runs, no_sync);
    return 0;
}
