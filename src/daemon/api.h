/* The daemon's REST API core (docs/daemon.md, docs/openapi-daemon.yaml): routes under /api/v1/,
 * JSON bodies, bearer tokens, roles, tenants, the audit log. Knows nothing of HTTP framing:
 * server.c feeds it requests, the unit test and the fuzz target call it directly.
 *
 * Requests are hostile: bodies are capped at API_BODY_MAX (413), parsed strictly (unknown
 * fields and wrong types are a 400 naming the field), names are 1..63 chars of [a-z0-9-] (a
 * 400 naming the field). Every error is {"error": {"code": N, "message": "...", "field":
 * "..." or null}}. Every route needs "Authorization: Bearer TOKEN" (401 without, or with an
 * unknown or revoked token). Roles (docs/daemon.md has the table):
 *   platform-admin  everything;
 *   tenant-admin    its own tenant: reads, its users and tokens;
 *   viewer          reads in its own tenant; any change is 403.
 * Another tenant's objects answer 404, as if they did not exist. Every request that would
 * change something is audited (who, what, when, result), refusals included.
 *
 * Threads: one caller at a time per store (the store is not thread-safe). */
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
};

/* Serves one request: method, path (no query string), the Authorization header's value (NULL
 * when absent), body (len bytes, need not be NUL-terminated; NULL when len is 0). Never fails:
 * errors become an error response. */
void api_handle(struct store *s, const char *method, const char *path, const char *authorization,
                const char *body, size_t len, struct api_response *r);

void api_response_free(struct api_response *r);

/* Who a valid token speaks for: what server.c needs to serve the routes that are not
 * api_handle()'s (events, metrics, the console, uploads). */
struct api_caller {
    char tenant[STORE_NAME_LEN]; /* "" for a platform user */
    char user[STORE_NAME_LEN];
    char role[STORE_ROLE_LEN]; /* the token's role: "platform-admin", "tenant-admin", ... */
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

#endif
