/* Reading compressed qcow2 clusters, spec §Cluster mapping "Compressed Clusters Descriptor"
 * and §Header compression_type: zlib (raw deflate, no zlib or gzip wrapper, as QEMU writes
 * it) or zstd. A descriptor names a host byte offset and a count of 512-byte sectors; the data
 * ends somewhere inside the last sector and decompression stops once a whole cluster came out.
 * The last cluster decompressed stays in s->dbuf, so sequential small reads decompress once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2_int.h"

static int qcow2_decompress_zlib(struct qcow2 *s, const uint8_t *in, size_t in_len)
{
    int zret;

    if (!s->zlib) {
        s->zlib = calloc(1, sizeof(*s->zlib));
        if (!s->zlib)
            return -ENOMEM;
        /* Negative window bits: raw deflate; 15 accepts every window a writer may use. */
        if (inflateInit2(s->zlib, -15) != Z_OK) {
            free(s->zlib);
            s->zlib = NULL;
            return -ENOMEM;
        }
    } else if (inflateReset(s->zlib) != Z_OK) {
        return -EIO;
    }
    s->zlib->next_in = (Bytef *)in;
    s->zlib->avail_in = (uInt)in_len;
    s->zlib->next_out = s->dbuf;
    s->zlib->avail_out = (uInt)s->cluster_size;
    zret = inflate(s->zlib, Z_FINISH);
    /* Z_BUF_ERROR with a full output: the cluster is complete and padding follows. */
    if ((zret == Z_STREAM_END || zret == Z_BUF_ERROR || zret == Z_OK) && s->zlib->avail_out == 0)
        return 0;
    return -EIO;
}

static int qcow2_decompress_zstd(struct qcow2 *s, const uint8_t *in, size_t in_len)
{
    ZSTD_inBuffer input = {.src = in, .size = in_len, .pos = 0};
    ZSTD_outBuffer output = {.dst = s->dbuf, .size = s->cluster_size, .pos = 0};

    if (!s->zstd) {
        s->zstd = ZSTD_createDCtx();
        if (!s->zstd)
            return -ENOMEM;
    } else {
        ZSTD_DCtx_reset(s->zstd, ZSTD_reset_session_only);
    }
    /* QEMU may write the cluster as several frames; stop once the cluster is full. */
    while (output.pos < output.size) {
        size_t in_before = input.pos, out_before = output.pos;
        size_t zret = ZSTD_decompressStream(s->zstd, &output, &input);

        if (ZSTD_isError(zret))
            return -EIO;
        if (input.pos == in_before && output.pos == out_before)
            return -EIO; /* no progress: the input ran out */
    }
    return 0;
}

int qcow2_decompress_cluster(struct qcow2 *s, uint64_t entry)
{
    uint64_t coffset = entry & s->coffset_mask;
    uint64_t nb_sectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t csize = nb_sectors * 512 - (coffset & 511);
    int ret;

    if (s->dbuf_entry == entry)
        return 0;
    s->dbuf_entry = 0;
    if (coffset >= s->file_size || coffset < s->cluster_size)
        return qcow2_report_corruption(s,
                                       "compressed cluster descriptor 0x%llx points to host "
                                       "offset 0x%llx, outside the data area",
                                       (unsigned long long)entry, (unsigned long long)coffset);
    /* The last sector may end past the end of the file: it reads as zeroes. */
    ret = block_file_read(s->bs->fd, coffset, s->cbuf, csize);
    if (ret < 0) {
        block_report(s->bs, "reading compressed cluster at 0x%llx: %s", (unsigned long long)coffset,
                     strerror(-ret));
        return ret;
    }
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD)
        ret = qcow2_decompress_zstd(s, s->cbuf, csize);
    else
        ret = qcow2_decompress_zlib(s, s->cbuf, csize);
    if (ret == -EIO)
        return qcow2_report_corruption(s,
                                       "compressed cluster at host offset 0x%llx (%llu "
                                       "sectors) does not decompress (%s)",
                                       (unsigned long long)coffset, (unsigned long long)nb_sectors,
                                       s->compression_type ? "zstd" : "zlib");
    if (ret < 0)
        return ret;
    s->dbuf_entry = entry;
    return 0;
}

void qcow2_decompress_destroy(struct qcow2 *s)
{
    if (s->zlib) {
        inflateEnd(s->zlib);
        free(s->zlib);
        s->zlib = NULL;
    }
    ZSTD_freeDCtx(s->zstd);
    s->zstd = NULL;
}
