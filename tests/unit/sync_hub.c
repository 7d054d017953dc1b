/*
 * End to end against the real `kith hub` (started here as a child process
 * on 127.0.0.1, ephemeral port, temporary data folder): an owner registers
 * a workspace and adds a writer and a reader; they pull, push and get live
 * relays; a non-member is refused; a reader's push is refused; a tampered
 * blob is rejected and logged; duplicates and gaps are answered; a
 * malformed frame and a foreign protocol version close only that
 * connection; an invite admits one device once and not after expiry; a
 * snapshot replaces the history for a new device; a removed member is cut
 * off, its blobs up to the removal's cut-off still accepted and none beyond
 * (a cut-off below what the hub holds, and a plain REMOVE, are refused);
 * SIGTERM stops the hub with status 0; and the canary plaintext never
 * appears in the hub's files or log.
 *
 * The kith binary: $KITH, else "kith" next to this test binary (both are
 * built into the build folder's root). The tests share one hub and run in
 * order; a filter argument that skips the first one makes the rest fail.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kith/kith.h"
#include "kith/sync.h"
#include "sync/sync_int.h"
#include "tt.h"

#define CANARY "CANARY-b7e1-plaintext-that-must-never-reach-the-hub"

struct dev {
    uint8_t pk[32], sk[64];
};

struct cl {
    const char *name;
    kith_sync_client *c;
    struct dev *d;
    int ready, role, closed, closed_err, caught_up, n_snap;
    int pushes, push_ok, last_status, member_results, member_status, updates;
    char err[300], last_text[300];
    kith_vv *hub_vv, *held;
    uint8_t *wrapped;
    size_t wrapped_len;
    char text[8192]; /* every opened plaintext, in arrival order, ';'-joined */
    int n_rx;
};

static struct {
    pid_t pid;
    char dir[256], data[300], log[300], url[64];
    uint8_t fp[32];
    kith_sync_loop *loop;
    uint8_t ws[16], key[32], genesis[32];
    struct dev own, wri, rea, out, joi, joi2;
    struct cl o, w, r;
    uint64_t o_seq, w_seq;
} H;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- callbacks ----------------------------------------------------------------------- */

static void cb_ready(void *ud, kith_sync_client *c, int role, const kith_members *m,
                     const uint8_t *wrapped, size_t wl)
{
    struct cl *k = ud;
    k->ready = 1;
    k->role = role;
    if (wl) {
        k->wrapped = malloc(wl);
        memcpy(k->wrapped, wrapped, wl);
        k->wrapped_len = wl;
    }
}

static void cb_hub_vv(void *ud, kith_sync_client *c, const kith_vv *hub)
{
    struct cl *k = ud;
    kith_vv_free(k->hub_vv);
    if (kith_vv_new(&k->hub_vv) != KITH_OK)
        abort();
    for (size_t i = 0; i < kith_vv_count(hub); i++)
        if (kith_vv_set(k->hub_vv, kith_vv_author(hub, i), kith_vv_seq(hub, i)) != KITH_OK)
            abort();
}

/* What a member does with a blob: verify, check order, decrypt, keep. */
static void take_blob(struct cl *k, const uint8_t *blob, size_t len)
{
    kith_blob_info info;
    uint8_t *pt = NULL;
    size_t pl = 0;
    if (kith_blob_open(blob, len, H.ws, H.key, &info, &pt, &pl) != KITH_OK) {
        snprintf(k->err, sizeof k->err, "blob does not open");
        return;
    }
    if (kith_vv_check(k->held, info.author, info.seq) == KITH_SEQ_NEXT) {
        if (kith_vv_set(k->held, info.author, info.seq) != KITH_OK)
            abort();
        size_t tl = strlen(k->text);
        snprintf(k->text + tl, sizeof k->text - tl, "%.*s;", (int)pl, (const char *)pt);
        k->n_rx++;
    }
    kith_free(pt);
}

static void cb_blob(void *ud, kith_sync_client *c, const uint8_t *blob, size_t len)
{
    take_blob(ud, blob, len);
}

static void cb_snapshot(void *ud, kith_sync_client *c, const kith_vv *covers, const uint8_t *blob,
                        size_t len)
{
    struct cl *k = ud;
    k->n_snap++;
    uint8_t *pt = NULL;
    size_t pl = 0;
    kith_blob_info info;
    if (kith_blob_open(blob, len, H.ws, H.key, &info, &pt, &pl) == KITH_OK) {
        snprintf(k->text, sizeof k->text, "snap[%.*s];", (int)pl, (const char *)pt);
        for (size_t i = 0; i < kith_vv_count(covers); i++)
            if (kith_vv_set(k->held, kith_vv_author(covers, i), kith_vv_seq(covers, i)))
                abort();
    }
    kith_free(pt);
}

static void cb_caught_up(void *ud, kith_sync_client *c)
{
    ((struct cl *)ud)->caught_up++;
}

static void cb_push_result(void *ud, kith_sync_client *c, const uint8_t *author, uint64_t seq,
                           int status, const char *text)
{
    struct cl *k = ud;
    k->pushes++;
    k->push_ok += status == KITH_OK;
    k->last_status = status;
    snprintf(k->last_text, sizeof k->last_text, "%s", text);
}

static void cb_member_op(void *ud, kith_sync_client *c, int status, const char *text,
                         const kith_members *m)
{
    struct cl *k = ud;
    k->updates++;
    k->member_status = status;
    snprintf(k->last_text, sizeof k->last_text, "%s", text);
}

static void cb_closed(void *ud, kith_sync_client *c, int err, const char *msg)
{
    struct cl *k = ud;
    k->closed = 1;
    k->closed_err = err;
    snprintf(k->err, sizeof k->err, "%s", msg);
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void run_until_(int *flag, int want, int timeout_ms, int line)
{
    uint64_t t0 = now_ms(), end = t0 + (uint64_t)timeout_ms;
    while (*flag < want && now_ms() < end)
        if (kith_sync_loop_run(H.loop, 10) != KITH_OK)
            return;
    if (getenv("KITH_TIMING") && now_ms() - t0 > 100)
        fprintf(stderr, "  line %d waited %llu ms\n", line, (unsigned long long)(now_ms() - t0));
}
#define run_until(f, w, t) run_until_(f, w, t, __LINE__)

static void run_for(int ms)
{
    if (kith_sync_loop_run(H.loop, ms) != KITH_OK)
        abort();
}

static int connect_cl(struct cl *k, const char *name, struct dev *d, enum kith_sync_mode mode,
                      const uint8_t *gop, size_t gl, const uint8_t *cap)
{
    kith_vv_free(k->held);
    kith_vv_free(k->hub_vv);
    free(k->wrapped);
    memset(k, 0, sizeof *k);
    k->name = name;
    k->d = d;
    if (kith_vv_new(&k->held))
        abort();
    kith_sync_client_opts o = {.size = sizeof o};
    o.url = H.url;
    o.fingerprint = H.fp;
    memcpy(o.ws_id, H.ws, 16);
    o.device_sk = d->sk;
    o.mode = mode;
    o.genesis_op = gop;
    o.genesis_op_len = gl;
    o.cap_seed = cap;
    o.genesis = mode == KITH_SYNC_REGISTER ? NULL : H.genesis;
    o.cb = (kith_sync_callbacks){cb_ready,       cb_hub_vv,   cb_blob,   cb_snapshot,
                                 cb_caught_up,   cb_push_result, cb_member_op, cb_closed};
    o.ud = k;
    return kith_sync_client_new(H.loop, &o, &k->c);
}

static void drop_cl(struct cl *k)
{
    kith_sync_client_free(k->c);
    k->c = NULL;
    kith_vv_free(k->held);
    kith_vv_free(k->hub_vv);
    free(k->wrapped);
    k->held = k->hub_vv = NULL;
    k->wrapped = NULL;
}

static int push(struct cl *k, struct dev *author, uint64_t seq, const char *text, int tamper)
{
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = kith_blob_seal(KITH_BLOB_CHANGE, H.ws, author->sk, seq, 0, H.key,
                            (const uint8_t *)text, strlen(text), &b, &n);
    if (rc)
        return rc;
    if (tamper)
        b[n / 2] ^= 0x20;
    int want = k->pushes + 1;
    rc = kith_sync_client_push(k->c, b, n);
    kith_free(b);
    if (rc == KITH_OK)
        run_until(&k->pushes, want, 3000);
    return rc == KITH_OK && k->pushes == want ? k->last_status : KITH_ECANCELED;
}

static int member_op(struct cl *k, uint8_t *op, size_t len, const uint8_t *w, size_t wl)
{
    int want = k->updates + 1;
    int rc = kith_sync_client_member_op(k->c, op, len, w, wl);
    kith_free(op);
    if (rc)
        return rc;
    run_until(&k->updates, want, 3000);
    return k->updates == want ? k->member_status : KITH_ECANCELED;
}

static int hello(struct cl *k, int want_snapshot)
{
    int want = k->caught_up + 1;
    int rc = kith_sync_client_hello(k->c, k->held, want_snapshot);
    if (rc)
        return rc;
    run_until(&k->caught_up, want, 3000);
    return k->caught_up == want ? KITH_OK : KITH_ECANCELED;
}

static int log_has(const char *needle)
{
    FILE *f = fopen(H.log, "r");
    if (!f)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void kith_path(char *buf, size_t cap)
{
    const char *env = getenv("KITH");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return;
    }
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(buf, cap, "%s/kith", dirname(self));
}

/* ---- tests ----------------------------------------------------------------------------- */

TT_TEST(test_start_hub)
{
    char kith[1100];
    kith_path(kith, sizeof kith);
    TT_ASSERT(access(kith, X_OK) == 0);
    snprintf(H.dir, sizeof H.dir, "/tmp/kith-hub-test-XXXXXX");
    TT_ASSERT(mkdtemp(H.dir) != NULL);
    snprintf(H.data, sizeof H.data, "%s/data", H.dir);
    snprintf(H.log, sizeof H.log, "%s/hub.log", H.dir);
    int pfd[2];
    TT_ASSERT(pipe(pfd) == 0);
    H.pid = fork();
    TT_ASSERT(H.pid >= 0);
    if (H.pid == 0) {
        int lfd = open(H.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(pfd[1], 1);
        dup2(lfd, 2);
        close(pfd[0]);
        execl(kith, "kith", "hub", "--listen", "127.0.0.1:0", "--data", H.data,
              "--max-blob", "65536", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[256];
    size_t n = 0;
    struct pollfd p = {pfd[0], POLLIN, 0};
    while (n < sizeof line - 1 && poll(&p, 1, 10000) == 1) {
        ssize_t r = read(pfd[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = 0;
    close(pfd[0]);
    int port = 0;
    char fp[80];
    TT_EQ(sscanf(line, "hub: wss://127.0.0.1:%d fingerprint %79s", &port, fp), 2);
    TT_ASSERT(port > 0);
    TT_OK(kith_fingerprint_parse(fp, H.fp));
    snprintf(H.url, sizeof H.url, "wss://127.0.0.1:%d", port);

    kith_sync_loop_opts lo = {.size = sizeof lo};
    TT_OK(kith_sync_loop_new(&lo, &H.loop));
    randombytes_buf(H.ws, 16);
    randombytes_buf(H.key, 32);
    struct dev *ds[] = {&H.own, &H.wri, &H.rea, &H.out, &H.joi, &H.joi2};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        TT_OK(kith_device_keygen(ds[i]->pk, ds[i]->sk));
}

TT_TEST(test_register_and_members)
{
    uint8_t *g = NULL, *op = NULL;
    size_t gl = 0, len = 0;
    TT_OK(kith_member_op_genesis(H.ws, H.own.sk, now_ms(), &g, &gl));
    sync_hash(g, gl, H.genesis);
    TT_OK(connect_cl(&H.o, "owner", &H.own, KITH_SYNC_REGISTER, g, gl, NULL));
    kith_free(g);
    run_until(&H.o.ready, 1, 5000);
    TT_ASSERT(H.o.ready);
    TT_EQ(H.o.role, KITH_ROLE_OWNER);
    const kith_members *m = kith_sync_client_members(H.o.c);
    TT_ASSERT(!memcmp(kith_members_genesis(m), H.genesis, 32));
    TT_OK(kith_member_op_add(m, H.own.sk, H.wri.pk, KITH_ROLE_WRITER, now_ms(), &op, &len));
    TT_OK(member_op(&H.o, op, len, NULL, 0));
    m = kith_sync_client_members(H.o.c);
    TT_OK(kith_member_op_add(m, H.own.sk, H.rea.pk, KITH_ROLE_READER, now_ms(), &op, &len));
    TT_OK(member_op(&H.o, op, len, NULL, 0));
    TT_EQ(kith_members_count(kith_sync_client_members(H.o.c)), 3);
    /* a second registration of the same id is refused */
    struct cl dup;
    memset(&dup, 0, sizeof dup);
    TT_OK(kith_member_op_genesis(H.ws, H.out.sk, now_ms(), &g, &gl));
    TT_OK(connect_cl(&dup, "dup", &H.out, KITH_SYNC_REGISTER, g, gl, NULL));
    kith_free(g);
    run_until(&dup.closed, 1, 5000);
    TT_ASSERT(dup.closed && !dup.ready);
    TT_ASSERT(strstr(dup.err, "already registered"));
    drop_cl(&dup);
}

TT_TEST(test_push_pull_relay)
{
    char t[64];
    for (int i = 1; i <= 3; i++) {
        snprintf(t, sizeof t, "%s-o%d", CANARY, i);
        TT_OK(push(&H.o, &H.own, ++H.o_seq, t, 0));
    }
    TT_OK(connect_cl(&H.w, "writer", &H.wri, KITH_SYNC_MEMBER, NULL, 0, NULL));
    TT_OK(connect_cl(&H.r, "reader", &H.rea, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&H.w.ready, 1, 5000);
    run_until(&H.r.ready, 1, 5000);
    TT_EQ(H.w.role, KITH_ROLE_WRITER);
    TT_EQ(H.r.role, KITH_ROLE_READER);
    TT_OK(hello(&H.w, 0));
    TT_OK(hello(&H.r, 0));
    TT_OK(hello(&H.o, 0));
    TT_EQ(H.w.n_rx, 3);
    TT_EQ(H.r.n_rx, 3);
    TT_EQ(H.o.n_rx, 3); /* the owner's own blobs come back: it sent an empty vector */
    TT_EQ(kith_vv_get(H.w.hub_vv, H.own.pk), 3);
    TT_ASSERT(strstr(H.w.text, CANARY "-o3;"));
    /* live relay: both others get it at once, without a new hello */
    TT_OK(push(&H.o, &H.own, ++H.o_seq, "o4", 0));
    run_until(&H.w.n_rx, 4, 3000);
    run_until(&H.r.n_rx, 4, 3000);
    TT_EQ(H.w.n_rx, 4);
    TT_EQ(H.r.n_rx, 4);
    TT_OK(push(&H.w, &H.wri, ++H.w_seq, "w1", 0));
    run_until(&H.o.n_rx, 4, 3000); /* its own o4 is not echoed */
    run_until(&H.r.n_rx, 5, 3000);
    TT_ASSERT(strstr(H.o.text, "w1;"));
    TT_ASSERT(strstr(H.r.text, "o4;w1;"));
    TT_EQ(H.w.n_rx, 4); /* not echoed to its sender */
}

TT_TEST(test_refusals)
{
    /* a reader's push */
    TT_EQ(push(&H.r, &H.rea, 1, "r1", 0), KITH_EPERM);
    TT_ASSERT(log_has("readers may not push"));
    /* a writer relaying a blob a reader authored */
    TT_EQ(push(&H.w, &H.rea, 1, "r1", 0), KITH_EPERM);
    /* tampered */
    int before = H.r.n_rx;
    TT_EQ(push(&H.w, &H.wri, H.w_seq + 1, "w2", 1), KITH_EAUTH);
    TT_ASSERT(log_has("bad signature"));
    TT_OK(push(&H.w, &H.wri, ++H.w_seq, "w2", 0)); /* the honest one still goes */
    run_until(&H.r.n_rx, before + 1, 3000);
    /* duplicate: acknowledged, not relayed again */
    TT_OK(push(&H.o, &H.own, 2, "o2-again", 0));
    TT_STREQ(H.o.last_text, "already held");
    /* gap */
    TT_EQ(push(&H.o, &H.own, H.o_seq + 2, "o-gap", 0), KITH_EMISSING);
    /* too big (the hub runs with --max-blob 65536) */
    static char big[70000];
    memset(big, 'x', sizeof big - 1);
    TT_EQ(push(&H.w, &H.wri, H.w_seq + 1, big, 0), KITH_ETOOBIG);
    run_for(50);
    TT_EQ(H.r.n_rx, before + 1); /* only w2 arrived */
    /* a non-member */
    struct cl x;
    memset(&x, 0, sizeof x);
    TT_OK(connect_cl(&x, "outsider", &H.out, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&x.closed, 1, 5000);
    TT_ASSERT(x.closed && !x.ready);
    TT_ASSERT(strstr(x.err, "not a member"));
    TT_ASSERT(log_has("not a member"));
    drop_cl(&x);
    /* a wrong pin */
    uint8_t fp[32];
    memcpy(fp, H.fp, 32);
    H.fp[0] ^= 1;
    memset(&x, 0, sizeof x);
    TT_OK(connect_cl(&x, "mitm", &H.wri, KITH_SYNC_MEMBER, NULL, 0, NULL));
    memcpy(H.fp, fp, 32);
    run_until(&x.closed, 1, 5000);
    TT_ASSERT(x.closed && !x.ready);
    TT_ASSERT(strstr(x.err, "does not match the pinned"));
    drop_cl(&x);
}

TT_TEST(test_malformed_and_version)
{
    struct cl x;
    memset(&x, 0, sizeof x);
    TT_OK(connect_cl(&x, "fuzzer", &H.wri, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&x.ready, 1, 5000);
    TT_ASSERT(x.ready);
    static const uint8_t junk[] = {'k', 's', 1, SYNC_PUSH, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 1};
    TT_OK(sync_client_send_raw(x.c, junk, sizeof junk));
    run_until(&x.closed, 1, 5000);
    TT_ASSERT(x.closed);
    TT_ASSERT(strstr(x.err, "malformed frame"));
    TT_ASSERT(log_has("malformed frame"));
    drop_cl(&x);

    memset(&x, 0, sizeof x);
    TT_OK(connect_cl(&x, "future", &H.wri, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&x.ready, 1, 5000);
    static const uint8_t v2[] = {'k', 's', 2, SYNC_CAUGHT_UP, 0, 0, 0, 0};
    TT_OK(sync_client_send_raw(x.c, v2, sizeof v2));
    run_until(&x.closed, 1, 5000);
    TT_ASSERT(strstr(x.err, "protocol version 2 not supported"));
    TT_ASSERT(log_has("protocol version 2 not supported"));
    drop_cl(&x);

    /* everyone else is still served */
    TT_OK(push(&H.o, &H.own, ++H.o_seq, "o5", 0));
    run_until(&H.r.n_rx, 7, 3000);
    TT_ASSERT(strstr(H.r.text, "o5;"));
    TT_ASSERT(!H.w.closed && !H.r.closed && !H.o.closed);
}

static int invite(kith_invite *inv, int role, uint64_t expires)
{
    memset(inv, 0, sizeof *inv);
    kith_invite_random(inv);
    snprintf(inv->hub_url, sizeof inv->hub_url, "%s", H.url);
    memcpy(inv->fingerprint, H.fp, 32);
    memcpy(inv->ws_id, H.ws, 16);
    memcpy(inv->genesis, H.genesis, 32);
    uint8_t cap_pk[32], *op = NULL, *w = NULL;
    size_t len, wl;
    kith_invite_cap_pk(inv->cap_seed, cap_pk);
    kith_ws_key k = {0, {0}};
    memcpy(k.key, H.key, 32);
    int rc = kith_invite_wrap(inv->invite_key, H.ws, cap_pk, &k, 1, &w, &wl);
    if (rc == KITH_OK)
        rc = kith_member_op_invite(kith_sync_client_members(H.o.c), H.own.sk, cap_pk, role,
                                   expires, now_ms(), &op, &len);
    if (rc == KITH_OK)
        rc = member_op(&H.o, op, len, w, wl);
    kith_free(w);
    return rc;
}

TT_TEST(test_invite_join)
{
    kith_invite inv, got;
    TT_OK(invite(&inv, KITH_ROLE_WRITER, now_ms() + 3600 * 1000));
    run_until(&H.w.updates, 1, 2000); /* others hear of the invite op */
    TT_EQ(H.w.updates, 1);
    char *link = NULL;
    TT_OK(kith_invite_encode(&inv, &link));
    TT_OK(kith_invite_parse(link, &got));
    kith_free(link);
    TT_STREQ(got.hub_url, H.url);

    struct cl j;
    memset(&j, 0, sizeof j);
    TT_OK(connect_cl(&j, "joiner", &H.joi, KITH_SYNC_JOIN, NULL, 0, got.cap_seed));
    run_until(&j.ready, 1, 5000);
    TT_ASSERT(j.ready);
    TT_EQ(j.role, KITH_ROLE_WRITER);
    uint8_t cap_pk[32];
    kith_invite_cap_pk(got.cap_seed, cap_pk);
    kith_ws_key *keys = NULL;
    size_t nk = 0;
    TT_OK(kith_invite_unwrap(got.invite_key, got.ws_id, cap_pk, j.wrapped, j.wrapped_len, &keys,
                             &nk));
    TT_EQ(nk, 1);
    TT_ASSERT(!memcmp(keys[0].key, H.key, 32));
    kith_free(keys);
    TT_OK(hello(&j, 0));
    TT_EQ(j.n_rx, kith_vv_get(j.hub_vv, H.own.pk) + kith_vv_get(j.hub_vv, H.wri.pk));
    TT_ASSERT(strstr(j.text, CANARY "-o1;"));
    run_until(&H.o.updates, 4, 2000); /* the owner sees the join */
    TT_EQ(kith_members_role(kith_sync_client_members(H.o.c), H.joi.pk), KITH_ROLE_WRITER);
    drop_cl(&j);

    /* the link works once */
    memset(&j, 0, sizeof j);
    TT_OK(connect_cl(&j, "again", &H.joi2, KITH_SYNC_JOIN, NULL, 0, got.cap_seed));
    run_until(&j.closed, 1, 5000);
    TT_ASSERT(!j.ready && strstr(j.err, "already used"));
    drop_cl(&j);

    /* an expired invite */
    TT_OK(invite(&inv, KITH_ROLE_READER, now_ms() - 1));
    memset(&j, 0, sizeof j);
    TT_OK(connect_cl(&j, "late", &H.joi2, KITH_SYNC_JOIN, NULL, 0, inv.cap_seed));
    run_until(&j.closed, 1, 5000);
    TT_ASSERT(!j.ready && strstr(j.err, "expired"));
    drop_cl(&j);

    /* a made-up capability */
    uint8_t fake[32];
    randombytes_buf(fake, 32);
    memset(&j, 0, sizeof j);
    TT_OK(connect_cl(&j, "guess", &H.joi2, KITH_SYNC_JOIN, NULL, 0, fake));
    run_until(&j.closed, 1, 5000);
    TT_ASSERT(!j.ready && strstr(j.err, "no such invite"));
    drop_cl(&j);
}

TT_TEST(test_snapshot)
{
    kith_vv *cov = NULL;
    TT_OK(kith_vv_new(&cov));
    TT_OK(kith_vv_set(cov, H.own.pk, H.o_seq));
    TT_OK(kith_vv_set(cov, H.wri.pk, H.w_seq));
    uint8_t *b = NULL;
    size_t n = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_SNAPSHOT, H.ws, H.wri.sk, 1, 0, H.key,
                         (const uint8_t *)"everything", 10, &b, &n));
    int want = H.w.pushes + 1;
    TT_OK(kith_sync_client_snapshot(H.w.c, cov, b, n));
    kith_free(b);
    kith_vv_free(cov);
    run_until(&H.w.pushes, want, 3000);
    TT_OK(H.w.last_status);
    TT_OK(push(&H.o, &H.own, ++H.o_seq, "after-snap", 0));
    /* a fresh device of the reader asks for the snapshot */
    drop_cl(&H.r);
    TT_OK(connect_cl(&H.r, "reader2", &H.rea, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&H.r.ready, 1, 5000);
    TT_OK(hello(&H.r, 1));
    TT_EQ(H.r.n_snap, 1);
    TT_STREQ(H.r.text, "snap[everything];after-snap;");
}

TT_TEST(test_remove)
{
    uint8_t *op = NULL;
    size_t len;
    uint64_t last = 0;
    int was = 0;
    /* a new plain REMOVE (it names no cut-off) is refused */
    TT_OK(kith_member_op_remove(kith_sync_client_members(H.o.c), H.own.sk, H.wri.pk, H.w_seq,
                                now_ms(), &op, &len));
    op[1] = KITH_MOP_REMOVE;
    unsigned char msg[14 + 122];
    memcpy(msg, "kith-member-v1", 14);
    memcpy(msg + 14, op, 122);
    crypto_sign_detached(op + 122, NULL, msg, sizeof msg, H.own.sk);
    TT_EQ(member_op(&H.o, op, 186, NULL, 0), KITH_EINVAL);
    TT_ASSERT(strstr(H.o.last_text, "REMOVE_AT"));
    /* a cut-off below what the hub holds of the device is refused */
    TT_OK(kith_member_op_remove(kith_sync_client_members(H.o.c), H.own.sk, H.wri.pk,
                                H.w_seq - 1, now_ms(), &op, &len));
    TT_EQ(member_op(&H.o, op, len, NULL, 0), KITH_EINVAL);
    TT_ASSERT(strstr(H.o.last_text, "cut-off"));
    TT_EQ(kith_members_role(kith_sync_client_members(H.o.c), H.wri.pk), KITH_ROLE_WRITER);
    /* the owner accepts one more than the hub has: the cut-off */
    TT_OK(kith_member_op_remove(kith_sync_client_members(H.o.c), H.own.sk, H.wri.pk,
                                H.w_seq + 1, now_ms(), &op, &len));
    TT_OK(member_op(&H.o, op, len, NULL, 0));
    TT_EQ(kith_members_epoch(kith_sync_client_members(H.o.c)), 1);
    TT_OK(kith_members_cutoff(kith_sync_client_members(H.o.c), H.wri.pk, &last, &was));
    TT_EQ(last, H.w_seq + 1);
    run_until(&H.w.closed, 1, 3000);
    TT_ASSERT(H.w.closed);
    TT_ASSERT(strstr(H.w.err, "removed"));
    drop_cl(&H.w);
    TT_OK(connect_cl(&H.w, "removed", &H.wri, KITH_SYNC_MEMBER, NULL, 0, NULL));
    run_until(&H.w.closed, 1, 5000);
    TT_ASSERT(!H.w.ready && strstr(H.w.err, "not a member"));
    drop_cl(&H.w);
    /* Its blobs up to the cut-off stay valid (another member may push
     * them); beyond it the hub refuses them and says so in its log. */
    TT_OK(push(&H.o, &H.wri, H.w_seq + 1, "removed-in-flight", 0));
    TT_EQ(push(&H.o, &H.wri, H.w_seq + 2, "removed-beyond", 0), KITH_EPERM);
    TT_ASSERT(log_has("seq beyond its cut-off"));
    H.w_seq++;
}

/* Reads every file under @dir looking for @needle. */
static int dir_has(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        found = memmem(buf, n, needle, strlen(needle)) != NULL;
    }
    if (d)
        closedir(d);
    return found;
}

TT_TEST(test_sigterm_and_canary)
{
    drop_cl(&H.o);
    drop_cl(&H.r);
    run_for(50);
    kith_sync_loop_free(H.loop);
    H.loop = NULL;
    /* while the hub runs, the WAL holds the newest blobs: check it too */
    TT_ASSERT(!dir_has(H.data, CANARY));
    TT_ASSERT(dir_has(H.data, "SQLite format 3"));
    TT_ASSERT(kill(H.pid, SIGTERM) == 0);
    int st = 0;
    uint64_t end = now_ms() + 5000;
    pid_t r;
    while ((r = waitpid(H.pid, &st, WNOHANG)) == 0 && now_ms() < end)
        usleep(10000);
    if (r == 0)
        kill(H.pid, SIGKILL), waitpid(H.pid, &st, 0);
    TT_EQ(r, H.pid);
    TT_ASSERT(WIFEXITED(st));
    TT_EQ(WEXITSTATUS(st), 0);
    TT_ASSERT(log_has("hub stopped"));
    TT_ASSERT(!dir_has(H.data, CANARY));
    TT_ASSERT(!dir_has(H.dir, CANARY)); /* the log */
    char wal[400];
    snprintf(wal, sizeof wal, "%s/hub.db-wal", H.data);
    TT_ASSERT(access(wal, F_OK) != 0); /* closed cleanly: WAL checkpointed and removed */
    if (!tt_failed_current && !getenv("KITH_KEEP")) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", H.dir);
        TT_EQ(system(cmd), 0);
    } else {
        fprintf(stderr, "  hub folder kept: %s\n", H.dir);
    }
}

TT_MAIN(TT_CASE(test_start_hub), TT_CASE(test_register_and_members),
        TT_CASE(test_push_pull_relay), TT_CASE(test_refusals), TT_CASE(test_malformed_and_version),
        TT_CASE(test_invite_join), TT_CASE(test_snapshot), TT_CASE(test_remove),
        TT_CASE(test_sigterm_and_canary))
