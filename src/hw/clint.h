/* The SiFive CLINT (core-local interruptor) as on QEMU's RISC-V `virt` board: per-hart
 * machine software interrupts (msip) and the machine timer (mtime, mtimecmp).
 *
 * Layout (offsets from the board's base, 0x0200_0000 on `virt`), as in QEMU's ACLINT
 * (SWI at 0x0, MTIMER at 0x4000) and the SiFive FU540-C000 manual, "Core Local Interruptor"
 * chapter: 0x0000 + 4*h   msip[h]      4-byte only; bit 0 is the hart's MSIP, other bits read 0
 *   0x4000 + 8*h   mtimecmp[h]  4- or 8-byte (4-byte accesses reach the low or high half)
 *   0xbff8         mtime        4- or 8-byte; reads the current time, a write sets it
 * Registers of harts the CLINT does not have, and the rest of the window, read 0 and ignore
 * writes. An 8-byte access to the msip block is an access fault (QEMU's SWI allows 4 only).
 *
 * Interrupts (RISC-V privileged spec 1.12 §3.1.9 mip, §3.2.1 mtime/mtimecmp): MSIP[h] follows
 * msip[h] bit 0; MTIP[h] is high exactly while mtime >= mtimecmp[h] (unsigned). A timer thread,
 * one per CLINT, raises MTIP when a deadline passes; mtimecmp and mtime writes set the lines to
 * their new level at once. The same thread keeps the harts' Sstc comparators (stimecmp, a hart
 * CSR the hart hands over with clint_set_stimecmp()): STIP[h] is high exactly while
 * mtime >= stimecmp[h], once clint_set_stip_lines() has wired the lines.
 *
 * Threads and locks: MMIO handlers run on any vCPU thread, the timer thread on its own; all
 * of them take the CLINT's mutex, and they call the irq lines while holding it (lock order:
 * CLINT lock -> hart interrupt bits, which are atomics). clint_time() takes no lock. */
#ifndef TESSERA_HW_CLINT_H
#define TESSERA_HW_CLINT_H

#include <stdint.h>

#include "hw/bus.h"
#include "hw/irq.h"

#define CLINT_MMIO_SIZE 0x10000
#define CLINT_MAX_HARTS 4095 /* msip fills 0x0..0x3ffc, mtimecmp 0x4000..0xbff0 */

#define CLINT_STATE_VERSION 1

struct clint;
struct sbuf;
struct scur;

/* Creates a CLINT for `nharts` harts (1..CLINT_MAX_HARTS) whose mtime counts at `freq_hz`
 * (1 Hz..10 GHz; `virt` uses 10 MHz) from CLOCK_MONOTONIC, starting at 0 now.
 * `msip_lines` and `mtip_lines` are arrays of `nharts` lines (copied; the arrays need not
 * outlive the call), wired to each hart's MSIP and MTIP. The lines are assumed low and are not
 * touched here. Starts the timer thread. Returns 0 and the CLINT in *out, or -EINVAL for bad
 * arguments, -ENOMEM, or the error of pthread_create() (as -errno). Set-up thread only. */
int clint_create(unsigned nharts, uint64_t freq_hz, const struct irq_line *msip_lines,
                 const struct irq_line *mtip_lines, struct clint **out);

/* Wires the supervisor timers (RISC-V Sstc): `stip_lines` is an array of `nharts` lines
 * (copied) to each hart's STIP, which is then high exactly while mtime >= stimecmp[h], the
 * value the hart last gave clint_set_stimecmp() (UINT64_MAX, never due, until then). The
 * timer thread raises them as it does MTIP, so a hart sleeping in WFI wakes on time. The
 * lines are assumed low and set at once to their level. Set-up thread, before the harts run;
 * returns 0 or -ENOMEM. Without this call no STIP line is driven. */
int clint_set_stip_lines(struct clint *clint, const struct irq_line *stip_lines);

/* Hart `hart`'s stimecmp is now `cmp`: sets its STIP line to its level at once (before
 * returning) and re-plans the timer thread. A hart out of range is ignored. `clint` is a
 * struct clint *, so the hart can hold this as its comparator callback. Any thread that holds
 * no lock the irq receivers take; takes the CLINT lock. stimecmp is not in the CLINT's saved
 * state: it is the hart's, and the hart hands it over again when it loads. */
void clint_set_stimecmp(void *clint, unsigned hart, uint64_t cmp);

/* Stops and joins the timer thread and frees the CLINT. NULL is allowed. No MMIO access and
 * no clint_time() call may be running or follow. */
void clint_destroy(struct clint *clint);

/* Power-on state: mtime restarts at 0, every mtimecmp is UINT64_MAX (never due), every msip
 * is 0; every MSIP, MTIP and STIP line is set low (STIP then follows the stimecmp values the
 * harts hold: a hart resets its own). Any thread; takes the CLINT lock. */
void clint_reset(struct clint *clint);

/* mtime now, for the hart's `time` CSR (RISC-V unprivileged spec, "Zicntr" counters).
 * `clint` is a struct clint *; the void * lets a hart hold it as an opaque callback. Any
 * thread, no lock: one clock read and arithmetic on an atomic time base. */
uint64_t clint_time(void *clint);

/* Makes mtime read `mtime` now and count on from there, exactly as an 8-byte guest store to
 * mtime (offset 0xbff8) does: every MTIP and STIP line is set to its new level at once and the
 * timer thread re-plans. For a board that stops the guest's clock while paused and restarts it from
 * the value it froze. Any thread that holds no lock the irq receivers take; takes the CLINT lock.
 */
void clint_set_mtime(struct clint *clint, uint64_t mtime);

/* Saved state, section version 1 (src/base/state.h encoding):
 *   u32 harts, u64 freq_hz     must equal this CLINT's
 *   u64 mtime                  the guest's mtime at the save
 *   per hart: bool msip, u64 mtimecmp
 * clint_save() writes mtime as clint_time() reads it during the call: the CLINT's clock runs
 * on host time, paused or not. A board that keeps a frozen guest time while paused (virt
 * writes it back to mtime on resume) must first set that value with clint_set_mtime(), or
 * the section holds a later time than the guest saw. Takes the CLINT lock; any thread. */
void clint_save(struct clint *c, struct sbuf *out);

/* Loads a section written by clint_save() with `version` (1 only). Checks every field (the
 * hart count and frequency must match this CLINT, msip is 0 or 1, nothing may follow) and
 * changes nothing unless all are good; returns 0, or -1 with the reason in in->err. On
 * success mtime continues from the saved value from now on (not from host time), and every
 * MSIP, MTIP and STIP line is set to its level again, unconditionally (MTIP = mtime >= mtimecmp),
 * after which the timer thread re-plans. A board that froze the guest time while paused must
 * take clint_time() right after the load as its new frozen value. Machine stopped; the
 * calling thread, which must not hold a lock the irq receivers take; takes the CLINT lock. */
int clint_load(struct clint *c, struct scur *in, uint32_t version);

/* MMIO handlers for the CLINT_MMIO_SIZE window; opaque is the struct clint *. */
extern const struct mmio_ops clint_mmio_ops;

#endif
