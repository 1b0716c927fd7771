/*
 * `tessera-agent seed`: the BusyBox guest's stand-in for cloud-init. The contract is in
 * seed.h; what it applies is in README.md, "Seed".
 *
 * The guest kernel has no iso9660 file system (guest/kernel.config), so the seed is read from
 * the block device in user space by cidata.c. The root file system is the initramfs, in RAM:
 * every boot is a fresh instance, so "once per instance" is once per boot; the instance id
 * is kept in /run/tessera-seed/instance-id for whoever asks.
 */
#define _GNU_SOURCE
#include "seed.h"

#include "cidata.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEED_RUN_DIR    "/run/tessera-seed"
#define SEED_SCRIPT     SEED_RUN_DIR "/user-data"
#define SEED_STATUS     SEED_RUN_DIR "/user-data.status"
#define SEED_STATIC     SEED_RUN_DIR "/static-network"
#define SEED_OUTPUT     "/var/log/cloud-init-output.log" /* where cloud-init puts it too */
#define SSH_DIR         "/root/.ssh"
#define AUTHORIZED      SSH_DIR "/authorized_keys"
#define SEED_NET_WAIT_S 30 /* seconds the user-data script waits for a default route */

static int fd_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    int fd = *(int *)ctx;
    for (size_t got = 0; got < len;) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Runs argv (PATH search) and waits: 0 when it exits 0. */
static int run(char *const argv[])
{
    int status;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The first vdX whose content is an ISO 9660 volume labelled cidata: its fd and name. */
static int find_seed(char *dev, size_t dev_len)
{
    DIR *dir = opendir("/sys/block");
    struct dirent *e;
    int found = -ENOENT;
    if (!dir)
        return -errno;
    while (found < 0 && (e = readdir(dir))) {
        char err[CIDATA_ERR_LEN];
        struct cidata_iso iso;
        uint64_t size;
        if (strncmp(e->d_name, "vd", 2) != 0 || strlen(e->d_name) > 16)
            continue;
        snprintf(dev, dev_len, "/dev/%.16s", e->d_name);
        int fd = open(dev, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct cidata_src src = {.read = fd_read, .ctx = &fd};
        if (ioctl(fd, BLKGETSIZE64, &size) == 0) {
            src.size = size;
            /* A cidata volume that is malformed is still the seed: cidata_load reports it. */
            int rc = cidata_iso_open(&src, &iso, err);
            if (rc == 0 || rc == -EINVAL) {
                found = fd;
                break;
            }
        }
        close(fd);
    }
    closedir(dir);
    return found;
}

/* The interface to configure: the one with the seed's MAC, else eth0. */
static void find_iface(const char *mac, char *ifname, size_t len)
{
    DIR *dir;
    struct dirent *e;
    snprintf(ifname, len, "eth0");
    if (!mac[0] || !(dir = opendir("/sys/class/net")))
        return;
    while ((e = readdir(dir))) {
        char path[300], addr[32] = "";
        if (e->d_name[0] == '.' || strlen(e->d_name) >= len)
            continue;
        snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        if (fgets(addr, sizeof(addr), f) && strncasecmp(addr, mac, 17) == 0) {
            memcpy(ifname, e->d_name, strlen(e->d_name) + 1);
            fclose(f);
            break;
        }
        fclose(f);
    }
    closedir(dir);
}

static int apply_network(const struct cidata_net *net, char *what, size_t what_len)
{
    char ifname[32], resolv[CIDATA_MAX_DNS * 32] = "";
    size_t off = 0;
    find_iface(net->mac, ifname, sizeof(ifname));
    char *link_up[] = {"ip", "link", "set", ifname, "up", NULL};
    char *addr_add[] = {"ip", "addr", "add", (char *)net->address, "dev", ifname, NULL};
    char *route_add[] = {"ip",  "route", "add", "default", "via", (char *)net->gateway,
                         "dev", ifname,  NULL};
    char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    /* rcS starts DHCP unless this file exists. */
    close(open(SEED_STATIC, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (run(lo_up) < 0 || run(link_up) < 0 || run(addr_add) < 0 ||
        (net->gateway[0] && run(route_add) < 0)) {
        snprintf(what, what_len, "static network on %s failed (ip)", ifname);
        return -EIO;
    }
    for (unsigned i = 0; i < net->n_dns; i++)
        off += (size_t)snprintf(resolv + off, sizeof(resolv) - off, "nameserver %s\n", net->dns[i]);
    if (net->n_dns && write_file_atomic("/etc/resolv.conf", resolv, off, 0644) < 0) {
        snprintf(what, what_len, "writing /etc/resolv.conf failed");
        return -EIO;
    }
    snprintf(what, what_len, ", static %s on %s", net->address, ifname);
    return 0;
}

/* Whether the routing table has a default route that is up (/proc/net/route: destination
 * 00000000, RTF_UP in the flags). */
static bool have_default_route(void)
{
    char line[256], iface[64];
    unsigned dest, gw, flags;
    bool found = false;
    FILE *f = fopen("/proc/net/route", "re");
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "%63s %x %x %x", iface, &dest, &gw, &flags) == 4 && dest == 0 &&
                (flags & 1);
    fclose(f);
    return found;
}

/* cloud-init runs user scripts in its last stage, once the network is up; scripts expect
 * that. With a NIC, wait for a default route (DHCP is running in the background), at most
 * SEED_NET_WAIT_S, then run the script anyway. */
static void wait_for_network(void)
{
    if (access("/sys/class/net/eth0", F_OK) < 0)
        return;
    for (int i = 0; i < SEED_NET_WAIT_S * 5 && !have_default_route(); i++)
        usleep(200 * 1000);
}

/* Starts the user-data program in its own session, its output appended to SEED_OUTPUT, and
 * does not wait: a helper process waits and writes "exit N" (or "signal N") to SEED_STATUS. */
static int start_script(const struct cidata *cd)
{
    int rc = write_file_atomic(SEED_SCRIPT, cd->script, cd->script_len, 0700);
    if (rc < 0)
        return rc;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        return 0; /* init adopts the helper when we exit */
    setsid();
    mkdir("/var", 0755);
    mkdir("/var/log", 0755);
    int out = open(SEED_OUTPUT, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    wait_for_network();
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {SEED_SCRIPT, NULL};
        if (null >= 0)
            dup2(null, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (chdir("/root") < 0 && chdir("/") < 0)
            _exit(126);
        execv(SEED_SCRIPT, argv);
        _exit(126);
    }
    int status = 0;
    char line[32];
    if (child < 0)
        snprintf(line, sizeof(line), "not started\n");
    else {
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(status))
            snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
        else
            snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status));
    }
    write_file_atomic(SEED_STATUS, line, strlen(line), 0644);
    _exit(0);
}

int seed_main(void)
{
    char dev[64], err[CIDATA_ERR_LEN], net_what[96] = "";
    struct cidata cd;
    uint64_t size;
    int fd, rc;

    setenv("PATH", "/sbin:/usr/sbin:/bin:/usr/bin", 0);
    fd = find_seed(dev, sizeof(dev));
    if (fd < 0)
        return 0; /* no seed disk: nothing to do, nothing to say */
    struct cidata_src src = {.read = fd_read, .ctx = &fd};
    if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
        printf("tessera-agent seed: %s: %s\n", dev, strerror(errno));
        close(fd);
        return 1;
    }
    src.size = size;
    rc = cidata_load(&src, &cd, err);
    close(fd);
    if (rc < 0) {
        printf("tessera-agent seed: %s: %s\n", dev, err);
        return 1;
    }
    mkdir(SEED_RUN_DIR, 0700);
    if (cd.instance_id[0]) {
        char line[sizeof(cd.instance_id) + 1];
        int n = snprintf(line, sizeof(line), "%s\n", cd.instance_id);
        write_file_atomic(SEED_RUN_DIR "/instance-id", line, (size_t)n, 0644);
    }

    rc = 0;
    if (cd.hostname[0]) {
        char line[80];
        int n = snprintf(line, sizeof(line), "%s\n", cd.hostname);
        if (sethostname(cd.hostname, strlen(cd.hostname)) < 0 ||
            write_file_atomic("/etc/hostname", line, (size_t)n, 0644) < 0) {
            printf("tessera-agent seed: setting the host name %s: %s\n", cd.hostname,
                   strerror(errno));
            rc = 1;
        }
    }
    if (cd.n_keys) {
        struct stat st;
        mkdir("/root", 0700);
        mkdir(SSH_DIR, 0700);
        /* Never follow a link planted at ~/.ssh; sshd wants it 0700 and owned by root. */
        if (lstat(SSH_DIR, &st) < 0 || !S_ISDIR(st.st_mode) || chmod(SSH_DIR, 0700) < 0 ||
            write_file_atomic(AUTHORIZED, cd.keys, cd.keys_len, 0600) < 0) {
            printf("tessera-agent seed: writing " AUTHORIZED ": %s\n", strerror(errno));
            rc = 1;
        }
    }
    if (cd.net.present && !cd.net.dhcp && cd.net.address[0] &&
        apply_network(&cd.net, net_what, sizeof(net_what)) < 0) {
        printf("tessera-agent seed: %s\n", net_what);
        net_what[0] = '\0';
        rc = 1;
    }
    if (cd.note[0])
        printf("tessera-agent seed: %s\n", cd.note);
    printf("tessera-agent seed: %s (instance %s): hostname %s, %u ssh key%s%s%s\n", dev,
           cd.instance_id[0] ? cd.instance_id : "-", cd.hostname[0] ? cd.hostname : "unchanged",
           cd.n_keys, cd.n_keys == 1 ? "" : "s", net_what,
           cd.script ? ", user-data script started (" SEED_OUTPUT ")" : "");
    fflush(stdout);
    if (cd.script && start_script(&cd) < 0) {
        printf("tessera-agent seed: starting the user-data script: %s\n", strerror(errno));
        rc = 1;
    }
    cidata_free(&cd);
    return rc;
}
