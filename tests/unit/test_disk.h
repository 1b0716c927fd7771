/* Helpers shared by the unit tests that build disk images and chains in a temporary folder
 * (test_block_commit.c, test_snapshot.c): a seeded generator so failures replay, guest-like
 * random I/O, whole-disk reads, qemu-img's opinion when it is installed, and the folder. */
#ifndef TESSERA_TESTS_UNIT_TEST_DISK_H
#define TESSERA_TESTS_UNIT_TEST_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "block/block.h"
#include "test.h"

#ifndef KiB
#define KiB (1024ull)
#endif
#ifndef MiB
#define MiB (1024ull * 1024)
#endif

static char tmpdir[64];
static bool have_qemu_img;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: deterministic, so a failure replays. */
static inline uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static inline void fill(uint8_t *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((seed * 131 + i * 7 + (i >> 9)) ^ (seed >> 3));
}

/* n random writes (partial and whole clusters), write_zeroes and discards, as a guest would
 * make them; then a flush. */
static inline void scribble(struct block *bs, unsigned n)
{
    const uint64_t len = block_length(bs);
    uint8_t *buf = malloc(256 * KiB);

    for (unsigned i = 0; i < n && buf; i++) {
        uint64_t size = 1 + rng() % (200 * KiB), off = rng() % len;
        unsigned what = (unsigned)(rng() % 8);

        if (size > len - off)
            size = len - off;
        if (what == 0) {
            CHECK(block_write_zeroes(bs, off, size, rng() & 1) == 0);
        } else if (what == 1) {
            CHECK(block_discard(bs, off, size) == 0);
        } else {
            fill(buf, size, rng());
            CHECK(block_write(bs, off, buf, size) == 0);
        }
    }
    CHECK(block_flush(bs) == 0);
    free(buf);
}

/* Opens the image at path for writing, makes n scribble()s in it, closes it. */
static inline bool scribble_file(const char *path, const char *format, unsigned n)
{
    char err[BLOCK_ERR_LEN] = "";
    struct block *bs = NULL;

    CHECK(block_open(path, format, false, &bs, err) == 0 || !printf("%s\n", err));
    if (!bs)
        return false;
    scribble(bs, n);
    block_close(bs);
    return true;
}

/* The whole disk as bs reads it (malloc'd), or NULL. */
static inline uint8_t *read_all(struct block *bs)
{
    uint8_t *buf = malloc(block_length(bs));

    if (buf && block_read(bs, 0, buf, block_length(bs)) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* qemu-img check's exit status for the image (0: clean). */
static inline int qemu_img_check(const char *path)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1", path);
    return system(cmd);
}

/* Makes tmpdir ("/tmp/tessera-NAME-XXXXXX") and looks for qemu-img. 0, or -1 with a message. */
static inline int disk_tests_begin(const char *name)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tessera-%s-XXXXXX", name);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    have_qemu_img = system("qemu-img --version >/dev/null 2>&1") == 0;
    if (!have_qemu_img)
        printf("note: qemu-img not found; image checks skipped\n");
    return 0;
}

static inline void disk_tests_end(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmpdir);
}

#endif
