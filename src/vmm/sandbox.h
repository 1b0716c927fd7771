/* The VMM's sandbox (docs/sandbox.md): once the machine is built, its sockets bound, its
 * network backends and images open, and before the guest runs a single instruction, the
 * process gives up what it no longer needs:
 *   1. when it runs as root, it forks the hostfs broker (base/hostfs.h), which keeps root's
 *      file access for snapshots, clones and restores, then switches to an unprivileged user
 *      (every capability goes with root);
 *   2. it sets no-new-privs, so nothing it could still execute gains privileges;
 *   3. it installs a seccomp filter, on every thread at once, that allows only the system
 *      calls the VMM makes after set-up and kills the whole process (SIGSYS) on any other.
 * None of it is undone; there is no way back in. */
#ifndef TESSERA_VMM_SANDBOX_H
#define TESSERA_VMM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#define SANDBOX_ERR_LEN 256

struct sandbox_opts {
    bool off;         /* --sandbox off: none of the above (debugging) */
    const char *user; /* --user: the user to become when root; NULL: "nobody" */
    /* --sandbox selftest: a test hook. After entering the sandbox exactly as `on` does, the
     * VMM makes one system call the filter forbids (execve of a path that does not exist); the
     * kernel must kill it with SIGSYS. Should the call ever return, the VMM exits with status
     * 1 instead of running the guest. It can only end the process. */
    bool selftest;
};

/* Checks the options before anything is built: a --user that does not exist, or --user when
 * not root. 0, or -EINVAL with err. Main thread. */
int sandbox_check(const struct sandbox_opts *o, char *err);

/* Enters the sandbox (nothing when o->off). Main thread, after every other thread that exists
 * was started (the filter is synchronized onto them) and before the guest runs. 0, or -errno
 * with err: the caller must not run the guest then. */
int sandbox_enter(const struct sandbox_opts *o, char *err);

/* The self-test's forbidden call (see selftest above). Returns only if the call was allowed. */
void sandbox_selftest(void);

#endif
