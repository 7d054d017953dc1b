/*
 * kith local HTTP API: an HTTP/1.1 server on 127.0.0.1 that serves the
 * on-device model through OpenAI-compatible endpoints (/v1/models,
 * /v1/completions, /v1/chat/completions with Server-Sent Events,
 * /v1/embeddings), protected by a bearer token and Host/Origin checks, and
 * lets its host (the kith daemon, `kith serve`) add routes of its own.
 * docs/API.md describes the endpoints; this header is the C contract.
 *
 * It runs on the host's libuv loop: all I/O happens on the loop's thread and
 * never blocks it; inference runs on worker threads owned by the server.
 * Thread rule: every kith_api_* call except kith_api_token_ensure is made on
 * the loop's thread.
 */
#ifndef KITH_API_H
#define KITH_API_H

#include <stddef.h>

#include "kith/ai.h"
#include "kith/err.h"

typedef struct kith_api kith_api;
typedef struct kith_api_req kith_api_req;

struct kith_api_opts {
    size_t size;            /* sizeof(struct kith_api_opts) */
    void *uv_loop;          /* the host's uv_loop_t * (required) */
    int port;               /* TCP port on 127.0.0.1; 0 picks a free one */
    const char *token_file; /* bearer token file, mode 0600 (required; see kith_api_token_ensure) */
    const char *model_path; /* GGUF to serve; NULL: the AI endpoints answer 503 */
    const char *model_id;   /* name in /v1/models; NULL: the file name without ".gguf" */
    int n_ctx;              /* context per generation; 0: the model's, at most 4096 */
    int n_threads;          /* kernel threads per generation; 0: the engine's default */
    int max_generations;    /* generations at once (worker threads); 0: 1 */
    int max_queue;          /* requests waiting for a worker; more get 503; 0: 16 */
    size_t max_body;        /* request body bytes; more gets 413; 0: 1 MiB */
    size_t max_header;      /* request line and headers; more gets 431; 0: 16 KiB */
    int max_headers;        /* header fields; more gets 431; 0: 64 (at most 128) */
    int max_connections;    /* open connections; more are closed at once; 0: 128 */
};
/* Defaults (all zero but size). */
KITH_API void kith_api_opts_init(struct kith_api_opts *o);

/* Loads the model (if any), reads the token, starts the workers and listens
 * on 127.0.0.1:@o->port. On failure *out is NULL, nothing needs freeing, and
 * @err (if non-NULL, @errlen bytes) says what failed: KITH_EINVAL (options),
 * KITH_EPERM (token file readable by others), KITH_EIO (cannot listen, or
 * cannot read the token), or the model loader's errors. The caller closes
 * *out with kith_api_close(). */
KITH_API KITH_NODISCARD int kith_api_start(const struct kith_api_opts *o, kith_api **out, char *err,
                                           size_t errlen);
/* The port it listens on (the real one when 0 was asked for). */
KITH_API int kith_api_port(const kith_api *a);
/* The served model and its id, or NULL without one. Borrowed; valid until
 * kith_api_close. A host may use the model for contexts of its own. */
KITH_API kith_model *kith_api_model(const kith_api *a);
KITH_API const char *kith_api_model_id(const kith_api *a);
/* The served model's vocabulary (NULL without a model; borrowed, valid until
 * kith_api_close) and the context of each generation (0 without a model):
 * what a host needs to make a prompt that fits (kith_assist_lm). */
KITH_API const kith_vocab *kith_api_vocab(const kith_api *a);
KITH_API int kith_api_n_ctx(const kith_api *a);

/* Stops listening, closes every connection, cancels running generations and
 * joins the workers (a cancelled generation stops within one forward pass).
 * The memory goes when libuv has closed the server's handles, so the host
 * keeps running its loop until uv_run returns (or for one more
 * uv_run(UV_RUN_DEFAULT)). Deferred host requests are dropped: a handler must
 * not call kith_api_reply after this. NULL is fine. */
KITH_API void kith_api_close(kith_api *a);

/*
 * Host routes. A request whose method is @method and whose path starts with
 * @prefix ("/kith/" matches "/kith/files") goes to @fn, after the token, Host
 * and Origin checks and the size limits, with its body read whole. The
 * longest matching prefix wins; the built-in /v1/ and /health routes cannot
 * be replaced. @fn runs on the loop thread and must not block: it replies
 * with kith_api_reply before it returns, or later (then the request is
 * deferred and stays valid until that reply, even if the client goes away:
 * kith_api_req_gone says so). Returning a negative kith error without having
 * replied answers 500. Up to 64 routes; KITH_EINVAL for a bad method or a
 * prefix not starting with '/', KITH_ENOMEM.
 */
typedef int (*kith_api_handler_fn)(void *ud, kith_api_req *req);
KITH_API KITH_NODISCARD int kith_api_route(kith_api *a, const char *method, const char *prefix,
                                           kith_api_handler_fn fn, void *ud);

/* The request's method ("GET"), path without the query ("/kith/files",
 * still percent-encoded), query after '?' ("" if none), and body (*len
 * bytes, NUL-terminated, "" if none). Borrowed; valid until the reply. */
KITH_API const char *kith_api_req_method(const kith_api_req *r);
KITH_API const char *kith_api_req_path(const kith_api_req *r);
KITH_API const char *kith_api_req_query(const kith_api_req *r);
KITH_API const char *kith_api_req_body(const kith_api_req *r, size_t *len);
/* The first header named @name (case-insensitive), NUL-terminated, or NULL.
 * Borrowed; valid until the reply. */
KITH_API const char *kith_api_req_header(const kith_api_req *r, const char *name);
/* Nonzero once the client has disconnected (a deferred reply is dropped). */
KITH_API int kith_api_req_gone(const kith_api_req *r);

/*
 * A generation for a host route, run on the server's worker threads like
 * the OpenAI endpoints' (one FIFO queue, the same limits), so that the loop
 * goes on serving. @prompt is copied; @gp is used as given except that its
 * streaming callback is the server's. The request is deferred: when the
 * generation ends, @done is called once, on the loop thread, with @r, the
 * engine's status (0, KITH_ERANGE for a prompt longer than the context,
 * KITH_ENOMEM...) and the text (borrowed for the call); @done replies to
 * @r. If the client goes away first, its generation is stopped and @done
 * gets @r NULL and KITH_ECANCELED (so it can free @ud); kith_api_close does
 * the same for generations still running or queued. Returns 0 (queued;
 * @done will be called), KITH_EBUSY when the queue is full (then nothing
 * was queued and @done is not called: answer 503), KITH_EUNSUPPORTED
 * without a model, KITH_EINVAL, KITH_ENOMEM.
 */
typedef void (*kith_api_gen_done_fn)(void *ud, kith_api_req *r, int rc, const char *text,
                                     size_t len);
KITH_API KITH_NODISCARD int kith_api_generate(kith_api_req *r, const char *prompt,
                                              const struct kith_gen_params *gp,
                                              kith_api_gen_done_fn done, void *ud);

/* Answers @r with HTTP @status (200-599) and the JSON text @json (@len
 * bytes, copied), then ends @r: it must not be used after this call. Call it
 * once per request, on the loop thread. KITH_EINVAL for a bad status. */
KITH_API int kith_api_reply(kith_api_req *r, int status, const char *json, size_t len);
/* As kith_api_reply with an OpenAI-style error object
 * {"error":{"message":@message,"type":...,"param":null,"code":null}}. */
KITH_API int kith_api_reply_error(kith_api_req *r, int status, const char *message);

/*
 * Makes sure @path holds a token: if the file is missing it is created with
 * mode 0600 holding 64 random hex digits (and the folders above it are not
 * created). An existing file is left alone. Returns 0, KITH_EIO with @err
 * saying why. Safe from any thread.
 */
KITH_API KITH_NODISCARD int kith_api_token_ensure(const char *path, char *err, size_t errlen);

#endif
