/* Drift of a virtual network (docs/networks.md, "Checking for drift"): what the kernel and the
 * network's processes hold, compared with what the store says they should. `tessera network
 * check` and GET /api/v1/networks/{name}/check report it; a repair is the network's ordinary
 * bring-up (vnet_up) and the running VMs' taps plugged again.
 *
 * Looked at, in the network's namespace: the namespace itself, its folder, the bridge (up, the
 * gateway's address), each running VM NIC's tap (present, on the bridge, up), its other
 * interfaces (the leg of the router it is attached to, its VXLAN device, its VLAN uplink:
 * present, up), interfaces no one made, the port-security table (a rule
 * for each port's MAC and address), and dnsmasq (running with a dhcp-host line for each port when
 * the network has DHCP; not running when it has none). Read-only: it changes nothing.
 *
 * 0 or -errno with err (NETCMD_ERR_LEN) when the check itself could not run; the differences
 * found are not errors. Threads: any; the caller holds tesserad's lock so the network does not
 * change underneath. */
#ifndef TESSERA_DAEMON_NET_NETCHECK_H
#define TESSERA_DAEMON_NET_NETCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "daemon/net/vnet.h"

/* An interface of the network's besides the bridge and the taps: a router's leg, the VXLAN
 * device, the VLAN uplink. */
struct netcheck_link {
    const char *what;   /* "router leg", "vxlan device", "vlan uplink": the drift's object */
    const char *ifname; /* its name in the network's namespace */
};

struct netcheck_port {
    struct vnet_port port; /* as vnet_up takes it */
    bool running;          /* its VM runs: its tap must be plugged */
};

/* Appends to the JSON array drift one {"object", "problem"} per difference found in network
 * (tenant, name) of state_dir whose subnet is sn. links: the network's other interfaces, each
 * of which must be there and up (and is no stray). */
int netcheck_network(const char *state_dir, const char *tenant, const char *name,
                     const struct vnet_subnet *sn, bool dhcp, const struct netcheck_port *ports,
                     size_t nports, const struct netcheck_link *links, size_t nlinks, json_t *drift,
                     char *err);

#endif
