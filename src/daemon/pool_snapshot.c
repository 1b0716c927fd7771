/* Snapshots of a pool's qcow2 volumes (pool.h): external layers K@S.qcow2 beside the volume's
 * image K.qcow2, as the VMM's own snapshots are (vmm/snapshot.h). The block layer reads qcow2
 * internal snapshots but does not write them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/pool_int.h"

/* Finds qcow2 volume key and names its snapshot layer (checking the name). */
static int pool_vol_find_snap(struct pool *p, const char *key, const char *snap, struct pool_vol *v,
                              char *layer, char *err)
{
    int ret = pool_check_key(key, err);

    if (ret == 0)
        ret = pool_check_snap(key, snap, err);
    if (ret == 0)
        ret = pool_vol_find(p, key, v, err);
    if (ret < 0)
        return ret;
    if (v->fmt != POOL_FORMAT_QCOW2) {
        pool_set_error(err, "volume %s is raw: snapshots need a qcow2 volume", key);
        pool_vol_release(v);
        return -ENOTSUP;
    }
    snprintf(layer, POOL_FILE_LEN, "%s@%s.qcow2", v->leaf, snap);
    return 0;
}

/* A new overlay, backed by layer `backing` of v's folder, of `size`, renamed over v's image.
 * With `link_as`, v's image is first hard-linked under that name (taking a snapshot). */
static int pool_vol_put_overlay(struct pool_vol *v, const char *backing, uint64_t size,
                                const char *link_as, char *err)
{
    char tmp[POOL_FILE_LEN], tpath[PATH_MAX], inner[BLOCK_ERR_LEN] = "";
    int fd, ret;

    ret = pool_vol_create_tmp(v, tmp, sizeof(tmp), &fd, tpath, err);
    if (ret < 0)
        return ret;
    ret = block_create_qcow2(tpath, size, 0, backing, "qcow2", inner);
    if (ret < 0)
        pool_block_error(err, v->key, inner);
    if (ret == 0 && fsync(fd) < 0)
        ret = -errno;
    /* The link, then the rename: a crash in between leaves the snapshot and the volume as
     * the same file, both reading as the volume did. */
    if (ret == 0 && link_as && linkat(v->dirfd, v->file, v->dirfd, link_as, 0) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: linking %s: %s", v->key, link_as, strerror(errno));
    }
    if (ret == 0)
        ret = pool_vol_commit_tmp(v, fd, tmp, v->file, true, err);
    if (ret < 0) {
        unlinkat(v->dirfd, tmp, 0);
        if (link_as)
            unlinkat(v->dirfd, link_as, 0);
    }
    close(fd);
    return ret;
}

int volume_snapshot_create(struct pool *p, const char *key, const char *snap, char *err)
{
    char layer[POOL_FILE_LEN], rel[PATH_MAX];
    struct stat st;
    uint64_t size;
    unsigned depth;
    struct pool_vol v;
    int lock, ret;

    ret = pool_vol_find_snap(p, key, snap, &v, layer, err);
    if (ret < 0)
        return ret;
    ret = pool_vol_stat(&v, layer, &st, err);
    if (ret > 0) {
        pool_set_error(err, "volume %s: snapshot %s already exists", key, snap);
        ret = -EEXIST;
    }
    if (ret == 0)
        ret = pool_refuse_deps(p, key, "snapshotted", err);
    if (ret < 0)
        goto release;
    pool_vol_rel(&v, v.file, rel, sizeof(rel));
    ret = pool_chain_depth(p, rel, key, &depth, err);
    if (ret == 0 && depth + 2 > BLOCK_MAX_CHAIN_DEPTH) {
        pool_set_error(err, "volume %s: %u layers already: delete a snapshot first", key,
                       depth + 1);
        ret = -EMLINK;
    }
    if (ret < 0)
        goto release;
    ret = pool_vol_lock(&v, &lock, err);
    if (ret < 0)
        goto release;
    ret = pool_vol_size_of(&v, v.file, v.fmt, &size, err);
    if (ret == 0)
        ret = pool_vol_put_overlay(&v, layer, size, layer, err);
    close(lock);
release:
    pool_vol_release(&v);
    return ret;
}

struct snap_list {
    struct volume_snapshot *arr;
    unsigned count;
    char current[PATH_MAX]; /* the image's backing file, relative to its folder */
    char *err;
};

static int pool_vol_list_layer(struct pool_vol *v, const char *name, const char *snap, void *arg)
{
    struct snap_list *l = arg;
    struct volume_snapshot *grown, *e;
    struct stat st;
    int ret;

    grown = realloc(l->arr, (l->count + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    l->arr = grown;
    e = &l->arr[l->count];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", snap);
    ret = pool_vol_stat(v, name, &st, l->err);
    if (ret <= 0)
        return ret < 0 ? ret : 0;
    e->allocated_bytes = (uint64_t)st.st_blocks * 512;
    ret = pool_vol_size_of(v, name, POOL_FORMAT_QCOW2, &e->size_bytes, l->err);
    if (ret < 0)
        return ret;
    e->current = !strcmp(l->current, name);
    l->count++;
    return 0;
}

static int snap_cmp(const void *a, const void *b)
{
    return strcmp(((const struct volume_snapshot *)a)->name,
                  ((const struct volume_snapshot *)b)->name);
}

int volume_snapshot_list(struct pool *p, const char *key, struct volume_snapshot **list,
                         unsigned *count, char *err)
{
    struct snap_list l = {.err = err};
    char bname[PATH_MAX], bfmt[32], inner[BLOCK_ERR_LEN] = "";
    struct pool_vol v;
    int ret;

    *list = NULL;
    *count = 0;
    ret = pool_vol_find(p, key, &v, err);
    if (ret < 0)
        return ret;
    if (v.fmt == POOL_FORMAT_QCOW2) {
        ret = block_query_backing(v.path, "qcow2", bname, sizeof(bname), bfmt, sizeof(bfmt), inner);
        if (ret < 0) {
            pool_block_error(err, key, inner);
            goto release;
        }
        snprintf(l.current, sizeof(l.current), "%s", bname);
    }
    ret = pool_vol_each_layer(&v, pool_vol_list_layer, &l);
    if (ret < 0) {
        if (ret == -ENOMEM)
            pool_set_error(err, "volume %s: out of memory", key);
        free(l.arr);
        goto release;
    }
    if (l.count)
        qsort(l.arr, l.count, sizeof(*l.arr), snap_cmp);
    *list = l.arr;
    *count = l.count;
release:
    pool_vol_release(&v);
    return ret;
}

int volume_snapshot_revert(struct pool *p, const char *key, const char *snap, char *err)
{
    char layer[POOL_FILE_LEN];
    struct stat st;
    uint64_t size;
    struct pool_vol v;
    int lock, ret;

    ret = pool_vol_find_snap(p, key, snap, &v, layer, err);
    if (ret < 0)
        return ret;
    ret = pool_vol_stat(&v, layer, &st, err);
    if (ret == 0) {
        pool_set_error(err, "volume %s has no snapshot %s", key, snap);
        ret = -ENOENT;
    }
    if (ret > 0)
        ret = pool_refuse_deps(p, key, "reverted", err);
    if (ret < 0)
        goto release;
    ret = pool_vol_lock(&v, &lock, err);
    if (ret < 0)
        goto release;
    ret = pool_vol_size_of(&v, layer, POOL_FORMAT_QCOW2, &size, err);
    if (ret == 0)
        ret = pool_vol_put_overlay(&v, layer, size, NULL, err);
    close(lock);
release:
    pool_vol_release(&v);
    return ret;
}

/* Merges the one layer `child` (in v's folder) into snapshot layer `layer` and renames the
 * layer over the child: afterwards the child's name reads as before, one layer shorter. */
static int pool_vol_merge_child(struct pool_vol *v, const char *layer, const char *child, char *err)
{
    char lpath[PATH_MAX], cpath[PATH_MAX], inner[BLOCK_ERR_LEN] = "";
    struct block *top, *base;
    uint64_t lsize, csize;
    int ret;

    snprintf(lpath, sizeof(lpath), "/proc/self/fd/%d/%s", v->dirfd, layer);
    snprintf(cpath, sizeof(cpath), "/proc/self/fd/%d/%s", v->dirfd, child);
    ret = pool_vol_size_of(v, layer, POOL_FORMAT_QCOW2, &lsize, err);
    if (ret == 0)
        ret = pool_vol_size_of(v, child, POOL_FORMAT_QCOW2, &csize, err);
    if (ret < 0)
        return ret;
    /* The child may have grown since: the merged layer takes its size. */
    if (csize > lsize) {
        ret = block_grow(lpath, "qcow2", csize, inner);
        if (ret < 0)
            goto fail;
    }
    ret = block_open_layer(cpath, "qcow2", &top, inner);
    if (ret < 0)
        goto fail;
    ret = block_open(lpath, "qcow2", false, &base, inner);
    if (ret == 0) {
        ret = block_commit(top, base, NULL, inner);
        block_close(base);
    }
    block_close(top);
    if (ret < 0)
        goto fail;
    if (renameat(v->dirfd, layer, v->dirfd, child) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: renaming %s over %s: %s", v->key, layer, child,
                       strerror(errno));
        return ret;
    }
    if (fsync(v->dirfd) < 0)
        log_warn("pool: volume %s: fsync of its folder: %s", v->key, strerror(errno));
    return 0;

fail:
    if (ret == -EBUSY)
        pool_set_error(err, "volume %s is in use (its image is open, e.g. by a running VM)",
                       v->key);
    else
        pool_block_error(err, v->key, inner);
    return ret;
}

int volume_snapshot_delete(struct pool *p, const char *key, const char *snap, char *err)
{
    char layer[POOL_FILE_LEN], rel[PATH_MAX];
    struct pool_deps dp = {.key = key, .target = rel};
    struct stat st;
    struct pool_vol v;
    int lock, ret;

    ret = pool_vol_find_snap(p, key, snap, &v, layer, err);
    if (ret < 0)
        return ret;
    ret = pool_vol_stat(&v, layer, &st, err);
    if (ret == 0) {
        pool_set_error(err, "volume %s has no snapshot %s", key, snap);
        ret = -ENOENT;
    }
    if (ret < 0)
        goto release;
    pool_vol_rel(&v, layer, rel, sizeof(rel));
    ret = pool_find_deps(p, &dp, err);
    if (ret < 0)
        goto release;
    if (dp.count == 0) {
        /* Nothing grows from it: nothing reads it, it just goes. */
        ret = pool_vol_lock(&v, &lock, err);
        if (ret == 0) {
            if (unlinkat(v.dirfd, layer, 0) < 0) {
                ret = -errno;
                pool_set_error(err, "volume %s: removing snapshot %s: %s", key, snap,
                               strerror(errno));
            }
            close(lock);
        }
    } else if (dp.count == 1 && !strncmp(dp.keys[0], rel, strlen(rel) - strlen(layer)) &&
               !strchr(dp.keys[0] + strlen(rel) - strlen(layer), '/')) {
        const char *child = dp.keys[0] + strlen(rel) - strlen(layer);

        ret = pool_vol_merge_child(&v, layer, child, err);
    } else {
        pool_set_error(err,
                       "volume %s: snapshot %s cannot be deleted: %u layers grow from it "
                       "(%s%s); delete the later snapshot first",
                       key, snap, dp.count, dp.keys[0], dp.count > 1 ? ", ..." : "");
        ret = -EBUSY;
    }
    pool_keys_free(dp.keys, dp.count);
release:
    pool_vol_release(&v);
    return ret;
}
