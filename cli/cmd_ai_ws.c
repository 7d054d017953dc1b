/*
 * cmd_ai_ws.c: `kith ai draft|summarize|catchup|ask|review`, the on-device model
 * working on the workspace (issue 6, first slice). What the model writes is
 * recorded with kith_ws_edit + kith_ws_commit under the via tag
 * "ai:<model file name without .gguf>", so blame and log show it. Generation
 * runs before anything is recorded: Ctrl-C (kith_ctx_cancel from the signal
 * handler) leaves the workspace as it was. Prompts are cut to fit the
 * model's context (counted in tokens with its own vocabulary).
 * `ask` keeps an SQLite FTS5 index of the recorded text in .kith/search.db
 * (chunks of 20 lines), refreshed for files whose size or hash changed.
 * A draft without --apply becomes a suggestion (kith_ws_note_add), anchored
 * in the CRDT, for `kith accept`.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/ai.h"
#include "kith/assist.h"
#include "kith/kith.h"

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
    kith_assist_lm lm;
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
    int rc, tty = isatty(STDERR_FILENO);
    if (tty) /* a real model takes a moment to map and check */
        fputs("kith: loading the model ...", stderr);
    rc = cli_ai_load_model(g->model_opt, &g->m, g->path, sizeof g->path);
    if (tty)
        fputs("\r\033[K", stderr);
    if (rc)
        return 1;
    if ((rc = kith_vocab_load(g->path, &g->v, err, sizeof err)))
        return cli_error("cannot load the vocabulary of '%s': %s", g->path, err);
    if ((rc = kith_ctx_new(g->m, NULL, &g->c)))
        return cli_error("cannot create a context: %s", kith_strerror(rc));
    g->n_ctx = kith_ctx_n_ctx(g->c);
    if (g->gp.max_tokens > g->n_ctx / 2)
        g->gp.max_tokens = g->n_ctx / 2;
    g->lm = (kith_assist_lm){g->m, g->v, g->n_ctx, g->gp.max_tokens};
    g->chat = kith_assist_chat(&g->lm);
    kith_assist_via(g->path, g->via, sizeof g->via);
    return 0;
}

/* The prompt the model sees for @task and @material (kith_assist_prompt).
 * Caller frees. */
static char *gen_prompt(gen *g, const char *task, const char *material)
{
    char *out = NULL;
    int rc = kith_assist_prompt(&g->lm, task, material, &out);
    if (rc) {
        cli_error("cannot make the prompt: %s", kith_strerror(rc));
        return NULL;
    }
    char *copy = strdup(out);
    kith_free(out);
    if (!copy)
        cli_error("out of memory");
    return copy;
}

/* True when @prompt leaves room in the context for the generated tokens. */
static int gen_fits(gen *g, const char *prompt)
{
    return kith_assist_fits(&g->lm, prompt);
}

/* A long prompt on a real model takes seconds: say how far it is, on a
 * terminal, and clear the line before the text comes. */
static void on_prompt(void *ud, size_t done, size_t total)
{
    if (done < total)
        fprintf(stderr, "\rkith: reading the prompt: %zu/%zu tokens", done, total);
    else
        fputs("\r\033[K", stderr);
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
    g->gp.on_prompt = isatty(STDERR_FILENO) ? on_prompt : NULL;
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
    "ai:<model>, which 'kith blame' and 'kith log' show. Without --apply it becomes a\n"
    "suggestion anchored to the text there ('kith suggestions' lists them, 'kith accept\n"
    "ID' applies one, 'kith reject ID' drops it), made via ai:<model> as well.\n\n";

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
    /* both an edit and a suggestion need the file as recorded: record first */
    if (ws_rel(ws, path, &rel) || scan_first(ws) || !(text = read_doc(ws, path, &len)))
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
    if (!apply)
        putchar('\n');
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
    if (apply) {
        int rc = kith_ws_edit(ws, path, utf8_count(text, off), 0, ins.p, ins.len);
        free(ins.p);
        if (rc) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
        if (commit_via(ws, g.via))
            goto out;
        ret = 0;
        goto out;
    }
    /* A suggestion, anchored to text that is there now, so that it lands
     * in the right place after concurrent edits: the text after which it
     * goes (--after), the newline that ends the line before (--at), or
     * the last character (the end). It is inserted right after the anchor. */
    kith_ws_note_spec spec = {
        .type = KITH_WS_SUGGESTION, .path = path, .text = ins.p, .text_len = ins.len, .via = g.via};
    size_t cp = utf8_count(text, off);
    if (after) {
        spec.len = utf8_count(after, strlen(after));
        spec.pos = cp - spec.len;
    } else if (cp > 0) {
        spec.pos = cp - 1;
        spec.len = 1;
    }
    char id[KITH_WS_ID_HEX + 1];
    int rc = kith_ws_note_add(ws, &spec, id);
    free(ins.p);
    if (rc) {
        cli_error("%s", kith_ws_errmsg(ws));
        goto out;
    }
    size_t line = 1;
    for (size_t k = 0; k < off; k++)
        line += text[k] == '\n';
    if (!after && off > 0 && text[off - 1] != '\n')
        line++; /* it starts a new line after the last one */
    printf("suggestion %.8s on %s line %zu: kith accept %.8s to apply it\n", id, rel, line, id);
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

/* ---- review ---- */

#define REVIEW_MAX 32 /* changed ranges commented on at most */

/* A changed range of the recorded text: lines first..last of the new
 * text (last = first - 1 for a pure deletion, before line first), and the
 * diff lines that made it. */
typedef struct rv_range {
    long first, last;
    sbuf diff;
    char *comment;
} rv_range;

typedef struct rv_prev {
    size_t seen;
    char id[KITH_WS_ID_HEX + 1];
} rv_prev;

/* The second newest change that touched the file: the version before its
 * last change. */
static int rv_prev_change(const kith_ws_change *c, void *vctx)
{
    rv_prev *p = vctx;
    if (++p->seen == 2)
        snprintf(p->id, sizeof p->id, "%s", c->id);
    return 0;
}

/* The ranges of the unified diff @d[0..n): each run of '+' and '-' lines
 * between context lines is one. Returns how many (at most @cap). */
static size_t rv_parse(const char *d, size_t n, rv_range *rs, size_t cap)
{
    const char *p = d, *end = d + n;
    long nl = 0; /* line number in the new text of the next line */
    size_t nr = 0;
    int in_run = 0;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
        if (len >= 2 && !strncmp(p, "@@", 2)) {
            const char *plus = memchr(p, '+', len);
            nl = plus ? strtol(plus + 1, NULL, 10) : 0;
            if (plus && nl == 0) /* "+0,0": the new text is empty there */
                nl = 1;
            in_run = 0;
        } else if (len >= 3 && (!strncmp(p, "+++", 3) || !strncmp(p, "---", 3)) && !nl) {
            /* file header */
        } else if (len >= 1 && (p[0] == '+' || p[0] == '-') && nl) {
            if (!in_run) {
                if (nr == cap)
                    break;
                memset(&rs[nr], 0, sizeof rs[nr]);
                rs[nr].first = nl;
                rs[nr].last = nl - 1;
                nr++;
                in_run = 1;
            }
            rv_range *r = &rs[nr - 1];
            sb_add(&r->diff, p, len);
            sb_str(&r->diff, "\n");
            if (p[0] == '+')
                r->last = nl++;
        } else if (len >= 1 && p[0] == ' ') {
            in_run = 0;
            nl++;
        }
        p += len + 1;
    }
    return nr;
}

/* Byte offset of the start of line @line (1-based) of @t, or @n past its end. */
static size_t line_start(const char *t, size_t n, long line)
{
    size_t off = 0;
    for (long l = 1; l < line && off < n; l++) {
        const char *e = memchr(t + off, '\n', n - off);
        off = e ? (size_t)(e - t) + 1 : n;
    }
    return off;
}

static const char review_usage[] =
    "usage: kith ai review PATH [--since V] [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "Asks the model for a short comment on each range of PATH that changed since\n"
    "version V (default: the version before its last change) and records each one\n"
    "as a comment anchored to that range, made via ai:<model> ('kith comments'\n"
    "lists them). Nothing is recorded until every comment is written.\n\n";

int cmd_ai_review(int argc, char **argv)
{
    const char *path = NULL, *since = NULL;
    int ret = 1;
    gen g;
    gen_init(&g, 48);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = gen_opt(&g, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s%s", review_usage, gen_usage_opts);
            return 0;
        } else if (!strcmp(a, "--since") && i + 1 < argc) {
            since = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'; see 'kith ai review --help'", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_error("one file at a time; see 'kith ai review --help'");
        }
    }
    if (!path)
        return cli_error("usage: kith ai review PATH [--since V]");
    kith_ws *ws = ws_cli_open();
    char *rel = NULL, *text = NULL, *diff = NULL, *prompt = NULL;
    char from[KITH_WS_ID_HEX + 1] = "";
    size_t len = 0, dlen = 0, nr = 0;
    rv_range rs[REVIEW_MAX];
    if (!ws)
        return 1;
    if (ws_rel(ws, path, &rel) || scan_first(ws) || !(text = read_doc(ws, path, &len)))
        goto out;
    if (since) {
        if (kith_ws_resolve(ws, since, from)) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
    } else {
        rv_prev pv = {0};
        if (kith_ws_log(ws, path, 2, rv_prev_change, &pv)) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
        snprintf(from, sizeof from, "%s", pv.id);
    }
    /* no earlier version of the file: all of it is new */
    if (!from[0] || kith_ws_diff(ws, path, from, "now", false, &diff, &dlen)) {
        long lines = 0;
        for (size_t k = 0; k < len; k++)
            lines += text[k] == '\n';
        lines += len && text[len - 1] != '\n';
        memset(&rs[0], 0, sizeof rs[0]);
        rs[0].first = 1;
        rs[0].last = lines;
        sb_str(&rs[0].diff, "(a new file)\n");
        sb_head(&rs[0].diff, text, len, 8192);
        nr = lines ? 1 : 0;
    } else {
        nr = rv_parse(diff, dlen, rs, REVIEW_MAX);
    }
    if (!nr) {
        printf("no change in %s since %.12s\n", rel, from);
        ret = 0;
        goto out;
    }
    if (gen_load(&g))
        goto out;
    /* every comment is written before anything is recorded, so that Ctrl-C
     * or a failure leaves no partial review */
    for (size_t k = 0; k < nr; k++) {
        rv_range *r = &rs[k];
        for (size_t budget = (size_t)g.n_ctx * 4;; budget = budget * 2 / 3) {
            sbuf mat = {0};
            sb_str(&mat, "A change to the file ");
            sb_str(&mat, rel);
            sb_str(&mat, " (lines starting with + were added, with - removed):\n");
            sb_head(&mat, r->diff.p, r->diff.len, budget);
            free(prompt);
            prompt = gen_prompt(&g, "\nA short review comment on this change:\n", mat.p);
            free(mat.p);
            if (!prompt || gen_fits(&g, prompt) || budget < 16)
                break;
        }
        if (!prompt)
            goto out;
        if ((ret = gen_run(&g, prompt, 0, &r->comment)))
            goto out;
        ret = 1;
        trim(r->comment);
    }
    for (size_t k = 0; k < nr; k++) {
        rv_range *r = &rs[k];
        if (!*r->comment) {
            fprintf(stderr, "kith: the model wrote nothing on lines %ld-%ld; no comment there\n",
                    r->first, r->last);
            continue;
        }
        /* the anchor: the changed lines without their last newline (so that
         * the note's line is the range's last), or for a deletion the newline
         * before the place, as a draft --at would */
        size_t a = line_start(text, len, r->first), b;
        if (r->last >= r->first) {
            b = line_start(text, len, r->last + 1);
            if (b > a && text[b - 1] == '\n')
                b--;
        } else {
            b = a;
            if (a > 0)
                a--;
        }
        kith_ws_note_spec spec = {.type = KITH_WS_COMMENT,
                                  .path = path,
                                  .pos = utf8_count(text, a),
                                  .len = utf8_count(text + a, b - a),
                                  .text = r->comment,
                                  .text_len = strlen(r->comment),
                                  .via = g.via};
        char id[KITH_WS_ID_HEX + 1];
        if (kith_ws_note_add(ws, &spec, id)) {
            cli_error("%s", kith_ws_errmsg(ws));
            goto out;
        }
        for (char *c = r->comment; *c; c++) /* one line each on the terminal */
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        if (r->last >= r->first)
            printf("comment %.8s on %s lines %ld-%ld: %s\n", id, rel, r->first, r->last,
                   r->comment);
        else
            printf("comment %.8s on %s before line %ld (deleted text): %s\n", id, rel, r->first,
                   r->comment);
    }
    ret = 0;
out:
    gen_free(&g);
    for (size_t k = 0; k < nr; k++) {
        free(rs[k].diff.p);
        free(rs[k].comment);
    }
    free(rel);
    free(text);
    kith_free(diff);
    free(prompt);
    kith_ws_close(ws);
    return ret;
}

/* ---- catchup ---- */

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
    char err[512], *prompt = NULL, *sum = NULL;
    kith_assist_catchup *cu = NULL;
    if (!ws)
        return 1;
    int64_t day_ago = (int64_t)time(NULL) * 1000 - 24LL * 3600 * 1000;
    if (kith_assist_catchup_get(ws, since, day_ago, &cu, err, sizeof err)) {
        cli_error("%s", err);
        goto out;
    }
    printf("%zu change%s since %s%.*s\n", cu->n_changes, cu->n_changes == 1 ? "" : "s",
           since ? "" : "24 hours ago", since ? 12 : 0, since ? cu->since : "");
    for (size_t k = 0; k < cu->n_files; k++) {
        const kith_assist_file *f = &cu->files[k];
        printf("  %s  +%ld -%ld  %zu change%s by ", f->path, f->added, f->removed, f->changes,
               f->changes == 1 ? "" : "s");
        for (size_t a = 0; a < f->n_authors; a++)
            printf("%s%s", a ? ", " : "", f->authors[a]);
        putchar('\n');
    }
    if (!cu->n_files || g.gp.max_tokens == 0) {
        ret = 0;
        goto out;
    }
    if (gen_load(&g))
        goto out;
    int rc = kith_assist_catchup_prompt(&g.lm, cu, &prompt);
    if (rc) {
        cli_error("cannot make the prompt: %s", kith_strerror(rc));
        goto out;
    }
    printf("\nSummary:\n");
    fflush(stdout);
    if ((ret = gen_run(&g, prompt, 1, &sum)))
        goto out;
    putchar('\n');
out:
    gen_free(&g);
    kith_assist_catchup_free(cu);
    kith_free(prompt);
    free(sum);
    kith_ws_close(ws);
    return ret;
}

/* ---- ask ---- */

#define ASK_TOP          4        /* passages given to the model at most */
#define EMBED_MIN_PARAMS 10000000 /* smaller models' embeddings do not help retrieval */

static const char ask_usage[] =
    "usage: kith ai ask \"question\" [--model M] [-n N] [--temp T] [--seed S]\n\n"
    "Finds the passages of the workspace's recorded files that best match the\n"
    "question (SQLite FTS5, BM25; index in .kith/search.db, refreshed for files\n"
    "that changed; fused with the model's embeddings for models of 10M parameters\n"
    "or more), asks the model with them, and prints its answer followed by the\n"
    "sources used as path:first-last line. -n 0 prints the sources only (BM25).\n\n";

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
    kith_assist_source *src = NULL;
    char err[512], *prompt = NULL, *answer = NULL;
    size_t nh = 0, used = 0;
    if (!ws)
        goto out;
    /* With a real model, its embeddings rank the passages too; a toy one
     * (the bundled 260K-parameter model) would only add noise to BM25. */
    kith_ctx *embed = NULL;
    if (g.gp.max_tokens > 0) {
        if (gen_load(&g))
            goto out;
        struct kith_model_info in = {.size = sizeof in};
        if (!kith_model_info(g.m, &in) && in.n_params >= EMBED_MIN_PARAMS)
            embed = g.c;
    }
    if (kith_assist_search_embed(ws, question, ASK_TOP, g.m, embed, g.via, &src, &nh, err,
                                 sizeof err)) {
        cli_error("%s", err);
        goto out;
    }
    if (!nh) {
        printf("No file of the workspace matches the question.\n");
        ret = 0;
        goto out;
    }
    used = nh;
    if (g.gp.max_tokens > 0) {
        int rc = kith_assist_ask_prompt(&g.lm, question, src, nh, &prompt, &used);
        if (rc) {
            cli_error("cannot make the prompt: %s", kith_strerror(rc));
            goto out;
        }
        if ((ret = gen_run(&g, prompt, 1, &answer)))
            goto out;
        ret = 1;
        printf("\n\n");
    }
    printf("Sources:\n");
    for (size_t k = 0; k < used; k++)
        printf("  %s:%d-%d\n", src[k].path, src[k].first, src[k].last);
    ret = 0;
out:
    gen_free(&g);
    kith_assist_sources_free(src, nh);
    kith_free(prompt);
    free(answer);
    kith_ws_close(ws);
    return ret;
}
