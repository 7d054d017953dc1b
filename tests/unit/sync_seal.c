/*
 * Sealed blobs: round trip; flipping any single byte is refused (by the
 * signature, or the AEAD); a wrong key, epoch or workspace is refused;
 * the hub-side check (verify, no key) accepts only intact blobs; duplicate
 * and replayed blobs are recognised by (author, seq) at the receiver.
 * Blobs of both versions built here by hand from docs/PROTOCOL.md (section
 * 2) open: version 1 as older devices sealed them, version 2 as written.
 */
#include <sodium.h>

#include "kith/kith.h"
#include "kith/sync.h"
#include "tt.h"

static uint8_t pk[32], sk[64], ws[16], key[32];

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    if (kith_device_keygen(pk, sk) != KITH_OK)
        abort();
    randombytes_buf(ws, sizeof ws);
    randombytes_buf(key, sizeof key);
}

TT_TEST(test_roundtrip)
{
    setup();
    static const char text[] = "canary: the quick brown fox";
    uint8_t *b = NULL, *pt = NULL;
    size_t n = 0, pl = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 42, 3, key, (const uint8_t *)text,
                         sizeof text - 1, &b, &n));
    TT_EQ(n, sizeof text - 1 + KITH_BLOB_MIN_OVERHEAD); /* seq and epoch < 128 */
    TT_ASSERT(!memmem(b, n, "canary", 6)); /* not in clear */
    kith_blob_info info;
    TT_OK(kith_blob_parse(b, n, &info));
    TT_EQ(info.version, 2);
    TT_EQ(info.seq, 42);
    TT_EQ(info.epoch, 3);
    TT_EQ(info.kind, KITH_BLOB_CHANGE);
    TT_ASSERT(!memcmp(info.author, pk, 32));
    TT_EQ(info.plain_len, sizeof text - 1);
    TT_OK(kith_blob_verify(b, n, ws, &info));
    TT_ASSERT(!memcmp(info.ws_id, ws, 16));
    TT_OK(kith_blob_open(b, n, ws, key, &info, &pt, &pl));
    TT_EQ(pl, sizeof text - 1);
    TT_ASSERT(!memcmp(pt, text, pl));
    kith_free(pt);
    kith_free(b);
}

TT_TEST(test_empty_plaintext)
{
    setup();
    uint8_t *b = NULL, *pt = NULL;
    size_t n = 0, pl = 9;
    TT_OK(kith_blob_seal(KITH_BLOB_SNAPSHOT, ws, sk, 1, 0, key, NULL, 0, &b, &n));
    TT_EQ(n, KITH_BLOB_MIN_OVERHEAD);
    kith_blob_info info;
    TT_OK(kith_blob_open(b, n, ws, key, &info, &pt, &pl));
    TT_EQ(pl, 0);
    TT_EQ(info.kind, KITH_BLOB_SNAPSHOT);
    kith_free(pt);
    kith_free(b);
}

TT_TEST(test_tamper_every_byte)
{
    setup();
    uint8_t *b = NULL, *pt = NULL;
    size_t n = 0, pl = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 7, 1, key, (const uint8_t *)"hello", 5, &b,
                         &n));
    kith_blob_info info;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[i] ^= (uint8_t)(1u << bit);
            int v = kith_blob_verify(b, n, ws, &info);
            int o = kith_blob_open(b, n, ws, key, &info, &pt, &pl);
            b[i] ^= (uint8_t)(1u << bit);
            if (v == KITH_OK || o == KITH_OK)
                TT_FAIL_("byte %zu bit %d flipped: verify %d open %d", i, bit, v, o);
            TT_ASSERT(pt == NULL);
        }
    }
    /* truncation and extension */
    TT_ASSERT(kith_blob_open(b, n - 1, ws, key, &info, &pt, &pl) != KITH_OK);
    TT_ASSERT(kith_blob_parse(b, KITH_BLOB_MIN_OVERHEAD - 1, &info) == KITH_ECORRUPT);
    TT_OK(kith_blob_open(b, n, ws, key, &info, &pt, &pl));
    kith_free(pt);
    kith_free(b);
}

TT_TEST(test_wrong_key_epoch_ws)
{
    setup();
    uint8_t *b = NULL, *pt = NULL;
    size_t n = 0, pl = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 1, 5, key, (const uint8_t *)"x", 1, &b, &n));
    kith_blob_info info;
    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    TT_EQ(kith_blob_open(b, n, ws, other, &info, &pt, &pl), KITH_EAUTH);
    uint8_t ws2[16];
    memcpy(ws2, ws, 16);
    ws2[15] ^= 0x80;
    TT_EQ(kith_blob_open(b, n, ws2, key, &info, &pt, &pl), KITH_EAUTH);
    TT_EQ(kith_blob_verify(b, n, ws2, &info), KITH_EAUTH); /* the id is bound, not sent */
    /* Re-labelling the epoch (even re-signed by the author) fails the AEAD:
     * the header is associated data. */
    uint8_t *b2 = NULL;
    size_t n2 = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 1, 6, key, (const uint8_t *)"x", 1, &b2, &n2));
    TT_EQ(n2, n);
    memcpy(b2 + 35, b + 35, n - 35 - 64); /* epoch-5 nonce+ciphertext under an epoch-6 header */
    unsigned char msg[200];
    memcpy(msg, "kith-blob-v2", 12);
    memcpy(msg + 12, ws, 16);
    memcpy(msg + 28, b2, n2 - 64);
    crypto_sign_detached(b2 + n2 - 64, NULL, msg, 28 + n2 - 64, sk);
    TT_OK(kith_blob_verify(b2, n2, ws, &info)); /* the hub would take it ... */
    TT_EQ(kith_blob_open(b2, n2, ws, key, &info, &pt, &pl), KITH_EAUTH); /* ... members not */
    kith_free(b2);
    kith_free(b);
}

TT_TEST(test_forged_author)
{
    setup();
    uint8_t pk2[32], sk2[64];
    TT_OK(kith_device_keygen(pk2, sk2));
    uint8_t *b = NULL;
    size_t n = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk2, 1, 0, key, (const uint8_t *)"x", 1, &b, &n));
    memcpy(b + 1, pk, 32); /* claim to be the first device */
    kith_blob_info info;
    TT_EQ(kith_blob_verify(b, n, ws, &info), KITH_EAUTH);
    kith_free(b);
}

TT_TEST(test_bad_args_and_versions)
{
    setup();
    uint8_t *b = NULL;
    size_t n = 0;
    TT_EQ(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 0, 0, key, NULL, 0, &b, &n), KITH_EINVAL);
    TT_EQ(kith_blob_seal(9, ws, sk, 1, 0, key, NULL, 0, &b, &n), KITH_EINVAL);
    TT_ASSERT(b == NULL);
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 1, 0, key, NULL, 0, &b, &n));
    kith_blob_info info;
    TT_EQ(b[0], 0x21);
    b[0] = 0x31;
    TT_EQ(kith_blob_parse(b, n, &info), KITH_EVERSION);
    b[0] = 0x23;
    TT_EQ(kith_blob_parse(b, n, &info), KITH_ECORRUPT);
    b[0] = 0x21;
    b[33] = 0x80; /* seq 0 as a two-byte varint: not minimal */
    b[34] = 0x00;
    TT_EQ(kith_blob_parse(b, n, &info), KITH_ECORRUPT);
    b[33] = 0x00; /* seq 0 */
    TT_EQ(kith_blob_parse(b, n, &info), KITH_ECORRUPT);
    kith_free(b);
    TT_EQ(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, (uint64_t)INT64_MAX + 1, 0, key, NULL, 0, &b, &n),
          KITH_EINVAL);
    /* large seq and epoch: longer varints */
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, INT64_MAX, UINT32_MAX, key, NULL, 0, &b, &n));
    TT_EQ(n, KITH_BLOB_MIN_OVERHEAD + 8 + 4);
    TT_OK(kith_blob_verify(b, n, ws, &info));
    TT_EQ(info.seq, INT64_MAX);
    TT_EQ(info.epoch, UINT32_MAX);
    kith_free(b);
}

TT_TEST(test_replay_detection)
{
    setup();
    kith_vv *held = NULL;
    TT_OK(kith_vv_new(&held));
    uint8_t *b[3];
    size_t n[3];
    for (int i = 0; i < 3; i++)
        TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, (uint64_t)i + 1, 0, key,
                             (const uint8_t *)"e", 1, &b[i], &n[i]));
    /* deliver 1, 3 (gap), 2, 1 (replay), 3 */
    int order[] = {0, 2, 1, 0, 2};
    int want[] = {KITH_SEQ_NEXT, KITH_SEQ_GAP, KITH_SEQ_NEXT, KITH_SEQ_DUP, KITH_SEQ_NEXT};
    for (int k = 0; k < 5; k++) {
        kith_blob_info info;
        TT_OK(kith_blob_verify(b[order[k]], n[order[k]], ws, &info));
        enum kith_seq_check c = kith_vv_check(held, info.author, info.seq);
        TT_EQ(c, want[k]);
        if (c == KITH_SEQ_NEXT)
            TT_OK(kith_vv_set(held, info.author, info.seq));
    }
    TT_EQ(kith_vv_get(held, pk), 3);
    for (int i = 0; i < 3; i++)
        kith_free(b[i]);
    kith_vv_free(held);
}

/* A version 1 blob as devices before blob version 2 sealed it (a hub may
 * still hold such blobs): 62-byte header, 24-byte nonce, fixed widths. */
static size_t seal_v1(uint8_t *b, uint64_t seq, uint32_t epoch, const char *text)
{
    size_t pl = strlen(text), n = 166 + pl;
    b[0] = 1;
    b[1] = KITH_BLOB_CHANGE;
    memcpy(b + 2, ws, 16);
    memcpy(b + 18, pk, 32);
    for (int i = 0; i < 8; i++)
        b[50 + i] = (uint8_t)(seq >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        b[58 + i] = (uint8_t)(epoch >> (24 - 8 * i));
    randombytes_buf(b + 62, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + 86, NULL, (const uint8_t *)text, pl, b, 62,
                                               NULL, b + 62, key);
    uint8_t msg[512];
    memcpy(msg, "kith-blob-v1", 12);
    memcpy(msg + 12, b, n - 64);
    crypto_sign_detached(b + n - 64, NULL, msg, 12 + n - 64, sk);
    return n;
}

TT_TEST(test_version1_still_opens)
{
    setup();
    uint8_t b[300], *pt = NULL;
    size_t n = seal_v1(b, 300, 2, "old payload"), pl = 0;
    kith_blob_info info;
    TT_OK(kith_blob_parse(b, n, &info));
    TT_EQ(info.version, 1);
    TT_EQ(info.seq, 300);
    TT_EQ(info.epoch, 2);
    TT_EQ(info.plain_len, 11);
    TT_ASSERT(!memcmp(info.ws_id, ws, 16));
    TT_OK(kith_blob_verify(b, n, ws, &info));
    TT_OK(kith_blob_open(b, n, ws, key, &info, &pt, &pl));
    TT_EQ(pl, 11);
    TT_ASSERT(!memcmp(pt, "old payload", 11));
    kith_free(pt);
    uint8_t ws2[16];
    memcpy(ws2, ws, 16);
    ws2[0] ^= 1;
    TT_EQ(kith_blob_verify(b, n, ws2, &info), KITH_EAUTH);
    b[100] ^= 1;
    TT_EQ(kith_blob_verify(b, n, ws, &info), KITH_EAUTH);
}

/* Version 2 from the specification alone: seq 300 and epoch 2 as varints,
 * the nonce's first 16 bytes the BLAKE2b-128 of workspace id || header. */
TT_TEST(test_version2_by_hand)
{
    setup();
    static const char text[] = "new payload";
    uint8_t hdr[64], b[300], nonce[24], *pt = NULL;
    size_t h = 0, pl = 0;
    memcpy(hdr, ws, 16);
    h = 16;
    hdr[h++] = 0x21;
    memcpy(hdr + h, pk, 32);
    h += 32;
    hdr[h++] = 0xac; /* 300 = 0b10_0101100 */
    hdr[h++] = 0x02;
    hdr[h++] = 0x02;
    crypto_generichash(nonce, 16, hdr, h, NULL, 0);
    randombytes_buf(nonce + 16, 8);
    size_t hl = h - 16, n = hl + 8 + sizeof text - 1 + 16 + 64;
    memcpy(b, hdr + 16, hl);
    memcpy(b + hl, nonce + 16, 8);
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + hl + 8, NULL, (const uint8_t *)text,
                                               sizeof text - 1, hdr, h, NULL, nonce, key);
    uint8_t msg[512];
    memcpy(msg, "kith-blob-v2", 12);
    memcpy(msg + 12, ws, 16);
    memcpy(msg + 28, b, n - 64);
    crypto_sign_detached(b + n - 64, NULL, msg, 28 + n - 64, sk);
    kith_blob_info info;
    TT_OK(kith_blob_open(b, n, ws, key, &info, &pt, &pl));
    TT_EQ(info.version, 2);
    TT_EQ(info.seq, 300);
    TT_EQ(info.epoch, 2);
    TT_EQ(pl, sizeof text - 1);
    TT_ASSERT(!memcmp(pt, text, pl));
    kith_free(pt);
    /* and what kith_blob_seal writes has the same layout */
    uint8_t *s = NULL;
    size_t sn = 0;
    TT_OK(kith_blob_seal(KITH_BLOB_CHANGE, ws, sk, 300, 2, key, (const uint8_t *)text,
                         sizeof text - 1, &s, &sn));
    TT_EQ(sn, n);
    TT_ASSERT(!memcmp(s, b, hl));
    kith_free(s);
}

TT_MAIN(TT_CASE(test_roundtrip), TT_CASE(test_empty_plaintext), TT_CASE(test_tamper_every_byte),
        TT_CASE(test_wrong_key_epoch_ws), TT_CASE(test_forged_author),
        TT_CASE(test_bad_args_and_versions), TT_CASE(test_replay_detection),
        TT_CASE(test_version1_still_opens), TT_CASE(test_version2_by_hand))
