/* The daemon's listening sockets (docs/daemon.md, "Listening"): a --listen spec made into a
 * bound, listening socket, and the TLS certificate and key read and checked for https://.
 *
 * Specs: "unix:PATH" (created with the given mode; a stale socket is replaced, a live one is
 * -EADDRINUSE, any other file -EEXIST), "https://HOST:PORT" (HOST a name, an IPv4 address or
 * "[IPv6]"), "http://127.0.0.1:PORT" and "http://[::1]:PORT". Plain http:// on any other host
 * is refused (-EINVAL): bearer tokens must not cross a network in clear text (RFC 6750 §5.3).
 * Errors fill err (LISTENER_ERR_LEN) with one line naming the spec or the file. Any thread;
 * no state beyond the struct. server.c serves what these open. */
#ifndef TESSERA_DAEMON_LISTENER_H
#define TESSERA_DAEMON_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#define LISTENER_ERR_LEN     512
#define LISTENER_ADDRESS_LEN 160
#define LISTENER_BACKLOG     64
#define LISTENER_PEM_MAX     (1u << 20) /* a certificate chain or key file */

struct listener {
    int fd; /* listening; -1 when none */
    bool tls;
    bool is_unix;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev; /* the unix socket file made, so only that one is ever removed */
    ino_t ino;
    char address[LISTENER_ADDRESS_LEN]; /* as bound: "https://127.0.0.1:8443" for port 0 too */
};

/* Opens spec into *l. 0, or -errno with err. */
int listener_open(const char *spec, mode_t unix_mode, struct listener *l, char *err);

/* Removes l's unix socket file if it is still the one made (another daemon's is left). */
void listener_remove(const struct listener *l);

/* Reads the PEM certificate (chain) file cert and the PEM private key file key (unencrypted)
 * and checks that each parses and that the key belongs to the certificate. 0 with *cert_pem
 * and *key_pem (malloc'd text; wipe the key before freeing it), or -errno with err naming
 * the file: unreadable, not PEM, or a key that does not match the certificate. */
int listener_tls_load(const char *cert, const char *key, char **cert_pem, char **key_pem,
                      char *err);

#endif
