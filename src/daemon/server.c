/* The daemon's HTTP front end (server.h). */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "daemon/listener.h"
#include "daemon/ticket.h"
#include "daemon/webui.h"
#include "daemon/websocket.h"

_Static_assert(SERVER_ERR_LEN == LISTENER_ERR_LEN, "one err buffer for both");
_Static_assert(SERVER_ADDRESS_LEN == LISTENER_ADDRESS_LEN, "server_address() gives the listener's");

#define SSE_BUF_LEN   (EVENTS_DATA_MAX + 256)
#define CONSOLE_CHUNK (16u << 10) /* console bytes per websocket frame */

/* One listener and the libmicrohttpd daemon serving it. */
struct http {
    struct listener l;
    struct MHD_Daemon *mhd;
};

struct server {
    struct server_config cfg;
    struct http l[SERVER_LISTEN_MAX];
    size_t nl;
    char *tls_cert, *tls_key; /* PEM text, for MHD */
    int stop_pipe[2];         /* readable once stopping: consoles poll it */
    atomic_bool stopping;     /* event streams check it (events_next's cancel) */
    pthread_mutex_t pumps_lock;
    pthread_cond_t pumps_done;
    unsigned npumps;      /* console pump threads running */
    atomic_uint nstreams; /* event streams and consoles open, all listeners together */
    int web_fd;           /* the web console's folder (cfg.web_dir); -1: not built */
    struct ticket_table tickets;
};

enum route_kind {
    KIND_API,
    KIND_EVENTS,
    KIND_METRICS,
    KIND_CONSOLE,
    KIND_UPLOAD,
    KIND_TICKET,
    KIND_WEB
};

struct upload {
    int fd;
    char path[SERVER_PATH_LEN];
    uint64_t bytes;
    unsigned fail_status; /* non-zero: the upload failed with this */
    char fail_msg[160];
    bool begun; /* upload_begin() said yes: upload_end() is owed */
    bool ended;
};

/* One request as it arrives. */
struct server_req {
    enum route_kind kind;
    const char *route; /* the template counted in the metrics */
    char method[16];
    struct api_caller caller;
    char name[STORE_NAME_LEN]; /* the VM or volume in the path */
    char *body;
    size_t len, cap;
    bool too_big;
    bool answered;
    /* An upload refused before its (small) body came: the answer waits for the body's end,
     * since a client that is still sending would see the connection closed under it. */
    bool defer;
    bool has_pending;
    struct api_response pending;
    struct upload up;
    struct console_pump *pump; /* made for a console until its upgrade takes it */
};

/* ---- Answers ---- */

/* The URL as the client sent it: names are checked on their raw bytes, so "%2e%2e" is a
 * refused name rather than "..". */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

static void reply_error(struct api_response *r, unsigned status, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* The error shape of api.h. Messages hold only validated names and constants: valid UTF-8. */
static void reply_error(struct api_response *r, unsigned status, const char *field, const char *fmt,
                        ...)
{
    char msg[STORE_TEXT_LEN];
    json_t *obj;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_response_free(r);
    r->status = status;
    obj = json_pack("{s:{s:i,s:s,s:s?}}", "error", "code", (int)status, "message", msg, "field",
                    field);
    r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    r->len = r->body ? strlen(r->body) : 0;
}

static enum MHD_Result send_response(struct server *srv, struct server_req *req,
                                     struct MHD_Connection *conn, struct api_response *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    req->answered = true;
    if (req->defer) {
        req->defer = false;
        req->has_pending = true;
        req->pending = *r;
        return MHD_YES;
    }
    metrics_count_request(srv->cfg.metrics, req->method, req->route, r->status);
    resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                           MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        api_response_free(r);
        return MHD_NO;
    }
    if (r->body)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (r->status == 405 && r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"tesserad\"");
    if (r->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->status == 426)
        MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
    ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    api_response_free(r);
    return ret;
}

static enum MHD_Result send_error(struct server *srv, struct server_req *req,
                                  struct MHD_Connection *conn, unsigned status, const char *field,
                                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static enum MHD_Result send_error(struct server *srv, struct server_req *req,
                                  struct MHD_Connection *conn, unsigned status, const char *field,
                                  const char *fmt, ...)
{
    struct api_response r = {0};
    char msg[STORE_TEXT_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(&r, status, field, "%s", msg);
    if (!r.body)
        return MHD_NO;
    return send_response(srv, req, conn, &r);
}

/* ---- Routes ---- */

/* Route templates for the request counters: every route of the REST contract. A path that
 * matches none is counted as "other", so clients cannot mint series with made-up paths. */

/* Does url match the template (each "{x}" one non-empty segment)? The first "{x}"'s segment
 * goes to name (STORE_NAME_LEN) when it fits, "" otherwise. */
static bool route_match(const char *tmpl, const char *url, char *name)
{
    const char *t = tmpl, *u = url;
    bool first = true;

    if (name)
        name[0] = '\0';
    while (*t) {
        if (*t == '{') {
            size_t n = strcspn(u, "/");

            if (!n)
                return false;
            if (name && first && n < STORE_NAME_LEN) {
                memcpy(name, u, n);
                name[n] = '\0';
            }
            first = false;
            u += n;
            t = strchr(t, '}') + 1;
            continue;
        }
        if (*t++ != *u++)
            return false;
    }
    return *u == '\0';
}

static const char *route_template(const char *url)
{
    /* The core's route table is the one list of routes (api.h); /metrics is ours. */
    if (!strcmp(url, "/metrics"))
        return "/metrics";
    return api_route_template(url);
}

/* Authenticates the request for the routes api_handle() does not serve; on failure the answer
 * is queued (401 as api_handle() words it, or 500) and *ret holds MHD's result. */
static bool authenticate(struct server *srv, struct server_req *req, struct MHD_Connection *conn,
                         enum MHD_Result *ret)
{
    const char *auth =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    int err;

    pthread_mutex_lock(srv->cfg.lock);
    err = api_authenticate(srv->cfg.store, auth, &req->caller);
    pthread_mutex_unlock(srv->cfg.lock);
    if (!err)
        return true;
    if (err != -EACCES)
        *ret = send_error(srv, req, conn, 500, NULL, "authentication: the store failed");
    else if (!auth)
        *ret = send_error(srv, req, conn, 401, NULL,
                          "missing 'Authorization: Bearer TOKEN' header (the platform "
                          "administrator's token is in STATE_DIR/admin.token)");
    else
        *ret = send_error(srv, req, conn, 401, NULL,
                          "the token is not valid (unknown, malformed or revoked)");
    return false;
}

/* The tenant a request acts in (server.h, struct server_hooks): ?tenant= is a platform-admin's
 * to name; anyone else naming another tenant gets 404, as if it did not exist. Sets
 * req->caller.tenant; false with the answer queued. */
static bool resolve_tenant(struct server *srv, struct server_req *req, struct MHD_Connection *conn,
                           enum MHD_Result *ret)
{
    const char *t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant");

    if (!t)
        return true;
    if (api_check_name(t)) {
        *ret = send_error(srv, req, conn, 400, "tenant",
                          "query parameter 'tenant' is not a valid name: 1 to 63 characters of "
                          "a-z, 0-9 and '-'");
        return false;
    }
    if (!strcmp(req->caller.role, "platform-admin")) {
        snprintf(req->caller.tenant, sizeof(req->caller.tenant), "%s", t);
        return true;
    }
    if (strcmp(t, req->caller.tenant)) {
        *ret = send_error(srv, req, conn, 404, "tenant", "tenant '%s' not found", t);
        return false;
    }
    return true;
}

/* The name from the path, checked; false with the 400 queued. */
static bool check_path_name(struct server *srv, struct server_req *req, struct MHD_Connection *conn,
                            const char *field, enum MHD_Result *ret)
{
    if (!api_check_name(req->name))
        return true;
    *ret = send_error(srv, req, conn, 400, field,
                      "the %s name in the path is not a valid name: 1 to 63 characters of a-z, "
                      "0-9 and '-'",
                      field);
    return false;
}

/* A hook's -errno as the answer. */
static enum MHD_Result send_hook_error(struct server *srv, struct server_req *req,
                                       struct MHD_Connection *conn, const char *what, int err)
{
    switch (err) {
    case -ENOENT:
        return send_error(srv, req, conn, 404, NULL, "%s '%s' not found", what, req->name);
    case -EPERM:
    case -EACCES:
        return send_error(srv, req, conn, 403, NULL, "role %s may not do this to %s '%s'",
                          req->caller.role, what, req->name);
    case -ENOTCONN:
        return send_error(srv, req, conn, 409, NULL, "%s '%s' is not running", what, req->name);
    case -EBUSY:
    case -EEXIST:
        return send_error(srv, req, conn, 409, NULL, "%s '%s' is busy: %s", what, req->name,
                          strerror(-err));
    default:
        return send_error(srv, req, conn, 500, NULL, "%s '%s': %s", what, req->name,
                          strerror(-err));
    }
}

/* Takes one of the SERVER_STREAMS_MAX slots for a long-lived connection, so that event streams
 * and consoles can never take every connection the API's plain requests need. false with a
 * 503 queued when none is left. */
static bool stream_take(struct server *srv, struct server_req *req, struct MHD_Connection *conn,
                        enum MHD_Result *ret)
{
    unsigned n = atomic_load(&srv->nstreams);

    do {
        if (n >= SERVER_STREAMS_MAX) {
            *ret = send_error(srv, req, conn, 503, NULL,
                              "%d event streams and consoles are open; try again later",
                              SERVER_STREAMS_MAX);
            return false;
        }
    } while (!atomic_compare_exchange_weak(&srv->nstreams, &n, n + 1));
    return true;
}

static void stream_put(struct server *srv)
{
    atomic_fetch_sub(&srv->nstreams, 1);
}

/* ---- GET /metrics ---- */

static enum MHD_Result serve_metrics(struct server *srv, struct server_req *req,
                                     struct MHD_Connection *conn)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *text;
    size_t len;
    int err;

    if (!authenticate(srv, req, conn, &ret))
        return ret;
    pthread_mutex_lock(srv->cfg.lock);
    err = metrics_render(srv->cfg.metrics, &req->caller, &text, &len);
    pthread_mutex_unlock(srv->cfg.lock);
    if (err)
        return send_error(srv, req, conn, 500, NULL, "metrics: %s", strerror(-err));
    req->answered = true;
    metrics_count_request(srv->cfg.metrics, req->method, req->route, 200);
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- GET /api/v1/events: server-sent events (WHATWG HTML §9.2) ---- */

struct sse {
    struct server *srv; /* holds one stream slot until sse_free() */
    int fd;             /* the client's socket, to notice it hang up */
    uint64_t cursor;
    bool all; /* a platform-admin without ?tenant=: every tenant's events */
    char tenant[STORE_NAME_LEN];
    char buf[SSE_BUF_LEN];
    size_t off, len;
};

/* Has the client hung up? Only its socket can tell while this thread waits for events. */
static bool sse_hung_up(const struct sse *s)
{
    struct pollfd pf = {.fd = s->fd, .events = POLLRDHUP};

    return s->fd >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Fills s->buf with what comes next: an event, a gap notice, or a heartbeat comment after
 * SERVER_HEARTBEAT_S without one. Blocks (this connection's own thread), looking each second
 * for a client that hung up, so its slot comes back soon. -ECANCELED when stopping or when
 * the client is gone. */
static int sse_next(struct sse *s)
{
    struct events_event ev;
    uint64_t missed;
    int ret = -ETIMEDOUT, n, i;

    for (i = 0; i < SERVER_HEARTBEAT_S && ret == -ETIMEDOUT; i++) {
        if (sse_hung_up(s))
            return -ECANCELED;
        ret = events_next(s->srv->cfg.events, &s->cursor, s->all ? NULL : s->tenant, 1000,
                          &s->srv->stopping, &ev, &missed);
    }
    s->off = 0;
    if (ret == -ETIMEDOUT) {
        s->len = (size_t)snprintf(s->buf, sizeof(s->buf), ": heartbeat\n\n");
        return 0;
    }
    if (ret)
        return ret;
    n = 0;
    /* A reader that fell behind the ring learns how many events it missed; no id, so its
     * Last-Event-ID stays that of the last event it really got. */
    if (missed)
        n = snprintf(s->buf, sizeof(s->buf), "event: events.gap\ndata: {\"missed\":%llu}\n\n",
                     (unsigned long long)missed);
    n += snprintf(s->buf + n, sizeof(s->buf) - (size_t)n, "id: %llu\nevent: %s\ndata: %s\n\n",
                  (unsigned long long)ev.seq, ev.type, ev.data);
    free(ev.data);
    s->len = (size_t)n < sizeof(s->buf) ? (size_t)n : sizeof(s->buf) - 1;
    return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *s = cls;
    size_t n;

    if (s->off == s->len) {
        int ret = sse_next(s);

        if (ret == -ECANCELED)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (ret)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;

    stream_put(s->srv);
    free(s);
}

static enum MHD_Result serve_events(struct server *srv, struct server_req *req,
                                    struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info;
    const char *last, *t;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    struct sse *s;
    char *end;

    if (!authenticate(srv, req, conn, &ret))
        return ret;
    t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant");
    if (!resolve_tenant(srv, req, conn, &ret))
        return ret;
    if (!stream_take(srv, req, conn, &ret))
        return ret;
    s = calloc(1, sizeof(*s));
    if (!s) {
        stream_put(srv);
        return MHD_NO;
    }
    s->srv = srv;
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = info ? info->connect_fd : -1;
    s->all = !strcmp(req->caller.role, "platform-admin") && !t;
    snprintf(s->tenant, sizeof(s->tenant), "%s", req->caller.tenant);
    /* Resume after the last event the client saw (§9.2.4); otherwise only what comes next. */
    s->cursor = events_last_seq(srv->cfg.events);
    last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last && *last >= '0' && *last <= '9') {
        unsigned long long v;

        errno = 0;
        v = strtoull(last, &end, 10);
        if (!errno && !*end)
            s->cursor = v;
    }
    /* A first comment, so the client sees the answer's head at once. */
    s->len = (size_t)snprintf(s->buf, sizeof(s->buf), ": tesserad events\n\n");
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!resp) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* Heartbeats keep a reading client busier than this; a client that stops reading (its
     * socket full) is closed after it, so it cannot keep its stream slot. */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)(4 * SERVER_HEARTBEAT_S));
    req->answered = true;
    metrics_count_request(srv->cfg.metrics, req->method, req->route, 200);
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- GET /api/v1/vms/{name}/console: a websocket (RFC 6455) onto the console socket ---- */

struct console_pump {
    struct server *srv; /* holds one stream slot until pump_free() */
    int console;        /* the VM's console socket */
    int sock;           /* the client, from MHD (through its TLS relay for https) */
    struct MHD_UpgradeResponseHandle *urh;
    struct websocket_rx rx;
    size_t inlen;
    uint8_t in[WEBSOCKET_BUF_LEN];
    uint8_t out[WEBSOCKET_HDR_MAX + CONSOLE_CHUNK];
};

static void pump_free(struct console_pump *p)
{
    stream_put(p->srv);
    close(p->console);
    free(p);
}

static int ping_ms(const struct server *srv)
{
    return (int)(srv->cfg.ping_s ? srv->cfg.ping_s : SERVER_PING_S) * 1000;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of buf to fd, waiting while it is full: for the client at most two ping times
 * (a client that takes nothing for that long is gone), for the console as long as it takes
 * (the VMM pauses a client that types faster than the guest reads, docs/console.md). false
 * when fd fails, the wait ends or the server stops. */
static bool write_all(struct console_pump *p, int fd, const uint8_t *buf, size_t len)
{
    struct pollfd pf[2] = {{.fd = fd, .events = POLLOUT},
                           {.fd = p->srv->stop_pipe[0], .events = POLLIN}};
    int wait = fd == p->sock ? 2 * ping_ms(p->srv) : -1;
    ssize_t n;
    int ready;

    while (len) {
        n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return false;
        ready = poll(pf, 2, wait);
        if ((ready < 0 && errno != EINTR) || ready == 0 || pf[1].revents)
            return false;
    }
    return true;
}

static bool send_frame(struct console_pump *p, unsigned opcode, const uint8_t *payload, size_t len)
{
    size_t h = websocket_header(p->out, opcode, len);

    if (payload != p->out + h)
        memmove(p->out + h, payload, len);
    return write_all(p, p->sock, p->out, h + len);
}

static void send_close(struct console_pump *p, unsigned code, const char *reason)
{
    uint8_t body[2 + 64];
    size_t n = strlen(reason) < 64 ? strlen(reason) : 64;

    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    memcpy(body + 2, reason, n);
    send_frame(p, WEBSOCKET_CLOSE, body, code == 1005 ? 0 : 2 + n);
}

/* The client's frames, as many as are whole in p->in. false: the conversation is over (a close
 * was answered, or sent for an error). */
static bool pump_client_frames(struct console_pump *p)
{
    struct websocket_frame f;
    long n;
    size_t off = 0;
    bool go = true;

    while (go) {
        n = websocket_parse(&p->rx, p->in + off, p->inlen - off, &f);
        if (n < 0) {
            send_close(p, p->rx.close_code, "protocol error");
            return false;
        }
        if (n == 0)
            break;
        off += (size_t)n;
        switch (f.opcode) {
        case WEBSOCKET_CONT:
        case WEBSOCKET_TEXT:
        case WEBSOCKET_BINARY:
            /* Console input: the bytes as they are, text or binary (docs/console.md). */
            go = write_all(p, p->console, f.payload, f.len);
            break;
        case WEBSOCKET_PING: go = send_frame(p, WEBSOCKET_PONG, f.payload, f.len); break;
        case WEBSOCKET_PONG: break;
        case WEBSOCKET_CLOSE:
            /* §5.5.1: answer a close with a close, echoing its code. */
            send_close(p, f.close_code, "");
            return false;
        }
    }
    memmove(p->in, p->in + off, p->inlen - off);
    p->inlen -= off;
    return go;
}

static void *console_pump_main(void *arg)
{
    struct console_pump *p = arg;
    struct server *srv = p->srv;
    struct pollfd pf[3] = {
        {.fd = p->sock, .events = POLLIN},
        {.fd = p->console, .events = POLLIN},
        {.fd = srv->stop_pipe[0], .events = POLLIN},
    };
    uint8_t *chunk = p->out + WEBSOCKET_HDR_MAX;
    int64_t heard = now_ms(), pinged = 0, due;
    ssize_t n;

    /* What the client sent right behind its handshake comes first. */
    if (p->inlen && !pump_client_frames(p))
        goto done;
    for (;;) {
        /* A client silent for SERVER_PING_S gets a ping (§5.5.2); silent for as long again,
         * it is gone (a peer that vanished without a FIN), and so is its console slot. */
        due = (pinged ? pinged : heard) + ping_ms(srv) - now_ms();
        if (due <= 0) {
            if (pinged) {
                send_close(p, WEBSOCKET_GOING_AWAY, "no answer to a ping");
                break;
            }
            if (!send_frame(p, WEBSOCKET_PING, (const uint8_t *)"tesserad", 8))
                break;
            pinged = now_ms();
            continue;
        }
        if (poll(pf, 3, (int)due) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[2].revents) {
            send_close(p, WEBSOCKET_GOING_AWAY, "tesserad is stopping");
            break;
        }
        if (pf[0].revents) {
            n = recv(p->sock, p->in + p->inlen, sizeof(p->in) - p->inlen, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0) {
                heard = now_ms();
                pinged = 0;
                p->inlen += (size_t)n;
                if (!pump_client_frames(p))
                    break;
            }
        }
        if (pf[1].revents) {
            n = recv(p->console, chunk, CONSOLE_CHUNK, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                send_close(p, WEBSOCKET_NORMAL, "the VM's console closed");
                break;
            }
            if (n > 0 && !send_frame(p, WEBSOCKET_BINARY, chunk, (size_t)n))
                break;
        }
    }
done:
    MHD_upgrade_action(p->urh, MHD_UPGRADE_ACTION_CLOSE);
    pump_free(p);
    pthread_mutex_lock(&srv->pumps_lock);
    srv->npumps--;
    pthread_cond_broadcast(&srv->pumps_done);
    pthread_mutex_unlock(&srv->pumps_lock);
    return NULL;
}

/* The handshake went out: the connection is ours. In thread-per-connection mode MHD relays
 * TLS in this connection's thread once we return, so the pump runs in a thread of its own. */
static void console_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                             const char *extra_in, size_t extra_in_size, MHD_socket sock,
                             struct MHD_UpgradeResponseHandle *urh)
{
    struct server_req *req = con_cls;
    struct console_pump *p = req->pump;
    struct server *srv = cls;
    pthread_attr_t attr;
    pthread_t t;
    bool run;

    req->pump = NULL;
    p->sock = sock;
    p->urh = urh;
    if (extra_in_size > sizeof(p->in))
        extra_in_size = 0; /* more than a whole frame before our answer: not a websocket */
    memcpy(p->in, extra_in, extra_in_size);
    p->inlen = extra_in_size;
    pthread_mutex_lock(&srv->pumps_lock);
    run = !atomic_load(&srv->stopping);
    if (run)
        srv->npumps++;
    pthread_mutex_unlock(&srv->pumps_lock);
    if (run) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, console_pump_main, p) == 0) {
            pthread_attr_destroy(&attr);
            return;
        }
        pthread_attr_destroy(&attr);
        pthread_mutex_lock(&srv->pumps_lock);
        srv->npumps--;
        pthread_cond_broadcast(&srv->pumps_done);
        pthread_mutex_unlock(&srv->pumps_lock);
    }
    pump_free(p);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* Does the comma-separated header value hold token (case-insensitive, RFC 9110 §5.6.1)? */
static bool header_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);

    while (value && *value) {
        value += strspn(value, " \t,");
        if (!strncasecmp(value, token, n) && strchr(" \t,", value[n]))
            return true;
        value = strchr(value, ',');
    }
    return false;
}

/* Who opens the console: the token's caller, or, for a request with ?ticket= and no
 * Authorization header (a browser's websocket cannot send one), the caller the ticket was
 * issued to, in the tenant it was issued in (ticket.h). false with the answer queued. */
static bool console_caller(struct server *srv, struct server_req *req, struct MHD_Connection *conn,
                           enum MHD_Result *ret)
{
    const char *ticket = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ticket");

    if (!ticket ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))
        return authenticate(srv, req, conn, ret) && check_path_name(srv, req, conn, "vm", ret) &&
               resolve_tenant(srv, req, conn, ret);
    if (!check_path_name(srv, req, conn, "vm", ret))
        return false;
    if (ticket_redeem(&srv->tickets, ticket, req->name, ticket_now(), &req->caller)) {
        *ret = send_error(srv, req, conn, 401, "ticket",
                          "the console ticket is not valid for vm '%s' (unknown, already used, "
                          "expired or issued for another VM)",
                          req->name);
        return false;
    }
    return true;
}

static enum MHD_Result serve_console(struct server *srv, struct server_req *req,
                                     struct MHD_Connection *conn)
{
    const char *upgrade, *connection, *version, *key;
    char path[SERVER_PATH_LEN], accept[WEBSOCKET_ACCEPT_LEN];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct MHD_Response *resp;
    struct console_pump *p;
    enum MHD_Result ret;
    int err, fd;

    if (!console_caller(srv, req, conn, &ret))
        return ret;
    /* RFC 6455 §4.2.1: what makes a request a websocket handshake. */
    upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
    connection = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
    version = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
    key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
    if (!header_has_token(upgrade, "websocket") || !header_has_token(connection, "upgrade"))
        return send_error(srv, req, conn, 400, NULL,
                          "the console is a websocket: send 'Connection: Upgrade' and "
                          "'Upgrade: websocket'");
    if (!version || strcmp(version, "13"))
        return send_error(srv, req, conn, 426, NULL, "websocket version 13 is required");
    if (!key || websocket_accept_key(key, accept))
        return send_error(srv, req, conn, 400, NULL,
                          "header 'Sec-WebSocket-Key' is not 16 bytes in base64");
    if (!srv->cfg.hooks || !srv->cfg.hooks->console_path)
        return send_error(srv, req, conn, 501, NULL, "consoles are not served by this daemon");
    pthread_mutex_lock(srv->cfg.lock);
    err = srv->cfg.hooks->console_path(srv->cfg.hooks->arg, &req->caller, req->name, path,
                                       sizeof(path));
    pthread_mutex_unlock(srv->cfg.lock);
    if (err)
        return send_hook_error(srv, req, conn, "vm", err);
    if (strlen(path) >= sizeof(sa.sun_path))
        return send_error(srv, req, conn, 500, NULL, "vm '%s': console socket path too long",
                          req->name);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return send_error(srv, req, conn, 500, NULL, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        err = errno;
        close(fd);
        /* Nobody listening: the VM went away between the lookup and now. */
        if (err == ECONNREFUSED || err == ENOENT)
            return send_error(srv, req, conn, 409, NULL, "vm '%s' is not running", req->name);
        return send_error(srv, req, conn, 500, NULL, "vm '%s': console: %s", req->name,
                          strerror(err));
    }
    if (!stream_take(srv, req, conn, &ret)) {
        close(fd);
        return ret;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        stream_put(srv);
        close(fd);
        return MHD_NO;
    }
    p->srv = srv;
    p->console = fd;
    req->pump = p;
    resp = MHD_create_response_for_upgrade(console_upgraded, srv);
    if (!resp)
        return MHD_NO; /* mhd_completed() frees the pump */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    req->answered = true;
    metrics_count_request(srv->cfg.metrics, req->method, req->route, 101);
    ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- POST /api/v1/vms/{name}/console-ticket: a console ticket for a browser ---- */

static enum MHD_Result serve_ticket(struct server *srv, struct server_req *req,
                                    struct MHD_Connection *conn)
{
    char path[SERVER_PATH_LEN], text[TICKET_TEXT_LEN + 1];
    struct api_response r = {0};
    enum MHD_Result ret;
    json_t *doc;
    int err;

    if (!authenticate(srv, req, conn, &ret) || !check_path_name(srv, req, conn, "vm", &ret) ||
        !resolve_tenant(srv, req, conn, &ret))
        return ret;
    if (!srv->cfg.hooks || !srv->cfg.hooks->console_path)
        return send_error(srv, req, conn, 501, NULL, "consoles are not served by this daemon");
    /* The console's own checks (the VM exists for this caller, the role may attach), but a VM
     * that is not running yet gets its ticket: the console it opens says so. */
    pthread_mutex_lock(srv->cfg.lock);
    err = srv->cfg.hooks->console_path(srv->cfg.hooks->arg, &req->caller, req->name, path,
                                       sizeof(path));
    pthread_mutex_unlock(srv->cfg.lock);
    if (err && err != -ENOTCONN)
        return send_hook_error(srv, req, conn, "vm", err);
    err = ticket_issue(&srv->tickets, &req->caller, req->name, ticket_now(), text);
    if (err == -EAGAIN)
        return send_error(srv, req, conn, 503, NULL,
                          "%d console tickets are outstanding; try again in %d s", TICKET_MAX,
                          TICKET_TTL_S);
    if (err)
        return send_error(srv, req, conn, 500, NULL, "console ticket: %s", strerror(-err));
    doc = json_pack("{s:s,s:i}", "ticket", text, "expires_in_s", TICKET_TTL_S);
    explicit_bzero(text, sizeof(text));
    r.status = 201;
    r.body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!r.body)
        return MHD_NO;
    r.len = strlen(r.body);
    return send_response(srv, req, conn, &r);
}

/* ---- GET / and /ui/...: the web console's files (webui.h, docs/web.md) ---- */

static enum MHD_Result serve_web(struct server *srv, struct server_req *req,
                                 struct MHD_Connection *conn, const char *url)
{
    char name[WEBUI_NAME_LEN];
    struct MHD_Response *resp;
    const char *type;
    enum MHD_Result ret;
    uint64_t size;
    int err, fd;

    if (srv->web_fd < 0)
        return send_error(srv, req, conn, 503, NULL,
                          "the web console was not built: build tessera where npm can install "
                          "web/'s dependencies, or start tesserad with --web-dir (docs/web.md)");
    err = webui_resolve(url, name, &type);
    if (!err)
        err = webui_open_file(srv->web_fd, name, &fd, &size);
    if (err == -ENOENT && !strcmp(url, "/"))
        return send_error(srv, req, conn, 503, NULL,
                          "the web console was not built: its folder has no index.html "
                          "(docs/web.md)");
    if (err == -ENOENT || err == -ELOOP || err == -EINVAL)
        return send_error(srv, req, conn, 404, NULL, "no such file of the web console");
    if (err)
        return send_error(srv, req, conn, 500, NULL, "web console file %s: %s", name,
                          strerror(-err));
    req->answered = true;
    metrics_count_request(srv->cfg.metrics, req->method, req->route, 200);
    resp = MHD_create_response_from_fd((size_t)size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "Content-Security-Policy", WEBUI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    /* A rebuilt console is seen at the next load: the browser asks again each time (the files
     * are small, and served from this host). */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- PUT /api/v1/volumes/{name}/data: a streamed upload ---- */

static uint64_t upload_max(const struct server *srv)
{
    return srv->cfg.upload_max ? srv->cfg.upload_max : SERVER_UPLOAD_MAX;
}

/* The upload failed: its file goes at once (a full disk is freed now, not at the end). */
static void upload_fail(struct server_req *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void upload_fail(struct server_req *req, unsigned status, const char *fmt, ...)
{
    va_list ap;

    if (req->up.fail_status)
        return;
    req->up.fail_status = status;
    va_start(ap, fmt);
    vsnprintf(req->up.fail_msg, sizeof(req->up.fail_msg), fmt, ap);
    va_end(ap);
    if (req->up.fd >= 0) {
        close(req->up.fd);
        req->up.fd = -1;
        unlink(req->up.path);
    }
}

/* Tells upload_end() the upload failed (the server answers itself). */
static void upload_abandon(struct server *srv, struct server_req *req)
{
    struct api_response r = {0};

    if (req->up.fd >= 0) {
        close(req->up.fd);
        req->up.fd = -1;
        unlink(req->up.path);
    }
    if (req->up.begun && !req->up.ended) {
        req->up.ended = true;
        pthread_mutex_lock(srv->cfg.lock);
        srv->cfg.hooks->upload_end(srv->cfg.hooks->arg, &req->caller, req->name, req->up.path,
                                   false, &r);
        pthread_mutex_unlock(srv->cfg.lock);
        api_response_free(&r);
    }
}

static enum MHD_Result upload_start(struct server *srv, struct server_req *req,
                                    struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const struct server_hooks *h = srv->cfg.hooks;
    enum MHD_Result ret;
    int err;

    req->up.fd = -1;
    if (!authenticate(srv, req, conn, &ret) || !check_path_name(srv, req, conn, "volume", &ret) ||
        !resolve_tenant(srv, req, conn, &ret))
        return ret;
    if (!h || !h->upload_begin || !h->upload_end)
        return send_error(srv, req, conn, 501, NULL, "uploads are not served by this daemon");
    if (cl && strtoull(cl, NULL, 10) > upload_max(srv))
        return send_error(srv, req, conn, 413, NULL, "the upload is %s bytes; the limit is %llu",
                          cl, (unsigned long long)upload_max(srv));
    pthread_mutex_lock(srv->cfg.lock);
    err = h->upload_begin(h->arg, &req->caller, req->name, req->up.path, sizeof(req->up.path));
    pthread_mutex_unlock(srv->cfg.lock);
    if (err)
        return send_hook_error(srv, req, conn, "volume", err);
    req->up.begun = true;
    req->up.fd = open(req->up.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (req->up.fd < 0) {
        err = errno;
        upload_abandon(srv, req);
        if (err == EEXIST)
            return send_error(srv, req, conn, 409, NULL,
                              "an upload to volume '%s' is already in progress", req->name);
        return send_error(srv, req, conn, err == ENOSPC || err == EDQUOT ? 507 : 500, NULL,
                          "volume '%s': cannot create the upload file: %s", req->name,
                          strerror(err));
    }
    return MHD_YES;
}

static void upload_data(struct server *srv, struct server_req *req, const char *data, size_t n)
{
    ssize_t w;

    if (req->up.fail_status)
        return;
    if (n > upload_max(srv) - req->up.bytes) {
        upload_fail(req, 413, "the upload is larger than the limit of %llu bytes",
                    (unsigned long long)upload_max(srv));
        return;
    }
    while (n) {
        w = write(req->up.fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;

            upload_fail(req, err == ENOSPC || err == EDQUOT ? 507 : 500,
                        "volume '%s': writing the upload failed: %s", req->name, strerror(err));
            return;
        }
        data += w;
        n -= (size_t)w;
        req->up.bytes += (uint64_t)w;
    }
}

static enum MHD_Result upload_finish(struct server *srv, struct server_req *req,
                                     struct MHD_Connection *conn)
{
    struct api_response r = {0};
    char data[160];
    int err = 0;

    if (!req->up.fail_status && (fsync(req->up.fd) || close(req->up.fd))) {
        err = errno;
        req->up.fd = -1;
        unlink(req->up.path);
        upload_fail(req, err == ENOSPC || err == EDQUOT ? 507 : 500,
                    "volume '%s': writing the upload failed: %s", req->name, strerror(err));
    }
    req->up.fd = -1;
    if (req->up.fail_status) {
        upload_abandon(srv, req);
        return send_error(srv, req, conn, req->up.fail_status, NULL, "%s", req->up.fail_msg);
    }
    req->up.ended = true;
    pthread_mutex_lock(srv->cfg.lock);
    srv->cfg.hooks->upload_end(srv->cfg.hooks->arg, &req->caller, req->name, req->up.path, true,
                               &r);
    pthread_mutex_unlock(srv->cfg.lock);
    if (r.status >= 200 && r.status < 300) {
        snprintf(data, sizeof(data), "{\"name\":\"%s\",\"size_bytes\":%llu}", req->name,
                 (unsigned long long)req->up.bytes);
        events_publish(srv->cfg.events, req->caller.tenant, "volume.upload", data);
    }
    if (!r.status)
        reply_error(&r, 500, NULL, "volume '%s': the upload was not answered", req->name);
    return send_response(srv, req, conn, &r);
}

/* ---- The request core ---- */

/* A 413 without calling the API core (which would say the same, but only after a whole
 * oversized body had been read). */
static enum MHD_Result too_big(struct server *srv, struct server_req *req,
                               struct MHD_Connection *conn)
{
    _Static_assert(API_BODY_MAX == 65536, "the message states the limit");
    return send_error(srv, req, conn, 413, NULL,
                      "request body is larger than the limit of 65536 bytes");
}

static enum MHD_Result first_call(struct server *srv, struct server_req *req,
                                  struct MHD_Connection *conn, const char *url, const char *method)
{
    enum MHD_Result ret;
    const char *cl;

    snprintf(req->method, sizeof(req->method), "%s", method);
    req->route = route_template(url);
    if (!strcmp(method, "GET") && !strcmp(url, "/metrics")) {
        req->kind = KIND_METRICS;
        return serve_metrics(srv, req, conn);
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/api/v1/events")) {
        req->kind = KIND_EVENTS;
        return serve_events(srv, req, conn);
    }
    if (!strcmp(method, "GET") && route_match("/api/v1/vms/{name}/console", url, req->name)) {
        req->kind = KIND_CONSOLE;
        return serve_console(srv, req, conn);
    }
    if (!strcmp(method, "POST") &&
        route_match("/api/v1/vms/{name}/console-ticket", url, req->name)) {
        req->kind = KIND_TICKET;
        return serve_ticket(srv, req, conn);
    }
    if ((!strcmp(method, "GET") || !strcmp(method, "HEAD")) && webui_owns(url)) {
        req->kind = KIND_WEB;
        req->route = "/ui";
        return serve_web(srv, req, conn, url);
    }
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!strcmp(method, "PUT") && route_match("/api/v1/volumes/{name}/data", url, req->name)) {
        req->kind = KIND_UPLOAD;
        req->defer = !cl || strtoull(cl, NULL, 10) <= API_BODY_MAX;
        ret = upload_start(srv, req, conn);
        req->defer = false;
        return ret;
    }
    req->kind = KIND_API;
    if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
        return too_big(srv, req, conn);
    return MHD_YES;
}

static enum MHD_Result api_body(struct server_req *req, const char *data, size_t n)
{
    if (req->too_big || n > API_BODY_MAX - req->len) {
        req->too_big = true;
        return MHD_YES;
    }
    if (req->len + n > req->cap) {
        size_t cap = req->cap ? req->cap : 1024;
        char *p;

        while (cap < req->len + n)
            cap *= 2;
        p = realloc(req->body, cap);
        if (!p)
            return MHD_NO;
        req->body = p;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
    return MHD_YES;
}

static enum MHD_Result mhd_request(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls)
{
    struct server *srv = cls;
    struct server_req *req = *con_cls;
    struct api_response r = {0};

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->up.fd = -1;
        *con_cls = req;
        return first_call(srv, req, conn, url, method);
    }
    if (req->has_pending) {
        if (*upload_size) {
            *upload_size = 0;
            return MHD_YES;
        }
        req->has_pending = false;
        return send_response(srv, req, conn, &req->pending);
    }
    if (req->answered) {
        *upload_size = 0; /* a body behind an early answer is dropped */
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;

        *upload_size = 0;
        if (req->kind == KIND_UPLOAD) {
            upload_data(srv, req, upload, n);
            return MHD_YES;
        }
        return api_body(req, upload, n);
    }
    if (req->kind == KIND_UPLOAD)
        return upload_finish(srv, req, conn);
    if (req->too_big)
        return too_big(srv, req, conn);
    {
        struct api_request rq = {
            .method = method,
            .path = url,
            .tenant = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant"),
            .timeout = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout"),
            .since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since"),
            .authorization =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            .body = req->body,
            .len = req->len,
        };

        pthread_mutex_lock(srv->cfg.lock);
        api_handle(srv->cfg.daemon, &rq, &r);
        pthread_mutex_unlock(srv->cfg.lock);
    }
    return send_response(srv, req, conn, &r);
}

static void mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct server *srv = cls;
    struct server_req *req = *con_cls;

    if (!req)
        return;
    /* A client that went away mid-upload: its file goes, upload_end() hears of it. */
    if (req->kind == KIND_UPLOAD)
        upload_abandon(srv, req);
    if (req->pump)
        pump_free(req->pump);
    api_response_free(&req->pending);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fputs("tesserad: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- Listeners ---- */

/* Opens the listener for spec and starts its libmicrohttpd daemon. */
static int http_start(struct server *srv, struct http *h, const char *spec, char *err)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    int ret;

    ret = listener_open(spec, srv->cfg.unix_mode, &h->l, err);
    if (ret)
        return ret;
    if (h->l.tls && !srv->tls_cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, SERVER_ERR_LEN, "--listen %s: this libmicrohttpd has no TLS", spec);
            return -ENOTSUP;
        }
        ret = listener_tls_load(srv->cfg.tls_cert, srv->cfg.tls_key, &srv->tls_cert, &srv->tls_key,
                                err);
        if (ret)
            return ret;
    }
    if (h->l.tls)
        flags |= MHD_USE_TLS;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, mhd_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, h->l.fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVER_CONN_MAX,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEM, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)SERVER_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, mhd_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, mhd_unescape_none, srv,
        h->l.tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, srv->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, srv->tls_key, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, SERVER_ERR_LEN, "--listen %s: cannot start the HTTP server", spec);
        return -EIO;
    }
    return 0;
}

static void http_stop(struct http *h)
{
    if (h->mhd) {
        /* Quiescing hands the listening socket back (MHD_USE_ITC lets the thread be woken for
         * it); without it MHD_stop_daemon() closes the socket itself. */
        if (MHD_quiesce_daemon(h->mhd) == h->l.fd)
            close(h->l.fd);
        MHD_stop_daemon(h->mhd);
    } else if (h->l.fd >= 0) {
        close(h->l.fd);
    }
    listener_remove(&h->l);
}

static void server_free(struct server *srv)
{
    if (srv->tls_key)
        explicit_bzero(srv->tls_key, strlen(srv->tls_key));
    free(srv->tls_key);
    free(srv->tls_cert);
    close(srv->stop_pipe[0]);
    close(srv->stop_pipe[1]);
    if (srv->web_fd >= 0)
        close(srv->web_fd);
    ticket_table_destroy(&srv->tickets);
    pthread_cond_destroy(&srv->pumps_done);
    pthread_mutex_destroy(&srv->pumps_lock);
    free(srv);
}

/* Ends what runs on its own (event streams, console pumps) so the daemons can stop. */
static void server_quiet(struct server *srv)
{
    pthread_mutex_lock(&srv->pumps_lock);
    atomic_store(&srv->stopping, true);
    pthread_mutex_unlock(&srv->pumps_lock);
    events_wake(srv->cfg.events);
    if (write(srv->stop_pipe[1], "x", 1) < 0)
        perror("tesserad: server stop");
    pthread_mutex_lock(&srv->pumps_lock);
    while (srv->npumps)
        pthread_cond_wait(&srv->pumps_done, &srv->pumps_lock);
    pthread_mutex_unlock(&srv->pumps_lock);
}

int server_start(const struct server_config *cfg, struct server **out, char *err)
{
    struct server *srv;
    size_t i;
    int ret;

    *out = NULL;
    if (!cfg->nlisten || cfg->nlisten > SERVER_LISTEN_MAX) {
        snprintf(err, SERVER_ERR_LEN, "--listen: 1 to %d listeners", SERVER_LISTEN_MAX);
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, SERVER_ERR_LEN, "server: out of memory");
        return -ENOMEM;
    }
    srv->cfg = *cfg;
    ticket_table_init(&srv->tickets);
    /* A folder that is absent is a console that was not built: "/" says so (503). */
    srv->web_fd = cfg->web_dir ? open(cfg->web_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    pthread_mutex_init(&srv->pumps_lock, NULL);
    pthread_cond_init(&srv->pumps_done, NULL);
    if (pipe2(srv->stop_pipe, O_CLOEXEC)) {
        ret = -errno;
        snprintf(err, SERVER_ERR_LEN, "server: pipe: %s", strerror(errno));
        srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
        server_free(srv);
        return ret;
    }
    for (i = 0; i < cfg->nlisten; i++) {
        ret = http_start(srv, &srv->l[i], cfg->listen[i], err);
        srv->nl = i + 1;
        if (ret)
            goto stop;
    }
    *out = srv;
    return 0;
stop:
    server_quiet(srv);
    for (i = 0; i < srv->nl; i++)
        http_stop(&srv->l[i]);
    server_free(srv);
    return ret;
}

const char *server_address(const struct server *srv, size_t i)
{
    return i < srv->nl ? srv->l[i].l.address : NULL;
}

void server_stop(struct server *srv)
{
    size_t i;

    if (!srv)
        return;
    server_quiet(srv);
    for (i = 0; i < srv->nl; i++)
        http_stop(&srv->l[i]);
    server_free(srv);
}
