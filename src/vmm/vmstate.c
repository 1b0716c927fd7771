#include "vmm/vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
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

#include "base/hostfs.h"
#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/guest_mem.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/agent_client.h"
#include "vmm/snapshots.h"
#include "vmm/stream.h"

#define OPTS_MAX 1024

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VMSTATE_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* ---- device option strings: "FIRST,key=value,..." ---- */

/* Rebuilds opts with a new first word, dropping `drop` keys and appending `extra` (may be
 * NULL). Returns 0, or -1 when the result does not fit OPTS_MAX. */
static int opts_rewrite(const char *opts, const char *first, const char *const *drop,
                        const char *extra, char *out)
{
    char copy[OPTS_MAX];
    char *save = NULL, *tok;
    size_t len = 0;
    bool first_tok = true;

    if (snprintf(copy, sizeof(copy), "%s", opts) >= (int)sizeof(copy))
        return -1;
    out[0] = '\0';
    if (first)
        len += (size_t)snprintf(out + len, OPTS_MAX - len, "%s", first);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool skip = false;
        const char *eq = strchr(tok, '=');

        if (first_tok && !eq && first) {
            first_tok = false;
            continue; /* the old first word */
        }
        first_tok = false;
        for (const char *const *d = drop; d && *d && eq; d++)
            skip |= strlen(*d) == (size_t)(eq - tok) && !strncmp(tok, *d, (size_t)(eq - tok));
        if (skip)
            continue;
        len += (size_t)snprintf(out + len, len < OPTS_MAX ? OPTS_MAX - len : 0, "%s%s",
                                len ? "," : "", tok);
    }
    if (extra)
        len += (size_t)snprintf(out + len, len < OPTS_MAX ? OPTS_MAX - len : 0, "%s%s",
                                len ? "," : "", extra);
    return len < OPTS_MAX ? 0 : -1;
}

/* The size of a dirty bitmap for m's RAM. */
static size_t bitmap_bytes(struct virt_machine *m)
{
    return (size_t)((virt_ram(m)->size / 4096 + 63) / 64) * sizeof(uint64_t);
}

static uint64_t *bitmap_alloc(struct virt_machine *m)
{
    return calloc(1, bitmap_bytes(m));
}

/* The end of a stream, written with the vCPUs stopped and the devices quiesced: the pages in
 * bits plus those dirtied since they were taken (collected only now, when nothing can dirty
 * another), or all of RAM when bits is NULL; every hart's and device's section; the trailer.
 * 0 or -EIO (the writer holds the message). */
static int write_stopped_state(struct virt_machine *m, struct stream_writer *w, uint64_t *bits)
{
    if (bits)
        virt_harvest_dirty(m, bits);
    if (stream_write_ram(w, virt_ram(m), bits, NULL, NULL) || virt_save_sections(m, w) ||
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
    char old_opts[OPTS_MAX];
};

/* Where the writable disk in `f->slot` will be frozen (f->frozen) and the options the VM
 * goes on with; nothing is touched yet. */
static int plan_freeze(struct block *bs, const char *snap_abs, struct frozen_disk *f,
                       char *new_opts, char *err)
{
    static const char *const drop[] = {"format", NULL};

    snprintf(f->live, sizeof(f->live), "%s", block_path(bs));
    snprintf(f->fmt, sizeof(f->fmt), "%s", block_format_name(bs));
    if (snprintf(f->frozen, sizeof(f->frozen), "%s.disk%u", snap_abs, f->slot) >=
            (int)sizeof(f->frozen) ||
        opts_rewrite(f->old_opts, f->live, drop, "format=qcow2", new_opts)) {
        set_err(err, "%s: path too long", snap_abs);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Puts the disk aside as f->frozen and continues the VM on a new overlay at its old path.
 * Device quiesced. On failure everything is as before. */
static int freeze_disk(struct virt_machine *m, struct block *bs, const struct frozen_disk *f,
                       const char *new_opts, char *err)
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
    if (hostfs_rename(f->live, f->frozen) < 0) {
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
        hostfs_unlink(f->live);
        hostfs_rename(f->frozen, f->live);
        goto reopen_live;
    }
    virt_set_device_opts(m, f->slot, new_opts);
    return 0;

reopen_live:
    if (block_reopen(bs, f->live, f->fmt, false, berr) < 0)
        log_error("%s: cannot reopen the disk after a failed snapshot: %s", f->live, berr);
    return ret;
}

/* The config for the snapshot's header: frozen disks point at their frozen image and say
 * where they were ("snapshot-of"). */
static char *snapshot_config(struct virt_machine *m, const struct frozen_disk *f, unsigned n)
{
    struct virt_config cfg = *virt_get_config(m);
    static const char *const drop[] = {"format", NULL};
    char(*opts)[OPTS_MAX] = calloc(VIRT_VIRTIO_SLOTS, OPTS_MAX);
    char *json = NULL;

    if (!opts)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        char extra[PATH_MAX + 64];

        snprintf(extra, sizeof(extra), "format=%s,snapshot-of=%s", f[i].fmt, f[i].live);
        if (opts_rewrite(f[i].old_opts, f[i].frozen, drop, extra, opts[i]))
            goto out;
        cfg.devices[f[i].slot].opts = opts[i];
    }
    json = virt_config_to_json(&cfg);
out:
    free(opts);
    return json;
}

int vm_snapshot(struct virt_machine *m, const char *path, struct vm_snapshot_stats *st, char *err)
{
    struct frozen_disk *disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*disks));
    char(*new_opts)[OPTS_MAX] = calloc(VIRT_VIRTIO_SLOTS, OPTS_MAX);
    struct stream_writer *w = NULL;
    char tmp[PATH_MAX], abs_path[PATH_MAX], dir[PATH_MAX];
    uint64_t t0 = time_now_ns(), tp = 0, *bits = NULL;
    unsigned nd = 0, frozen = 0;
    bool was_paused = false, paused = false, quiesced = false;
    char *json = NULL;
    int fd = -1, ret;

    memset(st, 0, sizeof(*st));
    if (!disks || !new_opts) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if (hostfs_realpath(dirname(dir), abs_path) < 0) {
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
        ret = -ENAMETOOLONG; /* not reached: checked above; tells -O1 builds the bound */
        set_err(err, "%s: path too long", path);
        goto out;
    }
    fd = hostfs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
        snprintf(disks[nd].old_opts, OPTS_MAX, "%s", virt_get_config(m)->devices[i].opts);
        ret = plan_freeze(bs, abs_path, &disks[nd], new_opts[nd], err);
        if (ret)
            goto out;
        nd++;
    }
    json = snapshot_config(m, disks, nd);
    if (!json || stream_write_header(w, json, 0)) {
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
        ret = freeze_disk(m, virt_disk_block(m, disks[frozen].slot), &disks[frozen],
                          new_opts[frozen], err);
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
    if (fsync(fd) < 0 || hostfs_rename(tmp, abs_path) < 0) {
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
        hostfs_unlink(tmp);
    stream_writer_destroy(w);
    free(json);
    free(bits);
    free(disks);
    free(new_opts);
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
 * folder; the device's options are rewritten to it. */
static int restore_disk(struct virt_config *cfg, unsigned slot, const struct vm_restore_opts *o,
                        char *err)
{
    static const char *const drop[] = {"format", "snapshot-of", NULL};
    char frozen[PATH_MAX], live[PATH_MAX], fmt[16], target[PATH_MAX], berr[BLOCK_ERR_LEN];
    char opts[OPTS_MAX], base[PATH_MAX];
    const char *orig = cfg->devices[slot].opts;
    int ret;

    if (opt_get(orig, "snapshot-of", live, sizeof(live)) != 1)
        return 0; /* a read-only disk or a migration: used as it is */
    if (opt_first_word(orig, frozen, sizeof(frozen)) != 1 ||
        opt_get(orig, "format", fmt, sizeof(fmt)) != 1) {
        set_err(err, "machine config: disk %u: '%s' lacks its image or format", slot, orig);
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
    if (opts_rewrite(orig, target, drop, "format=qcow2", opts)) {
        set_err(err, "%s: path too long", target);
        return -ENAMETOOLONG;
    }
    free((char *)cfg->devices[slot].opts);
    cfg->devices[slot].opts = strdup(opts);
    return cfg->devices[slot].opts ? 0 : -ENOMEM;
}

/* A clone must not share a NIC address or a host socket path with its origin. */
static int clone_device(struct virt_config *cfg, unsigned slot, const char *dir, char *err)
{
    static const char *const sock_keys[] = {"sock", "agent"};
    const char *orig = cfg->devices[slot].opts;
    char opts[OPTS_MAX], extra[OPTS_MAX] = "", val[PATH_MAX];
    const char *drop[4] = {NULL};
    unsigned nd = 0;
    size_t len = 0;

    if (!strcmp(cfg->devices[slot].type, "net")) {
        uint8_t r[3];

        if (getrandom(r, sizeof(r), 0) != sizeof(r))
            r[0] = (uint8_t)time(NULL), r[1] = (uint8_t)getpid(), r[2] = (uint8_t)slot;
        drop[nd++] = "mac";
        len += (size_t)snprintf(extra + len, sizeof(extra) - len, "mac=52:54:00:%02x:%02x:%02x",
                                r[0], r[1], r[2]);
    }
    for (unsigned k = 0; k < 2; k++) {
        char b[PATH_MAX];

        if (opt_get(orig, sock_keys[k], val, sizeof(val)) != 1)
            continue;
        snprintf(b, sizeof(b), "%s", val);
        drop[nd++] = sock_keys[k];
        len += (size_t)snprintf(extra + len, len < sizeof(extra) ? sizeof(extra) - len : 0,
                                "%s%s=%s/%s", len ? "," : "", sock_keys[k], dir, basename(b));
    }
    if (!nd)
        return 0;
    if (len >= sizeof(extra) || opts_rewrite(orig, NULL, drop, extra, opts)) {
        set_err(err, "device %u: options too long for a clone", slot);
        return -ENAMETOOLONG;
    }
    free((char *)cfg->devices[slot].opts);
    cfg->devices[slot].opts = strdup(opts);
    return cfg->devices[slot].opts ? 0 : -ENOMEM;
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

static int disk_target_create(struct virt_config *cfg, const struct vm_restore_opts *o,
                              const char *what, const struct stream_record *rec,
                              struct disk_target *t, char *err)
{
    char orig[PATH_MAX], base[PATH_MAX], berr[BLOCK_ERR_LEN];
    struct block_create_opts co = {.size = rec->offset};
    struct stat sb;
    unsigned slot = rec->slot;
    int ret;

    if (slot >= cfg->ndevices || strcmp(cfg->devices[slot].type, "disk")) {
        set_err(err, "%s: disk contents for device %u, which is not a disk of the machine", what,
                slot);
        return -EINVAL;
    }
    if (t[slot].created) {
        set_err(err, "%s: disk %u announced twice", what, slot);
        return -EINVAL;
    }
    if (opt_first_word(cfg->devices[slot].opts, orig, sizeof(orig)) != 1 ||
        opt_get(cfg->devices[slot].opts, "format", t[slot].fmt, sizeof(t[slot].fmt)) != 1) {
        set_err(err, "%s: disk %u: '%s' lacks its image or format", what, slot,
                cfg->devices[slot].opts);
        return -EINVAL;
    }
    snprintf(base, sizeof(base), "%s", orig);
    if (snprintf(t[slot].path, sizeof(t[slot].path), "%s%s%s", o->disk_dir ? o->disk_dir : "",
                 o->disk_dir ? "/" : "",
                 o->disk_dir ? basename(base) : orig) >= (int)sizeof(t[slot].path)) {
        set_err(err, "%s: path too long", o->disk_dir ? o->disk_dir : orig);
        return -ENAMETOOLONG;
    }
    if (hostfs_lstat(t[slot].path, &sb) == 0) {
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
static int disk_target_record(struct virt_config *cfg, const struct vm_restore_opts *o,
                              const char *what, const struct stream_record *rec,
                              struct disk_target *t, char *err)
{
    struct disk_target *d = rec->slot < VIRT_VIRTIO_SLOTS ? &t[rec->slot] : NULL;
    int ret;

    if (rec->kind == STREAM_DISK_SIZE)
        return disk_target_create(cfg, o, what, rec, t, err);
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

/* Before the machine is built: every disk arrived, is flushed and closed, and the device's
 * options name the copy. */
static int disk_targets_finish(struct virt_config *cfg, const char *what, struct disk_target *t,
                               char *err)
{
    static const char *const drop[] = {"format", NULL};

    for (unsigned i = 0; i < cfg->ndevices; i++) {
        char opts[OPTS_MAX], extra[32];
        int ret;

        if (strcmp(cfg->devices[i].type, "disk"))
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
        snprintf(extra, sizeof(extra), "format=%s", t[i].fmt);
        if (opts_rewrite(cfg->devices[i].opts, t[i].path, drop, extra, opts)) {
            set_err(err, "%s: path too long", t[i].path);
            return -ENAMETOOLONG;
        }
        free((char *)cfg->devices[i].opts);
        cfg->devices[i].opts = strdup(opts);
        if (!cfg->devices[i].opts)
            return -ENOMEM;
    }
    return 0;
}

/* A failed receive leaves no partial copies behind. */
static void disk_targets_discard(struct disk_target *t)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        block_close(t[i].bs);
        t[i].bs = NULL;
        if (t[i].created && hostfs_unlink(t[i].path) == 0)
            log_info("migration failed: removed the partial copy %s", t[i].path);
        t[i].created = false;
    }
}

int vm_restore(int fd, const char *what, const struct vm_restore_opts *o, struct virt_machine **out,
               bool *cloned, char *err)
{
    struct stream_reader *r = NULL;
    struct virt_machine *m = NULL;
    struct virt_config cfg = {0};
    struct guest_ram ram = {0};
    struct disk_target *disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*disks));
    char *json = NULL;
    bool ram_seen = false, copying = false;
    uint64_t t_build = 0;
    int ret = -1;

    *out = NULL;
    *cloned = false;
    if (!disks || stream_reader_create(fd, what, &r)) {
        free(disks);
        set_err(err, "%s: out of memory", what);
        return -1;
    }
    if (stream_read_header(r, &json))
        goto stream_err;
    copying = stream_reader_flags(r) & STREAM_F_DISKS;
    if (virt_config_from_json(json, &cfg, err, VMSTATE_ERR_LEN)) {
        char inner[VMSTATE_ERR_LEN];

        snprintf(inner, sizeof(inner), "%s", err);
        set_err(err, "%s: %s", what, inner);
        goto out;
    }
    if ((o->want_cpus && o->want_cpus != cfg.cpus) ||
        (o->want_mem && o->want_mem != cfg.mem_size)) {
        set_err(err,
                "%s: the stream is for a machine with %u CPUs and %" PRIu64
                " MiB, not the %u CPUs and %" PRIu64 " MiB asked for",
                what, cfg.cpus, cfg.mem_size >> 20, o->want_cpus ? o->want_cpus : cfg.cpus,
                (o->want_mem ? o->want_mem : cfg.mem_size) >> 20);
        goto out;
    }
    if (guest_ram_init(&ram, VIRT_RAM_BASE, cfg.mem_size)) {
        set_err(err, "%s: cannot reserve %" PRIu64 " MiB of RAM", what, cfg.mem_size >> 20);
        goto out;
    }
    cfg.console_fd = o->console_fd;
    for (;;) {
        struct stream_record rec;

        if (stream_read_next(r, m ? NULL : &ram, &rec))
            goto stream_err;
        if (rec.item == STREAM_ITEM_RAM) {
            ram_seen = true;
            continue;
        }
        if (rec.item == STREAM_ITEM_DISK) {
            if (disk_target_record(&cfg, o, what, &rec, disks, err))
                goto out;
            continue;
        }
        if (!m && copying && disk_targets_finish(&cfg, what, disks, err))
            goto out;
        if (!m && (rec.item == STREAM_ITEM_SECTION || ram_seen)) {
            /* The disks are touched only now: a migration source has released them. */
            for (unsigned i = 0; i < cfg.ndevices; i++) {
                if (!strcmp(cfg.devices[i].type, "disk") && restore_disk(&cfg, i, o, err))
                    goto out;
                if (o->clone_dir && clone_device(&cfg, i, o->clone_dir, err))
                    goto out;
            }
            *cloned = o->clone_dir != NULL;
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

/* ---- migration, source side ---- */

int vm_parse_tcp_uri(const char *uri, char host[VM_URI_HOST_MAX], char port[VM_URI_PORT_MAX])
{
    const char *colon = strncmp(uri, "tcp:", 4) ? NULL : strrchr(uri + 4, ':');
    size_t hl;

    if (!colon || !colon[1] || strlen(colon + 1) >= VM_URI_PORT_MAX ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return -EINVAL;
    hl = (size_t)(colon - (uri + 4));
    if (hl >= 2 && uri[4] == '[' && colon[-1] == ']') { /* [IPv6 address] */
        uri++;
        hl -= 2;
    }
    if (hl >= VM_URI_HOST_MAX)
        return -EINVAL;
    memcpy(host, uri + 4, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

struct vm_migration {
    struct virt_machine *m;
    pthread_t thread;
    pthread_t throttler;
    bool throttler_running;
    enum vm_migrate_mode mode;
    unsigned downtime_ms;
    bool copy_disks;
    struct disk_copy *disks; /* copy_disks: one per disk device */
    unsigned ndisks;
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];

    pthread_mutex_t lock; /* the fields below, and the right to pause the machine */
    pthread_mutex_t pause_lock;
    enum { MIG_ACTIVE, MIG_COMPLETED, MIG_FAILED } status;
    unsigned rounds;
    unsigned throttle_pct;
    bool stop_throttle;
    bool reported; /* a status query has seen the outcome */
    uint64_t bytes, remaining, start_ns, total_ns, downtime_ns;
    char error[VMSTATE_ERR_LEN];
};

static const char *const mode_names[] = {"live", "suspend", "cold"};

/* A stop-and-copy expected to take less than this is not worth another round. */
#define MIG_DOWNTIME_FLOOR_MS 10

static void mig_fail(struct vm_migration *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mig_fail(struct vm_migration *g, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&g->lock);
    if (!g->error[0]) {
        va_start(ap, fmt);
        vsnprintf(g->error, sizeof(g->error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&g->lock);
}

/* ---- block migration, source side ----
 *
 * Each disk's writes are tracked in a dirty log of 4 KiB blocks from the start (everything
 * marked, so the first pass sends the whole disk). Every round sends the blocks written since
 * the last one, read under the disk's device lock while the guest runs; the stop-and-copy
 * sends the rest with the devices quiesced. The target writes them into new images, so the
 * source's disks are never handed over: on failure the VM runs on with them untouched. */

#define DISK_BLOCK_SHIFT 12

struct disk_copy {
    unsigned slot;
    struct block *bs;
    uint64_t length;
    struct dirty_log log;
    uint64_t *bits; /* blocks selected for the next send */
    bool sent_once; /* the first pass skips zeroes: the target's new image reads as zero */
};

static uint64_t disk_blocks(const struct disk_copy *d)
{
    return (d->length + (1u << DISK_BLOCK_SHIFT) - 1) >> DISK_BLOCK_SHIFT;
}

/* Starts tracking every disk's writes. 0, or -1 with the reason in g->error. */
static int disks_track(struct vm_migration *g)
{
    const struct virt_config *cfg = virt_get_config(g->m);

    g->disks = calloc(VIRT_VIRTIO_SLOTS, sizeof(*g->disks));
    if (!g->disks) {
        mig_fail(g, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < cfg->ndevices; i++) {
        struct block *bs = virt_disk_block(g->m, i);
        struct disk_copy *d = &g->disks[g->ndisks];

        if (!bs)
            continue;
        d->slot = i;
        d->bs = bs;
        d->length = block_length(bs);
        if (dirty_log_init(&d->log, disk_blocks(d)) ||
            !(d->bits = calloc((disk_blocks(d) + 63) / 64, sizeof(uint64_t)))) {
            dirty_log_destroy(&d->log);
            mig_fail(g, "out of memory for the dirty map of %s", block_path(bs));
            return -1;
        }
        virt_disk_lock(g->m, i);
        block_track_writes(bs, &d->log);
        virt_disk_unlock(g->m, i);
        dirty_log_start(&d->log); /* after: a write in between is covered by the full mark */
        g->ndisks++;
    }
    return 0;
}

static void disks_untrack(struct vm_migration *g)
{
    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];

        virt_disk_lock(g->m, d->slot);
        block_track_writes(d->bs, NULL);
        virt_disk_unlock(g->m, d->slot);
        dirty_log_destroy(&d->log);
        free(d->bits);
    }
    free(g->disks);
    g->disks = NULL;
    g->ndisks = 0;
}

/* Takes the blocks written since the last call into each disk's selection; returns how many
 * bytes are selected in all. */
static uint64_t disks_collect(struct vm_migration *g)
{
    uint64_t blocks = 0;

    for (unsigned k = 0; k < g->ndisks; k++)
        blocks += dirty_log_collect(&g->disks[k].log, g->disks[k].bits);
    return blocks << DISK_BLOCK_SHIFT;
}

/* Sends the selected blocks of every disk, in runs of up to STREAM_DISK_CHUNK, each read under
 * the device lock; clears the selection. 0 or -1 (the writer or g->error says why). */
static int disks_send(struct vm_migration *g, struct stream_writer *w, uint8_t *buf)
{
    const uint64_t per_chunk = STREAM_DISK_CHUNK >> DISK_BLOCK_SHIFT;

    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];
        uint64_t n = disk_blocks(d), b = 0;

        while (b < n) {
            uint64_t first, off, len;
            int ret;

            if (!d->bits[b / 64]) {
                b = (b / 64 + 1) * 64;
                continue;
            }
            if (!(d->bits[b / 64] >> (b % 64) & 1)) {
                b++;
                continue;
            }
            for (first = b; b < n && b - first < per_chunk && (d->bits[b / 64] >> (b % 64) & 1);
                 b++)
                d->bits[b / 64] &= ~(UINT64_C(1) << (b % 64));
            off = first << DISK_BLOCK_SHIFT;
            len = ((b - first) << DISK_BLOCK_SHIFT);
            if (len > d->length - off)
                len = d->length - off;
            virt_disk_lock(g->m, d->slot);
            ret = block_read(d->bs, off, buf, (size_t)len);
            virt_disk_unlock(g->m, d->slot);
            if (ret < 0) {
                mig_fail(g, "%s: reading %" PRIu64 "+%" PRIu64 " for the target failed: %s",
                         block_path(d->bs), off, len, strerror(-ret));
                return -1;
            }
            if (!d->sent_once && buf[0] == 0 && !memcmp(buf, buf + 1, (size_t)len - 1))
                continue; /* zero, as the target's new image already reads */
            if (stream_write_disk(w, d->slot, off, buf, (size_t)len))
                return -1;
        }
        d->sent_once = true;
    }
    return 0;
}

/* The header config of a migration that copies the disks: each disk names its format. */
static char *copy_disks_config(struct vm_migration *g)
{
    struct virt_config cfg = *virt_get_config(g->m);
    static const char *const drop[] = {"format", NULL};
    char(*opts)[OPTS_MAX] = calloc(VIRT_VIRTIO_SLOTS, OPTS_MAX);
    char *json = NULL;

    if (!opts)
        return NULL;
    for (unsigned k = 0; k < g->ndisks; k++) {
        struct disk_copy *d = &g->disks[k];
        char extra[64];

        snprintf(extra, sizeof(extra), "format=%s", block_format_name(d->bs));
        if (opts_rewrite(cfg.devices[d->slot].opts, NULL, drop, extra, opts[k]))
            goto out;
        cfg.devices[d->slot].opts = opts[k];
    }
    json = virt_config_to_json(&cfg);
out:
    free(opts);
    return json;
}

static int mig_connect(struct vm_migration *g)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, e = getaddrinfo(g->host, g->port, &hints, &res);

    if (e) {
        mig_fail(g, "tcp:%s:%s: %s", g->host, g->port, gai_strerror(e));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        mig_fail(g, "tcp:%s:%s: cannot connect: %s (is `tessera run --incoming` listening?)",
                 g->host, g->port, strerror(e));
    return fd;
}

/* Auto-converge: while throttle_pct > 0, keeps the vCPUs stopped that share of every 20 ms. */
static void *mig_throttle_thread(void *opaque)
{
    struct vm_migration *g = opaque;

    for (;;) {
        unsigned pct;
        bool stop;
        struct timespec ts;

        pthread_mutex_lock(&g->lock);
        pct = g->throttle_pct;
        stop = g->stop_throttle;
        pthread_mutex_unlock(&g->lock);
        if (stop)
            break;
        if (pct) {
            pthread_mutex_lock(&g->pause_lock);
            if (virt_pause(g->m) == 0) {
                ts = (struct timespec){0, (long)pct * 200000L};
                nanosleep(&ts, NULL);
                virt_resume(g->m);
            }
            pthread_mutex_unlock(&g->pause_lock);
        }
        ts = (struct timespec){0, (long)(100 - (pct ? pct : 50)) * 200000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void mig_stop_throttle(struct vm_migration *g)
{
    if (!g->throttler_running)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop_throttle = true;
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->throttler, NULL);
    g->throttler_running = false;
}

/* Reads the target's verdict line ("OK" or "ERR <why>") into line, waiting up to `secs`.
 * Returns its length (0 when none came). */
static size_t mig_read_verdict(int fd, unsigned secs, char line[VMSTATE_ERR_LEN])
{
    size_t n = 0;
    struct timeval tv = {(time_t)secs, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (n < VMSTATE_ERR_LEN - 1) {
        ssize_t k = read(fd, line + n, 1);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n;
}

/* Waits up to 60 s for the target's verdict on the whole stream. */
static int mig_await_ack(struct vm_migration *g, int fd)
{
    char line[VMSTATE_ERR_LEN];
    size_t n;

    shutdown(fd, SHUT_WR);
    n = mig_read_verdict(fd, 60, line);
    if (!strcmp(line, "OK"))
        return 0;
    if (!strncmp(line, "ERR ", 4))
        mig_fail(g, "the target refused the stream: %s", line + 4);
    else
        mig_fail(g, "the target did not confirm (%s)", n ? line : "connection closed");
    return -1;
}

static void *mig_thread(void *opaque)
{
    struct vm_migration *g = opaque;
    struct virt_machine *m = g->m;
    struct stream_writer *w = NULL;
    struct block *released[VIRT_VIRTIO_SLOTS] = {NULL};
    char *json = NULL;
    uint64_t *bits = bitmap_alloc(m), t_pause = 0;
    uint8_t *dbuf = NULL;
    bool paused = false, quiesced = false, logging = false;
    int fd = mig_connect(g);

    if (fd < 0 || !bits || stream_writer_create(fd, "migration stream", 1, &w))
        goto failed;
    if (g->copy_disks) {
        if (disks_track(g) || !(dbuf = malloc(STREAM_DISK_CHUNK)))
            goto failed;
        json = copy_disks_config(g);
    } else {
        json = virt_config_to_json(virt_get_config(m));
    }
    if (!json || stream_write_header(w, json, g->copy_disks ? STREAM_F_DISKS : 0))
        goto io_failed;
    for (unsigned k = 0; k < g->ndisks; k++) {
        if (stream_write_disk_size(w, g->disks[k].slot, g->disks[k].length))
            goto io_failed;
    }

    if (g->mode == VM_MIGRATE_LIVE) {
        uint64_t prev_dirty = UINT64_MAX;

        pthread_mutex_lock(&g->pause_lock);
        if (virt_pause(m)) {
            pthread_mutex_unlock(&g->pause_lock);
            mig_fail(g, "the VM cannot be paused now");
            goto failed;
        }
        virt_dirty_log(m, true);
        logging = true;
        virt_harvest_dirty(m, bits);
        virt_resume(m);
        pthread_mutex_unlock(&g->pause_lock);
        g->throttler_running = !pthread_create(&g->throttler, NULL, mig_throttle_thread, g);
        for (;;) {
            uint64_t t0 = time_now_ns(), b0 = stream_bytes_written(w), sent = 0, dirty, disk_bytes;
            double ns_per_byte, est_ms;

            uint64_t b_ram;

            disks_collect(g);
            if (disks_send(g, w, dbuf))
                goto io_failed;
            b_ram = stream_bytes_written(w);
            if (stream_write_ram(w, virt_ram(m), bits, &sent, NULL) || stream_flush(w))
                goto io_failed;
            pthread_mutex_lock(&g->lock);
            g->rounds++;
            g->bytes = stream_bytes_written(w);
            pthread_mutex_unlock(&g->lock);
            ns_per_byte = (double)(time_now_ns() - t0) / (double)(g->bytes - b0 + 1);

            pthread_mutex_lock(&g->pause_lock);
            virt_pause(m);
            t_pause = time_now_ns();
            memset(bits, 0, bitmap_bytes(m)); /* this round's pages are sent */
            dirty = virt_harvest_dirty(m, bits);
            disk_bytes = disks_collect(g);
            /* Expected stop-and-copy time at this round's cost per byte sent. */
            est_ms = ((double)dirty * ((double)(g->bytes - b_ram) / (double)(sent ? sent : 1)) +
                      (double)disk_bytes) *
                     ns_per_byte / 1e6;
            pthread_mutex_lock(&g->lock);
            g->remaining = dirty;
            pthread_mutex_unlock(&g->lock);
            log_info("migration: round %u sent %" PRIu64 " pages, %" PRIu64
                     " dirty now and %" PRIu64 " KiB of disk (about %.0f ms to copy), "
                     "throttle %u%%",
                     g->rounds, sent, dirty, disk_bytes >> 10, est_ms, g->throttle_pct);
            /* Stop once the rest fits the limit, unless another round still pays: the dirty
             * set fell to half of what this round sent, so the next stop is shorter. */
            if ((est_ms <= g->downtime_ms &&
                 (dirty * 2 > sent || est_ms < MIG_DOWNTIME_FLOOR_MS || g->rounds >= 30)) ||
                g->rounds >= 60) {
                paused = true; /* stop-and-copy: keep the vCPUs stopped */
                pthread_mutex_unlock(&g->pause_lock);
                break;
            }
            virt_resume(m);
            pthread_mutex_unlock(&g->pause_lock);
            /* Not converging: the guest dirties pages about as fast as we send them. */
            dirty += disk_bytes >> DISK_BLOCK_SHIFT;
            if (g->rounds >= 2 && dirty * 4 > prev_dirty * 3) {
                pthread_mutex_lock(&g->lock);
                g->throttle_pct = g->throttle_pct ? g->throttle_pct + 10 : 30;
                if (g->throttle_pct > 95)
                    g->throttle_pct = 95;
                pthread_mutex_unlock(&g->lock);
            }
            prev_dirty = dirty;
        }
        mig_stop_throttle(g);
    } else {
        pthread_mutex_lock(&g->pause_lock);
        if (virt_pause(m)) {
            pthread_mutex_unlock(&g->pause_lock);
            mig_fail(g, "the VM cannot be paused now");
            goto failed;
        }
        pthread_mutex_unlock(&g->pause_lock);
        paused = true;
        t_pause = time_now_ns();
        pthread_mutex_lock(&g->lock);
        g->rounds = g->mode == VM_MIGRATE_SUSPEND; /* one pass over RAM */
        pthread_mutex_unlock(&g->lock);
    }

    /* Stop-and-copy: devices finish what they hold, the last dirty pages, the disks' locks
     * handed over, then the device state. */
    virt_quiesce(m);
    quiesced = true;
    /* The devices are quiet: the disks' last writes go out, or (shared storage) their locks
     * are handed to the target before it opens them. */
    disks_collect(g);
    if (disks_send(g, w, dbuf))
        goto io_failed;
    for (unsigned i = 0; i < virt_get_config(m)->ndevices && !g->copy_disks; i++) {
        struct block *bs = virt_disk_block(m, i);

        if (bs && !block_readonly(bs)) {
            int e = block_release(bs);

            released[i] = bs;
            if (e < 0) {
                mig_fail(g, "%s: flush failed: %s", block_path(bs), strerror(-e));
                goto failed;
            }
        }
    }
    log_debug("migration: +%.1f ms devices quiet, disks handed over",
              (double)(time_now_ns() - t_pause) / 1e6);
    if (g->mode == VM_MIGRATE_COLD
            ? stream_write_end(w)
            : write_stopped_state(m, w, g->mode == VM_MIGRATE_LIVE ? bits : NULL))
        goto io_failed;
    pthread_mutex_lock(&g->lock);
    g->bytes = stream_bytes_written(w);
    pthread_mutex_unlock(&g->lock);
    log_debug("migration: +%.1f ms stream sent", (double)(time_now_ns() - t_pause) / 1e6);
    if (mig_await_ack(g, fd))
        goto failed;
    disks_untrack(g); /* before this VM exits and its devices go */

    pthread_mutex_lock(&g->lock);
    g->status = MIG_COMPLETED;
    g->downtime_ns = time_now_ns() - t_pause;
    g->total_ns = time_now_ns() - g->start_ns;
    g->remaining = 0;
    pthread_mutex_unlock(&g->lock);
    log_info("migration: completed in %" PRIu64 " ms, downtime %" PRIu64 " ms, %" PRIu64
             " MiB sent, %u rounds; this VM now exits",
             g->total_ns / 1000000, g->downtime_ns / 1000000, g->bytes >> 20, g->rounds);
    /* The guest lives on the target now; this process must never run it again. It stays
     * (paused) until a status query has seen the outcome, 5 s at most, so the client that
     * started the migration learns it, then exits. */
    for (int i = 0; i < 100; i++) {
        struct timespec ts = {0, 50000000L};
        bool seen;

        pthread_mutex_lock(&g->lock);
        seen = g->reported;
        pthread_mutex_unlock(&g->lock);
        if (seen)
            break;
        nanosleep(&ts, NULL);
    }
    virt_request_exit(m, 0);
    goto out;

io_failed:
    if (fd >= 0) {
        /* A target that refused the stream said why before it hung up. */
        char line[VMSTATE_ERR_LEN];

        if (mig_read_verdict(fd, 1, line) && !strncmp(line, "ERR ", 4))
            mig_fail(g, "the target refused the stream: %s", line + 4);
    }
    mig_fail(g, "%s", w && stream_writer_error(w) ? stream_writer_error(w) : "out of memory");
failed:
    mig_stop_throttle(g);
    /* The source goes on as if nothing happened: disks back, devices and vCPUs running. */
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++) {
        char berr[BLOCK_ERR_LEN];

        if (released[i] &&
            block_reopen(released[i], block_path(released[i]), NULL, false, berr) < 0)
            log_error("migration: cannot take back the disk: %s", berr);
    }
    disks_untrack(g);
    if (logging)
        virt_dirty_log(m, false);
    if (quiesced)
        virt_unquiesce(m);
    if (paused)
        virt_resume(m);
    pthread_mutex_lock(&g->lock);
    g->status = MIG_FAILED;
    g->total_ns = time_now_ns() - g->start_ns;
    pthread_mutex_unlock(&g->lock);
    log_error("migration failed: %s; the VM keeps running here", g->error);
out:
    stream_writer_destroy(w);
    if (fd >= 0)
        close(fd);
    free(json);
    free(bits);
    free(dbuf);
    return NULL;
}

int vm_migrate_start(struct virt_machine *m, const char *uri, enum vm_migrate_mode mode,
                     unsigned downtime_ms, bool copy_disks, struct vm_migration **mig, char *err)
{
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];
    struct vm_migration *g;

    if (*mig && vm_migrate_active(*mig)) {
        set_err(err, "a migration is already running");
        return -EBUSY;
    }
    if (vm_parse_tcp_uri(uri, host, port) || !host[0]) {
        set_err(err, "migration target '%s': expected tcp:HOST:PORT", uri);
        return -EINVAL;
    }
    vm_migrate_free(*mig);
    *mig = NULL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->m = m;
    g->mode = mode;
    g->downtime_ms = downtime_ms;
    g->copy_disks = copy_disks;
    memcpy(g->host, host, sizeof(host));
    memcpy(g->port, port, sizeof(port));
    g->status = MIG_ACTIVE;
    g->start_ns = time_now_ns();
    pthread_mutex_init(&g->lock, NULL);
    pthread_mutex_init(&g->pause_lock, NULL);
    log_info("migration: %s to %s started%s", mode_names[mode], uri,
             copy_disks ? ", copying the disks" : "");
    if (pthread_create(&g->thread, NULL, mig_thread, g)) {
        free(g);
        set_err(err, "cannot start the migration thread");
        return -EAGAIN;
    }
    *mig = g;
    return 0;
}

bool vm_migrate_active(struct vm_migration *g)
{
    bool active;

    pthread_mutex_lock(&g->lock);
    active = g->status == MIG_ACTIVE;
    pthread_mutex_unlock(&g->lock);
    return active;
}

json_t *vm_migrate_status(struct vm_migration *g)
{
    static const char *const names[] = {"active", "completed", "failed"};
    json_t *o;
    uint64_t total;

    pthread_mutex_lock(&g->lock);
    total = g->status == MIG_ACTIVE ? time_now_ns() - g->start_ns : g->total_ns;
    o = json_pack("{s:s, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:i}", "status", names[g->status],
                  "mode", mode_names[g->mode], "copy_disks", g->copy_disks, "rounds",
                  (int)g->rounds, "bytes", (json_int_t)g->bytes, "total_ms",
                  (json_int_t)(total / 1000000), "downtime_ms",
                  (json_int_t)(g->downtime_ns / 1000000), "remaining_pages",
                  (json_int_t)g->remaining, "throttle_pct", (int)g->throttle_pct);
    if (o && g->error[0])
        json_object_set_new(o, "error", json_string(g->error));
    if (g->status != MIG_ACTIVE)
        g->reported = true;
    pthread_mutex_unlock(&g->lock);
    return o;
}

void vm_migrate_free(struct vm_migration *g)
{
    if (!g)
        return;
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->pause_lock);
    free(g);
}
