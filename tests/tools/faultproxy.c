/*
 * faultproxy: a TCP proxy on 127.0.0.1 that breaks connections on purpose
 * (tests/integration/sync_faults.sh). It listens on an ephemeral port,
 * prints "faultproxy: PORT" on stdout, and forwards every connection to
 * 127.0.0.1:TARGET. While faults are on, each new connection draws one plan
 * from a seeded generator (so a run is repeatable given the same order of
 * connections):
 *
 *   pass      forward everything
 *   cut       close both sides after N bytes (both directions counted)
 *   stall     after N bytes, forward nothing for S ms, then go on
 *   truncate  after N bytes, end one direction (shutdown for writing)
 *             and drop what else comes that way; the other keeps flowing
 *
 * SIGUSR1 turns faults on, SIGUSR2 turns them off and closes every open
 * connection (a clean slate for a final round); SIGTERM/SIGINT stop it.
 *
 * usage: faultproxy TARGET_PORT [--seed N] [--faults] [--verbose]
 *
 * One process, poll(2), nonblocking sockets, no dependencies: a test tool,
 * not part of kith.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 512
#define BUF_BYTES 16384

enum plan { PLAN_PASS, PLAN_CUT, PLAN_STALL, PLAN_TRUNCATE };
static const char *plan_name[] = {"pass", "cut", "stall", "truncate"};

struct dir {
    int src, dst; /* fds, borrowed from the conn */
    char buf[BUF_BYTES];
    size_t off, len;
    int eof;  /* nothing more will be read from src */
    int shut; /* dst shut down for writing */
};

struct conn {
    int used, id;
    int fd[2]; /* 0: client side, 1: upstream (hub) side */
    struct dir d[2]; /* 0: client -> hub, 1: hub -> client */
    enum plan plan;
    uint64_t at;       /* bytes after which the plan acts */
    uint64_t moved;    /* bytes forwarded so far, both directions */
    int stall_ms, which, acted;
    int64_t stall_until;
};

static struct conn conns[MAX_CONNS];
static volatile sig_atomic_t faults_on, want_on, want_off, stop;
static uint64_t rng;
static int verbose;

static uint64_t next_rand(void)
{
    /* xorshift64*: small, deterministic, good enough for choosing faults */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_on = 1;
    else if (sig == SIGUSR2)
        want_off = 1;
    else
        stop = 1;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_close(struct conn *c, const char *why)
{
    if (verbose)
        fprintf(stderr, "faultproxy: #%d closed (%s), %llu bytes\n", c->id, why,
                (unsigned long long)c->moved);
    close(c->fd[0]);
    close(c->fd[1]);
    c->used = 0;
}

static void choose_plan(struct conn *c)
{
    c->plan = PLAN_PASS;
    if (!faults_on)
        return;
    uint64_t r = next_rand();
    c->plan = (enum plan)(r % 4);
    /* Mostly early (handshake, first frames), sometimes well into the
     * exchange: a TLS handshake is ~2-4 KiB, a sync a few KiB more. */
    uint64_t span = (next_rand() % 3 == 0) ? 16384 : 6000;
    c->at = next_rand() % span;
    c->stall_ms = 100 + (int)(next_rand() % 2500);
    c->which = (int)(next_rand() % 2);
}

static void accept_one(int lfd, int target)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    struct conn *c = NULL;
    for (int i = 0; i < MAX_CONNS && !c; i++)
        if (!conns[i].used)
            c = &conns[i];
    int ufd = c ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A blocking connect on loopback answers at once (or is refused). */
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&sa, sizeof sa) < 0 || set_nonblock(ufd) < 0) {
        if (ufd >= 0)
            close(ufd);
        close(cfd);
        return;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static int ids;
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->id = ++ids;
    c->fd[0] = cfd;
    c->fd[1] = ufd;
    c->d[0].src = cfd;
    c->d[0].dst = ufd;
    c->d[1].src = ufd;
    c->d[1].dst = cfd;
    choose_plan(c);
    if (verbose)
        fprintf(stderr, "faultproxy: #%d %s at %llu (stall %d ms, dir %d)\n", c->id,
                plan_name[c->plan], (unsigned long long)c->at, c->stall_ms, c->which);
}

/* The plan acts once c->moved reaches c->at. Returns 0, or -1 when the
 * connection was closed. */
static int act(struct conn *c)
{
    if (c->acted || c->plan == PLAN_PASS || c->moved < c->at)
        return 0;
    c->acted = 1;
    switch (c->plan) {
    case PLAN_CUT:
        conn_close(c, "cut");
        return -1;
    case PLAN_STALL:
        c->stall_until = now_ms() + c->stall_ms;
        break;
    case PLAN_TRUNCATE: {
        struct dir *d = &c->d[c->which];
        d->eof = 1;
        d->len = d->off = 0; /* drop what was buffered, too */
        break;
    }
    default:
        break;
    }
    return 0;
}

/* How many bytes this direction may read before the plan acts. */
static size_t read_room(const struct conn *c)
{
    size_t room = BUF_BYTES;
    if (!c->acted && c->plan != PLAN_PASS && c->at - c->moved < room)
        room = (size_t)(c->at - c->moved);
    return room;
}

static void service(struct conn *c, const short *rev)
{
    for (int k = 0; k < 2 && c->used; k++) {
        struct dir *d = &c->d[k];
        int si = k, di = 1 - k;
        if (!d->eof && d->len == 0 && (rev[si] & (POLLIN | POLLHUP | POLLERR))) {
            size_t room = read_room(c);
            if (room == 0) {
                if (act(c) < 0)
                    return;
                continue;
            }
            ssize_t n = read(d->src, d->buf, room);
            if (n > 0) {
                d->off = 0;
                d->len = (size_t)n;
                c->moved += (uint64_t)n;
                if (act(c) < 0)
                    return;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                d->eof = 1;
            }
        }
        if (d->len && (rev[di] & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(d->dst, d->buf + d->off, d->len);
            if (n > 0) {
                d->off += (size_t)n;
                d->len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                conn_close(c, "write error");
                return;
            }
        }
        if (d->eof && d->len == 0 && !d->shut) {
            shutdown(d->dst, SHUT_WR);
            d->shut = 1;
        }
    }
    if (c->used && c->d[0].shut && c->d[1].shut)
        conn_close(c, "both ends done");
}

int main(int argc, char **argv)
{
    int target = 0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--faults"))
            faults_on = 1;
        else if (!strcmp(argv[i], "--verbose"))
            verbose = 1;
        else if (!target && atoi(argv[i]) > 0)
            target = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: faultproxy TARGET_PORT [--seed N] [--faults] [--verbose]\n");
            return 2;
        }
    }
    if (!target) {
        fprintf(stderr, "usage: faultproxy TARGET_PORT [--seed N] [--faults] [--verbose]\n");
        return 2;
    }
    rng = seed * 0x9E3779B97F4A7C15ULL + 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in la = {.sin_family = AF_INET};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t ll = sizeof la;
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&la, &ll) < 0) {
        fprintf(stderr, "faultproxy: cannot listen: %s\n", strerror(errno));
        return 1;
    }
    printf("faultproxy: %d\n", ntohs(la.sin_port));
    fflush(stdout);

    static struct pollfd pfd[1 + 2 * MAX_CONNS];
    static int owner[1 + 2 * MAX_CONNS];
    while (!stop) {
        if (want_on) {
            want_on = 0;
            faults_on = 1;
            if (verbose)
                fprintf(stderr, "faultproxy: faults on\n");
        }
        if (want_off) {
            want_off = 0;
            faults_on = 0;
            for (int i = 0; i < MAX_CONNS; i++)
                if (conns[i].used)
                    conn_close(&conns[i], "reset");
            if (verbose)
                fprintf(stderr, "faultproxy: faults off, all connections closed\n");
        }
        int n = 0;
        int64_t t = now_ms();
        pfd[n].fd = lfd;
        pfd[n].events = POLLIN;
        owner[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            if (!c->used)
                continue;
            int stalled = c->stall_until > t;
            for (int s = 0; s < 2; s++) {
                short ev = 0;
                /* side s is the source of direction s and the sink of 1-s */
                if (!stalled && !c->d[s].eof && c->d[s].len == 0)
                    ev |= POLLIN;
                if (!stalled && c->d[1 - s].len)
                    ev |= POLLOUT;
                /* a stalled connection is left out of poll (fd -1), so a
                 * hangup on it cannot spin the loop until the stall ends */
                pfd[n].fd = stalled ? -1 : c->fd[s];
                pfd[n].events = ev;
                owner[n++] = i;
            }
        }
        int r = poll(pfd, (nfds_t)n, 50);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "faultproxy: poll: %s\n", strerror(errno));
            return 1;
        }
        if (r <= 0)
            continue;
        if (pfd[0].revents & POLLIN)
            for (int k = 0; k < 64; k++)
                accept_one(lfd, target);
        for (int j = 1; j + 1 < n; j += 2) {
            struct conn *c = &conns[owner[j]];
            if (!c->used || c->stall_until > now_ms())
                continue;
            short rev[2] = {pfd[j].revents, pfd[j + 1].revents};
            if (rev[0] || rev[1])
                service(c, rev);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].used)
            conn_close(&conns[i], "exit");
    close(lfd);
    return 0;
}
