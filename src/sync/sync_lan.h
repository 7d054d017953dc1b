/*
 * The listening half of a LAN session (src/sync/lansrv.c; docs/PROTOCOL.md,
 * "LAN", sessions): a member's daemon serves its own replica to the other
 * members it finds on the local network, over the hub's transport and
 * frames. The connecting half is kith_sync_client with opts.peer_device.
 *
 * The listener authenticates each connecting device (its signature over
 * the TLS channel binding, as with a hub) and asks the application whether
 * that device is a current member; only then does it prove its own identity
 * (an AUTH frame of its own) and serve. Everything a session carries after
 * that is the application's: this file moves frames and checks their shape.
 *
 * Internal to libkith (the replica drives it, src/replica/lanpeer.c).
 * Threads: the kith_sync_loop's (the daemon's libuv loop).
 */
#ifndef KITH_SYNC_LAN_H
#define KITH_SYNC_LAN_H

#include <stddef.h>
#include <stdint.h>

#include "kith/sync.h"

#define SYNC_LAN_AUTH_CTX "kith-lan-auth-v1" /* the listener's proof (PROTOCOL.md "LAN") */

struct lws_context;
/* The libwebsockets context of @l (client.c), so that a listener can add
 * its vhost to the loop the clients already use. Borrowed. */
struct lws_context *sync_loop_context(kith_sync_loop *l);

typedef struct kith_sync_listener kith_sync_listener;
typedef struct kith_sync_session kith_sync_session;

typedef struct sync_listener_callbacks {
    /* A device proved it holds @pk on this TLS session and sent @chain (its
     * membership ops, each u32 length + bytes, unverified; NULL/0: none):
     * its role here (KITH_ROLE_NONE refuses it), this replica's key epoch
     * and, in *@mine (kith_malloc'd, the listener frees it; NULL: none),
     * the chain to send back in WELCOME, same layout. */
    int (*admit)(void *ud, const uint8_t pk[32], const uint8_t *chain, size_t chain_len,
                 uint32_t *epoch, uint8_t **mine, size_t *mine_len);
    /* Authenticated both ways; @addr is the peer's IP address. */
    void (*ready)(void *ud, kith_sync_session *s, const uint8_t pk[32], int role, const char *addr);
    /* HELLO: answer with sync_session_hello_reply, blobs, sync_session_caught_up. */
    void (*hello)(void *ud, kith_sync_session *s, const kith_vv *peer);
    /* PUSH from a writer: answer with sync_session_push_result. */
    void (*push)(void *ud, kith_sync_session *s, const uint8_t *blob, size_t len);
    /* The session is gone (after ready only); @s is invalid after the call. */
    void (*closed)(void *ud, kith_sync_session *s, const char *why);
} sync_listener_callbacks;

typedef struct sync_listener_opts {
    kith_sync_loop *loop;
    const char *listen;   /* "ADDR:PORT"; port 0: a free one */
    const char *cert_dir; /* cert.pem and key.pem, made once (self-signed P-256) */
    uint8_t ws_id[16];
    const uint8_t *device_sk; /* borrowed for the listener's life */
    sync_listener_callbacks cb;
    void *ud;
} sync_listener_opts;

/* Starts listening on @o->loop. The listener is the caller's (sync_listener_close). */
int sync_listener_open(const sync_listener_opts *o, kith_sync_listener **out /* OUT */);
int sync_listener_port(const kith_sync_listener *l);
const uint8_t *sync_listener_fingerprint(const kith_sync_listener *l); /* SHA-256 of the DER cert */
/* Closes every session (no more callbacks) and stops listening. Accepts NULL. */
void sync_listener_close(kith_sync_listener *l);

/* Per-session application pointer. */
void sync_session_set_user(kith_sync_session *s, void *user);
void *sync_session_user(const kith_sync_session *s);
/* Queues frames to the peer; KITH_ENET once it is closing. */
int sync_session_hello_reply(kith_sync_session *s, const kith_vv *held);
int sync_session_blob(kith_sync_session *s, const uint8_t *blob, size_t len);
int sync_session_caught_up(kith_sync_session *s);
/* @rc: KITH_OK (stored), a kith error otherwise (mapped to a status code). */
int sync_session_push_result(kith_sync_session *s, const uint8_t author[32], uint64_t seq, int rc,
                             const char *text);
size_t sync_session_queued(const kith_sync_session *s); /* bytes not yet written */
/* Says why (ERROR @code) and closes. */
void sync_session_refuse(kith_sync_session *s, unsigned code, const char *text);

#endif
