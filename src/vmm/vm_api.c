/* The control API's operations for one VM: the bridge between src/vmm/control.c (HTTP and
 * JSON) and the machine. Every function runs on the API thread, one at a time (the server
 * serialises them), and never on the data path. */
#include "vmm/vm_api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bytering.h"
#include "base/log.h"
#include "base/time.h"
#include "block/block.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtio_balloon.h"
#include "machine/virt.h"
#include "vmm/agent_client.h"
#include "vmm/migrate.h"
#include "vmm/snapshots.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate.h"

_Static_assert(SNAPSHOT_MAX_DISKS == VIRT_VIRTIO_SLOTS, "snapshots.h counts device slots");

/* One VM's API: the server and the fallback timer of a graceful shutdown. */
struct vm_api {
    struct virt_machine *m;
    struct control *control;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t timer;
    bool timer_running;
    bool stopping;
    uint64_t deadline_ns;     /* hard stop at this CLOCK_MONOTONIC time */
    struct vm_migration *mig; /* the last migration started, or NULL */
    char *sock_path;          /* where the API listens; part of the config describe shows */
};

static int api_describe(void *vm, json_t **out)
{
    struct vm_api *a = vm;
    struct virt_machine *m = a->m;
    struct virt_info info;
    struct vmconfig vc;
    char err[VMCONFIG_ERR_LEN];
    json_t *doc;
    bool shutting_down;

    if (vmconfig_from_virt(virt_get_config(m), &vc, err)) {
        log_error("describe: %s", err);
        return -EIO;
    }
    vc.api_socket = strdup(a->sock_path);
    doc = vc.api_socket ? vmconfig_to_json(&vc) : NULL;
    vmconfig_free(&vc);
    if (!doc)
        return -ENOMEM;
    virt_get_info(m, &info);
    pthread_mutex_lock(&a->lock);
    shutting_down = a->timer_running;
    pthread_mutex_unlock(&a->lock);
    *out = json_pack("{s:s, s:f, s:o}", "state",
                     shutting_down ? "shutting-down"
                     : info.paused ? "paused"
                                   : "running",
                     "uptime_s", (double)info.uptime_ns / 1e9, "config", doc);
    return *out ? 0 : -ENOMEM;
}

static int api_pause(void *vm)
{
    return virt_pause(((struct vm_api *)vm)->m);
}

static int api_resume(void *vm)
{
    return virt_resume(((struct vm_api *)vm)->m);
}

/* Asks the guest agent to power the guest off. It answers before it goes down. */
static int agent_poweroff(const char *path)
{
    return agent_client_request(path,
                                "{\"id\":\"api-shutdown\",\"cmd\":\"shutdown\","
                                "\"mode\":\"poweroff\"}\n",
                                3000, NULL, 0);
}

/* Hard-stops the VM at a->deadline_ns unless the API is being torn down first. */
static void *shutdown_timer(void *opaque)
{
    struct vm_api *a = opaque;
    struct timespec ts;
    bool fire = false;

    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        uint64_t now = time_now_ns();

        if (now >= a->deadline_ns) {
            fire = true;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)((a->deadline_ns - now) / 1000000000ull);
        ts.tv_nsec += (long)((a->deadline_ns - now) % 1000000000ull);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->cond, &a->lock, &ts);
    }
    pthread_mutex_unlock(&a->lock);
    if (fire)
        virt_request_exit(a->m, 0);
    return NULL;
}

/* Graceful: the guest agent powers the guest off; if the guest is still running after
 * timeout_s, the VM is stopped hard. Without an agent channel it is refused (-ENOTSUP). */
static int api_shutdown(void *vm, unsigned timeout_s)
{
    struct vm_api *a = vm;
    char path[108];
    int err;

    if (agent_client_path(virt_get_config(a->m), path, sizeof(path)))
        return -ENOTSUP;
    pthread_mutex_lock(&a->lock);
    if (a->timer_running) {
        pthread_mutex_unlock(&a->lock);
        return -EALREADY;
    }
    a->deadline_ns = time_now_ns() + (uint64_t)timeout_s * 1000000000ull;
    a->timer_running = pthread_create(&a->timer, NULL, shutdown_timer, a) == 0;
    pthread_mutex_unlock(&a->lock);
    if (!a->timer_running)
        return -ENOMEM;
    err = agent_poweroff(path);
    if (err)
        fprintf(stderr,
                "tessera: shutdown: the guest agent did not answer (%s); stopping in "
                "%u s\n",
                strerror(-err), timeout_s);
    return 0;
}

static int api_stop(void *vm)
{
    virt_request_exit(((struct vm_api *)vm)->m, 0);
    return 0;
}

static int api_reset(void *vm)
{
    virt_request_reset(((struct vm_api *)vm)->m);
    return 0;
}

static int api_balloon_set(void *vm, uint64_t target_bytes)
{
    struct virt_machine *m = ((struct vm_api *)vm)->m;
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
    struct virtio_balloon *b = virt_find_device(((struct vm_api *)vm)->m, "balloon", 0);

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
    struct virt_machine *m = ((struct vm_api *)vm)->m;
    struct virtio_balloon *b = virt_find_device(m, "balloon", 0);
    struct bytering *ring = virt_get_config(m)->console_ring;
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
    if (*out && ring) {
        struct bytering_stats cst;

        bytering_get_stats(ring, &cst);
        json_object_set_new(*out, "console",
                            json_pack("{s:I, s:I}", "output_bytes", (json_int_t)cst.written,
                                      "dropped_bytes", (json_int_t)cst.dropped));
    }
    return *out ? 0 : -ENOMEM;
}

/* ---- Snapshots: the machine as snapshots.h sees it ---- */

/* The guest's disk I/O stopped by snapshot_delete(): paused (unless it was) and quiesced. */
struct api_io {
    struct virt_machine *m;
    bool was_paused;
};

static int api_stop_io(void *opaque)
{
    struct api_io *io = opaque;
    int ret = virt_pause(io->m);

    io->was_paused = ret == -EALREADY;
    if (ret && !io->was_paused)
        return -EBUSY;
    virt_quiesce(io->m);
    return 0;
}

static void api_resume_io(void *opaque)
{
    struct api_io *io = opaque;

    virt_unquiesce(io->m);
    if (!io->was_paused)
        virt_resume(io->m);
}

/* A raw image took the place of disk `slot`'s overlay: its options say format=raw from now on,
 * so that a later snapshot records the format the image has. */
static void api_disk_format_changed(void *opaque, unsigned slot, const char *format)
{
    struct api_io *io = opaque;
    char err[VMCONFIG_ERR_LEN];

    if (vmconfig_machine_set(io->m, slot, "format", json_string(format), err))
        log_error("disk %u: cannot record format=%s: %s", slot, format, err);
}

/* Fills vm with the machine's writable disks; io is the stop/resume state. */
static void api_snapshot_vm(struct virt_machine *m, struct api_io *io, struct snapshot_vm *vm)
{
    const struct virt_config *cfg = virt_get_config(m);

    memset(vm, 0, sizeof(*vm));
    io->m = m;
    io->was_paused = false;
    for (unsigned i = 0; i < cfg->ndevices && vm->ndisks < SNAPSHOT_MAX_DISKS; i++) {
        struct block *bs = virt_disk_block(m, i);

        if (bs && !block_readonly(bs))
            vm->disks[vm->ndisks++] = (struct snapshot_disk){.slot = i, .bs = bs};
    }
    vm->stop_io = api_stop_io;
    vm->resume_io = api_resume_io;
    vm->disk_format_changed = api_disk_format_changed;
    vm->opaque = io;
}

/* A path as a JSON string: jansson takes only UTF-8, so other bytes show as '?'. */
static json_t *path_json(const char *path)
{
    json_t *s = json_string(path);
    char *copy;

    if (s || !(copy = strdup(path)))
        return s;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

static int api_snapshots(void *vm, json_t **out)
{
    struct vm_api *a = vm;
    struct snapshot_entry *list;
    struct snapshot_vm svm;
    struct api_io io;
    char msg[SNAPSHOT_ERR_LEN];
    unsigned n;
    json_t *arr;
    int ret;

    if (a->mig && vm_migrate_active(a->mig))
        return -EBUSY;
    api_snapshot_vm(a->m, &io, &svm);
    ret = snapshot_list(&svm, &list, &n, msg);
    if (ret)
        return ret;
    arr = json_array();
    for (unsigned i = 0; i < n && arr; i++) {
        json_t *disks = json_array();

        for (unsigned s = 0; s < SNAPSHOT_MAX_DISKS; s++)
            if (list[i].disks & (1u << s))
                json_array_append_new(disks, json_integer(s));
        if (json_array_append_new(
                arr, json_pack("{s:o, s:I, s:I, s:o, s:o}", "file", path_json(list[i].file),
                               "taken", (json_int_t)list[i].taken, "bytes",
                               (json_int_t)list[i].bytes, "disks", disks, "parent",
                               list[i].parent >= 0 ? path_json(list[list[i].parent].file)
                                                   : json_null()))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    free(list);
    *out =
        arr ? json_pack("{s:i, s:o}", "writable_disks", (int)svm.ndisks, "snapshots", arr) : NULL;
    return *out ? 0 : -ENOMEM;
}

static int api_snapshot_delete(void *vm, const char *file, json_t **out, char *err)
{
    struct vm_api *a = vm;
    struct snapshot_delete_result res;
    struct snapshot_vm svm;
    struct api_io io;
    char msg[SNAPSHOT_ERR_LEN];
    int ret;

    if (a->mig && vm_migrate_active(a->mig)) {
        snprintf(err, CONTROL_ERR_LEN, "a migration is running");
        return -EBUSY;
    }
    api_snapshot_vm(a->m, &io, &svm);
    ret = snapshot_delete(&svm, file, &res, msg);
    if (ret) {
        snprintf(err, CONTROL_ERR_LEN, "%.*s", CONTROL_ERR_LEN - 1, msg);
        return ret == -ENOENT ? -EINVAL : ret; /* no such snapshot: a value the VM refuses */
    }
    log_info("snapshot %s deleted: %s %u disk image(s), %" PRIu64 " bytes merged, paused %.1f ms",
             file, res.in_chain ? "merged" : "removed", res.disks, res.bytes_merged,
             (double)res.paused_ns / 1e6);
    *out = json_pack("{s:o, s:s, s:i, s:I, s:f, s:f}", "file", path_json(file), "action",
                     res.in_chain ? "merged" : "removed", "disks", (int)res.disks, "bytes_merged",
                     (json_int_t)res.bytes_merged, "paused_ms", (double)res.paused_ns / 1e6,
                     "total_ms", (double)res.total_ns / 1e6);
    return *out ? 0 : -ENOMEM;
}

static int api_snapshot(void *vm, const char *file, json_t **out, char *err)
{
    struct vm_api *a = vm;
    struct vm_snapshot_stats st;
    char msg[VMSTATE_ERR_LEN];
    int ret;

    if (a->mig && vm_migrate_active(a->mig)) {
        snprintf(err, CONTROL_ERR_LEN, "a migration is running");
        return -EBUSY;
    }
    ret = vm_snapshot(a->m, file, &st, msg);
    if (ret) {
        snprintf(err, CONTROL_ERR_LEN, "%.*s", CONTROL_ERR_LEN - 1, msg);
        return ret;
    }
    /* For snapshot-delete: what now depends on which frozen image. */
    {
        struct snapshot_vm svm;
        struct api_io io;

        api_snapshot_vm(a->m, &io, &svm);
        snapshot_note_chain(&svm);
    }
    *out = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:i}", "file", file, "bytes",
                     (json_int_t)st.bytes, "ram_pages", (json_int_t)st.ram_pages, "zero_pages",
                     (json_int_t)st.zero_pages, "paused_ms", (double)st.paused_ns / 1e6, "total_ms",
                     (double)st.total_ns / 1e6, "disks", (int)st.disks);
    return *out ? 0 : -ENOMEM;
}

static int api_migrate(void *vm, const struct control_migrate_req *req, char *err)
{
    struct vm_api *a = vm;
    struct vm_migrate_opts o = {
        .mode = !strcmp(req->mode, "suspend") ? VM_MIGRATE_SUSPEND
                : !strcmp(req->mode, "cold")  ? VM_MIGRATE_COLD
                                              : VM_MIGRATE_LIVE,
        .downtime_ms = req->downtime_ms,
        .copy_disks = req->copy_disks,
        .progress_timeout_s = req->progress_timeout_s,
        .tls = {req->tls_cert, req->tls_key, req->tls_ca},
    };
    char msg[VM_MIGRATE_ERR_LEN] = "";
    int ret = vm_migrate_start(a->m, req->uri, &o, &a->mig, msg);

    if (ret)
        snprintf(err, CONTROL_ERR_LEN, "%.*s", CONTROL_ERR_LEN - 1, msg);
    return ret;
}

static int api_migrate_cancel(void *vm, char *err)
{
    struct vm_api *a = vm;
    char msg[VM_MIGRATE_ERR_LEN] = "";
    int ret = vm_migrate_cancel(a->mig, msg);

    if (ret)
        snprintf(err, CONTROL_ERR_LEN, "%.*s", CONTROL_ERR_LEN - 1, msg);
    return ret;
}

static int api_migrate_status(void *vm, json_t **out)
{
    struct vm_api *a = vm;

    *out = a->mig ? vm_migrate_status(a->mig) : json_pack("{s:s}", "status", "none");
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
    .snapshot = api_snapshot,
    .snapshots = api_snapshots,
    .snapshot_delete = api_snapshot_delete,
    .migrate = api_migrate,
    .migrate_status = api_migrate_status,
    .migrate_cancel = api_migrate_cancel,
};

int vm_api_start(struct virt_machine *m, const char *sock_path, struct vm_api **out, char *err)
{
    struct vm_api *a = calloc(1, sizeof(*a));
    int ret;

    if (!a)
        return -ENOMEM;
    a->m = m;
    a->sock_path = strdup(sock_path);
    if (!a->sock_path) {
        free(a);
        return -ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    ret = control_start(sock_path, &vm_api_ops, a, &a->control, err);
    if (ret) {
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        free(a->sock_path);
        free(a);
        return ret;
    }
    *out = a;
    return 0;
}

void vm_api_stop(struct vm_api *a)
{
    if (!a)
        return;
    control_stop(a->control);
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->timer_running)
        pthread_join(a->timer, NULL);
    vm_migrate_free(a->mig);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a->sock_path);
    free(a);
}
