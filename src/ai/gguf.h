/*
 * gguf.h: internal reader and writer of GGUF v2/v3 files (the llama.cpp model
 * format). The reader parses the header over a read-only mmap (or a caller's
 * buffer) without copying tensor data; every count, length, offset, type and
 * dimension is validated before use, and a bad file gets a negative kith_err
 * plus a message naming what is wrong. The writer builds small or streamed
 * GGUF files for tests, fuzz seeds, `kith ai quantize` and bench scripts.
 *
 * Not public API: used by src/ai/ (engine, tokenizer) and tests only.
 * Thread rule: a gguf_file is immutable after open; any number of threads may
 * read it at once. A gguf_writer belongs to one thread.
 */
#ifndef KITH_AI_GGUF_H
#define KITH_AI_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"

#define GGUF_MAGIC             "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS          4
/* ggml's GGML_MAX_NAME is 64 including the NUL; files over it do not load in llama.cpp. */
#define GGUF_MAX_NAME          63

/* Metadata value types, as numbered in the file. */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

/* Tensor element types: ggml's ids (ggml.h enum ggml_type); the ids are the file format. */
enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_COUNT = 40 /* bound for tables; ids at or over it are rejected */
};

typedef struct gguf_file gguf_file;

/* A tensor of an open file. All fields point into the file's memory and are
 * borrowed: valid until gguf_close(). ne[] beyond n_dims are 1. */
struct gguf_tensor {
    const char *name;  /* NUL-terminated */
    size_t name_len;
    uint32_t type;     /* enum ggml_type */
    int n_dims;        /* 1..GGUF_MAX_DIMS */
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t offset;   /* from the start of the data section */
    const void *data;  /* base + data offset + offset; aligned as the file says */
    size_t nbytes;     /* validated: data + nbytes is inside the file */
};

/* A metadata array. For numeric and bool elements, data points at n packed
 * little-endian elements (possibly unaligned: read with the gguf_arr_get_*
 * helpers or memcpy). For strings, use gguf_arr_str(). Borrowed from the file. */
struct gguf_arr {
    uint32_t type;     /* element type, enum gguf_type; never ARRAY */
    uint64_t n;
    const void *data;
    const gguf_file *file_; /* private */
    size_t kv_;             /* private */
};

/* ---- types ---- */

/* "Q4_K" etc., or NULL for an unknown id. Static storage. */
const char *gguf_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block of @type; KITH_EUNSUPPORTED for unknown ids. */
int gguf_ggml_type_block(uint32_t type, size_t *blck, size_t *type_size);
/* Bytes of a row of @ne0 elements of @type: KITH_ECORRUPT if ne0 is not a
 * multiple of the block size, KITH_ETOOBIG on overflow, KITH_EUNSUPPORTED. */
int gguf_ggml_row_size(uint32_t type, uint64_t ne0, size_t *out);
/* "uint32", "string" ...; "?" for out-of-range. Static storage. */
const char *gguf_type_name(uint32_t type);

/* ---- reading ---- */

/* Maps @path read-only and parses its header. On success *out is the file,
 * closed by gguf_close(). On failure *out is NULL, nothing needs freeing, the
 * return is KITH_EIO (cannot open/map), KITH_ECORRUPT (malformed, truncated),
 * KITH_EVERSION (not v2/v3), KITH_EUNSUPPORTED (e.g. unknown tensor type,
 * big-endian) or KITH_ENOMEM, and @err (if non-NULL) holds a one-line message
 * ("tensor 'blk.0.attn_q.weight': data past end of file"). */
int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);
/* As gguf_open over @len bytes at @buf, which is borrowed (not copied) and
 * must outlive the file. */
int gguf_open_mem(const void *buf, size_t len, gguf_file **out, char *err, size_t errlen);
/* Frees @f and unmaps it; NULL is fine. Every pointer obtained from @f dies. */
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
/* general.alignment or 32. */
size_t gguf_alignment(const gguf_file *f);
/* Whole file (or buffer) and the offset of the tensor data section in it. */
const void *gguf_base(const gguf_file *f);
size_t gguf_size(const gguf_file *f);
size_t gguf_data_offset(const gguf_file *f);

/* ---- metadata ---- */

size_t gguf_n_kv(const gguf_file *f);
/* Index of @key or -1. Keys are unique (duplicates are rejected at open). */
long gguf_find_key(const gguf_file *f, const char *key);
/* Key of entry @i (NUL-terminated, borrowed) or NULL if i is out of range. */
const char *gguf_kv_key(const gguf_file *f, size_t i);
/* Value type of entry @i; GGUF_TYPE_COUNT if out of range. */
uint32_t gguf_kv_type(const gguf_file *f, size_t i);

/* Typed getters by key. Return 0 and set *out; KITH_ENOTFOUND if the key is
 * absent (*out untouched, so callers can preset a default); KITH_ECORRUPT if
 * the value has an incompatible type; KITH_ERANGE if an integer does not fit.
 * Integer getters accept any integer type (and bool as 0/1); f32 accepts
 * float32, float64 and integers. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
/* String value: *s points into the file (NOT NUL-terminated), *len bytes.
 * Borrowed until gguf_close(). */
int gguf_get_str(const gguf_file *f, const char *key, const char **s, size_t *len);
/* Array value (KITH_ECORRUPT if the value is not an array). */
int gguf_get_arr(const gguf_file *f, const char *key, struct gguf_arr *out);
/* Same getters by entry index (for walking all metadata); KITH_ERANGE if i is out of range. */
int gguf_kv_get_i64(const gguf_file *f, size_t i, int64_t *out);
int gguf_kv_get_u64(const gguf_file *f, size_t i, uint64_t *out);
int gguf_kv_get_f64(const gguf_file *f, size_t i, double *out);
int gguf_kv_get_str(const gguf_file *f, size_t i, const char **s, size_t *len);
int gguf_kv_get_arr(const gguf_file *f, size_t i, struct gguf_arr *out);

/* Element @i of an array. String arrays: *s into the file, not NUL-terminated.
 * Numeric: integer elements coerced with a range check (KITH_ERANGE), floats
 * for get_f32/f64. KITH_ERANGE if i >= n, KITH_ECORRUPT on a type mismatch. */
int gguf_arr_str(const struct gguf_arr *a, uint64_t i, const char **s, size_t *len);
int gguf_arr_get_i64(const struct gguf_arr *a, uint64_t i, int64_t *out);
int gguf_arr_get_i32(const struct gguf_arr *a, uint64_t i, int32_t *out);
int gguf_arr_get_f32(const struct gguf_arr *a, uint64_t i, float *out);
int gguf_arr_get_f64(const struct gguf_arr *a, uint64_t i, double *out);

/* ---- tensors ---- */

size_t gguf_n_tensors(const gguf_file *f);
/* Tensor @i, or NULL if out of range. Borrowed until gguf_close(). */
const struct gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
/* Tensor named @name, or NULL. Borrowed until gguf_close(). */
const struct gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- writing ---- */

typedef struct gguf_writer gguf_writer;

/* New empty writer (version 3, alignment 32 unless general.alignment is
 * added as a uint32). Free with gguf_writer_free(). 0 or KITH_ENOMEM. */
int gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);

/* Metadata, written in the order added. Keys and strings are copied. Adding a
 * key twice is KITH_EINVAL. */
int gguf_writer_add_u8(gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_add_i8(gguf_writer *w, const char *key, int8_t v);
int gguf_writer_add_u16(gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_add_i16(gguf_writer *w, const char *key, int16_t v);
int gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_add_i64(gguf_writer *w, const char *key, int64_t v);
int gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_add_f64(gguf_writer *w, const char *key, double v);
int gguf_writer_add_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s);
int gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len);
/* Array of @n numeric/bool elements of @type laid out natively (host is
 * little-endian, as GGUF), copied. */
int gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t type, const void *data,
                        size_t n);
/* Array of @n strings; @lens may be NULL for NUL-terminated strings. Copied. */
int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            const size_t *lens, size_t n);
/* Copies every metadata entry of @src (except those for which @skip returns
 * nonzero, if given) into @w: used by quantize to carry a model's metadata. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src,
                        int (*skip)(const char *key, void *ud), void *ud);

/* Adds a tensor. @ne has @n_dims entries (1..4); ne[0] must be a multiple of
 * the type's block size. @data (nbytes as the type says) is BORROWED and must
 * stay valid until gguf_writer_write*(); it may be NULL when the write call
 * gets a fill callback that produces the bytes then (streaming, for
 * quantizing models larger than memory). KITH_EINVAL on a bad shape/type or a
 * duplicate name. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims,
                           const uint64_t *ne, const void *data);

/* Fills @dst (@nbytes) with the bytes of tensor @idx (in the order added).
 * Returns 0 or a negative kith_err that aborts the write. */
typedef int (*gguf_fill_fn)(void *ud, size_t idx, void *dst, size_t nbytes);

/* Writes the file to @path (via a temporary then rename, so a failed write
 * leaves no half file). @fill may be NULL if every tensor has data. Errors:
 * KITH_EIO with @err naming the path and cause, KITH_EINVAL (tensor without
 * data and no @fill), or @fill's error. */
int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *ud, char *err,
                      size_t errlen);
/* Writes into a new buffer: *out (caller frees with kith_free()), *len. */
int gguf_writer_write_mem(gguf_writer *w, gguf_fill_fn fill, void *ud, void **out, size_t *len);

#endif
