/* ticket: single-use, short-lived console tickets (docs/daemon.md, "The console from a
 * browser").
 *
 * A browser cannot put an Authorization header on a websocket, so it first asks for a ticket
 * (POST /api/v1/vms/{name}/console-ticket, with its token) and opens the websocket with
 * ?ticket=TEXT. A ticket speaks for the caller who asked for it, in the tenant it asked in,
 * for one VM, once, for TICKET_TTL_S seconds. At most TICKET_MAX are outstanding; an expired
 * or redeemed one frees its slot.
 *
 * The table is the caller's memory (zeroed, then ticket_table_init()); its functions take its
 * own lock, so any thread may call them. Times are CLOCK_MONOTONIC seconds, passed in so that
 * the rules can be tested without waiting.
 */
#ifndef TESSERA_DAEMON_TICKET_H
#define TESSERA_DAEMON_TICKET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/api.h"

#define TICKET_TTL_S    30
#define TICKET_MAX      64
#define TICKET_TEXT_LEN 48 /* hex digits of 24 random bytes */

struct ticket {
    char text[TICKET_TEXT_LEN + 1];
    struct api_caller caller;
    char vm[STORE_NAME_LEN];
    int64_t expires; /* monotonic seconds; 0: a free slot */
};

struct ticket_table {
    pthread_mutex_t lock;
    struct ticket t[TICKET_MAX];
};

void ticket_table_init(struct ticket_table *tab);
void ticket_table_destroy(struct ticket_table *tab);

/* A new ticket for caller (its tenant the one the request acts in) and VM vm at time now:
 * 0 with its text in out (TICKET_TEXT_LEN + 1); -EAGAIN when TICKET_MAX are outstanding;
 * -errno from getrandom(2). */
int ticket_issue(struct ticket_table *tab, const struct api_caller *caller, const char *vm,
                 int64_t now, char *out);

/* Redeems text for VM vm at time now: 0 with the caller it speaks for in *caller, the ticket
 * spent; -EACCES for text that is no outstanding ticket, or one for another VM (both spend
 * nothing), or an expired one. */
int ticket_redeem(struct ticket_table *tab, const char *text, const char *vm, int64_t now,
                  struct api_caller *caller);

/* CLOCK_MONOTONIC in seconds, the clock the server passes. */
int64_t ticket_now(void);

#endif
