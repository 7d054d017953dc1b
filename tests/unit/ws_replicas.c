/*
 * Two and three replicas of one workspace exchanging their stores through
 * the library API (kith_ws_export / kith_ws_import / kith_ws_join), on real
 * folders in a temporary directory: concurrent edits merge character by
 * character, blame and log name each author, renames and deletions travel,
 * concurrent creation of one path merges into one document, binary files
 * converge by last writer, programmatic edits carry their "via" tag, and a
 * damaged or hostile export changes nothing.
 */
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "kith/kith.h"
#include "tt.h"

static char root[256];

#include "ws_kit.h"

/* Sends everything @from holds to @to. */
static int send_to(kith_ws *from, kith_ws *to)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    kith_ws_result r;
    int rc = kith_ws_export(from, &buf, &len);
    if (!rc)
        rc = kith_ws_import(to, buf, len, NULL, NULL, &r);
    kith_free(buf);
    return rc;
}

typedef struct blame_acc {
    char lines[16][64];
    char authors[16][32];
    char via[16][32];
    int n;
} blame_acc;

static int on_blame(const kith_ws_blame_line *l, void *ctx)
{
    blame_acc *b = ctx;
    if (b->n < 16) {
        snprintf(b->lines[b->n], 64, "%.*s", (int)l->len, l->text);
        snprintf(b->authors[b->n], 32, "%s", l->author);
        snprintf(b->via[b->n], 32, "%s", l->via ? l->via : "");
        b->n++;
    }
    return 0;
}

static int count_authors(const kith_ws_change *c, void *ctx)
{
    int *n = ctx;
    if (!strcmp(c->author, "Bob"))
        (*n)++;
    return 0;
}

TT_TEST(concurrent_edits_merge_with_blame)
{
    kith_ws *a = make("a1", "Alice");
    TT_ASSERT(a);
    put(kith_ws_root(a), "notes.md", "one\ntwo\nthree\n");
    TT_OK(scan(a));
    kith_ws *b = join("b1", "Bob", a);
    TT_ASSERT(b);
    char *t = get(kith_ws_root(b), "notes.md");
    TT_STREQ(t, "one\ntwo\nthree\n");
    free(t);
    TT_STREQ(kith_ws_id(a), kith_ws_id(b));
    /* Apart: Alice appends, Bob edits the middle line. */
    put(kith_ws_root(a), "notes.md", "one\ntwo\nthree\nfour by alice\n");
    put(kith_ws_root(b), "notes.md", "one\ntwo, said bob\nthree\n");
    TT_OK(scan(a));
    TT_OK(scan(b));
    TT_OK(send_to(a, b));
    TT_OK(send_to(b, a));
    char *ta = get(kith_ws_root(a), "notes.md"), *tb = get(kith_ws_root(b), "notes.md");
    TT_STREQ(ta, "one\ntwo, said bob\nthree\nfour by alice\n");
    TT_STREQ(ta, tb);
    free(ta);
    free(tb);
    blame_acc bl = {0};
    char path[400];
    snprintf(path, sizeof path, "%s/notes.md", kith_ws_root(a));
    TT_OK(kith_ws_blame(a, path, NULL, on_blame, &bl));
    TT_EQ(bl.n, 4);
    TT_STREQ(bl.authors[0], "Alice");
    TT_STREQ(bl.authors[1], "Bob");
    TT_STREQ(bl.authors[3], "Alice");
    int bobs = 0;
    TT_OK(kith_ws_log(a, NULL, 0, count_authors, &bobs));
    TT_EQ(bobs, 1);
    /* Exchanging again changes nothing. */
    TT_OK(send_to(a, b));
    TT_OK(send_to(b, a));
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(rename_delete_and_create_travel)
{
    kith_ws *a = make("a2", "Alice");
    TT_ASSERT(a);
    put(kith_ws_root(a), "x.md", "x text\n");
    put(kith_ws_root(a), "y.md", "y text\n");
    TT_OK(scan(a));
    kith_ws *b = join("b2", "Bob", a);
    TT_ASSERT(b);
    /* Alice renames x.md; Bob edits it concurrently and deletes y.md. */
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/x.md", kith_ws_root(a));
    snprintf(to, sizeof to, "%s/renamed.md", kith_ws_root(a));
    TT_EQ(rename(from, to), 0);
    put(kith_ws_root(b), "x.md", "x text, edited\n");
    snprintf(from, sizeof from, "%s/y.md", kith_ws_root(b));
    TT_EQ(unlink(from), 0);
    /* Both create new.md: one document, both texts. */
    put(kith_ws_root(a), "new.md", "from alice\n");
    put(kith_ws_root(b), "new.md", "from bob\n");
    TT_OK(scan(a));
    TT_OK(scan(b));
    TT_OK(send_to(a, b));
    TT_OK(send_to(b, a));
    for (int side = 0; side < 2; side++) {
        const char *r = kith_ws_root(side ? b : a);
        char *t = get(r, "renamed.md");
        TT_STREQ(t, "x text, edited\n");
        free(t);
        TT_ASSERT(!get(r, "x.md"));
        TT_ASSERT(!get(r, "y.md"));
        t = get(r, "new.md");
        TT_ASSERT(t && strstr(t, "from alice\n") && strstr(t, "from bob\n"));
        free(t);
    }
    char *na = get(kith_ws_root(a), "new.md"), *nb = get(kith_ws_root(b), "new.md");
    TT_STREQ(na, nb);
    free(na);
    free(nb);
    /* The deletion is history: Alice can bring y.md back. */
    kith_ws_result r;
    char y[512];
    snprintf(y, sizeof y, "%s/y.md", kith_ws_root(a));
    TT_OK(kith_ws_restore_deleted(a, y, &r));
    char *t = get(kith_ws_root(a), "y.md");
    TT_STREQ(t, "y text\n");
    free(t);
    TT_OK(send_to(a, b));
    t = get(kith_ws_root(b), "y.md");
    TT_STREQ(t, "y text\n");
    free(t);
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(binary_last_writer_wins_and_keeps_versions)
{
    kith_ws *a = make("a3", "Alice");
    TT_ASSERT(a);
    put(kith_ws_root(a), "img.bin", "\x01\x02\x00\x03 first");
    FILE *f;
    char p[512];
    snprintf(p, sizeof p, "%s/img.bin", kith_ws_root(a));
    f = fopen(p, "wb");
    fwrite("\x01\x00\x02v1", 1, 5, f);
    fclose(f);
    TT_OK(scan(a));
    kith_ws *b = join("b3", "Bob", a);
    TT_ASSERT(b);
    f = fopen(p, "wb");
    fwrite("\x01\x00\x02v2a", 1, 6, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/img.bin", kith_ws_root(b));
    f = fopen(p, "wb");
    fwrite("\x01\x00\x02v2b", 1, 6, f);
    fclose(f);
    TT_OK(scan(a));
    TT_OK(scan(b));
    TT_OK(send_to(a, b));
    TT_OK(send_to(b, a));
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/img.bin", kith_ws_root(a));
    snprintf(pb, sizeof pb, "%s/img.bin", kith_ws_root(b));
    char *ca = NULL, *cb = NULL;
    size_t la = 0, lb = 0;
    TT_OK(kith_ws_cat(a, pa, NULL, &ca, &la));
    TT_OK(kith_ws_cat(b, pb, NULL, &cb, &lb));
    TT_EQ(la, 6);
    TT_EQ(lb, 6);
    TT_ASSERT(!memcmp(ca, cb, 6));
    kith_free(ca);
    kith_free(cb);
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(programmatic_edit_has_via)
{
    kith_ws *a = make("a4", "Alice");
    TT_ASSERT(a);
    put(kith_ws_root(a), "doc.md", "Title\n\nBody.\n");
    TT_OK(scan(a));
    char p[512];
    snprintf(p, sizeof p, "%s/doc.md", kith_ws_root(a));
    TT_OK(kith_ws_edit(a, p, 7, 0, "Drafted by the model.\n", 22));
    kith_ws_result r;
    TT_OK(kith_ws_commit(a, "ai:stories260K", &r));
    TT_ASSERT(r.change[0]);
    char *t = get(kith_ws_root(a), "doc.md");
    TT_STREQ(t, "Title\n\nDrafted by the model.\nBody.\n");
    free(t);
    blame_acc bl = {0};
    TT_OK(kith_ws_blame(a, p, NULL, on_blame, &bl));
    TT_STREQ(bl.via[2], "ai:stories260K");
    TT_STREQ(bl.authors[2], "Alice");
    TT_STREQ(bl.via[0], "");
    /* An edit past the end is refused; an unrecorded edit blocks edits. */
    TT_EQ(kith_ws_edit(a, p, 1000, 0, "x", 1), KITH_ERANGE);
    put(kith_ws_root(a), "doc.md", "changed behind kith's back\n");
    TT_EQ(kith_ws_edit(a, p, 0, 0, "x", 1), KITH_EBUSY);
    kith_ws_close(a);
}

/* A version-1 (compressed) export as version 0, checksum included. */
static uint8_t *unpack_export(const uint8_t *buf, size_t len, size_t *out_len)
{
    /* magic (8), str id (1 + 32), varint raw size, zstd frame, checksum */
    size_t off = 8 + 1 + 32;
    uint64_t raw = 0;
    int shift = 0;
    while (off < len) {
        raw |= (uint64_t)(buf[off] & 0x7f) << shift;
        shift += 7;
        if (!(buf[off++] & 0x80))
            break;
    }
    uint8_t *out = malloc(41 + raw + 16);
    memcpy(out, buf, 41);
    out[7] = 0;
    if (ZSTD_decompress(out + 41, raw, buf + off, len - 16 - off) != raw) {
        free(out);
        return NULL;
    }
    *out_len = 41 + raw + 16;
    crypto_generichash(out + 41 + raw, 16, out, 41 + raw, NULL, 0);
    return out;
}

TT_TEST(bad_exports_change_nothing)
{
    kith_ws *a = make("a5", "Alice");
    kith_ws *other = make("o5", "Olga");
    TT_ASSERT(a && other);
    put(kith_ws_root(a), "a.md", "safe\n");
    TT_OK(scan(a));
    kith_ws *b = join("b5", "Bob", a);
    TT_ASSERT(b);
    put(kith_ws_root(a), "a.md", "safe and more\n");
    TT_OK(scan(a));
    uint8_t *buf = NULL;
    size_t len = 0;
    TT_OK(kith_ws_export(a, &buf, &len));
    kith_ws_result r;
    /* Every truncation and a flipped bit in every 7th byte are refused. */
    for (size_t cut = 0; cut < len; cut += 1 + len / 200)
        TT_ASSERT(kith_ws_import(b, buf, cut, NULL, NULL, &r) != KITH_OK);
    for (size_t i = 0; i < len; i += 7) {
        buf[i] ^= 0x10;
        TT_ASSERT(kith_ws_import(b, buf, len, NULL, NULL, &r) != KITH_OK);
        buf[i] ^= 0x10;
    }
    char *t = get(kith_ws_root(b), "a.md");
    TT_STREQ(t, "safe\n");
    free(t);
    /* A path that climbs out of the folder, with a valid checksum: the
     * export unpacked to version 0 (docs/FORMAT.md), edited, resealed. */
    size_t evil_len = 0;
    uint8_t *evil = unpack_export(buf, len, &evil_len);
    TT_ASSERT(evil);
    int replaced = 0;
    for (size_t i = 0; i + 4 <= evil_len; i++)
        if (!memcmp(evil + i, "a.md", 4)) {
            memcpy(evil + i, "../x", 4);
            replaced++;
        }
    TT_ASSERT(replaced > 0);
    crypto_generichash(evil + evil_len - 16, 16, evil, evil_len - 16, NULL, 0);
    TT_EQ(kith_ws_import(b, evil, evil_len, NULL, NULL, &r), KITH_ECORRUPT);
    free(evil);
    char escaped[400];
    snprintf(escaped, sizeof escaped, "%s/x", root);
    TT_ASSERT(access(escaped, F_OK) != 0);
    /* Another workspace's export is refused. */
    TT_EQ(kith_ws_import(other, buf, len, NULL, NULL, &r), KITH_EINVAL);
    /* The good one still applies. */
    TT_OK(kith_ws_import(b, buf, len, NULL, NULL, &r));
    t = get(kith_ws_root(b), "a.md");
    TT_STREQ(t, "safe and more\n");
    free(t);
    kith_free(buf);
    kith_ws_close(a);
    kith_ws_close(b);
    kith_ws_close(other);
}

TT_TEST(three_replicas_converge)
{
    kith_ws *w[3];
    w[0] = make("r0", "Ann");
    TT_ASSERT(w[0]);
    put(kith_ws_root(w[0]), "s.md", "shared start\n");
    TT_OK(scan(w[0]));
    w[1] = join("r1", "Ben", w[0]);
    w[2] = join("r2", "Cat", w[0]);
    TT_ASSERT(w[1] && w[2]);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3; i++) {
            char *t = get(kith_ws_root(w[i]), "s.md");
            char line[64];
            snprintf(line, sizeof line, "r%d-%d\n", round, i);
            size_t n = strlen(t);
            char *u = malloc(n + 64);
            /* Insert in the middle, at a different place per replica. */
            size_t at = (n * (size_t)(i + 1)) / 4;
            while (at < n && t[at - 1] != '\n')
                at++;
            memcpy(u, t, at);
            strcpy(u + at, line);
            strcat(u, t + at);
            put(kith_ws_root(w[i]), "s.md", u);
            free(t);
            free(u);
            TT_OK(scan(w[i]));
        }
        /* A ring this round, so that changes arrive in different orders. */
        for (int i = 0; i < 3; i++)
            TT_OK(send_to(w[(i + round) % 3], w[(i + round + 1) % 3]));
    }
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            if (i != k)
                TT_OK(send_to(w[i], w[k]));
    char *t0 = get(kith_ws_root(w[0]), "s.md");
    for (int i = 1; i < 3; i++) {
        char *ti = get(kith_ws_root(w[i]), "s.md");
        TT_STREQ(ti, t0);
        free(ti);
    }
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++) {
            char line[64];
            snprintf(line, sizeof line, "r%d-%d\n", round, i);
            TT_ASSERT(strstr(t0, line));
        }
    free(t0);
    for (int i = 0; i < 3; i++)
        kith_ws_close(w[i]);
}

TT_TEST(change_by_change_sync)
{
    kith_ws *a = make("a6", "Alice");
    TT_ASSERT(a);
    put(kith_ws_root(a), "doc.md", "base\n");
    TT_OK(scan(a));
    kith_ws *b = join("b6", "Bob", a);
    TT_ASSERT(b);
    /* Several changes apart on each side: edits, a binary, a rename. */
    put(kith_ws_root(a), "doc.md", "base\nalice 1\n");
    TT_OK(scan(a));
    put(kith_ws_root(a), "pic.bin", "\x01\x02\x00bin");
    put(kith_ws_root(a), "doc.md", "base\nalice 1\nalice 2\n");
    TT_OK(scan(a));
    put(kith_ws_root(b), "doc.md", "bob 1\nbase\n");
    TT_OK(scan(b));
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/doc.md", kith_ws_root(b));
    snprintf(to, sizeof to, "%s/moved.md", kith_ws_root(b));
    TT_EQ(rename(from, to), 0);
    TT_OK(scan(b));
    /* A's changes one by one into B: out of order is refused, then fine. */
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    payloads ps = {0};
    kith_ws_result r;
    TT_OK(kith_ws_vv(b, &vv, &n));
    TT_OK(kith_ws_changes_since(a, vv, n, collect, &ps));
    kith_free(vv);
    TT_EQ(ps.n, 2);
#define APPLY(i)                                                                                   \
    kith_ws_apply_change_from(b, ps.author[i], ps.seq[i], ps.p[i], ps.len[i], NULL, NULL, &r)
    TT_EQ(APPLY(1), KITH_EMISSING);
    /* Version 1 payloads need the author and seq their blob names. */
    TT_EQ(kith_ws_apply_change(b, ps.p[0], ps.len[0], NULL, NULL, &r), KITH_EINVAL);
    /* A truncated payload is refused. */
    TT_EQ(kith_ws_apply_change_from(b, ps.author[0], ps.seq[0], ps.p[0], ps.len[0] - 1, NULL, NULL,
                                    &r),
          KITH_ECORRUPT);
    TT_OK(APPLY(0));
    TT_OK(APPLY(1));
    TT_OK(APPLY(1)); /* duplicate */
#undef APPLY
    payloads_free(&ps);
    TT_OK(sync_to(b, a));
    TT_OK(sync_to(a, b));
    char *ta = get(kith_ws_root(a), "moved.md"), *tb = get(kith_ws_root(b), "moved.md");
    TT_STREQ(ta, "bob 1\nbase\nalice 1\nalice 2\n");
    TT_STREQ(ta, tb);
    free(ta);
    free(tb);
    TT_ASSERT(!get(kith_ws_root(a), "doc.md"));
    char *pa = get(kith_ws_root(b), "pic.bin");
    TT_ASSERT(pa && !memcmp(pa, "\x01\x02\x00bin", 6));
    free(pa);
    blame_acc bl = {0};
    snprintf(to, sizeof to, "%s/moved.md", kith_ws_root(a));
    TT_OK(kith_ws_blame(a, to, NULL, on_blame, &bl));
    TT_EQ(bl.n, 4);
    TT_STREQ(bl.authors[0], "Bob");
    TT_STREQ(bl.authors[2], "Alice");
    /* Both hold the same changes. */
    kith_ws_vv_entry *va = NULL, *vb = NULL;
    size_t na = 0, nb = 0;
    TT_OK(kith_ws_vv(a, &va, &na));
    TT_OK(kith_ws_vv(b, &vb, &nb));
    TT_EQ(na, nb);
    TT_ASSERT(!memcmp(va, vb, na * sizeof *va));
    kith_free(va);
    kith_free(vb);
    TT_OK(kith_ws_check(a));
    TT_OK(kith_ws_check(b));
    kith_ws_close(a);
    kith_ws_close(b);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-ws-test", root, sizeof root);
    setenv("KITH_USER", "tester", 1);
}

TT_MAIN(TT_CASE(concurrent_edits_merge_with_blame), TT_CASE(rename_delete_and_create_travel),
        TT_CASE(binary_last_writer_wins_and_keeps_versions), TT_CASE(programmatic_edit_has_via),
        TT_CASE(bad_exports_change_nothing), TT_CASE(three_replicas_converge),
        TT_CASE(change_by_change_sync))
