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
    const char *authorization; /* the header's value, NULL when absent */
    const char *body;          /* len bytes, need not be NUL-terminated; NULL when len is 0 */
    size_t len;
};

/* Serves one request with d->lock held (a wait on an operation releases it while it
 * waits). Never fails: errors become an error response. */
void api_handle(struct daemon *d, const struct api_request *rq, struct api_response *r);

void api_response_free(struct api_response *r);

/* First start: when the store has no users at all, creates the platform administrator
 * (API_ADMIN_USER) and a token for it: *created is true and token (TOKEN_TEXT_LEN + 1 bytes)
 * holds its text, the only time it is known. Otherwise *created is false. Returns 0, or -errno
 * with err (STORE_ERR_LEN). */
int api_bootstrap(struct store *s, bool *created, char *token, char *err);

/* 0 when name is 1..63 chars of [a-z0-9-]; -EINVAL otherwise. */
int api_check_name(const char *name);

/* After a restart of tesserad: every VM the store holds is checked against its process
 * (rt.h), running ones adopted, exited ones given their exit status and restart policy.
 * Called with d->lock held. */
int api_recover(struct daemon *d);

/* Registers the templates that ship with tessera when their images exist (the default
 * BusyBox guest beside the binaries; the Debian template from its cache) and are not
 * registered yet. Called with d->lock held at start-up. 0, or -errno with err. */
int api_shipped_templates(struct daemon *d, char *err);

#endif
