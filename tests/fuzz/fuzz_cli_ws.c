// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc $(pkg-config --cflags slirp gnutls libcurl) $(find src -name '*.c' ! -name main.c | sort) tests/fuzz/fuzz_cli_ws.c -o build/fuzz_cli_ws $(make -s --no-print-directory print-libs)
// run:   build/fuzz_cli_ws -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for `tessera vm console`'s websocket client (src/cli/client_ws.h): what a
 * hostile daemon sends. Input [0] bit 0 picks the part: the opening handshake's answer (the
 * rest of the input, served in chunks of [0] >> 1 bytes + 1), or the relay fed the rest as the
 * server's frames (data, pings, closes, garbage), its output going to /dev/null. Either returns
 * an error or ends; nothing may crash, leak or read out of bounds. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/client_ws.h"

struct feed {
    const uint8_t *data;
    size_t len, chunk;
};

static ssize_t feed_recv(void *ctx, void *buf, size_t n)
{
    struct feed *f = ctx;

    if (n > f->len)
        n = f->len;
    if (n > f->chunk)
        n = f->chunk;
    memcpy(buf, f->data, n);
    f->data += n;
    f->len -= n;
    return (ssize_t)n; /* 0 at the end: the server closed */
}

static ssize_t sink_send(void *ctx, const void *buf, size_t n)
{
    return (ssize_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1, in[2] = {-1, -1}, hup[2] = {-1, -1};
    char err[CLIENT_WS_ERR_LEN];
    struct client_ws ws;
    struct feed f;
    struct client_ws_io io;
    enum client_ws_end end;
    unsigned status;

    if (size < 1)
        return 0;
    /* Once: output to /dev/null, an input that never has bytes, and a socket whose peer is
     * gone (always readable) for the relay to poll. */
    if (devnull < 0) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0 || pipe(in) || socketpair(AF_UNIX, SOCK_STREAM, 0, hup))
            abort();
        close(hup[1]);
    }
    f = (struct feed){data + 1, size - 1, (size_t)(data[0] >> 1) + 1};
    io = (struct client_ws_io){.ctx = &f, .fd = hup[0], .send = sink_send, .recv = feed_recv};
    if (!(data[0] & 1)) {
        if (client_ws_handshake(&ws, &io, "localhost", "/api/v1/vms/x/console", "tsr_x", 1, &status,
                                err) == 0)
            abort(); /* the accept key depends on a random nonce the input cannot know */
        client_ws_free(&ws);
        return 0;
    }
    memset(&ws, 0, sizeof(ws));
    ws.io = io;
    ws.in = malloc(f.len + 1);
    if (!ws.in)
        return 0;
    memcpy(ws.in, f.data, f.len);
    ws.in_len = f.len;
    ws.in_cap = f.len + 1;
    f.len = 0;
    client_ws_relay(&ws, in[0], devnull, false, &end, err);
    client_ws_free(&ws);
    return 0;
}
