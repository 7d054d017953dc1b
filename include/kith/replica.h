/*
 * kith replica: a workspace (kith_ws) joined to its team through sync
 * (kith_sync): remotes (hubs), membership, keys, and the exchange of change
 * blobs. Local changes leave the device as kith_ws_changes_since payloads,
 * sealed with the workspace key and signed by this device (kith_blob_seal);
 * received blobs are opened and applied with kith_ws_apply_change_from, in order,
 * holding back those whose parents have not arrived (KITH_EMISSING).
 *
 * State that is not the workspace's own lives in .kith/sync.db (SQLite:
 * remotes, the membership chain, key epochs, blobs received from others
 * that a LAN peer may still need) and .kith/sync-state.json (what
 * `kith status` prints: online or not, per remote the last sync and the
 * changes waiting to be pushed), written atomically after each exchange.
 *
 * Threads: one thread at a time, like kith_ws. Live mode runs on the
 * caller's libuv loop.
 */
#ifndef KITH_REPLICA_H
#define KITH_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"
#include "kith/ws.h"

typedef struct kith_replica kith_replica;

typedef struct kith_replica_report {
    size_t pushed;  /* changes sent */
    size_t pulled;  /* changes received and applied */
    size_t files;   /* files written in the folder */
    size_t remotes_ok, remotes_failed;
    size_t bytes_sent, bytes_received; /* on the wire, framing included */
} kith_replica_report;

/* Attaches @ws (borrowed; it must outlive the replica) to its sync state,
 * creating .kith/sync.db if missing. Caller frees with kith_replica_close;
 * as kith_ws_open, a handle comes back even on failure (unless out of
 * memory) so that kith_replica_errmsg can say why: close it. */
KITH_API KITH_NODISCARD int kith_replica_open(kith_ws *ws, kith_replica **out /* OUT */);
KITH_API void kith_replica_close(kith_replica *r);
/* Text of the last error (or, after a success, what was done). Borrowed. */
KITH_API const char *kith_replica_errmsg(const kith_replica *r);

/* Adds a hub (wss://HOST:PORT) pinned by @fingerprint ("SHA256:<hex>", or
 * NULL to verify with the system's CAs). A device that has no membership
 * chain yet (the one that made the workspace) registers the workspace there
 * (signed genesis); every add then pushes what the hub lacks and uploads a
 * snapshot (kith_ws_export). Nothing is kept if the hub cannot be reached. */
KITH_API KITH_NODISCARD int kith_replica_remote_add(kith_replica *r, const char *url,
                                                    const char *fingerprint);

typedef struct kith_replica_remote {
    const char *url;
    const char *fingerprint;
    int64_t last_sync_ms; /* 0: never */
    const char *last_error; /* NULL when the last try worked */
} kith_replica_remote;

KITH_API KITH_NODISCARD int kith_replica_remotes(kith_replica *r,
                                                 int (*cb)(const kith_replica_remote *rm,
                                                           void *ctx),
                                                 void *ctx);

/* One exchange with every remote: push what they lack, pull what this
 * device lacks, apply, write files, write .kith/sync-state.json. @timeout_ms
 * <= 0: 15 s per remote. Returns KITH_OK when every remote answered and
 * took every push (or there are none); else the first failure, with *rep
 * still saying what moved (a reader's local changes are reported as
 * KITH_EPERM after its pull). */
KITH_API KITH_NODISCARD int kith_replica_sync(kith_replica *r, int timeout_ms,
                                              kith_replica_report *rep /* OUT */);

/* Membership. Roles are kith_sync's (owner, admin, writer, reader).
 * invite: through the first remote; the link is valid for @expires_ms from
 * now (<= 0: 7 days) and admits one device once. */
KITH_API KITH_NODISCARD int kith_replica_invite(kith_replica *r, int role, int64_t expires_ms,
                                                char **link /* OUT, kith_free */);
/* Makes @dir a new replica from a join link: kith_ws_init_as, the invite's
 * keys, then the hub's snapshot and every change after it. On failure the
 * .kith/ this call made is removed (the link may be spent: ask for a new
 * one) and kith_replica_join_errmsg says why. */
KITH_API KITH_NODISCARD int kith_replica_join(const char *link, const char *dir, const char *name,
                                              kith_ws **ws /* OUT */,
                                              kith_replica_report *rep /* OUT */);
/* Why the calling thread's last kith_replica_join failed. Borrowed. */
KITH_API const char *kith_replica_join_errmsg(void);

typedef struct kith_replica_member {
    const char *name;
    const char *device; /* hex public key */
    int role;
    int removed;
} kith_replica_member;

KITH_API KITH_NODISCARD int kith_replica_members(kith_replica *r,
                                                 int (*cb)(const kith_replica_member *m,
                                                           void *ctx),
                                                 void *ctx);
/* Removes a member (by name or a prefix of its device id): signs the
 * removal, makes the key of the next epoch for new changes and hands it to
 * each remaining member in a key envelope (PROTOCOL.md "Key rotation"). */
KITH_API KITH_NODISCARD int kith_replica_remove(kith_replica *r, const char *who);

/* ---- live mode (kith daemon) ------------------------------------------------------- */

/* Connects every remote on @uv_loop (a uv_loop_t *) and keeps the
 * connections live: remote changes are applied as they arrive, and a lost
 * connection is retried with exponential backoff and jitter. */
KITH_API KITH_NODISCARD int kith_replica_attach(kith_replica *r, void *uv_loop);
/* A scan recorded changes: push them now. */
KITH_API void kith_replica_local_changed(kith_replica *r);
/* The network changed (an address came up): retry offline remotes now. */
KITH_API void kith_replica_network_changed(kith_replica *r);
/* Closes the live connections and frees the network's libuv handles.
 * Call it on the loop's thread outside any uv callback (it runs the loop
 * with UV_RUN_NOWAIT while libwebsockets closes, as kith_sync_loop_free
 * does): e.g. uv_stop in the signal callback, then detach after uv_run
 * returns. kith_replica_close detaches too. */
KITH_API void kith_replica_detach(kith_replica *r);

/* ---- bundles (no network at all) ---------------------------------------------------- */

/* Writes the changes a device at @vv (NULL: nothing held) lacks into one
 * file, sealed and signed like blobs on the wire (PROTOCOL.md "Bundles").
 * Changes of other authors go in when this device kept their blobs. */
KITH_API KITH_NODISCARD int kith_replica_bundle_create(kith_replica *r, const char *path,
                                                       const kith_ws_vv_entry *vv, size_t n);
KITH_API KITH_NODISCARD int kith_replica_bundle_apply(kith_replica *r, const char *path,
                                                      kith_replica_report *rep /* OUT */);

/* ---- LAN (kith daemon; src/replica/lan.c, docs/PROTOCOL.md "LAN") ---------------------- */

/*
 * Discovery of the workspace's other devices on the local network: UDP
 * multicast beacons that name no workspace (a tag that rotates every 10
 * minutes, derived from the workspace key) and carry, encrypted with a key
 * derived from the workspace key, the device id and where it listens.
 * With a replica (attached: kith_replica_attach), the daemon also listens
 * for sessions (TLS 1.3 + WebSocket, the hub's frames) and syncs directly
 * with each member it finds: the two authenticate each other over the TLS
 * channel binding, each against its own verified membership chain, then
 * exchange what the other lacks and stay live, as with a hub. LAN peers
 * connected appear in .kith/sync-state.json ("lan").
 */
typedef struct kith_lan kith_lan;

#define KITH_LAN_PORT_DEFAULT  47471
#define KITH_LAN_GROUP_DEFAULT "239.255.75.73"

typedef struct kith_lan_opts {
    size_t size;       /* sizeof(kith_lan_opts) */
    int port;          /* UDP port of the beacons; 0: KITH_LAN_PORT_DEFAULT */
    const char *group; /* IPv4 multicast group; NULL: KITH_LAN_GROUP_DEFAULT */
    int interval_ms;   /* between beacons; 0: 5000 (jittered by +-20%) */
} kith_lan_opts;

/* Starts beacons and listening on @uv_loop (a uv_loop_t *). @r may be NULL
 * (discovery only); else it must be attached to the same loop, and sessions
 * end with kith_lan_stop (or kith_replica_detach). The handle is the
 * caller's (kith_lan_stop). */
KITH_API KITH_NODISCARD int kith_lan_start(kith_replica *r, kith_ws *ws, void *uv_loop,
                                           const kith_lan_opts *opts, kith_lan **out /* OUT */);
/* Interfaces changed: join the group on new ones and announce at once. */
KITH_API void kith_lan_network_changed(kith_lan *lan);
/* Peers heard from within the last three beacon intervals. */
KITH_API size_t kith_lan_peers(const kith_lan *lan);
/* Sessions with peers that are up (authenticated both ways). */
KITH_API size_t kith_lan_sessions(const kith_lan *lan);
/* Closes the sockets and timers (freed once the loop has closed them). Accepts NULL. */
KITH_API void kith_lan_stop(kith_lan *lan);

/* One LAN round without a daemon (`kith sync`; PROTOCOL.md 13.5): on a
 * private loop, beacons and listens (@opts as kith_lan_start) for
 * @window_ms (<= 0: 1500), syncs once with every member that answers (the
 * same sessions as a daemon's: both ways, chains carried), and returns when
 * every session started in the window has finished its exchange, or
 * @timeout_ms (<= 0: 15 s) after the window. @r must not be attached.
 * *@results (kith_free; *@n entries) says what moved per peer; @rep (may be
 * NULL) sums them. KITH_OK even if no peer answered (*@n 0), and at once
 * when this device is no member of a shared workspace (no chain seen). */
typedef struct kith_replica_lan_result {
    uint8_t device[32];
    char address[48];
    size_t pushed, pulled, files;
    int ok;          /* the exchange finished */
    char error[160]; /* else why */
} kith_replica_lan_result;

KITH_API KITH_NODISCARD int kith_replica_lan_sync(kith_replica *r, const kith_lan_opts *opts,
                                                  int window_ms, int timeout_ms,
                                                  kith_replica_lan_result **results /* OUT */,
                                                  size_t *n /* OUT */,
                                                  kith_replica_report *rep /* OUT */);

/* This device's summary, "kith-vv1:<64 hex author>.<seq>,..." (what a
 * bundle --for names); *out is the caller's (kith_free). */
KITH_API KITH_NODISCARD int kith_replica_summary(kith_replica *r, char **out /* OUT */);
/* Parses a summary; KITH_ECORRUPT if malformed. *vv is the caller's (kith_free). */
KITH_API KITH_NODISCARD int kith_replica_summary_parse(const char *s,
                                                       kith_ws_vv_entry **vv /* OUT */,
                                                       size_t *n /* OUT */);

#endif
