// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Isrc -o build/fuzz_vhdr tests/fuzz/fuzz_vhdr.c src/net/vhdr.c
// run:   build/fuzz_vhdr -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for the virtio-net header check (src/net/vhdr.c), as a hostile guest or
 * host side drives it. Input: [0] the offloads allowed (NET_OFFLOAD_* in the low 4 bits) and
 * the direction (bit 4: incoming), then the 12 header bytes as on the wire, then the frame
 * (its length is the rest of the input, as the device sees it). Whatever the check accepts is
 * then used the way the kernel uses it: the two checksum bytes at csum_start + csum_offset
 * and the hdr_len bytes of headers are read from a heap copy of exactly the frame's length
 * (ASan faults any byte past it), and the segment count must stay within what the smallest
 * MSS allows. The software offload (net_vhdr_finish()) then finishes the frame: every
 * segment it emits is read whole and must be a frame of at most NET_FRAME_MAX bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static int emit(void *opaque, const uint8_t *frame, size_t len)
{
    uint8_t x = 0;

    if (len > NET_FRAME_MAX)
        abort();
    for (size_t i = 0; i < len; i++)
        x ^= frame[i];
    *(uint8_t *)opaque ^= x;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mix = 0;
    volatile uint8_t sink = 0;
    struct net_vhdr h;
    uint8_t *frame;
    size_t len;

    if (size < 1 + NET_VHDR_LEN)
        return 0;
    len = size - 1 - NET_VHDR_LEN;
    net_vhdr_from_le(&h, data + 1);
    frame = malloc(len ? len : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + 1 + NET_VHDR_LEN, len);
    if (net_vhdr_check(&h, len, data[0] & 0xf, data[0] & 0x10, NULL) == 0) {
        if (h.flags & NET_VHDR_F_NEEDS_CSUM) {
            sink ^= frame[h.csum_start + h.csum_offset];
            sink ^= frame[h.csum_start + h.csum_offset + 1];
        }
        if ((h.gso_type & 0x7f) != NET_VHDR_GSO_NONE) {
            for (size_t i = 0; i < h.hdr_len; i++)
                sink ^= frame[i];
            if (net_vhdr_segments(&h, len) > NET_FRAME_MAX / NET_VHDR_MIN_GSO + 1)
                abort();
        }
    }
    net_vhdr_finish(&h, frame, len, emit, &mix, NULL);
    free(frame);
    (void)sink;
    return 0;
}
