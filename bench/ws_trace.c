/*
 * bench_ws_trace: records a sequential editing trace into a workspace the
 * way a person's saves would reach kith: the trace is replayed and, every
 * EVERY patches, the file is written and the folder scanned (one change per
 * save, recorded by the character diff). Prints the changes recorded, the
 * store's size on disk, the size of the workspace document's CRDT encoding
 * and of the engine's encoding of the trace itself (the replayed ops).
 *
 *   bench_ws_trace TRACE.json.gz DIR [EVERY]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/trace.h"
#include "kith/kith.h"
#include "ws/ws_int.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int write_text(const char *path, kith_doc *doc)
{
    char *text = NULL;
    size_t len = 0;
    if (kith_doc_text(doc, &text, &len))
        return -1;
    FILE *f = fopen(path, "wb");
    int rc = f && fwrite(text, 1, len, f) == len ? 0 : -1;
    if (f)
        fclose(f);
    kith_free(text);
    return rc;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (long long)st.st_size;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TRACE.json.gz DIR [EVERY]\n", argv[0]);
        return 2;
    }
    size_t every = argc > 3 ? (size_t)atol(argv[3]) : 250;
    struct trace t;
    char err[256];
    if (trace_load(argv[1], &t, err, sizeof err) || t.kind != TRACE_SEQUENTIAL) {
        fprintf(stderr, "%s: %s\n", argv[1], t.kind != TRACE_SEQUENTIAL ? "not sequential" : err);
        return 1;
    }
    kith_ws *ws = NULL;
    if (kith_ws_init(argv[2], "Bench", &ws)) {
        fprintf(stderr, "%s\n", kith_ws_errmsg(ws));
        return 1;
    }
    kith_doc *doc = NULL;
    kith_agent ag;
    if (kith_doc_new(&doc) || kith_doc_agent(doc, "trace", &ag))
        return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/paper.md", kith_ws_root(ws));
    size_t changes = 0;
    double t0 = now_ms();
    for (size_t i = 0; i < t.npatches; i++) {
        const struct trace_patch *p = &t.patches[i];
        if ((p->del && kith_doc_delete(doc, ag, p->pos, p->del)) ||
            (p->ins_len && kith_doc_insert(doc, ag, p->pos, trace_ins(&t, p), p->ins_len)))
            return fprintf(stderr, "patch %zu failed\n", i), 1;
        if ((i + 1) % every == 0 || i + 1 == t.npatches) {
            kith_ws_result r;
            if (write_text(path, doc) || kith_ws_scan(ws, NULL, NULL, &r)) {
                fprintf(stderr, "scan: %s\n", kith_ws_errmsg(ws));
                return 1;
            }
            changes += r.change[0] != 0;
        }
    }
    double t1 = now_ms();
    uint8_t *enc = NULL;
    size_t trace_enc = 0, ws_enc = 0;
    if (kith_doc_encode(doc, &enc, &trace_enc))
        return 1;
    kith_free(enc);
    if (ws_docs_load(ws) || ws->ndocs != 1)
        return 1;
    kith_doc *wdoc = NULL;
    if (ws_doc_crdt(ws, ws->docs[0], &wdoc) || kith_doc_encode(wdoc, &enc, &ws_enc))
        return 1;
    kith_free(enc);
    sqlite3_exec(ws->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    char db[4200];
    snprintf(db, sizeof db, "%s/.kith/store.db", kith_ws_root(ws));
    long long store = file_size(db);
    sqlite3_exec(ws->db, "VACUUM", NULL, NULL, NULL);
    sqlite3_exec(ws->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    long long vacuumed = file_size(db);
    printf("patches %zu, saves every %zu patches: %zu changes recorded in %.0f ms\n", t.npatches,
           every, changes, t1 - t0);
    printf("store.db %lld bytes (%lld after VACUUM); workspace document encoding %zu bytes; "
           "engine encoding of the trace %zu bytes\n",
           store, vacuumed, ws_enc, trace_enc);
    printf("store / trace encoding: %.2fx (%.2fx after VACUUM)\n", (double)store / trace_enc,
           (double)vacuumed / trace_enc);
    kith_doc_free(doc);
    kith_ws_close(ws);
    trace_release(&t);
    return 0;
}
