/* secgroup.h: rules parsed from text, the table rendered as nft's own syntax, loaded with
 * `ip netns exec NS nft -f FILE`. */
#include "daemon/net/secgroup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const dir_names[] = {
    [SECGROUP_INGRESS] = "ingress", [SECGROUP_EGRESS] = "egress"};
static const char *const proto_names[] = {[SECGROUP_ANY] = "any",
                                          [SECGROUP_TCP] = "tcp",
                                          [SECGROUP_UDP] = "udp",
                                          [SECGROUP_ICMP] = "icmp"};

const char *secgroup_dir_name(enum secgroup_dir d)
{
    return dir_names[d];
}

const char *secgroup_proto_name(enum secgroup_proto p)
{
    return proto_names[p];
}

/* A port: 1..65535 in decimal, no sign, no leading zero, nothing else. */
static int sg_port_parse(const char *s, size_t n, uint16_t *out)
{
    unsigned long v = 0;

    if (n == 0 || n > 5 || s[0] == '0')
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

static int sg_ports_parse(const char *s, struct secgroup_rule *r, char *err)
{
    const char *dash = strchr(s, '-');
    size_t n = strlen(s);

    if (dash ? sg_port_parse(s, (size_t)(dash - s), &r->port_lo) ||
                   sg_port_parse(dash + 1, n - (size_t)(dash - s) - 1, &r->port_hi)
             : sg_port_parse(s, n, &r->port_lo))
        goto bad;
    if (!dash)
        r->port_hi = r->port_lo;
    if (r->port_lo > r->port_hi) {
        snprintf(err, NETCMD_ERR_LEN, "ports: range %u-%u runs backwards: expected LOW-HIGH",
                 r->port_lo, r->port_hi);
        return -EINVAL;
    }
    return 0;
bad:
    snprintf(err, NETCMD_ERR_LEN,
             "ports: expected a port 1..65535 (\"80\") or a range LOW-HIGH (\"8000-8080\")");
    return -EINVAL;
}

/* The store's name rule: 1..63 of a-z, 0-9 and '-'. */
static bool sg_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n < SECGROUP_NAME_LEN &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Exactly four dotted decimal octets (inet_pton: no octal, no short forms). */
static int sg_addr_parse(const char *s, size_t n, uint32_t *out)
{
    char buf[16];
    struct in_addr a;

    if (n == 0 || n > 15)
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

static void sg_addr_text(uint32_t a, char *out)
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int sg_peer_parse(const char *s, struct secgroup_rule *r, char *err)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    unsigned prefix = 32;
    uint32_t mask;
    char a[16];

    if (!strncmp(s, "group:", 6)) {
        if (!sg_name_ok(s + 6)) {
            snprintf(err, NETCMD_ERR_LEN,
                     "peer: group:NAME needs a group name of 1 to 63 characters of a-z, 0-9 "
                     "and '-'");
            return -EINVAL;
        }
        snprintf(r->peer_group, sizeof(r->peer_group), "%s", s + 6);
        return 0;
    }
    if (slash) {
        const char *p = slash + 1;
        size_t pn = strlen(p);

        if (pn == 0 || pn > 2 || strspn(p, "0123456789") != pn || (pn == 2 && p[0] == '0'))
            goto bad;
        prefix = (unsigned)atoi(p);
        if (prefix > 32)
            goto bad;
    }
    if (sg_addr_parse(s, n, &r->peer_net))
        goto bad;
    mask = prefix ? ~0u << (32 - prefix) : 0;
    if (r->peer_net & ~mask) {
        sg_addr_text(r->peer_net & mask, a);
        snprintf(err, NETCMD_ERR_LEN, "peer: %.20s has host bits set: the network is %s/%u", s, a,
                 prefix);
        return -EINVAL;
    }
    r->peer_prefix = prefix;
    return 0;
bad:
    snprintf(err, NETCMD_ERR_LEN,
             "peer: expected an IPv4 network A.B.C.D/N (N 0..32), an address A.B.C.D or "
             "group:NAME");
    return -EINVAL;
}

int secgroup_rule_parse(const char *direction, const char *protocol, const char *ports,
                        const char *peer, struct secgroup_rule *out, char *err)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < sizeof(dir_names) / sizeof(dir_names[0]); i++)
        if (direction && !strcmp(direction, dir_names[i]))
            break;
    if (i == sizeof(dir_names) / sizeof(dir_names[0])) {
        snprintf(err, NETCMD_ERR_LEN, "direction: expected \"ingress\" or \"egress\"");
        return -EINVAL;
    }
    out->dir = (enum secgroup_dir)i;
    for (i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
        if (protocol && !strcmp(protocol, proto_names[i]))
            break;
    if (i == sizeof(proto_names) / sizeof(proto_names[0])) {
        snprintf(err, NETCMD_ERR_LEN, "protocol: expected \"tcp\", \"udp\", \"icmp\" or \"any\"");
        return -EINVAL;
    }
    out->proto = (enum secgroup_proto)i;
    if (ports && out->proto != SECGROUP_TCP && out->proto != SECGROUP_UDP) {
        snprintf(err, NETCMD_ERR_LEN, "ports: only tcp and udp rules have ports, not %s",
                 proto_names[out->proto]);
        return -EINVAL;
    }
    if (ports && sg_ports_parse(ports, out, err))
        return -EINVAL;
    return peer ? sg_peer_parse(peer, out, err) : 0;
}

void secgroup_rule_text(const struct secgroup_rule *r, char ports[SECGROUP_PORTS_LEN],
                        char peer[SECGROUP_PEER_LEN])
{
    char a[16];

    if (!r->port_lo)
        ports[0] = '\0';
    else if (r->port_lo == r->port_hi)
        snprintf(ports, SECGROUP_PORTS_LEN, "%u", r->port_lo);
    else
        snprintf(ports, SECGROUP_PORTS_LEN, "%u-%u", r->port_lo, r->port_hi);
    if (r->peer_group[0]) {
        snprintf(peer, SECGROUP_PEER_LEN, "group:%.63s", r->peer_group);
        return;
    }
    sg_addr_text(r->peer_net, a);
    snprintf(peer, SECGROUP_PEER_LEN, "%s/%u", a, r->peer_prefix % 100);
}

/* ---- Rendering ---- */

static bool sg_tap_ok(const char *tap)
{
    size_t n = tap ? strlen(tap) : 0;

    return n > 0 && n < 16 && strspn(tap, "abcdefghijklmnopqrstuvwxyz0123456789") == n;
}

/* The index of the group called name, or ngroups. */
static size_t sg_find(const struct secgroup_group *groups, size_t ngroups, const char *name)
{
    size_t i;

    for (i = 0; i < ngroups; i++)
        if (!strcmp(groups[i].name, name))
            break;
    return i;
}

/* The match of one rule, after the address part: protocol and ports. */
static void sg_proto_text(FILE *f, const struct secgroup_rule *r)
{
    if (r->proto == SECGROUP_ANY)
        return;
    if (r->proto == SECGROUP_ICMP) {
        fprintf(f, " meta l4proto icmp");
        return;
    }
    if (!r->port_lo)
        fprintf(f, " meta l4proto %s", proto_names[r->proto]);
    else if (r->port_lo == r->port_hi)
        fprintf(f, " %s dport %u", proto_names[r->proto], r->port_lo);
    else
        fprintf(f, " %s dport %u-%u", proto_names[r->proto], r->port_lo, r->port_hi);
}

/* One rule as an nft statement in NIC's chain of its direction: the peer is the source of
 * ingress, the destination of egress. A peer group absent from groups matches nobody: no
 * statement. */
static void sg_rule_text(FILE *f, const struct secgroup_group *groups, size_t ngroups,
                         const struct secgroup_rule *r, const char *verdict)
{
    const char *field = r->dir == SECGROUP_INGRESS ? "saddr" : "daddr";
    char a[16];

    fprintf(f, "        ");
    if (r->peer_group[0]) {
        size_t g = sg_find(groups, ngroups, r->peer_group);

        if (g == ngroups) {
            fprintf(f, "# a peer group with no members here\n");
            return;
        }
        fprintf(f, "ip %s @m%zu", field, g);
    } else if (r->peer_prefix) {
        sg_addr_text(r->peer_net, a);
        fprintf(f, "ip %s %s/%u", field, a, r->peer_prefix);
    } else {
        fprintf(f, "meta nfproto ipv4");
    }
    sg_proto_text(f, r);
    fprintf(f, " %s\n", verdict);
}

static bool sg_has_egress(const struct secgroup_group *g)
{
    for (size_t i = 0; i < g->nrules; i++)
        if (g->rules[i].dir == SECGROUP_EGRESS)
            return true;
    return false;
}

/* Checks what is written: taps, addresses (each once), the NICs' groups. */
static int sg_check(const struct secgroup_group *groups, size_t ngroups,
                    const struct secgroup_nic *nics, size_t nnics, size_t *gi, char *err)
{
    uint32_t a, b;

    for (size_t i = 0; i < nnics; i++) {
        const struct secgroup_nic *n = &nics[i];

        if (!n->ngroups)
            continue;
        if (!sg_tap_ok(n->tap) || !n->ip || sg_addr_parse(n->ip, strlen(n->ip), &a) ||
            n->ngroups > SECGROUP_NIC_MAX) {
            snprintf(err, NETCMD_ERR_LEN, "security groups: NIC %zu (%.20s, %.20s) is malformed", i,
                     n->tap ? n->tap : "-", n->ip ? n->ip : "no address");
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (nics[j].ngroups && !sg_addr_parse(nics[j].ip, strlen(nics[j].ip), &b) && a == b) {
                snprintf(err, NETCMD_ERR_LEN, "security groups: two NICs have the address %s",
                         n->ip);
                return -EINVAL;
            }
        for (size_t j = 0; j < n->ngroups; j++) {
            gi[i * SECGROUP_NIC_MAX + j] = sg_find(groups, ngroups, n->groups[j]);
            if (gi[i * SECGROUP_NIC_MAX + j] == ngroups) {
                snprintf(err, NETCMD_ERR_LEN,
                         "security groups: NIC %.20s names group %.63s, "
                         "which does not exist",
                         n->tap, n->groups[j]);
                return -EINVAL;
            }
        }
    }
    return 0;
}

static void sg_render_to(FILE *f, const struct secgroup_group *groups, size_t ngroups,
                         const struct secgroup_nic *nics, size_t nnics, const size_t *gi)
{
    bool any = false, egress;
    size_t i, j, k, first;

    for (i = 0; i < nnics; i++)
        any |= nics[i].ngroups > 0;
    /* "table" then "delete table": the delete never fails, whether the table existed or
     * not; the new tables follow in the same transaction. */
    fprintf(f, "table inet tsr_sg\ndelete table inet tsr_sg\n"
               "table bridge tsr_sg\ndelete table bridge tsr_sg\n");
    if (!any)
        return;
    fprintf(f, "table inet tsr_sg {\n");
    /* Each group's members on this network. */
    for (k = 0; k < ngroups; k++) {
        fprintf(f, "    set m%zu {\n        type ipv4_addr\n", k);
        first = 1;
        for (i = 0; i < nnics; i++)
            for (j = 0; j < nics[i].ngroups; j++)
                if (gi[i * SECGROUP_NIC_MAX + j] == k) {
                    fprintf(f, "%s%s", first ? "        elements = { " : ", ", nics[i].ip);
                    first = 0;
                }
        fprintf(f, "%s    }\n", first ? "" : " }\n");
    }
    for (i = 0; i < nnics; i++) {
        const struct secgroup_nic *n = &nics[i];

        if (!n->ngroups)
            continue;
        /* Ingress: the groups' members, the groups' ingress rules, nothing else. */
        fprintf(f, "    chain in%zu {\n", i);
        for (j = 0; j < n->ngroups; j++)
            fprintf(f, "        ip saddr @m%zu accept\n", gi[i * SECGROUP_NIC_MAX + j]);
        for (j = 0; j < n->ngroups; j++) {
            const struct secgroup_group *g = &groups[gi[i * SECGROUP_NIC_MAX + j]];

            for (k = 0; k < g->nrules; k++)
                if (g->rules[k].dir == SECGROUP_INGRESS)
                    sg_rule_text(f, groups, ngroups, &g->rules[k], "accept");
        }
        fprintf(f, "        drop\n    }\n");
        /* Egress: free, unless a group has egress rules. Allowed is "return": the
         * destination's ingress chain still decides. */
        egress = false;
        for (j = 0; j < n->ngroups; j++)
            egress |= sg_has_egress(&groups[gi[i * SECGROUP_NIC_MAX + j]]);
        if (!egress)
            continue;
        fprintf(f, "    chain out%zu {\n", i);
        for (j = 0; j < n->ngroups; j++) {
            const struct secgroup_group *g = &groups[gi[i * SECGROUP_NIC_MAX + j]];

            for (k = 0; k < g->nrules; k++)
                if (g->rules[k].dir == SECGROUP_EGRESS)
                    sg_rule_text(f, groups, ngroups, &g->rules[k], "return");
        }
        fprintf(f, "        drop\n    }\n");
    }
    /* Replies first; then every source's egress, then every destination's ingress. */
    fprintf(f, "    chain forward {\n"
               "        type filter hook forward priority 0; policy accept;\n"
               "        ct state established,related accept\n");
    first = 1;
    for (i = 0; i < nnics; i++) {
        egress = false;
        for (j = 0; j < nics[i].ngroups; j++)
            egress |= sg_has_egress(&groups[gi[i * SECGROUP_NIC_MAX + j]]);
        if (egress) {
            fprintf(f, "%s%s : jump out%zu", first ? "        ip saddr vmap { " : ", ", nics[i].ip,
                    i);
            first = 0;
        }
    }
    fprintf(f, "%s", first ? "" : " }\n");
    first = 1;
    for (i = 0; i < nnics; i++)
        if (nics[i].ngroups) {
            fprintf(f, "%s%s : jump in%zu", first ? "        ip daddr vmap { " : ", ", nics[i].ip,
                    i);
            first = 0;
        }
    fprintf(f, " }\n    }\n}\n");
    /* IPv6 could pass every rule above: none for a NIC with groups, either way. */
    fprintf(f, "table bridge tsr_sg {\n"
               "    chain forward {\n"
               "        type filter hook forward priority 0; policy accept;\n");
    for (i = 0; i < nnics; i++)
        if (nics[i].ngroups)
            fprintf(f,
                    "        iifname \"%s\" ether type ip6 drop\n"
                    "        oifname \"%s\" ether type ip6 drop\n",
                    nics[i].tap, nics[i].tap);
    fprintf(f, "    }\n}\n");
}

int secgroup_render(const struct secgroup_group *groups, size_t ngroups,
                    const struct secgroup_nic *nics, size_t nnics, char **text, char *err)
{
    size_t *gi = calloc(nnics * SECGROUP_NIC_MAX + 1, sizeof(*gi)), len;
    FILE *f;
    int ret;

    *text = NULL;
    if (!gi) {
        snprintf(err, NETCMD_ERR_LEN, "security groups: out of memory");
        return -ENOMEM;
    }
    ret = sg_check(groups, ngroups, nics, nnics, gi, err);
    if (ret)
        goto free_gi;
    f = open_memstream(text, &len);
    if (!f) {
        snprintf(err, NETCMD_ERR_LEN, "security groups: out of memory");
        ret = -ENOMEM;
        goto free_gi;
    }
    sg_render_to(f, groups, ngroups, nics, nnics, gi);
    if (fclose(f)) {
        free(*text);
        *text = NULL;
        snprintf(err, NETCMD_ERR_LEN, "security groups: out of memory");
        ret = -ENOMEM;
    }
free_gi:
    free(gi);
    return ret;
}

int secgroup_host_check(const char *ns, char *err)
{
    const char *modprobe[] = {"modprobe", "br_netfilter", NULL};
    const char *sysctl[] = {"ip",     "netns", "exec", ns,
                            "sysctl", "-q",    "-w",   "net.bridge.bridge-nf-call-iptables=1",
                            NULL};
    char why[NETCMD_ERR_LEN];

    /* Debian builds br_netfilter as a module; this CI's kernel has it built in. */
    if (access("/proc/sys/net/bridge", F_OK) && netcmd_run(modprobe, why) &&
        access("/proc/sys/net/bridge", F_OK)) {
        snprintf(err, NETCMD_ERR_LEN,
                 "security groups need the kernel's br_netfilter (filtering bridged IPv4 with "
                 "conntrack), and it could not be loaded: %.300s",
                 why);
        return -EOPNOTSUPP;
    }
    if (ns && netcmd_run(sysctl, why)) {
        snprintf(err, NETCMD_ERR_LEN,
                 "security groups: bridged traffic cannot be handed to nftables: %.380s", why);
        return -EOPNOTSUPP;
    }
    return 0;
}

int secgroup_apply(const char *ns, const char *dir, const struct secgroup_group *groups,
                   size_t ngroups, const struct secgroup_nic *nics, size_t nnics, char *err)
{
    char path[PATH_MAX], *text;
    bool any = false;
    int ret;

    ret = secgroup_render(groups, ngroups, nics, nnics, &text, err);
    if (ret)
        return ret;
    for (size_t i = 0; i < nnics; i++)
        any |= nics[i].ngroups > 0;
    if (any) {
        ret = secgroup_host_check(ns, err);
        if (ret)
            goto free_text;
    }
    snprintf(path, sizeof(path), "%s/secgroups.nft", dir);
    ret = netcmd_nft_apply(ns, path, text, err);
free_text:
    free(text);
    return ret;
}
