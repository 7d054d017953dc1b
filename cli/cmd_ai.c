/*
 * cmd_ai.c: `kith ai run|info|bench|quantize|tokenize|pull`, the on-device
 * model from the command line (pull and tokenize live in cmd_ai_*.c). Uses
 * only the public API (kith/ai.h). Model lookup, in order: --model (a path,
 * or a name in the models folder, ".gguf" optional), $KITH_MODEL, the models
 * folder ($XDG_DATA_HOME/kith/models or ~/.local/share/kith/models, where
 * `kith ai pull` saves: default.gguf, else the first *.gguf), then the
 * bundled TinyStories model next to the executable (../models) or in the
 * installed share folder. (kith has no config file yet; a model set there
 * would come after $KITH_MODEL.)
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "kith/ai.h"
#include "kith/kith.h"

static int load(const char *opt, kith_model **m, char *path, size_t cap)
{
    if (cli_find_model(opt, path, cap))
        return 1;
    char err[256];
    int rc = kith_model_load(path, m, err, sizeof err);
    if (rc)
        return cli_error("cannot load '%s': %s", path, err);
    return 0;
}

int cli_ai_load_model(const char *opt, kith_model **m, char *path, size_t cap)
{
    return load(opt, m, path, cap);
}

/* Parses a number option; 0 or prints an error. */
static int num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s ? s : "", &end);
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return cli_error("%s: '%s' is not a number in [%g, %g]", opt, s ? s : "", lo, hi);
    *out = v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- run ---- */

static void run_usage(FILE *f)
{
    fprintf(
        f, "usage: kith ai run [options] PROMPT\n\n"
           "Streams the model's continuation of PROMPT to stdout.\n\n"
           "  --model M          GGUF path or name (default: $KITH_MODEL, models folder, bundled)\n"
           "  -n N               new tokens at most (default 256)\n"
           "  --temp T           temperature; 0 is greedy (default 0.8)\n"
           "  --top-k K          (default 40)   --top-p P (default 0.95)\n"
           "  --min-p P          (default 0.05) --repeat-penalty R (default 1.0)\n"
           "  --seed S           sampling seed (default: from the clock)\n"
           "  --threads K        threads (default: physical cores; 1 for tiny models)\n"
           "  --ctx C            context length (default: the model's, at most 4096)\n"
           "  --stop TEXT        stop string (repeatable)\n"
           "  --chat             wrap PROMPT as a user turn in the model's chat template\n"
           "  --system TEXT      system message for --chat\n"
           "  --json             print one JSON object with the text and timings\n");
}

static int stream_out(void *ud, const char *piece, size_t len)
{
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *system = NULL;
    const char *stops[16];
    size_t n_stop = 0;
    int chat = 0, json = 0;
    struct kith_gen_params gp;
    struct kith_ctx_params cp;
    kith_gen_params_init(&gp);
    kith_ctx_params_init(&cp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            run_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            if (!v)
                return cli_error("--model needs a value");
            model = argv[++i];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
            if (num_arg(a, v, 0, 1 << 20, &d))
                return 1;
            gp.max_tokens = (int)d;
            i++;
        } else if (!strcmp(a, "--temp")) {
            if (num_arg(a, v, 0, 100, &d))
                return 1;
            gp.temperature = (float)d;
            i++;
        } else if (!strcmp(a, "--top-k")) {
            if (num_arg(a, v, 0, 1 << 24, &d))
                return 1;
            gp.top_k = (int)d;
            i++;
        } else if (!strcmp(a, "--top-p")) {
            if (num_arg(a, v, 0, 1, &d))
                return 1;
            gp.top_p = (float)d;
            i++;
        } else if (!strcmp(a, "--min-p")) {
            if (num_arg(a, v, 0, 1, &d))
                return 1;
            gp.min_p = (float)d;
            i++;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (num_arg(a, v, 0.01, 100, &d))
                return 1;
            gp.repeat_penalty = (float)d;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (num_arg(a, v, 0, 1.8e19, &d))
                return 1;
            gp.seed = (uint64_t)d;
            i++;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (num_arg(a, v, 1, 256, &d))
                return 1;
            cp.n_threads = (int)d;
            i++;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (num_arg(a, v, 1, 1 << 20, &d))
                return 1;
            cp.n_ctx = (int)d;
            i++;
        } else if (!strcmp(a, "--stop")) {
            if (!v || n_stop == 16)
                return cli_error("--stop needs a value (16 at most)");
            stops[n_stop++] = argv[++i];
        } else if (!strcmp(a, "--system")) {
            if (!v)
                return cli_error("--system needs a value");
            system = argv[++i];
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'; see 'kith ai run --help'", a);
        } else if (!prompt) {
            prompt = a;
        } else {
            return cli_error("one PROMPT only (quote it)");
        }
    }
    if (!prompt) {
        run_usage(stderr);
        return 1;
    }
    char path[PATH_MAX];
    kith_model *m = NULL;
    kith_ctx *c = NULL;
    char *text = NULL, *formatted = NULL;
    int ret = 1, rc;
    if (load(model, &m, path, sizeof path))
        return 1;
    if ((rc = kith_ctx_new(m, &cp, &c))) {
        cli_error("cannot create a context: %s", kith_strerror(rc));
        goto out;
    }
    if (chat) {
        struct kith_chat_msg msgs[2];
        size_t n = 0;
        if (system)
            msgs[n++] = (struct kith_chat_msg){"system", system};
        msgs[n++] = (struct kith_chat_msg){"user", prompt};
        if ((rc = kith_chat_format(m, msgs, n, 1, &formatted))) {
            cli_error("chat template: %s", kith_strerror(rc));
            goto out;
        }
        prompt = formatted;
        gp.parse_special = 1;
    }
    gp.stop = stops;
    gp.n_stop = n_stop;
    if (!json) {
        gp.on_token = stream_out;
        if (!chat) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
    }
    struct kith_gen_stats st = {.size = sizeof st};
    rc = kith_generate(c, prompt, &gp, &text, &st);
    if (rc && rc != KITH_ECANCELED) {
        cli_error("generation failed: %s", kith_strerror(rc));
        goto out;
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(path));
        json_object_set_new(o, "text", json_string(text ? text : ""));
        json_object_set_new(o, "n_prompt", json_integer(st.n_prompt));
        json_object_set_new(o, "n_gen", json_integer(st.n_gen));
        json_object_set_new(o, "pp_tps",
                            json_real(st.prompt_s > 0 ? st.n_prompt / st.prompt_s : 0));
        json_object_set_new(o, "tg_tps", json_real(st.gen_s > 0 ? st.n_gen / st.gen_s : 0));
        const char *why[] = {"length", "eos", "stop", "callback", "context"};
        json_object_set_new(
            o, "stop_reason",
            json_string(st.stop_reason >= 0 && st.stop_reason < 5 ? why[st.stop_reason] : "?"));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    } else {
        putchar('\n');
    }
    ret = 0;
out:
    kith_free(text);
    kith_free(formatted);
    kith_ctx_free(c);
    kith_model_free(m);
    return ret;
}

/* ---- info ---- */

static int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: kith ai info [--json] [MODEL]\n\n"
                   "Architecture, size, quantisation, context, tokenizer and chat template.\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_error("unknown option '%s'; see 'kith ai info --help'", argv[i]);
        } else {
            model = argv[i];
        }
    }
    char path[PATH_MAX];
    kith_model *m = NULL;
    if (load(model, &m, path, sizeof path))
        return 1;
    struct kith_model_info in = {.size = sizeof in};
    kith_model_info(m, &in);
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f}",
            "path", path, "arch", in.arch, "name", in.name, "type", in.ftype, "tokenizer",
            in.tokenizer, "chat_template", in.chat_template, "n_params", (json_int_t)in.n_params,
            "file_bytes", (json_int_t)in.file_bytes, "n_vocab", in.n_vocab, "n_embd", in.n_embd,
            "n_layer", in.n_layer, "n_head", in.n_head, "n_head_kv", in.n_head_kv, "n_ff", in.n_ff,
            "n_ctx_train", in.n_ctx_train, "rope_base", (double)in.rope_base);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("path:          %s\n", path);
        printf("name:          %s\n", in.name[0] ? in.name : "-");
        printf("architecture:  %s\n", in.arch);
        printf("parameters:    %.2f M\n", (double)in.n_params / 1e6);
        printf("file size:     %.2f MB\n", (double)in.file_bytes / 1e6);
        printf("quantisation:  %s\n", in.ftype);
        printf("context:       %d\n", in.n_ctx_train);
        printf("shape:         dim %d, %d layers, %d heads (%d kv), ffn %d, vocab %d\n", in.n_embd,
               in.n_layer, in.n_head, in.n_head_kv, in.n_ff, in.n_vocab);
        printf("rope base:     %g\n", (double)in.rope_base);
        printf("tokenizer:     %s\n", in.tokenizer);
        printf("chat template: %s\n", in.chat_template);
    }
    kith_model_free(m);
    return 0;
}

/* ---- bench ---- */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A "Key:   N kB" line of /proc/self/status in bytes (VmHWM: peak RSS,
 * VmRSS, RssAnon, RssFile); 0 where there is no such file or line. */
static uint64_t proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kl = strlen(key);
    unsigned long long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':' && sscanf(line + kl + 1, "%llu", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Peak RSS: VmHWM, else getrusage (both count the mapped model pages that
 * were touched, which is the point: weights are mapped, not copied). */
static uint64_t peak_rss(void)
{
    uint64_t b = proc_status_bytes("VmHWM");
    struct rusage ru;
    if (!b && getrusage(RUSAGE_SELF, &ru) == 0)
        b = (uint64_t)ru.ru_maxrss * 1024;
    return b;
}

/* A story opening of 99 tokens for the bundled model (100 with BOS): the
 * prompt of the issue's time-to-first-token target. */
static const char ttft_prompt[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park with her friends. One day, she saw a big red ball under a tree. She wanted to play "
    "with it, but it was too high for her to reach. Lily asked her mom for help, and her mom "
    "said yes. They played";

static double first_token_at;

static int mark_first(void *ud, const char *piece, size_t len)
{
    if (first_token_at == 0)
        first_token_at = now_s();
    return 1; /* one token is all this measures */
}

/* `kith ai bench --ttft`: what a user waits for, in process: loading the
 * model, making a context, tokenizing and evaluating the prompt, sampling the
 * first token. Each run starts from nothing (the file is in the page cache). */
static int bench_ttft(const char *model, const struct kith_ctx_params *cp0, const char *prompt,
                      int runs, int json)
{
    char path[PATH_MAX], err[256];
    if (cli_find_model(model, path, sizeof path))
        return 1;
    double *t = malloc((size_t)runs * 4 * sizeof *t); /* total, load, ctx, prompt per run */
    if (!t)
        return cli_error("out of memory");
    int ret = 1, rc, n_prompt = 0, threads = cp0->n_threads;
    for (int r = -1; r < runs; r++) { /* run -1 warms the page cache */
        kith_model *m = NULL;
        kith_ctx *c = NULL;
        struct kith_gen_params gp;
        struct kith_gen_stats st = {.size = sizeof st};
        kith_gen_params_init(&gp);
        gp.max_tokens = 1;
        gp.temperature = 0;
        gp.on_token = mark_first;
        first_token_at = 0;
        double t0 = now_s();
        if ((rc = kith_model_load(path, &m, err, sizeof err))) {
            cli_error("cannot load '%s': %s", path, err);
            goto out;
        }
        double t1 = now_s();
        if ((rc = kith_ctx_new(m, cp0, &c))) {
            cli_error("cannot create a context: %s", kith_strerror(rc));
            kith_model_free(m);
            goto out;
        }
        double t2 = now_s();
        rc = kith_generate(c, prompt, &gp, NULL, &st);
        double t3 = first_token_at ? first_token_at : now_s();
        threads = kith_ctx_threads(c);
        kith_ctx_free(c);
        kith_model_free(m);
        if (rc && rc != KITH_ECANCELED) {
            cli_error("generation failed: %s", kith_strerror(rc));
            goto out;
        }
        n_prompt = st.n_prompt;
        if (r >= 0) {
            t[r] = (t3 - t0) * 1e3;
            t[runs + r] = (t1 - t0) * 1e3;
            t[2 * runs + r] = (t2 - t1) * 1e3;
            t[3 * runs + r] = st.prompt_s * 1e3;
        }
    }
    for (int k = 0; k < 4; k++)
        qsort(t + k * runs, (size_t)runs, sizeof *t, cmp_dbl);
    if (json)
        printf("{\"model\":\"%s\",\"ttft_ms\":%.3f,\"ttft_best_ms\":%.3f,\"load_ms\":%.3f,"
               "\"ctx_ms\":%.3f,\"prompt_ms\":%.3f,\"n_prompt\":%d,\"threads\":%d,\"runs\":%d}\n",
               path, t[runs / 2], t[0], t[runs + runs / 2], t[2 * runs + runs / 2],
               t[3 * runs + runs / 2], n_prompt, threads, runs);
    else
        printf("model %s, %d thread%s, %d-token prompt\ntime to first token: %.2f ms median, "
               "%.2f ms best of %d\n  (medians: load %.2f ms, context %.2f ms, prompt %.2f ms)\n",
               path, threads, threads == 1 ? "" : "s", n_prompt, t[runs / 2], t[0], runs,
               t[runs + runs / 2], t[2 * runs + runs / 2], t[3 * runs + runs / 2]);
    ret = 0;
out:
    free(t);
    return ret;
}

static int cmd_bench_ai(int argc, char **argv)
{
    const char *model = NULL, *prompt = ttft_prompt;
    int json = 0, n_pp = 128, n_tg = 64, runs = 0, ttft = 0;
    struct kith_ctx_params cp;
    kith_ctx_params_init(&cp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: kith ai bench [--model M] [--threads K] [-p N] [-n N] [--runs R]\n"
                   "                     [--json]\n"
                   "       kith ai bench --ttft [--model M] [--threads K] [--prompt TEXT]\n"
                   "                     [--runs R] [--json]\n\n"
                   "Prompt processing (-p tokens, default 128) and generation (-n tokens,\n"
                   "default 64) speed in tokens/s, the median of --runs (default 3) runs, and\n"
                   "memory: KV cache, context buffers, peak RSS.\n"
                   "--ttft: time to first token from loading the model, for a 100-token story\n"
                   "prompt (or --prompt), median and best of --runs (default 20).\n");
            return 0;
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            if (!v)
                return cli_error("--model needs a value");
            model = argv[++i];
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--ttft")) {
            ttft = 1;
        } else if (!strcmp(a, "--prompt")) {
            if (!v)
                return cli_error("--prompt needs a value");
            prompt = argv[++i];
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (num_arg(a, v, 1, 256, &d))
                return 1;
            cp.n_threads = (int)d;
            i++;
        } else if (!strcmp(a, "-p")) {
            if (num_arg(a, v, 1, 4096, &d))
                return 1;
            n_pp = (int)d;
            i++;
        } else if (!strcmp(a, "-n")) {
            if (num_arg(a, v, 1, 4096, &d))
                return 1;
            n_tg = (int)d;
            i++;
        } else if (!strcmp(a, "--runs")) {
            if (num_arg(a, v, 1, 100, &d))
                return 1;
            runs = (int)d;
            i++;
        } else {
            return cli_error("unknown argument '%s'; see 'kith ai bench --help'", a);
        }
    }
    if (ttft)
        return bench_ttft(model, &cp, prompt, runs ? runs : 20, json);
    if (!runs)
        runs = 3;
    char path[PATH_MAX];
    kith_model *m = NULL;
    kith_ctx *c = NULL;
    int ret = 1, rc;
    uint64_t rss_base = proc_status_bytes("VmRSS"); /* the process before the model */
    if (load(model, &m, path, sizeof path))
        return 1;
    struct kith_model_info in = {.size = sizeof in};
    kith_model_info(m, &in);
    cp.n_ctx = n_pp + n_tg + 1;
    cp.n_batch = n_pp;
    int32_t *toks = malloc((size_t)(n_pp + 1) * sizeof *toks);
    double *pp = malloc((size_t)runs * sizeof *pp), *tg = malloc((size_t)runs * sizeof *tg);
    if (!toks || !pp || !tg) {
        cli_error("out of memory");
        goto out;
    }
    if ((rc = kith_ctx_new(m, &cp, &c))) {
        cli_error("cannot create a context: %s", kith_strerror(rc));
        goto out;
    }
    /* deterministic pseudo-random tokens: the speed does not depend on them */
    uint32_t s = 12345;
    for (int i = 0; i < n_pp; i++) {
        s = s * 1103515245u + 12345u;
        toks[i] = (int32_t)((s >> 8) % (uint32_t)in.n_vocab);
    }
    for (int r = -1; r < runs; r++) { /* run -1 warms caches and page tables */
        kith_ctx_truncate(c, 0);
        double t0 = now_s();
        if ((rc = kith_eval(c, toks, (size_t)n_pp, 0)))
            break;
        double t1 = now_s();
        for (int i = 0; i < n_tg && rc == 0; i++) {
            const float *lg = kith_logits(c, -1);
            int32_t best = 0;
            for (int v = 1; v < in.n_vocab; v++)
                if (lg[v] > lg[best])
                    best = v;
            rc = kith_eval(c, &best, 1, 0);
        }
        double t2 = now_s();
        if (r >= 0) {
            pp[r] = n_pp / (t1 - t0);
            tg[r] = n_tg / (t2 - t1);
        }
    }
    if (rc) {
        cli_error("benchmark failed: %s", kith_strerror(rc));
        goto out;
    }
    qsort(pp, (size_t)runs, sizeof *pp, cmp_dbl);
    qsort(tg, (size_t)runs, sizeof *tg, cmp_dbl);
    int threads = kith_ctx_threads(c);
    unsigned long long kv = kith_ctx_kv_bytes(c), ctx_b = kith_ctx_mem_bytes(c);
    unsigned long long rss = peak_rss(), anon = proc_status_bytes("RssAnon");
    if (json)
        printf("{\"model\":\"%s\",\"type\":\"%s\",\"pp_tps\":%.2f,\"tg_tps\":%.2f,\"threads\":%d,"
               "\"model_bytes\":%llu,\"kv_bytes\":%llu,\"ctx_bytes\":%llu,\"rss_bytes\":%llu,"
               "\"rss_base_bytes\":%llu,\"rss_anon_bytes\":%llu,\"n_pp\":%d,\"n_tg\":%d,"
               "\"runs\":%d}\n",
               path, in.ftype, pp[runs / 2], tg[runs / 2], threads,
               (unsigned long long)in.file_bytes, kv, ctx_b, rss, (unsigned long long)rss_base,
               anon, n_pp, n_tg, runs);
    else
        printf("model %s (%s, %.1f MB), %d threads\npp%d: %.2f tok/s\ntg%d: %.2f tok/s\n"
               "memory: KV cache %.1f MB, context %.1f MB, peak RSS %.1f MB (%.1f MB before "
               "loading, %.1f MB anonymous now)\n",
               path, in.ftype, (double)in.file_bytes / 1e6, threads, n_pp, pp[runs / 2], n_tg,
               tg[runs / 2], (double)kv / 1e6, (double)ctx_b / 1e6, (double)rss / 1e6,
               (double)rss_base / 1e6, (double)anon / 1e6);
    ret = 0;
out:
    free(toks);
    free(pp);
    free(tg);
    kith_ctx_free(c);
    kith_model_free(m);
    return ret;
}

/* ---- dispatch ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: kith ai <command> [options]\n\n"
               "  run PROMPT        generate a continuation (or a chat answer with --chat)\n"
               "  info [MODEL]      describe a model\n"
               "  bench             prompt and generation speed\n"
               "  quantize IN OUT TYPE   convert F32/F16/BF16 to Q8_0, Q4_0, Q4_K, Q6_K\n"
               "  tokenize          print the token ids of stdin\n"
               "  pull URL          download a GGUF model into the models folder\n"
               "  draft PATH TEXT   suggest text for a file (--apply records it via ai:<model>)\n"
               "  summarize PATH... summarise files (--into PATH records it)\n"
               "  catchup           what changed lately, per file, and a summary\n"
               "  ask QUESTION      answer from the workspace's files, citing them\n"
               "  review PATH       comment on a file's changes (kith comments)\n\n"
               "Run 'kith ai <command> --help' for its options.\n");
}

static void quant_progress(void *ud, size_t done, size_t total)
{
    if (!isatty(STDERR_FILENO))
        return;
    int w = 40, fillw = total ? (int)(done * (size_t)w / total) : w;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu tensors", fillw,
            "########################################", w - fillw, "", done, total);
    if (done == total)
        fputc('\n', stderr);
}

static int cmd_ai_quantize(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: kith ai quantize IN.gguf OUT.gguf TYPE\n\n"
               "Converts the weight matrices to TYPE: Q8_0, Q4_0, Q4_K, Q4_K_M, Q6_K or F16.\n");
        return 0;
    }
    if (argc != 4)
        return cli_error("usage: kith ai quantize IN.gguf OUT.gguf TYPE");
    char err[256];
    int rc = kith_model_quantize(argv[1], argv[2], argv[3], quant_progress, NULL, err, sizeof err);
    if (rc)
        return cli_error("cannot quantize '%s': %s", argv[1], err);
    return 0;
}

int cmd_ai(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(sub, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(sub, "bench"))
        return cmd_bench_ai(argc - 1, argv + 1);
    if (!strcmp(sub, "quantize"))
        return cmd_ai_quantize(argc - 1, argv + 1);
    if (!strcmp(sub, "tokenize"))
        return cmd_ai_tokenize(argc - 1, argv + 1);
    if (!strcmp(sub, "pull"))
        return cmd_ai_pull(argc - 1, argv + 1);
    if (!strcmp(sub, "draft"))
        return cmd_ai_draft(argc - 1, argv + 1);
    if (!strcmp(sub, "summarize") || !strcmp(sub, "summarise"))
        return cmd_ai_summarize(argc - 1, argv + 1);
    if (!strcmp(sub, "catchup"))
        return cmd_ai_catchup(argc - 1, argv + 1);
    if (!strcmp(sub, "review"))
        return cmd_ai_review(argc - 1, argv + 1);
    if (!strcmp(sub, "ask"))
        return cmd_ai_ask(argc - 1, argv + 1);
    return cli_error("'%s' is not a 'kith ai' command; see 'kith ai --help'", sub);
}
