/* The console's websocket client (client_ws.h), RFC 6455. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>

#include "cli/client_ws.h"
#include "cli/console.h"

#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define HANDSHAKE_MAX 8192 /* the server's answer head, and an error body after it */
#define CLOSE_WAIT_MS 3000 /* after our close frame, how long the server has to answer */
#define IO_CHUNK      16384

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CLIENT_WS_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* RFC 4648 §4 base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void base64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

int client_ws_accept_key(const char *key, char *out)
{
    char text[128];
    uint8_t sha1[20];

    snprintf(text, sizeof(text), "%s%s", key, WS_GUID);
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, text, strlen(text), sha1))
        return -EIO;
    base64_encode(sha1, sizeof(sha1), out);
    return 0;
}

size_t client_ws_encode(uint8_t *out, unsigned opcode, const uint8_t *payload, size_t n,
                        const uint8_t mask[4])
{
    size_t h = 0;

    out[h++] = (uint8_t)(0x80 | (opcode & 0x0f));
    /* §5.2: 7-bit length, or 126 + 16 bits, or 127 + 64 bits, network order; MASK bit set. */
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = payload[i] ^ mask[i & 3];
    return h + n;
}

int client_ws_parse(const uint8_t *buf, size_t len, struct client_ws_frame *f, size_t *used,
                    char *err)
{
    uint64_t n;
    size_t h = 2;

    if (len < 2)
        return -EAGAIN;
    f->fin = buf[0] & 0x80;
    f->opcode = buf[0] & 0x0f;
    if (buf[0] & 0x70) {
        set_err(err, "websocket: a frame with reserved bits set (no extension was agreed)");
        return -EPROTO;
    }
    if (buf[1] & 0x80) {
        set_err(err, "websocket: a masked frame from the server (RFC 6455 §5.1)");
        return -EPROTO;
    }
    if (f->opcode > CLIENT_WS_BINARY && f->opcode != CLIENT_WS_CLOSE &&
        f->opcode != CLIENT_WS_PING && f->opcode != CLIENT_WS_PONG) {
        set_err(err, "websocket: unknown opcode %#x", f->opcode);
        return -EPROTO;
    }
    n = buf[1] & 0x7f;
    if (n == 126) {
        if (len < 4)
            return -EAGAIN;
        n = (uint64_t)buf[2] << 8 | buf[3];
        h = 4;
    } else if (n == 127) {
        if (len < 10)
            return -EAGAIN;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | buf[2 + i];
        h = 10;
    }
    if (f->opcode >= CLIENT_WS_CLOSE && (n > 125 || !f->fin)) {
        set_err(err, "websocket: a control frame that is fragmented or longer than 125 bytes");
        return -EPROTO;
    }
    if (n > CLIENT_WS_FRAME_MAX) {
        set_err(err, "websocket: a frame of %llu bytes (at most %u)", (unsigned long long)n,
                CLIENT_WS_FRAME_MAX);
        return -EPROTO;
    }
    if (len - h < n)
        return -EAGAIN;
    f->payload = buf + h;
    f->len = (size_t)n;
    *used = h + (size_t)n;
    return 0;
}

/* Waits until fd is ready for events, up to timeout_ms (-1: no limit). 0, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {fd, events, 0};
    int n;

    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n ? 0 : -ETIMEDOUT;
}

/* Sends all n bytes. 0 or -errno. */
static int send_all(const struct client_ws_io *io, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n) {
        ssize_t s = io->send(io->ctx, p, n);
        int ret;

        if (s == -EAGAIN) {
            ret = wait_fd(io->fd, POLLOUT, -1);
            if (ret)
                return ret;
            continue;
        }
        if (s <= 0)
            return s ? (int)s : -EIO;
        p += s;
        n -= (size_t)s;
    }
    return 0;
}

/* Sends one masked frame. */
static int send_frame(struct client_ws *ws, unsigned opcode, const uint8_t *payload, size_t n)
{
    uint8_t mask[4], *frame;
    size_t len;
    int ret;

    if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
        return -EIO;
    frame = malloc(n + CLIENT_WS_HEAD_MAX);
    if (!frame)
        return -ENOMEM;
    len = client_ws_encode(frame, opcode, payload, n, mask);
    ret = send_all(&ws->io, frame, len);
    free(frame);
    return ret;
}

/* Reads what the connection has into ws->in (growing it towards want bytes), always leaving
 * one byte free after the data for a NUL. Returns the count read, 0 at the peer's end, -EAGAIN
 * when nothing is there, -errno. */
static ssize_t fill(struct client_ws *ws, size_t want)
{
    ssize_t n;

    if (ws->in_cap - ws->in_len <= IO_CHUNK && ws->in_cap <= want) {
        size_t cap = ws->in_cap ? ws->in_cap * 2 : 2 * IO_CHUNK;
        uint8_t *grown = realloc(ws->in, cap);

        if (!grown)
            return -ENOMEM;
        ws->in = grown;
        ws->in_cap = cap;
    }
    if (ws->in_len + 1 >= ws->in_cap)
        return -ENOBUFS;
    n = ws->io.recv(ws->io.ctx, ws->in + ws->in_len, ws->in_cap - ws->in_len - 1);
    if (n > 0)
        ws->in_len += (size_t)n;
    return n;
}

/* The value of header name in head (the answer's header lines), NULL when absent. The value
 * runs to the line's end; *vlen gets its length. */
static const char *header_find(const char *head, const char *name, size_t *vlen)
{
    size_t n = strlen(name);

    for (const char *line = strstr(head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *v = line + 2, *end;

        if (strncasecmp(v, name, n) || v[n] != ':')
            continue;
        v += n + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        end = strstr(v, "\r\n");
        *vlen = end ? (size_t)(end - v) : strlen(v);
        while (*vlen && (v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
            (*vlen)--;
        return v;
    }
    return NULL;
}

/* Does a comma-separated header value hold token (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t t = strlen(token);

    for (size_t i = 0; i + t <= n; i++) {
        if (!strncasecmp(v + i, token, t) && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + t == n || v[i + t] == ',' || v[i + t] == ' '))
            return true;
    }
    return false;
}

/* A refused upgrade: the error message of the daemon's JSON body, if it came with the head. */
static void refusal(struct client_ws *ws, size_t head_len, unsigned status, char *err)
{
    json_t *doc = json_loadb((const char *)ws->in + head_len, ws->in_len - head_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));

    set_err(err, "%s", msg ? msg : "the daemon refused the console's websocket");
    for (char *p = err; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    (void)status;
    json_decref(doc);
}

int client_ws_handshake(struct client_ws *ws, const struct client_ws_io *io, const char *host,
                        const char *path, const char *token, unsigned timeout_s, unsigned *status,
                        char *err)
{
    char key[25], accept[29], req[2048];
    uint8_t nonce[16];
    const char *head_end, *v;
    size_t head_len = 0, vlen;
    int ret, len;

    memset(ws, 0, sizeof(*ws));
    ws->io = *io;
    *status = 0;
    /* §4.1: a random 16-byte nonce, base64-encoded. */
    if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
        set_err(err, "websocket: no random bytes for the key: %s", strerror(errno));
        return -EIO;
    }
    base64_encode(nonce, sizeof(nonce), key);
    if (client_ws_accept_key(key, accept)) {
        set_err(err, "websocket: SHA-1 is not available");
        return -EIO;
    }
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   path, host, key, token);
    if (len < 0 || (size_t)len >= sizeof(req)) {
        set_err(err, "websocket: the request is too long");
        return -EINVAL;
    }
    ret = send_all(io, req, (size_t)len);
    explicit_bzero(req, sizeof(req));
    if (ret) {
        set_err(err, "websocket: sending the request: %s", strerror(-ret));
        return ret;
    }
    for (;;) {
        ssize_t n;

        if (ws->in_len) {
            ws->in[ws->in_len] = 0; /* fill() leaves room */
            head_end = strstr((const char *)ws->in, "\r\n\r\n");
            if (head_end) {
                head_len = (size_t)(head_end - (const char *)ws->in) + 4;
                /* Header lookups stop at the head's end: "...\r\n\0\n". */
                ws->in[head_len - 2] = 0;
                break;
            }
        }
        if (ws->in_len >= HANDSHAKE_MAX) {
            set_err(err, "websocket: the answer's head is longer than %u bytes", HANDSHAKE_MAX);
            return -EPROTO;
        }
        n = fill(ws, HANDSHAKE_MAX + 1);
        if (n == -EAGAIN) {
            ret = wait_fd(io->fd, POLLIN, (int)timeout_s * 1000);
            if (ret) {
                set_err(err, "websocket: no answer from the daemon: %s", strerror(-ret));
                return ret;
            }
            continue;
        }
        if (n <= 0) {
            set_err(err, "websocket: the daemon closed the connection without answering");
            return n ? (int)n : -EPROTO;
        }
    }
    if (sscanf((const char *)ws->in, "HTTP/1.%*1[01] %3u", status) != 1) {
        set_err(err, "websocket: the answer is not HTTP/1.x");
        return -EPROTO;
    }
    if (*status != 101) {
        /* An error body may follow the head; give it a moment to arrive. */
        size_t clen = 0;

        v = header_find((const char *)ws->in, "Content-Length", &vlen);
        if (v)
            clen = strtoul(v, NULL, 10);
        while (clen && ws->in_len - head_len < clen && ws->in_len < HANDSHAKE_MAX &&
               !wait_fd(io->fd, POLLIN, 1000) && fill(ws, HANDSHAKE_MAX) > 0)
            ;
        refusal(ws, head_len, *status, err);
        return -EPERM;
    }
    v = header_find((const char *)ws->in, "Upgrade", &vlen);
    if (!v || !has_token(v, vlen, "websocket")) {
        set_err(err, "websocket: the 101 answer does not upgrade to websocket");
        return -EPROTO;
    }
    v = header_find((const char *)ws->in, "Connection", &vlen);
    if (!v || !has_token(v, vlen, "upgrade")) {
        set_err(err, "websocket: the 101 answer lacks Connection: Upgrade");
        return -EPROTO;
    }
    v = header_find((const char *)ws->in, "Sec-WebSocket-Accept", &vlen);
    if (!v || vlen != strlen(accept) || memcmp(v, accept, vlen)) {
        set_err(err, "websocket: Sec-WebSocket-Accept is missing or wrong (RFC 6455 §4.1)");
        return -EPROTO;
    }
    /* Frames the server sent right after its head stay for the relay. */
    memmove(ws->in, ws->in + head_len, ws->in_len - head_len);
    ws->in_len -= head_len;
    return 0;
}

/* Handles the complete frames in ws->in. Returns 0, 1 after the server's close frame, or
 * -errno with err. */
static int handle_frames(struct client_ws *ws, int out_fd, char *err)
{
    struct client_ws_frame f;
    size_t used, off = 0;
    int ret = 0;

    while (!ret) {
        ret = client_ws_parse(ws->in + off, ws->in_len - off, &f, &used, err);
        if (ret == -EAGAIN) {
            ret = 0;
            break;
        }
        if (ret)
            break;
        off += used;
        switch (f.opcode) {
        case CLIENT_WS_CONT:
        case CLIENT_WS_TEXT:
        case CLIENT_WS_BINARY:
            for (size_t w = 0; w < f.len;) {
                ssize_t n = write(out_fd, f.payload + w, f.len - w);

                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    set_err(err, "writing the console's output: %s", strerror(errno));
                    ret = -EIO;
                    break;
                }
                w += (size_t)n;
            }
            break;
        case CLIENT_WS_PING:
            ret = send_frame(ws, CLIENT_WS_PONG, f.payload, f.len);
            if (ret)
                set_err(err, "websocket: answering a ping: %s", strerror(-ret));
            break;
        case CLIENT_WS_PONG: break;
        case CLIENT_WS_CLOSE:
            /* §5.5.1: the body is a 2-byte status code and a UTF-8 reason. */
            if (f.len > 2) {
                size_t i, n = f.len - 2 < sizeof(ws->close_reason) - 1
                                  ? f.len - 2
                                  : sizeof(ws->close_reason) - 1;

                for (i = 0; i < n; i++) {
                    uint8_t ch = f.payload[2 + i];

                    ws->close_reason[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
                }
                ws->close_reason[i] = 0;
            }
            /* Answer with a close frame echoing the status code, then end. */
            if (!ws->close_sent) {
                send_frame(ws, CLIENT_WS_CLOSE, f.payload, f.len >= 2 ? 2 : 0);
                ws->close_sent = true;
            }
            ret = 1;
            break;
        }
    }
    memmove(ws->in, ws->in + off, ws->in_len - off);
    ws->in_len -= off;
    return ret;
}

/* Sends our close frame (1000, normal closure), once. */
static void send_close(struct client_ws *ws)
{
    static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xff};

    if (!ws->close_sent)
        send_frame(ws, CLIENT_WS_CLOSE, normal, sizeof(normal));
    ws->close_sent = true;
}

int client_ws_relay(struct client_ws *ws, int in_fd, int out_fd, bool tty, enum client_ws_end *end,
                    char *err)
{
    uint8_t buf[IO_CHUNK], filtered[IO_CHUNK];
    struct console_escape esc;
    bool input_open = true;
    int ret;

    console_escape_init(&esc, "detach");
    *end = CLIENT_WS_END_PEER_CLOSED;
    /* Frames that came with the handshake's answer. */
    ret = handle_frames(ws, out_fd, err);
    if (ret)
        return ret > 0 ? 0 : ret;
    for (;;) {
        struct pollfd p[2] = {{ws->io.fd, POLLIN, 0}, {input_open ? in_fd : -1, POLLIN, 0}};
        int n = poll(p, 2, input_open ? -1 : CLOSE_WAIT_MS);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(err, "poll: %s", strerror(errno));
            return -errno;
        }
        if (!n)
            return 0; /* our close went unanswered: end anyway */
        if (p[0].revents) {
            /* Drain the connection: a TLS layer may hold bytes poll cannot see. */
            for (;;) {
                ssize_t got = fill(ws, ws->in_len + IO_CHUNK);

                if (got == -EAGAIN)
                    break;
                if (got == 0)
                    return 0;
                if (got < 0) {
                    set_err(err, "websocket: receiving: %s", strerror((int)-got));
                    return (int)got;
                }
                ret = handle_frames(ws, out_fd, err);
                if (ret)
                    return ret > 0 ? 0 : ret;
                if (ws->in_len > CLIENT_WS_FRAME_MAX + CLIENT_WS_HEAD_MAX) {
                    set_err(err, "websocket: a frame larger than %u bytes", CLIENT_WS_FRAME_MAX);
                    return -EPROTO;
                }
            }
        }
        if (!input_open || !p[1].revents)
            continue;
        n = (int)read(in_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *end = CLIENT_WS_END_INPUT;
            input_open = false;
            send_close(ws);
            continue;
        }
        if (tty) {
            size_t o;
            bool quit = console_escape_filter(&esc, buf, (size_t)n, filtered, &o);

            ret = o ? send_frame(ws, CLIENT_WS_BINARY, filtered, o) : 0;
            if (quit) {
                *end = CLIENT_WS_END_DETACHED;
                send_close(ws);
                return 0;
            }
        } else {
            ret = send_frame(ws, CLIENT_WS_BINARY, buf, (size_t)n);
        }
        if (ret) {
            set_err(err, "websocket: sending: %s", strerror(-ret));
            return ret;
        }
    }
}

void client_ws_free(struct client_ws *ws)
{
    free(ws->in);
    ws->in = NULL;
    ws->in_len = ws->in_cap = 0;
}
