/* A VM NIC's tap: made in the host's namespace, where the sandboxed VMM opens it by name
 * (`--net tap,ifname=NAME`, src/net/tap.c), then moved into its network's namespace and onto
 * the bridge there (docs/networks.md says why this order: the VMM stays in the host's
 * namespace, and a tap's open file keeps working across the move).
 *
 * Every call returns 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; no state. */
#ifndef TESSERA_DAEMON_NET_VNIC_H
#define TESSERA_DAEMON_NET_VNIC_H

#include "daemon/net/netcmd.h"

/* Makes the persistent tap ifname in the host's namespace, down, after deleting any tap of
 * that name left in the host or in ns by an earlier start. */
int vnic_prepare(const char *ifname, const char *ns, char *err);
/* Moves ifname (opened by its VMM) into ns, onto the bridge, up. A tap already in ns is only
 * attached and brought up, so a plug repeated after a restart of tesserad is harmless. */
int vnic_plug(const char *ifname, const char *ns, char *err);
/* Deletes the tap wherever it is (host or ns); absent is 0. */
int vnic_remove(const char *ifname, const char *ns, char *err);

#endif
