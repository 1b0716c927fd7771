/* The block layer's tools for external snapshots, on real files in a temporary folder:
 * block_backing() walks a chain; block_open_layer() opens one layer without what lies below
 * (reads of what it lacks are zeroes, its lock is shared); block_map() says what a layer holds
 * (data, zeroes over the backing file, nothing) in runs, across partial clusters and whole
 * unallocated L2 ranges; block_query_backing() reads a header's backing name without a lock,
 * and refuses FIFOs and corrupt headers with a message naming the field; block_commit() merges
 * a layer into the one below so that every byte reads as before, for qcow2 and raw bases and
 * different cluster sizes, checked byte for byte (and by `qemu-img check` when present). */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "block/block.h"
#include "test_disk.h"

static void tpath(char *out, const char *name)
{
    snprintf(out, 256, "%s/%s", tmpdir, name);
}

static int copy_file(const char *from, const char *to)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    return system(cmd);
}

/* Writes the first 512 bytes of the image at path. */
static int patch_header(const char *path, const uint8_t *hdr)
{
    int fd = open(path, O_WRONLY), ret;

    if (fd < 0)
        return -1;
    ret = pwrite(fd, hdr, 512, 0) == 512 ? 0 : -1;
    close(fd);
    return ret;
}

static void test_backing_and_layer(void)
{
    char base[256], top[256], err[BLOCK_ERR_LEN] = "";
    struct block *b = NULL, *t = NULL, *l = NULL, *l2 = NULL, *w = NULL;
    uint8_t buf[4096], want[4096];

    tpath(base, "bl-base.qcow2");
    tpath(top, "bl-top.qcow2");
    CHECK(block_create_qcow2(base, 4 * MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_open(base, "qcow2", false, &b, err) == 0);
    fill(want, sizeof(want), 1);
    for (uint64_t off = 0; off < 4 * MiB; off += sizeof(want))
        CHECK(block_write(b, off, want, sizeof(want)) == 0);
    block_close(b);
    /* A relative backing name: resolved against the overlay's folder. */
    CHECK(block_create_qcow2(top, 0, 0, "bl-base.qcow2", "qcow2", err) == 0);
    CHECK(block_open(top, "qcow2", false, &t, err) == 0);
    fill(buf, 512, 2);
    CHECK(block_write(t, 100, buf, 512) == 0);
    CHECK(block_flush(t) == 0);
    CHECK(block_backing(t) != NULL);
    if (block_backing(t)) {
        CHECK(!strcmp(block_path(block_backing(t)), base));
        CHECK(block_backing(block_backing(t)) == NULL);
    }
    block_close(t);

    /* One layer alone: what it lacks reads as zeroes, its own cluster holds the copy-on-write
     * of the base around the new bytes. */
    CHECK(block_open_layer(top, "qcow2", &l, err) == 0);
    CHECK(block_open_layer(top, NULL, &l2, err) == 0); /* a shared lock, probed format */
    if (l) {
        CHECK(block_backing(l) == NULL);
        CHECK(block_readonly(l));
        CHECK(block_read(l, 64 * KiB, buf, sizeof(buf)) == 0);
        CHECK(buf[0] == 0 && !memcmp(buf, buf + 1, sizeof(buf) - 1));
        CHECK(block_read(l, 0, buf, sizeof(buf)) == 0);
        CHECK(!memcmp(buf, want, 100));
        fill(want + 100, 512, 2);
        CHECK(!memcmp(buf, want, sizeof(buf)));
        CHECK(block_write(l, 0, buf, 512) == -EROFS);
        /* A writer is kept out while the layer is open. */
        CHECK(block_open(top, "qcow2", false, &w, err) == -EBUSY);
    }
    block_close(l);
    block_close(l2);
    block_close(w);
    CHECK(block_open_layer(base, "qcow2", &l, err) == 0); /* no backing: the same as open */
    block_close(l);
}

static void test_map(void)
{
    char base[256], top[256], big[256], raw[256], err[BLOCK_ERR_LEN] = "";
    struct block *b = NULL, *t = NULL;
    enum block_alloc kind;
    uint64_t run = 0, total;
    uint8_t buf[512];

    tpath(base, "map-base.qcow2");
    tpath(top, "map-top.qcow2");
    CHECK(block_create_qcow2(base, 4 * MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(top, 0, 0, base, NULL, err) == 0);
    CHECK(block_open(top, NULL, false, &t, err) == 0);
    if (!t)
        return;
    fill(buf, sizeof(buf), 3);
    CHECK(block_write(t, 100, buf, sizeof(buf)) == 0);                /* cluster 0: data */
    CHECK(block_write_zeroes(t, 3 * 64 * KiB, 128 * KiB, true) == 0); /* 3, 4: zeroes */
    CHECK(block_write(t, 6 * 64 * KiB + 5, buf, 1) == 0);             /* 6: data */
    CHECK(block_map(t, 0, 4 * MiB, &kind, &run) == 0);
    CHECK(kind == BLOCK_ALLOC_DATA);
    CHECK_EQ_U64(run, 64 * KiB);
    CHECK(block_map(t, 64 * KiB, 4 * MiB - 64 * KiB, &kind, &run) == 0);
    CHECK(kind == BLOCK_ALLOC_NONE);
    CHECK_EQ_U64(run, 128 * KiB);
    CHECK(block_map(t, 3 * 64 * KiB + 7, 4 * MiB - 3 * 64 * KiB - 7, &kind, &run) == 0);
    CHECK(kind == BLOCK_ALLOC_ZERO);
    CHECK_EQ_U64(run, 128 * KiB - 7);
    CHECK(block_map(t, 5 * 64 * KiB, 4 * MiB - 5 * 64 * KiB, &kind, &run) == 0);
    CHECK(kind == BLOCK_ALLOC_NONE);
    CHECK_EQ_U64(run, 64 * KiB);
    /* Within one cluster: the run stops at len. */
    CHECK(block_map(t, 6 * 64 * KiB + 10, 20, &kind, &run) == 0);
    CHECK(kind == BLOCK_ALLOC_DATA);
    CHECK_EQ_U64(run, 20);
    /* The runs cover the disk exactly. */
    total = 0;
    for (uint64_t off = 0; off < 4 * MiB; off += run) {
        if (block_map(t, off, 4 * MiB - off, &kind, &run) != 0 || run == 0) {
            CHECK(false);
            break;
        }
        total += run;
    }
    CHECK_EQ_U64(total, 4 * MiB);
    CHECK(block_map(t, 4 * MiB, 1, &kind, &run) == -EINVAL);
    CHECK(block_map(t, 0, 0, &kind, &run) == -EINVAL);
    CHECK(block_map(t, 1, 4 * MiB, &kind, &run) == -EINVAL);
    block_close(t);

    /* A large empty disk: one run over every unallocated L2 range (512 MiB each). */
    tpath(big, "map-big.qcow2");
    CHECK(block_create_qcow2(big, 3ull << 30, 0, NULL, NULL, err) == 0);
    CHECK(block_open(big, "qcow2", true, &b, err) == 0);
    if (b) {
        CHECK(block_map(b, 1000, (3ull << 30) - 1000, &kind, &run) == 0);
        CHECK(kind == BLOCK_ALLOC_NONE);
        CHECK_EQ_U64(run, (3ull << 30) - 1000);
    }
    block_close(b);

    /* Raw holds everything. */
    tpath(raw, "map.raw");
    CHECK(block_create(raw, "raw", &(struct block_create_opts){.size = MiB}, err) == 0);
    CHECK(block_open(raw, "raw", true, &b, err) == 0);
    if (b) {
        CHECK(block_map(b, 10, MiB - 10, &kind, &run) == 0);
        CHECK(kind == BLOCK_ALLOC_DATA);
        CHECK_EQ_U64(run, MiB - 10);
    }
    block_close(b);
}

static void test_query_backing(void)
{
    char base[256], top[256], rel[256], raw[256], fifo[256], bad[256], err[BLOCK_ERR_LEN];
    char name[1100], fmt[32];
    struct block *t = NULL;
    uint8_t hdr[512];
    int fd;

    tpath(base, "q-base.qcow2");
    tpath(top, "q-top.qcow2");
    tpath(rel, "q-rel.qcow2");
    CHECK(block_create_qcow2(base, MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(top, 0, 0, base, "qcow2", err) == 0);
    CHECK(block_create_qcow2(rel, 0, 12, "q-base.qcow2", NULL, err) == 0);
    CHECK(block_query_backing(top, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(!strcmp(name, base) && !strcmp(fmt, "qcow2"));
    CHECK(block_query_backing(rel, "qcow2", name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(!strcmp(name, "q-base.qcow2") && !strcmp(fmt, "qcow2")); /* fmt probed at create */
    CHECK(block_query_backing(base, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(name[0] == '\0' && fmt[0] == '\0');
    /* No lock taken: an image open for writing is still read. */
    CHECK(block_open(top, "qcow2", false, &t, err) == 0);
    CHECK(block_query_backing(top, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(!strcmp(name, base));
    block_close(t);
    /* A name that does not fit. */
    err[0] = '\0';
    CHECK(block_query_backing(top, NULL, name, 8, fmt, sizeof(fmt), err) == -ENAMETOOLONG);
    CHECK(strstr(err, top) != NULL);

    tpath(raw, "q.raw");
    CHECK(block_create(raw, "raw", &(struct block_create_opts){.size = MiB}, err) == 0);
    CHECK(block_query_backing(raw, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0);
    CHECK(name[0] == '\0');
    CHECK(block_query_backing(raw, "vmdk", name, sizeof(name), fmt, sizeof(fmt), err) == -EINVAL);

    tpath(fifo, "q.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    err[0] = '\0';
    CHECK(block_query_backing(fifo, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == -EINVAL);
    CHECK(strstr(err, "not a regular file") != NULL);
    err[0] = '\0';
    CHECK(block_query_backing(tmpdir, NULL, name, sizeof(name), fmt, sizeof(fmt), err) < 0);
    CHECK(err[0] != '\0');
    CHECK(block_query_backing("/nonexistent/x", NULL, name, sizeof(name), fmt, sizeof(fmt), err) ==
          -ENOENT);

    /* Headers that do not check: the message names the file and the field. */
    tpath(bad, "q-bad.qcow2");
    fd = open(top, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
    if (fd >= 0)
        close(fd);
    CHECK(copy_file(top, bad) == 0);
    hdr[23] = 40; /* cluster_bits */
    CHECK(patch_header(bad, hdr) == 0);
    err[0] = '\0';
    CHECK(block_query_backing(bad, "qcow2", name, sizeof(name), fmt, sizeof(fmt), err) == -EINVAL);
    CHECK(strstr(err, "cluster_bits") != NULL && strstr(err, bad) != NULL);
    hdr[23] = 16;
    hdr[8 + 5] = 0x7f; /* backing_file_offset: past the header cluster */
    CHECK(patch_header(bad, hdr) == 0);
    err[0] = '\0';
    CHECK(block_query_backing(bad, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == -EINVAL);
    CHECK(strstr(err, "backing file name offset") != NULL && strstr(err, bad) != NULL);
}

/* base <- mid <- top, written at each level; top committed into mid; mid then reads as top
 * did, on every byte. */
static void commit_case(const char *tag, const char *base_fmt, unsigned mid_bits, unsigned top_bits)
{
    char base[256], mid[256], top[256], err[BLOCK_ERR_LEN] = "";
    struct block *m = NULL, *t = NULL, *l = NULL;
    uint8_t *want = NULL, *got = NULL, *mid_before = NULL;
    const uint64_t size = 3 * MiB + 5 * 512; /* a partial last cluster */
    uint64_t bytes = 0;
    char name[64];
    bool mid_is_base = !strcmp(base_fmt, "raw");

    snprintf(name, sizeof(name), "c-%s-base.%s", tag, base_fmt);
    tpath(base, name);
    snprintf(name, sizeof(name), "c-%s-mid.qcow2", tag);
    tpath(mid, name);
    snprintf(name, sizeof(name), "c-%s-top.qcow2", tag);
    tpath(top, name);
    if (mid_is_base) {
        /* raw: base is the image committed into; no mid layer. */
        CHECK(block_create(base, "raw", &(struct block_create_opts){.size = size}, err) == 0);
        if (!scribble_file(base, "raw", 40))
            return;
        snprintf(mid, sizeof(mid), "%s", base);
        CHECK(block_create_qcow2(top, 0, top_bits, base, "raw", err) == 0);
    } else {
        CHECK(block_create_qcow2(base, size, 0, NULL, NULL, err) == 0);
        if (!scribble_file(base, "qcow2", 40))
            return;
        CHECK(block_create_qcow2(mid, 0, mid_bits, base, "qcow2", err) == 0);
        if (!scribble_file(mid, "qcow2", 40))
            return;
        CHECK(block_create_qcow2(top, 0, top_bits, mid, "qcow2", err) == 0);
    }
    CHECK(block_open(top, "qcow2", false, &t, err) == 0);
    if (!t)
        return;
    scribble(t, 60);
    want = read_all(t);
    block_close(t);
    CHECK(block_open(mid, mid_is_base ? "raw" : "qcow2", true, &m, err) == 0);
    mid_before = m ? read_all(m) : NULL;
    block_close(m);
    m = NULL;

    CHECK(block_open(mid, mid_is_base ? "raw" : "qcow2", false, &m, err) == 0);
    CHECK(block_open_layer(top, "qcow2", &l, err) == 0);
    if (m && l) {
        CHECK(block_commit(l, m, &bytes, err) == 0);
        CHECK(bytes > 0);
        got = read_all(m);
        CHECK(want && got && !memcmp(want, got, size));
        CHECK(mid_before && got && memcmp(mid_before, got, size)); /* it did change */
    }
    block_close(l);
    block_close(m);
    m = NULL;
    /* Reopened from the files: the same. */
    free(got);
    got = NULL;
    CHECK(block_open(mid, mid_is_base ? "raw" : "qcow2", true, &m, err) == 0);
    if (m) {
        got = read_all(m);
        CHECK(want && got && !memcmp(want, got, size));
    }
    block_close(m);
    if (have_qemu_img && !mid_is_base)
        CHECK(qemu_img_check(mid) == 0);
    free(want);
    free(got);
    free(mid_before);
}

static void test_commit_errors(void)
{
    char a[256], b[256], err[BLOCK_ERR_LEN];
    struct block *x = NULL, *y = NULL;

    tpath(a, "ce-a.qcow2");
    tpath(b, "ce-b.qcow2");
    CHECK(block_create_qcow2(a, MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(b, 2 * MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_open(a, "qcow2", true, &x, err) == 0);
    CHECK(block_open(b, "qcow2", false, &y, err) == 0);
    if (x && y) {
        err[0] = '\0';
        CHECK(block_commit(x, y, NULL, err) == -EINVAL);
        CHECK(strstr(err, a) && strstr(err, b));
        err[0] = '\0';
        CHECK(block_commit(y, x, NULL, err) == -EINVAL);
    }
    block_close(y);
    y = NULL;
    CHECK(block_open(b, "qcow2", true, &y, err) == 0);
    block_close(x);
    x = NULL;
    CHECK(block_create_qcow2(a, 2 * MiB, 0, NULL, NULL, err) == 0);
    CHECK(block_open(a, "qcow2", true, &x, err) == 0);
    if (x && y)
        CHECK(block_commit(x, y, NULL, err) == -EROFS);
    block_close(x);
    block_close(y);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    if (disk_tests_begin("commit"))
        return 1;
    test_backing_and_layer();
    test_map();
    test_query_backing();
    commit_case("same", "qcow2", 16, 16);
    commit_case("small-mid", "qcow2", 12, 16);
    commit_case("small-top", "qcow2", 16, 9);
    commit_case("raw", "raw", 0, 16);
    test_commit_errors();
    disk_tests_end();
    return test_finish("block_commit");
}
