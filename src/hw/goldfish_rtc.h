/* The Goldfish real-time clock as on QEMU's RISC-V `virt` board (base 0x10_1000, PLIC source
 * 11, compatible "google,goldfish-rtc"): a 64-bit count of nanoseconds since the Unix epoch that
 * runs on the host's wall clock (CLOCK_REALTIME), and one alarm with an interrupt. Linux drives
 * it with drivers/rtc/rtc-goldfish.c; with RTC_HCTOSYS the kernel sets its clock from it at
 * boot.
 *
 * Registers (the Goldfish virtual hardware's timer/RTC layout, as Linux's
 * include/clocksource/timer-goldfish.h lists it); 4-byte accesses only, as QEMU's model:
 *   0x00 TIME_LOW         read: low 32 bits of the time now, and latches the high 32 bits
 *                         for TIME_HIGH; write: replaces the low 32 bits of the time now
 *   0x04 TIME_HIGH        read: the high 32 bits latched by the last TIME_LOW read;
 *                         write: replaces the high 32 bits of the time now
 *   0x08 ALARM_LOW        read: low 32 bits of the alarm; write: sets them and arms the alarm
 *   0x0c ALARM_HIGH       read/write: high 32 bits of the alarm (a write does not arm)
 *   0x10 IRQ_ENABLED      read/write: bit 0 lets a fired alarm raise the interrupt line
 *   0x14 CLEAR_ALARM      write: disarms the alarm; reads 0
 *   0x18 ALARM_STATUS     read: 1 while the alarm is armed and has not fired; writes ignored
 *   0x1c CLEAR_INTERRUPT  write: acknowledges a fired alarm (the line falls); reads 0
 * The rest of the window reads 0 and ignores writes, with a rate-limited log line.
 *
 * Time: the guest's time is the host's CLOCK_REALTIME plus an offset, 0 at creation. Writing
 * the time changes only the offset, so a guest that sets its clock keeps its distance from the
 * host's through pauses, snapshots and migration (the state holds the offset, not a frozen
 * time), as QEMU's `-rtc clock=host` does. The offset survives a machine reset, like a battery-
 * backed clock; the alarm and the interrupt do not. All arithmetic is modulo 2^64: any value a
 * guest writes is a valid time.
 *
 * Alarm: armed by an ALARM_LOW write. If the alarm time is not after the time now, it fires at
 * once, inside that write; otherwise a one-shot timer on the machine's event loop fires it.
 * Firing disarms the alarm and makes the interrupt pending; the line is high while the
 * interrupt is pending and enabled (level-triggered, PLIC "Interrupt Gateways"). The loop's
 * timers run on CLOCK_MONOTONIC while the alarm is in wall-clock time, so the timer callback
 * checks the wall clock again and re-arms itself if it woke early (the host's clock was set
 * back); it also wakes at least every GOLDFISH_RTC_MAX_WAIT_S seconds, so an alarm is late by
 * at most that much when the host's clock is set forward.
 *
 * Threads and locks: MMIO handlers run on any vCPU thread, the alarm timer's callback on the
 * event loop's thread; both take the RTC's mutex and set the interrupt line while holding it
 * (lock order: RTC lock -> PLIC lock -> hart interrupt bits, as plic.h allows) and re-arm the
 * loop timer under it (loop.h allows holding one's own lock around loop_mod_timer()). While the
 * machine is paused the clock runs on, and an alarm that comes due fires: its interrupt waits
 * in the PLIC for the harts to run again. */
#ifndef TESSERA_HW_GOLDFISH_RTC_H
#define TESSERA_HW_GOLDFISH_RTC_H

#include <stdint.h>

#include "hw/bus.h"
#include "hw/irq.h"

#define GOLDFISH_RTC_MMIO_SIZE     0x1000
#define GOLDFISH_RTC_MAX_WAIT_S    60 /* the alarm timer re-checks the wall clock this often */
#define GOLDFISH_RTC_STATE_VERSION 1

struct goldfish_rtc;
struct loop;
struct sbuf;
struct scur;

/* Creates the RTC: time = host wall clock, alarm disarmed, interrupt disabled and not pending.
 * `irq` (copied) is the interrupt line, assumed low and not touched here. `loop` runs the
 * alarm timer and must outlive the RTC; it may be started later. Returns 0 and the device in
 * *out, or -EINVAL, -ENOMEM, or the error of loop_add_timer(). Set-up thread only. */
int goldfish_rtc_create(const struct irq_line *irq, struct loop *loop, struct goldfish_rtc **out);

/* Deletes the alarm timer (waiting for a running callback to finish) and frees the RTC. NULL
 * is allowed. No MMIO access may be running or follow; the caller holds no lock that the
 * irq receivers take. Its loop must still exist. */
void goldfish_rtc_destroy(struct goldfish_rtc *rtc);

/* Machine reset: the alarm disarmed, the interrupt disabled and not pending, the TIME_HIGH
 * latch 0, the line set low unconditionally. The time offset stays (see above). Any thread
 * holding no lock the irq receivers take; takes the RTC lock. */
void goldfish_rtc_reset(struct goldfish_rtc *rtc);

/* Saved state, section version 1 (src/base/state.h encoding):
 *   u64  offset        guest time minus host CLOCK_REALTIME, ns (mod 2^64)
 *   u64  alarm         the alarm time, ns since the epoch in guest time
 *   bool alarm_armed   ALARM_STATUS
 *   bool irq_pending   a fired alarm not yet cleared
 *   bool irq_enabled   IRQ_ENABLED
 *   u32  time_high     the TIME_HIGH latch
 * Takes the RTC lock; any thread. */
void goldfish_rtc_save(struct goldfish_rtc *rtc, struct sbuf *out);

/* Loads a section written by goldfish_rtc_save() with `version` (1 only). Checks every field
 * (each bool is 0 or 1, nothing may follow) and changes nothing unless all are good; returns
 * 0, or -1 with the reason in in->err. On success the guest's time is the host's wall clock
 * plus the saved offset, the line is set to its level unconditionally, and an armed alarm is
 * planned again (one whose time has passed while the machine was saved fires at once).
 * Machine stopped; the calling thread, holding no lock the irq receivers take; takes the RTC
 * lock. */
int goldfish_rtc_load(struct goldfish_rtc *rtc, struct scur *in, uint32_t version);

/* MMIO handlers for the GOLDFISH_RTC_MMIO_SIZE window; opaque is the struct goldfish_rtc *. */
extern const struct mmio_ops goldfish_rtc_mmio_ops;

#endif
