/* The daemon's REST API core (docs/daemon.md, docs/openapi.yaml): routes under /api/v1/,
 * JSON bodies, bearer tokens, roles, tenants, the audit log. Knows nothing of HTTP framing:
 * server.c feeds it requests, the unit test and the fuzz target call it directly.
 *
 * Requests are hostile: bodies are capped at API_BODY_MAX (413), parsed strictly (unknown
 * fields and wrong types are a 400 naming the field), names are 1..63 chars of [a-z0-9-] (a
 * 400 naming the field). Every error is {"error": {"code": N, "message": "...", "field":
 * "..." or null}}. Every route needs "Authorization: Bearer TOKEN" (401 without, or with an
 * unknown or revoked token). Roles (docs/daemon.md has the table):
 *   platform-admin  everything;
 *   tenant-admin    its own tenant: users, tokens, VMs, volumes, templates;
 *   operator        its own tenant: reads, VM lifecycle (start, stop, ...) and console;
 *   viewer          reads in its own tenant; any change is 403.
 * Another tenant's objects answer 404, as if they did not exist. Every request that would
 * change something is audited (who, what, when, result), refusals included.
 *
 * Threads: callers hold the daemon's lock (daemon.h). */
#ifndef TESSERA_DAEMON_API_H
#define TESSERA_DAEMON_API_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/store.h"
#include "daemon/token.h"

#define API_BODY_MAX    (64u << 10) /* request body cap; larger bodies get 413 */
#define API_AUDIT_LIMIT 1000        /* GET /api/v1/audit: at most this many, newest first */
#define API_ADMIN_USER  "admin"     /* the platform administrator made on first start */
#define API_ALLOW_LEN   32          /* struct api_response's allow */

struct api_response {
    unsigned status; /* HTTP status */
    char *body;      /* malloc'd JSON text (NULL for 204); free with api_response_free() */
    size_t len;
    char allow[API_ALLOW_LEN]; /* for 405: the methods the path takes ("GET, POST") */
    char location[64];         /* for 202: the operation's path ("" when none) */
};

struct daemon;

/* One request as the front end received it. */
struct api_request {
    const char *method;
    const char *path;          /* no query string */
    const char *tenant;        /* the query's ?tenant=, NULL when absent */
    const char *timeout;       /* the query's ?timeout= (operation waits), NULL when absent */
    const char *since;         /* the query's ?since= (metric history), NULL when absent */
    const char *authorization; /* the header's value, NULL when absent */
    const char *body;          /* len bytes, need not be NUL-terminated; NULL when len is 0 */
    size_t len;
};

/* Serves one request with d->lock held (a wait on an operation releases it while it
 * waits). Never fails: errors become an error response. */
void api_handle(struct daemon *d, const struct api_request *rq, struct api_response *r);

void api_response_free(struct api_response *r);

/* Who a valid token speaks for: what server.c needs to serve the routes that are not
 * api_handle()'s (events, metrics, the console, uploads). */
struct api_caller {
    char tenant[STORE_NAME_LEN]; /* "" for a platform user */
    char user[STORE_NAME_LEN];
    char role[STORE_ROLE_LEN];         /* the token's role: "platform-admin", "tenant-admin", ... */
    char token_id[STORE_TOKEN_ID_LEN]; /* the token's public id (logout revokes it) */
};

/* Checks the value of an Authorization header ("Bearer TOKEN"; NULL when absent) as
 * api_handle() does: 0 and *out for a valid token; -EACCES for a missing, malformed, unknown
 * or revoked one (no way to tell which); -EIO (the store's message in store_error()) or
 * -ENOMEM when the store fails. Same thread rule as api_handle(). */
int api_authenticate(struct store *s, const char *authorization, struct api_caller *out);

/* First start: when the store has no users at all, creates the platform administrator
 * (API_ADMIN_USER) and a token for it: *created is true and token (TOKEN_TEXT_LEN + 1 bytes)
 * holds its text, the only time it is known. Otherwise *created is false. Returns 0, or -errno
 * with err (STORE_ERR_LEN). */
int api_bootstrap(struct store *s, bool *created, char *token, char *err);

/* 0 when name is 1..63 chars of [a-z0-9-]; -EINVAL otherwise. */
int api_check_name(const char *name);

/* Writes the host's VM limits into the VMs' parent control group and every running VM's CPU
 * weight (after api_recover()). Called with d->lock held. A failure is logged: the VMs run
 * on, limited as before. */
void api_resources_init(struct daemon *d);

/* After a restart of tesserad: every VM the store holds is checked against its process
 * (rt.h), running ones adopted, exited ones given their exit status and restart policy.
 * Called with d->lock held. */
int api_recover(struct daemon *d);
/* After a restart of tesserad, before api_recover(): every virtual network (docs/networks.md)
 * brought up again as the store holds it (its namespace, bridge and dnsmasq), what no network
 * claims removed, the taps of running VMs plugged. Failures are logged. d->lock held. */
void api_net_recover(struct daemon *d);
/* After api_net_recover(): every router (docs/networks.md, "Routers and NAT") brought up again
 * as the store holds it, what no router claims removed. Failures are logged. d->lock held. */
void api_router_recover(struct daemon *d);
/* The host's part of the networks, from tesserad's options, before daemon_init(): the
 * underlay address VXLAN networks use and the trunk interface VLAN networks' tags go out on
 * (NULL: none, so no such network can be made). 0, or -EINVAL with a message in err
 * (STORE_ERR_LEN). Process-wide; main() only. */
int api_net_host_config(const char *vxlan_local, const char *vlan_trunk, char *err);

/* Registers the templates that ship with tessera when their images exist (the default
 * BusyBox guest beside the binaries; the Debian template from its cache) and are not
 * registered yet. Called with d->lock held at start-up. 0, or -errno with err. */
int api_shipped_templates(struct daemon *d, char *err);

/* The routes the HTTP front end serves itself (server.h, struct server_hooks), with d as
 * their arg; called with d->lock held. console_path: the VM's console socket for a caller of
 * at least the operator role (-ENOENT no such VM in the caller's tenant, -EPERM the role,
 * -ENOTCONN not running). upload_begin/end: a volume's new image, imported by an operation
 * (202) whose size the tenant's disk quota caps. */
struct api_caller;
int api_hook_console_path(void *arg, const struct api_caller *caller, const char *vm, char *path,
                          size_t len);
int api_hook_upload_begin(void *arg, const struct api_caller *caller, const char *volume,
                          char *tmp_path, size_t len);
void api_hook_upload_end(void *arg, const struct api_caller *caller, const char *volume,
                         const char *tmp_path, bool ok, struct api_response *r);

/* The route template path matches ("/api/v1/vms/{name}"), for counting requests without
 * naming objects; "other" when it is no route. Any thread. */
const char *api_route_template(const char *path);

/* Registers the VM, tenant and host metrics (metrics.h) in d->metrics. */
int api_metrics_init(struct daemon *d);

#endif
