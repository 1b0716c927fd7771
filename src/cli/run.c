/* `tessera run`: one VM in the foreground, its serial console on stdin/stdout. */
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
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/console.h"
#include "base/log.h"
#include "base/time.h"
#include "hw/virtio/vdev.h"
#include "machine/virt.h"
#include "vmm/sandbox.h"
#include "vmm/vm_api.h"
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
            "  --cpus N        number of harts, 1-%d, one host thread each (default: 1)\n"
            "  --device TYPE[,OPTS]  add a virtio device (up to %d); types below\n"
            "  --disk OPTS     the same as --device disk,OPTS (the first disk is /dev/vda)\n"
            "  --net OPTS      the same as --device net,OPTS\n"
            "  --agent-sock PATH  serve the guest agent's channel on a unix socket at PATH\n"
            "  --api-sock PATH    serve the control API (HTTP/JSON, docs/api.md) at PATH\n"
            "  --restore FILE     continue the VM saved by `tessera vm snapshot` (its disks\n"
            "                     revert to the snapshot)\n"
            "  --clone DIR [--full]  with --restore: a clone with its own disks in DIR\n"
            "                     (overlays, or full copies), a new MAC and identity\n"
            "  --incoming tcp:HOST:PORT  wait for `tessera vm migrate` and run the VM it sends\n"
            "  --disk-dir DIR     with --incoming: where the disks of a migration that copies\n"
            "                     them (`migrate --copy-disks`) go (default: the same paths)\n"
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
            "`printf 'uname -m\\npoweroff\\n' | tessera run` works.\n"
            "\n"
            "Exit status: 0 when the guest powers off, the guest's code when it reports a\n"
            "failure through the test device, 2 for bad options, 1 for other errors.\n",
            RUN_DEFAULT_APPEND, VIRT_MAX_CPUS, VIRT_VIRTIO_SLOTS);
    fprintf(out, "\nDevice types:\n");
    for (const struct vdev_type *t = vdev_type_first(); t; t = t->next)
        fprintf(out, "  %-8s %s\n           %s\n", t->name, t->summary, t->usage);
}

/* Parses SIZE as QEMU does for -m: a number with an optional K, M, G or T suffix; no suffix
 * means MiB. Returns 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 20;

    if (!*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K': shift = 10; break;
        case 'm':
        case 'M': shift = 20; break;
        case 'g':
        case 'G': shift = 30; break;
        case 't':
        case 'T': shift = 40; break;
        default: return -1;
        }
        if (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
            return -1;
    }
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Adds a virtio device: `type` with `opts`, or for --device the type is the text before the
 * first comma of `arg`. The strings live as long as argv. */
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
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "tessera: --restore %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (ro->clone_dir && mkdir(ro->clone_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "tessera: --clone %s: %s\n", ro->clone_dir, strerror(errno));
        close(fd);
        return 1;
    }
    if (vm_restore(fd, path, ro, m, cloned, err)) {
        fprintf(stderr, "tessera: --restore: %s\n", err);
        close(fd);
        return 1;
    }
    close(fd);
    log_info("restored %s in %.1f ms", path, (double)(time_now_ns() - t0) / 1e6);
    return 0;
}

/* After a refusal: reads (and drops) what the source still sends for up to a second before
 * the connection closes, so that the close does not reset it and the source reads our "ERR"
 * line rather than only "connection reset". */
static void drain_briefly(int fd)
{
    uint64_t end = time_now_ns() + 1000000000ull;
    char buf[65536];

    shutdown(fd, SHUT_WR);
    while (time_now_ns() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        int wait_ms = (int)((end - time_now_ns()) / 1000000) + 1;

        if (poll(&p, 1, wait_ms) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
            break;
    }
}

/* --incoming tcp:HOST:PORT: waits for one migration stream, loads it, and answers the source
 * "OK" (the source then exits) or "ERR why". 0 or the exit status. */
static int receive_migration(const char *uri, const struct vm_restore_opts *ro,
                             struct virt_machine **m)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    char host[VM_URI_HOST_MAX], port[VM_URI_PORT_MAX];
    char err[VMSTATE_ERR_LEN], line[VMSTATE_ERR_LEN + 8];
    int lfd = -1, fd = -1, one = 1, e, ret = 1;
    bool cloned;

    if (vm_parse_tcp_uri(uri, host, port)) {
        fprintf(stderr, "tessera: --incoming '%s': expected tcp:HOST:PORT\n", uri);
        return 2;
    }
    e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (e) {
        fprintf(stderr, "tessera: --incoming %s: %s\n", uri, gai_strerror(e));
        return 2;
    }
    lfd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, res->ai_addr, res->ai_addrlen) < 0 || listen(lfd, 1) < 0) {
        fprintf(stderr, "tessera: --incoming %s: %s\n", uri, strerror(errno));
        goto out;
    }
    log_info("waiting for a migration on %s", uri);
    do
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        fprintf(stderr, "tessera: --incoming %s: accept: %s\n", uri, strerror(errno));
        goto out;
    }
    close(lfd);
    lfd = -1;
    if (vm_restore(fd, "migration stream", ro, m, &cloned, err)) {
        fprintf(stderr, "tessera: --incoming: %s\n", err);
        snprintf(line, sizeof(line), "ERR %s\n", err);
        if (write(fd, line, strlen(line)) < 0)
            log_warn("could not tell the source why: %s", strerror(errno));
        drain_briefly(fd);
        goto out;
    }
    if (write(fd, "OK\n", 3) != 3) {
        /* The source cannot learn that we have the VM: it keeps running it; so must not we. */
        fprintf(stderr, "tessera: --incoming: the source went away before the handover\n");
        virt_destroy(*m);
        *m = NULL;
        goto out;
    }
    log_info("migration received; the VM runs here now");
    ret = 0;
out:
    if (res)
        freeaddrinfo(res);
    if (lfd >= 0)
        close(lfd);
    if (fd >= 0)
        close(fd);
    return ret;
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
        OPT_SANDBOX,
        OPT_USER,
    };
    static const struct option opts[] = {
        {"bios", required_argument, NULL, OPT_BIOS},
        {"kernel", required_argument, NULL, OPT_KERNEL},
        {"initrd", required_argument, NULL, OPT_INITRD},
        {"append", required_argument, NULL, OPT_APPEND},
        {"mem", required_argument, NULL, OPT_MEM},
        {"cpus", required_argument, NULL, OPT_CPUS},
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
        {"sandbox", required_argument, NULL, OPT_SANDBOX},
        {"user", required_argument, NULL, OPT_USER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct virt_config cfg = {.cpus = 1, .mem_size = RUN_DEFAULT_MEM, .console_fd = STDOUT_FILENO};
    struct virt_machine *m;
    char *default_kernel = NULL, *default_initrd = NULL;
    bool have_append = false;
    const char *agent_sock = NULL;
    const char *api_sock = NULL;
    struct vm_api *api = NULL;
    char *agent_opts = NULL;
    const char *restore = NULL, *incoming = NULL;
    struct vm_restore_opts ro = {.console_fd = STDOUT_FILENO};
    bool machine_opts = false, cloned = false;
    struct sandbox_opts sb = {0};
    char sberr[SANDBOX_ERR_LEN];
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
            have_append = true;
            break;
        case OPT_MEM:
            if (parse_size(optarg, &cfg.mem_size) || cfg.mem_size < VIRT_MIN_MEM ||
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
        case OPT_DEVICE:
        case OPT_DISK:
        case OPT_NET:
            if (add_device(&cfg, c == OPT_DISK ? "disk" : c == OPT_NET ? "net" : NULL, optarg))
                return 2;
            machine_opts = true;
            break;
        case OPT_AGENT_SOCK:
            agent_sock = optarg;
            machine_opts = true;
            break;
        case OPT_API_SOCK: api_sock = optarg; break;
        case OPT_RESTORE: restore = optarg; break;
        case OPT_INCOMING: incoming = optarg; break;
        case OPT_CLONE: ro.clone_dir = optarg; break;
        case OPT_FULL: ro.full_clone = true; break;
        case OPT_DISK_DIR: ro.disk_dir = optarg; break;
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

    if (sandbox_check(&sb, sberr)) {
        fprintf(stderr, "tessera: %s\n", sberr);
        return 2;
    }

    if (restore || incoming) {
        const char *what = restore ? "--restore" : "--incoming";

        if ((restore && incoming) || machine_opts || (restore && (ro.want_cpus || ro.want_mem))) {
            fprintf(stderr,
                    "tessera: %s takes the machine from the %s: give no --kernel, --disk, "
                    "--net, --device, --agent-sock%s\n",
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
        status = restore ? restore_file(restore, &ro, &m, &cloned)
                         : receive_migration(incoming, &ro, &m);
        if (status)
            return status;
        goto run;
    }
    if (ro.clone_dir || ro.full_clone || ro.disk_dir) {
        fprintf(stderr, "tessera: %s\n",
                ro.disk_dir ? "--disk-dir applies to --incoming"
                            : "--clone and --full apply to --restore");
        return 2;
    }

    /* The agent channel is a port of the virtio-console device. */
    if (agent_sock) {
        struct virt_device_spec *con = NULL;

        for (unsigned i = 0; i < cfg.ndevices; i++) {
            if (!strcmp(cfg.devices[i].type, "console"))
                con = &cfg.devices[i];
        }
        if (asprintf(&agent_opts, "%s%sagent=%s", con ? con->opts : "",
                     con && con->opts[0] ? "," : "", agent_sock) < 0)
            return 1;
        if (con)
            con->opts = agent_opts;
        else if (add_device(&cfg, "console", agent_opts))
            return 2;
    }

    /* No firmware and no kernel given: the default guest. --bios alone: bare metal. */
    if (!cfg.bios && !cfg.kernel) {
        default_kernel = default_guest_file("Image");
        if (!cfg.initrd)
            cfg.initrd = default_initrd = default_guest_file("initramfs.cpio.gz");
        cfg.kernel = default_kernel;
        if (!cfg.kernel || access(cfg.kernel, R_OK) != 0) {
            fprintf(stderr,
                    "tessera: the default guest kernel %s is missing: build it with "
                    "guest/build.sh, or pass --kernel\n",
                    cfg.kernel ? cfg.kernel : "build/guest/Image");
            status = 1;
            goto out;
        }
    }
    if (!cfg.bios)
        cfg.bios = VIRT_DEFAULT_BIOS;
    if (cfg.kernel && !have_append)
        cfg.append = RUN_DEFAULT_APPEND;
    if (!cfg.kernel && cfg.initrd) {
        fprintf(stderr, "tessera: --initrd needs --kernel\n");
        status = 2;
        goto out;
    }

    /* A closed stdout must not kill the VM from inside a UART write. */
    signal(SIGPIPE, SIG_IGN);
    if (virt_create(&cfg, &m)) {
        status = 1;
        goto out;
    }
run:
    if (api_sock) {
        char aerr[CONTROL_ERR_LEN];

        if (vm_api_start(m, api_sock, &api, aerr)) {
            fprintf(stderr, "tessera: --api-sock %s\n", aerr);
            virt_destroy(m);
            status = 1;
            goto out;
        }
    }
    if (console_start(m)) {
        fprintf(stderr, "tessera: cannot start the console thread\n");
        virt_destroy(m);
        status = 1;
        goto out;
    }
    /* Everything is open and every thread started: from here on the process runs as the
     * sandbox allows, before the guest's first instruction (docs/sandbox.md). */
    if (sandbox_enter(&sb, sberr)) {
        fprintf(stderr, "tessera: sandbox: %s\n", sberr);
        vm_api_stop(api);
        console_stop();
        virt_destroy(m);
        status = 1;
        goto out;
    }
    if (sb.selftest) {
        sandbox_selftest();
        vm_api_stop(api);
        console_stop();
        virt_destroy(m);
        status = 1;
        goto out;
    }
    if (cloned)
        vm_clone_notify_agent(m);
    status = virt_run(m);
    vm_api_stop(api); /* no API call may reach the machine once it is torn down */
    console_stop();
    /* Destroying the machine flushes and closes its disks: a guest that powered off after a
     * sync must find its data in the image. */
    virt_destroy(m);
    fflush(stdout);
    status &= 0xff;

out:
    free(default_kernel);
    free(default_initrd);
    free(agent_opts);
    return status;
}
