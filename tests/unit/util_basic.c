/* Unit tests of src/util: varints, zigzag, UTF-8 validation, error text. */
#include "kith/kith.h"
#include "tt.h"
#include "util/util_int.h"

TT_TEST(varint_round_trip)
{
    uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t buf[10];
        uint64_t back = 0;
        size_t n = kith_varint_put(buf, vals[i]);
        TT_EQ(kith_varint_get(buf, n, &back), n);
        TT_ASSERT(back == vals[i]);
        TT_EQ(kith_varint_get(buf, n - 1, &back), 0); /* truncated */
    }
    uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    uint64_t v;
    TT_EQ(kith_varint_get(over, 10, &v), 0);
}

TT_TEST(zigzag)
{
    int64_t vals[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        TT_ASSERT(kith_unzigzag(kith_zigzag(vals[i])) == vals[i]);
    TT_EQ(kith_zigzag(-1), 1);
}

TT_TEST(utf8)
{
    TT_EQ(kith_utf8_count("abc", 3), 3);
    TT_EQ(kith_utf8_count("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15), 9);
    TT_EQ(kith_utf8_count("\xc3", 1), -1);           /* truncated */
    TT_EQ(kith_utf8_count("\xc0\xaf", 2), -1);       /* overlong */
    TT_EQ(kith_utf8_count("\xed\xa0\x80", 3), -1);   /* surrogate */
    TT_EQ(kith_utf8_count("\xf4\x90\x80\x80", 4), -1); /* > U+10FFFF */
}

TT_TEST(errors)
{
    TT_STREQ(kith_strerror(KITH_ENOMEM), "out of memory");
    TT_STREQ(kith_err_name(KITH_ECORRUPT), "KITH_ECORRUPT");
    TT_STREQ(kith_strerror(-999), "unknown error");
}

TT_MAIN(TT_CASE(varint_round_trip), TT_CASE(zigzag), TT_CASE(utf8), TT_CASE(errors))
