/* The console's websocket client (src/cli/client_ws.h) against the server side of RFC 6455
 * written here: a thread on the other end of a socketpair that checks the opening handshake,
 * reads the client's masked frames and sends its own (data, fragments, ping, close). Also the
 * parser on every hostile frame RFC 6455 forbids, and the handshake's refusals. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/client_ws.h"
#include "test.h"

/* ---- The server side, written from RFC 6455 for this test ---- */

static int read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n) {
        ssize_t r = read(fd, p, n);

        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into buf. */
static int server_read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    while (n + 1 < cap) {
        if (read(fd, buf + n, 1) != 1)
            return -1;
        buf[++n] = 0;
        if (n >= 4 && !memcmp(buf + n - 4, "\r\n\r\n", 4))
            return 0;
    }
    return -1;
}

/* A server frame: never masked (§5.1). fin false starts a fragmented message. */
static size_t server_frame(uint8_t *out, bool fin, unsigned opcode, const void *payload, size_t n)
{
    size_t h = 0;

    out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (n < 126) {
        out[h++] = (uint8_t)n;
    } else if (n <= 0xffff) {
        out[h++] = 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(out + h, payload, n);
    return h + n;
}

/* Reads one client frame; checks it is masked and unmasks it. Returns the opcode, or -1. */
static int server_read_frame(int fd, uint8_t *payload, size_t cap, size_t *len, bool *masked)
{
    uint8_t h[2], ext[8], mask[4];
    uint64_t n;

    if (read_full(fd, h, 2))
        return -1;
    *masked = h[1] & 0x80;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (read_full(fd, ext, 2))
            return -1;
        n = (uint64_t)ext[0] << 8 | ext[1];
    } else if (n == 127) {
        if (read_full(fd, ext, 8))
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | ext[i];
    }
    if (n > cap || (*masked && read_full(fd, mask, 4)) || read_full(fd, payload, (size_t)n))
        return -1;
    for (size_t i = 0; *masked && i < n; i++)
        payload[i] ^= mask[i & 3];
    *len = (size_t)n;
    return h[0] & 0x0f;
}

/* The value of a request header (up to its line's end) into out. */
static bool header(const char *head, const char *name, char *out, size_t cap)
{
    const char *p = strcasestr(head, name);
    size_t n;

    if (!p)
        return false;
    p += strlen(name);
    n = strcspn(p, "\r");
    snprintf(out, cap, "%.*s", (int)n, p);
    return true;
}

struct server {
    int fd;
    const char *mode; /* "relay", "refuse", "bad-accept" */
    /* what the server saw */
    bool request_ok;
    bool pong_ok, data_ok, close_ok, all_masked;
    char typed[64];
};

static void *server_main(void *arg)
{
    struct server *s = arg;
    char head[4096], key[64], accept[32], resp[512];
    uint8_t frames[512], payload[256];
    size_t n = 0, len;
    bool masked;
    int op;

    if (server_read_head(s->fd, head, sizeof(head)))
        return NULL;
    s->request_ok = !strncmp(head, "GET /api/v1/vms/web/console HTTP/1.1\r\n", 38) &&
                    strcasestr(head, "\r\nUpgrade: websocket\r\n") &&
                    strcasestr(head, "\r\nConnection: Upgrade\r\n") &&
                    strcasestr(head, "\r\nSec-WebSocket-Version: 13\r\n") &&
                    strcasestr(head, "\r\nAuthorization: Bearer tsr_test\r\n") &&
                    strcasestr(head, "\r\nHost: localhost\r\n");
    if (!strcmp(s->mode, "refuse")) {
        const char *body = "{\"error\": {\"code\": 404, \"message\": \"vm 'web' not found\", "
                           "\"field\": null}}";

        n = (size_t)snprintf(resp, sizeof(resp),
                             "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                             strlen(body), body);
        CHECK(write(s->fd, resp, n) == (ssize_t)n);
        return NULL;
    }
    if (!header(head, "\r\nSec-WebSocket-Key: ", key, sizeof(key)) ||
        client_ws_accept_key(key, accept))
        return NULL;
    if (!strcmp(s->mode, "bad-accept"))
        accept[0] = accept[0] == 'A' ? 'B' : 'A';
    n = (size_t)snprintf(resp, sizeof(resp),
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                         accept);
    /* The first data frame and a ping come in the same write as the head: the client must
     * keep what follows the head for the relay. */
    memcpy(frames, resp, n);
    n += server_frame(frames + n, true, CLIENT_WS_BINARY, "hello ", 6);
    n += server_frame(frames + n, true, CLIENT_WS_PING, "p1", 2);
    CHECK(write(s->fd, frames, n) == (ssize_t)n);
    if (strcmp(s->mode, "relay"))
        return NULL;
    /* The pong and the typed bytes, in either order. */
    s->all_masked = true;
    while (!s->pong_ok || !s->data_ok) {
        op = server_read_frame(s->fd, payload, sizeof(payload), &len, &masked);
        if (op < 0)
            return NULL;
        s->all_masked &= masked;
        if (op == CLIENT_WS_PONG)
            s->pong_ok = len == 2 && !memcmp(payload, "p1", 2);
        if (op == CLIENT_WS_BINARY) {
            snprintf(s->typed, sizeof(s->typed), "%.*s", (int)len, payload);
            s->data_ok = true;
        }
    }
    /* A fragmented text message, then a close frame (1000). */
    n = server_frame(frames, false, CLIENT_WS_TEXT, "wor", 3);
    n += server_frame(frames + n, true, CLIENT_WS_CONT, "ld", 2);
    n += server_frame(frames + n, true, CLIENT_WS_CLOSE, "\x03\xe8the VM\x1b stopped", 17);
    CHECK(write(s->fd, frames, n) == (ssize_t)n);
    op = server_read_frame(s->fd, payload, sizeof(payload), &len, &masked);
    s->close_ok = op == CLIENT_WS_CLOSE && masked && len == 2 && !memcmp(payload, "\x03\xe8", 2);
    return NULL;
}

/* ---- The client's io over the socketpair ---- */

static ssize_t fd_send(void *ctx, const void *buf, size_t n)
{
    ssize_t r = send(*(int *)ctx, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);

    return r < 0 ? -errno : r;
}

static ssize_t fd_recv(void *ctx, void *buf, size_t n)
{
    ssize_t r = recv(*(int *)ctx, buf, n, MSG_DONTWAIT);

    return r < 0 ? -errno : r;
}

static void test_relay(void)
{
    struct server s = {.mode = "relay"};
    int sv[2], in[2], out[2];
    struct client_ws_io io;
    struct client_ws ws;
    enum client_ws_end end;
    char err[CLIENT_WS_ERR_LEN], got[64] = "";
    unsigned status;
    pthread_t t;
    ssize_t n;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    s.fd = sv[1];
    io = (struct client_ws_io){.ctx = &sv[0], .fd = sv[0], .send = fd_send, .recv = fd_recv};
    CHECK(pthread_create(&t, NULL, server_main, &s) == 0);
    CHECK(client_ws_handshake(&ws, &io, "localhost", "/api/v1/vms/web/console", "tsr_test", 10,
                              &status, err) == 0);
    /* Typed bytes wait in stdin's pipe; its writer stays open, so the relay ends only on the
     * server's close frame. */
    CHECK(write(in[1], "typed", 5) == 5);
    CHECK(client_ws_relay(&ws, in[0], out[1], false, &end, err) == 0);
    CHECK(end == CLIENT_WS_END_PEER_CLOSED);
    CHECK(!strcmp(ws.close_reason, "the VM? stopped"));
    pthread_join(t, NULL);
    close(out[1]);
    n = read(out[0], got, sizeof(got) - 1);
    CHECK(n == 11 && !strcmp(got, "hello world"));
    CHECK(s.request_ok);
    CHECK(s.pong_ok);
    CHECK(s.data_ok && !strcmp(s.typed, "typed"));
    CHECK(s.all_masked);
    CHECK(s.close_ok);
    client_ws_free(&ws);
    close(sv[0]);
    close(sv[1]);
    close(in[0]);
    close(in[1]);
    close(out[0]);
}

/* The handshake's refusals: a 404 with the daemon's error, a wrong Sec-WebSocket-Accept. */
static void test_handshake_refused(void)
{
    static const char *const modes[] = {"refuse", "bad-accept"};

    for (size_t i = 0; i < 2; i++) {
        struct server s = {.mode = modes[i]};
        char err[CLIENT_WS_ERR_LEN];
        struct client_ws_io io;
        struct client_ws ws;
        unsigned status;
        pthread_t t;
        int sv[2], ret;

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        s.fd = sv[1];
        io = (struct client_ws_io){.ctx = &sv[0], .fd = sv[0], .send = fd_send, .recv = fd_recv};
        CHECK(pthread_create(&t, NULL, server_main, &s) == 0);
        ret = client_ws_handshake(&ws, &io, "localhost", "/api/v1/vms/web/console", "tsr_test", 10,
                                  &status, err);
        pthread_join(t, NULL);
        if (i == 0) {
            CHECK(ret == -EPERM && status == 404);
            CHECK(!strcmp(err, "vm 'web' not found"));
        } else {
            CHECK(ret == -EPROTO && status == 101);
            CHECK(strstr(err, "Sec-WebSocket-Accept") != NULL);
        }
        client_ws_free(&ws);
        close(sv[0]);
        close(sv[1]);
    }
}

/* The server closing without an answer, and an answer that is not HTTP. */
static void test_handshake_garbage(void)
{
    static const char *const answers[] = {"", "SSH-2.0-OpenSSH\r\n\r\n"};

    for (size_t i = 0; i < 2; i++) {
        char err[CLIENT_WS_ERR_LEN], head[4096];
        struct client_ws_io io;
        struct client_ws ws;
        unsigned status;
        int sv[2];

        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        io = (struct client_ws_io){.ctx = &sv[0], .fd = sv[0], .send = fd_send, .recv = fd_recv};
        /* The request fits the socket's buffer; the answer is there before the client reads. */
        CHECK(write(sv[1], answers[i], strlen(answers[i])) == (ssize_t)strlen(answers[i]));
        shutdown(sv[1], SHUT_WR);
        CHECK(client_ws_handshake(&ws, &io, "localhost", "/x", "tsr_test", 10, &status, err) ==
              -EPROTO);
        CHECK(server_read_head(sv[1], head, sizeof(head)) == 0);
        client_ws_free(&ws);
        close(sv[0]);
        close(sv[1]);
    }
}

static void test_accept_key(void)
{
    char out[29];

    /* RFC 6455 §1.3's example. */
    CHECK(client_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out) == 0);
    CHECK(!strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

/* Client frames: masked, the three length forms, the payload recovered by the server side. */
static void test_encode(void)
{
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 100000};
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *payload = malloc(100000), *frame = malloc(100000 + CLIENT_WS_HEAD_MAX);
    uint8_t *back = malloc(100000);

    for (size_t i = 0; i < 100000; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = client_ws_encode(frame, CLIENT_WS_BINARY, payload, sizes[i], mask);
        size_t head = sizes[i] < 126 ? 6 : sizes[i] <= 0xffff ? 8 : 14;
        int sv[2], op, status = -1;
        size_t len = 0;
        pid_t pid;
        bool masked = false;

        CHECK(n == head + sizes[i]);
        CHECK(frame[0] == 0x82);
        CHECK(frame[1] & 0x80);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        /* A child writes, so that a frame larger than the socket's buffer cannot block us. */
        pid = fork();
        if (pid == 0) {
            ssize_t w = write(sv[0], frame, n);

            _exit(w == (ssize_t)n ? 0 : 1);
        }
        op = server_read_frame(sv[1], back, 100000, &len, &masked);
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0);
        CHECK(op == CLIENT_WS_BINARY && masked && len == sizes[i]);
        CHECK(!memcmp(back, payload, sizes[i]));
        close(sv[0]);
        close(sv[1]);
    }
    /* RFC 6455 §5.7's example: a masked "Hello". */
    {
        static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                       0x7f, 0x9f, 0x4d, 0x51, 0x58};

        CHECK(client_ws_encode(frame, CLIENT_WS_TEXT, (const uint8_t *)"Hello", 5, mask) == 11);
        CHECK(!memcmp(frame, want, sizeof(want)));
    }
    free(payload);
    free(frame);
    free(back);
}

/* Server frames: every prefix of a good frame is -EAGAIN; forbidden frames are -EPROTO. */
static void test_parse(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *why;
    } bad[] = {
        {"\x82\x81\x00\x00\x00\x00x", 7, "masked"},
        {"\xc2\x01x", 3, "reserved bits"},
        {"\x83\x01x", 3, "unknown opcode"},
        {"\x8b\x00", 2, "unknown opcode"},
        {"\x09\x00", 2, "fragmented"},
        {"\x89\x7e\x00\x7e", 4, "fragmented or longer"},
        {"\x82\x7f\x00\x00\x00\x00\x00\x10\x00\x01", 10, "a frame of"},
        {"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, "a frame of"},
    };
    uint8_t frame[300], payload[260];
    struct client_ws_frame f;
    char err[CLIENT_WS_ERR_LEN];
    size_t n, used;

    memset(payload, 'z', sizeof(payload));
    n = server_frame(frame, true, CLIENT_WS_BINARY, payload, 260);
    for (size_t k = 0; k < n; k++)
        CHECK(client_ws_parse(frame, k, &f, &used, err) == -EAGAIN);
    CHECK(client_ws_parse(frame, n, &f, &used, err) == 0);
    CHECK(used == n && f.len == 260 && f.fin && f.opcode == CLIENT_WS_BINARY);
    CHECK(f.payload == frame + 4 && f.payload[259] == 'z');
    n = server_frame(frame, true, CLIENT_WS_CLOSE, "", 0);
    CHECK(client_ws_parse(frame, n, &f, &used, err) == 0 && f.opcode == CLIENT_WS_CLOSE);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK(client_ws_parse((const uint8_t *)bad[i].bytes, bad[i].len, &f, &used, err) ==
              -EPROTO);
        CHECK(strstr(err, bad[i].why) != NULL);
        if (!strstr(err, bad[i].why))
            fprintf(stderr, "  bad frame %zu: '%s', want '%s'\n", i, err, bad[i].why);
    }
}

/* A stream of random bytes from a hostile server never crashes the parser: each call either
 * needs more, fails, or consumes a frame within the buffer. */
static void test_parse_random(void)
{
    uint8_t buf[64];
    struct client_ws_frame f;
    char err[CLIENT_WS_ERR_LEN];
    unsigned seed = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % sizeof(buf)), used = 0;
        int ret;

        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand_r(&seed);
        ret = client_ws_parse(buf, len, &f, &used, err);
        CHECK(ret == 0 || ret == -EAGAIN || ret == -EPROTO);
        if (!ret)
            CHECK(used <= len && f.payload + f.len == buf + used);
    }
}

int main(void)
{
    test_accept_key();
    test_encode();
    test_parse();
    test_parse_random();
    test_handshake_refused();
    test_handshake_garbage();
    test_relay();
    return test_finish("cli_ws");
}
