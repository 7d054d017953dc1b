/*
 * Internals of the sync module shared by its files: the frame codec
 * (wire.c), byte writers, the transport helpers both the hub and the client
 * use over libwebsockets (peer.c), TLS helpers (tls.c) and the hub's SQLite
 * store (hubstore.c). docs/PROTOCOL.md is the specification of the bytes.
 */
#ifndef KITH_SYNC_INT_H
#define KITH_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kith/sync.h"

/* ---- frames -------------------------------------------------------------- */

#define SYNC_MAGIC0    0x6B /* 'k' */
#define SYNC_MAGIC1    0x73 /* 's' */
#define SYNC_VERSION   KITH_SYNC_PROTOCOL_VERSION
#define SYNC_HDR       8
#define SYNC_FRAME_MAX (8u << 20) /* body bytes; bounds every buffer */
#define SYNC_TEXT_MAX  1024      /* bytes of a status text */
#define SYNC_LIST_MAX  100000    /* entries of a vector or op list */
#define SYNC_OP_MAX    4096      /* bytes of one membership op */
#define SYNC_WRAP_MAX  65536     /* bytes of a wrapped key ring */
#define SYNC_PRE       32        /* headroom before a frame for the transport (>= LWS_PRE) */

enum sync_type {
    SYNC_CHALLENGE = 0x01,
    SYNC_AUTH = 0x02,
    SYNC_WELCOME = 0x03,
    SYNC_HELLO = 0x04,
    SYNC_HELLO_REPLY = 0x05,
    SYNC_BLOB = 0x06,
    SYNC_CAUGHT_UP = 0x07,
    SYNC_PUSH = 0x08,
    SYNC_PUSH_RESULT = 0x09,
    SYNC_MEMBER_OP = 0x0A,
    SYNC_MEMBER_RESULT = 0x0B,
    SYNC_MEMBER_UPDATE = 0x0C,
    SYNC_SNAPSHOT_PUT = 0x0D,
    SYNC_SNAPSHOT = 0x0E,
    SYNC_KEYS_PUT = 0x0F,
    SYNC_ERROR = 0x7F,
};

/* Status codes in PUSH_RESULT, MEMBER_RESULT and ERROR (u16 on the wire). */
enum sync_status {
    SYNC_ST_OK = 0,
    SYNC_ST_DUPLICATE = 1,
    SYNC_ST_GAP = 2,
    SYNC_ST_FORBIDDEN = 3,
    SYNC_ST_BAD_SIGNATURE = 4,
    SYNC_ST_MALFORMED = 5,
    SYNC_ST_TOO_BIG = 6,
    SYNC_ST_NOT_MEMBER = 7,
    SYNC_ST_VERSION = 8,
    SYNC_ST_STALE = 9,
    SYNC_ST_INVALID = 10,
    SYNC_ST_EXPIRED = 11,
    SYNC_ST_USED = 12,
    SYNC_ST_EXISTS = 13,
    SYNC_ST_NOT_FOUND = 14,
    SYNC_ST_INTERNAL = 15,
    SYNC_ST_BAD_AUTH = 16,
    SYNC_ST_BAD_STATE = 17,
};
const char *sync_status_name(unsigned st);
int sync_status_err(unsigned st); /* the kith error a status maps to */

enum sync_auth_mode { SYNC_MODE_MEMBER = 0, SYNC_MODE_REGISTER = 1, SYNC_MODE_JOIN = 2 };

/* A list of length-prefixed items inside a decoded frame (already validated). */
struct sync_list {
    uint32_t n;
    const uint8_t *p; /* first item's u32 length */
    size_t len;
};
/* Iterates: *pos starts at 0; returns 1 with the next item, 0 at the end. */
int sync_list_next(const struct sync_list *l, size_t *pos, const uint8_t **item, size_t *len);

/*
 * A decoded frame. Pointers borrow the frame's bytes. vv fields point at n
 * entries of 40 bytes (author, u64 seq), strictly ascending by author.
 */
struct sync_msg {
    uint8_t version, type;
    union {
        struct {
            const uint8_t *nonce; /* 32 */
        } challenge;
        struct {
            const uint8_t *ws_id, *device_pk, *sig;
            uint8_t mode;
            const uint8_t *extra;
            size_t extra_len;
        } auth;
        struct {
            uint8_t role;
            uint32_t epoch;
            struct sync_list ops;
            const uint8_t *wrapped;
            size_t wrapped_len;
        } welcome;
        struct {
            uint8_t flags;
            const uint8_t *vv;
            uint32_t n;
        } hello;
        struct {
            const uint8_t *vv;
            uint32_t n;
        } hello_reply;
        struct {
            const uint8_t *blob;
            size_t len;
        } blob; /* BLOB, PUSH */
        struct {
            const uint8_t *author;
            uint64_t seq;
            uint16_t status;
            const uint8_t *text;
            size_t text_len;
        } push_result;
        struct {
            const uint8_t *op;
            size_t op_len;
            const uint8_t *wrapped;
            size_t wrapped_len;
        } member_op;
        struct {
            uint16_t status;
            uint64_t length;
            const uint8_t *text;
            size_t text_len;
        } member_result;
        struct {
            const uint8_t *op;
            size_t op_len;
        } member_update;
        struct {
            const uint8_t *vv;
            uint32_t n;
            const uint8_t *blob;
            size_t len;
        } snapshot; /* SNAPSHOT_PUT, SNAPSHOT */
        struct {
            const uint8_t *env;
            size_t len;
        } keys; /* KEYS_PUT */
        struct {
            uint16_t code;
            const uint8_t *text;
            size_t text_len;
        } error;
    } u;
};

#define SYNC_HELLO_WANT_SNAPSHOT 0x01
#define SYNC_ENV_LEN             229 /* one key envelope (PROTOCOL.md) */

/*
 * Decodes one whole frame. KITH_OK; KITH_EVERSION when the magic is right
 * but the version is not ours (m->version and m->type are set, nothing else);
 * KITH_ECORRUPT for anything malformed. @why (may be NULL) gets a short reason.
 */
int sync_frame_decode(const uint8_t *p, size_t n, struct sync_msg *m, const char **why);

/* ---- writing ---------------------------------------------------------------- */

/* Growable bytes; the first error sticks and later writes do nothing. */
struct sbuf {
    uint8_t *p;
    size_t len, cap;
    int err;
};
void sb_init(struct sbuf *b);
void sb_release(struct sbuf *b);
void sb_raw(struct sbuf *b, const void *p, size_t n);
void sb_u8(struct sbuf *b, uint8_t v);
void sb_u16(struct sbuf *b, uint16_t v);
void sb_u32(struct sbuf *b, uint32_t v);
void sb_u64(struct sbuf *b, uint64_t v);
void sb_bytes(struct sbuf *b, const void *p, size_t n); /* u32 length + bytes */
/* Frames: begin reserves SYNC_PRE headroom and the header; end patches the
 * length. The frame is b->p + SYNC_PRE, b->len - SYNC_PRE bytes. */
void sync_frame_begin(struct sbuf *b, uint8_t type);
int sync_frame_end(struct sbuf *b);
/* A vv as count + entries. */
void sb_vv(struct sbuf *b, const kith_vv *vv);

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t get_u64(const uint8_t *p)
{
    return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4);
}
static inline void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

/* Builds a vv from n wire entries (validated by the decoder). */
int sync_vv_from_wire(const uint8_t *e, uint32_t n, kith_vv **out);

/* ---- crypto helpers ------------------------------------------------------------- */

int sync_sodium_init(void);
/* Ed25519 over @ctx (a context string, domain separation) || @msg. */
int sync_sign(const char *ctx, const uint8_t *msg, size_t len, const uint8_t sk[64],
              uint8_t sig[64]);
int sync_verify(const char *ctx, const uint8_t *msg, size_t len, const uint8_t pk[32],
                const uint8_t sig[64]);
void sync_hash(const uint8_t *p, size_t n, uint8_t out[32]); /* BLAKE2b-256 */
/* The auth transcript a device signs: see PROTOCOL.md "Handshake". */
void sync_auth_transcript(uint8_t out[113], const uint8_t challenge[32], const uint8_t cb[32],
                          const uint8_t ws_id[16], const uint8_t pk[32], uint8_t mode);
#define SYNC_AUTH_CTX "kith-auth-v1"
#define SYNC_CAP_CTX  "kith-cap-auth-v1"
void sync_hex(const uint8_t *p, size_t n, char *out); /* out: 2n+1 */

/* ---- TLS -------------------------------------------------------------------------- */

/* Loads @cert/@key or makes a self-signed P-256 pair in @dir (cert.pem,
 * key.pem, 0600); *cert_out and *key_out are paths (kith_free). */
int sync_tls_hub_cert(const char *dir, const char *cert, const char *key, char **cert_out,
                      char **key_out, uint8_t fp[32], char *err, size_t errlen);
/* SHA-256 of the peer's DER certificate on @ssl (an SSL *). */
int sync_tls_peer_fp(void *ssl, uint8_t fp[32]);
/* RFC 9266 tls-exporter channel binding of @ssl; KITH_EAUTH unless TLS 1.3. */
int sync_tls_binding(void *ssl, uint8_t cb[32]);
/* Makes libwebsockets log through kith_log. */
void sync_lws_logging(void);

/* ---- transport: one WebSocket peer ---------------------------------------------- */

struct lws;

struct sync_txq {
    struct sync_txq *next;
    size_t len; /* frame bytes after SYNC_PRE */
    uint8_t *buf;
};

struct sync_peer {
    uint8_t *rx;
    size_t rx_len, rx_cap;
    struct sync_txq *head, *tail;
    size_t tx_bytes;
    int close_after; /* close once the queue is written (after an ERROR) */
};

/* Appends a received fragment; 1 when a whole message is ready in p->rx
 * (rx_len bytes), 0 when more is to come, <0 when it is too big or not binary. */
int sync_peer_rx(struct sync_peer *p, struct lws *wsi, const void *in, size_t len);
void sync_peer_rx_done(struct sync_peer *p);
/* Queues @b's frame (takes its buffer) and asks for a writable callback. */
int sync_peer_send(struct sync_peer *p, struct lws *wsi, struct sbuf *b);
/* Writes one queued frame. Returns -1 when the connection must close now. */
int sync_peer_write(struct sync_peer *p, struct lws *wsi);
void sync_peer_release(struct sync_peer *p);
/* Queues an ERROR frame and closes after it is written. */
void sync_peer_error(struct sync_peer *p, struct lws *wsi, unsigned code, const char *text);

#define SYNC_WS_PROTOCOL "kith-sync-1"

/* Tests only: sends @n bytes as one message, unchecked (client.c). */
int sync_client_send_raw(kith_sync_client *c, const uint8_t *p, size_t n);

#endif
