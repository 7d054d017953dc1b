/*
 * kith: the command-line tool. A table of verbs, git-style; each verb's code
 * lives in cmd_<verb>.c and uses only the public libkith API.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "kith/kith.h"

struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static int cmd_version(int argc, char **argv)
{
    printf("kith %s\n", kith_version());
    return 0;
}

/*
 * The network verbs live in kith-net, beside this binary (as git keeps
 * git-remote-https apart): TLS and WebSocket libraries take milliseconds to
 * load, which every local command would otherwise pay.
 */
static int cmd_net(int argc, char **argv)
{
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return cli_error("cannot find this program's folder: %s", strerror(errno)), 1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    snprintf(path, sizeof path, "%s/kith-net", self);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return cli_error("out of memory"), 1;
    args[0] = path;
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    execv(path, args);
    cli_error("cannot run %s: %s (it is installed beside kith)", path, strerror(errno));
    free(args);
    return 1;
}

static const struct verb verbs[] = {
    {"init", cmd_init, "make a folder a workspace"},
    {"status", cmd_status, "record the folder's changes and show them"},
    {"ls", cmd_ls, "list the documents"},
    {"log", cmd_log, "show the changes, newest first"},
    {"blame", cmd_blame, "show who last changed each line of a file"},
    {"cat", cmd_cat, "print a file as recorded, now or at a past version"},
    {"diff", cmd_diff, "show changes of a file between versions"},
    {"restore", cmd_restore, "bring back a file's old content, or a deleted file"},
    {"check", cmd_check, "verify the store's integrity and history"},
    {"suggest", cmd_suggest, "suggest a change (or comment) for a teammate to accept"},
    {"suggestions", cmd_suggestions, "list the open suggestions, where they are now"},
    {"comments", cmd_comments, "list the open comments (kith ai review)"},
    {"accept", cmd_accept, "apply a suggestion as a change"},
    {"reject", cmd_reject, "close a suggestion or comment without applying it"},
    {"bench", cmd_bench, "measure the CRDT on editing traces (kith bench trace FILE...)"},
    {"ai", cmd_ai, "on-device language model: run, draft, ask, review, catchup, bench ..."},
    {"hub", cmd_net, "serve end-to-end encrypted sync (kith hub --listen ADDR:PORT --data DIR)"},
    {"remote", cmd_net, "list the hubs, or add one (kith remote add URL)"},
    {"sync", cmd_net, "push and pull changes with every hub and LAN peer once"},
    {"invite", cmd_net, "print a one-time join link for a new device"},
    {"join", cmd_net, "make a folder a full replica from a join link"},
    {"members", cmd_net, "list the workspace's members"},
    {"remove", cmd_net, "remove a member and rotate the key"},
    {"bundle", cmd_net, "sync through a file: create, apply, summary"},
    {"daemon", cmd_net, "sync the folder in the background (kith daemon [--detach] | stop)"},
    {"serve", cmd_net, "serve the on-device model over a local HTTP API (kith serve --port N)"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: kith <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\nRun 'kith <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(argc - 1, argv + 1);
    /* git's -C DIR: run as if started in DIR. */
    while (argc >= 3 && !strcmp(argv[1], "-C")) {
        if (chdir(argv[2]))
            return cli_error("cannot change to %s: %s", argv[2], strerror(errno)), 2;
        argc -= 2;
        argv += 2;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].fn(argc - 1, argv + 1);
    cli_error("'%s' is not a kith command; see 'kith --help'", argv[1]);
    return 2;
}
