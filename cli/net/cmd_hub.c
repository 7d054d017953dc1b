/*
 * kith hub: the zero-knowledge sync server. It stores sealed change blobs
 * and membership for any number of workspaces and relays live changes
 * between connected members; it never holds a workspace key. Prints one
 * line when ready, logs one line per event on stderr, and stops cleanly on
 * SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/net/net.h"
#include "kith/kith.h"
#include "kith/sync.h"

static kith_hub *running;

static void on_signal(int sig)
{
    if (running)
        kith_hub_stop(running);
}

static void hub_log(void *ud, enum kith_log_level level, const char *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    int min = *(const int *)ud;
    if ((int)level < min)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03d %d %s %s\n", ts, (int)(tv.tv_usec / 1000), (int)getpid(), names[level],
            msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kith hub --listen ADDR:PORT --data DIR [--cert FILE --key FILE]\n"
               "                [--max-blob BYTES] [--quiet | --verbose]\n\n"
               "Serves end-to-end encrypted sync for any number of workspaces. Without\n"
               "--cert/--key it makes a self-signed certificate in DIR (kept across starts);\n"
               "members pin its fingerprint. PORT 0 picks a free port. When ready it prints\n"
               "  hub: wss://ADDR:PORT fingerprint SHA256:<hex>\n");
}

int cmd_hub(int argc, char **argv)
{
    kith_hub_opts o = {.size = sizeof o};
    int level = KITH_LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            level = KITH_LOG_WARN;
        } else if (!strcmp(a, "--verbose")) {
            level = KITH_LOG_DEBUG;
        } else if (!v) {
            usage(stderr);
            return cli_error("'%s' needs a value or is unknown", a) + 1;
        } else if (!strcmp(a, "--listen")) {
            o.listen = v, i++;
        } else if (!strcmp(a, "--data")) {
            o.data_dir = v, i++;
        } else if (!strcmp(a, "--cert")) {
            o.cert_file = v, i++;
        } else if (!strcmp(a, "--key")) {
            o.key_file = v, i++;
        } else if (!strcmp(a, "--max-blob")) {
            char *end;
            unsigned long long n = strtoull(v, &end, 10);
            if (*end || n == 0 || n > (64ull << 20))
                return cli_error("--max-blob wants 1..67108864 bytes, not '%s'", v) + 1;
            o.max_blob = (size_t)n, i++;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a) + 1;
        }
    }
    if (!o.listen || !o.data_dir) {
        usage(stderr);
        return cli_error("--listen and --data are required") + 1;
    }
    if (!o.cert_file != !o.key_file)
        return cli_error("--cert and --key go together") + 1;

    kith_log_set(hub_log, &level);
    kith_hub *hub = NULL;
    int rc = kith_hub_open(&o, &hub);
    if (rc)
        return cli_error("cannot start the hub: %s", kith_strerror(rc));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    running = hub;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Show the address as given, with the real port when 0 was asked for. */
    char host[256];
    const char *colon = strrchr(o.listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - o.listen), o.listen);
    char fp[72];
    kith_fingerprint_format(kith_hub_fingerprint(hub), fp);
    printf("hub: wss://%s:%d fingerprint %s\n", host, kith_hub_port(hub), fp);
    fflush(stdout);

    rc = kith_hub_run(hub);
    running = NULL;
    kith_hub_close(hub);
    hub_log(&level, KITH_LOG_INFO, "hub stopped");
    kith_log_set(NULL, NULL);
    if (rc)
        return cli_error("hub loop failed: %s", kith_strerror(rc));
    return 0;
}
