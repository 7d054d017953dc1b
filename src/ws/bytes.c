/* Byte buffers for the workspace's binary formats (see bytes.h). */
#include <string.h>

#include "util/util_int.h"
#include "ws/bytes.h"

void ws_wb_bytes(ws_wbuf *w, const void *p, size_t n)
{
    if (w->err || kith_grow((void **)&w->p, &w->cap, w->n + n, 1)) {
        w->err = KITH_ENOMEM;
        return;
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

void ws_wb_var(ws_wbuf *w, uint64_t v)
{
    uint8_t b[10];
    ws_wb_bytes(w, b, kith_varint_put(b, v));
}

const uint8_t *ws_rb_bytes(ws_rbuf *r, size_t n)
{
    if (r->err || n > r->n - r->off) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint64_t ws_rb_var(ws_rbuf *r, uint64_t max)
{
    uint64_t v = 0;
    size_t used = r->err ? 0 : kith_varint_get(r->p + r->off, r->n - r->off, &v);
    if (!used || v > max) {
        r->err = true;
        return 0;
    }
    r->off += used;
    return v;
}
