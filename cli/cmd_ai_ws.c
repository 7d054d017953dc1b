/*
 * cmd_ai_ws.c: `kith ai draft|summarize|catchup|ask`, the on-device model
 * working on the workspace (issue 6, first slice). What the model writes is
 * recorded with kith_ws_edit + kith_ws_commit under the via tag
 * "ai:<model file name without .gguf>", so blame and log show it. Generation
 * runs before anything is recorded: Ctrl-C (kith_ctx_cancel from the signal
 * handler) leaves the workspace as it was. Prompts are cut to fit the
 * model's context (counted in tokens with its own vocabulary).
 * `ask` keeps an SQLite FTS5 index of the recorded text in .kith/search.db
 * (chunks of 20 lines), refreshed for files whose size or hash changed.
 * Not yet: suggestions (draft without --apply only prints the draft).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/ai.h"
#include "kith/kith.h"

#define CHUNK_LINES 20 /* lines per search chunk */
#define ASK_TOP     4  /* chunks given to the model at most */

/* ---- small text helpers ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            cli_error("out of memory");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Byte offset <= @off that does not split a UTF-8 character of @s. */
static size_t utf8_floor(const char *s, size_t off)
{
    while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80)
        off--;
    return off;
}

static size_t utf8_count(const char *s, size_t n)
{
    size_t cp = 0;
    for (size_t i = 0; i < n; i++)
        cp += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cp;
}

/* Adds the last @max bytes of @s[0..n) (whole characters). */
static void sb_tail(sbuf *b, const char *s, size_t n, size_t max)
{
    size_t from = n > max ? n - max : 0;
    while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80)
        from++;
    sb_add(b, s + from, n - from);
}

/* Adds the first @max bytes of @s[0..n) (whole characters). */
static void sb_head(sbuf *b, const char *s, size_t n, size_t max)
{
    sb_add(b, s, n > max ? utf8_floor(s, max) : n);
}

/* Trims white space at both ends of @s in place; returns it. */
static char *trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && isspace((unsigned char)s[a]))
        a++;
    while (n > a && isspace((unsigned char)s[n - 1]))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
    return s;
}

/* ---- paths ---- */

/* Workspace-relative path of @arg (which may not exist yet: its folder must)
 * into *rel (malloc'd); 0, or prints an error and returns 1. */
static int ws_rel(kith_ws *ws, const char *arg, char **rel)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(arg, '/'), *base = slash ? slash + 1 : arg;
    int n = slash ? snprintf(dir, sizeof dir, "%.*s", (int)(slash - arg), arg)
                  : snprintf(dir, sizeof dir, ".");
    if (n < 0 || (size_t)n >= sizeof dir || !*dir)
        snprintf(dir, sizeof dir, "%s", slash == arg ? "/" : ".");
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return cli_error("'%s': not a file name", arg);
    if (!realpath(dir, real))
        return cli_error("'%s': %s", arg, strerror(errno));
    const char *root = kith_ws_root(ws);
    size_t rl = strlen(root);
    const char *sub;
    if (!strcmp(real, root))
        sub = "";
    else if (!strncmp(real, root, rl) && real[rl] == '/')
        sub = real + rl + 1;
    else
        return cli_error("'%s' is outside the workspace %s", arg, root);
    if (!strcmp(sub, ".kith") || !strncmp(sub, ".kith/", 6) || (!*sub && !strcmp(base, ".kith")))
        return cli_error("'%s' is inside .kith/", arg);
    size_t len = strlen(sub) + strlen(base) + 2;
    *rel = malloc(len);
    if (!*rel)
        return cli_error("out of memory");
    snprintf(*rel, len, "%s%s%s", sub, *sub ? "/" : "", base);
    return 0;
}

/* ---- the model ---- */

typedef struct gen {
    kith_model *m;
    kith_vocab *v;
    kith_ctx *c;
    char path[PATH_MAX];
    char via[NAME_MAX + 8]; /* "ai:<file name without .gguf>" */
    int n_ctx;
    int chat; /* the model has a chat template */
    struct kith_gen_params gp;
    const char *model_opt;
} gen;

static kith_ctx *volatile cancel_ctx;
static volatile sig_atomic_t canceled;

static void on_sigint(int sig)
{
    canceled = 1;
    if (cancel_ctx)
        kith_ctx_cancel(cancel_ctx);
}

/* Takes the generation options (--model, -n, --temp, --seed) at argv[*i];
 * 1 if it was one (then *i is moved on), -1 on a bad value, 0 otherwise. */
static int gen_opt(gen *g, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    char *end;
    if (strcmp(a, "--model") && strcmp(a, "-m") && strcmp(a, "-n") && strcmp(a, "--temp") &&
        strcmp(a, "--seed"))
        return 0;
    if (!v)
        return cli_error("%s needs a value", a), -1;
    (*i)++;
    if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
        g->model_opt = v;
        return 1;
    }
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || d < 0 || (!strcmp(a, "-n") && d > 4096) ||
        (!strcmp(a, "--temp") && d > 100))
        return cli_error("%s: '%s' is not a valid number", a, v), -1;
    if (!strcmp(a, "-n"))
        g->gp.max_tokens = (int)d;
    else if (!strcmp(a, "--temp"))
        g->gp.temperature = (float)d;
    else
        g->gp.seed = (uint64_t)d;
    return 1;
}

static void gen_init(gen *g, int max_tokens)
{
    memset(g, 0, sizeof *g);
    kith_gen_params_init(&g->gp);
    g->gp.max_tokens = max_tokens;
}

static void gen_free(gen *g)
{
    cancel_ctx = NULL;
    kith_ctx_free(g->c);
    kith_vocab_free(g->v);
    kith_model_free(g->m);
    g->c = NULL;
    g->v = NULL;
    g->m = NULL;
}

static int gen_load(gen *g)
{
    char err[256];
    int rc;
    if (cli_ai_load_model(g->model_opt, &g->m, g->path, sizeof g->path))
        return 1;
    if ((rc = kith_vocab_load(g->path, &g->v, err, sizeof err)))
        return cli_error("cannot load the vocabulary of '%s': %s", g->path, err);
    if ((rc = kith_ctx_new(g->m, NULL, &g->c)))
        return cli_error("cannot create a context: %s", kith_strerror(rc));
    g->n_ctx = kith_ctx_n_ctx(g->c);
    if (g->gp.max_tokens > g->n_ctx / 2)
        g->gp.max_tokens = g->n_ctx / 2;
    struct kith_model_info in = {.size = sizeof in};
    kith_model_info(g->m, &in);
    g->chat = in.chat_template && strcmp(in.chat_template, "none");
    const char *base = strrchr(g->path, '/');
    base = base ? base + 1 : g->path;
    size_t bl = strlen(base);
    if (bl > 5 && !strcmp(base + bl - 5, ".gguf"))
        bl -= 5;
    snprintf(g->via, sizeof g->via, "ai:%.*s", (int)bl, base);
    return 0;
}

/* The prompt the model sees for @task and @material: the chat template's
 * user turn where the model has one, else plain text ending where the
 * model should continue. Caller frees. */
static char *gen_prompt(gen *g, const char *task, const char *material)
{
    sbuf b = {0};
    if (g->chat) {
        sb_str(&b, material);
        sb_str(&b, "\n\n");
        sb_str(&b, task);
        struct kith_chat_msg msgs[2] = {
            {"system", "You are a careful writing assistant working on the user's documents. "
                       "Answer with the requested text only."},
            {"user", b.p}};
        char *out = NULL;
        int rc = kith_chat_format(g->m, msgs, 2, 1, &out);
        free(b.p);
        if (rc) {
            cli_error("chat template: %s", kith_strerror(rc));
            return NULL;
        }
        char *copy = strdup(out);
        kith_free(out);
        return copy;
    }
    sb_str(&b, material);
    sb_str(&b, task);
    return b.p;
}

/* True when @prompt leaves room in the context for the generated tokens. */
static int gen_fits(gen *g, const char *prompt)
{
    int32_t *ids = NULL;
    size_t n = 0;
    unsigned fl = KITH_TOKENIZE_ADD_SPECIAL | (g->chat ? KITH_TOKENIZE_PARSE_SPECIAL : 0);
    if (kith_tokenize_ex(g->v, prompt, strlen(prompt), fl, &ids, &n))
        return 0;
    kith_free(ids);
    return n + (size_t)g->gp.max_tokens + 4 <= (size_t)g->n_ctx;
}

static int to_stdout(void *ud, const char *piece, size_t len)
{
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int to_stderr(void *ud, const char *piece, size_t len)
{
    fwrite(piece, 1, len, stderr);
    return 0;
}

/* Generates from @prompt into *out (caller frees), streaming to stdout
 * (@show 1), to stderr on a terminal (@show 0) or nowhere. 0, 130 after
 * Ctrl-C (message printed, nothing kept), or 1. */
static int gen_run(gen *g, const char *prompt, int show, char **out)
{
    struct sigaction sa, old;
    char *text = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    g->gp.parse_special = g->chat;
    g->gp.on_token = show ? to_stdout : isatty(STDERR_FILENO) ? to_stderr : NULL;
    if (!show && g->gp.on_token)
        fprintf(stderr, "kith: writing with %s ...\n", g->via + 3);
    canceled = 0;
    cancel_ctx = g->c;
    sigaction(SIGINT, &sa, &old);
    int rc = kith_generate(g->c, prompt, &g->gp, &text, NULL);
    sigaction(SIGINT, &old, NULL);
    cancel_ctx = NULL;
    if (g->gp.on_token == to_stderr)
        fputc('\n', stderr);
    if (rc == KITH_ECANCELED || canceled) {
        kith_free(text);
        if (show)
            putchar('\n');
        cli_error("canceled; nothing was recorded");
        return 130;
    }
    if (rc) {
        kith_free(text);
        return cli_error("generation failed: %s", kith_strerror(rc));
    }
    *out = strdup(text ? text : "");
    kith_free(text);
    return *out ? 0 : cli_error("out of memory");
}

/* Reads the file @rel of the workspace folder; NULL on error (printed). */
static char *read_doc(kith_ws *ws, const char *arg, size_t *len)
{
    char *text = NULL;
    if (kith_ws_cat(ws, arg, NULL, &text, len)) {
        cli_error("%s", kith_ws_errmsg(ws));
        return NULL;
    }
    char *copy = malloc(*len + 1);
    if (copy) {
        memcpy(copy, text, *len);
        copy[*len] = 0;
    }
    kith_free(text);
    return copy;
}

static int commit_via(kith_ws *ws, const char *via)
{
    kith_ws_result res;
    if (kith_ws_commit(ws, via, &res))
        return cli_error("%s", kith_ws_errmsg(ws));
    fprintf(stderr, "kith: recorded change %.12s (via %s)\n", res.change, via);
    return 0;
}

/* Records what is pending in the folder (kith_ws_edit needs it recorded). */
static int scan_first(kith_ws *ws)
{
    kith_ws_result res;
    if (kith_ws_scan(ws, NULL, NULL, &res))
        return cli_error("%s", kith_ws_errmsg(ws));
    return 0;
}

static const char gen_usage_opts[] = "  --model M   GGUF path or name (default: as 'kith ai run')\n"
                                     "  -n N        new tokens at most\n"
                                     "  --temp T    temperature; 0 is greedy (default 0.8)\n"
                                     "  --seed S    sampling seed\n";

/* ---- draft ---- */

static const char draft_usage[] =
    "usage: kith ai draft PATH \"instruction\" [--at LINE | --after TEXT] [--apply]\n"
    "                     [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "The model writes text for a place in PATH (the start of line LINE, right after\n"
    "the first occurrence of TEXT, or by default the end) from the instruction and\n"
    "the text around that place. With --apply it is inserted as a change made via\n"
    "ai:<model>, which 'kith blame' and 'kith log' show. Without --apply the draft is\n"
    "printed: suggestions (stored, anchored proposals) are not implemented yet.\n\n";

int cmd_ai_draft(int argc, char **argv)
{
    const char *path = NULL, *instr = NULL, *after = NULL;
    long at = 0;
    int apply = 0, ret = 1;
    gen g;
    gen_init(&g, 96);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opt(&g, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", draft_usage, gen_usage_opts);
            return 0;
        } else if (!strcmp(a, "--apply")) {
            apply = 1;
        } else if (!strcmp(a, "--at") && i + 1 < argc) {
            char *end;
            errno = 0;
            at = strtol(argv[++i], &end, 10);
            if (*end || errno || at < 1)
                return cli_error("--at: '%s' is not a line number", argv[i]);
        } else if (!strcmp(a, "--after") && i + 1 < argc) {
            after = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'; see 'kith ai draft --help'", a);
        } else if (!path) {
            path = a;
        } else if (!instr) {
            instr = a;
        } else {
            return cli_error("too many arguments; see 'kith ai draft --help'");
        }
    }
    if (!path || !instr)
        return cli_error("usage: kith ai draft PATH \"instruction\" [--at LINE | --after TEXT] "
                         "[--apply]");
    if (at && after)
        return cli_error("--at and --after exclude each other");
    kith_ws *ws = ws_cli_open();
    char *rel = NULL, *text = NULL, *prompt = NULL, *draft = NULL;
    size_t len = 0;
    if (!ws)
        return 1;
    if (ws_rel(ws, path, &rel) || (apply && scan_first(ws)) || !(text = read_doc(ws, path, &len)))
        goto out;
    /* the place, as a byte offset */
    size_t off = len;
    if (at) {
        long line = 1;
        off = 0;
        while (line < at && off < len) {
            const char *nl = memchr(text + off, '\n', len - off);
            if (!nl) {
                off = len;
                break;
            }
            off = (size_t)(nl - text) + 1;
            line++;
        }
        if (line < at && !(line == at - 1 && off == len)) {
            cli_error("%s has %ld lines; --at %ld is past its end", path, line, at);
            goto out;
        }
    } else if (after) {
        const char *hit = *after ? strstr(text, after) : NULL;
        if (!hit) {
            cli_error("'%s' does not occur in %s", after, path);
            goto out;
        }
        off = (size_t)(hit - text) + strlen(after);
    }
    if (gen_load(&g))
        goto out;
    sbuf task = {0};
    sb_str(&task, "\nInstruction: ");
    sb_str(&task, instr);
    sb_str(&task, "\nNew text:\n");
    for (size_t budget = (size_t)g.n_ctx * 4;; budget = budget * 2 / 3) {
        sbuf mat = {0};
        sb_str(&mat, "Text after the new passage:\n");
        sb_head(&mat, text + off, len - off, budget / 3);
        sb_str(&mat, "\n\nText before the new passage:\n");
        sb_tail(&mat, text, off, budget - budget / 3);
        free(prompt);
        prompt = gen_prompt(&g, task.p, mat.p);
        free(mat.p);
        if (!prompt || gen_fits(&g, prompt) || budget < 16)
            break;
    }
    free(task.p);
    if (!prompt)
        goto out;
    if ((ret = gen_run(&g, prompt, !apply, &draft))) {
        goto out;
    }
    ret = 1;
    trim(draft);
    if (!apply) {
        putchar('\n');
        fprintf(stderr, "kith: this is a draft only: suggestions are not implemented yet, so "
                        "nothing was stored; use --apply to insert it\n");
        ret = 0;
        goto out;
    }
    if (!*draft) {
        cli_error("the model wrote nothing; nothing was recorded");
        goto out;
    }
    /* whole lines at a line start or the end; a word after --after TEXT */
    sbuf ins = {0};
    if (after) {
        if (off > 0 && !isspace((unsigned char)text[off - 1]))
            sb_str(&ins, " ");
        sb_str(&ins, draft);
        if (off < len && !isspace((unsigned char)text[off]))
            sb_str(&ins, " ");
    } else {
        if (off > 0 && text[off - 1] != '\n')
            sb_str(&ins, "\n");
        sb_str(&ins, draft);
        sb_str(&ins, "\n");
    }
    if (kith_ws_edit(ws, path, utf8_count(text, off), 0, ins.p, ins.len)) {
        cli_error("%s", kith_ws_errmsg(ws));
        free(ins.p);
        goto out;
    }
    free(ins.p);
    if (commit_via(ws, g.via))
        goto out;
    ret = 0;
out:
    gen_free(&g);
    free(rel);
    free(text);
    free(prompt);
    free(draft);
    kith_ws_close(ws);
    return ret;
}

/* ---- summarize ---- */

static const char sum_usage[] =
    "usage: kith ai summarize PATH... [--into PATH] [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "Summarises the recorded text of the files (cut to fit the model's context)\n"
    "and prints it, or with --into appends it to that file (created if missing) as\n"
    "a change made via ai:<model>.\n\n";

int cmd_ai_summarize(int argc, char **argv)
{
    const char *into = NULL, **paths = calloc((size_t)argc, sizeof *paths);
    size_t np = 0;
    int ret = 1;
    gen g;
    gen_init(&g, 128);
    if (!paths)
        return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opt(&g, argc, argv, &i);
        if (r < 0) {
            free(paths);
            return 1;
        }
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", sum_usage, gen_usage_opts);
            free(paths);
            return 0;
        } else if (!strcmp(a, "--into") && i + 1 < argc) {
            into = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            free(paths);
            return cli_error("unknown option '%s'; see 'kith ai summarize --help'", a);
        } else {
            paths[np++] = a;
        }
    }
    if (!np) {
        free(paths);
        return cli_error("usage: kith ai summarize PATH... [--into PATH]");
    }
    kith_ws *ws = ws_cli_open();
    char **texts = calloc(np, sizeof *texts), *rel = NULL, *prompt = NULL, *sum = NULL;
    size_t *lens = calloc(np, sizeof *lens);
    if (!ws || !texts || !lens)
        goto out;
    for (size_t k = 0; k < np; k++) {
        char *r = NULL;
        if (ws_rel(ws, paths[k], &r))
            goto out;
        free(r);
        if (!(texts[k] = read_doc(ws, paths[k], &lens[k])))
            goto out;
    }
    if (into && ws_rel(ws, into, &rel))
        goto out;
    if (gen_load(&g))
        goto out;
    for (size_t budget = (size_t)g.n_ctx * 4;; budget = budget * 2 / 3) {
        sbuf mat = {0};
        for (size_t k = 0; k < np; k++) {
            sb_str(&mat, "File ");
            sb_str(&mat, paths[k]);
            sb_str(&mat, ":\n");
            sb_head(&mat, texts[k], lens[k], budget / np);
            sb_str(&mat, "\n\n");
        }
        free(prompt);
        prompt = gen_prompt(&g, "Summary of these files in a few sentences:\n", mat.p);
        free(mat.p);
        if (!prompt || gen_fits(&g, prompt) || budget < 16)
            break;
    }
    if (!prompt)
        goto out;
    if ((ret = gen_run(&g, prompt, !into, &sum)))
        goto out;
    ret = 1;
    trim(sum);
    if (!into) {
        putchar('\n');
        ret = 0;
        goto out;
    }
    if (!*sum) {
        cli_error("the model wrote nothing; nothing was recorded");
        goto out;
    }
    if (scan_first(ws))
        goto out;
    size_t len = 0;
    char *cur = NULL;
    struct stat st;
    if (kith_ws_cat(ws, into, NULL, &cur, &len)) {
        /* a new file: record it empty, then write the summary into it as
         * the model's change, so that every line of it carries the via tag */
        if (stat(into, &st) == 0) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
        FILE *f = fopen(into, "wx");
        if (!f) {
            cli_error("cannot create '%s': %s", into, strerror(errno));
            goto out;
        }
        fclose(f);
        if (scan_first(ws))
            goto out;
        len = 0;
    }
    sbuf ins = {0};
    if (len > 0 && cur[len - 1] != '\n')
        sb_str(&ins, "\n");
    if (len > 0)
        sb_str(&ins, "\n");
    sb_str(&ins, sum);
    sb_str(&ins, "\n");
    size_t pos = cur ? utf8_count(cur, len) : 0;
    kith_free(cur);
    int rc = kith_ws_edit(ws, into, pos, 0, ins.p, ins.len);
    free(ins.p);
    if (rc) {
        cli_error("%s", kith_ws_errmsg(ws));
        goto out;
    }
    if (commit_via(ws, g.via))
        goto out;
    ret = 0;
out:
    gen_free(&g);
    for (size_t k = 0; texts && k < np; k++)
        free(texts[k]);
    free(texts);
    free(lens);
    free(paths);
    free(rel);
    free(prompt);
    free(sum);
    kith_ws_close(ws);
    return ret;
}

/* ---- catchup ---- */

typedef struct cu_file {
    char *path;
    char *authors[16]; /* "name" or "name via ai:x", distinct, sorted at the end */
    size_t na;
    size_t changes;
} cu_file;

typedef struct cu_ctx {
    const char *since_id; /* stop at this change (exclusive) */
    int64_t cutoff_ms;    /* or: changes at or after this time */
    char boundary[KITH_WS_ID_HEX + 1];
    cu_file *files;
    size_t nf, cap;
    size_t nchanges;
} cu_ctx;

static int cu_change(const kith_ws_change *c, void *vctx)
{
    cu_ctx *x = vctx;
    if ((x->since_id && !strcmp(c->id, x->since_id)) ||
        (!x->since_id && c->time_ms < x->cutoff_ms)) {
        snprintf(x->boundary, sizeof x->boundary, "%s", c->id);
        return 1;
    }
    x->nchanges++;
    char who[512];
    snprintf(who, sizeof who, "%s%s%s", c->author, c->via ? " via " : "", c->via ? c->via : "");
    for (size_t p = 0; p < c->npaths; p++) {
        size_t k = 0;
        while (k < x->nf && strcmp(x->files[k].path, c->paths[p]))
            k++;
        if (k == x->nf) {
            if (x->nf == x->cap) {
                x->cap = x->cap ? x->cap * 2 : 16;
                cu_file *nf = realloc(x->files, x->cap * sizeof *nf);
                if (!nf)
                    return -1;
                x->files = nf;
            }
            memset(&x->files[k], 0, sizeof x->files[k]);
            x->files[k].path = strdup(c->paths[p]);
            x->nf++;
        }
        cu_file *f = &x->files[k];
        f->changes++;
        size_t a = 0;
        while (a < f->na && strcmp(f->authors[a], who))
            a++;
        if (a == f->na && f->na < 16)
            f->authors[f->na++] = strdup(who);
    }
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const cu_file *)a)->path, ((const cu_file *)b)->path);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lines added and removed in @path from @from (NULL: nothing) to now. */
static void line_counts(kith_ws *ws, const char *path, const char *from, long *add, long *del)
{
    char *out = NULL, *text = NULL;
    size_t len = 0;
    *add = *del = 0;
    if (from && kith_ws_diff(ws, path, from, "now", false, &out, &len) == 0) {
        const char *p = out, *end = out + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n >= 1 && p[0] == '+' && !(n >= 3 && !strncmp(p, "+++", 3)))
                (*add)++;
            else if (n >= 1 && p[0] == '-' && !(n >= 3 && !strncmp(p, "---", 3)))
                (*del)++;
            p += n + 1;
        }
        kith_free(out);
        return;
    }
    kith_free(out);
    /* no earlier version (new since then): every line is added */
    if (kith_ws_cat(ws, path, NULL, &text, &len) == 0) {
        for (size_t i = 0; i < len; i++)
            *add += text[i] == '\n';
        if (len && text[len - 1] != '\n')
            (*add)++;
    }
    kith_free(text);
}

static const char cu_usage[] =
    "usage: kith ai catchup [--since V] [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "What changed since version V (a change id, \"2h ago\", a date; default: the\n"
    "last 24 hours): per file, the number of changes, the lines added and removed,\n"
    "and who made them (and via which model), then the model's summary of those\n"
    "files' current text. -n 0 leaves the summary out.\n\n";

int cmd_ai_catchup(int argc, char **argv)
{
    const char *since = NULL;
    int ret = 1;
    gen g;
    gen_init(&g, 128);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opt(&g, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", cu_usage, gen_usage_opts);
            return 0;
        } else if (!strcmp(a, "--since") && i + 1 < argc) {
            since = argv[++i];
        } else {
            return cli_error("unknown argument '%s'; see 'kith ai catchup --help'", a);
        }
    }
    kith_ws *ws = ws_cli_open();
    char id[KITH_WS_ID_HEX + 1], *prompt = NULL, *sum = NULL;
    cu_ctx x;
    memset(&x, 0, sizeof x);
    if (!ws)
        return 1;
    if (since) {
        if (kith_ws_resolve(ws, since, id)) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
        x.since_id = id;
    } else {
        x.cutoff_ms = (int64_t)time(NULL) * 1000 - 24LL * 3600 * 1000;
    }
    if (kith_ws_log(ws, NULL, 0, cu_change, &x)) {
        cli_error("%s", kith_ws_errmsg(ws));
        goto out;
    }
    if (x.nf)
        qsort(x.files, x.nf, sizeof *x.files, cmp_file);
    printf("%zu change%s since %s%.*s\n", x.nchanges, x.nchanges == 1 ? "" : "s",
           since ? "" : "24 hours ago", since ? 12 : 0, since ? id : "");
    for (size_t k = 0; k < x.nf; k++) {
        cu_file *f = &x.files[k];
        long add, del;
        line_counts(ws, f->path, x.boundary[0] ? x.boundary : NULL, &add, &del);
        qsort(f->authors, f->na, sizeof f->authors[0], cmp_strp);
        printf("  %s  +%ld -%ld  %zu change%s by ", f->path, add, del, f->changes,
               f->changes == 1 ? "" : "s");
        for (size_t a = 0; a < f->na; a++)
            printf("%s%s", a ? ", " : "", f->authors[a]);
        putchar('\n');
    }
    if (!x.nf || g.gp.max_tokens == 0) {
        ret = 0;
        goto out;
    }
    if (gen_load(&g))
        goto out;
    for (size_t budget = (size_t)g.n_ctx * 4;; budget = budget * 2 / 3) {
        sbuf mat = {0};
        for (size_t k = 0; k < x.nf; k++) {
            char *t = NULL;
            size_t len = 0;
            if (kith_ws_cat(ws, x.files[k].path, NULL, &t, &len))
                continue;
            sb_str(&mat, "File ");
            sb_str(&mat, x.files[k].path);
            sb_str(&mat, ":\n");
            sb_head(&mat, t, len, budget / x.nf);
            sb_str(&mat, "\n\n");
            kith_free(t);
        }
        free(prompt);
        prompt = gen_prompt(&g, "What changed, in a few sentences:\n", mat.p ? mat.p : "");
        free(mat.p);
        if (!prompt || gen_fits(&g, prompt) || budget < 16)
            break;
    }
    if (!prompt)
        goto out;
    printf("\nSummary:\n");
    fflush(stdout);
    if ((ret = gen_run(&g, prompt, 1, &sum)))
        goto out;
    putchar('\n');
out:
    gen_free(&g);
    for (size_t k = 0; k < x.nf; k++) {
        free(x.files[k].path);
        for (size_t a = 0; a < x.files[k].na; a++)
            free(x.files[k].authors[a]);
    }
    free(x.files);
    free(prompt);
    free(sum);
    kith_ws_close(ws);
    return ret;
}

/* ---- ask: the search index ---- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

typedef struct ix_ctx {
    kith_ws *ws;
    sqlite3 *db;
    sqlite3_stmt *get, *del, *put, *chunk, *seen;
    int err;
} ix_ctx;

static int ix_file(const kith_ws_entry *e, void *vctx)
{
    ix_ctx *x = vctx;
    char *text = NULL;
    size_t len = 0;
    if (e->binary)
        return 0;
    if (kith_ws_cat(x->ws, e->path, NULL, &text, &len))
        return 0; /* unreadable now: left out of the index */
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a(text, len));
    sqlite3_bind_text(x->seen, 1, e->path, -1, SQLITE_TRANSIENT);
    sqlite3_step(x->seen);
    sqlite3_reset(x->seen);
    sqlite3_bind_text(x->get, 1, e->path, -1, SQLITE_TRANSIENT);
    int same = 0;
    if (sqlite3_step(x->get) == SQLITE_ROW)
        same = sqlite3_column_int64(x->get, 0) == (sqlite3_int64)len &&
               !strcmp((const char *)sqlite3_column_text(x->get, 1), hash);
    sqlite3_reset(x->get);
    if (same) {
        kith_free(text);
        return 0;
    }
    sqlite3_bind_text(x->del, 1, e->path, -1, SQLITE_TRANSIENT);
    sqlite3_step(x->del);
    sqlite3_reset(x->del);
    size_t off = 0;
    int line = 1;
    while (off < len) {
        size_t start = off;
        int l0 = line;
        for (int k = 0; k < CHUNK_LINES && off < len; k++) {
            const char *nl = memchr(text + off, '\n', len - off);
            off = nl ? (size_t)(nl - text) + 1 : len;
            line++;
        }
        sqlite3_bind_text(x->chunk, 1, text + start, (int)(off - start), SQLITE_TRANSIENT);
        sqlite3_bind_text(x->chunk, 2, e->path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(x->chunk, 3, l0);
        sqlite3_bind_int(x->chunk, 4, line - 1);
        if (sqlite3_step(x->chunk) != SQLITE_DONE)
            x->err = 1;
        sqlite3_reset(x->chunk);
    }
    sqlite3_bind_text(x->put, 1, e->path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(x->put, 2, (sqlite3_int64)len);
    sqlite3_bind_text(x->put, 3, hash, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(x->put) != SQLITE_DONE)
        x->err = 1;
    sqlite3_reset(x->put);
    kith_free(text);
    return 0;
}

/* Opens .kith/search.db and brings it up to date with the recorded text. */
static int ix_update(kith_ws *ws, sqlite3 **dbp)
{
    char path[PATH_MAX];
    ix_ctx x = {.ws = ws};
    snprintf(path, sizeof path, "%s/.kith/search.db", kith_ws_root(ws));
    if (sqlite3_open(path, &x.db) != SQLITE_OK) {
        cli_error("cannot open '%s': %s", path, sqlite3_errmsg(x.db));
        sqlite3_close(x.db);
        return 1;
    }
    sqlite3_busy_timeout(x.db, 10000);
    const char *schema =
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER, hash TEXT);"
        "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(body, path UNINDEXED, "
        "l0 UNINDEXED, l1 UNINDEXED, tokenize='unicode61');"
        "CREATE TEMP TABLE seen(path TEXT PRIMARY KEY);"
        "BEGIN IMMEDIATE;";
    char *err = NULL;
    if (sqlite3_exec(x.db, schema, NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_prepare_v2(x.db, "SELECT size, hash FROM files WHERE path=?", -1, &x.get, NULL) ||
        sqlite3_prepare_v2(x.db, "DELETE FROM chunks WHERE path=?", -1, &x.del, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT OR REPLACE INTO files VALUES(?,?,?)", -1, &x.put, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT INTO chunks(body, path, l0, l1) VALUES(?,?,?,?)", -1,
                           &x.chunk, NULL) ||
        sqlite3_prepare_v2(x.db, "INSERT OR IGNORE INTO seen VALUES(?)", -1, &x.seen, NULL)) {
        cli_error("search index: %s", err ? err : sqlite3_errmsg(x.db));
        x.err = 2;
    }
    sqlite3_free(err);
    err = NULL;
    if (!x.err && kith_ws_ls(ws, ix_file, &x)) {
        cli_error("%s", kith_ws_errmsg(ws));
        x.err = 2;
    }
    sqlite3_finalize(x.get);
    sqlite3_finalize(x.del);
    sqlite3_finalize(x.put);
    sqlite3_finalize(x.chunk);
    sqlite3_finalize(x.seen);
    if (!x.err && sqlite3_exec(x.db,
                               "DELETE FROM chunks WHERE path NOT IN (SELECT path FROM seen);"
                               "DELETE FROM files WHERE path NOT IN (SELECT path FROM seen);"
                               "COMMIT;",
                               NULL, NULL, &err) != SQLITE_OK) {
        cli_error("search index: %s", err ? err : sqlite3_errmsg(x.db));
        x.err = 2;
    }
    sqlite3_free(err);
    if (x.err) {
        if (x.err == 1)
            cli_error("search index: %s", sqlite3_errmsg(x.db));
        sqlite3_close(x.db);
        return 1;
    }
    *dbp = x.db;
    return 0;
}

/* An FTS5 query matching any word of @q (each quoted); NULL if none. */
static char *fts_query(const char *q)
{
    sbuf b = {0};
    const char *p = q;
    while (*p) {
        while (*p && !(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        const char *w = p;
        while (*p && (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        if (p - w >= 2) {
            if (b.len)
                sb_str(&b, " OR ");
            sb_str(&b, "\"");
            sb_add(&b, w, (size_t)(p - w));
            sb_str(&b, "\"");
        }
    }
    return b.p;
}

typedef struct hit {
    char *path, *body;
    int l0, l1;
} hit;

static const char ask_usage[] =
    "usage: kith ai ask \"question\" [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "Finds the passages of the workspace's recorded files that best match the\n"
    "question (SQLite FTS5, BM25; index in .kith/search.db, refreshed for files\n"
    "that changed), asks the model with them, and prints its answer followed by\n"
    "the sources used as path:first-last line. -n 0 prints the sources only.\n\n";

int cmd_ai_ask(int argc, char **argv)
{
    const char *question = NULL;
    int ret = 1;
    gen g;
    gen_init(&g, 128);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opt(&g, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", ask_usage, gen_usage_opts);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'; see 'kith ai ask --help'", a);
        } else if (!question) {
            question = a;
        } else {
            return cli_error("one question only (quote it)");
        }
    }
    if (!question)
        return cli_error("usage: kith ai ask \"question\"");
    kith_ws *ws = ws_cli_open();
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *q = fts_query(question), *prompt = NULL, *answer = NULL;
    hit hits[ASK_TOP];
    size_t nh = 0, used = 0;
    if (!ws)
        goto out;
    if (!q) {
        cli_error("the question has no words to search for");
        goto out;
    }
    if (ix_update(ws, &db))
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT path, l0, l1, body FROM chunks WHERE chunks MATCH ? "
                           "ORDER BY bm25(chunks), path, l0 LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        cli_error("search: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_text(st, 1, q, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, ASK_TOP);
    while (nh < ASK_TOP && sqlite3_step(st) == SQLITE_ROW) {
        hits[nh].path = strdup((const char *)sqlite3_column_text(st, 0));
        hits[nh].l0 = sqlite3_column_int(st, 1);
        hits[nh].l1 = sqlite3_column_int(st, 2);
        hits[nh].body = strdup((const char *)sqlite3_column_text(st, 3));
        nh++;
    }
    if (!nh) {
        printf("No file of the workspace matches the question.\n");
        ret = 0;
        goto out;
    }
    used = nh;
    if (g.gp.max_tokens > 0) {
        if (gen_load(&g))
            goto out;
        /* fewer passages, then shorter ones, until the prompt fits */
        for (size_t budget = (size_t)g.n_ctx * 4;; budget = budget * 2 / 3) {
            sbuf mat = {0};
            for (size_t k = 0; k < used; k++) {
                char ref[PATH_MAX + 32];
                snprintf(ref, sizeof ref, "[%s:%d-%d]\n", hits[k].path, hits[k].l0, hits[k].l1);
                sb_str(&mat, ref);
                sb_head(&mat, hits[k].body, strlen(hits[k].body), budget / used);
                sb_str(&mat, "\n");
            }
            sbuf task = {0};
            sb_str(&task, "\nQuestion: ");
            sb_str(&task, question);
            sb_str(&task, "\nAnswer:\n");
            free(prompt);
            prompt = gen_prompt(&g, task.p, mat.p);
            free(mat.p);
            free(task.p);
            if (!prompt || gen_fits(&g, prompt) || budget < 16)
                break;
            if (used > 1 && budget < (size_t)g.n_ctx * 2)
                used--;
        }
        if (!prompt)
            goto out;
        if ((ret = gen_run(&g, prompt, 1, &answer)))
            goto out;
        ret = 1;
        printf("\n\n");
    }
    printf("Sources:\n");
    for (size_t k = 0; k < used; k++)
        printf("  %s:%d-%d\n", hits[k].path, hits[k].l0, hits[k].l1);
    ret = 0;
out:
    gen_free(&g);
    for (size_t k = 0; k < nh; k++) {
        free(hits[k].path);
        free(hits[k].body);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(q);
    free(prompt);
    free(answer);
    kith_ws_close(ws);
    return ret;
}
