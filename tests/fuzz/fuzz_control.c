// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/vmm/control.c src/vmm/control_client.c src/base/log.c src/base/hostfs.c tests/fuzz/fuzz_control.c -o build/fuzz_control -lmicrohttpd -ljansson -pthread
// run:   build/fuzz_control -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for the control API's parsers of outside input: the request bodies (JSON to
 * action: control_parse_state(), control_parse_balloon()), the whole request core with a fake
 * VMM (control_handle(): route table, validation, error mapping), and the client's HTTP
 * response parser (control_client_parse(), with control_client_error() on what it returns and
 * control_client_parse_size() on the same bytes).
 *
 * Input layout: [0] mode, [1] parameter, [2..] payload.
 *   mode & 3: 0 state body, 1 balloon body, 2 control_handle, 3 response parser
 *   mode & 4: (modes 0-2) the body is generated: the payload drives a small JSON builder
 *             (known and unknown keys, every JSON type, edge integers), so the validation is
 *             reached even though jansson itself is not instrumented; otherwise it is raw
 *   mode 3:   the payload is also parsed cut at byte (mode >> 3) * 8, as a prefix
 *   param:    mode 2: route (low 3 bits), op result (next 3 bits), null output (bit 6);
 *             mode 3: eof (bit 0), a canned head put before the payload (bits 1-2)
 * Every result is checked against the contracts in control.h and control_client.h; a
 * violation traps. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vmm/control.h"
#include "vmm/control_client.h"

#define CHECK(c)              \
    do {                      \
        if (!(c))             \
            __builtin_trap(); \
    } while (0)

/* ---- The generated-JSON builder ---- */

struct src {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint64_t take64(struct src *s)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | take(s);
    return v;
}

static const char *const keys[] = {"action",  "timeout_s", "target_bytes", "target_mib",
                                   "bps",     "iops",      "Action",       "",
                                   "action ", "target"};
static const char *const strings[] = {"pause", "resume", "shutdown", "stop", "reset",
                                      "PAUSE", "",       "128M",     "1"};
static const int64_t ints[] = {0,
                               1,
                               -1,
                               29,
                               30,
                               3600,
                               3601,
                               4096,
                               4095,
                               1ll << 50,
                               (1ll << 50) + 4096,
                               1ll << 30,
                               INT64_MAX,
                               INT64_MIN,
                               1073741824};

static json_t *gen_value(struct src *s, int depth)
{
    unsigned kind = take(s) % 10;
    char buf[16];
    size_t n;

    switch (kind) {
    case 0: return json_string(strings[take(s) % (sizeof(strings) / sizeof(strings[0]))]);
    case 1: return json_integer(ints[take(s) % (sizeof(ints) / sizeof(ints[0]))]);
    case 2: return json_integer((json_int_t)take64(s));
    case 3: return json_real((double)(int64_t)take64(s) / 7.0);
    case 4: return json_true();
    case 5: return json_null();
    case 6:
        n = take(s) % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(take(s) % 95 + 32);
        return json_stringn(buf, n);
    case 7:
        if (depth < 3) {
            json_t *a = json_array();

            for (unsigned i = take(s) % 3; i; i--)
                json_array_append_new(a, gen_value(s, depth + 1));
            return a;
        }
        return json_false();
    default: return json_integer(take(s));
    }
}

/* Returns a malloc'd JSON text made from s: usually an object of known keys. */
static char *gen_body(struct src *s)
{
    json_t *root = take(s) % 8 ? json_object() : gen_value(s, 0);
    char *text;

    if (json_is_object(root)) {
        for (unsigned i = take(s) % 4; i; i--)
            json_object_set_new(root, keys[take(s) % (sizeof(keys) / sizeof(keys[0]))],
                                gen_value(s, 1));
    }
    text = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    return text;
}

/* ---- A fake VMM whose results the input chooses ---- */

static int fake_ret;
static bool fake_null;

static const int results[8] = {0, -EBUSY, -EALREADY, -EINVAL, -ENODEV, -ENOTSUP, -EIO, 1};

static int fake_get(json_t **out)
{
    if (!fake_ret)
        *out = fake_null ? NULL : json_pack("{s:s,s:i}", "state", "paused\x01", "uptime_s", 1);
    return fake_ret;
}

static int f_describe(void *vm, json_t **out)
{
    return fake_get(out);
}

static int f_plain(void *vm)
{
    return fake_ret;
}

static int f_shutdown(void *vm, unsigned timeout_s)
{
    CHECK(timeout_s >= 1 && timeout_s <= CONTROL_SHUTDOWN_TIMEOUT_MAX);
    return fake_ret;
}

static int f_balloon_set(void *vm, uint64_t target)
{
    CHECK(target % CONTROL_BALLOON_PAGE == 0 && target <= CONTROL_BALLOON_MAX);
    return fake_ret;
}

/* The limits route hands over only an object of integers >= 0, strings and nulls. */
static int f_limits_set(void *vm, const char *type, unsigned index, json_t *changes, json_t **out,
                        char *err)
{
    const char *key;
    json_t *v;

    CHECK(json_is_object(changes) && (!strcmp(type, "disk") || !strcmp(type, "net")));
    json_object_foreach(changes, key, v)
    {
        CHECK(json_is_null(v) || json_is_string(v) ||
              (json_is_integer(v) && json_integer_value(v) >= 0));
    }
    if (fake_ret < 0)
        snprintf(err, CONTROL_ERR_LEN, "disks[%u]: refused", index);
    return fake_get(out);
}

static const struct control_ops ops = {
    .describe = f_describe,
    .pause = f_plain,
    .resume = f_plain,
    .shutdown = f_shutdown,
    .stop = f_plain,
    .reset = f_plain,
    .balloon_set = f_balloon_set,
    .balloon_get = f_describe,
    .stats = f_describe,
    .limits_set = f_limits_set,
};

static const struct {
    const char *method, *path;
} requests[8] = {
    {"GET", "/v1/vm"},         {"PUT", "/v1/vm/state"}, {"GET", "/v1/vm/balloon"},
    {"PUT", "/v1/vm/balloon"}, {"GET", "/v1/vm/stats"}, {"PUT", "/v1/vm/disks/7/limits"},
    {"DELETE", "/v1/vm"},      {"GET", "/v1/nope"},
};

/* An error message: one printable-ASCII line, NUL-terminated within CONTROL_ERR_LEN. */
static void check_msg(const char *err)
{
    size_t n = strnlen(err, CONTROL_ERR_LEN);

    CHECK(n > 0 && n < CONTROL_ERR_LEN);
    for (size_t i = 0; i < n; i++)
        CHECK(err[i] >= 0x20 && err[i] < 0x7f);
}

static void fuzz_handle(unsigned param, const char *body, size_t len)
{
    struct control_response r;
    json_t *doc;

    fake_ret = results[(param >> 3) & 7];
    fake_null = param & 0x40;
    control_handle(&ops, NULL, requests[param & 7].method, requests[param & 7].path, body, len, &r);
    CHECK(r.status == 200 || r.status == 204 || r.status == 400 || r.status == 404 ||
          r.status == 405 || r.status == 409 || r.status == 413 || r.status == 500 ||
          r.status == 501);
    CHECK((r.status == 204) == (r.body == NULL));
    if (r.body) {
        CHECK(strlen(r.body) == r.len);
        doc = json_loadb(r.body, r.len, 0, NULL);
        CHECK(doc);
        if (r.status >= 400) {
            CHECK(json_is_string(json_object_get(doc, "error")));
            check_msg(json_string_value(json_object_get(doc, "error")));
        }
        json_decref(doc);
    }
    if (r.status == 405)
        CHECK(r.allow[0]);
    control_response_free(&r);
}

static void fuzz_body(unsigned mode, unsigned param, const char *body, size_t len)
{
    char err[CONTROL_ERR_LEN];
    struct control_state_req req;
    uint64_t target;
    int ret;

    switch (mode & 3) {
    case 0:
        ret = control_parse_state(body, len, &req, err);
        CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
        if (ret)
            check_msg(err);
        else
            CHECK(control_action_name(req.action) && req.timeout_s >= 1 &&
                  req.timeout_s <= CONTROL_SHUTDOWN_TIMEOUT_MAX);
        break;
    case 1:
        ret = control_parse_balloon(body, len, &target, err);
        CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
        if (ret)
            check_msg(err);
        else
            CHECK(target % CONTROL_BALLOON_PAGE == 0 && target <= CONTROL_BALLOON_MAX);
        break;
    default: fuzz_handle(param, body, len); break;
    }
}

/* Heads the payload may be put behind, so the body decoders are reached at once. */
static const char *const heads[4] = {
    "",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
};

static void fuzz_reply(unsigned mode, unsigned param, const uint8_t *data, size_t size)
{
    const char *head = heads[(param >> 1) & 3];
    size_t hlen = strlen(head), len = hlen + size, split = (mode >> 3) * 8;
    struct control_client_reply r;
    char err[CONTROL_CLIENT_ERR_LEN], msg[CONTROL_CLIENT_ERR_LEN];
    char *buf = malloc(len + 1);
    bool eof = param & 1;
    uint64_t bytes;
    int ret, ret2;

    if (!buf)
        return;
    memcpy(buf, head, hlen);
    memcpy(buf + hlen, data, size);
    buf[len] = '\0';
    if (split > len)
        split = len;

    ret = control_client_parse(buf, len, eof, &r, err);
    CHECK(ret == 0 || ret == -EAGAIN || ret == -ECONNRESET || ret == -EPROTO || ret == -EMSGSIZE ||
          ret == -ENOMEM);
    if (ret == 0) {
        CHECK(r.status >= 200 && r.status <= 599);
        CHECK(r.len <= CONTROL_CLIENT_BODY_MAX && r.body[r.len] == '\0');
        /* What `tessera vm` prints for an error: one line without control bytes. */
        control_client_error(&r, msg, sizeof(msg));
        for (size_t i = 0; msg[i]; i++)
            CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f);
        control_client_reply_free(&r);
    } else if (ret != -EAGAIN) {
        CHECK(strnlen(err, CONTROL_CLIENT_ERR_LEN) < CONTROL_CLIENT_ERR_LEN);
    }
    /* A prefix of a complete response is incomplete or complete, never an error. */
    ret2 = control_client_parse(buf, split, false, &r, err);
    if (ret2 == 0)
        control_client_reply_free(&r);
    if (ret == 0 && !eof)
        CHECK(ret2 == 0 || ret2 == -EAGAIN);

    /* The SIZE argument of `tessera vm balloon`, from the payload as a string. */
    ret = control_client_parse_size(buf + hlen, &bytes);
    CHECK(ret == 0 || ret == -EINVAL || ret == -ERANGE);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct src s;
    unsigned mode, param;
    char *body;

    if (size < 2)
        return 0;
    mode = data[0];
    param = data[1];
    s = (struct src){data + 2, size - 2};
    if ((mode & 3) == 3) {
        fuzz_reply(mode, param, s.p, s.n);
    } else if (mode & 4) {
        body = gen_body(&s);
        if (body)
            fuzz_body(mode, param, body, strlen(body));
        free(body);
    } else {
        fuzz_body(mode, param, (const char *)s.p, s.n);
    }
    return 0;
}
