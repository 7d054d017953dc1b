/*
 * openai.c: the built-in endpoints, in the shapes of OpenAI's API so that
 * tools written for it (editors, Open WebUI, the openai client libraries,
 * curl scripts) work unchanged: /v1/models, /v1/completions,
 * /v1/chat/completions (stream: true as Server-Sent Events), /v1/embeddings,
 * and /health. Requests are validated here, on the loop thread, so that a
 * bad one is refused before it waits in the queue; the generation itself
 * runs on a worker (worker.c) and comes back through api_openai_progress.
 * Unknown fields are ignored, as OpenAI-compatible servers do; a known field
 * of the wrong type or range is a 400. Sampling follows OpenAI's meaning
 * (temperature and top_p only: top_k and min_p are off unless a request
 * sets them, as llama.cpp's server allows).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "util/util_int.h"

#define MAX_EMBED_INPUTS 256

static int bad(kith_api_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(kith_api_req *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_reply_openai_error(r, 400, "invalid_request_error", NULL, msg);
    return 1;
}

/* Replies with @j serialised; 1. */
static int reply_json(kith_api_req *r, int status, json_t *j)
{
    struct api_buf b = {0};
    if (!j || api_buf_json(&b, j))
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
    else
        api_reply_raw(r, status, NULL, b.p, b.len);
    api_buf_release(&b);
    json_decref(j);
    return 1;
}

static json_t *model_object(struct kith_api *a)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", a->model_id, "object", "model", "created",
                     (json_int_t)a->created, "owned_by", "kith");
}

static int get_models(kith_api_req *r)
{
    struct kith_api *a = r->api;
    json_t *data = json_array();
    if (data && a->model)
        json_array_append_new(data, model_object(a));
    return reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* ---- parameters ------------------------------------------------------------------- */

/* A number field in [lo, hi]; 0 if absent or null, 1 if set, -1 after a 400. */
static int num_field(kith_api_req *r, json_t *o, const char *k, double lo, double hi, double *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        bad(r, "'%s' must be a number from %g to %g", k, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

static int int_field(kith_api_req *r, json_t *o, const char *k, json_int_t lo, json_int_t hi,
                     json_int_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        bad(r, "'%s' must be an integer from %lld to %lld", k, (long long)lo, (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

/* Sampling and length fields shared by both generation endpoints; 0 or 1
 * after a 400. */
static int gen_params(kith_api_req *r, json_t *o, struct api_job *j, int chat)
{
    struct kith_api *a = r->api;
    struct kith_gen_params *gp = &j->gp;
    double d;
    json_int_t n;
    int k;
    kith_gen_params_init(gp);
    /* OpenAI's defaults: completions write 16 tokens, chat until the end */
    gp->max_tokens = chat ? a->n_ctx : 16;
    gp->temperature = 1.0f;
    gp->top_p = 1.0f;
    gp->top_k = 0;
    gp->min_p = 0.0f;
    gp->repeat_penalty = 1.0f;
    if ((k = int_field(r, o, "max_tokens", 1, 1 << 30, &n)) < 0)
        return 1;
    if (k)
        gp->max_tokens = (int)(n < a->n_ctx ? n : a->n_ctx);
    if (chat && (k = int_field(r, o, "max_completion_tokens", 1, 1 << 30, &n)) != 0) {
        if (k < 0)
            return 1;
        gp->max_tokens = (int)(n < a->n_ctx ? n : a->n_ctx);
    }
    if ((k = num_field(r, o, "temperature", 0, 2, &d)) < 0)
        return 1;
    if (k)
        gp->temperature = (float)d;
    if ((k = num_field(r, o, "top_p", 0, 1, &d)) < 0)
        return 1;
    if (k)
        gp->top_p = (float)d;
    if ((k = int_field(r, o, "top_k", 0, 1 << 24, &n)) < 0)
        return 1;
    if (k)
        gp->top_k = (int)n;
    if ((k = num_field(r, o, "min_p", 0, 1, &d)) < 0)
        return 1;
    if (k)
        gp->min_p = (float)d;
    if ((k = num_field(r, o, "repeat_penalty", 0.01, 100, &d)) < 0)
        return 1;
    if (k)
        gp->repeat_penalty = (float)d;
    json_t *seed = json_object_get(o, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed))
            return bad(r, "'seed' must be an integer");
        uint64_t s = (uint64_t)json_integer_value(seed);
        /* the engine reads 0 as "from the clock"; a request's 0 is a seed */
        gp->seed = s ? s : 0x9e3779b97f4a7c15ull;
    }
    json_t *nn = json_object_get(o, "n");
    if (nn && !json_is_null(nn) && !(json_is_integer(nn) && json_integer_value(nn) == 1))
        return bad(r, "only n=1 is supported");
    json_t *lp = json_object_get(o, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp))
        return bad(r, "logprobs are not supported");
    json_t *stop = json_object_get(o, "stop");
    if (stop && json_is_string(stop)) {
        j->stops[0] = kith_strndup(json_string_value(stop), json_string_length(stop));
        if (!j->stops[0])
            return bad(r, "out of memory");
        gp->n_stop = 1;
    } else if (stop && json_is_array(stop)) {
        if (json_array_size(stop) > API_MAX_STOP)
            return bad(r, "'stop' may hold %d strings at most", API_MAX_STOP);
        for (size_t i = 0; i < json_array_size(stop); i++) {
            json_t *s = json_array_get(stop, i);
            if (!json_is_string(s))
                return bad(r, "'stop' must be a string or an array of strings");
            j->stops[i] = kith_strndup(json_string_value(s), json_string_length(s));
            if (!j->stops[i])
                return bad(r, "out of memory");
        }
        gp->n_stop = json_array_size(stop);
    } else if (stop && !json_is_null(stop)) {
        return bad(r, "'stop' must be a string or an array of strings");
    }
    gp->stop = (const char *const *)j->stops;
    json_t *st = json_object_get(o, "stream");
    if (st && !json_is_null(st) && !json_is_boolean(st))
        return bad(r, "'stream' must be true or false");
    j->stream = json_is_true(st);
    json_t *so = json_object_get(o, "stream_options");
    if (so && json_is_object(so))
        j->include_usage = json_is_true(json_object_get(so, "include_usage"));
    return 0;
}

/* The text of a message's content: a string, or an array of parts of which
 * only {"type":"text"} ones are understood. NULL after a 400. */
static char *content_text(kith_api_req *r, json_t *c, size_t i)
{
    struct api_buf b = {0};
    if (!c || json_is_null(c)) {
        api_buf_add(&b, "", 0);
    } else if (json_is_string(c)) {
        api_buf_add(&b, json_string_value(c), json_string_length(c));
    } else if (json_is_array(c)) {
        api_buf_add(&b, "", 0);
        for (size_t k = 0; k < json_array_size(c); k++) {
            json_t *part = json_array_get(c, k), *t = json_object_get(part, "text");
            const char *type = json_string_value(json_object_get(part, "type"));
            if (!type || strcmp(type, "text") || !json_is_string(t)) {
                api_buf_release(&b);
                bad(r, "messages[%zu]: only text content is supported", i);
                return NULL;
            }
            api_buf_add(&b, json_string_value(t), json_string_length(t));
        }
    } else {
        bad(r, "messages[%zu].content must be a string or an array of parts", i);
        return NULL;
    }
    if (!b.p) {
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
        return NULL;
    }
    if (strlen(b.p) != b.len) {
        api_buf_release(&b);
        bad(r, "messages[%zu].content holds a NUL character", i);
        return NULL;
    }
    return b.p;
}

/* messages -> the model's chat template; 0 or 1 after a reply. */
static int chat_prompt(kith_api_req *r, json_t *o, struct api_job *j)
{
    json_t *msgs = json_object_get(o, "messages");
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0)
        return bad(r, "'messages' must be a non-empty array");
    struct kith_chat_msg *cm = kith_calloc(n, sizeof *cm);
    char **texts = kith_calloc(n, sizeof *texts);
    int ret = 1;
    if (!cm || !texts) {
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role) {
            bad(r, "messages[%zu] needs a 'role'", i);
            goto out;
        }
        if (!strcmp(role, "developer"))
            role = "system"; /* OpenAI's newer name for it */
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
            bad(r, "messages[%zu]: role '%.40s' is not supported (system, user, assistant)", i,
                role);
            goto out;
        }
        if (!(texts[i] = content_text(r, json_object_get(m, "content"), i)))
            goto out;
        cm[i] = (struct kith_chat_msg){role, texts[i]};
    }
    int rc = kith_chat_format(r->api->model, cm, n, 1, &j->prompt);
    if (rc) {
        api_reply_openai_error(r, 500, NULL, NULL, kith_strerror(rc));
        goto out;
    }
    /* the template's turn markers must become control tokens */
    j->gp.parse_special = 1;
    ret = 0;
out:
    for (size_t i = 0; texts && i < n; i++)
        kith_free(texts[i]);
    kith_free(texts);
    kith_free(cm);
    return ret;
}

static int no_model(kith_api_req *r)
{
    api_reply_openai_error(r, 503, "server_error", "model_not_loaded", "no model is loaded");
    return 1;
}

static json_t *parse_body(kith_api_req *r)
{
    json_error_t e;
    json_t *o = json_loadb(r->body, r->body_len, 0, &e);
    if (!o) {
        bad(r, "malformed JSON: %s (line %d, column %d)", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        bad(r, "the body must be a JSON object");
        return NULL;
    }
    json_t *m = json_object_get(o, "model");
    if (m && !json_is_null(m) && !json_is_string(m)) {
        json_decref(o);
        bad(r, "'model' must be a string");
        return NULL;
    }
    return o;
}

static struct api_job *job_new(kith_api_req *r, enum api_job_kind kind)
{
    struct api_job *j = kith_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->api = r->api;
    atomic_init(&j->cancel, 0);
    j->created = (long)time(NULL);
    char hex[25];
    if (api_random_hex(hex, 12))
        snprintf(hex, sizeof hex, "%lx", (unsigned long)j->created);
    snprintf(j->id, sizeof j->id, "%.8s-%.24s",
             kind == API_JOB_CHAT    ? "chatcmpl"
             : kind == API_JOB_EMBED ? "embd"
                                     : "cmpl",
             hex);
    return j;
}

/* Queues @j for @r; 1 (replied or started). */
static int submit(kith_api_req *r, struct api_job *j)
{
    j->req = r;
    r->job = j;
    if (api_job_submit(r->api, j)) {
        r->job = NULL;
        api_job_free(j);
        api_reply_openai_error(r, 503, "server_busy", "queue_full",
                               "too many requests are waiting for the model; try again");
    }
    return 1;
}

static int post_generate(kith_api_req *r, int chat)
{
    struct kith_api *a = r->api;
    if (!a->model)
        return no_model(r);
    json_t *o = parse_body(r);
    if (!o)
        return 1;
    struct api_job *j = job_new(r, chat ? API_JOB_CHAT : API_JOB_COMPLETION);
    if (!j) {
        json_decref(o);
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
        return 1;
    }
    if (gen_params(r, o, j, chat))
        goto refused;
    if (chat) {
        if (chat_prompt(r, o, j))
            goto refused;
    } else {
        json_t *p = json_object_get(o, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0);
        if (!json_is_string(p)) {
            bad(r, "'prompt' must be a string (or an array of one string)");
            goto refused;
        }
        if (strlen(json_string_value(p)) != json_string_length(p)) {
            bad(r, "'prompt' holds a NUL character");
            goto refused;
        }
        json_t *echo = json_object_get(o, "echo");
        json_t *suffix = json_object_get(o, "suffix");
        if (json_is_true(echo) || (suffix && !json_is_null(suffix))) {
            bad(r, "'echo' and 'suffix' are not supported");
            goto refused;
        }
        if (!(j->prompt = kith_strndup(json_string_value(p), json_string_length(p)))) {
            api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
            goto refused;
        }
    }
    json_decref(o);
    return submit(r, j);
refused: /* @r was answered */
    json_decref(o);
    api_job_free(j);
    return 1;
}

static int post_embeddings(kith_api_req *r)
{
    struct kith_api *a = r->api;
    if (!a->model)
        return no_model(r);
    json_t *o = parse_body(r);
    if (!o)
        return 1;
    struct api_job *j = job_new(r, API_JOB_EMBED);
    if (!j) {
        json_decref(o);
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
        return 1;
    }
    json_t *in = json_object_get(o, "input");
    size_t n = json_is_array(in) ? json_array_size(in) : 1;
    if (!(json_is_string(in) || (json_is_array(in) && n > 0))) {
        bad(r, "'input' must be a string or a non-empty array of strings");
        goto refused;
    }
    if (n > MAX_EMBED_INPUTS) {
        bad(r, "'input' may hold %d strings at most", MAX_EMBED_INPUTS);
        goto refused;
    }
    const char *fmt = json_string_value(json_object_get(o, "encoding_format"));
    json_t *fmtv = json_object_get(o, "encoding_format");
    if (fmtv && !json_is_null(fmtv) && (!fmt || (strcmp(fmt, "float") && strcmp(fmt, "base64")))) {
        bad(r, "'encoding_format' must be \"float\" or \"base64\"");
        goto refused;
    }
    j->base64 = fmt && !strcmp(fmt, "base64");
    json_t *dims = json_object_get(o, "dimensions");
    if (dims && !json_is_null(dims) &&
        !(json_is_integer(dims) && json_integer_value(dims) == a->n_embd)) {
        bad(r, "this model's embeddings have %d dimensions", a->n_embd);
        goto refused;
    }
    j->inputs = kith_calloc(n, sizeof *j->inputs);
    j->embd = kith_calloc(n * (size_t)a->n_embd, sizeof *j->embd);
    if (!j->inputs || !j->embd) {
        api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
        goto refused;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(in) ? json_array_get(in, i) : in;
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            strlen(json_string_value(s)) != json_string_length(s)) {
            bad(r, "input %zu must be a non-empty string (token arrays are not supported)", i);
            goto refused;
        }
        if (!(j->inputs[i] = kith_strndup(json_string_value(s), json_string_length(s)))) {
            api_reply_openai_error(r, 500, NULL, NULL, "out of memory");
            goto refused;
        }
        j->n_inputs = i + 1;
    }
    json_decref(o);
    return submit(r, j);
refused:
    json_decref(o);
    api_job_free(j);
    return 1;
}

int api_openai_dispatch(kith_api_req *r)
{
    struct kith_api *a = r->api;
    const char *p = r->path, *m = r->method;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    if (!strcmp(p, "/health")) {
        if (!get)
            return api_reply_openai_error(r, 405, NULL, NULL, "use GET"), 1;
        return reply_json(
            r, 200,
            json_pack("{s:s, s:s?}", "status", "ok", "model", a->model ? a->model_id : NULL));
    }
    if (strncmp(p, "/v1/", 4))
        return 0;
    if (!strcmp(p, "/v1/models")) {
        if (!get)
            return api_reply_openai_error(r, 405, NULL, NULL, "use GET"), 1;
        return get_models(r);
    }
    if (!strncmp(p, "/v1/models/", 11)) {
        if (!get)
            return api_reply_openai_error(r, 405, NULL, NULL, "use GET"), 1;
        if (!a->model || strcmp(p + 11, a->model_id))
            return api_reply_openai_error(r, 404, "invalid_request_error", "model_not_found",
                                          "no such model"),
                   1;
        return reply_json(r, 200, model_object(a));
    }
    int which = !strcmp(p, "/v1/completions")        ? 1
                : !strcmp(p, "/v1/chat/completions") ? 2
                : !strcmp(p, "/v1/embeddings")       ? 3
                                                     : 0;
    if (!which)
        return api_reply_openai_error(r, 404, NULL, NULL, "no such endpoint"), 1;
    if (!post)
        return api_reply_openai_error(r, 405, NULL, NULL, "use POST"), 1;
    return which == 3 ? post_embeddings(r) : post_generate(r, which == 2);
}

/* ---- answers ---------------------------------------------------------------------- */

static const char *finish_reason(const struct kith_gen_stats *st)
{
    /* 0 max tokens, 1 end of sequence, 2 stop string, 4 context full */
    return st->stop_reason == 1 || st->stop_reason == 2 ? "stop" : "length";
}

static json_t *usage(const struct api_job *j)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->st.n_prompt, "completion_tokens",
                     j->st.n_gen, "total_tokens", j->st.n_prompt + j->st.n_gen);
}

/* The error a failed job answers with. */
static void job_error(struct api_job *j, int *status, const char **code, const char **msg)
{
    *code = NULL;
    *status = 500;
    *msg = j->errmsg[0] ? j->errmsg : kith_strerror(j->rc);
    if (j->rc == KITH_ERANGE) {
        *status = 400;
        *code = "context_length_exceeded";
        if (!j->errmsg[0])
            snprintf(j->errmsg, sizeof j->errmsg,
                     "the prompt is longer than the context (%d tokens)", j->api->n_ctx);
        *msg = j->errmsg;
    } else if (j->rc == KITH_EINVAL && j->kind == API_JOB_EMBED) {
        *status = 400;
    } else if (j->rc == KITH_ECANCELED) {
        *status = 503;
        *msg = "the server is shutting down";
    }
}

static json_t *chunk(const struct api_job *j, const char *text, size_t len, const char *finish)
{
    struct kith_api *a = j->api;
    json_t *choice;
    if (j->kind == API_JOB_CHAT) {
        json_t *delta = json_object();
        if (delta && !j->sent_role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (delta && (text || !j->sent_role))
            json_object_set_new(delta, "content", json_stringn(text ? text : "", len));
        choice = json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta, "logprobs",
                           "finish_reason", finish);
    } else {
        choice = json_pack("{s:s%, s:i, s:n, s:s?}", "text", text ? text : "", len, "index", 0,
                           "logprobs", "finish_reason", finish);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", j->id, "object",
                     j->kind == API_JOB_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)j->created, "model", a->model_id, "choices", choice);
}

/* Sends @o as one SSE event; 0, or nonzero once the client is gone. */
static int send_event(struct api_job *j, json_t *o)
{
    struct api_buf b = {0};
    int rc = o ? api_buf_json(&b, o) : KITH_ENOMEM;
    json_decref(o);
    if (!rc && j->req)
        rc = api_sse_send(j->req, b.p, b.len);
    api_buf_release(&b);
    return rc || !j->req;
}

static void stream_progress(struct api_job *j, const char *text, size_t len, int done)
{
    kith_api_req *r = j->req;
    if (!r->streaming) {
        if (done && j->rc && j->rc != KITH_ECANCELED && !len) {
            /* failed before a word: an ordinary error answer */
            int status;
            const char *code, *msg;
            job_error(j, &status, &code, &msg);
            r->job = NULL;
            j->req = NULL;
            api_reply_openai_error(r, status, NULL, code, msg);
            return;
        }
        if (api_sse_start(r) || !j->req)
            return;
        if (j->kind == API_JOB_CHAT) {
            if (send_event(j, chunk(j, NULL, 0, NULL)))
                return;
            j->sent_role = 1;
        }
    }
    if (len && send_event(j, chunk(j, text, len, NULL)))
        return;
    if (!done)
        return;
    if (j->rc && j->rc != KITH_ECANCELED) {
        int status;
        const char *code, *msg;
        job_error(j, &status, &code, &msg);
        if (send_event(j, json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", msg, "type",
                                    "server_error", "param", "code", code)))
            return;
    } else if (send_event(j, chunk(j, NULL, 0, finish_reason(&j->st)))) {
        return;
    }
    if (j->include_usage &&
        send_event(j,
                   json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", j->id, "object",
                             j->kind == API_JOB_CHAT ? "chat.completion.chunk" : "text_completion",
                             "created", (json_int_t)j->created, "model", j->api->model_id,
                             "choices", "usage", usage(j))))
        return;
    if (api_sse_send(r, "[DONE]", 6) || !j->req)
        return;
    r->job = NULL;
    j->req = NULL;
    api_sse_end(r);
}

static void whole_answer(struct api_job *j)
{
    kith_api_req *r = j->req;
    r->job = NULL;
    j->req = NULL;
    if (j->rc) {
        int status;
        const char *code, *msg;
        job_error(j, &status, &code, &msg);
        api_reply_openai_error(r, status, NULL, code, msg);
        return;
    }
    if (j->kind == API_JOB_EMBED) {
        api_reply_raw(r, 200, NULL, j->text, strlen(j->text));
        return;
    }
    const char *text = j->text ? j->text : "";
    json_t *choice;
    if (j->kind == API_JOB_CHAT)
        choice =
            json_pack("{s:i, s:{s:s, s:s}, s:n, s:s}", "index", 0, "message", "role", "assistant",
                      "content", text, "logprobs", "finish_reason", finish_reason(&j->st));
    else
        choice = json_pack("{s:s, s:i, s:n, s:s}", "text", text, "index", 0, "logprobs",
                           "finish_reason", finish_reason(&j->st));
    reply_json(r, 200,
               json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", j->id, "object",
                         j->kind == API_JOB_CHAT ? "chat.completion" : "text_completion", "created",
                         (json_int_t)j->created, "model", j->api->model_id, "choices", choice,
                         "usage", usage(j)));
}

void api_openai_progress(struct api_job *j, const char *text, size_t len, int done)
{
    if (j->req) {
        if (j->stream)
            stream_progress(j, text, len, done);
        else if (done)
            whole_answer(j);
    }
    if (done) {
        if (j->req) { /* an answer that could not be made (out of memory) */
            kith_api_req *r = j->req;
            r->job = NULL;
            j->req = NULL;
            if (r->streaming)
                api_sse_end(r);
            else
                api_reply_openai_error(r, 500, NULL, NULL, "cannot make the answer");
        }
        api_job_free(j);
    }
}
