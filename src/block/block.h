/* The disk-image layer: one interface in front of every image format (raw, qcow2).
 *
 * A `struct block` is one open image together with its backing chain. Devices reach their disk
 * only through the functions below. Every request passes one wrapper in block.c that checks it
 * (range, read-only) before the format driver sees it: that wrapper is the single place where
 * tracing, throttling and fault injection hook in, as SQLite's VFS does.
 *
 * Threads: a struct block (with its backing chain) is used by one thread at a time, normally
 * the owning device's I/O worker. Calls are synchronous, may block on host I/O and take no
 * locks, so they must never run on a vCPU thread. Different struct blocks may be used from
 * different threads at once: the layer keeps no global mutable state. Images are opened with a
 * flock() (shared when read-only, exclusive when writable), so two writers, in this process or
 * another, cannot open the same image at once.
 *
 * Requests: offsets and lengths are in bytes. Callers normally use multiples of 512, but any
 * offset and length is accepted. A request must lie inside [0, block_length()); a zero-length
 * request succeeds at once. Functions return 0 or -errno:
 *   -EINVAL  the request reaches past the end of the disk
 *   -EROFS   write, discard or write_zeroes on an image opened read-only
 *   -EIO     corruption found at run time (a rate-limited log line names the file and the
 *            field), or an I/O error from the host
 *   -ENOSPC  the host file system, or the format's own addressing, is full
 *   -ENOMEM  out of memory
 * Writes are durable only after block_flush() returns 0. */
#ifndef TESSERA_BLOCK_BLOCK_H
#define TESSERA_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of the `err` buffers below: one line for people, naming the file and the field. */
#define BLOCK_ERR_LEN 512

/* Backing chains deeper than this are refused (it also stops loops of backing files). */
#define BLOCK_MAX_CHAIN_DEPTH 32

struct block;

/* Opens the image at `path`. `format` is "raw", "qcow2", or NULL to probe the header (the
 * format with the highest probe score wins; raw, score 1, is the fallback). Probing is unsafe
 * for an image a guest has written to as raw: the guest can make it look like qcow2 with a
 * backing file of its choosing. Callers that know the format pass it. Backing files are opened
 * read-only through this same function, relative paths resolved against the directory of the
 * image that names them. Only regular files and block devices are opened.
 * On success stores the new block in *out. On failure returns -errno and writes one line to
 * `err` (BLOCK_ERR_LEN bytes), e.g. "disk.qcow2: L1 table offset 0x1234 is not
 * cluster-aligned". Start-up or control thread. */
int block_open(const char *path, const char *format, bool readonly, struct block **out, char *err);

/* Flushes a writable image (errors are logged: call block_flush() first to see them), closes
 * its backing chain and frees everything. NULL is ignored. */
void block_close(struct block *bs);

/* For snapshots and migration, while nothing uses bs (its device is quiesced):
 * block_release() flushes and closes the image file, so its lock is dropped and another
 * process may open it; afterwards every request fails with -EIO until block_reopen().
 * block_reopen() opens the image at `path` (same virtual size) and puts it in place of bs's
 * current one, which is closed; pointers to bs stay valid. On failure bs is unchanged.
 * Both return 0 or -errno (reopen with one line in err). Control thread. */
int block_release(struct block *bs);
int block_reopen(struct block *bs, const char *path, const char *format, bool readonly, char *err);

struct dirty_log;

/* Block migration: while `log` is set (NULL stops it), every write, discard and write_zeroes
 * marks the 4 KiB blocks of the disk it reaches in `log`, which the caller owns and sized with
 * dirty_log_init(log, (block_length() + 4095) / 4096); it is marked before the call returns,
 * whether or not the request succeeded. Set it only while nothing else uses bs. */
void block_track_writes(struct block *bs, struct dirty_log *log);

/* Virtual disk size in bytes. */
uint64_t block_length(const struct block *bs);
bool block_readonly(const struct block *bs);
/* "raw" or "qcow2": a string with static storage. */
const char *block_format_name(const struct block *bs);
/* The path the image was opened with. */
const char *block_path(const struct block *bs);

int block_read(struct block *bs, uint64_t offset, void *buf, size_t len);
int block_write(struct block *bs, uint64_t offset, const void *buf, size_t len);
/* Makes every write that returned before this call durable: the image file is fdatasync()ed
 * and, for formats with metadata, all metadata is written and synced first. */
int block_flush(struct block *bs);
/* Deallocates the range where the format can. Afterwards the range reads as zeroes (stronger
 * than virtio asks, so that images stay deterministic and comparable). */
int block_discard(struct block *bs, uint64_t offset, uint64_t len);
/* Makes the range read as zeroes. With `may_unmap` the format may deallocate it; without, it
 * keeps (or creates) allocations where it can describe zeroes without writing them. */
int block_write_zeroes(struct block *bs, uint64_t offset, uint64_t len, bool may_unmap);

/* One internal snapshot (qcow2 spec "Snapshots"). */
struct block_snapshot_info {
    char *id;               /* unique ID string, NUL-terminated copy */
    char *name;             /* name, NUL-terminated copy */
    uint64_t vm_state_size; /* bytes of saved VM state, 0 when none */
    uint64_t date_sec;      /* when it was taken, seconds since the Epoch */
    uint32_t date_nsec;
    uint64_t vm_clock_nsec; /* guest run time at the snapshot */
    uint64_t disk_size;     /* virtual disk size at the snapshot; 0 when the entry lacks it */
};

/* Lists the image's internal snapshots (read-only; formats without snapshots list none). On
 * success *list is an array of *count entries (NULL when 0) that the caller frees with
 * block_snapshot_list_free(). Returns -EIO, with a log line, for a corrupt snapshot table. */
int block_snapshot_list(struct block *bs, struct block_snapshot_info **list, unsigned *count);
void block_snapshot_list_free(struct block_snapshot_info *list, unsigned count);

/* ---- Looking at and merging the layers of a backing chain (external snapshots) ---- */

/* The image bs reads from where it holds no data of its own: its backing file, opened with it
 * (read-only), or NULL when it has none, was opened without it (block_open_layer()) or is
 * released. The pointer stays valid until bs is closed, released or reopened; the backing's
 * block_path() is the name its parent names, resolved. Any thread that may use bs. */
struct block *block_backing(const struct block *bs);

/* Opens only the image at `path`, read-only with a shared lock, without its backing file: the
 * ranges it holds no data for read as zeroes. For looking at one layer of a chain (block_map(),
 * block_commit()) while a file below it is open for writing. Arguments and errors as
 * block_open(). */
int block_open_layer(const char *path, const char *format, struct block **out, char *err);

/* How an image holds a range by itself, not counting its backing file. */
enum block_alloc {
    BLOCK_ALLOC_NONE, /* holds nothing: reads come from the backing file, or are zeroes */
    BLOCK_ALLOC_ZERO, /* reads as zeroes, whatever the backing file holds */
    BLOCK_ALLOC_DATA, /* holds the data */
};

/* Says how bs itself holds the bytes from `offset`: *kind for a run of *run bytes (1..len) that
 * all have that kind. The request must lie inside the disk and len be at least 1 (-EINVAL
 * otherwise); -EIO for corrupt metadata. Formats without allocation (raw) hold everything as
 * data. */
int block_map(struct block *bs, uint64_t offset, uint64_t len, enum block_alloc *kind,
              uint64_t *run);

/* Reads, from the header of the image at `path`, the backing file name as stored (relative
 * names are relative to path's folder: block_open() resolves them so) into name (name_len
 * bytes; "" when there is none) and the backing format the header names into fmt (fmt_len
 * bytes; "" when it names none). Takes no lock and opens no backing file: the image may be
 * open for writing elsewhere, only its header is read. `format` NULL probes, as block_open().
 * 0, or -errno with one line in err: not a regular file or block device, a header that does
 * not check, a name longer than name_len - 1 (-ENAMETOOLONG). Any thread. */
int block_query_backing(const char *path, const char *format, char *name, size_t name_len,
                        char *fmt, size_t fmt_len, char *err);

/* If the image at `path` names its backing file relative to its own folder, rewrites the
 * stored name as the absolute path it resolves to now (QEMU's `rebase -u`, same file), so the
 * image may move to another folder and keep its backing file. Nothing to do for an absolute
 * name, no backing file or a format without one. Locks the image exclusively: it must not be
 * open. `format` NULL probes. 0, or -errno with one line in err (-EBUSY: in use). */
int block_anchor_backing(const char *path, const char *format, char *err);

/* Grows the virtual size of the image at `path` to new_size bytes; the new range reads as
 * zeroes. Shrinking is refused (-EINVAL: it would lose data). qcow2 grows inside the clusters
 * its L1 table already has (4 TiB for a 64 KiB-cluster image that block_create() made);
 * beyond them it answers -EFBIG. Locks the image exclusively: it must not be open (-EBUSY).
 * `format` NULL probes. 0, or -errno with one line in err. */
int block_grow(const char *path, const char *format, uint64_t new_size, char *err);

/* Copies what `top` holds by itself (block_map(): its data, and zeroes where it says zeroes
 * over its backing file) into the writable image `base`, at the same offsets, and flushes base:
 * afterwards base reads, on every byte, as top did (top over base) when base was top's backing
 * file. This is QEMU's block-commit of one layer, done while nothing else uses either image.
 * Both have the same virtual size (-EINVAL otherwise). Adds the bytes of data copied to
 * *bytes (may be NULL). 0 or -errno with one line in err naming the file and the offset. */
int block_commit(struct block *top, struct block *base, uint64_t *bytes, char *err);

/* Options for creating an image. */
struct block_create_opts {
    uint64_t size;            /* virtual size in bytes; 0 with a backing file: the backing's */
    unsigned cluster_bits;    /* qcow2: 9..21, 0 = 16 (64 KiB clusters) */
    const char *backing_file; /* qcow2: stored as given (relative to the new image's folder) */
    const char *backing_fmt;  /* qcow2: stored in the header extension; NULL = probe it now */
};

/* Creates (or truncates) an empty image of `format` at `path`. Returns 0 or -errno with one
 * line in `err`. */
int block_create(const char *path, const char *format, const struct block_create_opts *opts,
                 char *err);

/* Creates an empty qcow2 version 3 image (16-bit refcounts, zlib compression type). */
int block_create_qcow2(const char *path, uint64_t size, unsigned cluster_bits,
                       const char *backing_file, const char *backing_fmt, char *err);

#endif
