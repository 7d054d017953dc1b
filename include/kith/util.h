/*
 * Process-wide services of libkith: the allocator hook (so that tests can fail
 * the Nth allocation in every decoder), logging, and kith_free for memory the
 * library hands to its caller.
 */
#ifndef KITH_UTIL_H
#define KITH_UTIL_H

#include <stddef.h>

#include "kith/err.h"

/*
 * Replaces the allocator used by all of libkith. realloc_fn(ptr, size) must
 * behave like realloc, and free like realloc(ptr, 0) returning NULL. Call it
 * before any other kith call; NULL restores the C library's allocator.
 */
typedef void *(*kith_realloc_fn)(void *ud, void *ptr, size_t size);
KITH_API void kith_set_allocator(kith_realloc_fn fn, void *ud);

/* Frees memory that a kith call returned to the caller. Accepts NULL. */
KITH_API void kith_free(void *p);

enum kith_log_level { KITH_LOG_DEBUG, KITH_LOG_INFO, KITH_LOG_WARN, KITH_LOG_ERROR };
typedef void (*kith_log_fn)(void *ud, enum kith_log_level level, const char *msg);
/* Routes library log lines to @fn (default: stderr, WARN and above). */
KITH_API void kith_log_set(kith_log_fn fn, void *ud);

#endif
