/* vnic.h: taps with `ip tuntap` and `ip link` (iproute2). */
#include "daemon/net/vnic.h"

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/net/netns.h"

/* Whether ifname exists in ns (NULL: the host's namespace). */
static bool vnic_in(const char *ifname, const char *ns)
{
    const char *there[] = {"ip", "-n", ns, "link", "show", "dev", ifname, NULL};
    char err[NETCMD_ERR_LEN];

    if (!ns)
        return if_nametoindex(ifname) != 0;
    return netns_exists(ns) && !netcmd_run(there, err);
}

int vnic_remove(const char *ifname, const char *ns, char *err)
{
    const char *host[] = {"ip", "link", "delete", "dev", ifname, NULL};
    const char *there[] = {"ip", "-n", ns, "link", "delete", "dev", ifname, NULL};
    int ret = 0;

    if (vnic_in(ifname, NULL))
        ret = netcmd_run(host, err);
    if (!ret && vnic_in(ifname, ns))
        ret = netcmd_run(there, err);
    return ret;
}

int vnic_prepare(const char *ifname, const char *ns, char *err)
{
    const char *add[] = {"ip", "tuntap", "add", "dev", ifname, "mode", "tap", NULL};
    int ret = vnic_remove(ifname, ns, err);

    if (!ret)
        ret = netcmd_run(add, err);
    return ret;
}

int vnic_plug(const char *ifname, const char *ns, char *err)
{
    const char *move[] = {"ip", "link", "set", "dev", ifname, "netns", ns, NULL};
    const char *master[] = {"ip",   "-n",     ns,           "link", "set", "dev",
                            ifname, "master", NETNS_BRIDGE, "up",   NULL};
    int ret = 0;

    if (vnic_in(ifname, NULL))
        ret = netcmd_run(move, err);
    if (!ret)
        ret = netcmd_run(master, err);
    return ret;
}
