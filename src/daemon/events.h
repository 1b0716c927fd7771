/* The daemon's event bus (docs/daemon.md, "Events"): what GET /api/v1/events streams.
 *
 * A bounded ring of the newest EVENTS_RING events in memory. Each published event gets the
 * next sequence number (1, 2, ... from the daemon's start); when the ring is full the oldest
 * event is dropped. Readers keep only a cursor (the last seq they saw), so a reader that stops
 * reading costs no memory: when it reads again it skips to the oldest event still held and is
 * told how many it missed. Events are not kept across a restart.
 *
 * Threads: every function may be called from any thread. The bus has its own mutex, a leaf
 * lock: publishing while holding the daemon's lock (server.h) is fine, and nothing is called
 * back while the bus's mutex is held. */
#ifndef TESSERA_DAEMON_EVENTS_H
#define TESSERA_DAEMON_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/store.h"

#define EVENTS_RING     1024        /* events held */
#define EVENTS_DATA_MAX (16u << 10) /* an event's JSON text, in bytes */
#define EVENTS_TYPE_LEN 32          /* "vm.state", "token.create", ... with the NUL */

struct events_bus;

/* One event, as a reader gets it. */
struct events_event {
    uint64_t seq;
    char tenant[STORE_NAME_LEN]; /* whose object it is about; "" the platform's */
    char type[EVENTS_TYPE_LEN];
    char *data; /* malloc'd copy of the JSON text; the reader frees it */
};

int events_bus_new(struct events_bus **out);
void events_bus_free(struct events_bus *bus); /* NULL is a no-op; no reader may be waiting */

/* Appends an event: tenant (a name or ""), type (1..31 chars of [a-z0-9._-]) and data (one
 * JSON value as text, one line: no CR or LF, at most EVENTS_DATA_MAX bytes; the caller builds
 * it, e.g. with json_dumps(JSON_COMPACT)). -EINVAL for a bad type or data, -ENOMEM. */
int events_publish(struct events_bus *bus, const char *tenant, const char *type, const char *data);

/* The newest seq published so far (0: none). A reader that wants only what comes next starts
 * its cursor here. */
uint64_t events_last_seq(struct events_bus *bus);

/* The next event after *cursor that `tenant` may see (NULL: every tenant's), waiting up to
 * timeout_ms for one. Returns 0 with *out filled (free out->data) and *cursor = out->seq;
 * -ETIMEDOUT when none came; -ECANCELED as soon as *cancel is true (checked under the bus's
 * lock, so a canceller that sets it and then calls events_wake() is never missed); -ENOMEM.
 * *missed is the number of events (of any tenant) that had been dropped from the ring before
 * this reader got to them, so a reader can say there is a gap; 0 normally. A cursor beyond the
 * newest seq (a client resuming after a restart) is treated as the newest. */
int events_next(struct events_bus *bus, uint64_t *cursor, const char *tenant, int timeout_ms,
                const atomic_bool *cancel, struct events_event *out, uint64_t *missed);

/* Wakes every reader waiting in events_next(), so it looks at its cancel flag. */
void events_wake(struct events_bus *bus);

#endif
