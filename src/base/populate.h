/* Mapping memory in before it is used.
 *
 * A page of anonymous or shared memory is mapped by the kernel at its first touch, one page
 * fault per 4 KiB. Where the host is itself a virtual machine a fault costs microseconds, and a
 * VMM touches many pages for the first time at once: guest RAM the loader reads images into,
 * the block arena, the TLB tables, the JIT's code cache. MADV_POPULATE_WRITE maps a range in one
 * call (Linux 5.14 and later); MADV_HUGEPAGE makes each later fault map 2 MiB. Linux only. */
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

/* Asks for transparent huge pages behind [p, p + len) where the host's setting allows them
 * (/sys/kernel/mm/transparent_hugepage/enabled: always or madvise): a first touch then maps
 * 2 MiB in one fault, and later accesses miss the host's TLB less, for the untouched rest of
 * each huge page in RSS. A fault costs 10-15 us where the host is itself a VM (0.8 to 9 us
 * per 4 KiB with huge pages). Best effort: -1 (errno set, EINVAL without THP), and memory
 * works the same. Shared memory (a memfd) follows shmem_enabled instead. */
static inline int mem_huge(void *p, size_t len)
{
    return madvise(p, len, MADV_HUGEPAGE);
}

#endif
