/*
 * Bundles: the changes another device lacks, in one file, for places no
 * network reaches (docs/PROTOCOL.md, "Bundles"). Each change inside is a
 * change blob exactly as on the wire (sealed with the workspace key, signed
 * by its author), so applying a bundle runs the same checks as a sync; the
 * file as a whole is signed by the device that wrote it, and a truncated or
 * altered file is refused before anything in it is applied.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "replica/replica_int.h"
#include "sync/sync_int.h"
#include "util/util_int.h"

#define MAGIC      "KITHBDL1"
#define HDR        (8 + 1 + 16 + 32 + 4)
#define TRAILER    64
#define CTX        "kith-bundle-v1"
#define BUNDLE_MAX (1u << 30)

struct bctx {
    kith_replica *r;
    struct sbuf b;
    uint32_t count, epoch;
    uint8_t key[32];
    uint8_t skip[8][32];
    int nskip, rc;
};

static int add_change(const uint8_t author[32], uint64_t seq, const uint8_t *payload, size_t len,
                      void *ctx)
{
    struct bctx *c = ctx;
    uint8_t *blob = NULL;
    size_t bl = 0;
    for (int i = 0; i < c->nskip; i++)
        if (!memcmp(c->skip[i], author, 32))
            return 0;
    int rc = !memcmp(author, c->r->pk, 32)
                 ? kith_blob_seal(KITH_BLOB_CHANGE, c->r->ws_id, c->r->sk, seq, c->epoch, c->key,
                                  payload, len, &blob, &bl)
                 : rp_blob_get(c->r, author, seq, &blob, &bl);
    if (rc == KITH_ENOTFOUND) {
        if (c->nskip < 8)
            memcpy(c->skip[c->nskip++], author, 32);
        return 0;
    }
    if (rc) {
        c->rc = rc;
        return 1;
    }
    sb_bytes(&c->b, blob, bl);
    kith_free(blob);
    c->count++;
    return 0;
}

static int sign_all(kith_replica *r, const uint8_t *p, size_t n, uint8_t sig[64], int verify,
                    const uint8_t *pk)
{
    crypto_sign_state st;
    uint8_t h[64];
    /* Ed25519ph would do; a BLAKE2b-512 digest signed plainly keeps one primitive. */
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof h);
    crypto_generichash_update(&gs, (const uint8_t *)CTX, sizeof CTX - 1);
    crypto_generichash_update(&gs, p, n);
    crypto_generichash_final(&gs, h, sizeof h);
    (void)st;
    if (verify)
        return crypto_sign_verify_detached(sig, h, sizeof h, pk) == 0 ? KITH_OK : KITH_EAUTH;
    crypto_sign_detached(sig, NULL, h, sizeof h, r->sk);
    return KITH_OK;
}

int kith_replica_bundle_create(kith_replica *r, const char *path, const kith_ws_vv_entry *vv,
                               size_t n)
{
    struct bctx c = {.r = r};
    sb_init(&c.b);
    sb_raw(&c.b, MAGIC, 8);
    sb_u8(&c.b, 1);
    sb_raw(&c.b, r->ws_id, 16);
    sb_raw(&c.b, r->pk, 32);
    sb_u32(&c.b, 0); /* count, patched below */
    int rc = rp_key_newest(r, &c.epoch, c.key);
    if (rc == KITH_OK && kith_ws_changes_since(r->ws, vv, n, add_change, &c) != KITH_OK)
        rc = c.rc ? c.rc : rp_fail(r, KITH_EIO, "%s", kith_ws_errmsg(r->ws));
    sodium_memzero(c.key, sizeof c.key);
    if (rc == KITH_OK && c.rc)
        rc = c.rc;
    if (rc == KITH_OK && c.b.err)
        rc = rp_fail(r, KITH_ENOMEM, "out of memory");
    if (rc == KITH_OK) {
        put_u32(c.b.p + HDR - 4, c.count);
        uint8_t sig[64];
        sign_all(r, c.b.p, c.b.len, sig, 0, NULL);
        sb_raw(&c.b, sig, 64);
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            rc = rp_fail(r, KITH_EIO, "cannot write '%s': %s", path, strerror(errno));
        } else {
            int bad = fwrite(c.b.p, 1, c.b.len, f) != c.b.len;
            bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
            bad |= fclose(f) != 0;
            if (bad || rename(tmp, path) != 0) {
                unlink(tmp);
                rc = rp_fail(r, KITH_EIO, "cannot write '%s': %s", path, strerror(errno));
            }
        }
    }
    if (rc == KITH_OK)
        rp_fail(r, KITH_OK, "%u change%s", c.count, c.count == 1 ? "" : "s");
    sb_release(&c.b);
    return rc;
}

int kith_replica_bundle_apply(kith_replica *r, const char *path, kith_replica_report *rep)
{
    memset(rep, 0, sizeof *rep);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rp_fail(r, KITH_EIO, "cannot open '%s': %s", path, strerror(errno));
    uint8_t *p = NULL;
    size_t n = 0, cap = 0;
    int rc = KITH_OK;
    for (;;) {
        if (kith_grow((void **)&p, &cap, n + 65536, 1) != 0) {
            rc = rp_fail(r, KITH_ENOMEM, "out of memory");
            break;
        }
        size_t got = fread(p + n, 1, 65536, f);
        n += got;
        if (got < 65536)
            break;
        if (n > BUNDLE_MAX) {
            rc = rp_fail(r, KITH_ETOOBIG, "'%s' is larger than a bundle can be", path);
            break;
        }
    }
    fclose(f);
    if (rc == KITH_OK && (n < HDR + TRAILER || memcmp(p, MAGIC, 8) != 0 || p[8] != 1))
        rc = rp_fail(r, KITH_ECORRUPT, "'%s' is not a kith bundle", path);
    if (rc == KITH_OK && memcmp(p + 9, r->ws_id, 16) != 0)
        rc = rp_fail(r, KITH_EINVAL, "'%s' is a bundle of another workspace", path);
    if (rc == KITH_OK && sign_all(r, p, n - TRAILER, p + n - TRAILER, 1, p + 25) != KITH_OK)
        rc = rp_fail(r, KITH_EAUTH, "'%s' is damaged or was altered (signature)", path);
    /* Every length first, so that a bad one applies nothing. */
    uint32_t count = rc == KITH_OK ? get_u32(p + HDR - 4) : 0;
    size_t pos = HDR, end = n - TRAILER;
    for (uint32_t i = 0; rc == KITH_OK && i < count; i++) {
        if (end - pos < 4 || get_u32(p + pos) > end - pos - 4)
            rc = rp_fail(r, KITH_ECORRUPT, "'%s' is damaged (entry %u)", path, i);
        else
            pos += 4 + get_u32(p + pos);
    }
    if (rc == KITH_OK && pos != end)
        rc = rp_fail(r, KITH_ECORRUPT, "'%s' is damaged (trailing bytes)", path);
    if (rc == KITH_OK) {
        kith_vv_free(r->held);
        r->held = NULL;
        rc = rp_ws_vv(r, &r->held);
    }
    size_t refused = 0;
    pos = HDR;
    for (uint32_t i = 0; rc == KITH_OK && i < count; i++) {
        uint32_t bl = get_u32(p + pos);
        if (rp_take_blob(r, p + pos + 4, bl, rep) != KITH_OK) {
            kith_log(KITH_LOG_WARN, "replica: bundle entry %u: %s", i, r->err);
            refused++;
        }
        pos += 4 + bl;
    }
    if (rc == KITH_OK)
        rc = rp_drain(r, rep);
    kith_free(p);
    if (rc == KITH_OK)
        rp_state_write(r, 0);
    if (rc == KITH_OK && refused)
        rc = rp_fail(r, KITH_EAUTH, "%zu change%s in '%s' refused (see the log)", refused,
                     refused == 1 ? " was" : "s were", path);
    return rc;
}

/* ---- summaries --------------------------------------------------------------------------------
 */

int kith_replica_summary(kith_replica *r, char **out)
{
    kith_ws_vv_entry *e = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = kith_ws_vv(r->ws, &e, &n);
    if (rc)
        return rp_fail(r, rc, "%s", kith_ws_errmsg(r->ws));
    char *s = kith_malloc(16 + n * 90);
    if (!s) {
        kith_free(e);
        return rp_fail(r, KITH_ENOMEM, "out of memory");
    }
    size_t len = 9, cap = 16 + n * 90;
    memcpy(s, "kith-vv1:", 10);
    for (size_t i = 0; i < n; i++) {
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, e[i].author, 32);
        len += (size_t)snprintf(s + len, cap - len, "%s%s.%llu", i ? "," : "", hex,
                                (unsigned long long)e[i].seq);
    }
    kith_free(e);
    *out = s;
    return KITH_OK;
}

int kith_replica_summary_parse(const char *s, kith_ws_vv_entry **vv, size_t *n)
{
    *vv = NULL;
    *n = 0;
    if (strncmp(s, "kith-vv1:", 9) != 0)
        return KITH_ECORRUPT;
    s += 9;
    size_t cap = 0;
    while (*s) {
        if (kith_grow((void **)vv, &cap, *n + 1, sizeof **vv) != 0)
            goto fail;
        kith_ws_vv_entry *e = &(*vv)[*n];
        if (strlen(s) < 66 || s[64] != '.' ||
            sodium_hex2bin(e->author, 32, s, 64, NULL, NULL, NULL) != 0)
            goto fail;
        s += 65;
        if (*s < '1' || *s > '9')
            goto fail;
        char *endp = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &endp, 10);
        if (errno || (*endp && *endp != ','))
            goto fail;
        e->seq = v;
        (*n)++;
        s = *endp ? endp + 1 : endp;
        if (endp[0] == ',' && !*s)
            goto fail;
    }
    return KITH_OK;
fail:
    kith_free(*vv);
    *vv = NULL;
    *n = 0;
    return KITH_ECORRUPT;
}
