/* The qcow2 driver's host-file I/O: the lowest floor of the driver, under the mapping
 * (qcow2.c), the metadata caches (qcow2_cache.c) and the refcounts (qcow2_refcount.c), so that
 * they all call down into this file and never into each other for I/O. It reads and writes the
 * image file, tracks whether a sync is owed, refuses writes over the image's fixed metadata, and
 * reports corruption. Threads: whichever thread holds the block device (block.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2_int.h"

int qcow2_report_corruption(struct qcow2 *s, const char *fmt, ...)
{
    char line[BLOCK_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    block_report(s->bs, "%s%s", line, s->corrupt ? "" : " (image is corrupt: writes refused)");
    s->corrupt = true;
    return -EIO;
}

int qcow2_write_host(struct qcow2 *s, uint64_t offset, const void *buf, size_t len)
{
    int ret = block_file_write(s->bs->fd, offset, buf, len);

    s->unsynced = true;
    if (ret < 0)
        return ret;
    if (offset + len > s->file_size)
        s->file_size = offset + len;
    return 0;
}

int qcow2_sync_host(struct qcow2 *s)
{
    if (!s->unsynced)
        return 0;
    if (fdatasync(s->bs->fd) < 0) {
        int ret = -errno;

        block_report(s->bs, "fdatasync: %s", strerror(errno));
        return ret;
    }
    s->unsynced = false;
    return 0;
}

int qcow2_check_overlap(struct qcow2 *s, uint64_t offset, uint64_t len, const char *what)
{
    const char *hit = NULL;

    if (qcow2_ranges_overlap(offset, len, 0, s->cluster_size))
        hit = "header";
    else if (qcow2_ranges_overlap(offset, len, s->l1_offset, (uint64_t)s->l1_size * 8))
        hit = "L1 table";
    else if (qcow2_ranges_overlap(offset, len, s->rt_offset,
                                  (uint64_t)s->rt_clusters * s->cluster_size))
        hit = "refcount table";
    else if (s->nb_snapshots &&
             qcow2_ranges_overlap(offset, len, s->snapshots_offset, s->cluster_size))
        hit = "snapshot table";
    if (!hit)
        return 0;
    return qcow2_report_corruption(s, "%s at host offset 0x%llx would overwrite the %s", what,
                                   (unsigned long long)offset, hit);
}

int qcow2_read_host(struct qcow2 *s, uint64_t host, uint8_t *buf, size_t len)
{
    int ret = block_file_read(s->bs->fd, host, buf, len);

    if (ret < 0)
        block_report(s->bs, "reading 0x%zx bytes at host offset 0x%llx: %s", len,
                     (unsigned long long)host, strerror(-ret));
    return ret;
}
