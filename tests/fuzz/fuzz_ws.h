/*
 * What the two workspace fuzz targets share (fuzz_ws_import.c,
 * fuzz_ws_change.c): each input is up to three bodies separated by "@@@@",
 * each given its envelope (magic, the workspace's id) and a valid checksum,
 * then applied in turn to a fresh workspace (so a finding reproduces from
 * its input alone). Every input must be refused or leave a store that
 * kith_ws_check passes, with nothing written outside the workspace folder.
 */
#ifndef KITH_FUZZ_WS_H
#define KITH_FUZZ_WS_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"

/* Applies one enveloped body; returns a kith error. */
typedef int (*fuzz_ws_apply_fn)(kith_ws *ws, const uint8_t *buf, size_t len);

static int fuzz_ws_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* @magic is 8 bytes; a body starting with @v1_mark (if not 0) gets magic
 * byte 7 = 1 instead (a compressed body). */
static void fuzz_ws_part(kith_ws *ws, const char *magic, char v1_mark, fuzz_ws_apply_fn apply,
                         const uint8_t *data, size_t size)
{
    const char *id = kith_ws_id(ws);
    size_t n = 8 + 1 + 32 + size + 16;
    uint8_t *buf = malloc(n);
    if (!buf)
        return;
    memcpy(buf, magic, 8);
    if (v1_mark && size && data[0] == (uint8_t)v1_mark) {
        buf[7] = 1;
        data++;
        size--;
        n--;
    }
    buf[8] = 32;
    memcpy(buf + 9, id, 32);
    if (size)
        memcpy(buf + 41, data, size);
    crypto_generichash(buf + n - 16, 16, buf, n - 16, NULL, 0);
    int rc = apply(ws, buf, n);
    free(buf);
    if (rc == KITH_OK && kith_ws_check(ws) != KITH_OK) {
        fprintf(stderr, "accepted input that breaks the store: %s\n", kith_ws_errmsg(ws));
        abort();
    }
}

static int fuzz_ws_run(const uint8_t *data, size_t size, const char *magic, char v1_mark,
                       fuzz_ws_apply_fn apply)
{
    if (size > 1 << 18)
        return 0;
    setenv("KITH_SYNC", "off", 1); /* fsync per input would be the bottleneck */
    char root[64], ws_dir[80], probe[96];
    snprintf(root, sizeof root, "/tmp/kith-fuzz-ws-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(ws_dir, sizeof ws_dir, "%s/w", root);
    kith_ws *ws = NULL;
    if (kith_ws_init(ws_dir, "Fuzz", &ws))
        abort();
    const uint8_t *p = data, *end = data + size;
    for (int part = 0; part < 3 && p <= end; part++) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; q + 4 <= end && !sep; q++)
            if (!memcmp(q, "@@@@", 4))
                sep = q;
        const uint8_t *stop = sep ? sep : end;
        fuzz_ws_part(ws, magic, v1_mark, apply, p, (size_t)(stop - p));
        if (!sep)
            break;
        p = sep + 4;
    }
    kith_ws_close(ws);
    snprintf(probe, sizeof probe, "%s/x", root);
    if (access(probe, F_OK) == 0) {
        fprintf(stderr, "an import wrote outside the workspace folder\n");
        abort();
    }
    nftw(root, fuzz_ws_rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#endif
