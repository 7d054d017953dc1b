/*
 * Change payload version 1 (change1.c; docs/FORMAT.md, "Change payload"):
 * version 0 packed against what the receiver holds, for the wire.
 */
#ifndef KITH_WS_CHANGE1_H
#define KITH_WS_CHANGE1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kith/ws.h"

/* True when @buf starts like a version 1 payload. */
bool ws_change_is_v1(const uint8_t *buf, size_t len);

/* Packs the version 0 payload @v0 of change @seq of @key (a change this
 * replica holds, as are its author's earlier ones). Caller frees *out. */
int ws_change_pack(kith_ws *ws, const uint8_t key[32], uint64_t seq, const uint8_t *v0, size_t len,
                   uint8_t **out, size_t *out_len);

/* Unpacks version 1 payload @buf of change @seq of @key into version 0; the
 * replica must hold the author's changes 1..seq-1 (KITH_EMISSING if not).
 * Caller frees *out. */
int ws_change_unpack(kith_ws *ws, const uint8_t key[32], uint64_t seq, const uint8_t *buf,
                     size_t len, uint8_t **out, size_t *out_len);

#endif
