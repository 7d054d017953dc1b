/*
 * kith init, status and ls. Exit codes of the workspace verbs: 0 done,
 * 1 error, 2 usage, 3 recorded with warnings.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"

/* ---- init -------------------------------------------------------------------------- */

static const char init_usage[] =
    "usage: kith init [DIR] [--name NAME]\n"
    "\n"
    "Makes DIR (default: the current folder) a kith workspace: a .kith/ folder\n"
    "with the store, this device's identity (Ed25519), the workspace id and key\n"
    "and a config file. NAME is how your changes are signed in log and blame\n"
    "(default: your login name). Refuses to run inside an existing workspace.\n";

int cmd_init(int argc, char **argv)
{
    ws_cli_opts o;
    const char *dir = NULL, *name = NULL;
    int r = ws_cli_common(&argc, argv, &o, init_usage);
    if (r)
        return r == -1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc)
            name = argv[++i];
        else if (argv[i][0] == '-')
            return cli_error("init: unknown option %s\n%s", argv[i], init_usage), 2;
        else if (!dir)
            dir = argv[i];
        else
            return cli_error("init: one folder at most\n%s", init_usage), 2;
    }
    kith_ws *ws = NULL;
    if (kith_ws_init(dir, name, &ws))
        return ws_cli_fail(ws);
    if (o.json) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s}", "root", kith_ws_root(ws), "workspace", kith_ws_id(ws),
                      "device", kith_ws_device(ws), "user", kith_ws_user(ws));
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        printf("Initialised kith workspace %s in %s\n", kith_ws_id(ws), kith_ws_root(ws));
        printf("You are %s on device %.16s.\n", kith_ws_user(ws), kith_ws_device(ws));
    }
    kith_ws_close(ws);
    return 0;
}

/* ---- status ------------------------------------------------------------------------ */

static const char status_usage[] =
    "usage: kith status [--json] [-C DIR]\n"
    "\n"
    "Scans the workspace folder and records every change since the last scan as\n"
    "one change of this device, then prints what changed. Files kith cannot take\n"
    "as they are (not UTF-8, unreadable, vanished) are reported as warnings and\n"
    "left as recorded. Exit status: 0 recorded (or nothing to do), 3 recorded\n"
    "with warnings, 1 error (nothing recorded).\n";

typedef struct status_ctx {
    ws_cli_opts *o;
    json_t *files, *warnings;
    FILE *out; /* the file lines, printed after the header */
} status_ctx;

static void on_file(const kith_ws_file *f, void *vctx)
{
    status_ctx *c = vctx;
    if (c->o->json) {
        if (f->what == KITH_WS_WARNING) {
            json_array_append_new(c->warnings,
                                  json_pack("{s:s, s:s}", "path", f->path, "message", f->message));
            return;
        }
        json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:b}", "what", ws_cli_what(f->what), "path",
                              f->path, "inserted", (json_int_t)f->inserted, "deleted",
                              (json_int_t)f->deleted, "binary", f->binary);
        if (f->old_path)
            json_object_set_new(j, "old_path", json_string(f->old_path));
        json_array_append_new(c->files, j);
        return;
    }
    if (f->what == KITH_WS_WARNING) {
        fprintf(stderr, "%swarning:%s %s: %s\n", c->o->color ? "\033[33m" : "",
                c->o->color ? "\033[0m" : "", f->path, f->message);
        return;
    }
    const char *col = !c->o->color                 ? ""
                      : f->what == KITH_WS_ADDED   ? "\033[32m"
                      : f->what == KITH_WS_DELETED ? "\033[31m"
                                                   : "\033[36m";
    char name[8192];
    if (f->old_path)
        snprintf(name, sizeof name, "%s -> %s", f->old_path, f->path);
    else
        snprintf(name, sizeof name, "%s", f->path);
    fprintf(c->out, "  %s%-9s%s %s", col, ws_cli_what(f->what), c->o->color ? "\033[0m" : "", name);
    if (f->binary)
        fprintf(c->out, "  (binary)");
    else if (f->inserted || f->deleted)
        fprintf(c->out, "  (+%llu -%llu)", (unsigned long long)f->inserted,
                (unsigned long long)f->deleted);
    fputc('\n', c->out);
}

/* What the last sync left in .kith/sync-state.json (written by kith-net's
 * sync and daemon; docs/PROTOCOL.md), or NULL when this device never
 * synced. */
static json_t *sync_state(kith_ws *ws)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.kith/sync-state.json", kith_ws_root(ws));
    return json_load_file(path, 0, NULL);
}

static void print_sync(json_t *st, int color)
{
    json_t *remotes = json_object_get(st, "remotes");
    int online = json_is_true(json_object_get(st, "online"));
    long long updated = (long long)json_integer_value(json_object_get(st, "updated_ms"));
    char when[64];
    cli_time(when, sizeof when, updated, 0);
    printf("sync: %s%s%s (as of %s)\n", color ? (online ? "\033[32m" : "\033[33m") : "",
           online ? "online" : "offline", color ? "\033[0m" : "", when);
    size_t i;
    json_t *rm;
    json_array_foreach(remotes, i, rm)
    {
        long long last = (long long)json_integer_value(json_object_get(rm, "last_sync_ms"));
        const char *err = json_string_value(json_object_get(rm, "last_error"));
        char at[64] = "never";
        if (last)
            cli_time(at, sizeof at, last, 0);
        printf("  %s  last sync %s, %lld change%s waiting to be pushed%s%s\n",
               json_string_value(json_object_get(rm, "url")), at,
               (long long)json_integer_value(json_object_get(rm, "pending")),
               json_integer_value(json_object_get(rm, "pending")) == 1 ? "" : "s",
               err ? "; last error: " : "", err ? err : "");
    }
    json_t *lan = json_object_get(st, "lan"), *p;
    json_array_foreach(lan, i, p)
    {
        long long last = (long long)json_integer_value(json_object_get(p, "last_sync_ms"));
        char at[64] = "never";
        if (last)
            cli_time(at, sizeof at, last, 0);
        const char *dev = json_string_value(json_object_get(p, "device"));
        printf("  LAN peer %.12s at %s, last sync %s (%lld pulled, %lld pushed)\n", dev ? dev : "?",
               json_string_value(json_object_get(p, "address")) ?: "?", at,
               (long long)json_integer_value(json_object_get(p, "pulled")),
               (long long)json_integer_value(json_object_get(p, "pushed")));
    }
}

int cmd_status(int argc, char **argv)
{
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, status_usage);
    if (r)
        return r == -1 ? 0 : 2;
    if (argc > 1)
        return cli_error("status: unexpected argument %s\n%s", argv[1], status_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    status_ctx c = {.o = &o, .files = json_array(), .warnings = json_array()};
    kith_ws_result res;
    /* Buffer the file lines: the header with the change id comes first. */
    char *buf = NULL;
    size_t blen = 0;
    c.out = o.json ? NULL : open_memstream(&buf, &blen);
    if (!o.json && !c.out)
        return kith_ws_close(ws), cli_error("out of memory");
    int rc = kith_ws_scan(ws, on_file, &c, &res);
    if (c.out)
        fclose(c.out);
    if (rc) {
        free(buf);
        json_decref(c.files);
        json_decref(c.warnings);
        return ws_cli_fail(ws);
    }
    if (o.json) {
        json_t *j = json_pack("{s:s, s:o, s:o}", "workspace", kith_ws_root(ws), "files", c.files,
                              "warnings", c.warnings);
        json_object_set_new(j, "change", res.change[0] ? json_string(res.change) : json_null());
        json_t *st = sync_state(ws);
        json_object_set_new(j, "sync", st ? st : json_null());
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        if (res.change[0])
            printf("recorded change %s%.12s%s (%zu file%s)\n", o.color ? "\033[33m" : "",
                   res.change, o.color ? "\033[0m" : "", res.files, res.files == 1 ? "" : "s");
        else
            printf("nothing changed since the last scan\n");
        fwrite(buf, 1, blen, stdout);
        json_t *st = sync_state(ws);
        if (st)
            print_sync(st, o.color);
        json_decref(st);
        json_decref(c.files);
        json_decref(c.warnings);
    }
    free(buf);
    kith_ws_close(ws);
    return res.warnings ? 3 : 0;
}

/* ---- ls -------------------------------------------------------------------------------- */

static const char ls_usage[] = "usage: kith ls [--json] [-C DIR]\n"
                               "\n"
                               "Lists the documents as recorded: path, size, last change, its\n"
                               "author and date.\n";

static int ls_entry(const kith_ws_entry *e, void *vctx)
{
    ws_cli_opts *o = vctx;
    char when[64];
    if (o->json) {
        cli_time(when, sizeof when, e->time_ms, 1);
        json_t *j = json_pack("{s:s, s:b, s:I, s:s, s:s, s:s}", "path", e->path, "binary",
                              e->binary, "size", (json_int_t)e->size, "change", e->change, "author",
                              e->author, "time", when);
        json_array_append_new(o->acc, j);
        return 0;
    }
    cli_time(when, sizeof when, e->time_ms, 0);
    printf("%s%.10s%s  %-16s %s  %9llu  %s%s\n", o->color ? "\033[33m" : "", e->change,
           o->color ? "\033[0m" : "", e->author, when, (unsigned long long)e->size, e->path,
           e->binary ? "  (binary)" : "");
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    ws_cli_opts o;
    int r = ws_cli_common(&argc, argv, &o, ls_usage);
    if (r)
        return r == -1 ? 0 : 2;
    if (argc > 1)
        return cli_error("ls: unexpected argument %s\n%s", argv[1], ls_usage), 2;
    kith_ws *ws = ws_cli_open();
    if (!ws)
        return 1;
    o.acc = o.json ? json_array() : NULL;
    if (kith_ws_ls(ws, ls_entry, &o)) {
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
