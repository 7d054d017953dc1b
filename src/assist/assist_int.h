/*
 * Internals of src/assist (include/kith/assist.h): a growable string with a
 * sticky out-of-memory flag, so that a prompt is built with plain appends
 * and checked once at the end (SQLite's StrAccum does the same).
 */
#ifndef KITH_ASSIST_INT_H
#define KITH_ASSIST_INT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct as_buf {
    char *p; /* NUL-terminated when non-NULL; kith_malloc'd */
    size_t len, cap;
    bool oom;
} as_buf;

void as_add(as_buf *b, const char *s, size_t n);
void as_str(as_buf *b, const char *s);
void as_printf(as_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first @max bytes of @s[0..n), whole UTF-8 characters only. */
void as_head(as_buf *b, const char *s, size_t n, size_t max);
/* The last @max bytes of @s[0..n), whole characters only. */
void as_tail(as_buf *b, const char *s, size_t n, size_t max);
/* The text so far ("" when empty), or NULL after a failed allocation (the
 * buffer is then released). The caller owns it (kith_free). */
char *as_take(as_buf *b);
void as_release(as_buf *b);
/* Byte offset <= @off that does not split a UTF-8 character of @s. */
size_t as_utf8_floor(const char *s, size_t off);

#endif
