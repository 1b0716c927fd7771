/* The hostile-guest test framework: reporting, console output, time, memory helpers. */
#include "hostile.h"

volatile uint32_t hostile_check;
uint32_t hostile_checks_passed;
static const char *hostile_context = "";

static void uart_putc(char c)
{
    /* LSR bit 5: transmit holding register empty. Bounded wait: the tests must not hang on a
     * UART that never drains. */
    for (int i = 0; i < 100000 && !(rd8(UART_BASE + 5) & 0x20); i++)
        ;
    wr8(UART_BASE, (uint8_t)c);
}

static void put_str(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, int width, char pad, int neg)
{
    char buf[24];
    int i = 0;

    do {
        unsigned d = (unsigned)(v % base);

        buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (neg)
        buf[i++] = '-';
    while (i < width--)
        uart_putc(pad);
    while (i)
        uart_putc(buf[--i]);
}

void vsay(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        int width = 0, lng = 0;
        char pad = ' ';

        if (*fmt != '%') {
            if (*fmt == '\n')
                uart_putc('\r');
            uart_putc(*fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0')
            pad = '0';
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            lng = 1, fmt++;
        switch (*fmt) {
        case 's': put_str(va_arg(ap, const char *)); break;
        case 'c': uart_putc((char)va_arg(ap, int)); break;
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad, 0);
            break;
        case 'x':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad, 0);
            break;
        case 'p':
            put_str("0x");
            put_num((uintptr_t)va_arg(ap, void *), 16, width, pad, 0);
            break;
        case '%': uart_putc('%'); break;
        default: uart_putc('?'); break;
        }
    }
}

void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

void hostile_set_context(const char *what)
{
    hostile_context = what;
}

static __attribute__((noreturn)) void finish(uint32_t value)
{
    for (;;) {
        wr32(FINISHER, value);
        __asm__ __volatile__("wfi");
    }
}

void hostile_exit(int code)
{
    if (code == 0) {
        say("hostile: pass (%u check evaluations)\n", hostile_checks_passed);
        finish(FINISHER_PASS);
    }
    say("hostile: fail, code %d\n", code);
    finish(((uint32_t)code << 16) | FINISHER_FAIL);
}

void hostile_fail(unsigned n, const char *cond, const char *file, int line)
{
    say("FAIL check %u [%s] %s:%d: %s\n", n, hostile_context, file, line, cond);
    finish((n << 16) | FINISHER_FAIL);
}

/* Called from crt0.S on a trap nobody expected; reports like the ISA tests. */
__attribute__((noreturn)) void trap_unexpected(uint64_t cause, uint64_t epc, uint64_t tval)
{
    uint32_t c = (uint32_t)(cause & 0xf) + ((int64_t)cause < 0 ? 0xd0 : 0xf0);

    say("FAIL unexpected trap during check %u [%s]: mcause 0x%lx mepc 0x%lx mtval 0x%lx\n",
        hostile_check, hostile_context, cause, epc, tval);
    finish((((hostile_check & 0xff) << 8 | c) << 16) | FINISHER_FAIL);
}

uint64_t now_ticks(void)
{
    return *(volatile uint64_t *)CLINT_MTIME;
}

void delay_us(uint64_t us)
{
    uint64_t end = now_ticks() + US_TO_TICKS(us);

    while (now_ticks() < end)
        ;
}

/* The compiler may emit calls to these even with -ffreestanding. The byte loops are kept as
 * loops (no recognition as calls to themselves) by -fno-builtin in run.sh. */
void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;

    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;

    while (n--)
        *p++ = *q++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;

    if (p < q) {
        while (n--)
            *p++ = *q++;
    } else {
        while (n--)
            p[n] = q[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;

    for (; n; n--, p++, q++) {
        if (*p != *q)
            return *p < *q ? -1 : 1;
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}
