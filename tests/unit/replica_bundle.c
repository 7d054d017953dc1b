/*
 * The replica module without a hub: summaries round-trip and malformed
 * ones are refused; a bundle of this device's changes is encrypted (the
 * text does not appear in it), re-applying it changes nothing, and a
 * truncated, altered or foreign bundle is refused whole; sync with no
 * remote is a no-op that still writes .kith/sync-state.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"
#include "kith/replica.h"
#include "tt.h"

static char root[256];

static void put(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static kith_ws *make(const char *name)
{
    char dir[400];
    kith_ws *ws = NULL;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    if (kith_ws_init(dir, "tester", &ws) != KITH_OK) {
        kith_ws_close(ws);
        return NULL;
    }
    return ws;
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f)
        fclose(f);
    return n;
}

TT_TEST(summary_round_trip)
{
    kith_ws *ws = make("s");
    TT_ASSERT(ws);
    kith_replica *r = NULL;
    TT_OK(kith_replica_open(ws, &r));
    put(kith_ws_root(ws), "a.md", "one\n");
    kith_ws_result res;
    TT_OK(kith_ws_scan(ws, NULL, NULL, &res));
    char *s = NULL;
    TT_OK(kith_replica_summary(r, &s));
    TT_ASSERT(!strncmp(s, "kith-vv1:", 9));
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    TT_OK(kith_replica_summary_parse(s, &vv, &n));
    TT_EQ(n, 1);
    TT_EQ(vv[0].seq, 1);
    kith_free(vv);
    TT_OK(kith_replica_summary_parse("kith-vv1:", &vv, &n));
    TT_EQ(n, 0);
    kith_free(vv);
    static const char *bad[] = {"", "kith-vv2:", "kith-vv1:zz", "kith-vv1:,",
                                "kith-vv1:00000000000000000000000000000000000000000000000000000000"
                                "00000000.0",
                                "kith-vv1:00000000000000000000000000000000000000000000000000000000"
                                "00000000.1,"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        TT_EQ(kith_replica_summary_parse(bad[i], &vv, &n), KITH_ECORRUPT);
    kith_free(s);
    /* No remote: a sync does nothing and says so in the state file. */
    kith_replica_report rep;
    TT_OK(kith_replica_sync(r, 1000, &rep));
    TT_EQ(rep.remotes_ok + rep.remotes_failed, 0);
    char p[600], buf[4096];
    snprintf(p, sizeof p, "%s/.kith/sync-state.json", kith_ws_root(ws));
    size_t len = slurp(p, buf, sizeof buf - 1);
    buf[len] = 0;
    TT_ASSERT(strstr(buf, "\"online\":false"));
    TT_ASSERT(strstr(buf, "\"remotes\":[]"));
    kith_replica_close(r);
    kith_ws_close(ws);
}

TT_TEST(bundle_integrity)
{
    kith_ws *ws = make("b"), *other = make("o");
    TT_ASSERT(ws && other);
    kith_replica *r = NULL, *ro = NULL;
    TT_OK(kith_replica_open(ws, &r));
    TT_OK(kith_replica_open(other, &ro));
    put(kith_ws_root(ws), "a.md", "SECRET-TEXT-IN-A-BUNDLE\n");
    kith_ws_result res;
    TT_OK(kith_ws_scan(ws, NULL, NULL, &res));
    char path[400];
    snprintf(path, sizeof path, "%s/x.kb", root);
    TT_OK(kith_replica_bundle_create(r, path, NULL, 0));
    static char buf[1 << 16];
    size_t n = slurp(path, buf, sizeof buf);
    TT_ASSERT(n > 100);
    TT_ASSERT(!memmem(buf, n, "SECRET-TEXT", 11));
    kith_replica_report rep;
    /* This device holds every change in it already. */
    TT_OK(kith_replica_bundle_apply(r, path, &rep));
    TT_EQ(rep.pulled, 0);
    /* Another workspace's bundle. */
    TT_EQ(kith_replica_bundle_apply(ro, path, &rep), KITH_EINVAL);
    /* Truncated, or one byte changed anywhere: refused whole. */
    for (size_t cut = 0; cut < n; cut += 1 + n / 50) {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        TT_ASSERT(kith_replica_bundle_apply(r, path, &rep) != KITH_OK);
    }
    for (size_t i = 9; i < n; i += 1 + n / 40) {
        buf[i] ^= 0x40;
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        TT_ASSERT(kith_replica_bundle_apply(r, path, &rep) != KITH_OK);
        buf[i] ^= 0x40;
    }
    TT_EQ(kith_replica_bundle_apply(r, "/nonexistent/x.kb", &rep), KITH_EIO);
    TT_ASSERT(strstr(kith_replica_errmsg(r), "/nonexistent/x.kb"));
    kith_replica_close(r);
    kith_replica_close(ro);
    kith_ws_close(ws);
    kith_ws_close(other);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-replica-test", root, sizeof root);
}

TT_MAIN(TT_CASE(summary_round_trip), TT_CASE(bundle_integrity))
