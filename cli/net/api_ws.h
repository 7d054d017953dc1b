/*
 * The workspace endpoints of the local API (/kith/...; docs/API.md), hosted
 * by `kith daemon` and by `kith serve --workspace DIR` through the server's
 * route hook (kith_api_route). Handlers run on the loop's thread, which owns
 * the workspace handle; generations (ask, catch-up) go to the server's
 * worker threads with kith_api_generate.
 */
#ifndef KITH_CLI_NET_API_WS_H
#define KITH_CLI_NET_API_WS_H

#include "kith/api.h"
#include "kith/ws.h"

typedef struct api_ws api_ws;

/* Adds the /kith/ routes to @api for @ws (borrowed: both must outlive the
 * server). @changed (may be NULL) is called with @ud after a request
 * recorded a change (accept, reject), so that the daemon pushes it. 0, or
 * a kith error. The caller frees *out with api_ws_free after
 * kith_api_close (even after an error: routes made before it point to it). */
int api_ws_add(kith_api *api, kith_ws *ws, void (*changed)(void *ud), void *ud,
               api_ws **out /* OUT */);
/* Accepts NULL. */
void api_ws_free(api_ws *w);

#endif
