/* Private to src/block/: the format driver descriptor and the helpers drivers share.
 *
 * A format is one `const struct block_driver` with designated initialisers, listed once in
 * block.c's driver table. The wrappers in block.c call a driver only with requests already
 * checked: inside the disk, non-empty, and (for writes, discard, write_zeroes) on a writable
 * image. Every member runs on the thread that owns the struct block (see block.h) and may block
 * on host I/O; none takes a lock. */
#ifndef TESSERA_BLOCK_BLOCK_INT_H
#define TESSERA_BLOCK_BLOCK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "block/block.h"

struct block_driver {
    const char *name;
    /* Scores how likely it is that `hdr`, the first `len` bytes of a file (len may be short
     * for tiny files), is in this format: 0 no, 1 anything goes (raw), 100 magic matches. */
    int (*probe)(const uint8_t *hdr, size_t len);
    /* Called with bs->fd, bs->path, bs->readonly and bs->depth set. Sets bs->length and
     * bs->opaque. On failure frees what it allocated, returns -errno and writes `err`. */
    int (*open)(struct block *bs, char *err);
    /* Writes back what a writable image still holds in memory (logging failures), frees
     * bs->opaque and closes backing files. Does not close bs->fd. */
    void (*close)(struct block *bs);
    int (*read)(struct block *bs, uint64_t offset, void *buf, size_t len);
    int (*write)(struct block *bs, uint64_t offset, const void *buf, size_t len);
    int (*flush)(struct block *bs);
    /* Optional: NULL means discard is not supported (-ENOTSUP). */
    int (*discard)(struct block *bs, uint64_t offset, uint64_t len);
    /* Optional: NULL means block.c writes zero buffers through write(). */
    int (*write_zeroes)(struct block *bs, uint64_t offset, uint64_t len, bool may_unmap);
    /* Optional: NULL lists no snapshots. */
    int (*snapshot_list)(struct block *bs, struct block_snapshot_info **list, unsigned *count);
    /* Optional: creates an empty image; NULL means this format cannot create images. */
    int (*create)(const char *path, const struct block_create_opts *opts, char *err);
    /* Optional: the open backing image (block_backing()); NULL: the format has none. */
    struct block *(*backing)(const struct block *bs);
    /* Optional: block_map() for a checked, non-empty request; NULL: everything is data. */
    int (*map)(struct block *bs, uint64_t offset, uint64_t len, enum block_alloc *kind,
               uint64_t *run);
    /* Optional: block_query_backing() on `fd`, the image at `path` (opened read-only, no lock,
     * checked to be a regular file or block device). NULL: the format has no backing file. */
    int (*query_backing)(int fd, const char *path, char *name, size_t name_len, char *fmt,
                         size_t fmt_len, char *err);
    /* Optional: block_anchor_backing()'s rewrite of the stored backing file name, on `fd`,
     * the image at `path` (opened writable and locked exclusively). NULL: no backing file. */
    int (*set_backing_name)(int fd, const char *path, const char *name, char *err);
    /* Optional: block_grow() on `fd`, the image at `path` (opened writable and locked
     * exclusively): makes the virtual size new_size, which is not below the current one.
     * NULL: the format cannot grow. */
    int (*grow)(int fd, const char *path, uint64_t new_size, char *err);
    /* Optional: bs's contents moved to a new struct block (block_reopen() swaps images in
     * place); the driver points its state back at `bs`. NULL: the driver keeps no pointer. */
    void (*rebind)(struct block *bs);
};

struct block {
    const struct block_driver *drv;
    void *opaque; /* the driver's state */
    int fd;       /* the image file, opened by block.c, locked with flock() */
    char *path;   /* as given to block_open() (resolved for backing files) */
    uint64_t length;
    bool readonly;
    unsigned depth;          /* 0 for the image a device opened, n for its n-th backing file */
    bool released;           /* block_release(): no image open; every request fails with -EIO */
    bool no_backing;         /* block_open_layer(): open() must not open the backing file */
    struct dirty_log *track; /* block_track_writes(): writes are marked here */
    struct log_ratelimit report_rl; /* for block_report(): per image, no global state */
};

extern const struct block_driver block_driver_raw;
extern const struct block_driver block_driver_qcow2;

/* Formats one line into `err` (BLOCK_ERR_LEN bytes). `err` may be NULL. */
void block_set_error(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs a run-time problem with the image (corruption, host I/O error), prefixed with its path,
 * rate-limited per image: a hostile image or guest cannot flood the host's log. */
void block_report(struct block *bs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The path of backing file `name` named by the image at `image_path`: `name` itself when it
 * is absolute or the image path has no folder, else `name` in the image's folder. Returns a
 * malloc'd string or NULL when out of memory. */
char *block_resolve_backing_path(const char *image_path, const char *name);

/* Opens the backing file `name` of `parent` read-only, one level deeper in the chain. A
 * relative `name` is taken relative to the folder of parent->path (as QEMU does). `format`
 * NULL probes. Errors name both files. */
int block_open_backing(struct block *parent, const char *name, const char *format,
                       struct block **out, char *err);

/* pread()/pwrite() that loop over short transfers and EINTR. block_file_read() fills what
 * lies past the end of the file with zeroes. Both return 0 or -errno (-EIO for a write that
 * makes no progress). */
int block_file_read(int fd, uint64_t offset, void *buf, size_t len);
int block_file_write(int fd, uint64_t offset, const void *buf, size_t len);

#endif
