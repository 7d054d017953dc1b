/*
 * Suggestions and comments anchored in the CRDT (kith_ws_note_add, _notes,
 * _accept, _reject), on real workspaces in a temporary directory. The main
 * case is a randomized one: replica A suggests text after a marker while
 * replica B makes random insertions and deletions around it (never inside
 * it); after change-by-change sync both list the suggestion at the marker,
 * and accepting it on either puts the text right after the marker, on both
 * once synced. When B's edits do take a character of the marker, the
 * suggestion is stale on both and accepting it is refused.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kith/kith.h"
#include "tt.h"

static char root[256];
static const char marker[] = "<<MARK>>";

#include "ws_kit.h"

typedef struct seen {
    size_t n;
    char id[KITH_WS_ID_HEX + 1];
    enum kith_ws_note_status status;
    size_t pos, len, line;
    char text[256];
} seen;

static int on_note(const kith_ws_note *n, void *ctx)
{
    seen *s = ctx;
    s->n++;
    snprintf(s->id, sizeof s->id, "%s", n->id);
    s->status = n->status;
    s->pos = n->pos;
    s->len = n->len;
    s->line = n->line;
    snprintf(s->text, sizeof s->text, "%.*s", (int)n->text_len, n->text);
    return 0;
}

static seen list(kith_ws *ws)
{
    seen s = {0};
    if (kith_ws_notes(ws, NULL, true, on_note, &s))
        s.n = (size_t)-1;
    return s;
}

/* Code points before byte @off (the texts here are ASCII but for "é"). */
static size_t cps(const char *s, size_t off)
{
    size_t c = 0;
    for (size_t i = 0; i < off; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static size_t lines_before(const char *s, size_t off)
{
    size_t l = 1;
    for (size_t i = 0; i < off; i++)
        l += s[i] == '\n';
    return l;
}

static const char alphabet[] = "abc de\nfgé";

/* One random edit of @t away from the marker (or, with @hit, one that
 * deletes a character of it). */
static void random_edit(char *t, bool hit)
{
    size_t len = strlen(t);
    size_t m = (size_t)(strstr(t, marker) - t), mend = m + strlen(marker);
    if (hit) {
        size_t at = m + (size_t)rand() % strlen(marker);
        memmove(t + at, t + at + 1, len - at);
        return;
    }
    for (;;) {
        size_t at = (size_t)rand() % (len + 1);
        while (at < len && ((unsigned char)t[at] & 0xC0) == 0x80)
            at++;
        if (at > m && at < mend)
            continue;
        if (at == mend) /* right at the insertion point: order is the CRDT's */
            continue;
        if (rand() % 2 && at < len && at != m) { /* delete one code point */
            size_t n = 1;
            while (at + n < len && ((unsigned char)t[at + n] & 0xC0) == 0x80)
                n++;
            if (at + n > m && at < mend)
                continue;
            memmove(t + at, t + at + n, len - at - n + 1);
        } else {
            const char *ins = rand() % 3 ? "x" : (rand() % 2 ? "\n" : "é");
            size_t n = strlen(ins);
            memmove(t + at + n, t + at, len - at + 1);
            memcpy(t + at, ins, n);
        }
        return;
    }
}

static void random_text(char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = &alphabet[rand() % (sizeof alphabet - 1)];
        if (((unsigned char)*c & 0xC0) == 0x80)
            c--;
        size_t cl = ((unsigned char)*c & 0x80) ? 2 : 1;
        memcpy(t + k, c, cl);
        k += cl;
    }
    t[k] = 0;
}

static void one_round(int round, bool hit)
{
    char na[32], nb[32];
    snprintf(na, sizeof na, "a%d", round);
    snprintf(nb, sizeof nb, "b%d", round);
    kith_ws *a = make(na, "Ann");
    TT_ASSERT(a);
    char text[8192], pre[512], post[512];
    random_text(pre, (size_t)rand() % 60);
    random_text(post, (size_t)rand() % 60);
    snprintf(text, sizeof text, "%s%s%s", pre, marker, post);
    put(kith_ws_root(a), "f.md", text);
    TT_OK(scan(a));
    kith_ws *b = join(nb, "Ben", a);
    TT_ASSERT(b);

    /* A suggests after the marker; B edits meanwhile */
    size_t m = strlen(pre);
    kith_ws_note_spec spec = {
        KITH_WS_SUGGESTION, "f.md", cps(text, m), strlen(marker), 0, "[NEW]", 5, "ai:test-model"};
    char id[KITH_WS_ID_HEX + 1];
    TT_ASSERT(chdir(kith_ws_root(a)) == 0); /* paths are the user's: relative to here */
    TT_OK(kith_ws_note_add(a, &spec, id));
    int nedits = 1 + rand() % 12;
    for (int e = 0; e < nedits; e++) {
        random_edit(text, hit && e == nedits / 2);
        put(kith_ws_root(b), "f.md", text);
        TT_OK(scan(b));
    }
    TT_OK(sync_to(a, b));
    TT_OK(sync_to(b, a));
    char *fa = get(kith_ws_root(a), "f.md"), *fb = get(kith_ws_root(b), "f.md");
    TT_STREQ(fa, fb);
    TT_STREQ(fa, text); /* a note changes no file */

    seen sa = list(a), sb = list(b);
    TT_EQ(sa.n, 1);
    TT_EQ(sb.n, 1);
    TT_STREQ(sa.id, id);
    TT_STREQ(sb.id, id);
    kith_ws *acceptor = rand() % 2 ? a : b;
    kith_ws_result res;
    if (hit) {
        TT_EQ(sa.status, KITH_WS_NOTE_STALE);
        TT_EQ(sb.status, KITH_WS_NOTE_STALE);
        TT_EQ(kith_ws_accept(acceptor, id, &res), KITH_ESTALE);
        char *after = get(kith_ws_root(acceptor), "f.md");
        TT_STREQ(after, text);
        free(after);
        TT_OK(kith_ws_reject(acceptor, id, &res));
    } else {
        size_t mpos = (size_t)(strstr(text, marker) - text);
        TT_EQ(sa.status, KITH_WS_NOTE_OPEN);
        TT_EQ(sb.status, KITH_WS_NOTE_OPEN);
        TT_EQ(sa.pos, cps(text, mpos));
        TT_EQ(sa.len, strlen(marker));
        TT_EQ(sb.pos, sa.pos);
        TT_EQ(sa.line, lines_before(text, mpos));
        TT_OK(kith_ws_accept(acceptor, id, &res));
        TT_ASSERT(res.change[0]);
    }
    TT_OK(sync_to(a, b));
    TT_OK(sync_to(b, a));
    free(fa);
    free(fb);
    fa = get(kith_ws_root(a), "f.md");
    fb = get(kith_ws_root(b), "f.md");
    TT_STREQ(fa, fb);
    if (!hit) {
        char *mk = strstr(fa, marker);
        TT_ASSERT(mk && !strncmp(mk + strlen(marker), "[NEW]", 5));
    }
    sa = list(a);
    sb = list(b);
    TT_EQ(sa.status, hit ? KITH_WS_NOTE_REJECTED : KITH_WS_NOTE_ACCEPTED);
    TT_EQ(sb.status, sa.status);
    TT_EQ(kith_ws_reject(a, id, &res), KITH_EINVAL); /* closed already */
    TT_OK(kith_ws_check(a));
    TT_OK(kith_ws_check(b));
    free(fa);
    free(fb);
    kith_ws_close(a);
    kith_ws_close(b);
}

TT_TEST(anchors_survive_concurrent_edits)
{
    for (int round = 0; round < 40; round++)
        one_round(round, false);
}

TT_TEST(deleted_anchor_is_stale)
{
    for (int round = 100; round < 115; round++)
        one_round(round, true);
}

static int blame_via(const kith_ws_blame_line *l, void *ctx)
{
    if (l->len >= 5 && memmem(l->text, l->len, "[NEW]", 5))
        *(const char **)ctx = l->via ? "ai:test-model" : "none";
    return 0;
}

TT_TEST(replace_comment_and_bad_input)
{
    kith_ws *a = make("r1", "Ann");
    TT_ASSERT(a);
    put(kith_ws_root(a), "f.md", "one two three\nfour\n");
    put(kith_ws_root(a), "bin.dat", "\xff\xfe\xfd"); /* not UTF-8: kept whole */
    TT_OK(scan(a));
    TT_ASSERT(chdir(kith_ws_root(a)) == 0);
    char id[KITH_WS_ID_HEX + 1], cid[KITH_WS_ID_HEX + 1];
    /* replace "two" (anchored to the space before it) */
    kith_ws_note_spec s = {KITH_WS_SUGGESTION, "f.md", 3, 1, 3, "[NEW]", 5, "ai:test-model"};
    TT_OK(kith_ws_note_add(a, &s, id));
    kith_ws_note_spec c = {KITH_WS_COMMENT, "f.md", 14, 4, 0, "a remark", 8, NULL};
    TT_OK(kith_ws_note_add(a, &c, cid));
    kith_ws_result res;
    TT_EQ(kith_ws_accept(a, cid, &res), KITH_EINVAL); /* a comment */
    TT_OK(kith_ws_accept(a, id, &res));
    char *t = get(kith_ws_root(a), "f.md");
    TT_STREQ(t, "one [NEW] three\nfour\n");
    free(t);
    const char *via = NULL;
    TT_OK(kith_ws_blame(a, "f.md", NULL, blame_via, &via));
    TT_STREQ(via, "ai:test-model");
    TT_OK(kith_ws_reject(a, cid, &res));

    /* bad input: refused, nothing recorded */
    kith_ws_note_spec bad[] = {
        {KITH_WS_SUGGESTION, "f.md", 100, 1, 0, "x", 1, NULL},      /* past the end */
        {KITH_WS_SUGGESTION, "f.md", 0, 1, 0, "", 0, NULL},         /* empty */
        {KITH_WS_SUGGESTION, "f.md", 0, 1, 0, "\xff", 1, NULL},     /* not UTF-8 */
        {KITH_WS_SUGGESTION, "nope.md", 0, 0, 0, "x", 1, NULL},     /* no such file */
        {KITH_WS_SUGGESTION, "bin.dat", 0, 0, 0, "x", 1, NULL},     /* binary */
        {KITH_WS_COMMENT, "f.md", 0, 1, 2, "x", 1, NULL},           /* a comment replaces */
        {KITH_WS_SUGGESTION, "f.md", 0, 1, 0, "x", 1, "a\nb"},      /* bad via */
        {(enum kith_ws_note_type)7, "f.md", 0, 1, 0, "x", 1, NULL}, /* bad type */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        TT_ASSERT(kith_ws_note_add(a, &bad[i], id) != KITH_OK);
        TT_ASSERT(kith_ws_errmsg(a)[0]);
    }
    TT_EQ(kith_ws_accept(a, "xyz", &res), KITH_EINVAL);
    TT_EQ(kith_ws_accept(a, "0000", &res), KITH_ENOTFOUND);
    seen all = list(a);
    TT_EQ(all.n, 2);
    TT_OK(kith_ws_check(a));
    kith_ws_close(a);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
    tt_tmpdir("kith-notes-test", root, sizeof root);
    setenv("KITH_USER", "tester", 1);
    srand(20261127);
}

TT_MAIN(TT_CASE(anchors_survive_concurrent_edits), TT_CASE(deleted_anchor_is_stale),
        TT_CASE(replace_comment_and_bad_input))
