#include "base/state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void sbuf_free(struct sbuf *b)
{
    free(b->data);
    sbuf_init(b);
}

void sbuf_put_bytes(struct sbuf *b, const void *p, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        uint8_t *d;

        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void sbuf_put_le(struct sbuf *b, uint64_t v, unsigned n)
{
    uint8_t le[8];

    for (unsigned i = 0; i < n; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    sbuf_put_bytes(b, le, n);
}

void sbuf_put_u8(struct sbuf *b, uint8_t v)
{
    sbuf_put_le(b, v, 1);
}

void sbuf_put_u16(struct sbuf *b, uint16_t v)
{
    sbuf_put_le(b, v, 2);
}

void sbuf_put_u32(struct sbuf *b, uint32_t v)
{
    sbuf_put_le(b, v, 4);
}

void sbuf_put_u64(struct sbuf *b, uint64_t v)
{
    sbuf_put_le(b, v, 8);
}

void sbuf_put_bool(struct sbuf *b, bool v)
{
    sbuf_put_le(b, v ? 1 : 0, 1);
}

void sbuf_put_str(struct sbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    sbuf_put_u32(b, (uint32_t)n);
    sbuf_put_bytes(b, s, n);
}

void scur_init(struct scur *c, const void *data, size_t len, const char *what)
{
    memset(c, 0, sizeof(*c));
    c->data = data;
    c->len = len;
    c->what = what ? what : "state";
}

int scur_fail(struct scur *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->failed)
        return -1;
    c->failed = true;
    n = snprintf(c->err, sizeof(c->err), "%s: ", c->what);
    if (n < 0 || (size_t)n >= sizeof(c->err))
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

void scur_get_bytes(struct scur *c, void *p, size_t n)
{
    if (c->failed || n > c->len - c->pos) {
        if (!c->failed)
            scur_fail(c, "truncated at byte %zu (wanted %zu more, section has %zu)", c->pos, n,
                      c->len);
        memset(p, 0, n);
        return;
    }
    memcpy(p, c->data + c->pos, n);
    c->pos += n;
}

static uint64_t scur_get_le(struct scur *c, unsigned n)
{
    uint8_t le[8];
    uint64_t v = 0;

    scur_get_bytes(c, le, n);
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)le[i] << (8 * i);
    return v;
}

uint8_t scur_get_u8(struct scur *c)
{
    return (uint8_t)scur_get_le(c, 1);
}

uint16_t scur_get_u16(struct scur *c)
{
    return (uint16_t)scur_get_le(c, 2);
}

uint32_t scur_get_u32(struct scur *c)
{
    return (uint32_t)scur_get_le(c, 4);
}

uint64_t scur_get_u64(struct scur *c)
{
    return scur_get_le(c, 8);
}

bool scur_get_bool(struct scur *c)
{
    uint8_t v = scur_get_u8(c);

    if (v > 1) {
        scur_fail(c, "byte %zu: boolean field is %u, expected 0 or 1", c->pos - 1, v);
        return false;
    }
    return v;
}

void scur_get_str(struct scur *c, char *buf, size_t len)
{
    uint32_t n = scur_get_u32(c);

    buf[0] = '\0';
    if (c->failed)
        return;
    if (n >= len) {
        scur_fail(c, "byte %zu: string of %u bytes, at most %zu allowed", c->pos - 4, n, len - 1);
        return;
    }
    scur_get_bytes(c, buf, n);
    buf[c->failed ? 0 : n] = '\0';
}

int scur_ok(const struct scur *c)
{
    return c->failed ? -1 : 0;
}

int scur_finish(struct scur *c)
{
    if (!c->failed && c->pos != c->len)
        scur_fail(c, "%zu unexpected bytes after the last field (layout newer than its version?)",
                  c->len - c->pos);
    return scur_ok(c);
}
