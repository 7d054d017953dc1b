/*
 * Fuzz target: the local API's HTTP request parser (src/api/http.c) and the
 * checks that follow it, on arbitrary bytes read as a stream of pipelined
 * requests. A head that parses must point only inside the input, be a
 * well-formed request (token method, origin-form target, Host on 1.1), be
 * found again with a larger limit, and every shorter prefix of it must ask
 * for more bytes rather than fail (the server parses as bytes arrive). A
 * refusal must be one of the statuses the parser documents. The guard must
 * answer 0, 401, 403 or 421 with a reason. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct api_http_req req, req2;

static int inside(struct api_str s, const char *buf, size_t n)
{
    return s.n == 0 || (s.p >= buf && s.p + s.n <= buf + n);
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_head(const char *buf, size_t len, const struct api_http_limits *lim, int r)
{
    MUST((size_t)r <= len && (size_t)r <= lim->max_header);
    MUST(r >= 4 && !memcmp(buf + r - 4, "\r\n\r\n", 4));
    MUST(req.method.n > 0 && inside(req.method, buf, (size_t)r));
    for (size_t i = 0; i < req.method.n; i++)
        MUST(is_tchar((unsigned char)req.method.p[i]));
    MUST(req.target.n > 0 && req.target.p[0] == '/' && inside(req.target, buf, (size_t)r));
    MUST(req.path.p == req.target.p && req.path.n <= req.target.n);
    MUST(inside(req.query, buf, (size_t)r));
    MUST(req.minor >= 0 && req.minor <= 9);
    MUST(req.n_headers <= lim->max_headers);
    for (size_t i = 0; i < req.n_headers; i++) {
        MUST(req.headers[i].name.n > 0 && inside(req.headers[i].name, buf, (size_t)r));
        MUST(inside(req.headers[i].value, buf, (size_t)r));
        for (size_t k = 0; k < req.headers[i].value.n; k++)
            MUST(req.headers[i].value.p[k] != '\r' && req.headers[i].value.p[k] != '\n');
    }
    if (req.minor >= 1)
        MUST(req.n_host == 1);
    MUST(req.n_host <= 1 && req.n_origin <= 1 && req.n_auth <= 1);
    MUST(req.content_length < 1000000000000000000ull);

    /* the same head with room to spare */
    struct api_http_limits wide = {lim->max_header * 4, API_HEADERS_CAP};
    MUST(api_http_parse_head(buf, len, &wide, &req2) == r);
    MUST(req2.content_length == req.content_length && req2.n_headers == req.n_headers);
    /* bytes arriving one at a time: each shorter prefix asks for more */
    size_t from = r > 200 ? (size_t)r - 200 : 0;
    for (size_t k = from; k < (size_t)r; k++)
        MUST(api_http_parse_head(buf, k, lim, &req2) == 0);

    static const struct api_guard g = {8421, "0123456789abcdef", 16};
    const char *why = NULL;
    for (int pub = 0; pub < 2; pub++) {
        int st = api_guard_check(&g, &req, pub, &why);
        MUST(st == 0 || st == 401 || st == 403 || st == 421);
        MUST(st == 0 || why != NULL);
        if (pub)
            MUST(st != 401);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the limits, so small limits are reached too */
    static const struct api_http_limits lims[] = {{16384, 64}, {256, 4}, {1024, 16}, {64, 2}};
    if (size == 0)
        return 0;
    const struct api_http_limits *lim = &lims[data[0] & 3];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1, off = 0;
    for (int n = 0; n < 64 && off < len; n++) {
        int r = api_http_parse_head(buf + off, len - off, lim, &req);
        if (r == 0)
            break;
        if (r < 0) {
            MUST(r == -400 || r == -414 || r == -417 || r == -431 || r == -501 || r == -505);
            MUST(strcmp(api_http_reason(-r), "Unknown") != 0);
            break;
        }
        check_head(buf + off, len - off, lim, r);
        if (req.content_length > len - off - (size_t)r)
            break;
        off += (size_t)r + (size_t)req.content_length;
    }
    return 0;
}
