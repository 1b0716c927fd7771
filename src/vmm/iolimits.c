/* Live rate limits of disks and NICs; see iolimits.h. */
#include "vmm/iolimits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/vdev.h"
#include "machine/virt.h"

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, IOLIMITS_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* The live options of t, ", "-separated, for messages. */
static void live_keys(const struct vdev_type *t, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (const struct vdev_opt *o = t->options; o && o->key && n < len; o++) {
        if (o->live)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", o->json);
    }
}

/* Only the live keys of conf: a new object, or NULL when out of memory. */
static json_t *live_only(const struct vdev_type *t, json_t *conf)
{
    json_t *out = json_object();

    for (const struct vdev_opt *o = t->options; out && o && o->key; o++) {
        json_t *v = json_object_get(conf, o->json);

        if (o->live && v && json_object_set(out, o->json, v)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *iolimits_get(struct virt_machine *m, unsigned slot)
{
    struct virt_config cfg;
    const struct vdev_type *t;
    char verr[VDEV_ERR_LEN];
    json_t *conf, *out;

    if (virt_config_copy(m, &cfg))
        return NULL;
    t = slot < cfg.ndevices ? vdev_type_find(cfg.devices[slot].type) : NULL;
    if (!t ||
        vdev_opts_to_conf(t, cfg.devices[slot].opts ? cfg.devices[slot].opts : "", &conf, verr)) {
        virt_config_free(&cfg);
        return json_object();
    }
    out = live_only(t, conf);
    json_decref(conf);
    virt_config_free(&cfg);
    return out;
}

/* Applies `changes` to conf. 0 or -EINVAL/-ENOMEM with err ("disks[0].iops: ..."). */
static int apply_changes(const struct vdev_type *t, json_t *conf, json_t *changes,
                         const char *where, char *err)
{
    char verr[VDEV_ERR_LEN], keys[256];
    const char *key;
    json_t *v;

    live_keys(t, keys, sizeof(keys));
    if (!json_is_object(changes) || json_object_size(changes) == 0) {
        set_err(err, "%s: expected an object with one or more of %s", where, keys);
        return -EINVAL;
    }
    json_object_foreach(changes, key, v)
    {
        const struct vdev_opt *o = vdev_opt_find(t, key);

        if (!o || !o->live) {
            set_err(err, "%s.%.64s: %s (the limits are %s)", where, key,
                    o ? "cannot change while the VM runs" : "unknown key", keys);
            return -EINVAL;
        }
        /* 0 and null both mean unlimited: the key goes, as if never given. */
        if (json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 0)) {
            json_object_del(conf, key);
            continue;
        }
        if (vdev_conf_set(t, conf, key, json_incref(v), verr)) {
            /* verr is "disk.KEY: what was expected"; say it with the caller's path. */
            const char *what = strchr(verr, ' ');

            set_err(err, "%s.%s:%.400s", where, key, what ? what : " refused");
            return -EINVAL;
        }
    }
    return 0;
}

int iolimits_set(struct virt_machine *m, const char *type, unsigned index, json_t *changes,
                 json_t **out, char *err)
{
    const struct vdev_type *t = vdev_type_find(type);
    const char *plural = !strcmp(type, "disk") ? "disks" : "nics";
    char where[48], verr[VDEV_ERR_LEN];
    struct virt_config cfg;
    unsigned slot, seen = 0;
    json_t *conf = NULL;
    char *opts = NULL;
    int ret;

    *out = NULL;
    snprintf(where, sizeof(where), "%s[%u]", plural, index);
    if (!t)
        return -ENODEV;
    if (virt_config_copy(m, &cfg))
        return -ENOMEM;
    for (slot = 0; slot < cfg.ndevices; slot++) {
        if (!strcmp(cfg.devices[slot].type, type) && seen++ == index)
            break;
    }
    if (slot == cfg.ndevices) {
        set_err(err, "%s: this VM has %u %s", where, seen, seen == 1 ? type : plural);
        ret = -ENODEV;
        goto free_cfg;
    }
    if (vdev_opts_to_conf(t, cfg.devices[slot].opts ? cfg.devices[slot].opts : "", &conf, verr)) {
        set_err(err, "%s: %.400s", where, verr);
        ret = -EINVAL;
        goto free_cfg;
    }
    ret = apply_changes(t, conf, changes, where, err);
    if (ret)
        goto free_conf;
    ret = vdev_conf_to_opts(t, conf, &opts);
    if (ret) {
        set_err(err, "%s: out of memory", where);
        goto free_conf;
    }
    ret = virt_device_reconfigure(m, slot, opts, verr);
    if (ret) {
        set_err(err, "%s: %.400s", where, verr);
        goto free_opts;
    }
    *out = live_only(t, conf);
    ret = *out ? 0 : -ENOMEM;
free_opts:
    free(opts);
free_conf:
    json_decref(conf);
free_cfg:
    virt_config_free(&cfg);
    return ret;
}
