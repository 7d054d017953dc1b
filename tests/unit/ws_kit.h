/*
 * ws_kit.h: what the workspace tests share: replicas in folders under the
 * test's temporary root, files put and read there, a scan, and sync change
 * by change as a hub relays it (kith_ws_changes_since, then
 * kith_ws_apply_change_from). Header-only like tt.h; a test defines root[]
 * (its temporary folder) before including it.
 */
#ifndef KITH_TEST_WS_KIT_H
#define KITH_TEST_WS_KIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/kith.h"

static inline void put(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static inline char *get(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static inline int scan(kith_ws *ws)
{
    kith_ws_result r;
    return kith_ws_scan(ws, NULL, NULL, &r);
}

static inline kith_ws *make(const char *name, const char *user)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    kith_ws *ws = NULL;
    if (kith_ws_init(dir, user, &ws)) {
        fprintf(stderr, "init: %s\n", kith_ws_errmsg(ws));
        kith_ws_close(ws);
        return NULL;
    }
    return ws;
}

static inline kith_ws *join(const char *name, const char *user, kith_ws *from)
{
    char dir[300];
    uint8_t *buf = NULL;
    size_t len = 0;
    kith_ws *ws = NULL;
    if (kith_ws_export(from, &buf, &len))
        return NULL;
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    int rc = kith_ws_join(dir, user, buf, len, &ws);
    kith_free(buf);
    if (rc) {
        kith_ws_close(ws);
        return NULL;
    }
    return ws;
}

typedef struct payloads {
    uint8_t **p;
    size_t *len;
    uint8_t (*author)[32];
    uint64_t *seq;
    size_t n;
} payloads;

static inline int collect(const uint8_t author[32], uint64_t seq, const uint8_t *payload,
                          size_t len, void *ctx)
{
    payloads *ps = ctx;
    ps->p = realloc(ps->p, (ps->n + 1) * sizeof *ps->p);
    ps->len = realloc(ps->len, (ps->n + 1) * sizeof *ps->len);
    ps->author = realloc(ps->author, (ps->n + 1) * sizeof *ps->author);
    ps->seq = realloc(ps->seq, (ps->n + 1) * sizeof *ps->seq);
    memcpy(ps->author[ps->n], author, 32);
    ps->seq[ps->n] = seq;
    ps->p[ps->n] = malloc(len);
    memcpy(ps->p[ps->n], payload, len);
    ps->len[ps->n++] = len;
    return 0;
}

static inline void payloads_free(payloads *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->p[i]);
    free(ps->p);
    free(ps->len);
    free(ps->author);
    free(ps->seq);
    memset(ps, 0, sizeof *ps);
}

/* Sends what @to lacks, change by change (as the hub relays them). */
static inline int sync_to(kith_ws *from, kith_ws *to)
{
    kith_ws_vv_entry *vv = NULL;
    size_t n = 0;
    payloads ps = {0};
    kith_ws_result r;
    int rc = kith_ws_vv(to, &vv, &n);
    if (!rc)
        rc = kith_ws_changes_since(from, vv, n, collect, &ps);
    for (size_t i = 0; !rc && i < ps.n; i++)
        rc = kith_ws_apply_change_from(to, ps.author[i], ps.seq[i], ps.p[i], ps.len[i], NULL, NULL,
                                       &r);
    payloads_free(&ps);
    kith_free(vv);
    return rc;
}

#endif
