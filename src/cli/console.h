/* The host side of the guest's serial console: the terminal and the input thread of
 * `tessera run --console stdio`, and the escape keys and raw mode that `tessera console`
 * (console_client.c) shares.
 *
 * When stdin is a terminal it is put in raw mode (restored at exit, also on fatal signals)
 * and Ctrl-A is the escape key as in QEMU: Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A,
 * Ctrl-A h prints help. Otherwise stdin is a plain byte stream (a script's pipe) and EOF just
 * ends input. */
#ifndef TESSERA_CLI_CONSOLE_H
#define TESSERA_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virt_machine;

/* Starts feeding stdin to the machine's console on its own thread. 0 or -errno. */
int console_start(struct virt_machine *m);

/* Stops and joins the console thread (it is blocked in poll, never inside the machine, when
 * this returns) and restores the terminal. After this the machine may be destroyed. */
void console_stop(void);

/* Restores the terminal if console_start() or console_raw_mode() changed it. Idempotent. */
void console_restore(void);

/* Puts a terminal on stdin in raw mode (restored at exit and on fatal signals). Returns false
 * when stdin is not a terminal (nothing changed). Main thread, once. */
bool console_raw_mode(void);

/* The Ctrl-A escape keys, for the typed bytes of a terminal. quit_action names what Ctrl-A x
 * does in the help text ("exit", "detach"); it must outlive the filter. */
struct console_escape {
    bool pending; /* Ctrl-A was the last key */
    const char *quit_action;
};

void console_escape_init(struct console_escape *e, const char *quit_action);

/* Copies the n typed bytes in `in` to `out` (room for n) without the escapes, sets *olen, and
 * prints the help for Ctrl-A h to stderr. Returns true at Ctrl-A x: the bytes before it are
 * in out; the rest of `in` is not looked at. */
bool console_escape_filter(struct console_escape *e, const uint8_t *in, size_t n, uint8_t *out,
                           size_t *olen);

#endif
