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
 * The loop must outlive every backend opened on it.
 *
 * Offload (virtio 1.2 §5.1.6). A frame may travel with a virtio-net header (struct
 * net_vhdr) that asks for a partial checksum to be completed (NEEDS_CSUM) or a TCP segment
 * of up to 64 KiB to be cut into MSS-sized ones (GSO), so that the emulated guest does not
 * checksum and send every 1500-byte frame itself. Only the tap backend carries headers
 * (IFF_VNET_HDR: the kernel does the work, or hands the frame on whole to a peer that
 * accepts it); net_backend_offload_caps() says which, and the user and socket backends say
 * none: frames from the guest to them are finished here in software (net_vhdr_finish()),
 * and frames to the guest from them are always plain. Headers from the guest are hostile:
 * net_vhdr_check() validates one before anything acts on it. */
#ifndef TESSERA_NET_NET_H
#define TESSERA_NET_NET_H

#include <stdbool.h>
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

/* The virtio-net header as virtio 1.x lays it out with VIRTIO_F_VERSION_1 (§5.1.6): 12
 * bytes, fields little-endian on the wire; in this struct they are host order (see
 * net_vhdr_from_le()). */
struct net_vhdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;     /* bytes of headers (Ethernet to TCP) in a GSO frame: a hint */
    uint16_t gso_size;    /* payload bytes per segment (the MSS) */
    uint16_t csum_start;  /* offset where the checksum starts ... */
    uint16_t csum_offset; /* ... and where it goes, relative to csum_start */
    uint16_t num_buffers; /* receive side only; always 1 here (no VIRTIO_NET_F_MRG_RXBUF) */
};

#define NET_VHDR_LEN 12 /* its size on the wire */

#define NET_VHDR_F_NEEDS_CSUM 1 /* complete the checksum at csum_start + csum_offset */
#define NET_VHDR_F_DATA_VALID 2 /* receive only: the checksum was checked already */

#define NET_VHDR_GSO_NONE  0
#define NET_VHDR_GSO_TCPV4 1
#define NET_VHDR_GSO_TCPV6 4
#define NET_VHDR_GSO_ECN   0x80 /* with TCPV4/6: the segments carry ECN (CWR) */

/* What a frame may ask of the other side, as a mask. */
#define NET_OFFLOAD_CSUM (1u << 0) /* NEEDS_CSUM (and, received, DATA_VALID) */
#define NET_OFFLOAD_TSO4 (1u << 1) /* GSO_TCPV4 */
#define NET_OFFLOAD_TSO6 (1u << 2) /* GSO_TCPV6 */
#define NET_OFFLOAD_ECN  (1u << 3) /* GSO_ECN */

/* The smallest gso_size accepted: Linux's TCP_MIN_SND_MSS. A smaller one would let a guest
 * make the host cut one 64 KiB frame into thousands of tiny ones. */
#define NET_VHDR_MIN_GSO 48

/* Reads a header from its 12 wire bytes, and writes one. */
void net_vhdr_from_le(struct net_vhdr *h, const uint8_t wire[NET_VHDR_LEN]);
void net_vhdr_to_le(const struct net_vhdr *h, uint8_t wire[NET_VHDR_LEN]);

/* Checks header h of a frame of len bytes (the Ethernet frame after the header) against the
 * offloads `allowed` (NET_OFFLOAD_*), for a frame going out (from the guest: NEEDS_CSUM
 * only) or coming in (DATA_VALID allowed too). Rules (§5.1.6.2): only known flags and
 * gso_type values, each needing its offload; NEEDS_CSUM's csum_start + csum_offset + 2
 * within the frame; a GSO frame also sets NEEDS_CSUM, has NET_VHDR_MIN_GSO <= gso_size and
 * hdr_len <= len. Returns 0, or -EINVAL with a static reason in *why (for a log line). Pure:
 * any bytes are safe (the fuzz target feeds it). */
int net_vhdr_check(const struct net_vhdr *h, size_t len, unsigned allowed, bool incoming,
                   const char **why);

/* How many frames a checked frame becomes on the wire: 1, or for GSO the TCP payload (after
 * csum_start and a 20-byte TCP header) over gso_size, rounded up (what packet-rate limits
 * count). */
unsigned net_vhdr_segments(const struct net_vhdr *h, size_t len);

/* Receives one finished frame of net_vhdr_finish(); returns 0 to go on or a -errno that
 * stops it. */
typedef int (*net_vhdr_emit_fn)(void *opaque, const uint8_t *frame, size_t len);

/* Does in software what a header asks, for a host side that takes only plain frames: checks
 * it (any offload allowed), then hands emit() either the frame itself (nothing asked), a copy
 * with the checksum completed (NEEDS_CSUM), or, for TCP GSO, each MSS-sized segment with its
 * IPv4 total length, id and header checksum, IPv6 payload length, TCP sequence number and
 * flags (FIN and PSH on the last, CWR on the first) and TCP checksum set, as a NIC's TSO
 * would. GSO frames must be TCP right after an IPv4 header, or an IPv6 header without
 * extension headers, after Ethernet and at most one 802.1Q tag. Returns 0, -EINVAL with a
 * static reason in *why for a frame it cannot finish, -ENOMEM, or emit()'s error. Frames
 * from the guest are hostile: nothing is read outside frame[0..len). */
int net_vhdr_finish(const struct net_vhdr *h, const uint8_t *frame, size_t len,
                    net_vhdr_emit_fn emit, void *opaque, const char **why);

/* Delivers one frame from the host side to the device, on the loop thread. `frame` is valid
 * only during the call. `hdr` is NULL for a plain, fully checksummed frame, or the header the
 * host side sent with it (a tap after net_backend_set_offload()), already checked with
 * net_vhdr_check() against the offloads set. Returns len when the device took the frame, or
 * 0 when it has no room now: the backend then keeps the frame (and stops reading its fd)
 * until the device calls net_backend_rx_ready(). Any other value drops the frame, which is
 * counted in rx_dropped. */
typedef ssize_t (*net_receive_fn)(void *opaque, const struct net_vhdr *hdr, const void *frame,
                                  size_t len);

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

/* Which offloads (NET_OFFLOAD_*) the backend carries in both directions: a tap opened with
 * IFF_VNET_HDR all of them, other backends none. Immutable after open; any thread. */
unsigned net_backend_offload_caps(const struct net_backend *nb);

/* Sets which offloads the host side may use in frames it sends to the guest (a subset of the
 * caps; the tap's TUNSETOFFLOAD): 0 asks for plain, fully checksummed frames of at most the
 * MTU. Returns 0, -EOPNOTSUPP for bits outside the caps, or the -errno of the host (the
 * setting is then unchanged). Any thread; frames already read keep their old headers, so
 * the receiver checks each one. */
int net_backend_set_offload(struct net_backend *nb, unsigned offloads);

/* net_backend_send() with a header: hdr NULL is a plain frame; otherwise it must pass
 * net_vhdr_check() against the backend's caps, or, on a backend without caps, any offload,
 * which net_vhdr_finish() then does before the pieces go to the backend (a failing one is
 * dropped with -EINVAL and counted in tx_dropped). The counters count the frame as one, of
 * its bytes without the header. */
int net_backend_send_vhdr(struct net_backend *nb, const struct net_vhdr *hdr,
                          const struct iovec *iov, int iovcnt);

/* A snapshot of the counters (each read atomically; the set is not one instant). Any
 * thread. */
void net_backend_get_stats(struct net_backend *nb, struct net_stats *out);

/* The backend's kind as in the spec ("user", "tap", "socket"). */
const char *net_backend_kind(const struct net_backend *nb);

/* Stops all traffic and frees the backend (closes its fds, frees queued frames). NULL is
 * allowed. Set-up thread; no other call on `nb` may run or follow. */
void net_backend_close(struct net_backend *nb);

#endif
