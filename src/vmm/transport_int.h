/* The inside of a transport (transport.h), shared by its kinds: transport.c (a plain fd) and
 * transport_tls.c (a GnuTLS session). Private to src/vmm/. */
#ifndef TESSERA_VMM_TRANSPORT_INT_H
#define TESSERA_VMM_TRANSPORT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/transport.h"

/* One kind of transport. Each member runs on the transport's own thread. */
struct transport_ops {
    bool tls;
    /* As transport_read()/transport_write(): a count, 0 at the end (read), or -errno (and
     * t->msg set for a failure errno alone cannot say). */
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    ssize_t (*write)(struct transport *t, const void *buf, size_t len);
    /* Says "no more writes" at this kind's level (TLS close_notify); may be NULL. */
    void (*end_writes)(struct transport *t);
    /* Frees priv; may be NULL. The fd is transport.c's business. */
    void (*destroy)(struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd;
    bool owns_fd;
    void *priv;                  /* the kind's state */
    _Atomic uint64_t written;    /* bytes written so far: any thread may read it */
    char msg[TRANSPORT_ERR_LEN]; /* the last failure in words, "" for none */
};

/* A new transport of `ops` on fd (not owned yet), or NULL when out of memory. */
struct transport *transport_new(const struct transport_ops *ops, int fd);

#endif
