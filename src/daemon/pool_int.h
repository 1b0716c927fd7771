/* Private to src/daemon/pool*.c: the pool, a resolved volume, and the helpers that the files
 * of the module share (pool.c: keys, files, the scan, create, clones, resize, dependants,
 * info, delete; pool_import.c; pool_snapshot.c). Contracts as pool.h: one caller per pool
 * at a time; functions return 0 or -errno with one line in err (POOL_ERR_LEN bytes). */
#ifndef TESSERA_DAEMON_POOL_INT_H
#define TESSERA_DAEMON_POOL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "block/block.h"
#include "daemon/pool.h"

#define POOL_FILE_LEN  (POOL_KEY_LEN + POOL_SNAP_LEN + 8)
#define QCOW2_MAGIC_BE "QFI\xfb"

struct pool {
    int fd;    /* the pool's folder */
    char *dir; /* its absolute path */
};

/* One volume key, resolved: its folder opened, its file looked up. */
struct pool_vol {
    const char *key;
    int dirfd;                 /* the key's folder, O_NOFOLLOW all the way */
    char folder[POOL_KEY_LEN]; /* the key up to its last '/', "" at the top */
    char leaf[POOL_KEY_LEN];   /* the key's last component */
    enum pool_format fmt;      /* valid once found */
    char file[POOL_FILE_LEN];  /* leaf.qcow2 or leaf.raw */
    char path[PATH_MAX];       /* /proc/self/fd/DIRFD/file, for the block layer */
};

struct pool_deps {
    const char *key;    /* volumes backed by this volume's files... */
    const char *target; /* ...or by exactly this pool file, when set */
    char **keys;        /* the dependants' keys (target unset) or files (target set) */
    unsigned count;
};

struct pool_vol_usage {
    uint64_t bytes;
    unsigned layers;
};

void pool_set_error(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The block layer's line without /proc/self/fd/N prefixes: "/proc/self/fd/N/" goes (the file
 * name stays), a bare "/proc/self/fd/N" (a file open by descriptor) becomes `bare`. */
void pool_clean_error(const char *inner, const char *bare, char *out, size_t len);

/* "volume KEY: " + the block layer's line, cleaned. */
void pool_block_error(char *err, const char *key, const char *inner);

/* 0 when `snap` is a valid snapshot name of volume key (pool.h), else -EINVAL. */
int pool_check_snap(const char *key, const char *snap, char *err);

/* Splits and checks the key and opens its folder (creating it with `create`). */
int pool_vol_resolve(struct pool *p, const char *key, bool create, struct pool_vol *v, char *err);

/* Closes what pool_vol_resolve() opened; safe to call twice. */
void pool_vol_release(struct pool_vol *v);

/* Sets v's format, its file name and the /proc/self/fd path of that file. */
void pool_vol_set_file(struct pool_vol *v, enum pool_format fmt);

/* 1 when `name` exists in the folder as a regular file, 0 when it does not exist; -ELOOP for
 * a symlink, -EINVAL for anything else (with err). */
int pool_vol_stat(struct pool_vol *v, const char *name, struct stat *st, char *err);

/* 0 when neither leaf.qcow2 nor leaf.raw exists; -EEXIST (or the refusal of pool_vol_stat()). */
int pool_vol_check_free(struct pool_vol *v, char *err);

/* Resolves an existing volume: its folder and its one image file. */
int pool_vol_find(struct pool *p, const char *key, struct pool_vol *v, char *err);

/* The virtual size of file `name` in v's folder: a raw file's length, a qcow2 header's size
 * field (read without a lock: the image may be open in a running VM). */
int pool_vol_size_of(struct pool_vol *v, const char *name, enum pool_format fmt, uint64_t *size,
                     char *err);

/* Locks v's image exclusively (as a writer would): -EBUSY when a running VM (or anyone) has
 * it open through the block layer. The lock lives until *fd is closed. */
int pool_vol_lock(struct pool_vol *v, int *fd, char *err);

/* Creates `.LEAF.tmp` in v's folder with O_EXCL | O_NOFOLLOW (a stale one from a crash is
 * removed first) and names it /proc/self/fd/FD in `path`. */
int pool_vol_create_tmp(struct pool_vol *v, char *tmp, size_t tmp_len, int *fd, char *path,
                        char *err);

/* Makes the temporary file durable and renames it to `name` (without replacing an existing
 * file unless `replace`), then syncs the folder. */
int pool_vol_commit_tmp(struct pool_vol *v, int fd, const char *tmp, const char *name, bool replace,
                        char *err);

/* Walks the backing chain of pool file `rel` (each file opened O_NOFOLLOW from the pool, each
 * backing name resolved inside the pool) and counts its layers below it in *depth. */
int pool_chain_depth(struct pool *p, const char *rel, const char *key, unsigned *depth, char *err);

/* The pool-relative path of file `name` in v's folder. */
void pool_vol_rel(const struct pool_vol *v, const char *name, char *rel, size_t len);

/* Copies what src reads as, sparse, into the new empty file `fd` (/proc/self/fd path
 * `dpath`) as an image of `fmt` and `size` bytes (>= src's length). */
int pool_copy(struct block *src, int fd, const char *dpath, enum pool_format fmt, uint64_t size,
              const char *key, char *err);

/* Every qcow2 file of the pool backed by key's files (dp.key) or by file dp.target. */
int pool_find_deps(struct pool *p, struct pool_deps *dp, char *err);

/* -EBUSY, naming them, when other volumes are backed by key's files. */
int pool_refuse_deps(struct pool *p, const char *key, const char *what, char *err);

/* Calls each(v, name of layer, snapshot name, arg) for every snapshot layer of v. */
int pool_vol_each_layer(struct pool_vol *v,
                        int (*each)(struct pool_vol *, const char *, const char *, void *),
                        void *arg);

/* A pool_vol_each_layer() callback: adds the layer's allocated bytes and one layer to the
 * struct pool_vol_usage at arg. */
int pool_vol_add_layer(struct pool_vol *v, const char *name, const char *snap, void *arg);

#endif
