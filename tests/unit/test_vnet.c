/* Virtual networks on the host (daemon/net/vnet.h): the subnet parser's answers to good and
 * hostile text, the kernel names (fit IFNAMSIZ, apart between tenants), and, where we are root
 * with iproute2 and dnsmasq, a real network: namespace, bridge and dnsmasq made, a tap opened
 * as the VMM opens it, moved in and still carrying frames, a dnsmasq left alone when nothing
 * changed, and everything gone after a sweep. Also the overlays: a VXLAN device with its
 * peers' flood entries (replaced live) and, with Open vSwitch installed, a tagged network's
 * access port on tesserad's own switch, and nothing of either left after. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/net/netcheck.h"
#include "daemon/net/vnet.h"
#include "daemon/net/vnic.h"
#include "test.h"

static void test_subnet(void)
{
    static const char *const bad[] = {
        "10.0.0.1/24",  "10.0.0.0/33",
        "10.0.0.0/7",   "10.0.0.0/30",
        "10.0.0.0",     "10.0.0.0/",
        "10.0.0.0/024", "010.0.0.0/24",
        "10.0.0.0/24x", "10.0.0/24",
        "/24",          "10.0.0.0/-1",
        "10.0.0.0 /24", "",
        "1.2.3.4.5/24",
    };
    struct vnet_subnet sn;
    char err[NETCMD_ERR_LEN], cidr[24], gw[24];

    CHECK(vnet_subnet_parse("10.0.0.0/24", NULL, &sn, err) == 0);
    vnet_subnet_text(&sn, cidr, gw);
    CHECK(!strcmp(cidr, "10.0.0.0/24") && !strcmp(gw, "10.0.0.1"));
    CHECK(vnet_subnet_parse("192.168.128.0/17", "192.168.255.254", &sn, err) == 0);
    vnet_subnet_text(&sn, cidr, gw);
    CHECK(!strcmp(cidr, "192.168.128.0/17") && !strcmp(gw, "192.168.255.254"));
    CHECK(vnet_subnet_parse("10.0.0.0/29", NULL, &sn, err) == 0 && sn.prefix == 29);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(vnet_subnet_parse(bad[i], NULL, &sn, err) == -EINVAL);
        CHECK(!strncmp(err, "subnet: ", 8));
    }
    /* Gateways: outside, the network's own, the broadcast, not an address. */
    CHECK(vnet_subnet_parse("10.0.0.0/24", "10.0.1.1", &sn, err) == -EINVAL &&
          !strncmp(err, "gateway: ", 9));
    CHECK(vnet_subnet_parse("10.0.0.0/24", "10.0.0.0", &sn, err) == -EINVAL);
    CHECK(vnet_subnet_parse("10.0.0.0/24", "10.0.0.255", &sn, err) == -EINVAL);
    CHECK(vnet_subnet_parse("10.0.0.0/24", "gateway", &sn, err) == -EINVAL);
    CHECK(strstr(err, "gateway") != NULL);
}

static void test_names(void)
{
    char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];
    struct vnet_names n1, n2, n3;

    vnet_names("/", "alpha", "lan", &n1);
    vnet_names("/", "beta", "lan", &n2);
    vnet_names("/", "alpha", "lan", &n3);
    CHECK(!strcmp(n1.ns, n3.ns) && strcmp(n1.ns, n2.ns));
    CHECK(!strncmp(n1.ns, VNET_NS_PREFIX, strlen(VNET_NS_PREFIX)) && strlen(n1.id) == 16);
    CHECK(!strcmp(n1.dir + strlen(n1.dir) - 16, n1.id) && !strncmp(n1.dir, "//networks/", 11));
    /* The same VM name in two tenants, and two NICs of one VM: three taps, each a legal
     * interface name (at most IFNAMSIZ - 1 characters). */
    vnet_tap_name("/", "alpha", "web", 0, a);
    vnet_tap_name("/", "beta", "web", 0, b);
    vnet_tap_name("/", "alpha", "web", 1, c);
    CHECK(strlen(a) == IFNAMSIZ - 1 && strlen(b) == IFNAMSIZ - 1);
    CHECK(strcmp(a, b) && strcmp(a, c) && !strncmp(a, c, IFNAMSIZ - 2));
    /* Another state directory (another daemon): other names; the same one spelt otherwise:
     * the same. */
    vnet_tap_name("/tmp", "alpha", "web", 0, b);
    CHECK(strcmp(a, b));
    vnet_tap_name("/tmp/./", "alpha", "web", 0, c);
    CHECK(!strcmp(b, c));
    vnet_names("/tmp", "alpha", "lan", &n2);
    vnet_names("/tmp/.", "alpha", "lan", &n3);
    CHECK(!strcmp(n2.ns, n3.ns));
}

static int sh(const char *cmd)
{
    return system(cmd);
}

/* Opens the tap by name as src/net/tap.c does: in the host's namespace. */
static int tap_open(const char *name)
{
    struct ifreq ifr = {0};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return -1;
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what the tap's file has within ms milliseconds: 1 a frame, 0 none. */
static int tap_read(int fd, int ms, uint8_t *buf, size_t len)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, ms) == 1 && read(fd, buf, len) > 0;
}

/* Sends an ARP request for 10.231.0.1 (the bridge) from the tap's guest side: Ethernet source
 * src, ARP sender sha with address 10.231.0.SPA (RFC 826). Returns whether the bridge's reply
 * came back. */
static bool arp_answered(int fd, const uint8_t src[6], const uint8_t sha[6], uint8_t last)
{
    uint8_t f[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, buf[2048];
    static const uint8_t tail[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1};
    static const uint8_t tpa[4] = {10, 231, 0, 1};
    const uint8_t spa[4] = {10, 231, 0, last};

    while (tap_read(fd, 0, buf, sizeof(buf)))
        ;
    memcpy(f + 6, src, 6);
    memcpy(f + 12, tail, sizeof(tail));
    memcpy(f + 22, sha, 6);
    memcpy(f + 28, spa, 4);
    memcpy(f + 38, tpa, 4);
    if (write(fd, f, sizeof(f)) != (ssize_t)sizeof(f))
        return false;
    /* Anything else the bridge sends (IPv6 router solicitations...) is skipped. */
    for (int i = 0; i < 20 && tap_read(fd, 1000, buf, sizeof(buf)); i++)
        if (buf[12] == 0x08 && buf[13] == 0x06 && buf[21] == 2 && !memcmp(buf, sha, 6))
            return true;
    return false;
}

/* Whether process pid blocks SIGTERM (/proc/PID/status, SigBlk: a hex mask, bit N-1 for
 * signal N). */
static bool blocks_sigterm(pid_t pid)
{
    char path[64], line[256];
    unsigned long long mask = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "SigBlk: %llx", &mask) == 1)
            found = true;
    if (f)
        fclose(f);
    return !found || (mask & (1ull << (SIGTERM - 1)));
}

static bool none_known(void *arg, const char *id)
{
    return false;
}

/* Whether drift holds an entry for object. */
static bool drift_names(json_t *drift, const char *object)
{
    json_t *e;
    size_t i;

    json_array_foreach(drift, i, e) if (!strcmp(json_string_value(json_object_get(e, "object")),
                                                object)) return true;
    return false;
}

static void test_real(void)
{
    struct vnet_port ports[] = {{"52:54:00:aa:bb:01", "vm-one", "tsrunit0", "10.231.0.2"}};
    char state[] = "/tmp/tessera-vnet-XXXXXX", err[NETCMD_ERR_LEN], tap[IFNAMSIZ], cmd[512];
    char conf[PATH_MAX + 32], buf[4096];
    struct vnet_subnet sn;
    struct vnet_names nm;
    struct pollfd pfd;
    sigset_t term, old;
    pid_t pid1, pid2;
    FILE *f;
    size_t n;
    int fd;

    if (geteuid() != 0 || !netcmd_have("ip") || !netcmd_have("dnsmasq") ||
        access("/dev/net/tun", R_OK | W_OK)) {
        printf("vnet: skipping the real network (needs root, iproute2, dnsmasq, /dev/net/tun)\n");
        return;
    }
    if (!mkdtemp(state)) {
        CHECK(0);
        return;
    }
    vnet_names(state, "unit", "lan", &nm);
    CHECK(vnet_subnet_parse("10.231.0.0/24", NULL, &sn, err) == 0);
    /* As in tesserad, whose threads block SIGTERM: dnsmasq must not inherit that. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    CHECK(vnet_up(state, "unit", "lan", &sn, true, ports, 1, err) == 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CHECK(netns_exists(nm.ns));
    CHECK(dnsmasq_running(nm.dir, &pid1));
    CHECK(!blocks_sigterm(pid1));
    snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", nm.dir);
    f = fopen(conf, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(buf, "dhcp-host=52:54:00:aa:bb:01,10.231.0.2,vm-one\n") != NULL);
    CHECK(strstr(buf, "dhcp-range=10.231.0.2,10.231.0.254,255.255.255.0,1h\n") != NULL);
    /* Nothing changed: the same dnsmasq serves on. A new host: a new one. */
    CHECK(vnet_up(state, "unit", "lan", &sn, true, ports, 1, err) == 0);
    CHECK(dnsmasq_running(nm.dir, &pid2) && pid2 == pid1);
    CHECK(vnet_up(state, "unit", "lan", &sn, true, ports, 0, err) == 0);
    CHECK(dnsmasq_running(nm.dir, &pid2) && pid2 != pid1);
    /* A restart keeps the leases of the network's NICs and drops the others' (a deleted VM's
     * lease would keep its address from the next VM given it). */
    snprintf(conf, sizeof(conf), "%s/dnsmasq.leases", nm.dir);
    f = fopen(conf, "w");
    if (f) {
        fprintf(f, "%lld 52:54:00:aa:bb:01 10.231.0.2 vm-one *\n", (long long)time(NULL) + 3600);
        fprintf(f, "%lld 52:54:00:de:ad:00 10.231.0.3 gone *\n", (long long)time(NULL) + 3600);
        fclose(f);
    }
    CHECK(vnet_up(state, "unit", "lan", &sn, true, ports, 1, err) == 0);
    f = fopen(conf, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(buf, "52:54:00:aa:bb:01 10.231.0.2") && !strstr(buf, "52:54:00:de:ad:00"));

    /* A VM NIC: made in the host's namespace, opened there, moved in; the open file still
     * carries the network's frames (an ARP request for a neighbour reaches it). */
    vnet_tap_name(state, "unit", "vm-one", 0, tap);
    CHECK(vnic_prepare(tap, nm.ns, err) == 0);
    fd = tap_open(tap);
    CHECK(fd >= 0);
    CHECK(vnic_plug(tap, nm.ns, err) == 0);
    CHECK(if_nametoindex(tap) == 0);
    snprintf(cmd, sizeof(cmd), "ip -n %s link show dev %s | grep -q 'master br0'", nm.ns, tap);
    CHECK(sh(cmd) == 0);
    CHECK(vnic_plug(tap, nm.ns, err) == 0); /* again, as after a restart: harmless */
    snprintf(cmd, sizeof(cmd), "ip netns exec %s ping -c1 -W1 10.231.0.77 >/dev/null 2>&1", nm.ns);
    sh(cmd);
    pfd = (struct pollfd){.fd = fd, .events = POLLIN};
    CHECK(fd >= 0 && poll(&pfd, 1, 2000) == 1 && read(fd, buf, sizeof(buf)) >= 42);

    /* Drift: none while everything is as made; each break named, and gone after a new
     * bring-up and plug. */
    {
        struct vnet_port mine = {ports[0].mac, ports[0].name, tap, ports[0].ip};
        struct netcheck_port cp = {mine, true};
        json_t *drift = json_array();
        char want[64];

        snprintf(want, sizeof(want), "tap %s", tap);
        CHECK(vnet_up(state, "unit", "lan", &sn, true, &mine, 1, err) == 0);
        CHECK(netcheck_network(state, "unit", "lan", &sn, true, &cp, 1, NULL, 0, drift, err) == 0);
        CHECK(json_array_size(drift) == 0);
        snprintf(cmd, sizeof(cmd), "ip -n %s link set %s nomaster", nm.ns, tap);
        CHECK(sh(cmd) == 0);
        snprintf(cmd, sizeof(cmd), "ip netns exec %s nft delete table bridge tessera", nm.ns);
        CHECK(sh(cmd) == 0);
        json_array_clear(drift);
        CHECK(netcheck_network(state, "unit", "lan", &sn, true, &cp, 1, NULL, 0, drift, err) == 0);
        CHECK(json_array_size(drift) == 2 && drift_names(drift, want) &&
              drift_names(drift, "nft table bridge tessera"));
        /* Told the network has no DHCP, its running dnsmasq is drift too; a stopped VM's
         * unplugged tap is not. */
        cp.running = false;
        json_array_clear(drift);
        CHECK(netcheck_network(state, "unit", "lan", &sn, false, &cp, 1, NULL, 0, drift, err) == 0);
        CHECK(json_array_size(drift) == 2 && drift_names(drift, "dnsmasq") &&
              !drift_names(drift, want));
        cp.running = true;
        CHECK(vnet_up(state, "unit", "lan", &sn, true, &mine, 1, err) == 0);
        CHECK(vnic_plug(tap, nm.ns, err) == 0);
        json_array_clear(drift);
        CHECK(netcheck_network(state, "unit", "lan", &sn, true, &cp, 1, NULL, 0, drift, err) == 0);
        CHECK(json_array_size(drift) == 0);
        json_decref(drift);
    }

    /* Port security: the port lets through frames from its own MAC only, and ARP whose
     * sender is that MAC; with traffic, not just rules. */
    {
        static const uint8_t own[6] = {0x52, 0x54, 0, 0xaa, 0xbb, 0x02};
        static const uint8_t forged[6] = {0x52, 0x54, 0, 0x66, 0x66, 0x66};
        struct vnet_port two[] = {ports[0], {"52:54:00:aa:bb:02", "vm-two", tap, "10.231.0.50"}};

        CHECK(vnet_up(state, "unit", "lan", &sn, true, two, 2, err) == 0);
        snprintf(cmd, sizeof(cmd),
                 "ip netns exec %s nft list table bridge tessera | grep -q "
                 "'iifname \"%s\" ether saddr != 52:54:00:aa:bb:02 drop'",
                 nm.ns, tap);
        CHECK(sh(cmd) == 0);
        CHECK(fd >= 0 && arp_answered(fd, own, own, 50));
        CHECK(fd >= 0 && !arp_answered(fd, forged, forged, 50));
        CHECK(fd >= 0 && !arp_answered(fd, own, forged, 50));
        CHECK(fd >= 0 && !arp_answered(fd, forged, own, 50));
        /* Its own MAC but another address (vm-one's, or one nobody has): nothing either. */
        CHECK(fd >= 0 && !arp_answered(fd, own, own, 2));
        CHECK(fd >= 0 && !arp_answered(fd, own, own, 51));
        CHECK(fd >= 0 && arp_answered(fd, own, own, 50));
    }
    if (fd >= 0)
        close(fd);
    /* A new start: the old tap goes wherever it is, a fresh one is in the host's namespace. */
    CHECK(vnic_prepare(tap, nm.ns, err) == 0);
    CHECK(if_nametoindex(tap) != 0);
    CHECK(vnic_remove(tap, nm.ns, err) == 0 && if_nametoindex(tap) == 0);
    CHECK(vnic_remove(tap, nm.ns, err) == 0);

    /* A sweep that knows no network removes it all: dnsmasq, namespace, folder; but not
     * another daemon's namespace (no folder of ours). */
    CHECK(sh("ip netns add " VNET_NS_PREFIX "0123456789abcdef") == 0);
    CHECK(vnet_sweep(state, none_known, NULL, err) == 0);
    CHECK(netns_exists(VNET_NS_PREFIX "0123456789abcdef"));
    CHECK(sh("ip netns delete " VNET_NS_PREFIX "0123456789abcdef") == 0);
    CHECK(!netns_exists(nm.ns));
    CHECK(!dnsmasq_running(nm.dir, &pid2));
    CHECK(access(nm.dir, F_OK) != 0);
    CHECK(vnet_down(state, "unit", "lan", err) == 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
    sh(cmd);
}

/* What cmd prints (at most len - 1 bytes). */
static void sh_out(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, len - 1, p) : 0;

    out[n] = '\0';
    if (p)
        pclose(p);
}

/* The underlay and peer addresses taken or refused before they reach a command line. */
static void test_vxlan_addr(void)
{
    static const char *const good[] = {"192.0.2.1", "10.0.0.255", "1.2.3.4"};
    static const char *const bad[] = {
        "",           "0.0.0.0",   "255.255.255.255", "224.0.0.1", "239.9.9.9",
        "1.2.3",      "1.2.3.4.5", "01.2.3.4",        "1.2.3.4 ",  "-1.2.3.4",
        "1.2.3.4;rm", "::1",       "192.0.2.1/24"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(vxlan_check_addr(good[i]) == 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(vxlan_check_addr(bad[i]) == -EINVAL);
    CHECK(vxlan_check_addr(NULL) == -EINVAL);
}

/* A VXLAN network for real: the device on the bridge in the network's namespace, one flood
 * entry per peer, replaced live, MTU 1450 on the bridge; gone with the network. Where Open
 * vSwitch is installed, a tagged network's uplink is an access port of its tag on tesserad's
 * own switch, which vnet_vlan_release() stops with nothing left. */
static void test_overlay_real(void)
{
    const char *peers[] = {"192.0.2.2", "192.0.2.3"};
    struct vnet_overlay ov = {.vni = 4000000 + (uint32_t)getpid() % 100000,
                              .local = "192.0.2.1",
                              .peers = peers,
                              .npeers = 2};
    char state[] = "/tmp/tessera-vnet-XXXXXX", err[NETCMD_ERR_LEN], cmd[PATH_MAX + 256];
    char out[4096], dev[IFNAMSIZ], ovs[PATH_MAX];
    struct vnet_subnet sn;
    struct vnet_names nm;

    if (geteuid() != 0 || !netcmd_have("ip") || !netcmd_have("bridge") || !netcmd_have("nft")) {
        printf("vnet: skipping the real overlay (needs root, iproute2 and nftables)\n");
        return;
    }
    if (!mkdtemp(state)) {
        CHECK(0);
        return;
    }
    vnet_names(state, "unit", "span", &nm);
    vnet_vxlan_name(nm.id, dev);
    CHECK(vnet_subnet_parse("10.232.0.0/24", NULL, &sn, err) == 0);
    CHECK(vnet_up_overlay(state, "unit", "span", &sn, false, NULL, 0, &ov, err) == 0);
    snprintf(cmd, sizeof(cmd), "bridge -n %s fdb show dev %s", nm.ns, dev);
    sh_out(cmd, out, sizeof(out));
    CHECK(strstr(out, "00:00:00:00:00:00 dst 192.0.2.2 ") && strstr(out, "dst 192.0.2.3 "));
    snprintf(cmd, sizeof(cmd), "ip -n %s -d link show %s", nm.ns, dev);
    sh_out(cmd, out, sizeof(out));
    CHECK(strstr(out, "master br0") && strstr(out, "mtu 1450") && strstr(out, "nolearning") &&
          strstr(out, "local 192.0.2.1"));
    snprintf(cmd, sizeof(cmd), "ip -n %s link show br0", nm.ns);
    sh_out(cmd, out, sizeof(out));
    CHECK(strstr(out, "mtu 1450") != NULL);
    /* Peers replaced on the running device. */
    ov.peers = &peers[1];
    ov.npeers = 1;
    CHECK(vnet_up_overlay(state, "unit", "span", &sn, false, NULL, 0, &ov, err) == 0);
    snprintf(cmd, sizeof(cmd), "bridge -n %s fdb show dev %s", nm.ns, dev);
    sh_out(cmd, out, sizeof(out));
    CHECK(!strstr(out, "192.0.2.2") && strstr(out, "dst 192.0.2.3 "));
    /* A hostile peer never reaches a command line. */
    peers[1] = "192.0.2.3 dev lo";
    CHECK(vnet_up_overlay(state, "unit", "span", &sn, false, NULL, 0, &ov, err) == -EINVAL);
    CHECK(vnet_down(state, "unit", "span", err) == 0);
    CHECK(!netns_exists(nm.ns) && if_nametoindex(dev) == 0);

    if (netcmd_have("ovs-vswitchd") &&
        sh("ip link add tsrunitt0 type veth peer name tsrunitt1") == 0) {
        struct vnet_overlay vl = {.vlan = 100, .trunk = "tsrunitt0"};
        char uplink[IFNAMSIZ], bridge[64];
        int ret;

        vnet_names(state, "unit", "tagged", &nm);
        snprintf(uplink, sizeof(uplink), VNET_UPLINK_PREFIX "%.11s", nm.id);
        snprintf(ovs, sizeof(ovs), "%s/ovs", state);
        CHECK(vnet_up_overlay(state, "unit", "tagged", &sn, false, NULL, 0, &vl, err) == 0);
        CHECK(ovs_running(ovs));
        snprintf(cmd, sizeof(cmd), "ovs-vsctl --db=unix:%s/db.sock get port %s tag", ovs, uplink);
        sh_out(cmd, out, sizeof(out));
        CHECK(!strcmp(out, "100\n"));
        snprintf(cmd, sizeof(cmd), "ip -n %s link show up0", nm.ns);
        sh_out(cmd, out, sizeof(out));
        CHECK(strstr(out, "master br0") != NULL);
        /* A missing trunk is a clear error, not a port of nothing. */
        vl.trunk = "tsrunitnone";
        CHECK(vnet_up_overlay(state, "unit", "tagged", &sn, false, NULL, 0, &vl, err) == -ENODEV);
        CHECK(strstr(err, "tsrunitnone") != NULL);
        CHECK(vnet_down(state, "unit", "tagged", err) == 0);
        CHECK(if_nametoindex(uplink) == 0);
        /* A switch killed (no chance to delete its bridge's device): the release still leaves
         * nothing. */
        snprintf(cmd, sizeof(cmd), "ovs-vsctl --db=unix:%s/db.sock list-br", ovs);
        sh_out(cmd, bridge, sizeof(bridge));
        bridge[strcspn(bridge, "\n")] = '\0';
        CHECK(strlen(bridge) > 4 && if_nametoindex(bridge) != 0);
        snprintf(cmd, sizeof(cmd), "kill -9 $(cat %s/ovs-vswitchd.pid)", ovs);
        CHECK(sh(cmd) == 0);
        ret = vnet_vlan_release(state, err);
        CHECK(ret == 0);
        if (ret)
            printf("vnet: %s\n", err);
        CHECK(!ovs_running(ovs) && access(ovs, F_OK) != 0);
        CHECK(bridge[0] && if_nametoindex(bridge) == 0);
        sh("ip link delete tsrunitt0");
    } else {
        printf("vnet: skipping the VLAN switch (needs Open vSwitch and veth)\n");
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
    sh(cmd);
}

int main(void)
{
    test_subnet();
    test_names();
    test_real();
    test_vxlan_addr();
    test_overlay_real();
    return test_finish("vnet");
}
