/* The daemon's HTTP front end: libmicrohttpd on a unix socket in front of api_handle().
 *
 * Threads: libmicrohttpd runs one internal thread that serves every connection and calls
 * api_handle(), so the store is only ever used from that thread while the server runs.
 * Limits: SERVER_CONN_MAX connections at once, SERVER_TIMEOUT_S of silence closes one, a
 * request's line and headers fit SERVER_CONN_MEM, bodies are capped at API_BODY_MAX (413,
 * decided from Content-Length before the body is read, or as it arrives when chunked). */
#ifndef TESSERA_DAEMON_SERVER_H
#define TESSERA_DAEMON_SERVER_H

#include <sys/types.h>

#include "daemon/daemon.h"

#define SERVER_ERR_LEN   512
#define SERVER_CONN_MAX  64
#define SERVER_TIMEOUT_S 10
#define SERVER_CONN_MEM  (32u << 10)

struct server;

/* Listens on the unix socket sock_path (created with `mode`, e.g. 0660) and serves the API
 * from the store, which must outlive the server and not be used by anyone else meanwhile. A
 * stale socket at sock_path (nobody listening) is replaced; a live one is -EADDRINUSE and a
 * file that is not a socket -EEXIST. Returns 0 and *out, or -errno with err (SERVER_ERR_LEN)
 * naming sock_path. */
int server_start(const char *sock_path, mode_t mode, struct daemon *d, struct server **out,
                 char *err);

/* Closes every connection, waits for the server's thread, removes the socket and frees srv.
 * NULL is a no-op. */
void server_stop(struct server *srv);

#endif
