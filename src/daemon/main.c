/* tesserad: the host daemon (docs/daemon.md).
 *
 *   tesserad --state-dir DIR [--listen unix:PATH] [--listen https://HOST:PORT] ...
 *            [--tls-cert FILE --tls-key FILE] [--upload-max BYTES]
 *
 * Keeps its state in DIR/tesserad.db (SQLite) and serves the REST API on every --listen given
 * (default: the unix socket DIR/tesserad.sock, mode 0660; server.h lists the forms). On the
 * first start it creates the platform administrator and writes its token to DIR/admin.token
 * (mode 0600). SIGTERM or SIGINT stop it cleanly: the server finishes, the store is closed,
 * the sockets removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/store.h"
#include "daemon/vmproc.h"

#define SOCKET_MODE 0660

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tesserad --state-dir DIR [--listen SPEC]... [--tls-cert FILE --tls-key FILE]\n"
            "  --state-dir DIR      where the database, the socket and admin.token live\n"
            "  --listen SPEC        where to serve the API; may be given up to %d times:\n"
            "                         unix:PATH (default DIR/tesserad.sock)\n"
            "                         https://HOST:PORT (needs --tls-cert and --tls-key)\n"
            "                         http://127.0.0.1:PORT or http://[::1]:PORT (this host only)\n"
            "  --tls-cert FILE      PEM certificate (chain) for https:// listeners\n"
            "  --tls-key FILE       PEM private key for https:// listeners\n"
            "  --upload-max BYTES   largest volume upload (default 1 TiB)\n"
            "  --cgroup-parent NAME the VMs' parent control group (default tessera)\n"
            "  --no-cgroups         run VMs without control groups (no CPU or memory limits)\n"
            "  --web-dir DIR        the web console's built files (default: web/ beside this\n"
            "                       program, where make puts them)\n"
            "  --vxlan-local ADDR   this host's underlay IPv4 address for networks across hosts\n"
            "                       (VXLAN; docs/networks.md)\n"
            "  --vlan-trunk IFNAME  the host interface VLAN networks' tagged frames go out on\n"
            "                       (802.1Q, through tesserad's own Open vSwitch)\n",
            SERVER_LISTEN_MAX);
}

static int write_token(const char *path, const char *token)
{
    char tmp[PATH_MAX];
    size_t len = strlen(token);
    int fd, ret = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    errno = 0;
    if (write(fd, token, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd))
        ret = errno ? -errno : -EIO;
    if (close(fd) && !ret)
        ret = -errno;
    if (!ret && rename(tmp, path))
        ret = -errno;
    if (ret)
        unlink(tmp);
    return ret;
}

/* web/ beside this program: build/web for build/tesserad, where make builds the console
 * (docs/web.md). 0, or -errno when the program's path cannot be read. */
static int web_dir_default(char *out, size_t len)
{
    char exe[PATH_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0)
        return n < 0 ? -errno : -ENOENT;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    return snprintf(out, len, "%s/web", exe) >= (int)len ? -ENAMETOOLONG : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"upload-max", required_argument, NULL, 'u'},
        {"cgroup-parent", required_argument, NULL, 'g'},
        {"no-cgroups", no_argument, NULL, 'G'},
        {"web-dir", required_argument, NULL, 'w'},
        {"vxlan-local", required_argument, NULL, 'x'},
        {"vlan-trunk", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char sock_spec[PATH_MAX], token_path[PATH_MAX], lock_path[PATH_MAX];
    char err[STORE_ERR_LEN > SERVER_ERR_LEN ? STORE_ERR_LEN : SERVER_ERR_LEN];
    char token[TOKEN_TEXT_LEN + 1], web_dir[PATH_MAX];
    const char *dir = NULL, *listen[SERVER_LISTEN_MAX], *cgroup_parent = "tessera";
    const char *vxlan_local = NULL, *vlan_trunk = NULL;
    struct server_config cfg = {.listen = listen, .unix_mode = SOCKET_MODE};
    static struct daemon d;
    struct server_hooks hooks = {.arg = &d,
                                 .console_path = api_hook_console_path,
                                 .upload_begin = api_hook_upload_begin,
                                 .upload_end = api_hook_upload_end};
    struct server *srv = NULL;
    bool https = false;
    char *end;
    size_t i;
    sigset_t stop;
    bool created;
    int opt, sig, ret, lock_fd;

    /* The shim between tesserad and a VM's process (vmproc.h): tesserad run again. */
    if (argc > 1 && !strcmp(argv[1], VMPROC_SHIM_ARG))
        return vmproc_shim_main(argc, argv);
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': dir = optarg; break;
        case 'l':
            if (cfg.nlisten == SERVER_LISTEN_MAX) {
                fprintf(stderr, "tesserad: --listen: at most %d\n", SERVER_LISTEN_MAX);
                return 2;
            }
            listen[cfg.nlisten++] = optarg;
            https |= !strncmp(optarg, "https://", 8);
            break;
        case 'c': cfg.tls_cert = optarg; break;
        case 'k': cfg.tls_key = optarg; break;
        case 'u':
            errno = 0;
            cfg.upload_max = strtoull(optarg, &end, 10);
            if (errno || *end || !cfg.upload_max || optarg[0] == '-') {
                fprintf(stderr, "tesserad: --upload-max %s: expected a number of bytes\n", optarg);
                return 2;
            }
            break;
        case 'g':
            if (api_check_name(optarg)) {
                fprintf(stderr,
                        "tesserad: --cgroup-parent %s: expected 1 to 63 characters of "
                        "a-z, 0-9 and '-'\n",
                        optarg);
                return 2;
            }
            cgroup_parent = optarg;
            break;
        case 'G': cgroup_parent = NULL; break;
        case 'w': cfg.web_dir = optarg; break;
        case 'x': vxlan_local = optarg; break;
        case 'V': vlan_trunk = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (https != (cfg.tls_cert || cfg.tls_key) || !cfg.tls_cert != !cfg.tls_key) {
        fprintf(stderr, "tesserad: %s\n",
                https ? "an https:// listener needs both --tls-cert FILE and --tls-key FILE"
                      : "--tls-cert and --tls-key go with an https:// listener (and each other)");
        return 2;
    }
    if (snprintf(token_path, sizeof(token_path), "%s/admin.token", dir) >=
            (int)sizeof(token_path) ||
        snprintf(lock_path, sizeof(lock_path), "%s/tesserad.lock", dir) >= (int)sizeof(lock_path) ||
        snprintf(sock_spec, sizeof(sock_spec), "unix:%s/tesserad.sock", dir) >=
            (int)sizeof(sock_spec)) {
        fprintf(stderr, "tesserad: --state-dir %s: path too long\n", dir);
        return 2;
    }
    /* The database and the token are for this user alone; the socket's mode is set apart. */
    umask(0077);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "tesserad: --state-dir %s: cannot create: %s\n", dir, strerror(errno));
        return 1;
    }
    /* One daemon per state directory: the lock is held until we exit. */
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB)) {
        fprintf(stderr, "tesserad: %s: %s\n", lock_path,
                errno == EWOULDBLOCK ? "another tesserad uses this state directory"
                                     : strerror(errno));
        return 1;
    }
    /* The signals that stop us are taken by sigwait() below; block them before any thread
     * starts so that every thread inherits the mask. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (api_net_host_config(vxlan_local, vlan_trunk, err)) {
        fprintf(stderr, "tesserad: %s\n", err);
        return 2;
    }
    ret = daemon_init(&d, dir, cgroup_parent, err);
    if (ret) {
        fprintf(stderr, "tesserad: %s\n", err);
        return 1;
    }
    ret = api_bootstrap(d.store, &created, token, err);
    if (ret) {
        fprintf(stderr, "tesserad: %s\n", err);
        goto close_store;
    }
    if (created) {
        ret = write_token(token_path, token);
        explicit_bzero(token, sizeof(token));
        if (ret) {
            fprintf(stderr, "tesserad: %s: cannot write the administrator's token: %s\n",
                    token_path, strerror(-ret));
            goto close_store;
        }
        fprintf(stderr,
                "tesserad: created the platform administrator '%s'; its token is in %s "
                "(mode 0600): keep it secret\n",
                API_ADMIN_USER, token_path);
    }
    if (!cfg.nlisten)
        listen[cfg.nlisten++] = sock_spec;
    cfg.daemon = &d;
    cfg.store = d.store;
    cfg.lock = &d.lock;
    cfg.events = d.events;
    cfg.metrics = d.metrics;
    cfg.hooks = &hooks;
    if (!cfg.web_dir && !web_dir_default(web_dir, sizeof(web_dir)))
        cfg.web_dir = web_dir;
    ret = server_start(&cfg, &srv, err);
    if (ret) {
        fprintf(stderr, "tesserad: %s\n", err);
        goto close_store;
    }
    for (i = 0; server_address(srv, i); i++)
        fprintf(stderr, "tesserad: serving the API on %s\n", server_address(srv, i));
    for (;;) {
        ret = sigwait(&stop, &sig);
        if (ret == EINTR)
            continue;
        if (sig != SIGHUP)
            break;
        /* SIGHUP: look again for shipped templates built since we started (the Debian one
         * takes a while), as a service reloads its configuration. */
        pthread_mutex_lock(&d.lock);
        if (api_shipped_templates(&d, err))
            fprintf(stderr, "tesserad: SIGHUP: %s\n", err);
        pthread_mutex_unlock(&d.lock);
    }
    fprintf(stderr, "tesserad: stopping (%s)\n", strsignal(sig));
    server_stop(srv);
    ret = 0;
close_store:
    daemon_fini(&d);
    return ret ? 1 : 0;
}
