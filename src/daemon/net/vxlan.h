/* A virtual network across hosts: one VXLAN device (RFC 7348) per network, on the network's
 * bridge, between this host's underlay address and its peers' (docs/networks.md).
 *
 * The device is made in the namespace tesserad runs in (the host's: the underlay), with
 * `local ADDR dstport 4789 nolearning`, then moved into the network's namespace and put on
 * its bridge: a VXLAN device's UDP socket stays in the namespace it was made in, so the
 * encapsulated frames go out on the host's network while the device itself is one port of
 * the isolated segment. Flooding is head-end replication: one all-zeros FDB entry per peer,
 * so broadcasts (ARP, DHCP) reach every peer host and unicast goes where the bridge learnt the
 * MAC; no multicast underlay is needed. Peers may be replaced while the network runs.
 *
 * The device's MTU is VXLAN_MTU (a 1500-byte underlay less VXLAN's 50 bytes), which makes
 * the bridge's MTU too; the VMs learn it by DHCP (dnsmasq.h's mtu).
 *
 * One network's gateway address exists on every host it spans (each host's bridge has it,
 * each host's dnsmasq serves its own VMs). A table `bridge tessera_vxlan` in the network's
 * namespace keeps those local: ARP naming the gateway's address and DHCP (UDP 67, 68) never
 * cross the VXLAN device, so a VM only ever sees its own host's gateway and DHCP server.
 *
 * Names: dev is the caller's (vnet.h: `tsrw` + 11 hex digits of the network's id); addresses
 * are checked here again (dotted IPv4) before they reach a command line or nft file.
 * Every call returns 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; the caller keeps
 * two calls on one network apart (tesserad's lock). */
#ifndef TESSERA_DAEMON_NET_VXLAN_H
#define TESSERA_DAEMON_NET_VXLAN_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/net/netcmd.h"

#define VXLAN_PORT      "4789" /* IANA's VXLAN port (RFC 7348 §5) */
#define VXLAN_MTU       1450
#define VXLAN_VNI_MAX   16777215u
#define VXLAN_PEERS_MAX 64

struct vxlan_spec {
    const char *ns;           /* the network's namespace (its bridge is NETNS_BRIDGE) */
    const char *dir;          /* the network's folder: vxlan.conf, vxlan.nft */
    const char *dev;          /* the device's name */
    uint32_t vni;             /* 1..VXLAN_VNI_MAX */
    const char *local;        /* this host's underlay address */
    const char *gateway;      /* the network's gateway address, kept on this host */
    const char *const *peers; /* the other hosts' underlay addresses */
    size_t npeers;
};

/* Makes the device (or remakes it when its VNI or local address changed), puts it on the
 * bridge, sets the peers' FDB entries to exactly spec->peers and loads the table. */
int vxlan_up(const struct vxlan_spec *spec, char *err);
/* Deletes the device dev from the host's namespace, where a start interrupted before the
 * move leaves it (the network's namespace going takes the moved one). Absent is 0. */
int vxlan_remove(const char *dev, char *err);
/* Whether s is a dotted IPv4 address usable as an underlay peer (not 0.0.0.0, multicast or
 * broadcast). */
int vxlan_check_addr(const char *s);

#endif
