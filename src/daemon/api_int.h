/* Inside the API core: the request being served, replies, names, visibility and roles,
 * shared by api.c (routing, authentication, audit, tenants, users, tokens) and the resource
 * files (api_inventory.c: pools, volumes, templates, quotas, host; api_vms.c: VMs and
 * operations). Not a door for anyone else. */
#ifndef TESSERA_DAEMON_API_INT_H
#define TESSERA_DAEMON_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/store.h"

#define API_SEG_MAX   6    /* path segments after /api/v1/ */
#define API_PATH_MAX  1024 /* longer paths are no route of ours */
#define API_QUOTE_LEN 52   /* quote() buffers */
#define API_MSG_LEN   STORE_TEXT_LEN

/* Ordered: each role can do what the ones before it can. */
enum role { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR, ROLE_TENANT_ADMIN, ROLE_PLATFORM_ADMIN };

extern const char *const role_names[];
enum role role_parse(const char *s);

/* Who is asking: from the token that authenticated the request. */
struct caller {
    char tenant[STORE_NAME_LEN]; /* "" for a platform user */
    char user[STORE_NAME_LEN];
    enum role role;                    /* the token's (the user's or narrower) */
    char token_id[STORE_TOKEN_ID_LEN]; /* the token the request came with */
};

/* One request on its way through. */
struct req {
    struct daemon *d;
    struct store *s;
    const struct api_request *rq;
    struct caller c;
    bool authenticated;
    enum role min_role; /* the route's (api.c's table) */
    const char *seg[API_SEG_MAX];
    size_t nseg;
    const char *body;
    size_t len;
    struct api_response *r;
    /* The tenant whose objects a tenant-scoped route acts on: the caller's, or ?tenant= of
     * a platform administrator ("" = the platform's own). */
    char scope[STORE_NAME_LEN];
    /* The audit record's parts the handler knows best. */
    char audit_tenant[STORE_NAME_LEN];
    char target[2 * STORE_NAME_LEN];
};

const char *quote(const char *s, char *buf);
void reply_error(struct api_response *r, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_json(struct api_response *r, unsigned status, json_t *v);
void reply_empty(struct api_response *r);
void reply_store(struct req *q, const char *what, int ret);
void reply_list(struct req *q, const char *key, json_t *arr, int ret);
int append(json_t *arr, json_t *item);
int check_name(struct req *q, const char *field, const char *name);
bool tenant_visible(const struct req *q, const char *name);
void reply_no_tenant(struct req *q, const char *name);
int need_role(struct req *q, enum role need, const char *what);
/* Writes q's audit record for action now (a route that is no transaction: api_login.c). */
void api_audit(struct req *q, const char *action);
/* A token as the API shows it (never its secret). */
json_t *api_token_json(const struct store_token *t);
/* ---- Password login (api_login.c) ---- */
void api_login(struct req *q);
void api_logout(struct req *q);
void api_password_set(struct req *q);
int path_tenant(struct req *q, const char *name);
/* need_role() with the route's least role. */
int need_route_role(struct req *q, const char *what);

/* ---- Typed bodies (api_body.c) ----
 * body_object() parses the body as one JSON object whose keys are all in `fields` (a
 * NULL-terminated list), or replies 400 (bad JSON, not an object, an unknown field naming
 * the valid ones). The getters check one member: absent is 0 with *present false (and a 400
 * when required), a wrong type or range a 400 naming the field (`prefix` + name, e.g.
 * "cloud_init.hostname"). Strings hold no control characters. */
int body_object(struct req *q, const char *const *fields, const char *sample, json_t **root);
int body_keys(struct req *q, json_t *obj, const char *prefix, const char *const *fields);
int body_str(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
             size_t max, const char **out);
/* body_str() for text of several lines (a script): tabs and line breaks allowed. */
int body_text(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
              size_t max, const char **out);
int body_u64(struct req *q, json_t *obj, const char *prefix, const char *field, bool required,
             uint64_t min, uint64_t max, uint64_t *out, bool *present);
/* A number (integer or real) from min to max; with nullable, null is taken: *is_null. */
int body_num(struct req *q, json_t *obj, const char *prefix, const char *field, double min,
             double max, bool nullable, double *out, bool *present, bool *is_null);
/* Element i of the array arr, which must be a string; the 400 names "field[i]". */
int body_str_at(struct req *q, json_t *arr, const char *field, size_t i, size_t max,
                const char **out);
int body_bool(struct req *q, json_t *obj, const char *prefix, const char *field, bool *out);
int body_name(struct req *q, json_t *obj, const char *field, bool required, const char **out);

/* ---- Documents (api_body.c) ---- */
/* The kind/tenant/name document as JSON (new reference) or NULL with the reply set: 404
 * naming `what` when absent, 500 when the store or its text fails. */
json_t *doc_load(struct req *q, const char *kind, const char *tenant, const char *name,
                 const char *what);
/* Stores obj under the key (create or update); 0 or the reply set. */
int doc_save(struct req *q, const char *kind, const char *tenant, const char *name, json_t *obj,
             enum store_put how);

/* A doc_list() callback that appends each document, parsed, to the JSON array arr. */
int doc_append_each(void *arr, const char *tenant, const char *name, const char *doc);
/* Replies {key: [the kind's documents in the caller's scope]}. */
void doc_list_reply(struct req *q, const char *kind, const char *key);

/* Creates or replaces. */
int doc_upsert(struct req *q, const char *kind, const char *tenant, const char *name, json_t *obj);

/* ---- Usage and admission (api_inventory.c) ---- */
struct api_usage {
    uint64_t vcpus, memory, disk, vms;
};

/* What a tenant's VMs and volumes use (tenant NULL: every tenant's); active: count only VMs
 * whose process runs or is starting (the host's allocation), else every VM (a quota). 0 or
 * the reply set. */
int api_usage(struct req *q, const char *tenant, bool active, struct api_usage *u);
/* The host's capacity after overcommit. */
void api_host_limits(struct req *q, uint64_t *vcpus, uint64_t *memory);
/* Whether adding `add` to the tenant's usage stays within its quota (and, when `start`, the
 * host's capacity): 0, or -EDQUOT with a 409/422 naming the limit, the request and what is
 * left. Called inside the request's transaction, so check and allocation are one. */
int api_admit(struct req *q, const char *tenant, const struct api_usage *add, bool quota,
              bool start);

/* ---- Shares, limits and reservations (api_resources.c) ---- */
struct cgroup_limits;
/* The resources every VM has until told otherwise (new reference). */
json_t *api_res_default(void);
/* Checks the request's resources object `in` and merges it into cur (a VM's whole
 * resources), bounded by the VM's vCPUs and memory. 0 or the 400 set. */
int api_res_merge(struct req *q, json_t *in, json_t *cur, uint64_t cpus, uint64_t memory);
/* 0 when the host has cgroups or `in` (a request's resources) sets no CPU or memory control;
 * otherwise -EOPNOTSUPP with a 409 saying why there are none. */
int api_res_need_cgroups(struct req *q, const json_t *in);
/* Whether res's reservations fit beside those of the other running VMs (the VM tenant/name
 * itself not counted): 0, or -EDQUOT with a 409 naming the resource and what is left. */
int api_res_admit(struct req *q, const char *tenant, const char *name, const json_t *res);
/* Makes the VM's control group (and its tenant's) and writes the VM's limits: before a
 * start and on a change. 0 or -errno with err (CGROUP_ERR_LEN). */
int api_res_vm_apply(struct daemon *d, const char *tenant, const char *name, const json_t *vm,
                     char *err);
/* Writes the VM's disk and NIC rate limits into its config and, when running, into its VMM
 * (PUT /v1/vm/disks/0/limits, /v1/vm/nics/0/limits). 0 or -errno with err (RT_ERR_LEN). */
int api_res_io_apply(struct daemon *d, const char *tenant, const json_t *vm, bool running,
                     char *err);
/* Removes the group of a VM whose process has ended. */
void api_res_vm_release(struct daemon *d, const char *tenant, const char *name);
/* Writes the host's vm_cpuset and vm_memory_bytes into PARENT. */
int api_res_host_apply(struct daemon *d, char *err);
int api_res_cpuset(struct daemon *d, const struct cgroup_limits *l, char *err);
/* What the running VM's control group counted, into the objects cpu (used_ns, throttled_ns,
 * nr_throttled, wait_ns) and mem (cgroup_bytes); members it cannot read are left out. */
void api_res_usage(struct daemon *d, const char *tenant, const char *name, int64_t pid, json_t *cpu,
                   json_t *mem);
/* Recomputes and writes the CPU weights of every tenant and running VM. */
void api_res_rebalance(struct daemon *d);

/* A new volume's document (backing: the volume a linked clone sits on, or NULL). */
json_t *api_volume_new(const char *tenant, const char *name, const char *format, uint64_t size,
                       const char *backing_tenant, const char *backing);
/* 0 when nothing depends on the volume, else -EBUSY with the 409 set. */
int api_volume_busy(struct req *q, const char *tenant, const char *name, json_t *doc);
/* A template the caller's scope sees (its own, then the shared ones): new reference, its
 * tenant in tenant_out (STORE_NAME_LEN); NULL with the 404 set. */
json_t *api_template_find(struct req *q, const char *name, char *tenant_out);

/* Snapshot op ("create", "revert", "delete"; NULL: list) on volume (tenant, name) with
 * document doc; replies. */
void api_snapshot_do(struct req *q, const char *tenant, const char *name, json_t *doc,
                     const char *op, const char *snap);
/* The snapshot name of a create body ({"name"}); 0, or -EINVAL with the 400 set. */
int api_snapshot_name(struct req *q, json_t **body, const char **snap);

/* Publishes obj (not taken over) as an event of `type` about tenant's objects. */
void api_publish(struct daemon *d, const char *tenant, const char *type, json_t *obj);

/* ---- Virtual networks (api_networks.c; docs/networks.md) ---- */
/* The request's `nics` array (NULL: absent, *out NULL) checked, each network in the caller's
 * scope: *out the VM's NIC records [{network, mac, tap, ip}] (new reference), each with a
 * fixed address, the lowest free on its network (409 when none is). 0 or the reply set.
 * Called inside the request's transaction, so two creates never get one address. */
int api_net_nics_parse(struct req *q, json_t *arr, const char *vm, json_t **out);
/* The NIC records of a copy named vm of a VM with NICs nics: the same networks, its own
 * taps, MACs and addresses (*out never NULL on success). 0 or the reply set. */
int api_net_nics_copy(struct req *q, const json_t *nics, const char *vm, json_t **out);
/* Brings network (tenant, name)'s host side to what the store holds (its dnsmasq serving every
 * VM NIC on it); a network that does not exist is 0. Caller holds d->lock. */
int api_net_sync(struct daemon *d, const char *tenant, const char *name, char *err);
/* For each NIC of the VM document vm on a network: what "prepare" (a fresh tap before its
 * VMM starts), "plug" (into the network, after the VMM opened it) or "remove" (its tap).
 * 0 or -errno with err (NETCMD_ERR_LEN); a removal tries every NIC. */
int api_net_vm_nics(struct daemon *d, const char *tenant, const json_t *vm, const char *what,
                    char *err);

/* ---- Security groups (api_secgroups.c; docs/networks.md) ---- */
/* The security_groups list of the request's NIC object nic at `field` ("nics[0]"; absent:
 * *out NULL): at most SECGROUP_NIC_MAX names, each once, each a group of the scope (404
 * otherwise), and a host that can enforce them (409 otherwise). *out a new reference. 0 or
 * the reply set. */
int api_sg_nic_groups(struct req *q, json_t *nic, const char *field, json_t **out);
/* Brings network (tenant, net)'s security-group table to what the store holds: its NICs'
 * groups and the groups' rules. 0 or -errno with err (NETCMD_ERR_LEN; -EOPNOTSUPP: the host
 * cannot filter bridged traffic). Caller holds d->lock, the network is up. */
int api_sg_net_sync(struct daemon *d, const char *tenant, const char *net, char *err);
/* ---- Routers (api_routers.c; docs/networks.md "Routers and NAT") ---- */
/* 1 with router (STORE_NAME_LEN) naming the scope's router that network net is attached to,
 * 0 when none is, -EIO when the store fails. */
int api_router_of_network(struct req *q, const char *net, char *router);
/* The same for any tenant, from the store s (for callers without a request). */
int api_router_of_network_in(struct store *s, const char *tenant, const char *net, char *router);
/* 1 with router (STORE_NAME_LEN) and what (e.g. "port forward tcp/8080") naming a forward or
 * floating IP of the scope's routers that targets VM vm by name, 0 when none does, -EIO when
 * the store fails. */
int api_router_of_vm(struct req *q, const char *vm, char *router, char *what, size_t what_len);
/* Brings router (tenant, name) back to what the store says (its namespace, legs, external
 * leg and rules), as a change or a restart does. 0 or -errno with err (NETCMD_ERR_LEN).
 * Caller holds d->lock. */
int api_router_sync(struct daemon *d, const char *tenant, const char *name, char *err);

/* ---- Resource handlers ---- */
void api_front_only(struct req *q);
void api_pools_list(struct req *q);
void api_volumes_list(struct req *q);
void api_volumes_create(struct req *q);
void api_volume_get(struct req *q);
void api_volume_delete(struct req *q);
void api_volume_resize(struct req *q);
void api_volume_clone(struct req *q);
void api_templates_list(struct req *q);
void api_templates_create(struct req *q);
void api_template_get(struct req *q);
void api_template_delete(struct req *q);
void api_volume_snapshots(struct req *q);
void api_vm_snapshots(struct req *q);
void api_vm_clone(struct req *q);
void api_quota_get(struct req *q);
void api_quota_set(struct req *q);
void api_host_get(struct req *q);
void api_host_set(struct req *q);
void api_roles_list(struct req *q);
void api_vms_list(struct req *q);
void api_vms_create(struct req *q);
void api_vm_get(struct req *q);
void api_vm_delete(struct req *q);
void api_vm_action(struct req *q);
void api_vm_log(struct req *q);
void api_vm_stats(struct req *q);
/* api_history.c: the metric history (history.h). */
void api_vm_stats_history(struct req *q);
void api_host_stats_history(struct req *q);
void api_vm_resources_set(struct req *q);
void api_tenant_resources(struct req *q);
void api_operations_list(struct req *q);
void api_secgroups_list(struct req *q);
void api_secgroups_create(struct req *q);
void api_secgroup_get(struct req *q);
void api_secgroup_update(struct req *q);
void api_secgroup_delete(struct req *q);
void api_secgroup_rule_add(struct req *q);
void api_secgroup_rule_delete(struct req *q);
void api_vm_nic_secgroups(struct req *q);
void api_networks_list(struct req *q);
void api_networks_create(struct req *q);
void api_network_get(struct req *q);
void api_network_delete(struct req *q);
void api_network_check(struct req *q);
void api_network_repair(struct req *q);
void api_ext_networks_list(struct req *q);
void api_ext_networks_create(struct req *q);
void api_ext_network_get(struct req *q);
void api_ext_network_delete(struct req *q);
void api_routers_list(struct req *q);
void api_routers_create(struct req *q);
void api_router_get(struct req *q);
void api_router_put(struct req *q);
void api_router_delete(struct req *q);
void api_router_sub(struct req *q);
void api_network_vxlan_set(struct req *q);
void api_operation_get(struct req *q);
void api_operation_wait(struct req *q);

#endif
