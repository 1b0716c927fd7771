#include "cli/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "machine/virt.h"

#define CTRL_A 0x01

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;

void console_restore(void)
{
    if (termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        termios_saved = 0;
    }
}

static void console_fatal_signal(int sig)
{
    console_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void write_all(int fd, const char *s)
{
    size_t len = strlen(s);

    while (len) {
        ssize_t n = write(fd, s, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Hands bytes to the UART, waiting while its host-side queue is full: input is never lost. */
static void feed(struct virt_machine *m, const uint8_t *buf, size_t len)
{
    while (len) {
        size_t n = virt_console_input(m, buf, len);

        buf += n;
        len -= n;
        if (len) {
            struct timespec ts = {0, 1000000};

            nanosleep(&ts, NULL);
        }
    }
}

void console_escape_init(struct console_escape *e, const char *quit_action)
{
    e->pending = false;
    e->quit_action = quit_action;
}

bool console_escape_filter(struct console_escape *e, const uint8_t *in, size_t n, uint8_t *out,
                           size_t *olen)
{
    char help[160];

    *olen = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];

        if (!e->pending && ch == CTRL_A) {
            e->pending = true;
            continue;
        }
        if (!e->pending) {
            out[(*olen)++] = ch;
            continue;
        }
        e->pending = false;
        switch (ch) {
        case 'x':
        case 'X': return true;
        case 'h':
        case 'H':
        case '?':
            snprintf(help, sizeof(help),
                     "\r\nC-a x    %s\r\nC-a C-a  send C-a\r\nC-a h    this help\r\n",
                     e->quit_action);
            write_all(STDERR_FILENO, help);
            break;
        case CTRL_A: out[(*olen)++] = CTRL_A; break;
        default: break;
        }
    }
    return false;
}

bool console_raw_mode(void)
{
    struct termios raw;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios))
        return false;
    raw = saved_termios;
    termios_saved = 1;
    atexit(console_restore);
    signal(SIGTERM, console_fatal_signal);
    signal(SIGHUP, console_fatal_signal);
    signal(SIGQUIT, console_fatal_signal);
    cfmakeraw(&raw);
    /* Keep output processing so our own messages ("\n") still start at column 0. */
    raw.c_oflag |= OPOST | ONLCR;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    return true;
}

struct console_ctx {
    struct virt_machine *m;
    bool tty;
    int stop_pipe[2]; /* console_stop() writes a byte to [1] */
    pthread_t thread;
    bool running;
};

static struct console_ctx console_ctx;

static void *console_thread(void *opaque)
{
    struct console_ctx *c = opaque;
    struct console_escape esc;
    uint8_t buf[4096], out[4096];

    console_escape_init(&esc, "exit");

    for (;;) {
        struct pollfd pfd[2] = {{STDIN_FILENO, POLLIN, 0}, {c->stop_pipe[0], POLLIN, 0}};
        ssize_t n;
        size_t o;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF or error: the guest keeps running without input */
        if (!c->tty) {
            feed(c->m, buf, (size_t)n);
            continue;
        }
        if (console_escape_filter(&esc, buf, (size_t)n, out, &o)) {
            feed(c->m, out, o);
            write_all(STDERR_FILENO, "\r\ntessera: terminated by Ctrl-A x\r\n");
            virt_request_exit(c->m, 0);
            return NULL;
        }
        feed(c->m, out, o);
    }
    return NULL;
}

int console_start(struct virt_machine *m)
{
    struct console_ctx *ctx = &console_ctx;
    int err;

    ctx->m = m;
    ctx->tty = isatty(STDIN_FILENO);
    if (pipe2(ctx->stop_pipe, O_CLOEXEC) < 0)
        return -errno;
    if (ctx->tty)
        console_raw_mode();
    err = pthread_create(&ctx->thread, NULL, console_thread, ctx);
    if (err)
        return -err;
    ctx->running = true;
    return 0;
}

void console_stop(void)
{
    struct console_ctx *ctx = &console_ctx;

    if (!ctx->running)
        return;
    if (write(ctx->stop_pipe[1], "", 1) < 0)
        return;
    pthread_join(ctx->thread, NULL);
    ctx->running = false;
    close(ctx->stop_pipe[0]);
    close(ctx->stop_pipe[1]);
    console_restore();
}
