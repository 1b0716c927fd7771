/* Network backends: where a virtual NIC's Ethernet frames go on the host.
 *
 * A backend is opened from a QEMU-like spec (what follows `--net `):
 *   user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *        libslirp user-mode NAT: guest network 10.0.2.0/24, host/gateway 10.0.2.2, DNS 10.0.2.3,
 *        DHCP from 10.0.2.15 (QEMU's defaults), IPv6 fec0::/64. hostfwd may repeat; an empty
 *        protocol means tcp, an empty HOSTADDR means every host address, an empty GUESTADDR
 *        means 10.0.2.15.
 *   tap,ifname=NAME
 *        an existing tap interface (ip tuntap add dev NAME mode tap), IFF_TAP | IFF_NO_PI.
 *   socket,fd=N               an already connected socket the backend takes over (datagram:
 *                             one frame per datagram; stream: each frame preceded by its
 *                             length as 4 bytes big-endian, as QEMU's -netdev socket/stream)
 *   socket,connect=HOST:PORT  TCP client, stream framing; open waits up to 10 s for the
 *                             connection, and when the peer leaves the link stays down
 *   socket,listen=HOST:PORT   TCP server for one peer at a time, stream framing; frames sent
 *                             while no peer is connected are dropped (-ENOTCONN)
 *   socket,udp=HOST:PORT,localaddr=HOST:PORT
 *                             UDP from localaddr to udp, one frame per datagram
 *
 * Frames. Every frame is a whole Ethernet frame without FCS, NET_FRAME_MIN..NET_FRAME_MAX
 * bytes. Frames from the guest are untrusted: net_backend_send() checks the length before
 * anything else. Frames from the host side (a peer on a socket, a tap) are checked the same
 * way before they reach the device.
 *
 * Threads and locks.
 * - net_backend_open() and net_backend_close(): the set-up thread (any thread that is not
 *   the loop thread inside one of this backend's callbacks). close() waits for callbacks of
 *   the backend on the loop thread to finish (loop.h's removal guarantee).
 * - The receiver runs on the loop thread only, one frame at a time, holding the backend's
 *   receiver lock (see net_backend_set_receiver()).
 * - net_backend_send(), net_backend_rx_ready() and net_backend_get_stats(): any thread,
 *   never blocking on I/O (vCPU threads call them). Each backend's locks are leaf locks:
 *   nothing is called back while they are held, so a device may call these while holding its
 *   own lock.
 * The loop must outlive every backend opened on it. */
#ifndef TESSERA_NET_NET_H
#define TESSERA_NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct loop;
struct net_backend;

#define NET_ERR_LEN   256          /* size of the error buffer of net_backend_open() */
#define NET_FRAME_MIN 14           /* an Ethernet header */
#define NET_FRAME_MAX (65535 + 14) /* the largest IP packet plus the Ethernet header */
#define NET_SPEC_MAX  4096         /* longest spec accepted */
#define NET_IOV_MAX   64           /* most iovec pieces net_backend_send() takes per frame */

/* Delivers one frame from the host side to the device, on the loop thread. `frame` is valid
 * only during the call. Returns len when the device took the frame, or 0 when it has no room
 * now: the backend then keeps the frame (and stops reading its fd) until the device calls
 * net_backend_rx_ready(). Any other value drops the frame, which is counted in rx_dropped. */
typedef ssize_t (*net_receive_fn)(void *opaque, const void *frame, size_t len);

struct net_stats {
    uint64_t tx_frames; /* guest -> host frames handed to the host side */
    uint64_t tx_bytes;
    uint64_t tx_dropped; /* bad length, queue full, link down, host-side error */
    uint64_t rx_frames;  /* host -> guest frames the device took */
    uint64_t rx_bytes;
    uint64_t rx_dropped; /* bad length, queue full, refused by the device */
};

/* Parses `spec` and opens the backend on `loop` (which may or may not run yet: traffic flows
 * once it does). Returns 0 and the backend in *out, or -errno with one line for people in
 * `err` (NET_ERR_LEN bytes, always NUL-terminated) that names the key at fault, e.g.
 * "tap: ifname: 'a/b' is not an interface name". socket,fd=N takes ownership of N on success
 * only (and sets it non-blocking). Set-up thread. */
int net_backend_open(const char *spec, struct loop *loop, struct net_backend **out, char *err);

/* Sets the function that receives frames for the guest (NULL: none; frames are then held as
 * if the device had no room). Any thread; when it returns, the previous receiver is not
 * running and will not be called again, so it must not be called from inside the receiver,
 * nor while holding a lock the receiver takes. Acts as net_backend_rx_ready() too. */
void net_backend_set_receiver(struct net_backend *nb, net_receive_fn fn, void *opaque);

/* Tells the backend that the device has room again after its receiver returned 0. Any thread
 * (including from inside the receiver), never blocks, cheap when nothing is held back: it
 * wakes the loop thread, which delivers what was held back and resumes reading. */
void net_backend_rx_ready(struct net_backend *nb);

/* Sends one frame from the guest, gathered from iov[0..iovcnt). Any thread; never blocks.
 * Returns 0 when the frame was handed on (written, or queued for the loop thread), or a
 * -errno when it was dropped and counted in tx_dropped: -EMSGSIZE for a length outside
 * NET_FRAME_MIN..NET_FRAME_MAX, -EINVAL for a bad iovcnt, -ENOBUFS/-EAGAIN when the host side
 * has no room, -ENOTCONN when it has no peer, another -errno from the host socket. The frame
 * is consumed either way: the device completes the guest's buffer and moves on, as a NIC on
 * a congested wire would. */
int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt);

/* A snapshot of the counters (each read atomically; the set is not one instant). Any
 * thread. */
void net_backend_get_stats(struct net_backend *nb, struct net_stats *out);

/* The backend's kind as in the spec ("user", "tap", "socket"). */
const char *net_backend_kind(const struct net_backend *nb);

/* Stops all traffic and frees the backend (closes its fds, frees queued frames). NULL is
 * allowed. Set-up thread; no other call on `nb` may run or follow. */
void net_backend_close(struct net_backend *nb);

#endif
