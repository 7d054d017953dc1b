/*
 * guard.c: what every request passes before it reaches a route. The server
 * listens on loopback only, but that alone protects from neither other
 * local users (any of them can connect: hence the bearer token, kept in a
 * 0600 file) nor web pages in the user's browser (a page can make the
 * browser send requests to 127.0.0.1, and with DNS rebinding read the
 * answers: hence the Host check, which a rebinding page cannot pass because
 * its requests carry its own host name, and the Origin check for the
 * cross-origin requests browsers send without a preflight).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"

/* "127.0.0.1:PORT" or "localhost:PORT" (@prefix before it: "http://"). */
static int is_self(struct api_str v, const char *prefix, int port)
{
    char want[64];
    const char *names[] = {"127.0.0.1", "localhost"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(want, sizeof want, "%s%s:%d", prefix, names[i], port);
        if (api_str_ieq(v, want))
            return 1;
        /* the default port may be left out */
        snprintf(want, sizeof want, "%s%s", prefix, names[i]);
        if (port == 80 && api_str_ieq(v, want))
            return 1;
    }
    return 0;
}

int api_token_eq(const char *got, size_t got_len, const char *want, size_t want_len)
{
    /* runs over @want whatever @got is, so the time says nothing of how
     * many leading bytes matched */
    unsigned char diff = got_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

int api_guard_check(const struct api_guard *g, const struct api_http_req *req, int public_path,
                    const char **why)
{
    if (!is_self(req->host, "", g->port)) {
        *why = "Host must be 127.0.0.1:PORT or localhost:PORT";
        return 421;
    }
    if (req->n_origin && !is_self(req->origin, "http://", g->port)) {
        *why = "cross-origin requests are not allowed";
        return 403;
    }
    if (public_path)
        return 0;
    struct api_str a = req->authorization;
    size_t i = 0;
    if (a.n < 7 || !api_str_ieq((struct api_str){a.p, 6}, "bearer") || a.p[6] != ' ') {
        *why = "missing bearer token (Authorization: Bearer <token>)";
        return 401;
    }
    i = 7;
    while (i < a.n && a.p[i] == ' ')
        i++;
    if (!api_token_eq(a.p + i, a.n - i, g->token, g->token_len)) {
        *why = "wrong bearer token";
        return 401;
    }
    return 0;
}

int api_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    static const char hex[] = "0123456789abcdef";
    if (n > sizeof raw)
        return KITH_EINVAL;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(raw + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return KITH_EIO;
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

int api_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    int rc = KITH_EIO;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open token file '%s': %s", path, strerror(errno));
        return KITH_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token file '%s' is not a regular file", path);
        goto out;
    }
    /* as ssh does with keys: a token others can read protects nothing */
    if ((st.st_mode & 077) || st.st_uid != geteuid()) {
        snprintf(err, errlen, "token file '%s' must be yours with mode 0600 (chmod 600 it)", path);
        rc = KITH_EPERM;
        goto out;
    }
    ssize_t n = read(fd, out, cap - 1);
    if (n < 0) {
        snprintf(err, errlen, "cannot read token file '%s': %s", path, strerror(errno));
        goto out;
    }
    while (n > 0 &&
           (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    rc = KITH_ECORRUPT;
    if ((size_t)n + 1 >= cap || n < 16) {
        snprintf(err, errlen, "token file '%s' must hold one token of 16 to %zu characters", path,
                 cap - 2);
        goto out;
    }
    for (ssize_t i = 0; i < n; i++)
        if (out[i] <= 0x20 || out[i] >= 0x7f) {
            snprintf(err, errlen, "token file '%s' must hold printable characters only", path);
            goto out;
        }
    rc = 0;
out:
    close(fd);
    if (rc)
        memset(out, 0, cap);
    return rc;
}

int kith_api_token_ensure(const char *path, char *err, size_t errlen)
{
    char tok[72], dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!path || !*path) {
        snprintf(err, errlen, "no token file given");
        return KITH_EINVAL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return 0;
    if (fd < 0) {
        snprintf(err, errlen, "cannot create token file '%s': %s", path, strerror(errno));
        return KITH_EIO;
    }
    int rc = api_random_hex(tok, 32);
    if (rc) {
        snprintf(err, errlen, "no random bytes for the token: %s", strerror(errno));
        goto fail;
    }
    size_t n = strlen(tok);
    tok[n++] = '\n';
    if (write(fd, tok, n) != (ssize_t)n || fsync(fd)) {
        snprintf(err, errlen, "cannot write token file '%s': %s", path, strerror(errno));
        rc = KITH_EIO;
        goto fail;
    }
    memset(tok, 0, sizeof tok);
    if (close(fd)) {
        snprintf(err, errlen, "cannot write token file '%s': %s", path, strerror(errno));
        unlink(path);
        return KITH_EIO;
    }
    return 0;
fail:
    memset(tok, 0, sizeof tok);
    close(fd);
    unlink(path);
    return rc;
}
