/* vnet.h: a network from its parts. */
#include "daemon/net/vnet.h"

#include "base/fsdir.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <net/if.h>
#include <unistd.h>

/* Exactly four dotted decimal octets, no leading zeros (inet_pton's reading, which takes no
 * octal and no short forms). */
static int vnet_addr_parse(const char *s, uint32_t *out)
{
    struct in_addr a;

    if (strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

static void vnet_addr_text(uint32_t a, char *out)
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int vnet_subnet_parse(const char *cidr, const char *gateway, struct vnet_subnet *out, char *err)
{
    char addr[16];
    const char *slash = strchr(cidr, '/');
    uint32_t mask, bcast;
    unsigned long prefix;
    char *end;
    size_t n = slash ? (size_t)(slash - cidr) : 0;

    if (!slash || n >= sizeof(addr) || slash[1] < '0' || slash[1] > '9')
        goto bad_subnet;
    memcpy(addr, cidr, n);
    addr[n] = '\0';
    errno = 0;
    prefix = strtoul(slash + 1, &end, 10);
    if (errno || *end || end - (slash + 1) > 2 || vnet_addr_parse(addr, &out->net))
        goto bad_subnet;
    if (prefix < 8 || prefix > 29) {
        snprintf(err, NETCMD_ERR_LEN,
                 "subnet: prefix /%lu is out of range: expected /8 to /29 (room for a gateway "
                 "and VMs)",
                 prefix);
        return -EINVAL;
    }
    out->prefix = (unsigned)prefix;
    mask = ~0u << (32 - prefix);
    if (out->net & ~mask) {
        vnet_addr_text(out->net & mask, addr);
        snprintf(err, NETCMD_ERR_LEN,
                 "subnet: %.20s has host bits set: the network's address is %s/%lu", cidr, addr,
                 prefix);
        return -EINVAL;
    }
    bcast = out->net | ~mask;
    if (!gateway) {
        out->gateway = out->net + 1;
        return 0;
    }
    if (vnet_addr_parse(gateway, &out->gateway)) {
        snprintf(err, NETCMD_ERR_LEN, "gateway: expected an IPv4 address A.B.C.D");
        return -EINVAL;
    }
    if ((out->gateway & mask) != out->net || out->gateway == out->net || out->gateway == bcast) {
        snprintf(err, NETCMD_ERR_LEN, "gateway: %.20s is not a host address of the subnet %.20s",
                 gateway, cidr);
        return -EINVAL;
    }
    return 0;
bad_subnet:
    snprintf(err, NETCMD_ERR_LEN, "subnet: expected an IPv4 network A.B.C.D/N (e.g. 10.0.0.0/24)");
    return -EINVAL;
}

void vnet_subnet_text(const struct vnet_subnet *sn, char *cidr, char *gateway)
{
    char a[16];

    vnet_addr_text(sn->net, a);
    snprintf(cidr, 19, "%.15s/%u", a, sn->prefix % 100);
    vnet_addr_text(sn->gateway, gateway);
}

/* The first 16 hex digits of SHA-256(kind "/" DEV:INO "/" tenant "/" name), DEV:INO being
 * the state directory's identity: kernel names are host-wide, and two daemons on one host
 * (two state directories) must never take or sweep each other's. The identity, unlike the
 * path, does not change with how the path is spelt. */
static void vnet_hash(const char *state_dir, const char *kind, const char *tenant, const char *name,
                      char *out)
{
    char key[512];
    struct stat st;
    uint8_t h[32];
    int i;

    if (stat(state_dir, &st))
        st.st_dev = st.st_ino = 0;
    snprintf(key, sizeof(key), "%s/%llx:%llx/%s/%s", kind, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, tenant, name);
    gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), h);
    for (i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

void vnet_hash_id(const char *state_dir, const char *kind, const char *tenant, const char *name,
                  char out[VNET_ID_LEN])
{
    vnet_hash(state_dir, kind, tenant, name, out);
}

void vnet_names(const char *state_dir, const char *tenant, const char *name, struct vnet_names *out)
{
    vnet_hash(state_dir, "net", tenant, name, out->id);
    snprintf(out->ns, sizeof(out->ns), VNET_NS_PREFIX "%s", out->id);
    snprintf(out->dir, sizeof(out->dir), "%.3000s/networks/%s", state_dir, out->id);
}

void vnet_tap_name(const char *state_dir, const char *tenant, const char *vm, unsigned index,
                   char out[IFNAMSIZ])
{
    char id[VNET_ID_LEN];

    vnet_hash(state_dir, "vm", tenant, vm, id);
    snprintf(out, IFNAMSIZ, VNET_TAP_PREFIX "%.11s%u", id, index % 10);
}

static int vnet_mkdir(const char *path, char *err)
{
    if (mkdir(path, 0700) && errno != EEXIST) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

/* Port security and DHCP for the ports. */
static int vnet_ports(const struct vnet_names *nm, struct dnsmasq_spec *spec, bool dhcp,
                      const struct vnet_port *ports, size_t n, char *err)
{
    struct dnsmasq_host *hosts = calloc(n + 1, sizeof(*hosts));
    struct portsec_port *ps = calloc(n + 1, sizeof(*ps));
    int ret = hosts && ps ? 0 : -ENOMEM;

    for (size_t i = 0; !ret && i < n; i++) {
        hosts[i] = (struct dnsmasq_host){ports[i].mac, ports[i].name, ports[i].ip};
        ps[i] = (struct portsec_port){ports[i].tap, ports[i].mac, ports[i].ip};
    }
    if (ret)
        snprintf(err, NETCMD_ERR_LEN, "network %s: out of memory", nm->id);
    if (!ret)
        ret = portsec_apply(nm->ns, nm->dir, ps, n, err);
    spec->hosts = hosts;
    spec->nhosts = n;
    if (!ret)
        ret = dhcp ? dnsmasq_start(spec, err) : dnsmasq_stop(nm->dir, err);
    free(ps);
    free(hosts);
    return ret;
}

void vnet_vxlan_name(const char *id, char out[IFNAMSIZ])
{
    snprintf(out, IFNAMSIZ, VNET_VXLAN_PREFIX "%.11s", id);
}

/* The host's switch: its folder and bridge name. */
static void vnet_ovs_names(const char *state_dir, char *dir, char bridge[IFNAMSIZ])
{
    char id[VNET_ID_LEN];

    vnet_hash(state_dir, "ovs", "", "", id);
    snprintf(bridge, IFNAMSIZ, VNET_OVS_PREFIX "%.11s", id);
    snprintf(dir, PATH_MAX, "%.3000s/ovs", state_dir);
}

/* Deletes dev from the host's namespace when it is there. A veth whose other end was in a
 * namespace just deleted goes by itself a moment later (the kernel dismantles namespaces
 * asynchronously): gone by the time `ip` looks is as good. */
static int vnet_link_remove(const char *dev, char *err)
{
    const char *del[] = {"ip", "link", "delete", "dev", dev, NULL};
    int ret = if_nametoindex(dev) ? netcmd_run(del, err) : 0;

    return ret && !if_nametoindex(dev) ? 0 : ret;
}

/* The network's uplink: a veth pair from its bridge to an access port of the tag. */
static int vnet_vlan_up(const char *state_dir, const struct vnet_names *nm,
                        const struct vnet_overlay *ov, char *err)
{
    char dir[PATH_MAX], bridge[IFNAMSIZ], host[IFNAMSIZ];
    const char *show[] = {"ip", "-n", nm->ns, "link", "show", "dev", VNET_UPLINK_NS, NULL};
    const char *add[] = {"ip",   "link", "add",          host,    "type", "veth",
                         "peer", "name", VNET_UPLINK_NS, "netns", nm->ns, NULL};
    const char *up[] = {"ip", "link", "set", "dev", host, "up", NULL};
    const char *master[] = {"ip",           "-n",     nm->ns,       "link", "set", "dev",
                            VNET_UPLINK_NS, "master", NETNS_BRIDGE, "up",   NULL};
    int ret;

    vnet_ovs_names(state_dir, dir, bridge);
    snprintf(host, sizeof(host), VNET_UPLINK_PREFIX "%.11s", nm->id);
    ret = ovs_ensure(dir, bridge, ov->trunk ? ov->trunk : "", err);
    if (ret)
        return ret;
    if (netcmd_run(show, err) || !if_nametoindex(host)) {
        ret = vnet_link_remove(host, err);
        if (!ret)
            ret = netcmd_run(add, err);
    }
    if (!ret)
        ret = netcmd_run(up, err);
    if (!ret)
        ret = netcmd_run(master, err);
    if (!ret)
        ret = ovs_port_add(dir, bridge, host, ov->vlan, err);
    return ret;
}

int vnet_vlan_release(const char *state_dir, char *err)
{
    char dir[PATH_MAX], bridge[IFNAMSIZ];

    vnet_ovs_names(state_dir, dir, bridge);
    return ovs_shutdown(dir, bridge, err);
}

int vnet_up(const char *state_dir, const char *tenant, const char *name,
            const struct vnet_subnet *sn, bool dhcp, const struct vnet_port *ports, size_t nports,
            char *err)
{
    return vnet_up_overlay(state_dir, tenant, name, sn, dhcp, ports, nports, NULL, err);
}

int vnet_up_overlay(const char *state_dir, const char *tenant, const char *name,
                    const struct vnet_subnet *sn, bool dhcp, const struct vnet_port *ports,
                    size_t nports, const struct vnet_overlay *ov, char *err)
{
    char vxdev[IFNAMSIZ];
    char top[PATH_MAX], cidr[20], gw[20], mask[16], lo[2][16], hi[2][16];
    uint32_t m = ~0u << (32 - sn->prefix), bcast = sn->net | ~m;
    struct dnsmasq_spec spec = {.iface = NETNS_BRIDGE};
    struct vnet_names nm;
    int ret;

    vnet_names(state_dir, tenant, name, &nm);
    snprintf(top, sizeof(top), "%.3000s/networks", state_dir);
    ret = vnet_mkdir(top, err);
    if (!ret)
        ret = vnet_mkdir(nm.dir, err);
    if (ret)
        return ret;
    vnet_subnet_text(sn, cidr, gw);
    snprintf(cidr, sizeof(cidr), "%.15s/%u", gw, sn->prefix % 100);
    ret = netns_create(nm.ns, cidr, err);
    if (ret)
        return ret;
    if (ov && ov->vni) {
        struct vxlan_spec vx = {.ns = nm.ns,
                                .dir = nm.dir,
                                .dev = vxdev,
                                .vni = ov->vni,
                                .local = ov->local,
                                .gateway = gw,
                                .peers = ov->peers,
                                .npeers = ov->npeers};

        vnet_vxlan_name(nm.id, vxdev);
        ret = vxlan_up(&vx, err);
        if (ret)
            return ret;
        spec.mtu = VXLAN_MTU;
    }
    if (ov && ov->vlan) {
        ret = vnet_vlan_up(state_dir, &nm, ov, err);
        if (ret)
            return ret;
    }
    /* The leases: the subnet's host addresses around the gateway's. */
    vnet_addr_text(m, mask);
    if (sn->gateway > sn->net + 1) {
        vnet_addr_text(sn->net + 1, lo[spec.nranges]);
        vnet_addr_text(sn->gateway - 1, hi[spec.nranges]);
        spec.nranges++;
    }
    if (sn->gateway < bcast - 1) {
        vnet_addr_text(sn->gateway + 1, lo[spec.nranges]);
        vnet_addr_text(bcast - 1, hi[spec.nranges]);
        spec.nranges++;
    }
    for (size_t i = 0; i < spec.nranges; i++) {
        spec.range[i][0] = lo[i];
        spec.range[i][1] = hi[i];
    }
    spec.dir = nm.dir;
    spec.ns = nm.ns;
    spec.gateway = gw;
    spec.mask = mask;
    return vnet_ports(&nm, &spec, dhcp, ports, nports, err);
}

/* Removes the network folder's files (all ours: no subfolders, no links followed). */
static int vnet_down_id(const char *state_dir, const char *id, char *err)
{
    char dir[PATH_MAX], ns[NETNS_NAME_MAX], vxdev[IFNAMSIZ], ovsdir[PATH_MAX];
    char bridge[IFNAMSIZ], uplink[IFNAMSIZ];
    int ret;

    snprintf(dir, sizeof(dir), "%.3000s/networks/%.16s", state_dir, id);
    snprintf(ns, sizeof(ns), VNET_NS_PREFIX "%.16s", id);
    vnet_vxlan_name(id, vxdev);
    vnet_ovs_names(state_dir, ovsdir, bridge);
    snprintf(uplink, sizeof(uplink), VNET_UPLINK_PREFIX "%.11s", id);
    ret = dnsmasq_stop(dir, err);
    if (!ret)
        ret = ovs_port_del(ovsdir, uplink, err);
    if (!ret)
        ret = netns_delete(ns, err);
    if (!ret)
        ret = vxlan_remove(vxdev, err);
    if (!ret)
        ret = vnet_link_remove(uplink, err);
    if (!ret && (ret = fsdir_remove_flat(dir)))
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", dir, strerror(-ret));
    return ret;
}

int vnet_down(const char *state_dir, const char *tenant, const char *name, char *err)
{
    struct vnet_names nm;

    vnet_names(state_dir, tenant, name, &nm);
    return vnet_down_id(state_dir, nm.id, err);
}

struct vnet_sweep {
    const char *state_dir;
    bool (*known)(void *arg, const char *id);
    void *arg;
    char *err;
};

static bool vnet_is_id(const char *s)
{
    return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

static int vnet_sweep_one(void *arg, const char *id)
{
    struct vnet_sweep *w = arg;

    if (!vnet_is_id(id) || w->known(w->arg, id))
        return 0;
    return vnet_down_id(w->state_dir, id, w->err);
}

int vnet_sweep(const char *state_dir, bool (*known)(void *arg, const char *id), void *arg,
               char *err)
{
    struct vnet_sweep w = {state_dir, known, arg, err};
    char top[PATH_MAX];
    struct dirent *e;
    DIR *dp;
    int ret = 0;

    /* By folder: a network's folder is made before its namespace and removed after it, so
     * every leftover of ours has one, and another daemon's namespaces are never touched. */
    snprintf(top, sizeof(top), "%.3000s/networks", state_dir);
    dp = opendir(top);
    if (!dp)
        return errno == ENOENT ? 0 : -errno;
    while (!ret && (e = readdir(dp)))
        ret = vnet_sweep_one(&w, e->d_name);
    closedir(dp);
    return ret;
}
