/* Virtual networks (docs/networks.md): the tenant-scoped "network" documents
 * {name, tenant, subnet, gateway, dhcp, created[, vxlan {vni, peers}][, vlan]} and the NICs of VMs
 * on them. The host side (namespaces, bridges, taps, dnsmasq) is src/daemon/net/vnet.h; this file
 * decides who may do what and keeps the documents, as api_vms.c does for VMs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/net/netcheck.h"
#include "daemon/net/netns.h"
#include "daemon/net/router.h"
#include "daemon/net/vnic.h"
#include "daemon/net/vnet.h"
#include "daemon/net/vxlan.h"

/* Each network is a namespace and a dnsmasq process on the host: a tenant may hold this many
 * (until the quotas count networks). */
#define NET_TENANT_MAX 16

/* tesserad --vxlan-local and --vlan-trunk: written once by main() before any thread starts. */
static char net_vxlan_local[16];
static char net_vlan_trunk[IFNAMSIZ];

int api_net_host_config(const char *vxlan_local, const char *vlan_trunk, char *err)
{
    net_vxlan_local[0] = net_vlan_trunk[0] = '\0';
    if (vlan_trunk) {
        size_t n = strlen(vlan_trunk);

        if (!n || n >= IFNAMSIZ || vlan_trunk[0] == '-' ||
            strspn(vlan_trunk,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n) {
            snprintf(err, STORE_ERR_LEN,
                     "--vlan-trunk %.40s: expected a host interface's name (1 to 15 characters)",
                     vlan_trunk);
            return -EINVAL;
        }
        snprintf(net_vlan_trunk, sizeof(net_vlan_trunk), "%s", vlan_trunk);
    }
    if (!vxlan_local)
        return 0;
    if (vxlan_check_addr(vxlan_local)) {
        snprintf(err, STORE_ERR_LEN,
                 "--vxlan-local %.40s: expected this host's IPv4 unicast address A.B.C.D",
                 vxlan_local);
        return -EINVAL;
    }
    snprintf(net_vxlan_local, sizeof(net_vxlan_local), "%s", vxlan_local);
    return 0;
}

/* The network's overlay from its document's "vxlan" {vni, peers} (absent: none); peers
 * points into the document. */
static void net_overlay(const json_t *net, struct vnet_overlay *ov,
                        const char *peers[VXLAN_PEERS_MAX])
{
    json_t *vx = json_object_get(net, "vxlan"), *p;
    size_t i;

    *ov = (struct vnet_overlay){.local = net_vxlan_local, .peers = peers, .trunk = net_vlan_trunk};
    ov->vlan = (unsigned)json_integer_value(json_object_get(net, "vlan"));
    if (!json_is_object(vx))
        return;
    ov->vni = (uint32_t)json_integer_value(json_object_get(vx, "vni"));
    json_array_foreach(json_object_get(vx, "peers"), i, p)
    {
        if (json_is_string(p) && ov->npeers < VXLAN_PEERS_MAX)
            peers[ov->npeers++] = json_string_value(p);
    }
}

/* The network (tenant, name)'s subnet from its document. */
static int net_subnet(const json_t *net, struct vnet_subnet *sn, char *err)
{
    return vnet_subnet_parse(json_string_value(json_object_get(net, "subnet")),
                             json_string_value(json_object_get(net, "gateway")), sn, err);
}

/* Collects the ports of one network from its tenant's VM documents. */
struct host_walk {
    const char *net;
    json_t *vms; /* the parsed VM documents, kept alive for the hosts' strings */
    struct vnet_port ports[256];
    bool running[256]; /* the port's VM runs (or is paused): its tap is plugged */
    size_t n;
};

static int each_host(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct host_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *nic;
    const char *vm_name = json_string_value(json_object_get(vm, "name"));
    const char *state = json_string_value(json_object_get(vm, "state"));
    size_t i;

    if (!vm || json_array_append_new(w->vms, vm))
        return -ENOMEM;
    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "network"));
        const char *mac = json_string_value(json_object_get(nic, "mac"));
        const char *tap = json_string_value(json_object_get(nic, "tap"));
        const char *ip = json_string_value(json_object_get(nic, "ip"));

        if (net && mac && tap && vm_name && !strcmp(net, w->net) &&
            w->n < sizeof(w->ports) / sizeof(w->ports[0])) {
            w->running[w->n] = state && (!strcmp(state, "running") || !strcmp(state, "paused"));
            w->ports[w->n++] = (struct vnet_port){mac, vm_name, tap, ip};
        }
    }
    return 0;
}

/* Brings the network's host side to what the store says: namespace, bridge, and dnsmasq
 * serving every NIC of the tenant's VMs on it. Caller holds d->lock. */
static int net_sync_doc(struct daemon *d, const char *tenant, const json_t *net, char *err)
{
    struct host_walk w = {.net = json_string_value(json_object_get(net, "name"))};
    const char *peers[VXLAN_PEERS_MAX];
    struct vnet_overlay ov;
    struct vnet_subnet sn;
    int ret = net_subnet(net, &sn, err);

    if (ret)
        return ret;
    net_overlay(net, &ov, peers);
    if (ov.vni && !net_vxlan_local[0]) {
        snprintf(err, NETCMD_ERR_LEN,
                 "network %.63s spans hosts (VXLAN) but this tesserad has no --vxlan-local", w.net);
        return -EINVAL;
    }
    if (ov.vlan && !net_vlan_trunk[0]) {
        snprintf(err, NETCMD_ERR_LEN,
                 "network %.63s has a VLAN tag but this tesserad has no --vlan-trunk", w.net);
        return -EINVAL;
    }
    w.vms = json_array();
    if (!w.vms)
        return -ENOMEM;
    ret = d->store->ops->doc_list(d->store, "vm", tenant, each_host, &w);
    if (ret)
        snprintf(err, NETCMD_ERR_LEN, "network %.63s: the store failed: %.400s", w.net,
                 store_error(d->store));
    else
        ret = vnet_up_overlay(d->state_dir, tenant, w.net, &sn,
                              json_is_true(json_object_get(net, "dhcp")), w.ports, w.n, &ov, err);
    /* Its NICs' security groups, once the namespace is there. */
    if (!ret)
        ret = api_sg_net_sync(d, tenant, w.net, err);
    json_decref(w.vms);
    return ret;
}

int api_net_sync(struct daemon *d, const char *tenant, const char *name, char *err)
{
    char *text, router[STORE_NAME_LEN], rerr[NETCMD_ERR_LEN];
    struct vnet_names nm;
    json_t *net;
    bool fresh;
    int on, ret = d->store->ops->doc_get(d->store, "network", tenant, name, &text);

    if (ret == -ENOENT)
        return 0;
    if (ret) {
        snprintf(err, NETCMD_ERR_LEN, "network %s: the store failed", name);
        return ret;
    }
    net = json_loads(text, 0, NULL);
    free(text);
    /* A namespace lost while the daemon ran (a VM's start makes it again here) comes back
     * without its router leg: the router attached to the network makes it again. That is
     * best effort: the router's other networks may be lost too, which `network repair` or a
     * restart mends, and this network serves its VMs either way. */
    vnet_names(d->state_dir, tenant, name, &nm);
    fresh = !netns_exists(nm.ns);
    ret = net ? net_sync_doc(d, tenant, net, err) : -EIO;
    if (!net)
        snprintf(err, NETCMD_ERR_LEN, "network %s: its stored record is damaged", name);
    json_decref(net);
    on = !ret && fresh ? api_router_of_network_in(d->store, tenant, name, router) : 0;
    if (on > 0 && api_router_sync(d, tenant, router, rerr))
        fprintf(stderr, "tesserad: network %s/%s made again; its router %s: %s\n", tenant, name,
                router, rerr);
    return ret;
}

/* ---- The VMs' NICs ---- */

/* A NIC's MAC: QEMU's prefix 52:54:00, then five hex digits of the VM's hash and the NIC's
 * index (the tap's name: "tsr", 11 hex digits, the index), so a VM's NICs differ. */
static void nic_mac(const char *tap, char *mac)
{
    snprintf(mac, 18, "52:54:00:%.2s:%.2s:%c%c", tap + 3, tap + 5, tap[7], tap[14]);
}

/* The addresses taken on network `net` of the scope: its VMs' NICs' and those given out
 * earlier in this request (`mine`), as a JSON object whose keys are the addresses. */
struct taken_walk {
    const char *net;
    json_t *taken;
};

static int each_taken(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct taken_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *nic;
    size_t i;

    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *n = json_string_value(json_object_get(nic, "network"));
        const char *ip = json_string_value(json_object_get(nic, "ip"));

        if (n && ip && !strcmp(n, w->net))
            json_object_set_new(w->taken, ip, json_true());
    }
    json_decref(vm);
    return 0;
}

/* A fixed address on network `net` (document netdoc) for a new NIC: `want` (NULL: the lowest
 * host address that is neither the gateway nor taken). 0, or the reply set: 400 for a wanted
 * address that is no host address of the subnet or the gateway's, 409 when it is taken or the
 * network is full. */
static int nic_address(struct req *q, const char *field, const char *net, const json_t *netdoc,
                       const json_t *mine, const char *want, char *out)
{
    struct taken_walk w = {net, json_deep_copy(mine)};
    char err[NETCMD_ERR_LEN], cidr[24];
    struct vnet_subnet sn;
    uint32_t a, bcast;
    int ret;

    if (!w.taken) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    ret = net_subnet(netdoc, &sn, err);
    if (ret) {
        reply_error(q->r, 500, NULL, "network '%s': its stored record is damaged: %s", net, err);
        goto done;
    }
    ret = q->s->ops->doc_list(q->s, "vm", q->scope, each_taken, &w);
    if (ret) {
        reply_store(q, "network", ret);
        goto done;
    }
    bcast = sn.net | ~(~0u << (32 - sn.prefix));
    if (want) {
        struct vnet_subnet one;
        char fip[40];

        snprintf(fip, sizeof(fip), "%s.ip", field);
        vnet_subnet_text(&sn, cidr, err);
        /* The subnet parser's gateway check is the host-address check. */
        ret = vnet_subnet_parse(cidr, want, &one, err);
        if (ret || one.gateway == sn.gateway) {
            reply_error(q->r, 400, fip, "%s: '%s' is not a free host address of %s (%s)", fip, want,
                        cidr, ret ? "outside it" : "the gateway's");
            ret = -EINVAL;
            goto done;
        }
        a = one.gateway;
        snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        if (json_object_get(w.taken, out)) {
            reply_error(q->r, 409, fip, "%s: %s is taken on network '%s'", fip, out, net);
            ret = -EEXIST;
        }
        goto done;
    }
    ret = -ENOSPC;
    for (a = sn.net + 1; a < bcast; a++) {
        if (a == sn.gateway)
            continue;
        snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        if (!json_object_get(w.taken, out)) {
            ret = 0;
            break;
        }
    }
    if (ret) {
        vnet_subnet_text(&sn, cidr, err);
        reply_error(q->r, 409, "nics", "network '%s' (%s) has no free address left", net, cidr);
    }
done:
    json_decref(w.taken);
    return ret;
}

int api_net_nics_parse(struct req *q, json_t *arr, const char *vm, json_t **out)
{
    char field[32], tap[IFNAMSIZ], mac[18], ip[16], *text;
    json_t *nic, *res, *mine = NULL, *netdoc;
    const char *net;
    size_t i;
    int ret;

    *out = NULL;
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > VNET_NICS_MAX) {
        reply_error(q->r, 400, "nics",
                    "field 'nics' must be a list of at most %d objects {\"network\": NAME, "
                    "\"security_groups\": [NAME, ...]}",
                    VNET_NICS_MAX);
        return -EINVAL;
    }
    res = json_array();
    mine = json_object();
    if (!res || !mine) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto fail;
    }
    json_array_foreach(arr, i, nic)
    {
        static const char *const keys[] = {"network", "security_groups", "ip", NULL};
        json_t *groups;
        const char *want = NULL;

        snprintf(field, sizeof(field), "nics[%zu]", i);
        if (!json_is_object(nic)) {
            reply_error(q->r, 400, field, "%s: expected an object {\"network\": NAME}", field);
            goto fail;
        }
        if (body_keys(q, nic, field, keys) ||
            body_str(q, nic, field, "network", true, STORE_NAME_LEN - 1, &net) ||
            body_str(q, nic, field, "ip", false, 15, &want) || check_name(q, "network", net))
            goto fail;
        ret = q->s->ops->doc_get(q->s, "network", q->scope, net, &text);
        if (ret == -ENOENT) {
            reply_error(q->r, 404, "network", "%s: network '%s' not found", field, net);
            goto fail;
        }
        if (ret) {
            reply_store(q, "network", ret);
            goto fail;
        }
        netdoc = json_loads(text, 0, NULL);
        free(text);
        ret = netdoc ? nic_address(q, field, net, netdoc, mine, want, ip) : -EIO;
        json_decref(netdoc);
        if (ret == -EIO)
            reply_error(q->r, 500, NULL, "network '%s': its stored record is damaged", net);
        if (ret)
            goto fail;
        json_object_set_new(mine, ip, json_true());
        vnet_tap_name(q->d->state_dir, q->scope, vm, (unsigned)i, tap);
        nic_mac(tap, mac);
        if (append(res, json_pack("{s:s,s:s,s:s,s:s}", "network", net, "mac", mac, "tap", tap, "ip",
                                  ip))) {
            reply_error(q->r, 500, NULL, "out of memory");
            goto fail;
        }
        if (api_sg_nic_groups(q, nic, field, &groups))
            goto fail;
        if (json_array_size(groups))
            json_object_set(json_array_get(res, i), "security_groups", groups);
        json_decref(groups);
    }
    json_decref(mine);
    *out = res;
    return 0;
fail:
    json_decref(mine);
    json_decref(res);
    return -EINVAL;
}

int api_net_nics_copy(struct req *q, const json_t *nics, const char *vm, json_t **out)
{
    json_t *arr = json_array(), *nic;
    size_t i;
    int ret = arr ? 0 : -ENOMEM;

    json_array_foreach(nics, i, nic)
    {
        if (!ret)
            ret = append(arr, json_pack("{s:O}", "network", json_object_get(nic, "network")));
        /* A copy keeps the original's security groups. */
        if (!ret && json_object_get(nic, "security_groups"))
            ret = json_object_set(json_array_get(arr, i), "security_groups",
                                  json_object_get(nic, "security_groups"));
    }
    if (ret) {
        json_decref(arr);
        reply_error(q->r, 500, NULL, "out of memory");
        return ret;
    }
    ret = api_net_nics_parse(q, arr, vm, out);
    json_decref(arr);
    if (!ret && !*out)
        *out = json_array();
    return ret;
}

int api_net_vm_nics(struct daemon *d, const char *tenant, const json_t *vm, const char *what,
                    char *err)
{
    struct vnet_names nm;
    json_t *nic;
    size_t i;
    int ret = 0;

    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "network"));
        const char *tap = json_string_value(json_object_get(nic, "tap"));
        int r;

        if (!net || !tap)
            continue;
        vnet_names(d->state_dir, tenant, net, &nm);
        if (!strcmp(what, "prepare"))
            r = vnic_prepare(tap, nm.ns, err);
        else if (!strcmp(what, "plug"))
            r = vnic_plug(tap, nm.ns, err);
        else
            r = vnic_remove(tap, nm.ns, err);
        /* A removal goes on past a failure: the other NICs go all the same. */
        if (r && !ret)
            ret = r;
        if (ret && strcmp(what, "remove"))
            return ret;
    }
    return ret;
}

/* ---- Routes ---- */

void api_networks_list(struct req *q)
{
    doc_list_reply(q, "network", "networks");
}

void api_network_get(struct req *q)
{
    json_t *net = doc_load(q, "network", q->scope, q->seg[1], "network");

    if (net)
        reply_json(q->r, 200, net);
}

static int each_count(void *arg, const char *tenant, const char *name, const char *doc)
{
    (*(size_t *)arg)++;
    return 0;
}

/* The body's `peers`: at most VXLAN_PEERS_MAX distinct IPv4 unicast addresses, none this
 * host's. *out a new array, or the reply set. */
static int body_peers(struct req *q, json_t *obj, const char *prefix, json_t **out)
{
    json_t *arr = json_object_get(obj, "peers");
    char field[32];
    const char *p;
    size_t i;

    snprintf(field, sizeof(field), "%s%speers", prefix, *prefix ? "." : "");
    *out = NULL;
    if (!json_is_array(arr) || json_array_size(arr) > VXLAN_PEERS_MAX) {
        reply_error(q->r, 400, field,
                    "field '%s' must be a list of at most %d IPv4 addresses (the other hosts')",
                    field, VXLAN_PEERS_MAX);
        return -EINVAL;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        if (body_str_at(q, arr, field, i, 15, &p))
            return -EINVAL;
        if (vxlan_check_addr(p) || !strcmp(p, net_vxlan_local)) {
            reply_error(q->r, 400, field,
                        "%s[%zu]: '%s' is not another host's IPv4 unicast address", field, i, p);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(p, json_string_value(json_array_get(arr, j)))) {
                reply_error(q->r, 400, field, "%s[%zu]: %s is listed twice", field, i, p);
                return -EINVAL;
            }
        }
    }
    *out = json_deep_copy(arr);
    if (!*out) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* Another network of this daemon (any tenant) with VNI vni, or (vni 0) with VLAN tag vlan
 * (vlan 0: with any tag): its owner's names. */
struct vni_walk {
    json_int_t vni, vlan;
    const char *tenant, *name;  /* the network itself, skipped */
    char owner[STORE_NAME_LEN]; /* named only to its own tenant: others' names are theirs */
    bool same;
};

static int each_vni(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct vni_walk *w = arg;
    json_t *net = json_loads(doc, 0, NULL);
    json_int_t vni = json_integer_value(json_object_get(json_object_get(net, "vxlan"), "vni"));
    json_int_t vlan = json_integer_value(json_object_get(net, "vlan"));
    int found = (w->vni    ? vni == w->vni
                 : w->vlan ? vlan == w->vlan
                           : vlan != 0) &&
                (strcmp(tenant, w->tenant) || strcmp(name, w->name));

    if (found) {
        snprintf(w->owner, sizeof(w->owner), "%s", name);
        w->same = !strcmp(tenant, w->tenant);
    }
    json_decref(net);
    return found;
}

/* The body's `vxlan` {vni, peers}: *out the document's member (NULL when absent), or the
 * reply set: 409 without --vxlan-local or for a VNI another network of this host has (the
 * kernel gives one VNI one device per address and port). */
static int body_vxlan(struct req *q, json_t *body, const char *name, json_t **out)
{
    static const char *const keys[] = {"vni", "peers", NULL};
    json_t *vx = json_object_get(body, "vxlan"), *peers;
    struct vni_walk w = {.tenant = q->scope, .name = name};
    uint64_t vni;
    bool present;
    int ret;

    *out = NULL;
    if (!vx)
        return 0;
    if (!json_is_object(vx)) {
        reply_error(q->r, 400, "vxlan",
                    "field 'vxlan' must be an object {\"vni\": N, \"peers\": [ADDR, ...]}");
        return -EINVAL;
    }
    if (body_keys(q, vx, "vxlan", keys) ||
        body_u64(q, vx, "vxlan", "vni", true, 1, VXLAN_VNI_MAX, &vni, &present) ||
        body_peers(q, vx, "vxlan", &peers))
        return -EINVAL;
    if (!net_vxlan_local[0]) {
        json_decref(peers);
        reply_error(q->r, 409, "vxlan",
                    "this host has no underlay address for VXLAN: start tesserad with "
                    "--vxlan-local ADDR");
        return -EINVAL;
    }
    w.vni = (json_int_t)vni;
    ret = q->s->ops->doc_list(q->s, "network", NULL, each_vni, &w);
    if (ret) {
        json_decref(peers);
        if (ret > 0)
            reply_error(q->r, 409, "vxlan",
                        "VNI %llu is taken on this host by another network%s%s: one VNI per "
                        "network",
                        (unsigned long long)vni, w.same ? " of this tenant: " : "",
                        w.same ? w.owner : "");
        else
            reply_store(q, "network", ret);
        return -EINVAL;
    }
    *out = json_pack("{s:I,s:o}", "vni", (json_int_t)vni, "peers", peers);
    if (!*out) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* The body's `vlan` (absent: 0), or the reply set: 409 without --vlan-trunk or for a tag
 * another network of this host has (one tag is one segment on the trunk: two networks on
 * it would be joined). */
static int body_vlan(struct req *q, json_t *body, const char *name, uint64_t *vlan)
{
    struct vni_walk w = {.tenant = q->scope, .name = name};
    bool present;
    int ret;

    if (body_u64(q, body, NULL, "vlan", false, 1, OVS_TAG_MAX, vlan, &present))
        return -EINVAL;
    if (!present) {
        *vlan = 0;
        return 0;
    }
    if (!net_vlan_trunk[0]) {
        reply_error(q->r, 409, "vlan",
                    "this host has no trunk for VLAN tags: start tesserad with --vlan-trunk "
                    "IFNAME");
        return -EINVAL;
    }
    w.vlan = (json_int_t)*vlan;
    ret = q->s->ops->doc_list(q->s, "network", NULL, each_vni, &w);
    if (ret > 0)
        reply_error(q->r, 409, "vlan", "VLAN %llu is taken on this host by another network%s%s",
                    (unsigned long long)*vlan, w.same ? " of this tenant: " : "",
                    w.same ? w.owner : "");
    else if (ret)
        reply_store(q, "network", ret);
    return ret ? -EINVAL : 0;
}

/* Stops the host's switch once no network of this daemon has a tag. Caller holds d->lock. */
static void net_vlan_gc(struct daemon *d)
{
    struct vni_walk w = {.tenant = "", .name = ""};
    char err[NETCMD_ERR_LEN];

    if (d->store->ops->doc_list(d->store, "network", NULL, each_vni, &w) == 0 &&
        vnet_vlan_release(d->state_dir, err))
        fprintf(stderr, "tesserad: networks: the VLAN switch: %s\n", err);
}

void api_networks_create(struct req *q)
{
    static const char *const fields[] = {"name",  "subnet", "gateway", "dhcp",
                                         "vxlan", "vlan",   NULL};
    char cidr[24], gw[24], err[NETCMD_ERR_LEN];
    const char *name, *subnet, *gateway = NULL;
    struct vnet_subnet sn;
    json_t *body, *net = NULL, *vx = NULL;
    uint64_t vlan = 0;
    size_t count = 0;
    bool dhcp = true;
    int ret;

    if (need_route_role(q, "creating a network") ||
        body_object(q, fields, "{\"name\": \"net1\", \"subnet\": \"10.0.0.0/24\"}", &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (body_str(q, body, NULL, "subnet", true, 18, &subnet) ||
        body_str(q, body, NULL, "gateway", false, 15, &gateway) ||
        body_bool(q, body, NULL, "dhcp", &dhcp))
        goto done;
    if (!json_object_get(body, "dhcp"))
        dhcp = true;
    if (vnet_subnet_parse(subnet, gateway, &sn, err)) {
        reply_error(q->r, 400, strncmp(err, "gateway", 7) ? "subnet" : "gateway", "%s", err);
        goto done;
    }
    ret = q->s->ops->doc_list(q->s, "network", q->scope, each_count, &count);
    if (ret) {
        reply_store(q, "network", ret);
        goto done;
    }
    if (count >= NET_TENANT_MAX) {
        reply_error(q->r, 409, "name",
                    "the tenant has %zu networks already, the most a tenant may have; delete "
                    "one first",
                    count);
        goto done;
    }
    if (body_vxlan(q, body, name, &vx) || body_vlan(q, body, name, &vlan))
        goto done;
    vnet_subnet_text(&sn, cidr, gw);
    net = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I}", "name", name, "tenant", q->scope, "subnet", cidr,
                    "gateway", gw, "dhcp", dhcp, "created", (json_int_t)time(NULL));
    if (!net || (vx && json_object_set(net, "vxlan", vx)) ||
        (vlan && json_object_set_new(net, "vlan", json_integer((json_int_t)vlan)))) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (doc_save(q, "network", q->scope, name, net, STORE_PUT_CREATE))
        goto done;
    /* The host work last: a failure undoes it, the transaction the document. */
    ret = net_sync_doc(q->d, q->scope, net, err);
    if (ret) {
        char err2[NETCMD_ERR_LEN];

        vnet_down(q->d->state_dir, q->scope, name, err2);
        reply_error(q->r, 500, NULL, "network '%s': %s", name, err);
        goto done;
    }
    reply_json(q->r, 201, json_incref(net));
done:
    json_decref(vx);
    json_decref(net);
    json_decref(body);
}

void api_network_vxlan_set(struct req *q)
{
    static const char *const fields[] = {"peers", NULL};
    char err[NETCMD_ERR_LEN];
    json_t *body = NULL, *net, *peers = NULL, *vx;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    net = doc_load(q, "network", q->scope, q->seg[1], "network");
    if (!net || need_route_role(q, "changing a network's peers") ||
        body_object(q, fields, "{\"peers\": [\"192.0.2.2\"]}", &body))
        goto done;
    vx = json_object_get(net, "vxlan");
    if (!json_is_object(vx)) {
        reply_error(q->r, 409, NULL, "network '%s' does not span hosts (it was made without vxlan)",
                    q->seg[1]);
        goto done;
    }
    if (!json_object_get(body, "peers")) {
        reply_error(q->r, 400, "peers", "field 'peers' is required");
        goto done;
    }
    if (body_peers(q, body, "", &peers))
        goto done;
    if (json_object_set_new(vx, "peers", peers)) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (doc_save(q, "network", q->scope, q->seg[1], net, STORE_PUT_UPDATE))
        goto done;
    /* Live: the device, bridge, VMs and leases stay; only the flood entries change. */
    if (net_sync_doc(q->d, q->scope, net, err)) {
        reply_error(q->r, 500, NULL, "network '%s': %s", q->seg[1], err);
        goto done;
    }
    reply_json(q->r, 200, json_incref(net));
done:
    json_decref(body);
    json_decref(net);
}

/* The first of the tenant's VMs with a NIC on the network. */
struct user_walk {
    const char *net;
    char vm[STORE_NAME_LEN];
};

static int each_net_user(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct user_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *nic;
    size_t i;
    int found = 0;

    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "network"));

        if (net && !strcmp(net, w->net))
            found = 1;
    }
    if (found)
        snprintf(w->vm, sizeof(w->vm), "%s", name);
    json_decref(vm);
    return found;
}

void api_network_delete(struct req *q)
{
    struct user_walk w = {.net = q->seg[1]};
    char err[NETCMD_ERR_LEN];
    json_t *net;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    net = doc_load(q, "network", q->scope, q->seg[1], "network");
    if (!net || need_route_role(q, "deleting a network"))
        goto done;
    ret = q->s->ops->doc_list(q->s, "vm", q->scope, each_net_user, &w);
    if (ret > 0) {
        reply_error(q->r, 409, NULL, "network '%s' is used by VM '%s'; delete the VM first",
                    q->seg[1], w.vm);
        goto done;
    }
    if (!ret)
        ret = api_router_of_network(q, q->seg[1], w.vm);
    if (ret > 0) {
        reply_error(q->r, 409, NULL,
                    "network '%s' is attached to router '%s'; detach it from the router first",
                    q->seg[1], w.vm);
        goto done;
    }
    if (ret || q->s->ops->doc_delete(q->s, "network", q->scope, q->seg[1])) {
        reply_store(q, "network delete", ret ? ret : -EIO);
        goto done;
    }
    if (vnet_down(q->d->state_dir, q->scope, q->seg[1], err)) {
        reply_error(q->r, 500, NULL, "network '%s': %s", q->seg[1], err);
        goto done;
    }
    if (json_object_get(net, "vlan"))
        net_vlan_gc(q->d);
    reply_empty(q->r);
done:
    json_decref(net);
}

/* ---- Drift ---- */

/* The check of one network: {"network", "ok", "drift": [{"object", "problem"}]}, or NULL with
 * err when the check could not run. Caller holds d->lock. */
static json_t *net_check_doc(struct daemon *d, const char *tenant, const json_t *net,
                             const char *router_leg, char *err)
{
    const char *peers[VXLAN_PEERS_MAX];
    struct netcheck_link own[3];
    char vxdev[IFNAMSIZ];
    struct vnet_overlay ov;
    struct vnet_names nm;
    size_t nown = 0;
    struct host_walk w = {.net = json_string_value(json_object_get(net, "name"))};
    struct netcheck_port ports[sizeof(w.ports) / sizeof(w.ports[0])];
    json_t *drift = json_array(), *out = NULL;
    struct vnet_subnet sn;
    int ret = net_subnet(net, &sn, err);

    w.vms = json_array();
    if (!ret && (!w.vms || !drift)) {
        snprintf(err, NETCMD_ERR_LEN, "out of memory");
        ret = -ENOMEM;
    }
    if (!ret && d->store->ops->doc_list(d->store, "vm", tenant, each_host, &w)) {
        snprintf(err, NETCMD_ERR_LEN, "network %.63s: the store failed: %.400s", w.net,
                 store_error(d->store));
        ret = -EIO;
    }
    for (size_t i = 0; !ret && i < w.n; i++)
        ports[i] = (struct netcheck_port){w.ports[i], w.running[i]};
    /* Its own interfaces besides the bridge and the taps. */
    vnet_names(d->state_dir, tenant, w.net, &nm);
    net_overlay(net, &ov, peers);
    if (router_leg)
        own[nown++] = (struct netcheck_link){"router leg", router_leg};
    if (ov.vni) {
        vnet_vxlan_name(nm.id, vxdev);
        own[nown++] = (struct netcheck_link){"vxlan device", vxdev};
    }
    if (ov.vlan)
        own[nown++] = (struct netcheck_link){"vlan uplink", VNET_UPLINK_NS};
    if (!ret)
        ret = netcheck_network(d->state_dir, tenant, w.net, &sn,
                               json_is_true(json_object_get(net, "dhcp")), ports, w.n, own, nown,
                               drift, err);
    if (!ret)
        out = json_pack("{s:s, s:b, s:O}", "network", w.net, "ok", json_array_size(drift) == 0,
                        "drift", drift);
    json_decref(drift);
    json_decref(w.vms);
    return out;
}

/* The router network net of the scope is attached to (*router: its name) and its leg there:
 * 1, or 0 when it is on none, or -EIO. */
static int net_router(struct req *q, const char *net, char router[STORE_NAME_LEN],
                      char leg[IFNAMSIZ])
{
    struct router_names rn;
    int ret = api_router_of_network(q, net, router);

    if (ret == 1) {
        router_names(q->d->state_dir, q->scope, router, &rn);
        router_net_leg(rn.id, leg);
    }
    return ret;
}

/* GET /networks/{name}/check: what differs between the store and the host. */
void api_network_check(struct req *q)
{
    char err[NETCMD_ERR_LEN], router[STORE_NAME_LEN], leg[IFNAMSIZ];
    json_t *net = doc_load(q, "network", q->scope, q->seg[1], "network"), *out = NULL;
    int on = net ? net_router(q, q->seg[1], router, leg) : 0;

    if (!net)
        return;
    if (on < 0) {
        reply_store(q, "network check", on);
        json_decref(net);
        return;
    }
    out = net_check_doc(q->d, q->scope, net, on ? leg : NULL, err);
    if (out)
        reply_json(q->r, 200, out);
    else
        reply_error(q->r, 500, NULL, "network '%s': checking it: %s", q->seg[1], err);
    json_decref(out);
    json_decref(net);
}

/* One VM of a walk of the scope's VMs: its taps plugged again when it runs with a NIC on
 * the network being repaired. */
struct plug_walk {
    const char *net;
    json_t *vms;
};

static int each_plug_vm(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct plug_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *nic;
    size_t i;

    if (!vm)
        return 0;
    json_object_set_new(vm, "tenant", json_string(tenant));
    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "network"));

        if (net && !strcmp(net, w->net)) {
            json_array_append(w->vms, vm);
            break;
        }
    }
    json_decref(vm);
    return 0;
}

static void vm_plug(struct daemon *d, const json_t *vm);

/* POST /networks/{name}/repair: the network brought back to what the store says (its
 * ordinary bring-up), its router's too (which makes its leg again), its running VMs' taps
 * plugged again, then checked: the reply is the check after the repair, so what could not be
 * repaired shows. */
void api_network_repair(struct req *q)
{
    struct plug_walk w = {.net = q->seg[1]};
    char err[NETCMD_ERR_LEN], router[STORE_NAME_LEN], leg[IFNAMSIZ];
    json_t *net, *out = NULL, *vm;
    size_t i;
    int on;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    net = doc_load(q, "network", q->scope, q->seg[1], "network");
    if (!net || need_route_role(q, "repairing a network"))
        goto done;
    w.vms = json_array();
    if (!w.vms || q->s->ops->doc_list(q->s, "vm", q->scope, each_plug_vm, &w)) {
        reply_store(q, "network repair", -EIO);
        goto done;
    }
    on = net_router(q, q->seg[1], router, leg);
    if (on < 0) {
        reply_store(q, "network repair", on);
        goto done;
    }
    if (net_sync_doc(q->d, q->scope, net, err) ||
        (on && api_router_sync(q->d, q->scope, router, err))) {
        reply_error(q->r, 500, NULL, "network '%s': repairing it: %s", q->seg[1], err);
        goto done;
    }
    json_array_foreach(w.vms, i, vm) vm_plug(q->d, vm);
    out = net_check_doc(q->d, q->scope, net, on ? leg : NULL, err);
    if (out)
        reply_json(q->r, 200, out);
    else
        reply_error(q->r, 500, NULL, "network '%s': checking it: %s", q->seg[1], err);
done:
    json_decref(w.vms);
    json_decref(out);
    json_decref(net);
}

/* ---- After a restart ---- */

/* Collects the networks' documents: recovery works on them after the walk, since a store
 * walk must not run another store call from its callback (it would reuse the walk's own
 * statement and end it early). */
static int each_net_collect(void *arg, const char *tenant, const char *name, const char *doc)
{
    json_t *net = json_loads(doc, 0, NULL);

    if (!net)
        return 0;
    json_object_set_new(net, "tenant", json_string(tenant));
    return json_array_append_new(arg, net) ? -ENOMEM : 0;
}

static bool net_known(void *arg, const char *id)
{
    return json_object_get(arg, id) != NULL;
}

/* A running VM's taps onto their bridges: a daemon killed between a VMM's start and its
 * taps' move left them in the host's namespace. */
static void vm_plug(struct daemon *d, const json_t *vm)
{
    const char *state = json_string_value(json_object_get(vm, "state"));
    const char *tenant = json_string_value(json_object_get(vm, "tenant"));
    char err[NETCMD_ERR_LEN];

    if (tenant && state && (!strcmp(state, "running") || !strcmp(state, "paused")) &&
        api_net_vm_nics(d, tenant, vm, "plug", err))
        fprintf(stderr, "tesserad: VM %s/%s: %s\n", tenant,
                json_string_value(json_object_get(vm, "name")), err);
}

void api_net_recover(struct daemon *d)
{
    json_t *nets = json_array(), *ids = json_object(), *net, *vms = json_array(), *vm;
    char err[NETCMD_ERR_LEN];
    struct vnet_names nm;
    size_t i;

    if (!nets || !ids || !vms ||
        d->store->ops->doc_list(d->store, "network", NULL, each_net_collect, nets)) {
        fprintf(stderr, "tesserad: networks: cannot read them: %s\n", store_error(d->store));
        goto done;
    }
    json_array_foreach(nets, i, net)
    {
        const char *tenant = json_string_value(json_object_get(net, "tenant"));
        const char *name = json_string_value(json_object_get(net, "name"));

        if (!tenant || !name)
            continue;
        vnet_names(d->state_dir, tenant, name, &nm);
        json_object_set_new(ids, nm.id, json_true());
        if (net_sync_doc(d, tenant, net, err))
            fprintf(stderr, "tesserad: network %s/%s: %s\n", tenant, name, err);
    }
    /* Only once every network is known: what none claims goes. */
    if (vnet_sweep(d->state_dir, net_known, ids, err))
        fprintf(stderr, "tesserad: networks: %s\n", err);
    net_vlan_gc(d); /* a switch a crash left with no network needing it */
    if (d->store->ops->doc_list(d->store, "vm", NULL, each_net_collect, vms))
        goto done;
    json_array_foreach(vms, i, vm) vm_plug(d, vm);
done:
    json_decref(vms);
    json_decref(ids);
    json_decref(nets);
}
