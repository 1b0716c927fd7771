/* The qcow2 metadata caches: a few one-cluster tables (L2 tables or refcount blocks) held in
 * on-disk byte order, least recently used slot evicted first. Dirty slots are written back
 * all together, when a dirty slot must be evicted or at flush; a cache with `depends_on`
 * first writes that cache and syncs the file, so an L2 table never reaches the disk before
 * the refcounts of the clusters it points to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2_int.h"

int qcow2_cache_init(struct qcow2_cache *c, const char *name, unsigned nslots,
                     struct qcow2_cache *depends_on)
{
    memset(c, 0, sizeof(*c));
    c->slots = calloc(nslots, sizeof(*c->slots));
    if (!c->slots)
        return -ENOMEM;
    c->name = name;
    c->nslots = nslots;
    c->depends_on = depends_on;
    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    if (!c->slots)
        return;
    for (unsigned i = 0; i < c->nslots; i++)
        free(c->slots[i].data);
    free(c->slots);
    c->slots = NULL;
}

static int qcow2_cache_write_slot(struct qcow2 *s, struct qcow2_cache *c,
                                  struct qcow2_cache_slot *slot)
{
    int ret = qcow2_check_overlap(s, slot->offset, s->cluster_size, c->name);

    if (ret < 0)
        return ret;
    ret = qcow2_write_host(s, slot->offset, slot->data, s->cluster_size);
    if (ret < 0) {
        block_report(s->bs, "writing %s at 0x%llx: %s", c->name, (unsigned long long)slot->offset,
                     strerror(-ret));
        return ret;
    }
    slot->dirty = false;
    return 0;
}

int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool load,
                    struct qcow2_cache_slot **out)
{
    struct qcow2_cache_slot *victim = NULL;
    int ret;

    for (unsigned i = 0; i < c->nslots; i++) {
        struct qcow2_cache_slot *slot = &c->slots[i];

        if (slot->offset == offset && slot->data) {
            slot->last_use = ++c->tick;
            *out = slot;
            return 0;
        }
        if (!victim || slot->last_use < victim->last_use)
            victim = slot;
    }
    /* Write back every dirty slot, not just the victim: the dependency costs one sync, and
     * the next evictions then find clean slots. */
    if (victim->data && victim->dirty) {
        ret = qcow2_cache_flush(s, c);
        if (ret < 0)
            return ret;
    }
    if (!victim->data) {
        victim->data = malloc(s->cluster_size);
        if (!victim->data)
            return -ENOMEM;
    }
    victim->offset = 0;
    if (load) {
        ret = block_file_read(s->bs->fd, offset, victim->data, s->cluster_size);
        if (ret < 0) {
            block_report(s->bs, "reading %s at 0x%llx: %s", c->name, (unsigned long long)offset,
                         strerror(-ret));
            return ret;
        }
    } else {
        memset(victim->data, 0, s->cluster_size);
    }
    victim->offset = offset;
    victim->dirty = false;
    victim->last_use = ++c->tick;
    *out = victim;
    return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache_slot *slot)
{
    slot->dirty = true;
}

int qcow2_cache_flush(struct qcow2 *s, struct qcow2_cache *c)
{
    bool dirty = false;
    int ret;

    for (unsigned i = 0; i < c->nslots; i++)
        dirty |= c->slots[i].data && c->slots[i].dirty;
    if (!dirty)
        return 0;
    if (c->depends_on) {
        ret = qcow2_cache_flush(s, c->depends_on);
        if (ret == 0)
            ret = qcow2_sync_host(s);
        if (ret < 0)
            return ret;
    }
    for (unsigned i = 0; i < c->nslots; i++) {
        struct qcow2_cache_slot *slot = &c->slots[i];

        if (slot->data && slot->dirty) {
            ret = qcow2_cache_write_slot(s, c, slot);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset)
{
    for (unsigned i = 0; i < c->nslots; i++) {
        if (c->slots[i].offset == offset && !c->slots[i].dirty) {
            c->slots[i].offset = 0;
            c->slots[i].last_use = 0;
        }
    }
}
