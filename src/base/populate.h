/* Mapping memory in before it is used.
 *
 * A page of anonymous or shared memory is mapped by the kernel at its first touch, one page
 * fault per 4 KiB. Where the host is itself a virtual machine a fault costs microseconds, and a
 * VMM touches many pages for the first time at once: guest RAM the loader reads images into,
 * the block arena, the TLB tables, the JIT's code cache. MADV_POPULATE_WRITE maps a range in one
 * call. Linux only; the call came with 5.14. */
#ifndef TESSERA_BASE_POPULATE_H
#define TESSERA_BASE_POPULATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Maps in, writable, the host pages that hold [p, p + len). Best effort: -1 (errno set) where
 * the kernel cannot or memory is short, and the pages then fault in as they are touched; the
 * bytes are never changed. */
static inline int mem_populate(void *p, size_t len)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p & ~(page - 1);

    if (!len)
        return 0;
    return madvise((void *)lo, (uintptr_t)p + len - lo, MADV_POPULATE_WRITE);
}

#endif
