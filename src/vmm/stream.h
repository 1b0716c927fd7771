/* The machine-state stream: one format for snapshot files and migration streams.
 *
 *   header   "TSRSTATE" | u32 format version | u32 flags | u64 unix time |
 *            u32 n | n bytes of JSON: the machine config (cpus, memory, images, devices) |
 *            u32 check
 *            flags: STREAM_F_DISKS, the disks' contents travel in 'D' records (block
 *            migration); other bits are refused
 *   records, each starting with one type byte and ending with a u32 check:
 *     'R'    RAM pages: u64 first page | u32 count (1..STREAM_RAM_CHUNK) | count bytes, one per
 *            page: 0 not in this record, 1 zero page, 2 data follows | u32 c | c bytes of a
 *            zstd frame holding the data pages in order (exactly 4096 bytes each)
 *     'D'    disk contents: u8 slot (the device's) | u8 kind | u64 offset | u32 len, then by kind
 *              0 size: the disk is `offset` bytes long; len 0; before the disk's other records
 *              1 zero: [offset, offset + len) reads as zeroes
 *              2 data: u32 c | c bytes of a zstd frame holding the len bytes
 *            len of zero and data is 1..STREAM_DISK_CHUNK; later records overwrite earlier ones
 *     'S'    a section: u8 n | n bytes of name | u32 version | u32 len | len bytes of payload
 *     'E'    end: nothing but its check
 *   check    the CRC-32 (zlib's) of every stream byte before it, from the header's first byte
 * All integers little-endian. RAM records may repeat a page (later rounds of a live migration
 * overwrite earlier ones); sections come after the last RAM and disk record. A reader acts on
 * nothing it has not checked: lengths are bounded before allocation, a record's fields are used
 * only after its check matched (a damaged byte is reported as corruption, never as a strange
 * field), page numbers are checked against the RAM size, and a machine runs only after the
 * end record's check matched: a record cannot go missing unnoticed either.
 *
 * Threads: a writer or a reader belongs to the thread that uses it. */
#ifndef TESSERA_VMM_STREAM_H
#define TESSERA_VMM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/state.h"
#include "hw/guest_mem.h"

#define STREAM_MAGIC       "TSRSTATE"
#define STREAM_VERSION     2
#define STREAM_CONFIG_MAX  (64u << 10)
#define STREAM_SECTION_MAX (16u << 20)
#define STREAM_RAM_CHUNK   256 /* pages per 'R' record */
#define STREAM_ERR_LEN     STATE_LOAD_ERR_LEN
#define STREAM_NAME_MAX    63
#define STREAM_DISK_CHUNK  (1u << 20) /* bytes of disk per 'D' record, at most */
#define STREAM_F_DISKS     (1u << 0)

struct stream_writer;
struct stream_reader;

struct transport;

/* Writes to fd (a file or a connected socket; not closed by the writer). `what` names the
 * destination in errors. zstd_level: 1 for migration (speed), 3 for snapshots. */
int stream_writer_create(int fd, const char *what, int zstd_level, struct stream_writer **out);
/* The same over a transport (vmm/transport.h: a plain fd or a TLS session), which must outlive
 * the writer and is not closed by it. */
int stream_writer_create_on(struct transport *t, const char *what, int zstd_level,
                            struct stream_writer **out);
void stream_writer_destroy(struct stream_writer *w);

/* Each returns 0 or -errno; the first error sticks, and stream_writer_error() says it. */
int stream_write_header(struct stream_writer *w, const char *config_json, uint32_t flags);
/* The pages of `ram` whose bit is set in `bitmap` (one bit per 4 KiB page), or every page when
 * bitmap is NULL. Zero pages travel as one byte. Adds to *pages_sent / *zero_pages if given. */
int stream_write_ram(struct stream_writer *w, const struct guest_ram *ram, const uint64_t *bitmap,
                     uint64_t *pages_sent, uint64_t *zero_pages);
int stream_write_section(struct stream_writer *w, const char *name, uint32_t version,
                         const void *payload, size_t len);
/* The writer as a section sink for the machine (virt_save_sections()); valid while w is. */
struct state_sink stream_writer_sink(struct stream_writer *w);
/* Block migration (header flag STREAM_F_DISKS): the size of the disk in `slot`, then its
 * contents, len (1..STREAM_DISK_CHUNK) bytes at offset; all-zero data travels as a zero
 * record. */
int stream_write_disk_size(struct stream_writer *w, unsigned slot, uint64_t size);
int stream_write_disk(struct stream_writer *w, unsigned slot, uint64_t offset, const void *data,
                      size_t len);
/* Writes the trailer and pushes out what is buffered. */
int stream_write_end(struct stream_writer *w);
/* Pushes out buffered bytes (so a peer sees progress). */
int stream_flush(struct stream_writer *w);
uint64_t stream_bytes_written(const struct stream_writer *w);
const char *stream_writer_error(const struct stream_writer *w);

enum stream_item { STREAM_ITEM_RAM, STREAM_ITEM_DISK, STREAM_ITEM_SECTION, STREAM_ITEM_END };
enum stream_disk_kind { STREAM_DISK_SIZE, STREAM_DISK_ZERO, STREAM_DISK_DATA };

/* What stream_read_next() found; pointers stay valid until the next call. */
struct stream_record {
    enum stream_item item;
    /* STREAM_ITEM_SECTION */
    const char *name;
    uint32_t version;
    /* STREAM_ITEM_DISK: slot is checked only against 0..255, offset and len only for
     * overflow and the chunk limit: the caller checks them against its disks */
    unsigned slot;
    enum stream_disk_kind kind;
    uint64_t offset; /* for STREAM_DISK_SIZE: the disk's size */
    /* a section's payload, or a disk record's data (NULL for size and zero records) */
    const uint8_t *payload;
    size_t len;
};

int stream_reader_create(int fd, const char *what, struct stream_reader **out);
/* The same over a transport, which must outlive the reader and is not closed by it. */
int stream_reader_create_on(struct transport *t, const char *what, struct stream_reader **out);
void stream_reader_destroy(struct stream_reader *r);

/* Reads and checks the header; *config_json (malloc'd, NUL-terminated) is the machine config.
 * 0, or -1 with stream_reader_error() set ("snap.tsr: not a Tessera state stream (magic ...)",
 * "... format version 3, this tessera reads version 2"). */
int stream_read_header(struct stream_reader *r, char **config_json);
/* The header's flags (STREAM_F_*), once stream_read_header() succeeded. */
uint32_t stream_reader_flags(const struct stream_reader *r);

/* Reads the next record into *rec. For STREAM_ITEM_RAM the pages are applied to `ram` (each
 * checked to lie inside it); a section or disk record is described by *rec until the next
 * call; for STREAM_ITEM_END the checksum has been verified. 0, or -1 with
 * stream_reader_error() set: truncated stream, a record that fails its checksum or is framed
 * wrongly ("the stream is corrupt: ..."), a page outside RAM, a zstd frame that does not decode
 * to exactly its pages.
 * `ram` may be NULL only if no RAM record may follow (then one is an error). Otherwise it must
 * be the same RAM at every call, all zeroes before the first (as guest_ram_init() leaves it):
 * the reader touches a page only to give it data, or to clear data it gave it earlier, so
 * pages that stay zero take no host memory. */
int stream_read_next(struct stream_reader *r, struct guest_ram *ram, struct stream_record *rec);
uint64_t stream_bytes_read(const struct stream_reader *r);
const char *stream_reader_error(const struct stream_reader *r);

#endif
