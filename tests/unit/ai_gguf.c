/*
 * GGUF reader/writer tests: a file built with the writer reads back with
 * every type of metadata and tensor; then truncated, corrupted and hostile
 * variants (every prefix, every single byte flipped, crafted counts, sizes,
 * offsets, types) must each return an error with a message, never crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ai/gguf.h"
#include "kith/util.h"
#include "tt.h"

static float g_f32[2 * 64];
static uint8_t g_q4k[144 * 2];

static int fill_ones(void *ud, size_t idx, void *dst, size_t nbytes)
{
    (void)ud;
    (void)idx;
    memset(dst, 0x3c, nbytes); /* f16 1.0 = 0x3c00: bytes 00 3c; any pattern will do */
    return 0;
}

/* A small valid file with every kind of metadata and a few tensors. */
static int build_ok(void **buf, size_t *len)
{
    gguf_writer *w = NULL;
    uint64_t ne2[2] = {64, 2}, nek[1] = {512};
    static const char *const strs[] = {"<unk>", "hello", ""};
    static const int32_t ints[] = {1, -2, 3};
    int rc = gguf_writer_new(&w);
    if (rc)
        return rc;
    for (int i = 0; i < 128; i++)
        g_f32[i] = (float)i * 0.5f;
    memset(g_q4k, 0x11, sizeof(g_q4k));
    if (!(rc = gguf_writer_add_str(w, "general.architecture", "llama")) &&
        !(rc = gguf_writer_add_u32(w, "general.alignment", 64)) &&
        !(rc = gguf_writer_add_u8(w, "t.u8", 200)) && !(rc = gguf_writer_add_i8(w, "t.i8", -5)) &&
        !(rc = gguf_writer_add_u16(w, "t.u16", 60000)) &&
        !(rc = gguf_writer_add_i16(w, "t.i16", -300)) &&
        !(rc = gguf_writer_add_u32(w, "t.u32", 4000000000u)) &&
        !(rc = gguf_writer_add_i32(w, "t.i32", -7)) &&
        !(rc = gguf_writer_add_u64(w, "t.u64", 1ull << 40)) &&
        !(rc = gguf_writer_add_i64(w, "t.i64", -(1ll << 40))) &&
        !(rc = gguf_writer_add_f32(w, "t.f32", 1.5f)) &&
        !(rc = gguf_writer_add_f64(w, "t.f64", 2.25)) &&
        !(rc = gguf_writer_add_bool(w, "t.bool", 1)) &&
        !(rc = gguf_writer_add_arr_str(w, "t.strs", strs, NULL, 3)) &&
        !(rc = gguf_writer_add_arr(w, "t.ints", GGUF_TYPE_INT32, ints, 3)) &&
        !(rc = gguf_writer_add_tensor(w, "a.weight", GGML_TYPE_F32, 2, ne2, g_f32)) &&
        !(rc = gguf_writer_add_tensor(w, "b.weight", GGML_TYPE_Q4_K, 1, nek, g_q4k)) &&
        !(rc = gguf_writer_add_tensor(w, "c.weight", GGML_TYPE_F16, 2, ne2, NULL))) {
        rc = gguf_writer_write_mem(w, NULL, NULL, buf, len);
        if (rc == KITH_EINVAL) /* c.weight has no data and no fill callback */
            rc = gguf_writer_write_mem(w, fill_ones, NULL, buf, len);
        else
            rc = -100;
    }
    gguf_writer_free(w);
    return rc;
}

TT_TEST(roundtrip)
{
    void *buf = NULL;
    size_t len = 0;
    gguf_file *f = NULL;
    char err[256];
    TT_OK(build_ok(&buf, &len));
    TT_OK(gguf_open_mem(buf, len, &f, err, sizeof(err)));
    TT_EQ(gguf_version(f), 3);
    TT_EQ(gguf_alignment(f), 64);
    TT_EQ(gguf_data_offset(f) % 64, 0);
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    int b;
    const char *s;
    size_t sl;
    TT_OK(gguf_get_str(f, "general.architecture", &s, &sl));
    TT_EQ(sl, 5);
    TT_ASSERT(memcmp(s, "llama", 5) == 0);
    TT_OK(gguf_get_u32(f, "t.u8", &u32));
    TT_EQ(u32, 200);
    TT_OK(gguf_get_i32(f, "t.i8", &i32));
    TT_EQ(i32, -5);
    TT_EQ(gguf_get_u32(f, "t.i8", &u32), KITH_ERANGE); /* negative into unsigned */
    TT_OK(gguf_get_u32(f, "t.u16", &u32));
    TT_EQ(u32, 60000);
    TT_OK(gguf_get_i32(f, "t.i16", &i32));
    TT_EQ(i32, -300);
    TT_OK(gguf_get_u32(f, "t.u32", &u32));
    TT_EQ(u32, 4000000000u);
    TT_EQ(gguf_get_i32(f, "t.u32", &i32), KITH_ERANGE);
    TT_OK(gguf_get_u64(f, "t.u64", &u64));
    TT_EQ(u64, 1ull << 40);
    TT_EQ(gguf_get_u32(f, "t.u64", &u32), KITH_ERANGE);
    TT_OK(gguf_get_i64(f, "t.i64", &i64));
    TT_EQ(i64, -(1ll << 40));
    TT_OK(gguf_get_f32(f, "t.f32", &f32));
    TT_NEAR(f32, 1.5, 0);
    TT_OK(gguf_get_f32(f, "t.f64", &f32));
    TT_NEAR(f32, 2.25, 0);
    TT_OK(gguf_get_bool(f, "t.bool", &b));
    TT_EQ(b, 1);
    TT_EQ(gguf_get_u32(f, "general.architecture", &u32), KITH_ECORRUPT);
    TT_EQ(gguf_get_str(f, "t.u32", &s, &sl), KITH_ECORRUPT);
    TT_EQ(gguf_get_u32(f, "no.such.key", &u32), KITH_ENOTFOUND);
    struct gguf_arr a;
    TT_OK(gguf_get_arr(f, "t.strs", &a));
    TT_EQ(a.type, GGUF_TYPE_STRING);
    TT_EQ(a.n, 3);
    TT_OK(gguf_arr_str(&a, 1, &s, &sl));
    TT_EQ(sl, 5);
    TT_OK(gguf_arr_str(&a, 2, &s, &sl));
    TT_EQ(sl, 0);
    TT_EQ(gguf_arr_str(&a, 3, &s, &sl), KITH_ERANGE);
    TT_OK(gguf_get_arr(f, "t.ints", &a));
    TT_OK(gguf_arr_get_i32(&a, 1, &i32));
    TT_EQ(i32, -2);
    TT_EQ(gguf_arr_str(&a, 0, &s, &sl), KITH_ECORRUPT);

    TT_EQ(gguf_n_tensors(f), 3);
    const struct gguf_tensor *t = gguf_find_tensor(f, "a.weight");
    TT_ASSERT(t);
    TT_EQ(t->type, GGML_TYPE_F32);
    TT_EQ(t->n_dims, 2);
    TT_EQ(t->ne[0], 64);
    TT_EQ(t->ne[1], 2);
    TT_EQ(t->ne[2], 1);
    TT_EQ(t->nbytes, 512);
    TT_ASSERT(memcmp(t->data, g_f32, 512) == 0);
    t = gguf_find_tensor(f, "b.weight");
    TT_ASSERT(t);
    TT_EQ(t->nbytes, 288);
    TT_EQ(t->offset % 64, 0);
    TT_ASSERT(memcmp(t->data, g_q4k, 288) == 0);
    t = gguf_find_tensor(f, "c.weight");
    TT_ASSERT(t);
    TT_EQ(t->nbytes, 256);
    TT_EQ(((const uint8_t *)t->data)[0], 0x3c);
    TT_ASSERT(gguf_find_tensor(f, "nope") == NULL);
    TT_ASSERT(gguf_tensor_at(f, 3) == NULL);
    size_t rs;
    TT_OK(gguf_ggml_row_size(GGML_TYPE_Q6_K, 512, &rs));
    TT_EQ(rs, 420);
    TT_EQ(gguf_ggml_row_size(GGML_TYPE_Q8_0, 33, &rs), KITH_ECORRUPT);
    TT_EQ(gguf_ggml_row_size(5, 32, &rs), KITH_EUNSUPPORTED);
    gguf_close(f);
    kith_free(buf);
}

TT_TEST(file_io)
{
    void *buf = NULL;
    size_t len = 0;
    gguf_file *f = NULL;
    char err[256], path[256];
    gguf_writer *w = NULL;
    snprintf(path, sizeof(path), "/tmp/kith-gguf-test-%d.gguf", (int)getpid());
    TT_OK(gguf_writer_new(&w));
    TT_OK(gguf_writer_add_str(w, "general.name", "x"));
    TT_OK(gguf_writer_write(w, path, NULL, NULL, err, sizeof(err)));
    gguf_writer_free(w);
    TT_OK(gguf_open(path, &f, err, sizeof(err)));
    TT_EQ(gguf_n_kv(f), 1);
    gguf_close(f);
    unlink(path);
    TT_EQ(gguf_open(path, &f, err, sizeof(err)), KITH_EIO);
    TT_ASSERT(f == NULL);
    TT_ASSERT(strstr(err, "cannot open") != NULL);
    TT_EQ(gguf_open("/", &f, err, sizeof(err)), KITH_EIO);
    (void)buf;
    (void)len;
}

/* Every prefix of a valid file, and every single-byte change of its header,
 * must fail cleanly or parse into something consistent. */
TT_TEST(truncated_and_flipped)
{
    void *buf = NULL;
    size_t len = 0;
    char err[256];
    TT_OK(build_ok(&buf, &len));
    gguf_file *f = NULL;
    TT_OK(gguf_open_mem(buf, len, &f, err, sizeof(err)));
    size_t hdr = gguf_data_offset(f);
    gguf_close(f);
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes so that ASan sees any overread */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        err[0] = 0;
        int rc = gguf_open_mem(p, n, &f, err, sizeof(err));
        TT_ASSERT(rc < 0);
        TT_ASSERT(f == NULL);
        TT_ASSERT(err[0] != 0);
        free(p);
    }
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < hdr; i++) {
        for (int v = 0; v < 3; v++) {
            static const uint8_t vals[3] = {0x00, 0xff, 0x80};
            memcpy(p, buf, len);
            p[i] = p[i] == vals[v] ? (uint8_t)(vals[v] ^ 1) : vals[v];
            err[0] = 0;
            int rc = gguf_open_mem(p, len, &f, err, sizeof(err));
            if (rc == 0) {
                /* accepted: everything it says must be inside the buffer */
                for (size_t k = 0; k < gguf_n_tensors(f); k++) {
                    const struct gguf_tensor *t = gguf_tensor_at(f, k);
                    TT_ASSERT((const uint8_t *)t->data >= p);
                    TT_ASSERT((const uint8_t *)t->data + t->nbytes <= p + len);
                }
                gguf_close(f);
            } else {
                TT_ASSERT(err[0] != 0);
                TT_ASSERT(f == NULL);
            }
        }
    }
    free(p);
    kith_free(buf);
}

/* Hand-made hostile headers. */
struct hb {
    uint8_t b[512];
    size_t n;
};

static void put(struct hb *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}
static void u32(struct hb *h, uint32_t v)
{
    put(h, &v, 4);
}
static void u64(struct hb *h, uint64_t v)
{
    put(h, &v, 8);
}
static void str(struct hb *h, const char *s)
{
    u64(h, strlen(s));
    put(h, s, strlen(s));
}
static void head(struct hb *h, uint32_t ver, uint64_t nt, uint64_t nkv)
{
    h->n = 0;
    put(h, "GGUF", 4);
    u32(h, ver);
    u64(h, nt);
    u64(h, nkv);
}

static int expect(struct hb *h, int want, const char *needle)
{
    gguf_file *f = NULL;
    char err[256] = "";
    int rc = gguf_open_mem(h->b, h->n, &f, err, sizeof(err));
    if (rc != want || (needle && !strstr(err, needle))) {
        fprintf(stderr, "  got %d '%s', want %d '%s'\n", rc, err, want, needle ? needle : "");
        gguf_close(f);
        return 0;
    }
    gguf_close(f);
    return 1;
}

TT_TEST(hostile)
{
    struct hb h;
    head(&h, 1, 0, 0);
    TT_ASSERT(expect(&h, KITH_EVERSION, "version 1"));
    head(&h, 4, 0, 0);
    TT_ASSERT(expect(&h, KITH_EVERSION, "version 4"));
    head(&h, 0x03000000, 0, 0);
    TT_ASSERT(expect(&h, KITH_EUNSUPPORTED, "big-endian"));
    head(&h, 3, 0, 0);
    memcpy(h.b, "GGML", 4);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "magic"));
    head(&h, 3, 0, UINT64_MAX);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "metadata count"));
    head(&h, 3, UINT64_MAX / 2, 0);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "tensor count"));
    /* key longer than the file */
    head(&h, 3, 0, 1);
    u64(&h, 1ull << 62);
    u64(&h, 0);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "key"));
    /* string value longer than the file */
    head(&h, 3, 0, 1);
    str(&h, "k");
    u32(&h, GGUF_TYPE_STRING);
    u64(&h, 1000);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "'k'"));
    /* unknown value type */
    head(&h, 3, 0, 1);
    str(&h, "k");
    u32(&h, 77);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "unknown value type"));
    /* array of arrays */
    head(&h, 3, 0, 1);
    str(&h, "k");
    u32(&h, GGUF_TYPE_ARRAY);
    u32(&h, GGUF_TYPE_ARRAY);
    u64(&h, 1);
    TT_ASSERT(expect(&h, KITH_EUNSUPPORTED, "arrays of arrays"));
    /* huge array count (would overflow n * 8) */
    head(&h, 3, 0, 1);
    str(&h, "k");
    u32(&h, GGUF_TYPE_ARRAY);
    u32(&h, GGUF_TYPE_UINT64);
    u64(&h, UINT64_MAX / 4);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "past end"));
    head(&h, 3, 0, 1);
    str(&h, "k");
    u32(&h, GGUF_TYPE_ARRAY);
    u32(&h, GGUF_TYPE_STRING);
    u64(&h, UINT64_MAX);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "strings past end"));
    /* duplicate key */
    head(&h, 3, 0, 2);
    str(&h, "k");
    u32(&h, GGUF_TYPE_UINT8);
    put(&h, "\1", 1);
    str(&h, "k");
    u32(&h, GGUF_TYPE_UINT8);
    put(&h, "\1", 1);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "duplicate"));
    /* bad alignment */
    head(&h, 3, 0, 1);
    str(&h, "general.alignment");
    u32(&h, GGUF_TYPE_UINT32);
    u32(&h, 48);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "power of two"));
    head(&h, 3, 0, 1);
    str(&h, "general.alignment");
    u32(&h, GGUF_TYPE_UINT64);
    u64(&h, 32);
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "alignment"));
    /* tensors: too many dims, zero dims, unknown type, bad shape, overflow, past end */
    struct {
        uint32_t nd;
        uint64_t ne[4];
        uint32_t type;
        uint64_t off;
        int want;
        const char *msg;
    } cases[] = {
        {5, {1, 1, 1, 1}, 0, 0, KITH_ECORRUPT, "dimensions"},
        {0, {0}, 0, 0, KITH_ECORRUPT, "dimensions"},
        {1, {32}, 4, 0, KITH_EUNSUPPORTED, "unsupported tensor type 4"},
        {1, {32}, 1000, 0, KITH_EUNSUPPORTED, "unsupported"},
        {1, {33}, GGML_TYPE_Q8_0, 0, KITH_ECORRUPT, "block size"},
        {2, {1ull << 40, 1ull << 40}, 0, 0, KITH_ECORRUPT, "overflows"},
        {1, {UINT64_MAX}, 0, 0, KITH_ECORRUPT, "overflows"},
        {1, {1024}, 0, 0, KITH_ECORRUPT, "data past end of file"},
        {1, {4}, 0, 1ull << 60, KITH_ECORRUPT, "data past end of file"},
        {1, {4}, 0, 7, KITH_ECORRUPT, "not a multiple of the alignment"},
        {4, {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 3}, GGML_TYPE_F32, 0, KITH_ECORRUPT,
         "overflows"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        head(&h, 3, 1, 0);
        str(&h, "blk.0.attn_q.weight");
        u32(&h, cases[i].nd);
        for (uint32_t d = 0; d < cases[i].nd && d < 4; d++)
            u64(&h, cases[i].ne[d]);
        u32(&h, cases[i].type);
        u64(&h, cases[i].off);
        while (h.n % 32)
            h.b[h.n++] = 0;
        memset(h.b + h.n, 0, 64);
        h.n += 64;
        if (!expect(&h, cases[i].want, cases[i].msg))
            TT_FAIL_("tensor case %zu", i);
    }
    /* the message names the tensor */
    {
        gguf_file *f = NULL;
        char err[256];
        head(&h, 3, 1, 0);
        str(&h, "blk.0.attn_q.weight");
        u32(&h, 1);
        u64(&h, 1024);
        u32(&h, 0);
        u64(&h, 0);
        TT_EQ(gguf_open_mem(h.b, h.n, &f, err, sizeof(err)), KITH_ECORRUPT);
        TT_ASSERT(strstr(err, "tensor 'blk.0.attn_q.weight': data past end of file") != NULL);
    }
    /* duplicate tensor name, name with NUL */
    head(&h, 3, 2, 0);
    for (int k = 0; k < 2; k++) {
        str(&h, "x");
        u32(&h, 1);
        u64(&h, 1);
        u32(&h, 0);
        u64(&h, 0);
    }
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "duplicate tensor"));
    head(&h, 3, 1, 0);
    u64(&h, 3);
    put(&h, "a\0b", 3);
    memset(h.b + h.n, 0, 40);
    h.n += 40;
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "NUL"));
    /* empty buffer */
    h.n = 0;
    TT_ASSERT(expect(&h, KITH_ECORRUPT, "empty"));
}

/* The real model files of ../shared open and agree on sizes, when present. */
TT_TEST(shared_models)
{
    static const char *const names[] = {"stories260K-f32.gguf", "stories260K-q8_0.gguf",
                                        "stories260K-q4_0.gguf"};
    for (int i = 0; i < 3; i++) {
        char path[1024], err[256], rel[128];
        gguf_file *f = NULL;
        snprintf(rel, sizeof(rel), "models/%s", names[i]);
        tt_path("KITH_SHARED", rel, path, sizeof(path));
        if (access(path, R_OK) != 0) {
            printf("  skip %s\n", names[i]);
            continue;
        }
        TT_OK(gguf_open(path, &f, err, sizeof(err)));
        TT_EQ(gguf_n_tensors(f), 48);
        const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
        TT_ASSERT(t != NULL);
        TT_EQ(t->ne[0], 64);
        TT_EQ(t->ne[1], 512);
        uint32_t ctx;
        TT_OK(gguf_get_u32(f, "llama.context_length", &ctx));
        TT_EQ(ctx, 512);
        gguf_close(f);
    }
}

TT_MAIN(TT_CASE(roundtrip), TT_CASE(file_io), TT_CASE(truncated_and_flipped), TT_CASE(hostile),
        TT_CASE(shared_models))
