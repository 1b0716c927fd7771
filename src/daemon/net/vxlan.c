/* vxlan.h: `ip link`, `bridge fdb` (iproute2) and `nft` in the network's namespace. */
#include "daemon/net/vxlan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/net/netns.h"

int vxlan_check_addr(const char *s)
{
    struct in_addr a;
    uint32_t h;

    if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    h = ntohl(a.s_addr);
    if (!h || h == 0xffffffffu || (h >> 28) == 14)
        return -EINVAL;
    return 0;
}

/* Writes text to dir/name, whole (O_TRUNC, no link followed). */
static int vxlan_write(const char *dir, const char *name, const char *text, char *err)
{
    char path[PATH_MAX];
    size_t len = strlen(text);
    int fd, ret = 0;

    snprintf(path, sizeof(path), "%.3000s/%s", dir, name);
    errno = 0;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        ret = errno ? -errno : -EIO; /* a short write sets no errno */
    if (fd >= 0 && close(fd) && !ret)
        ret = -errno;
    if (ret)
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(-ret));
    return ret;
}

/* Whether dir/name holds exactly text. */
static bool vxlan_same(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX], buf[256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%.3000s/%s", dir, name);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return !strcmp(buf, text);
}

static bool vxlan_in_ns(const char *ns, const char *dev)
{
    const char *show[] = {"ip", "-n", ns, "link", "show", "dev", dev, NULL};
    char err[NETCMD_ERR_LEN];

    return !netcmd_run(show, err);
}

int vxlan_remove(const char *dev, char *err)
{
    const char *del[] = {"ip", "link", "delete", "dev", dev, NULL};
    int ret = if_nametoindex(dev) ? netcmd_run(del, err) : 0;

    /* Gone meanwhile (a namespace being dismantled) is as good. */
    return ret && !if_nametoindex(dev) ? 0 : ret;
}

/* The device made in our namespace (the underlay's) and moved into the network's. */
static int vxlan_make(const struct vxlan_spec *sp, const char *vni, char *err)
{
    const char *add[] = {"ip", "link",  "add",     sp->dev,   "type",     "vxlan",      "id",
                         vni,  "local", sp->local, "dstport", VXLAN_PORT, "nolearning", NULL};
    const char *move[] = {"ip", "link", "set", "dev", sp->dev, "netns", sp->ns, NULL};
    const char *del[] = {"ip", "-n", sp->ns, "link", "delete", "dev", sp->dev, NULL};
    int ret = 0;

    if (vxlan_in_ns(sp->ns, sp->dev))
        ret = netcmd_run(del, err);
    if (!ret)
        ret = vxlan_remove(sp->dev, err);
    if (!ret)
        ret = netcmd_run(add, err);
    if (!ret)
        ret = netcmd_run(move, err);
    if (ret)
        vxlan_remove(sp->dev, (char[NETCMD_ERR_LEN]){0});
    return ret;
}

/* The peers: every all-zeros entry deleted at once (no dst: the whole entry goes), then one
 * appended per peer. Between the two, broadcasts reach no peer for the time of one command. */
static int vxlan_peers(const struct vxlan_spec *sp, char *err)
{
    const char *flush[] = {"bridge", "-n",    sp->ns, "fdb", "del", "00:00:00:00:00:00",
                           "dev",    sp->dev, NULL};
    int ret = 0;

    netcmd_run(flush, err); /* absent when there were no peers */
    for (size_t i = 0; !ret && i < sp->npeers; i++) {
        const char *add[] = {"bridge", "-n",    sp->ns, "fdb",        "append", "00:00:00:00:00:00",
                             "dev",    sp->dev, "dst",  sp->peers[i], NULL};

        ret = netcmd_run(add, err);
    }
    return ret;
}

/* The gateway's ARP and DHCP stay on this host (see the header). */
static int vxlan_table(const struct vxlan_spec *sp, char *err)
{
    char path[PATH_MAX], text[2048];

    snprintf(text, sizeof(text),
             "table bridge tessera_vxlan\n"
             "delete table bridge tessera_vxlan\n"
             "table bridge tessera_vxlan {\n"
             "    chain in {\n"
             "        type filter hook prerouting priority -190; policy accept;\n"
             "        iifname \"%s\" arp saddr ip %s drop\n"
             "        iifname \"%s\" arp daddr ip %s drop\n"
             "        iifname \"%s\" udp dport { 67, 68 } drop\n"
             "    }\n"
             "    chain out {\n"
             "        type filter hook postrouting priority 0; policy accept;\n"
             "        oifname \"%s\" arp saddr ip %s drop\n"
             "        oifname \"%s\" arp daddr ip %s drop\n"
             "        oifname \"%s\" udp dport { 67, 68 } drop\n"
             "    }\n"
             "}\n",
             sp->dev, sp->gateway, sp->dev, sp->gateway, sp->dev, sp->dev, sp->gateway, sp->dev,
             sp->gateway, sp->dev);
    snprintf(path, sizeof(path), "%.3000s/vxlan.nft", sp->dir);
    return netcmd_nft_apply(sp->ns, path, text, err);
}

int vxlan_up(const struct vxlan_spec *sp, char *err)
{
    char vni[16], conf[64], mtu[8];
    const char *master[] = {"ip",     "-n",         sp->ns, "link", "set", "dev", sp->dev,
                            "master", NETNS_BRIDGE, "mtu",  mtu,    "up",  NULL};
    size_t n = strlen(sp->dev);
    int ret = 0;

    if (!n || n >= IFNAMSIZ || strspn(sp->dev, "abcdefghijklmnopqrstuvwxyz0123456789") != n ||
        !sp->vni || sp->vni > VXLAN_VNI_MAX || vxlan_check_addr(sp->local) ||
        vxlan_check_addr(sp->gateway)) {
        snprintf(err, NETCMD_ERR_LEN, "vxlan: device %.20s, VNI %u or local address is malformed",
                 sp->dev, sp->vni);
        return -EINVAL;
    }
    for (size_t i = 0; i < sp->npeers; i++) {
        if (vxlan_check_addr(sp->peers[i])) {
            snprintf(err, NETCMD_ERR_LEN, "vxlan: peers[%zu] is not an IPv4 unicast address", i);
            return -EINVAL;
        }
    }
    snprintf(vni, sizeof(vni), "%u", sp->vni);
    snprintf(mtu, sizeof(mtu), "%d", VXLAN_MTU);
    snprintf(conf, sizeof(conf), "vni %u local %s\n", sp->vni, sp->local);
    /* A device whose VNI or local address is not the wanted one (the daemon restarted with
     * another --vxlan-local) is made anew: those cannot change on a live device. */
    if (!vxlan_in_ns(sp->ns, sp->dev) || !vxlan_same(sp->dir, "vxlan.conf", conf)) {
        ret = vxlan_make(sp, vni, err);
        if (!ret)
            ret = vxlan_write(sp->dir, "vxlan.conf", conf, err);
    }
    if (!ret)
        ret = netcmd_run(master, err);
    if (!ret)
        ret = vxlan_peers(sp, err);
    if (!ret)
        ret = vxlan_table(sp, err);
    return ret;
}
