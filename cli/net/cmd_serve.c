/*
 * kith serve: the local HTTP API (include/kith/api.h) on its own, without
 * the sync daemon: for users who only want the on-device model behind
 * OpenAI-compatible endpoints, and for tests. With --workspace DIR it adds
 * the workspace endpoints (/kith/..., cli/net/api_ws.c) as the daemon
 * does, without watching the folder: they see what was recorded. The
 * daemon hosts the same server on its loop. Prints "api: http://127.0.0.1:PORT" when ready,
 * logs one line per request on stderr, stops cleanly on SIGTERM or SIGINT.
 * Model lookup as `kith ai run`: --model (a path, or a name in the models
 * folder), $KITH_MODEL, the models folder, then the bundled model.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cmds.h"
#include "cli/net/api_ws.h"
#include "cli/net/net.h"
#include "kith/api.h"
#include "kith/kith.h"

#define DEFAULT_PORT 8421

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kith serve [--port N] [--model M] [--token-file F] [options]\n\n"
            "Serves the on-device model on 127.0.0.1 with OpenAI-compatible endpoints\n"
            "(/v1/models, /v1/completions, /v1/chat/completions, /v1/embeddings); see\n"
            "docs/API.md. Requests need 'Authorization: Bearer <token>', the token being\n"
            "the content of the token file (made, mode 0600, if missing). When ready it\n"
            "prints\n  api: http://127.0.0.1:PORT\n\n"
            "  --port N          port on 127.0.0.1 (default %d; 0 picks a free one)\n"
            "  --model M         GGUF path or name (default: $KITH_MODEL, models folder, bundled)\n"
            "  --token-file F    (default: ~/.local/share/kith/api-token)\n"
            "  --ctx N           context per generation (default: the model's, at most 4096)\n"
            "  --threads N       threads per generation (default: the engine's choice)\n"
            "  --parallel N      generations at once (default 1)\n"
            "  --queue N         requests that may wait for the model (default 16)\n"
            "  --max-body BYTES  largest request body (default 1048576)\n"
            "  --workspace DIR   also serve the workspace endpoints (/kith/...) of the\n"
            "                    workspace holding DIR, as 'kith daemon' does\n"
            "  --quiet | --verbose\n",
            DEFAULT_PORT);
}

/* $XDG_DATA_HOME/kith or ~/.local/share/kith into @buf; 0 without a home. */
static int data_dir(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n = -1;
    if (xdg && *xdg)
        n = snprintf(buf, cap, "%s/kith", xdg);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.local/share/kith", home);
    return n > 0 && (size_t)n < cap;
}

static void serve_log(void *ud, enum kith_log_level level, const char *msg)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if ((int)level < *(const int *)ud)
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

static int int_arg(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v ? v : "", &end, 10);
    if (!v || !*v || *end || errno || n < lo || n > hi)
        return cli_error("%s wants a number from %ld to %ld, not '%s'", opt, lo, hi, v ? v : "");
    *out = n;
    return 0;
}

struct serve {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    kith_api *api;
};

static void on_signal(uv_signal_t *s, int sig)
{
    struct serve *sv = s->data;
    kith_api_close(sv->api);
    sv->api = NULL;
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
}

int cmd_serve(int argc, char **argv)
{
    struct kith_api_opts o;
    kith_api_opts_init(&o);
    o.port = DEFAULT_PORT;
    const char *model = NULL, *token_file = NULL, *wsdir = NULL;
    int level = KITH_LOG_INFO;
    long n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            level = KITH_LOG_WARN;
        } else if (!strcmp(a, "--verbose")) {
            level = KITH_LOG_DEBUG;
        } else if (!strcmp(a, "--port")) {
            if (int_arg(a, v, 0, 65535, &n))
                return 2;
            o.port = (int)n, i++;
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            if (!v)
                return cli_error("--model needs a value") + 1;
            model = v, i++;
        } else if (!strcmp(a, "--workspace")) {
            if (!v)
                return cli_error("--workspace needs a folder") + 1;
            wsdir = v, i++;
        } else if (!strcmp(a, "--token-file")) {
            if (!v)
                return cli_error("--token-file needs a value") + 1;
            token_file = v, i++;
        } else if (!strcmp(a, "--ctx")) {
            if (int_arg(a, v, 16, 1 << 20, &n))
                return 2;
            o.n_ctx = (int)n, i++;
        } else if (!strcmp(a, "--threads")) {
            if (int_arg(a, v, 1, 256, &n))
                return 2;
            o.n_threads = (int)n, i++;
        } else if (!strcmp(a, "--parallel")) {
            if (int_arg(a, v, 1, 64, &n))
                return 2;
            o.max_generations = (int)n, i++;
        } else if (!strcmp(a, "--queue")) {
            if (int_arg(a, v, 1, 4096, &n))
                return 2;
            o.max_queue = (int)n, i++;
        } else if (!strcmp(a, "--max-body")) {
            if (int_arg(a, v, 1024, 1L << 30, &n))
                return 2;
            o.max_body = (size_t)n, i++;
        } else {
            usage(stderr);
            return cli_error("unknown option '%s'", a) + 1;
        }
    }

    char model_path[PATH_MAX], tok[PATH_MAX], err[512];
    if (cli_find_model(model, model_path, sizeof model_path))
        return 1;
    if (!token_file) {
        char dir[PATH_MAX];
        if (!data_dir(dir, sizeof dir))
            return cli_error("no HOME: pass --token-file");
        /* the folder may not exist yet on a new machine */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            mkdir(parent, 0700);
        }
        if (mkdir(dir, 0700) && errno != EEXIST)
            return cli_error("cannot make '%s': %s", dir, strerror(errno));
        if (snprintf(tok, sizeof tok, "%s/api-token", dir) >= (int)sizeof tok)
            return cli_error("path too long");
        token_file = tok;
    }
    if (kith_api_token_ensure(token_file, err, sizeof err))
        return cli_error("%s", err);

    kith_ws *ws = NULL;
    api_ws *aw = NULL;
    if (wsdir && kith_ws_open(wsdir, &ws)) {
        cli_error("%s", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return 1;
    }
    struct serve sv;
    memset(&sv, 0, sizeof sv);
    if (uv_loop_init(&sv.loop)) {
        kith_ws_close(ws);
        return cli_error("cannot start the event loop");
    }
    kith_log_set(serve_log, &level);
    o.uv_loop = &sv.loop;
    o.token_file = token_file;
    o.model_path = model_path;
    int rc = kith_api_start(&o, &sv.api, err, sizeof err);
    if (rc) {
        /* a failure after the socket existed leaves a handle to close */
        uv_run(&sv.loop, UV_RUN_DEFAULT);
        uv_loop_close(&sv.loop);
        kith_log_set(NULL, NULL);
        kith_ws_close(ws);
        return cli_error("cannot serve the API: %s", err);
    }
    if (ws && (rc = api_ws_add(sv.api, ws, NULL, NULL, &aw))) {
        kith_api_close(sv.api);
        uv_run(&sv.loop, UV_RUN_DEFAULT);
        uv_loop_close(&sv.loop);
        kith_log_set(NULL, NULL);
        api_ws_free(aw);
        kith_ws_close(ws);
        return cli_error("cannot add the workspace endpoints: %s", kith_strerror(rc));
    }
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(&sv.loop, &sv.sigterm);
    uv_signal_init(&sv.loop, &sv.sigint);
    sv.sigterm.data = sv.sigint.data = &sv;
    uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&sv.sigint, on_signal, SIGINT);

    fprintf(stderr, "api: model %s, token in %s\n", model_path, token_file);
    printf("api: http://127.0.0.1:%d\n", kith_api_port(sv.api));
    fflush(stdout);

    uv_run(&sv.loop, UV_RUN_DEFAULT);
    int lrc = uv_loop_close(&sv.loop);
    api_ws_free(aw);
    kith_ws_close(ws);
    serve_log(&level, KITH_LOG_INFO, "api stopped");
    kith_log_set(NULL, NULL);
    if (lrc)
        return cli_error("the event loop did not close: %s", uv_strerror(lrc));
    return 0;
}
