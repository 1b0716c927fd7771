/* The console's drain thread and its unix socket. See console_server.h for the contract. */
#include "vmm/console_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/bytering.h"
#include "base/hostfs.h"
#include "base/log.h"
#include "base/time.h"

#define CON_STAGE       16384 /* bytes taken from the ring per sink and write */
#define CON_NOTICE_ROOM 128   /* room before the staged bytes for a skip notice */
#define CON_INPUT_CHUNK 4096  /* client input read at once */
#define CON_RETRY_MS    10    /* poll period while some client input waits for the guest */

/* One reader of the ring: stdout, the log file or a client. Drain thread only. */
struct con_sink {
    int fd;
    const char *what; /* for messages: "stdout", the log's path, "client" */
    uint64_t pos;     /* the next ring offset to stage */
    /* Staged bytes: stage[off, len) go out next; the last data_len of them are ring bytes
     * (a skip notice may precede them). */
    uint8_t stage[CON_NOTICE_ROOM + CON_STAGE];
    size_t off, len, data_len;
    bool is_client; /* a socket: sent with MSG_NOSIGNAL */
    bool dead;      /* the fd failed: no more output goes there */
    /* Client input the guest has not taken yet; while any waits, the client is not read. */
    uint8_t in[CON_INPUT_CHUNK];
    size_t in_off, in_len;
};

struct console_server {
    struct bytering *ring;
    struct con_sink *out, *log; /* NULL: not configured */
    char *log_path;
    int listen_fd; /* -1: no socket */
    char sock_path[CONSOLE_SUN_PATH_MAX];
    dev_t sock_dev;
    ino_t sock_ino;
    int stop_fd; /* eventfd: console_server_stop() asks the thread to finish */
    console_input_fn input;
    void *input_opaque;
    pthread_t thread;
    bool running;
    atomic_uint attached; /* nclients, for other threads */

    /* Drain thread only. */
    struct con_sink *clients[CONSOLE_CLIENTS_MAX];
    unsigned nclients;
    uint64_t unseen_from; /* ring offset of the first byte no client was sent */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int console_server_parse_opts(char *arg, int stdout_fd, struct console_server_opts *o, char *err,
                              size_t errlen)
{
    char *item, *save = NULL;
    bool first = true;

    *o = (struct console_server_opts){.out_fd = -1};
    for (item = strtok_r(arg, ",", &save); item; item = strtok_r(NULL, ",", &save), first = false) {
        char *eq = strchr(item, '=');
        const char **slot;

        if (first && !strcmp(item, "stdio")) {
            o->out_fd = stdout_fd;
            continue;
        }
        if (!eq) {
            set_err(err, errlen, "--console: '%s': expected stdio, sock=PATH or log=FILE", item);
            return -EINVAL;
        }
        *eq = 0;
        if (first && !strcmp(item, "sock")) {
            slot = &o->sock_path;
        } else if (!first && !strcmp(item, "log")) {
            slot = &o->log_path;
        } else {
            set_err(err, errlen,
                    "--console: '%s' %s (expected stdio or sock=PATH first, then log=FILE)", item,
                    first ? "cannot come first" : "is not a known key here");
            return -EINVAL;
        }
        if (*slot) {
            set_err(err, errlen, "--console: %s= is given twice", item);
            return -EINVAL;
        }
        if (!eq[1]) {
            set_err(err, errlen, "--console: %s= needs a path", item);
            return -EINVAL;
        }
        *slot = eq + 1;
    }
    if (first) {
        set_err(err, errlen, "--console: expected stdio or sock=PATH[,log=FILE]");
        return -EINVAL;
    }
    if (o->sock_path && strlen(o->sock_path) >= CONSOLE_SUN_PATH_MAX) {
        set_err(err, errlen, "--console sock=%s: a unix socket path must be shorter than %d bytes",
                o->sock_path, CONSOLE_SUN_PATH_MAX);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* ---- The socket ---- */

/* Refuses a path another process serves; removes a stale socket; refuses anything else that
 * exists (a file is never replaced by a socket). */
static int sock_clear(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    int fd, ret;

    if (lstat(path, &st)) {
        if (errno == ENOENT)
            return 0;
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: %s", path, strerror(errno));
        return ret;
    }
    if (!S_ISSOCK(st.st_mode)) {
        set_err(err, errlen, "--console sock=%s: exists and is not a socket", path);
        return -EEXIST;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: socket: %s", path, strerror(errno));
        return ret;
    }
    ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
    close(fd);
    if (ret != -ECONNREFUSED) {
        set_err(err, errlen, "--console sock=%s: %s", path,
                ret == 0 || ret == -EAGAIN ? "another process serves this socket" : strerror(-ret));
        return ret ? ret : -EADDRINUSE;
    }
    if (unlink(path) && errno != ENOENT) {
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: cannot remove the stale socket: %s", path,
                strerror(errno));
        return ret;
    }
    return 0;
}

/* The listening socket at cs->sock_path, mode 0600 (set before listen(): until then every
 * connect() is refused, so nobody gets in through the umask's wider mode). */
static int sock_listen(struct console_server *cs, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, ret;

    memcpy(sa.sun_path, cs->sock_path, strlen(cs->sock_path) + 1);
    ret = sock_clear(cs->sock_path, &sa, err, errlen);
    if (ret)
        return ret;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: socket: %s", cs->sock_path, strerror(errno));
        return ret;
    }
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: bind: %s", cs->sock_path, strerror(errno));
        goto close_fd;
    }
    if (chmod(cs->sock_path, 0600) || lstat(cs->sock_path, &st) || listen(fd, 16)) {
        ret = -errno;
        set_err(err, errlen, "--console sock=%s: %s", cs->sock_path, strerror(errno));
        goto unlink_path;
    }
    cs->sock_dev = st.st_dev;
    cs->sock_ino = st.st_ino;
    cs->listen_fd = fd;
    return 0;

unlink_path:
    unlink(cs->sock_path);
close_fd:
    close(fd);
    return ret;
}

/* ---- Sinks (drain thread) ---- */

static struct con_sink *sink_new(int fd, const char *what, uint64_t pos)
{
    struct con_sink *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->fd = fd;
    s->what = what;
    s->pos = pos;
    return s;
}

/* True while the sink has staged bytes or the ring holds bytes it has not staged. */
static bool sink_pending(struct console_server *cs, const struct con_sink *s)
{
    uint64_t end;

    if (s->dead)
        return false;
    if (s->off < s->len)
        return true;
    bytering_bounds(cs->ring, NULL, &end);
    return s->pos < end;
}

/* Stages the next ring bytes, after a notice if the sink fell behind. False: nothing to send. */
static bool sink_refill(struct console_server *cs, struct con_sink *s)
{
    uint64_t skipped;
    size_t n;

    if (s->off < s->len)
        return true;
    n = bytering_read(cs->ring, &s->pos, s->stage + CON_NOTICE_ROOM, CON_STAGE, &skipped);
    s->off = CON_NOTICE_ROOM;
    s->len = CON_NOTICE_ROOM + n;
    s->data_len = n;
    if (skipped) {
        char notice[CON_NOTICE_ROOM];
        int l = snprintf(notice, sizeof(notice),
                         "\r\n[tessera: %llu bytes of console output skipped: this reader fell "
                         "behind]\r\n",
                         (unsigned long long)skipped);

        if (l > 0 && (size_t)l < sizeof(notice)) {
            s->off -= (size_t)l;
            memcpy(s->stage + s->off, notice, (size_t)l);
        }
    }
    return s->off < s->len;
}

/* Writes staged and ring bytes to the sink until it would block. `once`: the fd is blocking
 * (stdout, which is shared with whoever started us and so never made non-blocking) and poll()
 * said it is writable: write one chunk of at most PIPE_BUF bytes, which a pipe then takes
 * without blocking. A regular file (the log) takes everything. */
static void sink_pump(struct console_server *cs, struct con_sink *s, bool once)
{
    while (!s->dead && sink_refill(cs, s)) {
        size_t len = s->len - s->off;
        ssize_t n;

        if (once && len > PIPE_BUF)
            len = PIPE_BUF;
        /* A client that went away must not raise SIGPIPE in a process that did not ignore it. */
        n = s->is_client ? send(s->fd, s->stage + s->off, len, MSG_NOSIGNAL)
                         : write(s->fd, s->stage + s->off, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (s != cs->out || errno != EPIPE)
                log_warn("console %s: %s; no more console output goes there", s->what,
                         n < 0 ? strerror(errno) : "wrote nothing");
            s->dead = true;
            return;
        }
        s->off += (size_t)n;
        if (once)
            return;
    }
}

/* The ring offset of the first byte a client has not been sent: its stage's unsent ring
 * bytes are not delivered. */
static uint64_t sink_sent_pos(const struct con_sink *s)
{
    size_t unsent = s->len - s->off;

    return s->pos - (unsent < s->data_len ? unsent : s->data_len);
}

static void client_drop(struct console_server *cs, unsigned i)
{
    struct con_sink *s = cs->clients[i];

    if (cs->nclients == 1)
        cs->unseen_from = sink_sent_pos(s);
    close(s->fd);
    free(s);
    cs->clients[i] = cs->clients[--cs->nclients];
    atomic_store(&cs->attached, cs->nclients);
    log_info("console: a client detached (%u attached)", cs->nclients);
}

static void client_accept(struct console_server *cs)
{
    static const char full[] = "[tessera: too many console clients attached]\r\n";
    uint64_t start, end, pos;
    struct con_sink *s;
    int fd = accept4(cs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return; /* EAGAIN, or a client that went away first: nothing to do */
    bytering_bounds(cs->ring, &start, &end);
    /* The first client gets what nobody saw (as much as the ring kept); later ones join live. */
    pos = cs->nclients ? end : (cs->unseen_from > start ? cs->unseen_from : start);
    s = cs->nclients < CONSOLE_CLIENTS_MAX ? sink_new(fd, "client", pos) : NULL;
    if (!s) {
        if (write(fd, full, sizeof(full) - 1) < 0)
            log_debug("console: refused client: %s", strerror(errno));
        close(fd);
        return;
    }
    s->is_client = true;
    cs->clients[cs->nclients++] = s;
    atomic_store(&cs->attached, cs->nclients);
    log_info("console: a client attached (%u attached)", cs->nclients);
}

/* Offers a client's waiting input to the guest. */
static void client_feed(struct console_server *cs, struct con_sink *s)
{
    while (s->in_off < s->in_len) {
        size_t n = cs->input(cs->input_opaque, s->in + s->in_off, s->in_len - s->in_off);

        if (!n)
            return;
        s->in_off += n;
    }
    s->in_off = s->in_len = 0;
}

/* Reads a client's input. False: it hung up or failed and must be dropped. */
static bool client_read(struct console_server *cs, struct con_sink *s)
{
    ssize_t n;

    do
        n = read(s->fd, s->in, sizeof(s->in));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0)
        return false;
    s->in_off = 0;
    s->in_len = (size_t)n;
    client_feed(cs, s);
    return true;
}

/* Everything a sink writes, pumped once: stdout when poll() found it writable, the log, every
 * client. */
static void sinks_pump(struct console_server *cs, bool out_ready)
{
    if (cs->out && out_ready)
        sink_pump(cs, cs->out, true);
    if (cs->log)
        sink_pump(cs, cs->log, false);
    for (unsigned i = 0; i < cs->nclients; i++)
        sink_pump(cs, cs->clients[i], false);
}

/* The last output, for up to CONSOLE_FLUSH_MS: a reader that stalled at the end does not hold
 * the VMM's exit for longer. */
static void sinks_flush(struct console_server *cs)
{
    uint64_t deadline = time_now_ns() + (uint64_t)CONSOLE_FLUSH_MS * 1000000u;

    if (cs->log)
        sink_pump(cs, cs->log, false);
    for (;;) {
        struct pollfd pfd[1 + CONSOLE_CLIENTS_MAX];
        struct con_sink *who[1 + CONSOLE_CLIENTS_MAX];
        uint64_t now = time_now_ns();
        unsigned n = 0;

        if (cs->out && sink_pending(cs, cs->out)) {
            who[n] = cs->out;
            pfd[n++] = (struct pollfd){cs->out->fd, POLLOUT, 0};
        }
        for (unsigned i = 0; i < cs->nclients; i++) {
            if (sink_pending(cs, cs->clients[i])) {
                who[n] = cs->clients[i];
                pfd[n++] = (struct pollfd){cs->clients[i]->fd, POLLOUT, 0};
            }
        }
        if (!n || now >= deadline)
            return;
        if (poll(pfd, n, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR)
            return;
        for (unsigned i = 0; i < n; i++) {
            if (pfd[i].revents & (POLLERR | POLLNVAL))
                who[i]->dead = true;
            else if (pfd[i].revents)
                sink_pump(cs, who[i], who[i] == cs->out);
        }
    }
}

enum { PFD_STOP, PFD_RING, PFD_LISTEN, PFD_OUT, PFD_CLIENTS };

static void *console_drain_thread(void *opaque)
{
    struct console_server *cs = opaque;

    for (;;) {
        struct pollfd pfd[PFD_CLIENTS + CONSOLE_CLIENTS_MAX];
        unsigned nc = cs->nclients;
        bool waiting_input = false;
        /* New output matters only to a sink that is not already waiting to be writable: with
         * none (stdout stalled, no client, no log) the ring is not watched, its wake-up stays
         * pending, and a guest printing on costs this thread nothing. */
        bool want_ring = cs->log && !cs->log->dead;

        pfd[PFD_STOP] = (struct pollfd){cs->stop_fd, POLLIN, 0};
        pfd[PFD_LISTEN] = (struct pollfd){cs->listen_fd, POLLIN, 0}; /* -1: ignored */
        pfd[PFD_OUT] = (struct pollfd){-1, POLLOUT, 0};
        if (cs->out && sink_pending(cs, cs->out))
            pfd[PFD_OUT].fd = cs->out->fd;
        else if (cs->out && !cs->out->dead)
            want_ring = true;
        for (unsigned i = 0; i < nc; i++) {
            struct con_sink *s = cs->clients[i];
            short ev = POLLOUT;

            if (!sink_pending(cs, s)) {
                ev = 0;
                want_ring = true;
            }
            if (s->in_len)
                waiting_input = true;
            else
                ev |= POLLIN;
            pfd[PFD_CLIENTS + i] = (struct pollfd){s->fd, ev, 0};
        }
        pfd[PFD_RING] = (struct pollfd){want_ring ? bytering_wake_fd(cs->ring) : -1, POLLIN, 0};
        if (poll(pfd, PFD_CLIENTS + nc, waiting_input ? CON_RETRY_MS : -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("console: poll: %s", strerror(errno));
            break;
        }
        if (pfd[PFD_STOP].revents)
            break;
        if (pfd[PFD_RING].revents)
            bytering_ack_wake(cs->ring);
        /* Clients from the last index down, so that dropping one (the last moves into its
         * slot) never skips another. */
        for (unsigned i = nc; i-- > 0;) {
            struct con_sink *s = cs->clients[i];
            short rev = pfd[PFD_CLIENTS + i].revents;

            if (s->in_len)
                client_feed(cs, s);
            if ((rev & POLLIN) && !client_read(cs, s))
                s->dead = true;
            if (rev & (POLLERR | POLLNVAL) || ((rev & POLLHUP) && !(rev & POLLIN)))
                s->dead = true;
            if (s->dead)
                client_drop(cs, i);
        }
        if (pfd[PFD_LISTEN].revents & POLLIN)
            client_accept(cs);
        sinks_pump(cs, pfd[PFD_OUT].revents != 0);
    }
    bytering_ack_wake(cs->ring);
    sinks_flush(cs);
    while (cs->nclients)
        client_drop(cs, cs->nclients - 1);
    return NULL;
}

/* ---- Life cycle (main thread) ---- */

int console_server_create(const struct console_server_opts *o, struct console_server **out,
                          char *err, size_t errlen)
{
    struct console_server *cs = calloc(1, sizeof(*cs));
    int ret, fd;

    if (!cs) {
        set_err(err, errlen, "--console: out of memory");
        return -ENOMEM;
    }
    cs->listen_fd = -1;
    cs->stop_fd = eventfd(0, EFD_CLOEXEC);
    ret = cs->stop_fd < 0 ? -errno : bytering_create(CONSOLE_RING_SIZE, &cs->ring);
    if (ret) {
        set_err(err, errlen, "--console: %s", strerror(-ret));
        goto fail;
    }
    if (o->out_fd >= 0) {
        cs->out = sink_new(o->out_fd, "stdout", 0);
        if (!cs->out) {
            ret = -ENOMEM;
            set_err(err, errlen, "--console: out of memory");
            goto fail;
        }
    }
    if (o->log_path) {
        struct stat st;

        /* O_NONBLOCK only so that a FIFO without a reader fails here instead of hanging;
         * a regular file ignores it. */
        fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                  0600);
        if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
            ret = fd < 0 ? -errno : -EINVAL;
            set_err(err, errlen, "--console log=%s: %s", o->log_path,
                    fd < 0 ? strerror(errno) : "not a regular file");
            if (fd >= 0)
                close(fd);
            goto fail;
        }
        cs->log_path = strdup(o->log_path);
        cs->log = cs->log_path ? sink_new(fd, cs->log_path, 0) : NULL;
        if (!cs->log) {
            close(fd);
            ret = -ENOMEM;
            set_err(err, errlen, "--console: out of memory");
            goto fail;
        }
    }
    if (o->sock_path) {
        if (strlen(o->sock_path) >= sizeof(cs->sock_path) || !*o->sock_path) {
            ret = -EINVAL;
            set_err(err, errlen, "--console sock=%s: expected a path of 1 to %zu bytes",
                    o->sock_path, sizeof(cs->sock_path) - 1);
            goto fail;
        }
        memcpy(cs->sock_path, o->sock_path, strlen(o->sock_path) + 1);
        ret = sock_listen(cs, err, errlen);
        if (ret) {
            cs->sock_path[0] = 0;
            goto fail;
        }
    }
    *out = cs;
    return 0;

fail:
    console_server_destroy(cs);
    return ret;
}

struct bytering *console_server_ring(struct console_server *cs)
{
    return cs->ring;
}

int console_server_start(struct console_server *cs, console_input_fn input, void *opaque)
{
    int ret;

    if (cs->running)
        return -EALREADY;
    cs->input = input;
    cs->input_opaque = opaque;
    ret = -pthread_create(&cs->thread, NULL, console_drain_thread, cs);
    if (ret)
        return ret;
    cs->running = true;
    return 0;
}

unsigned console_server_clients(struct console_server *cs)
{
    return atomic_load(&cs->attached);
}

void console_server_stop(struct console_server *cs)
{
    uint64_t one = 1;

    if (!cs->running)
        return;
    while (write(cs->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(cs->thread, NULL);
    cs->running = false;
}

void console_server_destroy(struct console_server *cs)
{
    struct stat st;

    if (!cs)
        return;
    console_server_stop(cs);
    if (cs->listen_fd >= 0) {
        /* Only our own socket: another VMM may have replaced a path we no longer serve. */
        if (!hostfs_lstat(cs->sock_path, &st) && st.st_dev == cs->sock_dev &&
            st.st_ino == cs->sock_ino)
            hostfs_unlink(cs->sock_path);
        close(cs->listen_fd);
    }
    if (cs->log) {
        close(cs->log->fd);
        free(cs->log);
    }
    free(cs->log_path);
    free(cs->out);
    bytering_destroy(cs->ring);
    if (cs->stop_fd >= 0)
        close(cs->stop_fd);
    free(cs);
}
