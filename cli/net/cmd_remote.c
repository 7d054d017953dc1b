/*
 * kith remote [add URL [--fingerprint SHA256:<hex>]]: the hubs this
 * workspace syncs through. The first add from the device that made the
 * workspace registers it on the hub (kith_replica_remote_add).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/net/net.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"
#include "kith/replica.h"

static const char usage[] =
    "usage: kith remote [--json]\n"
    "       kith remote add URL [--fingerprint SHA256:<hex>]\n\n"
    "Lists the hubs this workspace syncs through, with the last sync and error,\n"
    "or adds one (wss://HOST:PORT). The device that made the workspace registers\n"
    "it on its first hub; then it pushes everything and a snapshot there.\n"
    "--fingerprint pins the hub's certificate (kith hub prints it); without it\n"
    "the certificate must be valid for the system's CAs.\n";

kith_replica *net_open(kith_ws **ws)
{
    kith_replica *r = NULL;
    *ws = ws_cli_open();
    if (!*ws)
        return NULL;
    if (kith_replica_open(*ws, &r) != KITH_OK) {
        cli_error("%s", kith_replica_errmsg(r));
        kith_replica_close(r);
        kith_ws_close(*ws);
        *ws = NULL;
        return NULL;
    }
    return r;
}

void net_close(kith_replica *r, kith_ws *ws)
{
    kith_replica_close(r);
    kith_ws_close(ws);
}

struct list_ctx {
    ws_cli_opts *o;
    json_t *arr;
};

static int list_one(const kith_replica_remote *rm, void *ctx)
{
    struct list_ctx *c = ctx;
    if (c->arr) {
        json_t *j =
            json_pack("{s:s, s:s?, s:I, s:s?}", "url", rm->url, "fingerprint", rm->fingerprint,
                      "last_sync_ms", (json_int_t)rm->last_sync_ms, "last_error", rm->last_error);
        json_array_append_new(c->arr, j);
        return 0;
    }
    char at[64] = "never";
    if (rm->last_sync_ms)
        cli_time(at, sizeof at, rm->last_sync_ms, 0);
    printf("%s  last sync %s%s%s\n", rm->url, at, rm->last_error ? "; error: " : "",
           rm->last_error ? rm->last_error : "");
    return 0;
}

int cmd_remote(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    const char *fp = NULL, *url = NULL;
    int add = argc > 1 && !strcmp(argv[1], "add");
    for (int i = add ? 2 : 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fingerprint") && i + 1 < argc)
            fp = argv[++i];
        else if (add && !url && argv[i][0] != '-')
            url = argv[i];
        else
            return cli_error("remote: unexpected argument '%s'\n%s", argv[i], usage), 2;
    }
    if (add && !url)
        return cli_error("remote add: which hub? (wss://HOST:PORT)\n%s", usage), 2;
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r)
        return 1;
    int rc;
    if (add) {
        rc = kith_replica_remote_add(r, url, fp);
        if (rc)
            cli_error("remote add: %s", kith_replica_errmsg(r));
        else if (o.json)
            printf("{\"added\": \"%s\"}\n", url);
        else
            printf("added %s; this workspace syncs through it now\n", url);
    } else {
        struct list_ctx c = {&o, o.json ? json_array() : NULL};
        rc = kith_replica_remotes(r, list_one, &c);
        if (c.arr) {
            json_dumpf(c.arr, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(c.arr);
        }
        if (rc)
            cli_error("%s", kith_replica_errmsg(r));
    }
    net_close(r, ws);
    return rc ? 1 : 0;
}
