/*
 * Internals of the local HTTP API (src/api): the request parser (http.c),
 * the security checks (guard.c), growable buffers and JSON helpers
 * (buf.c), the server on libuv (server.c), the inference workers (worker.c)
 * and the OpenAI endpoints (openai.c). Not part of the public API; the unit
 * tests and the fuzz target use the parser and the checks directly.
 */
#ifndef KITH_API_INT_H
#define KITH_API_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kith/ai.h"
#include "kith/api.h"

/* ---- bytes -------------------------------------------------------------------- */

struct api_str {
    const char *p;
    size_t n;
};

/* Growable bytes, always NUL-terminated when p is non-NULL. */
struct api_buf {
    char *p;
    size_t len, cap;
};
int api_buf_add(struct api_buf *b, const void *p, size_t n);
int api_buf_str(struct api_buf *b, const char *s);
int api_buf_printf(struct api_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void api_buf_release(struct api_buf *b);
/* Appends @j as compact JSON (floats with 9 significant digits). */
int api_buf_json(struct api_buf *b, const json_t *j);

/* ASCII case-insensitive equality of @s with the NUL-terminated @lit. */
int api_str_ieq(struct api_str s, const char *lit);

/* ---- the request parser (http.c) ---------------------------------------------- */

#define API_HEADERS_CAP 128

struct api_header {
    struct api_str name, value;
};

struct api_http_limits {
    size_t max_header;  /* request line + headers + blank line */
    size_t max_headers; /* header fields, at most API_HEADERS_CAP */
};

struct api_http_req {
    struct api_str method, target, path, query;
    int minor; /* HTTP/1.<minor> */
    struct api_header headers[API_HEADERS_CAP];
    size_t n_headers;
    uint64_t content_length; /* 0 without a Content-Length */
    int keep_alive;          /* the connection stays open after the response */
    int expect_continue;     /* "Expect: 100-continue" */
    int n_host, n_origin, n_auth;
    struct api_str host, origin, authorization;
};

/*
 * Parses the head (request line and header fields) of the request at the
 * start of @buf, of which @len bytes have arrived. Returns 0 when more bytes
 * are needed, the head's length (with its blank line) when it is complete
 * and valid (@req then points into @buf), or the negated HTTP status for a
 * bad request: -400 malformed, -414 request line too long, -431 headers too
 * large or too many, -417 an Expect other than 100-continue, -501 a
 * Transfer-Encoding (bodies need a Content-Length), -505 not HTTP/1.x.
 * Strict (RFC 9112): CRLF line ends, no whitespace before a colon, no line
 * folding, no control characters, one Host, one Content-Length of digits.
 * Bytes that can never start a valid request fail at once, not at the limit.
 */
int api_http_parse_head(const char *buf, size_t len, const struct api_http_limits *lim,
                        struct api_http_req *req);
/* Reason phrase of @status ("Not Found"), "Unknown" for others. */
const char *api_http_reason(int status);

/* ---- the checks every request passes (guard.c) --------------------------------- */

struct api_guard {
    int port;
    const char *token; /* NUL-terminated */
    size_t token_len;
};
/* 0 when @req may go on, else the HTTP status to refuse it with (421 for a
 * Host that is not this server on loopback, 403 for a foreign Origin, 401 for
 * a missing or wrong token unless @public_path) and *why says why. */
int api_guard_check(const struct api_guard *g, const struct api_http_req *req, int public_path,
                    const char **why);
/* Constant-time (in the length of @want) comparison; 1 if equal. */
int api_token_eq(const char *got, size_t got_len, const char *want, size_t want_len);
/* Reads the token of @path into @out (NUL-terminated); refuses a file that
 * others may read. 0, KITH_EIO, KITH_EPERM, KITH_ECORRUPT (not a token). */
int api_token_read(const char *path, char *out, size_t cap, char *err, size_t errlen);
/* @n random bytes as 2n hex digits into @out (2n+1 bytes); 0 or KITH_EIO. */
int api_random_hex(char *out, size_t n);

/* ---- the server (server.c) ------------------------------------------------------ */

struct api_conn;
struct api_job;

struct kith_api_req {
    struct kith_api *api;
    struct api_conn *conn; /* NULL once the client has gone */
    char *method, *path, *query, *body;
    size_t body_len;
    char **hdr; /* name, value pairs, NUL-terminated copies */
    size_t n_hdr;
    int http_minor;
    int replied;   /* a full response was queued */
    int streaming; /* an SSE response has started */
    struct api_job *job;
    uint64_t t0; /* loop time (ms) the request was complete */
    int status;  /* for the log line */
};

struct api_route {
    char method[16];
    char *prefix;
    size_t prefix_len;
    kith_api_handler_fn fn;
    void *ud;
};

struct kith_api {
    uv_loop_t *loop;
    uv_tcp_t server;
    uv_async_t async;
    int port;
    char token[256];
    struct api_guard guard;
    struct api_http_limits lim;
    size_t max_body;
    int max_connections, n_conns;
    struct api_conn *conns; /* doubly linked */
    struct api_route routes[64];
    size_t n_routes;
    int open_handles;
    int closing;
    void *orphans; /* deferred host requests whose client left (server.c) */
    long created;  /* time(NULL) at start, for /v1/models */

    /* the model and its workers */
    kith_model *model;
    kith_vocab *vocab;
    char model_id[128];
    int n_embd, n_ctx, n_threads;
    int max_queue;
    pthread_t *threads;
    int n_threads_started, n_workers;
    pthread_mutex_t mu; /* guards everything below and jobs' shared fields */
    pthread_cond_t cv;
    struct api_job *qhead, *qtail; /* FIFO of waiting jobs */
    int n_waiting, n_running;
    int n_cancelled;        /* generations a departed client stopped (for tests) */
    struct api_job *notify; /* jobs with news for the loop (worker -> loop) */
    int stop;
};

/* Response helpers for the endpoints (loop thread). */
/* A whole response with a JSON body; ends @r (like kith_api_reply). */
int api_reply_raw(kith_api_req *r, int status, const char *extra_headers, const char *body,
                  size_t len);
/* OpenAI-style error object with @type and @code (NULL: null). */
int api_reply_openai_error(kith_api_req *r, int status, const char *type, const char *code,
                           const char *message);
/* Starts an SSE response (200, text/event-stream). */
int api_sse_start(kith_api_req *r);
/* Sends one event "data: <data>\n\n". */
int api_sse_send(kith_api_req *r, const char *data, size_t len);
/* Ends the SSE response (and @r). */
int api_sse_end(kith_api_req *r);

/* ---- inference jobs (worker.c, openai.c) ----------------------------------------- */

/* API_JOB_HOST: a host route's generation (kith_api_generate). */
enum api_job_kind { API_JOB_COMPLETION, API_JOB_CHAT, API_JOB_EMBED, API_JOB_HOST };

#define API_MAX_STOP 16

struct api_job {
    enum api_job_kind kind;
    kith_api_req *req; /* loop thread only; NULL once the client has gone */
    struct kith_api *api;
    /* input, set before queueing and then read-only */
    char *prompt;
    char **inputs; /* embeddings */
    size_t n_inputs;
    struct kith_gen_params gp;
    char *stops[API_MAX_STOP];
    int stream, include_usage, base64;
    char id[40];
    long created;
    /* shared with the worker, under api->mu */
    struct api_buf pending; /* streamed text the loop has not sent yet */
    int started, done, notified;
    kith_ctx *running_ctx;
    struct api_job *next; /* queue link */
    struct api_job *notify_next;
    atomic_int cancel;
    /* results, the worker's until done */
    int rc;
    char *text;
    struct kith_gen_stats st;
    float *embd;  /* n_inputs * n_embd */
    int n_tokens; /* prompt tokens of an embedding request */
    char errmsg[160];
    /* loop side */
    int sent_role;                  /* first chat chunk sent */
    kith_api_gen_done_fn host_done; /* API_JOB_HOST: called once, then NULL */
    void *host_ud;
};

/* Starts @n worker threads; 0 or KITH_ENOMEM/KITH_EIO. */
int api_workers_start(struct kith_api *a, int n);
/* Stops and joins them; jobs still queued are finished as cancelled. */
void api_workers_stop(struct kith_api *a);
/* Queues @j (FIFO). KITH_EBUSY when max_queue jobs already wait. */
int api_job_submit(struct kith_api *a, struct api_job *j);
/* The client of @j went away: cancel it (loop thread). */
void api_job_cancel(struct api_job *j);
void api_job_free(struct api_job *j);
/* The async callback's work: forwards news of every notified job to its
 * request (loop thread). */
void api_jobs_drain(struct kith_api *a);

/* The built-in routes (openai.c): 1 if @r was for one of them (and was
 * answered or started), 0 if the path is not theirs. */
int api_openai_dispatch(kith_api_req *r);
/* The loop has news of @j: stream it or finish the response. */
void api_openai_progress(struct api_job *j, const char *text, size_t len, int done);
/* The same for a host's generation (server.c): calls its callback when done. */
void api_host_progress(struct api_job *j, int done);

#endif
