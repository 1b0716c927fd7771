/* A byte pipe under the state stream: read, write and close over a plain file descriptor (a
 * file or a TCP socket) or a mutually authenticated TLS session (GnuTLS) on a socket.
 *
 * TLS is mutual: each end presents its certificate (tls.cert, its key tls.key) and accepts the
 * peer only if the peer's chain ends at a certificate in tls.ca; the client also requires the
 * server's certificate to name the host it dialled (a DNS or IP subject alternative name).
 * Anything else fails the handshake, before either side hands a byte of payload to the other.
 * GnuTLS, because libmicrohttpd (the control API's HTTP server) is built on it: one TLS
 * library in the process.
 *
 * Kinds: transport.c (plain) and transport_tls.c, each a const ops table
 * (transport_int.h).
 *
 * Threads: a transport belongs to the thread that reads and writes it, except
 * transport_shutdown() and transport_bytes_written(), which any thread may call (it is how a stuck
 * migration is cancelled). Timeouts: reads and writes on a socket honour its SO_RCVTIMEO and
 * SO_SNDTIMEO; a call that moved no byte within them fails with -ETIMEDOUT. */
#ifndef TESSERA_VMM_TRANSPORT_H
#define TESSERA_VMM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TRANSPORT_ERR_LEN 256

/* The files of one end of a TLS connection, all PEM: its certificate (chain), its private key
 * and the CA certificate(s) a peer's chain must end at. */
struct transport_tls {
    const char *cert;
    const char *key;
    const char *ca;
};

struct transport;

/* Wraps fd (a file or a connected socket); with owns_fd, transport_close() closes it. 0 or
 * -ENOMEM. */
int transport_plain(int fd, bool owns_fd, struct transport **out);

/* Runs the TLS handshake on the connected socket fd, as the client (server_name: the host
 * dialled, checked against the peer's certificate) or as the server (server_name NULL). The
 * socket's SO_RCVTIMEO/SO_SNDTIMEO bound every step, and shutdown(2) of fd from another thread
 * ends it. On success the transport owns fd; on failure it stays the caller's (so the caller
 * decides when the number may be reused). 0 and *out, or -errno with one line in err
 * (TRANSPORT_ERR_LEN bytes) naming the file or what the peer failed: -ENOENT/-EACCES/-EINVAL for
 * the files, -EACCES for a peer whose certificate is not accepted, -ETIMEDOUT, -EPROTO otherwise.
 */
int transport_tls_client(int fd, const struct transport_tls *tls, const char *server_name,
                         struct transport **out, char *err);
int transport_tls_server(int fd, const struct transport_tls *tls, struct transport **out,
                         char *err);

/* Checks that the three files load as a certificate, its key and a CA list, so a bad option is
 * refused before any connection. 0, or -errno with err as above. */
int transport_tls_check(const struct transport_tls *tls, char *err);

/* Moves up to len bytes. Returns the count (read: 0 at the end of the stream), or -errno:
 * -ETIMEDOUT when no byte moved within the socket's timeout, -EPIPE/-ECONNRESET for a peer
 * gone or a transport shut down, -EPROTO for a TLS failure (transport_error() says which). */
ssize_t transport_read(struct transport *t, void *buf, size_t len);
ssize_t transport_write(struct transport *t, const void *buf, size_t len);

/* Bytes written through t so far (what the peer was handed). Any thread. */
uint64_t transport_bytes_written(const struct transport *t);

/* Writes all of buf, or fails as transport_write(). 0 or -errno. */
int transport_write_all(struct transport *t, const void *buf, size_t len);

/* What the last failure was, for messages ("Error in the certificate", "Connection reset by
 * peer"): ret is the -errno it returned. */
const char *transport_error(const struct transport *t, int ret);

/* Tells the peer that nothing more will be written (TLS close_notify, then a TCP half-close);
 * reading goes on. Best effort. */
void transport_end_writes(struct transport *t);

/* Any thread: makes every read and write in progress or to come fail at once (shutdown(2) of
 * the socket). The transport stays valid until transport_close(). */
void transport_shutdown(struct transport *t);

/* Frees t and closes its fd if it owns it. NULL is a no-op. */
void transport_close(struct transport *t);

bool transport_is_tls(const struct transport *t);

#endif
