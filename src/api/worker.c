/*
 * worker.c: inference off the loop thread. Each worker thread owns one
 * kith_ctx (made at its first job, kept for the next: the KV cache and
 * buffers are allocated once) and takes jobs from one FIFO, so requests are
 * served in the order they came. The queue is bounded: a request that would
 * wait behind max_queue others is refused at once (503) rather than held
 * for minutes. Workers pass news back to the loop through a list and a
 * uv_async (libuv coalesces sends, so the loop drains every job it finds);
 * the loop never waits on a worker except in kith_api_close, after
 * cancelling what runs.
 * Locking: api->mu guards the queue, the notify list and each job's
 * started/done/notified/pending/running_ctx. A job's input is fixed before
 * it is queued; its results belong to the worker until it is done.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "util/util_int.h"

/* Puts @j on the loop's news list (under a->mu). */
static void notify_locked(struct kith_api *a, struct api_job *j)
{
    if (j->notified)
        return;
    j->notified = 1;
    j->notify_next = a->notify;
    a->notify = j;
}

static int on_token(void *ud, const char *piece, size_t len)
{
    struct api_job *j = ud;
    struct kith_api *a = j->api;
    if (atomic_load(&j->cancel))
        return 1;
    if (!j->stream)
        return 0;
    pthread_mutex_lock(&a->mu);
    int rc = api_buf_add(&j->pending, piece, len);
    notify_locked(a, j);
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->async);
    return rc ? 1 : 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_encode(struct api_buf *b, const unsigned char *p, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = b64[v >> 18];
        q[1] = b64[(v >> 12) & 63];
        q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        if (api_buf_add(b, q, 4))
            return KITH_ENOMEM;
    }
    return 0;
}

/* The body of an embeddings answer, built here so that a large one does not
 * hold up the loop. */
static int embed_body(struct api_job *j)
{
    struct kith_api *a = j->api;
    int rc = KITH_ENOMEM;
    struct api_buf b = {0};
    json_t *root = json_object(), *data = json_array();
    if (!root || !data)
        goto out;
    for (size_t i = 0; i < j->n_inputs; i++) {
        const float *v = j->embd + i * (size_t)a->n_embd;
        json_t *e;
        if (j->base64) {
            struct api_buf s = {0};
            unsigned char *raw = kith_malloc((size_t)a->n_embd * 4);
            if (!raw)
                goto out;
            for (int k = 0; k < a->n_embd; k++) { /* little-endian float32, as OpenAI */
                uint32_t u;
                memcpy(&u, &v[k], 4);
                for (int byte = 0; byte < 4; byte++)
                    raw[4 * k + byte] = (unsigned char)(u >> (8 * byte));
            }
            int brc = b64_encode(&s, raw, (size_t)a->n_embd * 4);
            kith_free(raw);
            e = brc ? NULL : json_stringn(s.p ? s.p : "", s.len);
            api_buf_release(&s);
        } else {
            e = json_array();
            for (int k = 0; e && k < a->n_embd; k++)
                if (json_array_append_new(e, json_real(isfinite(v[k]) ? (double)v[k] : 0.0))) {
                    json_decref(e);
                    e = NULL;
                }
        }
        if (!e || json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                        "index", (json_int_t)i, "embedding", e)))
            goto out;
    }
    if (json_object_set_new(root, "object", json_string("list")) ||
        json_object_set(root, "data", data) ||
        json_object_set_new(root, "model", json_string(a->model_id)) ||
        json_object_set_new(
            root, "usage",
            json_pack("{s:i, s:i}", "prompt_tokens", j->n_tokens, "total_tokens", j->n_tokens)))
        goto out;
    if ((rc = api_buf_json(&b, root)))
        goto out;
    j->text = b.p;
    b.p = NULL;
out:
    api_buf_release(&b);
    json_decref(data);
    json_decref(root);
    return rc;
}

static void run_job(struct kith_api *a, struct api_job *j, kith_ctx *ctx)
{
    if (atomic_load(&j->cancel)) {
        j->rc = KITH_ECANCELED;
        return;
    }
    if (!ctx) {
        j->rc = KITH_ENOMEM;
        snprintf(j->errmsg, sizeof j->errmsg, "cannot make an inference context");
        return;
    }
    if (j->kind != API_JOB_EMBED) {
        struct kith_gen_params gp = j->gp;
        gp.on_token = on_token;
        gp.ud = j;
        j->st.size = sizeof j->st;
        j->rc = kith_generate(ctx, j->prompt, &gp, &j->text, &j->st);
        if (j->rc == 0 && atomic_load(&j->cancel))
            j->rc = KITH_ECANCELED;
        return;
    }
    j->rc = 0;
    for (size_t i = 0; i < j->n_inputs && j->rc == 0; i++) {
        if (atomic_load(&j->cancel)) {
            j->rc = KITH_ECANCELED;
            break;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (kith_tokenize(a->vocab, j->inputs[i], strlen(j->inputs[i]), 1, &ids, &n) == 0)
            j->n_tokens += (int)n;
        kith_free(ids);
        j->rc = kith_embed(ctx, j->inputs[i], j->embd + i * (size_t)a->n_embd, (size_t)a->n_embd);
        if (j->rc == KITH_ERANGE)
            snprintf(j->errmsg, sizeof j->errmsg,
                     "input %zu is longer than the context (%d tokens)", i, a->n_ctx);
        else if (j->rc == KITH_EINVAL)
            snprintf(j->errmsg, sizeof j->errmsg, "input %zu has no tokens", i);
    }
    if (j->rc == 0)
        j->rc = embed_body(j);
}

static void *worker_main(void *arg)
{
    struct kith_api *a = arg;
    kith_ctx *ctx = NULL;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stop && !a->qhead)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->stop)
            break;
        struct api_job *j = a->qhead;
        a->qhead = j->next;
        if (!a->qhead)
            a->qtail = NULL;
        j->next = NULL;
        a->n_waiting--;
        a->n_running++;
        j->started = 1;
        if (!ctx) { /* made at the first job; tried again after a failure */
            pthread_mutex_unlock(&a->mu);
            struct kith_ctx_params cp;
            kith_ctx_params_init(&cp);
            cp.n_ctx = a->n_ctx;
            cp.n_threads = a->n_threads;
            if (kith_ctx_new(a->model, &cp, &ctx))
                ctx = NULL;
            pthread_mutex_lock(&a->mu);
        }
        j->running_ctx = ctx;
        pthread_mutex_unlock(&a->mu);

        run_job(a, j, ctx);

        pthread_mutex_lock(&a->mu);
        j->running_ctx = NULL;
        j->done = 1;
        a->n_running--;
        if (j->rc == KITH_ECANCELED)
            a->n_cancelled++;
        notify_locked(a, j);
        pthread_mutex_unlock(&a->mu);
        uv_async_send(&a->async);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    kith_ctx_free(ctx);
    return NULL;
}

int api_workers_start(struct kith_api *a, int n)
{
    a->threads = kith_calloc((size_t)n, sizeof *a->threads);
    if (!a->threads)
        return KITH_ENOMEM;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&a->threads[i], NULL, worker_main, a)) {
            api_workers_stop(a);
            return KITH_EIO;
        }
        a->n_threads_started++;
    }
    a->n_workers = n;
    return 0;
}

void api_workers_stop(struct kith_api *a)
{
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; i < a->n_threads_started; i++)
        pthread_join(a->threads[i], NULL);
    a->n_threads_started = 0;
    kith_free(a->threads);
    a->threads = NULL;
    /* jobs never started: their requests were cancelled with their
     * connections, so nothing waits for them */
    for (struct api_job *j = a->qhead, *next; j; j = next) {
        next = j->next;
        if (j->req)
            j->req->job = NULL;
        api_job_free(j);
    }
    a->qhead = a->qtail = NULL;
    a->n_waiting = 0;
}

int api_job_submit(struct kith_api *a, struct api_job *j)
{
    pthread_mutex_lock(&a->mu);
    /* a free worker takes it at once; otherwise it waits, if there is room */
    int idle = a->n_workers - a->n_running - a->n_waiting;
    if (idle <= 0 && a->n_waiting >= a->max_queue) {
        pthread_mutex_unlock(&a->mu);
        return KITH_EBUSY;
    }
    j->api = a;
    if (a->qtail)
        a->qtail->next = j;
    else
        a->qhead = j;
    a->qtail = j;
    a->n_waiting++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void api_job_cancel(struct api_job *j)
{
    struct kith_api *a = j->api;
    j->req = NULL;
    atomic_store(&j->cancel, 1);
    pthread_mutex_lock(&a->mu);
    if (!j->started) {
        struct api_job **p = &a->qhead, *prev = NULL;
        while (*p && *p != j) {
            prev = *p;
            p = &(*p)->next;
        }
        if (*p) {
            *p = j->next;
            if (a->qtail == j)
                a->qtail = prev;
            a->n_waiting--;
        }
        pthread_mutex_unlock(&a->mu);
        api_job_free(j);
        return;
    }
    if (j->running_ctx)
        kith_ctx_cancel(j->running_ctx);
    pthread_mutex_unlock(&a->mu);
    /* a started job is freed when the loop learns it is done */
}

void api_job_free(struct api_job *j)
{
    if (!j)
        return;
    if (j->host_done) { /* never ran to its end: the host still learns of it */
        kith_api_gen_done_fn done = j->host_done;
        j->host_done = NULL;
        done(j->host_ud, NULL, KITH_ECANCELED, NULL, 0);
    }
    kith_free(j->prompt);
    for (size_t i = 0; i < j->n_inputs; i++)
        kith_free(j->inputs[i]);
    kith_free(j->inputs);
    for (size_t i = 0; i < API_MAX_STOP; i++)
        kith_free(j->stops[i]);
    api_buf_release(&j->pending);
    kith_free(j->text);
    kith_free(j->embd);
    kith_free(j);
}

void api_jobs_drain(struct kith_api *a)
{
    pthread_mutex_lock(&a->mu);
    struct api_job *list = a->notify;
    a->notify = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        struct api_job *j = list;
        list = j->notify_next;
        pthread_mutex_lock(&a->mu);
        j->notified = 0;
        j->notify_next = NULL;
        struct api_buf text = j->pending;
        j->pending = (struct api_buf){0};
        int done = j->done;
        pthread_mutex_unlock(&a->mu);
        /* consumes @j when done */
        if (j->kind == API_JOB_HOST)
            api_host_progress(j, done);
        else
            api_openai_progress(j, text.p, text.len, done);
        api_buf_release(&text);
    }
}
