/*
 * Shared by the CRDT fuzz targets (fuzz_doc_decode, fuzz_doc_apply): the
 * assertion macro, an independent UTF-8 counter to check the engine's text
 * against, and the entry point that runs each input twice, as is and with
 * its CRC-32 fixed up. A target includes this, then defines check_one().
 */
#ifndef KITH_FUZZ_DOC_H
#define KITH_FUZZ_DOC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                    \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* Code points in well-formed UTF-8, or -1. */
static long utf8_count(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        unsigned c = p[i], need;
        uint32_t cp, min;
        if (c < 0x80)
            need = 0, cp = c, min = 0;
        else if ((c & 0xe0) == 0xc0)
            need = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            need = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            need = 3, cp = c & 0x07, min = 0x10000;
        else
            return -1;
        if (len - i <= need)
            return -1;
        for (unsigned k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += need + 1;
    }
    return n;
}

/* The encoding ends in a CRC-32 (zlib's polynomial, little-endian) of the
 * bytes before it (docs/FORMAT.md). Random mutations almost never keep it
 * right, so each input also runs with the CRC fixed up: the mutations then
 * reach the parser behind it. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void check_one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    if (size >= 11 && size < (1u << 20)) {
        uint8_t *fixed = malloc(size);
        MUST(fixed != NULL);
        memcpy(fixed, data, size);
        uint32_t c = crc32_of(fixed, size - 4);
        for (int i = 0; i < 4; i++)
            fixed[size - 4 + i] = (uint8_t)(c >> (8 * i));
        check_one(fixed, size);
        free(fixed);
    }
    return 0;
}

#endif
