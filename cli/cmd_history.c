/*
 * kith log, blame, cat, diff and restore: the history verbs. Listings print
 * aligned columns (colour on a terminal only) or, with --json, one JSON
 * array for scripts.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"

/* ---- log --------------------------------------------------------------------------------- */

static const char log_usage[] =
    "usage: kith log [PATH] [-n N] [--json] [-C DIR]\n"
    "\n"
    "Shows the changes, newest first: id, time, author, files, +inserted/-deleted\n"
    "code points, and the \"via\" tag of changes a tool (the on-device model) made\n"
    "on the author's behalf. With PATH, only the changes that touched that file.\n"
    "--json prints an array of objects with id, time, time_ms, author, device,\n"
    "paths, inserted, deleted, via, notes (suggestions and comments added or closed).\n";

typedef struct log_row {
    char id[KITH_WS_ID_HEX + 1];
    char when[32];
    char *author, *files, *via;
    unsigned long long ins, del;
} log_row;

typedef struct log_ctx {
    ws_cli_opts *o;
    log_row *rows;
    size_t n, cap;
} log_ctx;

/* "a.md, b.md, 1 note": the files, then the suggestions and comments. */
static char *join_paths(const kith_ws_change *c)
{
    size_t len = 32;
    for (size_t i = 0; i < c->npaths; i++)
        len += strlen(c->paths[i]) + 2;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = 0;
    for (size_t i = 0; i < c->npaths; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, c->paths[i]);
    }
    if (c->nnotes)
        snprintf(s + strlen(s), 32, "%s%zu note%s", c->npaths ? ", " : "", c->nnotes,
                 c->nnotes == 1 ? "" : "s");
    return s;
}

static int log_change(const kith_ws_change *c, void *vctx)
{
    log_ctx *x = vctx;
    if (x->o->json) {
        char when[32];
        cli_time(when, sizeof when, c->time_ms, 1);
        json_t *paths = json_array();
        for (size_t i = 0; i < c->npaths; i++)
            json_array_append_new(paths, json_string(c->paths[i]));
        json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:I, s:I}", "id", c->id, "time", when,
                              "time_ms", (json_int_t)c->time_ms, "author", c->author, "device",
                              c->device, "paths", paths, "inserted", (json_int_t)c->inserted,
                              "deleted", (json_int_t)c->deleted);
        json_object_set_new(j, "via", c->via ? json_string(c->via) : json_null());
        json_object_set_new(j, "notes", json_integer((json_int_t)c->nnotes));
        json_array_append_new(x->o->acc, j);
        return 0;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        log_row *r = realloc(x->rows, cap * sizeof *r);
        if (!r)
            return 1;
        x->rows = r;
        x->cap = cap;
    }
    log_row *r = &x->rows[x->n++];
    snprintf(r->id, sizeof r->id, "%s", c->id);
    cli_time(r->when, sizeof r->when, c->time_ms, 0);
    r->author = strdup(c->author);
    r->files = join_paths(c);
    r->via = c->via ? strdup(c->via) : NULL;
    r->ins = c->inserted;
    r->del = c->deleted;
    return 0;
}

static void print_log(log_ctx *x)
{
    int wa = 6, wn = 0;
    for (size_t i = 0; i < x->n; i++) {
        int a = x->rows[i].author ? (int)strlen(x->rows[i].author) : 0;
        char n[64];
        int l = snprintf(n, sizeof n, "+%llu -%llu", x->rows[i].ins, x->rows[i].del);
        wa = a > wa ? a : wa;
        wn = l > wn ? l : wn;
    }
    int color = x->o->color;
    for (size_t i = 0; i < x->n; i++) {
        log_row *r = &x->rows[i];
        char n[64];
        snprintf(n, sizeof n, "+%llu -%llu", r->ins, r->del);
        printf("%s%.10s%s  %s  %s%-*s%s  %-*s  %s", color ? "\033[33m" : "", r->id,
               color ? "\033[0m" : "", r->when, color ? "\033[1m" : "", wa,
               r->author ? r->author : "?", color ? "\033[0m" : "", wn, n,
               r->files ? r->files : "");
        if (r->via)
            printf("  %s[via %s]%s", color ? "\033[35m" : "", r->via, color ? "\033[0m" : "");
        putchar('\n');
        free(r->author);
        free(r->files);
        free(r->via);
    }
}

int cmd_log(int argc, char **argv)
{
    ws_cli_opts o;
    const char *path = NULL;
    long limit = 0;
    int r = ws_cli_common(&argc, argv, &o, log_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            char *end;
            limit = strtol(argv[++i], &end, 10);
            if (*end || limit < 0)
                return cli_error("log: -n takes a count, not %s", argv[i]), 2;
        } else if (argv[i][0] == '-') {
            return cli_error("log: unknown option %s\n%s", argv[i], log_usage), 2;
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_error("log: one path at most\n%s", log_usage), 2;
        }
    }
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    log_ctx x = {.o = &o};
    o.acc = o.json ? json_array() : NULL;
    int rc = kith_ws_log(ws, path, (size_t)limit, log_change, &x);
    if (rc) {
        json_decref(o.acc);
        for (size_t i = 0; i < x.n; i++) {
            free(x.rows[i].author);
            free(x.rows[i].files);
            free(x.rows[i].via);
        }
        free(x.rows);
        return ws_cli_fail(ws);
    }
    if (o.json) {
        json_dumpf(o.acc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o.acc);
    } else {
        print_log(&x);
    }
    free(x.rows);
    kith_ws_close(ws);
    return 0;
}

/* ---- blame ------------------------------------------------------------------------------- */

static const char blame_usage[] =
    "usage: kith blame PATH [--at V] [--json] [-C DIR]\n"
    "\n"
    "Shows, per line, the change that last touched it, its author and date\n"
    "(\"via\" marks text a tool wrote on the author's behalf). V is a change id\n"
    "or prefix, or a time such as '2h ago' or 2026-11-27.\n";

static int blame_line(const kith_ws_blame_line *l, void *vctx)
{
    ws_cli_opts *o = vctx;
    char when[32];
    if (o->json) {
        cli_time(when, sizeof when, l->time_ms, 1);
        json_t *j =
            json_pack("{s:I, s:s%, s:s, s:s, s:s}", "line", (json_int_t)l->line, "text", l->text,
                      l->len, "change", l->change, "author", l->author, "time", when);
        json_object_set_new(j, "via", l->via ? json_string(l->via) : json_null());
        json_array_append_new(o->acc, j);
        return 0;
    }
    cli_time(when, sizeof when, l->time_ms, 0);
    printf("%s%.10s%s (%-12.12s %s %5zu)%s %.*s\n", o->color ? "\033[33m" : "", l->change,
           o->color ? "\033[0m" : "", l->author, when, l->line, l->via ? " ai" : "", (int)l->len,
           l->text);
    return 0;
}

int cmd_blame(int argc, char **argv)
{
    ws_cli_opts o;
    const char *path = NULL, *at = NULL;
    int r = ws_cli_common(&argc, argv, &o, blame_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--at") && i + 1 < argc)
            at = argv[++i];
        else if (argv[i][0] == '-' || path)
            return cli_error("blame: unexpected %s\n%s", argv[i], blame_usage), 2;
        else
            path = argv[i];
    }
    if (!path)
        return cli_error("blame: which file?\n%s", blame_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    o.acc = o.json ? json_array() : NULL;
    if (kith_ws_blame(ws, path, at, blame_line, &o)) {
        json_decref(o.acc);
        return ws_cli_fail(ws);
    }
    if (o.json) {
        json_dumpf(o.acc, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o.acc);
    }
    kith_ws_close(ws);
    return 0;
}

/* ---- cat and diff ------------------------------------------------------------------------ */

static const char cat_usage[] =
    "usage: kith cat PATH [--at V] [-C DIR]\n"
    "\n"
    "Prints PATH as recorded now, or at version V (a change id or prefix, or a\n"
    "time: '2h ago', 'yesterday', 2026-11-27, 2026-11-27T10:30). PATH may name a\n"
    "deleted file.\n";

int cmd_cat(int argc, char **argv)
{
    ws_cli_opts o;
    const char *path = NULL, *at = NULL;
    int r = ws_cli_common(&argc, argv, &o, cat_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--at") && i + 1 < argc)
            at = argv[++i];
        else if (argv[i][0] == '-' || path)
            return cli_error("cat: unexpected %s\n%s", argv[i], cat_usage), 2;
        else
            path = argv[i];
    }
    if (!path)
        return cli_error("cat: which file?\n%s", cat_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    char *text = NULL;
    size_t len = 0;
    if (kith_ws_cat(ws, path, at, &text, &len))
        return ws_cli_fail(ws);
    int ok = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
    kith_free(text);
    kith_ws_close(ws);
    return ok ? 0 : cli_error("cat: cannot write to standard output");
}

static const char diff_usage[] =
    "usage: kith diff PATH [--from V] [--to V] [--color|--no-color] [-C DIR]\n"
    "\n"
    "Unified diff of PATH from version V (default: as recorded now) to version V\n"
    "(default: the file in the folder, with edits not yet recorded).\n";

int cmd_diff(int argc, char **argv)
{
    ws_cli_opts o;
    const char *path = NULL, *from = NULL, *to = NULL;
    int r = ws_cli_common(&argc, argv, &o, diff_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--from") && i + 1 < argc)
            from = argv[++i];
        else if (!strcmp(argv[i], "--to") && i + 1 < argc)
            to = argv[++i];
        else if (!strcmp(argv[i], "--color"))
            o.color = 1;
        else if (!strcmp(argv[i], "--no-color"))
            o.color = 0;
        else if (argv[i][0] == '-' || path)
            return cli_error("diff: unexpected %s\n%s", argv[i], diff_usage), 2;
        else
            path = argv[i];
    }
    if (!path)
        return cli_error("diff: which file?\n%s", diff_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    char *out = NULL;
    size_t len = 0;
    if (kith_ws_diff(ws, path, from, to, o.color, &out, &len))
        return ws_cli_fail(ws);
    fwrite(out, 1, len, stdout);
    kith_free(out);
    kith_ws_close(ws);
    return 0;
}

/* ---- restore ----------------------------------------------------------------------------- */

static const char restore_usage[] =
    "usage: kith restore PATH --at V [-C DIR]\n"
    "       kith restore --deleted PATH [-C DIR]\n"
    "\n"
    "Brings back PATH's content at version V, or a deleted file, as a new change:\n"
    "history stays. Edits in the folder not yet recorded are recorded first.\n";

int cmd_restore(int argc, char **argv)
{
    ws_cli_opts o;
    const char *path = NULL, *at = NULL;
    int deleted = 0;
    int r = ws_cli_common(&argc, argv, &o, restore_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--at") && i + 1 < argc)
            at = argv[++i];
        else if (!strcmp(argv[i], "--deleted"))
            deleted = 1;
        else if (argv[i][0] == '-' || path)
            return cli_error("restore: unexpected %s\n%s", argv[i], restore_usage), 2;
        else
            path = argv[i];
    }
    if (!path || (!deleted && !at) || (deleted && at))
        return cli_error("restore: give PATH with --at V, or --deleted PATH\n%s", restore_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    kith_ws_result res;
    int rc =
        deleted ? kith_ws_restore_deleted(ws, path, &res) : kith_ws_restore(ws, path, at, &res);
    if (rc)
        return ws_cli_fail(ws);
    if (o.json)
        printf("{\"change\": \"%s\"}\n", res.change);
    else if (res.change[0])
        printf("restored %s as change %.12s\n", path, res.change);
    else
        printf("%s already has that content\n", path);
    kith_ws_close(ws);
    return 0;
}

/* ---- check ------------------------------------------------------------------------------- */

static const char check_usage[] =
    "usage: kith check [-C DIR]\n"
    "\n"
    "Verifies the store: SQLite's integrity check, every document's history\n"
    "loads, and every recorded version reads back. Exit 0 when all is well.\n";

int cmd_check(int argc, char **argv)
{
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, check_usage);
    if (r)
        return r == -1 ? 0 : 2;
    if (argc > 1)
        return cli_error("check: unexpected argument %s\n%s", argv[1], check_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    if (kith_ws_check(ws))
        return ws_cli_fail(ws);
    printf("store ok\n");
    kith_ws_close(ws);
    return 0;
}
