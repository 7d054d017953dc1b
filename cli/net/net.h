/*
 * The verbs of kith-net, the network half of the kith command: everything
 * that needs TLS and WebSockets (the hub, sync, invitations, the daemon).
 * `kith VERB` runs `kith-net VERB` for these. Each lives in cli/net/cmd_*.c.
 */
#ifndef KITH_CLI_NET_H
#define KITH_CLI_NET_H

int cmd_hub(int argc, char **argv);
int cmd_daemon(int argc, char **argv);

#endif
