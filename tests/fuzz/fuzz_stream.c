// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -D_GNU_SOURCE -Isrc src/vmm/stream.c src/vmm/transport.c src/hw/guest_mem.c src/base/dirty.c src/base/codewatch.c tests/fuzz/fuzz_stream.c -lz -lzstd -o build/fuzz_stream
// clang-format on
/* The state stream reader on hostile bytes: a snapshot file or a migration connection is
 * outside input. Each input is fed through a pipe-like memfd into a 1 MiB RAM; the reader must
 * refuse or apply without touching anything outside RAM, leaking, or hanging. The first input
 * bytes after the magic are fixed up with probability so the fuzzer gets past the header. The
 * fuzz build accepts any record checksum (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION): the
 * fuzzer cannot forge CRCs, and the checks behind them are what it must reach. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/stream.h"

static struct guest_ram ram;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t header[] = {'T', 'S', 'R', 'S', 'T', 'A', 'T', 'E', 2, 0, 0, 0,
                                     0,   0,   0,   0,   0,   0,   0,   0,   0, 0, 0, 0,
                                     2,   0,   0,   0,   '{', '}', 0,   0,   0, 0};
    struct stream_reader *r;
    char *json = NULL;
    int fd;

    if (!ram.host && guest_ram_init(&ram, 0x80000000, 1 << 20))
        abort();
    fd = memfd_create("fuzz", 0);
    if (fd < 0)
        return 0;
    /* Half the inputs get a valid header, so records are reached. */
    if (size && (data[0] & 1)) {
        uint8_t h[sizeof(header)];

        memcpy(h, header, sizeof(h));
        h[12] = (data[0] >> 1) & 1; /* STREAM_F_DISKS: disk records are reached too */
        if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h))
            abort();
        data++;
        size--;
    }
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    lseek(fd, 0, SEEK_SET);
    if (stream_reader_create(fd, "fuzz", &r) == 0) {
        if (stream_read_header(r, &json) == 0) {
            for (int i = 0; i < 10000; i++) {
                struct stream_record rec;

                if (stream_read_next(r, &ram, &rec) || rec.item == STREAM_ITEM_END)
                    break;
            }
        }
        free(json);
        stream_reader_destroy(r);
    }
    close(fd);
    return 0;
}
