/*
 * Sealed change blobs (PROTOCOL.md section 2): header | nonce | ciphertext |
 * signature. Encrypt-then-sign: the AEAD (XChaCha20-Poly1305-IETF) keeps the
 * content from the hub and binds the header as associated data; the Ed25519
 * signature over everything before it lets the hub, which has no key, check
 * the author and refuse forgeries, and lets members tell which member wrote
 * a blob (the AEAD alone proves only "someone with the key").
 *
 * Version 2 (written) is version 1 (still read) made small enough for one
 * keystroke: the workspace id is not sent, since every reader knows which
 * workspace it syncs, but it is bound all the same (associated data and
 * signed bytes both start with it); seq and epoch are varints; and of the
 * 24-byte nonce only 8 random bytes travel, the first 16 being a hash of the
 * header. Nonces stay unique per key without state: two seals share the
 * hash only when they share workspace, author, seq, epoch and kind (a
 * re-seal of one change), and then differ in the 64 random bits.
 */
#include <sodium.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

#define BLOB_V1     1
#define BLOB_HDR1   62
#define BLOB_NONCE1 24
#define BLOB_CTX1   "kith-blob-v1"
#define BLOB_V2     2
#define BLOB_RAND2  8 /* random part of the nonce sent in version 2 */
#define BLOB_CTX2   "kith-blob-v2"
#define BLOB_TAG    16
#define BLOB_SIG    64
#define BLOB_HDR2_MAX (1 + 32 + 10 + 5)

_Static_assert(BLOB_HDR1 + BLOB_NONCE1 + BLOB_TAG + BLOB_SIG == KITH_BLOB_OVERHEAD,
               "KITH_BLOB_OVERHEAD is version 1's overhead, the largest");
_Static_assert(1 + 32 + 1 + 1 + BLOB_RAND2 + BLOB_TAG + BLOB_SIG == KITH_BLOB_MIN_OVERHEAD,
               "KITH_BLOB_MIN_OVERHEAD must match version 2's layout");
_Static_assert(BLOB_HDR2_MAX + BLOB_RAND2 + BLOB_TAG + BLOB_SIG <= KITH_BLOB_OVERHEAD,
               "version 2 is never larger than version 1");

/* A minimal (canonical) varint of at most @max at @p[*off]; 0 on success. */
static int get_var(const uint8_t *p, size_t len, size_t *off, uint64_t max, uint64_t *out)
{
    uint8_t tmp[10];
    size_t k = kith_varint_get(p + *off, len - *off, out);
    if (!k || *out > max || kith_varint_put(tmp, *out) != k)
        return -1;
    *off += k;
    return 0;
}

/* The header's length (version 2), or 0 when malformed. */
static size_t parse_v2(const uint8_t *b, size_t len, kith_blob_info *info)
{
    size_t off = 33;
    uint64_t seq = 0, epoch = 0;
    if (len < KITH_BLOB_MIN_OVERHEAD || get_var(b, len, &off, INT64_MAX, &seq) || seq == 0 ||
        get_var(b, len, &off, UINT32_MAX, &epoch) ||
        len - off < BLOB_RAND2 + BLOB_TAG + BLOB_SIG)
        return 0;
    info->seq = seq;
    info->epoch = (uint32_t)epoch;
    memcpy(info->author, b + 1, 32);
    info->plain_len = len - off - BLOB_RAND2 - BLOB_TAG - BLOB_SIG;
    return off;
}

int kith_blob_parse(const uint8_t *b, size_t len, kith_blob_info *info)
{
    memset(info, 0, sizeof *info);
    if (!b || len < 1)
        return KITH_ECORRUPT;
    if (b[0] >> 4 == BLOB_V2) {
        uint8_t kind = b[0] & 0x0f;
        if ((kind != KITH_BLOB_CHANGE && kind != KITH_BLOB_SNAPSHOT) || !parse_v2(b, len, info)) {
            memset(info, 0, sizeof *info);
            return KITH_ECORRUPT;
        }
        info->version = BLOB_V2;
        info->kind = kind;
        return KITH_OK;
    }
    if (b[0] != BLOB_V1)
        return KITH_EVERSION;
    if (len < KITH_BLOB_OVERHEAD)
        return KITH_ECORRUPT;
    if (b[1] != KITH_BLOB_CHANGE && b[1] != KITH_BLOB_SNAPSHOT)
        return KITH_ECORRUPT;
    uint64_t seq = get_u64(b + 50);
    if (seq == 0)
        return KITH_ECORRUPT;
    info->version = BLOB_V1;
    info->kind = b[1];
    memcpy(info->ws_id, b + 2, 16);
    memcpy(info->author, b + 18, 32);
    info->seq = seq;
    info->epoch = get_u32(b + 58);
    info->plain_len = len - KITH_BLOB_OVERHEAD;
    return KITH_OK;
}

/* Version 2's signed bytes and associated data begin with the workspace id:
 * @ws_id || @p[0..n-1], in one buffer (caller frees). */
static uint8_t *with_ws(const uint8_t ws_id[16], const uint8_t *p, size_t n)
{
    uint8_t *m = n <= SIZE_MAX - 16 ? kith_malloc(16 + n) : NULL;
    if (m) {
        memcpy(m, ws_id, 16);
        memcpy(m + 16, p, n);
    }
    return m;
}

int kith_blob_verify(const uint8_t *b, size_t len, const uint8_t ws_id[KITH_WS_ID_BYTES],
                     kith_blob_info *info)
{
    int rc = kith_blob_parse(b, len, info);
    if (rc)
        return rc;
    rc = sync_sodium_init();
    if (rc)
        return rc;
    if (info->version == BLOB_V1) {
        if (memcmp(info->ws_id, ws_id, 16) != 0)
            return KITH_EAUTH;
        return sync_verify(BLOB_CTX1, b, len - BLOB_SIG, info->author, b + len - BLOB_SIG);
    }
    memcpy(info->ws_id, ws_id, 16); /* bound by the signature checked next */
    uint8_t *m = with_ws(ws_id, b, len - BLOB_SIG);
    if (!m)
        return KITH_ENOMEM;
    rc = sync_verify(BLOB_CTX2, m, 16 + len - BLOB_SIG, info->author, b + len - BLOB_SIG);
    kith_free(m);
    return rc;
}

int kith_blob_seal(enum kith_blob_kind kind, const uint8_t ws_id[KITH_WS_ID_BYTES],
                   const uint8_t author_sk[KITH_SK_BYTES], uint64_t seq, uint32_t epoch,
                   const uint8_t key[KITH_WS_KEY_BYTES], const uint8_t *plain, size_t plain_len,
                   uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if ((kind != KITH_BLOB_CHANGE && kind != KITH_BLOB_SNAPSHOT) || seq == 0 ||
        seq > INT64_MAX || (!plain && plain_len))
        return KITH_EINVAL;
    if (plain_len > SYNC_FRAME_MAX)
        return KITH_ETOOBIG;
    int rc = sync_sodium_init();
    if (rc)
        return rc;
    uint8_t hdr[16 + BLOB_HDR2_MAX]; /* the workspace id, then the header sent */
    size_t h = 16;
    memcpy(hdr, ws_id, 16);
    hdr[h++] = (uint8_t)(BLOB_V2 << 4 | kind);
    /* libsodium's secret key holds the public key in its last 32 bytes */
    memcpy(hdr + h, author_sk + 32, 32);
    h += 32;
    h += kith_varint_put(hdr + h, seq);
    h += kith_varint_put(hdr + h, epoch);
    size_t hl = h - 16, len = hl + BLOB_RAND2 + plain_len + BLOB_TAG + BLOB_SIG;
    uint8_t *b = kith_malloc(len);
    if (!b)
        return KITH_ENOMEM;
    memcpy(b, hdr + 16, hl);
    uint8_t nonce[24];
    crypto_generichash(nonce, 16, hdr, h, NULL, 0);
    randombytes_buf(nonce + 16, BLOB_RAND2);
    memcpy(b + hl, nonce + 16, BLOB_RAND2);
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + hl + BLOB_RAND2, &ct_len, plain, plain_len, hdr,
                                               h, NULL, nonce, key);
    uint8_t *m = with_ws(ws_id, b, len - BLOB_SIG);
    rc = m ? sync_sign(BLOB_CTX2, m, 16 + len - BLOB_SIG, author_sk, b + len - BLOB_SIG)
           : KITH_ENOMEM;
    kith_free(m);
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
    int rc = kith_blob_verify(b, len, ws_id, info);
    if (rc)
        return rc;
    uint8_t *pt = kith_malloc(info->plain_len ? info->plain_len : 1);
    if (!pt)
        return KITH_ENOMEM;
    unsigned long long pl = 0;
    size_t ct_len = info->plain_len + BLOB_TAG;
    const uint8_t *ct = b + len - BLOB_SIG - ct_len;
    int bad;
    if (info->version == BLOB_V1) {
        const uint8_t *nonce = b + BLOB_HDR1;
        bad = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pl, NULL, ct, ct_len, b, BLOB_HDR1,
                                                         nonce, key);
    } else {
        size_t hl = (size_t)(ct - b) - BLOB_RAND2;
        uint8_t *ad = with_ws(ws_id, b, hl), nonce[24];
        if (!ad) {
            kith_free(pt);
            return KITH_ENOMEM;
        }
        crypto_generichash(nonce, 16, ad, 16 + hl, NULL, 0);
        memcpy(nonce + 16, b + hl, BLOB_RAND2);
        bad = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pl, NULL, ct, ct_len, ad, 16 + hl,
                                                         nonce, key);
        kith_free(ad);
    }
    if (bad) {
        kith_free(pt);
        return KITH_EAUTH;
    }
    *plain = pt;
    *plain_len = (size_t)pl;
    return KITH_OK;
}
