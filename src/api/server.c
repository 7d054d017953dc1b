/*
 * server.c: the HTTP/1.1 server of the local API on the host's libuv loop.
 * A connection reads a request (http.c), passes the checks (guard.c), and
 * goes to a route: a built-in one (openai.c) or one the host registered.
 * One request at a time per connection: bytes of a pipelined next request
 * wait in the buffer until the current response is queued. Nothing here
 * blocks the loop; generations run on worker threads (worker.c) and come
 * back through a uv_async.
 * Connection states: READ (waiting for a whole request, with a deadline),
 * BUSY (a route has it: no deadline, a generation may take minutes),
 * LINGER (the answer is sent and the write side shut; what the client still
 * sends is read and dropped for a moment, so that closing does not reset the
 * connection before the client has read an error such as 413).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "util/util_int.h"

#define READ_TIMEOUT_MS 30000 /* a whole request, or the idle time between two */
#define LINGER_MS       2000
#define READ_CHUNK      16384

enum { CONN_READ, CONN_BUSY, CONN_LINGER };

struct api_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    struct kith_api *api;
    struct api_conn *prev, *next;
    char *in;
    size_t in_len, in_cap;
    size_t scanned;  /* bytes of @in already searched for the end of the head */
    size_t head_len; /* 0 until the head is parsed */
    uint64_t body_len;
    struct api_http_req hreq;
    kith_api_req *req; /* the request being answered */
    int state, keep_alive, reading, closing, in_process, handles;
};

struct wreq {
    uv_write_t w;
    struct api_conn *c;
    char data[];
};

/* Deferred host requests whose client went away: freed at kith_api_close. */
struct orphan {
    kith_api_req *r;
    struct orphan *next;
};
static void api_free(struct kith_api *a);

/* ---- connections ------------------------------------------------------------ */

static void handle_closed(struct kith_api *a)
{
    if (--a->open_handles == 0 && a->closing)
        api_free(a);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct api_conn *c = h->data;
    if (--c->handles)
        return;
    struct kith_api *a = c->api;
    kith_free(c->in);
    kith_free(c);
    a->open_handles--; /* the timer's; the socket's goes in handle_closed */
    handle_closed(a);
}

static void req_free(kith_api_req *r)
{
    if (!r)
        return;
    kith_free(r->method);
    kith_free(r->hdr);
    kith_free(r);
}

/* The client of @r is gone: a generation is cancelled; a deferred host
 * request waits for its handler's reply, which will be dropped. */
static void req_detach(kith_api_req *r)
{
    r->conn = NULL;
    if (r->job) {
        kith_log(KITH_LOG_INFO, "api: %s %s cancelled: the client went away", r->method, r->path);
        api_job_cancel(r->job);
        req_free(r);
        return;
    }
    struct orphan *o = kith_malloc(sizeof *o);
    if (o) {
        o->r = r;
        o->next = (struct orphan *)r->api->orphans;
        r->api->orphans = o;
    }
}

static void conn_close(struct api_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct kith_api *a = c->api;
    if (c->req) {
        kith_api_req *r = c->req;
        c->req = NULL;
        req_detach(r);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct api_conn *c = wr->c;
    kith_free(wr);
    if (status < 0)
        conn_close(c);
}

static int conn_write(struct api_conn *c, const char *p, size_t n)
{
    if (c->closing)
        return KITH_ENET;
    struct wreq *w = kith_malloc(sizeof *w + n);
    if (!w) {
        conn_close(c);
        return KITH_ENOMEM;
    }
    w->c = c;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_written)) {
        kith_free(w);
        conn_close(c);
        return KITH_ENET;
    }
    return 0;
}

static void on_linger_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    struct api_conn *c = s->data;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timer, LINGER_MS, 0);
}

/* Ends @c after what is queued has been written. */
static void conn_end(struct api_conn *c)
{
    if (c->closing || c->state == CONN_LINGER)
        return;
    c->state = CONN_LINGER;
    /* a client that reads nothing would hold the shutdown back forever */
    uv_timer_start(&c->timer, on_linger_timer, READ_TIMEOUT_MS, 0);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown))
        conn_close(c);
}

static void on_read_timer(uv_timer_t *t);
static void conn_process(struct api_conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void conn_read_on(struct api_conn *c)
{
    if (!c->reading && !c->closing && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

/* The response to the current request is queued: on to the next one. */
static void conn_request_done(struct api_conn *c)
{
    if (c->closing || c->state == CONN_LINGER)
        return;
    if (!c->keep_alive) {
        conn_end(c);
        return;
    }
    size_t used = c->head_len + (size_t)c->body_len;
    if (used > c->in_len)
        used = c->in_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->head_len = 0;
    c->body_len = 0;
    c->scanned = 0;
    c->state = CONN_READ;
    uv_timer_start(&c->timer, on_read_timer, READ_TIMEOUT_MS, 0);
    conn_read_on(c);
    if (c->in_len)
        conn_process(c);
}

/* The common response head. @len < 0: chunked (or close-delimited on 1.0). */
static int head_printf(struct api_buf *b, int status, const char *ctype, long long len, int keep,
                       int minor, const char *extra)
{
    int rc = api_buf_printf(b, "HTTP/1.%d %d %s\r\n", minor >= 1 ? 1 : 0, status,
                            api_http_reason(status));
    if (!rc && ctype)
        rc = api_buf_printf(b, "Content-Type: %s\r\n", ctype);
    if (!rc && len >= 0)
        rc = api_buf_printf(b, "Content-Length: %lld\r\n", len);
    else if (!rc && minor >= 1)
        rc = api_buf_str(b, "Transfer-Encoding: chunked\r\n");
    if (!rc)
        rc = api_buf_printf(b,
                            "Connection: %s\r\nCache-Control: no-store\r\n"
                            "X-Content-Type-Options: nosniff\r\n%s\r\n",
                            keep ? "keep-alive" : "close", extra ? extra : "");
    return rc;
}

static void log_req(struct kith_api *a, const char *method, const char *path, int status,
                    uint64_t t0)
{
    uv_update_time(a->loop);
    kith_log(status >= 500 ? KITH_LOG_WARN : KITH_LOG_INFO, "api: %s %s %d %llu ms", method, path,
             status, (unsigned long long)(uv_now(a->loop) - t0));
}

/* OpenAI-style error JSON for @message into @b. */
static int error_json(struct api_buf *b, int status, const char *type, const char *code,
                      const char *message)
{
    if (!type)
        type = status == 401                    ? "authentication_error"
               : status == 403 || status == 421 ? "permission_error"
               : status == 404                  ? "not_found_error"
               : status == 429 || status == 503 ? "server_busy"
               : status >= 500                  ? "server_error"
                                                : "invalid_request_error";
    json_t *j = json_pack("{s:{s:s, s:s, s:n, s:o}}", "error", "message", message, "type", type,
                          "param", "code", code ? json_string(code) : json_null());
    if (!j)
        return KITH_ENOMEM;
    int rc = api_buf_json(b, j);
    json_decref(j);
    return rc;
}

/* Refuses the request whose head is in c->hreq (before any route saw it)
 * and closes the connection: its body, if any, is not read. */
static void reply_early(struct api_conn *c, int status, const char *why)
{
    struct api_buf body = {0}, out = {0};
    const char *extra = status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL;
    c->keep_alive = 0;
    if (error_json(&body, status, NULL, NULL, why) == 0 &&
        head_printf(&out, status, "application/json", (long long)body.len, 0, 1, extra) == 0 &&
        api_buf_add(&out, body.p, body.len) == 0)
        conn_write(c, out.p, out.len);
    char m[40] = "-", p[200] = "-";
    if (c->hreq.method.n)
        snprintf(m, sizeof m, "%.*s", (int)c->hreq.method.n, c->hreq.method.p);
    if (c->hreq.path.n)
        snprintf(p, sizeof p, "%.*s", (int)c->hreq.path.n, c->hreq.path.p);
    log_req(c->api, m, p, status, uv_now(c->api->loop));
    api_buf_release(&body);
    api_buf_release(&out);
    conn_end(c);
}

/* Copies the parsed request out of the connection's buffer. */
static kith_api_req *req_new(struct api_conn *c)
{
    struct api_http_req *h = &c->hreq;
    kith_api_req *r = kith_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    size_t need = h->method.n + h->path.n + h->query.n + (size_t)c->body_len + 4;
    for (size_t i = 0; i < h->n_headers; i++)
        need += h->headers[i].name.n + h->headers[i].value.n + 2;
    char *s = kith_malloc(need);
    r->hdr = kith_calloc(h->n_headers * 2 + 1, sizeof *r->hdr);
    if (!s || !r->hdr) {
        kith_free(s);
        kith_free(r->hdr);
        kith_free(r);
        return NULL;
    }
#define PUT(dst, p, n)                                                                             \
    do {                                                                                           \
        (dst) = s;                                                                                 \
        if (n)                                                                                     \
            memcpy(s, (p), (n));                                                                   \
        s[(n)] = '\0';                                                                             \
        s += (n) + 1;                                                                              \
    } while (0)
    PUT(r->method, h->method.p, h->method.n);
    PUT(r->path, h->path.p, h->path.n);
    PUT(r->query, h->query.p, h->query.n);
    PUT(r->body, c->in + c->head_len, (size_t)c->body_len);
    for (size_t i = 0; i < h->n_headers; i++) {
        PUT(r->hdr[2 * i], h->headers[i].name.p, h->headers[i].name.n);
        PUT(r->hdr[2 * i + 1], h->headers[i].value.p, h->headers[i].value.n);
    }
#undef PUT
    r->n_hdr = h->n_headers;
    r->body_len = (size_t)c->body_len;
    r->http_minor = h->minor;
    r->api = c->api;
    r->conn = c;
    r->t0 = uv_now(c->api->loop);
    return r;
}

/* The host route for @r: the longest prefix registered for its method.
 * *other is set when a route of another method has a matching prefix. */
static const struct api_route *find_route(struct kith_api *a, const kith_api_req *r, int *other)
{
    const struct api_route *best = NULL;
    size_t plen = strlen(r->path);
    *other = 0;
    for (size_t i = 0; i < a->n_routes; i++) {
        const struct api_route *rt = &a->routes[i];
        if (rt->prefix_len > plen || memcmp(rt->prefix, r->path, rt->prefix_len))
            continue;
        if (strcmp(rt->method, r->method)) {
            *other = 1;
            continue;
        }
        if (!best || rt->prefix_len > best->prefix_len)
            best = rt;
    }
    return best;
}

static void dispatch(struct api_conn *c)
{
    struct kith_api *a = c->api;
    kith_api_req *r = req_new(c);
    if (!r) {
        c->keep_alive = 0;
        reply_early(c, 503, "out of memory");
        return;
    }
    c->req = r;
    if (api_openai_dispatch(r))
        return;
    int other = 0;
    const struct api_route *rt = find_route(a, r, &other);
    if (!rt) {
        if (other)
            api_reply_openai_error(r, 405, NULL, NULL, "method not allowed on this path");
        else
            api_reply_openai_error(r, 404, NULL, NULL, "no such endpoint");
        return;
    }
    int rc = rt->fn(rt->ud, r);
    /* replied (or the connection closed meanwhile, which only a reply's
     * failed write can do here): @r is gone */
    if (c->req != r)
        return;
    if (rc < 0)
        api_reply_openai_error(r, 500, NULL, NULL, kith_strerror(rc));
}

/* Whether the head's blank line has arrived (searching only new bytes). */
static int head_complete(struct api_conn *c)
{
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    c->scanned = c->in_len;
    for (size_t i = from; i + 3 < c->in_len; i++)
        if (c->in[i] == '\r' && c->in[i + 1] == '\n' && c->in[i + 2] == '\r' &&
            c->in[i + 3] == '\n')
            return 1;
    return 0;
}

static void conn_process(struct api_conn *c)
{
    struct kith_api *a = c->api;
    if (c->in_process)
        return;
    c->in_process = 1;
    while (!c->closing && c->state == CONN_READ && c->in_len) {
        if (!c->head_len) {
            /* parse again only when it can change the answer: the head is
             * complete, the limit is reached, or the start may be garbage */
            int r = 0;
            if (head_complete(c) || c->in_len >= a->lim.max_header || c->in_len <= 1024)
                r = api_http_parse_head(c->in, c->in_len, &a->lim, &c->hreq);
            if (r == 0)
                break;
            if (r < 0) {
                reply_early(c, -r,
                            -r == 431   ? "request headers too large"
                            : -r == 414 ? "request line too long"
                            : -r == 501 ? "Transfer-Encoding is not supported: send Content-Length"
                            : -r == 505 ? "only HTTP/1.0 and HTTP/1.1 are supported"
                            : -r == 417 ? "unsupported Expect"
                                        : "malformed request");
                break;
            }
            c->head_len = (size_t)r;
            c->keep_alive = c->hreq.keep_alive;
            const char *why = NULL;
            int pub = api_str_ieq(c->hreq.path, "/health");
            int st = api_guard_check(&a->guard, &c->hreq, pub, &why);
            if (st) {
                reply_early(c, st, why);
                break;
            }
            if (c->hreq.content_length > a->max_body) {
                char msg[96];
                snprintf(msg, sizeof msg, "request body over the limit of %zu bytes", a->max_body);
                reply_early(c, 413, msg);
                break;
            }
            c->body_len = c->hreq.content_length;
            if (c->hreq.expect_continue && c->in_len < c->head_len + c->body_len)
                conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        }
        if (c->in_len < c->head_len + c->body_len)
            break;
        /* the buffer may have moved since the head was parsed */
        api_http_parse_head(c->in, c->in_len, &a->lim, &c->hreq);
        c->state = CONN_BUSY;
        uv_timer_stop(&c->timer);
        dispatch(c);
    }
    c->in_process = 0;
}

static void on_read_timer(uv_timer_t *t)
{
    struct api_conn *c = t->data;
    if (c->state != CONN_READ)
        return;
    if (c->in_len == 0) { /* an idle keep-alive connection */
        conn_close(c);
        return;
    }
    memset(&c->hreq, 0, sizeof c->hreq);
    reply_early(c, 408, "the request did not arrive in time");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct api_conn *c = h->data;
    struct kith_api *a = c->api;
    if (c->state == CONN_LINGER) /* read and dropped */
        c->in_len = 0;
    /* room for one whole request and the start of a pipelined one */
    size_t limit = a->lim.max_header + a->max_body + READ_CHUNK;
    if (c->in_cap - c->in_len < READ_CHUNK && c->in_cap < limit) {
        size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK;
        while (cap - c->in_len < READ_CHUNK && cap < limit)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        char *p = kith_realloc(c->in, cap);
        if (p) {
            c->in = p;
            c->in_cap = cap;
        }
    }
    *b = uv_buf_init(c->in ? c->in + c->in_len : NULL, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct api_conn *c = s->data;
    if (n == UV_ENOBUFS) {
        /* a pipelined request fills the buffer while one is answered:
         * wait for that answer (conn_request_done reads again) */
        uv_read_stop(s);
        c->reading = 0;
        if (c->state == CONN_READ)
            reply_early(c, 413, "request too large");
        return;
    }
    if (n < 0) { /* EOF or error: the client is gone; its generation stops */
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->state == CONN_LINGER) {
        c->in_len = 0;
        return;
    }
    c->in_len += (size_t)n;
    conn_process(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
    struct kith_api *a = srv->data;
    if (status < 0 || a->closing)
        return;
    struct api_conn *c = kith_calloc(1, sizeof *c);
    if (!c) {
        kith_log(KITH_LOG_ERROR, "api: out of memory for a connection");
        return;
    }
    c->api = a;
    uv_tcp_init(a->loop, &c->tcp);
    uv_timer_init(a->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    a->open_handles += 2;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    if (a->n_conns > a->max_connections) {
        kith_log(KITH_LOG_WARN, "api: %d connections: refusing one", a->n_conns - 1);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = CONN_READ;
    uv_timer_start(&c->timer, on_read_timer, READ_TIMEOUT_MS, 0);
    conn_read_on(c);
}

/* ---- responses ------------------------------------------------------------------- */

/* Takes @r off its connection; returns the connection (NULL if gone). */
static struct api_conn *req_take(kith_api_req *r)
{
    struct api_conn *c = r->conn;
    if (c && c->req == r)
        c->req = NULL;
    r->conn = NULL;
    return c && !c->closing ? c : NULL;
}

static void orphan_drop(struct kith_api *a, kith_api_req *r)
{
    for (struct orphan **o = (struct orphan **)&a->orphans; *o; o = &(*o)->next)
        if ((*o)->r == r) {
            struct orphan *dead = *o;
            *o = dead->next;
            kith_free(dead);
            return;
        }
}

int api_reply_raw(kith_api_req *r, int status, const char *extra_headers, const char *body,
                  size_t len)
{
    struct kith_api *a = r->api;
    int gone = r->conn == NULL;
    struct api_conn *c = req_take(r);
    int rc = 0;
    if (c) {
        struct api_buf out = {0};
        rc = head_printf(&out, status, "application/json", (long long)len, c->keep_alive,
                         r->http_minor, extra_headers);
        if (!rc)
            rc = api_buf_add(&out, body, len);
        if (!rc)
            rc = conn_write(c, out.p, out.len);
        api_buf_release(&out);
        log_req(a, r->method, r->path, status, r->t0);
        if (rc)
            conn_close(c);
        else
            conn_request_done(c);
    } else if (gone) {
        orphan_drop(a, r);
    }
    req_free(r);
    return rc;
}

int api_reply_openai_error(kith_api_req *r, int status, const char *type, const char *code,
                           const char *message)
{
    struct api_buf b = {0};
    int rc = error_json(&b, status, type, code, message);
    if (rc) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\"}}";
        rc = api_reply_raw(r, 500, NULL, oom, sizeof oom - 1);
    } else {
        const char *extra = status == 405   ? "Allow: GET, POST\r\n"
                            : status == 503 ? "Retry-After: 1\r\n"
                                            : NULL;
        rc = api_reply_raw(r, status, extra, b.p, b.len);
    }
    api_buf_release(&b);
    return rc;
}

int api_sse_start(kith_api_req *r)
{
    struct api_conn *c = r->conn;
    if (!c || c->closing)
        return KITH_ENET;
    if (r->http_minor < 1)
        c->keep_alive = 0; /* the stream's end is the connection's end */
    struct api_buf out = {0};
    int rc = head_printf(&out, 200, "text/event-stream", -1, c->keep_alive, r->http_minor,
                         "X-Accel-Buffering: no\r\n");
    if (!rc)
        rc = conn_write(c, out.p, out.len);
    api_buf_release(&out);
    r->streaming = 1;
    return rc;
}

static int sse_write(kith_api_req *r, const char *p, size_t n)
{
    struct api_conn *c = r->conn;
    if (!c || c->closing)
        return KITH_ENET;
    if (r->http_minor < 1)
        return conn_write(c, p, n);
    struct api_buf b = {0};
    int rc = api_buf_printf(&b, "%zx\r\n", n);
    if (!rc)
        rc = api_buf_add(&b, p, n);
    if (!rc)
        rc = api_buf_add(&b, "\r\n", 2);
    if (!rc)
        rc = conn_write(c, b.p, b.len);
    api_buf_release(&b);
    return rc;
}

int api_sse_send(kith_api_req *r, const char *data, size_t len)
{
    struct api_buf b = {0};
    int rc = api_buf_add(&b, "data: ", 6);
    if (!rc)
        rc = api_buf_add(&b, data, len);
    if (!rc)
        rc = api_buf_add(&b, "\n\n", 2);
    if (!rc)
        rc = sse_write(r, b.p, b.len);
    api_buf_release(&b);
    return rc;
}

int api_sse_end(kith_api_req *r)
{
    struct api_conn *c = req_take(r);
    int rc = 0;
    if (c) {
        if (r->http_minor >= 1)
            rc = conn_write(c, "0\r\n\r\n", 5);
        log_req(r->api, r->method, r->path, 200, r->t0);
        if (!rc)
            conn_request_done(c);
    }
    req_free(r);
    return rc;
}

/* ---- the public calls -------------------------------------------------------------- */

const char *kith_api_req_method(const kith_api_req *r)
{
    return r->method;
}

const char *kith_api_req_path(const kith_api_req *r)
{
    return r->path;
}

const char *kith_api_req_query(const kith_api_req *r)
{
    return r->query;
}

const char *kith_api_req_body(const kith_api_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

const char *kith_api_req_header(const kith_api_req *r, const char *name)
{
    for (size_t i = 0; i < r->n_hdr; i++)
        if (api_str_ieq((struct api_str){r->hdr[2 * i], strlen(r->hdr[2 * i])}, name))
            return r->hdr[2 * i + 1];
    return NULL;
}

int kith_api_req_gone(const kith_api_req *r)
{
    return r->conn == NULL;
}

int kith_api_reply(kith_api_req *r, int status, const char *json, size_t len)
{
    if (!r || status < 200 || status > 599 || (!json && len))
        return KITH_EINVAL;
    return api_reply_raw(r, status, NULL, json ? json : "", len);
}

int kith_api_reply_error(kith_api_req *r, int status, const char *message)
{
    if (!r || status < 200 || status > 599)
        return KITH_EINVAL;
    return api_reply_openai_error(r, status, NULL, NULL, message ? message : "error");
}

int kith_api_generate(kith_api_req *r, const char *prompt, const struct kith_gen_params *gp,
                      kith_api_gen_done_fn done, void *ud)
{
    if (!r || !prompt || !gp || !done || r->job || r->replied || gp->size < sizeof(size_t))
        return KITH_EINVAL;
    struct kith_api *a = r->api;
    if (!a->model)
        return KITH_EUNSUPPORTED;
    struct api_job *j = kith_calloc(1, sizeof *j);
    if (!j || !(j->prompt = kith_strndup(prompt, strlen(prompt)))) {
        kith_free(j);
        return KITH_ENOMEM;
    }
    j->kind = API_JOB_HOST;
    kith_gen_params_init(&j->gp);
    memcpy(&j->gp, gp, gp->size < sizeof j->gp ? gp->size : sizeof j->gp);
    j->gp.size = sizeof j->gp;
    j->gp.stop = NULL; /* borrowed pointers would not outlive the call */
    j->gp.n_stop = 0;
    j->req = r;
    r->job = j;
    if (api_job_submit(a, j)) {
        r->job = NULL;
        api_job_free(j); /* host_done is not set yet: no callback */
        return KITH_EBUSY;
    }
    /* set once queued: from here on the callback is owed exactly once */
    pthread_mutex_lock(&a->mu);
    j->host_done = done;
    j->host_ud = ud;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void api_host_progress(struct api_job *j, int done)
{
    if (!done)
        return;
    kith_api_req *r = j->req;
    if (r) {
        r->job = NULL;
        j->req = NULL;
    }
    kith_api_gen_done_fn fn = j->host_done;
    j->host_done = NULL;
    if (fn)
        fn(j->host_ud, r, j->rc, j->text ? j->text : "", j->text ? strlen(j->text) : 0);
    else if (r)
        api_reply_openai_error(r, 500, NULL, NULL, "lost generation");
    api_job_free(j);
}

const kith_vocab *kith_api_vocab(const kith_api *a)
{
    return a ? a->vocab : NULL;
}

int kith_api_n_ctx(const kith_api *a)
{
    return a && a->model ? a->n_ctx : 0;
}

int kith_api_route(kith_api *a, const char *method, const char *prefix, kith_api_handler_fn fn,
                   void *ud)
{
    if (!a || !method || !prefix || !fn || prefix[0] != '/' || !*method ||
        strlen(method) >= sizeof a->routes[0].method)
        return KITH_EINVAL;
    for (const char *m = method; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return KITH_EINVAL;
    /* the built-in endpoints stay the server's own */
    if (!strncmp(prefix, "/v1", 3) || !strncmp(prefix, "/health", 7) || !strcmp(prefix, "/"))
        return KITH_EINVAL;
    if (a->n_routes == sizeof a->routes / sizeof a->routes[0])
        return KITH_ETOOBIG;
    struct api_route *rt = &a->routes[a->n_routes];
    rt->prefix = kith_strndup(prefix, strlen(prefix));
    if (!rt->prefix)
        return KITH_ENOMEM;
    snprintf(rt->method, sizeof rt->method, "%s", method);
    rt->prefix_len = strlen(prefix);
    rt->fn = fn;
    rt->ud = ud;
    a->n_routes++;
    return 0;
}

void kith_api_opts_init(struct kith_api_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
}

int kith_api_port(const kith_api *a)
{
    return a ? a->port : 0;
}

kith_model *kith_api_model(const kith_api *a)
{
    return a ? a->model : NULL;
}

const char *kith_api_model_id(const kith_api *a)
{
    return a && a->model ? a->model_id : NULL;
}

static void on_async(uv_async_t *h)
{
    api_jobs_drain(h->data);
}

static void on_api_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void api_free(struct kith_api *a)
{
    for (struct orphan *o = a->orphans, *next; o; o = next) {
        next = o->next;
        req_free(o->r);
        kith_free(o);
    }
    for (size_t i = 0; i < a->n_routes; i++)
        kith_free(a->routes[i].prefix);
    kith_vocab_free(a->vocab);
    kith_model_free(a->model);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    memset(a->token, 0, sizeof a->token);
    kith_free(a);
}

/* The model's id: the file name without ".gguf". */
static void default_id(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf"))
        n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

/* A listening socket on 127.0.0.1:@port, before any libuv handle exists, so
 * that a failure leaves nothing for the loop to close. */
static int listen_socket(int port, int *fd_out, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot make a socket: %s", strerror(errno));
        return KITH_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 128)) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
        close(fd);
        return KITH_EIO;
    }
    *fd_out = fd;
    return 0;
}

int kith_api_start(const struct kith_api_opts *o, kith_api **out, char *err, size_t errlen)
{
    char dummy[8];
    struct kith_api_opts opt;
    int rc, fd = -1, sync_inited = 0;
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (out)
        *out = NULL;
    if (!o || !out || o->size < sizeof(size_t) || o->size > sizeof opt) {
        snprintf(err, errlen, "bad options");
        return KITH_EINVAL;
    }
    kith_api_opts_init(&opt);
    memcpy(&opt, o, o->size);
    if (!opt.uv_loop || !opt.token_file || opt.port < 0 || opt.port > 65535 ||
        opt.max_headers > API_HEADERS_CAP || opt.max_generations < 0 || opt.max_generations > 64 ||
        opt.max_queue < 0 || opt.max_connections < 0) {
        snprintf(err, errlen, "bad options (a libuv loop and a token file are required)");
        return KITH_EINVAL;
    }
    struct kith_api *a = kith_calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    a->loop = opt.uv_loop;
    a->lim.max_header = opt.max_header ? opt.max_header : 16384;
    a->lim.max_headers = opt.max_headers ? (size_t)opt.max_headers : 64;
    a->max_body = opt.max_body ? opt.max_body : (size_t)1 << 20;
    a->max_connections = opt.max_connections ? opt.max_connections : 128;
    a->max_queue = opt.max_queue ? opt.max_queue : 16;
    a->n_threads = opt.n_threads;
    a->created = (long)time(NULL);
    if (a->lim.max_header < 256 || a->max_body > ((size_t)1 << 30)) {
        snprintf(err, errlen, "bad limits");
        rc = KITH_EINVAL;
        goto fail;
    }
    if ((rc = api_token_read(opt.token_file, a->token, sizeof a->token, err, errlen)))
        goto fail;
    if (pthread_mutex_init(&a->mu, NULL)) {
        rc = KITH_ENOMEM;
        goto fail;
    }
    if (pthread_cond_init(&a->cv, NULL)) {
        pthread_mutex_destroy(&a->mu);
        rc = KITH_ENOMEM;
        goto fail;
    }
    sync_inited = 1;
    if (opt.model_path) {
        if ((rc = kith_model_load(opt.model_path, &a->model, err, errlen)))
            goto fail;
        if ((rc = kith_vocab_load(opt.model_path, &a->vocab, err, errlen)))
            goto fail;
        struct kith_model_info in = {.size = sizeof in};
        if ((rc = kith_model_info(a->model, &in)))
            goto fail;
        a->n_embd = in.n_embd;
        a->n_ctx = opt.n_ctx > 0 ? opt.n_ctx : (in.n_ctx_train < 4096 ? in.n_ctx_train : 4096);
        if (opt.model_id && *opt.model_id)
            snprintf(a->model_id, sizeof a->model_id, "%s", opt.model_id);
        else
            default_id(opt.model_path, a->model_id, sizeof a->model_id);
        if ((rc = api_workers_start(a, opt.max_generations ? opt.max_generations : 1))) {
            snprintf(err, errlen, "cannot start the inference threads");
            goto fail;
        }
    }
    if ((rc = listen_socket(opt.port, &fd, err, errlen)))
        goto fail_workers;

    /* From here on nothing fails: libuv handles, once initialised, can only
     * be released through the loop. */
    uv_tcp_init(a->loop, &a->server);
    a->server.data = a;
    a->open_handles++;
    struct sockaddr_in sa;
    int salen = sizeof sa;
    if (uv_tcp_open(&a->server, fd)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0 || uv_listen((uv_stream_t *)&a->server, 128, on_connection) ||
        uv_tcp_getsockname(&a->server, (struct sockaddr *)&sa, &salen)) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%d", opt.port);
        kith_api_close(a); /* frees once the loop closed the handle */
        return KITH_EIO;
    }
    a->port = ntohs(sa.sin_port);
    a->guard = (struct api_guard){a->port, a->token, strlen(a->token)};
    uv_async_init(a->loop, &a->async, on_async);
    a->async.data = a;
    a->open_handles++;
    *out = a;
    return 0;

fail_workers:
    api_workers_stop(a);
fail:
    kith_vocab_free(a->vocab);
    kith_model_free(a->model);
    if (sync_inited) {
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
    }
    memset(a->token, 0, sizeof a->token);
    kith_free(a);
    return rc;
}

void kith_api_close(kith_api *a)
{
    if (!a || a->closing)
        return;
    a->closing = 1;
    while (a->conns)
        conn_close(a->conns);
    if (a->model) {
        api_workers_stop(a);
        api_jobs_drain(a); /* frees the jobs the workers finished */
    }
    if (a->server.loop)
        uv_close((uv_handle_t *)&a->server, on_api_handle_closed);
    if (a->async.loop)
        uv_close((uv_handle_t *)&a->async, on_api_handle_closed);
    if (a->open_handles == 0)
        api_free(a);
}
