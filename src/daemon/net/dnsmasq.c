/* dnsmasq.h: the conf file, `ip netns exec NS dnsmasq`, and its pid file. */
#include "daemon/net/dnsmasq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads at most len-1 bytes of a small file (no symlink followed). */
bool dnsmasq_running(const char *dir, pid_t *pid)
{
    char pidfile[PATH_MAX], want[PATH_MAX + 32];

    /* Ours: dnsmasq reading our conf file. */
    snprintf(pidfile, sizeof(pidfile), "%s/dnsmasq.pid", dir);
    snprintf(want, sizeof(want), "--conf-file=%s/dnsmasq.conf", dir);
    *pid = netcmd_pidfile_pid(pidfile, "dnsmasq", want);
    return *pid != 0;
}

int dnsmasq_stop(const char *dir, char *err)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    char path[PATH_MAX];
    pid_t pid;
    int i;

    if (dnsmasq_running(dir, &pid)) {
        kill(pid, SIGTERM);
        for (i = 0; i < 100 && dnsmasq_running(dir, &pid); i++)
            nanosleep(&ts, NULL);
        if (dnsmasq_running(dir, &pid)) {
            kill(pid, SIGKILL);
            for (i = 0; i < 50 && dnsmasq_running(dir, &pid); i++)
                nanosleep(&ts, NULL);
        }
        if (dnsmasq_running(dir, &pid)) {
            snprintf(err, NETCMD_ERR_LEN, "dnsmasq %d of %.300s does not stop", (int)pid, dir);
            return -EBUSY;
        }
    }
    snprintf(path, sizeof(path), "%s/dnsmasq.pid", dir);
    unlink(path);
    return 0;
}

/* The conf file's text for the spec: malloc'd in *out, or NULL (out of memory). */
static char *dnsmasq_conf_text(const struct dnsmasq_spec *sp)
{
    char *text = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    /* No upstream servers and no /etc/hosts: it answers for the network's VMs only. A plain
     * name (no dot) is never forwarded (domain-needed): a VM's name with an A record but no
     * AAAA answers the AAAA query with no data instead of REFUSED, which resolvers take for a
     * failure. */
    fprintf(f,
            "# written by tesserad; rewritten on every change\n"
            "domain-needed\n"
            "pid-file=%s/dnsmasq.pid\n"
            "dhcp-leasefile=%s/dnsmasq.leases\n"
            "log-facility=%s/dnsmasq.log\n"
            "interface=%s\n"
            "bind-interfaces\n"
            "no-resolv\n"
            "no-hosts\n"
            "dhcp-authoritative\n"
            "dhcp-option=option:router,%s\n"
            "dhcp-option=option:dns-server,%s\n",
            sp->dir, sp->dir, sp->dir, sp->iface, sp->gateway, sp->gateway);
    /* Forced: clients seldom ask for option 26, and dnsmasq sends only what is asked. */
    if (sp->mtu)
        fprintf(f, "dhcp-option-force=option:mtu,%u\n", sp->mtu);
    for (i = 0; i < sp->nranges; i++)
        fprintf(f, "dhcp-range=%s,%s,%s,1h\n", sp->range[i][0], sp->range[i][1], sp->mask);
    for (i = 0; i < sp->nhosts; i++)
        fprintf(f, "dhcp-host=%s,%s%s%s\n", sp->hosts[i].mac,
                sp->hosts[i].ip ? sp->hosts[i].ip : "", sp->hosts[i].ip ? "," : "",
                sp->hosts[i].name);
    if (ferror(f)) {
        fclose(f);
        free(text);
        return NULL;
    }
    fclose(f);
    return text;
}

/* The conf file, written whole and renamed into place. */
static int dnsmasq_write_conf(const char *dir, const char *text, char *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    size_t len = strlen(text);
    int fd;

    snprintf(path, sizeof(path), "%s/dnsmasq.conf", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd)) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -EIO;
    }
    close(fd);
    if (rename(tmp, path)) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(errno));
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

/* Keeps only the leases of the spec's hosts in the lease file (dnsmasq stopped): a deleted
 * VM's lease would otherwise hold its address for its lease time, and dnsmasq does not give a
 * host its configured address while another MAC holds a lease on it. Lines are "EXPIRY MAC
 * IP NAME CLIENT-ID" (dnsmasq's lease file). */
static void dnsmasq_prune_leases(const struct dnsmasq_spec *sp)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], line[512], mac[32];
    FILE *in, *out;
    int fd;

    snprintf(path, sizeof(path), "%s/dnsmasq.leases", sp->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    in = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!in) {
        if (fd >= 0)
            close(fd);
        return;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        if (fd >= 0)
            close(fd);
        fclose(in);
        return;
    }
    while (fgets(line, sizeof(line), in)) {
        bool keep = false;

        if (sscanf(line, "%*s %31s", mac) == 1)
            for (size_t i = 0; i < sp->nhosts && !keep; i++)
                keep = !strcmp(mac, sp->hosts[i].mac);
        if (keep)
            fputs(line, out);
    }
    fclose(in);
    if (fclose(out) || rename(tmp, path))
        unlink(tmp);
}

int dnsmasq_start(const struct dnsmasq_spec *sp, char *err)
{
    char opt[PATH_MAX + 32], path[PATH_MAX], *text, *old = NULL;
    const char *argv[] = {"ip", "netns", "exec", sp->ns, "dnsmasq", opt, NULL};
    ssize_t n = -1;
    pid_t pid;
    int ret;

    if (!netcmd_have("dnsmasq")) {
        snprintf(err, NETCMD_ERR_LEN,
                 "dnsmasq is not installed (Debian: dnsmasq-base): a network with dhcp needs it");
        return -ENOENT;
    }
    text = dnsmasq_conf_text(sp);
    if (!text) {
        snprintf(err, NETCMD_ERR_LEN, "dnsmasq of %.400s: out of memory", sp->dir);
        return -ENOMEM;
    }
    /* One that runs with this very configuration is left alone (a restart of tesserad finds
     * it so): its leases go on without a gap. */
    snprintf(path, sizeof(path), "%s/dnsmasq.conf", sp->dir);
    old = malloc(strlen(text) + 2);
    if (old)
        n = netcmd_read_small(path, old, strlen(text) + 2);
    if (n >= 0 && !strcmp(old, text) && dnsmasq_running(sp->dir, &pid)) {
        ret = 0;
        goto free_text;
    }
    ret = dnsmasq_stop(sp->dir, err);
    if (!ret) {
        dnsmasq_prune_leases(sp);
        ret = dnsmasq_write_conf(sp->dir, text, err);
    }
    snprintf(opt, sizeof(opt), "--conf-file=%s/dnsmasq.conf", sp->dir);
    if (!ret)
        ret = netcmd_run(argv, err);
free_text:
    free(old);
    free(text);
    return ret;
}
