/* The daemon's HTTP front end (server.h). */
#include "daemon/server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "daemon/api.h"

struct server {
    struct MHD_Daemon *mhd;
    struct daemon *d;
    int listen_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev; /* the socket file we made, so stop removes only that one */
    ino_t ino;
};

/* One request's body as it arrives. */
struct server_req {
    char *body;
    size_t len, cap;
    bool too_big;
};

/* The URL as the client sent it: names are checked on their raw bytes, so "%2e%2e" is a
 * refused name rather than "..". */
static size_t mhd_unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct api_response *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

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
    if (r->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"tesserad\"");
    ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    api_response_free(r);
    return ret;
}

/* A 413 without calling the API core (which would say the same, but only after a whole
 * oversized body had been read). */
static enum MHD_Result too_big(struct MHD_Connection *conn)
{
    static const char body[] = "{\"error\":{\"code\":413,\"message\":\"request body is larger "
                               "than the limit of 65536 bytes\",\"field\":null}}";
    struct api_response r = {.status = 413, .body = strdup(body), .len = sizeof(body) - 1};

    if (!r.body)
        return MHD_NO;
    return send_response(conn, &r);
}

static enum MHD_Result mhd_request(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct server *srv = cls;
    struct server_req *req = *con_cls;
    struct api_response r = {0};
    const char *cl;

    _Static_assert(API_BODY_MAX == 65536, "too_big()'s message states the limit");
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
            return too_big(conn);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
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
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        return MHD_YES;
    }
    if (req->too_big)
        return too_big(conn);
    {
        struct api_request rq = {
            .method = method,
            .path = url,
            .tenant = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "tenant"),
            .timeout = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout"),
            .authorization =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            .body = req->body,
            .len = req->len,
        };

        pthread_mutex_lock(&srv->d->lock);
        api_handle(srv->d, &rq, &r);
        pthread_mutex_unlock(&srv->d->lock);
    }
    return send_response(conn, &r);
}

static void mhd_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct server_req *req = *con_cls;

    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fputs("tesserad: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* Creates the listening socket at path: 0 and srv->listen_fd, or -errno with err. */
static int socket_listen(struct server *srv, const char *path, mode_t mode, char *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, probe, ret;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, SERVER_ERR_LEN, "%s: socket path longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, SERVER_ERR_LEN, "%s: exists and is not a socket; not replacing it", path);
            return -EEXIST;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, SERVER_ERR_LEN, "%s: another tesserad is listening there", path);
            return -EADDRINUSE;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, SERVER_ERR_LEN, "%s: socket: %s", path, strerror(errno));
        return ret;
    }
    /* Nobody can connect before listen(), so the mode is right before anyone can. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) || stat(path, &st) ||
        listen(fd, SERVER_CONN_MAX)) {
        ret = -errno;
        snprintf(err, SERVER_ERR_LEN, "%s: cannot listen: %s", path, strerror(errno));
        close(fd);
        return ret;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    srv->listen_fd = fd;
    return 0;
}

static void socket_remove(struct server *srv)
{
    struct stat st;

    if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
        unlink(srv->path);
}

int server_start(const char *sock_path, mode_t mode, struct daemon *d, struct server **out,
                 char *err)
{
    struct server *srv;
    int ret;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, SERVER_ERR_LEN, "%s: out of memory", sock_path);
        return -ENOMEM;
    }
    srv->d = d;
    ret = socket_listen(srv, sock_path, mode, err);
    if (ret)
        goto free_srv;
    snprintf(srv->path, sizeof(srv->path), "%s", sock_path);
    srv->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, mhd_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_LISTEN_SOCKET,
        srv->listen_fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVER_CONN_MAX,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEM, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)SERVER_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, mhd_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, mhd_unescape_none, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, SERVER_ERR_LEN, "%s: cannot start the HTTP server", sock_path);
        ret = -EIO;
        goto close_listen;
    }
    *out = srv;
    return 0;
close_listen:
    socket_remove(srv);
    close(srv->listen_fd);
free_srv:
    free(srv);
    return ret;
}

void server_stop(struct server *srv)
{
    if (!srv)
        return;
    /* Quiescing hands the listening socket back (MHD_USE_ITC lets the thread be woken for it);
     * without it MHD_stop_daemon() closes the socket itself. */
    if (MHD_quiesce_daemon(srv->mhd) == srv->listen_fd)
        close(srv->listen_fd);
    MHD_stop_daemon(srv->mhd);
    socket_remove(srv);
    free(srv);
}
