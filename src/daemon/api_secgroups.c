/* Security groups (docs/networks.md, "Security groups"): the tenant-scoped "secgroup"
 * documents {name, tenant, description, rules: [{id, direction, protocol, ports, peer}],
 * created}, the groups named by VM NICs, and bringing a network's nftables table to what the
 * store says (src/daemon/net/secgroup.h does the host side). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/net/secgroup.h"
#include "daemon/net/vnet.h"

/* A tenant may hold this many groups. */
#define SG_TENANT_MAX 64

/* ---- The host side ---- */

/* The documents of one kind of a tenant, parsed (a walk collects; the work follows it, since
 * a store walk must not run another store call from its callback). */
static int sg_collect(struct daemon *d, const char *kind, const char *tenant, json_t **out,
                      char *err)
{
    json_t *arr = json_array();
    int ret = arr ? d->store->ops->doc_list(d->store, kind, tenant, doc_append_each, arr) : -ENOMEM;

    if (ret) {
        snprintf(err, NETCMD_ERR_LEN, "security groups: the store failed: %.400s",
                 store_error(d->store));
        json_decref(arr);
        arr = NULL;
    }
    *out = arr;
    return ret;
}

/* A group document's rules, parsed again (stored rules are canonical; a damaged one is an
 * error rather than a rule silently lost). */
static int sg_doc_rules(const json_t *doc, struct secgroup_rule *rules, size_t *n, char *err)
{
    json_t *r;
    size_t i;

    *n = 0;
    json_array_foreach(json_object_get(doc, "rules"), i, r)
    {
        if (i >= SECGROUP_RULES_MAX ||
            secgroup_rule_parse(json_string_value(json_object_get(r, "direction")),
                                json_string_value(json_object_get(r, "protocol")),
                                json_string_value(json_object_get(r, "ports")),
                                json_string_value(json_object_get(r, "peer")), &rules[i], err)) {
            snprintf(err, NETCMD_ERR_LEN, "security group %.63s: its stored rule %zu is damaged",
                     json_string_value(json_object_get(doc, "name")), i);
            return -EIO;
        }
        (*n)++;
    }
    return 0;
}

int api_sg_net_sync(struct daemon *d, const char *tenant, const char *net, char *err)
{
    struct secgroup_group *groups = NULL;
    struct secgroup_rule *rules = NULL;
    struct secgroup_nic *nics = NULL;
    json_t *gdocs = NULL, *vms = NULL, *g, *vm, *nic, *name;
    size_t i, j, k, ng = 0, nn = 0;
    struct vnet_names nm;
    int ret;

    ret = sg_collect(d, "secgroup", tenant, &gdocs, err);
    if (!ret)
        ret = sg_collect(d, "vm", tenant, &vms, err);
    if (ret)
        goto free_docs;
    groups = calloc(json_array_size(gdocs) + 1, sizeof(*groups));
    rules = calloc((json_array_size(gdocs) + 1) * SECGROUP_RULES_MAX, sizeof(*rules));
    nics = calloc(json_array_size(vms) * VNET_NICS_MAX + 1, sizeof(*nics));
    if (!groups || !rules || !nics) {
        snprintf(err, NETCMD_ERR_LEN, "security groups: out of memory");
        ret = -ENOMEM;
        goto free_arrays;
    }
    json_array_foreach(gdocs, i, g)
    {
        groups[ng] = (struct secgroup_group){json_string_value(json_object_get(g, "name")),
                                             rules + ng * SECGROUP_RULES_MAX, 0};
        if (!groups[ng].name)
            continue;
        ret = sg_doc_rules(g, rules + ng * SECGROUP_RULES_MAX, &groups[ng].nrules, err);
        if (ret)
            goto free_arrays;
        ng++;
    }
    json_array_foreach(vms, i, vm)
    {
        json_array_foreach(json_object_get(vm, "nics"), j, nic)
        {
            const char *n = json_string_value(json_object_get(nic, "network"));

            if (!n || strcmp(n, net) || j >= VNET_NICS_MAX)
                continue;
            nics[nn] = (struct secgroup_nic){.tap = json_string_value(json_object_get(nic, "tap")),
                                             .ip = json_string_value(json_object_get(nic, "ip"))};
            json_array_foreach(json_object_get(nic, "security_groups"), k, name)
            {
                if (k < SECGROUP_NIC_MAX && json_string_value(name))
                    nics[nn].groups[nics[nn].ngroups++] = json_string_value(name);
            }
            nn++;
        }
    }
    vnet_names(d->state_dir, tenant, net, &nm);
    ret = secgroup_apply(nm.ns, nm.dir, groups, ng, nics, nn, err);
free_arrays:
    free(nics);
    free(rules);
    free(groups);
free_docs:
    json_decref(vms);
    json_decref(gdocs);
    return ret;
}

/* Every network of the tenant: after a group's rules changed (its members may be anywhere). */
static int sg_tenant_sync(struct daemon *d, const char *tenant, char *err)
{
    json_t *nets, *net;
    size_t i;
    int ret = sg_collect(d, "network", tenant, &nets, err);

    json_array_foreach(nets, i, net)
    {
        const char *name = json_string_value(json_object_get(net, "name"));

        if (!ret && name)
            ret = api_sg_net_sync(d, tenant, name, err);
    }
    json_decref(nets);
    return ret;
}

/* The reply for a failed host sync: 409 when the host cannot filter bridged traffic. */
static void sg_reply_sync(struct req *q, int ret, const char *err)
{
    reply_error(q->r, ret == -EOPNOTSUPP ? 409 : 500, NULL, "%s", err);
}

/* ---- Parsing ---- */

/* One rule object of a request at `field` ("rules[2]", "rule"), as its stored document with
 * id. The peer group must be `self` (the group being written) or one of the scope's. */
static int sg_rule_parse(struct req *q, json_t *obj, const char *field, const char *self,
                         json_int_t id, json_t **out)
{
    static const char *const keys[] = {"direction", "protocol", "ports", "peer", NULL};
    char err[NETCMD_ERR_LEN], ports[SECGROUP_PORTS_LEN], peer[SECGROUP_PEER_LEN], f[96], *text;
    const char *dir, *proto, *port_text = NULL, *peer_text = NULL, *dot = *field ? "." : "";
    struct secgroup_rule r;
    int ret;

    *out = NULL;
    if (!json_is_object(obj)) {
        reply_error(q->r, 400, *field ? field : NULL,
                    "%s: expected an object {\"direction\", \"protocol\", \"ports\", \"peer\"}",
                    *field ? field : "rule");
        return -EINVAL;
    }
    if (body_keys(q, obj, field, keys) || body_str(q, obj, field, "direction", true, 16, &dir) ||
        body_str(q, obj, field, "protocol", false, 16, &proto) ||
        body_str(q, obj, field, "ports", false, 16, &port_text) ||
        body_str(q, obj, field, "peer", false, SECGROUP_PEER_LEN - 1, &peer_text))
        return -EINVAL;
    if (!json_object_get(obj, "protocol"))
        proto = "any";
    if (secgroup_rule_parse(dir, proto, port_text, peer_text, &r, err)) {
        snprintf(f, sizeof(f), "%s%s%.*s", field, dot, (int)strcspn(err, ":"), err);
        reply_error(q->r, 400, f, "%s%s%s", field, dot, err);
        return -EINVAL;
    }
    if (r.peer_group[0] && strcmp(r.peer_group, self)) {
        ret = q->s->ops->doc_get(q->s, "secgroup", q->scope, r.peer_group, &text);
        if (ret == -ENOENT) {
            snprintf(f, sizeof(f), "%s%speer", field, dot);
            reply_error(q->r, 404, f, "%s: security group '%s' not found", f, r.peer_group);
            return -ENOENT;
        }
        if (ret) {
            reply_store(q, "security group", ret);
            return ret;
        }
        free(text);
    }
    secgroup_rule_text(&r, ports, peer);
    *out = json_pack("{s:I,s:s,s:s,s:s}", "id", id, "direction", secgroup_dir_name(r.dir),
                     "protocol", secgroup_proto_name(r.proto), "peer", peer);
    if (*out && ports[0])
        json_object_set_new(*out, "ports", json_string(ports));
    if (!*out) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* A request's whole rule list (absent: empty), ids from 1. */
static int sg_rules_parse(struct req *q, json_t *arr, const char *self, json_t **out)
{
    char field[32];
    json_t *res = json_array(), *r, *rule;
    size_t i;

    *out = NULL;
    if (!res) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    if (arr && (!json_is_array(arr) || json_array_size(arr) > SECGROUP_RULES_MAX)) {
        reply_error(q->r, 400, "rules", "field 'rules' must be a list of at most %d rules",
                    SECGROUP_RULES_MAX);
        goto fail;
    }
    json_array_foreach(arr, i, r)
    {
        snprintf(field, sizeof(field), "rules[%zu]", i);
        if (sg_rule_parse(q, r, field, self, (json_int_t)i + 1, &rule) || append(res, rule))
            goto fail;
    }
    *out = res;
    return 0;
fail:
    json_decref(res);
    return -EINVAL;
}

int api_sg_nic_groups(struct req *q, json_t *nic, const char *field, json_t **out)
{
    json_t *arr = json_object_get(nic, "security_groups"), *res;
    char f[64], err[NETCMD_ERR_LEN], *text;
    const char *name;
    size_t i, j;
    int ret;

    *out = NULL;
    if (!arr)
        return 0;
    snprintf(f, sizeof(f), "%s%ssecurity_groups", field, *field ? "." : "");
    if (!json_is_array(arr) || json_array_size(arr) > SECGROUP_NIC_MAX) {
        reply_error(q->r, 400, f, "field '%s' must be a list of at most %d group names", f,
                    SECGROUP_NIC_MAX);
        return -EINVAL;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        if (body_str_at(q, arr, f, i, STORE_NAME_LEN - 1, &name) || check_name(q, f, name))
            return -EINVAL;
        for (j = 0; j < i; j++)
            if (!strcmp(name, json_string_value(json_array_get(arr, j)))) {
                reply_error(q->r, 400, f, "%s: group '%s' is named twice", f, name);
                return -EINVAL;
            }
        ret = q->s->ops->doc_get(q->s, "secgroup", q->scope, name, &text);
        if (ret == -ENOENT) {
            reply_error(q->r, 404, f, "%s: security group '%s' not found", f, name);
            return -ENOENT;
        }
        if (ret) {
            reply_store(q, "security group", ret);
            return ret;
        }
        free(text);
    }
    /* Groups are enforced with br_netfilter: refuse them where the host has none. */
    if (json_array_size(arr) && secgroup_host_check(NULL, err)) {
        reply_error(q->r, 409, f, "%s", err);
        return -EOPNOTSUPP;
    }
    res = json_deep_copy(arr);
    if (!res) {
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    *out = res;
    return 0;
}

/* ---- Routes ---- */

void api_secgroups_list(struct req *q)
{
    doc_list_reply(q, "secgroup", "security_groups");
}

void api_secgroup_get(struct req *q)
{
    json_t *g = doc_load(q, "secgroup", q->scope, q->seg[1], "security group");

    if (g)
        reply_json(q->r, 200, g);
}

static int each_count(void *arg, const char *tenant, const char *name, const char *doc)
{
    (*(size_t *)arg)++;
    return 0;
}

void api_secgroups_create(struct req *q)
{
    static const char *const fields[] = {"name", "description", "rules", NULL};
    const char *name, *desc = "";
    json_t *body, *rules = NULL, *g = NULL;
    size_t count = 0;
    int ret;

    if (need_route_role(q, "creating a security group") ||
        body_object(q, fields,
                    "{\"name\": \"web\", \"rules\": [{\"direction\": \"ingress\", \"protocol\": "
                    "\"tcp\", \"ports\": \"80\"}]}",
                    &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (body_str(q, body, NULL, "description", false, 255, &desc) ||
        sg_rules_parse(q, json_object_get(body, "rules"), name, &rules))
        goto done;
    ret = q->s->ops->doc_list(q->s, "secgroup", q->scope, each_count, &count);
    if (ret) {
        reply_store(q, "security group", ret);
        goto done;
    }
    if (count >= SG_TENANT_MAX) {
        reply_error(q->r, 409, "name",
                    "the tenant has %zu security groups already, the most a "
                    "tenant may have; delete one first",
                    count);
        goto done;
    }
    g = json_pack("{s:s,s:s,s:s,s:O,s:I}", "name", name, "tenant", q->scope, "description",
                  desc ? desc : "", "rules", rules, "created", (json_int_t)time(NULL));
    if (!g) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    /* No host work: no NIC and no other group's rule can name a group before it exists. */
    if (doc_save(q, "secgroup", q->scope, name, g, STORE_PUT_CREATE))
        goto done;
    reply_json(q->r, 201, json_incref(g));
done:
    json_decref(g);
    json_decref(rules);
    json_decref(body);
}

/* Stores the group and brings every network of the tenant to it (its members may be on any);
 * replies `status` with `reply` (not taken over), or 204 when it is NULL. */
static void sg_save_sync(struct req *q, json_t *g, unsigned status, json_t *reply)
{
    char err[NETCMD_ERR_LEN];
    int ret;

    if (doc_save(q, "secgroup", q->scope, q->seg[1], g, STORE_PUT_UPDATE))
        return;
    ret = sg_tenant_sync(q->d, q->scope, err);
    if (ret)
        sg_reply_sync(q, ret, err);
    else if (reply)
        reply_json(q->r, status, json_incref(reply));
    else
        reply_empty(q->r);
}

void api_secgroup_update(struct req *q)
{
    static const char *const fields[] = {"description", "rules", NULL};
    json_t *g, *body = NULL, *rules = NULL;
    const char *desc;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    g = doc_load(q, "secgroup", q->scope, q->seg[1], "security group");
    if (!g || need_route_role(q, "changing a security group") ||
        body_object(q, fields,
                    "{\"rules\": [{\"direction\": \"ingress\", \"protocol\": \"tcp\", "
                    "\"ports\": \"22\"}]}",
                    &body))
        goto done;
    if (body_str(q, body, NULL, "description", false, 255, &desc))
        goto done;
    if (json_object_get(body, "description"))
        json_object_set_new(g, "description", json_string(desc));
    if (json_object_get(body, "rules")) {
        if (sg_rules_parse(q, json_object_get(body, "rules"), q->seg[1], &rules))
            goto done;
        json_object_set(g, "rules", rules);
    }
    sg_save_sync(q, g, 200, g);
done:
    json_decref(rules);
    json_decref(body);
    json_decref(g);
}

void api_secgroup_rule_add(struct req *q)
{
    static const char *const fields[] = {"direction", "protocol", "ports", "peer", NULL};
    json_t *g, *body = NULL, *rule = NULL, *r, *rules;
    json_int_t id = 0;
    size_t i;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    g = doc_load(q, "secgroup", q->scope, q->seg[1], "security group");
    if (!g || need_route_role(q, "changing a security group") ||
        body_object(q, fields,
                    "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"ports\": "
                    "\"22\"}",
                    &body))
        goto done;
    rules = json_object_get(g, "rules");
    if (!json_is_array(rules) || json_array_size(rules) >= SECGROUP_RULES_MAX) {
        reply_error(q->r, 409, NULL, "security group '%s' has %d rules, the most it may have",
                    q->seg[1], SECGROUP_RULES_MAX);
        goto done;
    }
    /* The next id: above every id in the list. */
    json_array_foreach(rules, i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) > id)
            id = json_integer_value(json_object_get(r, "id"));
    }
    if (sg_rule_parse(q, body, "", q->seg[1], id + 1, &rule))
        goto done;
    if (json_array_append(rules, rule)) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    sg_save_sync(q, g, 201, rule);
done:
    json_decref(rule);
    json_decref(body);
    json_decref(g);
}

void api_secgroup_rule_delete(struct req *q)
{
    const char *idtext = q->seg[3];
    json_t *g, *rules, *r;
    size_t i, n = strlen(idtext);
    json_int_t id;

    snprintf(q->target, sizeof(q->target), "%s/%.20s", q->seg[1], idtext);
    g = doc_load(q, "secgroup", q->scope, q->seg[1], "security group");
    if (!g || need_route_role(q, "changing a security group"))
        goto done;
    if (n == 0 || n > 9 || strspn(idtext, "0123456789") != n || idtext[0] == '0') {
        reply_error(q->r, 404, "id", "security group '%s' has no rule '%.20s'", q->seg[1], idtext);
        goto done;
    }
    id = (json_int_t)atol(idtext);
    rules = json_object_get(g, "rules");
    json_array_foreach(rules, i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) == id)
            break;
    }
    if (i >= json_array_size(rules)) {
        reply_error(q->r, 404, "id", "security group '%s' has no rule %lld", q->seg[1],
                    (long long)id);
        goto done;
    }
    json_array_remove(rules, i);
    sg_save_sync(q, g, 204, NULL);
done:
    json_decref(g);
}

/* Who still names the group: a VM NIC (vm) or another group's rule (group). */
struct sg_user_walk {
    const char *group;
    char vm[STORE_NAME_LEN], other[STORE_NAME_LEN];
};

static int each_sg_vm(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct sg_user_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *nic, *g;
    size_t i, j;
    int found = 0;

    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        json_array_foreach(json_object_get(nic, "security_groups"), j, g)
        {
            if (json_string_value(g) && !strcmp(json_string_value(g), w->group))
                found = 1;
        }
    }
    if (found)
        snprintf(w->vm, sizeof(w->vm), "%s", name);
    json_decref(vm);
    return found;
}

static int each_sg_peer(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct sg_user_walk *w = arg;
    json_t *g = json_loads(doc, 0, NULL), *r;
    size_t i;
    int found = 0;
    const char *peer;

    if (!strcmp(name, w->group)) {
        json_decref(g);
        return 0;
    }
    json_array_foreach(json_object_get(g, "rules"), i, r)
    {
        peer = json_string_value(json_object_get(r, "peer"));
        if (peer && !strncmp(peer, "group:", 6) && !strcmp(peer + 6, w->group))
            found = 1;
    }
    if (found)
        snprintf(w->other, sizeof(w->other), "%s", name);
    json_decref(g);
    return found;
}

void api_secgroup_delete(struct req *q)
{
    struct sg_user_walk w = {.group = q->seg[1]};
    json_t *g;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    g = doc_load(q, "secgroup", q->scope, q->seg[1], "security group");
    if (!g || need_route_role(q, "deleting a security group"))
        goto done;
    ret = q->s->ops->doc_list(q->s, "vm", q->scope, each_sg_vm, &w);
    if (ret > 0) {
        reply_error(q->r, 409, NULL,
                    "security group '%s' is used by VM '%s'; take it off the VM's NICs first",
                    q->seg[1], w.vm);
        goto done;
    }
    if (!ret)
        ret = q->s->ops->doc_list(q->s, "secgroup", q->scope, each_sg_peer, &w);
    if (ret > 0) {
        reply_error(q->r, 409, NULL,
                    "security group '%s' is the peer of a rule of group '%s'; delete that rule "
                    "first",
                    q->seg[1], w.other);
        goto done;
    }
    /* No host work: a group no NIC and no rule names is in no table. */
    if (ret || q->s->ops->doc_delete(q->s, "secgroup", q->scope, q->seg[1])) {
        reply_store(q, "security group delete", ret ? ret : -EIO);
        goto done;
    }
    reply_empty(q->r);
done:
    json_decref(g);
}

void api_vm_nic_secgroups(struct req *q)
{
    static const char *const fields[] = {"security_groups", NULL};
    const char *idx = q->seg[3], *net;
    json_t *vm, *body = NULL, *nic, *groups = NULL;
    char err[NETCMD_ERR_LEN];
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");
    if (!vm || need_route_role(q, "changing a VM's security groups") ||
        body_object(q, fields, "{\"security_groups\": [\"web\"]}", &body))
        goto done;
    nic = strlen(idx) == 1 && idx[0] >= '0' && idx[0] <= '9'
              ? json_array_get(json_object_get(vm, "nics"), (size_t)(idx[0] - '0'))
              : NULL;
    net = json_string_value(json_object_get(nic, "network"));
    if (!nic || !net) {
        reply_error(q->r, 404, "nic", "VM '%s' has no NIC '%.20s' on a network", q->seg[1], idx);
        goto done;
    }
    if (!json_object_get(body, "security_groups")) {
        reply_error(q->r, 400, "security_groups",
                    "field 'security_groups' is required: a list of group names ([] for none)");
        goto done;
    }
    if (!json_string_value(json_object_get(nic, "ip"))) {
        reply_error(q->r, 409, "nic",
                    "VM '%s' NIC %s has no fixed address (made by an older tesserad): groups "
                    "key on it; recreate the VM",
                    q->seg[1], idx);
        goto done;
    }
    if (api_sg_nic_groups(q, body, "", &groups))
        goto done;
    if (json_array_size(groups))
        json_object_set(nic, "security_groups", groups);
    else
        json_object_del(nic, "security_groups");
    if (doc_save(q, "vm", q->scope, q->seg[1], vm, STORE_PUT_UPDATE))
        goto done;
    ret = api_sg_net_sync(q->d, q->scope, net, err);
    if (ret) {
        sg_reply_sync(q, ret, err);
        goto done;
    }
    api_publish(q->d, q->scope, "vm.state", vm);
    reply_json(q->r, 200, json_incref(vm));
done:
    json_decref(groups);
    json_decref(body);
    json_decref(vm);
}
