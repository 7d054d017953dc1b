/*
 * The local API's request parser and checks, without sockets: valid heads
 * parse (and every shorter prefix asks for more bytes), each kind of bad
 * request gets its status, limits hold, and the Host/Origin/token guard
 * refuses what it must. Also the token file: made 0600, read back, refused
 * when others may read it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"
#include "kith/kith.h"
#include "tt.h"

static const struct api_http_limits lim = {4096, 16};
static struct api_http_req req;

static int parse(const char *s)
{
    return api_http_parse_head(s, strlen(s), &lim, &req);
}

static int streq(struct api_str s, const char *lit)
{
    return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

TT_TEST(parses_a_get)
{
    const char *s = "GET /v1/models?x=1&y HTTP/1.1\r\nHost: 127.0.0.1:8421\r\n"
                    "Authorization: Bearer abc\r\nX-Empty:\r\nUser-Agent:  curl/7.88 \r\n\r\n";
    int r = parse(s);
    TT_EQ(r, (int)strlen(s));
    TT_ASSERT(streq(req.method, "GET"));
    TT_ASSERT(streq(req.path, "/v1/models"));
    TT_ASSERT(streq(req.query, "x=1&y"));
    TT_ASSERT(streq(req.host, "127.0.0.1:8421"));
    TT_ASSERT(streq(req.authorization, "Bearer abc"));
    TT_EQ(req.n_headers, 4);
    TT_ASSERT(streq(req.headers[2].value, ""));
    TT_ASSERT(streq(req.headers[3].value, "curl/7.88")); /* OWS trimmed */
    TT_EQ(req.minor, 1);
    TT_EQ(req.keep_alive, 1);
    TT_EQ(req.content_length, 0);
}

TT_TEST(every_prefix_asks_for_more)
{
    const char *s = "\r\nPOST /v1/completions HTTP/1.1\r\nHost: localhost:1\r\n"
                    "Content-Length: 12\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++) {
        int r = api_http_parse_head(s, k, &lim, &req);
        if (r != 0)
            TT_FAIL_("prefix of %zu bytes: %d", k, r);
    }
    TT_EQ(parse(s), (int)n);
    TT_EQ(req.content_length, 12);
    TT_EQ(req.expect_continue, 1);
    TT_EQ(req.keep_alive, 0);
    /* a pipelined second request after the head does not change the first */
    char two[512];
    snprintf(two, sizeof two, "%sBODYBODYBODYGET / HTTP/1.1\r\n", s);
    TT_EQ(parse(two), (int)n);
}

TT_TEST(http10)
{
    TT_ASSERT(parse("GET /health HTTP/1.0\r\n\r\n") > 0); /* Host optional in 1.0 */
    TT_EQ(req.keep_alive, 0);
    TT_ASSERT(parse("GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") > 0);
    TT_EQ(req.keep_alive, 1);
    TT_ASSERT(parse("GET /health HTTP/1.0\r\nExpect: 100-continue\r\n\r\n") > 0);
    TT_EQ(req.expect_continue, 0);
}

TT_TEST(malformed_is_400)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\nHost: a\n\n",                  /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",      /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before colon */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
        "GET / HTTP/1.1\r\n\r\n",                       /* 1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", /* control character */
        "GET / HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nOrigin: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: novalue\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", /* absolute-form */
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", /* two spaces */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse(bad[i]);
        if (r != -400)
            TT_FAIL_("case %zu: %d for \"%s\"", i, r, bad[i]);
    }
}

TT_TEST(garbage_fails_at_once)
{
    /* a TLS ClientHello, a binary protocol: refused on the first bytes */
    TT_EQ(api_http_parse_head("\x16\x03\x01", 3, &lim, &req), -400);
    TT_EQ(api_http_parse_head("GET\x00", 4, &lim, &req), -400);
    TT_EQ(api_http_parse_head("GET /", 5, &lim, &req), 0);
    TT_EQ(api_http_parse_head("GET x", 5, &lim, &req), -400);
    TT_EQ(api_http_parse_head("GET / FTP", 9, &lim, &req), -400);
}

TT_TEST(other_statuses)
{
    TT_EQ(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -505);
    TT_EQ(parse("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), -505);
    TT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), -501);
    TT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), -417);
}

TT_TEST(limits)
{
    char big[8192];
    /* request line longer than the head limit: 414, even before its end */
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    TT_EQ(api_http_parse_head(big, sizeof big, &lim, &req), -414);
    /* too many fields: 431 */
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
    snprintf(big + n, sizeof big - n, "\r\n");
    TT_EQ(parse(big), -431);
    /* headers over the size limit, complete or not: 431 */
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'v', 5000);
    n += 5000;
    TT_EQ(api_http_parse_head(big, n, &lim, &req), -431);
    memcpy(big + n, "\r\n\r\n", 4);
    TT_EQ(api_http_parse_head(big, n + 4, &lim, &req), -431);
    /* exactly at the limit is fine */
    struct api_http_limits exact = {0, 16};
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    exact.max_header = strlen(s);
    TT_EQ(api_http_parse_head(s, strlen(s), &exact, &req), (int)strlen(s));
    exact.max_header--;
    TT_EQ(api_http_parse_head(s, strlen(s), &exact, &req), -431);
}

static int guard(const char *head, int pub)
{
    static const struct api_guard g = {8421, "0123456789abcdef0123", 20};
    const char *why = NULL;
    char buf[1024];
    snprintf(buf, sizeof buf, "GET /v1/models HTTP/1.1\r\n%s\r\n", head);
    if (api_http_parse_head(buf, strlen(buf), &lim, &req) <= 0)
        return -1;
    int st = api_guard_check(&g, &req, pub, &why);
    if (st && !why)
        return -2;
    return st;
}

#define TOKEN "Authorization: Bearer 0123456789abcdef0123\r\n"

TT_TEST(guard_host_origin_token)
{
    TT_EQ(guard("Host: 127.0.0.1:8421\r\n" TOKEN, 0), 0);
    TT_EQ(guard("Host: localhost:8421\r\n" TOKEN, 0), 0);
    TT_EQ(guard("Host: LocalHost:8421\r\n" TOKEN, 0), 0);
    TT_EQ(guard("Host: 127.0.0.1:8422\r\n" TOKEN, 0), 421);
    TT_EQ(guard("Host: 127.0.0.1\r\n" TOKEN, 0), 421);
    TT_EQ(guard("Host: evil.example:8421\r\n" TOKEN, 0), 421);
    TT_EQ(guard("Host: [::1]:8421\r\n" TOKEN, 0), 421);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: http://localhost:8421\r\n" TOKEN, 0), 0);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: http://127.0.0.1:8421\r\n" TOKEN, 0), 0);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: https://127.0.0.1:8421\r\n" TOKEN, 0), 403);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: http://evil.example\r\n" TOKEN, 0), 403);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: null\r\n" TOKEN, 0), 403);
    /* the foreign Origin is refused even on the public path */
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nOrigin: http://evil.example\r\n", 1), 403);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\n", 1), 0);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\n", 0), 401);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nAuthorization: Bearer 0123456789abcdef012\r\n", 0), 401);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nAuthorization: Bearer 0123456789abcdef01234\r\n", 0), 401);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nAuthorization: Bearer\r\n", 0), 401);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nAuthorization: Basic 0123456789abcdef0123\r\n", 0), 401);
    TT_EQ(guard("Host: 127.0.0.1:8421\r\nAuthorization: bearer  0123456789abcdef0123\r\n", 0), 0);
}

TT_TEST(token_compare)
{
    TT_EQ(api_token_eq("abc", 3, "abc", 3), 1);
    TT_EQ(api_token_eq("abd", 3, "abc", 3), 0);
    TT_EQ(api_token_eq("ab", 2, "abc", 3), 0);
    TT_EQ(api_token_eq("abcd", 4, "abc", 3), 0);
    TT_EQ(api_token_eq("", 0, "abc", 3), 0);
}

TT_TEST(token_file)
{
    char dir[] = "/tmp/kith-api-XXXXXX", path[256], tok[256], err[256];
    TT_ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/api-token", dir);
    TT_OK(kith_api_token_ensure(path, err, sizeof err));
    struct stat st;
    TT_ASSERT(stat(path, &st) == 0);
    TT_EQ(st.st_mode & 0777, 0600);
    TT_OK(api_token_read(path, tok, sizeof tok, err, sizeof err));
    TT_EQ(strlen(tok), 64);
    char again[256];
    TT_OK(kith_api_token_ensure(path, err, sizeof err)); /* kept as it is */
    TT_OK(api_token_read(path, again, sizeof again, err, sizeof err));
    TT_STREQ(tok, again);
    TT_ASSERT(chmod(path, 0644) == 0);
    TT_EQ(api_token_read(path, tok, sizeof tok, err, sizeof err), KITH_EPERM);
    TT_ASSERT(strstr(err, "0600") != NULL);
    FILE *f = fopen(path, "w");
    TT_ASSERT(f);
    fputs("short\n", f);
    fclose(f);
    TT_ASSERT(chmod(path, 0600) == 0);
    TT_EQ(api_token_read(path, tok, sizeof tok, err, sizeof err), KITH_ECORRUPT);
    unlink(path);
    TT_EQ(api_token_read(path, tok, sizeof tok, err, sizeof err), KITH_EIO);
    snprintf(path, sizeof path, "%s/no/such/dir/token", dir);
    TT_EQ(kith_api_token_ensure(path, err, sizeof err), KITH_EIO);
    rmdir(dir);
}

TT_MAIN(TT_CASE(parses_a_get), TT_CASE(every_prefix_asks_for_more), TT_CASE(http10),
        TT_CASE(malformed_is_400), TT_CASE(garbage_fails_at_once), TT_CASE(other_statuses),
        TT_CASE(limits), TT_CASE(guard_host_origin_token), TT_CASE(token_compare),
        TT_CASE(token_file))
