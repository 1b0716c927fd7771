/* The VM config document (src/vmm/vmconfig.h) and the device option tables behind it
 * (src/hw/virtio/vdev.h): the documented example and a describe golden file parse and come
 * back unchanged, every kind of bad input is refused with its exact one-line error naming
 * the key path, option strings and documents are two spellings of the same tree, and the
 * typed hooks (clone, vdev_conf_set) change only what they own. No guest, no I/O but reading
 * the golden files. */
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/virtio/vdev.h"
#include "machine/virt.h"

/* The engines this host registers, as the error lists them (the last registered first). */
#if defined(__x86_64__) && defined(__linux__)
#define CPU_ENGINES "jit, interp"
#else
#define CPU_ENGINES "interp"
#endif
#include "vmm/vmconfig.h"

/* The file parsed as plain JSON, for comparing trees. */
static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);

    if (!j)
        fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
    return j;
}

static bool same_json(json_t *got, json_t *want, const char *what)
{
    char *g, *w;
    bool same = got && want && json_equal(got, want);

    if (!same) {
        g = got ? json_dumps(got, JSON_INDENT(2)) : NULL;
        w = want ? json_dumps(want, JSON_INDENT(2)) : NULL;
        fprintf(stderr, "%s differs:\n--- got\n%s\n--- want\n%s\n", what, g ? g : "(null)",
                w ? w : "(null)");
        free(g);
        free(w);
    }
    return same;
}

/* docs/vm-config.example.json is accepted and written back as it is. */
static void test_documented_example(void)
{
    const char *path = "docs/vm-config.example.json";
    struct vmconfig c;
    char err[VMCONFIG_ERR_LEN] = "";
    json_t *want = load_json(path), *got;

    CHECK(vmconfig_load_file(path, &c, err) == 0);
    if (err[0])
        fprintf(stderr, "%s\n", err);
    CHECK(c.cpus == 2 && c.mem_size == 512ull << 20 && c.ndevices == 6);
    /* Slot order: disks, NICs, the rest; the agent's socket is the console's port. */
    CHECK(c.ndevices == 6 && !strcmp(c.devices[0].type->name, "disk") &&
          !strcmp(c.devices[2].type->name, "net") && !strcmp(c.devices[5].type->name, "console"));
    CHECK(c.ndevices == 6 && !strcmp(json_string_value(json_object_get(c.devices[5].conf, "agent")),
                                     "vm1/agent.sock"));
    got = vmconfig_to_json(&c);
    CHECK(same_json(got, want, path));
    json_decref(got);
    json_decref(want);
    vmconfig_free(&c);
}

/* What describe shows for a VM built from flags, read back from the machine's config as
 * describe does (vmconfig_from_virt()), matches the golden file, and --config accepts it. */
static void test_describe_golden(void)
{
    const char *path = "tests/unit/golden/vmconfig-describe.json";
    struct vmconfig flags, seen, again;
    struct virt_config machine;
    char err[VMCONFIG_ERR_LEN] = "";
    json_t *want = load_json(path), *got = NULL;
    char *text = NULL;

    vmconfig_init(&flags);
    /* tessera run --device rng --net ... --disk ... --agent-sock ... (the disk becomes vda) */
    CHECK(vmconfig_add_device(&flags, "rng", "", err) == 0);
    CHECK(vmconfig_add_device(&flags, "net",
                              "user,hostfwd=tcp::2222-:22,link=off,mac=52:54:00:12:34:57",
                              err) == 0);
    CHECK(vmconfig_add_device(&flags, "disk", "disk.img,format=raw", err) == 0);
    CHECK(vmconfig_set_agent_socket(&flags, "/run/vm1/agent.sock", err) == 0);
    flags.firmware = strdup(VIRT_DEFAULT_BIOS);
    flags.kernel = strdup("build/guest/Image");
    flags.initrd = strdup("build/guest/initramfs.cpio.gz");
    flags.cmdline = strdup("console=ttyS0");
    CHECK(vmconfig_to_virt(&flags, &machine) == 0);
    CHECK(machine.ndevices == 4 && !strcmp(machine.devices[0].type, "disk") &&
          !strcmp(machine.devices[0].opts, "disk.img,format=raw"));
    CHECK(machine.ndevices == 4 &&
          !strcmp(machine.devices[1].opts,
                  "user,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:57,link=off"));
    CHECK(vmconfig_from_virt(&machine, &seen, err) == 0);
    seen.api_socket = strdup("/run/vm1/api.sock");
    got = vmconfig_to_json(&seen);
    CHECK(same_json(got, want, path));
    text = vmconfig_dumps(&seen);
    CHECK(text && vmconfig_parse(text, strlen(text), "describe", &again, err) == 0);
    if (text) {
        char *text2 = vmconfig_dumps(&again);

        CHECK(text2 && !strcmp(text, text2));
        free(text2);
        vmconfig_free(&again);
    }
    free(text);
    json_decref(got);
    json_decref(want);
    virt_config_free(&machine);
    vmconfig_free(&seen);
    vmconfig_free(&flags);
}

struct bad_doc {
    const char *json;
    const char *err; /* the exact message */
};

static const struct bad_doc bad_docs[] = {
    /* bad JSON: line and column */
    {"{\"version\": 1,\n \"cpus\": 1,,}",
     "vm.json:2:12: not a JSON object (invalid JSON: string or '}' expected near ',')"},
    {"[]", "vm.json: not a JSON object"},
    {"{\"version\": 1, \"version\": 1}",
     "vm.json:1:24: not a JSON object (invalid JSON: duplicate object key near '\"version\"')"},
    /* missing required */
    {"{}", "vm.json: version: missing (required; this tessera writes 1)"},
    {"{\"version\": 1, \"disks\": [{\"format\": \"raw\"}]}",
     "vm.json: disks[0].path: missing (required)"},
    {"{\"version\": 1, \"nics\": [{}]}", "vm.json: nics[0].backend: missing (required)"},
    {"{\"version\": 1, \"devices\": [{}]}", "vm.json: devices[0].type: missing (required)"},
    /* unknown keys */
    {"{\"version\": 1, \"cpu\": 2}",
     "vm.json: cpu: unknown key (expected version, machine, cpus, cpu_engine, memory, boot, "
     "disks, nics, devices, console, agent_socket, api_socket, limits, memory_merge)"},
    {"{\"version\": 1, \"cpu_engine\": \"qemu\"}",
     "vm.json: cpu_engine: expected one of " CPU_ENGINES},
    {"{\"version\": 1, \"cpu_engine\": 1}", "vm.json: cpu_engine: expected a string"},
    {"{\"version\": 1, \"boot\": {\"bios\": \"x\"}}",
     "vm.json: boot.bios: unknown key (expected firmware, kernel, initrd, cmdline)"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\"}, {\"path\": \"b\", \"cache\": \"none\"}]}",
     "vm.json: disks[1].cache: unknown key (expected path, format, readonly, serial, "
     "snapshot_of, iops, iops_rd, iops_wr, iops_burst, bps, bps_rd, bps_wr, bps_burst)"},
    {"{\"version\": 1, \"devices\": [{\"type\": \"rng\", \"rate\": 5}]}",
     "vm.json: devices[0].rate: unknown key (expected no options)"},
    {"{\"version\": 1, \"limits\": {\"iops\": 5}}",
     "vm.json: limits.iops: unknown key (expected none)"},
    /* wrong types */
    {"{\"version\": \"1\"}", "vm.json: version: expected 1 (the only version this tessera reads)"},
    {"{\"version\": 1, \"cpus\": \"2\"}", "vm.json: cpus: expected an integer from 1 to 8"},
    {"{\"version\": 1, \"memory\": 536870912}",
     "vm.json: memory: expected a size between 16M and 64G in whole MiB, e.g. \"512M\""},
    {"{\"version\": 1, \"boot\": \"Image\"}", "vm.json: boot: expected an object"},
    {"{\"version\": 1, \"boot\": {\"kernel\": 5}}", "vm.json: boot.kernel: expected a string"},
    {"{\"version\": 1, \"disks\": {}}", "vm.json: disks: expected a list"},
    {"{\"version\": 1, \"disks\": [\"a.img\"]}", "vm.json: disks[0]: expected an object"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"readonly\": \"yes\"}]}",
     "vm.json: disks[0].readonly: expected true or false"},
    {"{\"version\": 1, \"disks\": [{\"path\": 7}]}", "vm.json: disks[0].path: expected a string"},
    {"{\"version\": 1, \"memory_merge\": \"on\"}", "vm.json: memory_merge: expected true or false"},
    {"{\"version\": 1, \"devices\": [{\"type\": \"balloon\", \"free_page_reporting\": 1}]}",
     "vm.json: devices[0].free_page_reporting: expected true or false"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"bps\": true}]}",
     "vm.json: disks[0].bps: expected a whole number >= 0"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"iops\": 2.5}]}",
     "vm.json: disks[0].iops: expected a whole number >= 0"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"iops\": -1}]}",
     "vm.json: disks[0].iops: expected a number >= 0"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"iops\": \"5K\"}]}",
     "vm.json: disks[0].iops: expected a whole number up to 72057594037927936 (0: unlimited)"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"bps_wr\": \"10Q\"}]}",
     "vm.json: disks[0].bps_wr: expected bytes, a whole number with an optional K, M, G or T "
     "suffix such as 10M (0: unlimited)"},
    {"{\"version\": 1, \"nics\": [{\"backend\": \"user\", \"rx_bps\": \"1,2\"}]}",
     "vm.json: nics[0].rx_bps: expected bytes, a whole number with an optional K, M, G or T "
     "suffix such as 10M (0: unlimited)"},
    {"{\"version\": 1, \"nics\": [{\"backend\": \"user\", \"tx_pps\": "
     "72057594037927937}]}",
     "vm.json: nics[0].tx_pps: expected a whole number up to 72057594037927936 (0: unlimited)"},
    /* out of range */
    {"{\"version\": 1, \"cpus\": 9}", "vm.json: cpus: expected an integer from 1 to 8"},
    {"{\"version\": 1, \"cpus\": 0}", "vm.json: cpus: expected an integer from 1 to 8"},
    {"{\"version\": 1, \"memory\": \"8M\"}",
     "vm.json: memory: expected a size between 16M and 64G in whole MiB, e.g. \"512M\""},
    {"{\"version\": 1, \"memory\": \"65G\"}",
     "vm.json: memory: expected a size between 16M and 64G in whole MiB, e.g. \"512M\""},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\", \"serial\": \"123456789012345678901\"}]}",
     "vm.json: disks[0].serial: expected at most 20 bytes, not 21"},
    {"{\"version\": 1, \"agent_socket\": "
     "\"/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
     "vm.json: agent_socket: expected a string of at most 107 bytes without NUL"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\"}, {\"path\": \"b\"}, {\"path\": \"c\"}, "
     "{\"path\": \"d\"}, {\"path\": \"e\"}, {\"path\": \"f\"}, {\"path\": \"g\"}, {\"path\": "
     "\"h\"}, {\"path\": \"i\"}]}",
     "vm.json: disks[8]: at most 8 virtio devices (disks, NICs and devices together)"},
    /* bad choices */
    {"{\"version\": 1, \"machine\": \"pc\"}", "vm.json: machine: expected virt"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\"}, {\"path\": \"b\", \"format\": \"vmdk\"}]}",
     "vm.json: disks[1].format: expected raw or qcow2"},
    {"{\"version\": 1, \"nics\": [{\"backend\": \"user\", \"mac\": \"01:00:5e:00:00:01\"}]}",
     "vm.json: nics[0].mac: expected a unicast address like 52:54:00:12:34:56"},
    {"{\"version\": 1, \"nics\": [{\"backend\": \"vde\"}]}",
     "vm.json: nics[0].backend: unknown network backend 'vde' (expected user, tap or socket)"},
    {"{\"version\": 1, \"devices\": [{\"type\": \"disk\", \"path\": \"a\"}]}",
     "vm.json: devices[0].type: expected rng, console, balloon (a disk goes in 'disks')"},
    {"{\"version\": 1, \"console\": {\"mode\": \"tty\"}}",
     "vm.json: console.mode: expected stdio or socket"},
    {"{\"version\": 1, \"console\": {\"mode\": \"socket\"}}",
     "vm.json: console.socket: required with console.mode socket"},
    {"{\"version\": 1, \"console\": {\"socket\": \"/c.sock\"}}",
     "vm.json: console.socket: given, so console.mode must be socket"},
    {"{\"version\": 1, \"console\": {\"mode\": \"socket\", \"socket\": 5}}",
     "vm.json: console.socket: expected a string"},
    {"{\"version\": 1, \"console\": {\"mode\": \"stdio\", \"log\": \"\"}}",
     "vm.json: console.log: expected a path, not an empty string"},
    /* values an option string could not carry */
    {"{\"version\": 1, \"disks\": [{\"path\": \"a,format=qcow2\"}]}",
     "vm.json: disks[0].path: expected text without ',' or control characters"},
    {"{\"version\": 1, \"disks\": [{\"path\": \"a\\u0000b\"}]}",
     "vm.json:1:44: not a JSON object (invalid JSON: \\u0000 is not allowed without "
     "JSON_ALLOW_NUL near '\"a\\u0000b\"')"},
};

static void test_bad_documents(void)
{
    for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
        struct vmconfig c;
        char err[VMCONFIG_ERR_LEN] = "";
        int r = vmconfig_parse(bad_docs[i].json, strlen(bad_docs[i].json), "vm.json", &c, err);

        CHECK(r == -EINVAL);
        CHECK(!strcmp(err, bad_docs[i].err));
        if (strcmp(err, bad_docs[i].err))
            fprintf(stderr, "  case %zu: got  '%s'\n          want '%s'\n", i, err,
                    bad_docs[i].err);
        CHECK(c.ndevices == 0 && c.kernel == NULL); /* emptied on failure */
    }
    {
        /* jansson quotes the bytes near a syntax error: a newline there stays out of the
         * one-line message (found by fuzz_vmconfig). */
        const char *doc = "{\"version\": 1, \"boot\": {\"cmdline\": \"a\\\n\"}}";
        struct vmconfig c;
        char err[VMCONFIG_ERR_LEN] = "";

        CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == -EINVAL);
        CHECK(err[0] && !strchr(err, '\n') && !strncmp(err, "vm.json:2:", 10));
    }
}

struct opts_case {
    const char *type;
    const char *opts;
    const char *back; /* the option string the conf gives back, or the exact error */
    bool ok;
};

static const struct opts_case opts_cases[] = {
    {"disk", "d.img", "d.img", true},
    {"disk", "file=a=b.img", "file=a=b.img", true}, /* a name with '=' cannot lead */
    {"disk", "file=d.img,readonly=yes,format=qcow2", "d.img,format=qcow2,readonly=on", true},
    {"disk", "d.img,format=raw,format=qcow2", "d.img,format=qcow2", true}, /* the last wins */
    {"disk", "d.img,readonly=garbage1", "--disk: readonly 'garbage1': expected on or off", false},
    {"disk", "d.img,format=qcow2qcow2qcow2qc",
     "--disk: format 'qcow2qcow2qcow2qc': expected raw or qcow2", false},
    {"disk", "d.img,cache=none", "--disk: unknown option 'cache=none'", false},
    {"disk", "d.img,,format=raw", "--disk: empty option (a stray ',')", false},
    {"disk", "format=raw",
     "--disk: file is missing (usage: --disk FILE[,format=raw|qcow2][,readonly=on][,serial=ID]"
     "[,iops=N][,bps=SIZE][,iops_rd=N][,iops_wr=N][,bps_rd=SIZE][,bps_wr=SIZE][,iops_burst=N]"
     "[,bps_burst=SIZE])",
     false},
    /* Rate limits: numbers, bytes with a suffix; written back in table order. */
    {"disk", "d.img,bps=10M,iops=500,bps_burst=1MiB,iops_wr=0",
     "d.img,iops=500,iops_wr=0,bps=10M,bps_burst=1MiB", true},
    {"disk", "d.img,iops=fast",
     "--disk: iops 'fast': expected a whole number up to 72057594037927936 (0: unlimited)", false},
    {"disk", "d.img,bps_rd=1.5M",
     "--disk: bps_rd '1.5M': expected bytes, a whole number with an optional K, M, G or T "
     "suffix such as 10M (0: unlimited)",
     false},
    {"net", "user,rx_bps=2621440,tx_pps=1000,hostfwd=tcp::22-:22,pps_burst=10",
     "user,hostfwd=tcp::22-:22,rx_bps=2621440,tx_pps=1000,pps_burst=10", true},
    {"net", "user,tx_bps=-5",
     "--net: tx_bps '-5': expected bytes, a whole number with an optional K, M, G or T suffix "
     "such as 10M (0: unlimited)",
     false},
    {"net", "user,mac=52:54:00:00:00:01,hostfwd=tcp::22-:22",
     "user,hostfwd=tcp::22-:22,mac=52:54:00:00:00:01", true},
    {"net", "user,link=maybe", "--net: link 'maybe': expected on or off", false},
    {"net", "user,mac=52:54:00:12:34:567",
     "--net: mac '52:54:00:12:34:567': expected at most 17 bytes, not 18", false},
    {"net", "nosuch", "--net: unknown network backend 'nosuch' (expected user, tap or socket)",
     false},
    {"console", "sock=/tmp/c.sock,agent=/tmp/a.sock", "sock=/tmp/c.sock,agent=/tmp/a.sock", true},
    {"console", "/tmp/c.sock",
     "--device console: unknown option '/tmp/c.sock' (expected key=value)", false},
    {"rng", "", "", true},
    {"rng", "x=1", "--device rng: unknown option 'x=1'", false},
    {"balloon", "", "", true},
};

/* Option strings and documents are two spellings of one tree. */
static void test_option_strings(void)
{
    for (size_t i = 0; i < sizeof(opts_cases) / sizeof(opts_cases[0]); i++) {
        const struct opts_case *k = &opts_cases[i];
        const struct vdev_type *t = vdev_type_find(k->type);
        char err[VDEV_ERR_LEN] = "";
        json_t *conf = NULL;
        char *back = NULL;
        int r;

        CHECK(t != NULL);
        if (!t)
            continue;
        r = vdev_opts_to_conf(t, k->opts, &conf, err);
        CHECK((r == 0) == k->ok);
        if (r == 0) {
            CHECK(vdev_conf_check(t, conf, "x", NULL, err) == 0);
            CHECK(vdev_conf_to_opts(t, conf, &back) == 0 && back && !strcmp(back, k->back));
        } else {
            CHECK(!strcmp(err, k->back));
        }
        if ((r == 0 && (!back || strcmp(back, k->back))) || (r != 0 && strcmp(err, k->back)))
            fprintf(stderr, "  case %zu (%s '%s'): got '%s'\n", i, k->type, k->opts,
                    r == 0 ? (back ? back : "(null)") : err);
        free(back);
        json_decref(conf);
    }
}

/* The typed hooks: a clone gets a new MAC and its sockets in its folder, nothing else
 * changes; vdev_conf_set() refuses what the table refuses. */
static void test_typed_hooks(void)
{
    struct vmconfig c;
    char err[VMCONFIG_ERR_LEN] = "", verr[VDEV_ERR_LEN] = "";
    const struct vdev_type *disk = vdev_type_find("disk");
    const char *mac;
    json_t *dconf;

    vmconfig_init(&c);
    CHECK(vmconfig_add_device(&c, "disk", "/vm/a.qcow2,format=qcow2", err) == 0);
    CHECK(vmconfig_add_device(&c, "net", "user,mac=52:54:00:12:34:56", err) == 0);
    CHECK(vmconfig_add_device(&c, "console", "sock=/vm/hvc0.sock", err) == 0);
    CHECK(vmconfig_set_agent_socket(&c, "/vm/agent.sock", err) == 0);
    CHECK(c.ndevices == 3);
    CHECK(vmconfig_clone(&c, "/clone", err) == 0);
    mac = json_string_value(json_object_get(c.devices[1].conf, "mac"));
    CHECK(mac && strlen(mac) == 17 && !strncmp(mac, "52:54:00:", 9) &&
          strcmp(mac, "52:54:00:12:34:56"));
    CHECK(
        !strcmp(json_string_value(json_object_get(c.devices[2].conf, "sock")), "/clone/hvc0.sock"));
    CHECK(!strcmp(json_string_value(json_object_get(c.devices[2].conf, "agent")),
                  "/clone/agent.sock"));
    CHECK(!strcmp(json_string_value(json_object_get(c.devices[0].conf, "path")), "/vm/a.qcow2"));

    dconf = c.devices[0].conf;
    CHECK(vdev_conf_set(disk, dconf, "format", json_string("vmdk"), verr) == -EINVAL);
    CHECK(!strcmp(verr, "disk.format: expected raw or qcow2"));
    CHECK(vdev_conf_set(disk, dconf, "mac", json_string("x"), verr) == -EINVAL);
    CHECK(vdev_conf_set(disk, dconf, "snapshot_of", json_string("/vm/old.qcow2"), verr) == 0);
    {
        char *opts = NULL;

        /* A snapshot's record never reaches the device. */
        CHECK(vdev_conf_to_opts(disk, dconf, &opts) == 0 && opts &&
              !strcmp(opts, "/vm/a.qcow2,format=qcow2"));
        free(opts);
    }
    CHECK(vdev_conf_set(disk, dconf, "snapshot_of", NULL, verr) == 0);
    CHECK(json_object_get(dconf, "snapshot_of") == NULL);
    vmconfig_free(&c);

    /* Too many devices from flags, and an agent socket that cannot be a unix address. */
    vmconfig_init(&c);
    for (int i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        CHECK(vmconfig_add_device(&c, "rng", "", err) == 0);
    CHECK(vmconfig_add_device(&c, "rng", "", err) == -EINVAL);
    CHECK(strstr(err, "at most 8 virtio devices") != NULL);
    vmconfig_free(&c);
    vmconfig_init(&c);
    CHECK(vmconfig_set_agent_socket(&c,
                                    "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                    err) == -EINVAL);
    CHECK(c.ndevices == 0);
    vmconfig_free(&c);
}

/* Rate limits travel through the document, the option strings the devices get and the
 * machine's config read back (describe, snapshot and migration headers) unchanged: numbers
 * stay numbers, a size stays as written. Only the limits are live. */
static void test_limits_round_trip(void)
{
    const char *doc = "{\"version\": 1, \"disks\": [{\"path\": \"a.img\", \"format\": \"raw\", "
                      "\"iops\": 500, \"bps\": \"10M\", \"bps_burst\": 1048576}], \"nics\": "
                      "[{\"backend\": \"user\", \"rx_bps\": 2621440, \"tx_bps\": \"20M\", "
                      "\"pps_burst\": 64}]}";
    const struct vdev_type *disk = vdev_type_find("disk"), *net = vdev_type_find("net");
    struct vmconfig c, back;
    struct virt_config v;
    char err[VMCONFIG_ERR_LEN] = "";
    json_t *j1, *j2;

    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    if (err[0])
        fprintf(stderr, "%s\n", err);
    CHECK(vmconfig_to_virt(&c, &v) == 0);
    CHECK(v.ndevices == 2 && !strcmp(v.devices[0].opts, "a.img,format=raw,iops=500,bps=10M,"
                                                        "bps_burst=1048576"));
    CHECK(v.ndevices == 2 &&
          !strcmp(v.devices[1].opts, "user,rx_bps=2621440,tx_bps=20M,pps_burst=64"));
    CHECK(vmconfig_from_virt(&v, &back, err) == 0);
    j1 = vmconfig_to_json(&c);
    j2 = vmconfig_to_json(&back);
    CHECK(same_json(j2, j1, "limits read back from the machine"));
    json_decref(j1);
    json_decref(j2);
    vmconfig_free(&back);
    virt_config_free(&v);
    vmconfig_free(&c);

    CHECK(vdev_opt_find(disk, "bps_wr") && vdev_opt_find(disk, "bps_wr")->live);
    CHECK(vdev_opt_find(net, "tx_pps") && vdev_opt_find(net, "tx_pps")->live);
    CHECK(vdev_opt_find(disk, "path") && !vdev_opt_find(disk, "path")->live);
    CHECK(vdev_opt_find(net, "mac") && !vdev_opt_find(net, "mac")->live);
    CHECK(vdev_opt_find(disk, "rx_bps") == NULL);
}

/* The serial console's socket and log travel through the document and back. */
static void test_console(void)
{
    const char *doc = "{\"version\": 1, \"console\": {\"mode\": \"socket\", \"socket\": "
                      "\"/vm/console.sock\", \"log\": \"/vm/console.log\"}}";
    struct vmconfig c, back;
    char err[VMCONFIG_ERR_LEN] = "", *text;

    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    CHECK(c.console_socket && !strcmp(c.console_socket, "/vm/console.sock"));
    CHECK(c.console_log && !strcmp(c.console_log, "/vm/console.log"));
    text = vmconfig_dumps(&c);
    CHECK(text && strstr(text, "\"console\":{\"mode\":\"socket\""));
    CHECK(text && vmconfig_parse(text, strlen(text), "dump", &back, err) == 0);
    CHECK(back.console_socket && !strcmp(back.console_socket, "/vm/console.sock"));
    CHECK(back.console_log && !strcmp(back.console_log, "/vm/console.log"));
    free(text);
    vmconfig_free(&back);
    vmconfig_free(&c);
    /* The default: stdio, no log. */
    vmconfig_init(&c);
    text = vmconfig_dumps(&c);
    CHECK(text && strstr(text, "\"console\":{\"mode\":\"stdio\"}"));
    free(text);
    vmconfig_free(&c);
}

static void test_sizes(void)
{
    uint64_t v = 0;

    CHECK(vmconfig_parse_size("512", &v) == 0 && v == 512ull << 20);
    CHECK(vmconfig_parse_size("2G", &v) == 0 && v == 2ull << 30);
    CHECK(vmconfig_parse_size("1GiB", &v) == 0 && v == 1ull << 30);
    CHECK(vmconfig_parse_size("64k", &v) == 0 && v == 64ull << 10);
    CHECK(vmconfig_parse_size("-1", &v) == -EINVAL);
    CHECK(vmconfig_parse_size(" 1G", &v) == -EINVAL);
    CHECK(vmconfig_parse_size("1Gb", &v) == -EINVAL);
    CHECK(vmconfig_parse_size("99999999999T", &v) == -EINVAL);
}

/* cpu_engine names the engine the machine gets, and survives describe (and so a snapshot's
 * header); without it the machine gets the default. */
static void test_cpu_engine(void)
{
    const char *doc = "{\"version\": 1, \"cpu_engine\": \"interp\"}";
    char err[VMCONFIG_ERR_LEN] = "";
    struct vmconfig c, back;
    struct virt_config v;
    char *text;

    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    CHECK(c.cpu_engine && !strcmp(c.cpu_engine, "interp"));
    CHECK(vmconfig_to_virt(&c, &v) == 0);
    CHECK(v.cpu_engine && !strcmp(v.cpu_engine, "interp"));
    text = vmconfig_dumps(&c);
    CHECK(text && vmconfig_parse(text, strlen(text), "dump", &back, err) == 0);
    CHECK(text && back.cpu_engine && !strcmp(back.cpu_engine, "interp"));
    if (text)
        vmconfig_free(&back);
    free(text);
    virt_config_free(&v);
    vmconfig_free(&c);

    doc = "{\"version\": 1}";
    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    CHECK(c.cpu_engine == NULL);
    CHECK(vmconfig_to_virt(&c, &v) == 0);
    CHECK(v.cpu_engine == NULL);
    virt_config_free(&v);
    vmconfig_free(&c);
}

/* memory_merge false reaches the machine and survives describe (so a snapshot's header and a
 * migration carry it); absent, the machine merges and the document does not name it. The
 * balloon's free_page_reporting travels the same way, as an option of its device. */
static void test_memory_merge(void)
{
    const char *doc = "{\"version\": 1, \"memory_merge\": false, \"devices\": [{\"type\": "
                      "\"balloon\", \"free_page_reporting\": false}]}";
    char err[VMCONFIG_ERR_LEN] = "";
    struct vmconfig c, back;
    struct virt_config v;
    char *text;

    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    CHECK(c.memory_merge_off);
    CHECK(vmconfig_to_virt(&c, &v) == 0);
    CHECK(v.mem_merge_off);
    CHECK(v.ndevices == 1 && !strcmp(v.devices[0].opts, "free_page_reporting=off"));
    vmconfig_free(&c);
    CHECK(vmconfig_from_virt(&v, &back, err) == 0);
    text = vmconfig_dumps(&back);
    CHECK(text && strstr(text, "\"memory_merge\":false") &&
          strstr(text, "{\"free_page_reporting\":false,\"type\":\"balloon\"}"));
    vmconfig_free(&back);
    CHECK(text && vmconfig_parse(text, strlen(text), "describe", &back, err) == 0);
    CHECK(text && back.memory_merge_off);
    if (text)
        vmconfig_free(&back);
    free(text);
    virt_config_free(&v);

    doc = "{\"version\": 1, \"memory_merge\": true, \"devices\": [{\"type\": \"balloon\"}]}";
    CHECK(vmconfig_parse(doc, strlen(doc), "vm.json", &c, err) == 0);
    CHECK(!c.memory_merge_off);
    CHECK(vmconfig_to_virt(&c, &v) == 0);
    CHECK(!v.mem_merge_off);
    CHECK(v.ndevices == 1 && !strcmp(v.devices[0].opts, ""));
    text = vmconfig_dumps(&c);
    CHECK(text && !strstr(text, "memory_merge"));
    free(text);
    virt_config_free(&v);
    vmconfig_free(&c);
}

int main(void)
{
    test_memory_merge();
    test_cpu_engine();
    test_documented_example();
    test_describe_golden();
    test_bad_documents();
    test_option_strings();
    test_typed_hooks();
    test_limits_round_trip();
    test_console();
    test_sizes();
    return test_finish("vmconfig");
}
