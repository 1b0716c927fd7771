/* The console server without a guest: the test writes the ring as the UART would and plays
 * the clients. Parsing --console; the socket (mode 0600, a live one refused, a stale one
 * replaced, removed at the end); clients that attach and detach, output to all of them and
 * input from each, output while none is attached replayed on the next attach (and only that);
 * the log file with everything; a client that stops reading skips with a notice while a reader
 * that keeps up loses nothing; stdout that nobody reads never stops the writer; input the
 * guest takes slowly arrives whole. Waits are bounded (10 s) but nothing asserts a time. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/bytering.h"
#include "vmm/console_server.h"

#define WAIT_MS 10000
#define NOTICE  "bytes of console output skipped"

static char dir[] = "/tmp/tessera-console-test-XXXXXX";

/* What the server handed to the "guest" (the input function), under a lock. */
static pthread_mutex_t in_lock = PTHREAD_MUTEX_INITIALIZER;
static char in_buf[65536];
static size_t in_len;
static size_t in_take_max = SIZE_MAX; /* the guest takes at most this much per call */

static size_t take_input(void *opaque, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&in_lock);
    if (len > in_take_max)
        len = in_take_max;
    if (len > sizeof(in_buf) - in_len)
        len = sizeof(in_buf) - in_len;
    memcpy(in_buf + in_len, buf, len);
    in_len += len;
    pthread_mutex_unlock(&in_lock);
    return len;
}

static void input_reset(size_t take_max)
{
    pthread_mutex_lock(&in_lock);
    in_len = 0;
    in_take_max = take_max;
    pthread_mutex_unlock(&in_lock);
}

/* Waits until the guest got `want` bytes of input; returns how many it got. */
static size_t input_wait(size_t want)
{
    size_t got = 0;

    for (int i = 0; i < WAIT_MS; i++) {
        pthread_mutex_lock(&in_lock);
        got = in_len;
        pthread_mutex_unlock(&in_lock);
        if (got >= want)
            break;
        poll(NULL, 0, 1);
    }
    return got;
}

static bool input_has(const char *s)
{
    bool found;

    pthread_mutex_lock(&in_lock);
    in_buf[in_len < sizeof(in_buf) ? in_len : sizeof(in_buf) - 1] = 0;
    found = strstr(in_buf, s) != NULL;
    pthread_mutex_unlock(&in_lock);
    return found;
}

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int client_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(sa.sun_path)) {
        close(fd);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A growing byte string read from one fd. */
struct stream {
    char *buf;
    size_t len, cap;
};

static void stream_free(struct stream *s)
{
    free(s->buf);
    *s = (struct stream){0};
}

/* Reads what fd has within `ms`; returns false on EOF. */
static bool stream_read(struct stream *s, int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;

    if (poll(&p, 1, ms) != 1)
        return true;
    if (s->cap - s->len < 65537) {
        s->cap = s->cap * 2 + 65537;
        s->buf = realloc(s->buf, s->cap);
    }
    n = read(fd, s->buf + s->len, s->cap - s->len - 1);
    if (n <= 0)
        return false;
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    return true;
}

/* Reads until `want` appears in the stream (or WAIT_MS pass, or EOF). */
static bool stream_until(struct stream *s, int fd, const char *want)
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (s->buf && strstr(s->buf, want))
            return true;
        if (!stream_read(s, fd, 10))
            break;
    }
    return s->buf && strstr(s->buf, want);
}

/* Reads until the stream holds `len` bytes. */
static bool stream_until_len(struct stream *s, int fd, size_t len)
{
    for (int i = 0; i < WAIT_MS / 10 && s->len < len; i++) {
        if (!stream_read(s, fd, 10))
            break;
    }
    return s->len >= len;
}

/* Waits until the server has `n` clients attached (it accepts and notices hang-ups on its own
 * thread). */
static bool clients_wait(struct console_server *cs, unsigned n)
{
    for (int i = 0; i < WAIT_MS && console_server_clients(cs) != n; i++)
        poll(NULL, 0, 1);
    return console_server_clients(cs) == n;
}

static void put(struct console_server *cs, const char *text)
{
    bytering_write(console_server_ring(cs), text, strlen(text));
}

static char *slurp(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void test_parse(void)
{
    struct console_server_opts o;
    char err[256], a[] = "stdio", b[] = "sock=/run/x.sock,log=/var/log/x.log", c[] = "stdio,log=l";
    char long_path[200] = "sock=";

    CHECK(console_server_parse_opts(a, 1, &o, err, sizeof(err)) == 0);
    CHECK(o.out_fd == 1 && !o.sock_path && !o.log_path);
    CHECK(console_server_parse_opts(b, 1, &o, err, sizeof(err)) == 0);
    CHECK(o.out_fd == -1 && !strcmp(o.sock_path, "/run/x.sock") &&
          !strcmp(o.log_path, "/var/log/x.log"));
    CHECK(console_server_parse_opts(c, 1, &o, err, sizeof(err)) == 0);
    CHECK(o.out_fd == 1 && !o.sock_path && !strcmp(o.log_path, "l"));

    static const struct {
        const char *arg, *msg;
    } bad[] = {
        {"", "expected stdio or sock=PATH"},
        {"tty", "'tty': expected stdio, sock=PATH or log=FILE"},
        {"log=x", "'log' cannot come first"},
        {"sock=", "sock= needs a path"},
        {"sock=a,log=b,log=c", "log= is given twice"},
        {"stdio,sock=a", "'sock' is not a known key here"},
        {"stdio,bogus=1", "'bogus' is not a known key here"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[64];

        snprintf(arg, sizeof(arg), "%s", bad[i].arg);
        err[0] = 0;
        CHECK(console_server_parse_opts(arg, 1, &o, err, sizeof(err)) == -EINVAL);
        if (!strstr(err, bad[i].msg))
            fprintf(stderr, "  '%s' gave '%s'\n", bad[i].arg, err);
        CHECK(strstr(err, bad[i].msg) != NULL);
    }
    memset(long_path + 5, 'a', 150);
    CHECK(console_server_parse_opts(long_path, 1, &o, err, sizeof(err)) == -ENAMETOOLONG);
    CHECK(strstr(err, "shorter than 108 bytes") != NULL);
}

/* The socket file: 0600, a live server refused, a stale socket replaced, a file kept. */
static void test_socket_file(void)
{
    struct console_server *cs, *other = NULL;
    struct console_server_opts o = {.out_fd = -1};
    char sock[128], file[128], err[256];
    struct stat st;
    int fd;

    path_in_dir(sock, sizeof(sock), "s.sock");
    path_in_dir(file, sizeof(file), "plain");
    o.sock_path = sock;
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK(console_server_create(&o, &other, err, sizeof(err)) == -EADDRINUSE);
    CHECK(strstr(err, "another process serves this socket") != NULL);
    console_server_destroy(cs);
    CHECK(stat(sock, &st) < 0 && errno == ENOENT);

    /* A socket left by a process that died: bound, nobody listening. */
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        memcpy(sa.sun_path, sock, strlen(sock) + 1); /* mkdtemp's path is short */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        close(fd);
    }
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    console_server_destroy(cs);

    fd = open(file, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    close(fd);
    o.sock_path = file;
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == -EEXIST);
    CHECK(strstr(err, "exists and is not a socket") != NULL);
    CHECK(stat(file, &st) == 0 && S_ISREG(st.st_mode));
    o.sock_path = NULL;
    o.log_path = dir; /* a directory */
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) < 0);
    CHECK(strstr(err, "--console log=") != NULL);
    unlink(file);
}

/* Two clients attach, one detaches, the other follows; output while none is attached is
 * replayed to the next one and nothing before it; the log has everything. */
static void test_attach_detach_replay(void)
{
    struct console_server_opts o = {.out_fd = -1};
    struct console_server *cs;
    struct stream sa = {0}, sb = {0}, sc = {0};
    char sock[128], log[128], err[256];
    int a, b, c;

    path_in_dir(sock, sizeof(sock), "r.sock");
    path_in_dir(log, sizeof(log), "r.log");
    o.sock_path = sock;
    o.log_path = log;
    input_reset(SIZE_MAX);
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    CHECK(console_server_start(cs, take_input, NULL) == 0);

    put(cs, "boot-line\n");
    a = client_connect(sock);
    CHECK(a >= 0);
    CHECK(stream_until(&sa, a, "boot-line\n")); /* what nobody saw yet */
    b = client_connect(sock);
    CHECK(b >= 0);
    CHECK(clients_wait(cs, 2));
    put(cs, "to-both\n");
    CHECK(stream_until(&sa, a, "to-both\n"));
    CHECK(stream_until(&sb, b, "to-both\n"));
    CHECK(!strstr(sb.buf, "boot-line")); /* b joined a watched console: live only */

    CHECK(write(a, "typed-by-a\n", 11) == 11);
    CHECK(write(b, "typed-by-b\n", 11) == 11);
    CHECK(input_wait(22) == 22);
    CHECK(input_has("typed-by-a\n") && input_has("typed-by-b\n"));

    close(a);
    CHECK(clients_wait(cs, 1));
    put(cs, "only-b\n");
    CHECK(stream_until(&sb, b, "only-b\n"));
    CHECK(!strstr(sa.buf, "only-b"));
    close(b);
    CHECK(clients_wait(cs, 0));
    put(cs, "while-none-1\n");
    put(cs, "while-none-2\n");
    c = client_connect(sock);
    CHECK(c >= 0);
    CHECK(stream_until(&sc, c, "while-none-2\n"));
    CHECK(!strcmp(sc.buf, "while-none-1\nwhile-none-2\n"));
    put(cs, "live-c\n");
    CHECK(stream_until(&sc, c, "live-c\n"));

    console_server_stop(cs);
    CHECK(!stream_read(&sc, c, WAIT_MS)); /* stop detaches the clients */
    CHECK(!strcmp(slurp(log), "boot-line\nto-both\nonly-b\nwhile-none-1\nwhile-none-2\nlive-c\n"));
    console_server_destroy(cs);
    close(c);
    unlink(log);
    stream_free(&sa);
    stream_free(&sb);
    stream_free(&sc);
}

/* One client stops reading; the other reads everything and loses nothing; the stalled one
 * skips with a notice and then sees the newest output. */
static void test_slow_client(void)
{
    const size_t chunk = 32768, total = 4u << 20;
    struct console_server_opts o = {.out_fd = -1};
    struct console_server *cs;
    struct stream fast = {0}, slow = {0};
    struct bytering_stats st;
    char sock[128], err[256];
    char *data = malloc(total);
    int f, s;

    CHECK(data != NULL);
    for (size_t i = 0; i < total; i++)
        data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    path_in_dir(sock, sizeof(sock), "slow.sock");
    o.sock_path = sock;
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    CHECK(console_server_start(cs, take_input, NULL) == 0);
    f = client_connect(sock);
    CHECK(f >= 0 && clients_wait(cs, 1));
    s = client_connect(sock);
    CHECK(s >= 0 && clients_wait(cs, 2));
    for (size_t o2 = 0; o2 < total; o2 += chunk) {
        bytering_write(console_server_ring(cs), data + o2, chunk);
        CHECK(stream_until_len(&fast, f, o2 + chunk));
    }
    CHECK(fast.len == total && !memcmp(fast.buf, data, total));
    /* Now the stalled client reads: its socket's backlog, the notice, then the newest bytes. */
    put(cs, "END");
    CHECK(stream_until(&slow, s, "END"));
    CHECK(strstr(slow.buf, NOTICE) != NULL);
    CHECK(slow.len < total);
    CHECK(slow.len > 1003 && !memcmp(slow.buf + slow.len - 1003, data + total - 1000, 1000));
    bytering_get_stats(console_server_ring(cs), &st);
    CHECK(st.dropped > 0);
    CHECK_EQ_U64(st.written, total + 3);
    CHECK(strstr(fast.buf, NOTICE) == NULL);
    console_server_destroy(cs);
    close(s);
    close(f);
    stream_free(&fast);
    stream_free(&slow);
    free(data);
}

/* Stdout (a pipe) that nobody reads: writing 3 MiB never waits; the reader who comes back
 * gets what the pipe held, a notice, and the newest output. (Which lines the pipe took
 * before it filled depends on when the drain thread ran, so only the rest is checked.) */
static void test_stalled_stdout(void)
{
    struct console_server_opts o;
    struct console_server *cs;
    struct stream out = {0};
    char err[256], line[64];
    int p[2];

    CHECK(pipe(p) == 0);
    o = (struct console_server_opts){.out_fd = p[1]};
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    CHECK(console_server_start(cs, take_input, NULL) == 0);
    for (int i = 0; i < 100000; i++) {
        snprintf(line, sizeof(line), "line %06d of the guest's output\n", i);
        put(cs, line);
    }
    put(cs, "LAST\n");
    CHECK(stream_until(&out, p[0], "LAST\n"));
    CHECK(strstr(out.buf, NOTICE) != NULL);
    CHECK(strstr(out.buf, "line 099999 of the guest's output\nLAST\n") != NULL);
    console_server_destroy(cs);
    close(p[0]);
    close(p[1]);
    stream_free(&out);
}

/* A guest that takes 3 bytes at a time still gets every byte of a client's input, in order. */
static void test_slow_input(void)
{
    struct console_server_opts o = {.out_fd = -1};
    struct console_server *cs;
    char sock[128], err[256], msg[20000];
    int c;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (char)('A' + i % 23);
    path_in_dir(sock, sizeof(sock), "in.sock");
    o.sock_path = sock;
    input_reset(3);
    CHECK(console_server_create(&o, &cs, err, sizeof(err)) == 0);
    CHECK(console_server_start(cs, take_input, NULL) == 0);
    c = client_connect(sock);
    CHECK(c >= 0);
    CHECK(write(c, msg, sizeof(msg)) == (ssize_t)sizeof(msg));
    CHECK(input_wait(sizeof(msg)) == sizeof(msg));
    pthread_mutex_lock(&in_lock);
    CHECK(!memcmp(in_buf, msg, sizeof(msg)));
    pthread_mutex_unlock(&in_lock);
    console_server_destroy(cs);
    close(c);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_parse();
    test_socket_file();
    test_attach_detach_replay();
    test_slow_client();
    test_stalled_stdout();
    test_slow_input();
    rmdir(dir);
    return test_finish("console_server");
}
