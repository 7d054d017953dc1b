/*
 * The store under contention and at its edges: a second handle waiting on
 * another's write lock gets KITH_EBUSY with a clear message after the busy
 * timeout (and succeeds once the lock is free), kith_ws_check passes on a
 * healthy store, and opening a folder that is no workspace says so.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* The user saves a file in the instant between a merge's commit and the
 * write of the merged text: the save must not be lost, nor the merge. */
static void user_saves(void *ctx)
{
    FILE *f = fopen((const char *)ctx, "w");
    if (f) {
        fputs("zero\none\ntwo\n", f);
        fclose(f);
    }
}

static uint8_t grab_author[32];
static uint64_t grab_seq;

static int grab(const uint8_t author[32], uint64_t seq, const uint8_t *payload, size_t len,
                void *ctx)
{
    uint8_t **p = ctx;
    memcpy(grab_author, author, 32);
    grab_seq = seq;
    *p = malloc(len + sizeof(size_t));
    memcpy(*p, &len, sizeof len);
    memcpy(*p + sizeof len, payload, len);
    return 1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Writes @text to @path the way editors and sed -i do: a new file renamed
 * over the old one. */
static void save_by_rename(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.swp", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    if (rename(tmp, path))
        abort();
}

/* Two replicas of one workspace in @name-a and @name-b under root: Alice's
 * records x.md ("one\ntwo\n"), Bob's joins from it. @da, @db (300 bytes)
 * and @fa (400) get the folders and Alice's x.md. 1, or 0 on failure. */
static int two_replicas(const char *name, kith_ws **a, kith_ws **b, char *da, char *db, char *fa)
{
    uint8_t *exp = NULL;
    size_t elen = 0;
    kith_ws_result r;
    snprintf(da, 300, "%s/%s-a", root, name);
    snprintf(db, 300, "%s/%s-b", root, name);
    snprintf(fa, 400, "%s/x.md", da);
    if (kith_ws_init(da, "Alice", a))
        return 0;
    save_by_rename(fa, "one\ntwo\n");
    int ok = !kith_ws_scan(*a, NULL, NULL, &r) && !kith_ws_export(*a, &exp, &elen) &&
             !kith_ws_join(db, "Bob", exp, elen, b);
    kith_free(exp);
    return ok;
}

TT_TEST(save_during_merge_write_is_kept)
{
    char da[300], db[300], fa[400], fb[400];
    kith_ws *a = NULL, *b = NULL;
    TT_ASSERT(two_replicas("race", &a, &b, da, db, fa));
    FILE *f;
    kith_ws_result r;
    f = fopen(fa, "w");
    fputs("one\ntwo\nthree\n", f);
    fclose(f);
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    uint8_t *payload = NULL;
    TT_OK(kith_ws_vv(b, &vv, &n));
    TT_OK(kith_ws_changes_since(a, vv, n, grab, &payload));
    kith_free(vv);
    TT_ASSERT(payload);
    size_t plen;
    memcpy(&plen, payload, sizeof plen);
    snprintf(fb, sizeof fb, "%s/x.md", db);
    b->test_before_writes = user_saves;
    b->test_ctx = fb;
    TT_OK(kith_ws_apply_change_from(b, grab_author, grab_seq, payload + sizeof plen, plen, NULL,
                                    NULL, &r));
    b->test_before_writes = NULL;
    free(payload);
    char *text = slurp(fb);
    TT_STREQ(text, "zero\none\ntwo\nthree\n");
    free(text);
    char *rec = NULL;
    size_t rlen = 0;
    TT_OK(kith_ws_cat(b, fb, NULL, &rec, &rlen));
    TT_STREQ(rec, "zero\none\ntwo\nthree\n");
    kith_free(rec);
    TT_OK(kith_ws_check(b));
    kith_ws_close(a);
    kith_ws_close(b);
}

static void crash(void *ctx)
{
    (void)ctx;
    _exit(0); /* after the merge's commit, before its files are written */
}

/* A merge commits, then the process dies before writing the file; the user
 * saves over the old file; the next scan keeps both the save and what
 * arrived. */
TT_TEST(save_after_crash_before_merge_write_is_kept)
{
    char da[300], db[300], fa[400], fb[400];
    kith_ws *a = NULL, *b = NULL;
    TT_ASSERT(two_replicas("crash", &a, &b, da, db, fa));
    FILE *f;
    kith_ws_result r;
    f = fopen(fa, "w");
    fputs("one\ntwo\nthree\n", f);
    fclose(f);
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    uint8_t *payload = NULL;
    TT_OK(kith_ws_vv(b, &vv, &n));
    TT_OK(kith_ws_changes_since(a, vv, n, grab, &payload));
    kith_free(vv);
    TT_ASSERT(payload);
    size_t plen;
    memcpy(&plen, payload, sizeof plen);
    kith_ws_close(b);
    pid_t pid = fork();
    if (pid == 0) { /* its own connection, as another process has */
        kith_ws *c = NULL;
        if (kith_ws_open(db, &c))
            _exit(2);
        c->test_before_writes = crash;
        if (kith_ws_apply_change_from(c, grab_author, grab_seq, payload + sizeof plen, plen, NULL,
                                      NULL, &r))
            _exit(4);
        _exit(3); /* the hook did not run */
    }
    int status = 0;
    TT_ASSERT(pid > 0 && waitpid(pid, &status, 0) == pid);
    TT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(payload);
    snprintf(fb, sizeof fb, "%s/x.md", db);
    char *text = slurp(fb);
    TT_STREQ(text, "one\ntwo\n"); /* the merge never reached the file */
    free(text);
    f = fopen(fb, "w");
    fputs("zero\none\ntwo\n", f);
    fclose(f);
    TT_OK(kith_ws_open(db, &b));
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    text = slurp(fb);
    TT_STREQ(text, "zero\none\ntwo\nthree\n");
    free(text);
    char *rec = NULL;
    size_t rlen = 0;
    TT_OK(kith_ws_cat(b, fb, NULL, &rec, &rlen));
    TT_STREQ(rec, "zero\none\ntwo\nthree\n");
    kith_free(rec);
    TT_OK(kith_ws_check(b));
    kith_ws_close(a);
    kith_ws_close(b);
}

/* One replica's change, applied on another (the daemon's path). */
static int deliver(kith_ws *from, kith_ws *to)
{
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    uint8_t *payload = NULL;
    kith_ws_result r;
    int rc = kith_ws_vv(to, &vv, &n);
    if (!rc)
        rc = kith_ws_changes_since(from, vv, n, grab, &payload);
    kith_free(vv);
    size_t plen = 0;
    if (!rc && payload) {
        memcpy(&plen, payload, sizeof plen);
        rc = kith_ws_apply_change_from(to, grab_author, grab_seq, payload + sizeof plen, plen, NULL,
                                       NULL, &r);
    }
    free(payload);
    return rc;
}

/* An editor read the file, kith replaced it with a merge, the editor saved
 * its buffer: the save is an edit made before the merge, and what arrived
 * stays. A save made on the merged text is taken as it is. */
TT_TEST(save_from_a_buffer_older_than_the_merge_is_kept)
{
    char da[300], db[300], fa[400], fb[400];
    kith_ws *a = NULL, *b = NULL;
    TT_ASSERT(two_replicas("stale", &a, &b, da, db, fa));
    snprintf(fb, sizeof fb, "%s/x.md", db);
    kith_ws_result r;

    /* b's editor holds "one\ntwo\n"; alice's line arrives and is written */
    save_by_rename(fa, "one\ntwo\nthree\n");
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    TT_OK(deliver(a, b));
    char *text = slurp(fb);
    TT_STREQ(text, "one\ntwo\nthree\n");
    free(text);
    save_by_rename(fb, "zero\none\ntwo\n"); /* the stale buffer, edited */
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    text = slurp(fb);
    TT_STREQ(text, "zero\none\ntwo\nthree\n");
    free(text);
    char *rec = NULL;
    size_t rlen = 0;
    TT_OK(kith_ws_cat(b, fb, NULL, &rec, &rlen));
    TT_STREQ(rec, "zero\none\ntwo\nthree\n");
    kith_free(rec);
    /* the same buffer saved again (the editor did not reload): still kept */
    save_by_rename(fb, "zero\none\ntwo\nzwei\n");
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    text = slurp(fb);
    /* two lines typed at one place apart: the CRDT orders them by agent */
    TT_ASSERT(!strcmp(text, "zero\none\ntwo\nzwei\nthree\n") ||
              !strcmp(text, "zero\none\ntwo\nthree\nzwei\n"));
    bool zwei_first = !strcmp(text, "zero\none\ntwo\nzwei\nthree\n");
    free(text);

    /* an edit of the merged text is what it says, a deletion included */
    save_by_rename(fa, "one\nmid\ntwo\nthree\n");
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    TT_OK(deliver(a, b));
    text = slurp(fb);
    TT_STREQ(text, zwei_first ? "zero\none\nmid\ntwo\nzwei\nthree\n"
                              : "zero\none\nmid\ntwo\nthree\nzwei\n");
    free(text);
    save_by_rename(fb, "zero\none\nmid\ntwo\nthree\n"); /* bob drops "zwei" */
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    text = slurp(fb);
    TT_STREQ(text, "zero\none\nmid\ntwo\nthree\n");
    free(text);
    TT_OK(kith_ws_check(b));
    kith_ws_close(a);
    kith_ws_close(b);
}

/* A process opened the file to append (a shell's >>) just before kith
 * replaced it with a merge, and wrote after: what it wrote went into the
 * replaced file, and the next scan merges it instead of losing it. */
TT_TEST(append_into_a_replaced_file_is_kept)
{
    char da[300], db[300], fa[400], fb[400];
    kith_ws *a = NULL, *b = NULL;
    TT_ASSERT(two_replicas("orphan", &a, &b, da, db, fa));
    snprintf(fb, sizeof fb, "%s/x.md", db);
    kith_ws_result r;
    int fd = open(fb, O_WRONLY | O_APPEND);
    TT_ASSERT(fd >= 0);
    save_by_rename(fa, "zero\none\ntwo\n");
    TT_OK(kith_ws_scan(a, NULL, NULL, &r));
    TT_OK(deliver(a, b)); /* replaces b's file */
    TT_ASSERT(write(fd, "three\n", 6) == 6);
    close(fd);
    char *text = slurp(fb);
    TT_STREQ(text, "zero\none\ntwo\n"); /* the append is in the old file */
    free(text);
    TT_OK(kith_ws_scan(b, NULL, NULL, &r));
    text = slurp(fb);
    TT_STREQ(text, "zero\none\ntwo\nthree\n");
    free(text);
    char *rec = NULL;
    size_t rlen = 0;
    TT_OK(kith_ws_cat(b, fb, NULL, &rec, &rlen));
    TT_STREQ(rec, "zero\none\ntwo\nthree\n");
    kith_free(rec);
    TT_OK(kith_ws_check(b));
    kith_ws_close(a);
    kith_ws_close(b);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-store-test", root, sizeof root);
}

TT_MAIN(TT_CASE(busy_lock_times_out_clearly), TT_CASE(not_a_workspace), TT_CASE(keys_and_init_as),
        TT_CASE(save_during_merge_write_is_kept),
        TT_CASE(save_after_crash_before_merge_write_is_kept),
        TT_CASE(save_from_a_buffer_older_than_the_merge_is_kept),
        TT_CASE(append_into_a_replaced_file_is_kept))
