/* netcheck.h: reads the network's state through `ip -json`, `nft list` and dnsmasq's files. */
#include "daemon/net/netcheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/net/netcmd.h"

static void drift_add(json_t *drift, const char *object, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void drift_add(json_t *drift, const char *object, const char *fmt, ...)
{
    char problem[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    json_array_append_new(drift, json_pack("{s:s, s:s}", "object", object, "problem", problem));
}

/* The interface ifname of `ip -json link` output, or NULL. */
static json_t *link_find(json_t *links, const char *ifname)
{
    json_t *l;
    size_t i;

    json_array_foreach(links, i, l)
    {
        const char *n = json_string_value(json_object_get(l, "ifname"));

        if (n && !strcmp(n, ifname))
            return l;
    }
    return NULL;
}

static bool link_up(const json_t *l)
{
    json_t *f;
    size_t i;

    json_array_foreach(json_object_get(l, "flags"), i,
                       f) if (json_is_string(f) && !strcmp(json_string_value(f), "UP")) return true;
    return false;
}

/* Runs argv and parses its stdout as JSON. */
static int json_of(const char *const argv[], json_t **out, char *err)
{
    char *text = NULL;
    json_error_t je;
    int ret = netcmd_output(argv, &text, err);

    if (ret)
        return ret;
    *out = json_loads(text, 0, &je);
    free(text);
    if (!*out) {
        snprintf(err, NETCMD_ERR_LEN, "'%s %s %s': output is not JSON: %s", argv[0], argv[1],
                 argv[2], je.text);
        return -EIO;
    }
    return 0;
}

static void check_bridge(json_t *links, const char *ns, const struct vnet_subnet *sn, json_t *drift,
                         char *err)
{
    const char *argv[] = {"ip", "-n", ns, "-json", "addr", "show", "dev", NETNS_BRIDGE, NULL};
    char cidr[20], gw[20], want[24];
    json_t *l = link_find(links, NETNS_BRIDGE), *addrs = NULL, *a, *info;
    bool found = false;
    size_t i, j;

    if (!l) {
        drift_add(drift, "bridge " NETNS_BRIDGE, "missing from namespace %s", ns);
        return;
    }
    if (!link_up(l))
        drift_add(drift, "bridge " NETNS_BRIDGE, "down");
    vnet_subnet_text(sn, cidr, gw);
    snprintf(want, sizeof(want), "%s/%u", gw, sn->prefix % 100);
    if (json_of(argv, &addrs, err)) {
        drift_add(drift, "bridge " NETNS_BRIDGE, "its addresses could not be read: %s", err);
        return;
    }
    json_array_foreach(addrs, i, a) json_array_foreach(json_object_get(a, "addr_info"), j, info)
    {
        const char *local = json_string_value(json_object_get(info, "local"));

        if (local && !strcmp(local, gw) &&
            json_integer_value(json_object_get(info, "prefixlen")) == (json_int_t)sn->prefix)
            found = true;
    }
    if (!found)
        drift_add(drift, "bridge " NETNS_BRIDGE, "lacks the gateway's address %s", want);
    json_decref(addrs);
}

static void check_links(json_t *links, const struct netcheck_port *ports, size_t n,
                        const struct netcheck_link *own, size_t nown, json_t *drift)
{
    json_t *l;
    size_t i, k;

    for (i = 0; i < n; i++) {
        char object[64];
        const char *master;

        if (!ports[i].running)
            continue; /* a stopped VM's tap may stay, unplugged: its next start replaces it */
        snprintf(object, sizeof(object), "tap %s", ports[i].port.tap);
        l = link_find(links, ports[i].port.tap);
        master = json_string_value(json_object_get(l, "master"));
        if (!l)
            drift_add(drift, object, "VM %s runs but its tap is not in the network's namespace",
                      ports[i].port.name);
        else if (!master || strcmp(master, NETNS_BRIDGE))
            drift_add(drift, object, "not on the bridge (master %s)", master ? master : "none");
        else if (!link_up(l))
            drift_add(drift, object, "down");
    }
    for (i = 0; i < nown; i++) {
        char object[64];

        snprintf(object, sizeof(object), "%.24s %.16s", own[i].what, own[i].ifname);
        l = link_find(links, own[i].ifname);
        if (!l)
            drift_add(drift, object, "missing");
        else if (!link_up(l))
            drift_add(drift, object, "down");
    }
    /* Nothing else belongs in the namespace: a link no port names was made by hand, or left. */
    json_array_foreach(links, i, l)
    {
        const char *name = json_string_value(json_object_get(l, "ifname"));
        bool known = !name || !strcmp(name, "lo") || !strcmp(name, NETNS_BRIDGE);
        char object[64];

        for (k = 0; !known && k < n; k++)
            known = !strcmp(name, ports[k].port.tap);
        for (k = 0; !known && k < nown; k++)
            known = !strcmp(name, own[k].ifname);
        if (!known) {
            snprintf(object, sizeof(object), "interface %.32s", name);
            drift_add(drift, object, "in the network's namespace, but no VM NIC of it is %s", name);
        }
    }
}

static void check_rules(const char *ns, const struct netcheck_port *ports, size_t n, json_t *drift,
                        char *err)
{
    const char *argv[] = {"ip",   "netns", "exec",   ns,        "nft",
                          "list", "table", "bridge", "tessera", NULL};
    char *text = NULL, want[128];
    size_t i;

    if (netcmd_output(argv, &text, err)) {
        drift_add(drift, "nft table bridge tessera", "missing: no port security (%s)", err);
        return;
    }
    for (i = 0; i < n; i++) {
        char object[64];

        snprintf(object, sizeof(object), "port rules of %s", ports[i].port.tap);
        snprintf(want, sizeof(want), "iifname \"%s\" ether saddr != %s drop", ports[i].port.tap,
                 ports[i].port.mac);
        if (!strstr(text, want)) {
            drift_add(drift, object, "no MAC check for %s", ports[i].port.mac);
            continue;
        }
        snprintf(want, sizeof(want), "iifname \"%s\" ip saddr != { 0.0.0.0, %s } drop",
                 ports[i].port.tap, ports[i].port.ip ? ports[i].port.ip : "");
        if (ports[i].port.ip && !strstr(text, want))
            drift_add(drift, object, "no address check for %s", ports[i].port.ip);
    }
    free(text);
}

static void check_dnsmasq(const char *dir, bool dhcp, const struct netcheck_port *ports, size_t n,
                          json_t *drift)
{
    char path[PATH_MAX + 16], want[160], *conf = NULL;
    bool running;
    size_t i, len = 0;
    pid_t pid;
    FILE *f;

    running = dnsmasq_running(dir, &pid);
    if (!dhcp) {
        if (running)
            drift_add(drift, "dnsmasq", "runs (pid %d) on a network without DHCP", (int)pid);
        return;
    }
    if (!running) {
        drift_add(drift, "dnsmasq", "not running: no DHCP or DNS on the network");
        return;
    }
    snprintf(path, sizeof(path), "%s/dnsmasq.conf", dir);
    f = fopen(path, "re");
    if (f) {
        conf = malloc(1 << 20);
        if (conf)
            len = fread(conf, 1, (1 << 20) - 1, f);
        fclose(f);
    }
    if (!conf) {
        drift_add(drift, "dnsmasq", "its configuration %s cannot be read", path);
        return;
    }
    conf[len] = '\0';
    for (i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "dhcp-host=%s,%s%s%s\n", ports[i].port.mac,
                 ports[i].port.ip ? ports[i].port.ip : "", ports[i].port.ip ? "," : "",
                 ports[i].port.name);
        if (!strstr(conf, want))
            drift_add(drift, "dnsmasq", "no lease for VM %s (%s)", ports[i].port.name,
                      ports[i].port.mac);
    }
    free(conf);
}

int netcheck_network(const char *state_dir, const char *tenant, const char *name,
                     const struct vnet_subnet *sn, bool dhcp, const struct netcheck_port *ports,
                     size_t nports, const struct netcheck_link *own, size_t nown, json_t *drift,
                     char *err)
{
    struct vnet_names nm;
    char msg[NETCMD_ERR_LEN];
    struct stat st;
    json_t *links = NULL;
    int ret;

    vnet_names(state_dir, tenant, name, &nm);
    if (stat(nm.dir, &st) || !S_ISDIR(st.st_mode))
        drift_add(drift, "folder", "%s is missing", nm.dir);
    if (!netns_exists(nm.ns)) {
        drift_add(drift, "namespace", "%s is missing: the network carries nothing", nm.ns);
        return 0;
    }
    {
        const char *argv[] = {"ip", "-n", nm.ns, "-json", "link", "show", NULL};

        ret = json_of(argv, &links, err);
        if (ret)
            return ret;
    }
    check_bridge(links, nm.ns, sn, drift, msg);
    check_links(links, ports, nports, own, nown, drift);
    check_rules(nm.ns, ports, nports, drift, msg);
    check_dnsmasq(nm.dir, dhcp, ports, nports, drift);
    json_decref(links);
    return 0;
}
