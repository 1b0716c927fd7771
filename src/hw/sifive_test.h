/* The SiFive test finisher as on QEMU's RISC-V `virt` board (base 0x10_0000): a guest's way to
 * power off, report a test failure, or reset the machine. OpenSBI's "sifive,test" reset driver
 * and Linux's syscon-poweroff/syscon-reboot use it.
 *
 * One register at offset 0, write-only, taking 2- or 4-byte writes as QEMU's model does
 * (OpenSBI powers off with a 16-bit store); reads of the window return 0. A write is decoded
 * as QEMU's sifive_test does: the low 16 bits are the command, the high 16 bits the code:
 *   0x5555  SIFIVE_TEST_PASS   power off; code reported as 0
 *   0x3333  SIFIVE_TEST_FAIL   power off with failure; code = value >> 16 (may be 0)
 *   0x7777  SIFIVE_TEST_RESET  reset the machine; code reported as 0
 * Any other command, and writes anywhere but offset 0, are ignored with a rate-limited log.
 *
 * Threads and locks: the device has no mutable state (only the callback fixed at creation), so
 * it needs and has no lock. The callback runs on the vCPU thread that made the write, with no
 * device lock held; it must be safe to call from several vCPU threads at once. */
#ifndef TESSERA_HW_SIFIVE_TEST_H
#define TESSERA_HW_SIFIVE_TEST_H

#include <stdint.h>

#include "hw/bus.h"

#define SIFIVE_TEST_MMIO_SIZE 0x1000

#define SIFIVE_TEST_STATE_VERSION 1

enum sifive_test_event {
    SIFIVE_TEST_PASS,
    SIFIVE_TEST_FAIL,
    SIFIVE_TEST_RESET,
};

typedef void (*sifive_test_event_fn)(void *opaque, enum sifive_test_event ev, unsigned code);

struct sifive_test;
struct sbuf;
struct scur;

/* Creates the finisher; `on_event` (required) is called with `opaque` for every recognised
 * write. Returns 0 and the device in *out, or -EINVAL, -ENOMEM. Set-up thread only. */
int sifive_test_create(sifive_test_event_fn on_event, void *opaque, struct sifive_test **out);

/* Frees the device. NULL is allowed. */
void sifive_test_destroy(struct sifive_test *t);

/* Power-on state. The device has none, so this does nothing; it exists so that every device
 * has the same life cycle. */
void sifive_test_reset(struct sifive_test *t);

/* Saved state, section version 1: an empty payload. The device has no state; the section
 * exists so that every device of a board saves and loads the same way, and so that a later
 * version with state has a number to grow from. Any thread. */
void sifive_test_save(struct sifive_test *t, struct sbuf *out);

/* Accepts an empty section of `version` 1: returns 0, or -1 with the reason in in->err (another
 * version, or any payload byte). */
int sifive_test_load(struct sifive_test *t, struct scur *in, uint32_t version);

/* MMIO handlers for the SIFIVE_TEST_MMIO_SIZE window; opaque is the struct sifive_test *. */
extern const struct mmio_ops sifive_test_mmio_ops;

#endif
