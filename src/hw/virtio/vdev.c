#include "hw/virtio/vdev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"

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

struct opt_known {
    const char *const *known;
    bool first_word_ok;
    bool first;
    char *err;
    const char *what;
};

static int opt_check_item(const char *item, size_t len, void *opaque)
{
    struct opt_known *k = opaque;
    const char *eq = memchr(item, '=', len);
    size_t klen = eq ? (size_t)(eq - item) : len;
    bool first = k->first;

    k->first = false;
    if (!eq && first && k->first_word_ok)
        return 0;
    for (const char *const *p = k->known; *p; p++) {
        if (strlen(*p) == klen && !strncmp(*p, item, klen) && eq)
            return 0;
    }
    snprintf(k->err, VDEV_ERR_LEN, "%s: unknown option '%.*s'%s", k->what, (int)len, item,
             eq ? "" : " (expected key=value)");
    return -1;
}

int opt_check(const char *opts, const char *const *known, bool first_word_ok, char *err,
              const char *what)
{
    struct opt_known k = {known, first_word_ok, true, err, what};

    return opt_each(opts, opt_check_item, &k);
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
