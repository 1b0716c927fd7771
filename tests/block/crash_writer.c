/* The crash-consistency helper that tests/block/crash.sh builds and kills.
 *
 *   crash_writer write  IMAGE SEED
 *       Opens IMAGE read-write and loops for ever: batch N (N = 1, 2, ...) is 1-4 random
 *       writes, discards and write_zeroes derived from (SEED, N), then block_flush(); after
 *       each successful flush it prints "flushed N". The script kills it with SIGKILL.
 *   crash_writer verify IMAGE SHADOW SEED LAST
 *       SHADOW is a raw file holding what IMAGE read as when the writer started. Replays
 *       batches 1..LAST on it: IMAGE must read exactly so, except in the sectors batch LAST+1
 *       touches (started, never acknowledged), where each sector may show the state after any
 *       prefix of that batch. Then overwrites SHADOW with what IMAGE reads now, for the next
 *       round. Exit status 0 when everything matched.
 * Data written by batch N, op j at guest offset o is a hash of (SEED, N, j, o): any stale or
 * misplaced sector is caught.
 *
 * Crash points: linked with -Wl,--wrap=pwrite and run with CRASH_AFTER_WRITES=k, the writer's
 * k-th pwrite() (every write of the block layer goes through one) writes only the sectors of
 * the file in its first half, as a power cut might, and the process dies at once with status
 * 137 as if killed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

#define SECTOR 512u

ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t offset);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t offset);

static long crash_after; /* 0: no crash point */

ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    if (crash_after > 0 && --crash_after == 0) {
        /* Torn at a sector boundary of the file, as storage tears writes. */
        uint64_t tear = ((uint64_t)offset + len / 2) / SECTOR * SECTOR;
        size_t part = tear > (uint64_t)offset ? (size_t)(tear - (uint64_t)offset) : 0;

        if (part)
            (void)__real_pwrite(fd, buf, part, offset);
        _exit(137);
    }
    return __real_pwrite(fd, buf, len, offset);
}
#define MAX_OPS 4

enum op_kind { OP_WRITE, OP_DISCARD, OP_ZERO, OP_ZERO_UNMAP };

struct op {
    enum op_kind kind;
    uint64_t offset, len;
};

static uint64_t mix(uint64_t x)
{
    /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The ops of batch `n`; returns how many. */
static unsigned batch_ops(uint64_t seed, uint64_t n, uint64_t disk, struct op *ops)
{
    uint64_t r = mix(seed ^ mix(n));
    unsigned count = 1 + (unsigned)(r % MAX_OPS);

    for (unsigned j = 0; j < count; j++) {
        uint64_t a = mix(r + j * 3 + 1), b = mix(r + j * 3 + 2), c = mix(r + j * 3 + 3);
        uint64_t k = a % 100, max = b % 4 == 0 ? 256 * 1024 : 8192;

        ops[j].kind = k < 60 ? OP_WRITE : k < 75 ? OP_DISCARD : k < 88 ? OP_ZERO : OP_ZERO_UNMAP;
        ops[j].offset = c % disk;
        ops[j].len = 1 + (b >> 8) % max;
        if (b % 3) { /* mostly sector-aligned, as guests do */
            ops[j].offset &= ~(uint64_t)(SECTOR - 1);
            ops[j].len = (ops[j].len + SECTOR - 1) & ~(uint64_t)(SECTOR - 1);
        }
        if (ops[j].len > disk - ops[j].offset)
            ops[j].len = disk - ops[j].offset;
    }
    return count;
}

static void op_data(uint64_t seed, uint64_t n, unsigned j, const struct op *op, uint8_t *buf)
{
    for (uint64_t i = 0; i < op->len; i++) {
        uint64_t o = op->offset + i;

        buf[i] = (uint8_t)(mix(seed ^ mix(n * 8 + j) ^ (o >> 3)) >> ((o & 7) * 8));
    }
}

static void apply_op(uint64_t seed, uint64_t n, unsigned j, const struct op *op, uint8_t *model)
{
    if (op->kind == OP_WRITE)
        op_data(seed, n, j, op, model + op->offset);
    else
        memset(model + op->offset, 0, op->len);
}

static int run_op(struct block *bs, uint64_t seed, uint64_t n, unsigned j, const struct op *op,
                  uint8_t *buf)
{
    switch (op->kind) {
    case OP_WRITE: op_data(seed, n, j, op, buf); return block_write(bs, op->offset, buf, op->len);
    case OP_DISCARD: return block_discard(bs, op->offset, op->len);
    case OP_ZERO: return block_write_zeroes(bs, op->offset, op->len, false);
    case OP_ZERO_UNMAP: return block_write_zeroes(bs, op->offset, op->len, true);
    }
    return -EINVAL;
}

static int do_write(const char *image, uint64_t seed)
{
    char err[BLOCK_ERR_LEN];
    struct block *bs;
    struct op ops[MAX_OPS];
    uint8_t *buf = malloc(256 * 1024);
    int ret;

    ret = block_open(image, "qcow2", false, &bs, err);
    if (ret < 0 || !buf) {
        fprintf(stderr, "crash_writer: %s\n", ret < 0 ? err : "out of memory");
        return 1;
    }
    for (uint64_t n = 1;; n++) {
        unsigned count = batch_ops(seed, n, block_length(bs), ops);

        for (unsigned j = 0; j < count; j++) {
            ret = run_op(bs, seed, n, j, &ops[j], buf);
            if (ret < 0) {
                fprintf(stderr, "crash_writer: batch %llu op %u: %s\n", (unsigned long long)n, j,
                        strerror(-ret));
                return 1;
            }
        }
        ret = block_flush(bs);
        if (ret < 0) {
            fprintf(stderr, "crash_writer: flush: %s\n", strerror(-ret));
            return 1;
        }
        printf("flushed %llu\n", (unsigned long long)n);
        fflush(stdout);
    }
}

static int read_all(const char *path, const char *fmt, bool ro, uint8_t *buf, uint64_t len,
                    struct block **keep)
{
    char err[BLOCK_ERR_LEN];
    struct block *bs;
    int ret = block_open(path, fmt, ro, &bs, err);

    if (ret < 0) {
        fprintf(stderr, "crash_writer: %s\n", err);
        return ret;
    }
    if (block_length(bs) != len) {
        fprintf(stderr, "crash_writer: %s: length %llu, want %llu\n", path,
                (unsigned long long)block_length(bs), (unsigned long long)len);
        block_close(bs);
        return -EINVAL;
    }
    ret = block_read(bs, 0, buf, len);
    if (ret < 0)
        fprintf(stderr, "crash_writer: reading %s: %s\n", path, strerror(-ret));
    if (keep && ret == 0)
        *keep = bs;
    else
        block_close(bs);
    return ret;
}

static int do_verify(const char *image, const char *shadow, uint64_t seed, uint64_t last)
{
    char err[BLOCK_ERR_LEN];
    struct block *img, *sh = NULL;
    struct op ops[MAX_OPS];
    uint8_t *model, *actual, *alt;
    bool *maybe;
    uint64_t disk, bad = 0;
    unsigned count;
    int ret;

    ret = block_open(image, "qcow2", true, &img, err);
    if (ret < 0) {
        fprintf(stderr, "crash_writer: %s\n", err);
        return 1;
    }
    disk = block_length(img);
    block_close(img);
    model = malloc(disk);
    actual = malloc(disk);
    alt = malloc(disk);
    maybe = calloc(disk / SECTOR + 1, sizeof(*maybe));
    if (!model || !actual || !alt || !maybe)
        return 1;
    if (read_all(shadow, "raw", false, model, disk, &sh) < 0 ||
        read_all(image, "qcow2", true, actual, disk, NULL) < 0)
        return 1;
    for (uint64_t n = 1; n <= last; n++) {
        count = batch_ops(seed, n, disk, ops);
        for (unsigned j = 0; j < count; j++)
            apply_op(seed, n, j, &ops[j], model);
    }
    /* Batch last+1: a sector it touches may show any prefix of it. */
    count = batch_ops(seed, last + 1, disk, ops);
    memcpy(alt, model, disk);
    for (unsigned j = 0; j < count; j++) {
        uint64_t first = ops[j].offset / SECTOR, end = (ops[j].offset + ops[j].len - 1) / SECTOR;

        for (uint64_t s = first; s <= end; s++)
            maybe[s] = true;
    }
    for (unsigned j = 0; j <= count; j++) {
        for (uint64_t s = 0; s < disk / SECTOR; s++)
            if (maybe[s] && memcmp(actual + s * SECTOR, alt + s * SECTOR, SECTOR) == 0)
                memcpy(model + s * SECTOR, alt + s * SECTOR, SECTOR);
        if (j < count)
            apply_op(seed, last + 1, j, &ops[j], alt);
    }
    for (uint64_t s = 0; s < disk / SECTOR; s++) {
        if (memcmp(actual + s * SECTOR, model + s * SECTOR, SECTOR) != 0) {
            if (bad < 5)
                fprintf(stderr, "crash_writer: sector %llu (offset 0x%llx) reads wrong%s\n",
                        (unsigned long long)s, (unsigned long long)s * SECTOR,
                        maybe[s] ? " (in the unacknowledged batch)" : "");
            bad++;
        }
    }
    /* The next round starts from what the image holds now. */
    ret = block_write(sh, 0, actual, disk);
    if (ret == 0)
        ret = block_flush(sh);
    block_close(sh);
    if (ret < 0)
        fprintf(stderr, "crash_writer: writing %s: %s\n", shadow, strerror(-ret));
    printf("verify: flushed %llu, batch %llu in flight: %llu bad sectors\n",
           (unsigned long long)last, (unsigned long long)last + 1, (unsigned long long)bad);
    free(model);
    free(actual);
    free(alt);
    free(maybe);
    return bad || ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "write") == 0) {
        const char *k = getenv("CRASH_AFTER_WRITES");

        crash_after = k ? strtol(k, NULL, 0) : 0;
        return do_write(argv[2], strtoull(argv[3], NULL, 0));
    }
    if (argc == 6 && strcmp(argv[1], "verify") == 0)
        return do_verify(argv[2], argv[3], strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
    fprintf(stderr, "usage: crash_writer write IMAGE SEED\n"
                    "       crash_writer verify IMAGE SHADOW SEED LAST\n");
    return 2;
}
