/*
 * What the files of `kith daemon` share (cli/net/cmd_daemon.c, the verb and
 * its main loop; daemon_watch.c, the recursive folder watcher;
 * daemon_netlink.c, network change notices; daemon_proc.c, pid file,
 * detaching and stopping; daemon_log.c, one line per event).
 */
#ifndef KITH_CLI_NET_DAEMON_INT_H
#define KITH_CLI_NET_DAEMON_INT_H

#include <stddef.h>
#include <uv.h>

#include "kith/util.h"

/* ---- log (daemon_log.c) ------------------------------------------------------ */

/* Lines below @min are dropped. The library's log (kith_log_set) goes here too. */
void dlog_init(int min);
void dlog(enum kith_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The kith_log_fn the library is given. */
void dlog_lib(void *ud, enum kith_log_level level, const char *msg);

/* ---- the watcher (daemon_watch.c) --------------------------------------------- */

typedef struct dwatch dwatch;

/*
 * Watches @root (absolute) and every folder below it except the workspace's
 * own state (.kith) and version-control folders, adding watches as folders
 * appear and dropping them as they go (inotify is not recursive). Calls
 * @on_change for every event that may be a user's edit: never for kith's
 * own temporary files, so writing a remote change does not loop. When the
 * kernel refuses more watches, it logs it once and @on_change's caller is
 * expected to scan on a timer (dwatch_degraded).
 */
int dwatch_start(uv_loop_t *loop, const char *root, void (*on_change)(void *ud), void *ud,
                 dwatch **out /* OUT */);
size_t dwatch_count(const dwatch *w);
/* True when some folder could not be watched (inotify limit). */
int dwatch_degraded(const dwatch *w);
/* Closes every handle; @w is freed once libuv has closed them. Accepts NULL. */
void dwatch_stop(dwatch *w);

/* True for names the watcher never reacts to (kith's own temporary files). */
int dwatch_ignored_name(const char *name);

/* ---- network changes (daemon_netlink.c) ----------------------------------------- */

typedef struct dnetlink dnetlink;

/* Listens to the kernel's routing notices (links and addresses) and calls
 * @on_change, at most once per @settle_ms burst, when a link comes up or an
 * address appears. Linux only; elsewhere it returns KITH_EUNSUPPORTED. */
int dnetlink_start(uv_loop_t *loop, int settle_ms, void (*on_change)(void *ud), void *ud,
                   dnetlink **out /* OUT */);
void dnetlink_stop(dnetlink *n);

/* ---- process (daemon_proc.c) ------------------------------------------------------ */

/* Takes .kith/daemon.pid in @kith_dir under an exclusive lock held for the
 * process's life. Returns the fd, -1 when another daemon holds it (its pid
 * in *other), -2 on another error (printed). */
int dproc_lock(const char *kith_dir, long *other /* OUT */);
/* Writes this process's pid into the locked file. */
int dproc_write_pid(int fd);
/* Removes the pid file (still locked) and closes it. */
void dproc_unlock(const char *kith_dir, int fd);
/* The pid of the daemon that holds the lock, 0 when none runs. */
long dproc_running(const char *kith_dir);
/* `kith daemon stop`: SIGTERM, then waits up to @wait_ms for the lock to free. */
int dproc_stop(const char *kith_dir, int wait_ms);

#endif
