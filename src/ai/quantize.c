/*
 * quantize.c: kith_model_quantize, GGUF to GGUF. Metadata is carried over
 * (general.file_type updated); 2-D weight matrices whose rows fit the block
 * size are converted row by row inside the writer's fill callback, so memory
 * stays at one row; norms, biases and odd-shaped tensors are copied as they
 * are. Q4_K_M follows llama.cpp's layout: Q4_K, with output.weight and the
 * attn_v / ffn_down matrices of the first and last eighth of the layers (and
 * every third between) in Q6_K.
 */
#include <stdio.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "util/util_int.h"

struct qjob {
    const gguf_file *in;
    size_t n;
    const struct gguf_tensor **src;
    uint32_t *dst_type;
    float *row;
    kith_progress_fn progress;
    void *ud;
};

static int fill(void *ud, size_t idx, void *dst, size_t nbytes)
{
    struct qjob *j = ud;
    const struct gguf_tensor *t = j->src[idx];
    if (j->dst_type[idx] == t->type) {
        memcpy(dst, t->data, nbytes);
    } else {
        size_t k = (size_t)t->ne[0], rows = (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        size_t sb = quant_row_bytes(t->type, k), db = quant_row_bytes(j->dst_type[idx], k);
        for (size_t r = 0; r < rows; r++) {
            quant_dequant_row(t->type, (const uint8_t *)t->data + r * sb, j->row, k);
            quant_quantize_row(j->dst_type[idx], j->row, (uint8_t *)dst + r * db, k);
        }
    }
    if (j->progress)
        j->progress(j->ud, idx + 1, j->n);
    return 0;
}

static int skip_ftype(const char *key, void *ud)
{
    return !strcmp(key, "general.file_type");
}

/* llama.cpp's use_more_bits: first and last eighth, and every third layer. */
static int more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int layer_of(const char *name)
{
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1)
        return -1;
    return l;
}

int kith_model_quantize(const char *in_path, const char *out_path, const char *type,
                        kith_progress_fn progress, void *ud, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!in_path || !out_path || !type)
        return KITH_EINVAL;
    uint32_t base;
    uint32_t ftype;
    int mostly_k_m = 0;
    if (!strcmp(type, "Q8_0")) {
        base = GGML_TYPE_Q8_0, ftype = 7;
    } else if (!strcmp(type, "Q4_0")) {
        base = GGML_TYPE_Q4_0, ftype = 2;
    } else if (!strcmp(type, "Q4_K") || !strcmp(type, "Q4_K_S")) {
        base = GGML_TYPE_Q4_K, ftype = 14;
    } else if (!strcmp(type, "Q4_K_M")) {
        base = GGML_TYPE_Q4_K, ftype = 15, mostly_k_m = 1;
    } else if (!strcmp(type, "Q6_K")) {
        base = GGML_TYPE_Q6_K, ftype = 18;
    } else if (!strcmp(type, "F16")) {
        base = GGML_TYPE_F16, ftype = 1;
    } else {
        snprintf(err, errlen, "type '%s' is not one of Q8_0, Q4_0, Q4_K, Q4_K_M, Q6_K, F16", type);
        return KITH_EINVAL;
    }
    gguf_file *in = NULL;
    gguf_writer *w = NULL;
    struct qjob j = {.progress = progress, .ud = ud};
    int rc = gguf_open(in_path, &in, err, errlen);
    if (rc)
        return rc;
    j.in = in;
    j.n = gguf_n_tensors(in);
    j.src = kith_calloc(j.n + 1, sizeof *j.src);
    j.dst_type = kith_calloc(j.n + 1, sizeof *j.dst_type);
    if (!j.src || !j.dst_type || gguf_writer_new(&w)) {
        rc = KITH_ENOMEM;
        goto out;
    }
    int n_layer = 0;
    for (size_t i = 0; i < j.n; i++) {
        int l = layer_of(gguf_tensor_at(in, i)->name);
        n_layer = l + 1 > n_layer ? l + 1 : n_layer;
    }
    if ((rc = gguf_writer_copy_kv(w, in, skip_ftype, NULL)) ||
        (rc = gguf_writer_add_u32(w, "general.file_type", ftype)))
        goto out;
    size_t max_k = 1;
    for (size_t i = 0; i < j.n; i++) {
        const struct gguf_tensor *t = gguf_tensor_at(in, i);
        const char *nm = t->name;
        size_t len = strlen(nm);
        int is_matrix = t->n_dims == 2 && len > 7 && !strcmp(nm + len - 7, ".weight") &&
                        !strstr(nm, "norm") && quant_supported(t->type);
        uint32_t dt = base;
        if (mostly_k_m) {
            int l = layer_of(nm);
            if (!strcmp(nm, "output.weight") ||
                ((strstr(nm, "attn_v.weight") || strstr(nm, "ffn_down.weight")) && l >= 0 &&
                 more_bits(l, n_layer)))
                dt = GGML_TYPE_Q6_K;
        }
        if (!is_matrix || t->ne[0] % quant_blck(dt) != 0) {
            /* odd widths: the 32-block type if the 256-block one does not fit */
            if (is_matrix && quant_blck(dt) == QK_K && t->ne[0] % QK == 0)
                dt = GGML_TYPE_Q8_0;
            else
                dt = t->type;
        }
        j.src[i] = t;
        j.dst_type[i] = dt;
        if (t->ne[0] > max_k)
            max_k = (size_t)t->ne[0];
        if ((rc = gguf_writer_add_tensor(w, nm, dt, t->n_dims, t->ne, NULL)))
            goto out;
    }
    j.row = kith_malloc(max_k * sizeof(float));
    if (!j.row) {
        rc = KITH_ENOMEM;
        goto out;
    }
    rc = gguf_writer_write(w, out_path, fill, &j, err, errlen);
out:
    if (rc && !err[0])
        snprintf(err, errlen, "%s", kith_strerror(rc));
    kith_free(j.row);
    kith_free(j.src);
    kith_free(j.dst_type);
    gguf_writer_free(w);
    gguf_close(in);
    return rc;
}
