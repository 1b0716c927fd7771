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
 *   mode & 3 == 1: the payload is an option string for device type (mode >> 2) % ntypes:
 *                  vdev_opts_to_conf(); an accepted one must survive conf -> string -> conf
 *                  unchanged and pass vdev_conf_check().
 *   mode & 3 == 3: [1] picks an option of that type, [2..] is its value: the same checks on
 *                  "FIRST,KEY=VALUE" (FIRST: what the type requires, "f.img" for a disk,
 *                  "user" for a NIC), so every key's values (the rate limits' numbers and
 *                  suffixes among them) are fuzzed without the fuzzer having to find the
 *                  key's name first; and the value as a JSON integer through
 *                  vdev_conf_set(), which must agree with the option string.
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

static const struct vdev_type *pick_type(unsigned pick)
{
    const struct vdev_type *t;
    unsigned n = 0;

    for (t = vdev_type_first(); t; t = t->next)
        n++;
    t = vdev_type_first();
    for (unsigned i = 0; n && i < pick % n; i++)
        t = t->next;
    return t;
}

static void check_options(const struct vdev_type *t, char *opts)
{
    char err[VDEV_ERR_LEN];
    char *back = NULL;
    json_t *conf = NULL, *conf2 = NULL;

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
}

static void fuzz_options(unsigned pick, const uint8_t *data, size_t size)
{
    char *opts = malloc(size + 1);

    if (!opts)
        return;
    memcpy(opts, data, size);
    opts[size] = '\0';
    check_options(pick_type(pick), opts);
    free(opts);
}

/* One option of type `pick`, chosen by data[0], with the value data[1..]. */
static void fuzz_value(unsigned pick, const uint8_t *data, size_t size)
{
    const struct vdev_type *t = pick_type(pick);
    const struct vdev_opt *o;
    const char *first = "";
    char err[VDEV_ERR_LEN], *opts;
    unsigned n = 0;
    int len;

    if (!t || size < 1 || !t->options)
        return;
    for (o = t->options; o->key; o++)
        n++;
    if (!n)
        return;
    o = &t->options[data[0] % n];
    for (const struct vdev_opt *r = t->options; r->key; r++) {
        if (r->required)
            first = r->kind == VDEV_OPT_REST ? "user," : "f.img,";
    }
    if (o->kind == VDEV_OPT_REST || o->first_word)
        return; /* their values are the other modes' business */
    len = asprintf(&opts, "%s%s=%.*s", first, o->key, (int)(size - 1), (const char *)data + 1);
    if (len < 0)
        return;
    if (strlen(opts) == (size_t)len)
        check_options(t, opts);
    free(opts);
    /* The same digits as a JSON number: accepted exactly when the option string is. */
    if (o->kind == VDEV_OPT_UINT && size > 1 && size <= 19) {
        char digits[20];
        json_t *conf;
        int as_json, as_text;

        memcpy(digits, data + 1, size - 1);
        digits[size - 1] = '\0';
        if (strspn(digits, "0123456789") != size - 1)
            return;
        conf = json_object();
        as_json = vdev_conf_set(t, conf, o->json, json_integer(strtoll(digits, NULL, 10)), err);
        len = asprintf(&opts, "%s%s=%s", first, o->key, digits);
        if (len < 0) {
            json_decref(conf);
            return;
        }
        as_text = vdev_opts_check(t, opts, err);
        if ((as_json == 0) != (as_text == 0))
            __builtin_trap();
        free(opts);
        json_decref(conf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if ((data[0] & 3) == 3)
        fuzz_value(data[0] >> 2, data + 1, size - 1);
    else if (data[0] & 1)
        fuzz_options(data[0] >> 2, data + 1, size - 1);
    else
        fuzz_document(data + 1, size - 1);
    return 0;
}
