/*
 * kith assist: the on-device model working on a workspace. Finding the
 * passages of the recorded files that answer a question (ask), gathering
 * what changed since a version and who changed it (catch-up), and the
 * prompts for them cut to fit the model's context. Shared by the kith
 * command (`kith ai ask`, `kith ai catchup`) and the local API's workspace
 * endpoints (/kith/ask, /kith/catchup), so that both answer alike.
 *
 * Gathering and prompting are separate calls so that a host can keep the
 * workspace on one thread (the daemon's loop) and the model on others (the
 * API's workers): gathering reads the workspace and no model; prompting
 * reads the model's chat template and vocabulary and no workspace;
 * generating is the caller's (kith_generate on a context of its own, or
 * kith_api_generate).
 *
 * Threads: the calls that take a kith_ws follow its rule (one thread at a
 * time); the others only read their arguments and may run on any thread.
 */
#ifndef KITH_ASSIST_H
#define KITH_ASSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kith/ai.h"
#include "kith/err.h"
#include "kith/ws.h"

#define KITH_ASSIST_CHUNK_LINES 20 /* lines per passage of the search index */

/* ---- prompts ------------------------------------------------------------------- */

/* The model a prompt is made for. Borrowed pointers. */
typedef struct kith_assist_lm {
    const kith_model *model; /* its chat template, if it has one, shapes the prompt */
    const kith_vocab *vocab; /* counts the prompt's tokens */
    int n_ctx;               /* context of the generation (prompt and answer) */
    int max_tokens;          /* tokens to keep free for the answer */
} kith_assist_lm;

/* Whether @lm's prompts are chat turns (then generate with parse_special,
 * so that the turn markers are read as control tokens). */
KITH_API bool kith_assist_chat(const kith_assist_lm *lm);

/* The prompt for @task (what is asked, last) over @material (the
 * documents): a system and a user turn through the chat template where the
 * model has one, else plain text ending where the model should continue.
 * Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_assist_prompt(const kith_assist_lm *lm, const char *task,
                                               const char *material, char **out /* OUT */);

/* Whether @prompt, tokenized as it will be, leaves @lm->max_tokens free in
 * the context. */
KITH_API bool kith_assist_fits(const kith_assist_lm *lm, const char *prompt);

/* The "via" tag of what a model writes: "ai:<file name without .gguf>"
 * (e.g. "ai:stories260K-f32") for the model file @path, into @out. */
KITH_API void kith_assist_via(const char *path, char *out, size_t cap);

/* ---- ask --------------------------------------------------------------------- */

/* A passage of a recorded file. */
typedef struct kith_assist_source {
    char *path;
    int first, last; /* its lines, 1-based, inclusive */
    char *text;      /* the passage (UTF-8, NUL-terminated) */
} kith_assist_source;

/*
 * Brings the search index (.kith/search.db: SQLite FTS5 over passages of
 * KITH_ASSIST_CHUNK_LINES lines of the recorded text, refreshed for the
 * files whose size or hash changed, dropped for the files that are gone)
 * up to date, then finds up to @max passages that match any word of
 * @question, best first (BM25). *n may be 0 (nothing matches). KITH_EINVAL
 * when the question has no word to search for; KITH_EIO when the index
 * cannot be opened or written; @err (if non-NULL) says why. Caller frees
 * *out with kith_assist_sources_free.
 */
KITH_API KITH_NODISCARD int kith_assist_search(kith_ws *ws, const char *question, size_t max,
                                               kith_assist_source **out /* OUT */,
                                               size_t *n /* OUT */, char *err, size_t errlen);
/*
 * As kith_assist_search, with the model's embeddings as well: the question
 * and the passages are embedded with @embed (a context of the model @m; its
 * cache is used and cleared), and each passage's place in the BM25 order
 * and in the order of cosine similarity to the question are fused
 * (reciprocal rank fusion, k = 60), so that a passage saying the same thing
 * in other words can rank, and one matching only common words sinks.
 * Passage vectors are kept in the index per @model (a name that changes
 * when the model does), so each passage is embedded once; at most
 * KITH_ASSIST_EMBED_BATCH missing ones per call, the rest at later calls.
 * @embed NULL is kith_assist_search.
 */
#define KITH_ASSIST_EMBED_BATCH 256
KITH_API KITH_NODISCARD int kith_assist_search_embed(kith_ws *ws, const char *question, size_t max,
                                                     const kith_model *m, kith_ctx *embed,
                                                     const char *model,
                                                     kith_assist_source **out /* OUT */,
                                                     size_t *n /* OUT */, char *err, size_t errlen);

/* Frees @n sources from kith_assist_search. Accepts NULL. */
KITH_API void kith_assist_sources_free(kith_assist_source *s, size_t n);

/* The prompt that answers @question from the passages @src (each headed by
 * "[path:first-last]" so the answer can cite it): fewer, then shorter
 * passages until it fits. *used is how many passages it kept (the first
 * ones: those are the answer's sources). Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_assist_ask_prompt(const kith_assist_lm *lm, const char *question,
                                                   const kith_assist_source *src, size_t n,
                                                   char **out /* OUT */, size_t *used /* OUT */);

/* ---- catch-up ------------------------------------------------------------------ */

/* A file changed since the boundary. */
typedef struct kith_assist_file {
    char *path;       /* as the newest change touching it named it */
    long added;       /* lines added since the boundary (all of them for a new file) */
    long removed;     /* lines removed */
    size_t changes;   /* changes that touched it */
    char **authors;   /* "name" or "name via ai:<model>", distinct, sorted */
    size_t n_authors; /* (at most 16 are kept) */
    char *text;       /* the start of its current text (NULL if deleted) */
    size_t text_len;  /* bytes (at most 64 KiB are kept) */
} kith_assist_file;

typedef struct kith_assist_catchup {
    size_t n_changes;               /* changes after the boundary that touched files */
    size_t n_note_changes;          /* ... and that only made or closed notes */
    char since[KITH_WS_ID_HEX + 1]; /* the change given as @since, "" when by time */
    int64_t since_ms;               /* the time given when not by change */
    kith_assist_file *files;        /* sorted by path */
    size_t n_files;
} kith_assist_catchup;

/*
 * What changed after the change @since (a version spec: a change id or
 * prefix, "2h ago", a date), or with @since NULL, at or after @since_ms
 * (milliseconds since the epoch): per file, the changes, the lines added
 * and removed, who made them and via which model, from this replica's
 * merged history. KITH_ENOTFOUND (and others from kith_ws_resolve) for a
 * @since that names no version, with @err saying why. Caller frees *out
 * with kith_assist_catchup_free.
 */
KITH_API KITH_NODISCARD int kith_assist_catchup_get(kith_ws *ws, const char *since,
                                                    int64_t since_ms,
                                                    kith_assist_catchup **out /* OUT */, char *err,
                                                    size_t errlen);
/* The prompt that summarises the changed files (their current text, cut
 * to fit). KITH_EINVAL when no file changed. Caller frees *out with
 * kith_free. */
KITH_API KITH_NODISCARD int kith_assist_catchup_prompt(const kith_assist_lm *lm,
                                                       const kith_assist_catchup *cu,
                                                       char **out /* OUT */);
/* Accepts NULL. */
KITH_API void kith_assist_catchup_free(kith_assist_catchup *cu);

#endif
