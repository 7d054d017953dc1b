/*
 * The Eg-walker transform. Given the log and two versions, it replays the
 * operations that matter over a temporary CRDT state and emits each new
 * operation as a plain insert/delete at a position of the text being built.
 *
 * The temporary state is a sequence of items (runs of inserted characters)
 * in document order. Each item has two states: its *prepare* state, the
 * state in the version the op being replayed was made in (not inserted yet,
 * inserted, or deleted n times), and its *effect* state (deleted by any op
 * replayed so far or not). Moving the prepare version back and forth along
 * the graph (retreat/advance) flips prepare states; positions of new ops are
 * resolved in the prepare version and turned into effect positions.
 *
 * Concurrent inserts at one place are ordered by the YjsMod rule (Gentle's
 * reference-crdts), which is FugueMax (Weidner et al.): runs typed
 * concurrently never interleave. Ties fall to the agent with the smaller name
 * (bytewise), so every replica orders them alike.
 *
 * Items live in blocks of up to BLK in document order; two Fenwick trees over
 * the blocks give prefix sums of prepare-visible and effect-visible
 * characters, so a position is found in O(log blocks + BLK). lvmap maps an
 * inserted character's LV to its block and a delete's LV to its target.
 */
#include <string.h>

#include "crdt/crdt_int.h"

#define BLK 32

enum { NIY = 0, INS = 1 }; /* state >= 2: deleted (state - 1) times */

typedef struct item {
    uint32_t id, len;
    uint32_t ol, orr; /* origin left / right: char ids, LV_NONE = start / end */
    uint8_t state;
    uint8_t gone;
} item;

typedef struct block {
    uint32_t n, ord;
    uint64_t cur, end; /* prepare-visible / effect-visible characters */
    item it[BLK];
} block;

/* The placeholder: a merge that starts from a common version C (not the
 * empty one) stands for the text at C with one item of "underwater" ids
 * from UW_BASE, as long as any text can be. Only its first chars are ever
 * touched; the rest is never before any position that matters. */
#define UW_BASE 0x80000000u
#define UW_LEN  0x7ffffff0u

typedef struct tracker {
    const oplog *log;
    block **pool; /* by block id; blocks never move in the pool */
    size_t npool, cappool;
    uint32_t *order; /* block ids in document order */
    size_t norder, caporder;
    int64_t *fcur, *fend; /* Fenwick trees over order positions, 1-based */
    size_t fcap;
    uint32_t *lvmap; /* ins LV -> block id; del LV -> target char id (index lv - base) */
    uint32_t base;   /* the lowest LV replayed */
    uint32_t *uw_start, *uw_bid; /* placeholder pieces: sorted starts and their blocks */
    size_t nuw, capuw;
    uint32_t *cur_version;
    size_t ncur, capcur;
    uint32_t bad_lv;
} tracker;

/* ---- Fenwick trees over blocks ------------------------------------------------ */

static void fen_add(int64_t *f, size_t n, size_t i, int64_t d)
{
    for (i++; i <= n; i += i & (~i + 1))
        f[i] += d;
}

static int64_t fen_sum(const int64_t *f, size_t i) /* sum of [0, i) */
{
    int64_t s = 0;
    for (; i > 0; i -= i & (~i + 1))
        s += f[i];
    return s;
}

/* First order position whose prefix (inclusive) exceeds @p; *before = sum
 * of the blocks before it. */
static size_t fen_find(const int64_t *f, size_t n, int64_t p, int64_t *before)
{
    size_t pos = 0, step = 1;
    while (step * 2 <= n)
        step *= 2;
    int64_t acc = 0;
    for (; step; step /= 2) {
        if (pos + step <= n && acc + f[pos + step] <= p) {
            pos += step;
            acc += f[pos];
        }
    }
    *before = acc;
    return pos;
}

static int fen_rebuild(tracker *t)
{
    size_t n = t->norder;
    if (n + 1 > t->fcap) {
        size_t nc = (n + 1) * 2;
        int64_t *a = kith_realloc(t->fcur, nc * sizeof(int64_t));
        if (!a)
            return KITH_ENOMEM;
        t->fcur = a;
        int64_t *b = kith_realloc(t->fend, nc * sizeof(int64_t));
        if (!b)
            return KITH_ENOMEM;
        t->fend = b;
        t->fcap = nc;
    }
    memset(t->fcur, 0, (n + 1) * sizeof(int64_t));
    memset(t->fend, 0, (n + 1) * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        block *b = t->pool[t->order[i]];
        b->ord = (uint32_t)i;
        t->fcur[i + 1] += b->cur;
        t->fend[i + 1] += b->end;
        size_t j = (i + 1) + ((i + 1) & (~(i + 1) + 1));
        if (j <= n) {
            t->fcur[j] += t->fcur[i + 1];
            t->fend[j] += t->fend[i + 1];
        }
    }
    return KITH_OK;
}

static void blk_adjust(tracker *t, block *b, int64_t dcur, int64_t dend)
{
    b->cur = (uint64_t)((int64_t)b->cur + dcur);
    b->end = (uint64_t)((int64_t)b->end + dend);
    if (dcur)
        fen_add(t->fcur, t->norder, b->ord, dcur);
    if (dend)
        fen_add(t->fend, t->norder, b->ord, dend);
}

static uint32_t item_cur(const item *it)
{
    return it->state == INS ? it->len : 0;
}

static uint32_t item_end(const item *it)
{
    return it->gone ? 0 : it->len;
}

/* ---- blocks --------------------------------------------------------------------- */

static int new_block(tracker *t, uint32_t *id)
{
    if (kith_grow((void **)&t->pool, &t->cappool, t->npool + 1, sizeof(block *)))
        return KITH_ENOMEM;
    block *b = kith_calloc(1, sizeof(block));
    if (!b)
        return KITH_ENOMEM;
    t->pool[t->npool] = b;
    *id = (uint32_t)t->npool++;
    return KITH_OK;
}

/* Index of the placeholder piece holding id (largest start <= id). */
static size_t uw_find(const tracker *t, uint32_t id)
{
    size_t lo = 0, hi = t->nuw;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->uw_start[mid] <= id)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static int uw_set(tracker *t, uint32_t start, uint32_t bid)
{
    size_t i = t->nuw ? uw_find(t, start) : 0;
    if (t->nuw && t->uw_start[i] == start) {
        t->uw_bid[i] = bid;
        return KITH_OK;
    }
    if (t->nuw && t->uw_start[i] < start)
        i++;
    size_t cap = t->capuw;
    if (kith_grow((void **)&t->uw_start, &cap, t->nuw + 1, sizeof(uint32_t)) ||
        kith_grow((void **)&t->uw_bid, &t->capuw, t->nuw + 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    memmove(t->uw_start + i + 1, t->uw_start + i, (t->nuw - i) * sizeof(uint32_t));
    memmove(t->uw_bid + i + 1, t->uw_bid + i, (t->nuw - i) * sizeof(uint32_t));
    t->uw_start[i] = start;
    t->uw_bid[i] = bid;
    t->nuw++;
    return KITH_OK;
}

static uint32_t block_of(const tracker *t, uint32_t id)
{
    if (id >= UW_BASE)
        return t->uw_bid[uw_find(t, id)];
    return t->lvmap[id - t->base];
}

static int map_item(tracker *t, const item *it, uint32_t bid)
{
    if (it->id >= UW_BASE)
        return uw_set(t, it->id, bid);
    for (uint32_t k = 0; k < it->len; k++)
        t->lvmap[it->id - t->base + k] = bid;
    return KITH_OK;
}

/* Re-lays the block order with an empty block after every block, reusing
 * the empty blocks there are, so that splits find a free block nearby
 * instead of shifting the whole order and rebuilding the Fenwick trees. */
static int respace(tracker *t)
{
    size_t n = t->norder, live = 0, nempty = 0;
    for (size_t i = 0; i < n; i++)
        live += t->pool[t->order[i]]->n > 0;
    uint32_t *empty = kith_malloc((n + 1) * sizeof(uint32_t));
    uint32_t *no = kith_malloc((2 * live + 2) * sizeof(uint32_t));
    if (!empty || !no) {
        kith_free(empty);
        kith_free(no);
        return KITH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (t->pool[t->order[i]]->n == 0)
            empty[nempty++] = t->order[i];
    size_t w = 0;
    int rc = KITH_OK;
    for (size_t i = 0; i < n && rc == KITH_OK; i++) {
        uint32_t bid = t->order[i];
        if (t->pool[bid]->n == 0)
            continue;
        no[w++] = bid;
        uint32_t gap;
        if (nempty)
            gap = empty[--nempty];
        else
            rc = new_block(t, &gap);
        if (rc == KITH_OK)
            no[w++] = gap;
    }
    kith_free(empty);
    if (rc) {
        kith_free(no);
        return rc;
    }
    kith_free(t->order);
    t->order = no;
    t->norder = w;
    t->caporder = 2 * live + 2;
    return fen_rebuild(t);
}

/* Moves the block at order position @from to @to (one step), keeping the
 * Fenwick trees right. */
static void move_block(tracker *t, size_t from, size_t to)
{
    block *b = t->pool[t->order[from]];
    fen_add(t->fcur, t->norder, from, -(int64_t)b->cur);
    fen_add(t->fend, t->norder, from, -(int64_t)b->end);
    fen_add(t->fcur, t->norder, to, b->cur);
    fen_add(t->fend, t->norder, to, b->end);
    t->order[to] = t->order[from];
    b->ord = (uint32_t)to;
}

#define GAP_WINDOW 64

/* Makes the block at order position @o + 1 an empty one: shifts the blocks
 * between it and the nearest empty block on the right by one place. */
static int gap_after(tracker *t, size_t *o)
{
    size_t g = *o + 1;
    while (g < t->norder && g <= *o + GAP_WINDOW && t->pool[t->order[g]]->n != 0)
        g++;
    if (g >= t->norder || g > *o + GAP_WINDOW) {
        uint32_t bid = t->order[*o];
        int rc = respace(t);
        if (rc)
            return rc;
        *o = t->pool[bid]->ord;
        return KITH_OK; /* respace put a gap right after every block */
    }
    uint32_t gap = t->order[g];
    for (size_t k = g; k > *o + 1; k--)
        move_block(t, k - 1, k);
    t->order[*o + 1] = gap;
    t->pool[gap]->ord = (uint32_t)(*o + 1);
    return KITH_OK;
}

/* Makes room for one more item in block at order position @o: moves its
 * upper half into the empty block after it (making one if needed).
 * Returns the order position and slot where slot @s now is. */
static int ensure_room(tracker *t, size_t *o, uint32_t *s)
{
    block *b = t->pool[t->order[*o]];
    if (b->n < BLK)
        return KITH_OK;
    if (*o + 1 >= t->norder || t->pool[t->order[*o + 1]]->n != 0) {
        int rc = gap_after(t, o);
        if (rc)
            return rc;
        b = t->pool[t->order[*o]];
    }
    uint32_t nid = t->order[*o + 1];
    block *nb = t->pool[nid];
    uint32_t half = BLK / 2;
    memcpy(nb->it, b->it + half, (BLK - half) * sizeof(item));
    nb->n = BLK - half;
    b->n = half;
    int64_t cur = 0, end = 0;
    for (uint32_t i = 0; i < nb->n; i++) {
        cur += item_cur(&nb->it[i]);
        end += item_end(&nb->it[i]);
        if (map_item(t, &nb->it[i], nid))
            return KITH_ENOMEM;
    }
    blk_adjust(t, b, -cur, -end);
    blk_adjust(t, nb, cur, end);
    if (*s > half) {
        *s -= half;
        (*o)++;
    }
    return KITH_OK;
}

/* Inserts @it at slot @s of the block at order position @o; (@o, @s) end
 * where the item went (a full block is split first). @fresh: its chars
 * have no block yet; otherwise they are remapped only if it changed block. */
static int insert_item(tracker *t, size_t *op, uint32_t *sp, const item *it, bool fresh)
{
    int rc = ensure_room(t, op, sp);
    size_t o = *op;
    uint32_t s = *sp;
    if (rc)
        return rc;
    uint32_t bid = t->order[o];
    block *b = t->pool[bid];
    memmove(b->it + s + 1, b->it + s, (b->n - s) * sizeof(item));
    b->it[s] = *it;
    b->n++;
    if ((fresh || it->id >= UW_BASE || block_of(t, it->id) != bid) && map_item(t, it, bid))
        return KITH_ENOMEM;
    blk_adjust(t, b, item_cur(it), item_end(it));
    return KITH_OK;
}

/* Splits the item at (@o, @s) so that its first @k chars stay and the rest
 * becomes the next item; (@o, @s) follow the first part if a block split
 * moved it. */
static int split_item(tracker *t, size_t *o, uint32_t *s, uint32_t k)
{
    block *b = t->pool[t->order[*o]];
    item rest = b->it[*s];
    if (k == 0 || k >= rest.len)
        return KITH_OK;
    rest.id += k;
    rest.len -= k;
    rest.ol = rest.id - 1;
    /* Take the right half out of the counts; insert_item adds it back. */
    blk_adjust(t, b, -(int64_t)item_cur(&rest), -(int64_t)item_end(&rest));
    b->it[*s].len = k;
    size_t io = *o;
    uint32_t is = *s + 1;
    int rc = insert_item(t, &io, &is, &rest, false);
    if (rc)
        return rc;
    *o = io;
    *s = is - 1;
    return KITH_OK;
}

/* Where char @id is: order position, slot, offset. */
static void locate_id(const tracker *t, uint32_t id, size_t *o, uint32_t *s, uint32_t *off)
{
    const block *b = t->pool[block_of(t, id)];
    uint32_t i = 0;
    while (!(id >= b->it[i].id && id < b->it[i].id + b->it[i].len))
        i++;
    *o = b->ord;
    *s = i;
    *off = id - b->it[i].id;
}

/* A total order key of char @id (for origin comparisons). */
static int64_t key_of(const tracker *t, uint32_t id, int64_t none)
{
    if (id == LV_NONE)
        return none;
    size_t o;
    uint32_t s, off;
    locate_id(t, id, &o, &s, &off);
    return ((int64_t)o << 38) | ((int64_t)s << 32) | off;
}

/* Finds the char that is the (@p+1)-th prepare-visible one: order position,
 * slot, offset. @p must be below the prepare length. */
static void seek_cur(const tracker *t, uint32_t p, size_t *o, uint32_t *s, uint32_t *off)
{
    int64_t before;
    size_t pos = fen_find(t->fcur, t->norder, p, &before);
    const block *b = t->pool[t->order[pos]];
    uint32_t rem = (uint32_t)(p - before);
    uint32_t i = 0;
    for (;; i++) {
        uint32_t c = item_cur(&b->it[i]);
        if (rem < c)
            break;
        rem -= c;
    }
    *o = pos;
    *s = i;
    *off = rem;
}

/* Effect-visible chars before (@o, @s, @off). */
static uint32_t effect_pos(const tracker *t, size_t o, uint32_t s, uint32_t off)
{
    int64_t p = fen_sum(t->fend, o);
    const block *b = t->pool[t->order[o]];
    for (uint32_t i = 0; i < s; i++)
        p += item_end(&b->it[i]);
    if (off && !b->it[s].gone)
        p += off;
    return (uint32_t)p;
}

static int64_t prepare_len(const tracker *t)
{
    return fen_sum(t->fcur, t->norder);
}

/* Moves (@o, @s) to the next slot, crossing blocks; false at the end. */
static bool next_slot(const tracker *t, size_t *o, uint32_t *s)
{
    (*s)++;
    while (*s >= t->pool[t->order[*o]]->n) {
        if (*o + 1 >= t->norder)
            return false;
        (*o)++;
        *s = 0;
    }
    return true;
}

/* ---- applying ops --------------------------------------------------------------- */

static int xf_push(xf_list *x, uint32_t kind, uint32_t pos, uint32_t len, uint32_t src)
{
    if (x->n) {
        xf_op *l = &x->ops[x->n - 1];
        if (kind == OP_DEL && l->kind == OP_DEL && l->pos == pos) {
            l->len += len;
            return KITH_OK;
        }
        if (kind == OP_DEL && l->kind == OP_DEL && pos + len == l->pos) {
            l->pos = pos;
            l->len += len;
            return KITH_OK;
        }
        if (kind == OP_INS && l->kind == OP_INS && l->pos + l->len == pos &&
            l->src_lv + l->len == src) {
            l->len += len;
            return KITH_OK;
        }
    }
    if (kith_grow((void **)&x->ops, &x->cap, x->n + 1, sizeof(xf_op)))
        return KITH_ENOMEM;
    x->ops[x->n++] = (xf_op){kind, pos, len, src};
    return KITH_OK;
}

static int cmp_agent(const oplog *log, uint32_t a_lv, uint32_t b_lv)
{
    size_t i;
    const agent_info *a = &log->agents[oplog_find_agent(log, a_lv, &i)->agent];
    const agent_info *b = &log->agents[oplog_find_agent(log, b_lv, &i)->agent];
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c)
        return c;
    return (int)a->name_len - (int)b->name_len;
}

/* Inserts @len chars with ids from @lv at prepare position @pos. */
static int apply_ins(tracker *t, uint32_t lv, uint32_t pos, uint32_t len, bool emit, xf_list *x)
{
    if (pos > prepare_len(t)) {
        t->bad_lv = lv;
        return KITH_ERANGE;
    }
    int rc;
    size_t o = 0;
    uint32_t s = 0, left = LV_NONE;
    bool at_end = t->norder == 0;
    if (!at_end && t->pool[t->order[0]]->n == 0) {
        s = UINT32_MAX; /* next_slot from "before slot 0" */
        at_end = !next_slot(t, &o, &s);
    }
    if (pos > 0) {
        uint32_t off;
        seek_cur(t, pos - 1, &o, &s, &off);
        item *li = &t->pool[t->order[o]]->it[s];
        left = li->id + off;
        if (off + 1 < li->len) {
            rc = split_item(t, &o, &s, off + 1);
            if (rc)
                return rc;
        }
        at_end = !next_slot(t, &o, &s);
    }
    /* Cursor is at (o, s) unless at_end. Find origin right: the first item
     * that exists in the prepare version. */
    uint32_t right = LV_NONE;
    size_t ro = o;
    uint32_t rs = s;
    bool r_end = at_end;
    while (!r_end) {
        item *ri = &t->pool[t->order[ro]]->it[rs];
        if (ri->state != NIY) {
            right = ri->id;
            break;
        }
        r_end = !next_slot(t, &ro, &rs);
    }

    /* YjsMod/FugueMax integration among the concurrent (not yet inserted)
     * items between left and right. */
    size_t dest_o = o;
    uint32_t dest_s = s;
    bool dest_end = at_end;
    if (!at_end && !(ro == o && rs == s)) {
        int64_t kleft = key_of(t, left, -1), kright = key_of(t, right, INT64_MAX);
        bool scanning = false;
        size_t io = o;
        uint32_t is = s;
        bool i_end = false;
        for (;;) {
            if (!scanning) {
                dest_o = io;
                dest_s = is;
                dest_end = i_end;
            }
            if (i_end || (right != LV_NONE && io == ro && is == rs))
                break;
            const item *other = &t->pool[t->order[io]]->it[is];
            int64_t oleft = key_of(t, other->ol, -1);
            if (oleft < kleft)
                break;
            if (oleft == kleft) {
                int64_t oright = key_of(t, other->orr, INT64_MAX);
                if (oright < kright) {
                    scanning = true;
                } else if (oright == kright) {
                    if (cmp_agent(t->log, lv, other->id) < 0)
                        break;
                    scanning = false;
                } else {
                    scanning = false;
                }
            }
            i_end = !next_slot(t, &io, &is);
        }
    }
    item it = {.id = lv, .len = len, .ol = left, .orr = right, .state = INS, .gone = 0};
    if (dest_end) {
        dest_o = t->norder ? t->norder - 1 : 0;
        if (t->norder == 0) {
            uint32_t bid;
            if (new_block(t, &bid) ||
                kith_grow((void **)&t->order, &t->caporder, 1, sizeof(uint32_t)))
                return KITH_ENOMEM;
            t->order[0] = bid;
            t->norder = 1;
            if (fen_rebuild(t))
                return KITH_ENOMEM;
        }
        dest_s = t->pool[t->order[dest_o]]->n;
    }
    uint32_t epos = effect_pos(t, dest_o, dest_s, 0);
    /* Extend the item before when this continues it exactly. */
    block *db = t->pool[t->order[dest_o]];
    if (dest_s > 0) {
        item *p = &db->it[dest_s - 1];
        if (p->state == INS && !p->gone && p->id + p->len == lv && left == lv - 1 &&
            p->orr == right) {
            p->len += len;
            for (uint32_t k = 0; k < len; k++)
                t->lvmap[lv - t->base + k] = t->order[dest_o];
            blk_adjust(t, db, len, len);
            return emit ? xf_push(x, OP_INS, epos, len, lv) : KITH_OK;
        }
    }
    rc = insert_item(t, &dest_o, &dest_s, &it, true);
    if (rc)
        return rc;
    return emit ? xf_push(x, OP_INS, epos, len, lv) : KITH_OK;
}

/* Deletes the prepare-visible char at @pos (op @lv). */
static int apply_del1(tracker *t, uint32_t lv, uint32_t pos, bool emit, xf_list *x)
{
    if ((int64_t)pos >= prepare_len(t)) {
        t->bad_lv = lv;
        return KITH_ERANGE;
    }
    size_t o;
    uint32_t s, off;
    seek_cur(t, pos, &o, &s, &off);
    uint32_t target = t->pool[t->order[o]]->it[s].id + off;
    int rc = split_item(t, &o, &s, off);
    if (rc)
        return rc;
    if (off)
        locate_id(t, target, &o, &s, &off);
    rc = split_item(t, &o, &s, 1);
    if (rc)
        return rc;
    block *b = t->pool[t->order[o]];
    item *it = &b->it[s];
    t->lvmap[lv - t->base] = it->id;
    uint32_t epos = effect_pos(t, o, s, 0);
    it->state++;
    bool was_gone = it->gone;
    it->gone = 1;
    blk_adjust(t, b, -1, was_gone ? 0 : -1);
    if (emit && !was_gone)
        return xf_push(x, OP_DEL, epos, 1, lv);
    return KITH_OK;
}

/* Isolates chars [id, id + n) (within one item) as one item; returns where. */
static int isolate(tracker *t, uint32_t id, uint32_t n, size_t *o, uint32_t *s, uint32_t *got)
{
    uint32_t off;
    locate_id(t, id, o, s, &off);
    int rc = split_item(t, o, s, off);
    if (rc)
        return rc;
    if (off)
        locate_id(t, id, o, s, &off);
    item *it = &t->pool[t->order[*o]]->it[*s];
    *got = it->len < n ? it->len : n;
    return split_item(t, o, s, *got);
}

/* Retreat (dir -1) or advance (dir +1) one op run's part [a, b). Inserts
 * go NIY <-> INS; deletes move the target's delete count. */
static int move_range(tracker *t, const op_run *r, uint32_t a, uint32_t b, int dir)
{
    if (r->kind == OP_INS) {
        for (uint32_t id = a; id < b;) {
            size_t o;
            uint32_t s, take;
            int rc = isolate(t, id, b - id, &o, &s, &take);
            if (rc)
                return rc;
            block *bl = t->pool[t->order[o]];
            bl->it[s].state = dir < 0 ? NIY : INS;
            blk_adjust(t, bl, dir < 0 ? -(int64_t)take : (int64_t)take, 0);
            id += take;
        }
        return KITH_OK;
    }
    for (uint32_t i = 0; i < b - a; i++) {
        /* Retreat newest first, advance oldest first. */
        uint32_t lv = dir < 0 ? b - 1 - i : a + i;
        size_t o;
        uint32_t s, got;
        int rc = isolate(t, t->lvmap[lv - t->base], 1, &o, &s, &got);
        if (rc)
            return rc;
        block *bl = t->pool[t->order[o]];
        item *it = &bl->it[s];
        if (dir < 0) {
            it->state--;
            if (it->state == INS)
                blk_adjust(t, bl, 1, 0);
        } else {
            if (it->state == INS)
                blk_adjust(t, bl, -1, 0);
            it->state++;
        }
    }
    return KITH_OK;
}

static int move_ops(tracker *t, uint32_t a, uint32_t b, int dir)
{
    if (a < t->base)
        return KITH_ECORRUPT; /* inside the placeholder: parents were not minimal */
    if (dir > 0) {
        while (a < b) {
            const op_run *r = oplog_find_op(t->log, a, NULL);
            uint32_t end = r->lv + r->len < b ? r->lv + r->len : b;
            int rc = move_range(t, r, a, end, dir);
            if (rc)
                return rc;
            a = end;
        }
        return KITH_OK;
    }
    while (b > a) { /* newest first: a delete is undone before its target's insert */
        const op_run *r = oplog_find_op(t->log, b - 1, NULL);
        uint32_t start = r->lv > a ? r->lv : a;
        int rc = move_range(t, r, start, b, dir);
        if (rc)
            return rc;
        b = start;
    }
    return KITH_OK;
}

/* ---- graph walks ------------------------------------------------------------------ */

enum { F_A = 1, F_B = 2, F_SHARED = 3 };

typedef struct hent {
    uint32_t lv;
    uint8_t flag;
} hent;

typedef struct span {
    uint32_t a, b; /* [a, b) */
    uint8_t flag;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static void heap_push(hent *h, size_t *n, hent e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].lv >= e.lv)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static hent heap_pop(hent *h, size_t *n)
{
    hent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1].lv > h[c].lv)
            c++;
        if (h[c].lv <= last.lv)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static int spans_push(spans *sp, uint32_t a, uint32_t b, uint8_t flag)
{
    if (sp->n && sp->v[sp->n - 1].a == b && sp->v[sp->n - 1].flag == flag) {
        sp->v[sp->n - 1].a = a; /* walks go backwards: extend downwards */
        return KITH_OK;
    }
    if (kith_grow((void **)&sp->v, &sp->cap, sp->n + 1, sizeof(span)))
        return KITH_ENOMEM;
    sp->v[sp->n++] = (span){a, b, flag};
    return KITH_OK;
}

/*
 * Walks the graph back from versions @A and @B, newest first, and records
 * which ops are in A's history only, B's only, or both. With @to_root the
 * walk continues to the start; otherwise it stops once every path left is
 * shared (the ops below are in both). Spans come out newest first.
 */
enum { DIFF_ROOT, DIFF_SHARED, DIFF_CRITICAL };

static int graph_diff(const oplog *log, const uint32_t *A, size_t na, const uint32_t *B,
                      size_t nb, int mode, spans *out, uint32_t *common)
{
    if (common)
        *common = LV_NONE;
    size_t cap = na + nb + 16, n = 0, nonshared = 0;
    bool reached_root = false;
    hent *h = kith_malloc(cap * sizeof(hent));
    if (!h)
        return KITH_ENOMEM;
    int rc = KITH_OK;
    for (size_t i = 0; i < na; i++)
        heap_push(h, &n, (hent){A[i], F_A});
    for (size_t i = 0; i < nb; i++)
        heap_push(h, &n, (hent){B[i], F_B});
    for (size_t i = 0; i < n; i++)
        nonshared += h[i].flag != F_SHARED;
    while (n > 0) {
        if (mode == DIFF_SHARED && nonshared == 0)
            break;
        /* A path that reached the start of history does not pass through
         * any op, so then only the empty version is common to all. */
        if (mode == DIFF_CRITICAL && n == 1 && h[0].flag == F_SHARED && !reached_root) {
            *common = h[0].lv; /* every op seen descends from this one */
            break;
        }
        hent e = heap_pop(h, &n);
        if (e.flag != F_SHARED)
            nonshared--;
        while (n > 0 && h[0].lv == e.lv) {
            hent d = heap_pop(h, &n);
            if (d.flag != F_SHARED)
                nonshared--;
            e.flag |= d.flag;
        }
        if (mode == DIFF_CRITICAL && n == 0 && e.flag == F_SHARED && !reached_root) {
            *common = e.lv; /* the paths met here */
            break;
        }
        const graph_run *g = oplog_find_graph(log, e.lv);
        uint32_t lo = g->lv;
        bool stop_inside = n > 0 && h[0].lv >= g->lv;
        if (stop_inside)
            lo = h[0].lv + 1;
        rc = spans_push(out, lo, e.lv + 1, e.flag);
        if (rc)
            goto done;
        size_t need = n + (stop_inside ? 1 : g->npar) + 1;
        if (need > cap) {
            cap = need * 2;
            hent *nh = kith_realloc(h, cap * sizeof(hent));
            if (!nh) {
                rc = KITH_ENOMEM;
                goto done;
            }
            h = nh;
        }
        if (stop_inside) {
            heap_push(h, &n, (hent){lo - 1, e.flag});
            nonshared += e.flag != F_SHARED;
        } else {
            reached_root |= g->npar == 0;
            for (uint32_t k = 0; k < g->npar; k++) {
                heap_push(h, &n, (hent){log->par[g->poff + k], e.flag});
                nonshared += e.flag != F_SHARED;
            }
        }
    }
done:
    kith_free(h);
    return rc;
}

bool version_contains(const oplog *log, const uint32_t *v, size_t n, uint32_t lv)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == lv)
            return true;
    spans sp = {0};
    uint32_t one = lv;
    /* lv is in v's history iff the walk finds no op of {lv} that v lacks. */
    if (graph_diff(log, v, n, &one, 1, DIFF_SHARED, &sp, NULL)) {
        kith_free(sp.v);
        return false;
    }
    bool only_b = false;
    for (size_t i = 0; i < sp.n; i++)
        if (sp.v[i].flag == F_B)
            only_b = true;
    kith_free(sp.v);
    return !only_b;
}

/*
 * Reduces a set of LVs to its frontier in one walk down the graph from the
 * highest: a member that is reached from another one (through parents, or
 * lower in the same chain) is an ancestor and is dropped. The walk stops
 * below the lowest member.
 */
int frontier_reduce(const oplog *log, uint32_t *v, size_t *n)
{
    if (*n <= 1)
        return KITH_OK;
    enum { HEAD = 1, REACHED = 2 };
    size_t cap = *n * 2 + 16, hn = 0;
    hent *h = kith_malloc(cap * sizeof(hent));
    uint8_t *dominated = kith_calloc(*n, 1);
    if (!h || !dominated) {
        kith_free(h);
        kith_free(dominated);
        return KITH_ENOMEM;
    }
    uint32_t lowest = v[0];
    for (size_t i = 0; i < *n; i++) {
        heap_push(h, &hn, (hent){v[i], HEAD});
        if (v[i] < lowest)
            lowest = v[i];
    }
    int rc = KITH_OK;
    while (hn > 0 && h[0].lv >= lowest) {
        hent e = heap_pop(h, &hn);
        while (hn > 0 && h[0].lv == e.lv)
            e.flag |= heap_pop(h, &hn).flag;
        if (e.flag & REACHED)
            for (size_t i = 0; i < *n; i++)
                if (v[i] == e.lv)
                    dominated[i] = 1;
        const graph_run *g = oplog_find_graph(log, e.lv);
        size_t need = hn + g->npar + 2;
        if (need > cap) {
            cap = need * 2;
            hent *nh = kith_realloc(h, cap * sizeof(hent));
            if (!nh) {
                rc = KITH_ENOMEM;
                break;
            }
            h = nh;
        }
        if (hn > 0 && h[0].lv >= g->lv) {
            heap_push(h, &hn, (hent){h[0].lv, REACHED}); /* lower in this chain */
        } else {
            for (uint32_t k = 0; k < g->npar; k++)
                if (log->par[g->poff + k] >= lowest)
                    heap_push(h, &hn, (hent){log->par[g->poff + k], REACHED});
        }
    }
    size_t w = 0;
    for (size_t i = 0; rc == KITH_OK && i < *n; i++) {
        bool dup = false;
        for (size_t j = 0; j < w; j++)
            dup |= v[j] == v[i];
        if (!dominated[i] && !dup)
            v[w++] = v[i];
    }
    if (rc == KITH_OK) {
        *n = w;
        for (size_t i = 1; i < w; i++) /* insertion sort: frontiers are small */
            for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
                uint32_t tmp = v[j];
                v[j] = v[j - 1];
                v[j - 1] = tmp;
            }
    }
    kith_free(h);
    kith_free(dominated);
    return rc;
}

/* Sets the prepare version to the parents of op @lv. */
static int set_prepare(tracker *t, uint32_t lv)
{
    const graph_run *g = oplog_find_graph(t->log, lv);
    const uint32_t *par;
    size_t npar;
    uint32_t prev = lv - 1;
    if (lv == g->lv) {
        par = t->log->par + g->poff;
        npar = g->npar;
    } else {
        par = &prev;
        npar = 1;
    }
    if (t->ncur == 1 && npar == 1 && t->cur_version[0] == par[0])
        return KITH_OK; /* the common case: straight on */
    spans sp = {0};
    int rc = graph_diff(t->log, t->cur_version, t->ncur, par, npar, DIFF_SHARED, &sp, NULL);
    /* Spans come newest first: retreat in that order, advance oldest first. */
    for (size_t i = 0; rc == KITH_OK && i < sp.n; i++)
        if (sp.v[i].flag == F_A)
            rc = move_ops(t, sp.v[i].a, sp.v[i].b, -1);
    for (size_t i = sp.n; rc == KITH_OK && i-- > 0;)
        if (sp.v[i].flag == F_B)
            rc = move_ops(t, sp.v[i].a, sp.v[i].b, +1);
    kith_free(sp.v);
    if (rc)
        return rc;
    if (kith_grow((void **)&t->cur_version, &t->capcur, npar ? npar : 1, sizeof(uint32_t)))
        return KITH_ENOMEM;
    if (npar)
        memcpy(t->cur_version, par, npar * sizeof(uint32_t));
    t->ncur = npar;
    return KITH_OK;
}

/* Replays ops [a, b) (all in one graph chain segment is not required). */
static int replay(tracker *t, uint32_t a, uint32_t b, bool emit, xf_list *x)
{
    while (a < b) {
        size_t ri;
        const op_run *r = oplog_find_op(t->log, a, &ri);
        const graph_run *g = oplog_find_graph(t->log, a);
        uint32_t end = r->lv + r->len;
        if (g->lv + g->len < end)
            end = g->lv + g->len;
        if (b < end)
            end = b;
        int rc = set_prepare(t, a);
        if (rc)
            return rc;
        uint32_t k = a - r->lv, cnt = end - a;
        if (r->kind == OP_INS) {
            rc = apply_ins(t, a, r->pos + k, cnt, emit, x);
        } else {
            for (uint32_t j = 0; j < cnt && rc == KITH_OK; j++) {
                uint32_t p;
                if (r->back) {
                    if (r->pos < k + j) {
                        t->bad_lv = a + j;
                        return KITH_ERANGE;
                    }
                    p = r->pos - k - j;
                } else {
                    p = r->pos;
                }
                rc = apply_del1(t, a + j, p, emit, x);
            }
        }
        if (rc)
            return rc;
        if (kith_grow((void **)&t->cur_version, &t->capcur, 1, sizeof(uint32_t)))
            return KITH_ENOMEM;
        t->cur_version[0] = end - 1;
        t->ncur = 1;
        a = end;
    }
    return KITH_OK;
}

/* A chain of ops to replay in one go: part of one graph run. */
typedef struct unit {
    uint32_t a, b;
    uint32_t indeg;
    uint32_t coff, nchild; /* children in a CSR array */
} unit;

static size_t unit_of(const unit *u, size_t n, uint32_t lv)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (lv < u[mid].a)
            hi = mid;
        else if (lv >= u[mid].b)
            lo = mid + 1;
        else
            return mid;
    }
    return SIZE_MAX;
}

/* Parents of the first op of @u (one or the graph run's). */
static const uint32_t *unit_parents(const oplog *log, const unit *u, uint32_t *one, size_t *n)
{
    const graph_run *g = oplog_find_graph(log, u->a);
    if (u->a == g->lv) {
        *n = g->npar;
        return log->par + g->poff;
    }
    *one = u->a - 1;
    *n = 1;
    return one;
}

/*
 * Replays the spans of one kind (the ops the text at @from holds, or the
 * new ones) in a topological order that follows branches: after a chain,
 * its children come next (a stack, not LV order). Consecutive chains are
 * then mostly parent and child, so moving the prepare version between them
 * is short even when many branches interleave in LV order.
 */
static int replay_in_order(tracker *t, const spans *sp, bool emit, xf_list *x)
{
    const oplog *log = t->log;
    unit *u = NULL;
    size_t nu = 0, cap = 0;
    uint32_t *child = NULL, *stack = NULL;
    int rc = KITH_OK;
    for (size_t i = sp->n; i-- > 0;) { /* spans are newest first */
        if ((sp->v[i].flag == F_B) != emit)
            continue;
        for (uint32_t a = sp->v[i].a; a < sp->v[i].b;) {
            const graph_run *g = oplog_find_graph(log, a);
            uint32_t b = g->lv + g->len < sp->v[i].b ? g->lv + g->len : sp->v[i].b;
            if (kith_grow((void **)&u, &cap, nu + 1, sizeof(unit))) {
                rc = KITH_ENOMEM;
                goto out;
            }
            u[nu++] = (unit){a, b, 0, 0, 0};
            a = b;
        }
    }
    if (nu == 0)
        goto out;
    /* Edges parent unit -> child unit, within this kind. */
    size_t nedges = 0;
    for (size_t i = 0; i < nu; i++) {
        uint32_t one;
        size_t np;
        const uint32_t *par = unit_parents(log, &u[i], &one, &np);
        for (size_t k = 0; k < np; k++) {
            size_t p = unit_of(u, nu, par[k]);
            if (p != SIZE_MAX) {
                u[p].nchild++;
                u[i].indeg++;
                nedges++;
            }
        }
    }
    child = kith_malloc((nedges + 1) * sizeof(uint32_t));
    stack = kith_malloc((nu + 1) * sizeof(uint32_t));
    if (!child || !stack) {
        rc = KITH_ENOMEM;
        goto out;
    }
    uint32_t off = 0;
    for (size_t i = 0; i < nu; i++) {
        u[i].coff = off;
        off += u[i].nchild;
        u[i].nchild = 0;
    }
    for (size_t i = 0; i < nu; i++) {
        uint32_t one;
        size_t np;
        const uint32_t *par = unit_parents(log, &u[i], &one, &np);
        for (size_t k = 0; k < np; k++) {
            size_t p = unit_of(u, nu, par[k]);
            if (p != SIZE_MAX)
                child[u[p].coff + u[p].nchild++] = (uint32_t)i;
        }
    }
    size_t top = 0;
    for (size_t i = nu; i-- > 0;) /* lowest LV on top */
        if (u[i].indeg == 0)
            stack[top++] = (uint32_t)i;
    size_t done = 0;
    while (top > 0) {
        const unit *c = &u[stack[--top]];
        rc = replay(t, c->a, c->b, emit, x);
        if (rc)
            goto out;
        done++;
        /* Children readied last are replayed first: stay on the branch. */
        for (uint32_t k = c->nchild; k-- > 0;) {
            unit *ch = &u[child[c->coff + k]];
            if (--ch->indeg == 0)
                stack[top++] = child[c->coff + k];
        }
    }
    if (done != nu)
        rc = KITH_ECORRUPT; /* a cycle: cannot happen with LV-ordered parents */
out:
    kith_free(u);
    kith_free(child);
    kith_free(stack);
    return rc;
}

static void tracker_free(tracker *t)
{
    for (size_t i = 0; i < t->npool; i++)
        kith_free(t->pool[i]);
    kith_free(t->pool);
    kith_free(t->order);
    kith_free(t->fcur);
    kith_free(t->fend);
    kith_free(t->lvmap);
    kith_free(t->uw_start);
    kith_free(t->uw_bid);
    kith_free(t->cur_version);
}

static int collect_spans(const tracker *t, walk_out *out)
{
    for (size_t o = 0; o < t->norder; o++) {
        const block *b = t->pool[t->order[o]];
        for (uint32_t s = 0; s < b->n; s++) {
            const item *it = &b->it[s];
            if (it->gone)
                continue;
            if (out->nspans && out->spans[out->nspans - 1].lv + out->spans[out->nspans - 1].len ==
                                   it->id) {
                out->spans[out->nspans - 1].len += it->len;
                continue;
            }
            if (kith_grow((void **)&out->spans, &out->capspans, out->nspans + 1, sizeof(lv_span)))
                return KITH_ENOMEM;
            out->spans[out->nspans++] = (lv_span){it->id, it->len};
        }
    }
    return KITH_OK;
}

/*
 * The fast path: when the new ops form one chain that starts at @from (no
 * concurrency at all, the common case when syncing), their positions are
 * already positions in the text, so they are emitted as they are. Returns
 * KITH_OK with *done set when it applied, or leaves *done false.
 */
static int linear_path(const oplog *log, const uint32_t *from, size_t nfrom, size_t from_len,
                       const spans *sp, walk_out *out, bool *done)
{
    *done = false;
    for (size_t i = 0; i < sp->n; i++)
        if (sp->v[i].flag != F_B)
            return KITH_OK;
    const uint32_t *ver = from;
    size_t nver = nfrom;
    uint32_t tip;
    int64_t len = (int64_t)from_len;
    for (size_t i = sp->n; i-- > 0;) {
        for (uint32_t lv = sp->v[i].a; lv < sp->v[i].b;) {
            const graph_run *g = oplog_find_graph(log, lv);
            const op_run *r = oplog_find_op(log, lv, NULL);
            uint32_t end = g->lv + g->len < sp->v[i].b ? g->lv + g->len : sp->v[i].b;
            if (r->lv + r->len < end)
                end = r->lv + r->len;
            if (lv == g->lv) {
                if (g->npar != nver)
                    return KITH_OK;
                for (uint32_t k = 0; k < g->npar; k++) {
                    bool found = false;
                    for (size_t j = 0; j < nver; j++)
                        found |= log->par[g->poff + k] == ver[j];
                    if (!found)
                        return KITH_OK;
                }
            } else if (nver != 1 || ver[0] != lv - 1) {
                return KITH_OK;
            }
            uint32_t k = lv - r->lv, cnt = end - lv;
            int rc;
            if (r->kind == OP_INS) {
                if ((int64_t)r->pos + k > len) {
                    out->bad_lv = lv;
                    return KITH_ERANGE;
                }
                rc = xf_push(&out->xf, OP_INS, r->pos + k, cnt, lv);
                len += cnt;
            } else if (!r->back) {
                if ((int64_t)r->pos + cnt > len) {
                    out->bad_lv = lv;
                    return KITH_ERANGE;
                }
                rc = xf_push(&out->xf, OP_DEL, r->pos, cnt, lv);
                len -= cnt;
            } else {
                if (r->pos < k + cnt - 1 || (int64_t)r->pos - k >= len) {
                    out->bad_lv = lv;
                    return KITH_ERANGE;
                }
                rc = xf_push(&out->xf, OP_DEL, r->pos - k - (cnt - 1), cnt, lv);
                len -= cnt;
            }
            if (rc)
                return rc;
            tip = end - 1;
            ver = &tip;
            nver = 1;
            lv = end;
        }
    }
    *done = true;
    return KITH_OK;
}

int walker_run(const oplog *log, const uint32_t *from, size_t nfrom, size_t from_len,
               const uint32_t *to, size_t nto, bool want_spans, walk_out *out)
{
    memset(out, 0, sizeof *out);
    out->bad_lv = LV_NONE;
    spans sp = {0};
    tracker t = {.log = log};
    int rc;
    if (!want_spans) {
        bool done = false;
        rc = graph_diff(log, from, nfrom, to, nto, DIFF_SHARED, &sp, NULL);
        if (rc == KITH_OK)
            rc = linear_path(log, from, nfrom, from_len, &sp, out, &done);
        kith_free(sp.v);
        sp = (spans){0};
        if (rc || done) {
            if (rc) {
                kith_free(out->xf.ops);
                out->xf = (xf_list){0};
            }
            return rc;
        }
        kith_free(out->xf.ops);
        out->xf = (xf_list){0};
    }
    /* Blame needs every char's id: walk from the start. A merge needs only
     * the ops since the last version both sides descend from. */
    uint32_t common = LV_NONE;
    rc = graph_diff(log, from, nfrom, to, nto, want_spans ? DIFF_ROOT : DIFF_CRITICAL, &sp,
                    &common);
    if (rc)
        goto fail;
    bool any_new = false;
    for (size_t i = 0; i < sp.n; i++)
        any_new |= sp.v[i].flag == F_B;
    if (!any_new && !want_spans)
        goto done;
    t.base = log->n;
    for (size_t i = 0; i < sp.n; i++)
        if (sp.v[i].a < t.base)
            t.base = sp.v[i].a;
    t.lvmap = kith_malloc((log->n - t.base + 1) * sizeof(uint32_t));
    if (!t.lvmap) {
        rc = KITH_ENOMEM;
        goto fail;
    }
    if (common != LV_NONE) {
        /* The text at the common version, as one placeholder item. */
        uint32_t bid;
        item ph = {.id = UW_BASE, .len = UW_LEN, .ol = LV_NONE, .orr = LV_NONE,
                   .state = INS, .gone = 0};
        if (new_block(&t, &bid) ||
            kith_grow((void **)&t.order, &t.caporder, 1, sizeof(uint32_t)) ||
            kith_grow((void **)&t.cur_version, &t.capcur, 1, sizeof(uint32_t))) {
            rc = KITH_ENOMEM;
            goto fail;
        }
        t.order[0] = bid;
        t.norder = 1;
        t.pool[bid]->it[0] = ph;
        t.pool[bid]->n = 1;
        t.pool[bid]->cur = t.pool[bid]->end = UW_LEN;
        if ((rc = fen_rebuild(&t)) || (rc = uw_set(&t, UW_BASE, bid)))
            goto fail;
        t.cur_version[0] = common;
        t.ncur = 1;
    }
    /* The text at @from already holds every op in from's history: replay
     * those first without output, then the new ones (a valid topological
     * order: nothing in from's history descends from a new op). Spans are
     * newest first, so walk them backwards. */
    if ((rc = replay_in_order(&t, &sp, false, &out->xf)) ||
        (rc = replay_in_order(&t, &sp, true, &out->xf)))
        goto fail;
    if (want_spans && (rc = collect_spans(&t, out)))
        goto fail;
done:
    kith_free(sp.v);
    tracker_free(&t);
    return KITH_OK;
fail:
    out->bad_lv = t.bad_lv;
    kith_free(sp.v);
    tracker_free(&t);
    kith_free(out->xf.ops);
    kith_free(out->spans);
    out->xf.ops = NULL;
    out->spans = NULL;
    out->xf.n = out->nspans = 0;
    return rc;
}

void walk_out_free(walk_out *out)
{
    kith_free(out->xf.ops);
    kith_free(out->spans);
    memset(out, 0, sizeof *out);
}
