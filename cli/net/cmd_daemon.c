/*
 * kith daemon: sync-on-connect in the background. One libuv loop does
 * everything, on one thread, so the workspace handle is only ever used by
 * one caller at a time (kith_ws's thread rule) and a remote change and a
 * local scan can never interleave:
 *   - the folder watcher (daemon_watch.c) says "something changed"; after
 *     a short quiet time (debounce) kith_ws_scan records it and
 *     kith_replica_local_changed pushes it at once;
 *   - the replica (kith_replica_attach) keeps the hubs live on the same
 *     loop and applies remote changes with kith_ws_apply_change, which
 *     records a file's unsaved-to-history edit before writing it, so a
 *     user's save is merged, never overwritten, whatever the debounce;
 *   - netlink notices (daemon_netlink.c) retry offline remotes at once;
 *   - LAN discovery (kith_lan_*, src/replica/lan.c) finds peers;
 *   - SIGTERM/SIGINT stop it cleanly (uv_signal), after a last scan.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/net/api_ws.h"
#include "cli/net/daemon_int.h"
#include "cli/net/net.h"
#include "kith/api.h"
#include "kith/kith.h"
#include "kith/replica.h"

#define QUIET_MS    20    /* a save is usually several writes; wait for them to end */
#define MAX_WAIT_MS 100   /* but record a file that is written without pause anyway */
#define BUSY_RETRY  250   /* another process holds the store: try again after this */
#define BACKSTOP_MS 60000 /* full scan now and then, in case the kernel dropped events */
#define DEGRADED_MS 2000  /* ... and often when some folders could not be watched */

struct daemon_opts {
    int detach;
    int lan;
    int lan_port;
    int level;
    const char *log_file;
    int api;      /* serve the local HTTP API (kith_api) */
    int api_port; /* 0: a free one, written to .kith/api-port */
    int api_set;  /* --api or --no-api given: the config's "api" is not read */
    const char *model;
};

struct daemon {
    uv_loop_t loop;
    kith_ws *ws;
    kith_replica *rep;
    kith_lan *lan;
    dwatch *watch;
    dnetlink *netlink;
    kith_api *api;
    api_ws *api_ws; /* its /kith/ routes */
    uv_timer_t debounce, backstop, force;
    uv_signal_t sigterm, sigint;
    uint64_t first_dirty; /* loop time of the first event not yet scanned */
    int dirty;
    int stopping;
};

/* ---- recording ------------------------------------------------------------------ */

struct scan_note {
    char names[256];
    size_t shown;
};

static void on_file(const kith_ws_file *f, void *ctx)
{
    struct scan_note *n = ctx;
    if (f->what == KITH_WS_WARNING) {
        dlog(KITH_LOG_WARN, "%s: %s", f->path, f->message ? f->message : "warning");
        return;
    }
    if (n->shown < 3) {
        size_t len = strlen(n->names);
        snprintf(n->names + len, sizeof n->names - len, "%s%s", len ? ", " : "", f->path);
    }
    n->shown++;
}

static void arm_debounce(struct daemon *d, uint64_t delay);

/* Records what changed in the folder; pushes it when something was. */
static void scan_now(struct daemon *d, int after_event)
{
    struct scan_note note = {{0}, 0};
    kith_ws_result res;
    int rc = kith_ws_scan(d->ws, on_file, &note, &res);
    if (rc == KITH_EBUSY) {
        dlog(KITH_LOG_DEBUG, "scan: the store is busy; trying again");
        d->dirty = 1;
        arm_debounce(d, BUSY_RETRY);
        return;
    }
    if (rc) {
        dlog(KITH_LOG_ERROR, "scan failed: %s", kith_ws_errmsg(d->ws));
        return;
    }
    if (res.change[0])
        dlog(KITH_LOG_INFO, "recorded %.12s: %zu file%s (%s%s)", res.change, res.files,
             res.files == 1 ? "" : "s", note.names, note.shown > 3 ? ", ..." : "");
    /* Pushed even when this scan found nothing: a save that landed while a
     * remote change was being applied was recorded by kith_ws_apply_change
     * (so that it is merged, not overwritten), and this scan, which its
     * event caused, is the daemon's only sign of it. The replica pushes
     * only what the hubs lack, so this costs a version-vector read. */
    if (d->rep && (res.change[0] || after_event))
        kith_replica_local_changed(d->rep);
}

static void on_debounce(uv_timer_t *t)
{
    struct daemon *d = t->data;
    d->dirty = 0;
    scan_now(d, 1);
}

static void arm_debounce(struct daemon *d, uint64_t delay)
{
    uv_timer_start(&d->debounce, on_debounce, delay, 0);
}

/* The watcher saw an event: scan once the folder has been quiet for
 * QUIET_MS, but no later than MAX_WAIT_MS after the first event. */
static void on_change(void *ud)
{
    struct daemon *d = ud;
    if (d->stopping)
        return;
    uint64_t now = uv_now(&d->loop);
    if (!d->dirty) {
        d->dirty = 1;
        d->first_dirty = now;
    }
    uint64_t due = now + QUIET_MS;
    if (due > d->first_dirty + MAX_WAIT_MS)
        due = d->first_dirty + MAX_WAIT_MS;
    arm_debounce(d, due > now ? due - now : 0);
}

static void on_backstop(uv_timer_t *t)
{
    struct daemon *d = t->data;
    scan_now(d, 0);
}

/* ---- network ------------------------------------------------------------------------ */

static void on_network(void *ud)
{
    struct daemon *d = ud;
    if (d->stopping)
        return;
    dlog(KITH_LOG_INFO, "network changed: retrying now");
    if (d->rep)
        kith_replica_network_changed(d->rep);
    if (d->lan)
        kith_lan_network_changed(d->lan);
}

/* ---- stopping ------------------------------------------------------------------------ */

static void on_force(uv_timer_t *t)
{
    struct daemon *d = t->data;
    dlog(KITH_LOG_WARN, "connections did not close within 5 s; stopping anyway");
    uv_stop(&d->loop);
}

static void begin_stop(struct daemon *d, int sig)
{
    if (d->stopping) { /* a second signal: do not wait for anything */
        uv_stop(&d->loop);
        return;
    }
    d->stopping = 1;
    dlog(KITH_LOG_INFO, "stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (d->dirty) /* an edit not yet recorded: record it now, not at the next start */
        scan_now(d, 1);
    dwatch_stop(d->watch);
    d->watch = NULL;
    dnetlink_stop(d->netlink);
    d->netlink = NULL;
    kith_lan_stop(d->lan);
    d->lan = NULL;
    kith_api_close(d->api);
    d->api = NULL;
    if (d->rep)
        kith_replica_detach(d->rep);
    uv_close((uv_handle_t *)&d->debounce, NULL);
    uv_close((uv_handle_t *)&d->backstop, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    /* Not counted as work: the loop ends as soon as everything else has closed. */
    uv_timer_start(&d->force, on_force, 5000, 0);
    uv_unref((uv_handle_t *)&d->force);
}

static void on_signal(uv_signal_t *s, int sig)
{
    begin_stop(s->data, sig);
}

/* ---- start ------------------------------------------------------------------------------ */

static int start_timers_and_signals(struct daemon *d)
{
    uv_timer_init(&d->loop, &d->debounce);
    uv_timer_init(&d->loop, &d->backstop);
    uv_timer_init(&d->loop, &d->force);
    d->debounce.data = d->backstop.data = d->force.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    if (uv_signal_start(&d->sigterm, on_signal, SIGTERM) ||
        uv_signal_start(&d->sigint, on_signal, SIGINT))
        return -1;
    uint64_t every = dwatch_degraded(d->watch) ? DEGRADED_MS : BACKSTOP_MS;
    uv_timer_start(&d->backstop, on_backstop, every, every);
    return 0;
}

static int start_sync(struct daemon *d, const struct daemon_opts *o)
{
    int rc = kith_replica_open(d->ws, &d->rep);
    if (rc) {
        dlog(KITH_LOG_ERROR, "cannot open the sync state: %s",
             d->rep ? kith_replica_errmsg(d->rep) : kith_strerror(rc));
        kith_replica_close(d->rep);
        d->rep = NULL;
        return -1;
    }
    rc = kith_replica_attach(d->rep, &d->loop);
    if (rc) {
        dlog(KITH_LOG_ERROR, "cannot start sync: %s", kith_replica_errmsg(d->rep));
        return -1;
    }
    if (!o->lan)
        return 0;
    kith_lan_opts lo = {.size = sizeof lo, .port = o->lan_port};
    rc = kith_lan_start(d->rep, d->ws, &d->loop, &lo, &d->lan);
    if (rc) /* the hubs still work: LAN discovery is a bonus */
        dlog(KITH_LOG_WARN, "LAN discovery is off: %s", kith_strerror(rc));
    return 0;
}

/* A request of the API recorded a change (a suggestion accepted or
 * rejected): push it now, as a scan would. */
static void on_api_changed(void *ud)
{
    struct daemon *d = ud;
    if (d->rep && !d->stopping)
        kith_replica_local_changed(d->rep);
}

/* "[127.0.0.1:|localhost:]PORT" into *port: 0, or -1 after a message. */
static int parse_api(const char *v, const char *what, int *port)
{
    /* Loopback only: a host part, if given, must say so. */
    const char *p = v;
    if (!strncmp(v, "127.0.0.1:", 10) || !strncmp(v, "localhost:", 10))
        p = v + 10;
    else if (strchr(v, ':'))
        return cli_error("%s serves on 127.0.0.1 only, not '%s'", what, v), -1;
    char *end;
    long n = strtol(p, &end, 10);
    if (!*p || *end || n < 0 || n > 65535)
        return cli_error("%s wants a port, not '%s'", what, v), -1;
    *port = (int)n;
    return 0;
}

/* The API's address from .kith/config ("api = PORT", "api = 127.0.0.1:PORT"
 * or "api = off") unless the command line said. */
static int api_from_config(kith_ws *ws, struct daemon_opts *o)
{
    char v[128];
    if (o->api_set || kith_ws_config(ws, "api", v, sizeof v))
        return 0;
    if (!strcmp(v, "off") || !strcmp(v, "no")) {
        o->api = 0;
        return 0;
    }
    return parse_api(v, "the config's 'api'", &o->api_port);
}

/* The local HTTP API on the daemon's loop (docs/API.md): the bearer token
 * in .kith/api-token (0600), the port in .kith/api-port. A missing model
 * leaves the AI endpoints answering 503; the daemon runs on. */
static int start_api(struct daemon *d, const struct daemon_opts *o)
{
    char token[4200], portfile[4200], model[4096], err[256];
    const char *root = kith_ws_root(d->ws);
    snprintf(token, sizeof token, "%s/.kith/api-token", root);
    snprintf(portfile, sizeof portfile, "%s/.kith/api-port", root);
    if (kith_api_token_ensure(token, err, sizeof err)) {
        dlog(KITH_LOG_ERROR, "api: %s", err);
        return -1;
    }
    struct kith_api_opts ao;
    kith_api_opts_init(&ao);
    ao.uv_loop = &d->loop;
    ao.port = o->api_port;
    ao.token_file = token;
    ao.model_path = cli_find_model(o->model, model, sizeof model) == 0 ? model : NULL;
    if (kith_api_start(&ao, &d->api, err, sizeof err)) {
        dlog(KITH_LOG_ERROR, "api: %s", err);
        return -1;
    }
    int rc = api_ws_add(d->api, d->ws, on_api_changed, d, &d->api_ws);
    if (rc) {
        dlog(KITH_LOG_ERROR, "api: cannot add the workspace endpoints: %s", kith_strerror(rc));
        return -1;
    }
    FILE *f = fopen(portfile, "w");
    if (f) {
        fprintf(f, "%d\n", kith_api_port(d->api));
        fclose(f);
    }
    printf("api: http://127.0.0.1:%d\n", kith_api_port(d->api));
    fflush(stdout);
    return 0;
}

static int start(struct daemon *d, const struct daemon_opts *o)
{
    const char *root = kith_ws_root(d->ws);
    /* Short: the loop must not stall long behind a command's transaction;
     * a busy scan is retried (scan_now). */
    kith_ws_set_busy_timeout(d->ws, 2000);
    if (start_sync(d, o))
        return -1;
    if (o->api && start_api(d, o))
        return -1;
    int rc = dwatch_start(&d->loop, root, on_change, d, &d->watch);
    if (rc) {
        dlog(KITH_LOG_ERROR, "cannot watch %s: %s", root, uv_strerror(rc));
        return -1;
    }
    if (dnetlink_start(&d->loop, 200, on_network, d, &d->netlink))
        dlog(KITH_LOG_WARN, "no network change notices: remotes are retried on their backoff");
    if (start_timers_and_signals(d)) {
        dlog(KITH_LOG_ERROR, "cannot install signal handlers");
        return -1;
    }
    return 0;
}

/* Stops whatever start() got going when it failed halfway, then drains. */
static void abort_start(struct daemon *d)
{
    if (!d->stopping && uv_is_active((uv_handle_t *)&d->sigterm))
        begin_stop(d, SIGTERM);
    else {
        dwatch_stop(d->watch);
        dnetlink_stop(d->netlink);
        kith_lan_stop(d->lan);
        kith_api_close(d->api);
        if (d->rep)
            kith_replica_detach(d->rep);
        d->watch = NULL, d->netlink = NULL, d->lan = NULL, d->api = NULL;
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
}

static void close_left(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(struct daemon *d)
{
    /* The replica frees its sync loop, which runs our loop once more while
     * libwebsockets closes its handles: the loop must still be open. */
    kith_replica_close(d->rep);
    d->rep = NULL;
    if (uv_loop_close(&d->loop)) {
        /* libwebsockets 4.1 leaves handles of its context on a foreign loop
         * open; close whatever is left so that the loop can be freed. */
        uv_walk(&d->loop, close_left, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&d->loop))
            dlog(KITH_LOG_DEBUG, "some handles were still open at exit");
    }
    api_ws_free(d->api_ws); /* the server is gone: nothing calls its routes */
    d->api_ws = NULL;
    kith_ws_close(d->ws);
    d->ws = NULL;
}

/* Runs the daemon until a signal. @ready_fd (or -1) gets one byte once it
 * watches the folder (--detach's parent waits for it). */
static int run(struct daemon *d, const struct daemon_opts *o, int ready_fd, int log_fd)
{
    if (uv_loop_init(&d->loop)) {
        dlog(KITH_LOG_ERROR, "cannot make an event loop");
        return 1;
    }
    if (start(d, o)) {
        abort_start(d);
        finish(d);
        return 1;
    }
    if (log_fd >= 0) { /* from now on nothing goes to the terminal */
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        close(log_fd);
    }
    dlog(KITH_LOG_INFO, "daemon started in %s: %zu folder%s watched", kith_ws_root(d->ws),
         dwatch_count(d->watch), dwatch_count(d->watch) == 1 ? "" : "s");
    /* Edits made while no daemon ran are recorded (and pushed) now. */
    scan_now(d, 1);
    if (ready_fd >= 0) {
        ssize_t w = write(ready_fd, "R", 1);
        (void)w; /* a parent that went away does not stop the daemon */
        close(ready_fd);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    finish(d);
    dlog(KITH_LOG_INFO, "daemon stopped");
    return 0;
}

/* ---- the verb ------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: kith daemon [--detach] [--log FILE] [--no-lan] [--lan-port PORT]\n"
               "                   [--api [127.0.0.1:]PORT | --no-api] [--model M]\n"
               "                   [--quiet | --verbose]\n"
               "       kith daemon stop | status\n\n"
               "Keeps the workspace in sync: watches the folder and records every saved\n"
               "edit, pushes it to the hubs and LAN peers at once, and writes their changes\n"
               "into the folder as they arrive. Logs one line per event on stderr.\n"
               "  --detach      run in the background (pid in .kith/daemon.pid, log in\n"
               "                .kith/daemon.log unless --log); 'kith daemon stop' stops it\n"
               "  --no-lan      do not look for peers on the local network\n"
               "  --lan-port N  UDP port of LAN discovery beacons (default 47471)\n"
               "  --api PORT    serve the local HTTP API (docs/API.md) on 127.0.0.1:PORT;\n"
               "                by default on a free port, written to .kith/api-port; it\n"
               "                prints 'api: http://127.0.0.1:PORT' when ready; the bearer\n"
               "                token is in .kith/api-token; 'api = PORT' (or 'off') in\n"
               "                .kith/config sets it when neither option is given\n"
               "  --no-api      no HTTP API\n"
               "  --model M     the model the API serves (as kith ai run finds one)\n");
}

static int parse(int argc, char **argv, struct daemon_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lan = 1;
    o->api = 1;
    o->level = KITH_LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--detach")) {
            o->detach = 1;
        } else if (!strcmp(a, "--no-lan")) {
            o->lan = 0;
        } else if (!strcmp(a, "--quiet")) {
            o->level = KITH_LOG_WARN;
        } else if (!strcmp(a, "--verbose")) {
            o->level = KITH_LOG_DEBUG;
        } else if (!strcmp(a, "--log") && v) {
            o->log_file = v, i++;
        } else if (!strcmp(a, "--no-api")) {
            o->api = 0;
            o->api_set = 1;
        } else if (!strcmp(a, "--model") && v) {
            o->model = v, i++;
        } else if (!strcmp(a, "--api") && v) {
            if (parse_api(v, "--api", &o->api_port))
                return -1;
            o->api_set = 1, i++;
        } else if (!strcmp(a, "--lan-port") && v) {
            char *end;
            long p = strtol(v, &end, 10);
            if (*end || p < 1 || p > 65535)
                return cli_error("--lan-port wants 1..65535, not '%s'", v), -1;
            o->lan_port = (int)p, i++;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a), -1;
        }
    }
    return 0;
}

/* Opens the workspace of the current folder; its .kith folder into @kith_dir. */
static kith_ws *open_ws(char *kith_dir, size_t cap)
{
    kith_ws *ws = NULL;
    if (kith_ws_open(NULL, &ws)) {
        cli_error("%s", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return NULL;
    }
    snprintf(kith_dir, cap, "%s/.kith", kith_ws_root(ws));
    return ws;
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        cli_error("cannot open the log %s: %s", path, strerror(errno));
    return fd;
}

/* --detach: the parent waits until the child watches the folder (or fails),
 * so that `kith daemon --detach && edit` never loses the first edit. */
static int detach(const char *log_path, int *ready_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return cli_error("cannot detach: %s", strerror(errno)), -1;
    pid_t pid = fork();
    if (pid < 0)
        return cli_error("cannot detach: %s", strerror(errno)), -1;
    if (pid == 0) {
        close(p[0]);
        setsid();
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDIN_FILENO), close(null);
        *ready_fd = p[1];
        return 0;
    }
    close(p[1]);
    char c = 0;
    ssize_t n;
    do
        n = read(p[0], &c, 1);
    while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n == 1 && c == 'R') {
        printf("daemon started (pid %ld); log: %s\n", (long)pid, log_path);
        exit(0);
    }
    (void)c;
    cli_error("the daemon did not start; see the messages above or %s", log_path);
    exit(1);
}

static int daemon_main(const struct daemon_opts *given)
{
    char kith_dir[4096], log_path[4200];
    struct daemon_opts opts = *given, *o = &opts;
    kith_ws *ws = open_ws(kith_dir, sizeof kith_dir);
    if (!ws)
        return 1;
    if (api_from_config(ws, o)) {
        kith_ws_close(ws);
        return 2;
    }
    long other = 0;
    int lock = dproc_lock(kith_dir, &other);
    if (lock == -1) {
        kith_ws_close(ws);
        return cli_error("a daemon already runs on this workspace (pid %ld)", other), 1;
    }
    if (lock < 0)
        return kith_ws_close(ws), 1;
    int log_fd = -1, ready_fd = -1;
    snprintf(log_path, sizeof log_path, "%s", o->log_file ? o->log_file : "");
    if (o->detach && !o->log_file)
        snprintf(log_path, sizeof log_path, "%s/daemon.log", kith_dir);
    if (log_path[0] && (log_fd = open_log(log_path)) < 0)
        goto fail;
    if (!o->detach && log_fd >= 0) { /* foreground with --log: all lines there */
        dup2(log_fd, STDERR_FILENO);
        close(log_fd);
        log_fd = -1;
    }
    if (o->detach) {
        /* SQLite must not cross a fork: close the store and open it again. */
        kith_ws_close(ws);
        ws = NULL;
        if (detach(log_path, &ready_fd))
            goto fail;
        ws = open_ws(kith_dir, sizeof kith_dir);
        if (!ws)
            goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    if (dproc_write_pid(lock)) {
        cli_error("cannot write %s/daemon.pid: %s", kith_dir, strerror(errno));
        goto fail;
    }
    dlog_init(o->level);
    struct daemon d = {.ws = ws};
    int rc = run(&d, o, ready_fd, log_fd);
    kith_log_set(NULL, NULL);
    dproc_unlock(kith_dir, lock);
    return rc;
fail:
    if (log_fd >= 0)
        close(log_fd);
    kith_ws_close(ws);
    dproc_unlock(kith_dir, lock);
    return 1;
}

int cmd_daemon(int argc, char **argv)
{
    char kith_dir[4096];
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "stop") || !strcmp(argv[1], "status"))) {
        kith_ws *ws = open_ws(kith_dir, sizeof kith_dir);
        if (!ws)
            return 1;
        kith_ws_close(ws);
        if (!strcmp(argv[1], "stop"))
            return dproc_stop(kith_dir, 10000);
        long pid = dproc_running(kith_dir);
        if (pid)
            printf("daemon running (pid %ld)\n", pid);
        else
            printf("no daemon running\n");
        return pid ? 0 : 3; /* as `systemctl status` and LSB: 3 = not running */
    }
    struct daemon_opts o;
    if (parse(argc, argv, &o))
        return 2;
    return daemon_main(&o);
}
