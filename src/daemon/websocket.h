/* RFC 6455 websockets, the server's side, as pure functions on buffers: the handshake's
 * accept key (§4.2.2), parsing the frames a client sends (§5.2: masked, fragmented, control
 * frames between fragments, UTF-8 checked for text across fragments, §8.1) and the headers of
 * the frames the server sends (unmasked). server.c pumps a VM's console through them; the
 * fuzz target tests/fuzz/fuzz_websocket.c feeds them hostile bytes.
 *
 * Limits: a data frame carries at most WEBSOCKET_FRAME_MAX bytes (larger: close code 1009),
 * so one frame always fits a buffer of WEBSOCKET_BUF_LEN; a message may have any number of
 * fragments, each handed on as it arrives (nothing is reassembled). Any thread; no state but
 * the caller's struct websocket_rx. */
#ifndef TESSERA_DAEMON_WEBSOCKET_H
#define TESSERA_DAEMON_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBSOCKET_FRAME_MAX  (64u << 10)
#define WEBSOCKET_HDR_MAX    14 /* 2 + 8 (length) + 4 (mask) */
#define WEBSOCKET_BUF_LEN    (WEBSOCKET_FRAME_MAX + WEBSOCKET_HDR_MAX)
#define WEBSOCKET_ACCEPT_LEN 29 /* base64 of a SHA-1, with the NUL */

/* Opcodes (§5.2). */
enum {
    WEBSOCKET_CONT = 0x0,
    WEBSOCKET_TEXT = 0x1,
    WEBSOCKET_BINARY = 0x2,
    WEBSOCKET_CLOSE = 0x8,
    WEBSOCKET_PING = 0x9,
    WEBSOCKET_PONG = 0xa,
};

/* Close codes (§7.4.1). */
enum {
    WEBSOCKET_NORMAL = 1000,
    WEBSOCKET_GOING_AWAY = 1001,
    WEBSOCKET_PROTOCOL_ERROR = 1002,
    WEBSOCKET_INVALID_DATA = 1007,
    WEBSOCKET_TOO_BIG = 1009,
    WEBSOCKET_INTERNAL_ERROR = 1011,
};

/* What the parser remembers between frames: zero it before the first. */
struct websocket_rx {
    bool in_message;   /* a fragmented data message has begun */
    bool text;         /* ... and it is text */
    uint8_t utf8_need; /* continuation bytes still due in the text */
    uint8_t utf8_lo, utf8_hi;
    uint16_t close_code; /* after an error: the code to close with */
};

/* One frame, as parsed. */
struct websocket_frame {
    unsigned opcode; /* the frame's own: WEBSOCKET_CONT for a continuation */
    bool fin;
    bool text;           /* data (first or continuation) of a text message */
    uint8_t *payload;    /* into the caller's buffer, unmasked in place */
    size_t len;          /* payload bytes */
    uint16_t close_code; /* WEBSOCKET_CLOSE: the code given (1005 when none, §7.1.5) */
};

/* Checks the client's Sec-WebSocket-Key (base64 of 16 bytes, §4.1) and writes the
 * Sec-WebSocket-Accept value into out. 0, or -EINVAL for a malformed key. */
int websocket_accept_key(const char *key, char out[WEBSOCKET_ACCEPT_LEN]);

/* Parses the frame at the start of buf (len bytes). Returns its total length (> 0) with *f
 * filled and its payload unmasked in place; 0 when buf does not hold all of it yet (read
 * more: a frame within the limits fits WEBSOCKET_BUF_LEN); or -EPROTO, -EMSGSIZE or -EILSEQ
 * with rx->close_code set (1002, 1009, 1007): the connection must then be closed with it. */
long websocket_parse(struct websocket_rx *rx, uint8_t *buf, size_t len, struct websocket_frame *f);

/* Writes the header of a server frame (FIN set, unmasked, §5.1) for a payload of len bytes
 * into hdr (WEBSOCKET_HDR_MAX bytes); returns the header's length. */
size_t websocket_header(uint8_t *hdr, unsigned opcode, size_t len);

#endif
