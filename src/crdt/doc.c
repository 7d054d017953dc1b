/*
 * The public kith_doc API: local edits go straight to the log and the text;
 * everything that involves concurrency or the past goes through the walker.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crdt/crdt_int.h"

void doc_error(kith_doc *doc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(doc->errmsg, sizeof doc->errmsg, fmt, ap);
    va_end(ap);
}

int kith_doc_new(kith_doc **out)
{
    kith_doc *doc = kith_calloc(1, sizeof *doc);
    *out = NULL;
    if (!doc)
        return KITH_ENOMEM;
    oplog_init(&doc->log);
    rope_init(&doc->text);
    *out = doc;
    return KITH_OK;
}

void kith_doc_free(kith_doc *doc)
{
    if (!doc)
        return;
    oplog_free(&doc->log);
    rope_free(&doc->text);
    kith_free(doc->version);
    kith_free(doc->lazy);
    kith_free(doc);
}

const char *kith_doc_errmsg(const kith_doc *doc)
{
    return doc ? doc->errmsg : "no document";
}

int kith_doc_agent(kith_doc *doc, const char *name, kith_agent *out)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    size_t n = name ? strlen(name) : 0;
    if (!agent_name_ok(name ? name : "", n)) {
        doc_error(doc, "agent name must be 1 to %d bytes of UTF-8 without ',' or control "
                       "characters", KITH_AGENT_MAX);
        return KITH_EINVAL;
    }
    return oplog_agent(&doc->log, name, n, out);
}

const char *kith_doc_agent_name(const kith_doc *doc, kith_agent agent)
{
    if (doc_ready((kith_doc *)doc))
        return NULL;
    return agent < doc->log.nagents ? doc->log.agents[agent].name : NULL;
}

int kith_doc_agent_ops(kith_doc *doc, kith_agent agent, uint64_t *out)
{
    *out = 0;
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    if (agent >= doc->log.nagents)
        return KITH_EINVAL;
    *out = doc->log.agents[agent].next_seq;
    return KITH_OK;
}

size_t kith_doc_len(const kith_doc *doc)
{
    return doc->text.total_cp;
}

uint64_t kith_doc_op_count(const kith_doc *doc)
{
    if (doc_ready((kith_doc *)doc))
        return 0;
    return doc->log.n;
}

size_t kith_doc_mem(const kith_doc *doc)
{
    return sizeof *doc + oplog_mem(&doc->log) + rope_mem(&doc->text) + doc->capversion * 4 +
           doc->lazy_len;
}

int kith_doc_text(const kith_doc *doc, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    return rope_copy(&doc->text, out, len);
}

static int set_version_one(kith_doc *doc, uint32_t lv)
{
    if (kith_grow((void **)&doc->version, &doc->capversion, 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    doc->version[0] = lv;
    doc->nversion = 1;
    return KITH_OK;
}

static int check_agent(kith_doc *doc, kith_agent agent)
{
    if (agent >= doc->log.nagents) {
        doc_error(doc, "unknown agent %u", agent);
        return KITH_EINVAL;
    }
    return KITH_OK;
}

int kith_doc_insert(kith_doc *doc, kith_agent agent, size_t pos, const char *text, size_t len)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    int rc = check_agent(doc, agent);
    if (rc)
        return rc;
    if (pos > doc->text.total_cp) {
        doc_error(doc, "insert: position %zu past end %zu", pos, doc->text.total_cp);
        return KITH_ERANGE;
    }
    if (len == 0)
        return KITH_OK;
    long ncp = kith_utf8_count(text, len);
    if (ncp < 0) {
        doc_error(doc, "insert: text is not valid UTF-8");
        return KITH_EUTF8;
    }
    if (pos > doc->text.total_cp) {
        doc_error(doc, "insert: position %zu past end %zu", pos, doc->text.total_cp);
        return KITH_ERANGE;
    }
    if (kith_grow((void **)&doc->version, &doc->capversion, 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    doc->log.next_len0 = (uint32_t)doc->text.total_cp;
    rc = oplog_add(&doc->log, agent, doc->version, doc->nversion, OP_INS, (uint32_t)pos,
                   (uint32_t)ncp, text, len);
    if (rc)
        return rc;
    rc = rope_insert(&doc->text, pos, text, len, (size_t)ncp);
    if (rc)
        return rc;
    return set_version_one(doc, doc->log.n - 1);
}

int kith_doc_delete(kith_doc *doc, kith_agent agent, size_t pos, size_t count)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    int rc = check_agent(doc, agent);
    if (rc)
        return rc;
    if (pos > doc->text.total_cp || count > doc->text.total_cp - pos) {
        doc_error(doc, "delete: range %zu+%zu past end %zu", pos, count, doc->text.total_cp);
        return KITH_ERANGE;
    }
    if (kith_grow((void **)&doc->version, &doc->capversion, 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    if (count == 0)
        return KITH_OK;
    doc->log.next_len0 = (uint32_t)doc->text.total_cp;
    rc = oplog_add(&doc->log, agent, doc->version, doc->nversion, OP_DEL, (uint32_t)pos,
                   (uint32_t)count, NULL, 0);
    if (rc)
        return rc;
    rope_delete(&doc->text, pos, count);
    return set_version_one(doc, doc->log.n - 1);
}

int kith_doc_commit(kith_doc *doc, int64_t time_ms, const char *via)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    return oplog_commit(&doc->log, time_ms, via);
}

/* Converts public ids to LVs; KITH_ENOTFOUND names the first unknown one. */
static int ids_to_lvs(kith_doc *doc, const kith_id *v, size_t n, uint32_t **out)
{
    *out = kith_malloc((n ? n : 1) * sizeof(uint32_t));
    if (!*out)
        return KITH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t lv = oplog_lv_of(&doc->log, v[i].agent, v[i].seq);
        if (lv == LV_NONE) {
            doc_error(doc, "version names unknown operation %u:%llu", v[i].agent,
                      (unsigned long long)v[i].seq);
            kith_free(*out);
            *out = NULL;
            return KITH_ENOTFOUND;
        }
        (*out)[i] = lv;
    }
    return KITH_OK;
}

static bool same_set(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb; j++)
            found |= a[i] == b[j];
        if (!found)
            return false;
    }
    return true;
}

int doc_apply_xf(kith_doc *doc, const xf_list *xf)
{
    /* Check every op against the length first: a merge that starts from a
     * placeholder cannot see where the real text ends, so a hostile
     * position past it shows up only here, and must change nothing. */
    size_t len = doc->text.total_cp;
    for (size_t i = 0; i < xf->n; i++) {
        const xf_op *x = &xf->ops[i];
        if (x->pos > len || (x->kind == OP_DEL && x->len > len - x->pos)) {
            doc_error(doc, "merge: an operation's position is past the end of its version");
            return KITH_ERANGE;
        }
        len = x->kind == OP_DEL ? len - x->len : len + x->len;
    }
    for (size_t i = 0; i < xf->n; i++) {
        const xf_op *x = &xf->ops[i];
        /* The walker's positions are right for a text that matches the
         * log; a decoded text cache that lies must not make us write out of
         * bounds. */
        if (x->pos > doc->text.total_cp ||
            (x->kind == OP_DEL && x->len > doc->text.total_cp - x->pos)) {
            doc_error(doc, "text does not match its history");
            return KITH_ECORRUPT;
        }
        if (x->kind == OP_DEL) {
            rope_delete(&doc->text, x->pos, x->len);
            continue;
        }
        const op_run *r = oplog_find_op(&doc->log, x->src_lv, NULL);
        size_t a = oplog_ins_offset(&doc->log, r, x->src_lv - r->lv);
        size_t b = oplog_ins_offset(&doc->log, r, x->src_lv - r->lv + x->len);
        int rc = rope_insert(&doc->text, x->pos, doc->log.ins + a, b - a, x->len);
        if (rc)
            return rc;
    }
    return KITH_OK;
}

static void name_bad_op(kith_doc *doc, uint32_t lv, const char *what)
{
    if (lv == LV_NONE || lv >= doc->log.n) {
        doc_error(doc, "%s: operation out of range", what);
        return;
    }
    kith_id id;
    oplog_id_of(&doc->log, lv, &id);
    doc_error(doc, "%s: operation %s:%llu has a position past the end of its version", what,
              doc->log.agents[id.agent].name, (unsigned long long)id.seq);
}

/* A merge found op @bad out of range: drop it and every later op, unless the
 * text already holds one of them, so that one bad edit does not poison the
 * log for every later merge. */
static void drop_bad_ops(kith_doc *doc, uint32_t bad)
{
    if (bad == LV_NONE)
        return;
    for (size_t i = 0; i < doc->nversion; i++)
        if (doc->version[i] >= bad)
            return;
    oplog_truncate(&doc->log, bad);
}

int doc_merge_lvs(kith_doc *doc, const uint32_t *to, size_t nto)
{
    walk_out w;
    int rc = walker_run(&doc->log, doc->version, doc->nversion, doc->text.total_cp, to, nto,
                        false, &w);
    if (rc) {
        if (rc == KITH_ERANGE) {
            name_bad_op(doc, w.bad_lv, "merge");
            doc->bad_lv = w.bad_lv;
        }
        return rc;
    }
    /* The new version first: once the text changes nothing may fail. */
    size_t n = doc->nversion + nto, cap = n + 1;
    uint32_t *nv = kith_malloc(cap * sizeof(uint32_t));
    if (!nv) {
        walk_out_free(&w);
        return KITH_ENOMEM;
    }
    if (doc->nversion)
        memcpy(nv, doc->version, doc->nversion * sizeof(uint32_t));
    if (nto)
        memcpy(nv + doc->nversion, to, nto * sizeof(uint32_t));
    rc = frontier_reduce(&doc->log, nv, &n);
    if (rc == KITH_OK)
        rc = doc_apply_xf(doc, &w.xf);
    walk_out_free(&w);
    if (rc) {
        kith_free(nv);
        return rc;
    }
    kith_free(doc->version);
    doc->version = nv;
    doc->nversion = n;
    doc->capversion = cap;
    return KITH_OK;
}

int kith_doc_merge(kith_doc *doc, const kith_id *v, size_t n)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    if (!v) {
        if (same_set(doc->version, doc->nversion, doc->log.frontier, doc->log.nfrontier))
            return KITH_OK;
        uint32_t *to = kith_malloc((doc->log.nfrontier + 1) * sizeof(uint32_t));
        if (!to)
            return KITH_ENOMEM;
        if (doc->log.nfrontier)
            memcpy(to, doc->log.frontier, doc->log.nfrontier * sizeof(uint32_t));
        doc->bad_lv = LV_NONE;
        int rc = doc_merge_lvs(doc, to, doc->log.nfrontier);
        kith_free(to);
        if (rc == KITH_ERANGE)
            drop_bad_ops(doc, doc->bad_lv);
        return rc;
    }
    uint32_t *lvs;
    int rc = ids_to_lvs(doc, v, n, &lvs);
    if (rc)
        return rc;
    doc->bad_lv = LV_NONE;
    rc = doc_merge_lvs(doc, lvs, n);
    kith_free(lvs);
    if (rc == KITH_ERANGE)
        drop_bad_ops(doc, doc->bad_lv);
    return rc;
}

/* The text length at version @v (LVs) when the log knows it without a walk:
 * the empty version, the text's own, or one op with a known length. A
 * version where concurrent branches meet gives LEN_UNKNOWN: its length
 * needs a merge, so edits there are checked when they are merged. */
static uint32_t len_at(const kith_doc *doc, const uint32_t *v, size_t n)
{
    if (n == 0)
        return 0;
    if (same_set(v, n, doc->version, doc->nversion))
        return (uint32_t)doc->text.total_cp;
    return n == 1 ? oplog_len_after(&doc->log, v[0]) : LEN_UNKNOWN;
}

int kith_doc_edit_at(kith_doc *doc, kith_agent agent, const kith_id *parents, size_t nparents,
                     size_t pos, size_t del, const char *ins, size_t ins_len, kith_id *last)
{
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    int rc = check_agent(doc, agent);
    if (rc)
        return rc;
    long ncp = ins_len ? kith_utf8_count(ins, ins_len) : 0;
    if (ncp < 0) {
        doc_error(doc, "edit: text is not valid UTF-8");
        return KITH_EUTF8;
    }
    if (pos > UINT32_MAX || del > UINT32_MAX || pos + del > UINT32_MAX)
        return KITH_ERANGE;
    uint32_t *par;
    rc = ids_to_lvs(doc, parents, nparents, &par);
    if (rc)
        return rc;
    size_t npar = nparents;
    if (npar > 1)
        frontier_reduce(&doc->log, par, &npar);
    /* At the text's own version the edit is a local one: apply it now. */
    bool local = same_set(par, npar, doc->version, doc->nversion);
    uint32_t have = len_at(doc, par, npar);
    if (have != LEN_UNKNOWN && (pos > have || del > have - pos)) {
        doc_error(doc, "edit: range %zu+%zu past end %u of its version", pos, del, have);
        kith_free(par);
        return KITH_ERANGE;
    }
    if (del) {
        doc->log.next_len0 = have;
        rc = oplog_add(&doc->log, agent, par, npar, OP_DEL, (uint32_t)pos, (uint32_t)del, NULL, 0);
        if (rc)
            goto out;
        npar = 1;
        par[0] = doc->log.n - 1;
        if (local)
            rope_delete(&doc->text, pos, del);
    }
    if (ncp) {
        doc->log.next_len0 = have == LEN_UNKNOWN ? LEN_UNKNOWN : have - (uint32_t)del;
        rc = oplog_add(&doc->log, agent, par, npar, OP_INS, (uint32_t)pos, (uint32_t)ncp, ins,
                       ins_len);
        if (rc)
            goto out;
        if (local && (rc = rope_insert(&doc->text, pos, ins, ins_len, (size_t)ncp)))
            goto out;
    }
    if (del || ncp) {
        if (local && (rc = set_version_one(doc, doc->log.n - 1)))
            goto out;
        if (last)
            oplog_id_of(&doc->log, doc->log.n - 1, last);
    }
out:
    kith_free(par);
    return rc;
}

int kith_doc_version(const kith_doc *doc, kith_id **v, size_t *n)
{
    *v = NULL;
    *n = 0;
    /* Loading a decoded document's history is logically const. */
    int ready = doc_ready((kith_doc *)doc);
    if (ready)
        return ready;
    *v = kith_malloc((doc->nversion + 1) * sizeof(kith_id));
    *n = 0;
    if (!*v)
        return KITH_ENOMEM;
    for (size_t i = 0; i < doc->nversion; i++)
        oplog_id_of(&doc->log, doc->version[i], &(*v)[i]);
    *n = doc->nversion;
    return KITH_OK;
}

/* Text at LV version @v into a fresh rope. */
static int text_at_lvs(kith_doc *doc, const uint32_t *v, size_t n, rope *r)
{
    rope_init(r);
    walk_out w;
    int rc = walker_run(&doc->log, NULL, 0, 0, v, n, false, &w);
    if (rc)
        return rc;
    rope saved = doc->text;
    rope_init(&doc->text);
    rc = doc_apply_xf(doc, &w.xf);
    *r = doc->text;
    doc->text = saved;
    walk_out_free(&w);
    return rc;
}

int kith_doc_text_at(kith_doc *doc, const kith_id *v, size_t n, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    uint32_t *lvs;
    int rc = ids_to_lvs(doc, v, n, &lvs);
    if (rc)
        return rc;
    if (same_set(lvs, n, doc->version, doc->nversion)) {
        kith_free(lvs);
        return rope_copy(&doc->text, out, len);
    }
    rope r;
    rc = text_at_lvs(doc, lvs, n, &r);
    kith_free(lvs);
    if (rc == KITH_OK)
        rc = rope_copy(&r, out, len);
    rope_free(&r);
    return rc;
}

/* Patches by plain comparison: one replacement of the differing middle. */
static int diff_texts(const char *a, size_t alen, const char *b, size_t blen, kith_patch **out,
                      size_t *n)
{
    size_t pre = 0, suf = 0;
    while (pre < alen && pre < blen && a[pre] == b[pre])
        pre++;
    while (pre > 0 && ((unsigned char)a[pre] & 0xc0) == 0x80) /* back to a char start */
        pre--;
    while (suf < alen - pre && suf < blen - pre && a[alen - 1 - suf] == b[blen - 1 - suf])
        suf++;
    while (suf > 0 && ((unsigned char)a[alen - suf] & 0xc0) == 0x80)
        suf--;
    size_t ins_len = blen - pre - suf;
    *out = kith_malloc(sizeof(kith_patch) + ins_len + 1);
    if (!*out)
        return KITH_ENOMEM;
    char *txt = (char *)(*out + 1);
    memcpy(txt, b + pre, ins_len);
    txt[ins_len] = 0;
    long pos = kith_utf8_count(a, pre);
    long del = kith_utf8_count(a + pre, alen - pre - suf);
    (*out)[0] = (kith_patch){(size_t)pos, (size_t)del, txt, ins_len};
    *n = (del || ins_len) ? 1 : 0;
    return KITH_OK;
}

int kith_doc_diff(kith_doc *doc, const kith_id *from, size_t nfrom, const kith_id *to, size_t nto,
                  kith_patch **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    uint32_t *lf = NULL, *lt = NULL;
    int rc = ids_to_lvs(doc, from, nfrom, &lf);
    if (rc)
        return rc;
    rc = ids_to_lvs(doc, to, nto, &lt);
    if (rc)
        goto out;
    bool ancestor = true;
    for (size_t i = 0; i < nfrom && ancestor; i++)
        ancestor = version_contains(&doc->log, lt, nto, lf[i]);
    if (!ancestor) {
        char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        rc = kith_doc_text_at(doc, from, nfrom, &a, &al);
        if (rc == KITH_OK)
            rc = kith_doc_text_at(doc, to, nto, &b, &bl);
        if (rc == KITH_OK)
            rc = diff_texts(a, al, b, bl, out, n);
        kith_free(a);
        kith_free(b);
        goto out;
    }
    walk_out w;
    rc = walker_run(&doc->log, lf, nfrom, UINT32_MAX, lt, nto, false, &w);
    if (rc)
        goto out;
    size_t bytes = 0;
    for (size_t i = 0; i < w.xf.n; i++) {
        if (w.xf.ops[i].kind != OP_INS)
            continue;
        const op_run *r = oplog_find_op(&doc->log, w.xf.ops[i].src_lv, NULL);
        bytes += oplog_ins_offset(&doc->log, r, w.xf.ops[i].src_lv - r->lv + w.xf.ops[i].len) -
                 oplog_ins_offset(&doc->log, r, w.xf.ops[i].src_lv - r->lv) + 1;
    }
    kith_patch *p = kith_malloc(w.xf.n * sizeof(kith_patch) + bytes + 1);
    if (!p) {
        walk_out_free(&w);
        rc = KITH_ENOMEM;
        goto out;
    }
    char *txt = (char *)(p + w.xf.n);
    for (size_t i = 0; i < w.xf.n; i++) {
        const xf_op *x = &w.xf.ops[i];
        if (x->kind == OP_DEL) {
            p[i] = (kith_patch){x->pos, x->len, txt, 0};
            continue;
        }
        const op_run *r = oplog_find_op(&doc->log, x->src_lv, NULL);
        size_t a = oplog_ins_offset(&doc->log, r, x->src_lv - r->lv);
        size_t b = oplog_ins_offset(&doc->log, r, x->src_lv - r->lv + x->len);
        memcpy(txt, doc->log.ins + a, b - a);
        txt[b - a] = 0;
        p[i] = (kith_patch){x->pos, 0, txt, b - a};
        txt += b - a + 1;
    }
    *out = p;
    *n = w.xf.n;
    walk_out_free(&w);
out:
    kith_free(lf);
    kith_free(lt);
    return rc;
}

int kith_doc_blame(kith_doc *doc, const kith_id *v, size_t n, kith_blame **out, size_t *nspans)
{
    *out = NULL;
    *nspans = 0;
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    uint32_t *lvs = NULL;
    int rc;
    if (v) {
        rc = ids_to_lvs(doc, v, n, &lvs);
        if (rc)
            return rc;
    } else {
        n = doc->nversion;
        lvs = kith_malloc((n + 1) * sizeof(uint32_t));
        if (!lvs)
            return KITH_ENOMEM;
        if (n)
            memcpy(lvs, doc->version, n * sizeof(uint32_t));
    }
    walk_out w;
    rc = walker_run(&doc->log, NULL, 0, 0, lvs, n, true, &w);
    kith_free(lvs);
    if (rc)
        return rc;
    kith_blame *b = NULL;
    size_t nb = 0, cap = 0, pos = 0;
    for (size_t i = 0; i < w.nspans; i++) {
        uint32_t lv = w.spans[i].lv, end = lv + w.spans[i].len;
        while (lv < end) {
            /* Cut the span where the agent run or the change ends. */
            size_t ai;
            const agent_run *ar = oplog_find_agent(&doc->log, lv, &ai);
            const change *c = oplog_find_change(&doc->log, lv);
            uint32_t stop = end;
            uint32_t aend = oplog_agent_run_end(&doc->log, ai), cend = oplog_change_end(&doc->log, c);
            if (aend < stop)
                stop = aend;
            if (cend < stop)
                stop = cend;
            if (kith_grow((void **)&b, &cap, nb + 1, sizeof(kith_blame))) {
                kith_free(b);
                walk_out_free(&w);
                return KITH_ENOMEM;
            }
            kith_blame *e = &b[nb++];
            e->pos = pos;
            e->len = stop - lv;
            e->id.agent = ar->agent;
            e->id.seq = ar->seq + (lv - ar->lv);
            e->change.agent = c->fagent;
            e->change.seq = c->fseq;
            e->time_ms = c->time_ms;
            e->via = c->via >= 0 ? doc->log.vias[c->via] : NULL;
            pos += stop - lv;
            lv = stop;
        }
    }
    walk_out_free(&w);
    *out = b;
    *nspans = nb;
    return KITH_OK;
}

int kith_doc_version_str(const kith_doc *doc, const kith_id *v, size_t n, char **out)
{
    *out = NULL;
    /* Loading a decoded document's history is logically const. */
    int ready = doc_ready((kith_doc *)doc);
    if (ready)
        return ready;
    size_t cap = n * (KITH_AGENT_MAX + 24) + 1;
    char *s = kith_malloc(cap);
    *out = NULL;
    if (!s)
        return KITH_ENOMEM;
    size_t o = 0;
    s[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = kith_doc_agent_name(doc, v[i].agent);
        if (!name) {
            kith_free(s);
            return KITH_EINVAL;
        }
        o += (size_t)snprintf(s + o, cap - o, "%s%s:%llu", i ? "," : "", name,
                              (unsigned long long)v[i].seq);
    }
    *out = s;
    return KITH_OK;
}

int kith_doc_version_parse(kith_doc *doc, const char *s, kith_id **v, size_t *n)
{
    *v = NULL;
    *n = 0;
    int ready = doc_ready(doc);
    if (ready)
        return ready;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    kith_id *ids = kith_malloc(cap * sizeof(kith_id));
    if (!ids)
        return KITH_ENOMEM;
    size_t k = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *colon = NULL;
        for (const char *q = end; q > p; q--)
            if (q[-1] == ':') {
                colon = q - 1;
                break;
            }
        uint32_t agent = 0;
        bool found = false;
        if (colon && colon > p && colon + 1 < end) {
            for (size_t i = 0; i < doc->log.nagents; i++)
                if (doc->log.agents[i].name_len == (size_t)(colon - p) &&
                    !memcmp(doc->log.agents[i].name, p, (size_t)(colon - p))) {
                    agent = (uint32_t)i;
                    found = true;
                }
        }
        uint64_t seq = 0;
        bool digits = colon != NULL;
        for (const char *q = colon ? colon + 1 : end; q < end; q++) {
            if (*q < '0' || *q > '9' || seq > UINT64_MAX / 10)
                digits = false;
            else
                seq = seq * 10 + (uint64_t)(*q - '0');
        }
        if (!found || !digits || oplog_lv_of(&doc->log, agent, seq) == LV_NONE) {
            doc_error(doc, "version: '%.*s' names no known operation", (int)(end - p), p);
            kith_free(ids);
            return KITH_ENOTFOUND;
        }
        ids[k++] = (kith_id){agent, seq};
        p = comma ? comma + 1 : end;
        if (comma && !*p) {
            doc_error(doc, "version: trailing ','");
            kith_free(ids);
            return KITH_EINVAL;
        }
    }
    *v = ids;
    *n = k;
    return KITH_OK;
}
