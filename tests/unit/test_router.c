/* Tenant routers (src/daemon/net/router.h): the parsers against hostile text, the nftables
 * text they make, and as root a real router between a network (vnet.h) and an "outside"
 * namespace on a host bridge, checked with TCP connections: source NAT as the router's address
 * or a floating one, a port forward and a floating address reaching in, nothing else reaching
 * in, an open connection surviving a change of the rules, a router without a way out joining
 * two networks (and their being apart again once it goes), and nothing left after the router's
 * deletion or a sweep. */
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/net/router.h"
#include "daemon/net/vnet.h"
#include "test.h"

static uint32_t A(const char *s)
{
    uint32_t a = 0;

    CHECK(router_addr_parse(s, &a) == 0);
    return a;
}

static void test_parsers(void)
{
    static const char *const bad[] = {"",          "1.2.3",      "1.2.3.4.5", "01.2.3.4",
                                      "256.1.1.1", "1.2.3.4 ",   " 1.2.3.4",  "1.2.3.-4",
                                      "0x1.2.3.4", "1.2.3.4/24", "1..2.3",    "1.2.3.4444444444",
                                      "a.b.c.d"};
    char err[NETCMD_ERR_LEN], text[16];
    struct vnet_subnet sn;
    uint32_t a, first, last;
    unsigned p;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(router_addr_parse(bad[i], &a) == -EINVAL);
    CHECK(router_addr_parse(NULL, &a) == -EINVAL);
    CHECK(router_addr_parse("192.0.2.10", &a) == 0 && a == 0xc000020a);
    router_addr_text(a, text);
    CHECK(!strcmp(text, "192.0.2.10"));

    CHECK(router_proto_parse("tcp", &p) == 0 && p == 6);
    CHECK(router_proto_parse("udp", &p) == 0 && p == 17);
    CHECK(router_proto_parse("TCP", &p) == -EINVAL);
    CHECK(router_proto_parse("tcp ", &p) == -EINVAL);
    CHECK(router_proto_parse("icmp", &p) == -EINVAL);
    CHECK(router_proto_parse(NULL, &p) == -EINVAL);

    CHECK(router_subnets_overlap(A("10.0.0.0"), 24, A("10.0.0.128"), 25));
    CHECK(router_subnets_overlap(A("10.0.0.0"), 8, A("10.200.0.0"), 16));
    CHECK(!router_subnets_overlap(A("10.0.0.0"), 24, A("10.0.1.0"), 24));
    CHECK(router_subnets_overlap(A("10.0.0.0"), 24, A("10.0.0.7"), 32));
    CHECK(!router_subnets_overlap(A("10.0.0.0"), 24, A("10.0.1.7"), 32));

    CHECK(vnet_subnet_parse("192.0.2.0/24", "192.0.2.1", &sn, err) == 0);
    CHECK(router_pool_parse("192.0.2.10-192.0.2.20", &sn, &first, &last, err) == 0 &&
          first == A("192.0.2.10") && last == A("192.0.2.20"));
    CHECK(router_pool_parse("192.0.2.10-192.0.2.10", &sn, &first, &last, err) == 0);
    static const char *const badpool[] = {
        "192.0.2.20-192.0.2.10",  /* reversed */
        "192.0.2.0-192.0.2.10",   /* the network's address */
        "192.0.2.10-192.0.2.255", /* the broadcast */
        "192.0.2.1-192.0.2.10",   /* holds the gateway */
        "192.0.3.10-192.0.3.20",  /* another subnet */
        "192.0.2.200-192.0.3.5",  /* runs out of it */
        "192.0.2.10",
        "192.0.2.10-",
        "-192.0.2.10",
        "192.0.2.10--192.0.2.11",
        "192.0.2.10-192.0.2.11-192.0.2.12",
        "192.0.2.010-192.0.2.11",
        "",
        "192.0.2.10-192.0.2.11aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(badpool) / sizeof(badpool[0]); i++) {
        err[0] = '\0';
        CHECK(router_pool_parse(badpool[i], &sn, &first, &last, err) == -EINVAL);
        CHECK(!strncmp(err, "pool:", 5));
    }
    CHECK(router_pool_parse(NULL, &sn, &first, &last, err) == -EINVAL);
}

static void test_rules_text(void)
{
    struct router_ext ext = {"br-ext", A("192.0.2.10"), 24, A("192.0.2.1"), true};
    struct router_net nets[2] = {{"0123456789abcdef", A("10.0.0.0"), 24},
                                 {"fedcba9876543210", A("10.1.0.0"), 16}};
    struct router_forward fwd = {6, 8080, A("10.0.0.5"), 80};
    struct router_fip fip = {A("192.0.2.11"), A("10.1.2.3")};
    struct router_spec s = {&ext, nets, 2, &fwd, 1, &fip, 1};
    char buf[8192], small[64];

    CHECK(router_rules_text(&s, buf, sizeof(buf)) == 0);
    CHECK(strstr(buf, "delete table ip tessera_router\n") != NULL);
    CHECK(strstr(buf, "iifname \"ext0\" ip daddr 192.0.2.10 tcp dport 8080 dnat to "
                      "10.0.0.5:80\n") != NULL);
    CHECK(strstr(buf, "iifname \"ext0\" ip daddr 192.0.2.11 dnat to 10.1.2.3\n") != NULL);
    CHECK(strstr(buf, "oifname \"ext0\" ip saddr 10.1.2.3 snat to 192.0.2.11\n") != NULL);
    CHECK(strstr(buf, "oifname \"ext0\" ip saddr { 10.0.0.0/24, 10.1.0.0/16 } snat to "
                      "192.0.2.10\n") != NULL);
    /* The floating address's own SNAT comes before the router's masquerade. */
    CHECK(strstr(buf, "snat to 192.0.2.11") < strstr(buf, "snat to 192.0.2.10"));
    CHECK(strstr(buf, "policy drop;\n        ct state established,related accept\n") != NULL);
    CHECK(router_rules_text(&s, small, sizeof(small)) == -ENOSPC);

    /* No snat: no masquerade, and nothing of the subnets may leave. */
    ext.snat = false;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == 0);
    CHECK(strstr(buf, "snat to 192.0.2.10") == NULL);
    CHECK(strstr(buf, "oifname \"ext0\" ip saddr { ") == NULL);
    ext.snat = true;

    /* Hostile specs never reach the text. */
    fwd.port = 0;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fwd.port = 65536;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fwd.port = 80;
    fwd.ext_port = 0;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fwd.ext_port = 8080;
    fwd.proto = 1;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fwd.proto = 6;
    fwd.ip = A("10.2.0.5"); /* not behind the router */
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fwd.ip = A("10.0.0.5");
    fip.ip = A("172.16.0.1");
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    fip.ip = A("10.1.2.3");
    ext.bridge = "br\";drop";
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    ext.bridge = "-br";
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    ext.bridge = "br-ext";
    nets[1].id = "../../etc/passwd";
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    nets[1].id = "fedcba9876543210";
    s.ext = NULL; /* forwards without a way out */
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == -EINVAL);
    s.nfwds = s.nfips = 0;
    CHECK(router_rules_text(&s, buf, sizeof(buf)) == 0);
    CHECK(strstr(buf, "snat") == NULL && strstr(buf, "dnat to") == NULL);
}

/* ---- As root: a real router ---- */

static int sh(const char *const argv[])
{
    char err[NETCMD_ERR_LEN];
    int ret = netcmd_run(argv, err);

    if (ret)
        fprintf(stderr, "router: %s\n", err);
    return ret;
}

static int self_ns = -1;

/* Moves this (single-threaded) process into namespace ns (NULL: back home); sockets made
 * after stay in the namespace they were made in. */
static int enter(const char *ns)
{
    char path[128];
    int fd, ret;

    if (!ns)
        return setns(self_ns, CLONE_NEWNET);
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ret = setns(fd, CLONE_NEWNET);
    close(fd);
    return ret;
}

static int listener(const char *ns, const char *addr, unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd;

    if (enter(ns))
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))) {
        close(fd);
        fd = -1;
    }
    enter(NULL);
    return fd;
}

/* A connection from ns (bound to src when given) to addr:port within two seconds; -1 when it
 * does not open. */
static int connect_from(const char *ns, const char *src, const char *addr, unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in me = {.sin_family = AF_INET};
    struct pollfd p;
    int fd, e = 0;
    socklen_t len = sizeof(e);

    if (enter(ns))
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    enter(NULL);
    if (fd < 0)
        return -1;
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (src) {
        inet_pton(AF_INET, src, &me.sin_addr);
        if (bind(fd, (struct sockaddr *)&me, sizeof(me)))
            goto fail;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS)
        goto fail;
    p = (struct pollfd){fd, POLLOUT, 0};
    if (poll(&p, 1, 2000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) || e)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* The address the listener sees the next connection come from ("" if none within 2 s). */
static void peer_of(int lfd, char out[16], int *conn)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    struct pollfd p = {lfd, POLLIN, 0};
    int fd;

    out[0] = '\0';
    *conn = -1;
    if (poll(&p, 1, 2000) != 1)
        return;
    fd = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    inet_ntop(AF_INET, &sa.sin_addr, out, 16);
    *conn = fd;
}

static bool link_exists(const char *ns, const char *dev)
{
    const char *argv[] = {"ip", "-n", ns, "link", "show", "dev", dev, NULL};
    const char *host[] = {"ip", "link", "show", "dev", dev, NULL};
    char err[NETCMD_ERR_LEN];

    return !netcmd_run(ns ? argv : host, err);
}

/* The MAC of dev in namespace ns as "xx:xx:..." ("" when unknown). */
static void mac_of(const char *ns, const char *dev, char out[18])
{
    struct ifreq ifr = {0};
    unsigned char *m = (unsigned char *)ifr.ifr_hwaddr.sa_data;
    int fd;

    out[0] = '\0';
    if (enter(ns))
        return;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    enter(NULL);
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
    if (fd >= 0 && !ioctl(fd, SIOCGIFHWADDR, &ifr))
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    if (fd >= 0)
        close(fd);
}

static bool keep_all(void *arg, const char *id)
{
    return strcmp(id, arg) != 0;
}

static void test_real(void)
{
    char state[] = "/tmp/tsr-router-XXXXXX", err[NETCMD_ERR_LEN], br[16], out[32], vm[32], hv[16],
         ho[16], seen[16], path[PATH_MAX];
    struct vnet_subnet sn;
    struct vnet_names nm;
    struct router_names rn, rn2;
    int l, c, a, c2, a2;

    if (geteuid() != 0 || !netcmd_have("ip") || !netcmd_have("nft") || !netcmd_have("sysctl") ||
        !mkdtemp(state)) {
        printf("router: skipping the real router (needs root, iproute2, nft, sysctl)\n");
        return;
    }
    self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    snprintf(br, sizeof(br), "tsrub%d", (int)getpid() % 100000);
    snprintf(out, sizeof(out), "tsru-out-%d", (int)getpid());
    snprintf(vm, sizeof(vm), "tsru-vm-%d", (int)getpid());
    snprintf(ho, sizeof(ho), "tsruo%d", (int)getpid() % 100000);
    snprintf(hv, sizeof(hv), "tsruv%d", (int)getpid() % 100000);
    CHECK(vnet_subnet_parse("10.9.0.0/24", NULL, &sn, err) == 0);
    CHECK(vnet_up(state, "t", "lan", &sn, false, NULL, 0, err) == 0);
    vnet_names(state, "t", "lan", &nm);
    {
        /* The outside: a bridge of the host and a namespace on it holding 198.51.100.1. */
        const char *cmds[][16] = {
            {"ip", "link", "add", br, "type", "bridge", NULL},
            {"ip", "link", "set", br, "up", NULL},
            {"ip", "netns", "add", out, NULL},
            {"ip", "link", "add", ho, "type", "veth", "peer", "name", "eth0", "netns", out, NULL},
            {"ip", "link", "set", ho, "master", br, "up", NULL},
            {"ip", "-n", out, "addr", "add", "198.51.100.1/24", "dev", "eth0", NULL},
            {"ip", "-n", out, "link", "set", "eth0", "up", NULL},
            /* A hostile neighbour on the external segment routes the tenant's subnet at the
             * router: the filter must still keep it out. */
            {"ip", "-n", out, "route", "add", "10.9.0.0/24", "via", "198.51.100.10", NULL},
            /* A VM's stand-in on the network's bridge: .5, and .6 behind a floating IP. */
            {"ip", "netns", "add", vm, NULL},
            {"ip", "link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", vm, NULL},
            {"ip", "link", "set", hv, "netns", nm.ns, NULL},
            {"ip", "-n", nm.ns, "link", "set", hv, "master", "br0", "up", NULL},
            {"ip", "-n", vm, "addr", "add", "10.9.0.5/24", "dev", "eth0", NULL},
            {"ip", "-n", vm, "addr", "add", "10.9.0.6/24", "dev", "eth0", NULL},
            {"ip", "-n", vm, "link", "set", "eth0", "up", NULL},
            {"ip", "-n", vm, "route", "add", "default", "via", "10.9.0.1", NULL},
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            CHECK(sh(cmds[i]) == 0);
    }
    struct router_ext ext = {br, A("198.51.100.10"), 24, A("198.51.100.1"), true};
    struct router_net net = {nm.id, sn.net, sn.prefix};
    struct router_forward fwd = {6, 8080, A("10.9.0.5"), 80};
    struct router_fip fip = {A("198.51.100.11"), A("10.9.0.6")};
    struct router_spec s = {&ext, &net, 1, &fwd, 1, &fip, 1};

    err[0] = '\0';
    CHECK(router_up(state, "t", "gw", &s, err) == 0);
    if (err[0])
        fprintf(stderr, "router_up: %s\n", err);
    router_names(state, "t", "gw", &rn);
    CHECK(netns_exists(rn.ns) && link_exists(NULL, rn.ext_host));
    /* Twice is the same: a repair changes nothing. A lost external leg is made again with
     * the same MAC, so the outside's ARP cache stays right. */
    CHECK(router_up(state, "t", "gw", &s, err) == 0);
    {
        char before[18], after[18], want[18];
        const char *del[] = {"ip", "link", "delete", rn.ext_host, NULL};

        mac_of(rn.ns, ROUTER_EXT_IF, before);
        snprintf(want, sizeof(want), "0a:%.2s:%.2s:%.2s:%.2s:%.2s", rn.id, rn.id + 2, rn.id + 4,
                 rn.id + 6, rn.id + 8);
        CHECK(!strcmp(before, want));
        CHECK(sh(del) == 0);
        for (int i = 0; i < 100 && link_exists(rn.ns, ROUTER_EXT_IF); i++)
            usleep(10000);
        CHECK(router_up(state, "t", "gw", &s, err) == 0);
        mac_of(rn.ns, ROUTER_EXT_IF, after);
        CHECK(!strcmp(after, want));
    }

    /* Out through source NAT: the outside sees the router's address... */
    l = listener(out, "198.51.100.1", 9000);
    CHECK(l >= 0);
    c = connect_from(vm, "10.9.0.5", "198.51.100.1", 9000);
    CHECK(c >= 0);
    peer_of(l, seen, &a);
    CHECK(!strcmp(seen, "198.51.100.10"));
    /* ... and the floating address for the VM that has one. */
    c2 = connect_from(vm, "10.9.0.6", "198.51.100.1", 9000);
    CHECK(c2 >= 0);
    peer_of(l, seen, &a2);
    CHECK(!strcmp(seen, "198.51.100.11"));
    close(c2);
    close(a2);
    close(l);

    /* In through the port forward and the floating address, as the outside itself. */
    l = listener(vm, "10.9.0.5", 80);
    c2 = connect_from(out, NULL, "198.51.100.10", 8080);
    CHECK(c2 >= 0);
    peer_of(l, seen, &a2);
    CHECK(!strcmp(seen, "198.51.100.1"));
    close(c2);
    close(a2);
    /* Not to the inside address itself, though the outside routes it at the router. */
    c2 = connect_from(out, NULL, "10.9.0.5", 80);
    CHECK(c2 < 0);
    if (c2 >= 0)
        close(c2);
    close(l);
    l = listener(vm, "10.9.0.6", 81);
    c2 = connect_from(out, NULL, "198.51.100.11", 81);
    CHECK(c2 >= 0);
    peer_of(l, seen, &a2);
    CHECK(!strcmp(seen, "198.51.100.1"));
    if (c2 >= 0)
        close(c2);
    if (a2 >= 0)
        close(a2);
    close(l);

    /* A change (the forward and the floating IP gone) in one transaction: the open connection
     * c/a lives on, the forward is closed. */
    s.nfwds = s.nfips = 0;
    CHECK(router_up(state, "t", "gw", &s, err) == 0);
    CHECK(c >= 0 && a >= 0 && write(c, "ping", 4) == 4);
    {
        struct pollfd p = {a, POLLIN, 0};
        char buf[8] = "";

        CHECK(a >= 0 && poll(&p, 1, 2000) == 1 && read(a, buf, sizeof(buf)) == 4 &&
              !memcmp(buf, "ping", 4));
    }
    l = listener(vm, "10.9.0.5", 80);
    c2 = connect_from(out, NULL, "198.51.100.10", 8080);
    CHECK(c2 < 0);
    if (c2 >= 0)
        close(c2);
    close(l);
    if (c >= 0)
        close(c);
    if (a >= 0)
        close(a);

    /* Deleting the router leaves nothing: namespace, host port, the network's leg, folder. */
    CHECK(router_down(state, "t", "gw", err) == 0);
    CHECK(!netns_exists(rn.ns) && !link_exists(NULL, rn.ext_host));
    snprintf(path, sizeof(path), "r%.12s", rn.id);
    CHECK(!link_exists(nm.ns, path));
    CHECK(access(rn.dir, F_OK) != 0);
    CHECK(router_down(state, "t", "gw", err) == 0);

    /* A sweep takes a router no document claims, and only it. */
    s.ext = NULL;
    CHECK(router_up(state, "t", "gw2", &s, err) == 0);
    CHECK(router_up(state, "t", "gw3", &s, err) == 0);
    router_names(state, "t", "gw2", &rn2);
    router_names(state, "t", "gw3", &rn);
    CHECK(router_sweep(state, keep_all, rn2.id, err) == 0);
    CHECK(!netns_exists(rn2.ns) && netns_exists(rn.ns));
    CHECK(router_down(state, "t", "gw3", err) == 0);

    /* Without a way out, a router joins two networks: a stand-in on each reaches the other,
     * seen as itself (no NAT between a tenant's own networks). */
    {
        char vm2[32], hv2[16];
        struct vnet_subnet sn2;
        struct vnet_names nm2;

        snprintf(vm2, sizeof(vm2), "tsru-vm2-%d", (int)getpid());
        snprintf(hv2, sizeof(hv2), "tsruw%d", (int)getpid() % 100000);
        CHECK(vnet_subnet_parse("10.10.0.0/24", NULL, &sn2, err) == 0);
        CHECK(vnet_up(state, "t", "lan2", &sn2, false, NULL, 0, err) == 0);
        vnet_names(state, "t", "lan2", &nm2);
        const char *cmds[][16] = {
            {"ip", "netns", "add", vm2, NULL},
            {"ip", "link", "add", hv2, "type", "veth", "peer", "name", "eth0", "netns", vm2, NULL},
            {"ip", "link", "set", hv2, "netns", nm2.ns, NULL},
            {"ip", "-n", nm2.ns, "link", "set", hv2, "master", "br0", "up", NULL},
            {"ip", "-n", vm2, "addr", "add", "10.10.0.5/24", "dev", "eth0", NULL},
            {"ip", "-n", vm2, "link", "set", "eth0", "up", NULL},
            {"ip", "-n", vm2, "route", "add", "default", "via", "10.10.0.1", NULL},
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            CHECK(sh(cmds[i]) == 0);
        struct router_net two[2] = {{nm.id, sn.net, sn.prefix}, {nm2.id, sn2.net, sn2.prefix}};
        struct router_spec inner = {NULL, two, 2, NULL, 0, NULL, 0};

        CHECK(router_up(state, "t", "inner", &inner, err) == 0);
        l = listener(vm2, "10.10.0.5", 82);
        c2 = connect_from(vm, "10.9.0.5", "10.10.0.5", 82);
        CHECK(c2 >= 0);
        peer_of(l, seen, &a2);
        CHECK(!strcmp(seen, "10.9.0.5"));
        if (c2 >= 0)
            close(c2);
        if (a2 >= 0)
            close(a2);
        close(l);
        CHECK(router_down(state, "t", "inner", err) == 0);
        /* The router gone, the networks are apart again (the listener still listens). */
        l = listener(vm2, "10.10.0.5", 82);
        CHECK(l >= 0);
        c2 = connect_from(vm, "10.9.0.5", "10.10.0.5", 82);
        CHECK(c2 < 0);
        if (c2 >= 0)
            close(c2);
        close(l);
        const char *del[] = {"ip", "netns", "delete", vm2, NULL};
        sh(del);
        CHECK(vnet_down(state, "t", "lan2", err) == 0);
    }
    {
        const char *cmds[][8] = {
            {"ip", "netns", "delete", out, NULL},
            {"ip", "netns", "delete", vm, NULL},
            {"ip", "link", "delete", br, NULL},
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            sh(cmds[i]);
    }
    CHECK(vnet_down(state, "t", "lan", err) == 0);
    snprintf(path, sizeof(path), "%s/routers", state);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/networks", state);
    rmdir(path);
    CHECK(rmdir(state) == 0);
    close(self_ns);
}

int main(void)
{
    test_parsers();
    test_rules_text();
    test_real();
    return test_finish("router");
}
