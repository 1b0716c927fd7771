#include "hw/virtio/vdev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/ratelimit.h"

/* Filled by constructors before main(); read-only afterwards. */
static struct vdev_type *vdev_types;

void vdev_type_register(struct vdev_type *type)
{
    type->next = vdev_types;
    vdev_types = type;
}

const struct vdev_type *vdev_type_find(const char *name)
{
    for (const struct vdev_type *t = vdev_types; t; t = t->next) {
        if (!strcmp(t->name, name))
            return t;
    }
    return NULL;
}

const struct vdev_type *vdev_type_first(void)
{
    return vdev_types;
}

/* Calls fn for each "key[=value]" item of opts; stops when fn returns non-zero. */
static int opt_each(const char *opts, int (*fn)(const char *item, size_t len, void *ctx), void *ctx)
{
    const char *p = opts;

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int r = fn(p, len, ctx);

        if (r)
            return r;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

struct opt_find {
    const char *key;
    char *buf;
    size_t len;
    int found;
};

static int opt_find_item(const char *item, size_t len, void *opaque)
{
    struct opt_find *f = opaque;
    size_t klen = strlen(f->key);
    size_t vlen;

    if (len <= klen || strncmp(item, f->key, klen) || item[klen] != '=')
        return 0;
    vlen = len - klen - 1;
    if (vlen >= f->len) {
        f->found = -1;
        return 1;
    }
    memcpy(f->buf, item + klen + 1, vlen);
    f->buf[vlen] = 0;
    f->found = 1;
    return 0; /* the last occurrence wins, as in QEMU */
}

int opt_get(const char *opts, const char *key, char *buf, size_t len)
{
    struct opt_find f = {key, buf, len, 0};

    opt_each(opts, opt_find_item, &f);
    return f.found;
}

int opt_first_word(const char *opts, char *buf, size_t len)
{
    const char *end = strchr(opts, ',');
    size_t n = end ? (size_t)(end - opts) : strlen(opts);

    if (!n || memchr(opts, '=', n))
        return 0;
    if (n >= len)
        return -1;
    memcpy(buf, opts, n);
    buf[n] = 0;
    return 1;
}

int opt_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (!strcmp(value, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(value, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int vdev_check_count(const char *value, char *expected)
{
    uint64_t v;

    if (ratelimit_parse(value, false, &v) == 0)
        return 0;
    snprintf(expected, VDEV_ERR_LEN, "expected a whole number up to %llu (0: unlimited)",
             (unsigned long long)RATELIMIT_MAX_BURST);
    return -1;
}

int vdev_check_bytes(const char *value, char *expected)
{
    uint64_t v;

    if (ratelimit_parse(value, true, &v) == 0)
        return 0;
    snprintf(expected, VDEV_ERR_LEN,
             "expected bytes, a whole number with an optional K, M, G or T suffix such as 10M "
             "(0: unlimited)");
    return -1;
}

int vdev_opt_limit(const char *opts, const char *key, bool suffixes, uint64_t *out)
{
    char buf[32];
    int r = opt_get(opts, key, buf, sizeof(buf));

    *out = 0;
    if (r == 0)
        return 0;
    if (r < 0 || ratelimit_parse(buf, suffixes, out))
        return -EINVAL;
    return 0;
}

/* ---- typed options ---- */

/* Up to 48 bytes of s for a message: non-printable bytes become '?', a longer s ends in
 * "...". buf holds at least 52 bytes. */
static const char *vdev_quote(const char *s, size_t len, char *buf)
{
    size_t i;

    for (i = 0; i < len && i < 48; i++)
        buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    if (i < len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static const struct vdev_opt *vdev_opt_by_key(const struct vdev_type *t, const char *key,
                                              size_t klen)
{
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (o->kind != VDEV_OPT_REST && strlen(o->key) == klen && !strncmp(o->key, key, klen))
            return o;
    }
    return NULL;
}

static const struct vdev_opt *vdev_opt_by_json(const struct vdev_type *t, const char *name)
{
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (!strcmp(o->json, name))
            return o;
    }
    return NULL;
}

const struct vdev_opt *vdev_opt_find(const struct vdev_type *t, const char *json_key)
{
    return vdev_opt_by_json(t, json_key);
}

/* The option a leading bare word is (--disk FILE), or NULL. */
static const struct vdev_opt *vdev_opt_leading(const struct vdev_type *t)
{
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (o->first_word)
            return o;
    }
    return NULL;
}

/* The option that collects what the table does not name (a NIC's backend spec), or NULL. */
static const struct vdev_opt *vdev_opt_rest(const struct vdev_type *t)
{
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (o->kind == VDEV_OPT_REST)
            return o;
    }
    return NULL;
}

/* Checks a string value of option o: 0, or -1 with what was expected. */
static int vdev_opt_check_str(const struct vdev_opt *o, const char *v, size_t len, char *expected)
{
    if (o->kind == VDEV_OPT_ENUM) {
        size_t n = 0;

        for (const char *const *c = o->choices; *c; c++) {
            if (strlen(*c) == len && !strcmp(*c, v))
                return 0;
        }
        n += (size_t)snprintf(expected, VDEV_ERR_LEN, "expected");
        for (const char *const *c = o->choices; *c && n < VDEV_ERR_LEN; c++)
            n += (size_t)snprintf(expected + n, VDEV_ERR_LEN - n, "%s%s",
                                  c == o->choices ? " "
                                  : c[1]          ? ", "
                                                  : " or ",
                                  *c);
        return -1;
    }
    if (o->kind == VDEV_OPT_BOOL) {
        bool b;

        if (strlen(v) != len || opt_bool(v, &b)) {
            snprintf(expected, VDEV_ERR_LEN, "expected on or off");
            return -1;
        }
        return 0;
    }
    if (len == 0 || strlen(v) != len) {
        snprintf(expected, VDEV_ERR_LEN, "expected a non-empty string without NUL bytes");
        return -1;
    }
    /* A UINT with its own check (which refuses ',' too) gets that check's message. */
    if (o->kind == VDEV_OPT_UINT && !o->check && (len > 18 || strspn(v, "0123456789") != len)) {
        snprintf(expected, VDEV_ERR_LEN, "expected a whole number");
        return -1;
    }
    if (o->kind == VDEV_OPT_STR) {
        if (len > o->max_len) {
            snprintf(expected, VDEV_ERR_LEN, "expected at most %zu bytes, not %zu", o->max_len,
                     len);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if (v[i] == ',' || (unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
                snprintf(expected, VDEV_ERR_LEN, "expected text without ',' or control characters");
                return -1;
            }
        }
    }
    return o->check ? o->check(v, expected) : 0;
}

/* The value of an option o as JSON, from its text in an option string. */
static json_t *vdev_opt_json(const struct vdev_opt *o, const char *v)
{
    bool b = false;

    if (o->kind == VDEV_OPT_BOOL) {
        opt_bool(v, &b);
        return json_boolean(b);
    }
    /* A number without a suffix is a JSON number; "10M" stays as the user wrote it. */
    if (o->kind == VDEV_OPT_UINT && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 18)
        return json_integer((json_int_t)strtoll(v, NULL, 10));
    return json_string(v);
}

/* Appends `item` (len bytes) to the REST string under o->json in conf. */
static int vdev_rest_append(json_t *conf, const struct vdev_opt *o, const char *item, size_t len)
{
    const char *old = json_string_value(json_object_get(conf, o->json));
    char *s;
    int n =
        old ? asprintf(&s, "%s,%.*s", old, (int)len, item) : asprintf(&s, "%.*s", (int)len, item);

    if (n < 0)
        return -ENOMEM;
    n = json_object_set_new(conf, o->json, json_string(s));
    free(s);
    return n ? -ENOMEM : 0;
}

int vdev_opts_to_conf(const struct vdev_type *t, const char *opts, json_t **conf, char *err)
{
    json_t *c = json_object();
    const struct vdev_opt *rest = vdev_opt_rest(t);
    const char *p = opts;
    char q[64], expected[VDEV_ERR_LEN];
    bool first = true;

    if (!c)
        return -ENOMEM;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const struct vdev_opt *o;
        const char *v;
        size_t vlen;
        char *copy;
        int r;

        if (len == 0) {
            snprintf(err, VDEV_ERR_LEN, "%s: empty option (a stray ',')", t->flag);
            goto refuse;
        }
        if (!eq) {
            o = first ? vdev_opt_leading(t) : NULL;
            v = p;
            vlen = len;
        } else {
            o = vdev_opt_by_key(t, p, (size_t)(eq - p));
            v = eq + 1;
            vlen = len - (size_t)(eq - p) - 1;
        }
        first = false;
        if (!o && rest) {
            if (vdev_rest_append(c, rest, p, len))
                goto oom;
            p = end ? end + 1 : NULL;
            continue;
        }
        if (!o) {
            snprintf(err, VDEV_ERR_LEN, "%s: unknown option '%s'%s", t->flag, vdev_quote(p, len, q),
                     eq ? "" : " (expected key=value)");
            goto refuse;
        }
        copy = strndup(v, vlen);
        if (!copy)
            goto oom;
        if (vdev_opt_check_str(o, copy, vlen, expected)) {
            snprintf(err, VDEV_ERR_LEN, "%s: %s '%s': %.300s", t->flag, o->key,
                     vdev_quote(v, vlen, q), expected);
            free(copy);
            goto refuse;
        }
        /* The last occurrence wins, as in QEMU. */
        r = json_object_set_new(c, o->json, vdev_opt_json(o, copy));
        free(copy);
        if (r)
            goto oom;
        p = end ? end + 1 : NULL;
    }
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (o->required && !json_object_get(c, o->json)) {
            snprintf(err, VDEV_ERR_LEN, "%s: %s is missing (usage: %s)", t->flag,
                     o->kind == VDEV_OPT_REST ? "the backend" : o->key, t->usage);
            goto refuse;
        }
        if (o->kind == VDEV_OPT_REST && json_object_get(c, o->json) &&
            o->check(json_string_value(json_object_get(c, o->json)), expected)) {
            snprintf(err, VDEV_ERR_LEN, "%s: %.480s", t->flag, expected);
            goto refuse;
        }
    }
    *conf = c;
    return 0;

oom:
    snprintf(err, VDEV_ERR_LEN, "%s: out of memory", t->flag);
refuse:
    json_decref(c);
    return -EINVAL;
}

int vdev_opts_check(const struct vdev_type *t, const char *opts, char *err)
{
    json_t *conf;
    int r = vdev_opts_to_conf(t, opts, &conf, err);

    if (r == 0)
        json_decref(conf);
    return r;
}

/* Checks one JSON value of option o: 0, or -1 with what was expected. */
static int vdev_opt_check_json(const struct vdev_opt *o, json_t *v, char *expected)
{
    if (o->kind == VDEV_OPT_BOOL) {
        if (json_is_boolean(v))
            return 0;
        snprintf(expected, VDEV_ERR_LEN, "expected true or false");
        return -1;
    }
    if (o->kind == VDEV_OPT_UINT && json_is_integer(v)) {
        char text[24];

        if (json_integer_value(v) < 0) {
            snprintf(expected, VDEV_ERR_LEN, "expected a number >= 0");
            return -1;
        }
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        return vdev_opt_check_str(o, text, strlen(text), expected);
    }
    if (!json_is_string(v)) {
        if (o->kind == VDEV_OPT_UINT) {
            snprintf(expected, VDEV_ERR_LEN, "expected a whole number >= 0");
            return -1;
        }
        if (o->kind == VDEV_OPT_ENUM)
            return vdev_opt_check_str(o, "", 1, expected);
        snprintf(expected, VDEV_ERR_LEN, "expected a string");
        return -1;
    }
    return vdev_opt_check_str(o, json_string_value(v), json_string_length(v), expected);
}

int vdev_conf_check(const struct vdev_type *t, json_t *conf, const char *where,
                    const char *const *ignore, char *err)
{
    char expected[VDEV_ERR_LEN];
    const char *key;
    json_t *v;

    if (!json_is_object(conf)) {
        snprintf(err, VDEV_ERR_LEN, "%s: expected an object", where);
        return -EINVAL;
    }
    json_object_foreach(conf, key, v)
    {
        const struct vdev_opt *o = vdev_opt_by_json(t, key);
        bool skip = false;

        for (const char *const *i = ignore; i && *i; i++)
            skip |= !strcmp(*i, key);
        if (skip)
            continue;
        if (!o) {
            size_t n =
                (size_t)snprintf(err, VDEV_ERR_LEN, "%s.%s: unknown key (expected", where, key);
            bool none = true;

            for (o = t->options; o && o->key && n < VDEV_ERR_LEN; o++, none = false)
                n +=
                    (size_t)snprintf(err + n, VDEV_ERR_LEN - n, "%s%s", none ? " " : ", ", o->json);
            if (n < VDEV_ERR_LEN)
                snprintf(err + n, VDEV_ERR_LEN - n, "%s)", none ? " no options" : "");
            return -EINVAL;
        }
        if (vdev_opt_check_json(o, v, expected)) {
            snprintf(err, VDEV_ERR_LEN, "%s.%s: %.300s", where, key, expected);
            return -EINVAL;
        }
    }
    for (const struct vdev_opt *o = t->options; o && o->key; o++) {
        if (o->required && !json_object_get(conf, o->json)) {
            snprintf(err, VDEV_ERR_LEN, "%s.%s: missing (required)", where, o->json);
            return -EINVAL;
        }
    }
    return 0;
}

int vdev_conf_to_opts(const struct vdev_type *t, json_t *conf, char **opts)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    bool any = false;

    if (!f)
        return -ENOMEM;
    /* The leading word first, then the keys in table order. */
    for (int pass = 0; pass < 2; pass++) {
        for (const struct vdev_opt *o = t->options; o && o->key; o++) {
            json_t *v = json_object_get(conf, o->json);
            bool lead =
                o->kind == VDEV_OPT_REST ||
                (o->first_word && !strchr(json_string_value(v) ? json_string_value(v) : "", '='));

            /* A leading word with '=' in it would read as a key: it goes as key=value. */
            if (!v || o->record_only || lead != (pass == 0))
                continue;
            if (any)
                fputc(',', f);
            any = true;
            if (!lead)
                fprintf(f, "%s=", o->key);
            if (o->kind == VDEV_OPT_BOOL)
                fputs(json_is_true(v) ? "on" : "off", f);
            else if (json_is_integer(v))
                fprintf(f, "%lld", (long long)json_integer_value(v));
            else
                fputs(json_string_value(v) ? json_string_value(v) : "", f);
        }
    }
    if (fclose(f)) {
        free(s);
        return -ENOMEM;
    }
    *opts = s;
    return 0;
}

int vdev_conf_set(const struct vdev_type *t, json_t *conf, const char *json_key, json_t *value,
                  char *err)
{
    const struct vdev_opt *o = vdev_opt_by_json(t, json_key);
    char expected[VDEV_ERR_LEN];

    if (!o) {
        snprintf(err, VDEV_ERR_LEN, "%s: no option '%s'", t->name, json_key);
        json_decref(value);
        return -EINVAL;
    }
    if (!value) {
        json_object_del(conf, json_key);
        return 0;
    }
    if (vdev_opt_check_json(o, value, expected)) {
        snprintf(err, VDEV_ERR_LEN, "%s.%s: %.300s", t->name, json_key, expected);
        json_decref(value);
        return -EINVAL;
    }
    return json_object_set_new(conf, json_key, value) ? -ENOMEM : 0;
}

static void vdev_kick_ready(void *opaque, int fd, unsigned revents)
{
    struct vdev_kick *k = opaque;
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    k->fn(k->opaque);
}

int vdev_kick_init(struct vdev_kick *k, struct loop *loop, void (*fn)(void *opaque), void *opaque)
{
    int err;

    k->loop = loop;
    k->fn = fn;
    k->opaque = opaque;
    k->handle = NULL;
    k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (k->fd < 0)
        return -errno;
    err = loop_add_fd(loop, k->fd, LOOP_IN, vdev_kick_ready, k, &k->handle);
    if (err) {
        close(k->fd);
        k->fd = -1;
    }
    return err;
}

void vdev_kick_signal(struct vdev_kick *k)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
    if (write(k->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_guest("virtio: cannot wake the event loop: %s", strerror(errno));
}

void vdev_kick_destroy(struct vdev_kick *k)
{
    if (k->handle)
        loop_remove_fd(k->loop, k->handle);
    k->handle = NULL;
    if (k->fd > 0)
        close(k->fd);
    k->fd = -1;
}
