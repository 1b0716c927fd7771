/* The client's transport to tesserad: HTTP/1.1 over a unix socket or HTTPS, with libcurl
 * (CURLOPT_UNIX_SOCKET_PATH for the socket; its TLS stack verifies the daemon's certificate).
 * libcurl rather than the hand-written control_client: HTTPS with certificate and host name
 * checks, streamed uploads and proxies are what a network client needs and what libcurl does
 * well.
 *
 * Every request carries "Authorization: Bearer TOKEN". Replies are outside input: bodies are
 * capped at CLIENT_HTTP_BODY_MAX. One struct client_http per thread; call
 * client_http_global_init() once before the first client_http_open().
 *
 * libcurl is loaded with dlopen() there, not linked: `tessera` is also the VMM that the
 * daemon starts for every VM, and libcurl with the libraries it needs (Kerberos, LDAP, SSH,
 * HTTP/2, ...) made up half of the shared libraries loaded at every start, about 7 ms of a
 * VM's start-up on a 2-core host, for nothing a VM uses. */
#ifndef TESSERA_CLI_CLIENT_HTTP_H
#define TESSERA_CLI_CLIENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CLIENT_HTTP_ERR_LEN  512
#define CLIENT_HTTP_BODY_MAX (16u << 20)
#define CLIENT_HTTP_URL_MAX  512

struct client_http;

struct client_http_reply {
    unsigned status; /* the HTTP status */
    char *body;      /* malloc'd, NUL-terminated, len bytes before the NUL; "" for none */
    size_t len;
};

/* Loads libcurl and runs its global set-up: once per process, before any other call, while
 * no other thread runs. Returns 0, or -ENOENT with err (CLIENT_HTTP_ERR_LEN) naming what is
 * missing. */
int client_http_global_init(char *err);
/* Undoes client_http_global_init() once every connection is closed. */
void client_http_global_cleanup(void);

/* What --host names: a unix socket ("unix:PATH", or a PATH that starts with '/' or '.') or
 * "https://HOST:PORT". Gives the socket's path ("" for https) and the URL requests go to
 * ("http://localhost" for a socket). Plain http:// is refused: the token would cross the
 * network in clear. Returns 0, or -EINVAL with err (CLIENT_HTTP_ERR_LEN). */
int client_http_parse_host(const char *host, char *sock_path, size_t sock_len, char *base_url,
                           size_t url_len, char *err);

/* Prepares a connection to host with token (printable ASCII, no spaces). ca_cert (or NULL: the
 * system's CAs) is what an https daemon's certificate must chain to; insecure skips that check.
 * Returns 0 and *out, or -EINVAL (bad host or token) / -ENOMEM with err. Connects lazily. */
int client_http_open(const char *host, const char *token, const char *ca_cert, bool insecure,
                     struct client_http **out, char *err);

void client_http_close(struct client_http *h);

/* One request: method, path (from "/api/v1", with its query), a JSON body or NULL; or with
 * upload, PUT that file's bytes as the body, streamed, with its progress on stderr when stderr
 * is a terminal. Returns 0 and *out for any HTTP status (free with client_http_reply_free()), or
 * -errno with err when there was no answer: -ECONNREFUSED (nobody listens), -EACCES, -ENOENT,
 * -EPROTO (TLS or HTTP failure, certificate refused), -EMSGSIZE (answer too large). */
int client_http_call(struct client_http *h, const char *method, const char *path, const char *body,
                     const char *upload, struct client_http_reply *out, char *err);

void client_http_reply_free(struct client_http_reply *r);

/* For the console's websocket: connects (TLS included) without sending a request, and gives
 * the socket to poll and the Host header to use. 0, or -errno with err as client_http_call(). */
int client_http_connect(struct client_http *h, int *fd, const char **host_header, char *err);

/* Raw bytes over the connection made by client_http_connect(): the count moved, 0 (recv: the
 * peer closed), -EAGAIN (nothing can move now: poll the socket) or -EIO. */
ssize_t client_http_send(void *h, const void *buf, size_t n);
ssize_t client_http_recv(void *h, void *buf, size_t n);

#endif
