/* The per-VM control API: a JSON-over-HTTP/1.1 server on a unix socket, one per `tessera run`
 * process (docs/api.md, docs/api.yaml). The daemon and `tessera vm` are its clients.
 *
 * The server never touches the data path: every action is a call through struct control_ops,
 * which the VMM implements. Requests are hostile input: bodies are capped at CONTROL_BODY_MAX
 * (413 beyond), parsed strictly (unknown fields, wrong types and out-of-range numbers are a 400
 * whose message names the field), and every error is a JSON object {"error": "message"}.
 *
 * Slow or idle clients cannot lock others out: a client is a process (SO_PEERCRED), served on
 * at most CONTROL_CONN_MAX connections at once (more from it wait, unserved, until one of its
 * own closes) out of CONTROL_CONN_TOTAL for everyone, and a connection that has not sent a
 * whole request CONTROL_REQUEST_TIMEOUT_S after it connected (or after its last answer) is
 * closed.
 *
 * Threads: libmicrohttpd runs one internal thread (the API thread) that serves every
 * connection; all ops are called on it, one at a time, under the server's mutex. So ops never
 * run concurrently with each other, but they do run concurrently with the VMM's own threads.
 * A second thread (the acceptor) accepts connections, hands them to the API thread and
 * closes the ones past their deadline; it never calls an op. */
#ifndef TESSERA_VMM_CONTROL_H
#define TESSERA_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CONTROL_ERR_LEN           512         /* err buffers below: one line, with its NUL */
#define CONTROL_BODY_MAX          (64u << 10) /* request body cap; larger bodies get 413 */
#define CONTROL_CONN_MAX          16 /* connections one client (process) is served at once */
#define CONTROL_CONN_TOTAL        64 /* connections of all clients served at once */
#define CONTROL_REQUEST_TIMEOUT_S 10 /* from connecting (or the last answer) to a whole request */
#define CONTROL_ALLOW_LEN         32 /* struct control_response's allow */

/* Range limits of request fields (docs/api.yaml states the same). */
#define CONTROL_SHUTDOWN_TIMEOUT_DEFAULT 30
#define CONTROL_SHUTDOWN_TIMEOUT_MAX     3600
#define CONTROL_BALLOON_PAGE             4096ull      /* target_bytes must be a multiple */
#define CONTROL_BALLOON_MAX              (1ull << 50) /* 1 PiB: beyond any RAM we map */
#define CONTROL_DOWNTIME_MAX_MS          600000
#define CONTROL_MIGRATE_TIMEOUT_DEFAULT  30
#define CONTROL_MIGRATE_TIMEOUT_MAX      3600

/* PUT /v1/vm/migrate, checked: the strings live as long as the call. */
struct control_migrate_req {
    const char *uri;             /* "tcp:HOST:PORT" or "tls:HOST:PORT" */
    const char *mode;            /* "live", "suspend" or "cold" */
    unsigned downtime_ms;        /* live: the stop-and-copy's limit */
    bool copy_disks;             /* the disks' contents travel too (block migration) */
    unsigned progress_timeout_s; /* fail when no byte moves this long */
    const char *tls_cert;        /* tls: only: this end's certificate, key and the CA that the */
    const char *tls_key;         /* target's certificate must chain to (PEM files the VMM */
    const char *tls_ca;          /* process reads); NULL when absent */
};

/* A long action's op returns this (> 0) when it goes on on a worker: the reply is 202 with the
 * status object in *out, and a GET of the action's path follows it. */
#define CONTROL_STARTED 1

/* The VMM side. Every member:
 *   - is called on the API thread with the server's mutex held, so never concurrently with
 *     another member; it must not block for long (the whole API waits) and must never wait for
 *     the thread that calls control_stop() (that thread waits for the API thread: deadlock);
 *   - returns 0 or -errno. The server maps -EBUSY and -EALREADY to 409 (wrong state for the
 *     action), -EINVAL and -ERANGE to 400 (a value the VM cannot take, e.g. a balloon target
 *     above its RAM), -ENODEV to 409 (the VM lacks the device), -ENOTSUP and -ENOSYS to 501, and
 *     anything else to 500;
 *   - through *out, hands over a new jansson reference (the server json_decref()s it); *out
 *     starts NULL, must be non-NULL when the call returns 0, and is released if it fails.
 * A NULL member means "not supported" (501). */
struct control_ops {
    /* {"state": "running|paused|shutting-down|stopped", "uptime_s": N, "config": {...}} */
    int (*describe)(void *vm, json_t **out);
    int (*pause)(void *vm);
    int (*resume)(void *vm);
    /* Graceful: asks the guest to power off and returns at once; the VMM falls back to stop
     * after timeout_s seconds (1..CONTROL_SHUTDOWN_TIMEOUT_MAX). */
    int (*shutdown)(void *vm, unsigned timeout_s);
    /* Hard stop: the process exits. Best done shortly after returning, so the reply reaches
     * the client; a client that sees the connection close instead takes that as success. */
    int (*stop)(void *vm);
    int (*reset)(void *vm);
    /* target_bytes: a multiple of CONTROL_BALLOON_PAGE, at most CONTROL_BALLOON_MAX; the VMM
     * returns -EINVAL when it exceeds the guest's RAM. */
    int (*balloon_set)(void *vm, uint64_t target_bytes);
    int (*balloon_get)(void *vm, json_t **out); /* {"target_bytes": N, "actual_bytes": N} */
    int (*stats)(void *vm, json_t **out);       /* per-vCPU, devices, memory */
    /* Saves a snapshot to `file` (src/vmm/snapshot.h). Either it is done: 0 and what it
     * measured {"file", "bytes", "ram_pages", "zero_pages", "paused_ms", "total_ms", "disks"}
     * (200); or it goes on on a worker: CONTROL_STARTED and the job's status as
     * snapshot_status gives it (202). On failure a message in err (CONTROL_ERR_LEN) is the
     * reply: -EINVAL a name refused, -EEXIST the file or one of its images exists (409),
     * -EBUSY a migration or another snapshot job runs. */
    int (*snapshot)(void *vm, const char *file, json_t **out, char *err);
    /* The snapshots the VM's disks descend from (src/vmm/snapshot.h), oldest first:
     * {"writable_disks": N, "snapshots": [{"file", "taken", "bytes", "disks": [slot...],
     * "parent": file or null}]}. -EBUSY while a migration runs. */
    int (*snapshots)(void *vm, json_t **out);
    /* Deletes snapshot `file` (snapshot.h): merges it out of the VM's chain or removes it
     * from another branch. Done: 0 and {"file", "action": "merged|removed", "disks",
     * "bytes_merged", "paused_ms", "total_ms"} (200); or CONTROL_STARTED as for snapshot. On
     * failure a message in err: -EINVAL not a snapshot of this VM (or none at all), -EBUSY
     * something depends on it or uses it, or a job runs. */
    int (*snapshot_delete)(void *vm, const char *file, json_t **out, char *err);
    /* The last snapshot or snapshot-delete started: {"status": "none"} or {"status":
     * "active|completed|failed", "action": "snapshot|snapshot-delete", "file", "phase",
     * "ram_pages_done", "ram_pages_total", "bytes_written", "elapsed_ms", "result" (completed:
     * what the action's 200 would hold), "error" (failed: the message)}. */
    int (*snapshot_status)(void *vm, json_t **out);
    /* Starts a migration (struct control_migrate_req). Returns once it runs; progress through
     * migrate_status. Message in err on failure. */
    int (*migrate)(void *vm, const struct control_migrate_req *req, char *err);
    int (*migrate_status)(void *vm, json_t **out);
    /* Cuts the running migration; the VM runs on here. -EALREADY none runs, -EBUSY it is in
     * its stop-and-copy (vmm/migrate.h); message in err. */
    int (*migrate_cancel)(void *vm, char *err);
    /* PUT /v1/vm/disks/{index}/limits (type "disk") and /v1/vm/nics/{index}/limits ("net"):
     * changes the rate limits of that device on the running VM (vmm/iolimits.h). `changes`
     * is the body, an object whose values are integers >= 0, strings or null (the VMM checks
     * the keys and values against the device). 0 and every limit now in force in *out (200);
     * -ENODEV no such device (404), -EINVAL a key or value refused (400); message in err. */
    int (*limits_set)(void *vm, const char *type, unsigned index, json_t *changes, json_t **out,
                      char *err);
};

struct control;

/* Creates an AF_UNIX stream socket at sock_path (mode 0600: whoever can connect controls the
 * VM) and serves the API on it from a new internal thread. A stale socket at sock_path (one
 * nobody listens on) is replaced; a live one is -EADDRINUSE, and a file that is not a socket
 * is -EEXIST (never replaced). ops and vm must outlive the server. Returns 0 and *out, or
 * -errno with one line in err (CONTROL_ERR_LEN bytes) that names sock_path. Any thread. */
int control_start(const char *sock_path, const struct control_ops *ops, void *vm,
                  struct control **out, char *err);

/* Closes every connection, waits for the API thread (and so for any op in progress), removes
 * the socket file if it is still the one control_start() made, and frees c. NULL is a no-op.
 * Call it from any thread except the API thread (never from inside an op). */
void control_stop(struct control *c);

/* The request core without HTTP, for the server, the unit test and the fuzz target.
 * Pure functions of their input and the ops they call; any thread (the server calls
 * control_handle() with its mutex held). */

struct control_response {
    unsigned status; /* HTTP status: 200, 204, 400, 404, 405, 409, 413, 500, 501 */
    char *body;      /* malloc'd JSON text (NULL for 204); free with control_response_free() */
    size_t len;
    char allow[CONTROL_ALLOW_LEN]; /* for 405: the methods the path takes ("GET, PUT") */
};

/* Serves one request: method and path (no query string), body (len bytes, need not be
 * NUL-terminated; NULL when len is 0). Never fails: errors become an error response. A body
 * larger than CONTROL_BODY_MAX is a 413. Returns only when the op has returned. */
void control_handle(const struct control_ops *ops, void *vm, const char *method, const char *path,
                    const char *body, size_t len, struct control_response *r);

void control_response_free(struct control_response *r);

/* What the routes take, parsed. Each parse function validates a whole request body strictly
 * and returns 0 and the request, or -EINVAL with one line in err (CONTROL_ERR_LEN bytes) that
 * names the offending field, or -ENOMEM. */

enum control_action {
    CONTROL_ACTION_PAUSE,
    CONTROL_ACTION_RESUME,
    CONTROL_ACTION_SHUTDOWN,
    CONTROL_ACTION_STOP,
    CONTROL_ACTION_RESET,
    CONTROL_ACTION_COUNT
};

struct control_state_req {
    enum control_action action;
    unsigned timeout_s; /* shutdown only: 1..CONTROL_SHUTDOWN_TIMEOUT_MAX, default 30 */
};

/* PUT /v1/vm/state: {"action": "pause|resume|shutdown|stop|reset", "timeout_s": N}. */
int control_parse_state(const char *body, size_t len, struct control_state_req *out, char *err);

/* PUT /v1/vm/balloon: {"target_bytes": N} or {"target_mib": N}, exactly one. */
int control_parse_balloon(const char *body, size_t len, uint64_t *target_bytes, char *err);

/* The name of an action ("pause"), or NULL when a is out of range. */
const char *control_action_name(enum control_action a);

#endif
