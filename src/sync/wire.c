/*
 * The frame codec: one protocol message per WebSocket binary message, an
 * 8-byte header (magic, version, type, body length) and a body of fixed-width
 * big-endian integers, fixed-size byte arrays and u32-length-prefixed fields.
 * The decoder checks every length against what is left before reading, and
 * a body must be consumed exactly: trailing bytes are an error, so one frame
 * has one meaning. Decoded fields borrow the frame's bytes (no copies).
 */
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

/* ---- writer ------------------------------------------------------------------ */

void sb_init(struct sbuf *b)
{
    memset(b, 0, sizeof *b);
}

void sb_release(struct sbuf *b)
{
    kith_free(b->p);
    sb_init(b);
}

void sb_raw(struct sbuf *b, const void *p, size_t n)
{
    if (b->err)
        return;
    if (n > SIZE_MAX - b->len || kith_grow((void **)&b->p, &b->cap, b->len + n, 1) != 0) {
        b->err = KITH_ENOMEM;
        return;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void sb_u8(struct sbuf *b, uint8_t v)
{
    sb_raw(b, &v, 1);
}

void sb_u16(struct sbuf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    sb_raw(b, t, 2);
}

void sb_u32(struct sbuf *b, uint32_t v)
{
    uint8_t t[4];
    put_u32(t, v);
    sb_raw(b, t, 4);
}

void sb_u64(struct sbuf *b, uint64_t v)
{
    uint8_t t[8];
    put_u64(t, v);
    sb_raw(b, t, 8);
}

void sb_bytes(struct sbuf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        b->err = KITH_ETOOBIG;
        return;
    }
    sb_u32(b, (uint32_t)n);
    sb_raw(b, p, n);
}

void sync_frame_begin(struct sbuf *b, uint8_t type)
{
    static const uint8_t pre[SYNC_PRE];
    uint8_t h[SYNC_HDR] = {SYNC_MAGIC0, SYNC_MAGIC1, SYNC_VERSION, type, 0, 0, 0, 0};
    sb_raw(b, pre, sizeof pre);
    sb_raw(b, h, sizeof h);
}

int sync_frame_end(struct sbuf *b)
{
    if (b->err)
        return b->err;
    size_t body = b->len - SYNC_PRE - SYNC_HDR;
    if (body > SYNC_FRAME_MAX)
        return KITH_ETOOBIG;
    put_u32(b->p + SYNC_PRE + 4, (uint32_t)body);
    return KITH_OK;
}

void sb_vv(struct sbuf *b, const kith_vv *vv)
{
    size_t n = vv ? kith_vv_count(vv) : 0;
    sb_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        sb_raw(b, kith_vv_author(vv, i), 32);
        sb_u64(b, kith_vv_seq(vv, i));
    }
}

/* ---- reader -------------------------------------------------------------------- */

/* A cursor over the body. Any read past the end sets bad and returns zeros,
 * so a message parser reads all its fields and checks once at the end. */
struct rd {
    const uint8_t *p;
    size_t n, off;
    const char *why;
};

static int rd_need(struct rd *r, size_t k, const char *what)
{
    if (r->why)
        return 0;
    if (k > r->n - r->off) {
        r->why = what;
        return 0;
    }
    return 1;
}

static const uint8_t *rd_fixed(struct rd *r, size_t k, const char *what)
{
    if (!rd_need(r, k, what))
        return NULL;
    const uint8_t *p = r->p + r->off;
    r->off += k;
    return p;
}

static uint8_t rd_u8(struct rd *r, const char *what)
{
    const uint8_t *p = rd_fixed(r, 1, what);
    return p ? p[0] : 0;
}

static uint16_t rd_u16(struct rd *r, const char *what)
{
    const uint8_t *p = rd_fixed(r, 2, what);
    return p ? get_u16(p) : 0;
}

static uint32_t rd_u32(struct rd *r, const char *what)
{
    const uint8_t *p = rd_fixed(r, 4, what);
    return p ? get_u32(p) : 0;
}

static uint64_t rd_u64(struct rd *r, const char *what)
{
    const uint8_t *p = rd_fixed(r, 8, what);
    return p ? get_u64(p) : 0;
}

/* A u32-length-prefixed field of at most @max bytes. */
static const uint8_t *rd_bytes(struct rd *r, size_t *len, size_t max, const char *what)
{
    uint32_t n = rd_u32(r, what);
    *len = 0;
    if (r->why)
        return NULL;
    if (n > max) {
        r->why = what;
        return NULL;
    }
    const uint8_t *p = rd_fixed(r, n, what);
    if (p)
        *len = n;
    return p;
}

/* A vector: u32 count, then count x (author[32], u64 seq), authors strictly
 * ascending (so it is canonical and free of duplicates), seqs nonzero. */
static const uint8_t *rd_vv(struct rd *r, uint32_t *n, const char *what)
{
    *n = rd_u32(r, what);
    if (r->why)
        return NULL;
    if (*n > SYNC_LIST_MAX) {
        r->why = what;
        return NULL;
    }
    const uint8_t *e = rd_fixed(r, (size_t)*n * 40, what);
    if (!e)
        return NULL;
    for (uint32_t i = 0; i < *n; i++) {
        if (get_u64(e + i * 40 + 32) == 0 ||
            (i > 0 && memcmp(e + (i - 1) * 40, e + i * 40, 32) >= 0)) {
            r->why = "vector not canonical";
            return NULL;
        }
    }
    return e;
}

/* A list of length-prefixed items, each at most @max bytes. */
static void rd_list(struct rd *r, struct sync_list *l, size_t max, const char *what)
{
    l->n = rd_u32(r, what);
    if (r->why)
        return;
    if (l->n > SYNC_LIST_MAX) {
        r->why = what;
        return;
    }
    l->p = r->p + r->off;
    for (uint32_t i = 0; i < l->n && !r->why; i++) {
        size_t len;
        rd_bytes(r, &len, max, what);
    }
    l->len = (size_t)(r->p + r->off - l->p);
}

int sync_list_next(const struct sync_list *l, size_t *pos, const uint8_t **item, size_t *len)
{
    if (*pos + 4 > l->len)
        return 0;
    uint32_t n = get_u32(l->p + *pos);
    if (n > l->len - *pos - 4)
        return 0; /* cannot happen after rd_list; defensive */
    *item = l->p + *pos + 4;
    *len = n;
    *pos += 4 + (size_t)n;
    return 1;
}

static void parse_body(struct rd *r, struct sync_msg *m)
{
    switch (m->type) {
    case SYNC_CHALLENGE:
        m->u.challenge.nonce = rd_fixed(r, 32, "challenge nonce");
        break;
    case SYNC_AUTH:
        m->u.auth.ws_id = rd_fixed(r, 16, "auth workspace id");
        m->u.auth.device_pk = rd_fixed(r, 32, "auth device key");
        m->u.auth.mode = rd_u8(r, "auth mode");
        m->u.auth.sig = rd_fixed(r, 64, "auth signature");
        m->u.auth.extra = rd_bytes(r, &m->u.auth.extra_len, SYNC_OP_MAX, "auth extra");
        if (!r->why && m->u.auth.mode > SYNC_MODE_JOIN)
            r->why = "auth mode unknown";
        break;
    case SYNC_WELCOME:
        m->u.welcome.role = rd_u8(r, "welcome role");
        m->u.welcome.epoch = rd_u32(r, "welcome epoch");
        rd_list(r, &m->u.welcome.ops, SYNC_OP_MAX, "welcome ops");
        m->u.welcome.wrapped =
            rd_bytes(r, &m->u.welcome.wrapped_len, SYNC_WRAP_MAX, "welcome wrapped key");
        if (!r->why &&
            (m->u.welcome.role < KITH_ROLE_READER || m->u.welcome.role > KITH_ROLE_OWNER))
            r->why = "welcome role unknown";
        break;
    case SYNC_HELLO:
        m->u.hello.flags = rd_u8(r, "hello flags");
        m->u.hello.vv = rd_vv(r, &m->u.hello.n, "hello vector");
        break;
    case SYNC_HELLO_REPLY:
        m->u.hello_reply.vv = rd_vv(r, &m->u.hello_reply.n, "hello reply vector");
        break;
    case SYNC_BLOB:
    case SYNC_PUSH:
        m->u.blob.blob = rd_bytes(r, &m->u.blob.len, SYNC_FRAME_MAX, "blob");
        break;
    case SYNC_CAUGHT_UP:
        break;
    case SYNC_PUSH_RESULT:
        m->u.push_result.author = rd_fixed(r, 32, "push result author");
        m->u.push_result.seq = rd_u64(r, "push result seq");
        m->u.push_result.status = rd_u16(r, "push result status");
        m->u.push_result.text =
            rd_bytes(r, &m->u.push_result.text_len, SYNC_TEXT_MAX, "push result text");
        break;
    case SYNC_MEMBER_OP:
        m->u.member_op.op = rd_bytes(r, &m->u.member_op.op_len, SYNC_OP_MAX, "member op");
        m->u.member_op.wrapped =
            rd_bytes(r, &m->u.member_op.wrapped_len, SYNC_WRAP_MAX, "member op wrapped key");
        break;
    case SYNC_MEMBER_RESULT:
        m->u.member_result.status = rd_u16(r, "member result status");
        m->u.member_result.length = rd_u64(r, "member result length");
        m->u.member_result.text =
            rd_bytes(r, &m->u.member_result.text_len, SYNC_TEXT_MAX, "member result text");
        break;
    case SYNC_MEMBER_UPDATE:
        m->u.member_update.op =
            rd_bytes(r, &m->u.member_update.op_len, SYNC_OP_MAX, "member update op");
        break;
    case SYNC_SNAPSHOT_PUT:
    case SYNC_SNAPSHOT:
        m->u.snapshot.vv = rd_vv(r, &m->u.snapshot.n, "snapshot vector");
        m->u.snapshot.blob = rd_bytes(r, &m->u.snapshot.len, SYNC_FRAME_MAX, "snapshot blob");
        break;
    case SYNC_KEYS_PUT:
        m->u.keys.env = rd_bytes(r, &m->u.keys.len, SYNC_WRAP_MAX, "key envelopes");
        if (!r->why && (m->u.keys.len == 0 || m->u.keys.len % SYNC_ENV_LEN))
            r->why = "key envelopes of a wrong size";
        break;
    case SYNC_ERROR:
        m->u.error.code = rd_u16(r, "error code");
        m->u.error.text = rd_bytes(r, &m->u.error.text_len, SYNC_TEXT_MAX, "error text");
        break;
    default:
        r->why = "unknown message type";
    }
}

int sync_frame_decode(const uint8_t *p, size_t n, struct sync_msg *m, const char **why)
{
    const char *w = NULL;
    memset(m, 0, sizeof *m);
    if (!p || n < SYNC_HDR) {
        w = "frame shorter than its header";
        goto bad;
    }
    if (p[0] != SYNC_MAGIC0 || p[1] != SYNC_MAGIC1) {
        w = "bad magic";
        goto bad;
    }
    m->version = p[2];
    m->type = p[3];
    /* The ERROR layout is the same in every version, so a refusal can be
     * read whatever version the peer speaks. */
    if (m->version != SYNC_VERSION && m->type != SYNC_ERROR) {
        if (why)
            *why = "protocol version mismatch";
        return KITH_EVERSION;
    }
    uint32_t body = get_u32(p + 4);
    if (body > SYNC_FRAME_MAX || body != n - SYNC_HDR) {
        w = "frame length does not match";
        goto bad;
    }
    struct rd r = {p + SYNC_HDR, body, 0, NULL};
    parse_body(&r, m);
    if (!r.why && r.off != r.n)
        r.why = "trailing bytes after the message";
    if (r.why) {
        w = r.why;
        goto bad;
    }
    return KITH_OK;
bad:
    if (why)
        *why = w;
    uint8_t v = m->version, t = m->type;
    memset(m, 0, sizeof *m);
    m->version = v;
    m->type = t;
    return KITH_ECORRUPT;
}

/* ---- status codes ------------------------------------------------------------------ */

const char *sync_status_name(unsigned st)
{
    static const char *const names[] = {"ok",
                                        "duplicate",
                                        "gap",
                                        "forbidden",
                                        "bad signature",
                                        "malformed",
                                        "too big",
                                        "not a member",
                                        "version",
                                        "stale",
                                        "invalid",
                                        "expired",
                                        "already used",
                                        "exists",
                                        "not found",
                                        "internal",
                                        "authentication failed",
                                        "unexpected message"};
    return st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

int sync_status_err(unsigned st)
{
    switch (st) {
    case SYNC_ST_OK:
    case SYNC_ST_DUPLICATE:
        return KITH_OK;
    case SYNC_ST_GAP:
        return KITH_EMISSING;
    case SYNC_ST_FORBIDDEN:
    case SYNC_ST_NOT_MEMBER:
        return KITH_EPERM;
    case SYNC_ST_BAD_SIGNATURE:
    case SYNC_ST_BAD_AUTH:
        return KITH_EAUTH;
    case SYNC_ST_MALFORMED:
        return KITH_ECORRUPT;
    case SYNC_ST_TOO_BIG:
        return KITH_ETOOBIG;
    case SYNC_ST_VERSION:
        return KITH_EVERSION;
    case SYNC_ST_EXISTS:
        return KITH_EEXIST;
    case SYNC_ST_NOT_FOUND:
        return KITH_ENOTFOUND;
    case SYNC_ST_STALE:
    case SYNC_ST_INVALID:
    case SYNC_ST_EXPIRED:
    case SYNC_ST_USED:
        return KITH_EINVAL;
    default:
        return KITH_ENET;
    }
}
