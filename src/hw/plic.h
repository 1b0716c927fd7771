/* The SiFive PLIC (platform-level interrupt controller) as on QEMU's RISC-V `virt` board,
 * following the RISC-V PLIC Specification 1.0.0.
 *
 * Layout (offsets from the board's base, 0x0c00_0000 on `virt`); 4-byte accesses only:
 *   0x000000 + 4*s              priority of source s (1..nsources-1), 0..7; 0 = never
 *                               interrupts. Source 0 does not exist: reads 0.
 *   0x001000 + 4*w              pending bits of sources 32w..32w+31, read-only
 *   0x002000 + 0x80*c + 4*w     enable bits of context c for sources 32w..32w+31
 *   0x200000 + 0x1000*c         priority threshold of context c, 0..7
 *   0x200004 + 0x1000*c         claim (read) / complete (write) of context c
 * Contexts are numbered as on QEMU `virt`: 2*h is hart h's M-mode, 2*h+1 its S-mode.
 * Everything that is not an implemented register (sources or contexts past the configured
 * counts, reserved gaps) reads 0 and ignores writes.
 *
 * Sources are level-triggered, behind the gateway of the spec's "Interrupt Gateways": a source is
 * pending while its input level is high and it is not in service (claimed and not yet completed). A
 * claim returns the enabled pending source of highest priority above the context's threshold (ties:
 * the lowest id; none: 0), and puts it in service. A complete of that id ends service; if the
 * level is still high the source is pending again. A complete of an id that is not in service
 * or not enabled for the completing context is ignored ("Interrupt Completion").
 *
 * Each context's output line is high exactly while some source is pending, enabled for it,
 * and has a priority above its threshold.
 *
 * Threads and locks: everything runs under the PLIC's one mutex: MMIO handlers on vCPU
 * threads, plic_set_irq() on whatever thread a device raises its line from (usually while
 * holding that device's lock). The PLIC sets its output lines under its lock; their receivers
 * take only hart atomics. Lock order: device lock -> PLIC lock -> hart interrupt bits. The
 * PLIC never calls into a device. */
#ifndef TESSERA_HW_PLIC_H
#define TESSERA_HW_PLIC_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/irq.h"

#define PLIC_MMIO_SIZE    0x4000000 /* QEMU `virt`'s window */
#define PLIC_MAX_SOURCES  1024      /* counting the non-existent source 0 */
#define PLIC_MAX_CONTEXTS 15872     /* (PLIC_MMIO_SIZE - 0x200000) / 0x1000 */
#define PLIC_MAX_PRIORITY 7

#define PLIC_STATE_VERSION 1

struct plic;
struct sbuf;
struct scur;

/* Creates a PLIC with sources 1..nsources-1 (nsources in 2..PLIC_MAX_SOURCES; `virt` uses 96
 * like QEMU 7.2) and `ncontexts` targets (1..PLIC_MAX_CONTEXTS). `ctx_lines` is an array of
 * `ncontexts` lines (copied), context c's output: MEIP of hart c/2 for even c, SEIP for odd.
 * All registers start at 0, so no source can interrupt; the lines are assumed low and are not
 * touched here. Returns 0 and the PLIC in *out, or -EINVAL, -ENOMEM. Set-up thread only. */
int plic_create(unsigned nsources, unsigned ncontexts, const struct irq_line *ctx_lines,
                struct plic **out);

/* Frees the PLIC. NULL is allowed. Nothing may access it any more. */
void plic_destroy(struct plic *plic);

/* Power-on state: priorities, enables and thresholds 0, nothing in service; every output
 * line set low. The input levels are kept: they are the devices' wires, not PLIC state, and a
 * device that still holds its line high shows as pending again. Any thread; takes the lock. */
void plic_reset(struct plic *plic);

/* Input `src` is now at `level`. An irq_set_fn: wire a device's line as
 * {.set = plic_set_irq, .opaque = plic, .n = src}. A source out of range (0 or >= nsources)
 * is a board bug: ignored with a rate-limited log line. Any thread; takes the PLIC lock. */
void plic_set_irq(void *plic, unsigned src, bool level);

/* Saved state, section version 1 (src/base/state.h encoding), W = ceil(sources / 32):
 *   u32 sources, u32 contexts      must equal this PLIC's (sources counts source 0)
 *   u8  priority[sources]          0..7; source 0's is 0
 *   u32 level[W]                   the input wires as the gateways last saw them
 *   u32 pending[W]                 requests latched by the gateways
 *   u32 in_service[W]              claimed and not yet completed
 *   per context: u32 enable[W], u8 threshold (0..7)
 * Bitmaps hold only existing sources; the gateway invariants hold (pending and in_service
 * disjoint; a high level not in service is pending). The output levels are not saved: they
 * follow from the rest. Takes the PLIC lock; any thread. */
void plic_save(struct plic *plic, struct sbuf *out);

/* Loads a section written by plic_save() with `version` (1 only). Checks every field and
 * changes nothing unless all are good; returns 0, or -1 with the reason in in->err (e.g.
 * "field 'sources' is 64, this machine has 97"). On success every context's output line is
 * set to its level again, unconditionally. The saved input levels stand until the devices
 * drive their lines again (their own loads do). Machine stopped; the calling thread, holding
 * no device lock; takes the PLIC lock. */
int plic_load(struct plic *plic, struct scur *in, uint32_t version);

/* MMIO handlers for the PLIC_MMIO_SIZE window; opaque is the struct plic *. */
extern const struct mmio_ops plic_mmio_ops;

#endif
