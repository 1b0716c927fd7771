/* Private to the qcow2 driver: the state of an open image and what its files share.
 *
 * Spec references ("spec §Header" and so on) are to the sections of QEMU's
 * docs/interop/qcow2.txt. The driver is split by job: qcow2.c (header, mapping, read, write,
 * flush: the write-ordering scheme is described there), qcow2_refcount.c (refcounts and cluster
 * allocation), qcow2_cache.c (the L2 table and refcount block caches), qcow2_decompress.c,
 * qcow2_snapshot.c (listing) and qcow2_create.c.
 *
 * Threads: everything here runs on the one thread that owns the struct block; no locks. */
#ifndef TESSERA_BLOCK_QCOW2_INT_H
#define TESSERA_BLOCK_QCOW2_INT_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "block/block_int.h"

#define QCOW2_MAGIC            0x514649fbu /* "QFI\xfb", spec §Header */
#define QCOW2_V2_HEADER_LEN    72
#define QCOW2_V3_HEADER_LEN    104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21 /* QEMU's implementation limit, spec §Header cluster_bits */
#define QCOW2_MAX_L1_BYTES     (32u << 20) /* QEMU's limit, spec §Header size note */
#define QCOW2_MAX_RT_BYTES     (8u << 20)  /* QEMU's limit, spec §Host cluster management */
#define QCOW2_MAX_SNAPSHOTS    65536
#define QCOW2_MAX_BACKING_NAME 1023
/* Host offsets must stay below 64 PB (56 bits), spec §Cluster mapping. */
#define QCOW2_MAX_HOST_OFFSET (1ull << 56)

/* Incompatible feature bits, spec §Header bytes 72-79. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       ((1ull << 5) - 1)

#define QCOW2_COMPRESSION_ZLIB 0
#define QCOW2_COMPRESSION_ZSTD 1

/* Header extension types, spec §Header extensions. */
#define QCOW2_EXT_END          0x00000000u
#define QCOW2_EXT_BACKING_FMT  0xe2792acau
#define QCOW2_EXT_FEATURE_NAME 0x6803f857u

/* L1 and L2 entries, spec §Cluster mapping. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_L1E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L1E_RESERVED     0x7f000000000001ffull
#define QCOW2_L2E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L2E_RESERVED     0x3f000000000001feull
#define QCOW2_RTE_OFFSET_MASK  0xfffffffffffffe00ull
#define QCOW2_RTE_RESERVED     0x00000000000001ffull

/* A small write-back cache of one-cluster metadata tables (L2 tables, refcount blocks), kept
 * in on-disk byte order. Slot memory is allocated on first use. */
struct qcow2_cache_slot {
    uint64_t offset; /* host offset of the cached cluster; 0 = slot unused */
    uint64_t last_use;
    bool dirty;
    uint8_t *data;
};

struct qcow2_cache {
    const char *name; /* "L2 table" or "refcount block", for messages */
    struct qcow2_cache_slot *slots;
    unsigned nslots;
    uint64_t tick;
    /* Written out, and the file synced, before any dirty slot of this cache is written: the
     * L2 cache depends on the refcount cache (spec order: refcount before reference). */
    struct qcow2_cache *depends_on;
};

struct qcow2 {
    struct block *bs; /* the open image: bs->fd, bs->path */
    struct block *backing;

    /* Geometry, spec §Header. */
    unsigned version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits; /* log2(entries per L2 table) */
    uint64_t size;    /* virtual disk size */

    /* The active L1 table in host byte order, spec §Cluster mapping. */
    uint64_t *l1;
    uint32_t l1_size;
    uint64_t l1_offset;
    bool *l1_dirty; /* one flag per 512-byte chunk of the table, written at flush */

    /* Refcounts, spec §Host cluster management. */
    uint64_t *rt; /* refcount table in host byte order */
    uint64_t rt_entries;
    uint64_t rt_offset;
    uint32_t rt_clusters;
    unsigned refcount_order;
    unsigned rb_bits;   /* log2(refcount entries per refcount block) */
    uint64_t free_hint; /* no free cluster below this cluster index */
    uint64_t alloc_end; /* cluster index past everything in the file or allocated */
    uint64_t reserved;  /* cluster being allocated right now, UINT64_MAX for none */
    uint64_t *pending;  /* clusters whose refcount drops at the next flush */
    size_t npending, pending_cap;

    struct qcow2_cache l2_cache;
    struct qcow2_cache rb_cache;

    /* Header fields kept for writes and listings. */
    uint64_t incompat;
    uint64_t autoclear;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    unsigned compression_type;

    /* Compressed clusters, spec §Cluster mapping "Compressed Clusters Descriptor". */
    unsigned csize_shift;
    uint64_t csize_mask;
    uint64_t coffset_mask;
    uint8_t *cbuf;       /* compressed input, 2 clusters + 512 bytes */
    uint8_t *dbuf;       /* the last decompressed cluster */
    uint64_t dbuf_entry; /* its L2 entry; 0 = dbuf holds nothing */
    z_stream *zlib;      /* created on first use */
    ZSTD_DCtx *zstd;     /* created on first use */

    uint8_t *cow_buf; /* one cluster for copy-on-write assembly */

    uint64_t file_size; /* bytes, as last found or written */
    bool unsynced;      /* written since the last fdatasync */
    bool corrupt;       /* corruption found: no more writes */
};

static inline uint16_t qcow2_be16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return be16toh(v);
}

static inline uint32_t qcow2_be32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return be32toh(v);
}

static inline uint64_t qcow2_be64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return be64toh(v);
}

static inline void qcow2_put_be32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, sizeof(v));
}

static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, sizeof(v));
}

/* Whether [a, a + alen) and [b, b + blen) share a byte; empty ranges share none. */
static inline bool qcow2_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* qcow2_io.c */
/* Logs (rate-limited) a corruption found at run time, marks the image so that it takes no
 * more writes, and returns -EIO. */
int qcow2_report_corruption(struct qcow2 *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes to the image file, tracking its size and that a sync is owed. */
int qcow2_write_host(struct qcow2 *s, uint64_t offset, const void *buf, size_t len);
/* fdatasync()s the image file if anything was written since the last sync. */
int qcow2_sync_host(struct qcow2 *s);
/* Returns -EIO (reported) when [offset, offset + len) overlaps the header, the L1 table or the
 * refcount table: a corrupt pointer must never make us overwrite them. */
int qcow2_check_overlap(struct qcow2 *s, uint64_t offset, uint64_t len, const char *what);
/* Reads from the image file; a failure is reported (naming the offset) and returned. */
int qcow2_read_host(struct qcow2 *s, uint64_t host, uint8_t *buf, size_t len);

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, const char *name, unsigned nslots,
                     struct qcow2_cache *depends_on);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Finds the slot caching the cluster at host `offset`, or takes the least recently used one
 * (writing it back first if dirty) and, when `load`, reads the cluster into it; without
 * `load` the slot is zero-filled for the caller to fill. The slot stays valid until the next
 * qcow2_cache_get() on the same cache. */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool load,
                    struct qcow2_cache_slot **out);
void qcow2_cache_mark_dirty(struct qcow2_cache_slot *slot);
/* Writes every dirty slot, after writing the depends_on cache and syncing the file when
 * there is anything to write. No sync after. */
int qcow2_cache_flush(struct qcow2 *s, struct qcow2_cache *c);
/* Drops a clean slot for `offset`, after its cluster was freed or reallocated. */
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset);

/* qcow2_refcount.c */
/* Allocates one cluster (refcount 0 -> 1), reusing free clusters before growing the file.
 * Returns its host offset in *offset. */
int qcow2_refcount_alloc(struct qcow2 *s, uint64_t *offset);
/* Undoes qcow2_refcount_alloc() for a cluster nothing references yet. */
void qcow2_refcount_undo_alloc(struct qcow2 *s, uint64_t offset);
/* Records one refcount decrement for every cluster that [offset, offset + len) touches, done
 * at the next flush after the L2/L1 tables that stopped referencing them are durable. If
 * memory runs out the clusters leak (allowed), they are never freed early. */
void qcow2_refcount_defer_free(struct qcow2 *s, uint64_t offset, uint64_t len);
/* Applies the deferred frees and writes the refcount blocks (flush step 5). */
int qcow2_refcount_apply_frees(struct qcow2 *s);
/* Extends the file over every allocated cluster and writes dirty refcount blocks. */
int qcow2_refcount_flush(struct qcow2 *s);

/* qcow2_decompress.c */
/* Decompresses the compressed cluster that L2 entry `entry` describes into s->dbuf. */
int qcow2_decompress_cluster(struct qcow2 *s, uint64_t entry);
void qcow2_decompress_destroy(struct qcow2 *s);

/* qcow2_snapshot.c */
int qcow2_snapshot_list(struct block *bs, struct block_snapshot_info **list, unsigned *count);

/* qcow2_create.c */
int qcow2_create_image(const char *path, const struct block_create_opts *opts, char *err);

#endif
