/* The qcow2 format driver: header parsing and validation, guest-to-host cluster mapping, read,
 * write with copy-on-write, discard and write_zeroes, flush. Versions 2 and 3. Spec: QEMU's
 * docs/interop/qcow2.txt, cited by section ("spec §Header").
 *
 * Not supported (refused at open with a message naming the feature): encryption, external
 * data files, extended L2 entries (subclusters). Internal snapshots are listed, not created or
 * applied; writes to an image with snapshots copy shared clusters and L2 tables (their
 * refcount is above 1 and the active tables' COPIED flag is clear, spec §Cluster mapping).
 *
 * Write ordering (crash safety). The invariant on disk, after a process crash or a power loss
 * at any instant, is what `qemu-img check` demands: every cluster that the header, the L1 or
 * L2 tables or the refcount table point to has a refcount at least its number of references
 * (more is a leak, allowed), and every pointer leads to fully written content. The scheme:
 *   - Allocating a cluster raises its refcount in the refcount block cache at once; nothing on
 *     disk points to the cluster yet. Guest data is then written straight to the new cluster
 *     (or in place to a cluster whose L2 entry has COPIED, i.e. refcount exactly 1).
 *   - L2 entry changes stay in the L2 cache and L1 entry changes in memory. A dirty L2 table
 *     reaches the disk (eviction or flush) only after every dirty refcount block is written
 *     and the file is fdatasync()ed: refcounts and guest data are durable before any L2 entry
 *     that points to them.
 *   - Flush (block_flush, close, and when many frees are waiting):
 *       1. extend the file over every allocated cluster; write dirty refcount blocks
 *       2. fdatasync                       (refcounts and guest data durable)
 *       3. write dirty L2 tables
 *       4. if L1 entries changed: fdatasync (new L2 tables durable), write the L1 chunks
 *       5. fdatasync                       (every pointer durable)
 *       6. if frees are waiting: apply the refcount decrements, write the blocks, fdatasync
 *   - Decrements (discard, write_zeroes, copy-on-write away from a shared or compressed
 *     cluster, a replaced refcount table) wait for step 6, after the tables that dropped the
 *     references are durable; until then the clusters cannot be reused, so no cluster on disk
 *     is ever referenced by an old pointer and a new one.
 *   - A new refcount block or a grown refcount table is written, synced, then published by one
 *     small write (a table entry, or header bytes 48..59); see qcow2_refcount.c.
 *   - The dirty bit and lazy refcounts are never used.
 * Each fdatasync is skipped when nothing was written since the last one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2_int.h"

/* Flush when this many refcount decrements wait, to bound memory and leaks. */
#define QCOW2_PENDING_FLUSH 16384

enum qcow2_cluster_kind {
    QCOW2_CLUSTER_UNALLOCATED, /* read from the backing file, or zeroes */
    QCOW2_CLUSTER_ZERO,        /* reads as zeroes; may keep a preallocated host cluster */
    QCOW2_CLUSTER_COMPRESSED,
    QCOW2_CLUSTER_NORMAL,
};

/* ---- Header, spec §Header and §Header extensions ---- */

static int qcow2_probe(const uint8_t *hdr, size_t len)
{
    /* Any version: an unsupported one should fail clearly, not open as raw. */
    if (len >= 8 && qcow2_be32(hdr) == QCOW2_MAGIC)
        return 100;
    return 0;
}

/* The fixed header in host byte order. */
struct qcow2_header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
};

/* What the header extensions told us. */
struct qcow2_extensions {
    char backing_fmt[32];
    const uint8_t *feature_names; /* the feature name table, inside the header buffer */
    size_t feature_names_len;
};

/* `buf` holds at least QCOW2_V2_HEADER_LEN bytes, zero-filled up to QCOW2_V3_HEADER_LEN + 8. */
static void qcow2_decode_header(const uint8_t *buf, struct qcow2_header *h)
{
    h->magic = qcow2_be32(buf + 0);
    h->version = qcow2_be32(buf + 4);
    h->backing_file_offset = qcow2_be64(buf + 8);
    h->backing_file_size = qcow2_be32(buf + 16);
    h->cluster_bits = qcow2_be32(buf + 20);
    h->size = qcow2_be64(buf + 24);
    h->crypt_method = qcow2_be32(buf + 32);
    h->l1_size = qcow2_be32(buf + 36);
    h->l1_table_offset = qcow2_be64(buf + 40);
    h->refcount_table_offset = qcow2_be64(buf + 48);
    h->refcount_table_clusters = qcow2_be32(buf + 56);
    h->nb_snapshots = qcow2_be32(buf + 60);
    h->snapshots_offset = qcow2_be64(buf + 64);
    if (h->version >= 3) {
        h->incompatible_features = qcow2_be64(buf + 72);
        h->compatible_features = qcow2_be64(buf + 80);
        h->autoclear_features = qcow2_be64(buf + 88);
        h->refcount_order = qcow2_be32(buf + 96);
        h->header_length = qcow2_be32(buf + 100);
    } else {
        h->incompatible_features = 0;
        h->compatible_features = 0;
        h->autoclear_features = 0;
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
    }
    /* spec §Additional fields: absent when header_length <= its offset. */
    h->compression_type = h->version >= 3 && h->header_length > 104 ? buf[104] : 0;
}

/* The name the feature name table gives incompatible bit `bit`, or "" when none. */
static void qcow2_feature_name(const struct qcow2_extensions *ext, unsigned bit, char *out,
                               size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i + 48 <= ext->feature_names_len; i += 48) {
        const uint8_t *e = ext->feature_names + i;

        if (e[0] == 0 && e[1] == bit) {
            size_t n = strnlen((const char *)e + 2, 46);

            snprintf(out, outlen, " ('%.*s')", (int)n, (const char *)e + 2);
            for (char *p = out; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                    *p = '?';
            return;
        }
    }
}

/* Walks the header extensions from the end of the header to `end` (the backing file name or
 * the end of the first cluster), spec §Header extensions. */
static int qcow2_parse_extensions(const char *path, const uint8_t *buf, size_t start, size_t end,
                                  struct qcow2_extensions *ext, char *err)
{
    size_t off = start;

    while (off < end) {
        uint32_t type, len;

        if (end - off < 8) {
            block_set_error(err,
                            "%s: header extension at offset %zu is cut off by the end of "
                            "the header area (offset %zu)",
                            path, off, end);
            return -EINVAL;
        }
        type = qcow2_be32(buf + off);
        len = qcow2_be32(buf + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - off) {
            block_set_error(err,
                            "%s: header extension 0x%08x at offset %zu: length %u "
                            "overflows the header area (ends at offset %zu)",
                            path, type, off - 8, len, end);
            return -EINVAL;
        }
        if (type == QCOW2_EXT_BACKING_FMT) {
            if (len == 0 || len >= sizeof(ext->backing_fmt)) {
                block_set_error(err,
                                "%s: backing file format header extension has length %u "
                                "(must be 1..%zu)",
                                path, len, sizeof(ext->backing_fmt) - 1);
                return -EINVAL;
            }
            memcpy(ext->backing_fmt, buf + off, len);
            ext->backing_fmt[len] = '\0';
            if (strlen(ext->backing_fmt) != len) {
                block_set_error(err,
                                "%s: backing file format header extension holds a NUL "
                                "byte",
                                path);
                return -EINVAL;
            }
        } else if (type == QCOW2_EXT_FEATURE_NAME) {
            ext->feature_names = buf + off;
            ext->feature_names_len = len;
        }
        /* Unknown extensions can be ignored, spec §Header extensions. */
        off += ((size_t)len + 7) & ~(size_t)7;
    }
    return 0;
}

static int qcow2_check_features(struct qcow2 *s, const struct qcow2_header *h,
                                const struct qcow2_extensions *ext, char *err)
{
    const char *path = s->bs->path;
    uint64_t unknown = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
    char name[64];

    if (unknown) {
        unsigned bit = (unsigned)__builtin_ctzll(unknown);

        qcow2_feature_name(ext, bit, name, sizeof(name));
        block_set_error(err,
                        "%s: unknown incompatible feature bit %u%s is set "
                        "(incompatible_features 0x%llx): cannot open this image",
                        path, bit, name, (unsigned long long)h->incompatible_features);
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
        block_set_error(err,
                        "%s: external data files (incompatible feature bit 2) are not "
                        "supported",
                        path);
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) {
        block_set_error(err,
                        "%s: extended L2 entries (incompatible feature bit 4) are not "
                        "supported",
                        path);
        return -ENOTSUP;
    }
    if (h->incompatible_features & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)) {
        const char *what = h->incompatible_features & QCOW2_INCOMPAT_CORRUPT
                               ? "marked corrupt (incompatible feature bit 1)"
                               : "dirty (incompatible feature bit 0: refcounts may be stale)";

        if (!s->bs->readonly) {
            block_set_error(err,
                            "%s: image is %s; repair it with 'qemu-img check -r all' or "
                            "open it read-only",
                            path, what);
            return -EINVAL;
        }
        log_warn("%s: image is %s; opening read-only", path, what);
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->header_length <= 104 || h->compression_type == QCOW2_COMPRESSION_ZLIB) {
            block_set_error(err,
                            "%s: incompatible feature bit 3 (compression type) is set but "
                            "header field compression_type is absent or zlib",
                            path);
            return -EINVAL;
        }
        if (h->compression_type != QCOW2_COMPRESSION_ZSTD) {
            block_set_error(err,
                            "%s: header field compression_type is %u: unknown (0 zlib, "
                            "1 zstd)",
                            path, h->compression_type);
            return -ENOTSUP;
        }
    } else if (h->compression_type != QCOW2_COMPRESSION_ZLIB) {
        block_set_error(err,
                        "%s: header field compression_type is %u but incompatible feature "
                        "bit 3 is clear",
                        path, h->compression_type);
        return -EINVAL;
    }
    return 0;
}

/* Checks every header field against the spec's limits and the file size. */
static int qcow2_check_header(struct qcow2 *s, const struct qcow2_header *h, char *err)
{
    const char *path = s->bs->path;
    const uint64_t fsize = s->file_size;
    uint64_t cs, l2_span, need_l1;

    if (h->magic != QCOW2_MAGIC) {
        block_set_error(err, "%s: header field magic is 0x%08x, not 0x%08x: not a qcow2 image",
                        path, h->magic, QCOW2_MAGIC);
        return -EINVAL;
    }
    if (h->version != 2 && h->version != 3) {
        block_set_error(err, "%s: header field version is %u; supported versions are 2 and 3", path,
                        h->version);
        return -ENOTSUP;
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        block_set_error(err, "%s: header field cluster_bits is %u; must be %d..%d", path,
                        h->cluster_bits, QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
        return -EINVAL;
    }
    cs = 1ull << h->cluster_bits;
    if (h->version >= 3 &&
        (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length % 8 || h->header_length > cs)) {
        block_set_error(err,
                        "%s: header field header_length is %u; must be a multiple of 8 "
                        "from %d to the cluster size %llu",
                        path, h->header_length, QCOW2_V3_HEADER_LEN, (unsigned long long)cs);
        return -EINVAL;
    }
    if (h->crypt_method != 0) {
        block_set_error(err,
                        "%s: header field crypt_method is %u: encrypted images are not "
                        "supported",
                        path, h->crypt_method);
        return -ENOTSUP;
    }
    if (h->refcount_order > 6) {
        block_set_error(err, "%s: header field refcount_order is %u; must be 0..6", path,
                        h->refcount_order);
        return -EINVAL;
    }
    /* spec §Cluster mapping: one L1 entry maps cs * (cs / 8) bytes. */
    l2_span = cs << (h->cluster_bits - 3);
    need_l1 = h->size / l2_span + (h->size % l2_span != 0);
    if (h->size > INT64_MAX || need_l1 > QCOW2_MAX_L1_BYTES / 8) {
        block_set_error(err,
                        "%s: header field size (virtual size %llu) is too large for "
                        "%llu-byte clusters",
                        path, (unsigned long long)h->size, (unsigned long long)cs);
        return -EINVAL;
    }
    if (h->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        block_set_error(err,
                        "%s: L1 size %u (header field l1_size) is too big: the limit is %u "
                        "entries",
                        path, h->l1_size, QCOW2_MAX_L1_BYTES / 8);
        return -EINVAL;
    }
    if (h->l1_size < need_l1) {
        block_set_error(err,
                        "%s: L1 size %u (header field l1_size) is too small for virtual "
                        "size %llu (needs %llu entries)",
                        path, h->l1_size, (unsigned long long)h->size, (unsigned long long)need_l1);
        return -EINVAL;
    }
    if (h->l1_table_offset % cs) {
        block_set_error(err, "%s: L1 table offset 0x%llx is not cluster-aligned", path,
                        (unsigned long long)h->l1_table_offset);
        return -EINVAL;
    }
    if (h->l1_size && (h->l1_table_offset == 0 || h->l1_table_offset > fsize ||
                       (uint64_t)h->l1_size * 8 > fsize - h->l1_table_offset)) {
        block_set_error(err,
                        "%s: L1 table (offset 0x%llx, %u entries) lies outside the file "
                        "(%llu bytes)",
                        path, (unsigned long long)h->l1_table_offset, h->l1_size,
                        (unsigned long long)fsize);
        return -EINVAL;
    }
    if (h->refcount_table_offset % cs) {
        block_set_error(err, "%s: refcount table offset 0x%llx is not cluster-aligned", path,
                        (unsigned long long)h->refcount_table_offset);
        return -EINVAL;
    }
    if (h->refcount_table_clusters == 0 || h->refcount_table_clusters > QCOW2_MAX_RT_BYTES / cs) {
        block_set_error(err, "%s: header field refcount_table_clusters is %u; must be 1..%llu",
                        path, h->refcount_table_clusters,
                        (unsigned long long)(QCOW2_MAX_RT_BYTES / cs));
        return -EINVAL;
    }
    if (h->refcount_table_offset == 0 || h->refcount_table_offset > fsize ||
        (uint64_t)h->refcount_table_clusters * cs > fsize - h->refcount_table_offset) {
        block_set_error(err,
                        "%s: refcount table offset 0x%llx (%u clusters) lies outside the "
                        "file (%llu bytes)",
                        path, (unsigned long long)h->refcount_table_offset,
                        h->refcount_table_clusters, (unsigned long long)fsize);
        return -EINVAL;
    }
    /* The tables must not overlap the header or each other: writing one would corrupt the
     * other. */
    if (h->l1_size && (h->l1_table_offset < cs ||
                       qcow2_ranges_overlap(h->l1_table_offset, (uint64_t)h->l1_size * 8,
                                            h->refcount_table_offset,
                                            (uint64_t)h->refcount_table_clusters * cs))) {
        block_set_error(err,
                        "%s: L1 table offset 0x%llx overlaps the header or the refcount "
                        "table",
                        path, (unsigned long long)h->l1_table_offset);
        return -EINVAL;
    }
    if (h->refcount_table_offset < cs) {
        block_set_error(err, "%s: refcount table offset 0x%llx overlaps the header", path,
                        (unsigned long long)h->refcount_table_offset);
        return -EINVAL;
    }
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        block_set_error(err, "%s: header field nb_snapshots is %u; the limit is %d", path,
                        h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
        return -EINVAL;
    }
    if (h->nb_snapshots &&
        (h->snapshots_offset % cs || h->snapshots_offset == 0 || h->snapshots_offset >= fsize)) {
        block_set_error(err,
                        "%s: snapshot table offset 0x%llx is not cluster-aligned or lies "
                        "outside the file (%llu bytes)",
                        path, (unsigned long long)h->snapshots_offset, (unsigned long long)fsize);
        return -EINVAL;
    }
    if (h->backing_file_offset) {
        uint64_t limit = cs < fsize ? cs : fsize;

        /* spec §Header extensions: the name lies in the first cluster, after the header. */
        if (h->backing_file_offset >= limit ||
            h->backing_file_offset < (h->version >= 3 ? h->header_length : 72) ||
            (h->backing_file_size <= QCOW2_MAX_BACKING_NAME &&
             h->backing_file_size > limit - h->backing_file_offset)) {
            block_set_error(err,
                            "%s: backing file name offset 0x%llx (length %u) lies outside "
                            "the header cluster or past the end of the file",
                            path, (unsigned long long)h->backing_file_offset, h->backing_file_size);
            return -EINVAL;
        }
        if (h->backing_file_size == 0 || h->backing_file_size > QCOW2_MAX_BACKING_NAME) {
            block_set_error(err, "%s: header field backing_file_size is %u; must be 1..%d", path,
                            h->backing_file_size, QCOW2_MAX_BACKING_NAME);
            return -EINVAL;
        }
    }
    return 0;
}

static int qcow2_read_table(struct qcow2 *s, uint64_t offset, uint64_t entries, uint64_t **out,
                            const char *what, char *err)
{
    uint64_t *t = malloc(entries ? entries * 8 : 8);
    int ret;

    if (!t) {
        block_set_error(err, "%s: out of memory for the %s", s->bs->path, what);
        return -ENOMEM;
    }
    ret = block_file_read(s->bs->fd, offset, t, entries * 8);
    if (ret < 0) {
        block_set_error(err, "%s: reading the %s: %s", s->bs->path, what, strerror(-ret));
        free(t);
        return ret;
    }
    for (uint64_t i = 0; i < entries; i++)
        t[i] = be64toh(t[i]);
    *out = t;
    return 0;
}

static unsigned qcow2_clamp(uint64_t v, unsigned lo, unsigned hi)
{
    return v < lo ? lo : v > hi ? hi : (unsigned)v;
}

static void qcow2_free_state(struct qcow2 *s)
{
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    qcow2_decompress_destroy(s);
    block_close(s->backing);
    free(s->l1);
    free(s->l1_dirty);
    free(s->rt);
    free(s->pending);
    free(s->cbuf);
    free(s->dbuf);
    free(s->cow_buf);
    free(s);
}

/* Reads and checks the header and its extensions (spec §Header, §Header extensions) of the
 * image s->bs->fd, s->bs->path: sets s->file_size, *h, *ext, and returns the first cluster (or
 * the whole file when shorter) in *hdr (malloc'd; ext points into it), *hdr_len bytes. */
static int qcow2_read_header(struct qcow2 *s, struct qcow2_header *h, struct qcow2_extensions *ext,
                             uint8_t **hdr, size_t *hdr_len, char *err)
{
    struct block *bs = s->bs;
    uint8_t *buf;
    size_t len, ext_end;
    off_t fsize;
    int ret;

    *hdr = NULL;
    fsize = lseek(bs->fd, 0, SEEK_END);
    if (fsize < 0) {
        ret = -errno;
        block_set_error(err, "%s: cannot find the size: %s", bs->path, strerror(errno));
        return ret;
    }
    s->file_size = (uint64_t)fsize;
    if (s->file_size < QCOW2_V2_HEADER_LEN) {
        block_set_error(err, "%s: file is too short (%llu bytes) for a qcow2 header", bs->path,
                        (unsigned long long)s->file_size);
        return -EINVAL;
    }
    /* First the fixed fields, then (knowing the cluster size) the whole first cluster. */
    buf = calloc(1, QCOW2_V3_HEADER_LEN + 8);
    if (!buf)
        return -ENOMEM;
    ret = block_file_read(bs->fd, 0, buf, QCOW2_V3_HEADER_LEN + 8);
    if (ret < 0) {
        block_set_error(err, "%s: reading the header: %s", bs->path, strerror(-ret));
        goto free_buf;
    }
    qcow2_decode_header(buf, h);
    ret = qcow2_check_header(s, h, err);
    if (ret < 0)
        goto free_buf;
    len = (1ull << h->cluster_bits) < s->file_size ? (size_t)1 << h->cluster_bits
                                                   : (size_t)s->file_size;
    free(buf);
    buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    ret = block_file_read(bs->fd, 0, buf, len);
    if (ret < 0) {
        block_set_error(err, "%s: reading the header: %s", bs->path, strerror(-ret));
        goto free_buf;
    }
    ext_end = h->backing_file_offset ? (size_t)h->backing_file_offset : len;
    ret = qcow2_parse_extensions(bs->path, buf, h->header_length, ext_end, ext, err);
    if (ret < 0)
        goto free_buf;
    *hdr = buf;
    *hdr_len = len;
    return 0;

free_buf:
    free(buf);
    return ret;
}

static int qcow2_open(struct block *bs, char *err)
{
    struct qcow2_extensions ext = {.backing_fmt = ""};
    struct qcow2_header h;
    struct qcow2 *s;
    uint8_t *hdr = NULL;
    size_t hdr_len;
    int ret;

    s = calloc(1, sizeof(*s));
    if (!s) {
        block_set_error(err, "%s: out of memory", bs->path);
        return -ENOMEM;
    }
    s->bs = bs;
    s->reserved = UINT64_MAX;
    ret = qcow2_read_header(s, &h, &ext, &hdr, &hdr_len, err);
    if (ret < 0)
        goto free_state;
    s->version = h.version;
    s->cluster_bits = h.cluster_bits;
    s->cluster_size = 1ull << h.cluster_bits;
    s->l2_bits = h.cluster_bits - 3;
    s->size = h.size;
    ret = qcow2_check_features(s, &h, &ext, err);
    if (ret < 0)
        goto free_hdr;

    s->l1_size = h.l1_size;
    s->l1_offset = h.l1_table_offset;
    s->rt_offset = h.refcount_table_offset;
    s->rt_clusters = h.refcount_table_clusters;
    s->rt_entries = (uint64_t)h.refcount_table_clusters * s->cluster_size / 8;
    s->refcount_order = h.refcount_order;
    s->rb_bits = h.cluster_bits + 3 - h.refcount_order;
    s->incompat = h.incompatible_features;
    s->autoclear = h.autoclear_features;
    s->nb_snapshots = h.nb_snapshots;
    s->snapshots_offset = h.snapshots_offset;
    s->compression_type = h.compression_type;
    s->csize_shift = 62 - (h.cluster_bits - 8);
    s->csize_mask = (1ull << (h.cluster_bits - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;
    s->alloc_end = (s->file_size + s->cluster_size - 1) >> s->cluster_bits;

    ret = qcow2_read_table(s, s->l1_offset, s->l1_size, &s->l1, "L1 table", err);
    if (ret < 0)
        goto free_hdr;
    ret = qcow2_read_table(s, s->rt_offset, s->rt_entries, &s->rt, "refcount table", err);
    if (ret < 0)
        goto free_hdr;
    s->l1_dirty = calloc((s->l1_size + 63) / 64 + 1, sizeof(*s->l1_dirty));
    if (!s->l1_dirty ||
        qcow2_cache_init(&s->rb_cache, "refcount block",
                         qcow2_clamp((1u << 20) >> s->cluster_bits, 4, 128), NULL) < 0 ||
        qcow2_cache_init(&s->l2_cache, "L2 table",
                         qcow2_clamp((4u << 20) >> s->cluster_bits, 4, 512), &s->rb_cache) < 0) {
        block_set_error(err, "%s: out of memory", bs->path);
        ret = -ENOMEM;
        goto free_hdr;
    }

    /* block_open_layer(): this layer alone; what it lacks reads as zeroes. */
    if (h.backing_file_offset && !bs->no_backing) {
        char name[QCOW2_MAX_BACKING_NAME + 1];

        memcpy(name, hdr + h.backing_file_offset, h.backing_file_size);
        name[h.backing_file_size] = '\0';
        if (strlen(name) != h.backing_file_size) {
            block_set_error(err, "%s: backing file name (offset 0x%llx) holds a NUL byte", bs->path,
                            (unsigned long long)h.backing_file_offset);
            ret = -EINVAL;
            goto free_hdr;
        }
        ret = block_open_backing(bs, name, ext.backing_fmt[0] ? ext.backing_fmt : NULL, &s->backing,
                                 err);
        if (ret < 0)
            goto free_hdr;
    }

    /* spec §Header autoclear_features: a writer that does not know a bit must clear it. We
     * know none of their data (bitmaps), so all of them. */
    if (!bs->readonly && s->autoclear) {
        uint8_t zero[8] = {0};

        ret = qcow2_write_host(s, 88, zero, sizeof(zero));
        if (ret == 0)
            ret = qcow2_sync_host(s);
        if (ret < 0) {
            block_set_error(err, "%s: clearing autoclear_features: %s", bs->path, strerror(-ret));
            goto free_hdr;
        }
        s->autoclear = 0;
    }
    free(hdr);
    bs->length = s->size;
    bs->opaque = s;
    return 0;

free_hdr:
    free(hdr);
free_state:
    qcow2_free_state(s);
    return ret;
}

/* ---- Mapping, spec §Cluster mapping ---- */

/* The host offset of the L2 table for L1 index `l1_index` (0: none), validated. */
static int qcow2_l2_table_offset(struct qcow2 *s, uint64_t l1_index, uint64_t *offset)
{
    uint64_t e = s->l1[l1_index], off = e & QCOW2_L1E_OFFSET_MASK;

    *offset = 0;
    if (off == 0)
        return 0;
    if ((e & QCOW2_L1E_RESERVED) || (off & (s->cluster_size - 1)))
        return qcow2_report_corruption(s,
                                       "L1 entry %llu (0x%llx) has reserved bits set or is "
                                       "not cluster-aligned",
                                       (unsigned long long)l1_index, (unsigned long long)e);
    if ((off >> s->cluster_bits) >= s->alloc_end)
        return qcow2_report_corruption(s,
                                       "L1 entry %llu points to an L2 table at 0x%llx, past "
                                       "the end of the file",
                                       (unsigned long long)l1_index, (unsigned long long)off);
    if (off < s->cluster_size)
        return qcow2_report_corruption(s, "L1 entry %llu points to an L2 table in the header",
                                       (unsigned long long)l1_index);
    *offset = off;
    return 0;
}

/* The L2 entry for guest cluster `gc`; 0 when there is no L2 table. */
static int qcow2_get_l2_entry(struct qcow2 *s, uint64_t gc, uint64_t *entry)
{
    struct qcow2_cache_slot *slot;
    uint64_t l2_off;
    int ret;

    *entry = 0;
    ret = qcow2_l2_table_offset(s, gc >> s->l2_bits, &l2_off);
    if (ret < 0 || l2_off == 0)
        return ret;
    ret = qcow2_cache_get(s, &s->l2_cache, l2_off, true, &slot);
    if (ret < 0)
        return ret;
    *entry = qcow2_be64(slot->data + (gc & ((1ull << s->l2_bits) - 1)) * 8);
    return 0;
}

/* Classifies an L2 entry and, for standard clusters, validates its host offset. */
static int qcow2_classify(struct qcow2 *s, uint64_t gc, uint64_t entry,
                          enum qcow2_cluster_kind *kind, uint64_t *host)
{
    uint64_t off = entry & QCOW2_L2E_OFFSET_MASK;

    *host = 0;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        *kind = QCOW2_CLUSTER_COMPRESSED;
        return 0;
    }
    if ((entry & QCOW2_L2E_RESERVED) || (off & (s->cluster_size - 1)))
        goto bad;
    if (off && ((off >> s->cluster_bits) >= s->alloc_end || off < s->cluster_size))
        goto bad;
    if (entry & QCOW2_OFLAG_ZERO) {
        *kind = QCOW2_CLUSTER_ZERO;
    } else if (off == 0) {
        if (entry & QCOW2_OFLAG_COPIED)
            goto bad;
        *kind = QCOW2_CLUSTER_UNALLOCATED;
    } else {
        *kind = QCOW2_CLUSTER_NORMAL;
    }
    *host = off;
    return 0;

bad:
    return qcow2_report_corruption(s,
                                   "L2 entry 0x%llx for guest offset 0x%llx has reserved "
                                   "bits set or a bad host offset",
                                   (unsigned long long)entry,
                                   (unsigned long long)(gc << s->cluster_bits));
}

static int qcow2_get_cluster(struct qcow2 *s, uint64_t gc, uint64_t *entry,
                             enum qcow2_cluster_kind *kind, uint64_t *host)
{
    int ret = qcow2_get_l2_entry(s, gc, entry);

    if (ret < 0)
        return ret;
    return qcow2_classify(s, gc, *entry, kind, host);
}

/* Reads guest bytes that no cluster of this image holds: the backing file, zeroes past its
 * end or without one (spec §Cluster mapping, last paragraph). */
static int qcow2_read_backing(struct qcow2 *s, uint64_t offset, uint8_t *buf, size_t len)
{
    uint64_t blen = s->backing ? block_length(s->backing) : 0;
    size_t n = 0;

    if (offset < blen) {
        n = blen - offset < len ? (size_t)(blen - offset) : len;
        int ret = block_read(s->backing, offset, buf, n);

        if (ret < 0)
            return ret;
    }
    memset(buf + n, 0, len - n);
    return 0;
}

static bool qcow2_backing_covers(const struct qcow2 *s, uint64_t gc)
{
    return s->backing && (gc << s->cluster_bits) < block_length(s->backing);
}

/* Allocates one of the state's scratch buffers on first use. */
static int qcow2_alloc_buffer(uint8_t **buf, size_t len)
{
    if (!*buf) {
        *buf = malloc(len);
        if (!*buf)
            return -ENOMEM;
    }
    return 0;
}

static int qcow2_decompress(struct qcow2 *s, uint64_t entry)
{
    if (qcow2_alloc_buffer(&s->cbuf, 2 * s->cluster_size + 512) < 0 ||
        qcow2_alloc_buffer(&s->dbuf, s->cluster_size) < 0)
        return -ENOMEM;
    return qcow2_decompress_cluster(s, entry);
}

static int qcow2_read(struct block *bs, uint64_t offset, void *buf, size_t len)
{
    struct qcow2 *s = bs->opaque;
    uint8_t *out = buf, *run_buf = NULL;
    uint64_t run_host = 0;
    size_t run_len = 0;
    int ret = 0;

    while (len > 0) {
        uint64_t gc = offset >> s->cluster_bits, in = offset & (s->cluster_size - 1);
        size_t n = s->cluster_size - in < len ? (size_t)(s->cluster_size - in) : len;
        enum qcow2_cluster_kind kind;
        uint64_t entry, host;

        ret = qcow2_get_cluster(s, gc, &entry, &kind, &host);
        if (ret < 0)
            return ret;
        /* Host-contiguous standard clusters are read with one pread(). */
        if (kind == QCOW2_CLUSTER_NORMAL && run_len && run_host + run_len == host + in) {
            run_len += n;
        } else {
            if (run_len) {
                ret = qcow2_read_host(s, run_host, run_buf, run_len);
                if (ret < 0)
                    return ret;
                run_len = 0;
            }
            switch (kind) {
            case QCOW2_CLUSTER_NORMAL:
                run_host = host + in;
                run_buf = out;
                run_len = n;
                break;
            case QCOW2_CLUSTER_ZERO: memset(out, 0, n); break;
            case QCOW2_CLUSTER_UNALLOCATED: ret = qcow2_read_backing(s, offset, out, n); break;
            case QCOW2_CLUSTER_COMPRESSED:
                ret = qcow2_decompress(s, entry);
                if (ret == 0)
                    memcpy(out, s->dbuf + in, n);
                break;
            }
            if (ret < 0)
                return ret;
        }
        out += n;
        offset += n;
        len -= n;
    }
    if (run_len)
        ret = qcow2_read_host(s, run_host, run_buf, run_len);
    return ret;
}

/* ---- Writing ---- */

static void qcow2_mark_l1_dirty(struct qcow2 *s, uint64_t l1_index)
{
    s->l1_dirty[l1_index / 64] = true;
}

/* Writes the L1 entries of dirty 512-byte chunks (flush step 4). */
static int qcow2_write_l1(struct qcow2 *s)
{
    uint8_t chunk[512];

    for (uint64_t c = 0; c * 64 < s->l1_size; c++) {
        uint64_t first = c * 64, n = s->l1_size - first < 64 ? s->l1_size - first : 64;
        int ret;

        if (!s->l1_dirty[c])
            continue;
        for (uint64_t i = 0; i < n; i++)
            qcow2_put_be64(chunk + i * 8, s->l1[first + i]);
        ret = qcow2_write_host(s, s->l1_offset + first * 8, chunk, n * 8);
        if (ret < 0) {
            block_report(s->bs, "writing the L1 table: %s", strerror(-ret));
            return ret;
        }
        s->l1_dirty[c] = false;
    }
    return 0;
}

static bool qcow2_l1_is_dirty(const struct qcow2 *s)
{
    for (uint64_t c = 0; c * 64 < s->l1_size; c++)
        if (s->l1_dirty[c])
            return true;
    return false;
}

/* Flush steps 1-6 of the scheme at the top of this file. */
static int qcow2_flush_metadata(struct qcow2 *s)
{
    int ret;

    ret = qcow2_refcount_flush(s);
    if (ret == 0)
        ret = qcow2_sync_host(s);
    if (ret == 0)
        ret = qcow2_cache_flush(s, &s->l2_cache);
    if (ret == 0 && qcow2_l1_is_dirty(s)) {
        ret = qcow2_sync_host(s);
        if (ret == 0)
            ret = qcow2_write_l1(s);
    }
    if (ret == 0)
        ret = qcow2_sync_host(s);
    if (ret == 0 && s->npending) {
        ret = qcow2_refcount_apply_frees(s);
        if (ret == 0)
            ret = qcow2_sync_host(s);
    }
    return ret;
}

/* Makes the L2 table for L1 index `l1_index` one this image may modify in place: allocates a
 * new one, or copies a shared one (L1 entry without COPIED), spec §Cluster mapping and
 * §Snapshots. Returns its host offset. */
static int qcow2_l2_writable(struct qcow2 *s, uint64_t l1_index, uint64_t *l2_off)
{
    struct qcow2_cache_slot *slot;
    uint64_t old, new_off;
    int ret;

    ret = qcow2_l2_table_offset(s, l1_index, &old);
    if (ret < 0)
        return ret;
    if (old && (s->l1[l1_index] & QCOW2_OFLAG_COPIED)) {
        *l2_off = old;
        return 0;
    }
    ret = qcow2_alloc_buffer(&s->cow_buf, s->cluster_size);
    if (ret < 0)
        return ret;
    if (old) {
        ret = qcow2_cache_get(s, &s->l2_cache, old, true, &slot);
        if (ret < 0)
            return ret;
        memcpy(s->cow_buf, slot->data, s->cluster_size);
    }
    ret = qcow2_refcount_alloc(s, &new_off);
    if (ret < 0)
        return ret;
    ret = qcow2_cache_get(s, &s->l2_cache, new_off, false, &slot);
    if (ret < 0) {
        qcow2_refcount_undo_alloc(s, new_off);
        return ret;
    }
    if (old)
        memcpy(slot->data, s->cow_buf, s->cluster_size);
    qcow2_cache_mark_dirty(slot);
    s->l1[l1_index] = new_off | QCOW2_OFLAG_COPIED;
    qcow2_mark_l1_dirty(s, l1_index);
    if (old)
        qcow2_refcount_defer_free(s, old, s->cluster_size);
    *l2_off = new_off;
    return 0;
}

/* Sets the L2 entry of guest cluster `gc`, whose table qcow2_l2_writable() returned. */
static int qcow2_set_l2_entry(struct qcow2 *s, uint64_t gc, uint64_t l2_off, uint64_t entry)
{
    struct qcow2_cache_slot *slot;
    int ret = qcow2_cache_get(s, &s->l2_cache, l2_off, true, &slot);

    if (ret < 0)
        return ret;
    qcow2_put_be64(slot->data + (gc & ((1ull << s->l2_bits) - 1)) * 8, entry);
    qcow2_cache_mark_dirty(slot);
    return 0;
}

/* Records the refcount drop for the host clusters an L2 entry no longer uses. */
static void qcow2_release_entry(struct qcow2 *s, uint64_t entry, enum qcow2_cluster_kind kind,
                                uint64_t host)
{
    if (kind == QCOW2_CLUSTER_COMPRESSED) {
        /* As QEMU counts it: every cluster the sectors touch holds one reference. */
        uint64_t coffset = entry & s->coffset_mask;
        uint64_t nb = ((entry >> s->csize_shift) & s->csize_mask) + 1;

        qcow2_refcount_defer_free(s, coffset, nb * 512 - (coffset & 511));
    } else if (host) {
        qcow2_refcount_defer_free(s, host, s->cluster_size);
    }
}

/* Fills s->cow_buf with what guest cluster `gc` reads as now. */
static int qcow2_read_cluster_content(struct qcow2 *s, uint64_t gc, uint64_t entry,
                                      enum qcow2_cluster_kind kind, uint64_t host)
{
    uint64_t start = gc << s->cluster_bits;
    size_t n = s->size - start < s->cluster_size ? (size_t)(s->size - start) : s->cluster_size;
    int ret = 0;

    memset(s->cow_buf, 0, s->cluster_size);
    switch (kind) {
    case QCOW2_CLUSTER_UNALLOCATED: ret = qcow2_read_backing(s, start, s->cow_buf, n); break;
    case QCOW2_CLUSTER_ZERO: break;
    case QCOW2_CLUSTER_COMPRESSED:
        ret = qcow2_decompress(s, entry);
        if (ret == 0)
            memcpy(s->cow_buf, s->dbuf, s->cluster_size);
        break;
    case QCOW2_CLUSTER_NORMAL: ret = qcow2_read_host(s, host, s->cow_buf, s->cluster_size); break;
    }
    return ret;
}

/* Writes `n` bytes at `offset`, all inside one guest cluster. `data` is never s->cow_buf. */
static int qcow2_write_cluster(struct qcow2 *s, uint64_t offset, const uint8_t *data, size_t n)
{
    uint64_t gc = offset >> s->cluster_bits, in = offset & (s->cluster_size - 1);
    enum qcow2_cluster_kind kind;
    uint64_t entry, host, l2_off, new_off;
    const uint8_t *src = data;
    int ret;

    ret = qcow2_get_cluster(s, gc, &entry, &kind, &host);
    if (ret < 0)
        return ret;
    if (kind == QCOW2_CLUSTER_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
        /* Ours alone (refcount 1): in place. */
        ret = qcow2_check_overlap(s, host, s->cluster_size, "data cluster");
        if (ret == 0)
            ret = qcow2_write_host(s, host + in, data, n);
        return ret;
    }
    ret = qcow2_alloc_buffer(&s->cow_buf, s->cluster_size);
    if (ret < 0)
        return ret;
    ret = qcow2_l2_writable(s, gc >> s->l2_bits, &l2_off);
    if (ret < 0)
        return ret;
    if (kind == QCOW2_CLUSTER_ZERO && host && (entry & QCOW2_OFLAG_COPIED)) {
        /* A preallocated zero cluster of ours: fill it in place, then drop the zero flag. */
        ret = qcow2_check_overlap(s, host, s->cluster_size, "data cluster");
        if (ret < 0)
            return ret;
        if (n < s->cluster_size) {
            memset(s->cow_buf, 0, s->cluster_size);
            memcpy(s->cow_buf + in, data, n);
            src = s->cow_buf;
        }
        ret = qcow2_write_host(s, host, src, s->cluster_size);
        if (ret < 0)
            return ret;
        return qcow2_set_l2_entry(s, gc, l2_off, host | QCOW2_OFLAG_COPIED);
    }
    /* Copy-on-write into a new cluster: from the backing file, zeroes, a compressed or a
     * shared cluster. */
    if (n < s->cluster_size) {
        ret = qcow2_read_cluster_content(s, gc, entry, kind, host);
        if (ret < 0)
            return ret;
        memcpy(s->cow_buf + in, data, n);
        src = s->cow_buf;
    }
    ret = qcow2_refcount_alloc(s, &new_off);
    if (ret < 0)
        return ret;
    ret = qcow2_write_host(s, new_off, src, s->cluster_size);
    if (ret < 0) {
        block_report(s->bs, "writing a data cluster at 0x%llx: %s", (unsigned long long)new_off,
                     strerror(-ret));
        qcow2_refcount_undo_alloc(s, new_off);
        return ret;
    }
    ret = qcow2_set_l2_entry(s, gc, l2_off, new_off | QCOW2_OFLAG_COPIED);
    if (ret < 0)
        return ret;
    qcow2_release_entry(s, entry, kind, host);
    return 0;
}

/* Between guest requests' clusters: flush when many frees wait. */
static int qcow2_maybe_flush(struct qcow2 *s)
{
    return s->npending >= QCOW2_PENDING_FLUSH ? qcow2_flush_metadata(s) : 0;
}

static int qcow2_write(struct block *bs, uint64_t offset, const void *buf, size_t len)
{
    struct qcow2 *s = bs->opaque;
    const uint8_t *p = buf, *run_buf = NULL;
    uint64_t run_host = 0;
    size_t run_len = 0;
    int ret = 0;

    if (s->corrupt)
        return -EIO;
    while (len > 0 && ret == 0) {
        uint64_t gc = offset >> s->cluster_bits, in = offset & (s->cluster_size - 1);
        size_t n = s->cluster_size - in < len ? (size_t)(s->cluster_size - in) : len;
        enum qcow2_cluster_kind kind;
        uint64_t entry, host;

        ret = qcow2_get_cluster(s, gc, &entry, &kind, &host);
        if (ret < 0)
            break;
        if (kind == QCOW2_CLUSTER_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
            /* Ours alone (refcount 1): in place, host-contiguous clusters in one pwrite(). */
            ret = qcow2_check_overlap(s, host, s->cluster_size, "data cluster");
            if (ret == 0 && run_len && run_host + run_len != host + in) {
                ret = qcow2_write_host(s, run_host, run_buf, run_len);
                run_len = 0;
            }
            if (ret == 0 && run_len == 0) {
                run_host = host + in;
                run_buf = p;
            }
            run_len += n;
        } else {
            if (run_len) {
                ret = qcow2_write_host(s, run_host, run_buf, run_len);
                run_len = 0;
            }
            if (ret == 0)
                ret = qcow2_write_cluster(s, offset, p, n);
            if (ret == 0)
                ret = qcow2_maybe_flush(s);
        }
        p += n;
        offset += n;
        len -= n;
    }
    if (ret == 0 && run_len)
        ret = qcow2_write_host(s, run_host, run_buf, run_len);
    return ret;
}

/* Whether guest cluster `gc` reads as zeroes without holding data. */
static bool qcow2_reads_zero(const struct qcow2 *s, uint64_t gc, enum qcow2_cluster_kind kind)
{
    return kind == QCOW2_CLUSTER_ZERO ||
           (kind == QCOW2_CLUSTER_UNALLOCATED && !qcow2_backing_covers(s, gc));
}

/* Makes whole guest cluster `gc` read as zeroes through its L2 entry alone. Sets
 * *need_bytes instead when the entry cannot say it (version 2 over a backing file, or keeping
 * an allocation): the caller then writes zero bytes. Version 3: the zero flag (spec §Cluster
 * mapping, Standard Cluster Descriptor bit 0), keeping a cluster of ours preallocated when
 * !may_unmap; an entry of 0 where no backing file shows through. */
static int qcow2_zero_cluster(struct qcow2 *s, uint64_t gc, bool may_unmap, bool *need_bytes)
{
    enum qcow2_cluster_kind kind;
    uint64_t entry, host, new_entry, l2_off;
    bool keep = false, ours;
    int ret;

    *need_bytes = false;
    ret = qcow2_get_cluster(s, gc, &entry, &kind, &host);
    if (ret < 0)
        return ret;
    ours = host && (entry & QCOW2_OFLAG_COPIED);
    if (s->version >= 3) {
        if (!may_unmap && ours) {
            new_entry = host | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO;
            keep = true;
        } else if (!qcow2_backing_covers(s, gc)) {
            new_entry = 0;
        } else {
            new_entry = QCOW2_OFLAG_ZERO;
        }
    } else {
        if (qcow2_backing_covers(s, gc) || (!may_unmap && kind == QCOW2_CLUSTER_NORMAL)) {
            *need_bytes = true;
            return 0;
        }
        new_entry = 0;
    }
    if (new_entry == entry)
        return 0;
    ret = qcow2_l2_writable(s, gc >> s->l2_bits, &l2_off);
    if (ret < 0)
        return ret;
    ret = qcow2_set_l2_entry(s, gc, l2_off, new_entry);
    if (ret < 0)
        return ret;
    if (!keep)
        qcow2_release_entry(s, entry, kind, host);
    return 0;
}

static int qcow2_write_zeroes(struct block *bs, uint64_t offset, uint64_t len, bool may_unmap)
{
    struct qcow2 *s = bs->opaque;
    uint8_t *zeroes = NULL;
    int ret = 0;

    if (s->corrupt)
        return -EIO;
    while (len > 0 && ret == 0) {
        uint64_t gc = offset >> s->cluster_bits, in = offset & (s->cluster_size - 1);
        uint64_t n = s->cluster_size - in < len ? s->cluster_size - in : len;
        /* The disk's last cluster may be partial: covering up to the end counts as whole. */
        bool whole = in == 0 && (n == s->cluster_size || offset + n == s->size);
        bool write_bytes = !whole;
        enum qcow2_cluster_kind kind;
        uint64_t entry, host;

        if (whole) {
            ret = qcow2_zero_cluster(s, gc, may_unmap, &write_bytes);
        } else {
            /* Part of a cluster: zero bytes, unless it reads as zeroes already. */
            ret = qcow2_get_cluster(s, gc, &entry, &kind, &host);
            write_bytes = ret == 0 && !qcow2_reads_zero(s, gc, kind);
        }
        if (ret == 0 && write_bytes) {
            if (!zeroes)
                zeroes = calloc(1, s->cluster_size);
            ret = zeroes ? qcow2_write_cluster(s, offset, zeroes, n) : -ENOMEM;
        }
        if (ret == 0)
            ret = qcow2_maybe_flush(s);
        offset += n;
        len -= n;
    }
    free(zeroes);
    return ret;
}

static int qcow2_discard(struct block *bs, uint64_t offset, uint64_t len)
{
    return qcow2_write_zeroes(bs, offset, len, true);
}

static int qcow2_flush(struct block *bs)
{
    struct qcow2 *s = bs->opaque;

    if (s->corrupt) {
        /* Guest data written so far still goes to disk; the metadata stays as it was. */
        if (fdatasync(bs->fd) < 0)
            return -errno;
        return -EIO;
    }
    return qcow2_flush_metadata(s);
}

static void qcow2_close(struct block *bs)
{
    struct qcow2 *s = bs->opaque;

    if (!bs->readonly && !s->corrupt) {
        int ret = qcow2_flush_metadata(s);

        if (ret < 0)
            block_report(bs, "flushing metadata at close: %s", strerror(-ret));
    }
    qcow2_free_state(s);
}

/* ---- Layers: block_backing(), block_map(), block_query_backing() ---- */

static struct block *qcow2_backing(const struct block *bs)
{
    const struct qcow2 *s = bs->opaque;

    return s->backing;
}

/* Guest clusters of one L1 entry that are all unallocated (no L2 table) count as one step. */
static int qcow2_map(struct block *bs, uint64_t offset, uint64_t len, enum block_alloc *kind,
                     uint64_t *run)
{
    struct qcow2 *s = bs->opaque;
    const uint64_t l2_span = s->cluster_size << s->l2_bits;
    bool first = true;
    int ret;

    *run = 0;
    while (len > 0) {
        uint64_t gc = offset >> s->cluster_bits, n, l2_off, entry, host;
        enum qcow2_cluster_kind k;
        enum block_alloc a;

        ret = qcow2_l2_table_offset(s, offset / l2_span, &l2_off);
        if (ret < 0)
            return ret;
        if (l2_off == 0) {
            n = l2_span - offset % l2_span;
            a = BLOCK_ALLOC_NONE;
        } else {
            ret = qcow2_get_cluster(s, gc, &entry, &k, &host);
            if (ret < 0)
                return ret;
            n = s->cluster_size - (offset & (s->cluster_size - 1));
            a = k == QCOW2_CLUSTER_UNALLOCATED ? BLOCK_ALLOC_NONE
                : k == QCOW2_CLUSTER_ZERO      ? BLOCK_ALLOC_ZERO
                                               : BLOCK_ALLOC_DATA;
        }
        if (!first && a != *kind)
            break;
        *kind = a;
        first = false;
        n = n < len ? n : len;
        *run += n;
        offset += n;
        len -= n;
    }
    return 0;
}

/* The header alone, through the checks qcow2_open() makes of it. */
static int qcow2_query_backing(int fd, const char *path, char *name, size_t name_len, char *fmt,
                               size_t fmt_len, char *err)
{
    struct block b = {.fd = fd, .path = (char *)path, .readonly = true};
    struct qcow2 s = {.bs = &b};
    struct qcow2_extensions ext = {.backing_fmt = ""};
    struct qcow2_header h;
    uint8_t *hdr;
    size_t hdr_len;
    int ret;

    ret = qcow2_read_header(&s, &h, &ext, &hdr, &hdr_len, err);
    if (ret < 0)
        return ret;
    if (h.backing_file_offset) {
        const char *p = (const char *)hdr + h.backing_file_offset;

        /* qcow2_check_header() put the name inside hdr. */
        if (memchr(p, '\0', h.backing_file_size)) {
            block_set_error(err, "%s: backing file name (offset 0x%llx) holds a NUL byte", path,
                            (unsigned long long)h.backing_file_offset);
            ret = -EINVAL;
        } else if (h.backing_file_size >= name_len) {
            block_set_error(err, "%s: backing file name is %u bytes; at most %zu fit", path,
                            h.backing_file_size, name_len ? name_len - 1 : 0);
            ret = -ENAMETOOLONG;
        } else {
            memcpy(name, p, h.backing_file_size);
            name[h.backing_file_size] = '\0';
            if (fmt_len)
                snprintf(fmt, fmt_len, "%s", ext.backing_fmt);
        }
    }
    free(hdr);
    return ret;
}

/* Points the header at a new backing file name, as QEMU's `rebase -u`: the name is written
 * into free space of the header cluster first, then the 12 bytes of the header that say where
 * the name lies and how long it is, each flushed; a crash leaves the old name or the new. */
static int qcow2_set_backing_name(int fd, const char *path, const char *name, char *err)
{
    struct block b = {.fd = fd, .path = (char *)path};
    struct qcow2 s = {.bs = &b};
    struct qcow2_extensions ext = {.backing_fmt = ""};
    struct qcow2_header h;
    uint8_t *hdr, field[12];
    size_t hdr_len, n = strlen(name);
    uint64_t at;
    int ret;

    ret = qcow2_read_header(&s, &h, &ext, &hdr, &hdr_len, err);
    if (ret < 0)
        return ret;
    free(hdr);
    if (!h.backing_file_offset) {
        block_set_error(err, "%s: has no backing file to rename", path);
        return -EINVAL;
    }
    if (n == 0 || n > QCOW2_MAX_BACKING_NAME) {
        block_set_error(err, "%s: a backing file name of %zu bytes (must be 1..%d)", path, n,
                        QCOW2_MAX_BACKING_NAME);
        return -ENAMETOOLONG;
    }
    /* Nothing follows the name in the header cluster (qcow2_check_header() put it inside). */
    at = (h.backing_file_offset + h.backing_file_size + 7) & ~UINT64_C(7);
    if (at + n > hdr_len) {
        block_set_error(err, "%s: no room for a %zu-byte backing file name in the header cluster",
                        path, n);
        return -ENOSPC;
    }
    qcow2_put_be64(field, at);
    qcow2_put_be32(field + 8, (uint32_t)n);
    ret = block_file_write(fd, at, name, n);
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    if (ret == 0)
        ret = block_file_write(fd, 8, field, sizeof(field));
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    if (ret < 0)
        block_set_error(err, "%s: writing the backing file name: %s", path, strerror(-ret));
    return ret;
}

/* Grows the virtual size (header bytes 24..31) and, when the disk needs more L2 tables, the
 * number of L1 entries (bytes 36..39), spec §Header. The L1 table is not moved: the new entries
 * must fit in the clusters it already occupies (whole clusters, spec §Cluster mapping: "the L1
 * table is contiguous in the image file") and read as zero there, so they map nothing. Both
 * fields go in one 16-byte write, then a sync: a crash leaves the old size or the new. */
static int qcow2_grow(int fd, const char *path, uint64_t new_size, char *err)
{
    struct block b = {.fd = fd, .path = (char *)path};
    struct qcow2 s = {.bs = &b};
    struct qcow2_extensions ext = {.backing_fmt = ""};
    struct qcow2_header h;
    uint8_t *hdr, field[16];
    uint64_t cs, l2_span, need, cap;
    size_t hdr_len;
    int ret;

    ret = qcow2_read_header(&s, &h, &ext, &hdr, &hdr_len, err);
    if (ret < 0)
        return ret;
    free(hdr);
    if (new_size < h.size) {
        block_set_error(err, "%s: size %llu is below the current %llu bytes: shrinking loses data",
                        path, (unsigned long long)new_size, (unsigned long long)h.size);
        return -EINVAL;
    }
    cs = 1ull << h.cluster_bits;
    l2_span = cs << (h.cluster_bits - 3);
    if (new_size > INT64_MAX) {
        block_set_error(err, "%s: size %llu is too large", path, (unsigned long long)new_size);
        return -EFBIG;
    }
    need = new_size / l2_span + (new_size % l2_span != 0);
    cap = h.l1_size ? ((uint64_t)h.l1_size * 8 + cs - 1) / cs * cs / 8 : 0;
    if (need > h.l1_size) {
        uint64_t tail = (need - h.l1_size) * 8;
        uint8_t *zero;

        if (need > cap) {
            block_set_error(err,
                            "%s: growing to %llu bytes needs %llu L1 entries; the L1 table's "
                            "clusters hold %llu (at most %llu bytes): make a full clone instead",
                            path, (unsigned long long)new_size, (unsigned long long)need,
                            (unsigned long long)cap, (unsigned long long)(cap * l2_span));
            return -EFBIG;
        }
        zero = malloc(tail);
        if (!zero)
            return -ENOMEM;
        ret = block_file_read(fd, h.l1_table_offset + (uint64_t)h.l1_size * 8, zero, tail);
        for (uint64_t i = 0; ret == 0 && i < tail; i++)
            if (zero[i]) {
                block_set_error(err,
                                "%s: the L1 table's cluster holds data past entry %u: cannot "
                                "grow it in place",
                                path, h.l1_size);
                ret = -EINVAL;
            }
        free(zero);
        if (ret < 0)
            return ret;
        /* QEMU ends the file right after the L1 entries it uses; the cluster is allocated
         * whole, so the file may grow over the new entries (zeroes). */
        if (h.l1_table_offset + need * 8 > s.file_size &&
            (ftruncate(fd, (off_t)(h.l1_table_offset + need * 8)) < 0 || fsync(fd) < 0)) {
            ret = -errno;
            block_set_error(err, "%s: extending the file over the L1 table: %s", path,
                            strerror(errno));
            return ret;
        }
    }
    qcow2_put_be64(field, new_size);
    qcow2_put_be32(field + 8, h.crypt_method);
    qcow2_put_be32(field + 12, need > h.l1_size ? (uint32_t)need : h.l1_size);
    ret = block_file_write(fd, 24, field, sizeof(field));
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    if (ret < 0)
        block_set_error(err, "%s: writing the new size: %s", path, strerror(-ret));
    return ret;
}

static void qcow2_rebind(struct block *bs)
{
    struct qcow2 *q = bs->opaque;

    q->bs = bs;
}

const struct block_driver block_driver_qcow2 = {
    .name = "qcow2",
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .read = qcow2_read,
    .write = qcow2_write,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .snapshot_list = qcow2_snapshot_list,
    .create = qcow2_create_image,
    .backing = qcow2_backing,
    .map = qcow2_map,
    .query_backing = qcow2_query_backing,
    .set_backing_name = qcow2_set_backing_name,
    .grow = qcow2_grow,
    .rebind = qcow2_rebind,
};
