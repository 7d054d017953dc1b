/*
 * Invite links and wrapped workspace keys (PROTOCOL.md "Invites").
 *
 * A link is "kith://join/" + base64url (no padding) of a versioned binary
 * payload with a 4-byte checksum, so a truncated or mistyped paste is caught
 * before any network traffic. The parser accepts exactly one spelling of a
 * given payload: a strict base64url alphabet, no whitespace, exact lengths,
 * and a hub URL of a restricted shape.
 */
#include <sodium.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

#define LINK_PREFIX   "kith://join/"
#define LINK_VERSION  1
#define LINK_FIXED    (1 + 32 + 16 + 32 + 32 + 32) /* version .. invite key */
#define LINK_CHECK    4
#define LINK_MAX      (LINK_FIXED + 1 + KITH_INVITE_URL_MAX + LINK_CHECK)
#define WRAP_CTX      "kith-wrap-v1"
#define WRAP_NONCE    24
#define WRAP_MAX_KEYS 1024

void kith_invite_random(kith_invite *inv)
{
    if (sync_sodium_init())
        return; /* sodium_init fails only without a random source; then so does everything */
    randombytes_buf(inv->cap_seed, sizeof inv->cap_seed);
    randombytes_buf(inv->invite_key, sizeof inv->invite_key);
}

void kith_invite_cap_pk(const uint8_t cap_seed[KITH_CAP_BYTES], uint8_t cap_pk[KITH_PK_BYTES])
{
    uint8_t sk[64];
    crypto_sign_seed_keypair(cap_pk, sk, cap_seed);
    sodium_memzero(sk, sizeof sk);
}

static int is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

static int is_hex_or_colon(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

/* wss://HOST:PORT[/path]: HOST a DNS name or IPv4 ([A-Za-z0-9.-]+) or an
 * [IPv6] literal, PORT 1-65535 without leading zeros, path printable ASCII. */
static int url_ok(const char *u, size_t n)
{
    if (n < 6 || n > KITH_INVITE_URL_MAX || memcmp(u, "wss://", 6) != 0)
        return 0;
    size_t i = 6, h0 = i;
    if (i < n && u[i] == '[') {
        for (i++; i < n && is_hex_or_colon(u[i]); i++)
            ;
        if (i >= n || u[i] != ']' || i == h0 + 1)
            return 0;
        i++;
    } else {
        for (; i < n && is_host_char(u[i]); i++)
            ;
        if (i == h0)
            return 0;
    }
    if (i >= n || u[i] != ':')
        return 0;
    size_t p0 = ++i;
    unsigned long port = 0;
    for (; i < n && u[i] >= '0' && u[i] <= '9' && i - p0 < 5; i++)
        port = port * 10 + (unsigned long)(u[i] - '0');
    if (i == p0 || u[p0] == '0' || port > 65535)
        return 0;
    if (i == n)
        return 1;
    if (u[i] != '/')
        return 0;
    for (; i < n; i++)
        if (u[i] < 0x21 || u[i] > 0x7e)
            return 0;
    return 1;
}

static void checksum(const uint8_t *p, size_t n, uint8_t out[LINK_CHECK])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, p, n, NULL, 0);
    memcpy(out, h, LINK_CHECK);
}

int kith_invite_encode(const kith_invite *inv, char **link)
{
    *link = NULL;
    size_t ul = strnlen(inv->hub_url, sizeof inv->hub_url);
    if (ul > KITH_INVITE_URL_MAX || !url_ok(inv->hub_url, ul))
        return KITH_EINVAL;
    if (sync_sodium_init())
        return KITH_EIO;
    uint8_t p[LINK_MAX];
    size_t n = 0;
    p[n++] = LINK_VERSION;
    memcpy(p + n, inv->fingerprint, 32), n += 32;
    memcpy(p + n, inv->ws_id, 16), n += 16;
    memcpy(p + n, inv->genesis, 32), n += 32;
    memcpy(p + n, inv->cap_seed, 32), n += 32;
    memcpy(p + n, inv->invite_key, 32), n += 32;
    p[n++] = (uint8_t)ul;
    memcpy(p + n, inv->hub_url, ul), n += ul;
    checksum(p, n, p + n);
    n += LINK_CHECK;
    size_t b64 = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t pl = strlen(LINK_PREFIX);
    char *s = kith_malloc(pl + b64);
    if (!s) {
        sodium_memzero(p, sizeof p);
        return KITH_ENOMEM;
    }
    memcpy(s, LINK_PREFIX, pl);
    sodium_bin2base64(s + pl, b64, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(p, sizeof p);
    *link = s;
    return KITH_OK;
}

int kith_invite_parse(const char *link, kith_invite *out)
{
    memset(out, 0, sizeof *out);
    size_t pl = strlen(LINK_PREFIX);
    if (!link || strncmp(link, LINK_PREFIX, pl) != 0)
        return KITH_ECORRUPT;
    const char *t = link + pl;
    size_t tl = strnlen(t, 2 * LINK_MAX);
    if (tl == 0 || tl >= 2 * LINK_MAX)
        return KITH_ECORRUPT;
    for (size_t i = 0; i < tl; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return KITH_ECORRUPT;
    }
    if (sync_sodium_init())
        return KITH_EIO;
    uint8_t p[LINK_MAX + 3];
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(p, sizeof p, t, tl, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != t + tl)
        return KITH_ECORRUPT;
    int rc = KITH_ECORRUPT;
    if (n < LINK_FIXED + 1 + LINK_CHECK)
        goto out;
    if (p[0] != LINK_VERSION) {
        rc = KITH_EVERSION;
        goto out;
    }
    size_t ul = p[LINK_FIXED];
    if (n != LINK_FIXED + 1 + ul + LINK_CHECK)
        goto out;
    uint8_t ck[LINK_CHECK];
    checksum(p, n - LINK_CHECK, ck);
    if (sodium_memcmp(ck, p + n - LINK_CHECK, LINK_CHECK) != 0)
        goto out;
    const char *url = (const char *)p + LINK_FIXED + 1;
    if (!url_ok(url, ul))
        goto out;
    /* Re-encoding must give the same text: base64 decoders accept non-zero
     * bits in the last character, which would give one payload two links. */
    size_t want = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    if (want != tl)
        goto out;
    char re[2 * LINK_MAX];
    sodium_bin2base64(re, sizeof re, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (memcmp(re, t, tl) != 0)
        goto out;
    size_t o = 1;
    memcpy(out->fingerprint, p + o, 32), o += 32;
    memcpy(out->ws_id, p + o, 16), o += 16;
    memcpy(out->genesis, p + o, 32), o += 32;
    memcpy(out->cap_seed, p + o, 32), o += 32;
    memcpy(out->invite_key, p + o, 32), o += 32;
    memcpy(out->hub_url, url, ul);
    out->hub_url[ul] = 0;
    rc = KITH_OK;
out:
    sodium_memzero(p, sizeof p);
    return rc;
}

/* ---- wrapped keys ----------------------------------------------------------------------- */

static void wrap_ad(uint8_t ad[12 + 16 + 32], const uint8_t *ws_id, const uint8_t *cap_pk)
{
    memcpy(ad, WRAP_CTX, 12);
    memcpy(ad + 12, ws_id, 16);
    memcpy(ad + 28, cap_pk, 32);
}

int kith_invite_wrap(const uint8_t invite_key[KITH_CAP_BYTES],
                     const uint8_t ws_id[KITH_WS_ID_BYTES], const uint8_t cap_pk[KITH_PK_BYTES],
                     const kith_ws_key *keys, size_t n, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n > WRAP_MAX_KEYS)
        return KITH_EINVAL;
    if (sync_sodium_init())
        return KITH_EIO;
    size_t pt_len = 4 + n * 36;
    uint8_t *pt = sodium_malloc(pt_len);
    size_t len = WRAP_NONCE + pt_len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    uint8_t *w = kith_malloc(len);
    if (!pt || !w) {
        if (pt)
            sodium_free(pt);
        kith_free(w);
        return KITH_ENOMEM;
    }
    put_u32(pt, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put_u32(pt + 4 + i * 36, keys[i].epoch);
        memcpy(pt + 8 + i * 36, keys[i].key, 32);
    }
    uint8_t ad[60];
    wrap_ad(ad, ws_id, cap_pk);
    randombytes_buf(w, WRAP_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(w + WRAP_NONCE, NULL, pt, pt_len, ad, sizeof ad,
                                               NULL, w, invite_key);
    sodium_free(pt);
    *out = w;
    *out_len = len;
    return KITH_OK;
}

int kith_invite_unwrap(const uint8_t invite_key[KITH_CAP_BYTES],
                       const uint8_t ws_id[KITH_WS_ID_BYTES], const uint8_t cap_pk[KITH_PK_BYTES],
                       const uint8_t *wrapped, size_t len, kith_ws_key **keys, size_t *n)
{
    *keys = NULL;
    *n = 0;
    const size_t tag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (!wrapped || len < WRAP_NONCE + tag + 4 || len > SYNC_WRAP_MAX)
        return KITH_ECORRUPT;
    if (sync_sodium_init())
        return KITH_EIO;
    size_t pt_len = len - WRAP_NONCE - tag;
    uint8_t *pt = sodium_malloc(pt_len);
    if (!pt)
        return KITH_ENOMEM;
    uint8_t ad[60];
    wrap_ad(ad, ws_id, cap_pk);
    int rc = KITH_EAUTH;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, wrapped + WRAP_NONCE,
                                                   len - WRAP_NONCE, ad, sizeof ad, wrapped,
                                                   invite_key) != 0)
        goto out;
    rc = KITH_ECORRUPT;
    uint32_t k = get_u32(pt);
    if (k == 0 || k > WRAP_MAX_KEYS || pt_len != 4 + (size_t)k * 36)
        goto out;
    rc = KITH_ENOMEM;
    kith_ws_key *r = kith_calloc(k, sizeof *r);
    if (!r)
        goto out;
    for (uint32_t i = 0; i < k; i++) {
        r[i].epoch = get_u32(pt + 4 + i * 36);
        memcpy(r[i].key, pt + 8 + i * 36, 32);
    }
    *keys = r;
    *n = k;
    rc = KITH_OK;
out:
    sodium_free(pt);
    return rc;
}
