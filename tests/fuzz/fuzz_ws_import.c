/*
 * Fuzz target: kith_ws_import, the decoder and merge of what another replica
 * (a peer, a bundle on a USB stick) sends, through fuzz_ws.h. A body
 * starting with 'Z' is taken as version 1 (a size, then a zstd frame), so
 * the decompression path is fuzzed too.
 */
#include "fuzz_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int import(kith_ws *ws, const uint8_t *buf, size_t len)
{
    kith_ws_result res;
    return kith_ws_import(ws, buf, len, NULL, NULL, &res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_ws_run(data, size, "KITHWX1\0", 'Z', import);
}
