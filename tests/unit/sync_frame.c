/*
 * Frame codec: every message type round-trips; truncation at every length,
 * a wrong length field, trailing bytes, unknown types, non-canonical vectors
 * and oversized fields are refused; another version is told apart from
 * garbage (KITH_EVERSION) and an ERROR frame of any version stays readable.
 */
#include "kith/kith.h"
#include "sync/sync_int.h"
#include "tt.h"

static size_t frame(struct sbuf *b, const uint8_t **p)
{
    *p = NULL;
    if (sync_frame_end(b) != KITH_OK)
        return 0;
    *p = b->p + SYNC_PRE;
    return b->len - SYNC_PRE;
}

/* Every strict prefix of a valid frame must be refused. */
static int prefixes_fail(const uint8_t *p, size_t n)
{
    struct sync_msg m;
    for (size_t k = 0; k < n; k++)
        if (sync_frame_decode(p, k, &m, NULL) == KITH_OK)
            return 0;
    return 1;
}

TT_TEST(test_challenge_roundtrip)
{
    struct sbuf b;
    sb_init(&b);
    uint8_t nonce[32];
    for (int i = 0; i < 32; i++)
        nonce[i] = (uint8_t)i;
    sync_frame_begin(&b, SYNC_CHALLENGE);
    sb_raw(&b, nonce, 32);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    TT_EQ(n, 8 + 32);
    TT_EQ(p[0], 'k');
    TT_EQ(p[1], 's');
    TT_EQ(p[2], 1);
    TT_EQ(p[3], SYNC_CHALLENGE);
    TT_EQ(get_u32(p + 4), 32);
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.type, SYNC_CHALLENGE);
    TT_ASSERT(!memcmp(m.u.challenge.nonce, nonce, 32));
    TT_ASSERT(prefixes_fail(p, n));
    sb_release(&b);
}

TT_TEST(test_auth_roundtrip)
{
    struct sbuf b;
    sb_init(&b);
    uint8_t ws[16] = {1}, pk[32] = {2}, sig[64] = {3}, extra[5] = {9, 8, 7, 6, 5};
    sync_frame_begin(&b, SYNC_AUTH);
    sb_raw(&b, ws, 16);
    sb_raw(&b, pk, 32);
    sb_u8(&b, SYNC_MODE_REGISTER);
    sb_raw(&b, sig, 64);
    sb_bytes(&b, extra, sizeof extra);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.auth.mode, SYNC_MODE_REGISTER);
    TT_EQ(m.u.auth.extra_len, 5);
    TT_ASSERT(!memcmp(m.u.auth.extra, extra, 5));
    TT_ASSERT(!memcmp(m.u.auth.device_pk, pk, 32));
    TT_ASSERT(prefixes_fail(p, n));
    /* unknown mode */
    b.p[SYNC_PRE + SYNC_HDR + 48] = 7;
    const char *why = NULL;
    TT_EQ(sync_frame_decode(p, n, &m, &why), KITH_ECORRUPT);
    TT_STREQ(why, "auth mode unknown");
    sb_release(&b);
}

TT_TEST(test_welcome_list)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_WELCOME);
    sb_u8(&b, KITH_ROLE_WRITER);
    sb_u32(&b, 3);
    sb_u32(&b, 2);
    sb_bytes(&b, "abc", 3);
    sb_bytes(&b, "", 0);
    sb_bytes(&b, "wrapped", 7);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.welcome.epoch, 3);
    TT_EQ(m.u.welcome.ops.n, 2);
    size_t pos = 0, len;
    const uint8_t *it;
    TT_ASSERT(sync_list_next(&m.u.welcome.ops, &pos, &it, &len));
    TT_EQ(len, 3);
    TT_ASSERT(!memcmp(it, "abc", 3));
    TT_ASSERT(sync_list_next(&m.u.welcome.ops, &pos, &it, &len));
    TT_EQ(len, 0);
    TT_ASSERT(!sync_list_next(&m.u.welcome.ops, &pos, &it, &len));
    TT_EQ(m.u.welcome.wrapped_len, 7);
    TT_ASSERT(prefixes_fail(p, n));
    /* a list count larger than its items */
    put_u32(b.p + SYNC_PRE + SYNC_HDR + 5, 3);
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
}

TT_TEST(test_hello_vector_canonical)
{
    kith_vv *vv = NULL;
    TT_OK(kith_vv_new(&vv));
    uint8_t a[32] = {5}, c[32] = {1};
    TT_OK(kith_vv_set(vv, a, 10));
    TT_OK(kith_vv_set(vv, c, 3));
    TT_EQ(kith_vv_count(vv), 2);
    TT_ASSERT(!memcmp(kith_vv_author(vv, 0), c, 32)); /* sorted */
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_HELLO);
    sb_u8(&b, 0);
    sb_vv(&b, vv);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.hello.n, 2);
    kith_vv *back = NULL;
    TT_OK(sync_vv_from_wire(m.u.hello.vv, m.u.hello.n, &back));
    TT_EQ(kith_vv_get(back, a), 10);
    TT_EQ(kith_vv_get(back, c), 3);
    kith_vv_free(back);
    /* swap the two entries: not ascending -> refused */
    uint8_t tmp[40];
    uint8_t *e = b.p + SYNC_PRE + SYNC_HDR + 1 + 4;
    memcpy(tmp, e, 40);
    memcpy(e, e + 40, 40);
    memcpy(e + 40, tmp, 40);
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    /* a duplicate author -> refused */
    memcpy(e + 40, e, 40);
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
    kith_vv_free(vv);
}

TT_TEST(test_vv_check)
{
    kith_vv *vv = NULL;
    TT_OK(kith_vv_new(&vv));
    uint8_t a[32] = {7};
    TT_EQ(kith_vv_check(vv, a, 1), KITH_SEQ_NEXT);
    TT_EQ(kith_vv_check(vv, a, 2), KITH_SEQ_GAP);
    TT_OK(kith_vv_set(vv, a, 1));
    TT_EQ(kith_vv_check(vv, a, 1), KITH_SEQ_DUP);
    TT_EQ(kith_vv_check(vv, a, 2), KITH_SEQ_NEXT);
    TT_OK(kith_vv_set(vv, a, 0));
    TT_EQ(kith_vv_count(vv), 0);
    kith_vv_free(vv);
}

TT_TEST(test_header_checks)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_CAUGHT_UP);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    uint8_t f[16];
    memcpy(f, p, n);
    /* trailing byte */
    f[n] = 0;
    TT_EQ(sync_frame_decode(f, n + 1, &m, NULL), KITH_ECORRUPT);
    put_u32(f + 4, 1);
    const char *why = NULL;
    TT_EQ(sync_frame_decode(f, n + 1, &m, &why), KITH_ECORRUPT);
    TT_STREQ(why, "trailing bytes after the message");
    /* length field lies */
    put_u32(f + 4, 5);
    TT_EQ(sync_frame_decode(f, n, &m, NULL), KITH_ECORRUPT);
    put_u32(f + 4, 0);
    /* bad magic */
    f[0] = 'x';
    TT_EQ(sync_frame_decode(f, n, &m, NULL), KITH_ECORRUPT);
    f[0] = 'k';
    /* unknown type */
    f[3] = 0x55;
    TT_EQ(sync_frame_decode(f, n, &m, &why), KITH_ECORRUPT);
    TT_STREQ(why, "unknown message type");
    /* another version: told apart */
    f[3] = SYNC_CAUGHT_UP;
    f[2] = 2;
    TT_EQ(sync_frame_decode(f, n, &m, NULL), KITH_EVERSION);
    TT_EQ(m.version, 2);
    TT_EQ(sync_frame_decode(NULL, 0, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
}

TT_TEST(test_error_any_version)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_ERROR);
    sb_u16(&b, SYNC_ST_VERSION);
    sb_bytes(&b, "speak 1", 7);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    b.p[SYNC_PRE + 2] = 9; /* a future version's refusal */
    struct sync_msg m;
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.version, 9);
    TT_EQ(m.u.error.code, SYNC_ST_VERSION);
    TT_EQ(m.u.error.text_len, 7);
    sb_release(&b);
}

TT_TEST(test_field_limits)
{
    /* a text longer than SYNC_TEXT_MAX is refused even when present */
    struct sbuf b;
    sb_init(&b);
    static uint8_t big[SYNC_TEXT_MAX + 1];
    sync_frame_begin(&b, SYNC_ERROR);
    sb_u16(&b, 1);
    sb_bytes(&b, big, sizeof big);
    const uint8_t *p;
    size_t n = frame(&b, &p);
    struct sync_msg m;
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
    /* a length prefix pointing past the end */
    sb_init(&b);
    sync_frame_begin(&b, SYNC_PUSH);
    sb_u32(&b, 0xFFFFFFF0u);
    n = frame(&b, &p);
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
    /* a vector count that would overflow */
    sb_init(&b);
    sync_frame_begin(&b, SYNC_HELLO_REPLY);
    sb_u32(&b, 0xFFFFFFFFu);
    n = frame(&b, &p);
    TT_EQ(sync_frame_decode(p, n, &m, NULL), KITH_ECORRUPT);
    sb_release(&b);
}

TT_TEST(test_all_types_roundtrip)
{
    uint8_t a[32] = {1};
    struct sbuf b;
    const uint8_t *p;
    size_t n;
    struct sync_msg m;

    sb_init(&b);
    sync_frame_begin(&b, SYNC_PUSH_RESULT);
    sb_raw(&b, a, 32);
    sb_u64(&b, 77);
    sb_u16(&b, SYNC_ST_GAP);
    sb_bytes(&b, "gap", 3);
    n = frame(&b, &p);
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.push_result.seq, 77);
    TT_EQ(m.u.push_result.status, SYNC_ST_GAP);
    TT_ASSERT(prefixes_fail(p, n));
    sb_release(&b);

    sb_init(&b);
    sync_frame_begin(&b, SYNC_MEMBER_OP);
    sb_bytes(&b, "op", 2);
    sb_bytes(&b, "w", 1);
    n = frame(&b, &p);
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.member_op.op_len, 2);
    TT_EQ(m.u.member_op.wrapped_len, 1);
    sb_release(&b);

    sb_init(&b);
    sync_frame_begin(&b, SYNC_MEMBER_RESULT);
    sb_u16(&b, 0);
    sb_u64(&b, 5);
    sb_bytes(&b, "", 0);
    n = frame(&b, &p);
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.member_result.length, 5);
    sb_release(&b);

    sb_init(&b);
    sync_frame_begin(&b, SYNC_SNAPSHOT);
    sb_vv(&b, NULL);
    sb_bytes(&b, "snap", 4);
    n = frame(&b, &p);
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.snapshot.n, 0);
    TT_EQ(m.u.snapshot.len, 4);
    TT_ASSERT(prefixes_fail(p, n));
    sb_release(&b);

    sb_init(&b);
    sync_frame_begin(&b, SYNC_MEMBER_UPDATE);
    sb_bytes(&b, "x", 1);
    n = frame(&b, &p);
    TT_OK(sync_frame_decode(p, n, &m, NULL));
    TT_EQ(m.u.member_update.op_len, 1);
    sb_release(&b);
}

TT_MAIN(TT_CASE(test_challenge_roundtrip), TT_CASE(test_auth_roundtrip),
        TT_CASE(test_welcome_list), TT_CASE(test_hello_vector_canonical), TT_CASE(test_vv_check),
        TT_CASE(test_header_checks), TT_CASE(test_error_any_version),
        TT_CASE(test_field_limits), TT_CASE(test_all_types_roundtrip))
