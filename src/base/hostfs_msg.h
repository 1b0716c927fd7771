/* The broker's wire format (private to hostfs.c and its unit test).
 *
 * One request, one reply, each one SOCK_SEQPACKET message of exactly its struct's size; the
 * broker refuses any other size, an unknown op, a string not NUL-terminated inside its field,
 * flags or a mode outside what the op allows, and nonzero reserved fields, answering -EPROTO
 * (or -EINVAL for flags) and serving on. (A message of zero bytes cannot be told from the
 * end of the stream on a SOCK_SEQPACKET socket: it ends the broker.) Both ends are the same binary,
 * so the structs need no byte-order or padding rules beyond "same layout". */
#ifndef TESSERA_BASE_HOSTFS_MSG_H
#define TESSERA_BASE_HOSTFS_MSG_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>

enum hostfs_op {
    HOSTFS_OP_OPEN = 1, /* path, flags, mode -> fd (SCM_RIGHTS) */
    HOSTFS_OP_RENAME,   /* path -> path2; flags 0 or RENAME_NOREPLACE */
    HOSTFS_OP_UNLINK,   /* path */
    HOSTFS_OP_MKDIR,    /* path, mode */
    HOSTFS_OP_STAT,     /* path -> st */
    HOSTFS_OP_LSTAT,    /* path -> st */
    HOSTFS_OP_REALPATH, /* path -> out */
    HOSTFS_OP_CONNECT,  /* path -> fd (SCM_RIGHTS) */
    HOSTFS_OP_END,
};

struct hostfs_req {
    uint32_t op;
    int32_t flags;
    uint32_t mode;
    uint32_t reserved; /* 0 */
    char path[PATH_MAX];
    char path2[PATH_MAX]; /* RENAME's target; empty for every other op */
};

struct hostfs_rep {
    int32_t result; /* 0, or -errno; a descriptor travels in SCM_RIGHTS, never here */
    uint32_t reserved;
    struct stat st;     /* STAT, LSTAT */
    char out[PATH_MAX]; /* REALPATH */
};

#endif
