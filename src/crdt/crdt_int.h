/*
 * Internals of the text CRDT. The design is Eg-walker (Gentle & Kleppmann,
 * "Collaborative Text Editing with Eg-walker", EuroSys 2025):
 *
 *  - The operation log (oplog.c) stores every operation as it was made: an
 *    insert or delete at a position *in the version its author saw* (its
 *    causal parents). Operations are numbered locally in arrival order, a
 *    number called LV (local version); runs of consecutive LVs typed by one
 *    agent compress into one record.
 *  - The text (rope.c) is the document at one version, doc->version.
 *  - Local edits at the current version touch only those two: that is why a
 *    sequential replay is a log append plus a rope edit.
 *  - Merging concurrent operations (walker.c) rebuilds a temporary CRDT state
 *    (a sequence of items with FugueMax/YjsMod origins) over the operations
 *    since the last common point, and emits each new operation transformed to
 *    a position in the current text.
 */
#ifndef KITH_CRDT_INT_H
#define KITH_CRDT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kith/crdt.h"
#include "util/util_int.h"

#define LV_NONE UINT32_MAX

/* ---- rope: the text at one version, indexed by code point ---------------- */

typedef struct rope_chunk {
    uint32_t nbytes;
    uint32_t ncp;
    char *bytes; /* capacity ROPE_CHUNK */
} rope_chunk;

typedef struct rope {
    rope_chunk *chunks;
    size_t n, cap;
    size_t total_bytes, total_cp;
    /* Cursor cache: edits cluster, so the next lookup starts where the last
     * one ended instead of summing from the first chunk. */
    size_t cur_chunk, cur_cp_start;
} rope;

int rope_init(rope *r);
void rope_free(rope *r);
int rope_insert(rope *r, size_t pos, const char *s, size_t nbytes, size_t ncp);
void rope_delete(rope *r, size_t pos, size_t ncp);
int rope_copy(const rope *r, char **out, size_t *len);
size_t rope_mem(const rope *r);

/* ---- operation log --------------------------------------------------------- */

enum { OP_INS = 0, OP_DEL = 1 };

/* A run of operations of one kind by one agent, each the child of the one
 * before. Insert runs type forward (op k inserts at pos + k); delete runs go
 * forward (op k deletes at pos, as the Delete key does) or backward (op k
 * deletes at pos - k, as Backspace does). */
typedef struct op_run {
    uint32_t lv;
    uint32_t len;
    uint32_t pos;
    uint8_t kind;
    uint8_t back;     /* delete runs: 1 = backward */
    uint32_t content; /* insert runs: byte offset of the text in oplog.ins */
    uint32_t len0;    /* text length before op lv, in its own version; LEN_UNKNOWN */
} op_run;

#define LEN_UNKNOWN UINT32_MAX

/* LVs [lv, next run's lv) were made by @agent, seqs from @seq. */
typedef struct agent_run {
    uint32_t lv;
    uint32_t agent;
    uint32_t seq;
} agent_run;

/* LVs [lv, lv + len): op lv has parents par[poff .. poff + npar), each later
 * op of the run has the op before it as its only parent. */
typedef struct graph_run {
    uint32_t lv;
    uint32_t len;
    uint32_t poff;
    uint32_t npar;
} graph_run;

/* A change: LVs [lv, next change's lv); all by one agent. */
typedef struct change {
    uint32_t lv;
    int32_t via; /* index in oplog.vias or -1 */
    int64_t time_ms;
    /* The change's id: its first op as its author made it. A change that
     * reached this replica in two deltas is two records with one id. */
    uint32_t fagent, fseq;
} change;

/* Per agent: which LVs its seqs map to, sorted by seq. */
typedef struct seq_run {
    uint32_t seq;
    uint32_t lv;
    uint32_t len;
} seq_run;

typedef struct agent_info {
    char name[KITH_AGENT_MAX + 1];
    uint32_t name_len;
    seq_run *seqs;
    size_t nseqs, capseqs;
    uint32_t next_seq; /* ops of this agent held; they are seqs 0..next_seq-1 */
} agent_info;

typedef struct oplog {
    uint32_t n; /* ops */
    op_run *ops;
    size_t nops, capops;
    char *ins; /* UTF-8 of every inserted run, in LV order */
    size_t nins, capins;
    agent_run *aruns;
    size_t naruns, caparuns;
    graph_run *gruns;
    size_t ngruns, capgruns;
    uint32_t *par;
    size_t npar, cappar;
    change *changes;
    size_t nchanges, capchanges;
    bool change_open; /* last change has no commit yet */
    agent_info *agents;
    size_t nagents, capagents;
    char **vias;
    size_t nvias, capvias;
    uint32_t *frontier; /* heads of the whole log */
    size_t nfrontier, capfrontier;
    /* Set by a caller that knows the text length at the next op's parents;
     * otherwise (LEN_UNKNOWN) oplog_add derives it where that is cheap. */
    uint32_t next_len0;
} oplog;

/* A mark to roll the log back to after a failed apply. */
typedef struct oplog_mark {
    uint32_t n;
    size_t nops, nins, naruns, ngruns, npar, nchanges, nagents, nvias;
    bool change_open;
    uint32_t *frontier;
    size_t nfrontier;
} oplog_mark;

void oplog_init(oplog *log);
void oplog_free(oplog *log);
/* 1..KITH_AGENT_MAX bytes of UTF-8, no control characters, no ','. */
bool agent_name_ok(const char *name, size_t len);
int oplog_agent(oplog *log, const char *name, size_t len, uint32_t *out);
int oplog_add(oplog *log, uint32_t agent, const uint32_t *parents, size_t npar, uint8_t kind,
              uint32_t pos, uint32_t len, const char *ins, size_t ins_bytes);
int oplog_commit(oplog *log, int64_t time_ms, const char *via);
/* As oplog_add; a delete of several ops goes backwards (Backspace) when @back. */
int oplog_add_run(oplog *log, uint32_t agent, const uint32_t *parents, size_t npar, uint8_t kind,
                  uint32_t pos, uint32_t len, bool back, const char *ins, size_t ins_bytes);

/* Makes room for that many more records, so that a decode grows once. */
int oplog_reserve(oplog *log, size_t ops, size_t ins, size_t aruns, size_t gruns, size_t par,
                  size_t changes);
const op_run *oplog_find_op(const oplog *log, uint32_t lv, size_t *idx);
const graph_run *oplog_find_graph(const oplog *log, uint32_t lv);
const agent_run *oplog_find_agent(const oplog *log, uint32_t lv, size_t *idx);
const change *oplog_find_change(const oplog *log, uint32_t lv);
uint32_t oplog_agent_run_end(const oplog *log, size_t idx);
uint32_t oplog_change_end(const oplog *log, const change *c);
/* Text length after op @lv in its own version, or LEN_UNKNOWN. */
uint32_t oplog_len_after(const oplog *log, uint32_t lv);
/* lv of (agent, seq), or LV_NONE. */
uint32_t oplog_lv_of(const oplog *log, uint32_t agent, uint64_t seq);
void oplog_id_of(const oplog *log, uint32_t lv, kith_id *id);
/* Byte offset in log->ins of code point @k of insert run @r. */
size_t oplog_ins_offset(const oplog *log, const op_run *r, uint32_t k);
int oplog_mark_take(const oplog *log, oplog_mark *m);
void oplog_rollback(oplog *log, oplog_mark *m);
/* Drops ops @lv and later (none of which may be in the text). */
int oplog_truncate(oplog *log, uint32_t lv);
void oplog_mark_free(oplog_mark *m);
size_t oplog_mem(const oplog *log);

/* ---- versions (sets of LVs) ---------------------------------------------------- */

/* Replaces frontier @f (n entries) by the frontier after adding op @lv whose
 * parents are @par. */
int frontier_advance(uint32_t **f, size_t *n, size_t *cap, uint32_t lv, const uint32_t *par,
                     size_t npar);
/* Reduces a set of LVs to its frontier (drops those that are ancestors of
 * others), sorted ascending. */
int frontier_reduce(const oplog *log, uint32_t *v, size_t *n);
/* Is @lv an ancestor of (or in) version @v? */
bool version_contains(const oplog *log, const uint32_t *v, size_t n, uint32_t lv);

/* ---- the walker ---------------------------------------------------------------- */

/* Output of a walk: emitted operations in order, positions in the text being
 * built. */
typedef struct xf_op {
    uint32_t kind;
    uint32_t pos;
    uint32_t len;     /* code points */
    uint32_t src_lv;  /* insert: the LV of the first inserted char */
} xf_op;

typedef struct xf_list {
    xf_op *ops;
    size_t n, cap;
} xf_list;

/* For blame: the text's characters as LV runs in document order. */
typedef struct lv_span {
    uint32_t lv;
    uint32_t len;
} lv_span;

typedef struct walk_out {
    xf_list xf;        /* transformed ops to apply to the text at @from */
    lv_span *spans;    /* when want_spans: visible chars after the walk */
    size_t nspans, capspans;
    uint32_t bad_lv;   /* on KITH_ERANGE: the op that is out of range */
} walk_out;

/*
 * Computes how to bring a text at version @from (@from_len code points) to
 * version @from ∪ @to:
 * fills out->xf with the operations to apply, in order. With want_spans,
 * also the LVs of every character of the resulting text (for blame).
 * KITH_ERANGE if some operation's position is past the end of its version.
 */
int walker_run(const oplog *log, const uint32_t *from, size_t nfrom, size_t from_len,
               const uint32_t *to, size_t nto, bool want_spans, walk_out *out);
void walk_out_free(walk_out *out);

/* ---- the document ---------------------------------------------------------------- */

struct kith_doc {
    oplog log;
    rope text;
    uint32_t *version; /* the text's version */
    size_t nversion, capversion;
    uint32_t bad_lv; /* after a merge fails with KITH_ERANGE: the bad op */
    /* A decoded document's history, still as bytes until a call needs it. */
    uint8_t *lazy;        /* the body as it came (zstd when lazy_zstd) */
    size_t lazy_len;      /* bytes at lazy */
    size_t lazy_body_len; /* bytes of the body decompressed */
    bool lazy_zstd;
    int lazy_rc; /* the history did not parse: every call that needs it fails */
    char errmsg[256];
};

/* Brings the text from doc->version to doc->version ∪ @to (LVs). */
int doc_merge_lvs(kith_doc *doc, const uint32_t *to, size_t nto);
int oplog_via_index(oplog *log, const char *via, int32_t *out);
/* Parses a decoded document's history if that has not happened yet. Every
 * call that reads or changes the log or the version calls it first. */
int doc_ready(kith_doc *doc);
void doc_error(kith_doc *doc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Applies transformed ops to the text; the ops were validated by the walker. */
int doc_apply_xf(kith_doc *doc, const xf_list *xf);

#endif
