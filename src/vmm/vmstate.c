#include "vmm/vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/guest_mem.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/agent_client.h"
#include "vmm/snapshots.h"
#include "vmm/stream.h"
#include "vmm/transport.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate_int.h"

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VMSTATE_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* A header's document for the machine as it runs now, after `edit` (may be NULL) changed it.
 * malloc'd, or NULL with err. */
char *header_config(struct virt_machine *m,
                    int (*edit)(struct vmconfig *vc, void *opaque, char *err), void *opaque,
                    char *err)
{
    struct vmconfig vc;
    char *json = NULL;

    if (vmconfig_from_virt(virt_get_config(m), &vc, err))
        return NULL;
    if (!edit || edit(&vc, opaque, err) == 0) {
        json = vmconfig_dumps(&vc);
        if (!json)
            set_err(err, "out of memory");
    }
    vmconfig_free(&vc);
    return json;
}

/* Sets a string key of device `slot`'s conf through its type's table; NULL removes it. */
int conf_set_str(struct vmconfig *vc, unsigned slot, const char *key, const char *value, char *err)
{
    struct vmconfig_device *d = &vc->devices[slot];
    char verr[VDEV_ERR_LEN];

    if (vdev_conf_set(d->type, d->conf, key, value ? json_string(value) : NULL, verr)) {
        set_err(err, "disk %u: %.480s", slot, verr);
        return -EINVAL;
    }
    return 0;
}

/* The size of a dirty bitmap for m's RAM. */
size_t bitmap_bytes(struct virt_machine *m)
{
    return (size_t)((virt_ram(m)->size / 4096 + 63) / 64) * sizeof(uint64_t);
}

uint64_t *bitmap_alloc(struct virt_machine *m)
{
    return calloc(1, bitmap_bytes(m));
}

/* The end of a stream, written with the vCPUs stopped and the devices quiesced: the pages in
 * bits plus those dirtied since they were taken (collected only now, when nothing can dirty
 * another), or all of RAM when bits is NULL; every hart's and device's section; the trailer.
 * 0 or -EIO (the writer holds the message). */
int write_stopped_state(struct virt_machine *m, struct stream_writer *w, uint64_t *bits)
{
    struct state_sink sink = stream_writer_sink(w);

    if (bits)
        virt_harvest_dirty(m, bits);
    if (stream_write_ram(w, virt_ram(m), bits, NULL, NULL) || virt_save_sections(m, &sink) ||
        stream_write_end(w))
        return -EIO;
    return 0;
}

/* ---- snapshot ---- */

struct frozen_disk {
    unsigned slot;
    char live[PATH_MAX];   /* the disk's path, where the VM goes on in an overlay */
    char frozen[PATH_MAX]; /* where the image as of the snapshot now lives */
    char fmt[16];
};

/* Where the writable disk in `f->slot` will be frozen (f->frozen); nothing is touched yet. */
static int plan_freeze(struct block *bs, const char *snap_abs, struct frozen_disk *f, char *err)
{
    snprintf(f->live, sizeof(f->live), "%s", block_path(bs));
    snprintf(f->fmt, sizeof(f->fmt), "%s", block_format_name(bs));
    if (snprintf(f->frozen, sizeof(f->frozen), "%s.disk%u", snap_abs, f->slot) >=
        (int)sizeof(f->frozen)) {
        set_err(err, "%s: path too long", snap_abs);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Puts the disk aside as f->frozen and continues the VM on a new overlay at its old path.
 * Device quiesced. On failure everything is as before. */
static int freeze_disk(struct virt_machine *m, struct block *bs, const struct frozen_disk *f,
                       char *err)
{
    char berr[BLOCK_ERR_LEN];
    int ret;

    ret = block_release(bs);
    if (ret < 0) {
        set_err(err, "%s: flush before the snapshot failed: %s", f->live, strerror(-ret));
        goto reopen_live;
    }
    /* A backing name relative to the image's folder would break in the snapshot's folder:
     * it becomes absolute first (the same file, so nothing to undo on failure). */
    if (!snapshot_same_folder(f->live, f->frozen)) {
        ret = block_anchor_backing(f->live, f->fmt, berr);
        if (ret < 0) {
            set_err(err, "%s: %s", f->live, berr);
            goto reopen_live;
        }
    }
    if (rename(f->live, f->frozen) < 0) {
        ret = -errno;
        set_err(err,
                "%s: cannot move it to %s (%s); the snapshot file must be on the disk's "
                "file system",
                f->live, f->frozen, strerror(errno));
        goto reopen_live;
    }
    ret = block_create_qcow2(f->live, 0, 0, f->frozen, f->fmt, berr);
    if (ret == 0)
        ret = block_reopen(bs, f->live, "qcow2", false, berr);
    if (ret < 0) {
        set_err(err, "%s: cannot start the overlay: %s", f->live, berr);
        unlink(f->live);
        rename(f->frozen, f->live);
        goto reopen_live;
    }
    /* The disk's config names what it runs on now: a qcow2 overlay at its old path. */
    if (vmconfig_machine_set(m, f->slot, "path", json_string(f->live), err) ||
        vmconfig_machine_set(m, f->slot, "format", json_string("qcow2"), err))
        log_error("disk %u: %s", f->slot, err);
    return 0;

reopen_live:
    if (block_reopen(bs, f->live, f->fmt, false, berr) < 0)
        log_error("%s: cannot reopen the disk after a failed snapshot: %s", f->live, berr);
    return ret;
}

struct frozen_set {
    const struct frozen_disk *f;
    unsigned n;
};

/* Frozen disks point at their frozen image and say where they were ("snapshot_of"). */
static int snapshot_edit(struct vmconfig *vc, void *opaque, char *err)
{
    const struct frozen_set *s = opaque;

    for (unsigned i = 0; i < s->n; i++) {
        const struct frozen_disk *f = &s->f[i];

        if (conf_set_str(vc, f->slot, "path", f->frozen, err) ||
            conf_set_str(vc, f->slot, "format", f->fmt, err) ||
            conf_set_str(vc, f->slot, "snapshot_of", f->live, err))
            return -EINVAL;
    }
    return 0;
}

int vm_snapshot(struct virt_machine *m, const char *path, struct vm_snapshot_stats *st, char *err)
{
    struct frozen_disk *disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*disks));
    struct stream_writer *w = NULL;
    char tmp[PATH_MAX], abs_path[PATH_MAX], dir[PATH_MAX];
    uint64_t t0 = time_now_ns(), tp = 0, *bits = NULL;
    unsigned nd = 0, frozen = 0;
    bool was_paused = false, paused = false, quiesced = false;
    char *json = NULL;
    int fd = -1, ret;

    memset(st, 0, sizeof(*st));
    if (!disks) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if (!realpath(dirname(dir), abs_path)) {
        ret = -ENOENT;
        set_err(err, "%s: its folder does not exist: %s", path, strerror(errno));
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if (strlen(abs_path) + strlen(basename(dir)) + 2 > sizeof(abs_path) - 16) {
        ret = -ENAMETOOLONG;
        set_err(err, "%s: path too long", path);
        goto out;
    }
    strcat(abs_path, "/");
    strcat(abs_path, basename(dir));
    if (snprintf(tmp, sizeof(tmp), "%s.part", abs_path) >= (int)sizeof(tmp)) {
        ret = -ENAMETOOLONG; /* cannot happen after the check above; the compiler cannot tell */
        set_err(err, "%s: path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    bits = bitmap_alloc(m);
    ret = bits ? stream_writer_create(fd, path, 1, &w) : -ENOMEM;
    if (ret) {
        set_err(err, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < virt_get_config(m)->ndevices; i++) {
        struct block *bs = virt_disk_block(m, i);

        if (!bs || block_readonly(bs))
            continue;
        disks[nd].slot = i;
        ret = plan_freeze(bs, abs_path, &disks[nd], err);
        if (ret)
            goto out;
        nd++;
    }
    json = header_config(m, snapshot_edit, &(struct frozen_set){disks, nd}, err);
    if (!json) {
        ret = -EINVAL;
        goto out;
    }
    if (stream_write_header(w, json, 0)) {
        ret = -EIO;
        set_err(err, "%s: cannot write the header", path);
        goto out;
    }

    /* Pre-copy while the guest runs, then a short stop for what it dirtied meanwhile, the
     * disks and the devices: the pause is what a user notices, not the file's size. */
    ret = virt_pause(m);
    was_paused = ret == -EALREADY;
    if (ret && !was_paused) {
        set_err(err, "the VM cannot be paused now (it is resetting or exiting)");
        goto out;
    }
    paused = true;
    virt_dirty_log(m, true);
    virt_harvest_dirty(m, bits);
    if (!was_paused) {
        virt_resume(m);
        paused = false;
    }
    if (stream_write_ram(w, virt_ram(m), bits, &st->ram_pages, &st->zero_pages))
        goto io_error;
    if (!was_paused) {
        ret = virt_pause(m);
        if (ret) {
            set_err(err, "the VM cannot be paused now (it is resetting or exiting)");
            goto out;
        }
        paused = true;
    }
    tp = time_now_ns();
    virt_quiesce(m);
    quiesced = true;
    memset(bits, 0, bitmap_bytes(m)); /* the pre-copy pass is written */
    for (frozen = 0; frozen < nd; frozen++) {
        ret = freeze_disk(m, virt_disk_block(m, disks[frozen].slot), &disks[frozen], err);
        if (ret)
            goto out;
    }
    if (write_stopped_state(m, w, bits))
        goto io_error;
    virt_dirty_log(m, false);
    virt_unquiesce(m);
    quiesced = false;
    if (!was_paused)
        virt_resume(m);
    paused = false;
    st->paused_ns = time_now_ns() - tp;
    if (fsync(fd) < 0 || rename(tmp, abs_path) < 0) {
        ret = -errno;
        set_err(err, "%s: cannot complete: %s", path, strerror(errno));
        goto out;
    }
    st->bytes = stream_bytes_written(w);
    st->disks = nd;
    ret = 0;
    goto out;

io_error:
    ret = -EIO;
    set_err(err, "%s", stream_writer_error(w) ? stream_writer_error(w) : "write failed");
out:
    if (ret && frozen)
        log_warn("snapshot failed after %u disk(s) moved to their overlays; the VM goes on in "
                 "them, the frozen images stay beside %s",
                 frozen, path);
    virt_dirty_log(m, false);
    if (quiesced)
        virt_unquiesce(m);
    if (paused && !was_paused)
        virt_resume(m);
    if (tp && !st->paused_ns)
        st->paused_ns = time_now_ns() - tp;
    if (ret && fd >= 0)
        unlink(tmp);
    stream_writer_destroy(w);
    free(json);
    free(bits);
    free(disks);
    if (fd >= 0)
        close(fd);
    st->total_ns = time_now_ns() - t0;
    return ret;
}

/* ---- restore ---- */

/* A full copy of the image chain at src into a new standalone qcow2 at dst. */
static int copy_image(const char *src, const char *fmt, const char *dst, char *err)
{
    char berr[BLOCK_ERR_LEN];
    struct block *in = NULL, *out = NULL;
    const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk), *zero = calloc(1, chunk);
    int ret;

    if (!buf || !zero) {
        ret = -ENOMEM;
        set_err(err, "%s: out of memory", dst);
        goto out;
    }
    ret = block_open(src, fmt, true, &in, berr);
    if (ret == 0)
        ret = block_create_qcow2(dst, block_length(in), 0, NULL, NULL, berr);
    if (ret == 0)
        ret = block_open(dst, "qcow2", false, &out, berr);
    if (ret < 0) {
        set_err(err, "%s", berr);
        goto out;
    }
    for (uint64_t off = 0; off < block_length(in) && ret == 0; off += chunk) {
        size_t n = block_length(in) - off < chunk ? (size_t)(block_length(in) - off) : chunk;

        ret = block_read(in, off, buf, n);
        if (ret == 0 && memcmp(buf, zero, n))
            ret = block_write(out, off, buf, n);
    }
    if (ret == 0)
        ret = block_flush(out);
    if (ret < 0)
        set_err(err, "%s: copying from %s failed: %s", dst, src, strerror(-ret));
out:
    block_close(in);
    block_close(out);
    free(buf);
    free(zero);
    return ret;
}

/* Where a snapshot's disk goes on: a new overlay (or copy) at its old path or in the clone
 * folder; the disk's config is changed to it through the disk type's table. */
static int restore_disk(struct vmconfig *vc, unsigned slot, const struct vm_restore_opts *o,
                        char *err)
{
    json_t *conf = vc->devices[slot].conf;
    const char *live = json_string_value(json_object_get(conf, "snapshot_of"));
    const char *frozen = json_string_value(json_object_get(conf, "path"));
    const char *fmt = json_string_value(json_object_get(conf, "format"));
    char target[PATH_MAX], berr[BLOCK_ERR_LEN], base[PATH_MAX];
    int ret;

    if (!live)
        return 0; /* a read-only disk or a migration: used as it is */
    if (!frozen || !fmt) {
        set_err(err, "machine config: disk %u: a snapshot's disk lacks its image or format", slot);
        return -EINVAL;
    }
    if (o->clone_dir) {
        snprintf(base, sizeof(base), "%s", live);
        if (snprintf(target, sizeof(target), "%s/%s", o->clone_dir, basename(base)) >=
            (int)sizeof(target)) {
            set_err(err, "%s: path too long", o->clone_dir);
            return -ENAMETOOLONG;
        }
    } else {
        snprintf(target, sizeof(target), "%s", live);
    }
    if (o->clone_dir && o->full_clone)
        ret = copy_image(frozen, fmt, target, err);
    else if ((ret = block_create_qcow2(target, 0, 0, frozen, fmt, berr)) < 0)
        set_err(err, "%s", berr);
    if (ret < 0)
        return ret;
    snapshot_note_dependant(frozen, target); /* for snapshot-delete; a full copy is none */
    if (conf_set_str(vc, slot, "path", target, err) ||
        conf_set_str(vc, slot, "format", "qcow2", err) ||
        conf_set_str(vc, slot, "snapshot_of", NULL, err))
        return -EINVAL;
    return 0;
}

/* ---- block migration, target side ---- */

/* One disk being received: a new image, created at its size record and filled by the records
 * after it; handed to the machine (closed, its options pointing at it) before it is built. */
struct disk_target {
    char path[PATH_MAX];
    char fmt[16];
    struct block *bs;
    uint64_t size;
    bool created;
};

static int disk_target_create(struct vmconfig *vc, const struct vm_restore_opts *o,
                              const char *what, const struct stream_record *rec,
                              struct disk_target *t, char *err)
{
    char base[PATH_MAX], berr[BLOCK_ERR_LEN];
    struct block_create_opts co = {.size = rec->offset};
    struct stat sb;
    unsigned slot = rec->slot;
    const char *orig, *fmt;
    int ret;

    if (slot >= vc->ndevices || strcmp(vc->devices[slot].type->name, "disk")) {
        set_err(err, "%s: disk contents for device %u, which is not a disk of the machine", what,
                slot);
        return -EINVAL;
    }
    if (t[slot].created) {
        set_err(err, "%s: disk %u announced twice", what, slot);
        return -EINVAL;
    }
    orig = json_string_value(json_object_get(vc->devices[slot].conf, "path"));
    fmt = json_string_value(json_object_get(vc->devices[slot].conf, "format"));
    if (!orig || !fmt) {
        set_err(err, "%s: disk %u lacks its image or format", what, slot);
        return -EINVAL;
    }
    snprintf(t[slot].fmt, sizeof(t[slot].fmt), "%s", fmt);
    snprintf(base, sizeof(base), "%s", orig);
    if (snprintf(t[slot].path, sizeof(t[slot].path), "%s%s%s", o->disk_dir ? o->disk_dir : "",
                 o->disk_dir ? "/" : "",
                 o->disk_dir ? basename(base) : orig) >= (int)sizeof(t[slot].path)) {
        set_err(err, "%s: path too long", o->disk_dir ? o->disk_dir : orig);
        return -ENAMETOOLONG;
    }
    if (lstat(t[slot].path, &sb) == 0) {
        set_err(err,
                "%s: disk %u would be copied to %s, which exists (the copy is a new image; "
                "pass --disk-dir DIR to put it elsewhere)",
                what, slot, t[slot].path);
        return -EEXIST;
    }
    ret = block_create(t[slot].path, t[slot].fmt, &co, berr);
    t[slot].created = ret == 0;
    if (ret == 0)
        ret = block_open(t[slot].path, t[slot].fmt, false, &t[slot].bs, berr);
    if (ret < 0) {
        set_err(err, "%s: disk %u: %s", what, slot, berr);
        return ret;
    }
    t[slot].size = rec->offset;
    log_info("migration: disk %u (%" PRIu64 " MiB) is copied to %s", slot, rec->offset >> 20,
             t[slot].path);
    return 0;
}

/* A size, zero or data record of a block migration. 0, or -errno with err. */
static int disk_target_record(struct vmconfig *vc, const struct vm_restore_opts *o,
                              const char *what, const struct stream_record *rec,
                              struct disk_target *t, char *err)
{
    struct disk_target *d = rec->slot < VIRT_VIRTIO_SLOTS ? &t[rec->slot] : NULL;
    int ret;

    if (rec->kind == STREAM_DISK_SIZE)
        return disk_target_create(vc, o, what, rec, t, err);
    if (!d || !d->bs) {
        set_err(err, "%s: contents for disk %u before its size", what, rec->slot);
        return -EINVAL;
    }
    if (rec->offset > d->size || rec->len > d->size - rec->offset) {
        set_err(err, "%s: disk %u record %" PRIu64 "+%zu is past its end (%" PRIu64 " bytes)", what,
                rec->slot, rec->offset, rec->len, d->size);
        return -EINVAL;
    }
    ret = rec->kind == STREAM_DISK_ZERO ? block_write_zeroes(d->bs, rec->offset, rec->len, true)
                                        : block_write(d->bs, rec->offset, rec->payload, rec->len);
    if (ret < 0)
        set_err(err, "%s: writing %" PRIu64 "+%zu failed: %s", d->path, rec->offset, rec->len,
                strerror(-ret));
    return ret;
}

/* Before the machine is built: every disk arrived, is flushed and closed, and the disk's
 * config names the copy. */
static int disk_targets_finish(struct vmconfig *vc, const char *what, struct disk_target *t,
                               char *err)
{
    for (unsigned i = 0; i < vc->ndevices; i++) {
        int ret;

        if (strcmp(vc->devices[i].type->name, "disk"))
            continue;
        if (!t[i].bs) {
            set_err(err, "%s: the stream carries no contents for disk %u", what, i);
            return -EINVAL;
        }
        ret = block_flush(t[i].bs);
        block_close(t[i].bs);
        t[i].bs = NULL;
        if (ret < 0) {
            set_err(err, "%s: flush failed: %s", t[i].path, strerror(-ret));
            return ret;
        }
        if (conf_set_str(vc, i, "path", t[i].path, err) ||
            conf_set_str(vc, i, "format", t[i].fmt, err))
            return -EINVAL;
    }
    return 0;
}

/* A failed receive leaves no partial copies behind. */
static void disk_targets_discard(struct disk_target *t)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        block_close(t[i].bs);
        t[i].bs = NULL;
        if (t[i].created && unlink(t[i].path) == 0)
            log_info("migration failed: removed the partial copy %s", t[i].path);
        t[i].created = false;
    }
}

/* The machine config for vc, its console on o->console_fd. */
static int build_config(const struct vmconfig *vc, const struct vm_restore_opts *o,
                        struct virt_config *cfg, char *err)
{
    virt_config_free(cfg);
    if (vmconfig_to_virt(vc, cfg)) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    cfg->console_fd = o->console_fd;
    cfg->console_ring = o->console_ring;
    return 0;
}

int vm_restore(struct transport *t, const char *what, const struct vm_restore_opts *o,
               struct virt_machine **out, bool *cloned, char *err)
{
    struct stream_reader *r = NULL;
    struct virt_machine *m = NULL;
    struct virt_config cfg = {0};
    struct vmconfig vc;
    struct guest_ram ram = {0};
    struct disk_target *disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*disks));
    char *json = NULL;
    bool ram_seen = false, copying = false;
    uint64_t t_build = 0;
    int ret = -1;

    *out = NULL;
    *cloned = false;
    vmconfig_init(&vc);
    if (!disks || stream_reader_create_on(t, what, &r)) {
        free(disks);
        set_err(err, "%s: out of memory", what);
        return -1;
    }
    if (stream_read_header(r, &json))
        goto stream_err;
    copying = stream_reader_flags(r) & STREAM_F_DISKS;
    {
        char what_hdr[128];

        snprintf(what_hdr, sizeof(what_hdr), "%.100s: machine config", what);
        if (vmconfig_parse(json, strlen(json), what_hdr, &vc, err))
            goto out;
    }
    if ((o->want_cpus && o->want_cpus != vc.cpus) || (o->want_mem && o->want_mem != vc.mem_size)) {
        set_err(err,
                "%s: the stream is for a machine with %u CPUs and %" PRIu64
                " MiB, not the %u CPUs and %" PRIu64 " MiB asked for",
                what, vc.cpus, vc.mem_size >> 20, o->want_cpus ? o->want_cpus : vc.cpus,
                (o->want_mem ? o->want_mem : vc.mem_size) >> 20);
        goto out;
    }
    if (guest_ram_init(&ram, VIRT_RAM_BASE, vc.mem_size)) {
        set_err(err, "%s: cannot reserve %" PRIu64 " MiB of RAM", what, vc.mem_size >> 20);
        goto out;
    }
    for (;;) {
        struct stream_record rec;

        if (stream_read_next(r, m ? NULL : &ram, &rec))
            goto stream_err;
        if (rec.item == STREAM_ITEM_RAM) {
            ram_seen = true;
            continue;
        }
        if (rec.item == STREAM_ITEM_DISK) {
            if (disk_target_record(&vc, o, what, &rec, disks, err))
                goto out;
            continue;
        }
        if (!m && copying && disk_targets_finish(&vc, what, disks, err))
            goto out;
        if (!m && (rec.item == STREAM_ITEM_SECTION || ram_seen)) {
            /* The disks are touched only now: a migration source has released them. */
            for (unsigned i = 0; i < vc.ndevices; i++) {
                if (!strcmp(vc.devices[i].type->name, "disk") && restore_disk(&vc, i, o, err))
                    goto out;
            }
            /* A clone shares no MAC or host socket with its origin: each type's hook. */
            if (o->clone_dir && vmconfig_clone(&vc, o->clone_dir, err))
                goto out;
            *cloned = o->clone_dir != NULL;
            if (build_config(&vc, o, &cfg, err))
                goto out;
            cfg.preloaded_ram = &ram;
            t_build = time_now_ns();
            if (virt_create(&cfg, &m)) {
                set_err(err, "%s: the machine it describes cannot be built here (see above)", what);
                goto out;
            }
            log_debug("restore: machine built in %.1f ms", (double)(time_now_ns() - t_build) / 1e6);
        }
        if (rec.item == STREAM_ITEM_SECTION) {
            char inner[STREAM_ERR_LEN];

            if (virt_load_section(m, rec.name, rec.version, rec.payload, rec.len, inner)) {
                set_err(err, "%s: %s", what, inner);
                goto out;
            }
            continue;
        }
        /* STREAM_ITEM_END, checksum verified. */
        if (!m) {
            /* A cold migration: config only; the machine boots afresh. */
            if (build_config(&vc, o, &cfg, err))
                goto out;
            cfg.preloaded_ram = NULL;
            if (virt_create(&cfg, &m)) {
                set_err(err, "%s: the machine it describes cannot be built here (see above)", what);
                goto out;
            }
        } else {
            char inner[STREAM_ERR_LEN];

            if (virt_load_finish(m, inner)) {
                set_err(err, "%s: %s", what, inner);
                goto out;
            }
            log_debug("restore: state loaded %.1f ms after the first section",
                      (double)(time_now_ns() - t_build) / 1e6);
        }
        break;
    }
    *out = m;
    m = NULL;
    ret = 0;
    goto out;

stream_err:
    set_err(err, "%s", stream_reader_error(r));
out:
    if (ret)
        disk_targets_discard(disks);
    free(disks);
    virt_destroy(m);
    guest_ram_destroy(&ram);
    /* The machine keeps pointers into cfg's strings: they live as long as the process. */
    if (ret)
        virt_config_free(&cfg);
    vmconfig_free(&vc);
    free(json);
    stream_reader_destroy(r);
    return ret;
}

/* ---- telling a clone's agent ---- */

struct clone_note {
    char sock[108];
    char line[256];
};

static void *clone_note_thread(void *opaque)
{
    struct clone_note *n = opaque;
    char reply[512];

    /* The agent starts late in boot and answers once a host client connects; a restored guest
     * is already up, so this normally succeeds at the first or second try. */
    for (int tries = 0; tries < 150; tries++) {
        int ret = agent_client_request(n->sock, n->line, 2000, reply, sizeof(reply));

        if (ret == 0) {
            log_info("clone: the guest agent took a new identity");
            break;
        }
        if (ret == -EIO) {
            log_warn("clone: the guest agent refused a new identity: %s", reply);
            break;
        }
        usleep(200000);
    }
    free(n);
    return NULL;
}

void vm_clone_notify_agent(struct virt_machine *m)
{
    const struct virt_config *cfg = virt_get_config(m);
    char sock[PATH_MAX] = "", mac[32] = "";
    struct clone_note *n;
    pthread_t t;

    for (unsigned i = 0; i < cfg->ndevices; i++) {
        if (!strcmp(cfg->devices[i].type, "net") && !mac[0])
            opt_get(cfg->devices[i].opts, "mac", mac, sizeof(mac));
    }
    if (agent_client_path(cfg, sock, sizeof(sock)) || strlen(sock) >= sizeof(n->sock) ||
        !(n = calloc(1, sizeof(*n))))
        return;
    memcpy(n->sock, sock, strlen(sock) + 1);
    if (mac[0])
        snprintf(n->line, sizeof(n->line),
                 "{\"id\":\"clone\",\"cmd\":\"regenerate-identity\",\"mac\":\"%s\"}\n", mac);
    else
        snprintf(n->line, sizeof(n->line), "{\"id\":\"clone\",\"cmd\":\"regenerate-identity\"}\n");
    if (pthread_create(&t, NULL, clone_note_thread, n)) {
        free(n);
        return;
    }
    pthread_detach(t);
}
