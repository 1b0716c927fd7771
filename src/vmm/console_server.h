/* The host side of the guest's serial console output, and its unix socket for clients.
 *
 * The UART writes guest output into a byte ring (src/base/bytering.h) and never waits. One
 * thread of this module, the drain thread, copies the ring to the sinks: stdout (`--console
 * stdio`, the default of `tessera run`), a log file (`log=FILE`), and every client attached to
 * the console socket (`sock=PATH`). Each sink follows the ring with its own cursor, so a slow
 * or stalled sink holds up nobody: not the guest, not the other sinks. A sink that falls more
 * than the ring's size (CONSOLE_RING_SIZE) behind skips to the oldest byte still held and is
 * told so in its own stream with one line "[tessera: N bytes of console output skipped ...]";
 * the skipped bytes count in the ring's `dropped` statistic (GET /v1/vm/stats, "console").
 *
 * Clients (`sock=PATH`, mode 0600, at most CONSOLE_CLIENTS_MAX at once) attach and detach at
 * any time. Output goes to every attached client; input from any of them goes to the guest,
 * byte for byte (a client that sends faster than the guest reads is paused, never dropped).
 * Output while no client is attached is kept (the last CONSOLE_RING_SIZE bytes) and replayed
 * to the next client that attaches when none is; a client that joins others gets live output
 * from then on. The log file, when given, is appended with everything from the drain thread.
 *
 * Threads: create, start, stop and destroy on one thread (the VMM's main thread); the drain
 * thread runs between start and stop and is the only one that touches sinks and clients. The
 * input function is called on the drain thread. */
#ifndef TESSERA_VMM_CONSOLE_SERVER_H
#define TESSERA_VMM_CONSOLE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#define CONSOLE_RING_SIZE    (1u << 20) /* output kept for replay and for slow sinks */
#define CONSOLE_CLIENTS_MAX  64
#define CONSOLE_FLUSH_MS     2000 /* how long stop waits for sinks to take the last output */
#define CONSOLE_SUN_PATH_MAX 108  /* sizeof(sockaddr_un.sun_path), the NUL included */

struct bytering;
struct console_server;

struct console_server_opts {
    int out_fd;            /* stdio: guest output goes to this fd; < 0: not to an fd */
    const char *sock_path; /* serve clients on a unix socket here; NULL: no socket */
    const char *log_path;  /* append everything to this file; NULL: no log */
};

/* Guest input from a client: takes up to len bytes and returns how many it took (the rest is
 * offered again later). Called on the drain thread with no lock of this module held. */
typedef size_t (*console_input_fn)(void *opaque, const uint8_t *buf, size_t len);

/* Parses the value of `--console`: "stdio" or "sock=PATH", either followed by ",log=FILE".
 * Splits `arg` in place (o's strings point into it). For stdio out_fd is `stdout_fd`, for
 * sock it is -1. 0, or -EINVAL with a message for people in err naming the key. */
int console_server_parse_opts(char *arg, int stdout_fd, struct console_server_opts *o, char *err,
                              size_t errlen);

/* Opens the log file and the socket (refusing a socket path another process serves, replacing
 * a stale one) and creates the ring. The drain thread is not started. 0, or -errno with a
 * message naming the path in err. */
int console_server_create(const struct console_server_opts *o, struct console_server **out,
                          char *err, size_t errlen);

/* The ring the UART writes (virt_config.console_ring). Owned by the server; it lives until
 * console_server_destroy(). */
struct bytering *console_server_ring(struct console_server *cs);

/* Starts the drain thread; input from clients goes to input(opaque, ...). 0 or -errno. */
int console_server_start(struct console_server *cs, console_input_fn input, void *opaque);

/* How many clients are attached now. Any thread. */
unsigned console_server_clients(struct console_server *cs);

/* Gives every sink up to CONSOLE_FLUSH_MS to take the output still in the ring, then joins the
 * drain thread and detaches every client. Call it once nothing writes the ring any more (the
 * machine has stopped). Idempotent; a server never started is fine. */
void console_server_stop(struct console_server *cs);

/* Stops the server if needed, closes everything, removes the socket file (if it is still the
 * one this server made) and frees the ring. NULL is allowed. */
void console_server_destroy(struct console_server *cs);

#endif
