/*
 * api_ws.c: the workspace endpoints of the local API (docs/API.md, "kith
 * endpoints"): files, status, ask, catch-up, suggestions and comments.
 * Everything that reads or records the workspace runs here, on the loop's
 * thread, which owns the kith_ws handle (the daemon's watcher and replica
 * use it there too, so no two callers ever interleave); these are short
 * SQLite transactions. The model's part of ask and catch-up, which takes
 * seconds, goes to the server's worker threads (kith_api_generate) with a
 * prompt made here (kith_assist_*), and the answer is sent from the
 * callback.
 * Paths in URLs and answers are relative to the workspace root; the
 * library's calls take them relative to the current folder, so they are
 * made absolute first (the library then refuses anything outside).
 */
#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/net/api_ws.h"
#include "kith/assist.h"
#include "kith/kith.h"

#define ASK_TOP     4   /* passages given to the model at most */
#define DEFAULT_GEN 128 /* tokens of an answer or summary unless max_tokens says */

struct api_ws {
    kith_api *api;
    kith_ws *ws;
    void (*changed)(void *ud);
    void *ud;
};

/* ---- replies -------------------------------------------------------------------- */

/* Replies with @j (consumed); 0. */
static int reply_json(kith_api_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return kith_api_reply_error(r, 500, "out of memory"), 0;
    kith_api_reply(r, status, s, strlen(s));
    free(s);
    return 0;
}

static int reply_err(kith_api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reply_err(kith_api_req *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kith_api_reply_error(r, status, msg);
    return 0;
}

/* The HTTP status for a workspace call's error. */
static int ws_status(int rc)
{
    switch (rc) {
    case KITH_ENOTFOUND:
        return 404;
    case KITH_EINVAL:
    case KITH_ERANGE:
    case KITH_EUTF8:
    case KITH_ETOOBIG:
        return 400;
    case KITH_ESTALE:
    case KITH_EMISSING:
    case KITH_EEXIST:
        return 409;
    case KITH_EBUSY:
        return 503;
    default:
        return 500;
    }
}

static int reply_ws_err(kith_api_req *r, struct api_ws *w, int rc)
{
    const char *m = kith_ws_errmsg(w->ws);
    return reply_err(r, ws_status(rc), "%s", m && *m ? m : kith_strerror(rc));
}

/* ---- requests ----------------------------------------------------------------- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decodes @n bytes of @s into @out (@cap bytes; '+' is a space in
 * a query). 0, or -1 for a bad escape, a NUL byte or no room. */
static int pct_decode(const char *s, size_t n, int query, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && query) {
            c = ' ';
        }
        if (!c || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

/* The value of @key in the request's query, decoded, into @out; 1 if
 * present, 0 if not, -1 if malformed. */
static int query_get(kith_api_req *r, const char *key, char *out, size_t cap)
{
    const char *q = kith_api_req_query(r);
    size_t kl = strlen(key);
    while (q && *q) {
        const char *end = strchr(q, '&');
        size_t n = end ? (size_t)(end - q) : strlen(q);
        if (n >= kl && !strncmp(q, key, kl) && (n == kl || q[kl] == '=')) {
            if (n == kl) {
                out[0] = 0;
                return 1;
            }
            return pct_decode(q + kl + 1, n - kl - 1, 1, out, cap) ? -1 : 1;
        }
        q = end ? end + 1 : NULL;
    }
    return 0;
}

/* The request's body as a JSON object; NULL after replying 400. An empty
 * body is an empty object when @empty_ok. */
static json_t *body_object(kith_api_req *r, int empty_ok)
{
    size_t len = 0;
    const char *b = kith_api_req_body(r, &len);
    json_error_t e;
    if (!len && empty_ok)
        return json_object();
    json_t *j = json_loadb(b, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        reply_err(r, 400, "malformed JSON: %s (line %d, column %d)", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reply_err(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Generation fields of a request (max_tokens, temperature, seed) into
 * @gp; 0, or -1 after replying 400. */
static int gen_fields(kith_api_req *r, json_t *o, struct kith_gen_params *gp)
{
    json_t *v;
    kith_gen_params_init(gp);
    gp->max_tokens = DEFAULT_GEN;
    if ((v = json_object_get(o, "max_tokens")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4096)
            return reply_err(r, 400, "max_tokens must be an integer from 0 to 4096"), -1;
        gp->max_tokens = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
            return reply_err(r, 400, "temperature must be a number from 0 to 2"), -1;
        gp->temperature = (float)json_number_value(v);
    }
    if ((v = json_object_get(o, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return reply_err(r, 400, "seed must be a non-negative integer"), -1;
        gp->seed = (uint64_t)json_integer_value(v);
    }
    return 0;
}

/* The absolute path of the workspace-relative @rel into @out. */
static int abs_path(struct api_ws *w, const char *rel, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", kith_ws_root(w->ws), rel);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The model's part: what makes a prompt fit, and the generation's limit. */
static int lm_of(struct api_ws *w, const struct kith_gen_params *gp, kith_assist_lm *lm)
{
    kith_model *m = kith_api_model(w->api);
    if (!m)
        return -1;
    int n_ctx = kith_api_n_ctx(w->api);
    *lm = (kith_assist_lm){m, kith_api_vocab(w->api), n_ctx,
                           gp->max_tokens < n_ctx / 2 ? gp->max_tokens : n_ctx / 2};
    return 0;
}

/* ---- GET /kith/status ------------------------------------------------------------- */

static int count_entry(const kith_ws_entry *e, void *ctx)
{
    ++*(size_t *)ctx;
    return 0;
}

static int count_change(const kith_ws_change *c, void *ctx)
{
    ++*(size_t *)ctx;
    return 0;
}

struct note_count {
    size_t suggestions, comments, stale;
};

static int count_note(const kith_ws_note *n, void *ctx)
{
    struct note_count *c = ctx;
    if (n->type == KITH_WS_SUGGESTION)
        c->suggestions++;
    else
        c->comments++;
    c->stale += n->status == KITH_WS_NOTE_STALE;
    return 0;
}

static int get_status(void *ud, kith_api_req *r)
{
    struct api_ws *w = ud;
    if (strcmp(kith_api_req_path(r), "/kith/status"))
        return reply_err(r, 404, "no such endpoint");
    size_t files = 0, changes = 0;
    struct note_count nc = {0};
    int rc;
    if ((rc = kith_ws_ls(w->ws, count_entry, &files)) ||
        (rc = kith_ws_log(w->ws, NULL, 0, count_change, &changes)) ||
        (rc = kith_ws_notes(w->ws, NULL, false, count_note, &nc)))
        return reply_ws_err(r, w, rc);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/.kith/sync-state.json", kith_ws_root(w->ws));
    json_t *sync = json_load_file(path, 0, NULL); /* NULL: this device never synced */
    const char *model = kith_api_model_id(w->api);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}}",
                          "workspace", kith_ws_id(w->ws), "root", kith_ws_root(w->ws), "user",
                          kith_ws_user(w->ws), "device", kith_ws_device(w->ws), "model",
                          model ? json_string(model) : json_null(), "sync",
                          sync ? sync : json_null(), "counts", "files", (json_int_t)files,
                          "changes", (json_int_t)changes, "suggestions", (json_int_t)nc.suggestions,
                          "comments", (json_int_t)nc.comments, "stale", (json_int_t)nc.stale);
    return reply_json(r, 200, j);
}

/* ---- GET /kith/files, /kith/files/<path> ---------------------------------------------- */

static int list_entry(const kith_ws_entry *e, void *ctx)
{
    json_t *o = json_pack("{s:s, s:b, s:I, s:s, s:s, s:I}", "path", e->path, "binary", e->binary,
                          "size", (json_int_t)e->size, "change", e->change ? e->change : "",
                          "author", e->author ? e->author : "", "time_ms", (json_int_t)e->time_ms);
    return o ? json_array_append_new(ctx, o) : -1;
}

static int get_file(struct api_ws *w, kith_api_req *r, const char *enc)
{
    char rel[PATH_MAX], abs[PATH_MAX * 2], at[256], id[KITH_WS_ID_HEX + 1] = "";
    if (pct_decode(enc, strlen(enc), 0, rel, sizeof rel) || !*rel)
        return reply_err(r, 400, "bad path in the URL");
    int has_at = query_get(r, "at", at, sizeof at);
    if (has_at < 0)
        return reply_err(r, 400, "bad 'at' in the query");
    if (abs_path(w, rel, abs, sizeof abs))
        return reply_err(r, 400, "path too long");
    int rc;
    if (has_at && (rc = kith_ws_resolve(w->ws, at, id)))
        return reply_ws_err(r, w, rc);
    char *text = NULL;
    size_t len = 0;
    if ((rc = kith_ws_cat(w->ws, abs, has_at ? id : NULL, &text, &len)))
        return reply_ws_err(r, w, rc);
    /* the recorded text is UTF-8; a binary file's bytes may not be, and a
     * JSON string cannot carry them */
    json_t *t = json_stringn(text, len);
    json_t *j = json_pack("{s:s, s:o, s:b, s:I, s:o}", "path", rel, "at",
                          has_at ? json_string(id) : json_null(), "binary", t == NULL, "size",
                          (json_int_t)len, "text", t ? t : json_null());
    kith_free(text);
    return reply_json(r, 200, j);
}

static int get_files(void *ud, kith_api_req *r)
{
    struct api_ws *w = ud;
    const char *p = kith_api_req_path(r);
    if (!strncmp(p, "/kith/files/", 12) && p[12])
        return get_file(w, r, p + 12);
    if (strcmp(p, "/kith/files") && strcmp(p, "/kith/files/"))
        return reply_err(r, 404, "no such endpoint");
    json_t *files = json_array();
    int rc = files ? kith_ws_ls(w->ws, list_entry, files) : KITH_ENOMEM;
    if (rc) {
        json_decref(files);
        return reply_ws_err(r, w, rc);
    }
    return reply_json(r, 200, json_pack("{s:o}", "files", files));
}

/* ---- POST /kith/ask ----------------------------------------------------------------- */

struct gen_job {
    json_t *answer; /* the reply, less the generated field */
    const char *field;
};

static void gen_done(void *ud, kith_api_req *r, int rc, const char *text, size_t len)
{
    struct gen_job *g = ud;
    if (r) {
        if (rc)
            reply_err(r, rc == KITH_ERANGE ? 400 : 500, "generation failed: %s", kith_strerror(rc));
        else {
            json_t *t = json_stringn(text, len);
            json_object_set_new(g->answer, g->field, t ? t : json_string(""));
            reply_json(r, 200, g->answer);
            g->answer = NULL;
        }
    }
    json_decref(g->answer);
    free(g);
}

/* Answers with @answer (consumed) at once, or after generating @prompt
 * into its field @field (a worker thread does it). */
static int finish_gen(struct api_ws *w, kith_api_req *r, json_t *answer, const char *field,
                      const kith_assist_lm *lm, struct kith_gen_params *gp, const char *prompt)
{
    struct gen_job *g = calloc(1, sizeof *g);
    if (!g || !answer) {
        free(g);
        json_decref(answer);
        return reply_err(r, 500, "out of memory");
    }
    g->answer = answer;
    g->field = field;
    gp->max_tokens = lm->max_tokens;
    gp->parse_special = kith_assist_chat(lm);
    int rc = kith_api_generate(r, prompt, gp, gen_done, g);
    if (rc) {
        json_decref(answer);
        free(g);
        if (rc == KITH_EBUSY)
            return reply_err(r, 503, "too many requests are waiting for the model; try again");
        return reply_err(r, 500, "cannot start the generation: %s", kith_strerror(rc));
    }
    return 0;
}

static int post_ask(void *ud, kith_api_req *r)
{
    struct api_ws *w = ud;
    if (strcmp(kith_api_req_path(r), "/kith/ask"))
        return reply_err(r, 404, "no such endpoint");
    json_t *o = body_object(r, 0);
    if (!o)
        return 0;
    kith_assist_source *src = NULL;
    size_t n = 0, used = 0;
    char err[512], *prompt = NULL;
    struct kith_gen_params gp;
    kith_assist_lm lm;
    int ret = 0;
    const char *q = json_string_value(json_object_get(o, "question"));
    if (!q) {
        ret = reply_err(r, 400, "'question' (a string) is required");
        goto out;
    }
    if (gen_fields(r, o, &gp))
        goto out;
    if (gp.max_tokens > 0 && lm_of(w, &gp, &lm)) {
        ret = reply_err(r, 503, "no model is loaded");
        goto out;
    }
    int rc = kith_assist_search(w->ws, q, ASK_TOP, &src, &n, err, sizeof err);
    if (rc) {
        ret = reply_err(r, rc == KITH_EINVAL ? 400 : 500, "%s", err);
        goto out;
    }
    used = n;
    if (n && gp.max_tokens > 0 && (rc = kith_assist_ask_prompt(&lm, q, src, n, &prompt, &used))) {
        ret = reply_err(r, 500, "cannot make the prompt: %s", kith_strerror(rc));
        goto out;
    }
    json_t *sources = json_array();
    for (size_t k = 0; sources && k < used; k++)
        json_array_append_new(sources, json_pack("{s:s, s:i, s:i}", "path", src[k].path, "first",
                                                 src[k].first, "last", src[k].last));
    const char *model = kith_api_model_id(w->api);
    json_t *answer = json_pack("{s:s, s:n, s:o, s:o}", "question", q, "answer", "sources", sources,
                               "model", model ? json_string(model) : json_null());
    if (!prompt) /* nothing matches, or sources only */
        ret = reply_json(r, 200, answer);
    else
        ret = finish_gen(w, r, answer, "answer", &lm, &gp, prompt);
out:
    kith_assist_sources_free(src, n);
    kith_free(prompt);
    json_decref(o);
    return ret;
}

/* ---- POST /kith/catchup -------------------------------------------------------------- */

static int post_catchup(void *ud, kith_api_req *r)
{
    struct api_ws *w = ud;
    if (strcmp(kith_api_req_path(r), "/kith/catchup"))
        return reply_err(r, 404, "no such endpoint");
    json_t *o = body_object(r, 1);
    if (!o)
        return 0;
    kith_assist_catchup *cu = NULL;
    struct kith_gen_params gp;
    kith_assist_lm lm;
    char err[512], *prompt = NULL;
    int ret = 0, rc;
    json_t *since = json_object_get(o, "since");
    if (since && !json_is_null(since) && !json_is_string(since)) {
        ret = reply_err(r, 400, "'since' must be a string (a change id, \"2h ago\", a date)");
        goto out;
    }
    if (gen_fields(r, o, &gp))
        goto out;
    if (gp.max_tokens > 0 && lm_of(w, &gp, &lm)) {
        ret = reply_err(r, 503, "no model is loaded");
        goto out;
    }
    int64_t day_ago = (int64_t)time(NULL) * 1000 - 24LL * 3600 * 1000;
    if ((rc = kith_assist_catchup_get(w->ws, json_string_value(since), day_ago, &cu, err,
                                      sizeof err))) {
        ret = reply_err(r, ws_status(rc), "%s", err);
        goto out;
    }
    json_t *files = json_array();
    for (size_t k = 0; files && k < cu->n_files; k++) {
        const kith_assist_file *f = &cu->files[k];
        json_t *authors = json_array();
        for (size_t a = 0; authors && a < f->n_authors; a++)
            json_array_append_new(authors, json_string(f->authors[a]));
        json_array_append_new(files,
                              json_pack("{s:s, s:I, s:I, s:I, s:o}", "path", f->path, "added",
                                        (json_int_t)f->added, "removed", (json_int_t)f->removed,
                                        "changes", (json_int_t)f->changes, "authors", authors));
    }
    const char *model = kith_api_model_id(w->api);
    json_t *answer = json_pack("{s:o, s:I, s:I, s:o, s:n, s:o}", "since",
                               cu->since[0] ? json_string(cu->since) : json_null(), "since_ms",
                               (json_int_t)(cu->since[0] ? 0 : cu->since_ms), "changes",
                               (json_int_t)cu->n_changes, "files", files, "summary", "model",
                               model ? json_string(model) : json_null());
    if (!cu->n_files || gp.max_tokens == 0) {
        ret = reply_json(r, 200, answer);
        goto out;
    }
    if ((rc = kith_assist_catchup_prompt(&lm, cu, &prompt))) {
        json_decref(answer);
        ret = reply_err(r, 500, "cannot make the prompt: %s", kith_strerror(rc));
        goto out;
    }
    ret = finish_gen(w, r, answer, "summary", &lm, &gp, prompt);
out:
    kith_assist_catchup_free(cu);
    kith_free(prompt);
    json_decref(o);
    return ret;
}

/* ---- suggestions and comments ----------------------------------------------------------- */

static const char *status_name(enum kith_ws_note_status s)
{
    switch (s) {
    case KITH_WS_NOTE_OPEN:
        return "open";
    case KITH_WS_NOTE_STALE:
        return "stale";
    case KITH_WS_NOTE_ACCEPTED:
        return "accepted";
    default:
        return "rejected";
    }
}

struct note_list {
    enum kith_ws_note_type type;
    json_t *arr;
};

static int list_note(const kith_ws_note *n, void *ctx)
{
    struct note_list *l = ctx;
    if (n->type != l->type)
        return 0;
    json_t *text = json_stringn(n->text ? n->text : "", n->text_len);
    json_t *anchor = json_stringn(n->anchor ? n->anchor : "", n->anchor_len);
    const char *model = n->via && !strncmp(n->via, "ai:", 3) ? n->via + 3 : NULL;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "id", n->id,
        "type", n->type == KITH_WS_SUGGESTION ? "suggestion" : "comment", "status",
        status_name(n->status), "path", n->path, "author", n->author ? n->author : "", "device",
        n->device ? json_string(n->device) : json_null(), "via",
        n->via ? json_string(n->via) : json_null(), "model", model ? model : "", "time_ms",
        (json_int_t)n->time_ms, "line", (json_int_t)n->line, "pos", (json_int_t)n->pos, "len",
        (json_int_t)n->len, "del", (json_int_t)n->del, "anchor", anchor ? anchor : json_null(),
        "text", text ? text : json_null());
    if (o && !model)
        json_object_set_new(o, "model", json_null());
    return o ? json_array_append_new(l->arr, o) : -1;
}

/* GET /kith/suggestions or /kith/comments [?path=P][&all=1] */
static int get_notes(struct api_ws *w, kith_api_req *r, enum kith_ws_note_type type,
                     const char *key)
{
    char rel[PATH_MAX], abs[PATH_MAX * 2], all[16];
    int has_path = query_get(r, "path", rel, sizeof rel);
    int has_all = query_get(r, "all", all, sizeof all);
    if (has_path < 0 || has_all < 0 || (has_path && !*rel))
        return reply_err(r, 400, "bad query: path=P and all=1 are understood");
    if (has_path && abs_path(w, rel, abs, sizeof abs))
        return reply_err(r, 400, "path too long");
    bool everything = has_all && strcmp(all, "0") && strcmp(all, "false");
    struct note_list l = {type, json_array()};
    int rc = l.arr ? kith_ws_notes(w->ws, has_path ? abs : NULL, everything, list_note, &l)
                   : KITH_ENOMEM;
    if (rc) {
        json_decref(l.arr);
        return reply_ws_err(r, w, rc);
    }
    return reply_json(r, 200, json_pack("{s:o}", key, l.arr));
}

static int get_suggestions(void *ud, kith_api_req *r)
{
    const char *p = kith_api_req_path(r);
    if (strcmp(p, "/kith/suggestions") && strcmp(p, "/kith/suggestions/"))
        return reply_err(r, 404, "no such endpoint");
    return get_notes(ud, r, KITH_WS_SUGGESTION, "suggestions");
}

static int get_comments(void *ud, kith_api_req *r)
{
    const char *p = kith_api_req_path(r);
    if (strcmp(p, "/kith/comments") && strcmp(p, "/kith/comments/"))
        return reply_err(r, 404, "no such endpoint");
    return get_notes(ud, r, KITH_WS_COMMENT, "comments");
}

struct note_find {
    const char *id;
    size_t len, hits;
    enum kith_ws_note_type type;
};

static int find_note(const kith_ws_note *n, void *ctx)
{
    struct note_find *f = ctx;
    if (!strncasecmp(n->id, f->id, f->len)) {
        f->hits++;
        f->type = n->type;
    }
    return 0;
}

/* POST <prefix><id>/<verb>: accept or reject a suggestion, dismiss a comment. */
static int post_note(struct api_ws *w, kith_api_req *r, const char *prefix, int comment)
{
    const char *p = kith_api_req_path(r) + strlen(prefix);
    char id[KITH_WS_ID_HEX + 1];
    size_t n = 0;
    while (n < sizeof id - 1 && isxdigit((unsigned char)p[n]))
        n++;
    const char *verb = p + n;
    int accept = !comment && !strcmp(verb, "/accept");
    if (!(accept || (!comment && !strcmp(verb, "/reject")) ||
          (comment && !strcmp(verb, "/dismiss"))))
        return reply_err(r, 404, "no such endpoint: POST %s<id>/%s", prefix,
                         comment ? "dismiss" : "accept or reject");
    if (n < 4)
        return reply_err(r, 404, "'%.*s' is not a note id (4 to 32 hex digits)", (int)n, p);
    memcpy(id, p, n);
    id[n] = 0;
    /* The route says which kind of note it means: a comment's id on the
     * suggestions route (or the reverse) is not found, rather than the
     * other note being closed. */
    struct note_find f = {id, n, 0, KITH_WS_SUGGESTION};
    int rc = kith_ws_notes(w->ws, NULL, true, find_note, &f);
    if (rc)
        return reply_ws_err(r, w, rc);
    enum kith_ws_note_type want = comment ? KITH_WS_COMMENT : KITH_WS_SUGGESTION;
    if (f.hits == 0 || (f.hits == 1 && f.type != want))
        return reply_err(r, 404, "no %s %s", comment ? "comment" : "suggestion", id);
    kith_ws_result res;
    rc = accept ? kith_ws_accept(w->ws, id, &res) : kith_ws_reject(w->ws, id, &res);
    if (rc)
        return reply_ws_err(r, w, rc);
    if (w->changed)
        w->changed(w->ud);
    return reply_json(r, 200,
                      json_pack("{s:s, s:s, s:o}", "id", id, "status",
                                accept    ? "accepted"
                                : comment ? "dismissed"
                                          : "rejected",
                                "change", res.change[0] ? json_string(res.change) : json_null()));
}

static int post_suggestion(void *ud, kith_api_req *r)
{
    return post_note(ud, r, "/kith/suggestions/", 0);
}

static int post_comment(void *ud, kith_api_req *r)
{
    return post_note(ud, r, "/kith/comments/", 1);
}

/* ---- setup ------------------------------------------------------------------------- */

int api_ws_add(kith_api *api, kith_ws *ws, void (*changed)(void *ud), void *ud, api_ws **out)
{
    static const struct {
        const char *method, *prefix;
        kith_api_handler_fn fn;
    } routes[] = {
        {"GET", "/kith/status", get_status},
        {"GET", "/kith/files", get_files},
        {"POST", "/kith/ask", post_ask},
        {"POST", "/kith/catchup", post_catchup},
        {"GET", "/kith/suggestions", get_suggestions},
        {"POST", "/kith/suggestions/", post_suggestion},
        {"GET", "/kith/comments", get_comments},
        {"POST", "/kith/comments/", post_comment},
    };
    *out = NULL;
    struct api_ws *w = calloc(1, sizeof *w);
    if (!w)
        return KITH_ENOMEM;
    *w = (struct api_ws){api, ws, changed, ud};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        /* on failure the routes made so far point at @w: the caller
         * frees it after kith_api_close */
        int rc = kith_api_route(api, routes[i].method, routes[i].prefix, routes[i].fn, w);
        if (rc)
            return *out = w, rc;
    }
    *out = w;
    return 0;
}

void api_ws_free(api_ws *w)
{
    free(w);
}
