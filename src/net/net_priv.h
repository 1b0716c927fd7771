/* Inside the net module: the backend descriptor and the helpers that net.c offers the
 * backends. Only src/net/ and its tests include this. */
#ifndef TESSERA_NET_NET_PRIV_H
#define TESSERA_NET_NET_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/net.h"

/* One network backend kind. Each lives in its own file and is listed once in net.c's
 * registry; nothing else names it. Threads are as in net.h. */
struct net_backend_ops {
    const char *name; /* the spec's first word */
    const char *keys; /* the keys it accepts, for error messages: "hostfwd" */
    size_t cfg_size;  /* the parsed configuration, zeroed before the first parse_key() */

    /* Parses one key=value of the spec into cfg. Returns 0, -ENOENT for a key it does not know
     * (the caller words that error), or -EINVAL with a message in err (NET_ERR_LEN) that
     * starts with "<name>: <key>: ". Pure: no I/O, no name lookups (the fuzz target runs it). */
    int (*parse_key)(void *cfg, const char *key, const char *value, char *err);
    /* Checks the whole configuration after the last key (required keys, conflicts). Returns 0
     * or -EINVAL with a message in err. Pure. */
    int (*parse_done)(void *cfg, char *err);
    /* Frees what parse_key() allocated inside cfg (not cfg itself). Optional. */
    void (*cfg_free)(void *cfg);

    /* Opens the backend from a cfg that parse_done() accepted; sets nb->priv. cfg stays the
     * caller's. May register fds and timers with nb->loop; their callbacks may deliver frames
     * at once. Returns 0 or -errno with a message in err. Set-up thread. */
    int (*open)(struct net_backend *nb, const void *cfg, char *err);
    /* Hands one frame on; `len` (sum of the iov lengths) is already checked to be within
     * NET_FRAME_MIN..NET_FRAME_MAX and iovcnt within 1..NET_IOV_MAX. hdr is NULL for a plain
     * frame, or a header net.c checked against nb->offload_caps (so always NULL for a
     * backend without caps). Returns 0 or -errno (dropped; net.c counts it). Any thread,
     * non-blocking. */
    int (*send)(struct net_backend *nb, const struct net_vhdr *hdr, const struct iovec *iov,
                int iovcnt, size_t len);
    /* Sets the offloads the host side may use towards the guest (net_backend_set_offload(),
     * already checked against nb->offload_caps). Optional: only for backends with caps. */
    int (*set_offload)(struct net_backend *nb, unsigned offloads);
    /* Loop thread, after net_backend_wake(): deliver what was held back, resume reading, do
     * queued work. Spurious calls must be harmless. */
    void (*kick)(struct net_backend *nb);
    /* Stops everything and frees nb->priv. Called after net.c stopped kicks. Set-up
     * thread. */
    void (*close)(struct net_backend *nb);
};

extern const struct net_backend_ops user_backend_ops;
extern const struct net_backend_ops tap_backend_ops;
extern const struct net_backend_ops socket_backend_ops;

/* net.c owns everything here except priv. */
struct net_backend {
    const struct net_backend_ops *ops; /* immutable */
    struct loop *loop;                 /* immutable */
    void *priv;                        /* the backend's own state, set by ops->open */
    unsigned offload_caps;             /* NET_OFFLOAD_*, set by ops->open, then immutable */

    int kickfd; /* eventfd: net_backend_wake() -> ops->kick on the loop thread */
    struct loop_fd *kick_h;

    /* The receiver; rx_lock is held while it runs (net_backend_set_receiver()'s guarantee). */
    pthread_mutex_t rx_lock;
    net_receive_fn rx_fn;
    void *rx_opaque;
    /* Set before each receiver call and left set when it returns 0, so that an
     * net_backend_rx_ready() racing with that call still wakes the loop; cleared by the
     * wake-up it triggers. */
    atomic_bool rx_held;

    _Atomic uint64_t tx_frames, tx_bytes, tx_dropped;
    _Atomic uint64_t rx_frames, rx_bytes, rx_dropped;
};

/* Returns the backend kind called name[0..len), or NULL. */
const struct net_backend_ops *net_backend_lookup(const char *name, size_t len);

/* Writes "user, tap or socket" into buf (size n). */
void net_backend_list(char *buf, size_t n);

/* What net_backend_deliver() did with a frame. */
enum net_delivery {
    NET_DELIVERED, /* the device took it (counted in rx_frames/rx_bytes) */
    NET_HELD,      /* no room, or no receiver: keep the frame and wait for ops->kick */
    NET_DROPPED,   /* bad length or refused by the device (counted in rx_dropped) */
};

/* Loop thread only. Hands one frame from the host side to the receiver. */
enum net_delivery net_backend_deliver(struct net_backend *nb, const void *frame, size_t len);

/* The same for a frame with a header from the host side (hdr NULL: plain). The header is
 * checked against the caps first: a bad one drops the frame (counted in rx_dropped). */
enum net_delivery net_backend_deliver_vhdr(struct net_backend *nb, const struct net_vhdr *hdr,
                                           const void *frame, size_t len);

/* Schedules ops->kick on the loop thread. Any thread; async-signal-safe. */
void net_backend_wake(struct net_backend *nb);

/* Counts a frame from the host side that a backend dropped before delivery (malformed, or
 * its bounded queue is full). Any thread. */
void net_backend_count_rx_drop(struct net_backend *nb);

/* Formats one error line into err (NET_ERR_LEN bytes). */
void net_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
