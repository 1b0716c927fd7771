/* Operations (ops.h): a list, newest first, under the daemon's lock; one detached-less
 * worker thread per running operation, joined when it is dropped or at ops_fini(). */
#include "daemon/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct op {
    struct op *next;
    struct daemon *d;
    char id[OPS_ID_LEN];
    char tenant[STORE_NAME_LEN];
    char action[STORE_NAME_LEN];
    char target[2 * STORE_NAME_LEN];
    char error[STORE_TEXT_LEN];
    int64_t created, finished;
    bool done;
    bool joined;
    pthread_t thread;
    ops_work_fn work;
    void *arg;
};

struct ops {
    struct op *head;
    pthread_cond_t cond; /* broadcast when an operation finishes; waits on d->lock */
    size_t count;
};

int ops_init(struct daemon *d)
{
    struct ops *o = calloc(1, sizeof(*o));
    pthread_condattr_t ca;

    if (!o)
        return -ENOMEM;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->ops = o;
    return 0;
}

static void op_free(struct op *op)
{
    if (!op->joined)
        pthread_join(op->thread, NULL);
    free(op);
}

void ops_fini(struct daemon *d)
{
    struct ops *o = d->ops;
    struct op *op, *next;

    if (!o)
        return;
    /* Workers take d->lock to finish: join them without it. The list only shrinks here. */
    for (op = o->head; op; op = next) {
        next = op->next;
        op_free(op);
    }
    pthread_cond_destroy(&o->cond);
    free(o);
    d->ops = NULL;
}

static void *op_thread(void *arg)
{
    struct op *op = arg;

    op->work(op->d, op, op->arg);
    free(op->arg);
    op->arg = NULL;
    return NULL;
}

/* Drops the oldest finished operations beyond OPS_KEEP. Called with d->lock held. */
static void ops_trim(struct ops *o)
{
    struct op **pp, *op;
    size_t n = 0;

    for (pp = &o->head; (op = *pp);) {
        if (++n > OPS_KEEP && op->done) {
            *pp = op->next;
            o->count--;
            op_free(op);
            continue;
        }
        pp = &op->next;
    }
}

int ops_create(struct daemon *d, const char *tenant, const char *action, const char *target,
               ops_work_fn work, void *arg, char *id_out)
{
    struct ops *o = d->ops;
    struct op *op = calloc(1, sizeof(*op));
    uint8_t rnd[8];
    size_t i;

    if (!op) {
        free(arg);
        return -ENOMEM;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        free(op);
        free(arg);
        return -EIO;
    }
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(op->id + 2 * i, 3, "%02x", rnd[i]);
    op->d = d;
    snprintf(op->tenant, sizeof(op->tenant), "%s", tenant);
    snprintf(op->action, sizeof(op->action), "%s", action);
    snprintf(op->target, sizeof(op->target), "%s", target);
    op->created = time(NULL);
    op->work = work;
    op->arg = arg;
    if (pthread_create(&op->thread, NULL, op_thread, op)) {
        free(op);
        free(arg);
        return -EAGAIN;
    }
    op->next = o->head;
    o->head = op;
    o->count++;
    ops_trim(o);
    memcpy(id_out, op->id, OPS_ID_LEN);
    return 0;
}

void ops_done(struct daemon *d, struct op *op, const char *err)
{
    pthread_mutex_lock(&d->lock);
    snprintf(op->error, sizeof(op->error), "%s", err ? err : "");
    op->finished = time(NULL);
    op->done = true;
    pthread_cond_broadcast(&d->ops->cond);
    pthread_mutex_unlock(&d->lock);
}

const char *ops_tenant(const struct op *op)
{
    return op->tenant;
}

const char *ops_target(const struct op *op)
{
    return op->target;
}

static struct op *ops_find(struct daemon *d, const char *id, const char *tenant)
{
    struct op *op;

    for (op = d->ops->head; op; op = op->next)
        if (!strcmp(op->id, id))
            return !tenant || !strcmp(tenant, op->tenant) ? op : NULL;
    return NULL;
}

static json_t *op_json(const struct op *op)
{
    const char *status = !op->done ? "running" : op->error[0] ? "failure" : "success";

    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:I,s:o}", "id", op->id, "tenant", op->tenant,
                     "action", op->action, "target", op->target, "status", status, "error",
                     op->error[0] ? op->error : NULL, "created", (json_int_t)op->created,
                     "finished", op->done ? json_integer(op->finished) : json_null());
}

json_t *ops_get_json(struct daemon *d, const char *id, const char *tenant)
{
    struct op *op = ops_find(d, id, tenant);

    return op ? op_json(op) : NULL;
}

json_t *ops_list_json(struct daemon *d, const char *tenant)
{
    json_t *arr = json_array(), *item;
    struct op *op;

    for (op = d->ops->head; arr && op; op = op->next) {
        if (tenant && strcmp(tenant, op->tenant))
            continue;
        item = op_json(op);
        if (!item || json_array_append_new(arr, item)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int ops_wait(struct daemon *d, const char *id, const char *tenant, unsigned timeout_s)
{
    struct timespec until;
    struct op *op;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_s;
    for (;;) {
        /* Looked up again after each wake: the table may have been trimmed meanwhile. */
        op = ops_find(d, id, tenant);
        if (!op)
            return -ENOENT;
        if (op->done)
            return 0;
        if (pthread_cond_timedwait(&d->ops->cond, &d->lock, &until) == ETIMEDOUT)
            return 0;
    }
}
