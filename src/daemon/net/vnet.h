/* Virtual networks on this host (docs/networks.md): the door the daemon uses. A network is
 * (tenant, name) with an IPv4 subnet; on the host it is a namespace with a bridge (netns.h),
 * optionally a dnsmasq (dnsmasq.h), and one tap per VM NIC on it (vnic.h).
 *
 * Kernel names come from a hash of the state directory's identity and the owner's names, so
 * they fit the kernel's limits (IFNAMSIZ: 15 characters) whatever the names, never collide
 * between tenants or between two daemons of one host, and are found again after a restart
 * without a record: namespace `tsrn-ID`, folder STATE_DIR/networks/ID, tap `tsrHHHHHHHHHHHN`
 * (11 hex digits of the VM's hash, N the NIC's index).
 *
 * Every call returns 0 or -errno with err (NETCMD_ERR_LEN). Threads: callers hold tesserad's
 * lock (or are the only user, as the unit tests). */
#ifndef TESSERA_DAEMON_NET_VNET_H
#define TESSERA_DAEMON_NET_VNET_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/net/dnsmasq.h"
#include "daemon/net/netns.h"
#include "daemon/net/ovs.h"
#include "daemon/net/portsec.h"
#include "daemon/net/vxlan.h"

#define VNET_NS_PREFIX     "tsrn-"
#define VNET_TAP_PREFIX    "tsr"
#define VNET_VXLAN_PREFIX  "tsrw"
#define VNET_UPLINK_PREFIX "tsrv"
#define VNET_OVS_PREFIX    "tsrs"
#define VNET_UPLINK_NS     "up0"
#define VNET_NICS_MAX      4
#define VNET_ID_LEN        17 /* 16 hex digits and the NUL */

/* An IPv4 subnet in host byte order. */
struct vnet_subnet {
    uint32_t net;     /* the network's address (host bits zero) */
    unsigned prefix;  /* 8..29: room for a gateway and at least 4 VMs */
    uint32_t gateway; /* inside, neither the network's nor the broadcast address */
};

/* Parses "A.B.C.D/N" and the optional gateway ("A.B.C.D"; NULL: the first address). -EINVAL
 * with err naming `subnet` or `gateway` and what was expected. */
int vnet_subnet_parse(const char *cidr, const char *gateway, struct vnet_subnet *out, char *err);
/* "10.0.0.0/24" and "10.0.0.1" (each at least 19 bytes). */
void vnet_subnet_text(const struct vnet_subnet *sn, char *cidr, char *gateway);

struct vnet_names {
    char id[VNET_ID_LEN];
    char ns[NETNS_NAME_MAX];
    char dir[PATH_MAX];
};
void vnet_names(const char *state_dir, const char *tenant, const char *name,
                struct vnet_names *out);
/* The 16 hex digits naming object (kind, tenant, name) of this state directory: "net" for
 * networks, "vm" for VMs' taps, "rtr" for routers (router.h). */
void vnet_hash_id(const char *state_dir, const char *kind, const char *tenant, const char *name,
                  char out[VNET_ID_LEN]);
/* The tap of NIC index (< VNET_NICS_MAX) of VM (tenant, vm). */
void vnet_tap_name(const char *state_dir, const char *tenant, const char *vm, unsigned index,
                   char out[IFNAMSIZ]);

/* A VM NIC on the network. */
struct vnet_port {
    const char *mac;  /* its MAC: the only one it may send from; its DHCP lease's key */
    const char *name; /* its VM's name: its name in the network's DNS */
    const char *tap;  /* its tap */
    const char *ip;   /* its fixed address ("10.0.0.2"): its lease, the only source it may
                       * send from; NULL for a NIC made before addresses were fixed */
};

/* What a network has beyond its bridge: a VXLAN segment across hosts (vxlan.h), an 802.1Q
 * tag on the host's trunk (ovs.h). */
struct vnet_overlay {
    uint32_t vni;             /* 0: no VXLAN */
    const char *local;        /* this host's underlay address */
    const char *const *peers; /* the other hosts' */
    size_t npeers;
    unsigned vlan;     /* 0: no tag; else 1..OVS_TAG_MAX */
    const char *trunk; /* the host's trunk interface (a port of the switch carrying all tags) */
};

/* Makes (or repairs) the network: its folder, namespace and bridge with the gateway's address,
 * its ports' security rules (portsec.h), and with dhcp its dnsmasq serving the ports
 * (restarted when they changed). */
int vnet_up(const char *state_dir, const char *tenant, const char *name,
            const struct vnet_subnet *sn, bool dhcp, const struct vnet_port *ports, size_t nports,
            char *err);
/* vnet_up() with the overlay ov (NULL: none): with a VNI, the VXLAN device `tsrw` + 11 hex
 * digits of the network's id on the bridge, peers exactly ov's, and DHCP giving the VMs
 * VXLAN_MTU. Calling it again with other peers replaces them on the running network. With a
 * VLAN tag, the host's switch (ovs.h: STATE/ovs, bridge `tsrs` + 11 hex digits of the state
 * directory's hash) runs with the trunk on it, and a veth pair joins the network's bridge
 * (end `up0`) to an access port of the tag (end `tsrv` + 11 hex digits of the id). */
int vnet_up_overlay(const char *state_dir, const char *tenant, const char *name,
                    const struct vnet_subnet *sn, bool dhcp, const struct vnet_port *ports,
                    size_t nports, const struct vnet_overlay *ov, char *err);
/* The network's VXLAN device name (IFNAMSIZ). */
void vnet_vxlan_name(const char *id, char out[IFNAMSIZ]);
/* Deletes the host's switch (ovs_shutdown()): for when no network needs a tag any more. */
int vnet_vlan_release(const char *state_dir, char *err);
/* Removes everything the network made: dnsmasq, the namespace (with its bridge and taps) and
 * its folder. What is absent already is no error. */
int vnet_down(const char *state_dir, const char *tenant, const char *name, char *err);
/* Removes every network of this state directory (folder networks/ID, with its dnsmasq and
 * namespace `tsrn-ID`) whose id known(arg, id) does not claim: what a crash or a daemon
 * killed mid-delete left. */
int vnet_sweep(const char *state_dir, bool (*known)(void *arg, const char *id), void *arg,
               char *err);

#endif
