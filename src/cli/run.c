/* `tessera run`: one VM in the foreground, its serial console on stdin/stdout or a socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/console.h"
#include "base/log.h"
#include "base/time.h"
#include "cpu/engine.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/migrate.h"
#include "vmm/transport.h"
#include "vmm/console_server.h"
#include "vmm/sandbox.h"
#include "vmm/vm_api.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate.h"

#define RUN_DEFAULT_MEM    (256ull << 20)
#define RUN_DEFAULT_APPEND "console=ttyS0"

static void run_usage(FILE *out)
{
    fprintf(out,
            "Usage: tessera run [OPTIONS]\n"
            "\n"
            "Boots a RISC-V RV64GC virtual machine (QEMU `virt` board layout) with its serial\n"
            "console on stdin/stdout. With no options it boots the default guest:\n"
            "OpenSBI, build/guest/Image and build/guest/initramfs.cpio.gz.\n"
            "\n"
            "  --bios FILE     firmware: a RISC-V ELF (loaded at its own addresses) or a flat\n"
            "                  binary (loaded at 0x80000000). Default: OpenSBI fw_dynamic from\n"
            "                  Debian's opensbi package. Given without --kernel, FILE runs\n"
            "                  bare-metal with no kernel.\n"
            "  --kernel FILE   Linux kernel: a RISC-V Image or ELF (default: the default guest)\n"
            "  --initrd FILE   initial ramdisk (default: the default guest's initramfs)\n"
            "  --append STR    kernel command line (default: \"%s\")\n"
            "  --mem SIZE      guest RAM, e.g. 512M or 2G; a plain number means MiB\n"
            "                  (default: 256M, range 16M-64G)\n"
            "  --mem-merge on|off  offer guest RAM to the host's page merging (KSM) when the\n"
            "                  host runs it (default: on)\n"
            "  --cpus N        number of harts, 1-%d, one host thread each (default: 1)\n"
            "  --cpu-engine NAME  what runs the harts: jit (hot code translated to x86-64;\n"
            "                  x86-64 hosts, their default) or interp (the interpreter, the\n"
            "                  default elsewhere)\n"
            "  --device TYPE[,OPTS]  add a virtio device (up to %d); types below\n"
            "  --disk OPTS     the same as --device disk,OPTS (the first disk is /dev/vda)\n"
            "  --net OPTS      the same as --device net,OPTS\n"
            "  --agent-sock PATH  serve the guest agent's channel on a unix socket at PATH\n"
            "  --api-sock PATH    serve the control API (HTTP/JSON, docs/api.md) at PATH\n"
            "  --console stdio|sock=PATH[,log=FILE]  the serial console: on stdin/stdout\n"
            "                     (stdio, the default) or on a unix socket at PATH that any\n"
            "                     number of `tessera console --sock PATH` clients attach to;\n"
            "                     log=FILE appends all output to FILE (docs/console.md)\n"
            "  --restore FILE     continue the VM saved by `tessera vm snapshot` (its disks\n"
            "                     revert to the snapshot)\n"
            "  --clone DIR [--full]  with --restore: a clone with its own disks in DIR\n"
            "                     (overlays, or full copies), a new MAC and identity\n"
            "  --incoming tcp:HOST:PORT  wait for `tessera vm migrate` and run the VM it sends\n"
            "  --incoming tls:HOST:PORT  the same over mutual TLS: needs the three --tls-*;\n"
            "                     a source whose certificate is not from --tls-ca is refused\n"
            "                     before any state is read, and the next one is awaited\n"
            "  --tls-cert FILE    with tls: this end's certificate (PEM); the source checks that\n"
            "                     it names HOST (a DNS or IP subject alternative name)\n"
            "  --tls-key FILE     with tls: its private key (PEM, unencrypted)\n"
            "  --tls-ca FILE      with tls: the CA certificate(s) a source's must chain to\n"
            "  --progress-timeout S  with --incoming: give up when no byte arrives for S\n"
            "                     seconds, 1-%d (default: %d)\n"
            "  --disk-dir DIR     with --incoming: where the disks of a migration that copies\n"
            "                     them (`migrate --copy-disks`) go (default: the same paths)\n"
            "  --config FILE   the VM as one JSON document (docs/vm-config.md); the flags\n"
            "                  above override its values, and --disk, --net and --device add\n"
            "                  devices to its own. `tessera vm describe` prints one.\n"
            "  --sandbox on|off  after set-up, run with no-new-privs, a seccomp filter that\n"
            "                  kills the process on any system call outside its allow-list,\n"
            "                  and, when started as root, as --user (default: on; see\n"
            "                  docs/sandbox.md). `selftest` is a test hook: on, then one\n"
            "                  forbidden call, so the process must die of SIGSYS\n"
            "  --user NAME     the user the sandbox switches to when root (default: nobody)\n"
            "  -h, --help      this text\n"
            "\n"
            "Console: on a terminal, Ctrl-A x quits and Ctrl-A h lists the other keys; from a\n"
            "pipe, input is delivered once the guest's serial driver is ready, so\n"
            "`printf 'uname -m\\npoweroff\\n' | tessera run` works. Output never stops the\n"
            "guest: a reader that stalls loses the oldest output beyond 1 MiB instead.\n"
            "\n"
            "Exit status: 0 when the guest powers off, the guest's code when it reports a\n"
            "failure through the test device, 2 for bad options, 1 for other errors.\n",
            RUN_DEFAULT_APPEND, VIRT_MAX_CPUS, VIRT_VIRTIO_SLOTS, VM_MIGRATE_TIMEOUT_MAX_S,
            VM_MIGRATE_TIMEOUT_DEFAULT_S);
    fprintf(out, "\nDevice types:\n");
    for (const struct vdev_type *t = vdev_type_first(); t; t = t->next)
        fprintf(out, "  %-8s %s\n           %s\n", t->name, t->summary, t->usage);
}

/* Adds a virtio device flag to the list: `type` with `opts`, or for --device the type is the
 * text before the first comma of `arg`. The strings live as long as argv. */
static int add_device(struct virt_config *cfg, const char *type, char *arg)
{
    struct virt_device_spec *spec;

    if (cfg->ndevices == VIRT_VIRTIO_SLOTS) {
        fprintf(stderr, "tessera: at most %d virtio devices (--device, --disk, --net)\n",
                VIRT_VIRTIO_SLOTS);
        return -1;
    }
    spec = &cfg->devices[cfg->ndevices];
    if (type) {
        spec->type = type;
        spec->opts = arg;
    } else {
        char *comma = strchr(arg, ',');

        spec->type = arg;
        spec->opts = comma ? comma + 1 : "";
        if (comma)
            *comma = 0;
        if (!vdev_type_find(spec->type)) {
            fprintf(stderr,
                    "tessera: --device '%s': unknown device type (see `tessera run "
                    "--help`)\n",
                    spec->type);
            return -1;
        }
    }
    if (!vdev_type_find(spec->type)) {
        fprintf(stderr, "tessera: --%s is not available in this build\n", spec->type);
        return -1;
    }
    cfg->ndevices++;
    return 0;
}

/* Sets *dst to a copy of src when src is given. 0 or -ENOMEM. */
static int replace_str(char **dst, const char *src)
{
    char *copy;

    if (!src)
        return 0;
    copy = strdup(src);
    if (!copy) {
        fprintf(stderr, "tessera: out of memory\n");
        return -ENOMEM;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

/* The default guest lives beside the binary: <dir of tessera>/guest/. */
static char *default_guest_file(const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash, *path;

    if (n <= 0)
        return NULL;
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    if (asprintf(&path, "%s/guest/%s", exe, name) < 0)
        return NULL;
    return path;
}

/* --restore FILE: the snapshot's machine, ready to run. 0 or the exit status. */
static int restore_file(const char *path, const struct vm_restore_opts *ro, struct virt_machine **m,
                        bool *cloned)
{
    char err[VMSTATE_ERR_LEN];
    uint64_t t0 = time_now_ns();
    struct transport *t;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tessera: --restore %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (transport_plain(fd, true, &t)) {
        fprintf(stderr, "tessera: --restore %s: out of memory\n", path);
        close(fd);
        return 1;
    }
    if (ro->clone_dir && mkdir(ro->clone_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "tessera: --clone %s: %s\n", ro->clone_dir, strerror(errno));
        transport_close(t);
        return 1;
    }
    if (vm_restore(t, path, ro, m, cloned, err)) {
        fprintf(stderr, "tessera: --restore: %s\n", err);
        transport_close(t);
        return 1;
    }
    transport_close(t);
    log_info("restored %s in %.1f ms", path, (double)(time_now_ns() - t0) / 1e6);
    return 0;
}

/* --incoming URI: waits for one migration stream and builds its machine. 0 or the exit
 * status. */
static int receive_migration(const char *uri, const struct vm_incoming_opts *io,
                             struct virt_machine **m)
{
    char err[VM_MIGRATE_ERR_LEN];
    int ret = vm_migrate_incoming(uri, io, m, err);

    if (ret) {
        fprintf(stderr, "tessera: --incoming: %s\n", err);
        return ret == -EINVAL ? 2 : 1;
    }
    return 0;
}

/* Client input for the UART (console_input_fn), on the console's drain thread. */
static size_t run_console_input(void *opaque, const uint8_t *buf, size_t len)
{
    return virt_console_input(opaque, buf, len);
}

int cli_run(int argc, char **argv)
{
    enum {
        OPT_BIOS = 256,
        OPT_KERNEL,
        OPT_INITRD,
        OPT_APPEND,
        OPT_MEM,
        OPT_CPUS,
        OPT_DEVICE,
        OPT_DISK,
        OPT_NET,
        OPT_AGENT_SOCK,
        OPT_API_SOCK,
        OPT_RESTORE,
        OPT_INCOMING,
        OPT_CLONE,
        OPT_FULL,
        OPT_DISK_DIR,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_TLS_CA,
        OPT_PROGRESS_TIMEOUT,
        OPT_CONFIG,
        OPT_CONSOLE,
        OPT_SANDBOX,
        OPT_USER,
        OPT_CPU_ENGINE,
        OPT_MEM_MERGE,
    };
    static const struct option opts[] = {
        {"bios", required_argument, NULL, OPT_BIOS},
        {"kernel", required_argument, NULL, OPT_KERNEL},
        {"initrd", required_argument, NULL, OPT_INITRD},
        {"append", required_argument, NULL, OPT_APPEND},
        {"mem", required_argument, NULL, OPT_MEM},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"cpu-engine", required_argument, NULL, OPT_CPU_ENGINE},
        {"mem-merge", required_argument, NULL, OPT_MEM_MERGE},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"disk", required_argument, NULL, OPT_DISK},
        {"net", required_argument, NULL, OPT_NET},
        {"agent-sock", required_argument, NULL, OPT_AGENT_SOCK},
        {"api-sock", required_argument, NULL, OPT_API_SOCK},
        {"restore", required_argument, NULL, OPT_RESTORE},
        {"incoming", required_argument, NULL, OPT_INCOMING},
        {"clone", required_argument, NULL, OPT_CLONE},
        {"full", no_argument, NULL, OPT_FULL},
        {"disk-dir", required_argument, NULL, OPT_DISK_DIR},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"progress-timeout", required_argument, NULL, OPT_PROGRESS_TIMEOUT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"console", required_argument, NULL, OPT_CONSOLE},
        {"sandbox", required_argument, NULL, OPT_SANDBOX},
        {"user", required_argument, NULL, OPT_USER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct virt_config cfg = {.cpus = 1, .mem_size = RUN_DEFAULT_MEM, .console_fd = STDOUT_FILENO};
    struct virt_machine *m;
    struct vmconfig vc = {0};
    struct virt_config mcfg = {0};
    char verr[VMCONFIG_ERR_LEN];
    const char *config_path = NULL;
    const char *cpu_engine = NULL;
    const char *mem_merge = NULL; /* --mem-merge on|off; NULL: the document's */
    const char *agent_sock = NULL;
    const char *api_sock = NULL;
    struct vm_api *api = NULL;
    const char *restore = NULL, *incoming = NULL;
    struct vm_incoming_opts io = {.restore = {.console_fd = STDOUT_FILENO}};
    struct vm_restore_opts ro = {.console_fd = STDOUT_FILENO};
    bool incoming_opts = false;
    struct console_server_opts co = {.out_fd = STDOUT_FILENO};
    struct console_server *cs = NULL;
    char cerr[256];
    bool machine_opts = false, cloned = false, console_given = false;
    struct sandbox_opts sb = {0};
    char sberr[SANDBOX_ERR_LEN];
    bool sandboxed;
    int c, status;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_BIOS:
            cfg.bios = optarg;
            machine_opts = true;
            break;
        case OPT_KERNEL:
            cfg.kernel = optarg;
            machine_opts = true;
            break;
        case OPT_INITRD:
            cfg.initrd = optarg;
            machine_opts = true;
            break;
        case OPT_APPEND:
            machine_opts = true;
            cfg.append = optarg;
            break;
        case OPT_MEM:
            if (vmconfig_parse_size(optarg, &cfg.mem_size) || cfg.mem_size < VIRT_MIN_MEM ||
                cfg.mem_size > VIRT_MAX_MEM || (cfg.mem_size & 0xfffff)) {
                fprintf(stderr,
                        "tessera: --mem '%s': expected a size from 16M to 64G in whole MiB, "
                        "e.g. 512M or 2G\n",
                        optarg);
                return 2;
            }
            ro.want_mem = cfg.mem_size;
            break;
        case OPT_CPUS: {
            char *end;
            long n = strtol(optarg, &end, 10);

            if (!*optarg || *end || n < 1 || n > VIRT_MAX_CPUS) {
                fprintf(stderr, "tessera: --cpus '%s': expected a number from 1 to %d\n", optarg,
                        VIRT_MAX_CPUS);
                return 2;
            }
            cfg.cpus = (unsigned)n;
            ro.want_cpus = cfg.cpus;
            break;
        }
        case OPT_MEM_MERGE:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                fprintf(stderr, "tessera: --mem-merge '%s': expected on or off\n", optarg);
                return 2;
            }
            mem_merge = optarg;
            machine_opts = true;
            break;
        case OPT_CPU_ENGINE:
            if (!cpu_engine_find(optarg)) {
                char known[128];

                cpu_engine_list(known, sizeof(known));
                fprintf(stderr, "tessera: --cpu-engine '%s': expected one of %s\n", optarg, known);
                return 2;
            }
            cpu_engine = optarg;
            machine_opts = true;
            break;
        case OPT_DEVICE:
        case OPT_DISK:
        case OPT_NET:
            if (add_device(&cfg, c == OPT_DISK ? "disk" : c == OPT_NET ? "net" : NULL, optarg))
                return 2;
            machine_opts = true;
            break;
        case OPT_AGENT_SOCK:
            /* sun_path holds 107 bytes and the NUL (unix(7)). */
            if (!*optarg || strlen(optarg) > 107) {
                fprintf(stderr,
                        "tessera: --agent-sock: the path must be 1 to 107 bytes (a unix socket "
                        "address), not %zu\n",
                        strlen(optarg));
                return 2;
            }
            agent_sock = optarg;
            machine_opts = true;
            break;
        case OPT_API_SOCK: api_sock = optarg; break;
        case OPT_RESTORE: restore = optarg; break;
        case OPT_INCOMING: incoming = optarg; break;
        case OPT_CLONE: ro.clone_dir = optarg; break;
        case OPT_FULL: ro.full_clone = true; break;
        case OPT_DISK_DIR: ro.disk_dir = optarg; break;
        case OPT_TLS_CERT:
            io.tls.cert = optarg;
            incoming_opts = true;
            break;
        case OPT_TLS_KEY:
            io.tls.key = optarg;
            incoming_opts = true;
            break;
        case OPT_TLS_CA:
            io.tls.ca = optarg;
            incoming_opts = true;
            break;
        case OPT_PROGRESS_TIMEOUT: {
            char *end;
            long n = strtol(optarg, &end, 10);

            if (!*optarg || *end || n < 1 || n > VM_MIGRATE_TIMEOUT_MAX_S) {
                fprintf(stderr, "tessera: --progress-timeout '%s': expected seconds from 1 to %d\n",
                        optarg, VM_MIGRATE_TIMEOUT_MAX_S);
                return 2;
            }
            io.progress_timeout_s = (unsigned)n;
            incoming_opts = true;
            break;
        }
        case OPT_CONFIG:
            config_path = optarg;
            machine_opts = true;
            break;
        case OPT_CONSOLE:
            if (console_server_parse_opts(optarg, STDOUT_FILENO, &co, cerr, sizeof(cerr))) {
                fprintf(stderr, "tessera: %s\n", cerr);
                return 2;
            }
            console_given = true;
            break;
        case OPT_SANDBOX:
            sb.off = !strcmp(optarg, "off");
            sb.selftest = !strcmp(optarg, "selftest");
            if (!sb.off && !sb.selftest && strcmp(optarg, "on")) {
                fprintf(stderr, "tessera: --sandbox '%s': expected on or off\n", optarg);
                return 2;
            }
            break;
        case OPT_USER: sb.user = optarg; break;
        case 'h': run_usage(stdout); return 0;
        case ':':
            fprintf(stderr, "tessera: option '%s' needs a value (see `tessera run --help`)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "tessera: unknown option '%s' (see `tessera run --help`)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tessera: unexpected argument '%s' (see `tessera run --help`)\n",
                argv[optind]);
        return 2;
    }

    if (incoming_opts && !incoming) {
        fprintf(stderr, "tessera: --tls-cert, --tls-key, --tls-ca and --progress-timeout apply to "
                        "--incoming\n");
        return 2;
    }
    if (sandbox_check(&sb, sberr)) {
        fprintf(stderr, "tessera: %s\n", sberr);
        return 2;
    }

    if (restore || incoming) {
        const char *what = restore ? "--restore" : "--incoming";

        if ((restore && incoming) || machine_opts || (restore && (ro.want_cpus || ro.want_mem))) {
            fprintf(stderr,
                    "tessera: %s takes the machine from the %s: give no --kernel, --disk, "
                    "--net, --device, --agent-sock, --cpu-engine, --mem-merge, --config%s\n",
                    what, restore ? "snapshot" : "stream",
                    restore ? ", --cpus, --mem or --incoming" : " (--cpus and --mem are checked)");
            return 2;
        }
        if (ro.clone_dir && !restore) {
            fprintf(stderr, "tessera: --clone applies to --restore\n");
            return 2;
        }
        if (ro.disk_dir && !incoming) {
            fprintf(stderr, "tessera: --disk-dir applies to --incoming\n");
            return 2;
        }
        if (ro.disk_dir && access(ro.disk_dir, W_OK) != 0) {
            fprintf(stderr, "tessera: --disk-dir %s: %s\n", ro.disk_dir, strerror(errno));
            return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        if (console_server_create(&co, &cs, cerr, sizeof(cerr))) {
            fprintf(stderr, "tessera: %s\n", cerr);
            return 1;
        }
        ro.console_ring = console_server_ring(cs);
        io.restore = ro;
        status = restore ? restore_file(restore, &ro, &m, &cloned)
                         : receive_migration(incoming, &io, &m);
        if (status)
            goto out;
        goto run;
    }
    if (ro.clone_dir || ro.full_clone || ro.disk_dir) {
        fprintf(stderr, "tessera: %s\n",
                ro.disk_dir ? "--disk-dir applies to --incoming"
                            : "--clone and --full apply to --restore");
        return 2;
    }

    /* The machine is the document (--config FILE, or an empty one) with the flags applied:
     * a flag's value overrides the document's, a device flag adds a device. */
    if (config_path ? vmconfig_load_file(config_path, &vc, verr) : (vmconfig_init(&vc), 0)) {
        fprintf(stderr, "tessera: --config %s\n", verr);
        return 2;
    }
    if (ro.want_cpus)
        vc.cpus = ro.want_cpus;
    if (ro.want_mem)
        vc.mem_size = ro.want_mem;
    if (mem_merge)
        vc.memory_merge_off = !strcmp(mem_merge, "off");
    if (replace_str(&vc.firmware, cfg.bios) || replace_str(&vc.kernel, cfg.kernel) ||
        replace_str(&vc.initrd, cfg.initrd) || replace_str(&vc.cmdline, cfg.append) ||
        replace_str(&vc.api_socket, api_sock) || replace_str(&vc.cpu_engine, cpu_engine)) {
        status = 1;
        goto out;
    }
    api_sock = vc.api_socket;
    /* --console replaces the document's console; without it the document's is used. */
    if (console_given) {
        free(vc.console_socket);
        free(vc.console_log);
        vc.console_socket = vc.console_log = NULL;
        if (replace_str(&vc.console_socket, co.sock_path) ||
            replace_str(&vc.console_log, co.log_path)) {
            status = 1;
            goto out;
        }
    }
    co.sock_path = vc.console_socket;
    co.log_path = vc.console_log;
    co.out_fd = vc.console_socket ? -1 : STDOUT_FILENO;
    for (unsigned i = 0; i < cfg.ndevices; i++) {
        if (vmconfig_add_device(&vc, cfg.devices[i].type, cfg.devices[i].opts, verr)) {
            fprintf(stderr, "tessera: %s\n", verr);
            status = 2;
            goto out;
        }
    }
    /* The agent channel is a port of the virtio-console device. */
    if (agent_sock && vmconfig_set_agent_socket(&vc, agent_sock, verr)) {
        fprintf(stderr, "tessera: --agent-sock: %s\n", verr);
        status = 2;
        goto out;
    }

    /* No firmware and no kernel given: the default guest. --bios alone: bare metal. */
    if (!vc.firmware && !vc.kernel) {
        vc.kernel = default_guest_file("Image");
        if (!vc.initrd)
            vc.initrd = default_guest_file("initramfs.cpio.gz");
        if (!vc.kernel || access(vc.kernel, R_OK) != 0) {
            fprintf(stderr,
                    "tessera: the default guest kernel %s is missing: build it with "
                    "guest/build.sh, or pass --kernel\n",
                    vc.kernel ? vc.kernel : "build/guest/Image");
            status = 1;
            goto out;
        }
    }
    if ((!vc.firmware && replace_str(&vc.firmware, VIRT_DEFAULT_BIOS)) ||
        (vc.kernel && !vc.cmdline && replace_str(&vc.cmdline, RUN_DEFAULT_APPEND))) {
        status = 1;
        goto out;
    }
    if (!vc.kernel && vc.initrd) {
        fprintf(stderr, "tessera: --initrd needs --kernel\n");
        status = 2;
        goto out;
    }
    /* The tree the flags built is checked as a --config document is: what describe prints of
     * this VM is then always a document that --config accepts. */
    {
        char *text = vmconfig_dumps(&vc);
        struct vmconfig check;

        if (!text || vmconfig_parse(text, strlen(text), "command line", &check, verr)) {
            fprintf(stderr, "tessera: %s\n", text ? verr : "out of memory");
            free(text);
            status = 2;
            goto out;
        }
        free(text);
        vmconfig_free(&check);
    }
    if (vmconfig_to_virt(&vc, &mcfg)) {
        fprintf(stderr, "tessera: out of memory\n");
        status = 1;
        goto out;
    }
    mcfg.console_fd = STDOUT_FILENO;

    /* A closed stdout must not kill the VMM from inside a console write. */
    signal(SIGPIPE, SIG_IGN);
    if (console_server_create(&co, &cs, cerr, sizeof(cerr))) {
        fprintf(stderr, "tessera: %s\n", cerr);
        status = 1;
        goto out;
    }
    mcfg.console_ring = console_server_ring(cs);
    if (virt_create(&mcfg, &m)) {
        status = 1;
        goto out;
    }
run:
    if (api_sock) {
        char aerr[CONTROL_ERR_LEN];

        if (vm_api_start(m, api_sock, co.sock_path, co.log_path, &api, aerr)) {
            fprintf(stderr, "tessera: --api-sock %s\n", aerr);
            virt_destroy(m);
            status = 1;
            goto out;
        }
    }
    /* stdin is the console's input only when stdout is its output (--console stdio); with a
     * socket, the clients type. */
    if (console_server_start(cs, run_console_input, m) || (co.out_fd >= 0 && console_start(m))) {
        fprintf(stderr, "tessera: cannot start the console threads\n");
        vm_api_stop(api);
        console_server_stop(cs);
        virt_destroy(m);
        status = 1;
        goto out;
    }
    /* Everything is open and every thread started: from here on the process runs as the
     * sandbox allows, before the guest's first instruction (docs/sandbox.md). */
    sandboxed = sandbox_enter(&sb, sberr) == 0;
    if (!sandboxed || sb.selftest) {
        if (sandboxed)
            sandbox_selftest(); /* returns only if the filter let execve through */
        else
            fprintf(stderr, "tessera: sandbox: %s\n", sberr);
        vm_api_stop(api);
        console_stop();
        console_server_stop(cs);
        virt_destroy(m);
        status = 1;
        goto out;
    }
    if (cloned)
        vm_clone_notify_agent(m);
    status = virt_run(m);
    vm_api_stop(api); /* no API call may reach the machine once it is torn down */
    console_stop();
    console_server_stop(cs); /* the harts have stopped: the last output goes out now */
    /* Destroying the machine flushes and closes its disks: a guest that powered off after a
     * sync must find its data in the image. */
    virt_destroy(m);
    fflush(stdout);
    status &= 0xff;

out:
    vmconfig_free(&vc);
    virt_config_free(&mcfg);
    console_server_destroy(cs); /* after the machine: the UART writes its ring */
    return status;
}
