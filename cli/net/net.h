/*
 * The verbs of kith-net, the network half of the kith command: everything
 * that needs TLS and WebSockets (the hub, sync, invitations, the daemon).
 * `kith VERB` runs `kith-net VERB` for these. Each lives in cli/net/cmd_*.c.
 */
#ifndef KITH_CLI_NET_H
#define KITH_CLI_NET_H

int cmd_hub(int argc, char **argv);
int cmd_remote(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_invite(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_members(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_bundle(int argc, char **argv);

/* The workspace and its replica (cmd_remote.c); NULL after printing why. */
struct kith_ws;
struct kith_replica;
struct kith_replica *net_open(struct kith_ws **ws);
void net_close(struct kith_replica *r, struct kith_ws *ws);
int cmd_daemon(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
