/* The daemon's request core (src/daemon/api.h) without HTTP: authentication, tenants kept
 * apart (404), roles (403), strict bodies and names (400 naming the field), the body cap
 * (413), the error shape, secrets shown once, and the audit record of every change. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/store.h"
#include "daemon/token.h"
#include "test.h"

static struct daemon dm;
static json_t *last;              /* the last response's body, parsed (NULL for none) */
static char allow[API_ALLOW_LEN]; /* the last response's Allow */

/* One request; returns its status and keeps its body in `last`. Checks the error shape of
 * every 4xx/5xx. */
static unsigned call(const char *method, const char *path, const char *token, const char *body)
{
    struct api_response r;
    char auth[128];
    json_t *err;

    char p[512], *qs;
    struct api_request rq = {
        .method = method, .path = p, .body = body, .len = body ? strlen(body) : 0};

    snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
    rq.authorization = token ? auth : NULL;
    /* The front end splits the query off: ?tenant= and ?timeout= reach the core apart. */
    snprintf(p, sizeof(p), "%s", path);
    qs = strchr(p, '?');
    if (qs) {
        *qs++ = '\0';
        if (!strncmp(qs, "tenant=", 7))
            rq.tenant = qs + 7;
        else if (!strncmp(qs, "timeout=", 8))
            rq.timeout = qs + 8;
    }
    pthread_mutex_lock(&dm.lock);
    api_handle(&dm, &rq, &r);
    pthread_mutex_unlock(&dm.lock);
    json_decref(last);
    last = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    memcpy(allow, r.allow, sizeof(allow));
    if (getenv("API_DEBUG"))
        fprintf(stderr, "%s %s -> %u %.*s\n", method, path, r.status, (int)r.len,
                r.body ? r.body : "");
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

/* How many files are under dir (the pool's folder): nothing half-made stays behind. */
static int count_files(const char *dir)
{
    char cmd[512];
    int n = -1;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "find %s -type f | wc -l", dir);
    f = popen(cmd, "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

/* Pools, volumes, templates, VMs, quotas and admission: everything but starting a process
 * (tests/system/test_daemon_vms.py boots them). */
static void test_inventory(const char *admin, const char *a_admin, const char *a_view,
                           const char *dir)
{
    char pool[256];
    int files;
    size_t i;

    snprintf(pool, sizeof(pool), "%s/pools/default", dir);
    /* A shared base volume and template, made by the platform's administrator. */
    CHECK(call("POST", "/api/v1/volumes?tenant=", admin,
               "{\"name\": \"base\", \"size_bytes\": 67108864}") == 201);
    CHECK(call("POST", "/api/v1/templates?tenant=", a_admin,
               "{\"name\": \"x\", \"volume\": \"base\"}") == 404); /* not theirs */
    CHECK(call("POST", "/api/v1/templates?tenant=", admin,
               "{\"name\": \"busybox\", \"volume\": \"base\", \"boot\": {\"kernel\": "
               "\"/nonexistent/Image\"}}") == 201);
    CHECK(call("POST", "/api/v1/templates", a_admin,
               "{\"name\": \"mine\", \"volume\": \"base\", \"boot\": {\"kernel\": "
               "\"/etc/shadow\"}}") == 403 &&
          !strcmp(err_field() ?: "", "boot"));
    CHECK(call("GET", "/api/v1/templates", a_view, NULL) == 200 && list_len("templates") == 1);
    /* The base of a template cannot change or go. */
    CHECK(call("DELETE", "/api/v1/volumes/base?tenant=", admin, NULL) == 409);
    CHECK(call("POST", "/api/v1/volumes/base/resize?tenant=", admin,
               "{\"size_bytes\": 134217728}") == 409);

    /* Overcommit ratios are numbers: 1.5 is fine, below 1 is not. */
    CHECK(call("PUT", "/api/v1/host", admin, "{\"memory_overcommit\": 1.5}") == 200);
    CHECK(json_real_value(json_object_get(last, "memory_overcommit")) == 1.5);
    CHECK(call("PUT", "/api/v1/host", admin, "{\"cpu_overcommit\": 0.5}") == 400 &&
          !strcmp(err_field() ?: "", "cpu_overcommit"));
    CHECK(call("PUT", "/api/v1/host", a_admin, "{\"cpu_overcommit\": 8}") == 403);

    /* Quota: 2 VMs, 3 vCPUs. */
    CHECK(call("PUT", "/api/v1/tenants/alpha/quota", a_admin, "{\"vms\": 2}") == 403);
    CHECK(call("PUT", "/api/v1/tenants/alpha/quota", admin, "{\"vms\": 2, \"vcpus\": 3}") == 200);
    CHECK(call("PUT", "/api/v1/tenants/alpha/quota", admin, "{\"vms\": -1}") == 400 &&
          !strcmp(err_field() ?: "", "vms"));
    CHECK(call("GET", "/api/v1/tenants/alpha/quota", a_view, NULL) == 200);
    CHECK(json_integer_value(json_object_get(json_object_get(last, "limits"), "vms")) == 2);

    files = count_files(pool);
    CHECK(call("POST", "/api/v1/vms", a_view, "{\"name\": \"web1\", \"template\": \"busybox\"}") ==
          403);
    /* The role before the body: a viewer learns nothing from a bad one. */
    CHECK(call("POST", "/api/v1/vms", a_view, "{\"name\": 5}") == 403);
    CHECK(call("POST", "/api/v1/volumes", a_view, "{\"nope\": 1}") == 403);
    CHECK(call("POST", "/api/v1/templates", a_view, "[]") == 403);
    CHECK(call("POST", "/api/v1/vms", a_admin,
               "{\"name\": \"web1\", \"template\": \"busybox\", \"cpus\": 2, "
               "\"port_forwards\": [{\"host_port\": 18022, \"guest_port\": 22}]}") == 201);
    CHECK(!strcmp(json_string_value(json_object_get(last, "state")) ?: "", "stopped"));
    /* A linked clone costs well under 1 MiB. */
    CHECK(call("GET", "/api/v1/volumes/vm-web1", a_view, NULL) == 200);
    CHECK(json_integer_value(json_object_get(last, "allocated_bytes")) < (1 << 20));
    CHECK(json_integer_value(json_object_get(last, "size_bytes")) == 67108864);
    CHECK(count_files(pool) == files + 1);
    /* The quota's vCPUs: 2 used, 2 more asked, 3 allowed. */
    files = count_files(pool);
    CHECK(call("POST", "/api/v1/vms", a_admin,
               "{\"name\": \"web2\", \"template\": \"busybox\", \"cpus\": 2}") == 409);
    CHECK(!strcmp(err_field() ?: "", "vcpus"));
    CHECK(
        strstr(json_string_value(json_object_get(json_object_get(last, "error"), "message")) ?: "",
               "1 left") != NULL);
    CHECK(call("GET", "/api/v1/vms/web2", a_admin, NULL) == 404);
    CHECK(count_files(pool) == files); /* nothing half-made */
    /* The same host port twice is refused. */
    CHECK(call("POST", "/api/v1/vms", a_admin,
               "{\"name\": \"web2\", \"template\": \"busybox\", \"port_forwards\": "
               "[{\"host_port\": 18022, \"guest_port\": 80}]}") == 409);
    CHECK(call("POST", "/api/v1/vms", a_admin, "{\"name\": \"web2\", \"template\": \"busybox\"}") ==
          201);
    /* VM count: 2 of 2 (with vCPUs to spare). */
    CHECK(call("PUT", "/api/v1/tenants/alpha/quota", admin, "{\"vcpus\": 8}") == 200);
    CHECK(call("POST", "/api/v1/vms", a_admin, "{\"name\": \"web3\", \"template\": \"busybox\"}") ==
          409);
    CHECK(!strcmp(err_field() ?: "", "vms"));
    CHECK(call("GET", "/api/v1/tenants/alpha/quota", a_view, NULL) == 200);
    CHECK(json_integer_value(json_object_get(json_object_get(last, "usage"), "vms")) == 2);
    CHECK(json_integer_value(json_object_get(json_object_get(last, "usage"), "vcpus")) == 3);

    /* Hostile VM bodies: 400 naming the field. */
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cpus\": 99}", "cpus"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cpus\": \"2\"}", "cpus"},
        {"{\"name\": \"a\", \"template\": \"../etc\"}", "template"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"restart_policy\": \"x\"}",
         "restart_policy"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"port_forwards\": [{\"host_port\": "
         "80, \"guest_port\": 22}]}",
         "port_forwards[0].host_port"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cloud_init\": {\"hostname\": "
         "\"A_B\"}}",
         "cloud_init.hostname"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cloud_init\": {\"ssh_keys\": "
         "[\"ok\", 5]}}",
         "cloud_init.ssh_keys[1]"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cloud_init\": {\"network\": "
         "{\"mode\": \"static\"}}}",
         "cloud_init.network.address"},
        {"{\"name\": \"a\", \"template\": \"busybox\", \"cloud_init\": {\"user_data\": "
         "\"#!/bin/sh\\u0001\"}}",
         "cloud_init.user_data"},
    };
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(call("POST", "/api/v1/vms", a_admin, bad[i].body) == 400);
        CHECK(!strcmp(err_field() ?: "", bad[i].field));
    }

    /* Another tenant's VMs do not exist for alpha's users. */
    CHECK(call("GET", "/api/v1/vms", admin, NULL) == 200 && list_len("vms") == 2);
    CHECK(call("GET", "/api/v1/vms?tenant=beta", a_admin, NULL) == 404);
    /* Lifecycle refusals that need no process. */
    CHECK(call("POST", "/api/v1/vms/web1/actions/stop", a_admin, NULL) == 409);
    CHECK(call("POST", "/api/v1/vms/web1/actions/pause", a_view, NULL) == 403);
    CHECK(call("POST", "/api/v1/vms/web1/actions/pause", a_admin, NULL) == 409);
    CHECK(call("POST", "/api/v1/vms/web1/actions/explode", a_admin, NULL) == 404);
    /* Snapshots of a stopped VM's disk, a clone, a template made from it. */
    CHECK(call("PUT", "/api/v1/tenants/alpha/quota", admin, "{\"vms\": 3}") == 200);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots", a_view, "{\"name\": \"s1\"}") == 403);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots", a_admin, "{\"name\": \"s1\"}") == 201);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots", a_admin, "{\"name\": \"s1\"}") == 409);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots", a_admin, "{\"name\": \"../x\"}") == 400);
    CHECK(call("GET", "/api/v1/vms/web1/snapshots", a_view, NULL) == 200 &&
          list_len("snapshots") == 1);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots/s1/revert", a_admin, NULL) == 200);
    CHECK(call("POST", "/api/v1/vms/web1/snapshots/nope/revert", a_admin, NULL) == 404);
    CHECK(call("DELETE", "/api/v1/vms/web1/snapshots/s1", a_admin, NULL) == 204);
    CHECK(call("GET", "/api/v1/vms/web1/snapshots", a_view, NULL) == 200 &&
          list_len("snapshots") == 0);
    CHECK(call("POST", "/api/v1/vms/web1/clone", a_admin, "{\"name\": \"web1c\"}") == 201);
    CHECK(call("POST", "/api/v1/vms/web1/clone", a_admin, "{\"name\": \"web1d\"}") == 409 &&
          !strcmp(err_field() ?: "", "vms"));
    CHECK(call("POST", "/api/v1/templates", a_admin,
               "{\"name\": \"tw\", \"from_vm\": \"web1c\"}") == 201);
    CHECK(call("POST", "/api/v1/templates", a_admin,
               "{\"name\": \"tw2\", \"from_vm\": \"web1c\", \"volume\": \"x\"}") == 400);
    CHECK(call("DELETE", "/api/v1/vms/web1c", a_admin, NULL) == 204);
    CHECK(call("DELETE", "/api/v1/volumes/tw", a_admin, NULL) == 409); /* the template's */
    CHECK(call("DELETE", "/api/v1/templates/tw", a_admin, NULL) == 204);
    CHECK(call("DELETE", "/api/v1/volumes/tw", a_admin, NULL) == 204);

    /* A tenant with VMs cannot be deleted under them. */
    CHECK(call("DELETE", "/api/v1/tenants/alpha", admin, NULL) == 409);

    /* Delete: the VM's disk goes with it, the shared base stays. */
    files = count_files(pool);
    CHECK(call("DELETE", "/api/v1/vms/web1", a_view, NULL) == 403);
    CHECK(call("DELETE", "/api/v1/vms/web1", a_admin, NULL) == 204);
    CHECK(call("DELETE", "/api/v1/vms/web2", a_admin, NULL) == 204);
    /* user_data is a script: lines of text, tabs and line breaks allowed. */
    CHECK(call("POST", "/api/v1/vms", a_admin,
               "{\"name\": \"web4\", \"template\": \"busybox\", \"cloud_init\": "
               "{\"user_data\": \"#!/bin/sh\\n\\techo hi\\r\\n\"}}") == 201);
    CHECK(call("DELETE", "/api/v1/vms/web4", a_admin, NULL) == 204);
    CHECK(count_files(pool) == files - 2);
    CHECK(call("GET", "/api/v1/volumes", a_admin, NULL) == 200 && list_len("volumes") == 0);
    CHECK(call("DELETE", "/api/v1/templates/busybox?tenant=", admin, NULL) == 204);
    CHECK(call("DELETE", "/api/v1/volumes/base?tenant=", admin, NULL) == 204);
    CHECK(count_files(pool) == 0);

    /* A quota is a setting: it goes with its tenant, and a new tenant of that name has none. */
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"gamma\"}") == 201);
    CHECK(call("PUT", "/api/v1/tenants/gamma/quota", admin, "{\"vms\": 1}") == 200);
    CHECK(call("DELETE", "/api/v1/tenants/gamma", admin, NULL) == 204);
    CHECK(call("POST", "/api/v1/tenants", admin, "{\"name\": \"gamma\"}") == 201);
    CHECK(call("GET", "/api/v1/tenants/gamma/quota", admin, NULL) == 200);
    CHECK(json_is_null(json_object_get(json_object_get(last, "limits"), "vms")));
    CHECK(call("DELETE", "/api/v1/tenants/gamma", admin, NULL) == 204);

    /* The permission table lists every route. */
    CHECK(call("GET", "/api/v1/roles", a_view, NULL) == 200 && list_len("permissions") > 30);
}

/* The role of the token whose text is tok, from GET /tokens as `by` ("" when not listed). */
static const char *token_role(const char *by, const char *tok)
{
    static char role[32];
    json_t *t;
    size_t i;

    role[0] = '\0';
    if (call("GET", "/api/v1/tokens", by, NULL) != 200)
        return role;
    json_array_foreach(json_object_get(last, "tokens"), i, t)
    {
        if (!strncmp(json_string_value(json_object_get(t, "id")) ?: "", tok + 4, TOKEN_ID_HEX))
            snprintf(role, sizeof(role), "%s", json_string_value(json_object_get(t, "role")) ?: "");
    }
    return role;
}

/* Changing a user's role and deleting a user: a tenant-admin of its tenant or a platform
 * administrator, never oneself; a demotion narrows the user's tokens at once; a deleted
 * user's tokens stop working. */
static void test_user_changes(const char *admin, const char *a_admin, const char *a_view,
                              const char *b_admin)
{
    char op[TOKEN_TEXT_LEN + 1];
    const char *path = "/api/v1/tenants/alpha/users/opx";

    make_user(a_admin, "alpha", "opx", "tenant-admin", op);
    CHECK(!strcmp(token_role(a_admin, op), "tenant-admin"));
    CHECK(call("POST", "/api/v1/tokens", op, "{\"role\": \"viewer\"}") == 201);
    CHECK(call("PUT", path, a_view, "{\"role\": \"viewer\"}") == 403);
    CHECK(call("PUT", path, b_admin, "{\"role\": \"viewer\"}") == 404 &&
          !strcmp(err_field() ?: "", "tenant"));
    CHECK(call("PUT", path, a_admin, "{\"role\": \"platform-admin\"}") == 400 &&
          !strcmp(err_field() ?: "", "role"));
    CHECK(call("PUT", path, a_admin, "{\"role\": \"viewer\", \"x\": 1}") == 400);
    CHECK(call("PUT", path, a_admin, "{}") == 400 && !strcmp(err_field() ?: "", "role"));
    CHECK(call("PUT", "/api/v1/tenants/alpha/users/nobody", a_admin, "{\"role\": \"viewer\"}") ==
              404 &&
          !strcmp(err_field() ?: "", "user"));
    CHECK(call("PUT", "/api/v1/tenants/alpha/users/Bad", a_admin, "{\"role\": \"viewer\"}") ==
              400 &&
          !strcmp(err_field() ?: "", "user"));
    CHECK(call("PUT", "/api/v1/tenants/alpha/users/ann", a_admin, "{\"role\": \"viewer\"}") ==
              409 &&
          !strcmp(err_field() ?: "", "user"));

    /* A demotion reaches the token at once: no more tokens or user changes by it. */
    CHECK(call("PUT", path, a_admin, "{\"role\": \"viewer\"}") == 200);
    CHECK(!strcmp(json_string_value(json_object_get(last, "role")) ?: "", "viewer"));
    CHECK(!strcmp(token_role(a_admin, op), "viewer"));
    CHECK(call("POST", "/api/v1/tokens", op, "{\"role\": \"viewer\"}") == 403);
    CHECK(call("PUT", "/api/v1/tenants/alpha/users/vic", op, "{\"role\": \"operator\"}") == 403);
    /* A promotion does not widen a token made for the narrower role. */
    CHECK(call("PUT", path, admin, "{\"role\": \"tenant-admin\"}") == 200);
    CHECK(!strcmp(token_role(a_admin, op), "viewer"));

    CHECK(call("DELETE", path, a_view, NULL) == 403);
    CHECK(call("DELETE", path, b_admin, NULL) == 404);
    CHECK(call("DELETE", "/api/v1/tenants/alpha/users/ann", a_admin, NULL) == 409);
    CHECK(call("GET", "/api/v1/tenants/alpha", op, NULL) == 200);
    CHECK(call("DELETE", path, a_admin, NULL) == 204);
    CHECK(call("GET", "/api/v1/tenants/alpha", op, NULL) == 401);
    CHECK(call("DELETE", path, a_admin, NULL) == 404);
    CHECK(call("GET", "/api/v1/audit", a_admin, NULL) == 200);
    CHECK(audited("user.set-role", 200) && audited("user.set-role", 403) &&
          audited("user.delete", 204) && audited("user.delete", 409));
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
    CHECK(daemon_init(&dm, dir, NULL, err) == 0);
    if (!dm.store)
        return test_finish("daemon_api");

    /* First start makes the administrator once. */
    CHECK(api_bootstrap(dm.store, &created, admin, err) == 0 && created);
    CHECK(api_bootstrap(dm.store, &created, again, err) == 0 && !created);
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

    test_user_changes(admin, a_admin, a_view, b_admin);

    /* Deleting a tenant takes its users and tokens. */
    CHECK(call("DELETE", "/api/v1/tenants/beta", admin, NULL) == 204);
    CHECK(call("GET", "/api/v1/tenants", b_admin, NULL) == 401);
    CHECK(call("GET", "/api/v1/tenants/beta", admin, NULL) == 404);
    CHECK(call("GET", "/api/v1/tenants/alpha", a_admin, NULL) == 200);

    test_inventory(admin, a_admin, a_view, dir);

    json_decref(last);
    daemon_fini(&dm);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (system(path))
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("daemon_api");
}
