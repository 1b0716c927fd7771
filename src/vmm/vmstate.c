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

#include "base/hostfs.h"
#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/guest_mem.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/agent_client.h"
#include "vmm/snapshot.h"
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
    struct virt_config now;
    struct vmconfig vc;
    char *json = NULL;
    int ret;

    if (virt_config_copy(m, &now)) {
        set_err(err, "out of memory");
        return NULL;
    }
    ret = vmconfig_from_virt(&now, &vc, err);
    virt_config_free(&now);
    if (ret)
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
        if (t[i].created && hostfs_unlink(t[i].path) == 0)
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
