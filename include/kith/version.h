/* kith version and the export macro every public header uses. */
#ifndef KITH_VERSION_H
#define KITH_VERSION_H

#define KITH_VERSION_MAJOR 0
#define KITH_VERSION_MINOR 1
#define KITH_VERSION_PATCH 0
#define KITH_VERSION_HEX                                                        \
    ((KITH_VERSION_MAJOR << 16) | (KITH_VERSION_MINOR << 8) | KITH_VERSION_PATCH)

#if defined(KITH_BUILDING) && defined(__GNUC__)
#define KITH_API __attribute__((visibility("default")))
#else
#define KITH_API
#endif

#if defined(__GNUC__)
#define KITH_NODISCARD __attribute__((warn_unused_result))
#else
#define KITH_NODISCARD
#endif

/* "0.1.0"; static storage. */
KITH_API const char *kith_version(void);

#endif
