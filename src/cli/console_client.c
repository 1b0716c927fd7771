/* `tessera console --sock PATH`: attaches this terminal to the serial console that a VMM serves
 * on a unix socket (`tessera run --console sock=PATH`, src/vmm/console_server.h). The socket
 * carries the console's bytes as they are, both ways. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/console.h"

static void console_client_usage(FILE *out)
{
    fprintf(out,
            "Usage: tessera console --sock PATH\n"
            "\n"
            "Attaches this terminal to the serial console of a VM started with\n"
            "`tessera run --console sock=PATH`. Output the VM printed while no client was\n"
            "attached (up to 1 MiB) is shown first. Any number of clients may be attached at\n"
            "once: each sees all output, and what any of them types goes to the guest.\n"
            "\n"
            "Keys (on a terminal): Ctrl-A x detaches (the VM keeps running), Ctrl-A Ctrl-A\n"
            "sends Ctrl-A, Ctrl-A h lists the keys. From a pipe, input is sent as it is and the\n"
            "end of input detaches.\n"
            "\n"
            "Exit status: 0 after detaching or when the VM closes its console, 1 when the\n"
            "socket cannot be reached, 2 for bad options.\n");
}

/* Writes all of buf to fd. 0 or -errno. */
static int write_full(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int console_client_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "tessera console: --sock '%s': expected a path of 1 to %zu bytes\n", path,
                sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
        fprintf(stderr, "tessera console: %s: %s (is a VM running with --console sock=%s?)\n", path,
                strerror(errno), path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Relays until Ctrl-A x, the end of input, or the VMM closing the socket. Returns the exit
 * status. */
static int console_client_relay(int fd, bool tty)
{
    struct console_escape esc;
    uint8_t buf[16384], out[16384];

    console_escape_init(&esc, "detach");
    for (;;) {
        struct pollfd pfd[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        ssize_t n;
        size_t o;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (pfd[0].revents) {
            n = read(fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                fprintf(stderr, "%stessera console: the VM closed its console\n",
                        tty ? "\r\n" : "");
                return 0;
            }
            if (write_full(STDOUT_FILENO, buf, (size_t)n))
                return 1;
        }
        if (!pfd[1].revents)
            continue;
        n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0; /* end of input: detach */
        if (!tty) {
            if (write_full(fd, buf, (size_t)n))
                return 0; /* the VMM went away; the read side reports it next time */
            continue;
        }
        if (console_escape_filter(&esc, buf, (size_t)n, out, &o)) {
            write_full(fd, out, o);
            fprintf(stderr, "\r\ntessera console: detached (the VM keeps running)\r\n");
            return 0;
        }
        if (write_full(fd, out, o))
            return 0;
    }
}

int cli_console(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sock", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = NULL;
    int c, fd, status;
    bool tty;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'h': console_client_usage(stdout); return 0;
        case ':':
            fprintf(stderr, "tessera console: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "tessera console: unknown option '%s' (see `tessera console --help`)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc || !sock) {
        fprintf(stderr, "tessera console: expected --sock PATH (see `tessera console --help`)\n");
        return 2;
    }
    fd = console_client_connect(sock);
    if (fd < 0)
        return 1;
    tty = console_raw_mode();
    if (tty)
        fprintf(stderr, "tessera console: attached to %s; Ctrl-A x detaches\r\n", sock);
    status = console_client_relay(fd, tty);
    close(fd);
    console_restore();
    return status;
}
