/*
 * One WebSocket peer's buffers, shared by the hub and the client:
 * reassembly of a message that libwebsockets hands over in fragments (capped
 * at the largest legal frame, so a peer cannot make us buffer more), and a
 * queue of outgoing frames written one per writable callback, as
 * libwebsockets requires.
 */
#include <libwebsockets.h>
#include <string.h>

#include "sync/sync_int.h"
#include "util/util_int.h"

_Static_assert(SYNC_PRE >= LWS_PRE, "frame headroom must cover LWS_PRE");

int sync_peer_rx(struct sync_peer *p, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi))
        p->rx_len = 0;
    if (!lws_frame_is_binary(wsi))
        return -2;
    if (len > SYNC_HDR + SYNC_FRAME_MAX - p->rx_len)
        return -1;
    if (kith_grow((void **)&p->rx, &p->rx_cap, p->rx_len + len, 1) != 0)
        return -1;
    if (len)
        memcpy(p->rx + p->rx_len, in, len);
    p->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    return 1;
}

void sync_peer_rx_done(struct sync_peer *p)
{
    p->rx_len = 0;
    /* Do not keep a large buffer around after one big message. */
    if (p->rx_cap > (1u << 20)) {
        kith_free(p->rx);
        p->rx = NULL;
        p->rx_cap = 0;
    }
}

int sync_peer_send(struct sync_peer *p, struct lws *wsi, struct sbuf *b)
{
    int rc = sync_frame_end(b);
    struct sync_txq *q = rc ? NULL : kith_malloc(sizeof *q);
    if (!q) {
        sb_release(b);
        return rc ? rc : KITH_ENOMEM;
    }
    q->next = NULL;
    q->buf = b->p;
    q->len = b->len - SYNC_PRE;
    sb_init(b);
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    p->tx_bytes += q->len;
    if (wsi)
        lws_callback_on_writable(wsi);
    return KITH_OK;
}

int sync_peer_write(struct sync_peer *p, struct lws *wsi)
{
    struct sync_txq *q = p->head;
    if (!q)
        return p->close_after ? -1 : 0;
    int n = lws_write(wsi, q->buf + SYNC_PRE, q->len, LWS_WRITE_BINARY);
    p->head = q->next;
    if (!p->head)
        p->tail = NULL;
    p->tx_bytes -= q->len;
    kith_free(q->buf);
    kith_free(q);
    if (n < 0)
        return -1;
    if (p->head)
        lws_callback_on_writable(wsi);
    else if (p->close_after)
        return -1;
    return 0;
}

void sync_peer_release(struct sync_peer *p)
{
    while (p->head) {
        struct sync_txq *q = p->head;
        p->head = q->next;
        kith_free(q->buf);
        kith_free(q);
    }
    p->tail = NULL;
    p->tx_bytes = 0;
    kith_free(p->rx);
    p->rx = NULL;
    p->rx_len = p->rx_cap = 0;
}

void sync_peer_error(struct sync_peer *p, struct lws *wsi, unsigned code, const char *text)
{
    struct sbuf b;
    sb_init(&b);
    sync_frame_begin(&b, SYNC_ERROR);
    sb_u16(&b, (uint16_t)code);
    size_t tl = strlen(text);
    sb_bytes(&b, text, tl > SYNC_TEXT_MAX ? SYNC_TEXT_MAX : tl);
    p->close_after = 1;
    if (sync_peer_send(p, wsi, &b) != KITH_OK && wsi)
        lws_callback_on_writable(wsi); /* close without the message */
}
