/* The raw format: the file is the disk, byte for byte. Its size at open is the disk size
 * (lseek(SEEK_END) works for block devices too). Discard punches a hole; write_zeroes uses
 * fallocate() and falls back to writing zeroes where the file system cannot. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "block/block_int.h"

static int raw_probe(const uint8_t *hdr, size_t len)
{
    (void)hdr;
    (void)len;
    return 1;
}

static int raw_open(struct block *bs, char *err)
{
    off_t end = lseek(bs->fd, 0, SEEK_END);

    if (end < 0) {
        int ret = -errno;

        block_set_error(err, "%s: cannot find the size: %s", bs->path, strerror(errno));
        return ret;
    }
    bs->length = (uint64_t)end;
    return 0;
}

static void raw_close(struct block *bs)
{
    if (!bs->readonly && fdatasync(bs->fd) < 0)
        block_report(bs, "fdatasync at close: %s", strerror(errno));
}

static int raw_read(struct block *bs, uint64_t offset, void *buf, size_t len)
{
    return block_file_read(bs->fd, offset, buf, len);
}

static int raw_write(struct block *bs, uint64_t offset, const void *buf, size_t len)
{
    return block_file_write(bs->fd, offset, buf, len);
}

static int raw_flush(struct block *bs)
{
    return fdatasync(bs->fd) < 0 ? -errno : 0;
}

static int raw_write_zero_buffers(struct block *bs, uint64_t offset, uint64_t len)
{
    const size_t chunk = 256 * 1024;
    uint8_t *zeroes = calloc(1, chunk);
    int ret = 0;

    if (!zeroes)
        return -ENOMEM;
    while (len > 0 && ret == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;

        ret = block_file_write(bs->fd, offset, zeroes, n);
        offset += n;
        len -= n;
    }
    free(zeroes);
    return ret;
}

/* fallocate() with `mode`, or zero buffers when the file system or device cannot do it. */
static int raw_zero_range(struct block *bs, int mode, uint64_t offset, uint64_t len)
{
    if (fallocate(bs->fd, mode, (off_t)offset, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL && errno != ENODEV)
        return -errno;
    return raw_write_zero_buffers(bs, offset, len);
}

static int raw_discard(struct block *bs, uint64_t offset, uint64_t len)
{
    return raw_zero_range(bs, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
}

static int raw_write_zeroes(struct block *bs, uint64_t offset, uint64_t len, bool may_unmap)
{
    if (may_unmap)
        return raw_discard(bs, offset, len);
    return raw_zero_range(bs, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
}

static int raw_create(const char *path, const struct block_create_opts *opts, char *err)
{
    int fd, ret = 0;

    if (opts->backing_file) {
        block_set_error(err, "%s: raw images cannot have a backing file", path);
        return -EINVAL;
    }
    fd = hostfs_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot create: %s", path, strerror(errno));
        return ret;
    }
    if (ftruncate(fd, (off_t)opts->size) < 0 || fsync(fd) < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot size to %llu bytes: %s", path,
                        (unsigned long long)opts->size, strerror(errno));
    }
    close(fd);
    return ret;
}

/* A raw disk is its file: growing is extending the file, sparse. */
static int raw_grow(int fd, const char *path, uint64_t new_size, char *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        block_set_error(err, "%s: cannot stat: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        block_set_error(err, "%s: only a regular file can grow", path);
        return -ENOTSUP;
    }
    if (new_size < (uint64_t)st.st_size) {
        block_set_error(err, "%s: size %llu is below the current %lld bytes: shrinking loses data",
                        path, (unsigned long long)new_size, (long long)st.st_size);
        return -EINVAL;
    }
    if (new_size > INT64_MAX) {
        block_set_error(err, "%s: size %llu is too large", path, (unsigned long long)new_size);
        return -EFBIG;
    }
    if (ftruncate(fd, (off_t)new_size) < 0 || fsync(fd) < 0) {
        int ret = -errno;

        block_set_error(err, "%s: cannot grow to %llu bytes: %s", path,
                        (unsigned long long)new_size, strerror(errno));
        return ret;
    }
    return 0;
}

const struct block_driver block_driver_raw = {
    .name = "raw",
    .probe = raw_probe,
    .open = raw_open,
    .close = raw_close,
    .read = raw_read,
    .write = raw_write,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .create = raw_create,
    .grow = raw_grow,
};
