/*
 * Fuzz target: kith_ws_apply_change, the decoder and merge of one change
 * that another replica sends through sync, through fuzz_ws.h.
 */
#include "fuzz_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int apply(kith_ws *ws, const uint8_t *buf, size_t len)
{
    kith_ws_result res;
    return kith_ws_apply_change(ws, buf, len, NULL, NULL, &res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_ws_run(data, size, "KITHWC1\0", 0, apply);
}
