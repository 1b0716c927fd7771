/* Saved machine state: the encoding every CPU engine and device uses for its named, versioned
 * section, and the cursor that reads one back.
 *
 * A section's payload is a flat little-endian byte string written with the sbuf_put_*()
 * functions and read back, in the same order, with the scur_get_*() functions. The stream that
 * carries sections (header, RAM, trailer checksum) lives in src/vmm/stream.h and reaches the
 * machine only as a struct state_sink; this header is all a device or a board needs.
 *
 * Loading is hostile-input parsing: a snapshot file or a migration stream comes from outside.
 * A cursor never reads past its end; a short read sets a sticky error and returns zeros, so a
 * loader can read every field and check scur_ok() once. A loader still validates each value
 * against its own limits (an index below its table size, a mode the device knows) and says
 * which field was wrong through scur_fail(), never trusts it. */
#ifndef TESSERA_BASE_STATE_H
#define TESSERA_BASE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_ERR_LEN 256
/* A section loader's error line (virt_load_section() and the stream that calls it). */
#define STATE_LOAD_ERR_LEN 512

/* Where saved sections go. The state stream (src/vmm/stream.h) provides one, so the machine
 * and the devices write their sections without knowing the stream's format or its floor.
 * write_section() returns 0 or -errno; the sink keeps its own message for the caller that
 * made it. Called on whichever thread saves the machine (paused and quiesced). */
struct state_sink {
    int (*write_section)(void *opaque, const char *name, uint32_t version, const void *payload,
                         size_t len);
    void *opaque;
};

static inline int state_sink_write(const struct state_sink *s, const char *name, uint32_t version,
                                   const void *payload, size_t len)
{
    return s->write_section(s->opaque, name, version, payload, len);
}

/* A growing output buffer. Allocation failure is sticky (oom) and checked once at the end. */
struct sbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_put_bytes(struct sbuf *b, const void *p, size_t n);
void sbuf_put_u8(struct sbuf *b, uint8_t v);
void sbuf_put_u16(struct sbuf *b, uint16_t v);
void sbuf_put_u32(struct sbuf *b, uint32_t v);
void sbuf_put_u64(struct sbuf *b, uint64_t v);
void sbuf_put_bool(struct sbuf *b, bool v);
/* A length-prefixed (u32) string. */
void sbuf_put_str(struct sbuf *b, const char *s);

/* A read cursor over one section's payload. `what` names the section for error lines. */
struct scur {
    const uint8_t *data;
    size_t len;
    size_t pos;
    const char *what;
    bool failed;
    char err[STATE_ERR_LEN];
};

void scur_init(struct scur *c, const void *data, size_t len, const char *what);
/* Each returns the next field, or 0 (and sets the error "truncated") past the end. */
void scur_get_bytes(struct scur *c, void *p, size_t n);
uint8_t scur_get_u8(struct scur *c);
uint16_t scur_get_u16(struct scur *c);
uint32_t scur_get_u32(struct scur *c);
uint64_t scur_get_u64(struct scur *c);
/* A bool field: anything but 0 or 1 is an error. */
bool scur_get_bool(struct scur *c);
/* A string written by sbuf_put_str() into buf (len bytes, NUL-terminated); longer is an error. */
void scur_get_str(struct scur *c, char *buf, size_t len);

/* Records the first error: "<what>: <message>". Later calls keep the first one. Returns -1 so
 * a loader can `return scur_fail(c, "...")`. */
int scur_fail(struct scur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 when every read so far was in bounds and no field was refused; else -1. */
int scur_ok(const struct scur *c);
/* scur_ok() and every byte consumed: trailing bytes are an error too (a section written by a
 * newer layout under an old version number). */
int scur_finish(struct scur *c);

#endif
