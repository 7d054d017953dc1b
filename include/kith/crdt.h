/*
 * kith text CRDT: one document's text and its whole editing history.
 *
 * A kith_doc holds an operation log (every insert and delete ever made, with
 * its agent, its causal parents and the change it belongs to) and the text at
 * the document's current version. The merge algorithm is Eg-walker (Gentle &
 * Kleppmann, EuroSys 2025) with FugueMax/YjsMod ordering of concurrent inserts:
 * replicas that hold the same operations hold byte-identical text, and runs
 * typed concurrently at the same place never interleave.
 *
 * Positions and lengths count Unicode code points; text is UTF-8.
 *
 * Ids. Every operation has an id (agent, seq): the agent's name (a replica
 * id, at most KITH_AGENT_MAX bytes) and the number of operations that agent
 * made before it. Inside one kith_doc an agent's name is interned as a
 * kith_agent (a small integer, valid for that document only). A version is a
 * frontier: the set of ids of the latest operations it includes (an empty
 * set is the empty document).
 *
 * Threads: a kith_doc is not thread-safe; use one from one thread at a time.
 */
#ifndef KITH_CRDT_H
#define KITH_CRDT_H

#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"

#define KITH_AGENT_MAX 64 /* bytes in an agent name */

typedef struct kith_doc kith_doc;
typedef uint32_t kith_agent;

typedef struct kith_id {
    kith_agent agent;
    uint64_t seq;
} kith_id;

/* ---- lifetime ------------------------------------------------------------ */

/* Creates an empty document. On success *out is the caller's, freed with
 * kith_doc_free; on failure *out is NULL. */
KITH_API KITH_NODISCARD int kith_doc_new(kith_doc **out /* OUT */);

/* Frees @doc and everything it holds. Accepts NULL. */
KITH_API void kith_doc_free(kith_doc *doc);

/* Text of the last error on @doc ("patch 3: position 90 past end 12"). Borrowed;
 * valid until the next call on @doc. */
KITH_API const char *kith_doc_errmsg(const kith_doc *doc);

/* ---- agents -------------------------------------------------------------- */

/* Interns agent @name in @doc: 1..KITH_AGENT_MAX bytes of UTF-8, without
 * ',' or control characters (KITH_EINVAL otherwise). */
KITH_API KITH_NODISCARD int kith_doc_agent(kith_doc *doc, const char *name, kith_agent *out /* OUT */);

/* Name of @agent; borrowed, valid while @doc lives. NULL if unknown. */
KITH_API const char *kith_doc_agent_name(const kith_doc *doc, kith_agent agent);

/* Operations of @agent that @doc holds: its seqs 0..*out-1, so *out is the
 * seq its next operation gets. KITH_EINVAL for an unknown agent. */
KITH_API KITH_NODISCARD int kith_doc_agent_ops(kith_doc *doc, kith_agent agent,
                                               uint64_t *out /* OUT */);

/* ---- local editing at the current version --------------------------------- */

/* Inserts @len bytes of UTF-8 @text at code point @pos, as @agent. */
KITH_API KITH_NODISCARD int kith_doc_insert(kith_doc *doc, kith_agent agent, size_t pos,
                                            const char *text, size_t len);

/* Deletes @count code points starting at @pos, as @agent. */
KITH_API KITH_NODISCARD int kith_doc_delete(kith_doc *doc, kith_agent agent, size_t pos,
                                            size_t count);

/*
 * Closes the current change: the operations made since the last commit become
 * one change, stamped with @time_ms (ms since the Unix epoch) and, when @via
 * is not NULL, a "via" tag (e.g. "ai:stories260K" for text a model wrote on
 * the agent's behalf) that blame reports. A change holds one agent's
 * operations only: switching agents commits the open change with time 0.
 */
KITH_API KITH_NODISCARD int kith_doc_commit(kith_doc *doc, int64_t time_ms, const char *via);

/*
 * Records an edit made by @agent at a past or concurrent version @parents
 * (@nparents ids; NULL/0 is the empty document): delete @del code points at
 * @pos, then insert @ins (@ins_len bytes) there. The text is not changed
 * until kith_doc_merge brings the edit in. On success *last is the id of the
 * edit's last operation (pass it as parents of the next edit), unless the
 * edit was empty, in which case *last is left alone. The range is checked
 * against the text at @parents (KITH_ERANGE) when that length is known
 * without a merge: the empty version, the text's own, or any single
 * operation. At a version where concurrent branches meet it is checked by
 * kith_doc_merge, which then reports and drops the edit.
 */
KITH_API KITH_NODISCARD int kith_doc_edit_at(kith_doc *doc, kith_agent agent,
                                             const kith_id *parents, size_t nparents,
                                             size_t pos, size_t del, const char *ins,
                                             size_t ins_len, kith_id *last /* OUT */);

/* Brings the text to the current version united with @v (@n ids); with
 * @v NULL, to everything the log holds. */
KITH_API KITH_NODISCARD int kith_doc_merge(kith_doc *doc, const kith_id *v, size_t n);

/* ---- reading -------------------------------------------------------------- */

/* Code points in the current text. */
KITH_API size_t kith_doc_len(const kith_doc *doc);

/* Copies the current text (NUL-terminated, @*len bytes without the NUL).
 * Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_text(const kith_doc *doc, char **out /* OUT */,
                                          size_t *len /* OUT */);

/* The current version. Caller frees *v with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_version(const kith_doc *doc, kith_id **v /* OUT */,
                                             size_t *n /* OUT */);

/* Number of operations in the log. */
KITH_API uint64_t kith_doc_op_count(const kith_doc *doc);

/* Bytes of memory @doc holds (log, text, indexes), by its own accounting. */
KITH_API size_t kith_doc_mem(const kith_doc *doc);

/* ---- history -------------------------------------------------------------- */

/* Text at version @v (@n ids). Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_text_at(kith_doc *doc, const kith_id *v, size_t n,
                                             char **out /* OUT */, size_t *len /* OUT */);

/* One edit of a diff: at code point @pos delete @del, then insert @ins_len
 * bytes at @ins. Patches apply in order, each to the result of the last. */
typedef struct kith_patch {
    size_t pos;
    size_t del;
    const char *ins;
    size_t ins_len;
} kith_patch;

/* The patches that turn the text at @from into the text at @to. *out is one
 * block (patches then their text); caller frees it with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_diff(kith_doc *doc, const kith_id *from, size_t nfrom,
                                          const kith_id *to, size_t nto,
                                          kith_patch **out /* OUT */, size_t *n /* OUT */);

/* A span of the text whose code points were inserted by one change. */
typedef struct kith_blame {
    size_t pos;        /* first code point of the span */
    size_t len;        /* code points */
    kith_id id;        /* id of the operation that inserted the first one */
    kith_id change;    /* id of the first operation of its change */
    int64_t time_ms;   /* the change's time */
    const char *via;   /* the change's via tag or NULL; borrowed from @doc */
} kith_blame;

/* Blame of the text at version @v (NULL: current). Caller frees *out with
 * kith_free; the via strings stay owned by @doc. */
KITH_API KITH_NODISCARD int kith_doc_blame(kith_doc *doc, const kith_id *v, size_t n,
                                           kith_blame **out /* OUT */, size_t *nspans /* OUT */);

/* Formats a version as "name:seq,name:seq" (empty string for the empty
 * version). Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_version_str(const kith_doc *doc, const kith_id *v, size_t n,
                                                 char **out /* OUT */);

/* Parses a version formatted as above; every id must exist in @doc. Caller
 * frees *v with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_version_parse(kith_doc *doc, const char *s,
                                                   kith_id **v /* OUT */, size_t *n /* OUT */);

/* ---- encoding and sync ------------------------------------------------------ */

/* Encodes the whole document (history and text; docs/FORMAT.md). Caller frees
 * *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_encode(kith_doc *doc, uint8_t **out /* OUT */,
                                            size_t *len /* OUT */);

/* As kith_doc_encode, with zstd compression @level (1..19; kith_doc_encode
 * uses 19, the smallest and slowest): for callers that encode often, such
 * as a store folding its deltas. Decoding does not depend on the level. */
KITH_API KITH_NODISCARD int kith_doc_encode_level(kith_doc *doc, int level,
                                                  uint8_t **out /* OUT */, size_t *len /* OUT */);

/* Decodes a whole-document encoding (a replica's own saved document: the
 * text it caches is trusted, so loading needs no replay; give anything from
 * a peer to kith_doc_apply instead). The envelope and checksum are checked
 * here and the text is readable at once; the history is parsed on the first
 * call that needs it, which fails with KITH_ECORRUPT (as every later one
 * does) if it is malformed. A malformed envelope returns an error and leaves
 * *out NULL. On success the caller frees *out with kith_doc_free. */
KITH_API KITH_NODISCARD int kith_doc_decode(const uint8_t *buf, size_t len,
                                            kith_doc **out /* OUT */);

/* The version vector of @doc (agent name -> operations held), encoded for the
 * wire. Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_summary(const kith_doc *doc, uint8_t **out /* OUT */,
                                             size_t *len /* OUT */);

/* Encodes the operations @doc holds that a peer whose summary is @summary
 * lacks, in causal order. Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_encode_since(kith_doc *doc, const uint8_t *summary,
                                                  size_t summary_len, uint8_t **out /* OUT */,
                                                  size_t *len /* OUT */);

/* Encodes the operations of @agent with seqs in [@from, @to), in causal
 * order, as a delta for kith_doc_apply (which needs their parents first).
 * KITH_EINVAL when the range is not held. Caller frees *out with kith_free. */
KITH_API KITH_NODISCARD int kith_doc_encode_range(kith_doc *doc, kith_agent agent, uint64_t from,
                                                  uint64_t to, uint8_t **out /* OUT */,
                                                  size_t *len /* OUT */);

/*
 * Applies a delta or a whole-document encoding to @doc and merges it into the
 * text. Operations @doc already holds are skipped. The input is validated
 * fully first: on any error nothing is applied. KITH_EMISSING: some operation's
 * parents are neither in @doc nor in @buf (deliver the missing ones first).
 */
KITH_API KITH_NODISCARD int kith_doc_apply(kith_doc *doc, const uint8_t *buf, size_t len);

#endif
