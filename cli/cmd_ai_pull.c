/*
 * cmd_ai_pull.c: `kith ai pull URL`, downloading a GGUF model into the models
 * folder (where `kith ai run --model NAME` looks) with libcurl.
 *
 * The download goes to NAME.part next to its final place, so an interrupted
 * pull (Ctrl-C, a cut connection, a full disk) leaves a prefix that the next
 * pull of the same name resumes with a Range request; a server that ignores
 * Range answers 200 and the part is started over. The SHA-256 is computed
 * while the bytes arrive (the kept prefix is hashed once on resume), checked
 * against --sha256, and the file must open in the GGUF reader before it is
 * moved into place with one rename, so an error page or a truncated file is
 * never left where a model is looked for.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "kith/ai.h"
#include "kith/kith.h"

/* Attempts of one pull when the connection drops mid-transfer; each attempt
 * resumes where the last one stopped. */
#define MAX_ATTEMPTS 5

/*
 * libcurl is opened here, at the first pull, rather than linked into kith:
 * its dependency tree (GnuTLS, OpenSSL, Kerberos, LDAP, p11-kit ...) runs
 * library constructors that cost every kith command about 5 ms at start-up
 * on this machine (measured: an empty program takes 0.8 ms, 6.6 ms linked
 * with -lcurl), more than the whole time-to-first-token budget of
 * `kith ai run`. The headers still come from libcurl's -dev package.
 */
static struct {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode cc);
} cu;

/* Fills @cu; 0, or prints why libcurl cannot be used and returns 1. */
static int curl_open(void)
{
    const char *names[] = {"libcurl.so.4", "libcurl.so"};
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return cli_error("'kith ai pull' needs libcurl (Debian: apt install libcurl4): %s",
                         dlerror());
    struct {
        void **fn;
        const char *name;
    } syms[] = {
        {(void **)&cu.global_init, "curl_global_init"},
        {(void **)&cu.global_cleanup, "curl_global_cleanup"},
        {(void **)&cu.easy_init, "curl_easy_init"},
        {(void **)&cu.easy_setopt, "curl_easy_setopt"},
        {(void **)&cu.easy_perform, "curl_easy_perform"},
        {(void **)&cu.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&cu.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&cu.easy_strerror, "curl_easy_strerror"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        /* POSIX guarantees a function pointer survives the trip through void * */
        *syms[i].fn = dlsym(lib, syms[i].name);
        if (!*syms[i].fn)
            return cli_error("libcurl lacks '%s'", syms[i].name);
    }
    return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

struct pull {
    const char *url;
    char dir[PATH_MAX], final[PATH_MAX], part[PATH_MAX + 8];
    int fd;                    /* the .part, open for writing */
    uint64_t have;             /* bytes in the .part (and hashed) */
    uint64_t start;            /* @have when this attempt began */
    uint64_t total;            /* size of the whole file; 0 if unknown */
    crypto_hash_sha256_state sha;
    /* per response, from the header callback */
    long status;
    char reason[64];
    int has_range;             /* Content-Range seen */
    uint64_t range_from, range_total;
    int body_started;          /* the first body bytes of this response were seen */
    /* why a callback stopped the transfer */
    int write_errno;
    int bad_magic;
    int bad_range;
    uint64_t space_need, space_free; /* set when the disk cannot hold the rest */
    unsigned char head[8];     /* the file's first bytes, for the GGUF magic */
    size_t n_head;
    /* progress */
    int tty;
    double t0, last_draw;
    uint64_t session0;         /* @have when this command started downloading */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Human size, SI units as `kith ai info` prints them. */
static const char *hsize(char *buf, size_t cap, double b)
{
    if (b >= 1e9)
        snprintf(buf, cap, "%.2f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, cap, "%.1f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(buf, cap, "%.1f kB", b / 1e3);
    else
        snprintf(buf, cap, "%.0f B", b);
    return buf;
}

static void draw_progress(struct pull *p, int final)
{
    if (!p->tty)
        return;
    double t = now_s();
    if (!final && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    char a[32], b[32], r[32];
    double el = t - p->t0;
    double rate = el > 0 ? (double)(p->have - p->session0) / el : 0;
    hsize(a, sizeof a, (double)p->have);
    hsize(r, sizeof r, rate);
    if (p->total > 0) {
        int pct = (int)(p->have * 100 / p->total), w = 30;
        int fill = (int)(p->have * (uint64_t)w / p->total);
        fprintf(stderr, "\r[%.*s%*s] %3d%%  %s / %s  %s/s   ", fill,
                "##############################", w - fill, "", pct, a,
                hsize(b, sizeof b, (double)p->total), r);
    } else {
        fprintf(stderr, "\r%s  %s/s   ", a, r);
    }
    if (final)
        fputc('\n', stderr);
}

static int xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    struct pull *p = ud;
    if (interrupted)
        return 1; /* CURLE_ABORTED_BY_CALLBACK; the .part stays for a resume */
    draw_progress(p, 0);
    return 0;
}

/* Parses "Content-Range: bytes A-B/T" (T may be '*'). */
static void parse_content_range(struct pull *p, const char *v)
{
    unsigned long long a, b, t;
    while (*v == ' ')
        v++;
    if (strncasecmp(v, "bytes ", 6) != 0)
        return;
    v += 6;
    if (sscanf(v, "%llu-%llu/%llu", &a, &b, &t) == 3) {
        p->has_range = 1;
        p->range_from = a;
        p->range_total = t;
    } else if (sscanf(v, "*/%llu", &t) == 1) {
        p->range_total = t; /* 416: the size the server has */
    }
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct pull *p = ud;
    size_t len = size * n;
    char line[256];
    size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, buf, l);
    line[l] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (!strncmp(line, "HTTP/", 5)) {
        /* a new response (after a redirect, or a 100 Continue): forget the last */
        p->has_range = 0;
        p->range_total = 0;
        p->reason[0] = '\0';
        const char *sp = strchr(line, ' ');
        if (sp && (sp = strchr(sp + 1, ' ')))
            snprintf(p->reason, sizeof p->reason, "%s", sp + 1);
    } else if (!strncasecmp(line, "content-range:", 14)) {
        parse_content_range(p, line + 14);
    }
    return len;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *c = buf;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Drops the .part's content: the server sends the whole file. */
static int start_over(struct pull *p)
{
    if (ftruncate(p->fd, 0) != 0 || lseek(p->fd, 0, SEEK_SET) != 0)
        return errno;
    p->have = p->start = 0;
    p->n_head = 0;
    crypto_hash_sha256_init(&p->sha);
    return 0;
}

/* The first body bytes of a response: decides between resuming and starting
 * over, learns the total size and checks that it fits on the disk. */
static int body_begins(struct pull *p, CURL *h)
{
    curl_off_t clen = -1;
    cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
    cu.easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    if (p->status == 206) {
        /* a part of the file: it must start where the .part ends */
        if (!p->has_range || p->range_from != p->have) {
            p->bad_range = 1;
            return -1;
        }
        p->total = p->range_total;
    } else {
        if (p->have > 0) {
            /* Range ignored: a 200 carries the whole file. */
            fprintf(stderr, "kith: the server does not support resuming; starting over\n");
            int e = start_over(p);
            if (e) {
                p->write_errno = e;
                return -1;
            }
        }
        p->total = clen > 0 ? (uint64_t)clen : 0;
    }
    if (p->total > p->have) {
        struct statvfs vfs;
        uint64_t need = p->total - p->have;
        if (fstatvfs(p->fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < need) {
            p->space_need = need;
            p->space_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
            return -1;
        }
    }
    return 0;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    struct pull *p = ud;
    size_t len = size * n;
    /* the magic: the first 4 bytes of the file, whichever response brings them */
    size_t i = 0;
    while (p->n_head < 4 && i < len)
        p->head[p->n_head++] = (unsigned char)buf[i++];
    if (p->n_head >= 4 && p->have < 4 && memcmp(p->head, "GGUF", 4) != 0) {
        p->bad_magic = 1;
        return 0;
    }
    int e = write_all(p->fd, buf, len);
    if (e) {
        p->write_errno = e;
        return 0; /* CURLE_WRITE_ERROR */
    }
    crypto_hash_sha256_update(&p->sha, (const unsigned char *)buf, len);
    p->have += len;
    return len;
}

/* libcurl's write callback gets no handle, so the first-bytes decision runs
 * from this wrapper, which has one. */
struct body_ctx {
    struct pull *p;
    CURL *h;
};

static size_t on_body_first(char *buf, size_t size, size_t n, void *ud)
{
    struct body_ctx *bc = ud;
    if (!bc->p->body_started) {
        bc->p->body_started = 1;
        if (body_begins(bc->p, bc->h) != 0)
            return 0;
    }
    return on_body(buf, size, n, bc->p);
}

/* Hashes the bytes already in the .part (a resumed download) and reads its
 * first bytes; a .part that does not start like a GGUF is dropped. */
static int hash_existing(struct pull *p)
{
    unsigned char *buf = malloc(1 << 20);
    if (!buf)
        return ENOMEM;
    int rfd = open(p->part, O_RDONLY | O_CLOEXEC), e = 0;
    if (rfd < 0) {
        e = errno;
        goto out;
    }
    uint64_t off = 0;
    while (off < p->have) {
        size_t want = p->have - off < (1u << 20) ? (size_t)(p->have - off) : 1u << 20;
        ssize_t r = pread(rfd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = r < 0 ? errno : EIO;
            goto out;
        }
        if (off == 0)
            for (size_t i = 0; i < (size_t)r && p->n_head < 4; i++)
                p->head[p->n_head++] = buf[i];
        crypto_hash_sha256_update(&p->sha, buf, (size_t)r);
        off += (uint64_t)r;
    }
out:
    if (rfd >= 0)
        close(rfd);
    free(buf);
    return e;
}

/* The last path segment of @url, %XX-decoded, without query or fragment. */
static int name_from_url(const char *url, char *out, size_t cap)
{
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    const char *path = strchr(s, '/');
    if (!path)
        return 0;
    size_t end = strcspn(path, "?#");
    const char *seg = path;
    for (size_t i = 0; i < end; i++)
        if (path[i] == '/')
            seg = path + i + 1;
    size_t o = 0, seg_len = (size_t)(path + end - seg);
    for (size_t i = 0; i < seg_len; i++) {
        char c = seg[i];
        unsigned v;
        char hex[3] = {0};
        if (c == '%' && i + 2 < seg_len) {
            hex[0] = seg[i + 1];
            hex[1] = seg[i + 2];
        }
        if (hex[0] && isxdigit((unsigned char)hex[0]) && isxdigit((unsigned char)hex[1]) &&
            sscanf(hex, "%2x", &v) == 1 && v != 0) {
            c = (char)v; // %XX: names with spaces or '+' come encoded
            i += 2;
        }
        if (o + 1 >= cap)
            return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return o > 0;
}

/* A file name we are willing to create in the models folder. */
static int valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > NAME_MAX - 8 || n[0] == '.')
        return 0;
    for (const unsigned char *c = (const unsigned char *)n; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\')
            return 0;
    return 1;
}

/* mkdir -p @dir (0755 for what is created). */
static int make_dirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return ENAMETOOLONG;
    for (char *c = tmp + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return errno;
            *c = save;
            if (!save)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static int parse_hex32(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        char two[3] = {hex[2 * i], hex[2 * i + 1], 0};
        if (!strchr("0123456789abcdefABCDEF", two[0]) || !strchr("0123456789abcdefABCDEF", two[1]))
            return -1;
        sscanf(two, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return 0;
}

static void to_hex(const unsigned char in[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void pull_usage(FILE *f)
{
    fprintf(f, "usage: kith ai pull [options] URL\n\n"
               "Downloads a GGUF model into the models folder, where 'kith ai run --model NAME'\n"
               "finds it. An interrupted pull resumes when run again.\n\n"
               "  --sha256 HEX   expected SHA-256 of the file; a mismatch deletes the download\n"
               "  --name FILE    file name to save as (default: the URL's last part; .gguf added)\n"
               "  --dir DIR      folder (default: $XDG_DATA_HOME/kith/models or\n"
               "                 ~/.local/share/kith/models)\n"
               "  --force        replace an existing file of that name\n");
}

/* One transfer from p->have on; returns the curl code. */
static CURLcode attempt(struct pull *p, char *errbuf)
{
    CURL *h = cu.easy_init();
    if (!h)
        return CURLE_OUT_OF_MEMORY;
    struct body_ctx bc = {p, h};
    char range[32];
    p->start = p->have;
    p->status = 0;
    p->body_started = 0;
    p->has_range = 0;
    p->range_total = 0;
    errbuf[0] = '\0';
    cu.easy_setopt(h, CURLOPT_URL, p->url);
    cu.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    cu.easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    /* model hosts redirect to CDNs; never to file:// or other schemes */
    if (cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        cu.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        snprintf(errbuf, CURL_ERROR_SIZE, "libcurl 7.85 or newer is needed");
        cu.easy_cleanup(h);
        return CURLE_UNKNOWN_OPTION;
    }
    cu.easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* a stalled transfer (under 1 byte/s for a minute) fails and can resume */
    cu.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    cu.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    char ua[64];
    snprintf(ua, sizeof ua, "kith/%s", kith_version());
    cu.easy_setopt(h, CURLOPT_USERAGENT, ua);
    /* CURLOPT_RANGE rather than RESUME_FROM: with RESUME_FROM libcurl fails a
     * 200 answer outright, where we can start over in the same response. */
    if (p->have > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)p->have);
        cu.easy_setopt(h, CURLOPT_RANGE, range);
    }
    cu.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    cu.easy_setopt(h, CURLOPT_HEADERDATA, p);
    cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_first);
    cu.easy_setopt(h, CURLOPT_WRITEDATA, &bc);
    cu.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    cu.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo);
    cu.easy_setopt(h, CURLOPT_XFERINFODATA, p);
    CURLcode cc = cu.easy_perform(h);
    if (!p->status)
        cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
    cu.easy_cleanup(h);
    return cc;
}

/* Errors that a new request may get past: the connection dropped or stalled. */
static int transient(CURLcode cc)
{
    return cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
           cc == CURLE_GOT_NOTHING || cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_HTTP2 ||
           cc == CURLE_HTTP2_STREAM;
}

int cmd_ai_pull(int argc, char **argv)
{
    const char *url = NULL, *sha_hex = NULL, *name_opt = NULL, *dir_opt = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pull_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sha256") || !strcmp(a, "--name") || !strcmp(a, "--dir")) {
            if (!v)
                return cli_error("%s needs a value", a);
            *(!strcmp(a, "--sha256") ? &sha_hex : !strcmp(a, "--name") ? &name_opt : &dir_opt) = v;
            i++;
        } else if (!strcmp(a, "--force") || !strcmp(a, "-f")) {
            force = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_error("unknown option '%s'; see 'kith ai pull --help'", a);
        } else if (!url) {
            url = a;
        } else {
            return cli_error("one URL only");
        }
    }
    if (!url) {
        pull_usage(stderr);
        return 1;
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return cli_error("'%s' is not an http:// or https:// URL", url);
    unsigned char want[32], got[32];
    if (sha_hex && parse_hex32(sha_hex, want) != 0)
        return cli_error("--sha256: '%s' is not 64 hex digits", sha_hex);

    struct pull p;
    memset(&p, 0, sizeof p);
    p.url = url;
    p.fd = -1;
    if (dir_opt) {
        if (snprintf(p.dir, sizeof p.dir, "%s", dir_opt) >= (int)sizeof p.dir)
            return cli_error("--dir: path too long");
    } else if (!cli_ai_models_dir(p.dir, sizeof p.dir)) {
        return cli_error("no models folder: set HOME or XDG_DATA_HOME, or pass --dir");
    }
    char name[NAME_MAX + 1];
    if (name_opt) {
        if (snprintf(name, sizeof name, "%s", name_opt) >= (int)sizeof name)
            return cli_error("--name: too long");
    } else if (!name_from_url(url, name, sizeof name)) {
        return cli_error("cannot tell a file name from '%s'; pass --name", url);
    }
    size_t nl = strlen(name);
    if (nl < 5 || strcasecmp(name + nl - 5, ".gguf") != 0) {
        /* model lookup lists *.gguf, so the name must end so */
        if (nl + 6 > sizeof name)
            return cli_error("file name '%s' is too long", name);
        memcpy(name + nl, ".gguf", 6);
    }
    if (!valid_name(name))
        return cli_error("'%s' is not a usable file name; pass --name", name);
    int e = make_dirs(p.dir);
    if (e)
        return cli_error("cannot create '%s': %s", p.dir, strerror(e));
    if (snprintf(p.final, sizeof p.final, "%s/%s", p.dir, name) >= (int)sizeof p.final)
        return cli_error("path too long");
    snprintf(p.part, sizeof p.part, "%s.part", p.final);
    struct stat st;
    if (!force && lstat(p.final, &st) == 0)
        return cli_error("'%s' already exists; pass --force to replace it", p.final);

    int ret = 1;
    char errbuf[CURL_ERROR_SIZE], hs[32];
    if (sodium_init() < 0)
        return cli_error("libsodium failed to initialise");
    crypto_hash_sha256_init(&p.sha);
    p.fd = open(p.part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (p.fd < 0)
        return cli_error("cannot open '%s': %s", p.part, strerror(errno));
    if (fstat(p.fd, &st) != 0) {
        cli_error("cannot stat '%s': %s", p.part, strerror(errno));
        goto out;
    }
    p.have = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    if (p.have > 0) {
        if ((e = hash_existing(&p))) {
            cli_error("cannot read '%s': %s", p.part, strerror(e));
            goto out;
        }
        if (p.n_head >= 4 && memcmp(p.head, "GGUF", 4) != 0) {
            fprintf(stderr, "kith: '%s' is not the start of a GGUF; starting over\n", p.part);
            if ((e = start_over(&p))) {
                cli_error("cannot truncate '%s': %s", p.part, strerror(e));
                goto out;
            }
        } else {
            fprintf(stderr, "kith: resuming '%s' at %s\n", name,
                    hsize(hs, sizeof hs, (double)p.have));
        }
    }
    if (lseek(p.fd, (off_t)p.have, SEEK_SET) < 0 && S_ISREG(st.st_mode)) {
        cli_error("cannot seek '%s': %s", p.part, strerror(errno));
        goto out;
    }

    if (curl_open())
        goto out;
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_error("libcurl failed to initialise");
        goto out;
    }
    /* Ctrl-C stops the transfer between two chunks, so the .part ends on
     * what was written and a later pull resumes from there. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    p.tty = isatty(STDERR_FILENO);
    p.t0 = now_s();
    p.session0 = p.have;
    CURLcode cc = CURLE_OK;
    int restarted_416 = 0;
    for (int n_try = 1;; n_try++) {
        cc = attempt(&p, errbuf);
        if (cc == CURLE_HTTP_RETURNED_ERROR && p.status == 416 && p.have > 0) {
            if (p.range_total == p.have) {
                cc = CURLE_OK; // the .part already holds the whole file
                break;
            }
            if (!restarted_416) {
                restarted_416 = 1;
                fprintf(stderr, "kith: the server rejected the resume range; starting over\n");
                if ((e = start_over(&p))) {
                    cli_error("cannot truncate '%s': %s", p.part, strerror(e));
                    goto restore;
                }
                continue;
            }
        }
        if (cc == CURLE_OK && p.total > 0 && p.have < p.total)
            cc = CURLE_PARTIAL_FILE; /* should not happen; curl checks Content-Length */
        if (!transient(cc) || interrupted || n_try >= MAX_ATTEMPTS)
            break;
        if (p.tty)
            fputc('\n', stderr);
        fprintf(stderr, "kith: connection lost at %s (%s); resuming\n",
                hsize(hs, sizeof hs, (double)p.have), errbuf[0] ? errbuf : cu.easy_strerror(cc));
        if (p.have == p.start) {
            /* no progress: wait a little before asking again */
            struct timespec ts = {n_try, 0};
            nanosleep(&ts, NULL);
        }
    }
    if (p.tty && (cc == CURLE_OK || p.have > p.session0))
        draw_progress(&p, 1);

    if (cc != CURLE_OK) {
        int keep = 0; /* the .part is worth resuming */
        if (cc == CURLE_ABORTED_BY_CALLBACK && interrupted) {
            cli_error("interrupted; %s kept in '%s': run the same command to resume",
                      hsize(hs, sizeof hs, (double)p.have), p.part);
            keep = 1;
            ret = 130;
        } else if (p.bad_magic) {
            char show[16];
            size_t k = 0;
            for (size_t i = 0; i < p.n_head && i < 4; i++)
                show[k++] = p.head[i] >= 0x20 && p.head[i] < 0x7f ? (char)p.head[i] : '.';
            show[k] = '\0';
            cli_error("'%s' is not a GGUF file (it starts with '%s'%s)", url, show,
                      p.head[0] == '<' ? ", an HTML page?" : "");
        } else if (p.bad_range) {
            cli_error("'%s': the server answered the resume request with the wrong range", url);
        } else if (p.space_need) {
            char fr[32];
            cli_error("not enough disk space for '%s': %s more needed, %s free", p.final,
                      hsize(hs, sizeof hs, (double)p.space_need),
                      hsize(fr, sizeof fr, (double)p.space_free));
            keep = 1;
        } else if (p.write_errno == ENOSPC) {
            cli_error("disk full: cannot write '%s'%s", p.part,
                      p.have ? "; free some space and run the same command to resume" : "");
            keep = 1;
        } else if (p.write_errno) {
            cli_error("cannot write '%s': %s", p.part, strerror(p.write_errno));
            keep = 1;
        } else if (cc == CURLE_HTTP_RETURNED_ERROR) {
            cli_error("'%s': HTTP %ld%s%s", url, p.status, p.reason[0] ? " " : "", p.reason);
            keep = 1; /* a 5xx may pass; a 4xx leaves an empty .part, removed below */
        } else if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY) {
            cli_error("cannot resolve the host of '%s' (%s)", url, errbuf[0] ? errbuf : "DNS");
            keep = 1;
        } else if (cc == CURLE_COULDNT_CONNECT) {
            cli_error("cannot connect to '%s': %s", url, errbuf[0] ? errbuf : cu.easy_strerror(cc));
            keep = 1;
        } else {
            cli_error("download of '%s' failed: %s%s", url,
                      errbuf[0] ? errbuf : cu.easy_strerror(cc),
                      p.have ? "; run the same command to resume" : "");
            keep = 1;
        }
        if (!keep || p.have == 0)
            unlink(p.part);
        goto restore;
    }

    /* the whole file is in the .part: make it durable, then check it */
    if (fsync(p.fd) != 0 && errno != EINVAL) {
        cli_error("cannot write '%s': %s", p.part, strerror(errno));
        goto restore;
    }
    close(p.fd);
    p.fd = -1;
    crypto_hash_sha256_final(&p.sha, got);
    char got_hex[65];
    to_hex(got, got_hex);
    if (sha_hex && sodium_memcmp(got, want, 32) != 0) {
        unlink(p.part);
        cli_error("checksum mismatch for '%s': expected %s, got %s; the download was deleted", url,
                  sha_hex, got_hex);
        goto restore;
    }
    char gerr[256];
    int rc = kith_gguf_check(p.part, gerr, sizeof gerr);
    if (rc) {
        unlink(p.part);
        cli_error("'%s' is not a usable GGUF file (%s); the download was deleted", url, gerr);
        goto restore;
    }
    /* link() refuses to replace a file that appeared meanwhile; --force renames over it */
    if (force) {
        if (rename(p.part, p.final) != 0) {
            cli_error("cannot rename '%s' to '%s': %s", p.part, p.final, strerror(errno));
            goto restore;
        }
    } else if (link(p.part, p.final) == 0) {
        unlink(p.part);
    } else if (errno == EEXIST) {
        cli_error("'%s' already exists; pass --force to replace it ('%s' is kept)", p.final,
                  p.part);
        goto restore;
    } else if (rename(p.part, p.final) != 0) { /* a file system without hard links */
        cli_error("cannot rename '%s' to '%s': %s", p.part, p.final, strerror(errno));
        goto restore;
    }
    int dfd = open(p.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a crash */
        close(dfd);
    }
    printf("saved %s (%s, sha256 %s)\n", p.final, hsize(hs, sizeof hs, (double)p.have), got_hex);
    /* The file is a GGUF; say so now if kith cannot run it, rather than at the first run. */
    kith_model *m = NULL;
    if (kith_model_load(p.final, &m, gerr, sizeof gerr) != 0)
        fprintf(stderr, "kith: warning: 'kith ai run' cannot use it: %s\n", gerr);
    kith_model_free(m);
    ret = 0;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    cu.global_cleanup();
out:
    if (p.fd >= 0) {
        if (ret != 0 && ret != 130 && p.have == 0)
            unlink(p.part);
        close(p.fd);
    }
    return ret;
}
