/* A byte ring for output that must never hold up its writer: the guest's console, written by
 * vCPU threads and drained by one host thread to stdout, a log file and socket clients.
 *
 * The ring keeps the newest `capacity` bytes of an endless stream. Every byte has an absolute
 * offset (the count of bytes written before it), so any number of readers follow the stream
 * with a cursor of their own and never disturb each other: the ring has no notion of
 * "consumed". A write never waits and never fails: when the ring is full it overwrites the
 * oldest bytes. A reader whose cursor points at bytes already overwritten has fallen behind;
 * bytering_read() moves its cursor to the oldest byte still held, reports how many it skipped,
 * and adds them to the ring's `dropped` count (so a stalled reader shows up in statistics).
 *
 * Waking the reader: the ring owns an eventfd that becomes readable when bytes arrive after
 * the last bytering_ack_wake(). A writer touches the eventfd only on that idle-to-busy edge,
 * so a vCPU printing a burst pays one write(2) per drain round, not one per byte.
 *
 * Threads and locks: every function may be called from any thread. One internal mutex guards
 * the ring; it is held only for copying bytes (never across I/O), so a writer waits at most
 * for one memcpy of a reader's chunk. Callers may hold their own locks around any call
 * (the UART writes while holding its lock); the ring calls nothing outside itself. */
#ifndef TESSERA_BASE_BYTERING_H
#define TESSERA_BASE_BYTERING_H

#include <stddef.h>
#include <stdint.h>

struct bytering;

struct bytering_stats {
    uint64_t written; /* bytes ever written: the offset one past the newest byte */
    uint64_t dropped; /* bytes readers skipped because they were overwritten first, summed;
                       * counted by bytering_read(), so a stalled reader's loss shows once it
                       * reads again */
};

/* Creates an empty ring that keeps the newest `capacity` bytes (at least 1). Returns 0 and the
 * ring in *out, -EINVAL for capacity 0, -ENOMEM, or the -errno of eventfd(). */
int bytering_create(size_t capacity, struct bytering **out);

/* Frees the ring and closes its eventfd. NULL is allowed. No thread may use it any more. */
void bytering_destroy(struct bytering *r);

/* Appends len bytes, overwriting the oldest when full (of a write longer than the capacity only
 * the last `capacity` bytes are kept; the rest still count in `written`). Never blocks on I/O
 * and cannot fail. Any thread. */
void bytering_write(struct bytering *r, const void *buf, size_t len);

/* Copies up to len bytes from offset *pos on into buf and advances *pos past them; returns how
 * many (0 when *pos is at the end). When *pos points before the oldest byte held, it first
 * moves to that byte and *skipped says how many bytes were lost (else *skipped is 0); those
 * count in `dropped`. A *pos beyond the end is treated as the end. Any thread. */
size_t bytering_read(struct bytering *r, uint64_t *pos, void *buf, size_t len, uint64_t *skipped);

/* The offset of the oldest byte held (*start) and one past the newest (*end); end - start is at
 * most the capacity. Either pointer may be NULL. */
void bytering_bounds(struct bytering *r, uint64_t *start, uint64_t *end);

/* The eventfd to poll for POLLIN: readable once bytes were written after the last
 * bytering_ack_wake(). Owned by the ring. */
int bytering_wake_fd(const struct bytering *r);

/* Clears the wake-up. Call it before reading to the end, so that a byte written after the
 * read sets the eventfd again and no wake-up is lost. */
void bytering_ack_wake(struct bytering *r);

void bytering_get_stats(struct bytering *r, struct bytering_stats *out);

#endif
