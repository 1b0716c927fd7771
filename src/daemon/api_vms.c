/* VMs and operations (api_int.h; docs/daemon.md).
 *
 * A VM is a document (kind "vm") plus its disk, a volume named "vm-NAME" (a linked clone of
 * its template's volume by default), plus a run directory and a process that rt.c manages.
 * `state` is what the VM does (stopped, starting, running, paused, stopping, error);
 * `desired` what its users last asked for (running or stopped), which the restart policy
 * reads when the process exits. Admission (quota and host capacity) and the allocation it
 * admits are one transaction: the request's (api.c), under the daemon's lock. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/ops.h"
#include "daemon/rt.h"

#define VM_NAME_MAX     59 /* "vm-" + name is its disk volume's name, within 63 */
#define VM_FORWARDS_MAX 16
#define USER_DATA_MAX   (48u << 10)
#define SSH_KEYS_MAX    16
#define RESTART_WINDOW  60 /* seconds: more than RESTART_MAX restarts in it is a crash loop */
#define RESTART_MAX     5

static void vm_volume_name(const char *vm, char *out)
{
    snprintf(out, STORE_NAME_LEN, "vm-%.59s", vm);
}

/* ---- Listing and reading ---- */

void api_vms_list(struct req *q)
{
    doc_list_reply(q, "vm", "vms");
}

void api_vm_get(struct req *q)
{
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");

    if (vm)
        reply_json(q->r, 200, vm);
}

#define CONSOLE_LOG_MAX (64u << 10)

/* GET /vms/{name}/log: the tail of the serial console's output, which the VM's process keeps
 * in its run directory whoever is attached. */
void api_vm_log(struct req *q)
{
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");
    char *text;
    int ret;

    if (!vm)
        return;
    json_decref(vm);
    ret = rt_vm_console_log(q->d, q->scope, q->seg[1], CONSOLE_LOG_MAX, &text);
    if (ret) {
        reply_error(q->r, 500, NULL, "VM '%s': its console log: %s", q->seg[1], strerror(-ret));
        return;
    }
    reply_json(q->r, 200, json_pack("{s:s}", "log", text ? text : ""));
    free(text);
}

/* ---- Starting: one operation per start, admitted before it is created ---- */

struct vm_job {
    char tenant[STORE_NAME_LEN];
    char name[STORE_NAME_LEN];
    char action[16];
};

static json_t *vm_doc_locked(struct daemon *d, const char *tenant, const char *name)
{
    char *text;
    json_t *vm;

    if (d->store->ops->doc_get(d->store, "vm", tenant, name, &text))
        return NULL;
    vm = json_loads(text, 0, NULL);
    free(text);
    return vm;
}

static void vm_save_locked(struct daemon *d, const char *tenant, const char *name, json_t *vm)
{
    char *text = json_dumps(vm, JSON_COMPACT | JSON_SORT_KEYS);

    if (!text || d->store->ops->doc_put(d->store, "vm", tenant, name, text, STORE_PUT_UPDATE))
        fprintf(stderr, "tesserad: VM %s/%s: cannot record its state: %s\n", tenant, name,
                text ? store_error(d->store) : "out of memory");
    else
        api_publish(d, tenant, "vm.state", vm);
    free(text);
}

static void vm_set_state(json_t *vm, const char *state)
{
    json_object_set_new(vm, "state", json_string(state));
}

/* Every network the VM has a NIC on, brought to what the store holds (its dnsmasq's hosts). */
static int vm_nets_sync(struct daemon *d, const char *tenant, const json_t *vm, char *err)
{
    json_t *nic;
    size_t i;
    int ret = 0;

    json_array_foreach(json_object_get(vm, "nics"), i, nic)
    {
        const char *net = json_string_value(json_object_get(nic, "network"));
        int r = net ? api_net_sync(d, tenant, net, err) : 0;

        if (r && !ret)
            ret = r;
    }
    return ret;
}

static void vm_start_work(struct daemon *d, struct op *op, void *arg)
{
    struct vm_job *j = arg;
    char err[RT_ERR_LEN] = "";
    int64_t pid = 0;
    json_t *vm;
    int ret;

    /* Its control group first, limits written, so the VMM runs limited from its first
     * instruction (the shim puts it there before it executes). */
    pthread_mutex_lock(&d->lock);
    vm = vm_doc_locked(d, j->tenant, j->name);
    ret = vm ? api_res_vm_apply(d, j->tenant, j->name, vm, err) : -ENOENT;
    /* Its networks as the store has them (repaired if something removed a part), then fresh
     * taps in the host's namespace, for its VMM to open by name. */
    if (!ret)
        ret = vm_nets_sync(d, j->tenant, vm, err);
    if (!ret)
        ret = api_net_vm_nics(d, j->tenant, vm, "prepare", err);
    /* Its weight too (it counts as starting): a new group's default weight is tiny beside
     * the computed ones, and a VMM starved while it starts would miss its start's deadline. */
    if (!ret)
        api_res_rebalance(d);
    json_decref(vm);
    pthread_mutex_unlock(&d->lock);
    if (!ret)
        ret = rt_vm_start(d, j->tenant, j->name, &pid, err);
    pthread_mutex_lock(&d->lock);
    if (!ret)
        api_res_rebalance(d);
    vm = vm_doc_locked(d, j->tenant, j->name);
    /* A start that failed leaves no tap behind in the host's namespace. */
    if (ret && vm) {
        char err2[RT_ERR_LEN];

        api_net_vm_nics(d, j->tenant, vm, "remove", err2);
    }
    /* Its VMM holds its taps open: into their networks' namespaces, onto the bridges. A VM
     * that cannot be plugged is stopped rather than left running unreachable. */
    if (!ret && vm && api_net_vm_nics(d, j->tenant, vm, "plug", err)) {
        char err2[RT_ERR_LEN];

        ret = -EIO;
        pthread_mutex_unlock(&d->lock);
        rt_vm_action(d, j->tenant, j->name, "stop", err2);
        pthread_mutex_lock(&d->lock);
    }
    if (vm) {
        if (ret) {
            vm_set_state(vm, "error");
            json_object_set_new(vm, "error", json_string(err));
        } else {
            vm_set_state(vm, "running");
            json_object_set_new(vm, "pid", json_integer(pid));
            json_object_set_new(vm, "started", json_integer(time(NULL)));
            json_object_set_new(vm, "exit_status", json_null());
            json_object_set_new(vm, "error", json_null());
        }
        vm_save_locked(d, j->tenant, j->name, vm);
        json_decref(vm);
    }
    pthread_mutex_unlock(&d->lock);
    ops_done(d, op, ret ? err : NULL);
}

static void vm_action_work(struct daemon *d, struct op *op, void *arg)
{
    struct vm_job *j = arg;
    char err[RT_ERR_LEN] = "";
    json_t *vm;
    int ret;

    ret = rt_vm_action(d, j->tenant, j->name, j->action, err);
    pthread_mutex_lock(&d->lock);
    vm = vm_doc_locked(d, j->tenant, j->name);
    if (vm) {
        const char *state = json_string_value(json_object_get(vm, "state"));

        if (ret) {
            json_object_set_new(vm, "error", json_string(err));
        } else if (!strcmp(j->action, "pause")) {
            vm_set_state(vm, "paused");
        } else if (!strcmp(j->action, "resume")) {
            vm_set_state(vm, "running");
        } else if ((!strcmp(j->action, "stop") || !strcmp(j->action, "shutdown")) && state &&
                   strcmp(state, "stopped")) {
            /* The supervisor records the exit status when it sees the process go; the state
             * is the user's answer now. */
            vm_set_state(vm, "stopped");
            json_object_set_new(vm, "pid", json_null());
        }
        vm_save_locked(d, j->tenant, j->name, vm);
        json_decref(vm);
    }
    pthread_mutex_unlock(&d->lock);
    ops_done(d, op, ret ? err : NULL);
}

/* Starts the operation for action on the VM; replies 202 + Location with body (taken over,
 * or the operation itself when NULL). */
static int vm_op(struct req *q, const char *tenant, const char *name, const char *action,
                 json_t *body)
{
    struct vm_job *j = calloc(1, sizeof(*j));
    char id[OPS_ID_LEN], opname[32];
    json_t *op;
    int ret;

    if (!j) {
        json_decref(body);
        reply_error(q->r, 500, NULL, "out of memory");
        return -ENOMEM;
    }
    snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->action, sizeof(j->action), "%s", action);
    snprintf(opname, sizeof(opname), "vm.%s", action);
    ret = ops_create(q->d, tenant, opname, name,
                     strcmp(action, "start") ? vm_action_work : vm_start_work, j, id);
    if (ret) {
        json_decref(body);
        reply_error(q->r, 503, NULL, "cannot start an operation: %s", strerror(-ret));
        return ret;
    }
    op = ops_get_json(q->d, id, NULL);
    if (body)
        json_object_set_new(body, "operation", op);
    else
        body = op;
    reply_json(q->r, 202, body);
    snprintf(q->r->location, sizeof(q->r->location), "/api/v1/operations/%s", id);
    return 0;
}

/* Admits a start of vm (host capacity) and marks it starting. 0 or the reply set. */
static int vm_admit_start(struct req *q, const char *tenant, const char *name, json_t *vm)
{
    struct api_usage add = {.vcpus = (uint64_t)json_integer_value(json_object_get(vm, "cpus")),
                            .memory =
                                (uint64_t)json_integer_value(json_object_get(vm, "memory_bytes")),
                            .vms = 1};

    json_t *res = json_object_get(vm, "resources");
    int ret;

    if (api_admit(q, tenant, &add, false, true))
        return -EDQUOT;
    res = json_is_object(res) ? json_incref(res) : api_res_default();
    ret = api_res_admit(q, tenant, name, res);
    json_decref(res);
    if (ret)
        return ret;
    vm_set_state(vm, "starting");
    json_object_set_new(vm, "desired", json_string("running"));
    return doc_save(q, "vm", tenant, name, vm, STORE_PUT_UPDATE);
}

/* ---- Creating ---- */

static int parse_forwards(struct req *q, json_t *body, json_t **out)
{
    static const char *const fields[] = {"proto", "host_addr", "host_port", "guest_port", NULL};
    json_t *arr = json_object_get(body, "port_forwards"), *f, *res;
    const char *proto, *addr;
    uint64_t hp, gp;
    char prefix[40];
    size_t i;

    *out = json_array();
    if (!arr)
        return *out ? 0 : -ENOMEM;
    if (!json_is_array(arr) || json_array_size(arr) > VM_FORWARDS_MAX) {
        reply_error(q->r, 400, "port_forwards",
                    "field 'port_forwards' must be a list of at most %d "
                    "objects",
                    VM_FORWARDS_MAX);
        return -EINVAL;
    }
    json_array_foreach(arr, i, f)
    {
        snprintf(prefix, sizeof(prefix), "port_forwards[%zu]", i);
        if (!json_is_object(f)) {
            reply_error(q->r, 400, prefix,
                        "%s must be an object such as {\"proto\": \"tcp\", "
                        "\"host_port\": 8022, \"guest_port\": 22}",
                        prefix);
            return -EINVAL;
        }
        if (body_keys(q, f, prefix, fields) || body_str(q, f, prefix, "proto", false, 3, &proto) ||
            body_str(q, f, prefix, "host_addr", false, 15, &addr) ||
            body_u64(q, f, prefix, "host_port", true, 1024, 65535, &hp, NULL) ||
            body_u64(q, f, prefix, "guest_port", true, 1, 65535, &gp, NULL))
            return -EINVAL;
        if (proto && strcmp(proto, "tcp") && strcmp(proto, "udp")) {
            reply_error(q->r, 400, prefix, "%s.proto: expected tcp or udp", prefix);
            return -EINVAL;
        }
        if (addr && strcmp(addr, "127.0.0.1") && strcmp(addr, "0.0.0.0")) {
            reply_error(q->r, 400, prefix,
                        "%s.host_addr: expected 127.0.0.1 (the default) or 0.0.0.0", prefix);
            return -EINVAL;
        }
        res = json_pack("{s:s,s:s,s:I,s:I}", "proto", proto ? proto : "tcp", "host_addr",
                        addr ? addr : "127.0.0.1", "host_port", (json_int_t)hp, "guest_port",
                        (json_int_t)gp);
        if (append(*out, res))
            return -ENOMEM;
    }
    return 0;
}

struct port_walk {
    json_t *mine;
    char who[2 * STORE_NAME_LEN];
    json_int_t port;
};

/* Host ports are one namespace for every tenant: the first VM that declares one keeps it. */
static int each_port_user(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct port_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *f, *g;
    size_t i, k;
    int found = 0;

    json_array_foreach(json_object_get(vm, "port_forwards"), i, f)
    {
        json_array_foreach(w->mine, k, g)
        {
            if (json_equal(json_object_get(f, "host_port"), json_object_get(g, "host_port")) &&
                json_equal(json_object_get(f, "proto"), json_object_get(g, "proto"))) {
                w->port = json_integer_value(json_object_get(g, "host_port"));
                found = 1;
            }
        }
    }
    /* Another tenant's VM is not named: that would show it exists. */
    if (found)
        snprintf(w->who, sizeof(w->who), "%s", name);
    (void)tenant;
    json_decref(vm);
    return found;
}

static int parse_cloud_init(struct req *q, json_t *body, const char *vm_name, json_t **out)
{
    static const char *const fields[] = {"hostname", "ssh_keys", "user_data", "network", NULL};
    static const char *const net_fields[] = {"mode", "address", "gateway", "dns", NULL};
    json_t *ci = json_object_get(body, "cloud_init"), *keys, *net, *dns;
    const char *host = NULL, *ud = NULL, *mode = NULL, *addr = NULL, *gw = NULL, *s;
    size_t i;

    *out = NULL;
    if (ci && !json_is_object(ci)) {
        reply_error(q->r, 400, "cloud_init", "field 'cloud_init' must be an object");
        return -EINVAL;
    }
    if (ci && (body_keys(q, ci, "cloud_init", fields) ||
               body_str(q, ci, "cloud_init", "hostname", false, 63, &host) ||
               /* A script is lines of text; seed.h checks what YAML cannot carry. */
               body_text(q, ci, "cloud_init", "user_data", false, USER_DATA_MAX, &ud)))
        return -EINVAL;
    if (host && api_check_name(host)) {
        reply_error(q->r, 400, "cloud_init.hostname",
                    "cloud_init.hostname: 1 to 63 characters of a-z, 0-9 and '-'");
        return -EINVAL;
    }
    keys = json_object_get(ci, "ssh_keys");
    if (keys && (!json_is_array(keys) || json_array_size(keys) > SSH_KEYS_MAX)) {
        reply_error(q->r, 400, "cloud_init.ssh_keys",
                    "cloud_init.ssh_keys must be a list of at most %d strings", SSH_KEYS_MAX);
        return -EINVAL;
    }
    for (i = 0; i < json_array_size(keys); i++)
        if (body_str_at(q, keys, "cloud_init.ssh_keys", i, 8192, &s))
            return -EINVAL;
    net = json_object_get(ci, "network");
    if (net && (!json_is_object(net) || body_keys(q, net, "cloud_init.network", net_fields) ||
                body_str(q, net, "cloud_init.network", "mode", true, 8, &mode) ||
                body_str(q, net, "cloud_init.network", "address", false, 43, &addr) ||
                body_str(q, net, "cloud_init.network", "gateway", false, 39, &gw))) {
        if (!json_is_object(net))
            reply_error(q->r, 400, "cloud_init.network", "cloud_init.network must be an object");
        return -EINVAL;
    }
    if (mode && strcmp(mode, "dhcp") && strcmp(mode, "static")) {
        reply_error(q->r, 400, "cloud_init.network.mode",
                    "cloud_init.network.mode: expected dhcp or static");
        return -EINVAL;
    }
    if (mode && !strcmp(mode, "static") && !addr) {
        reply_error(q->r, 400, "cloud_init.network.address",
                    "cloud_init.network.address is required with mode static (e.g. "
                    "10.0.2.15/24)");
        return -EINVAL;
    }
    dns = json_object_get(net, "dns");
    if (dns && (!json_is_array(dns) || json_array_size(dns) > 4)) {
        reply_error(q->r, 400, "cloud_init.network.dns",
                    "cloud_init.network.dns must be a list of at most 4 addresses");
        return -EINVAL;
    }
    for (i = 0; i < json_array_size(dns); i++)
        if (body_str_at(q, dns, "cloud_init.network.dns", i, 39, &s))
            return -EINVAL;
    /* The seed's own checks (seed.h) refuse what YAML cannot carry; here the shape. Every
     * VM gets a seed: at least its hostname, its name by default. */
    *out = ci ? json_deep_copy(ci) : json_object();
    if (!*out)
        return -ENOMEM;
    if (!host)
        json_object_set_new(*out, "hostname", json_string(vm_name));
    return 0;
}

void api_vms_create(struct req *q)
{
    static const char *const fields[] = {
        "name",      "template",       "cpus",  "memory_bytes", "disk_bytes",
        "clone",     "restart_policy", "start", "cloud_init",   "port_forwards",
        "resources", "nics",           NULL};
    char ttenant[STORE_NAME_LEN], volname[STORE_NAME_LEN], err[RT_ERR_LEN], b[API_QUOTE_LEN];
    const char *name, *tname, *clone = NULL, *policy = NULL;
    json_t *body, *tmpl = NULL, *fwd = NULL, *ci = NULL, *vm = NULL, *vol = NULL, *res = NULL;
    json_t *nics = NULL;
    struct port_walk pw = {0};
    struct api_usage add = {.vms = 1};
    uint64_t cpus, mem, disk, tdisk;
    bool have_cpus, have_mem, have_disk, start = false, linked, made_volume = false;
    int ret;

    /* The role before the body (api.c): a refused caller learns nothing from its body. */
    if (need_route_role(q, "creating a VM") ||
        body_object(q, fields, "{\"name\": \"web1\", \"template\": \"busybox\"}", &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (strlen(name) > VM_NAME_MAX) {
        reply_error(q->r, 400, "name", "a VM's name is at most %d characters", VM_NAME_MAX);
        goto done;
    }
    if (body_name(q, body, "template", true, &tname) ||
        body_u64(q, body, NULL, "cpus", false, 1, 8, &cpus, &have_cpus) ||
        body_u64(q, body, NULL, "memory_bytes", false, 16ull << 20, 64ull << 30, &mem, &have_mem) ||
        body_u64(q, body, NULL, "disk_bytes", false, 1ull << 20, 16ull << 40, &disk, &have_disk) ||
        body_str(q, body, NULL, "clone", false, 8, &clone) ||
        body_str(q, body, NULL, "restart_policy", false, 16, &policy) ||
        body_bool(q, body, NULL, "start", &start) || parse_forwards(q, body, &fwd) ||
        parse_cloud_init(q, body, name, &ci) ||
        api_net_nics_parse(q, json_object_get(body, "nics"), name, &nics))
        goto done;
    if (nics && json_array_size(fwd)) {
        reply_error(q->r, 400, "port_forwards",
                    "port_forwards are the user-mode NIC's: a VM with nics on networks has none");
        goto done;
    }
    if (clone && strcmp(clone, "linked") && strcmp(clone, "full")) {
        reply_error(q->r, 400, "clone", "clone '%s': expected linked or full", quote(clone, b));
        goto done;
    }
    linked = !clone || !strcmp(clone, "linked");
    if (policy && strcmp(policy, "always") && strcmp(policy, "on-failure") &&
        strcmp(policy, "never")) {
        reply_error(q->r, 400, "restart_policy",
                    "restart_policy '%s': expected always, on-failure or never", quote(policy, b));
        goto done;
    }
    tmpl = api_template_find(q, tname, ttenant);
    if (!tmpl)
        goto done;
    /* Every value the template has, the request may override. */
    if (!have_cpus)
        cpus = (uint64_t)json_integer_value(json_object_get(tmpl, "cpus"));
    if (!have_mem)
        mem = (uint64_t)json_integer_value(json_object_get(tmpl, "memory_bytes"));
    tdisk = (uint64_t)json_integer_value(json_object_get(tmpl, "disk_bytes"));
    if (!have_disk)
        disk = tdisk;
    if (disk < tdisk) {
        reply_error(q->r, 400, "disk_bytes",
                    "disk_bytes %" PRIu64 " is smaller than template '%s''s disk (%" PRIu64
                    " bytes)",
                    disk, tname, tdisk);
        goto done;
    }
    res = api_res_default();
    if (json_object_get(body, "resources") &&
        (api_res_merge(q, json_object_get(body, "resources"), res, cpus, mem) ||
         api_res_need_cgroups(q, json_object_get(body, "resources"))))
        goto done;
    pw.mine = fwd;
    if (json_array_size(fwd) && q->s->ops->doc_list(q->s, "vm", NULL, each_port_user, &pw) > 0) {
        reply_error(q->r, 409, "port_forwards",
                    "host port %" JSON_INTEGER_FORMAT " is taken by another VM", pw.port);
        goto done;
    }
    add.vcpus = cpus;
    add.memory = mem;
    add.disk = disk;
    if (api_admit(q, q->scope, &add, true, false))
        goto done;
    vm_volume_name(name, volname);
    vm =
        json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:{s:s,s:s},s:s,s:s,s:s,s:o,s:o,s:n,s:n,s:n,"
                  "s:I,s:n}",
                  "name", name, "tenant", q->scope, "state", "stopped", "desired", "stopped",
                  "cpus", (json_int_t)cpus, "memory_bytes", (json_int_t)mem, "disk_bytes",
                  (json_int_t)disk, "template", "tenant", ttenant, "name", tname, "volume", volname,
                  "clone", linked ? "linked" : "full", "restart_policy", policy ? policy : "never",
                  "port_forwards", json_incref(fwd), "cloud_init", json_incref(ci), "pid",
                  "exit_status", "started", "created", (json_int_t)time(NULL), "error");
    if (!vm || json_object_set(vm, "resources", res) ||
        json_object_set_new(vm, "nics", nics ? json_incref(nics) : json_array())) {
        reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    if (doc_save(q, "vm", q->scope, name, vm, STORE_PUT_CREATE))
        goto done;
    vol = api_volume_new(q->scope, volname, "qcow2", disk, linked ? ttenant : NULL,
                         linked ? json_string_value(json_object_get(tmpl, "volume")) : NULL);
    json_object_set_new(vol, "used_by", json_sprintf("vm %s", name));
    if (doc_save(q, "volume", q->scope, volname, vol, STORE_PUT_CREATE)) {
        if (q->r->status == 409)
            reply_error(q->r, 409, "name", "a volume named '%s' (this VM's disk) exists already",
                        volname);
        goto done;
    }
    /* The host work, last: a failure undoes what it made, the transaction the documents. */
    ret = rt_volume_clone(q->d, ttenant, json_string_value(json_object_get(tmpl, "volume")),
                          q->scope, volname, linked, err);
    if (!ret) {
        made_volume = true;
        if (disk > tdisk)
            ret = rt_volume_resize(q->d, q->scope, volname, disk, err);
    }
    if (!ret)
        ret = rt_vm_provision(q->d, q->scope, vm, tmpl, err);
    /* Its networks' DHCP servers learn its MACs and name. */
    if (!ret)
        ret = vm_nets_sync(q->d, q->scope, vm, err);
    if (ret == -EINVAL) {
        /* The seed's own checks (seed.h) go deeper than the shape checked above; its message
         * starts with the field. */
        char field[64];
        size_t n = strcspn(err, ":");

        snprintf(field, sizeof(field), "%.*s", (int)(n < sizeof(field) ? n : 0), err);
        reply_error(q->r, 400, strncmp(field, "cloud_init", 10) ? "cloud_init" : field, "%s", err);
        goto undo;
    }
    if (ret) {
        reply_error(q->r, ret == -ENOSPC || ret == -EFBIG ? 507 : 500, NULL, "VM '%s': %s", name,
                    err);
        goto undo;
    }
    if (start) {
        if (vm_admit_start(q, q->scope, name, vm))
            goto undo;
        vm_op(q, q->scope, name, "start", json_incref(vm));
        goto done;
    }
    reply_json(q->r, 201, json_incref(vm));
    goto done;
undo:
    rt_vm_remove(q->d, q->scope, name, err);
    if (made_volume)
        rt_volume_delete(q->d, q->scope, volname, err);
done:
    json_decref(nics);
    json_decref(res);
    json_decref(vol);
    json_decref(vm);
    json_decref(ci);
    json_decref(fwd);
    json_decref(tmpl);
    json_decref(body);
}

/* ---- Lifecycle ---- */

static const char *const actions[] = {"start", "stop",   "shutdown", "reboot",
                                      "pause", "resume", NULL};

void api_vm_action(struct req *q)
{
    const char *action = q->seg[3], *state;
    char b[API_QUOTE_LEN];
    json_t *vm;
    size_t i;

    for (i = 0; actions[i] && strcmp(actions[i], action); i++)
        ;
    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");
    if (!vm)
        return;
    if (!actions[i]) {
        reply_error(q->r, 404, "action",
                    "no action '%s' (start, stop, shutdown, reboot, pause, resume)",
                    quote(action, b));
        goto done;
    }
    if (need_route_role(q, "changing a VM's power state"))
        goto done;
    state = json_string_value(json_object_get(vm, "state"));
    if (!state)
        state = "error";
    if (!strcmp(action, "start")) {
        if (strcmp(state, "stopped") && strcmp(state, "error")) {
            reply_error(q->r, 409, NULL, "VM '%s' is %s; start needs it stopped", q->seg[1], state);
            goto done;
        }
        if (vm_admit_start(q, q->scope, q->seg[1], vm))
            goto done;
        vm_op(q, q->scope, q->seg[1], action, NULL);
        goto done;
    }
    if (!strcmp(state, "stopped") || !strcmp(state, "error") || !strcmp(state, "starting")) {
        reply_error(q->r, 409, NULL, "VM '%s' is %s; %s needs it running", q->seg[1], state,
                    action);
        goto done;
    }
    if ((!strcmp(action, "pause") && strcmp(state, "running")) ||
        (!strcmp(action, "resume") && strcmp(state, "paused"))) {
        reply_error(q->r, 409, NULL, "VM '%s' is %s", q->seg[1], state);
        goto done;
    }
    if (!strcmp(action, "stop") || !strcmp(action, "shutdown")) {
        /* What the user asked for: the restart policy must not undo it. */
        json_object_set_new(vm, "desired", json_string("stopped"));
        vm_set_state(vm, "stopping");
        if (doc_save(q, "vm", q->scope, q->seg[1], vm, STORE_PUT_UPDATE))
            goto done;
    }
    vm_op(q, q->scope, q->seg[1], action, NULL);
done:
    json_decref(vm);
}

void api_vm_delete(struct req *q)
{
    char volname[STORE_NAME_LEN], err[RT_ERR_LEN], router[STORE_NAME_LEN], what[64];
    const char *state;
    json_t *vm;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");
    if (!vm || need_route_role(q, "deleting a VM"))
        goto done;
    state = json_string_value(json_object_get(vm, "state"));
    if (state && strcmp(state, "stopped") && strcmp(state, "error")) {
        reply_error(q->r, 409, NULL, "VM '%s' is %s; stop it first", q->seg[1], state);
        goto done;
    }
    /* A forward or floating IP names its VM and holds the address the VM had: left behind, it
     * would send outside traffic to whichever VM gets that address next, and every later
     * change to the router would fail to find the VM. So it goes first, by its own route. */
    int used = api_router_of_vm(q, q->seg[1], router, what, sizeof(what));

    if (used < 0) {
        reply_store(q, "VM delete", used);
        goto done;
    }
    if (used) {
        reply_error(q->r, 409, NULL, "VM '%s' is the target of router '%s''s %s; remove it first",
                    q->seg[1], router, what);
        goto done;
    }
    vm_volume_name(q->seg[1], volname);
    if (q->s->ops->doc_delete(q->s, "vm", q->scope, q->seg[1]) ||
        q->s->ops->doc_delete(q->s, "volume", q->scope, volname)) {
        reply_store(q, "VM delete", -EIO);
        goto done;
    }
    /* Its taps, and its MACs from its networks' DHCP servers (the document is gone already
     * in this transaction, so the sync leaves it out). */
    if (api_net_vm_nics(q->d, q->scope, vm, "remove", err) ||
        vm_nets_sync(q->d, q->scope, vm, err) || rt_vm_remove(q->d, q->scope, q->seg[1], err) ||
        rt_volume_delete(q->d, q->scope, volname, err)) {
        reply_error(q->r, 500, NULL, "VM '%s': %s", q->seg[1], err);
        goto done;
    }
    reply_empty(q->r);
done:
    json_decref(vm);
}

/* ---- Exits and the restart policy ---- */

static void restart_work(struct daemon *d, struct op *op, void *arg)
{
    vm_start_work(d, op, arg);
}

void api_vm_exited(struct daemon *d, const char *tenant, const char *name, int status)
{
    json_t *vm = vm_doc_locked(d, tenant, name);
    const char *desired, *policy;
    json_int_t restarts, last;
    int64_t now = time(NULL);
    bool restart;

    if (!vm)
        return;
    /* Its group goes (a restart makes it again) and the others' CPU weights follow. */
    api_res_vm_release(d, tenant, name);
    desired = json_string_value(json_object_get(vm, "desired"));
    policy = json_string_value(json_object_get(vm, "restart_policy"));
    json_object_set_new(vm, "exit_status", json_integer(status));
    json_object_set_new(vm, "pid", json_null());
    restart = desired && !strcmp(desired, "running") && policy &&
              (!strcmp(policy, "always") || (!strcmp(policy, "on-failure") && status != 0));
    restarts = json_integer_value(json_object_get(vm, "restart_count"));
    last = json_integer_value(json_object_get(vm, "restart_window_start"));
    if (restart && now - last < RESTART_WINDOW && restarts >= RESTART_MAX) {
        vm_set_state(vm, "error");
        json_object_set_new(vm, "error",
                            json_sprintf("restarted %d times within %d s: given up (crash loop)",
                                         RESTART_MAX, RESTART_WINDOW));
        restart = false;
    } else if (!restart) {
        vm_set_state(vm,
                     status == 0 || (desired && !strcmp(desired, "stopped")) ? "stopped" : "error");
        if (status && !(desired && !strcmp(desired, "stopped")))
            json_object_set_new(vm, "error",
                                json_sprintf("the VM process exited with status %d", status));
    }
    if (restart) {
        struct vm_job *j = calloc(1, sizeof(*j));
        char id[OPS_ID_LEN];

        if (now - last >= RESTART_WINDOW) {
            json_object_set_new(vm, "restart_window_start", json_integer(now));
            restarts = 0;
        }
        json_object_set_new(vm, "restart_count", json_integer(restarts + 1));
        vm_set_state(vm, "starting");
        if (j) {
            snprintf(j->tenant, sizeof(j->tenant), "%s", tenant);
            snprintf(j->name, sizeof(j->name), "%s", name);
            snprintf(j->action, sizeof(j->action), "start");
        }
        if (!j || ops_create(d, tenant, "vm.restart", name, restart_work, j, id))
            vm_set_state(vm, "error");
    }
    vm_save_locked(d, tenant, name, vm);
    json_decref(vm);
    api_res_rebalance(d);
}

/* Called once at start-up, with d->lock held, after rt_init(): every VM the store thinks
 * active is checked against its process. */
static int each_recover(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct daemon *d = arg;
    json_t *vm = json_loads(doc, 0, NULL);
    const char *state = json_string_value(json_object_get(vm, "state"));
    int64_t pid = 0;
    int status = 0;
    int alive = rt_vm_probe(d, tenant, name, &pid, &status);

    if (alive > 0) {
        vm_set_state(vm, alive == 2 ? "paused" : "running");
        json_object_set_new(vm, "pid", json_integer(pid));
        vm_save_locked(d, tenant, name, vm);
    } else if (state && strcmp(state, "stopped") && strcmp(state, "error")) {
        /* It ended while nobody watched: its exit status is in its run directory. */
        api_vm_exited(d, tenant, name, alive == 0 ? status : 255);
    }
    json_decref(vm);
    return 0;
}

int api_recover(struct daemon *d)
{
    return d->store->ops->doc_list(d->store, "vm", NULL, each_recover, d);
}

/* ---- Operations ---- */

void api_operations_list(struct req *q)
{
    const char *scope = q->c.role == ROLE_PLATFORM_ADMIN && !q->rq->tenant ? NULL : q->scope;
    json_t *arr = ops_list_json(q->d, scope);

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    reply_json(q->r, 200, json_pack("{s:o}", "operations", arr));
}

void api_operation_get(struct req *q)
{
    const char *scope = q->c.role == ROLE_PLATFORM_ADMIN ? NULL : q->c.tenant;
    json_t *op = ops_get_json(q->d, q->seg[1], scope);

    if (!op) {
        reply_error(q->r, 404, "id", "operation '%s' not found", q->seg[1]);
        return;
    }
    reply_json(q->r, 200, op);
}

void api_operation_wait(struct req *q)
{
    const char *scope = q->c.role == ROLE_PLATFORM_ADMIN ? NULL : q->c.tenant;
    const char *t = q->rq->timeout;
    unsigned long timeout = 30;
    char *end;

    if (t) {
        timeout = strtoul(t, &end, 10);
        if (!*t || *end || timeout > OPS_WAIT_MAX) {
            reply_error(q->r, 400, "timeout", "timeout: expected seconds from 0 to %d",
                        OPS_WAIT_MAX);
            return;
        }
    }
    if (ops_wait(q->d, q->seg[1], scope, (unsigned)timeout)) {
        reply_error(q->r, 404, "id", "operation '%s' not found", q->seg[1]);
        return;
    }
    api_operation_get(q);
}

/* ---- Snapshots and clones of stopped VMs ---- */

/* A VM's snapshots are its disk's (the volume vm-NAME): taken, reverted and deleted while
 * it is stopped, so that they hold a consistent disk. */
void api_vm_snapshots(struct req *q)
{
    char volname[STORE_NAME_LEN];
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM"), *vol = NULL, *body = NULL;
    const char *snap = NULL, *op = NULL, *state;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    if (!vm)
        return;
    vm_volume_name(q->seg[1], volname);
    if (strcmp(q->rq->method, "GET")) {
        if (need_route_role(q, "changing a VM's snapshots"))
            goto done;
        state = json_string_value(json_object_get(vm, "state"));
        if (state && strcmp(state, "stopped") && strcmp(state, "error")) {
            reply_error(q->r, 409, NULL, "VM '%s' is %s; its snapshots change while it is stopped",
                        q->seg[1], state);
            goto done;
        }
        if (q->nseg == 3) {
            if (api_snapshot_name(q, &body, &snap))
                goto done;
            op = "create";
        } else {
            snap = q->seg[3];
            op = q->nseg == 5 ? "revert" : "delete";
        }
    }
    vol = doc_load(q, "volume", q->scope, volname, "volume");
    if (vol)
        api_snapshot_do(q, q->scope, volname, vol, op, snap);
done:
    json_decref(body);
    json_decref(vol);
    json_decref(vm);
}

/* POST /vms/{name}/clone {"name"}: a new, stopped VM with a full copy of the disk of a stopped
 * one (a linked clone would pin the source's disk: no more snapshots or deletes of it). */
void api_vm_clone(struct req *q)
{
    static const char *const fields[] = {"name", NULL};
    char src_vol[STORE_NAME_LEN], volname[STORE_NAME_LEN], err[RT_ERR_LEN], ttenant[STORE_NAME_LEN];
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM"), *body = NULL, *copy = NULL;
    json_t *nics = NULL;
    json_t *vol = NULL, *tmpl = NULL;
    struct api_usage add = {.vms = 1};
    const char *name, *state, *tname;
    bool made = false;
    int ret;

    if (!vm || need_route_role(q, "cloning a VM") ||
        body_object(q, fields, "{\"name\": \"web2\"}", &body) ||
        body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (strlen(name) > VM_NAME_MAX) {
        reply_error(q->r, 400, "name", "a VM's name is at most %d characters", VM_NAME_MAX);
        goto done;
    }
    state = json_string_value(json_object_get(vm, "state"));
    if (state && strcmp(state, "stopped") && strcmp(state, "error")) {
        reply_error(q->r, 409, NULL, "VM '%s' is %s; clone it when it is stopped", q->seg[1],
                    state);
        goto done;
    }
    tname = json_string_value(json_object_get(json_object_get(vm, "template"), "name"));
    tmpl = tname ? api_template_find(q, tname, ttenant) : NULL;
    if (!tmpl)
        goto done;
    add.vcpus = (uint64_t)json_integer_value(json_object_get(vm, "cpus"));
    add.memory = (uint64_t)json_integer_value(json_object_get(vm, "memory_bytes"));
    add.disk = (uint64_t)json_integer_value(json_object_get(vm, "disk_bytes"));
    if (api_admit(q, q->scope, &add, true, false))
        goto done;
    vm_volume_name(q->seg[1], src_vol);
    vm_volume_name(name, volname);
    /* The copy: the source's settings, its own name, disk, seed and no port forwards (a host
     * port belongs to one VM). */
    copy = json_deep_copy(vm);
    if (!copy || api_net_nics_copy(q, json_object_get(vm, "nics"), name, &nics) ||
        json_object_set_new(copy, "nics", nics)) {
        if (q->r->status < 300)
            reply_error(q->r, 500, NULL, "out of memory");
        goto done;
    }
    json_object_set_new(copy, "name", json_string(name));
    json_object_set_new(copy, "volume", json_string(volname));
    json_object_set_new(copy, "clone", json_string("full"));
    json_object_set_new(copy, "state", json_string("stopped"));
    json_object_set_new(copy, "desired", json_string("stopped"));
    json_object_set_new(copy, "port_forwards", json_array());
    json_object_set_new(copy, "pid", json_null());
    json_object_set_new(copy, "exit_status", json_null());
    json_object_set_new(copy, "error", json_null());
    json_object_set_new(copy, "started", json_null());
    json_object_set_new(copy, "created", json_integer(time(NULL)));
    json_object_set_new(json_object_get(copy, "cloud_init"), "hostname", json_string(name));
    if (doc_save(q, "vm", q->scope, name, copy, STORE_PUT_CREATE))
        goto done;
    vol = api_volume_new(q->scope, volname, "qcow2", add.disk, NULL, NULL);
    json_object_set_new(vol, "used_by", json_sprintf("vm %s", name));
    if (doc_save(q, "volume", q->scope, volname, vol, STORE_PUT_CREATE))
        goto done;
    ret = rt_volume_clone(q->d, q->scope, src_vol, q->scope, volname, false, err);
    made = !ret;
    if (!ret)
        ret = rt_vm_provision(q->d, q->scope, copy, tmpl, err);
    if (!ret)
        ret = vm_nets_sync(q->d, q->scope, copy, err);
    if (ret) {
        reply_error(q->r, ret == -ENOSPC ? 507 : 500, NULL, "VM '%s': %s", name, err);
        rt_vm_remove(q->d, q->scope, name, err);
        if (made)
            rt_volume_delete(q->d, q->scope, volname, err);
        goto done;
    }
    reply_json(q->r, 201, json_incref(copy));
done:
    json_decref(tmpl);
    json_decref(vol);
    json_decref(copy);
    json_decref(body);
    json_decref(vm);
}
