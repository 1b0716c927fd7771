/* The daemon's short-term metric history (history.h; docs/daemon.md, "Metric history"). */
#include "daemon/history.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/ticker.h"
#include "daemon/daemon.h"
#include "daemon/rt.h"
#include "daemon/vmproc.h"

const char *const history_vm_names[HISTORY_VM_NFIELDS] = {
    [HISTORY_VM_CPU] = "cpu",
    [HISTORY_VM_CPU_WAIT] = "cpu_wait",
    [HISTORY_VM_MEMORY] = "memory_bytes",
    [HISTORY_VM_BALLOON] = "balloon_bytes",
    [HISTORY_VM_DISK_RD_BPS] = "disk_read_bytes_per_s",
    [HISTORY_VM_DISK_WR_BPS] = "disk_write_bytes_per_s",
    [HISTORY_VM_DISK_RD_IOPS] = "disk_reads_per_s",
    [HISTORY_VM_DISK_WR_IOPS] = "disk_writes_per_s",
    [HISTORY_VM_NET_RX_BPS] = "net_rx_bytes_per_s",
    [HISTORY_VM_NET_TX_BPS] = "net_tx_bytes_per_s",
};

const char *const history_host_names[HISTORY_HOST_NFIELDS] = {
    [HISTORY_HOST_CPU] = "cpu",
    [HISTORY_HOST_MEMORY_USED] = "memory_used_bytes",
    [HISTORY_HOST_VMS_RUNNING] = "vms_running",
};

/* ---- The ring ---- */

void history_ring_init(struct history_ring *r, unsigned nfields)
{
    memset(r, 0, sizeof(*r));
    r->nfields = nfields <= HISTORY_FIELDS ? nfields : HISTORY_FIELDS;
}

static const struct history_point *ring_newest(const struct history_ring *r)
{
    if (!r->fine_n)
        return NULL;
    return &r->fine[(r->fine_head + r->fine_n - 1) % HISTORY_FINE_N];
}

static void ring_push(struct history_point *arr, size_t cap, size_t *head, size_t *n,
                      const struct history_point *p)
{
    if (*n < cap) {
        arr[(*head + *n) % cap] = *p;
        (*n)++;
    } else {
        arr[*head] = *p;
        *head = (*head + 1) % cap;
    }
}

/* Closes the open bucket: its average joins the coarse ring. */
static void bucket_close(struct history_ring *r)
{
    struct history_point p = {.t_ms = r->bucket * HISTORY_COARSE_S * 1000};

    for (unsigned i = 0; i < HISTORY_FIELDS; i++)
        p.v[i] =
            i < r->nfields && r->bucket_n[i] ? (float)(r->bucket_sum[i] / r->bucket_n[i]) : NAN;
    ring_push(r->coarse, HISTORY_COARSE_N, &r->coarse_head, &r->coarse_n, &p);
    memset(r->bucket_n, 0, sizeof(r->bucket_n));
    memset(r->bucket_sum, 0, sizeof(r->bucket_sum));
    r->bucket_open = false;
}

/* The bucket of a time: floor division, so that times before 1970 (a test's) stay in order. */
static int64_t bucket_of(int64_t t_ms)
{
    const int64_t len = (int64_t)HISTORY_COARSE_S * 1000;

    return t_ms >= 0 ? t_ms / len : -((-t_ms + len - 1) / len);
}

void history_ring_add(struct history_ring *r, int64_t t_ms, const double *v)
{
    const struct history_point *last = ring_newest(r);
    struct history_point p = {.t_ms = t_ms};
    int64_t b = bucket_of(t_ms);

    if (last && t_ms <= last->t_ms)
        return;
    for (unsigned i = 0; i < HISTORY_FIELDS; i++)
        p.v[i] = i < r->nfields ? (float)v[i] : NAN;
    ring_push(r->fine, HISTORY_FINE_N, &r->fine_head, &r->fine_n, &p);
    if (r->bucket_open && b != r->bucket)
        bucket_close(r);
    r->bucket = b;
    r->bucket_open = true;
    for (unsigned i = 0; i < r->nfields; i++) {
        if (isfinite(v[i])) {
            r->bucket_sum[i] += v[i];
            r->bucket_n[i]++;
        }
    }
}

/* A float's own digits (%.7g), not its double's (0.1f would print as 0.10000000149011612). */
static int column_add(json_t *col, float v)
{
    char text[32];

    if (!isfinite(v))
        return json_array_append_new(col, json_null());
    snprintf(text, sizeof(text), "%.7g", (double)v);
    return json_array_append_new(col, json_real(strtod(text, NULL)));
}

static int point_add(json_t *t, json_t **cols, unsigned n, const struct history_point *p)
{
    int ret = json_array_append_new(t, json_real((double)p->t_ms / 1000.0));

    for (unsigned i = 0; i < n && !ret; i++)
        ret = column_add(cols[i], p->v[i]);
    return ret;
}

json_t *history_ring_json(const struct history_ring *r, const char *const *names, int64_t since_ms)
{
    json_t *out = json_object(), *t = json_array(), *cols[HISTORY_FIELDS] = {0};
    int64_t fine_from = r->fine_n ? r->fine[r->fine_head].t_ms : INT64_MAX;
    int ret = !out || !t || json_object_set(out, "t", t);

    for (unsigned i = 0; i < r->nfields && !ret; i++) {
        cols[i] = json_array();
        ret = !cols[i] || json_object_set(out, names[i], cols[i]);
    }
    /* A coarse point stands for the HISTORY_COARSE_S seconds from its time: only those wholly
     * before the first fine point are shown, so that the times stay in order. */
    for (size_t k = 0; k < r->coarse_n && !ret; k++) {
        const struct history_point *p = &r->coarse[(r->coarse_head + k) % HISTORY_COARSE_N];

        if (p->t_ms > since_ms && p->t_ms + HISTORY_COARSE_S * 1000 <= fine_from)
            ret = point_add(t, cols, r->nfields, p);
    }
    for (size_t k = 0; k < r->fine_n && !ret; k++) {
        const struct history_point *p = &r->fine[(r->fine_head + k) % HISTORY_FINE_N];

        if (p->t_ms > since_ms)
            ret = point_add(t, cols, r->nfields, p);
    }
    json_decref(t);
    for (unsigned i = 0; i < HISTORY_FIELDS; i++)
        json_decref(cols[i]);
    if (ret) {
        json_decref(out);
        return NULL;
    }
    return out;
}

bool history_rates(const struct history_counters *prev, const struct history_counters *cur,
                   unsigned vcpus, double *v)
{
    double dt;

    v[HISTORY_VM_CPU] = v[HISTORY_VM_CPU_WAIT] = NAN;
    v[HISTORY_VM_DISK_RD_BPS] = v[HISTORY_VM_DISK_WR_BPS] = NAN;
    v[HISTORY_VM_DISK_RD_IOPS] = v[HISTORY_VM_DISK_WR_IOPS] = NAN;
    v[HISTORY_VM_NET_RX_BPS] = v[HISTORY_VM_NET_TX_BPS] = NAN;
    if (!prev || prev->pid != cur->pid || cur->mono_ns <= prev->mono_ns || !vcpus ||
        cur->cpu_s < prev->cpu_s || cur->rd_bytes < prev->rd_bytes ||
        cur->wr_bytes < prev->wr_bytes || cur->rd_ops < prev->rd_ops ||
        cur->wr_ops < prev->wr_ops || cur->rx_bytes < prev->rx_bytes ||
        cur->tx_bytes < prev->tx_bytes)
        return false;
    dt = (double)(cur->mono_ns - prev->mono_ns) / 1e9;
    v[HISTORY_VM_CPU] = (cur->cpu_s - prev->cpu_s) / dt / vcpus;
    if (prev->have_wait && cur->have_wait && cur->wait_ns >= prev->wait_ns)
        v[HISTORY_VM_CPU_WAIT] = (double)(cur->wait_ns - prev->wait_ns) / 1e9 / dt / vcpus;
    v[HISTORY_VM_DISK_RD_BPS] = (double)(cur->rd_bytes - prev->rd_bytes) / dt;
    v[HISTORY_VM_DISK_WR_BPS] = (double)(cur->wr_bytes - prev->wr_bytes) / dt;
    v[HISTORY_VM_DISK_RD_IOPS] = (double)(cur->rd_ops - prev->rd_ops) / dt;
    v[HISTORY_VM_DISK_WR_IOPS] = (double)(cur->wr_ops - prev->wr_ops) / dt;
    v[HISTORY_VM_NET_RX_BPS] = (double)(cur->rx_bytes - prev->rx_bytes) / dt;
    v[HISTORY_VM_NET_TX_BPS] = (double)(cur->tx_bytes - prev->tx_bytes) / dt;
    return true;
}

/* ---- The thread ---- */

struct vm_hist {
    char tenant[STORE_NAME_LEN], name[STORE_NAME_LEN];
    struct history_ring ring;
    struct history_counters prev;
    bool have_prev;
    bool listed; /* in the store at the last round */
};

/* A VM to sample this round: taken from the store under d->lock. */
struct vm_want {
    char tenant[STORE_NAME_LEN], name[STORE_NAME_LEN];
    unsigned vcpus;
    int64_t pid; /* tells a restarted VMM from the one sampled before (history.h) */
    bool active; /* its process should run */
};

struct history {
    struct ticker tick;
    pthread_mutex_t lock; /* everything below but `want`, which only the thread touches */
    struct vm_hist **vms;
    size_t n;
    struct history_ring host;
    unsigned long long cpu_busy, cpu_total; /* /proc/stat at the last round */
    struct vm_want *want;
    size_t nwant, capwant;
};

static struct history *hist_of(struct daemon *d)
{
    return d->history;
}

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int each_vm(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct history *h = arg;
    json_t *vm = json_loads(doc, 0, NULL);
    const char *state = json_string_value(json_object_get(vm, "state"));
    json_int_t cpus = json_integer_value(json_object_get(vm, "cpus"));
    struct vm_want *w;

    if (!vm || h->nwant >= HISTORY_VMS_MAX)
        goto done;
    if (h->nwant == h->capwant) {
        size_t cap = h->capwant ? 2 * h->capwant : 16;
        struct vm_want *p = realloc(h->want, cap * sizeof(*p));

        if (!p) {
            json_decref(vm);
            return -ENOMEM;
        }
        h->want = p;
        h->capwant = cap;
    }
    w = &h->want[h->nwant++];
    snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->vcpus = cpus > 0 && cpus <= 1024 ? (unsigned)cpus : 1;
    w->pid = json_integer_value(json_object_get(vm, "pid"));
    w->active = state && strcmp(state, "stopped") && strcmp(state, "error");
done:
    json_decref(vm);
    return 0;
}

static struct vm_hist *vm_find(struct history *h, const char *tenant, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->vms[i]->tenant, tenant) && !strcmp(h->vms[i]->name, name))
            return h->vms[i];
    return NULL;
}

static uint64_t u64_of(const json_t *v)
{
    json_int_t i = json_integer_value(v);

    return i > 0 ? (uint64_t)i : 0;
}

/* The counters and levels of a GET /v1/vm/stats answer (rt_vm_stats()). */
static void counters_of(const json_t *st, struct history_counters *c, double *v)
{
    const json_t *mem = json_object_get(st, "memory"), *e;
    const json_t *bal = json_object_get(mem, "balloon");
    size_t i;

    c->cpu_s = json_number_value(json_object_get(json_object_get(st, "process"), "cpu_seconds"));
    json_array_foreach(json_object_get(st, "disks"), i, e)
    {
        c->rd_bytes += u64_of(json_object_get(e, "read_bytes"));
        c->wr_bytes += u64_of(json_object_get(e, "write_bytes"));
        c->rd_ops += u64_of(json_object_get(e, "reads"));
        c->wr_ops += u64_of(json_object_get(e, "writes"));
    }
    json_array_foreach(json_object_get(st, "nics"), i, e)
    {
        c->rx_bytes += u64_of(json_object_get(e, "rx_bytes"));
        c->tx_bytes += u64_of(json_object_get(e, "tx_bytes"));
    }
    v[HISTORY_VM_MEMORY] = json_is_integer(json_object_get(mem, "rss_bytes"))
                               ? (double)u64_of(json_object_get(mem, "rss_bytes"))
                               : NAN;
    v[HISTORY_VM_BALLOON] = json_is_integer(json_object_get(bal, "actual_bytes"))
                                ? (double)u64_of(json_object_get(bal, "actual_bytes"))
                                : NAN;
}

/* Host CPU from /proc/stat's "cpu" line (proc(5)): busy is all but idle and iowait. */
static int host_cpu(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long f[8] = {0};
    FILE *fp = fopen("/proc/stat", "re");
    int n;

    if (!fp)
        return -errno;
    n = fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4],
               &f[5], &f[6], &f[7]);
    fclose(fp);
    if (n < 4)
        return -EIO;
    *total = 0;
    for (int i = 0; i < 8; i++)
        *total += f[i];
    *busy = *total - f[3] - f[4];
    return 0;
}

static double host_mem_used(void)
{
    char line[128];
    unsigned long long kb, total = 0, avail = 0;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return NAN;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            total = kb;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            avail = kb;
    }
    fclose(f);
    return total && avail <= total ? (double)(total - avail) * 1024 : NAN;
}

/* A VM's sample, taken outside every lock; recorded under the history's. */
static void sample_vm(struct daemon *d, struct history *h, const struct vm_want *w, int64_t t_ms,
                      unsigned *running)
{
    struct history_counters c = {0};
    double v[HISTORY_FIELDS];
    struct vm_hist *vh;
    json_t *st = NULL;
    bool ok = w->active && !rt_vm_stats(d, w->tenant, w->name, &st);

    if (ok) {
        c.pid = w->pid;
        c.have_wait = w->pid > 0 && vmproc_sched_wait_ns(w->pid, &c.wait_ns);
        c.mono_ns = clock_ns(CLOCK_MONOTONIC);
        counters_of(st, &c, v);
        json_decref(st);
        (*running)++;
    }
    pthread_mutex_lock(&h->lock);
    vh = vm_find(h, w->tenant, w->name);
    if (!vh && ok && h->n < HISTORY_VMS_MAX) {
        struct vm_hist **p = realloc(h->vms, (h->n + 1) * sizeof(*p));

        if (p) {
            h->vms = p;
            vh = calloc(1, sizeof(*vh));
            if (vh) {
                snprintf(vh->tenant, sizeof(vh->tenant), "%s", w->tenant);
                snprintf(vh->name, sizeof(vh->name), "%s", w->name);
                history_ring_init(&vh->ring, HISTORY_VM_NFIELDS);
                h->vms[h->n++] = vh;
            }
        }
    }
    if (vh) {
        vh->listed = true;
        if (ok) {
            history_rates(vh->have_prev ? &vh->prev : NULL, &c, w->vcpus, v);
            history_ring_add(&vh->ring, t_ms, v);
            vh->prev = c;
            vh->have_prev = true;
        } else {
            vh->have_prev = false;
        }
    }
    pthread_mutex_unlock(&h->lock);
}

static void round_once(struct daemon *d, struct history *h)
{
    int64_t t_ms = clock_ns(CLOCK_REALTIME) / 1000000;
    unsigned long long busy = 0, total = 0;
    unsigned running = 0;
    double hv[HISTORY_FIELDS];
    size_t i, j;

    /* Who to sample, from the store under d->lock; the VMMs are asked outside it. */
    h->nwant = 0;
    pthread_mutex_lock(&d->lock);
    d->store->ops->doc_list(d->store, "vm", NULL, each_vm, h);
    pthread_mutex_unlock(&d->lock);

    pthread_mutex_lock(&h->lock);
    for (i = 0; i < h->n; i++)
        h->vms[i]->listed = false;
    pthread_mutex_unlock(&h->lock);
    for (i = 0; i < h->nwant; i++)
        sample_vm(d, h, &h->want[i], t_ms, &running);

    pthread_mutex_lock(&h->lock);
    /* A VM no longer in the store (deleted) loses its history. */
    for (i = j = 0; i < h->n; i++) {
        if (h->vms[i]->listed)
            h->vms[j++] = h->vms[i];
        else
            free(h->vms[i]);
    }
    h->n = j;
    hv[HISTORY_HOST_CPU] = NAN;
    if (!host_cpu(&busy, &total)) {
        if (h->cpu_total && total > h->cpu_total && busy >= h->cpu_busy)
            hv[HISTORY_HOST_CPU] = (double)(busy - h->cpu_busy) / (double)(total - h->cpu_total);
        h->cpu_busy = busy;
        h->cpu_total = total;
    }
    hv[HISTORY_HOST_MEMORY_USED] = host_mem_used();
    hv[HISTORY_HOST_VMS_RUNNING] = running;
    history_ring_add(&h->host, t_ms, hv);
    pthread_mutex_unlock(&h->lock);
}

static void history_round(void *arg)
{
    struct daemon *d = arg;

    round_once(d, hist_of(d));
}

int history_start(struct daemon *d)
{
    struct history *h = calloc(1, sizeof(*h));
    int ret;

    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    history_ring_init(&h->host, HISTORY_HOST_NFIELDS);
    d->history = h;
    ret = ticker_start(&h->tick, HISTORY_STEP_S * 1000000000ull, history_round, d);
    if (ret) {
        d->history = NULL;
        pthread_mutex_destroy(&h->lock);
        free(h);
        return ret;
    }
    return 0;
}

void history_stop(struct daemon *d)
{
    struct history *h = hist_of(d);

    if (!h)
        return;
    ticker_stop(&h->tick);
    pthread_mutex_destroy(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        free(h->vms[i]);
    free(h->vms);
    free(h->want);
    free(h);
    d->history = NULL;
}

static json_t *wrap(json_t *series)
{
    if (!series)
        return NULL;
    return json_pack("{s:i,s:i,s:o}", "interval_s", HISTORY_STEP_S, "consolidated_s",
                     HISTORY_COARSE_S, "series", series);
}

static int64_t since_ms_of(int64_t since_s)
{
    if (since_s <= 0 || since_s > HISTORY_WINDOW_S)
        since_s = HISTORY_WINDOW_S;
    return clock_ns(CLOCK_REALTIME) / 1000000 - since_s * 1000;
}

int history_vm_json(struct daemon *d, const char *tenant, const char *name, int64_t since_s,
                    json_t **out)
{
    struct history *h = hist_of(d);
    struct vm_hist *vh;
    int ret = 0;

    *out = NULL;
    if (!h)
        return -ESRCH;
    pthread_mutex_lock(&h->lock);
    vh = vm_find(h, tenant, name);
    if (!vh) {
        /* Not sampled yet (it has not run since tesserad started): no points. */
        static const struct history_ring none = {.nfields = HISTORY_VM_NFIELDS};

        if (!(*out = wrap(history_ring_json(&none, history_vm_names, 0))))
            ret = -ENOMEM;
    } else if (!(*out = wrap(history_ring_json(&vh->ring, history_vm_names, since_ms_of(since_s)))))
        ret = -ENOMEM;
    pthread_mutex_unlock(&h->lock);
    return ret;
}

int history_host_json(struct daemon *d, int64_t since_s, json_t **out)
{
    struct history *h = hist_of(d);
    int ret = 0;

    *out = NULL;
    if (!h)
        return -ESRCH;
    pthread_mutex_lock(&h->lock);
    *out = wrap(history_ring_json(&h->host, history_host_names, since_ms_of(since_s)));
    if (!*out)
        ret = -ENOMEM;
    pthread_mutex_unlock(&h->lock);
    return ret;
}
