#include "hw/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_ram_init(struct guest_ram *ram, gpa_t base, uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);

    if (p == MAP_FAILED)
        return -errno;
    if (dirty_log_init(&ram->dirty, size >> DIRTY_PAGE_SHIFT)) {
        munmap(p, size);
        return -ENOMEM;
    }
    ram->base = base;
    ram->size = size;
    ram->host = p;
    return 0;
}

void guest_ram_destroy(struct guest_ram *ram)
{
    if (ram->host)
        munmap(ram->host, ram->size);
    ram->host = NULL;
    dirty_log_destroy(&ram->dirty);
}

void guest_ram_clear(struct guest_ram *ram)
{
    /* On a private anonymous mapping MADV_DONTNEED drops the pages: later reads see zeros. */
    if (madvise(ram->host, ram->size, MADV_DONTNEED) != 0)
        memset(ram->host, 0, ram->size);
    dirty_log_mark(&ram->dirty, 0, ram->size);
}
