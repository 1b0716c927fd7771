/* A small websocket client (RFC 6455) for `tessera vm console`: the opening handshake over a
 * connection someone else made (libcurl's CONNECT_ONLY socket, plain or TLS), the framing, and
 * the relay between the terminal and the VM's console. Binary frames carry the console's raw
 * bytes both ways; text frames from the server are shown as well.
 *
 * The server's bytes are outside input: frames are parsed with every length checked, masked
 * server frames, reserved bits, unknown opcodes, fragmented or long control frames and payloads
 * over CLIENT_WS_FRAME_MAX are protocol errors (RFC 6455 §5.1, §5.2, §5.5). Client frames are
 * always masked with a fresh key from getrandom() (§5.3).
 *
 * One thread per struct client_ws. The io callbacks are non-blocking: -EAGAIN means poll fd. */
#ifndef TESSERA_CLI_CLIENT_WS_H
#define TESSERA_CLI_CLIENT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLIENT_WS_ERR_LEN   256
#define CLIENT_WS_FRAME_MAX (1u << 20) /* a server frame's payload, at most */
#define CLIENT_WS_HEAD_MAX  14         /* a frame's header: 2 + 8 (length) + 4 (mask) */

/* Opcodes, RFC 6455 §5.2. */
enum client_ws_opcode {
    CLIENT_WS_CONT = 0x0,
    CLIENT_WS_TEXT = 0x1,
    CLIENT_WS_BINARY = 0x2,
    CLIENT_WS_CLOSE = 0x8,
    CLIENT_WS_PING = 0x9,
    CLIENT_WS_PONG = 0xA,
};

struct client_ws_io {
    void *ctx;
    int fd; /* polled for POLLIN / POLLOUT when a call answers -EAGAIN */
    /* The count moved, 0 (recv: the peer closed), -EAGAIN, or another -errno. */
    ssize_t (*send)(void *ctx, const void *buf, size_t n);
    ssize_t (*recv)(void *ctx, void *buf, size_t n);
};

struct client_ws {
    struct client_ws_io io;
    uint8_t *in; /* received, not yet parsed (malloc'd) */
    size_t in_len, in_cap;
    bool close_sent;
    char close_reason[124]; /* the server's close frame's reason (§5.5.1), control bytes '?' */
};

/* One server frame, parsed: payload points into the buffer given to client_ws_parse(). */
struct client_ws_frame {
    bool fin;
    unsigned opcode;
    const uint8_t *payload;
    size_t len;
};

/* Encodes a client frame: FIN set, the opcode, payload (n bytes) masked with mask (§5.3).
 * out has room for n + CLIENT_WS_HEAD_MAX bytes. Returns the frame's length. */
size_t client_ws_encode(uint8_t *out, unsigned opcode, const uint8_t *payload, size_t n,
                        const uint8_t mask[4]);

/* Parses the server frame at the start of buf (len bytes). Returns 0 with *f and *used (the
 * frame's length), -EAGAIN when buf holds only part of it, or -EPROTO with err. */
int client_ws_parse(const uint8_t *buf, size_t len, struct client_ws_frame *f, size_t *used,
                    char *err);

/* Sec-WebSocket-Accept for key (§4.2.2): base64(SHA-1(key + the GUID)). out: 29 bytes. 0 or
 * -EIO when the hash is not available. */
int client_ws_accept_key(const char *key, char *out);

/* The opening handshake (§4.1): GET path with the bearer token, a fresh Sec-WebSocket-Key,
 * then checks the 101 answer and its Sec-WebSocket-Accept. On another status, *status holds it
 * and err the server's error message ("no such vm"), -EPERM. Returns 0 (ws ready, free it with
 * client_ws_free()), -EPERM, or -EPROTO / -EIO with err. timeout_s bounds the wait for the
 * answer. */
int client_ws_handshake(struct client_ws *ws, const struct client_ws_io *io, const char *host,
                        const char *path, const char *token, unsigned timeout_s, unsigned *status,
                        char *err);

/* Why client_ws_relay() returned. */
enum client_ws_end {
    CLIENT_WS_END_PEER_CLOSED, /* a close frame, or the connection ended */
    CLIENT_WS_END_DETACHED,    /* Ctrl-A x on a terminal */
    CLIENT_WS_END_INPUT,       /* the end of input (not a terminal) */
};

/* Relays: bytes read from in_fd go out as binary frames (through the Ctrl-A escape keys of
 * console.h when tty), the server's data frames go to out_fd, pings are answered with pongs.
 * At the end of input it sends a close frame and waits (a few seconds) for the server's.
 * Returns 0 and *end, or -errno with err (a protocol error, a failed write). */
int client_ws_relay(struct client_ws *ws, int in_fd, int out_fd, bool tty, enum client_ws_end *end,
                    char *err);

void client_ws_free(struct client_ws *ws);

#endif
