/*
 * Internal helpers shared by every module: allocation through the hook in
 * kith_set_allocator, LEB128 varints, logging. Not part of the public API.
 */
#ifndef KITH_UTIL_INT_H
#define KITH_UTIL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kith/util.h"

void *kith_malloc(size_t n);
void *kith_calloc(size_t count, size_t size);
void *kith_realloc(void *p, size_t n);
char *kith_strndup(const char *s, size_t n);
/* Grows *p (holding *cap elements of @elem bytes) to at least @need; 0 or KITH_ENOMEM. */
int kith_grow_slow(void **p, size_t *cap, size_t need, size_t elem);
static inline int kith_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    return need <= *cap ? 0 : kith_grow_slow(p, cap, need, elem);
}

void kith_log(enum kith_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Unsigned LEB128. put returns bytes written (buf needs 10); get returns bytes
 * read or 0 if the input is truncated or the value overflows 64 bits. */
size_t kith_varint_put(uint8_t *buf, uint64_t v);
size_t kith_varint_get(const uint8_t *p, size_t avail, uint64_t *out);
static inline uint64_t kith_zigzag(int64_t v)
{
    /* All ones for negative values, without shifting a signed value. */
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}
static inline int64_t kith_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* UTF-8: validates @len bytes; returns the code point count or -1. */
long kith_utf8_count(const char *s, size_t len);

#endif
