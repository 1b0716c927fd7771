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

#include "hw/guest_mem.h"
#include "hw/virtio/virtio.h"

#define VDEV_ERR_LEN 512

struct loop;

/* What a device may use from the machine. Valid from create() until destroy(). */
struct vdev_env {
    struct guest_ram *ram;
    struct loop *loop; /* the VM's host event loop thread (src/base/loop.h) */
    unsigned index;    /* instance number among devices of the same type, from 0 */
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

/* Option strings "key=value,key=value" as QEMU writes them. opt_get copies the value of
 * `key` into buf (at most len-1 bytes); returns 1 if found, 0 if not, -1 if the value does
 * not fit. opt_check returns 0 if every key in opts is one of `known` (NULL-terminated), or
 * -1 with err naming the first unknown key. A leading bare word (no '=') is returned by
 * opt_first_word, e.g. the FILE of --disk FILE,format=qcow2. */
int opt_get(const char *opts, const char *key, char *buf, size_t len);
int opt_check(const char *opts, const char *const *known, bool first_word_ok, char *err,
              const char *what);
int opt_first_word(const char *opts, char *buf, size_t len);
/* Parses "on"/"off"/"true"/"false"/"yes"/"no" (QEMU's booleans). 0 or -1. */
int opt_bool(const char *value, bool *out);

#endif
