/* API tokens (docs/daemon.md): "tsr_" + a 16-hex-digit public id + "_" + 64 hex digits of
 * secret (32 random bytes from getrandom()). The id finds the token in the store; only the
 * SHA-256 of the whole text is stored, and a presented token is checked by comparing hashes in
 * constant time. Pure functions, any thread. */
#ifndef TESSERA_DAEMON_TOKEN_H
#define TESSERA_DAEMON_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/store.h"

#define TOKEN_PREFIX   "tsr_"
#define TOKEN_ID_HEX   16                                        /* digits */
#define TOKEN_SECRET   32                                        /* bytes */
#define TOKEN_TEXT_LEN (4 + TOKEN_ID_HEX + 1 + 2 * TOKEN_SECRET) /* without the NUL */

/* A new token: its text (TOKEN_TEXT_LEN + 1 bytes), id (STORE_TOKEN_ID_LEN) and hash. Returns
 * 0, or -errno when the kernel's random source fails. */
int token_new(char *text, char *id, uint8_t hash[STORE_HASH_LEN]);

/* Checks the shape of a presented token (n bytes, need not be NUL-terminated) and gives its id
 * and hash. -EINVAL when it is not a token's shape. */
int token_parse(const char *text, size_t n, char *id, uint8_t hash[STORE_HASH_LEN]);

/* Fills b with n bytes from the kernel's random source (getrandom(2), retried when
 * interrupted): 0 or -errno. Also what console tickets are made of. */
int token_random(uint8_t *b, size_t n);

/* a == b, in time that does not depend on where they differ. */
bool token_hash_equal(const uint8_t a[STORE_HASH_LEN], const uint8_t b[STORE_HASH_LEN]);

#endif
