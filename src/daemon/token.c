/* API tokens (token.h). */
#include "daemon/token.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <gnutls/crypto.h>

static const char hex[] = "0123456789abcdef";

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
}

static bool is_hex(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* getrandom(2) returns at most 256 bytes at once without blocking once the pool is
 * initialised, and may be interrupted before that. */
int token_random(uint8_t *b, size_t n)
{
    size_t done = 0;
    ssize_t r;

    while (done < n) {
        r = getrandom(b + done, n - done, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

static int hash_text(const char *text, size_t n, uint8_t hash[STORE_HASH_LEN])
{
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, text, n, hash) ? -EIO : 0;
}

int token_new(char *text, char *id, uint8_t hash[STORE_HASH_LEN])
{
    uint8_t raw[TOKEN_ID_HEX / 2 + TOKEN_SECRET];
    int ret;

    ret = token_random(raw, sizeof(raw));
    if (ret)
        return ret;
    memcpy(text, TOKEN_PREFIX, 4);
    to_hex(raw, TOKEN_ID_HEX / 2, text + 4);
    text[4 + TOKEN_ID_HEX] = '_';
    to_hex(raw + TOKEN_ID_HEX / 2, TOKEN_SECRET, text + 5 + TOKEN_ID_HEX);
    text[TOKEN_TEXT_LEN] = '\0';
    memcpy(id, text + 4, TOKEN_ID_HEX);
    id[TOKEN_ID_HEX] = '\0';
    explicit_bzero(raw, sizeof(raw));
    return hash_text(text, TOKEN_TEXT_LEN, hash);
}

int token_parse(const char *text, size_t n, char *id, uint8_t hash[STORE_HASH_LEN])
{
    if (n != TOKEN_TEXT_LEN || memcmp(text, TOKEN_PREFIX, 4) || !is_hex(text + 4, TOKEN_ID_HEX) ||
        text[4 + TOKEN_ID_HEX] != '_' || !is_hex(text + 5 + TOKEN_ID_HEX, 2 * TOKEN_SECRET))
        return -EINVAL;
    memcpy(id, text + 4, TOKEN_ID_HEX);
    id[TOKEN_ID_HEX] = '\0';
    return hash_text(text, n, hash);
}

bool token_hash_equal(const uint8_t a[STORE_HASH_LEN], const uint8_t b[STORE_HASH_LEN])
{
    volatile uint8_t diff = 0;
    size_t i;

    for (i = 0; i < STORE_HASH_LEN; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}
