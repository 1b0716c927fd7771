/* Port security on a virtual network's bridge (docs/networks.md): a VM's port (its tap) only
 * lets through frames whose source MAC, and ARP packets whose sender MAC, is the VM NIC's
 * own, and IPv4 packets and ARP senders of its own fixed address (or 0.0.0.0, which DHCP and
 * ARP probes use), so a guest can neither pass for another VM (its lease, its name in DNS,
 * its address) nor poison its neighbours' ARP caches.
 *
 * The rules are one nftables table, `bridge tessera`, in the network's namespace, with a
 * prerouting chain (before the bridge decides where a frame goes, so it covers frames to other
 * ports and to the bridge itself: dnsmasq). The whole table is replaced in one `nft -f`
 * transaction on every change (its file: DIR/ports.nft), never edited rule by rule, so it never
 * holds half a change. Ports of VMs that are not running keep their rules: a rule for an
 * absent interface name matches nothing.
 *
 * 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; the caller keeps calls on one network
 * apart (tesserad's lock). */
#ifndef TESSERA_DAEMON_NET_PORTSEC_H
#define TESSERA_DAEMON_NET_PORTSEC_H

#include <stddef.h>

#include "daemon/net/netcmd.h"

struct portsec_port {
    const char *tap; /* its interface name on the bridge */
    const char *mac; /* "52:54:00:12:34:56": the only source it may send from */
    const char *ip;  /* "10.0.0.2": the only IPv4 source (and ARP sender) it may use, besides
                      * 0.0.0.0 (DHCP, ARP probes); NULL: no address check */
};

/* Replaces the network's rules (namespace ns, folder dir) with those of ports. */
int portsec_apply(const char *ns, const char *dir, const struct portsec_port *ports, size_t n,
                  char *err);

#endif
