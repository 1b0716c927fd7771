/* An interrupt line: the object a board wires from a device's output to an interrupt
 * controller's input (or from the controller to a hart).
 *
 * The receiver's set() must be thread-safe: devices raise lines from vCPU threads and from
 * their own I/O threads. Raising an already raised line is allowed and cheap. */
#ifndef TESSERA_HW_IRQ_H
#define TESSERA_HW_IRQ_H

#include <stdbool.h>

typedef void (*irq_set_fn)(void *opaque, unsigned n, bool level);

struct irq_line {
    irq_set_fn set; /* NULL: an unconnected line, setting it does nothing */
    void *opaque;
    unsigned n; /* which input of the receiver */
};

static inline void irq_set(const struct irq_line *line, bool level)
{
    if (line->set)
        line->set(line->opaque, line->n, level);
}

#endif
