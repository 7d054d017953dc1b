/*
 * The operation log: every operation of a document in local order (LV),
 * stored as run-length records in four independent tables (what was done,
 * by whom, after what, in which change), each appended to in LV order. The
 * tables compress runs differently: a paragraph typed in one go is one
 * op_run, one graph_run and one agent_run, whatever its length.
 */
#include <string.h>

#include "crdt/crdt_int.h"

void oplog_init(oplog *log)
{
    memset(log, 0, sizeof *log);
    log->next_len0 = LEN_UNKNOWN;
}

uint32_t oplog_len_after(const oplog *log, uint32_t lv)
{
    const op_run *r = oplog_find_op(log, lv, NULL);
    if (!r || r->len0 == LEN_UNKNOWN)
        return LEN_UNKNOWN;
    uint32_t k = lv - r->lv + 1;
    if (r->kind == OP_INS)
        return (uint64_t)r->len0 + k >= LEN_UNKNOWN ? LEN_UNKNOWN : r->len0 + k;
    return r->len0 >= k ? r->len0 - k : LEN_UNKNOWN; /* a bad history: unknown */
}

void oplog_free(oplog *log)
{
    kith_free(log->ops);
    kith_free(log->ins);
    kith_free(log->aruns);
    kith_free(log->gruns);
    kith_free(log->par);
    kith_free(log->changes);
    for (size_t i = 0; i < log->nagents; i++)
        kith_free(log->agents[i].seqs);
    kith_free(log->agents);
    for (size_t i = 0; i < log->nvias; i++)
        kith_free(log->vias[i]);
    kith_free(log->vias);
    kith_free(log->frontier);
    memset(log, 0, sizeof *log);
}

size_t oplog_mem(const oplog *log)
{
    size_t m = log->capops * sizeof(op_run) + log->capins + log->caparuns * sizeof(agent_run) +
               log->capgruns * sizeof(graph_run) + log->cappar * 4 +
               log->capchanges * sizeof(change) + log->capagents * sizeof(agent_info) +
               log->capfrontier * 4;
    for (size_t i = 0; i < log->nagents; i++)
        m += log->agents[i].capseqs * sizeof(seq_run);
    return m;
}

bool agent_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > KITH_AGENT_MAX || kith_utf8_count(name, len) < 0)
        return false;
    for (size_t i = 0; i < len; i++) /* ',' separates ids in a version string */
        if ((unsigned char)name[i] < 0x20 || name[i] == ',' || name[i] == 0x7f)
            return false;
    return true;
}

int oplog_agent(oplog *log, const char *name, size_t len, uint32_t *out)
{
    if (!agent_name_ok(name, len))
        return KITH_EINVAL;
    for (size_t i = 0; i < log->nagents; i++) {
        if (log->agents[i].name_len == len && !memcmp(log->agents[i].name, name, len)) {
            *out = (uint32_t)i;
            return KITH_OK;
        }
    }
    if (kith_grow((void **)&log->agents, &log->capagents, log->nagents + 1, sizeof(agent_info)))
        return KITH_ENOMEM;
    agent_info *a = &log->agents[log->nagents];
    memset(a, 0, sizeof *a);
    memcpy(a->name, name, len);
    a->name_len = (uint32_t)len;
    *out = (uint32_t)log->nagents++;
    return KITH_OK;
}

int frontier_advance(uint32_t **f, size_t *n, size_t *cap, uint32_t lv, const uint32_t *par,
                     size_t npar)
{
    if (*n == 1 && npar == 1 && (*f)[0] == par[0]) { /* straight on */
        (*f)[0] = lv;
        return KITH_OK;
    }
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        bool is_parent = false;
        for (size_t j = 0; j < npar; j++)
            if ((*f)[i] == par[j])
                is_parent = true;
        if (!is_parent)
            (*f)[w++] = (*f)[i];
    }
    *n = w;
    if (kith_grow((void **)f, cap, w + 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    /* Keep it sorted: lv is the newest op so it goes last. */
    (*f)[(*n)++] = lv;
    return KITH_OK;
}

/* Is the new op a plain continuation of the last one (its only parent)? */
static bool continues_last(const oplog *log, const uint32_t *parents, size_t npar)
{
    return log->n > 0 && npar == 1 && parents[0] == log->n - 1;
}

/* Can the new ops extend run @last? A delete of one op goes either way; a
 * longer one goes backwards only when @want_back. Sets *back to the run's
 * direction after extension. */
static bool op_extends(const op_run *last, uint8_t kind, uint32_t pos, uint32_t len,
                       bool want_back, bool *back)
{
    if (last->kind != kind)
        return false;
    if (kind == OP_INS)
        return pos == last->pos + last->len;
    if ((!want_back || len == 1) && (last->len == 1 || !last->back) && pos == last->pos) {
        *back = false;
        return true;
    }
    if ((want_back || len == 1) && (last->len == 1 || last->back) && last->pos >= last->len &&
        pos == last->pos - last->len) {
        *back = true;
        return true;
    }
    return false;
}

int oplog_reserve(oplog *log, size_t ops, size_t ins, size_t aruns, size_t gruns, size_t par,
                  size_t changes)
{
    if (kith_grow((void **)&log->ops, &log->capops, log->nops + ops, sizeof(op_run)) ||
        kith_grow((void **)&log->ins, &log->capins, log->nins + ins, 1) ||
        kith_grow((void **)&log->gruns, &log->capgruns, log->ngruns + gruns, sizeof(graph_run)) ||
        kith_grow((void **)&log->par, &log->cappar, log->npar + par + 1, sizeof(uint32_t)) ||
        kith_grow((void **)&log->aruns, &log->caparuns, log->naruns + aruns, sizeof(agent_run)) ||
        kith_grow((void **)&log->changes, &log->capchanges, log->nchanges + changes,
                  sizeof(change)))
        return KITH_ENOMEM;
    return KITH_OK;
}

int oplog_add(oplog *log, uint32_t agent, const uint32_t *parents, size_t npar, uint8_t kind,
              uint32_t pos, uint32_t len, const char *ins, size_t ins_bytes)
{
    return oplog_add_run(log, agent, parents, npar, kind, pos, len, false, ins, ins_bytes);
}

int oplog_add_run(oplog *log, uint32_t agent, const uint32_t *parents, size_t npar, uint8_t kind,
                  uint32_t pos, uint32_t len, bool back, const char *ins, size_t ins_bytes)
{
    if (len == 0)
        return KITH_OK;
    /* LVs stay below 2^31: the walker uses the ids above for its placeholder. */
    if ((uint64_t)log->n + len > 0x7fffffffu || (uint64_t)log->nins + ins_bytes > UINT32_MAX)
        return KITH_ETOOBIG;
    agent_info *ai = &log->agents[agent];
    if ((uint64_t)ai->next_seq + len > UINT32_MAX)
        return KITH_ETOOBIG;
    uint32_t lv = log->n;
    bool chain = continues_last(log, parents, npar);

    /* Reserve everything first so that a failure leaves the log untouched. */
    if (kith_grow((void **)&log->ops, &log->capops, log->nops + 1, sizeof(op_run)) ||
        kith_grow((void **)&log->ins, &log->capins, log->nins + ins_bytes, 1) ||
        kith_grow((void **)&log->gruns, &log->capgruns, log->ngruns + 1, sizeof(graph_run)) ||
        /* +1: par is never NULL, so par + poff is always a valid pointer */
        kith_grow((void **)&log->par, &log->cappar, log->npar + npar + 1, sizeof(uint32_t)) ||
        kith_grow((void **)&log->aruns, &log->caparuns, log->naruns + 1, sizeof(agent_run)) ||
        kith_grow((void **)&ai->seqs, &ai->capseqs, ai->nseqs + 1, sizeof(seq_run)) ||
        kith_grow((void **)&log->changes, &log->capchanges, log->nchanges + 1, sizeof(change)) ||
        kith_grow((void **)&log->frontier, &log->capfrontier, log->nfrontier + 1,
                  sizeof(uint32_t)))
        return KITH_ENOMEM;

    uint32_t len0 = log->next_len0;
    log->next_len0 = LEN_UNKNOWN;
    if (len0 == LEN_UNKNOWN)
        len0 = npar == 0 ? 0 : npar == 1 ? oplog_len_after(log, parents[0]) : LEN_UNKNOWN;

    /* What: extend the last op run when this continues it. */
    op_run *last = log->nops ? &log->ops[log->nops - 1] : NULL;
    bool ext_back = false;
    if (chain && last && op_extends(last, kind, pos, len, back, &ext_back)) {
        last->back = (uint8_t)ext_back;
        last->len += len;
    } else {
        log->ops[log->nops++] = (op_run){.lv = lv,
                                         .len = len,
                                         .pos = pos,
                                         .kind = kind,
                                         .back = (uint8_t)(kind == OP_DEL && back && len > 1),
                                         .content = (uint32_t)log->nins,
                                         .len0 = len0};
    }
    if (ins_bytes) {
        memcpy(log->ins + log->nins, ins, ins_bytes);
        log->nins += ins_bytes;
    }

    /* After what. */
    if (chain && log->ngruns) {
        log->gruns[log->ngruns - 1].len += len;
    } else {
        log->gruns[log->ngruns++] =
            (graph_run){.lv = lv, .len = len, .poff = (uint32_t)log->npar, .npar = (uint32_t)npar};
        if (npar)
            memcpy(log->par + log->npar, parents, npar * sizeof(uint32_t));
        log->npar += npar;
    }

    /* By whom. */
    if (!log->naruns || log->aruns[log->naruns - 1].agent != agent)
        log->aruns[log->naruns++] = (agent_run){.lv = lv, .agent = agent, .seq = ai->next_seq};
    seq_run *sr = ai->nseqs ? &ai->seqs[ai->nseqs - 1] : NULL;
    if (sr && sr->lv + sr->len == lv)
        sr->len += len;
    else
        ai->seqs[ai->nseqs++] = (seq_run){.seq = ai->next_seq, .lv = lv, .len = len};
    ai->next_seq += len;

    /* In which change: one agent per change. */
    const agent_run *ar_prev = NULL;
    if (log->change_open && log->nchanges) {
        size_t idx;
        ar_prev = oplog_find_agent(log, log->changes[log->nchanges - 1].lv, &idx);
    }
    if (!log->change_open || (ar_prev && ar_prev->agent != agent)) {
        log->changes[log->nchanges++] =
            (change){.lv = lv, .via = -1, .time_ms = 0, .fagent = agent, .fseq = ai->next_seq - len};
        log->change_open = true;
    }

    log->n += len;
    return frontier_advance(&log->frontier, &log->nfrontier, &log->capfrontier, log->n - 1,
                            parents, npar);
}

int oplog_via_index(oplog *log, const char *via, int32_t *out)
{
    for (size_t i = 0; i < log->nvias; i++)
        if (!strcmp(log->vias[i], via)) {
            *out = (int32_t)i;
            return KITH_OK;
        }
    if (kith_grow((void **)&log->vias, &log->capvias, log->nvias + 1, sizeof(char *)))
        return KITH_ENOMEM;
    char *v = kith_strndup(via, strlen(via));
    if (!v)
        return KITH_ENOMEM;
    log->vias[log->nvias] = v;
    *out = (int32_t)log->nvias++;
    return KITH_OK;
}

int oplog_commit(oplog *log, int64_t time_ms, const char *via)
{
    if (!log->change_open)
        return KITH_OK;
    change *c = &log->changes[log->nchanges - 1];
    if (via) {
        int rc = oplog_via_index(log, via, &c->via);
        if (rc)
            return rc;
    }
    c->time_ms = time_ms;
    log->change_open = false;
    return KITH_OK;
}

/* Binary search helpers over tables sorted by lv. */
#define FIND_RUN(arr, n, lvv, idxp)                                                      \
    do {                                                                                 \
        size_t lo_ = 0, hi_ = (n);                                                       \
        while (hi_ - lo_ > 1) {                                                          \
            size_t mid_ = (lo_ + hi_) / 2;                                               \
            if ((arr)[mid_].lv <= (lvv))                                                 \
                lo_ = mid_;                                                              \
            else                                                                         \
                hi_ = mid_;                                                              \
        }                                                                                \
        *(idxp) = lo_;                                                                   \
    } while (0)

const op_run *oplog_find_op(const oplog *log, uint32_t lv, size_t *idx)
{
    size_t i;
    if (!log->nops || lv >= log->n)
        return NULL;
    FIND_RUN(log->ops, log->nops, lv, &i);
    if (idx)
        *idx = i;
    return &log->ops[i];
}

const graph_run *oplog_find_graph(const oplog *log, uint32_t lv)
{
    size_t i;
    if (!log->ngruns || lv >= log->n)
        return NULL;
    FIND_RUN(log->gruns, log->ngruns, lv, &i);
    return &log->gruns[i];
}

const agent_run *oplog_find_agent(const oplog *log, uint32_t lv, size_t *idx)
{
    size_t i;
    if (!log->naruns || lv >= log->n)
        return NULL;
    FIND_RUN(log->aruns, log->naruns, lv, &i);
    if (idx)
        *idx = i;
    return &log->aruns[i];
}

const change *oplog_find_change(const oplog *log, uint32_t lv)
{
    size_t i;
    if (!log->nchanges || lv >= log->n)
        return NULL;
    FIND_RUN(log->changes, log->nchanges, lv, &i);
    return &log->changes[i];
}

uint32_t oplog_agent_run_end(const oplog *log, size_t idx)
{
    return idx + 1 < log->naruns ? log->aruns[idx + 1].lv : log->n;
}

uint32_t oplog_change_end(const oplog *log, const change *c)
{
    size_t i = (size_t)(c - log->changes);
    return i + 1 < log->nchanges ? log->changes[i + 1].lv : log->n;
}

uint32_t oplog_lv_of(const oplog *log, uint32_t agent, uint64_t seq)
{
    if (agent >= log->nagents)
        return LV_NONE;
    const agent_info *a = &log->agents[agent];
    if (seq >= a->next_seq)
        return LV_NONE;
    size_t lo = 0, hi = a->nseqs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (a->seqs[mid].seq <= seq)
            lo = mid;
        else
            hi = mid;
    }
    return a->seqs[lo].lv + (uint32_t)(seq - a->seqs[lo].seq);
}

void oplog_id_of(const oplog *log, uint32_t lv, kith_id *id)
{
    size_t i;
    const agent_run *ar = oplog_find_agent(log, lv, &i);
    id->agent = ar->agent;
    id->seq = ar->seq + (lv - ar->lv);
}

size_t oplog_ins_offset(const oplog *log, const op_run *r, uint32_t k)
{
    const unsigned char *s = (const unsigned char *)log->ins + r->content;
    size_t off = 0;
    while (k--) {
        unsigned c = s[off];
        off += c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    }
    return r->content + off;
}

int oplog_mark_take(const oplog *log, oplog_mark *m)
{
    memset(m, 0, sizeof *m);
    m->n = log->n;
    m->nops = log->nops;
    m->nins = log->nins;
    m->naruns = log->naruns;
    m->ngruns = log->ngruns;
    m->npar = log->npar;
    m->nchanges = log->nchanges;
    m->nagents = log->nagents;
    m->nvias = log->nvias;
    m->change_open = log->change_open;
    m->frontier = kith_malloc((log->nfrontier + 1) * sizeof(uint32_t));
    if (!m->frontier)
        return KITH_ENOMEM;
    if (log->nfrontier)
        memcpy(m->frontier, log->frontier, log->nfrontier * sizeof(uint32_t));
    m->nfrontier = log->nfrontier;
    return KITH_OK;
}

void oplog_mark_free(oplog_mark *m)
{
    kith_free(m->frontier);
    m->frontier = NULL;
}

/* Drops every op with lv >= m->n, restoring the log as it was at the mark.
 * Runs that began before the mark are cut back to it. */
void oplog_rollback(oplog *log, oplog_mark *m)
{
    uint32_t n = m->n;
    while (log->nops && log->ops[log->nops - 1].lv >= n)
        log->nops--;
    if (log->nops && log->ops[log->nops - 1].lv + log->ops[log->nops - 1].len > n)
        log->ops[log->nops - 1].len = n - log->ops[log->nops - 1].lv;
    log->nins = m->nins;
    while (log->ngruns && log->gruns[log->ngruns - 1].lv >= n)
        log->ngruns--;
    if (log->ngruns && log->gruns[log->ngruns - 1].lv + log->gruns[log->ngruns - 1].len > n)
        log->gruns[log->ngruns - 1].len = n - log->gruns[log->ngruns - 1].lv;
    log->npar = m->npar;
    while (log->naruns && log->aruns[log->naruns - 1].lv >= n)
        log->naruns--;
    for (size_t i = 0; i < log->nagents; i++) {
        agent_info *a = &log->agents[i];
        while (a->nseqs && a->seqs[a->nseqs - 1].lv >= n)
            a->nseqs--;
        if (a->nseqs) {
            seq_run *s = &a->seqs[a->nseqs - 1];
            if (s->lv + s->len > n)
                s->len = n - s->lv;
            a->next_seq = s->seq + s->len;
        } else {
            a->next_seq = 0;
        }
    }
    for (size_t i = m->nagents; i < log->nagents; i++)
        kith_free(log->agents[i].seqs);
    log->nagents = m->nagents;
    log->nchanges = m->nchanges;
    log->change_open = m->change_open;
    for (size_t i = m->nvias; i < log->nvias; i++)
        kith_free(log->vias[i]);
    log->nvias = m->nvias;
    if (m->nfrontier)
        memcpy(log->frontier, m->frontier, m->nfrontier * sizeof(uint32_t));
    log->nfrontier = m->nfrontier;
    log->n = n;
}

int oplog_truncate(oplog *log, uint32_t lv)
{
    if (lv >= log->n)
        return KITH_OK;
    oplog_mark m = {.n = lv, .nagents = log->nagents, .nvias = log->nvias};
    const op_run *r = oplog_find_op(log, lv, NULL);
    m.nins = r->kind == OP_INS ? oplog_ins_offset(log, r, lv - r->lv) : r->content;
    m.npar = log->npar;
    for (size_t i = 0; i < log->ngruns; i++)
        if (log->gruns[i].lv >= lv) {
            m.npar = log->gruns[i].poff;
            break;
        }
    m.nchanges = 0;
    while (m.nchanges < log->nchanges && log->changes[m.nchanges].lv < lv)
        m.nchanges++;
    m.change_open = false;
    /* The frontier of what is left: replay the graph's heads. */
    uint32_t *f = NULL;
    size_t nf = 0, capf = 0;
    for (size_t i = 0; i < log->ngruns && log->gruns[i].lv < lv; i++) {
        const graph_run *g = &log->gruns[i];
        uint32_t last = g->lv + g->len - 1 < lv - 1 ? g->lv + g->len - 1 : lv - 1;
        if (frontier_advance(&f, &nf, &capf, last, log->par + g->poff, g->npar)) {
            kith_free(f);
            return KITH_ENOMEM;
        }
    }
    m.frontier = f;
    m.nfrontier = nf;
    if (kith_grow((void **)&log->frontier, &log->capfrontier, nf + 1, sizeof(uint32_t))) {
        kith_free(f);
        return KITH_ENOMEM;
    }
    oplog_rollback(log, &m);
    kith_free(f);
    return KITH_OK;
}
