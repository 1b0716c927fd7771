/* The daemon's REST API core (api.h): authentication, a const route table, strict bodies,
 * tenant visibility and roles, the audit record of every change.
 *
 * The order of the checks is part of the contract: authentication (401), the route (404,
 * 405), the names in the path (400), the tenant's visibility (404: another tenant's objects do
 * not exist for the caller), the caller's role (403), the body (400), then the store (404,
 * 409). So a viewer probing another tenant learns nothing, not even that a change would be
 * refused. */
#include "daemon/api.h"
#include "daemon/api_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

/* ---- Roles ---- */
const char *const role_names[] = {
    [ROLE_NONE] = "anyone", /* a route's least role when it needs no token (POST /login) */
    [ROLE_VIEWER] = "viewer",
    [ROLE_OPERATOR] = "operator",
    [ROLE_TENANT_ADMIN] = "tenant-admin",
    [ROLE_PLATFORM_ADMIN] = "platform-admin",
};

enum role role_parse(const char *s)
{
    enum role r;

    for (r = ROLE_VIEWER; r <= ROLE_PLATFORM_ADMIN; r++)
        if (!strcmp(s, role_names[r]))
            return r;
    return ROLE_NONE;
}

/* ---- Messages and responses ---- */

/* Copies at most 40 bytes of s into buf (API_QUOTE_LEN bytes) for a message: anything but
 * printable ASCII becomes '?', a longer s ends in "...". Always valid UTF-8 for jansson. */
const char *quote(const char *s, char *buf)
{
    size_t i;

    for (i = 0; s[i] && i < 40; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i])
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

/* Messages are built from quote()d input, validated names and constants: valid UTF-8. */
void reply_error(struct api_response *r, unsigned status, const char *field, const char *fmt, ...)
{
    static const char oom[] = "{\"error\":{\"code\":500,\"message\":\"out of memory\","
                              "\"field\":null}}";
    char msg[API_MSG_LEN];
    json_t *obj;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(r->body);
    r->status = status;
    r->body = NULL;
    obj = json_pack("{s:{s:i,s:s,s:s?}}", "error", "code", (int)status, "message", msg, "field",
                    field);
    if (obj)
        r->body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!r->body) {
        r->status = 500;
        r->body = strdup(oom);
    }
    r->len = r->body ? strlen(r->body) : 0;
}

/* Takes over v (NULL: out of memory) as the body of a `status` response. */
void reply_json(struct api_response *r, unsigned status, json_t *v)
{
    if (v)
        r->body = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!r->body) {
        reply_error(r, 500, NULL, "out of memory");
        return;
    }
    r->status = status;
    r->len = strlen(r->body);
}

void reply_empty(struct api_response *r)
{
    r->status = 204;
    r->body = NULL;
    r->len = 0;
}

/* A store failure that no check before it explains. */
void reply_store(struct req *q, const char *what, int ret)
{
    if (ret == -ENOMEM)
        reply_error(q->r, 500, NULL, "%s: out of memory", what);
    else
        reply_error(q->r, 500, NULL, "%s: the store failed: %s", what, store_error(q->s));
}

void api_response_free(struct api_response *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- Names ---- */

int api_check_name(const char *name)
{
    size_t i;

    for (i = 0; name[i]; i++) {
        if (i >= STORE_NAME_LEN - 1)
            return -EINVAL;
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return -EINVAL;
    }
    return i ? 0 : -EINVAL;
}

/* Checks a name from the path or a body; on failure the 400 names the field. */
int check_name(struct req *q, const char *field, const char *name)
{
    char b[API_QUOTE_LEN];

    if (!api_check_name(name))
        return 0;
    reply_error(q->r, 400, field,
                "%s '%s' is not a valid name: 1 to 63 characters of a-z, 0-9 and '-'", field,
                quote(name, b));
    return -EINVAL;
}

/* ---- Bodies: one JSON object of string fields, strictly ---- */

struct field {
    const char *name;
    bool required;
};

struct schema {
    const struct field *fields;
    size_t count;
    const char *names;  /* "name, role": for the unknown-field message */
    const char *sample; /* a valid body, for the empty-body message */
};

/* Parses the body against s: returns 0, *doc (decref it; it owns the strings in v) and v[i]
 * for s->fields[i] (NULL when absent); or -EINVAL with the 400 already in q->r. Strings must
 * hold no control characters (jansson already refuses "\u0000", invalid UTF-8, duplicate keys
 * and trailing data). */
static int body_parse(struct req *q, const struct schema *s, json_t **doc, const char **v)
{
    char b[API_QUOTE_LEN];
    json_error_t jerr;
    const char *key, *str;
    json_t *root, *val;
    size_t i, j;

    *doc = NULL;
    memset(v, 0, s->count * sizeof(*v));
    if (!q->len) {
        reply_error(q->r, 400, NULL, "empty request body (expected a JSON object such as %s)",
                    s->sample);
        return -EINVAL;
    }
    root = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        reply_error(q->r, 400, NULL, "request body is not valid JSON: %s (at byte %d)",
                    quote(jerr.text, b), jerr.position);
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        reply_error(q->r, 400, NULL, "request body must be a JSON object such as %s", s->sample);
        goto fail;
    }
    json_object_foreach(root, key, val)
    {
        for (i = 0; i < s->count && strcmp(key, s->fields[i].name); i++)
            ;
        if (i == s->count) {
            reply_error(q->r, 400, NULL, "unknown field '%s' (valid fields: %s)", quote(key, b),
                        s->names);
            goto fail;
        }
        if (!json_is_string(val)) {
            reply_error(q->r, 400, s->fields[i].name, "field '%s' must be a string",
                        s->fields[i].name);
            goto fail;
        }
        str = json_string_value(val);
        for (j = 0; str[j]; j++) {
            if ((unsigned char)str[j] < 0x20 || str[j] == 0x7f) {
                reply_error(q->r, 400, s->fields[i].name,
                            "field '%s' must not hold control characters", s->fields[i].name);
                goto fail;
            }
        }
        v[i] = str;
    }
    for (i = 0; i < s->count; i++) {
        if (s->fields[i].required && !v[i]) {
            reply_error(q->r, 400, s->fields[i].name, "field '%s' is required (e.g. %s)",
                        s->fields[i].name, s->sample);
            goto fail;
        }
    }
    *doc = root;
    return 0;
fail:
    json_decref(root);
    return -EINVAL;
}

/* ---- Visibility and roles ---- */

/* Whether the caller may know that tenant `name` exists. */
bool tenant_visible(const struct req *q, const char *name)
{
    return q->c.role == ROLE_PLATFORM_ADMIN || !strcmp(q->c.tenant, name);
}

void reply_no_tenant(struct req *q, const char *name)
{
    reply_error(q->r, 404, "tenant", "tenant '%s' not found", name);
}

/* 403 unless the caller's role is at least `need`. */
int need_role(struct req *q, enum role need, const char *what)
{
    if (q->c.role >= need)
        return 0;
    reply_error(q->r, 403, NULL, "%s needs the role %s or higher; this token's role is %s", what,
                role_names[need], role_names[q->c.role]);
    return -EPERM;
}

int need_route_role(struct req *q, const char *what)
{
    return need_role(q, q->min_role, what);
}

/* The tenant in the path, visible and existing: 0, or -ENOENT with the 404 in q->r. */
int path_tenant(struct req *q, const char *name)
{
    struct store_tenant t;
    int ret;

    if (!tenant_visible(q, name)) {
        reply_no_tenant(q, name);
        return -ENOENT;
    }
    ret = q->s->ops->tenant_get(q->s, name, &t);
    if (ret == -ENOENT)
        reply_no_tenant(q, name);
    else if (ret)
        reply_store(q, "tenant", ret);
    return ret;
}

/* ---- JSON of the objects ---- */

static json_t *tenant_json(const struct store_tenant *t)
{
    return json_pack("{s:s,s:I}", "name", t->name, "created", (json_int_t)t->created);
}

static json_t *user_json(const struct store_user *u)
{
    return json_pack("{s:s,s:s,s:s,s:I}", "tenant", u->tenant, "name", u->name, "role", u->role,
                     "created", (json_int_t)u->created);
}

json_t *api_token_json(const struct store_token *t)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:o}", "id", t->id, "tenant", t->tenant, "user",
                     t->user, "role", t->role, "description", t->description, "created",
                     (json_int_t)t->created, "revoked", t->revoked, "expires",
                     t->expires ? json_integer(t->expires) : json_null());
}

static json_t *audit_json(const struct store_audit *a)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:i,s:s}", "seq", (json_int_t)a->seq, "time",
                     (json_int_t)a->time, "tenant", a->tenant, "actor", a->actor, "action",
                     a->action, "target", a->target, "status", (int)a->status, "message",
                     a->message);
}

/* List callbacks: append the item's JSON to the array arg. */
int append(json_t *arr, json_t *item)
{
    return item && !json_array_append_new(arr, item) ? 0 : -ENOMEM;
}

static int each_tenant(void *arg, const struct store_tenant *t)
{
    return append(arg, tenant_json(t));
}

static int each_user(void *arg, const struct store_user *u)
{
    return append(arg, user_json(u));
}

static int each_token(void *arg, const struct store_token *t)
{
    return append(arg, api_token_json(t));
}

static int each_audit(void *arg, const struct store_audit *a)
{
    return append(arg, audit_json(a));
}

/* Replies {key: arr} (taking arr over) or the list's failure. */
void reply_list(struct req *q, const char *key, json_t *arr, int ret)
{
    if (ret) {
        json_decref(arr);
        reply_store(q, key, ret);
        return;
    }
    reply_json(q->r, 200, json_pack("{s:o}", key, arr));
}

/* ---- Tenants ---- */

static void tenants_list(struct req *q)
{
    struct store_tenant t;
    json_t *arr = json_array();
    int ret;

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    if (q->c.role == ROLE_PLATFORM_ADMIN) {
        ret = q->s->ops->tenant_list(q->s, each_tenant, arr);
    } else {
        ret = q->s->ops->tenant_get(q->s, q->c.tenant, &t);
        if (!ret)
            ret = each_tenant(arr, &t);
    }
    reply_list(q, "tenants", arr, ret);
}

static const struct field tenant_fields[] = {{"name", true}};
static const struct schema tenant_schema = {tenant_fields, 1, "name", "{\"name\": \"acme\"}"};

static void tenants_create(struct req *q)
{
    struct store_tenant t = {.created = time(NULL)};
    const char *v[1];
    json_t *doc;
    int ret;

    if (need_role(q, ROLE_PLATFORM_ADMIN, "creating a tenant"))
        return;
    if (body_parse(q, &tenant_schema, &doc, v))
        return;
    if (check_name(q, "name", v[0]))
        goto done;
    snprintf(t.name, sizeof(t.name), "%s", v[0]);
    snprintf(q->target, sizeof(q->target), "%s", t.name);
    ret = q->s->ops->tenant_create(q->s, &t);
    if (ret == -EEXIST)
        reply_error(q->r, 409, "name", "tenant '%s' already exists", t.name);
    else if (ret)
        reply_store(q, "tenant create", ret);
    else
        reply_json(q->r, 201, tenant_json(&t));
done:
    json_decref(doc);
}

static void tenant_get(struct req *q)
{
    struct store_tenant t;
    int ret;

    if (!tenant_visible(q, q->seg[1])) {
        reply_no_tenant(q, q->seg[1]);
        return;
    }
    ret = q->s->ops->tenant_get(q->s, q->seg[1], &t);
    if (ret == -ENOENT)
        reply_no_tenant(q, q->seg[1]);
    else if (ret)
        reply_store(q, "tenant", ret);
    else
        reply_json(q->r, 200, tenant_json(&t));
}

static int count_doc(void *arg, const char *tenant, const char *name, const char *doc)
{
    (void)tenant, (void)name, (void)doc;
    ++*(uint64_t *)arg;
    return 0;
}

/* What a tenant still owns, by kind ("2 VMs, 1 network"), so the refusal of its deletion
 * names what to delete first. Kinds without a user-facing name count as "other objects". */
static void tenant_owned_describe(struct req *q, const char *tenant, uint64_t owned, char *out,
                                  size_t len)
{
    static const struct {
        const char *kind, *one, *many;
    } kinds[] = {
        {"vm", "VM", "VMs"},
        {"volume", "volume", "volumes"},
        {"template", "template", "templates"},
        {"network", "network", "networks"},
        {"secgroup", "security group", "security groups"},
        {"router", "router", "routers"},
    };
    uint64_t named = 0;
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        uint64_t n = 0;

        if (q->s->ops->doc_list(q->s, kinds[i].kind, tenant, count_doc, &n) || !n)
            continue;
        named += n;
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%" PRIu64 " %s", used ? ", " : "",
                                     n, n == 1 ? kinds[i].one : kinds[i].many);
    }
    if (owned > named && used < len)
        snprintf(out + used, len - used, "%s%" PRIu64 " %s", used ? ", " : "", owned - named,
                 named ? "other objects" : "objects");
}

static void tenant_delete(struct req *q)
{
    int ret;

    if (!tenant_visible(q, q->seg[1])) {
        reply_no_tenant(q, q->seg[1]);
        return;
    }
    uint64_t owned;

    if (need_role(q, ROLE_PLATFORM_ADMIN, "deleting a tenant"))
        return;
    /* Its quota is a setting with no route to delete it: it goes with the tenant (in this
     * request's transaction, so a refusal below keeps it). Its VMs, volumes and templates
     * hold files and processes: they go first, by their own routes, so that nothing is left
     * running or on disk without an owner. */
    ret = q->s->ops->doc_delete(q->s, "quota", q->seg[1], "quota");
    if (ret == -ENOENT)
        ret = 0;
    if (!ret)
        ret = q->s->ops->doc_count(q->s, q->seg[1], &owned);
    if (!ret && owned) {
        char what[256];

        tenant_owned_describe(q, q->seg[1], owned, what, sizeof(what));
        reply_error(q->r, 409, "tenant", "tenant '%s' still owns %s; delete them first", q->seg[1],
                    what);
        return;
    }
    if (!ret)
        ret = q->s->ops->tenant_delete(q->s, q->seg[1]);
    if (ret == -ENOENT)
        reply_no_tenant(q, q->seg[1]);
    else if (ret)
        reply_store(q, "tenant delete", ret);
    else
        reply_empty(q->r);
}

/* ---- Users ---- */

static void users_list(struct req *q)
{
    json_t *arr;

    if (path_tenant(q, q->seg[1]))
        return;
    arr = json_array();
    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    reply_list(q, "users", arr, q->s->ops->user_list(q->s, q->seg[1], each_user, arr));
}

static const struct field user_fields[] = {{"name", true}, {"role", true}};
static const struct schema user_schema = {user_fields, 2, "name, role",
                                          "{\"name\": \"alice\", \"role\": \"viewer\"}"};

static void users_create(struct req *q)
{
    struct store_user u = {.created = time(NULL)};
    char b[API_QUOTE_LEN];
    const char *v[2];
    enum role role;
    json_t *doc;
    int ret;

    if (path_tenant(q, q->seg[1]) || need_role(q, ROLE_TENANT_ADMIN, "creating a user"))
        return;
    if (body_parse(q, &user_schema, &doc, v))
        return;
    if (check_name(q, "name", v[0]))
        goto done;
    role = role_parse(v[1]);
    if (role == ROLE_NONE || role == ROLE_PLATFORM_ADMIN) {
        reply_error(q->r, 400, "role",
                    "role '%s' is not a tenant's role (expected tenant-admin, operator or "
                    "viewer)",
                    quote(v[1], b));
        goto done;
    }
    snprintf(u.tenant, sizeof(u.tenant), "%s", q->seg[1]);
    snprintf(u.name, sizeof(u.name), "%s", v[0]);
    snprintf(u.role, sizeof(u.role), "%s", role_names[role]);
    snprintf(q->target, sizeof(q->target), "%s/%s", u.tenant, u.name);
    ret = q->s->ops->user_create(q->s, &u);
    if (ret == -EEXIST)
        reply_error(q->r, 409, "name", "user '%s' already exists in tenant '%s'", u.name, u.tenant);
    else if (ret == -ENOENT)
        reply_no_tenant(q, u.tenant);
    else if (ret)
        reply_store(q, "user create", ret);
    else
        reply_json(q->r, 201, user_json(&u));
done:
    json_decref(doc);
}

/* The user in the path, which the caller may change (after the tenant, role and body checks,
 * as the API's order of checks says): 0, or -errno with the answer in q->r. Changing oneself
 * is refused: a slip would lock its author out. */
static int path_user_change(struct req *q, const char *what, struct store_user *u)
{
    int ret;

    ret = q->s->ops->user_get(q->s, q->seg[1], q->seg[3], u);
    if (ret == -ENOENT) {
        reply_error(q->r, 404, "user", "user '%s' not found in tenant '%s'", q->seg[3], q->seg[1]);
        return ret;
    }
    if (ret) {
        reply_store(q, "user", ret);
        return ret;
    }
    if (!strcmp(q->c.tenant, q->seg[1]) && !strcmp(q->c.user, q->seg[3])) {
        reply_error(q->r, 409, "user", "%s: user '%s' is the caller; another admin must do it",
                    what, q->seg[3]);
        return -EBUSY;
    }
    return 0;
}

struct narrow {
    const char *user;
    enum role role;
    json_t *ids; /* the ids of its tokens wider than role */
};

/* Collects the user's tokens wider than its new role; they are changed after the walk, not
 * under the store's open list. */
static int narrow_token(void *arg, const struct store_token *t)
{
    struct narrow *n = arg;

    if (strcmp(t->user, n->user) || role_parse(t->role) <= n->role)
        return 0;
    return append(n->ids, json_string(t->id));
}

static const struct field user_role_fields[] = {{"role", true}};
static const struct schema user_role_schema = {user_role_fields, 1, "role",
                                               "{\"role\": \"operator\"}"};

/* PUT /tenants/{tenant}/users/{user} {"role"}: its tokens wider than the new role are
 * narrowed to it in the same transaction, so a demotion takes effect at once. */
static void user_set_role(struct req *q)
{
    char b[API_QUOTE_LEN];
    struct store_user u;
    struct narrow n;
    const char *v[1];
    json_t *doc;
    size_t i;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s/%s", q->seg[1], q->seg[3]);
    if (path_tenant(q, q->seg[1]) || need_role(q, ROLE_TENANT_ADMIN, "changing a user's role"))
        return;
    if (body_parse(q, &user_role_schema, &doc, v))
        return;
    n.role = role_parse(v[0]);
    if (n.role == ROLE_NONE || n.role == ROLE_PLATFORM_ADMIN) {
        reply_error(q->r, 400, "role",
                    "role '%s' is not a tenant's role (expected tenant-admin, operator or "
                    "viewer)",
                    quote(v[0], b));
        goto done;
    }
    if (path_user_change(q, "changing a user's role", &u))
        goto done;
    n.user = u.name;
    n.ids = json_array();
    ret = n.ids ? q->s->ops->user_set_role(q->s, u.tenant, u.name, role_names[n.role]) : -ENOMEM;
    if (!ret)
        ret = q->s->ops->token_list(q->s, u.tenant, narrow_token, &n);
    for (i = 0; !ret && i < json_array_size(n.ids); i++)
        ret = q->s->ops->token_set_role(q->s, json_string_value(json_array_get(n.ids, i)),
                                        role_names[n.role]);
    json_decref(n.ids);
    if (ret) {
        reply_store(q, "user set role", ret);
        goto done;
    }
    snprintf(u.role, sizeof(u.role), "%s", role_names[n.role]);
    reply_json(q->r, 200, user_json(&u));
done:
    json_decref(doc);
}

/* DELETE /tenants/{tenant}/users/{user}: with its tokens. */
static void user_delete(struct req *q)
{
    struct store_user u;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s/%s", q->seg[1], q->seg[3]);
    if (path_tenant(q, q->seg[1]) || need_role(q, ROLE_TENANT_ADMIN, "deleting a user") ||
        path_user_change(q, "deleting a user", &u))
        return;
    ret = q->s->ops->user_delete(q->s, u.tenant, u.name);
    if (ret)
        reply_store(q, "user delete", ret);
    else
        reply_empty(q->r);
}

/* ---- Tokens ---- */

static void tokens_list(struct req *q)
{
    json_t *arr = json_array();
    const char *tenant = q->c.role == ROLE_PLATFORM_ADMIN ? NULL : q->c.tenant;

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    reply_list(q, "tokens", arr, q->s->ops->token_list(q->s, tenant, each_token, arr));
}

static const struct field token_fields[] = {
    {"tenant", false}, {"user", false}, {"role", false}, {"description", false}};
static const struct schema token_schema = {
    token_fields, 4, "tenant, user, role, description",
    "{\"tenant\": \"acme\", \"user\": \"alice\", \"description\": \"ci\"}"};

static void tokens_create(struct req *q)
{
    struct store_token t = {.created = time(NULL)};
    char text[TOKEN_TEXT_LEN + 1], b[API_QUOTE_LEN];
    struct store_user u;
    const char *v[4];
    enum role role;
    json_t *doc, *obj;
    int ret;

    if (need_role(q, ROLE_TENANT_ADMIN, "creating a token"))
        return;
    if (body_parse(q, &token_schema, &doc, v))
        return;
    /* tenant: absent is the caller's own; "" is the platform's, which only its admins see. */
    if (v[0] && v[0][0] && check_name(q, "tenant", v[0]))
        goto done;
    if (v[0] && !tenant_visible(q, v[0])) {
        reply_error(q->r, 404, "tenant", "tenant '%s' not found", v[0]);
        goto done;
    }
    snprintf(t.tenant, sizeof(t.tenant), "%s", v[0] ? v[0] : q->c.tenant);
    if (t.tenant[0] && path_tenant(q, t.tenant))
        goto done;
    if (v[1] && check_name(q, "user", v[1]))
        goto done;
    if (!v[1] && strcmp(t.tenant, q->c.tenant)) {
        reply_error(q->r, 400, "user", "field 'user' is required for another tenant's token");
        goto done;
    }
    snprintf(t.user, sizeof(t.user), "%s", v[1] ? v[1] : q->c.user);
    snprintf(q->audit_tenant, sizeof(q->audit_tenant), "%s", t.tenant);
    snprintf(q->target, sizeof(q->target), "%s%s%s", t.tenant, t.tenant[0] ? "/" : "", t.user);
    ret = q->s->ops->user_get(q->s, t.tenant, t.user, &u);
    if (ret == -ENOENT) {
        reply_error(q->r, 404, "user", "user '%s' not found", t.user);
        goto done;
    } else if (ret) {
        reply_store(q, "user", ret);
        goto done;
    }
    role = role_parse(u.role);
    if (v[2]) {
        enum role want = role_parse(v[2]);

        if (want == ROLE_NONE) {
            reply_error(q->r, 400, "role",
                        "role '%s' is not a role (platform-admin, tenant-admin, operator, "
                        "viewer)",
                        quote(v[2], b));
            goto done;
        }
        if (want > role) {
            reply_error(q->r, 400, "role", "role '%s' is wider than the user's role %s", v[2],
                        u.role);
            goto done;
        }
        role = want;
    }
    /* A tenant-admin never mints a token wider than its own. */
    if (role > q->c.role) {
        reply_error(q->r, 403, "role", "a token with role %s needs that role or higher",
                    role_names[role]);
        goto done;
    }
    if (v[3] && strlen(v[3]) >= sizeof(t.description)) {
        reply_error(q->r, 400, "description", "field 'description' is longer than %zu bytes",
                    sizeof(t.description) - 1);
        goto done;
    }
    snprintf(t.description, sizeof(t.description), "%s", v[3] ? v[3] : "");
    snprintf(t.role, sizeof(t.role), "%s", role_names[role]);
    ret = token_new(text, t.id, t.hash);
    if (ret) {
        reply_error(q->r, 500, NULL, "no random numbers for a token: %s", strerror(-ret));
        goto done;
    }
    snprintf(q->target, sizeof(q->target), "%s", t.id);
    ret = q->s->ops->token_create(q->s, &t);
    if (ret) {
        reply_store(q, "token create", ret);
        goto wipe;
    }
    /* The secret is shown this once; only its hash is kept. */
    obj = api_token_json(&t);
    if (obj && json_object_set_new(obj, "token", json_string(text))) {
        json_decref(obj);
        obj = NULL;
    }
    reply_json(q->r, 201, obj);
wipe:
    explicit_bzero(text, sizeof(text));
done:
    json_decref(doc);
}

static void token_revoke(struct req *q)
{
    struct store_token t;
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->seg[1]);
    ret = q->s->ops->token_get(q->s, q->seg[1], &t);
    if (ret == -ENOENT || (!ret && !tenant_visible(q, t.tenant))) {
        reply_error(q->r, 404, "id", "token '%s' not found", q->seg[1]);
        return;
    }
    if (ret) {
        reply_store(q, "token", ret);
        return;
    }
    snprintf(q->audit_tenant, sizeof(q->audit_tenant), "%s", t.tenant);
    if (need_role(q, ROLE_TENANT_ADMIN, "revoking a token"))
        return;
    ret = q->s->ops->token_revoke(q->s, t.id);
    if (ret)
        reply_store(q, "token revoke", ret);
    else
        reply_empty(q->r);
}

/* ---- Audit ---- */

static void audit_list(struct req *q)
{
    json_t *arr = json_array();
    const char *tenant = q->c.role == ROLE_PLATFORM_ADMIN ? NULL : q->c.tenant;

    if (!arr) {
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    reply_list(q, "audit", arr,
               q->s->ops->audit_list(q->s, tenant, API_AUDIT_LIMIT, each_audit, arr));
}

/* ---- Routes ---- */

/* A pattern segment "{x}" matches any segment, which must then be a valid name (the 400
 * names field x); "{id}" a token id. */
struct route {
    const char *method;
    const char *pattern[API_SEG_MAX];
    void (*handle)(struct req *q);
    const char *action; /* the audit record's action; NULL: a read, not audited */
    enum role min_role; /* the least role that may use it (in its own tenant) */
};

static const struct route routes[] = {
    {"GET", {"tenants"}, tenants_list, NULL, ROLE_VIEWER},
    {"POST", {"tenants"}, tenants_create, "tenant.create", ROLE_PLATFORM_ADMIN},
    {"GET", {"tenants", "{tenant}"}, tenant_get, NULL, ROLE_VIEWER},
    {"DELETE", {"tenants", "{tenant}"}, tenant_delete, "tenant.delete", ROLE_PLATFORM_ADMIN},
    {"GET", {"tenants", "{tenant}", "users"}, users_list, NULL, ROLE_VIEWER},
    {"POST", {"tenants", "{tenant}", "users"}, users_create, "user.create", ROLE_TENANT_ADMIN},
    {"PUT",
     {"tenants", "{tenant}", "users", "{user}"},
     user_set_role,
     "user.set-role",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"tenants", "{tenant}", "users", "{user}"},
     user_delete,
     "user.delete",
     ROLE_TENANT_ADMIN},
    {"GET", {"tenants", "{tenant}", "quota"}, api_quota_get, NULL, ROLE_VIEWER},
    {"PUT", {"tenants", "{tenant}", "quota"}, api_quota_set, "quota.set", ROLE_PLATFORM_ADMIN},
    {"GET", {"tenants", "{tenant}", "resources"}, api_tenant_resources, NULL, ROLE_VIEWER},
    {"PUT",
     {"tenants", "{tenant}", "resources"},
     api_tenant_resources,
     "tenant.resources",
     ROLE_PLATFORM_ADMIN},
    {"GET", {"tokens"}, tokens_list, NULL, ROLE_VIEWER},
    {"POST", {"tokens"}, tokens_create, "token.create", ROLE_TENANT_ADMIN},
    {"DELETE", {"tokens", "{id}"}, token_revoke, "token.revoke", ROLE_TENANT_ADMIN},
    {"POST", {"login"}, api_login, NULL, ROLE_NONE},
    {"POST", {"logout"}, api_logout, "session.logout", ROLE_VIEWER},
    {"PUT", {"password"}, api_password_set, NULL, ROLE_VIEWER},
    {"GET", {"audit"}, audit_list, NULL, ROLE_VIEWER},
    {"GET", {"roles"}, api_roles_list, NULL, ROLE_VIEWER},
    {"GET", {"host"}, api_host_get, NULL, ROLE_VIEWER},
    {"PUT", {"host"}, api_host_set, "host.set", ROLE_PLATFORM_ADMIN},
    {"GET", {"host", "stats", "history"}, api_host_stats_history, NULL, ROLE_PLATFORM_ADMIN},
    {"GET", {"pools"}, api_pools_list, NULL, ROLE_VIEWER},
    {"GET", {"volumes"}, api_volumes_list, NULL, ROLE_VIEWER},
    {"POST", {"volumes"}, api_volumes_create, "volume.create", ROLE_TENANT_ADMIN},
    {"GET", {"volumes", "{name}"}, api_volume_get, NULL, ROLE_VIEWER},
    {"DELETE", {"volumes", "{name}"}, api_volume_delete, "volume.delete", ROLE_TENANT_ADMIN},
    {"POST",
     {"volumes", "{name}", "resize"},
     api_volume_resize,
     "volume.resize",
     ROLE_TENANT_ADMIN},
    {"POST", {"volumes", "{name}", "clone"}, api_volume_clone, "volume.clone", ROLE_TENANT_ADMIN},
    {"GET", {"volumes", "{name}", "snapshots"}, api_volume_snapshots, NULL, ROLE_VIEWER},
    {"POST",
     {"volumes", "{name}", "snapshots"},
     api_volume_snapshots,
     "volume.snapshot",
     ROLE_TENANT_ADMIN},
    {"POST",
     {"volumes", "{name}", "snapshots", "{snap}", "revert"},
     api_volume_snapshots,
     "volume.revert",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"volumes", "{name}", "snapshots", "{snap}"},
     api_volume_snapshots,
     "volume.snapshot-delete",
     ROLE_TENANT_ADMIN},
    {"GET", {"templates"}, api_templates_list, NULL, ROLE_VIEWER},
    {"POST", {"templates"}, api_templates_create, "template.create", ROLE_TENANT_ADMIN},
    {"GET", {"templates", "{name}"}, api_template_get, NULL, ROLE_VIEWER},
    {"DELETE", {"templates", "{name}"}, api_template_delete, "template.delete", ROLE_TENANT_ADMIN},
    {"GET", {"vms"}, api_vms_list, NULL, ROLE_VIEWER},
    {"POST", {"vms"}, api_vms_create, "vm.create", ROLE_TENANT_ADMIN},
    {"GET", {"vms", "{name}"}, api_vm_get, NULL, ROLE_VIEWER},
    {"DELETE", {"vms", "{name}"}, api_vm_delete, "vm.delete", ROLE_TENANT_ADMIN},
    {"POST", {"vms", "{name}", "actions", "{action}"}, api_vm_action, "vm.action", ROLE_OPERATOR},
    {"GET", {"vms", "{name}", "log"}, api_vm_log, NULL, ROLE_VIEWER},
    {"GET", {"vms", "{name}", "stats"}, api_vm_stats, NULL, ROLE_VIEWER},
    {"GET", {"vms", "{name}", "stats", "history"}, api_vm_stats_history, NULL, ROLE_VIEWER},
    {"PUT",
     {"vms", "{name}", "resources"},
     api_vm_resources_set,
     "vm.resources",
     ROLE_TENANT_ADMIN},
    {"POST", {"vms", "{name}", "clone"}, api_vm_clone, "vm.clone", ROLE_TENANT_ADMIN},
    {"GET", {"vms", "{name}", "snapshots"}, api_vm_snapshots, NULL, ROLE_VIEWER},
    {"POST", {"vms", "{name}", "snapshots"}, api_vm_snapshots, "vm.snapshot", ROLE_TENANT_ADMIN},
    {"POST",
     {"vms", "{name}", "snapshots", "{snap}", "revert"},
     api_vm_snapshots,
     "vm.revert",
     ROLE_OPERATOR},
    {"DELETE",
     {"vms", "{name}", "snapshots", "{snap}"},
     api_vm_snapshots,
     "vm.snapshot-delete",
     ROLE_TENANT_ADMIN},
    {"GET", {"security-groups"}, api_secgroups_list, NULL, ROLE_VIEWER},
    {"POST", {"security-groups"}, api_secgroups_create, "secgroup.create", ROLE_TENANT_ADMIN},
    {"GET", {"security-groups", "{name}"}, api_secgroup_get, NULL, ROLE_VIEWER},
    {"PUT",
     {"security-groups", "{name}"},
     api_secgroup_update,
     "secgroup.update",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"security-groups", "{name}"},
     api_secgroup_delete,
     "secgroup.delete",
     ROLE_TENANT_ADMIN},
    {"POST",
     {"security-groups", "{name}", "rules"},
     api_secgroup_rule_add,
     "secgroup.rule-add",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"security-groups", "{name}", "rules", "{rule}"},
     api_secgroup_rule_delete,
     "secgroup.rule-delete",
     ROLE_TENANT_ADMIN},
    {"PUT",
     {"vms", "{name}", "nics", "{nic}", "security-groups"},
     api_vm_nic_secgroups,
     "vm.security-groups",
     ROLE_TENANT_ADMIN},
    {"GET", {"networks"}, api_networks_list, NULL, ROLE_VIEWER},
    {"POST", {"networks"}, api_networks_create, "network.create", ROLE_TENANT_ADMIN},
    {"GET", {"networks", "{name}"}, api_network_get, NULL, ROLE_VIEWER},
    {"DELETE", {"networks", "{name}"}, api_network_delete, "network.delete", ROLE_TENANT_ADMIN},
    {"GET", {"networks", "{name}", "check"}, api_network_check, NULL, ROLE_VIEWER},
    {"POST",
     {"networks", "{name}", "repair"},
     api_network_repair,
     "network.repair",
     ROLE_TENANT_ADMIN},
    {"GET", {"external-networks"}, api_ext_networks_list, NULL, ROLE_VIEWER},
    {"POST",
     {"external-networks"},
     api_ext_networks_create,
     "external-network.create",
     ROLE_PLATFORM_ADMIN},
    {"GET", {"external-networks", "{name}"}, api_ext_network_get, NULL, ROLE_VIEWER},
    {"DELETE",
     {"external-networks", "{name}"},
     api_ext_network_delete,
     "external-network.delete",
     ROLE_PLATFORM_ADMIN},
    {"GET", {"routers"}, api_routers_list, NULL, ROLE_VIEWER},
    {"POST", {"routers"}, api_routers_create, "router.create", ROLE_TENANT_ADMIN},
    {"GET", {"routers", "{name}"}, api_router_get, NULL, ROLE_VIEWER},
    {"PUT", {"routers", "{name}"}, api_router_put, "router.update", ROLE_TENANT_ADMIN},
    {"DELETE", {"routers", "{name}"}, api_router_delete, "router.delete", ROLE_TENANT_ADMIN},
    {"POST", {"routers", "{name}", "networks"}, api_router_sub, "router.attach", ROLE_TENANT_ADMIN},
    {"DELETE",
     {"routers", "{name}", "networks", "{network}"},
     api_router_sub,
     "router.detach",
     ROLE_TENANT_ADMIN},
    {"POST",
     {"routers", "{name}", "port-forwards"},
     api_router_sub,
     "router.forward-add",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"routers", "{name}", "port-forwards", "{protocol}", "{port}"},
     api_router_sub,
     "router.forward-delete",
     ROLE_TENANT_ADMIN},
    {"POST",
     {"routers", "{name}", "floating-ips"},
     api_router_sub,
     "router.floating-ip-add",
     ROLE_TENANT_ADMIN},
    {"DELETE",
     {"routers", "{name}", "floating-ips", "{address}"},
     api_router_sub,
     "router.floating-ip-delete",
     ROLE_TENANT_ADMIN},
    {"PUT",
     {"networks", "{name}", "vxlan"},
     api_network_vxlan_set,
     "network.vxlan.set",
     ROLE_TENANT_ADMIN},
    {"GET", {"operations"}, api_operations_list, NULL, ROLE_VIEWER},
    /* Served by the HTTP front end (server.c) before the core sees them; listed here so the
     * permission table (GET /roles) holds every route. */
    {"GET", {"events"}, api_front_only, NULL, ROLE_VIEWER},
    {"GET", {"vms", "{name}", "console"}, api_front_only, NULL, ROLE_OPERATOR},
    {"POST", {"vms", "{name}", "console-ticket"}, api_front_only, NULL, ROLE_OPERATOR},
    {"PUT", {"volumes", "{name}", "data"}, api_front_only, NULL, ROLE_TENANT_ADMIN},
    {"GET", {"operations", "{op}"}, api_operation_get, NULL, ROLE_VIEWER},
    {"GET", {"operations", "{op}", "wait"}, api_operation_wait, NULL, ROLE_VIEWER},
};

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

#define ROUTE_TEXT_LEN 96 /* "/api/v1/" and a route's pattern */

static char route_text[ROUTE_COUNT][ROUTE_TEXT_LEN];
static pthread_once_t route_text_once = PTHREAD_ONCE_INIT;

/* Each route's pattern as text, once: what /roles lists and the metrics count by. */
static void route_text_init(void)
{
    size_t i, j, n;

    for (i = 0; i < ROUTE_COUNT; i++) {
        n = (size_t)snprintf(route_text[i], ROUTE_TEXT_LEN, "/api/v1");
        for (j = 0; j < API_SEG_MAX && routes[i].pattern[j] && n < ROUTE_TEXT_LEN; j++)
            n += (size_t)snprintf(route_text[i] + n, ROUTE_TEXT_LEN - n, "/%s",
                                  routes[i].pattern[j]);
    }
}

/* GET /roles: the roles and, per route, the least role that may use it (docs/daemon.md's
 * permission table is this list; a system test checks both against the server). */
void api_roles_list(struct req *q)
{
    json_t *roles = json_array(), *perms = json_array(), *obj;
    size_t i;
    int ret = roles && perms ? 0 : -ENOMEM;

    pthread_once(&route_text_once, route_text_init);
    for (i = ROLE_VIEWER; !ret && i <= ROLE_PLATFORM_ADMIN; i++)
        ret = append(roles, json_string(role_names[i]));
    for (i = 0; !ret && i < ROUTE_COUNT; i++)
        ret = append(perms, json_pack("{s:s,s:s,s:s}", "method", routes[i].method, "path",
                                      route_text[i], "role", role_names[routes[i].min_role]));
    if (ret) {
        json_decref(roles);
        json_decref(perms);
        reply_error(q->r, 500, NULL, "out of memory");
        return;
    }
    obj = json_pack("{s:o,s:o}", "roles", roles, "permissions", perms);
    reply_json(q->r, 200, obj);
}

static bool route_matches(const struct route *rt, const struct req *q)
{
    size_t i;

    for (i = 0; i < API_SEG_MAX && rt->pattern[i]; i++)
        if (i >= q->nseg || (rt->pattern[i][0] != '{' && strcmp(rt->pattern[i], q->seg[i])))
            return false;
    return i == q->nseg;
}

/* The path's parameters, checked: 0, or -EINVAL with the 400 in q->r. */
static int route_check_params(const struct route *rt, struct req *q)
{
    char b[API_QUOTE_LEN];
    size_t i, n;

    for (i = 0; i < q->nseg; i++) {
        if (!strcmp(rt->pattern[i], "{tenant}") && check_name(q, "tenant", q->seg[i]))
            return -EINVAL;
        if (!strcmp(rt->pattern[i], "{name}") && check_name(q, "name", q->seg[i]))
            return -EINVAL;
        if (!strcmp(rt->pattern[i], "{snap}") && check_name(q, "snapshot", q->seg[i]))
            return -EINVAL;
        if (!strcmp(rt->pattern[i], "{user}") && check_name(q, "user", q->seg[i]))
            return -EINVAL;
        if (!strcmp(rt->pattern[i], "{op}")) {
            n = strlen(q->seg[i]);
            if (n != 16 || strspn(q->seg[i], "0123456789abcdef") != n) {
                reply_error(q->r, 404, "id", "operation '%s' not found", quote(q->seg[i], b));
                return -EINVAL;
            }
        }
        if (!strcmp(rt->pattern[i], "{id}")) {
            n = strlen(q->seg[i]);
            if (n != TOKEN_ID_HEX || strspn(q->seg[i], "0123456789abcdef") != n) {
                reply_error(q->r, 400, "id", "token id '%s' is not 16 hex digits",
                            quote(q->seg[i], b));
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* Splits the path after /api/v1/ into q->seg (pointing into buf, API_PATH_MAX bytes).
 * -ENOENT when it is no path of ours: another prefix, empty segments, too many or too long. */
static int path_split(const char *path, char *buf, struct req *q)
{
    static const char prefix[] = "/api/v1/";
    char *p, *slash;

    if (strncmp(path, prefix, sizeof(prefix) - 1) || strlen(path) >= API_PATH_MAX)
        return -ENOENT;
    strcpy(buf, path + sizeof(prefix) - 1);
    for (p = buf, q->nseg = 0;; p = slash + 1) {
        if (q->nseg == API_SEG_MAX || !*p)
            return -ENOENT;
        q->seg[q->nseg++] = p;
        slash = strchr(p, '/');
        if (!slash)
            return 0;
        *slash = '\0';
    }
}

const char *api_route_template(const char *path)
{
    char buf[API_PATH_MAX];
    struct req q = {0};
    size_t i;

    pthread_once(&route_text_once, route_text_init);
    if (path_split(path, buf, &q))
        return "other";
    for (i = 0; i < ROUTE_COUNT; i++)
        if (route_matches(&routes[i], &q))
            return route_text[i];
    return "other";
}

/* ---- Authentication ---- */

int api_authenticate(struct store *s, const char *authorization, struct api_caller *out)
{
    uint8_t hash[STORE_HASH_LEN];
    char id[STORE_TOKEN_ID_LEN];
    struct store_token t;
    enum role role;
    const char *p;
    size_t n;
    int ret;

    memset(out, 0, sizeof(*out));
    if (!authorization || strncasecmp(authorization, "Bearer ", 7))
        return -EACCES;
    for (p = authorization + 7; *p == ' '; p++)
        ;
    for (n = strlen(p); n && (p[n - 1] == ' ' || p[n - 1] == '\t'); n--)
        ;
    if (token_parse(p, n, id, hash))
        return -EACCES;
    ret = s->ops->token_get(s, id, &t);
    if (ret == -ENOMEM)
        return ret;
    if (ret && ret != -ENOENT)
        return -EIO;
    if (ret || !token_hash_equal(hash, t.hash) || t.revoked ||
        (t.expires && time(NULL) >= t.expires))
        return -EACCES;
    role = role_parse(t.role);
    if (role == ROLE_NONE || (role == ROLE_PLATFORM_ADMIN) != !t.tenant[0])
        return -EACCES;
    snprintf(out->tenant, sizeof(out->tenant), "%s", t.tenant);
    snprintf(out->user, sizeof(out->user), "%s", t.user);
    snprintf(out->role, sizeof(out->role), "%s", role_names[role]);
    snprintf(out->token_id, sizeof(out->token_id), "%s", t.id);
    return 0;
}

/* Finds the caller from "Bearer TOKEN" (RFC 6750 §2.1; the scheme is case-insensitive, RFC
 * 7235 §2.1). 0, or -EACCES with the 401 in q->r. */
static int authenticate(struct req *q, const char *authorization)
{
    struct api_caller c;
    int ret;

    if (!authorization) {
        reply_error(q->r, 401, NULL,
                    "missing 'Authorization: Bearer TOKEN' header (the platform "
                    "administrator's token is in STATE_DIR/admin.token)");
        return -EACCES;
    }
    ret = api_authenticate(q->s, authorization, &c);
    if (ret == -EACCES) {
        /* One answer for every way a token fails, so none can be told apart. */
        reply_error(q->r, 401, NULL, "the token is not valid (unknown, malformed or revoked)");
        return ret;
    }
    if (ret) {
        reply_store(q, "token", ret);
        return -EACCES;
    }
    q->c.role = role_parse(c.role);
    snprintf(q->c.tenant, sizeof(q->c.tenant), "%s", c.tenant);
    snprintf(q->c.user, sizeof(q->c.user), "%s", c.user);
    snprintf(q->c.token_id, sizeof(q->c.token_id), "%s", c.token_id);
    q->authenticated = true;
    return 0;
}

/* ---- Audit records ---- */

void api_audit(struct req *q, const char *action)
{
    struct store_audit a = {.time = time(NULL), .status = q->r->status};
    json_t *err;
    const char *msg = NULL;

    snprintf(a.tenant, sizeof(a.tenant), "%s", q->audit_tenant);
    if (q->authenticated)
        snprintf(a.actor, sizeof(a.actor), "%s%s%s", q->c.tenant, q->c.tenant[0] ? "/" : "",
                 q->c.user);
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.target, sizeof(a.target), "%s", q->target);
    if (q->r->status >= 300 && q->r->body) {
        err = json_loadb(q->r->body, q->r->len, 0, NULL);
        msg = json_string_value(json_object_get(json_object_get(err, "error"), "message"));
        snprintf(a.message, sizeof(a.message), "%s", msg ? msg : "");
        json_decref(err);
    }
    if (q->s->ops->audit_append(q->s, &a))
        /* The change happened (or was refused) but is not on record: say so loudly. */
        fprintf(stderr, "tesserad: audit: cannot record %s %s (%u): %s\n", a.action, a.target,
                a.status, store_error(q->s));
}

/* A committed change goes on the event stream of the tenant whose log it is in: what was done
 * to what, by whom, and the object as the answer showed it. */
static void publish_change(struct req *q, const char *action)
{
    json_t *body = q->r->body ? json_loadb(q->r->body, q->r->len, 0, NULL) : NULL;
    json_t *ev = json_pack("{s:s,s:s,s:s,s:i}", "action", action, "target", q->target, "actor",
                           q->c.user, "status", (int)q->r->status);

    /* A token's secret never goes on a stream. */
    if (ev && json_is_object(body) && !json_object_get(body, "token"))
        json_object_set(ev, "object", body);
    api_publish(q->d, q->audit_tenant, action, ev);
    json_decref(body);
    json_decref(ev);
}

/* ---- The request core ---- */

void api_handle(struct daemon *d, const struct api_request *rq, struct api_response *r)
{
    char buf[API_PATH_MAX], b2[API_QUOTE_LEN];
    struct store *s = d->store;
    struct req q = {.d = d, .s = s, .rq = rq, .body = rq->body, .len = rq->len, .r = r};
    const char *method = rq->method, *path = rq->path;
    size_t len = rq->len;
    const struct route *rt = NULL;
    bool change = strcmp(method, "GET") && strcmp(method, "HEAD");
    bool path_known = false;
    char b[API_QUOTE_LEN];
    size_t i;

    memset(r, 0, sizeof(*r));
    if (len > API_BODY_MAX) {
        reply_error(r, 413, NULL, "request body is %zu bytes; the limit is %u", len, API_BODY_MAX);
        goto audit;
    }
    /* POST /login is how a token is had without one; any other method on it answers as the
     * table says (405), after authentication like every other route. */
    if (!(strcmp(path, "/api/v1/login") == 0 && strcmp(method, "POST") == 0) &&
        authenticate(&q, rq->authorization))
        goto audit;
    if (q.c.role != ROLE_PLATFORM_ADMIN)
        snprintf(q.audit_tenant, sizeof(q.audit_tenant), "%s", q.c.tenant);
    /* The scope of tenant-scoped routes. ?tenant= is a platform administrator's to choose;
     * for anyone else naming another tenant is naming something that does not exist. */
    snprintf(q.scope, sizeof(q.scope), "%s", q.c.tenant);
    if (rq->tenant) {
        if (rq->tenant[0] && check_name(&q, "tenant", rq->tenant))
            goto audit;
        if (!tenant_visible(&q, rq->tenant)) {
            reply_no_tenant(&q, rq->tenant);
            goto audit;
        }
        if (rq->tenant[0] && path_tenant(&q, rq->tenant))
            goto audit;
        snprintf(q.scope, sizeof(q.scope), "%s", rq->tenant);
        snprintf(q.audit_tenant, sizeof(q.audit_tenant), "%s", rq->tenant);
    }
    if (!path_split(path, buf, &q)) {
        for (i = 0; i < ROUTE_COUNT; i++) {
            if (!route_matches(&routes[i], &q))
                continue;
            path_known = true;
            snprintf(r->allow + strlen(r->allow), sizeof(r->allow) - strlen(r->allow), "%s%s",
                     r->allow[0] ? ", " : "", routes[i].method);
            if (!strcmp(routes[i].method, method)) {
                rt = &routes[i];
                break;
            }
        }
    }
    if (!rt) {
        snprintf(q.target, sizeof(q.target), "%s", quote(path, b));
        if (path_known)
            reply_error(r, 405, NULL, "method %s is not allowed on %s", quote(method, b),
                        quote(path, b2));
        else
            reply_error(r, 404, NULL, "no such route: %s", quote(path, b));
        goto audit;
    }
    q.min_role = rt->min_role;
    if (route_check_params(rt, &q))
        goto audit;
    if (q.nseg > 1 && !strcmp(rt->pattern[1], "{tenant}")) {
        snprintf(q.target, sizeof(q.target), "%s", q.seg[1]);
        if (q.c.role == ROLE_PLATFORM_ADMIN)
            snprintf(q.audit_tenant, sizeof(q.audit_tenant), "%s", q.seg[1]);
    }
    if (!rt->action) {
        rt->handle(&q);
        return;
    }
    /* A change and its audit record are one transaction; a refused change is rolled back
     * and its record written alone. */
    if (s->ops->begin(s)) {
        reply_store(&q, rt->action, -EIO);
        goto audit;
    }
    rt->handle(&q);
    if (r->status < 300) {
        api_audit(&q, rt->action);
        if (s->ops->commit(s)) {
            reply_store(&q, rt->action, -EIO);
            s->ops->rollback(s);
            goto audit;
        }
        publish_change(&q, rt->action);
        return;
    }
    s->ops->rollback(s);
audit:
    if (change)
        api_audit(&q, rt ? rt->action : "unknown");
}

/* ---- First start ---- */

int api_bootstrap(struct store *s, bool *created, char *token, char *err)
{
    struct store_user u = {.created = time(NULL)};
    struct store_token t = {.created = u.created};
    struct store_audit a = {.time = u.created, .status = 201};
    uint64_t users;
    int ret;

    *created = false;
    ret = s->ops->begin(s);
    if (ret)
        goto fail;
    ret = s->ops->user_count(s, &users);
    if (ret || users) {
        s->ops->rollback(s);
        if (ret)
            goto fail;
        return 0;
    }
    snprintf(u.name, sizeof(u.name), API_ADMIN_USER);
    snprintf(u.role, sizeof(u.role), "platform-admin");
    ret = s->ops->user_create(s, &u);
    if (!ret)
        ret = token_new(token, t.id, t.hash);
    if (!ret) {
        snprintf(t.user, sizeof(t.user), "%s", u.name);
        snprintf(t.role, sizeof(t.role), "%s", u.role);
        snprintf(t.description, sizeof(t.description), "created on first start");
        ret = s->ops->token_create(s, &t);
    }
    if (!ret) {
        snprintf(a.actor, sizeof(a.actor), "tesserad");
        snprintf(a.action, sizeof(a.action), "bootstrap");
        snprintf(a.target, sizeof(a.target), "%s", t.id);
        ret = s->ops->audit_append(s, &a);
    }
    if (!ret)
        ret = s->ops->commit(s);
    if (ret) {
        s->ops->rollback(s);
        goto fail;
    }
    *created = true;
    return 0;
fail:
    snprintf(err, STORE_ERR_LEN, "creating the platform administrator: %.400s",
             ret == -EIO ? store_error(s) : strerror(-ret));
    return ret;
}
