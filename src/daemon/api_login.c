/* Password login, logout and password changes (docs/daemon.md, "Password login").
 *
 * POST /login is the one route taken without a token: it checks a user's password and
 * answers with a new token that expires (a session). The password check is slow on purpose
 * (password.h), so it runs with the daemon lock released: the route is not a transaction
 * (its table entry has no action) and writes its own audit record. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/api_int.h"
#include "daemon/password.h"
#include "daemon/token.h"

#define LOGIN_TTL_DEFAULT (8 * 3600)  /* a working day */
#define LOGIN_TTL_MAX     (7 * 86400) /* a week; API tokens are for longer */
#define LOGIN_KEEP_S      86400       /* an expired session stays listed this long */

static struct password_throttle throttle;
static pthread_once_t throttle_once = PTHREAD_ONCE_INIT;

static void throttle_init(void)
{
    password_throttle_init(&throttle);
}

static int64_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Runs pw against hash with the daemon lock released. The caller holds it, as every handler
 * does, and is not in a transaction; it gets the lock back. */
static bool verify_unlocked(struct req *q, const char *pw, const char *hash)
{
    bool ok;

    pthread_mutex_unlock(&q->d->lock);
    ok = password_verify(pw, hash);
    pthread_mutex_lock(&q->d->lock);
    return ok;
}

static int hash_unlocked(struct req *q, const char *pw, char *out)
{
    int ret;

    pthread_mutex_unlock(&q->d->lock);
    ret = password_hash(pw, out);
    pthread_mutex_lock(&q->d->lock);
    return ret;
}

/* Issues the session token of user u (its role) for ttl seconds; the 201 is in q->r. */
static void login_issue(struct req *q, const struct store_user *u, uint64_t ttl)
{
    struct store_token t = {.created = time(NULL)};
    char text[TOKEN_TEXT_LEN + 1];
    uint64_t pruned;
    json_t *obj;
    int ret;

    snprintf(t.tenant, sizeof(t.tenant), "%s", u->tenant);
    snprintf(t.user, sizeof(t.user), "%s", u->name);
    snprintf(t.role, sizeof(t.role), "%s", u->role);
    snprintf(t.description, sizeof(t.description), "password login");
    t.expires = t.created + (int64_t)ttl;
    /* Sessions that ended a day ago go, so that logins do not grow the table without end;
     * a failure to prune costs nothing but room. */
    q->s->ops->token_prune(q->s, t.created - LOGIN_KEEP_S, &pruned);
    ret = token_new(text, t.id, t.hash);
    if (ret) {
        reply_error(q->r, 500, NULL, "no random numbers for a token: %s", strerror(-ret));
        return;
    }
    ret = q->s->ops->token_create(q->s, &t);
    if (ret) {
        reply_store(q, "login", ret);
    } else {
        obj = api_token_json(&t);
        if (obj && json_object_set_new(obj, "token", json_string(text))) {
            json_decref(obj);
            obj = NULL;
        }
        reply_json(q->r, 201, obj);
    }
    explicit_bzero(text, sizeof(text));
}

/* POST /login {"tenant", "user", "password", "ttl"}. */
void api_login(struct req *q)
{
    static const char *const fields[] = {"tenant", "user", "password", "ttl", NULL};
    const char *tenant = "", *user = NULL, *pw = NULL;
    char hash[PASSWORD_HASH_LEN] = "";
    uint64_t ttl = LOGIN_TTL_DEFAULT;
    struct store_user u;
    json_t *root = NULL;
    bool present, ok;
    int64_t wait;
    int ret;

    pthread_once(&throttle_once, throttle_init);
    if (body_object(q, fields, "{\"tenant\": \"acme\", \"user\": \"alice\", \"password\": \"...\"}",
                    &root) ||
        body_str(q, root, "", "tenant", false, STORE_NAME_LEN - 1, &tenant) ||
        body_str(q, root, "", "user", true, STORE_NAME_LEN - 1, &user) ||
        body_str(q, root, "", "password", true, PASSWORD_MAX, &pw) ||
        body_u64(q, root, "", "ttl", false, 1, LOGIN_TTL_MAX, &ttl, &present))
        goto audit;
    if (!tenant)
        tenant = "";
    if ((tenant[0] && check_name(q, "tenant", tenant)) || check_name(q, "user", user))
        goto audit;
    snprintf(q->target, sizeof(q->target), "%s%s%s", tenant, tenant[0] ? "/" : "", user);
    snprintf(q->audit_tenant, sizeof(q->audit_tenant), "%s", tenant);
    ret = password_throttle_begin(&throttle, tenant, user, mono_now(), &wait);
    if (ret == -EAGAIN) {
        reply_error(q->r, 429, NULL,
                    "too many failed logins for '%s'; try again in %lld s (each further "
                    "failure doubles the wait)",
                    q->target, (long long)wait);
        goto audit;
    }
    if (ret) {
        reply_error(q->r, 429, NULL, "too many logins are being checked; try again in a second");
        goto audit;
    }
    /* A missing user or one without a password is checked against nothing, taking the same
     * time, so the answer tells no one which users exist. */
    ret = q->s->ops->user_password_get(q->s, tenant, user, hash, sizeof(hash));
    if (ret && ret != -ENOENT) {
        password_throttle_abort(&throttle);
        reply_store(q, "login", ret);
        goto audit;
    }
    ok = verify_unlocked(q, pw, hash);
    password_throttle_done(&throttle, tenant, user, ok, mono_now());
    explicit_bzero(hash, sizeof(hash));
    /* The user may have gone, or lost its tenant, while the lock was free. */
    if (ok && q->s->ops->user_get(q->s, tenant, user, &u))
        ok = false;
    if (!ok) {
        reply_error(q->r, 401, NULL, "wrong tenant, user or password");
        goto audit;
    }
    snprintf(q->c.tenant, sizeof(q->c.tenant), "%s", tenant);
    snprintf(q->c.user, sizeof(q->c.user), "%s", user);
    q->c.role = role_parse(u.role);
    q->authenticated = true;
    login_issue(q, &u, ttl);
audit:
    api_audit(q, "session.login");
    json_decref(root);
}

/* POST /logout: revokes the token the request came with. */
void api_logout(struct req *q)
{
    int ret;

    snprintf(q->target, sizeof(q->target), "%s", q->c.token_id);
    ret = q->s->ops->token_revoke(q->s, q->c.token_id);
    if (ret)
        reply_store(q, "logout", ret);
    else
        reply_empty(q->r);
}

/* PUT /password {"password", "user"}: the caller's own password, or with "user" another's of
 * the scope's tenant (tenant-admin; a platform-admin in any tenant, by ?tenant=). */
void api_password_set(struct req *q)
{
    static const char *const fields[] = {"user", "password", NULL};
    const char *user = NULL, *pw = NULL;
    char hash[PASSWORD_HASH_LEN], err[STORE_ERR_LEN];
    struct store_user u;
    json_t *root = NULL;
    bool self;
    int ret;

    if (body_object(q, fields, "{\"password\": \"...\"}", &root) ||
        body_str(q, root, "", "user", false, STORE_NAME_LEN - 1, &user) ||
        body_str(q, root, "", "password", true, PASSWORD_MAX, &pw))
        goto audit;
    if (user && check_name(q, "user", user))
        goto audit;
    if (!user)
        user = q->c.user;
    self = !strcmp(q->scope, q->c.tenant) && !strcmp(user, q->c.user);
    snprintf(q->target, sizeof(q->target), "%s%s%s", q->scope, q->scope[0] ? "/" : "", user);
    if (!self && need_role(q, ROLE_TENANT_ADMIN, "setting another user's password"))
        goto audit;
    if (password_check_policy(pw, err)) {
        reply_error(q->r, 400, "password", "%s", err);
        goto audit;
    }
    ret = q->s->ops->user_get(q->s, q->scope, user, &u);
    if (ret == -ENOENT) {
        reply_error(q->r, 404, "user", "user '%s' not found", user);
        goto audit;
    }
    /* A tenant-admin sets no password for a wider role than its own (none is wider in its
     * tenant; the check keeps it true if roles grow). */
    if (!ret && !self && role_parse(u.role) > q->c.role) {
        reply_error(q->r, 403, "user", "user '%s' has a wider role than yours", user);
        goto audit;
    }
    if (!ret)
        ret = hash_unlocked(q, pw, hash);
    /* The user may have gone while the lock was free: the update then finds no row. */
    if (!ret)
        ret = q->s->ops->user_password_set(q->s, q->scope, user, hash);
    if (ret == -ENOENT)
        reply_error(q->r, 404, "user", "user '%s' not found", user);
    else if (ret)
        reply_store(q, "password", ret);
    else
        reply_empty(q->r);
audit:
    api_audit(q, "user.password");
    json_decref(root);
}
