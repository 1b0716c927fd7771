/* A virtual network's DHCP and DNS server: one dnsmasq (Debian dnsmasq-base) per network, run
 * in the network's namespace on its bridge (docs/networks.md).
 *
 * Its files live in the network's folder `dir` (made by the caller, mode 0700):
 * dnsmasq.conf (written here from the spec), dnsmasq.pid, dnsmasq.leases, dnsmasq.log.
 * dnsmasq makes itself a daemon, so it outlives tesserad like the VMs do and is found again by
 * its pid file; a pid is only taken for ours when /proc says it is dnsmasq reading our
 * conf file (a reused pid is never signalled).
 *
 * Each VM NIC is a `dhcp-host=MAC,IP,NAME` line: the VM's lease is tied to its MAC, is always
 * the same address, and its name resolves (dnsmasq puts DHCP names into its DNS). dnsmasq reads the
 * file only at start (it drops root after, and the state directory is root's), so a change of the
 * hosts restarts it; the lease file keeps every VM's address across the restart.
 *
 * Every call returns 0 or -errno with err (NETCMD_ERR_LEN). Threads: any; the caller keeps
 * two calls on one dir apart (tesserad's lock). */
#ifndef TESSERA_DAEMON_NET_DNSMASQ_H
#define TESSERA_DAEMON_NET_DNSMASQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon/net/netcmd.h"

struct dnsmasq_host {
    const char *mac;  /* "52:54:00:12:34:56" */
    const char *name; /* a VM's name: [a-z0-9-] */
    const char *ip;   /* its fixed lease ("10.0.0.2"), or NULL: one from the range */
};

struct dnsmasq_spec {
    const char *dir;     /* the network's folder */
    const char *ns;      /* its namespace */
    const char *iface;   /* the bridge in it */
    const char *gateway; /* "10.0.0.1": the router and DNS server the leases name */
    const char *mask;    /* "255.255.255.0" */
    /* At most two ranges (first, last), so the gateway's address is never leased. */
    const char *range[2][2];
    size_t nranges;
    const struct dnsmasq_host *hosts;
    size_t nhosts;
    unsigned mtu; /* 0, or the link MTU the leases give (DHCP option 26: an overlay's) */
};

/* Writes the conf file and (re)starts dnsmasq; returns once it serves (dnsmasq's parent waits
 * for its daemon to bind). */
int dnsmasq_start(const struct dnsmasq_spec *spec, char *err);
/* Stops the dnsmasq of dir (SIGTERM, then SIGKILL after 2 s) and removes its pid file. Not
 * running is 0. */
int dnsmasq_stop(const char *dir, char *err);
/* Whether the dnsmasq of dir runs: true with *pid. */
bool dnsmasq_running(const char *dir, pid_t *pid);

#endif
