/*
 * libkith process-wide services: error text, the allocator hook, logging,
 * varints and UTF-8 validation. Everything else in the library allocates
 * through kith_malloc so that a test can make any allocation fail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/err.h"
#include "kith/version.h"
#include "util/util_int.h"

const char *kith_version(void)
{
    return "0.1.0";
}

const char *kith_strerror(int err)
{
    switch (err) {
#define KITH_ERR_TEXT(name, val, text)                                          \
    case val:                                                                   \
        return text;
        KITH_ERR_MAP(KITH_ERR_TEXT)
#undef KITH_ERR_TEXT
    }
    return "unknown error";
}

const char *kith_err_name(int err)
{
    switch (err) {
#define KITH_ERR_NAME(name, val, text)                                          \
    case val:                                                                   \
        return "KITH_" #name;
        KITH_ERR_MAP(KITH_ERR_NAME)
#undef KITH_ERR_NAME
    }
    return "KITH_EUNKNOWN";
}

static kith_realloc_fn alloc_fn;
static void *alloc_ud;

void kith_set_allocator(kith_realloc_fn fn, void *ud)
{
    alloc_fn = fn;
    alloc_ud = ud;
}

void *kith_realloc(void *p, size_t n)
{
    if (alloc_fn)
        return alloc_fn(alloc_ud, p, n ? n : 1);
    return realloc(p, n ? n : 1);
}

void *kith_malloc(size_t n)
{
    return kith_realloc(NULL, n);
}

void *kith_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = kith_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void kith_free(void *p)
{
    if (!p)
        return;
    if (alloc_fn)
        alloc_fn(alloc_ud, p, 0);
    else
        free(p);
}

char *kith_strndup(const char *s, size_t n)
{
    char *d = kith_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int kith_grow_slow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return KITH_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return KITH_ENOMEM;
        ncap *= 2;
    }
    void *np = kith_realloc(*p, ncap * elem);
    if (!np)
        return KITH_ENOMEM;
    *p = np;
    *cap = ncap;
    return KITH_OK;
}

static kith_log_fn log_fn;
static void *log_ud;

void kith_log_set(kith_log_fn fn, void *ud)
{
    log_fn = fn;
    log_ud = ud;
}

void kith_log(enum kith_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(log_ud, level, msg);
        return;
    }
    if (level >= KITH_LOG_WARN)
        fprintf(stderr, "kith: %s\n", msg);
}

size_t kith_varint_put(uint8_t *buf, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    buf[n++] = (uint8_t)v;
    return n;
}

size_t kith_varint_get(const uint8_t *p, size_t avail, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < avail && i < 10; i++) {
        uint64_t b = p[i];
        if (i == 9 && b > 1)
            return 0; /* would overflow 64 bits */
        v |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

long kith_utf8_count(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    long count = 0;
    size_t i = 0;
    while (i < len) {
        /* Runs of ASCII eight bytes at a time: most text is mostly ASCII. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
            count += 8;
        }
        if (i >= len)
            break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
        } else {
            size_t n;
            uint32_t cp;
            if ((c & 0xe0) == 0xc0) {
                n = 2;
                cp = c & 0x1f;
            } else if ((c & 0xf0) == 0xe0) {
                n = 3;
                cp = c & 0x0f;
            } else if ((c & 0xf8) == 0xf0) {
                n = 4;
                cp = c & 0x07;
            } else {
                return -1;
            }
            if (i + n > len)
                return -1;
            for (size_t k = 1; k < n; k++) {
                if ((s[i + k] & 0xc0) != 0x80)
                    return -1;
                cp = (cp << 6) | (s[i + k] & 0x3f);
            }
            /* Reject overlong forms, surrogates and values past U+10FFFF. */
            if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
                cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -1;
            i += n;
        }
        count++;
    }
    return count;
}
