/* One fd carrying frames. See fdnet.h for the framings, threads and locks. */
#include "net/fdnet.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "net/net_priv.h"

#define FDNET_HDR 4 /* stream framing: frame length, big-endian */
/* Receive buffer: a whole largest stream frame plus room to read ahead (datagrams need
 * NET_FRAME_MAX + 1 to see that one was too long). */
#define FDNET_RX_SIZE (FDNET_HDR + NET_FRAME_MAX + 65536)
/* Transmit buffer for frames a stream socket did not take at once: at least one whole
 * largest frame, so that a partly written frame can always be completed. */
#define FDNET_TX_SIZE (256 * 1024)
/* Reads per readiness callback before yielding to other fds (the watch is level-triggered). */
#define FDNET_READS 32

enum fdnet_rx_state { FDNET_RX_OK, FDNET_RX_HELD, FDNET_RX_DOWN };

struct fdnet {
    /* Immutable. */
    struct net_backend *nb;
    struct loop *loop;
    const char *what;
    fdnet_down_fn down;
    void *down_opaque;

    /* Under lock. fd and framing change only on the loop thread (or before the fd is live),
     * so the loop thread may read them without the lock. */
    pthread_mutex_t lock;
    int fd;            /* -1 while detached */
    struct loop_fd *h; /* the watch; after a down it stays registered, paused, until the
                        * next attach or destroy */
    enum fdnet_framing framing;
    bool is_socket;
    bool vhdr;      /* datagrams start with a virtio-net header (set before attach) */
    bool rx_paused; /* the device has no room: not reading */
    unsigned events;
    uint8_t *tx;
    size_t tx_head, tx_len;

    /* Loop thread only. */
    uint8_t *rx;
    size_t rx_start, rx_end; /* stream: unparsed bytes; datagram: rx_end = held frame length */
    bool rx_pending;         /* datagram: a frame waits in rx[0..rx_end) */
};

/* Called with f->lock held: asks the loop for what the state needs. */
static void fdnet_update_locked(struct fdnet *f)
{
    unsigned ev = (f->rx_paused ? 0 : LOOP_IN) | (f->tx_len ? LOOP_OUT : 0);
    int r;

    if (f->fd < 0 || ev == f->events)
        return;
    r = loop_mod_fd(f->loop, f->h, ev);
    if (r < 0) {
        log_error("%s: cannot change the fd watch: %s", f->what, strerror(-r));
        return;
    }
    f->events = ev;
}

/* Loop thread, f->lock not held: the connection is gone. */
static void fdnet_go_down(struct fdnet *f, const char *why)
{
    pthread_mutex_lock(&f->lock);
    if (f->fd < 0) {
        pthread_mutex_unlock(&f->lock);
        return;
    }
    /* Pause the watch before closing, so the fd number can be reused at once. */
    if (loop_mod_fd(f->loop, f->h, 0) == 0)
        f->events = 0;
    close(f->fd);
    f->fd = -1;
    f->tx_head = f->tx_len = 0;
    f->rx_paused = false;
    pthread_mutex_unlock(&f->lock);
    f->rx_start = f->rx_end = 0;
    f->rx_pending = false;
    log_warn("%s: %s", f->what, why);
    if (f->down)
        f->down(f->down_opaque);
}

static uint32_t fdnet_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static ssize_t fdnet_read(struct fdnet *f, void *buf, size_t len, int flags)
{
    return f->is_socket ? recv(f->fd, buf, len, flags) : read(f->fd, buf, len);
}

/* Loop thread. Parses and delivers every complete frame in the buffer. */
static enum fdnet_rx_state fdnet_rx_parse(struct fdnet *f, char *why, size_t why_len)
{
    while (f->rx_end - f->rx_start >= FDNET_HDR) {
        const uint8_t *p = f->rx + f->rx_start;
        uint32_t flen = fdnet_get_be32(p);

        if (flen < NET_FRAME_MIN || flen > NET_FRAME_MAX) {
            net_backend_count_rx_drop(f->nb);
            snprintf(why, why_len,
                     "peer sent a frame length of %u (allowed: %d..%d); closing the connection",
                     flen, NET_FRAME_MIN, NET_FRAME_MAX);
            return FDNET_RX_DOWN;
        }
        if (f->rx_end - f->rx_start < FDNET_HDR + flen)
            break;
        if (net_backend_deliver(f->nb, p + FDNET_HDR, flen) == NET_HELD)
            return FDNET_RX_HELD;
        f->rx_start += FDNET_HDR + flen;
    }
    if (f->rx_start == f->rx_end) {
        f->rx_start = f->rx_end = 0;
    } else if (f->rx_start > 0) {
        memmove(f->rx, f->rx + f->rx_start, f->rx_end - f->rx_start);
        f->rx_end -= f->rx_start;
        f->rx_start = 0;
    }
    return FDNET_RX_OK;
}

/* Loop thread. Delivers buffered frames, then reads more; the last step is always a parse,
 * so no complete frame is left behind when the socket has nothing more to say. */
static enum fdnet_rx_state fdnet_rx_stream(struct fdnet *f, char *why, size_t why_len)
{
    for (int i = 0;; i++) {
        enum fdnet_rx_state st = fdnet_rx_parse(f, why, why_len);
        ssize_t n;

        if (st != FDNET_RX_OK || i == FDNET_READS)
            return st;
        /* After a parse fewer than FDNET_HDR + NET_FRAME_MAX bytes remain, so there is room. */
        n = fdnet_read(f, f->rx + f->rx_end, FDNET_RX_SIZE - f->rx_end, 0);
        if (n > 0) {
            f->rx_end += (size_t)n;
        } else if (n == 0) {
            snprintf(why, why_len, "peer closed the connection");
            return FDNET_RX_DOWN;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return FDNET_RX_OK;
        } else if (errno != EINTR) {
            snprintf(why, why_len, "read failed: %s", strerror(errno));
            return FDNET_RX_DOWN;
        }
    }
}

/* Loop thread. One frame per datagram; the held frame (if any) goes first. */
static enum fdnet_rx_state fdnet_rx_dgram(struct fdnet *f, char *why, size_t why_len)
{
    size_t hlen = f->vhdr ? NET_VHDR_LEN : 0;

    for (int i = 0;; i++) {
        ssize_t n;

        if (f->rx_pending) {
            enum net_delivery d;

            if (f->vhdr) {
                struct net_vhdr h;

                net_vhdr_from_le(&h, f->rx);
                d = net_backend_deliver_vhdr(f->nb, &h, f->rx + NET_VHDR_LEN,
                                             f->rx_end - NET_VHDR_LEN);
            } else {
                d = net_backend_deliver(f->nb, f->rx, f->rx_end);
            }
            if (d == NET_HELD)
                return FDNET_RX_HELD;
            f->rx_pending = false;
        }
        if (i == FDNET_READS)
            return FDNET_RX_OK;
        /* MSG_TRUNC: recv() returns the datagram's real length, so an over-long one shows. */
        n = fdnet_read(f, f->rx, hlen + NET_FRAME_MAX + 1, MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return FDNET_RX_OK;
            /* A UDP peer that is not there yet: an ICMP error, reported once. */
            if (errno == EINTR || errno == ECONNREFUSED)
                continue;
            snprintf(why, why_len, "read failed: %s", strerror(errno));
            return FDNET_RX_DOWN;
        }
        if ((size_t)n < hlen + NET_FRAME_MIN || (size_t)n > hlen + NET_FRAME_MAX) {
            net_backend_count_rx_drop(f->nb);
            log_guest("%s: dropped a received frame of %zd bytes (allowed: %d..%d)", f->what,
                      n - (ssize_t)hlen, NET_FRAME_MIN, NET_FRAME_MAX);
            continue;
        }
        f->rx_end = (size_t)n;
        f->rx_pending = true;
    }
}

/* Loop thread: reads what there is and sets the pause state. */
static void fdnet_rx(struct fdnet *f, unsigned revents)
{
    enum fdnet_rx_state st;
    char why[160];

    if (f->fd < 0)
        return;
    why[0] = '\0';
    st = f->framing == FDNET_STREAM ? fdnet_rx_stream(f, why, sizeof(why))
                                    : fdnet_rx_dgram(f, why, sizeof(why));
    /* A datagram fd has no end-of-file: a hang-up or an error that reading did not clear
     * (a deleted tap) would keep firing. */
    if (st == FDNET_RX_OK && f->framing == FDNET_DGRAM && (revents & (LOOP_HUP | LOOP_ERR))) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if ((revents & LOOP_HUP) || !f->is_socket ||
            getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            snprintf(why, sizeof(why), "%s", revents & LOOP_HUP ? "hang-up" : "device error");
            st = FDNET_RX_DOWN;
        }
    }
    if (st == FDNET_RX_DOWN) {
        fdnet_go_down(f, why);
        return;
    }
    pthread_mutex_lock(&f->lock);
    f->rx_paused = st == FDNET_RX_HELD;
    fdnet_update_locked(f);
    pthread_mutex_unlock(&f->lock);
}

/* Loop thread: writes out the transmit buffer. */
static void fdnet_tx_flush(struct fdnet *f)
{
    char why[160];
    bool down = false;

    pthread_mutex_lock(&f->lock);
    while (f->fd >= 0 && f->tx_len) {
        ssize_t n = f->is_socket
                        ? send(f->fd, f->tx + f->tx_head, f->tx_len, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(f->fd, f->tx + f->tx_head, f->tx_len);

        if (n > 0) {
            f->tx_head += (size_t)n;
            f->tx_len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (n < 0 && errno != EINTR) {
            snprintf(why, sizeof(why), "write failed: %s", strerror(errno));
            down = true;
            break;
        }
    }
    if (!f->tx_len)
        f->tx_head = 0;
    fdnet_update_locked(f);
    pthread_mutex_unlock(&f->lock);
    if (down)
        fdnet_go_down(f, why);
}

/* Loop thread: the fd's watch. */
static void fdnet_io_cb(void *opaque, int fd, unsigned revents)
{
    struct fdnet *f = opaque;

    if (revents & LOOP_OUT)
        fdnet_tx_flush(f);
    if (revents & (LOOP_IN | LOOP_ERR | LOOP_HUP))
        fdnet_rx(f, revents);
}

void fdnet_kick(struct fdnet *f)
{
    fdnet_rx(f, 0);
}

bool fdnet_poll(struct fdnet *f)
{
    /* While the device holds a frame back nothing is read, and the peer counts as there. */
    fdnet_rx(f, 0);
    return f->fd >= 0;
}

/* Copies the frame "hdr + iov" from byte `skip` on into dst; returns the bytes copied. */
static size_t fdnet_gather(uint8_t *dst, const uint8_t hdr[FDNET_HDR], const struct iovec *iov,
                           int iovcnt, size_t skip)
{
    size_t out = 0;

    if (skip < FDNET_HDR) {
        memcpy(dst, hdr + skip, FDNET_HDR - skip);
        out = FDNET_HDR - skip;
        skip = 0;
    } else {
        skip -= FDNET_HDR;
    }
    for (int i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(dst + out, (const uint8_t *)iov[i].iov_base + skip, l - skip);
        out += l - skip;
        skip = 0;
    }
    return out;
}

/* Called with f->lock held: one stream frame. */
static int fdnet_send_stream_locked(struct fdnet *f, const struct iovec *iov, int iovcnt,
                                    size_t len)
{
    uint8_t hdr[FDNET_HDR] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                              (uint8_t)len};
    size_t total = FDNET_HDR + len, done = 0;

    if (f->tx_len == 0) {
        struct iovec v[NET_IOV_MAX + 1];
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)iovcnt + 1};
        ssize_t n;

        v[0] = (struct iovec){.iov_base = hdr, .iov_len = FDNET_HDR};
        memcpy(&v[1], iov, (size_t)iovcnt * sizeof(*iov));
        do {
            n = f->is_socket ? sendmsg(f->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
                             : writev(f->fd, v, iovcnt + 1);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        done = n > 0 ? (size_t)n : 0;
        if (done == total)
            return 0;
        /* The rest, even of a partly written frame, fits: FDNET_TX_SIZE > one frame. */
    } else if (f->tx_len + total > FDNET_TX_SIZE) {
        return -ENOBUFS;
    } else if (f->tx_head + f->tx_len + total > FDNET_TX_SIZE) {
        memmove(f->tx, f->tx + f->tx_head, f->tx_len);
        f->tx_head = 0;
    }
    f->tx_len += fdnet_gather(f->tx + f->tx_head + f->tx_len, hdr, iov, iovcnt, done);
    fdnet_update_locked(f);
    return 0;
}

int fdnet_send(struct fdnet *f, const struct iovec *iov, int iovcnt, size_t len)
{
    int r;

    pthread_mutex_lock(&f->lock);
    if (f->fd < 0) {
        r = -ENOTCONN;
    } else if (f->framing == FDNET_STREAM) {
        r = fdnet_send_stream_locked(f, iov, iovcnt, len);
    } else {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n;
        int refused = 0;

        /* A connected UDP socket reports an ICMP error about an earlier datagram (the peer
         * was not up yet) on the next send, which then sends nothing and clears the error:
         * that stale error is no reason to drop this frame. */
        do {
            n = f->is_socket ? sendmsg(f->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
                             : writev(f->fd, iov, iovcnt);
        } while (n < 0 && (errno == EINTR || (errno == ECONNREFUSED && refused++ == 0)));
        r = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

void fdnet_set_vhdr(struct fdnet *f, bool on)
{
    f->vhdr = on;
}

int fdnet_ioctl(struct fdnet *f, unsigned long req, void *arg)
{
    int r = 0;

    pthread_mutex_lock(&f->lock);
    if (f->fd < 0)
        r = -ENOTCONN;
    else if (ioctl(f->fd, req, arg) < 0)
        r = -errno;
    pthread_mutex_unlock(&f->lock);
    return r;
}

int fdnet_create(struct net_backend *nb, const char *what, fdnet_down_fn down, void *opaque,
                 struct fdnet **out)
{
    struct fdnet *f = calloc(1, sizeof(*f));

    if (!f)
        return -ENOMEM;
    f->rx = malloc(FDNET_RX_SIZE);
    f->tx = malloc(FDNET_TX_SIZE);
    if (!f->rx || !f->tx || pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f->rx);
        free(f->tx);
        free(f);
        return -ENOMEM;
    }
    f->nb = nb;
    f->loop = nb->loop;
    f->what = what;
    f->down = down;
    f->down_opaque = opaque;
    f->fd = -1;
    *out = f;
    return 0;
}

int fdnet_attach(struct fdnet *f, int fd, enum fdnet_framing framing, bool is_socket)
{
    int r;

    pthread_mutex_lock(&f->lock);
    if (f->fd >= 0) {
        pthread_mutex_unlock(&f->lock);
        return -EBUSY;
    }
    /* The paused watch of the previous fd (see fdnet_go_down()). On the loop thread removal
     * does not wait, so holding the lock is fine; on the set-up thread there is none. */
    loop_remove_fd(f->loop, f->h);
    f->h = NULL;
    f->events = 0;
    f->rx_start = f->rx_end = 0;
    f->rx_pending = false;
    f->rx_paused = false;
    f->tx_head = f->tx_len = 0;
    f->framing = framing;
    f->is_socket = is_socket;
    /* Set before the watch exists: the loop thread reads fd and framing without our lock,
     * and loop_add_fd() orders these writes before the first callback. */
    f->fd = fd;
    f->events = LOOP_IN;
    r = loop_add_fd(f->loop, fd, LOOP_IN, fdnet_io_cb, f, &f->h);
    if (r < 0) {
        f->fd = -1;
        f->events = 0;
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

void fdnet_destroy(struct fdnet *f)
{
    if (!f)
        return;
    /* Without the lock: the callback takes it, and removal waits for the callback. Nothing
     * else changes f->h now (the owner stopped whatever attaches). */
    loop_remove_fd(f->loop, f->h);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f->rx);
    free(f->tx);
    free(f);
}
