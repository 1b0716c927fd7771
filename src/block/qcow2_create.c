/* Creating an empty qcow2 version 3 image: 16-bit refcounts, zlib compression type, the
 * feature name table and backing file format extensions when there is room (spec §Header,
 * §Header extensions, §Feature name table). Layout, in clusters:
 *   0            header, extensions, backing file name
 *   1 ..         refcount table
 *   then         refcount blocks covering every cluster below
 *   then         L1 table, all zero (the file is extended over it, sparse)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/hostfs.h"
#include "block/qcow2_int.h"

#define QCOW2_CREATE_HEADER_LEN   112 /* 104 + compression_type, padded to 8 */
#define QCOW2_CREATE_REFCOUNT_ORD 4

struct qcow2_feature_name {
    uint8_t type; /* 0 incompatible, 1 compatible, 2 autoclear */
    uint8_t bit;
    const char *name;
};

static const struct qcow2_feature_name qcow2_create_features[] = {
    {0, 0, "dirty bit"},        {0, 1, "corrupt bit"},         {0, 2, "external data file"},
    {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
    {2, 0, "bitmaps"},          {2, 1, "raw external data"},
};

#define QCOW2_N_FEATURES (sizeof(qcow2_create_features) / sizeof(qcow2_create_features[0]))

/* Appends one header extension at *off; returns false when it does not fit below `limit`. */
static bool qcow2_create_put_ext(uint8_t *hdr, size_t *off, size_t limit, uint32_t type,
                                 const void *data, uint32_t len)
{
    size_t padded = ((size_t)len + 7) & ~(size_t)7;

    if (*off + 8 + padded > limit)
        return false;
    qcow2_put_be32(hdr + *off, type);
    qcow2_put_be32(hdr + *off + 4, len);
    memcpy(hdr + *off + 8, data, len);
    *off += 8 + padded;
    return true;
}

/* Fills the first cluster. Returns -EINVAL (with `err`) when the names do not fit in it. */
static int qcow2_create_header(const char *path, uint8_t *hdr, uint64_t cs, unsigned cluster_bits,
                               uint64_t size, uint32_t l1_size, uint64_t l1_off, uint64_t rt_off,
                               uint64_t rt_clusters, const char *backing, const char *backing_fmt,
                               char *err)
{
    size_t blen = backing ? strlen(backing) : 0, off = QCOW2_CREATE_HEADER_LEN;
    uint8_t features[QCOW2_N_FEATURES * 48] = {0};

    if (QCOW2_CREATE_HEADER_LEN + 8 + blen > cs) {
        block_set_error(err, "%s: backing file name does not fit in a %llu-byte header cluster",
                        path, (unsigned long long)cs);
        return -EINVAL;
    }
    qcow2_put_be32(hdr + 0, QCOW2_MAGIC);
    qcow2_put_be32(hdr + 4, 3);
    qcow2_put_be32(hdr + 20, cluster_bits);
    qcow2_put_be64(hdr + 24, size);
    qcow2_put_be32(hdr + 36, l1_size);
    qcow2_put_be64(hdr + 40, l1_off);
    qcow2_put_be64(hdr + 48, rt_off);
    qcow2_put_be32(hdr + 56, (uint32_t)rt_clusters);
    qcow2_put_be32(hdr + 96, QCOW2_CREATE_REFCOUNT_ORD);
    qcow2_put_be32(hdr + 100, QCOW2_CREATE_HEADER_LEN);
    /* Extensions, then the 8-byte end marker, then the backing file name. */
    if (backing_fmt && !qcow2_create_put_ext(hdr, &off, cs - 8 - blen, QCOW2_EXT_BACKING_FMT,
                                             backing_fmt, (uint32_t)strlen(backing_fmt))) {
        block_set_error(err,
                        "%s: backing file name and format do not fit in a %llu-byte "
                        "header cluster",
                        path, (unsigned long long)cs);
        return -EINVAL;
    }
    for (size_t i = 0; i < QCOW2_N_FEATURES; i++) {
        features[i * 48] = qcow2_create_features[i].type;
        features[i * 48 + 1] = qcow2_create_features[i].bit;
        strncpy((char *)features + i * 48 + 2, qcow2_create_features[i].name, 46);
    }
    /* Optional: left out when a small cluster has no room for it. */
    qcow2_create_put_ext(hdr, &off, cs - 8 - blen, QCOW2_EXT_FEATURE_NAME, features,
                         sizeof(features));
    off += 8; /* end of extensions: type 0, length 0 */
    if (backing) {
        qcow2_put_be64(hdr + 8, off);
        qcow2_put_be32(hdr + 16, (uint32_t)blen);
        memcpy(hdr + off, backing, blen);
    }
    return 0;
}

/* Finds the backing file's size and format when the caller left them out. */
static int qcow2_create_probe_backing(const char *path, const char *backing, uint64_t *size,
                                      char *fmt, size_t fmtlen, char *err)
{
    char inner[BLOCK_ERR_LEN] = "";
    char *full = block_resolve_backing_path(path, backing);
    struct block *b;
    int ret;

    if (!full) {
        block_set_error(err, "%s: out of memory", path);
        return -ENOMEM;
    }
    ret = block_open(full, fmt[0] ? fmt : NULL, true, &b, inner);
    if (ret < 0) {
        block_set_error(err, "%s: backing file '%s': %s", path, backing, inner);
        goto free_full;
    }
    if (*size == 0)
        *size = block_length(b);
    if (!fmt[0])
        snprintf(fmt, fmtlen, "%s", block_format_name(b));
    block_close(b);

free_full:
    free(full);
    return ret;
}

int qcow2_create_image(const char *path, const struct block_create_opts *opts, char *err)
{
    const unsigned cb = opts->cluster_bits ? opts->cluster_bits : 16;
    const char *backing = opts->backing_file;
    uint64_t size = opts->size, cs, l2_span, l1_entries, l1_clusters, rbe;
    uint64_t rt_clusters = 1, nblocks = 1, total;
    char fmt[32] = "";
    uint8_t *buf = NULL;
    int fd, ret;

    if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS) {
        block_set_error(err, "%s: cluster_bits %u is out of range %d..%d", path, cb,
                        QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
        return -EINVAL;
    }
    if (backing) {
        if (strlen(backing) == 0 || strlen(backing) > QCOW2_MAX_BACKING_NAME) {
            block_set_error(err, "%s: backing file name must be 1..%d bytes", path,
                            QCOW2_MAX_BACKING_NAME);
            return -EINVAL;
        }
        if (opts->backing_fmt) {
            if (strlen(opts->backing_fmt) >= sizeof(fmt)) {
                block_set_error(err, "%s: backing format name '%s' is too long", path,
                                opts->backing_fmt);
                return -EINVAL;
            }
            snprintf(fmt, sizeof(fmt), "%s", opts->backing_fmt);
        }
        if (size == 0 || !fmt[0]) {
            ret = qcow2_create_probe_backing(path, backing, &size, fmt, sizeof(fmt), err);
            if (ret < 0)
                return ret;
        }
    }
    cs = 1ull << cb;
    l2_span = cs << (cb - 3);
    if (size > INT64_MAX || size / l2_span + 1 > QCOW2_MAX_L1_BYTES / 8) {
        block_set_error(err, "%s: size %llu is too large for %llu-byte clusters", path,
                        (unsigned long long)size, (unsigned long long)cs);
        return -EINVAL;
    }
    l1_entries = size / l2_span + (size % l2_span != 0);
    l1_clusters = l1_entries ? (l1_entries * 8 + cs - 1) / cs : 1;
    rbe = cs * 8 / (1u << QCOW2_CREATE_REFCOUNT_ORD);
    /* Fixed point: the blocks cover every metadata cluster, the table every block. */
    for (;;) {
        uint64_t nb, rtc;

        total = 1 + rt_clusters + nblocks + l1_clusters;
        nb = (total + rbe - 1) / rbe;
        rtc = (nb * 8 + cs - 1) / cs;
        if (nb <= nblocks && rtc <= rt_clusters)
            break;
        nblocks = nb > nblocks ? nb : nblocks;
        rt_clusters = rtc > rt_clusters ? rtc : rt_clusters;
    }
    buf = calloc(1 + rt_clusters + nblocks, cs);
    if (!buf) {
        block_set_error(err, "%s: out of memory", path);
        return -ENOMEM;
    }
    ret = qcow2_create_header(path, buf, cs, cb, size, (uint32_t)l1_entries,
                              (1 + rt_clusters + nblocks) * cs, cs, rt_clusters, backing,
                              fmt[0] ? fmt : NULL, err);
    if (ret < 0)
        goto free_buf;
    for (uint64_t b = 0; b < nblocks; b++)
        qcow2_put_be64(buf + cs + b * 8, (1 + rt_clusters + b) * cs);
    for (uint64_t c = 0; c < total; c++) /* 16-bit big-endian refcounts of 1 */
        buf[(1 + rt_clusters) * cs + c * 2 + 1] = 1;

    fd = hostfs_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot create: %s", path, strerror(errno));
        goto free_buf;
    }
    /* Never truncate an image that someone has open. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
        block_set_error(err, "%s: image is in use: %s", path, strerror(errno));
        goto close_fd;
    }
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)(total * cs)) < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot size the file: %s", path, strerror(errno));
        goto close_fd;
    }
    ret = block_file_write(fd, 0, buf, (1 + rt_clusters + nblocks) * cs);
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    if (ret < 0)
        block_set_error(err, "%s: writing the new image: %s", path, strerror(-ret));

close_fd:
    close(fd);
free_buf:
    free(buf);
    return ret;
}
