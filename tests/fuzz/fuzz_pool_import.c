// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/block/*.c src/base/log.c src/base/hostfs.c src/daemon/pool*.c tests/fuzz/fuzz_pool_import.c -lz -lzstd -o build/fuzz_pool_import
// run:   build/fuzz_pool_import -max_total_time=60 -max_len=262144 -timeout=10 -close_fd_mask=2 build/fuzz-corpus/fuzz_pool_import
// clang-format on
/* libFuzzer target for volume_import(): the input is a hostile uploaded image.
 *
 * Input layout: byte 0 bit 0 picks the volume's format (qcow2 or raw), the rest is the
 * uploaded file, in a memfd. Import detects qcow2 by its magic, reads the header for a
 * backing file or an external data file, opens the image in the block layer and copies it
 * into a new volume of a temporary pool, which is then read back (volume_info) and deleted.
 * The cap on the virtual size is 16 MiB so that one run stays short. Errors are expected;
 * crashes, sanitizer reports, leaks, hangs, and a refused import that leaves a file in the
 * pool are bugs (the last one aborts). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/pool.h"

static struct pool *pool;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[POOL_ERR_LEN], tmpl[] = "/tmp/fuzz_pool.XXXXXX";
    struct volume_info info;
    int fd, ret;

    if (!pool && (!mkdtemp(tmpl) || pool_open(tmpl, &pool, err) < 0))
        abort();
    if (size < 1)
        return 0;
    fd = memfd_create("upload", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data + 1, size - 1) == (ssize_t)(size - 1)) {
        ret = volume_import(pool, "t/v", (data[0] & 1) ? POOL_FORMAT_QCOW2 : POOL_FORMAT_RAW, fd,
                            16u << 20, err);
        if (ret == 0) {
            if (volume_info(pool, "t/v", &info, err) < 0 || volume_delete(pool, "t/v", err) < 0)
                abort();
        } else if (volume_info(pool, "t/v", &info, err) != -ENOENT) {
            abort(); /* a refused upload left something behind */
        }
    }
    close(fd);
    return 0;
}
