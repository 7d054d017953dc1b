/*
 * gguf_write.c: a small GGUF v3 writer. Metadata values are serialized when
 * added (so the caller's strings need not live on); tensor data is borrowed
 * or produced by a fill callback at write time, so `kith ai quantize` can
 * stream a model larger than memory one tensor at a time. Files are written
 * to a temporary name, fsync'd and renamed, so a failed write leaves nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ai/gguf.h"
#include "util/util_int.h"

int gguf_kv_raw_(const gguf_file *f, size_t i, uint32_t *type, const void **val, size_t *len);

struct wkv {
    char *key;
    uint32_t type;
    uint8_t *blob; /* serialized value as it goes after the type field */
    size_t blob_len;
};

struct wtensor {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
    uint64_t offset;
};

struct gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    size_t alignment;
};

int gguf_writer_new(gguf_writer **out)
{
    *out = kith_calloc(1, sizeof(**out));
    if (!*out)
        return KITH_ENOMEM;
    (*out)->alignment = GGUF_DEFAULT_ALIGNMENT;
    return KITH_OK;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        kith_free(w->kv[i].key);
        kith_free(w->kv[i].blob);
    }
    for (size_t i = 0; i < w->n_t; i++)
        kith_free(w->t[i].name);
    kith_free(w->kv);
    kith_free(w->t);
    kith_free(w);
}

static int add_raw(gguf_writer *w, const char *key, uint32_t type, const void *a, size_t alen,
                   const void *b, size_t blen)
{
    if (!key || !*key)
        return KITH_EINVAL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0)
            return KITH_EINVAL;
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t al;
        if (type != GGUF_TYPE_UINT32 || alen != 4)
            return KITH_EINVAL;
        memcpy(&al, a, 4);
        if (al == 0 || (al & (al - 1)))
            return KITH_EINVAL;
        w->alignment = al;
    }
    if (kith_grow((void **)&w->kv, &w->cap_kv, w->n_kv + 1, sizeof(*w->kv)))
        return KITH_ENOMEM;
    struct wkv *kv = &w->kv[w->n_kv];
    kv->key = kith_strndup(key, strlen(key));
    kv->blob = kith_malloc(alen + blen ? alen + blen : 1);
    if (!kv->key || !kv->blob) {
        kith_free(kv->key);
        kith_free(kv->blob);
        return KITH_ENOMEM;
    }
    if (alen)
        memcpy(kv->blob, a, alen);
    if (blen)
        memcpy(kv->blob + alen, b, blen);
    kv->blob_len = alen + blen;
    kv->type = type;
    w->n_kv++;
    return KITH_OK;
}

#define ADD_SCALAR(fn, ctype, gtype)                                     \
    int fn(gguf_writer *w, const char *key, ctype v)                     \
    {                                                                    \
        return add_raw(w, key, gtype, &v, sizeof(v), NULL, 0);           \
    }
ADD_SCALAR(gguf_writer_add_u8, uint8_t, GGUF_TYPE_UINT8)
ADD_SCALAR(gguf_writer_add_i8, int8_t, GGUF_TYPE_INT8)
ADD_SCALAR(gguf_writer_add_u16, uint16_t, GGUF_TYPE_UINT16)
ADD_SCALAR(gguf_writer_add_i16, int16_t, GGUF_TYPE_INT16)
ADD_SCALAR(gguf_writer_add_u32, uint32_t, GGUF_TYPE_UINT32)
ADD_SCALAR(gguf_writer_add_i32, int32_t, GGUF_TYPE_INT32)
ADD_SCALAR(gguf_writer_add_u64, uint64_t, GGUF_TYPE_UINT64)
ADD_SCALAR(gguf_writer_add_i64, int64_t, GGUF_TYPE_INT64)
ADD_SCALAR(gguf_writer_add_f32, float, GGUF_TYPE_FLOAT32)
ADD_SCALAR(gguf_writer_add_f64, double, GGUF_TYPE_FLOAT64)
#undef ADD_SCALAR

int gguf_writer_add_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return add_raw(w, key, GGUF_TYPE_BOOL, &b, 1, NULL, 0);
}

int gguf_writer_add_strn(gguf_writer *w, const char *key, const char *s, size_t len)
{
    uint64_t n = len;
    return add_raw(w, key, GGUF_TYPE_STRING, &n, 8, s, len);
}

int gguf_writer_add_str(gguf_writer *w, const char *key, const char *s)
{
    return gguf_writer_add_strn(w, key, s, strlen(s));
}

static size_t elem_size(uint32_t type)
{
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

int gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t type, const void *data,
                        size_t n)
{
    size_t sz = elem_size(type);
    uint8_t hdr[12];
    uint64_t n64 = n;
    if (!sz || (n && !data) || n > SIZE_MAX / sz)
        return KITH_EINVAL;
    memcpy(hdr, &type, 4);
    memcpy(hdr + 4, &n64, 8);
    return add_raw(w, key, GGUF_TYPE_ARRAY, hdr, 12, data, n * sz);
}

int gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            const size_t *lens, size_t n)
{
    size_t total = 12, pos;
    uint8_t *buf;
    uint32_t t = GGUF_TYPE_STRING;
    uint64_t n64 = n;
    int rc;
    for (size_t i = 0; i < n; i++)
        total += 8 + (lens ? lens[i] : strlen(strs[i]));
    buf = kith_malloc(total);
    if (!buf)
        return KITH_ENOMEM;
    memcpy(buf, &t, 4);
    memcpy(buf + 4, &n64, 8);
    pos = 12;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        memcpy(buf + pos, &l, 8);
        if (l)
            memcpy(buf + pos + 8, strs[i], (size_t)l);
        pos += 8 + (size_t)l;
    }
    rc = add_raw(w, key, GGUF_TYPE_ARRAY, buf, total, NULL, 0);
    kith_free(buf);
    return rc;
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src,
                        int (*skip)(const char *key, void *ud), void *ud)
{
    for (size_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_kv_key(src, i);
        uint32_t type;
        const void *val;
        size_t len;
        if (skip && skip(key, ud))
            continue;
        int rc = gguf_kv_raw_(src, i, &type, &val, &len);
        if (!rc)
            rc = add_raw(w, key, type, val, len, NULL, 0);
        if (rc)
            return rc;
    }
    return KITH_OK;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims,
                           const uint64_t *ne, const void *data)
{
    size_t blck, tsize;
    uint64_t nel = 1;
    if (!name || strlen(name) > GGUF_MAX_NAME || n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return KITH_EINVAL;
    if (gguf_ggml_type_block(type, &blck, &tsize))
        return KITH_EINVAL;
    if (ne[0] % blck)
        return KITH_EINVAL;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] > INT64_MAX || (ne[d] && nel > (uint64_t)INT64_MAX / ne[d]))
            return KITH_EINVAL;
        nel *= ne[d];
    }
    if (nel / blck > SIZE_MAX / tsize)
        return KITH_EINVAL;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return KITH_EINVAL;
    if (kith_grow((void **)&w->t, &w->cap_t, w->n_t + 1, sizeof(*w->t)))
        return KITH_ENOMEM;
    struct wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof(*t));
    t->name = kith_strndup(name, strlen(name));
    if (!t->name)
        return KITH_ENOMEM;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = (size_t)(nel / blck) * tsize;
    w->n_t++;
    return KITH_OK;
}

/* ---- output ---- */

/* Where bytes go: a FILE or a growing buffer. Errors are sticky. */
struct sink {
    FILE *fp;
    uint8_t *buf;
    size_t len, cap;
    int rc;
};

static void put(struct sink *s, const void *p, size_t n)
{
    if (s->rc || !n)
        return;
    if (s->fp) {
        if (fwrite(p, 1, n, s->fp) != n)
            s->rc = KITH_EIO;
        return;
    }
    if (kith_grow((void **)&s->buf, &s->cap, s->len + n, 1)) {
        s->rc = KITH_ENOMEM;
        return;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put_u32(struct sink *s, uint32_t v)
{
    put(s, &v, 4);
}

static void put_u64(struct sink *s, uint64_t v)
{
    put(s, &v, 8);
}

static void put_pad(struct sink *s, size_t *pos, size_t align)
{
    static const uint8_t zeros[64];
    size_t pad = (align - *pos % align) % align;
    *pos += pad;
    while (pad) {
        size_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);
        put(s, zeros, n);
        pad -= n;
    }
}

static int emit(gguf_writer *w, struct sink *s, gguf_fill_fn fill, void *ud)
{
    size_t pos = 0;
    void *tmp = NULL;
    size_t tmp_cap = 0;
    int rc = KITH_OK;

    /* offsets, each tensor padded to the alignment */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        if (!w->t[i].data && !fill)
            return KITH_EINVAL;
        w->t[i].offset = off;
        off += w->t[i].nbytes;
        off += (w->alignment - off % w->alignment) % w->alignment;
    }

    put(s, GGUF_MAGIC, 4);
    put_u32(s, 3);
    put_u64(s, w->n_t);
    put_u64(s, w->n_kv);
    pos = 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t kl = strlen(w->kv[i].key);
        put_u64(s, kl);
        put(s, w->kv[i].key, kl);
        put_u32(s, w->kv[i].type);
        put(s, w->kv[i].blob, w->kv[i].blob_len);
        pos += 8 + kl + 4 + w->kv[i].blob_len;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        put_u64(s, nl);
        put(s, t->name, nl);
        put_u32(s, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(s, t->ne[d]);
        put_u32(s, t->type);
        put_u64(s, t->offset);
        pos += 8 + nl + 4 + 8 * (size_t)t->n_dims + 4 + 8;
    }
    put_pad(s, &pos, w->alignment);
    for (size_t i = 0; i < w->n_t && !s->rc; i++) {
        const struct wtensor *t = &w->t[i];
        const void *data = t->data;
        if (!data) {
            if (kith_grow(&tmp, &tmp_cap, t->nbytes ? t->nbytes : 1, 1)) {
                rc = KITH_ENOMEM;
                goto out;
            }
            rc = fill(ud, i, tmp, t->nbytes);
            if (rc)
                goto out;
            data = tmp;
        }
        put(s, data, t->nbytes);
        pos += t->nbytes;
        put_pad(s, &pos, w->alignment);
    }
    rc = s->rc;
out:
    kith_free(tmp);
    return rc;
}

int gguf_writer_write_mem(gguf_writer *w, gguf_fill_fn fill, void *ud, void **out, size_t *len)
{
    struct sink s = {0};
    int rc = emit(w, &s, fill, ud);
    *out = NULL;
    *len = 0;
    if (rc) {
        kith_free(s.buf);
        return rc;
    }
    *out = s.buf ? (void *)s.buf : kith_malloc(1);
    if (!*out)
        return KITH_ENOMEM;
    *len = s.len;
    return KITH_OK;
}

int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *ud, char *err,
                      size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = kith_malloc(plen + 16);
    struct sink s = {0};
    int fd = -1, rc;
    if (!tmp) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot create '%s': %s", tmp, strerror(errno));
        kith_free(tmp);
        return KITH_EIO;
    }
    /* mkstemp makes 0600 files; a model file is not secret */
    (void)fchmod(fd, 0644);
    s.fp = fdopen(fd, "wb");
    if (!s.fp) {
        close(fd);
        rc = KITH_EIO;
        goto fail;
    }
    rc = emit(w, &s, fill, ud);
    if (!rc && (fflush(s.fp) != 0 || fsync(fileno(s.fp)) != 0))
        rc = KITH_EIO;
    if (fclose(s.fp) != 0 && !rc)
        rc = KITH_EIO;
    if (rc)
        goto fail;
    if (rename(tmp, path) != 0) {
        rc = KITH_EIO;
        goto fail;
    }
    kith_free(tmp);
    return KITH_OK;
fail:
    if (err && errlen) {
        if (rc == KITH_EIO)
            snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        else
            snprintf(err, errlen, "cannot write '%s': %s", path, kith_strerror(rc));
    }
    unlink(tmp);
    kith_free(tmp);
    return rc;
}
