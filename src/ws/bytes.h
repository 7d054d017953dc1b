/*
 * Byte buffers for the workspace's binary formats (the export, change
 * payloads version 0 and 1; docs/FORMAT.md): a growing writer whose first
 * failure sticks, and a bounds-checked reader whose first overrun or bad
 * varint sticks, so that encoders and parsers check once at the end.
 */
#ifndef KITH_WS_BYTES_H
#define KITH_WS_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ws_wbuf {
    uint8_t *p; /* kith_malloc'd; the caller frees */
    size_t n, cap;
    int err; /* KITH_ENOMEM after a failed append; later appends do nothing */
} ws_wbuf;

typedef struct ws_rbuf {
    const uint8_t *p; /* borrowed */
    size_t n, off;
    bool err; /* set by the first read past the end or out of range */
} ws_rbuf;

/* Zigzag: a signed difference (taken modulo 2^64) as a small unsigned one. */
static inline uint64_t ws_zigzag(uint64_t d)
{
    return d << 1 ^ (0 - (d >> 63));
}
static inline uint64_t ws_unzigzag(uint64_t z)
{
    return z >> 1 ^ (0 - (z & 1));
}

void ws_wb_bytes(ws_wbuf *w, const void *p, size_t n);
void ws_wb_var(ws_wbuf *w, uint64_t v);
/* The next @n bytes (borrowed from the buffer), or NULL and err. */
const uint8_t *ws_rb_bytes(ws_rbuf *r, size_t n);
/* The next varint, or 0 and err when it is malformed or above @max. */
uint64_t ws_rb_var(ws_rbuf *r, uint64_t max);

#endif
