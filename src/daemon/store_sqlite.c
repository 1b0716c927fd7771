/* The SQLite store (store.h): one database file, WAL journal, foreign keys enforced.
 *
 * The schema grows by numbered migration steps (the table `migrations` below): step N takes a
 * database at level N-1 to level N inside one transaction, and `PRAGMA user_version` records
 * the level reached (SQLite file format §1.3.16: the user version is the 4-byte integer at
 * offset 60 of the header, free for the application). `PRAGMA application_id` (offset 68)
 * marks the file as ours, so a foreign SQLite database is refused rather than written into.
 * A step is never edited once released: a change is a new step. */
#include "daemon/store_sqlite.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define SQLITE_APP_ID  0x54535244 /* "TSRD" */
#define SQLITE_BUSY_MS 5000       /* another process holding the lock: wait this long */

static const char *const migrations[] = {
    /* 1: tenants and their users. The platform's users have no tenant (NULL). */
    "CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE users (id INTEGER PRIMARY KEY,"
    " tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, role TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX users_name ON users(ifnull(tenant_id, 0), name);",
    /* 2: API tokens, stored as SHA-256 hashes. */
    "CREATE TABLE tokens (id TEXT PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " role TEXT NOT NULL, hash BLOB NOT NULL, description TEXT NOT NULL,"
    " created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_user ON tokens(user_id);",
    /* 3: the audit log. Records name tenants and users as text: they outlive them. */
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
    " tenant TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
    " status INTEGER NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX audit_tenant ON audit(tenant, seq);",
    /* 4: the inventory (VMs, volumes, templates, pools, quotas, host settings) as one JSON
     * document per object, keyed like the cluster store's keys will be. Tenant "" holds the
     * platform's objects; a tenant is only deleted once it owns none (the API checks). */
    "CREATE TABLE docs (kind TEXT NOT NULL, tenant TEXT NOT NULL, name TEXT NOT NULL,"
    " doc TEXT NOT NULL, PRIMARY KEY (kind, tenant, name)) WITHOUT ROWID;",
    /* 5: password logins. A user's password as a crypt(3) hash ("" for none: token only);
     * a token's end of life in seconds since the epoch (0: none), which login sessions have. */
    "ALTER TABLE users ADD COLUMN password TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tokens ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;",
};

#define LEVEL_MAX (sizeof(migrations) / sizeof(migrations[0]))

/* Statements, prepared once on first use. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_TENANT_INSERT,
    ST_TENANT_GET,
    ST_TENANT_LIST,
    ST_TENANT_DELETE,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_LIST,
    ST_USER_COUNT,
    ST_USER_PASSWORD_SET,
    ST_USER_PASSWORD_GET,
    ST_USER_SET_ROLE,
    ST_USER_DELETE,
    ST_TOKEN_INSERT,
    ST_TOKEN_GET,
    ST_TOKEN_LIST,
    ST_TOKEN_REVOKE,
    ST_TOKEN_PRUNE,
    ST_TOKEN_SET_ROLE,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_DOC_INSERT,
    ST_DOC_UPDATE,
    ST_DOC_GET,
    ST_DOC_LIST,
    ST_DOC_DELETE,
    ST_DOC_COUNT,
    ST_COUNT
};

/* ?1 is a tenant name, "" for the platform: the tenant's id or NULL. TENANT_IS matches the
 * users of that tenant only (a missing tenant's NULL id must not match the platform's). */
#define TENANT_ID "(SELECT id FROM tenants WHERE name = ?1)"
#define TENANT_IS "((?1 = '' AND tenant_id IS NULL) OR tenant_id = " TENANT_ID ")"
#define TOKEN_COLS                                                                        \
    "SELECT k.id, ifnull(t.name, ''), u.name, k.role, k.hash, k.description, k.created, " \
    "k.revoked, k.expires FROM tokens k JOIN users u ON u.id = k.user_id "                \
    "LEFT JOIN tenants t ON t.id = u.tenant_id "

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_TENANT_INSERT] = "INSERT INTO tenants (name, created) VALUES (?1, ?2)",
    [ST_TENANT_GET] = "SELECT name, created FROM tenants WHERE name = ?1",
    [ST_TENANT_LIST] = "SELECT name, created FROM tenants ORDER BY name",
    [ST_TENANT_DELETE] = "DELETE FROM tenants WHERE name = ?1",
    [ST_USER_INSERT] = "INSERT INTO users (tenant_id, name, role, created) VALUES"
                       " (" TENANT_ID ", ?2, ?3, ?4)",
    [ST_USER_GET] = "SELECT name, role, created FROM users WHERE " TENANT_IS " AND name = ?2",
    [ST_USER_LIST] = "SELECT name, role, created FROM users WHERE " TENANT_IS " ORDER BY name",
    [ST_USER_COUNT] = "SELECT count(*) FROM users",
    [ST_USER_PASSWORD_SET] = "UPDATE users SET password = ?3 WHERE " TENANT_IS " AND name = ?2",
    [ST_USER_PASSWORD_GET] = "SELECT password FROM users WHERE " TENANT_IS " AND name = ?2",
    [ST_USER_SET_ROLE] = "UPDATE users SET role = ?3 WHERE " TENANT_IS " AND name = ?2",
    [ST_USER_DELETE] = "DELETE FROM users WHERE " TENANT_IS " AND name = ?2",
    [ST_TOKEN_INSERT] =
        "INSERT INTO tokens (id, user_id, role, hash, description, created, expires)"
        " VALUES (?3, (SELECT id FROM users WHERE " TENANT_IS " AND name = ?2), ?4, ?5, ?6, ?7,"
        " ?8)",
    [ST_TOKEN_GET] = TOKEN_COLS "WHERE k.id = ?1",
    [ST_TOKEN_LIST] = TOKEN_COLS "WHERE ?1 IS NULL OR ifnull(t.name, '') = ?1 ORDER BY k.id",
    [ST_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1",
    [ST_TOKEN_PRUNE] = "DELETE FROM tokens WHERE expires != 0 AND expires <= ?1",
    [ST_TOKEN_SET_ROLE] = "UPDATE tokens SET role = ?2 WHERE id = ?1",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (time, tenant, actor, action, target, status, message)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_AUDIT_LIST] = "SELECT seq, time, tenant, actor, action, target, status, message FROM audit"
                      " WHERE ?1 IS NULL OR tenant = ?1 ORDER BY seq DESC LIMIT ?2",
    [ST_DOC_INSERT] = "INSERT INTO docs (kind, tenant, name, doc) VALUES (?1, ?2, ?3, ?4)",
    [ST_DOC_UPDATE] = "UPDATE docs SET doc = ?4 WHERE kind = ?1 AND tenant = ?2 AND name = ?3",
    [ST_DOC_GET] = "SELECT doc FROM docs WHERE kind = ?1 AND tenant = ?2 AND name = ?3",
    [ST_DOC_LIST] = "SELECT tenant, name, doc FROM docs WHERE kind = ?1 AND (?2 IS NULL OR"
                    " tenant = ?2) ORDER BY tenant, name",
    [ST_DOC_DELETE] = "DELETE FROM docs WHERE kind = ?1 AND tenant = ?2 AND name = ?3",
    [ST_DOC_COUNT] = "SELECT count(*) FROM docs WHERE tenant = ?1",
};

struct sqlite_store {
    struct store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    bool in_tx;
};

static const struct store_ops sqlite_ops;

static struct sqlite_store *to_sq(struct store *s)
{
    return (struct sqlite_store *)s;
}

/* Records the database's last error for store_error() and returns the -errno it maps to:
 * constraint violations are -EEXIST (the only constraints a valid call can break are the
 * unique keys; the API checks the rest first), out of memory -ENOMEM, the rest -EIO. */
static int fail(struct sqlite_store *q, const char *what, int rc)
{
    snprintf(q->base.error, sizeof(q->base.error), "%s: %s", what, sqlite3_errmsg(q->db));
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return -EEXIST;
    if (rc == SQLITE_NOMEM)
        return -ENOMEM;
    return -EIO;
}

/* The statement id, reset and with no bindings, prepared on first use; NULL on failure. */
static sqlite3_stmt *stmt(struct sqlite_store *q, enum stmt_id id)
{
    int rc;

    if (!q->stmt[id]) {
        rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[id],
                                NULL);
        if (rc != SQLITE_OK) {
            fail(q, "prepare", rc);
            return NULL;
        }
    }
    sqlite3_reset(q->stmt[id]);
    sqlite3_clear_bindings(q->stmt[id]);
    return q->stmt[id];
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Copies column i's text into dst (n bytes), cut to fit. */
static void col_text(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

/* Runs a statement that returns no rows. */
static int run_done(struct sqlite_store *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(q, what, rc);
    return 0;
}

/* ---- Opening and migrating ---- */

static int exec(sqlite3 *db, const char *sql, char *err, const char *path)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, STORE_ERR_LEN, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc;

    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Checks that the file is ours (or new) and at a level we know, then applies the missing
 * steps up to `level`, each in its own transaction with the user_version it reaches. */
static int migrate(sqlite3 *db, const char *path, unsigned level, char *err)
{
    int64_t version, app_id, objects;
    char sql[128];
    unsigned n;
    int rc;

    rc = pragma_int(db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = pragma_int(db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &objects);
    if (rc != SQLITE_OK) {
        snprintf(err, STORE_ERR_LEN, "%s: not a tesserad database (%s)", path, sqlite3_errstr(rc));
        return -EINVAL;
    }
    if (objects && app_id != SQLITE_APP_ID) {
        snprintf(err, STORE_ERR_LEN,
                 "%s: an SQLite database of another application (application_id 0x%llx, "
                 "tesserad's is 0x%x); give tesserad its own state directory",
                 path, (unsigned long long)app_id, SQLITE_APP_ID);
        return -EINVAL;
    }
    if (version < 0 || (uint64_t)version > LEVEL_MAX) {
        snprintf(err, STORE_ERR_LEN,
                 "%s: schema level %lld was written by a newer tessera (this one knows levels "
                 "up to %zu); run the newer tesserad, or restore a backup",
                 path, (long long)version, LEVEL_MAX);
        return -EINVAL;
    }
    for (n = (unsigned)version + 1; n <= level; n++) {
        rc = exec(db, "BEGIN IMMEDIATE", err, path);
        if (rc)
            return rc;
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %u",
                 SQLITE_APP_ID, n);
        rc = exec(db, migrations[n - 1], err, path);
        if (!rc)
            rc = exec(db, sql, err, path);
        if (!rc)
            rc = exec(db, "COMMIT", err, path);
        if (rc) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            size_t len = strlen(err);
            snprintf(err + len, STORE_ERR_LEN - len, " (migrating to schema level %u)", n);
            return rc;
        }
    }
    return 0;
}

unsigned store_sqlite_level(void)
{
    return LEVEL_MAX;
}

int store_sqlite_open_level(const char *path, unsigned level, struct store **out, char *err)
{
    struct sqlite_store *q;
    sqlite3_stmt *st;
    const unsigned char *mode;
    int rc, ret;

    *out = NULL;
    if (level < 1 || level > LEVEL_MAX) {
        snprintf(err, STORE_ERR_LEN, "%s: schema level %u is not in 1..%zu", path, level,
                 LEVEL_MAX);
        return -EINVAL;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, STORE_ERR_LEN, "%s: out of memory", path);
        return -ENOMEM;
    }
    q->base.ops = &sqlite_ops;
    rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, STORE_ERR_LEN, "%s: cannot open: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        ret = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        goto close_db;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, SQLITE_BUSY_MS);
    ret = migrate(q->db, path, level, err);
    if (ret)
        goto close_db;
    /* WAL: readers never block the writer; the mode sticks to the file. The pragma answers
     * the mode in force, which is not "wal" where the file system cannot do it. */
    ret = -EIO;
    if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, STORE_ERR_LEN, "%s: %s", path, sqlite3_errmsg(q->db));
        goto close_db;
    }
    rc = sqlite3_step(st);
    mode = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    if (!mode || strcmp((const char *)mode, "wal")) {
        snprintf(err, STORE_ERR_LEN, "%s: cannot use the WAL journal (got %s)", path,
                 mode ? (const char *)mode : sqlite3_errmsg(q->db));
        sqlite3_finalize(st);
        goto close_db;
    }
    sqlite3_finalize(st);
    ret = exec(q->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err, path);
    if (ret)
        goto close_db;
    *out = &q->base;
    return 0;
close_db:
    sqlite3_close(q->db);
    free(q);
    return ret;
}

int store_open_sqlite(const char *path, struct store **out, char *err)
{
    return store_sqlite_open_level(path, LEVEL_MAX, out, err);
}

static void sq_close(struct store *s)
{
    struct sqlite_store *q = to_sq(s);
    size_t i;

    if (q->in_tx)
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->stmt[i]);
    sqlite3_close(q->db);
    free(q);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

/* ---- Transactions ---- */

static int tx(struct store *s, enum stmt_id id, bool want_in, bool now_in, const char *what)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st;
    int ret;

    if (q->in_tx != want_in)
        return want_in ? -EINVAL : -EBUSY;
    st = stmt(q, id);
    if (!st)
        return -EIO;
    ret = run_done(q, st, what);
    /* A failed COMMIT leaves the transaction open (SQLite: "COMMIT"); a failed ROLLBACK has
     * undone it anyway when autocommit is back on. */
    q->in_tx = ret ? !sqlite3_get_autocommit(q->db) : now_in;
    return ret;
}

static int sq_begin(struct store *s)
{
    return tx(s, ST_BEGIN, false, true, "begin");
}

static int sq_commit(struct store *s)
{
    return tx(s, ST_COMMIT, true, false, "commit");
}

static int sq_rollback(struct store *s)
{
    return tx(s, ST_ROLLBACK, true, false, "rollback");
}

/* ---- Tenants ---- */

static int sq_tenant_create(struct store *s, const struct store_tenant *t)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TENANT_INSERT);

    if (!st)
        return -EIO;
    bind_text(st, 1, t->name);
    sqlite3_bind_int64(st, 2, t->created);
    return run_done(q, st, "tenant create");
}

static void tenant_row(sqlite3_stmt *st, struct store_tenant *t)
{
    col_text(st, 0, t->name, sizeof(t->name));
    t->created = sqlite3_column_int64(st, 1);
}

static int sq_tenant_get(struct store *s, const char *name, struct store_tenant *out)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TENANT_GET);
    int rc;

    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        tenant_row(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : fail(q, "tenant get", rc);
}

static int sq_tenant_list(struct store *s, int (*each)(void *arg, const struct store_tenant *t),
                          void *arg)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TENANT_LIST);
    struct store_tenant t;
    int rc, ret = 0;

    if (!st)
        return -EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tenant_row(st, &t);
        ret = each(arg, &t);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(q, "tenant list", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_tenant_delete(struct store *s, const char *name)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TENANT_DELETE);
    int ret;

    if (!st)
        return -EIO;
    bind_text(st, 1, name);
    ret = run_done(q, st, "tenant delete");
    if (!ret && sqlite3_changes(q->db) == 0)
        ret = -ENOENT;
    return ret;
}

/* ---- Users ---- */

static int sq_user_create(struct store *s, const struct store_user *u)
{
    struct sqlite_store *q = to_sq(s);
    struct store_tenant t;
    sqlite3_stmt *st;
    int ret;

    /* A NULL tenant_id would make a platform user of a user of a missing tenant. */
    if (u->tenant[0]) {
        ret = sq_tenant_get(s, u->tenant, &t);
        if (ret)
            return ret;
    }
    st = stmt(q, ST_USER_INSERT);
    if (!st)
        return -EIO;
    bind_text(st, 1, u->tenant);
    bind_text(st, 2, u->name);
    bind_text(st, 3, u->role);
    sqlite3_bind_int64(st, 4, u->created);
    return run_done(q, st, "user create");
}

static void user_row(sqlite3_stmt *st, const char *tenant, struct store_user *u)
{
    snprintf(u->tenant, sizeof(u->tenant), "%s", tenant);
    col_text(st, 0, u->name, sizeof(u->name));
    col_text(st, 1, u->role, sizeof(u->role));
    u->created = sqlite3_column_int64(st, 2);
}

static int sq_user_get(struct store *s, const char *tenant, const char *name,
                       struct store_user *out)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_USER_GET);
    int rc;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    bind_text(st, 2, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        user_row(st, tenant, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : fail(q, "user get", rc);
}

static int sq_user_list(struct store *s, const char *tenant,
                        int (*each)(void *arg, const struct store_user *u), void *arg)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_USER_LIST);
    struct store_user u;
    int rc, ret = 0;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        user_row(st, tenant, &u);
        ret = each(arg, &u);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(q, "user list", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_user_count(struct store *s, uint64_t *out)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_USER_COUNT);
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : fail(q, "user count", rc);
}

/* Runs a statement that changes one row found by (tenant, name) or by id: -ENOENT when none
 * was. b3 is bound to ?3 when not NULL. */
static int change_one(struct sqlite_store *q, enum stmt_id id, const char *b1, const char *b2,
                      const char *b3, const char *what)
{
    sqlite3_stmt *st = stmt(q, id);
    int ret;

    if (!st)
        return -EIO;
    bind_text(st, 1, b1);
    bind_text(st, 2, b2);
    if (b3)
        bind_text(st, 3, b3);
    ret = run_done(q, st, what);
    if (!ret && sqlite3_changes(q->db) == 0)
        ret = -ENOENT;
    return ret;
}

static int sq_user_password_set(struct store *s, const char *tenant, const char *name,
                                const char *hash)
{
    return change_one(to_sq(s), ST_USER_PASSWORD_SET, tenant, name, hash, "user password set");
}

static int sq_user_password_get(struct store *s, const char *tenant, const char *name, char *out,
                                size_t len)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_USER_PASSWORD_GET);
    int rc;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    bind_text(st, 2, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        col_text(st, 0, out, len);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : fail(q, "user password get", rc);
}

static int sq_user_set_role(struct store *s, const char *tenant, const char *name, const char *role)
{
    return change_one(to_sq(s), ST_USER_SET_ROLE, tenant, name, role, "user set role");
}

/* Its tokens go by the foreign key's ON DELETE CASCADE (foreign_keys is on). */
static int sq_user_delete(struct store *s, const char *tenant, const char *name)
{
    return change_one(to_sq(s), ST_USER_DELETE, tenant, name, NULL, "user delete");
}

/* ---- Tokens ---- */

static int sq_token_create(struct store *s, const struct store_token *t)
{
    struct sqlite_store *q = to_sq(s);
    struct store_user u;
    sqlite3_stmt *st;
    int ret;

    ret = sq_user_get(s, t->tenant, t->user, &u);
    if (ret)
        return ret;
    st = stmt(q, ST_TOKEN_INSERT);
    if (!st)
        return -EIO;
    bind_text(st, 1, t->tenant);
    bind_text(st, 2, t->user);
    bind_text(st, 3, t->id);
    bind_text(st, 4, t->role);
    sqlite3_bind_blob(st, 5, t->hash, STORE_HASH_LEN, SQLITE_STATIC);
    bind_text(st, 6, t->description);
    sqlite3_bind_int64(st, 7, t->created);
    sqlite3_bind_int64(st, 8, t->expires);
    return run_done(q, st, "token create");
}

static void token_row(sqlite3_stmt *st, struct store_token *t)
{
    const void *hash = sqlite3_column_blob(st, 4);

    memset(t, 0, sizeof(*t));
    col_text(st, 0, t->id, sizeof(t->id));
    col_text(st, 1, t->tenant, sizeof(t->tenant));
    col_text(st, 2, t->user, sizeof(t->user));
    col_text(st, 3, t->role, sizeof(t->role));
    /* A hash of another length never matches: it stays all zero, which no SHA-256 of a
     * token is in practice, and the comparison is of the whole array anyway. */
    if (hash && sqlite3_column_bytes(st, 4) == STORE_HASH_LEN)
        memcpy(t->hash, hash, STORE_HASH_LEN);
    col_text(st, 5, t->description, sizeof(t->description));
    t->created = sqlite3_column_int64(st, 6);
    t->revoked = sqlite3_column_int64(st, 7) != 0;
    t->expires = sqlite3_column_int64(st, 8);
}

static int sq_token_get(struct store *s, const char *id, struct store_token *out)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOKEN_GET);
    int rc;

    if (!st)
        return -EIO;
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        token_row(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : fail(q, "token get", rc);
}

static int sq_token_list(struct store *s, const char *tenant,
                         int (*each)(void *arg, const struct store_token *t), void *arg)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOKEN_LIST);
    struct store_token t;
    int rc, ret = 0;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        token_row(st, &t);
        ret = each(arg, &t);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(q, "token list", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_token_prune(struct store *s, int64_t before, uint64_t *pruned)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOKEN_PRUNE);
    int ret;

    *pruned = 0;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, before);
    ret = run_done(q, st, "token prune");
    if (!ret)
        *pruned = (uint64_t)sqlite3_changes(q->db);
    return ret;
}

static int sq_token_revoke(struct store *s, const char *id)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_TOKEN_REVOKE);
    int ret;

    if (!st)
        return -EIO;
    bind_text(st, 1, id);
    ret = run_done(q, st, "token revoke");
    if (!ret && sqlite3_changes(q->db) == 0)
        ret = -ENOENT;
    return ret;
}

static int sq_token_set_role(struct store *s, const char *id, const char *role)
{
    return change_one(to_sq(s), ST_TOKEN_SET_ROLE, id, role, NULL, "token set role");
}

/* ---- Audit ---- */

static int sq_audit_append(struct store *s, const struct store_audit *a)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_AUDIT_INSERT);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->time);
    bind_text(st, 2, a->tenant);
    bind_text(st, 3, a->actor);
    bind_text(st, 4, a->action);
    bind_text(st, 5, a->target);
    sqlite3_bind_int64(st, 6, a->status);
    bind_text(st, 7, a->message);
    return run_done(q, st, "audit append");
}

static int sq_audit_list(struct store *s, const char *tenant, unsigned limit,
                         int (*each)(void *arg, const struct store_audit *a), void *arg)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_AUDIT_LIST);
    struct store_audit a;
    int rc, ret = 0;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    sqlite3_bind_int64(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        a.seq = sqlite3_column_int64(st, 0);
        a.time = sqlite3_column_int64(st, 1);
        col_text(st, 2, a.tenant, sizeof(a.tenant));
        col_text(st, 3, a.actor, sizeof(a.actor));
        col_text(st, 4, a.action, sizeof(a.action));
        col_text(st, 5, a.target, sizeof(a.target));
        a.status = (unsigned)sqlite3_column_int64(st, 6);
        col_text(st, 7, a.message, sizeof(a.message));
        ret = each(arg, &a);
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(q, "audit list", rc);
    sqlite3_reset(st);
    return ret;
}

/* ---- Documents ---- */

static int sq_doc_put(struct store *s, const char *kind, const char *tenant, const char *name,
                      const char *doc, enum store_put how)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, how == STORE_PUT_CREATE ? ST_DOC_INSERT : ST_DOC_UPDATE);
    int ret;

    if (!st)
        return -EIO;
    bind_text(st, 1, kind);
    bind_text(st, 2, tenant);
    bind_text(st, 3, name);
    bind_text(st, 4, doc);
    ret = run_done(q, st, "document put");
    if (!ret && how == STORE_PUT_UPDATE && sqlite3_changes(q->db) == 0)
        ret = -ENOENT;
    return ret;
}

static int sq_doc_get(struct store *s, const char *kind, const char *tenant, const char *name,
                      char **doc)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_DOC_GET);
    const unsigned char *t;
    int rc, ret = 0;

    *doc = NULL;
    if (!st)
        return -EIO;
    bind_text(st, 1, kind);
    bind_text(st, 2, tenant);
    bind_text(st, 3, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        t = sqlite3_column_text(st, 0);
        *doc = strdup(t ? (const char *)t : "");
        if (!*doc)
            ret = -ENOMEM;
    } else {
        ret = rc == SQLITE_DONE ? -ENOENT : fail(q, "document get", rc);
    }
    sqlite3_reset(st);
    return ret;
}

static int sq_doc_list(struct store *s, const char *kind, const char *tenant,
                       int (*each)(void *arg, const char *tenant, const char *name,
                                   const char *doc),
                       void *arg)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_DOC_LIST);
    int rc, ret = 0;

    if (!st)
        return -EIO;
    bind_text(st, 1, kind);
    bind_text(st, 2, tenant);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0), *n = sqlite3_column_text(st, 1),
                            *d = sqlite3_column_text(st, 2);

        ret =
            each(arg, t ? (const char *)t : "", n ? (const char *)n : "", d ? (const char *)d : "");
        if (ret)
            break;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = fail(q, "document list", rc);
    sqlite3_reset(st);
    return ret;
}

static int sq_doc_delete(struct store *s, const char *kind, const char *tenant, const char *name)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_DOC_DELETE);
    int ret;

    if (!st)
        return -EIO;
    bind_text(st, 1, kind);
    bind_text(st, 2, tenant);
    bind_text(st, 3, name);
    ret = run_done(q, st, "document delete");
    if (!ret && sqlite3_changes(q->db) == 0)
        ret = -ENOENT;
    return ret;
}

static int sq_doc_count(struct store *s, const char *tenant, uint64_t *out)
{
    struct sqlite_store *q = to_sq(s);
    sqlite3_stmt *st = stmt(q, ST_DOC_COUNT);
    int rc;

    if (!st)
        return -EIO;
    bind_text(st, 1, tenant);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : fail(q, "document count", rc);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .tenant_create = sq_tenant_create,
    .tenant_get = sq_tenant_get,
    .tenant_list = sq_tenant_list,
    .tenant_delete = sq_tenant_delete,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_count = sq_user_count,
    .user_set_role = sq_user_set_role,
    .user_delete = sq_user_delete,
    .token_create = sq_token_create,
    .token_get = sq_token_get,
    .user_password_set = sq_user_password_set,
    .user_password_get = sq_user_password_get,
    .token_list = sq_token_list,
    .token_revoke = sq_token_revoke,
    .token_prune = sq_token_prune,
    .token_set_role = sq_token_set_role,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .doc_put = sq_doc_put,
    .doc_get = sq_doc_get,
    .doc_list = sq_doc_list,
    .doc_delete = sq_doc_delete,
    .doc_count = sq_doc_count,
};
