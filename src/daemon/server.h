/* The daemon's HTTP front end (docs/daemon.md, "Listening", "Events", "Metrics", "Console",
 * "Uploads"): libmicrohttpd on one or more listeners in front of api_handle(), plus the routes
 * that are not request-and-answer: GET /api/v1/events (server-sent events), GET /metrics,
 * GET /api/v1/vms/{name}/console (a websocket; a browser opens it with a single-use ticket from
 * POST /api/v1/vms/{name}/console-ticket, ticket.h), PUT /api/v1/volumes/{name}/data (a
 * streamed upload of any size), and the web console's static files at / and /ui/ (webui.h,
 * docs/web.md), the only answers given without a token.
 *
 * Listeners: "unix:PATH" (mode cfg->unix_mode), "https://HOST:PORT" (TLS by GnuTLS with
 * cfg->tls_cert and cfg->tls_key, PEM files) and "http://127.0.0.1:PORT" or
 * "http://[::1]:PORT" (plain HTTP, loopback only: a bearer token must never cross a network
 * in clear text, RFC 6750 §5.3). Any other http:// is refused.
 *
 * Threads: one thread per connection (libmicrohttpd's MHD_USE_THREAD_PER_CONNECTION), at most
 * SERVER_CONN_MAX connections per listener, of which event streams and consoles (all
 * listeners together) take at most SERVER_STREAMS_MAX, so they never crowd out plain
 * requests. An event stream blocks its own thread while it
 * waits for events, and a websocket console gets a pump thread of its own, so neither holds up
 * anyone else. Because requests run in parallel threads and the store is not thread-safe,
 * every use of the store, and every hook call, happens with the DAEMON LOCK (cfg->lock) held:
 * api_handle(), api_authenticate(), metrics_render() (and so its providers), console_path(),
 * upload_begin() and upload_end(). The lock is never held while waiting for a client, a
 * console or an event. Anyone else who touches the store (the lead's VM supervisor thread)
 * takes the same lock. The event bus and the metrics registry have their own leaf locks,
 * taken with or without the daemon lock; nothing takes the daemon lock while holding one.
 *
 * Limits: SERVER_TIMEOUT_S of silence closes a connection (an event stream sends a heartbeat
 * every SERVER_HEARTBEAT_S and is closed when its client has not taken anything for four of
 * them; a console client silent for SERVER_PING_S is pinged, and dropped when silent as long
 * again), a request's line and headers fit SERVER_CONN_MEM,
 * bodies are capped at API_BODY_MAX (413, from Content-Length before the body is read, or as
 * it arrives when chunked) except an upload's, capped at cfg->upload_max. */
#ifndef TESSERA_DAEMON_SERVER_H
#define TESSERA_DAEMON_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/metrics.h"
#include "daemon/store.h"

#define SERVER_ERR_LEN     512
#define SERVER_CONN_MAX    64
#define SERVER_STREAMS_MAX 32 /* event streams and consoles open at once (503 beyond) */
#define SERVER_TIMEOUT_S   10
#define SERVER_HEARTBEAT_S 15
#define SERVER_PING_S      30 /* a silent console client is pinged, then dropped */
#define SERVER_CONN_MEM    (32u << 10)
#define SERVER_LISTEN_MAX  8
#define SERVER_UPLOAD_MAX  (1ull << 40) /* default per-upload cap: 1 TiB */
#define SERVER_ADDRESS_LEN 160
#define SERVER_PATH_LEN    4096 /* console_path()'s and upload_begin()'s path buffers */

/* What the server asks the rest of the daemon. Each is called with the daemon lock held, from
 * the thread of the request. `caller` is who the token speaks for, its tenant the one the
 * request acts in: the caller's own, or, for a platform-admin, the tenant named by ?tenant=
 * ("" without one). A NULL member makes its route answer 501. */
struct server_hooks {
    void *arg;
    /* The unix socket of VM vm's console (docs/console.md: raw bytes both ways) into path
     * (len bytes). 0; -ENOENT no such VM for this caller (404); -EPERM the caller's role may
     * not attach (403); -ENOTCONN the VM is not running (409); other -errno (500). */
    int (*console_path)(void *arg, const struct api_caller *caller, const char *vm, char *path,
                        size_t len);
    /* An upload to volume begins: tmp_path (len bytes) is where the server may create the file
     * (O_EXCL, mode 0600; an existing one is a 409: an upload already in progress). Errors as
     * console_path(), plus -EBUSY (409). */
    int (*upload_begin)(void *arg, const struct api_caller *caller, const char *volume,
                        char *tmp_path, size_t len);
    /* The upload ended. ok: the whole body is in tmp_path (fsync'd); upload_end owns the file
     * now (moves it into place or removes it) and sets r: the route's answer (202 with an
     * operation, or an error). !ok: the client went away, the body was too large or the disk
     * full; the server has removed tmp_path already and answers itself (r is discarded). */
    void (*upload_end)(void *arg, const struct api_caller *caller, const char *volume,
                       const char *tmp_path, bool ok, struct api_response *r);
};

struct server_config {
    const char *const *listen; /* nlisten specs, as above */
    size_t nlisten;            /* 1..SERVER_LISTEN_MAX */
    mode_t unix_mode;          /* unix sockets' mode, e.g. 0660 */
    const char *tls_cert;      /* PEM certificate chain file, for https:// */
    const char *tls_key;       /* PEM private key file, for https:// */
    struct daemon *daemon;     /* what api_handle() serves */
    struct store *store;
    pthread_mutex_t *lock;     /* the daemon lock, above */
    struct events_bus *events; /* GET /api/v1/events streams it */
    struct metrics *metrics;   /* GET /metrics renders it; every answer is counted in it */
    const struct server_hooks *hooks;
    uint64_t upload_max; /* bytes per upload; 0: SERVER_UPLOAD_MAX */
    unsigned ping_s;     /* a console client's silence before a ping; 0: SERVER_PING_S */
    /* The web console's built files (webui.h), served at / and /ui/ without a token; NULL or
     * a folder that is absent: / answers 503, the console was not built. */
    const char *web_dir;
};

struct server;

/* Starts listening on every cfg->listen and serving. cfg's pointers must outlive the server.
 * A stale unix socket (nobody listening) is replaced; a live one is -EADDRINUSE and a file
 * that is not a socket -EEXIST. A refused spec (plain http:// beyond loopback, a malformed
 * one), an unreadable or invalid certificate or key, or a key that does not match the
 * certificate is -EINVAL. Returns 0 and *out, or -errno with err (SERVER_ERR_LEN) naming the
 * spec or the file. Nothing is left listening on failure. */
int server_start(const struct server_config *cfg, struct server **out, char *err);

/* Listener i's address as bound, e.g. "https://127.0.0.1:8443" (port 0 in the spec is the
 * port the kernel chose) or "unix:/var/lib/tesserad/tesserad.sock"; NULL past the last. */
const char *server_address(const struct server *srv, size_t i);

/* Ends event streams and consoles, closes every connection, waits for every thread, removes
 * the unix sockets and frees srv. NULL is a no-op. */
void server_stop(struct server *srv);

#endif
