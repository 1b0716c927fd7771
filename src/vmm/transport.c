/* Transports (transport.h): the front that every kind goes through, and the plain kind. */
#include "vmm/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/transport_int.h"

static ssize_t plain_read(struct transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(t->fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        return n;
    }
}

static ssize_t plain_write(struct transport *t, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);

        if (n < 0 && errno == ENOTSOCK)
            n = write(t->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        return n;
    }
}

static const struct transport_ops plain_ops = {
    .tls = false,
    .read = plain_read,
    .write = plain_write,
};

struct transport *transport_new(const struct transport_ops *ops, int fd)
{
    struct transport *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ops = ops;
    t->fd = fd;
    atomic_init(&t->written, 0);
    return t;
}

int transport_plain(int fd, bool owns_fd, struct transport **out)
{
    struct transport *t = transport_new(&plain_ops, fd);

    if (!t)
        return -ENOMEM;
    t->owns_fd = owns_fd;
    *out = t;
    return 0;
}

ssize_t transport_read(struct transport *t, void *buf, size_t len)
{
    return t->ops->read(t, buf, len);
}

ssize_t transport_write(struct transport *t, const void *buf, size_t len)
{
    ssize_t n = t->ops->write(t, buf, len);

    if (n > 0)
        atomic_fetch_add_explicit(&t->written, (uint64_t)n, memory_order_relaxed);
    return n;
}

int transport_write_all(struct transport *t, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = transport_write(t, p, len);

        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

uint64_t transport_bytes_written(const struct transport *t)
{
    return atomic_load_explicit(&t->written, memory_order_relaxed);
}

const char *transport_error(const struct transport *t, int ret)
{
    if (ret == -ETIMEDOUT)
        return "no byte moved within the timeout";
    if (ret == -EPROTO && t->msg[0])
        return t->msg;
    return strerror(-ret);
}

void transport_end_writes(struct transport *t)
{
    if (t->ops->end_writes)
        t->ops->end_writes(t);
    shutdown(t->fd, SHUT_WR);
}

void transport_shutdown(struct transport *t)
{
    shutdown(t->fd, SHUT_RDWR);
}

void transport_close(struct transport *t)
{
    if (!t)
        return;
    if (t->ops->destroy)
        t->ops->destroy(t);
    if (t->owns_fd && t->fd >= 0)
        close(t->fd);
    free(t);
}

bool transport_is_tls(const struct transport *t)
{
    return t->ops->tls;
}
