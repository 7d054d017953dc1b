/*
 * Workspace lifetime: init (the .kith/ folder, identity, keys, config, the
 * store), open (found from a folder upwards), close; and the small helpers
 * the other ws files share: hex, paths inside the workspace, whole-file reads
 * and atomic writes, content hashes and the blob table.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ws/ws_int.h"

#define DEFAULT_BUSY_MS 10000

int64_t ws_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ws_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads exactly 2*@n hex digits into @out; KITH_ECORRUPT otherwise. */
int ws_unhex(uint8_t *out, const char *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return KITH_ECORRUPT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return KITH_OK;
}

void ws_blob_hash(uint8_t out[32], const void *data, size_t len)
{
    crypto_generichash(out, 32, data, len, NULL, 0);
}

/* A change's id: the same on every replica, from its author and number. */
void ws_change_hash(const uint8_t key[32], int64_t seq, char out[KITH_WS_ID_HEX + 1])
{
    uint8_t in[40], h[KITH_WS_ID_HEX / 2];
    memcpy(in, key, 32);
    for (int i = 0; i < 8; i++)
        in[32 + i] = (uint8_t)((uint64_t)seq >> (8 * i));
    crypto_generichash(h, sizeof h, in, sizeof in, NULL, 0);
    ws_hex(out, h, sizeof h);
}

const char *kith_ws_errmsg(const kith_ws *ws)
{
    return ws ? ws->err : "out of memory";
}
const char *kith_ws_root(const kith_ws *ws)
{
    return ws->root;
}
const char *kith_ws_device(const kith_ws *ws)
{
    return ws->device;
}
const char *kith_ws_user(const kith_ws *ws)
{
    return ws->user;
}
const char *kith_ws_id(const kith_ws *ws)
{
    return ws->wsid;
}
void kith_ws_set_busy_timeout(kith_ws *ws, int ms)
{
    ws->busy_ms = ms;
    if (ws->db)
        sqlite3_busy_timeout(ws->db, ms);
}

/* ---- files in .kith/ ------------------------------------------------------ */

/* Writes a small private file (mode 0600) that must not exist yet. */
static int write_private(kith_ws *ws, const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ws_error(ws, KITH_EIO, "%s: %s", path, strerror(errno));
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok)
        return ws_error(ws, saved == ENOSPC ? KITH_ENOSPC : KITH_EIO, "%s: %s", path,
                        strerror(saved));
    return KITH_OK;
}

static int read_small(kith_ws *ws, const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return ws_error(ws, errno == ENOENT ? KITH_ECORRUPT : KITH_EIO, "%s: %s", path,
                        strerror(errno));
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return KITH_OK;
}

/* The value of "key = value" in the config text, copied to @out. */
static bool config_value(const char *text, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncmp(line, key, klen))
            continue;
        const char *p = line + klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\r\n");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= cap)
            n = cap - 1;
        memcpy(out, p, n);
        out[n] = 0;
        return true;
    }
    return false;
}

static char *login_name(void)
{
    const char *u = getenv("KITH_USER");
    if (!u || !*u) {
        struct passwd *pw = getpwuid(getuid());
        u = pw && pw->pw_name && *pw->pw_name ? pw->pw_name : getenv("USER");
    }
    return kith_strndup(u && *u ? u : "someone", strlen(u && *u ? u : "someone"));
}

int kith_ws_config(kith_ws *ws, const char *key, char *out, size_t cap)
{
    char path[PATH_MAX + 64], buf[4096];
    ws->err[0] = 0;
    if (!cap)
        return KITH_EINVAL;
    out[0] = 0;
    snprintf(path, sizeof path, "%s/config", ws->kithdir);
    int rc = read_small(ws, path, buf, sizeof buf);
    if (rc)
        return rc;
    return config_value(buf, key, out, cap) ? KITH_OK : KITH_ENOTFOUND;
}

/* Loads identity, config and ids of an opened store into @ws. */
static int load_identity(kith_ws *ws)
{
    char path[PATH_MAX + 64], buf[1024];
    snprintf(path, sizeof path, "%s/identity", ws->kithdir);
    int rc = read_small(ws, path, buf, sizeof buf);
    if (rc)
        return rc;
    /* "ed25519 <64 hex public> <128 hex secret>" */
    uint8_t pk[32];
    if (strncmp(buf, "ed25519 ", 8) || ws_unhex(pk, buf + 8, 32))
        return ws_error(ws, KITH_ECORRUPT, "%s: not a kith identity file", path);
    ws_hex(ws->device, pk, 32);
    memcpy(ws->agent, ws->device, 32);
    ws->agent[32] = 0;

    snprintf(path, sizeof path, "%s/config", ws->kithdir);
    if ((rc = read_small(ws, path, buf, sizeof buf)))
        return rc;
    char name[256];
    ws->user = config_value(buf, "name", name, sizeof name) && *name
                   ? kith_strndup(name, strlen(name))
                   : login_name();
    if (!ws->user)
        return KITH_ENOMEM;
    return ws_meta_get(ws, "workspace", ws->wsid, sizeof ws->wsid);
}

/* The nearest folder at or above @start that holds .kith/store.db. */
static char *find_root(const char *start)
{
    char *dir = realpath(start, NULL);
    if (!dir)
        return NULL;
    for (;;) {
        char probe[PATH_MAX + 64];
        struct stat st;
        snprintf(probe, sizeof probe, "%s/.kith/store.db", dir);
        if (stat(probe, &st) == 0)
            return dir;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (dir[1] == 0) {
                free(dir);
                return NULL;
            }
            dir[1] = 0; /* try "/" itself last */
            continue;
        }
        *slash = 0;
    }
}

static kith_ws *ws_alloc(void)
{
    kith_ws *ws = kith_calloc(1, sizeof *ws);
    if (ws)
        ws->busy_ms = DEFAULT_BUSY_MS;
    return ws;
}

static int set_root(kith_ws *ws, const char *root)
{
    size_t n = strlen(root);
    ws->root = kith_strndup(root, n);
    ws->kithdir = kith_malloc(n + 7);
    if (!ws->root || !ws->kithdir)
        return KITH_ENOMEM;
    memcpy(ws->kithdir, root, n);
    memcpy(ws->kithdir + n, "/.kith", 7);
    return KITH_OK;
}

int kith_ws_open(const char *dir, kith_ws **out)
{
    kith_ws *ws = *out = ws_alloc();
    if (!ws)
        return KITH_ENOMEM;
    char *root = find_root(dir ? dir : ".");
    if (!root)
        return ws_error(ws, KITH_ENOTFOUND,
                        "not a kith workspace (no .kith/ here or in any parent folder of %s); "
                        "run 'kith init'",
                        dir ? dir : "the current folder");
    int rc = set_root(ws, root);
    free(root);
    if (rc)
        return rc;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/store.db", ws->kithdir);
    if ((rc = ws_store_open(ws, path)))
        return rc;
    return load_identity(ws);
}

static int make_dirs(kith_ws *ws, const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return ws_error(ws, KITH_EIO, "%s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return ws_error(ws, KITH_EIO, "%s: %s", buf, strerror(errno));
    return KITH_OK;
}

/* Writes identity, workspace key and config into the fresh folder @tmp. */
static int write_keys(kith_ws *ws, const char *tmp, const char *name)
{
    uint8_t pk[32], sk[64], wkey[32];
    char line[512], hpk[65], hsk[129], hkey[65];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(wkey, sizeof wkey);
    ws_hex(hpk, pk, 32);
    ws_hex(hsk, sk, 64);
    ws_hex(hkey, wkey, 32);
    sodium_memzero(sk, sizeof sk);
    snprintf(line, sizeof line, "ed25519 %s %s\n", hpk, hsk);
    int rc = write_private(ws, tmp, "identity", line);
    sodium_memzero(line, sizeof line);
    sodium_memzero(hsk, sizeof hsk);
    if (!rc) {
        snprintf(line, sizeof line, "xchacha20poly1305 epoch 0 %s\n", hkey);
        rc = write_private(ws, tmp, "workspace-key", line);
        sodium_memzero(line, sizeof line);
    }
    sodium_memzero(hkey, sizeof hkey);
    if (!rc) {
        snprintf(line, sizeof line,
                 "# kith workspace configuration (key = value)\n"
                 "name = %s\n",
                 name);
        rc = write_private(ws, tmp, "config", line);
    }
    return rc;
}

static int fill_store(kith_ws *ws, const char *tmp, const char *wsid)
{
    char path[PATH_MAX + 64];
    if (snprintf(path, sizeof path, "%s/store.db", tmp) >= (int)sizeof path)
        return ws_error(ws, KITH_ETOOBIG, "%s: path too long", tmp);
    int rc = ws_store_create(ws, path);
    if (rc)
        return rc;
    uint8_t id[16];
    char hex[33], now[32];
    randombytes_buf(id, sizeof id);
    ws_hex(hex, id, sizeof id);
    if (wsid)
        snprintf(hex, sizeof hex, "%s", wsid);
    snprintf(now, sizeof now, "%lld", (long long)ws_now_ms());
    if ((rc = ws_begin(ws)))
        return rc;
    rc = ws_meta_set(ws, "workspace", hex);
    if (!rc)
        rc = ws_meta_set(ws, "created_ms", now);
    if (!rc)
        rc = ws_commit_tx(ws);
    if (rc)
        ws_rollback(ws);
    sqlite3_close(ws->db);
    ws->db = NULL;
    return rc;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX + 300];
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int init_common(const char *dir, const char *name, const char *wsid, kith_ws **out)
{
    kith_ws *ws = *out = ws_alloc();
    if (!ws)
        return KITH_ENOMEM;
    uint8_t idbytes[16];
    if (wsid && (strlen(wsid) != 32 || ws_unhex(idbytes, wsid, 16)))
        return ws_error(ws, KITH_EINVAL, "a workspace id is 32 hex digits, not '%s'", wsid);
    const char *target = dir ? dir : ".";
    int rc = make_dirs(ws, target);
    if (rc)
        return rc;
    char *root = find_root(target);
    if (root) {
        rc = ws_error(ws, KITH_EEXIST, "%s is already inside the kith workspace %s", target, root);
        free(root);
        return rc;
    }
    if (!(root = realpath(target, NULL)))
        return ws_error(ws, KITH_EIO, "%s: %s", target, strerror(errno));
    /* Everything is made in a temporary folder renamed into place at the
     * end: an init that fails halfway leaves no half workspace behind. */
    char tmp[PATH_MAX + 64], final[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s/.kith-init.%d", root, (int)getpid());
    snprintf(final, sizeof final, "%s/.kith", root);
    char *user = name && *name ? kith_strndup(name, strlen(name)) : login_name();
    if (!user) {
        free(root);
        return KITH_ENOMEM;
    }
    if (mkdir(tmp, 0700)) {
        rc = ws_error(ws, KITH_EIO, "%s: %s", tmp, strerror(errno));
    } else {
        rc = sodium_init() < 0 ? ws_error(ws, KITH_EIO, "libsodium failed to initialise") : 0;
        if (!rc)
            rc = write_keys(ws, tmp, user);
        if (!rc)
            rc = fill_store(ws, tmp, wsid);
        if (!rc && rename(tmp, final))
            rc = ws_error(ws, errno == EEXIST || errno == ENOTEMPTY ? KITH_EEXIST : KITH_EIO,
                          "%s: %s", final, strerror(errno));
        if (rc)
            remove_tree(tmp);
    }
    kith_free(user);
    if (rc) {
        free(root);
        return rc;
    }
    rc = set_root(ws, root);
    free(root);
    if (rc)
        return rc;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/store.db", ws->kithdir);
    if ((rc = ws_store_open(ws, path)))
        return rc;
    return load_identity(ws);
}

int kith_ws_init(const char *dir, const char *name, kith_ws **out)
{
    return init_common(dir, name, NULL, out);
}

int kith_ws_init_as(const char *dir, const char *name, const char *wsid, kith_ws **out)
{
    return init_common(dir, name, wsid, out);
}

void kith_ws_close(kith_ws *ws)
{
    if (!ws)
        return;
    if (ws->db) {
        ws_rollback(ws);
        sqlite3_close(ws->db);
    }
    ws_docs_free(ws);
    for (size_t i = 0; i < ws->npend; i++)
        kith_free(ws->pend[i].text);
    kith_free(ws->pend);
    kith_free(ws->auth_cache);
    ws_orphans_check(ws, true);
    ws_overwrite_clear(ws);
    kith_free(ws->root);
    kith_free(ws->kithdir);
    kith_free(ws->user);
    kith_free(ws);
}

/* ---- paths and files ---------------------------------------------------------- */

/* Turns a user's path argument (relative to the current folder, or absolute)
 * into a workspace-relative one, lexically, so that it works for files that
 * no longer exist. Refuses paths outside the workspace and inside .kith/. */
int ws_path_check(kith_ws *ws, const char *arg, char **rel)
{
    char abs[PATH_MAX * 2];
    if (arg[0] == '/') {
        snprintf(abs, sizeof abs, "%s", arg);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return ws_error(ws, KITH_EIO, "getcwd: %s", strerror(errno));
        snprintf(abs, sizeof abs, "%s/%s", cwd, arg);
    }
    /* Normalise ".", ".." and repeated slashes in place. */
    char *segs[PATH_MAX / 2];
    size_t n = 0;
    for (char *save = NULL, *s = strtok_r(abs, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (!strcmp(s, "."))
            continue;
        if (!strcmp(s, "..")) {
            if (n)
                n--;
            continue;
        }
        if (n < sizeof segs / sizeof segs[0])
            segs[n++] = s;
    }
    char norm[PATH_MAX * 2] = "";
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(norm + off, sizeof norm - off, "/%s", segs[i]);
    size_t rl = strlen(ws->root);
    if (strncmp(norm, ws->root, rl) || norm[rl] != '/' || !norm[rl + 1])
        return ws_error(ws, KITH_EINVAL, "%s: path is outside the workspace %s", arg, ws->root);
    const char *r = norm + rl + 1;
    if (!strcmp(r, ".kith") || !strncmp(r, ".kith/", 6))
        return ws_error(ws, KITH_EINVAL, "%s: kith's own folder holds no documents", arg);
    *rel = kith_strndup(r, strlen(r));
    return *rel ? KITH_OK : KITH_ENOMEM;
}

static int errno_rc(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return KITH_ENOTFOUND;
    case EACCES:
    case EPERM:
        return KITH_EPERM;
    case ENOSPC:
    case EDQUOT:
        return KITH_ENOSPC;
    case ENOMEM:
        return KITH_ENOMEM;
    default:
        return KITH_EIO;
    }
}

/* Reads the whole file @rel; @st (may be NULL) gets its stat as read. */
int ws_read_file(kith_ws *ws, const char *rel, char **out, size_t *len, struct stat *st)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", ws->root, rel);
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ws_error(ws, errno_rc(errno), "%s: %s", rel, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        close(fd);
        return ws_error(ws, KITH_EIO, "%s: %s", rel, strerror(errno));
    }
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = kith_malloc(cap);
    if (!buf) {
        close(fd);
        return ws_error(ws, KITH_ENOMEM, "%s: out of memory", rel);
    }
    for (;;) {
        if (n + 1 >= cap) { /* the file grew while we read it */
            if (kith_grow((void **)&buf, &cap, cap * 2, 1)) {
                kith_free(buf);
                close(fd);
                return KITH_ENOMEM;
            }
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            int e = errno;
            kith_free(buf);
            close(fd);
            return ws_error(ws, errno_rc(e), "%s: %s", rel, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    if (st)
        *st = sb;
    *out = buf;
    *len = n;
    return KITH_OK;
}

/* Writes @data into a new temporary file beside @rel (folders made as
 * needed; the mode of the file it will replace), fsync'd. *tmp is its
 * absolute path (caller frees); @st (may be NULL) gets its stat, which the
 * file keeps once renamed into place. */
int ws_write_tmp(kith_ws *ws, const char *rel, const char *data, size_t len, struct stat *st,
                 char **tmp)
{
    char path[PATH_MAX * 2], t[PATH_MAX * 2 + 64];
    *tmp = NULL;
    snprintf(path, sizeof path, "%s/%s", ws->root, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    int rc = make_dirs(ws, path);
    *slash = '/';
    if (rc)
        return rc;
    uint8_t r[6];
    char rh[13];
    randombytes_buf(r, sizeof r);
    ws_hex(rh, r, sizeof r);
    snprintf(t, sizeof t, "%.*s/.%s.kith-tmp%s", (int)(slash - path), path, slash + 1, rh);
    struct stat old;
    mode_t mode = stat(path, &old) == 0 ? (old.st_mode & 07777) : 0666;
    int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return ws_error(ws, errno_rc(errno), "%s: %s", rel, strerror(errno));
    if (mode != 0666)
        fchmod(fd, mode); /* the umask must not narrow an existing file's mode */
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    int e = off == len && fsync(fd) == 0 ? 0 : errno;
    if (!e && st && fstat(fd, st))
        e = errno;
    close(fd);
    if (e || !(*tmp = kith_strndup(t, strlen(t)))) {
        unlink(t);
        return e ? ws_error(ws, errno_rc(e), "%s: %s", rel, strerror(e)) : KITH_ENOMEM;
    }
    return KITH_OK;
}

/* Replaces @rel with @data atomically (temporary file, fsync, rename). @st
 * (may be NULL) gets the new file's stat. */
int ws_write_file(kith_ws *ws, const char *rel, const char *data, size_t len, struct stat *st)
{
    char *tmp = NULL, path[PATH_MAX * 2];
    int rc = ws_write_tmp(ws, rel, data, len, st, &tmp);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s", ws->root, rel);
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        rc = ws_error(ws, errno_rc(e), "%s: %s", rel, strerror(e));
    }
    kith_free(tmp);
    return rc;
}

int ws_blob_put(kith_ws *ws, const uint8_t hash[32], const void *data, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = ws_prepare(ws, &st, "INSERT OR IGNORE INTO blobs(hash, size, data) VALUES(?, ?, ?)");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
    sqlite3_bind_blob64(st, 3, data ? data : "", len, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = ws_sqlerr(ws, src, "storing a file version");
    sqlite3_finalize(st);
    return rc;
}

int ws_blob_get(kith_ws *ws, const uint8_t hash[32], char **out, size_t *len)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *len = 0;
    int rc = ws_prepare(ws, &st, "SELECT data FROM blobs WHERE hash=?");
    if (rc)
        return rc;
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        char *buf = kith_malloc(n + 1);
        if (!buf) {
            rc = KITH_ENOMEM;
        } else {
            if (n)
                memcpy(buf, p, n);
            buf[n] = 0;
            *out = buf;
            *len = n;
        }
    } else if (src == SQLITE_DONE) {
        rc = ws_error(ws, KITH_ECORRUPT, "a recorded file version is missing from the store");
    } else {
        rc = ws_sqlerr(ws, src, "reading a file version");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Git's rule: a NUL in the first 8000 bytes means binary. */
bool ws_looks_text(const char *p, size_t len)
{
    return memchr(p, 0, len < 8000 ? len : 8000) == NULL;
}

/* ---- keys ------------------------------------------------------------------------ */

int kith_ws_device_keys(kith_ws *ws, uint8_t pk[32], uint8_t sk[64])
{
    char path[PATH_MAX + 64], buf[512];
    snprintf(path, sizeof path, "%s/identity", ws->kithdir);
    int rc = read_small(ws, path, buf, sizeof buf);
    if (rc)
        return rc;
    /* "ed25519 <64 hex public> <128 hex secret>" */
    if (strncmp(buf, "ed25519 ", 8) || strlen(buf) < 8 + 64 + 1 + 128 || buf[72] != ' ' ||
        ws_unhex(pk, buf + 8, 32) || ws_unhex(sk, buf + 73, 64) || memcmp(sk + 32, pk, 32))
        rc = ws_error(ws, KITH_ECORRUPT, "%s: not a kith identity file", path);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int kith_ws_workspace_key(kith_ws *ws, uint32_t *epoch, uint8_t key[32])
{
    char path[PATH_MAX + 64], buf[256];
    snprintf(path, sizeof path, "%s/workspace-key", ws->kithdir);
    int rc = read_small(ws, path, buf, sizeof buf);
    if (rc)
        return rc;
    unsigned long e = 0;
    int used = 0;
    if (sscanf(buf, "xchacha20poly1305 epoch %lu %n", &e, &used) != 1 || !used || e > UINT32_MAX ||
        strlen(buf + used) < 64 || ws_unhex(key, buf + used, 32))
        rc = ws_error(ws, KITH_ECORRUPT, "%s: not a kith workspace key file", path);
    *epoch = (uint32_t)e;
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int kith_ws_set_workspace_key(kith_ws *ws, uint32_t epoch, const uint8_t key[32])
{
    char tmpname[64], final[PATH_MAX + 64], tmp[PATH_MAX + 128], line[256], hex[65];
    uint8_t r[6];
    char rh[13];
    randombytes_buf(r, sizeof r);
    ws_hex(rh, r, sizeof r);
    snprintf(tmpname, sizeof tmpname, "workspace-key.%s", rh);
    snprintf(tmp, sizeof tmp, "%s/%s", ws->kithdir, tmpname);
    snprintf(final, sizeof final, "%s/workspace-key", ws->kithdir);
    ws_hex(hex, key, 32);
    snprintf(line, sizeof line, "xchacha20poly1305 epoch %lu %s\n", (unsigned long)epoch, hex);
    int rc = write_private(ws, ws->kithdir, tmpname, line);
    sodium_memzero(line, sizeof line);
    sodium_memzero(hex, sizeof hex);
    if (!rc && rename(tmp, final))
        rc = ws_error(ws, KITH_EIO, "%s: %s", final, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}
