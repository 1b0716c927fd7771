/* Path operations on the host's file system, through one door.
 *
 * Every open, create, rename, unlink, mkdir, stat and realpath that Tessera makes after
 * start-up goes through these calls. With no broker installed they are the system calls
 * themselves. Once the VMM enters its sandbox (docs/sandbox.md) it may run as an unprivileged
 * user that cannot even search the folders its disks and snapshots live in; then a broker
 * process, forked before the privileges were dropped, makes the call as the original user
 * and passes the open descriptor back over a socket (SCM_RIGHTS). The caller cannot tell the
 * difference, except that the broker opens no devices.
 *
 * Each call returns its result (a descriptor for hostfs_open, 0 for the others) or -errno,
 * and on failure also leaves the error in errno, so a call can replace the system call it
 * stands for without changing the error handling around it.
 *
 * Thread-safe: any thread may call at any time; calls to the broker are serialized. */
#ifndef TESSERA_BASE_HOSTFS_H
#define TESSERA_BASE_HOSTFS_H

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

/* open(2). flags may hold O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_CLOEXEC,
 * O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY, O_DSYNC, O_SYNC, O_DIRECT, O_NOATIME; a
 * broker refuses anything else with -EINVAL, and refuses a device with -EPERM (devices are
 * opened before the sandbox).
 * As with open(2), a mode_t mode follows when flags hold O_CREAT. A descriptor from the
 * broker is always close-on-exec. */
int hostfs_open(const char *path, int flags, ...);

/* opendir(3): NULL with errno on failure. */
DIR *hostfs_opendir(const char *path);

int hostfs_rename(const char *from, const char *to);
/* renameat2(2) with RENAME_NOREPLACE: -EEXIST when `to` exists; -EINVAL or -ENOSYS where the
 * file system cannot promise it. */
int hostfs_rename_noreplace(const char *from, const char *to);
int hostfs_unlink(const char *path);
int hostfs_mkdir(const char *path, mode_t mode);
int hostfs_stat(const char *path, struct stat *st);
int hostfs_lstat(const char *path, struct stat *st);

/* realpath(3) into out, PATH_MAX bytes. */
int hostfs_realpath(const char *path, char *out);

/* A connected SOCK_STREAM unix socket to the listening socket at path (O_CLOEXEC), or -errno.
 * Never waits for a full backlog: that is -EAGAIN. */
int hostfs_connect_unix(const char *path);

/* Starts the broker: forks a process that keeps this process's user and answers the calls
 * above from now on. The broker dies with the thread that started it (PR_SET_PDEATHSIG) and
 * when its socket closes. In the broker, once it holds only its socket and stderr, confine()
 * (when not NULL) runs before the first request: it restricts the broker further (a seccomp
 * filter) and returns 0, or it fails and the broker exits. Call it once, from the main
 * thread, before any privilege is dropped. *pid_out is the broker's pid (a child of this
 * process). 0 or -errno. */
int hostfs_broker_start(int (*confine)(void), pid_t *pid_out);

/* The broker's loop on socket `sock`: serves requests until EOF. Exposed for the unit test,
 * which drives it with malformed messages. Returns 0 at EOF, -errno on a socket error. */
int hostfs_broker_serve(int sock);

#endif
