/* Routers and external networks (docs/networks.md, "Routers and NAT").
 *
 * An external network is the platform's (documents of kind "external-network", tenant ""):
 * {name, bridge, subnet, gateway, pool, created}, a Linux bridge of the host that leads
 * outside and the addresses of its subnet the daemon may hand out. Platform administrators
 * make and delete them; everyone sees their names, subnets and gateways (not the bridges and
 * pools: host details).
 *
 * A router is tenant-scoped (kind "router"): {name, tenant, external_network, external_ip,
 * snat, networks, port_forwards, floating_ips, created}. external_ip and each floating IP's
 * external_ip are taken from the external network's pool, unique across every tenant's
 * routers (the one place a tenant's choice meets another's: the pool is shared, so who holds
 * an address is never told, only that none is left). The host side is src/daemon/net/router.h;
 * this file decides who may do what and keeps the documents, as api_networks.c does. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/net/router.h"
#include "daemon/net/vnet.h"

#define EXT_KIND       "external-network"
#define RTR_KIND       "router"
#define RTR_TENANT_MAX 8 /* each is a namespace on the host: until the quotas count routers */

/* ---- Collecting documents (a store walk must not make another store call) ---- */

static int each_collect(void *arg, const char *tenant, const char *name, const char *doc)
{
    json_t *v = json_loads(doc, 0, NULL);

    if (!json_is_object(v)) {
        json_decref(v);
        return 0;
    }
    json_object_set_new(v, "tenant", json_string(tenant));
    return json_array_append_new(arg, v) ? -ENOMEM : 0;
}

/* Every document of kind in tenant (NULL: every tenant) as a new array; NULL with err. */
static json_t *docs_all(struct store *s, const char *kind, const char *tenant)
{
    json_t *arr = json_array();

    if (arr && s->ops->doc_list(s, kind, tenant, each_collect, arr)) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *doc_get_store(struct store *s, const char *kind, const char *tenant,
                             const char *name)
{
    char *text;
    json_t *v;

    if (s->ops->doc_get(s, kind, tenant, name, &text))
        return NULL;
    v = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Whether member k of o is the string v (a damaged document's missing member is not). */
static bool jeq(const json_t *o, const char *k, const char *v)
{
    const char *s = jstr(o, k);

    return s && v && !strcmp(s, v);
}

/* ---- External networks ---- */

struct ext_net {
    struct vnet_subnet sn;
    uint32_t first, last; /* the pool */
    const char *bridge;
};

static int ext_parse(const json_t *doc, struct ext_net *e, char *err)
{
    int ret = vnet_subnet_parse(jstr(doc, "subnet") ? jstr(doc, "subnet") : "",
                                jstr(doc, "gateway"), &e->sn, err);

    if (!ret)
        ret = router_pool_parse(jstr(doc, "pool"), &e->sn, &e->first, &e->last, err);
    e->bridge = jstr(doc, "bridge");
    if (!ret && !e->bridge)
        ret = -EINVAL;
    return ret;
}

/* What a tenant may see of an external network. */
static json_t *ext_view(const struct req *q, json_t *doc)
{
    if (q->c.role == ROLE_PLATFORM_ADMIN && !q->c.tenant[0])
        return json_incref(doc);
    return json_pack("{s:O,s:O,s:O}", "name", json_object_get(doc, "name"), "subnet",
                     json_object_get(doc, "subnet"), "gateway", json_object_get(doc, "gateway"));
}

void api_ext_networks_list(struct req *q)
{
    json_t *all = docs_all(q->s, EXT_KIND, ""), *out = json_array(), *doc;
    size_t i;
    int ret = all && out ? 0 : -EIO;

    json_array_foreach(all, i, doc)
    {
        json_object_del(doc, "tenant");
        if (!ret)
            ret = append(out, ext_view(q, doc));
    }
    json_decref(all);
    reply_list(q, "external_networks", out, ret);
}

void api_ext_network_get(struct req *q)
{
    json_t *doc = doc_load(q, EXT_KIND, "", q->seg[1], "external network");

    if (doc)
        reply_json(q->r, 200, ext_view(q, doc));
    json_decref(doc);
}

void api_ext_networks_create(struct req *q)
{
    static const char *const fields[] = {"name", "bridge", "subnet", "gateway", "pool", NULL};
    const char *name, *bridge, *subnet, *gateway = NULL, *pool;
    char cidr[24], gw[24], err[NETCMD_ERR_LEN];
    json_t *body, *doc = NULL, *all = NULL, *o;
    struct ext_net e, other;
    size_t i, n;

    if (need_route_role(q, "creating an external network") ||
        body_object(q, fields,
                    "{\"name\": \"ext\", \"bridge\": \"br-ext\", \"subnet\": \"192.0.2.0/24\", "
                    "\"gateway\": \"192.0.2.1\", \"pool\": \"192.0.2.10-192.0.2.99\"}",
                    &body))
        return;
    if (q->c.tenant[0]) {
        reply_error(q->r, 403, NULL, "external networks are the platform's");
        goto done;
    }
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (body_str(q, body, NULL, "bridge", true, IFNAMSIZ - 1, &bridge) ||
        body_str(q, body, NULL, "subnet", true, 18, &subnet) ||
        body_str(q, body, NULL, "gateway", false, 15, &gateway) ||
        body_str(q, body, NULL, "pool", true, 31, &pool))
        goto done;
    n = strlen(bridge);
    if (bridge[0] == '-' ||
        strspn(bridge, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
        reply_error(q->r, 400, "bridge", "bridge: expected a host interface name");
        goto done;
    }
    if (vnet_subnet_parse(subnet, gateway, &e.sn, err)) {
        reply_error(q->r, 400, strncmp(err, "gateway", 7) ? "subnet" : "gateway", "%s", err);
        goto done;
    }
    if (router_pool_parse(pool, &e.sn, &e.first, &e.last, err)) {
        reply_error(q->r, 400, "pool", "%s", err);
        goto done;
    }
    /* Two external networks on one subnet would leave a router unsure where an address is. */
    all = docs_all(q->s, EXT_KIND, "");
    if (!all) {
        reply_store(q, "external network", -EIO);
        goto done;
    }
    json_array_foreach(all, i, o)
    {
        if (!ext_parse(o, &other, err) &&
            router_subnets_overlap(e.sn.net, e.sn.prefix, other.sn.net, other.sn.prefix)) {
            reply_error(q->r, 409, "subnet", "subnet %s overlaps external network '%s'", subnet,
                        jstr(o, "name"));
            goto done;
        }
    }
    vnet_subnet_text(&e.sn, cidr, gw);
    doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name", name, "bridge", bridge, "subnet", cidr,
                    "gateway", gw, "pool", pool, "created", (json_int_t)time(NULL));
    if (!doc) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (doc_save(q, EXT_KIND, "", name, doc, STORE_PUT_CREATE))
        goto done;
    reply_json(q->r, 201, json_incref(doc));
done:
    json_decref(all);
    json_decref(doc);
    json_decref(body);
}

void api_ext_network_delete(struct req *q)
{
    json_t *doc, *all = NULL, *r;
    size_t i;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    doc = doc_load(q, EXT_KIND, "", q->seg[1], "external network");
    if (!doc || need_route_role(q, "deleting an external network"))
        goto done;
    all = docs_all(q->s, RTR_KIND, NULL);
    if (!all) {
        reply_store(q, "router", -EIO);
        goto done;
    }
    json_array_foreach(all, i, r)
    {
        const char *ext = jstr(r, "external_network");

        if (ext && !strcmp(ext, q->seg[1])) {
            reply_error(q->r, 409, NULL,
                        "external network '%s' is used by router '%s' of tenant '%s'", q->seg[1],
                        jstr(r, "name"), jstr(r, "tenant"));
            goto done;
        }
    }
    if (q->s->ops->doc_delete(q->s, EXT_KIND, "", q->seg[1])) {
        reply_store(q, "external network delete", -EIO);
        goto done;
    }
    reply_empty(q->r);
done:
    json_decref(all);
    json_decref(doc);
}

/* ---- Routers: checking a candidate document ---- */

/* What a candidate router is checked against, loaded once. */
struct rtr_ctx {
    struct req *q;
    json_t *doc;  /* the candidate */
    json_t *nets; /* the attached networks' documents, in order */
    json_t *ext;  /* the external network's document, or NULL */
    struct ext_net e;
    json_t *taken; /* external addresses held by other routers: {addr: true} */
};

/* The VM's address on one of the router's networks; NULL with the reply set. */
static const char *rtr_vm_ip(struct rtr_ctx *c, const char *field, const char *vm, json_t **hold)
{
    json_t *doc = doc_load(c->q, "vm", c->q->scope, vm, "VM"), *nic, *net;
    size_t i, j;

    *hold = doc;
    if (!doc)
        return NULL;
    json_array_foreach(json_object_get(doc, "nics"), i, nic)
    {
        json_array_foreach(c->nets, j, net)
        {
            if (jstr(nic, "ip") && jeq(nic, "network", jstr(net, "name")))
                return jstr(nic, "ip");
        }
    }
    reply_error(c->q->r, 409, field, "%s: VM '%s' has no NIC on a network of this router", field,
                vm);
    return NULL;
}

/* Whether ip is an address of one of the attached networks. */
static bool rtr_inside(struct rtr_ctx *c, uint32_t ip)
{
    struct vnet_subnet sn;
    char err[NETCMD_ERR_LEN];
    json_t *net;
    size_t i;

    json_array_foreach(c->nets, i, net)
    {
        if (!vnet_subnet_parse(jstr(net, "subnet"), jstr(net, "gateway"), &sn, err) &&
            router_subnets_overlap(sn.net, sn.prefix, ip, 32))
            return true;
    }
    return false;
}

/* The inside address of a forward or floating IP: "vm" (its NIC on an attached network) or
 * "ip"; written back to obj as "ip". 0 or the reply set. */
static int rtr_target(struct rtr_ctx *c, json_t *obj, const char *field, uint32_t *out)
{
    const char *vm = jstr(obj, "vm"), *ip = jstr(obj, "ip");
    json_t *hold = NULL;
    int ret = 0;

    if (json_object_get(obj, "vm") && !vm) {
        reply_error(c->q->r, 400, field, "%s.vm: expected a VM's name", field);
        return -EINVAL;
    }
    if (vm && check_name(c->q, field, vm))
        return -EINVAL;
    if (vm)
        ip = rtr_vm_ip(c, field, vm, &hold);
    else if (!ip)
        reply_error(c->q->r, 400, field, "%s: expected \"ip\" (an address) or \"vm\" (a VM's name)",
                    field);
    if (!ip) {
        json_decref(hold);
        return -EINVAL;
    }
    if (router_addr_parse(ip, out) || !rtr_inside(c, *out)) {
        reply_error(c->q->r, 400, field,
                    "%s.ip: expected an address of one of the router's networks", field);
        ret = -EINVAL;
    } else {
        json_object_set_new(obj, "ip", json_string(ip));
    }
    json_decref(hold);
    return ret;
}

/* A port number member: 1..65535. */
static int rtr_port(struct rtr_ctx *c, json_t *obj, const char *field, const char *key,
                    unsigned *out)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
        reply_error(c->q->r, 400, field, "%s.%s: expected a port number 1 to 65535", field, key);
        return -EINVAL;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int rtr_check_keys(struct rtr_ctx *c, json_t *obj, const char *field,
                          const char *const *keys, const char *sample)
{
    if (!json_is_object(obj)) {
        reply_error(c->q->r, 400, field, "%s: expected an object %s", field, sample);
        return -EINVAL;
    }
    return body_keys(c->q, obj, field, keys);
}

static int rtr_check_nets(struct rtr_ctx *c)
{
    json_t *arr = json_object_get(c->doc, "networks"), *v, *other, *all;
    struct vnet_subnet sn[ROUTER_NETS_MAX];
    char err[NETCMD_ERR_LEN], field[32];
    size_t i, j;

    if (!json_is_array(arr) || json_array_size(arr) > ROUTER_NETS_MAX) {
        reply_error(c->q->r, 400, "networks", "networks: expected a list of at most %d names",
                    ROUTER_NETS_MAX);
        return -EINVAL;
    }
    json_array_foreach(arr, i, v)
    {
        const char *name = json_string_value(v);

        snprintf(field, sizeof(field), "networks[%zu]", i);
        if (!name) {
            reply_error(c->q->r, 400, field, "%s: expected a network's name", field);
            return -EINVAL;
        }
        if (check_name(c->q, field, name))
            return -EINVAL;
        other = doc_load(c->q, "network", c->q->scope, name, "network");
        if (!other)
            return -ENOENT;
        json_array_append_new(c->nets, other);
        if (vnet_subnet_parse(jstr(other, "subnet"), jstr(other, "gateway"), &sn[i], err)) {
            reply_error(c->q->r, 500, NULL, "network '%s': its stored record is damaged", name);
            return -EIO;
        }
        for (j = 0; j < i; j++) {
            if (router_subnets_overlap(sn[i].net, sn[i].prefix, sn[j].net, sn[j].prefix)) {
                reply_error(c->q->r, 409, "networks",
                            "networks '%s' and '%s' overlap: a router joins networks of "
                            "distinct subnets",
                            json_string_value(json_array_get(arr, j)), name);
                return -EEXIST;
            }
        }
        if (c->ext &&
            router_subnets_overlap(sn[i].net, sn[i].prefix, c->e.sn.net, c->e.sn.prefix)) {
            reply_error(c->q->r, 409, "networks",
                        "network '%s' overlaps the external network's subnet", name);
            return -EEXIST;
        }
    }
    /* A network has one way out: its default route. */
    all = docs_all(c->q->s, RTR_KIND, c->q->scope);
    if (!all) {
        reply_store(c->q, "router", -EIO);
        return -EIO;
    }
    json_array_foreach(all, i, other)
    {
        if (jeq(other, "name", jstr(c->doc, "name")))
            continue;
        json_array_foreach(arr, j, v)
        {
            json_t *w;
            size_t k;

            json_array_foreach(json_object_get(other, "networks"), k, w)
            {
                if (json_is_string(w) && !strcmp(json_string_value(w), json_string_value(v))) {
                    reply_error(c->q->r, 409, "networks",
                                "network '%s' is attached to router '%s' already",
                                json_string_value(v), jstr(other, "name"));
                    json_decref(all);
                    return -EEXIST;
                }
            }
        }
    }
    json_decref(all);
    return 0;
}

/* The lowest pool address nobody holds; 0 or the 409 set. */
static int rtr_alloc(struct rtr_ctx *c, const char *field, char out[16])
{
    for (uint32_t a = c->e.first; a <= c->e.last && a >= c->e.first; a++) {
        router_addr_text(a, out);
        if (!json_object_get(c->taken, out)) {
            json_object_set_new(c->taken, out, json_true());
            return 0;
        }
    }
    reply_error(c->q->r, 409, field, "external network '%s' has no free address left",
                jstr(c->ext, "name"));
    return -ENOSPC;
}

/* The external addresses other routers hold on the same external network. */
static int rtr_taken(struct rtr_ctx *c)
{
    json_t *all = docs_all(c->q->s, RTR_KIND, NULL), *r, *f;
    const char *ext = jstr(c->doc, "external_network");
    size_t i, j;

    c->taken = json_object();
    if (!all || !c->taken) {
        json_decref(all);
        reply_store(c->q, "router", -EIO);
        return -EIO;
    }
    json_array_foreach(all, i, r)
    {
        if (!jeq(r, "external_network", ext) ||
            (jeq(r, "tenant", c->q->scope) && jeq(r, "name", jstr(c->doc, "name"))))
            continue;
        if (jstr(r, "external_ip"))
            json_object_set_new(c->taken, jstr(r, "external_ip"), json_true());
        json_array_foreach(json_object_get(r, "floating_ips"), j, f)
        {
            if (jstr(f, "external_ip"))
                json_object_set_new(c->taken, jstr(f, "external_ip"), json_true());
        }
    }
    json_decref(all);
    return 0;
}

static int rtr_check_forwards(struct rtr_ctx *c)
{
    static const char *const keys[] = {"protocol", "external_port", "ip", "vm", "port", NULL};
    json_t *arr = json_object_get(c->doc, "port_forwards"), *f, *seen = json_object();
    char field[48], key[16];
    unsigned proto = 0, ep = 0, p = 0;
    uint32_t ip;
    size_t i;
    int ret = 0;

    if (!json_is_array(arr) || json_array_size(arr) > ROUTER_FORWARDS_MAX) {
        reply_error(c->q->r, 400, "port_forwards",
                    "port_forwards: expected a list of at most %d objects", ROUTER_FORWARDS_MAX);
        ret = -EINVAL;
    }
    if (!ret && json_array_size(arr) && !c->ext) {
        reply_error(c->q->r, 409, "port_forwards", "port forwards need an external network");
        ret = -EINVAL;
    }
    json_array_foreach(arr, i, f)
    {
        if (ret)
            break;
        snprintf(field, sizeof(field), "port_forwards[%zu]", i);
        ret = rtr_check_keys(c, f, field, keys,
                             "{\"protocol\": \"tcp\", \"external_port\": 8080, \"ip\": "
                             "\"10.0.0.5\", \"port\": 80}");
        if (!ret && router_proto_parse(jstr(f, "protocol"), &proto)) {
            reply_error(c->q->r, 400, field, "%s.protocol: expected \"tcp\" or \"udp\"", field);
            ret = -EINVAL;
        }
        if (!ret)
            ret = rtr_port(c, f, field, "external_port", &ep);
        if (!ret && !json_object_get(f, "port"))
            json_object_set_new(f, "port", json_integer(ep));
        if (!ret)
            ret = rtr_port(c, f, field, "port", &p);
        if (!ret)
            ret = rtr_target(c, f, field, &ip);
        snprintf(key, sizeof(key), "%u/%u", proto, ep);
        if (!ret && json_object_get(seen, key)) {
            reply_error(c->q->r, 409, field, "%s: %s port %u is forwarded already", field,
                        jstr(f, "protocol"), ep);
            ret = -EEXIST;
        }
        if (!ret)
            json_object_set_new(seen, key, json_true());
    }
    json_decref(seen);
    return ret;
}

static int rtr_check_fips(struct rtr_ctx *c)
{
    static const char *const keys[] = {"ip", "vm", "external_ip", NULL};
    json_t *arr = json_object_get(c->doc, "floating_ips"), *f, *seen = json_object();
    char field[48], a[16];
    uint32_t ip, ext;
    size_t i;
    int ret = 0;

    if (!json_is_array(arr) || json_array_size(arr) > ROUTER_FIPS_MAX) {
        reply_error(c->q->r, 400, "floating_ips",
                    "floating_ips: expected a list of at most %d objects", ROUTER_FIPS_MAX);
        ret = -EINVAL;
    }
    if (!ret && json_array_size(arr) && !c->ext) {
        reply_error(c->q->r, 409, "floating_ips", "floating IPs need an external network");
        ret = -EINVAL;
    }
    json_array_foreach(arr, i, f)
    {
        if (ret)
            break;
        snprintf(field, sizeof(field), "floating_ips[%zu]", i);
        ret = rtr_check_keys(c, f, field, keys, "{\"vm\": \"web\"} or {\"ip\": \"10.0.0.5\"}");
        if (!ret)
            ret = rtr_target(c, f, field, &ip);
        if (!ret && json_object_get(seen, jstr(f, "ip"))) {
            reply_error(c->q->r, 409, field, "%s: %s has a floating IP already", field,
                        jstr(f, "ip"));
            ret = -EEXIST;
        }
        if (!ret)
            json_object_set_new(seen, jstr(f, "ip"), json_true());
    }
    /* Addresses asked for (or kept from before) first, then the new ones from the pool. */
    json_array_foreach(arr, i, f)
    {
        const char *want = jstr(f, "external_ip");

        if (ret || !json_object_get(f, "external_ip"))
            continue;
        snprintf(field, sizeof(field), "floating_ips[%zu]", i);
        if (!want || router_addr_parse(want, &ext) || ext < c->e.first || ext > c->e.last) {
            reply_error(c->q->r, 400, field,
                        "%s.external_ip: expected an address of the external network's pool",
                        field);
            ret = -EINVAL;
        } else if (json_object_get(c->taken, want)) {
            reply_error(c->q->r, 409, field, "%s.external_ip: %s is taken", field, want);
            ret = -EEXIST;
        } else {
            json_object_set_new(c->taken, want, json_true());
        }
    }
    json_array_foreach(arr, i, f)
    {
        snprintf(field, sizeof(field), "floating_ips[%zu]", i);
        if (!ret && !json_object_get(f, "external_ip")) {
            ret = rtr_alloc(c, field, a);
            if (!ret)
                json_object_set_new(f, "external_ip", json_string(a));
        }
    }
    json_decref(seen);
    return ret;
}

/* Checks the candidate c->doc (its members of the body's types already), fills in what the
 * daemon chooses (addresses, forwards' inside addresses). 0 or the reply set. */
static int rtr_check(struct rtr_ctx *c)
{
    const char *ext = jstr(c->doc, "external_network");
    char err[NETCMD_ERR_LEN], a[16];
    int ret;

    c->nets = json_array();
    if (!c->nets) {
        reply_error(c->q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    if (ext) {
        c->ext = doc_load(c->q, EXT_KIND, "", ext, "external network");
        if (!c->ext)
            return -ENOENT;
        if (ext_parse(c->ext, &c->e, err)) {
            reply_error(c->q->r, 500, NULL, "external network '%s': its record is damaged: %s", ext,
                        err);
            return -EIO;
        }
        ret = rtr_taken(c);
        if (ret)
            return ret;
        /* The router's own address is kept across changes. */
        if (!jstr(c->doc, "external_ip")) {
            ret = rtr_alloc(c, "external_network", a);
            if (ret)
                return ret;
            json_object_set_new(c->doc, "external_ip", json_string(a));
        } else {
            json_object_set_new(c->taken, jstr(c->doc, "external_ip"), json_true());
        }
    }
    ret = rtr_check_nets(c);
    if (!ret)
        ret = rtr_check_forwards(c);
    if (!ret)
        ret = rtr_check_fips(c);
    return ret;
}

static void rtr_ctx_free(struct rtr_ctx *c)
{
    json_decref(c->nets);
    json_decref(c->ext);
    json_decref(c->taken);
}

/* ---- Routers: the host side from a document ---- */

struct rtr_spec_mem {
    struct router_ext ext;
    struct router_net nets[ROUTER_NETS_MAX];
    char ids[ROUTER_NETS_MAX][VNET_ID_LEN];
    struct router_forward fwds[ROUTER_FORWARDS_MAX];
    struct router_fip fips[ROUTER_FIPS_MAX];
    struct router_spec spec;
};

/* Brings the router (tenant, doc)'s host side to what the document says. Caller holds
 * d->lock. */
static int rtr_sync_doc(struct daemon *d, const char *tenant, const json_t *doc, char *err)
{
    struct rtr_spec_mem *m = calloc(1, sizeof(*m));
    const char *extname = jstr(doc, "external_network");
    json_t *ext = NULL, *v;
    struct vnet_names nm;
    struct vnet_subnet sn;
    struct ext_net e;
    size_t i;
    int ret = m ? 0 : -ENOMEM;

    if (!m) {
        snprintf(err, NETCMD_ERR_LEN, "router: out of memory");
        return ret;
    }
    if (extname) {
        ext = doc_get_store(d->store, EXT_KIND, "", extname);
        if (!ext || ext_parse(ext, &e, err) ||
            router_addr_parse(jstr(doc, "external_ip"), &m->ext.addr)) {
            snprintf(err, NETCMD_ERR_LEN, "external network '%.63s' is missing or damaged",
                     extname);
            ret = -EIO;
            goto free_mem;
        }
        m->ext.bridge = e.bridge;
        m->ext.prefix = e.sn.prefix;
        m->ext.gateway = e.sn.gateway;
        m->ext.snat = !json_is_false(json_object_get(doc, "snat"));
        m->spec.ext = &m->ext;
    }
    json_array_foreach(json_object_get(doc, "networks"), i, v)
    {
        json_t *net = json_is_string(v) && i < ROUTER_NETS_MAX
                          ? doc_get_store(d->store, "network", tenant, json_string_value(v))
                          : NULL;
        int r =
            net ? vnet_subnet_parse(jstr(net, "subnet"), jstr(net, "gateway"), &sn, err) : -ENOENT;

        json_decref(net);
        if (r) {
            snprintf(err, NETCMD_ERR_LEN, "network '%.63s' is missing or damaged",
                     json_string_value(v) ? json_string_value(v) : "?");
            ret = -EIO;
            goto free_mem;
        }
        vnet_names(d->state_dir, tenant, json_string_value(v), &nm);
        snprintf(m->ids[i], VNET_ID_LEN, "%s", nm.id);
        m->nets[i] = (struct router_net){m->ids[i], sn.net, sn.prefix};
        m->spec.nnets = i + 1;
    }
    m->spec.nets = m->nets;
    json_array_foreach(json_object_get(doc, "port_forwards"), i, v)
    {
        struct router_forward *f = &m->fwds[i];

        if (i >= ROUTER_FORWARDS_MAX || router_proto_parse(jstr(v, "protocol"), &f->proto) ||
            router_addr_parse(jstr(v, "ip"), &f->ip))
            break;
        f->ext_port = (unsigned)json_integer_value(json_object_get(v, "external_port"));
        f->port = (unsigned)json_integer_value(json_object_get(v, "port"));
        m->spec.nfwds = i + 1;
    }
    m->spec.fwds = m->fwds;
    json_array_foreach(json_object_get(doc, "floating_ips"), i, v)
    {
        if (i >= ROUTER_FIPS_MAX || router_addr_parse(jstr(v, "ip"), &m->fips[i].ip) ||
            router_addr_parse(jstr(v, "external_ip"), &m->fips[i].ext))
            break;
        m->spec.nfips = i + 1;
    }
    m->spec.fips = m->fips;
    ret = router_up(d->state_dir, tenant, jstr(doc, "name"), &m->spec, err);
free_mem:
    json_decref(ext);
    free(m);
    return ret;
}

/* ---- Routers: routes ---- */

/* Checks the candidate, stores it, makes the host match; replies status with it. On a host
 * failure the host goes back to old (NULL: the router goes) and the transaction is undone. */
static void rtr_commit(struct req *q, json_t *cand, const json_t *old, unsigned status)
{
    struct rtr_ctx c = {.q = q, .doc = cand};
    char err[NETCMD_ERR_LEN], err2[NETCMD_ERR_LEN];

    if (rtr_check(&c))
        goto done;
    if (doc_save(q, RTR_KIND, q->scope, jstr(cand, "name"), cand,
                 old ? STORE_PUT_UPDATE : STORE_PUT_CREATE))
        goto done;
    if (rtr_sync_doc(q->d, q->scope, cand, err)) {
        if (old)
            rtr_sync_doc(q->d, q->scope, old, err2);
        else
            router_down(q->d->state_dir, q->scope, jstr(cand, "name"), err2);
        reply_error(q->r, 500, NULL, "router '%s': %s", jstr(cand, "name"), err);
        goto done;
    }
    reply_json(q->r, status, json_incref(cand));
done:
    rtr_ctx_free(&c);
}

void api_routers_list(struct req *q)
{
    doc_list_reply(q, RTR_KIND, "routers");
}

void api_router_get(struct req *q)
{
    json_t *doc = doc_load(q, RTR_KIND, q->scope, q->seg[1], "router");

    if (doc)
        reply_json(q->r, 200, doc);
}

/* The body's mutable members onto cand: snat, networks, port_forwards, floating_ips. */
static int rtr_take(struct req *q, json_t *body, json_t *cand)
{
    static const char *const arrays[] = {"networks", "port_forwards", "floating_ips", NULL};
    bool snat;

    if (json_object_get(body, "snat")) {
        if (body_bool(q, body, NULL, "snat", &snat))
            return -EINVAL;
        json_object_set_new(cand, "snat", json_boolean(snat));
    }
    for (size_t i = 0; arrays[i]; i++) {
        json_t *v = json_object_get(body, arrays[i]);

        if (!v)
            continue;
        if (!json_is_array(v)) {
            reply_error(q->r, 400, arrays[i], "%s: expected a list", arrays[i]);
            return -EINVAL;
        }
        json_object_set_new(cand, arrays[i], json_deep_copy(v));
    }
    return 0;
}

void api_routers_create(struct req *q)
{
    static const char *const fields[] = {"name",          "external_network", "snat", "networks",
                                         "port_forwards", "floating_ips",     NULL};
    const char *name, *ext = NULL;
    json_t *body, *cand = NULL, *all = NULL;

    if (need_route_role(q, "creating a router") ||
        body_object(q, fields,
                    "{\"name\": \"gw\", \"external_network\": \"ext\", \"networks\": [\"lan\"]}",
                    &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (body_str(q, body, NULL, "external_network", false, STORE_NAME_LEN - 1, &ext) ||
        (ext && check_name(q, "external_network", ext)))
        goto done;
    all = docs_all(q->s, RTR_KIND, q->scope);
    if (!all) {
        reply_store(q, "router", -EIO);
        goto done;
    }
    if (json_array_size(all) >= RTR_TENANT_MAX) {
        reply_error(q->r, 409, "name",
                    "the tenant has %zu routers already, the most a tenant may have; delete one "
                    "first",
                    json_array_size(all));
        goto done;
    }
    cand =
        json_pack("{s:s,s:s,s:o,s:b,s:[],s:[],s:[],s:I}", "name", name, "tenant", q->scope,
                  "external_network", ext ? json_string(ext) : json_null(), "snat", 1, "networks",
                  "port_forwards", "floating_ips", "created", (json_int_t)time(NULL));
    if (!cand) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (!ext)
        json_object_set_new(cand, "snat", json_false());
    if (rtr_take(q, body, cand))
        goto done;
    rtr_commit(q, cand, NULL, 201);
done:
    json_decref(all);
    json_decref(cand);
    json_decref(body);
}

void api_router_put(struct req *q)
{
    static const char *const fields[] = {"name",    "tenant",   "external_network", "external_ip",
                                         "snat",    "networks", "port_forwards",    "floating_ips",
                                         "created", NULL};
    json_t *body = NULL, *old, *cand = NULL, *v;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    old = doc_load(q, RTR_KIND, q->scope, q->seg[1], "router");
    if (!old || need_route_role(q, "changing a router") ||
        body_object(q, fields, "{\"networks\": [\"lan\"], \"snat\": true}", &body))
        goto done;
    /* What the daemon owns may come back as it was (a GET's document, edited), not changed. */
    v = json_object_get(body, "external_network");
    if (v && !json_equal(v, json_object_get(old, "external_network"))) {
        reply_error(q->r, 409, "external_network",
                    "a router's external network is fixed: delete and create it again");
        goto done;
    }
    v = json_object_get(body, "external_ip");
    if (v && !json_equal(v, json_object_get(old, "external_ip"))) {
        reply_error(q->r, 409, "external_ip", "the router's external address is the daemon's");
        goto done;
    }
    cand = json_deep_copy(old);
    if (!cand) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (rtr_take(q, body, cand))
        goto done;
    rtr_commit(q, cand, old, 200);
done:
    json_decref(cand);
    json_decref(body);
    json_decref(old);
}

void api_router_delete(struct req *q)
{
    char err[NETCMD_ERR_LEN];
    json_t *doc;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    doc = doc_load(q, RTR_KIND, q->scope, q->seg[1], "router");
    if (!doc || need_route_role(q, "deleting a router"))
        goto done;
    if (q->s->ops->doc_delete(q->s, RTR_KIND, q->scope, q->seg[1])) {
        reply_store(q, "router delete", -EIO);
        goto done;
    }
    if (router_down(q->d->state_dir, q->scope, q->seg[1], err)) {
        reply_error(q->r, 500, NULL, "router '%s': %s", q->seg[1], err);
        goto done;
    }
    reply_empty(q->r);
done:
    json_decref(doc);
}

/* POST and DELETE on /routers/{name}/networks[/{network}], /port-forwards[/{proto}/{port}],
 * /floating-ips[/{address}]: one element added to or taken from the router's lists. */
void api_router_sub(struct req *q)
{
    bool add = !strcmp(q->rq->method, "POST");
    const char *what = q->seg[2];
    const char *key = !strcmp(what, "networks")        ? "networks"
                      : !strcmp(what, "port-forwards") ? "port_forwards"
                                                       : "floating_ips";
    json_t *old, *cand = NULL, *arr, *body = NULL, *v;
    size_t i, before;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    old = doc_load(q, RTR_KIND, q->scope, q->seg[1], "router");
    if (!old || need_route_role(q, "changing a router"))
        goto done;
    cand = json_deep_copy(old);
    arr = cand ? json_object_get(cand, key) : NULL;
    if (!json_is_array(arr)) {
        reply_error(q->r, 500, NULL, "router '%s': its stored record is damaged", q->seg[1]);
        goto done;
    }
    if (add) {
        body = q->len ? json_loadb(q->body, q->len, 0, NULL) : NULL;
        if (!json_is_object(body)) {
            reply_error(q->r, 400, NULL, "expected a JSON object, such as %s",
                        !strcmp(key, "networks")        ? "{\"network\": \"lan\"}"
                        : !strcmp(key, "port_forwards") ? "{\"protocol\": \"tcp\", "
                                                          "\"external_port\": 8080, \"vm\": "
                                                          "\"web\", \"port\": 80}"
                                                        : "{\"vm\": \"web\"}");
            goto done;
        }
        if (!strcmp(key, "networks")) {
            static const char *const keys[] = {"network", NULL};
            const char *net;

            if (body_keys(q, body, NULL, keys) ||
                body_str(q, body, NULL, "network", true, STORE_NAME_LEN - 1, &net))
                goto done;
            json_array_foreach(arr, i, v)
            {
                if (json_is_string(v) && !strcmp(json_string_value(v), net)) {
                    reply_error(q->r, 409, "network", "network '%s' is attached already", net);
                    goto done;
                }
            }
            json_array_append_new(arr, json_string(net));
        } else {
            json_array_append(arr, body);
        }
        rtr_commit(q, cand, old, 201);
        goto done;
    }
    before = json_array_size(arr);
    for (i = 0; i < json_array_size(arr); i++) {
        v = json_array_get(arr, i);
        if ((!strcmp(key, "networks") && json_is_string(v) &&
             !strcmp(json_string_value(v), q->seg[3])) ||
            (!strcmp(key, "floating_ips") && jstr(v, "external_ip") &&
             !strcmp(jstr(v, "external_ip"), q->seg[3])) ||
            (!strcmp(key, "port_forwards") && q->nseg > 4 && jstr(v, "protocol") &&
             !strcmp(jstr(v, "protocol"), q->seg[3]) &&
             json_integer_value(json_object_get(v, "external_port")) == atoll(q->seg[4]) &&
             strspn(q->seg[4], "0123456789") == strlen(q->seg[4])))
            json_array_remove(arr, i--);
    }
    if (json_array_size(arr) == before) {
        reply_error(q->r, 404, NULL, "router '%s' has no such %s", q->seg[1],
                    !strcmp(key, "networks")        ? "network"
                    : !strcmp(key, "port_forwards") ? "port forward"
                                                    : "floating IP");
        goto done;
    }
    /* Detaching a network takes the forwards and floating IPs into it along (they would
     * point nowhere); rtr_check() says which by refusing them, so drop them first. */
    if (!strcmp(key, "networks")) {
        json_t *again = json_object_get(cand, "port_forwards");
        json_t *keep = json_array(), *keepf = json_array();
        struct rtr_ctx c = {.q = q, .doc = cand, .nets = json_array()};

        json_array_foreach(json_object_get(cand, "networks"), i, v)
        {
            json_t *net = json_is_string(v)
                              ? doc_get_store(q->s, "network", q->scope, json_string_value(v))
                              : NULL;
            if (net)
                json_array_append_new(c.nets, net);
        }
        json_array_foreach(again, i, v)
        {
            uint32_t ip;

            if (!router_addr_parse(jstr(v, "ip"), &ip) && rtr_inside(&c, ip))
                json_array_append(keep, v);
        }
        json_array_foreach(json_object_get(cand, "floating_ips"), i, v)
        {
            uint32_t ip;

            if (!router_addr_parse(jstr(v, "ip"), &ip) && rtr_inside(&c, ip))
                json_array_append(keepf, v);
        }
        json_object_set_new(cand, "port_forwards", keep);
        json_object_set_new(cand, "floating_ips", keepf);
        json_decref(c.nets);
    }
    rtr_commit(q, cand, old, 200);
done:
    json_decref(body);
    json_decref(cand);
    json_decref(old);
}

/* ---- Shared with api_networks.c and the start-up ---- */

int api_router_sync(struct daemon *d, const char *tenant, const char *name, char *err)
{
    char *text;
    json_t *doc;
    int ret = d->store->ops->doc_get(d->store, RTR_KIND, tenant, name, &text);

    if (ret) {
        snprintf(err, NETCMD_ERR_LEN, "router %.63s: the store failed", name);
        return ret;
    }
    doc = json_loads(text, 0, NULL);
    free(text);
    if (!doc) {
        snprintf(err, NETCMD_ERR_LEN, "router %.63s: its stored record is damaged", name);
        return -EIO;
    }
    ret = rtr_sync_doc(d, tenant, doc, err);
    json_decref(doc);
    return ret;
}

/* The first router of tenant's (by name) that match() takes: 1 with its name in router
 * (STORE_NAME_LEN), 0 when none, -EIO when the store fails. */
static int rtr_find(struct store *s, const char *tenant, bool (*match)(const json_t *r, void *arg),
                    void *arg, char *router)
{
    json_t *all = docs_all(s, RTR_KIND, tenant), *r;
    size_t i;
    int found = 0;

    if (!all)
        return -EIO;
    json_array_foreach(all, i, r)
    {
        if (match(r, arg)) {
            snprintf(router, STORE_NAME_LEN, "%s", jstr(r, "name"));
            found = 1;
            break;
        }
    }
    json_decref(all);
    return found;
}

static bool has_network(const json_t *r, void *net)
{
    json_t *v;
    size_t j;

    json_array_foreach(json_object_get(r, "networks"), j, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), net))
            return true;
    }
    return false;
}

int api_router_of_network(struct req *q, const char *net, char *router)
{
    return api_router_of_network_in(q->s, q->scope, net, router);
}

int api_router_of_network_in(struct store *s, const char *tenant, const char *net, char *router)
{
    return rtr_find(s, tenant, has_network, (void *)net, router);
}

struct vm_target {
    const char *vm;
    char *what;
    size_t what_len;
};

/* Whether a forward or floating IP of r names the VM; what says which. */
static bool targets_vm(const json_t *r, void *arg)
{
    struct vm_target *t = arg;
    json_t *v;
    size_t j;

    json_array_foreach(json_object_get(r, "port_forwards"), j, v)
    {
        if (jeq(v, "vm", t->vm)) {
            snprintf(t->what, t->what_len, "port forward %s/%" JSON_INTEGER_FORMAT,
                     jstr(v, "protocol") ? jstr(v, "protocol") : "?",
                     json_integer_value(json_object_get(v, "external_port")));
            return true;
        }
    }
    json_array_foreach(json_object_get(r, "floating_ips"), j, v)
    {
        if (jeq(v, "vm", t->vm)) {
            snprintf(t->what, t->what_len, "floating IP %s",
                     jstr(v, "external_ip") ? jstr(v, "external_ip") : "?");
            return true;
        }
    }
    return false;
}

int api_router_of_vm(struct req *q, const char *vm, char *router, char *what, size_t what_len)
{
    struct vm_target t = {vm, what, what_len};

    return rtr_find(q->s, q->scope, targets_vm, &t, router);
}

static bool rtr_known(void *arg, const char *id)
{
    return json_object_get(arg, id) != NULL;
}

void api_router_recover(struct daemon *d)
{
    json_t *all = docs_all(d->store, RTR_KIND, NULL), *ids = json_object(), *r;
    char err[NETCMD_ERR_LEN];
    struct router_names rn;
    size_t i;

    if (!all || !ids) {
        fprintf(stderr, "tesserad: routers: cannot read them: %s\n", store_error(d->store));
        goto done;
    }
    json_array_foreach(all, i, r)
    {
        const char *tenant = jstr(r, "tenant"), *name = jstr(r, "name");

        if (!tenant || !name)
            continue;
        router_names(d->state_dir, tenant, name, &rn);
        json_object_set_new(ids, rn.id, json_true());
        if (rtr_sync_doc(d, tenant, r, err))
            fprintf(stderr, "tesserad: router %s/%s: %s\n", tenant, name, err);
    }
    if (router_sweep(d->state_dir, rtr_known, ids, err))
        fprintf(stderr, "tesserad: routers: %s\n", err);
done:
    json_decref(ids);
    json_decref(all);
}
