// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/block/*.c src/base/log.c src/base/hostfs.c tests/fuzz/fuzz_qcow2.c -lz -lzstd -o build/fuzz_qcow2
// seeds: tests/block/fuzz_seeds.sh build/fuzz_qcow2_corpus
// run:   build/fuzz_qcow2 -max_total_time=60 -max_len=524288 -timeout=10 -close_fd_mask=2 build/fuzz_qcow2_corpus
// clang-format on
/* libFuzzer target for image parsing: the input is a hostile disk image.
 *
 * Input layout: byte 0 picks what to do, the rest is the image file.
 *   bit 0     open read-write (else read-only) and, after the reads, write, write zeroes,
 *             discard and flush: the write paths must survive corrupt metadata too
 *   bits 1-7  where the extra reads and writes go, as a fraction of the disk
 * The image is a memfd opened through /proc/self/fd with block_open(format NULL), so probing,
 * header validation, header extensions, backing-file lookup (names resolve inside
 * /proc/self/fd, mostly to nothing), the snapshot table, L1/L2 lookups, compressed clusters
 * and refcounts are all reached; so are the tools of snapshot-delete: the header read
 * without opening (block_query_backing), one layer alone (block_open_layer) and its
 * allocation map (block_map). Errors are expected; crashes, sanitizer reports, leaks and
 * hangs are bugs. The driver logs corruption it meets: -close_fd_mask=2 hides those lines
 * (libFuzzer still prints sanitizer reports). */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"

static void fuzz_read(struct block *bs, uint64_t offset, uint8_t *buf, size_t len)
{
    uint64_t disk = block_length(bs);

    if (offset >= disk)
        return;
    if (len > disk - offset)
        len = (size_t)(disk - offset);
    (void)block_read(bs, offset, buf, len);
}

/* Walks the allocation map of the image alone, at most 4096 runs. */
static void fuzz_map(const char *path)
{
    char err[BLOCK_ERR_LEN];
    enum block_alloc kind;
    uint64_t off = 0, run = 0;
    struct block *bs;

    if (block_open_layer(path, NULL, &bs, err) < 0)
        return;
    for (unsigned i = 0; i < 4096 && off < block_length(bs); i++, off += run)
        if (block_map(bs, off, block_length(bs) - off, &kind, &run) < 0 || run == 0)
            break;
    block_close(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[65536];
    char path[64], err[BLOCK_ERR_LEN];
    struct block_snapshot_info *list;
    struct block *bs;
    unsigned count;
    uint64_t disk, at;
    bool rw;
    int fd;

    if (size < 1)
        return 0;
    rw = data[0] & 1;
    fd = memfd_create("fuzz.qcow2", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
        goto close_fd;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    {
        char name[1024], fmt[32];

        (void)block_query_backing(path, NULL, name, sizeof(name), fmt, sizeof(fmt), err);
    }
    fuzz_map(path);
    if (block_open(path, NULL, !rw, &bs, err) < 0)
        goto close_fd;
    if (block_snapshot_list(bs, &list, &count) == 0)
        block_snapshot_list_free(list, count);
    disk = block_length(bs);
    at = disk / 128 * (data[0] >> 1);
    fuzz_read(bs, 0, buf, 4096);
    fuzz_read(bs, disk / 2 - disk / 2 % 512, buf, 8192);
    fuzz_read(bs, disk > 512 ? disk - 512 : 0, buf, 512);
    fuzz_read(bs, at, buf, sizeof(buf));
    if (rw && disk) {
        uint64_t len = disk - at < 6000 ? disk - at : 6000;

        memset(buf, 0xa5, sizeof(buf));
        if (at < disk) {
            (void)block_write(bs, at, buf, len);
            (void)block_write_zeroes(bs, at / 2, len, data[0] & 2);
            (void)block_discard(bs, at / 3, len * 8 < disk - at / 3 ? len * 8 : disk - at / 3);
        }
        (void)block_write(bs, 0, buf, disk < 512 ? disk : 512);
        (void)block_flush(bs);
        fuzz_read(bs, at, buf, sizeof(buf));
    }
    block_close(bs);
close_fd:
    close(fd);
    return 0;
}
