/* netns.h: `ip netns` and `ip -n NS link` (iproute2). */
#include "daemon/net/netns.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

bool netns_exists(const char *ns)
{
    char path[sizeof(NETNS_RUN_DIR) + NETNS_NAME_MAX + 1];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, ns);
    return !lstat(path, &st) && S_ISREG(st.st_mode);
}

/* `ip -n NS link show DEV` succeeds: the device exists there. */
static bool netns_has_link(const char *ns, const char *dev)
{
    const char *show[] = {"ip", "-n", ns, "link", "show", "dev", dev, NULL};
    char err[NETCMD_ERR_LEN];

    return !netcmd_run(show, err);
}

int netns_create(const char *ns, const char *cidr, char *err)
{
    const char *add[] = {"ip", "netns", "add", ns, NULL};
    const char *lo[] = {"ip", "-n", ns, "link", "set", "lo", "up", NULL};
    const char *br[] = {"ip", "-n", ns, "link", "add", NETNS_BRIDGE, "type", "bridge", NULL};
    const char *addr[] = {"ip", "-n", ns, "addr", "replace", cidr, "dev", NETNS_BRIDGE, NULL};
    const char *up[] = {"ip", "-n", ns, "link", "set", NETNS_BRIDGE, "up", NULL};
    int ret = 0;

    if (!netns_exists(ns))
        ret = netcmd_run(add, err);
    if (!ret)
        ret = netcmd_run(lo, err);
    if (!ret && !netns_has_link(ns, NETNS_BRIDGE))
        ret = netcmd_run(br, err);
    if (!ret)
        ret = netcmd_run(addr, err);
    if (!ret)
        ret = netcmd_run(up, err);
    return ret;
}

int netns_delete(const char *ns, char *err)
{
    const char *del[] = {"ip", "netns", "delete", ns, NULL};

    if (!netns_exists(ns))
        return 0;
    return netcmd_run(del, err);
}
