#include "vmm/stream.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/transport.h"

#define PAGE        4096u
#define CHUNK_BYTES (STREAM_RAM_CHUNK * PAGE)
#define WBUF_SIZE   (1u << 20)
#define RBUF_SIZE   (256u << 10)
#define KIND_SKIP   0
#define KIND_ZERO   1
#define KIND_DATA   2
_Static_assert(STREAM_DISK_CHUNK <= CHUNK_BYTES, "a disk record must fit the staging buffer");

struct stream_writer {
    struct transport *t;
    struct transport *own; /* t, when made here for a plain fd */
    const char *what;
    int level;
    int err;
    char msg[STREAM_ERR_LEN];
    uint32_t crc;
    uint64_t bytes;
    ZSTD_CCtx *zc;
    uint8_t *buf; /* WBUF_SIZE */
    size_t len;
    uint8_t *stage; /* CHUNK_BYTES of page data */
    uint8_t *zbuf;
    size_t zcap;
};

struct stream_reader {
    struct transport *t;
    struct transport *own; /* t, when made here for a plain fd */
    const char *what;
    char msg[STREAM_ERR_LEN];
    bool failed;
    bool ended;
    bool seen_section;
    uint32_t flags;
    uint32_t crc;
    uint64_t bytes; /* consumed */
    ZSTD_DCtx *dc;
    uint8_t *buf; /* RBUF_SIZE */
    size_t have, pos;
    uint8_t *stage; /* CHUNK_BYTES */
    uint8_t *zbuf;
    size_t zcap;
    uint8_t *payload;
    char name[STREAM_NAME_MAX + 1];
    /* Pages this reader has written data into. The others are still as guest_ram_init() left
     * them, zero and not even mapped, so a zero page there costs nothing: touching it just to
     * look would fault in host memory. */
    uint64_t *written;
    uint64_t written_pages;
};

/* ---- writer ---- */

static int w_fail(struct stream_writer *w, int err, const char *fmt, ...)
{
    va_list ap;

    if (w->err)
        return w->err;
    w->err = err;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    va_end(ap);
    return err;
}

static int w_push(struct stream_writer *w)
{
    size_t off = 0;

    while (off < w->len && !w->err) {
        ssize_t n = transport_write(w->t, w->buf + off, w->len - off);

        if (n <= 0)
            return w_fail(w, n < 0 ? (int)n : -EIO, "%s: write failed after %" PRIu64 " bytes: %s",
                          w->what, w->bytes - (w->len - off),
                          n < 0 ? transport_error(w->t, (int)n) : "EOF");
        off += (size_t)n;
    }
    w->len = 0;
    return w->err;
}

static void w_put(struct stream_writer *w, const void *p, size_t n)
{
    const uint8_t *b = p;

    if (n == 0)
        return; /* zlib's crc32() with a NULL buffer returns its initial value */
    w->crc = (uint32_t)crc32(w->crc, b, (uInt)n);
    w->bytes += n;
    while (n && !w->err) {
        size_t room = WBUF_SIZE - w->len, k = n < room ? n : room;

        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
        if (w->len == WBUF_SIZE)
            w_push(w);
    }
}

static void w_le(struct stream_writer *w, uint64_t v, unsigned n)
{
    uint8_t le[8];

    for (unsigned i = 0; i < n; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    w_put(w, le, n);
}

/* Ends the header or a record: the CRC-32 of every stream byte before this one. */
static void w_check(struct stream_writer *w)
{
    uint32_t crc = w->crc;

    w_le(w, crc, 4);
}

int stream_writer_create(int fd, const char *what, int zstd_level, struct stream_writer **out)
{
    struct transport *t;
    int ret = transport_plain(fd, false, &t);

    if (ret)
        return ret;
    ret = stream_writer_create_on(t, what, zstd_level, out);
    if (ret)
        transport_close(t);
    else
        (*out)->own = t;
    return ret;
}

int stream_writer_create_on(struct transport *t, const char *what, int zstd_level,
                            struct stream_writer **out)
{
    struct stream_writer *w = calloc(1, sizeof(*w));

    if (!w)
        return -ENOMEM;
    w->t = t;
    w->what = what;
    w->level = zstd_level;
    w->crc = (uint32_t)crc32(0, NULL, 0);
    w->zcap = ZSTD_compressBound(CHUNK_BYTES);
    w->zc = ZSTD_createCCtx();
    w->buf = malloc(WBUF_SIZE);
    w->stage = malloc(CHUNK_BYTES);
    w->zbuf = malloc(w->zcap);
    if (!w->zc || !w->buf || !w->stage || !w->zbuf) {
        stream_writer_destroy(w);
        return -ENOMEM;
    }
    *out = w;
    return 0;
}

void stream_writer_destroy(struct stream_writer *w)
{
    if (!w)
        return;
    ZSTD_freeCCtx(w->zc);
    transport_close(w->own);
    free(w->buf);
    free(w->stage);
    free(w->zbuf);
    free(w);
}

int stream_write_header(struct stream_writer *w, const char *config_json, uint32_t flags)
{
    size_t n = strlen(config_json);

    if (n > STREAM_CONFIG_MAX)
        return w_fail(w, -E2BIG, "%s: machine config of %zu bytes is too big", w->what, n);
    w_put(w, STREAM_MAGIC, 8);
    w_le(w, STREAM_VERSION, 4);
    w_le(w, flags, 4);
    w_le(w, (uint64_t)time(NULL), 8);
    w_le(w, n, 4);
    w_put(w, config_json, n);
    w_check(w);
    return w->err;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t acc = 0;

    for (unsigned i = 0; i < PAGE / 8; i++)
        acc |= q[i];
    return acc == 0;
}

/* One 'R' record for pages [first, first + count) with the given selection. */
static void w_ram_chunk(struct stream_writer *w, const struct guest_ram *ram, uint64_t first,
                        unsigned count, const uint64_t *bitmap, uint64_t *sent, uint64_t *zeros)
{
    uint8_t kinds[STREAM_RAM_CHUNK];
    uint64_t untouched = 0;
    unsigned ndata = 0, group = UINT_MAX;
    size_t c;

    for (unsigned i = 0; i < count; i++) {
        uint64_t pg = first + i;
        uint8_t *dst = w->stage + (size_t)ndata * PAGE;

        if (bitmap && !(bitmap[pg / 64] >> (pg % 64) & 1)) {
            kinds[i] = KIND_SKIP;
            continue;
        }
        if (i / 64 != group) {
            group = i / 64;
            if (guest_ram_untouched(ram, first + group * 64,
                                    count - group * 64 < 64 ? count - group * 64 : 64,
                                    &untouched) < 0)
                untouched = 0;
        }
        if (untouched >> (i % 64) & 1) {
            kinds[i] = KIND_ZERO; /* never written: zero, and reading it would map it */
            if (zeros)
                (*zeros)++;
            if (sent)
                (*sent)++;
            continue;
        }
        /* Copy first, then look at the copy: the guest may be writing the page right now, and
         * what we send must be one consistent version of it. */
        memcpy(dst, ram->host + pg * PAGE, PAGE);
        if (page_is_zero(dst)) {
            kinds[i] = KIND_ZERO;
            if (zeros)
                (*zeros)++;
        } else {
            kinds[i] = KIND_DATA;
            ndata++;
        }
        if (sent)
            (*sent)++;
    }
    c = 0;
    if (ndata) {
        c = ZSTD_compressCCtx(w->zc, w->zbuf, w->zcap, w->stage, (size_t)ndata * PAGE, w->level);
        if (ZSTD_isError(c)) {
            w_fail(w, -EIO, "%s: zstd: %s", w->what, ZSTD_getErrorName(c));
            return;
        }
    }
    w_put(w, "R", 1);
    w_le(w, first, 8);
    w_le(w, count, 4);
    w_put(w, kinds, count);
    w_le(w, c, 4);
    w_put(w, w->zbuf, c);
    w_check(w);
}

int stream_write_ram(struct stream_writer *w, const struct guest_ram *ram, const uint64_t *bitmap,
                     uint64_t *pages_sent, uint64_t *zero_pages)
{
    uint64_t pages = ram->size / PAGE;

    for (uint64_t first = 0; first < pages && !w->err; first += STREAM_RAM_CHUNK) {
        unsigned count =
            pages - first < STREAM_RAM_CHUNK ? (unsigned)(pages - first) : STREAM_RAM_CHUNK;
        bool any = !bitmap;

        for (unsigned i = 0; i < count && !any; i += 64) {
            uint64_t pg = first + i; /* STREAM_RAM_CHUNK is a multiple of 64 */

            any = bitmap[pg / 64] != 0;
        }
        if (any)
            w_ram_chunk(w, ram, first, count, bitmap, pages_sent, zero_pages);
    }
    return w->err;
}

int stream_write_section(struct stream_writer *w, const char *name, uint32_t version,
                         const void *payload, size_t len)
{
    size_t n = strlen(name);

    if (n == 0 || n > STREAM_NAME_MAX || len > STREAM_SECTION_MAX)
        return w_fail(w, -EINVAL, "%s: section '%s' of %zu bytes cannot be written", w->what, name,
                      len);
    w_put(w, "S", 1);
    w_le(w, n, 1);
    w_put(w, name, n);
    w_le(w, version, 4);
    w_le(w, len, 4);
    w_put(w, payload, len);
    w_check(w);
    return w->err;
}

static int sink_write_section(void *opaque, const char *name, uint32_t version, const void *payload,
                              size_t len)
{
    return stream_write_section(opaque, name, version, payload, len);
}

struct state_sink stream_writer_sink(struct stream_writer *w)
{
    return (struct state_sink){.write_section = sink_write_section, .opaque = w};
}

static void w_disk_head(struct stream_writer *w, unsigned slot, unsigned kind, uint64_t offset,
                        uint32_t len)
{
    w_put(w, "D", 1);
    w_le(w, slot, 1);
    w_le(w, kind, 1);
    w_le(w, offset, 8);
    w_le(w, len, 4);
}

int stream_write_disk_size(struct stream_writer *w, unsigned slot, uint64_t size)
{
    if (slot > UINT8_MAX)
        return w_fail(w, -EINVAL, "%s: disk slot %u cannot be written", w->what, slot);
    w_disk_head(w, slot, STREAM_DISK_SIZE, size, 0);
    w_check(w);
    return w->err;
}

int stream_write_disk(struct stream_writer *w, unsigned slot, uint64_t offset, const void *data,
                      size_t len)
{
    const uint8_t *b = data;
    size_t c, i = 0;

    if (slot > UINT8_MAX || len == 0 || len > STREAM_DISK_CHUNK || offset > UINT64_MAX - len)
        return w_fail(w, -EINVAL, "%s: disk record of %zu bytes at %" PRIu64 " cannot be written",
                      w->what, len, offset);
    while (i + PAGE <= len && page_is_zero(b + i))
        i += PAGE;
    while (i < len && b[i] == 0)
        i++;
    if (i == len) {
        w_disk_head(w, slot, STREAM_DISK_ZERO, offset, (uint32_t)len);
        w_check(w);
        return w->err;
    }
    c = ZSTD_compressCCtx(w->zc, w->zbuf, w->zcap, data, len, w->level);
    if (ZSTD_isError(c))
        return w_fail(w, -EIO, "%s: zstd: %s", w->what, ZSTD_getErrorName(c));
    w_disk_head(w, slot, STREAM_DISK_DATA, offset, (uint32_t)len);
    w_le(w, c, 4);
    w_put(w, w->zbuf, c);
    w_check(w);
    return w->err;
}

int stream_write_end(struct stream_writer *w)
{
    w_put(w, "E", 1);
    w_check(w);
    return w_push(w);
}

int stream_flush(struct stream_writer *w)
{
    return w_push(w);
}

uint64_t stream_bytes_written(const struct stream_writer *w)
{
    return w->bytes;
}

const char *stream_writer_error(const struct stream_writer *w)
{
    return w->err ? w->msg : NULL;
}

/* ---- reader ---- */

static int r_fail(struct stream_reader *r, const char *fmt, ...)
{
    va_list ap;

    if (r->failed)
        return -1;
    r->failed = true;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads exactly n bytes, folding them into the checksum; `inside` names the part they belong
 * to, NULL between records. */
static int r_get(struct stream_reader *r, void *p, size_t n, const char *inside)
{
    uint8_t *b = p;

    if (r->failed)
        return -1;
    while (n) {
        size_t k;

        if (r->pos == r->have) {
            ssize_t got = transport_read(r->t, r->buf, RBUF_SIZE);

            if (got < 0)
                return r_fail(r, "%s: read failed after %" PRIu64 " bytes: %s", r->what, r->bytes,
                              transport_error(r->t, (int)got));
            /* Between records the stream was cut; inside one, a damaged length may have
             * sent the reader past the end just as well. */
            if (got == 0 && !inside)
                return r_fail(r,
                              "%s: truncated: the stream ends after %" PRIu64
                              " bytes, before its end record",
                              r->what, r->bytes);
            if (got == 0)
                return r_fail(r,
                              "%s: truncated or corrupt: the stream ends after %" PRIu64
                              " bytes, inside %s",
                              r->what, r->bytes, inside);
            r->have = (size_t)got;
            r->pos = 0;
        }
        k = r->have - r->pos < n ? r->have - r->pos : n;
        memcpy(b, r->buf + r->pos, k);
        r->crc = (uint32_t)crc32(r->crc, b, (uInt)k);
        r->pos += k;
        r->bytes += k;
        b += k;
        n -= k;
    }
    return 0;
}

static uint64_t r_le(struct stream_reader *r, unsigned n, const char *inside)
{
    uint8_t le[8];
    uint64_t v = 0;

    if (r_get(r, le, n, inside))
        return 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)le[i] << (8 * i);
    return v;
}

int stream_reader_create(int fd, const char *what, struct stream_reader **out)
{
    struct transport *t;
    int ret = transport_plain(fd, false, &t);

    if (ret)
        return ret;
    ret = stream_reader_create_on(t, what, out);
    if (ret)
        transport_close(t);
    else
        (*out)->own = t;
    return ret;
}

int stream_reader_create_on(struct transport *t, const char *what, struct stream_reader **out)
{
    struct stream_reader *r = calloc(1, sizeof(*r));

    if (!r)
        return -ENOMEM;
    r->t = t;
    r->what = what;
    r->crc = (uint32_t)crc32(0, NULL, 0);
    r->zcap = ZSTD_compressBound(CHUNK_BYTES);
    r->dc = ZSTD_createDCtx();
    r->buf = malloc(RBUF_SIZE);
    r->stage = malloc(CHUNK_BYTES);
    r->zbuf = malloc(r->zcap);
    if (!r->dc || !r->buf || !r->stage || !r->zbuf) {
        stream_reader_destroy(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void stream_reader_destroy(struct stream_reader *r)
{
    if (!r)
        return;
    ZSTD_freeDCtx(r->dc);
    transport_close(r->own);
    free(r->buf);
    free(r->stage);
    free(r->zbuf);
    free(r->payload);
    free(r->written);
    free(r);
}

/* Ends the header or a record: its stored checksum must match the bytes read so far, so
 * nothing in it is acted on unless it arrived as it was written. `what` names the part. */
static int r_check(struct stream_reader *r, const char *part)
{
    uint64_t at = r->bytes;
    uint32_t want = r->crc, got = (uint32_t)r_le(r, 4, part);

    if (r->failed)
        return -1;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* a fuzzer cannot forge CRCs */
    if (got != want)
        return r_fail(r,
                      "%s: the stream is corrupt: %s ending at byte %" PRIu64
                      " fails its checksum (stored %08" PRIx32 ", its bytes sum to %08" PRIx32 ")",
                      r->what, part, at, got, want);
#endif
    return 0;
}

int stream_read_header(struct stream_reader *r, char **config_json)
{
    char magic[8];
    uint32_t version, flags, n;
    char *json;

    *config_json = NULL;
    if (r_get(r, magic, 8, "the header"))
        return -1;
    if (memcmp(magic, STREAM_MAGIC, 8))
        return r_fail(r, "%s: not a Tessera state stream (its first 8 bytes are not \"%s\")",
                      r->what, STREAM_MAGIC);
    version = (uint32_t)r_le(r, 4, "the header");
    if (r->failed)
        return -1;
    if (version != STREAM_VERSION)
        return r_fail(r, "%s: state format version %" PRIu32 ", this tessera reads version %d",
                      r->what, version, STREAM_VERSION);
    flags = (uint32_t)r_le(r, 4, "the header");
    (void)r_le(r, 8, "the header");
    n = (uint32_t)r_le(r, 4, "the header");
    if (r->failed)
        return -1;
    if (n == 0 || n > STREAM_CONFIG_MAX)
        return r_fail(
            r, "%s: the stream is corrupt: a machine config of %" PRIu32 " bytes (expected 1..%u)",
            r->what, n, STREAM_CONFIG_MAX);
    json = malloc((size_t)n + 1);
    if (!json)
        return r_fail(r, "%s: out of memory", r->what);
    if (r_get(r, json, n, "the machine config") || r_check(r, "the header")) {
        free(json);
        return -1;
    }
    json[n] = '\0';
    if (flags & ~(uint32_t)STREAM_F_DISKS) {
        free(json);
        return r_fail(r, "%s: header flags 0x%" PRIx32 " unknown to this tessera", r->what,
                      flags & ~(uint32_t)STREAM_F_DISKS);
    }
    r->flags = flags;
    if (strlen(json) != n) {
        free(json);
        return r_fail(r, "%s: machine config contains a NUL byte", r->what);
    }
    *config_json = json;
    return 0;
}

static int r_ram(struct stream_reader *r, struct guest_ram *ram)
{
    uint8_t kinds[STREAM_RAM_CHUNK];
    uint64_t first, pages;
    uint32_t count, c;
    unsigned ndata = 0;
    size_t got;

    /* Framing first, bounded so the reads stay inside the buffers; the fields' meaning only
     * once the checksum has vouched for them. */
    first = r_le(r, 8, "a RAM record");
    count = (uint32_t)r_le(r, 4, "a RAM record");
    if (r->failed)
        return -1;
    if (count == 0 || count > STREAM_RAM_CHUNK)
        return r_fail(
            r, "%s: the stream is corrupt: a RAM record of %" PRIu32 " pages (expected 1..%d)",
            r->what, count, STREAM_RAM_CHUNK);
    if (r_get(r, kinds, count, "a RAM record"))
        return -1;
    c = (uint32_t)r_le(r, 4, "a RAM record");
    if (r->failed)
        return -1;
    if (c > r->zcap)
        return r_fail(r, "%s: the stream is corrupt: a RAM record of %" PRIu32 " compressed bytes",
                      r->what, c);
    if (r_get(r, r->zbuf, c, "a RAM record's data") || r_check(r, "a RAM record"))
        return -1;
    if (!ram || r->seen_section)
        return r_fail(r, "%s: RAM record at byte %" PRIu64 " %s", r->what, r->bytes,
                      ram ? "after the device sections" : "where none may come");
    pages = ram->size / PAGE;
    if (first >= pages || count > pages - first)
        return r_fail(r,
                      "%s: RAM record for pages %" PRIu64 "..+%" PRIu32 " does not fit %" PRIu64
                      " pages of RAM (is the stream from a machine with more memory?)",
                      r->what, first, count, pages);
    for (unsigned i = 0; i < count; i++) {
        if (kinds[i] > KIND_DATA)
            return r_fail(r, "%s: RAM record page %" PRIu64 " has kind %u (expected 0, 1 or 2)",
                          r->what, first + i, kinds[i]);
        ndata += kinds[i] == KIND_DATA;
    }
    if ((ndata == 0) != (c == 0))
        return r_fail(
            r, "%s: RAM record at page %" PRIu64 ": %" PRIu32 " compressed bytes for %u pages",
            r->what, first, c, ndata);
    if (ndata) {
        got = ZSTD_decompressDCtx(r->dc, r->stage, (size_t)ndata * PAGE, r->zbuf, c);
        if (ZSTD_isError(got) || got != (size_t)ndata * PAGE)
            return r_fail(r,
                          "%s: RAM record at page %" PRIu64 " does not decode to its %u pages%s%s",
                          r->what, first, ndata, ZSTD_isError(got) ? ": " : "",
                          ZSTD_isError(got) ? ZSTD_getErrorName(got) : "");
    }
    if (!r->written) {
        r->written = calloc((pages + 63) / 64, sizeof(uint64_t));
        r->written_pages = pages;
        if (!r->written)
            return r_fail(r, "%s: out of memory", r->what);
    } else if (r->written_pages != pages) {
        return r_fail(r, "%s: RAM records applied to RAM of two sizes", r->what);
    }
    ndata = 0;
    for (unsigned i = 0; i < count; i++) {
        uint64_t pg = first + i, bit = UINT64_C(1) << (pg % 64);
        uint8_t *dst = guest_ram_ptr(ram, ram->base + pg * PAGE, PAGE);

        if (kinds[i] == KIND_DATA) {
            memcpy(dst, r->stage + (size_t)ndata++ * PAGE, PAGE);
            r->written[pg / 64] |= bit;
        } else if (kinds[i] == KIND_ZERO && (r->written[pg / 64] & bit)) {
            memset(dst, 0, PAGE);
            r->written[pg / 64] &= ~bit;
        }
    }
    return 0;
}

static int r_section(struct stream_reader *r, struct stream_record *rec)
{
    unsigned n = (unsigned)r_le(r, 1, "a section");
    uint32_t l;

    if (r->failed)
        return -1;
    if (n == 0 || n > STREAM_NAME_MAX)
        return r_fail(r, "%s: the stream is corrupt: a section name of %u bytes at byte %" PRIu64,
                      r->what, n, r->bytes);
    if (r_get(r, r->name, n, "a section name"))
        return -1;
    r->name[n] = '\0';
    rec->version = (uint32_t)r_le(r, 4, "a section");
    l = (uint32_t)r_le(r, 4, "a section");
    if (r->failed)
        return -1;
    if (l > STREAM_SECTION_MAX)
        return r_fail(r, "%s: the stream is corrupt: a section of %" PRIu32 " bytes (at most %u)",
                      r->what, l, STREAM_SECTION_MAX);
    free(r->payload);
    r->payload = malloc(l ? l : 1);
    if (!r->payload)
        return r_fail(r, "%s: out of memory", r->what);
    if (r_get(r, r->payload, l, "a section's payload") || r_check(r, "a section"))
        return -1;
    for (unsigned i = 0; i < n; i++) {
        char ch = r->name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
              ch == '_'))
            return r_fail(r, "%s: section name at byte %" PRIu64 " has a byte 0x%02x", r->what,
                          r->bytes, (unsigned char)ch);
    }
    r->seen_section = true;
    rec->item = STREAM_ITEM_SECTION;
    rec->name = r->name;
    rec->payload = r->payload;
    rec->len = l;
    return 0;
}

uint32_t stream_reader_flags(const struct stream_reader *r)
{
    return r->flags;
}

static int r_disk(struct stream_reader *r, struct stream_record *rec)
{
    uint64_t offset;
    uint32_t len, c = 0;
    unsigned slot, kind;
    size_t got;

    slot = (unsigned)r_le(r, 1, "a disk record");
    kind = (unsigned)r_le(r, 1, "a disk record");
    offset = r_le(r, 8, "a disk record");
    len = (uint32_t)r_le(r, 4, "a disk record");
    if (kind == STREAM_DISK_DATA) {
        c = (uint32_t)r_le(r, 4, "a disk record");
        if (r->failed)
            return -1;
        if (c == 0 || c > r->zcap)
            return r_fail(
                r, "%s: the stream is corrupt: a disk record of %" PRIu32 " compressed bytes",
                r->what, c);
        if (r_get(r, r->zbuf, c, "a disk record's data"))
            return -1;
    }
    if (r_check(r, "a disk record"))
        return -1;
    if (!(r->flags & STREAM_F_DISKS) || r->seen_section)
        return r_fail(r, "%s: disk record at byte %" PRIu64 " %s", r->what, r->bytes,
                      r->seen_section ? "after the device sections"
                                      : "in a stream whose header announced no disks");
    if (kind > STREAM_DISK_DATA)
        return r_fail(r, "%s: disk record at byte %" PRIu64 " has kind %u (expected 0, 1 or 2)",
                      r->what, r->bytes, kind);
    if (kind == STREAM_DISK_SIZE
            ? len != 0
            : (len == 0 || len > STREAM_DISK_CHUNK || offset > UINT64_MAX - len))
        return r_fail(r, "%s: disk %u record of %" PRIu32 " bytes at %" PRIu64 " (expected %s)",
                      r->what, slot, len, offset,
                      kind == STREAM_DISK_SIZE ? "0 bytes" : "1 byte to 1 MiB");
    *rec = (struct stream_record){.item = STREAM_ITEM_DISK,
                                  .slot = slot,
                                  .kind = (enum stream_disk_kind)kind,
                                  .offset = offset,
                                  .len = len};
    if (kind != STREAM_DISK_DATA)
        return 0;
    got = ZSTD_decompressDCtx(r->dc, r->stage, len, r->zbuf, c);
    if (ZSTD_isError(got) || got != len)
        return r_fail(
            r, "%s: disk %u record at %" PRIu64 " does not decode to its %" PRIu32 " bytes%s%s",
            r->what, slot, offset, len, ZSTD_isError(got) ? ": " : "",
            ZSTD_isError(got) ? ZSTD_getErrorName(got) : "");
    rec->payload = r->stage;
    return 0;
}

int stream_read_next(struct stream_reader *r, struct guest_ram *ram, struct stream_record *rec)
{
    uint8_t type;

    memset(rec, 0, sizeof(*rec));
    if (r->failed)
        return -1;
    if (r->ended)
        return r_fail(r, "%s: read past the end record", r->what);
    if (r_get(r, &type, 1, NULL))
        return -1;
    switch (type) {
    case 'R': rec->item = STREAM_ITEM_RAM; return r_ram(r, ram);
    case 'D': return r_disk(r, rec);
    case 'S': return r_section(r, rec);
    case 'E':
        if (r_check(r, "the end record"))
            return -1;
        r->ended = true;
        rec->item = STREAM_ITEM_END;
        return 0;
    default:
        return r_fail(r, "%s: the stream is corrupt: unknown record type 0x%02x at byte %" PRIu64,
                      r->what, type, r->bytes - 1);
    }
}

uint64_t stream_bytes_read(const struct stream_reader *r)
{
    return r->bytes;
}

const char *stream_reader_error(const struct stream_reader *r)
{
    return r->failed ? r->msg : NULL;
}
