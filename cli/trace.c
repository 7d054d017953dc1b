/*
 * Editing-trace loader (see trace.h). The file is read whole through zlib's
 * gzread, which also reads uncompressed files as they are; the top level is
 * walked by hand and each txn is parsed with jansson, checked field by field,
 * copied into flat arrays and freed before the next (load_stream says why).
 * Everything a file controls is checked: a bad trace gets a message naming
 * the txn and patch, never a crash.
 */
#include "cli/trace.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A bound from no format but from sense (agents are interned one by one). */
#define TRACE_MAX_AGENTS ((uint32_t)1 << 20)

struct loader {
    struct trace *t;
    char *err;
    size_t errlen;
    size_t cap_patches, cap_txns, cap_parents, cap_text;
};

static int fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Grows *@p (elements of @size) so it holds at least @need; doubling keeps the
 * single-pass parse linear, and trace_load trims the slack at the end. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return -1;
        n *= 2;
    }
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Code points in @len bytes of @s, or -1 if @s is not valid UTF-8 (overlong
 * forms, surrogates and values past U+10FFFF are invalid too). */
static long long utf8_count(const unsigned char *s, size_t len)
{
    long long n = 0;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return -1;
        }
        if (len - i <= k)
            return -1;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += k + 1;
        n++;
    }
    return n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so timestamps parse without the locale-bound timegm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Milliseconds since the epoch of an RFC 3339 time ("2021-04-19T06:06:58.219Z",
 * "1970-01-01T00:00:00+00:00"). Times only stamp changes, so one that does not
 * parse is 0 rather than an error. */
static int64_t parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, ms = 0;
    if (strlen(s) < 19 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    s += 19;
    if (*s == '.') {
        int scale = 100;
        for (s++; *s >= '0' && *s <= '9'; s++) {
            ms += (*s - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off = 0;
    if (*s == '+' || *s == '-') {
        int oh, om;
        if (digits(s + 1, 2, &oh) || s[3] != ':' || digits(s + 4, 2, &om))
            return 0;
        off = (oh * 60 + om) * 60 * (*s == '-' ? -1 : 1);
    } else if (*s != 'Z' && *s != 'z' && *s != '\0') {
        return 0;
    }
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return secs * 1000 + ms;
}

/* Reads all of @path, decompressing if it is gzip, into *@out (the caller's).
 * Returns 0, -1 on error, or 1 when a gzip stream ends early: *@out then holds
 * what was decompressed, so the parse can say which txn the file stops in. */
static int read_all(struct loader *ld, const char *path, char **out, size_t *len)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return fail(ld, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int rc = -1;
    for (;;) {
        if (n == cap) {
            if (cap >= TRACE_MAX_BYTES) {
                fail(ld, "larger than %zu MiB uncompressed", TRACE_MAX_BYTES >> 20);
                goto out;
            }
            if (grow((void **)&buf, &cap, n < 65536 ? 65536 : n + 1, 1)) {
                fail(ld, "out of memory");
                goto out;
            }
        }
        size_t want = cap - n < INT_MAX ? cap - n : INT_MAX;
        int r = gzread(f, buf + n, (unsigned)want);
        if (r <= 0)
            break; /* end of file, or an error that gzerror reports */
        n += (size_t)r;
    }
    /* A cut gzip stream reads as a short file with Z_BUF_ERROR set, so the
     * state is checked after the loop, not only on a negative return. */
    int zerr;
    const char *msg = gzerror(f, &zerr);
    if (zerr == Z_BUF_ERROR) {
        rc = 1;
    } else if (zerr != Z_OK) {
        size_t plen = strlen(path);
        if (zerr == Z_ERRNO)
            msg = strerror(errno);
        else if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2))
            msg += plen + 2; /* zlib prefixes the path, which the caller prints */
        fail(ld, "read failed: %s", msg);
        goto out;
    } else {
        rc = 0;
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    gzclose_r(f); /* read errors were all seen through gzerror above */
    free(buf);
    return rc;
}

/* A JSON integer in [0, @max], else -1. */
static long long get_uint(const json_t *v, long long max)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 || x > max ? -1 : (long long)x;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int load_patch(struct loader *ld, size_t ti, size_t pi, const json_t *jp, uint64_t *doclen)
{
    struct trace *t = ld->t;
    if (!json_is_array(jp) || json_array_size(jp) < 3)
        return fail(ld, "txn %zu patch %zu: not an array [position, deleted, inserted]", ti, pi);
    const json_t *jpos = json_array_get(jp, 0), *jdel = json_array_get(jp, 1),
                 *jins = json_array_get(jp, 2);
    long long pos = get_uint(jpos, LLONG_MAX), del = get_uint(jdel, LLONG_MAX);
    /* A file under TRACE_MAX_BYTES cannot build a document of 2^32 code
     * points, so larger values are out of range whatever the version. */
    if (pos < 0)
        return fail(ld, "txn %zu patch %zu: position is %s, not a non-negative integer", ti, pi,
                    json_is_integer(jpos) ? "negative" : type_name(jpos));
    if (del < 0)
        return fail(ld, "txn %zu patch %zu: delete count is %s, not a non-negative integer", ti, pi,
                    json_is_integer(jdel) ? "negative" : type_name(jdel));
    if (pos > UINT32_MAX)
        return fail(ld, "txn %zu patch %zu: position %lld out of range", ti, pi, pos);
    if (del > UINT32_MAX)
        return fail(ld, "txn %zu patch %zu: delete count %lld out of range", ti, pi, del);
    if (!json_is_string(jins))
        return fail(ld, "txn %zu patch %zu: inserted text is %s, not a string", ti, pi,
                    type_name(jins));
    const char *s = json_string_value(jins);
    size_t len = json_string_length(jins);
    long long cps = utf8_count((const unsigned char *)s, len);
    if (cps < 0)
        return fail(ld, "txn %zu patch %zu: inserted text is not valid UTF-8", ti, pi);

    /* A sequential trace's running length is known here, so positions are
     * checked now; a concurrent one's depends on the merge of its parents,
     * which only the engine knows (it answers KITH_ERANGE). */
    if (t->kind == TRACE_SEQUENTIAL) {
        if ((uint64_t)pos > *doclen)
            return fail(ld, "txn %zu patch %zu: position %lld past end %llu", ti, pi, pos,
                        (unsigned long long)*doclen);
        if ((uint64_t)del > *doclen - (uint64_t)pos)
            return fail(ld, "txn %zu patch %zu: delete of %lld at %lld past end %llu", ti, pi, del,
                        pos, (unsigned long long)*doclen);
        *doclen = *doclen - (uint64_t)del + (uint64_t)cps;
    }

    if (grow((void **)&t->patches, &ld->cap_patches, t->npatches + 1, sizeof *t->patches) ||
        grow((void **)&t->text, &ld->cap_text, t->text_len + len + 1, 1))
        return fail(ld, "out of memory");
    struct trace_patch *p = &t->patches[t->npatches++];
    p->pos = (uint32_t)pos;
    p->del = (uint32_t)del;
    p->ins_off = (uint32_t)t->text_len; /* < TRACE_MAX_BYTES, the file's size */
    p->ins_len = (uint32_t)len;
    memcpy(t->text + t->text_len, s, len);
    t->text_len += len;
    return 0;
}

static int load_txn(struct loader *ld, size_t ti, const json_t *jt, uint64_t *doclen)
{
    struct trace *t = ld->t;
    if (!json_is_object(jt))
        return fail(ld, "txn %zu: is %s, not an object", ti, type_name(jt));
    if (grow((void **)&t->txns, &ld->cap_txns, t->ntxns + 1, sizeof *t->txns))
        return fail(ld, "out of memory");
    struct trace_txn *x = &t->txns[t->ntxns];
    memset(x, 0, sizeof *x);
    /* Counts stay under 2^32: each patch and parent takes bytes of a file
     * smaller than TRACE_MAX_BYTES. */
    x->first = (uint32_t)t->npatches;
    x->first_parent = (uint32_t)t->nparents;

    const json_t *jtime = json_object_get(jt, "time");
    if (!jtime)
        jtime = json_object_get(jt, "timestamp");
    if (jtime && !json_is_string(jtime) && !json_is_null(jtime))
        return fail(ld, "txn %zu: time is %s, not a string", ti, type_name(jtime));
    if (json_is_string(jtime))
        x->time_ms = parse_time(json_string_value(jtime));

    if (t->kind == TRACE_CONCURRENT) {
        const json_t *jagent = json_object_get(jt, "agent");
        if (!jagent)
            return fail(ld, "txn %zu: agent missing", ti);
        if (!json_is_integer(jagent))
            return fail(ld, "txn %zu: agent is %s, not an integer", ti, type_name(jagent));
        long long a = get_uint(jagent, (long long)t->nagents - 1);
        if (a < 0)
            return fail(ld, "txn %zu: agent %lld not in 0..%u", ti,
                        (long long)json_integer_value(jagent), t->nagents - 1);
        x->agent = (uint32_t)a;

        const json_t *jpar = json_object_get(jt, "parents");
        if (!jpar)
            return fail(ld, "txn %zu: parents missing", ti);
        if (!json_is_array(jpar))
            return fail(ld, "txn %zu: parents is %s, not an array", ti, type_name(jpar));
        size_t np = json_array_size(jpar);
        if (np > UINT32_MAX)
            return fail(ld, "txn %zu: too many parents", ti);
        if (grow((void **)&t->parents, &ld->cap_parents, t->nparents + np, sizeof *t->parents))
            return fail(ld, "out of memory");
        for (size_t i = 0; i < np; i++) {
            const json_t *jv = json_array_get(jpar, i);
            long long p = get_uint(jv, LLONG_MAX);
            if (p < 0)
                return fail(ld, "txn %zu: parent %zu is %s, not a txn index", ti, i,
                            json_is_integer(jv) ? "negative" : type_name(jv));
            if ((unsigned long long)p >= ti)
                return fail(ld, "txn %zu: parent %lld is not an earlier txn", ti, p);
            /* Lists are minimal per the format, so short; a repeat would
             * otherwise reach the engine as a malformed version. */
            for (size_t j = 0; j < i; j++)
                if (t->parents[x->first_parent + j] == (uint32_t)p)
                    return fail(ld, "txn %zu: parent %lld listed twice", ti, p);
            t->parents[x->first_parent + i] = (uint32_t)p;
        }
        x->nparents = (uint32_t)np;
        t->nparents += np;
    }

    const json_t *jpatches = json_object_get(jt, "patches");
    if (!jpatches)
        return fail(ld, "txn %zu: patches missing", ti);
    if (!json_is_array(jpatches))
        return fail(ld, "txn %zu: patches is %s, not an array", ti, type_name(jpatches));
    size_t n = json_array_size(jpatches);
    if (n > UINT32_MAX)
        return fail(ld, "txn %zu: too many patches", ti);
    for (size_t pi = 0; pi < n; pi++)
        if (load_patch(ld, ti, pi, json_array_get(jpatches, pi), doclen))
            return -1;
    x->npatches = (uint32_t)n;
    t->ntxns++;
    return 0;
}

static size_t skip_ws(const char *buf, size_t len, size_t off)
{
    while (off < len &&
           (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\n' || buf[off] == '\r'))
        off++;
    return off;
}

/* Reports a jansson error at @at bytes into the file as line and column of
 * the whole file (jansson only knows the piece it was given). */
static int json_fail(struct loader *ld, const char *what, const char *buf, size_t at,
                     const char *text)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fail(ld, "%sbad JSON at line %zu column %zu: %s", what, line, col, text);
}

/* Parses one JSON value at *@off and moves *@off past it. */
static json_t *parse_at(struct loader *ld, const char *what, const char *buf, size_t len,
                        size_t *off)
{
    json_error_t e;
    json_t *v = json_loadb(buf + *off, len - *off, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &e);
    if (!v) {
        json_fail(ld, what, buf, *off + (size_t)(e.position > 0 ? e.position : 0), e.text);
        return NULL;
    }
    *off += (size_t)e.position;
    return v;
}

/* Moves past one JSON value without building it (only brackets and strings
 * are tracked); the value is parsed properly later, which reports any error
 * inside it. Returns the offset after it, or 0 when it does not end. */
static size_t skip_value(const char *buf, size_t len, size_t off)
{
    size_t depth = 0;
    for (size_t i = off; i < len; i++) {
        char c = buf[i];
        if (c == '"') {
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\')
                    i++;
            if (i >= len)
                return 0;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (depth == 0 || --depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n')) {
            return i;
        }
    }
    return depth == 0 ? len : 0;
}

/*
 * Streams the file: the top-level fields other than "txns" are parsed into
 * @meta, and "txns" is walked one transaction at a time, each parsed, copied
 * and freed before the next. Parsing the whole file as one tree held about
 * 16x the file in small blocks (257 MB for automerge-paper), which made the
 * process's peak RSS say nothing about the document.
 */
static int load_stream(struct loader *ld, const char *buf, size_t len)
{
    struct trace *t = ld->t;
    json_t *meta = json_object();
    size_t txns_at = 0;
    int cut_in_txns = 0;
    int rc = -1;
    if (!meta)
        return fail(ld, "out of memory");

    size_t off = skip_ws(buf, len, 0);
    if (off >= len || buf[off] != '{') {
        if (off < len && (buf[off] == '[' || buf[off] == '"' || buf[off] == '-' ||
                          (buf[off] >= '0' && buf[off] <= '9') || buf[off] == 't' ||
                          buf[off] == 'f' || buf[off] == 'n')) {
            fail(ld, "top level is not an object");
            goto out;
        }
        json_fail(ld, "", buf, off, off >= len ? "empty input" : "expected '{'");
        goto out;
    }
    off = skip_ws(buf, len, off + 1);
    if (off < len && buf[off] == '}') {
        off++;
    } else {
        for (;;) {
            json_t *key = parse_at(ld, "", buf, len, &off);
            if (!key)
                goto out;
            if (!json_is_string(key)) {
                json_decref(key);
                json_fail(ld, "", buf, off, "object key is not a string");
                goto out;
            }
            off = skip_ws(buf, len, off);
            if (off >= len || buf[off] != ':') {
                json_decref(key);
                json_fail(ld, "", buf, off, "expected ':'");
                goto out;
            }
            off = skip_ws(buf, len, off + 1);
            if (!strcmp(json_string_value(key), "txns")) {
                json_decref(key);
                if (txns_at) {
                    fail(ld, "txns given twice");
                    goto out;
                }
                txns_at = off;
                off = skip_value(buf, len, off);
                if (!off) {
                    /* The file ends inside txns: reading them one by one
                     * names the txn it stops in. */
                    off = len;
                    cut_in_txns = 1;
                    break;
                }
            } else {
                json_t *v = parse_at(ld, "", buf, len, &off);
                if (!v || json_object_set_new(meta, json_string_value(key), v)) {
                    json_decref(key);
                    if (v)
                        fail(ld, "out of memory");
                    goto out;
                }
                json_decref(key);
            }
            off = skip_ws(buf, len, off);
            if (off < len && buf[off] == ',') {
                off = skip_ws(buf, len, off + 1);
                continue;
            }
            if (off < len && buf[off] == '}') {
                off++;
                break;
            }
            json_fail(ld, "", buf, off,
                      off >= len ? "premature end of input" : "expected ',' or '}'");
            goto out;
        }
    }
    off = skip_ws(buf, len, off);
    if (off != len && !cut_in_txns) {
        json_fail(ld, "", buf, off, "end of file expected");
        goto out;
    }

    const json_t *jkind = json_object_get(meta, "kind");
    const json_t *jagents = json_object_get(meta, "numAgents");
    if (!txns_at) {
        fail(ld, "txns missing");
        goto out;
    }
    if (buf[txns_at] != '[') {
        json_t *v = parse_at(ld, "", buf, len, &txns_at);
        if (v)
            fail(ld, "txns is %s, not an array", type_name(v));
        json_decref(v);
        goto out;
    }

    /* Sequential files carry no "kind"; one without it that has agents is
     * concurrent, and replaying it as sequential would only fail later with a
     * less useful message. */
    if (jkind) {
        if (!json_is_string(jkind)) {
            fail(ld, "kind is %s, not a string", type_name(jkind));
            goto out;
        }
        if (!strcmp(json_string_value(jkind), "concurrent")) {
            t->kind = TRACE_CONCURRENT;
        } else if (!strcmp(json_string_value(jkind), "sequential")) {
            t->kind = TRACE_SEQUENTIAL;
        } else {
            fail(ld, "unknown kind '%s'", json_string_value(jkind));
            goto out;
        }
    } else {
        t->kind = jagents ? TRACE_CONCURRENT : TRACE_SEQUENTIAL;
    }

    t->nagents = 1;
    if (t->kind == TRACE_CONCURRENT) {
        if (!jagents) {
            fail(ld, "numAgents missing");
            goto out;
        }
        long long na = get_uint(jagents, TRACE_MAX_AGENTS);
        if (na < 1) {
            fail(ld, "numAgents is not an integer in 1..%u", TRACE_MAX_AGENTS);
            goto out;
        }
        t->nagents = (uint32_t)na;
    }

    const json_t *jstart = json_object_get(meta, "startContent");
    if (jstart && !json_is_string(jstart)) {
        fail(ld, "startContent is %s, not a string", type_name(jstart));
        goto out;
    }
    if (jstart && json_string_length(jstart) != 0) {
        fail(ld, "startContent is not empty (traces start from the empty document)");
        goto out;
    }

    const json_t *jend = json_object_get(meta, "endContent");
    if (jend) {
        if (!json_is_string(jend)) {
            fail(ld, "endContent is %s, not a string", type_name(jend));
            goto out;
        }
        size_t n = json_string_length(jend);
        if (utf8_count((const unsigned char *)json_string_value(jend), n) < 0) {
            fail(ld, "endContent is not valid UTF-8");
            goto out;
        }
        t->end = malloc(n + 1);
        if (!t->end) {
            fail(ld, "out of memory");
            goto out;
        }
        memcpy(t->end, json_string_value(jend), n + 1);
        t->end_len = n;
    }

    uint64_t doclen = 0;
    off = skip_ws(buf, len, txns_at + 1);
    if (off < len && buf[off] == ']') {
        rc = 0;
        goto out;
    }
    for (size_t i = 0;; i++) {
        char what[64];
        snprintf(what, sizeof what, "txn %zu: ", i);
        json_t *jt = parse_at(ld, what, buf, len, &off);
        if (!jt)
            goto out;
        int r = load_txn(ld, i, jt, &doclen);
        json_decref(jt);
        if (r)
            goto out;
        off = skip_ws(buf, len, off);
        if (off < len && buf[off] == ',') {
            off = skip_ws(buf, len, off + 1);
            continue;
        }
        if (off < len && buf[off] == ']')
            break;
        json_fail(ld, what, buf, off,
                  off >= len ? "premature end of input after the txn"
                             : "expected ',' or ']' after the txn");
        goto out;
    }
    rc = 0;
out:
    json_decref(meta);
    return rc;
}

void trace_release(struct trace *t)
{
    free(t->text);
    free(t->patches);
    free(t->txns);
    free(t->parents);
    free(t->end);
    memset(t, 0, sizeof *t);
}

/* Gives back the doubling slack; failure to shrink is harmless. */
static void *shrink(void *p, size_t size)
{
    if (!size) {
        free(p);
        return NULL;
    }
    void *q = realloc(p, size);
    if (!q)
        return p; /* still valid, only larger than needed */
    return q;
}

int trace_load(const char *path, struct trace *t, char *err, size_t errlen)
{
    struct loader ld = {.t = t, .err = err, .errlen = errlen};
    memset(t, 0, sizeof *t);
    char *buf = NULL;
    size_t len = 0;
    int cut = read_all(&ld, path, &buf, &len);
    if (cut < 0)
        return -1;

    int rc = load_stream(&ld, buf, len);
    free(buf);
    if (cut) {
        size_t at = rc ? strlen(err) : 0;
        if (!rc)
            err[0] = '\0';
        if (at < errlen)
            snprintf(err + at, errlen - at, "%sgzip stream cut short", rc ? " (" : "");
        at = strlen(err);
        if (rc && at + 1 < errlen)
            snprintf(err + at, errlen - at, ")");
        rc = -1;
    }
    if (rc) {
        trace_release(t);
        malloc_trim(0);
        return -1;
    }
    t->text = shrink(t->text, t->text_len + 1);
    if (t->text)
        t->text[t->text_len] = '\0';
    t->patches = shrink(t->patches, t->npatches * sizeof *t->patches);
    t->txns = shrink(t->txns, t->ntxns * sizeof *t->txns);
    t->parents = shrink(t->parents, t->nparents * sizeof *t->parents);
    /* The JSON tree was many small blocks; returning them keeps the replay's
     * resident-memory growth readable (peak RSS still includes the parse). */
    malloc_trim(0);
    return 0;
}
