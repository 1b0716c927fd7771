/* The daemon's HTTP front end (src/daemon/server.h) in one process, under the sanitizers:
 * server_start() on a unix socket with hooks of the test's own, a real unix socket standing
 * in for a VM's console (docs/console.md: raw bytes both ways), and a client written here.
 * Checks api_authenticate(), a websocket echo with ping/pong and close, a silent websocket
 * client pinged and dropped, an event stream that
 * gets a published event, the bound on long-lived connections (503), an upload that lands in
 * the hook's file with a 202 and its Location, an upload over the cap and one whose client
 * went away (the file removed, upload_end told), /metrics counting by route template, and a
 * server_stop() that ends open streams and consoles; the web console's files (types, policy,
 * no token, nothing outside its folder) and a console opened once with a ticket. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/store.h"
#include "daemon/ticket.h"
#include "daemon/webui.h"
#include "daemon/websocket.h"
#include "test.h"

static char dir[40], api_sock[64], con_sock[64], part[64];
static char admin[TOKEN_TEXT_LEN + 1];
/* A real daemon behind the front end (its store, lock and request core); the test's own
 * hooks stand in for the VM runtime's. */
static struct daemon dm;

/* What the hooks saw (under the daemon lock, which the test takes to read them). */
static int uploads_ok, uploads_failed;
static uint64_t upload_size;

static int hook_console_path(void *arg, const struct api_caller *c, const char *vm, char *path,
                             size_t len)
{
    if (!strcmp(vm, "down"))
        return -ENOTCONN;
    if (strcmp(vm, "web"))
        return -ENOENT;
    snprintf(path, len, "%s", con_sock);
    return 0;
}

static int hook_upload_begin(void *arg, const struct api_caller *c, const char *volume,
                             char *tmp_path, size_t len)
{
    if (!strcmp(c->role, "viewer"))
        return -EPERM;
    snprintf(tmp_path, len, "%s", part);
    return 0;
}

static void hook_upload_end(void *arg, const struct api_caller *c, const char *volume,
                            const char *tmp_path, bool ok, struct api_response *r)
{
    struct stat st;

    if (!ok) {
        uploads_failed++;
        return;
    }
    uploads_ok++;
    upload_size = stat(tmp_path, &st) ? 0 : (uint64_t)st.st_size;
    unlink(tmp_path);
    r->status = 202;
    r->body = strdup("{\"id\":\"op-7\",\"status\":\"running\"}");
    r->len = strlen(r->body);
    snprintf(r->location, sizeof(r->location), "/api/v1/operations/op-7");
}

static const struct server_hooks hooks = {
    .console_path = hook_console_path,
    .upload_begin = hook_upload_begin,
    .upload_end = hook_upload_end,
};

/* ---- A client ---- */

static int dial(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    ssize_t n;

    while (len) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads until buf (cap bytes) holds `until` or the peer closes; waits at most 20 s for each
 * read, so a broken server fails the test instead of hanging it. Returns the length. */
static size_t read_until(int fd, char *buf, size_t cap, const char *until)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    size_t len = 0;
    ssize_t n;

    buf[0] = '\0';
    while (len + 1 < cap && !(until && memmem(buf, len, until, strlen(until)))) {
        if (poll(&pf, 1, 20000) != 1)
            break;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

static unsigned status_of(const char *resp)
{
    unsigned st = 0;

    sscanf(resp, "HTTP/1.1 %u", &st);
    return st;
}

/* A simple request on a fresh connection: the whole answer into buf. */
static unsigned request(const char *method, const char *path, const char *token, char *buf,
                        size_t cap)
{
    char head[512];
    int fd = dial(api_sock);
    unsigned st;

    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%s%s\r\n",
             method, path, token ? "Authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "");
    CHECK(fd >= 0 && send_all(fd, head, strlen(head)));
    read_until(fd, buf, cap, NULL);
    close(fd);
    st = status_of(buf);
    return st;
}

/* ---- The console's stand-in: a real unix socket that echoes ---- */

static int con_listen = -1;

static void *console_peer(void *arg)
{
    char buf[4096];
    ssize_t n;
    int c;

    while ((c = accept(con_listen, NULL, NULL)) >= 0) {
        while ((n = recv(c, buf, sizeof(buf), 0)) > 0)
            if (!send_all(c, buf, (size_t)n))
                break;
        close(c);
    }
    return NULL;
}

/* ---- Websocket frames, the client's side ---- */

static void ws_send(int fd, unsigned opcode, const void *payload, size_t len)
{
    uint8_t frame[256];
    static const uint8_t mask[4] = {1, 2, 3, 4};
    size_t h = websocket_header(frame, opcode, len), i;

    frame[1] |= 0x80;
    memcpy(frame + h, mask, 4);
    for (i = 0; i < len; i++)
        frame[h + 4 + i] = ((const uint8_t *)payload)[i] ^ mask[i & 3];
    CHECK(send_all(fd, frame, h + 4 + len));
}

/* Reads exactly n bytes (waiting at most 20 s for each part): true when all came. */
static bool read_exact(int fd, void *buf, size_t n)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    uint8_t *p = buf;
    ssize_t r;

    while (n) {
        if (poll(&pf, 1, 20000) != 1)
            return false;
        r = recv(fd, p, n, 0);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads one whole server frame (unmasked, short): its opcode, payload into out. */
static unsigned ws_recv(int fd, uint8_t *out, size_t *len)
{
    uint8_t h[2];

    if (!read_exact(fd, h, 2) || (h[1] & 0x80) || (h[1] & 0x7f) > 125)
        return 0xff;
    *len = h[1] & 0x7f;
    if (!read_exact(fd, out, *len))
        return 0xff;
    return h[0] & 0x0f;
}

/* A console handshake for vm: with the administrator's token, or, when ticket is not NULL,
 * with ?ticket= and no token (a browser's way, ticket.h). */
static int ws_open_ticket(const char *vm, const char *ticket, char *resp, size_t cap)
{
    char head[512], auth[TOKEN_TEXT_LEN + 40];
    int fd = dial(api_sock);

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", admin);
    snprintf(head, sizeof(head),
             "GET /api/v1/vms/%s/console%s%s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n%s\r\n",
             vm, ticket ? "?ticket=" : "", ticket ? ticket : "", ticket ? "" : auth);
    resp[0] = '\0';
    if (fd < 0 || !send_all(fd, head, strlen(head)))
        return fd;
    /* Read the head byte by byte, so no frame byte is taken with it. */
    {
        size_t len = 0;

        while (len + 1 < cap && !(len >= 4 && !memcmp(resp + len - 4, "\r\n\r\n", 4)) &&
               read_exact(fd, resp + len, 1))
            len++;
        resp[len] = '\0';
    }
    return fd;
}

static int ws_open(const char *vm, char *resp, size_t cap)
{
    return ws_open_ticket(vm, NULL, resp, cap);
}

static void test_websocket(void)
{
    uint8_t out[256];
    char resp[1024];
    size_t len;
    int fd;

    fd = ws_open("web", resp, sizeof(resp));
    CHECK(status_of(resp) == 101);
    CHECK(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
    ws_send(fd, WEBSOCKET_BINARY, "hello", 5);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_BINARY && len == 5 && !memcmp(out, "hello", 5));
    ws_send(fd, WEBSOCKET_PING, "p", 1);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_PONG && len == 1 && out[0] == 'p');
    ws_send(fd, WEBSOCKET_CLOSE, "\x03\xe8", 2);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_CLOSE && len == 2 && out[1] == 0xe8);
    close(fd);

    /* A client that goes silent is pinged, and when it does not answer, closed with 1001. */
    fd = ws_open("web", resp, sizeof(resp));
    CHECK(status_of(resp) == 101);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_PING && len == 8 && !memcmp(out, "tesserad", 8));
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_CLOSE && len >= 2 && out[0] == 0x03 &&
          out[1] == 0xe9);
    close(fd);
    /* One that answers stays. */
    fd = ws_open("web", resp, sizeof(resp));
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_PING);
    ws_send(fd, WEBSOCKET_PONG, out, len);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_PING);
    ws_send(fd, WEBSOCKET_BINARY, "still", 5);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_BINARY && len == 5 && !memcmp(out, "still", 5));
    close(fd);

    fd = ws_open("nosuch", resp, sizeof(resp));
    CHECK(status_of(resp) == 404);
    close(fd);
    fd = ws_open("down", resp, sizeof(resp));
    CHECK(status_of(resp) == 409);
    close(fd);
}

/* ---- The web console's files and a browser's console ticket ---- */

static char web_dir[64];

static void web_files(void)
{
    char path[128];
    FILE *f;

    snprintf(web_dir, sizeof(web_dir), "%s/web", dir);
    CHECK(mkdir(web_dir, 0700) == 0);
    snprintf(path, sizeof(path), "%s/index.html", web_dir);
    CHECK((f = fopen(path, "w")) && fputs("<!doctype html><title>t</title>\n", f) >= 0 &&
          fclose(f) == 0);
    snprintf(path, sizeof(path), "%s/app.js", web_dir);
    CHECK((f = fopen(path, "w")) && fputs("export {};\n", f) >= 0 && fclose(f) == 0);
    snprintf(path, sizeof(path), "%s/link.js", web_dir);
    CHECK(symlink("/etc/passwd", path) == 0);
}

static void test_web(void)
{
    char resp[4096], ticket[TICKET_TEXT_LEN + 1];
    const char *t;
    uint8_t out[64];
    size_t len;
    int fd;

    /* The files: no token, typed, under the policy; nothing outside them. */
    CHECK(request("GET", "/", NULL, resp, sizeof(resp)) == 200);
    CHECK(strstr(resp, "Content-Type: text/html; charset=utf-8\r\n") != NULL);
    CHECK(strstr(resp, "Content-Security-Policy: " WEBUI_CSP "\r\n") != NULL);
    CHECK(strstr(resp, "<title>t</title>") != NULL);
    CHECK(request("HEAD", "/", NULL, resp, sizeof(resp)) == 200 && !strstr(resp, "<title>"));
    CHECK(request("GET", "/ui/app.js", NULL, resp, sizeof(resp)) == 200);
    CHECK(strstr(resp, "Content-Type: text/javascript; charset=utf-8\r\n") != NULL);
    CHECK(request("GET", "/ui/link.js", NULL, resp, sizeof(resp)) == 404);
    CHECK(request("GET", "/ui/../api.sock", NULL, resp, sizeof(resp)) == 404);
    CHECK(request("GET", "/ui/%2e%2e%2fapi.sock", NULL, resp, sizeof(resp)) == 404);
    CHECK(request("GET", "/ui/none.js", NULL, resp, sizeof(resp)) == 404);
    CHECK(request("GET", "/api/v1/vms", NULL, resp, sizeof(resp)) == 401);

    /* Tickets: with a token only; for a VM the caller sees, running or not. */
    CHECK(request("POST", "/api/v1/vms/web/console-ticket", NULL, resp, sizeof(resp)) == 401);
    CHECK(request("POST", "/api/v1/vms/nosuch/console-ticket", admin, resp, sizeof(resp)) == 404);
    CHECK(request("POST", "/api/v1/vms/down/console-ticket", admin, resp, sizeof(resp)) == 201);
    CHECK(request("POST", "/api/v1/vms/web/console-ticket", admin, resp, sizeof(resp)) == 201);
    t = strstr(resp, "\"ticket\":\"");
    CHECK(t != NULL);
    if (!t)
        return;
    memcpy(ticket, t + 10, TICKET_TEXT_LEN);
    ticket[TICKET_TEXT_LEN] = '\0';
    CHECK(strspn(ticket, "0123456789abcdef") == TICKET_TEXT_LEN);
    /* Another VM's name does not spend it; its own opens the console, once. */
    fd = ws_open_ticket("down", ticket, resp, sizeof(resp));
    CHECK(status_of(resp) == 401);
    close(fd);
    fd = ws_open_ticket("web", ticket, resp, sizeof(resp));
    CHECK(status_of(resp) == 101);
    ws_send(fd, WEBSOCKET_BINARY, "tick", 4);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_BINARY && len == 4 && !memcmp(out, "tick", 4));
    ws_send(fd, WEBSOCKET_CLOSE, "\x03\xe8", 2);
    CHECK(ws_recv(fd, out, &len) == WEBSOCKET_CLOSE);
    close(fd);
    fd = ws_open_ticket("web", ticket, resp, sizeof(resp));
    CHECK(status_of(resp) == 401);
    close(fd);
}

/* A PUT of `size` bytes (Content-Length), or a PUT that stops after `send_only` bytes and
 * closes (send_only < size). Returns the status, 0 for none. */
static unsigned upload(size_t size, size_t send_only, char *resp, size_t cap)
{
    static char block[64 << 10];
    char head[512];
    size_t sent = 0, n;
    int fd = dial(api_sock);

    memset(block, 'v', sizeof(block));
    snprintf(head, sizeof(head),
             "PUT /api/v1/volumes/disk/data HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "Authorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n",
             admin, size);
    CHECK(fd >= 0 && send_all(fd, head, strlen(head)));
    while (sent < send_only) {
        n = send_only - sent < sizeof(block) ? send_only - sent : sizeof(block);
        if (!send_all(fd, block, n))
            break;
        sent += n;
    }
    resp[0] = '\0';
    if (send_only == size) {
        read_until(fd, resp, cap, NULL);
    } else {
        /* Hang up only once the upload has begun (its file is there): a client that hangs up
         * before the server read its request was never an upload at all. */
        for (n = 0; n < 2000 && access(part, F_OK); n++)
            usleep(10000);
        CHECK(access(part, F_OK) == 0);
    }
    close(fd);
    return status_of(resp);
}

static void test_upload(void)
{
    char resp[4096];
    int failed, i;

    CHECK(upload(300 << 10, 300 << 10, resp, sizeof(resp)) == 202);
    CHECK(strstr(resp, "Location: /api/v1/operations/op-7\r\n") != NULL);
    pthread_mutex_lock(&dm.lock);
    CHECK(uploads_ok == 1 && upload_size == 300 << 10 && uploads_failed == 0);
    pthread_mutex_unlock(&dm.lock);

    /* Over the cap (1 MiB here), from Content-Length: 413 before any file. */
    CHECK(upload(2 << 20, 2 << 20, resp, sizeof(resp)) == 413);

    /* A client that goes away mid-body: upload_end hears !ok and the file is gone. */
    upload(1 << 20, 100 << 10, resp, sizeof(resp));
    for (i = 0; i < 2000; i++) {
        pthread_mutex_lock(&dm.lock);
        failed = uploads_failed;
        pthread_mutex_unlock(&dm.lock);
        if (failed)
            break;
        usleep(10000);
    }
    CHECK(failed == 1);
    CHECK(access(part, F_OK) == -1 && errno == ENOENT);
}

struct stream {
    int fd;
    char buf[4096];
};

static void test_events_and_metrics(struct events_bus *bus)
{
    static struct stream s[SERVER_STREAMS_MAX];
    char head[512], resp[8192];
    size_t i;

    snprintf(head, sizeof(head),
             "GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n", admin);
    for (i = 0; i < SERVER_STREAMS_MAX; i++) {
        s[i].fd = dial(api_sock);
        CHECK(s[i].fd >= 0 && send_all(s[i].fd, head, strlen(head)));
        read_until(s[i].fd, s[i].buf, sizeof(s[i].buf), ": tesserad events");
        CHECK(status_of(s[i].buf) == 200);
    }
    /* Every stream slot taken: the next stream, and a console, wait their turn (503), while
     * plain requests still get through. */
    CHECK(request("GET", "/api/v1/events", admin, resp, sizeof(resp)) == 503);
    CHECK(request("GET", "/api/v1/tenants", admin, resp, sizeof(resp)) == 200);
    CHECK(events_publish(bus, "alpha", "vm.state", "{\"name\":\"web\",\"state\":\"running\"}") ==
          0);
    read_until(s[0].fd, s[0].buf, sizeof(s[0].buf), "\"running\"}\n\n");
    CHECK(strstr(s[0].buf,
                 "\nevent: vm.state\ndata: {\"name\":\"web\",\"state\":\"running\"}\n\n") != NULL);
    snprintf(head, sizeof(head), "id: %llu\n", (unsigned long long)events_last_seq(bus));
    CHECK(strstr(s[0].buf, head) != NULL);
    for (i = 1; i < SERVER_STREAMS_MAX; i++)
        close(s[i].fd);

    CHECK(request("GET", "/metrics", admin, resp, sizeof(resp)) == 200);
    CHECK(strstr(resp, "Content-Type: text/plain; version=0.0.4") != NULL);
    CHECK(strstr(resp, "tessera_api_requests_total{method=\"PUT\",route=\"/api/v1/volumes/{name}/"
                       "data\",status=\"202\"} 1\n") != NULL);
    CHECK(strstr(resp, "tessera_api_requests_total{method=\"GET\",route=\"/api/v1/events\","
                       "status=\"503\"} 1\n") != NULL);
    CHECK(request("GET", "/metrics", NULL, resp, sizeof(resp)) == 401);
    /* Left open: server_stop() must end it. */
    (void)s[0];
}

static void test_authenticate(struct store *st)
{
    struct api_caller c;
    char bad[TOKEN_TEXT_LEN + 16];

    snprintf(bad, sizeof(bad), "Bearer %s", admin);
    CHECK(api_authenticate(st, bad, &c) == 0);
    CHECK(!strcmp(c.role, "platform-admin") && !strcmp(c.user, "admin") && !c.tenant[0]);
    CHECK(api_authenticate(st, NULL, &c) == -EACCES);
    CHECK(api_authenticate(st, "Basic abc", &c) == -EACCES);
    bad[strlen(bad) - 1] ^= 1;
    CHECK(api_authenticate(st, bad, &c) == -EACCES);
}

int main(void)
{
    char spec[160], err[SERVER_ERR_LEN], token[TOKEN_TEXT_LEN + 1], resp[1024];
    const char *specs[1] = {spec};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct events_bus *bus;
    struct metrics *metrics;
    struct server *srv = NULL, *refused;
    struct store *st;
    pthread_t peer;
    bool created;
    int ws, i;

    snprintf(dir, sizeof(dir), "/tmp/tessera-server-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(api_sock, sizeof(api_sock), "%s/api.sock", dir);
    snprintf(con_sock, sizeof(con_sock), "%s/console.sock", dir);
    snprintf(part, sizeof(part), "%s/upload.part", dir);
    snprintf(spec, sizeof(spec), "unix:%s", api_sock);
    CHECK(daemon_init(&dm, dir, NULL, err) == 0);
    st = dm.store;
    CHECK(api_bootstrap(st, &created, token, err) == 0 && created);
    snprintf(admin, sizeof(admin), "%s", token);
    test_authenticate(st);
    web_files();

    con_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", con_sock);
    CHECK(bind(con_listen, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(con_listen, 4) == 0);
    CHECK(pthread_create(&peer, NULL, console_peer, NULL) == 0);

    CHECK(events_bus_new(&bus) == 0 && metrics_new(&metrics) == 0);
    {
        struct server_config cfg = {.listen = specs,
                                    .nlisten = 1,
                                    .unix_mode = 0600,
                                    .daemon = &dm,
                                    .store = st,
                                    .lock = &dm.lock,
                                    .events = bus,
                                    .metrics = metrics,
                                    .hooks = &hooks,
                                    .upload_max = 1 << 20,
                                    .ping_s = 2,
                                    .web_dir = web_dir};
        const char *bad[1] = {"http://10.0.0.1:80"};

        CHECK(server_start(&cfg, &srv, err) == 0);
        CHECK(srv && !strcmp(server_address(srv, 0), spec) && !server_address(srv, 1));
        cfg.listen = bad;
        CHECK(server_start(&cfg, &refused, err) == -EINVAL && !refused &&
              strstr(err, "clear text"));
    }
    if (srv) {
        test_websocket();
        test_web();
        test_upload();
        test_events_and_metrics(bus);
        /* A console left open across the stop, once the closed streams' slots are back (a
         * stream notices its client hung up within a second or so). */
        for (i = 0; i < 200; i++) {
            ws = ws_open("web", resp, sizeof(resp));
            if (status_of(resp) != 503)
                break;
            close(ws);
            usleep(100000);
        }
        CHECK(status_of(resp) == 101);
        server_stop(srv);
        CHECK(access(api_sock, F_OK) == -1);
        close(ws);
    }
    shutdown(con_listen, SHUT_RDWR);
    pthread_join(peer, NULL);
    close(con_listen);
    metrics_free(metrics);
    events_bus_free(bus);
    daemon_fini(&dm);
    unlink(con_sock);
    /* The daemon's state: its database, pools, run and upload folders. */
    {
        char cmd[80];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
    }
    return test_finish("daemon_server");
}
