/* qcow2 refcounts and cluster allocation, spec §Host cluster management.
 *
 * Refcount blocks live in s->rb_cache; the refcount table is held in memory (host byte order)
 * and written entry by entry when it changes. Increments happen at once in memory; decrements
 * are deferred (s->pending) until the flush has made the tables that dropped the references
 * durable, so a cluster is never reused while a table on disk may still point to it.
 *
 * Allocation takes the first cluster whose refcount is 0 (reusing holes before growing the
 * file). A cluster range without a refcount block gets a new block placed inside that range,
 * describing itself; a cluster beyond the refcount table grows the table into fresh space at
 * the end of the file. Both write the new structure, sync, then publish it with one small
 * write (table entry, or header fields 48..59), so a crash at any point leaves at worst leaked
 * clusters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2_int.h"

/* How far past the end of the file allocation skips clusters that have a refcount. */
#define QCOW2_MAX_TAIL_LEAKS 65536

static uint64_t qcow2_refcount_max(const struct qcow2 *s)
{
    unsigned bits = 1u << s->refcount_order;

    return bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
}

/* Entry `i` of a refcount block. Sub-byte widths count from the least significant bit; wider
 * ones are big-endian (spec §Host cluster management, "Refcount block entry"). */
static uint64_t qcow2_refcount_entry_get(const struct qcow2 *s, const uint8_t *blk, uint64_t i)
{
    unsigned bits = 1u << s->refcount_order;
    uint64_t v = 0;

    if (bits < 8)
        return (blk[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    for (unsigned b = 0; b < bits / 8; b++)
        v = (v << 8) | blk[i * (bits / 8) + b];
    return v;
}

static void qcow2_refcount_entry_set(const struct qcow2 *s, uint8_t *blk, uint64_t i, uint64_t v)
{
    unsigned bits = 1u << s->refcount_order;

    if (bits < 8) {
        unsigned shift = i * bits % 8;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);

        blk[i * bits / 8] = (uint8_t)((blk[i * bits / 8] & ~mask) | ((v << shift) & mask));
        return;
    }
    for (unsigned b = bits / 8; b-- > 0;) {
        blk[i * (bits / 8) + b] = (uint8_t)v;
        v >>= 8;
    }
}

/* The host offset of the refcount block for table index `idx` (0: none), validated. */
static int qcow2_refcount_block_offset(struct qcow2 *s, uint64_t idx, uint64_t *offset)
{
    uint64_t e = idx < s->rt_entries ? s->rt[idx] : 0;
    uint64_t off = e & QCOW2_RTE_OFFSET_MASK;

    *offset = 0;
    if (e == 0)
        return 0;
    if ((e & QCOW2_RTE_RESERVED) || (off & (s->cluster_size - 1)))
        return qcow2_report_corruption(s,
                                       "refcount table entry %llu (0x%llx) is not a "
                                       "cluster-aligned offset",
                                       (unsigned long long)idx, (unsigned long long)e);
    if ((off >> s->cluster_bits) >= s->alloc_end)
        return qcow2_report_corruption(s,
                                       "refcount table entry %llu points past the end of "
                                       "the file (0x%llx)",
                                       (unsigned long long)idx, (unsigned long long)off);
    *offset = off;
    return 0;
}

/* Publishes refcount table entry `idx` (already set in s->rt) with one 8-byte write. */
static int qcow2_refcount_write_rt_entry(struct qcow2 *s, uint64_t idx)
{
    uint8_t be[8];

    qcow2_put_be64(be, s->rt[idx]);
    return qcow2_write_host(s, s->rt_offset + idx * 8, be, sizeof(be));
}

/* Creates the refcount block for table index `idx`, inside its own range: the first cluster
 * of the range that is not being allocated right now. No cluster of a range without a block
 * is in use, so that cluster is free. */
static int qcow2_refcount_alloc_block(struct qcow2 *s, uint64_t idx, uint64_t *offset)
{
    const uint64_t first = idx << s->rb_bits;
    struct qcow2_cache_slot *slot;
    uint64_t b = first == s->reserved ? first + 1 : first;
    uint64_t off = b << s->cluster_bits;
    int ret;

    if (off >= QCOW2_MAX_HOST_OFFSET)
        return -ENOSPC;
    ret = qcow2_check_overlap(s, off, s->cluster_size, "new refcount block");
    if (ret < 0)
        return ret;
    ret = qcow2_cache_get(s, &s->rb_cache, off, false, &slot);
    if (ret < 0)
        return ret;
    qcow2_refcount_entry_set(s, slot->data, b - first, 1);
    ret = qcow2_write_host(s, off, slot->data, s->cluster_size);
    if (ret < 0)
        goto forget_slot;
    if (b >= s->alloc_end)
        s->alloc_end = b + 1;
    /* The block must be durable before the table entry that publishes it. */
    ret = qcow2_sync_host(s);
    if (ret < 0)
        goto forget_slot;
    s->rt[idx] = off;
    ret = qcow2_refcount_write_rt_entry(s, idx);
    if (ret < 0) {
        s->rt[idx] = 0;
        goto forget_slot;
    }
    *offset = off;
    return 0;

forget_slot:
    slot->offset = 0;
    slot->last_use = 0;
    return ret;
}

/* Grows the refcount table so that it has an entry `need_idx`. The new refcount blocks and the
 * new table go to fresh clusters past everything allocated and past the old table's reach, so
 * the blocks can describe exactly those clusters; then a sync, the header update, a sync, and
 * the old table's clusters are freed at the next flush. */
static int qcow2_refcount_grow(struct qcow2 *s, uint64_t need_idx)
{
    const uint64_t cs = s->cluster_size, rbe = 1ull << s->rb_bits;
    uint64_t start = s->alloc_end, nb = 1, tc = 1, end, last_r, rt_off, new_entries;
    uint64_t old_off = s->rt_offset, old_clusters = s->rt_clusters;
    uint8_t *blk = NULL, *table = NULL, hdr[12];
    uint64_t *new_rt = NULL;
    int ret;

    if (start < s->rt_entries << s->rb_bits)
        start = s->rt_entries << s->rb_bits;
    if (s->reserved != UINT64_MAX && start <= s->reserved)
        start = s->reserved + 1;
    /* Fixed point: the blocks must cover themselves and the table, the table every block. */
    for (;;) {
        uint64_t nnb, ntc, entries;

        end = start + nb + tc;
        last_r = (end - 1) >> s->rb_bits;
        nnb = last_r - (start >> s->rb_bits) + 1;
        entries = (last_r > need_idx ? last_r : need_idx) + 1;
        entries += entries / 4 + 1;
        ntc = (entries * 8 + cs - 1) / cs;
        if (ntc < old_clusters + 1)
            ntc = old_clusters + 1;
        if (nnb <= nb && ntc <= tc)
            break;
        nb = nnb > nb ? nnb : nb;
        tc = ntc > tc ? ntc : tc;
    }
    if (tc * cs > QCOW2_MAX_RT_BYTES) {
        block_report(s->bs, "refcount table would grow past %u bytes: image is full",
                     QCOW2_MAX_RT_BYTES);
        return -ENOSPC;
    }
    if (end > (QCOW2_MAX_HOST_OFFSET >> s->cluster_bits))
        return -ENOSPC;
    new_entries = tc * cs / 8;
    new_rt = calloc(new_entries, sizeof(*new_rt));
    blk = malloc(cs);
    table = malloc(tc * cs);
    if (!new_rt || !blk || !table) {
        ret = -ENOMEM;
        goto free_buffers;
    }
    memcpy(new_rt, s->rt, s->rt_entries * sizeof(*new_rt));
    for (uint64_t r = start >> s->rb_bits, k = 0; r <= last_r; r++, k++) {
        uint64_t lo = r << s->rb_bits, hi = lo + rbe, boff = (start + k) << s->cluster_bits;

        memset(blk, 0, cs);
        for (uint64_t x = lo > start ? lo : start; x < (hi < end ? hi : end); x++)
            qcow2_refcount_entry_set(s, blk, x - lo, 1);
        ret = qcow2_write_host(s, boff, blk, cs);
        if (ret < 0)
            goto free_buffers;
        new_rt[r] = boff;
    }
    for (uint64_t i = 0; i < new_entries; i++)
        qcow2_put_be64(table + i * 8, new_rt[i]);
    rt_off = (start + nb) << s->cluster_bits;
    ret = qcow2_write_host(s, rt_off, table, tc * cs);
    if (ret < 0)
        goto free_buffers;
    s->alloc_end = end;
    ret = qcow2_sync_host(s);
    if (ret < 0)
        goto free_buffers;
    /* spec §Header bytes 48-59: refcount_table_offset and refcount_table_clusters. */
    qcow2_put_be64(hdr, rt_off);
    qcow2_put_be32(hdr + 8, (uint32_t)tc);
    ret = qcow2_write_host(s, 48, hdr, sizeof(hdr));
    if (ret < 0)
        goto free_buffers;
    ret = qcow2_sync_host(s);
    if (ret < 0)
        goto free_buffers;
    free(s->rt);
    s->rt = new_rt;
    new_rt = NULL;
    s->rt_entries = new_entries;
    s->rt_offset = rt_off;
    s->rt_clusters = (uint32_t)tc;
    qcow2_refcount_defer_free(s, old_off, old_clusters * cs);

free_buffers:
    free(table);
    free(blk);
    free(new_rt);
    return ret;
}

/* Adds `delta` (+1 or -1) to the refcount of cluster `index`; *result gets the new value. */
static int qcow2_refcount_update(struct qcow2 *s, uint64_t index, int delta, uint64_t *result)
{
    uint64_t idx = index >> s->rb_bits, boff, rc;
    struct qcow2_cache_slot *slot;
    int ret;

    if (idx >= s->rt_entries) {
        if (delta < 0)
            goto underflow;
        ret = qcow2_refcount_grow(s, idx);
        if (ret < 0)
            return ret;
    }
    ret = qcow2_refcount_block_offset(s, idx, &boff);
    if (ret < 0)
        return ret;
    if (boff == 0) {
        if (delta < 0)
            goto underflow;
        ret = qcow2_refcount_alloc_block(s, idx, &boff);
        if (ret < 0)
            return ret;
    }
    ret = qcow2_cache_get(s, &s->rb_cache, boff, true, &slot);
    if (ret < 0)
        return ret;
    rc = qcow2_refcount_entry_get(s, slot->data, index & ((1ull << s->rb_bits) - 1));
    if (delta < 0 && rc == 0)
        goto underflow;
    if (delta > 0 && rc == qcow2_refcount_max(s)) {
        block_report(s->bs, "refcount of cluster 0x%llx would overflow %u bits",
                     (unsigned long long)index << s->cluster_bits, 1u << s->refcount_order);
        return -ERANGE;
    }
    rc = delta > 0 ? rc + 1 : rc - 1;
    qcow2_refcount_entry_set(s, slot->data, index & ((1ull << s->rb_bits) - 1), rc);
    qcow2_cache_mark_dirty(slot);
    if (rc == 0 && index < s->free_hint)
        s->free_hint = index;
    if (result)
        *result = rc;
    return 0;

underflow:
    return qcow2_report_corruption(s, "refcount of cluster 0x%llx would drop below 0",
                                   (unsigned long long)index << s->cluster_bits);
}

/* The first cluster index at or after s->free_hint with refcount 0, other than the one being
 * allocated. Scans whole refcount blocks at a time. */
static int qcow2_refcount_find_free(struct qcow2 *s, uint64_t *index)
{
    const uint64_t mask = (1ull << s->rb_bits) - 1;
    const uint64_t limit = QCOW2_MAX_HOST_OFFSET >> s->cluster_bits;
    uint64_t c = s->free_hint;

    while (c < limit) {
        struct qcow2_cache_slot *slot;
        uint64_t boff;
        int ret = qcow2_refcount_block_offset(s, c >> s->rb_bits, &boff);

        if (ret < 0)
            return ret;
        if (boff == 0) {
            if (c == s->reserved) {
                c++;
                continue;
            }
            goto found;
        }
        ret = qcow2_cache_get(s, &s->rb_cache, boff, true, &slot);
        if (ret < 0)
            return ret;
        for (uint64_t i = c & mask; i <= mask; i++, c++) {
            if (c == s->reserved)
                continue;
            if (qcow2_refcount_entry_get(s, slot->data, i) == 0)
                goto found;
            /* A crash can leave a few refcounts just past the end of the file (leaks);
             * many more mean corruption, and scanning them could take for ever. */
            if (c >= s->alloc_end + QCOW2_MAX_TAIL_LEAKS)
                return qcow2_report_corruption(s,
                                               "refcounts claim clusters far past the end of "
                                               "the file (0x%llx)",
                                               (unsigned long long)c << s->cluster_bits);
        }
    }
    return -ENOSPC;

found:
    s->free_hint = c;
    *index = c;
    return 0;
}

int qcow2_refcount_alloc(struct qcow2 *s, uint64_t *offset)
{
    uint64_t c = 0, off;
    int ret;

    ret = qcow2_refcount_find_free(s, &c);
    if (ret < 0)
        return ret;
    off = c << s->cluster_bits;
    /* A free cluster inside the header or a table means the refcounts are corrupt. */
    ret = qcow2_check_overlap(s, off, s->cluster_size, "free cluster");
    if (ret < 0)
        return ret;
    s->reserved = c;
    if (c >= s->alloc_end)
        s->alloc_end = c + 1;
    ret = qcow2_refcount_update(s, c, +1, NULL);
    s->reserved = UINT64_MAX;
    if (ret < 0)
        return ret;
    qcow2_cache_forget(&s->l2_cache, off);
    *offset = off;
    return 0;
}

void qcow2_refcount_undo_alloc(struct qcow2 *s, uint64_t offset)
{
    if (qcow2_refcount_update(s, offset >> s->cluster_bits, -1, NULL) < 0)
        block_report(s->bs, "cluster 0x%llx leaked", (unsigned long long)offset);
}

void qcow2_refcount_defer_free(struct qcow2 *s, uint64_t offset, uint64_t len)
{
    uint64_t first, last;

    if (len == 0)
        return;
    first = offset >> s->cluster_bits;
    last = (offset + len - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        if (s->npending == s->pending_cap) {
            size_t cap = s->pending_cap ? s->pending_cap * 2 : 256;
            uint64_t *p = realloc(s->pending, cap * sizeof(*p));

            if (!p) {
                /* Leaking is safe; freeing too early would not be. */
                block_report(s->bs, "out of memory: clusters from 0x%llx leak",
                             (unsigned long long)(c << s->cluster_bits));
                return;
            }
            s->pending = p;
            s->pending_cap = cap;
        }
        s->pending[s->npending++] = c;
    }
}

int qcow2_refcount_apply_frees(struct qcow2 *s)
{
    int ret = 0;

    for (size_t i = 0; i < s->npending; i++) {
        uint64_t rc = 1;
        int r = qcow2_refcount_update(s, s->pending[i], -1, &rc);

        if (r < 0 && ret == 0)
            ret = r;
        if (r == 0 && rc == 0)
            qcow2_cache_forget(&s->l2_cache, s->pending[i] << s->cluster_bits);
    }
    if (s->npending)
        s->dbuf_entry = 0;
    s->npending = 0;
    if (ret < 0)
        return ret;
    return qcow2_refcount_flush(s);
}

int qcow2_refcount_flush(struct qcow2 *s)
{
    uint64_t end = s->alloc_end << s->cluster_bits;

    /* Every cluster with a refcount on disk lies inside the file. */
    if (end > s->file_size) {
        if (ftruncate(s->bs->fd, (off_t)end) < 0) {
            int ret = -errno;

            block_report(s->bs, "extending the file to %llu bytes: %s", (unsigned long long)end,
                         strerror(errno));
            return ret;
        }
        s->file_size = end;
        s->unsynced = true;
    }
    return qcow2_cache_flush(s, &s->rb_cache);
}
