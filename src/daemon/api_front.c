/* What the HTTP front end (server.c) asks of the API core for the routes it serves itself
 * (api.h: the hooks), the event stream's publisher and the metrics providers: per VM, per
 * tenant against its quota, and the host. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api_int.h"
#include "daemon/events.h"
#include "daemon/metrics.h"
#include "daemon/ops.h"
#include "daemon/rt.h"

#define UPLOAD_OP_MAX (1ull << 40) /* the largest image an upload may hold: 1 TiB */

/* A request core for a hook: the caller as the front end authenticated it (its tenant is the
 * scope: server.c resolved ?tenant= already). */
static void hook_req(struct daemon *d, const struct api_caller *c, struct api_response *r,
                     struct req *q)
{
    memset(q, 0, sizeof(*q));
    q->d = d;
    q->s = d->store;
    q->r = r;
    q->authenticated = true;
    q->c.role = role_parse(c->role);
    snprintf(q->c.tenant, sizeof(q->c.tenant), "%s", c->tenant);
    snprintf(q->c.user, sizeof(q->c.user), "%s", c->user);
    snprintf(q->scope, sizeof(q->scope), "%s", c->tenant);
}

/* ---- Routes the front end serves ---- */

void api_front_only(struct req *q)
{
    /* server.c answers these before api_handle() sees them; a caller of the core alone
     * (the unit test, the fuzzer) gets this. */
    reply_error(q->r, 400, NULL,
                "%s is served by the HTTP front end (a stream, a websocket or "
                "an upload), not the request core",
                q->rq->path);
}

int api_hook_console_path(void *arg, const struct api_caller *caller, const char *vm, char *path,
                          size_t len)
{
    struct daemon *d = arg;
    struct api_response r = {0};
    const char *state;
    struct req q;
    json_t *doc;
    int ret = 0;

    hook_req(d, caller, &r, &q);
    doc = doc_load(&q, "vm", q.scope, vm, "VM");
    api_response_free(&r);
    if (!doc)
        return -ENOENT;
    state = json_string_value(json_object_get(doc, "state"));
    if (q.c.role < ROLE_OPERATOR)
        ret = -EPERM;
    else if (!state || (strcmp(state, "running") && strcmp(state, "paused")))
        ret = -ENOTCONN;
    else
        ret = rt_vm_console_path(d, q.scope, vm, path, len);
    json_decref(doc);
    return ret;
}

int api_hook_upload_begin(void *arg, const struct api_caller *caller, const char *volume,
                          char *tmp_path, size_t len)
{
    struct daemon *d = arg;
    struct api_response r = {0};
    struct req q;
    json_t *doc;
    int ret = 0;

    hook_req(d, caller, &r, &q);
    doc = doc_load(&q, "volume", q.scope, volume, "volume");
    api_response_free(&r);
    if (!doc)
        return -ENOENT;
    if (q.c.role < ROLE_TENANT_ADMIN)
        ret = -EPERM;
    else if (json_is_string(json_object_get(doc, "used_by")))
        ret = -EBUSY;
    json_decref(doc);
    if (ret)
        return ret;
    if (snprintf(tmp_path, len, "%s/uploads", d->state_dir) >= (int)len)
        return -ENAMETOOLONG;
    if (mkdir(tmp_path, 0700) && errno != EEXIST)
        return -errno;
    /* Names are [a-z0-9-]: "TENANT.VOLUME" cannot collide; "_" is the platform's. */
    if (snprintf(tmp_path, len, "%s/uploads/%s.%s.part", d->state_dir, q.scope[0] ? q.scope : "_",
                 volume) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

struct upload_job {
    char tenant[STORE_NAME_LEN];
    char volume[STORE_NAME_LEN];
    char path[PATH_MAX];
    uint64_t max;
};

/* The import, off the lock: the upload is hostile (pool.h: volume_import() refuses backing
 * files and what the block layer cannot open), its size capped by what the quota leaves. */
static void upload_work(struct daemon *d, struct op *op, void *arg)
{
    struct upload_job *j = arg;
    struct rt_volume_info info;
    char err[RT_ERR_LEN] = "", *text;
    json_t *doc;
    int ret;

    ret = rt_volume_import(d, j->tenant, j->volume, j->path, j->max, err);
    unlink(j->path);
    pthread_mutex_lock(&d->lock);
    if (!d->store->ops->doc_get(d->store, "volume", j->tenant, j->volume, &text)) {
        doc = json_loads(text, 0, NULL);
        free(text);
        json_object_set_new(doc, "used_by", json_null());
        if (!ret && !rt_volume_info(d, j->tenant, j->volume, &info, err)) {
            json_object_set_new(doc, "size_bytes", json_integer((json_int_t)info.size_bytes));
            json_object_set_new(doc, "format", json_string(info.format));
        }
        text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        if (text)
            d->store->ops->doc_put(d->store, "volume", j->tenant, j->volume, text,
                                   STORE_PUT_UPDATE);
        api_publish(d, j->tenant, "volume.upload", doc);
        free(text);
        json_decref(doc);
    }
    pthread_mutex_unlock(&d->lock);
    ops_done(d, op, ret ? err : NULL);
}

void api_hook_upload_end(void *arg, const struct api_caller *caller, const char *volume,
                         const char *tmp_path, bool ok, struct api_response *r)
{
    struct daemon *d = arg;
    struct api_usage u;
    struct upload_job *j;
    char id[OPS_ID_LEN];
    uint64_t limit = UPLOAD_OP_MAX, have;
    struct req q;
    json_t *doc, *quota;
    char *text;
    int ret;

    if (!ok)
        return;
    hook_req(d, caller, r, &q);
    doc = doc_load(&q, "volume", q.scope, volume, "volume");
    if (!doc || json_is_string(json_object_get(doc, "used_by"))) {
        if (doc)
            reply_error(r, 409, "name", "volume '%s' is in use", volume);
        unlink(tmp_path);
        json_decref(doc);
        return;
    }
    /* The image may be as large as the volume is now plus what the quota leaves. */
    if (!api_usage(&q, q.scope, false, &u) &&
        !q.s->ops->doc_get(q.s, "quota", q.scope, "quota", &text)) {
        quota = json_loads(text, 0, NULL);
        free(text);
        if (json_is_integer(json_object_get(quota, "disk_bytes"))) {
            have = (uint64_t)json_integer_value(json_object_get(quota, "disk_bytes"));
            have = have > u.disk ? have - u.disk : 0;
            have += (uint64_t)json_integer_value(json_object_get(doc, "size_bytes"));
            if (have < limit)
                limit = have;
        }
        json_decref(quota);
    }
    api_response_free(r);
    j = calloc(1, sizeof(*j));
    if (!j) {
        unlink(tmp_path);
        json_decref(doc);
        reply_error(r, 500, NULL, "out of memory");
        return;
    }
    snprintf(j->tenant, sizeof(j->tenant), "%s", q.scope);
    snprintf(j->volume, sizeof(j->volume), "%s", volume);
    snprintf(j->path, sizeof(j->path), "%s", tmp_path);
    j->max = limit;
    /* In use while the worker imports: no VM, clone or second upload takes it meanwhile. */
    json_object_set_new(doc, "used_by", json_string("upload"));
    ret = doc_save(&q, "volume", q.scope, volume, doc, STORE_PUT_UPDATE);
    if (!ret)
        ret = ops_create(d, q.scope, "volume.upload", volume, upload_work, j, id);
    else
        free(j);
    json_decref(doc);
    if (ret) {
        unlink(tmp_path);
        if (!r->body)
            reply_error(r, 503, NULL, "cannot start an operation: %s", strerror(-ret));
        return;
    }
    reply_json(r, 202, ops_get_json(d, id, NULL));
    snprintf(r->location, sizeof(r->location), "/api/v1/operations/%s", id);
}

/* ---- Events ---- */

void api_publish(struct daemon *d, const char *tenant, const char *type, json_t *obj)
{
    char *text;

    if (!d->events || !obj)
        return;
    text = json_dumps(obj, JSON_COMPACT);
    if (text && events_publish(d->events, tenant, type, text))
        fprintf(stderr, "tesserad: event %s: not published (too large or out of memory)\n", type);
    free(text);
}

/* ---- Metrics ---- */

struct prov_walk {
    struct daemon *d;
    struct metrics_writer *w;
    const char *family;
    int ret;
};

static int vm_sample(struct prov_walk *p, const char *tenant, const char *name, double v)
{
    const char *labels[] = {"tenant", tenant, "vm", name, NULL};

    return metrics_sample(p->w, p->family, labels, v);
}

/* One family over every VM the caller sees: `what` picks the value. */
enum vm_value { VM_CPUS, VM_MEMORY, VM_RUNNING };

struct vm_walk {
    struct prov_walk p;
    enum vm_value what;
};

static int each_vm_metric(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct vm_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL);
    const char *state = json_string_value(json_object_get(vm, "state"));
    double v = 0;

    switch (w->what) {
    case VM_CPUS: v = (double)json_integer_value(json_object_get(vm, "cpus")); break;
    case VM_MEMORY: v = (double)json_integer_value(json_object_get(vm, "memory_bytes")); break;
    case VM_RUNNING: v = state && !strcmp(state, "running"); break;
    }
    json_decref(vm);
    return vm_sample(&w->p, tenant, name, v);
}

static int vm_family(struct daemon *d, struct metrics_writer *w, const char *tenant,
                     const char *name, const char *help, enum vm_value what)
{
    struct vm_walk vw = {{d, w, name, 0}, what};
    int ret = metrics_family(w, name, "gauge", help);

    if (!ret)
        ret = d->store->ops->doc_list(d->store, "vm", tenant, each_vm_metric, &vw);
    return ret;
}

/* Per running VM, from its process (GET /v1/vm/stats through rt): CPU time, instructions,
 * RSS, balloon, disk and NIC counters. */
/* The sum of member key over the objects of array arr. */
static double sum_of(const json_t *arr, const char *key)
{
    const json_t *v;
    double n = 0;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        n += json_number_value(json_object_get(v, key));
    }
    return n;
}

/* GET /v1/vm/stats (docs/api.md) as the flat numbers the metrics below name. */
static json_t *stats_flat(const json_t *st)
{
    const json_t *disks = json_object_get(st, "disks"), *nics = json_object_get(st, "nics");
    const json_t *ksm = json_object_get(json_object_get(st, "memory"), "ksm_merging_pages");
    json_t *flat = json_pack(
        "{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "cpu_seconds",
        json_number_value(json_object_get(json_object_get(st, "process"), "cpu_seconds")),
        "instructions", sum_of(json_object_get(st, "vcpus"), "instructions"), "rss_bytes",
        json_number_value(json_object_get(json_object_get(st, "memory"), "host_rss_bytes")),
        "balloon_bytes",
        json_number_value(json_object_get(json_object_get(st, "balloon"), "actual_bytes")),
        "disk_read_bytes", sum_of(disks, "read_bytes"), "disk_write_bytes",
        sum_of(disks, "write_bytes"), "disk_ops", sum_of(disks, "reads") + sum_of(disks, "writes"),
        "net_rx_bytes", sum_of(nics, "rx_bytes"), "net_tx_bytes", sum_of(nics, "tx_bytes"),
        "net_rx_frames", sum_of(nics, "rx_frames"), "net_tx_frames", sum_of(nics, "tx_frames"),
        "disk_throttled_seconds", sum_of(disks, "throttled_ns") / 1e9, "net_throttled_seconds",
        (sum_of(nics, "rx_throttled_ns") + sum_of(nics, "tx_throttled_ns")) / 1e9);

    /* Where the host kernel cannot tell (no KSM statistics), no sample rather than a 0. */
    if (flat && json_is_integer(ksm))
        json_object_set(flat, "ksm_merging_pages", (json_t *)ksm);
    return flat;
}

struct stat_walk {
    struct daemon *d;
    struct metrics_writer *w;
    json_t *stats; /* tenant/name -> stats object */
};

static int each_vm_stats(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct stat_walk *s = arg;
    json_t *vm = json_loads(doc, 0, NULL), *st = NULL;
    const char *state = json_string_value(json_object_get(vm, "state"));
    char key[2 * STORE_NAME_LEN + 1];

    if (state && (!strcmp(state, "running") || !strcmp(state, "paused")) &&
        !rt_vm_stats(s->d, tenant, name, &st)) {
        json_t *flat = stats_flat(st), *cpu = json_object(), *mem = json_object();

        /* From its control group: CPU held back by its limit, waited for, memory charged. */
        api_res_usage(s->d, tenant, name, json_integer_value(json_object_get(vm, "pid")), cpu, mem);
        if (json_is_integer(json_object_get(cpu, "throttled_ns")))
            json_object_set_new(
                flat, "cpu_throttled_seconds",
                json_real((double)json_integer_value(json_object_get(cpu, "throttled_ns")) / 1e9));
        if (json_is_integer(json_object_get(cpu, "wait_ns")))
            json_object_set_new(
                flat, "cpu_wait_seconds",
                json_real((double)json_integer_value(json_object_get(cpu, "wait_ns")) / 1e9));
        if (json_is_integer(json_object_get(mem, "cgroup_bytes")))
            json_object_set(flat, "memory_cgroup_bytes", json_object_get(mem, "cgroup_bytes"));
        snprintf(key, sizeof(key), "%s/%s", tenant, name);
        json_object_set_new(s->stats, key, flat);
        json_decref(cpu);
        json_decref(mem);
        json_decref(st);
    }
    json_decref(vm);
    return 0;
}

struct stat_metric {
    const char *name, *help, *type, *key;
};

static const struct stat_metric stat_metrics[] = {
    {"tessera_vm_cpu_seconds_total", "CPU time the VM's process used", "counter", "cpu_seconds"},
    {"tessera_vm_instructions_total", "guest instructions retired, all vCPUs", "counter",
     "instructions"},
    {"tessera_vm_cpu_throttled_seconds_total", "time the VM's CPU limit held it back", "counter",
     "cpu_throttled_seconds"},
    {"tessera_vm_cpu_wait_seconds_total",
     "time the VM's threads were runnable but not running (CPU it wanted and did not get)",
     "counter", "cpu_wait_seconds"},
    {"tessera_vm_memory_cgroup_bytes", "memory charged to the VM's control group", "gauge",
     "memory_cgroup_bytes"},
    {"tessera_vm_rss_bytes", "resident memory of the VM's process", "gauge", "rss_bytes"},
    {"tessera_vm_balloon_bytes", "memory the balloon holds back from the guest", "gauge",
     "balloon_bytes"},
    {"tessera_vm_disk_read_bytes_total", "bytes the guest read from its disks", "counter",
     "disk_read_bytes"},
    {"tessera_vm_disk_write_bytes_total", "bytes the guest wrote to its disks", "counter",
     "disk_write_bytes"},
    {"tessera_vm_disk_ops_total", "disk reads and writes of the guest", "counter", "disk_ops"},
    {"tessera_vm_net_rx_bytes_total", "bytes the VM's NICs received", "counter", "net_rx_bytes"},
    {"tessera_vm_net_tx_bytes_total", "bytes the VM's NICs sent", "counter", "net_tx_bytes"},
    {"tessera_vm_net_rx_frames_total", "frames the VM's NICs received", "counter", "net_rx_frames"},
    {"tessera_vm_net_tx_frames_total", "frames the VM's NICs sent", "counter", "net_tx_frames"},
    {"tessera_vm_disk_throttled_seconds_total",
     "time the VM's disk requests waited for their rate limit", "counter",
     "disk_throttled_seconds"},
    {"tessera_vm_net_throttled_seconds_total",
     "time the VM's frames waited for their NIC's rate limit, both ways", "counter",
     "net_throttled_seconds"},
    {"tessera_vm_ksm_merging_pages", "pages of the VM's memory the host's KSM shares", "gauge",
     "ksm_merging_pages"},
};

static int stats_families(struct metrics_writer *w, json_t *stats)
{
    const char *key, *slash;
    char tenant[STORE_NAME_LEN];
    json_t *st, *v;
    size_t i;
    int ret;

    for (i = 0; i < sizeof(stat_metrics) / sizeof(stat_metrics[0]); i++) {
        ret = metrics_family(w, stat_metrics[i].name, stat_metrics[i].type, stat_metrics[i].help);
        if (ret)
            return ret;
        json_object_foreach(stats, key, st)
        {
            v = json_object_get(st, stat_metrics[i].key);
            if (!json_is_number(v))
                continue;
            slash = strchr(key, '/');
            snprintf(tenant, sizeof(tenant), "%.*s", (int)(slash - key), key);
            const char *labels[] = {"tenant", tenant, "vm", slash + 1, NULL};

            ret = metrics_sample(w, stat_metrics[i].name, labels, json_number_value(v));
            if (ret)
                return ret;
        }
    }
    return 0;
}

static int provide(void *arg, const struct api_caller *caller, struct metrics_writer *w)
{
    struct daemon *d = arg;
    bool admin = !strcmp(caller->role, "platform-admin");
    const char *tenant = admin ? NULL : caller->tenant;
    struct stat_walk sw = {d, w, json_object()};
    struct api_response r = {0};
    struct api_usage u;
    uint64_t vcpus, memory;
    struct req q;
    int ret;

    hook_req(d, caller, &r, &q);
    ret = vm_family(d, w, tenant, "tessera_vm_vcpus", "vCPUs configured", VM_CPUS);
    if (!ret)
        ret = vm_family(d, w, tenant, "tessera_vm_memory_bytes", "memory configured", VM_MEMORY);
    if (!ret)
        ret = vm_family(d, w, tenant, "tessera_vm_running", "1 when the VM runs", VM_RUNNING);
    if (!ret && sw.stats)
        ret = d->store->ops->doc_list(d->store, "vm", tenant, each_vm_stats, &sw);
    if (!ret && sw.stats)
        ret = stats_families(w, sw.stats);
    json_decref(sw.stats);
    /* The caller's own tenant's usage against its quota. */
    if (!ret && !admin && !api_usage(&q, caller->tenant, false, &u)) {
        const char *labels[] = {"tenant", caller->tenant, "resource", NULL, NULL};
        const char *res[] = {"vcpus", "memory_bytes", "disk_bytes", "vms"};
        const uint64_t val[] = {u.vcpus, u.memory, u.disk, u.vms};
        size_t i;

        ret = metrics_family(w, "tessera_tenant_usage", "gauge",
                             "what the tenant's VMs and volumes use, by resource");
        for (i = 0; !ret && i < 4; i++) {
            labels[3] = res[i];
            ret = metrics_sample(w, "tessera_tenant_usage", labels, (double)val[i]);
        }
    }
    /* The host: capacity after overcommit and what running VMs hold (platform only). */
    if (!ret && admin && !api_usage(&q, NULL, true, &u)) {
        api_host_limits(&q, &vcpus, &memory);
        const char *c[] = {"resource", "vcpus", NULL}, *m[] = {"resource", "memory_bytes", NULL};

        ret = metrics_family(w, "tessera_host_capacity", "gauge",
                             "what the host offers VMs after overcommit");
        if (!ret)
            ret = metrics_sample(w, "tessera_host_capacity", c, (double)vcpus);
        if (!ret)
            ret = metrics_sample(w, "tessera_host_capacity", m, (double)memory);
        if (!ret)
            ret = metrics_family(w, "tessera_host_allocated", "gauge",
                                 "what running and starting VMs hold");
        if (!ret)
            ret = metrics_sample(w, "tessera_host_allocated", c, (double)u.vcpus);
        if (!ret)
            ret = metrics_sample(w, "tessera_host_allocated", m, (double)u.memory);
    }
    api_response_free(&r);
    return ret;
}

int api_metrics_init(struct daemon *d)
{
    return metrics_add_provider(d->metrics, provide, d);
}
