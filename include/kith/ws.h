/*
 * kith workspace: a folder of files and its full history.
 *
 * A workspace is a folder whose text files are the documents (UTF-8, any
 * depth) and a .kith/ folder beside them holding the store (an SQLite
 * database in WAL mode), this device's identity (an Ed25519 key pair), the
 * workspace id and key, and a config file. Scanning the folder turns every
 * change it finds into attributed CRDT operations (a character-level diff of
 * old and new text), recorded as one *change* per scan in one SQLite
 * transaction. A document's identity does not depend on its path: renames
 * keep history; deletions are recorded and can be undone. Binary files and
 * text over KITH_WS_TEXT_MAX are kept as whole-file versions
 * (content-addressed, last writer wins by a Lamport clock).
 *
 * Versions. Commands that look at the past take a version spec: a change id
 * or a prefix of one (at least 4 hex digits), a relative time ("2h ago",
 * "3 days ago", "yesterday"), an ISO date or time ("2026-11-27",
 * "2026-11-27T10:30", "...Z"), or "now". A time names the last change
 * recorded here at or before it.
 *
 * Errors. Every call returns KITH_OK or a kith_err; kith_ws_errmsg says what
 * went wrong in words ("notes.md: not UTF-8 at byte 12"). kith_ws_init and
 * kith_ws_open hand back a handle even when they fail (unless out of
 * memory), as sqlite3_open does, so that the message can be read; close it.
 *
 * Threads: a kith_ws is used from one thread at a time. Several processes may
 * open one workspace: they serialise on SQLite's locks, waiting up to the busy
 * timeout (KITH_EBUSY after it).
 */
#ifndef KITH_WS_H
#define KITH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"

typedef struct kith_ws kith_ws;

#define KITH_WS_TEXT_MAX (4u << 20) /* bytes: larger files are kept whole */
#define KITH_WS_ID_HEX   32         /* hex digits in a full change id */
#define KITH_WS_SCHEMA   4          /* store schema version this kith writes */

/* ---- lifetime ------------------------------------------------------------ */

/* Makes @dir (created if missing) a workspace: .kith/ with a new store, a new
 * device identity, workspace id and key, and a config naming the user @name
 * (NULL: the login name). Refuses (KITH_EEXIST) inside an existing workspace.
 * On return *out is the caller's (see "Errors" above); close it. */
KITH_API KITH_NODISCARD int kith_ws_init(const char *dir, const char *name,
                                         kith_ws **out /* OUT */);

/* As kith_ws_init, for a new replica of an existing workspace: its id is
 * @wsid (32 hex digits), given by an invitation. */
KITH_API KITH_NODISCARD int kith_ws_init_as(const char *dir, const char *name, const char *wsid,
                                            kith_ws **out /* OUT */);

/* Opens the workspace that holds @dir (NULL: the current folder), searching
 * upwards for .kith/. KITH_ENOTFOUND when there is none; KITH_EVERSION when
 * the store was written by a newer kith (an older one is migrated). */
KITH_API KITH_NODISCARD int kith_ws_open(const char *dir, kith_ws **out /* OUT */);

/* Closes @ws, rolling back any change that was not committed. Accepts NULL. */
KITH_API void kith_ws_close(kith_ws *ws);

/* Text of the last error on @ws. Borrowed; valid until the next call. */
KITH_API const char *kith_ws_errmsg(const kith_ws *ws);

/* The workspace's root folder (absolute), this device's id (64 hex digits of
 * its Ed25519 public key), the user's name, the workspace id (32 hex). All
 * borrowed from @ws. */
KITH_API const char *kith_ws_root(const kith_ws *ws);
KITH_API const char *kith_ws_device(const kith_ws *ws);
KITH_API const char *kith_ws_user(const kith_ws *ws);
KITH_API const char *kith_ws_id(const kith_ws *ws);

/* This device's Ed25519 key pair (libsodium layout: @sk is 64 bytes, its
 * second half the public key). Keep @sk secret; wipe it after use. */
KITH_API KITH_NODISCARD int kith_ws_device_keys(kith_ws *ws, uint8_t pk[32] /* OUT */,
                                                uint8_t sk[64] /* OUT */);

/* The workspace key of the newest epoch this device holds
 * (.kith/workspace-key), and its epoch number. */
KITH_API KITH_NODISCARD int kith_ws_workspace_key(kith_ws *ws, uint32_t *epoch /* OUT */,
                                                  uint8_t key[32] /* OUT */);

/* Replaces the workspace key with @key of @epoch (a device that joined, or
 * a key rotated after a member left), atomically, mode 0600. */
KITH_API KITH_NODISCARD int kith_ws_set_workspace_key(kith_ws *ws, uint32_t epoch,
                                                      const uint8_t key[32]);

/* The value of @key in .kith/config ("key = value" lines; read afresh), copied
 * into @out (@cap bytes, truncated). KITH_ENOTFOUND when the key is absent. */
KITH_API KITH_NODISCARD int kith_ws_config(kith_ws *ws, const char *key, char *out, size_t cap);

/* How long a call waits for another process's lock before KITH_EBUSY
 * (default 10 s). */
KITH_API void kith_ws_set_busy_timeout(kith_ws *ws, int ms);

/* ---- recording ----------------------------------------------------------- */

enum kith_ws_what {
    KITH_WS_ADDED,
    KITH_WS_MODIFIED,
    KITH_WS_DELETED,
    KITH_WS_RENAMED, /* old_path says from where; may also carry an edit */
    KITH_WS_RESTORED,
    KITH_WS_WARNING /* a file that could not be taken as it is; see message */
};

/* One file of a change, or a warning. Strings borrowed for the callback. */
typedef struct kith_ws_file {
    enum kith_ws_what what;
    const char *path;
    const char *old_path; /* KITH_WS_RENAMED only */
    uint64_t inserted;    /* code points (text) */
    uint64_t deleted;
    bool binary;         /* kept as whole-file versions */
    const char *message; /* KITH_WS_WARNING: what is wrong and what was done */
} kith_ws_file;

typedef struct kith_ws_result {
    char change[KITH_WS_ID_HEX + 1]; /* id of the change recorded, "" if none */
    size_t files;                    /* files in it */
    size_t warnings;
} kith_ws_result;

typedef void (*kith_ws_file_cb)(const kith_ws_file *f, void *ctx);

/*
 * Scans the folder and records every change since the last scan as one
 * change of this device (one SQLite transaction). Unchanged files are skipped
 * by size, mtime, inode and device without reading them. @cb (may be NULL) is
 * called per file once the change is durable, and for warnings (files kept
 * as binary because they are not UTF-8, files that vanished or could not be
 * read); *res says what was recorded. Returns an error only when nothing
 * could be recorded (the store is then unchanged).
 */
KITH_API KITH_NODISCARD int kith_ws_scan(kith_ws *ws, kith_ws_file_cb cb, void *ctx,
                                         kith_ws_result *res /* OUT */);

/*
 * Programmatic edit of the recorded text of @path (a person's tool or the
 * on-device model): at code point @pos delete @del, then insert @ins
 * (@ins_len bytes of UTF-8). Edits gather in an open change that
 * kith_ws_commit records (with its "via" tag) and writes to the file.
 * The file must be unchanged since the last scan (scan first).
 */
KITH_API KITH_NODISCARD int kith_ws_edit(kith_ws *ws, const char *path, size_t pos, size_t del,
                                         const char *ins, size_t ins_len);

/* Records the open change of kith_ws_edit calls (@via: e.g. "ai:qwen2.5",
 * or NULL) and writes the edited files atomically. */
KITH_API KITH_NODISCARD int kith_ws_commit(kith_ws *ws, const char *via,
                                           kith_ws_result *res /* OUT */);

/* ---- history ------------------------------------------------------------- */

/* A change as listings show it. Strings borrowed for the callback. */
typedef struct kith_ws_change {
    const char *id; /* KITH_WS_ID_HEX hex digits */
    int64_t time_ms;
    const char *author; /* the user's name */
    const char *device; /* hex device id */
    const char *via;    /* NULL unless made by a tool on the author's behalf */
    uint64_t inserted;
    uint64_t deleted;
    size_t npaths;
    const char *const *paths; /* the files it touched, as named then */
    size_t nnotes;            /* suggestions and comments it added or closed */
} kith_ws_change;

/* Calls @cb for each change, newest first, that touched @path (NULL: all),
 * at most @limit (0: all). A non-zero return from @cb stops the walk. */
KITH_API KITH_NODISCARD int kith_ws_log(kith_ws *ws, const char *path, size_t limit,
                                        int (*cb)(const kith_ws_change *c, void *ctx), void *ctx);

/* A document as recorded. */
typedef struct kith_ws_entry {
    const char *path;
    bool binary;
    uint64_t size;      /* bytes */
    const char *change; /* last change that touched it */
    const char *author;
    int64_t time_ms;
} kith_ws_entry;

/* Calls @cb for every live document in path order. */
KITH_API KITH_NODISCARD int kith_ws_ls(kith_ws *ws, int (*cb)(const kith_ws_entry *e, void *ctx),
                                       void *ctx);

/* One line of blame: the change that last touched the line (the most recent
 * change among those that inserted its characters). */
typedef struct kith_ws_blame_line {
    size_t line;      /* 1-based */
    const char *text; /* the line without its newline; not NUL-terminated */
    size_t len;
    const char *change;
    const char *author;
    int64_t time_ms;
    const char *via;
} kith_ws_blame_line;

/* Blame of @path at version @at (NULL: as recorded now). */
KITH_API KITH_NODISCARD int kith_ws_blame(kith_ws *ws, const char *path, const char *at,
                                          int (*cb)(const kith_ws_blame_line *l, void *ctx),
                                          void *ctx);

/* Content of @path at version @at (NULL: as recorded now). @path may name a
 * deleted document. Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_ws_cat(kith_ws *ws, const char *path, const char *at,
                                        char **out /* OUT */, size_t *len /* OUT */);

/* Unified diff of @path from version @from (NULL: as recorded now) to @to
 * (NULL: the file in the folder). Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_ws_diff(kith_ws *ws, const char *path, const char *from,
                                         const char *to, bool color, char **out /* OUT */,
                                         size_t *len /* OUT */);

/* Resolves a version spec to a full change id (KITH_WS_ID_HEX + 1 bytes). */
KITH_API KITH_NODISCARD int kith_ws_resolve(kith_ws *ws, const char *spec,
                                            char id[KITH_WS_ID_HEX + 1]);

/* Brings back @path's content at version @at as a new change (history
 * stays). Records pending edits in the folder first, so none is lost. */
KITH_API KITH_NODISCARD int kith_ws_restore(kith_ws *ws, const char *path, const char *at,
                                            kith_ws_result *res /* OUT */);

/* Brings back the deleted document last named @path, as a new change. */
KITH_API KITH_NODISCARD int kith_ws_restore_deleted(kith_ws *ws, const char *path,
                                                    kith_ws_result *res /* OUT */);

/* Checks the store: SQLite's integrity check, then every document's
 * history loads and every recorded version of it reads back. KITH_ECORRUPT
 * with the first problem in the message. */
KITH_API KITH_NODISCARD int kith_ws_check(kith_ws *ws);

/* ---- exchange between replicas ------------------------------------------------ */

/* Encodes everything @ws holds (documents with their CRDT history, changes,
 * authors, whole-file versions) for another replica of the same workspace.
 * Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_ws_export(kith_ws *ws, uint8_t **out /* OUT */,
                                           size_t *len /* OUT */);

/* Merges an export of another replica of this workspace: records the
 * folder's pending edits first, then merges documents and changes and
 * writes the files that changed (atomically). Validated first: malformed
 * input changes nothing. @cb as for kith_ws_scan, per file written. */
KITH_API KITH_NODISCARD int kith_ws_import(kith_ws *ws, const uint8_t *buf, size_t len,
                                           kith_ws_file_cb cb, void *ctx,
                                           kith_ws_result *res /* OUT */);

/* ---- sync, one change at a time ------------------------------------------------ */

/* One entry of a version vector: an author (device key) and the highest of
 * its changes held (a replica holds each author's changes 1..seq). */
typedef struct kith_ws_vv_entry {
    uint8_t author[32];
    uint64_t seq;
} kith_ws_vv_entry;

/* The changes this replica holds, per author. Caller frees *out with
 * kith_free. */
KITH_API KITH_NODISCARD int kith_ws_vv(kith_ws *ws, kith_ws_vv_entry **out /* OUT */,
                                       size_t *n /* OUT */);

/* Calls @cb, in causal order, with the payload of each change this replica
 * holds that a replica at @vv (@n entries) lacks: the change's metadata, its
 * per-file edits, its CRDT operations and its whole-file versions
 * (docs/FORMAT.md, "Change payload", version 1: it leaves out the author and
 * seq, which @cb gets beside it, so apply it with kith_ws_apply_change_from).
 * The payload is borrowed for the call; a non-zero return from @cb stops the
 * walk. */
KITH_API KITH_NODISCARD int kith_ws_changes_since(kith_ws *ws, const kith_ws_vv_entry *vv, size_t n,
                                                  int (*cb)(const uint8_t author[32], uint64_t seq,
                                                            const uint8_t *payload, size_t len,
                                                            void *ctx),
                                                  void *ctx);

/* Applies one change payload from another replica and writes the files it
 * changes (atomically). A change held already is a no-op; KITH_EMISSING when
 * it depends on a change not held yet (its author's previous one, or
 * operations of another author): deliver that first. A file the change
 * touches that holds unrecorded edits is recorded first, never overwritten.
 * res->change is the change's id. */
KITH_API KITH_NODISCARD int kith_ws_apply_change(kith_ws *ws, const uint8_t *payload, size_t len,
                                                 kith_ws_file_cb cb, void *ctx,
                                                 kith_ws_result *res /* OUT */);

/* kith_ws_apply_change for a payload that is change @seq of @author (a
 * device key), as the sealed blob that carried it says: version 1 payloads
 * (what kith_ws_changes_since writes) do not repeat them. A version 0
 * payload is taken too, and must name the same author and seq (else
 * KITH_EAUTH). kith_ws_apply_change refuses version 1 (KITH_EINVAL). */
KITH_API KITH_NODISCARD int kith_ws_apply_change_from(kith_ws *ws, const uint8_t author[32],
                                                      uint64_t seq, const uint8_t *payload,
                                                      size_t len, kith_ws_file_cb cb, void *ctx,
                                                      kith_ws_result *res /* OUT */);

/* Makes @dir a new replica (a new device) of the workspace an export @buf
 * came from: like kith_ws_init, then everything in the export is imported
 * and written to the folder. The workspace key travels separately (sync). */
KITH_API KITH_NODISCARD int kith_ws_join(const char *dir, const char *name, const uint8_t *buf,
                                         size_t len, kith_ws **out /* OUT */);

/* ---- suggestions and comments ------------------------------------------------ */

/*
 * A note is a suggestion (text proposed for a place in a document, made by a
 * person or by the on-device model on their behalf) or a comment on a range
 * of a document (a review). It is anchored in the CRDT, not to line numbers:
 * it records the document's version when it was made and the code points of
 * the anchored text in that version, so that after teammates' concurrent
 * edits are merged it is found where it belongs (the operations' order
 * decides, exactly as for text typed at that version). Notes are kept in
 * the store as documents that are never written to the folder; they sync
 * with the changes that made them. Accepting a suggestion records its text
 * as an ordinary change (with the suggestion's "via" tag) and closes it;
 * rejecting closes it. A note whose anchored text was deleted meanwhile is
 * stale: it is listed as such and cannot be accepted.
 */
enum kith_ws_note_type { KITH_WS_SUGGESTION, KITH_WS_COMMENT };
enum kith_ws_note_status {
    KITH_WS_NOTE_OPEN,
    KITH_WS_NOTE_STALE, /* open, but its anchored text was deleted */
    KITH_WS_NOTE_ACCEPTED,
    KITH_WS_NOTE_REJECTED /* or dismissed (comments) */
};

/* What a new note says. Positions are code points of the document's text as
 * recorded now (kith_ws_cat with @at NULL). */
typedef struct kith_ws_note_spec {
    enum kith_ws_note_type type;
    const char *path;
    size_t pos, len;  /* the anchored text: [pos, pos+len); a suggestion goes at pos+len */
    size_t del;       /* suggestion: code points after the anchor that it replaces */
    const char *text; /* suggestion: the new text; comment: the comment (UTF-8) */
    size_t text_len;  /* bytes */
    const char *via;  /* e.g. "ai:qwen2.5" or NULL (a person) */
} kith_ws_note_spec;

/* A note as listings show it. Strings borrowed for the callback. */
typedef struct kith_ws_note {
    const char *id; /* KITH_WS_ID_HEX hex digits; a prefix of 4 or more names it */
    enum kith_ws_note_type type;
    enum kith_ws_note_status status;
    const char *path;   /* the document's current path */
    const char *author; /* user name of the device that made it */
    const char *device; /* hex device id */
    const char *via;    /* NULL for a person; "ai:<model>" for the model */
    int64_t time_ms;
    size_t line;        /* 1-based line of the anchor's end now (at the base when stale) */
    size_t pos, len;    /* the anchored text in the current text (len 0 when stale) */
    const char *anchor; /* the anchored text as it was when the note was made */
    size_t anchor_len;  /* bytes */
    size_t del;         /* suggestion: code points replaced after the anchor */
    const char *text;   /* suggested text or comment */
    size_t text_len;    /* bytes */
} kith_ws_note;

/* Records a new note as a change of this device. @id (may be NULL) receives
 * its id. The file must hold what was recorded (KITH_EBUSY otherwise: scan
 * first). */
KITH_API KITH_NODISCARD int kith_ws_note_add(kith_ws *ws, const kith_ws_note_spec *spec,
                                             char id[KITH_WS_ID_HEX + 1] /* OUT */);
/* Calls @cb for each note on @path (NULL: all documents), oldest first,
 * open ones only unless @all. A non-zero return from @cb stops the walk. */
KITH_API KITH_NODISCARD int kith_ws_notes(kith_ws *ws, const char *path, bool all,
                                          int (*cb)(const kith_ws_note *n, void *ctx), void *ctx);
/* Accepts the suggestion @id (or a prefix): records its text where it is
 * anchored now, as a change carrying the suggestion's via tag, writes the
 * file and closes the suggestion, all in one change. Pending edits in the
 * folder are recorded first. KITH_ESTALE when it is stale, KITH_EINVAL
 * for a comment or a closed note, KITH_ENOTFOUND for an unknown id. */
KITH_API KITH_NODISCARD int kith_ws_accept(kith_ws *ws, const char *id,
                                           kith_ws_result *res /* OUT */);
/* Rejects the suggestion, or dismisses the comment, @id: closes it as a
 * change of this device. */
KITH_API KITH_NODISCARD int kith_ws_reject(kith_ws *ws, const char *id,
                                           kith_ws_result *res /* OUT */);

#endif
