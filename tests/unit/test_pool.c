/* Storage pools and volumes (daemon/pool.h) on a temporary folder, with the block layer for
 * the data and QEMU's tools as the judge: every qcow2 the pool writes passes `qemu-img check`,
 * clones and imports read as their sources (`qemu-img compare`). Hostile cases: keys that
 * climb out, symlinks planted in the pool, uploads that name /etc/passwd as their backing file,
 * use an external data file, are truncated or claim a huge size. Also prints the median time
 * of 20 linked clones (measured, not asserted). Needs qemu-img (scripts/install-deps.sh). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "daemon/pool.h"
#include "test.h"

static char tmpdir[256], pooldir[300];
static struct pool *pool;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static bool exists(const char *rel)
{
    char path[600];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", pooldir, rel);
    return lstat(path, &st) == 0;
}

static uint64_t allocated(const char *rel)
{
    char path[600];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", pooldir, rel);
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : UINT64_MAX;
}

/* `qemu-img check` of a pool file: 0 when clean (the report goes to stderr otherwise). */
static int qcheck(const char *rel)
{
    int st = sh("qemu-img check -q '%s/%s' >/dev/null 2>&1", pooldir, rel);

    if (st != 0)
        sh("qemu-img check '%s/%s' >&2", pooldir, rel);
    return st;
}

/* Writes `len` bytes of `byte` at `off` of volume key, through the block layer. */
static int vol_fill(const char *key, uint64_t off, uint8_t byte, size_t len)
{
    char path[600], err[POOL_ERR_LEN] = "", berr[BLOCK_ERR_LEN] = "";
    struct volume_info info;
    struct block *bs;
    uint8_t *buf = malloc(len);
    int ret;

    if (!buf)
        return -ENOMEM;
    memset(buf, byte, len);
    ret = volume_path(pool, key, path, sizeof(path), err);
    if (ret == 0)
        ret = volume_info(pool, key, &info, err);
    if (ret == 0)
        ret = block_open(path, pool_format_name(info.format), false, &bs, berr);
    if (ret == 0) {
        ret = block_write(bs, off, buf, len);
        if (ret == 0)
            ret = block_flush(bs);
        block_close(bs);
    }
    if (ret < 0)
        fprintf(stderr, "fill %s: %d %s %s\n", key, ret, err, berr);
    free(buf);
    return ret;
}

/* The byte at `off` of volume key as a VM would read it (its chain opened by path), or -1. */
static int vol_byte(const char *key, uint64_t off)
{
    char path[600], err[POOL_ERR_LEN] = "", berr[BLOCK_ERR_LEN] = "";
    struct volume_info info;
    struct block *bs;
    uint8_t b = 0;
    int ret;

    ret = volume_path(pool, key, path, sizeof(path), err);
    if (ret == 0)
        ret = volume_info(pool, key, &info, err);
    if (ret == 0)
        ret = block_open(path, pool_format_name(info.format), true, &bs, berr);
    if (ret == 0) {
        ret = block_read(bs, off, &b, 1);
        block_close(bs);
    }
    if (ret < 0)
        fprintf(stderr, "read %s: %d %s %s\n", key, ret, err, berr);
    return ret < 0 ? -1 : b;
}

static void test_keys(void)
{
    static const char *const bad[] = {"",   "/etc/passwd", "..",  "a/../b", "../x", "a//b",
                                      "a/", "A",           "a.b", "a b",    "a\\b", "tenant/vm\n"};
    static const char *const good[] = {"t1/vm-1_x", "_shared/tmpl", "a", "a/b/c"};
    char err[POOL_ERR_LEN], longkey[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(pool_check_key(bad[i], err) == -EINVAL);
        CHECK(strstr(err, "volume key") != NULL);
        CHECK(volume_create(pool, bad[i], POOL_FORMAT_RAW, 4096, err) == -EINVAL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(pool_check_key(good[i], err) == 0);
    memset(longkey, 'a', 256);
    longkey[256] = '\0';
    CHECK(pool_check_key(longkey, err) == -EINVAL);
    CHECK(pool_check_key("/etc/passwd", err) == -EINVAL && strstr(err, "absolute"));
    CHECK(pool_check_key("a/../b", err) == -EINVAL && strstr(err, "'..'"));
    /* Nothing escaped: no file appeared next to the pool. */
    CHECK(sh("test -z \"$(ls -A '%s' | grep -v '^pool$')\"", tmpdir) == 0);
}

static void test_create_info_stats(void)
{
    char err[POOL_ERR_LEN] = "";
    struct volume_info info;
    uint64_t cap = 0, used0 = 0, used1 = 0;

    CHECK(pool_stats(pool, &cap, &used0, err) == 0);
    CHECK(cap > 0);
    CHECK(volume_create(pool, "t1/disk", POOL_FORMAT_QCOW2, 64 << 20, err) == 0);
    CHECK(exists("t1/disk.qcow2"));
    CHECK(qcheck("t1/disk.qcow2") == 0);
    CHECK(
        sh("qemu-img info --output=json '%s/t1/disk.qcow2' | grep -q '\"virtual-size\": 67108864'",
           pooldir) == 0);
    CHECK(volume_create(pool, "t1/raw", POOL_FORMAT_RAW, 1ull << 30, err) == 0);
    CHECK(allocated("t1/raw.raw") < (1 << 20)); /* sparse */
    /* A key is one volume, whatever the format. */
    CHECK(volume_create(pool, "t1/disk", POOL_FORMAT_RAW, 4096, err) == -EEXIST);
    CHECK(strstr(err, "t1/disk") && strstr(err, "exists"));
    CHECK(volume_create(pool, "t1/raw", POOL_FORMAT_QCOW2, 4096, err) == -EEXIST);
    CHECK(volume_create(pool, "t1/odd", POOL_FORMAT_RAW, 1000, err) == -EINVAL);
    CHECK(volume_create(pool, "t1/zero", POOL_FORMAT_QCOW2, 0, err) == -EINVAL);

    CHECK(volume_info(pool, "t1/disk", &info, err) == 0);
    CHECK(info.format == POOL_FORMAT_QCOW2);
    CHECK_EQ_U64(info.size_bytes, 64 << 20);
    CHECK(info.allocated_bytes > 0 && info.allocated_bytes < (1 << 20));
    CHECK(info.backing[0] == '\0' && info.snapshot[0] == '\0' && info.snapshots == 0);
    CHECK(volume_info(pool, "t1/raw", &info, err) == 0);
    CHECK(info.format == POOL_FORMAT_RAW);
    CHECK_EQ_U64(info.size_bytes, 1ull << 30);
    CHECK(volume_info(pool, "t1/none", &info, err) == -ENOENT);
    CHECK(strstr(err, "t1/none") && strstr(err, "does not exist"));
    CHECK(volume_info(pool, "t9/none", &info, err) == -ENOENT);

    CHECK(vol_fill("t1/raw", 0, 0xab, 4 << 20) == 0);
    CHECK(pool_stats(pool, &cap, &used1, err) == 0);
    CHECK(used1 >= used0 + (4 << 20));
}

static void test_linked_clone(void)
{
    char err[POOL_ERR_LEN] = "", **keys = NULL;
    struct volume_info info;
    unsigned n = 0;

    CHECK(volume_create(pool, "_shared/tmpl", POOL_FORMAT_QCOW2, 32 << 20, err) == 0);
    CHECK(vol_fill("_shared/tmpl", 1 << 20, 0x5a, 3 << 20) == 0);
    CHECK(volume_clone_linked(pool, "_shared/tmpl", "t1/vm1", err) == 0);
    CHECK(allocated("t1/vm1.qcow2") < (1 << 20));
    CHECK(qcheck("t1/vm1.qcow2") == 0);
    /* QEMU resolves the backing name as the block layer does: the same bytes. */
    CHECK(sh("qemu-img compare -q '%s/t1/vm1.qcow2' '%s/_shared/tmpl.qcow2'", pooldir, pooldir) ==
          0);
    CHECK(vol_byte("t1/vm1", 2 << 20) == 0x5a);
    CHECK(vol_fill("t1/vm1", 2 << 20, 0x11, 4096) == 0);
    CHECK(vol_byte("t1/vm1", 2 << 20) == 0x11);
    CHECK(vol_byte("_shared/tmpl", 2 << 20) == 0x5a);
    CHECK(volume_info(pool, "t1/vm1", &info, err) == 0);
    CHECK(!strcmp(info.backing, "_shared/tmpl"));
    CHECK_EQ_U64(info.size_bytes, 32 << 20);
    /* A clone of a raw volume, one folder deeper. */
    CHECK(volume_clone_linked(pool, "t1/raw", "t2/deep/c", err) == 0);
    CHECK(vol_byte("t2/deep/c", 100) == 0xab);
    CHECK(qcheck("t2/deep/c.qcow2") == 0);

    CHECK(volume_dependants(pool, "_shared/tmpl", &keys, &n, err) == 0);
    CHECK(n == 1 && !strcmp(keys[0], "t1/vm1"));
    pool_keys_free(keys, n);
    /* The source is in use now. */
    CHECK(volume_delete(pool, "_shared/tmpl", err) == -EBUSY);
    CHECK(strstr(err, "t1/vm1") != NULL);
    CHECK(volume_snapshot_create(pool, "_shared/tmpl", "s", err) == -EBUSY);
    CHECK(exists("_shared/tmpl.qcow2"));
    CHECK(volume_clone_linked(pool, "_shared/tmpl", "t1/vm1", err) == -EEXIST);
    CHECK(volume_clone_linked(pool, "_shared/nope", "t1/vm9", err) == -ENOENT);
    CHECK(volume_clone_linked(pool, "_shared/tmpl", "../x", err) == -EINVAL);
}

static void test_full_clone(void)
{
    char err[POOL_ERR_LEN] = "";
    struct volume_info info;

    CHECK(volume_clone_full(pool, "t1/vm1", "t1/full", err) == 0);
    CHECK(qcheck("t1/full.qcow2") == 0);
    CHECK(volume_info(pool, "t1/full", &info, err) == 0);
    CHECK(info.backing[0] == '\0');
    CHECK(sh("qemu-img info '%s/t1/full.qcow2' | grep -q backing", pooldir) != 0);
    CHECK(sh("qemu-img compare -q '%s/t1/full.qcow2' '%s/t1/vm1.qcow2'", pooldir, pooldir) == 0);
    /* Sparse: about the 3 MiB of data, not the 32 MiB disk. */
    CHECK(info.allocated_bytes < (6 << 20));
    CHECK(volume_clone_full(pool, "t1/raw", "t1/rawcopy", err) == 0);
    CHECK(volume_info(pool, "t1/rawcopy", &info, err) == 0);
    CHECK(info.format == POOL_FORMAT_RAW && info.size_bytes == 1ull << 30);
    CHECK(info.allocated_bytes < (8 << 20));
    CHECK(sh("cmp -s '%s/t1/rawcopy.raw' '%s/t1/raw.raw'", pooldir, pooldir) == 0);
    CHECK(volume_clone_full(pool, "t1/raw", "t1/rawcopy", err) == -EEXIST);
}

static void test_resize(void)
{
    char err[POOL_ERR_LEN] = "", path[600], berr[BLOCK_ERR_LEN] = "";
    struct volume_info info;

    CHECK(volume_resize(pool, "t1/full", 1ull << 40, err) == 0);
    CHECK(qcheck("t1/full.qcow2") == 0);
    CHECK(sh("qemu-img info --output=json '%s/t1/full.qcow2' | grep -q '\"virtual-size\": "
             "1099511627776'",
             pooldir) == 0);
    CHECK(vol_byte("t1/full", 2 << 20) == 0x11);
    CHECK(vol_fill("t1/full", (1ull << 40) - 4096, 0x77, 4096) == 0);
    CHECK(vol_byte("t1/full", (1ull << 40) - 1) == 0x77);
    CHECK(qcheck("t1/full.qcow2") == 0);
    CHECK(volume_resize(pool, "t1/full", 1ull << 30, err) == -EINVAL);
    CHECK(strstr(err, "t1/full") && strstr(err, "shrinking loses data"));
    /* Past what the L1 table's cluster can map (4 TiB with 64 KiB clusters). */
    CHECK(volume_resize(pool, "t1/full", 5ull << 40, err) == -EFBIG);
    CHECK(volume_resize(pool, "t1/rawcopy", 2ull << 30, err) == 0);
    CHECK(volume_info(pool, "t1/rawcopy", &info, err) == 0 && info.size_bytes == 2ull << 30);
    CHECK(volume_resize(pool, "t1/rawcopy", 1ull << 30, err) == -EINVAL);
    CHECK(volume_resize(pool, "t1/rawcopy", (2ull << 30) + 1, err) == -EINVAL);
    /* An image QEMU laid out (imported images are ours, but the block layer takes any). */
    CHECK(sh("qemu-img create -q -f qcow2 '%s/q.qcow2' 1M && qemu-img create -q -f qcow2 -o "
             "cluster_size=4096 '%s/s.qcow2' 1M",
             tmpdir, tmpdir) == 0);
    snprintf(path, sizeof(path), "%s/q.qcow2", tmpdir);
    CHECK(block_grow(path, "qcow2", 1ull << 40, berr) == 0);
    CHECK(sh("qemu-img check -q '%s/q.qcow2'", tmpdir) == 0);
    CHECK(block_grow(path, "qcow2", 1ull << 20, berr) == -EINVAL);
    {
        struct block *bs = NULL;
        uint8_t sector[512];

        memset(sector, 0x42, sizeof(sector));
        CHECK(block_open(path, "qcow2", false, &bs, berr) == 0);
        CHECK(bs && block_write(bs, (1ull << 40) - 512, sector, 512) == 0);
        CHECK(bs && block_flush(bs) == 0);
        block_close(bs);
        CHECK(sh("qemu-img check -q '%s/q.qcow2'", tmpdir) == 0);
    }
    /* 4 KiB clusters: one L1 cluster maps 512 * 512 * 4 KiB = 1 GiB. */
    snprintf(path, sizeof(path), "%s/s.qcow2", tmpdir);
    CHECK(block_grow(path, "qcow2", 1ull << 30, berr) == 0);
    CHECK(block_grow(path, "qcow2", 2ull << 30, berr) == -EFBIG);
    CHECK(strstr(berr, "full clone") != NULL);
    CHECK(sh("qemu-img check -q '%s/s.qcow2' && qemu-img info '%s/s.qcow2' | grep -q 'virtual "
             "size: 1 GiB'",
             tmpdir, tmpdir) == 0);
    /* A linked clone grows above its backing file: the new range reads as zeroes. */
    CHECK(volume_resize(pool, "t1/vm1", 64 << 20, err) == 0);
    CHECK(qcheck("t1/vm1.qcow2") == 0);
    CHECK(vol_byte("t1/vm1", (48 << 20)) == 0);
    CHECK(vol_byte("t1/vm1", (2 << 20)) == 0x11);
}

/* A file in tmpdir made by a shell command; returns its descriptor. */
static int upload(const char *name, const char *cmd)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if (cmd && sh("cd '%s' && %s >/dev/null 2>&1", tmpdir, cmd) != 0)
        fprintf(stderr, "upload %s: '%s' failed\n", name, cmd);
    return open(path, O_RDONLY | O_CLOEXEC);
}

static void test_import(void)
{
    char err[POOL_ERR_LEN] = "";
    struct volume_info info;
    int fd;

    /* A raw image, into qcow2. */
    fd = upload("up.raw", "head -c 3145728 /dev/urandom > up.raw && truncate -s 16M up.raw");
    CHECK(volume_import(pool, "t3/imp", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == 0);
    close(fd);
    CHECK(qcheck("t3/imp.qcow2") == 0);
    CHECK(sh("qemu-img compare -q -F raw '%s/t3/imp.qcow2' '%s/up.raw'", pooldir, tmpdir) == 0);
    CHECK(volume_info(pool, "t3/imp", &info, err) == 0 && info.size_bytes == 16 << 20);
    CHECK(info.allocated_bytes < (5 << 20));
    /* A qcow2 image (QEMU's, compressed), into raw, replacing the volume. */
    fd = upload("up.qcow2", "qemu-img convert -c -f raw -O qcow2 up.raw up.qcow2");
    CHECK(volume_import(pool, "t3/imp", POOL_FORMAT_RAW, fd, 1ull << 30, err) == 0);
    close(fd);
    CHECK(!exists("t3/imp.qcow2") && exists("t3/imp.raw"));
    CHECK(sh("cmp -s '%s/t3/imp.raw' '%s/up.raw'", pooldir, tmpdir) == 0);

    /* A backing file on the host: refused before anything reads it. */
    fd = upload("evil.qcow2", "qemu-img create -f qcow2 -b /etc/passwd -F raw evil.qcow2 1M");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == -EPERM);
    CHECK(strstr(err, "backing file") && strstr(err, "/etc/passwd") && strstr(err, "t3/evil"));
    close(fd);
    CHECK(!exists("t3/evil.qcow2") && !exists("t3/evil.raw"));
    /* An external data file: refused. */
    fd = upload("ext.qcow2", "qemu-img create -f qcow2 -o data_file=ext.data ext.qcow2 1M");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == -EPERM);
    CHECK(strstr(err, "external data file") != NULL);
    close(fd);
    /* A huge virtual size over the cap. */
    fd = upload("huge.qcow2", "qemu-img create -f qcow2 huge.qcow2 1P");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == -EFBIG);
    CHECK(strstr(err, "too large") != NULL);
    close(fd);
    /* Truncated: the header alone, and half the data clusters gone. */
    fd = upload("trunc.qcow2", "head -c 100 up.qcow2 > trunc.qcow2");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == -EINVAL);
    CHECK(strstr(err, "upload") != NULL);
    close(fd);
    fd = upload("half.qcow2", "qemu-img convert -f raw -O qcow2 up.raw half.qcow2 && "
                              "truncate -s 1M half.qcow2");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) < 0);
    close(fd);
    CHECK(!exists("t3/evil.qcow2") && !exists("t3/evil.raw") && !exists("t3/.evil.tmp"));
    /* Garbage that happens to start with the magic. */
    fd = upload("junk.qcow2", "printf 'QFI\\373' > junk.qcow2 && head -c 4096 /dev/urandom >> "
                              "junk.qcow2");
    CHECK(volume_import(pool, "t3/evil", POOL_FORMAT_RAW, fd, 1ull << 30, err) == -EINVAL);
    close(fd);
    CHECK(volume_import(pool, "../evil", POOL_FORMAT_RAW, 0, 1ull << 30, err) == -EINVAL);
    /* A volume that others depend on is not replaced. */
    fd = upload("up.raw", NULL);
    CHECK(volume_import(pool, "_shared/tmpl", POOL_FORMAT_QCOW2, fd, 1ull << 30, err) == -EBUSY);
    close(fd);
}

static void test_symlinks(void)
{
    char err[POOL_ERR_LEN] = "", out[600];
    struct volume_info info;
    int fd;

    CHECK(sh("mkdir -p '%s/outside' && echo secret > '%s/outside/target'", tmpdir, tmpdir) == 0);
    /* A folder of the key is a symlink out of the pool. */
    CHECK(sh("ln -s '%s/outside' '%s/evil'", tmpdir, pooldir) == 0);
    CHECK(volume_create(pool, "evil/x", POOL_FORMAT_RAW, 4096, err) == -ELOOP);
    CHECK(strstr(err, "symlink") != NULL);
    CHECK(volume_info(pool, "evil/target", &info, err) == -ELOOP);
    CHECK(sh("test \"$(ls '%s/outside')\" = target", tmpdir) == 0);
    /* The image itself is a symlink to a host file. */
    CHECK(sh("mkdir -p '%s/t4' && ln -s '%s/outside/target' '%s/t4/x.raw'", pooldir, tmpdir,
             pooldir) == 0);
    CHECK(volume_info(pool, "t4/x", &info, err) == -ELOOP);
    CHECK(volume_resize(pool, "t4/x", 1 << 20, err) == -ELOOP);
    CHECK(volume_delete(pool, "t4/x", err) == -ELOOP);
    CHECK(volume_clone_full(pool, "t4/x", "t4/y", err) == -ELOOP);
    CHECK(volume_clone_linked(pool, "t4/x", "t4/y", err) == -ELOOP);
    CHECK(volume_create(pool, "t4/x", POOL_FORMAT_QCOW2, 4096, err) == -ELOOP);
    CHECK(volume_path(pool, "t4/x", out, sizeof(out), err) == -ELOOP);
    fd = upload("up.raw", NULL);
    CHECK(volume_import(pool, "t4/x", POOL_FORMAT_RAW, fd, 1ull << 30, err) == -ELOOP);
    /* The temporary name planted as a symlink: removed, never written through. */
    CHECK(sh("ln -s '%s/outside/target' '%s/t4/.z.tmp'", tmpdir, pooldir) == 0);
    CHECK(volume_import(pool, "t4/z", POOL_FORMAT_RAW, fd, 1ull << 30, err) == 0);
    close(fd);
    CHECK(sh("test \"$(cat '%s/outside/target')\" = secret", tmpdir) == 0);
    CHECK(sh("test \"$(ls '%s/outside')\" = target", tmpdir) == 0);
    CHECK(sh("cmp -s '%s/t4/z.raw' '%s/up.raw'", pooldir, tmpdir) == 0);
    /* A linked clone whose backing name was made to point out of the pool (a file changed
     * behind our back) is refused before the block layer opens the chain. */
    CHECK(volume_create(pool, "t4/base", POOL_FORMAT_QCOW2, 1 << 20, err) == 0);
    CHECK(volume_clone_linked(pool, "t4/base", "t4/c", err) == 0);
    CHECK(sh("qemu-img rebase -u -F raw -b '%s/outside/target' '%s/t4/c.qcow2'", tmpdir, pooldir) ==
          0);
    CHECK(volume_clone_full(pool, "t4/c", "t4/d", err) == -EPERM);
    CHECK(strstr(err, "outside the pool") != NULL);
    CHECK(volume_clone_linked(pool, "t4/c", "t4/d", err) == -EPERM);
}

static void test_snapshots(void)
{
    char err[POOL_ERR_LEN] = "", path[600], berr[BLOCK_ERR_LEN];
    struct volume_snapshot *list = NULL;
    struct volume_info info;
    struct block *bs;
    unsigned n = 0;

    CHECK(volume_create(pool, "t5/v", POOL_FORMAT_QCOW2, 8 << 20, err) == 0);
    CHECK(vol_fill("t5/v", 0, 0xa1, 1 << 20) == 0);
    CHECK(volume_snapshot_create(pool, "t5/v", "s1", err) == 0);
    CHECK(vol_fill("t5/v", 0, 0xb2, 4096) == 0);
    CHECK(volume_snapshot_create(pool, "t5/v", "s2", err) == 0);
    CHECK(volume_snapshot_create(pool, "t5/v", "s2", err) == -EEXIST);
    CHECK(volume_snapshot_create(pool, "t5/v", "../x", err) == -EINVAL);
    CHECK(vol_fill("t5/v", 0, 0xc3, 4096) == 0);
    CHECK(qcheck("t5/v.qcow2") == 0 && qcheck("t5/v@s1.qcow2") == 0 &&
          qcheck("t5/v@s2.qcow2") == 0);
    /* The chain as QEMU sees it: v -> s2 -> s1, none with internal snapshots of its own. */
    CHECK(sh("qemu-img info --backing-chain '%s/t5/v.qcow2' | grep -c '^image:' | grep -qx 3",
             pooldir) == 0);
    CHECK(sh("test -z \"$(qemu-img snapshot -l '%s/t5/v.qcow2')\"", pooldir) == 0);
    CHECK(volume_snapshot_list(pool, "t5/v", &list, &n, err) == 0);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(!strcmp(list[0].name, "s1") && !list[0].current);
        CHECK(!strcmp(list[1].name, "s2") && list[1].current);
        CHECK(list[0].size_bytes == 8 << 20 && list[0].allocated_bytes >= 1 << 20);
    }
    free(list);
    CHECK(volume_info(pool, "t5/v", &info, err) == 0);
    CHECK(info.snapshots == 2 && !strcmp(info.snapshot, "s2") && info.backing[0] == '\0');
    CHECK(vol_byte("t5/v", 0) == 0xc3);

    /* In use: a VM's writable open locks the image. */
    CHECK(volume_path(pool, "t5/v", path, sizeof(path), err) == 0);
    CHECK(block_open(path, "qcow2", false, &bs, berr) == 0);
    CHECK(volume_snapshot_create(pool, "t5/v", "s3", err) == -EBUSY);
    CHECK(strstr(err, "in use") != NULL);
    CHECK(volume_clone_linked(pool, "t5/v", "t5/clone", err) == -EBUSY);
    CHECK(!exists("t5/clone.qcow2") && !exists("t5/.clone.tmp"));
    CHECK(volume_snapshot_revert(pool, "t5/v", "s1", err) == -EBUSY);
    CHECK(volume_resize(pool, "t5/v", 16 << 20, err) == -EBUSY);
    CHECK(volume_delete(pool, "t5/v", err) == -EBUSY);
    block_close(bs);

    /* Delete the middle one: s2 is merged into s1's place, v reads the same. */
    CHECK(volume_snapshot_delete(pool, "t5/v", "s1", err) == 0);
    CHECK(!exists("t5/v@s1.qcow2") && exists("t5/v@s2.qcow2"));
    CHECK(qcheck("t5/v@s2.qcow2") == 0 && qcheck("t5/v.qcow2") == 0);
    CHECK(vol_byte("t5/v", 0) == 0xc3 && vol_byte("t5/v", 8192) == 0xa1);
    /* Revert to s2: reads as then; the snapshot stays. */
    CHECK(volume_snapshot_revert(pool, "t5/v", "s2", err) == 0);
    CHECK(vol_byte("t5/v", 0) == 0xb2 && vol_byte("t5/v", 8192) == 0xa1);
    CHECK(qcheck("t5/v.qcow2") == 0);
    CHECK(volume_snapshot_revert(pool, "t5/v", "nope", err) == -ENOENT);
    /* Branches: s3 after the revert, then revert to s2 again: two layers grow from s2. */
    CHECK(volume_snapshot_create(pool, "t5/v", "s3", err) == 0);
    CHECK(vol_fill("t5/v", 0, 0xd4, 4096) == 0);
    CHECK(volume_snapshot_revert(pool, "t5/v", "s2", err) == 0);
    CHECK(volume_snapshot_delete(pool, "t5/v", "s2", err) == -EBUSY);
    CHECK(strstr(err, "later snapshot") != NULL);
    CHECK(volume_snapshot_delete(pool, "t5/v", "s3", err) == 0); /* nothing grows from it */
    CHECK(!exists("t5/v@s3.qcow2"));
    /* Grow, then delete the base: the merged layer takes the new size. */
    CHECK(volume_resize(pool, "t5/v", 16 << 20, err) == 0);
    CHECK(vol_fill("t5/v", 12 << 20, 0xe5, 4096) == 0);
    CHECK(volume_snapshot_delete(pool, "t5/v", "s2", err) == 0);
    CHECK(qcheck("t5/v.qcow2") == 0);
    CHECK(volume_info(pool, "t5/v", &info, err) == 0);
    CHECK(info.snapshots == 0 && info.snapshot[0] == '\0' && info.size_bytes == 16 << 20);
    CHECK(vol_byte("t5/v", 0) == 0xb2 && vol_byte("t5/v", 8192) == 0xa1 &&
          vol_byte("t5/v", 12 << 20) == 0xe5);
    CHECK(sh("qemu-img info '%s/t5/v.qcow2' | grep -q backing", pooldir) != 0);
    CHECK(volume_snapshot_create(pool, "t1/raw", "s", err) == -ENOTSUP);
    /* Deleting a volume takes its snapshots with it. */
    CHECK(volume_snapshot_create(pool, "t5/v", "last", err) == 0);
    CHECK(volume_delete(pool, "t5/v", err) == 0);
    CHECK(!exists("t5/v.qcow2") && !exists("t5/v@last.qcow2"));
    CHECK(volume_create(pool, "t5/v", POOL_FORMAT_QCOW2, 1 << 20, err) == 0);
    CHECK(volume_snapshot_list(pool, "t5/v", &list, &n, err) == 0 && n == 0);
    free(list);
}

static void test_delete(void)
{
    char err[POOL_ERR_LEN] = "";

    CHECK(volume_delete(pool, "t1/vm1", err) == 0);
    CHECK(!exists("t1/vm1.qcow2"));
    CHECK(volume_delete(pool, "_shared/tmpl", err) == 0);
    CHECK(!exists("_shared/tmpl.qcow2"));
    CHECK(volume_delete(pool, "t1/vm1", err) == -ENOENT);
    CHECK(volume_delete(pool, "../t1/raw", err) == -EINVAL);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median time of 20 linked clones of one template: reported, not asserted. */
static void measure_clone(void)
{
    char err[POOL_ERR_LEN] = "", key[64];
    double t[20];
    int ok = 0;

    CHECK(volume_create(pool, "_shared/bench", POOL_FORMAT_QCOW2, 1ull << 30, err) == 0);
    for (int i = 0; i < 20; i++) {
        double t0 = now_ms();

        snprintf(key, sizeof(key), "bench/vm%d", i);
        ok += volume_clone_linked(pool, "_shared/bench", key, err) == 0;
        t[i] = now_ms() - t0;
        snprintf(key, sizeof(key), "bench/vm%d.qcow2", i);
        CHECK(allocated(key) < (1 << 20));
    }
    CHECK(ok == 20);
    qsort(t, 20, sizeof(t[0]), cmp_double);
    printf("measure: linked clone of a 1 GiB qcow2, median of 20: %.2f ms (min %.2f, max %.2f)\n",
           (t[9] + t[10]) / 2, t[0], t[19]);
}

int main(void)
{
    char err[POOL_ERR_LEN] = "";

    if (sh("qemu-img --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_pool: qemu-img is missing (scripts/install-deps.sh)\n");
        return 1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_pool.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(pooldir, sizeof(pooldir), "%s/pool", tmpdir);
    CHECK(pool_open(pooldir, &pool, err) == 0);
    if (!pool)
        return test_finish("test_pool");
    test_keys();
    test_create_info_stats();
    test_linked_clone();
    test_full_clone();
    test_resize();
    test_import();
    test_symlinks();
    test_snapshots();
    test_delete();
    measure_clone();
    pool_close(pool);
    sh("rm -rf '%s'", tmpdir);
    return test_finish("test_pool");
}
