/* Tessera hostile-guest tests: the bare-metal framework (checks, reporting, console output,
 * time, guarded accesses, memory helpers). Freestanding C, M-mode, one hart, no interrupts.
 *
 * A test is one .c file with `int main(void)` that returns 0 (pass) or calls CHECK() for each
 * numbered check. A failing check prints a line on the serial console and reports
 * `(n << 16) | 0x3333` to the test device, so the VMM exits with status n. Check numbers are
 * 1..191 and unique within a file (run.sh verifies both), so `grep -n "CHECK(12," file.c` finds
 * check 12. An unexpected trap reports 240 + mcause (exception) or 208 + mcause (interrupt),
 * as the ISA tests do, with the running check in the high byte of the code. */
#ifndef TESSERA_HOSTILE_H
#define TESSERA_HOSTILE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define FINISHER      0x100000UL
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL 0x3333
#define UART_BASE     0x10000000UL
#define CLINT_MTIME   0x200bff8UL
#define MTIME_HZ      10000000ULL /* virt timebase */

#define RAM_BASE 0x80000000UL
#define RAM_SIZE (128UL << 20) /* run.sh starts every test with --mem 128M */
#define RAM_END  (RAM_BASE + RAM_SIZE)

/* Fixed guest memory regions (link.ld keeps the image below the arena). */
#define DMA_ARENA     0x80100000UL /* 1 MiB per virtio slot, rings and small buffers */
#define DMA_SLOT_SIZE 0x100000UL
#define SCRATCH_BASE  0x81000000UL /* 16 MiB of pages the tests may give away or corrupt */
#define BIG_BUF       0x82000000UL /* 64 MiB for oversized requests */
#define BIG_BUF_SIZE  (64UL << 20)

/* The check that is running (reported with unexpected traps), and how many check evaluations
 * passed (printed at the end). */
extern volatile uint32_t hostile_check;
extern uint32_t hostile_checks_passed;

/* Check n: if cond is false, report failure of check n (never returns). */
#define CHECK(n, cond)                                    \
    do {                                                  \
        hostile_check = (n);                              \
        if (!(cond))                                      \
            hostile_fail((n), #cond, __FILE__, __LINE__); \
        hostile_checks_passed++;                          \
    } while (0)

/* Console output (16550 at 0x1000_0000): %s %c %d %u %x %lx %lu %ld %p, with an optional
 * field width (%08x). */
void say(const char *fmt, ...);
void vsay(const char *fmt, va_list ap);

/* Names the device the following checks run on, for failure messages ("slot 2 virtio-blk"). */
void hostile_set_context(const char *what);

__attribute__((noreturn)) void hostile_fail(unsigned n, const char *cond, const char *file,
                                            int line);
__attribute__((noreturn)) void hostile_exit(int code);

/* mtime (10 MHz) and busy waits. */
uint64_t now_ticks(void);
void delay_us(uint64_t us);
#define US_TO_TICKS(us) ((uint64_t)(us) * (MTIME_HZ / 1000000))

/* Guarded MMIO/memory access (crt0.S): 0 when done, else mcause + 1. */
long guard_load(uintptr_t addr, unsigned size, uint64_t *val);
long guard_store(uintptr_t addr, unsigned size, uint64_t val);

/* Plain volatile accesses. */
static inline uint32_t rd32(uintptr_t a)
{
    return *(volatile uint32_t *)a;
}
static inline void wr32(uintptr_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;
}
static inline uint16_t rd16(uintptr_t a)
{
    return *(volatile uint16_t *)a;
}
static inline void wr16(uintptr_t a, uint16_t v)
{
    *(volatile uint16_t *)a = v;
}
static inline void wr8(uintptr_t a, uint8_t v)
{
    *(volatile uint8_t *)a = v;
}
static inline uint8_t rd8(uintptr_t a)
{
    return *(volatile uint8_t *)a;
}

/* Full fence, device I/O included: orders ring writes before a kick and the used index before
 * the element reads. */
static inline void mb(void)
{
    __asm__ __volatile__("fence iorw, iorw" ::: "memory");
}

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* The byte of the runner's disk pattern at byte offset `off` of the image (run.sh writes the
 * same function with Python). */
static inline uint8_t disk_pattern(uint64_t off)
{
    return (uint8_t)((off * 7) ^ (off >> 9) ^ 0x5a);
}

#endif
