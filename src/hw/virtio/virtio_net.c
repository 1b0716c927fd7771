/* virtio-net (virtio 1.2 §5.1) on a network backend (src/net/net.h): one receive and one
 * transmit queue, a MAC address and link status in config space.
 *
 * Threads: transmit work and received frames are both handled on the VM's event loop thread
 * (a kick only writes the device's eventfd; the backend calls the receiver on the loop), under
 * `lock`, which reset() also takes. When the guest has posted no receive buffer the receiver
 * refuses the frame and the backend holds further frames back until the guest adds buffers
 * (net_backend_rx_ready()).
 *
 * Quiesce: every callback that touches the rings does all of it under `lock`, so once
 * quiesce() has held the lock none is mid-way, and the `quiesced` flag keeps the next ones out:
 * transmit stops, and the receiver refuses frames, which the backend holds back until resume()
 * kicks the device (which calls net_backend_rx_ready()). Frames the backend cannot hold are
 * dropped, as on a real link. The saved state is what the guest reads from config space: the
 * MAC address and the link status.
 *
 * Rate limits (rx_bps, tx_bps, rx_pps, tx_pps and their bursts; base/ratelimit.h) apply at the
 * copy boundary. Transmit: a frame its limit does not allow yet goes back to the ring
 * unconsumed (virtq_unpop()) and the queue is left alone until the limit allows it. Receive:
 * the receiver refuses the frame like a full ring, so the backend keeps it and stops reading
 * its socket or tap (a TCP sender behind it backs off; libslirp's own queue holds a few and
 * then drops, and TCP retransmits). One loop timer, armed for the earliest deadline, resumes
 * either direction; a limit change wakes both at once.
 *
 * Offload (§5.1.6, docs/networks.md): the 12-byte header in front of each frame carries
 * checksum and TCP segmentation requests. Transmit: checked against what the guest
 * negotiated (net_vhdr_check()), then handed to the backend with the frame (a tap passes it
 * to the kernel, net.c finishes it in software for the others); a bad one drops the frame
 * (tx_errors). Receive: the backend's header (a tap's) is checked against what the guest
 * took and passed on; other backends' frames get a zero header. A GSO frame costs the rate
 * limits its bytes and the segments it becomes.
 *
 * Announce: after its state is loaded (an incoming migration, a restore) the NIC announces
 * its MAC, as QEMU's announce-self does, so the switches between it and the other VMs learn
 * its new port at once instead of when the guest next speaks: NET_ANNOUNCE_ROUNDS RARP
 * frames (RFC 903, ethertype 0x8035, a reverse request naming the MAC as sender and target),
 * the first after NET_ANNOUNCE_FIRST_MS, each gap NET_ANNOUNCE_STEP_MS longer than the one
 * before (QEMU's defaults: 5 rounds, 50 ms, +100 ms). They go straight to the backend from a
 * loop timer of their own, whether or not the guest's driver is up. The guest's own
 * gratuitous ARP (VIRTIO_NET_F_GUEST_ANNOUNCE) needs a control queue, which this device does
 * not have; the switches need only the MAC. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "base/loop.h"
#include "base/ratelimit.h"
#include "base/state.h"
#include "base/time.h"
#include "hw/virtio/vdev.h"
#include "hw/virtio/virtqueue.h"
#include "net/net.h"
#include "net/netspec.h"

#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_STATUS     16
#define VIRTIO_NET_S_LINK_UP    1

#define NET_QUEUE_SIZE 256
#define NET_HDR_LEN    NET_VHDR_LEN /* with num_buffers: VERSION_1 always has it (§5.1.6) */
#define NET_RXQ        0
#define NET_TXQ        1
#define NET_TX_BUDGET  256 /* frames per loop turn, so receive work is not starved */

#define NET_ANNOUNCE_ROUNDS   5
#define NET_ANNOUNCE_FIRST_MS 50
#define NET_ANNOUNCE_STEP_MS  100
#define NET_RARP_LEN          60 /* 14 + 28, padded to Ethernet's minimum without FCS */

enum { NET_RL_RX, NET_RL_TX, NET_RL_COUNT };

/* A direction's limit as the options give it (0: unlimited). */
struct vnet_limits {
    uint64_t bps[NET_RL_COUNT], pps[NET_RL_COUNT];
    uint64_t bps_burst, pps_burst;
};

struct virtio_net {
    struct virtio_dev *vdev;
    struct net_backend *nb;
    struct loop *loop;
    struct vdev_kick kick;
    pthread_mutex_t lock;
    bool active;
    bool quiesced; /* between quiesce() and resume(): no ring work */
    bool link_up;
    uint8_t mac[6];
    /* NET_OFFLOAD_* the guest negotiated, set by activate(), cleared by reset(): tx what its
     * frames may ask of the backend (CSUM, HOST_*), rx what it takes (GUEST_*). */
    unsigned tx_offloads, rx_offloads;

    /* Rate limiting, under `lock`, per direction: until (0: not waiting) is when the
     * direction may go again, since (0: none waits) when the frame now held first waited. */
    struct ratelimit rl[NET_RL_COUNT];
    uint64_t until[NET_RL_COUNT], since[NET_RL_COUNT];
    uint64_t throttled[NET_RL_COUNT], throttled_ns[NET_RL_COUNT];
    uint64_t tx_errors, rx_errors; /* frames dropped for a bad virtio-net header */
    struct loop_timer *timer;      /* fires at the earliest until[] */

    /* Announce after a load, on the loop thread: rounds still to send (under `lock`). */
    struct loop_timer *announce_timer;
    unsigned announce_left;

    uint8_t frame[NET_FRAME_MAX]; /* transmit bounce buffer: guest bytes are copied once */
};

/* Arms the timer for the earliest deadline, or disarms it. n->lock held. */
static void vnet_arm_locked(struct virtio_net *n)
{
    uint64_t d = LOOP_TIMER_OFF;

    for (int i = 0; i < NET_RL_COUNT; i++) {
        if (n->until[i] && n->until[i] < d)
            d = n->until[i];
    }
    loop_mod_timer(n->loop, n->timer, d);
}

/* Whether a frame of len bytes may cross in direction dir now. When it may not, the frame
 * is counted as throttled (once) and the timer armed; when it may, its cost is taken if
 * `take`. n->lock held. */
static bool vnet_admit_locked(struct virtio_net *n, int dir, size_t len, unsigned pkts, bool take)
{
    uint64_t now, wait;

    if (!ratelimit_limited(&n->rl[dir]))
        return true;
    now = time_now_ns();
    if (!ratelimit_check(&n->rl[dir], len, pkts, now, &wait)) {
        if (!n->since[dir]) {
            n->since[dir] = now;
            n->throttled[dir]++;
        }
        n->until[dir] = now + wait;
        vnet_arm_locked(n);
        return false;
    }
    if (take) {
        ratelimit_take(&n->rl[dir], len, pkts);
        if (n->since[dir])
            n->throttled_ns[dir] += now - n->since[dir];
        n->since[dir] = 0;
    }
    return true;
}

/* Each offload feature and what it lets frames carry (net.h), by direction. */
static const struct {
    unsigned bit, offload;
    bool rx; /* GUEST_*: host -> guest */
} vnet_offload_bits[] = {
    {VIRTIO_NET_F_CSUM, NET_OFFLOAD_CSUM, false},
    {VIRTIO_NET_F_HOST_TSO4, NET_OFFLOAD_TSO4, false},
    {VIRTIO_NET_F_HOST_TSO6, NET_OFFLOAD_TSO6, false},
    {VIRTIO_NET_F_HOST_ECN, NET_OFFLOAD_ECN, false},
    {VIRTIO_NET_F_GUEST_CSUM, NET_OFFLOAD_CSUM, true},
    {VIRTIO_NET_F_GUEST_TSO4, NET_OFFLOAD_TSO4, true},
    {VIRTIO_NET_F_GUEST_TSO6, NET_OFFLOAD_TSO6, true},
    {VIRTIO_NET_F_GUEST_ECN, NET_OFFLOAD_ECN, true},
};

#define VNET_NOFFLOAD_BITS (sizeof(vnet_offload_bits) / sizeof(vnet_offload_bits[0]))

/* Transmit offload (CSUM, HOST_TSO4/6, HOST_ECN) is offered on every backend: a tap with
 * IFF_VNET_HDR takes the header, and for the others (user, socket) net.c completes checksums
 * and cuts GSO frames in software (net_vhdr_finish()), natively rather than in the emulated
 * guest. Receive offload (GUEST_*) only where the backend carries headers: the others hand
 * over plain frames. A state whose guest took GUEST_* therefore does not load onto a user or
 * socket backend (virtio_mmio_state.c refuses negotiated features the device does not
 * offer). Large
 * received frames go into the "big packets" buffers Linux posts when GUEST_TSO4/6 is
 * negotiated without MRG_RXBUF (64 KiB and more each). */
static uint64_t vnet_features(void *dev)
{
    struct virtio_net *n = dev;
    unsigned caps = net_backend_offload_caps(n->nb);
    uint64_t f = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS);

    for (size_t i = 0; i < VNET_NOFFLOAD_BITS; i++) {
        if (!vnet_offload_bits[i].rx || (caps & vnet_offload_bits[i].offload))
            f |= 1ull << vnet_offload_bits[i].bit;
    }
    return f;
}

/* What negotiated features let each direction's frames carry. A hostile driver may accept
 * TSO without CSUM (the spec's dependency, §5.1.3.1): then TSO does not count, as no GSO
 * frame passes net_vhdr_check() without NEEDS_CSUM. */
static void vnet_offloads(uint64_t features, unsigned *tx, unsigned *rx)
{
    *tx = *rx = 0;
    for (size_t i = 0; i < VNET_NOFFLOAD_BITS; i++) {
        if (features & (1ull << vnet_offload_bits[i].bit))
            *(vnet_offload_bits[i].rx ? rx : tx) |= vnet_offload_bits[i].offload;
    }
    if (!(*tx & NET_OFFLOAD_CSUM))
        *tx = 0;
    if (!(*rx & NET_OFFLOAD_CSUM))
        *rx = 0;
}

/* struct virtio_net_config: mac[6], status, max_virtqueue_pairs. */
static void vnet_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
    struct virtio_net *n = dev;
    uint8_t cfg[10] = {0};
    uint16_t status, pairs = 1;

    pthread_mutex_lock(&n->lock);
    status = n->link_up ? VIRTIO_NET_S_LINK_UP : 0;
    pthread_mutex_unlock(&n->lock);
    memcpy(cfg, n->mac, 6);
    memcpy(cfg + 6, &status, 2);
    memcpy(cfg + 8, &pairs, 2);
    memcpy(buf, cfg + off, len);
}

/* Sends what the guest queued. Loop thread, n->lock held. Returns true if work remains. */
static bool vnet_tx_locked(struct virtio_net *n)
{
    struct virtq *vq = virtio_get_queue(n->vdev, NET_TXQ);
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    unsigned budget = NET_TX_BUDGET;
    bool pushed = false;
    int r = 0;

    if (!req || !virtq_ready(vq))
        return false;
    while (budget-- && (r = virtq_pop(vq, req)) > 0) {
        size_t len = req->out_len;
        uint8_t wire[NET_HDR_LEN];
        struct net_vhdr h = {0};
        const char *why = NULL;

        if (len >= NET_HDR_LEN + NET_FRAME_MIN && len <= NET_HDR_LEN + NET_FRAME_MAX) {
            len -= NET_HDR_LEN;
            /* Without offloads the header asks for nothing we honour: it is ignored. */
            if (n->tx_offloads) {
                virtq_req_read(req, 0, wire, NET_HDR_LEN);
                net_vhdr_from_le(&h, wire);
                net_vhdr_check(&h, len, n->tx_offloads, false, &why);
            }
            /* A 64 KiB GSO frame costs its bytes and the segments it becomes. */
            if (!why && !vnet_admit_locked(n, NET_RL_TX, len, net_vhdr_segments(&h, len), true)) {
                virtq_unpop(vq); /* the timer comes back for it */
                r = 0;
                break;
            }
        } else {
            why = "bad length";
        }
        if (why) {
            log_guest("virtio-net: transmit of %zu bytes dropped: %s", req->out_len, why);
            n->tx_errors++;
        } else if (n->link_up) {
            struct iovec iov = {n->frame, len};

            virtq_req_read(req, NET_HDR_LEN, n->frame, len);
            net_backend_send_vhdr(n->nb, n->tx_offloads ? &h : NULL, &iov, 1);
        }
        virtq_push(vq, req, 0);
        pushed = true;
    }
    if (pushed)
        virtio_notify_queue(n->vdev, vq);
    return r > 0;
}

/* The backend's receiver: one frame for the guest. Loop thread. */
static ssize_t vnet_receive(void *opaque, const struct net_vhdr *hdr, const void *frame, size_t len)
{
    struct virtio_net *n = opaque;
    struct virtq *vq;
    static __thread struct virtq_req *req_site;
    struct virtq_req *req = virtq_req_for_thread(&req_site);
    uint8_t wire[NET_HDR_LEN];
    struct net_vhdr h = {0};
    const char *why;
    unsigned pkts;
    ssize_t ret = (ssize_t)len;

    pthread_mutex_lock(&n->lock);
    if (n->quiesced) {
        ret = 0; /* held by the backend until resume() */
        goto out;
    }
    if (!n->active || !n->link_up)
        goto out; /* dropped, as a cable would */
    /* The backend checked the header against what it carries; the guest may have taken
     * less (or been reset since the frame was read). */
    if (hdr) {
        h = *hdr;
        if (!n->rx_offloads)
            h.flags &= (uint8_t)~NET_VHDR_F_DATA_VALID; /* a hint we may drop (§5.1.6.4) */
        if (net_vhdr_check(&h, len, n->rx_offloads, true, &why) < 0) {
            log_guest("virtio-net: received frame of %zu bytes dropped: %s", len, why);
            n->rx_errors++;
            ret = -1;
            goto out;
        }
    }
    pkts = net_vhdr_segments(&h, len);
    if (!vnet_admit_locked(n, NET_RL_RX, len, pkts, false)) {
        ret = 0; /* over the limit: held by the backend until the timer calls rx_ready */
        goto out;
    }
    vq = virtio_get_queue(n->vdev, NET_RXQ);
    if (!req || !virtq_ready(vq) || virtq_pop(vq, req) <= 0) {
        ret = 0; /* no buffer: the backend holds the frame until we call rx_ready */
        goto out;
    }
    vnet_admit_locked(n, NET_RL_RX, len, pkts, true); /* it crosses now: charge it */
    if (req->in_len < NET_HDR_LEN + len) {
        log_guest("virtio-net: %zu-byte frame does not fit a %zu-byte receive buffer", len,
                  req->in_len);
        virtq_push(vq, req, 0);
    } else {
        h.num_buffers = 1;
        net_vhdr_to_le(&h, wire);
        virtq_req_write(req, 0, wire, NET_HDR_LEN);
        virtq_req_write(req, NET_HDR_LEN, frame, len);
        virtq_push(vq, req, (uint32_t)(NET_HDR_LEN + len));
    }
    virtio_notify_queue(n->vdev, vq);
out:
    pthread_mutex_unlock(&n->lock);
    return ret;
}

static void vnet_on_kick(void *opaque)
{
    struct virtio_net *n = opaque;
    bool more, quiesced;

    pthread_mutex_lock(&n->lock);
    quiesced = n->quiesced;
    more = n->active && !quiesced && vnet_tx_locked(n);
    pthread_mutex_unlock(&n->lock);
    if (quiesced)
        return; /* resume() kicks again */
    if (more)
        vdev_kick_signal(&n->kick); /* come back after other loop work */
    /* Any kick may mean new receive buffers. */
    net_backend_rx_ready(n->nb);
}

/* The throttle timer: a direction's deadline passed. Loop thread. */
static void vnet_on_timer(void *opaque)
{
    struct virtio_net *n = opaque;
    uint64_t now = time_now_ns();
    bool rx = false, tx = false;

    pthread_mutex_lock(&n->lock);
    if (n->until[NET_RL_RX] && n->until[NET_RL_RX] <= now) {
        n->until[NET_RL_RX] = 0;
        rx = true;
    }
    if (n->until[NET_RL_TX] && n->until[NET_RL_TX] <= now) {
        n->until[NET_RL_TX] = 0;
        tx = true;
    }
    vnet_arm_locked(n);
    pthread_mutex_unlock(&n->lock);
    if (tx)
        vdev_kick_signal(&n->kick); /* also tells the backend to deliver */
    else if (rx)
        net_backend_rx_ready(n->nb);
}

static void vnet_queue_notify(void *dev, unsigned q)
{
    vdev_kick_signal(&((struct virtio_net *)dev)->kick);
}

/* Also after a load (a restore, an incoming migration): the backend is told again what the
 * guest takes, so a tap opened fresh gets its TUNSETOFFLOAD. */
static int vnet_activate(void *dev, uint64_t features)
{
    struct virtio_net *n = dev;
    unsigned tx, rx;
    int r;

    vnet_offloads(features, &tx, &rx);
    r = net_backend_set_offload(n->nb, rx);
    if (r < 0) {
        log_error("virtio-net: the %s backend cannot take offload 0x%x: %s",
                  net_backend_kind(n->nb), rx, strerror(-r));
        return r;
    }
    pthread_mutex_lock(&n->lock);
    n->tx_offloads = tx;
    n->rx_offloads = rx;
    n->active = true;
    pthread_mutex_unlock(&n->lock);
    vdev_kick_signal(&n->kick);
    return 0;
}

static void vnet_reset(void *dev)
{
    struct virtio_net *n = dev;

    pthread_mutex_lock(&n->lock);
    n->active = false;
    n->tx_offloads = n->rx_offloads = 0;
    for (int i = 0; i < NET_RL_COUNT; i++)
        n->until[i] = n->since[i] = 0;
    vnet_arm_locked(n);
    pthread_mutex_unlock(&n->lock);
    /* Plain frames again until the next driver negotiates (a failure leaves frames the
     * receiver then drops for their headers). */
    net_backend_set_offload(n->nb, 0);
}

/* Saving thread, register lock held; never the loop thread, which may be waiting for `lock`
 * in a callback (that callback then sees the flag). */
static void vnet_quiesce(void *dev)
{
    struct virtio_net *n = dev;

    pthread_mutex_lock(&n->lock);
    n->quiesced = true;
    pthread_mutex_unlock(&n->lock);
}

static void vnet_resume(void *dev)
{
    struct virtio_net *n = dev;

    pthread_mutex_lock(&n->lock);
    n->quiesced = false;
    pthread_mutex_unlock(&n->lock);
    /* On the loop: transmit what waits and let the backend deliver what it held. */
    vdev_kick_signal(&n->kick);
}

/* A RARP reverse request (RFC 903) from mac: broadcast, sender and target hardware
 * addresses the MAC, protocol addresses zero, as QEMU's announce-self builds it. */
static void vnet_rarp_frame(const uint8_t mac[6], uint8_t f[NET_RARP_LEN])
{
    static const uint8_t head[] = {0x80, 0x35, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03};

    memset(f, 0, NET_RARP_LEN);
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    memcpy(f + 12, head, sizeof(head));
    memcpy(f + 22, mac, 6); /* sender hardware address; sender protocol address 0 */
    memcpy(f + 32, mac, 6); /* target hardware address; target protocol address 0 */
}

/* Loop thread: one round, and the timer for the next. */
static void vnet_on_announce(void *opaque)
{
    struct virtio_net *n = opaque;
    uint8_t f[NET_RARP_LEN];
    struct iovec iov = {f, sizeof(f)};
    unsigned done;

    pthread_mutex_lock(&n->lock);
    if (!n->announce_left) {
        pthread_mutex_unlock(&n->lock);
        return;
    }
    vnet_rarp_frame(n->mac, f);
    done = NET_ANNOUNCE_ROUNDS - --n->announce_left;
    if (n->announce_left)
        loop_mod_timer(n->loop, n->announce_timer,
                       time_now_ns() +
                           (uint64_t)(NET_ANNOUNCE_FIRST_MS + done * NET_ANNOUNCE_STEP_MS) *
                               1000000u);
    pthread_mutex_unlock(&n->lock);
    /* A frame the host side has no room for is lost like any other; the next round follows. */
    net_backend_send(n->nb, &iov, 1);
}

#define VNET_STATE_VERSION 1

/* Version 1: u8 mac[6], bool link_up. */
static void vnet_save(void *dev, struct sbuf *out)
{
    struct virtio_net *n = dev;

    pthread_mutex_lock(&n->lock);
    sbuf_put_bytes(out, n->mac, sizeof(n->mac));
    sbuf_put_bool(out, n->link_up);
    pthread_mutex_unlock(&n->lock);
}

/* The guest has read these from config space; keep showing it the same ones. */
static int vnet_load(void *dev, struct scur *in, uint32_t version)
{
    struct virtio_net *n = dev;
    uint8_t mac[6];
    bool link_up;

    scur_get_bytes(in, mac, sizeof(mac));
    link_up = scur_get_bool(in);
    if (scur_ok(in))
        return -1;
    if (mac[0] & 1)
        return scur_fail(in, "mac: %02x:%02x:%02x:%02x:%02x:%02x is not a unicast address", mac[0],
                         mac[1], mac[2], mac[3], mac[4], mac[5]);
    pthread_mutex_lock(&n->lock);
    memcpy(n->mac, mac, sizeof(mac));
    n->link_up = link_up;
    /* The VM now runs behind this backend, maybe on another host: announce it. */
    if (link_up) {
        n->announce_left = NET_ANNOUNCE_ROUNDS;
        loop_mod_timer(n->loop, n->announce_timer,
                       time_now_ns() + NET_ANNOUNCE_FIRST_MS * 1000000ull);
    }
    pthread_mutex_unlock(&n->lock);
    return 0;
}

static const struct virtio_device_ops vnet_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .num_queues = 2,
    .queue_max = NET_QUEUE_SIZE,
    .config_size = 10,
    .features = vnet_features,
    .config_read = vnet_config_read,
    .activate = vnet_activate,
    .queue_notify = vnet_queue_notify,
    .reset = vnet_reset,
    .quiesce = vnet_quiesce,
    .resume = vnet_resume,
    .state_version = VNET_STATE_VERSION,
    .save = vnet_save,
    .load = vnet_load,
};

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
        6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    /* A guest NIC needs a unicast address (bit 0 of the first byte clear). */
    return (mac[0] & 1) ? -1 : 0;
}

static bool vnet_limit_key(const char *item, size_t n);

/* Splits the device's own keys (mac=, link=, the limits) out of the backend spec. */
static int vnet_split(const char *opts, char *backend, size_t len, char *mac, char *link)
{
    const char *p = opts;
    size_t o = 0;

    mac[0] = link[0] = 0;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        /* A value too long for its buffer is a bad value, never "not given". */
        if (n >= 4 && !strncmp(p, "mac=", 4)) {
            snprintf(mac, 18, "%.*s", n - 4 < 18 ? (int)(n - 4) : 0, p + 4);
            if (n - 4 >= 18 || n == 4)
                snprintf(mac, 18, "(bad length)");
        } else if (n >= 5 && !strncmp(p, "link=", 5)) {
            snprintf(link, 8, "%.*s", n - 5 < 8 ? (int)(n - 5) : 0, p + 5);
            if (n - 5 >= 8 || n == 5)
                snprintf(link, 8, "(bad)");
        } else if (vnet_limit_key(p, n)) {
            /* vnet_limits_parse() reads them */
        } else {
            if (o + n + 2 > len)
                return -1;
            if (o)
                backend[o++] = ',';
            memcpy(backend + o, p, n);
            o += n;
        }
        p = end ? end + 1 : p + n;
    }
    backend[o] = 0;
    return 0;
}

static int vnet_check_mac(const char *value, char *expected)
{
    uint8_t mac[6];

    if (parse_mac(value, mac) == 0)
        return 0;
    snprintf(expected, VDEV_ERR_LEN, "expected a unicast address like 52:54:00:12:34:56");
    return -1;
}

/* The backend spec is checked as the backend will parse it, without opening anything. */
static int vnet_check_backend(const char *value, char *expected)
{
    struct net_spec spec;
    char nerr[NET_ERR_LEN];

    if (netspec_parse(value, &spec, nerr) == 0) {
        netspec_free(&spec);
        return 0;
    }
    snprintf(expected, VDEV_ERR_LEN, "%s", nerr);
    return -1;
}

static const struct vdev_opt vnet_options[] = {
    {.key = "",
     .json = "backend",
     .kind = VDEV_OPT_REST,
     .required = true,
     .check = vnet_check_backend},
    {.key = "mac", .json = "mac", .kind = VDEV_OPT_STR, .max_len = 17, .check = vnet_check_mac},
    {.key = "link", .json = "link", .kind = VDEV_OPT_BOOL},
/* Rate limits (docs/vm-config.md): 0 or absent is unlimited; changeable live. Each burst
 * is for both directions. */
#define NET_LIMIT(k, chk)                                                      \
    {                                                                          \
        .key = k, .json = k, .kind = VDEV_OPT_UINT, .check = chk, .live = true \
    }
    NET_LIMIT("rx_bps", vdev_check_bytes),
    NET_LIMIT("tx_bps", vdev_check_bytes),
    NET_LIMIT("bps_burst", vdev_check_bytes),
    NET_LIMIT("rx_pps", vdev_check_count),
    NET_LIMIT("tx_pps", vdev_check_count),
    NET_LIMIT("pps_burst", vdev_check_count),
#undef NET_LIMIT
    {NULL},
};

/* The limit keys: the device's own, never part of the backend spec. */
static bool vnet_limit_key(const char *item, size_t n)
{
    static const char *const keys[] = {
        "rx_bps=", "tx_bps=", "bps_burst=", "rx_pps=", "tx_pps=", "pps_burst="};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (n >= strlen(keys[i]) && !strncmp(item, keys[i], strlen(keys[i])))
            return true;
    }
    return false;
}

/* The limits of a checked option string: 0, or -EINVAL with err. */
static int vnet_limits_parse(const char *opts, struct vnet_limits *l, char *err)
{
    if (vdev_opt_limit(opts, "rx_bps", true, &l->bps[NET_RL_RX]) ||
        vdev_opt_limit(opts, "tx_bps", true, &l->bps[NET_RL_TX]) ||
        vdev_opt_limit(opts, "bps_burst", true, &l->bps_burst) ||
        vdev_opt_limit(opts, "rx_pps", false, &l->pps[NET_RL_RX]) ||
        vdev_opt_limit(opts, "tx_pps", false, &l->pps[NET_RL_TX]) ||
        vdev_opt_limit(opts, "pps_burst", false, &l->pps_burst)) {
        snprintf(err, VDEV_ERR_LEN, "--net: a rate limit is not a number (rx_bps=10M, rx_pps=N)");
        return -EINVAL;
    }
    return 0;
}

/* Puts limits in force. n->lock held (or n is not shared yet). */
static void vnet_limits_apply(struct virtio_net *n, const struct vnet_limits *l)
{
    uint64_t now = time_now_ns();

    for (int i = 0; i < NET_RL_COUNT; i++) {
        ratelimit_set(&n->rl[i], RATELIMIT_BYTES, l->bps[i], l->bps_burst, now);
        ratelimit_set(&n->rl[i], RATELIMIT_OPS, l->pps[i], l->pps_burst, now);
    }
}

static struct vdev_type vnet_type;

/* A clone's NIC must not share its origin's address: a new random one in QEMU's 52:54:00
 * prefix. */
static int vnet_clone(json_t *conf, const char *dir, char *err)
{
    uint8_t r[3];
    char mac[18];

    if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
        snprintf(err, VDEV_ERR_LEN, "--net: no random bytes for a new MAC: %s", strerror(errno));
        return -EIO;
    }
    snprintf(mac, sizeof(mac), "52:54:00:%02x:%02x:%02x", r[0], r[1], r[2]);
    return vdev_conf_set(&vnet_type, conf, "mac", json_string(mac), err);
}

static int vnet_create(const struct vdev_env *env, const char *opts, void **dev,
                       const struct virtio_device_ops **ops, char *err)
{
    char *spec = malloc(NET_SPEC_MAX + 1);
    char mac[18], link[8], nerr[NET_ERR_LEN];
    struct vnet_limits limits = {0};
    struct virtio_net *n = NULL;
    int ret = -EINVAL;

    if (!spec)
        return -ENOMEM;
    if (vdev_opts_check(&vnet_type, opts, err))
        goto out;
    if (vnet_split(opts, spec, NET_SPEC_MAX + 1, mac, link)) {
        snprintf(err, VDEV_ERR_LEN, "--net: the option string is too long");
        goto out;
    }
    if (vnet_limits_parse(opts, &limits, err))
        goto out;
    n = calloc(1, sizeof(*n));
    if (!n) {
        ret = -ENOMEM;
        goto out;
    }
    /* QEMU's default is 52:54:00:12:34:56; each further NIC counts up. */
    memcpy(n->mac, (uint8_t[6]){0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 6);
    n->mac[5] = (uint8_t)(0x56 + env->index);
    if (mac[0] && parse_mac(mac, n->mac)) {
        snprintf(err, VDEV_ERR_LEN,
                 "--net: mac='%s': expected a unicast address like "
                 "52:54:00:12:34:56",
                 mac);
        goto free_dev;
    }
    n->link_up = true;
    if (link[0] && opt_bool(link, &n->link_up)) {
        snprintf(err, VDEV_ERR_LEN, "--net: link='%s': expected on or off", link);
        goto free_dev;
    }
    if (!env->loop) {
        snprintf(err, VDEV_ERR_LEN, "--net: no event loop");
        goto free_dev;
    }
    n->loop = env->loop;
    for (int i = 0; i < NET_RL_COUNT; i++)
        ratelimit_init(&n->rl[i], time_now_ns());
    vnet_limits_apply(n, &limits);
    if (loop_add_timer(n->loop, LOOP_TIMER_OFF, vnet_on_timer, n, &n->timer)) {
        snprintf(err, VDEV_ERR_LEN, "--net: out of memory");
        goto free_dev;
    }
    if (loop_add_timer(n->loop, LOOP_TIMER_OFF, vnet_on_announce, n, &n->announce_timer)) {
        snprintf(err, VDEV_ERR_LEN, "--net: out of memory");
        loop_del_timer(n->loop, n->timer);
        goto free_dev;
    }
    if (net_backend_open(spec, env->loop, &n->nb, nerr)) {
        snprintf(err, VDEV_ERR_LEN, "--net: %s", nerr);
        goto del_timer;
    }
    pthread_mutex_init(&n->lock, NULL);
    if (vdev_kick_init(&n->kick, n->loop, vnet_on_kick, n)) {
        snprintf(err, VDEV_ERR_LEN, "--net: cannot set up its event: %s", strerror(errno));
        net_backend_close(n->nb);
        pthread_mutex_destroy(&n->lock);
        goto del_timer;
    }
    net_backend_set_receiver(n->nb, vnet_receive, n);
    *dev = n;
    *ops = &vnet_ops;
    ret = 0;
    goto out;

del_timer:
    loop_del_timer(n->loop, n->announce_timer);
    loop_del_timer(n->loop, n->timer);
free_dev:
    free(n);
out:
    free(spec);
    return ret;
}

static void vnet_attach(void *dev, struct virtio_dev *vdev)
{
    ((struct virtio_net *)dev)->vdev = vdev;
}

static void vnet_destroy(void *dev)
{
    struct virtio_net *n = dev;

    loop_del_timer(n->loop, n->timer); /* first: it kicks and calls the backend */
    loop_del_timer(n->loop, n->announce_timer);
    vdev_kick_destroy(&n->kick);
    net_backend_close(n->nb);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

static void vnet_stats(void *dev, struct vdev_stats *out)
{
    struct virtio_net *n = dev;
    struct net_stats st;

    net_backend_get_stats(n->nb, &st);
    out->reads = st.rx_frames;
    out->read_bytes = st.rx_bytes;
    out->writes = st.tx_frames;
    out->write_bytes = st.tx_bytes;
    pthread_mutex_lock(&n->lock);
    out->read_throttled = n->throttled[NET_RL_RX];
    out->write_throttled = n->throttled[NET_RL_TX];
    out->read_throttled_ns = n->throttled_ns[NET_RL_RX];
    out->write_throttled_ns = n->throttled_ns[NET_RL_TX];
    out->read_errors = n->rx_errors;
    out->write_errors = n->tx_errors;
    /* A frame held now has waited too. */
    if (n->since[NET_RL_RX])
        out->read_throttled_ns += time_now_ns() - n->since[NET_RL_RX];
    if (n->since[NET_RL_TX])
        out->write_throttled_ns += time_now_ns() - n->since[NET_RL_TX];
    pthread_mutex_unlock(&n->lock);
}

/* New limits on the running NIC (vdev_type.reconfigure): both directions are woken to ask
 * their limiters again, so a frame held on the old limits goes by the new ones at once. */
static int vnet_reconfigure(void *dev, const char *opts, char *err)
{
    struct virtio_net *n = dev;
    struct vnet_limits limits = {0};

    if (vnet_limits_parse(opts, &limits, err))
        return -EINVAL;
    pthread_mutex_lock(&n->lock);
    vnet_limits_apply(n, &limits);
    for (int i = 0; i < NET_RL_COUNT; i++)
        n->until[i] = 0;
    vnet_arm_locked(n);
    pthread_mutex_unlock(&n->lock);
    vdev_kick_signal(&n->kick); /* transmit, then the backend delivers what it held */
    return 0;
}

static struct vdev_type vnet_type = {
    .name = "net",
    .summary = "virtio-net NIC on a user (slirp), tap or socket backend",
    .usage = "--net user[,hostfwd=tcp::HOSTPORT-:GUESTPORT] | tap,ifname=NAME | "
             "socket,fd=N|connect=H:P|listen=H:P|udp=H:P,localaddr=H:P  [,mac=MAC][,link=off]"
             "[,rx_bps=SIZE][,tx_bps=SIZE][,rx_pps=N][,tx_pps=N][,bps_burst=SIZE][,pps_burst=N]",
    .create = vnet_create,
    .attach = vnet_attach,
    .destroy = vnet_destroy,
    .flag = "--net",
    .options = vnet_options,
    .clone = vnet_clone,
    .stats = vnet_stats,
    .reconfigure = vnet_reconfigure,
};
VDEV_TYPE_REGISTER(vnet_type)
