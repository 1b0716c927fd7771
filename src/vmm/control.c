/* The per-VM control API server (control.h): libmicrohttpd on a unix socket in front of a
 * const route table; strict, schema-driven validation of request bodies; one mutex around
 * every call into the VMM.
 *
 * The request core (control_handle() and the parse functions) knows nothing of HTTP framing,
 * so the unit test and the fuzz target drive it directly; the libmicrohttpd glue at the end of
 * the file only collects the body, applies the limits that must act before a body is read
 * (413 on a large Content-Length, 415, query strings) and sends the response. */
#include "vmm/control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "base/hostfs.h"
#include "base/log.h"
#include "base/time.h"

#define CONTROL_CONN_MEM       (32u << 10) /* per-connection pool: request line and headers */
#define CONTROL_IDLE_TIMEOUT_S 60          /* an idle connection is closed after this */
#define CONTROL_FIELDS_MAX     8           /* fields in one body schema */
#define CONTROL_QUOTE_LEN      52          /* quote() buffers */

/* ---- Messages ---- */

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CONTROL_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Copies at most 40 bytes of s (n of them, or up to its NUL when n is SIZE_MAX) into buf
 * (CONTROL_QUOTE_LEN bytes) for a message: anything but printable ASCII becomes '?', a longer
 * s ends in "...". The result is always valid UTF-8, which jansson requires of strings. */
static const char *quote_n(const char *s, size_t n, char *buf)
{
    size_t i;

    for (i = 0; i < n && s[i] && i < 40; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < n && s[i])
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

static const char *quote(const char *s, char *buf)
{
    return quote_n(s, SIZE_MAX, buf);
}

/* A JSON value's kind, as an error message names it. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction or exponent";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

/* ---- Responses ---- */

static void reply_error(struct control_response *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The length of the UTF-8 sequence that starts s (at most n bytes are looked at), or 0 when
 * none starts there: a stray continuation byte, an overlong form, a surrogate, a code point
 * above U+10FFFF, or a sequence cut short (RFC 3629 §4 gives the well-formed forms). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Makes the NUL-terminated s valid UTF-8 in place, which jansson requires of strings: a
 * character cut at the end (a message truncated to its buffer) is dropped, any other byte
 * that starts no well-formed character becomes '?'. */
static void utf8_repair(char *s)
{
    size_t n = strlen(s), i = 0, len;

    while (i < n) {
        len = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (len) {
            i += len;
            continue;
        }
        /* The tail of a truncated message: a lead byte with only continuation bytes after
         * it, fewer than it announces. */
        len = 1;
        while (i + len < n && ((unsigned char)s[i + len] & 0xc0) == 0x80)
            len++;
        if (i + len == n && (unsigned char)s[i] >= 0xc2 && (unsigned char)s[i] <= 0xf4 &&
            len < ((unsigned char)s[i] >= 0xf0   ? 4u
                   : (unsigned char)s[i] >= 0xe0 ? 3u
                                                 : 2u)) {
            s[i] = '\0';
            return;
        }
        s[i++] = '?';
    }
}

/* Messages are built from quote()d input, strerror() text, constants and the messages ops
 * give back, which may quote a path the client sent: any bytes, cut anywhere by
 * CONTROL_ERR_LEN. utf8_repair() makes them a valid JSON string. */
static void reply_error(struct control_response *r, unsigned status, const char *fmt, ...)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    char msg[CONTROL_ERR_LEN];
    json_t *obj;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg);
    free(r->body);
    r->status = status;
    r->body = NULL;
    obj = json_pack("{s:s}", "error", msg);
    if (obj)
        r->body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!r->body) {
        r->status = 500;
        r->body = strdup(oom);
    }
    r->len = r->body ? strlen(r->body) : 0;
}

/* Takes over v (a reference the VMM handed us) and makes it the 200 response body. */
static void reply_json(struct control_response *r, const char *what, json_t *v)
{
    if (!v) {
        reply_error(r, 500, "%s: the VMM returned no data", what);
        return;
    }
    r->body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!r->body) {
        reply_error(r, 500, "%s: the VMM's answer could not be encoded as JSON", what);
        return;
    }
    r->status = 200;
    r->len = strlen(r->body);
}

static void reply_empty(struct control_response *r)
{
    r->status = 204;
    r->body = NULL;
    r->len = 0;
}

void control_response_free(struct control_response *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- Errors from the VMM ---- */

/* The VM's state ("paused") from describe, quoted into buf (n bytes), or "" when describe
 * fails or gives none. Called with the mutex held, like every op. */
static const char *state_phrase(const struct control_ops *ops, void *vm, char *buf, size_t n)
{
    char q[CONTROL_QUOTE_LEN];
    json_t *d = NULL, *state;

    buf[0] = '\0';
    if (ops->describe && ops->describe(vm, &d) == 0 && d) {
        state = json_object_get(d, "state");
        if (json_is_string(state))
            snprintf(buf, n, "%s", quote(json_string_value(state), q));
    }
    json_decref(d);
    return buf;
}

/* Turns an op's -errno into the response (control.h, struct control_ops, says the mapping).
 * what names the action ("pause"); device is the device the route needs (NULL: none); einval
 * says what the VM may have refused on -EINVAL (NULL: nothing more to say). */
static void reply_op_error(struct control_response *r, const struct control_ops *ops, void *vm,
                           const char *what, const char *device, const char *einval, int ret)
{
    char state[64], ebuf[128];

    switch (-ret) {
    case EBUSY:
        if (*state_phrase(ops, vm, state, sizeof(state)))
            reply_error(r, 409, "%s: not possible while the VM is %s", what, state);
        else
            reply_error(r, 409, "%s: not possible in the VM's current state", what);
        return;
    case EALREADY:
        if (*state_phrase(ops, vm, state, sizeof(state)))
            reply_error(r, 409, "%s: already done (the VM is %s)", what, state);
        else
            reply_error(r, 409, "%s: already done", what);
        return;
    case EINVAL:
    case ERANGE:
        if (einval)
            reply_error(r, 400, "%s: the VM refused the value (%s)", what, einval);
        else
            reply_error(r, 400, "%s: the VM refused the value (%s)", what,
                        strerror_r(-ret, ebuf, sizeof(ebuf)));
        return;
    case ENODEV:
        if (device)
            reply_error(r, 409, "%s: this VM has no %s device (add --device %s to `tessera run`)",
                        what, device, device);
        else
            reply_error(r, 409, "%s: this VM lacks the device it needs", what);
        return;
    case ENOSYS:
    case ENOTSUP: reply_error(r, 501, "%s: not supported by this VMM", what); return;
    default:
        reply_error(r, 500, "%s failed: %s", what, strerror_r(-ret, ebuf, sizeof(ebuf)));
        return;
    }
}

/* ---- Body schemas: strict validation shared by every route that takes a body ---- */

enum field_type { FIELD_STRING, FIELD_UINT, FIELD_BOOL };

struct field {
    const char *name;
    enum field_type type;
    uint64_t min, max; /* FIELD_UINT: the inclusive range */
};

struct schema {
    const struct field *fields;
    size_t count;       /* at most CONTROL_FIELDS_MAX */
    const char *names;  /* "action, timeout_s": for the unknown-field message */
    const char *sample; /* a valid body, for the empty-body message */
};

struct field_value {
    bool present;
    uint64_t u;    /* FIELD_UINT; FIELD_BOOL: 0 or 1 */
    const char *s; /* FIELD_STRING: owned by the parsed document */
};

/* Parses body as one JSON object whose members all appear in s, with the declared types and
 * ranges (jansson also rejects trailing data, duplicate keys and "\u0000"). Returns 0, *doc
 * (decref it; it owns the strings in v) and v[i] for s->fields[i]; or -EINVAL / -ENOMEM with
 * err. Missing fields are left to the caller: v[i].present. */
static int schema_parse(const struct schema *s, const char *body, size_t len, json_t **doc,
                        struct field_value *v, char *err)
{
    char q[CONTROL_QUOTE_LEN];
    json_error_t jerr;
    const char *key;
    json_t *root, *val;
    size_t i;

    *doc = NULL;
    memset(v, 0, s->count * sizeof(*v));
    if (!len) {
        set_err(err, "empty request body (expected a JSON object such as %s)", s->sample);
        return -EINVAL;
    }
    if (len > CONTROL_BODY_MAX) {
        set_err(err, "request body is %zu bytes; the limit is %u", len, CONTROL_BODY_MAX);
        return -EINVAL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            set_err(err, "out of memory parsing the request body");
            return -ENOMEM;
        }
        set_err(err, "request body is not valid JSON: %s (at byte %d)", quote(jerr.text, q),
                jerr.position);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        set_err(err, "request body must be a JSON object, not %s", json_kind(root));
        json_decref(root);
        return -EINVAL;
    }
    json_object_foreach(root, key, val)
    {
        const struct field *f = NULL;
        json_int_t n;

        for (i = 0; i < s->count; i++) {
            if (!strcmp(key, s->fields[i].name)) {
                f = &s->fields[i];
                break;
            }
        }
        if (!f) {
            set_err(err, "unknown field '%s' (valid fields: %s)", quote(key, q), s->names);
            goto fail;
        }
        switch (f->type) {
        case FIELD_STRING:
            if (!json_is_string(val)) {
                set_err(err, "field '%s' must be a string, not %s", f->name, json_kind(val));
                goto fail;
            }
            v[i].s = json_string_value(val);
            break;
        case FIELD_UINT:
            if (!json_is_integer(val)) {
                set_err(err, "field '%s' must be an integer, not %s", f->name, json_kind(val));
                goto fail;
            }
            n = json_integer_value(val);
            if (n < 0 || (uint64_t)n < f->min || (uint64_t)n > f->max) {
                set_err(err, "field '%s' must be in %" PRIu64 "..%" PRIu64 " (got %lld)", f->name,
                        f->min, f->max, (long long)n);
                goto fail;
            }
            v[i].u = (uint64_t)n;
            break;
        case FIELD_BOOL:
            if (!json_is_boolean(val)) {
                set_err(err, "field '%s' must be true or false, not %s", f->name, json_kind(val));
                goto fail;
            }
            v[i].u = json_is_true(val);
            break;
        }
        v[i].present = true;
    }
    *doc = root;
    return 0;
fail:
    json_decref(root);
    return -EINVAL;
}

/* ---- PUT /v1/vm/state ---- */

/* One state action: its name in the API and the op it calls (-ENOSYS when the VMM lacks it). */
struct action {
    const char *name;
    int (*call)(const struct control_ops *ops, void *vm, const struct control_state_req *req);
};

static int act_pause(const struct control_ops *ops, void *vm, const struct control_state_req *q)
{
    return ops->pause ? ops->pause(vm) : -ENOSYS;
}

static int act_resume(const struct control_ops *ops, void *vm, const struct control_state_req *q)
{
    return ops->resume ? ops->resume(vm) : -ENOSYS;
}

static int act_shutdown(const struct control_ops *ops, void *vm, const struct control_state_req *q)
{
    return ops->shutdown ? ops->shutdown(vm, q->timeout_s) : -ENOSYS;
}

static int act_stop(const struct control_ops *ops, void *vm, const struct control_state_req *q)
{
    return ops->stop ? ops->stop(vm) : -ENOSYS;
}

static int act_reset(const struct control_ops *ops, void *vm, const struct control_state_req *q)
{
    return ops->reset ? ops->reset(vm) : -ENOSYS;
}

static const struct action actions[CONTROL_ACTION_COUNT] = {
    [CONTROL_ACTION_PAUSE] = {"pause", act_pause},
    [CONTROL_ACTION_RESUME] = {"resume", act_resume},
    [CONTROL_ACTION_SHUTDOWN] = {"shutdown", act_shutdown},
    [CONTROL_ACTION_STOP] = {"stop", act_stop},
    [CONTROL_ACTION_RESET] = {"reset", act_reset},
};

#define ACTION_NAMES "pause, resume, shutdown, stop, reset"

const char *control_action_name(enum control_action a)
{
    return (unsigned)a < CONTROL_ACTION_COUNT ? actions[a].name : NULL;
}

enum { STATE_ACTION, STATE_TIMEOUT };
static const struct field state_fields[] = {
    [STATE_ACTION] = {"action", FIELD_STRING, 0, 0},
    [STATE_TIMEOUT] = {"timeout_s", FIELD_UINT, 1, CONTROL_SHUTDOWN_TIMEOUT_MAX},
};
static const struct schema state_schema = {
    state_fields,
    sizeof(state_fields) / sizeof(state_fields[0]),
    "action, timeout_s",
    "{\"action\": \"pause\"}",
};

int control_parse_state(const char *body, size_t len, struct control_state_req *out, char *err)
{
    struct field_value v[CONTROL_FIELDS_MAX];
    char q[CONTROL_QUOTE_LEN];
    json_t *doc;
    int ret;

    ret = schema_parse(&state_schema, body, len, &doc, v, err);
    if (ret)
        return ret;
    ret = -EINVAL;
    if (!v[STATE_ACTION].present) {
        set_err(err, "missing field 'action' (one of " ACTION_NAMES ")");
        goto out;
    }
    for (out->action = 0; out->action < CONTROL_ACTION_COUNT; out->action++) {
        if (!strcmp(v[STATE_ACTION].s, actions[out->action].name))
            break;
    }
    if (out->action == CONTROL_ACTION_COUNT) {
        set_err(err, "field 'action' must be one of " ACTION_NAMES " (got '%s')",
                quote(v[STATE_ACTION].s, q));
        goto out;
    }
    if (v[STATE_TIMEOUT].present && out->action != CONTROL_ACTION_SHUTDOWN) {
        set_err(err, "field 'timeout_s' applies only to action 'shutdown', not '%s'",
                actions[out->action].name);
        goto out;
    }
    out->timeout_s =
        v[STATE_TIMEOUT].present ? (unsigned)v[STATE_TIMEOUT].u : CONTROL_SHUTDOWN_TIMEOUT_DEFAULT;
    ret = 0;
out:
    json_decref(doc);
    return ret;
}

static void put_state(const struct control_ops *ops, void *vm, const char *body, size_t len,
                      struct control_response *r)
{
    struct control_state_req req;
    char err[CONTROL_ERR_LEN];
    int ret;

    ret = control_parse_state(body, len, &req, err);
    if (ret) {
        reply_error(r, ret == -ENOMEM ? 500 : 400, "%s", err);
        return;
    }
    log_info("api: %s", actions[req.action].name);
    ret = actions[req.action].call(ops, vm, &req);
    if (ret < 0)
        reply_op_error(r, ops, vm, actions[req.action].name, NULL, NULL, ret);
    else
        reply_empty(r);
}

/* ---- PUT /v1/vm/balloon ---- */

enum { BALLOON_BYTES, BALLOON_MIB };
static const struct field balloon_fields[] = {
    [BALLOON_BYTES] = {"target_bytes", FIELD_UINT, 0, CONTROL_BALLOON_MAX},
    [BALLOON_MIB] = {"target_mib", FIELD_UINT, 0, CONTROL_BALLOON_MAX >> 20},
};
static const struct schema balloon_schema = {
    balloon_fields,
    sizeof(balloon_fields) / sizeof(balloon_fields[0]),
    "target_bytes, target_mib",
    "{\"target_mib\": 512}",
};

int control_parse_balloon(const char *body, size_t len, uint64_t *target_bytes, char *err)
{
    struct field_value v[CONTROL_FIELDS_MAX];
    json_t *doc;
    int ret;

    ret = schema_parse(&balloon_schema, body, len, &doc, v, err);
    if (ret)
        return ret;
    json_decref(doc);
    if (v[BALLOON_BYTES].present && v[BALLOON_MIB].present) {
        set_err(err, "give one of 'target_bytes' and 'target_mib', not both");
        return -EINVAL;
    }
    if (v[BALLOON_MIB].present) {
        *target_bytes = v[BALLOON_MIB].u << 20;
        return 0;
    }
    if (!v[BALLOON_BYTES].present) {
        set_err(err, "missing field 'target_bytes' (or 'target_mib')");
        return -EINVAL;
    }
    if (v[BALLOON_BYTES].u % CONTROL_BALLOON_PAGE) {
        set_err(err,
                "field 'target_bytes' must be a multiple of %llu, the balloon's page size "
                "(got %" PRIu64 ")",
                CONTROL_BALLOON_PAGE, v[BALLOON_BYTES].u);
        return -EINVAL;
    }
    *target_bytes = v[BALLOON_BYTES].u;
    return 0;
}

static void put_balloon(const struct control_ops *ops, void *vm, const char *body, size_t len,
                        struct control_response *r)
{
    char err[CONTROL_ERR_LEN];
    uint64_t target;
    int ret;

    ret = control_parse_balloon(body, len, &target, err);
    if (ret) {
        reply_error(r, ret == -ENOMEM ? 500 : 400, "%s", err);
        return;
    }
    log_info("api: balloon target %" PRIu64 " bytes", target);
    ret = ops->balloon_set ? ops->balloon_set(vm, target) : -ENOSYS;
    if (ret < 0)
        reply_op_error(r, ops, vm, "balloon", "balloon", "is the target above the guest's RAM?",
                       ret);
    else
        reply_empty(r);
}

/* ---- PUT /v1/vm/snapshot, PUT and DELETE /v1/vm/migrate ---- */

/* An op that failed with its own message: the status from its errno, the message as given. */
static void reply_op_message(struct control_response *r, const char *what, int ret, const char *msg)
{
    int status = ret == -EBUSY || ret == -EALREADY || ret == -EEXIST ? 409
                 : ret == -EINVAL                                    ? 400
                 : ret == -ENOSYS                                    ? 501
                                                                     : 500;

    reply_error(r, status, "%s: %s", what, msg[0] ? msg : "failed");
}

enum { SNAP_FILE };
static const struct field snapshot_fields[] = {
    [SNAP_FILE] = {"file", FIELD_STRING, 0, 0},
};
static const struct schema snapshot_schema = {
    snapshot_fields,
    sizeof(snapshot_fields) / sizeof(snapshot_fields[0]),
    "file",
    "{\"file\": \"/var/lib/tessera/vm1.tsr\"}",
};

/* PUT /v1/vm/snapshot and /v1/vm/snapshot-delete: {"file": ...} for an op that answers with
 * JSON. `what` names the op in replies, `file_is` says what the file is for. */
static void put_file_op(int (*op)(void *vm, const char *file, json_t **out, char *err), void *vm,
                        const char *body, size_t len, const char *what, const char *file_is,
                        struct control_response *r)
{
    struct field_value v[CONTROL_FIELDS_MAX];
    char err[CONTROL_ERR_LEN] = "";
    json_t *doc, *out = NULL;
    int ret;

    ret = schema_parse(&snapshot_schema, body, len, &doc, v, err);
    if (ret) {
        reply_error(r, ret == -ENOMEM ? 500 : 400, "%s", err);
        return;
    }
    if (!v[SNAP_FILE].present || !v[SNAP_FILE].s[0]) {
        reply_error(r, 400, "missing field 'file' (%s)", file_is);
        goto out;
    }
    log_info("api: %s %s", what, v[SNAP_FILE].s);
    ret = op ? op(vm, v[SNAP_FILE].s, &out, err) : -ENOSYS;
    if (ret < 0) {
        reply_op_message(r, what, ret, err);
    } else {
        reply_json(r, what, out);
        if (ret == CONTROL_STARTED && r->status == 200)
            r->status = 202; /* it goes on: GET /v1/vm/snapshot follows it */
    }
out:
    json_decref(doc);
}

static void put_snapshot(const struct control_ops *ops, void *vm, const char *body, size_t len,
                         struct control_response *r)
{
    put_file_op(ops->snapshot, vm, body, len, "snapshot", "where to write the snapshot", r);
}

static void put_snapshot_delete(const struct control_ops *ops, void *vm, const char *body,
                                size_t len, struct control_response *r)
{
    put_file_op(ops->snapshot_delete, vm, body, len, "snapshot-delete", "the snapshot to delete",
                r);
}

enum {
    MIG_URI,
    MIG_MODE,
    MIG_DOWNTIME,
    MIG_COPY_DISKS,
    MIG_TIMEOUT,
    MIG_TLS_CERT,
    MIG_TLS_KEY,
    MIG_TLS_CA
};
static const struct field migrate_fields[] = {
    [MIG_URI] = {"uri", FIELD_STRING, 0, 0},
    [MIG_MODE] = {"mode", FIELD_STRING, 0, 0},
    [MIG_DOWNTIME] = {"downtime_ms", FIELD_UINT, 1, CONTROL_DOWNTIME_MAX_MS},
    [MIG_COPY_DISKS] = {"copy_disks", FIELD_BOOL, 0, 0},
    [MIG_TIMEOUT] = {"progress_timeout_s", FIELD_UINT, 1, CONTROL_MIGRATE_TIMEOUT_MAX},
    [MIG_TLS_CERT] = {"tls_cert", FIELD_STRING, 0, 0},
    [MIG_TLS_KEY] = {"tls_key", FIELD_STRING, 0, 0},
    [MIG_TLS_CA] = {"tls_ca", FIELD_STRING, 0, 0},
};
static const struct schema migrate_schema = {
    migrate_fields,
    sizeof(migrate_fields) / sizeof(migrate_fields[0]),
    "uri, mode, downtime_ms, copy_disks, progress_timeout_s, tls_cert, tls_key, tls_ca",
    "{\"uri\": \"tcp:10.0.0.2:4444\", \"mode\": \"live\"}",
};

static void put_migrate(const struct control_ops *ops, void *vm, const char *body, size_t len,
                        struct control_response *r)
{
    struct field_value v[CONTROL_FIELDS_MAX];
    char err[CONTROL_ERR_LEN] = "";
    struct control_migrate_req req;
    json_t *doc;
    int ret;

    ret = schema_parse(&migrate_schema, body, len, &doc, v, err);
    if (ret) {
        reply_error(r, ret == -ENOMEM ? 500 : 400, "%s", err);
        return;
    }
    req = (struct control_migrate_req){
        .uri = v[MIG_URI].s,
        .mode = v[MIG_MODE].present ? v[MIG_MODE].s : "live",
        .downtime_ms = v[MIG_DOWNTIME].present ? (unsigned)v[MIG_DOWNTIME].u : 300,
        .copy_disks = v[MIG_COPY_DISKS].u != 0,
        .progress_timeout_s =
            v[MIG_TIMEOUT].present ? (unsigned)v[MIG_TIMEOUT].u : CONTROL_MIGRATE_TIMEOUT_DEFAULT,
        .tls_cert = v[MIG_TLS_CERT].present ? v[MIG_TLS_CERT].s : NULL,
        .tls_key = v[MIG_TLS_KEY].present ? v[MIG_TLS_KEY].s : NULL,
        .tls_ca = v[MIG_TLS_CA].present ? v[MIG_TLS_CA].s : NULL,
    };
    if (!v[MIG_URI].present) {
        reply_error(r, 400,
                    "missing field 'uri' (tcp:HOST:PORT or tls:HOST:PORT of `tessera run "
                    "--incoming`)");
    } else if (strcmp(req.mode, "live") && strcmp(req.mode, "suspend") &&
               strcmp(req.mode, "cold")) {
        reply_error(r, 400, "field 'mode' must be one of live, suspend, cold");
    } else {
        log_info("api: migrate %s to %s", req.mode, req.uri);
        ret = ops->migrate ? ops->migrate(vm, &req, err) : -ENOSYS;
        if (ret < 0)
            reply_op_message(r, "migrate", ret, err);
        else
            reply_empty(r);
    }
    json_decref(doc);
}

/* DELETE /v1/vm/migrate: cancel. */
static void delete_migrate(const struct control_ops *ops, void *vm, const char *body, size_t len,
                           struct control_response *r)
{
    char err[CONTROL_ERR_LEN] = "";
    int ret;

    if (len) {
        reply_error(r, 400, "DELETE /v1/vm/migrate takes no request body");
        return;
    }
    log_info("api: migrate cancel");
    ret = ops->migrate_cancel ? ops->migrate_cancel(vm, err) : -ENOSYS;
    if (ret < 0)
        reply_op_message(r, "migrate-cancel", ret, err);
    else
        reply_empty(r);
}

/* ---- PUT /v1/vm/{disks,nics}/{index}/limits ---- */

#define LIMITS_INDEX_MAX 64 /* far beyond the slots of any machine */

/* Matches "/v1/vm/disks/N/limits" and "/v1/vm/nics/N/limits" (N: decimal without leading
 * zeros). 1 with the device type and index, 0 for any other path. */
static int limits_path(const char *path, const char **type, unsigned *index)
{
    static const struct {
        const char *prefix, *type;
    } kinds[] = {{"/v1/vm/disks/", "disk"}, {"/v1/vm/nics/", "net"}};

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t plen = strlen(kinds[k].prefix);
        const char *p = path + plen;
        unsigned v = 0;
        size_t digits = 0;

        if (strncmp(path, kinds[k].prefix, plen))
            continue;
        while (p[digits] >= '0' && p[digits] <= '9' && digits < 3)
            v = v * 10 + (unsigned)(p[digits++] - '0');
        if (!digits || (digits > 1 && p[0] == '0') || strcmp(p + digits, "/limits") ||
            v >= LIMITS_INDEX_MAX)
            return 0;
        *type = kinds[k].type;
        *index = v;
        return 1;
    }
    return 0;
}

static void put_limits(const struct control_ops *ops, void *vm, const char *type, unsigned index,
                       const char *body, size_t len, struct control_response *r)
{
    char err[CONTROL_ERR_LEN] = "", q[CONTROL_QUOTE_LEN];
    json_t *doc, *val, *out = NULL;
    json_error_t jerr;
    const char *key;
    int ret;

    if (!len) {
        reply_error(r, 400,
                    "empty request body (expected a JSON object such as {\"%s\": "
                    "10485760})",
                    strcmp(type, "disk") ? "tx_bps" : "bps");
        return;
    }
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        reply_error(r, 400, "request body is not valid JSON: %s (at byte %d)", quote(jerr.text, q),
                    jerr.position);
        return;
    }
    if (!json_is_object(doc)) {
        reply_error(r, 400, "request body must be a JSON object, not %s", json_kind(doc));
        goto free_doc;
    }
    json_object_foreach(doc, key, val)
    {
        if (!json_is_null(val) && !json_is_string(val) &&
            !(json_is_integer(val) && json_integer_value(val) >= 0)) {
            reply_error(r, 400,
                        "field '%s' must be an integer >= 0, a string such as \"10M\" or "
                        "null, not %s",
                        quote(key, q), json_kind(val));
            goto free_doc;
        }
    }
    log_info("api: %s %u limits", type, index);
    ret = ops->limits_set ? ops->limits_set(vm, type, index, doc, &out, err) : -ENOSYS;
    if (ret == -ENODEV)
        reply_error(r, 404, "limits: %s", err[0] ? err : "no such device");
    else if (ret < 0)
        reply_op_message(r, "limits", ret, err);
    else
        reply_json(r, "limits", out);
free_doc:
    json_decref(doc);
}

/* ---- GET routes: an op that hands back a JSON document ---- */

static int get_describe(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->describe ? ops->describe(vm, out) : -ENOSYS;
}

static int get_balloon(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->balloon_get ? ops->balloon_get(vm, out) : -ENOSYS;
}

static int get_stats(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->stats ? ops->stats(vm, out) : -ENOSYS;
}

static int get_migrate(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->migrate_status ? ops->migrate_status(vm, out) : -ENOSYS;
}

static int get_snapshot_status(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->snapshot_status ? ops->snapshot_status(vm, out) : -ENOSYS;
}

static int get_snapshots(const struct control_ops *ops, void *vm, json_t **out)
{
    return ops->snapshots ? ops->snapshots(vm, out) : -ENOSYS;
}

/* ---- The route table ---- */

/* One method on one path. Exactly one of get (no request body; its JSON is the 200 body) and
 * put (takes the body, makes the response) is set. what names the action in error messages;
 * device is the device the route needs, for the "no such device" message. */
struct route {
    const char *method;
    const char *path;
    const char *what;
    const char *device;
    int (*get)(const struct control_ops *ops, void *vm, json_t **out);
    void (*put)(const struct control_ops *ops, void *vm, const char *body, size_t len,
                struct control_response *r);
};

static const struct route routes[] = {
    {"GET", "/v1/vm", "describe", NULL, get_describe, NULL},
    {"PUT", "/v1/vm/state", "state", NULL, NULL, put_state},
    {"GET", "/v1/vm/balloon", "balloon", "balloon", get_balloon, NULL},
    {"PUT", "/v1/vm/balloon", "balloon", "balloon", NULL, put_balloon},
    {"GET", "/v1/vm/stats", "stats", NULL, get_stats, NULL},
    {"PUT", "/v1/vm/snapshot", "snapshot", NULL, NULL, put_snapshot},
    {"GET", "/v1/vm/snapshot", "snapshot", NULL, get_snapshot_status, NULL},
    {"GET", "/v1/vm/snapshots", "snapshots", NULL, get_snapshots, NULL},
    {"PUT", "/v1/vm/snapshot-delete", "snapshot-delete", NULL, NULL, put_snapshot_delete},
    {"PUT", "/v1/vm/migrate", "migrate", NULL, NULL, put_migrate},
    {"GET", "/v1/vm/migrate", "migrate", NULL, get_migrate, NULL},
    {"DELETE", "/v1/vm/migrate", "migrate-cancel", NULL, NULL, delete_migrate},
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* PUT /v1/vm/disks/{index}/limits and /v1/vm/nics/{index}/limits: one route for every index
 * (limits_path() matches the path; control_handle() calls put_limits() with what it found). */
static const struct route limits_route = {
    "PUT", "/v1/vm/{disks,nics}/{index}/limits", "limits", NULL, NULL, NULL};

static bool route_takes_body(const struct route *rt)
{
    return rt->put || rt == &limits_route;
}

/* Finds method on path. Returns 0 and *out; -ENOENT when no route has the path; or -EPERM
 * when the path exists but not with this method, with the methods it takes in allow. */
static int route_find(const char *method, const char *path, const struct route **out,
                      char allow[CONTROL_ALLOW_LEN])
{
    bool known = false;
    const char *type;
    unsigned index;
    size_t i;

    allow[0] = '\0';
    if (limits_path(path, &type, &index)) {
        if (!strcmp(method, limits_route.method)) {
            *out = &limits_route;
            return 0;
        }
        snprintf(allow, CONTROL_ALLOW_LEN, "%s", limits_route.method);
        return -EPERM;
    }
    for (i = 0; i < ROUTE_COUNT; i++) {
        if (strcmp(path, routes[i].path))
            continue;
        if (!strcmp(method, routes[i].method)) {
            *out = &routes[i];
            return 0;
        }
        if (known)
            strncat(allow, ", ", CONTROL_ALLOW_LEN - strlen(allow) - 1);
        strncat(allow, routes[i].method, CONTROL_ALLOW_LEN - strlen(allow) - 1);
        known = true;
    }
    return known ? -EPERM : -ENOENT;
}

static void reply_route_error(struct control_response *r, int ret, const char *method,
                              const char *path)
{
    char qm[CONTROL_QUOTE_LEN], qp[CONTROL_QUOTE_LEN];

    if (ret == -EPERM)
        reply_error(r, 405, "%s %s: method not allowed (use %s)", quote(method, qm),
                    quote(path, qp), r->allow);
    else
        reply_error(r, 404, "no such path '%s' (see docs/api.md)", quote(path, qp));
}

void control_handle(const struct control_ops *ops, void *vm, const char *method, const char *path,
                    const char *body, size_t len, struct control_response *r)
{
    const struct route *rt;
    const char *type;
    unsigned index;
    json_t *doc = NULL;
    int ret;

    memset(r, 0, sizeof(*r));
    ret = route_find(method, path, &rt, r->allow);
    if (ret) {
        reply_route_error(r, ret, method, path);
        return;
    }
    if (len > CONTROL_BODY_MAX) {
        reply_error(r, 413, "request body is %zu bytes; the limit is %u", len, CONTROL_BODY_MAX);
        return;
    }
    if (rt == &limits_route && limits_path(path, &type, &index)) {
        put_limits(ops, vm, type, index, body, len, r);
        return;
    }
    if (rt->put) {
        rt->put(ops, vm, body, len, r);
        return;
    }
    if (len) {
        reply_error(r, 400, "%s %s takes no request body", rt->method, rt->path);
        return;
    }
    ret = rt->get(ops, vm, &doc);
    if (ret < 0) {
        json_decref(doc); /* an op that failed half-way may have left one */
        reply_op_error(r, ops, vm, rt->what, rt->device, NULL, ret);
    } else {
        reply_json(r, rt->what, doc);
    }
}

/* ---- The socket ---- */

/* One accepted connection, from accept() until libmicrohttpd reports it closed. */
struct control_conn {
    struct control_conn *next;
    int fd;               /* owned by libmicrohttpd once handed over, by the acceptor before */
    pid_t pid;            /* the client: SO_PEERCRED's pid, 0 when unknown */
    uint64_t deadline_ns; /* a whole request must have arrived by then; UINT64_MAX: answering */
    bool cut;             /* shut down for being late; libmicrohttpd closes it */
};

struct control {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock; /* held around control_handle(): ops never run concurrently */
    const struct control_ops *ops;
    void *vm;
    char *path;
    dev_t dev; /* the socket file we made: control_stop() removes only that one */
    ino_t ino;
    int listen_fd;
    int wake[2]; /* pipe: a connection closed, or control_stop(); wakes the acceptor */
    pthread_t acceptor;
    bool acceptor_running;
    /* conn_lock guards what follows. Taken by the acceptor and by libmicrohttpd's callbacks
     * on the API thread, never around a call into libmicrohttpd or an op. */
    pthread_mutex_t conn_lock;
    struct control_conn *conns;  /* handed to libmicrohttpd */
    struct control_conn *parked; /* accepted, waiting for a slot of their client (or any) */
    unsigned nconns, nparked;
    bool stopping;
};

/* Makes sure nothing but a stale socket is at path, removing that. Returns 0 or -errno. */
static int socket_clear(const char *path, const struct sockaddr_un *sa, char *err)
{
    struct stat st;
    int fd, ret;

    if (lstat(path, &st)) {
        if (errno == ENOENT)
            return 0;
        ret = -errno;
        set_err(err, "%s: %s", path, strerror(errno));
        return ret;
    }
    if (!S_ISSOCK(st.st_mode)) {
        set_err(err,
                "%s: exists and is not a socket; refusing to replace it (remove it or "
                "choose another --api-sock path)",
                path);
        return -EEXIST;
    }
    /* A socket: live if something accepts (or queues) a connection, stale if refused. The
     * probe is non-blocking so a live server with a full backlog cannot stall us. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: socket: %s", path, strerror(errno));
        return ret;
    }
    ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
    close(fd);
    if (ret == 0 || ret == -EAGAIN || ret == -EINPROGRESS) {
        set_err(err,
                "%s: another process is serving on this socket (is this VM already "
                "running?)",
                path);
        return -EADDRINUSE;
    }
    if (ret != -ECONNREFUSED) {
        set_err(err, "%s: cannot tell whether the socket is in use: %s", path, strerror(-ret));
        return ret;
    }
    if (unlink(path) && errno != ENOENT) {
        ret = -errno;
        set_err(err, "%s: cannot remove the stale socket: %s", path, strerror(errno));
        return ret;
    }
    return 0;
}

/* Creates the listening socket at path, mode 0600. Returns the fd or -errno. */
static int socket_listen(struct control *c, const char *path, char *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, ret;

    if (!*path) {
        set_err(err, "the API socket path is empty");
        return -EINVAL;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        set_err(err, "%s: a unix socket path must be shorter than %zu bytes", path,
                sizeof(sa.sun_path));
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ret = socket_clear(path, &sa, err);
    if (ret)
        return ret;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: socket: %s", path, strerror(errno));
        return ret;
    }
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
        ret = -errno;
        set_err(err, "%s: bind: %s", path, strerror(errno));
        goto close_fd;
    }
    /* Before listen(): until then every connect() is refused, so nobody gets in through the
     * umask's wider mode. Whoever can connect can stop the VM. */
    if (chmod(path, 0600) || lstat(path, &st)) {
        ret = -errno;
        set_err(err, "%s: chmod: %s", path, strerror(errno));
        goto unlink_path;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    if (listen(fd, CONTROL_CONN_TOTAL)) {
        ret = -errno;
        set_err(err, "%s: listen: %s", path, strerror(errno));
        goto unlink_path;
    }
    return fd;
unlink_path:
    unlink(path);
close_fd:
    close(fd);
    return ret;
}

/* ---- libmicrohttpd glue (all callbacks run on the API thread) ---- */

/* One request being received. Made by mhd_uri() when the request line arrives; libmicrohttpd
 * hands it to mhd_request() as *con_cls and to mhd_completed(), which frees it. */
struct control_req {
    char *body;
    size_t len, cap;
    const char *uri; /* the request target as mhd_uri() saw it (libmicrohttpd's buffer) */
    size_t uri_len;  /* its length up to the first NUL */
    bool started;    /* mhd_request() has seen the headers */
    bool too_big;    /* more than CONTROL_BODY_MAX arrived (chunked): answer 413 at the end */
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("api: %s", line);
}

/* Paths are matched exactly as sent: "%2F" or "%00" is never decoded into something a route
 * matches, and query strings are refused before anyone reads them. */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    return strlen(s);
}

/* MHD_OPTION_URI_LOG_CALLBACK: runs once per request, on the raw request target before
 * libmicrohttpd cuts off a query string. Its result becomes the request's *con_cls. */
static void *mhd_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct control_req *req = calloc(1, sizeof(*req));

    if (req) {
        req->uri = uri;
        req->uri_len = strlen(uri);
    }
    return req;
}

/* Whether the request target held a NUL byte, which ends the C string libmicrohttpd hands
 * us: "/v1/vm\0/anything" would be served as "/v1/vm". libmicrohttpd (0.9.75) parses the
 * request line in place, so the target runs from url up to the NUL it wrote over the space
 * before the version; a target that ends earlier than that had a NUL of its own. When the
 * two are not laid out that way nothing can be told, and nothing is refused. */
static bool uri_has_nul(const struct control_req *req, const char *url, const char *version)
{
    uintptr_t u = (uintptr_t)url, v = (uintptr_t)version;

    if (req->uri != url || !*version || v <= u || version[-1] != '\0')
        return false;
    return req->uri_len < v - 1 - u;
}

static enum MHD_Result mhd_send(struct MHD_Connection *conn, struct control_response *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        control_response_free(r);
        return MHD_NO;
    }
    r->body = NULL; /* the response owns it now */
    if (r->len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (r->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* MHD_KeyValueIterator: keeps the first key, quoted, in cls (CONTROL_QUOTE_LEN bytes). */
static enum MHD_Result first_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    char *first = cls;

    if (!*first)
        quote(key, first);
    return MHD_YES;
}

/* Checks made on the headers alone, before any body is read. Returns true when r holds the
 * answer to send at once. */
static bool check_headers(struct MHD_Connection *conn, const struct control_req *req,
                          const char *url, const char *method, const char *version,
                          struct control_response *r)
{
    char q[CONTROL_QUOTE_LEN], first[CONTROL_QUOTE_LEN] = "";
    const char *ctype, *clen, *te, *ce;
    const struct route *rt;
    unsigned long long n;
    char *end;
    int ret;

    if (uri_has_nul(req, url, version)) {
        reply_error(r, 400, "the request path '%s' is followed by a NUL byte (paths are text)",
                    quote(url, q));
        return true;
    }
    /* RFC 9112 §6.1: a transfer coding the server does not understand is a 501; the body
     * would otherwise be read until the client closes. Only "chunked" frames a request body
     * here ("identity" is gone from HTTP/1.1 and would be read the same way). */
    te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && strcasecmp(te, "chunked")) {
        reply_error(r, 501,
                    "Transfer-Encoding '%s' is not supported (send the body with "
                    "Content-Length, or chunked)",
                    quote(te, q));
        return true;
    }
    ret = route_find(method, url, &rt, r->allow);
    if (ret) {
        reply_route_error(r, ret, method, url);
        return true;
    }
    if (MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, first_arg, first) > 0) {
        reply_error(r, 400, "%s: query parameters are not supported (got '%s')", rt->path, first);
        return true;
    }
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen) {
        errno = 0;
        n = strtoull(clen, &end, 10);
        if (!errno && end != clen && n > CONTROL_BODY_MAX) {
            reply_error(r, 413, "request body is %llu bytes; the limit is %u", n, CONTROL_BODY_MAX);
            return true;
        }
        if (!errno && end != clen && n && !route_takes_body(rt)) {
            reply_error(r, 400, "%s %s takes no request body", rt->method, rt->path);
            return true;
        }
    }
    /* RFC 9110 §15.5.16: a content coding the server does not accept is a 415. */
    ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (route_takes_body(rt) && ce && strcasecmp(ce, "identity")) {
        reply_error(r, 415, "Content-Encoding '%s' is not supported (send the JSON uncompressed)",
                    quote(ce, q));
        return true;
    }
    ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (route_takes_body(rt) && ctype &&
        (strncasecmp(ctype, "application/json", 16) ||
         (ctype[16] && ctype[16] != ';' && ctype[16] != ' ' && ctype[16] != '\t'))) {
        reply_error(r, 415, "Content-Type must be application/json (got '%s')", quote(ctype, q));
        return true;
    }
    return false;
}

/* Sets the deadline of conn's connection: none while its request is being answered (an op
 * may take long), CONTROL_REQUEST_TIMEOUT_S from now otherwise (to read the answer, or to
 * send the next request on a kept-alive connection). */
static void conn_set_busy(struct control *c, struct MHD_Connection *conn, bool busy)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct control_conn *cc = info ? info->socket_context : NULL;

    if (!cc)
        return;
    pthread_mutex_lock(&c->conn_lock);
    cc->deadline_ns =
        busy ? UINT64_MAX : time_now_ns() + (uint64_t)CONTROL_REQUEST_TIMEOUT_S * 1000000000ull;
    pthread_mutex_unlock(&c->conn_lock);
}

static enum MHD_Result mhd_answer(struct control *c, struct MHD_Connection *conn,
                                  struct control_response *r)
{
    enum MHD_Result ret = mhd_send(conn, r);

    conn_set_busy(c, conn, false);
    return ret;
}

static enum MHD_Result mhd_request(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct control *c = cls;
    struct control_req *req = *con_cls;
    struct control_response r = {0};

    if (!req)
        return MHD_NO; /* mhd_uri() ran out of memory: close the connection */
    if (!req->started) {
        req->started = true;
        if (check_headers(conn, req, url, method, version, &r)) {
            conn_set_busy(c, conn, true);
            return mhd_answer(c, conn, &r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (req->too_big || n > CONTROL_BODY_MAX - req->len) {
            /* Chunked, so not caught by Content-Length: drop the rest and answer at the end. */
            req->too_big = true;
            free(req->body);
            req->body = NULL;
            req->len = req->cap = 0;
            return MHD_YES;
        }
        if (req->len + n > req->cap) {
            size_t cap = req->cap ? req->cap : 1024;
            char *p;

            while (cap < req->len + n)
                cap *= 2;
            if (cap > CONTROL_BODY_MAX)
                cap = CONTROL_BODY_MAX;
            p = realloc(req->body, cap);
            if (!p)
                return MHD_NO;
            req->body = p;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        return MHD_YES;
    }
    conn_set_busy(c, conn, true);
    if (req->too_big) {
        reply_error(&r, 413, "request body is larger than the limit of %u bytes", CONTROL_BODY_MAX);
        return mhd_answer(c, conn, &r);
    }
    pthread_mutex_lock(&c->lock);
    control_handle(c->ops, c->vm, method, url, req->body, req->len, &r);
    pthread_mutex_unlock(&c->lock);
    return mhd_answer(c, conn, &r);
}

static void mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct control_req *req = *con_cls;

    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
    conn_set_busy(cls, conn, false);
}

/* ---- Connections: per-client slots and request deadlines (the acceptor thread) ---- */

static void conn_wake(struct control *c)
{
    char b = 0;

    /* A full pipe already holds a wake-up; nothing is lost when this write fails. */
    if (write(c->wake[1], &b, 1) < 0)
        return;
}

/* MHD_OPTION_NOTIFY_CONNECTION: ties a connection libmicrohttpd starts to its record, and
 * drops the record when it closes (before libmicrohttpd closes the fd, so the acceptor never
 * shuts down an fd that has been reused). */
static void mhd_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct control *c = cls;
    struct control_conn **pp, *cc = *socket_context;

    pthread_mutex_lock(&c->conn_lock);
    for (pp = &c->conns; *pp; pp = &(*pp)->next) {
        if (cc ? *pp == cc : info && (*pp)->fd == info->connect_fd)
            break;
    }
    if (*pp && code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = *pp;
    } else if (*pp && code == MHD_CONNECTION_NOTIFY_CLOSED) {
        cc = *pp;
        *pp = cc->next;
        c->nconns--;
        free(cc);
        *socket_context = NULL;
        conn_wake(c);
    }
    pthread_mutex_unlock(&c->conn_lock);
}

/* The number of connections of pid served now. Caller holds conn_lock. */
static unsigned conn_count_pid(const struct control *c, pid_t pid)
{
    unsigned n = 0;

    for (const struct control_conn *cc = c->conns; cc; cc = cc->next)
        n += cc->pid == pid;
    return n;
}

/* Whether cc may be served now: a slot is free, overall and for its client. Caller holds
 * conn_lock. A client whose identity is unknown (pid 0) shares one set of slots. */
static bool conn_may_start(const struct control *c, const struct control_conn *cc)
{
    return c->nconns < CONTROL_CONN_TOTAL && conn_count_pid(c, cc->pid) < CONTROL_CONN_MAX;
}

/* Gives cc (already in c->conns) to libmicrohttpd. Called without conn_lock: libmicrohttpd
 * may call mhd_connection() before it returns. On failure it has closed the fd. */
static void conn_hand_over(struct control *c, struct control_conn *cc)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct control_conn **pp;
    int fd = cc->fd;

    if (MHD_add_connection(c->mhd, fd, (struct sockaddr *)&sa, sizeof(sa.sun_family)) == MHD_YES)
        return;
    /* Unless mhd_connection() already dropped it. */
    pthread_mutex_lock(&c->conn_lock);
    for (pp = &c->conns; *pp; pp = &(*pp)->next) {
        if (*pp == cc) {
            *pp = cc->next;
            c->nconns--;
            free(cc);
            break;
        }
    }
    pthread_mutex_unlock(&c->conn_lock);
}

/* Accepts one connection: serves it at once when its client has a slot, else parks it. */
static void conn_accept(struct control *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct control_conn *cc;
    bool start;
    int fd;

    fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return; /* EAGAIN (the client gave up), EMFILE: the backlog keeps the rest */
    cc = calloc(1, sizeof(*cc));
    if (!cc) {
        close(fd);
        return;
    }
    cc->fd = fd;
    if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && len == sizeof(cred))
        cc->pid = cred.pid;
    cc->deadline_ns = time_now_ns() + (uint64_t)CONTROL_REQUEST_TIMEOUT_S * 1000000000ull;
    pthread_mutex_lock(&c->conn_lock);
    start = conn_may_start(c, cc);
    if (start) {
        cc->next = c->conns;
        c->conns = cc;
        c->nconns++;
    } else {
        cc->next = c->parked;
        c->parked = cc;
        c->nparked++;
    }
    pthread_mutex_unlock(&c->conn_lock);
    if (start)
        conn_hand_over(c, cc);
}

/* Closes what is late, starts parked connections that have a slot now. Returns the time of
 * the next deadline (UINT64_MAX: none). */
static uint64_t conn_tend(struct control *c)
{
    struct control_conn **pp, *cc, *start;
    uint64_t now = time_now_ns(), next = UINT64_MAX;

    do {
        start = NULL;
        pthread_mutex_lock(&c->conn_lock);
        for (cc = c->conns; cc; cc = cc->next) {
            if (!cc->cut && cc->deadline_ns <= now) {
                /* libmicrohttpd sees the end of the stream and closes the connection. */
                log_info("api: closing a connection (pid %ld) that sent no whole request in "
                         "%d s",
                         (long)cc->pid, CONTROL_REQUEST_TIMEOUT_S);
                shutdown(cc->fd, SHUT_RDWR);
                cc->cut = true;
            } else if (!cc->cut && cc->deadline_ns < next) {
                next = cc->deadline_ns;
            }
        }
        for (pp = &c->parked; (cc = *pp);) {
            if (cc->deadline_ns <= now) {
                *pp = cc->next;
                c->nparked--;
                close(cc->fd);
                free(cc);
            } else if (!start && conn_may_start(c, cc)) {
                *pp = cc->next;
                c->nparked--;
                cc->next = c->conns;
                c->conns = cc;
                c->nconns++;
                start = cc;
            } else {
                if (cc->deadline_ns < next)
                    next = cc->deadline_ns;
                pp = &cc->next;
            }
        }
        pthread_mutex_unlock(&c->conn_lock);
        if (start)
            conn_hand_over(c, start);
    } while (start);
    return next;
}

static void *acceptor_main(void *opaque)
{
    struct control *c = opaque;
    struct pollfd pfd[2];
    uint64_t next, now;
    bool more;
    char buf[64];
    int ms;

    for (;;) {
        next = conn_tend(c);
        pthread_mutex_lock(&c->conn_lock);
        if (c->stopping) {
            pthread_mutex_unlock(&c->conn_lock);
            return NULL;
        }
        /* Beyond this many waiting, more wait in the listen backlog. */
        more = c->nparked < CONTROL_CONN_TOTAL;
        pthread_mutex_unlock(&c->conn_lock);
        now = time_now_ns();
        ms = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)((next - now) / 1000000u + 1);
        pfd[0] = (struct pollfd){c->wake[0], POLLIN, 0};
        pfd[1] = (struct pollfd){more ? c->listen_fd : -1, POLLIN, 0};
        if (poll(pfd, 2, ms) < 0)
            continue; /* EINTR */
        if (pfd[0].revents & POLLIN) {
            while (read(c->wake[0], buf, sizeof(buf)) > 0)
                ;
        }
        if (pfd[1].revents & POLLIN)
            conn_accept(c);
    }
}

int control_start(const char *sock_path, const struct control_ops *ops, void *vm,
                  struct control **out, char *err)
{
    struct control *c;
    int ret;

    c = calloc(1, sizeof(*c));
    if (!c) {
        set_err(err, "%s: out of memory", sock_path);
        return -ENOMEM;
    }
    c->ops = ops;
    c->vm = vm;
    c->listen_fd = c->wake[0] = c->wake[1] = -1;
    c->path = strdup(sock_path);
    if (!c->path) {
        set_err(err, "%s: out of memory", sock_path);
        ret = -ENOMEM;
        goto free_c;
    }
    ret = pthread_mutex_init(&c->lock, NULL);
    if (ret) {
        set_err(err, "%s: pthread_mutex_init: %s", sock_path, strerror(ret));
        ret = -ret;
        goto free_path;
    }
    ret = pthread_mutex_init(&c->conn_lock, NULL);
    if (ret) {
        set_err(err, "%s: pthread_mutex_init: %s", sock_path, strerror(ret));
        ret = -ret;
        goto destroy_lock;
    }
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK)) {
        ret = -errno;
        set_err(err, "%s: pipe: %s", sock_path, strerror(errno));
        goto destroy_conn_lock;
    }
    c->listen_fd = socket_listen(c, sock_path, err);
    if (c->listen_fd < 0) {
        ret = c->listen_fd;
        goto close_wake;
    }
    /* The acceptor owns the listening socket and hands each connection over with
     * MHD_add_connection() (MHD_USE_ITC wakes the API thread for it). */
    c->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, mhd_request, c, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, c,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONTROL_CONN_TOTAL,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONTROL_CONN_MEM, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONTROL_IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, mhd_completed, c,
        MHD_OPTION_NOTIFY_CONNECTION, mhd_connection, c, MHD_OPTION_URI_LOG_CALLBACK, mhd_uri, c,
        MHD_OPTION_UNESCAPE_CALLBACK, mhd_unescape_none, c, MHD_OPTION_END);
    if (!c->mhd) {
        set_err(err, "%s: cannot start the HTTP server (libmicrohttpd)", sock_path);
        ret = -EIO;
        goto close_listen;
    }
    ret = pthread_create(&c->acceptor, NULL, acceptor_main, c);
    if (ret) {
        set_err(err, "%s: cannot start the API's acceptor thread: %s", sock_path, strerror(ret));
        ret = -ret;
        MHD_stop_daemon(c->mhd);
        goto close_listen;
    }
    c->acceptor_running = true;
    *out = c;
    return 0;
close_listen:
    close(c->listen_fd);
    unlink(sock_path);
close_wake:
    close(c->wake[0]);
    close(c->wake[1]);
destroy_conn_lock:
    pthread_mutex_destroy(&c->conn_lock);
destroy_lock:
    pthread_mutex_destroy(&c->lock);
free_path:
    free(c->path);
free_c:
    free(c);
    return ret;
}

void control_stop(struct control *c)
{
    struct control_conn *cc;
    struct stat st;

    if (!c)
        return;
    /* Unlink first, so that a new client finds nothing rather than a closing server. */
    if (!hostfs_lstat(c->path, &st) && S_ISSOCK(st.st_mode) && st.st_dev == c->dev &&
        st.st_ino == c->ino)
        hostfs_unlink(c->path);
    pthread_mutex_lock(&c->conn_lock);
    c->stopping = true;
    conn_wake(c);
    pthread_mutex_unlock(&c->conn_lock);
    if (c->acceptor_running)
        pthread_join(c->acceptor, NULL);
    close(c->listen_fd);
    while ((cc = c->parked)) {
        c->parked = cc->next;
        close(cc->fd);
        free(cc);
    }
    /* Closes every handed-over connection; mhd_connection() frees their records. */
    MHD_stop_daemon(c->mhd);
    close(c->wake[0]);
    close(c->wake[1]);
    pthread_mutex_destroy(&c->conn_lock);
    pthread_mutex_destroy(&c->lock);
    free(c->path);
    free(c);
}
