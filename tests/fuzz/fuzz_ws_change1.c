/*
 * Fuzz target: kith_ws_apply_change_from with version 1 change payloads
 * (docs/FORMAT.md, "Change payload"), which are unpacked against what the
 * workspace holds and then merged. An input is the author's 32-byte key,
 * then up to three payloads separated by "@@@@", applied in turn as that
 * author's changes 1, 2, 3 to a fresh workspace. Every input must be
 * refused or leave a store that kith_ws_check passes, with nothing written
 * outside the workspace folder.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kith/kith.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 32 || size > 1 << 18)
        return 0;
    setenv("KITH_SYNC", "off", 1);
    char root[64], ws_dir[80], probe[96];
    snprintf(root, sizeof root, "/tmp/kith-fuzz-wc1-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(ws_dir, sizeof ws_dir, "%s/w", root);
    kith_ws *ws = NULL;
    if (kith_ws_init(ws_dir, "Fuzz", &ws))
        abort();
    const uint8_t *key = data, *p = data + 32, *end = data + size;
    for (uint64_t seq = 1; seq <= 3 && p <= end; seq++) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; q + 4 <= end && !sep; q++)
            if (!memcmp(q, "@@@@", 4))
                sep = q;
        const uint8_t *stop = sep ? sep : end;
        kith_ws_result res;
        int rc = kith_ws_apply_change_from(ws, key, seq, p, (size_t)(stop - p), NULL, NULL, &res);
        if (rc == KITH_OK && kith_ws_check(ws) != KITH_OK) {
            fprintf(stderr, "accepted input that breaks the store: %s\n", kith_ws_errmsg(ws));
            abort();
        }
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
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
