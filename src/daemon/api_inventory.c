/* Pools, volumes, templates, quotas and the host's capacity (api_int.h; docs/daemon.md).
 *
 * Each object is one document in the store (store.h: doc_*) and, for volumes, files in a
 * pool that rt.c makes. A change writes its document inside the request's transaction
 * (api.c: the route's handler runs between begin and commit) and does its host work last,
 * so that a refused or failed request leaves neither a document nor a file behind. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/mempolicy.h"
#include "daemon/rt.h"

#define VOLUME_MIN_BYTES (1ull << 20)
#define VOLUME_MAX_BYTES (16ull << 40) /* 16 TiB: a volume larger is a typo */
#define GIB              (1ull << 30)

/* ---- The host ---- */

static json_t *host_doc(struct req *q)
{
    char *text;
    json_t *v = NULL;

    if (!q->s->ops->doc_get(q->s, "host", "", "host", &text)) {
        v = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        /* Defaults: 4 vCPUs per CPU (vCPUs mostly wait), memory not overcommitted. */
        v = json_pack("{s:i,s:i}", "cpu_overcommit", 4, "memory_overcommit", 1);
    }
    return v;
}

void api_host_limits(struct req *q, uint64_t *vcpus, uint64_t *memory)
{
    json_t *h = host_doc(q);
    double c = json_number_value(json_object_get(h, "cpu_overcommit"));
    double m = json_number_value(json_object_get(h, "memory_overcommit"));

    /* Ratios are 1..64 and 1..16 (api_host_set()): the products fit comfortably. */
    *vcpus = (uint64_t)((double)q->d->host.cpus * (c >= 1 ? c : 1));
    *memory = (uint64_t)((double)q->d->host.memory_bytes * (m >= 1 ? m : 1));
    json_decref(h);
}

void api_host_get(struct req *q)
{
    struct mempolicy_state mp;
    struct api_usage u;
    uint64_t vcpus, memory;
    const char *set;
    json_t *h, *out;

    if (api_usage(q, NULL, true, &u))
        return;
    api_host_limits(q, &vcpus, &memory);
    h = host_doc(q);
    set = json_string_value(json_object_get(h, "vm_cpuset"));
    out = json_pack("{s:i,s:I,s:O,s:O,s:{s:I,s:I},s:{s:I,s:I,s:I}}", "cpus", (int)q->d->host.cpus,
                    "memory_bytes", (json_int_t)q->d->host.memory_bytes, "cpu_overcommit",
                    json_object_get(h, "cpu_overcommit"), "memory_overcommit",
                    json_object_get(h, "memory_overcommit"), "capacity", "vcpus", (json_int_t)vcpus,
                    "memory_bytes", (json_int_t)memory, "allocated", "vcpus", (json_int_t)u.vcpus,
                    "memory_bytes", (json_int_t)u.memory, "vms", (json_int_t)u.vms);
    /* The resource controls (docs/resources.md): cgroups found, the bounds on all VMs, and
     * the balloon policy's last round. */
    mempolicy_last(q->d, &mp);
    if (out)
        json_object_update_new(
            out, json_pack("{s:s,s:s?,s:s,s:O?,s:b,s:{s:I,s:I,s:I,s:I,s:I}}", "cgroups",
                           q->d->cg.mode == CGROUP_V2   ? "v2"
                           : q->d->cg.mode == CGROUP_V1 ? "v1"
                                                        : "none",
                           "cgroups_why", q->d->cg.mode == CGROUP_NONE ? q->d->cg.why : NULL,
                           "vm_cpuset", set ? set : "", "vm_memory_bytes",
                           json_object_get(h, "vm_memory_bytes"), "balloon_policy",
                           !json_is_false(json_object_get(h, "balloon_policy")), "memory",
                           "limit_bytes", (json_int_t)mp.limit, "used_bytes", (json_int_t)mp.used,
                           "low_watermark_bytes", (json_int_t)mp.low, "high_watermark_bytes",
                           (json_int_t)mp.high, "balloon_change_bytes", (json_int_t)mp.change));
    reply_json(q->r, 200, out);
    json_decref(h);
}

/* The host's bounds on all VMs together, in PARENT's control group: vm_cpuset (the CPUs VMs
 * run on: a list "0-3,6" of online CPUs, or "" for all) and vm_memory_bytes (the memory they
 * may hold together, or null). Checked into h; 0 or the 400 set. */
static int host_vm_bounds(struct req *q, json_t *body, json_t *h)
{
    const char *set = NULL;
    json_t *m = json_object_get(body, "vm_memory_bytes");
    uint64_t mem;

    if (body_str(q, body, NULL, "vm_cpuset", false, CGROUP_CPUSET_LEN - 1, &set))
        return -EINVAL;
    if (set && set[0]) {
        unsigned n = cgroup_cpuset_count(set), hi = 0;
        const char *p;

        /* The highest CPU named: the last number in the list. */
        for (p = set; *p; p++)
            if (*p >= '0' && *p <= '9' && (p == set || p[-1] < '0' || p[-1] > '9'))
                hi = (unsigned)strtoul(p, NULL, 10);
        if (!n || hi >= q->d->host.cpus) {
            reply_error(q->r, 400, "vm_cpuset",
                        "vm_cpuset '%s': expected a list of CPUs such as \"0-3,6\" within "
                        "0-%u, or \"\" for all",
                        set, q->d->host.cpus - 1);
            return -EINVAL;
        }
    }
    if (m && !json_is_null(m) &&
        body_u64(q, body, NULL, "vm_memory_bytes", false, 64ull << 20, 1ull << 50, &mem, NULL))
        return -EINVAL;
    if ((set || m) && q->d->cg.mode == CGROUP_NONE) {
        reply_error(q->r, 409, set ? "vm_cpuset" : "vm_memory_bytes",
                    "the VMs' CPUs and memory are bounded with cgroups, which this host does not "
                    "offer tesserad: %s",
                    q->d->cg.why);
        return -EOPNOTSUPP;
    }
    if (set)
        json_object_set_new(h, "vm_cpuset", json_string(set));
    if (m)
        json_object_set(h, "vm_memory_bytes", m);
    return 0;
}

void api_host_set(struct req *q)
{
    static const char *const fields[] = {"cpu_overcommit",  "memory_overcommit", "vm_cpuset",
                                         "vm_memory_bytes", "balloon_policy",    NULL};
    bool policy;
    static const double max[] = {64, 16};
    char err[CGROUP_ERR_LEN];
    json_t *body, *h, *v;
    size_t i;

    snprintf(q->target, sizeof(q->target), "host");
    if (need_route_role(q, "changing the host's settings"))
        return;
    if (body_object(q, fields, "{\"cpu_overcommit\": 4, \"memory_overcommit\": 1}", &body))
        return;
    /* Ratios are numbers, as Proxmox and OpenStack take them: 1.5 is a fine memory ratio. */
    for (i = 0; i < 2; i++) {
        v = json_object_get(body, fields[i]);
        if (v &&
            (!json_is_number(v) || !(json_number_value(v) >= 1) || json_number_value(v) > max[i])) {
            reply_error(q->r, 400, fields[i], "field '%s' must be a number from 1 to %g", fields[i],
                        max[i]);
            goto done;
        }
    }
    h = host_doc(q);
    for (i = 0; i < 2; i++)
        if (json_object_get(body, fields[i]))
            json_object_set(h, fields[i], json_object_get(body, fields[i]));
    if (json_object_get(body, "balloon_policy")) {
        if (body_bool(q, body, NULL, "balloon_policy", &policy))
            goto free_h;
        json_object_set_new(h, "balloon_policy", json_boolean(policy));
    }
    if (!host_vm_bounds(q, body, h) && !doc_upsert(q, "host", "", "host", h)) {
        if (api_res_host_apply(q->d, err))
            reply_error(q->r, 500, NULL, "the VMs' control group: %s", err);
        else
            api_host_get(q);
        api_res_rebalance(q->d);
    }
free_h:
    json_decref(h);
done:
    json_decref(body);
}

/* ---- Usage, quotas and admission ---- */

struct usage_walk {
    struct api_usage *u;
    bool active;
};

static uint64_t doc_u64(const json_t *obj, const char *key)
{
    json_int_t n = json_integer_value(json_object_get(obj, key));

    return n > 0 ? (uint64_t)n : 0;
}

static int usage_vm(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct usage_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL);
    const char *state = json_string_value(json_object_get(vm, "state"));

    (void)tenant;
    (void)name;
    if (!w->active || (state && strcmp(state, "stopped") && strcmp(state, "error"))) {
        w->u->vcpus += doc_u64(vm, "cpus");
        w->u->memory += doc_u64(vm, "memory_bytes");
        w->u->vms++;
    }
    json_decref(vm);
    return 0;
}

static int usage_volume(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct usage_walk *w = arg;
    json_t *v = json_loads(doc, 0, NULL);

    (void)tenant;
    (void)name;
    w->u->disk += doc_u64(v, "size_bytes");
    json_decref(v);
    return 0;
}

int api_usage(struct req *q, const char *tenant, bool active, struct api_usage *u)
{
    struct usage_walk w = {u, active};
    int ret;

    memset(u, 0, sizeof(*u));
    ret = q->s->ops->doc_list(q->s, "vm", tenant, usage_vm, &w);
    if (!ret && !active)
        ret = q->s->ops->doc_list(q->s, "volume", tenant, usage_volume, &w);
    if (ret)
        reply_store(q, "usage", ret);
    return ret;
}

/* The tenant's quota document, or an empty one (every limit null: unlimited). */
static json_t *quota_doc(struct req *q, const char *tenant)
{
    char *text;
    json_t *v = NULL;

    if (!q->s->ops->doc_get(q->s, "quota", tenant, "quota", &text)) {
        v = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_pack("{s:n,s:n,s:n,s:n}", "vcpus", "memory_bytes", "disk_bytes", "vms");
    }
    return v;
}

static const char *const quota_keys[] = {"vcpus", "memory_bytes", "disk_bytes", "vms", NULL};

static uint64_t usage_of(const struct api_usage *u, size_t i)
{
    const uint64_t v[] = {u->vcpus, u->memory, u->disk, u->vms};

    return v[i];
}

int api_admit(struct req *q, const char *tenant, const struct api_usage *add, bool quota,
              bool start)
{
    struct api_usage u;
    uint64_t limit, have, want, cap_vcpus, cap_memory;
    json_t *quotas, *l;
    size_t i;

    if (quota) {
        if (api_usage(q, tenant, false, &u))
            return -EIO;
        quotas = quota_doc(q, tenant);
        for (i = 0; quota_keys[i]; i++) {
            l = json_object_get(quotas, quota_keys[i]);
            if (!json_is_integer(l))
                continue;
            limit = doc_u64(quotas, quota_keys[i]);
            have = usage_of(&u, i);
            want = usage_of(add, i);
            if (want && have + want > limit) {
                reply_error(q->r, 409, quota_keys[i],
                            "quota: tenant '%s' may use %s %" PRIu64 "; it uses %" PRIu64
                            " and this request asks for %" PRIu64 " more (%" PRIu64 " left)",
                            tenant, quota_keys[i], limit, have, want,
                            limit > have ? limit - have : 0);
                json_decref(quotas);
                return -EDQUOT;
            }
        }
        json_decref(quotas);
    }
    if (start) {
        if (api_usage(q, NULL, true, &u))
            return -EIO;
        api_host_limits(q, &cap_vcpus, &cap_memory);
        if (u.vcpus + add->vcpus > cap_vcpus || u.memory + add->memory > cap_memory) {
            bool cpu = u.vcpus + add->vcpus > cap_vcpus;

            reply_error(q->r, 409, cpu ? "cpus" : "memory_bytes",
                        "host capacity: %s %" PRIu64 " after overcommit; running VMs have %" PRIu64
                        " and this VM needs %" PRIu64 " more (%" PRIu64 " left)",
                        cpu ? "vcpus" : "memory_bytes", cpu ? cap_vcpus : cap_memory,
                        cpu ? u.vcpus : u.memory, cpu ? add->vcpus : add->memory,
                        cpu ? (cap_vcpus > u.vcpus ? cap_vcpus - u.vcpus : 0)
                            : (cap_memory > u.memory ? cap_memory - u.memory : 0));
            return -EDQUOT;
        }
    }
    return 0;
}

void api_quota_get(struct req *q)
{
    struct api_usage u;
    json_t *limits, *usage;
    size_t i;

    if (path_tenant(q, q->seg[1]) || api_usage(q, q->seg[1], false, &u))
        return;
    limits = quota_doc(q, q->seg[1]);
    usage = json_object();
    for (i = 0; usage && quota_keys[i]; i++)
        json_object_set_new(usage, quota_keys[i], json_integer((json_int_t)usage_of(&u, i)));
    reply_json(q->r, 200,
               json_pack("{s:s,s:o,s:o*}", "tenant", q->seg[1], "limits", limits, "usage", usage));
}

void api_quota_set(struct req *q)
{
    static const uint64_t max[] = {1u << 20, 1ull << 50, 1ull << 56, 1u << 20};
    json_t *body, *limits, *v;
    char f[32];
    size_t i;

    if (path_tenant(q, q->seg[1]) || need_route_role(q, "setting a quota"))
        return;
    if (body_object(q, quota_keys, "{\"vcpus\": 8, \"memory_bytes\": 8589934592, \"vms\": 10}",
                    &body))
        return;
    limits = quota_doc(q, q->seg[1]);
    for (i = 0; quota_keys[i]; i++) {
        v = json_object_get(body, quota_keys[i]);
        if (!v)
            continue;
        if (json_is_null(v)) {
            json_object_set_new(limits, quota_keys[i], json_null());
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > max[i]) {
            snprintf(f, sizeof(f), "%s", quota_keys[i]);
            reply_error(q->r, 400, f,
                        "field '%s' must be null (unlimited) or an integer from 0 to %" PRIu64, f,
                        max[i]);
            goto done;
        }
        json_object_set(limits, quota_keys[i], v);
    }
    /* Lowering a limit below what is used is allowed (Incus and OpenStack agree): nothing
     * running is taken away; new requests are refused until usage falls under it. */
    if (!doc_upsert(q, "quota", q->seg[1], "quota", limits))
        api_quota_get(q);
done:
    json_decref(limits);
    json_decref(body);
}

/* ---- Pools ---- */

void api_pools_list(struct req *q)
{
    uint64_t cap = 0, used = 0;
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/pools/default", q->d->state_dir);
    rt_pool_stats(q->d, &cap, &used);
    reply_json(q->r, 200,
               json_pack("{s:[{s:s,s:s,s:I,s:I}]}", "pools", "name", "default", "path", path,
                         "capacity_bytes", (json_int_t)cap, "used_bytes", (json_int_t)used));
}

/* ---- Volumes ---- */

static void volume_reply(struct req *q, unsigned status, const char *tenant, json_t *doc)
{
    struct rt_volume_info info;
    char err[RT_ERR_LEN];

    /* What the file says now; the document keeps what was asked for. */
    if (!rt_volume_info(q->d, tenant, json_string_value(json_object_get(doc, "name")), &info, err))
        json_object_set_new(doc, "allocated_bytes", json_integer((json_int_t)info.allocated_bytes));
    reply_json(q->r, status, json_incref(doc));
}

void api_volumes_list(struct req *q)
{
    doc_list_reply(q, "volume", "volumes");
}

json_t *api_volume_new(const char *tenant, const char *name, const char *format, uint64_t size,
                       const char *backing_tenant, const char *backing)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:n,s:I}", "name", name, "tenant", tenant,
                     "pool", "default", "format", format, "size_bytes", (json_int_t)size,
                     "allocated_bytes", (json_int_t)0, "backing",
                     backing ? json_pack("{s:s,s:s}", "tenant", backing_tenant, "name", backing)
                             : json_null(),
                     "used_by", "created", (json_int_t)time(NULL));
}

void api_volumes_create(struct req *q)
{
    static const char *const fields[] = {"name", "size_bytes", "format", "pool", NULL};
    struct api_usage add = {0};
    char err[RT_ERR_LEN], b[API_QUOTE_LEN];
    const char *name, *format = "qcow2", *pool = NULL;
    json_t *body, *doc = NULL;
    uint64_t size;
    int ret;

    /* The role before the body (api.c): a refused caller learns nothing from its body. */
    if (need_route_role(q, "creating a volume") ||
        body_object(q, fields, "{\"name\": \"data\", \"size_bytes\": 1073741824}", &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (body_u64(q, body, NULL, "size_bytes", true, VOLUME_MIN_BYTES, VOLUME_MAX_BYTES, &size,
                 NULL) ||
        body_str(q, body, NULL, "format", false, 8, &format) ||
        body_str(q, body, NULL, "pool", false, STORE_NAME_LEN, &pool))
        goto done;
    if (!format)
        format = "qcow2";
    if (strcmp(format, "qcow2") && strcmp(format, "raw")) {
        reply_error(q->r, 400, "format", "format '%s': expected qcow2 or raw", quote(format, b));
        goto done;
    }
    if (pool && strcmp(pool, "default")) {
        reply_error(q->r, 404, "pool", "pool '%s' not found", quote(pool, b));
        goto done;
    }
    add.disk = size;
    if (api_admit(q, q->scope, &add, true, false))
        goto done;
    doc = api_volume_new(q->scope, name, format, size, NULL, NULL);
    if (doc_save(q, "volume", q->scope, name, doc, STORE_PUT_CREATE))
        goto done;
    ret = rt_volume_create(q->d, q->scope, name, format, size, err);
    if (ret) {
        reply_error(q->r, ret == -ENOSPC || ret == -EFBIG ? 507 : 500, NULL, "volume '%s': %s",
                    name, err);
        goto done;
    }
    volume_reply(q, 201, q->scope, doc);
done:
    json_decref(doc);
    json_decref(body);
}

void api_volume_get(struct req *q)
{
    json_t *doc = doc_load(q, "volume", q->scope, q->seg[1], "volume");

    if (doc)
        volume_reply(q, 200, q->scope, doc);
    json_decref(doc);
}

/* Whether anything depends on the volume: a VM's disk, a template's base, a linked clone. */
struct dep_walk {
    const char *tenant, *name;
    char who[2 * STORE_NAME_LEN];
};

static int each_dependant(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct dep_walk *w = arg;
    json_t *v = json_loads(doc, 0, NULL), *bk = json_object_get(v, "backing");
    const char *bt = json_string_value(json_object_get(bk, "tenant"));
    const char *bn = json_string_value(json_object_get(bk, "name"));
    int found = bt && bn && !strcmp(bt, w->tenant) && !strcmp(bn, w->name);

    if (found)
        snprintf(w->who, sizeof(w->who), "%s%s%s", tenant, tenant[0] ? "/" : "", name);
    json_decref(v);
    return found;
}

int api_volume_busy(struct req *q, const char *tenant, const char *name, json_t *doc)
{
    struct dep_walk w = {tenant, name, ""};
    const char *user = json_string_value(json_object_get(doc, "used_by"));

    if (user) {
        reply_error(q->r, 409, "name", "volume '%s' is used by %s", name, user);
        return -EBUSY;
    }
    if (q->s->ops->doc_list(q->s, "volume", NULL, each_dependant, &w) > 0) {
        reply_error(q->r, 409, "name", "volume '%s' is the base of the linked clone %s", name,
                    w.who);
        return -EBUSY;
    }
    return 0;
}

void api_volume_delete(struct req *q)
{
    char err[RT_ERR_LEN];
    json_t *doc;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    doc = doc_load(q, "volume", q->scope, q->seg[1], "volume");
    if (!doc || need_route_role(q, "deleting a volume") ||
        api_volume_busy(q, q->scope, q->seg[1], doc))
        goto done;
    ret = q->s->ops->doc_delete(q->s, "volume", q->scope, q->seg[1]);
    if (ret) {
        reply_store(q, "volume delete", ret);
        goto done;
    }
    if (rt_volume_delete(q->d, q->scope, q->seg[1], err)) {
        reply_error(q->r, 500, NULL, "volume '%s': %s", q->seg[1], err);
        goto done;
    }
    reply_empty(q->r);
done:
    json_decref(doc);
}

void api_volume_resize(struct req *q)
{
    static const char *const fields[] = {"size_bytes", NULL};
    struct api_usage add = {0};
    char err[RT_ERR_LEN];
    json_t *body = NULL, *doc;
    uint64_t size, old;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    doc = doc_load(q, "volume", q->scope, q->seg[1], "volume");
    if (!doc || need_route_role(q, "resizing a volume") ||
        body_object(q, fields, "{\"size_bytes\": 2147483648}", &body) ||
        body_u64(q, body, NULL, "size_bytes", true, VOLUME_MIN_BYTES, VOLUME_MAX_BYTES, &size,
                 NULL))
        goto done;
    old = doc_u64(doc, "size_bytes");
    if (size < old) {
        reply_error(q->r, 400, "size_bytes",
                    "volume '%s' is %" PRIu64 " bytes; shrinking it would lose data", q->seg[1],
                    old);
        goto done;
    }
    if (json_is_string(json_object_get(doc, "used_by")) &&
        !strncmp(json_string_value(json_object_get(doc, "used_by")), "template", 8)) {
        reply_error(q->r, 409, "name", "volume '%s' is a template's base: it cannot change",
                    q->seg[1]);
        goto done;
    }
    add.disk = size - old;
    if (api_admit(q, q->scope, &add, true, false))
        goto done;
    json_object_set_new(doc, "size_bytes", json_integer((json_int_t)size));
    if (doc_save(q, "volume", q->scope, q->seg[1], doc, STORE_PUT_UPDATE))
        goto done;
    if (rt_volume_resize(q->d, q->scope, q->seg[1], size, err)) {
        reply_error(q->r, 500, NULL, "volume '%s': %s", q->seg[1], err);
        goto done;
    }
    volume_reply(q, 200, q->scope, doc);
done:
    json_decref(body);
    json_decref(doc);
}

void api_volume_clone(struct req *q)
{
    static const char *const fields[] = {"name", "mode", NULL};
    struct api_usage add = {0};
    char err[RT_ERR_LEN], b[API_QUOTE_LEN];
    const char *name, *mode = NULL;
    json_t *body = NULL, *src, *doc = NULL;
    bool linked;

    src = doc_load(q, "volume", q->scope, q->seg[1], "volume");
    if (!src || need_route_role(q, "cloning a volume") ||
        body_object(q, fields, "{\"name\": \"copy\", \"mode\": \"linked\"}", &body) ||
        body_name(q, body, "name", true, &name) || body_str(q, body, NULL, "mode", false, 8, &mode))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    if (mode && strcmp(mode, "linked") && strcmp(mode, "full")) {
        reply_error(q->r, 400, "mode", "mode '%s': expected linked or full", quote(mode, b));
        goto done;
    }
    linked = !mode || !strcmp(mode, "linked");
    if (json_is_string(json_object_get(src, "used_by"))) {
        reply_error(q->r, 409, "name", "volume '%s' is in use by %s; clone it when it is free",
                    q->seg[1], json_string_value(json_object_get(src, "used_by")));
        goto done;
    }
    add.disk = doc_u64(src, "size_bytes");
    if (api_admit(q, q->scope, &add, true, false))
        goto done;
    doc = api_volume_new(q->scope, name,
                         linked ? "qcow2" : json_string_value(json_object_get(src, "format")),
                         add.disk, linked ? q->scope : NULL, linked ? q->seg[1] : NULL);
    if (doc_save(q, "volume", q->scope, name, doc, STORE_PUT_CREATE))
        goto done;
    if (rt_volume_clone(q->d, q->scope, q->seg[1], q->scope, name, linked, err)) {
        reply_error(q->r, 500, NULL, "volume '%s': %s", name, err);
        goto done;
    }
    volume_reply(q, 201, q->scope, doc);
done:
    json_decref(doc);
    json_decref(body);
    json_decref(src);
}

/* ---- Templates ---- */

void api_templates_list(struct req *q)
{
    json_t *arr = json_array();
    int ret;

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    /* Tenants see their own and the shared ones (tenant ""). */
    if (q->c.role == ROLE_PLATFORM_ADMIN && !q->rq->tenant) {
        ret = q->s->ops->doc_list(q->s, "template", NULL, doc_append_each, arr);
    } else {
        ret = q->s->ops->doc_list(q->s, "template", "", doc_append_each, arr);
        if (!ret && q->scope[0])
            ret = q->s->ops->doc_list(q->s, "template", q->scope, doc_append_each, arr);
    }
    reply_list(q, "templates", arr, ret);
}

json_t *api_template_find(struct req *q, const char *name, char *tenant_out)
{
    char *text;
    json_t *v;
    int ret = q->s->ops->doc_get(q->s, "template", q->scope, name, &text);

    snprintf(tenant_out, STORE_NAME_LEN, "%s", q->scope);
    if (ret == -ENOENT && q->scope[0]) {
        ret = q->s->ops->doc_get(q->s, "template", "", name, &text);
        tenant_out[0] = '\0';
    }
    if (ret == -ENOENT) {
        reply_error(q->r, 404, "template", "template '%s' not found", name);
        return NULL;
    }
    if (ret) {
        reply_store(q, "template", ret);
        return NULL;
    }
    v = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(v)) {
        json_decref(v);
        reply_error(q->r, 500, NULL, "template '%s': its stored record is damaged", name);
        return NULL;
    }
    return v;
}

void api_template_get(struct req *q)
{
    char tenant[STORE_NAME_LEN];
    json_t *t = api_template_find(q, q->seg[1], tenant);

    if (t)
        reply_json(q->r, 200, t);
}

/* The copy of a stopped VM's disk that a template made from it stands on: the volume `name`
 * (document and file) in *vol, the VM's document in *vm. 0 or the reply set. */
static int template_from_vm(struct req *q, const char *name, const char *vm_name, json_t **vol,
                            json_t **vm)
{
    char src[STORE_NAME_LEN], err[RT_ERR_LEN];
    struct api_usage add = {0};
    const char *state;

    *vol = NULL;
    *vm = doc_load(q, "vm", q->scope, vm_name, "VM");
    if (!*vm)
        return -ENOENT;
    state = json_string_value(json_object_get(*vm, "state"));
    if (state && strcmp(state, "stopped") && strcmp(state, "error")) {
        reply_error(q->r, 409, "from_vm", "VM '%s' is %s; a template is made from a stopped VM",
                    vm_name, state);
        return -EBUSY;
    }
    add.disk = doc_u64(*vm, "disk_bytes");
    if (api_admit(q, q->scope, &add, true, false))
        return -EDQUOT;
    *vol = api_volume_new(q->scope, name, "qcow2", add.disk, NULL, NULL);
    if (doc_save(q, "volume", q->scope, name, *vol, STORE_PUT_CREATE)) {
        /* Someone's volume of that name: not ours to remove on the way out. */
        json_decref(*vol);
        *vol = NULL;
        return -EEXIST;
    }
    snprintf(src, sizeof(src), "vm-%.59s", vm_name);
    if (rt_volume_clone(q->d, q->scope, src, q->scope, name, false, err)) {
        reply_error(q->r, 500, NULL, "template '%s': copying VM '%s''s disk: %s", name, vm_name,
                    err);
        return -EIO;
    }
    return 0;
}

void api_templates_create(struct req *q)
{
    static const char *const fields[] = {"name",         "volume",     "from_vm",   "cpus",
                                         "memory_bytes", "disk_bytes", "boot_from", "boot",
                                         "os",           NULL};
    static const char *const boot_fields[] = {"kernel", "initrd", "cmdline", NULL};
    char btenant[STORE_NAME_LEN], vm_boot[STORE_NAME_LEN];
    const char *name, *volume = NULL, *boot_from = NULL, *os = NULL, *from_vm = NULL;
    json_t *body, *vol = NULL, *base = NULL, *t = NULL, *boot;
    uint64_t cpus = 1, mem = 256ull << 20, disk = 0;
    bool have, vm_base = false;

    if (need_route_role(q, "creating a template") ||
        body_object(q, fields,
                    "{\"name\": \"web\", \"volume\": \"web-base\", \"cpus\": 1, "
                    "\"memory_bytes\": 268435456}",
                    &body))
        return;
    if (body_name(q, body, "name", true, &name))
        goto done;
    snprintf(q->target, sizeof(q->target), "%s", name);
    /* Host paths: only the platform's administrators name them. A tenant's template boots
     * what a shared template boots (boot_from). */
    if (json_object_get(body, "boot") && q->c.role != ROLE_PLATFORM_ADMIN) {
        reply_error(q->r, 403, "boot",
                    "field 'boot' names host files: only a platform-admin sets it; use "
                    "boot_from");
        goto done;
    }
    if (body_name(q, body, "volume", false, &volume) ||
        body_name(q, body, "from_vm", false, &from_vm) ||
        body_u64(q, body, NULL, "cpus", false, 1, 8, &cpus, NULL) ||
        body_u64(q, body, NULL, "memory_bytes", false, 16ull << 20, 64ull << 30, &mem, NULL) ||
        body_u64(q, body, NULL, "disk_bytes", false, VOLUME_MIN_BYTES, VOLUME_MAX_BYTES, &disk,
                 &have) ||
        body_name(q, body, "boot_from", false, &boot_from) ||
        body_str(q, body, NULL, "os", false, 32, &os))
        goto done;
    if (!volume == !from_vm) {
        reply_error(q->r, 400, volume ? "from_vm" : "volume",
                    "a template is made from a 'volume' or from a stopped VM ('from_vm'): give "
                    "one of them");
        goto done;
    }
    if (from_vm) {
        /* The VM's disk, copied whole into a volume of the template's name; the VM stays. */
        if (template_from_vm(q, name, from_vm, &vol, &base))
            goto done;
        volume = name;
        if (!boot_from) {
            /* What the VM boots: its own template's boot files. */
            snprintf(vm_boot, sizeof(vm_boot), "%s",
                     json_string_value(json_object_get(json_object_get(base, "template"), "name"))
                         ?: "busybox");
            boot_from = vm_boot;
            vm_base = true;
        }
        json_decref(base);
        base = NULL;
    } else {
        vol = doc_load(q, "volume", q->scope, volume, "volume");
    }
    if (!vol)
        goto done;
    if (json_is_string(json_object_get(vol, "used_by"))) {
        reply_error(q->r, 409, "volume", "volume '%s' is used by %s", volume,
                    json_string_value(json_object_get(vol, "used_by")));
        goto done;
    }
    boot = json_object_get(body, "boot");
    if (boot) {
        const char *k, *i, *c;

        if (!json_is_object(boot) || body_keys(q, boot, "boot", boot_fields) ||
            body_str(q, boot, "boot", "kernel", true, 255, &k) ||
            body_str(q, boot, "boot", "initrd", false, 255, &i) ||
            body_str(q, boot, "boot", "cmdline", false, 1024, &c)) {
            if (!json_is_object(boot))
                reply_error(q->r, 400, "boot", "field 'boot' must be an object");
            goto done;
        }
        if (k[0] != '/' || (i && i[0] != '/') || strchr(k, ',') || (i && strchr(i, ','))) {
            reply_error(q->r, 400, "boot",
                        "boot.kernel and boot.initrd must be absolute paths without ','");
            goto done;
        }
        base = json_pack("{s:O,s:s}", "boot", boot, "os", "custom");
    } else {
        /* A template's boot files are a shared template's: a tenant never names a host
         * path. */
        base = api_template_find(q, boot_from ? boot_from : "busybox", btenant);
        if (!base)
            goto done;
        /* A tenant names only shared templates; the VM's own template may be its tenant's
         * (whose boot files are a shared template's in turn). */
        if (btenant[0] && !vm_base) {
            reply_error(q->r, 400, "boot_from", "boot_from must name a shared template");
            goto done;
        }
    }
    if (!have || disk < doc_u64(vol, "size_bytes"))
        disk = doc_u64(vol, "size_bytes");
    t = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:O,s:s,s:I}", "name", name, "tenant", q->scope,
                  "volume", volume, "cpus", (json_int_t)cpus, "memory_bytes", (json_int_t)mem,
                  "disk_bytes", (json_int_t)disk, "boot", json_object_get(base, "boot"), "os",
                  os ? os : json_string_value(json_object_get(base, "os")), "created",
                  (json_int_t)time(NULL));
    if (doc_save(q, "template", q->scope, name, t, STORE_PUT_CREATE))
        goto done;
    /* The base of linked clones must never change again. */
    json_object_set_new(vol, "used_by", json_sprintf("template %s", name));
    if (doc_save(q, "volume", q->scope, volume, vol, STORE_PUT_UPDATE))
        goto done;
    reply_json(q->r, 201, json_incref(t));
done:
    /* A refused template leaves no copy of the VM's disk behind. */
    if (from_vm && vol && q->r->status >= 300) {
        char err[RT_ERR_LEN];

        rt_volume_delete(q->d, q->scope, name, err);
    }
    json_decref(t);
    json_decref(base);
    json_decref(vol);
    json_decref(body);
}

struct clone_walk {
    const char *tenant, *name;
    char vm[2 * STORE_NAME_LEN];
};

static int each_template_user(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct clone_walk *w = arg;
    json_t *vm = json_loads(doc, 0, NULL), *t = json_object_get(vm, "template");
    const char *tt = json_string_value(json_object_get(t, "tenant"));
    const char *tn = json_string_value(json_object_get(t, "name"));
    int found = tt && tn && !strcmp(tt, w->tenant) && !strcmp(tn, w->name);

    if (found)
        snprintf(w->vm, sizeof(w->vm), "%s%s%s", tenant, tenant[0] ? "/" : "", name);
    json_decref(vm);
    return found;
}

void api_template_delete(struct req *q)
{
    struct clone_walk w = {q->scope, q->seg[1], ""};
    json_t *t, *vol = NULL;
    const char *volume;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    t = doc_load(q, "template", q->scope, q->seg[1], "template");
    if (!t || need_route_role(q, "deleting a template"))
        goto done;
    if (q->s->ops->doc_list(q->s, "vm", NULL, each_template_user, &w) > 0) {
        reply_error(q->r, 409, "name", "template '%s' is the base of VM %s", q->seg[1], w.vm);
        goto done;
    }
    if (q->s->ops->doc_delete(q->s, "template", q->scope, q->seg[1])) {
        reply_store(q, "template delete", -EIO);
        goto done;
    }
    /* Its volume stays, free again (the tenant may delete it). */
    volume = json_string_value(json_object_get(t, "volume"));
    vol = volume ? doc_load(q, "volume", q->scope, volume, "volume") : NULL;
    if (vol) {
        json_object_set_new(vol, "used_by", json_null());
        if (doc_save(q, "volume", q->scope, volume, vol, STORE_PUT_UPDATE))
            goto done;
    }
    api_response_free(q->r);
    reply_empty(q->r);
done:
    json_decref(vol);
    json_decref(t);
}

/* ---- Shipped templates ---- */

/* Registers one shipped template in the platform's tenant: its base volume (made by rt from
 * the shipped image) and its document. Already registered: nothing to do. */
static int shipped_template(struct daemon *d, const struct rt_shipped *sh, char *err)
{
    struct store *s = d->store;
    char *text = NULL;
    json_t *vol = NULL, *t = NULL;
    int ret;

    if (!s->ops->doc_get(s, "template", "", sh->name, &text)) {
        free(text);
        return 0;
    }
    vol = api_volume_new("", sh->name, "qcow2", sh->disk_bytes, NULL, NULL);
    json_object_set_new(vol, "used_by", json_sprintf("template %s", sh->name));
    t = json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:{s:s,s:s*,s:s},s:s,s:I}", "name", sh->name, "tenant",
                  "", "volume", sh->name, "cpus", sh->cpus, "memory_bytes",
                  (json_int_t)sh->memory_bytes, "disk_bytes", (json_int_t)sh->disk_bytes, "boot",
                  "kernel", sh->kernel, "initrd", sh->initrd[0] ? sh->initrd : NULL, "cmdline",
                  sh->cmdline, "os", sh->os, "created", (json_int_t)time(NULL));
    if (!vol || !t) {
        ret = -ENOMEM;
        snprintf(err, STORE_ERR_LEN, "out of memory");
        goto done;
    }
    ret = s->ops->begin(s);
    if (!ret) {
        char *v = json_dumps(vol, JSON_COMPACT | JSON_SORT_KEYS);
        char *tt = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);

        ret = v && tt ? 0 : -ENOMEM;
        /* A volume of that name left by an earlier, interrupted registration is replaced. */
        if (!ret)
            s->ops->doc_delete(s, "volume", "", sh->name);
        if (!ret)
            ret = s->ops->doc_put(s, "volume", "", sh->name, v, STORE_PUT_CREATE);
        if (!ret)
            ret = s->ops->doc_put(s, "template", "", sh->name, tt, STORE_PUT_CREATE);
        free(v);
        free(tt);
        if (!ret)
            ret = s->ops->commit(s);
        if (ret) {
            snprintf(err, STORE_ERR_LEN, "template %.63s: %.400s", sh->name, store_error(s));
            s->ops->rollback(s);
        }
    }
    if (!ret)
        fprintf(stderr, "tesserad: registered the shipped template '%s' (%s)\n", sh->name, sh->os);
done:
    json_decref(t);
    json_decref(vol);
    return ret;
}

int api_shipped_templates(struct daemon *d, char *err)
{
    struct rt_shipped sh[RT_SHIPPED_MAX];
    size_t i, n = 0;
    int ret = rt_shipped_templates(d, sh, &n, err);

    for (i = 0; !ret && i < n; i++)
        ret = shipped_template(d, &sh[i], err);
    return ret;
}

/* ---- Volume snapshots (pool.h: external qcow2 layers) ---- */

/* The snapshot operation op on volume (tenant, name), whose document is doc; replies. A
 * volume in use or with dependants is refused by the pool (-EBUSY: 409). */
void api_snapshot_do(struct req *q, const char *tenant, const char *name, json_t *doc,
                     const char *op, const char *snap)
{
    char err[RT_ERR_LEN];
    json_t *list;
    int ret;

    if (!strcmp(json_string_value(json_object_get(doc, "format")) ?: "", "raw")) {
        reply_error(q->r, 409, "name", "volume '%s' is raw: only qcow2 volumes have snapshots",
                    name);
        return;
    }
    ret = op ? rt_volume_snapshot(q->d, tenant, name, op, snap, err) : 0;
    if (ret) {
        unsigned st = ret == -EBUSY || ret == -EEXIST ? 409 : ret == -ENOENT ? 404 : 500;

        reply_error(q->r, st, ret == -ENOENT ? "snapshot" : NULL, "%s", err);
        return;
    }
    if (op && !strcmp(op, "delete")) {
        reply_empty(q->r);
        return;
    }
    ret = rt_volume_snapshots(q->d, tenant, name, &list, err);
    if (ret) {
        reply_error(q->r, 500, NULL, "%s", err);
        return;
    }
    reply_json(q->r, op && !strcmp(op, "create") ? 201 : 200,
               json_pack("{s:s,s:o}", "volume", name, "snapshots", list));
}

/* The snapshot name of a create body; 0 or the 400 set. */
int api_snapshot_name(struct req *q, json_t **body, const char **snap)
{
    static const char *const fields[] = {"name", NULL};

    if (body_object(q, fields, "{\"name\": \"before-upgrade\"}", body))
        return -EINVAL;
    return body_name(q, *body, "name", true, snap);
}

void api_volume_snapshots(struct req *q)
{
    json_t *doc = doc_load(q, "volume", q->scope, q->seg[1], "volume"), *body = NULL;
    const char *snap = NULL, *op = NULL;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    if (!doc)
        return;
    if (strcmp(q->rq->method, "GET")) {
        if (need_route_role(q, "changing a volume's snapshots"))
            goto done;
        if (q->nseg == 3) {
            if (api_snapshot_name(q, &body, &snap))
                goto done;
            op = "create";
        } else {
            snap = q->seg[3];
            op = q->nseg == 5 ? "revert" : "delete";
        }
        if (json_is_string(json_object_get(doc, "used_by"))) {
            reply_error(q->r, 409, "name", "volume '%s' is used by %s", q->seg[1],
                        json_string_value(json_object_get(doc, "used_by")));
            goto done;
        }
    }
    api_snapshot_do(q, q->scope, q->seg[1], doc, op, snap);
done:
    json_decref(body);
    json_decref(doc);
}
