/* tessera-diskbench: disk throughput from inside the guest, for bench/bench_io.py.
 *
 *   tessera-diskbench DEVICE MODE SECONDS
 *
 * MODE is seqread, seqwrite (1 MiB requests), randread or randwrite (4 KiB requests at
 * random aligned offsets). O_DIRECT, one request at a time, so the number measures the
 * device path rather than the guest's page cache. Prints one line: "MODE MB/s IOPS". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t size, ops = 0, bytes = 0, x = 88172645463325252ull;
    const char *mode;
    size_t bs;
    double secs, t0, t;
    int fd, write_mode, random_mode;
    void *buf;

    if (argc != 4) {
        fprintf(stderr, "usage: %s DEVICE seqread|seqwrite|randread|randwrite SECONDS\n", argv[0]);
        return 2;
    }
    mode = argv[2];
    secs = atof(argv[3]);
    write_mode = strstr(mode, "write") != NULL;
    random_mode = strncmp(mode, "rand", 4) == 0;
    bs = random_mode ? 4096 : 1 << 20;
    fd = open(argv[1], (write_mode ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0 || size < (16u << 20)) {
        perror(argv[1]);
        return 1;
    }
    if (posix_memalign(&buf, 4096, bs))
        return 1;
    memset(buf, 0x5a, bs);
    t0 = now();
    do {
        uint64_t off;

        if (random_mode) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            off = (x % (size / bs)) * bs;
        } else {
            off = (ops * bs) % (size - size % bs);
        }
        if ((write_mode ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off)) != (ssize_t)bs) {
            perror("io");
            return 1;
        }
        ops++;
        bytes += bs;
        t = now() - t0;
    } while (t < secs);
    printf("%s %.2f MB/s %.0f IOPS\n", mode, bytes / t / 1e6, ops / t);
    return 0;
}
