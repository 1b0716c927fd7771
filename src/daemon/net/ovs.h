/* The host's trunk switch for VLAN networks (docs/networks.md "VLAN tags"): an Open vSwitch
 * (Debian openvswitch-switch) of tesserad's own, its userspace datapath
 * (datapath_type=netdev), so it needs neither the openvswitch kernel module nor 802.1Q
 * devices nor bridge VLAN filtering, which this CI's kernel lacks.
 *
 * One bridge per daemon; the host's trunk interface is a port of it carrying every tag, and
 * each VLAN network's uplink (a veth end in the host's namespace) an access port `tag=N`.
 * tesserad runs the switch's own ovsdb-server and ovs-vswitchd, not the system's service:
 * database, sockets, pid and log files all live in `dir` (STATE/ovs), and OVS_RUNDIR,
 * OVS_LOGDIR and OVS_DBDIR point there, so a system Open vSwitch on the host is never
 * touched. Both make themselves daemons (like dnsmasq they outlive a tesserad killed or
 * stopped, and are found again by their pid files); a pid is only taken for ours when
 * /proc says it is that program with our pid file. ovs_shutdown() stops them once no network
 * needs a tag.
 *
 * Names are the caller's (vnet.h makes them from hashes), checked again here. Every call
 * returns 0 or -errno with err (NETCMD_ERR_LEN); ovs-vsctl waits at most OVS_TIMEOUT_S for the
 * switch. Threads: any; the caller keeps calls apart (tesserad's lock). */
#ifndef TESSERA_DAEMON_NET_OVS_H
#define TESSERA_DAEMON_NET_OVS_H

#include <stdbool.h>

#include "daemon/net/netcmd.h"

#define OVS_TIMEOUT_S "10"
#define OVS_TAG_MAX   4094 /* 802.1Q VIDs 1..4094 (0 and 4095 are reserved) */

/* Starts the switch if it does not run (a fresh database when there is none), makes the
 * bridge and puts trunk, an existing host interface, on it as a trunk port. */
int ovs_ensure(const char *dir, const char *bridge, const char *trunk, char *err);
/* Puts the host interface port on the bridge as an access port of VLAN tag. */
int ovs_port_add(const char *dir, const char *bridge, const char *port, unsigned tag, char *err);
/* Takes port off the switch; not there, or no switch running, is 0. */
int ovs_port_del(const char *dir, const char *port, char *err);
/* Stops both daemons, deletes the bridge's device and removes dir with its files. Not
 * running is 0. */
int ovs_shutdown(const char *dir, const char *bridge, char *err);
/* Whether our ovs-vswitchd of dir runs. */
bool ovs_running(const char *dir);

#endif
