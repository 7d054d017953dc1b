/*
 * bench_make_trace: writes a concurrent editing trace (the editing-traces
 * format of ../shared/traces/concurrent) with many agents and branches.
 *
 * Each agent has its own replica. At every step one agent edits its replica
 * (insert, delete or replace at a random place) and, now and then, pulls the
 * changes of a few random others (summary / delta / apply: incremental
 * merges). Each edit is one transaction whose parents are the transactions
 * its replica had seen. At the end one replica pulls everything; its text is
 * the trace's endContent. `kith bench trace` then rebuilds the same history
 * through a different path (edits at past versions, one merge from scratch),
 * so agreement checks one path against the other.
 *
 * Usage: bench_make_trace OUT.json [AGENTS=300] [TXNS=20000] [SEED=1]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"

#define CHECK(x)                                                                           \
    do {                                                                                   \
        int rc_ = (x);                                                                     \
        if (rc_) {                                                                         \
            fprintf(stderr, "bench_make_trace: %s: %s\n", #x, kith_strerror(rc_));         \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

typedef struct txn {
    int agent;
    size_t pos, del;
    char ins[16];
    uint32_t *parents;
    size_t nparents;
    int children;
} txn;

static uint64_t rng;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Txn index of each (agent, seq) that ends a txn: a small open hash. */
typedef struct idmap {
    uint64_t *key;
    uint32_t *val;
    size_t cap;
} idmap;

static uint64_t id_key(int agent, uint64_t seq)
{
    return ((uint64_t)agent << 40) ^ (seq + 1);
}

static void idmap_put(idmap *m, uint64_t k, uint32_t v)
{
    size_t i = (k * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->key[i] && m->key[i] != k)
        i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
}

static uint32_t idmap_get(const idmap *m, uint64_t k)
{
    size_t i = (k * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->key[i] && m->key[i] != k)
        i = (i + 1) & (m->cap - 1);
    return m->key[i] ? m->val[i] : UINT32_MAX;
}

static void pull(kith_doc *dst, kith_doc *src)
{
    uint8_t *sum, *delta;
    size_t sl, dl;
    CHECK(kith_doc_summary(dst, &sum, &sl));
    CHECK(kith_doc_encode_since(src, sum, sl, &delta, &dl));
    CHECK(kith_doc_apply(dst, delta, dl));
    kith_free(sum);
    kith_free(delta);
}

static void json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_make_trace OUT.json [AGENTS] [TXNS] [SEED]\n");
        return 2;
    }
    int nagents = argc > 2 ? atoi(argv[2]) : 300;
    long ntxns = argc > 3 ? atol(argv[3]) : 20000;
    rng = argc > 4 ? strtoull(argv[4], NULL, 10) * 2654435761u + 1 : 88172645463325252ull;
    if (nagents < 1 || nagents > 100000 || ntxns < 1) {
        fprintf(stderr, "bench_make_trace: bad arguments\n");
        return 2;
    }
    kith_doc **rep = calloc((size_t)nagents, sizeof *rep);
    kith_agent *me = calloc((size_t)nagents, sizeof *me);
    txn *tx = calloc((size_t)ntxns, sizeof *tx);
    idmap map = {0};
    map.cap = 1;
    while (map.cap < (size_t)ntxns * 2 + 16)
        map.cap *= 2;
    map.key = calloc(map.cap, sizeof *map.key);
    map.val = calloc(map.cap, sizeof *map.val);
    if (!rep || !me || !tx || !map.key || !map.val)
        return 1;
    for (int i = 0; i < nagents; i++) {
        char name[32];
        snprintf(name, sizeof name, "agent%d", i);
        CHECK(kith_doc_new(&rep[i]));
        CHECK(kith_doc_agent(rep[i], name, &me[i]));
    }
    static const char *words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "then ",
                                  "ran\n", "é ", "中 ", "😀 "};
    for (long t = 0; t < ntxns; t++) {
        /* Agents come in bursts so that branches grow before they meet. */
        int a = (int)(next_rand() % (uint32_t)nagents);
        kith_doc *d = rep[a];
        if (next_rand() % 4 == 0) { /* pull a few others first */
            int k = 1 + (int)(next_rand() % 3);
            for (int j = 0; j < k; j++)
                pull(d, rep[next_rand() % (uint32_t)nagents]);
        }
        /* Parents: the txns that end the replica's version. */
        kith_id *v;
        size_t nv;
        CHECK(kith_doc_version(d, &v, &nv));
        tx[t].agent = a;
        tx[t].parents = calloc(nv + 1, sizeof(uint32_t));
        for (size_t i = 0; i < nv; i++) {
            const char *name = kith_doc_agent_name(d, v[i].agent);
            int who = atoi(name + 5);
            uint32_t p = idmap_get(&map, id_key(who, v[i].seq));
            if (p == UINT32_MAX) {
                fprintf(stderr, "bench_make_trace: version names no txn\n");
                return 1;
            }
            tx[t].parents[tx[t].nparents++] = p;
            tx[t].children++;
            tx[p].children++;
            tx[t].children--;
        }
        kith_free(v);
        size_t len = kith_doc_len(d);
        size_t pos = len ? next_rand() % (len + 1) : 0;
        size_t del = 0;
        uint32_t r = next_rand() % 10;
        if (len && pos < len && r < 3)
            del = 1 + next_rand() % (len - pos < 8 ? len - pos : 8);
        const char *w = r == 0 ? "" : words[next_rand() % (sizeof words / sizeof words[0])];
        if (!del && !*w)
            w = "x";
        snprintf(tx[t].ins, sizeof tx[t].ins, "%s", w);
        tx[t].pos = pos;
        tx[t].del = del;
        if (del)
            CHECK(kith_doc_delete(d, me[a], pos, del));
        if (*w)
            CHECK(kith_doc_insert(d, me[a], pos, w, strlen(w)));
        CHECK(kith_doc_commit(d, 0, NULL));
        CHECK(kith_doc_version(d, &v, &nv));
        idmap_put(&map, id_key(a, v[0].seq), (uint32_t)t);
        kith_free(v);
    }
    /* The last txn must contain everything: agent 0 pulls all, then types. */
    for (int i = 1; i < nagents; i++)
        pull(rep[0], rep[i]);
    char *text;
    size_t text_len;
    CHECK(kith_doc_text(rep[0], &text, &text_len));

    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    kith_id *v;
    size_t nv;
    CHECK(kith_doc_version(rep[0], &v, &nv));
    fprintf(f, "{\"kind\":\"concurrent\",\"numAgents\":%d,\"endContent\":", nagents);
    json_string(f, text, text_len);
    fprintf(f, ",\"txns\":[\n");
    for (long t = 0; t < ntxns; t++) {
        fprintf(f, "{\"parents\":[");
        for (size_t i = 0; i < tx[t].nparents; i++)
            fprintf(f, "%s%u", i ? "," : "", tx[t].parents[i]);
        fprintf(f, "],\"numChildren\":0,\"agent\":%d,\"time\":\"1970-01-01T00:00:00Z\",", tx[t].agent);
        fprintf(f, "\"patches\":[[%zu,%zu,", tx[t].pos, tx[t].del);
        json_string(f, tx[t].ins, strlen(tx[t].ins));
        fprintf(f, "]]},\n");
    }
    /* A final txn with no patches whose parents are everything. */
    fprintf(f, "{\"parents\":[");
    for (size_t i = 0; i < nv; i++) {
        const char *name = kith_doc_agent_name(rep[0], v[i].agent);
        fprintf(f, "%s%u", i ? "," : "", idmap_get(&map, id_key(atoi(name + 5), v[i].seq)));
    }
    fprintf(f, "],\"numChildren\":0,\"agent\":0,\"time\":\"1970-01-01T00:00:00Z\",\"patches\":[]}\n]}\n");
    fclose(f);
    fprintf(stderr, "bench_make_trace: %d agents, %ld txns, final text %zu bytes, %zu heads\n",
            nagents, ntxns, text_len, nv);
    kith_free(v);
    kith_free(text);
    for (int i = 0; i < nagents; i++)
        kith_doc_free(rep[i]);
    for (long t = 0; t < ntxns; t++)
        free(tx[t].parents);
    free(rep);
    free(me);
    free(tx);
    free(map.key);
    free(map.val);
    return 0;
}
