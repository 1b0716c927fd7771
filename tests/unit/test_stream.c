/* The state stream: what is written reads back exactly (RAM with zero pages elided, sections,
 * trailer); every truncation, every flipped byte and every foreign stream is refused with a
 * message, never applied silently; dirty-page harvests and the section cursor behave. */
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "base/state.h"
#include "vmm/stream.h"

#define RAM_SIZE (2u << 20) /* 512 pages: two full RAM records */

/* Writes a stream of `ram` (all pages, or those in bitmap) with two sections into a memfd. */
static int write_stream(const struct guest_ram *ram, const uint64_t *bitmap)
{
    struct stream_writer *w;
    int fd = memfd_create("stream", 0);
    struct sbuf b;

    sbuf_init(&b);
    sbuf_put_u32(&b, 0xdeadbeef);
    sbuf_put_str(&b, "hello");
    CHECK(stream_writer_create(fd, "test", 1, &w) == 0);
    CHECK(stream_write_header(w, "{\"cpus\": 1}", 0) == 0);
    CHECK(stream_write_ram(w, ram, bitmap, NULL, NULL) == 0);
    CHECK(stream_write_section(w, "cpu.0", 1, b.data, b.len) == 0);
    CHECK(stream_write_section(w, "empty", 7, NULL, 0) == 0);
    CHECK(stream_write_end(w) == 0);
    stream_writer_destroy(w);
    sbuf_free(&b);
    return fd;
}

/* Reads a whole stream from fd into ram; returns 0 when it ends with a good trailer. */
static int read_stream(int fd, struct guest_ram *ram, char *err, size_t errlen, unsigned *sections)
{
    struct stream_reader *r;
    char *json = NULL;
    int ret = -1;

    lseek(fd, 0, SEEK_SET);
    *sections = 0;
    if (stream_reader_create(fd, "test.tsr", &r))
        return -1;
    if (stream_read_header(r, &json) == 0) {
        for (;;) {
            struct stream_record rec;

            if (stream_read_next(r, ram, &rec))
                break;
            if (rec.item == STREAM_ITEM_SECTION) {
                /* Only sections as write_stream() wrote them ever come out. */
                CHECK((!strcmp(rec.name, "cpu.0") && rec.version == 1 && rec.len == 13 &&
                       !memcmp(rec.payload, "\xef\xbe\xad\xde\x05\0\0\0hello", 13)) ||
                      (!strcmp(rec.name, "empty") && rec.version == 7 && rec.len == 0));
                (*sections)++;
            }
            if (rec.item == STREAM_ITEM_END) {
                ret = 0;
                break;
            }
        }
    }
    snprintf(err, errlen, "%s", stream_reader_error(r) ? stream_reader_error(r) : "");
    free(json);
    stream_reader_destroy(r);
    return ret;
}

/* Closes a hand-made record: appends the CRC-32 of everything in fd before it. */
static void append_check(int fd)
{
    uint8_t buf[4096], le[4];
    uint32_t crc = (uint32_t)crc32(0, NULL, 0);
    ssize_t n;

    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        crc = (uint32_t)crc32(crc, buf, (uInt)n);
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(crc >> (8 * i));
    CHECK(write(fd, le, 4) == 4);
}

static void fill(struct guest_ram *ram)
{
    for (unsigned pg = 0; pg < RAM_SIZE / 4096; pg++) {
        if (pg % 3 == 0)
            continue; /* zero pages */
        for (unsigned i = 0; i < 4096; i++)
            ram->host[pg * 4096 + i] = (uint8_t)(pg * 7 + i * (pg % 5 + 1));
    }
}

static void test_roundtrip_and_corruption(void)
{
    struct guest_ram a, b;
    char err[512];
    unsigned sections;
    off_t size;
    uint8_t *copy;
    int fd;

    CHECK(guest_ram_init(&a, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_init(&b, 0x80000000, RAM_SIZE) == 0);
    fill(&a);
    fd = write_stream(&a, NULL);
    size = lseek(fd, 0, SEEK_END);
    /* Zero pages cost one byte: the stream is far smaller than the non-zero data. */
    CHECK(size > 0 && size < RAM_SIZE);
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(sections == 2);
    CHECK(memcmp(a.host, b.host, RAM_SIZE) == 0);
    {
        /* Loading left the zero pages alone: they take no host memory. */
        unsigned char res[RAM_SIZE / 4096];
        struct guest_ram c;

        CHECK(guest_ram_init(&c, 0x80000000, RAM_SIZE) == 0);
        CHECK(read_stream(fd, &c, err, sizeof(err), &sections) == 0);
        CHECK(mincore(c.host, RAM_SIZE, res) == 0);
        CHECK((res[0] & 1) == 0 && (res[3] & 1) == 0 && (res[1] & 1) == 1);
        guest_ram_destroy(&c);
    }

    copy = malloc((size_t)size);
    CHECK(pread(fd, copy, (size_t)size, 0) == size);
    /* Every truncation is refused and says so. */
    for (off_t cut = 0; cut < size; cut += (cut < 64 ? 1 : 97)) {
        int t = memfd_create("cut", 0);

        CHECK(write(t, copy, (size_t)cut) == cut);
        CHECK(read_stream(t, &b, err, sizeof(err), &sections) == -1);
        CHECK(strstr(err, "truncated") || strstr(err, "magic") || strstr(err, "Tessera"));
        close(t);
    }
    /* Every flipped byte is refused and called what it is: past the magic and the version,
     * corruption, never a strange field value or a decoder's complaint. Fields are not read
     * before their record's checksum vouched for them, so no section reaches a device. */
    for (off_t at = 0; at < size; at += (at < 64 ? 1 : 7)) {
        int t = memfd_create("flip", 0);
        const char *want = at < 8 ? "not a Tessera" : at < 12 ? "version" : "corrupt";

        copy[at] ^= 0x20;
        CHECK(write(t, copy, (size_t)size) == size);
        copy[at] ^= 0x20;
        CHECK(read_stream(t, &b, err, sizeof(err), &sections) == -1);
        CHECK(strstr(err, want) != NULL ||
              !fprintf(stderr, "flip at %lld: %s\n", (long long)at, err));
        close(t);
    }
    /* A stream from a machine with more RAM does not fit. */
    {
        struct guest_ram small;

        CHECK(guest_ram_init(&small, 0x80000000, RAM_SIZE / 2) == 0);
        CHECK(read_stream(fd, &small, err, sizeof(err), &sections) == -1);
        CHECK(strstr(err, "does not fit") != NULL);
        guest_ram_destroy(&small);
    }
    /* A future format version is refused by number. */
    copy[8] = STREAM_VERSION + 1;
    {
        int t = memfd_create("ver", 0);

        CHECK(write(t, copy, (size_t)size) == size);
        CHECK(read_stream(t, &b, err, sizeof(err), &sections) == -1);
        CHECK(strstr(err, "version 3") != NULL);
        close(t);
    }
    free(copy);
    close(fd);
    guest_ram_destroy(&a);
    guest_ram_destroy(&b);
}

/* A later round carries only dirty pages and turns a page that became zero into zeros. */
static void test_dirty_rounds(void)
{
    struct guest_ram a, b;
    uint64_t bits[RAM_SIZE / 4096 / 64];
    char err[512];
    unsigned sections;
    int fd;

    struct stream_writer *w;
    off_t first_pass;

    CHECK(guest_ram_init(&a, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_init(&b, 0x80000000, RAM_SIZE) == 0);
    fill(&a);
    fd = memfd_create("rounds", 0);
    CHECK(stream_writer_create(fd, "test", 1, &w) == 0);
    CHECK(stream_write_header(w, "{}", 0) == 0);
    dirty_log_start(&a.dirty);
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), RAM_SIZE / 4096);
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), 0);
    CHECK(stream_write_ram(w, &a, NULL, NULL, NULL) == 0 && stream_flush(w) == 0);
    first_pass = lseek(fd, 0, SEEK_END);
    memset(a.host + 5 * 4096, 0, 4096);
    guest_ram_mark_dirty(&a, a.host + 5 * 4096, 4096);
    a.host[300 * 4096 + 17] = 0x99;
    guest_ram_mark_dirty(&a, a.host + 300 * 4096 + 17, 1);
    a.host[7 * 4096] = 0x42; /* written but not marked: must not travel */
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), 2);
    CHECK(stream_write_ram(w, &a, bits, NULL, NULL) == 0 && stream_write_end(w) == 0);
    stream_writer_destroy(w);
    CHECK(lseek(fd, 0, SEEK_END) - first_pass < 3 * 4096); /* the round is two pages */
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    /* The later round turned page 5 (data in the first pass) into zeros. */
    CHECK(b.host[5 * 4096 + 1] == 0 && b.host[300 * 4096 + 17] == 0x99);
    CHECK(b.host[7 * 4096] != 0x42);
    a.host[7 * 4096] = b.host[7 * 4096];
    CHECK(memcmp(a.host, b.host, RAM_SIZE) == 0);
    close(fd);
    guest_ram_destroy(&a);
    guest_ram_destroy(&b);
}

static void test_cursor(void)
{
    struct sbuf b;
    struct scur c;
    char s[8];

    sbuf_init(&b);
    sbuf_put_u8(&b, 1);
    sbuf_put_u16(&b, 0x1234);
    sbuf_put_u64(&b, 0x1122334455667788ull);
    sbuf_put_bool(&b, true);
    sbuf_put_str(&b, "abc");
    scur_init(&c, b.data, b.len, "dev");
    CHECK(scur_get_u8(&c) == 1);
    CHECK(scur_get_u16(&c) == 0x1234);
    CHECK(scur_get_u64(&c) == 0x1122334455667788ull);
    CHECK(scur_get_bool(&c));
    scur_get_str(&c, s, sizeof(s));
    CHECK(strcmp(s, "abc") == 0);
    CHECK(scur_finish(&c) == 0);
    /* Reading past the end: zeros and a sticky error naming the section. */
    CHECK(scur_get_u32(&c) == 0);
    CHECK(scur_ok(&c) == -1 && strstr(c.err, "dev: truncated"));
    /* Leftover bytes are an error too. */
    scur_init(&c, b.data, b.len, "dev");
    (void)scur_get_u8(&c);
    CHECK(scur_finish(&c) == -1 && strstr(c.err, "unexpected bytes"));
    /* A bool that is not 0/1, a string too long for its buffer. */
    scur_init(&c, (const uint8_t *)"\x02", 1, "dev");
    (void)scur_get_bool(&c);
    CHECK(scur_ok(&c) == -1);
    scur_init(&c, b.data + 12, b.len - 12, "dev");
    scur_get_str(&c, s, 3);
    CHECK(scur_ok(&c) == -1 && s[0] == '\0');
    sbuf_free(&b);
}

/* Writes all of `ram` as a stream of RAM records alone into fd and checks that every page was
 * sent, all but one of them as a zero page. */
static void write_ram_one_page(int fd, const struct guest_ram *ram)
{
    uint64_t sent = 0, zeros = 0;
    struct stream_writer *w;

    CHECK(stream_writer_create(fd, "test", 1, &w) == 0);
    CHECK(stream_write_header(w, "{}", 0) == 0);
    CHECK(stream_write_ram(w, ram, NULL, &sent, &zeros) == 0 && stream_write_end(w) == 0);
    stream_writer_destroy(w);
    CHECK_EQ_U64(sent, RAM_SIZE / 4096);
    CHECK_EQ_U64(zeros, RAM_SIZE / 4096 - 1);
}

/* Untouched RAM is known to be zero without looking: a snapshot of a mostly idle guest maps
 * no host memory for it, on either side. */
static void test_untouched_pages(void)
{
    struct guest_ram a, b;
    unsigned char res[RAM_SIZE / 4096];
    uint64_t mask;
    char err[512];
    unsigned sections;
    int fd = memfd_create("untouched", 0);

    CHECK(guest_ram_init(&a, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_init(&b, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_untouched(&a, 0, 64, &mask) == 0 && mask == UINT64_MAX);
    a.host[3 * 4096 + 5] = 7;
    a.host[70 * 4096] = 0; /* a read-for-write of zero still maps the page */
    CHECK(guest_ram_untouched(&a, 0, 64, &mask) == 0 && mask == (UINT64_MAX & ~(UINT64_C(1) << 3)));
    CHECK(guest_ram_untouched(&a, 64, 10, &mask) == 0 && mask == 0x3bf);
    CHECK(guest_ram_untouched(&a, RAM_SIZE / 4096 - 1, 2, &mask) == -EINVAL);
    write_ram_one_page(fd, &a);
    CHECK(mincore(a.host, RAM_SIZE, res) == 0);
    CHECK((res[100] & 1) == 0); /* the writer did not map what it did not need to look at */
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(memcmp(a.host, b.host, RAM_SIZE) == 0);
    /* Given back: untouched again. */
    guest_ram_clear(&a);
    CHECK(guest_ram_untouched(&a, 0, 64, &mask) == 0 && mask == UINT64_MAX);
    close(fd);
    guest_ram_destroy(&a);
    guest_ram_destroy(&b);
}

/* With huge pages asked for (as the machine does), one touched page may bring its whole huge
 * page in, so more pages look touched: the writer still finds the rest zero by their content
 * and sends them as zero pages, and the copy reads back the same. */
static void test_huge_pages(void)
{
    struct guest_ram a, b;
    char err[512];
    unsigned sections;
    int fd = memfd_create("huge", 0);

    CHECK(guest_ram_init(&a, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_init(&b, 0x80000000, RAM_SIZE) == 0);
    (void)guest_ram_set_huge(&a); /* -EINVAL where the kernel has no THP: same result */
    a.host[5 * 4096 + 1] = 9;
    a.host[300 * 4096] = 0;
    write_ram_one_page(fd, &a);
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(memcmp(a.host, b.host, RAM_SIZE) == 0 && b.host[5 * 4096 + 1] == 9);
    close(fd);
    guest_ram_destroy(&a);
    guest_ram_destroy(&b);
}

/* Block migration's disk records: sizes, data (compressed) and zero runs read back as written;
 * disk records are refused where the header announced none, after the sections, or with a
 * bad kind or length. */
static void test_disk_records(void)
{
    static uint8_t data[STREAM_DISK_CHUNK], zeros[8192];
    struct stream_reader *r;
    struct stream_writer *w;
    struct stream_record rec;
    struct guest_ram ram;
    char *json;
    int fd = memfd_create("disks", 0);

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + (i >> 9));
    CHECK(guest_ram_init(&ram, 0x80000000, RAM_SIZE) == 0);
    CHECK(stream_writer_create(fd, "test", 1, &w) == 0);
    CHECK(stream_write_header(w, "{}", STREAM_F_DISKS) == 0);
    CHECK(stream_write_disk_size(w, 3, (1u << 30) + 512) == 0);
    CHECK(stream_write_disk(w, 3, 4096, data, sizeof(data)) == 0);
    CHECK(stream_write_disk(w, 3, 1u << 30, zeros, 512) == 0);
    CHECK(stream_flush(w) == 0);
    CHECK(stream_write_disk(w, 3, 0, data, 0) == -EINVAL); /* sticks */
    CHECK(stream_write_end(w) == -EINVAL);
    stream_writer_destroy(w);

    lseek(fd, 0, SEEK_SET);
    CHECK(stream_reader_create(fd, "disks.tsr", &r) == 0);
    CHECK(stream_read_header(r, &json) == 0);
    CHECK(stream_reader_flags(r) == STREAM_F_DISKS);
    CHECK(stream_read_next(r, &ram, &rec) == 0 && rec.item == STREAM_ITEM_DISK);
    CHECK(rec.slot == 3 && rec.kind == STREAM_DISK_SIZE && rec.offset == (1u << 30) + 512);
    CHECK(stream_read_next(r, &ram, &rec) == 0 && rec.kind == STREAM_DISK_DATA);
    CHECK(rec.offset == 4096 && rec.len == sizeof(data) && !memcmp(rec.payload, data, rec.len));
    CHECK(stream_read_next(r, &ram, &rec) == 0 && rec.kind == STREAM_DISK_ZERO);
    CHECK(rec.offset == 1u << 30 && rec.len == 512 && rec.payload == NULL);
    CHECK(stream_read_next(r, &ram, &rec) == -1); /* the failed write left no record */
    CHECK(strstr(stream_reader_error(r), "truncated") != NULL);
    stream_reader_destroy(r);
    free(json);

    /* Refusals: no STREAM_F_DISKS, after a section, a bad kind, a chunk too long. */
    {
        static const struct {
            uint32_t flags;
            bool section_first;
            uint8_t kind;
            uint32_t len;
            const char *want;
        } bad[] = {
            {0, false, 1, 512, "announced no disks"},
            {STREAM_F_DISKS, true, 1, 512, "after the device sections"},
            {STREAM_F_DISKS, false, 3, 512, "kind 3"},
            {STREAM_F_DISKS, false, 1, STREAM_DISK_CHUNK + 1, "1 byte to 1 MiB"},
            {STREAM_F_DISKS, false, 1, 0, "1 byte to 1 MiB"},
            {STREAM_F_DISKS, false, 0, 512, "expected 0 bytes"},
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            uint8_t rec_bytes[15] = {'D', 7, bad[k].kind};
            int t = memfd_create("bad", 0);

            for (int i = 0; i < 4; i++)
                rec_bytes[11 + i] = (uint8_t)(bad[k].len >> (8 * i));
            CHECK(stream_writer_create(t, "test", 1, &w) == 0);
            CHECK(stream_write_header(w, "{}", bad[k].flags) == 0);
            if (bad[k].section_first)
                CHECK(stream_write_section(w, "x", 1, NULL, 0) == 0);
            CHECK(stream_flush(w) == 0);
            stream_writer_destroy(w);
            CHECK(write(t, rec_bytes, sizeof(rec_bytes)) == (ssize_t)sizeof(rec_bytes));
            append_check(t);
            lseek(t, 0, SEEK_SET);
            CHECK(stream_reader_create(t, "bad.tsr", &r) == 0);
            CHECK(stream_read_header(r, &json) == 0);
            if (bad[k].section_first)
                CHECK(stream_read_next(r, &ram, &rec) == 0);
            CHECK(stream_read_next(r, &ram, &rec) == -1);
            CHECK(strstr(stream_reader_error(r), bad[k].want) != NULL ||
                  !fprintf(stderr, "case %zu: %s\n", k, stream_reader_error(r)));
            stream_reader_destroy(r);
            free(json);
            close(t);
        }
    }
    /* Unknown header flags are refused by value. */
    {
        int t = memfd_create("flags", 0);

        CHECK(stream_writer_create(t, "test", 1, &w) == 0);
        CHECK(stream_write_header(w, "{}", 6) == 0 && stream_flush(w) == 0);
        stream_writer_destroy(w);
        lseek(t, 0, SEEK_SET);
        CHECK(stream_reader_create(t, "flags.tsr", &r) == 0);
        CHECK(stream_read_header(r, &json) == -1);
        CHECK(strstr(stream_reader_error(r), "flags 0x6") != NULL);
        stream_reader_destroy(r);
        close(t);
    }
    close(fd);
    guest_ram_destroy(&ram);
}

int main(void)
{
    test_disk_records();
    test_untouched_pages();
    test_huge_pages();
    test_roundtrip_and_corruption();
    test_dirty_rounds();
    test_cursor();
    return test_finish("stream");
}
