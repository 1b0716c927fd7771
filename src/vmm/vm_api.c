/* The control API's operations for one VM: the bridge between src/vmm/control.c (HTTP and
 * JSON) and the machine. Every function runs on the API thread, one at a time (the server
 * serialises them), and never on the data path. */
#include "vmm/vm_api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hw/virtio/virtio_balloon.h"
#include "machine/virt.h"

static json_t *config_json(const struct virt_config *cfg)
{
    json_t *devs = json_array();

    for (unsigned i = 0; i < cfg->ndevices; i++)
        json_array_append_new(devs, json_pack("{s:s, s:s}", "type", cfg->devices[i].type, "options",
                                              cfg->devices[i].opts));
    return json_pack("{s:i, s:I, s:s?, s:s?, s:s?, s:s?, s:o}", "cpus", (int)cfg->cpus, "mem_bytes",
                     (json_int_t)cfg->mem_size, "bios", cfg->bios, "kernel", cfg->kernel, "initrd",
                     cfg->initrd, "append", cfg->append, "devices", devs);
}

static int api_describe(void *vm, json_t **out)
{
    struct virt_machine *m = vm;
    struct virt_info info;

    virt_get_info(m, &info);
    *out = json_pack("{s:s, s:f, s:o}", "state", info.paused ? "paused" : "running", "uptime_s",
                     (double)info.uptime_ns / 1e9, "config", config_json(virt_get_config(m)));
    return *out ? 0 : -ENOMEM;
}

static int api_pause(void *vm)
{
    return virt_pause(vm);
}

static int api_resume(void *vm)
{
    return virt_resume(vm);
}

/* Graceful shutdown goes through the guest agent, which the VMM does not drive yet. */
static int api_shutdown(void *vm, unsigned timeout_s)
{
    return -ENOTSUP;
}

static int api_stop(void *vm)
{
    virt_request_exit(vm, 0);
    return 0;
}

static int api_reset(void *vm)
{
    virt_request_reset(vm);
    return 0;
}

static int api_balloon_set(void *vm, uint64_t target_bytes)
{
    struct virt_machine *m = vm;
    struct virtio_balloon *b = virt_find_device(m, "balloon", 0);

    if (!b)
        return -ENODEV;
    if (target_bytes > virt_get_config(m)->mem_size)
        return -EINVAL;
    virtio_balloon_set_target(b, target_bytes);
    return 0;
}

static json_t *balloon_json(struct virtio_balloon *b)
{
    static const char *const names[BALLOON_STAT_COUNT] = {
        "swap_in",         "swap_out",          "major_faults",
        "minor_faults",    "free_bytes",        "total_bytes",
        "available_bytes", "disk_caches_bytes", "hugetlb_allocations",
        "hugetlb_failures"};
    struct balloon_info info;
    json_t *stats = json_object();

    virtio_balloon_get_info(b, &info);
    for (unsigned i = 0; i < BALLOON_STAT_COUNT; i++) {
        if (info.stats.valid & (1u << i))
            json_object_set_new(stats, names[i], json_integer((json_int_t)info.stats.value[i]));
    }
    return json_pack("{s:I, s:I, s:I, s:o}", "target_bytes", (json_int_t)info.target_bytes,
                     "actual_bytes", (json_int_t)info.actual_bytes, "released_pages",
                     (json_int_t)info.released_pages, "guest_stats", stats);
}

static int api_balloon_get(void *vm, json_t **out)
{
    struct virtio_balloon *b = virt_find_device(vm, "balloon", 0);

    if (!b)
        return -ENODEV;
    *out = balloon_json(b);
    return *out ? 0 : -ENOMEM;
}

/* The VMM process's resident memory, from /proc/self/statm (pages). */
static uint64_t rss_bytes(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static int api_stats(void *vm, json_t **out)
{
    struct virt_machine *m = vm;
    struct virtio_balloon *b = virt_find_device(m, "balloon", 0);
    struct virt_info info;
    json_t *cpus = json_array();

    virt_get_info(m, &info);
    for (unsigned i = 0; i < info.cpus; i++)
        json_array_append_new(cpus, json_pack("{s:i, s:I}", "index", (int)i, "instructions",
                                              (json_int_t)info.instret[i]));
    *out = json_pack("{s:f, s:I, s:o, s:{s:I, s:I}}", "uptime_s", (double)info.uptime_ns / 1e9,
                     "guest_mtime", (json_int_t)info.mtime, "vcpus", cpus, "memory", "guest_bytes",
                     (json_int_t)info.mem_size, "host_rss_bytes", (json_int_t)rss_bytes());
    if (*out && b)
        json_object_set_new(*out, "balloon", balloon_json(b));
    return *out ? 0 : -ENOMEM;
}

static const struct control_ops vm_api_ops = {
    .describe = api_describe,
    .pause = api_pause,
    .resume = api_resume,
    .shutdown = api_shutdown,
    .stop = api_stop,
    .reset = api_reset,
    .balloon_set = api_balloon_set,
    .balloon_get = api_balloon_get,
    .stats = api_stats,
};

int vm_api_start(struct virt_machine *m, const char *sock_path, struct control **out, char *err)
{
    return control_start(sock_path, &vm_api_ops, m, out, err);
}
