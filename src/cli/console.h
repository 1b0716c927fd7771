/* The host side of the guest's serial console: the terminal and the input thread.
 *
 * When stdin is a terminal it is put in raw mode (restored at exit, also on fatal signals)
 * and Ctrl-A is the escape key as in QEMU: Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A,
 * Ctrl-A h prints help. Otherwise stdin is a plain byte stream (a script's pipe) and EOF just
 * ends input. */
#ifndef TESSERA_CLI_CONSOLE_H
#define TESSERA_CLI_CONSOLE_H

struct virt_machine;

/* Starts feeding stdin to the machine's console on its own thread. 0 or -errno. */
int console_start(struct virt_machine *m);

/* Stops and joins the console thread (it is blocked in poll, never inside the machine, when
 * this returns) and restores the terminal. After this the machine may be destroyed. */
void console_stop(void);

/* Restores the terminal if console_start() changed it. Idempotent. */
void console_restore(void);

#endif
