/*
 * The text of a document at one version: UTF-8 in a list of chunks of at
 * most ROPE_CHUNK bytes, each knowing its code point count. Edits cluster
 * near the last one, so a cursor remembers the last chunk used; finding a
 * position is then a step or two, and an edit moves at most one chunk's
 * bytes. A chunk always holds whole code points.
 */
#include <string.h>

#include "crdt/crdt_int.h"

#define ROPE_CHUNK 1024
#define ROPE_FILL  768 /* new chunks are filled to this, leaving room to type */

int rope_init(rope *r)
{
    memset(r, 0, sizeof *r);
    return KITH_OK;
}

void rope_free(rope *r)
{
    for (size_t i = 0; i < r->n; i++)
        kith_free(r->chunks[i].bytes);
    kith_free(r->chunks);
    memset(r, 0, sizeof *r);
}

size_t rope_mem(const rope *r)
{
    return r->cap * sizeof(rope_chunk) + r->n * ROPE_CHUNK;
}

static size_t utf8_len_at(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    return 4;
}

/* Byte offset of code point @k in @c. ASCII-only chunks skip the scan. */
static size_t chunk_byte_at(const rope_chunk *c, size_t k)
{
    if (c->nbytes == c->ncp)
        return k;
    size_t off = 0;
    const unsigned char *s = (const unsigned char *)c->bytes;
    while (k--)
        off += utf8_len_at(s[off]);
    return off;
}

/* Finds the chunk holding code point @pos (or whose end is @pos): its index
 * and the code point where it starts. */
static size_t rope_locate(rope *r, size_t pos, size_t *start)
{
    size_t i = r->cur_chunk, s = r->cur_cp_start;
    if (i >= r->n) {
        i = 0;
        s = 0;
    }
    while (pos < s && i > 0) {
        i--;
        s -= r->chunks[i].ncp;
    }
    while (i + 1 < r->n && pos > s + r->chunks[i].ncp) {
        s += r->chunks[i].ncp;
        i++;
    }
    /* At a boundary, prefer the next chunk when this one is full. */
    if (pos == s + r->chunks[i].ncp && i + 1 < r->n && r->chunks[i].nbytes >= ROPE_FILL) {
        s += r->chunks[i].ncp;
        i++;
    }
    r->cur_chunk = i;
    r->cur_cp_start = s;
    *start = s;
    return i;
}

static int rope_insert_chunk(rope *r, size_t at)
{
    if (kith_grow((void **)&r->chunks, &r->cap, r->n + 1, sizeof(rope_chunk)))
        return KITH_ENOMEM;
    char *b = kith_malloc(ROPE_CHUNK);
    if (!b)
        return KITH_ENOMEM;
    memmove(r->chunks + at + 1, r->chunks + at, (r->n - at) * sizeof(rope_chunk));
    r->chunks[at] = (rope_chunk){0, 0, b};
    r->n++;
    return KITH_OK;
}

/* Appends @n bytes to chunk *@idx, opening new chunks after it as needed;
 * *@idx ends at the last chunk written. Splits only between code points. */
static int rope_stream(rope *r, size_t *idx, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        rope_chunk *c = &r->chunks[*idx];
        size_t room = (c->nbytes < ROPE_FILL ? ROPE_FILL : ROPE_CHUNK) - c->nbytes;
        size_t take = 0, cps = 0;
        while (i + take < n) {
            size_t l = utf8_len_at(u[i + take]);
            if (take + l > room)
                break;
            take += l;
            cps++;
        }
        if (take == 0) {
            if (rope_insert_chunk(r, *idx + 1))
                return KITH_ENOMEM;
            (*idx)++;
            continue;
        }
        memcpy(c->bytes + c->nbytes, s + i, take);
        c->nbytes += (uint32_t)take;
        c->ncp += (uint32_t)cps;
        i += take;
    }
    return KITH_OK;
}

/* Moves the second half of chunk @idx into a new chunk after it. */
static int rope_split(rope *r, size_t idx)
{
    if (rope_insert_chunk(r, idx + 1))
        return KITH_ENOMEM;
    rope_chunk *c = &r->chunks[idx], *d = &r->chunks[idx + 1];
    size_t cut = c->nbytes / 2;
    while (cut > 0 && ((unsigned char)c->bytes[cut] & 0xc0) == 0x80)
        cut--;
    size_t cps = (size_t)kith_utf8_count(c->bytes, cut);
    memcpy(d->bytes, c->bytes + cut, c->nbytes - cut);
    d->nbytes = c->nbytes - (uint32_t)cut;
    d->ncp = c->ncp - (uint32_t)cps;
    c->nbytes = (uint32_t)cut;
    c->ncp = (uint32_t)cps;
    return KITH_OK;
}

int rope_insert(rope *r, size_t pos, const char *s, size_t nbytes, size_t ncp)
{
    if (nbytes == 0)
        return KITH_OK;
    if (r->n == 0 && rope_insert_chunk(r, 0))
        return KITH_ENOMEM;
    size_t start, idx = rope_locate(r, pos, &start);
    rope_chunk *c = &r->chunks[idx];
    size_t off = chunk_byte_at(c, pos - start);
    if (c->nbytes + nbytes <= ROPE_CHUNK) {
        memmove(c->bytes + off + nbytes, c->bytes + off, c->nbytes - off);
        memcpy(c->bytes + off, s, nbytes);
        c->nbytes += (uint32_t)nbytes;
        c->ncp += (uint32_t)ncp;
    } else if (nbytes <= ROPE_CHUNK / 2) {
        /* Small insert into a full chunk: halve the chunk, then retry. */
        int rc = rope_split(r, idx);
        if (rc)
            return rc;
        return rope_insert(r, pos, s, nbytes, ncp);
    } else {
        /* Large insert: move the tail to its own chunk, then stream the new
         * text into this chunk and fresh ones between. */
        if (rope_insert_chunk(r, idx + 1))
            return KITH_ENOMEM;
        c = &r->chunks[idx];
        rope_chunk *t = &r->chunks[idx + 1];
        memcpy(t->bytes, c->bytes + off, c->nbytes - off);
        t->nbytes = c->nbytes - (uint32_t)off;
        t->ncp = c->ncp - (uint32_t)(pos - start);
        c->nbytes = (uint32_t)off;
        c->ncp = (uint32_t)(pos - start);
        size_t at = idx;
        if (rope_stream(r, &at, s, nbytes))
            return KITH_ENOMEM;
    }
    r->total_bytes += nbytes;
    r->total_cp += ncp;
    return KITH_OK;
}

void rope_delete(rope *r, size_t pos, size_t ncp)
{
    while (ncp > 0) {
        size_t start, idx = rope_locate(r, pos, &start);
        rope_chunk *c = &r->chunks[idx];
        size_t k = pos - start;
        if (k == c->ncp) { /* at the end of this chunk: go to the next */
            r->cur_chunk = idx + 1;
            r->cur_cp_start = start + c->ncp;
            continue;
        }
        size_t take = c->ncp - k < ncp ? c->ncp - k : ncp;
        size_t off = chunk_byte_at(c, k);
        size_t end;
        if (c->nbytes == c->ncp) {
            end = off + take;
        } else {
            end = off;
            for (size_t j = 0; j < take; j++)
                end += utf8_len_at((unsigned char)c->bytes[end]);
        }
        memmove(c->bytes + off, c->bytes + end, c->nbytes - end);
        c->nbytes -= (uint32_t)(end - off);
        c->ncp -= (uint32_t)take;
        r->total_bytes -= end - off;
        r->total_cp -= take;
        ncp -= take;
        if (c->nbytes > 0 && c->nbytes < ROPE_CHUNK / 4 && idx + 1 < r->n &&
            c->nbytes + r->chunks[idx + 1].nbytes <= ROPE_FILL) {
            /* Fold a small chunk into its successor so chunks stay large. */
            rope_chunk *d = &r->chunks[idx + 1];
            memmove(d->bytes + c->nbytes, d->bytes, d->nbytes);
            memcpy(d->bytes, c->bytes, c->nbytes);
            d->nbytes += c->nbytes;
            d->ncp += c->ncp;
            c->nbytes = 0;
            c->ncp = 0;
        }
        if (c->nbytes == 0 && r->n > 1) {
            kith_free(c->bytes);
            memmove(r->chunks + idx, r->chunks + idx + 1, (r->n - idx - 1) * sizeof(rope_chunk));
            r->n--;
            if (idx >= r->n) {
                idx = r->n - 1;
                start -= r->chunks[idx].ncp;
            }
            r->cur_chunk = idx;
            r->cur_cp_start = start;
        }
    }
}

int rope_copy(const rope *r, char **out, size_t *len)
{
    char *s = kith_malloc(r->total_bytes + 1);
    if (!s)
        return KITH_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < r->n; i++) {
        memcpy(s + o, r->chunks[i].bytes, r->chunks[i].nbytes);
        o += r->chunks[i].nbytes;
    }
    s[o] = 0;
    *out = s;
    *len = o;
    return KITH_OK;
}
