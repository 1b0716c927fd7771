/* NS16550A UART. See uart16550.h for the registers, the input rules and the locking. Register
 * and bit names follow the TI PC16550D datasheet (SNLS378C), "Registers" section. */
#include "hw/uart16550.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytering.h"
#include "base/log.h"
#include "base/state.h"

enum {
    UART_RBR = 0, /* also THR, DLL */
    UART_IER = 1, /* also DLM */
    UART_IIR = 2, /* also FCR */
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c
#define IIR_FIFO   0xc0

#define FCR_FE      0x01
#define FCR_RFR     0x02
#define FCR_XFR     0x04
#define FCR_DMA     0x08
#define FCR_TRIGGER 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_PE     0x04
#define LSR_FE     0x08
#define LSR_BI     0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

struct uart16550 {
    /* Immutable after uart16550_create(). */
    struct irq_line irq;
    int out_fd;
    struct bytering *out_ring; /* set-up thread only (before the machine runs); then fixed */

    /* Everything below is protected by `lock`. */
    pthread_mutex_t lock;
    bool irq_level; /* the level last set on `irq` */
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    uint8_t fcr;        /* FE, DMA and trigger bits as last written */
    uint8_t lsr_errors; /* LSR_ERRORS bits, cleared by reading LSR */
    uint8_t msr_deltas; /* MSR bits 3:0, cleared by reading MSR */
    uint8_t rbr;        /* the last byte the guest read; RBR reads it again when empty */
    bool thr_ipending;  /* THR-empty interrupt armed (reported only with IER.ETBEI) */

    /* The RX FIFO: only loopback bytes ever land here (host bytes are read straight from
     * the queue below, see uart_rx_pop_locked()). One byte deep outside FIFO mode. */
    uint8_t rx_fifo[UART16550_FIFO_SIZE];
    unsigned rx_head, rx_count;

    uint8_t *inq; /* [UART16550_INPUT_QUEUE_SIZE] host input ring */
    size_t inq_head, inq_count;
};

/* Caller holds u->lock for all the *_locked helpers. */

/* Whether host bytes may reach the guest now: it has receive interrupts on (so it is ready
 * for them, see uart16550.h) and the receiver is not looped back to the transmitter. */
static bool uart_host_connected_locked(const struct uart16550 *u)
{
    return (u->ier & IER_ERBFI) && !(u->mcr & MCR_LOOP);
}

static size_t uart_rx_avail_locked(const struct uart16550 *u)
{
    return u->rx_count + (uart_host_connected_locked(u) ? u->inq_count : 0);
}

/* The receive trigger level, datasheet FCR description (bits 7:6); 1 outside FIFO mode. */
static unsigned uart_rx_trigger_locked(const struct uart16550 *u)
{
    static const unsigned levels[4] = {1, 4, 8, 14};

    return (u->fcr & FCR_FE) ? levels[u->fcr >> 6] : 1;
}

/* MSR bits 7:4. In loopback the modem control outputs drive the inputs (datasheet MCR bit 4:
 * RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD); otherwise the line is an ideal null-modem cable:
 * DCD, DSR and CTS asserted, as QEMU reports when no real serial port is behind the UART. */
static uint8_t uart_msr_status_locked(const struct uart16550 *u)
{
    uint8_t m = u->mcr;

    if (!(m & MCR_LOOP))
        return MSR_DCD | MSR_DSR | MSR_CTS;
    return (uint8_t)(((m & MCR_RTS) ? MSR_CTS : 0) | ((m & MCR_DTR) ? MSR_DSR : 0) |
                     ((m & MCR_OUT1) ? MSR_RI : 0) | ((m & MCR_OUT2) ? MSR_DCD : 0));
}

/* The IIR value without the FIFO bits: the highest-priority pending enabled source
 * (datasheet "Interrupt Control Functions" table). */
static uint8_t uart_iir_locked(const struct uart16550 *u)
{
    size_t avail = uart_rx_avail_locked(u);

    if ((u->ier & IER_ELSI) && u->lsr_errors)
        return IIR_RLSI;
    if ((u->ier & IER_ERBFI) && avail)
        return (avail >= uart_rx_trigger_locked(u)) ? IIR_RDI : IIR_CTI;
    if ((u->ier & IER_ETBEI) && u->thr_ipending)
        return IIR_THRI;
    if ((u->ier & IER_EDSSI) && u->msr_deltas)
        return IIR_MSI;
    return IIR_NO_INT;
}

/* Brings the irq line to its level, calling it only on a change. The receiver is the PLIC,
 * which takes only its own lock and hart atomics: safe to call under ours. */
static void uart_update_locked(struct uart16550 *u)
{
    bool level = uart_iir_locked(u) != IIR_NO_INT;

    if (level != u->irq_level) {
        u->irq_level = level;
        irq_set(&u->irq, level);
    }
}

static void uart_rx_clear_locked(struct uart16550 *u)
{
    u->rx_head = 0;
    u->rx_count = 0;
}

/* A byte arrives at the receiver (loopback). With the FIFO (or the holding register) full it
 * is an overrun (datasheet LSR bit 1): in FIFO mode the new byte is lost, in 16450 mode
 * it overwrites the holding register. */
static void uart_rx_push_locked(struct uart16550 *u, uint8_t byte)
{
    unsigned cap = (u->fcr & FCR_FE) ? UART16550_FIFO_SIZE : 1;

    if (u->rx_count < cap) {
        u->rx_fifo[(u->rx_head + u->rx_count) % UART16550_FIFO_SIZE] = byte;
        u->rx_count++;
        return;
    }
    u->lsr_errors |= LSR_OE;
    if (cap == 1)
        u->rx_fifo[u->rx_head] = byte;
}

/* The next received byte for an RBR read: the FIFO first, then, while the guest listens, the
 * host queue. Reading host bytes straight from the queue (rather than copying them into the
 * FIFO ahead of time) means that an FCR receiver reset or a FIFO mode change only discards
 * bytes that really were in the FIFO (loopback ones), never the user's typing. */
static bool uart_rx_pop_locked(struct uart16550 *u, uint8_t *byte)
{
    if (u->rx_count) {
        *byte = u->rx_fifo[u->rx_head];
        u->rx_head = (u->rx_head + 1) % UART16550_FIFO_SIZE;
        u->rx_count--;
        return true;
    }
    if (uart_host_connected_locked(u) && u->inq_count) {
        *byte = u->inq[u->inq_head];
        u->inq_head = (u->inq_head + 1) % UART16550_INPUT_QUEUE_SIZE;
        u->inq_count--;
        return true;
    }
    return false;
}

/* Sends one byte to the output ring (never waits), or to the output fd; a failed fd write drops
 * the byte with a rate-limited log. */
static void uart_emit_locked(struct uart16550 *u, uint8_t byte)
{
    char msg[64];
    ssize_t n;

    if (u->out_ring) {
        bytering_write(u->out_ring, &byte, 1);
        return;
    }
    if (u->out_fd < 0)
        return;
    do {
        n = write(u->out_fd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) /* GNU strerror_r: thread-safe, returns the message */
        log_guest("uart16550: output byte dropped: %s", strerror_r(errno, msg, sizeof(msg)));
}

static void uart_write_thr_locked(struct uart16550 *u, uint8_t byte)
{
    u->thr_ipending = false; /* writing THR clears the THRE interrupt ... */
    if (u->mcr & MCR_LOOP)
        uart_rx_push_locked(u, byte);
    else
        uart_emit_locked(u, byte);
    u->thr_ipending = true; /* ... and the instant transmission empties THR again */
}

static void uart_write_ier_locked(struct uart16550 *u, uint8_t value)
{
    uint8_t changed = (u->ier ^ value) & IER_MASK;

    u->ier = value & IER_MASK;
    /* Setting ETBEI while THR is empty (it always is) raises THRE even if an IIR read had
     * cleared it: Linux's start-up THRE test and Windows rely on this, QEMU and Bochs do it
     * on the rising edge. Clearing ETBEI forgets the pending state. */
    if (changed & IER_ETBEI)
        u->thr_ipending = (u->ier & IER_ETBEI) != 0;
}

/* FCR (datasheet FIFO Control Register): changing FE clears both FIFOs; bits 1..7 are programmed
 * only in a write that has FE set. */
static void uart_write_fcr_locked(struct uart16550 *u, uint8_t value)
{
    if ((value ^ u->fcr) & FCR_FE) {
        uart_rx_clear_locked(u);
        u->thr_ipending = true;
    }
    if (!(value & FCR_FE)) {
        u->fcr = 0;
        return;
    }
    if (value & FCR_RFR)
        uart_rx_clear_locked(u);
    if (value & FCR_XFR)
        u->thr_ipending = true; /* the (already empty) transmitter is empty */
    u->fcr = value & (FCR_FE | FCR_DMA | FCR_TRIGGER);
}

/* MCR: in loopback a change of the outputs is a change of the MSR inputs, which sets the
 * delta bits (datasheet MSR description; TERI on RI's trailing edge only). */
static void uart_write_mcr_locked(struct uart16550 *u, uint8_t value)
{
    uint8_t before = uart_msr_status_locked(u), after, diff;

    u->mcr = value & MCR_MASK;
    after = uart_msr_status_locked(u);
    diff = before ^ after;
    if (diff & MSR_CTS)
        u->msr_deltas |= MSR_DCTS;
    if (diff & MSR_DSR)
        u->msr_deltas |= MSR_DDSR;
    if ((before & MSR_RI) && !(after & MSR_RI))
        u->msr_deltas |= MSR_TERI;
    if (diff & MSR_DCD)
        u->msr_deltas |= MSR_DDCD;
}

static void uart_reset_locked(struct uart16550 *u)
{
    u->ier = 0;
    u->lcr = 0;
    u->mcr = 0;
    u->scr = 0;
    u->dll = 0;
    u->dlm = 0;
    u->fcr = 0;
    u->lsr_errors = 0;
    u->msr_deltas = 0;
    u->rbr = 0;
    u->thr_ipending = false;
    uart_rx_clear_locked(u);
    u->irq_level = false;
    irq_set(&u->irq, false); /* unconditionally: whatever the receiver believed */
}

int uart16550_create(const struct irq_line *irq, int out_fd, struct uart16550 **out)
{
    struct uart16550 *u;
    int err;

    if (!irq || !out)
        return -EINVAL;
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->inq = malloc(UART16550_INPUT_QUEUE_SIZE);
    if (!u->inq) {
        err = -ENOMEM;
        goto err_free;
    }
    u->irq = *irq;
    u->out_fd = out_fd;
    err = -pthread_mutex_init(&u->lock, NULL);
    if (err)
        goto err_free;
    /* calloc gave the power-on state: every register 0, the line low. */
    *out = u;
    return 0;

err_free:
    free(u->inq);
    free(u);
    return err;
}

void uart16550_set_output_ring(struct uart16550 *u, struct bytering *ring)
{
    u->out_ring = ring;
}

void uart16550_destroy(struct uart16550 *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u->inq);
    free(u);
}

void uart16550_reset(struct uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    uart_reset_locked(u);
    pthread_mutex_unlock(&u->lock);
}

size_t uart16550_input(struct uart16550 *u, const uint8_t *buf, size_t len)
{
    size_t taken;

    pthread_mutex_lock(&u->lock);
    taken = UART16550_INPUT_QUEUE_SIZE - u->inq_count;
    if (taken > len)
        taken = len;
    for (size_t i = 0; i < taken; i++)
        u->inq[(u->inq_head + u->inq_count + i) % UART16550_INPUT_QUEUE_SIZE] = buf[i];
    u->inq_count += taken;
    uart_update_locked(u);
    pthread_mutex_unlock(&u->lock);
    return taken;
}

bool uart16550_wants_input(struct uart16550 *u)
{
    bool room;

    pthread_mutex_lock(&u->lock);
    room = u->inq_count < UART16550_INPUT_QUEUE_SIZE;
    pthread_mutex_unlock(&u->lock);
    return room;
}

void uart16550_save(struct uart16550 *u, struct sbuf *out)
{
    pthread_mutex_lock(&u->lock);
    sbuf_put_u8(out, u->ier);
    sbuf_put_u8(out, u->lcr);
    sbuf_put_u8(out, u->mcr);
    sbuf_put_u8(out, u->scr);
    sbuf_put_u8(out, u->dll);
    sbuf_put_u8(out, u->dlm);
    sbuf_put_u8(out, u->fcr);
    sbuf_put_u8(out, u->lsr_errors);
    sbuf_put_u8(out, u->msr_deltas);
    sbuf_put_u8(out, u->rbr);
    sbuf_put_bool(out, u->thr_ipending);
    sbuf_put_u8(out, (uint8_t)u->rx_count);
    for (unsigned i = 0; i < u->rx_count; i++)
        sbuf_put_u8(out, u->rx_fifo[(u->rx_head + i) % UART16550_FIFO_SIZE]);
    sbuf_put_u32(out, (uint32_t)u->inq_count);
    for (size_t i = 0; i < u->inq_count; i++)
        sbuf_put_u8(out, u->inq[(u->inq_head + i) % UART16550_INPUT_QUEUE_SIZE]);
    pthread_mutex_unlock(&u->lock);
}

/* The registers of a section being loaded, read and checked before any is applied. */
struct uart_saved {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, lsr_errors, msr_deltas, rbr;
    bool thr_ipending;
    uint8_t rx_count;
    uint8_t rx_fifo[UART16550_FIFO_SIZE];
    uint32_t inq_count;
};

static int uart_check_mask(struct scur *in, const char *field, uint8_t v, uint8_t allowed)
{
    if (v & ~allowed)
        return scur_fail(in, "field '%s' is 0x%02x, only bits 0x%02x may be set", field, v,
                         allowed);
    return 0;
}

/* Reads and checks everything but the host queue's bytes, which follow in `in`. */
static int uart_read_saved(struct scur *in, struct uart_saved *s)
{
    unsigned cap;

    s->ier = scur_get_u8(in);
    s->lcr = scur_get_u8(in);
    s->mcr = scur_get_u8(in);
    s->scr = scur_get_u8(in);
    s->dll = scur_get_u8(in);
    s->dlm = scur_get_u8(in);
    s->fcr = scur_get_u8(in);
    s->lsr_errors = scur_get_u8(in);
    s->msr_deltas = scur_get_u8(in);
    s->rbr = scur_get_u8(in);
    s->thr_ipending = scur_get_bool(in);
    s->rx_count = scur_get_u8(in);
    if (scur_ok(in))
        return -1;
    if (uart_check_mask(in, "ier", s->ier, IER_MASK) ||
        uart_check_mask(in, "mcr", s->mcr, MCR_MASK) ||
        uart_check_mask(in, "fcr", s->fcr, FCR_FE | FCR_DMA | FCR_TRIGGER) ||
        uart_check_mask(in, "lsr_errors", s->lsr_errors, LSR_ERRORS) ||
        uart_check_mask(in, "msr_deltas", s->msr_deltas, MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD))
        return -1;
    if (!(s->fcr & FCR_FE) && s->fcr)
        return scur_fail(in, "field 'fcr' is 0x%02x: FIFO bits are set with the FIFOs off", s->fcr);
    cap = (s->fcr & FCR_FE) ? UART16550_FIFO_SIZE : 1;
    if (s->rx_count > cap)
        return scur_fail(in, "field 'rx_count' is %u, the receiver holds at most %u bytes here",
                         s->rx_count, cap);
    scur_get_bytes(in, s->rx_fifo, s->rx_count);
    s->inq_count = scur_get_u32(in);
    if (scur_ok(in))
        return -1;
    if (s->inq_count > UART16550_INPUT_QUEUE_SIZE)
        return scur_fail(in, "field 'input_count' is %" PRIu32 ", the host queue holds at most %u",
                         s->inq_count, UART16550_INPUT_QUEUE_SIZE);
    return 0;
}

int uart16550_load(struct uart16550 *u, struct scur *in, uint32_t version)
{
    struct uart_saved s;
    uint8_t *inq;

    if (version != UART16550_STATE_VERSION)
        return scur_fail(in, "section version %" PRIu32 " is not supported (this build reads %u)",
                         version, UART16550_STATE_VERSION);
    if (uart_read_saved(in, &s))
        return -1;
    inq = malloc(UART16550_INPUT_QUEUE_SIZE);
    if (!inq)
        return scur_fail(in, "out of memory for the host input queue");
    scur_get_bytes(in, inq, s.inq_count);
    if (scur_finish(in)) {
        free(inq);
        return -1;
    }

    pthread_mutex_lock(&u->lock);
    u->ier = s.ier;
    u->lcr = s.lcr;
    u->mcr = s.mcr;
    u->scr = s.scr;
    u->dll = s.dll;
    u->dlm = s.dlm;
    u->fcr = s.fcr;
    u->lsr_errors = s.lsr_errors;
    u->msr_deltas = s.msr_deltas;
    u->rbr = s.rbr;
    u->thr_ipending = s.thr_ipending;
    memcpy(u->rx_fifo, s.rx_fifo, s.rx_count);
    u->rx_head = 0;
    u->rx_count = s.rx_count;
    free(u->inq); /* the new ring, its bytes from offset 0 */
    u->inq = inq;
    u->inq_head = 0;
    u->inq_count = s.inq_count;
    u->irq_level = uart_iir_locked(u) != IIR_NO_INT;
    irq_set(&u->irq, u->irq_level); /* unconditionally: whatever the receiver believed */
    pthread_mutex_unlock(&u->lock);
    return 0;
}

/* vCPU thread; takes the UART lock. RBR, IIR, LSR and MSR reads have side effects. */
static int uart_mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct uart16550 *u = opaque;
    uint8_t v = 0;

    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case UART_RBR:
        if (u->lcr & LCR_DLAB) {
            v = u->dll;
        } else {
            uart_rx_pop_locked(u, &u->rbr);
            v = u->rbr;
        }
        break;
    case UART_IER: v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier; break;
    case UART_IIR:
        v = uart_iir_locked(u);
        if (v == IIR_THRI)
            u->thr_ipending = false; /* reading IIR clears THRE when it is the source */
        if (u->fcr & FCR_FE)
            v |= IIR_FIFO;
        break;
    case UART_LCR: v = u->lcr; break;
    case UART_MCR: v = u->mcr; break;
    case UART_LSR:
        v = (uint8_t)((uart_rx_avail_locked(u) ? LSR_DR : 0) | u->lsr_errors | LSR_THRE | LSR_TEMT);
        u->lsr_errors = 0;
        break;
    case UART_MSR:
        v = uart_msr_status_locked(u) | u->msr_deltas;
        u->msr_deltas = 0;
        break;
    case UART_SCR: v = u->scr; break;
    default: break; /* 8..0xff: nothing there */
    }
    uart_update_locked(u);
    pthread_mutex_unlock(&u->lock);
    *value = v;
    return 0;
}

/* vCPU thread; takes the UART lock, writes the output fd and sets the irq under it. */
static int uart_mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct uart16550 *u = opaque;
    uint8_t v = (uint8_t)value;

    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case UART_RBR:
        if (u->lcr & LCR_DLAB)
            u->dll = v;
        else
            uart_write_thr_locked(u, v);
        break;
    case UART_IER:
        if (u->lcr & LCR_DLAB)
            u->dlm = v;
        else
            uart_write_ier_locked(u, v);
        break;
    case UART_IIR: uart_write_fcr_locked(u, v); break;
    case UART_LCR: u->lcr = v; break;
    case UART_MCR: uart_write_mcr_locked(u, v); break;
    case UART_SCR: u->scr = v; break;
    default: break; /* LSR and MSR are read-only; 8..0xff: nothing there */
    }
    uart_update_locked(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

const struct mmio_ops uart16550_mmio_ops = {
    .read = uart_mmio_read,
    .write = uart_mmio_write,
    .min_size = 1,
    .max_size = 4,
};
