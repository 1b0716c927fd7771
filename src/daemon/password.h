/* password: users' passwords for the login route (docs/daemon.md, "Password login").
 *
 * A password is stored only as a crypt(3) hash from libxcrypt, with yescrypt ("$y$"), the
 * method Debian uses for /etc/shadow: memory-hard and salted, so a stolen database gives up
 * no password cheaply. A check takes tens of milliseconds on purpose; callers run it without
 * the daemon lock.
 *
 * The throttle slows guessing: each (tenant, user) name that fails PASSWORD_FREE_TRIES times
 * in a row must then wait, 1 s after the next failure, doubling with each further one up to
 * PASSWORD_WAIT_MAX_S; a success clears it. At most PASSWORD_CHECKS_MAX checks run at once,
 * so a flood of logins cannot tie up every thread. Names never seen are throttled like known
 * ones: a caller learns nothing about which users exist.
 *
 * password_hash() and password_verify() are pure and thread-safe. The throttle is the
 * caller's memory (zeroed, then password_throttle_init()) with its own lock; times are
 * CLOCK_MONOTONIC seconds, passed in so that the rules can be tested without waiting. */
#ifndef TESSERA_DAEMON_PASSWORD_H
#define TESSERA_DAEMON_PASSWORD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"

#define PASSWORD_MIN        8   /* bytes */
#define PASSWORD_MAX        256 /* bytes */
#define PASSWORD_HASH_LEN   128 /* a yescrypt hash (73 characters), with room; with the NUL */
#define PASSWORD_FREE_TRIES 5
#define PASSWORD_WAIT_MAX_S 300
#define PASSWORD_NAMES      256 /* names the throttle remembers; the oldest goes first */
#define PASSWORD_CHECKS_MAX 4

/* 0 when pw (NUL-terminated) may be a password: PASSWORD_MIN to PASSWORD_MAX bytes, no
 * control characters. -EINVAL with err (STORE_ERR_LEN) saying what is expected. */
int password_check_policy(const char *pw, char *err);

/* out (PASSWORD_HASH_LEN) gets pw's hash with a fresh random salt. 0, or -errno (-ENOMEM,
 * -EIO when libxcrypt or the random source fails). */
int password_hash(const char *pw, char *out);

/* Whether pw matches hash. An empty or malformed hash matches nothing, after as much work as
 * a real check, so that the time taken does not tell a user without a password from one with
 * another password. */
bool password_verify(const char *pw, const char *hash);

struct password_slot {
    char key[2 * STORE_NAME_LEN]; /* "tenant/user" */
    unsigned failures;            /* in a row */
    int64_t until;                /* no check before this time */
    int64_t used;                 /* last touched: the oldest is reused */
};

struct password_throttle {
    pthread_mutex_t lock;
    struct password_slot slot[PASSWORD_NAMES];
    unsigned checking; /* checks in flight */
};

void password_throttle_init(struct password_throttle *t);
void password_throttle_destroy(struct password_throttle *t);

/* Before a check of (tenant, user) at time now: 0 when it may go ahead (and it then counts as
 * in flight until password_throttle_done()); -EAGAIN with *wait the seconds left when the
 * name must wait; -EBUSY when PASSWORD_CHECKS_MAX checks are in flight. */
int password_throttle_begin(struct password_throttle *t, const char *tenant, const char *user,
                            int64_t now, int64_t *wait);
/* After a check that password_throttle_begin() let through: ok clears the name's failures, a
 * failure counts one and sets its wait. password_throttle_abort() instead when no check was
 * made after all (the store failed): nothing is counted. */
void password_throttle_done(struct password_throttle *t, const char *tenant, const char *user,
                            bool ok, int64_t now);
void password_throttle_abort(struct password_throttle *t);

#endif
