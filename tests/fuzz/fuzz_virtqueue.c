// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc src/hw/virtio/virtqueue.c src/hw/guest_mem.c src/base/dirty.c src/base/codewatch.c src/base/log.c tests/fuzz/fuzz_virtqueue.c -o build/fuzz_virtqueue
// run:   build/fuzz_virtqueue -max_total_time=60 -max_len=70000 [corpus-dir]
// clang-format on
/* libFuzzer target for the device side of the split virtqueue: the input is a hostile driver.
 *
 * Input layout (little-endian):
 *   [0]      log2 of the queue size (low 4 bits: 1..32768)
 *   [1]      flags: 1 EVENT_IDX, 2 INDIRECT_DESC, 4 raw ring addresses (usually refused),
 *            8 disable notifications before popping, 16 push `written` from the input,
 *            32 unpop and re-pop the first chain of each round, 64 misalign the three areas
 *   [2..3]   descriptor table offset / 16        [4..5] avail ring offset / 2
 *   [6..7]   used ring offset / 4                [8..9] starting ring index (both sides)
 *   [10..13] `written` for every push            [14..15] rounds: pop-all/push-all passes
 *   [16..]   guest RAM contents (the rest of RAM is zero)
 * With the raw flag, [2..7] are three 64 KiB-page numbers in a 4 GiB window that starts 2 GiB
 * below RAM (and so wraps below address 0): areas anywhere, mostly refused by setup.
 *
 * Guest RAM is a malloc'd RAM_SIZE buffer at a non-zero guest address, so AddressSanitizer sees
 * every byte the queue code touches outside it. Each popped buffer's first and last bytes are
 * read and written, which proves (under ASan) that every iovec lies inside RAM. Buffers may
 * overlap the rings, as a hostile driver can arrange: the queue code must survive that too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "hw/guest_mem.h"
#include "hw/virtio/virtqueue.h"

#define RAM_BASE UINT64_C(0x40000000)
#define RAM_SIZE (64u * 1024)
#define HDR      16

static struct virtq_req req;
static unsigned errors;

static void on_error(void *opaque)
{
    (void)opaque;
    errors++;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* Touches both ends of every buffer and moves a few bytes through the copy helpers. */
static void consume(const struct virtq_req *r)
{
    volatile uint8_t sink = 0;
    uint8_t buf[64];

    for (unsigned i = 0; i < r->nout + r->nin; i++) {
        uint8_t *p = r->iov[i].iov_base;
        size_t n = r->iov[i].iov_len;

        if (n) {
            sink ^= p[0];
            sink ^= p[n - 1];
        }
    }
    for (unsigned i = 0; i < r->nin; i++) {
        uint8_t *p = r->in[i].iov_base;
        size_t n = r->in[i].iov_len;

        if (n) {
            p[0] = 0xa5;
            p[n - 1] = 0x5a;
        }
    }
    virtq_req_read(r, r->out_len / 2, buf, sizeof(buf));
    virtq_req_write(r, r->in_len / 2, buf, sizeof(buf));
    (void)sink;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR); /* guest errors are the point here */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct guest_ram ram = {0};
    struct virtq vq;
    struct virtq_config cfg;
    uint8_t flags;
    uint16_t start, rounds;
    uint32_t written;
    unsigned budget;

    if (size < HDR)
        return 0;
    ram.base = RAM_BASE;
    ram.size = RAM_SIZE;
    ram.host = calloc(1, RAM_SIZE);
    if (!ram.host)
        return 0;
    memcpy(ram.host, data + HDR, size - HDR < RAM_SIZE ? size - HDR : RAM_SIZE);

    flags = data[1];
    cfg.num = 1u << (data[0] & 15);
    cfg.event_idx = flags & 1;
    cfg.indirect = flags & 2;
    if (flags & 4) {
        cfg.desc = RAM_BASE - UINT64_C(0x80000000) + (uint64_t)get16(data + 2) * 0x10000;
        cfg.avail = RAM_BASE - UINT64_C(0x80000000) + (uint64_t)get16(data + 4) * 0x10000;
        cfg.used = RAM_BASE - UINT64_C(0x80000000) + (uint64_t)get16(data + 6) * 0x10000;
    } else {
        cfg.desc = RAM_BASE + (uint64_t)get16(data + 2) * 16 % RAM_SIZE;
        cfg.avail = RAM_BASE + (uint64_t)get16(data + 4) * 2 % RAM_SIZE;
        cfg.used = RAM_BASE + (uint64_t)get16(data + 6) * 4 % RAM_SIZE;
    }
    if (flags & 64) {
        cfg.desc += 8;
        cfg.avail += 1;
        cfg.used += 2;
    }
    start = get16(data + 8);
    written = get32(data + 10);
    rounds = (uint16_t)(1 + get16(data + 14) % 4);

    errors = 0;
    virtq_init(&vq, "fuzz", 0, on_error, NULL);
    if (virtq_setup(&vq, &ram, &cfg) != 0)
        goto out;
    /* Start both sides mid-way through the 16-bit index space (the harness knows the layout of
     * struct virtq; a device never touches these fields). */
    vq.last_avail = start;
    vq.used_idx = start;
    vq.signalled_used = start;
    if (flags & 8)
        virtq_disable_notify(&vq);

    /* At most num chains are pending at once, but the buffers we write
     * may overlap the avail ring and keep moving its index; cap the work per input. */
    budget = 4 * cfg.num + 16;
    for (unsigned r = 0; r < rounds && budget; r++) {
        int rc = 0;

        bool first = true;

        while (budget && (rc = virtq_pop(&vq, &req)) == 1) {
            budget--;
            if (first && (flags & 32)) {
                /* The chain is popped again. It need not be the same one: the input may
                 * overlap the rings, so the avail_event the device writes can change them. */
                virtq_unpop(&vq);
                if (virtq_pop(&vq, &req) != 1)
                    break;
            }
            first = false;
            if (req.head >= cfg.num || req.nout + req.nin > VIRTQ_MAX_SEGS ||
                req.out_len + req.in_len > (UINT64_C(1) << 32))
                abort(); /* a postcondition of virtq_pop() broke */
            consume(&req);
            virtq_push(&vq, &req, flags & 16 ? written : (uint32_t)req.in_len);
        }
        if (rc < 0 && (errors != 1 || virtq_pop(&vq, &req) != rc || errors != 1))
            abort(); /* a broken queue must stay broken and report once */
        virtq_needs_notify(&vq);
        if (virtq_enable_notify(&vq) && (flags & 8))
            virtq_disable_notify(&vq);
        if (rc < 0)
            break;
    }
    virtq_reset(&vq);
out:
    free(ram.host);
    return 0;
}
