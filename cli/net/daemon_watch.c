/*
 * The daemon's folder watcher. inotify (libuv's uv_fs_event on Linux) is not
 * recursive: each folder needs its own watch. Watches are added as folders
 * appear (a create or move-in event in a watched folder) and dropped as they
 * go, and a new folder is read after its watch exists, so a file created in
 * it between the two is seen either by the read or by an event.
 *
 * The watcher decides nothing about what a change is: it only says "look
 * now", and kith_ws_scan, which stats every file and reads only the changed
 * ones, finds what changed. So a spurious event costs one cheap scan, and
 * the only events dropped are those that would loop: kith's own temporary
 * files (a remote change is written to ".NAME.kith-tmp..." and renamed) and
 * the workspace's state in .kith/, which is never watched.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/net/daemon_int.h"

struct wdir {
    uv_fs_event_t h;
    struct dwatch *w;
    struct wdir *next; /* hash chain */
    char *rel;         /* "" for the root, else "a/b" */
};

struct dwatch {
    uv_loop_t *loop;
    char *root;
    void (*on_change)(void *ud);
    void *ud;
    struct wdir **tab; /* hash of rel -> wdir, chained */
    size_t cap, n;
    size_t handles; /* open libuv handles, including closing ones */
    int degraded;
    int stopping;
};

/* Folders never watched: the workspace's own state and version control,
 * which the scan ignores too (src/ws/ignore.c's defaults). */
static int ignored_dir(const char *name)
{
    return !strcmp(name, ".kith") || !strcmp(name, ".git") || !strcmp(name, ".hg") ||
           !strcmp(name, ".svn");
}

int dwatch_ignored_name(const char *name)
{
    /* ".NAME.kith-tmpXXXX": the temporary file of an atomic write by kith. */
    if (name[0] == '.' && strstr(name, ".kith-tmp"))
        return 1;
    return ignored_dir(name);
}

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static struct wdir **slot(dwatch *w, const char *rel)
{
    struct wdir **p = &w->tab[hash_str(rel) & (w->cap - 1)];
    while (*p && strcmp((*p)->rel, rel))
        p = &(*p)->next;
    return p;
}

static int grow(dwatch *w)
{
    size_t ncap = w->cap ? w->cap * 2 : 64;
    struct wdir **nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < w->cap; i++) {
        struct wdir *d = w->tab[i];
        while (d) {
            struct wdir *next = d->next;
            size_t b = hash_str(d->rel) & (ncap - 1);
            d->next = nt[b];
            nt[b] = d;
            d = next;
        }
    }
    free(w->tab);
    w->tab = nt;
    w->cap = ncap;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct wdir *d = h->data;
    dwatch *w = d->w;
    free(d->rel);
    free(d);
    if (--w->handles == 0 && w->stopping) {
        free(w->tab);
        free(w->root);
        free(w);
    }
}

static void unlink_and_close(dwatch *w, struct wdir **p)
{
    struct wdir *d = *p;
    *p = d->next;
    w->n--;
    uv_close((uv_handle_t *)&d->h, on_closed);
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    size_t o = la;
    if (la && lb)
        s[o++] = '/';
    memcpy(s + o, b, lb + 1);
    return s;
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status);

static void report(dwatch *w, const char *rel, int rc)
{
    const char *name = rel[0] ? rel : ".";
    if (rc == UV_ENOENT || rc == UV_ENOTDIR) /* gone again already: nothing to watch */
        return;
    if (rc != UV_ENOSPC) {
        dlog(KITH_LOG_WARN, "watch: cannot watch '%s': %s", name, uv_strerror(rc));
        return;
    }
    if (!w->degraded)
        dlog(KITH_LOG_WARN,
             "watch: the kernel's inotify limit is reached at '%s' (raise "
             "fs.inotify.max_user_watches); scanning every 2 s instead",
             name);
    w->degraded = 1;
}

/* Starts a watch on @rel. 1: added, 0: already watched or gone, -1: error. */
static int watch_one(dwatch *w, const char *rel)
{
    if ((w->n + 1) * 4 > w->cap * 3 && grow(w))
        return -1;
    struct wdir **p = slot(w, rel);
    if (*p)
        return 0;
    struct wdir *d = calloc(1, sizeof *d);
    char *abs = join(w->root, rel);
    if (!d || !abs || !(d->rel = strdup(rel)))
        goto fail_alloc;
    d->w = w;
    int rc = uv_fs_event_init(w->loop, &d->h);
    if (rc)
        goto fail_alloc;
    d->h.data = d;
    w->handles++;
    rc = uv_fs_event_start(&d->h, on_event, abs, 0);
    free(abs);
    if (rc) {
        report(w, rel, rc);
        uv_close((uv_handle_t *)&d->h, on_closed);
        return rc == UV_ENOENT || rc == UV_ENOTDIR ? 0 : -1;
    }
    *p = d;
    w->n++;
    return 1;
fail_alloc:
    free(abs);
    if (d)
        free(d->rel);
    free(d);
    return -1;
}

/* The sub-folders of @rel, as a NULL-terminated array (caller frees). */
static char **subdirs(dwatch *w, const char *rel)
{
    char *abs = join(w->root, rel);
    DIR *dir = abs ? opendir(abs) : NULL;
    char **v = calloc(1, sizeof *v);
    size_t n = 0;
    struct dirent *e;
    while (dir && v && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || ignored_dir(e->d_name))
            continue;
        int is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) { /* some file systems do not fill d_type */
            struct stat st;
            char *p = join(abs, e->d_name);
            is_dir = p && !lstat(p, &st) && S_ISDIR(st.st_mode);
            free(p);
        }
        if (!is_dir)
            continue;
        char **nv = realloc(v, (n + 2) * sizeof *v);
        char *child = nv ? join(rel, e->d_name) : NULL;
        if (!nv || !child) {
            free(child);
            v = nv ? nv : v;
            break;
        }
        v = nv;
        v[n++] = child;
        v[n] = NULL;
    }
    if (dir)
        closedir(dir);
    free(abs);
    return v;
}

/* Watches @rel and everything below it. The folder's entries are read after
 * its watch is in place; folders are read one level at a time (a queue), so
 * a deep tree does not hold a directory stream open per level. */
static void watch_tree(dwatch *w, const char *rel)
{
    char **queue = malloc(sizeof *queue);
    size_t head = 0, tail = 0, cap = 1;
    char *first = queue ? strdup(rel) : NULL;
    if (!first) {
        free(queue);
        return;
    }
    queue[tail++] = first;
    while (head < tail) {
        char *cur = queue[head++];
        char **kids = watch_one(w, cur) == 1 ? subdirs(w, cur) : NULL;
        for (size_t i = 0; kids && kids[i]; i++) {
            if (tail == cap) {
                char **nq = realloc(queue, cap * 2 * sizeof *queue);
                if (!nq) {
                    free(kids[i]);
                    continue;
                }
                queue = nq;
                cap *= 2;
            }
            queue[tail++] = kids[i];
        }
        free(kids);
        free(cur);
    }
    free(queue);
}

/* Drops the watches of @rel and of every folder below it (it was removed or
 * moved away; if moved within the workspace, its new name gets new ones). */
static void unwatch_tree(dwatch *w, const char *rel)
{
    size_t len = strlen(rel);
    for (size_t i = 0; i < w->cap; i++) {
        struct wdir **p = &w->tab[i];
        while (*p) {
            const char *r = (*p)->rel;
            if (!strncmp(r, rel, len) && (r[len] == 0 || r[len] == '/'))
                unlink_and_close(w, p);
            else
                p = &(*p)->next;
        }
    }
}

/* A name in a watched folder was created, removed or moved: follow folders. */
static void follow(dwatch *w, struct wdir *d, const char *name)
{
    if (ignored_dir(name))
        return;
    char *rel = join(d->rel, name);
    char *abs = rel ? join(w->root, rel) : NULL;
    struct stat st;
    if (abs && !lstat(abs, &st) && S_ISDIR(st.st_mode)) {
        if (!*slot(w, rel))
            watch_tree(w, rel);
    } else if (rel) {
        unwatch_tree(w, rel);
    }
    free(abs);
    free(rel);
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct wdir *d = h->data;
    dwatch *w = d->w;
    if (w->stopping)
        return;
    if (status < 0) {
        dlog(KITH_LOG_WARN, "watch: '%s': %s", d->rel[0] ? d->rel : ".", uv_strerror(status));
    } else if (filename) {
        if (dwatch_ignored_name(filename))
            return;
        if (events & UV_RENAME) /* inotify's create, delete and move all come as rename */
            follow(w, d, filename);
    }
    w->on_change(w->ud);
}

int dwatch_start(uv_loop_t *loop, const char *root, void (*on_change)(void *ud), void *ud,
                 dwatch **out)
{
    dwatch *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w || !(w->root = strdup(root)) || grow(w)) {
        if (w)
            free(w->root);
        free(w);
        return UV_ENOMEM;
    }
    w->loop = loop;
    w->on_change = on_change;
    w->ud = ud;
    watch_tree(w, "");
    if (!*slot(w, "")) {
        dwatch_stop(w);
        return UV_EIO;
    }
    *out = w;
    return 0;
}

size_t dwatch_count(const dwatch *w)
{
    return w->n;
}

int dwatch_degraded(const dwatch *w)
{
    return w->degraded;
}

void dwatch_stop(dwatch *w)
{
    if (!w)
        return;
    w->stopping = 1;
    for (size_t i = 0; i < w->cap; i++)
        while (w->tab[i])
            unlink_and_close(w, &w->tab[i]);
    if (w->handles == 0) {
        free(w->tab);
        free(w->root);
        free(w);
    }
}
