/* Shares, limits and reservations (api_int.h; docs/resources.md): their documents, admission
 * of reservations, and how they reach the VMs' control groups (cgroup.h).
 *
 * A VM's document holds `resources` (always whole, defaults filled in):
 *     {"cpu": {"shares": 1000, "limit": null, "reservation": 0},
 *      "memory": {"shares": 1000, "limit_bytes": null, "reservation_bytes": 0}}
 * A tenant's pool is the "resources" document of kind "tenant-resources":
 *     {"cpu": {"shares": 1000, "limit": null}, "memory": {"limit_bytes": null}}
 * The host's `vm_cpuset` and `vm_memory_bytes` (its "host" document) bound all VMs together.
 *
 * CPU weights are computed, not copied: shares divide only what reservations leave
 * (cgroup_weights()), at two levels, tenants and then each tenant's VMs. Every start, stop,
 * exit and change recomputes them for every running VM (api_res_rebalance()). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_int.h"
#include "daemon/cgroup.h"
#include "daemon/rt.h"
#include "daemon/vmproc.h"
#include "base/time.h"

#define SHARES_DEFAULT 1000
#define SHARES_MAX     100000

/* ---- Documents ---- */

/* The disk's and the NIC's rate limits: the VMM's own keys (docs/vm-config.md, "Rate
 * limits"), per second, 0 for none. */
static const char *const res_disk[] = {"iops",   "iops_rd", "iops_wr",   "iops_burst", "bps",
                                       "bps_rd", "bps_wr",  "bps_burst", NULL};
static const char *const res_net[] = {"rx_bps", "tx_bps",    "bps_burst", "rx_pps",
                                      "tx_pps", "pps_burst", NULL};
#define IO_LIMIT_MAX (1ull << 50)

json_t *api_res_default(void)
{
    json_t *r = json_pack("{s:{s:i,s:n,s:i},s:{s:i,s:n,s:i},s:{},s:{}}", "cpu", "shares",
                          SHARES_DEFAULT, "limit", "reservation", 0, "memory", "shares",
                          SHARES_DEFAULT, "limit_bytes", "reservation_bytes", 0, "disk", "network");
    size_t i;

    for (i = 0; r && res_disk[i]; i++)
        json_object_set_new(json_object_get(r, "disk"), res_disk[i], json_integer(0));
    for (i = 0; r && res_net[i]; i++)
        json_object_set_new(json_object_get(r, "network"), res_net[i], json_integer(0));
    return r;
}

/* The VM's resources, with the defaults of whatever its document lacks. New reference. */
static json_t *vm_res(const json_t *vm)
{
    json_t *r = json_object_get(vm, "resources"), *out = api_res_default();
    const char *key;
    json_t *g;

    if (out && json_is_object(r)) {
        json_object_foreach(r, key, g)
        {
            if (json_is_object(g) && json_is_object(json_object_get(out, key)))
                json_object_update(json_object_get(out, key), g);
        }
    }
    return out;
}

static double res_num(const json_t *res, const char *group, const char *key)
{
    return json_number_value(json_object_get(json_object_get(res, group), key));
}

static bool res_null(const json_t *res, const char *group, const char *key)
{
    const json_t *v = json_object_get(json_object_get(res, group), key);

    return !v || json_is_null(v);
}

static json_t *tenant_res(struct daemon *d, const char *tenant)
{
    char *text;
    json_t *v = NULL;

    if (!d->store->ops->doc_get(d->store, "tenant-resources", tenant, "resources", &text)) {
        v = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_pack("{s:{s:i,s:n},s:{s:n}}", "cpu", "shares", SHARES_DEFAULT, "limit", "memory",
                      "limit_bytes");
    }
    return v;
}

static json_t *host_res(struct daemon *d)
{
    char *text;
    json_t *v = NULL;

    if (!d->store->ops->doc_get(d->store, "host", "", "host", &text)) {
        v = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_object();
    }
    return v;
}

/* What reservations may add up to: the CPUs of the host's VM cpuset (all online CPUs without
 * one), and the VMs' memory limit (the host's memory without one). */
static void res_capacity(struct daemon *d, double *cpus, uint64_t *memory)
{
    json_t *h = host_res(d);
    const char *set = json_string_value(json_object_get(h, "vm_cpuset"));
    json_int_t mem = json_integer_value(json_object_get(h, "vm_memory_bytes"));
    unsigned n = set ? cgroup_cpuset_count(set) : 0;

    *cpus = n ? n : d->host.cpus;
    *memory = mem > 0 ? (uint64_t)mem : d->host.memory_bytes;
    json_decref(h);
}

/* ---- Parsing: a request's resources merged into the current ones ---- */

static const char *const res_groups[] = {"cpu", "memory", "disk", "network", NULL};
static const char *const res_cpu[] = {"shares", "limit", "reservation", NULL};
static const char *const res_mem[] = {"shares", "limit_bytes", "reservation_bytes", NULL};

/* Sets group.key of cur from the request's value (a number, or null where nullable). */
static int merge_num(struct req *q, json_t *in, json_t *cur, const char *group, const char *key,
                     double min, double max, bool nullable, bool integer)
{
    char prefix[48];
    double v = 0;
    bool present, is_null;
    json_t *g = json_object_get(cur, group);

    snprintf(prefix, sizeof(prefix), "resources.%s", group);
    if (body_num(q, json_object_get(in, group), prefix, key, min, max, nullable, &v, &present,
                 &is_null))
        return -EINVAL;
    if (!present)
        return 0;
    if (integer && !is_null && v != (double)(json_int_t)v) {
        reply_error(q->r, 400, NULL, "field '%s.%s' must be a whole number", prefix, key);
        return -EINVAL;
    }
    json_object_set_new(g, key,
                        is_null   ? json_null()
                        : integer ? json_integer((json_int_t)v)
                                  : json_real(v));
    return 0;
}

int api_res_merge(struct req *q, json_t *in, json_t *cur, uint64_t cpus, uint64_t memory)
{
    json_t *g;
    size_t i;

    if (!json_is_object(in)) {
        reply_error(q->r, 400, "resources",
                    "field 'resources' must be an object such as {\"cpu\": {\"shares\": 2000, "
                    "\"limit\": 0.5}}");
        return -EINVAL;
    }
    if (body_keys(q, in, "resources", res_groups))
        return -EINVAL;
    for (i = 0; res_groups[i]; i++) {
        g = json_object_get(in, res_groups[i]);
        if (!g)
            continue;
        if (!json_is_object(g)) {
            reply_error(q->r, 400, NULL, "field 'resources.%s' must be an object", res_groups[i]);
            return -EINVAL;
        }
        {
            static const char *const *const keys[] = {res_cpu, res_mem, res_disk, res_net};
            char prefix[32];

            snprintf(prefix, sizeof(prefix), "resources.%s", res_groups[i]);
            if (body_keys(q, g, prefix, keys[i]))
                return -EINVAL;
        }
    }
    for (i = 0; res_disk[i]; i++)
        if (merge_num(q, in, cur, "disk", res_disk[i], 0, (double)IO_LIMIT_MAX, false, true))
            return -EINVAL;
    for (i = 0; res_net[i]; i++)
        if (merge_num(q, in, cur, "network", res_net[i], 0, (double)IO_LIMIT_MAX, false, true))
            return -EINVAL;
    /* A limit below 1% of a core would throttle in 1 ms slices the kernel cannot keep; no
     * VM uses more cores than it has vCPUs, nor more memory than it has (and its VMM's). */
    if (merge_num(q, in, cur, "cpu", "shares", 1, SHARES_MAX, false, true) ||
        merge_num(q, in, cur, "cpu", "limit", 0.01, (double)cpus, true, false) ||
        merge_num(q, in, cur, "cpu", "reservation", 0, (double)cpus, false, false) ||
        merge_num(q, in, cur, "memory", "shares", 1, SHARES_MAX, false, true) ||
        merge_num(q, in, cur, "memory", "limit_bytes", 32 << 20, 1ull << 46, true, true) ||
        merge_num(q, in, cur, "memory", "reservation_bytes", 0, (double)memory, false, true))
        return -EINVAL;
    if (!res_null(cur, "cpu", "limit") &&
        res_num(cur, "cpu", "reservation") > res_num(cur, "cpu", "limit")) {
        reply_error(q->r, 400, "resources.cpu.reservation",
                    "resources.cpu.reservation %g is above resources.cpu.limit %g",
                    res_num(cur, "cpu", "reservation"), res_num(cur, "cpu", "limit"));
        return -EINVAL;
    }
    if (!res_null(cur, "memory", "limit_bytes") &&
        res_num(cur, "memory", "reservation_bytes") > res_num(cur, "memory", "limit_bytes")) {
        reply_error(q->r, 400, "resources.memory.reservation_bytes",
                    "resources.memory.reservation_bytes is above resources.memory.limit_bytes");
        return -EINVAL;
    }
    return 0;
}

/* ---- Admission: reservations of running VMs within the host's capacity ---- */

struct resv_walk {
    const char *skip_tenant, *skip_name;
    double cpu;
    uint64_t memory;
};

static bool state_active(const char *state)
{
    return state && strcmp(state, "stopped") && strcmp(state, "error");
}

static int each_resv(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct resv_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *res;

    if (vm && state_active(json_string_value(json_object_get(vm, "state"))) &&
        !(w->skip_name && !strcmp(tenant, w->skip_tenant) && !strcmp(name, w->skip_name))) {
        res = vm_res(vm);
        w->cpu += res_num(res, "cpu", "reservation");
        w->memory += (uint64_t)res_num(res, "memory", "reservation_bytes");
        json_decref(res);
    }
    json_decref(vm);
    return 0;
}

int api_res_admit(struct req *q, const char *tenant, const char *name, const json_t *res)
{
    struct resv_walk w = {tenant, name, 0, 0};
    double cap_cpu, want_cpu = res_num(res, "cpu", "reservation");
    uint64_t cap_mem, want_mem = (uint64_t)res_num(res, "memory", "reservation_bytes");
    int ret;

    if (want_cpu <= 0 && !want_mem)
        return 0;
    ret = q->s->ops->doc_list(q->s, "vm", NULL, each_resv, &w);
    if (ret) {
        reply_store(q, "reservations", ret);
        return ret;
    }
    res_capacity(q->d, &cap_cpu, &cap_mem);
    if (want_cpu > 0 && w.cpu + want_cpu > cap_cpu + 1e-9) {
        reply_error(q->r, 409, "resources.cpu.reservation",
                    "cpu reservation %g cores does not fit: VMs may reserve %g cores here, "
                    "running VMs hold %g, %g are left",
                    want_cpu, cap_cpu, w.cpu, cap_cpu > w.cpu ? cap_cpu - w.cpu : 0);
        return -EDQUOT;
    }
    if (want_mem && w.memory + want_mem > cap_mem) {
        reply_error(q->r, 409, "resources.memory.reservation_bytes",
                    "memory reservation %" PRIu64 " bytes does not fit: VMs may hold %" PRIu64
                    " bytes, running VMs reserve %" PRIu64 ", %" PRIu64 " are left",
                    want_mem, cap_mem, w.memory, cap_mem > w.memory ? cap_mem - w.memory : 0);
        return -EDQUOT;
    }
    return 0;
}

/* ---- Control groups ---- */

static struct cgroup_limits limits_unset(void)
{
    struct cgroup_limits l = {
        .cpu_limit = -1, .memory_max = -1, .memory_low = -1, .memory_high = -1};

    return l;
}

int api_res_vm_apply(struct daemon *d, const char *tenant, const char *name, const json_t *vm,
                     char *err)
{
    char rel[PATH_MAX];
    struct cgroup_limits l = limits_unset();
    json_t *res, *tres;
    int ret;

    if (d->cg.mode == CGROUP_NONE)
        return 0;
    res = vm_res(vm);
    tres = tenant_res(d, tenant);
    cgroup_rel_tenant(tenant, rel);
    ret = cgroup_make(&d->cg, rel, err);
    if (!ret) {
        l.cpu_limit = res_null(tres, "cpu", "limit") ? 0 : res_num(tres, "cpu", "limit");
        l.memory_max = res_null(tres, "memory", "limit_bytes")
                           ? 0
                           : (int64_t)res_num(tres, "memory", "limit_bytes");
        ret = cgroup_apply(&d->cg, rel, &l, err);
    }
    cgroup_rel_vm(tenant, name, rel);
    if (!ret)
        ret = cgroup_make(&d->cg, rel, err);
    if (!ret) {
        l = limits_unset();
        l.cpu_limit = res_null(res, "cpu", "limit") ? 0 : res_num(res, "cpu", "limit");
        l.memory_max = res_null(res, "memory", "limit_bytes")
                           ? 0
                           : (int64_t)res_num(res, "memory", "limit_bytes");
        l.memory_low = (int64_t)res_num(res, "memory", "reservation_bytes");
        ret = cgroup_apply(&d->cg, rel, &l, err);
    }
    json_decref(tres);
    json_decref(res);
    return ret;
}

void api_res_vm_release(struct daemon *d, const char *tenant, const char *name)
{
    char rel[PATH_MAX], err[CGROUP_ERR_LEN];

    if (d->cg.mode == CGROUP_NONE)
        return;
    cgroup_rel_vm(tenant, name, rel);
    /* The VMM may take a moment to leave after it exited: its group goes on the next try. */
    cgroup_remove(&d->cg, rel, err);
}

int api_res_host_apply(struct daemon *d, char *err)
{
    struct cgroup_limits l = limits_unset();
    json_t *h;
    const char *set;
    json_int_t mem;
    int ret;

    if (d->cg.mode == CGROUP_NONE)
        return 0;
    h = host_res(d);
    set = json_string_value(json_object_get(h, "vm_cpuset"));
    mem = json_integer_value(json_object_get(h, "vm_memory_bytes"));
    l.memory_max = mem > 0 ? mem : 0;
    /* Throttled a sixteenth below the bound (v2): the balloon policy acts before the kernel
     * would have to kill. */
    l.memory_high = mem > 0 ? mem - mem / 16 : 0;
    ret = cgroup_apply(&d->cg, "", &l, err);
    if (!ret && d->cg.dir[CG_CPUSET][0]) {
        char all[CGROUP_CPUSET_LEN];

        /* Without a set of its own the VMs may use every CPU tesserad may. */
        if (!set || !set[0]) {
            snprintf(all, sizeof(all), "0-%u", d->host.cpus ? d->host.cpus - 1 : 0);
            set = all;
        }
        l = limits_unset();
        snprintf(l.cpuset, sizeof(l.cpuset), "%s", set);
        ret = api_res_cpuset(d, &l, err);
    }
    json_decref(h);
    return ret;
}

/* v1 cpuset: a group's CPUs must lie within its parent's, so a narrower set is written from
 * the leaves up and a wider one from PARENT down; each level of ours has the same set. */
static int cpuset_walk(const char *dir, const struct cgroup_limits *l, bool leaves_first, int depth,
                       char *err)
{
    struct dirent *e;
    DIR *dd;
    int ret = 0;
    struct cgroup_host one = {.mode = CGROUP_V1};

    snprintf(one.dir[CG_CPUSET], PATH_MAX, "%s", dir);
    if (!leaves_first && (ret = cgroup_apply(&one, "", l, err)))
        return ret;
    if (depth < 2 && (dd = opendir(dir))) {
        while (!ret && (e = readdir(dd))) {
            char sub[PATH_MAX];

            if (e->d_type != DT_DIR || e->d_name[0] == '.')
                continue;
            if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
                continue;
            ret = cpuset_walk(sub, l, leaves_first, depth + 1, err);
        }
        closedir(dd);
    }
    if (!ret && leaves_first)
        ret = cgroup_apply(&one, "", l, err);
    return ret;
}

int api_res_cpuset(struct daemon *d, const struct cgroup_limits *l, char *err)
{
    if (d->cg.mode == CGROUP_V2)
        return cgroup_apply(&d->cg, "", l, err);
    if (!cpuset_walk(d->cg.dir[CG_CPUSET], l, false, 0, err))
        return 0;
    return cpuset_walk(d->cg.dir[CG_CPUSET], l, true, 0, err);
}

/* The running VMs, by tenant, for the weights. */
struct bal_vm {
    char tenant[STORE_NAME_LEN], name[STORE_NAME_LEN];
    struct cgroup_share share;
};

struct bal_walk {
    struct bal_vm *vms;
    size_t n, cap;
};

static int each_bal(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct bal_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *res;

    if (vm && state_active(json_string_value(json_object_get(vm, "state")))) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 16;
            struct bal_vm *v = realloc(w->vms, cap * sizeof(*v));

            if (!v) {
                json_decref(vm);
                return -ENOMEM;
            }
            w->vms = v;
            w->cap = cap;
        }
        res = vm_res(vm);
        snprintf(w->vms[w->n].tenant, STORE_NAME_LEN, "%s", tenant);
        snprintf(w->vms[w->n].name, STORE_NAME_LEN, "%s", name);
        w->vms[w->n].share.shares = res_num(res, "cpu", "shares");
        w->vms[w->n].share.reservation = res_num(res, "cpu", "reservation");
        w->n++;
        json_decref(res);
    }
    json_decref(vm);
    return 0;
}

void api_res_rebalance(struct daemon *d)
{
    struct bal_walk w = {0};
    struct cgroup_share *ts = NULL, *vs = NULL;
    struct cgroup_limits l;
    char rel[PATH_MAX], err[CGROUP_ERR_LEN];
    double cap_cpu;
    uint64_t cap_mem;
    size_t i, j, nt = 0, nv;
    size_t *tof = NULL; /* VM i's tenant index */

    if (d->cg.mode == CGROUP_NONE || d->store->ops->doc_list(d->store, "vm", NULL, each_bal, &w) ||
        !w.n)
        goto done;
    ts = calloc(w.n, sizeof(*ts));
    vs = calloc(w.n, sizeof(*vs));
    tof = calloc(w.n, sizeof(*tof));
    if (!ts || !vs || !tof)
        goto done;
    res_capacity(d, &cap_cpu, &cap_mem);
    /* Tenants: their shares, and the sum of their running VMs' reservations. */
    for (i = 0; i < w.n; i++) {
        for (j = 0; j < i && strcmp(w.vms[j].tenant, w.vms[i].tenant); j++)
            ;
        if (j < i) {
            tof[i] = tof[j];
        } else {
            json_t *tr = tenant_res(d, w.vms[i].tenant);

            tof[i] = nt;
            ts[nt].shares = res_num(tr, "cpu", "shares");
            ts[nt].reservation = 0;
            nt++;
            json_decref(tr);
        }
        ts[tof[i]].reservation += w.vms[i].share.reservation;
    }
    cgroup_weights(ts, nt, cap_cpu);
    for (size_t t = 0; t < nt; t++) {
        const char *tenant = NULL;

        nv = 0;
        for (i = 0; i < w.n; i++) {
            if (tof[i] != t)
                continue;
            tenant = w.vms[i].tenant;
            vs[nv++] = w.vms[i].share;
        }
        /* Within the tenant: its part of the host, reservations first. */
        cgroup_weights(vs, nv, ts[t].weight * cap_cpu);
        cgroup_rel_tenant(tenant, rel);
        l = limits_unset();
        l.cpu_weight = ts[t].weight;
        if (cgroup_apply(&d->cg, rel, &l, err))
            fprintf(stderr, "tesserad: cpu weights: %s\n", err);
        nv = 0;
        for (i = 0; i < w.n; i++) {
            if (tof[i] != t)
                continue;
            cgroup_rel_vm(w.vms[i].tenant, w.vms[i].name, rel);
            l = limits_unset();
            l.cpu_weight = vs[nv++].weight;
            /* A VM still starting may have no group yet: it gets its weight next time. */
            cgroup_apply(&d->cg, rel, &l, err);
        }
    }
done:
    free(tof);
    free(vs);
    free(ts);
    free(w.vms);
}

/* ---- Disk and NIC limits, which the VMM enforces ---- */

int api_res_io_apply(struct daemon *d, const char *tenant, const json_t *vm, bool running,
                     char *err)
{
    const char *name = json_string_value(json_object_get(vm, "name"));
    json_t *res = vm_res(vm);
    int ret = rt_vm_limits(d, tenant, vm, err);

    if (!ret && running)
        ret = rt_vm_call(d, tenant, name, "PUT", "/v1/vm/disks/0/limits",
                         json_object_get(res, "disk"), NULL, err);
    if (!ret && running)
        ret = rt_vm_call(d, tenant, name, "PUT", "/v1/vm/nics/0/limits",
                         json_object_get(res, "network"), NULL, err);
    json_decref(res);
    return ret;
}

/* ---- Handlers ---- */

/* Shares, limits and reservations of CPU and memory are the kernel's to enforce: on a host
 * without usable cgroups they are refused rather than kept as settings that do nothing. */
int api_res_need_cgroups(struct req *q, const json_t *in)
{
    if (q->d->cg.mode != CGROUP_NONE || !json_is_object(in) ||
        (!json_object_get(in, "cpu") && !json_object_get(in, "memory")))
        return 0;
    reply_error(q->r, 409, "resources",
                "CPU and memory shares, limits and reservations need cgroups, which this host "
                "does not offer tesserad: %s",
                q->d->cg.why);
    return -EOPNOTSUPP;
}

/* GET /vms/{name}/stats: what the VM used, from its control group and its process: CPU time
 * used, throttled by its limit and waited for, memory charged, and the VMM's own counters
 * (GET /v1/vm/stats: balloon, disks, NICs). Counters: a client takes differences. */
void api_res_usage(struct daemon *d, const char *tenant, const char *name, int64_t pid, json_t *cpu,
                   json_t *mem)
{
    struct cgroup_usage u;
    char rel[PATH_MAX], err[CGROUP_ERR_LEN];
    uint64_t wait;

    cgroup_rel_vm(tenant, name, rel);
    cgroup_usage(&d->cg, rel, &u, err);
    if (u.have_cpu)
        json_object_set_new(cpu, "used_ns", json_integer((json_int_t)u.cpu_ns));
    if (u.have_throttled) {
        json_object_set_new(cpu, "throttled_ns", json_integer((json_int_t)u.throttled_ns));
        json_object_set_new(cpu, "nr_throttled", json_integer((json_int_t)u.nr_throttled));
    }
    if (pid > 0 && vmproc_sched_wait_ns(pid, &wait))
        json_object_set_new(cpu, "wait_ns", json_integer((json_int_t)wait));
    if (u.have_memory)
        json_object_set_new(mem, "cgroup_bytes", json_integer((json_int_t)u.memory_bytes));
}

void api_vm_stats(struct req *q)
{
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM"), *out, *st = NULL;
    const char *state;

    if (!vm)
        return;
    state = json_string_value(json_object_get(vm, "state"));
    /* sampled_ns (CLOCK_MONOTONIC) dates the counters, for rates between two reads. */
    out = json_pack("{s:s?,s:I,s:{},s:{},s:n}", "state", state, "sampled_ns",
                    (json_int_t)time_now_ns(), "cpu", "memory", "vmm");
    if (out && state_active(state)) {
        json_t *mem = json_object_get(out, "memory");

        api_res_usage(q->d, q->scope, q->seg[1], json_integer_value(json_object_get(vm, "pid")),
                      json_object_get(out, "cpu"), mem);
        if (!rt_vm_stats(q->d, q->scope, q->seg[1], &st)) {
            const json_t *m = json_object_get(st, "memory");
            const json_t *b = json_object_get(st, "balloon");

            json_object_set(mem, "rss_bytes", json_object_get(m, "host_rss_bytes"));
            json_object_set(mem, "balloon_bytes", json_object_get(b, "actual_bytes"));
            json_object_set_new(out, "vmm", st);
        }
    }
    json_object_set_new(out, "resources", vm_res(vm));
    json_decref(vm);
    reply_json(q->r, 200, out);
}

/* GET|PUT /tenants/{t}/resources: the tenant's pool. */
void api_tenant_resources(struct req *q)
{
    static const char *const fields[] = {"cpu", "memory", NULL};
    static const char *const cpu_keys[] = {"shares", "limit", NULL};
    static const char *const mem_keys[] = {"limit_bytes", NULL};
    json_t *body = NULL, *tr;
    char rel[PATH_MAX], err[CGROUP_ERR_LEN];
    struct cgroup_limits l = limits_unset();
    double cap_cpu;
    uint64_t cap_mem;

    if (path_tenant(q, q->seg[1]))
        return;
    tr = tenant_res(q->d, q->seg[1]);
    if (!strcmp(q->rq->method, "GET")) {
        reply_json(q->r, 200, tr);
        return;
    }
    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    if (need_route_role(q, "changing a tenant's resource pool") ||
        body_object(q, fields, "{\"cpu\": {\"shares\": 2000, \"limit\": 4}}", &body))
        goto done;
    if ((json_object_get(body, "cpu") &&
         (!json_is_object(json_object_get(body, "cpu")) ||
          body_keys(q, json_object_get(body, "cpu"), "cpu", cpu_keys))) ||
        (json_object_get(body, "memory") &&
         (!json_is_object(json_object_get(body, "memory")) ||
          body_keys(q, json_object_get(body, "memory"), "memory", mem_keys)))) {
        if (!q->r->status)
            reply_error(q->r, 400, NULL, "fields 'cpu' and 'memory' must be objects");
        goto done;
    }
    res_capacity(q->d, &cap_cpu, &cap_mem);
    if (merge_num(q, body, tr, "cpu", "shares", 1, SHARES_MAX, false, true) ||
        merge_num(q, body, tr, "cpu", "limit", 0.01, cap_cpu, true, false) ||
        merge_num(q, body, tr, "memory", "limit_bytes", 32 << 20, 1ull << 46, true, true) ||
        api_res_need_cgroups(q, body))
        goto done;
    if (doc_upsert(q, "tenant-resources", q->seg[1], "resources", tr))
        goto done;
    if (q->d->cg.mode != CGROUP_NONE) {
        cgroup_rel_tenant(q->seg[1], rel);
        l.cpu_limit = res_null(tr, "cpu", "limit") ? 0 : res_num(tr, "cpu", "limit");
        l.memory_max = res_null(tr, "memory", "limit_bytes")
                           ? 0
                           : (int64_t)res_num(tr, "memory", "limit_bytes");
        if (cgroup_make(&q->d->cg, rel, err) || cgroup_apply(&q->d->cg, rel, &l, err)) {
            reply_error(q->r, 500, NULL, "tenant '%s': its control group: %s", q->seg[1], err);
            goto done;
        }
        api_res_rebalance(q->d);
    }
    reply_json(q->r, 200, json_incref(tr));
done:
    json_decref(body);
    json_decref(tr);
}

/* PUT /vms/{name}/resources: a partial resources object merged into the VM's; a running VM's
 * groups change at once and its reservations are admitted again. */
void api_vm_resources_set(struct req *q)
{
    static const char *const fields[] = {"cpu", "memory", "disk", "network", NULL};
    json_t *vm = NULL, *body = NULL, *res = NULL;
    char err[RT_ERR_LEN > CGROUP_ERR_LEN ? RT_ERR_LEN : CGROUP_ERR_LEN];
    const char *state;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    /* Another tenant's VM is not there (404) before this tenant's role is checked. */
    vm = doc_load(q, "vm", q->scope, q->seg[1], "VM");
    if (!vm || need_route_role(q, "changing a VM's resources") ||
        body_object(q, fields, "{\"cpu\": {\"shares\": 2000, \"limit\": 0.5}}", &body))
        goto done;
    res = vm_res(vm);
    if (api_res_merge(q, body, res, (uint64_t)json_integer_value(json_object_get(vm, "cpus")),
                      (uint64_t)json_integer_value(json_object_get(vm, "memory_bytes"))) ||
        api_res_need_cgroups(q, body))
        goto done;
    state = json_string_value(json_object_get(vm, "state"));
    if (state_active(state) && api_res_admit(q, q->scope, q->seg[1], res))
        goto done;
    json_object_set(vm, "resources", res);
    if (state_active(state) && api_res_vm_apply(q->d, q->scope, q->seg[1], vm, err)) {
        reply_error(q->r, 500, NULL, "VM '%s': its control group: %s", q->seg[1], err);
        goto done;
    }
    /* Disk and NIC limits: the config for the next start, the VMM for a running VM. */
    if ((json_object_get(body, "disk") || json_object_get(body, "network")) &&
        (api_res_io_apply(q->d, q->scope, vm, state_active(state), err))) {
        reply_error(q->r, 500, NULL, "VM '%s': its disk or NIC limits: %s", q->seg[1], err);
        goto done;
    }
    if (doc_save(q, "vm", q->scope, q->seg[1], vm, STORE_PUT_UPDATE))
        goto done;
    if (state_active(state))
        api_res_rebalance(q->d);
    api_publish(q->d, q->scope, "vm.state", vm);
    reply_json(q->r, 200, json_incref(vm));
done:
    json_decref(res);
    json_decref(body);
    json_decref(vm);
}

void api_resources_init(struct daemon *d)
{
    char err[CGROUP_ERR_LEN];

    if (d->cg.mode == CGROUP_NONE) {
        fprintf(stderr, "tesserad: no cgroups: %s\n", d->cg.why);
        return;
    }
    if (api_res_host_apply(d, err))
        fprintf(stderr, "tesserad: the VMs' control group: %s\n", err);
    api_res_rebalance(d);
}
