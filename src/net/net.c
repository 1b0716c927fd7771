/* The network backend interface: the registry, the one wrapper every frame from the guest goes
 * through (length checks and counters), and delivery to the device with back-pressure. See
 * net.h for the contracts and net_priv.h for what backends get from here. */
#include "net/net.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "net/net_priv.h"
#include "net/netspec.h"

/* The registry: adding a backend kind adds one line here and nothing else. */
static const struct net_backend_ops *const net_backends[] = {
    &user_backend_ops,
    &tap_backend_ops,
    &socket_backend_ops,
};

#define NET_NBACKENDS (sizeof(net_backends) / sizeof(net_backends[0]))

const struct net_backend_ops *net_backend_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < NET_NBACKENDS; i++) {
        if (strlen(net_backends[i]->name) == len && !memcmp(net_backends[i]->name, name, len))
            return net_backends[i];
    }
    return NULL;
}

void net_backend_list(char *buf, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < NET_NBACKENDS && used < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == NET_NBACKENDS ? " or " : ", ";
        int w = snprintf(buf + used, n - used, "%s%s", sep, net_backends[i]->name);

        if (w < 0)
            break;
        used += (size_t)w;
    }
}

void net_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, NET_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* ---- the wake-up eventfd ---- */

void net_backend_wake(struct net_backend *nb)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
    if (write(nb->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("net %s: eventfd write failed: %s", nb->ops->name, strerror(errno));
}

/* Loop thread. */
static void net_kick_cb(void *opaque, int fd, unsigned revents)
{
    struct net_backend *nb = opaque;
    uint64_t count;

    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_error("net %s: eventfd read failed: %s", nb->ops->name, strerror(errno));
    nb->ops->kick(nb);
}

/* ---- receive: host -> guest ---- */

enum net_delivery net_backend_deliver(struct net_backend *nb, const void *frame, size_t len)
{
    return net_backend_deliver_vhdr(nb, NULL, frame, len);
}

enum net_delivery net_backend_deliver_vhdr(struct net_backend *nb, const struct net_vhdr *hdr,
                                           const void *frame, size_t len)
{
    const char *why;
    ssize_t n;

    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
        atomic_fetch_add_explicit(&nb->rx_dropped, 1, memory_order_relaxed);
        return NET_DROPPED;
    }
    if (hdr && net_vhdr_check(hdr, len, nb->offload_caps, true, &why) < 0) {
        log_guest("net %s: dropped a received frame with a bad virtio-net header: %s",
                  nb->ops->name, why);
        atomic_fetch_add_explicit(&nb->rx_dropped, 1, memory_order_relaxed);
        return NET_DROPPED;
    }
    pthread_mutex_lock(&nb->rx_lock);
    atomic_store(&nb->rx_held, true);
    if (!nb->rx_fn) {
        pthread_mutex_unlock(&nb->rx_lock);
        return NET_HELD;
    }
    n = nb->rx_fn(nb->rx_opaque, hdr, frame, len);
    pthread_mutex_unlock(&nb->rx_lock);
    if (n == 0)
        return NET_HELD;
    atomic_store(&nb->rx_held, false);
    if (n > 0 && (size_t)n == len) {
        atomic_fetch_add_explicit(&nb->rx_frames, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&nb->rx_bytes, len, memory_order_relaxed);
        return NET_DELIVERED;
    }
    atomic_fetch_add_explicit(&nb->rx_dropped, 1, memory_order_relaxed);
    return NET_DROPPED;
}

void net_backend_count_rx_drop(struct net_backend *nb)
{
    atomic_fetch_add_explicit(&nb->rx_dropped, 1, memory_order_relaxed);
}

void net_backend_set_receiver(struct net_backend *nb, net_receive_fn fn, void *opaque)
{
    pthread_mutex_lock(&nb->rx_lock);
    nb->rx_fn = fn;
    nb->rx_opaque = opaque;
    pthread_mutex_unlock(&nb->rx_lock);
    atomic_store(&nb->rx_held, false);
    net_backend_wake(nb);
}

void net_backend_rx_ready(struct net_backend *nb)
{
    /* Cheap when nothing is held back: devices may call this on every new receive buffer. */
    if (atomic_exchange(&nb->rx_held, false))
        net_backend_wake(nb);
}

/* ---- send: guest -> host ---- */

/* net_vhdr_finish()'s output: one plain frame to the backend. */
static int net_emit_soft(void *opaque, const uint8_t *frame, size_t len)
{
    struct net_backend *nb = opaque;
    struct iovec v = {.iov_base = (void *)frame, .iov_len = len};

    return nb->ops->send(nb, NULL, &v, 1, len);
}

/* Software offload for a backend that takes plain frames only (user, socket): checksums
 * completed and GSO frames segmented here (net_vhdr_finish()), each piece sent on its own.
 * A piece the backend refuses ends the frame: TCP retransmits, as after any drop. */
static int net_send_soft(struct net_backend *nb, const struct net_vhdr *hdr,
                         const struct iovec *iov, int iovcnt, size_t len)
{
    const uint8_t *frame = iov[0].iov_base;
    uint8_t *flat = NULL;
    const char *why = NULL;
    int r;

    if (iovcnt > 1) {
        size_t off = 0;

        flat = malloc(len);
        if (!flat)
            return -ENOMEM;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
        frame = flat;
    }
    r = net_vhdr_finish(hdr, frame, len, net_emit_soft, nb, &why);
    if (r == -EINVAL && why)
        log_guest("net %s: dropped a frame from the guest with a bad virtio-net header: %s",
                  nb->ops->name, why);
    free(flat);
    return r;
}

int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    return net_backend_send_vhdr(nb, NULL, iov, iovcnt);
}

int net_backend_send_vhdr(struct net_backend *nb, const struct net_vhdr *hdr,
                          const struct iovec *iov, int iovcnt)
{
    const char *why;
    size_t len = 0;
    int r;

    if (!iov || iovcnt < 1 || iovcnt > NET_IOV_MAX) {
        r = -EINVAL;
        goto dropped;
    }
    /* The guest chose these lengths: add them without overflow, stopping past the limit. */
    for (int i = 0; i < iovcnt && len <= NET_FRAME_MAX; i++) {
        if (iov[i].iov_len > NET_FRAME_MAX) {
            len = NET_FRAME_MAX + 1;
            break;
        }
        len += iov[i].iov_len;
    }
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
        log_guest("net %s: dropped a frame from the guest of %s%zu bytes (allowed: %d..%d)",
                  nb->ops->name, len > NET_FRAME_MAX ? "over " : "",
                  len > NET_FRAME_MAX ? (size_t)NET_FRAME_MAX : len, NET_FRAME_MIN, NET_FRAME_MAX);
        r = -EMSGSIZE;
        goto dropped;
    }
    /* A host side without headers gets the work done here. */
    if (hdr && (hdr->flags || hdr->gso_type != NET_VHDR_GSO_NONE) && !nb->offload_caps) {
        r = net_send_soft(nb, hdr, iov, iovcnt, len);
        if (r < 0)
            goto dropped;
        goto sent;
    }
    if (hdr && net_vhdr_check(hdr, len, nb->offload_caps, false, &why) < 0) {
        log_guest("net %s: dropped a frame from the guest with a bad virtio-net header: %s",
                  nb->ops->name, why);
        r = -EINVAL;
        goto dropped;
    }
    /* A header that asks nothing is a plain frame (what backends without caps get). */
    if (hdr && !hdr->flags && hdr->gso_type == NET_VHDR_GSO_NONE)
        hdr = NULL;
    r = nb->ops->send(nb, hdr, iov, iovcnt, len);
    if (r < 0)
        goto dropped;
sent:
    atomic_fetch_add_explicit(&nb->tx_frames, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&nb->tx_bytes, len, memory_order_relaxed);
    return 0;

dropped:
    atomic_fetch_add_explicit(&nb->tx_dropped, 1, memory_order_relaxed);
    return r;
}

/* ---- the rest ---- */

void net_backend_get_stats(struct net_backend *nb, struct net_stats *out)
{
    out->tx_frames = atomic_load_explicit(&nb->tx_frames, memory_order_relaxed);
    out->tx_bytes = atomic_load_explicit(&nb->tx_bytes, memory_order_relaxed);
    out->tx_dropped = atomic_load_explicit(&nb->tx_dropped, memory_order_relaxed);
    out->rx_frames = atomic_load_explicit(&nb->rx_frames, memory_order_relaxed);
    out->rx_bytes = atomic_load_explicit(&nb->rx_bytes, memory_order_relaxed);
    out->rx_dropped = atomic_load_explicit(&nb->rx_dropped, memory_order_relaxed);
}

unsigned net_backend_offload_caps(const struct net_backend *nb)
{
    return nb->offload_caps;
}

int net_backend_set_offload(struct net_backend *nb, unsigned offloads)
{
    if (offloads & ~nb->offload_caps)
        return -EOPNOTSUPP;
    if (!nb->ops->set_offload)
        return 0; /* no caps: only 0 gets here, and plain frames are all there is */
    return nb->ops->set_offload(nb, offloads);
}

const char *net_backend_kind(const struct net_backend *nb)
{
    return nb->ops->name;
}

int net_backend_open(const char *spec, struct loop *loop, struct net_backend **out, char *err)
{
    struct net_spec ns;
    struct net_backend *nb;
    int r;

    r = netspec_parse(spec, &ns, err);
    if (r < 0)
        return r;
    nb = calloc(1, sizeof(*nb));
    if (!nb) {
        net_err(err, "%s: out of memory", ns.ops->name);
        r = -ENOMEM;
        goto err_spec;
    }
    nb->ops = ns.ops;
    nb->loop = loop;
    r = -pthread_mutex_init(&nb->rx_lock, NULL);
    if (r < 0) {
        net_err(err, "%s: cannot create a mutex: %s", nb->ops->name, strerror(-r));
        goto err_free;
    }
    nb->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (nb->kickfd < 0) {
        r = -errno;
        net_err(err, "%s: cannot create an eventfd: %s", nb->ops->name, strerror(-r));
        goto err_mutex;
    }
    /* Registered paused: the backend's kick must not run before its open() set priv. */
    r = loop_add_fd(loop, nb->kickfd, 0, net_kick_cb, nb, &nb->kick_h);
    if (r < 0) {
        net_err(err, "%s: cannot watch an eventfd: %s", nb->ops->name, strerror(-r));
        goto err_kickfd;
    }
    r = nb->ops->open(nb, ns.cfg, err);
    if (r < 0)
        goto err_watch;
    r = loop_mod_fd(loop, nb->kick_h, LOOP_IN);
    if (r < 0) {
        net_err(err, "%s: cannot watch an eventfd: %s", nb->ops->name, strerror(-r));
        goto err_open;
    }
    netspec_free(&ns);
    *out = nb;
    return 0;

err_open:
    nb->ops->close(nb);
err_watch:
    loop_remove_fd(loop, nb->kick_h);
err_kickfd:
    close(nb->kickfd);
err_mutex:
    pthread_mutex_destroy(&nb->rx_lock);
err_free:
    free(nb);
err_spec:
    netspec_free(&ns);
    return r;
}

void net_backend_close(struct net_backend *nb)
{
    if (!nb)
        return;
    /* First no more kicks, then the backend stops its own watches and timers. */
    loop_remove_fd(nb->loop, nb->kick_h);
    nb->ops->close(nb);
    close(nb->kickfd);
    pthread_mutex_destroy(&nb->rx_lock);
    free(nb);
}
