/* The socket backend: frames over a socket to another VMM (or anything that speaks QEMU's
 * -netdev socket framing). Modes, as in net.h:
 *   fd=N                 an already connected socket: SOCK_DGRAM (one frame per datagram) or
 *                        SOCK_STREAM (4-byte big-endian length before each frame)
 *   connect=HOST:PORT    TCP client (stream). Connects at open, up to 10 s; when the peer goes
 *                        away the link stays down.
 *   listen=HOST:PORT     TCP server (stream): one peer at a time, further ones are refused;
 *                        after the peer leaves the next connection is accepted.
 *   udp=HOST:PORT,localaddr=HOST:PORT
 *                        UDP between two fixed endpoints (datagrams)
 * The data path is fdnet's (fdnet.h). The listening socket's watch runs on the loop thread
 * and attaches accepted peers there. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "net/fdnet.h"
#include "net/net_priv.h"
#include "net/netspec.h"

#define SOCKET_CONNECT_TIMEOUT_MS 10000

enum socket_mode { SOCKET_NONE, SOCKET_FD, SOCKET_CONNECT, SOCKET_LISTEN, SOCKET_UDP };

enum socket_key { KEY_FD, KEY_CONNECT, KEY_LISTEN, KEY_UDP, KEY_LOCALADDR, KEY_COUNT };

static const char *const socket_key_names[KEY_COUNT] = {
    [KEY_FD] = "fd",   [KEY_CONNECT] = "connect",     [KEY_LISTEN] = "listen",
    [KEY_UDP] = "udp", [KEY_LOCALADDR] = "localaddr",
};

struct socket_cfg {
    enum socket_mode mode;
    enum socket_key mode_key;
    unsigned seen; /* bit per enum socket_key */
    int fd;
    char host[NETSPEC_HOST_MAX];
    uint16_t port;
    char lhost[NETSPEC_HOST_MAX];
    uint16_t lport;
};

struct socket_backend {
    struct net_backend *nb;
    struct fdnet *io;
    enum socket_mode mode;
    int listen_fd;
    struct loop_fd *listen_h;
    char what[NETSPEC_HOST_MAX + 32]; /* "socket listen=HOST:PORT", for log lines */
};

/* ---- parsing ---- */

static int socket_parse_key(void *opaque, const char *key, const char *value, char *err)
{
    static const enum socket_mode key_mode[KEY_COUNT] = {
        [KEY_FD] = SOCKET_FD,   [KEY_CONNECT] = SOCKET_CONNECT, [KEY_LISTEN] = SOCKET_LISTEN,
        [KEY_UDP] = SOCKET_UDP, [KEY_LOCALADDR] = SOCKET_NONE,
    };
    struct socket_cfg *c = opaque;
    enum socket_key k;
    char q[64];

    for (k = 0; k < KEY_COUNT; k++) {
        if (!strcmp(key, socket_key_names[k]))
            break;
    }
    if (k == KEY_COUNT)
        return -ENOENT;
    if (c->seen & (1u << k)) {
        net_err(err, "socket: %s: given twice", key);
        return -EINVAL;
    }
    c->seen |= 1u << k;
    if (key_mode[k] != SOCKET_NONE) {
        if (c->mode != SOCKET_NONE) {
            net_err(err,
                    "socket: %s: conflicts with %s= (give one of fd=, connect=, listen=, udp=)",
                    key, socket_key_names[c->mode_key]);
            return -EINVAL;
        }
        c->mode = key_mode[k];
        c->mode_key = k;
    }
    if (k == KEY_FD) {
        unsigned long fd;

        if (netspec_parse_uint(value, INT_MAX, &fd) < 0) {
            net_err(err, "socket: fd: '%s' is not a file descriptor number",
                    netspec_quote(value, q, sizeof(q)));
            return -EINVAL;
        }
        c->fd = (int)fd;
        return 0;
    }
    if (netspec_parse_hostport(value, k == KEY_LOCALADDR ? c->lhost : c->host,
                               k == KEY_LOCALADDR ? &c->lport : &c->port) < 0) {
        net_err(err, "socket: %s: '%s' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])", key,
                netspec_quote(value, q, sizeof(q)));
        return -EINVAL;
    }
    if ((k == KEY_CONNECT || k == KEY_UDP) && !c->host[0]) {
        net_err(err, "socket: %s: '%s' lacks the HOST", key, netspec_quote(value, q, sizeof(q)));
        return -EINVAL;
    }
    return 0;
}

static int socket_parse_done(void *opaque, char *err)
{
    struct socket_cfg *c = opaque;

    if (c->mode == SOCKET_NONE) {
        net_err(err, "socket: needs one of fd=N, connect=HOST:PORT, listen=HOST:PORT or "
                     "udp=HOST:PORT");
        return -EINVAL;
    }
    if ((c->seen & (1u << KEY_LOCALADDR)) && c->mode != SOCKET_UDP) {
        net_err(err, "socket: localaddr: only valid with udp=");
        return -EINVAL;
    }
    if (c->mode == SOCKET_UDP && !(c->seen & (1u << KEY_LOCALADDR))) {
        net_err(err, "socket: udp: needs localaddr=HOST:PORT too");
        return -EINVAL;
    }
    return 0;
}

/* ---- opening ---- */

/* "HOST:PORT", "[v6]:PORT" for messages. */
static void socket_format_addr(char *buf, size_t n, const char *host, uint16_t port)
{
    snprintf(buf, n, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* Resolves host:port for `socktype` (family AF_UNSPEC or one to match). */
static int socket_resolve(const char *key, const char *host, uint16_t port, int family,
                          int socktype, bool passive, struct addrinfo **out, char *err)
{
    struct addrinfo hints = {.ai_family = family,
                             .ai_socktype = socktype,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    char portstr[8], addr[NETSPEC_HOST_MAX + 16];
    int r;

    snprintf(portstr, sizeof(portstr), "%u", port);
    r = getaddrinfo(host[0] ? host : NULL, portstr, &hints, out);
    if (r != 0) {
        socket_format_addr(addr, sizeof(addr), host, port);
        net_err(err, "socket: %s: cannot resolve %s: %s", key, addr,
                r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
        return -EHOSTUNREACH;
    }
    return 0;
}

/* Connects a non-blocking socket, waiting up to the timeout. Returns 0 or -errno. */
static int socket_connect_wait(int s, const struct sockaddr *sa, socklen_t len)
{
    struct pollfd pfd = {.fd = s, .events = POLLOUT};
    int soerr = 0, r;
    socklen_t sl = sizeof(soerr);

    if (connect(s, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    do {
        r = poll(&pfd, 1, SOCKET_CONNECT_TIMEOUT_MS);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    return -soerr;
}

static int socket_open_connect(const struct socket_cfg *c, int *fd_out, char *err)
{
    struct addrinfo *ai, *a;
    char addr[NETSPEC_HOST_MAX + 16];
    int r, s = -1, one = 1;

    r = socket_resolve("connect", c->host, c->port, AF_UNSPEC, SOCK_STREAM, false, &ai, err);
    if (r < 0)
        return r;
    r = -EHOSTUNREACH;
    for (a = ai; a; a = a->ai_next) {
        s = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (s < 0) {
            r = -errno;
            continue;
        }
        r = socket_connect_wait(s, a->ai_addr, a->ai_addrlen);
        if (r == 0)
            break;
        close(s);
        s = -1;
    }
    freeaddrinfo(ai);
    if (s < 0) {
        socket_format_addr(addr, sizeof(addr), c->host, c->port);
        net_err(err, "socket: connect: cannot connect to %s: %s", addr, strerror(-r));
        return r;
    }
    /* Frames are whole messages: do not let Nagle hold small ones back. */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd_out = s;
    return 0;
}

/* Binds a socket of `socktype` to host:port (empty host: every address). */
static int socket_bind(const char *key, const char *host, uint16_t port, int family, int socktype,
                       int *fd_out, int *family_out, char *err)
{
    struct addrinfo *ai, *a;
    char addr[NETSPEC_HOST_MAX + 16];
    int r, s = -1, one = 1;

    r = socket_resolve(key, host, port, family, socktype, true, &ai, err);
    if (r < 0)
        return r;
    r = -EADDRNOTAVAIL;
    for (a = ai; a; a = a->ai_next) {
        s = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (s < 0) {
            r = -errno;
            continue;
        }
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, a->ai_addr, a->ai_addrlen) == 0) {
            *family_out = a->ai_family;
            break;
        }
        r = -errno;
        close(s);
        s = -1;
    }
    freeaddrinfo(ai);
    if (s < 0) {
        socket_format_addr(addr, sizeof(addr), host, port);
        net_err(err, "socket: %s: cannot bind %s: %s", key, addr, strerror(-r));
        return r;
    }
    *fd_out = s;
    return 0;
}

static int socket_open_udp(const struct socket_cfg *c, int *fd_out, char *err)
{
    struct addrinfo *ai;
    char addr[NETSPEC_HOST_MAX + 16];
    int r, s, family;

    r = socket_resolve("udp", c->host, c->port, AF_UNSPEC, SOCK_DGRAM, false, &ai, err);
    if (r < 0)
        return r;
    r = socket_bind("localaddr", c->lhost, c->lport, ai->ai_family, SOCK_DGRAM, &s, &family, err);
    if (r < 0)
        goto out;
    /* A connected UDP socket takes datagrams from the peer only. */
    if (connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
        r = -errno;
        socket_format_addr(addr, sizeof(addr), c->host, c->port);
        net_err(err, "socket: udp: cannot send to %s: %s", addr, strerror(-r));
        close(s);
        goto out;
    }
    *fd_out = s;
out:
    freeaddrinfo(ai);
    return r;
}

static int socket_open_fd(const struct socket_cfg *c, enum fdnet_framing *framing, char *err)
{
    int type, flags;
    socklen_t sl = sizeof(type);

    if (getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0) {
        int e = errno;

        if (e == ENOTSOCK)
            net_err(err, "socket: fd: %d is not a socket", c->fd);
        else if (e == EBADF)
            net_err(err, "socket: fd: %d is not an open file descriptor", c->fd);
        else
            net_err(err, "socket: fd: %d: %s", c->fd, strerror(e));
        return -e;
    }
    if (type != SOCK_STREAM && type != SOCK_DGRAM) {
        net_err(err, "socket: fd: %d is neither SOCK_STREAM nor SOCK_DGRAM", c->fd);
        return -EPROTOTYPE;
    }
    flags = fcntl(c->fd, F_GETFL);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(c->fd, F_SETFD, FD_CLOEXEC) < 0) {
        int e = errno;

        net_err(err, "socket: fd: cannot make %d non-blocking: %s", c->fd, strerror(e));
        return -e;
    }
    *framing = type == SOCK_STREAM ? FDNET_STREAM : FDNET_DGRAM;
    return 0;
}

/* Loop thread: the listening socket is readable. */
static void socket_accept_cb(void *opaque, int fd, unsigned revents)
{
    struct socket_backend *sb = opaque;
    int s, one = 1, r;

    s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_guest("%s: accept failed: %s", sb->what, strerror(errno));
        return;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The current peer's end-of-file may sit in the same epoll batch, behind this accept:
     * look at it first, so that a peer that reconnects at once is not refused. */
    fdnet_poll(sb->io);
    r = fdnet_attach(sb->io, s, FDNET_STREAM, true);
    if (r < 0) {
        if (r == -EBUSY)
            log_guest("%s: refused a second connection (one peer at a time)", sb->what);
        else
            log_error("%s: cannot take a connection: %s", sb->what, strerror(-r));
        close(s);
        return;
    }
    log_info("%s: peer connected", sb->what);
}

/* Loop thread: the peer went away (fdnet logged why). */
static void socket_down_cb(void *opaque)
{
    struct socket_backend *sb = opaque;

    if (sb->mode == SOCKET_LISTEN)
        log_info("%s: waiting for the next connection", sb->what);
    else
        log_warn("%s: the link stays down", sb->what);
}

static void socket_free(struct socket_backend *sb)
{
    if (sb->listen_h)
        loop_remove_fd(sb->nb->loop, sb->listen_h);
    if (sb->listen_fd >= 0)
        close(sb->listen_fd);
    fdnet_destroy(sb->io);
    free(sb);
}

static int socket_open(struct net_backend *nb, const void *opaque, char *err)
{
    const struct socket_cfg *c = opaque;
    enum fdnet_framing framing = FDNET_STREAM;
    struct socket_backend *sb;
    char addr[NETSPEC_HOST_MAX + 16];
    int r, fd = -1, family;

    sb = calloc(1, sizeof(*sb));
    if (!sb) {
        net_err(err, "socket: out of memory");
        return -ENOMEM;
    }
    sb->nb = nb;
    sb->mode = c->mode;
    sb->listen_fd = -1;
    if (c->mode == SOCKET_FD) {
        snprintf(sb->what, sizeof(sb->what), "socket fd=%d", c->fd);
    } else {
        socket_format_addr(addr, sizeof(addr), c->host, c->port);
        snprintf(sb->what, sizeof(sb->what), "socket %s=%s", socket_key_names[c->mode_key], addr);
    }
    r = fdnet_create(nb, sb->what, socket_down_cb, sb, &sb->io);
    if (r < 0) {
        net_err(err, "socket: out of memory");
        goto err_free;
    }
    switch (c->mode) {
    case SOCKET_FD:
        r = socket_open_fd(c, &framing, err);
        fd = c->fd;
        break;
    case SOCKET_CONNECT: r = socket_open_connect(c, &fd, err); break;
    case SOCKET_UDP:
        framing = FDNET_DGRAM;
        r = socket_open_udp(c, &fd, err);
        break;
    case SOCKET_LISTEN:
        r = socket_bind("listen", c->host, c->port, AF_UNSPEC, SOCK_STREAM, &sb->listen_fd, &family,
                        err);
        if (r == 0 && listen(sb->listen_fd, 1) < 0) {
            r = -errno;
            net_err(err, "socket: listen: cannot listen on %s: %s", addr, strerror(-r));
        }
        break;
    case SOCKET_NONE:
        r = -EINVAL;
        net_err(err, "socket: no mode");
        break;
    }
    if (r < 0)
        goto err_free;
    if (c->mode == SOCKET_LISTEN) {
        r = loop_add_fd(nb->loop, sb->listen_fd, LOOP_IN, socket_accept_cb, sb, &sb->listen_h);
        if (r < 0) {
            net_err(err, "socket: listen: cannot watch the socket: %s", strerror(-r));
            goto err_free;
        }
    } else {
        r = fdnet_attach(sb->io, fd, framing, true);
        if (r < 0) {
            net_err(err, "socket: cannot watch the socket: %s", strerror(-r));
            if (c->mode != SOCKET_FD)
                close(fd);
            goto err_free;
        }
    }
    nb->priv = sb;
    return 0;

err_free:
    socket_free(sb);
    return r;
}

static int socket_send(struct net_backend *nb, const struct net_vhdr *hdr, const struct iovec *iov,
                       int iovcnt, size_t len)
{
    struct socket_backend *sb = nb->priv;

    return fdnet_send(sb->io, iov, iovcnt, len);
}

static void socket_kick(struct net_backend *nb)
{
    struct socket_backend *sb = nb->priv;

    fdnet_kick(sb->io);
}

static void socket_close(struct net_backend *nb)
{
    /* The listening watch goes first, so no accept can attach while fdnet is destroyed. */
    socket_free(nb->priv);
}

const struct net_backend_ops socket_backend_ops = {
    .name = "socket",
    .keys = "fd, connect, listen, udp, localaddr",
    .cfg_size = sizeof(struct socket_cfg),
    .parse_key = socket_parse_key,
    .parse_done = socket_parse_done,
    .open = socket_open,
    .send = socket_send,
    .kick = socket_kick,
    .close = socket_close,
};
