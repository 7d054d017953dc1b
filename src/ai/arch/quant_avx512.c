#include "ai/quant.h"
void quant_kernels_init_avx512(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx512";
}
