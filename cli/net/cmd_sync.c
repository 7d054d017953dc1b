/*
 * kith sync: records the folder's edits, then one exchange with every hub
 * and with every LAN peer that answers within a short window (the daemons
 * of the workspace's other members on this network; PROTOCOL.md 13.5):
 * push what each lacks, pull what this device lacks, and say what moved.
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
    "usage: kith sync [--timeout SECONDS] [--no-lan] [--lan-port PORT] [--json]\n\n"
    "Records the folder's edits, then syncs once with every remote: pushes the\n"
    "changes a hub lacks (sealed and signed), pulls the ones this device lacks\n"
    "and writes them into the files. Then the same with every LAN peer (another\n"
    "member's 'kith daemon' on this network) that answers within 1.5 s: it\n"
    "announces itself, the daemons answer at once, and each one found is synced\n"
    "once (docs/PROTOCOL.md 13.5). Reports what moved, per hub and per peer.\n\n"
    "  --no-lan       hubs only\n"
    "  --lan-port N   UDP port of LAN discovery beacons (default 47471)\n";

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
    int timeout = 15, lan = 1, lan_port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--no-lan")) {
            lan = 0;
        } else if (!strcmp(argv[i], "--lan-port") && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 1 || p > 65535)
                return cli_error("sync: --lan-port wants 1..65535, not '%s'", argv[i]), 2;
            lan_port = (int)p;
        } else
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
    char hub_err[512] = "";
    if (rc)
        snprintf(hub_err, sizeof hub_err, "%s", kith_replica_errmsg(r));
    /* Then the LAN: the members' daemons that answer within the window. */
    kith_replica_lan_result *lr = NULL;
    size_t nl = 0, lan_failed = 0;
    kith_replica_report lrep = {0};
    int lrc = KITH_OK;
    char lan_err[512] = "";
    if (lan) {
        kith_lan_opts lo = {.size = sizeof lo, .port = lan_port};
        lrc = kith_replica_lan_sync(r, &lo, 1500, timeout * 1000, &lr, &nl, &lrep);
        if (lrc)
            snprintf(lan_err, sizeof lan_err, "LAN: %s", kith_replica_errmsg(r));
        for (size_t i = 0; i < nl; i++)
            lan_failed += !lr[i].ok;
    }
    if (o.json) {
        json_t *peers = json_array();
        for (size_t i = 0; i < nl; i++) {
            char hex[65];
            for (int b = 0; b < 32; b++)
                snprintf(hex + 2 * b, 3, "%02x", lr[i].device[b]);
            json_array_append_new(
                peers, json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:s?}", "device", hex, "address",
                                 lr[i].address, "pushed", (json_int_t)lr[i].pushed, "pulled",
                                 (json_int_t)lr[i].pulled, "files", (json_int_t)lr[i].files, "ok",
                                 lr[i].ok, "error", lr[i].ok ? NULL : lr[i].error));
        }
        json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?, s:o, s:s?}", "pushed",
                              (json_int_t)rep.pushed, "pulled", (json_int_t)rep.pulled, "files",
                              (json_int_t)rep.files, "remotes_ok", (json_int_t)rep.remotes_ok,
                              "remotes_failed", (json_int_t)rep.remotes_failed, "bytes_sent",
                              (json_int_t)rep.bytes_sent, "bytes_received",
                              (json_int_t)rep.bytes_received, "error", rc ? hub_err : NULL, "lan",
                              peers, "lan_error", lrc ? lan_err : NULL);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        if (rep.remotes_ok || rep.remotes_failed)
            printf("pushed %zu change%s, pulled %zu change%s, %zu file%s updated\n", rep.pushed,
                   plural(rep.pushed), rep.pulled, plural(rep.pulled), rep.files,
                   plural(rep.files));
        for (size_t i = 0; i < nl; i++) {
            char hex[17];
            for (int b = 0; b < 8; b++)
                snprintf(hex + 2 * b, 3, "%02x", lr[i].device[b]);
            if (lr[i].ok)
                printf("LAN peer %s (%s): pushed %zu change%s, pulled %zu change%s, %zu file%s "
                       "updated\n",
                       hex, lr[i].address, lr[i].pushed, plural(lr[i].pushed), lr[i].pulled,
                       plural(lr[i].pulled), lr[i].files, plural(lr[i].files));
            else
                printf("LAN peer %s (%s): failed after pushing %zu and pulling %zu: %s\n", hex,
                       lr[i].address, lr[i].pushed, lr[i].pulled, lr[i].error);
        }
        if (!rc && !rep.remotes_ok && !rep.remotes_failed && !nl)
            printf(lan ? "no remote to sync with (kith remote add URL) and no LAN peer answered\n"
                       : "no remote to sync with (kith remote add URL)\n");
    }
    if (rc)
        cli_error("sync: %s", hub_err);
    if (lrc) /* no LAN here (no interface, port taken): said, not a failure of the sync */
        cli_error("sync: %s", lan_err);
    if (lan_failed)
        cli_error("sync: %zu LAN peer%s did not finish", lan_failed, plural(lan_failed));
    kith_free(lr);
    net_close(r, ws);
    return rc || lan_failed ? 1 : 0;
}
