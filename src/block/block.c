/* The block layer's front door: the driver table, opening and probing, backing-chain
 * recursion, and the one wrapper per request that checks it before the driver runs. */
#include "block/block.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/dirty.h"
#include "base/hostfs.h"
#include "base/log.h"
#include "block/block_int.h"

/* Every format, once. Probing asks each one; a new format is one more line here. */
static const struct block_driver *const block_drivers[] = {
    &block_driver_qcow2,
    &block_driver_raw,
};

#define BLOCK_PROBE_LEN 512

void block_set_error(char *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err, BLOCK_ERR_LEN, fmt, ap);
    va_end(ap);
}

void block_report(struct block *bs, const char *fmt, ...)
{
    char line[BLOCK_ERR_LEN];
    va_list ap;

    if (!log_ratelimit_ok(&bs->report_rl))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_error("%s: %s", bs->path, line);
}

int block_file_read(int fd, uint64_t offset, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int block_file_write(int fd, uint64_t offset, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static const struct block_driver *block_find_driver(const char *name)
{
    for (size_t i = 0; i < sizeof(block_drivers) / sizeof(block_drivers[0]); i++)
        if (strcmp(block_drivers[i]->name, name) == 0)
            return block_drivers[i];
    return NULL;
}

static const struct block_driver *block_probe_driver(const uint8_t *hdr, size_t len)
{
    const struct block_driver *best = NULL;
    int best_score = 0;

    for (size_t i = 0; i < sizeof(block_drivers) / sizeof(block_drivers[0]); i++) {
        int score = block_drivers[i]->probe ? block_drivers[i]->probe(hdr, len) : 0;

        if (score > best_score) {
            best = block_drivers[i];
            best_score = score;
        }
    }
    return best;
}

/* Opens an image file (read-only or read-write) that must be a regular file or a block
 * device: O_NONBLOCK keeps open() from hanging on a FIFO, which the type check then refuses.
 * 0 and *out_fd, or -errno with err. */
static int block_open_image_fd(const char *path, bool readonly, int *out_fd, char *err)
{
    struct stat st;
    int fd, flags, ret;

    fd = hostfs_open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot open: %s", path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot stat: %s", path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ret = -EINVAL;
        block_set_error(err, "%s: not a regular file or block device", path);
        goto close_fd;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        ret = -errno;
        block_set_error(err, "%s: fcntl: %s", path, strerror(errno));
        goto close_fd;
    }
    *out_fd = fd;
    return 0;

close_fd:
    close(fd);
    return ret;
}

/* Opens the image file and locks it: shared when read-only, exclusive when writable. */
static int block_open_file(const char *path, bool readonly, int *out_fd, char *err)
{
    int fd, ret = block_open_image_fd(path, readonly, &fd, err);

    if (ret < 0)
        return ret;
    if (flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
        block_set_error(err, "%s: image is in use (%s): %s", path,
                        readonly ? "open for writing elsewhere" : "open elsewhere",
                        strerror(errno));
        close(fd);
        return ret;
    }
    *out_fd = fd;
    return 0;
}

static int block_open_depth(const char *path, const char *format, bool readonly, unsigned depth,
                            bool no_backing, struct block **out, char *err)
{
    uint8_t hdr[BLOCK_PROBE_LEN];
    const struct block_driver *drv = NULL;
    struct block *bs = NULL;
    int fd = -1, ret;

    if (depth > BLOCK_MAX_CHAIN_DEPTH) {
        block_set_error(err, "%s: backing chain is deeper than %d images (is there a loop?)", path,
                        BLOCK_MAX_CHAIN_DEPTH);
        return -ELOOP;
    }
    if (format) {
        drv = block_find_driver(format);
        if (!drv) {
            block_set_error(err, "%s: unknown image format '%s' (known: qcow2, raw)", path, format);
            return -EINVAL;
        }
    }
    ret = block_open_file(path, readonly, &fd, err);
    if (ret < 0)
        return ret;
    if (!format) {
        ssize_t n = pread(fd, hdr, sizeof(hdr), 0);

        if (n < 0) {
            ret = -errno;
            block_set_error(err, "%s: cannot read the header: %s", path, strerror(errno));
            goto close_fd;
        }
        drv = block_probe_driver(hdr, (size_t)n);
    }
    bs = calloc(1, sizeof(*bs));
    if (!bs) {
        ret = -ENOMEM;
        block_set_error(err, "%s: out of memory", path);
        goto close_fd;
    }
    bs->path = strdup(path);
    if (!bs->path) {
        ret = -ENOMEM;
        block_set_error(err, "%s: out of memory", path);
        goto free_bs;
    }
    bs->drv = drv;
    bs->fd = fd;
    bs->readonly = readonly;
    bs->depth = depth;
    bs->no_backing = no_backing;
    ret = drv->open(bs, err);
    if (ret < 0)
        goto free_path;
    *out = bs;
    return 0;

free_path:
    free(bs->path);
free_bs:
    free(bs);
close_fd:
    close(fd);
    return ret;
}

int block_open(const char *path, const char *format, bool readonly, struct block **out, char *err)
{
    return block_open_depth(path, format, readonly, 0, false, out, err);
}

int block_open_layer(const char *path, const char *format, struct block **out, char *err)
{
    return block_open_depth(path, format, true, 0, true, out, err);
}

char *block_resolve_backing_path(const char *image_path, const char *name)
{
    const char *slash = strrchr(image_path, '/');
    char *full;

    /* QEMU resolves a relative backing name against the folder of the image naming it. */
    if (name[0] == '/' || !slash)
        return strdup(name);
    if (asprintf(&full, "%.*s/%s", (int)(slash - image_path), image_path, name) < 0)
        return NULL;
    return full;
}

int block_open_backing(struct block *parent, const char *name, const char *format,
                       struct block **out, char *err)
{
    char inner[BLOCK_ERR_LEN] = "";
    char *full = block_resolve_backing_path(parent->path, name);
    int ret;

    if (!full) {
        block_set_error(err, "%s: out of memory", parent->path);
        return -ENOMEM;
    }
    ret = block_open_depth(full, format, true, parent->depth + 1, false, out, inner);
    /* A chain that is too deep reports its top image and its last one, not every level. */
    if (ret == -ELOOP && parent->depth > 0)
        snprintf(err, BLOCK_ERR_LEN, "%s", inner);
    else if (ret < 0)
        block_set_error(err, "%s: backing file '%s': %s", parent->path, name, inner);
    free(full);
    return ret;
}

void block_close(struct block *bs)
{
    if (!bs)
        return;
    if (!bs->released) {
        bs->drv->close(bs);
        close(bs->fd);
    }
    free(bs->path);
    free(bs);
}

int block_release(struct block *bs)
{
    int ret;

    if (bs->released)
        return 0;
    ret = bs->readonly ? 0 : bs->drv->flush(bs);
    bs->drv->close(bs);
    close(bs->fd); /* drops the flock: another process may open the image now */
    bs->fd = -1;
    bs->opaque = NULL;
    bs->released = true;
    return ret;
}

int block_reopen(struct block *bs, const char *path, const char *format, bool readonly, char *err)
{
    struct block *nb, tmp;
    int ret;

    ret = block_open(path, format, readonly, &nb, err);
    if (ret < 0)
        return ret;
    if (nb->length != bs->length) {
        block_set_error(err, "%s: disk is %" PRIu64 " bytes, the device's is %" PRIu64, path,
                        nb->length, bs->length);
        block_close(nb);
        return -EINVAL;
    }
    /* Swap contents so the device's pointer stays valid, then close the old image. */
    tmp = *bs;
    *bs = *nb;
    *nb = tmp;
    bs->track = nb->track; /* write tracking belongs to the device's disk, not to one file */
    if (bs->drv->rebind)
        bs->drv->rebind(bs);
    if (!nb->released && nb->drv->rebind)
        nb->drv->rebind(nb);
    block_close(nb);
    return 0;
}

uint64_t block_length(const struct block *bs)
{
    return bs->length;
}

bool block_readonly(const struct block *bs)
{
    return bs->readonly;
}

const char *block_format_name(const struct block *bs)
{
    return bs->drv->name;
}

const char *block_path(const struct block *bs)
{
    return bs->path;
}

/* The one check every request passes before a driver sees it. */
static int block_check_request(const struct block *bs, uint64_t offset, uint64_t len, bool write)
{
    if (bs->released)
        return -EIO;
    if (write && bs->readonly)
        return -EROFS;
    if (offset > bs->length || len > bs->length - offset)
        return -EINVAL;
    return 0;
}

int block_read(struct block *bs, uint64_t offset, void *buf, size_t len)
{
    int ret = block_check_request(bs, offset, len, false);

    if (ret < 0 || len == 0)
        return ret;
    return bs->drv->read(bs, offset, buf, len);
}

void block_track_writes(struct block *bs, struct dirty_log *log)
{
    bs->track = log;
}

int block_write(struct block *bs, uint64_t offset, const void *buf, size_t len)
{
    int ret = block_check_request(bs, offset, len, true);

    if (ret < 0 || len == 0)
        return ret;
    dirty_log_mark(bs->track, offset, len);
    return bs->drv->write(bs, offset, buf, len);
}

int block_flush(struct block *bs)
{
    if (bs->released)
        return -EIO;
    if (bs->readonly)
        return 0;
    return bs->drv->flush(bs);
}

int block_discard(struct block *bs, uint64_t offset, uint64_t len)
{
    int ret = block_check_request(bs, offset, len, true);

    if (ret < 0 || len == 0)
        return ret;
    if (!bs->drv->discard)
        return -ENOTSUP;
    dirty_log_mark(bs->track, offset, len);
    return bs->drv->discard(bs, offset, len);
}

int block_write_zeroes(struct block *bs, uint64_t offset, uint64_t len, bool may_unmap)
{
    const size_t chunk = 64 * 1024;
    uint8_t *zeroes;
    int ret = block_check_request(bs, offset, len, true);

    if (ret < 0 || len == 0)
        return ret;
    dirty_log_mark(bs->track, offset, len);
    if (bs->drv->write_zeroes)
        return bs->drv->write_zeroes(bs, offset, len, may_unmap);
    zeroes = calloc(1, chunk);
    if (!zeroes)
        return -ENOMEM;
    while (len > 0 && ret == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;

        ret = bs->drv->write(bs, offset, zeroes, n);
        offset += n;
        len -= n;
    }
    free(zeroes);
    return ret;
}

int block_snapshot_list(struct block *bs, struct block_snapshot_info **list, unsigned *count)
{
    *list = NULL;
    *count = 0;
    if (bs->released)
        return -EIO;
    if (!bs->drv->snapshot_list)
        return 0;
    return bs->drv->snapshot_list(bs, list, count);
}

void block_snapshot_list_free(struct block_snapshot_info *list, unsigned count)
{
    if (!list)
        return;
    for (unsigned i = 0; i < count; i++) {
        free(list[i].id);
        free(list[i].name);
    }
    free(list);
}

int block_create(const char *path, const char *format, const struct block_create_opts *opts,
                 char *err)
{
    const struct block_driver *drv = block_find_driver(format);

    if (!drv) {
        block_set_error(err, "%s: unknown image format '%s' (known: qcow2, raw)", path, format);
        return -EINVAL;
    }
    if (!drv->create) {
        block_set_error(err, "%s: format %s cannot create images", path, format);
        return -ENOTSUP;
    }
    return drv->create(path, opts, err);
}

int block_create_qcow2(const char *path, uint64_t size, unsigned cluster_bits,
                       const char *backing_file, const char *backing_fmt, char *err)
{
    const struct block_create_opts opts = {
        .size = size,
        .cluster_bits = cluster_bits,
        .backing_file = backing_file,
        .backing_fmt = backing_fmt,
    };

    return block_create(path, "qcow2", &opts, err);
}

/* ---- Layers of a backing chain ---- */

struct block *block_backing(const struct block *bs)
{
    if (bs->released || !bs->drv->backing)
        return NULL;
    return bs->drv->backing(bs);
}

int block_map(struct block *bs, uint64_t offset, uint64_t len, enum block_alloc *kind,
              uint64_t *run)
{
    int ret = block_check_request(bs, offset, len, false);

    if (ret < 0)
        return ret;
    if (len == 0)
        return -EINVAL;
    if (!bs->drv->map) {
        *kind = BLOCK_ALLOC_DATA;
        *run = len;
        return 0;
    }
    return bs->drv->map(bs, offset, len, kind, run);
}

/* The driver for the image open on fd: `format`'s (checked by the caller), or the probed one. */
static int block_driver_of(int fd, const char *path, const char *format,
                           const struct block_driver **drv, char *err)
{
    uint8_t hdr[BLOCK_PROBE_LEN];
    ssize_t n;

    if (format) {
        *drv = block_find_driver(format);
        return 0;
    }
    n = pread(fd, hdr, sizeof(hdr), 0);
    if (n < 0) {
        int ret = -errno;

        block_set_error(err, "%s: cannot read the header: %s", path, strerror(-ret));
        return ret;
    }
    *drv = block_probe_driver(hdr, (size_t)n);
    return 0;
}

int block_query_backing(const char *path, const char *format, char *name, size_t name_len,
                        char *fmt, size_t fmt_len, char *err)
{
    const struct block_driver *drv;
    int fd, ret = 0;

    if (name_len)
        name[0] = '\0';
    if (fmt_len)
        fmt[0] = '\0';
    if (format && !block_find_driver(format)) {
        block_set_error(err, "%s: unknown image format '%s' (known: qcow2, raw)", path, format);
        return -EINVAL;
    }
    /* No lock: the image may be some other VM's, open for writing. */
    ret = block_open_image_fd(path, true, &fd, err);
    if (ret < 0)
        return ret;
    ret = block_driver_of(fd, path, format, &drv, err);
    if (ret == 0 && drv->query_backing)
        ret = drv->query_backing(fd, path, name, name_len, fmt, fmt_len, err);
    close(fd);
    return ret;
}

int block_anchor_backing(const char *path, const char *format, char *err)
{
    const struct block_driver *drv;
    char name[PATH_MAX], fmt[32], abs_name[PATH_MAX], cwd[PATH_MAX] = "";
    char *full;
    int fd, ret;

    ret = block_query_backing(path, format, name, sizeof(name), fmt, sizeof(fmt), err);
    if (ret < 0 || name[0] == '\0' || name[0] == '/')
        return ret;
    full = block_resolve_backing_path(path, name);
    if (!full) {
        block_set_error(err, "%s: out of memory", path);
        return -ENOMEM;
    }
    if (full[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        ret = -errno;
    else if (snprintf(abs_name, sizeof(abs_name), "%s%s%s", cwd, cwd[0] ? "/" : "", full) >=
             (int)sizeof(abs_name))
        ret = -ENAMETOOLONG;
    free(full);
    if (ret < 0) {
        block_set_error(err, "%s: backing file '%s': %s", path, name, strerror(-ret));
        return ret;
    }
    ret = block_open_file(path, false, &fd, err);
    if (ret < 0)
        return ret;
    ret = block_driver_of(fd, path, format, &drv, err);
    if (ret == 0 && drv->set_backing_name)
        ret = drv->set_backing_name(fd, path, abs_name, err);
    close(fd);
    return ret;
}

int block_grow(const char *path, const char *format, uint64_t new_size, char *err)
{
    const struct block_driver *drv;
    int fd, ret;

    if (format && !block_find_driver(format)) {
        block_set_error(err, "%s: unknown image format '%s' (known: qcow2, raw)", path, format);
        return -EINVAL;
    }
    ret = block_open_file(path, false, &fd, err);
    if (ret < 0)
        return ret;
    ret = block_driver_of(fd, path, format, &drv, err);
    if (ret == 0 && !drv->grow) {
        block_set_error(err, "%s: format %s cannot grow", path, drv->name);
        ret = -ENOTSUP;
    }
    if (ret == 0)
        ret = drv->grow(fd, path, new_size, err);
    close(fd);
    return ret;
}

int block_commit(struct block *top, struct block *base, uint64_t *bytes, char *err)
{
    const size_t chunk = 1u << 20;
    const uint64_t len = block_length(top);
    uint8_t *buf = NULL;
    uint64_t off, run = 0;
    int ret = 0;

    if (block_length(base) != len) {
        block_set_error(err, "%s: disk is %" PRIu64 " bytes, %s above it is %" PRIu64,
                        block_path(base), block_length(base), block_path(top), len);
        return -EINVAL;
    }
    if (base->readonly) {
        block_set_error(err, "%s: opened read-only: cannot commit %s into it", block_path(base),
                        block_path(top));
        return -EROFS;
    }
    for (off = 0; off < len && ret == 0; off += run) {
        enum block_alloc kind;

        ret = block_map(top, off, len - off, &kind, &run);
        if (ret < 0) {
            block_set_error(err, "%s: reading its allocation at offset %" PRIu64 ": %s",
                            block_path(top), off, strerror(-ret));
            break;
        }
        if (kind == BLOCK_ALLOC_ZERO) {
            /* Unmapping is fine: base must read zeroes there, which the format guarantees
             * over its own backing file (block_write_zeroes()). */
            ret = block_write_zeroes(base, off, run, true);
            if (ret < 0)
                block_set_error(err, "%s: writing zeroes at offset %" PRIu64 ": %s",
                                block_path(base), off, strerror(-ret));
            continue;
        }
        if (kind != BLOCK_ALLOC_DATA)
            continue;
        if (!buf && !(buf = malloc(chunk))) {
            ret = -ENOMEM;
            block_set_error(err, "%s: out of memory", block_path(base));
            break;
        }
        for (uint64_t done = 0; done < run && ret == 0;) {
            size_t n = run - done < chunk ? (size_t)(run - done) : chunk;

            ret = block_read(top, off + done, buf, n);
            if (ret < 0) {
                block_set_error(err, "%s: reading %zu bytes at offset %" PRIu64 ": %s",
                                block_path(top), n, off + done, strerror(-ret));
                break;
            }
            ret = block_write(base, off + done, buf, n);
            if (ret < 0) {
                block_set_error(err, "%s: writing %zu bytes at offset %" PRIu64 ": %s",
                                block_path(base), n, off + done, strerror(-ret));
                break;
            }
            done += n;
            if (bytes)
                *bytes += n;
        }
    }
    free(buf);
    if (ret == 0) {
        ret = block_flush(base);
        if (ret < 0)
            block_set_error(err, "%s: flush: %s", block_path(base), strerror(-ret));
    }
    return ret;
}
