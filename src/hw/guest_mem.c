#include "hw/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/populate.h"

static void pagemap_open_once(void);

int guest_ram_init(struct guest_ram *ram, gpa_t base, uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);

    if (p == MAP_FAILED)
        return -errno;
    /* Guest RAM is the VMM's alone: a process it forks (the file broker) must not share it.
     * Shared, every page loaded before the fork (firmware, kernel, initrd) would be
     * copy-on-write, and the guest's first write to each would copy it. Best effort. */
    madvise(p, size, MADV_DONTFORK);
    if (dirty_log_init(&ram->dirty, size >> DIRTY_PAGE_SHIFT)) {
        munmap(p, size);
        return -ENOMEM;
    }
    if (code_watch_init(&ram->code, size >> CODE_WATCH_PAGE_SHIFT)) {
        dirty_log_destroy(&ram->dirty);
        munmap(p, size);
        return -ENOMEM;
    }
    ram->base = base;
    ram->size = size;
    ram->host = p;
    /* Now, while /proc/self is still ours: once the VMM switches users it is not dumpable,
     * and pagemap (mode 0400) then belongs to root. */
    pagemap_open_once();
    return 0;
}

void guest_ram_destroy(struct guest_ram *ram)
{
    if (ram->host)
        munmap(ram->host, ram->size);
    ram->host = NULL;
    dirty_log_destroy(&ram->dirty);
    code_watch_destroy(&ram->code);
}

int guest_ram_set_mergeable(struct guest_ram *ram, bool on)
{
    return madvise(ram->host, ram->size, on ? MADV_MERGEABLE : MADV_UNMERGEABLE) ? -errno : 0;
}

int guest_ram_set_huge(struct guest_ram *ram)
{
    return mem_huge(ram->host, ram->size) ? -errno : 0;
}

void guest_ram_clear(struct guest_ram *ram)
{
    /* On a private anonymous mapping MADV_DONTNEED drops the pages: later reads see zeros. */
    if (madvise(ram->host, ram->size, MADV_DONTNEED) != 0)
        memset(ram->host, 0, ram->size);
    dirty_log_mark(&ram->dirty, 0, ram->size);
    code_watch_write(&ram->code, 0, ram->size);
}

/* /proc/self/pagemap: one u64 per virtual page of this process; bit 63 set when a page is
 * present, bit 62 when it is swapped out. A page of a private anonymous mapping with neither
 * has never been written (or was dropped with MADV_DONTNEED) and reads as zero. */
#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_SWAPPED (UINT64_C(1) << 62)

static int pagemap_fd = -1;
static pthread_once_t pagemap_once = PTHREAD_ONCE_INIT;

static void pagemap_open(void)
{
    pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

static void pagemap_open_once(void)
{
    pthread_once(&pagemap_once, pagemap_open);
}

int guest_ram_untouched(const struct guest_ram *ram, uint64_t first, unsigned count, uint64_t *out)
{
    uint64_t ent[64];
    uint64_t pages = ram->size >> DIRTY_PAGE_SHIFT;
    uintptr_t vpage = (uintptr_t)ram->host / DIRTY_PAGE_SIZE + first;
    ssize_t got;

    *out = 0;
    if (count > 64 || first > pages || count > pages - first)
        return -EINVAL;
    pagemap_open_once();
    if (pagemap_fd < 0)
        return -ENOENT;
    got = pread(pagemap_fd, ent, count * sizeof(ent[0]), (off_t)(vpage * sizeof(ent[0])));
    if (got != (ssize_t)(count * sizeof(ent[0])))
        return -EIO;
    for (unsigned i = 0; i < count; i++) {
        if (!(ent[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)))
            *out |= UINT64_C(1) << i;
    }
    return 0;
}
