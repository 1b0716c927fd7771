/* Operations: the long actions of the API (a VM's start, stop, shutdown...), run on a worker
 * thread each and kept in memory to be polled or waited on (GET /api/v1/operations/{id},
 * .../wait). Like Incus's, they do not survive a restart of tesserad: what they changed is
 * in the store, and a VM's state is found again from its process.
 *
 * Locking: every ops_* call but ops_create's worker runs with d->lock held (daemon.h). The
 * worker runs WITHOUT it and takes it itself around store work; ops_done() and
 * ops_progress() take it. ops_wait() releases it while it waits. */
#ifndef TESSERA_DAEMON_OPS_H
#define TESSERA_DAEMON_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/store.h"

#define OPS_ID_LEN   17   /* 16 hex digits and the NUL */
#define OPS_KEEP     1000 /* finished operations remembered, oldest dropped first */
#define OPS_WAIT_MAX 3600 /* seconds one wait may last */

struct op;

/* work(d, op, arg) runs on its own thread without d->lock and ends by calling ops_done();
 * arg is freed with free() after it returns. */
typedef void (*ops_work_fn)(struct daemon *d, struct op *op, void *arg);

int ops_init(struct daemon *d);
/* Waits for every running worker, then frees the table. Called without d->lock. */
void ops_fini(struct daemon *d);

/* Starts an operation; *id_out (OPS_ID_LEN) gets its id. -ENOMEM, -EAGAIN (no thread). */
int ops_create(struct daemon *d, const char *tenant, const char *action, const char *target,
               ops_work_fn work, void *arg, char *id_out);
/* Marks the operation finished: err NULL (success) or its message. Takes d->lock. */
void ops_done(struct daemon *d, struct op *op, const char *err);
/* The operation's tenant and target, for its worker. */
const char *ops_tenant(const struct op *op);
const char *ops_target(const struct op *op);

/* The operation as JSON (new reference); NULL when there is no such id or it belongs to
 * another tenant than `tenant` (NULL: anyone's). */
json_t *ops_get_json(struct daemon *d, const char *id, const char *tenant);
/* Every operation of `tenant` (NULL: everyone's), newest first. */
json_t *ops_list_json(struct daemon *d, const char *tenant);
/* Waits until the operation is finished or timeout_s passed; -ENOENT as ops_get_json. */
int ops_wait(struct daemon *d, const char *id, const char *tenant, unsigned timeout_s);

#endif
