/* Helpers shared by the tests/unit/test_net_*.c programs: numbered test frames and a receiver
 * ("sink") that checks them, counts, and can refuse frames to exercise back-pressure. */
#ifndef TESSERA_TESTS_UNIT_TEST_NET_COMMON_H
#define TESSERA_TESTS_UNIT_TEST_NET_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/loop.h"
#include "net/net.h"

#define TF_HDR 22 /* Ethernet header + 4-byte sequence number + 4-byte length */

static inline void tn_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Frame number seq of length len (>= TF_HDR): broadcast, a local ethertype, then seq and len
 * big-endian, then a pattern that depends on both. */
static inline void tf_fill(uint8_t *f, uint32_t seq, size_t len)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    for (int i = 0; i < 4; i++) {
        f[14 + i] = (uint8_t)(seq >> (24 - 8 * i));
        f[18 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    for (size_t k = TF_HDR; k < len; k++)
        f[k] = (uint8_t)(seq * 31 + k);
}

/* Returns the frame's sequence number, or -1 when it is not an intact tf_fill() frame. */
static inline long tf_check(const uint8_t *f, size_t len)
{
    uint32_t seq = 0, flen = 0;

    if (len < TF_HDR || f[12] != 0x88 || f[13] != 0xb5)
        return -1;
    for (int i = 0; i < 4; i++) {
        seq = seq << 8 | f[14 + i];
        flen = flen << 8 | f[18 + i];
    }
    if (flen != len)
        return -1;
    for (size_t k = TF_HDR; k < len; k++) {
        if (f[k] != (uint8_t)(seq * 31 + k))
            return -1;
    }
    return (long)seq;
}

/* A pseudo-random frame length in TF_HDR..max for frame seq. */
static inline size_t tf_len(uint32_t seq, size_t max)
{
    uint32_t x = seq * 2654435761u;

    x ^= x >> 13;
    return TF_HDR + x % (max - TF_HDR + 1);
}

enum sink_mode {
    SINK_ACCEPT,
    SINK_REFUSE,      /* return 0: no room */
    SINK_REJECT,      /* return -1: a refused frame, dropped */
    SINK_REFUSE_KICK, /* every other call: return 0 and call net_backend_rx_ready() at once */
};

struct sink {
    struct loop *loop;
    struct net_backend *nb;
    atomic_int mode;
    atomic_uint calls;
    atomic_uint taken;
    atomic_uint bad;          /* not an intact frame */
    atomic_uint out_of_order; /* sequence number not the next one */
    atomic_uint off_thread;   /* called on some thread other than the loop's */
    atomic_uint next_seq;
    atomic_uint toggle;
    atomic_ullong bytes;
    bool raw; /* frames are not tf_fill() frames: only count them */
    /* The last frame taken, for raw checks. */
    uint8_t last[2048];
    atomic_size_t last_len;
};

static inline ssize_t sink_receive(void *opaque, const struct net_vhdr *hdr, const void *frame,
                                   size_t len)
{
    struct sink *s = opaque;
    int mode = atomic_load(&s->mode);
    long seq;

    atomic_fetch_add(&s->calls, 1);
    if (s->loop && !loop_in_thread(s->loop))
        atomic_fetch_add(&s->off_thread, 1);
    if (mode == SINK_REFUSE)
        return 0;
    if (mode == SINK_REJECT)
        return -1;
    if (mode == SINK_REFUSE_KICK && atomic_fetch_add(&s->toggle, 1) % 2 == 0) {
        net_backend_rx_ready(s->nb);
        return 0;
    }
    if (!s->raw) {
        seq = tf_check(frame, len);
        if (seq < 0)
            atomic_fetch_add(&s->bad, 1);
        else if ((unsigned)seq != atomic_load(&s->next_seq))
            atomic_fetch_add(&s->out_of_order, 1);
        if (seq >= 0)
            atomic_store(&s->next_seq, (unsigned)seq + 1);
    }
    if (len <= sizeof(s->last)) {
        memcpy(s->last, frame, len);
        atomic_store(&s->last_len, len);
    }
    atomic_fetch_add(&s->bytes, len);
    atomic_fetch_add(&s->taken, 1);
    return (ssize_t)len;
}

static inline void sink_init(struct sink *s, struct loop *loop, struct net_backend *nb)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->nb = nb;
}

/* Polls until *v >= want or timeout_ms pass. */
static inline bool tn_wait(atomic_uint *v, unsigned want, unsigned timeout_ms)
{
    for (unsigned i = 0; i < timeout_ms; i++) {
        if (atomic_load(v) >= want)
            return true;
        tn_sleep_ms(1);
    }
    return atomic_load(v) >= want;
}

/* Sends tf frame seq, retrying while the backend says it has no room (at most ~5 s). */
static inline int tf_send(struct net_backend *nb, uint32_t seq, size_t len)
{
    static uint8_t buf[NET_FRAME_MAX];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct iovec iov[3];
    int r;

    pthread_mutex_lock(&lock);
    tf_fill(buf, seq, len);
    /* Three pieces, as a device gathering from descriptors would pass them. */
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = 14};
    iov[1] = (struct iovec){.iov_base = buf + 14, .iov_len = (len - 14) / 2};
    iov[2] =
        (struct iovec){.iov_base = buf + 14 + iov[1].iov_len, .iov_len = len - 14 - iov[1].iov_len};
    for (int tries = 0; tries < 5000; tries++) {
        r = net_backend_send(nb, iov, 3);
        if (r != -EAGAIN && r != -ENOBUFS)
            break;
        tn_sleep_ms(1);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

#endif
