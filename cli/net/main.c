/*
 * kith-net: the network verbs of kith (cli/net/net.h). Run as `kith VERB`,
 * which executes this program beside it with the same arguments; it can
 * also be run directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/net/net.h"

struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static const struct verb verbs[] = {
    {"hub", cmd_hub},       {"remote", cmd_remote}, {"sync", cmd_sync},
    {"invite", cmd_invite}, {"join", cmd_join},     {"members", cmd_members},
    {"remove", cmd_remove}, {"bundle", cmd_bundle}, {"daemon", cmd_daemon},
    {"serve", cmd_serve},
};

int main(int argc, char **argv)
{
    while (argc >= 3 && !strcmp(argv[1], "-C")) {
        if (chdir(argv[2]))
            return cli_error("cannot change to %s: %s", argv[2], strerror(errno)), 2;
        argc -= 2;
        argv += 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: kith-net <command> [options] (run through kith)\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[1], verbs[i].name))
            return verbs[i].fn(argc - 1, argv + 1);
    cli_error("'%s' is not a kith network command; see 'kith --help'", argv[1]);
    return 2;
}
