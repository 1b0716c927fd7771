/* An array of interrupt lines as a test sees them: irq_line.opaque points at the array and
 * irq_line.n picks the element, which records the line's level and how many times it was set.
 * Atomic, since devices set lines from their own threads (the CLINT's timer). */
#ifndef TESSERA_TESTS_FAKE_IRQ_H
#define TESSERA_TESTS_FAKE_IRQ_H

#include <stdatomic.h>
#include <stdbool.h>

struct fake_irq {
    atomic_bool level;
    atomic_uint sets;
};

static inline void fake_irq_set(void *opaque, unsigned n, bool level)
{
    struct fake_irq *f = opaque;

    atomic_store(&f[n].level, level);
    atomic_fetch_add(&f[n].sets, 1);
}

static inline bool level(struct fake_irq *f)
{
    return atomic_load(&f->level);
}

#endif
