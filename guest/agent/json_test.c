/*
 * Host-side tests of json.c: golden inputs that must parse (and how) or fail,
 * writer and base64 round trips, and a mutation fuzz loop whose only check is
 * that the parser neither crashes nor reads out of bounds (the build runs it
 * under AddressSanitizer and UBSan). Run by guest/stages/initramfs.sh; prints
 * one line per failure and a summary, exits 1 if anything failed.
 */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                           \
    do {                                                           \
        if (!(cond)) {                                             \
            failures++;                                            \
            printf("json_test: FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                                   \
            printf("\n");                                          \
        }                                                          \
    } while (0)

/*
 * Parses a heap copy of `text` so that ASan sees its exact bounds. The copy
 * is freed on return: callers must not look at `raw` of the result.
 */
static int parse(struct json_arena *a, const char *text, size_t len, struct json_value **v,
                 char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    int rc = json_parse(a, copy, len, v, err, errlen);
    free(copy);
    return rc;
}

static void test_valid(void)
{
    static const char *ok[] = {
        "{}",
        "[]",
        " {\"a\" : [1, 2.5, -3e2, 0, -0, 1E+2, 1e-2], \"b\": {\"c\": null}} ",
        "\"\"",
        "true",
        "false",
        "null",
        "0",
        "[[[[[[[[[[]]]]]]]]]]",
        "{\"cmd\":\"ping\",\"id\":1}\r\n",
        "\"\\ud83d\\ude00\"",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct json_arena a = {0};
        struct json_value *v;
        char err[128];
        int rc = parse(&a, ok[i], strlen(ok[i]), &v, err, sizeof(err));
        CHECK(rc == 0, "valid input %s: %s", ok[i], err);
        json_arena_free(&a);
    }
}

static void test_invalid(void)
{
    static const char *bad[] = {
        "",          " ",        "{",         "}",           "[1,]",        "[1 2]",
        "{\"a\" 1}", "{\"a\":}", "{a:1}",     "{\"a\":1,}",  "01",          "1.",
        ".5",        "1e",       "-",         "+1",          "tru",         "nul",
        "\"abc",     "\"\\x\"",  "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\nb\"",  "{} {}",    "[1]x",      "\"\\",        "\"\\u",       "NaN",
        "Infinity",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_arena a = {0};
        struct json_value *v;
        char err[128] = "";
        int rc = parse(&a, bad[i], strlen(bad[i]), &v, err, sizeof(err));
        CHECK(rc == -EINVAL && err[0], "invalid input '%s' gave rc %d", bad[i], rc);
        json_arena_free(&a);
    }

    /* An embedded NUL is an error, not the end of the input. */
    struct json_arena a = {0};
    struct json_value *v;
    char err[128];
    CHECK(parse(&a, "{}\0", 3, &v, err, sizeof(err)) == -EINVAL, "NUL after value accepted");
    json_arena_free(&a);

    /* Nesting past the limit fails cleanly instead of overflowing the stack. */
    size_t deep = 100000;
    char *s = malloc(deep);
    memset(s, '[', deep);
    CHECK(parse(&a, s, deep, &v, err, sizeof(err)) == -EINVAL, "deep nesting accepted");
    CHECK(strstr(err, "nested") != NULL, "deep nesting message: %s", err);
    json_arena_free(&a);
    free(s);
}

static void test_decode(void)
{
    struct json_arena a = {0};
    struct json_value *v;
    char err[128];
    const char *text = "{\"s\":\"a\\u00e9\\u0000\\u20ac\\ud83d\\ude00\\n\\\"\\/\",\"n\":-12.5,"
                       "\"t\":true,\"arr\":[1,\"x\"],\"s\":\"second\"}";
    int rc = json_parse(&a, text, strlen(text), &v, err, sizeof(err));
    CHECK(rc == 0, "decode: %s", err);
    if (rc == 0) {
        const struct json_value *s = json_object_get(v, "s");
        static const char want[] = "a\xe9\0\xe2\x82\xac\xf0\x9f\x98\x80\n\"/";
        CHECK(s && s->type == JSON_STRING && s->u.string.len == sizeof(want) - 1 &&
                  memcmp(s->u.string.bytes, want, sizeof(want) - 1) == 0,
              "string decoding");
        CHECK(s && s->raw_len == strlen("\"a\\u00e9\\u0000\\u20ac\\ud83d\\ude00\\n\\\"\\/\""),
              "raw span of the string");
        const struct json_value *n = json_object_get(v, "n");
        CHECK(n && n->type == JSON_NUMBER && n->u.number == -12.5, "number");
        const struct json_value *t = json_object_get(v, "t");
        CHECK(t && t->type == JSON_BOOL && t->u.boolean, "bool");
        const struct json_value *arr = json_object_get(v, "arr");
        CHECK(arr && arr->type == JSON_ARRAY && arr->u.first && arr->u.first->next &&
                  arr->u.first->next->type == JSON_STRING && !arr->u.first->next->next,
              "array");
        CHECK(json_object_get(v, "missing") == NULL, "missing key");
        CHECK(json_object_get(arr, "s") == NULL, "get on an array");
    }
    json_arena_free(&a);
}

static void test_writer(void)
{
    struct json_buf b = {0};
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;

    json_buf_raw(&b, "{", 1);
    json_buf_key(&b, "s");
    json_buf_string(&b, all, sizeof(all));
    json_buf_key(&b, "i");
    json_buf_int(&b, -42);
    json_buf_key(&b, "b");
    json_buf_bool(&b, false);
    json_buf_key(&b, "a");
    json_buf_raw(&b, "[", 1);
    json_buf_sep(&b);
    json_buf_int(&b, 1);
    json_buf_sep(&b);
    json_buf_int(&b, 2);
    json_buf_raw(&b, "]", 1);
    json_buf_key(&b, "b64");
    json_buf_base64(&b, "hello", 5);
    json_buf_raw(&b, "}", 1);
    CHECK(!b.failed, "writer failed");

    /* The output is ASCII and parses back to the same bytes. */
    for (size_t i = 0; i < b.len; i++)
        CHECK(b.data[i] >= 0x20 && b.data[i] < 0x7f, "non-ASCII output byte at %zu", i);
    struct json_arena a = {0};
    struct json_value *v;
    char err[128];
    int rc = json_parse(&a, b.data, b.len, &v, err, sizeof(err));
    CHECK(rc == 0, "writer output does not parse: %s: %.*s", err, (int)b.len, b.data);
    if (rc == 0) {
        const struct json_value *s = json_object_get(v, "s");
        CHECK(s && s->u.string.len == 256 && memcmp(s->u.string.bytes, all, 256) == 0,
              "byte string round trip");
        const struct json_value *b64 = json_object_get(v, "b64");
        CHECK(b64 && strcmp(b64->u.string.bytes, "aGVsbG8=") == 0, "base64 of hello");
        const struct json_value *arr = json_object_get(v, "a");
        CHECK(arr && arr->raw_len == 5 && memcmp(arr->raw, "[1,2]", 5) == 0, "array separators");
    }
    json_arena_free(&a);
    json_buf_free(&b);
}

static void test_base64(void)
{
    unsigned char in[300], out[json_base64_max_decoded(404) + 1];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        struct json_buf b = {0};
        size_t len = 0;
        json_buf_base64(&b, in, n);
        /* strip the quotes */
        int rc = json_base64_decode(b.data + 1, b.len - 2, out, &len);
        CHECK(rc == 0 && len == n && memcmp(in, out, n) == 0, "base64 round trip of %zu bytes", n);
        /* and without padding */
        size_t m = b.len - 2;
        while (m > 0 && b.data[m] == '=')
            m--;
        rc = json_base64_decode(b.data + 1, m, out, &len);
        CHECK(rc == 0 && len == n && memcmp(in, out, n) == 0, "unpadded base64 of %zu bytes", n);
        json_buf_free(&b);
    }
    static const char *bad[] = {"A", "A===", "AB=C", "A*BC", "AB=", "====", "QQ=x", "QR=="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len;
        CHECK(json_base64_decode(bad[i], strlen(bad[i]), out, &len) == -EINVAL,
              "bad base64 '%s' accepted", bad[i]);
    }
}

/* xorshift64*: deterministic, so a failure reproduces. */
static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void test_fuzz(int iterations)
{
    static const char *seeds[] = {
        "{\"id\":1,\"cmd\":\"exec\",\"argv\":[\"sh\",\"-c\",\"echo \\u00e9\"],\"timeout\":5}",
        "{\"cmd\":\"file-write\",\"path\":\"/tmp/x\",\"data_b64\":\"aGVsbG8=\",\"mode\":420}",
        "[[{\"a\":[true,false,null,-1.5e-3]}],\"\\ud83d\\ude00\"]",
    };
    static const char tokens[] = "{}[]\",:\\u0123456789eE+-.tfn \t\r\n\xff";
    char buf[512];

    for (int it = 0; it < iterations; it++) {
        const char *seed = seeds[rng() % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(rng() % 8);
        for (int e = 0; e < edits; e++) {
            size_t pos = len ? rng() % len : 0;
            switch (rng() % 4) {
            case 0: /* replace */
                if (len)
                    buf[pos] = tokens[rng() % (sizeof(tokens) - 1)];
                break;
            case 1: /* insert */
                if (len < sizeof(buf) - 1) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = tokens[rng() % (sizeof(tokens) - 1)];
                    len++;
                }
                break;
            case 2: /* delete */
                if (len) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            default: /* truncate */ len = pos; break;
            }
        }
        char *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        struct json_arena a = {0};
        struct json_value *v;
        char err[128];
        int rc = json_parse(&a, copy, len, &v, err, sizeof(err));
        CHECK(rc == 0 || rc == -EINVAL, "fuzz: rc %d", rc);
        if (rc == 0) {
            /* Re-encoding a decoded string must round-trip. */
            for (const struct json_value *m = v->type == JSON_OBJECT ? v->u.first : NULL; m;
                 m = m->next) {
                if (m->type != JSON_STRING)
                    continue;
                struct json_buf b = {0};
                json_buf_string(&b, m->u.string.bytes, m->u.string.len);
                struct json_arena a2 = {0};
                struct json_value *v2;
                CHECK(json_parse(&a2, b.data, b.len, &v2, err, sizeof(err)) == 0 &&
                          v2->u.string.len == m->u.string.len &&
                          memcmp(v2->u.string.bytes, m->u.string.bytes, m->u.string.len) == 0,
                      "fuzz: string re-encoding");
                json_arena_free(&a2);
                json_buf_free(&b);
            }
        }
        json_arena_free(&a);
        free(copy);
    }
}

int main(void)
{
    test_valid();
    test_invalid();
    test_decode();
    test_writer();
    test_base64();
    test_fuzz(200000);
    printf("json_test: %s (%d failure(s))\n", failures ? "FAILED" : "ok", failures);
    return failures ? 1 : 0;
}
