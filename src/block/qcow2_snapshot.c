/* Listing qcow2 internal snapshots, spec §Snapshots ("Snapshot table entry"). Read-only: the
 * table is parsed on each call, every length checked against the file and QEMU's limits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2_int.h"

#define QCOW2_SNAPSHOT_HEADER_LEN 40
#define QCOW2_MAX_SNAPSHOT_EXTRA  1024        /* QEMU's limit */
#define QCOW2_MAX_SNAPSHOT_TABLE  (64u << 20) /* QEMU's limit on the whole table */

/* Reads `len` bytes at `offset`, which must lie inside the file. */
static int qcow2_snapshot_read(struct qcow2 *s, unsigned i, uint64_t offset, void *buf, size_t len)
{
    int ret;

    if (offset > s->file_size || len > s->file_size - offset)
        return qcow2_report_corruption(s,
                                       "snapshot %u: table entry at 0x%llx runs past the "
                                       "end of the file",
                                       i, (unsigned long long)offset);
    ret = block_file_read(s->bs->fd, offset, buf, len);
    if (ret < 0)
        block_report(s->bs, "reading snapshot table: %s", strerror(-ret));
    return ret;
}

static int qcow2_snapshot_string(struct qcow2 *s, unsigned i, uint64_t offset, size_t len,
                                 char **out)
{
    char *str = malloc(len + 1);
    int ret;

    if (!str)
        return -ENOMEM;
    ret = qcow2_snapshot_read(s, i, offset, str, len);
    if (ret < 0) {
        free(str);
        return ret;
    }
    str[len] = '\0';
    *out = str;
    return 0;
}

int qcow2_snapshot_list(struct block *bs, struct block_snapshot_info **list, unsigned *count)
{
    struct qcow2 *s = bs->opaque;
    struct block_snapshot_info *arr;
    uint64_t off = s->snapshots_offset;
    unsigned i;
    int ret = 0;

    if (s->nb_snapshots == 0)
        return 0;
    arr = calloc(s->nb_snapshots, sizeof(*arr));
    if (!arr)
        return -ENOMEM;
    for (i = 0; i < s->nb_snapshots; i++) {
        uint8_t h[QCOW2_SNAPSHOT_HEADER_LEN], extra[16] = {0};
        uint32_t extra_len, id_len, name_len;
        uint64_t entry_len;

        ret = qcow2_snapshot_read(s, i, off, h, sizeof(h));
        if (ret < 0)
            goto free_list;
        id_len = qcow2_be16(h + 12);
        name_len = qcow2_be16(h + 14);
        extra_len = qcow2_be32(h + 36);
        if (extra_len > QCOW2_MAX_SNAPSHOT_EXTRA) {
            ret = qcow2_report_corruption(s, "snapshot %u: extra data size %u exceeds %d", i,
                                          extra_len, QCOW2_MAX_SNAPSHOT_EXTRA);
            goto free_list;
        }
        ret = qcow2_snapshot_read(s, i, off + sizeof(h), extra,
                                  extra_len < sizeof(extra) ? extra_len : sizeof(extra));
        if (ret < 0)
            goto free_list;
        ret = qcow2_snapshot_string(s, i, off + sizeof(h) + extra_len, id_len, &arr[i].id);
        if (ret < 0)
            goto free_list;
        ret = qcow2_snapshot_string(s, i, off + sizeof(h) + extra_len + id_len, name_len,
                                    &arr[i].name);
        if (ret < 0)
            goto free_list;
        arr[i].date_sec = qcow2_be32(h + 16);
        arr[i].date_nsec = qcow2_be32(h + 20);
        arr[i].vm_clock_nsec = qcow2_be64(h + 24);
        /* Extra data bytes 40-47 supersede the 32-bit VM state size; 48-55: disk size. */
        arr[i].vm_state_size = extra_len >= 8 ? qcow2_be64(extra) : qcow2_be32(h + 32);
        arr[i].disk_size = extra_len >= 16 ? qcow2_be64(extra + 8) : 0;
        entry_len = sizeof(h) + extra_len + id_len + name_len;
        off += (entry_len + 7) & ~7ull;
        if (off - s->snapshots_offset > QCOW2_MAX_SNAPSHOT_TABLE) {
            ret = qcow2_report_corruption(s, "snapshot table is larger than %u bytes",
                                          QCOW2_MAX_SNAPSHOT_TABLE);
            goto free_list;
        }
    }
    *list = arr;
    *count = s->nb_snapshots;
    return 0;

free_list:
    block_snapshot_list_free(arr, s->nb_snapshots);
    return ret;
}
