/*
 * `kith bench trace`: replays editing traces (cli/trace.h) through the CRDT
 * and reports what docs/BENCHMARKS.md compares with the peers: replay (or
 * merge) time, the size of the whole history encoded, the time to decode it
 * and read the text, the document's own memory accounting and the process's
 * peak RSS. A trace is parsed before anything is timed; times are medians of
 * --runs replays in this process, each into a fresh document. The final text
 * must equal the trace's endContent byte for byte, or the command fails.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/trace.h"
#include "kith/kith.h"

#define RUNS_DEFAULT 5
#define RUNS_MAX     1000

struct opts {
    int json;
    int runs;
    int commit;
    const char *output;
};

struct result {
    size_t patches;
    double replay_ms;
    double encode_ms;
    double decode_ms;
    size_t encoded_bytes;
    size_t doc_bytes;
    long rss_delta_kb; /* resident growth across the kept replay; -1 unknown */
    long peak_rss_kb;
};

static const char usage_text[] =
    "usage: kith bench trace [--json] [--runs N] [--output FILE] [--commit] FILE...\n"
    "\n"
    "Replays editing traces (.json or .json.gz, the editing-traces format) through\n"
    "the CRDT and checks the final text against the trace's endContent.\n"
    "A sequential trace is replayed as one agent's local edits; a concurrent trace\n"
    "records every txn at its parents' version, one agent per trace agent, then\n"
    "merges everything.\n"
    "\n"
    "  --json         one JSON object per trace per line\n"
    "  --runs N       replays per trace; times are the median (default 5)\n"
    "  --output FILE  write the final text to FILE (one trace only)\n"
    "  --commit       close a change (kith_doc_commit) after every txn\n"
    "  -h, --help     show this help\n"
    "\n"
    "Columns: patches; replay_ms (sequential: all edits; concurrent: recording\n"
    "every edit and the merge); encoded_bytes (kith_doc_encode of the whole\n"
    "history); encode_ms; decode_ms (kith_doc_decode + kith_doc_text); doc_bytes\n"
    "(kith_doc_mem after replay); rss_delta_kb (resident growth across the last\n"
    "replay); peak_rss_kb (the whole process's peak so far, from getrusage:\n"
    "parse buffers and earlier traces included).\n"
    "Errors name txns and patches counting from 0.\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of @n values; sorts @v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_maxrss; /* KiB on Linux */
}

/* Resident memory now, from /proc (Linux); -1 where it cannot be read. */
static long rss_now_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res;
    if (!f)
        return -1;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? res * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* "dir/automerge-paper.json.gz" -> "automerge-paper" */
static void trace_name(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    static const char *const exts[] = {".json.gz", ".json", ".gz"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strcmp(base + n - e, exts[i])) {
            n -= e;
            break;
        }
    }
    snprintf(out, outlen, "%.*s", (int)n, base);
}

/* Formats an engine failure for @rc, preferring the document's own text. */
static void engine_err(char *err, size_t errlen, const kith_doc *doc, int rc, const char *where)
{
    const char *msg = doc ? kith_doc_errmsg(doc) : NULL;
    if (!msg || !*msg)
        msg = kith_strerror(rc);
    snprintf(err, errlen, "%s: %s", where, msg);
}

/* Replays a sequential trace as one agent's local edits. */
static int replay_seq(const struct trace *t, kith_doc *doc, int commit, char *err, size_t errlen)
{
    kith_agent a;
    char where[64];
    int rc = kith_doc_agent(doc, "trace", &a);
    if (rc) {
        engine_err(err, errlen, doc, rc, "agent");
        return -1;
    }
    for (size_t i = 0; i < t->ntxns; i++) {
        const struct trace_txn *x = &t->txns[i];
        for (uint32_t j = 0; j < x->npatches; j++) {
            const struct trace_patch *p = &t->patches[x->first + j];
            rc = p->del ? kith_doc_delete(doc, a, p->pos, p->del) : 0;
            if (!rc && p->ins_len)
                rc = kith_doc_insert(doc, a, p->pos, trace_ins(t, p), p->ins_len);
            if (rc) {
                snprintf(where, sizeof where, "txn %zu patch %u", i, j);
                engine_err(err, errlen, doc, rc, where);
                return -1;
            }
        }
        if (commit) {
            rc = kith_doc_commit(doc, x->time_ms, NULL);
            if (rc) {
                snprintf(where, sizeof where, "txn %zu: commit", i);
                engine_err(err, errlen, doc, rc, where);
                return -1;
            }
        }
    }
    return 0;
}

/* What a concurrent replay needs besides the document, allocated once per
 * trace so that the timed replays do not include it. */
struct conc_state {
    kith_agent *agents;
    uint32_t *front_off; /* txn -> its version in ids[] */
    uint32_t *front_n;
    kith_id *ids;
    size_t nids, cap_ids;
    kith_id *pv; /* scratch: one txn's parents' version */
    size_t cap_pv;
};

static void conc_release(struct conc_state *s)
{
    free(s->agents);
    free(s->front_off);
    free(s->front_n);
    free(s->ids);
    free(s->pv);
    memset(s, 0, sizeof *s);
}

static int conc_init(struct conc_state *s, const struct trace *t)
{
    memset(s, 0, sizeof *s);
    s->agents = malloc(t->nagents * sizeof *s->agents);
    s->front_off = malloc((t->ntxns + 1) * sizeof *s->front_off);
    s->front_n = malloc((t->ntxns + 1) * sizeof *s->front_n);
    s->cap_ids = t->ntxns + t->nparents + 1;
    s->ids = malloc(s->cap_ids * sizeof *s->ids);
    s->cap_pv = 64;
    s->pv = malloc(s->cap_pv * sizeof *s->pv);
    if (!s->agents || !s->front_off || !s->front_n || !s->ids || !s->pv) {
        conc_release(s);
        return -1;
    }
    return 0;
}

static int push_id(kith_id **v, size_t *n, size_t *cap, kith_id id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].agent == id.agent && (*v)[i].seq == id.seq)
            return 0; /* a version is a set */
    if (*n == *cap) {
        size_t c = *cap * 2;
        kith_id *q = realloc(*v, c * sizeof *q);
        if (!q)
            return -1;
        *v = q;
        *cap = c;
    }
    (*v)[(*n)++] = id;
    return 0;
}

/*
 * Replays a concurrent trace: each txn's first patch is recorded at the
 * version its parent txns reached, each later patch after the one before
 * (kith_doc_edit_at), then one merge brings the text to everything. A txn
 * that made no operation stands for the union of its parents' versions.
 */
static int replay_conc(const struct trace *t, struct conc_state *s, kith_doc *doc, int commit,
                       char *err, size_t errlen)
{
    char where[64];
    int rc;
    for (uint32_t i = 0; i < t->nagents; i++) {
        char name[32];
        snprintf(name, sizeof name, "agent%u", i);
        rc = kith_doc_agent(doc, name, &s->agents[i]);
        if (rc) {
            engine_err(err, errlen, doc, rc, "agent");
            return -1;
        }
    }
    s->nids = 0;
    for (size_t i = 0; i < t->ntxns; i++) {
        const struct trace_txn *x = &t->txns[i];
        size_t npv = 0;
        for (uint32_t k = 0; k < x->nparents; k++) {
            uint32_t par = t->parents[x->first_parent + k];
            for (uint32_t m = 0; m < s->front_n[par]; m++)
                if (push_id(&s->pv, &npv, &s->cap_pv, s->ids[s->front_off[par] + m]))
                    goto oom;
        }
        kith_id last;
        int made = 0;
        for (uint32_t j = 0; j < x->npatches; j++) {
            const struct trace_patch *p = &t->patches[x->first + j];
            if (!p->del && !p->ins_len)
                continue; /* the engine would leave last alone anyway */
            rc = kith_doc_edit_at(doc, s->agents[x->agent], made ? &last : s->pv, made ? 1 : npv,
                                  p->pos, p->del, trace_ins(t, p), p->ins_len, &last);
            if (rc) {
                snprintf(where, sizeof where, "txn %zu patch %u", i, j);
                engine_err(err, errlen, doc, rc, where);
                return -1;
            }
            made = 1;
        }
        if (commit) {
            rc = kith_doc_commit(doc, x->time_ms, NULL);
            if (rc) {
                snprintf(where, sizeof where, "txn %zu: commit", i);
                engine_err(err, errlen, doc, rc, where);
                return -1;
            }
        }
        s->front_off[i] = (uint32_t)s->nids;
        if (made) {
            /* Appended without push_id's set check: each txn's last id is
             * new, and the check made building a trace quadratic. */
            if (s->nids == s->cap_ids) {
                size_t c = s->cap_ids ? s->cap_ids * 2 : 64;
                kith_id *q = realloc(s->ids, c * sizeof *q);
                if (!q)
                    goto oom;
                s->ids = q;
                s->cap_ids = c;
            }
            s->ids[s->nids++] = last;
            s->front_n[i] = 1;
        } else {
            /* Appended one by one without the set check: the parents'
             * versions hold distinct, mutually concurrent ids already. */
            for (size_t k = 0; k < npv; k++) {
                if (s->nids == s->cap_ids) {
                    size_t c = s->cap_ids * 2;
                    kith_id *q = realloc(s->ids, c * sizeof *q);
                    if (!q)
                        goto oom;
                    s->ids = q;
                    s->cap_ids = c;
                }
                s->ids[s->nids++] = s->pv[k];
            }
            s->front_n[i] = (uint32_t)npv;
        }
    }
    rc = kith_doc_merge(doc, NULL, 0);
    if (rc) {
        engine_err(err, errlen, doc, rc, "merge");
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Says where @got first differs from the expected text. */
static void text_mismatch(char *err, size_t errlen, const char *what, const char *got,
                          size_t got_len, const char *want, size_t want_len)
{
    size_t i = 0, line = 1;
    while (i < got_len && i < want_len && got[i] == want[i]) {
        if (got[i] == '\n')
            line++;
        i++;
    }
    snprintf(err, errlen,
             "%s differs from endContent at byte %zu (line %zu): %zu bytes, expected %zu", what, i,
             line, got_len, want_len);
}

static int write_file(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return cli_error("cannot write '%s': %s", path, strerror(errno));
    size_t w = fwrite(buf, 1, len, f);
    int bad = w != len || ferror(f);
    if (fclose(f) || bad)
        return cli_error("cannot write '%s': %s", path, strerror(errno));
    return 0;
}

/* Replays, checks, encodes and decodes one loaded trace into @res. Returns 0,
 * -1 with the message in @err, or -2 when the message is printed already. */
static int bench_one(const struct trace *t, const struct opts *o, struct result *res, char *err,
                     size_t errlen)
{
    double *times = malloc((size_t)o->runs * sizeof *times);
    struct conc_state cs = {0};
    kith_doc *doc = NULL, *back = NULL;
    char *text = NULL, *text2 = NULL;
    uint8_t *enc = NULL;
    size_t text_len = 0, text2_len = 0, enc_len = 0;
    int rc = -1, e;

    if (!times || (t->kind == TRACE_CONCURRENT && conc_init(&cs, t))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memset(res, 0, sizeof *res);
    res->patches = t->npatches;

    long rss0 = -1;
    for (int r = 0; r < o->runs; r++) {
        kith_doc_free(doc);
        doc = NULL;
        malloc_trim(0); /* so rss_delta_kb sees the last replay, not old frees */
        rss0 = rss_now_kb();
        e = kith_doc_new(&doc);
        if (e) {
            engine_err(err, errlen, NULL, e, "new document");
            goto out;
        }
        double t0 = now_ms();
        int bad = t->kind == TRACE_SEQUENTIAL ? replay_seq(t, doc, o->commit, err, errlen)
                                              : replay_conc(t, &cs, doc, o->commit, err, errlen);
        times[r] = now_ms() - t0;
        if (bad)
            goto out;
        /* Every run is checked: a replay that is fast but wrong once is a bug. */
        kith_free(text);
        text = NULL;
        e = kith_doc_text(doc, &text, &text_len);
        if (e) {
            engine_err(err, errlen, doc, e, "text");
            goto out;
        }
        if (t->end && (text_len != t->end_len || memcmp(text, t->end, text_len))) {
            text_mismatch(err, errlen, "final text", text, text_len, t->end, t->end_len);
            goto out;
        }
    }
    long rss1 = rss_now_kb();
    res->rss_delta_kb = rss0 >= 0 && rss1 >= 0 ? rss1 - rss0 : -1;
    res->replay_ms = median(times, o->runs);
    res->doc_bytes = kith_doc_mem(doc);

    for (int r = 0; r < o->runs; r++) {
        kith_free(enc);
        enc = NULL;
        double t0 = now_ms();
        e = kith_doc_encode(doc, &enc, &enc_len);
        times[r] = now_ms() - t0;
        if (e) {
            engine_err(err, errlen, doc, e, "encode");
            goto out;
        }
    }
    res->encode_ms = median(times, o->runs);
    res->encoded_bytes = enc_len;

    for (int r = 0; r < o->runs; r++) {
        double t0 = now_ms();
        e = kith_doc_decode(enc, enc_len, &back);
        if (!e)
            e = kith_doc_text(back, &text2, &text2_len);
        times[r] = now_ms() - t0;
        if (e) {
            engine_err(err, errlen, back, e, "decode");
            goto out;
        }
        if (text2_len != text_len || memcmp(text2, text, text_len)) {
            text_mismatch(err, errlen, "decoded text", text2, text2_len, text, text_len);
            goto out;
        }
        kith_free(text2);
        text2 = NULL;
        kith_doc_free(back);
        back = NULL;
    }
    res->decode_ms = median(times, o->runs);
    res->peak_rss_kb = peak_rss_kb();

    /* -2: write_file has printed its message already. */
    rc = o->output && write_file(o->output, text, text_len) ? -2 : 0;
out:
    kith_free(text);
    kith_free(text2);
    kith_free(enc);
    kith_doc_free(back);
    kith_doc_free(doc);
    conc_release(&cs);
    free(times);
    return rc;
}

/* Times go out rounded to microseconds, so the JSON lines stay short. */
static double round_us(double ms)
{
    return (double)(long long)(ms * 1000 + 0.5) / 1000;
}

static void print_header(void)
{
    printf("%-24s %-10s %9s %10s %12s %9s %9s %10s %9s %9s\n", "trace", "kind", "patches",
           "replay_ms", "encoded_B", "encode_ms", "decode_ms", "doc_B", "rss_d_kB", "peak_kB");
}

static void print_row(const char *name, const struct trace *t, const struct result *r, int json,
                      const char *path)
{
    const char *kind = t->kind == TRACE_SEQUENTIAL ? "sequential" : "concurrent";
    if (!json) {
        printf("%-24s %-10s %9zu %10.2f %12zu %9.2f %9.3f %10zu %9ld %9ld\n", name, kind,
               r->patches, r->replay_ms, r->encoded_bytes, r->encode_ms, r->decode_ms, r->doc_bytes,
               r->rss_delta_kb, r->peak_rss_kb);
        fflush(stdout);
        return;
    }
    // clang-format off
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:f, s:I, s:f, s:f, s:I, s:I, s:I, s:b}",
                          "trace", name,
                          "file", path,
                          "kind", kind,
                          "patches", (json_int_t)r->patches,
                          "replay_ms", round_us(r->replay_ms),
                          "encoded_bytes", (json_int_t)r->encoded_bytes,
                          "encode_ms", round_us(r->encode_ms),
                          "decode_ms", round_us(r->decode_ms),
                          "doc_bytes", (json_int_t)r->doc_bytes,
                          "rss_delta_kb", (json_int_t)r->rss_delta_kb,
                          "peak_rss_kb", (json_int_t)r->peak_rss_kb,
                          "checked", t->end != NULL);
    // clang-format on
    char *s =
        o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) : NULL;
    if (s)
        puts(s);
    else
        cli_error("out of memory");
    fflush(stdout);
    free(s);
    json_decref(o);
}

static int parse_runs(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > RUNS_MAX)
        return cli_error("--runs wants a whole number in 1..%d, not '%s'", RUNS_MAX, s);
    *out = (int)v;
    return 0;
}

static int bench_trace(int argc, char **argv)
{
    struct opts o = {.runs = RUNS_DEFAULT};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},         {"runs", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'}, {"commit", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'j':
            o.json = 1;
            break;
        case 'r':
            if (parse_runs(optarg, &o.runs))
                return 1;
            break;
        case 'o':
            o.output = optarg;
            break;
        case 'c':
            o.commit = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            /* getopt has moved past the bad option or the one lacking a value. */
            return cli_error("option '%s' is unknown or lacks its value; see 'kith bench "
                             "trace --help'",
                             argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_error("no trace given; see 'kith bench trace --help'");
    if (o.output && argc - optind > 1)
        return cli_error("--output takes one trace, not %d", argc - optind);

    int status = 0, header = 0;
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        char name[256], err[512];
        struct trace t;
        struct result r;
        trace_name(path, name, sizeof name);
        if (trace_load(path, &t, err, sizeof err)) {
            status = cli_error("trace '%s': %s", path, err);
            continue;
        }
        int rc = bench_one(&t, &o, &r, err, sizeof err);
        if (rc == -1)
            cli_error("trace '%s': %s", path, err);
        if (rc) {
            status = 1;
        } else {
            if (!o.json && !header++)
                print_header();
            print_row(name, &t, &r, o.json, path);
            if (!t.end)
                fprintf(stderr, "kith: trace '%s' has no endContent: replayed unchecked\n", path);
        }
        trace_release(&t);
    }
    return status;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "trace"))
        return bench_trace(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc < 2)
        return cli_error("which benchmark? usage: kith bench trace [options] FILE...");
    return cli_error("unknown benchmark '%s'; usage: kith bench trace [options] FILE...", argv[1]);
}
