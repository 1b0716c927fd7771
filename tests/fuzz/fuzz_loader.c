// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Isrc -o build/fuzz_loader tests/fuzz/fuzz_loader.c src/machine/loader.c src/hw/guest_mem.c src/base/dirty.c src/base/codewatch.c
// run:   build/fuzz_loader -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for the image loader (src/machine/loader.c), which reads whatever file a
 * user names with --bios, --kernel and --initrd. The input is the file (in a memfd, opened by
 * its /proc path as the VMM opens a path); it is loaded as firmware and as a kernel into a
 * small guest RAM at the virt board's addresses. Every load either fails with a one-line
 * message naming the file or reports a span that lies inside RAM and, for an ELF, an entry
 * point inside the span. ASan catches any read or write outside the file's bytes or RAM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/loader.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)

static void check_result(int rc, const struct loader_span *sp, const char *err, const char *path)
{
    if (rc) {
        if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n'))
            abort(); /* the message names the file, on one line */
        return;
    }
    if (sp->start < RAM_BASE || sp->size > RAM_SIZE || sp->start - RAM_BASE > RAM_SIZE - sp->size)
        abort();
    if (sp->entry < sp->start || sp->entry - sp->start >= (sp->size ? sp->size : 1))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_ram ram;
    static bool ram_ready;
    char path[64], err[LOADER_ERR_LEN];
    struct loader_file f;
    struct loader_span sp;
    int fd;

    if (!ram_ready) {
        if (guest_ram_init(&ram, RAM_BASE, RAM_SIZE))
            abort();
        ram_ready = true;
    }
    fd = memfd_create("fuzz-image", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (loader_open_file(path, &f, err) == 0) {
        guest_ram_clear(&ram);
        check_result(loader_load_firmware(&f, &ram, &sp, err), &sp, err, path);
        guest_ram_clear(&ram);
        check_result(loader_load_kernel(&f, &ram, RAM_BASE + 0x200, &sp, err), &sp, err, path);
        loader_close_file(&f);
    } else if (strncmp(err, path, strlen(path)) != 0) {
        abort();
    }
    close(fd);
    return 0;
}
