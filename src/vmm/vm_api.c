/* The control API's operations for one VM: the bridge between src/vmm/control.c (HTTP and
 * JSON) and the machine. Every function runs on the API thread, one at a time (the server
 * serialises them), and never on the data path. */
#include "vmm/vm_api.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/bytering.h"
#include "base/log.h"
#include "base/time.h"
#include "hw/virtio/virtio_balloon.h"
#include "machine/virt.h"
#include "vmm/agent_client.h"
#include "vmm/iolimits.h"
#include "vmm/memstats.h"
#include "vmm/migrate.h"
#include "vmm/snapshot.h"
#include "vmm/vmconfig.h"
#include "vmm/vmstate.h"

_Static_assert(SNAPSHOT_MAX_DISKS == VIRT_VIRTIO_SLOTS, "snapshot.h counts device slots");

/* The last snapshot or snapshot-delete started. Its thread writes state..error under the API's
 * lock; thread and joinable are the API thread's. */
struct snapshot_job {
    enum { JOB_NONE, JOB_ACTIVE, JOB_COMPLETED, JOB_FAILED } state;
    bool is_delete;
    bool joinable;
    pthread_t thread;
    char file[PATH_MAX];
    const char *phase; /* a string literal */
    uint64_t pages_done, pages_total, bytes;
    uint64_t start_ns, end_ns;
    json_t *result; /* completed: what the action reports */
    char error[SNAPSHOT_ERR_LEN];
};

/* One VM's API: the server, the fallback timer of a graceful shutdown, the snapshot worker. */
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
    char *console_sock;       /* the serial console's socket and log, or NULL: the same */
    char *console_log;
    struct snapshot_job job;
};

static int api_describe(void *vm, json_t **out)
{
    struct vm_api *a = vm;
    struct virt_machine *m = a->m;
    struct virt_info info;
    struct vmconfig vc;
    char err[VMCONFIG_ERR_LEN];
    struct virt_config now;
    json_t *doc;
    bool shutting_down;
    int ret;

    if (virt_config_copy(m, &now))
        return -ENOMEM;
    ret = vmconfig_from_virt(&now, &vc, err);
    virt_config_free(&now);
    if (ret) {
        log_error("describe: %s", err);
        return -EIO;
    }
    vc.api_socket = strdup(a->sock_path);
    vc.console_socket = a->console_sock ? strdup(a->console_sock) : NULL;
    vc.console_log = a->console_log ? strdup(a->console_log) : NULL;
    doc = vc.api_socket && !(a->console_sock && !vc.console_socket) &&
                  !(a->console_log && !vc.console_log)
              ? vmconfig_to_json(&vc)
              : NULL;
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

/* A snapshot job pauses and resumes the guest itself: a user's pause, resume or reset
 * meanwhile would run the guest while its disks are frozen. */
static bool job_active(struct vm_api *a);

static int api_pause(void *vm)
{
    return job_active(vm) ? -EBUSY : virt_pause(((struct vm_api *)vm)->m);
}

static int api_resume(void *vm)
{
    return job_active(vm) ? -EBUSY : virt_resume(((struct vm_api *)vm)->m);
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

/* Refused while a snapshot job runs: a reset runs a paused guest again. */
static int api_reset(void *vm)
{
    if (job_active(vm))
        return -EBUSY;
    virt_request_reset(((struct vm_api *)vm)->m);
    return 0;
}

static int api_balloon_set(void *vm, uint64_t target_bytes)
{
    return virt_balloon_set(((struct vm_api *)vm)->m, target_bytes);
}

/* The guest's own statistics by their virtio names (§5.5.6.3), as last reported. */
static json_t *guest_stats_json(const struct balloon_info *info)
{
    static const char *const names[BALLOON_STAT_COUNT] = {
        "swap_in",         "swap_out",          "major_faults",
        "minor_faults",    "free_bytes",        "total_bytes",
        "available_bytes", "disk_caches_bytes", "hugetlb_allocations",
        "hugetlb_failures"};
    json_t *stats = json_object();

    for (unsigned i = 0; i < BALLOON_STAT_COUNT; i++) {
        if (info->stats.valid & (1u << i))
            json_object_set_new(stats, names[i], json_integer((json_int_t)info->stats.value[i]));
    }
    return stats;
}

/* Milliseconds since the guest last reported its statistics; null when it never did. */
static json_t *guest_stats_age(const struct balloon_info *info)
{
    uint64_t now = time_now_ns();

    if (!info->stats.updated_ns)
        return json_null();
    return json_integer(
        (json_int_t)((now > info->stats.updated_ns ? now - info->stats.updated_ns : 0) / 1000000));
}

static json_t *balloon_json(const struct balloon_info *info)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:b, s:o, s:o}", "target_bytes",
                     (json_int_t)info->target_bytes, "actual_bytes", (json_int_t)info->actual_bytes,
                     "released_pages", (json_int_t)info->released_pages, "reported_bytes",
                     (json_int_t)info->reported_bytes, "free_page_reporting",
                     (int)info->free_page_reporting, "guest_stats", guest_stats_json(info),
                     "guest_stats_age_ms", guest_stats_age(info));
}

static int api_balloon_get(void *vm, json_t **out)
{
    struct balloon_info info;
    int ret = virt_balloon_get(((struct vm_api *)vm)->m, &info);

    if (ret)
        return ret;
    *out = balloon_json(&info);
    return *out ? 0 : -ENOMEM;
}

/* An integer, or null when unknown. */
static json_t *int_or_null(bool known, json_int_t v)
{
    return known ? json_integer(v) : json_null();
}

/* The stats' "memory" section: everything the daemon's balloon policy reads (docs/api.md),
 * with null for what this host or VM cannot tell. `b` is NULL without a balloon device. */
static json_t *memory_json(uint64_t guest_bytes, bool merge, const struct balloon_info *b)
{
    struct memstats ms;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    json_t *balloon = json_null(), *guest = json_null();

    memstats_read(&ms);
    if (b) {
        balloon = json_pack("{s:I, s:I, s:I, s:b}", "target_bytes", (json_int_t)b->target_bytes,
                            "actual_bytes", (json_int_t)b->actual_bytes, "reported_bytes",
                            (json_int_t)b->reported_bytes, "free_page_reporting",
                            (int)b->free_page_reporting);
        if (b->stats.updated_ns) {
            guest = guest_stats_json(b);
            json_object_set_new(guest, "age_ms", guest_stats_age(b));
        }
    }
    return json_pack(
        "{s:I, s:I, s:o, s:b, s:o, s:o, s:o, s:o, s:o}", "guest_bytes", (json_int_t)guest_bytes,
        "host_rss_bytes", (json_int_t)ms.rss_bytes, "rss_bytes",
        int_or_null(ms.have_rss, (json_int_t)ms.rss_bytes), "merge", (int)merge,
        "ksm_merging_pages", int_or_null(ms.have_ksm, (json_int_t)ms.ksm_merging_pages),
        "ksm_merging_bytes", int_or_null(ms.have_ksm, (json_int_t)(ms.ksm_merging_pages * page)),
        "ksm_profit_bytes", int_or_null(ms.have_profit, ms.ksm_profit_bytes), "balloon", balloon,
        "guest", guest);
}

static int api_stats(void *vm, json_t **out)
{
    struct virt_machine *m = ((struct vm_api *)vm)->m;
    struct balloon_info binfo;
    bool have_balloon = virt_balloon_get(m, &binfo) == 0;
    struct bytering *ring = virt_get_config(m)->console_ring;
    struct virt_info info;
    json_t *cpus = json_array();

    virt_get_info(m, &info);
    for (unsigned i = 0; i < info.cpus; i++)
        json_array_append_new(cpus, json_pack("{s:i, s:I}", "index", (int)i, "instructions",
                                              (json_int_t)info.instret[i]));
    *out = json_pack("{s:f, s:I, s:o, s:o}", "uptime_s", (double)info.uptime_ns / 1e9,
                     "guest_mtime", (json_int_t)info.mtime, "vcpus", cpus, "memory",
                     memory_json(info.mem_size, !virt_get_config(m)->mem_merge_off,
                                 have_balloon ? &binfo : NULL));
    if (*out && have_balloon)
        json_object_set_new(*out, "balloon", balloon_json(&binfo));
    if (*out) {
        json_t *disks = json_array(), *nics = json_array();
        struct virt_device_stats vs;
        const char *type;

        /* Per device, in slot order: a disk's reads and writes, a NIC's frames (rx: to the
         * guest, tx: from it). */
        for (unsigned s = 0; s < VIRT_VIRTIO_SLOTS; s++) {
            if (virt_device_stats(m, s, &type, &vs))
                continue;
            if (!strcmp(type, "disk"))
                json_array_append_new(
                    disks,
                    json_pack("{s:i,s:I,s:I,s:I,s:I,s:o*,s:I,s:I}", "slot", (int)s, "reads",
                              (json_int_t)vs.reads, "writes", (json_int_t)vs.writes, "read_bytes",
                              (json_int_t)vs.read_bytes, "write_bytes", (json_int_t)vs.write_bytes,
                              "limits", iolimits_get(m, s), "throttled_requests",
                              (json_int_t)(vs.read_throttled + vs.write_throttled), "throttled_ns",
                              (json_int_t)(vs.read_throttled_ns + vs.write_throttled_ns)));
            else if (!strcmp(type, "net"))
                json_array_append_new(
                    nics,
                    json_pack("{s:i,s:I,s:I,s:I,s:I,s:o*,s:I,s:I,s:I,s:I,s:I,s:I}", "slot", (int)s,
                              "rx_frames", (json_int_t)vs.reads, "tx_frames", (json_int_t)vs.writes,
                              "rx_bytes", (json_int_t)vs.read_bytes, "tx_bytes",
                              (json_int_t)vs.write_bytes, "limits", iolimits_get(m, s),
                              "rx_throttled_frames", (json_int_t)vs.read_throttled,
                              "tx_throttled_frames", (json_int_t)vs.write_throttled,
                              "rx_throttled_ns", (json_int_t)vs.read_throttled_ns,
                              "tx_throttled_ns", (json_int_t)vs.write_throttled_ns, "rx_errors",
                              (json_int_t)vs.read_errors, "tx_errors",
                              (json_int_t)vs.write_errors));
        }
        json_object_set_new(*out, "disks", disks);
        json_object_set_new(*out, "nics", nics);
    }
    if (*out && ring) {
        struct bytering_stats cst;

        bytering_get_stats(ring, &cst);
        json_object_set_new(*out, "console",
                            json_pack("{s:I, s:I}", "output_bytes", (json_int_t)cst.written,
                                      "dropped_bytes", (json_int_t)cst.dropped));
    }
    return *out ? 0 : -ENOMEM;
}

/* ---- Snapshots: the machine as snapshot.h sees it ---- */

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

static int api_disk_chain(void *opaque, unsigned slot, struct virt_disk_info *layers, unsigned max,
                          unsigned *n)
{
    return virt_disk_chain(((struct api_io *)opaque)->m, slot, layers, max, n);
}

static int api_disk_release(void *opaque, unsigned slot)
{
    return virt_disk_release(((struct api_io *)opaque)->m, slot);
}

static int api_disk_reopen(void *opaque, unsigned slot, const char *path, const char *format,
                           char *err)
{
    return virt_disk_reopen(((struct api_io *)opaque)->m, slot, path, format, err);
}

/* Fills vm with the machine's writable disks; io is the stop/resume state. */
static void api_snapshot_vm(struct virt_machine *m, struct api_io *io, struct snapshot_vm *vm)
{
    const struct virt_config *cfg = virt_get_config(m);

    memset(vm, 0, sizeof(*vm));
    io->m = m;
    io->was_paused = false;
    for (unsigned i = 0; i < cfg->ndevices && vm->ndisks < SNAPSHOT_MAX_DISKS; i++) {
        struct virt_disk_info info;

        if (virt_disk_info(m, i, &info) == 0 && !info.readonly)
            vm->disks[vm->ndisks++] = (struct snapshot_disk){.slot = i};
    }
    vm->chain = api_disk_chain;
    vm->stop_io = api_stop_io;
    vm->resume_io = api_resume_io;
    vm->release = api_disk_release;
    vm->reopen = api_disk_reopen;
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

    if ((a->mig && vm_migrate_active(a->mig)) || job_active(a))
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

/* ---- The snapshot worker: snapshot and snapshot-delete run on it, one at a time ---- */

/* The job's status object (GET /v1/vm/snapshot). a->lock held. */
static json_t *job_status_locked(const struct vm_api *a)
{
    const struct snapshot_job *j = &a->job;
    uint64_t end = j->state == JOB_ACTIVE ? time_now_ns() : j->end_ns;
    json_t *o;

    if (j->state == JOB_NONE)
        return json_pack("{s:s}", "status", "none");
    o = json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:f}", "status",
                  j->state == JOB_ACTIVE      ? "active"
                  : j->state == JOB_COMPLETED ? "completed"
                                              : "failed",
                  "action", j->is_delete ? "snapshot-delete" : "snapshot", "file",
                  path_json(j->file), "phase", j->phase, "ram_pages_done",
                  (json_int_t)j->pages_done, "ram_pages_total", (json_int_t)j->pages_total,
                  "bytes_written", (json_int_t)j->bytes, "elapsed_ms",
                  (double)(end - j->start_ns) / 1e6);
    if (o && j->state == JOB_COMPLETED && j->result)
        json_object_set(o, "result", j->result);
    if (o && j->state == JOB_FAILED)
        json_object_set_new(o, "error", path_json(j->error)); /* may hold a path: any bytes */
    return o;
}

static bool job_active(struct vm_api *a)
{
    bool active;

    pthread_mutex_lock(&a->lock);
    active = a->job.state == JOB_ACTIVE;
    pthread_mutex_unlock(&a->lock);
    return active;
}

static void job_progress(void *opaque, const char *phase, uint64_t pages_done, uint64_t pages_total,
                         uint64_t bytes)
{
    struct vm_api *a = opaque;

    pthread_mutex_lock(&a->lock);
    a->job.phase = phase;
    a->job.pages_done = pages_done;
    a->job.pages_total = pages_total;
    a->job.bytes = bytes;
    pthread_mutex_unlock(&a->lock);
}

static int job_snapshot(struct vm_api *a, const char *file, json_t **result, char *msg)
{
    const struct snapshot_progress p = {.report = job_progress, .opaque = a};
    struct snapshot_create_stats st;
    struct snapshot_vm svm;
    struct api_io io;
    int ret = snapshot_create(a->m, file, &p, &st, msg);

    if (ret)
        return ret;
    /* For snapshot-delete: what now depends on which frozen image. */
    api_snapshot_vm(a->m, &io, &svm);
    snapshot_note_chain(&svm);
    log_info("snapshot %s: %" PRIu64 " MiB, %u disk(s) frozen, paused %.1f ms, %.1f ms in all",
             file, st.bytes >> 20, st.disks, (double)st.paused_ns / 1e6, (double)st.total_ns / 1e6);
    *result = json_pack("{s:o, s:I, s:I, s:I, s:f, s:f, s:i}", "file", path_json(file), "bytes",
                        (json_int_t)st.bytes, "ram_pages", (json_int_t)st.ram_pages, "zero_pages",
                        (json_int_t)st.zero_pages, "paused_ms", (double)st.paused_ns / 1e6,
                        "total_ms", (double)st.total_ns / 1e6, "disks", (int)st.disks);
    return *result ? 0 : -ENOMEM;
}

static int job_delete(struct vm_api *a, const char *file, json_t **result, char *msg)
{
    struct snapshot_delete_result res;
    struct snapshot_vm svm;
    struct api_io io;
    int ret;

    api_snapshot_vm(a->m, &io, &svm);
    ret = snapshot_delete(&svm, file, &res, msg);
    if (ret)
        return ret;
    log_info("snapshot %s deleted: %s %u disk image(s), %" PRIu64 " bytes merged, paused %.1f ms",
             file, res.in_chain ? "merged" : "removed", res.disks, res.bytes_merged,
             (double)res.paused_ns / 1e6);
    *result = json_pack("{s:o, s:s, s:i, s:I, s:f, s:f}", "file", path_json(file), "action",
                        res.in_chain ? "merged" : "removed", "disks", (int)res.disks,
                        "bytes_merged", (json_int_t)res.bytes_merged, "paused_ms",
                        (double)res.paused_ns / 1e6, "total_ms", (double)res.total_ns / 1e6);
    return *result ? 0 : -ENOMEM;
}

/* Runs on the job's thread: the action, then its outcome into a->job under a->lock. */
static void *job_thread(void *opaque)
{
    struct vm_api *a = opaque;
    char msg[SNAPSHOT_ERR_LEN] = "";
    json_t *result = NULL;
    int ret = a->job.is_delete ? job_delete(a, a->job.file, &result, msg)
                               : job_snapshot(a, a->job.file, &result, msg);

    if (ret)
        log_warn("%s %s failed: %s", a->job.is_delete ? "snapshot-delete" : "snapshot", a->job.file,
                 msg[0] ? msg : strerror(-ret));
    pthread_mutex_lock(&a->lock);
    a->job.state = ret ? JOB_FAILED : JOB_COMPLETED;
    a->job.phase = "done";
    a->job.end_ns = time_now_ns();
    a->job.result = result;
    snprintf(a->job.error, sizeof(a->job.error), "%s",
             ret && msg[0] ? msg
             : ret         ? strerror(-ret)
                           : "");
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Starts a job on the worker: refused (-EBUSY, message in err) while a migration or another
 * job runs. 0 and the job's status in *out. */
static int job_start(struct vm_api *a, bool is_delete, const char *file, json_t **out, char *err)
{
    if (a->mig && vm_migrate_active(a->mig)) {
        snprintf(err, CONTROL_ERR_LEN, "a migration is running");
        return -EBUSY;
    }
    if (strlen(file) >= sizeof(a->job.file)) {
        snprintf(err, CONTROL_ERR_LEN, "the file name is too long");
        return -EINVAL;
    }
    pthread_mutex_lock(&a->lock);
    if (a->job.state == JOB_ACTIVE) {
        snprintf(err, CONTROL_ERR_LEN, "a %s of %.400s is running; see GET /v1/vm/snapshot",
                 a->job.is_delete ? "snapshot-delete" : "snapshot", a->job.file);
        pthread_mutex_unlock(&a->lock);
        return -EBUSY;
    }
    pthread_mutex_unlock(&a->lock);
    /* The job thread of the last job has ended (its state is final): collect it. */
    if (a->job.joinable) {
        pthread_join(a->job.thread, NULL);
        a->job.joinable = false;
    }
    pthread_mutex_lock(&a->lock);
    json_decref(a->job.result);
    memset(&a->job, 0, sizeof(a->job));
    a->job.state = JOB_ACTIVE;
    a->job.is_delete = is_delete;
    a->job.phase = "starting";
    a->job.start_ns = time_now_ns();
    snprintf(a->job.file, sizeof(a->job.file), "%s", file);
    pthread_mutex_unlock(&a->lock);
    if (pthread_create(&a->job.thread, NULL, job_thread, a)) {
        pthread_mutex_lock(&a->lock);
        a->job.state = JOB_NONE;
        pthread_mutex_unlock(&a->lock);
        snprintf(err, CONTROL_ERR_LEN, "cannot start the snapshot worker");
        return -ENOMEM;
    }
    a->job.joinable = true;
    pthread_mutex_lock(&a->lock);
    *out = job_status_locked(a);
    pthread_mutex_unlock(&a->lock);
    return *out ? CONTROL_STARTED : -ENOMEM;
}

static int api_snapshot_delete(void *vm, const char *file, json_t **out, char *err)
{
    return job_start(vm, true, file, out, err);
}

/* What can be refused is refused here (400, 409) before the job starts; the job checks again,
 * before it touches anything. */
static int api_snapshot(void *vm, const char *file, json_t **out, char *err)
{
    struct vm_api *a = vm;
    char abs[PATH_MAX], msg[SNAPSHOT_ERR_LEN];
    int ret;

    if (job_active(a))
        return job_start(a, false, file, out, err); /* refused, saying which job runs */
    ret = snapshot_check_target(a->m, file, abs, msg);
    if (ret) {
        snprintf(err, CONTROL_ERR_LEN, "%.*s", CONTROL_ERR_LEN - 1, msg);
        return ret == -ENAMETOOLONG ? -EINVAL : ret;
    }
    return job_start(a, false, file, out, err);
}

static int api_snapshot_status(void *vm, json_t **out)
{
    struct vm_api *a = vm;

    pthread_mutex_lock(&a->lock);
    *out = job_status_locked(a);
    pthread_mutex_unlock(&a->lock);
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
    int ret;

    if (job_active(a)) {
        snprintf(err, CONTROL_ERR_LEN, "a snapshot or snapshot-delete is running");
        return -EBUSY;
    }
    ret = vm_migrate_start(a->m, req->uri, &o, &a->mig, msg);
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

/* New rate limits for a disk or NIC. Refused while a migration runs: its target took the
 * config document when it started, and would run on with the old limits. */
static int api_limits_set(void *vm, const char *type, unsigned index, json_t *changes, json_t **out,
                          char *err)
{
    struct vm_api *a = vm;

    if (a->mig && vm_migrate_active(a->mig)) {
        snprintf(err, CONTROL_ERR_LEN, "a migration is running; change the limits after it");
        return -EBUSY;
    }
    return iolimits_set(a->m, type, index, changes, out, err);
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
    .snapshot_status = api_snapshot_status,
    .migrate = api_migrate,
    .migrate_status = api_migrate_status,
    .migrate_cancel = api_migrate_cancel,
    .limits_set = api_limits_set,
};

int vm_api_start(struct virt_machine *m, const char *sock_path, const char *console_sock,
                 const char *console_log, struct vm_api **out, char *err)
{
    struct vm_api *a = calloc(1, sizeof(*a));
    int ret;

    if (!a)
        return -ENOMEM;
    a->m = m;
    memstats_open(); /* before the sandbox (vmm/memstats.h) */
    a->sock_path = strdup(sock_path);
    a->console_sock = console_sock ? strdup(console_sock) : NULL;
    a->console_log = console_log ? strdup(console_log) : NULL;
    if (!a->sock_path || (console_sock && !a->console_sock) || (console_log && !a->console_log)) {
        snprintf(err, CONTROL_ERR_LEN, "%s: out of memory", sock_path);
        free(a->sock_path);
        free(a->console_sock);
        free(a->console_log);
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
        free(a->console_sock);
        free(a->console_log);
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
    /* The machine is exiting: a job's pause fails with -EBUSY, so it ends soon. */
    if (a->job.joinable)
        pthread_join(a->job.thread, NULL);
    json_decref(a->job.result);
    vm_migrate_free(a->mig);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a->sock_path);
    free(a->console_sock);
    free(a->console_log);
    free(a);
}
