/* GET /vms/{name}/stats/history and GET /host/stats/history: the daemon's own metric history
 * (history.h), scoped as GET /vms/{name}/stats is (another tenant's VM is a 404). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_int.h"
#include "daemon/history.h"

/* ?since=SECONDS: how far back, 1..HISTORY_WINDOW_S; all of the hour when absent. */
static int since_param(struct req *q, int64_t *out)
{
    const char *s = q->rq->since;
    char *end;
    long v;

    *out = HISTORY_WINDOW_S;
    if (!s)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > HISTORY_WINDOW_S) {
        reply_error(q->r, 400, "since", "since must be a number of seconds from 1 to %d",
                    HISTORY_WINDOW_S);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static void reply_history(struct req *q, int ret, json_t *out)
{
    if (ret == -ENOMEM)
        reply_error(q->r, 500, NULL, "out of memory");
    else if (ret)
        reply_error(q->r, 503, NULL, "the metric history is not kept (its thread does not run)");
    else
        reply_json(q->r, 200, out);
}

void api_vm_stats_history(struct req *q)
{
    json_t *vm = doc_load(q, "vm", q->scope, q->seg[1], "VM"), *out = NULL;
    int64_t since;
    int ret;

    if (!vm || since_param(q, &since))
        goto done;
    ret = history_vm_json(q->d, q->scope, q->seg[1], since, &out);
    if (!ret) {
        /* What the graphs scale against: the VM's size and its state now. */
        json_object_set(out, "state", json_object_get(vm, "state"));
        json_object_set(out, "cpus", json_object_get(vm, "cpus"));
        json_object_set(out, "memory_bytes", json_object_get(vm, "memory_bytes"));
    }
    reply_history(q, ret, out);
done:
    json_decref(vm);
}

void api_host_stats_history(struct req *q)
{
    json_t *out = NULL;
    int64_t since;
    int ret;

    /* The host's load tells of every tenant's VMs: the platform's alone (a read route's role
     * is the handler's to check). */
    if (need_route_role(q, "the host's metric history") || since_param(q, &since))
        return;
    ret = history_host_json(q->d, since, &out);
    if (!ret) {
        json_object_set_new(out, "cpus", json_integer(q->d->host.cpus));
        json_object_set_new(out, "memory_bytes", json_integer((json_int_t)q->d->host.memory_bytes));
    }
    reply_history(q, ret, out);
}
