/* The 16550 as a guest sees it: registers and DLAB, output to a pipe, FIFO and loopback,
 * IIR priorities, THRE re-arm after a THR write, and host input held back until the guest
 * listens (IER.ERBFI), surviving the way Linux's 8250 driver starts a port; output to a byte
 * ring that nobody reads never waits. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/bytering.h"
#include "hw/uart16550.h"

enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fake_irq {
    bool level;
    unsigned sets;
};

static struct fake_irq irq_rx;

static void fake_irq_set(void *opaque, unsigned n, bool level)
{
    struct fake_irq *f = opaque;

    f->level = level;
    f->sets++;
}

static uint64_t rd(struct uart16550 *u, uint64_t off)
{
    uint64_t v = 0xdeadbeef;

    CHECK(uart16550_mmio_ops.read(u, off, 1, &v) == 0);
    return v;
}

static void wr(struct uart16550 *u, uint64_t off, uint64_t v)
{
    CHECK(uart16550_mmio_ops.write(u, off, 1, v) == 0);
}

/* Everything waiting in the pipe, as a string (non-blocking read end). */
static const char *drain(int fd)
{
    static char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void input_str(struct uart16550 *u, const char *s)
{
    CHECK_EQ_U64(uart16550_input(u, (const uint8_t *)s, strlen(s)), strlen(s));
}

static void test_create_args(void)
{
    struct irq_line line = {0};
    struct uart16550 *u = NULL;

    CHECK(uart16550_create(NULL, -1, &u) == -EINVAL);
    CHECK(uart16550_create(&line, -1, NULL) == -EINVAL);
    CHECK(u == NULL);
    uart16550_destroy(NULL);
}

static void test_reset_values(struct uart16550 *u)
{
    CHECK_EQ_U64(rd(u, IER), 0);
    CHECK_EQ_U64(rd(u, IIR), 0x01); /* no interrupt, no FIFO */
    CHECK_EQ_U64(rd(u, LCR), 0);
    CHECK_EQ_U64(rd(u, MCR), 0);
    CHECK_EQ_U64(rd(u, LSR), 0x60); /* THRE | TEMT */
    CHECK_EQ_U64(rd(u, MSR), 0xb0); /* DCD | DSR | CTS */
    CHECK_EQ_U64(rd(u, SCR), 0);
    CHECK_EQ_U64(rd(u, 8), 0);
    CHECK_EQ_U64(rd(u, 0xff), 0);
    CHECK(!irq_rx.level);
}

static void test_registers(struct uart16550 *u, int rfd)
{
    wr(u, SCR, 0x5a);
    CHECK_EQ_U64(rd(u, SCR), 0x5a);

    /* DLAB: offsets 0 and 1 become the divisor latch. */
    wr(u, LCR, 0x83);
    wr(u, RBR, 0x0c);
    wr(u, IER, 0x01);
    CHECK_EQ_U64(rd(u, RBR), 0x0c);
    CHECK_EQ_U64(rd(u, IER), 0x01);
    CHECK_EQ_U64(drain(rfd)[0], 0); /* a DLL write is not a THR write */
    wr(u, LCR, 0x03);
    CHECK_EQ_U64(rd(u, LCR), 0x03);
    CHECK_EQ_U64(rd(u, IER), 0); /* IER untouched by the DLM write */
    wr(u, IER, 0xff);
    CHECK_EQ_U64(rd(u, IER) & 0xf0, 0); /* bits 7:4 read 0 */
    wr(u, IER, 0);
    wr(u, MCR, 0xff);
    CHECK_EQ_U64(rd(u, MCR), 0x1f);
    wr(u, MCR, 0);
    wr(u, LSR, 0); /* read-only */
    CHECK_EQ_U64(rd(u, LSR), 0x60);
}

static void test_output(struct uart16550 *u, int rfd)
{
    uint64_t v;

    wr(u, RBR, 'h');
    wr(u, RBR, 'i');
    CHECK(strcmp(drain(rfd), "hi") == 0);
    CHECK_EQ_U64(rd(u, LSR) & 0x60, 0x60); /* transmit is instant */

    /* A 4-byte access uses its low byte. */
    CHECK(uart16550_mmio_ops.write(u, RBR, 4, 0x12345621) == 0);
    CHECK(strcmp(drain(rfd), "!") == 0);
    CHECK(uart16550_mmio_ops.read(u, MCR, 4, &v) == 0);
    CHECK_EQ_U64(v, 0);
}

static void test_fifo_and_loopback(struct uart16550 *u, int rfd)
{
    wr(u, FCR, 0x01);
    CHECK_EQ_U64(rd(u, IIR), 0xc1);
    wr(u, FCR, 0x00);
    CHECK_EQ_U64(rd(u, IIR), 0x01);

    /* Loopback: THR goes to the receiver, not out. */
    wr(u, MCR, 0x10);
    wr(u, RBR, 'A');
    CHECK_EQ_U64(drain(rfd)[0], 0);
    CHECK_EQ_U64(rd(u, LSR), 0x61);
    CHECK_EQ_U64(rd(u, RBR), 'A');
    CHECK_EQ_U64(rd(u, LSR), 0x60);

    /* 16450 mode: one byte deep; a second byte overruns and replaces it. */
    wr(u, RBR, 'B');
    wr(u, RBR, 'C');
    CHECK_EQ_U64(rd(u, LSR), 0x63); /* DR | OE */
    CHECK_EQ_U64(rd(u, LSR), 0x61); /* reading LSR cleared OE */
    CHECK_EQ_U64(rd(u, RBR), 'C');

    /* FIFO mode: 16 bytes in order; the 17th overruns and is lost. */
    wr(u, FCR, 0x07);
    for (unsigned i = 0; i < 17; i++)
        wr(u, RBR, 'a' + i);
    CHECK_EQ_U64(rd(u, LSR), 0x63);
    for (unsigned i = 0; i < 16; i++)
        CHECK_EQ_U64(rd(u, RBR), 'a' + i);
    CHECK_EQ_U64(rd(u, LSR), 0x60);

    /* FCR receiver reset empties the FIFO; so does turning the FIFO off. */
    wr(u, RBR, 'x');
    wr(u, FCR, 0x03);
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    wr(u, RBR, 'y');
    wr(u, FCR, 0x00);
    CHECK_EQ_U64(rd(u, LSR), 0x60);

    /* MSR in loopback: the outputs drive the inputs, and changes set delta bits. Linux's
     * autoconfig test writes LOOP | OUT2 | RTS and expects 0x90 in the top nibble. */
    rd(u, MSR);
    wr(u, MCR, 0x1a);
    CHECK_EQ_U64(rd(u, MSR), 0x90 | 0x09); /* DCD, CTS; deltas DDCD, DCTS */
    CHECK_EQ_U64(rd(u, MSR), 0x90);
    wr(u, MCR, 0x15); /* LOOP | OUT1 | DTR */
    CHECK_EQ_U64(rd(u, MSR), 0x60 | 0x0b);
    wr(u, MCR, 0x10);
    CHECK_EQ_U64(rd(u, MSR), 0x00 | 0x06); /* DDSR; TERI on RI's falling edge */
    wr(u, MCR, 0x00);
    CHECK_EQ_U64(rd(u, MSR) & 0xf0, 0xb0);
    CHECK_EQ_U64(drain(rfd)[0], 0);
}

static void test_iir_priorities(struct uart16550 *u)
{
    wr(u, MCR, 0x10);
    wr(u, FCR, 0x07); /* FIFO on, trigger 1 */
    rd(u, MSR);
    CHECK(!irq_rx.level);

    /* THRE: pending as soon as ETBEI is set (THR is empty). */
    wr(u, IER, 0x02);
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xc2);
    CHECK(!irq_rx.level); /* reading IIR cleared it */
    CHECK_EQ_U64(rd(u, IIR), 0xc1);

    /* ... and again right after a THR write (instant transmission). */
    wr(u, IER, 0x0f);
    rd(u, IIR);
    CHECK_EQ_U64(rd(u, IIR), 0xc1);
    wr(u, RBR, 'q');
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xc4); /* received data beats THRE */
    CHECK_EQ_U64(rd(u, IIR), 0xc4); /* and reading IIR does not clear it */
    CHECK_EQ_U64(rd(u, RBR), 'q');
    CHECK_EQ_U64(rd(u, IIR), 0xc2); /* now THRE, re-armed by the THR write */
    CHECK_EQ_U64(rd(u, IIR), 0xc1);
    CHECK(!irq_rx.level);

    /* Line status beats everything; reading LSR clears it. */
    for (unsigned i = 0; i < 17; i++)
        wr(u, RBR, 'a' + i);
    CHECK_EQ_U64(rd(u, IIR), 0xc6);
    CHECK_EQ_U64(rd(u, LSR) & 0x03, 0x03);
    CHECK_EQ_U64(rd(u, IIR), 0xc4);
    wr(u, FCR, 0x07);
    CHECK_EQ_U64(rd(u, IIR), 0xc2); /* FCR's transmitter reset re-arms THRE */
    CHECK_EQ_U64(rd(u, IIR), 0xc1);

    /* Modem status is last; reading MSR clears it. */
    wr(u, MCR, 0x12);
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xc0);
    rd(u, MSR);
    CHECK_EQ_U64(rd(u, IIR), 0xc1);
    CHECK(!irq_rx.level);

    /* Trigger level 8: fewer bytes report a character timeout, 8 report data available. */
    wr(u, FCR, 0x81);
    wr(u, RBR, '1');
    CHECK_EQ_U64(rd(u, IIR), 0xcc);
    for (unsigned i = 0; i < 7; i++)
        wr(u, RBR, '2');
    rd(u, IIR); /* THRE from the writes is below data in priority */
    CHECK_EQ_U64(rd(u, IIR), 0xc4);
    while (rd(u, LSR) & 1)
        rd(u, RBR);
    rd(u, IIR); /* THRE */
    CHECK_EQ_U64(rd(u, IIR), 0xc1);

    /* Masking a pending source drops the line; clearing ETBEI forgets THRE. */
    wr(u, RBR, 'z');
    CHECK(irq_rx.level);
    wr(u, IER, 0x00);
    CHECK(!irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xc1);
    rd(u, RBR);
    wr(u, MCR, 0x00);
    rd(u, MSR);
    wr(u, FCR, 0x00);
}

/* THRE in normal (not loopback) mode, the way Linux's 8250 transmit path uses it. */
static void test_thre_rearm(struct uart16550 *u, int rfd)
{
    wr(u, IER, 0x02);
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0x02);
    CHECK(!irq_rx.level);
    wr(u, RBR, 'o');
    wr(u, RBR, 'k');
    CHECK(irq_rx.level); /* THR empty again at once: next interrupt to send more */
    CHECK_EQ_U64(rd(u, IIR), 0x02);
    CHECK(strcmp(drain(rfd), "ok") == 0);
    /* Toggling ETBEI re-arms it (Linux's start-up THRE test). */
    wr(u, IER, 0x00);
    wr(u, IER, 0x02);
    CHECK_EQ_U64(rd(u, IIR), 0x02);
    wr(u, IER, 0x00);
    CHECK(!irq_rx.level);
}

/* Host input waits until the guest listens; Linux's port start-up (FIFO clears and stray RBR
 * reads with IER = 0, then IER before the FIFO enable in set_termios) must not eat it. */
static void test_input_held_back(struct uart16550 *u)
{
    input_str(u, "abc");
    CHECK(!irq_rx.level);
    CHECK_EQ_U64(rd(u, LSR), 0x60); /* no DR yet */

    /* serial8250_do_startup(): clear and disable FIFOs, read LSR, RX, IIR, MSR. */
    wr(u, FCR, 0x01);
    wr(u, FCR, 0x07);
    wr(u, FCR, 0x00);
    rd(u, LSR);
    rd(u, RBR);
    rd(u, IIR);
    rd(u, MSR);
    wr(u, LCR, 0x03);
    wr(u, MCR, 0x08);
    rd(u, LSR);
    rd(u, RBR);
    rd(u, IIR);
    rd(u, MSR);
    CHECK(!irq_rx.level);

    /* serial8250_do_set_termios(): IER, then the FIFO enable (a mode change). */
    wr(u, IER, 0x05);
    CHECK(irq_rx.level);
    wr(u, FCR, 0x01);
    wr(u, FCR, 0x81);
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xcc); /* 3 bytes, below the trigger level of 8 */
    CHECK_EQ_U64(rd(u, LSR), 0x61);
    CHECK_EQ_U64(rd(u, RBR), 'a');
    CHECK_EQ_U64(rd(u, RBR), 'b');
    CHECK_EQ_U64(rd(u, RBR), 'c');
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    CHECK(!irq_rx.level);

    /* Input while listening raises the line at once. */
    input_str(u, "0123456789");
    CHECK(irq_rx.level);
    CHECK_EQ_U64(rd(u, IIR), 0xc4);
    CHECK_EQ_U64(rd(u, RBR), '0');

    /* The port closes (IER = 0): the rest is held again, and survives the next start-up. */
    wr(u, IER, 0x00);
    CHECK(!irq_rx.level);
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    wr(u, FCR, 0x07);
    rd(u, RBR);
    wr(u, IER, 0x01);
    CHECK(irq_rx.level);
    for (char ch = '1'; ch <= '9'; ch++)
        CHECK_EQ_U64(rd(u, RBR), (uint64_t)ch);
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    CHECK_EQ_U64(rd(u, RBR), '9'); /* empty: RBR keeps the last byte */

    /* Loopback disconnects the host side: its bytes wait until loopback ends. */
    input_str(u, "H");
    wr(u, MCR, 0x10);
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    wr(u, RBR, 'L');
    CHECK_EQ_U64(rd(u, RBR), 'L');
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    wr(u, MCR, 0x00);
    CHECK_EQ_U64(rd(u, RBR), 'H');
    rd(u, MSR);
    wr(u, IER, 0x00);
    wr(u, FCR, 0x00);
    CHECK(!irq_rx.level);
}

static void test_input_queue_full(struct uart16550 *u)
{
    size_t big = UART16550_INPUT_QUEUE_SIZE + 1000;
    uint8_t *buf = malloc(big);

    CHECK(buf != NULL);
    if (!buf)
        return;
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)i;
    CHECK(uart16550_wants_input(u));
    CHECK_EQ_U64(uart16550_input(u, buf, big), UART16550_INPUT_QUEUE_SIZE);
    CHECK(!uart16550_wants_input(u));
    CHECK_EQ_U64(uart16550_input(u, buf, 1), 0);
    wr(u, IER, 0x01);
    CHECK_EQ_U64(rd(u, RBR), 0);
    CHECK(uart16550_wants_input(u));
    CHECK_EQ_U64(uart16550_input(u, buf + UART16550_INPUT_QUEUE_SIZE, 2), 1);
    size_t in_order = 1;
    while (in_order <= UART16550_INPUT_QUEUE_SIZE) {
        uint64_t v = 0;

        uart16550_mmio_ops.read(u, RBR, 1, &v);
        if (v != (uint8_t)in_order)
            break;
        in_order++;
    }
    CHECK_EQ_U64(in_order, UART16550_INPUT_QUEUE_SIZE + 1); /* all of them, in order */
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    wr(u, IER, 0x00);
    free(buf);
}

static void test_reset(struct uart16550 *u)
{
    wr(u, IER, 0x03);
    wr(u, LCR, 0x1b);
    wr(u, SCR, 0x77);
    wr(u, FCR, 0x01);
    input_str(u, "zz");
    CHECK(irq_rx.level);
    uart16550_reset(u);
    CHECK(!irq_rx.level);
    CHECK_EQ_U64(rd(u, IER), 0);
    CHECK_EQ_U64(rd(u, LCR), 0);
    CHECK_EQ_U64(rd(u, SCR), 0);
    CHECK_EQ_U64(rd(u, IIR), 0x01);
    CHECK_EQ_U64(rd(u, LSR), 0x60); /* host bytes kept, but held back again */
    wr(u, IER, 0x01);
    CHECK_EQ_U64(rd(u, RBR), 'z');
    CHECK_EQ_U64(rd(u, RBR), 'z');
    uart16550_reset(u);
}

/* A broken or absent output fd only drops bytes. */
static void test_bad_output(void)
{
    struct irq_line line = {0};
    struct uart16550 *u = NULL;
    int fds[2];

    CHECK(uart16550_create(&line, -1, &u) == 0);
    if (u) {
        wr(u, RBR, 'x');
        CHECK_EQ_U64(rd(u, LSR), 0x60);
        uart16550_destroy(u);
    }
    CHECK(pipe(fds) == 0);
    close(fds[1]);
    u = NULL;
    CHECK(uart16550_create(&line, fds[1], &u) == 0); /* a closed fd: EBADF */
    if (u) {
        wr(u, RBR, 'x');
        CHECK_EQ_U64(rd(u, LSR), 0x60);
        uart16550_destroy(u);
    }
    close(fds[0]);
}

/* With a ring the output never waits, whether or not anyone reads: 100 bytes into a ring of 16
 * keep the last 16, and a reader that stalled from the start learns it lost 84. THRE stays set
 * as with an fd. */
static void test_ring_output(void)
{
    struct irq_line line = {0};
    struct uart16550 *u = NULL;
    struct bytering *ring = NULL;
    uint64_t pos = 0, skipped;
    char out[32];

    CHECK(bytering_create(16, &ring) == 0);
    CHECK(uart16550_create(&line, -1, &u) == 0);
    if (!u || !ring)
        return;
    uart16550_set_output_ring(u, ring);
    for (int i = 0; i < 100; i++)
        wr(u, RBR, (uint64_t)('a' + i % 26));
    CHECK_EQ_U64(rd(u, LSR), 0x60);
    CHECK_EQ_U64(bytering_read(ring, &pos, out, sizeof(out), &skipped), 16);
    CHECK_EQ_U64(skipped, 84);
    CHECK(!memcmp(out, "ghijklmnopqrstuv", 16)); /* bytes 84..99 */
    uart16550_destroy(u);
    bytering_destroy(ring);
}

int main(void)
{
    struct irq_line line = {.set = fake_irq_set, .opaque = &irq_rx, .n = 10};
    struct uart16550 *u = NULL;
    int fds[2];

    test_create_args();
    CHECK(pipe(fds) == 0);
    CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK(uart16550_create(&line, fds[1], &u) == 0);
    if (!u)
        return test_finish("hw_uart");
    test_reset_values(u);
    test_registers(u, fds[0]);
    test_output(u, fds[0]);
    test_fifo_and_loopback(u, fds[0]);
    test_iir_priorities(u);
    test_thre_rearm(u, fds[0]);
    test_input_held_back(u);
    test_input_queue_full(u);
    test_reset(u);
    uart16550_destroy(u);
    close(fds[0]);
    close(fds[1]);
    test_bad_output();
    test_ring_output();
    return test_finish("hw_uart");
}
