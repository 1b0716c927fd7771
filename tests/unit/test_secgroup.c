/* Security groups (daemon/net/secgroup.h): the rule parser against good and hostile text,
 * the nft table it renders, and, where we are root with iproute2, nft and python3, a real
 * network namespace with a bridge and two veth "VMs" showing with traffic what passes: a
 * group allowing TCP 80 lets 80 in and not 22, a live change opens 22, members of a group
 * reach each other, an egress rule limits what leaves, and a connection made before a
 * replacement that no longer allows it still carries data after it. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/net/netns.h"
#include "daemon/net/secgroup.h"
#include "test.h"

static void test_parse(void)
{
    /* direction, protocol, ports, peer, and the field the error must name */
    static const char *const bad[][5] = {
        {"in", "tcp", NULL, NULL, "direction"},
        {NULL, "tcp", NULL, NULL, "direction"},
        {"INGRESS", "tcp", NULL, NULL, "direction"},
        {"ingress", "sctp", NULL, NULL, "protocol"},
        {"ingress", "", NULL, NULL, "protocol"},
        {"ingress", NULL, NULL, NULL, "protocol"},
        {"ingress", "tcp", "0", NULL, "ports"},
        {"ingress", "tcp", "65536", NULL, "ports"},
        {"ingress", "tcp", "080", NULL, "ports"},
        {"ingress", "tcp", "80-", NULL, "ports"},
        {"ingress", "tcp", "-80", NULL, "ports"},
        {"ingress", "tcp", "90-80", NULL, "ports"},
        {"ingress", "tcp", "80 ", NULL, "ports"},
        {"ingress", "tcp", "+80", NULL, "ports"},
        {"ingress", "tcp", "8a", NULL, "ports"},
        {"ingress", "tcp", "", NULL, "ports"},
        {"ingress", "tcp", "1-2-3", NULL, "ports"},
        {"ingress", "tcp", "99999999999999999999", NULL, "ports"},
        {"ingress", "icmp", "80", NULL, "ports"},
        {"ingress", "any", "80", NULL, "ports"},
        {"ingress", "tcp", "80", "10.0.0.1/24", "peer"},
        {"ingress", "tcp", "80", "10.0.0.0/33", "peer"},
        {"ingress", "tcp", "80", "10.0.0.0/024", "peer"},
        {"ingress", "tcp", "80", "10.0.0.0/", "peer"},
        {"ingress", "tcp", "80", "10.0.0/24", "peer"},
        {"ingress", "tcp", "80", "010.0.0.0/8", "peer"},
        {"ingress", "tcp", "80", "", "peer"},
        {"ingress", "tcp", "80", "group:", "peer"},
        {"ingress", "tcp", "80", "group:Web", "peer"},
        {"ingress", "tcp", "80", "group:a;drop", "peer"},
        {"ingress", "tcp", "80", "group:a b", "peer"},
        {"ingress", "tcp", "80", "group: web", "peer"},
        {"ingress", "tcp", "80",
         "group:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "peer"},
        {"ingress", "tcp", "80", "10.0.0.0/8 accept", "peer"},
    };
    char err[NETCMD_ERR_LEN], ports[SECGROUP_PORTS_LEN], peer[SECGROUP_PEER_LEN];
    struct secgroup_rule r;

    CHECK(secgroup_rule_parse("ingress", "tcp", "80", NULL, &r, err) == 0);
    secgroup_rule_text(&r, ports, peer);
    CHECK(r.dir == SECGROUP_INGRESS && r.proto == SECGROUP_TCP && r.port_lo == 80 &&
          r.port_hi == 80);
    CHECK(!strcmp(ports, "80") && !strcmp(peer, "0.0.0.0/0"));
    CHECK(secgroup_rule_parse("egress", "udp", "8000-8080", "10.1.0.0/16", &r, err) == 0);
    secgroup_rule_text(&r, ports, peer);
    CHECK(!strcmp(ports, "8000-8080") && !strcmp(peer, "10.1.0.0/16") && r.dir == SECGROUP_EGRESS);
    CHECK(secgroup_rule_parse("ingress", "icmp", NULL, "192.168.1.7", &r, err) == 0);
    secgroup_rule_text(&r, ports, peer);
    CHECK(!strcmp(ports, "") && !strcmp(peer, "192.168.1.7/32"));
    CHECK(secgroup_rule_parse("ingress", "any", NULL, "group:web-1", &r, err) == 0);
    secgroup_rule_text(&r, ports, peer);
    CHECK(!strcmp(peer, "group:web-1") && !strcmp(r.peer_group, "web-1"));
    CHECK(secgroup_rule_parse("ingress", "tcp", "1-65535", "0.0.0.0/0", &r, err) == 0);
    CHECK(r.port_lo == 1 && r.port_hi == 65535 && r.peer_prefix == 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(secgroup_rule_parse(bad[i][0], bad[i][1], bad[i][2], bad[i][3], &r, err) == -EINVAL);
        if (strncmp(err, bad[i][4], strlen(bad[i][4])) || err[strlen(bad[i][4])] != ':') {
            fprintf(stderr, "rule %zu: error '%s' does not name %s\n", i, err, bad[i][4]);
            CHECK(0);
        }
    }
}

static struct secgroup_rule rule(const char *dir, const char *proto, const char *ports,
                                 const char *peer)
{
    struct secgroup_rule r;
    char err[NETCMD_ERR_LEN];

    if (secgroup_rule_parse(dir, proto, ports, peer, &r, err))
        fprintf(stderr, "rule: %s\n", err);
    return r;
}

static void test_render(void)
{
    struct secgroup_rule web[2], out[1];
    struct secgroup_group groups[] = {{"web", web, 2}, {"out", out, 1}, {"unused", NULL, 0}};
    struct secgroup_nic nics[] = {
        {"tsraaaa0", "10.0.0.2", {"web"}, 1},
        {"tsrbbbb0", "10.0.0.3", {"web", "out"}, 2},
        {"tsrcccc0", "10.0.0.4", {NULL}, 0},
    };
    struct secgroup_nic bad;
    char *text, err[NETCMD_ERR_LEN];

    web[0] = rule("ingress", "tcp", "80", NULL);
    web[1] = rule("ingress", "udp", "5000-5010", "group:nobody");
    out[0] = rule("egress", "tcp", "443", "10.9.0.0/16");
    CHECK(secgroup_render(groups, 3, nics, 3, &text, err) == 0);
    if (!text)
        return;
    /* Replies first, then the members, then the rules; a peer group with no members here
     * matches nobody; the group names never appear in the text. */
    CHECK(strstr(text, "ct state established,related accept") != NULL);
    CHECK(strstr(text, "elements = { 10.0.0.2, 10.0.0.3 }") != NULL);
    CHECK(strstr(text, "ip saddr @m0 accept") != NULL);
    CHECK(strstr(text, "meta nfproto ipv4 tcp dport 80 accept") != NULL);
    CHECK(strstr(text, "5000") == NULL);
    CHECK(strstr(text, "ip daddr 10.9.0.0/16 tcp dport 443 return") != NULL);
    CHECK(strstr(text, "ip saddr vmap { 10.0.0.3 : jump out1 }") != NULL);
    CHECK(strstr(text, "ip daddr vmap { 10.0.0.2 : jump in0, 10.0.0.3 : jump in1 }") != NULL);
    CHECK(strstr(text, "10.0.0.4") == NULL && strstr(text, "web") == NULL);
    CHECK(strstr(text, "oifname \"tsrbbbb0\" ether type ip6 drop") != NULL);
    CHECK(strstr(text, "tsrcccc0") == NULL);
    free(text);
    /* No NIC in a group: the tables go, nothing else. */
    CHECK(secgroup_render(groups, 3, nics + 2, 1, &text, err) == 0);
    if (text)
        CHECK(!strcmp(text, "table inet tsr_sg\ndelete table inet tsr_sg\n"
                            "table bridge tsr_sg\ndelete table bridge tsr_sg\n"));
    free(text);
    /* What a damaged document could smuggle in is refused. */
    bad = (struct secgroup_nic){"tsr\"x", "10.0.0.9", {"web"}, 1};
    CHECK(secgroup_render(groups, 3, &bad, 1, &text, err) == -EINVAL && !text);
    bad = (struct secgroup_nic){"tsrx0", "10.0.0.9 } drop", {"web"}, 1};
    CHECK(secgroup_render(groups, 3, &bad, 1, &text, err) == -EINVAL);
    bad = (struct secgroup_nic){"tsrx0", NULL, {"web"}, 1};
    CHECK(secgroup_render(groups, 3, &bad, 1, &text, err) == -EINVAL);
    bad = (struct secgroup_nic){"tsrx0", "10.0.0.9", {"missing"}, 1};
    CHECK(secgroup_render(groups, 3, &bad, 1, &text, err) == -EINVAL && strstr(err, "missing"));
    nics[1].ip = "10.0.0.2";
    CHECK(secgroup_render(groups, 3, nics, 2, &text, err) == -EINVAL && strstr(err, "10.0.0.2"));
}

/* ---- As root: a namespace, a bridge, two "VMs" ---- */

static char ns_net[32], ns_a[32], ns_b[32], dir[64], srv_pid[96];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A TCP round trip from VM a to 10.66.0.3:port: 0 when the byte came back. */
static int reach(int port)
{
    return sh("ip netns exec %s python3 -c 'import socket,sys\n"
              "try:\n s=socket.create_connection((\"10.66.0.3\",%d),1.5); s.sendall(b\"x\")\n"
              " sys.exit(0 if s.recv(1)==b\"x\" else 1)\n"
              "except OSError: sys.exit(1)' 2>/dev/null",
              ns_a, port);
}

/* The echo server in VM b, on ports 80 and 22. */
static const char echo_py[] =
    "import socketserver,threading,os\n"
    "class H(socketserver.BaseRequestHandler):\n"
    " def handle(self):\n"
    "  while True:\n"
    "   d=self.request.recv(64)\n"
    "   if not d: return\n"
    "   self.request.sendall(d)\n"
    "socketserver.ThreadingTCPServer.allow_reuse_address=True\n"
    "for p in (80,22):\n"
    " s=socketserver.ThreadingTCPServer((\"10.66.0.3\",p),H); s.daemon_threads=True\n"
    " threading.Thread(target=s.serve_forever,daemon=True).start()\n"
    "open(os.environ[\"PIDFILE\"],\"w\").write(str(os.getpid()))\n"
    "threading.Event().wait()\n";

/* A client that connects to port 80, echoes one byte, then waits for a line on stdin and
 * echoes another over the same connection; its verdicts go to the file OUT. */
static const char client_py[] =
    "import socket,sys\n"
    "out=open(sys.argv[1],\"w\",buffering=1)\n"
    "s=socket.create_connection((\"10.66.0.3\",80),2); s.settimeout(2)\n"
    "s.sendall(b\"1\"); out.write(\"first %s\\n\" % (s.recv(1)==b\"1\"))\n"
    "sys.stdin.readline()\n"
    "try:\n"
    " s.sendall(b\"2\"); out.write(\"second %s\\n\" % (s.recv(1)==b\"2\"))\n"
    "except OSError as e: out.write(\"second failed %s\\n\" % e)\n";

static bool file_has(const char *path, const char *what)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, what) != NULL;
}

static int apply(const struct secgroup_group *g, size_t ng, const struct secgroup_nic *n, size_t nn)
{
    char err[NETCMD_ERR_LEN];
    int ret = secgroup_apply(ns_net, dir, g, ng, n, nn, err);

    if (ret)
        fprintf(stderr, "secgroup_apply: %s\n", err);
    return ret;
}

static void test_real(void)
{
    struct secgroup_rule web[2], eg[1];
    struct secgroup_group groups[] = {{"web", web, 1}, {"eg", eg, 1}};
    char va[16], vb[16], out[96], script[96], err[NETCMD_ERR_LEN];
    struct secgroup_nic nics[2];
    struct timespec ts = {0, 100 * 1000 * 1000};
    unsigned id = (unsigned)getpid() % 100000;
    FILE *client, *f;
    int i;

    if (geteuid() != 0 || !netcmd_have("ip") || !netcmd_have("nft") || !netcmd_have("python3")) {
        printf("secgroup: skipping the real network (needs root, iproute2, nft, python3)\n");
        return;
    }
    if (secgroup_host_check(NULL, err)) {
        printf("secgroup: skipping the real network: %s\n", err);
        return;
    }
    snprintf(ns_net, sizeof(ns_net), "tsgu%u-n", id);
    snprintf(ns_a, sizeof(ns_a), "tsgu%u-a", id);
    snprintf(ns_b, sizeof(ns_b), "tsgu%u-b", id);
    snprintf(va, sizeof(va), "tsgu%ua", id);
    snprintf(vb, sizeof(vb), "tsgu%ub", id);
    snprintf(dir, sizeof(dir), "/tmp/tessera-sg-%u", id);
    snprintf(srv_pid, sizeof(srv_pid), "%s/server.pid", dir);
    snprintf(out, sizeof(out), "%s/client.out", dir);
    snprintf(script, sizeof(script), "%s/echo.py", dir);
    mkdir(dir, 0700);
    CHECK(netns_create(ns_net, "10.66.0.1/24", err) == 0);
    /* Each "VM" is a namespace with one end of a veth pair; the other end, named like a
     * tap, is its port on the bridge. */
    CHECK(sh("ip netns add %s && ip netns add %s", ns_a, ns_b) == 0);
    CHECK(sh("ip link add %s type veth peer name eth0 netns %s && "
             "ip link add %s type veth peer name eth0 netns %s && "
             "ip link set %s netns %s && ip link set %s netns %s && "
             "ip -n %s link set %s master br0 up && ip -n %s link set %s master br0 up && "
             "ip -n %s addr add 10.66.0.2/24 dev eth0 && ip -n %s link set eth0 up && "
             "ip -n %s addr add 10.66.0.3/24 dev eth0 && ip -n %s link set eth0 up",
             va, ns_a, vb, ns_b, va, ns_net, vb, ns_net, ns_net, va, ns_net, vb, ns_a, ns_a, ns_b,
             ns_b) == 0);
    f = fopen(script, "w");
    if (f) {
        fputs(echo_py, f);
        fclose(f);
    }
    CHECK(sh("PIDFILE=%s ip netns exec %s python3 %s >/dev/null 2>&1 &", srv_pid, ns_b, script) ==
          0);
    for (i = 0; i < 50 && reach(80); i++)
        nanosleep(&ts, NULL);
    /* No groups: everything passes. */
    nics[0] = (struct secgroup_nic){va, "10.66.0.2", {NULL}, 0};
    nics[1] = (struct secgroup_nic){vb, "10.66.0.3", {NULL}, 0};
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(reach(80) == 0 && reach(22) == 0);
    /* b in "web", TCP 80 only: 80 in, 22 not. */
    web[0] = rule("ingress", "tcp", "80", NULL);
    nics[1].groups[0] = "web";
    nics[1].ngroups = 1;
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(reach(80) == 0);
    CHECK(reach(22) != 0);
    /* A connection to 80 made now... */
    snprintf(script, sizeof(script), "%s/client.py", dir);
    f = fopen(script, "w");
    if (f) {
        fputs(client_py, f);
        fclose(f);
    }
    {
        char cmd[512];

        snprintf(cmd, sizeof(cmd), "ip netns exec %s python3 %s %s", ns_a, script, out);
        client = popen(cmd, "w");
    }
    CHECK(client != NULL);
    for (i = 0; i < 50 && !file_has(out, "first"); i++)
        nanosleep(&ts, NULL);
    CHECK(file_has(out, "first True"));
    /* ... then the rules replaced: 22 only, no more 80. New connections follow the new
     * rules at once; the old one still carries data. */
    web[0] = rule("ingress", "tcp", "22", NULL);
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(reach(22) == 0);
    CHECK(reach(80) != 0);
    if (client) {
        fputs("go\n", client);
        pclose(client);
    }
    CHECK(file_has(out, "second True"));
    /* Members of a group reach each other whatever the rules say. */
    nics[0].groups[0] = "web";
    nics[0].ngroups = 1;
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(reach(80) == 0);
    /* An egress rule: a may only open TCP 22 (b still lets a in as a member of web). */
    eg[0] = rule("egress", "tcp", "22", "10.66.0.0/24");
    nics[0].groups[1] = "eg";
    nics[0].ngroups = 2;
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(reach(22) == 0);
    CHECK(reach(80) != 0);
    /* No group left: no table left. */
    nics[0].ngroups = nics[1].ngroups = 0;
    CHECK(apply(groups, 2, nics, 2) == 0);
    CHECK(sh("ip netns exec %s nft list tables | grep -q tsr_sg", ns_net) != 0);
    CHECK(reach(80) == 0 && reach(22) == 0);

    sh("kill $(cat %s) 2>/dev/null", srv_pid);
    sh("ip netns delete %s; ip netns delete %s", ns_a, ns_b);
    CHECK(netns_delete(ns_net, err) == 0);
    sh("rm -rf %s", dir);
}

int main(void)
{
    test_parse();
    test_render();
    test_real();
    return test_finish("secgroup");
}
