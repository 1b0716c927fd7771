/* Saved state of the board devices and the hart, and the hart's dirty-page logging.
 *
 * For each device: drive it into a non-trivial state through its MMIO ops, save, load into a
 * fresh instance, save again (the bytes match) and compare what the guest and the interrupt
 * receivers observe. Every truncated payload and many corrupted ones are loaded too: each is
 * refused or loaded, never crashes (run under ASan by `make unit-asan`). For the hart: a
 * program in S-mode with paging, FP and an LR/SC pair stopped between LR and SC, saved,
 * loaded into a fresh hart with a copy of RAM, and both run to the end: same registers, same
 * memory, same state bytes. For the dirty log: every kind of guest store marks its page. */
#include "test.h"
#include "fake_irq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/dirty.h"
#include "base/state.h"
#include "base/time.h"
#include "cpu/rv64/rv64.h"
#include "hw/bus.h"
#include "hw/clint.h"
#include "hw/plic.h"
#include "hw/sifive_test.h"
#include "hw/uart16550.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void wire(struct irq_line *lines, struct fake_irq *rx, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        lines[i] = (struct irq_line){fake_irq_set, rx, i};
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static uint64_t rd(const struct mmio_ops *ops, void *dev, uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;

    CHECK(ops->read(dev, off, size, &v) == 0);
    return v;
}

static void wr(const struct mmio_ops *ops, void *dev, uint64_t off, unsigned size, uint64_t v)
{
    CHECK(ops->write(dev, off, size, v) == 0);
}

static bool same_bytes(const struct sbuf *a, const struct sbuf *b)
{
    return !a->oom && !b->oom && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

typedef int (*load_fn)(void *dev, struct scur *in, uint32_t version);

/* Loads `len` bytes; returns the load's result. The error line is kept in err if given. */
static int load_bytes(load_fn load, void *dev, const void *data, size_t len, uint32_t version,
                      char *err)
{
    struct scur c;
    int r;

    scur_init(&c, data, len, "test");
    r = load(dev, &c, version);
    if (err)
        snprintf(err, STATE_ERR_LEN, "%s", c.err);
    /* A refusal always says why; a success leaves no error behind. */
    CHECK(r == 0 ? !c.failed : (c.failed && c.err[0] != '\0'));
    return r;
}

/* Every proper prefix of a good payload is refused; every single-byte corruption is either
 * refused or loaded, and nothing crashes or reads out of bounds (ASan). Then the good payload
 * still loads, and a newer version number is refused. */
static void check_hostile(load_fn load, void *dev, const struct sbuf *good, uint32_t version)
{
    uint8_t *copy = malloc(good->len ? good->len : 1);
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    unsigned refused_prefixes = 0;

    CHECK(copy != NULL);
    if (!copy)
        return;
    for (size_t len = 0; len < good->len; len++) {
        memcpy(copy, good->data, len);
        refused_prefixes += load_bytes(load, dev, copy, len, version, NULL) != 0;
    }
    CHECK_EQ_U64(refused_prefixes, good->len);
    for (size_t i = 0; i < good->len; i++) {
        for (size_t f = 0; f < sizeof(flips); f++) {
            memcpy(copy, good->data, good->len);
            copy[i] ^= flips[f];
            load_bytes(load, dev, copy, good->len, version, NULL);
        }
    }
    /* One byte too many is a newer layout under an old number. */
    {
        uint8_t *longer = malloc(good->len + 1);

        CHECK(longer != NULL);
        if (longer) {
            memcpy(longer, good->data, good->len);
            longer[good->len] = 0;
            CHECK(load_bytes(load, dev, longer, good->len + 1, version, NULL) != 0);
            free(longer);
        }
    }
    CHECK(load_bytes(load, dev, good->data, good->len, version + 1, NULL) != 0);
    CHECK(load_bytes(load, dev, good->data, good->len, version, NULL) == 0);
    free(copy);
}

/* ---- CLINT --------------------------------------------------------------------------------- */

#define CLINT_HARTS 3
#define CLINT_FREQ  10000000ull
#define MTIME_OFF   0xbff8
#define CMP_OFF(h)  (0x4000 + 8 * (h))
/* The section's mtime field: after u32 harts and u64 freq_hz. */
#define CLINT_MTIME_AT 12

static int clint_load_cb(void *dev, struct scur *in, uint32_t version)
{
    return clint_load(dev, in, version);
}

static uint64_t field_u64(const struct sbuf *b, size_t at)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)b->data[at + i] << (8 * i);
    return v;
}

static void test_clint(void)
{
    static struct fake_irq msip_a[CLINT_HARTS], mtip_a[CLINT_HARTS];
    static struct fake_irq msip_b[CLINT_HARTS], mtip_b[CLINT_HARTS];
    static struct fake_irq msip_c[2], mtip_c[2];
    struct irq_line ms[CLINT_HARTS], mt[CLINT_HARTS];
    const struct mmio_ops *ops = &clint_mmio_ops;
    struct clint *a, *b, *c;
    struct sbuf sa, sb;
    uint64_t base = 0x123456789ull; /* ~8 minutes in: far from the fresh CLINT's clock */
    char err[STATE_ERR_LEN];

    wire(ms, msip_a, CLINT_HARTS);
    wire(mt, mtip_a, CLINT_HARTS);
    CHECK(clint_create(CLINT_HARTS, CLINT_FREQ, ms, mt, &a) == 0);
    wire(ms, msip_b, CLINT_HARTS);
    wire(mt, mtip_b, CLINT_HARTS);
    CHECK(clint_create(CLINT_HARTS, CLINT_FREQ, ms, mt, &b) == 0);

    /* hart 0: timer due (MTIP high); hart 1: MSIP, timer far away; hart 2: due in 300 ms. */
    wr(ops, a, MTIME_OFF, 8, base);
    wr(ops, a, 4 * 1, 4, 1);
    wr(ops, a, CMP_OFF(0), 8, base - 5);
    wr(ops, a, CMP_OFF(1), 8, base + 1000 * CLINT_FREQ);
    wr(ops, a, CMP_OFF(2), 4, (uint32_t)(base + 3 * CLINT_FREQ / 10));
    wr(ops, a, CMP_OFF(2) + 4, 4, (base + 3 * CLINT_FREQ / 10) >> 32);
    CHECK(level(&mtip_a[0]) && !level(&mtip_a[1]) && level(&msip_a[1]) && !level(&msip_a[0]));

    sbuf_init(&sa);
    sbuf_init(&sb);
    clint_save(a, &sa);
    CHECK(load_bytes(clint_load_cb, b, sa.data, sa.len, CLINT_STATE_VERSION, err) == 0);
    clint_save(b, &sb);

    /* Same bytes but for mtime, which kept counting from the saved value, not host time. */
    CHECK(sa.len == sb.len);
    if (sa.len == sb.len && sa.len > CLINT_MTIME_AT + 8) {
        uint64_t ta = field_u64(&sa, CLINT_MTIME_AT), tb = field_u64(&sb, CLINT_MTIME_AT);

        CHECK(tb >= ta && tb - ta < CLINT_FREQ / 10);
        CHECK(memcmp(sa.data, sb.data, CLINT_MTIME_AT) == 0);
        CHECK(memcmp(sa.data + CLINT_MTIME_AT + 8, sb.data + CLINT_MTIME_AT + 8,
                     sa.len - CLINT_MTIME_AT - 8) == 0);
    }
    CHECK(rd(ops, b, MTIME_OFF, 8) - base < CLINT_FREQ);
    for (unsigned h = 0; h < CLINT_HARTS; h++) {
        CHECK_EQ_U64(rd(ops, b, 4 * h, 4), rd(ops, a, 4 * h, 4));
        CHECK_EQ_U64(rd(ops, b, CMP_OFF(h), 8), rd(ops, a, CMP_OFF(h), 8));
        CHECK_EQ_U64(level(&msip_b[h]), level(&msip_a[h]));
        CHECK(atomic_load(&msip_b[h].sets) >= 1); /* driven, not left to chance */
    }
    CHECK(level(&mtip_b[0]) && !level(&mtip_b[1]));
    /* The timer thread re-planned with the loaded deadlines: hart 2's fires. */
    for (unsigned i = 0; i < 3000 && !level(&mtip_b[2]); i++)
        sleep_ms(1);
    CHECK(level(&mtip_b[2]));

    /* A machine of another shape refuses the section and names the field. */
    wire(ms, msip_c, 2);
    wire(mt, mtip_c, 2);
    CHECK(clint_create(2, CLINT_FREQ, ms, mt, &c) == 0);
    CHECK(load_bytes(clint_load_cb, c, sa.data, sa.len, CLINT_STATE_VERSION, err) != 0);
    CHECK(strstr(err, "field 'harts' is 3, this machine has 2") != NULL);
    clint_destroy(c);
    CHECK(clint_create(CLINT_HARTS, CLINT_FREQ / 2, ms, mt, &c) == 0);
    CHECK(load_bytes(clint_load_cb, c, sa.data, sa.len, CLINT_STATE_VERSION, err) != 0);
    CHECK(strstr(err, "freq_hz") != NULL);
    clint_destroy(c);

    check_hostile(clint_load_cb, b, &sa, CLINT_STATE_VERSION);

    sbuf_free(&sa);
    sbuf_free(&sb);
    clint_destroy(a);
    clint_destroy(b);
}

/* ---- PLIC ---------------------------------------------------------------------------------- */

#define PLIC_SRC      97 /* as `virt` */
#define PLIC_CTX      4
#define PRIO(s)       (0x0 + 4 * (s))
#define PENDING(w)    (0x1000 + 4 * (w))
#define ENABLE(c, w)  (0x2000 + 0x80 * (c) + 4 * (w))
#define THRESH(c)     (0x200000 + 0x1000 * (c))
#define CLAIM(c)      (0x200004 + 0x1000 * (c))
#define PLIC_WORDS    ((PLIC_SRC + 31) / 32)
#define PLIC_PRIO_AT  8 /* u32 sources, u32 contexts */
#define PLIC_LEVEL_AT (PLIC_PRIO_AT + PLIC_SRC)

static int plic_load_cb(void *dev, struct scur *in, uint32_t version)
{
    return plic_load(dev, in, version);
}

static void plic_setup(struct plic *p)
{
    const struct mmio_ops *ops = &plic_mmio_ops;

    wr(ops, p, PRIO(3), 4, 5);
    wr(ops, p, PRIO(5), 4, 2);
    wr(ops, p, PRIO(7), 4, 1);
    wr(ops, p, PRIO(33), 4, 4);
    wr(ops, p, PRIO(96), 4, 7);
    wr(ops, p, ENABLE(0, 0), 4, (1u << 3) | (1u << 5));
    wr(ops, p, ENABLE(1, 0), 4, 1u << 3);
    wr(ops, p, ENABLE(1, 1), 4, 1u << 1); /* source 33 */
    wr(ops, p, ENABLE(3, 3), 4, 1u << 0); /* source 96, priority 7, threshold 7: masked */
    wr(ops, p, THRESH(0), 4, 1);
    wr(ops, p, THRESH(3), 4, 7);
    plic_set_irq(p, 3, true);
    plic_set_irq(p, 5, true);
    plic_set_irq(p, 7, true);
    plic_set_irq(p, 33, true);
    plic_set_irq(p, 96, true);
    CHECK_EQ_U64(rd(ops, p, CLAIM(0), 4), 3); /* 3 in service */
    plic_set_irq(p, 5, false);                /* 5 stays pending: latched */
}

static void plic_compare(struct plic *a, struct fake_irq *rx_a, struct plic *b,
                         struct fake_irq *rx_b)
{
    const struct mmio_ops *ops = &plic_mmio_ops;

    for (unsigned s = 0; s < PLIC_SRC; s++)
        CHECK_EQ_U64(rd(ops, b, PRIO(s), 4), rd(ops, a, PRIO(s), 4));
    for (unsigned w = 0; w < PLIC_WORDS; w++)
        CHECK_EQ_U64(rd(ops, b, PENDING(w), 4), rd(ops, a, PENDING(w), 4));
    for (unsigned c = 0; c < PLIC_CTX; c++) {
        for (unsigned w = 0; w < PLIC_WORDS; w++)
            CHECK_EQ_U64(rd(ops, b, ENABLE(c, w), 4), rd(ops, a, ENABLE(c, w), 4));
        CHECK_EQ_U64(rd(ops, b, THRESH(c), 4), rd(ops, a, THRESH(c), 4));
        CHECK_EQ_U64(level(&rx_b[c]), level(&rx_a[c]));
    }
}

static void test_plic(void)
{
    static struct fake_irq rx_a[PLIC_CTX], rx_b[PLIC_CTX], rx_c[PLIC_CTX];
    const struct mmio_ops *ops = &plic_mmio_ops;
    struct irq_line lines[PLIC_CTX];
    struct plic *a, *b, *c;
    struct sbuf sa, sb;
    char err[STATE_ERR_LEN];
    uint8_t *bad;

    wire(lines, rx_a, PLIC_CTX);
    CHECK(plic_create(PLIC_SRC, PLIC_CTX, lines, &a) == 0);
    wire(lines, rx_b, PLIC_CTX);
    CHECK(plic_create(PLIC_SRC, PLIC_CTX, lines, &b) == 0);
    plic_setup(a);
    CHECK(level(&rx_a[0]) && level(&rx_a[1]) && !level(&rx_a[2]) && !level(&rx_a[3]));

    sbuf_init(&sa);
    sbuf_init(&sb);
    plic_save(a, &sa);
    CHECK(load_bytes(plic_load_cb, b, sa.data, sa.len, PLIC_STATE_VERSION, err) == 0);
    plic_save(b, &sb);
    CHECK(same_bytes(&sa, &sb));
    plic_compare(a, rx_a, b, rx_b);
    for (unsigned i = 0; i < PLIC_CTX; i++)
        CHECK(atomic_load(&rx_b[i].sets) >= 1);

    /* Both continue alike: claims, a completion that re-pends a high source, wires. */
    for (unsigned c2 = 0; c2 < PLIC_CTX; c2++)
        CHECK_EQ_U64(rd(ops, b, CLAIM(c2), 4), rd(ops, a, CLAIM(c2), 4));
    wr(ops, a, CLAIM(0), 4, 3);
    wr(ops, b, CLAIM(0), 4, 3);
    plic_set_irq(a, 7, false);
    plic_set_irq(b, 7, false);
    plic_compare(a, rx_a, b, rx_b);
    CHECK_EQ_U64(rd(ops, b, CLAIM(0), 4), rd(ops, a, CLAIM(0), 4));
    sbuf_free(&sb);
    sbuf_init(&sb);
    {
        struct sbuf sa2;

        sbuf_init(&sa2);
        plic_save(a, &sa2);
        plic_save(b, &sb);
        CHECK(same_bytes(&sa2, &sb));
        sbuf_free(&sa2);
    }

    /* Another shape: the message names the field and both values. */
    wire(lines, rx_c, PLIC_CTX);
    CHECK(plic_create(64, PLIC_CTX, lines, &c) == 0);
    CHECK(load_bytes(plic_load_cb, c, sa.data, sa.len, PLIC_STATE_VERSION, err) != 0);
    CHECK(strstr(err, "field 'sources' is 97, this machine has 64") != NULL);
    plic_destroy(c);
    CHECK(plic_create(PLIC_SRC, 2, lines, &c) == 0);
    CHECK(load_bytes(plic_load_cb, c, sa.data, sa.len, PLIC_STATE_VERSION, err) != 0);
    CHECK(strstr(err, "field 'contexts' is 4, this machine has 2") != NULL);
    plic_destroy(c);

    /* Values out of range are named; a refused load changes nothing. */
    bad = malloc(sa.len);
    CHECK(bad != NULL);
    if (bad) {
        struct sbuf before;

        memcpy(bad, sa.data, sa.len);
        bad[PLIC_PRIO_AT + 9] = 8;
        sbuf_init(&before);
        plic_save(b, &before);
        CHECK(load_bytes(plic_load_cb, b, bad, sa.len, PLIC_STATE_VERSION, err) != 0);
        CHECK(strstr(err, "priority[9]") != NULL);
        sbuf_free(&sb);
        sbuf_init(&sb);
        plic_save(b, &sb);
        CHECK(same_bytes(&before, &sb));
        memcpy(bad, sa.data, sa.len);
        bad[PLIC_LEVEL_AT] |= 1; /* source 0 */
        CHECK(load_bytes(plic_load_cb, b, bad, sa.len, PLIC_STATE_VERSION, err) != 0);
        CHECK(strstr(err, "field 'level'") != NULL);
        sbuf_free(&before);
        free(bad);
    }

    check_hostile(plic_load_cb, b, &sa, PLIC_STATE_VERSION);

    sbuf_free(&sa);
    sbuf_free(&sb);
    plic_destroy(a);
    plic_destroy(b);
}

/* ---- UART ---------------------------------------------------------------------------------- */

enum { U_RBR, U_IER, U_IIR, U_LCR, U_MCR, U_LSR, U_MSR, U_SCR };

static int uart_load_cb(void *dev, struct scur *in, uint32_t version)
{
    return uart16550_load(dev, in, version);
}

/* The same reads, with their side effects, on both; every value must match. */
static void uart_compare(struct uart16550 *a, struct fake_irq *rx_a, struct uart16550 *b,
                         struct fake_irq *rx_b)
{
    static const unsigned regs[] = {U_IER, U_IIR, U_LCR, U_MCR, U_LSR, U_MSR, U_SCR};
    const struct mmio_ops *ops = &uart16550_mmio_ops;

    CHECK_EQ_U64(level(rx_b), level(rx_a));
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
        CHECK_EQ_U64(rd(ops, b, regs[i], 1), rd(ops, a, regs[i], 1));
    CHECK_EQ_U64(level(rx_b), level(rx_a));
}

static void test_uart(void)
{
    static struct fake_irq rx_a[1], rx_b[1];
    const struct mmio_ops *ops = &uart16550_mmio_ops;
    struct irq_line line;
    struct uart16550 *a, *b;
    struct sbuf sa, sb;
    char err[STATE_ERR_LEN];

    wire(&line, rx_a, 1);
    CHECK(uart16550_create(&line, -1, &a) == 0);
    wire(&line, rx_b, 1);
    CHECK(uart16550_create(&line, -1, &b) == 0);

    wr(ops, a, U_LCR, 1, 0x80);
    wr(ops, a, U_RBR, 1, 0x12); /* DLL */
    wr(ops, a, U_IER, 1, 0x34); /* DLM */
    wr(ops, a, U_LCR, 1, 0x03);
    wr(ops, a, U_IIR, 1, 0x81); /* FIFO on, trigger 8 */
    wr(ops, a, U_MCR, 1, 0x19); /* loopback, DTR, OUT2: CTS drops, a modem status delta */
    wr(ops, a, U_SCR, 1, 0x5a);
    wr(ops, a, U_RBR, 1, 'a');
    wr(ops, a, U_RBR, 1, 'b');
    wr(ops, a, U_RBR, 1, 'c');
    wr(ops, a, U_IER, 1, 0x0d); /* RX data, line status, modem status */
    CHECK(uart16550_input(a, (const uint8_t *)"xyz", 3) == 3); /* held back: loopback */
    CHECK(level(rx_a));

    sbuf_init(&sa);
    sbuf_init(&sb);
    uart16550_save(a, &sa);
    CHECK(load_bytes(uart_load_cb, b, sa.data, sa.len, UART16550_STATE_VERSION, err) == 0);
    uart16550_save(b, &sb);
    CHECK(same_bytes(&sa, &sb));
    CHECK(level(rx_b) && atomic_load(&rx_b[0].sets) >= 1);
    CHECK_EQ_U64(rd(ops, b, U_IIR, 1), 0xcc); /* FIFO, character timeout: 3 < 8 */

    /* The same register reads, then the receiver drained: loopback bytes, then the host's
     * once loopback is off and the guest listens. */
    uart_compare(a, rx_a, b, rx_b);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ_U64(rd(ops, b, U_RBR, 1), rd(ops, a, U_RBR, 1));
    wr(ops, a, U_MCR, 1, 0x0b);
    wr(ops, b, U_MCR, 1, 0x0b);
    uart_compare(a, rx_a, b, rx_b);
    for (unsigned i = 0; i < 4; i++) {
        uint64_t va = rd(ops, a, U_RBR, 1);

        CHECK_EQ_U64(rd(ops, b, U_RBR, 1), va);
        if (i < 3)
            CHECK_EQ_U64(va, (uint64_t) "xyz"[i]);
    }
    wr(ops, a, U_LCR, 1, 0x80);
    wr(ops, b, U_LCR, 1, 0x80);
    CHECK_EQ_U64(rd(ops, b, U_RBR, 1), 0x12);
    CHECK_EQ_U64(rd(ops, b, U_IER, 1), 0x34);
    uart_compare(a, rx_a, b, rx_b);

    /* Corrupted values are named. */
    {
        uint8_t bad[64];

        CHECK(sa.len <= sizeof(bad));
        if (sa.len <= sizeof(bad)) {
            memcpy(bad, sa.data, sa.len);
            bad[0] = 0x10; /* IER */
            CHECK(load_bytes(uart_load_cb, b, bad, sa.len, UART16550_STATE_VERSION, err) != 0);
            CHECK(strstr(err, "field 'ier'") != NULL);
            memcpy(bad, sa.data, sa.len);
            bad[11] = 17; /* RX count */
            CHECK(load_bytes(uart_load_cb, b, bad, sa.len, UART16550_STATE_VERSION, err) != 0);
            CHECK(strstr(err, "rx_count") != NULL);
        }
    }
    check_hostile(uart_load_cb, b, &sa, UART16550_STATE_VERSION);

    sbuf_free(&sa);
    sbuf_free(&sb);
    uart16550_destroy(a);
    uart16550_destroy(b);
}

/* ---- sifive_test --------------------------------------------------------------------------- */

static void test_event(void *opaque, enum sifive_test_event ev, unsigned code)
{
}

static int sifive_load_cb(void *dev, struct scur *in, uint32_t version)
{
    return sifive_test_load(dev, in, version);
}

static void test_sifive(void)
{
    struct sifive_test *t;
    struct sbuf s;
    uint8_t one = 0;

    CHECK(sifive_test_create(test_event, NULL, &t) == 0);
    sbuf_init(&s);
    sifive_test_save(t, &s);
    CHECK_EQ_U64(s.len, 0);
    CHECK(load_bytes(sifive_load_cb, t, s.data, 0, SIFIVE_TEST_STATE_VERSION, NULL) == 0);
    CHECK(load_bytes(sifive_load_cb, t, &one, 1, SIFIVE_TEST_STATE_VERSION, NULL) != 0);
    CHECK(load_bytes(sifive_load_cb, t, NULL, 0, SIFIVE_TEST_STATE_VERSION + 1, NULL) != 0);
    sbuf_free(&s);
    sifive_test_destroy(t);
}

/* ---- the hart ------------------------------------------------------------------------------ */

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1u << 20)
#define STOP_DEV 0x10000000ull

enum {
    ZERO = 0,
    T0 = 5,
    T1 = 6,
    T2 = 7,
    S0 = 8,
    S1 = 9,
    A0 = 10,
    A1,
    A2,
    A3,
    A4,
    A5,
    A6,
    A7,
    S2 = 18,
    S3 = 19
};

enum {
    CSR_FCSR = 0x003,
    CSR_SSTVEC = 0x105,
    CSR_SCOUNTEREN = 0x106,
    CSR_SSCRATCH = 0x140,
    CSR_SATP = 0x180,
    CSR_MSTATUS = 0x300,
    CSR_MEDELEG = 0x302,
    CSR_MIDELEG = 0x303,
    CSR_MIE = 0x304,
    CSR_MTVEC = 0x305,
    CSR_MCOUNTEREN = 0x306,
    CSR_MSCRATCH = 0x340,
    CSR_MEPC = 0x341,
    CSR_MCAUSE = 0x342,
    CSR_MIP = 0x344,
    CSR_PMPCFG0 = 0x3a0,
    CSR_PMPADDR0 = 0x3b0,
    CSR_CYCLE = 0xc00,
};

static uint32_t enc_i(unsigned op, unsigned rd_, unsigned f3, unsigned rs1, int imm)
{
    return ((uint32_t)(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd_ << 7) | op;
}

static uint32_t enc_r(unsigned op, unsigned rd_, unsigned f3, unsigned rs1, unsigned rs2,
                      unsigned f7)
{
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd_ << 7) | op;
}

static uint32_t enc_s(unsigned op, unsigned rs1, unsigned rs2, unsigned f3, int imm)
{
    return ((uint32_t)((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
           ((uint32_t)(imm & 0x1f) << 7) | op;
}

static uint32_t enc_b(unsigned rs1, unsigned rs2, unsigned f3, int imm)
{
    uint32_t u = (uint32_t)imm;

    return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
           (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}

static uint32_t enc_jal(unsigned rd_, int imm)
{
    uint32_t u = (uint32_t)imm;

    return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) |
           (((u >> 12) & 0xff) << 12) | (rd_ << 7) | 0x6f;
}

static uint32_t enc_amo(unsigned f5, unsigned rd_, unsigned rs1, unsigned rs2)
{
    return (f5 << 27) | (rs2 << 20) | (rs1 << 15) | (3u << 12) | (rd_ << 7) | 0x2f;
}

#define ADDI(rd_, rs1, imm)     enc_i(0x13, rd_, 0, rs1, imm)
#define SLLI(rd_, rs1, sh)      enc_i(0x13, rd_, 1, rs1, sh)
#define SRLI(rd_, rs1, sh)      enc_i(0x13, rd_, 5, rs1, sh)
#define ADD(rd_, a, b)          enc_r(0x33, rd_, 0, a, b, 0)
#define OR(rd_, a, b)           enc_r(0x33, rd_, 6, a, b, 0)
#define MUL(rd_, a, b)          enc_r(0x33, rd_, 0, a, b, 1)
#define LUI(rd_, imm20)         (((uint32_t)(imm20) << 12) | ((rd_) << 7) | 0x37)
#define LD(rd_, rs1, imm)       enc_i(0x03, rd_, 3, rs1, imm)
#define SW(rs2, rs1, imm)       enc_s(0x23, rs1, rs2, 2, imm)
#define SD(rs2, rs1, imm)       enc_s(0x23, rs1, rs2, 3, imm)
#define FSD(rs2, rs1, imm)      enc_s(0x27, rs1, rs2, 3, imm)
#define BNE(a, b, off)          enc_b(a, b, 1, off)
#define J(off)                  enc_jal(ZERO, off)
#define CSRW(csr, rs1)          enc_i(0x73, ZERO, 1, rs1, csr)
#define CSRR(rd_, csr)          enc_i(0x73, rd_, 2, ZERO, csr)
#define CSRS(csr, rs1)          enc_i(0x73, ZERO, 2, rs1, csr)
#define CSRC(csr, rs1)          enc_i(0x73, ZERO, 3, rs1, csr)
#define LR_D(rd_, rs1)          enc_amo(2, rd_, rs1, 0)
#define SC_D(rd_, rs2, rs1)     enc_amo(3, rd_, rs1, rs2)
#define AMOADD_D(rd_, rs2, rs1) enc_amo(0, rd_, rs1, rs2)
#define FCVT_D_L(fd, rs1) \
    ((0x69u << 25) | (2u << 20) | ((rs1) << 15) | (7u << 12) | ((fd) << 7) | 0x53)
#define FDIV_D(fd, a, b) \
    ((0x0du << 25) | ((b) << 20) | ((a) << 15) | (7u << 12) | ((fd) << 7) | 0x53)
#define MRET  0x30200073u
#define ECALL 0x00000073u
#define WFI   0x10500073u
/* A store to the stop device, then a jump that ends the block: the hart stops right here. */
#define STOP_HERE(p)              \
    do {                          \
        emit(p, SW(ZERO, S1, 0)); \
        emit(p, J(4));            \
    } while (0)

struct prog {
    uint8_t *ram;
    uint32_t at; /* byte offset in RAM */
};

static void emit(struct prog *p, uint32_t insn)
{
    memcpy(p->ram + p->at, &insn, 4);
    p->at += 4;
}

static void org(struct prog *p, uint32_t off)
{
    CHECK(off >= p->at);
    while (p->at < off)
        emit(p, ADDI(ZERO, ZERO, 0));
}

/* A hart on its own RAM and bus; a write to the stop device stops it. */
struct test_hart {
    struct rv64_hart *h;
    struct bus bus;
    uint8_t *ram;
};

static int stop_read(void *opaque, uint64_t off, unsigned size, uint64_t *v)
{
    *v = 0;
    return 0;
}

static int stop_write(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
    rv64_hart_request_stop(opaque);
    return 0;
}

static const struct mmio_ops stop_ops = {
    .read = stop_read, .write = stop_write, .min_size = 1, .max_size = 8};

static int hart_init(struct test_hart *t, unsigned hartid, struct dirty_log *log)
{
    struct rv64_config cfg = {.hartid = hartid, .mem_count = 1};
    struct mmio_region stop = {"stop", STOP_DEV, 0x1000, &stop_ops, NULL};

    memset(t, 0, sizeof(*t));
    t->ram = aligned_alloc(4096, RAM_SIZE);
    if (!t->ram)
        return -1;
    memset(t->ram, 0, RAM_SIZE);
    cfg.bus = &t->bus;
    cfg.mem[0] =
        (struct rv64_mem_region){.base = RAM_BASE, .size = RAM_SIZE, .host = t->ram, .dirty = log};
    if (rv64_hart_create(&cfg, &t->h))
        return -1;
    stop.opaque = t->h;
    return bus_add(&t->bus, &stop);
}

/* What a hart last handed its Sstc comparator callback. */
static uint64_t stimer_seen;

static void stimer_record(void *opaque, unsigned hartid, uint64_t cmp)
{
    stimer_seen = cmp;
}

static void hart_fini(struct test_hart *t)
{
    rv64_hart_destroy(t->h);
    free(t->ram);
}

struct watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done, fired;
    unsigned ms;
    struct rv64_hart *h;
};

static void *watchdog_main(void *opaque)
{
    struct watchdog *w = opaque;
    uint64_t end = time_now_ns() + (uint64_t)w->ms * 1000000;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += w->ms / 1000;
    ts.tv_nsec += (long)(w->ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->done && time_now_ns() < end)
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    if (!w->done) {
        w->fired = true;
        rv64_hart_request_stop(w->h);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Runs the hart until it stops itself; after `ms` a watchdog stops it instead. Returns true
 * when the program stopped itself. */
static bool run_hart(struct rv64_hart *h, unsigned ms)
{
    struct watchdog w = {.ms = ms, .h = h};
    pthread_t thread;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    rv64_hart_clear_stop(h);
    if (pthread_create(&thread, NULL, watchdog_main, &w)) {
        CHECK(!"pthread_create");
        return false;
    }
    rv64_hart_run(h);
    pthread_mutex_lock(&w.lock);
    w.done = true;
    pthread_cond_signal(&w.cond);
    pthread_mutex_unlock(&w.lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return !w.fired;
}

static int hart_load_cb(void *dev, struct scur *in, uint32_t version)
{
    return rv64_hart_load(dev, in, version);
}

#define PT_OFF     0x10000u /* root page table */
#define DATA_OFF   0x20000u
#define S_ENTRY    0x100u
#define M_HANDLER  0x400u
#define PTE_VRWXAD 0xcfull
#define PTE_VRWAD  0xc7ull

/* Gigapage identity maps for S-mode: RAM (VPN[2] = 2) and the stop device (VPN[2] = 0). The
 * RAM entry has A and D clear unless `ad`, so the first accesses update it. */
static void write_page_table(uint8_t *ram, bool ad)
{
    uint64_t ram_pte = ((RAM_BASE >> 12) << 10) | (ad ? PTE_VRWXAD : 0x0full);
    uint64_t dev_pte = PTE_VRWAD;

    memcpy(ram + PT_OFF + 2 * 8, &ram_pte, 8);
    memcpy(ram + PT_OFF + 0 * 8, &dev_pte, 8);
}

/* M-mode set-up of many CSRs, then S-mode with Sv39 (SUM set): a loop, FP, an LR, a stop, the
 * SC, more work, and an ecall to M that stops the hart for good. */
static void write_state_program(uint8_t *ram)
{
    struct prog p = {ram, 0};

    write_page_table(ram, false);
    emit(&p, CSRW(CSR_MSCRATCH, S0));
    emit(&p, ADDI(T0, ZERO, 1));
    emit(&p, SLLI(T0, T0, 13));
    emit(&p, CSRS(CSR_MSTATUS, T0)); /* FS = Initial */
    emit(&p, ADDI(T0, S0, M_HANDLER));
    emit(&p, CSRW(CSR_MTVEC, T0));
    emit(&p, ADDI(T0, S0, 0x500));
    emit(&p, CSRW(CSR_SSTVEC, T0));
    emit(&p, ADDI(T0, ZERO, 0x222));
    emit(&p, CSRW(CSR_MIDELEG, T0));
    emit(&p, ADDI(T0, ZERO, 0x100));
    emit(&p, CSRW(CSR_MEDELEG, T0));
    emit(&p, ADDI(T0, ZERO, 0x8));
    emit(&p, CSRW(CSR_MIE, T0));
    emit(&p, ADDI(T0, ZERO, -1));
    emit(&p, SRLI(T0, T0, 10));
    emit(&p, CSRW(CSR_PMPADDR0, T0));
    emit(&p, ADDI(T0, ZERO, 0x1f)); /* NAPOT, RWX: everything */
    emit(&p, CSRW(CSR_PMPCFG0, T0));
    emit(&p, ADDI(T0, ZERO, 0x41)); /* frm = RDN, fflags = NX */
    emit(&p, CSRW(CSR_FCSR, T0));
    emit(&p, ADDI(T0, ZERO, 7));
    emit(&p, CSRW(CSR_MCOUNTEREN, T0));
    emit(&p, ADDI(T0, ZERO, 5));
    emit(&p, CSRW(CSR_SCOUNTEREN, T0));
    emit(&p, ADDI(T0, ZERO, 0x77));
    emit(&p, CSRW(CSR_SSCRATCH, T0));
    emit(&p, ADDI(T0, ZERO, 8));
    emit(&p, SLLI(T0, T0, 60));
    emit(&p, LUI(T1, (RAM_BASE + PT_OFF) >> 24)); /* 0x80 << 12 = 0x80000: PPN high part */
    emit(&p, ADDI(T1, T1, (int)(((RAM_BASE + PT_OFF) >> 12) & 0xfff)));
    emit(&p, OR(T0, T0, T1));
    emit(&p, CSRW(CSR_SATP, T0));
    emit(&p, ADDI(T0, ZERO, 3));
    emit(&p, SLLI(T0, T0, 11));
    emit(&p, CSRC(CSR_MSTATUS, T0));
    emit(&p, ADDI(T0, ZERO, 1));
    emit(&p, SLLI(T0, T0, 11));
    emit(&p, CSRS(CSR_MSTATUS, T0)); /* MPP = S */
    emit(&p, LUI(T0, 0x40));
    emit(&p, CSRS(CSR_MSTATUS, T0)); /* SUM */
    emit(&p, ADDI(T0, S0, S_ENTRY));
    emit(&p, CSRW(CSR_MEPC, T0));
    emit(&p, MRET);

    org(&p, S_ENTRY);
    emit(&p, ADDI(A0, ZERO, 0));
    emit(&p, ADDI(A1, ZERO, 10));
    emit(&p, MUL(T0, A0, A1)); /* loop */
    emit(&p, ADD(A0, T0, A1));
    emit(&p, ADDI(A1, A1, -1));
    emit(&p, BNE(A1, ZERO, -12));
    emit(&p, FCVT_D_L(1, A0));
    emit(&p, ADDI(T0, ZERO, 3));
    emit(&p, FCVT_D_L(2, T0));
    emit(&p, FDIV_D(3, 1, 2));
    emit(&p, LUI(T0, DATA_OFF >> 12));
    emit(&p, ADD(A2, S0, T0));
    emit(&p, SD(A0, A2, 0));
    emit(&p, LR_D(A3, A2));
    STOP_HERE(&p); /* stop 1: reservation held */
    emit(&p, ADDI(A3, A3, 5));
    emit(&p, SC_D(A4, A3, A2));
    emit(&p, LD(A5, A2, 0));
    emit(&p, FSD(3, A2, 8));
    emit(&p, CSRR(A6, CSR_SSCRATCH));
    emit(&p, CSRR(A7, CSR_CYCLE));
    emit(&p, ECALL);

    org(&p, M_HANDLER);
    emit(&p, CSRR(S2, CSR_MCAUSE));
    emit(&p, CSRR(S3, CSR_MEPC));
    emit(&p, SW(ZERO, S1, 0));
    emit(&p, J(0)); /* stop 2, for good */
}

static void save_hart(const struct rv64_hart *h, struct sbuf *b)
{
    sbuf_init(b);
    rv64_hart_save(h, b);
    CHECK(!b->oom);
}

static void test_hart_continue(void)
{
    struct test_hart a, b, c, fresh;
    struct sbuf s1, s_a, s_b, s_c, s_fresh;
    char err[STATE_ERR_LEN];
    uint8_t *bad;
    /* Byte offsets in the section: hartid, pc, x1..x31, f0..f31, fflags, frm, priv. */
    const size_t priv_at = 4 + 8 + 31 * 8 + 32 * 8 + 2;
    /* Then mstatus, medeleg, mideleg, mie, mip, five M and five S trap CSRs, three u32
     * counter enables, menvcfg, senvcfg: satp. */
    const size_t satp_at = priv_at + 1 + 15 * 8 + 3 * 4 + 2 * 8;

    sbuf_init(&s_fresh);
    CHECK(hart_init(&a, 0, NULL) == 0);
    CHECK(hart_init(&b, 0, NULL) == 0);
    write_state_program(a.ram);
    rv64_hart_reset(a.h, RAM_BASE);
    rv64_hart_set_x(a.h, S0, RAM_BASE);
    rv64_hart_set_x(a.h, S1, STOP_DEV);

    CHECK(run_hart(a.h, 10000));
    save_hart(a.h, &s1);
    memcpy(b.ram, a.ram, RAM_SIZE);
    CHECK(load_bytes(hart_load_cb, b.h, s1.data, s1.len, RV64_STATE_VERSION, err) == 0);
    save_hart(b.h, &s_b);
    CHECK(same_bytes(&s1, &s_b));
    sbuf_free(&s_b);
    CHECK_EQ_U64(rv64_hart_get_pc(b.h), rv64_hart_get_pc(a.h));
    for (unsigned r = 0; r < 32; r++)
        CHECK_EQ_U64(rv64_hart_get_x(b.h, r), rv64_hart_get_x(a.h, r));
    CHECK_EQ_U64(rv64_hart_instret(b.h), rv64_hart_instret(a.h));

    /* Both finish the program alike: the SC succeeds on the loaded reservation, the ecall
     * from S reaches M, and every register, RAM byte and state byte matches. */
    CHECK(run_hart(a.h, 10000));
    CHECK(run_hart(b.h, 10000));
    CHECK_EQ_U64(rv64_hart_get_x(a.h, A4), 0);
    CHECK_EQ_U64(rv64_hart_get_x(b.h, A4), 0);
    CHECK_EQ_U64(rv64_hart_get_x(b.h, S2), 9); /* ecall from S */
    CHECK_EQ_U64(rv64_hart_get_x(b.h, A6), 0x77);
    for (unsigned r = 0; r < 32; r++)
        CHECK_EQ_U64(rv64_hart_get_x(b.h, r), rv64_hart_get_x(a.h, r));
    CHECK_EQ_U64(rv64_hart_get_pc(b.h), rv64_hart_get_pc(a.h));
    CHECK(memcmp(a.ram, b.ram, RAM_SIZE) == 0);
    save_hart(a.h, &s_a);
    save_hart(b.h, &s_b);
    CHECK(same_bytes(&s_a, &s_b));
    sbuf_free(&s_a);
    sbuf_free(&s_b);

    /* A hart that was never loaded would not get there: its SC fails without the
     * reservation (the state really carried it). */
    CHECK(hart_init(&c, 0, NULL) == 0);
    memcpy(c.ram, b.ram, RAM_SIZE);
    bad = malloc(s1.len);
    CHECK(bad != NULL);
    if (bad) {
        memcpy(bad, s1.data, s1.len);
        /* no reservation (the 17 bytes before version 2's stimecmp and stip_sw) */
        memset(bad + s1.len - 9 - 17, 0, 17);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, RV64_STATE_VERSION, err) == 0);
        CHECK(run_hart(c.h, 10000));
        CHECK_EQ_U64(rv64_hart_get_x(c.h, A4), 1);

        /* A bad field is named, and the hart is left in its reset state. */
        CHECK(hart_init(&fresh, 0, NULL) == 0);
        sbuf_free(&s_fresh);
        save_hart(fresh.h, &s_fresh);
        memcpy(bad, s1.data, s1.len);
        bad[priv_at] = 2;
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, RV64_STATE_VERSION, err) != 0);
        CHECK(strstr(err, "field 'priv' is 2") != NULL);
        save_hart(c.h, &s_c);
        CHECK(same_bytes(&s_c, &s_fresh));
        sbuf_free(&s_c);

        /* satp: an Sv57 one (MODE 10) travels as saved; MODE 11 (reserved for Sv64) is no
         * mode this hart has, so the load names the field. */
        memcpy(bad, s1.data, s1.len);
        CHECK_EQ_U64(field_u64(&s1, satp_at) >> 60, 8); /* the program's Sv39 */
        bad[satp_at + 7] = (uint8_t)((bad[satp_at + 7] & 0x0f) | 0xa0);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, RV64_STATE_VERSION, err) == 0);
        save_hart(c.h, &s_c);
        CHECK(s_c.len == s1.len && memcmp(s_c.data, bad, s1.len) == 0);
        sbuf_free(&s_c);
        bad[satp_at + 7] = (uint8_t)((bad[satp_at + 7] & 0x0f) | 0xb0);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, RV64_STATE_VERSION, err) != 0);
        CHECK(strstr(err, "field 'satp' has MODE 11") != NULL);

        /* Sstc: stimecmp travels and is handed to the timer on load; menvcfg.STCE is legal
         * in version 2. A version 1 section (no stimecmp, no stip_sw) still loads, with
         * stimecmp never due, but STCE is no field version 1 could hold. */
        memcpy(bad, s1.data, s1.len);
        bad[satp_at - 16 + 7] = 0x80; /* menvcfg.STCE */
        for (unsigned i = 0; i < 8; i++)
            bad[s1.len - 9 + i] = (uint8_t)(12345ull >> (8 * i));
        rv64_hart_set_stimer(c.h, stimer_record, NULL);
        CHECK_EQ_U64(stimer_seen, UINT64_MAX); /* the reset value, handed over at once */
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, RV64_STATE_VERSION, err) == 0);
        CHECK_EQ_U64(stimer_seen, 12345);
        save_hart(c.h, &s_c);
        CHECK(s_c.len == s1.len && memcmp(s_c.data, bad, s1.len) == 0);
        sbuf_free(&s_c);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len - 9, 1, err) != 0);
        CHECK(strstr(err, "field 'menvcfg'") != NULL);
        CHECK_EQ_U64(stimer_seen, UINT64_MAX); /* the failed load reset the hart */
        memcpy(bad, s1.data, s1.len);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len - 9, 1, err) == 0);
        save_hart(c.h, &s_c);
        CHECK(s_c.len == s1.len && memcmp(s_c.data, s1.data, s1.len - 9) == 0);
        CHECK_EQ_U64(field_u64(&s_c, s1.len - 9), UINT64_MAX);
        sbuf_free(&s_c);
        CHECK(load_bytes(hart_load_cb, c.h, bad, s1.len, 3, err) != 0);
        hart_fini(&fresh);
        free(bad);
    }
    /* Another hart id refuses the section. */
    hart_fini(&c);
    CHECK(hart_init(&c, 1, NULL) == 0);
    CHECK(load_bytes(hart_load_cb, c.h, s1.data, s1.len, RV64_STATE_VERSION, err) != 0);
    CHECK(strstr(err, "field 'hartid' is 0, this hart is 1") != NULL);
    hart_fini(&c);

    CHECK(hart_init(&c, 0, NULL) == 0);
    check_hostile(hart_load_cb, c.h, &s1, RV64_STATE_VERSION);
    hart_fini(&c);

    sbuf_free(&s_fresh);
    sbuf_free(&s1);
    hart_fini(&a);
    hart_fini(&b);
}

/* A hart asleep in WFI with an interrupt pending in mip (raised while it was stopped): the
 * loaded copy wakes up at once and goes on. */
static void test_hart_wfi(void)
{
    struct test_hart a, b;
    struct prog p;
    struct sbuf s;

    CHECK(hart_init(&a, 0, NULL) == 0);
    CHECK(hart_init(&b, 0, NULL) == 0);
    p = (struct prog){a.ram, 0};
    emit(&p, ADDI(T0, ZERO, 0x8));
    emit(&p, CSRW(CSR_MIE, T0)); /* MSIE, MIE clear: WFI wakes, no trap */
    emit(&p, WFI);
    emit(&p, ADDI(A0, ZERO, 42));
    emit(&p, SW(ZERO, S1, 0));
    emit(&p, J(0));
    rv64_hart_reset(a.h, RAM_BASE);
    rv64_hart_set_x(a.h, S1, STOP_DEV);
    CHECK(!run_hart(a.h, 100)); /* asleep: the watchdog stopped it */
    CHECK_EQ_U64(rv64_hart_get_x(a.h, A0), 0);
    rv64_hart_set_irq(a.h, RV64_IRQ_MSI, true);
    save_hart(a.h, &s);
    memcpy(b.ram, a.ram, RAM_SIZE);
    CHECK(load_bytes(hart_load_cb, b.h, s.data, s.len, RV64_STATE_VERSION, NULL) == 0);
    CHECK(run_hart(b.h, 10000));
    CHECK_EQ_U64(rv64_hart_get_x(b.h, A0), 42);
    sbuf_free(&s);
    hart_fini(&a);
    hart_fini(&b);
}

/* ---- dirty logging ------------------------------------------------------------------------- */

#define PAGES (RAM_SIZE / DIRTY_PAGE_SIZE)

/* Harvests and checks that exactly the listed pages were dirty. */
static void expect_dirty(struct dirty_log *log, const unsigned *pages, unsigned n)
{
    uint64_t bits[(PAGES + 63) / 64];
    uint64_t want[(PAGES + 63) / 64] = {0};

    for (unsigned i = 0; i < n; i++)
        want[pages[i] / 64] |= 1ull << (pages[i] % 64);
    CHECK_EQ_U64(dirty_log_harvest(log, bits), n);
    for (unsigned w = 0; w < (PAGES + 63) / 64; w++)
        CHECK_EQ_U64(bits[w], want[w]);
}

static void test_dirty(void)
{
    struct dirty_log log;
    struct test_hart t;
    struct prog p;
    uint64_t scratch[(PAGES + 63) / 64];

    CHECK(dirty_log_init(&log, PAGES) == 0);
    CHECK(hart_init(&t, 0, &log) == 0);
    p = (struct prog){t.ram, 0};
    write_page_table(t.ram, false);
    /* M-mode, bare: a plain store, the same store again, then an AMO, a page-crossing store
     * and an LR/SC, each group ended by a stop. */
    emit(&p, SD(T0, A0, 0));
    STOP_HERE(&p); /* 1 */
    emit(&p, SD(T0, A0, 8));
    STOP_HERE(&p); /* 2 */
    emit(&p, AMOADD_D(ZERO, T0, A1));
    emit(&p, SD(T0, A2, 0));
    emit(&p, LR_D(T1, A3));
    emit(&p, SC_D(T2, T1, A3));
    STOP_HERE(&p); /* 3 */
    /* S-mode through a page table whose RAM entry lacks A and D: the walk's A/D update is
     * a store to the page-table page. */
    emit(&p, ADDI(T1, ZERO, 8));
    emit(&p, SLLI(T1, T1, 60));
    emit(&p, LUI(T2, (RAM_BASE + PT_OFF) >> 24));
    emit(&p, ADDI(T2, T2, (int)(((RAM_BASE + PT_OFF) >> 12) & 0xfff)));
    emit(&p, OR(T1, T1, T2));
    emit(&p, CSRW(CSR_SATP, T1));
    emit(&p, ADDI(T1, ZERO, 1));
    emit(&p, SLLI(T1, T1, 11));
    emit(&p, CSRS(CSR_MSTATUS, T1)); /* MPP = S */
    emit(&p, ADDI(T1, S0, S_ENTRY * 2));
    emit(&p, CSRW(CSR_MEPC, T1));
    emit(&p, MRET);
    org(&p, S_ENTRY * 2);
    emit(&p, SD(T0, A4, 0));
    STOP_HERE(&p); /* 4 */
    emit(&p, SD(T0, A4, 8));
    STOP_HERE(&p); /* 5 */
    emit(&p, J(0));

    rv64_hart_reset(t.h, RAM_BASE);
    rv64_hart_set_x(t.h, S0, RAM_BASE);
    rv64_hart_set_x(t.h, S1, STOP_DEV);
    rv64_hart_set_x(t.h, T0, 0x1234);
    rv64_hart_set_x(t.h, A0, RAM_BASE + 48 * 4096);
    rv64_hart_set_x(t.h, A1, RAM_BASE + 49 * 4096);
    rv64_hart_set_x(t.h, A2, RAM_BASE + 51 * 4096 - 4); /* pages 50 and 51 */
    rv64_hart_set_x(t.h, A3, RAM_BASE + 52 * 4096);
    rv64_hart_set_x(t.h, A4, RAM_BASE + 53 * 4096);

    dirty_log_start(&log);
    dirty_log_harvest(&log, scratch); /* the first pass's "everything" */
    rv64_hart_flush_tlb(t.h);

    CHECK(run_hart(t.h, 10000));
    expect_dirty(&log, (const unsigned[]){48}, 1);
    rv64_hart_flush_tlb(t.h); /* after the harvest: the next store marks again */
    CHECK(run_hart(t.h, 10000));
    expect_dirty(&log, (const unsigned[]){48}, 1);
    rv64_hart_flush_tlb(t.h);
    CHECK(run_hart(t.h, 10000));
    expect_dirty(&log, (const unsigned[]){49, 50, 51, 52}, 4);
    rv64_hart_flush_tlb(t.h);
    CHECK(run_hart(t.h, 10000));
    expect_dirty(&log, (const unsigned[]){PT_OFF / 4096, 53}, 2);

    /* Logging off: stores mark nothing. */
    dirty_log_stop(&log);
    rv64_hart_flush_tlb(t.h);
    CHECK(run_hart(t.h, 10000));
    CHECK_EQ_U64(dirty_log_harvest(&log, scratch), 0);
    {
        uint64_t v;

        memcpy(&v, t.ram + 53 * 4096 + 8, 8);
        CHECK_EQ_U64(v, 0x1234);
    }

    hart_fini(&t);
    dirty_log_destroy(&log);
}

/* mip.SEIP reads as the OR of the PLIC's line and a bit M-mode software writes (privileged
 * §3.1.9). A write of mip (OpenSBI sets and clears STIP on every timer tick) changes only the
 * software bit: it used to overwrite the line's level too, so an external interrupt raised
 * just before it was lost for good, and the guest waited forever on its disk, network or
 * console. And CSRRS/CSRRC modify the software bit, so the line's level never sticks. */
static void test_hart_seip(void)
{
    struct test_hart t;
    struct prog p;
    const uint64_t seip = 1ull << 9, stip = 1ull << 5;

    CHECK(hart_init(&t, 0, NULL) == 0);
    p = (struct prog){t.ram, 0};
    emit(&p, CSRW(CSR_MIP, ZERO));  /* a full write with SEIP clear */
    emit(&p, CSRR(A0, CSR_MIP));    /* the line still shows */
    emit(&p, ADDI(T1, ZERO, 0x20)); /* STIP */
    emit(&p, CSRS(CSR_MIP, T1));    /* read-modify-write while the line is high */
    STOP_HERE(&p);
    emit(&p, CSRR(A1, CSR_MIP)); /* after the line dropped: STIP only */
    emit(&p, ADDI(T1, ZERO, 0x200));
    emit(&p, CSRS(CSR_MIP, T1)); /* software SEIP */
    emit(&p, CSRR(A2, CSR_MIP));
    STOP_HERE(&p);
    emit(&p, CSRR(A3, CSR_MIP)); /* after the line rose and fell: software SEIP stays */
    emit(&p, CSRC(CSR_MIP, T1));
    emit(&p, CSRR(A4, CSR_MIP)); /* cleared by software */
    STOP_HERE(&p);
    rv64_hart_reset(t.h, RAM_BASE);
    rv64_hart_set_x(t.h, S1, STOP_DEV);
    rv64_hart_set_irq(t.h, RV64_IRQ_SEI, true); /* interrupts stay disabled: none is taken */

    CHECK(run_hart(t.h, 10000));
    CHECK_EQ_U64(rv64_hart_get_x(t.h, A0) & (seip | stip), seip);
    rv64_hart_set_irq(t.h, RV64_IRQ_SEI, false);
    CHECK(run_hart(t.h, 10000));
    CHECK_EQ_U64(rv64_hart_get_x(t.h, A1) & (seip | stip), stip);
    CHECK_EQ_U64(rv64_hart_get_x(t.h, A2) & (seip | stip), seip | stip);
    rv64_hart_set_irq(t.h, RV64_IRQ_SEI, true);
    rv64_hart_set_irq(t.h, RV64_IRQ_SEI, false);
    CHECK(run_hart(t.h, 10000));
    CHECK_EQ_U64(rv64_hart_get_x(t.h, A3) & seip, seip);
    CHECK_EQ_U64(rv64_hart_get_x(t.h, A4) & seip, 0);
    hart_fini(&t);
}

int main(void)
{
    test_clint();
    test_plic();
    test_uart();
    test_sifive();
    test_hart_continue();
    test_hart_wfi();
    test_hart_seip();
    test_dirty();
    return test_finish("state_hw");
}
