/*
 * kith bundle create FILE [--for SUMMARY] | apply FILE | summary: sync with
 * no network, through a file (docs/PROTOCOL.md, "Bundles").
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/net/net.h"
#include "cli/ws_cli.h"
#include "kith/kith.h"
#include "kith/replica.h"

static const char usage[] =
    "usage: kith bundle create FILE [--for SUMMARY]\n"
    "       kith bundle apply FILE\n"
    "       kith bundle summary\n\n"
    "create writes the changes a device lacks (all of them without --for; with\n"
    "--for, those the device whose `kith bundle summary` printed SUMMARY lacks)\n"
    "into FILE, encrypted and signed; apply merges such a file.\n";

int cmd_bundle(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    if (argc < 2)
        return cli_error("bundle: create, apply or summary?\n%s", usage), 2;
    const char *sub = argv[1], *file = NULL, *summary = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--for") && i + 1 < argc)
            summary = argv[++i];
        else if (!file)
            file = argv[i];
        else
            return cli_error("bundle: unexpected argument '%s'\n%s", argv[i], usage), 2;
    }
    int is_summary = !strcmp(sub, "summary");
    if (!is_summary && strcmp(sub, "create") && strcmp(sub, "apply"))
        return cli_error("bundle: unknown '%s'\n%s", sub, usage), 2;
    if (!is_summary && !file)
        return cli_error("bundle %s: which file?\n%s", sub, usage), 2;
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    if (summary && kith_replica_summary_parse(summary, &vv, &n) != KITH_OK)
        return cli_error("bundle: '%.40s...' is not a summary from kith bundle summary", summary),
               2;
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r) {
        kith_free(vv);
        return 1;
    }
    int rc;
    if (is_summary) {
        char *s = NULL;
        rc = kith_replica_summary(r, &s);
        if (!rc)
            printf(o.json ? "{\"summary\": \"%s\"}\n" : "%s\n", s);
        kith_free(s);
    } else if (!strcmp(sub, "create")) {
        kith_ws_result res;
        rc = kith_ws_scan(ws, NULL, NULL, &res) ? KITH_EIO : KITH_OK;
        if (rc)
            cli_error("%s", kith_ws_errmsg(ws));
        else
            rc = kith_replica_bundle_create(r, file, vv, n);
        if (!rc)
            printf(o.json ? "{\"file\": \"%s\", \"what\": \"%s\"}\n" : "wrote %s: %s\n", file,
                   kith_replica_errmsg(r));
    } else {
        kith_replica_report rep;
        kith_ws_result res;
        rc = kith_ws_scan(ws, NULL, NULL, &res) ? KITH_EIO : KITH_OK;
        if (!rc)
            rc = kith_replica_bundle_apply(r, file, &rep);
        if (!rc || rep.pulled)
            printf(o.json ? "{\"pulled\": %zu, \"files\": %zu}\n"
                          : "applied %zu change(s), %zu file(s) updated\n",
                   rep.pulled, rep.files);
    }
    if (rc)
        cli_error("bundle %s: %s", sub, kith_replica_errmsg(r));
    kith_free(vv);
    net_close(r, ws);
    return rc ? 1 : 0;
}
