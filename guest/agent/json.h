/*
 * The agent's wire format: a small JSON reader and writer (RFC 8259) and
 * base64 (RFC 4648 §4), with no library beyond libc.
 *
 * Strings are byte strings. The reader turns an escape \u0000..\u00ff into
 * that one byte and copies raw bytes as they are; an escape above U+00FF
 * becomes its UTF-8 encoding. The writer escapes every byte below 0x20 or
 * above 0x7e as \u00XX, so its output is pure ASCII and a client recovers the
 * bytes exactly by decoding the JSON and mapping each code point (all <= 0xff)
 * to one byte ("latin-1"). See guest/agent/README.md.
 *
 * Nothing here keeps global state; every function may run on any thread as
 * long as each arena and buffer is used by one at a time.
 */
#ifndef TESSERA_GUEST_JSON_H
#define TESSERA_GUEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused (the reader recurses). */
#define JSON_MAX_DEPTH 64

enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/*
 * A parsed value. Owned by the arena it was parsed into; valid until
 * json_arena_free. Arrays and objects hold their elements as a list through
 * `next`; an object's members carry their key in `key`/`key_len`.
 */
struct json_value {
    enum json_type type;
    /* This value's text in the parsed input (e.g. to echo an "id"). */
    const char *raw;
    size_t raw_len;
    /* The next element of the enclosing array or object, or NULL. */
    struct json_value *next;
    /* The member name when the enclosing value is an object (decoded, NUL-terminated). */
    const char *key;
    size_t key_len;
    union {
        bool boolean;
        double number;
        struct {
            char *bytes; /* decoded; NUL-terminated, but may hold NULs itself */
            size_t len;
        } string;
        struct json_value *first; /* JSON_ARRAY, JSON_OBJECT: first element */
    } u;
};

/* Memory for one parse; start zeroed ({0}), free with json_arena_free. */
struct json_arena {
    struct json_arena_block *head;
};

/*
 * Parses the `len` bytes at `text` as exactly one JSON value (white space
 * around it allowed). Returns 0 and the value through `out`, or -EINVAL with
 * a message in `err` (size `errlen`) naming the byte offset, or -ENOMEM.
 * Never reads outside text[0, len); `text` need not be NUL-terminated.
 */
int json_parse(struct json_arena *arena, const char *text, size_t len, struct json_value **out,
               char *err, size_t errlen);

/* Frees everything parsed into `arena` and leaves it empty for reuse. */
void json_arena_free(struct json_arena *arena);

/* The member `key` of object `obj` (the first, if repeated), or NULL. NULL-safe. */
const struct json_value *json_object_get(const struct json_value *obj, const char *key);

/*
 * An output buffer. Start zeroed ({0}). Appending never fails visibly: on
 * allocation failure `failed` is set and later appends are ignored, so a
 * caller checks once at the end.
 */
struct json_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

void json_buf_free(struct json_buf *b);
/* Appends bytes as they are (no escaping). */
void json_buf_raw(struct json_buf *b, const void *p, size_t n);
/* Appends "," unless the buffer ends in "{", "[" or is empty: call before a member or element. */
void json_buf_sep(struct json_buf *b);
/* Appends the separator, "key" and ":". `key` must be plain ASCII needing no escape. */
void json_buf_key(struct json_buf *b, const char *key);
/* Appends the bytes as a JSON string literal (quotes included). */
void json_buf_string(struct json_buf *b, const void *bytes, size_t n);
void json_buf_cstring(struct json_buf *b, const char *s);
void json_buf_int(struct json_buf *b, long long v);
void json_buf_bool(struct json_buf *b, bool v);
/* Appends the bytes base64-encoded (with padding) as a JSON string literal. */
void json_buf_base64(struct json_buf *b, const void *bytes, size_t n);

/*
 * Decodes base64 (standard alphabet, padding optional, no white space) from
 * `in` into `out`, which must hold json_base64_max_decoded(n) bytes. Returns
 * 0 and the length through `outlen`, or -EINVAL if the text is not base64.
 */
int json_base64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);
size_t json_base64_max_decoded(size_t n);

#endif
