/* A byte ring followed by readers at absolute offsets. See bytering.h for the contract. */
#include "base/bytering.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct bytering {
    /* Immutable after bytering_create(). */
    size_t cap;
    int wake_fd;

    /* Protected by `lock`. The byte at offset o lives at buf[o % cap]; the ring holds the
     * offsets [end - min(end, cap), end). */
    pthread_mutex_t lock;
    uint8_t *buf;
    uint64_t end;
    uint64_t dropped;
    bool signalled; /* wake_fd was written since the last bytering_ack_wake() */
};

static uint64_t ring_start_locked(const struct bytering *r)
{
    return r->end > r->cap ? r->end - r->cap : 0;
}

int bytering_create(size_t capacity, struct bytering **out)
{
    struct bytering *r;
    int err;

    if (!capacity || !out)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cap = capacity;
    r->buf = malloc(capacity);
    if (!r->buf) {
        err = -ENOMEM;
        goto free_ring;
    }
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0) {
        err = -errno;
        goto free_ring;
    }
    err = -pthread_mutex_init(&r->lock, NULL);
    if (err)
        goto close_fd;
    *out = r;
    return 0;

close_fd:
    close(r->wake_fd);
free_ring:
    free(r->buf);
    free(r);
    return err;
}

void bytering_destroy(struct bytering *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    close(r->wake_fd);
    free(r->buf);
    free(r);
}

void bytering_write(struct bytering *r, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t one = 1;
    bool signal;

    if (!len)
        return;
    pthread_mutex_lock(&r->lock);
    if (len > r->cap) { /* only the tail survives; the head still moves the offsets */
        r->end += len - r->cap;
        p += len - r->cap;
        len = r->cap;
    }
    while (len) {
        size_t at = (size_t)(r->end % r->cap), n = r->cap - at;

        if (n > len)
            n = len;
        memcpy(r->buf + at, p, n);
        p += n;
        len -= n;
        r->end += n;
    }
    signal = !r->signalled;
    r->signalled = true;
    pthread_mutex_unlock(&r->lock);
    /* A non-blocking eventfd write fails only when the counter would overflow, i.e. it is
     * readable already: nothing to do then. */
    if (signal) {
        while (write(r->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
}

size_t bytering_read(struct bytering *r, uint64_t *pos, void *buf, size_t len, uint64_t *skipped)
{
    uint8_t *p = buf;
    uint64_t start, avail;
    size_t done = 0;

    pthread_mutex_lock(&r->lock);
    start = ring_start_locked(r);
    *skipped = 0;
    if (*pos < start) {
        *skipped = start - *pos;
        r->dropped += *skipped;
        *pos = start;
    }
    if (*pos > r->end)
        *pos = r->end;
    avail = r->end - *pos;
    if (len > avail)
        len = (size_t)avail;
    while (done < len) {
        size_t at = (size_t)(*pos % r->cap), n = r->cap - at;

        if (n > len - done)
            n = len - done;
        memcpy(p + done, r->buf + at, n);
        done += n;
        *pos += n;
    }
    pthread_mutex_unlock(&r->lock);
    return done;
}

void bytering_bounds(struct bytering *r, uint64_t *start, uint64_t *end)
{
    pthread_mutex_lock(&r->lock);
    if (start)
        *start = ring_start_locked(r);
    if (end)
        *end = r->end;
    pthread_mutex_unlock(&r->lock);
}

int bytering_wake_fd(const struct bytering *r)
{
    return r->wake_fd;
}

void bytering_ack_wake(struct bytering *r)
{
    uint64_t count;

    /* The eventfd first, the flag second. The other order loses wake-ups for good: a writer
     * that saw the flag clear between the two would signal, this read would eat its signal,
     * and with the flag left set no writer would ever signal again. In this order a writer
     * between the two finds the flag still set and does not signal, which is fine: the caller
     * reads its bytes after this returns. EAGAIN (nothing to read) is fine too. */
    while (read(r->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&r->lock);
    r->signalled = false;
    pthread_mutex_unlock(&r->lock);
}

void bytering_get_stats(struct bytering *r, struct bytering_stats *out)
{
    pthread_mutex_lock(&r->lock);
    out->written = r->end;
    out->dropped = r->dropped;
    pthread_mutex_unlock(&r->lock);
}
