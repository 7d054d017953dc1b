/*
 * buf.c: growable byte buffers for responses and request copies, and JSON
 * output through them (jansson's own dump would hand back memory from a
 * different allocator than libkith's hook).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "util/util_int.h"

int api_buf_add(struct api_buf *b, const void *p, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return KITH_ENOMEM;
    if (kith_grow((void **)&b->p, &b->cap, b->len + n + 1, 1))
        return KITH_ENOMEM;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int api_buf_str(struct api_buf *b, const char *s)
{
    return api_buf_add(b, s, strlen(s));
}

int api_buf_printf(struct api_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return KITH_EINVAL;
    if ((size_t)n < sizeof small)
        return api_buf_add(b, small, (size_t)n);
    if (kith_grow((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 1))
        return KITH_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void api_buf_release(struct api_buf *b)
{
    kith_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int dump_cb(const char *p, size_t n, void *ud)
{
    return api_buf_add(ud, p, n) ? -1 : 0;
}

int api_buf_json(struct api_buf *b, const json_t *j)
{
    /* 9 significant digits round-trip a float exactly; jansson's default
     * of 17 would make embeddings nearly twice as long */
    if (json_dump_callback(j, dump_cb, b, JSON_COMPACT | JSON_REAL_PRECISION(9)))
        return KITH_ENOMEM;
    return api_buf_add(b, "", 0);
}
