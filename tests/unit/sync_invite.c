/*
 * Invite links: round trip; any single-character change, truncation,
 * padding, whitespace or foreign alphabet is refused; bad hub URLs are
 * refused when encoding and when parsing. Wrapped keys: round trip; wrong
 * invite key, workspace or capability, or any flipped byte, is refused.
 */
#include <sodium.h>

#include "kith/kith.h"
#include "kith/sync.h"
#include "tt.h"

static void sample(kith_invite *inv)
{
    memset(inv, 0, sizeof *inv);
    snprintf(inv->hub_url, sizeof inv->hub_url, "wss://hub.example.org:8443/kith");
    randombytes_buf(inv->fingerprint, 32);
    randombytes_buf(inv->ws_id, 16);
    randombytes_buf(inv->genesis, 32);
    kith_invite_random(inv);
}

TT_TEST(test_link_roundtrip)
{
    kith_invite a, b;
    sample(&a);
    char *link = NULL;
    TT_OK(kith_invite_encode(&a, &link));
    TT_ASSERT(!strncmp(link, "kith://join/", 12));
    TT_OK(kith_invite_parse(link, &b));
    TT_STREQ(b.hub_url, a.hub_url);
    TT_ASSERT(!memcmp(a.fingerprint, b.fingerprint, 32));
    TT_ASSERT(!memcmp(a.ws_id, b.ws_id, 16));
    TT_ASSERT(!memcmp(a.genesis, b.genesis, 32));
    TT_ASSERT(!memcmp(a.cap_seed, b.cap_seed, 32));
    TT_ASSERT(!memcmp(a.invite_key, b.invite_key, 32));
    kith_free(link);
}

TT_TEST(test_link_mutations)
{
    kith_invite a, b;
    sample(&a);
    char *link = NULL;
    TT_OK(kith_invite_encode(&a, &link));
    size_t n = strlen(link);
    char *m = malloc(n + 3);
    static const char alphabet[] = "AZaz09-_+/= .";
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (link[i] == *c)
                continue;
            memcpy(m, link, n + 1);
            m[i] = *c;
            if (kith_invite_parse(m, &b) == KITH_OK)
                accepted++;
        }
    }
    TT_EQ(accepted, 0);
    /* truncation at every length */
    for (size_t k = 0; k < n; k++) {
        memcpy(m, link, k);
        m[k] = 0;
        TT_ASSERT(kith_invite_parse(m, &b) != KITH_OK);
    }
    /* padding, trailing newline, leading space */
    snprintf(m, n + 3, "%s=", link);
    TT_ASSERT(kith_invite_parse(m, &b) != KITH_OK);
    snprintf(m, n + 3, "%s\n", link);
    TT_ASSERT(kith_invite_parse(m, &b) != KITH_OK);
    snprintf(m, n + 3, " %s", link);
    TT_ASSERT(kith_invite_parse(m, &b) != KITH_OK);
    TT_ASSERT(kith_invite_parse(NULL, &b) != KITH_OK);
    TT_ASSERT(kith_invite_parse("kith://join/", &b) != KITH_OK);
    TT_ASSERT(kith_invite_parse("https://join/AAAA", &b) != KITH_OK);
    free(m);
    kith_free(link);
}

TT_TEST(test_urls)
{
    static const char *const good[] = {"wss://127.0.0.1:1", "wss://[::1]:65535",
                                       "wss://a-b.example:443/", "wss://h:80/p/q?x=1"};
    static const char *const bad[] = {"ws://h:1",        "wss://h",          "wss://:80",
                                      "wss://h:0",       "wss://h:65536",    "wss://h:080",
                                      "wss://h:80x",     "wss://h h:80",     "wss://[]:80",
                                      "wss://h:80/a b", "wss://h_x:80",     "https://h:443"};
    kith_invite a, b;
    char *link = NULL;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sample(&a);
        snprintf(a.hub_url, sizeof a.hub_url, "%s", good[i]);
        TT_OK(kith_invite_encode(&a, &link));
        TT_OK(kith_invite_parse(link, &b));
        TT_STREQ(b.hub_url, good[i]);
        kith_free(link);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sample(&a);
        snprintf(a.hub_url, sizeof a.hub_url, "%s", bad[i]);
        if (kith_invite_encode(&a, &link) != KITH_EINVAL)
            TT_FAIL_("url '%s' accepted", bad[i]);
    }
}

TT_TEST(test_wrap)
{
    uint8_t ikey[32], ws[16], cap[32];
    randombytes_buf(ikey, 32);
    randombytes_buf(ws, 16);
    randombytes_buf(cap, 32);
    kith_ws_key keys[2] = {{0, {0}}, {1, {0}}};
    randombytes_buf(keys[0].key, 32);
    randombytes_buf(keys[1].key, 32);
    uint8_t *w = NULL;
    size_t wl = 0;
    TT_OK(kith_invite_wrap(ikey, ws, cap, keys, 2, &w, &wl));
    TT_ASSERT(!memmem(w, wl, keys[0].key, 32));
    kith_ws_key *out = NULL;
    size_t n = 0;
    TT_OK(kith_invite_unwrap(ikey, ws, cap, w, wl, &out, &n));
    TT_EQ(n, 2);
    TT_EQ(out[1].epoch, 1);
    TT_ASSERT(!memcmp(out[0].key, keys[0].key, 32));
    TT_ASSERT(!memcmp(out[1].key, keys[1].key, 32));
    sodium_memzero(out, n * sizeof *out);
    kith_free(out);
    uint8_t bad[32];
    memcpy(bad, ikey, 32);
    bad[3] ^= 1;
    TT_EQ(kith_invite_unwrap(bad, ws, cap, w, wl, &out, &n), KITH_EAUTH);
    memcpy(bad, cap, 32);
    bad[3] ^= 1;
    TT_EQ(kith_invite_unwrap(ikey, ws, bad, w, wl, &out, &n), KITH_EAUTH);
    for (size_t i = 0; i < wl; i++) {
        w[i] ^= 0x40;
        int rc = kith_invite_unwrap(ikey, ws, cap, w, wl, &out, &n);
        w[i] ^= 0x40;
        if (rc == KITH_OK)
            TT_FAIL_("flipped byte %zu accepted", i);
    }
    TT_ASSERT(out == NULL);
    TT_EQ(kith_invite_unwrap(ikey, ws, cap, w, 10, &out, &n), KITH_ECORRUPT);
    kith_free(w);
    TT_EQ(kith_invite_wrap(ikey, ws, cap, keys, 0, &w, &wl), KITH_EINVAL);
    TT_ASSERT(w == NULL);
}

TT_TEST(test_fingerprint_text)
{
    uint8_t fp[32], back[32];
    randombytes_buf(fp, 32);
    char s[72];
    kith_fingerprint_format(fp, s);
    TT_EQ(strlen(s), 71);
    TT_OK(kith_fingerprint_parse(s, back));
    TT_ASSERT(!memcmp(fp, back, 32));
    TT_OK(kith_fingerprint_parse(s + 7, back));
    s[20] = 'g';
    TT_EQ(kith_fingerprint_parse(s, back), KITH_EINVAL);
    TT_EQ(kith_fingerprint_parse("SHA256:abc", back), KITH_EINVAL);
    TT_EQ(kith_role_parse("writer"), KITH_ROLE_WRITER);
    TT_EQ(kith_role_parse("root"), KITH_ROLE_NONE);
}

TT_MAIN(TT_CASE(test_link_roundtrip), TT_CASE(test_link_mutations), TT_CASE(test_urls),
        TT_CASE(test_wrap), TT_CASE(test_fingerprint_text))
