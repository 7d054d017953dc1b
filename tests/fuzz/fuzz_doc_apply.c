/*
 * Fuzz target: kith_doc_apply of arbitrary bytes onto a small fixed doc (two
 * agents, concurrent edits, multi-byte text). A refused input must leave the
 * doc exactly as it was (text, version, op count, encoding). An accepted one
 * must leave a consistent doc: valid UTF-8 text of kith_doc_len code points,
 * equal to the replay of its history, blame tiling it, and an encoding that
 * decodes back to the same text. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"
#include "tests/fuzz/fuzz_doc.h"

/* alice "hello wörld" then deletes "ello"; bob, concurrently from "hello",
 * appends "😀!" and inserts "中" at 1; both committed and merged. */
static kith_doc *fixed_doc(void)
{
    kith_doc *d = NULL;
    kith_agent a, b;
    kith_id *v = NULL, last;
    size_t n = 0;
    MUST(kith_doc_new(&d) == KITH_OK);
    MUST(kith_doc_agent(d, "alice", &a) == KITH_OK && kith_doc_agent(d, "bob", &b) == KITH_OK);
    MUST(kith_doc_insert(d, a, 0, "hello", 5) == KITH_OK);
    MUST(kith_doc_commit(d, 1000, NULL) == KITH_OK);
    MUST(kith_doc_version(d, &v, &n) == KITH_OK);
    MUST(kith_doc_insert(d, a, 5, " w\xc3\xb6rld", 7) == KITH_OK);
    MUST(kith_doc_delete(d, a, 1, 4) == KITH_OK);
    MUST(kith_doc_commit(d, 2000, NULL) == KITH_OK);
    MUST(kith_doc_edit_at(d, b, v, n, 5, 0, "\xf0\x9f\x98\x80!", 5, &last) == KITH_OK);
    MUST(kith_doc_edit_at(d, b, &last, 1, 1, 0, "\xe4\xb8\xad", 3, &last) == KITH_OK);
    MUST(kith_doc_commit(d, 3000, "ai:stories260K") == KITH_OK);
    MUST(kith_doc_merge(d, NULL, 0) == KITH_OK);
    kith_free(v);
    return d;
}

typedef struct state {
    char *text, *vstr;
    size_t len, enc_len;
    uint64_t ops;
    uint8_t *enc;
} state;

static void state_take(kith_doc *d, state *s)
{
    kith_id *v = NULL;
    size_t n = 0;
    s->ops = kith_doc_op_count(d);
    MUST(kith_doc_text(d, &s->text, &s->len) == KITH_OK);
    MUST(kith_doc_version(d, &v, &n) == KITH_OK);
    MUST(kith_doc_version_str(d, v, n, &s->vstr) == KITH_OK);
    MUST(kith_doc_encode(d, &s->enc, &s->enc_len) == KITH_OK);
    kith_free(v);
}

static void state_release(state *s)
{
    kith_free(s->text);
    kith_free(s->vstr);
    kith_free(s->enc);
}


static void check_one(const uint8_t *data, size_t size)
{
    static state before; /* the fixed doc is deterministic: take its state once */
    static int have_before;
    kith_doc *d = fixed_doc();
    state after;
    if (!have_before) {
        state_take(d, &before);
        have_before = 1;
    }
    int rc = kith_doc_apply(d, data, size);
    state_take(d, &after);
    if (rc != KITH_OK) {
        MUST(rc < 0);
        MUST(after.ops == before.ops && after.len == before.len &&
             memcmp(after.text, before.text, before.len) == 0);
        MUST(strcmp(after.vstr, before.vstr) == 0);
        MUST(after.enc_len == before.enc_len && memcmp(after.enc, before.enc, before.enc_len) == 0);
    } else {
        MUST(after.ops >= before.ops);
        MUST(utf8_count(after.text, after.len) == (long)kith_doc_len(d));
        kith_blame *b = NULL;
        size_t nb = 0, pos = 0;
        MUST(kith_doc_blame(d, NULL, 0, &b, &nb) == KITH_OK);
        for (size_t i = 0; i < nb; i++) {
            MUST(b[i].pos == pos && b[i].len > 0);
            pos += b[i].len;
        }
        MUST(pos == kith_doc_len(d));
        kith_free(b);
        /* the text is its history's: a fresh doc replaying the encoding agrees */
        kith_doc *f = NULL, *g = NULL;
        char *t = NULL;
        size_t tl = 0;
        MUST(kith_doc_new(&f) == KITH_OK);
        MUST(kith_doc_apply(f, after.enc, after.enc_len) == KITH_OK);
        MUST(kith_doc_text(f, &t, &tl) == KITH_OK);
        MUST(tl == after.len && memcmp(t, after.text, tl) == 0);
        kith_free(t);
        MUST(kith_doc_decode(after.enc, after.enc_len, &g) == KITH_OK);
        MUST(kith_doc_op_count(g) == after.ops);
        kith_doc_free(f);
        kith_doc_free(g);
        /* applying the same input again is a no-op */
        state again;
        MUST(kith_doc_apply(d, data, size) == KITH_OK);
        state_take(d, &again);
        MUST(again.ops == after.ops && again.len == after.len &&
             memcmp(again.text, after.text, after.len) == 0);
        state_release(&again);
    }
    state_release(&after);
    kith_doc_free(d);
}
