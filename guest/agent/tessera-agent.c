/*
 * tessera-agent: the Tessera guest agent.
 *
 * Serves JSON-lines requests from the host on the virtio-console port named
 * "org.tessera.agent.0" (virtio 1.2 §5.3.6.2: the host names multiport ports
 * with VIRTIO_CONSOLE_PORT_NAME; Linux shows the name in
 * /sys/class/virtio-ports/vportNpM/name). The protocol is in
 * guest/agent/README.md. Started by init (`::respawn:` in /etc/inittab), so a
 * crash costs one request, not the agent.
 *
 * One thread, one request at a time: a request runs to completion (an exec
 * until its command exits or times out) and its reply is written before the
 * next line is read.
 *
 * Linux's port semantics shape the main loop (drivers/char/virtio_console.c):
 * while no host program is connected (the device sent PORT_OPEN 0) read()
 * returns 0, poll() reports POLLHUP and write() would block, so the agent
 * treats a 0 read as "host gone", drops any half-read line and waits for the
 * SIGIO the driver sends when the host connects (with a timeout, in case that
 * signal never comes). Only one process may hold a port open (EBUSY).
 */
#define _GNU_SOURCE
#include "json.h"
#include "seed.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION   "1"
#define AGENT_PORT_NAME "org.tessera.agent.0"
#define PORTS_DIR       "/sys/class/virtio-ports"

/* Limits from the protocol (README.md). */
#define MAX_LINE             (8u << 20) /* a request line, without its newline */
#define MAX_EXEC_OUTPUT      (1u << 20) /* captured stdout, and stderr, each */
#define MAX_FILE_READ        (4u << 20) /* one file-read reply's data */
#define DEFAULT_EXEC_TIMEOUT 60.0       /* seconds, when a request names none */
#define MAX_EXEC_TIMEOUT     86400.0    /* seconds */
#define MAX_ARGV             4096

/* How long to wait between looks for the port, and for a host to connect. */
#define PORT_RETRY_MS 2000
#define HOST_WAIT_MS  2000
/* How long a reply waits for a port that looks closed to open (port_write_all). */
#define HOST_SETTLE_MS 2000
/* After SIGKILL on timeout, how long to wait for the command to die. */
#define KILL_WAIT_MS 5000

/* ---- logging ----------------------------------------------------------- */

static int kmsg_fd = -1;

/*
 * Logs one line to the kernel log at debug level (<7>), so it shows in
 * `dmesg` but not on the console, which tests read. The agent's own stdout
 * and stderr are /dev/null.
 */
static void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void agent_log(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "<7>tessera-agent: ");
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
    va_end(ap);
    /* Without the newline the kernel keeps the record open for a
     * continuation, and dmesg does not show it until the next message. */
    strcat(line, "\n");
    if (kmsg_fd >= 0) {
        ssize_t rc = write(kmsg_fd, line, strlen(line));
        (void)rc; /* nowhere left to report a failure */
    }
}

/* ---- time -------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds from now until `deadline` (now_seconds() time), at least 0, rounded up. */
static int ms_until(double deadline)
{
    double ms = (deadline - now_seconds()) * 1000.0;
    if (ms <= 0)
        return 0;
    if (ms > 1e9)
        return 1000000000;
    int whole = (int)ms;
    return whole < ms ? whole + 1 : whole;
}

/* ---- requests ---------------------------------------------------------- */

/* What to do once a reply has been written. */
enum after_reply {
    AFTER_NOTHING,
    AFTER_SIGNAL_INIT, /* kill(1, request.init_signal) */
};

/*
 * One request being served. A command handler reads `args`, appends its
 * result members to `reply` (which already holds `{"id":...,"ok":true`), and
 * returns 0; or calls req_fail and returns its -1, and the reply becomes an
 * error reply.
 */
struct request {
    const struct json_value *args;
    struct json_buf reply;
    char error[512];
    enum after_reply after;
    int init_signal;
};

static int req_fail(struct request *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int req_fail(struct request *rq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->error, sizeof(rq->error), fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Reads the optional number member `key` into *out: absent or null leaves
 * *out alone; otherwise it must be a number in [min, max] and, if `integral`,
 * a whole number.
 */
static int arg_number(struct request *rq, const char *key, double min, double max, bool integral,
                      double *out)
{
    const struct json_value *v = json_object_get(rq->args, key);
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_NUMBER)
        return req_fail(rq, "\"%s\" must be a number", key);
    double d = v->u.number;
    if (!(d >= min && d <= max))
        return req_fail(rq, "\"%s\" must be between %g and %g", key, min, max);
    /* The casts are exact: every caller's range lies within +-2^53. */
    if (integral && d != (double)(long long)d)
        return req_fail(rq, "\"%s\" must be a whole number", key);
    *out = d;
    return 0;
}

/* Reads the optional boolean member `key` into *out (absent or null: unchanged). */
static int arg_bool(struct request *rq, const char *key, bool *out)
{
    const struct json_value *v = json_object_get(rq->args, key);
    if (!v || v->type == JSON_NULL)
        return 0;
    if (v->type != JSON_BOOL)
        return req_fail(rq, "\"%s\" must be true or false", key);
    *out = v->u.boolean;
    return 0;
}

/*
 * Reads the string member `key` into *out (pointing into the request, NUL
 * terminated). Absent or null: *out = NULL, an error if `required`. With
 * `no_nul`, a string holding a NUL byte is refused (a path, an argv word).
 */
static int arg_string(struct request *rq, const char *key, bool required, bool no_nul,
                      const char **out, size_t *len)
{
    const struct json_value *v = json_object_get(rq->args, key);
    *out = NULL;
    if (len)
        *len = 0;
    if (!v || v->type == JSON_NULL) {
        if (required)
            return req_fail(rq, "\"%s\" is missing", key);
        return 0;
    }
    if (v->type != JSON_STRING)
        return req_fail(rq, "\"%s\" must be a string", key);
    if (no_nul && memchr(v->u.string.bytes, '\0', v->u.string.len))
        return req_fail(rq, "\"%s\" must not contain a NUL byte", key);
    *out = v->u.string.bytes;
    if (len)
        *len = v->u.string.len;
    return 0;
}

/* Reads a path member: required, non-empty, no NUL. */
static int arg_path(struct request *rq, const char *key, const char **out)
{
    if (arg_string(rq, key, true, true, out, NULL) < 0)
        return -1;
    if (!**out)
        return req_fail(rq, "\"%s\" must not be empty", key);
    return 0;
}

/* ---- ping, sync -------------------------------------------------------- */

static int cmd_ping(struct request *rq)
{
    json_buf_key(&rq->reply, "version");
    json_buf_cstring(&rq->reply, AGENT_VERSION);
    return 0;
}

static int cmd_sync(struct request *rq)
{
    (void)rq;
    sync();
    return 0;
}

/* ---- exec -------------------------------------------------------------- */

/* One captured output stream of a command. */
struct capture {
    int fd; /* read end, -1 once at EOF */
    char *data;
    size_t len;
    bool truncated; /* bytes past MAX_EXEC_OUTPUT were read and dropped */
};

/*
 * Reads what is available from c->fd (non-blocking), but at most 16 chunks,
 * so that a command that writes without pause cannot keep the caller from
 * its timeout check. Closes the fd at EOF.
 */
static void capture_read(struct capture *c)
{
    char chunk[65536];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(c->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        size_t keep = (size_t)n;
        if (keep > MAX_EXEC_OUTPUT - c->len) {
            keep = MAX_EXEC_OUTPUT - c->len;
            c->truncated = true;
        }
        memcpy(c->data + c->len, chunk, keep);
        c->len += keep;
    }
}

static int pidfd_open_compat(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* In the child: wire up fds 0-2, restore what exec must not inherit, run argv. */
static void exec_child(char **argv, int in_fd, int out_fd, int err_fd, int status_fd)
{
    sigset_t none;
    int err;

    /* Own session and process group, so a timeout can kill the whole tree. */
    setsid();
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        goto fail;
    /* The agent blocks SIGIO and ignores SIGPIPE; a command gets the defaults. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
fail:
    err = errno;
    /* status_fd is close-on-exec: the parent reads EOF if exec worked, errno if not. */
    ssize_t n = write(status_fd, &err, sizeof(err));
    (void)n; /* if even this fails, the parent sees exit status 127 */
    _exit(127);
}

/*
 * {"cmd":"exec","argv":[...],"stdin":"...","timeout":s} runs argv (PATH
 * search) with stdin from the string (or /dev/null) and stdout and stderr
 * captured, in a new session. Waits for the command to exit, then takes what
 * is left in the pipes (a background process that keeps them open is not
 * waited for). On timeout kills the process group with SIGKILL and says
 * "timed_out":true.
 */
static int cmd_exec(struct request *rq)
{
    const struct json_value *argv_v = json_object_get(rq->args, "argv");
    const char *stdin_data = NULL;
    size_t stdin_len = 0, stdin_off = 0;
    double timeout = DEFAULT_EXEC_TIMEOUT;
    char **argv = NULL;
    size_t argc = 0;
    struct capture out = {.fd = -1}, err = {.fd = -1};
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    int status_pipe[2] = {-1, -1};
    int in_fd = -1; /* the agent's end of the command's stdin */
    int pidfd = -1;
    pid_t pid = -1;
    int status = 0, rc = -1;
    bool exited = false, timed_out = false;

    if (!argv_v || argv_v->type != JSON_ARRAY || !argv_v->u.first)
        return req_fail(rq, "\"argv\" must be a non-empty array of strings");
    for (const struct json_value *a = argv_v->u.first; a; a = a->next) {
        if (a->type != JSON_STRING || memchr(a->u.string.bytes, '\0', a->u.string.len))
            return req_fail(rq, "\"argv\" must hold strings without NUL bytes");
        if (++argc > MAX_ARGV)
            return req_fail(rq, "\"argv\" has more than %d words", MAX_ARGV);
    }
    if (!argv_v->u.first->u.string.len)
        return req_fail(rq, "argv[0] is empty");
    if (arg_string(rq, "stdin", false, false, &stdin_data, &stdin_len) < 0 ||
        arg_number(rq, "timeout", 0.001, MAX_EXEC_TIMEOUT, false, &timeout) < 0)
        return -1;

    argv = calloc(argc + 1, sizeof(*argv));
    out.data = malloc(MAX_EXEC_OUTPUT);
    err.data = malloc(MAX_EXEC_OUTPUT);
    if (!argv || !out.data || !err.data) {
        req_fail(rq, "out of memory");
        goto free_buffers;
    }
    argc = 0;
    for (const struct json_value *a = argv_v->u.first; a; a = a->next)
        argv[argc++] = a->u.string.bytes;

    if (stdin_data) {
        if (pipe2(in_pipe, O_CLOEXEC) < 0) {
            req_fail(rq, "pipe: %s", strerror(errno));
            goto close_pipes;
        }
    } else {
        in_pipe[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_pipe[0] < 0) {
            req_fail(rq, "/dev/null: %s", strerror(errno));
            goto close_pipes;
        }
    }
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
        pipe2(status_pipe, O_CLOEXEC) < 0) {
        req_fail(rq, "pipe: %s", strerror(errno));
        goto close_pipes;
    }

    pid = fork();
    if (pid < 0) {
        req_fail(rq, "fork: %s", strerror(errno));
        goto close_pipes;
    }
    if (pid == 0)
        exec_child(argv, in_pipe[0], out_pipe[1], err_pipe[1], status_pipe[1]);

    /* Parent: keep only our ends. */
    close(in_pipe[0]);
    in_pipe[0] = -1;
    close(out_pipe[1]);
    out_pipe[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;
    close(status_pipe[1]);
    status_pipe[1] = -1;
    in_fd = in_pipe[1];
    in_pipe[1] = -1;
    out.fd = out_pipe[0];
    out_pipe[0] = -1;
    err.fd = err_pipe[0];
    err_pipe[0] = -1;

    /* EOF: exec succeeded (close-on-exec closed the child's end). An int: errno of exec. */
    {
        int child_errno;
        ssize_t n;
        do
            n = read(status_pipe[0], &child_errno, sizeof(child_errno));
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof(child_errno)) {
            waitpid(pid, NULL, 0);
            pid = -1;
            req_fail(rq, "cannot run %s: %s", argv[0], strerror(child_errno));
            goto close_pipes;
        }
    }

    fcntl(out.fd, F_SETFL, O_NONBLOCK);
    fcntl(err.fd, F_SETFL, O_NONBLOCK);
    if (in_fd >= 0) {
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
        if (stdin_len == 0) {
            close(in_fd);
            in_fd = -1;
        }
    }
    /* Without pidfd (Linux < 5.3) the loop polls waitpid every 50 ms instead. */
    pidfd = pidfd_open_compat(pid);

    double deadline = now_seconds() + timeout;
    while (!exited) {
        struct pollfd p[4];
        int np = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
        if (in_fd >= 0) {
            i_in = np;
            p[np++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
        }
        if (out.fd >= 0) {
            i_out = np;
            p[np++] = (struct pollfd){.fd = out.fd, .events = POLLIN};
        }
        if (err.fd >= 0) {
            i_err = np;
            p[np++] = (struct pollfd){.fd = err.fd, .events = POLLIN};
        }
        if (pidfd >= 0) {
            i_pid = np;
            p[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        }
        int wait_ms = ms_until(deadline);
        if (pidfd < 0 && wait_ms > 50)
            wait_ms = 50;
        int n = poll(p, (nfds_t)np, wait_ms);
        if (n < 0 && errno != EINTR) {
            req_fail(rq, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && i_in >= 0 && p[i_in].revents) {
            ssize_t w = write(in_fd, stdin_data + stdin_off, stdin_len - stdin_off);
            if (w > 0)
                stdin_off += (size_t)w;
            /* EPIPE: the command stopped reading; the rest is dropped. */
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == stdin_len) {
                close(in_fd);
                in_fd = -1;
            }
        }
        if (n > 0 && i_out >= 0 && p[i_out].revents)
            capture_read(&out);
        if (n > 0 && i_err >= 0 && p[i_err].revents)
            capture_read(&err);
        if (pidfd < 0 || (n > 0 && p[i_pid].revents)) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                exited = true;
        }
        if (!exited && now_seconds() >= deadline) {
            timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            /* A process in uninterruptible sleep (say, writing to a frozen
             * file system) survives SIGKILL until it wakes: do not hang. */
            double kill_deadline = now_seconds() + KILL_WAIT_MS / 1000.0;
            while (!exited && now_seconds() < kill_deadline) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                    exited = true;
                else
                    usleep(10000);
            }
            break;
        }
    }
    if (exited) {
        /* What the command wrote before it exited is in the pipes (at most a
         * pipe's capacity, 64 KiB, so one bounded read takes it). */
        if (out.fd >= 0)
            capture_read(&out);
        if (err.fd >= 0)
            capture_read(&err);
        pid = -1;
    }
    if (rq->error[0])
        goto close_pipes;
    if (!exited) {
        /* reap_children() collects it later. */
        req_fail(rq,
                 "timed out after %g s; sent SIGKILL, but pid %d has not exited after %d s "
                 "(uninterruptible sleep, a frozen file system?)",
                 timeout, (int)pid, KILL_WAIT_MS / 1000);
        pid = -1;
        goto close_pipes;
    }

    if (WIFEXITED(status)) {
        json_buf_key(&rq->reply, "exit");
        json_buf_int(&rq->reply, WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        /* As a shell reports it, plus the signal itself. */
        json_buf_key(&rq->reply, "exit");
        json_buf_int(&rq->reply, 128 + WTERMSIG(status));
        json_buf_key(&rq->reply, "signal");
        json_buf_int(&rq->reply, WTERMSIG(status));
    }
    if (timed_out) {
        json_buf_key(&rq->reply, "timed_out");
        json_buf_bool(&rq->reply, true);
    }
    json_buf_key(&rq->reply, "stdout");
    json_buf_string(&rq->reply, out.data, out.len);
    json_buf_key(&rq->reply, "stderr");
    json_buf_string(&rq->reply, err.data, err.len);
    if (out.truncated) {
        json_buf_key(&rq->reply, "stdout_truncated");
        json_buf_bool(&rq->reply, true);
    }
    if (err.truncated) {
        json_buf_key(&rq->reply, "stderr_truncated");
        json_buf_bool(&rq->reply, true);
    }
    rc = 0;

close_pipes:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0)
            close(in_pipe[i]);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
        if (status_pipe[i] >= 0)
            close(status_pipe[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out.fd >= 0)
        close(out.fd);
    if (err.fd >= 0)
        close(err.fd);
    if (pidfd >= 0)
        close(pidfd);
free_buffers:
    free(out.data);
    free(err.data);
    free(argv);
    return rc;
}

/* Collects commands that outlived their exec request (see cmd_exec). */
static void reap_children(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* ---- files ------------------------------------------------------------- */

/*
 * {"cmd":"file-read","path":p,"offset":o,"length":n} returns up to n bytes
 * (default and cap MAX_FILE_READ) from offset o as "data_b64", with
 * "eof":true if the file ended before n bytes.
 */
static int cmd_file_read(struct request *rq)
{
    const char *path;
    double offset = 0, length = MAX_FILE_READ;
    size_t got = 0;
    bool eof = false;
    char *data = NULL;
    int fd, rc = -1;

    if (arg_path(rq, "path", &path) < 0 ||
        arg_number(rq, "offset", 0, 9007199254740992.0, true, &offset) < 0 ||
        arg_number(rq, "length", 0, 9007199254740992.0, true, &length) < 0)
        return -1;
    if (length > MAX_FILE_READ)
        length = MAX_FILE_READ;

    /* O_NONBLOCK: a FIFO or a device must not hang the agent. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return req_fail(rq, "%s: %s", path, strerror(errno));
    data = malloc((size_t)length ? (size_t)length : 1);
    if (!data) {
        req_fail(rq, "out of memory");
        goto close_fd;
    }
    while (got < (size_t)length) {
        ssize_t n = pread(fd, data + got, (size_t)length - got, (off_t)offset + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ESPIPE) {
            req_fail(rq, "%s: not seekable (a pipe or socket?)", path);
            goto free_data;
        }
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            req_fail(rq, "%s: read: %s", path, strerror(errno));
            goto free_data;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        got += (size_t)n;
    }
    json_buf_key(&rq->reply, "data_b64");
    json_buf_base64(&rq->reply, data, got);
    json_buf_key(&rq->reply, "length");
    json_buf_int(&rq->reply, (long long)got);
    json_buf_key(&rq->reply, "eof");
    json_buf_bool(&rq->reply, eof);
    rc = 0;
free_data:
    free(data);
close_fd:
    close(fd);
    return rc;
}

/*
 * {"cmd":"file-write","path":p,"data_b64":d,"append":false,"mode":420}
 * creates or truncates p (or appends) and writes the data. When "mode" is
 * given the file gets exactly that mode (no umask), new or not.
 */
static int cmd_file_write(struct request *rq)
{
    const char *path, *b64;
    size_t b64_len, len = 0, done = 0;
    bool append = false;
    double mode = -1;
    unsigned char *data;
    int fd, flags, rc = -1;

    if (arg_path(rq, "path", &path) < 0 ||
        arg_string(rq, "data_b64", true, false, &b64, &b64_len) < 0 ||
        arg_bool(rq, "append", &append) < 0 || arg_number(rq, "mode", 0, 07777, true, &mode) < 0)
        return -1;
    data = malloc(json_base64_max_decoded(b64_len));
    if (!data)
        return req_fail(rq, "out of memory");
    if (json_base64_decode(b64, b64_len, data, &len) < 0) {
        req_fail(rq, "\"data_b64\" is not valid base64");
        goto free_data;
    }
    flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | (append ? O_APPEND : O_TRUNC);
    fd = open(path, flags, mode >= 0 ? (mode_t)mode : 0644);
    if (fd < 0) {
        req_fail(rq, "%s: %s", path, strerror(errno));
        goto free_data;
    }
    if (mode >= 0 && fchmod(fd, (mode_t)mode) < 0) {
        req_fail(rq, "%s: chmod: %s", path, strerror(errno));
        goto close_fd;
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            req_fail(rq, "%s: write: %s (after %zu bytes)", path, strerror(errno), done);
            goto close_fd;
        }
        done += (size_t)n;
    }
    json_buf_key(&rq->reply, "written");
    json_buf_int(&rq->reply, (long long)done);
    rc = 0;
close_fd:
    if (close(fd) < 0 && rc == 0) {
        rc = req_fail(rq, "%s: close: %s", path, strerror(errno));
    }
free_data:
    free(data);
    return rc;
}

/* ---- mem-stats --------------------------------------------------------- */

/* A "Key: value" file's field and the reply member it becomes. */
struct stat_field {
    const char *name;   /* as in the file */
    const char *member; /* in the reply */
    long long scale;    /* value * scale = bytes (0: page size) */
};

/* /proc/meminfo: values in kB (KiB). */
static const struct stat_field meminfo_fields[] = {
    {"MemTotal", "total", 1024},         {"MemFree", "free", 1024},
    {"MemAvailable", "available", 1024}, {"Buffers", "buffers", 1024},
    {"Cached", "cached", 1024},          {"SwapTotal", "swap_total", 1024},
    {"SwapFree", "swap_free", 1024},
};

/* /proc/vmstat: event counters, present only with CONFIG_VM_EVENT_COUNTERS. */
static const struct stat_field vmstat_fields[] = {
    {"pswpin", "swap_in", 0},   /* pages, reported in bytes */
    {"pswpout", "swap_out", 0}, /* pages, reported in bytes */
    {"pgmajfault", "major_faults", 1},
    {"pgfault", "minor_faults", 1}, /* as virtio-balloon's VIRTIO_BALLOON_S_MINFLT */
};

/* Appends a member for each field of `fields` found in the file at `path`. */
static void append_stat_fields(struct request *rq, const char *path,
                               const struct stat_field *fields, size_t nfields)
{
    FILE *f = fopen(path, "re");
    char line[256];
    long long page = sysconf(_SC_PAGESIZE);

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char name[64];
        long long value;
        /* meminfo: "MemTotal:   123 kB"; vmstat: "pswpin 0" */
        if (sscanf(line, "%63[^: ]%*[: ]%lld", name, &value) != 2)
            continue;
        for (size_t i = 0; i < nfields; i++) {
            if (strcmp(name, fields[i].name) != 0)
                continue;
            json_buf_key(&rq->reply, fields[i].member);
            json_buf_int(&rq->reply, value * (fields[i].scale ? fields[i].scale : page));
        }
    }
    fclose(f);
}

/*
 * {"cmd":"mem-stats"}: /proc/meminfo's MemTotal, MemFree, MemAvailable,
 * Buffers, Cached, SwapTotal, SwapFree in bytes, and /proc/vmstat's swap and
 * fault counters when the kernel has them.
 */
static int cmd_mem_stats(struct request *rq)
{
    if (access("/proc/meminfo", R_OK) < 0)
        return req_fail(rq, "/proc/meminfo: %s (is /proc mounted?)", strerror(errno));
    append_stat_fields(rq, "/proc/meminfo", meminfo_fields,
                       sizeof(meminfo_fields) / sizeof(meminfo_fields[0]));
    append_stat_fields(rq, "/proc/vmstat", vmstat_fields,
                       sizeof(vmstat_fields) / sizeof(vmstat_fields[0]));
    json_buf_key(&rq->reply, "page_size");
    json_buf_int(&rq->reply, sysconf(_SC_PAGESIZE));
    return 0;
}

/* ---- fs-freeze, fs-thaw ------------------------------------------------ */

/* File systems never frozen: the root, pseudo and memory file systems. */
static bool freeze_skips(const char *dir, const char *type)
{
    static const char *const types[] = {
        "rootfs", "proc",      "sysfs",    "devtmpfs", "tmpfs",      "ramfs",       "devpts",
        "cgroup", "cgroup2",   "debugfs",  "tracefs",  "securityfs", "pstore",      "bpf",
        "mqueue", "hugetlbfs", "configfs", "fusectl",  "autofs",     "binfmt_misc", "efivarfs",
    };
    if (strcmp(dir, "/") == 0)
        return true;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

/* Undoes /proc/mounts' octal escapes (\040 for a space, ...) in place. */
static void unescape_mount_path(char *s)
{
    char *d = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 4;
        } else {
            *d++ = *s++;
        }
    }
    *d = '\0';
}

/* The mount points from /proc/mounts that freeze_skips does not skip, in mount order. */
struct mount_list {
    char **dirs;
    size_t count;
};

static void mount_list_free(struct mount_list *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->dirs[i]);
    free(m->dirs);
    *m = (struct mount_list){0};
}

static int mount_list_read(struct request *rq, struct mount_list *m)
{
    FILE *f = fopen("/proc/mounts", "re");
    char line[4096];

    if (!f)
        return req_fail(rq, "/proc/mounts: %s", strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL;
        strtok_r(line, " ", &save); /* device */
        char *dir = strtok_r(NULL, " ", &save);
        char *type = strtok_r(NULL, " ", &save);
        if (!dir || !type)
            continue;
        unescape_mount_path(dir);
        if (freeze_skips(dir, type))
            continue;
        char **dirs = realloc(m->dirs, (m->count + 1) * sizeof(*dirs));
        char *copy = strdup(dir);
        if (dirs)
            m->dirs = dirs;
        if (!dirs || !copy) {
            free(copy);
            fclose(f);
            mount_list_free(m);
            return req_fail(rq, "out of memory");
        }
        m->dirs[m->count++] = copy;
    }
    fclose(f);
    return 0;
}

/* FIFREEZE or FITHAW on the file system mounted at dir; returns 0 or -errno. */
static int freeze_ioctl(const char *dir, unsigned long req)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ioctl(fd, req, 0) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Appends "key":[the dirs of m marked in `listed`], in mount order or its reverse. */
static void append_mount_array(struct request *rq, const char *key, const struct mount_list *m,
                               const bool *listed, bool reverse)
{
    json_buf_key(&rq->reply, key);
    json_buf_raw(&rq->reply, "[", 1);
    for (size_t k = 0; k < m->count; k++) {
        size_t i = reverse ? m->count - 1 - k : k;
        if (!listed[i])
            continue;
        json_buf_sep(&rq->reply);
        json_buf_cstring(&rq->reply, m->dirs[i]);
    }
    json_buf_raw(&rq->reply, "]", 1);
}

/*
 * {"cmd":"fs-freeze"} freezes (FIFREEZE) every mounted file system but the
 * root and the pseudo and memory ones, innermost mount first; ones that
 * cannot be frozen (EOPNOTSUPP) are left out, ones already frozen (EBUSY)
 * count as frozen. On any other error it thaws what this request froze and
 * fails. Replies "frozen":[mount points]. Nothing thaws them automatically,
 * not even the host disconnecting: the host must send fs-thaw.
 */
static int cmd_fs_freeze(struct request *rq)
{
    struct mount_list m = {0};
    bool *listed, *froze_now;
    int rc = -1;

    if (mount_list_read(rq, &m) < 0)
        return -1;
    listed = calloc(m.count + 1, sizeof(*listed));
    froze_now = calloc(m.count + 1, sizeof(*froze_now));
    if (!listed || !froze_now) {
        req_fail(rq, "out of memory");
        goto out;
    }
    for (size_t i = m.count; i-- > 0;) {
        int e = freeze_ioctl(m.dirs[i], FIFREEZE);
        if (e == 0 || e == -EBUSY) {
            listed[i] = true;
            froze_now[i] = e == 0;
        } else if (e != -EOPNOTSUPP && e != -ENOTTY) {
            req_fail(rq, "freezing %s: %s", m.dirs[i], strerror(-e));
            for (size_t j = i + 1; j < m.count; j++)
                if (froze_now[j])
                    freeze_ioctl(m.dirs[j], FITHAW);
            goto out;
        }
    }
    append_mount_array(rq, "frozen", &m, listed, true);
    rc = 0;
out:
    free(froze_now);
    free(listed);
    mount_list_free(&m);
    return rc;
}

/*
 * {"cmd":"fs-thaw"} thaws (FITHAW) the same set of file systems, outermost
 * first, skipping ones that are not frozen (EINVAL). Tries every one even
 * after an error, then fails naming the first. Replies "thawed":[...].
 */
static int cmd_fs_thaw(struct request *rq)
{
    struct mount_list m = {0};
    bool *listed;
    int rc = -1;

    if (mount_list_read(rq, &m) < 0)
        return -1;
    listed = calloc(m.count + 1, sizeof(*listed));
    if (!listed) {
        mount_list_free(&m);
        return req_fail(rq, "out of memory");
    }
    for (size_t i = 0; i < m.count; i++) {
        int e = freeze_ioctl(m.dirs[i], FITHAW);
        if (e == 0)
            listed[i] = true;
        else if (e != -EINVAL && e != -EOPNOTSUPP && e != -ENOTTY && !rq->error[0])
            req_fail(rq, "thawing %s: %s", m.dirs[i], strerror(-e));
    }
    if (!rq->error[0]) {
        append_mount_array(rq, "thawed", &m, listed, false);
        rc = 0;
    }
    free(listed);
    mount_list_free(&m);
    return rc;
}

/* ---- identity ---------------------------------------------------------- */

int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[4096];
    int fd, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-agent", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    /* A file planted at the temporary name (a symlink) is removed, never written through. */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        done += (size_t)n;
    }
    if (rc == 0 && fchmod(fd, mode) < 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0 && errno != EINVAL)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* RFC 1123 host name: labels of letters, digits and '-', not starting or ending with '-'. */
static bool hostname_valid(const char *s, size_t len)
{
    size_t label = 0;
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-') {
            if (c == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[len - 1] != '-';
}

/*
 * Sets eth0's hardware address to "xx:xx:xx:xx:xx:xx" (SIOCSIFHWADDR; virtio-net
 * allows it while the link is up). 0 or -errno; -EINVAL for a malformed address.
 */
static int set_eth0_mac(const char *mac, size_t len)
{
    struct ifreq ifr;
    unsigned b[6];
    int fd, ret = 0;

    if (len != 17 ||
        sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6 ||
        (b[0] & 1))
        return -EINVAL;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    for (int i = 0; i < 6; i++)
        ifr.ifr_hwaddr.sa_data[i] = (char)b[i];
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0)
        ret = -errno;
    close(fd);
    return ret;
}

/*
 * {"cmd":"regenerate-identity","hostname":"optional","mac":"optional"} gives a
 * cloned guest a new /etc/machine-id (32 lowercase hex digits from
 * getrandom(2), as machine-id(5) specifies), if asked a new host name
 * (sethostname(2) and /etc/hostname), and if given eth0's new MAC address
 * (the VMM gave the clone's NIC a new one). Replies with what it set.
 */
static int cmd_regenerate_identity(struct request *rq)
{
    static const char hex[] = "0123456789abcdef";
    const char *name, *mac;
    size_t name_len, mac_len;
    unsigned char rnd[16];
    char id[33 + 1];
    struct utsname un;
    int e;

    if (arg_string(rq, "hostname", false, true, &name, &name_len) < 0 ||
        arg_string(rq, "mac", false, true, &mac, &mac_len) < 0)
        return -1;
    if (mac && (e = set_eth0_mac(mac, mac_len)) < 0)
        return req_fail(rq, "\"mac\" '%s': %s", mac,
                        e == -EINVAL ? "expected a unicast xx:xx:xx:xx:xx:xx" : strerror(-e));
    if (name && !hostname_valid(name, name_len))
        return req_fail(rq,
                        "\"hostname\" '%s' is not a valid host name (RFC 1123, at most 64 "
                        "characters)",
                        name);
    for (size_t got = 0; got < sizeof(rnd);) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return req_fail(rq, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        id[2 * i] = hex[rnd[i] >> 4];
        id[2 * i + 1] = hex[rnd[i] & 15];
    }
    id[32] = '\n';
    id[33] = '\0';
    e = write_file_atomic("/etc/machine-id", id, 33, 0444);
    if (e < 0)
        return req_fail(rq, "/etc/machine-id: %s", strerror(-e));
    if (name) {
        char line[66];
        if (sethostname(name, name_len) < 0)
            return req_fail(rq, "sethostname: %s", strerror(errno));
        snprintf(line, sizeof(line), "%s\n", name);
        e = write_file_atomic("/etc/hostname", line, name_len + 1, 0644);
        if (e < 0)
            return req_fail(rq, "/etc/hostname: %s", strerror(-e));
    }
    if (mac) {
        json_buf_key(&rq->reply, "mac");
        json_buf_string(&rq->reply, mac, mac_len);
    }
    json_buf_key(&rq->reply, "machine_id");
    json_buf_string(&rq->reply, id, 32);
    if (uname(&un) == 0) {
        json_buf_key(&rq->reply, "hostname");
        json_buf_cstring(&rq->reply, un.nodename);
    }
    return 0;
}

/* ---- shutdown ---------------------------------------------------------- */

/*
 * {"cmd":"shutdown","mode":"poweroff"|"reboot"|"halt"} syncs, replies, and
 * then signals init as BusyBox init(8) expects: SIGUSR2 powers off, SIGTERM
 * reboots, SIGUSR1 halts. Init runs the inittab's shutdown actions and kills
 * every process, the agent included.
 */
static int cmd_shutdown(struct request *rq)
{
    static const struct {
        const char *mode;
        int signal;
    } modes[] = {{"poweroff", SIGUSR2}, {"reboot", SIGTERM}, {"halt", SIGUSR1}};
    const char *mode = "poweroff";

    if (arg_string(rq, "mode", false, true, &mode, NULL) < 0)
        return -1;
    if (!mode)
        mode = "poweroff";
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, modes[i].mode) == 0) {
            sync();
            rq->after = AFTER_SIGNAL_INIT;
            rq->init_signal = modes[i].signal;
            json_buf_key(&rq->reply, "mode");
            json_buf_cstring(&rq->reply, mode);
            return 0;
        }
    }
    return req_fail(rq, "\"mode\" must be \"poweroff\", \"reboot\" or \"halt\", not '%s'", mode);
}

/* ---- dispatch ---------------------------------------------------------- */

struct agent_command {
    const char *name;
    int (*run)(struct request *rq);
};

static const struct agent_command commands[] = {
    {.name = "ping", .run = cmd_ping},
    {.name = "exec", .run = cmd_exec},
    {.name = "file-read", .run = cmd_file_read},
    {.name = "file-write", .run = cmd_file_write},
    {.name = "mem-stats", .run = cmd_mem_stats},
    {.name = "sync", .run = cmd_sync},
    {.name = "fs-freeze", .run = cmd_fs_freeze},
    {.name = "fs-thaw", .run = cmd_fs_thaw},
    {.name = "regenerate-identity", .run = cmd_regenerate_identity},
    {.name = "shutdown", .run = cmd_shutdown},
};

/* ---- the port ---------------------------------------------------------- */

/* What the line reader is doing with the current line. */
enum line_state {
    LINE_OK,       /* collecting it */
    LINE_TOO_LONG, /* it passed MAX_LINE: dropping bytes up to its '\n' */
    LINE_NO_MEMORY /* could not grow the buffer: dropping bytes up to its '\n' */
};

struct agent {
    int fd;              /* the port, open O_RDWR | O_NONBLOCK */
    bool async;          /* the driver sends us SIGIO when the host connects */
    bool host_connected; /* data arrived since the last EOF */
    char *line;          /* the current request line, without '\n' */
    size_t len;
    size_t cap;
    enum line_state state;
};

/*
 * Looks for the port named AGENT_PORT_NAME and opens its /dev node. Returns
 * the fd, or -ENOENT if there is no such port, or -errno of open(2) (EBUSY:
 * another process holds it). `dev` receives the node's path.
 */
static int port_open(char *dev, size_t devlen)
{
    DIR *d = opendir(PORTS_DIR);
    struct dirent *e;
    int rc = -ENOENT;

    if (!d)
        return -ENOENT;
    while ((e = readdir(d))) {
        char path[512], name[128];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/name", PORTS_DIR, e->d_name);
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0)
            continue;
        ssize_t n = read(nfd, name, sizeof(name) - 1);
        close(nfd);
        if (n <= 0)
            continue;
        name[n] = '\0';
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, AGENT_PORT_NAME) != 0)
            continue;
        snprintf(dev, devlen, "/dev/%s", e->d_name);
        rc = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (rc < 0)
            rc = -errno;
        break;
    }
    closedir(d);
    return rc;
}

/*
 * Writes all `n` bytes to the port, waiting for room. Returns 0; -EPIPE if
 * the host disconnected (the rest is dropped: a new host must not get an old
 * reply's tail); or another -errno.
 *
 * A host that has just connected and sent a request can look disconnected
 * for a moment: the driver hands data over at once but handles the device's
 * PORT_OPEN in a work queue, so the reply may be written before the port
 * counts as open. So a port that looks closed is given HOST_SETTLE_MS to open
 * before the host is taken for gone.
 */
static int port_write_all(struct agent *ag, const char *p, size_t n)
{
    int settle_ms = HOST_SETTLE_MS;

    while (n > 0) {
        ssize_t w = write(ag->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -errno;
        struct pollfd pf = {.fd = ag->fd, .events = POLLOUT};
        if (poll(&pf, 1, -1) < 0 && errno != EINTR)
            return -errno;
        if ((pf.revents & (POLLHUP | POLLERR)) && !(pf.revents & POLLOUT)) {
            struct timespec ts = {0, 20 * 1000000L};

            if (settle_ms <= 0)
                return -EPIPE;
            nanosleep(&ts, NULL);
            settle_ms -= 20;
        }
    }
    return 0;
}

/* Sends {"id":<raw id or null>,"ok":false,"error":msg}. */
static void send_error(struct agent *ag, const struct json_value *id, const char *msg)
{
    struct json_buf b = {0};
    json_buf_raw(&b, "{\"id\":", 6);
    if (id)
        json_buf_raw(&b, id->raw, id->raw_len);
    else
        json_buf_raw(&b, "null", 4);
    json_buf_raw(&b, ",\"ok\":false,\"error\":", 20);
    json_buf_cstring(&b, msg);
    json_buf_raw(&b, "}\n", 2);
    if (!b.failed)
        port_write_all(ag, b.data, b.len);
    json_buf_free(&b);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Parses one request line, runs it, and writes the reply. */
static void serve_line(struct agent *ag, const char *line, size_t len)
{
    struct json_arena arena = {0};
    struct json_value *req = NULL;
    const struct json_value *id = NULL, *cmd;
    struct request rq = {0};
    char perr[200];
    int rc;

    /* A blank line is no request: a client may send one to end any partial line. */
    if (blank(line, len))
        return;
    rc = json_parse(&arena, line, len, &req, perr, sizeof(perr));
    if (rc == 0 && req->type == JSON_OBJECT)
        id = json_object_get(req, "id");

    json_buf_raw(&rq.reply, "{\"id\":", 6);
    if (id)
        json_buf_raw(&rq.reply, id->raw, id->raw_len);
    else
        json_buf_raw(&rq.reply, "null", 4);
    json_buf_raw(&rq.reply, ",\"ok\":true", 10);

    if (rc == -ENOMEM) {
        rc = req_fail(&rq, "out of memory parsing the request");
    } else if (rc < 0) {
        rc = req_fail(&rq, "malformed request: %s", perr);
    } else if (req->type != JSON_OBJECT) {
        rc = req_fail(&rq, "a request must be a JSON object");
    } else if (!(cmd = json_object_get(req, "cmd")) || cmd->type != JSON_STRING) {
        rc = req_fail(&rq, "\"cmd\" is missing or not a string");
    } else {
        const struct agent_command *c = NULL;
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if (strcmp(cmd->u.string.bytes, commands[i].name) == 0)
                c = &commands[i];
        if (!c) {
            rc = req_fail(&rq, "unknown command '%.64s'", cmd->u.string.bytes);
        } else {
            rq.args = req;
            rc = c->run(&rq);
        }
    }
    json_buf_raw(&rq.reply, "}\n", 2);

    if (rc < 0 || rq.reply.failed) {
        if (rc >= 0)
            snprintf(rq.error, sizeof(rq.error), "out of memory building the reply");
        rq.after = AFTER_NOTHING;
        send_error(ag, id, rq.error);
    } else {
        int wrc = port_write_all(ag, rq.reply.data, rq.reply.len);

        /* A shutdown is carried out whether or not its reply reached the host: the host
         * asked for it, and a host that stopped waiting (the VMM gives up after a few
         * seconds, less than a loaded guest may need for sync()) has disconnected, which
         * makes the write fail. Dropping the shutdown with the reply left the guest running
         * until the VMM's hard-stop fallback. */
        if (rq.after == AFTER_SIGNAL_INIT) {
            if (wrc == 0)
                agent_log("shutdown requested: signal %d to init", rq.init_signal);
            else
                agent_log("shutdown requested: signal %d to init (the reply was lost: %s)",
                          rq.init_signal, strerror(-wrc));
            kill(1, rq.init_signal);
        }
    }
    json_buf_free(&rq.reply);
    json_arena_free(&arena);
}

/* Splits the bytes read from the port into lines and serves each one. */
static void agent_feed(struct agent *ag, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;

        if (ag->state == LINE_OK && ag->len + take > MAX_LINE)
            ag->state = LINE_TOO_LONG;
        if (ag->state == LINE_OK && ag->cap - ag->len < take) {
            size_t cap = ag->cap ? ag->cap : 4096;
            while (cap - ag->len < take)
                cap *= 2;
            char *grown = realloc(ag->line, cap);
            if (grown) {
                ag->line = grown;
                ag->cap = cap;
            } else {
                ag->state = LINE_NO_MEMORY;
            }
        }
        if (ag->state == LINE_OK) {
            memcpy(ag->line + ag->len, p, take);
            ag->len += take;
        }
        if (!nl)
            return;
        if (ag->state == LINE_TOO_LONG)
            send_error(ag, NULL, "request line longer than 8 MiB");
        else if (ag->state == LINE_NO_MEMORY)
            send_error(ag, NULL, "out of memory reading the request line");
        else
            serve_line(ag, ag->line, ag->len);
        ag->len = 0;
        ag->state = LINE_OK;
        /* Give a big line's memory back. */
        if (ag->cap > (1u << 20)) {
            free(ag->line);
            ag->line = NULL;
            ag->cap = 0;
        }
        p += take + 1;
        n -= take + 1;
    }
}

/* Waits up to `ms` for SIGIO (blocked, so it stays pending until taken here). */
static void wait_sigio(int ms)
{
    sigset_t set;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    sigtimedwait(&set, NULL, &ts);
}

/* Serves the open port until it fails (hot-unplug: ENODEV); then returns. */
static void agent_serve(struct agent *ag)
{
    static char chunk[65536];

    for (;;) {
        reap_children();
        ssize_t n = read(ag->fd, chunk, sizeof(chunk));
        if (n > 0) {
            if (!ag->host_connected)
                agent_log("host connected");
            ag->host_connected = true;
            agent_feed(ag, chunk, (size_t)n);
            continue;
        }
        if (n == 0) {
            /* No host program connected. Forget a partial line: the next host starts afresh. */
            if (ag->host_connected) {
                agent_log("host disconnected");
                ag->host_connected = false;
                ag->len = 0;
                ag->state = LINE_OK;
                wait_sigio(0); /* drop a stale SIGIO, then look again at once */
                continue;
            }
            wait_sigio(ag->async ? HOST_WAIT_MS : 250);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            struct pollfd pf = {.fd = ag->fd, .events = POLLIN};
            if (poll(&pf, 1, -1) < 0 && errno != EINTR) {
                agent_log("poll: %s", strerror(errno));
                return;
            }
            continue;
        }
        agent_log("read: %s", strerror(errno));
        return;
    }
}

/* Makes fds 0-2 /dev/null: init gives us the console, which tests read. */
static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++)
        if (fd != i)
            dup2(fd, i);
    if (fd > 2)
        close(fd);
}

int main(int argc, char **argv)
{
    struct agent ag = {.fd = -1};
    sigset_t set;
    int last_err = 1; /* never an open() result: the first outcome is logged */

    /* `tessera-agent seed`: rcS applies the cloud-init seed disk once at boot (seed.h). */
    if (argc == 2 && strcmp(argv[1], "seed") == 0)
        return seed_main();
    if (argc != 1) {
        fprintf(stderr, "usage: tessera-agent [seed]\n");
        return 2;
    }
    umask(022);
    if (chdir("/") < 0)
        return 1;
    detach_stdio();
    kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    /* Init gives its children PATH, but a hand-started agent may lack one. */
    setenv("PATH", "/sbin:/usr/sbin:/bin:/usr/bin", 0);
    /* A command that closes its stdin early must not kill the agent. */
    signal(SIGPIPE, SIG_IGN);
    /* SIGIO (host connected, see agent_serve) is taken with sigtimedwait only. */
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (;;) {
        char dev[300];
        ag.fd = port_open(dev, sizeof(dev));
        if (ag.fd < 0) {
            /* Quietly: most VMs have no agent channel. Log each new reason once. */
            if (ag.fd != last_err) {
                if (ag.fd == -ENOENT)
                    agent_log("no port named " AGENT_PORT_NAME "; looking every %d s",
                              PORT_RETRY_MS / 1000);
                else
                    agent_log("%s: %s; retrying every %d s", dev, strerror(-ag.fd),
                              PORT_RETRY_MS / 1000);
                last_err = ag.fd;
            }
            usleep(PORT_RETRY_MS * 1000);
            continue;
        }
        last_err = 1;
        ag.async = fcntl(ag.fd, F_SETOWN, getpid()) == 0 &&
                   fcntl(ag.fd, F_SETFL, fcntl(ag.fd, F_GETFL) | O_ASYNC) == 0;
        agent_log("serving %s (version " AGENT_VERSION ")", dev);
        ag.host_connected = false;
        ag.len = 0;
        ag.state = LINE_OK;
        agent_serve(&ag);
        close(ag.fd);
        ag.fd = -1;
        usleep(PORT_RETRY_MS * 1000);
    }
}
