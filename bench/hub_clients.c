/*
 * bench_hub_clients URL FINGERPRINT HUB_PID [CLIENTS] [WORKSPACES] [PUSHERS]: many
 * member clients on one `kith hub` (issue 4: "one hub process holds 1,000
 * connected clients syncing on loopback in under 200 MB RSS"). Run it
 * through bench/hub_clients.sh, which starts the hub and raises the file
 * limit.
 *
 * For each workspace an owner registers it and adds CLIENTS/WORKSPACES - 1
 * writers (one signed op each); then every member connects on one client
 * loop, says hello, and pushes two sealed blobs (two rounds), which the hub
 * stores and relays to every other connected member of that workspace.
 * PUSHERS (default: all) limits each round to the first PUSHERS members
 * (round-robin over the workspaces), for one big workspace whose full
 * round would be CLIENTS^2 relays.
 * With all connected, it prints the hub's VmRSS/VmHWM from
 * /proc/HUB_PID/status (idle, and after the exchange), how long each
 * phase took and the hub's CPU time per round (/proc/HUB_PID/stat).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kith/kith.h"
#include "kith/sync.h"

struct member {
    uint8_t pk[KITH_PK_BYTES], sk[KITH_SK_BYTES];
    kith_sync_client *c;
    int ws, ready, closed, caught_up, pushes, push_ok, updates, member_status;
    long blobs;
    char err[200];
};

static struct member *M;
static int n_clients, n_ws, n_push;
static kith_sync_loop *loop;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void cb_ready(void *ud, kith_sync_client *c, int role, const kith_members *m,
                     const uint8_t *w, size_t wl)
{
    ((struct member *)ud)->ready = 1;
}
static void cb_hub_vv(void *ud, kith_sync_client *c, const kith_vv *hub)
{
}
static void cb_blob(void *ud, kith_sync_client *c, const uint8_t *b, size_t len)
{
    ((struct member *)ud)->blobs++;
}
static void cb_snapshot(void *ud, kith_sync_client *c, const kith_vv *cov, const uint8_t *b,
                        size_t len)
{
}
static void cb_caught_up(void *ud, kith_sync_client *c)
{
    ((struct member *)ud)->caught_up++;
}
static void cb_push_result(void *ud, kith_sync_client *c, const uint8_t *a, uint64_t seq,
                           int status, const char *text)
{
    struct member *k = ud;
    k->pushes++;
    k->push_ok += status == KITH_OK;
    if (status != KITH_OK)
        snprintf(k->err, sizeof k->err, "push: %s", text);
}
static void cb_member_op(void *ud, kith_sync_client *c, int status, const char *text,
                         const kith_members *m)
{
    struct member *k = ud;
    k->updates++;
    k->member_status = status;
    if (status != KITH_OK)
        snprintf(k->err, sizeof k->err, "member op: %s", text);
}
static void cb_closed(void *ud, kith_sync_client *c, int err, const char *msg)
{
    struct member *k = ud;
    k->closed = 1;
    snprintf(k->err, sizeof k->err, "closed: %s", msg ? msg : "");
}

/* Runs the loop until count() reaches @want or @timeout_ms passes. */
static int run_until(long (*count)(void), long want, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (count() < want && now_ms() < end)
        if (kith_sync_loop_run(loop, 20) != KITH_OK)
            return -1;
    return count() >= want ? 0 : -1;
}

#define COUNTER(name, expr)                                                                        \
    static long name(void)                                                                         \
    {                                                                                              \
        long n = 0;                                                                                \
        for (int i = 0; i < n_clients; i++)                                                        \
            n += (expr);                                                                           \
        return n;                                                                                  \
    }
COUNTER(n_ready, M[i].ready && !M[i].closed)
COUNTER(n_caught_up, M[i].caught_up)
COUNTER(n_pushes, M[i].pushes)
COUNTER(n_push_ok, M[i].push_ok)
COUNTER(n_blobs, M[i].blobs)
COUNTER(n_closed, M[i].closed)

static void hub_mem(int pid, const char *when)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%-28s cannot read %s\n", when, path);
        return;
    }
    long rss = -1, hwm = -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6))
            rss = atol(line + 6);
        else if (!strncmp(line, "VmHWM:", 6))
            hwm = atol(line + 6);
    }
    fclose(f);
    printf("%-28s hub VmRSS %.1f MB, VmHWM %.1f MB\n", when, rss / 1024.0, hwm / 1024.0);
    fflush(stdout);
}

/* The hub's CPU time so far (user + system), in seconds. */
static double hub_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void first_error(const char *what)
{
    for (int i = 0; i < n_clients; i++)
        if (M[i].err[0]) {
            fprintf(stderr, "%s: client %d: %s\n", what, i, M[i].err);
            return;
        }
    fprintf(stderr, "%s: timed out\n", what);
}

static int connect_member(struct member *k, const char *url, const uint8_t *fp,
                          const uint8_t *ws_id, enum kith_sync_mode mode, const uint8_t *gop,
                          size_t gl)
{
    kith_sync_client_opts o = {.size = sizeof o};
    o.url = url;
    o.fingerprint = fp;
    memcpy(o.ws_id, ws_id, KITH_WS_ID_BYTES);
    o.device_sk = k->sk;
    o.mode = mode;
    o.genesis_op = gop;
    o.genesis_op_len = gl;
    o.cb = (kith_sync_callbacks){cb_ready,     cb_hub_vv,      cb_blob,      cb_snapshot,
                                 cb_caught_up, cb_push_result, cb_member_op, cb_closed};
    o.ud = k;
    return kith_sync_client_new(loop, &o, &k->c);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_hub_clients URL FINGERPRINT HUB_PID [CLIENTS] [WORKSPACES] "
                        "[PUSHERS]\n");
        return 2;
    }
    const char *url = argv[1];
    uint8_t fp[KITH_HASH_BYTES];
    int hub_pid = atoi(argv[3]);
    n_clients = argc > 4 ? atoi(argv[4]) : 1000;
    n_ws = argc > 5 ? atoi(argv[5]) : 10;
    n_push = argc > 6 ? atoi(argv[6]) : n_clients;
    if (kith_fingerprint_parse(argv[2], fp) != KITH_OK || n_clients < 2 || n_ws < 1 ||
        n_clients < 2 * n_ws || n_push < 1 || n_push > n_clients || sodium_init() < 0) {
        fprintf(stderr, "bench_hub_clients: bad arguments\n");
        return 2;
    }
    M = calloc((size_t)n_clients, sizeof *M);
    uint8_t(*ws_id)[KITH_WS_ID_BYTES] = calloc((size_t)n_ws, KITH_WS_ID_BYTES);
    uint8_t(*key)[KITH_WS_KEY_BYTES] = calloc((size_t)n_ws, KITH_WS_KEY_BYTES);
    kith_sync_loop_opts lo = {.size = sizeof lo};
    if (!M || !ws_id || !key || kith_sync_loop_new(&lo, &loop) != KITH_OK) {
        fprintf(stderr, "bench_hub_clients: cannot start the client loop\n");
        return 1;
    }
    for (int i = 0; i < n_clients; i++) {
        M[i].ws = i % n_ws; /* members 0..n_ws-1 are the owners */
        if (kith_device_keygen(M[i].pk, M[i].sk) != KITH_OK)
            return 1;
    }
    hub_mem(hub_pid, "hub at start:");

    /* Register each workspace and add its members, one signed op each. */
    uint64_t t0 = now_ms();
    for (int w = 0; w < n_ws; w++) {
        struct member *own = &M[w];
        randombytes_buf(ws_id[w], KITH_WS_ID_BYTES);
        randombytes_buf(key[w], KITH_WS_KEY_BYTES);
        uint8_t *gop = NULL;
        size_t gl = 0;
        if (kith_member_op_genesis(ws_id[w], own->sk, (uint64_t)time(NULL) * 1000, &gop, &gl) ||
            connect_member(own, url, fp, ws_id[w], KITH_SYNC_REGISTER, gop, gl)) {
            fprintf(stderr, "register: cannot start\n");
            return 1;
        }
        uint64_t end = now_ms() + 20000;
        while (!own->ready && !own->closed && now_ms() < end)
            if (kith_sync_loop_run(loop, 20) != KITH_OK)
                break;
        kith_free(gop);
        if (!own->ready) {
            fprintf(stderr, "register workspace %d: %s\n", w, own->err);
            return 1;
        }
        for (int i = w + n_ws; i < n_clients; i += n_ws) {
            uint8_t *op = NULL;
            size_t ol = 0;
            if (kith_member_op_add(kith_sync_client_members(own->c), own->sk, M[i].pk,
                                   KITH_ROLE_WRITER, (uint64_t)time(NULL) * 1000, &op, &ol) ||
                kith_sync_client_member_op(own->c, op, ol, NULL, 0)) {
                fprintf(stderr, "add member %d: %s\n", i, kith_sync_client_errmsg(own->c));
                return 1;
            }
            kith_free(op);
            int want = own->updates + 1;
            end = now_ms() + 10000;
            while (own->updates < want && !own->closed && now_ms() < end)
                if (kith_sync_loop_run(loop, 5) != KITH_OK)
                    break;
            if (own->updates < want || own->member_status != KITH_OK) {
                fprintf(stderr, "add member %d: %s\n", i, own->err);
                return 1;
            }
        }
    }
    printf("%d workspaces, %d members each: set up in %.1f s\n", n_ws, n_clients / n_ws,
           (now_ms() - t0) / 1000.0);

    /* Everyone else connects. */
    t0 = now_ms();
    for (int i = n_ws; i < n_clients; i++)
        if (connect_member(&M[i], url, fp, ws_id[M[i].ws], KITH_SYNC_MEMBER, NULL, 0)) {
            fprintf(stderr, "connect %d failed\n", i);
            return 1;
        }
    if (run_until(n_ready, n_clients, 120000)) {
        fprintf(stderr, "only %ld of %d clients authenticated (%ld closed)\n", n_ready(),
                n_clients, n_closed());
        first_error("connect");
        return 1;
    }
    printf("%d clients connected and authenticated in %.1f s\n", n_clients,
           (now_ms() - t0) / 1000.0);
    for (int i = 0; i < n_clients; i++) {
        kith_vv *held = NULL;
        if (kith_vv_new(&held) || kith_sync_client_hello(M[i].c, held, 0)) {
            fprintf(stderr, "hello %d failed\n", i);
            return 1;
        }
        kith_vv_free(held);
    }
    if (run_until(n_caught_up, n_clients, 60000)) {
        first_error("hello");
        return 1;
    }
    hub_mem(hub_pid, "all connected, idle:");

    /* Two rounds: every member (or the first PUSHERS) pushes a blob; each
     * is relayed to the other members of its workspace that are connected. */
    char plain[512];
    memset(plain, 'x', sizeof plain);
    long per_ws = n_clients / n_ws;
    for (int round = 1; round <= 2; round++) {
        t0 = now_ms();
        double cpu0 = hub_cpu(hub_pid);
        long blobs0 = n_blobs();
        for (int i = 0; i < n_push; i++) {
            uint8_t *b = NULL;
            size_t bl = 0;
            if (kith_blob_seal(KITH_BLOB_CHANGE, ws_id[M[i].ws], M[i].sk, (uint64_t)round, 0,
                               key[M[i].ws], (const uint8_t *)plain, sizeof plain, &b, &bl) ||
                kith_sync_client_push(M[i].c, b, bl)) {
                fprintf(stderr, "push %d failed\n", i);
                return 1;
            }
            kith_free(b);
        }
        if (run_until(n_pushes, (long)n_push * round, 120000) ||
            n_push_ok() != (long)n_push * round) {
            fprintf(stderr, "round %d: %ld pushes answered, %ld ok\n", round, n_pushes(),
                    n_push_ok());
            first_error("push");
            return 1;
        }
        /* Each workspace's members see every other member's push. */
        long want = blobs0 + (long)n_push * (per_ws - 1);
        int relayed = run_until(n_blobs, want, 120000) == 0;
        printf("round %d: %d pushes stored, %ld relayed blobs received%s, %.1f s"
               " (hub CPU %.2f s)\n",
               round, n_push, n_blobs() - blobs0, relayed ? "" : " (fewer than expected)",
               (now_ms() - t0) / 1000.0, hub_cpu(hub_pid) - cpu0);
        hub_mem(hub_pid, round == 1 ? "after round 1:" : "after round 2:");
    }
    printf("clients still connected: %ld of %d\n", n_ready(), n_clients);
    for (int i = 0; i < n_clients; i++)
        kith_sync_client_free(M[i].c);
    kith_sync_loop_free(loop);
    free(M);
    free(ws_id);
    free(key);
    return 0;
}
