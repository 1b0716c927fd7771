/* Users' passwords (src/daemon/password.h): the policy's bounds, hashes that are yescrypt,
 * salted and verify only their own password, an empty or damaged hash that matches nothing;
 * and the login throttle: free tries, then waits that double up to the cap, a success that
 * clears them, names kept apart, a bound on checks in flight and on the names remembered. */
#include <errno.h>
#include <string.h>

#include "daemon/password.h"
#include "test.h"

static void test_policy(void)
{
    char err[STORE_ERR_LEN], long_pw[PASSWORD_MAX + 2];

    CHECK(password_check_policy("correct horse", err) == 0);
    CHECK(password_check_policy("short", err) == -EINVAL && strstr(err, "8 to 256 bytes"));
    memset(long_pw, 'a', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';
    CHECK(password_check_policy(long_pw, err) == -EINVAL);
    long_pw[PASSWORD_MAX] = '\0';
    CHECK(password_check_policy(long_pw, err) == 0);
    CHECK(password_check_policy("tab\there-too", err) == -EINVAL && strstr(err, "control"));
    /* UTF-8 is bytes like any other. */
    CHECK(password_check_policy("pässwört-ü", err) == 0);
}

static void test_hash(void)
{
    char a[PASSWORD_HASH_LEN], b[PASSWORD_HASH_LEN], bad[PASSWORD_HASH_LEN];

    CHECK(password_hash("correct horse", a) == 0 && !strncmp(a, "$y$", 3));
    CHECK(password_hash("correct horse", b) == 0 && strcmp(a, b)); /* salted */
    CHECK(password_verify("correct horse", a) && password_verify("correct horse", b));
    CHECK(!password_verify("correct horsE", a) && !password_verify("", a));
    CHECK(!password_verify("correct horse", "")); /* a user without a password */
    CHECK(!password_verify("correct horse", "*"));
    CHECK(!password_verify("correct horse", "$1$abc$def")); /* MD5-crypt: not ours */
    memcpy(bad, a, sizeof(bad));
    bad[strlen(bad) - 1] ^= 1;
    CHECK(!password_verify("correct horse", bad));
    bad[10] = '\0'; /* a cut hash */
    CHECK(!password_verify("correct horse", bad));
}

static void test_throttle(void)
{
    struct password_throttle t = {0};
    int64_t wait = -1;
    int i;

    password_throttle_init(&t);
    /* PASSWORD_FREE_TRIES - 1 failures cost nothing; the next sets a 1 s wait. */
    for (i = 0; i < PASSWORD_FREE_TRIES - 1; i++) {
        CHECK(password_throttle_begin(&t, "acme", "ann", 100, &wait) == 0 && wait == 0);
        password_throttle_done(&t, "acme", "ann", false, 100);
    }
    CHECK(password_throttle_begin(&t, "acme", "ann", 100, &wait) == 0);
    password_throttle_done(&t, "acme", "ann", false, 100);
    CHECK(password_throttle_begin(&t, "acme", "ann", 100, &wait) == -EAGAIN && wait == 1);
    /* Another name, or the same name in another tenant, is not held up. */
    CHECK(password_throttle_begin(&t, "acme", "bob", 100, &wait) == 0);
    password_throttle_done(&t, "acme", "bob", true, 100);
    CHECK(password_throttle_begin(&t, "", "ann", 100, &wait) == 0);
    password_throttle_done(&t, "", "ann", true, 100);
    /* Each further failure doubles the wait. */
    CHECK(password_throttle_begin(&t, "acme", "ann", 101, &wait) == 0);
    password_throttle_done(&t, "acme", "ann", false, 101);
    CHECK(password_throttle_begin(&t, "acme", "ann", 102, &wait) == -EAGAIN && wait == 1);
    CHECK(password_throttle_begin(&t, "acme", "ann", 103, &wait) == 0);
    password_throttle_done(&t, "acme", "ann", false, 103);
    CHECK(password_throttle_begin(&t, "acme", "ann", 103, &wait) == -EAGAIN && wait == 4);
    /* ... up to the cap. */
    for (i = 0; i < 20; i++) {
        int64_t now = 1000 + i * PASSWORD_WAIT_MAX_S;

        CHECK(password_throttle_begin(&t, "acme", "ann", now, &wait) == 0);
        password_throttle_done(&t, "acme", "ann", false, now);
    }
    CHECK(password_throttle_begin(&t, "acme", "ann", 1000 + 19 * PASSWORD_WAIT_MAX_S, &wait) ==
              -EAGAIN &&
          wait == PASSWORD_WAIT_MAX_S);
    /* A success clears the name. */
    CHECK(password_throttle_begin(&t, "acme", "ann", 100000, &wait) == 0);
    password_throttle_done(&t, "acme", "ann", true, 100000);
    CHECK(password_throttle_begin(&t, "acme", "ann", 100000, &wait) == 0);
    password_throttle_done(&t, "acme", "ann", false, 100000);
    CHECK(password_throttle_begin(&t, "acme", "ann", 100000, &wait) == 0);
    password_throttle_abort(&t);
    /* At most PASSWORD_CHECKS_MAX in flight; an abort or an answer frees a place. */
    for (i = 0; i < PASSWORD_CHECKS_MAX; i++)
        CHECK(password_throttle_begin(&t, "acme", "c", 200000, &wait) == 0);
    CHECK(password_throttle_begin(&t, "acme", "d", 200000, &wait) == -EBUSY);
    password_throttle_abort(&t);
    CHECK(password_throttle_begin(&t, "acme", "d", 200000, &wait) == 0);
    for (i = 0; i < PASSWORD_CHECKS_MAX; i++)
        password_throttle_done(&t, "acme", "c", true, 200000);
    /* More names than it remembers: the oldest is forgotten, the table stays bounded. */
    for (i = 0; i < PASSWORD_NAMES + 10; i++) {
        char name[16];

        snprintf(name, sizeof(name), "u%d", i);
        CHECK(password_throttle_begin(&t, "big", name, 300000 + i, &wait) == 0);
        password_throttle_done(&t, "big", name, false, 300000 + i);
    }
    CHECK(t.checking == 0);
    password_throttle_destroy(&t);
}

int main(void)
{
    test_policy();
    test_hash();
    test_throttle();
    return test_finish("password");
}
