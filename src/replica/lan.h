/*
 * LAN discovery internals (src/replica/lan.c): the beacon's bytes, apart
 * from the sockets so that they can be tested and fuzzed alone.
 * docs/PROTOCOL.md, section "LAN", is the specification.
 */
#ifndef KITH_REPLICA_LAN_H
#define KITH_REPLICA_LAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kith/replica.h"

#define LAN_EPOCH_S      600 /* the tag rotates every 10 minutes */
#define LAN_BEACON_LEN   158
#define LAN_INSTANCE_LEN 16

/* Keys derived from one workspace key; wiped by lan_keys_wipe. */
struct lan_keys {
    uint8_t tag[32];  /* keys the rotating tag */
    uint8_t seal[32]; /* encrypts the beacon's body */
};

/* What a beacon says, once opened. */
struct lan_beacon {
    uint64_t epoch;
    uint8_t instance[LAN_INSTANCE_LEN]; /* random per daemon start: tells self from others */
    uint8_t device[32];                 /* the sender's device id */
    uint16_t port;                      /* where it listens for sessions; 0: it does not */
    uint8_t fingerprint[32];            /* SHA-256 of its session certificate (DER) */
    uint64_t time_ms;                   /* the sender's clock */
};

void lan_keys_derive(const uint8_t ws_key[32], const uint8_t ws_id[16], struct lan_keys *k);
void lan_keys_wipe(struct lan_keys *k);
uint64_t lan_epoch(uint64_t unix_s);
/* The rotating tag of @epoch. */
void lan_tag(const struct lan_keys *k, uint64_t epoch, uint8_t tag[16]);
/* Encodes and seals @b into @out (LAN_BEACON_LEN bytes). */
void lan_beacon_seal(const struct lan_keys *k, const struct lan_beacon *b,
                     uint8_t out[LAN_BEACON_LEN]);
/*
 * Opens a datagram: 0 and *b filled when it is a beacon of this workspace
 * whose epoch is within one of @now_epoch; -1 for anything else (another
 * workspace, another version, a forged or truncated datagram). Nothing of
 * the datagram is read beyond its fixed header before the tag and the AEAD
 * have checked it.
 */
int lan_beacon_open(const struct lan_keys *k, uint64_t now_epoch, const uint8_t *buf, size_t len,
                    struct lan_beacon *b /* OUT */);

/*
 * LAN sessions (src/replica/lanpeer.c; PROTOCOL.md "LAN", 3). The replica
 * listens once attached; discovery hands it the peers it finds. All of
 * these run on the replica's loop thread and do nothing without rp_lan_open.
 */
/* Starts listening (TLS 1.3 + WebSocket on a free TCP port, certificate in
 * .kith/lan/); *port and @fp are what beacons announce. */
int rp_lan_open(kith_replica *r, uint16_t *port /* OUT */, uint8_t fp[32] /* OUT */);
/* Ends every session and stops listening. Accepts a replica without LAN. */
void rp_lan_close(kith_replica *r);
/* A member's beacon: connect to it unless a session is up (or it connects to us). */
void rp_lan_found(kith_replica *r, const uint8_t device[32], const char *ip, uint16_t port,
                  const uint8_t fp[32], int first);
/* The replica's vector may have grown: send each session what it lacks, soon. */
void rp_lan_changed(kith_replica *r);
/* Keeps @ops (a verified chain's ops, each u32 length + bytes, as
 * kith_sync_client_chain) as the chain held here, sent to LAN peers and
 * extended only by a longer one (PROTOCOL.md 13.3). NULL: nothing. */
int rp_lan_chain_save(kith_replica *r, const uint8_t *ops, size_t len);
/* Sessions authenticated and open. */
size_t rp_lan_connected(const kith_replica *r);
/* The state file's "lan" member: ,"lan":[{...},...] */
void rp_lan_state_json(const kith_replica *r, FILE *f);

#endif
