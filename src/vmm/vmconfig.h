/* The VM config document: one versioned JSON tree that describes a VM (docs/vm-config.md,
 * docs/vm-config.schema.json). `tessera run --config FILE` reads it, the command-line flags
 * build the same tree, `describe` shows it, and the header of a snapshot or migration stream
 * carries it. Every input is hostile: an unknown key, a wrong type, a value out of range or a
 * bad choice is refused with the key path ("vm.json: disks[1].format: expected raw or
 * qcow2"), bad JSON with its line and column.
 *
 * In memory the document is a struct vmconfig: the scalars, and the virtio devices in slot
 * order (disks first, then NICs, then the other devices, so the first disk is vda), each a
 * JSON object checked against its type's option table (hw/virtio/vdev.h). Restore, clone and
 * migration change a device through that table (vdev_conf_set(), the type's clone hook),
 * never by editing option strings. The machine is built from it with vmconfig_to_virt().
 *
 * Functions are pure (no I/O but vmconfig_load_file) and run on any thread; a struct vmconfig
 * belongs to one thread at a time. */
#ifndef TESSERA_VMM_VMCONFIG_H
#define TESSERA_VMM_VMCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "machine/virt.h"

#define VMCONFIG_VERSION     1
#define VMCONFIG_ERR_LEN     512
#define VMCONFIG_DEFAULT_MEM (256ull << 20)
#define VMCONFIG_SOCK_MAX    107 /* sun_path without its NUL (unix(7)) */

struct vdev_type;

struct vmconfig_device {
    const struct vdev_type *type;
    json_t *conf; /* owned; checked against type->options */
};

struct vmconfig {
    unsigned cpus;
    /* The CPU engine (src/cpu/engine.h) by name, a registered one; NULL: the default.
     * malloc'd. */
    char *cpu_engine;
    uint64_t mem_size;
    /* "memory_merge": false: guest RAM is not offered to the host's page merging (KSM). The
     * document writes the key only when it is false (true is the default). */
    bool memory_merge_off;
    /* boot; malloc'd, NULL when not given */
    char *firmware;
    char *kernel;
    char *initrd;
    char *cmdline;
    struct vmconfig_device devices[VIRT_VIRTIO_SLOTS]; /* slot order: disks, NICs, the rest */
    unsigned ndevices;
    char *api_socket; /* malloc'd or NULL; the agent's socket is the console device's "agent" */
    /* The serial console (docs/console.md): NULL on stdin/stdout, or the unix socket its
     * clients attach to; the log file that gets all of its output, or NULL. malloc'd. */
    char *console_socket;
    char *console_log;
};

/* An empty config with the defaults (1 CPU, 256 MiB, no devices). */
void vmconfig_init(struct vmconfig *c);
void vmconfig_free(struct vmconfig *c);

/* Parses and checks a document (text of len bytes; `what` names it in errors: "vm.json").
 * 0 and *c (free it with vmconfig_free()), or -EINVAL/-ENOMEM with one line in err
 * (VMCONFIG_ERR_LEN bytes); *c is then empty. */
int vmconfig_parse(const char *text, size_t len, const char *what, struct vmconfig *c, char *err);
/* The same from a file (at most 1 MiB). */
int vmconfig_load_file(const char *path, struct vmconfig *c, char *err);

/* The document for c (a new reference; NULL when out of memory), and as compact text
 * (malloc'd) for a stream header. The document parses back into the same config. */
json_t *vmconfig_to_json(const struct vmconfig *c);
char *vmconfig_dumps(const struct vmconfig *c);

/* A SIZE as --mem and "memory" take it: a number with an optional K, M, G or T suffix (and
 * an optional "B" or "iB" after it); no suffix means MiB. 0 or -EINVAL. */
int vmconfig_parse_size(const char *s, uint64_t *out);

/* Adds a device from a command-line option string (`type` "disk", "net", "rng", ...; `opts`
 * the text after "--disk " or "--device rng,"), in its place in slot order. 0, or -EINVAL
 * with err naming the flag and key. */
int vmconfig_add_device(struct vmconfig *c, const char *type, const char *opts, char *err);

/* Serves the guest agent's channel at path: sets "agent" of the first console device, adding
 * one at the end when there is none. 0 or -EINVAL with err. */
int vmconfig_set_agent_socket(struct vmconfig *c, const char *path, char *err);

/* The index-th device of type `type` ("disk") or NULL. */
struct vmconfig_device *vmconfig_find(struct vmconfig *c, const char *type, unsigned index);

/* A clone of the VM: every device's clone hook (new MACs, sockets moved into dir). 0 or
 * -errno with err. */
int vmconfig_clone(struct vmconfig *c, const char *dir, char *err);

/* The machine config for c: a new virt_config whose strings are malloc'd (free them with
 * virt_config_free()); console_fd and preloaded_ram are left to the caller. 0 or -ENOMEM. */
int vmconfig_to_virt(const struct vmconfig *c, struct virt_config *out);

/* The config of a running machine, read back through each device type's option table (for
 * describe and the stream headers). 0 or -EINVAL/-ENOMEM with err. */
int vmconfig_from_virt(const struct virt_config *v, struct vmconfig *c, char *err);

/* Changes one key of a running machine's device in slot `slot` through its type's table
 * (value stolen; NULL removes the key), so that state written later names what the device
 * uses now: a disk's new image or format. 0 or -EINVAL with err. */
int vmconfig_machine_set(struct virt_machine *m, unsigned slot, const char *key, json_t *value,
                         char *err);

#endif
