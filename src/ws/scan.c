/*
 * The scan: walks the folder, compares every file's stat with what was
 * recorded, reads only the files whose size, mtime, inode or device changed,
 * and records the differences as one change: edits (a character diff),
 * additions, renames (by inode or by identical content) and deletions.
 * Files it cannot read, and folders it cannot list, are left as recorded
 * with a warning: a permission error must never look like a deletion.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ws/ignore.h"
#include "ws/textdiff.h"
#include "ws/ws_int.h"

/* A file's mtime closer than this to the scan's start may still change
 * within the file system's timestamp granularity: it is recorded with
 * mtime 0 so that the next scan reads it again (git's "racy" entries). */
#define RACY_NS 2000000000ll

typedef struct found {
    char *path;
    struct stat st;
} found;

typedef struct walk {
    kith_ws *ws;
    ws_ignore *ig;
    ws_change *c;
    found *list;
    size_t n, cap;
    int64_t start_ns;
    char path[PATH_MAX];
} walk;

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
}

static bool stat_same(const ws_doc *d, const struct stat *st)
{
    return d->mtime_ns != 0 && d->mtime_ns == mtime_ns(st) && d->size == (int64_t)st->st_size &&
           d->ino == (int64_t)st->st_ino && d->dev == (int64_t)st->st_dev;
}

static void stat_take(walk *w, ws_doc *d, const struct stat *st)
{
    int64_t m = mtime_ns(st);
    d->mtime_ns = w->start_ns - m < RACY_NS ? 0 : m;
    d->size = (int64_t)st->st_size;
    d->ino = (int64_t)st->st_ino;
    d->dev = (int64_t)st->st_dev;
}

/* Marks every live document under folder @prefix as seen: used when a
 * folder cannot be listed, so that its files are not taken as deleted. */
static void keep_under(kith_ws *ws, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (!d->deleted && !strncmp(d->path, prefix, n) && d->path[n] == '/')
            d->seen = true;
    }
}

static int add_found(walk *w, const char *path, const struct stat *st)
{
    if (kith_grow((void **)&w->list, &w->cap, w->n + 1, sizeof *w->list))
        return KITH_ENOMEM;
    char *p = kith_strndup(path, strlen(path));
    if (!p)
        return KITH_ENOMEM;
    w->list[w->n].path = p;
    w->list[w->n].st = *st;
    w->n++;
    return KITH_OK;
}

static int read_ignore_file(walk *w, int dirfd, const char *base)
{
    int fd = openat(dirfd, ".kithignore", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return KITH_OK;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0)
        return KITH_OK;
    return ws_ignore_add(w->ig, base, buf, (size_t)n);
}

static int walk_dir(walk *w, int dirfd, size_t plen);

static int visit(walk *w, int dirfd, const char *name, size_t plen)
{
    size_t nlen = strlen(name);
    if (plen + nlen + 2 >= sizeof w->path)
        return ws_change_warn(w->c, w->path, "path too long; skipped");
    memcpy(w->path + plen, name, nlen + 1);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT) /* vanished: the next scan sees the deletion */
            return KITH_OK;
        return ws_change_warn(w->c, w->path, "cannot stat: %s", strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        if (ws_ignore_match(w->ig, w->path, true))
            return KITH_OK;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            keep_under(w->ws, w->path);
            return ws_change_warn(w->c, w->path,
                                  "cannot open folder: %s; its files are left as recorded",
                                  strerror(errno));
        }
        w->path[plen + nlen] = '/';
        w->path[plen + nlen + 1] = 0;
        return walk_dir(w, fd, plen + nlen + 1);
    }
    if (!S_ISREG(st.st_mode)) /* symlinks, sockets, fifos: not documents */
        return KITH_OK;
    if (ws_ignore_match(w->ig, w->path, false))
        return KITH_OK;
    ws_doc *d = ws_doc_by_path(w->ws, w->path);
    if (d) {
        d->seen = true;
        if (stat_same(d, &st))
            return KITH_OK;
    }
    return add_found(w, w->path, &st);
}

/* Walks the folder open as @dirfd (taken over and closed), whose
 * workspace-relative path with a trailing '/' is w->path[0..plen). */
static int walk_dir(walk *w, int dirfd, size_t plen)
{
    char base[PATH_MAX];
    memcpy(base, w->path, plen);
    base[plen ? plen - 1 : 0] = 0;
    int rc = read_ignore_file(w, dirfd, base);
    DIR *dir = rc ? NULL : fdopendir(dirfd);
    if (!dir) {
        close(dirfd);
        return rc ? rc : ws_change_warn(w->c, base, "cannot list folder: %s", strerror(errno));
    }
    struct dirent *e;
    while (!rc && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (plen == 0 && !strcmp(e->d_name, ".kith"))
            continue;
        rc = visit(w, dirfd, e->d_name, plen);
        w->path[plen] = 0;
    }
    closedir(dir);
    return rc;
}

static int cmp_found(const void *a, const void *b)
{
    return strcmp(((const found *)a)->path, ((const found *)b)->path);
}

static void new_uuid(kith_ws *ws, const char *path, uint8_t out[16])
{
    /* The first document at a path gets an id derived from the path, so
     * that two replicas that create the same file while apart merge it
     * into one document instead of two. Later ones get random ids. */
    crypto_generichash(out, 16, (const uint8_t *)path, strlen(path), (const uint8_t *)ws->wsid,
                       strlen(ws->wsid));
    if (ws_doc_by_uuid(ws, out))
        randombytes_buf(out, 16);
}

/* Whether @data is close enough to @d's recorded text to be the same
 * document: file systems reuse a deleted file's inode for the next new
 * one, so an inode alone does not make a move. Binary files: the inode. */
static bool similar(kith_ws *ws, ws_doc *d, const char *data, size_t len)
{
    kith_doc *doc = NULL;
    char *text = NULL;
    size_t tlen = 0, n = 0;
    kith_patch *p = NULL;
    if (d->kind != WS_TEXT || kith_utf8_count(data, len) < 0)
        return true;
    if (ws_doc_crdt(ws, d, &doc) || kith_doc_text(doc, &text, &tlen))
        return false;
    bool same = false;
    if (!ws_text_diff(text, tlen, data, len, &p, &n)) {
        size_t del = 0, kept;
        for (size_t i = 0; i < n; i++)
            del += p[i].del;
        long cps = kith_utf8_count(text, tlen);
        kept = cps > 0 && (size_t)cps > del ? (size_t)cps - del : 0;
        /* Half the old text is still there; for a short text, where
         * unrelated words share letters, four fifths. */
        same = tlen == 0 || (cps < 32 ? kept * 5 >= (size_t)cps * 4 : kept * 2 >= (size_t)cps);
    }
    kith_free(p);
    kith_free(text);
    return same;
}

/* A missing document that @f is a move of: same inode (and similar text),
 * or same content. */
static ws_doc *find_moved(walk *w, const found *f, const char *data, size_t len)
{
    kith_ws *ws = w->ws;
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->deleted || d->seen)
            continue;
        if (d->ino == (int64_t)f->st.st_ino && d->dev == (int64_t)f->st.st_dev && d->ino &&
            similar(ws, d, data, len))
            return d;
    }
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->deleted || d->seen || d->size != (int64_t)len)
            continue;
        if (d->kind == WS_BINARY) {
            uint8_t h[32];
            ws_blob_hash(h, data, len);
            if (!memcmp(h, d->blob, 32))
                return d;
            continue;
        }
        kith_doc *doc = NULL;
        char *text = NULL;
        size_t tlen = 0;
        if (ws_doc_crdt(ws, d, &doc) || kith_doc_text(doc, &text, &tlen))
            continue;
        bool same = tlen == len && !memcmp(text, data, len);
        kith_free(text);
        if (same)
            return d;
    }
    return NULL;
}

typedef enum { AS_TEXT, AS_BINARY, AS_NOT_UTF8 } taken_as;

static taken_as classify(const char *data, size_t len)
{
    if (len > KITH_WS_TEXT_MAX || !ws_looks_text(data, len))
        return AS_BINARY;
    return kith_utf8_count(data, len) < 0 ? AS_NOT_UTF8 : AS_TEXT;
}

static int record_content(walk *w, ws_doc *d, int what, const char *old_path, taken_as as,
                          const char *data, size_t len)
{
    if (as == AS_TEXT) {
        d->kind = WS_TEXT;
        return ws_change_text(w->c, d, what, old_path, data, len);
    }
    size_t before = ws_change_files(w->c);
    int rc = ws_change_binary(w->c, d, what, old_path, (const uint8_t *)data, len);
    /* Text that is not UTF-8 is kept whole; say so when a version of it
     * is recorded (not on every look at an unchanged file). */
    if (!rc && as == AS_NOT_UTF8 && ws_change_files(w->c) > before)
        rc =
            ws_change_warn(w->c, d->path, "not UTF-8 text; kept as a binary file (whole versions)");
    return rc;
}

static int stale_save(walk *w, ws_doc *d, char *base, const char *data, size_t len);

static int take_found(walk *w, found *f)
{
    kith_ws *ws = w->ws;
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    int rc = ws_read_file(ws, f->path, &data, &len, &st);
    ws_doc *d = ws_doc_by_path(ws, f->path);
    if (rc) {
        if (rc == KITH_ENOMEM)
            return rc;
        /* Vanished or unreadable: leave what was recorded alone. */
        return ws_change_warn(w->c, f->path, "%s; left as recorded", ws->err);
    }
    taken_as as = classify(data, len);
    char *over = d && as == AS_TEXT && d->kind == WS_TEXT ? ws_overwrite_take(ws, d->id) : NULL;
    if (d && over) {
        stat_take(w, d, &st);
        rc = stale_save(w, d, over, data, len);
    } else if (d) {
        stat_take(w, d, &st);
        rc = record_content(w, d, KITH_WS_MODIFIED, NULL, as, data, len);
    } else if ((d = find_moved(w, f, data, len))) {
        char *old = kith_strndup(d->path, strlen(d->path));
        rc = old ? ws_doc_set_path(ws, d, f->path, false) : KITH_ENOMEM;
        d->seen = true;
        stat_take(w, d, &st);
        if (!rc)
            rc = record_content(w, d, KITH_WS_RENAMED, old, as, data, len);
        kith_free(old);
    } else {
        d = kith_calloc(1, sizeof *d);
        if (!d || !(d->path = kith_strndup(f->path, strlen(f->path)))) {
            kith_free(d);
            kith_free(data);
            return KITH_ENOMEM;
        }
        new_uuid(ws, f->path, d->uuid);
        d->seen = true;
        d->kind = as == AS_TEXT ? WS_TEXT : WS_BINARY;
        stat_take(w, d, &st);
        rc = ws_doc_add(ws, d);
        if (!rc)
            rc = record_content(w, d, KITH_WS_ADDED, NULL, as, data, len);
    }
    kith_free(data);
    return rc;
}

static int record_deletions(walk *w)
{
    kith_ws *ws = w->ws;
    for (size_t i = 0; i < ws->ndocs; i++) {
        ws_doc *d = ws->docs[i];
        if (d->deleted || d->seen)
            continue;
        int rc = ws_doc_set_path(ws, d, d->path, true);
        d->size = d->mtime_ns = d->ino = d->dev = 0;
        if (!rc)
            rc = ws_change_meta(w->c, d, KITH_WS_DELETED, NULL);
        if (rc)
            return rc;
    }
    return KITH_OK;
}

/* The scan proper, inside a transaction the caller has begun; leaves the
 * change committed (or the transaction for the caller to roll back). */
int ws_scan_locked(kith_ws *ws, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    walk w = {.ws = ws};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w.start_ns = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
    int rc = ws_writes_finish(ws, false); /* what an interrupted import left */
    if (!rc)
        rc = ws_docs_load(ws);
    if (!rc)
        rc = ws_ignore_new(&w.ig);
    if (!rc)
        rc = ws_change_begin(ws, &w.c, NULL);
    for (size_t i = 0; !rc && i < ws->ndocs; i++)
        ws->docs[i]->seen = ws->docs[i]->kind == WS_NOTE; /* never in the folder */
    if (!rc) {
        int fd = open(ws->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0 ? ws_error(ws, KITH_EIO, "%s: %s", ws->root, strerror(errno))
                    : walk_dir(&w, fd, 0);
    }
    if (!rc && w.n > 1)
        qsort(w.list, w.n, sizeof *w.list, cmp_found);
    /* Files at known paths first, so that a move's old path is not taken
     * as the target of another move. */
    for (size_t i = 0; !rc && i < w.n; i++)
        if (ws_doc_by_path(ws, w.list[i].path))
            rc = take_found(&w, &w.list[i]);
    for (size_t i = 0; !rc && i < w.n; i++)
        if (!ws_doc_by_path(ws, w.list[i].path))
            rc = take_found(&w, &w.list[i]);
    if (!rc)
        rc = record_deletions(&w);
    if (!rc)
        rc = ws_change_finish(w.c, cb, ctx, res);
    for (size_t i = 0; i < w.n; i++)
        kith_free(w.list[i].path);
    kith_free(w.list);
    ws_change_free(w.c);
    ws_ignore_free(w.ig);
    return rc;
}

int kith_ws_scan(kith_ws *ws, kith_ws_file_cb cb, void *ctx, kith_ws_result *res)
{
    memset(res, 0, sizeof *res);
    ws->err[0] = 0;
    /* A merge whose files a crash left unwritten is finished first, outside
     * the scan's transaction: a file the user saved over meanwhile is then
     * an edit made at the version it held, merged, not a rewrite of the
     * merged text that would drop what arrived. So is what a writer put
     * into a file this process replaced. */
    ws_orphans_check(ws, false);
    int rc = ws_writes_finish(ws, true);
    if (!rc)
        rc = ws_begin(ws);
    if (rc)
        return rc;
    rc = ws_scan_locked(ws, cb, ctx, res);
    if (rc) {
        ws_rollback(ws);
        ws_docs_forget_crdt(ws);
        size_t n = strlen(ws->err);
        if (!strstr(ws->err, "nothing was recorded"))
            snprintf(ws->err + n, sizeof ws->err - n, "; nothing was recorded");
        return rc;
    }
    /* A stale save's merge staged by the scan goes in place; what fails
     * here stays in the journal for the next scan. */
    if (ws_writes_finish(ws, true))
        kith_log(KITH_LOG_WARN, "%s", ws->err);
    return KITH_OK;
}

/* ---- saves from a buffer read before a merge replaced the file ------------------------- */

/*
 * An editor that read a file, then saw kith replace it with a merge (or
 * did not see it: sed -i, an editor without auto-reload), writes back its
 * buffer: the old text with the user's edit, without what the merge
 * brought. Recorded as an edit of the merged text, that save would delete
 * what arrived. So kith remembers, per file it replaced, the version the
 * file held before; the next scan that finds the file changed takes the
 * save as an edit at that version when it is closer to it than to the
 * merged text (fewer code points differ), and the CRDT keeps both. A user
 * who deliberately deleted exactly what arrived gets it back: text is
 * never lost, a deletion may have to be made again.
 */
void ws_overwrite_note(kith_ws *ws, int64_t doc, const char *base)
{
    for (size_t i = 0; i < ws->nover; i++)
        if (ws->over[i].doc == doc)
            return; /* the oldest is what a stale buffer holds */
    char *b = kith_strndup(base, strlen(base));
    if (!b || kith_grow((void **)&ws->over, &ws->capover, ws->nover + 1, sizeof *ws->over)) {
        kith_free(b);
        return; /* only a guess is lost */
    }
    ws->over[ws->nover++] = (struct ws_overwrite){doc, b};
}

/* The version @doc's file held before this process replaced it, or NULL;
 * the caller frees it, and it is forgotten. */
char *ws_overwrite_take(kith_ws *ws, int64_t doc)
{
    for (size_t i = 0; i < ws->nover; i++)
        if (ws->over[i].doc == doc) {
            char *b = ws->over[i].base;
            ws->over[i] = ws->over[--ws->nover];
            return b;
        }
    return NULL;
}

void ws_overwrite_clear(kith_ws *ws)
{
    for (size_t i = 0; i < ws->nover; i++)
        kith_free(ws->over[i].base);
    kith_free(ws->over);
    ws->over = NULL;
    ws->nover = ws->capover = 0;
}

/* Code points that differ between @a and @b, by the character diff. */
static int diff_cost(const char *a, size_t alen, const char *b, size_t blen, uint64_t *cost)
{
    kith_patch *p = NULL;
    size_t n = 0;
    int rc = ws_text_diff(a, alen, b, blen, &p, &n);
    *cost = 0;
    for (size_t i = 0; !rc && i < n; i++)
        *cost += p[i].del + (uint64_t)kith_utf8_count(p[i].ins, p[i].ins_len);
    kith_free(p);
    return rc;
}

/* The file of @d changed after this process had replaced it with a merge;
 * @base (taken, freed here) is the version it held before. A save closer to
 * that version than to the merged text is an edit made at it: recorded so,
 * and the merge of the two staged for the file. */
static int stale_save(walk *w, ws_doc *d, char *base, const char *data, size_t len)
{
    kith_ws *ws = w->ws;
    kith_doc *doc = NULL;
    kith_id *ids = NULL;
    size_t nids = 0, blen = 0, mlen = 0;
    char *btext = NULL, *merged = NULL;
    uint64_t from_base = 0, from_merged = 0;
    int rc = ws_doc_crdt(ws, d, &doc);
    if (!rc && ws_version_ids(ws, doc, base, &ids, &nids))
        goto plain; /* the version is gone from memory: an ordinary save */
    if (!rc && !(rc = kith_doc_text_at(doc, ids, nids, &btext, &blen)) &&
        !(rc = kith_doc_text(doc, &merged, &mlen)) &&
        !(rc = diff_cost(btext, blen, data, len, &from_base)))
        rc = diff_cost(merged, mlen, data, len, &from_merged);
    if (rc || from_base >= from_merged)
        goto plain;
    kith_log(KITH_LOG_INFO, "%s: saved from a buffer older than the merge kith wrote; both kept",
             d->path);
    kith_free(merged);
    merged = NULL;
    kith_agent me;
    uint64_t before = 0, after = 0;
    if ((rc = kith_doc_agent(doc, ws->agent, &me)) || (rc = kith_doc_agent_ops(doc, me, &before)) ||
        (rc = ws_change_text_at(w->c, d, base, data, len)) ||
        (rc = kith_doc_agent_ops(doc, me, &after)) || (rc = kith_doc_text(doc, &merged, &mlen)))
        goto out;
    if (mlen == len && !memcmp(merged, data, len)) {
        rc = ws_doc_save_stat(ws, d);
        goto out;
    }
    /* The file holds the save: the version of its last operation, or the
     * old version itself when it changed nothing. */
    char *held = NULL, *full = NULL;
    kith_id last = {me, after ? after - 1 : 0};
    if (after == before)
        held = kith_strndup(base, strlen(base));
    else if (!(rc = kith_doc_version_str(doc, &last, 1, &full)))
        rc = ws_version_to_db(ws, full, &held);
    if (!rc && !held)
        rc = KITH_ENOMEM;
    if (!rc)
        rc = ws_stage_write(ws, d, merged, mlen, held);
    kith_free(held);
    kith_free(full);
    goto out;
plain:
    if (!rc)
        rc = record_content(w, d, KITH_WS_MODIFIED, NULL, AS_TEXT, data, len);
out:
    kith_free(ids);
    kith_free(btext);
    kith_free(merged);
    kith_free(base);
    return rc;
}
