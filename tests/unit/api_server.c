/*
 * The local API server over real loopback sockets, with the bundled model:
 * the server runs on a libuv loop in its own thread (as in the daemon) and
 * the tests are its clients. Routing (built-in and host routes, deferred
 * replies, 404/405), the checks (401/403/421/413/400), keep-alive,
 * pipelining and 100-continue, the OpenAI endpoints (greedy completion
 * equal to the golden text, chat, SSE streaming, embeddings), a full queue
 * (503), the loop answering while a generation runs, a departed client
 * cancelling its generation, and closing while a generation runs.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/api_int.h"
#include "kith/kith.h"
#include "tt.h"

static uv_loop_t loop;
static uv_async_t stop_async;
static uv_timer_t later_timer;
static pthread_t loop_thread;
static kith_api *api;
static int port;
static char token[128], tmpdir[64], token_path[128];
static kith_api_req *later;
static volatile int later_gone_seen;

/* ---- host routes (loop thread) -------------------------------------------------- */

static int h_echo(void *ud, kith_api_req *r)
{
    size_t n;
    const char *body = kith_api_req_body(r, &n);
    const char *x = kith_api_req_header(r, "x-test");
    json_t *j = json_pack("{s:s, s:s, s:s, s:s%, s:s?, s:s}", "method", kith_api_req_method(r),
                          "path", kith_api_req_path(r), "query", kith_api_req_query(r), "body",
                          body, n, "x", x, "ud", (const char *)ud);
    char *s = json_dumps(j, JSON_COMPACT);
    int rc = kith_api_reply(r, 200, s, strlen(s));
    free(s);
    json_decref(j);
    return rc;
}

static void on_later(uv_timer_t *t)
{
    if (!later)
        return;
    if (kith_api_req_gone(later))
        later_gone_seen = 1;
    kith_api_reply(later, 200, "{\"later\":true}", 14); /* dropped if gone */
    later = NULL;
}

static int h_later(void *ud, kith_api_req *r)
{
    later = r;
    uv_timer_start(&later_timer, on_later, (uint64_t)(uintptr_t)ud, 0);
    return 0;
}

static int h_fail(void *ud, kith_api_req *r)
{
    return KITH_EIO;
}

/* ---- server ------------------------------------------------------------------------ */

static void on_stop(uv_async_t *h)
{
    kith_api_close(api);
    api = NULL;
    uv_close((uv_handle_t *)&stop_async, NULL);
    uv_close((uv_handle_t *)&later_timer, NULL);
}

static void *loop_main(void *arg)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int start_server(int n_ctx, int max_gen, int max_queue)
{
    char model[512], err[256];
    tt_path("KITH_SRC", "models/stories260K-f32.gguf", model, sizeof model);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kith-api-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(token_path, sizeof token_path, "%s/api-token", tmpdir);
    if (kith_api_token_ensure(token_path, err, sizeof err) ||
        api_token_read(token_path, token, sizeof token, err, sizeof err))
        return -1;
    if (uv_loop_init(&loop))
        return -1;
    struct kith_api_opts o;
    kith_api_opts_init(&o);
    o.uv_loop = &loop;
    o.token_file = token_path;
    o.model_path = model;
    o.n_ctx = n_ctx;
    o.max_generations = max_gen;
    o.max_queue = max_queue;
    o.max_body = 65536;
    if (kith_api_start(&o, &api, err, sizeof err)) {
        fprintf(stderr, "  kith_api_start: %s\n", err);
        return -1;
    }
    port = kith_api_port(api);
    static char get[] = "get", post[] = "post";
    if (kith_api_route(api, "GET", "/kith/", h_echo, get) ||
        kith_api_route(api, "POST", "/kith/echo", h_echo, post) ||
        kith_api_route(api, "GET", "/kith/later", h_later, (void *)(uintptr_t)50) ||
        kith_api_route(api, "GET", "/kith/slow", h_later, (void *)(uintptr_t)400) ||
        kith_api_route(api, "GET", "/kith/fail", h_fail, NULL))
        return -1;
    uv_async_init(&loop, &stop_async, on_stop);
    uv_timer_init(&loop, &later_timer);
    later = NULL;
    later_gone_seen = 0;
    return pthread_create(&loop_thread, NULL, loop_main, NULL) ? -1 : 0;
}

static int stop_server(void)
{
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    int rc = uv_loop_close(&loop); /* every handle closed */
    unlink(token_path);
    rmdir(tmpdir);
    return rc;
}

/* ---- client ------------------------------------------------------------------------ */

static int cconnect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void csend(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

struct resp {
    int status;
    char head[4096];
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
};

static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char c;
    while (n + 1 < cap && recv(fd, &c, 1, 0) == 1) {
        buf[n++] = c;
        if (c == '\n')
            break;
    }
    buf[n] = 0;
    return (int)n;
}

/* One response from @fd (Content-Length or chunked). 0 or -1. */
static int read_resp(int fd, struct resp *r)
{
    char line[1024];
    size_t hl = 0;
    memset(r, 0, sizeof *r);
    for (;;) {
        int n = read_line(fd, line, sizeof line);
        if (n <= 0)
            return -1;
        if (hl + (size_t)n < sizeof r->head) {
            memcpy(r->head + hl, line, (size_t)n + 1);
            hl += (size_t)n;
        }
        if (!strcmp(line, "\r\n"))
            break;
    }
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    r->body = calloc(1, 1);
    const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
    if (cl) {
        size_t want = strtoul(cl + 18, NULL, 10);
        r->body = realloc(r->body, want + 1);
        while (r->len < want) {
            ssize_t got = recv(fd, r->body + r->len, want - r->len, 0);
            if (got <= 0)
                return -1;
            r->len += (size_t)got;
        }
        r->body[r->len] = 0;
        return 0;
    }
    if (!strcasestr(r->head, "Transfer-Encoding: chunked"))
        return 0;
    for (;;) {
        if (read_line(fd, line, sizeof line) <= 0)
            return -1;
        size_t n = strtoul(line, NULL, 16);
        r->body = realloc(r->body, r->len + n + 3);
        size_t got = 0;
        while (got < n + 2) { /* the chunk and its CRLF */
            ssize_t g = recv(fd, r->body + r->len + got, n + 2 - got, 0);
            if (g <= 0)
                return -1;
            got += (size_t)g;
        }
        r->len += n;
        r->body[r->len] = 0;
        if (n == 0)
            return 0;
    }
}

/* One request on a new connection; the response in @r (free r->body). */
static int request(const char *method, const char *path, const char *extra, const char *body,
                   struct resp *r)
{
    char head[4096];
    int fd = cconnect();
    if (fd < 0)
        return -1;
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
             method, path, port, token, body ? strlen(body) : 0, extra ? extra : "");
    csend(fd, head, strlen(head));
    if (body)
        csend(fd, body, strlen(body));
    int rc = read_resp(fd, r);
    close(fd);
    return rc;
}

static int status_of(const char *raw)
{
    struct resp r;
    int fd = cconnect();
    csend(fd, raw, strlen(raw));
    int st = read_resp(fd, &r) ? -1 : r.status;
    free(r.body);
    close(fd);
    return st;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- tests ------------------------------------------------------------------------- */

TT_TEST(routes)
{
    struct resp r;
    TT_OK(start_server(0, 1, 4));
    TT_OK(request("GET", "/v1/models", NULL, NULL, &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.body, "\"id\":\"stories260K-f32\""));
    TT_ASSERT(strstr(r.body, "\"object\":\"list\""));
    free(r.body);
    TT_OK(request("GET", "/v1/models/stories260K-f32", NULL, NULL, &r));
    TT_EQ(r.status, 200);
    free(r.body);
    TT_OK(request("GET", "/v1/models/gpt-4", NULL, NULL, &r));
    TT_EQ(r.status, 404);
    free(r.body);
    TT_OK(request("GET", "/nope", NULL, NULL, &r));
    TT_EQ(r.status, 404);
    TT_ASSERT(strstr(r.body, "\"error\""));
    free(r.body);
    TT_OK(request("POST", "/v1/models", NULL, "{}", &r));
    TT_EQ(r.status, 405);
    free(r.body);
    TT_OK(request("GET", "/v1/completions", NULL, NULL, &r));
    TT_EQ(r.status, 405);
    free(r.body);
    /* host routes: longest prefix, query, header, body */
    TT_OK(request("GET", "/kith/files?path=a%20b", "X-Test: yes\r\n", NULL, &r));
    TT_EQ(r.status, 200);
    TT_STREQ(r.body, "{\"method\":\"GET\",\"path\":\"/kith/files\",\"query\":\"path=a%20b\","
                     "\"body\":\"\",\"x\":\"yes\",\"ud\":\"get\"}");
    free(r.body);
    TT_OK(request("POST", "/kith/echo", NULL, "{\"a\":1}", &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.body, "\"body\":\"{\\\"a\\\":1}\""));
    TT_ASSERT(strstr(r.body, "\"x\":null"));
    free(r.body);
    TT_OK(request("DELETE", "/kith/echo", NULL, NULL, &r));
    TT_EQ(r.status, 405);
    free(r.body);
    TT_OK(request("GET", "/kith/later", NULL, NULL, &r)); /* answered from a timer */
    TT_EQ(r.status, 200);
    TT_STREQ(r.body, "{\"later\":true}");
    free(r.body);
    TT_OK(request("GET", "/kith/fail", NULL, NULL, &r));
    TT_EQ(r.status, 500);
    free(r.body);
    TT_OK(request("GET", "/health", NULL, NULL, &r));
    TT_EQ(r.status, 200);
    free(r.body);
    /* a deferred request whose client leaves: the handler sees it gone */
    int fd = cconnect();
    char raw[512];
    snprintf(raw, sizeof raw,
             "GET /kith/slow HTTP/1.1\r\nHost: localhost:%d\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             port, token);
    csend(fd, raw, strlen(raw));
    usleep(100000);
    close(fd);
    for (int i = 0; i < 100 && !later_gone_seen; i++)
        usleep(20000);
    TT_EQ(later_gone_seen, 1);
    TT_OK(stop_server());
}

TT_TEST(route_registration)
{
    uv_loop_t l;
    TT_OK(uv_loop_init(&l));
    char dir[] = "/tmp/kith-api-reg-XXXXXX", tok[128], err[256];
    TT_ASSERT(mkdtemp(dir));
    snprintf(tok, sizeof tok, "%s/t", dir);
    TT_OK(kith_api_token_ensure(tok, err, sizeof err));
    struct kith_api_opts o;
    kith_api_opts_init(&o);
    o.uv_loop = &l;
    o.token_file = tok;
    kith_api *a = NULL;
    TT_OK(kith_api_start(&o, &a, err, sizeof err)); /* no model: the AI endpoints answer 503 */
    TT_ASSERT(kith_api_port(a) > 0);
    TT_ASSERT(kith_api_model(a) == NULL);
    TT_EQ(kith_api_route(a, "GET", "/v1/mine", h_fail, NULL), KITH_EINVAL);
    TT_EQ(kith_api_route(a, "get", "/kith/", h_fail, NULL), KITH_EINVAL);
    TT_EQ(kith_api_route(a, "GET", "kith/", h_fail, NULL), KITH_EINVAL);
    TT_EQ(kith_api_route(a, "GET", "/health", h_fail, NULL), KITH_EINVAL);
    TT_OK(kith_api_route(a, "GET", "/kith/status", h_fail, NULL));
    /* a second server on the same port is refused, with a message */
    struct kith_api_opts o2 = o;
    o2.port = kith_api_port(a);
    kith_api *b = (kith_api *)&b;
    TT_EQ(kith_api_start(&o2, &b, err, sizeof err), KITH_EIO);
    TT_ASSERT(b == NULL && strstr(err, "cannot listen"));
    /* a token others may read is refused */
    chmod(tok, 0644);
    TT_EQ(kith_api_start(&o, &b, err, sizeof err), KITH_EPERM);
    kith_api_close(a);
    uv_run(&l, UV_RUN_DEFAULT);
    TT_OK(uv_loop_close(&l));
    unlink(tok);
    rmdir(dir);
}

TT_TEST(checks)
{
    char raw[4096];
    struct resp r;
    TT_OK(start_server(0, 1, 4));
    snprintf(raw, sizeof raw, "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
    TT_EQ(status_of(raw), 401);
    snprintf(raw, sizeof raw,
             "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Authorization: Bearer nope-nope-nope-nope\r\n\r\n",
             port);
    TT_EQ(status_of(raw), 401);
    snprintf(raw, sizeof raw,
             "GET /v1/models HTTP/1.1\r\nHost: attacker.example:%d\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             port, token);
    TT_EQ(status_of(raw), 421);
    snprintf(raw, sizeof raw,
             "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Origin: http://attacker.example\r\nAuthorization: Bearer %s\r\n\r\n",
             port, token);
    TT_EQ(status_of(raw), 403);
    snprintf(raw, sizeof raw,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 2000000\r\n\r\n",
             port, token);
    TT_EQ(status_of(raw), 413);
    TT_EQ(status_of("BREW /pot HTTP/1.1\nHost: x\n\n"), 400);
    TT_EQ(status_of("\x16\x03\x01\x02\x00"), 400);
    TT_OK(request("POST", "/v1/completions", NULL, "{\"prompt\": ", &r));
    TT_EQ(r.status, 400);
    TT_ASSERT(strstr(r.body, "\"type\":\"invalid_request_error\""));
    free(r.body);
    static const char *const bad[] = {
        "[1,2]",
        "{\"prompt\":\"a\",\"temperature\":\"hot\"}",
        "{\"prompt\":\"a\",\"temperature\":3}",
        "{\"prompt\":\"a\",\"max_tokens\":0}",
        "{\"prompt\":\"a\",\"n\":2}",
        "{\"prompt\":\"a\",\"stop\":[1]}",
        "{\"prompt\":\"a\",\"stream\":\"yes\"}",
        "{\"prompt\":7}",
        "{\"prompt\":\"a\\u0000b\"}",
        "{\"prompt\":\"a\",\"model\":3}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TT_OK(request("POST", "/v1/completions", NULL, bad[i], &r));
        if (r.status != 400)
            TT_FAIL_("%s: %d", bad[i], r.status);
        free(r.body);
    }
    static const char *const bad_chat[] = {
        "{\"messages\":[]}",
        "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
    };
    for (size_t i = 0; i < sizeof bad_chat / sizeof bad_chat[0]; i++) {
        TT_OK(request("POST", "/v1/chat/completions", NULL, bad_chat[i], &r));
        if (r.status != 400)
            TT_FAIL_("%s: %d", bad_chat[i], r.status);
        free(r.body);
    }
    TT_OK(request("POST", "/v1/embeddings", NULL, "{\"input\":[]}", &r));
    TT_EQ(r.status, 400);
    free(r.body);
    TT_OK(request("POST", "/v1/embeddings", NULL, "{\"input\":\"a\",\"dimensions\":3}", &r));
    TT_EQ(r.status, 400);
    free(r.body);
    /* still serving */
    TT_OK(request("GET", "/v1/models", NULL, NULL, &r));
    TT_EQ(r.status, 200);
    free(r.body);
    TT_OK(stop_server());
}

TT_TEST(keep_alive_pipelining_continue)
{
    char raw[4096];
    struct resp r;
    TT_OK(start_server(0, 1, 4));
    int fd = cconnect();
    TT_ASSERT(fd >= 0);
    /* two requests in one write, then a 404 and another on the same connection */
    int n =
        snprintf(raw, sizeof raw,
                 "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n"
                 "POST /kith/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                 "Content-Length: 3\r\n\r\nabc",
                 port, token, port, token);
    csend(fd, raw, (size_t)n);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.head, "Connection: keep-alive"));
    free(r.body);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.body, "\"body\":\"abc\""));
    free(r.body);
    n = snprintf(raw, sizeof raw,
                 "GET /missing HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Authorization: Bearer %s\r\n\r\n",
                 port, token);
    csend(fd, raw, (size_t)n);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 404);
    free(r.body);
    /* Expect: 100-continue gets the interim answer before the body is sent */
    n = snprintf(raw, sizeof raw,
                 "POST /kith/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Authorization: Bearer %s\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
                 port, token);
    csend(fd, raw, (size_t)n);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 100);
    free(r.body);
    csend(fd, "hi", 2);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.body, "\"body\":\"hi\""));
    free(r.body);
    /* a malformed request ends the connection after its 400 */
    csend(fd, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 29);
    TT_OK(read_resp(fd, &r));
    TT_EQ(r.status, 400);
    TT_ASSERT(strstr(r.head, "Connection: close"));
    free(r.body);
    char c;
    TT_EQ(recv(fd, &c, 1, 0), 0);
    close(fd);
    TT_OK(stop_server());
}

TT_TEST(openai_endpoints)
{
    struct resp r;
    TT_OK(start_server(0, 1, 4));
    /* greedy: the golden continuation of tests/integration/ai_run.sh */
    TT_OK(request("POST", "/v1/completions", NULL,
                  "{\"model\":\"x\",\"prompt\":\"Once upon a time\",\"max_tokens\":60,"
                  "\"temperature\":0}",
                  &r));
    TT_EQ(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    TT_ASSERT(j);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    TT_STREQ(
        json_string_value(json_object_get(c0, "text")),
        ", there was a little girl named Lily. She loved to play outside in the park. One "
        "day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily");
    TT_STREQ(json_string_value(json_object_get(c0, "finish_reason")), "length");
    TT_STREQ(json_string_value(json_object_get(j, "object")), "text_completion");
    TT_EQ(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")),
          60);
    json_decref(j);
    free(r.body);
    /* stop strings end the text before them */
    TT_OK(request("POST", "/v1/completions", NULL,
                  "{\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0,"
                  "\"stop\":[\"Lily\"]}",
                  &r));
    TT_ASSERT(strstr(r.body, "\"text\":\", there was a little girl named \""));
    TT_ASSERT(strstr(r.body, "\"finish_reason\":\"stop\""));
    free(r.body);
    TT_OK(request("POST", "/v1/chat/completions", NULL,
                  "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                  "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],"
                  "\"max_tokens\":8,\"seed\":3}",
                  &r));
    TT_EQ(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    TT_ASSERT(j);
    c0 = json_array_get(json_object_get(j, "choices"), 0);
    TT_STREQ(json_string_value(json_object_get(j, "object")), "chat.completion");
    TT_STREQ(json_string_value(json_object_get(json_object_get(c0, "message"), "role")),
             "assistant");
    TT_ASSERT(json_is_string(json_object_get(json_object_get(c0, "message"), "content")));
    json_decref(j);
    free(r.body);
    /* streaming: role chunk, content chunks, finish chunk, usage, [DONE] */
    TT_OK(request("POST", "/v1/chat/completions", NULL,
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":8,"
                  "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
                  &r));
    TT_EQ(r.status, 200);
    TT_ASSERT(strstr(r.head, "text/event-stream"));
    TT_ASSERT(!strncmp(r.body, "data: {", 7));
    TT_ASSERT(strstr(r.body, "\"delta\":{\"role\":\"assistant\""));
    TT_ASSERT(strstr(r.body, "\"finish_reason\":\"length\""));
    TT_ASSERT(strstr(r.body, "\"completion_tokens\":8"));
    size_t bl = strlen(r.body);
    TT_ASSERT(bl > 14 && !strcmp(r.body + bl - 14, "data: [DONE]\n\n"));
    free(r.body);
    /* streamed greedy text is the same text */
    TT_OK(request("POST", "/v1/completions", NULL,
                  "{\"prompt\":\"Once upon a time\",\"max_tokens\":20,\"temperature\":0,"
                  "\"stream\":true}",
                  &r));
    TT_EQ(r.status, 200);
    {
        char text[1024] = "";
        for (char *p = r.body; (p = strstr(p, "data: {")) != NULL; p++) {
            char *e = strstr(p, "\n\n");
            TT_ASSERT(e);
            *e = 0;
            json_t *ev = json_loads(p + 6, 0, NULL);
            TT_ASSERT(ev);
            const char *t = json_string_value(
                json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "text"));
            strncat(text, t ? t : "", sizeof text - strlen(text) - 1);
            json_decref(ev);
            p = e;
        }
        /* 20 tokens of the 512-token vocabulary, as the whole answer gives them */
        TT_STREQ(text, ", there was a little girl named Lily. She loved to play outsid");
    }
    free(r.body);
    TT_OK(request("POST", "/v1/embeddings", NULL, "{\"input\":[\"hello\",\"world\"]}", &r));
    TT_EQ(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    TT_ASSERT(j);
    struct kith_model_info in = {.size = sizeof in};
    kith_model_info(kith_api_model(api), &in);
    json_t *d = json_object_get(j, "data");
    TT_EQ(json_array_size(d), 2);
    TT_EQ(json_array_size(json_object_get(json_array_get(d, 1), "embedding")), in.n_embd);
    TT_EQ(json_integer_value(json_object_get(json_array_get(d, 1), "index")), 1);
    TT_ASSERT(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) >=
              2);
    json_decref(j);
    free(r.body);
    TT_OK(request("POST", "/v1/embeddings", NULL,
                  "{\"input\":\"hello\",\"encoding_format\":\"base64\"}", &r));
    TT_EQ(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    const char *b64 = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding"));
    TT_ASSERT(b64);
    TT_EQ(strlen(b64), (size_t)(in.n_embd * 4 + 2) / 3 * 4);
    json_decref(j);
    free(r.body);
    TT_OK(stop_server());
}

static int cancelled(void)
{
    pthread_mutex_lock(&api->mu);
    int n = api->n_cancelled;
    pthread_mutex_unlock(&api->mu);
    return n;
}

/* Starts a long generation on a new connection; returns the socket once
 * the server answered with the head (the generation then runs), or -1. */
static int long_stream(struct resp *r)
{
    char raw[1024];
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":4000,\"temperature\":0.8,"
                       "\"seed\":1,\"stream\":true}";
    int fd = cconnect();
    snprintf(raw, sizeof raw,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             port, token, strlen(body), body);
    csend(fd, raw, strlen(raw));
    char line[512];
    memset(r, 0, sizeof *r);
    if (read_line(fd, line, sizeof line) <= 0 || sscanf(line, "HTTP/1.1 %d", &r->status) != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

TT_TEST(queue_cancel_and_close)
{
    struct resp r;
    char raw[1024];
    /* one worker, one waiting place; a long context so a generation lasts */
    TT_OK(start_server(4096, 1, 1));
    int a = long_stream(&r);
    TT_ASSERT(a >= 0);
    TT_EQ(r.status, 200);
    /* the loop answers while the worker generates */
    double t0 = now_s();
    TT_OK(request("GET", "/v1/models", NULL, NULL, &r));
    TT_EQ(r.status, 200);
    free(r.body);
    TT_ASSERT(now_s() - t0 < 1.0);
    /* one may wait; the next is refused at once */
    int b = cconnect();
    const char *body = "{\"prompt\":\"Once\",\"max_tokens\":10}";
    snprintf(raw, sizeof raw,
             "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             port, token, strlen(body), body);
    csend(b, raw, strlen(raw));
    usleep(100000);
    TT_OK(request("POST", "/v1/completions", NULL, body, &r));
    TT_EQ(r.status, 503);
    TT_ASSERT(strstr(r.head, "Retry-After:"));
    free(r.body);
    /* the waiting client leaves: its place frees without running */
    close(b);
    usleep(100000);
    TT_EQ(cancelled(), 0);
    /* the generating client leaves: its generation stops early */
    close(a);
    for (int i = 0; i < 250 && cancelled() == 0; i++)
        usleep(20000);
    TT_EQ(cancelled(), 1);
    TT_OK(request("POST", "/v1/completions", NULL, body, &r));
    TT_EQ(r.status, 200);
    free(r.body);
    /* closing the server while a generation runs cancels it and returns */
    a = long_stream(&r);
    TT_ASSERT(a >= 0);
    t0 = now_s();
    TT_OK(stop_server());
    TT_ASSERT(now_s() - t0 < 2.0);
    close(a);
}

TT_MAIN(TT_CASE(routes), TT_CASE(route_registration), TT_CASE(checks),
        TT_CASE(keep_alive_pipelining_continue), TT_CASE(openai_endpoints),
        TT_CASE(queue_cancel_and_close))
