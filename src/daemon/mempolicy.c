/* The balloon policy (mempolicy.h; docs/resources.md). */
#include "daemon/mempolicy.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/ticker.h"
#include "daemon/cgroup.h"
#include "daemon/daemon.h"
#include "daemon/rt.h"

#define MIB         (1ull << 20)
#define GUEST_FLOOR (64 * MIB)  /* a guest is never ballooned below this much RAM */
#define STEP_MAX    (256 * MIB) /* the most one round moves one balloon */
#define ROUND_NS                                                              \
    250000000L /* four rounds a second: a guest filling its cache at 100 MB/s \
                * moves 25 MB between two */
#define POLICY_VMS_MAX 1024

uint64_t mempolicy_margin(uint64_t memory)
{
    uint64_t m = memory / 16;

    return m > 24 * MIB ? m : 24 * MIB;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t round_mib(uint64_t v)
{
    return v / MEMPOLICY_STEP * MEMPOLICY_STEP;
}

/* The most the balloon of v may hold: the guest keeps its reservation and GUEST_FLOOR. */
static uint64_t max_target(const struct mempolicy_vm *v)
{
    uint64_t keep = v->reservation > GUEST_FLOOR ? v->reservation : GUEST_FLOOR;

    return v->memory > keep ? v->memory - keep : 0;
}

/* The low watermark: an eighth of the limit, at least 64 MiB, at most a quarter. */
static uint64_t watermark_low(uint64_t limit)
{
    uint64_t low = limit / 8 > 64 * MIB ? limit / 8 : 64 * MIB;

    return low > limit / 4 ? limit / 4 : low;
}

bool mempolicy_quiet(uint64_t limit, uint64_t used, uint64_t held, unsigned rounds_since)
{
    uint64_t free = limit > used ? limit - used : 0;

    return free >= watermark_low(limit) && !held && rounds_since < MEMPOLICY_QUIET_ROUNDS;
}

void mempolicy_plan(uint64_t limit, uint64_t used, struct mempolicy_vm *vms, size_t n,
                    struct mempolicy_state *st)
{
    uint64_t free = limit > used ? limit - used : 0, inflight = 0, need, budget;
    double wsum, give_sum;
    size_t i, pass;

    memset(st, 0, sizeof(*st));
    st->limit = limit;
    st->used = used;
    st->low = watermark_low(limit);
    st->high = 2 * st->low;
    for (i = 0; i < n; i++) {
        struct mempolicy_vm *v = &vms[i];
        uint64_t margin = mempolicy_margin(v->memory);

        v->new_target = v->target;
        if (v->target > max_target(v))
            v->new_target = round_mib(max_target(v)); /* a reservation raised meanwhile */
        /* A guest short of memory by its own account gets it back now. */
        if (v->have_stats && v->available < margin / 2 && v->new_target) {
            uint64_t back = min_u64(v->new_target, margin - v->available);

            v->new_target = round_mib(v->new_target - back);
        }
        if (v->target > v->actual)
            inflight += v->target - v->actual;
    }
    if (free < st->low) {
        /* Take back up to the high watermark, less what balloons still inflating will
         * bring; by idle memory over shares. */
        need = st->high - free;
        need = need > inflight ? need - inflight : 0;
        for (pass = 0; pass < 3 && need >= MEMPOLICY_STEP; pass++) {
            uint64_t took = 0;

            wsum = 0;
            for (i = 0; i < n; i++) {
                struct mempolicy_vm *v = &vms[i];
                uint64_t margin = mempolicy_margin(v->memory), idle, room;

                if (!v->have_stats || v->available <= margin || v->new_target < v->target)
                    continue;
                idle = v->available - margin - (v->new_target - v->target);
                room = max_target(v) > v->new_target ? max_target(v) - v->new_target : 0;
                if (min_u64(idle, room) >= MEMPOLICY_STEP)
                    wsum += (double)min_u64(idle, room) / (double)(v->shares ? v->shares : 1);
            }
            if (wsum <= 0)
                break;
            for (i = 0; i < n; i++) {
                struct mempolicy_vm *v = &vms[i];
                uint64_t margin = mempolicy_margin(v->memory), idle, room, can, take;
                double w;

                if (!v->have_stats || v->available <= margin || v->new_target < v->target)
                    continue;
                idle = v->available - margin - (v->new_target - v->target);
                room = max_target(v) > v->new_target ? max_target(v) - v->new_target : 0;
                can = min_u64(min_u64(idle, room), STEP_MAX - (v->new_target - v->target));
                if (can < MEMPOLICY_STEP)
                    continue;
                w = (double)min_u64(idle, room) / (double)(v->shares ? v->shares : 1);
                take =
                    round_mib(min_u64(can, (uint64_t)((double)need * w / wsum) + MEMPOLICY_STEP));
                v->new_target += take;
                took += take;
            }
            need = need > took ? need - took : 0;
            if (!took)
                break;
        }
    } else if (free > st->high) {
        /* No pressure: give back a step of each balloon, within what stays above high. */
        budget = free - st->high;
        give_sum = 0;
        for (i = 0; i < n; i++) {
            uint64_t t = vms[i].new_target;

            if (t)
                give_sum += (double)min_u64(t, t / 4 > 64 * MIB ? t / 4 : 64 * MIB);
        }
        for (i = 0; i < n && give_sum > 0; i++) {
            struct mempolicy_vm *v = &vms[i];
            uint64_t t = v->new_target, step;

            if (!t)
                continue;
            step = min_u64(t, t / 4 > 64 * MIB ? t / 4 : 64 * MIB);
            if (give_sum > (double)budget)
                step = (uint64_t)((double)step * (double)budget / give_sum);
            /* The last MiB goes too: a balloon left at a MiB would never empty. */
            v->new_target = step >= t ? 0 : round_mib(t - step);
        }
    }
    for (i = 0; i < n; i++)
        st->change += (int64_t)vms[i].new_target - (int64_t)vms[i].target;
}

/* ---- The thread ---- */

struct policy_vm {
    char tenant[STORE_NAME_LEN], name[STORE_NAME_LEN];
    struct mempolicy_vm v;
};

struct mempolicy {
    struct ticker tick;
    pthread_mutex_t lock; /* last */
    struct mempolicy_state last;
    struct policy_vm *vms;
    size_t n, cap;
    uint64_t held;  /* the balloons' targets together at the last full round */
    unsigned since; /* rounds since then */
};

static struct mempolicy *mp_of(struct daemon *d)
{
    return d->mempolicy;
}

static int each_vm(void *arg, const char *tenant, const char *name, const char *doc)
{
    struct mempolicy *mp = arg;
    json_t *vm = json_loads(doc, 0, NULL);
    const char *state = json_string_value(json_object_get(vm, "state"));
    const json_t *mem = json_object_get(json_object_get(vm, "resources"), "memory");

    if (vm && state && !strcmp(state, "running") && mp->n < POLICY_VMS_MAX) {
        if (mp->n == mp->cap) {
            size_t cap = mp->cap ? 2 * mp->cap : 16;
            struct policy_vm *p = realloc(mp->vms, cap * sizeof(*p));

            if (!p) {
                json_decref(vm);
                return -ENOMEM;
            }
            mp->vms = p;
            mp->cap = cap;
        }
        struct policy_vm *p = &mp->vms[mp->n++];

        memset(p, 0, sizeof(*p));
        snprintf(p->tenant, sizeof(p->tenant), "%s", tenant);
        snprintf(p->name, sizeof(p->name), "%s", name);
        p->v.memory = (uint64_t)json_integer_value(json_object_get(vm, "memory_bytes"));
        p->v.reservation = (uint64_t)json_integer_value(json_object_get(mem, "reservation_bytes"));
        p->v.shares = (uint64_t)json_integer_value(json_object_get(mem, "shares"));
        if (!p->v.shares)
            p->v.shares = 1000;
    }
    json_decref(vm);
    return 0;
}

/* The host's own view when no bound is set: MemTotal and MemAvailable of /proc/meminfo. */
static int meminfo(uint64_t *total, uint64_t *avail)
{
    char line[128];
    unsigned long long kb;
    FILE *f = fopen("/proc/meminfo", "re");

    *total = *avail = 0;
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *avail = kb * 1024;
    }
    fclose(f);
    return *total ? 0 : -EIO;
}

static void round_once(struct daemon *d, struct mempolicy *mp)
{
    struct mempolicy_state st;
    struct mempolicy_vm *plan;
    uint64_t limit = 0, used = 0;
    char err[RT_ERR_LEN], text[80];
    bool enabled = true;
    json_int_t bound = 0;
    size_t i;

    /* The inputs that live in the store, under the lock; everything slow outside it. */
    mp->n = 0;
    pthread_mutex_lock(&d->lock);
    {
        char *doc;

        if (!d->store->ops->doc_get(d->store, "host", "", "host", &doc)) {
            json_t *h = json_loads(doc, 0, NULL);

            bound = json_integer_value(json_object_get(h, "vm_memory_bytes"));
            if (json_is_false(json_object_get(h, "balloon_policy")))
                enabled = false;
            json_decref(h);
            free(doc);
        }
    }
    if (enabled)
        d->store->ops->doc_list(d->store, "vm", NULL, each_vm, mp);
    pthread_mutex_unlock(&d->lock);
    if (!enabled || !mp->n)
        return;
    if (bound > 0 && d->cg.mode != CGROUP_NONE) {
        struct cgroup_usage u;

        cgroup_usage(&d->cg, "", &u, err);
        if (!u.have_memory)
            return;
        limit = (uint64_t)bound;
        used = u.memory_bytes;
    } else {
        uint64_t total, avail;

        if (meminfo(&total, &avail))
            return;
        limit = total;
        used = total - avail;
    }
    /* Nothing to take and nothing held: asking every VM would change nothing. */
    if (mempolicy_quiet(limit, used, mp->held, mp->since)) {
        mp->since++;
        pthread_mutex_lock(&mp->lock);
        mp->last = (struct mempolicy_state){.limit = limit,
                                            .used = used,
                                            .low = watermark_low(limit),
                                            .high = 2 * watermark_low(limit)};
        pthread_mutex_unlock(&mp->lock);
        return;
    }
    mp->since = 0;
    mp->held = 0;
    for (i = 0; i < mp->n; i++) {
        struct policy_vm *p = &mp->vms[i];
        json_t *b = NULL, *gs;

        if (rt_vm_call(d, p->tenant, p->name, "GET", "/v1/vm/balloon", NULL, &b, err) || !b) {
            json_decref(b);
            continue; /* no balloon, or not answering: left alone */
        }
        gs = json_object_get(b, "guest_stats");
        p->v.target = (uint64_t)json_integer_value(json_object_get(b, "target_bytes"));
        p->v.actual = (uint64_t)json_integer_value(json_object_get(b, "actual_bytes"));
        p->v.have_stats = json_is_integer(json_object_get(gs, "available_bytes"));
        p->v.available = (uint64_t)json_integer_value(json_object_get(gs, "available_bytes"));
        json_decref(b);
    }
    plan = malloc(mp->n * sizeof(*plan));
    if (!plan)
        return;
    for (i = 0; i < mp->n; i++)
        plan[i] = mp->vms[i].v;
    mempolicy_plan(limit, used, plan, mp->n, &st);
    for (i = 0; i < mp->n; i++)
        mp->held += plan[i].new_target;
    for (i = 0; i < mp->n; i++) {
        struct policy_vm *p = &mp->vms[i];

        if (plan[i].new_target == plan[i].target)
            continue;
        snprintf(text, sizeof(text), "{\"target_bytes\": %" PRIu64 "}", plan[i].new_target);
        json_t *body = json_loads(text, 0, NULL);

        if (rt_vm_call(d, p->tenant, p->name, "PUT", "/v1/vm/balloon", body, NULL, err))
            fprintf(stderr, "tesserad: balloon policy: VM %s/%s: %s\n", p->tenant, p->name, err);
        json_decref(body);
    }
    free(plan);
    pthread_mutex_lock(&mp->lock);
    mp->last = st;
    pthread_mutex_unlock(&mp->lock);
}

static void policy_round(void *arg)
{
    struct daemon *d = arg;

    round_once(d, mp_of(d));
}

int mempolicy_start(struct daemon *d)
{
    struct mempolicy *mp = calloc(1, sizeof(*mp));
    int ret;

    if (!mp)
        return -ENOMEM;
    pthread_mutex_init(&mp->lock, NULL);
    d->mempolicy = mp;
    ret = ticker_start(&mp->tick, ROUND_NS, policy_round, d);
    if (ret) {
        d->mempolicy = NULL;
        pthread_mutex_destroy(&mp->lock);
        free(mp);
        return ret;
    }
    return 0;
}

void mempolicy_stop(struct daemon *d)
{
    struct mempolicy *mp = mp_of(d);

    if (!mp)
        return;
    ticker_stop(&mp->tick);
    pthread_mutex_destroy(&mp->lock);
    free(mp->vms);
    free(mp);
    d->mempolicy = NULL;
}

void mempolicy_last(struct daemon *d, struct mempolicy_state *out)
{
    struct mempolicy *mp = mp_of(d);

    memset(out, 0, sizeof(*out));
    if (!mp)
        return;
    pthread_mutex_lock(&mp->lock);
    *out = mp->last;
    pthread_mutex_unlock(&mp->lock);
}
