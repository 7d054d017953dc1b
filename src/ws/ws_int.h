/*
 * Workspace internals shared by the src/ws files: the handle, the in-memory table
 * of documents (loaded whole at open: a scan must compare every file's stat
 * against it), and the store helpers. Not part of the public API.
 */
#ifndef KITH_WS_INT_H
#define KITH_WS_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "kith/crdt.h"
#include "kith/ws.h"
#include "util/util_int.h"

/* WS_NOTE: a suggestion or comment (notes.c), kept in the store as a text
 * document named .kith/notes/<id>, never written to the folder. */
enum ws_kind { WS_TEXT = 0, WS_BINARY = 1, WS_NOTE = 2 };

/* edits.what values on disk (docs/FORMAT.md): the public enum's numbers. */

typedef struct ws_doc {
    int64_t id;       /* docs.id */
    uint8_t uuid[16]; /* identity across replicas and renames */
    int kind;
    char *path; /* current (live) or last (deleted) path */
    bool deleted;
    /* Stat of the file when last recorded; mtime_ns 0 forces a re-read. */
    int64_t size, mtime_ns, ino, dev;
    uint8_t blob[32]; /* binary: hash of the current version */
    /* Last-writer-wins registers, each a (Lamport clock, author) pair:
     * existence and binary content (edits count as writes, so an edit
     * concurrent with a deletion brings the file back), and the path. */
    int64_t lamport, lamport_author;
    int64_t path_lamport, path_author;
    kith_doc *crdt; /* loaded on first use */
    int64_t snap_bytes, delta_bytes, ndeltas;
    bool seen;    /* scan: found in the folder */
    bool touched; /* in the open change */
} ws_doc;

struct kith_ws {
    sqlite3 *db;
    char *root;      /* absolute, no trailing '/' */
    char *kithdir;   /* root + "/.kith" */
    char device[65]; /* hex Ed25519 public key */
    char agent[33];  /* CRDT agent name: first 16 bytes of the key, hex */
    char wsid[33];
    char *user;
    int64_t self; /* authors.id of this device */
    int busy_ms;
    char err[512];
    /* Documents: all of them, live and deleted; a hash on path for live. */
    ws_doc **docs;
    size_t ndocs, capdocs;
    size_t *pathtab; /* open addressing: index+1 into docs, 0 = empty */
    size_t pathcap;
    bool docs_loaded;
    int64_t data_version; /* PRAGMA data_version when docs were loaded */
    /* Open change of kith_ws_edit calls: new texts by document uuid. */
    struct ws_pending {
        uint8_t uuid[16];
        char *text;
        size_t len;
    } * pend;
    size_t npend, cappend;
    /* Authors' row ids and CRDT agent names (src/ws/version.c). */
    struct ws_auth {
        int64_t id;
        char agent[33];
    } * auth_cache;
    size_t nauth_cache;
    /* Files this process replaced with a merge, by docs.id, with the
     * version each held before (store form): a save from an editor buffer
     * read before the replace is an edit at that version (scan.c). */
    struct ws_overwrite {
        int64_t doc;
        char *base;
    } * over;
    size_t nover, capover;
    /* Files this process replaced, kept open: a writer that opened the old
     * file before the replace (a shell's >>) may still write into it; what
     * it wrote is merged at the next scan instead of vanishing with the
     * unlinked inode (exchange.c). */
    struct ws_orphan {
        int fd;
        int64_t doc;
        char *base, *rel;
        int64_t size, mtime, since_ms;
    } * orphans;
    size_t norphans, caporphans;
    /* Tests only: runs between a merge's commit and its file writes, where
     * a user's save is the race that ws_writes_finish must survive. */
    void (*test_before_writes)(void *ctx);
    void *test_ctx;
};

/* errors */
int ws_error(kith_ws *ws, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ws_sqlerr(kith_ws *ws, int src, const char *what);

/* store.c */
int ws_store_create(kith_ws *ws, const char *path);
int ws_store_open(kith_ws *ws, const char *path);
int ws_begin(kith_ws *ws);
int ws_commit_tx(kith_ws *ws);
void ws_rollback(kith_ws *ws);
int ws_prepare(kith_ws *ws, sqlite3_stmt **st, const char *sql);

/* The one integer @sql selects, with @bind as ?1 unless negative. */
int ws_query_int(kith_ws *ws, const char *sql, int64_t bind, int64_t *out);
int ws_meta_get(kith_ws *ws, const char *key, char *out, size_t cap);
int ws_meta_set(kith_ws *ws, const char *key, const char *value);
int ws_author_id(kith_ws *ws, const uint8_t key[32], const char *name, int64_t *out);

/* runs.c: the edits of every change, packed in runs per document and read
 * back through the virtual table `edits` (docs/FORMAT.md, "Edit runs"). */
typedef struct ws_edit {
    int64_t change, doc;    /* changes.id, docs.id */
    int64_t what, kind;     /* KITH_WS_ADDED..., the document's ws_kind */
    const char *path;       /* the document's path after the change; required */
    const char *old_path;   /* before a rename, or NULL */
    int64_t ins, del;       /* characters inserted and deleted */
    int64_t opseq, opcount; /* the CRDT operations the edit added */
    const char *version;    /* the version it made (store form), or NULL */
    const uint8_t *blob;    /* a binary version's hash, or NULL */
    size_t blob_len;
} ws_edit;
/* Stores @e (borrowed). An edit of the same change and document is
 * replaced when @replace, else @e is dropped. */
int ws_edit_put(kith_ws *ws, const ws_edit *e, bool replace);
/* Registers the eponymous virtual table `edits` on @db. */
int ws_edits_register(sqlite3 *db);

/* changes.c: the changes, packed in runs per author and read back through
 * the virtual table `changes` (docs/FORMAT.md, "Change runs"). */
typedef struct ws_change_row {
    int64_t id;     /* 0: the next id (set on return); else this one, above all */
    int64_t author; /* authors.id */
    int64_t seq, time_ms, lamport;
    const char *via; /* or NULL */
} ws_change_row;
/* Stores change @c (borrowed) unless its (author, seq) is held: then
 * *added is false and c->id the held one's. */
int ws_change_put(kith_ws *ws, ws_change_row *c, bool *added);
/* Removes change @id (nothing if there is none). */
int ws_change_drop(kith_ws *ws, int64_t id);
/* The highest number of @author's changes (0: none) and the highest clock. */
int ws_change_last(kith_ws *ws, int64_t author, int64_t *seq, int64_t *lamport);
/* Registers the eponymous virtual table `changes` on @db. */
int ws_changes_register(sqlite3 *db);

/* vtab.c: what the virtual tables `edits` and `changes` share. */
#define WS_VT_STMTS 6
typedef struct ws_vt_stmts {
    sqlite3_stmt *st[WS_VT_STMTS];
} ws_vt_stmts;
typedef struct ws_vt {
    sqlite3_vtab base;
    sqlite3 *db;
    ws_vt_stmts stmts; /* the runs queries, by plan */
} ws_vt;
/* xConnect and xDisconnect of a table declared by @schema. */
int ws_vt_connect(sqlite3 *db, const char *schema, sqlite3_vtab **out);
int ws_vt_disconnect(sqlite3_vtab *v);
/* Sets @v's message for @src (taking @corrupt, sqlite3_mprintf'd, as the
 * one for SQLITE_CORRUPT) and returns @src. */
int ws_vt_error(sqlite3_vtab *v, int src, char *corrupt);
/* The integer `x = @v` can equal; false when none can (NULL, a fraction,
 * text that is no number). */
bool ws_vt_eq_arg(sqlite3_value *v, int64_t *out);
/* The greatest integer x with `x <= @v` (`<` with @lt); false when none
 * is. Anything else leaves it unbounded: SQLite checks constraints again
 * on every row, so a plan may only narrow where it is sure. */
bool ws_vt_max_arg(sqlite3_value *v, bool lt, int64_t *out);
/* The statement of @slot (prepared from @sql if it is taken or new). */
int ws_vt_take(sqlite3 *db, ws_vt_stmts *c, int slot, const char *sql, sqlite3_stmt **out);
/* Gives @st back to @slot, reset, or finalizes it if the slot is full. */
void ws_vt_give(ws_vt_stmts *c, int slot, sqlite3_stmt *st);
void ws_vt_free(ws_vt_stmts *c);

/* docs.c */
int ws_docs_load(kith_ws *ws);
ws_doc *ws_doc_by_path(kith_ws *ws, const char *path);
ws_doc *ws_doc_deleted_by_path(kith_ws *ws, const char *path);
ws_doc *ws_doc_by_uuid(kith_ws *ws, const uint8_t uuid[16]);
int ws_doc_add(kith_ws *ws, ws_doc *d);
int ws_doc_set_path(kith_ws *ws, ws_doc *d, const char *path, bool deleted);
int ws_doc_crdt(kith_ws *ws, ws_doc *d, kith_doc **out);
int ws_doc_save_row(kith_ws *ws, ws_doc *d);
int ws_doc_save_stat(kith_ws *ws, ws_doc *d);
int ws_doc_append_delta(kith_ws *ws, ws_doc *d, const uint8_t *delta, size_t len);
void ws_docs_free(kith_ws *ws);
void ws_docs_forget_crdt(kith_ws *ws);

/* record.c: building one change */
typedef struct ws_change ws_change;
int ws_change_begin(kith_ws *ws, ws_change **out, const char *via);
int ws_change_text(ws_change *c, ws_doc *d, int what, const char *old_path, const char *text,
                   size_t len);
int ws_change_text_at(ws_change *c, ws_doc *d, const char *base, const char *text, size_t len);
int ws_change_patch(ws_change *c, ws_doc *d, const kith_patch *p, size_t n);
int ws_doc_version_db(kith_ws *ws, kith_doc *doc, char **out);
int ws_change_binary(ws_change *c, ws_doc *d, int what, const char *old_path, const uint8_t *data,
                     size_t len);
int ws_change_meta(ws_change *c, ws_doc *d, int what, const char *old_path);
int ws_change_warn(ws_change *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ws_change_finish(ws_change *c, kith_ws_file_cb cb, void *ctx, kith_ws_result *res);
void ws_change_free(ws_change *c);
size_t ws_change_files(const ws_change *c);

/* notes.c */
bool ws_note_path_ok(const char *path, const uint8_t uuid[16]);

/* edit.c */
int ws_check_unchanged(kith_ws *ws, ws_doc *d, const char *text, size_t len);

/* version.c */
int ws_version_to_db(kith_ws *ws, const char *full, char **out);
int ws_version_from_db(kith_ws *ws, const char *db, char **out);
int ws_version_ids(kith_ws *ws, kith_doc *doc, const char *db, kith_id **ids, size_t *n);
void ws_authors_forget(kith_ws *ws);

/* util */
int64_t ws_now_ms(void);
void ws_hex(char *out, const uint8_t *p, size_t n);
int ws_unhex(uint8_t *out, const char *hex, size_t n);
int ws_read_file(kith_ws *ws, const char *rel, char **out, size_t *len, struct stat *st);
int ws_write_file(kith_ws *ws, const char *rel, const char *data, size_t len, struct stat *st);
int ws_path_check(kith_ws *ws, const char *arg, char **rel);
void ws_blob_hash(uint8_t out[32], const void *data, size_t len);
int ws_blob_put(kith_ws *ws, const uint8_t hash[32], const void *data, size_t len);
int ws_blob_get(kith_ws *ws, const uint8_t hash[32], char **out, size_t *len);
int ws_writes_finish(kith_ws *ws, bool live);
int ws_write_tmp(kith_ws *ws, const char *rel, const char *data, size_t len, struct stat *st,
                 char **tmp);
int ws_scan_locked(kith_ws *ws, kith_ws_file_cb cb, void *ctx, kith_ws_result *res);
void ws_overwrite_note(kith_ws *ws, int64_t doc, const char *base);
int ws_stage_write(kith_ws *ws, ws_doc *d, const char *text, size_t len, const char *base);
void ws_orphans_check(kith_ws *ws, bool all);
char *ws_overwrite_take(kith_ws *ws, int64_t doc);
void ws_overwrite_clear(kith_ws *ws);
void ws_change_hash(const uint8_t key[32], int64_t seq, char out[KITH_WS_ID_HEX + 1]);
bool ws_looks_text(const char *p, size_t len);

#endif
