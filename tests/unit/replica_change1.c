/*
 * Change payloads on the wire (docs/FORMAT.md "Change payload", version 1;
 * docs/PROTOCOL.md section 2, blob version 2): what kith_ws_changes_since
 * writes applies on another replica with kith_ws_apply_change_from and
 * gives the same files (typing, a big UTF-8 paste, deletions, a binary file,
 * a rename, an AI edit with a via, another device's text as CRDT parent);
 * one typed character, sealed, is a PUSH frame under 200 bytes (issue 4);
 * version 0 payloads, as older devices sealed them, still apply, and must
 * name the author and seq their blob names; malformed ones change nothing.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"
#include "kith/sync.h"
#include "tt.h"

static char root[256];

static void setup(void)
{
    if (root[0])
        return;
    tt_tmpdir("kith-change1", root, sizeof root);
    setenv("KITH_SYNC", "off", 1);
}

static void put(kith_ws *ws, const char *name, const char *text, size_t len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", kith_ws_root(ws), name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len)
        abort();
    fclose(f);
}

static char *get(kith_ws *ws, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", kith_ws_root(ws), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int scan(kith_ws *ws)
{
    kith_ws_result r;
    return kith_ws_scan(ws, NULL, NULL, &r);
}

static kith_ws *make(const char *name, const char *user)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    kith_ws *ws = NULL;
    return kith_ws_init(dir, user, &ws) ? NULL : ws;
}

static kith_ws *join(const char *name, const char *user, kith_ws *from)
{
    char dir[300];
    uint8_t *buf = NULL;
    size_t len = 0;
    kith_ws *ws = NULL;
    if (kith_ws_export(from, &buf, &len))
        return NULL;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    int rc = kith_ws_join(dir, user, buf, len, &ws);
    kith_free(buf);
    return rc ? NULL : ws;
}

typedef struct payloads {
    uint8_t *p[64];
    size_t len[64];
    uint8_t author[64][32];
    uint64_t seq[64];
    int n;
} payloads;

static int collect(const uint8_t author[32], uint64_t seq, const uint8_t *payload, size_t len,
                   void *ctx)
{
    payloads *ps = ctx;
    if (ps->n < 64) {
        memcpy(ps->author[ps->n], author, 32);
        ps->seq[ps->n] = seq;
        ps->p[ps->n] = malloc(len ? len : 1);
        memcpy(ps->p[ps->n], payload, len);
        ps->len[ps->n++] = len;
    }
    return 0;
}

static void payloads_free(payloads *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->p[i]);
    ps->n = 0;
}

/* What @to lacks of @from, as payloads. */
static int lacks(kith_ws *from, kith_ws *to, payloads *ps)
{
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    int rc = kith_ws_vv(to, &vv, &n);
    if (!rc)
        rc = kith_ws_changes_since(from, vv, n, collect, ps);
    kith_free(vv);
    return rc;
}

static int send_to(kith_ws *from, kith_ws *to)
{
    payloads ps = {0};
    kith_ws_result r;
    int rc = lacks(from, to, &ps);
    for (int i = 0; !rc && i < ps.n; i++)
        rc = kith_ws_apply_change_from(to, ps.author[i], ps.seq[i], ps.p[i], ps.len[i], NULL, NULL,
                                       &r);
    payloads_free(&ps);
    if (!rc)
        rc = kith_ws_check(to);
    return rc;
}

/* The PUSH frame that carries the only change @from has that @to lacks. */
static size_t push_frame(kith_ws *from, kith_ws *to, size_t *payload_len)
{
    static uint8_t pk[32], sk[64], wsid[16], key[32];
    if (!pk[0] && kith_device_keygen(pk, sk) != KITH_OK)
        abort();
    payloads ps = {0};
    if (lacks(from, to, &ps) || ps.n != 1)
        return 0;
    uint8_t *blob = NULL;
    size_t bl = 0;
    if (kith_blob_seal(KITH_BLOB_CHANGE, wsid, sk, ps.seq[0], 0, key, ps.p[0], ps.len[0], &blob,
                       &bl))
        return 0;
    *payload_len = ps.len[0];
    kith_free(blob);
    payloads_free(&ps);
    return 8 + 4 + bl; /* frame header, the blob's length, the blob */
}

static void same_file(kith_ws *a, kith_ws *b, const char *name)
{
    char *ta = get(a, name), *tb = get(b, name);
    TT_ASSERT(ta && tb);
    if (ta && tb)
        TT_STREQ(ta, tb);
    free(ta);
    free(tb);
}

TT_TEST(keystroke_is_under_200_bytes)
{
    setup();
    kith_ws *a = make("k-a", "ann"), *b = NULL;
    TT_ASSERT(a);
    char text[4096];
    size_t n = 0;
    for (int i = 1; i <= 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "Line %d of the notes: the quick brown fox.\n", i);
    put(a, "notes.md", text, n);
    TT_OK(scan(a));
    TT_ASSERT((b = join("k-b", "bob", a)));
    put(b, "bob.md", "Bob's own notes.\n", 17); /* b's first change, with its name */
    TT_OK(scan(b));
    TT_OK(send_to(b, a));
    size_t pl = 0, frame;
    /* A types into its own text, then the next character */
    memmove(text + 901, text + 900, n - 900);
    text[900] = 'x';
    put(a, "notes.md", text, ++n);
    TT_OK(scan(a));
    frame = push_frame(a, b, &pl);
    printf("     A's keystroke: payload %zu B, PUSH frame %zu B\n", pl, frame);
    TT_ASSERT(frame > 0 && frame < 200);
    TT_OK(send_to(a, b));
    memmove(text + 902, text + 901, n - 901);
    text[901] = 'y';
    put(a, "notes.md", text, ++n);
    TT_OK(scan(a));
    frame = push_frame(a, b, &pl);
    printf("     A's next keystroke: payload %zu B, PUSH frame %zu B\n", pl, frame);
    TT_ASSERT(frame > 0 && frame < 180);
    TT_OK(send_to(a, b));
    /* B types into A's text: the parent is another device's operation */
    memmove(text + 301, text + 300, n - 300);
    text[300] = 'z';
    put(b, "notes.md", text, ++n);
    TT_OK(scan(b));
    frame = push_frame(b, a, &pl);
    printf("     B's keystroke into A's text: payload %zu B, PUSH frame %zu B\n", pl, frame);
    TT_ASSERT(frame > 0 && frame < 200);
    TT_OK(send_to(b, a));
    same_file(a, b, "notes.md");
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(every_kind_of_change_travels)
{
    setup();
    kith_ws *a = make("e-a", "ann"), *b = NULL;
    TT_ASSERT(a);
    put(a, "a.md", "one\ntwo\nthree\n", 14);
    put(a, "pic.bin", "\x01\x00\x02bin", 6);
    TT_OK(scan(a));
    TT_ASSERT((b = join("e-b", "bob", a)));
    /* a rename, a binary edit, deletions */
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/a.md", kith_ws_root(a));
    snprintf(to, sizeof to, "%s/b.md", kith_ws_root(a));
    TT_EQ(rename(from, to), 0);
    TT_OK(scan(a));
    put(a, "b.md", "one\nthree\nfour\n", 15);
    put(a, "pic.bin", "\x01\x00\x03bin!", 7);
    TT_OK(scan(a));
    /* a big paste with 2-, 3- and 4-byte UTF-8 */
    char big[8192];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "z\xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82 %d\n", i);
    put(a, "u.md", big, n);
    TT_OK(scan(a));
    put(a, "u.md", big + 100, n - 300);
    TT_OK(scan(a));
    /* an edit made by the on-device model: a via */
    char bmd[600];
    snprintf(bmd, sizeof bmd, "%s/b.md", kith_ws_root(a));
    TT_OK(kith_ws_edit(a, bmd, 0, 0, "AI: ", 4));
    kith_ws_result r;
    TT_OK(kith_ws_commit(a, "ai:test", &r));
    /* a deleted file */
    snprintf(from, sizeof from, "%s/pic.bin", kith_ws_root(a));
    TT_EQ(unlink(from), 0);
    TT_OK(scan(a));
    TT_OK(send_to(a, b));
    same_file(a, b, "b.md");
    same_file(a, b, "u.md");
    char *gone = get(b, "pic.bin");
    TT_ASSERT(gone == NULL);
    free(gone);
    /* both ways, concurrently: B edits what A edits */
    put(a, "b.md", "AI: one\nthree\nfour\nfrom a\n", 26);
    put(b, "b.md", "from b\nAI: one\nthree\nfour\n", 26);
    TT_OK(scan(a));
    TT_OK(scan(b));
    TT_OK(send_to(a, b));
    TT_OK(send_to(b, a));
    same_file(a, b, "b.md");
    char *t = get(a, "b.md");
    TT_ASSERT(t && strstr(t, "from a") && strstr(t, "from b"));
    free(t);
    kith_ws_close(a);
    kith_ws_close(b);
}

/* A version 0 payload built by hand from docs/FORMAT.md: change 1 of
 * @author adding a binary file. */
static size_t v0_payload(uint8_t *p, const char *wsid, const uint8_t author[32], uint64_t seq)
{
    static const uint8_t magic[8] = {'K', 'I', 'T', 'H', 'W', 'C', '1', 0};
    static const char data[] = "\x89PNG-ish";
    size_t n = 0, dl = sizeof data - 1;
    memcpy(p, magic, 8);
    n = 8;
    p[n++] = 32;
    memcpy(p + n, wsid, 32);
    n += 32;
    memcpy(p + n, author, 32);
    n += 32;
    p[n++] = 3;
    memcpy(p + n, "old", 3);
    n += 3;
    p[n++] = (uint8_t)seq;
    p[n++] = 0x80; /* zigzag(time) = 2^14 */
    p[n++] = 0x80;
    p[n++] = 0x01;
    p[n++] = 5; /* lamport */
    p[n++] = 0; /* no via */
    p[n++] = 1; /* one edit */
    randombytes_buf(p + n, 16);
    n += 16;
    p[n++] = 0; /* added */
    p[n++] = 1; /* binary */
    p[n++] = 7;
    memcpy(p + n, "old.bin", 7);
    n += 7;
    p[n++] = 0;                                    /* no old path */
    p[n++] = 0, p[n++] = 0, p[n++] = 0, p[n++] = 0; /* ins, del, opseq, opcount */
    p[n++] = 0;                                    /* no version */
    p[n++] = 1;
    crypto_generichash(p + n, 32, (const uint8_t *)data, dl, NULL, 0);
    n += 32;
    p[n++] = 0; /* no operations */
    p[n++] = (uint8_t)dl;
    memcpy(p + n, data, dl);
    n += dl;
    crypto_generichash(p + n, 16, p, n, NULL, 0);
    return n + 16;
}

TT_TEST(version0_still_applies)
{
    setup();
    kith_ws *b = make("v0-b", "bob");
    TT_ASSERT(b);
    uint8_t author[32], other[32], p[512];
    randombytes_buf(author, 32);
    memcpy(other, author, 32);
    other[31] ^= 1;
    size_t n = v0_payload(p, kith_ws_id(b), author, 1);
    kith_ws_result r;
    /* it must be the change its blob names */
    TT_EQ(kith_ws_apply_change_from(b, other, 1, p, n, NULL, NULL, &r), KITH_EAUTH);
    TT_EQ(kith_ws_apply_change_from(b, author, 2, p, n, NULL, NULL, &r), KITH_EAUTH);
    TT_OK(kith_ws_apply_change_from(b, author, 1, p, n, NULL, NULL, &r));
    char *t = get(b, "old.bin");
    TT_ASSERT(t && !strcmp(t, "\x89PNG-ish"));
    free(t);
    TT_OK(kith_ws_check(b));
    kith_ws_close(b);
}

TT_TEST(malformed_version1_changes_nothing)
{
    setup();
    kith_ws *a = make("m-a", "ann"), *b = NULL;
    TT_ASSERT(a);
    put(a, "n.md", "hello\n", 6);
    TT_OK(scan(a));
    TT_ASSERT((b = make("m-b", "bob")));
    payloads ps = {0};
    TT_OK(lacks(a, b, &ps));
    TT_EQ(ps.n, 1);
    kith_ws_result r;
    /* every truncation and every single-bit flip: refused, or a store
     * that still checks (integrity is the sealed blob's job) */
    for (size_t cut = 0; cut < ps.len[0]; cut++) {
        int rc = kith_ws_apply_change_from(b, ps.author[0], 1, ps.p[0], cut, NULL, NULL, &r);
        TT_ASSERT(rc != KITH_OK);
    }
    for (size_t i = 0; i < ps.len[0] && i < 64; i++) {
        kith_ws *c = NULL;
        char name[32];
        snprintf(name, sizeof name, "m-c%zu", i);
        TT_ASSERT((c = make(name, "cid")));
        ps.p[0][i] ^= 0x04;
        if (kith_ws_apply_change_from(c, ps.author[0], 1, ps.p[0], ps.len[0], NULL, NULL, &r) ==
            KITH_OK)
            TT_OK(kith_ws_check(c));
        ps.p[0][i] ^= 0x04;
        kith_ws_close(c);
    }
    /* the first change of an author carries its name; seq 2 first is early */
    TT_EQ(kith_ws_apply_change_from(b, ps.author[0], 2, ps.p[0], ps.len[0], NULL, NULL, &r),
          KITH_EMISSING);
    TT_EQ(kith_ws_apply_change(b, ps.p[0], ps.len[0], NULL, NULL, &r), KITH_EINVAL);
    TT_OK(kith_ws_apply_change_from(b, ps.author[0], 1, ps.p[0], ps.len[0], NULL, NULL, &r));
    TT_OK(kith_ws_apply_change_from(b, ps.author[0], 1, ps.p[0], ps.len[0], NULL, NULL, &r));
    same_file(a, b, "n.md");
    payloads_free(&ps);
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_MAIN(TT_CASE(keystroke_is_under_200_bytes), TT_CASE(every_kind_of_change_travels),
        TT_CASE(version0_still_applies), TT_CASE(malformed_version1_changes_nothing))
