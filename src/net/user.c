/* The user backend: libslirp (4.x) user-mode NAT, with QEMU's default addresses.
 *
 * Event-loop integration. libslirp offers two ways to learn its sockets: the
 * register_poll_fd/unregister_poll_fd callbacks (informational, and not called for every
 * socket on every path) and the poll-set protocol slirp_pollfds_fill()/slirp_pollfds_poll(),
 * which is authoritative: each fill lists every fd slirp wants watched now, with the events,
 * and shortens the timeout to slirp's own TCP timers (2 ms "fast", ~500 ms "slow", at most
 * 1 s). We use the second and keep the callbacks as no-ops. One "round", always on the loop
 * thread, is:
 *   1. collect readiness from a private epoll set (epoll_wait with timeout 0) into the
 *      revents of the previous fill's entries (epoll data = entry index);
 *   2. slirp_pollfds_poll() with those revents (it also runs slirp's TCP timers);
 *   3. slirp_pollfds_fill() into a fresh entry array;
 *   4. synchronise the private epoll set with it: EPOLL_CTL_MOD every listed fd (ADD when
 *      MOD says ENOENT, which also covers an fd number slirp closed and reused: closing drops
 *      it from the set), DEL the fds of the previous round that are no longer listed;
 *   5. arm the round timer at now + the timeout slirp asked for.
 * The private epoll fd is watched by the main loop (readable when any slirp fd is ready), so a
 * round runs when a slirp socket is ready, when slirp's timeout expires, and after frames
 * from the guest were fed to slirp_input() (which can create sockets and queue data to
 * write). SlirpCb version 4 timers (timer_new_opaque, for IPv6 router advertisements) are
 * plain loop timers that call slirp_handle_timer().
 *
 * Threads and locks. libslirp is not thread-safe: every call into it is made on the loop
 * thread, except slirp_new()/slirp_add_hostfwd() in open (before the backend's watches
 * exist) and slirp_cleanup() in close (after they are all gone). So slirp needs no lock.
 * Frames from the guest (any thread) go through a bounded queue (txq, under txq_lock, a leaf
 * lock) to the loop thread, woken through net_backend_wake() when the queue becomes
 * non-empty. Frames slirp emits go straight to the receiver; while the device has no room
 * they wait in a bounded queue (rxq, loop thread only) and beyond its bound are dropped and
 * counted: TCP retransmits, as libslirp's send_packet contract expects. */
#include <errno.h>
#include <libslirp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/time.h"
#include "net/net_priv.h"
#include "net/netspec.h"

#define USER_MAX_FWD     64
#define USER_TXQ_FRAMES  256 /* guest -> slirp frames waiting for the loop thread */
#define USER_TXQ_BYTES   (2u << 20)
#define USER_RXQ_FRAMES  64 /* slirp -> guest frames held while the device is full */
#define USER_EPOLL_BATCH 64
#define USER_GUEST_NET   0x0a000200u /* 10.0.2.0/24 */
#define USER_GUEST_MASK  0xffffff00u
#define USER_DHCP_START  0x0a00020fu /* 10.0.2.15 */

struct user_fwd {
    bool udp;
    struct in_addr haddr; /* INADDR_ANY: every host address */
    struct in_addr gaddr; /* 0: USER_DHCP_START */
    uint16_t hport, gport;
};

struct user_cfg {
    unsigned nfwd;
    struct user_fwd fwd[USER_MAX_FWD];
};

struct user_frame {
    struct user_frame *next;
    size_t len;
    uint8_t data[];
};

struct user_pollfd {
    int fd;
    int events;  /* SLIRP_POLL_* slirp asked for */
    int revents; /* SLIRP_POLL_* found in step 1 of a round */
};

struct user_backend;

struct user_timer {
    struct user_backend *ub;
    struct loop_timer *lt; /* NULL once close() has stopped it */
    int id;                /* SlirpTimerId, or -1 for a timer_new() one that calls cb */
    SlirpTimerCb cb;
    void *cb_opaque;
    struct user_timer *next;
};

struct user_backend {
    struct net_backend *nb;
    struct loop *loop;
    Slirp *slirp;
    bool closing; /* slirp_cleanup() runs: frames it emits are dropped */

    /* Loop thread only (see the comment at the top for open/close). */
    int epfd;
    struct loop_fd *ep_h;
    struct loop_timer *round_t;
    struct user_pollfd *pfds; /* the last fill */
    size_t npfds, pfds_cap;
    int *reg; /* fds in epfd after the last synchronisation */
    size_t nreg, reg_cap;
    uint32_t *fd_round; /* [fd]: round in which fd was last put in epfd; 0 = not in it */
    size_t fd_round_cap;
    uint32_t round;
    struct user_frame *rxq, **rxq_tail;
    unsigned rxq_len;
    struct user_timer *timers;

    /* Under txq_lock. */
    pthread_mutex_t txq_lock;
    struct user_frame *txq, **txq_tail;
    unsigned txq_len;
    size_t txq_bytes;
};

/* ---- parsing: hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT ---- */

#define USER_FWD_SYNTAX "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"

/* Copies s[0..len) as a string into dst (size n), cut to fit; false when it was cut. */
static bool user_copy(char *dst, size_t n, const char *s, size_t len)
{
    bool fits = len < n;

    if (!fits)
        len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return fits;
}

/* One side, "ADDR:PORT" = s[0..len). `side` is "host" or "guest". */
static int user_parse_fwd_side(const char *s, size_t len, const char *side, struct in_addr *addr,
                               uint16_t *port, char *err)
{
    const char *colon = memrchr(s, ':', len);
    char a[64], p[64], q[64];

    if (!colon) {
        user_copy(a, sizeof(a), s, len);
        net_err(err, "user: hostfwd: %s side '%s' lacks ':PORT' (expected " USER_FWD_SYNTAX ")",
                side, netspec_quote(a, q, sizeof(q)));
        return -EINVAL;
    }
    addr->s_addr = 0;
    if (colon > s &&
        (!user_copy(a, sizeof(a), s, (size_t)(colon - s)) || inet_pton(AF_INET, a, addr) != 1)) {
        net_err(err, "user: hostfwd: %s address '%s' is not an IPv4 address", side,
                netspec_quote(a, q, sizeof(q)));
        return -EINVAL;
    }
    if (!user_copy(p, sizeof(p), colon + 1, len - (size_t)(colon + 1 - s)) ||
        netspec_parse_port(p, port) < 0) {
        net_err(err, "user: hostfwd: %s port '%s' is not a number in 1..65535", side,
                netspec_quote(p, q, sizeof(q)));
        return -EINVAL;
    }
    return 0;
}

static int user_parse_hostfwd(struct user_cfg *c, const char *v, char *err)
{
    const char *colon = strchr(v, ':'), *rest, *dash;
    struct user_fwd f = {0};
    char q[64];
    int r;

    if (c->nfwd == USER_MAX_FWD) {
        net_err(err, "user: hostfwd: more than %d forwards", USER_MAX_FWD);
        return -EINVAL;
    }
    if (!colon || !(dash = strchr(colon + 1, '-'))) {
        net_err(err, "user: hostfwd: '%s' is not " USER_FWD_SYNTAX, netspec_quote(v, q, sizeof(q)));
        return -EINVAL;
    }
    if (colon - v == 3 && !memcmp(v, "udp", 3)) {
        f.udp = true;
    } else if (!(colon == v || (colon - v == 3 && !memcmp(v, "tcp", 3)))) {
        char proto[64];

        user_copy(proto, sizeof(proto), v, (size_t)(colon - v));
        net_err(err, "user: hostfwd: protocol '%s' is neither tcp nor udp",
                netspec_quote(proto, q, sizeof(q)));
        return -EINVAL;
    }
    rest = colon + 1;
    r = user_parse_fwd_side(rest, (size_t)(dash - rest), "host", &f.haddr, &f.hport, err);
    if (r < 0)
        return r;
    r = user_parse_fwd_side(dash + 1, strlen(dash + 1), "guest", &f.gaddr, &f.gport, err);
    if (r < 0)
        return r;
    if (f.gaddr.s_addr && (ntohl(f.gaddr.s_addr) & USER_GUEST_MASK) != USER_GUEST_NET) {
        char a[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &f.gaddr, a, sizeof(a));
        net_err(err, "user: hostfwd: guest address %s is outside the guest network 10.0.2.0/24", a);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->nfwd; i++) {
        const struct user_fwd *o = &c->fwd[i];

        if (o->udp == f.udp && o->hport == f.hport &&
            (o->haddr.s_addr == f.haddr.s_addr || !o->haddr.s_addr || !f.haddr.s_addr)) {
            net_err(err, "user: hostfwd: %s host port %u is forwarded twice", f.udp ? "udp" : "tcp",
                    f.hport);
            return -EINVAL;
        }
    }
    c->fwd[c->nfwd++] = f;
    return 0;
}

static int user_parse_key(void *opaque, const char *key, const char *value, char *err)
{
    if (strcmp(key, "hostfwd"))
        return -ENOENT;
    return user_parse_hostfwd(opaque, value, err);
}

static int user_parse_done(void *opaque, char *err)
{
    return 0;
}

/* ---- receive: slirp -> guest ---- */

/* Loop thread: hands held frames to the device, oldest first. */
static void user_flush_rx(struct user_backend *ub)
{
    while (ub->rxq) {
        struct user_frame *f = ub->rxq;

        if (net_backend_deliver(ub->nb, f->data, f->len) == NET_HELD)
            return;
        ub->rxq = f->next;
        if (!ub->rxq)
            ub->rxq_tail = &ub->rxq;
        ub->rxq_len--;
        free(f);
    }
}

/* SlirpCb.send_packet: slirp emits a frame for the guest. Loop thread (inside a slirp call).
 * Always "succeeds": a dropped frame is counted, and TCP recovers from it. */
static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
    struct user_backend *ub = opaque;
    struct user_frame *f;

    if (ub->closing)
        return (ssize_t)len;
    if (!ub->rxq && net_backend_deliver(ub->nb, buf, len) != NET_HELD)
        return (ssize_t)len;
    if (ub->rxq_len >= USER_RXQ_FRAMES || !(f = malloc(sizeof(*f) + len))) {
        net_backend_count_rx_drop(ub->nb);
        return (ssize_t)len;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->data, buf, len);
    *ub->rxq_tail = f;
    ub->rxq_tail = &f->next;
    ub->rxq_len++;
    return (ssize_t)len;
}

/* ---- the poll-set rounds ---- */

static int user_add_poll(int fd, int events, void *opaque)
{
    struct user_backend *ub = opaque;

    if (ub->npfds == ub->pfds_cap) {
        size_t cap = ub->pfds_cap ? ub->pfds_cap * 2 : 32;
        struct user_pollfd *p = realloc(ub->pfds, cap * sizeof(*p));

        /* slirp treats -1 as "not polled this round". */
        if (!p)
            return -1;
        ub->pfds = p;
        ub->pfds_cap = cap;
    }
    ub->pfds[ub->npfds] = (struct user_pollfd){.fd = fd, .events = events};
    return (int)ub->npfds++;
}

static int user_get_revents(int idx, void *opaque)
{
    struct user_backend *ub = opaque;

    if (idx < 0 || (size_t)idx >= ub->npfds)
        return 0;
    return ub->pfds[idx].revents;
}

static uint32_t user_epoll_events(int ev)
{
    return (ev & SLIRP_POLL_IN ? EPOLLIN : 0) | (ev & SLIRP_POLL_OUT ? EPOLLOUT : 0) |
           (ev & SLIRP_POLL_PRI ? EPOLLPRI : 0);
}

static int user_slirp_events(uint32_t ev)
{
    return (ev & EPOLLIN ? SLIRP_POLL_IN : 0) | (ev & EPOLLOUT ? SLIRP_POLL_OUT : 0) |
           (ev & EPOLLPRI ? SLIRP_POLL_PRI : 0) | (ev & EPOLLERR ? SLIRP_POLL_ERR : 0) |
           (ev & (EPOLLHUP | EPOLLRDHUP) ? SLIRP_POLL_HUP : 0);
}

/* Step 1: readiness of the previous fill's fds. Level-triggered, so a batch that does not fit
 * is picked up by the next round. */
static void user_collect(struct user_backend *ub)
{
    struct epoll_event evs[USER_EPOLL_BATCH];
    size_t passes = ub->npfds / USER_EPOLL_BATCH + 1;

    for (size_t i = 0; i < ub->npfds; i++)
        ub->pfds[i].revents = 0;
    for (size_t pass = 0; pass < passes; pass++) {
        int n = epoll_wait(ub->epfd, evs, USER_EPOLL_BATCH, 0);

        for (int i = 0; i < n; i++) {
            uint64_t idx = evs[i].data.u64;

            if (idx < ub->npfds)
                ub->pfds[idx].revents |= user_slirp_events(evs[i].events);
        }
        if (n < USER_EPOLL_BATCH)
            break;
    }
}

static bool user_fd_round_reserve(struct user_backend *ub, int fd)
{
    size_t need = (size_t)fd + 1, cap;
    uint32_t *p;

    if (need <= ub->fd_round_cap)
        return true;
    cap = ub->fd_round_cap ? ub->fd_round_cap : 64;
    while (cap < need)
        cap *= 2;
    p = realloc(ub->fd_round, cap * sizeof(*p));
    if (!p)
        return false;
    memset(p + ub->fd_round_cap, 0, (cap - ub->fd_round_cap) * sizeof(*p));
    ub->fd_round = p;
    ub->fd_round_cap = cap;
    return true;
}

/* Step 4: makes the private epoll set what the last fill asked for. */
static void user_sync(struct user_backend *ub)
{
    size_t n = 0;

    if (++ub->round == 0)
        ub->round = 1;
    for (size_t i = 0; i < ub->npfds; i++) {
        struct user_pollfd *p = &ub->pfds[i];
        struct epoll_event ev = {.events = user_epoll_events(p->events), .data.u64 = i};
        int r;

        if (p->fd < 0 || !user_fd_round_reserve(ub, p->fd))
            continue;
        r = epoll_ctl(ub->epfd, ub->fd_round[p->fd] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev);
        if (r < 0 && errno == ENOENT)
            r = epoll_ctl(ub->epfd, EPOLL_CTL_ADD, p->fd, &ev);
        else if (r < 0 && errno == EEXIST)
            r = epoll_ctl(ub->epfd, EPOLL_CTL_MOD, p->fd, &ev);
        if (r < 0) {
            log_guest("user: cannot watch slirp fd %d: %s", p->fd, strerror(errno));
            continue;
        }
        ub->fd_round[p->fd] = ub->round;
    }
    for (size_t i = 0; i < ub->nreg; i++) {
        int fd = ub->reg[i];

        if (ub->fd_round[fd] && ub->fd_round[fd] != ub->round) {
            /* ENOENT/EBADF: slirp closed it, which removed it already. */
            epoll_ctl(ub->epfd, EPOLL_CTL_DEL, fd, NULL);
            ub->fd_round[fd] = 0;
        }
    }
    if (ub->reg_cap < ub->npfds) {
        int *p = realloc(ub->reg, ub->npfds * sizeof(*p));

        if (!p) {
            /* Without the list the next round cannot DEL these; they stay watched but harmless
             * (their events map to no entry). */
            ub->nreg = 0;
            return;
        }
        ub->reg = p;
        ub->reg_cap = ub->npfds;
    }
    for (size_t i = 0; i < ub->npfds; i++) {
        int fd = ub->pfds[i].fd;

        if (fd >= 0 && (size_t)fd < ub->fd_round_cap && ub->fd_round[fd] == ub->round)
            ub->reg[n++] = fd;
    }
    ub->nreg = n;
}

/* Loop thread: one round (see the top of the file). */
static void user_round(struct user_backend *ub)
{
    uint32_t timeout = UINT32_MAX;

    user_collect(ub);
    slirp_pollfds_poll(ub->slirp, 0, user_get_revents, ub);
    ub->npfds = 0;
    slirp_pollfds_fill(ub->slirp, &timeout, user_add_poll, ub);
    user_sync(ub);
    if (timeout > 1000)
        timeout = 1000;
    loop_mod_timer(ub->loop, ub->round_t, time_now_ns() + (uint64_t)timeout * 1000000u);
}

static void user_epoll_cb(void *opaque, int fd, unsigned revents)
{
    user_round(opaque);
}

static void user_round_timer_cb(void *opaque)
{
    user_round(opaque);
}

/* ---- slirp's other callbacks ---- */

static void user_guest_error(const char *msg, void *opaque)
{
    log_guest("user: guest error: %s", msg);
}

static int64_t user_clock_get_ns(void *opaque)
{
    return (int64_t)time_now_ns();
}

/* Loop thread. */
static void user_timer_fire(void *opaque)
{
    struct user_timer *ut = opaque;

    if (ut->id >= 0)
        slirp_handle_timer(ut->ub->slirp, (SlirpTimerId)ut->id, ut->cb_opaque);
    else
        ut->cb(ut->cb_opaque);
}

static void *user_timer_create(struct user_backend *ub, int id, SlirpTimerCb cb, void *cb_opaque)
{
    struct user_timer *ut = calloc(1, sizeof(*ut));

    if (!ut)
        return NULL;
    ut->ub = ub;
    ut->id = id;
    ut->cb = cb;
    ut->cb_opaque = cb_opaque;
    if (loop_add_timer(ub->loop, LOOP_TIMER_OFF, user_timer_fire, ut, &ut->lt) < 0) {
        free(ut);
        return NULL;
    }
    ut->next = ub->timers;
    ub->timers = ut;
    return ut;
}

static void *user_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    return user_timer_create(opaque, -1, cb, cb_opaque);
}

static void *user_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    return user_timer_create(opaque, (int)id, NULL, cb_opaque);
}

static void user_timer_free(void *timer, void *opaque)
{
    struct user_backend *ub = opaque;
    struct user_timer **pp, *ut = timer;

    if (!ut)
        return;
    for (pp = &ub->timers; *pp; pp = &(*pp)->next) {
        if (*pp == ut) {
            *pp = ut->next;
            break;
        }
    }
    loop_del_timer(ub->loop, ut->lt);
    free(ut);
}

/* expire_ms is on user_clock_get_ns()'s clock, in milliseconds. */
static void user_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    struct user_timer *ut = timer;
    uint64_t deadline;

    if (!ut || !ut->lt)
        return;
    if (expire_ms <= 0)
        deadline = 0;
    else if ((uint64_t)expire_ms >= (LOOP_TIMER_OFF - 1) / 1000000u)
        deadline = LOOP_TIMER_OFF - 1;
    else
        deadline = (uint64_t)expire_ms * 1000000u;
    loop_mod_timer(ut->ub->loop, ut->lt, deadline);
}

/* The poll set is rebuilt from slirp_pollfds_fill() every round, which lists every socket;
 * these announcements add nothing. */
static void user_register_poll_fd(int fd, void *opaque)
{
}

static void user_unregister_poll_fd(int fd, void *opaque)
{
}

/* slirp can take more data from a guestfwd (we have none); a round costs little. */
static void user_notify(void *opaque)
{
    struct user_backend *ub = opaque;

    net_backend_wake(ub->nb);
}

static void user_init_completed(Slirp *slirp, void *opaque)
{
    struct user_backend *ub = opaque;

    ub->slirp = slirp;
}

static const SlirpCb user_callbacks = {
    .send_packet = user_send_packet,
    .guest_error = user_guest_error,
    .clock_get_ns = user_clock_get_ns,
    .timer_new = user_timer_new,
    .timer_free = user_timer_free,
    .timer_mod = user_timer_mod,
    .register_poll_fd = user_register_poll_fd,
    .unregister_poll_fd = user_unregister_poll_fd,
    .notify = user_notify,
    .init_completed = user_init_completed,
    .timer_new_opaque = user_timer_new_opaque,
};

/* ---- send: guest -> slirp ---- */

static int user_send(struct net_backend *nb, const struct net_vhdr *hdr, const struct iovec *iov,
                     int iovcnt, size_t len)
{
    struct user_backend *ub = nb->priv;
    struct user_frame *f = malloc(sizeof(*f) + len);
    size_t off = 0;
    bool was_empty;

    if (!f)
        return -ENOMEM;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(f->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    f->next = NULL;
    f->len = len;
    pthread_mutex_lock(&ub->txq_lock);
    if (ub->txq_len >= USER_TXQ_FRAMES || ub->txq_bytes + len > USER_TXQ_BYTES) {
        pthread_mutex_unlock(&ub->txq_lock);
        free(f);
        return -ENOBUFS;
    }
    /* user_kick() takes the whole queue after the wake-up was consumed, so only the first
     * frame of a batch needs to wake the loop. */
    was_empty = ub->txq == NULL;
    *ub->txq_tail = f;
    ub->txq_tail = &f->next;
    ub->txq_len++;
    ub->txq_bytes += len;
    pthread_mutex_unlock(&ub->txq_lock);
    if (was_empty)
        net_backend_wake(nb);
    return 0;
}

/* Loop thread: frames from the guest into slirp, held frames to the guest, then a round
 * because slirp_input() may have opened sockets or queued data for them. */
static void user_kick(struct net_backend *nb)
{
    struct user_backend *ub = nb->priv;
    struct user_frame *list, *next;

    pthread_mutex_lock(&ub->txq_lock);
    list = ub->txq;
    ub->txq = NULL;
    ub->txq_tail = &ub->txq;
    ub->txq_len = 0;
    ub->txq_bytes = 0;
    pthread_mutex_unlock(&ub->txq_lock);
    for (struct user_frame *f = list; f; f = next) {
        next = f->next;
        slirp_input(ub->slirp, f->data, (int)f->len);
        free(f);
    }
    user_flush_rx(ub);
    if (list)
        user_round(ub);
}

/* ---- open / close ---- */

static void user_free_frames(struct user_frame *f)
{
    while (f) {
        struct user_frame *next = f->next;

        free(f);
        f = next;
    }
}

static void user_free(struct user_backend *ub)
{
    /* Stop every loop callback of ours first; after that slirp is ours alone. */
    loop_remove_fd(ub->loop, ub->ep_h);
    loop_del_timer(ub->loop, ub->round_t);
    for (struct user_timer *ut = ub->timers; ut; ut = ut->next) {
        loop_del_timer(ub->loop, ut->lt);
        ut->lt = NULL;
    }
    ub->closing = true;
    if (ub->slirp)
        slirp_cleanup(ub->slirp);
    while (ub->timers) {
        struct user_timer *ut = ub->timers;

        ub->timers = ut->next;
        free(ut);
    }
    if (ub->epfd >= 0)
        close(ub->epfd);
    user_free_frames(ub->txq);
    user_free_frames(ub->rxq);
    free(ub->pfds);
    free(ub->reg);
    free(ub->fd_round);
    pthread_mutex_destroy(&ub->txq_lock);
    free(ub);
}

static int user_open(struct net_backend *nb, const void *opaque, char *err)
{
    const struct user_cfg *c = opaque;
    SlirpConfig cfg = {
        .version = 4,
        .in_enabled = true,
        .vnetwork.s_addr = htonl(USER_GUEST_NET),
        .vnetmask.s_addr = htonl(USER_GUEST_MASK),
        .vhost.s_addr = htonl(0x0a000202), /* 10.0.2.2 */
        .vdhcp_start.s_addr = htonl(USER_DHCP_START),
        .vnameserver.s_addr = htonl(0x0a000203), /* 10.0.2.3 */
        .in6_enabled = true,
        .vprefix_len = 64,
    };
    struct user_backend *ub = calloc(1, sizeof(*ub));
    int r;

    if (!ub) {
        net_err(err, "user: out of memory");
        return -ENOMEM;
    }
    ub->nb = nb;
    ub->loop = nb->loop;
    ub->rxq_tail = &ub->rxq;
    ub->txq_tail = &ub->txq;
    pthread_mutex_init(&ub->txq_lock, NULL);
    /* QEMU's IPv6 defaults: fec0::/64, host fec0::2, DNS fec0::3. */
    inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
    ub->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ub->epfd < 0) {
        r = -errno;
        net_err(err, "user: cannot create an epoll set: %s", strerror(-r));
        goto err_free;
    }
    ub->slirp = slirp_new(&cfg, &user_callbacks, ub);
    if (!ub->slirp) {
        r = -ENOMEM;
        net_err(err, "user: libslirp %s could not start", slirp_version_string());
        goto err_free;
    }
    for (unsigned i = 0; i < c->nfwd; i++) {
        const struct user_fwd *f = &c->fwd[i];
        struct in_addr gaddr = f->gaddr;
        char a[INET_ADDRSTRLEN];

        if (!gaddr.s_addr)
            gaddr.s_addr = htonl(USER_DHCP_START);
        errno = 0;
        if (slirp_add_hostfwd(ub->slirp, f->udp, f->haddr, f->hport, gaddr, f->gport) < 0) {
            r = errno ? -errno : -EADDRINUSE;
            inet_ntop(AF_INET, &f->haddr, a, sizeof(a));
            net_err(err, "user: hostfwd: cannot listen on %s %s:%u: %s", f->udp ? "udp" : "tcp", a,
                    f->hport, strerror(-r));
            goto err_free;
        }
    }
    r = loop_add_timer(ub->loop, 0, user_round_timer_cb, ub, &ub->round_t);
    if (r == 0)
        r = loop_add_fd(ub->loop, ub->epfd, LOOP_IN, user_epoll_cb, ub, &ub->ep_h);
    if (r < 0) {
        net_err(err, "user: cannot watch slirp's sockets: %s", strerror(-r));
        goto err_free;
    }
    nb->priv = ub;
    return 0;

err_free:
    user_free(ub);
    return r;
}

static void user_close(struct net_backend *nb)
{
    user_free(nb->priv);
}

const struct net_backend_ops user_backend_ops = {
    .name = "user",
    .keys = "hostfwd",
    .cfg_size = sizeof(struct user_cfg),
    .parse_key = user_parse_key,
    .parse_done = user_parse_done,
    .open = user_open,
    .send = user_send,
    .kick = user_kick,
    .close = user_close,
};
