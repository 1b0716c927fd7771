/* The block layer's front door with the raw format: creating, probing and opening images,
 * the request checks every wrapper makes (range, overflow, read-only), reads and writes at
 * any offset and length, discard and write_zeroes reading back as zeroes, flush, the snapshot
 * list of a format without snapshots, and what block_open refuses (missing files, folders,
 * FIFOs, unknown formats, a second writer), and write tracking for block migration. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/dirty.h"
#include "block/block.h"

static char tmpdir[64];

static void tmp_path(char out[256], const char *name)
{
    snprintf(out, 256, "%s/%s", tmpdir, name);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

static void test_create_open_probe(void)
{
    char path[256], err[BLOCK_ERR_LEN] = "";
    struct block_create_opts o = {.size = 3 * 1024 * 1024 + 512};
    struct block *bs = NULL;
    struct block_snapshot_info *list = (void *)1;
    unsigned count = 99;

    tmp_path(path, "disk.raw");
    CHECK(block_create(path, "raw", &o, err) == 0);
    CHECK(block_open(path, NULL, false, &bs, err) == 0);
    if (!bs)
        return;
    CHECK(strcmp(block_format_name(bs), "raw") == 0);
    CHECK_EQ_U64(block_length(bs), 3 * 1024 * 1024 + 512);
    CHECK(!block_readonly(bs));
    CHECK(strcmp(block_path(bs), path) == 0);
    CHECK(block_snapshot_list(bs, &list, &count) == 0);
    CHECK(list == NULL && count == 0);
    block_close(bs);
    CHECK(block_open(path, "raw", true, &bs, err) == 0);
    CHECK(block_readonly(bs));
    block_close(bs);
    block_close(NULL);
}

static void test_read_write(void)
{
    char path[256], err[BLOCK_ERR_LEN] = "";
    struct block_create_opts o = {.size = 1024 * 1024};
    struct block *bs = NULL;
    uint8_t buf[10000], back[20000];

    tmp_path(path, "rw.raw");
    CHECK(block_create(path, "raw", &o, err) == 0);
    CHECK(block_open(path, "raw", false, &bs, err) == 0);
    if (!bs)
        return;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    /* Unaligned offset and length. */
    CHECK(block_write(bs, 12345, buf, sizeof(buf)) == 0);
    CHECK(block_read(bs, 12345, back, sizeof(buf)) == 0);
    CHECK(memcmp(buf, back, sizeof(buf)) == 0);
    CHECK(block_read(bs, 0, back, 12345) == 0);
    CHECK(all_bytes(back, 12345, 0));
    /* The last byte is reachable, one past it is not. */
    CHECK(block_write(bs, 1024 * 1024 - 1, buf, 1) == 0);
    CHECK(block_write(bs, 1024 * 1024 - 1, buf, 2) == -EINVAL);
    CHECK(block_read(bs, 1024 * 1024, back, 1) == -EINVAL);
    CHECK(block_read(bs, 1024 * 1024, back, 0) == 0);
    CHECK(block_read(bs, UINT64_MAX, back, 2) == -EINVAL);
    CHECK(block_discard(bs, 1024 * 1024 - 512, 1024) == -EINVAL);
    CHECK(block_write_zeroes(bs, 2, UINT64_MAX, false) == -EINVAL);
    /* Discard and write_zeroes read back as zeroes, aligned or not. */
    CHECK(block_discard(bs, 12345 + 100, 4096) == 0);
    CHECK(block_read(bs, 12345, back, sizeof(buf)) == 0);
    CHECK(memcmp(back, buf, 100) == 0);
    CHECK(all_bytes(back + 100, 4096, 0));
    CHECK(memcmp(back + 4196, buf + 4196, sizeof(buf) - 4196) == 0);
    CHECK(block_write_zeroes(bs, 12345, 50, false) == 0);
    CHECK(block_write_zeroes(bs, 12345 + 9000, 1000, true) == 0);
    CHECK(block_read(bs, 12345, back, sizeof(buf)) == 0);
    CHECK(all_bytes(back, 50, 0));
    CHECK(memcmp(back + 50, buf + 50, 50) == 0);
    CHECK(all_bytes(back + 9000, 1000, 0));
    CHECK(block_flush(bs) == 0);
    block_close(bs);
    /* Durable across close and open. */
    CHECK(block_open(path, NULL, true, &bs, err) == 0);
    if (!bs)
        return;
    CHECK(block_read(bs, 12345 + 50, back, 50) == 0);
    CHECK(memcmp(back, buf + 50, 50) == 0);
    CHECK(block_write(bs, 0, buf, 512) == -EROFS);
    CHECK(block_discard(bs, 0, 512) == -EROFS);
    CHECK(block_write_zeroes(bs, 0, 512, true) == -EROFS);
    CHECK(block_flush(bs) == 0);
    block_close(bs);
}

static void test_refusals(void)
{
    char path[256], err[BLOCK_ERR_LEN] = "";
    struct block_create_opts o = {.size = 4096};
    struct block *bs = NULL, *bs2 = NULL;

    tmp_path(path, "does-not-exist.raw");
    CHECK(block_open(path, NULL, true, &bs, err) == -ENOENT);
    CHECK(strstr(err, "does-not-exist.raw") != NULL);
    CHECK(block_open(tmpdir, NULL, true, &bs, err) == -EINVAL);
    CHECK(strstr(err, "not a regular file") != NULL);
    tmp_path(path, "fifo");
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(block_open(path, NULL, true, &bs, err) == -EINVAL);
    tmp_path(path, "x.raw");
    CHECK(block_create(path, "raw", &o, err) == 0);
    CHECK(block_open(path, "vmdk", true, &bs, err) == -EINVAL);
    CHECK(strstr(err, "unknown image format 'vmdk'") != NULL);
    CHECK(block_create(path, "vmdk", &o, err) == -EINVAL);
    /* A second writer is refused while the first holds the image. */
    CHECK(block_open(path, "raw", false, &bs, err) == 0);
    CHECK(block_open(path, "raw", false, &bs2, err) == -EBUSY);
    CHECK(strstr(err, "in use") != NULL);
    block_close(bs);
    CHECK(block_open(path, "raw", false, &bs2, err) == 0);
    block_close(bs2);
    o.backing_file = "base.img";
    CHECK(block_create(path, "raw", &o, err) == -EINVAL);
}

/* An empty file probes as raw with length 0; every non-empty request is out of range. */
static void test_empty(void)
{
    char path[256], err[BLOCK_ERR_LEN] = "";
    struct block *bs = NULL;
    uint8_t b;
    int fd;

    tmp_path(path, "empty.raw");
    fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK(block_open(path, NULL, false, &bs, err) == 0);
    if (!bs)
        return;
    CHECK(strcmp(block_format_name(bs), "raw") == 0);
    CHECK_EQ_U64(block_length(bs), 0);
    CHECK(block_read(bs, 0, &b, 1) == -EINVAL);
    CHECK(block_write(bs, 0, &b, 0) == 0);
    block_close(bs);
}

/* Block migration's write tracking: writes, discards and write_zeroes mark the 4 KiB blocks
 * they reach (a partial block, a request across a boundary, the disk's short last block);
 * reads and refused requests mark nothing, and nothing is marked once tracking stops. */
static void test_track_writes(void)
{
    char path[256], err[BLOCK_ERR_LEN] = "";
    struct block_create_opts o = {.size = 64 * 4096 + 512};
    struct block *bs = NULL;
    struct dirty_log log;
    uint64_t bits[2] = {0};
    uint8_t buf[8192] = {1};

    tmp_path(path, "track.raw");
    CHECK(block_create(path, "raw", &o, err) == 0);
    CHECK(block_open(path, "raw", false, &bs, err) == 0);
    if (!bs)
        return;
    CHECK(dirty_log_init(&log, 65) == 0);
    block_track_writes(bs, &log);
    dirty_log_start(&log);
    CHECK_EQ_U64(dirty_log_harvest(&log, bits), 65);           /* the first pass: everything */
    CHECK(block_write(bs, 4096 + 100, buf, 10) == 0);          /* block 1 */
    CHECK(block_write(bs, 3 * 4096 - 1, buf, 2) == 0);         /* blocks 2 and 3 */
    CHECK(block_write_zeroes(bs, 10 * 4096, 8192, true) == 0); /* 10, 11 */
    CHECK(block_discard(bs, 20 * 4096, 512) == 0);             /* 20 */
    CHECK(block_write(bs, 64 * 4096, buf, 512) == 0);          /* the short last block */
    CHECK(block_read(bs, 30 * 4096, buf, 4096) == 0);          /* reads mark nothing */
    CHECK(block_write(bs, 64 * 4096, buf, 1024) == -EINVAL);   /* refused: nothing */
    memset(bits, 0, sizeof(bits));
    dirty_log_harvest(&log, bits);
    CHECK(bits[0] ==
          ((1ull << 1) | (1ull << 2) | (1ull << 3) | (1ull << 10) | (1ull << 11) | (1ull << 20)));
    CHECK(bits[1] == 1);
    /* A reopened image (a snapshot froze the disk meanwhile) is still tracked. */
    CHECK(block_release(bs) == 0 && block_reopen(bs, path, "raw", false, err) == 0);
    CHECK(block_write(bs, 5 * 4096, buf, 1) == 0);
    CHECK_EQ_U64(dirty_log_harvest(&log, bits), 1);
    block_track_writes(bs, NULL);
    CHECK(block_write(bs, 0, buf, 4096) == 0);
    CHECK_EQ_U64(dirty_log_harvest(&log, bits), 0);
    dirty_log_destroy(&log);
    block_close(bs);
}

int main(void)
{
    char cmd[128];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tessera-raw-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_create_open_probe();
    test_read_write();
    test_refusals();
    test_track_writes();
    test_empty();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("block_raw");
}
