/* Security groups on a virtual network (docs/networks.md, "Security groups"): named rule sets
 * attached to VM NICs, enforced statefully by nftables in the network's namespace.
 *
 * Semantics, for one NIC: with no group it is unfiltered. With groups, its egress is free
 * unless one of its groups has egress rules (then only what they allow), and its ingress is
 * refused except from members of its groups (the NICs on this network that name the same
 * group) and what the groups' ingress rules allow. Replies of allowed connections
 * (conntrack's established and related) always pass; DHCP, DNS and ARP with the gateway are
 * not forwarded traffic and are never filtered. IPv6 to and from a NIC with groups is dropped
 * (the networks are IPv4 and nothing could key it).
 *
 * How: this kernel has no conntrack for the bridge family, but br_netfilter hands bridged
 * IPv4 to the IPv4 hooks, so the `inet` forward hook sees every frame the bridge forwards
 * (and what a router in the network routes through it) with working conntrack. There the
 * ports are br0, not the taps, so the rules are keyed by the NICs' fixed addresses (port
 * security, portsec.h, makes a port send from its own address only): ingress by `ip daddr`,
 * egress by `ip saddr`. A group's members are an nft set of their addresses. Everything is
 * the table `inet tsr_sg` (and `bridge tsr_sg` for the IPv6 drop) in the network's
 * namespace, written as a file (DIR/secgroups.nft) and replaced whole in one `nft -f`
 * transaction: conntrack's entries live on, so established connections survive any change.
 * With no NIC in groups the file deletes both tables and nothing is left.
 *
 * Names of groups never reach the nft text (sets and chains are numbered), and every address
 * and tap name is checked again before it is written.
 *
 * 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; the caller keeps calls on one network
 * apart (tesserad's lock). Memory: the caller owns every array and string passed in. */
#ifndef TESSERA_DAEMON_NET_SECGROUP_H
#define TESSERA_DAEMON_NET_SECGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/net/netcmd.h"

#define SECGROUP_NAME_LEN  64 /* group names: 1..63 of a-z, 0-9 and '-' (the store's) */
#define SECGROUP_RULES_MAX 64 /* rules in one group */
#define SECGROUP_NIC_MAX   4  /* groups on one NIC */
#define SECGROUP_PORTS_LEN 12 /* "65535-65535" and the NUL */
#define SECGROUP_PEER_LEN  (6 + SECGROUP_NAME_LEN)

enum secgroup_dir { SECGROUP_INGRESS, SECGROUP_EGRESS };
enum secgroup_proto { SECGROUP_ANY, SECGROUP_TCP, SECGROUP_UDP, SECGROUP_ICMP };

struct secgroup_rule {
    enum secgroup_dir dir;
    enum secgroup_proto proto;
    uint16_t port_lo, port_hi; /* destination ports; both 0: every port (icmp, any: always) */
    uint32_t peer_net;         /* the peer network, host byte order, host bits zero */
    unsigned peer_prefix;      /* 0..32 */
    char peer_group[SECGROUP_NAME_LEN]; /* not "": the peer is this group's members instead */
};

/* Parses one rule: direction "ingress"|"egress", protocol "tcp"|"udp"|"icmp"|"any", ports
 * "80" or "8000-8080" (tcp and udp only; NULL: every port), peer "A.B.C.D/N", "A.B.C.D" (a
 * /32) or "group:NAME" (NULL: 0.0.0.0/0, anyone). -EINVAL with err starting with the field's
 * name ("ports: ...") and what was expected. */
int secgroup_rule_parse(const char *direction, const char *protocol, const char *ports,
                        const char *peer, struct secgroup_rule *out, char *err);
/* The canonical texts of a parsed rule: ports ("" for every port) and peer. */
void secgroup_rule_text(const struct secgroup_rule *r, char ports[SECGROUP_PORTS_LEN],
                        char peer[SECGROUP_PEER_LEN]);
const char *secgroup_dir_name(enum secgroup_dir d);
const char *secgroup_proto_name(enum secgroup_proto p);

/* A group as the network sees it. */
struct secgroup_group {
    const char *name;
    const struct secgroup_rule *rules;
    size_t nrules;
};

/* A VM NIC on the network. */
struct secgroup_nic {
    const char *tap;                      /* its port on the bridge */
    const char *ip;                       /* its fixed address */
    const char *groups[SECGROUP_NIC_MAX]; /* names of groups (in the groups array) */
    size_t ngroups;                       /* 0: unfiltered */
};

/* The nft text for the network (malloc'd, the caller frees it). groups holds every group the
 * NICs or the rules' peers name; a peer group that is not there matches nobody, a NIC's
 * group that is not there is -EINVAL. */
int secgroup_render(const struct secgroup_group *groups, size_t ngroups,
                    const struct secgroup_nic *nics, size_t nnics, char **text, char *err);
/* Makes sure bridged IPv4 reaches the IPv4 hooks: loads br_netfilter when the kernel has no
 * /proc/sys/net/bridge; with ns, sets net.bridge.bridge-nf-call-iptables=1 inside it.
 * -EOPNOTSUPP with err saying what is missing. */
int secgroup_host_check(const char *ns, char *err);
/* Renders and loads the network's table (namespace ns, folder dir): the security groups of
 * its NICs, live. */
int secgroup_apply(const char *ns, const char *dir, const struct secgroup_group *groups,
                   size_t ngroups, const struct secgroup_nic *nics, size_t nnics, char *err);

#endif
