/* The NS16550A UART as on QEMU's RISC-V `virt` board (base 0x1000_0000, reg-shift 0, PLIC
 * source 10), after the TI PC16550D datasheet (SNLS378C).
 *
 * Registers (offset: read / write; DLAB is LCR bit 7):
 *   0  RBR receive buffer / THR transmit holding   (DLAB=1: DLL divisor low)
 *   1  IER interrupt enable                        (DLAB=1: DLM divisor high)
 *   2  IIR interrupt identification / FCR FIFO control
 *   3  LCR line control     4  MCR modem control    5  LSR line status (writes ignored)
 *   6  MSR modem status (writes ignored)            7  SCR scratch
 * Accesses of 1 to 4 bytes are accepted; a wider access uses its low byte (robustness: a
 * guest that thinks reg-io-width is 4 still works). Offsets 8..0xff read 0, ignore writes.
 *
 * Transmit is instant: each THR byte (outside loopback) goes to the output at once, so THR and
 * the transmitter are always empty (LSR.THRE and LSR.TEMT always read 1), and the
 * THR-empty interrupt re-arms right after every THR write (Linux's 8250 driver relies on it).
 *
 * Receive: the host's bytes wait in a host-side queue of UART16550_INPUT_QUEUE_SIZE bytes.
 * They reach the guest only while it listens: IER.ERBFI set and not in loopback. Until then
 * (after reset, and whenever the guest has turned receive interrupts off, as Linux does while
 * the port is closed) they are held back, so no FIFO clear or stray RBR read of Linux's port
 * start-up can eat them. While the guest listens, LSR.DR and RBR see the RX FIFO (which holds
 * loopback bytes) followed by the host queue, so the guest drains everything without overrun.
 *
 * Interrupts (datasheet "Interrupt Control Functions"), in priority order: receiver line status
 * (IER.ELSI: overrun in loopback, cleared by reading LSR), received data (IER.ERBFI: any byte
 * available; IIR reports 0x04 at or above the FIFO trigger level and 0x0c "character timeout" below
 * it, as if the timeout elapsed at once), THR empty (IER.ETBEI: cleared by reading IIR while it is
 * the reported source or by writing THR; re-armed by the write's instant transmission and by
 * setting ETBEI), modem status (IER.EDSSI: MSR delta bits, cleared by reading MSR). The irq
 * line is high exactly while some enabled source is pending. MCR.OUT2 does not gate it (as in
 * QEMU; it gates the line only on PC boards).
 *
 * Threads and locks: MMIO handlers run on vCPU threads, uart16550_input() and
 * uart16550_wants_input() on the host's input thread; all take the UART's one mutex. The irq
 * line is set and the output written while holding it (lock order: UART lock -> PLIC lock ->
 * hart interrupt bits; UART lock -> ring lock). The output is either a byte ring
 * (uart16550_set_output_ring(), what the VMM uses: a write never waits, a stalled reader only
 * loses the oldest bytes) or an fd. A blocking output fd that stalls stalls the writing vCPU
 * and the input thread, so an fd suits tests and tools only. Writing to a closed pipe raises
 * SIGPIPE: the process is expected to ignore it. */
#ifndef TESSERA_HW_UART16550_H
#define TESSERA_HW_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/irq.h"

#define UART16550_MMIO_SIZE        0x100
#define UART16550_INPUT_QUEUE_SIZE 65536 /* host-side receive queue, bytes */
#define UART16550_FIFO_SIZE        16

#define UART16550_STATE_VERSION 1

struct uart16550;
struct bytering;
struct sbuf;
struct scur;

/* Creates a UART in its power-on state. `irq` is its interrupt line (copied; {0} for an
 * unconnected one). `out_fd` receives transmitted bytes; < 0 discards them. The fd stays the
 * caller's. Returns 0 and the UART in *out, or -EINVAL, -ENOMEM. Set-up thread only. */
int uart16550_create(const struct irq_line *irq, int out_fd, struct uart16550 **out);

/* Sends transmitted bytes to `ring` (src/base/bytering.h) instead of the output fd; NULL goes
 * back to the fd. The ring stays the caller's and must outlive the UART's use of it. Set-up
 * thread, before the machine runs. */
void uart16550_set_output_ring(struct uart16550 *u, struct bytering *ring);

/* Frees the UART. NULL is allowed. Nothing may access it any more. */
void uart16550_destroy(struct uart16550 *u);

/* Power-on state of every register; the RX FIFO is emptied and input is held back again
 * until the guest sets IER.ERBFI. Bytes in the host queue are kept: they are the host's, typed
 * for whatever runs after the reset. The irq line is set low. Any thread; takes the lock. */
void uart16550_reset(struct uart16550 *u);

/* Queues up to `len` bytes of host input and returns how many were taken (fewer when the
 * queue is full: the caller keeps the rest and retries later). Raises the irq if the guest
 * listens. Host input thread; takes the lock. */
size_t uart16550_input(struct uart16550 *u, const uint8_t *buf, size_t len);

/* True while the host queue has room, i.e. uart16550_input() would take at least one byte:
 * an input thread can stop polling its source while this is false. Takes the lock. */
bool uart16550_wants_input(struct uart16550 *u);

/* Saved state, section version 1 (src/base/state.h encoding):
 *   u8 IER, LCR, MCR, SCR, DLL, DLM, FCR (FE, DMA and trigger bits), LSR error bits (OE, PE,
 *      FE, BI: pending until LSR is read), MSR delta bits, the last RBR byte read
 *   bool THR-empty interrupt armed
 *   u8 RX FIFO count (at most 16, 1 outside FIFO mode), then the bytes, oldest first
 *   u32 host queue count (at most UART16550_INPUT_QUEUE_SIZE), then the bytes, oldest first
 * The host queue is saved because the guest already sees those bytes (LSR.DR, RBR, the
 * received-data interrupt) while it listens; dropping them would change what it reads. LSR's
 * other bits and IIR follow from the rest; the output fd is the host's. Takes the UART lock;
 * any thread. */
void uart16550_save(struct uart16550 *u, struct sbuf *out);

/* Loads a section written by uart16550_save() with `version` (1 only). Checks every field
 * and changes nothing unless all are good; returns 0, or -1 with the reason in in->err. On
 * success the host queue holds the saved bytes (bytes queued before the load are dropped) and
 * the irq line is set to its level again, unconditionally. Machine stopped; the calling
 * thread, holding no lock the irq receiver takes; takes the UART lock. */
int uart16550_load(struct uart16550 *u, struct scur *in, uint32_t version);

/* MMIO handlers for the UART16550_MMIO_SIZE window; opaque is the struct uart16550 *. */
extern const struct mmio_ops uart16550_mmio_ops;

#endif
