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
#include "vmm/vmstate_int.h"

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
int opts_rewrite(const char *opts, const char *first, const char *const *drop, const char *extra,
                 char *out)
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
    snprintf(tmp, sizeof(tmp), "%s.part", abs_path);
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
        if (t[i].created && unlink(t[i].path) == 0)
            log_info("migration failed: removed the partial copy %s", t[i].path);
        t[i].created = false;
    }
}

int vm_restore(struct transport *t, const char *what, const struct vm_restore_opts *o,
               struct virt_machine **out, bool *cloned, char *err)
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
    if (!disks || stream_reader_create_on(t, what, &r)) {
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
