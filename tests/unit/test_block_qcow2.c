/* The qcow2 driver against QEMU's own tools: images made by `qemu-img create` and by
 * block_create_qcow2(); a differential test that applies the same random writes, discards and
 * write_zeroes to a qcow2 and a raw image and compares them, then asks `qemu-img check` (no
 * corruption) and `qemu-img compare` (identical); backing chains (two overlays on one template,
 * depth 3, a relative path into another folder, a loop, a relative name made absolute);
 * compressed images (zlib and zstd);
 * version 2 images; internal snapshots listed, and kept intact while the active layer is
 * written; corrupt headers refused with a message naming the field; run-time corruption
 * answered with -EIO; read-only images refusing writes.
 * Cases that need qemu-img print a note and are skipped when it is missing. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "block/block.h"

#define MiB (1024ull * 1024)

static char tmpdir[64];
static bool have_qemu_img;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure replays. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(rng() >> 56);
}

/* A path inside the test's temporary folder, for one-off use: a ring of 8 buffers, so keep
 * longer-lived paths in a local buffer filled by tmp_path(). */
static const char *tp(const char *name)
{
    static char ring[8][256];
    static unsigned next;
    char *p = ring[next++ % 8];

    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static void tmp_path(char out[256], const char *name)
{
    snprintf(out, 256, "%s/%s", tmpdir, name);
}

/* Runs a shell command; returns its exit status (-1 if it did not exit normally). */
static int sh(const char *fmt, ...)
{
    char cmd[2048];
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

static bool need_qemu(const char *what)
{
    if (!have_qemu_img)
        printf("note: qemu-img not found, skipping %s\n", what);
    return have_qemu_img;
}

/* `qemu-img check` exit status: 0 clean, 3 leaks only, 2 corruption. Prints the report when
 * it is not clean. */
static int qemu_check(const char *path)
{
    int st = sh("qemu-img check -q '%s' >/dev/null 2>&1", path);

    if (st != 0)
        sh("qemu-img check '%s' >&2", path);
    return st;
}

static int qemu_compare(const char *a, const char *afmt, const char *b, const char *bfmt)
{
    return sh("qemu-img compare -q -f %s -F %s '%s' '%s'", afmt, bfmt, a, b);
}

static struct block *open_ok(const char *path, const char *fmt, bool ro)
{
    char err[BLOCK_ERR_LEN] = "";
    struct block *bs = NULL;
    int ret = block_open(path, fmt, ro, &bs, err);

    if (ret < 0)
        fprintf(stderr, "open %s: %d: %s\n", path, ret, err);
    CHECK(ret == 0);
    return ret == 0 ? bs : NULL;
}

/* Reads all of both images in chunks and compares them. */
static bool images_equal(struct block *a, struct block *b)
{
    const size_t chunk = 1 * MiB;
    uint8_t *ba = malloc(chunk), *bb = malloc(chunk);
    uint64_t len = block_length(a);
    bool same = len == block_length(b);

    for (uint64_t off = 0; same && off < len; off += chunk) {
        size_t n = len - off < chunk ? (size_t)(len - off) : chunk;

        if (block_read(a, off, ba, n) != 0 || block_read(b, off, bb, n) != 0) {
            fprintf(stderr, "read failed at 0x%llx\n", (unsigned long long)off);
            same = false;
        } else if (memcmp(ba, bb, n) != 0) {
            size_t i = 0;

            while (ba[i] == bb[i])
                i++;
            fprintf(stderr, "images differ at 0x%llx\n", (unsigned long long)(off + i));
            same = false;
        }
    }
    free(ba);
    free(bb);
    return same;
}

/* Writes `len` random bytes (fixed seed) into a plain file, some stretches left zero. */
static void make_raw_file(const char *path, uint64_t len, uint64_t seed)
{
    uint64_t saved = rng_state;
    uint8_t *buf = malloc(MiB);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

    rng_state = seed;
    for (uint64_t off = 0; off < len; off += MiB) {
        size_t n = len - off < MiB ? (size_t)(len - off) : MiB;

        fill_random(buf, n);
        if ((off / MiB) % 3 == 1)
            memset(buf + n / 4, 0, n / 2);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            CHECK(!"pwrite");
    }
    close(fd);
    free(buf);
    rng_state = saved;
}

/* ---- Basic create, open, read, write ---- */

static void test_create_basic(void)
{
    char err[BLOCK_ERR_LEN] = "";
    char img[256];
    tmp_path(img, "basic.qcow2");
    struct block *bs;
    uint8_t buf[4096], back[4096];
    int ret;

    ret = block_create_qcow2(img, 64 * MiB, 16, NULL, NULL, err);
    CHECK(ret == 0);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    if (have_qemu_img)
        CHECK(qemu_check(img) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK(strcmp(block_format_name(bs), "qcow2") == 0);
    CHECK_EQ_U64(block_length(bs), 64 * MiB);
    CHECK(!block_readonly(bs));
    CHECK(block_read(bs, 5 * MiB, back, sizeof(back)) == 0);
    memset(buf, 0, sizeof(buf));
    CHECK(memcmp(back, buf, sizeof(buf)) == 0);
    fill_random(buf, sizeof(buf));
    CHECK(block_write(bs, 1 * MiB + 512, buf, sizeof(buf)) == 0);
    CHECK(block_read(bs, 1 * MiB + 512, back, sizeof(back)) == 0);
    CHECK(memcmp(back, buf, sizeof(buf)) == 0);
    /* Out of range and overflowing requests. */
    CHECK(block_read(bs, 64 * MiB - 512, back, 1024) == -EINVAL);
    CHECK(block_write(bs, UINT64_MAX - 10, buf, 512) == -EINVAL);
    CHECK(block_read(bs, 64 * MiB, back, 0) == 0);
    CHECK(block_flush(bs) == 0);
    block_close(bs);
    if (have_qemu_img)
        CHECK(qemu_check(img) == 0);
    bs = open_ok(img, "qcow2", true);
    if (!bs)
        return;
    CHECK(block_read(bs, 1 * MiB + 512, back, sizeof(back)) == 0);
    CHECK(memcmp(back, buf, sizeof(buf)) == 0);
    /* Read-only: every kind of write is refused. */
    CHECK(block_readonly(bs));
    CHECK(block_write(bs, 0, buf, 512) == -EROFS);
    CHECK(block_discard(bs, 0, 65536) == -EROFS);
    CHECK(block_write_zeroes(bs, 0, 65536, true) == -EROFS);
    CHECK(block_flush(bs) == 0);
    block_close(bs);
}

static void test_qemu_created(void)
{
    char img[256];
    tmp_path(img, "qemu.qcow2");
    struct block *bs;
    uint8_t buf[70000], back[70000];

    if (!need_qemu("qemu-img created image"))
        return;
    CHECK(sh("qemu-img create -q -f qcow2 '%s' 100M", img) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK_EQ_U64(block_length(bs), 100 * MiB);
    fill_random(buf, sizeof(buf));
    /* Unaligned, crossing a cluster boundary. */
    CHECK(block_write(bs, 65536 - 1000, buf, sizeof(buf)) == 0);
    CHECK(block_read(bs, 65536 - 1000, back, sizeof(back)) == 0);
    CHECK(memcmp(buf, back, sizeof(buf)) == 0);
    block_close(bs);
    CHECK(qemu_check(img) == 0);
    /* QEMU reads what we wrote. */
    CHECK(sh("qemu-io -f qcow2 -c 'read -P 0 0 64000' '%s' >/dev/null", img) == 0);
    CHECK(sh("qemu-img convert -O raw '%s' '%s'", img, tp("qemu.raw")) == 0);
    bs = open_ok(tp("qemu.raw"), "raw", true);
    if (!bs)
        return;
    CHECK(block_read(bs, 65536 - 1000, back, sizeof(back)) == 0);
    CHECK(memcmp(buf, back, sizeof(buf)) == 0);
    block_close(bs);
}

/* Two writers cannot hold one image; readers can share it. */
static void test_locking(void)
{
    char err[BLOCK_ERR_LEN] = "";
    char img[256];
    tmp_path(img, "lock.qcow2");
    struct block *a, *b = NULL, *r1, *r2;

    CHECK(block_create_qcow2(img, MiB, 0, NULL, NULL, err) == 0);
    a = open_ok(img, NULL, false);
    CHECK(block_open(img, NULL, false, &b, err) == -EBUSY);
    CHECK(strstr(err, "lock.qcow2") != NULL);
    CHECK(block_open(img, NULL, true, &b, err) == -EBUSY);
    block_close(a);
    r1 = open_ok(img, NULL, true);
    r2 = open_ok(img, NULL, true);
    block_close(r1);
    block_close(r2);
}

/* ---- Differential: qcow2 against raw ---- */

struct diff_case {
    const char *name;
    unsigned cluster_bits;
    const char *qemu_opts; /* NULL: block_create_qcow2(); else `qemu-img create -o` options */
    int backing;           /* 0 none, 1 raw template, 2 qcow2 template */
    unsigned ops;
    uint64_t size;
};

static uint64_t pick_len(uint64_t max)
{
    uint64_t r = rng() % 100, len;

    if (r < 40)
        len = 1 + rng() % 4096;
    else if (r < 80)
        len = 1 + rng() % (128 * 1024);
    else
        len = 1 + rng() % (600 * 1024);
    return len < max ? len : max;
}

static void test_differential(const struct diff_case *dc)
{
    char err[BLOCK_ERR_LEN] = "", qname[64], rname[64], bname[64], bq[64];
    const size_t maxio = 640 * 1024;
    uint8_t *wbuf = malloc(maxio), *ra = malloc(maxio), *rb = malloc(maxio);
    const char *bfmt = dc->backing == 2 ? "qcow2" : "raw";
    struct block *q = NULL, *r = NULL;
    bool ok = true;
    unsigned i;

    printf("differential %s: %u ops\n", dc->name, dc->ops);
    snprintf(qname, sizeof(qname), "diff-%s.qcow2", dc->name);
    snprintf(rname, sizeof(rname), "diff-%s.raw", dc->name);
    snprintf(bname, sizeof(bname), "diff-%s-base.raw", dc->name);
    snprintf(bq, sizeof(bq), "diff-%s-base.qcow2", dc->name);
    if (dc->backing) {
        make_raw_file(tp(bname), dc->size - 3 * MiB, rng());
        /* The raw side starts as the template, padded with zeroes. */
        CHECK(sh("cp '%s' '%s' && truncate -s %llu '%s'", tp(bname), tp(rname),
                 (unsigned long long)dc->size, tp(rname)) == 0);
        if (dc->backing == 2)
            CHECK(sh("qemu-img convert -O qcow2 '%s' '%s'", tp(bname), tp(bq)) == 0);
    } else {
        struct block_create_opts o = {.size = dc->size};

        CHECK(block_create(tp(rname), "raw", &o, err) == 0);
    }
    if (dc->qemu_opts) {
        CHECK(sh("qemu-img create -q -f qcow2 -o cluster_size=%u%s%s %s%s%s%s '%s' %llu",
                 1u << dc->cluster_bits, dc->qemu_opts[0] ? "," : "", dc->qemu_opts,
                 dc->backing ? "-b " : "", dc->backing ? (dc->backing == 2 ? bq : bname) : "",
                 dc->backing ? " -F " : "", dc->backing ? bfmt : "", tp(qname),
                 (unsigned long long)dc->size) == 0);
    } else {
        int ret = block_create_qcow2(tp(qname), dc->size, dc->cluster_bits,
                                     dc->backing ? (dc->backing == 2 ? bq : bname) : NULL,
                                     dc->backing ? bfmt : NULL, err);

        if (ret < 0)
            fprintf(stderr, "%s\n", err);
        CHECK(ret == 0);
    }
    q = open_ok(tp(qname), NULL, false);
    r = open_ok(tp(rname), "raw", false);
    if (!q || !r)
        goto out;
    CHECK_EQ_U64(block_length(q), dc->size);
    for (i = 0; i < dc->ops && ok; i++) {
        uint64_t op = rng() % 100, off, len;
        int rq = 0, rr = 0;

        if (rng() % 2) {
            off = (rng() % dc->size) & ~511ull;
            len = (pick_len(dc->size - off) + 511) & ~511ull;
            if (len > dc->size - off)
                len = dc->size - off;
        } else {
            off = rng() % dc->size;
            len = pick_len(dc->size - off);
        }
        if (rng() % 8 == 0) { /* whole clusters */
            off &= ~((1ull << dc->cluster_bits) - 1);
            len = ((len >> dc->cluster_bits) + 1) << dc->cluster_bits;
            if (len > dc->size - off)
                len = dc->size - off;
        }
        if (len > maxio)
            len = maxio;
        if (op < 55) {
            fill_random(wbuf, len);
            rq = block_write(q, off, wbuf, len);
            rr = block_write(r, off, wbuf, len);
        } else if (op < 67) {
            rq = block_discard(q, off, len);
            rr = block_discard(r, off, len);
        } else if (op < 80) {
            bool unmap = rng() % 2;

            rq = block_write_zeroes(q, off, len, unmap);
            rr = block_write_zeroes(r, off, len, unmap);
        } else if (op < 95) {
            rq = block_read(q, off, ra, len);
            rr = block_read(r, off, rb, len);
            if (rq == 0 && rr == 0 && memcmp(ra, rb, len) != 0) {
                fprintf(stderr, "%s: op %u: read 0x%llx+0x%llx differs\n", dc->name, i,
                        (unsigned long long)off, (unsigned long long)len);
                ok = false;
            }
        } else if (op < 98) {
            rq = block_flush(q);
            rr = block_flush(r);
        } else {
            block_close(q);
            block_close(r);
            q = open_ok(tp(qname), NULL, false);
            r = open_ok(tp(rname), "raw", false);
            if (!q || !r)
                goto out;
        }
        if (rq != 0 || rr != 0) {
            fprintf(stderr, "%s: op %u (%llu) at 0x%llx+0x%llx: qcow2 %d raw %d\n", dc->name, i,
                    (unsigned long long)op, (unsigned long long)off, (unsigned long long)len, rq,
                    rr);
            ok = false;
        }
    }
    CHECK(ok);
    CHECK(images_equal(q, r));
    if (dc->cluster_bits == 9 && !dc->qemu_opts) {
        /* 64 MiB of 512-byte clusters outgrows the first refcount table cluster. */
        uint8_t hdr[64];
        int fd = open(tp(qname), O_RDONLY);

        CHECK(pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
        close(fd);
        CHECK(hdr[48 + 7] != 0 || hdr[48 + 6] != 0x02 || hdr[59] != 1);
    }
out:
    block_close(q);
    block_close(r);
    if (have_qemu_img) {
        CHECK(qemu_check(tp(qname)) == 0);
        CHECK(qemu_compare(tp(qname), "qcow2", tp(rname), "raw") == 0);
    }
    free(wbuf);
    free(ra);
    free(rb);
}

/* ---- Backing chains ---- */

static void write_pattern(struct block *bs, uint64_t off, uint64_t len, uint8_t v)
{
    uint8_t *buf = malloc(len);

    memset(buf, v, len);
    CHECK(block_write(bs, off, buf, len) == 0);
    free(buf);
}

static bool reads_pattern(struct block *bs, uint64_t off, uint64_t len, uint8_t v)
{
    uint8_t *buf = malloc(len);
    bool ok = block_read(bs, off, buf, len) == 0;

    for (uint64_t i = 0; ok && i < len; i++)
        ok = buf[i] == v;
    free(buf);
    return ok;
}

static void test_backing_overlays(void)
{
    char err[BLOCK_ERR_LEN] = "";
    struct block *t, *a, *b;

    /* Template: 0x11 everywhere in its 8 MiB. */
    CHECK(block_create_qcow2(tp("tmpl.qcow2"), 8 * MiB, 16, NULL, NULL, err) == 0);
    t = open_ok(tp("tmpl.qcow2"), NULL, false);
    if (!t)
        return;
    write_pattern(t, 0, 8 * MiB, 0x11);
    block_close(t);
    /* Two overlays, each 10 MiB (reads past the template's end are zero). */
    CHECK(block_create_qcow2(tp("ov-a.qcow2"), 10 * MiB, 16, "tmpl.qcow2", "qcow2", err) == 0);
    CHECK(block_create_qcow2(tp("ov-b.qcow2"), 0, 12, "tmpl.qcow2", NULL, err) == 0);
    a = open_ok(tp("ov-a.qcow2"), NULL, false);
    b = open_ok(tp("ov-b.qcow2"), NULL, false);
    if (!a || !b)
        return;
    CHECK_EQ_U64(block_length(b), 8 * MiB); /* size taken from the backing file */
    write_pattern(a, 1 * MiB + 100, 5000, 0xaa);
    write_pattern(b, 1 * MiB + 3000, 7000, 0xbb);
    CHECK(reads_pattern(a, 1 * MiB + 100, 5000, 0xaa));
    CHECK(reads_pattern(a, 1 * MiB, 100, 0x11));
    CHECK(reads_pattern(a, 1 * MiB + 5100, 60000, 0x11));
    CHECK(reads_pattern(a, 8 * MiB, 2 * MiB, 0x00));
    CHECK(reads_pattern(b, 1 * MiB + 3000, 7000, 0xbb));
    CHECK(reads_pattern(b, 1 * MiB, 3000, 0x11));
    CHECK(reads_pattern(b, 1 * MiB + 10000, 100000, 0x11));
    /* Discard in an overlay must hide the template (zero flag), not expose it. */
    CHECK(block_discard(a, 2 * MiB, 128 * 1024) == 0);
    CHECK(reads_pattern(a, 2 * MiB, 128 * 1024, 0x00));
    CHECK(reads_pattern(b, 2 * MiB, 128 * 1024, 0x11));
    block_close(a);
    block_close(b);
    t = open_ok(tp("tmpl.qcow2"), NULL, true);
    if (t) {
        CHECK(reads_pattern(t, 0, 8 * MiB, 0x11));
        block_close(t);
    }
    if (have_qemu_img) {
        CHECK(qemu_check(tp("ov-a.qcow2")) == 0);
        CHECK(qemu_check(tp("ov-b.qcow2")) == 0);
        CHECK(sh("qemu-io -f qcow2 -c 'read -P 0xaa 1048676 5000' -c 'read -P 0x11 0 1048676' "
                 "-c 'read -P 0 2097152 131072' -c 'read -P 0 8388608 2097152' '%s' >/dev/null",
                 tp("ov-a.qcow2")) == 0);
    }
}

static void test_backing_depth3_and_dirs(void)
{
    char err[BLOCK_ERR_LEN] = "";
    struct block *bs;

    CHECK(sh("mkdir -p '%s' '%s'", tp("d1"), tp("d2/sub")) == 0);
    /* base (raw) <- mid (qcow2, other folder, relative path) <- top */
    make_raw_file(tp("d1/base.raw"), 4 * MiB, 42);
    CHECK(block_create_qcow2(tp("d2/mid.qcow2"), 6 * MiB, 16, "../d1/base.raw", "raw", err) == 0);
    CHECK(block_create_qcow2(tp("d2/sub/top.qcow2"), 6 * MiB, 14, "../mid.qcow2", NULL, err) == 0);
    bs = open_ok(tp("d2/mid.qcow2"), NULL, false);
    if (!bs)
        return;
    write_pattern(bs, 1 * MiB, 64 * 1024, 0x22);
    write_pattern(bs, 5 * MiB, 4096, 0x23);
    block_close(bs);
    bs = open_ok(tp("d2/sub/top.qcow2"), NULL, false);
    if (!bs)
        return;
    write_pattern(bs, 1 * MiB + 32 * 1024, 4096, 0x33);
    CHECK(reads_pattern(bs, 1 * MiB, 32 * 1024, 0x22));
    CHECK(reads_pattern(bs, 1 * MiB + 32 * 1024, 4096, 0x33));
    CHECK(reads_pattern(bs, 1 * MiB + 36 * 1024, 28 * 1024, 0x22));
    CHECK(reads_pattern(bs, 5 * MiB, 4096, 0x23));
    CHECK(reads_pattern(bs, 4 * MiB, 1 * MiB, 0x00));
    block_close(bs);
    if (have_qemu_img) {
        CHECK(qemu_check(tp("d2/sub/top.qcow2")) == 0);
        CHECK(sh("qemu-img convert -O raw '%s' '%s'", tp("d2/sub/top.qcow2"), tp("top.raw")) == 0);
        bs = open_ok(tp("top.raw"), "raw", true);
        if (bs) {
            struct block *top = open_ok(tp("d2/sub/top.qcow2"), NULL, true);

            if (top) {
                CHECK(images_equal(bs, top));
                block_close(top);
            }
            block_close(bs);
        }
    }
    /* Opening from another working folder resolves relative to the image, not the cwd. */
    {
        char cwd[4096];

        if (getcwd(cwd, sizeof(cwd)) && chdir(tp("d1")) == 0) {
            bs = open_ok("../d2/sub/top.qcow2", NULL, true);
            if (bs) {
                CHECK(reads_pattern(bs, 1 * MiB + 32 * 1024, 4096, 0x33));
                block_close(bs);
            }
            CHECK(chdir(cwd) == 0);
        }
    }
}

/* The first 64 KiB of a file, to see whether a call changed it. */
static bool file_head(const char *path, uint8_t *out)
{
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && pread(fd, out, 65536, 0) > 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

static bool backing_is(const char *path, const char *want)
{
    char name[4096], fmt[32], err[BLOCK_ERR_LEN] = "";

    return block_query_backing(path, NULL, name, sizeof(name), fmt, sizeof(fmt), err) == 0 &&
           !strcmp(name, want);
}

/* block_anchor_backing(): a backing name relative to the image's folder becomes the absolute
 * path it resolved to, so the image can move to another folder and read as before; absolute
 * names, images without a backing file and raw images are left alone; an image in use is
 * refused; a name that does not fit the header cluster is refused with the image unchanged. */
static void test_anchor_backing(void)
{
    static uint8_t head[65536], head2[65536];
    char err[BLOCK_ERR_LEN] = "", cwd[4096], rel[400], abs_base[256];
    struct block *bs, *top, *holder;

    CHECK(sh("mkdir -p '%s' '%s'", tp("an1"), tp("an2")) == 0);
    make_raw_file(tp("an1/base.raw"), 4 * MiB, 11);
    CHECK(block_create_qcow2(tp("an1/top.qcow2"), 0, 16, "base.raw", "raw", err) == 0);
    bs = open_ok(tp("an1/top.qcow2"), NULL, false);
    if (!bs)
        return;
    write_pattern(bs, 1 * MiB, 64 * 1024, 0x44);
    block_close(bs);

    /* Named relative to the working folder, as a user would. */
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL && chdir(tmpdir) == 0);
    CHECK(block_anchor_backing("an1/top.qcow2", NULL, err) == 0 || !printf("%s\n", err));
    CHECK(chdir(cwd) == 0);
    tmp_path(abs_base, "an1/base.raw");
    CHECK(backing_is(tp("an1/top.qcow2"), abs_base));
    CHECK(rename(tp("an1/top.qcow2"), tp("an2/top.qcow2")) == 0);
    top = open_ok(tp("an2/top.qcow2"), NULL, true);
    bs = open_ok(tp("an1/base.raw"), "raw", true);
    if (top && bs) {
        uint8_t a[4096], b[4096];

        CHECK(reads_pattern(top, 1 * MiB, 64 * 1024, 0x44));
        CHECK(block_read(top, 3 * MiB, a, sizeof(a)) == 0 && block_read(bs, 3 * MiB, b, 4096) == 0);
        CHECK(memcmp(a, b, sizeof(a)) == 0);
        CHECK(block_length(top) == 4 * MiB);
    }
    block_close(top);
    block_close(bs);
    if (have_qemu_img) {
        CHECK(qemu_check(tp("an2/top.qcow2")) == 0);
        CHECK(sh("qemu-img info '%s' | grep -qxF 'backing file: %s'", tp("an2/top.qcow2"),
                 abs_base) == 0);
    }

    /* Absolute already, no backing file, raw: nothing written. */
    CHECK(file_head(tp("an2/top.qcow2"), head));
    CHECK(block_anchor_backing(tp("an2/top.qcow2"), "qcow2", err) == 0);
    CHECK(file_head(tp("an2/top.qcow2"), head2) && !memcmp(head, head2, sizeof(head)));
    CHECK(block_create_qcow2(tp("an2/plain.qcow2"), 1 * MiB, 16, NULL, NULL, err) == 0);
    CHECK(file_head(tp("an2/plain.qcow2"), head));
    CHECK(block_anchor_backing(tp("an2/plain.qcow2"), NULL, err) == 0);
    CHECK(file_head(tp("an2/plain.qcow2"), head2) && !memcmp(head, head2, sizeof(head)));
    CHECK(block_anchor_backing(tp("an1/base.raw"), NULL, err) == 0);

    /* In use: refused, unchanged. */
    CHECK(block_create_qcow2(tp("an2/o.qcow2"), 0, 16, "top.qcow2", "qcow2", err) == 0);
    holder = open_ok(tp("an2/o.qcow2"), NULL, false);
    CHECK(block_anchor_backing(tp("an2/o.qcow2"), NULL, err) == -EBUSY);
    CHECK(backing_is(tp("an2/o.qcow2"), "top.qcow2"));
    block_close(holder);

    /* 512-byte clusters and a long name ("./././.../b.qcow2", which fits as it is but not
     * with the folder in front): no room, unchanged, still opens. */
    for (int i = 0; i < 170; i++)
        memcpy(rel + 2 * i, "./", 2);
    snprintf(rel + 340, sizeof(rel) - 340, "b.qcow2");
    CHECK(block_create_qcow2(tp("an2/b.qcow2"), 1 * MiB, 16, NULL, NULL, err) == 0);
    CHECK(block_create_qcow2(tp("an2/s.qcow2"), 0, 9, rel, "qcow2", err) == 0 ||
          !printf("%s\n", err));
    CHECK(file_head(tp("an2/s.qcow2"), head));
    err[0] = '\0';
    CHECK(block_anchor_backing(tp("an2/s.qcow2"), NULL, err) == -ENOSPC);
    CHECK(strstr(err, "no room") != NULL);
    CHECK(file_head(tp("an2/s.qcow2"), head2) && !memcmp(head, head2, 512));
    CHECK(backing_is(tp("an2/s.qcow2"), rel));
    bs = open_ok(tp("an2/s.qcow2"), NULL, true);
    block_close(bs);
}

static void test_backing_loop(void)
{
    char err[BLOCK_ERR_LEN] = "";
    struct block *bs = NULL;
    int ret;

    CHECK(block_create_qcow2(tp("loop-a.qcow2"), MiB, 16, "loop-b.qcow2", "qcow2", err) == 0);
    CHECK(block_create_qcow2(tp("loop-b.qcow2"), MiB, 16, "loop-a.qcow2", "qcow2", err) == 0);
    ret = block_open(tp("loop-a.qcow2"), NULL, true, &bs, err);
    CHECK(ret == -ELOOP);
    CHECK(strstr(err, "deeper than 32") != NULL);
    CHECK(strstr(err, "loop-a.qcow2") != NULL);
    ret = block_open(tp("missing-backing.qcow2"), NULL, true, &bs, err);
    CHECK(ret == -ENOENT);
    CHECK(block_create_qcow2(tp("orphan.qcow2"), MiB, 16, "nonexistent.img", "raw", err) == 0);
    ret = block_open(tp("orphan.qcow2"), NULL, true, &bs, err);
    CHECK(ret == -ENOENT);
    CHECK(strstr(err, "backing file 'nonexistent.img'") != NULL);
}

/* ---- Compressed clusters ---- */

static void test_compressed(const char *ctype, unsigned cluster_size)
{
    char name[64], what[96];
    char raw[256];
    tmp_path(raw, "comp-src.raw");
    struct block *q, *r;

    snprintf(what, sizeof(what), "compressed %s %u", ctype, cluster_size);
    if (!need_qemu(what))
        return;
    printf("%s\n", what);
    snprintf(name, sizeof(name), "comp-%s-%u.qcow2", ctype, cluster_size);
    make_raw_file(raw, 6 * MiB + 12345, 7);
    /* Compressible stretches: text and zeroes. */
    CHECK(sh("yes 'tessera compresses nicely' | head -c 1500000 | dd of='%s' bs=64k seek=100000 "
             "oflag=seek_bytes iflag=fullblock conv=notrunc status=none",
             raw) == 0);
    CHECK(sh("truncate -s 7M '%s' && qemu-img convert -c -O qcow2 -o compression_type=%s,"
             "cluster_size=%u '%s' '%s'",
             raw, ctype, cluster_size, raw, tp(name)) == 0);
    CHECK(sh("cp '%s' '%s'", raw, tp("comp-copy.raw")) == 0);
    q = open_ok(tp(name), NULL, false);
    r = open_ok(tp("comp-copy.raw"), "raw", false);
    if (!q || !r)
        return;
    CHECK(images_equal(q, r));
    /* Small unaligned reads inside and across compressed clusters. */
    for (int i = 0; i < 200; i++) {
        uint8_t a[3000], b[3000];
        uint64_t off = rng() % (7 * MiB - sizeof(a));

        CHECK(block_read(q, off, a, sizeof(a)) == 0 && block_read(r, off, b, sizeof(b)) == 0 &&
              memcmp(a, b, sizeof(a)) == 0);
    }
    /* Writes into compressed clusters copy them into normal ones. */
    for (int i = 0; i < 300; i++) {
        uint8_t buf[9000];
        uint64_t off = rng() % (7 * MiB - sizeof(buf)), len = 1 + rng() % sizeof(buf);

        fill_random(buf, len);
        if (i % 5 == 4) {
            CHECK(block_discard(q, off, len) == 0 && block_discard(r, off, len) == 0);
        } else {
            CHECK(block_write(q, off, buf, len) == 0 && block_write(r, off, buf, len) == 0);
        }
    }
    CHECK(images_equal(q, r));
    block_close(q);
    block_close(r);
    CHECK(qemu_check(tp(name)) == 0);
    CHECK(qemu_compare(tp(name), "qcow2", tp("comp-copy.raw"), "raw") == 0);
}

/* ---- Version 2 ---- */

static void test_v2(void)
{
    struct block *bs;
    uint8_t buf[8192];

    if (!need_qemu("version 2 image"))
        return;
    CHECK(sh("qemu-img create -q -f qcow2 -o compat=0.10 '%s' 32M", tp("v2.qcow2")) == 0);
    CHECK(sh("od -An -tx1 -j4 -N4 '%s' | grep -q '00 00 00 02'", tp("v2.qcow2")) == 0);
    bs = open_ok(tp("v2.qcow2"), NULL, false);
    if (!bs)
        return;
    fill_random(buf, sizeof(buf));
    CHECK(block_write(bs, 3 * MiB + 7, buf, sizeof(buf)) == 0);
    CHECK(block_write_zeroes(bs, 3 * MiB, 65536, false) == 0);
    CHECK(reads_pattern(bs, 3 * MiB, 65536, 0));
    CHECK(block_discard(bs, 0, 32 * MiB) == 0);
    CHECK(reads_pattern(bs, 0, 32 * MiB, 0));
    CHECK(block_write(bs, 31 * MiB, buf, sizeof(buf)) == 0);
    block_close(bs);
    CHECK(qemu_check(tp("v2.qcow2")) == 0);
    CHECK(sh("od -An -tx1 -j4 -N4 '%s' | grep -q '00 00 00 02'", tp("v2.qcow2")) == 0);
}

/* ---- Internal snapshots ---- */

static void test_snapshots(void)
{
    struct block_snapshot_info *list = NULL;
    char img[256], model[256];
    struct block *q, *m;
    unsigned count = 0;
    char err[BLOCK_ERR_LEN] = "";
    struct block_create_opts o = {.size = 16 * MiB};
    time_t now = time(NULL);

    tmp_path(img, "snap.qcow2");
    tmp_path(model, "snap-model.raw");
    if (!need_qemu("internal snapshots"))
        return;
    CHECK(sh("qemu-img create -q -f qcow2 '%s' 16M", img) == 0);
    CHECK(block_create(model, "raw", &o, err) == 0);
    q = open_ok(img, NULL, false);
    if (!q)
        return;
    CHECK(block_snapshot_list(q, &list, &count) == 0);
    CHECK(count == 0 && list == NULL);
    m = open_ok(model, "raw", false);
    write_pattern(q, 0, 3 * MiB, 0xa1);
    write_pattern(m, 0, 3 * MiB, 0xa1);
    block_close(q);
    block_close(m);
    CHECK(sh("qemu-img snapshot -c first '%s' && cp '%s' '%s'", img, model, tp("snap1.raw")) == 0);
    q = open_ok(img, NULL, false);
    m = open_ok(model, "raw", false);
    if (!q || !m)
        return;
    write_pattern(q, 1 * MiB + 512, 5000, 0xb2);
    write_pattern(m, 1 * MiB + 512, 5000, 0xb2);
    block_close(q);
    block_close(m);
    CHECK(sh("qemu-img snapshot -c second-snapshot '%s' && cp '%s' '%s'", img, model,
             tp("snap2.raw")) == 0);

    q = open_ok(img, NULL, true);
    if (!q)
        return;
    CHECK(block_snapshot_list(q, &list, &count) == 0);
    CHECK(count == 2);
    if (count == 2) {
        CHECK(strcmp(list[0].id, "1") == 0 && strcmp(list[0].name, "first") == 0);
        CHECK(strcmp(list[1].id, "2") == 0 && strcmp(list[1].name, "second-snapshot") == 0);
        CHECK_EQ_U64(list[0].vm_state_size, 0);
        CHECK_EQ_U64(list[1].disk_size, 16 * MiB);
        CHECK(list[0].date_sec + 3600 > (uint64_t)now && list[0].date_sec < (uint64_t)now + 60);
    }
    block_snapshot_list_free(list, count);
    block_close(q);

    /* Writing the active layer copies shared clusters and L2 tables; snapshots stay intact. */
    q = open_ok(img, NULL, false);
    m = open_ok(model, "raw", false);
    if (!q || !m)
        return;
    for (int i = 0; i < 100; i++) {
        uint8_t buf[20000];
        uint64_t off = rng() % (16 * MiB - sizeof(buf)), len = 1 + rng() % sizeof(buf);

        fill_random(buf, len);
        if (i % 7 == 3) {
            CHECK(block_write_zeroes(q, off, len, i % 2) == 0 &&
                  block_write_zeroes(m, off, len, i % 2) == 0);
        } else {
            CHECK(block_write(q, off, buf, len) == 0 && block_write(m, off, buf, len) == 0);
        }
    }
    CHECK(images_equal(q, m));
    block_close(q);
    block_close(m);
    CHECK(qemu_check(img) == 0);
    CHECK(qemu_compare(img, "qcow2", model, "raw") == 0);
    CHECK(sh("qemu-img convert -l snapshot.name=first -O raw '%s' '%s' && cmp -s '%s' '%s'", img,
             tp("got1.raw"), tp("got1.raw"), tp("snap1.raw")) == 0);
    CHECK(sh("qemu-img convert -l snapshot.name=second-snapshot -O raw '%s' '%s' && "
             "cmp -s '%s' '%s'",
             img, tp("got2.raw"), tp("got2.raw"), tp("snap2.raw")) == 0);
}

/* ---- Corrupt headers ---- */

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

struct corrupt_case {
    const char *what;
    unsigned offset; /* header byte to patch */
    int bytes;
    uint64_t value;
    unsigned offset2; /* a second field to patch, when bytes2 > 0 */
    int bytes2;
    uint64_t value2;
    const char *fmt;  /* format to open as (NULL: probe) */
    const char *want; /* substring the error must contain */
};

static void test_corrupt_headers(void)
{
    static const struct corrupt_case cases[] = {
        {"magic", 0, 4, 0x514649fc, 0, 0, 0, "qcow2", "magic"},
        {"version", 4, 4, 4, 0, 0, 0, NULL, "version is 4"},
        {"version 1", 4, 4, 1, 0, 0, 0, NULL, "version is 1"},
        {"cluster_bits low", 20, 4, 8, 0, 0, 0, NULL, "cluster_bits is 8"},
        {"cluster_bits high", 20, 4, 22, 0, 0, 0, NULL, "cluster_bits is 22"},
        {"l1 offset misaligned", 40, 8, 0x30200, 0, 0, 0, NULL,
         "L1 table offset 0x30200 is not "
         "cluster-aligned"},
        {"l1 size too big", 36, 4, 0x10000000, 0, 0, 0, NULL, "L1 size 268435456"},
        {"l1 size too small", 36, 4, 0, 0, 0, 0, NULL, "too small for virtual size"},
        {"l1 table past eof", 40, 8, 0x100000000ull, 0, 0, 0, NULL, "L1 table (offset 0x100000000"},
        {"refcount table outside file", 48, 8, 0x100000000ull, 0, 0, 0, NULL,
         "refcount table offset 0x100000000"},
        {"refcount table misaligned", 48, 8, 0x10008, 0, 0, 0, NULL,
         "refcount table offset 0x10008"},
        {"l1 table over the refcount table", 40, 8, 0x10000, 0, 0, 0, NULL,
         "L1 table offset 0x10000 overlaps"},
        {"refcount table over the header", 48, 8, 0, 0, 0, 0, NULL, "refcount table offset 0x0"},
        {"refcount_table_clusters 0", 56, 4, 0, 0, 0, 0, NULL, "refcount_table_clusters"},
        {"unknown incompatible bit", 72, 8, 1ull << 5, 0, 0, 0, NULL, "incompatible feature bit 5"},
        {"unknown incompatible bit 63", 72, 8, 1ull << 63, 0, 0, 0, NULL,
         "incompatible feature bit 63"},
        {"external data file", 72, 8, 1ull << 2, 0, 0, 0, NULL, "external data file"},
        {"extended L2", 72, 8, 1ull << 4, 0, 0, 0, NULL, "extended L2"},
        {"dirty", 72, 8, 1, 0, 0, 0, NULL, "dirty"},
        {"compression bit without type", 72, 8, 1ull << 3, 0, 0, 0, NULL, "compression"},
        {"compression type without bit", 104, 1, 1, 0, 0, 0, NULL, "compression_type is 1"},
        {"backing name offset past eof", 8, 8, 0x7fffff00, 16, 4, 8, NULL,
         "backing file name offset"},
        {"backing name crossing the cluster", 8, 8, 0xfff0, 16, 4, 0x20, NULL,
         "backing file name offset"},
        {"backing name too long", 8, 8, 0x200, 16, 4, 5000, NULL, "backing_file_size"},
        {"size overflow", 24, 8, UINT64_MAX, 0, 0, 0, NULL, "header field size"},
        {"size too large", 24, 8, 1ull << 62, 0, 0, 0, NULL, "header field size"},
        {"crypt_method", 32, 4, 2, 0, 0, 0, NULL, "crypt_method is 2"},
        {"refcount_order", 96, 4, 7, 0, 0, 0, NULL, "refcount_order is 7"},
        {"header_length", 100, 4, 100, 0, 0, 0, NULL, "header_length is 100"},
        {"header extension length", 116, 4, 0xfffffff0u, 0, 0, 0, NULL,
         "header extension 0x6803f857"},
        {"nb_snapshots", 60, 4, 1000000, 0, 0, 0, NULL, "nb_snapshots"},
        {"snapshot table offset", 60, 4, 1, 0, 0, 0, NULL, "snapshot table offset"},
    };
    char err[BLOCK_ERR_LEN];
    char good[256], bad[256];
    uint8_t hdr[512];

    tmp_path(good, "good.qcow2");
    tmp_path(bad, "bad.qcow2");
    CHECK(block_create_qcow2(good, 64 * MiB, 16, NULL, NULL, err) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct corrupt_case *c = &cases[i];
        struct block *bs = NULL;
        int fd, ret;

        CHECK(sh("cp '%s' '%s'", good, bad) == 0);
        fd = open(bad, O_RDWR);
        CHECK(pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
        put_be(hdr + c->offset, c->value, c->bytes);
        if (c->bytes2)
            put_be(hdr + c->offset2, c->value2, c->bytes2);
        CHECK(pwrite(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
        close(fd);
        err[0] = '\0';
        ret = block_open(bad, c->fmt, false, &bs, err);
        if (ret == 0 || !strstr(err, c->want) || strncmp(err, bad, strlen(bad)) != 0)
            fprintf(stderr, "corrupt header '%s': ret %d, error '%s' (want '%s')\n", c->what, ret,
                    err, c->want);
        CHECK(ret < 0);
        CHECK(strstr(err, c->want) != NULL);
        CHECK(strncmp(err, bad, strlen(bad)) == 0);
        if (ret == 0)
            block_close(bs);
    }
    /* A dirty image still opens read-only (with a warning). */
    {
        struct block *bs = NULL;
        int fd;

        CHECK(sh("cp '%s' '%s'", good, bad) == 0);
        fd = open(bad, O_RDWR);
        CHECK(pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
        put_be(hdr + 72, 1, 8);
        CHECK(pwrite(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
        close(fd);
        log_set_level(LOG_ERROR);
        CHECK(block_open(bad, NULL, true, &bs, err) == 0);
        log_set_level(LOG_WARN);
        block_close(bs);
    }
    /* Too short to hold a header. */
    {
        struct block *bs = NULL;

        CHECK(sh("head -c 50 '%s' > '%s'", good, bad) == 0);
        CHECK(block_open(bad, "qcow2", true, &bs, err) == -EINVAL);
        CHECK(strstr(err, "too short") != NULL);
    }
    /* A file with the magic but a wrong header is never opened as raw by probing. */
    {
        struct block *bs = NULL;

        CHECK(sh("head -c 600 '%s' > '%s'", good, bad) == 0);
        CHECK(block_open(bad, NULL, true, &bs, err) < 0);
    }
}

/* Corruption met at run time: -EIO, one log line, and no more writes. */
static void test_runtime_corruption(void)
{
    char err[BLOCK_ERR_LEN];
    char img[256];
    tmp_path(img, "rt-corrupt.qcow2");
    struct block *bs;
    uint8_t buf[512] = {1}, l1e[8];
    int fd;

    CHECK(block_create_qcow2(img, 2048 * MiB, 16, NULL, NULL, err) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK(block_write(bs, 0, buf, sizeof(buf)) == 0);
    block_close(bs);
    /* L1 table at cluster 3 (1 header + 1 refcount table + 1 block): point entry 0 past EOF. */
    fd = open(img, O_RDWR);
    put_be(l1e, 0x8000000010000000ull, 8);
    CHECK(pwrite(fd, l1e, 8, 3 * 65536) == 8);
    close(fd);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK(block_read(bs, 0, buf, sizeof(buf)) == -EIO);
    CHECK(block_write(bs, 1024 * MiB, buf, sizeof(buf)) == -EIO);
    CHECK(block_read(bs, 1024 * MiB, buf, sizeof(buf)) == 0); /* other L2 tables still read */
    block_close(bs);
    /* Misaligned L2 entry. */
    CHECK(block_create_qcow2(img, 64 * MiB, 16, NULL, NULL, err) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK(block_write(bs, 0, buf, sizeof(buf)) == 0);
    block_close(bs);
    fd = open(img, O_RDWR);
    CHECK(pread(fd, l1e, 8, 3 * 65536) == 8);
    {
        uint64_t l2 = 0;

        for (int i = 0; i < 8; i++)
            l2 = (l2 << 8) | l1e[i];
        l2 &= 0x00fffffffffffe00ull;
        put_be(l1e, 0x8000000000050200ull, 8);
        CHECK(pwrite(fd, l1e, 8, (off_t)l2) == 8);
    }
    close(fd);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    CHECK(block_read(bs, 0, buf, sizeof(buf)) == -EIO);
    CHECK(block_flush(bs) == -EIO);
    block_close(bs);
}

/* Freed clusters are reused: the file does not grow over repeated write/discard cycles. */
static void test_cluster_reuse(void)
{
    char err[BLOCK_ERR_LEN];
    char img[256];
    tmp_path(img, "reuse.qcow2");
    uint8_t *buf = malloc(MiB);
    struct block *bs;
    struct stat st;
    off_t after_first = 0;

    memset(buf, 0x5a, MiB);
    CHECK(block_create_qcow2(img, 64 * MiB, 16, NULL, NULL, err) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    for (int round = 0; round < 10; round++) {
        for (uint64_t off = 0; off < 8 * MiB; off += MiB)
            CHECK(block_write(bs, off + (uint64_t)round * 4 * MiB, buf, MiB) == 0);
        CHECK(block_discard(bs, (uint64_t)round * 4 * MiB, 8 * MiB) == 0);
        CHECK(block_flush(bs) == 0);
        if (round == 0) {
            CHECK(stat(img, &st) == 0);
            after_first = st.st_size;
        }
    }
    block_close(bs);
    CHECK(stat(img, &st) == 0);
    CHECK(st.st_size <= after_first + 2 * (off_t)MiB);
    if (have_qemu_img)
        CHECK(qemu_check(img) == 0);
    free(buf);
}

/* write_zeroes without unmap keeps a cluster allocated (v3 zero flag with an offset). */
static void test_zero_keep_allocation(void)
{
    char err[BLOCK_ERR_LEN];
    char img[256];
    tmp_path(img, "zero-keep.qcow2");
    uint8_t buf[65536];
    struct block *bs;

    CHECK(block_create_qcow2(img, 4 * MiB, 16, NULL, NULL, err) == 0);
    bs = open_ok(img, NULL, false);
    if (!bs)
        return;
    memset(buf, 0x77, sizeof(buf));
    CHECK(block_write(bs, 65536, buf, sizeof(buf)) == 0);
    CHECK(block_write_zeroes(bs, 65536, 65536, false) == 0);
    CHECK(reads_pattern(bs, 65536, 65536, 0));
    CHECK(block_write(bs, 65536 + 100, buf, 100) == 0);
    CHECK(reads_pattern(bs, 65536, 100, 0));
    CHECK(reads_pattern(bs, 65536 + 100, 100, 0x77));
    CHECK(reads_pattern(bs, 65536 + 200, 65536 - 200, 0));
    block_close(bs);
    if (have_qemu_img) {
        CHECK(qemu_check(img) == 0);
        CHECK(sh("qemu-io -f qcow2 -c 'read -P 0x77 65636 100' -c 'read -P 0 65736 65336' '%s' "
                 ">/dev/null",
                 img) == 0);
    }
}

/* Images in QEMU's preallocation modes and with lazy refcounts, written and compared. */
static void test_qemu_variants(void)
{
    static const char *const opts[] = {
        "preallocation=metadata",
        "preallocation=falloc,cluster_size=4096",
        "lazy_refcounts=on",
        "compat=0.10,preallocation=metadata,cluster_size=8192",
    };
    char err[BLOCK_ERR_LEN];
    struct block_create_opts o = {.size = 8 * MiB};

    if (!need_qemu("preallocated images"))
        return;
    for (size_t v = 0; v < sizeof(opts) / sizeof(opts[0]); v++) {
        char img[256], raw[256];
        struct block *q, *r;

        tmp_path(img, "variant.qcow2");
        tmp_path(raw, "variant.raw");
        CHECK(sh("qemu-img create -q -f qcow2 -o %s '%s' 8M", opts[v], img) == 0);
        CHECK(block_create(raw, "raw", &o, err) == 0);
        q = open_ok(img, NULL, false);
        r = open_ok(raw, "raw", false);
        if (!q || !r)
            return;
        CHECK(images_equal(q, r));
        for (int i = 0; i < 300; i++) {
            uint8_t buf[20000];
            uint64_t off = rng() % (8 * MiB - sizeof(buf)), len = 1 + rng() % sizeof(buf);
            int k = (int)(rng() % 4);

            fill_random(buf, len);
            if (k == 0)
                CHECK(block_discard(q, off, len) == 0 && block_discard(r, off, len) == 0);
            else if (k == 1)
                CHECK(block_write_zeroes(q, off, len, false) == 0 &&
                      block_write_zeroes(r, off, len, false) == 0);
            else
                CHECK(block_write(q, off, buf, len) == 0 && block_write(r, off, buf, len) == 0);
        }
        CHECK(images_equal(q, r));
        block_close(q);
        block_close(r);
        if (qemu_check(img) != 0 || qemu_compare(img, "qcow2", raw, "raw") != 0)
            fprintf(stderr, "variant %s failed\n", opts[v]);
        CHECK(qemu_check(img) == 0);
        CHECK(qemu_compare(img, "qcow2", raw, "raw") == 0);
    }
    /* Features we do not implement are refused by name. */
    {
        char img[256];
        struct block *bs = NULL;

        tmp_path(img, "extl2.qcow2");
        CHECK(sh("qemu-img create -q -f qcow2 -o extended_l2=on '%s' 8M", img) == 0);
        CHECK(block_open(img, NULL, true, &bs, err) == -ENOTSUP);
        CHECK(strstr(err, "extended L2 entries (incompatible feature bit 4)") != NULL);
    }
}

int main(void)
{
    static const struct diff_case diffs[] = {
        {"own-64k", 16, NULL, 0, 2000, 64 * MiB},
        {"qemu-4k-rawbacking", 12, "", 1, 2000, 64 * MiB},
        {"qemu-v2-qcow2backing", 16, "compat=0.10", 2, 2000, 64 * MiB},
        {"own-512-growth", 9, NULL, 0, 2000, 64 * MiB},
        {"qemu-1bit-refcounts", 10, "refcount_bits=1", 0, 1000, 64 * MiB},
        {"qemu-64bit-refcounts", 9, "refcount_bits=64", 1, 1000, 64 * MiB},
        {"own-2m-clusters", 21, NULL, 1, 600, 64 * MiB},
    };

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tessera-qcow2-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    have_qemu_img = sh("qemu-img --version >/dev/null 2>&1") == 0;
    test_create_basic();
    test_qemu_created();
    test_locking();
    for (size_t i = 0; i < sizeof(diffs) / sizeof(diffs[0]); i++) {
        if (diffs[i].qemu_opts && !need_qemu(diffs[i].name))
            continue;
        if (diffs[i].backing == 2 && !have_qemu_img)
            continue;
        test_differential(&diffs[i]);
    }
    test_backing_overlays();
    test_backing_depth3_and_dirs();
    test_backing_loop();
    test_anchor_backing();
    test_compressed("zlib", 65536);
    test_compressed("zstd", 65536);
    test_compressed("zlib", 4096);
    test_compressed("zstd", 2 * 1024 * 1024);
    test_v2();
    test_qemu_variants();
    test_snapshots();
    test_corrupt_headers();
    test_runtime_corruption();
    test_cluster_reuse();
    test_zero_keep_allocation();
    if (!getenv("KEEP_TMP"))
        sh("rm -rf '%s'", tmpdir);
    return test_finish("block_qcow2");
}
