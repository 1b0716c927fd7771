/* ovs.h: ovsdb-tool, ovsdb-server, ovs-vswitchd and ovs-vsctl, each run by netcmd (no shell). */
#include "daemon/net/ovs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define OVS_SCHEMA "/usr/share/openvswitch/vswitch.ovsschema"

static bool ovs_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n && n < IFNAMSIZ &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n &&
           s[0] != '-' && s[0] != '.';
}

/* The pid of our `prog` (its pid file DIR/PROG.pid, and /proc saying it is prog started with
 * that pid file), or 0. */
static pid_t ovs_pid(const char *dir, const char *prog)
{
    char path[PATH_MAX], want[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%.3000s/%s.pid", dir, prog);
    snprintf(want, sizeof(want), "--pidfile=%.3000s/%s.pid", dir, prog);
    return netcmd_pidfile_pid(path, prog, want);
}

bool ovs_running(const char *dir)
{
    return ovs_pid(dir, "ovs-vswitchd") != 0;
}

/* Whether pid still is prog (its pid file goes before it has quite exited; a zombie has no
 * command line and counts as gone). */
static bool ovs_alive(pid_t pid, const char *prog)
{
    char path[64], buf[64];

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    return netcmd_read_small(path, buf, sizeof(buf)) > 0 && !strcmp(buf, prog);
}

/* SIGTERM, then SIGKILL after 2 s; returns once the process is gone. */
static int ovs_kill(const char *dir, const char *prog, char *err)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    pid_t pid = ovs_pid(dir, prog);
    int i;

    if (!pid)
        return 0;
    kill(pid, SIGTERM);
    for (i = 0; i < 100 && ovs_alive(pid, prog); i++)
        nanosleep(&ts, NULL);
    if (ovs_alive(pid, prog)) {
        kill(pid, SIGKILL);
        for (i = 0; i < 50 && ovs_alive(pid, prog); i++)
            nanosleep(&ts, NULL);
    }
    if (ovs_alive(pid, prog)) {
        snprintf(err, NETCMD_ERR_LEN, "%s %d of %.300s does not stop", prog, (int)pid, dir);
        return -EBUSY;
    }
    return 0;
}

/* ovs-vsctl on our database with up to 12 more arguments. */
static int ovs_vsctl(const char *dir, const char *const *args, char *err)
{
    char db[PATH_MAX + 16];
    const char *argv[16] = {"ovs-vsctl", db, "--timeout=" OVS_TIMEOUT_S};
    size_t n = 3;

    snprintf(db, sizeof(db), "--db=unix:%.3000s/db.sock", dir);
    for (; *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return netcmd_run(argv, err);
}

/* One of the daemons, detached, with our run, log and database directories. */
static int ovs_spawn(const char *dir, const char *prog, const char *first, const char *extra,
                     char *err)
{
    char env[3][PATH_MAX + 16], pid[PATH_MAX + 16], ctl[PATH_MAX + 16], log[PATH_MAX + 16];
    const char *argv[] = {"env", env[0], env[1],     env[2],       prog,  first, pid,
                          ctl,   log,    "--detach", "--no-chdir", extra, NULL};

    snprintf(env[0], sizeof(env[0]), "OVS_RUNDIR=%.3000s", dir);
    snprintf(env[1], sizeof(env[1]), "OVS_LOGDIR=%.3000s", dir);
    snprintf(env[2], sizeof(env[2]), "OVS_DBDIR=%.3000s", dir);
    snprintf(pid, sizeof(pid), "--pidfile=%.3000s/%s.pid", dir, prog);
    snprintf(ctl, sizeof(ctl), "--unixctl=%.3000s/%s.ctl", dir, prog);
    snprintf(log, sizeof(log), "--log-file=%.3000s/%s.log", dir, prog);
    return netcmd_run(argv, err);
}

static int ovs_start(const char *dir, char *err)
{
    char db[PATH_MAX], remote[PATH_MAX + 16], sock[PATH_MAX + 16];
    const char *create[] = {"ovsdb-tool", "create", db, OVS_SCHEMA, NULL};
    const char *init[] = {"--no-wait", "init", NULL};
    struct stat st;
    int ret = 0;

    if (!netcmd_have("ovs-vswitchd") || !netcmd_have("ovsdb-server")) {
        snprintf(err, NETCMD_ERR_LEN,
                 "Open vSwitch is not installed (Debian: "
                 "openvswitch-switch): a network with a VLAN tag needs it");
        return -ENOENT;
    }
    if (strlen(dir) + sizeof("/ovs-vswitchd.ctl") > sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, NETCMD_ERR_LEN, "%.300s: too long for the switch's sockets", dir);
        return -ENAMETOOLONG;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", dir, strerror(errno));
        return -errno;
    }
    snprintf(db, sizeof(db), "%.3000s/conf.db", dir);
    snprintf(remote, sizeof(remote), "--remote=punix:%.3000s/db.sock", dir);
    snprintf(sock, sizeof(sock), "unix:%.3000s/db.sock", dir);
    if (!ovs_pid(dir, "ovsdb-server")) {
        if (lstat(db, &st))
            ret = netcmd_run(create, err);
        if (!ret)
            ret = ovs_spawn(dir, "ovsdb-server", db, remote, err);
        if (!ret)
            ret = ovs_vsctl(dir, init, err);
    }
    if (!ret && !ovs_pid(dir, "ovs-vswitchd"))
        ret = ovs_spawn(dir, "ovs-vswitchd", sock, "-vconsole:off", err);
    return ret;
}

int ovs_ensure(const char *dir, const char *bridge, const char *trunk, char *err)
{
    const char *br[] = {"--may-exist",          "add-br", bridge, "--", "set", "bridge", bridge,
                        "datapath_type=netdev", NULL};
    const char *port[] = {"--may-exist", "add-port", bridge, trunk, NULL};
    int ret;

    if (!ovs_name_ok(bridge) || !ovs_name_ok(trunk)) {
        snprintf(err, NETCMD_ERR_LEN, "vlan: bridge or trunk name is malformed");
        return -EINVAL;
    }
    if (!if_nametoindex(trunk)) {
        snprintf(err, NETCMD_ERR_LEN, "vlan: the trunk interface %s does not exist on this host",
                 trunk);
        return -ENODEV;
    }
    ret = ovs_start(dir, err);
    if (!ret)
        ret = ovs_vsctl(dir, br, err);
    if (!ret)
        ret = ovs_vsctl(dir, port, err);
    return ret;
}

int ovs_port_add(const char *dir, const char *bridge, const char *port, unsigned tag, char *err)
{
    char t[16];
    const char *add[] = {"--may-exist", "add-port", bridge, port, "--",
                         "set",         "port",     port,   t,    NULL};

    if (!ovs_name_ok(bridge) || !ovs_name_ok(port) || !tag || tag > OVS_TAG_MAX) {
        snprintf(err, NETCMD_ERR_LEN, "vlan: port %.20s or tag %u is malformed", port, tag);
        return -EINVAL;
    }
    snprintf(t, sizeof(t), "tag=%u", tag);
    return ovs_vsctl(dir, add, err);
}

int ovs_port_del(const char *dir, const char *port, char *err)
{
    const char *del[] = {"--if-exists", "del-port", port, NULL};

    if (!ovs_name_ok(port)) {
        snprintf(err, NETCMD_ERR_LEN, "vlan: port %.20s is malformed", port);
        return -EINVAL;
    }
    if (!ovs_running(dir) || !ovs_pid(dir, "ovsdb-server"))
        return 0;
    return ovs_vsctl(dir, del, err);
}

/* Removes dir's files (all ours: no subfolders, no links followed) and dir. */
static void ovs_rmdir(const char *dir)
{
    struct dirent *e;
    DIR *dp = opendir(dir);

    if (!dp)
        return;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(dp), e->d_name, 0);
    closedir(dp);
    rmdir(dir);
}

int ovs_shutdown(const char *dir, const char *bridge, char *err)
{
    const char *link[] = {"ip", "link", "delete", "dev", bridge, NULL};
    int ret;

    if (!ovs_name_ok(bridge)) {
        snprintf(err, NETCMD_ERR_LEN, "vlan: bridge %.20s is malformed", bridge);
        return -EINVAL;
    }
    /* No del-br first: its database goes with it, and asking a switch that is dying (or
     * dead with its pid file left) would wait for the timeout. */
    ret = ovs_kill(dir, "ovs-vswitchd", err);
    if (!ret)
        ret = ovs_kill(dir, "ovsdb-server", err);
    /* The bridge's own device (a tap of the userspace datapath) outlives the switch. */
    if (!ret && if_nametoindex(bridge) && netcmd_run(link, err) && if_nametoindex(bridge))
        ret = -EIO;
    if (!ret)
        ovs_rmdir(dir);
    return ret;
}
