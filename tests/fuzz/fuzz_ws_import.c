/*
 * Fuzz target: kith_ws_import, the decoder and merge of what another replica
 * (a peer, a bundle on a USB stick) sends. Each input is up to three export
 * bodies separated by "@@@@", imported in turn into a fresh workspace (so a
 * finding reproduces from its input alone). The target adds each body's
 * envelope (magic, the workspace's id) and a valid checksum, so that the
 * fuzzer reaches the parser and the merge instead of the checksum. Every
 * input must be refused or leave a store that kith_ws_check passes, with
 * nothing written outside the workspace folder.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void import_part(kith_ws *ws, const uint8_t *data, size_t size)
{
    const char *id = kith_ws_id(ws);
    size_t n = 8 + 1 + 32 + size + 16;
    uint8_t *buf = malloc(n);
    if (!buf)
        return;
    memcpy(buf, "KITHWX1\0", 8);
    /* A body starting with 'Z' is taken as version 1 (a size, then a zstd
     * frame), so the decompression path is fuzzed too. */
    if (size && data[0] == 'Z') {
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
    kith_ws_result res;
    int rc = kith_ws_import(ws, buf, n, NULL, NULL, &res);
    free(buf);
    if (rc == KITH_OK && kith_ws_check(ws) != KITH_OK) {
        fprintf(stderr, "import accepted input that breaks the store: %s\n", kith_ws_errmsg(ws));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
        import_part(ws, p, (size_t)(stop - p));
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
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
