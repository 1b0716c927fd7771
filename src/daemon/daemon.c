/* Bringing a tesserad up and down (daemon.h): the state directory's layout, the store, the
 * host's size, the operations table, the runtime, the shipped templates, and recovery of the
 * VMs that ran on while tesserad was down. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/events.h"
#include "daemon/history.h"
#include "daemon/mempolicy.h"
#include "daemon/metrics.h"
#include "daemon/ops.h"
#include "daemon/rt.h"

/* The VMM is the `tessera` beside our own executable (build/ or the install's bin/). */
static void find_tessera(struct daemon *d)
{
    char self[PATH_MAX], *dir;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    d->tessera[0] = '\0';
    if (n <= 0)
        return;
    self[n] = '\0';
    dir = dirname(self);
    if (snprintf(d->tessera, sizeof(d->tessera), "%s/tessera", dir) >= (int)sizeof(d->tessera) ||
        access(d->tessera, X_OK))
        d->tessera[0] = '\0';
}

int daemon_init(struct daemon *d, const char *state_dir, const char *cgroup_parent, char *err)
{
    char path[PATH_MAX];
    long pages, psize, cpus;
    int ret;

    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
    if (snprintf(d->state_dir, sizeof(d->state_dir), "%s", state_dir) >=
            (int)sizeof(d->state_dir) ||
        snprintf(path, sizeof(path), "%s/tesserad.db", state_dir) >= (int)sizeof(path)) {
        snprintf(err, STORE_ERR_LEN, "--state-dir %.400s: path too long (at most %d bytes)",
                 state_dir, DAEMON_STATE_DIR_MAX - 1);
        return -ENAMETOOLONG;
    }
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pages = sysconf(_SC_PHYS_PAGES);
    psize = sysconf(_SC_PAGESIZE);
    d->host.cpus = cpus > 0 ? (unsigned)cpus : 1;
    d->host.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    find_tessera(d);
    if (!cgroup_parent) {
        snprintf(d->cg.why, sizeof(d->cg.why), "tesserad runs without cgroups (--no-cgroups)");
    } else {
        char cerr[CGROUP_ERR_LEN];

        ret = cgroup_host_open(&d->cg, cgroup_parent, cerr);
        if (ret) {
            snprintf(err, STORE_ERR_LEN, "cgroups: %.400s", cerr);
            return ret;
        }
    }
    ret = store_open_sqlite(path, &d->store, err);
    if (ret)
        return ret;
    ret = ops_init(d);
    if (!ret)
        ret = events_bus_new(&d->events);
    if (!ret)
        ret = metrics_new(&d->metrics);
    if (!ret)
        ret = api_metrics_init(d);
    if (ret) {
        snprintf(err, STORE_ERR_LEN, "out of memory");
        goto fini_ops;
    }
    ret = rt_init(d, err);
    if (ret)
        goto fini_ops;
    pthread_mutex_lock(&d->lock);
    ret = api_shipped_templates(d, err);
    if (!ret) {
        api_net_recover(d);
        api_router_recover(d);
        ret = api_recover(d);
        if (ret)
            snprintf(err, STORE_ERR_LEN, "finding the VMs again: %.400s", store_error(d->store));
        else
            api_resources_init(d);
    }
    pthread_mutex_unlock(&d->lock);
    if (ret)
        goto fini_rt;
    ret = mempolicy_start(d);
    if (ret) {
        snprintf(err, STORE_ERR_LEN, "the balloon policy's thread: %s", strerror(-ret));
        goto fini_rt;
    }
    ret = history_start(d);
    if (ret) {
        snprintf(err, STORE_ERR_LEN, "the metric history's thread: %s", strerror(-ret));
        goto stop_mempolicy;
    }
    return 0;
stop_mempolicy:
    mempolicy_stop(d);
fini_rt:
    rt_fini(d);
fini_ops:
    metrics_free(d->metrics);
    events_bus_free(d->events);
    ops_fini(d);
    store_close(d->store);
    d->store = NULL;
    return ret;
}

void daemon_fini(struct daemon *d)
{
    /* The VMs run on: they are their own processes, found again on the next start. */
    history_stop(d);
    mempolicy_stop(d);
    rt_fini(d);
    ops_fini(d);
    metrics_free(d->metrics);
    events_bus_free(d->events);
    store_close(d->store);
    d->store = NULL;
    pthread_mutex_destroy(&d->lock);
}
