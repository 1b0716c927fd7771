/* Users' passwords and the login throttle (password.h). */
#include "daemon/password.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/token.h"

#define YESCRYPT "$y$"

int password_check_policy(const char *pw, char *err)
{
    size_t n = strlen(pw), i;

    if (n < PASSWORD_MIN || n > PASSWORD_MAX) {
        snprintf(err, STORE_ERR_LEN, "password: expected %d to %d bytes, got %zu", PASSWORD_MIN,
                 PASSWORD_MAX, n);
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f) {
            snprintf(err, STORE_ERR_LEN, "password: control characters are not allowed");
            return -EINVAL;
        }
    }
    return 0;
}

/* crypt_rn() into a heap buffer (struct crypt_data is 32 KiB: too much for a thread's stack
 * in a daemon with many threads); out gets the result or stays "". */
static int hash_with(const char *pw, const char *setting, char *out)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    const char *h;
    int ret = 0;

    out[0] = '\0';
    if (!cd)
        return -ENOMEM;
    h = crypt_rn(pw, setting, cd, (int)sizeof(*cd));
    if (!h || h[0] == '*' || strlen(h) >= PASSWORD_HASH_LEN)
        ret = -EIO;
    else
        memcpy(out, h, strlen(h) + 1);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ret;
}

int password_hash(const char *pw, char *out)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    uint8_t salt[32];

    out[0] = '\0';
    if (token_random(salt, sizeof(salt)))
        return -EIO;
    /* Count 0: libxcrypt's default cost for the method. */
    if (!crypt_gensalt_rn(YESCRYPT, 0, (const char *)salt, (int)sizeof(salt), setting,
                          (int)sizeof(setting)))
        return -EIO;
    return hash_with(pw, setting, out);
}

bool password_verify(const char *pw, const char *hash)
{
    /* A fixed yescrypt setting stands in for a missing or malformed hash: the same work,
     * and nothing matches it since the result is compared with the empty or bad hash. */
    static const char stand_in[] = "$y$j9T$Zm9yIHRpbWluZyBvbmx5$";
    char got[PASSWORD_HASH_LEN];
    bool real = !strncmp(hash, YESCRYPT, 3) && strlen(hash) < PASSWORD_HASH_LEN;
    size_t n = strlen(hash), i;
    unsigned char diff = 0;

    if (hash_with(pw, real ? hash : stand_in, got) || !real)
        return false;
    if (strlen(got) != n)
        return false;
    for (i = 0; i < n; i++)
        diff |= (unsigned char)(got[i] ^ hash[i]);
    explicit_bzero(got, sizeof(got));
    return diff == 0;
}

/* ---- The throttle ---- */

void password_throttle_init(struct password_throttle *t)
{
    pthread_mutex_init(&t->lock, NULL);
}

void password_throttle_destroy(struct password_throttle *t)
{
    pthread_mutex_destroy(&t->lock);
}

/* The name's slot, or NULL when it has none. Caller holds t->lock. */
static struct password_slot *slot_find(struct password_throttle *t, const char *key)
{
    for (size_t i = 0; i < PASSWORD_NAMES; i++)
        if (t->slot[i].key[0] && !strcmp(t->slot[i].key, key))
            return &t->slot[i];
    return NULL;
}

/* A slot for key: a free one, else the one touched longest ago. Caller holds t->lock. */
static struct password_slot *slot_take(struct password_throttle *t, const char *key, int64_t now)
{
    struct password_slot *s = slot_find(t, key), *old = &t->slot[0];

    if (s)
        return s;
    for (size_t i = 0; i < PASSWORD_NAMES; i++) {
        if (!t->slot[i].key[0]) {
            old = &t->slot[i];
            break;
        }
        if (t->slot[i].used < old->used)
            old = &t->slot[i];
    }
    memset(old, 0, sizeof(*old));
    snprintf(old->key, sizeof(old->key), "%s", key);
    old->used = now;
    return old;
}

static void throttle_key(const char *tenant, const char *user, char *key)
{
    snprintf(key, 2 * STORE_NAME_LEN, "%.63s/%.63s", tenant, user);
}

int password_throttle_begin(struct password_throttle *t, const char *tenant, const char *user,
                            int64_t now, int64_t *wait)
{
    char key[2 * STORE_NAME_LEN];
    struct password_slot *s;
    int ret = 0;

    throttle_key(tenant, user, key);
    *wait = 0;
    pthread_mutex_lock(&t->lock);
    s = slot_find(t, key);
    if (s && s->until > now) {
        *wait = s->until - now;
        ret = -EAGAIN;
    } else if (t->checking >= PASSWORD_CHECKS_MAX) {
        ret = -EBUSY;
    } else {
        t->checking++;
    }
    pthread_mutex_unlock(&t->lock);
    return ret;
}

void password_throttle_abort(struct password_throttle *t)
{
    pthread_mutex_lock(&t->lock);
    if (t->checking)
        t->checking--;
    pthread_mutex_unlock(&t->lock);
}

void password_throttle_done(struct password_throttle *t, const char *tenant, const char *user,
                            bool ok, int64_t now)
{
    char key[2 * STORE_NAME_LEN];
    struct password_slot *s;

    throttle_key(tenant, user, key);
    pthread_mutex_lock(&t->lock);
    if (t->checking)
        t->checking--;
    if (ok) {
        s = slot_find(t, key);
        if (s)
            memset(s, 0, sizeof(*s));
    } else {
        s = slot_take(t, key, now);
        s->used = now;
        if (s->failures < 64)
            s->failures++;
        if (s->failures >= PASSWORD_FREE_TRIES) {
            unsigned over = s->failures - PASSWORD_FREE_TRIES;
            int64_t w = over >= 9 ? PASSWORD_WAIT_MAX_S : (int64_t)1 << over;

            s->until = now + (w > PASSWORD_WAIT_MAX_S ? PASSWORD_WAIT_MAX_S : w);
        }
    }
    pthread_mutex_unlock(&t->lock);
}
