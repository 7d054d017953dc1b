/*
 * kith suggest, suggestions, comments, accept and reject: notes anchored in
 * the CRDT (include/kith/ws.h, "suggestions and comments"). A listing shows
 * where each note is *now*, after whatever was merged since it was made.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"

static const char *status_name(enum kith_ws_note_status s)
{
    switch (s) {
    case KITH_WS_NOTE_OPEN:
        return "open";
    case KITH_WS_NOTE_STALE:
        return "stale";
    case KITH_WS_NOTE_ACCEPTED:
        return "accepted";
    case KITH_WS_NOTE_REJECTED:
        return "rejected";
    }
    return "?";
}

/* The model's name from a via tag ("ai:qwen2.5" -> "qwen2.5"), or NULL. */
static const char *model_of(const char *via)
{
    return via && !strncmp(via, "ai:", 3) ? via + 3 : NULL;
}

/* One line of @s (up to @max bytes, cut at a UTF-8 boundary), newlines shown
 * as "⏎" so that a listing stays one line per note. */
static void print_preview(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            fputs("\u23ce", stdout);
        else if ((unsigned char)s[i] < 0x20)
            putchar(' ');
        else
            putchar(s[i]);
    }
    if (n < len)
        fputs("...", stdout);
}

typedef struct list_ctx {
    ws_cli_opts *o;
    enum kith_ws_note_type type;
    size_t shown;
} list_ctx;

static int list_note(const kith_ws_note *n, void *vctx)
{
    list_ctx *x = vctx;
    if (n->type != x->type)
        return 0;
    x->shown++;
    if (x->o->json) {
        char when[32];
        cli_time(when, sizeof when, n->time_ms, 1);
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s%, s:s%, s:I, s:I, s:I, s:I}", "id",
                      n->id, "type", n->type == KITH_WS_COMMENT ? "comment" : "suggestion", "path",
                      n->path, "author", n->author, "device", n->device, "time", when, "time_ms",
                      (json_int_t)n->time_ms, "text", n->text, n->text_len, "anchor", n->anchor,
                      n->anchor_len, "line", (json_int_t)n->line, "pos", (json_int_t)n->pos, "len",
                      (json_int_t)n->len, "del", (json_int_t)n->del);
        if (!j)
            return 1;
        json_object_set_new(j, "status", json_string(status_name(n->status)));
        json_object_set_new(j, "via", n->via ? json_string(n->via) : json_null());
        json_object_set_new(j, "model",
                            model_of(n->via) ? json_string(model_of(n->via)) : json_null());
        json_array_append_new(x->o->acc, j);
        return 0;
    }
    const char *model = model_of(n->via);
    char where[64] = "";
    if (n->line)
        snprintf(where, sizeof where, ":%zu", n->line);
    printf("%s%.8s%s  %-8s %s%s  %s%s%s  ", x->o->color ? "\033[33m" : "", n->id,
           x->o->color ? "\033[0m" : "", status_name(n->status), n->path, where, n->author,
           model ? " via " : "", model ? model : "");
    if (n->type == KITH_WS_SUGGESTION && n->del)
        printf("(replaces %zu) ", n->del);
    putchar('"');
    print_preview(n->text, n->text_len, 60);
    puts("\"");
    return 0;
}

static const char suggestions_usage[] =
    "usage: kith suggestions [PATH] [--all] [--json] [-C DIR]\n"
    "\n"
    "Lists the open suggestions (of the model or of people), oldest first: id,\n"
    "status, the file and line where each one is anchored now, author and model,\n"
    "and the start of the text. A suggestion is \"stale\" when the text it was\n"
    "anchored to was deleted meanwhile. --all adds accepted and rejected ones.\n"
    "--json prints an array of objects with id, type, status, path, line, author,\n"
    "device, via, model, time, text, anchor, pos, len, del.\n"
    "Then: kith accept ID, or kith reject ID.\n";

static const char comments_usage[] =
    "usage: kith comments [PATH] [--all] [--json] [-C DIR]\n"
    "\n"
    "Lists the open comments (kith ai review makes them), anchored to the text\n"
    "they are about, as 'kith suggestions' lists suggestions. --all adds the\n"
    "dismissed ones. 'kith reject ID' dismisses one.\n";

static int list_notes(int argc, char **argv, enum kith_ws_note_type type, const char *usage)
{
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, usage);
    if (r)
        return r == -1 ? 0 : 2;
    const char *path = NULL;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_error("unknown option '%s'\n%s", argv[i], usage), 2;
        else if (!path)
            path = argv[i];
        else
            return cli_error("unexpected argument %s\n%s", argv[i], usage), 2;
    }
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    list_ctx x = {&o, type, 0};
    o.acc = o.json ? json_array() : NULL;
    if (kith_ws_notes(ws, path, all, list_note, &x)) {
        json_decref(o.acc);
        return ws_cli_fail(ws);
    }
    if (o.json) {
        json_dumpf(o.acc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o.acc);
    } else if (!x.shown && o.color) {
        printf("no %s%s\n", all ? "" : "open ",
               type == KITH_WS_COMMENT ? "comments" : "suggestions");
    }
    kith_ws_close(ws);
    return 0;
}

int cmd_suggestions(int argc, char **argv)
{
    return list_notes(argc, argv, KITH_WS_SUGGESTION, suggestions_usage);
}

int cmd_comments(int argc, char **argv)
{
    return list_notes(argc, argv, KITH_WS_COMMENT, comments_usage);
}

/* ---- accept / reject ---- */

static const char accept_usage[] =
    "usage: kith accept ID [-C DIR]\n"
    "\n"
    "Applies the suggestion ID (or a prefix of 4+ hex digits) where it is anchored\n"
    "now, as a change by you carrying the suggestion's tag (via ai:<model> for the\n"
    "model's), writes the file and closes the suggestion; it syncs like any change.\n"
    "Edits in the folder are recorded first. A stale suggestion (its anchored text\n"
    "was deleted) is refused: exit status 4.\n";

static const char reject_usage[] =
    "usage: kith reject ID [-C DIR]\n"
    "\n"
    "Closes the suggestion or comment ID without applying it; it syncs.\n";

static int resolve(int argc, char **argv, bool accept)
{
    const char *usage = accept ? accept_usage : reject_usage;
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, usage);
    if (r)
        return r == -1 ? 0 : 2;
    if (argc != 2 || (argv[1][0] == '-' && argv[1][1]))
        return cli_error("%s", usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    kith_ws_result res;
    int rc = accept ? kith_ws_accept(ws, argv[1], &res) : kith_ws_reject(ws, argv[1], &res);
    if (rc) {
        cli_error("%s", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return rc == KITH_ESTALE ? 4 : 1;
    }
    printf("%s %s: change %.10s\n", accept ? "accepted" : "closed", argv[1], res.change);
    kith_ws_close(ws);
    return 0;
}

int cmd_accept(int argc, char **argv)
{
    return resolve(argc, argv, true);
}

int cmd_reject(int argc, char **argv)
{
    return resolve(argc, argv, false);
}

/* ---- suggest: a person's suggestion ---- */

static const char suggest_usage[] =
    "usage: kith suggest PATH (--at LINE | --after TEXT | --replace TEXT) [-m TEXT]\n"
    "                    [--comment] [-C DIR]\n"
    "\n"
    "Records a suggestion by you on the recorded text of PATH, for a teammate (or\n"
    "you, later) to accept or reject: the new text (-m TEXT, or stdin) goes at the\n"
    "start of line LINE, right after the first occurrence of TEXT (--after), or\n"
    "in place of it (--replace). With --comment it is a comment on that line or\n"
    "text instead. It is anchored in the history, not to the line number: edits\n"
    "merged later move it along. Prints its id.\n";

/* Byte offset -> code points. */
static size_t cps(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t got = fread(b + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0)
            break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b)
        b[n] = 0;
    *len = n;
    return b;
}

/* Where the note goes in @text: the anchored range and the replaced one. */
static int place(const char *path, const char *text, size_t len, long at, const char *after,
                 const char *replace, bool comment, kith_ws_note_spec *s)
{
    if (at) {
        size_t off = 0, line = 1;
        while (line < (size_t)at && off < len) {
            const char *nl = memchr(text + off, '\n', len - off);
            if (!nl)
                break;
            off = (size_t)(nl - text) + 1;
            line++;
        }
        if (line < (size_t)at)
            return cli_error("%s has %zu lines; --at %ld is past its end", path, line, at);
        if (comment) { /* the line itself */
            const char *nl = memchr(text + off, '\n', len - off);
            size_t end = nl ? (size_t)(nl - text) : len;
            s->pos = cps(text, off);
            s->len = cps(text + off, end - off);
        } else if (off > 0) { /* after the newline that ends the line before */
            s->pos = cps(text, off) - 1;
            s->len = 1;
        }
        return 0;
    }
    const char *want = after ? after : replace;
    const char *hit = *want ? strstr(text, want) : NULL;
    if (!hit)
        return cli_error("'%s' does not occur in %s", want, path);
    size_t off = (size_t)(hit - text), n = strlen(want);
    if (after || comment) {
        s->pos = cps(text, off);
        s->len = cps(hit, n);
    } else { /* anchored to the character before, replacing the match */
        s->pos = off ? cps(text, off) - 1 : 0;
        s->len = off ? 1 : 0;
        s->del = cps(hit, n);
    }
    return 0;
}

int cmd_suggest(int argc, char **argv)
{
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, suggest_usage);
    if (r)
        return r == -1 ? 0 : 2;
    const char *path = NULL, *after = NULL, *replace = NULL, *msg = NULL;
    long at = 0;
    bool comment = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--at") && i + 1 < argc) {
            char *end;
            errno = 0;
            at = strtol(argv[++i], &end, 10);
            if (*end || errno || at < 1)
                return cli_error("--at: '%s' is not a line number", argv[i]), 2;
        } else if (!strcmp(a, "--after") && i + 1 < argc) {
            after = argv[++i];
        } else if (!strcmp(a, "--replace") && i + 1 < argc) {
            replace = argv[++i];
        } else if (!strcmp(a, "-m") && i + 1 < argc) {
            msg = argv[++i];
        } else if (!strcmp(a, "--comment")) {
            comment = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'\n%s", a, suggest_usage), 2;
        } else if (!path) {
            path = a;
        } else {
            return cli_error("unexpected argument %s\n%s", a, suggest_usage), 2;
        }
    }
    if (!path || (!!at + !!after + !!replace) != 1)
        return cli_error("%s", suggest_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    int ret = 1;
    char *text = NULL, *input = NULL;
    size_t len = 0, inlen = 0;
    kith_ws_note_spec s = {
        comment ? KITH_WS_COMMENT : KITH_WS_SUGGESTION, path, 0, 0, 0, NULL, 0, NULL};
    if (msg) {
        s.text = msg;
        s.text_len = strlen(msg);
    } else if (!(input = read_stdin(&inlen))) {
        cli_error("out of memory");
        goto out;
    } else {
        s.text = input;
        s.text_len = inlen;
    }
    kith_ws_result scanned; /* the file as it is now is what TEXT and LINE name */
    if (kith_ws_scan(ws, NULL, NULL, &scanned) || kith_ws_cat(ws, path, NULL, &text, &len)) {
        cli_error("%s", kith_ws_errmsg(ws));
        goto out;
    }
    if (place(path, text, len, at, after, replace, comment, &s))
        goto out;
    char id[KITH_WS_ID_HEX + 1];
    if (kith_ws_note_add(ws, &s, id)) {
        cli_error("%s", kith_ws_errmsg(ws));
        goto out;
    }
    printf("%s %.8s on %s\n", comment ? "comment" : "suggestion", id, path);
    ret = 0;
out:
    kith_free(text);
    free(input);
    kith_ws_close(ws);
    return ret;
}
