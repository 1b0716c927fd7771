// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/daemon/websocket.c tests/fuzz/fuzz_websocket.c -o build/fuzz_websocket -lgnutls
// run:   build/fuzz_websocket -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for what a websocket client sends (src/daemon/websocket.h): the bytes are
 * parsed as server.c's pump does, frame after frame from one buffer, until an error or the
 * end. [0] picks how the stream is cut (every frame at once, or growing one byte at a time
 * like a slow client). Checks the contract: a frame's length never passes the bytes given, its
 * payload lies inside them, a data frame within WEBSOCKET_FRAME_MAX, an error sets a close
 * code, and a prefix of a frame is never mistaken for a whole one. The rest of the input is
 * also tried as a Sec-WebSocket-Key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/websocket.h"

#define TRAP(cond)            \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct websocket_rx rx = {0}, probe;
    struct websocket_frame f;
    char key[64], accept[WEBSOCKET_ACCEPT_LEN];
    uint8_t *buf, *copy;
    size_t off = 0, avail;
    long n;

    if (size < 1)
        return 0;
    buf = malloc(size);
    copy = malloc(size);
    if (!buf || !copy)
        abort();
    memcpy(buf, data + 1, size - 1);
    size--;
    while (off < size) {
        avail = size - off;
        probe = rx;
        memcpy(copy, buf + off, avail);
        n = websocket_parse(&rx, buf + off, avail, &f);
        if (data[0] & 1) {
            /* A slow client: every prefix of the frame asks for more, or fails as it does. */
            size_t part, end = n > 0 ? (size_t)n : avail;
            struct websocket_rx p2;
            struct websocket_frame f2;
            long m;

            for (part = 0; part < end && part < 32; part++) {
                p2 = probe;
                m = websocket_parse(&p2, copy, part, &f2);
                TRAP(m == 0 || (m < 0 && n < 0));
                if (m < 0)
                    break;
            }
        }
        if (n < 0) {
            TRAP(rx.close_code == 1002 || rx.close_code == 1007 || rx.close_code == 1009);
            break;
        }
        if (n == 0)
            break;
        TRAP((size_t)n <= avail);
        TRAP(f.payload >= buf + off && f.payload + f.len == buf + off + n);
        TRAP(f.len <= (f.opcode >= 8 ? 125 : WEBSOCKET_FRAME_MAX));
        off += (size_t)n;
    }
    if (size < sizeof(key)) {
        memcpy(key, data + 1, size);
        key[size] = '\0';
        if (!websocket_accept_key(key, accept))
            TRAP(strlen(accept) == WEBSOCKET_ACCEPT_LEN - 1);
    }
    free(copy);
    free(buf);
    return 0;
}
