/*
 * Fuzz target: kith_doc_decode on arbitrary bytes. Malformed input must give
 * an error and no doc. A doc that decodes must be readable and consistent:
 * its text valid UTF-8 of kith_doc_len code points, equal to the replay of
 * its own history (text_at its version, and a fresh doc that applies its
 * re-encoding); blame tiling the text; its version string parsing back; and
 * it must take a new edit and merge. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"
#include "tests/fuzz/fuzz_doc.h"

static void check_one(const uint8_t *data, size_t size)
{
    kith_doc *d = (kith_doc *)&d, *f = NULL;
    int rc = kith_doc_decode(data, size, &d);
    if (rc != KITH_OK) {
        MUST(rc < 0 && d == NULL);
        return;
    }
    MUST(d != NULL);

    char *t = NULL, *t2 = NULL, *vs = NULL;
    size_t tl = 0, t2l = 0, nb = 0, nv = 0, np = 0;
    MUST(kith_doc_text(d, &t, &tl) == KITH_OK);
    MUST(t[tl] == 0);
    MUST(utf8_count(t, tl) == (long)kith_doc_len(d));

    /*
     * kith_doc_decode trusts the text a whole-document encoding caches (it
     * loads this replica's own saved documents without a replay; untrusted
     * input goes through kith_doc_apply, which replays). A forged cache must
     * still never crash anything, but only a consistent one is checked for
     * agreement.
     */
    kith_id *v = NULL, *pv = NULL;
    rc = kith_doc_version(d, &v, &nv);
    if (rc != KITH_OK) {
        /* The history is parsed on first use: a malformed one fails every
         * call that needs it, for good, and leaves the text readable. */
        MUST(rc == KITH_ECORRUPT && v == NULL);
        kith_agent a;
        uint8_t *e = NULL;
        size_t el = 0;
        kith_blame *bb = NULL;
        MUST(kith_doc_agent(d, "fuzz", &a) == KITH_ECORRUPT);
        MUST(kith_doc_encode(d, &e, &el) == KITH_ECORRUPT && e == NULL);
        MUST(kith_doc_blame(d, NULL, 0, &bb, &nb) == KITH_ECORRUPT && bb == NULL);
        MUST(kith_doc_op_count(d) == 0);
        MUST(kith_doc_text(d, &t2, &t2l) == KITH_OK && t2l == tl && memcmp(t, t2, tl) == 0);
        kith_free(t2);
        kith_free(t);
        kith_doc_free(d);
        return;
    }
    rc = kith_doc_text_at(d, v, nv, &t2, &t2l);
    MUST(rc <= 0);
    int consistent = 0;
    if (rc == KITH_OK) {
        /* text_at of the text's own version is the cache itself: compare
         * with a replay from the empty version instead */
        kith_doc *r = NULL;
        uint8_t *e0 = NULL;
        size_t e0l = 0;
        kith_free(t2);
        t2 = NULL;
        char *vstr = NULL;
        kith_id *rv = NULL;
        size_t nrv = 0;
        MUST(kith_doc_new(&r) == KITH_OK);
        /* the cache claims to be the text at d's version: replay exactly that */
        if (kith_doc_encode(d, &e0, &e0l) == KITH_OK && kith_doc_apply(r, e0, e0l) == KITH_OK &&
            kith_doc_version_str(d, v, nv, &vstr) == KITH_OK &&
            kith_doc_version_parse(r, vstr, &rv, &nrv) == KITH_OK &&
            kith_doc_text_at(r, rv, nrv, &t2, &t2l) == KITH_OK)
            consistent = t2l == tl && memcmp(t, t2, tl) == 0;
        kith_free(vstr);
        kith_free(rv);
        kith_free(t2);
        t2 = NULL;
        kith_free(e0);
        kith_doc_free(r);
    }

    kith_blame *b = NULL;
    rc = kith_doc_blame(d, NULL, 0, &b, &nb);
    MUST(rc <= 0);
    size_t pos = 0;
    for (size_t i = 0; rc == KITH_OK && i < nb; i++) {
        MUST(b[i].pos == pos && b[i].len > 0);
        MUST(kith_doc_agent_name(d, b[i].id.agent) != NULL);
        pos += b[i].len;
    }
    if (consistent)
        MUST(rc == KITH_OK && pos == kith_doc_len(d));
    kith_free(b);

    MUST(kith_doc_version_str(d, v, nv, &vs) == KITH_OK);
    MUST(kith_doc_version_parse(d, vs, &pv, &np) == KITH_OK && np == nv);
    kith_free(pv);
    kith_free(vs);
    if (nv) { /* the text before the last op */
        kith_id prev = v[0];
        if (prev.seq > 0) {
            prev.seq--;
            rc = kith_doc_text_at(d, &prev, 1, &t2, &t2l);
            MUST(rc <= 0);
            if (rc == KITH_OK)
                MUST(utf8_count(t2, t2l) >= 0);
            kith_free(t2);
            t2 = NULL;
        }
    }
    char *vstr_d = NULL;
    MUST(kith_doc_version_str(d, v, nv, &vstr_d) == KITH_OK);
    kith_free(v);

    /* re-encode: decodes to the same text; a fresh doc replaying it agrees
     * at d's version (d may hold ops its text has not merged) when the
     * history is consistent */
    uint8_t *e = NULL;
    size_t el = 0;
    kith_doc *d2 = NULL;
    MUST(kith_doc_encode(d, &e, &el) == KITH_OK);
    MUST(kith_doc_decode(e, el, &d2) == KITH_OK);
    MUST(kith_doc_text(d2, &t2, &t2l) == KITH_OK && t2l == tl && memcmp(t, t2, tl) == 0);
    MUST(kith_doc_op_count(d2) == kith_doc_op_count(d));
    kith_free(t2);
    kith_doc_free(d2);
    MUST(kith_doc_new(&f) == KITH_OK);
    rc = kith_doc_apply(f, e, el);
    MUST(rc <= 0);
    if (consistent) {
        kith_id *fv = NULL;
        size_t nfv = 0;
        MUST(rc == KITH_OK);
        MUST(kith_doc_version_parse(f, vstr_d, &fv, &nfv) == KITH_OK);
        MUST(kith_doc_text_at(f, fv, nfv, &t2, &t2l) == KITH_OK && t2l == tl &&
             memcmp(t, t2, tl) == 0);
        kith_free(t2);
        kith_free(fv);
    }
    kith_free(vstr_d);
    kith_doc_free(f);
    kith_free(e);

    /* it takes a new edit */
    kith_agent a;
    MUST(kith_doc_agent(d, "fuzz", &a) == KITH_OK);
    MUST(kith_doc_insert(d, a, kith_doc_len(d) / 2, "\xc3\xa9", 2) == KITH_OK);
    MUST(kith_doc_len(d) == (size_t)utf8_count(t, tl) + 1);
    MUST(kith_doc_commit(d, 1, NULL) == KITH_OK);
    /* ops the text does not hold yet (edits at past versions) come in now */
    rc = kith_doc_merge(d, NULL, 0);
    MUST(rc <= 0);
    if (consistent)
        MUST(rc == KITH_OK);
    kith_free(t);
    kith_doc_free(d);
}
