/* The host event loop: one epoll set served by one thread, with fd watches, one-shot timers on
 * CLOCK_MONOTONIC and a queue of functions to run on the loop thread.
 *
 * One loop per VM process is the plan, but nothing here is global: several loops may live in
 * one process, each with its own thread.
 *
 * Threads and locks. Each loop has one internal mutex ("the loop lock"). Every function below
 * may be called from any thread, including from inside a loop callback, except where it says
 * otherwise. Callbacks run on the loop thread, one at a time, with no loop lock held, so a
 * callback may call any loop function. Lock order: a caller's own locks may be held around
 * loop_add/mod/remove calls (they take the loop lock only briefly) with one exception: a
 * thread that calls loop_remove_fd() or loop_del_timer() from outside the loop thread must not
 * hold a lock that the callback being removed takes, because removal waits for a running
 * callback to return.
 *
 * Removal guarantee (fds and timers alike): when loop_remove_fd()/loop_del_timer() returns
 * - on a thread other than the loop thread: the callback is not running and will never run
 *   again, so the caller may free the callback's opaque at once;
 * - on the loop thread (inside any callback, including the removed one's own): the callback
 *   will never be called again; if the call came from inside that very callback, it is of
 *   course still running until it returns. The loop does not touch the handle after a
 *   callback returns, so a callback may remove itself and free its opaque before returning.
 * In both cases the handle is invalid after the call. */
#ifndef TESSERA_BASE_LOOP_H
#define TESSERA_BASE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_fd;
struct loop_timer;

/* Event bits for loop_add_fd()/loop_mod_fd() and the revents of a callback. LOOP_ERR and
 * LOOP_HUP are only ever reported (as epoll reports them), never requested; they are reported
 * only while the watch asks for LOOP_IN or LOOP_OUT: a watch with events 0 is fully paused. */
#define LOOP_IN  0x1u
#define LOOP_OUT 0x2u
#define LOOP_ERR 0x4u
#define LOOP_HUP 0x8u

/* A timer deadline that never comes: the timer exists but is disarmed. */
#define LOOP_TIMER_OFF UINT64_MAX

/* Called on the loop thread when `fd` is ready; `revents` holds LOOP_* bits (never 0). */
typedef void (*loop_fd_fn)(void *opaque, int fd, unsigned revents);
/* Called on the loop thread once a timer's deadline has passed. */
typedef void (*loop_timer_fn)(void *opaque);
/* A function queued with loop_call(), run on the loop thread. */
typedef void (*loop_call_fn)(void *opaque);

/* Creates a loop whose thread is not started yet. Returns 0 and the loop in *out, or -errno
 * (-ENOMEM, or the error of epoll_create1/eventfd/timerfd_create). Any thread. */
int loop_create(struct loop **out);

/* Starts the loop thread. Returns 0, -EALREADY if it runs already, or -errno of
 * pthread_create. A stopped loop may be started again. Not from the loop thread. */
int loop_start(struct loop *loop);

/* Asks the loop thread to finish and joins it. A callback in progress completes first; no
 * callback starts after the stop request is seen. loop_call() functions queued before the
 * stop may or may not have run; those that have not stay queued and run after a later
 * loop_start(). Watches and timers stay registered. Returns 0 (also when the loop was not
 * running), or -EDEADLK when called on the loop thread itself. Not concurrently with
 * loop_start() on another thread. */
int loop_stop(struct loop *loop);

/* Stops the loop if needed and frees it. Watches and timers still registered are freed too
 * (their fds are not closed, their callbacks are not called); queued loop_call() functions are
 * discarded without running. NULL is allowed. Not from the loop thread. */
void loop_destroy(struct loop *loop);

/* True when the caller runs on this loop's thread. */
bool loop_in_thread(struct loop *loop);

/* Watches `fd` for `events` (LOOP_IN | LOOP_OUT, or 0 to register it paused). Level-triggered:
 * the callback is called again on every loop iteration while the condition holds. The fd stays
 * the caller's: it must stay open until loop_remove_fd() returns, and one fd may be watched
 * only once per loop. Returns 0 and the watch in *out, -EINVAL for unknown event bits, -ENOMEM,
 * or the -errno of epoll_ctl (-EBADF, -EEXIST, -EPERM for a regular file). *out is written
 * before the callback can first run, so the callback may read it (to remove itself, say). */
int loop_add_fd(struct loop *loop, int fd, unsigned events, loop_fd_fn cb, void *opaque,
                struct loop_fd **out);

/* Changes the events a watch asks for. Events 0 pauses the watch entirely (not even errors or
 * hang-ups are reported) until it asks for events again. Returns 0, -EINVAL for unknown bits or
 * the -errno of epoll_ctl. */
int loop_mod_fd(struct loop *loop, struct loop_fd *h, unsigned events);

/* Removes a watch and frees the handle; see the removal guarantee above. NULL is allowed. */
void loop_remove_fd(struct loop *loop, struct loop_fd *h);

/* Creates a one-shot timer that fires once CLOCK_MONOTONIC reaches `deadline_ns`
 * (LOOP_TIMER_OFF: created disarmed). A deadline in the past fires on the next loop
 * iteration. Timers that are due fire in deadline order. After firing, the timer is disarmed
 * but still exists; re-arm it with loop_mod_timer() (also from its own callback). Returns 0 and
 * the timer in *out, or -ENOMEM. As for loop_add_fd(), *out is written before the callback
 * can run. */
int loop_add_timer(struct loop *loop, uint64_t deadline_ns, loop_timer_fn cb, void *opaque,
                   struct loop_timer **out);

/* Re-arms (or with LOOP_TIMER_OFF disarms) a timer. A timer re-armed from a callback with a
 * deadline already past fires on the next loop iteration, after pending fd events, so a timer
 * cannot starve the loop. */
void loop_mod_timer(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns);

/* Deletes a timer and frees the handle; see the removal guarantee above. NULL is allowed. */
void loop_del_timer(struct loop *loop, struct loop_timer *t);

/* Queues fn(opaque) to run on the loop thread, after the current callback if called from the
 * loop thread. Calls run in the order they were queued. Returns 0, or -ENOMEM (nothing
 * queued). The loop keeps no reference to opaque beyond the call. Wakes the loop through its
 * eventfd; safe from any thread but not from a signal handler (it allocates). */
int loop_call(struct loop *loop, loop_call_fn fn, void *opaque);

#endif
