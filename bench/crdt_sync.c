/*
 * bench_crdt_sync: what a replica pays to merge a small concurrent change
 * into a long history (Eg-walker's critical-version placeholder at work),
 * next to a full replay of that history (what the merge would cost without
 * it). Usage: bench_crdt_sync [OPS] (default 250000 typed ops).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kith/kith.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

#define CHECK(x)                                                                           \
    do {                                                                                   \
        int rc_ = (x);                                                                     \
        if (rc_) {                                                                         \
            fprintf(stderr, "bench_crdt_sync: %s: %s\n", #x, kith_strerror(rc_));          \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 250000;
    kith_doc *a, *b;
    kith_agent me, alice, bob;
    CHECK(kith_doc_new(&a));
    CHECK(kith_doc_agent(a, "writer", &me));
    /* A long single-author history: typing with some backspacing. */
    srand(1);
    size_t pos = 0;
    for (long i = 0; i < ops; i++) {
        size_t len = kith_doc_len(a);
        if (rand() % 50 == 0)
            pos = len ? (size_t)rand() % len : 0;
        if (len && pos && rand() % 5 == 0) {
            CHECK(kith_doc_delete(a, me, pos - 1, 1));
            pos--;
        } else {
            char c = (char)('a' + rand() % 26);
            CHECK(kith_doc_insert(a, me, pos, &c, 1));
            pos++;
        }
    }
    uint8_t *enc, *sum, *delta;
    size_t enc_len, sum_len, delta_len;
    CHECK(kith_doc_encode(a, &enc, &enc_len));
    CHECK(kith_doc_decode(enc, enc_len, &b));
    CHECK(kith_doc_agent(a, "alice", &alice));
    CHECK(kith_doc_agent(b, "bob", &bob));

    double merge_best = 1e9;
    for (int round = 0; round < 20; round++) {
        CHECK(kith_doc_insert(a, alice, 10 + round, "concurrent", 10));
        CHECK(kith_doc_insert(b, bob, 10 + round, "edits", 5));
        CHECK(kith_doc_summary(b, &sum, &sum_len));
        CHECK(kith_doc_encode_since(a, sum, sum_len, &delta, &delta_len));
        double t = now_ms();
        CHECK(kith_doc_apply(b, delta, delta_len));
        t = now_ms() - t;
        if (t < merge_best)
            merge_best = t;
        kith_free(sum);
        kith_free(delta);
        CHECK(kith_doc_summary(a, &sum, &sum_len));
        CHECK(kith_doc_encode_since(b, sum, sum_len, &delta, &delta_len));
        CHECK(kith_doc_apply(a, delta, delta_len));
        kith_free(sum);
        kith_free(delta);
    }
    char *ta, *tb;
    size_t la, lb;
    CHECK(kith_doc_text(a, &ta, &la));
    CHECK(kith_doc_text(b, &tb, &lb));
    if (la != lb || memcmp(ta, tb, la)) {
        fprintf(stderr, "bench_crdt_sync: replicas diverged\n");
        return 1;
    }
    /* A full replay of the same history, for comparison. */
    kith_id *v;
    size_t nv;
    char *t;
    size_t tl;
    CHECK(kith_doc_version(a, &v, &nv));
    double full = now_ms();
    CHECK(kith_doc_blame(a, v, nv, (kith_blame **)&t, &tl));
    full = now_ms() - full;
    printf("history %ld ops; concurrent merge (best of 20) %.3f ms; full replay %.1f ms\n",
           ops, merge_best, full);
    kith_free(t);
    kith_free(v);
    kith_free(ta);
    kith_free(tb);
    kith_free(enc);
    kith_doc_free(a);
    kith_doc_free(b);
    return 0;
}
