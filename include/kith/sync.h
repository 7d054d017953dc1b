/*
 * kith sync: the pieces of end-to-end encrypted sync that do not depend on
 * the workspace (docs/PROTOCOL.md is the byte-level specification).
 *
 * - Change blobs: a workspace's opaque change bytes sealed for the wire
 *   (XChaCha20-Poly1305 with the workspace key, then signed by the author's
 *   Ed25519 device key). Anyone can check who wrote a blob; only holders of
 *   the workspace key can read it.
 * - Version vectors: author -> highest contiguous seq held. They drive the
 *   one-round-trip delta exchange and duplicate/replay detection.
 * - Membership: a hash-chained list of signed operations (genesis, add,
 *   remove, invite, join) that every member and the hub verify.
 * - Invites: kith://join/... links and the wrapped workspace key.
 * - The hub server (kith hub) and the client that talks to it, over
 *   WebSocket on TLS 1.3 (libwebsockets + OpenSSL).
 *
 * Keys: a device key pair is libsodium's Ed25519 (32-byte public key, which
 * is the device id, and 64-byte secret key). Workspace keys are 32 bytes.
 * Secret keys passed in are borrowed and never copied except where a
 * function says so; callers keep them in sodium_malloc'd memory.
 *
 * Threads: every handle here is used from one thread at a time. The hub and
 * the client run on a libwebsockets event loop (see kith_sync_loop).
 */
#ifndef KITH_SYNC_H
#define KITH_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"

#define KITH_WS_ID_BYTES  16
#define KITH_PK_BYTES     32 /* Ed25519 public key = device id */
#define KITH_SK_BYTES     64 /* Ed25519 secret key (libsodium layout) */
#define KITH_WS_KEY_BYTES 32
#define KITH_HASH_BYTES   32
#define KITH_CAP_BYTES    32 /* invite capability seed and invite key */

#define KITH_SYNC_PROTOCOL_VERSION 1
#define KITH_BLOB_OVERHEAD         166 /* sealed size <= plaintext + this (version 1: equal) */
#define KITH_BLOB_MIN_OVERHEAD     123 /* sealed size >= plaintext + this (version 2) */
#define KITH_BLOB_MAX_DEFAULT      (1u << 20)

/* Roles, ordered: a higher role can do everything a lower one can. */
enum kith_role {
    KITH_ROLE_NONE = 0,
    KITH_ROLE_READER = 1, /* pull only */
    KITH_ROLE_WRITER = 2, /* pull and push */
    KITH_ROLE_ADMIN = 3,  /* + add/remove/invite non-owners */
    KITH_ROLE_OWNER = 4,  /* + manage owners */
};

/* "reader", "writer", ...; static storage. NULL for an unknown role. */
KITH_API const char *kith_role_name(int role);
/* Role from its name; KITH_ROLE_NONE if unknown. */
KITH_API int kith_role_parse(const char *name);

/* Makes a fresh device key pair. */
KITH_API KITH_NODISCARD int kith_device_keygen(uint8_t pk[KITH_PK_BYTES] /* OUT */,
                                               uint8_t sk[KITH_SK_BYTES] /* OUT */);

/* ---- version vectors --------------------------------------------------------- */

typedef struct kith_vv kith_vv;

KITH_API KITH_NODISCARD int kith_vv_new(kith_vv **out /* OUT */);
/* Accepts NULL. */
KITH_API void kith_vv_free(kith_vv *vv);
/* Highest contiguous seq held from @author; 0 when none. */
KITH_API uint64_t kith_vv_get(const kith_vv *vv, const uint8_t author[KITH_PK_BYTES]);
/* Sets @author's entry (0 removes it). */
KITH_API KITH_NODISCARD int kith_vv_set(kith_vv *vv, const uint8_t author[KITH_PK_BYTES],
                                        uint64_t seq);
KITH_API size_t kith_vv_count(const kith_vv *vv);
/* The @i-th entry in ascending author order. Borrowed; valid until @vv changes. */
KITH_API const uint8_t *kith_vv_author(const kith_vv *vv, size_t i);
KITH_API uint64_t kith_vv_seq(const kith_vv *vv, size_t i);

enum kith_seq_check {
    KITH_SEQ_NEXT = 0, /* seq == held + 1: apply it, then kith_vv_set */
    KITH_SEQ_DUP = 1,  /* already held (duplicate or replay): drop it */
    KITH_SEQ_GAP = 2,  /* an earlier seq of this author is missing */
};
/* Receiver-side replay/duplicate detection by (author, seq). */
KITH_API enum kith_seq_check kith_vv_check(const kith_vv *vv, const uint8_t author[KITH_PK_BYTES],
                                           uint64_t seq);

/* ---- sealed blobs ------------------------------------------------------------- */

enum kith_blob_kind { KITH_BLOB_CHANGE = 1, KITH_BLOB_SNAPSHOT = 2 };

typedef struct kith_blob_info {
    uint8_t version; /* blob format: 2 (written), 1 (still read) */
    uint8_t kind;    /* enum kith_blob_kind */
    /* Version 1 carries the workspace id; version 2 only binds it, so
     * kith_blob_parse leaves it zero and kith_blob_verify fills it in. */
    uint8_t ws_id[KITH_WS_ID_BYTES];
    uint8_t author[KITH_PK_BYTES];
    uint64_t seq;      /* author's counter, from 1 */
    uint32_t epoch;    /* workspace key epoch it is sealed with */
    size_t plain_len;  /* plaintext bytes */
} kith_blob_info;

/*
 * Seals @plain for the wire (blob version 2): encrypted with @key (the
 * workspace key of @epoch), authenticated with @ws_id and the header as
 * associated data, signed with @author_sk. On success *out (kith_free) holds
 * plain_len + KITH_BLOB_MIN_OVERHEAD bytes, a few more for a large @seq or
 * @epoch (varints). @seq is 1..INT64_MAX.
 */
KITH_API KITH_NODISCARD int kith_blob_seal(enum kith_blob_kind kind,
                                           const uint8_t ws_id[KITH_WS_ID_BYTES],
                                           const uint8_t author_sk[KITH_SK_BYTES], uint64_t seq,
                                           uint32_t epoch, const uint8_t key[KITH_WS_KEY_BYTES],
                                           const uint8_t *plain, size_t plain_len,
                                           uint8_t **out /* OUT */, size_t *out_len /* OUT */);

/* Reads the clear header of a blob (no crypto): KITH_ECORRUPT if malformed,
 * KITH_EVERSION for another blob version. */
KITH_API KITH_NODISCARD int kith_blob_parse(const uint8_t *blob, size_t len,
                                            kith_blob_info *info /* OUT */);

/* kith_blob_parse + the author's signature (what the hub checks), for
 * workspace @ws_id: KITH_EAUTH when the signature does not verify or the
 * blob belongs to another workspace. */
KITH_API KITH_NODISCARD int kith_blob_verify(const uint8_t *blob, size_t len,
                                             const uint8_t ws_id[KITH_WS_ID_BYTES],
                                             kith_blob_info *info /* OUT */);

/*
 * Verifies and decrypts: the blob must belong to @ws_id and be sealed with
 * @key (the caller picks it by kith_blob_parse's epoch). KITH_EAUTH for a bad
 * signature, a wrong key or epoch, or any tampered byte. *plain (kith_free;
 * wipe it if it matters) gets the plaintext.
 */
KITH_API KITH_NODISCARD int kith_blob_open(const uint8_t *blob, size_t len,
                                           const uint8_t ws_id[KITH_WS_ID_BYTES],
                                           const uint8_t key[KITH_WS_KEY_BYTES],
                                           kith_blob_info *info /* OUT */,
                                           uint8_t **plain /* OUT */, size_t *plain_len /* OUT */);

/* ---- membership ------------------------------------------------------------- */

enum kith_member_op_type {
    KITH_MOP_GENESIS = 1, /* the creator, self-signed: owner */
    KITH_MOP_ADD = 2,     /* add a device or change its role */
    KITH_MOP_REMOVE = 3,  /* remove a device; the key epoch moves on */
    KITH_MOP_INVITE = 4,  /* a one-time capability to join with a role */
    KITH_MOP_JOIN = 5,    /* a device joins with a capability */
    /* remove a device, naming the last of its seqs the remover accepts
     * (its blobs beyond are refused); what kith_member_op_remove writes.
     * A plain REMOVE (3) names none and stays valid in older chains. */
    KITH_MOP_REMOVE_AT = 6,
};

typedef struct kith_member_op {
    uint8_t type; /* enum kith_member_op_type */
    uint8_t ws_id[KITH_WS_ID_BYTES];
    uint8_t prev[KITH_HASH_BYTES];
    uint64_t time_ms;
    uint8_t signer[KITH_PK_BYTES];
    uint8_t subject[KITH_PK_BYTES]; /* ADD/REMOVE: the device; INVITE/JOIN: capability pk */
    uint8_t role;                   /* ADD, INVITE */
    uint64_t expires_ms;            /* INVITE */
    uint64_t last_seq;              /* REMOVE_AT: the removed device's last accepted seq */
} kith_member_op;

/* Decodes one operation's fields (no signature check). */
KITH_API KITH_NODISCARD int kith_member_op_parse(const uint8_t *op, size_t len,
                                                 kith_member_op *out /* OUT */);

/* The verified state of a membership chain. */
typedef struct kith_members kith_members;

KITH_API KITH_NODISCARD int kith_members_new(const uint8_t ws_id[KITH_WS_ID_BYTES],
                                             kith_members **out /* OUT */);
KITH_API void kith_members_free(kith_members *m);
/*
 * Verifies @op as the next link of the chain (prev hash, signature, the
 * signer's authority, the capability rules) and applies it. KITH_EAUTH for a
 * bad signature, KITH_EPERM when the signer lacks the authority,
 * KITH_ECORRUPT for a malformed op, KITH_EINVAL when it does not link to the
 * head or breaks a rule; @m is unchanged on failure. kith_members_errmsg says why.
 */
KITH_API KITH_NODISCARD int kith_members_apply(kith_members *m, const uint8_t *op, size_t len);
KITH_API const char *kith_members_errmsg(const kith_members *m);
/* Current role of @pk (KITH_ROLE_NONE if not a member). */
KITH_API int kith_members_role(const kith_members *m, const uint8_t pk[KITH_PK_BYTES]);
/* Key epoch: the number of REMOVE and REMOVE_AT operations so far. */
KITH_API uint32_t kith_members_epoch(const kith_members *m);
/* Number of operations applied, hash of the last (zeros when empty) and of the first. */
KITH_API size_t kith_members_length(const kith_members *m);
KITH_API const uint8_t *kith_members_head(const kith_members *m);
KITH_API const uint8_t *kith_members_genesis(const kith_members *m);
/* The cut-off of @pk, a device removed by a REMOVE_AT op and not re-added
 * since: its blobs with seq <= *last_seq stay valid, later ones are refused;
 * *role is its role when removed. KITH_ENOTFOUND for anyone else (a
 * current member, or a device removed by a plain REMOVE). */
KITH_API KITH_NODISCARD int kith_members_cutoff(const kith_members *m,
                                                const uint8_t pk[KITH_PK_BYTES],
                                                uint64_t *last_seq /* OUT */, int *role /* OUT */);
/* Current members: count and the @i-th (pk borrowed; valid until the next apply). */
KITH_API size_t kith_members_count(const kith_members *m);
KITH_API const uint8_t *kith_members_get(const kith_members *m, size_t i, int *role /* OUT */);
/* Role and expiry of an unconsumed invite with capability @cap_pk; KITH_ENOTFOUND if none. */
KITH_API KITH_NODISCARD int kith_members_invite(const kith_members *m,
                                                const uint8_t cap_pk[KITH_PK_BYTES],
                                                int *role /* OUT */, uint64_t *expires_ms /* OUT */);

/*
 * Builders: each signs a new operation that links to @m's head (the genesis
 * needs no chain). *op is the caller's (kith_free). They check nothing that
 * kith_members_apply checks: apply the result to learn if it is valid.
 */
KITH_API KITH_NODISCARD int kith_member_op_genesis(const uint8_t ws_id[KITH_WS_ID_BYTES],
                                                   const uint8_t owner_sk[KITH_SK_BYTES],
                                                   uint64_t time_ms, uint8_t **op /* OUT */,
                                                   size_t *len /* OUT */);
KITH_API KITH_NODISCARD int kith_member_op_add(const kith_members *m,
                                               const uint8_t signer_sk[KITH_SK_BYTES],
                                               const uint8_t pk[KITH_PK_BYTES], int role,
                                               uint64_t time_ms, uint8_t **op /* OUT */,
                                               size_t *len /* OUT */);
/* A REMOVE_AT op: @last_seq is the last seq of @pk's blobs the remover
 * accepts (normally its vector's entry for @pk; PROTOCOL.md 3.2). */
KITH_API KITH_NODISCARD int kith_member_op_remove(const kith_members *m,
                                                  const uint8_t signer_sk[KITH_SK_BYTES],
                                                  const uint8_t pk[KITH_PK_BYTES],
                                                  uint64_t last_seq, uint64_t time_ms,
                                                  uint8_t **op /* OUT */, size_t *len /* OUT */);
KITH_API KITH_NODISCARD int kith_member_op_invite(const kith_members *m,
                                                  const uint8_t signer_sk[KITH_SK_BYTES],
                                                  const uint8_t cap_pk[KITH_PK_BYTES], int role,
                                                  uint64_t expires_ms, uint64_t time_ms,
                                                  uint8_t **op /* OUT */, size_t *len /* OUT */);
/* Signed by the joining device and by the capability key derived from @cap_seed. */
KITH_API KITH_NODISCARD int kith_member_op_join(const kith_members *m,
                                                const uint8_t device_sk[KITH_SK_BYTES],
                                                const uint8_t cap_seed[KITH_CAP_BYTES],
                                                uint64_t time_ms, uint8_t **op /* OUT */,
                                                size_t *len /* OUT */);

/* ---- invites ------------------------------------------------------------------ */

#define KITH_INVITE_URL_MAX 200 /* bytes of the hub URL */

typedef struct kith_invite {
    char hub_url[KITH_INVITE_URL_MAX + 1]; /* wss://HOST:PORT[/path] */
    uint8_t fingerprint[KITH_HASH_BYTES];  /* SHA-256 of the hub's DER certificate */
    uint8_t ws_id[KITH_WS_ID_BYTES];
    uint8_t genesis[KITH_HASH_BYTES];     /* hash of the chain's first op: anchors it */
    uint8_t cap_seed[KITH_CAP_BYTES];     /* one-time capability (an Ed25519 seed) */
    uint8_t invite_key[KITH_CAP_BYTES];   /* unwraps the workspace keys */
} kith_invite;

/* Fills cap_seed and invite_key with fresh random bytes. */
KITH_API void kith_invite_random(kith_invite *inv);
/* Public key of a capability seed (what the INVITE op and the hub hold). */
KITH_API void kith_invite_cap_pk(const uint8_t cap_seed[KITH_CAP_BYTES],
                                 uint8_t cap_pk[KITH_PK_BYTES] /* OUT */);
/* "kith://join/<base64url>"; *link is the caller's (kith_free). */
KITH_API KITH_NODISCARD int kith_invite_encode(const kith_invite *inv, char **link /* OUT */);
/* Strict parse: KITH_ECORRUPT for anything but an exact, intact link. */
KITH_API KITH_NODISCARD int kith_invite_parse(const char *link, kith_invite *out /* OUT */);

typedef struct kith_ws_key {
    uint32_t epoch;
    uint8_t key[KITH_WS_KEY_BYTES];
} kith_ws_key;

/* Encrypts @n workspace keys under @invite_key, bound to @ws_id and @cap_pk.
 * *out is the caller's (kith_free). */
KITH_API KITH_NODISCARD int kith_invite_wrap(const uint8_t invite_key[KITH_CAP_BYTES],
                                             const uint8_t ws_id[KITH_WS_ID_BYTES],
                                             const uint8_t cap_pk[KITH_PK_BYTES],
                                             const kith_ws_key *keys, size_t n,
                                             uint8_t **out /* OUT */, size_t *out_len /* OUT */);
/* The reverse; KITH_EAUTH if anything does not match. *keys is the caller's
 * (wipe, then kith_free). */
KITH_API KITH_NODISCARD int kith_invite_unwrap(const uint8_t invite_key[KITH_CAP_BYTES],
                                               const uint8_t ws_id[KITH_WS_ID_BYTES],
                                               const uint8_t cap_pk[KITH_PK_BYTES],
                                               const uint8_t *wrapped, size_t len,
                                               kith_ws_key **keys /* OUT */, size_t *n /* OUT */);

/* ---- the hub --------------------------------------------------------------------- */

typedef struct kith_hub kith_hub;

typedef struct kith_hub_opts {
    size_t size;           /* sizeof(kith_hub_opts) */
    const char *listen;    /* "ADDR:PORT"; port 0 picks a free one */
    const char *data_dir;  /* created if missing: hub.db, cert.pem, key.pem */
    const char *cert_file; /* both NULL: a self-signed P-256 certificate in data_dir */
    const char *key_file;
    size_t max_blob; /* 0: KITH_BLOB_MAX_DEFAULT */
} kith_hub_opts;

/* Opens the store, loads or makes the certificate and starts listening. */
KITH_API KITH_NODISCARD int kith_hub_open(const kith_hub_opts *opts, kith_hub **out /* OUT */);
KITH_API int kith_hub_port(const kith_hub *hub);
KITH_API const uint8_t *kith_hub_fingerprint(const kith_hub *hub);
/* Serves until kith_hub_stop. */
KITH_API KITH_NODISCARD int kith_hub_run(kith_hub *hub);
/* Makes kith_hub_run return; async-signal-safe (call it from a SIGTERM handler). */
KITH_API void kith_hub_stop(kith_hub *hub);
/* Closes connections and the database. Accepts NULL. */
KITH_API void kith_hub_close(kith_hub *hub);

/* ---- the client ----------------------------------------------------------------- */

/*
 * A loop holds one libwebsockets context that any number of clients share
 * (one SSL_CTX, one poll set). Either it runs on its own poll(2) loop, driven
 * by kith_sync_loop_run, or, given @uv_loop, on the caller's libuv loop (the
 * daemon's), which then drives it.
 */
typedef struct kith_sync_loop kith_sync_loop;

typedef struct kith_sync_loop_opts {
    size_t size;       /* sizeof(kith_sync_loop_opts) */
    void *uv_loop;     /* a uv_loop_t *, or NULL for the built-in poll loop */
    const char *ca_file; /* CA bundle for hubs not pinned by fingerprint; NULL: the system's */
} kith_sync_loop_opts;

KITH_API KITH_NODISCARD int kith_sync_loop_new(const kith_sync_loop_opts *opts,
                                               kith_sync_loop **out /* OUT */);
/* Built-in loop only: serves events for up to @timeout_ms (or until
 * kith_sync_loop_break). */
KITH_API KITH_NODISCARD int kith_sync_loop_run(kith_sync_loop *loop, int timeout_ms);
KITH_API void kith_sync_loop_break(kith_sync_loop *loop);
/* Free all clients on @loop first. On a libuv loop this runs the loop
 * (UV_RUN_NOWAIT) while libwebsockets closes its handles; call it from the
 * loop's thread, outside any callback. Accepts NULL. */
KITH_API void kith_sync_loop_free(kith_sync_loop *loop);

typedef struct kith_sync_client kith_sync_client;

enum kith_sync_mode {
    KITH_SYNC_MEMBER = 0,   /* an existing member */
    KITH_SYNC_REGISTER = 1, /* the owner creates the workspace on the hub */
    KITH_SYNC_JOIN = 2,     /* join with an invite capability */
};

enum kith_sync_state {
    KITH_SYNC_CONNECTING = 0,
    KITH_SYNC_AUTHENTICATING = 1,
    KITH_SYNC_READY = 2, /* authenticated member: hello, push, member ops */
    KITH_SYNC_CLOSED = 3,
};

/*
 * Callbacks run on the loop's thread, inside kith_sync_loop_run (or uv_run).
 * Pointers passed to them are borrowed for the call. A callback may call
 * kith_sync_client_* on its own client, but not free it (do that after run).
 */
typedef struct kith_sync_callbacks {
    /* Authenticated. @members is the hub's chain, verified here (and anchored
     * to opts.genesis when given); @wrapped is, for a JOIN, the invite's
     * wrapped key for kith_invite_unwrap, and for a member the key
     * envelopes the hub holds for it (229 bytes each, newest epoch first). The app normally calls hello now. */
    void (*ready)(void *ud, kith_sync_client *c, int role, const kith_members *members,
                  const uint8_t *wrapped, size_t wrapped_len);
    /* The hub's vector, answering hello: push what it lacks, in causal order. */
    void (*hub_vv)(void *ud, kith_sync_client *c, const kith_vv *hub);
    /* A sealed blob from the hub (catch-up, then live relay), in store order. */
    void (*blob)(void *ud, kith_sync_client *c, const uint8_t *blob, size_t len);
    /* Answering a hello that asked for one (empty vector): a sealed snapshot
     * that covers @covers; the blobs that follow start after it. */
    void (*snapshot)(void *ud, kith_sync_client *c, const kith_vv *covers, const uint8_t *blob,
                     size_t len);
    /* Every blob the client lacked at hello has been delivered. */
    void (*caught_up)(void *ud, kith_sync_client *c);
    /* The hub's verdict on a push: KITH_OK, or a kith error and the hub's text. */
    void (*push_result)(void *ud, kith_sync_client *c, const uint8_t author[KITH_PK_BYTES],
                        uint64_t seq, int status, const char *text);
    /* A membership op was applied (ours or another member's); @members is updated. */
    void (*member_op)(void *ud, kith_sync_client *c, int status, const char *text,
                      const kith_members *members);
    /* The connection ended: @err is KITH_OK after kith_sync_client_close, else why. */
    void (*closed)(void *ud, kith_sync_client *c, int err, const char *msg);
} kith_sync_callbacks;

typedef struct kith_sync_client_opts {
    size_t size;     /* sizeof(kith_sync_client_opts) */
    const char *url; /* wss://HOST:PORT[/path] */
    /* SHA-256 of the hub's DER certificate: pinned. NULL: CA verification
     * (loop's ca_file or the system's) with host name check. */
    const uint8_t *fingerprint;
    uint8_t ws_id[KITH_WS_ID_BYTES];
    const uint8_t *device_sk; /* borrowed for the client's life; pk is its last 32 bytes */
    enum kith_sync_mode mode;
    const uint8_t *genesis_op; /* REGISTER: the signed genesis op */
    size_t genesis_op_len;
    const uint8_t *cap_seed;    /* JOIN: the invite's capability */
    const uint8_t *genesis;     /* optional: expected hash of the chain's first op */
    kith_sync_callbacks cb;
    void *ud;
    /* A LAN peer (docs/PROTOCOL.md 13.2), not a hub: the device id its
     * beacon named. It must prove that identity on this TLS session (its
     * AUTH before WELCOME). Its WELCOME may carry its chain (13.3): ready
     * gets it verified op by op (not anchored unless opts.genesis), or
     * @members NULL when it sent none; the caller decides whether to adopt
     * it and checks the peer against its own chain. NULL: a hub. */
    const uint8_t *peer_device;
    /* With peer_device: this device's chain, sent to the peer after AUTH
     * (13.3); each op as a u32 big-endian length and its bytes, as
     * kith_sync_client_chain gives them. Copied. NULL: none. */
    const uint8_t *lan_chain;
    size_t lan_chain_len;
} kith_sync_client_opts;

/* Starts connecting on @loop. The client is the caller's (kith_sync_client_free). */
KITH_API KITH_NODISCARD int kith_sync_client_new(kith_sync_loop *loop,
                                                 const kith_sync_client_opts *opts,
                                                 kith_sync_client **out /* OUT */);
/* Sends HELLO with what this device holds. The hub answers with hub_vv, then
 * blobs, then caught_up; afterwards new blobs are relayed live. With
 * @want_snapshot and an empty @held, a stored snapshot comes first. */
KITH_API KITH_NODISCARD int kith_sync_client_hello(kith_sync_client *c, const kith_vv *held,
                                                   int want_snapshot);
/* Queues one sealed blob for the hub; the answer comes through push_result. */
KITH_API KITH_NODISCARD int kith_sync_client_push(kith_sync_client *c, const uint8_t *blob,
                                                  size_t len);
/* Queues a membership op (ADD/REMOVE/INVITE; INVITE with the wrapped keys). */
KITH_API KITH_NODISCARD int kith_sync_client_member_op(kith_sync_client *c, const uint8_t *op,
                                                       size_t len, const uint8_t *wrapped,
                                                       size_t wrapped_len);
/* Uploads key envelopes (@len a multiple of 229 bytes; PROTOCOL.md "Key
 * rotation"); the answer comes through member_op with the chain unchanged. */
KITH_API KITH_NODISCARD int kith_sync_client_keys_put(kith_sync_client *c, const uint8_t *env,
                                                      size_t len);
/* Uploads a sealed snapshot blob covering @covers (see PROTOCOL.md). */
KITH_API KITH_NODISCARD int kith_sync_client_snapshot(kith_sync_client *c, const kith_vv *covers,
                                                      const uint8_t *blob, size_t len);
KITH_API int kith_sync_client_state(const kith_sync_client *c);
/* Verified chain as of now (NULL before ready). Borrowed. */
KITH_API const kith_members *kith_sync_client_members(const kith_sync_client *c);
/* The verified chain's ops as received (each a u32 big-endian length and the
 * op's bytes; @n ops, may be NULL), for storing or handing to a LAN peer.
 * NULL (and *len 0) before ready or when the peer sent none. Borrowed;
 * valid until the next frame. */
KITH_API const uint8_t *kith_sync_client_chain(const kith_sync_client *c, size_t *len /* OUT */,
                                               size_t *n /* OUT */);
/* Last error text. Borrowed; valid until the next call on @c. */
KITH_API const char *kith_sync_client_errmsg(const kith_sync_client *c);
/* Starts closing the connection; closed runs later. */
KITH_API void kith_sync_client_close(kith_sync_client *c);
/* Detaches from the connection and frees. Accepts NULL. */
KITH_API void kith_sync_client_free(kith_sync_client *c);

/* ---- helpers ------------------------------------------------------------------------ */

/* "SHA256:<64 hex>" <-> 32 bytes. parse returns KITH_EINVAL if malformed. */
KITH_API void kith_fingerprint_format(const uint8_t fp[KITH_HASH_BYTES], char out[72]);
KITH_API KITH_NODISCARD int kith_fingerprint_parse(const char *s, uint8_t fp[KITH_HASH_BYTES]);

#endif
