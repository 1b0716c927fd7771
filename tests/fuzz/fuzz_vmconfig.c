// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc $(pkg-config --cflags slirp gnutls) $(find src -name '*.c' ! -name main.c | sort) tests/fuzz/fuzz_vmconfig.c -o build/fuzz_vmconfig $(make -s --no-print-directory print-libs)
// run:   build/fuzz_vmconfig -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for the VM config document (src/vmm/vmconfig.h) and the device option
 * tables behind it (src/hw/virtio/vdev.h): outside input from --config files, stream headers
 * and the command line.
 *
 * Input layout: [0] mode, [1..] payload.
 *   mode & 1 == 0: the payload is a document: vmconfig_parse(). A refused one must leave an
 *                  error line and an empty config; an accepted one must write back a document
 *                  that parses to the same text (the round trip describe relies on), and give
 *                  a machine config whose option strings every device table accepts.
 *   mode & 1 == 1: the payload is an option string for device type (mode >> 1) % ntypes:
 *                  vdev_opts_to_conf(); an accepted one must survive conf -> string -> conf
 *                  unchanged and pass vdev_conf_check().
 * A violated contract traps. The device types register themselves from constructors, so the
 * whole library (but main) is built in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/vmconfig.h"

static void fuzz_document(const uint8_t *data, size_t size)
{
    struct vmconfig c, again;
    struct virt_config v;
    char err[VMCONFIG_ERR_LEN];
    char *text, *text2;

    err[0] = '\0';
    if (vmconfig_parse((const char *)data, size, "fuzz.json", &c, err)) {
        if (!err[0] || memchr(err, '\n', strlen(err)) || c.ndevices || c.kernel)
            __builtin_trap();
        return;
    }
    text = vmconfig_dumps(&c);
    if (!text)
        __builtin_trap();
    if (vmconfig_parse(text, strlen(text), "round trip", &again, err))
        __builtin_trap();
    text2 = vmconfig_dumps(&again);
    if (!text2 || strcmp(text, text2))
        __builtin_trap();
    if (vmconfig_to_virt(&c, &v) == 0) {
        for (unsigned i = 0; i < v.ndevices; i++) {
            char verr[VDEV_ERR_LEN];
            json_t *conf;

            if (vdev_opts_to_conf(vdev_type_find(v.devices[i].type), v.devices[i].opts, &conf,
                                  verr))
                __builtin_trap();
            json_decref(conf);
        }
        virt_config_free(&v);
    }
    free(text);
    free(text2);
    vmconfig_free(&again);
    vmconfig_free(&c);
}

static void fuzz_options(unsigned pick, const uint8_t *data, size_t size)
{
    const struct vdev_type *t;
    unsigned n = 0;
    char err[VDEV_ERR_LEN];
    char *opts = malloc(size + 1), *back = NULL;
    json_t *conf = NULL, *conf2 = NULL;

    if (!opts)
        return;
    memcpy(opts, data, size);
    opts[size] = '\0';
    for (t = vdev_type_first(); t; t = t->next)
        n++;
    t = vdev_type_first();
    for (unsigned i = 0; n && i < pick % n; i++)
        t = t->next;
    err[0] = '\0';
    if (t && vdev_opts_to_conf(t, opts, &conf, err) == 0) {
        if (vdev_conf_check(t, conf, "fuzz", NULL, err) || vdev_conf_to_opts(t, conf, &back))
            __builtin_trap();
        /* record_only keys are not written back; the rest must be. */
        json_object_del(conf, "snapshot_of");
        if (vdev_opts_to_conf(t, back, &conf2, err) || !json_equal(conf, conf2))
            __builtin_trap();
    } else if (t && !err[0]) {
        __builtin_trap();
    }
    json_decref(conf);
    json_decref(conf2);
    free(back);
    free(opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_options(data[0] >> 1, data + 1, size - 1);
    else
        fuzz_document(data + 1, size - 1);
    return 0;
}
