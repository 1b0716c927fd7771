/* A virtual network's own network namespace and the switch in it (docs/networks.md).
 *
 * Each network is a named namespace (`ip netns`, a bind mount under /run/netns, so it outlives
 * tesserad and is found again after a restart) holding one Linux bridge, NETNS_BRIDGE, whose
 * address is the network's gateway (dnsmasq listens there). Nothing links the namespace to
 * the host's or to another network's: isolation between networks (and tenants, whose subnets
 * may overlap) is the kernel's namespace boundary, not a rule that could be forgotten.
 *
 * Names: namespace names are checked by the caller (vnet.h makes them from hashes).
 * Every call returns 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; no state. */
#ifndef TESSERA_DAEMON_NET_NETNS_H
#define TESSERA_DAEMON_NET_NETNS_H

#include <stdbool.h>

#include "daemon/net/netcmd.h"

#define NETNS_BRIDGE   "br0"
#define NETNS_NAME_MAX 32
#define NETNS_RUN_DIR  "/run/netns"

/* Makes the namespace and its bridge with address cidr ("10.0.0.1/24"), both up; what exists
 * already is kept (so it also repairs a half-made one). */
int netns_create(const char *ns, const char *cidr, char *err);
/* Deletes the namespace: the kernel destroys its bridge and every tap in it. Absent is 0. */
int netns_delete(const char *ns, char *err);
bool netns_exists(const char *ns);

#endif
