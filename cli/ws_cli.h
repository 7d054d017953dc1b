/* What the workspace verbs of the kith command share (cli/cmd_ws.c). */
#ifndef KITH_CLI_WS_CLI_H
#define KITH_CLI_WS_CLI_H

#include <jansson.h>

#include "kith/ws.h"

typedef struct ws_cli_opts {
    int json;
    int color;
    json_t *acc; /* --json: the array being built */
} ws_cli_opts;

int ws_cli_common(int *argc, char **argv, ws_cli_opts *o, const char *usage);
kith_ws *ws_cli_open(void);
/* Prints the workspace's error, closes it, returns 1. */
int ws_cli_fail(kith_ws *ws);
const char *ws_cli_what(enum kith_ws_what w);

#endif
