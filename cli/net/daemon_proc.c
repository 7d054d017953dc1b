/*
 * The daemon as a process: .kith/daemon.pid, held under an exclusive
 * flock(2) for the daemon's whole life. The lock, not the file's existence,
 * says whether a daemon runs: a daemon killed with SIGKILL leaves the file
 * behind, but the kernel drops its lock, so the next start is not refused
 * by a stale file and `kith daemon stop` never signals a recycled pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/net/daemon_int.h"

static void pid_path(char *buf, size_t cap, const char *kith_dir)
{
    snprintf(buf, cap, "%s/daemon.pid", kith_dir);
}

static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == 0) ? pid : 0;
}

/* True when @fd is still the file at @path: a daemon that was exiting may
 * have unlinked the file we opened just before we locked it. */
static int still_linked(int fd, const char *path)
{
    struct stat a, b;
    return !fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int dproc_lock(const char *kith_dir, long *other)
{
    char path[4200];
    pid_path(path, sizeof path, kith_dir);
    *other = 0;
    for (int tries = 0; tries < 10; tries++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            cli_error("cannot open %s: %s", path, strerror(errno));
            return -2;
        }
        if (flock(fd, LOCK_EX | LOCK_NB)) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                /* The holder writes its pid right after locking; give it a moment. */
                for (int i = 0; i < 20 && !(*other = read_pid(fd)); i++)
                    usleep(5000);
                close(fd);
                return -1;
            }
            close(fd);
            cli_error("cannot lock %s: %s", path, strerror(e));
            return -2;
        }
        if (still_linked(fd, path))
            return fd;
        close(fd);
    }
    cli_error("cannot lock %s: it keeps being replaced", path);
    return -2;
}

int dproc_write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n)
        return -1;
    return 0;
}

void dproc_unlock(const char *kith_dir, int fd)
{
    char path[4200];
    if (fd < 0)
        return;
    pid_path(path, sizeof path, kith_dir);
    /* Unlinked while still locked: a new daemon that opened the old file
     * sees it is no longer linked (still_linked) and tries again. */
    unlink(path);
    close(fd);
}

long dproc_running(const char *kith_dir)
{
    char path[4200];
    pid_path(path, sizeof path, kith_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) && errno == EWOULDBLOCK) {
        for (int i = 0; i < 20 && !(pid = read_pid(fd)); i++)
            usleep(5000);
        if (!pid)
            pid = -1; /* locked, pid not written yet */
    }
    close(fd);
    return pid;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dproc_stop(const char *kith_dir, int wait_ms)
{
    long pid = dproc_running(kith_dir);
    if (pid == 0) {
        cli_error("no daemon runs on this workspace");
        return 1;
    }
    if (pid < 0 || kill((pid_t)pid, SIGTERM)) {
        cli_error("cannot stop the daemon (pid %ld): %s", pid,
                  pid < 0 ? "its pid file is empty" : strerror(errno));
        return 1;
    }
    long long end = now_ms() + wait_ms;
    while (now_ms() < end) {
        if (!dproc_running(kith_dir)) {
            printf("daemon (pid %ld) stopped\n", pid);
            return 0;
        }
        usleep(10000);
    }
    cli_error("the daemon (pid %ld) did not stop within %d s", pid, wait_ms / 1000);
    return 1;
}
