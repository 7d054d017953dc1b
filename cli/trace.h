/*
 * Editing-trace loader for `kith bench trace`: reads the editing-traces
 * format (../shared/traces, sequential/FORMAT.md and concurrent/FORMAT.md),
 * plain `.json` or gzipped `.json.gz`, validates it fully and keeps it in a
 * compact form (one buffer for all inserted text, flat arrays of patches,
 * transactions and parents) so the JSON tree is gone before anything is
 * timed. Positions and lengths count Unicode code points, as in the format.
 */
#ifndef KITH_CLI_TRACE_H
#define KITH_CLI_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_MAX_BYTES ((size_t)1 << 30) /* a trace file, decompressed */

enum trace_kind {
    TRACE_SEQUENTIAL, /* one user: patches apply in order to one text */
    TRACE_CONCURRENT, /* txns name parent txns; positions are at the parents' version */
};

/* One patch: at code point @pos delete @del code points, then insert the
 * @ins_len bytes at trace.text + @ins_off. 32 bits suffice: a trace is at
 * most TRACE_MAX_BYTES, so no valid position or length reaches 2^32, and the
 * arrays stay small next to the document being measured. */
struct trace_patch {
    uint32_t pos;
    uint32_t del;
    uint32_t ins_off;
    uint32_t ins_len;
};

/* One transaction: patches [first, first + npatches) of trace.patches, and
 * parents [first_parent, first_parent + nparents) of trace.parents (txn
 * indexes, each earlier than this txn; concurrent traces only). */
struct trace_txn {
    uint32_t first;
    uint32_t npatches;
    uint32_t agent;
    uint32_t first_parent;
    uint32_t nparents;
    int64_t time_ms; /* from "time"/"timestamp" when it parses, else 0 */
};

struct trace {
    enum trace_kind kind;
    char *text; /* every inserted string, back to back */
    size_t text_len;
    struct trace_patch *patches;
    size_t npatches;
    struct trace_txn *txns;
    size_t ntxns;
    uint32_t *parents;
    size_t nparents;
    uint32_t nagents; /* 1 for a sequential trace */
    char *end;        /* endContent (NUL-terminated) or NULL when absent */
    size_t end_len;   /* bytes */
};

/*
 * Reads and validates the trace at @path into @t. On failure returns -1, @t
 * is left empty (nothing to release) and @err holds a message without the
 * "trace 'path': " prefix, naming the txn and patch where one is at fault
 * ("txn 12 patch 3: position 90 past end 12"; indexes count from 0).
 * On success returns 0; release @t with trace_release.
 */
int trace_load(const char *path, struct trace *t, char *err, size_t errlen);

/* Frees what @t holds and empties it. Accepts an empty trace. */
void trace_release(struct trace *t);

/* Text of @p's insert; borrowed from @t. */
static inline const char *trace_ins(const struct trace *t, const struct trace_patch *p)
{
    return t->text + p->ins_off;
}

#endif
