/* Importing an uploaded image into a pool (pool.h, volume_import()). The upload is hostile:
 * the checks come before anything opens it, and what is kept is a copy that our own code laid
 * out, never the uploaded file. */
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

int volume_import(struct pool *p, const char *key, enum pool_format fmt, int fd, uint64_t max_size,
                  char *err)
{
    char upath[PATH_MAX], tmp[POOL_FILE_LEN], tpath[PATH_MAX], inner[BLOCK_ERR_LEN] = "";
    char bname[PATH_MAX], bfmt[32], clean[BLOCK_ERR_LEN];
    const char *ufmt = "raw";
    uint8_t hdr[80] = {0};
    struct block *src = NULL;
    struct pool_vol_usage u = {0};
    struct stat st;
    struct pool_vol v;
    uint64_t size;
    int tfd, lock = -1, ret, old = 0;
    enum pool_format old_fmt = fmt;

    ret = pool_check_key(key, err);
    if (ret < 0)
        return ret;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        pool_set_error(err, "volume %s: the upload is not a regular file", key);
        return -EINVAL;
    }
    if (pread(fd, hdr, sizeof(hdr), 0) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: reading the upload: %s", key, strerror(errno));
        return ret;
    }
    snprintf(upath, sizeof(upath), "/proc/self/fd/%d", fd);
    if (!memcmp(hdr, QCOW2_MAGIC_BE, 4)) {
        ufmt = "qcow2";
        /* Refused before anything opens it: a backing file or an external data file would
         * make the image read (or write) a host file of the uploader's choosing. */
        ret = block_query_backing(upath, "qcow2", bname, sizeof(bname), bfmt, sizeof(bfmt), inner);
        if (ret < 0) {
            pool_clean_error(inner, "upload", clean, sizeof(clean));
            pool_set_error(err, "volume %s: the uploaded qcow2 image is invalid: %s", key, clean);
            return -EINVAL;
        }
        if (bname[0]) {
            pool_set_error(err,
                           "volume %s: the uploaded qcow2 image names a backing file ('%.200s'): "
                           "refused; upload a self-contained image (qemu-img convert)",
                           key, bname);
            return -EPERM;
        }
        if (hdr[7] >= 3 && (hdr[79] & 4)) {
            pool_set_error(err,
                           "volume %s: the uploaded qcow2 image uses an external data file: "
                           "refused; upload a self-contained image (qemu-img convert)",
                           key);
            return -EPERM;
        }
    }
    ret = block_open(upath, ufmt, true, &src, inner);
    if (ret < 0) {
        pool_clean_error(inner, "upload", clean, sizeof(clean));
        pool_set_error(err, "volume %s: the uploaded %s image is invalid: %s", key, ufmt, clean);
        return -EINVAL;
    }
    size = block_length(src);
    if (size == 0 || size > max_size) {
        pool_set_error(err,
                       "volume %s: the uploaded image's virtual size %llu is %s (at most %llu "
                       "bytes)",
                       key, (unsigned long long)size, size ? "too large" : "empty",
                       (unsigned long long)max_size);
        ret = size ? -EFBIG : -EINVAL;
        goto close_src;
    }
    size = (size + 511) & ~511ull;
    ret = pool_vol_resolve(p, key, true, &v, err);
    if (ret < 0)
        goto close_src;
    /* Replacing a volume: only one nobody uses or depends on, without snapshots. */
    if (pool_vol_check_free(&v, NULL) == -EEXIST) {
        struct pool_vol o;

        ret = pool_vol_find(p, key, &o, err);
        if (ret == 0) {
            old_fmt = o.fmt;
            old = 1;
            ret = pool_refuse_deps(p, key, "replaced", err);
            if (ret == 0)
                ret = pool_vol_lock(&o, &lock, err);
            if (ret == 0)
                ret = pool_vol_each_layer(&o, pool_vol_add_layer, &u);
            if (ret == 0 && u.layers) {
                pool_set_error(err, "volume %s has %u snapshots: delete them before importing", key,
                               u.layers);
                ret = -EBUSY;
            }
            pool_vol_release(&o);
        }
    } else {
        ret = pool_vol_check_free(&v, err);
    }
    if (ret < 0)
        goto release;
    pool_vol_set_file(&v, fmt);
    ret = pool_vol_create_tmp(&v, tmp, sizeof(tmp), &tfd, tpath, err);
    if (ret < 0)
        goto release;
    ret = pool_copy(src, tfd, tpath, fmt, size, key, err);
    if (ret == 0)
        ret = pool_vol_commit_tmp(&v, tfd, tmp, v.file, true, err);
    if (ret < 0)
        unlinkat(v.dirfd, tmp, 0);
    close(tfd);
    if (ret == 0 && old && old_fmt != fmt) {
        char name[POOL_FILE_LEN];

        snprintf(name, sizeof(name), "%s.%s", v.leaf, pool_format_name(old_fmt));
        if (unlinkat(v.dirfd, name, 0) < 0)
            log_warn("pool: volume %s: removing the replaced %s: %s", key, name, strerror(errno));
    }
release:
    if (lock >= 0)
        close(lock);
    pool_vol_release(&v);
close_src:
    block_close(src);
    return ret;
}
