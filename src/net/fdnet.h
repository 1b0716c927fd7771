/* One fd that carries Ethernet frames, for the tap and socket backends: reading with
 * back-pressure, writing without blocking, and the two framings.
 *
 * FDNET_DGRAM: one frame per read()/recv() and per write (a tap, a UDP or unix datagram
 * socket). Datagrams outside NET_FRAME_MIN..NET_FRAME_MAX are dropped and counted.
 * FDNET_STREAM: each frame is preceded by its length, 4 bytes big-endian (QEMU's -netdev
 * socket/stream framing). Reads are reassembled across partial reads; a length outside
 * NET_FRAME_MIN..NET_FRAME_MAX means the peer is broken or hostile and the stream cannot be
 * resynchronised: the connection is closed. Writes that the socket takes only partly are
 * completed from a bounded buffer on the loop thread, so frames are never torn.
 *
 * Threads and locks: fdnet_send() runs on any thread; everything else on the loop thread,
 * except create/attach/destroy on the set-up thread before the fd is live or after it is
 * gone. One mutex per fdnet (leaf lock, nothing is called back under it; it is held around
 * loop_mod_fd(), so the lock order is fdnet lock -> loop lock) guards the fd, the watch and
 * the transmit buffer. The receive buffer belongs to the loop thread. */
#ifndef TESSERA_NET_FDNET_H
#define TESSERA_NET_FDNET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct fdnet;
struct net_backend;

enum fdnet_framing { FDNET_DGRAM, FDNET_STREAM };

/* Loop thread: the fd hit end-of-file, an error or bad framing and was closed; the fdnet is
 * detached (sends fail with -ENOTCONN) and may be attached to a new fd. */
typedef void (*fdnet_down_fn)(void *opaque);

/* Creates a detached fdnet delivering to nb. `what` names it in log lines ("tap tap0") and
 * must outlive it. Returns 0 or -ENOMEM. */
int fdnet_create(struct net_backend *nb, const char *what, fdnet_down_fn down, void *opaque,
                 struct fdnet **out);

/* Takes over `fd` (non-blocking already) and starts reading it. `is_socket` selects
 * recv()/sendmsg() (MSG_NOSIGNAL, real datagram lengths) over read()/writev(). Returns 0,
 * -EBUSY when attached already, or the -errno of loop_add_fd (the fd then stays the
 * caller's). Set-up thread, or the loop thread. */
int fdnet_attach(struct fdnet *f, int fd, enum fdnet_framing framing, bool is_socket);

/* Datagram framing only, before fdnet_attach(): every datagram read starts with a virtio-net
 * header (a tap with IFF_VNET_HDR and TUNSETVNETHDRSZ NET_VHDR_LEN), which is split off and
 * delivered with the frame. Writers put the header in front themselves. */
void fdnet_set_vhdr(struct fdnet *f, bool on);

/* ioctl(fd, req, arg) on the attached fd, under the lock (the fd cannot be closed under it).
 * Returns 0, -ENOTCONN when detached, or -errno. Any thread. */
int fdnet_ioctl(struct fdnet *f, unsigned long req, void *arg);

/* Writes one frame (len bytes, checked by net.c). Returns 0 (written or buffered), -ENOTCONN
 * when detached, -ENOBUFS when the transmit buffer is full or the fd's buffer is (datagram:
 * -EAGAIN), or the -errno of the write. Any thread. */
int fdnet_send(struct fdnet *f, const struct iovec *iov, int iovcnt, size_t len);

/* Loop thread: the device has room again; deliver the held frame and resume reading. */
void fdnet_kick(struct fdnet *f);

/* Loop thread: reads what the fd has now (as if it were readable), so that a peer that has
 * already left is noticed; returns true while an fd is attached afterwards. */
bool fdnet_poll(struct fdnet *f);

/* Stops watching, closes the fd if attached, frees. NULL allowed. Set-up thread; no
 * fdnet_send() may run. */
void fdnet_destroy(struct fdnet *f);

#endif
