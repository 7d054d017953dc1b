/*
 * Sealed change blobs (PROTOCOL.md "Blobs"): header | nonce | ciphertext |
 * signature. Encrypt-then-sign: the AEAD (XChaCha20-Poly1305-IETF, a random
 * 24-byte nonce, so no nonce state to keep across devices or crashes) keeps
 * the content from the hub and binds the header as associated data; the
 * Ed25519 signature over everything before it lets the hub, which has no
 * key, check the author and refuse forgeries, and lets members tell which
 * member wrote a blob (the AEAD alone proves only "someone with the key").
 */
#include <sodium.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

#define BLOB_VERSION 1
#define BLOB_HDR     62
#define BLOB_NONCE   24
#define BLOB_TAG     16
#define BLOB_SIG     64
#define BLOB_CTX     "kith-blob-v1"

_Static_assert(BLOB_HDR + BLOB_NONCE + BLOB_TAG + BLOB_SIG == KITH_BLOB_OVERHEAD,
               "KITH_BLOB_OVERHEAD must match the layout");

int kith_blob_parse(const uint8_t *b, size_t len, kith_blob_info *info)
{
    memset(info, 0, sizeof *info);
    if (!b || len < KITH_BLOB_OVERHEAD)
        return KITH_ECORRUPT;
    if (b[0] != BLOB_VERSION)
        return KITH_EVERSION;
    if (b[1] != KITH_BLOB_CHANGE && b[1] != KITH_BLOB_SNAPSHOT)
        return KITH_ECORRUPT;
    uint64_t seq = get_u64(b + 50);
    if (seq == 0)
        return KITH_ECORRUPT;
    info->kind = b[1];
    memcpy(info->ws_id, b + 2, 16);
    memcpy(info->author, b + 18, 32);
    info->seq = seq;
    info->epoch = get_u32(b + 58);
    info->plain_len = len - KITH_BLOB_OVERHEAD;
    return KITH_OK;
}

int kith_blob_verify(const uint8_t *b, size_t len, kith_blob_info *info)
{
    int rc = kith_blob_parse(b, len, info);
    if (rc)
        return rc;
    rc = sync_sodium_init();
    if (rc)
        return rc;
    return sync_verify(BLOB_CTX, b, len - BLOB_SIG, info->author, b + len - BLOB_SIG);
}

int kith_blob_seal(enum kith_blob_kind kind, const uint8_t ws_id[KITH_WS_ID_BYTES],
                   const uint8_t author_sk[KITH_SK_BYTES], uint64_t seq, uint32_t epoch,
                   const uint8_t key[KITH_WS_KEY_BYTES], const uint8_t *plain, size_t plain_len,
                   uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if ((kind != KITH_BLOB_CHANGE && kind != KITH_BLOB_SNAPSHOT) || seq == 0 ||
        (!plain && plain_len))
        return KITH_EINVAL;
    if (plain_len > SYNC_FRAME_MAX)
        return KITH_ETOOBIG;
    int rc = sync_sodium_init();
    if (rc)
        return rc;
    size_t len = plain_len + KITH_BLOB_OVERHEAD;
    uint8_t *b = kith_malloc(len);
    if (!b)
        return KITH_ENOMEM;
    b[0] = BLOB_VERSION;
    b[1] = (uint8_t)kind;
    memcpy(b + 2, ws_id, 16);
    /* libsodium's secret key holds the public key in its last 32 bytes */
    memcpy(b + 18, author_sk + 32, 32);
    put_u64(b + 50, seq);
    put_u32(b + 58, epoch);
    uint8_t *nonce = b + BLOB_HDR;
    randombytes_buf(nonce, BLOB_NONCE);
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + BLOB_NONCE, &ct_len, plain, plain_len, b,
                                               BLOB_HDR, NULL, nonce, key);
    rc = sync_sign(BLOB_CTX, b, len - BLOB_SIG, author_sk, b + len - BLOB_SIG);
    if (rc) {
        kith_free(b);
        return rc;
    }
    *out = b;
    *out_len = len;
    return KITH_OK;
}

int kith_blob_open(const uint8_t *b, size_t len, const uint8_t ws_id[KITH_WS_ID_BYTES],
                   const uint8_t key[KITH_WS_KEY_BYTES], kith_blob_info *info, uint8_t **plain,
                   size_t *plain_len)
{
    *plain = NULL;
    *plain_len = 0;
    int rc = kith_blob_verify(b, len, info);
    if (rc)
        return rc;
    if (memcmp(info->ws_id, ws_id, 16) != 0)
        return KITH_EAUTH;
    uint8_t *pt = kith_malloc(info->plain_len ? info->plain_len : 1);
    if (!pt)
        return KITH_ENOMEM;
    unsigned long long pl = 0;
    const uint8_t *nonce = b + BLOB_HDR;
    size_t ct_len = len - BLOB_HDR - BLOB_NONCE - BLOB_SIG;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pl, NULL, nonce + BLOB_NONCE, ct_len, b,
                                                   BLOB_HDR, nonce, key) != 0) {
        kith_free(pt);
        return KITH_EAUTH;
    }
    *plain = pt;
    *plain_len = (size_t)pl;
    return KITH_OK;
}
