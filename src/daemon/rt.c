/* The daemon's runtime (rt.h): the default pool, VM run directories, seeds and processes.
 *
 * Layout under the state directory:
 *   pools/default/                the default pool (pool.h); volume (TENANT, NAME) is the key
 *                                 "TENANT/NAME", the platform's "_shared/NAME"
 *   vms/ID/                       a VM's run directory (vmproc.h): config.json, seed.iso,
 *                                 api.sock, console.sock, console.log, pid, exit, vmm.log.
 *                                 ID is the first 16 hex digits of SHA-256("TENANT/NAME"): a
 *                                 short path (a socket's path must fit 107 bytes) that no
 *                                 tenant can make collide with another's
 *   images/NAME/                  the shipped templates' boot files, copied once */
#include "daemon/rt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "base/fsdir.h"
#include "daemon/pool.h"
#include "daemon/seed.h"
#include "daemon/vmproc.h"

#define BUSYBOX_DISK (64ull << 20) /* the BusyBox template's (empty) data disk */

struct rt {
    struct pool *pool;
    struct vmsup *sup;
    char self[PATH_MAX]; /* tesserad's executable: the shim */
};

static struct rt *rt_of(struct daemon *d)
{
    return d->vm;
}

static void vol_key(const char *tenant, const char *name, char *key)
{
    snprintf(key, POOL_KEY_LEN, "%s/%s", tenant[0] ? tenant : "_shared", name);
}

/* The VM's id: see the layout above. */
static void vm_id(const char *tenant, const char *name, char *id)
{
    char key[2 * STORE_NAME_LEN + 1];
    uint8_t h[32];
    int i;

    snprintf(key, sizeof(key), "%s/%s", tenant, name);
    gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), h);
    for (i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", h[i]);
}

static int vm_dir(struct daemon *d, const char *tenant, const char *name, char *dir, char *err)
{
    char id[17];

    vm_id(tenant, name, id);
    if (snprintf(dir, PATH_MAX, "%s/vms/%s", d->state_dir, id) >= VMPROC_DIR_MAX) {
        snprintf(err, RT_ERR_LEN,
                 "the state directory's path is too long for a VM's sockets (at most %d bytes)",
                 VMPROC_DIR_MAX - 21);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* ---- Start and stop ---- */

static void on_exit_cb(void *arg, const char *id, const struct vmproc_info *info)
{
    struct daemon *d = arg;
    char tenant[STORE_NAME_LEN], name[STORE_NAME_LEN];
    const char *slash = strchr(id, '/');
    int status;

    if (!slash || (size_t)(slash - id) >= sizeof(tenant))
        return;
    snprintf(tenant, sizeof(tenant), "%.*s", (int)(slash - id), id);
    snprintf(name, sizeof(name), "%s", slash + 1);
    if (info->state != VMPROC_EXITED || !info->exit_known)
        status = 255;
    else if (info->exit_signal)
        status = 128 + info->exit_signal;
    else
        status = info->exit_status;
    pthread_mutex_lock(&d->lock);
    api_vm_exited(d, tenant, name, status);
    pthread_mutex_unlock(&d->lock);
}

static int mkdir_p(const char *path, mode_t mode)
{
    return mkdir(path, mode) && errno != EEXIST ? -errno : 0;
}

int rt_init(struct daemon *d, char *err)
{
    char path[PATH_MAX];
    struct rt *rt = calloc(1, sizeof(*rt));
    ssize_t n;
    int ret;

    if (!rt) {
        snprintf(err, STORE_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    n = readlink("/proc/self/exe", rt->self, sizeof(rt->self) - 1);
    if (n <= 0) {
        snprintf(err, STORE_ERR_LEN, "/proc/self/exe: %s", strerror(errno));
        free(rt);
        return -EIO;
    }
    rt->self[n] = '\0';
    const char *const dirs[] = {"pools", "vms", "images"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", d->state_dir, dirs[i]);
        ret = mkdir_p(path, 0700);
        if (ret) {
            snprintf(err, STORE_ERR_LEN, "%.400s: %s", path, strerror(-ret));
            free(rt);
            return ret;
        }
    }
    snprintf(path, sizeof(path), "%s/pools/default", d->state_dir);
    ret = pool_open(path, &rt->pool, err);
    if (ret) {
        free(rt);
        return ret;
    }
    ret = vmsup_create(on_exit_cb, d, &rt->sup);
    if (ret) {
        snprintf(err, STORE_ERR_LEN, "the VM supervisor: %s", strerror(-ret));
        pool_close(rt->pool);
        free(rt);
        return ret;
    }
    d->vm = rt;
    return 0;
}

void rt_fini(struct daemon *d)
{
    struct rt *rt = rt_of(d);

    if (!rt)
        return;
    vmsup_destroy(rt->sup);
    pool_close(rt->pool);
    free(rt);
    d->vm = NULL;
}

int rt_pool_stats(struct daemon *d, uint64_t *capacity, uint64_t *used)
{
    char err[POOL_ERR_LEN];

    return pool_stats(rt_of(d)->pool, capacity, used, err);
}

/* ---- Volumes ---- */

int rt_volume_create(struct daemon *d, const char *tenant, const char *name, const char *format,
                     uint64_t size, char *err)
{
    enum pool_format fmt;
    char key[POOL_KEY_LEN];

    vol_key(tenant, name, key);
    if (pool_parse_format(format, &fmt)) {
        snprintf(err, RT_ERR_LEN, "format %s: expected raw or qcow2", format);
        return -EINVAL;
    }
    /* Sizes are whole sectors: round up. */
    return volume_create(rt_of(d)->pool, key, fmt, (size + 511) & ~511ull, err);
}

int rt_volume_clone(struct daemon *d, const char *src_tenant, const char *src, const char *tenant,
                    const char *name, bool linked, char *err)
{
    char skey[POOL_KEY_LEN], dkey[POOL_KEY_LEN];

    vol_key(src_tenant, src, skey);
    vol_key(tenant, name, dkey);
    return linked ? volume_clone_linked(rt_of(d)->pool, skey, dkey, err)
                  : volume_clone_full(rt_of(d)->pool, skey, dkey, err);
}

int rt_volume_resize(struct daemon *d, const char *tenant, const char *name, uint64_t size,
                     char *err)
{
    char key[POOL_KEY_LEN];

    vol_key(tenant, name, key);
    return volume_resize(rt_of(d)->pool, key, (size + 511) & ~511ull, err);
}

int rt_volume_delete(struct daemon *d, const char *tenant, const char *name, char *err)
{
    char key[POOL_KEY_LEN];
    int ret;

    vol_key(tenant, name, key);
    ret = volume_delete(rt_of(d)->pool, key, err);
    return ret == -ENOENT ? 0 : ret;
}

int rt_volume_snapshot(struct daemon *d, const char *tenant, const char *name, const char *op,
                       const char *snap, char *err)
{
    char key[POOL_KEY_LEN];

    vol_key(tenant, name, key);
    if (!strcmp(op, "create"))
        return volume_snapshot_create(rt_of(d)->pool, key, snap, err);
    if (!strcmp(op, "revert"))
        return volume_snapshot_revert(rt_of(d)->pool, key, snap, err);
    return volume_snapshot_delete(rt_of(d)->pool, key, snap, err);
}

int rt_volume_snapshots(struct daemon *d, const char *tenant, const char *name, json_t **out,
                        char *err)
{
    struct volume_snapshot *list = NULL;
    char key[POOL_KEY_LEN];
    unsigned i, n = 0;
    int ret;

    vol_key(tenant, name, key);
    ret = volume_snapshot_list(rt_of(d)->pool, key, &list, &n, err);
    if (ret)
        return ret;
    *out = json_array();
    for (i = 0; *out && i < n; i++) {
        if (json_array_append_new(
                *out, json_pack("{s:s,s:I,s:I,s:b}", "name", list[i].name, "size_bytes",
                                (json_int_t)list[i].size_bytes, "allocated_bytes",
                                (json_int_t)list[i].allocated_bytes, "current", list[i].current))) {
            json_decref(*out);
            *out = NULL;
        }
    }
    free(list);
    if (!*out) {
        snprintf(err, RT_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int rt_volume_info(struct daemon *d, const char *tenant, const char *name,
                   struct rt_volume_info *out, char *err)
{
    struct volume_info vi;
    char key[POOL_KEY_LEN];
    int ret;

    vol_key(tenant, name, key);
    ret = volume_info(rt_of(d)->pool, key, &vi, err);
    if (ret)
        return ret;
    snprintf(out->format, sizeof(out->format), "%s", pool_format_name(vi.format));
    out->size_bytes = vi.size_bytes;
    out->allocated_bytes = vi.allocated_bytes;
    return 0;
}

/* ---- VMs ---- */

/* A MAC from the VM's id: stable across restarts, different per VM. */
static void vm_mac(const char *id, char *mac)
{
    snprintf(mac, 18, "52:54:00:%.2s:%.2s:%.2s", id, id + 2, id + 4);
}

static int write_file(const char *path, const char *text, char *err)
{
    char tmp[PATH_MAX + 8];
    size_t len = strlen(text);
    int fd;

    snprintf(tmp, sizeof(tmp), "%.4000s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) || close(fd) ||
        rename(tmp, path)) {
        snprintf(err, RT_ERR_LEN, "%.400s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        return -EIO;
    }
    return 0;
}

/* The seed from the VM's cloud_init object (api_vms.c checked its shape). */
/* The seed's inputs, kept in DIR/cloud-init.json: {"cloud_init", "instance_id", "hostname",
 * "mac"}. Checked at provisioning (fast), made into DIR/seed.iso at the first start: xorriso
 * takes tens of milliseconds that a create should not wait for. */
static int vm_seed_spec(const json_t *in, struct seed_json *sj, char *err)
{
    const char *inst = json_string_value(json_object_get(in, "instance_id"));
    const char *host = json_string_value(json_object_get(in, "hostname"));
    int ret;

    if (!inst || !host) {
        snprintf(err, RT_ERR_LEN, "cloud-init.json: instance_id and hostname are required");
        return -EINVAL;
    }
    ret = seed_spec_from_json(json_object_get(in, "cloud_init"), inst, host, sj, err);
    /* The NIC to configure is the VM's one NIC, found by its MAC (seed.h). */
    if (!ret && !sj->spec.mac)
        sj->spec.mac = json_string_value(json_object_get(in, "mac"));
    return ret;
}

static int vm_seed_prepare(const json_t *vm, const char *id, const char *mac, const char *dir,
                           char *err)
{
    char path[PATH_MAX + 32], instance[64];
    struct seed_json sj;
    json_t *in;
    char *text;
    int ret;

    snprintf(instance, sizeof(instance), "tessera-%s-%" JSON_INTEGER_FORMAT, id,
             json_integer_value(json_object_get(vm, "created")));
    in = json_pack("{s:O,s:s,s:O,s:s}", "cloud_init", json_object_get(vm, "cloud_init"),
                   "instance_id", instance, "hostname", json_object_get(vm, "name"), "mac", mac);
    if (!in) {
        snprintf(err, RT_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    ret = vm_seed_spec(in, &sj, err);
    text = ret ? NULL : json_dumps(in, JSON_COMPACT);
    json_decref(in);
    if (ret)
        return ret;
    if (!text) {
        snprintf(err, RT_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/cloud-init.json", dir);
    ret = write_file(path, text, err);
    free(text);
    /* A changed seed is made again at the next start. */
    snprintf(path, sizeof(path), "%s/seed.iso", dir);
    unlink(path);
    return ret;
}

/* Makes DIR/seed.iso from DIR/cloud-init.json unless it exists. */
static int vm_seed_build(const char *dir, char *err)
{
    char path[PATH_MAX + 32];
    struct seed_json sj;
    json_error_t jerr;
    json_t *in;
    int ret;

    snprintf(path, sizeof(path), "%s/seed.iso", dir);
    if (!access(path, F_OK))
        return 0;
    snprintf(path, sizeof(path), "%s/cloud-init.json", dir);
    in = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!in) {
        snprintf(err, RT_ERR_LEN, "%.300s: %.150s", path, jerr.text);
        return -EINVAL;
    }
    ret = vm_seed_spec(in, &sj, err);
    snprintf(path, sizeof(path), "%s/seed.iso", dir);
    if (!ret)
        ret = seed_build(&sj.spec, path, err);
    json_decref(in);
    return ret;
}

/* The VM's disk and NIC rate limits (its resources' disk and network objects, 0 for none)
 * into its config document's first disk and first NIC: the keys the VMM reads
 * (docs/vm-config.md, "Rate limits"), set where nonzero and removed where 0. */
static void limits_into_config(json_t *cfg, const json_t *vm)
{
    const json_t *res = json_object_get(vm, "resources");
    const char *const groups[] = {"disk", "network"}, *const lists[] = {"disks", "nics"};
    const char *key;
    json_t *v;

    for (size_t g = 0; g < 2; g++) {
        json_t *dev = json_array_get(json_object_get(cfg, lists[g]), 0);

        json_object_foreach(json_object_get(res, groups[g]), key, v)
        {
            if (!dev)
                break;
            if (json_integer_value(v) > 0)
                json_object_set(dev, key, v);
            else
                json_object_del(dev, key);
        }
    }
}

int rt_vm_limits(struct daemon *d, const char *tenant, const json_t *vm, char *err)
{
    const char *name = json_string_value(json_object_get(vm, "name"));
    char dir[PATH_MAX], path[PATH_MAX + 16], *text;
    json_error_t jerr;
    json_t *cfg;
    int ret = vm_dir(d, tenant, name, dir, err);

    if (ret)
        return ret;
    snprintf(path, sizeof(path), "%s/config.json", dir);
    cfg = json_load_file(path, 0, &jerr);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        snprintf(err, RT_ERR_LEN, "%.300s: %.100s", path, jerr.text);
        return -EIO;
    }
    limits_into_config(cfg, vm);
    text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    if (!text) {
        snprintf(err, RT_ERR_LEN, "VM %s: cannot write its config (out of memory)", name);
        return -ENOMEM;
    }
    ret = write_file(path, text, err);
    free(text);
    return ret;
}

int rt_vm_provision(struct daemon *d, const char *tenant, const json_t *vm, const json_t *tmpl,
                    char *err)
{
    const char *name = json_string_value(json_object_get(vm, "name"));
    const json_t *boot = json_object_get(tmpl, "boot"), *f;
    char dir[PATH_MAX], id[17], mac[18], key[POOL_KEY_LEN], disk[PATH_MAX], path[PATH_MAX + 16];
    char backend[1024] = "user", mem[32];
    char csock[PATH_MAX + 16], clog[PATH_MAX + 16], asock[PATH_MAX + 16];
    char gsock[PATH_MAX + 16];
    json_t *cfg = NULL;
    char *text = NULL;
    size_t i, n = 4;
    int ret;

    ret = vm_dir(d, tenant, name, dir, err);
    if (ret)
        return ret;
    vm_id(tenant, name, id);
    vm_mac(id, mac);
    /* On virtual networks its first NIC's MAC is the one its seed configures. */
    f = json_array_get(json_object_get(vm, "nics"), 0);
    if (json_is_string(json_object_get(f, "mac")))
        snprintf(mac, sizeof(mac), "%s", json_string_value(json_object_get(f, "mac")));
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, RT_ERR_LEN, "%.400s: %s", dir, strerror(errno));
        return -errno;
    }
    vol_key(tenant, json_string_value(json_object_get(vm, "volume")), key);
    ret = volume_path(rt_of(d)->pool, key, disk, sizeof(disk), err);
    if (ret)
        return ret;
    ret = vm_seed_prepare(vm, id, mac, dir, err);
    if (ret)
        return ret;
    snprintf(path, sizeof(path), "%s/seed.iso", dir);
    json_array_foreach(json_object_get(vm, "port_forwards"), i, f)
    {
        n += (size_t)snprintf(backend + n, n < sizeof(backend) ? sizeof(backend) - n : 0,
                              ",hostfwd=%s:%s:%" JSON_INTEGER_FORMAT "-:%" JSON_INTEGER_FORMAT,
                              json_string_value(json_object_get(f, "proto")),
                              json_string_value(json_object_get(f, "host_addr")),
                              json_integer_value(json_object_get(f, "host_port")),
                              json_integer_value(json_object_get(f, "guest_port")));
    }
    if (n >= sizeof(backend)) {
        snprintf(err, RT_ERR_LEN, "too many port forwards");
        return -EINVAL;
    }
    snprintf(mem, sizeof(mem), "%" JSON_INTEGER_FORMAT "M",
             json_integer_value(json_object_get(vm, "memory_bytes")) >> 20);
    snprintf(csock, sizeof(csock), "%s/console.sock", dir);
    snprintf(clog, sizeof(clog), "%s/console.log", dir);
    snprintf(asock, sizeof(asock), "%s/api.sock", dir);
    snprintf(gsock, sizeof(gsock), "%s/agent.sock", dir);
    cfg = json_pack("{s:i,s:I,s:s,s:{},s:[{s:s,s:s,s:s},{s:s,s:s,s:b,s:s}],s:[{s:s,s:s}],"
                    "s:[{s:s},{s:s}],s:{s:s,s:s,s:s},s:s,s:s}",
                    "version", 1, "cpus", json_integer_value(json_object_get(vm, "cpus")), "memory",
                    mem, "boot", "disks", "path", disk, "format", "qcow2", "serial", "root", "path",
                    path, "format", "raw", "readonly", 1, "serial", "cidata", "nics", "backend",
                    backend, "mac", mac, "devices", "type", "rng", "type", "balloon", "console",
                    "mode", "socket", "socket", csock, "log", clog, "api_socket", asock,
                    "agent_socket", gsock);
    /* The template's boot files: a kernel always, an initrd and a command line when it has
     * them. */
    if (cfg) {
        json_t *b = json_object_get(cfg, "boot");
        const char *const keys[] = {"kernel", "initrd", "cmdline"};

        for (i = 0; i < 3; i++)
            if (json_is_string(json_object_get(boot, keys[i])))
                json_object_set(b, keys[i], json_object_get(boot, keys[i]));
    }
    /* NICs on virtual networks instead of the user-mode one: taps the daemon made and moves
     * into the networks' namespaces once the VMM opened them (docs/networks.md). */
    if (cfg && json_array_size(json_object_get(vm, "nics"))) {
        json_t *nics = json_array(), *nic;
        char spec[64];

        json_array_foreach(json_object_get(vm, "nics"), i, nic)
        {
            snprintf(spec, sizeof(spec), "tap,ifname=%.15s",
                     json_string_value(json_object_get(nic, "tap")));
            json_array_append_new(
                nics, json_pack("{s:s,s:O}", "backend", spec, "mac", json_object_get(nic, "mac")));
        }
        json_object_set_new(cfg, "nics", nics);
    }
    if (cfg) {
        limits_into_config(cfg, vm);
        text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    }
    json_decref(cfg);
    if (!text) {
        snprintf(err, RT_ERR_LEN, "VM %s: cannot build its config (out of memory)", name);
        return -ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/config.json", dir);
    ret = write_file(path, text, err);
    free(text);
    return ret;
}

int rt_vm_start(struct daemon *d, const char *tenant, const char *name, int64_t *pid, char *err)
{
    char dir[PATH_MAX], config[PATH_MAX + 16], id[2 * STORE_NAME_LEN + 1];
    char cg_files[CGROUP_PROCS_MAX][PATH_MAX];
    const char *cg_ptrs[CGROUP_PROCS_MAX];
    struct rt *rt = rt_of(d);
    struct vmproc_info info;
    struct vmproc_spec spec = {
        .id = name, .dir = dir, .config = config, .shim = rt->self, .tessera = d->tessera};
    int ret;

    if (!d->tessera[0]) {
        snprintf(err, RT_ERR_LEN, "no VMM: 'tessera' is not beside tesserad's executable");
        return -ENOENT;
    }
    ret = vm_dir(d, tenant, name, dir, err);
    if (ret)
        return ret;
    snprintf(config, sizeof(config), "%s/config.json", dir);
    ret = vm_seed_build(dir, err);
    if (ret)
        return ret;
    if (d->cg.mode != CGROUP_NONE) {
        char rel[PATH_MAX];

        cgroup_rel_vm(tenant, name, rel);
        if (cgroup_procs_files(&d->cg, rel, cg_files, &spec.ncgroups)) {
            snprintf(err, RT_ERR_LEN, "vm %s: its control group's path is too long", name);
            return -ENAMETOOLONG;
        }
        for (size_t i = 0; i < spec.ncgroups; i++)
            cg_ptrs[i] = cg_files[i];
        spec.cgroups = cg_ptrs;
    }
    ret = vmproc_start(&spec, &info, err);
    if (ret)
        return ret;
    *pid = info.pid;
    snprintf(id, sizeof(id), "%s/%s", tenant, name);
    /* Watched from now on; an exit before this point is reported at once by the watch. */
    vmsup_unwatch(rt->sup, id);
    ret = vmsup_watch(rt->sup, id, dir, err);
    return ret;
}

int rt_vm_action(struct daemon *d, const char *tenant, const char *name, const char *action,
                 char *err)
{
    char dir[PATH_MAX];
    int ret = vm_dir(d, tenant, name, dir, err);

    if (ret)
        return ret;
    if (!strcmp(action, "reboot"))
        action = "reset";
    ret = vmproc_action(dir, action, 30, err);
    /* 1: it did not stop in time and was killed, which err says; the VM is stopped. */
    return ret > 0 ? 0 : ret;
}

int rt_vm_probe(struct daemon *d, const char *tenant, const char *name, int64_t *pid, int *status)
{
    char dir[PATH_MAX], err[RT_ERR_LEN], id[2 * STORE_NAME_LEN + 1];
    struct vmproc_info info;

    if (vm_dir(d, tenant, name, dir, err) || vmproc_probe(dir, &info, err))
        return -ENOENT;
    switch (info.state) {
    case VMPROC_RUNNING:
        *pid = info.pid;
        snprintf(id, sizeof(id), "%s/%s", tenant, name);
        vmsup_unwatch(rt_of(d)->sup, id);
        if (vmsup_watch(rt_of(d)->sup, id, dir, err))
            fprintf(stderr, "tesserad: VM %s: cannot watch it: %s\n", id, err);
        return !strcmp(info.vm_state, "paused") ? 2 : 1;
    case VMPROC_EXITED:
        *status = !info.exit_known   ? 255
                  : info.exit_signal ? 128 + info.exit_signal
                                     : info.exit_status;
        return 0;
    default: return -ENOENT;
    }
}

int rt_vm_console_path(struct daemon *d, const char *tenant, const char *name, char *path,
                       size_t len)
{
    char dir[PATH_MAX], err[RT_ERR_LEN];
    int ret = vm_dir(d, tenant, name, dir, err);

    if (ret)
        return ret;
    return snprintf(path, len, "%s/console.sock", dir) >= (int)len ? -ENAMETOOLONG : 0;
}

int rt_vm_call(struct daemon *d, const char *tenant, const char *name, const char *method,
               const char *path, const json_t *body, json_t **out, char *err)
{
    char dir[PATH_MAX], *text = NULL, *btext = NULL;
    int ret = vm_dir(d, tenant, name, dir, err);

    if (out)
        *out = NULL;
    if (ret)
        return ret;
    if (body && !(btext = json_dumps(body, JSON_COMPACT)))
        return -ENOMEM;
    ret = vmproc_call(dir, method, path, btext, &text, err);
    free(btext);
    if (!ret && out && text)
        *out = json_loads(text, 0, NULL);
    free(text);
    return ret;
}

int rt_vm_stats(struct daemon *d, const char *tenant, const char *name, json_t **out)
{
    char dir[PATH_MAX], err[RT_ERR_LEN], path[64], *text = NULL;
    struct vmproc_info info;
    unsigned long ut, st;
    FILE *f;
    int ret = vm_dir(d, tenant, name, dir, err);

    *out = NULL;
    if (!ret)
        ret = vmproc_probe(dir, &info, err);
    if (ret || info.state != VMPROC_RUNNING)
        return ret ? ret : -ESRCH;
    ret = vmproc_get(dir, &text, err);
    if (ret)
        return ret;
    *out = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return -EIO;
    }
    /* CPU time from the kernel's own count for the VMM's process (proc(5): fields 14, 15). */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)info.pid);
    f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                   &st) == 2)
            json_object_set_new(*out, "process",
                                json_pack("{s:f}", "cpu_seconds",
                                          (double)(ut + st) / (double)sysconf(_SC_CLK_TCK)));
        fclose(f);
    }
    return 0;
}

int rt_volume_import(struct daemon *d, const char *tenant, const char *name, const char *path,
                     uint64_t max, char *err)
{
    struct volume_info vi;
    char key[POOL_KEY_LEN];
    int fd, ret;

    vol_key(tenant, name, key);
    ret = volume_info(rt_of(d)->pool, key, &vi, err);
    if (ret)
        return ret;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, RT_ERR_LEN, "%.400s: %s", path, strerror(errno));
        return -errno;
    }
    /* The volume keeps its format; the upload may be either. */
    ret = volume_import(rt_of(d)->pool, key, vi.format, fd, max, err);
    close(fd);
    return ret;
}

int rt_vm_console_log(struct daemon *d, const char *tenant, const char *name, size_t max,
                      char **text)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], err[RT_ERR_LEN];
    struct stat st;
    ssize_t n;
    size_t i;
    int fd, ret = vm_dir(d, tenant, name, dir, err);

    *text = NULL;
    if (ret)
        return ret;
    snprintf(path, sizeof(path), "%s/console.log", dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if ((size_t)st.st_size < max)
        max = (size_t)st.st_size;
    *text = malloc(max + 1);
    if (!*text) {
        close(fd);
        return -ENOMEM;
    }
    n = pread(fd, *text, max, st.st_size - (off_t)max);
    close(fd);
    if (n < 0) {
        free(*text);
        *text = NULL;
        return -EIO;
    }
    for (i = 0; i < (size_t)n; i++) {
        unsigned char c = (unsigned char)(*text)[i];

        if (!(c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)))
            (*text)[i] = '?';
    }
    (*text)[n] = '\0';
    return 0;
}

int rt_vm_remove(struct daemon *d, const char *tenant, const char *name, char *err)
{
    char dir[PATH_MAX], id[2 * STORE_NAME_LEN + 1];
    int ret = vm_dir(d, tenant, name, dir, err);

    if (ret)
        return ret;
    snprintf(id, sizeof(id), "%s/%s", tenant, name);
    vmsup_unwatch(rt_of(d)->sup, id);
    /* Everything in it is ours (config, seed, sockets, logs, the shim's records): no
     * subfolders, no links followed. */
    ret = fsdir_remove_flat(dir);
    if (ret)
        snprintf(err, RT_ERR_LEN, "%.400s: %s", dir, strerror(-ret));
    return ret;
}

/* ---- Shipped templates ---- */

/* Copies src to dst (0600) unless dst exists. */
static int copy_once(const char *src, const char *dst, char *err)
{
    char buf[1 << 16], tmp[PATH_MAX + 8];
    int in, out = -1, ret = 0;
    ssize_t n;

    if (!access(dst, F_OK))
        return 0;
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, RT_ERR_LEN, "%.400s: %s", src, strerror(errno));
        return -errno;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        ret = -errno;
    while (!ret && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 || write(out, buf, (size_t)n) != n)
            ret = -errno ? -errno : -EIO;
    }
    if (!ret && (fsync(out) || rename(tmp, dst)))
        ret = -errno;
    if (out >= 0)
        close(out);
    close(in);
    if (ret) {
        unlink(tmp);
        snprintf(err, RT_ERR_LEN, "copying %.200s to %.200s: %s", src, dst, strerror(-ret));
    }
    return ret;
}

static int shipped_busybox(struct daemon *d, struct rt_shipped *sh, char *err)
{
    char src[PATH_MAX], dir[DAEMON_STATE_DIR_MAX + 32], key[POOL_KEY_LEN], path[PATH_MAX + 32];
    const char *bin = dirname(strcpy(src, d->tessera));
    int ret;

    memset(sh, 0, sizeof(*sh));
    snprintf(sh->name, sizeof(sh->name), "busybox");
    snprintf(sh->os, sizeof(sh->os), "busybox");
    snprintf(sh->cmdline, sizeof(sh->cmdline), "console=ttyS0");
    sh->cpus = 1;
    sh->memory_bytes = 256ull << 20;
    sh->disk_bytes = BUSYBOX_DISK;
    snprintf(dir, sizeof(dir), "%s/images/busybox", d->state_dir);
    snprintf(sh->kernel, sizeof(sh->kernel), "%s/Image", dir);
    snprintf(sh->initrd, sizeof(sh->initrd), "%s/initramfs.cpio.gz", dir);
    /* The default guest that guest/build.sh links beside the binaries (build/guest/). */
    snprintf(path, sizeof(path), "%s/guest/Image", bin);
    if (access(path, R_OK))
        return -ENOENT;
    ret = mkdir_p(dir, 0700);
    if (!ret)
        ret = copy_once(path, sh->kernel, err);
    snprintf(path, sizeof(path), "%s/guest/initramfs.cpio.gz", bin);
    if (!ret)
        ret = copy_once(path, sh->initrd, err);
    if (ret)
        return ret;
    vol_key("", sh->name, key);
    ret = volume_create(rt_of(d)->pool, key, POOL_FORMAT_QCOW2, sh->disk_bytes, err);
    return ret == -EEXIST ? 0 : ret;
}

/* A built template beside the binaries: build/templates/NAME/template.json (templates/NAME/
 * build.sh links it to its cache entry) with its boot files and disk image. The file is ours
 * but read as carefully as any: names, numbers and file names are checked. */
static int shipped_built(struct daemon *d, const char *name, struct rt_shipped *sh, char *err)
{
    char src[PATH_MAX], from[PATH_MAX + 64], dir[DAEMON_STATE_DIR_MAX + 80], key[POOL_KEY_LEN];
    const char *bin = dirname(strcpy(src, d->tessera)), *kernel, *initrd, *cmdline, *os, *vol;
    json_t *t, *boot;
    json_error_t jerr;
    int fd, ret;

    memset(sh, 0, sizeof(*sh));
    snprintf(from, sizeof(from), "%s/templates/%s/template.json", bin, name);
    if (access(from, R_OK))
        return -ENOENT;
    t = json_load_file(from, JSON_REJECT_DUPLICATES, &jerr);
    boot = json_object_get(t, "boot");
    kernel = json_string_value(json_object_get(boot, "kernel"));
    initrd = json_string_value(json_object_get(boot, "initrd"));
    cmdline = json_string_value(json_object_get(boot, "cmdline"));
    os = json_string_value(json_object_get(t, "os"));
    vol = json_string_value(json_object_get(t, "volume"));
    if (!t || !kernel || !cmdline || !os || !vol || strchr(kernel, '/') ||
        (initrd && strchr(initrd, '/')) || strchr(vol, '/') ||
        json_integer_value(json_object_get(t, "cpus")) < 1 ||
        json_integer_value(json_object_get(t, "cpus")) > 8 ||
        json_integer_value(json_object_get(t, "memory_bytes")) < (16 << 20) ||
        json_integer_value(json_object_get(t, "disk_bytes")) < (1 << 20)) {
        snprintf(err, RT_ERR_LEN, "%.300s: not a template description (%.100s)", from,
                 t ? "boot.kernel, boot.cmdline, os, volume, cpus, memory_bytes, disk_bytes"
                   : jerr.text);
        json_decref(t);
        return -EINVAL;
    }
    snprintf(sh->name, sizeof(sh->name), "%s", name);
    snprintf(sh->os, sizeof(sh->os), "%s", os);
    snprintf(sh->cmdline, sizeof(sh->cmdline), "%s", cmdline);
    sh->cpus = (int)json_integer_value(json_object_get(t, "cpus"));
    sh->memory_bytes = (uint64_t)json_integer_value(json_object_get(t, "memory_bytes"));
    sh->disk_bytes = (uint64_t)json_integer_value(json_object_get(t, "disk_bytes"));
    snprintf(dir, sizeof(dir), "%s/images/%s", d->state_dir, name);
    snprintf(sh->kernel, sizeof(sh->kernel), "%s/%s", dir, kernel);
    if (initrd)
        snprintf(sh->initrd, sizeof(sh->initrd), "%s/%s", dir, initrd);
    ret = mkdir_p(dir, 0700);
    snprintf(from, sizeof(from), "%s/templates/%s/%s", bin, name, kernel);
    if (!ret)
        ret = copy_once(from, sh->kernel, err);
    snprintf(from, sizeof(from), "%s/templates/%s/%s", bin, name, initrd ? initrd : "");
    if (!ret && initrd)
        ret = copy_once(from, sh->initrd, err);
    /* The disk goes into the pool through the import's checks, once. */
    vol_key("", name, key);
    snprintf(from, sizeof(from), "%s/templates/%s/%s", bin, name, vol);
    if (!ret && volume_path(rt_of(d)->pool, key, src, sizeof(src), err) == -ENOENT) {
        fprintf(stderr, "tesserad: importing the %s template's disk (once)\n", name);
        fd = open(from, O_RDONLY | O_CLOEXEC);
        ret = fd < 0
                  ? -errno
                  : volume_import(rt_of(d)->pool, key, POOL_FORMAT_QCOW2, fd, sh->disk_bytes, err);
        if (fd < 0)
            snprintf(err, RT_ERR_LEN, "%.400s: %s", from, strerror(errno));
        else
            close(fd);
    }
    json_decref(t);
    return ret;
}

int rt_shipped_templates(struct daemon *d, struct rt_shipped *out, size_t *n, char *err)
{
    static const char *const built[] = {"debian-13"};
    size_t i;
    int ret;

    *n = 0;
    if (!d->tessera[0])
        return 0;
    ret = shipped_busybox(d, &out[*n], err);
    if (!ret)
        (*n)++;
    else if (ret != -ENOENT)
        return ret;
    for (i = 0; i < sizeof(built) / sizeof(built[0]) && *n < RT_SHIPPED_MAX; i++) {
        ret = shipped_built(d, built[i], &out[*n], err);
        if (!ret)
            (*n)++;
        else if (ret != -ENOENT)
            /* A broken template is reported, not fatal: the daemon serves the others. */
            fprintf(stderr, "tesserad: template %s: %s\n", built[i], err);
    }
    return 0;
}
