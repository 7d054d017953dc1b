/*
 * prompt.c: prompts for the model that fit its context. A prompt is cut by
 * bytes first (a budget in bytes, shrunk by a third each round) and checked
 * by tokens with the model's own vocabulary: counting tokens is cheap next
 * to a forward pass, and a budget in bytes keeps the cutting simple.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "assist/assist_int.h"
#include "kith/assist.h"
#include "util/util_int.h"

void as_add(as_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = kith_realloc(b->p, cap);
        if (!p) {
            as_release(b);
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void as_str(as_buf *b, const char *s)
{
    as_add(b, s, strlen(s));
}

void as_printf(as_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    as_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

size_t as_utf8_floor(const char *s, size_t off)
{
    while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80)
        off--;
    return off;
}

void as_head(as_buf *b, const char *s, size_t n, size_t max)
{
    as_add(b, s, n > max ? as_utf8_floor(s, max) : n);
}

void as_tail(as_buf *b, const char *s, size_t n, size_t max)
{
    size_t from = n > max ? n - max : 0;
    while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80)
        from++;
    as_add(b, s + from, n - from);
}

char *as_take(as_buf *b)
{
    if (b->oom)
        return NULL;
    if (!b->p)
        as_add(b, "", 0);
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void as_release(as_buf *b)
{
    kith_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

bool kith_assist_chat(const kith_assist_lm *lm)
{
    struct kith_model_info in = {.size = sizeof in};
    if (!lm->model || kith_model_info(lm->model, &in))
        return false;
    return in.chat_template && strcmp(in.chat_template, "none");
}

int kith_assist_prompt(const kith_assist_lm *lm, const char *task, const char *material, char **out)
{
    as_buf b = {0};
    *out = NULL;
    if (kith_assist_chat(lm)) {
        as_str(&b, material);
        as_str(&b, "\n\n");
        as_str(&b, task);
        char *user = as_take(&b);
        if (!user)
            return KITH_ENOMEM;
        struct kith_chat_msg msgs[2] = {
            {"system", "You are a careful writing assistant working on the user's documents. "
                       "Answer with the requested text only."},
            {"user", user}};
        int rc = kith_chat_format(lm->model, msgs, 2, 1, out);
        kith_free(user);
        return rc;
    }
    as_str(&b, material);
    as_str(&b, task);
    *out = as_take(&b);
    return *out ? KITH_OK : KITH_ENOMEM;
}

bool kith_assist_fits(const kith_assist_lm *lm, const char *prompt)
{
    int32_t *ids = NULL;
    size_t n = 0;
    unsigned fl =
        KITH_TOKENIZE_ADD_SPECIAL | (kith_assist_chat(lm) ? KITH_TOKENIZE_PARSE_SPECIAL : 0);
    if (!lm->vocab || kith_tokenize_ex(lm->vocab, prompt, strlen(prompt), fl, &ids, &n))
        return false;
    kith_free(ids);
    return n + (size_t)(lm->max_tokens > 0 ? lm->max_tokens : 0) + 4 <= (size_t)lm->n_ctx;
}

void kith_assist_via(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    if (bl > 5 && !strcmp(base + bl - 5, ".gguf"))
        bl -= 5;
    snprintf(out, cap, "ai:%.*s", (int)bl, base);
}

int kith_assist_ask_prompt(const kith_assist_lm *lm, const char *question,
                           const kith_assist_source *src, size_t n, char **out, size_t *used)
{
    *out = NULL;
    *used = n;
    if (!n)
        return KITH_EINVAL;
    as_buf task = {0};
    as_str(&task, "\nQuestion: ");
    as_str(&task, question);
    as_str(&task, "\nAnswer:\n");
    char *t = as_take(&task);
    if (!t)
        return KITH_ENOMEM;
    int rc = KITH_OK;
    /* fewer passages, then shorter ones, until the prompt fits */
    for (size_t budget = (size_t)lm->n_ctx * 4;; budget = budget * 2 / 3) {
        as_buf mat = {0};
        for (size_t k = 0; k < *used; k++) {
            as_printf(&mat, "[%s:%d-%d]\n", src[k].path, src[k].first, src[k].last);
            as_head(&mat, src[k].text, strlen(src[k].text), budget / *used);
            as_str(&mat, "\n");
        }
        char *m = as_take(&mat);
        kith_free(*out);
        *out = NULL;
        rc = m ? kith_assist_prompt(lm, t, m, out) : KITH_ENOMEM;
        kith_free(m);
        if (rc || kith_assist_fits(lm, *out) || budget < 16)
            break;
        if (*used > 1 && budget < (size_t)lm->n_ctx * 2)
            (*used)--;
    }
    kith_free(t);
    return rc;
}

int kith_assist_catchup_prompt(const kith_assist_lm *lm, const kith_assist_catchup *cu, char **out)
{
    *out = NULL;
    if (!cu->n_files)
        return KITH_EINVAL;
    int rc = KITH_OK;
    for (size_t budget = (size_t)lm->n_ctx * 4;; budget = budget * 2 / 3) {
        as_buf mat = {0};
        for (size_t k = 0; k < cu->n_files; k++) {
            const kith_assist_file *f = &cu->files[k];
            if (!f->text)
                continue;
            as_str(&mat, "File ");
            as_str(&mat, f->path);
            as_str(&mat, ":\n");
            as_head(&mat, f->text, f->text_len, budget / cu->n_files);
            as_str(&mat, "\n\n");
        }
        char *m = as_take(&mat);
        kith_free(*out);
        *out = NULL;
        rc =
            m ? kith_assist_prompt(lm, "What changed, in a few sentences:\n", m, out) : KITH_ENOMEM;
        kith_free(m);
        if (rc || kith_assist_fits(lm, *out) || budget < 16)
            break;
    }
    return rc;
}
