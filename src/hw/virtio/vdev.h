/* Virtio device types as the board and the command line see them.
 *
 * Each device file defines one `const struct vdev_type` and registers it with
 * VDEV_TYPE_REGISTER(); nothing central lists them, so adding a device edits no switch and no
 * main(). The board looks a type up by the name the user wrote (`--device rng`, or the
 * `--disk`/`--net` shorthands), asks it to create an instance from the option string, and puts
 * the instance behind a virtio-mmio transport. */
#ifndef TESSERA_HW_VIRTIO_VDEV_H
#define TESSERA_HW_VIRTIO_VDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hw/guest_mem.h"
#include "hw/virtio/virtio.h"

#define VDEV_ERR_LEN 512

struct loop;

/* ---- a device type's options, typed ----
 * Each type lists its option keys in a const table. The table is the one truth for both
 * spellings of a device's configuration: the option string of the command line
 * ("disk.img,format=raw") and the JSON object of the VM config document ({"path":
 * "disk.img", "format": "raw"}, docs/vm-config.md). Every value is checked against it before
 * a device is created, so create() sees only values the table allows. */
enum vdev_opt_kind {
    VDEV_OPT_STR,  /* text of 1..max_len bytes without ',' or control characters */
    VDEV_OPT_BOOL, /* "on|off|true|false|yes|no|1|0" in a string; true/false in JSON */
    VDEV_OPT_ENUM, /* one of choices */
    VDEV_OPT_REST, /* the leading word and every item the table does not name, in order (a
                      NIC's backend spec "user,hostfwd=..."): a string */
    VDEV_OPT_UINT, /* a number: decimal digits in the option string; in JSON an integer >= 0,
                      or a string when `check` allows more ("10M"). `check` has the last word */
};

struct vdev_opt {
    const char *key;  /* in the option string; NULL ends the table */
    const char *json; /* in the config document */
    enum vdev_opt_kind kind;
    size_t max_len;             /* STR: the most bytes */
    const char *const *choices; /* ENUM: NULL-terminated */
    bool first_word;  /* may be the leading bare word of the option string (--disk FILE) */
    bool required;    /* the device cannot be created without it */
    bool record_only; /* kept in the document (a snapshot's header) but never given to create() */
    bool live;        /* may change on a running device (the type's reconfigure()) */
    /* Extra check of a STR or REST value (a MAC address, a network backend spec): 0, or -1
     * with what was expected in `expected` (VDEV_ERR_LEN bytes). NULL: none. */
    int (*check)(const char *value, char *expected);
};

/* What a device may use from the machine. Valid from create() until destroy(). */
struct vdev_env {
    struct guest_ram *ram;
    struct loop *loop; /* the VM's host event loop thread (src/base/loop.h) */
    unsigned index;    /* instance number among devices of the same type, from 0 */
};

struct vdev_stats {
    uint64_t reads, writes;           /* requests, or frames */
    uint64_t read_bytes, write_bytes; /* their bytes */
    /* Rate limiting (base/ratelimit.h): the requests or frames that had to wait for their
     * limit, and the time they waited in all, per direction as above. */
    uint64_t read_throttled, write_throttled;
    uint64_t read_throttled_ns, write_throttled_ns;
    /* Frames or requests dropped as malformed (a NIC: a bad virtio-net header). */
    uint64_t read_errors, write_errors;
};

struct vdev_type {
    const char *name;    /* as typed by the user: "disk", "net", "rng", ... */
    const char *summary; /* one line for --help */
    const char *usage;   /* the whole option as typed, e.g. "--disk FILE[,format=raw|qcow2]" */
    /* Creates an instance from `opts` (the text after "NAME," or after "--disk ", may be "").
     * Set-up thread. On failure returns <0 and writes one line naming the option and what was
     * wrong into err. *ops tells the transport what the device is. */
    int (*create)(const struct vdev_env *env, const char *opts, void **dev,
                  const struct virtio_device_ops **ops, char *err);
    /* Connects the instance to its transport; called once after create(). */
    void (*attach)(void *dev, struct virtio_dev *vdev);
    /* Frees the instance; the transport was destroyed first, so no callback runs. */
    void (*destroy)(void *dev);
    const char *flag;               /* how errors name an option string: "--disk" */
    const struct vdev_opt *options; /* its keys; the table ends with a NULL key */
    /* A clone of the VM gets this device's configuration `conf` (a JSON object the table
     * checked) changed so that it shares nothing with its origin that must be unique: a new
     * MAC, host sockets moved into the clone's folder `dir`. NULL: nothing to change. 0 or
     * -errno with err. Set-up thread. */
    int (*clone)(json_t *conf, const char *dir, char *err);
    /* The device's traffic so far, for the control API's stats (NULL: it counts none). For a
     * disk, reads are what the guest read; for a NIC, reads are the frames the guest
     * received and writes those it sent. Any thread. */
    void (*stats)(void *dev, struct vdev_stats *out);
    /* Applies a new option string to a running instance: only keys marked `live` may differ
     * from what it runs with (the caller checked the string against the table and that the
     * rest is unchanged). Takes effect at once, also for requests waiting on an old value.
     * 0 or -EINVAL with err. Any thread but the device's own. NULL: nothing is live. */
    int (*reconfigure)(void *dev, const char *opts, char *err);
    const struct vdev_type *next; /* registry link, set by vdev_type_register() */
};

void vdev_type_register(struct vdev_type *type);
const struct vdev_type *vdev_type_find(const char *name);
const struct vdev_type *vdev_type_first(void);

#define VDEV_TYPE_REGISTER(var)                                        \
    __attribute__((constructor)) static void vdev_register_##var(void) \
    {                                                                  \
        vdev_type_register(&(var));                                    \
    }

/* A device's doorbell on the event loop: vdev_kick_signal() (any thread, never blocks, no
 * allocation) makes the loop thread call `fn(opaque)` soon; kicks that arrive before it runs
 * merge into one call. For devices whose queue work runs on the loop. */
struct vdev_kick {
    struct loop *loop;
    int fd; /* eventfd */
    struct loop_fd *handle;
    void (*fn)(void *opaque);
    void *opaque;
};

int vdev_kick_init(struct vdev_kick *k, struct loop *loop, void (*fn)(void *opaque), void *opaque);
void vdev_kick_signal(struct vdev_kick *k);
/* After return fn is not running and will not run again. Safe on a zeroed struct. */
void vdev_kick_destroy(struct vdev_kick *k);

/* An option string (the text after "--disk ") as the JSON object of the config document:
 * every key and value is checked against t->options (an unknown key, a value too long, a bad
 * boolean or choice is refused with err naming t->flag and the key). 0 and a new object in
 * *conf, or -EINVAL with err. */
int vdev_opts_to_conf(const struct vdev_type *t, const char *opts, json_t **conf, char *err);

/* The same check without keeping the object: what create() runs first, and the machine before
 * it. 0 or -EINVAL with err. */
int vdev_opts_check(const struct vdev_type *t, const char *opts, char *err);

/* Checks a JSON object of the config document against t->options: `where` names it in
 * errors ("vm.json: disks[1]"), e.g. "vm.json: disks[1].format: expected raw or qcow2".
 * Keys named in `ignore` (NULL-terminated, may be NULL) are the caller's. 0 or -EINVAL. */
int vdev_conf_check(const struct vdev_type *t, json_t *conf, const char *where,
                    const char *const *ignore, char *err);

/* The option string create() takes for a checked conf (malloc'd into *opts; record_only keys
 * left out). 0, -ENOMEM, or -EINVAL when a value cannot be written as an option. */
int vdev_conf_to_opts(const struct vdev_type *t, json_t *conf, char **opts);

/* The option of t whose JSON name is json_key, or NULL. */
const struct vdev_opt *vdev_opt_find(const struct vdev_type *t, const char *json_key);

/* Sets one key of a conf to `value` (a reference is stolen, also on failure) after checking
 * it against the table: the typed way for restore, clone and migration to change a device's
 * image, format or socket. A NULL value removes the key. 0 or -EINVAL with err. */
int vdev_conf_set(const struct vdev_type *t, json_t *conf, const char *json_key, json_t *value,
                  char *err);

/* Rate limits (base/ratelimit.h) as options: checks for vdev_opt.check of a VDEV_OPT_UINT, a
 * count ("500") or a byte amount that may carry a K, M, G or T suffix ("10M"); and the value
 * of such a key in a checked option string: 0 with *out (0 when the key is absent), or
 * -EINVAL. */
int vdev_check_count(const char *value, char *expected);
int vdev_check_bytes(const char *value, char *expected);
int vdev_opt_limit(const char *opts, const char *key, bool suffixes, uint64_t *out);

/* Option strings "key=value,key=value" as QEMU writes them. opt_get copies the value of
 * `key` into buf (at most len-1 bytes); returns 1 if found, 0 if not, -1 if the value does
 * not fit (a caller must refuse that, never read it as "not given"). A leading bare word (no
 * '=') is returned by opt_first_word, e.g. the FILE of --disk FILE,format=qcow2. Which keys
 * and values are allowed is the type's table (vdev_opts_check()). */
int opt_get(const char *opts, const char *key, char *buf, size_t len);
int opt_first_word(const char *opts, char *buf, size_t len);
/* Parses "on"/"off"/"true"/"false"/"yes"/"no" (QEMU's booleans). 0 or -1. */
int opt_bool(const char *value, bool *out);

#endif
