/*
 * Recorded versions in compact form. A document's CRDT version is a set of
 * operation ids "agent:seq", and a workspace's agents are its devices (the
 * first 16 bytes of the device key, in hex): 32 characters each. The store
 * writes the author's small row id instead ("3:1207"), which keeps the
 * per-change history a few bytes long; exports carry the full form.
 */
#include <stdio.h>
#include <string.h>

#include "ws/ws_int.h"

static int authors_load(kith_ws *ws)
{
    if (ws->nauth_cache)
        return KITH_OK;
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "SELECT id, lower(substr(hex(key), 1, 32)) FROM authors");
    if (rc)
        return rc;
    int src;
    size_t cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (kith_grow((void **)&ws->auth_cache, &cap, ws->nauth_cache + 1,
                      sizeof *ws->auth_cache)) {
            rc = KITH_ENOMEM;
            break;
        }
        ws->auth_cache[ws->nauth_cache].id = sqlite3_column_int64(st, 0);
        snprintf(ws->auth_cache[ws->nauth_cache].agent, 33, "%s",
                 (const char *)sqlite3_column_text(st, 1));
        ws->nauth_cache++;
    }
    if (!rc && src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "reading authors");
    sqlite3_finalize(st);
    if (rc)
        ws->nauth_cache = 0;
    return rc;
}

void ws_authors_forget(kith_ws *ws)
{
    ws->nauth_cache = 0;
}

/* Rewrites a version with each id's agent mapped by @map; caller frees. */
static int rewrite(kith_ws *ws, const char *in, bool to_db, char **out)
{
    size_t cap = strlen(in) * 4 + 64, n = 0;
    char *buf = kith_malloc(cap);
    if (!buf)
        return KITH_ENOMEM;
    int rc = authors_load(ws);
    for (const char *p = in; !rc && *p;) {
        const char *colon = strchr(p, ':');
        if (!colon) {
            rc = ws_error(ws, KITH_ECORRUPT, "malformed recorded version '%s'", in);
            break;
        }
        size_t alen = (size_t)(colon - p);
        const char *rest = colon + 1;
        size_t slen = strcspn(rest, ",");
        const char *name = NULL;
        char idbuf[32];
        for (size_t i = 0; i < ws->nauth_cache && !name; i++) {
            if (to_db && alen == 32 && !memcmp(ws->auth_cache[i].agent, p, 32)) {
                snprintf(idbuf, sizeof idbuf, "%lld", (long long)ws->auth_cache[i].id);
                name = idbuf;
            } else if (!to_db) {
                snprintf(idbuf, sizeof idbuf, "%lld", (long long)ws->auth_cache[i].id);
                if (strlen(idbuf) == alen && !memcmp(idbuf, p, alen))
                    name = ws->auth_cache[i].agent;
            }
        }
        if (!name) {
            rc = ws_error(ws, KITH_ECORRUPT, "recorded version '%s' names an unknown device", in);
            break;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s%s:%.*s", n ? "," : "", name, (int)slen, rest);
        p = rest + slen + (rest[slen] == ',');
    }
    if (rc) {
        kith_free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    return KITH_OK;
}

int ws_version_to_db(kith_ws *ws, const char *full, char **out)
{
    return rewrite(ws, full, true, out);
}

int ws_version_from_db(kith_ws *ws, const char *db, char **out)
{
    return rewrite(ws, db ? db : "", false, out);
}

/* Parses a stored version of @doc into ids; caller frees *ids. */
int ws_version_ids(kith_ws *ws, kith_doc *doc, const char *db, kith_id **ids, size_t *n)
{
    char *full = NULL;
    int rc = ws_version_from_db(ws, db, &full);
    if (rc)
        return rc;
    rc = kith_doc_version_parse(doc, full, ids, n);
    if (rc)
        rc = ws_error(ws, KITH_ECORRUPT, "recorded version '%s' is not in the history (%s)", full,
                      kith_doc_errmsg(doc));
    kith_free(full);
    return rc;
}
