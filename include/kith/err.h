/*
 * kith error codes. Every libkith call that can fail returns an int: KITH_OK
 * (0) or a negative kith_err. The list is append-only: codes are never
 * renumbered, so a program built against an older libkith reads them right.
 */
#ifndef KITH_ERR_H
#define KITH_ERR_H

#include "kith/version.h"

#define KITH_ERR_MAP(X)                                                         \
    X(OK, 0, "success")                                                         \
    X(ENOMEM, -1, "out of memory")                                              \
    X(EINVAL, -2, "invalid argument")                                           \
    X(ERANGE, -3, "position or length out of range")                            \
    X(EIO, -4, "input/output error")                                            \
    X(ECORRUPT, -5, "malformed or corrupt data")                                \
    X(EVERSION, -6, "unsupported format version")                               \
    X(EMISSING, -7, "causal parents missing")                                   \
    X(EUTF8, -8, "invalid UTF-8")                                               \
    X(ENOTFOUND, -9, "not found")                                               \
    X(ETOOBIG, -10, "too large")                                                \
    X(EUNSUPPORTED, -11, "unsupported")                                         \
    X(ECANCELED, -12, "canceled")                                               \
    X(EBUSY, -13, "busy: another process holds the lock")                       \
    X(EEXIST, -14, "already exists")                                            \
    X(ENOSPC, -15, "no space left on device")                                   \
    X(EPERM, -16, "permission denied")                                          \
    X(EAUTH, -17, "authentication failed")                                      \
    X(ENET, -18, "network or protocol error")                                   \
    X(ESTALE, -19, "stale: the text it was anchored to was deleted")

enum kith_err {
#define KITH_ERR_ENUM(name, val, text) KITH_##name = (val),
    KITH_ERR_MAP(KITH_ERR_ENUM)
#undef KITH_ERR_ENUM
};

/* Human text for @err ("out of memory"); static storage, never freed. */
KITH_API const char *kith_strerror(int err);

/* Symbolic name for @err ("KITH_ENOMEM"); static storage, never freed. */
KITH_API const char *kith_err_name(int err);

#endif
