/*
 * Network change notices for the daemon: a NETLINK_ROUTE socket subscribed
 * to link and address events, polled on the daemon's libuv loop. When a
 * link comes up or an address is added (a laptop joins Wi-Fi, a cable is
 * plugged, a VPN comes up), offline remotes are retried at once instead of
 * at the end of their backoff. Events come in bursts (a link, then its
 * addresses, IPv6 after duplicate address detection), so they are gathered
 * for a short settle time and reported once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/net/daemon_int.h"
#include "kith/err.h"

#ifdef __linux__
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

struct dnetlink {
    uv_poll_t poll;
    uv_timer_t settle;
    int fd;
    int settle_ms;
    int closing;
    void (*on_change)(void *ud);
    void *ud;
};

static void on_settled(uv_timer_t *t)
{
    struct dnetlink *n = t->data;
    n->on_change(n->ud);
}

/* True when the batch in @buf says something came up: an address was added,
 * or a link that is up and running. Links going down and addresses going
 * away are not worth a retry (the connection's own errors say so). */
static int came_up(const char *buf, size_t len)
{
    int up = 0;
    const struct nlmsghdr *h = (const void *)buf;
    for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == RTM_NEWADDR) {
            up = 1;
        } else if (h->nlmsg_type == RTM_NEWLINK &&
                   h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
            const struct ifinfomsg *ifi = NLMSG_DATA(h);
            if ((ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING))
                up = 1;
        }
    }
    return up;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct dnetlink *n = p->data;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    int up = status < 0; /* an error (ENOBUFS: we missed some) counts as a change */
    for (;;) {
        ssize_t r = recv(n->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ENOBUFS) { /* the kernel dropped notices: assume a change */
            up = 1;
            continue;
        }
        if (r <= 0)
            break;
        up |= came_up(buf, (size_t)r);
    }
    if (up && !n->closing)
        uv_timer_start(&n->settle, on_settled, (uint64_t)n->settle_ms, 0);
}

int dnetlink_start(uv_loop_t *loop, int settle_ms, void (*on_change)(void *ud), void *ud,
                   dnetlink **out)
{
    *out = NULL;
    struct dnetlink *n = calloc(1, sizeof *n);
    if (!n)
        return KITH_ENOMEM;
    n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (n->fd < 0)
        goto fail;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
    if (bind(n->fd, (struct sockaddr *)&sa, sizeof sa))
        goto fail_fd;
    n->settle_ms = settle_ms;
    n->on_change = on_change;
    n->ud = ud;
    if (uv_poll_init(loop, &n->poll, n->fd))
        goto fail_fd;
    n->poll.data = n;
    uv_timer_init(loop, &n->settle);
    n->settle.data = n;
    uv_poll_start(&n->poll, UV_READABLE, on_readable);
    *out = n;
    return KITH_OK;
fail_fd:
    close(n->fd);
fail:
    free(n);
    return KITH_EIO;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct dnetlink *n = h->data;
    close(n->fd);
    free(n);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct dnetlink *n = h->data;
    uv_close((uv_handle_t *)&n->settle, on_timer_closed);
}

void dnetlink_stop(dnetlink *n)
{
    if (!n || n->closing)
        return;
    n->closing = 1;
    uv_close((uv_handle_t *)&n->poll, on_poll_closed);
}

#else /* not Linux: no notices; the backoff alone retries */

int dnetlink_start(uv_loop_t *loop, int settle_ms, void (*on_change)(void *ud), void *ud,
                   dnetlink **out)
{
    *out = NULL;
    return KITH_EUNSUPPORTED;
}

void dnetlink_stop(dnetlink *n)
{
}

#endif
