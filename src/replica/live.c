/*
 * Live mode (kith daemon): one connection per remote on the caller's libuv
 * loop. After the catch-up the hub relays new blobs as they are stored and
 * they are applied at once (conn.c's callbacks); new local changes are
 * pushed when kith_replica_local_changed says so. A lost connection is
 * retried after a delay that doubles from 500 ms to 60 s, with jitter (so a
 * hub that restarts is not met by every device at the same instant), and at
 * once when the network changes.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "replica/lan.h"
#include "replica/replica_int.h"
#include "util/util_int.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 60000

static void on_timer(uv_timer_t *t)
{
    struct rconn *k = t->data;
    if (k->c && !k->closed)
        return;
    /* The old client is freed here, outside its own callbacks. */
    kith_sync_client_free(k->c);
    k->c = NULL;
    kith_vv_free(k->hub_known);
    k->hub_known = NULL;
    if (rp_conn_start(k) != KITH_OK) {
        kith_log(KITH_LOG_WARN, "replica: %s", k->r->err);
        rp_live_closed(k);
    }
}

/* Online: at least one live connection is up. */
static int any_online(const kith_replica *r)
{
    int online = 0;
    for (const struct rconn *o = r->conns; o; o = o->next)
        online |= o->ready && !o->closed;
    return online;
}

void rp_live_closed(struct rconn *k)
{
    kith_replica *r = k->r;
    if (!r->attached || !k->timer)
        return;
    rp_remote_result(r, k->url, k->errmsg[0] ? k->errmsg : "connection closed", NULL);
    kith_log(KITH_LOG_INFO, "sync: %s: %s; retrying", k->url,
             k->errmsg[0] ? k->errmsg : "connection closed");
    rp_state_write(r, any_online(r));
    k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (k->backoff_ms > BACKOFF_MAX_MS)
        k->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay =
        (uint64_t)k->backoff_ms / 2 + randombytes_uniform((uint32_t)k->backoff_ms / 2 + 1);
    uv_timer_start(k->timer, on_timer, delay, 0);
}

int kith_replica_attach(kith_replica *r, void *uv_loop)
{
    if (r->attached)
        return rp_fail(r, KITH_EINVAL, "already attached");
    if (r->loop && !r->uv_loop) {
        kith_sync_loop_free(r->loop); /* a one-shot loop from an earlier call */
        r->loop = NULL;
    }
    r->uv_loop = uv_loop;
    kith_vv_free(r->held);
    r->held = NULL;
    int rc = rp_ws_vv(r, &r->held);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT url, fingerprint FROM remotes ORDER BY added_ms", -1, &st,
                           NULL) != SQLITE_OK)
        return rp_fail(r, KITH_EIO, "sync state: %s", sqlite3_errmsg(r->db));
    r->attached = 1;
    while (rc == KITH_OK && sqlite3_step(st) == SQLITE_ROW) {
        struct rconn *k = NULL;
        const char *fp = (const char *)sqlite3_column_text(st, 1);
        rc = rp_conn_new(r, (const char *)sqlite3_column_text(st, 0), fp, &k);
        if (rc)
            break;
        k->live = 1;
        k->timer = calloc(1, sizeof(uv_timer_t));
        if (!k->timer) {
            rp_conn_free(k);
            rc = rp_fail(r, KITH_ENOMEM, "out of memory");
            break;
        }
        uv_timer_init(uv_loop, k->timer);
        ((uv_timer_t *)k->timer)->data = k;
        k->next = r->conns;
        r->conns = k;
        if (rp_conn_start(k) != KITH_OK)
            uv_timer_start(k->timer, on_timer, BACKOFF_MIN_MS, 0);
    }
    sqlite3_finalize(st);
    if (rc)
        kith_replica_detach(r);
    return rc;
}

void kith_replica_local_changed(kith_replica *r)
{
    if (!r->attached)
        return;
    kith_vv *now = NULL;
    if (rp_ws_vv(r, &now) == KITH_OK) {
        kith_vv_free(r->held);
        r->held = now;
    }
    for (struct rconn *k = r->conns; k; k = k->next)
        if (k->ready && !k->closed && k->got_hub_vv && rp_push_missing(k) != KITH_OK)
            kith_log(KITH_LOG_WARN, "replica: %s", r->err);
    rp_lan_changed(r);
    /* Offline, the state file says so: `kith status` shows it. */
    rp_state_write(r, any_online(r));
}

void kith_replica_network_changed(kith_replica *r)
{
    if (!r->attached)
        return;
    for (struct rconn *k = r->conns; k; k = k->next)
        if (!k->c || k->closed) {
            k->backoff_ms = 0;
            uv_timer_start(k->timer, on_timer, 0, 0);
        }
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void kith_replica_detach(kith_replica *r)
{
    if (!r || !r->attached)
        return;
    rp_lan_close(r); /* its listener lives on the sync loop freed below */
    r->attached = 0;
    while (r->conns) {
        struct rconn *k = r->conns;
        r->conns = k->next;
        if (k->timer) {
            uv_timer_stop(k->timer);
            uv_close(k->timer, timer_closed);
            k->timer = NULL;
        }
        if (k->c && !k->closed)
            kith_sync_client_close(k->c);
        rp_conn_free(k);
    }
    rp_state_write(r, 0);
    /* libwebsockets lets go of its libuv handles as its context goes. */
    kith_sync_loop_free(r->loop);
    r->loop = NULL;
    r->uv_loop = NULL;
}
