/* Tenant routers (docs/networks.md, "Routers and NAT"): the door the daemon uses.
 *
 * A router is (tenant, name). On the host it is a namespace `tsrr-ID` (ID: vnet_hash_id() of
 * kind "rtr", so names fit IFNAMSIZ, never collide between tenants or daemons, and are found
 * again after a restart), with IPv4 forwarding on, joined
 *   - to each attached network by a veth pair: `nNNNNNNNNNNNN` in the router (12 hex digits
 *     of the network's id), `rRRRRRRRRRRRR` in the network's namespace (12 of the router's).
 *     Both ends carry link-local /32 transit addresses (ROUTER_TRANSIT_ROUTER on every leg of
 *     the router, ROUTER_TRANSIT_NETWORK in the network), routed `onlink`: the router reaches
 *     the network's subnet through the leg, the network's namespace (forwarding on) sends
 *     everything else to the router. The network's bridge keeps the gateway address that its
 *     dnsmasq advertises, so the VMs need no change when a router comes or goes;
 *   - to an external network (a Linux bridge in the host's namespace) by a veth pair whose
 *     host end `tsrxXXXXXXXXXXX` is a port of that bridge and whose other end, ROUTER_EXT_IF,
 *     holds the router's external address (and its floating addresses as /32s), with the
 *     default route through the external gateway.
 * The veths have fixed MACs made from the ids, so one made again (a repair) is the same to
 * its neighbours' ARP caches. Addresses, links and routes go as one `ip -batch` per namespace.
 * The rules are one nftables table, `ip tessera_router`, in the router's namespace: source NAT
 * of the attached subnets to the external address (snat), DNAT port forwards, 1:1 floating
 * addresses, and a forward filter that lets in from outside only what a forward or a floating
 * address opened. The table is replaced whole in one `nft -f` transaction (DIR/rules.nft), so
 * a change never holds half of itself and conntrack's entries (open connections) survive it.
 *
 * Addresses are IPv4 in host byte order. Every call that can fail returns 0 or -errno with err
 * (NETCMD_ERR_LEN). Threads: callers hold tesserad's lock (or are the only user: unit tests);
 * no state is kept between calls but the files in the router's folder. */
#ifndef TESSERA_DAEMON_NET_ROUTER_H
#define TESSERA_DAEMON_NET_ROUTER_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/net/netcmd.h"
#include "daemon/net/netns.h"
#include "daemon/net/vnet.h"

#define ROUTER_NS_PREFIX       "tsrr-"
#define ROUTER_EXT_PREFIX      "tsrx"
#define ROUTER_EXT_IF          "ext0"
#define ROUTER_TRANSIT_ROUTER  "169.254.0.1"
#define ROUTER_TRANSIT_NETWORK "169.254.0.2"
#define ROUTER_NETS_MAX        8
#define ROUTER_FORWARDS_MAX    64
#define ROUTER_FIPS_MAX        16

struct router_names {
    char id[VNET_ID_LEN];
    char ns[NETNS_NAME_MAX];
    char ext_host[IFNAMSIZ]; /* the external veth's end in the host's namespace */
    char dir[PATH_MAX];      /* STATE_DIR/routers/ID */
};
void router_names(const char *state_dir, const char *tenant, const char *name,
                  struct router_names *out);
/* The router's leg in a network it joins: its veth end in the network's namespace, named from
 * the router's id (router_names' id). */
void router_net_leg(const char *router_id, char out[IFNAMSIZ]);

/* ---- Parsers for what the API hands in (hostile text) ---- */

/* "A.B.C.D": four dotted decimal octets, nothing more. -EINVAL otherwise. */
int router_addr_parse(const char *s, uint32_t *out);
void router_addr_text(uint32_t a, char out[16]);
/* "tcp" or "udp" into the IP protocol number (6, 17); -EINVAL otherwise. */
int router_proto_parse(const char *s, unsigned *out);
/* Whether a/pa and b/pb share an address. */
bool router_subnets_overlap(uint32_t a, unsigned pa, uint32_t b, unsigned pb);
/* An external network's address pool "FIRST-LAST" (both host addresses of sn, FIRST <= LAST,
 * the gateway outside the range): -EINVAL with err naming `pool`. */
int router_pool_parse(const char *text, const struct vnet_subnet *sn, uint32_t *first,
                      uint32_t *last, char *err);

/* ---- What a router is made of ---- */

struct router_ext {
    const char *bridge; /* the host bridge: a name ip(8) takes (checked again here) */
    uint32_t addr;      /* the router's external address (its SNAT source) */
    unsigned prefix;    /* the external subnet's */
    uint32_t gateway;   /* the default route */
    bool snat;          /* masquerade the attached subnets behind addr */
};

struct router_net {
    const char *id; /* the network's id (vnet_names()): its namespace and the leg's name */
    uint32_t net;   /* its subnet */
    unsigned prefix;
};

struct router_forward {
    unsigned proto;    /* 6 or 17 */
    unsigned ext_port; /* 1..65535, on the external address */
    uint32_t ip;       /* inside: inside an attached subnet */
    unsigned port;     /* 1..65535 */
};

struct router_fip {
    uint32_t ext; /* the floating address (external subnet) */
    uint32_t ip;  /* the inside address it stands for */
};

struct router_spec {
    const struct router_ext *ext; /* NULL: no way out */
    const struct router_net *nets;
    size_t nnets;
    const struct router_forward *fwds;
    size_t nfwds;
    const struct router_fip *fips;
    size_t nfips;
};

/* The nftables text of the router's table into buf (NUL-terminated): 0, -ENOSPC when len is
 * too small, -EINVAL for a spec that breaks the limits above. */
int router_rules_text(const struct router_spec *spec, char *buf, size_t len);

/* Makes (or repairs, or changes to) the router: folder, namespace, legs to spec's networks
 * (and none to others: a detached network's leg goes), the external leg with its addresses,
 * the rules. Every network of spec must be up (vnet_up()). */
int router_up(const char *state_dir, const char *tenant, const char *name,
              const struct router_spec *spec, char *err);
/* Removes everything the router made: namespace (its veths, and so their other ends and the
 * networks' routes through it), the host end if left, the folder. Absent is no error. */
int router_down(const char *state_dir, const char *tenant, const char *name, char *err);
/* Removes every router of this state directory (folder routers/ID and namespace tsrr-ID)
 * whose id known(arg, id) does not claim. */
int router_sweep(const char *state_dir, bool (*known)(void *arg, const char *id), void *arg,
                 char *err);

#endif
