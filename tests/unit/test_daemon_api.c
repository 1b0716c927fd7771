/* The daemon's request core (src/daemon/api.h) without HTTP: authentication, tenants kept
 * apart (404), roles (403), strict bodies and names (400 naming the field), the body cap
 * (413), the error shape, secrets shown once, and the audit record of every change. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/api.h"
#include "daemon/store.h"
#include "daemon/token.h"
#include "test.h"

static struct store *st;
static json_t *last;              /* the last response's body, parsed (NULL for none) */
static char allow[API_ALLOW_LEN]; /* the last response's Allow */

/* One request; returns its status and keeps its body in `last`. Checks the error shape of
 * every 4xx/5xx. */
static unsigned call(const char *method, const char *path, const char *token, const char *body)
{
    struct api_response r;
    char auth[128];
    json_t *err;

    snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
    api_handle(st, method, path, token ? auth : NULL, body, body ? strlen(body) : 0, &r);
    json_decref(last);
    last = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    memcpy(allow, r.allow, sizeof(allow));
    if (r.status >= 400) {
        err = json_object_get(last, "error");
        CHECK(json_is_object(err) &&
              json_integer_value(json_object_get(err, "code")) == (json_int_t)r.status);
        CHECK(json_is_string(json_object_get(err, "message")));
        CHECK(json_object_get(err, "field") != NULL);
    }
    api_response_free(&r);
    return r.status;
}

static const char *err_field(void)
{
    return json_string_value(json_object_get(json_object_get(last, "error"), "field"));
}

/* Creates a user and a token for it as `by`; the token's text into tok (TOKEN_TEXT_LEN + 1). */
static void make_user(const char *by, const char *tenant, const char *name, const char *role,
                      char *tok)
{
    char path[128], body[256];

    snprintf(path, sizeof(path), "/api/v1/tenants/%s/users", tenant);
    snprintf(body, sizeof(body), "{\"name\": \"%s\", \"role\": \"%s\"}", name, role);
    CHECK(call("POST", path, by, body) == 201);
    snprintf(body, sizeof(body), "{\"tenant\": \"%s\", \"user\": \"%s\"}", tenant, name);
    CHECK(call("POST", "/api/v1/tokens", by, body) == 201);
    snprintf(tok, TOKEN_TEXT_LEN + 1, "%s",
             json_string_value(json_object_get(last, "token")) ?: "");
    CHECK(strlen(tok) == TOKEN_TEXT_LEN);
}

static size_t list_len(const char *key)
{
    return json_array_size(json_object_get(last, key));
}

/* Whether any audit record in `last` has this action and status. */
static bool audited(const char *action, unsigned status)
{
    json_t *a;
    size_t i;

    json_array_foreach(json_object_get(last, "audit"), i, a)
    {
        if (!strcmp(json_string_value(json_object_get(a, "action")) ?: "", action) &&
            json_integer_value(json_object_get(a, "status")) == (json_int_t)status)
            return true;
    }
    return false;
}

int main(void)
{
    char dir[] = "/tmp/tessera-test-api-XXXXXX", path[256], err[STORE_ERR_LEN];
    char admin[TOKEN_TEXT_LEN + 1], again[TOKEN_TEXT_LEN + 1];
    char a_admin[TOKEN_TEXT_LEN + 1], a_view[TOKEN_TEXT_LEN + 1];
    char b_admin[TOKEN_TEXT_LEN + 1], b_view[TOKEN_TEXT_LEN + 1];
    char id[STORE_TOKEN_ID_LEN], *big;
    bool created;
    size_t i;

    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/tesserad.db", dir);
    CHECK(store_open_sqlite(path, &st, err) == 0);
    if (!st)
        return test_finish("daemon_api");

    /* First start makes the administrator once. */
    CHECK(api_bootstrap(st, &created, admin, err) == 0 && created);
    CHECK(api_bootstrap(st, &created, again, err) == 0 && !created);
    CHECK(!strncmp(admin, "tsr_", 4) && strlen(admin) == TOKEN_TEXT_LEN);

    /* Authentication. */
    CHECK(call("GET", "/api/v1/tenants", NULL, NULL) == 401);
    CHECK(call("GET", "/api/v1/tenants", "nonsense", NULL) == 401);
    memcpy(again, admin, sizeof(again));
    again[TOKEN_TEXT_LEN - 1] ^= 1; /* right id, wrong secret */
    CHECK(call("GET", "/api/v1/tenants", again, NULL) == 401);
    CHECK(call("GET", "/api/v1/nowhere", NULL, NULL) == 401); /* before routing */
    CHECK(call("GET", "/api/v1/tenants", admin, NULL) == 200 && list_len("tenants") == 0);

    /* Two tenants, each with an admin and a viewer. */
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"alpha\"}") == 201);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"beta\"}") == 201);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"beta\"}") == 409);
    make_user(admin, "alpha", "ann", "tenant-admin", a_admin);
    make_user(a_admin, "alpha", "vic", "viewer", a_view);
    make_user(admin, "beta", "bob", "tenant-admin", b_admin);
    make_user(b_admin, "beta", "val", "viewer", b_view);

    /* Each sees its own tenant only; another's answers 404 for reads, changes and deletes. */
    CHECK(call("GET", "/api/v1/tenants", a_view, NULL) == 200 && list_len("tenants") == 1);
    CHECK(call("GET", "/api/v1/tenants", admin, NULL) == 200 && list_len("tenants") == 2);
    CHECK(call("GET", "/api/v1/tenants/alpha", a_view, NULL) == 200);
    CHECK(call("GET", "/api/v1/tenants/beta", a_admin, NULL) == 404);
    CHECK(call("GET", "/api/v1/tenants/beta/users", a_admin, NULL) == 404);
    CHECK(call("POST", "/api/v1/tenants/beta/users", a_admin,
               "{\"name\": \"x\", \"role\": \"viewer\"}") == 404);
    CHECK(call("DELETE", "/api/v1/tenants/beta", a_admin, NULL) == 404);
    CHECK(call("DELETE", "/api/v1/tenants/beta", a_view, NULL) == 404);
    CHECK(call("POST", "/api/v1/tokens", a_admin, "{\"tenant\": \"beta\", \"user\": \"bob\"}") ==
          404);
    CHECK(call("GET", "/api/v1/tenants/nosuch", admin, NULL) == 404);
    CHECK(call("GET", "/api/v1/tenants/alpha/users", a_view, NULL) == 200 &&
          list_len("users") == 2);

    /* Roles: a viewer's change is 403, so is a tenant-admin's platform change. */
    CHECK(call("POST", "/api/v1/tenants/alpha/users", a_view,
               "{\"name\": \"x\", \"role\": \"viewer\"}") == 403);
    CHECK(call("POST", "/api/v1/tokens", a_view, "{}") == 403);
    CHECK(call("POST", "/api/v1/tenants", a_admin, "{\"name\": \"gamma\"}") == 403);
    CHECK(call("DELETE", "/api/v1/tenants/alpha", a_admin, NULL) == 403);
    CHECK(call("POST", "/api/v1/tenants/alpha/users", a_admin,
               "{\"name\": \"x\", \"role\": \"platform-admin\"}") == 400 &&
          !strcmp(err_field() ?: "", "role"));
    CHECK(call("POST", "/api/v1/tokens", a_admin,
               "{\"user\": \"vic\", \"role\": \"tenant-admin\"}") == 400);
    /* A narrower token for oneself. */
    CHECK(call("POST", "/api/v1/tokens", a_admin, "{\"role\": \"viewer\"}") == 201);
    CHECK(!strcmp(json_string_value(json_object_get(last, "role")) ?: "", "viewer"));

    /* Hostile bodies and names: 400 naming the field, 413, 404, 405. */
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": ") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "[1]") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": 5}") == 400 &&
          !strcmp(err_field() ?: "", "name"));
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"a\", \"name\": \"b\"}") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"x\", \"extra\": \"y\"}") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "{}") == 400 && !strcmp(err_field(), "name"));
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"..\"}") == 400 &&
          !strcmp(err_field() ?: "", "name"));
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"a/b\"}") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"Upper\"}") == 400);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"a\\u0001\"}") == 400);
    CHECK(
        call("POST", "/api/v1/tenants", admin,
             "{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}") ==
        400); /* 64 characters */
    CHECK(call("GET", "/api/v1/tenants/../users", admin, NULL) == 400 &&
          !strcmp(err_field() ?: "", "tenant"));
    CHECK(call("GET", "/api/v1/tenants/%2e%2e", admin, NULL) == 400);
    CHECK(call("DELETE", "/api/v1/tokens/../../etc", admin, NULL) == 404);
    CHECK(call("DELETE", "/api/v1/tokens/xyz", admin, NULL) == 400 &&
          !strcmp(err_field() ?: "", "id"));
    CHECK(call("GET", "/api/v1/tenants/", admin, NULL) == 404);
    CHECK(call("GET", "/api/v2/tenants", admin, NULL) == 404);
    CHECK(call("PUT", "/api/v1/tenants", admin, "{}") == 405);
    CHECK(!strcmp(allow, "GET, POST"));
    CHECK(call("POST", "/api/v1/tokens/0123456789abcdef", admin, "{}") == 405);
    CHECK(!strcmp(allow, "DELETE"));
    big = malloc(API_BODY_MAX + 2);
    if (big) {
        memset(big, ' ', API_BODY_MAX + 1);
        big[API_BODY_MAX + 1] = '\0';
        CHECK(call("POST", "/api/v1/tenants", admin, big) == 413);
        free(big);
    }

    /* Tokens: listed without secrets; a revoked one is refused. */
    CHECK(call("GET", "/api/v1/tokens", a_admin, NULL) == 200 && list_len("tokens") == 3);
    for (i = 0; i < list_len("tokens"); i++) {
        json_t *t = json_array_get(json_object_get(last, "tokens"), i);

        CHECK(!json_object_get(t, "token") && !json_object_get(t, "hash"));
        CHECK(!strcmp(json_string_value(json_object_get(t, "tenant")) ?: "", "alpha"));
    }
    CHECK(call("GET", "/api/v1/tokens", admin, NULL) == 200 && list_len("tokens") == 6);
    memcpy(id, b_view + 4, TOKEN_ID_HEX);
    id[TOKEN_ID_HEX] = '\0';
    snprintf(path, sizeof(path), "/api/v1/tokens/%s", id);
    CHECK(call("DELETE", path, a_admin, NULL) == 404); /* another tenant's */
    CHECK(call("DELETE", path, b_view, NULL) == 403);
    CHECK(call("GET", "/api/v1/tenants/beta", b_view, NULL) == 200);
    CHECK(call("DELETE", path, b_admin, NULL) == 204);
    CHECK(call("GET", "/api/v1/tenants/beta", b_view, NULL) == 401);

    /* The audit log: changes and refusals, each tenant its own. */
    CHECK(call("GET", "/api/v1/audit", admin, NULL) == 200);
    CHECK(audited("bootstrap", 201) && audited("tenant.create", 201) &&
          audited("tenant.create", 409) && audited("tenant.create", 403) &&
          audited("user.create", 201) && audited("token.create", 201) &&
          audited("token.revoke", 204) && audited("token.revoke", 403) &&
          audited("tenant.delete", 404) && audited("unknown", 405));
    CHECK(call("GET", "/api/v1/audit", a_view, NULL) == 200);
    CHECK(audited("user.create", 201) && audited("user.create", 403) &&
          !audited("token.revoke", 204) && !audited("bootstrap", 201));

    /* Deleting a tenant takes its users and tokens. */
    CHECK(call("DELETE", "/api/v1/tenants/beta", admin, NULL) == 204);
    CHECK(call("GET", "/api/v1/tenants", b_admin, NULL) == 401);
    CHECK(call("GET", "/api/v1/tenants/beta", admin, NULL) == 404);
    CHECK(call("GET", "/api/v1/tenants/alpha", a_admin, NULL) == 200);

    json_decref(last);
    store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (system(path))
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("daemon_api");
}
