/*
 * The store under contention and at its edges: a second handle waiting on
 * another's write lock gets KITH_EBUSY with a clear message after the busy
 * timeout (and succeeds once the lock is free), kith_ws_check passes on a
 * healthy store, and opening a folder that is no workspace says so.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kith/kith.h"
#include "tt.h"
#include "ws/ws_int.h"

static char root[256];

TT_TEST(busy_lock_times_out_clearly)
{
    kith_ws *a = NULL, *b = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/busy", root);
    TT_OK(kith_ws_init(dir, "Alice", &a));
    TT_OK(kith_ws_open(dir, &b));
    char p[400];
    snprintf(p, sizeof p, "%s/a.md", dir);
    FILE *f = fopen(p, "w");
    fputs("text\n", f);
    fclose(f);
    kith_ws_set_busy_timeout(b, 100);
    TT_OK(ws_begin(a)); /* a holds the write lock */
    kith_ws_result r;
    TT_EQ(kith_ws_scan(b, NULL, NULL, &r), KITH_EBUSY);
    TT_ASSERT(strstr(kith_ws_errmsg(b), "busy"));
    ws_rollback(a);
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    TT_EQ(r.files, 1);
    /* a sees what b recorded (its in-memory table reloads). */
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    TT_EQ(r.files, 0);
    TT_OK(kith_ws_check(a));
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(not_a_workspace)
{
    kith_ws *ws = NULL;
    TT_EQ(kith_ws_open(root, &ws), KITH_ENOTFOUND);
    TT_ASSERT(strstr(kith_ws_errmsg(ws), "not a kith workspace"));
    kith_ws_close(ws);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/twice", root);
    TT_OK(kith_ws_init(dir, NULL, &ws));
    kith_ws_close(ws);
    ws = NULL;
    TT_EQ(kith_ws_init(dir, NULL, &ws), KITH_EEXIST);
    kith_ws_close(ws);
}

TT_TEST(keys_and_init_as)
{
    kith_ws *ws = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/keys", root);
    TT_OK(kith_ws_init_as(dir, "Kim", "00112233445566778899aabbccddeeff", &ws));
    TT_STREQ(kith_ws_id(ws), "00112233445566778899aabbccddeeff");
    uint8_t pk[32], sk[64], key[32], key2[32];
    char hex[65];
    TT_OK(kith_ws_device_keys(ws, pk, sk));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", pk[i]);
    TT_STREQ(hex, kith_ws_device(ws));
    uint32_t epoch = 9;
    TT_OK(kith_ws_workspace_key(ws, &epoch, key));
    TT_EQ(epoch, 0);
    memset(key2, 0xab, sizeof key2);
    TT_OK(kith_ws_set_workspace_key(ws, 3, key2));
    TT_OK(kith_ws_workspace_key(ws, &epoch, key));
    TT_EQ(epoch, 3);
    TT_ASSERT(!memcmp(key, key2, 32));
    char path[400];
    struct stat st;
    snprintf(path, sizeof path, "%s/.kith/workspace-key", dir);
    TT_EQ(stat(path, &st), 0);
    TT_EQ(st.st_mode & 0777, 0600);
    kith_ws_close(ws);
    ws = NULL;
    snprintf(dir, sizeof dir, "%s/badid", root);
    TT_EQ(kith_ws_init_as(dir, "Kim", "nothex", &ws), KITH_EINVAL);
    kith_ws_close(ws);
}

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/kith-store-test-XXXXXX");
    if (!mkdtemp(root))
        abort();
    atexit(cleanup);
}

TT_MAIN(TT_CASE(busy_lock_times_out_clearly), TT_CASE(not_a_workspace), TT_CASE(keys_and_init_as))
