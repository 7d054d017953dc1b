/*
 * http_serve: a minimal HTTP/1.1 file server for the integration tests
 * (tests/integration/ai_pull.sh), so that testing `kith ai pull` needs no
 * python or web server on a fresh machine. It listens on 127.0.0.1 only, on
 * an ephemeral port that it prints as the first line of stdout, and serves
 * the files of one directory, one connection at a time, each response closing
 * its connection. It understands GET and HEAD, and "Range: bytes=N-" (and
 * N-M) with 206/416 replies.
 *
 *   http_serve [--drop-after K] [--ignore-range] [--delay-ms MS] [--log FILE] DIR
 *
 * --drop-after K   the first GET with a body sends K body bytes, then closes
 *                  the connection (a network cut mid-download); once only
 * --ignore-range   answer every GET with 200 and the whole file, as servers
 *                  without range support do
 * --delay-ms MS    sleep MS milliseconds before each 4 KiB body chunk (a slow
 *                  link, to interrupt a download on purpose)
 * --log FILE       append one line per request: "METHOD PATH RANGE STATUS"
 *
 * Test code: it trusts its operator, but still refuses paths with "..".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct opts {
    long long drop_after; /* -1: off */
    int ignore_range;
    long delay_ms;
    const char *dir;
    FILE *log;
};

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into @buf; its length or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return (ssize_t)len;
    }
    return -1;
}

static void reply_status(int fd, int status, const char *reason, const char *extra)
{
    char body[256], head[512];
    int blen = snprintf(body, sizeof body,
                        "<!DOCTYPE html>\n<html><body><h1>%d %s</h1></body></html>\n", status,
                        reason);
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                        "%sConnection: close\r\n\r\n",
                        status, reason, blen, extra ? extra : "");
    if (send_all(fd, head, (size_t)hlen) == 0)
        send_all(fd, body, (size_t)blen);
}

/* Parses "bytes=N-" or "bytes=N-M" after the header name; 1 if it is one. */
static int parse_range(const char *v, long long *from, long long *to)
{
    while (*v == ' ')
        v++;
    if (strncmp(v, "bytes=", 6) != 0)
        return 0;
    char *end;
    *from = strtoll(v + 6, &end, 10);
    if (end == v + 6 || *end != '-' || *from < 0)
        return 0;
    *to = -1;
    if (end[1] >= '0' && end[1] <= '9')
        *to = strtoll(end + 1, NULL, 10);
    return 1;
}

static const char *find_header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            return p + 3 + n;
    return NULL;
}

static void serve(int fd, struct opts *o)
{
    char head[8192], method[16], path[4096], rangebuf[64] = "-";
    if (read_head(fd, head, sizeof head) < 0)
        return;
    if (sscanf(head, "%15s %4095s", method, path) != 2) {
        reply_status(fd, 400, "Bad Request", NULL);
        return;
    }
    int is_head = !strcmp(method, "HEAD");
    int status = 200;
    long long from = 0, to = -1;
    const char *rv = find_header(head, "Range");
    int ranged = rv && parse_range(rv, &from, &to);
    if (rv) {
        size_t i = 0;
        while (rv[i] == ' ')
            rv++;
        while (rv[i] && rv[i] != '\r' && i < sizeof rangebuf - 1) {
            rangebuf[i] = rv[i];
            i++;
        }
        rangebuf[i] = '\0';
    }
    char *q = strchr(path, '?'); /* the query string names no file */
    if (q)
        *q = '\0';
    char file[8192];
    struct stat st;
    int ffd = -1;
    if (strcmp(method, "GET") != 0 && !is_head) {
        status = 405;
        reply_status(fd, status, "Method Not Allowed", NULL);
        goto done;
    }
    snprintf(file, sizeof file, "%s%s", o->dir, path);
    if (path[0] != '/' || strstr(path, "..") || stat(file, &st) != 0 || !S_ISREG(st.st_mode) ||
        (ffd = open(file, O_RDONLY)) < 0) {
        status = 404;
        reply_status(fd, status, "Not Found", NULL);
        goto done;
    }
    long long size = (long long)st.st_size;
    if (o->ignore_range)
        ranged = 0;
    if (ranged && (from >= size || (to >= 0 && to < from))) {
        char extra[96];
        snprintf(extra, sizeof extra, "Content-Range: bytes */%lld\r\n", size);
        status = 416;
        reply_status(fd, status, "Range Not Satisfiable", extra);
        goto done;
    }
    if (!ranged || to < 0 || to >= size)
        to = size - 1;
    if (!ranged)
        from = 0;
    long long len = size ? to - from + 1 : 0;
    char hdr[512];
    int hlen;
    if (ranged) {
        status = 206;
        hlen = snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                        "Content-Length: %lld\r\nContent-Range: bytes %lld-%lld/%lld\r\n"
                        "Accept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                        len, from, to, size);
    } else {
        hlen = snprintf(hdr, sizeof hdr,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        "Content-Length: %lld\r\n%sConnection: close\r\n\r\n",
                        len, o->ignore_range ? "" : "Accept-Ranges: bytes\r\n");
    }
    if (send_all(fd, hdr, (size_t)hlen) != 0 || is_head)
        goto done;
    if (lseek(ffd, (off_t)from, SEEK_SET) < 0)
        goto done;
    long long sent = 0, limit = len;
    if (o->drop_after >= 0 && o->drop_after < len) {
        limit = o->drop_after;
        o->drop_after = -1; /* once */
    }
    char buf[4096];
    while (sent < limit) {
        size_t want = limit - sent < (long long)sizeof buf ? (size_t)(limit - sent) : sizeof buf;
        ssize_t n = read(ffd, buf, want);
        if (n <= 0)
            break;
        if (o->delay_ms > 0) {
            struct timespec ts = {o->delay_ms / 1000, (o->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (send_all(fd, buf, (size_t)n) != 0)
            break;
        sent += n;
    }
done:
    if (o->log) {
        fprintf(o->log, "%s %s %s %d\n", method, path, rangebuf, status);
        fflush(o->log);
    }
    if (ffd >= 0)
        close(ffd);
}

int main(int argc, char **argv)
{
    struct opts o = {.drop_after = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--drop-after") && v) {
            o.drop_after = strtoll(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--ignore-range")) {
            o.ignore_range = 1;
        } else if (!strcmp(a, "--delay-ms") && v) {
            o.delay_ms = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--log") && v) {
            o.log = fopen(argv[++i], "a");
            if (!o.log) {
                perror(v);
                return 1;
            }
        } else if (a[0] != '-' && !o.dir) {
            o.dir = a;
        } else {
            fprintf(stderr, "usage: http_serve [--drop-after K] [--ignore-range] [--delay-ms MS]"
                            " [--log FILE] DIR\n");
            return 2;
        }
    }
    if (!o.dir) {
        fprintf(stderr, "http_serve: DIR missing\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only, never a public address */
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
        perror("bind");
        return 1;
    }
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            return 1;
        }
        serve(fd, &o);
        /* Half-close, then drain what the client still sends, so that the
         * close does not turn into a reset that could discard the reply. */
        shutdown(fd, SHUT_WR);
        char sink[512];
        struct timeval tv = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (recv(fd, sink, sizeof sink, 0) > 0)
            ;
        close(fd);
    }
}
