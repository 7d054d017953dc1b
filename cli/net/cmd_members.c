/*
 * Membership verbs: kith invite, kith join, kith members, kith remove.
 * Invites and removals are signed operations the hub checks and keeps
 * (docs/PROTOCOL.md, sections 3 and 4); joining makes a full replica.
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
#include "kith/sync.h"

static const char invite_usage[] =
    "usage: kith invite [--role writer|reader|admin] [--expires 7d] [--json]\n\n"
    "Prints a join link (kith://join/...) for one new device. Hand it over like a\n"
    "password: it carries the capability to join and the key that opens the\n"
    "workspace's key. It works once, and not after it expires (s, m, h, d).\n";

static const char join_usage[] =
    "usage: kith join LINK [DIR] [--name NAME] [--json]\n\n"
    "Makes DIR (default: the current folder) a full replica of the workspace the\n"
    "link invites to: every file and all history, from the hub in the link.\n";

static const char members_usage[] = "usage: kith members [--json]\n\n"
                                    "Lists the workspace's members as last seen on the hub.\n";

static const char remove_usage[] =
    "usage: kith remove NAME|ID\n\n"
    "Removes a member (a user name, or 4+ hex digits of a device id): the hub\n"
    "refuses that device from then on and new changes use a new key that only\n"
    "the remaining members receive. It syncs first: the removal names the last\n"
    "of the device's changes accepted, and every member refuses later ones.\n";

static int64_t parse_duration(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (v <= 0 || end == s)
        return -1;
    switch (*end) {
    case 's':
        return v * 1000;
    case 'm':
        return v * 60000;
    case 'h':
        return v * 3600000;
    case 'd':
    case 0:
        return v * 86400000;
    }
    return -1;
}

int cmd_invite(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, invite_usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    int role = KITH_ROLE_WRITER;
    int64_t expires = 7LL * 86400000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--role") && i + 1 < argc) {
            role = kith_role_parse(argv[++i]);
            if (role == KITH_ROLE_NONE)
                return cli_error("invite: unknown role '%s'", argv[i]), 2;
        } else if (!strcmp(argv[i], "--expires") && i + 1 < argc) {
            expires = parse_duration(argv[++i]);
            if (expires <= 0)
                return cli_error("invite: '%s' is not a duration (7d, 12h, 30m)", argv[i]), 2;
        } else {
            return cli_error("invite: unexpected argument '%s'\n%s", argv[i], invite_usage), 2;
        }
    }
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r)
        return 1;
    char *link = NULL;
    int rc = kith_replica_invite(r, role, expires, &link);
    if (rc)
        cli_error("invite: %s", kith_replica_errmsg(r));
    else if (o.json)
        printf("{\"link\": \"%s\", \"role\": \"%s\"}\n", link, kith_role_name(role));
    else
        printf("%s\n", link);
    kith_free(link);
    net_close(r, ws);
    return rc ? 1 : 0;
}

int cmd_join(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, join_usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    const char *link = NULL, *dir = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--name") && i + 1 < argc)
            name = argv[++i];
        else if (!link && argv[i][0] != '-')
            link = argv[i];
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            return cli_error("join: unexpected argument '%s'\n%s", argv[i], join_usage), 2;
    }
    if (!link)
        return cli_error("join: which link?\n%s", join_usage), 2;
    kith_ws *ws = NULL;
    kith_replica_report rep;
    int rc = kith_replica_join(link, dir ? dir : ".", name, &ws, &rep);
    if (rc) {
        cli_error("join: %s", kith_replica_join_errmsg());
        return 1;
    }
    if (o.json)
        printf("{\"root\": \"%s\", \"workspace\": \"%s\", \"pulled\": %zu, \"files\": %zu, "
               "\"bytes_received\": %zu}\n",
               kith_ws_root(ws), kith_ws_id(ws), rep.pulled, rep.files, rep.bytes_received);
    else
        printf("joined workspace %s in %s: %zu change%s, %zu file%s\n", kith_ws_id(ws),
               kith_ws_root(ws), rep.pulled, rep.pulled == 1 ? "" : "s", rep.files,
               rep.files == 1 ? "" : "s");
    kith_ws_close(ws);
    return 0;
}

static int member_one(const kith_replica_member *m, void *ctx)
{
    json_t *arr = ctx;
    if (arr) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "name", m->name, "device",
                                             m->device, "role", kith_role_name(m->role) ?: "?",
                                             "removed", m->removed));
        return 0;
    }
    printf("%-8s %.16s  %s%s\n", kith_role_name(m->role) ?: "?", m->device,
           m->name[0] ? m->name : "(no changes yet)", m->removed ? "  [removed]" : "");
    return 0;
}

int cmd_members(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, members_usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    if (argc > 1)
        return cli_error("members: unexpected argument '%s'\n%s", argv[1], members_usage), 2;
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r)
        return 1;
    json_t *arr = o.json ? json_array() : NULL;
    int rc = kith_replica_members(r, member_one, arr);
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
    if (rc)
        cli_error("%s", kith_replica_errmsg(r));
    net_close(r, ws);
    return rc ? 1 : 0;
}

int cmd_remove(int argc, char **argv)
{
    ws_cli_opts o;
    int rr = ws_cli_common(&argc, argv, &o, remove_usage);
    if (rr)
        return rr == -1 ? 0 : 2;
    if (argc != 2)
        return cli_error("remove: name one member\n%s", remove_usage), 2;
    kith_ws *ws = NULL;
    kith_replica *r = net_open(&ws);
    if (!r)
        return 1;
    int rc = kith_replica_remove(r, argv[1]);
    if (rc)
        cli_error("remove: %s", kith_replica_errmsg(r));
    else
        printf("removed %s; new changes use a new key\n", argv[1]);
    net_close(r, ws);
    return rc ? 1 : 0;
}
