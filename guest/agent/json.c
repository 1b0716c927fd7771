/*
 * JSON reader and writer and base64 for the guest agent; see json.h for the
 * contracts and the byte-string convention.
 */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------- */

/* Blocks are at least this big; a bigger request gets a block of its own. */
#define ARENA_BLOCK_MIN (64 * 1024)

struct json_arena_block {
    struct json_arena_block *next;
    size_t used;
    size_t size;
    max_align_t data[];
};

/* Returns `n` bytes aligned for any type, or NULL when out of memory. */
static void *arena_alloc(struct json_arena *a, size_t n)
{
    struct json_arena_block *blk = a->head;
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    if (!blk || blk->size - blk->used < n) {
        size_t size = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
        blk = malloc(sizeof(*blk) + size);
        if (!blk)
            return NULL;
        blk->size = size;
        blk->used = 0;
        blk->next = a->head;
        a->head = blk;
    }
    void *p = (char *)blk->data + blk->used;
    blk->used += n;
    return p;
}

void json_arena_free(struct json_arena *a)
{
    while (a->head) {
        struct json_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- reader ------------------------------------------------------------ */

struct parser {
    struct json_arena *arena;
    const char *start; /* for offsets in messages */
    const char *p;
    const char *end;
    char *err;
    size_t errlen;
    int rc; /* first error: -EINVAL or -ENOMEM */
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first error (with the byte offset) and returns -1. */
static int fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->rc == 0) {
        int n = snprintf(ps->err, ps->errlen, "at byte %zu: ", (size_t)(ps->p - ps->start));
        if (n >= 0 && (size_t)n < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
            va_end(ap);
        }
        ps->rc = -EINVAL;
    }
    return -1;
}

static int fail_nomem(struct parser *ps)
{
    if (ps->rc == 0) {
        snprintf(ps->err, ps->errlen, "out of memory");
        ps->rc = -ENOMEM;
    }
    return -1;
}

/* RFC 8259 §2: insignificant white space is space, tab, LF and CR only. */
static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Describes the byte at p for an error message. */
static const char *describe(struct parser *ps, char *buf, size_t n)
{
    if (ps->p >= ps->end)
        return "end of input";
    unsigned char c = (unsigned char)*ps->p;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

static int parse_value(struct parser *ps, struct json_value *v, int depth);

/* Parses exactly `lit` (true, false, null). */
static int expect_literal(struct parser *ps, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
        return fail(ps, "invalid literal, expected '%s'", lit);
    ps->p += n;
    return 0;
}

static int hex4(struct parser *ps, unsigned *out)
{
    unsigned v = 0;
    if (ps->end - ps->p < 4)
        return fail(ps, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(ps, "bad hex digit in \\u escape");
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* Appends code point cp (> 0xff, valid) to dst as UTF-8; returns bytes written. */
static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Parses a string literal at p (which is at the opening quote) into arena
 * memory. The decoded form is never longer than the literal: an escape of 6
 * or 12 characters yields at most 4 bytes.
 */
static int parse_string(struct parser *ps, char **out, size_t *outlen)
{
    const char *q = ps->p + 1;
    /* Find the closing quote first, to size the buffer. */
    while (q < ps->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    if (q >= ps->end) {
        return fail(ps, "unterminated string");
    }
    char *dst = arena_alloc(ps->arena, (size_t)(q - ps->p));
    if (!dst)
        return fail_nomem(ps);
    size_t n = 0;

    ps->p++;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20)
            return fail(ps, "control character 0x%02x in string (escape it)", c);
        if (c != '\\') {
            dst[n++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++; /* the backslash; the scan above proved a byte follows */
        c = (unsigned char)*ps->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/': dst[n++] = (char)c; break;
        case 'b': dst[n++] = '\b'; break;
        case 'f': dst[n++] = '\f'; break;
        case 'n': dst[n++] = '\n'; break;
        case 'r': dst[n++] = '\r'; break;
        case 't': dst[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(ps, &cp) < 0)
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, "lone low surrogate \\u%04x", cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return fail(ps, "high surrogate \\u%04x without a low one", cp);
                ps->p += 2;
                if (hex4(ps, &lo) < 0)
                    return -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, "high surrogate followed by \\u%04x", lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp <= 0xff)
                dst[n++] = (char)cp; /* a byte: see json.h */
            else
                n += put_utf8(dst + n, cp);
            break;
        }
        default: ps->p--; return fail(ps, "invalid escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
    dst[n] = '\0';
    *out = dst;
    *outlen = n;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *ps, double *out)
{
    const char *s = ps->p;
    const char *p = s;
    char buf[128];

    if (p < ps->end && *p == '-')
        p++;
    if (p < ps->end && *p == '0') {
        p++;
    } else if (p < ps->end && *p >= '1' && *p <= '9') {
        while (p < ps->end && is_digit(*p))
            p++;
    } else {
        return fail(ps, "invalid number");
    }
    if (p < ps->end && *p == '.') {
        p++;
        if (p >= ps->end || !is_digit(*p))
            return fail(ps, "invalid number: no digit after '.'");
        while (p < ps->end && is_digit(*p))
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || !is_digit(*p))
            return fail(ps, "invalid number: no digit in exponent");
        while (p < ps->end && is_digit(*p))
            p++;
    }
    if ((size_t)(p - s) >= sizeof(buf))
        return fail(ps, "number longer than %zu characters", sizeof(buf) - 1);
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    /* The grammar above is a subset of strtod's, and the C locale is in force. */
    *out = strtod(buf, NULL);
    ps->p = p;
    return 0;
}

/* Parses the elements of an array or the members of an object after the bracket. */
static int parse_container(struct parser *ps, struct json_value *v, int depth)
{
    bool is_obj = v->type == JSON_OBJECT;
    char close = is_obj ? '}' : ']';
    struct json_value **tail = &v->u.first;
    char what[16];

    if (depth >= JSON_MAX_DEPTH)
        return fail(ps, "nested deeper than %d levels", JSON_MAX_DEPTH);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        struct json_value *el = arena_alloc(ps->arena, sizeof(*el));
        if (!el)
            return fail_nomem(ps);
        memset(el, 0, sizeof(*el));
        if (is_obj) {
            char *key;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a member name, found %s",
                            describe(ps, what, sizeof(what)));
            if (parse_string(ps, &key, &el->key_len) < 0)
                return -1;
            el->key = key;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':' after member name, found %s",
                            describe(ps, what, sizeof(what)));
            ps->p++;
        }
        if (parse_value(ps, el, depth + 1) < 0)
            return -1;
        *tail = el;
        tail = &el->next;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return fail(ps, "expected ',' or '%c', found %s", close, describe(ps, what, sizeof(what)));
    }
}

static int parse_value(struct parser *ps, struct json_value *v, int depth)
{
    char what[16];
    int rc;

    skip_ws(ps);
    v->raw = ps->p;
    if (ps->p >= ps->end)
        return fail(ps, "expected a value, found end of input");
    switch (*ps->p) {
    case '{':
        v->type = JSON_OBJECT;
        rc = parse_container(ps, v, depth);
        break;
    case '[':
        v->type = JSON_ARRAY;
        rc = parse_container(ps, v, depth);
        break;
    case '"':
        v->type = JSON_STRING;
        rc = parse_string(ps, &v->u.string.bytes, &v->u.string.len);
        break;
    case 't':
        v->type = JSON_BOOL;
        v->u.boolean = true;
        rc = expect_literal(ps, "true");
        break;
    case 'f':
        v->type = JSON_BOOL;
        v->u.boolean = false;
        rc = expect_literal(ps, "false");
        break;
    case 'n':
        v->type = JSON_NULL;
        rc = expect_literal(ps, "null");
        break;
    default:
        if (*ps->p == '-' || is_digit(*ps->p)) {
            v->type = JSON_NUMBER;
            rc = parse_number(ps, &v->u.number);
        } else {
            rc = fail(ps, "expected a value, found %s", describe(ps, what, sizeof(what)));
        }
        break;
    }
    v->raw_len = (size_t)(ps->p - v->raw);
    return rc;
}

int json_parse(struct json_arena *arena, const char *text, size_t len, struct json_value **out,
               char *err, size_t errlen)
{
    struct parser ps = {
        .arena = arena,
        .start = text,
        .p = text,
        .end = text + len,
        .err = err,
        .errlen = errlen,
    };
    char what[16];
    struct json_value *v = arena_alloc(arena, sizeof(*v));

    if (!v) {
        fail_nomem(&ps);
        return ps.rc;
    }
    memset(v, 0, sizeof(*v));
    if (parse_value(&ps, v, 0) < 0)
        return ps.rc;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "unexpected %s after the value", describe(&ps, what, sizeof(what)));
        return ps.rc;
    }
    *out = v;
    return 0;
}

const struct json_value *json_object_get(const struct json_value *obj, const char *key)
{
    size_t n = strlen(key);
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (const struct json_value *m = obj->u.first; m; m = m->next)
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    return NULL;
}

/* ---- writer ------------------------------------------------------------ */

void json_buf_free(struct json_buf *b)
{
    free(b->data);
    *b = (struct json_buf){0};
}

/* Makes room for n more bytes; false (and `failed` set) if it cannot. */
static bool buf_reserve(struct json_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void json_buf_raw(struct json_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void json_buf_sep(struct json_buf *b)
{
    if (b->len == 0 || b->failed)
        return;
    char last = b->data[b->len - 1];
    if (last != '{' && last != '[')
        json_buf_raw(b, ",", 1);
}

void json_buf_key(struct json_buf *b, const char *key)
{
    json_buf_sep(b);
    json_buf_raw(b, "\"", 1);
    json_buf_raw(b, key, strlen(key));
    json_buf_raw(b, "\":", 2);
}

void json_buf_string(struct json_buf *b, const void *bytes, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = bytes;

    /* Worst case: every byte becomes \u00XX. */
    if (n > (SIZE_MAX - 2) / 6 || !buf_reserve(b, n * 6 + 2)) {
        b->failed = true;
        return;
    }
    char *d = b->data + b->len;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *d++ = (char)c;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"':
        case '\\': *d++ = (char)c; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
            break;
        }
    }
    *d++ = '"';
    b->len = (size_t)(d - b->data);
}

void json_buf_cstring(struct json_buf *b, const char *s)
{
    json_buf_string(b, s, strlen(s));
}

void json_buf_int(struct json_buf *b, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", v);
    json_buf_raw(b, tmp, (size_t)n);
}

void json_buf_bool(struct json_buf *b, bool v)
{
    if (v)
        json_buf_raw(b, "true", 4);
    else
        json_buf_raw(b, "false", 5);
}

/* ---- base64 (RFC 4648 §4) ---------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void json_buf_base64(struct json_buf *b, const void *bytes, size_t n)
{
    const unsigned char *s = bytes;
    size_t out = (n + 2) / 3 * 4;

    if (n > SIZE_MAX / 2 || !buf_reserve(b, out + 2)) {
        b->failed = true;
        return;
    }
    char *d = b->data + b->len;
    *d++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *d++ = b64_alphabet[v >> 18];
        *d++ = b64_alphabet[(v >> 12) & 63];
        *d++ = b64_alphabet[(v >> 6) & 63];
        *d++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        *d++ = b64_alphabet[v >> 18];
        *d++ = b64_alphabet[(v >> 12) & 63];
        *d++ = '=';
        *d++ = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        *d++ = b64_alphabet[v >> 18];
        *d++ = b64_alphabet[(v >> 12) & 63];
        *d++ = b64_alphabet[(v >> 6) & 63];
        *d++ = '=';
    }
    *d++ = '"';
    b->len = (size_t)(d - b->data);
}

size_t json_base64_max_decoded(size_t n)
{
    return n / 4 * 3 + 3;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int json_base64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    /* Up to two '=' at the end, and only where they complete a quantum. */
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4 != 0)
        return -EINVAL;
    if (n % 4 == 1)
        return -EINVAL; /* 6 bits cannot end a byte */
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -EINVAL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero (RFC 4648 §3.5, canonical encoding). */
    if (acc != 0)
        return -EINVAL;
    *outlen = o;
    return 0;
}
