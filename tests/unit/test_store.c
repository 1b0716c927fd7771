/* The daemon's store (src/daemon/store.h) on its SQLite backend: the schema built at every
 * level migrates forward with its data, a newer, foreign or damaged file is refused, and every
 * typed call keeps its contract (keys, cascades, tenants kept apart, transactions). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/store.h"
#include "daemon/store_sqlite.h"
#include "test.h"

static char dir[] = "/tmp/tessera-test-store-XXXXXX";

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Runs sql on the file at path directly, as an older tessera or another program would. */
static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    int rc;

    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3_stmt *st;
    sqlite3 *db;
    long long v = -1;

    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* A database built at every level, with a tenant written at that level, migrates to the
 * newest level and keeps the tenant. */
static void test_migrations(void)
{
    unsigned level, top = store_sqlite_level();
    struct store_tenant t;
    struct store *s;
    char path[256], name[32], err[STORE_ERR_LEN];

    CHECK(top >= 3);
    for (level = 1; level <= top; level++) {
        snprintf(name, sizeof(name), "level%u.db", level);
        path_of(path, sizeof(path), name);
        CHECK(store_sqlite_open_level(path, level, &s, err) == 0);
        store_close(s);
        CHECK(raw_int(path, "PRAGMA user_version") == level);
        CHECK(raw_exec(path, "INSERT INTO tenants (name, created) VALUES ('old', 7)") == 0);
        CHECK(store_open_sqlite(path, &s, err) == 0);
        if (!s)
            continue;
        CHECK(s->ops->tenant_get(s, "old", &t) == 0 && t.created == 7);
        CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "new", .created = 8}) == 0);
        store_close(s);
        CHECK(raw_int(path, "PRAGMA user_version") == top);
        CHECK(raw_int(path, "PRAGMA application_id") == 0x54535244);
        CHECK(raw_int(path, "SELECT count(*) FROM tenants") == 2);
    }
    /* Reopening at the top level changes nothing. */
    CHECK(store_open_sqlite(path, &s, err) == 0);
    store_close(s);
    CHECK(raw_int(path, "PRAGMA user_version") == top);
    CHECK(store_sqlite_open_level(path, 0, &s, err) == -EINVAL && !s);
    CHECK(store_sqlite_open_level(path, top + 1, &s, err) == -EINVAL && !s);
}

static void test_refusals(void)
{
    char path[256], sql[64], err[STORE_ERR_LEN];
    static const char junk[] = "this is not a database, only text that happens to be long enough";
    struct store *s;
    int fd, i;

    /* From a newer tessera. */
    path_of(path, sizeof(path), "newer.db");
    CHECK(store_open_sqlite(path, &s, err) == 0);
    store_close(s);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %u", store_sqlite_level() + 1);
    CHECK(raw_exec(path, sql) == 0);
    CHECK(store_open_sqlite(path, &s, err) == -EINVAL && !s);
    CHECK(strstr(err, "newer tessera") && strstr(err, path));

    /* Another program's SQLite database. */
    path_of(path, sizeof(path), "foreign.db");
    CHECK(raw_exec(path, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')") == 0);
    CHECK(store_open_sqlite(path, &s, err) == -EINVAL && !s);
    CHECK(strstr(err, "another application") != NULL);
    CHECK(raw_int(path, "SELECT count(*) FROM notes") == 1); /* untouched */
    CHECK(raw_int(path, "PRAGMA user_version") == 0);

    /* Not a database at all. */
    path_of(path, sizeof(path), "damaged.db");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    for (i = 0; i < 128; i++)
        CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    CHECK(store_open_sqlite(path, &s, err) == -EINVAL && !s);
    CHECK(strstr(err, "not a tesserad database") != NULL);

    /* A directory where the file should be. */
    path_of(path, sizeof(path), "");
    CHECK(store_open_sqlite(path, &s, err) < 0 && !s);
}

static int count_tenant(void *arg, const struct store_tenant *t)
{
    (*(int *)arg)++;
    return 0;
}

static int count_user(void *arg, const struct store_user *u)
{
    (*(int *)arg)++;
    return 0;
}

static int count_token(void *arg, const struct store_token *t)
{
    (*(int *)arg)++;
    return 0;
}

struct audit_seen {
    int n;
    int64_t last_seq;
    bool ordered;
};

static int see_audit(void *arg, const struct store_audit *a)
{
    struct audit_seen *seen = arg;

    if (seen->n && a->seq >= seen->last_seq)
        seen->ordered = false;
    seen->last_seq = a->seq;
    seen->n++;
    return 0;
}

static int stop_early(void *arg, const struct store_tenant *t)
{
    return 42;
}

static void test_objects(void)
{
    struct store_user u = {.tenant = "a", .name = "alice", .role = "viewer", .created = 1};
    struct store_token k = {.id = "00112233445566aa",
                            .tenant = "a",
                            .user = "alice",
                            .role = "viewer",
                            .description = "ci",
                            .created = 2};
    struct store_audit a = {.time = 3, .tenant = "a", .actor = "admin", .action = "x"};
    struct audit_seen seen = {.ordered = true};
    struct store_tenant t;
    struct store_token got;
    struct store_user gu;
    struct store *s;
    char path[256], err[STORE_ERR_LEN];
    uint64_t users;
    int n, i;

    path_of(path, sizeof(path), "objects.db");
    CHECK(store_open_sqlite(path, &s, err) == 0);
    if (!s)
        return;
    CHECK(!strcmp(s->ops->name, "sqlite"));
    CHECK(raw_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode") == 1);

    /* Tenants. */
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "a", .created = 1}) == 0);
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "b", .created = 1}) == 0);
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "a", .created = 1}) == -EEXIST);
    CHECK(s->ops->tenant_get(s, "c", &t) == -ENOENT);
    n = 0;
    CHECK(s->ops->tenant_list(s, count_tenant, &n) == 0 && n == 2);
    CHECK(s->ops->tenant_list(s, stop_early, NULL) == 42);

    /* Users: per tenant, a missing tenant's users never match the platform's. */
    CHECK(s->ops->user_create(s, &u) == 0);
    CHECK(s->ops->user_create(s, &u) == -EEXIST);
    snprintf(u.tenant, sizeof(u.tenant), "b");
    CHECK(s->ops->user_create(s, &u) == 0); /* the same name in another tenant */
    snprintf(u.tenant, sizeof(u.tenant), "zz");
    CHECK(s->ops->user_create(s, &u) == -ENOENT);
    CHECK(s->ops->user_create(s, &(struct store_user){.name = "root", .role = "platform-admin"}) ==
          0);
    CHECK(s->ops->user_get(s, "", "root", &gu) == 0 && !strcmp(gu.role, "platform-admin"));
    CHECK(s->ops->user_get(s, "zz", "root", &gu) == -ENOENT);
    CHECK(s->ops->user_get(s, "a", "root", &gu) == -ENOENT);
    CHECK(s->ops->user_get(s, "a", "alice", &gu) == 0 && !strcmp(gu.tenant, "a"));
    n = 0;
    CHECK(s->ops->user_list(s, "a", count_user, &n) == 0 && n == 1);
    n = 0;
    CHECK(s->ops->user_list(s, "", count_user, &n) == 0 && n == 1);
    CHECK(s->ops->user_count(s, &users) == 0 && users == 3);

    /* Tokens. */
    memset(k.hash, 0xab, sizeof(k.hash));
    CHECK(s->ops->token_create(s, &k) == 0);
    CHECK(s->ops->token_create(s, &k) == -EEXIST);
    snprintf(k.user, sizeof(k.user), "nobody");
    CHECK(s->ops->token_create(s, &k) == -ENOENT);
    snprintf(k.id, sizeof(k.id), "00112233445566bb");
    snprintf(k.tenant, sizeof(k.tenant), "b");
    snprintf(k.user, sizeof(k.user), "alice");
    CHECK(s->ops->token_create(s, &k) == 0);
    CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0);
    CHECK(!strcmp(got.tenant, "a") && !strcmp(got.user, "alice") && !got.revoked &&
          !memcmp(got.hash, k.hash, sizeof(k.hash)) && !strcmp(got.description, "ci"));
    n = 0;
    CHECK(s->ops->token_list(s, "a", count_token, &n) == 0 && n == 1);
    n = 0;
    CHECK(s->ops->token_list(s, NULL, count_token, &n) == 0 && n == 2);
    CHECK(s->ops->token_revoke(s, "00112233445566aa") == 0);
    CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0 && got.revoked);
    CHECK(s->ops->token_revoke(s, "ffffffffffffffff") == -ENOENT);
    /* Tokens with an end go once it is past; those without stay. */
    {
        struct store_token e = k;
        uint64_t pruned = 99;

        snprintf(e.id, sizeof(e.id), "00112233445566cc");
        e.expires = 1000;
        CHECK(s->ops->token_create(s, &e) == 0);
        CHECK(s->ops->token_get(s, "00112233445566cc", &got) == 0 && got.expires == 1000);
        CHECK(s->ops->token_prune(s, 999, &pruned) == 0 && pruned == 0);
        CHECK(s->ops->token_prune(s, 1000, &pruned) == 0 && pruned == 1);
        CHECK(s->ops->token_get(s, "00112233445566cc", &got) == -ENOENT);
        CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0);
    }
    CHECK(s->ops->token_set_role(s, "00112233445566aa", "viewer") == 0);
    CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0 && !strcmp(got.role, "viewer"));
    CHECK(s->ops->token_set_role(s, "ffffffffffffffff", "viewer") == -ENOENT);

    /* A user's role changes in its own tenant only; deleting it takes its tokens. */
    CHECK(s->ops->user_set_role(s, "a", "alice", "operator") == 0);
    CHECK(s->ops->user_get(s, "a", "alice", &gu) == 0 && !strcmp(gu.role, "operator"));
    CHECK(s->ops->user_get(s, "b", "alice", &gu) == 0 && strcmp(gu.role, "operator"));
    CHECK(s->ops->user_set_role(s, "a", "nobody", "viewer") == -ENOENT);
    CHECK(s->ops->user_set_role(s, "", "alice", "viewer") == -ENOENT);
    CHECK(s->ops->user_create(
              s, &(struct store_user){.tenant = "a", .name = "gone", .role = "viewer"}) == 0);
    snprintf(k.id, sizeof(k.id), "00112233445566cc");
    snprintf(k.tenant, sizeof(k.tenant), "a");
    snprintf(k.user, sizeof(k.user), "gone");
    CHECK(s->ops->token_create(s, &k) == 0);
    CHECK(s->ops->user_delete(s, "b", "gone") == -ENOENT);
    CHECK(s->ops->user_delete(s, "a", "gone") == 0);
    CHECK(s->ops->user_delete(s, "a", "gone") == -ENOENT);
    CHECK(s->ops->user_get(s, "a", "gone", &gu) == -ENOENT);
    CHECK(s->ops->token_get(s, "00112233445566cc", &got) == -ENOENT);
    CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0);

    /* Deleting a tenant takes its users and their tokens, and nobody else's. */
    CHECK(s->ops->tenant_delete(s, "b") == 0);
    CHECK(s->ops->tenant_delete(s, "b") == -ENOENT);
    CHECK(s->ops->token_get(s, "00112233445566bb", &got) == -ENOENT);
    CHECK(s->ops->user_get(s, "b", "alice", &gu) == -ENOENT);
    CHECK(s->ops->user_get(s, "a", "alice", &gu) == 0);
    CHECK(s->ops->user_count(s, &users) == 0 && users == 2);

    /* Transactions: a rolled-back change is gone, a committed one stays; no nesting. */
    CHECK(s->ops->commit(s) == -EINVAL);
    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->begin(s) == -EBUSY);
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "gone", .created = 1}) == 0);
    CHECK(s->ops->rollback(s) == 0);
    CHECK(s->ops->tenant_get(s, "gone", &t) == -ENOENT);
    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "kept", .created = 1}) == 0);
    CHECK(s->ops->commit(s) == 0);

    /* Audit: newest first, per tenant, limited. */
    for (i = 0; i < 5; i++)
        CHECK(s->ops->audit_append(s, &a) == 0);
    snprintf(a.tenant, sizeof(a.tenant), "kept");
    CHECK(s->ops->audit_append(s, &a) == 0);
    CHECK(s->ops->audit_list(s, "a", 100, see_audit, &seen) == 0 && seen.n == 5 && seen.ordered);
    seen = (struct audit_seen){.ordered = true};
    CHECK(s->ops->audit_list(s, NULL, 3, see_audit, &seen) == 0 && seen.n == 3 && seen.ordered);
    store_close(s);

    /* Everything committed is there after a reopen; the rolled-back tenant is not. */
    CHECK(store_open_sqlite(path, &s, err) == 0);
    if (!s)
        return;
    CHECK(s->ops->tenant_get(s, "kept", &t) == 0);
    CHECK(s->ops->tenant_get(s, "gone", &t) == -ENOENT);
    CHECK(s->ops->token_get(s, "00112233445566aa", &got) == 0 && got.revoked);
    seen = (struct audit_seen){.ordered = true};
    CHECK(s->ops->audit_list(s, NULL, 100, see_audit, &seen) == 0 && seen.n == 6);
    /* A transaction left open is rolled back by close. */
    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->tenant_create(s, &(struct store_tenant){.name = "open", .created = 1}) == 0);
    store_close(s);
    CHECK(raw_int(path, "SELECT count(*) FROM tenants WHERE name = 'open'") == 0);
}

int main(void)
{
    char cmd[128];

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_migrations();
    test_refusals();
    test_objects();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("store");
}
