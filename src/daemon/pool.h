/* Storage pools and their volumes (docs/daemon.md, "Pools and volumes").
 *
 * A pool is a folder. A volume is one disk image in it, thin: a sparse raw file or a qcow2
 * image. The daemon names a volume by a relative KEY that it builds from validated names, e.g.
 * "TENANT/NAME" ("_shared/NAME" for the platform's); the pool still refuses any key that is not
 * 1..POOL_KEY_LEN-1 characters of [a-z0-9-_/] in non-empty components (so no "..", no absolute
 * path). On disk, key K is the file K.qcow2 or K.raw: the format is in the name, never probed
 * from contents a guest wrote. A snapshot S of K is the frozen layer K@S.qcow2 (see below).
 * Names with any other shape ('.'-prefixed temporary files) are not volumes.
 *
 * Files: every folder of a key is opened with openat(O_NOFOLLOW | O_DIRECTORY) from the pool's
 * folder descriptor, one component at a time, and every file is created with O_CREAT | O_EXCL
 * | O_NOFOLLOW (then written through /proc/self/fd/N, the very file just created) or opened
 * with O_NOFOLLOW: a symlink planted in the pool (at any component) is refused with -ELOOP and
 * never followed. New files are written under a temporary name and renamed into place, so a
 * crash leaves the old volume or the new, never half of one.
 *
 * Linked clones and who depends on whom: a linked clone D of S is a qcow2 overlay whose
 * backing file is S's file, named relative to D's folder ("../_shared/tmpl.qcow2"), which is
 * how the block layer (and QEMU) resolve it when `tessera run` opens D. Who depends on a volume
 * is derived from the files alone, by reading the backing name in the header of every qcow2
 * file of the pool (volume_dependants()): there is no second record to drift from the truth.
 * A volume that others depend on cannot be deleted, reverted or snapshotted (-EBUSY naming
 * them); it may grow (its dependants keep their own size and see the same bytes).
 *
 * Snapshots are external, as the VMM's snapshots are (vmm/snapshot.h): taking snapshot S of a
 * qcow2 volume K hard-links K.qcow2 as K@S.qcow2 and renames a new overlay backed by it over
 * K.qcow2; reverting puts a fresh overlay on K@S.qcow2 in place of K.qcow2; deleting S merges
 * its one child layer into it (block_commit()) and renames it over the child, or unlinks it
 * when nothing is backed by it. A raw volume has no snapshots (-ENOTSUP). Every layer is a
 * plain qcow2 image that `qemu-img check` and `qemu-img info --backing-chain` understand.
 *
 * In use: a running VM holds its disk image locked (block.h: flock, exclusive when writable),
 * and so do these functions while they change one; a volume that is locked elsewhere answers
 * -EBUSY. Callers must not run two calls on one pool at once (the daemon makes them from its
 * one API thread, or serializes its workers per pool); different pools are independent.
 *
 * Every function returns 0 or -errno and, on failure, writes one line to `err` (POOL_ERR_LEN
 * bytes) naming the volume and what is wrong, e.g. "volume t1/db: shrinking loses data (size
 * 1048576 is below the current 2097152 bytes)". */
#ifndef TESSERA_DAEMON_POOL_H
#define TESSERA_DAEMON_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_ERR_LEN  512
#define POOL_KEY_LEN  256 /* a key: 1..255 characters, with the NUL */
#define POOL_SNAP_LEN 64  /* a snapshot name: 1..63 characters of [a-z0-9-_], with the NUL */

enum pool_format {
    POOL_FORMAT_RAW,
    POOL_FORMAT_QCOW2,
};

struct pool;

/* Opens the pool in folder `dir`, creating the folder (mode 0750) when it does not exist.
 * The pool keeps a descriptor of the folder; pool_close() frees it. */
int pool_open(const char *dir, struct pool **out, char *err);
void pool_close(struct pool *p);

/* The pool's folder, as an absolute path without symlinks. */
const char *pool_dir(const struct pool *p);

/* capacity: the size of the file system that holds the pool (statvfs); used: the bytes the
 * pool's volumes and snapshot layers occupy on it (allocated blocks, not virtual sizes). */
int pool_stats(struct pool *p, uint64_t *capacity_bytes, uint64_t *used_bytes, char *err);

/* 0 when `key` is a valid volume key (see above), else -EINVAL with the reason in err. */
int pool_check_key(const char *key, char *err);

/* "raw" or "qcow2"; pool_parse_format() is its inverse (-EINVAL for anything else). */
const char *pool_format_name(enum pool_format fmt);
int pool_parse_format(const char *name, enum pool_format *fmt);

/* The absolute path of volume `key`'s image, for a VM's config (path_len bytes). -ENOENT
 * when there is no such volume. */
int volume_path(struct pool *p, const char *key, char *path, size_t path_len, char *err);

/* A new empty volume of size_bytes (a multiple of 512, at least 512): a sparse raw file or a
 * qcow2 image with 64 KiB clusters (block_create_qcow2()). -EEXIST when the key is taken. */
int volume_create(struct pool *p, const char *key, enum pool_format fmt, uint64_t size_bytes,
                  char *err);

/* A qcow2 overlay at dst_key backed by src_key's image, of src's size: a few clusters (256 KiB
 * with 64 KiB clusters). src must not be open for writing (-EBUSY: clone a stopped VM's disk
 * or a template's); from then on src has a dependant. */
int volume_clone_linked(struct pool *p, const char *src_key, const char *dst_key, char *err);

/* A self-contained copy of src_key (its backing chain flattened) at dst_key, in src's format,
 * sparse: ranges that no layer allocates or that read as zeroes are not written. */
int volume_clone_full(struct pool *p, const char *src_key, const char *dst_key, char *err);

/* Grows the volume to new_size (a multiple of 512). Shrinking is refused (-EINVAL). */
int volume_resize(struct pool *p, const char *key, uint64_t new_size, char *err);

/* Imports an uploaded image, open on `fd` (any offset; only read): a qcow2 (by its magic) or
 * else raw. The upload is hostile: a qcow2 that names a backing file or an external data file
 * is refused (-EPERM), one that does not open cleanly in the block layer is refused (-EINVAL,
 * the block layer's reason in err), a virtual size above max_size is refused (-EFBIG). The
 * data is copied (sparse) into a new image of format `fmt` that our own code laid out, sized
 * to the upload's virtual size rounded up to 512, and renamed over the volume at `key`, which
 * may exist (it is replaced when it is not in use, has no dependants and no snapshots) or not
 * (it is created). */
int volume_import(struct pool *p, const char *key, enum pool_format fmt, int fd, uint64_t max_size,
                  char *err);

struct volume_info {
    enum pool_format format;
    uint64_t size_bytes;          /* virtual size */
    uint64_t allocated_bytes;     /* on disk: its image and its snapshot layers */
    char backing[POOL_KEY_LEN];   /* the key of the volume it is a linked clone of, or "" */
    char snapshot[POOL_SNAP_LEN]; /* the snapshot its current state grows from, or "" */
    unsigned snapshots;           /* how many snapshots it has */
};

int volume_info(struct pool *p, const char *key, struct volume_info *info, char *err);

/* The keys of the volumes that are linked clones of `key` (backed by its image), found by
 * reading every qcow2 header of the pool: *keys is a malloc'd array of *count malloc'd keys,
 * in file-system order (NULL when 0), freed with pool_keys_free(). */
int volume_dependants(struct pool *p, const char *key, char ***keys, unsigned *count, char *err);
void pool_keys_free(char **keys, unsigned count);

/* Deletes the volume, its snapshot layers with it. -EBUSY when it is in use or has
 * dependants (err names them). */
int volume_delete(struct pool *p, const char *key, char *err);

struct volume_snapshot {
    char name[POOL_SNAP_LEN];
    uint64_t size_bytes;      /* the volume's virtual size when it was taken */
    uint64_t allocated_bytes; /* of its layer */
    bool current;             /* the volume's current state grows from it */
};

/* Snapshots of a qcow2 volume that is not in use. Names: 1..63 of [a-z0-9-_]. create:
 * -EEXIST for a taken name. revert: the volume's current state is thrown away and it reads
 * as when the snapshot was taken; the snapshot stays. delete: -EBUSY when two layers grow
 * from it (after a revert: the current state and a later snapshot); delete the later one
 * first. list: *list is a malloc'd array of *count (NULL when 0), in name order; free(). */
int volume_snapshot_create(struct pool *p, const char *key, const char *snap, char *err);
int volume_snapshot_list(struct pool *p, const char *key, struct volume_snapshot **list,
                         unsigned *count, char *err);
int volume_snapshot_revert(struct pool *p, const char *key, const char *snap, char *err);
int volume_snapshot_delete(struct pool *p, const char *key, const char *snap, char *err);

#endif
