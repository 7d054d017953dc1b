/*
 * Small pieces the rest of the sync module shares: libsodium set-up, signing
 * with a context string (so a signature made for one purpose can never be
 * replayed as another: a blob, a membership op and an auth answer are all
 * signed by the same device key), version vectors, roles, fingerprints.
 */
#include <sodium.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

int sync_sodium_init(void)
{
    return sodium_init() < 0 ? KITH_EIO : KITH_OK;
}

/* Signs ctx || msg. The context strings are short constants, so the copy
 * costs a few bytes more than the message. */
int sync_sign(const char *ctx, const uint8_t *msg, size_t len, const uint8_t sk[64],
              uint8_t sig[64])
{
    size_t cl = strlen(ctx);
    if (len > SIZE_MAX - cl)
        return KITH_ETOOBIG;
    uint8_t *buf = kith_malloc(cl + len);
    if (!buf)
        return KITH_ENOMEM;
    memcpy(buf, ctx, cl);
    if (len)
        memcpy(buf + cl, msg, len);
    crypto_sign_detached(sig, NULL, buf, cl + len, sk);
    kith_free(buf);
    return KITH_OK;
}

int sync_verify(const char *ctx, const uint8_t *msg, size_t len, const uint8_t pk[32],
                const uint8_t sig[64])
{
    size_t cl = strlen(ctx);
    if (len > SIZE_MAX - cl)
        return KITH_ETOOBIG;
    uint8_t *buf = kith_malloc(cl + len);
    if (!buf)
        return KITH_ENOMEM;
    memcpy(buf, ctx, cl);
    if (len)
        memcpy(buf + cl, msg, len);
    int ok = crypto_sign_verify_detached(sig, buf, cl + len, pk) == 0;
    kith_free(buf);
    return ok ? KITH_OK : KITH_EAUTH;
}

void sync_hash(const uint8_t *p, size_t n, uint8_t out[32])
{
    crypto_generichash(out, 32, p, n, NULL, 0);
}

void sync_auth_transcript(uint8_t out[113], const uint8_t challenge[32], const uint8_t cb[32],
                          const uint8_t ws_id[16], const uint8_t pk[32], uint8_t mode)
{
    memcpy(out, challenge, 32);
    memcpy(out + 32, cb, 32);
    memcpy(out + 64, ws_id, 16);
    memcpy(out + 80, pk, 32);
    out[112] = mode;
}

void sync_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

int kith_device_keygen(uint8_t pk[KITH_PK_BYTES], uint8_t sk[KITH_SK_BYTES])
{
    if (sync_sodium_init() != KITH_OK)
        return KITH_EIO;
    crypto_sign_keypair(pk, sk);
    return KITH_OK;
}

const char *kith_role_name(int role)
{
    switch (role) {
    case KITH_ROLE_READER:
        return "reader";
    case KITH_ROLE_WRITER:
        return "writer";
    case KITH_ROLE_ADMIN:
        return "admin";
    case KITH_ROLE_OWNER:
        return "owner";
    case KITH_ROLE_NONE:
        return "none";
    }
    return NULL;
}

int kith_role_parse(const char *name)
{
    for (int r = KITH_ROLE_READER; r <= KITH_ROLE_OWNER; r++)
        if (name && !strcmp(name, kith_role_name(r)))
            return r;
    return KITH_ROLE_NONE;
}

void kith_fingerprint_format(const uint8_t fp[KITH_HASH_BYTES], char out[72])
{
    memcpy(out, "SHA256:", 7);
    sync_hex(fp, 32, out + 7);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int kith_fingerprint_parse(const char *s, uint8_t fp[KITH_HASH_BYTES])
{
    if (!s)
        return KITH_EINVAL;
    if (!strncmp(s, "SHA256:", 7))
        s += 7;
    if (strlen(s) != 64)
        return KITH_EINVAL;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return KITH_EINVAL;
        fp[i] = (uint8_t)(hi << 4 | lo);
    }
    return KITH_OK;
}

/* ---- version vectors ----------------------------------------------------------------- */

struct vv_entry {
    uint8_t author[32];
    uint64_t seq;
};

struct kith_vv {
    struct vv_entry *e;
    size_t n, cap;
};

int kith_vv_new(kith_vv **out)
{
    *out = kith_calloc(1, sizeof **out);
    return *out ? KITH_OK : KITH_ENOMEM;
}

void kith_vv_free(kith_vv *vv)
{
    if (!vv)
        return;
    kith_free(vv->e);
    kith_free(vv);
}

/* Index of @author, or of where it would go (*found = 0). */
static size_t vv_find(const kith_vv *vv, const uint8_t *author, int *found)
{
    size_t lo = 0, hi = vv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(vv->e[mid].author, author, 32);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

uint64_t kith_vv_get(const kith_vv *vv, const uint8_t author[KITH_PK_BYTES])
{
    int found;
    size_t i = vv_find(vv, author, &found);
    return found ? vv->e[i].seq : 0;
}

int kith_vv_set(kith_vv *vv, const uint8_t author[KITH_PK_BYTES], uint64_t seq)
{
    int found;
    size_t i = vv_find(vv, author, &found);
    if (found) {
        if (seq) {
            vv->e[i].seq = seq;
        } else {
            memmove(vv->e + i, vv->e + i + 1, (vv->n - i - 1) * sizeof *vv->e);
            vv->n--;
        }
        return KITH_OK;
    }
    if (!seq)
        return KITH_OK;
    if (kith_grow((void **)&vv->e, &vv->cap, vv->n + 1, sizeof *vv->e) != 0)
        return KITH_ENOMEM;
    memmove(vv->e + i + 1, vv->e + i, (vv->n - i) * sizeof *vv->e);
    memcpy(vv->e[i].author, author, 32);
    vv->e[i].seq = seq;
    vv->n++;
    return KITH_OK;
}

size_t kith_vv_count(const kith_vv *vv)
{
    return vv->n;
}

const uint8_t *kith_vv_author(const kith_vv *vv, size_t i)
{
    return i < vv->n ? vv->e[i].author : NULL;
}

uint64_t kith_vv_seq(const kith_vv *vv, size_t i)
{
    return i < vv->n ? vv->e[i].seq : 0;
}

enum kith_seq_check kith_vv_check(const kith_vv *vv, const uint8_t author[KITH_PK_BYTES],
                                  uint64_t seq)
{
    uint64_t have = kith_vv_get(vv, author);
    if (seq <= have)
        return KITH_SEQ_DUP;
    return seq == have + 1 ? KITH_SEQ_NEXT : KITH_SEQ_GAP;
}

/* Wire entries are already sorted and unique (the decoder checks), so they
 * go in as they are. */
int sync_vv_from_wire(const uint8_t *e, uint32_t n, kith_vv **out)
{
    kith_vv *vv = NULL;
    int rc = kith_vv_new(&vv);
    if (rc)
        return rc;
    if (n && kith_grow((void **)&vv->e, &vv->cap, n, sizeof *vv->e) != 0) {
        kith_vv_free(vv);
        return KITH_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        memcpy(vv->e[i].author, e + (size_t)i * 40, 32);
        vv->e[i].seq = get_u64(e + (size_t)i * 40 + 32);
    }
    vv->n = n;
    *out = vv;
    return KITH_OK;
}
