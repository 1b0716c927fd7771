// test-sources: src/vmm/stream.c src/base/state.c src/hw/guest_mem.c src/base/dirty.c
/* The state stream: what is written reads back exactly (RAM with zero pages elided, sections,
 * trailer); every truncation, every flipped byte and every foreign stream is refused with a
 * message, never applied silently; dirty-page harvests and the section cursor behave. */
#include "test.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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
    CHECK(stream_write_header(w, "{\"cpus\": 1}") == 0);
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
            enum stream_item it;
            const char *name;
            uint32_t version;
            const uint8_t *p;
            size_t len;

            if (stream_read_next(r, ram, &it, &name, &version, &p, &len))
                break;
            if (it == STREAM_ITEM_SECTION)
                (*sections)++;
            if (it == STREAM_ITEM_END) {
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
    memset(b.host, 0x55, RAM_SIZE); /* zero pages must be cleared on load */
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(sections == 2);
    CHECK(memcmp(a.host, b.host, RAM_SIZE) == 0);

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
    /* Every flipped byte is refused: by a field check, the decoder or the checksum. */
    for (off_t at = 0; at < size; at += (at < 64 ? 1 : 31)) {
        int t = memfd_create("flip", 0);

        copy[at] ^= 0x20;
        CHECK(write(t, copy, (size_t)size) == size);
        copy[at] ^= 0x20;
        CHECK(read_stream(t, &b, err, sizeof(err), &sections) == -1);
        CHECK(err[0] != '\0');
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
    copy[8] = 2;
    {
        int t = memfd_create("ver", 0);

        CHECK(write(t, copy, (size_t)size) == size);
        CHECK(read_stream(t, &b, err, sizeof(err), &sections) == -1);
        CHECK(strstr(err, "version 2") != NULL);
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

    CHECK(guest_ram_init(&a, 0x80000000, RAM_SIZE) == 0);
    CHECK(guest_ram_init(&b, 0x80000000, RAM_SIZE) == 0);
    fill(&a);
    memcpy(b.host, a.host, RAM_SIZE);
    dirty_log_start(&a.dirty);
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), RAM_SIZE / 4096);
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), 0);
    memset(a.host + 5 * 4096, 0, 4096);
    guest_ram_mark_dirty(&a, a.host + 5 * 4096, 4096);
    a.host[300 * 4096 + 17] = 0x99;
    guest_ram_mark_dirty(&a, a.host + 300 * 4096 + 17, 1);
    a.host[7 * 4096] = 0x42; /* written but not marked: must not travel */
    CHECK_EQ_U64(dirty_log_harvest(&a.dirty, bits), 2);
    fd = write_stream(&a, bits);
    CHECK(lseek(fd, 0, SEEK_END) < 3 * 4096);
    CHECK(read_stream(fd, &b, err, sizeof(err), &sections) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(b.host[5 * 4096 + 1] == 0 && b.host[300 * 4096 + 17] == 0x99);
    CHECK(b.host[7 * 4096] != 0x42);
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

int main(void)
{
    test_roundtrip_and_corruption();
    test_dirty_rounds();
    test_cursor();
    return test_finish("stream");
}
