/*
 * TLS pieces around libwebsockets: the hub's certificate (self-signed P-256
 * made once and kept in the data folder, so its fingerprint, which invite
 * links pin, stays the same across restarts), certificate fingerprints, and
 * the RFC 9266 tls-exporter channel binding that ties a device's signed
 * answer to this one TLS connection (a hub, or a man in the middle holding
 * a mis-issued certificate, cannot forward the answer to another session).
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

static int cert_fp(X509 *x, uint8_t fp[32])
{
    unsigned int n = 0;
    return X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == 32 ? KITH_OK : KITH_EIO;
}

static int fp_of_file(const char *path, uint8_t fp[32])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return KITH_ENOTFOUND;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        return KITH_ECORRUPT;
    int rc = cert_fp(x, fp);
    X509_free(x);
    return rc;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = kith_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Writes a PEM file through a 0600 temporary and a rename, so a crash never
 * leaves half a key that the next start would trip on. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
    size_t n = strlen(path) + 5;
    char *tmp = kith_malloc(n);
    if (!tmp)
        return KITH_ENOMEM;
    snprintf(tmp, n, "%s.tmp", path);
    int rc = KITH_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        goto out;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0)
        goto out;
    rc = KITH_OK;
out:
    if (rc)
        unlink(tmp);
    kith_free(tmp);
    return rc;
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    if (!x || RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 24 * 3600) || !X509_set_pubkey(x, key))
        goto fail;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kith hub", -1,
                                    -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_sign(x, key, EVP_sha256()))
        goto fail;
    BN_free(bn);
    return x;
fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

static int make_cert(const char *cert, const char *key, char *err, size_t errlen)
{
    int rc = KITH_EIO;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = k ? self_signed(k) : NULL;
    if (!x) {
        snprintf(err, errlen, "cannot make a certificate");
        goto out;
    }
    if (write_pem(key, k, NULL) != KITH_OK || write_pem(cert, NULL, x) != KITH_OK) {
        snprintf(err, errlen, "cannot write '%s': %s", key, strerror(errno));
        goto out;
    }
    rc = KITH_OK;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int sync_tls_hub_cert(const char *dir, const char *cert, const char *key, char **cert_out,
                      char **key_out, uint8_t fp[32], char *err, size_t errlen)
{
    *cert_out = *key_out = NULL;
    int rc = KITH_ENOMEM;
    char *c = cert ? kith_strndup(cert, strlen(cert)) : join_path(dir, "cert.pem");
    char *k = key ? kith_strndup(key, strlen(key)) : join_path(dir, "key.pem");
    if (!c || !k)
        goto fail;
    if (!cert && (access(c, R_OK) != 0 || access(k, R_OK) != 0)) {
        rc = make_cert(c, k, err, errlen);
        if (rc)
            goto fail;
    }
    rc = fp_of_file(c, fp);
    if (rc) {
        snprintf(err, errlen, "cannot read certificate '%s'", c);
        goto fail;
    }
    *cert_out = c;
    *key_out = k;
    return KITH_OK;
fail:
    kith_free(c);
    kith_free(k);
    return rc;
}

int sync_tls_peer_fp(void *ssl, uint8_t fp[32])
{
    if (!ssl)
        return KITH_EAUTH;
    X509 *x = SSL_get1_peer_certificate(ssl);
    if (!x)
        return KITH_EAUTH;
    int rc = cert_fp(x, fp);
    X509_free(x);
    return rc;
}

int sync_tls_binding(void *ssl, uint8_t cb[32])
{
    static const char label[] = "EXPORTER-Channel-Binding";
    if (!ssl || SSL_version(ssl) != TLS1_3_VERSION)
        return KITH_EAUTH;
    /* RFC 9266: 32 bytes, no context (distinct from an empty context). */
    if (SSL_export_keying_material(ssl, cb, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
        return KITH_EAUTH;
    return KITH_OK;
}

static void lws_log_line(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    kith_log(level == LLL_ERR ? KITH_LOG_INFO : KITH_LOG_DEBUG, "lws: %.*s", (int)n, line);
}

void sync_lws_logging(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line);
}
