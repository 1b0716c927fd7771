/* The machine's disks and balloon as the VMM sees them (virt.h, "Disks and the balloon"): the
 * device-side work of a snapshot (release, reopen) and of the balloon, so that src/vmm/ never
 * holds a device's struct block * or its lock. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_balloon.h"
#include "hw/virtio/virtio_blk.h"
#include "machine/virt_int.h"

int virt_device_stats(struct virt_machine *m, unsigned slot, const char **type,
                      struct virt_device_stats *out)
{
    struct vdev_stats vs = {0};

    if (slot >= VIRT_VIRTIO_SLOTS || !m->vdevs[slot].type || !m->vdevs[slot].type->stats)
        return -ENODEV;
    *type = m->vdevs[slot].type->name;
    m->vdevs[slot].type->stats(m->vdevs[slot].dev, &vs);
    out->reads = vs.reads;
    out->writes = vs.writes;
    out->read_bytes = vs.read_bytes;
    out->write_bytes = vs.write_bytes;
    out->read_throttled = vs.read_throttled;
    out->write_throttled = vs.write_throttled;
    out->read_throttled_ns = vs.read_throttled_ns;
    out->write_throttled_ns = vs.write_throttled_ns;
    out->read_errors = vs.read_errors;
    out->write_errors = vs.write_errors;
    return 0;
}

int virt_device_reconfigure(struct virt_machine *m, unsigned slot, const char *opts, char *err)
{
    int ret;

    if (slot >= m->cfg.ndevices || !m->vdevs[slot].type || !m->vdevs[slot].type->reconfigure) {
        snprintf(err, VDEV_ERR_LEN, "device %u: nothing of it can change while it runs", slot);
        return -ENODEV;
    }
    ret = m->vdevs[slot].type->reconfigure(m->vdevs[slot].dev, opts, err);
    if (ret == 0)
        virt_set_device_opts(m, slot, opts);
    return ret;
}

/* The block of the disk in `slot`, or NULL when that slot holds another device. */
static struct block *disk_block(struct virt_machine *m, unsigned slot)
{
    const struct vdev_type *disk = vdev_type_find("disk");

    if (slot >= m->cfg.ndevices || !disk || m->vdevs[slot].type != disk)
        return NULL;
    return virtio_blk_block(m->vdevs[slot].dev);
}

/* One image of a chain into *out. */
static int layer_info(struct block *bs, unsigned slot, struct virt_disk_info *out)
{
    memset(out, 0, sizeof(*out));
    out->slot = slot;
    out->readonly = block_readonly(bs);
    out->length = block_length(bs);
    if (snprintf(out->path, sizeof(out->path), "%s", block_path(bs)) >= (int)sizeof(out->path) ||
        snprintf(out->format, sizeof(out->format), "%s", block_format_name(bs)) >=
            (int)sizeof(out->format))
        return -ENAMETOOLONG;
    return 0;
}

int virt_disk_info(struct virt_machine *m, unsigned slot, struct virt_disk_info *out)
{
    struct block *bs = disk_block(m, slot);

    if (!bs) {
        memset(out, 0, sizeof(*out));
        return -ENODEV;
    }
    return layer_info(bs, slot, out);
}

int virt_disk_chain(struct virt_machine *m, unsigned slot, struct virt_disk_info *layers,
                    unsigned max, unsigned *n)
{
    struct block *bs = disk_block(m, slot);
    int ret = 0;

    *n = 0;
    if (!bs)
        return -ENODEV;
    for (; bs && *n < max && ret == 0; bs = block_backing(bs))
        ret = layer_info(bs, slot, &layers[(*n)++]);
    return ret;
}

int virt_disk_release(struct virt_machine *m, unsigned slot)
{
    struct block *bs = disk_block(m, slot);

    return bs ? block_release(bs) : -ENODEV;
}

int virt_disk_reopen(struct virt_machine *m, unsigned slot, const char *path, const char *format,
                     char *err)
{
    struct block *bs = disk_block(m, slot);

    if (!bs) {
        snprintf(err, BLOCK_ERR_LEN, "device slot %u holds no disk", slot);
        return -ENODEV;
    }
    return block_reopen(bs, path, format, false, err);
}

int virt_disk_track_writes(struct virt_machine *m, unsigned slot, struct dirty_log *log)
{
    struct block *bs = disk_block(m, slot);

    if (!bs)
        return -ENODEV;
    virtio_blk_lock(m->vdevs[slot].dev);
    block_track_writes(bs, log);
    virtio_blk_unlock(m->vdevs[slot].dev);
    return 0;
}

int virt_disk_read(struct virt_machine *m, unsigned slot, uint64_t offset, void *buf, size_t len)
{
    struct block *bs = disk_block(m, slot);
    int ret;

    if (!bs)
        return -ENODEV;
    virtio_blk_lock(m->vdevs[slot].dev);
    ret = block_read(bs, offset, buf, len);
    virtio_blk_unlock(m->vdevs[slot].dev);
    return ret;
}

/* strdup() of s, NULL staying NULL; *oom set when a copy fails. */
static const char *dup_or_null(const char *s, bool *oom)
{
    char *c = s ? strdup(s) : NULL;

    *oom |= s && !c;
    return c;
}

int virt_config_copy(struct virt_machine *m, struct virt_config *out)
{
    bool oom = false;

    pthread_mutex_lock(&m->lock);
    *out = m->cfg;
    out->console_ring = NULL;
    out->preloaded_ram = NULL;
    out->bios = dup_or_null(m->cfg.bios, &oom);
    out->kernel = dup_or_null(m->cfg.kernel, &oom);
    out->initrd = dup_or_null(m->cfg.initrd, &oom);
    out->append = dup_or_null(m->cfg.append, &oom);
    for (unsigned i = 0; i < m->cfg.ndevices; i++) {
        out->devices[i].type = dup_or_null(m->cfg.devices[i].type, &oom);
        out->devices[i].opts = dup_or_null(m->cfg.devices[i].opts, &oom);
    }
    pthread_mutex_unlock(&m->lock);
    if (oom) {
        virt_config_free(out);
        return -ENOMEM;
    }
    return 0;
}

int virt_balloon_set(struct virt_machine *m, uint64_t target_bytes)
{
    struct virtio_balloon *b = virt_find_device(m, "balloon", 0);

    if (!b)
        return -ENODEV;
    if (target_bytes > m->cfg.mem_size)
        return -EINVAL;
    virtio_balloon_set_target(b, target_bytes);
    return 0;
}

int virt_balloon_get(struct virt_machine *m, struct balloon_info *out)
{
    struct virtio_balloon *b = virt_find_device(m, "balloon", 0);

    if (!b)
        return -ENODEV;
    virtio_balloon_get_info(b, out);
    return 0;
}
