/* mempolicy: the daemon's balloon policy (docs/resources.md, "Memory").
 *
 * Four times a second it compares what the VMs hold with what they may hold together: the host's
 * vm_memory_bytes against the VMs' parent control group's usage, or, without that bound, the
 * host's MemAvailable against its MemTotal. When the free part falls under the low watermark
 * it inflates the balloons of VMs that have idle memory (what the guest itself reports as
 * available, less a safety margin) until the free part is back at the high watermark: in
 * proportion to each VM's idle memory and inversely to its memory shares, never below its
 * reservation, never into the guest's own margin. A balloon released memory goes back to the
 * host (the VMM drops the pages). When the pressure is gone it deflates them again, a step at a
 * time, so that guests get their memory back without the policy swinging. A guest whose own
 * available memory falls under its margin gets memory back at once, pressure or not.
 *
 * A round with nothing to take (free at or above the low watermark) and no balloon held at the
 * last full round asks no VM anything, since the plan could change nothing: with hundreds of
 * idle VMs the policy costs a read of one control group file. A full round still comes at least
 * every MEMPOLICY_QUIET_ROUNDS rounds, so a balloon set from outside is seen within two seconds.
 *
 * mempolicy_plan() is the decision alone, a pure function the unit tests drive; the thread
 * gathers the inputs (the store under d->lock, each VM's stats outside it) and applies the
 * targets through each VM's control API (PUT /v1/vm/balloon). */
#ifndef TESSERA_DAEMON_MEMPOLICY_H
#define TESSERA_DAEMON_MEMPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;

#define MEMPOLICY_STEP         (1ull << 20) /* targets move in whole MiB */
#define MEMPOLICY_QUIET_ROUNDS 8            /* quiet rounds between two full ones: 2 s */

struct mempolicy_vm {
    /* In: the VM's size and settings, its balloon and the guest's own view. */
    uint64_t memory;      /* guest RAM */
    uint64_t reservation; /* the guest keeps at least this much */
    uint64_t shares;      /* > 0 */
    uint64_t target;      /* the balloon's current target */
    uint64_t actual;      /* what the guest has put in it so far */
    uint64_t available;   /* the guest's MemAvailable (virtio-balloon stats) */
    bool have_stats;      /* false: the guest reports no stats: left alone */
    /* Out. */
    uint64_t new_target;
};

struct mempolicy_state {
    uint64_t limit, used; /* what VMs may hold together and what they hold */
    uint64_t low, high;   /* the watermarks used (free bytes) */
    int64_t change;       /* bytes the plan takes (> 0) or gives back (< 0) */
};

/* Decides every VM's new balloon target from the host's limit and use. */
void mempolicy_plan(uint64_t limit, uint64_t used, struct mempolicy_vm *vms, size_t n,
                    struct mempolicy_state *st);

/* Whether a round may skip asking the VMs (above): free = limit - used is at or above the low
 * watermark, held (the targets together at the last full round) is zero, and that round was
 * fewer than MEMPOLICY_QUIET_ROUNDS rounds ago (rounds_since). */
bool mempolicy_quiet(uint64_t limit, uint64_t used, uint64_t held, unsigned rounds_since);

/* The guest's margin: what the policy never takes from what it reports available. */
uint64_t mempolicy_margin(uint64_t memory);

/* The thread: started after the VMs are found again, stopped before the store closes. */
int mempolicy_start(struct daemon *d);
void mempolicy_stop(struct daemon *d);

/* The last round's state (for GET /host); zeros before the first. */
void mempolicy_last(struct daemon *d, struct mempolicy_state *out);

#endif
