/*
 * catchup.c: what changed after a version, file by file, with authors, from
 * this replica's merged history (kith_ws_log, newest first, walked back to
 * the boundary: the change given, or the first one older than the time
 * given). Line counts come from the unified diff between the boundary and
 * the recorded text; a file with no text at the boundary counts every line
 * as added.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assist/assist_int.h"
#include "kith/assist.h"
#include "util/util_int.h"

#define MAX_AUTHORS 16
#define TEXT_KEEP   (64u << 10) /* bytes of each file's text kept for the prompt */

typedef struct cu_ctx {
    const char *since_id; /* stop at this change (exclusive) */
    int64_t since_ms;     /* or: changes at or after this time */
    char boundary[KITH_WS_ID_HEX + 1];
    kith_assist_catchup *cu;
    size_t cap;
    int rc;
} cu_ctx;

static int cu_change(const kith_ws_change *c, void *vctx)
{
    cu_ctx *x = vctx;
    kith_assist_catchup *cu = x->cu;
    if ((x->since_id && !strcmp(c->id, x->since_id)) ||
        (!x->since_id && c->time_ms < x->since_ms)) {
        snprintf(x->boundary, sizeof x->boundary, "%s", c->id);
        return 1;
    }
    char who[512];
    snprintf(who, sizeof who, "%s%s%s", c->author, c->via ? " via " : "", c->via ? c->via : "");
    size_t nfiles = 0;
    for (size_t p = 0; p < c->npaths; p++) {
        nfiles++;
        size_t k = 0;
        while (k < cu->n_files && strcmp(cu->files[k].path, c->paths[p]))
            k++;
        if (k == cu->n_files) {
            void *files = cu->files;
            if (kith_grow(&files, &x->cap, k + 1, sizeof *cu->files))
                goto oom;
            cu->files = files;
            memset(&cu->files[k], 0, sizeof cu->files[k]);
            if (!(cu->files[k].path = kith_strndup(c->paths[p], strlen(c->paths[p]))))
                goto oom;
            cu->n_files++;
        }
        kith_assist_file *f = &cu->files[k];
        f->changes++;
        size_t a = 0;
        while (a < f->n_authors && strcmp(f->authors[a], who))
            a++;
        if (a == f->n_authors && f->n_authors < MAX_AUTHORS) {
            if (!f->authors && !(f->authors = kith_calloc(MAX_AUTHORS, sizeof *f->authors)))
                goto oom;
            if (!(f->authors[a] = kith_strndup(who, strlen(who))))
                goto oom;
            f->n_authors++;
        }
    }
    if (nfiles)
        cu->n_changes++;
    else
        cu->n_note_changes++;
    return 0;
oom:
    x->rc = KITH_ENOMEM;
    return 1;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const kith_assist_file *)a)->path, ((const kith_assist_file *)b)->path);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lines added and removed in @f from @from (NULL: nothing) to now. */
static void line_counts(kith_ws *ws, kith_assist_file *f, const char *from)
{
    char *out = NULL;
    size_t len = 0;
    f->added = f->removed = 0;
    if (from && kith_ws_diff(ws, f->path, from, "now", false, &out, &len) == 0) {
        const char *p = out, *end = out + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n >= 1 && p[0] == '+' && !(n >= 3 && !strncmp(p, "+++", 3)))
                f->added++;
            else if (n >= 1 && p[0] == '-' && !(n >= 3 && !strncmp(p, "---", 3)))
                f->removed++;
            p += n + 1;
        }
        kith_free(out);
        return;
    }
    kith_free(out);
    /* no text at the boundary (new since then): every line is added */
    for (size_t i = 0; i < f->text_len; i++)
        f->added += f->text[i] == '\n';
    if (f->text_len && f->text[f->text_len - 1] != '\n')
        f->added++;
}

int kith_assist_catchup_get(kith_ws *ws, const char *since, int64_t since_ms,
                            kith_assist_catchup **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    kith_assist_catchup *cu = kith_calloc(1, sizeof *cu);
    if (!cu) {
        snprintf(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    cu_ctx x = {.cu = cu, .since_ms = since_ms};
    int rc;
    if (since) {
        if ((rc = kith_ws_resolve(ws, since, cu->since))) {
            snprintf(err, errlen, "%s", kith_ws_errmsg(ws));
            goto fail;
        }
        x.since_id = cu->since;
    } else {
        cu->since_ms = since_ms;
    }
    if ((rc = kith_ws_log(ws, NULL, 0, cu_change, &x)) || (rc = x.rc)) {
        snprintf(err, errlen, "%s", rc == KITH_ENOMEM ? "out of memory" : kith_ws_errmsg(ws));
        goto fail;
    }
    if (cu->n_files)
        qsort(cu->files, cu->n_files, sizeof *cu->files, cmp_file);
    for (size_t k = 0; k < cu->n_files; k++) {
        kith_assist_file *f = &cu->files[k];
        char *t = NULL;
        size_t len = 0;
        qsort(f->authors, f->n_authors, sizeof *f->authors, cmp_strp);
        if (kith_ws_cat(ws, f->path, NULL, &t, &len) == 0) {
            /* the line count needs all of it; the prompt only the start */
            f->text = t;
            f->text_len = len;
        }
        line_counts(ws, f, x.boundary[0] ? x.boundary : NULL);
        if (f->text && f->text_len > TEXT_KEEP) {
            f->text_len = as_utf8_floor(f->text, TEXT_KEEP);
            f->text[f->text_len] = 0;
        }
    }
    *out = cu;
    return KITH_OK;
fail:
    kith_assist_catchup_free(cu);
    return rc;
}

void kith_assist_catchup_free(kith_assist_catchup *cu)
{
    if (!cu)
        return;
    for (size_t k = 0; k < cu->n_files; k++) {
        kith_assist_file *f = &cu->files[k];
        kith_free(f->path);
        for (size_t a = 0; a < f->n_authors; a++)
            kith_free(f->authors[a]);
        kith_free(f->authors);
        kith_free(f->text);
    }
    kith_free(cu->files);
    kith_free(cu);
}
