/* The VM config document. See vmconfig.h and docs/vm-config.md. */
#include "vmm/vmconfig.h"

#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"
#include "cpu/engine.h"
#include "hw/virtio/vdev.h"

#define VMCONFIG_FILE_MAX (1u << 20)
#define VMCONFIG_PATH_MAX 4095

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VMCONFIG_ERR_LEN, fmt, ap);
    va_end(ap);
}

void vmconfig_init(struct vmconfig *c)
{
    memset(c, 0, sizeof(*c));
    c->cpus = 1;
    c->mem_size = VMCONFIG_DEFAULT_MEM;
}

void vmconfig_free(struct vmconfig *c)
{
    free(c->cpu_engine);
    free(c->firmware);
    free(c->kernel);
    free(c->initrd);
    free(c->cmdline);
    free(c->api_socket);
    free(c->console_socket);
    free(c->console_log);
    for (unsigned i = 0; i < c->ndevices; i++)
        json_decref(c->devices[i].conf);
    vmconfig_init(c);
}

int vmconfig_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 20;

    if (!*s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    if (units_suffix_shift(end, 20, &shift))
        return -EINVAL;
    if (v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Where a device type goes in slot order: disks, then NICs, then the rest as given. */
static int vmconfig_rank(const struct vdev_type *t)
{
    return !strcmp(t->name, "disk") ? 0 : !strcmp(t->name, "net") ? 1 : 2;
}

/* Inserts a device (takes conf) in its place in slot order. */
static int vmconfig_insert(struct vmconfig *c, const struct vdev_type *t, json_t *conf,
                           const char *what, char *err)
{
    unsigned at = c->ndevices;

    if (c->ndevices == VIRT_VIRTIO_SLOTS) {
        set_err(err, "%s: at most %d virtio devices (disks, NICs and devices together)", what,
                VIRT_VIRTIO_SLOTS);
        json_decref(conf);
        return -EINVAL;
    }
    while (at > 0 && vmconfig_rank(c->devices[at - 1].type) > vmconfig_rank(t))
        at--;
    memmove(&c->devices[at + 1], &c->devices[at], (c->ndevices - at) * sizeof(c->devices[0]));
    c->devices[at] = (struct vmconfig_device){t, conf};
    c->ndevices++;
    return 0;
}

int vmconfig_add_device(struct vmconfig *c, const char *type, const char *opts, char *err)
{
    const struct vdev_type *t = vdev_type_find(type);
    char verr[VDEV_ERR_LEN];
    json_t *conf;

    if (!t) {
        set_err(err, "--device '%.100s': unknown device type (see `tessera run --help`)", type);
        return -EINVAL;
    }
    if (vdev_opts_to_conf(t, opts, &conf, verr)) {
        set_err(err, "%s", verr);
        return -EINVAL;
    }
    return vmconfig_insert(c, t, conf, t->flag, err);
}

struct vmconfig_device *vmconfig_find(struct vmconfig *c, const char *type, unsigned index)
{
    for (unsigned i = 0; i < c->ndevices; i++) {
        if (!strcmp(c->devices[i].type->name, type) && index-- == 0)
            return &c->devices[i];
    }
    return NULL;
}

int vmconfig_set_agent_socket(struct vmconfig *c, const char *path, char *err)
{
    const struct vdev_type *t = vdev_type_find("console");
    struct vmconfig_device *con = vmconfig_find(c, "console", 0);
    char verr[VDEV_ERR_LEN];
    json_t *conf;

    if (!t) {
        set_err(err, "agent socket: this build has no console device");
        return -EINVAL;
    }
    conf = con ? con->conf : json_object();
    if (!conf || vdev_conf_set(t, conf, "agent", json_string(path), verr)) {
        set_err(err, "agent socket '%.200s': %s", path, conf ? verr : "out of memory");
        if (!con)
            json_decref(conf);
        return -EINVAL;
    }
    return con ? 0 : vmconfig_insert(c, t, conf, "agent socket", err);
}

int vmconfig_clone(struct vmconfig *c, const char *dir, char *err)
{
    for (unsigned i = 0; i < c->ndevices; i++) {
        char verr[VDEV_ERR_LEN];
        int r;

        if (!c->devices[i].type->clone)
            continue;
        r = c->devices[i].type->clone(c->devices[i].conf, dir, verr);
        if (r) {
            set_err(err, "clone: device %u (%s): %s", i, c->devices[i].type->name, verr);
            return r;
        }
    }
    return 0;
}

/* ---- the document ---- */

/* "256M", or "2G" when it is whole GiB. */
static json_t *vmconfig_size_json(uint64_t bytes)
{
    char s[32];

    if (bytes % (1ull << 30) == 0)
        snprintf(s, sizeof(s), "%" PRIu64 "G", bytes >> 30);
    else
        snprintf(s, sizeof(s), "%" PRIu64 "M", bytes >> 20);
    return json_string(s);
}

static int set_opt_str(json_t *o, const char *key, const char *v)
{
    return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

/* The document's "console" object: {"mode": "stdio"} or {"mode": "socket", "socket": PATH},
 * with "log": FILE when there is one. A new reference, NULL when out of memory. */
static json_t *console_json(const struct vmconfig *c)
{
    json_t *o = json_pack("{s:s}", "mode", c->console_socket ? "socket" : "stdio");

    if (o &&
        ((c->console_socket && json_object_set_new(o, "socket", json_string(c->console_socket))) ||
         (c->console_log && json_object_set_new(o, "log", json_string(c->console_log))))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *vmconfig_to_json(const struct vmconfig *c)
{
    json_t *doc = json_object(), *boot = json_object(), *disks = json_array();
    json_t *nics = json_array(), *devs = json_array();
    const char *agent = NULL;
    bool bad = !doc || !boot || !disks || !nics || !devs;

    for (unsigned i = 0; i < c->ndevices && !bad; i++) {
        const struct vdev_type *t = c->devices[i].type;
        json_t *d = json_deep_copy(c->devices[i].conf);
        int rank = vmconfig_rank(t);

        if (!d) {
            bad = true;
            break;
        }
        if (!strcmp(t->name, "console") && json_object_get(d, "agent")) {
            /* The agent's socket is a top-level key of the document. */
            if (!agent)
                agent = json_string_value(json_object_get(c->devices[i].conf, "agent"));
            json_object_del(d, "agent");
        }
        if (rank == 2)
            bad |= json_object_set_new(d, "type", json_string(t->name)) != 0;
        bad |= json_array_append_new(rank == 0 ? disks : rank == 1 ? nics : devs, d) != 0;
    }
    bad = bad || set_opt_str(boot, "firmware", c->firmware) ||
          set_opt_str(boot, "kernel", c->kernel) || set_opt_str(boot, "initrd", c->initrd) ||
          set_opt_str(boot, "cmdline", c->cmdline) ||
          json_object_set_new(doc, "version", json_integer(VMCONFIG_VERSION)) ||
          json_object_set_new(doc, "machine", json_string("virt")) ||
          json_object_set_new(doc, "cpus", json_integer(c->cpus)) ||
          set_opt_str(doc, "cpu_engine", c->cpu_engine) ||
          json_object_set_new(doc, "memory", vmconfig_size_json(c->mem_size)) ||
          (c->memory_merge_off && json_object_set_new(doc, "memory_merge", json_false())) ||
          json_object_set(doc, "boot", boot) || json_object_set(doc, "disks", disks) ||
          json_object_set(doc, "nics", nics) || json_object_set(doc, "devices", devs) ||
          json_object_set_new(doc, "console", console_json(c)) ||
          set_opt_str(doc, "agent_socket", agent) ||
          set_opt_str(doc, "api_socket", c->api_socket) ||
          json_object_set_new(doc, "limits", json_object());
    json_decref(boot);
    json_decref(disks);
    json_decref(nics);
    json_decref(devs);
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

char *vmconfig_dumps(const struct vmconfig *c)
{
    json_t *doc = vmconfig_to_json(c);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(doc);
    return s;
}

/* ---- reading it ---- */

struct vmconfig_reader {
    const char *what; /* "vm.json" */
    char *err;
};

/* Refuses every key of o that is not in `known`. */
static int check_keys(struct vmconfig_reader *r, json_t *o, const char *path,
                      const char *const *known)
{
    const char *key;
    json_t *v;

    json_object_foreach(o, key, v)
    {
        size_t n;
        bool ok = false;

        for (const char *const *k = known; *k; k++)
            ok |= !strcmp(*k, key);
        if (ok)
            continue;
        n = (size_t)snprintf(r->err, VMCONFIG_ERR_LEN, "%s: %s%s%.100s: unknown key (expected",
                             r->what, path, path[0] ? "." : "", key);
        for (const char *const *k = known; *k && n < VMCONFIG_ERR_LEN; k++)
            n += (size_t)snprintf(r->err + n, VMCONFIG_ERR_LEN - n, "%s%s", k == known ? " " : ", ",
                                  *k);
        if (n < VMCONFIG_ERR_LEN)
            snprintf(r->err + n, VMCONFIG_ERR_LEN - n, "%s)", *known ? "" : " none");
        return -EINVAL;
    }
    return 0;
}

/* A string member without NUL bytes of at most max bytes, copied into *out; absent: *out stays. */
static int get_string(struct vmconfig_reader *r, json_t *o, const char *path, const char *key,
                      size_t max, char **out)
{
    json_t *v = json_object_get(o, key);
    const char *sep = path[0] ? "." : "";

    if (!v)
        return 0;
    if (!json_is_string(v)) {
        set_err(r->err, "%s: %s%s%s: expected a string", r->what, path, sep, key);
        return -EINVAL;
    }
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        set_err(r->err, "%s: %s%s%s: expected a string of at most %zu bytes without NUL", r->what,
                path, sep, key, max);
        return -EINVAL;
    }
    free(*out);
    *out = strdup(json_string_value(v));
    if (!*out) {
        set_err(r->err, "%s: out of memory", r->what);
        return -ENOMEM;
    }
    return 0;
}

static int read_boot(struct vmconfig_reader *r, json_t *boot, struct vmconfig *c)
{
    static const char *const known[] = {"firmware", "kernel", "initrd", "cmdline", NULL};

    if (!boot)
        return 0;
    if (!json_is_object(boot)) {
        set_err(r->err, "%s: boot: expected an object", r->what);
        return -EINVAL;
    }
    if (check_keys(r, boot, "boot", known) ||
        get_string(r, boot, "boot", "firmware", VMCONFIG_PATH_MAX, &c->firmware) ||
        get_string(r, boot, "boot", "kernel", VMCONFIG_PATH_MAX, &c->kernel) ||
        get_string(r, boot, "boot", "initrd", VMCONFIG_PATH_MAX, &c->initrd) ||
        get_string(r, boot, "boot", "cmdline", VMCONFIG_PATH_MAX, &c->cmdline))
        return -EINVAL;
    return 0;
}

/* "disks", "nics" (whose type is implicit) or "devices" (each names its type). */
static int read_devices(struct vmconfig_reader *r, json_t *doc, const char *key, const char *type,
                        struct vmconfig *c)
{
    static const char *const ignore[] = {"type", NULL};
    json_t *list = json_object_get(doc, key), *d;
    size_t i;

    if (!list)
        return 0;
    if (!json_is_array(list)) {
        set_err(r->err, "%s: %s: expected a list", r->what, key);
        return -EINVAL;
    }
    json_array_foreach(list, i, d)
    {
        const struct vdev_type *t = type ? vdev_type_find(type) : NULL;
        char where[128], verr[VDEV_ERR_LEN];
        json_t *conf;

        snprintf(where, sizeof(where), "%s: %s[%zu]", r->what, key, i);
        if (!json_is_object(d)) {
            set_err(r->err, "%s: expected an object", where);
            return -EINVAL;
        }
        if (!type) {
            json_t *tv = json_object_get(d, "type");
            const char *name = json_string_value(tv);

            if (!tv) {
                set_err(r->err, "%s.type: missing (required)", where);
                return -EINVAL;
            }
            t = name ? vdev_type_find(name) : NULL;
            if (!t || vmconfig_rank(t) != 2) {
                size_t n = (size_t)snprintf(r->err, VMCONFIG_ERR_LEN, "%s.type: expected", where);
                bool first = true;

                for (const struct vdev_type *o = vdev_type_first(); o && n < VMCONFIG_ERR_LEN;
                     o = o->next) {
                    if (vmconfig_rank(o) != 2)
                        continue;
                    n += (size_t)snprintf(r->err + n, VMCONFIG_ERR_LEN - n, "%s%s",
                                          first ? " " : ", ", o->name);
                    first = false;
                }
                if (t && n < VMCONFIG_ERR_LEN)
                    snprintf(r->err + n, VMCONFIG_ERR_LEN - n, " (a %s goes in '%s')", name,
                             vmconfig_rank(t) == 0 ? "disks" : "nics");
                return -EINVAL;
            }
        } else if (!t) {
            set_err(r->err, "%s: this build has no %s device", where, type);
            return -EINVAL;
        }
        if (vdev_conf_check(t, d, where, type ? NULL : ignore, verr)) {
            set_err(r->err, "%s", verr);
            return -EINVAL;
        }
        conf = json_deep_copy(d);
        if (conf)
            json_object_del(conf, "type");
        if (!conf || vmconfig_insert(c, t, conf, where, r->err))
            return -EINVAL;
    }
    return 0;
}

static int read_doc(struct vmconfig_reader *r, json_t *doc, struct vmconfig *c)
{
    static const char *const known[] = {
        "version",      "machine",    "cpus",   "cpu_engine",   "memory",
        "boot",         "disks",      "nics",   "devices",      "console",
        "agent_socket", "api_socket", "limits", "memory_merge", NULL,
    };
    static const char *const console_keys[] = {"mode", "socket", "log", NULL};
    static const char *const limit_keys[] = {NULL};
    json_t *v;
    char *s = NULL, *agent = NULL;
    int ret = -EINVAL;

    if (!json_is_object(doc)) {
        set_err(r->err, "%s: not a JSON object", r->what);
        return -EINVAL;
    }
    if (check_keys(r, doc, "", known))
        return -EINVAL;
    v = json_object_get(doc, "version");
    if (!v) {
        set_err(r->err, "%s: version: missing (required; this tessera writes %d)", r->what,
                VMCONFIG_VERSION);
        return -EINVAL;
    }
    if (!json_is_integer(v) || json_integer_value(v) != VMCONFIG_VERSION) {
        set_err(r->err, "%s: version: expected %d (the only version this tessera reads)", r->what,
                VMCONFIG_VERSION);
        return -EINVAL;
    }
    if (get_string(r, doc, "", "machine", 16, &s))
        goto out;
    if (s && strcmp(s, "virt")) {
        set_err(r->err, "%s: machine: expected virt", r->what);
        goto out;
    }
    v = json_object_get(doc, "cpus");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 1 ||
              json_integer_value(v) > VIRT_MAX_CPUS)) {
        set_err(r->err, "%s: cpus: expected an integer from 1 to %d", r->what, VIRT_MAX_CPUS);
        goto out;
    }
    if (v)
        c->cpus = (unsigned)json_integer_value(v);
    if (get_string(r, doc, "", "cpu_engine", 32, &c->cpu_engine))
        goto out;
    if (c->cpu_engine && !cpu_engine_find(c->cpu_engine)) {
        char engines[128];

        cpu_engine_list(engines, sizeof(engines));
        set_err(r->err, "%s: cpu_engine: expected one of %s", r->what, engines);
        goto out;
    }
    v = json_object_get(doc, "memory");
    if (v) {
        uint64_t size;

        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            vmconfig_parse_size(json_string_value(v), &size) || size < VIRT_MIN_MEM ||
            size > VIRT_MAX_MEM || (size & 0xfffff)) {
            set_err(r->err,
                    "%s: memory: expected a size between 16M and 64G in whole MiB, "
                    "e.g. \"512M\"",
                    r->what);
            goto out;
        }
        c->mem_size = size;
    }
    v = json_object_get(doc, "memory_merge");
    if (v && !json_is_boolean(v)) {
        set_err(r->err, "%s: memory_merge: expected true or false", r->what);
        goto out;
    }
    c->memory_merge_off = v && json_is_false(v);
    if (read_boot(r, json_object_get(doc, "boot"), c) || read_devices(r, doc, "disks", "disk", c) ||
        read_devices(r, doc, "nics", "net", c) || read_devices(r, doc, "devices", NULL, c))
        goto out;
    v = json_object_get(doc, "console");
    if (v) {
        const char *mode = json_string_value(json_object_get(v, "mode"));

        if (!json_is_object(v)) {
            set_err(r->err, "%s: console: expected an object", r->what);
            goto out;
        }
        if (check_keys(r, v, "console", console_keys))
            goto out;
        if (json_object_get(v, "mode") &&
            (!mode || (strcmp(mode, "stdio") && strcmp(mode, "socket")))) {
            set_err(r->err, "%s: console.mode: expected stdio or socket", r->what);
            goto out;
        }
        if (get_string(r, v, "console", "socket", VMCONFIG_SOCK_MAX, &c->console_socket) ||
            get_string(r, v, "console", "log", PATH_MAX - 1, &c->console_log))
            goto out;
        if ((mode && !strcmp(mode, "socket")) != (c->console_socket != NULL)) {
            set_err(r->err, "%s: console.socket: %s", r->what,
                    c->console_socket ? "given, so console.mode must be socket"
                                      : "required with console.mode socket");
            goto out;
        }
        if ((c->console_socket && !*c->console_socket) || (c->console_log && !*c->console_log)) {
            set_err(r->err, "%s: console.%s: expected a path, not an empty string", r->what,
                    c->console_log && !*c->console_log ? "log" : "socket");
            goto out;
        }
    }
    v = json_object_get(doc, "limits");
    if (v && !json_is_object(v)) {
        set_err(r->err, "%s: limits: expected an object", r->what);
        goto out;
    }
    if (v && check_keys(r, v, "limits", limit_keys))
        goto out;
    if (get_string(r, doc, "", "api_socket", VMCONFIG_SOCK_MAX, &c->api_socket) ||
        get_string(r, doc, "", "agent_socket", VMCONFIG_SOCK_MAX, &agent))
        goto out;
    if (agent && vmconfig_set_agent_socket(c, agent, r->err)) {
        char inner[VMCONFIG_ERR_LEN];

        snprintf(inner, sizeof(inner), "%s", r->err);
        set_err(r->err, "%s: agent_socket: %.400s", r->what, inner);
        goto out;
    }
    ret = 0;
out:
    free(s);
    free(agent);
    return ret;
}

int vmconfig_parse(const char *text, size_t len, const char *what, struct vmconfig *c, char *err)
{
    struct vmconfig_reader r = {what, err};
    json_error_t jerr;
    json_t *doc;
    int ret = -EINVAL;

    vmconfig_init(c);
    err[0] = '\0';
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        set_err(err, "%s:%d:%d: not a JSON object (invalid JSON: %.200s)", what, jerr.line,
                jerr.column, jerr.text);
        goto refused;
    }
    ret = read_doc(&r, doc, c);
    json_decref(doc);
    if (ret == 0)
        return 0;
    vmconfig_free(c);
refused:
    /* Messages quote keys and (jansson) the text near a syntax error as they are: control
     * bytes become '?' so that the message stays one line. */
    for (char *p = err; *p; p++)
        *p = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    return ret;
}

int vmconfig_load_file(const char *path, struct vmconfig *c, char *err)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;
    int ret;

    vmconfig_init(c);
    if (!f) {
        set_err(err, "%.300s: %s", path, strerror(errno));
        return -errno;
    }
    buf = malloc(VMCONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        set_err(err, "%.300s: out of memory", path);
        return -ENOMEM;
    }
    n = fread(buf, 1, VMCONFIG_FILE_MAX + 1, f);
    if (ferror(f) || n > VMCONFIG_FILE_MAX) {
        set_err(err, "%.300s: %s", path,
                ferror(f) ? "cannot read it" : "larger than 1 MiB: not a VM config");
        ret = -EINVAL;
    } else {
        ret = vmconfig_parse(buf, n, path, c, err);
    }
    free(buf);
    fclose(f);
    return ret;
}

/* ---- the machine ---- */

/* A copy of s (NULL stays NULL). */
static int dup_str(const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

static int dup_opt(const char *s, const char **out)
{
    char *copy;
    int r = dup_str(s, &copy);

    *out = copy;
    return r;
}

int vmconfig_to_virt(const struct vmconfig *c, struct virt_config *out)
{
    memset(out, 0, sizeof(*out));
    out->cpus = c->cpus;
    out->mem_size = c->mem_size;
    out->mem_merge_off = c->memory_merge_off;
    /* The registered engine's own name: static, so the machine's config need not own it. */
    if (c->cpu_engine && cpu_engine_find(c->cpu_engine))
        out->cpu_engine = cpu_engine_find(c->cpu_engine)->name;
    if (dup_opt(c->firmware, &out->bios) || dup_opt(c->kernel, &out->kernel) ||
        dup_opt(c->initrd, &out->initrd) || dup_opt(c->cmdline, &out->append))
        goto oom;
    for (unsigned i = 0; i < c->ndevices; i++) {
        char *opts;

        if (vdev_conf_to_opts(c->devices[i].type, c->devices[i].conf, &opts))
            goto oom;
        out->devices[i].opts = opts;
        out->ndevices = i + 1;
        if (dup_opt(c->devices[i].type->name, &out->devices[i].type))
            goto oom;
    }
    return 0;
oom:
    virt_config_free(out);
    return -ENOMEM;
}

int vmconfig_machine_set(struct virt_machine *m, unsigned slot, const char *key, json_t *value,
                         char *err)
{
    const struct virt_config *v = virt_get_config(m);
    const struct vdev_type *t = slot < v->ndevices ? vdev_type_find(v->devices[slot].type) : NULL;
    char verr[VDEV_ERR_LEN];
    char *opts = NULL;
    json_t *conf = NULL;
    int ret = -EINVAL;

    if (!t) {
        set_err(err, "device %u: no such device", slot);
        json_decref(value);
        return -EINVAL;
    }
    if (vdev_opts_to_conf(t, v->devices[slot].opts ? v->devices[slot].opts : "", &conf, verr)) {
        json_decref(value);
        set_err(err, "device %u: %s", slot, verr);
        goto out;
    }
    if (vdev_conf_set(t, conf, key, value, verr)) {
        set_err(err, "device %u: %s", slot, verr);
        goto out;
    }
    ret = vdev_conf_to_opts(t, conf, &opts);
    if (ret) {
        set_err(err, "out of memory");
        goto out;
    }
    virt_set_device_opts(m, slot, opts);
out:
    free(opts);
    json_decref(conf);
    return ret;
}

int vmconfig_from_virt(const struct virt_config *v, struct vmconfig *c, char *err)
{
    vmconfig_init(c);
    c->cpus = v->cpus;
    c->mem_size = v->mem_size;
    c->memory_merge_off = v->mem_merge_off;
    if (dup_str(v->cpu_engine, &c->cpu_engine) || dup_str(v->bios, &c->firmware) ||
        dup_str(v->kernel, &c->kernel) || dup_str(v->initrd, &c->initrd) ||
        dup_str(v->append, &c->cmdline)) {
        set_err(err, "out of memory");
        goto fail;
    }
    /* Slot order is kept as the machine has it (a config built here is in it already). */
    for (unsigned i = 0; i < v->ndevices; i++) {
        const struct vdev_type *t = vdev_type_find(v->devices[i].type);
        char verr[VDEV_ERR_LEN];
        json_t *conf;

        if (!t || vdev_opts_to_conf(t, v->devices[i].opts ? v->devices[i].opts : "", &conf, verr)) {
            set_err(err, "device %u: %s", i, t ? verr : "unknown type");
            goto fail;
        }
        c->devices[i] = (struct vmconfig_device){t, conf};
        c->ndevices = i + 1;
    }
    return 0;
fail:
    vmconfig_free(c);
    return -EINVAL;
}
