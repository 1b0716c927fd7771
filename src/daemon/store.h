/* The daemon's store: where tenants, users, tokens and the audit log live (docs/daemon.md).
 *
 * A store is a const ops table in front of one backend. The interface speaks only in the
 * daemon's own objects, keyed by name (a tenant's name, a user's (tenant, name), a token's id),
 * never in SQL, so that the cluster's etcd backend can implement it too. SQLite is the
 * single-host backend (store_sqlite.c).
 *
 * Contracts shared by every member:
 *   - returns 0 or -errno: -ENOENT the object (or the tenant it belongs to) does not exist,
 *     -EEXIST its key is taken, -EIO the backend failed (a message in the store's last error,
 *     store_error()), -ENOMEM;
 *   - strings in the structs are NUL-terminated and fit their arrays; the caller validates
 *     names (api.c) before they get here, the backend still never overruns an array;
 *   - one thread at a time: a store is not thread-safe (the daemon calls it from its one API
 *     thread);
 *   - a change made outside begin/commit is atomic by itself; between begin and commit (or
 *     rollback) changes are one transaction. Transactions do not nest (-EBUSY).
 * List members call each(arg, item) once per object, in name order unless stated; a non-zero
 * return from each stops the walk and is returned. The item lives only during the call. */
#ifndef TESSERA_DAEMON_STORE_H
#define TESSERA_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_LEN     64  /* names: 1..63 chars of [a-z0-9-], with the NUL */
#define STORE_ROLE_LEN     16  /* "platform-admin", "tenant-admin", "viewer" */
#define STORE_TOKEN_ID_LEN 17  /* 16 hex digits, with the NUL */
#define STORE_TEXT_LEN     256 /* free text: a token's description, an audit message */
#define STORE_HASH_LEN     32  /* SHA-256 */
#define STORE_ERR_LEN      512 /* err buffers: one line, with its NUL */

/* The platform's own users belong to no tenant: their tenant is "". */
struct store_tenant {
    char name[STORE_NAME_LEN];
    int64_t created; /* seconds since the epoch */
};

struct store_user {
    char tenant[STORE_NAME_LEN]; /* "" for a platform user */
    char name[STORE_NAME_LEN];
    char role[STORE_ROLE_LEN];
    int64_t created;
};

/* A token's secret is never stored, only its hash (token.h). */
struct store_token {
    char id[STORE_TOKEN_ID_LEN];
    char tenant[STORE_NAME_LEN]; /* its user's */
    char user[STORE_NAME_LEN];
    char role[STORE_ROLE_LEN]; /* the user's role or a narrower one */
    uint8_t hash[STORE_HASH_LEN];
    char description[STORE_TEXT_LEN];
    int64_t created;
    bool revoked;
    int64_t expires; /* seconds since the epoch after which it is refused; 0: never */
};

/* One change, or one refused attempt at one. */
struct store_audit {
    int64_t seq;                     /* assigned by audit_append: increasing */
    int64_t time;                    /* seconds since the epoch */
    char tenant[STORE_NAME_LEN];     /* whose log it is in: "" the platform's only */
    char actor[2 * STORE_NAME_LEN];  /* "tenant/user", "user" for a platform user, "" unknown */
    char action[STORE_NAME_LEN];     /* "tenant.create", "token.revoke", ... */
    char target[2 * STORE_NAME_LEN]; /* the object's name or id */
    unsigned status;                 /* the HTTP status the request got */
    char message[STORE_TEXT_LEN];    /* the error message, "" on success */
};

struct store;

/* doc_put: make a new document (-EEXIST when the key is taken) or replace one (-ENOENT). */
enum store_put { STORE_PUT_CREATE, STORE_PUT_UPDATE };

struct store_ops {
    const char *name; /* "sqlite" */
    void (*close)(struct store *s);

    int (*begin)(struct store *s);
    int (*commit)(struct store *s);
    int (*rollback)(struct store *s);

    int (*tenant_create)(struct store *s, const struct store_tenant *t);
    int (*tenant_get)(struct store *s, const char *name, struct store_tenant *out);
    int (*tenant_list)(struct store *s, int (*each)(void *arg, const struct store_tenant *t),
                       void *arg);
    /* Deletes the tenant with its users and their tokens. */
    int (*tenant_delete)(struct store *s, const char *name);

    /* -ENOENT: u->tenant is neither "" nor an existing tenant. */
    int (*user_create)(struct store *s, const struct store_user *u);
    int (*user_get)(struct store *s, const char *tenant, const char *name, struct store_user *out);
    /* The users of one tenant ("": the platform's). */
    int (*user_list)(struct store *s, const char *tenant,
                     int (*each)(void *arg, const struct store_user *u), void *arg);
    /* How many users there are, in all tenants and the platform. */
    int (*user_count)(struct store *s, uint64_t *out);
    /* A user's password hash (password.h; "" for none), set and read. -ENOENT: no such user. */
    int (*user_password_set)(struct store *s, const char *tenant, const char *name,
                             const char *hash);
    int (*user_password_get)(struct store *s, const char *tenant, const char *name, char *out,
                             size_t len);
    /* Sets the user's role; its tokens keep theirs (api.c narrows them). -ENOENT: no such
     * user. */
    int (*user_set_role)(struct store *s, const char *tenant, const char *name, const char *role);
    /* Deletes the user with its tokens. -ENOENT: no such user. */
    int (*user_delete)(struct store *s, const char *tenant, const char *name);

    /* -ENOENT: its (tenant, user) does not exist. */
    int (*token_create)(struct store *s, const struct store_token *t);
    int (*token_get)(struct store *s, const char *id, struct store_token *out);
    /* The tokens of one tenant's users (NULL: of everyone), by id. */
    int (*token_list)(struct store *s, const char *tenant,
                      int (*each)(void *arg, const struct store_token *t), void *arg);
    int (*token_revoke)(struct store *s, const char *id);
    /* Deletes every token that expired at or before `before` (login sessions; tokens without
     * an end are kept); *pruned says how many. */
    int (*token_prune)(struct store *s, int64_t before, uint64_t *pruned);
    /* Sets the token's role (a user's narrowed role reaches its tokens). -ENOENT: no such
     * token. */
    int (*token_set_role)(struct store *s, const char *id, const char *role);

    /* Appends a record; its seq is assigned. */
    int (*audit_append)(struct store *s, const struct store_audit *a);
    /* The newest `limit` records of one tenant's log (NULL: all), newest first. */
    int (*audit_list)(struct store *s, const char *tenant, unsigned limit,
                      int (*each)(void *arg, const struct store_audit *a), void *arg);

    /* The inventory: one JSON document (text) per object, keyed (kind, tenant, name) with
     * kind one of "vm", "volume", "template", "pool", "quota", "host" and tenant "" for the
     * platform's objects. The store keeps the text as given; api.c owns its shape. The etcd
     * backend maps the key onto /tessera/KIND/TENANT/NAME. */
    int (*doc_put)(struct store *s, const char *kind, const char *tenant, const char *name,
                   const char *doc, enum store_put how);
    /* *doc is malloc'd; free it. */
    int (*doc_get)(struct store *s, const char *kind, const char *tenant, const char *name,
                   char **doc);
    /* One kind's documents of one tenant (NULL: of everyone), by tenant then name. */
    int (*doc_list)(struct store *s, const char *kind, const char *tenant,
                    int (*each)(void *arg, const char *tenant, const char *name, const char *doc),
                    void *arg);
    int (*doc_delete)(struct store *s, const char *kind, const char *tenant, const char *name);
    /* How many documents of any kind a tenant owns. */
    int (*doc_count)(struct store *s, const char *tenant, uint64_t *out);
};

/* Every backend's store starts with this. */
struct store {
    const struct store_ops *ops;
    char error[STORE_ERR_LEN]; /* the last -EIO's message */
};

/* Opens (creating it if absent) the SQLite store at path and brings its schema up to this
 * tessera's level (store_sqlite.c: numbered migrations). A file that is not a tesserad
 * database, or one from a newer tessera, is refused: -EINVAL with err (STORE_ERR_LEN) naming
 * path and what is wrong. */
int store_open_sqlite(const char *path, struct store **out, char *err);

/* The last failure's message ("" when none). */
static inline const char *store_error(const struct store *s)
{
    return s->error;
}

void store_close(struct store *s); /* NULL is a no-op */

#endif
