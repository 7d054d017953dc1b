/*
 * kith sync: records the folder's edits, then one exchange with every hub:
 * push what it lacks, pull what this device lacks, and say what moved.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/net/net.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"
#include "kith/replica.h"

static const char usage[] =
    "usage: kith sync [--timeout SECONDS] [--json]\n\n"
    "Records the folder's edits, then syncs once with every remote: pushes the\n"
    "changes a hub lacks (sealed and signed), pulls the ones this device lacks\n"
    "and writes them into the files. Reports what moved. LAN peers sync through\n"
    "a running 'kith daemon' (docs/PROTOCOL.md 13), not this command.\n";

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

int cmd_sync(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    int timeout = 15;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else
            return cli_error("sync: unexpected argument '%s'\n%s", argv[i], usage), 2;
    }
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r)
        return 1;
    /* The network carries recorded changes only: record the folder first. */
    kith_ws_result res;
    if (kith_ws_scan(ws, NULL, NULL, &res) != KITH_OK) {
        cli_error("%s", kith_ws_errmsg(ws));
        net_close(r, ws);
        return 1;
    }
    kith_replica_report rep;
    int rc = kith_replica_sync(r, timeout * 1000, &rep);
    if (o.json) {
        json_t *j = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "pushed", (json_int_t)rep.pushed, "pulled",
            (json_int_t)rep.pulled, "files", (json_int_t)rep.files, "remotes_ok",
            (json_int_t)rep.remotes_ok, "remotes_failed", (json_int_t)rep.remotes_failed,
            "bytes_sent", (json_int_t)rep.bytes_sent, "bytes_received",
            (json_int_t)rep.bytes_received, "error", rc ? kith_replica_errmsg(r) : NULL);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else if (rep.remotes_ok || rep.remotes_failed) {
        printf("pushed %zu change%s, pulled %zu change%s, %zu file%s updated\n", rep.pushed,
               plural(rep.pushed), rep.pulled, plural(rep.pulled), rep.files, plural(rep.files));
    } else if (!rc) {
        printf("no remote to sync with (kith remote add URL)\n");
    }
    if (rc)
        cli_error("sync: %s", kith_replica_errmsg(r));
    net_close(r, ws);
    return rc ? 1 : 0;
}
