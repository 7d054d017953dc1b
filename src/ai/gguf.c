/*
 * gguf.c: GGUF v2/v3 reader. The file is mapped read-only; the header
 * (metadata and tensor infos) is parsed once into small tables that point into
 * the mapping, so tensor data is never copied. Because model files come from
 * the internet, every field is treated as hostile: lengths and counts are
 * checked against the bytes that remain before anything is allocated or
 * read, and each failure names what is wrong.
 */
#include "ai/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util_int.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian files with memcpy: port it before using a big-endian host"
#endif

struct strref {
    const char *p;
    uint64_t len;
};

struct gguf_kv {
    char *key;             /* owned copy, NUL-terminated */
    uint32_t type;
    const uint8_t *val;    /* value bytes in the file (after the type field) */
    size_t val_len;        /* bytes of the whole serialized value (for copying) */
    /* strings */
    const char *str;
    uint64_t str_len;
    /* arrays */
    uint32_t arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    struct strref *arr_strs; /* owned; only for string arrays */
};

struct gguf_file {
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    size_t n_kv;
    struct gguf_kv *kv;
    size_t n_tensors;
    struct gguf_tensor *tensors; /* names owned */
    /* open-addressing hash tables of indexes + 1 (0 = empty) */
    uint32_t *kv_hash;
    size_t kv_hash_cap;
    uint32_t *t_hash;
    size_t t_hash_cap;
};

/* ---- type tables ---- */

struct type_info {
    const char *name;
    uint8_t blck;      /* elements per block; 0 = unknown id */
    uint16_t size;     /* bytes per block */
};

/* Block layouts from ggml-common.h: e.g. Q4_K = d, dmin (2 x f16) + 12 bytes
 * of scales + 128 bytes of 4-bit quants for 256 weights = 144 bytes. */
static const struct type_info type_tab[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"F32", 1, 4},       [GGML_TYPE_F16] = {"F16", 1, 2},
    [GGML_TYPE_Q4_0] = {"Q4_0", 32, 18},   [GGML_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [GGML_TYPE_Q5_0] = {"Q5_0", 32, 22},   [GGML_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [GGML_TYPE_Q8_0] = {"Q8_0", 32, 34},   [GGML_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [GGML_TYPE_Q2_K] = {"Q2_K", 0, 84},    [GGML_TYPE_Q3_K] = {"Q3_K", 0, 110},
    [GGML_TYPE_Q4_K] = {"Q4_K", 0, 144},   [GGML_TYPE_Q5_K] = {"Q5_K", 0, 176},
    [GGML_TYPE_Q6_K] = {"Q6_K", 0, 210},   [GGML_TYPE_Q8_K] = {"Q8_K", 0, 292},
    [GGML_TYPE_I8] = {"I8", 1, 1},         [GGML_TYPE_I16] = {"I16", 1, 2},
    [GGML_TYPE_I32] = {"I32", 1, 4},       [GGML_TYPE_I64] = {"I64", 1, 8},
    [GGML_TYPE_F64] = {"F64", 1, 8},       [GGML_TYPE_BF16] = {"BF16", 1, 2},
};

/* K-quants use 256-element super-blocks; uint8_t cannot hold 256. */
static size_t type_blck(uint32_t t)
{
    if (t >= GGML_TYPE_COUNT || !type_tab[t].name)
        return 0;
    return type_tab[t].blck ? type_tab[t].blck : 256;
}

const char *gguf_ggml_type_name(uint32_t type)
{
    return type < GGML_TYPE_COUNT ? type_tab[type].name : NULL;
}

int gguf_ggml_type_block(uint32_t type, size_t *blck, size_t *type_size)
{
    size_t b = type_blck(type);
    if (!b)
        return KITH_EUNSUPPORTED;
    if (blck)
        *blck = b;
    if (type_size)
        *type_size = type_tab[type].size;
    return KITH_OK;
}

int gguf_ggml_row_size(uint32_t type, uint64_t ne0, size_t *out)
{
    size_t blck = type_blck(type);
    if (!blck)
        return KITH_EUNSUPPORTED;
    if (ne0 % blck)
        return KITH_ECORRUPT;
    uint64_t nb = ne0 / blck;
    if (nb > SIZE_MAX / type_tab[type].size)
        return KITH_ETOOBIG;
    *out = (size_t)nb * type_tab[type].size;
    return KITH_OK;
}

static const char *const gtype_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool",  "string", "array", "uint64", "int64", "float64",
};

const char *gguf_type_name(uint32_t type)
{
    return type < GGUF_TYPE_COUNT ? gtype_names[type] : "?";
}

/* Size of a scalar of @type; 0 for string, array and unknown. */
static size_t scalar_size(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---- errors ---- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A printable copy of a name from the file for messages: at most 64 bytes,
 * control bytes as '?', so a hostile name cannot garble a terminal. */
static const char *printable(const char *s, size_t len, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < cap && i < 64; i++)
        buf[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (len > 64 && n + 4 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    return buf;
}

/* ---- hashing ---- */

static uint64_t hash_str(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int hash_alloc(uint32_t **tab, size_t *cap, size_t n)
{
    size_t c = 8;
    while (c < n * 2)
        c <<= 1;
    *tab = kith_calloc(c, sizeof(**tab));
    if (!*tab)
        return KITH_ENOMEM;
    *cap = c;
    return KITH_OK;
}

/* Looks @name up; returns the index or -1. @get returns the name of slot i. */
static long hash_find(const uint32_t *tab, size_t cap, const char *name, size_t len,
                      const char *(*get)(const gguf_file *, size_t), const gguf_file *f)
{
    if (!tab)
        return -1;
    size_t mask = cap - 1;
    for (size_t i = hash_str(name, len) & mask;; i = (i + 1) & mask) {
        if (!tab[i])
            return -1;
        const char *k = get(f, tab[i] - 1);
        if (strlen(k) == len && memcmp(k, name, len) == 0)
            return (long)tab[i] - 1;
    }
}

static void hash_insert(uint32_t *tab, size_t cap, const char *name, size_t len, size_t idx)
{
    size_t mask = cap - 1;
    size_t i = hash_str(name, len) & mask;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = (uint32_t)idx + 1;
}

static const char *kv_name(const gguf_file *f, size_t i)
{
    return f->kv[i].key;
}

static const char *t_name(const gguf_file *f, size_t i)
{
    return f->tensors[i].name;
}

/* ---- the parser ---- */

struct rd {
    const uint8_t *p;
    size_t pos, len;
    char *err;
    size_t errlen;
};

static size_t rd_left(const struct rd *r)
{
    return r->len - r->pos;
}

static int rd_bytes(struct rd *r, void *dst, size_t n, const char *what)
{
    if (rd_left(r) < n) {
        seterr(r->err, r->errlen, "truncated file: %s past end of file (offset %zu)", what,
               r->pos);
        return KITH_ECORRUPT;
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return KITH_OK;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
    return rd_bytes(r, v, 4, what);
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
    return rd_bytes(r, v, 8, what);
}

/* A length-prefixed string: @s points into the buffer. */
static int rd_str(struct rd *r, const char **s, uint64_t *len, const char *what)
{
    int rc = rd_u64(r, len, what);
    if (rc)
        return rc;
    if (*len > rd_left(r)) {
        seterr(r->err, r->errlen, "%s: string of %llu bytes past end of file (offset %zu)", what,
               (unsigned long long)*len, r->pos);
        return KITH_ECORRUPT;
    }
    *s = (const char *)r->p + r->pos;
    r->pos += (size_t)*len;
    return KITH_OK;
}

static int parse_value(struct rd *r, struct gguf_kv *kv, const char *pkey)
{
    size_t start = r->pos;
    size_t sz;
    int rc;

    kv->val = r->p + r->pos;
    if (kv->type == GGUF_TYPE_STRING) {
        rc = rd_str(r, &kv->str, &kv->str_len, "string value");
        if (rc)
            goto ctx;
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        rc = rd_u32(r, &kv->arr_type, "array type");
        if (!rc)
            rc = rd_u64(r, &kv->arr_n, "array length");
        if (rc)
            goto ctx;
        if (kv->arr_type == GGUF_TYPE_ARRAY) {
            seterr(r->err, r->errlen, "key '%s': arrays of arrays are not supported", pkey);
            return KITH_EUNSUPPORTED;
        }
        if (kv->arr_type == GGUF_TYPE_STRING) {
            /* Each element takes at least its 8-byte length: bound n before allocating. */
            if (kv->arr_n > rd_left(r) / 8) {
                seterr(r->err, r->errlen,
                       "key '%s': array of %llu strings past end of file", pkey,
                       (unsigned long long)kv->arr_n);
                return KITH_ECORRUPT;
            }
            kv->arr_strs = kith_malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof(struct strref));
            if (!kv->arr_strs) {
                seterr(r->err, r->errlen, "key '%s': out of memory", pkey);
                return KITH_ENOMEM;
            }
            kv->arr_data = r->p + r->pos;
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                rc = rd_str(r, &kv->arr_strs[i].p, &kv->arr_strs[i].len, "array string");
                if (rc) {
                    seterr(r->err, r->errlen, "key '%s': element %llu: string past end of file",
                           pkey, (unsigned long long)i);
                    return rc;
                }
            }
        } else {
            sz = scalar_size(kv->arr_type);
            if (!sz) {
                seterr(r->err, r->errlen, "key '%s': unknown array element type %u", pkey,
                       kv->arr_type);
                return KITH_ECORRUPT;
            }
            if (kv->arr_n > rd_left(r) / sz) {
                seterr(r->err, r->errlen, "key '%s': array of %llu %s past end of file", pkey,
                       (unsigned long long)kv->arr_n, gguf_type_name(kv->arr_type));
                return KITH_ECORRUPT;
            }
            kv->arr_data = r->p + r->pos;
            r->pos += (size_t)kv->arr_n * sz;
        }
    } else {
        sz = scalar_size(kv->type);
        if (!sz) {
            seterr(r->err, r->errlen, "key '%s': unknown value type %u", pkey, kv->type);
            return KITH_ECORRUPT;
        }
        if (rd_left(r) < sz) {
            seterr(r->err, r->errlen, "key '%s': value past end of file", pkey);
            return KITH_ECORRUPT;
        }
        r->pos += sz;
    }
    kv->val_len = r->pos - start;
    return KITH_OK;
ctx:
    seterr(r->err, r->errlen, "key '%s': value past end of file", pkey);
    return rc;
}

static int parse(gguf_file *f, char *err, size_t errlen)
{
    struct rd r = {.p = f->base, .pos = 0, .len = f->size, .err = err, .errlen = errlen};
    char magic[4];
    uint64_t n_tensors, n_kv;
    char pbuf[80];
    int rc;

    if (f->size == 0) {
        seterr(err, errlen, "file is empty");
        return KITH_ECORRUPT;
    }
    if (f->size < 4 || (memcpy(magic, f->base, 4), memcmp(magic, GGUF_MAGIC, 4) != 0)) {
        seterr(err, errlen, "not a GGUF file (bad magic)");
        return KITH_ECORRUPT;
    }
    r.pos = 4;
    rc = rd_u32(&r, &f->version, "version");
    if (rc)
        return rc;
    if (f->version == 1) {
        seterr(err, errlen, "GGUF version 1 is not supported (only 2 and 3)");
        return KITH_EVERSION;
    }
    if ((f->version & 0xffff) == 0 && f->version) {
        /* A byte-swapped small number: a big-endian file. */
        seterr(err, errlen, "big-endian GGUF files are not supported");
        return KITH_EUNSUPPORTED;
    }
    if (f->version != 2 && f->version != 3) {
        seterr(err, errlen, "GGUF version %u is not supported (only 2 and 3)", f->version);
        return KITH_EVERSION;
    }
    rc = rd_u64(&r, &n_tensors, "tensor count");
    if (!rc)
        rc = rd_u64(&r, &n_kv, "metadata count");
    if (rc)
        return rc;
    /* A kv takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info
     * 8 + 4 + 8 + 4 + 8: bound the counts by what the file can hold. */
    if (n_kv > rd_left(&r) / 13) {
        seterr(err, errlen, "metadata count %llu exceeds what the file can hold",
               (unsigned long long)n_kv);
        return KITH_ECORRUPT;
    }
    if (n_tensors > rd_left(&r) / 32 || n_tensors > UINT32_MAX / 4) {
        seterr(err, errlen, "tensor count %llu exceeds what the file can hold",
               (unsigned long long)n_tensors);
        return KITH_ECORRUPT;
    }

    /* metadata */
    f->kv = kith_calloc(n_kv ? (size_t)n_kv : 1, sizeof(*f->kv));
    if (!f->kv || hash_alloc(&f->kv_hash, &f->kv_hash_cap, (size_t)n_kv))
        goto oom;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        const char *key;
        uint64_t klen;
        rc = rd_str(&r, &key, &klen, "metadata key");
        if (rc) {
            seterr(err, errlen, "metadata entry %zu: key past end of file", i);
            return rc;
        }
        printable(key, (size_t)klen, pbuf, sizeof(pbuf));
        if (klen == 0 || memchr(key, 0, (size_t)klen)) {
            seterr(err, errlen, "metadata entry %zu: empty key or NUL byte in key '%s'", i, pbuf);
            return KITH_ECORRUPT;
        }
        if (hash_find(f->kv_hash, f->kv_hash_cap, key, (size_t)klen, kv_name, f) >= 0) {
            seterr(err, errlen, "duplicate metadata key '%s'", pbuf);
            return KITH_ECORRUPT;
        }
        kv->key = kith_strndup(key, (size_t)klen);
        if (!kv->key)
            goto oom;
        f->n_kv = i + 1; /* from here on gguf_close frees it */
        rc = rd_u32(&r, &kv->type, "value type");
        if (rc) {
            seterr(err, errlen, "key '%s': type past end of file", pbuf);
            return rc;
        }
        rc = parse_value(&r, kv, pbuf);
        if (rc)
            return rc;
        hash_insert(f->kv_hash, f->kv_hash_cap, key, (size_t)klen, i);
    }
    {
        long ai = gguf_find_key(f, "general.alignment");
        if (ai >= 0) {
            uint32_t a;
            if (f->kv[ai].type != GGUF_TYPE_UINT32) {
                seterr(err, errlen, "general.alignment has type %s, expected uint32",
                       gguf_type_name(f->kv[ai].type));
                return KITH_ECORRUPT;
            }
            memcpy(&a, f->kv[ai].val, 4);
            if (a == 0 || (a & (a - 1)) != 0) {
                seterr(err, errlen, "general.alignment %u is not a power of two", a);
                return KITH_ECORRUPT;
            }
            f->alignment = a;
        }
    }

    /* tensor infos */
    f->tensors = kith_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(*f->tensors));
    if (!f->tensors || hash_alloc(&f->t_hash, &f->t_hash_cap, (size_t)n_tensors))
        goto oom;
    for (size_t i = 0; i < n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        const char *name;
        uint64_t nlen;
        uint32_t nd;
        rc = rd_str(&r, &name, &nlen, "tensor name");
        if (rc) {
            seterr(err, errlen, "tensor %zu: name past end of file", i);
            return rc;
        }
        printable(name, (size_t)nlen, pbuf, sizeof(pbuf));
        if (nlen > GGUF_MAX_NAME || memchr(name, 0, (size_t)nlen)) {
            seterr(err, errlen, "tensor %zu: name '%s' longer than %d bytes or with a NUL byte", i,
                   pbuf, GGUF_MAX_NAME);
            return KITH_ECORRUPT;
        }
        if (hash_find(f->t_hash, f->t_hash_cap, name, (size_t)nlen, t_name, f) >= 0) {
            seterr(err, errlen, "duplicate tensor name '%s'", pbuf);
            return KITH_ECORRUPT;
        }
        t->name = kith_strndup(name, (size_t)nlen);
        if (!t->name)
            goto oom;
        t->name_len = (size_t)nlen;
        f->n_tensors = i + 1;
        rc = rd_u32(&r, &nd, "tensor dims");
        if (rc)
            goto trunc_t;
        if (nd < 1 || nd > GGUF_MAX_DIMS) {
            seterr(err, errlen, "tensor '%s': %u dimensions (1 to %d supported)", pbuf, nd,
                   GGUF_MAX_DIMS);
            return KITH_ECORRUPT;
        }
        t->n_dims = (int)nd;
        uint64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims)
                continue;
            rc = rd_u64(&r, &t->ne[d], "tensor shape");
            if (rc)
                goto trunc_t;
            /* ggml holds ne as int64_t and multiplies them: keep the product in range. */
            if (t->ne[d] > INT64_MAX || (t->ne[d] && nel > (uint64_t)INT64_MAX / t->ne[d])) {
                seterr(err, errlen, "tensor '%s': shape overflows 64 bits", pbuf);
                return KITH_ECORRUPT;
            }
            nel *= t->ne[d];
        }
        rc = rd_u32(&r, &t->type, "tensor type");
        if (!rc)
            rc = rd_u64(&r, &t->offset, "tensor offset");
        if (rc)
            goto trunc_t;
        size_t blck = type_blck(t->type);
        if (!blck) {
            seterr(err, errlen, "tensor '%s': unsupported tensor type %u", pbuf, t->type);
            return KITH_EUNSUPPORTED;
        }
        if (t->ne[0] % blck) {
            seterr(err, errlen, "tensor '%s': row of %llu elements is not a multiple of the %s "
                   "block size %zu", pbuf, (unsigned long long)t->ne[0], type_tab[t->type].name,
                   blck);
            return KITH_ECORRUPT;
        }
        uint64_t nblocks = nel / blck;
        if (nblocks > SIZE_MAX / type_tab[t->type].size) {
            seterr(err, errlen, "tensor '%s': size overflows", pbuf);
            return KITH_ECORRUPT;
        }
        t->nbytes = (size_t)nblocks * type_tab[t->type].size;
        if (t->offset % f->alignment) {
            seterr(err, errlen, "tensor '%s': offset %llu is not a multiple of the alignment %zu",
                   pbuf, (unsigned long long)t->offset, f->alignment);
            return KITH_ECORRUPT;
        }
        hash_insert(f->t_hash, f->t_hash_cap, t->name, t->name_len, i);
        continue;
trunc_t:
        seterr(err, errlen, "tensor '%s': tensor info past end of file", pbuf);
        return rc;
    }

    /* data section: after the infos, padded to the alignment */
    {
        size_t pad = (f->alignment - r.pos % f->alignment) % f->alignment;
        f->data_offset = r.pos + pad;
        if (f->data_offset < r.pos || f->data_offset > f->size)
            f->data_offset = f->size; /* only zero-size tensors can then pass below */
        size_t avail = f->size - f->data_offset;
        for (size_t i = 0; i < f->n_tensors; i++) {
            struct gguf_tensor *t = &f->tensors[i];
            if (t->offset > avail || t->nbytes > avail - t->offset) {
                seterr(err, errlen, "tensor '%s': data past end of file (offset %llu + %zu bytes,"
                       " %zu bytes of data)", printable(t->name, t->name_len, pbuf, sizeof(pbuf)),
                       (unsigned long long)t->offset, t->nbytes, avail);
                return KITH_ECORRUPT;
            }
            t->data = f->base + f->data_offset + t->offset;
        }
    }
    return KITH_OK;
oom:
    seterr(err, errlen, "out of memory reading the GGUF header");
    return KITH_ENOMEM;
}

static int open_common(gguf_file *f, gguf_file **out, char *err, size_t errlen)
{
    int rc = parse(f, err, errlen);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return KITH_OK;
}

int gguf_open_mem(const void *buf, size_t len, gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!buf && len) {
        seterr(err, errlen, "no buffer");
        return KITH_EINVAL;
    }
    gguf_file *f = kith_calloc(1, sizeof(*f));
    if (!f) {
        seterr(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    f->base = buf;
    f->size = len;
    return open_common(f, out, err, errlen);
}

int gguf_open(const char *path, gguf_file **out, char *err, size_t errlen)
{
    struct stat st;
    void *map = NULL;
    int fd;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return KITH_EIO;
    }
    if (fstat(fd, &st) != 0) {
        seterr(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return KITH_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "'%s' is not a regular file", path);
        close(fd);
        return KITH_EIO;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        seterr(err, errlen, "'%s' is too large to map", path);
        close(fd);
        return KITH_ETOOBIG;
    }
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            seterr(err, errlen, "cannot map '%s': %s", path, strerror(errno));
            close(fd);
            return KITH_EIO;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    gguf_file *f = kith_calloc(1, sizeof(*f));
    if (!f) {
        if (map)
            munmap(map, (size_t)st.st_size);
        seterr(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    f->base = map;
    f->size = (size_t)st.st_size;
    f->mapped = map != NULL;
    return open_common(f, out, err, errlen);
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_kv; i++) {
        kith_free(f->kv[i].key);
        kith_free(f->kv[i].arr_strs);
    }
    kith_free(f->kv);
    for (size_t i = 0; i < f->n_tensors; i++)
        kith_free((char *)f->tensors[i].name);
    kith_free(f->tensors);
    kith_free(f->kv_hash);
    kith_free(f->t_hash);
    if (f->mapped)
        munmap((void *)f->base, f->size);
    kith_free(f);
}

uint32_t gguf_version(const gguf_file *f)
{
    return f->version;
}

size_t gguf_alignment(const gguf_file *f)
{
    return f->alignment;
}

const void *gguf_base(const gguf_file *f)
{
    return f->base;
}

size_t gguf_size(const gguf_file *f)
{
    return f->size;
}

size_t gguf_data_offset(const gguf_file *f)
{
    return f->data_offset;
}

/* ---- metadata access ---- */

size_t gguf_n_kv(const gguf_file *f)
{
    return f->n_kv;
}

long gguf_find_key(const gguf_file *f, const char *key)
{
    return hash_find(f->kv_hash, f->kv_hash_cap, key, strlen(key), kv_name, f);
}

const char *gguf_kv_key(const gguf_file *f, size_t i)
{
    return i < f->n_kv ? f->kv[i].key : NULL;
}

uint32_t gguf_kv_type(const gguf_file *f, size_t i)
{
    return i < f->n_kv ? f->kv[i].type : GGUF_TYPE_COUNT;
}

/* A number read from a scalar: integers keep sign and magnitude exactly. */
struct num {
    int is_float;
    int neg;      /* integer < 0: value is i */
    uint64_t u;   /* integer >= 0 */
    int64_t i;
    double d;
};

static int read_num(uint32_t type, const uint8_t *p, struct num *n)
{
    memset(n, 0, sizeof(*n));
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: n->u = p[0]; break;
    case GGUF_TYPE_INT8: { int8_t v; memcpy(&v, p, 1); n->i = v; break; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); n->u = v; break; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); n->i = v; break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); n->u = v; break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); n->i = v; break; }
    case GGUF_TYPE_UINT64: memcpy(&n->u, p, 8); break;
    case GGUF_TYPE_INT64: memcpy(&n->i, p, 8); break;
    case GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); n->d = v; n->is_float = 1; return 0; }
    case GGUF_TYPE_FLOAT64: memcpy(&n->d, p, 8); n->is_float = 1; return 0;
    default: return KITH_ECORRUPT;
    }
    switch (type) {
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        if (n->i < 0)
            n->neg = 1;
        else
            n->u = (uint64_t)n->i;
        break;
    default:
        n->i = n->u > INT64_MAX ? INT64_MAX : (int64_t)n->u;
        break;
    }
    n->d = n->neg ? (double)n->i : (double)n->u;
    return 0;
}

static int num_i64(const struct num *n, int64_t lo, int64_t hi, int64_t *out)
{
    if (n->is_float)
        return KITH_ECORRUPT;
    if (n->neg) {
        if (n->i < lo)
            return KITH_ERANGE;
        *out = n->i;
        return 0;
    }
    if (n->u > (uint64_t)hi)
        return KITH_ERANGE;
    *out = (int64_t)n->u;
    return 0;
}

static int num_u64(const struct num *n, uint64_t hi, uint64_t *out)
{
    if (n->is_float)
        return KITH_ECORRUPT;
    if (n->neg || n->u > hi)
        return KITH_ERANGE;
    *out = n->u;
    return 0;
}

static const struct gguf_kv *kv_by_key(const gguf_file *f, const char *key)
{
    long i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i];
}

static int kv_num(const struct gguf_kv *kv, struct num *n)
{
    if (!kv)
        return KITH_ENOTFOUND;
    return read_num(kv->type, kv->val, n);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    struct num n;
    uint64_t v;
    int rc = kv_num(kv_by_key(f, key), &n);
    if (!rc)
        rc = num_u64(&n, UINT32_MAX, &v);
    if (!rc)
        *out = (uint32_t)v;
    return rc;
}

int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out)
{
    struct num n;
    int64_t v;
    int rc = kv_num(kv_by_key(f, key), &n);
    if (!rc)
        rc = num_i64(&n, INT32_MIN, INT32_MAX, &v);
    if (!rc)
        *out = (int32_t)v;
    return rc;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    struct num n;
    int rc = kv_num(kv_by_key(f, key), &n);
    return rc ? rc : num_u64(&n, UINT64_MAX, out);
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out)
{
    struct num n;
    int rc = kv_num(kv_by_key(f, key), &n);
    return rc ? rc : num_i64(&n, INT64_MIN, INT64_MAX, out);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    struct num n;
    int rc = kv_num(kv_by_key(f, key), &n);
    if (!rc)
        *out = (float)n.d;
    return rc;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
    struct num n;
    int rc = kv_num(kv_by_key(f, key), &n);
    if (rc)
        return rc;
    if (n.is_float)
        return KITH_ECORRUPT;
    *out = n.neg || n.u != 0;
    return 0;
}

static int kv_str(const struct gguf_kv *kv, const char **s, size_t *len)
{
    if (!kv)
        return KITH_ENOTFOUND;
    if (kv->type != GGUF_TYPE_STRING)
        return KITH_ECORRUPT;
    *s = kv->str;
    *len = (size_t)kv->str_len;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **s, size_t *len)
{
    return kv_str(kv_by_key(f, key), s, len);
}

static int kv_arr(const gguf_file *f, const struct gguf_kv *kv, struct gguf_arr *out)
{
    if (!kv)
        return KITH_ENOTFOUND;
    if (kv->type != GGUF_TYPE_ARRAY)
        return KITH_ECORRUPT;
    out->type = kv->arr_type;
    out->n = kv->arr_n;
    out->data = kv->arr_data;
    out->file_ = f;
    out->kv_ = (size_t)(kv - f->kv);
    return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, struct gguf_arr *out)
{
    return kv_arr(f, kv_by_key(f, key), out);
}

int gguf_kv_get_i64(const gguf_file *f, size_t i, int64_t *out)
{
    struct num n;
    if (i >= f->n_kv)
        return KITH_ERANGE;
    int rc = kv_num(&f->kv[i], &n);
    return rc ? rc : num_i64(&n, INT64_MIN, INT64_MAX, out);
}

int gguf_kv_get_u64(const gguf_file *f, size_t i, uint64_t *out)
{
    struct num n;
    if (i >= f->n_kv)
        return KITH_ERANGE;
    int rc = kv_num(&f->kv[i], &n);
    return rc ? rc : num_u64(&n, UINT64_MAX, out);
}

int gguf_kv_get_f64(const gguf_file *f, size_t i, double *out)
{
    struct num n;
    if (i >= f->n_kv)
        return KITH_ERANGE;
    int rc = kv_num(&f->kv[i], &n);
    if (!rc)
        *out = n.d;
    return rc;
}

int gguf_kv_get_str(const gguf_file *f, size_t i, const char **s, size_t *len)
{
    return i < f->n_kv ? kv_str(&f->kv[i], s, len) : KITH_ERANGE;
}

int gguf_kv_get_arr(const gguf_file *f, size_t i, struct gguf_arr *out)
{
    return i < f->n_kv ? kv_arr(f, &f->kv[i], out) : KITH_ERANGE;
}

int gguf_arr_str(const struct gguf_arr *a, uint64_t i, const char **s, size_t *len)
{
    if (i >= a->n)
        return KITH_ERANGE;
    if (a->type != GGUF_TYPE_STRING || !a->file_)
        return KITH_ECORRUPT;
    const struct strref *r = &a->file_->kv[a->kv_].arr_strs[i];
    *s = r->p;
    *len = (size_t)r->len;
    return 0;
}

static int arr_num(const struct gguf_arr *a, uint64_t i, struct num *n)
{
    if (i >= a->n)
        return KITH_ERANGE;
    size_t sz = scalar_size(a->type);
    if (!sz)
        return KITH_ECORRUPT;
    return read_num(a->type, (const uint8_t *)a->data + (size_t)i * sz, n);
}

int gguf_arr_get_i64(const struct gguf_arr *a, uint64_t i, int64_t *out)
{
    struct num n;
    int rc = arr_num(a, i, &n);
    return rc ? rc : num_i64(&n, INT64_MIN, INT64_MAX, out);
}

int gguf_arr_get_i32(const struct gguf_arr *a, uint64_t i, int32_t *out)
{
    struct num n;
    int64_t v;
    int rc = arr_num(a, i, &n);
    if (!rc)
        rc = num_i64(&n, INT32_MIN, INT32_MAX, &v);
    if (!rc)
        *out = (int32_t)v;
    return rc;
}

int gguf_arr_get_f64(const struct gguf_arr *a, uint64_t i, double *out)
{
    struct num n;
    int rc = arr_num(a, i, &n);
    if (!rc)
        *out = n.d;
    return rc;
}

int gguf_arr_get_f32(const struct gguf_arr *a, uint64_t i, float *out)
{
    double d;
    int rc = gguf_arr_get_f64(a, i, &d);
    if (!rc)
        *out = (float)d;
    return rc;
}

/* ---- tensors ---- */

size_t gguf_n_tensors(const gguf_file *f)
{
    return f->n_tensors;
}

const struct gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    long i = hash_find(f->t_hash, f->t_hash_cap, name, strlen(name), t_name, f);
    return i < 0 ? NULL : &f->tensors[i];
}

/* For the writer's copy_kv: the raw serialized value of entry @i. */
int gguf_kv_raw_(const gguf_file *f, size_t i, uint32_t *type, const void **val, size_t *len);
int gguf_kv_raw_(const gguf_file *f, size_t i, uint32_t *type, const void **val, size_t *len)
{
    if (i >= f->n_kv)
        return KITH_ERANGE;
    *type = f->kv[i].type;
    *val = f->kv[i].val;
    *len = f->kv[i].val_len;
    return 0;
}
