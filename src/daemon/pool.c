/* Storage pools and volumes (pool.h): keys to files, safely; images through the block layer.
 *
 * Every path below the pool's folder is reached from the pool's folder descriptor, one
 * component at a time with O_NOFOLLOW. The block layer takes paths, so it is handed
 * /proc/self/fd/DIRFD/FILE (DIRFD: the volume's folder, opened that way) or /proc/self/fd/FD
 * (a file just created with O_EXCL | O_NOFOLLOW): the kernel resolves such a name to the very
 * folder or file behind the descriptor, and a relative backing name ("../x.qcow2") stored in
 * an image resolves from that folder as it does from the pool's real path. Those names are this
 * process's descriptors, so the block layer must make its calls itself: the daemon installs no
 * hostfs broker (base/hostfs.h). Messages drop the /proc/self/fd/N/ prefix so that people read
 * file names of the pool. */
#include "daemon/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/pool_int.h"

#define POOL_MAX_DEPTH  32         /* folders below the pool that a scan descends */
#define POOL_COPY_CHUNK (1u << 20) /* bytes per read in a copy */

void pool_set_error(char *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err, POOL_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* The block layer's line without /proc/self/fd/N prefixes: "/proc/self/fd/N/" goes (the file
 * name stays), a bare "/proc/self/fd/N" (a file open by descriptor) becomes `bare`. */
void pool_clean_error(const char *inner, const char *bare, char *out, size_t len)
{
    size_t o = 0;

    for (const char *s = inner; *s && o + 1 < len;) {
        if (!strncmp(s, "/proc/self/fd/", 14)) {
            s += 14;
            while (*s >= '0' && *s <= '9')
                s++;
            if (*s == '/')
                s++;
            else
                o += (size_t)snprintf(out + o, len - o, "%s", bare);
            if (o >= len)
                o = len - 1;
            continue;
        }
        out[o++] = *s++;
    }
    out[o] = '\0';
}

/* "volume KEY: " + the block layer's line, cleaned. */
void pool_block_error(char *err, const char *key, const char *inner)
{
    char clean[BLOCK_ERR_LEN];

    pool_clean_error(inner, "the new image", clean, sizeof(clean));
    pool_set_error(err, "volume %s: %s", key, clean);
}

const char *pool_format_name(enum pool_format fmt)
{
    return fmt == POOL_FORMAT_QCOW2 ? "qcow2" : "raw";
}

int pool_parse_format(const char *name, enum pool_format *fmt)
{
    if (!strcmp(name, "qcow2"))
        *fmt = POOL_FORMAT_QCOW2;
    else if (!strcmp(name, "raw"))
        *fmt = POOL_FORMAT_RAW;
    else
        return -EINVAL;
    return 0;
}

static bool pool_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int pool_check_key(const char *key, char *err)
{
    size_t n = strlen(key);

    if (n == 0 || n >= POOL_KEY_LEN) {
        pool_set_error(err, "volume key '%.64s': must be 1..%d characters", key, POOL_KEY_LEN - 1);
        return -EINVAL;
    }
    if (key[0] == '/') {
        pool_set_error(err, "volume key '%s': an absolute path is not a key", key);
        return -EINVAL;
    }
    if (strstr(key, "..")) {
        pool_set_error(err, "volume key '%s': '..' is not allowed", key);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (key[i] == '/') {
            if (i + 1 == n || key[i + 1] == '/') {
                pool_set_error(err, "volume key '%s': empty path component", key);
                return -EINVAL;
            }
        } else if (!pool_name_char(key[i])) {
            pool_set_error(err,
                           "volume key '%s': character 0x%02x at %zu is not one of "
                           "[a-z0-9-_/]",
                           key, (unsigned char)key[i], i);
            return -EINVAL;
        }
    }
    return 0;
}

int pool_check_snap(const char *key, const char *snap, char *err)
{
    size_t n = strlen(snap);

    if (n == 0 || n >= POOL_SNAP_LEN) {
        pool_set_error(err, "volume %s: snapshot name must be 1..%d characters", key,
                       POOL_SNAP_LEN - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (!pool_name_char(snap[i])) {
            pool_set_error(err,
                           "volume %s: snapshot name '%s': character 0x%02x is not one of "
                           "[a-z0-9-_]",
                           key, snap, (unsigned char)snap[i]);
            return -EINVAL;
        }
    return 0;
}

/* Opens `folder` ("a/b", "" for the pool itself) below the pool, one component at a time,
 * never following a symlink; with `create`, missing folders are made (0750). */
static int pool_open_folder(struct pool *p, const char *folder, bool create, int *out,
                            const char *key, char *err)
{
    char buf[POOL_KEY_LEN], *save = NULL;
    int cur = fcntl(p->fd, F_DUPFD_CLOEXEC, 0), ret = 0;

    if (cur < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: %s", key, strerror(errno));
        return ret;
    }
    snprintf(buf, sizeof(buf), "%s", folder);
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(cur, c, 0750) < 0 && errno != EEXIST) {
                ret = -errno;
                pool_set_error(err, "volume %s: cannot make folder '%s': %s", key, c,
                               strerror(errno));
                goto close_cur;
            }
            next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            ret = errno == ENOTDIR ? -ELOOP : -errno;
            if (errno == ELOOP || errno == ENOTDIR)
                pool_set_error(err,
                               "volume %s: '%s' in the pool is a symlink or not a folder: "
                               "refused",
                               key, c);
            else if (errno == ENOENT)
                pool_set_error(err, "volume %s does not exist", key);
            else
                pool_set_error(err, "volume %s: folder '%s': %s", key, c, strerror(errno));
            goto close_cur;
        }
        close(cur);
        cur = next;
    }
    *out = cur;
    return 0;

close_cur:
    close(cur);
    return ret;
}

/* Splits and checks the key and opens its folder (creating it with `create`). */
int pool_vol_resolve(struct pool *p, const char *key, bool create, struct pool_vol *v, char *err)
{
    const char *slash;
    int ret;

    memset(v, 0, sizeof(*v));
    v->dirfd = -1;
    v->key = key;
    ret = pool_check_key(key, err);
    if (ret < 0)
        return ret;
    slash = strrchr(key, '/');
    if (slash)
        snprintf(v->folder, sizeof(v->folder), "%.*s", (int)(slash - key), key);
    snprintf(v->leaf, sizeof(v->leaf), "%s", slash ? slash + 1 : key);
    return pool_open_folder(p, v->folder, create, &v->dirfd, key, err);
}

void pool_vol_release(struct pool_vol *v)
{
    if (v->dirfd >= 0)
        close(v->dirfd);
    v->dirfd = -1;
}

void pool_vol_set_file(struct pool_vol *v, enum pool_format fmt)
{
    v->fmt = fmt;
    snprintf(v->file, sizeof(v->file), "%s.%s", v->leaf, pool_format_name(fmt));
    snprintf(v->path, sizeof(v->path), "/proc/self/fd/%d/%s", v->dirfd, v->file);
}

/* 1 when `name` exists in the folder as a regular file, 0 when it does not exist; -ELOOP for
 * a symlink, -EINVAL for anything else (with err). */
int pool_vol_stat(struct pool_vol *v, const char *name, struct stat *st, char *err)
{
    if (fstatat(v->dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        pool_set_error(err, "volume %s: %s: %s", v->key, name, strerror(errno));
        return -errno;
    }
    if (S_ISLNK(st->st_mode)) {
        pool_set_error(err, "volume %s: %s in the pool is a symlink: refused", v->key, name);
        return -ELOOP;
    }
    if (!S_ISREG(st->st_mode)) {
        pool_set_error(err, "volume %s: %s in the pool is not a regular file", v->key, name);
        return -EINVAL;
    }
    return 1;
}

/* 0 when neither leaf.qcow2 nor leaf.raw exists; -EEXIST (or the refusal of pool_vol_stat()). */
int pool_vol_check_free(struct pool_vol *v, char *err)
{
    static const enum pool_format fmts[] = {POOL_FORMAT_QCOW2, POOL_FORMAT_RAW};
    struct stat st;

    for (size_t i = 0; i < 2; i++) {
        char name[POOL_FILE_LEN];
        int r;

        snprintf(name, sizeof(name), "%s.%s", v->leaf, pool_format_name(fmts[i]));
        if (fstatat(v->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode)) {
                r = pool_vol_stat(v, name, &st, err);
                return r < 0 ? r : -ELOOP;
            }
            pool_set_error(err, "volume %s already exists", v->key);
            return -EEXIST;
        }
    }
    return 0;
}

/* Resolves an existing volume: its folder and its one image file. */
int pool_vol_find(struct pool *p, const char *key, struct pool_vol *v, char *err)
{
    char q[POOL_FILE_LEN], r[POOL_FILE_LEN];
    struct stat st;
    int hq, hr, ret;

    ret = pool_vol_resolve(p, key, false, v, err);
    if (ret < 0)
        return ret;
    snprintf(q, sizeof(q), "%s.qcow2", v->leaf);
    snprintf(r, sizeof(r), "%s.raw", v->leaf);
    hq = pool_vol_stat(v, q, &st, err);
    hr = hq < 0 ? 0 : pool_vol_stat(v, r, &st, err);
    if (hq < 0 || hr < 0) {
        ret = hq < 0 ? hq : hr;
        goto release;
    }
    if (hq && hr) {
        pool_set_error(err, "volume %s: both %s and %s exist; remove the stray one", key, q, r);
        ret = -EIO;
        goto release;
    }
    if (!hq && !hr) {
        pool_set_error(err, "volume %s does not exist", key);
        ret = -ENOENT;
        goto release;
    }
    pool_vol_set_file(v, hq ? POOL_FORMAT_QCOW2 : POOL_FORMAT_RAW);
    return 0;

release:
    pool_vol_release(v);
    return ret;
}

/* The virtual size of file `name` in v's folder: a raw file's length, a qcow2 header's size
 * field (read without a lock: the image may be open in a running VM). */
int pool_vol_size_of(struct pool_vol *v, const char *name, enum pool_format fmt, uint64_t *size,
                     char *err)
{
    uint8_t hdr[32];
    struct stat st;
    ssize_t n;
    int fd, ret = 0;

    fd = openat(v->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: %s: %s", v->key, name, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: %s: %s", v->key, name, strerror(errno));
    } else if (fmt == POOL_FORMAT_RAW) {
        *size = (uint64_t)st.st_size;
    } else {
        n = pread(fd, hdr, sizeof(hdr), 0);
        if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, QCOW2_MAGIC_BE, 4)) {
            pool_set_error(err, "volume %s: %s has no qcow2 header", v->key, name);
            ret = -EIO;
        } else {
            *size = 0;
            for (int i = 24; i < 32; i++)
                *size = (*size << 8) | hdr[i];
        }
    }
    close(fd);
    return ret;
}

/* Locks v's image exclusively (as a writer would): -EBUSY when a running VM (or anyone) has
 * it open through the block layer. The lock lives until *fd is closed. */
int pool_vol_lock(struct pool_vol *v, int *fd, char *err)
{
    int ret;

    *fd = openat(v->dirfd, v->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: %s: %s", v->key, v->file, strerror(errno));
        return ret;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pool_set_error(err, "volume %s is in use (its image is open, e.g. by a running VM)",
                       v->key);
        close(*fd);
        *fd = -1;
        return ret;
    }
    return 0;
}

/* Creates `.LEAF.tmp` in v's folder with O_EXCL | O_NOFOLLOW (a stale one from a crash is
 * removed first) and names it /proc/self/fd/FD in `path`. */
int pool_vol_create_tmp(struct pool_vol *v, char *tmp, size_t tmp_len, int *fd, char *path,
                        char *err)
{
    int ret;

    snprintf(tmp, tmp_len, ".%s.tmp", v->leaf);
    for (int tries = 0; tries < 2; tries++) {
        *fd = openat(v->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (*fd >= 0) {
            snprintf(path, PATH_MAX, "/proc/self/fd/%d", *fd);
            return 0;
        }
        if (errno != EEXIST || unlinkat(v->dirfd, tmp, 0) < 0)
            break;
    }
    ret = -errno;
    pool_set_error(err, "volume %s: cannot create %s: %s", v->key, tmp, strerror(errno));
    return ret;
}

/* Makes the temporary file durable and renames it to `name` (without replacing an existing
 * file unless `replace`), then syncs the folder. */
int pool_vol_commit_tmp(struct pool_vol *v, int fd, const char *tmp, const char *name, bool replace,
                        char *err)
{
    int ret;

    if (fsync(fd) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: fsync: %s", v->key, strerror(errno));
        return ret;
    }
    if (renameat2(v->dirfd, tmp, v->dirfd, name, replace ? 0 : RENAME_NOREPLACE) < 0) {
        ret = -errno;
        if (errno == EEXIST)
            pool_set_error(err, "volume %s already exists", v->key);
        else
            pool_set_error(err, "volume %s: renaming %s to %s: %s", v->key, tmp, name,
                           strerror(errno));
        return ret;
    }
    if (fsync(v->dirfd) < 0)
        log_warn("pool: volume %s: fsync of its folder: %s", v->key, strerror(errno));
    return 0;
}

/* ---- Names of files, and the scan of a pool's files ---- */

/* Splits a file name of the pool into the volume leaf, the snapshot ("" for the image itself)
 * and the format. false for a name that is no volume's (temporary files, strays). */
static bool pool_parse_file(const char *name, char *leaf, char *snap, enum pool_format *fmt)
{
    const char *dot = strrchr(name, '.'), *at = strchr(name, '@');
    size_t ll;

    if (!dot || dot == name)
        return false;
    if (!strcmp(dot, ".qcow2"))
        *fmt = POOL_FORMAT_QCOW2;
    else if (!strcmp(dot, ".raw") && !at)
        *fmt = POOL_FORMAT_RAW;
    else
        return false;
    ll = at ? (size_t)(at - name) : (size_t)(dot - name);
    if (ll == 0 || ll >= POOL_KEY_LEN ||
        (at && (dot - at - 1 <= 0 || dot - at - 1 >= POOL_SNAP_LEN)))
        return false;
    for (const char *c = name; c < dot; c++)
        if (c != at && !pool_name_char(*c))
            return false;
    memcpy(leaf, name, ll);
    leaf[ll] = '\0';
    snap[0] = '\0';
    if (at) {
        memcpy(snap, at + 1, (size_t)(dot - at - 1));
        snap[dot - at - 1] = '\0';
    }
    return true;
}

/* The volume key of pool file `rel` ("a/b@s.qcow2" -> "a/b"), or false when it is none. */
static bool pool_family(const char *rel, char *key, char *snap)
{
    const char *slash = strrchr(rel, '/');
    char leaf[POOL_KEY_LEN];
    enum pool_format fmt;
    int n;

    if (!pool_parse_file(slash ? slash + 1 : rel, leaf, snap, &fmt))
        return false;
    n = slash ? snprintf(key, POOL_KEY_LEN, "%.*s/%s", (int)(slash - rel), rel, leaf)
              : snprintf(key, POOL_KEY_LEN, "%s", leaf);
    return n > 0 && n < POOL_KEY_LEN;
}

/* The pool-relative path of backing name `name` stored by the image in pool folder `folder`,
 * as the block layer resolves it; false when it is absolute or leaves the pool. */
static bool pool_resolve_rel(const char *folder, const char *name, char *out, size_t out_len)
{
    char buf[PATH_MAX], *save = NULL;
    size_t o = 0;

    if (name[0] == '/')
        return false;
    if (snprintf(buf, sizeof(buf), "%s%s%s", folder, folder[0] ? "/" : "", name) >=
        (int)sizeof(buf))
        return false;
    out[0] = '\0';
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..")) {
            char *up;

            if (o == 0)
                return false;
            up = strrchr(out, '/');
            o = up ? (size_t)(up - out) : 0;
            out[o] = '\0';
            continue;
        }
        if (o + (o ? 1 : 0) + strlen(c) + 1 > out_len)
            return false;
        o += (size_t)sprintf(out + o, "%s%s", o ? "/" : "", c);
    }
    return o > 0;
}

/* Reads the backing name of qcow2 file `name` in folder `dirfd` (pool folder `folder`) and
 * resolves it to a pool-relative path in `rel` ("" when it has none). -EPERM when the name
 * leads outside the pool. */
static int pool_backing_rel(int dirfd, const char *folder, const char *name, const char *key,
                            char *rel, size_t rel_len, char *err)
{
    char path[PATH_MAX], bname[PATH_MAX], bfmt[32], inner[BLOCK_ERR_LEN] = "";
    int ret;

    rel[0] = '\0';
    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
    ret = block_query_backing(path, "qcow2", bname, sizeof(bname), bfmt, sizeof(bfmt), inner);
    if (ret < 0) {
        pool_block_error(err, key, inner);
        return ret;
    }
    if (bname[0] && !pool_resolve_rel(folder, bname, rel, rel_len)) {
        pool_set_error(err, "volume %s: %s names backing file '%s', outside the pool: refused", key,
                       name, bname);
        return -EPERM;
    }
    return 0;
}

struct pool_scan {
    bool backing; /* resolve every qcow2 volume file's backing name */
    /* Called for every regular file: rel is its pool-relative path, brel its backing file's
     * ("" when none, or not looked at). A negative return stops the scan. */
    int (*each)(struct pool_scan *sc, const char *rel, const struct stat *st, const char *brel);
    void *arg;
};

static int pool_scan_folder(struct pool_scan *sc, int dfd, const char *rel, unsigned depth)
{
    struct dirent *de;
    DIR *d;
    int fd2 = fcntl(dfd, F_DUPFD_CLOEXEC, 0), ret = 0;

    if (fd2 < 0)
        return -errno;
    d = fdopendir(fd2);
    if (!d) {
        ret = -errno;
        close(fd2);
        return ret;
    }
    /* The duplicate shares the folder descriptor's position: start from the top. */
    rewinddir(d);
    while (ret >= 0 && (de = readdir(d))) {
        char crel[PATH_MAX], brel[PATH_MAX] = "", leaf[POOL_KEY_LEN], snap[POOL_SNAP_LEN];
        enum pool_format fmt;
        struct stat st;

        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (snprintf(crel, sizeof(crel), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            (int)sizeof(crel))
            continue;
        if (S_ISDIR(st.st_mode) && depth < POOL_MAX_DEPTH) {
            int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

            if (sub >= 0) {
                ret = pool_scan_folder(sc, sub, crel, depth + 1);
                close(sub);
            }
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (sc->backing && pool_parse_file(de->d_name, leaf, snap, &fmt) &&
            fmt == POOL_FORMAT_QCOW2) {
            char e[POOL_ERR_LEN];

            /* A file that does not check is nobody's dependant: say so and go on. */
            if (pool_backing_rel(dfd, rel, de->d_name, crel, brel, sizeof(brel), e) < 0) {
                log_warn("pool: %s", e);
                brel[0] = '\0';
            }
        }
        ret = sc->each(sc, crel, &st, brel);
    }
    closedir(d);
    return ret;
}

static int pool_scan(struct pool *p, struct pool_scan *sc)
{
    return pool_scan_folder(sc, p->fd, "", 0);
}

/* ---- The pool ---- */

int pool_open(const char *dir, struct pool **out, char *err)
{
    char real[PATH_MAX];
    struct pool *p;
    int ret;

    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        ret = -errno;
        pool_set_error(err, "pool %s: cannot make the folder: %s", dir, strerror(errno));
        return ret;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        pool_set_error(err, "pool %s: out of memory", dir);
        return -ENOMEM;
    }
    p->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->fd < 0) {
        ret = -errno;
        pool_set_error(err, "pool %s: cannot open the folder: %s", dir, strerror(errno));
        goto free_pool;
    }
    if (!realpath(dir, real) || !(p->dir = strdup(real))) {
        ret = -errno;
        pool_set_error(err, "pool %s: %s", dir, strerror(errno));
        goto close_fd;
    }
    *out = p;
    return 0;

close_fd:
    close(p->fd);
free_pool:
    free(p);
    return ret;
}

void pool_close(struct pool *p)
{
    if (!p)
        return;
    close(p->fd);
    free(p->dir);
    free(p);
}

const char *pool_dir(const struct pool *p)
{
    return p->dir;
}

static int pool_sum_blocks(struct pool_scan *sc, const char *rel, const struct stat *st,
                           const char *brel)
{
    *(uint64_t *)sc->arg += (uint64_t)st->st_blocks * 512;
    return 0;
}

int pool_stats(struct pool *p, uint64_t *capacity_bytes, uint64_t *used_bytes, char *err)
{
    struct statvfs vfs;
    uint64_t used = 0;
    struct pool_scan sc = {.each = pool_sum_blocks, .arg = &used};
    int ret;

    if (fstatvfs(p->fd, &vfs) < 0) {
        ret = -errno;
        pool_set_error(err, "pool %s: statvfs: %s", p->dir, strerror(errno));
        return ret;
    }
    ret = pool_scan(p, &sc);
    if (ret < 0) {
        pool_set_error(err, "pool %s: reading its files: %s", p->dir, strerror(-ret));
        return ret;
    }
    *capacity_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    *used_bytes = used;
    return 0;
}

int volume_path(struct pool *p, const char *key, char *path, size_t path_len, char *err)
{
    struct pool_vol v;
    int ret = pool_vol_find(p, key, &v, err);

    if (ret < 0)
        return ret;
    if (snprintf(path, path_len, "%s/%s%s%s", p->dir, v.folder, v.folder[0] ? "/" : "", v.file) >=
        (int)path_len) {
        pool_set_error(err, "volume %s: path is too long", key);
        ret = -ENAMETOOLONG;
    }
    pool_vol_release(&v);
    return ret;
}

static int pool_check_size(const char *key, uint64_t size, char *err)
{
    if (size < 512 || size % 512 || size > INT64_MAX) {
        pool_set_error(err, "volume %s: size %llu must be a positive multiple of 512", key,
                       (unsigned long long)size);
        return -EINVAL;
    }
    return 0;
}

int volume_create(struct pool *p, const char *key, enum pool_format fmt, uint64_t size_bytes,
                  char *err)
{
    char tmp[POOL_FILE_LEN], tpath[PATH_MAX], inner[BLOCK_ERR_LEN] = "";
    struct pool_vol v;
    int fd, ret;

    ret = pool_check_key(key, err);
    if (ret == 0)
        ret = pool_check_size(key, size_bytes, err);
    if (ret < 0)
        return ret;
    ret = pool_vol_resolve(p, key, true, &v, err);
    if (ret < 0)
        return ret;
    ret = pool_vol_check_free(&v, err);
    if (ret < 0)
        goto release;
    pool_vol_set_file(&v, fmt);
    ret = pool_vol_create_tmp(&v, tmp, sizeof(tmp), &fd, tpath, err);
    if (ret < 0)
        goto release;
    if (fmt == POOL_FORMAT_RAW) {
        if (ftruncate(fd, (off_t)size_bytes) < 0) {
            ret = -errno;
            pool_set_error(err, "volume %s: cannot size to %llu bytes: %s", key,
                           (unsigned long long)size_bytes, strerror(errno));
        }
    } else {
        ret = block_create_qcow2(tpath, size_bytes, 0, NULL, NULL, inner);
        if (ret < 0)
            pool_block_error(err, key, inner);
    }
    if (ret == 0)
        ret = pool_vol_commit_tmp(&v, fd, tmp, v.file, false, err);
    if (ret < 0)
        unlinkat(v.dirfd, tmp, 0);
    close(fd);
release:
    pool_vol_release(&v);
    return ret;
}

/* Walks the backing chain of pool file `rel` (each file opened O_NOFOLLOW from the pool, each
 * backing name resolved inside the pool) and counts its layers below it in *depth. */
int pool_chain_depth(struct pool *p, const char *rel, const char *key, unsigned *depth, char *err)
{
    char cur[PATH_MAX], next[PATH_MAX];
    int ret = 0;

    snprintf(cur, sizeof(cur), "%s", rel);
    for (*depth = 0; *depth <= BLOCK_MAX_CHAIN_DEPTH; (*depth)++) {
        char folder[PATH_MAX], leaf[POOL_KEY_LEN], snap[POOL_SNAP_LEN];
        const char *slash = strrchr(cur, '/'), *name = slash ? slash + 1 : cur;
        enum pool_format fmt;
        struct stat st;
        struct pool_vol v = {.key = key, .dirfd = -1};

        snprintf(folder, sizeof(folder), "%.*s", slash ? (int)(slash - cur) : 0, cur);
        if (!pool_parse_file(name, leaf, snap, &fmt)) {
            pool_set_error(err, "volume %s: backing file %s is not a volume of the pool", key, cur);
            return -EPERM;
        }
        ret = pool_open_folder(p, folder, false, &v.dirfd, key, err);
        if (ret < 0)
            return ret;
        ret = pool_vol_stat(&v, name, &st, err);
        if (ret == 0) {
            pool_set_error(err, "volume %s: backing file %s is missing", key, cur);
            ret = -ENOENT;
        }
        if (ret > 0)
            ret = fmt == POOL_FORMAT_QCOW2
                      ? pool_backing_rel(v.dirfd, folder, name, key, next, sizeof(next), err)
                      : (next[0] = '\0', 0);
        pool_vol_release(&v);
        if (ret < 0)
            return ret;
        if (!next[0])
            return 0;
        snprintf(cur, sizeof(cur), "%s", next);
    }
    pool_set_error(err, "volume %s: backing chain is deeper than %d images", key,
                   BLOCK_MAX_CHAIN_DEPTH);
    return -ELOOP;
}

void pool_vol_rel(const struct pool_vol *v, const char *name, char *rel, size_t len)
{
    snprintf(rel, len, "%s%s%s", v->folder, v->folder[0] ? "/" : "", name);
}

int volume_clone_linked(struct pool *p, const char *src_key, const char *dst_key, char *err)
{
    char tmp[POOL_FILE_LEN], tpath[PATH_MAX], backing[PATH_MAX], rel[PATH_MAX];
    char inner[BLOCK_ERR_LEN] = "";
    struct pool_vol s, d;
    struct block *b;
    uint64_t size;
    unsigned depth;
    size_t o = 0;
    int lock, fd, ret;

    ret = pool_vol_find(p, src_key, &s, err);
    if (ret < 0)
        return ret;
    ret = pool_check_key(dst_key, err);
    if (ret < 0)
        goto release_src;
    pool_vol_rel(&s, s.file, rel, sizeof(rel));
    ret = pool_chain_depth(p, rel, src_key, &depth, err);
    if (ret == 0 && depth + 2 > BLOCK_MAX_CHAIN_DEPTH) {
        pool_set_error(err,
                       "volume %s: its backing chain has %u images; a linked clone would "
                       "pass the limit of %d: make a full clone",
                       src_key, depth + 1, BLOCK_MAX_CHAIN_DEPTH);
        ret = -EMLINK;
    }
    if (ret < 0)
        goto release_src;
    /* A shared lock, held until the clone exists: nobody writes the source meanwhile, and a
     * source open for writing (a running VM's disk) is refused. */
    lock = openat(s.dirfd, s.file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_SH | LOCK_NB) < 0) {
        ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
        pool_set_error(err, "volume %s is in use (open for writing, e.g. by a running VM)",
                       src_key);
        goto close_lock;
    }
    ret = block_open_layer(s.path, pool_format_name(s.fmt), &b, inner);
    if (ret < 0) {
        pool_block_error(err, src_key, inner);
        goto close_lock;
    }
    size = block_length(b);
    block_close(b);
    ret = pool_vol_resolve(p, dst_key, true, &d, err);
    if (ret < 0)
        goto close_lock;
    ret = pool_vol_check_free(&d, err);
    if (ret < 0)
        goto release_dst;
    pool_vol_set_file(&d, POOL_FORMAT_QCOW2);
    /* The backing name, relative to the clone's folder: "../" for each of its folders. */
    for (const char *c = d.folder; *c; c++)
        if (*c == '/' || c == d.folder)
            o += (size_t)snprintf(backing + o, sizeof(backing) - o, "../");
    snprintf(backing + o, sizeof(backing) - o, "%s", rel);
    ret = pool_vol_create_tmp(&d, tmp, sizeof(tmp), &fd, tpath, err);
    if (ret < 0)
        goto release_dst;
    ret = block_create_qcow2(tpath, size, 0, backing, pool_format_name(s.fmt), inner);
    if (ret < 0)
        pool_block_error(err, dst_key, inner);
    if (ret == 0)
        ret = pool_vol_commit_tmp(&d, fd, tmp, d.file, false, err);
    if (ret < 0)
        unlinkat(d.dirfd, tmp, 0);
    close(fd);
release_dst:
    pool_vol_release(&d);
close_lock:
    if (lock >= 0)
        close(lock);
release_src:
    pool_vol_release(&s);
    return ret;
}

/* Whether [off, off + len) of the chain bs reads as data some layer holds: *run bytes from off
 * (1..len) share the answer. Layers past their own length, and ranges no layer holds or that
 * a layer says read as zeroes, are not data. */
static int pool_chain_map(struct block *bs, uint64_t off, uint64_t len, bool *data, uint64_t *run)
{
    uint64_t lim = len;

    *data = false;
    for (struct block *b = bs; b; b = block_backing(b)) {
        enum block_alloc kind;
        uint64_t r;
        int ret;

        if (off >= block_length(b))
            break;
        if (lim > block_length(b) - off)
            lim = block_length(b) - off;
        ret = block_map(b, off, lim, &kind, &r);
        if (ret < 0)
            return ret;
        lim = r;
        if (kind != BLOCK_ALLOC_NONE) {
            *data = kind == BLOCK_ALLOC_DATA;
            break;
        }
    }
    *run = lim;
    return 0;
}

static bool pool_all_zero(const uint8_t *buf, size_t len)
{
    return len == 0 || (buf[0] == 0 && !memcmp(buf, buf + 1, len - 1));
}

/* Copies what src reads as, sparse, into the new empty file `fd` (/proc/self/fd path
 * `dpath`) as an image of `fmt` and `size` bytes (>= src's length). */
int pool_copy(struct block *src, int fd, const char *dpath, enum pool_format fmt, uint64_t size,
              const char *key, char *err)
{
    const uint64_t len = block_length(src);
    char inner[BLOCK_ERR_LEN] = "";
    struct block *dst = NULL;
    uint8_t *buf;
    uint64_t off = 0, run;
    bool data;
    int ret = 0;

    buf = malloc(POOL_COPY_CHUNK);
    if (!buf) {
        pool_set_error(err, "volume %s: out of memory", key);
        return -ENOMEM;
    }
    if (fmt == POOL_FORMAT_RAW) {
        if (ftruncate(fd, (off_t)size) < 0) {
            ret = -errno;
            pool_set_error(err, "volume %s: cannot size to %llu bytes: %s", key,
                           (unsigned long long)size, strerror(errno));
            goto free_buf;
        }
    } else {
        ret = block_create_qcow2(dpath, size, 0, NULL, NULL, inner);
        if (ret == 0)
            ret = block_open(dpath, "qcow2", false, &dst, inner);
        if (ret < 0) {
            pool_block_error(err, key, inner);
            goto free_buf;
        }
    }
    while (off < len) {
        uint64_t n = len - off < POOL_COPY_CHUNK ? len - off : POOL_COPY_CHUNK;

        ret = pool_chain_map(src, off, n, &data, &run);
        if (ret == 0 && data)
            ret = block_read(src, off, buf, run);
        if (ret < 0) {
            pool_set_error(err, "volume %s: reading the source at offset %llu: %s", key,
                           (unsigned long long)off, strerror(-ret));
            goto close_dst;
        }
        if (data && !pool_all_zero(buf, run)) {
            if (dst) {
                ret = block_write(dst, off, buf, run);
            } else {
                for (size_t done = 0; done < run && ret == 0;) {
                    ssize_t w = pwrite(fd, buf + done, run - done, (off_t)(off + done));

                    if (w > 0)
                        done += (size_t)w;
                    else if (w < 0 && errno != EINTR)
                        ret = -errno;
                    else if (w == 0)
                        ret = -EIO;
                }
            }
            if (ret < 0) {
                pool_set_error(err, "volume %s: writing at offset %llu: %s", key,
                               (unsigned long long)off, strerror(-ret));
                goto close_dst;
            }
        }
        off += run;
    }
    if (dst) {
        ret = block_flush(dst);
        if (ret < 0)
            pool_set_error(err, "volume %s: flushing the new image: %s", key, strerror(-ret));
    }

close_dst:
    block_close(dst);
free_buf:
    free(buf);
    return ret;
}

int volume_clone_full(struct pool *p, const char *src_key, const char *dst_key, char *err)
{
    char tmp[POOL_FILE_LEN], tpath[PATH_MAX], rel[PATH_MAX], inner[BLOCK_ERR_LEN] = "";
    struct block *src;
    struct pool_vol s, d;
    unsigned depth;
    int fd, ret;

    ret = pool_vol_find(p, src_key, &s, err);
    if (ret < 0)
        return ret;
    ret = pool_check_key(dst_key, err);
    if (ret < 0)
        goto release_src;
    /* Every layer checked to be a file of the pool before the block layer opens the chain. */
    pool_vol_rel(&s, s.file, rel, sizeof(rel));
    ret = pool_chain_depth(p, rel, src_key, &depth, err);
    if (ret < 0)
        goto release_src;
    ret = block_open(s.path, pool_format_name(s.fmt), true, &src, inner);
    if (ret < 0) {
        pool_block_error(err, src_key, inner);
        goto release_src;
    }
    ret = pool_vol_resolve(p, dst_key, true, &d, err);
    if (ret < 0)
        goto close_src;
    ret = pool_vol_check_free(&d, err);
    if (ret < 0)
        goto release_dst;
    pool_vol_set_file(&d, s.fmt);
    ret = pool_vol_create_tmp(&d, tmp, sizeof(tmp), &fd, tpath, err);
    if (ret < 0)
        goto release_dst;
    ret = pool_copy(src, fd, tpath, s.fmt, block_length(src), dst_key, err);
    if (ret == 0)
        ret = pool_vol_commit_tmp(&d, fd, tmp, d.file, false, err);
    if (ret < 0)
        unlinkat(d.dirfd, tmp, 0);
    close(fd);
release_dst:
    pool_vol_release(&d);
close_src:
    block_close(src);
release_src:
    pool_vol_release(&s);
    return ret;
}

int volume_resize(struct pool *p, const char *key, uint64_t new_size, char *err)
{
    char inner[BLOCK_ERR_LEN] = "";
    uint64_t cur;
    struct pool_vol v;
    int ret;

    ret = pool_vol_find(p, key, &v, err);
    if (ret < 0)
        return ret;
    ret = pool_check_size(key, new_size, err);
    if (ret == 0)
        ret = pool_vol_size_of(&v, v.file, v.fmt, &cur, err);
    if (ret < 0)
        goto release;
    if (new_size < cur) {
        pool_set_error(err,
                       "volume %s: shrinking loses data (size %llu is below the current %llu "
                       "bytes)",
                       key, (unsigned long long)new_size, (unsigned long long)cur);
        ret = -EINVAL;
        goto release;
    }
    if (new_size == cur)
        goto release;
    ret = block_grow(v.path, pool_format_name(v.fmt), new_size, inner);
    if (ret == -EBUSY)
        pool_set_error(err, "volume %s is in use (its image is open, e.g. by a running VM)", key);
    else if (ret < 0)
        pool_block_error(err, key, inner);
release:
    pool_vol_release(&v);
    return ret;
}

/* ---- Who depends on whom ---- */

static int pool_collect_dep(struct pool_scan *sc, const char *rel, const struct stat *st,
                            const char *brel)
{
    struct pool_deps *dp = sc->arg;
    char fam[POOL_KEY_LEN], snap[POOL_SNAP_LEN], bfam[POOL_KEY_LEN], bsnap[POOL_SNAP_LEN];
    const char *add;
    char **grown;

    if (!brel[0] || !pool_family(rel, fam, snap))
        return 0;
    if (dp->target) {
        if (strcmp(brel, dp->target))
            return 0;
        add = rel;
    } else {
        if (!pool_family(brel, bfam, bsnap) || strcmp(bfam, dp->key) || !strcmp(fam, dp->key))
            return 0;
        for (unsigned i = 0; i < dp->count; i++)
            if (!strcmp(dp->keys[i], fam))
                return 0;
        add = fam;
    }
    grown = realloc(dp->keys, (dp->count + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    dp->keys = grown;
    dp->keys[dp->count] = strdup(add);
    if (!dp->keys[dp->count])
        return -ENOMEM;
    dp->count++;
    return 0;
}

void pool_keys_free(char **keys, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        free(keys[i]);
    free(keys);
}

/* Every qcow2 file of the pool backed by key's files (dp.key) or by file dp.target. */
int pool_find_deps(struct pool *p, struct pool_deps *dp, char *err)
{
    struct pool_scan sc = {.backing = true, .each = pool_collect_dep, .arg = dp};
    int ret = pool_scan(p, &sc);

    if (ret < 0) {
        pool_keys_free(dp->keys, dp->count);
        dp->keys = NULL;
        dp->count = 0;
        pool_set_error(err, "volume %s: reading the pool's images: %s", dp->key, strerror(-ret));
    }
    return ret;
}

int volume_dependants(struct pool *p, const char *key, char ***keys, unsigned *count, char *err)
{
    struct pool_deps dp = {.key = key};
    struct pool_vol v;
    int ret;

    ret = pool_vol_find(p, key, &v, err);
    if (ret < 0)
        return ret;
    pool_vol_release(&v);
    ret = pool_find_deps(p, &dp, err);
    if (ret < 0)
        return ret;
    *keys = dp.keys;
    *count = dp.count;
    return 0;
}

/* -EBUSY, naming them, when other volumes are backed by key's files. */
int pool_refuse_deps(struct pool *p, const char *key, const char *what, char *err)
{
    struct pool_deps dp = {.key = key};
    char names[200] = "";
    size_t o = 0;
    int ret = pool_find_deps(p, &dp, err);

    if (ret < 0 || dp.count == 0)
        return ret;
    for (unsigned i = 0; i < dp.count && o < sizeof(names); i++)
        o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "", dp.keys[i]);
    pool_set_error(err, "volume %s cannot be %s: %u linked clone%s depend%s on it (%s)", key, what,
                   dp.count, dp.count == 1 ? "" : "s", dp.count == 1 ? "s" : "", names);
    pool_keys_free(dp.keys, dp.count);
    return -EBUSY;
}

/* Calls each(v, name of layer, snapshot name, arg) for every snapshot layer of v. */
int pool_vol_each_layer(struct pool_vol *v,
                        int (*each)(struct pool_vol *, const char *, const char *, void *),
                        void *arg)
{
    struct dirent *de;
    DIR *d;
    int fd2 = fcntl(v->dirfd, F_DUPFD_CLOEXEC, 0), ret = 0;

    if (fd2 < 0)
        return -errno;
    d = fdopendir(fd2);
    if (!d) {
        ret = -errno;
        close(fd2);
        return ret;
    }
    /* The duplicate shares the folder descriptor's position: start from the top. */
    rewinddir(d);
    while (ret == 0 && (de = readdir(d))) {
        char leaf[POOL_KEY_LEN], snap[POOL_SNAP_LEN];
        enum pool_format fmt;

        if (pool_parse_file(de->d_name, leaf, snap, &fmt) && snap[0] && !strcmp(leaf, v->leaf))
            ret = each(v, de->d_name, snap, arg);
    }
    closedir(d);
    return ret;
}

int pool_vol_add_layer(struct pool_vol *v, const char *name, const char *snap, void *arg)
{
    struct pool_vol_usage *u = arg;
    struct stat st;

    if (fstatat(v->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        u->bytes += (uint64_t)st.st_blocks * 512;
        u->layers++;
    }
    return 0;
}

int volume_info(struct pool *p, const char *key, struct volume_info *info, char *err)
{
    char cur[PATH_MAX], next[PATH_MAX];
    struct pool_vol_usage u = {0};
    struct stat st;
    struct pool_vol v;
    int ret;

    memset(info, 0, sizeof(*info));
    ret = pool_vol_find(p, key, &v, err);
    if (ret < 0)
        return ret;
    info->format = v.fmt;
    ret = pool_vol_size_of(&v, v.file, v.fmt, &info->size_bytes, err);
    if (ret < 0)
        goto release;
    if (fstatat(v.dirfd, v.file, &st, AT_SYMLINK_NOFOLLOW) == 0)
        u.bytes = (uint64_t)st.st_blocks * 512;
    ret = pool_vol_each_layer(&v, pool_vol_add_layer, &u);
    if (ret < 0) {
        pool_set_error(err, "volume %s: listing its snapshots: %s", key, strerror(-ret));
        goto release;
    }
    info->allocated_bytes = u.bytes;
    info->snapshots = u.layers;
    if (v.fmt != POOL_FORMAT_QCOW2)
        goto release;
    /* Down the chain: first the volume's own snapshot layers, then another volume's file. */
    ret = pool_backing_rel(v.dirfd, v.folder, v.file, key, next, sizeof(next), err);
    for (unsigned depth = 0; ret == 0 && next[0] && depth < BLOCK_MAX_CHAIN_DEPTH; depth++) {
        char fam[POOL_KEY_LEN], snap[POOL_SNAP_LEN], folder[PATH_MAX];
        const char *slash;
        struct pool_vol b = {.key = key, .dirfd = -1};

        if (!pool_family(next, fam, snap))
            break;
        if (strcmp(fam, key)) {
            snprintf(info->backing, sizeof(info->backing), "%s", fam);
            break;
        }
        if (depth == 0)
            snprintf(info->snapshot, sizeof(info->snapshot), "%s", snap);
        snprintf(cur, sizeof(cur), "%s", next);
        slash = strrchr(cur, '/');
        snprintf(folder, sizeof(folder), "%.*s", slash ? (int)(slash - cur) : 0, cur);
        ret = pool_open_folder(p, folder, false, &b.dirfd, key, err);
        if (ret == 0) {
            ret = pool_backing_rel(b.dirfd, folder, slash ? slash + 1 : cur, key, next,
                                   sizeof(next), err);
            pool_vol_release(&b);
        }
    }
release:
    pool_vol_release(&v);
    return ret;
}

static int pool_vol_delete_layer(struct pool_vol *v, const char *name, const char *snap, void *arg)
{
    if (unlinkat(v->dirfd, name, 0) < 0 && errno != ENOENT) {
        pool_set_error(arg, "volume %s: removing snapshot %s: %s", v->key, snap, strerror(errno));
        return -errno;
    }
    return 0;
}

int volume_delete(struct pool *p, const char *key, char *err)
{
    struct pool_vol v;
    int lock, ret;

    ret = pool_vol_find(p, key, &v, err);
    if (ret < 0)
        return ret;
    ret = pool_refuse_deps(p, key, "deleted", err);
    if (ret < 0)
        goto release;
    ret = pool_vol_lock(&v, &lock, err);
    if (ret < 0)
        goto release;
    /* Layers first: a crash half-way leaves the volume (to delete again), never snapshot
     * layers that a new volume of the same name would take for its own. */
    ret = pool_vol_each_layer(&v, pool_vol_delete_layer, err);
    if (ret == 0 && unlinkat(v.dirfd, v.file, 0) < 0) {
        ret = -errno;
        pool_set_error(err, "volume %s: removing %s: %s", key, v.file, strerror(errno));
    }
    if (ret == 0 && fsync(v.dirfd) < 0)
        log_warn("pool: volume %s: fsync of its folder: %s", key, strerror(errno));
    close(lock);
release:
    pool_vol_release(&v);
    return ret;
}
