/*
 * http.c: the HTTP/1.1 request parser of the local API. Written by hand
 * (docs/API.md says why: Debian 12's libhttp-parser is archived upstream,
 * llhttp is packaged only as Node.js sources, and libmicrohttpd brings its own
 * sockets and threads instead of the daemon's libuv loop). It is a pure
 * function over the bytes received so far, so the
 * server calls it again as bytes arrive and the fuzzer calls it directly.
 * It is strict on purpose: whatever it accepts, a proxy or another parser
 * would read the same way (no request smuggling through lenient framing).
 */
#include <string.h>

#include "api/api_int.h"

/* RFC 9110 5.6.2 token characters. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value characters: VCHAR, SP, HTAB, obs-text. */
static int is_vchar_ws(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int api_str_ieq(struct api_str s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/*
 * Finds the CRLF ending the line that starts at @from. Returns 1 with *eol at
 * the CR, 0 if the line is not complete yet, -1 for a bare CR or LF (RFC 9112
 * allows a recipient to reject them; accepting a bare LF would let two
 * parsers disagree on where the head ends).
 */
static int find_eol(const char *buf, size_t len, size_t from, size_t *eol)
{
    for (size_t k = from; k < len; k++) {
        if (buf[k] == '\n')
            return -1;
        if (buf[k] == '\r') {
            if (k + 1 == len)
                return 0;
            if (buf[k + 1] != '\n')
                return -1;
            *eol = k;
            return 1;
        }
    }
    return 0;
}

/*
 * Checks a request line that has not fully arrived: 0 if it can still
 * become valid, -400 if not. Lets garbage (a TLS handshake, a binary
 * protocol) fail at its first bytes instead of at the size limit.
 */
static int check_partial_line(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == n)
        return i > 32 ? -400 : 0;
    if (p[i] != ' ' || i == 0 || i > 32)
        return -400;
    i++;
    if (i < n && p[i] != '/')
        return -400;
    while (i < n && p[i] > 0x20 && p[i] < 0x7f)
        i++;
    if (i == n)
        return 0;
    if (p[i] != ' ')
        return -400;
    i++;
    static const char ver[] = "HTTP/";
    for (size_t k = 0; i < n && k < 5; k++, i++)
        if (p[i] != ver[k])
            return -400;
    return 0;
}

static int parse_request_line(const char *p, size_t n, struct api_http_req *req)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i > 32 || i >= n || p[i] != ' ')
        return -400;
    req->method = (struct api_str){p, i};
    size_t t = ++i;
    /* origin-form only: this is not a proxy, so no absolute-form, no '*' */
    if (i >= n || p[i] != '/')
        return -400;
    while (i < n && p[i] > 0x20 && p[i] < 0x7f && p[i] != '#')
        i++;
    if (i >= n || p[i] != ' ')
        return -400;
    req->target = (struct api_str){p + t, i - t};
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/", 5) || p[i + 6] != '.' || p[i + 5] < '0' ||
        p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9')
        return -400;
    if (p[i + 5] != '1')
        return -505;
    req->minor = p[i + 7] - '0';
    const char *q = memchr(req->target.p, '?', req->target.n);
    if (q) {
        req->path = (struct api_str){req->target.p, (size_t)(q - req->target.p)};
        req->query = (struct api_str){q + 1, req->target.n - req->path.n - 1};
    } else {
        req->path = req->target;
        req->query = (struct api_str){q, 0};
    }
    return 0;
}

/* Comma-separated tokens of a Connection header. */
static void parse_connection(struct api_str v, int *close, int *keep)
{
    size_t i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',' && v.p[i] != ' ' && v.p[i] != '\t')
            i++;
        struct api_str tok = {v.p + s, i - s};
        if (api_str_ieq(tok, "close"))
            *close = 1;
        else if (api_str_ieq(tok, "keep-alive"))
            *keep = 1;
    }
}

/* One header field line (without its CRLF). */
static int parse_field(const char *p, size_t n, struct api_http_req *req, int *seen_cl, int *close,
                       int *keep)
{
    size_t i = 0;
    /* obs-fold (a line starting with whitespace) is rejected, RFC 9112 5.2 */
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return -400;
    struct api_str name = {p, i};
    i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    for (size_t k = i; k < e; k++)
        if (!is_vchar_ws((unsigned char)p[k]))
            return -400;
    struct api_str v = {p + i, e - i};
    req->headers[req->n_headers++] = (struct api_header){name, v};

    if (api_str_ieq(name, "host")) {
        if (req->n_host++)
            return -400;
        req->host = v;
    } else if (api_str_ieq(name, "content-length")) {
        /* one, digits only: "1, 1", "+1" or two headers could be read two ways */
        if ((*seen_cl)++ || v.n == 0 || v.n > 18)
            return -400;
        uint64_t cl = 0;
        for (size_t k = 0; k < v.n; k++) {
            if (v.p[k] < '0' || v.p[k] > '9')
                return -400;
            cl = cl * 10 + (uint64_t)(v.p[k] - '0');
        }
        req->content_length = cl;
    } else if (api_str_ieq(name, "transfer-encoding")) {
        return -501;
    } else if (api_str_ieq(name, "connection")) {
        parse_connection(v, close, keep);
    } else if (api_str_ieq(name, "expect")) {
        if (!api_str_ieq(v, "100-continue"))
            return -417;
        req->expect_continue = 1;
    } else if (api_str_ieq(name, "origin")) {
        if (req->n_origin++)
            return -400;
        req->origin = v;
    } else if (api_str_ieq(name, "authorization")) {
        if (req->n_auth++)
            return -400;
        req->authorization = v;
    }
    return 0;
}

int api_http_parse_head(const char *buf, size_t len, const struct api_http_limits *lim,
                        struct api_http_req *req)
{
    size_t max = lim->max_header, i = 0, eol = 0;
    int r;
    memset(req, 0, sizeof *req);
    /* RFC 9112 2.2: ignore empty lines before the request line */
    while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n' && i < max)
        i += 2;
    if (i >= max)
        return -400;
    r = find_eol(buf, len, i, &eol);
    if (r < 0)
        return -400;
    if (r == 0) {
        if (len >= max)
            return -414;
        if (len - i == 1 && buf[i] == '\r') /* half of an empty line */
            return 0;
        return check_partial_line(buf + i, len - i);
    }
    if (eol + 2 > max)
        return -414;
    if ((r = parse_request_line(buf + i, eol - i, req)))
        return r;

    int seen_cl = 0, close = 0, keep = 0;
    size_t pos = eol + 2;
    for (;;) {
        if (pos + 2 > max)
            return -431;
        if (pos + 2 <= len && buf[pos] == '\r' && buf[pos + 1] == '\n')
            break;
        if (pos < len && (buf[pos] == ' ' || buf[pos] == '\t'))
            return -400; /* obs-fold */
        r = find_eol(buf, len, pos, &eol);
        if (r < 0)
            return -400;
        if (r == 0)
            return len >= max ? -431 : 0;
        if (eol + 2 > max)
            return -431;
        if (req->n_headers >= lim->max_headers || req->n_headers >= API_HEADERS_CAP)
            return -431;
        if ((r = parse_field(buf + pos, eol - pos, req, &seen_cl, &close, &keep)))
            return r;
        pos = eol + 2;
    }
    if (req->minor >= 1 && req->n_host == 0)
        return -400; /* RFC 9112 3.2: a 1.1 request without Host */
    req->keep_alive = req->minor >= 1 ? !close : keep && !close;
    if (req->minor == 0)
        req->expect_continue = 0;
    return (int)(pos + 2);
}

const char *api_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
