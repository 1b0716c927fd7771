/* The control API end to end: the server with a fake VMM (it records calls and returns canned
 * JSON or errors) on a real unix socket, spoken to by the client module and by raw HTTP bytes
 * for what a well-behaved client never sends. Then the client's pieces alone: request bytes,
 * the response parser against well-formed, split, chunked and malformed input, sizes. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/control.h"
#include "vmm/control_client.h"

/* ---- The fake VMM ---- */

enum fake_op {
    OP_DESCRIBE,
    OP_PAUSE,
    OP_RESUME,
    OP_SHUTDOWN,
    OP_STOP,
    OP_RESET,
    OP_BSET,
    OP_BGET,
    OP_STATS,
    OP_COUNT
};

struct fake {
    atomic_int calls[OP_COUNT];
    int ret[OP_COUNT];  /* what each op returns */
    bool null_out;      /* getters return 0 without a document */
    bool out_on_error;  /* getters leave a document behind when they fail */
    unsigned timeout_s; /* the last shutdown's */
    uint64_t balloon;   /* the last balloon_set's */
    atomic_int inside;  /* ops running now: must never exceed 1 */
    atomic_int max_inside;
    unsigned delay_us; /* each op sleeps this long, to make overlap likely if allowed */
};

static int fake_enter(struct fake *f, enum fake_op op)
{
    int now = atomic_fetch_add(&f->inside, 1) + 1;
    int max = atomic_load(&f->max_inside);

    while (now > max && !atomic_compare_exchange_weak(&f->max_inside, &max, now))
        ;
    atomic_fetch_add(&f->calls[op], 1);
    if (f->delay_us)
        usleep(f->delay_us);
    atomic_fetch_sub(&f->inside, 1);
    return f->ret[op];
}

static int fake_get(struct fake *f, enum fake_op op, json_t **out, const char *json)
{
    int ret = fake_enter(f, op);

    if (!ret || f->out_on_error)
        *out = f->null_out ? NULL : json_loads(json, 0, NULL);
    return ret;
}

static int fake_describe(void *vm, json_t **out)
{
    struct fake *f = vm;

    /* describe also serves the 409 messages; those calls are not counted as requests. */
    return fake_get(f, OP_DESCRIBE, out,
                    "{\"state\":\"paused\",\"uptime_s\":12,\"config\":{\"cpus\":2}}");
}

static int fake_pause(void *vm)
{
    return fake_enter(vm, OP_PAUSE);
}

static int fake_resume(void *vm)
{
    return fake_enter(vm, OP_RESUME);
}

static int fake_shutdown(void *vm, unsigned timeout_s)
{
    ((struct fake *)vm)->timeout_s = timeout_s;
    return fake_enter(vm, OP_SHUTDOWN);
}

static int fake_stop(void *vm)
{
    return fake_enter(vm, OP_STOP);
}

static int fake_reset(void *vm)
{
    return fake_enter(vm, OP_RESET);
}

static int fake_balloon_set(void *vm, uint64_t target)
{
    ((struct fake *)vm)->balloon = target;
    return fake_enter(vm, OP_BSET);
}

static int fake_balloon_get(void *vm, json_t **out)
{
    return fake_get(vm, OP_BGET, out, "{\"target_bytes\":0,\"actual_bytes\":0}");
}

static int fake_stats(void *vm, json_t **out)
{
    return fake_get(vm, OP_STATS, out, "{\"vcpus\":[{\"id\":0,\"exits\":5}]}");
}

static const struct control_ops fake_ops = {
    .describe = fake_describe,
    .pause = fake_pause,
    .resume = fake_resume,
    .shutdown = fake_shutdown,
    .stop = fake_stop,
    .reset = fake_reset,
    .balloon_set = fake_balloon_set,
    .balloon_get = fake_balloon_get,
    .stats = fake_stats,
};

static char sock_path[108];

/* ---- Talking to the server ---- */

/* One request through the client module. Returns the status, or -errno. body_out gets the
 * body (freed by the next call). */
static char *last_body;

static int call(const char *method, const char *path, const char *body)
{
    struct control_client_reply r;
    char err[CONTROL_CLIENT_ERR_LEN];
    int ret;

    free(last_body);
    last_body = NULL;
    ret = control_client_call(sock_path, method, path, body, 5, &r, err);
    if (ret)
        return ret;
    last_body = r.body;
    return (int)r.status;
}

static bool body_has(const char *want)
{
    if (last_body && strstr(last_body, want))
        return true;
    fprintf(stderr, "  body '%s' lacks '%s'\n", last_body ? last_body : "(none)", want);
    return false;
}

static int connect_sock(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends len raw bytes (send errors ignored: the server may answer early and close), reads to
 * EOF, and returns the raw response (malloc'd, NUL-terminated) or NULL. */
static char *raw(const char *req, size_t len)
{
    size_t got = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    int fd = connect_sock(sock_path);
    ssize_t n;

    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    for (size_t off = 0; off < len; off += (size_t)n) {
        n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
    }
    while (got < cap && (n = recv(fd, buf + got, cap - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    return buf;
}

/* The status of a raw response, or -1. */
static int raw_status(const char *resp)
{
    struct control_client_reply r;
    char err[CONTROL_CLIENT_ERR_LEN];
    int status;

    if (!resp || control_client_parse(resp, strlen(resp), true, &r, err))
        return -1;
    status = (int)r.status;
    control_client_reply_free(&r);
    return status;
}

static int raw_req(const char *req, char **resp)
{
    *resp = raw(req, strlen(req));
    return raw_status(*resp);
}

/* ---- Server tests ---- */

static void test_routes(struct fake *f)
{
    struct stat st;

    CHECK(stat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);

    CHECK(call("GET", "/v1/vm", NULL) == 200);
    CHECK(body_has("\"state\":\"paused\"") && body_has("\"cpus\":2"));
    CHECK(call("GET", "/v1/vm/stats", NULL) == 200);
    CHECK(body_has("\"exits\":5"));
    CHECK(call("GET", "/v1/vm/balloon", NULL) == 200);
    CHECK(body_has("\"actual_bytes\":0"));

    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"pause\"}") == 204);
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"resume\"}") == 204);
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"reset\"}") == 204);
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"stop\"}") == 204);
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"shutdown\"}") == 204);
    CHECK_EQ_U64(f->timeout_s, 30);
    CHECK(call("PUT", "/v1/vm/state", " {\"timeout_s\": 5, \"action\": \"shutdown\"}\n") == 204);
    CHECK_EQ_U64(f->timeout_s, 5);
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":3600}") == 204);
    CHECK_EQ_U64(f->timeout_s, 3600);
    CHECK_EQ_U64(f->calls[OP_PAUSE], 1);
    CHECK_EQ_U64(f->calls[OP_RESUME], 1);
    CHECK_EQ_U64(f->calls[OP_RESET], 1);
    CHECK_EQ_U64(f->calls[OP_STOP], 1);
    CHECK_EQ_U64(f->calls[OP_SHUTDOWN], 3);

    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_bytes\":134217728}") == 204);
    CHECK_EQ_U64(f->balloon, 128ull << 20);
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_mib\":512}") == 204);
    CHECK_EQ_U64(f->balloon, 512ull << 20);
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_bytes\":0}") == 204);
    CHECK_EQ_U64(f->balloon, 0);
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_bytes\":1125899906842624}") == 204);
    CHECK_EQ_U64(f->balloon, 1ull << 50);
    CHECK_EQ_U64(f->calls[OP_BSET], 4);
}

struct bad_case {
    const char *path, *body, *want;
};

static const struct bad_case bad_cases[] = {
    {"/v1/vm/state", "", "empty request body"},
    {"/v1/vm/state", "{", "not valid JSON"},
    {"/v1/vm/state", "{\"action\":\"pause\"} x", "not valid JSON"},
    {"/v1/vm/state", "{\"action\":\"pause\",}", "not valid JSON"},
    {"/v1/vm/state", "\xff\xfe", "not valid JSON"},
    {"/v1/vm/state", "[\"pause\"]", "must be a JSON object, not an array"},
    {"/v1/vm/state", "\"pause\"", "not valid JSON"},
    {"/v1/vm/state", "{}", "missing field 'action'"},
    {"/v1/vm/state", "{\"action\":\"pause\",\"bogus\":1}", "unknown field 'bogus'"},
    {"/v1/vm/state", "{\"Action\":\"pause\"}", "unknown field 'Action'"},
    {"/v1/vm/state", "{\"action\":\"pause\",\"action\":\"stop\"}", "duplicate"},
    {"/v1/vm/state", "{\"action\":5}", "field 'action' must be a string, not an integer"},
    {"/v1/vm/state", "{\"action\":null}", "field 'action' must be a string, not null"},
    {"/v1/vm/state", "{\"action\":\"PAUSE\"}", "field 'action' must be one of"},
    {"/v1/vm/state", "{\"action\":\"pause\\u0000\"}", "not valid JSON"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":\"5\"}",
     "field 'timeout_s' must be an integer, not a string"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":5.0}",
     "field 'timeout_s' must be an integer, not a number with a fraction"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":true}",
     "field 'timeout_s' must be an integer, not a boolean"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":0}",
     "field 'timeout_s' must be in 1..3600 (got 0)"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":3601}", "must be in 1..3600"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":-1}", "(got -1)"},
    {"/v1/vm/state", "{\"action\":\"shutdown\",\"timeout_s\":99999999999999999999}",
     "not valid JSON"},
    {"/v1/vm/state", "{\"action\":\"pause\",\"timeout_s\":5}",
     "'timeout_s' applies only to action 'shutdown', not 'pause'"},
    {"/v1/vm/balloon", "{}", "missing field 'target_bytes'"},
    {"/v1/vm/balloon", "{\"target_bytes\":4096,\"target_mib\":1}", "not both"},
    {"/v1/vm/balloon", "{\"target_bytes\":1000}", "must be a multiple of 4096"},
    {"/v1/vm/balloon", "{\"target_bytes\":-4096}", "must be in 0..1125899906842624"},
    {"/v1/vm/balloon", "{\"target_bytes\":1125899906846720}", "must be in 0..1125899906842624"},
    {"/v1/vm/balloon", "{\"target_mib\":1073741825}", "field 'target_mib' must be in"},
    {"/v1/vm/balloon", "{\"target_mib\":\"1G\"}", "field 'target_mib' must be an integer"},
    {"/v1/vm/balloon", "{\"target\":1}", "unknown field 'target' (valid fields: target_bytes"},
};

static void test_bad_bodies(struct fake *f)
{
    int before = f->calls[OP_PAUSE] + f->calls[OP_SHUTDOWN] + f->calls[OP_BSET];

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        int status = call("PUT", bad_cases[i].path, bad_cases[i].body);

        if (status != 400 || !body_has(bad_cases[i].want))
            fprintf(stderr, "  case %zu (%s): status %d\n", i, bad_cases[i].body, status);
        CHECK(status == 400);
        CHECK(last_body && !strncmp(last_body, "{\"error\":\"", 10));
    }
    /* A long unknown key is cut, and odd bytes in it never reach the message. */
    CHECK(call("PUT", "/v1/vm/state",
               "{\"\\u0001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}") ==
          400);
    CHECK(body_has("unknown field '?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"));
    /* None of them reached the VMM. */
    CHECK_EQ_U64(f->calls[OP_PAUSE] + f->calls[OP_SHUTDOWN] + f->calls[OP_BSET], before);
}

static void test_op_errors(struct fake *f)
{
    int describes;

    f->ret[OP_PAUSE] = -EBUSY;
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"pause\"}") == 409);
    CHECK(body_has("pause: not possible while the VM is paused"));
    f->ret[OP_PAUSE] = -EALREADY;
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"pause\"}") == 409);
    CHECK(body_has("pause: already done (the VM is paused)"));
    f->ret[OP_DESCRIBE] = -EIO; /* no state for the message: still a 409 */
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"pause\"}") == 409);
    CHECK(body_has("{\"error\":\"pause: already done\"}"));
    CHECK(call("GET", "/v1/vm", NULL) == 500);
    CHECK(body_has("describe failed: Input/output error"));
    f->ret[OP_DESCRIBE] = 0;
    f->ret[OP_PAUSE] = 0;

    f->ret[OP_BSET] = -ENODEV;
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_mib\":1}") == 409);
    CHECK(body_has("balloon: this VM has no balloon device (add --device balloon"));
    f->ret[OP_BSET] = -EINVAL;
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_mib\":1}") == 400);
    CHECK(body_has("balloon: the VM refused the value (is the target above the guest's RAM?)"));
    f->ret[OP_BSET] = -ENOMEM;
    CHECK(call("PUT", "/v1/vm/balloon", "{\"target_mib\":1}") == 500);
    CHECK(body_has("balloon failed: Cannot allocate memory"));
    f->ret[OP_BSET] = 0;
    f->ret[OP_BGET] = -ENODEV;
    CHECK(call("GET", "/v1/vm/balloon", NULL) == 409);
    f->ret[OP_BGET] = 0;
    f->ret[OP_RESET] = -ENOTSUP;
    CHECK(call("PUT", "/v1/vm/state", "{\"action\":\"reset\"}") == 501);
    CHECK(body_has("reset: not supported by this VMM"));
    f->ret[OP_RESET] = 0;

    /* A getter that fails after making its document: released (ASan's leak check). */
    f->out_on_error = true;
    f->ret[OP_STATS] = -EIO;
    CHECK(call("GET", "/v1/vm/stats", NULL) == 500);
    f->ret[OP_STATS] = 0;
    f->out_on_error = false;

    f->null_out = true;
    describes = f->calls[OP_DESCRIBE];
    CHECK(call("GET", "/v1/vm/stats", NULL) == 500);
    CHECK(body_has("stats: the VMM returned no data"));
    CHECK(call("GET", "/v1/vm", NULL) == 500);
    CHECK_EQ_U64(f->calls[OP_DESCRIBE], describes + 1);
    f->null_out = false;
}

static void test_missing_ops(void)
{
    static const struct control_ops none = {0};
    struct control_response r;

    control_handle(&none, NULL, "GET", "/v1/vm", NULL, 0, &r);
    CHECK(r.status == 501 && strstr(r.body, "describe: not supported"));
    control_response_free(&r);
    control_handle(&none, NULL, "PUT", "/v1/vm/state", "{\"action\":\"stop\"}", 17, &r);
    CHECK(r.status == 501 && strstr(r.body, "stop: not supported"));
    control_response_free(&r);
    control_handle(&none, NULL, "PUT", "/v1/vm/balloon", "{\"target_mib\":1}", 16, &r);
    CHECK(r.status == 501);
    control_response_free(&r);
    /* Errors that need describe for their message survive its absence. */
    control_handle(&none, NULL, "PUT", "/v1/vm/state", "{\"action\":\"pause\"}", 18, &r);
    CHECK(r.status == 501);
    control_response_free(&r);
    /* The request core's own 413, for callers that do not cap bodies themselves. */
    control_handle(&fake_ops, NULL, "PUT", "/v1/vm/state", "", CONTROL_BODY_MAX + 1, &r);
    CHECK(r.status == 413);
    control_response_free(&r);
    CHECK(!strcmp(control_action_name(CONTROL_ACTION_SHUTDOWN), "shutdown"));
    CHECK(control_action_name(CONTROL_ACTION_COUNT) == NULL);
    CHECK(control_action_name((enum control_action) - 1) == NULL);
}

/* ---- GET /v1/vm/snapshots, PUT /v1/vm/snapshot-delete (through the request core) ---- */

static char snap_file[64];
static int snap_ret;

static int snap_list(void *vm, json_t **out)
{
    *out = json_loads("{\"writable_disks\":1,\"snapshots\":[{\"file\":\"/s/a\",\"taken\":5,"
                      "\"bytes\":9,\"disks\":[0],\"parent\":null}]}",
                      0, NULL);
    return snap_ret;
}

static int snap_delete(void *vm, const char *file, json_t **out, char *err)
{
    snprintf(snap_file, sizeof(snap_file), "%s", file);
    if (snap_ret) {
        snprintf(err, CONTROL_ERR_LEN, "%s: cannot delete it: /c/disk.qcow2 depends on it", file);
        return snap_ret;
    }
    *out = json_pack("{s:s, s:s}", "file", file, "action", "merged");
    return 0;
}

static void test_snapshot_routes(void)
{
    static const struct control_ops ops = {.snapshots = snap_list, .snapshot_delete = snap_delete};
    static const struct control_ops none = {0};
    static const struct {
        const char *body, *want;
    } bad[] = {
        {"", "empty request body"},
        {"{}", "missing field 'file' (the snapshot to delete)"},
        {"{\"file\":\"\"}", "missing field 'file'"},
        {"{\"file\":5}", "field 'file' must be a string"},
        {"{\"file\":\"/a\",\"force\":true}", "unknown field 'force'"},
    };
    struct control_response r;
    const char *body = "{\"file\":\"/snaps/a.tsr\"}";

    snap_ret = 0;
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshots", NULL, 0, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"file\":\"/s/a\"") && strstr(r.body, "null"));
    control_response_free(&r);
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshots", "{}", 2, &r);
    CHECK(r.status == 400 && strstr(r.body, "takes no request body"));
    control_response_free(&r);
    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshots", body, strlen(body), &r);
    CHECK(r.status == 405 && !strcmp(r.allow, "GET"));
    control_response_free(&r);

    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot-delete", body, strlen(body), &r);
    CHECK(r.status == 200 && strstr(r.body, "\"action\":\"merged\""));
    CHECK(!strcmp(snap_file, "/snaps/a.tsr"));
    control_response_free(&r);
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshot-delete", NULL, 0, &r);
    CHECK(r.status == 405 && !strcmp(r.allow, "PUT"));
    control_response_free(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snap_file[0] = '\0';
        control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot-delete", bad[i].body,
                       strlen(bad[i].body), &r);
        CHECK(r.status == 400 && strstr(r.body, bad[i].want) && !snap_file[0]);
        control_response_free(&r);
    }
    /* The op's own message, with the status its errno says. */
    snap_ret = -EBUSY;
    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot-delete", body, strlen(body), &r);
    CHECK(r.status == 409 && strstr(r.body, "snapshot-delete: /snaps/a.tsr: cannot delete it"));
    control_response_free(&r);
    snap_ret = -EINVAL;
    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot-delete", body, strlen(body), &r);
    CHECK(r.status == 400 && strstr(r.body, "/c/disk.qcow2"));
    control_response_free(&r);
    snap_ret = -EIO;
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshots", NULL, 0, &r);
    CHECK(r.status == 500);
    control_response_free(&r);
    snap_ret = 0;
    control_handle(&none, NULL, "GET", "/v1/vm/snapshots", NULL, 0, &r);
    CHECK(r.status == 501 && strstr(r.body, "snapshots: not supported"));
    control_response_free(&r);
    control_handle(&none, NULL, "PUT", "/v1/vm/snapshot-delete", body, strlen(body), &r);
    CHECK(r.status == 501);
    control_response_free(&r);
}

/* ---- PUT, GET and DELETE /v1/vm/migrate (through the request core) ---- */

static struct control_migrate_req mig_req;
static char mig_strs[4][64]; /* uri, tls_cert, tls_key, tls_ca as the op saw them */
static int mig_calls, mig_cancel_ret;

static int mig_start(void *vm, const struct control_migrate_req *req, char *err)
{
    mig_req = *req;
    snprintf(mig_strs[0], sizeof(mig_strs[0]), "%s", req->uri);
    snprintf(mig_strs[1], sizeof(mig_strs[1]), "%s", req->tls_cert ? req->tls_cert : "-");
    snprintf(mig_strs[2], sizeof(mig_strs[2]), "%s", req->tls_key ? req->tls_key : "-");
    snprintf(mig_strs[3], sizeof(mig_strs[3]), "%s", req->tls_ca ? req->tls_ca : "-");
    mig_calls++;
    return 0;
}

static int mig_cancel(void *vm, char *err)
{
    if (mig_cancel_ret)
        snprintf(err, CONTROL_ERR_LEN, "no migration is running");
    return mig_cancel_ret;
}

static void test_migrate_routes(void)
{
    static const struct control_ops ops = {.migrate = mig_start, .migrate_cancel = mig_cancel};
    static const struct control_ops none = {0};
    static const struct {
        const char *body, *want;
    } bad[] = {
        {"{\"mode\":\"live\"}", "missing field 'uri'"},
        {"{\"uri\":\"tls:h:1\",\"progress_timeout_s\":0}", "progress_timeout_s"},
        {"{\"uri\":\"tls:h:1\",\"progress_timeout_s\":3601}", "progress_timeout_s"},
        {"{\"uri\":\"tls:h:1\",\"tls_cert\":5}", "field 'tls_cert' must be a string"},
        {"{\"uri\":\"tls:h:1\",\"tls_pass\":\"x\"}", "unknown field 'tls_pass'"},
    };
    const char *tls = "{\"uri\":\"tls:10.0.0.2:4444\",\"tls_cert\":\"/c.pem\","
                      "\"tls_key\":\"/k.pem\",\"tls_ca\":\"/ca.pem\",\"progress_timeout_s\":7}";
    const char *plain = "{\"uri\":\"tcp:10.0.0.2:4444\"}";
    struct control_response r;

    control_handle(&ops, NULL, "PUT", "/v1/vm/migrate", tls, strlen(tls), &r);
    CHECK(r.status == 204 && mig_calls == 1);
    CHECK(!strcmp(mig_strs[0], "tls:10.0.0.2:4444") && !strcmp(mig_strs[1], "/c.pem") &&
          !strcmp(mig_strs[2], "/k.pem") && !strcmp(mig_strs[3], "/ca.pem"));
    CHECK(mig_req.progress_timeout_s == 7 && !strcmp(mig_req.mode, "live"));
    control_response_free(&r);
    /* Defaults: the progress timeout, no TLS files. */
    control_handle(&ops, NULL, "PUT", "/v1/vm/migrate", plain, strlen(plain), &r);
    CHECK(r.status == 204 && mig_calls == 2);
    CHECK(mig_req.progress_timeout_s == CONTROL_MIGRATE_TIMEOUT_DEFAULT);
    CHECK(!strcmp(mig_strs[1], "-") && !strcmp(mig_strs[2], "-") && !strcmp(mig_strs[3], "-"));
    control_response_free(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control_handle(&ops, NULL, "PUT", "/v1/vm/migrate", bad[i].body, strlen(bad[i].body), &r);
        CHECK(r.status == 400 && strstr(r.body, bad[i].want) && mig_calls == 2);
        control_response_free(&r);
    }

    /* Cancel: 204, or the op's 409 with its message; no body. */
    mig_cancel_ret = 0;
    control_handle(&ops, NULL, "DELETE", "/v1/vm/migrate", NULL, 0, &r);
    CHECK(r.status == 204);
    control_response_free(&r);
    mig_cancel_ret = -EALREADY;
    control_handle(&ops, NULL, "DELETE", "/v1/vm/migrate", NULL, 0, &r);
    CHECK(r.status == 409 && strstr(r.body, "migrate-cancel: no migration is running"));
    control_response_free(&r);
    control_handle(&ops, NULL, "DELETE", "/v1/vm/migrate", "{}", 2, &r);
    CHECK(r.status == 400 && strstr(r.body, "takes no request body"));
    control_response_free(&r);
    control_handle(&none, NULL, "DELETE", "/v1/vm/migrate", NULL, 0, &r);
    CHECK(r.status == 501);
    control_response_free(&r);
    control_handle(&ops, NULL, "POST", "/v1/vm/migrate", NULL, 0, &r);
    CHECK(r.status == 405 && strstr(r.allow, "DELETE"));
    control_response_free(&r);
}

/* ---- PUT /v1/vm/disks/{index}/limits and /v1/vm/nics/{index}/limits ---- */

static char lim_type[8];
static unsigned lim_index, lim_calls;

/* Index 3 does not exist; a key "bad" is refused by the VMM; otherwise the body comes back. */
static int lim_set(void *vm, const char *type, unsigned index, json_t *changes, json_t **out,
                   char *err)
{
    lim_calls++;
    snprintf(lim_type, sizeof(lim_type), "%s", type);
    lim_index = index;
    if (index == 3) {
        snprintf(err, CONTROL_ERR_LEN, "disks[3]: this VM has 1 disk");
        return -ENODEV;
    }
    if (json_object_get(changes, "bad")) {
        snprintf(err, CONTROL_ERR_LEN, "disks[0].bad: unknown key");
        return -EINVAL;
    }
    *out = json_deep_copy(changes);
    return 0;
}

static void test_limits_routes(void)
{
    static const struct control_ops ops = {.limits_set = lim_set};
    static const struct control_ops none = {0};
    static const char *const not_paths[] = {
        "/v1/vm/disks/01/limits", "/v1/vm/disks/x/limits", "/v1/vm/disks//limits",
        "/v1/vm/disks/0/limits/", "/v1/vm/disks/0/limit",  "/v1/vm/disks/1000/limits",
        "/v1/vm/disks/64/limits", "/v1/vm/nic/0/limits",   "/v1/vm/disks/0",
    };
    static const struct {
        const char *body, *want;
    } bad[] = {
        {"[1]", "must be a JSON object"},
        {"{\"bps\": true}", "field 'bps' must be an integer >= 0"},
        {"{\"iops\": -5}", "field 'iops' must be an integer >= 0"},
        {"{\"iops\": 1.5}", "field 'iops' must be an integer >= 0"},
        {"{\"iops\": 1, \"iops\": 2}", "not valid JSON"},
        {"{\"bps\": ", "not valid JSON"},
        {"", "empty request body"},
    };
    const char *body = "{\"bps\": \"10M\", \"iops\": 500, \"iops_rd\": null}";
    struct control_response r;
    unsigned calls;

    control_handle(&ops, NULL, "PUT", "/v1/vm/disks/0/limits", body, strlen(body), &r);
    CHECK(r.status == 200 && !strcmp(lim_type, "disk") && lim_index == 0);
    CHECK(r.body && strstr(r.body, "\"iops\":500") && strstr(r.body, "\"bps\":\"10M\""));
    control_response_free(&r);
    control_handle(&ops, NULL, "PUT", "/v1/vm/nics/12/limits", "{\"rx_bps\": 0}", 13, &r);
    CHECK(r.status == 200 && !strcmp(lim_type, "net") && lim_index == 12);
    control_response_free(&r);
    control_handle(&ops, NULL, "PUT", "/v1/vm/disks/3/limits", "{\"iops\": 1}", 11, &r);
    CHECK(r.status == 404 && strstr(r.body, "this VM has 1 disk"));
    control_response_free(&r);
    control_handle(&ops, NULL, "PUT", "/v1/vm/disks/0/limits", "{\"bad\": 1}", 10, &r);
    CHECK(r.status == 400 && strstr(r.body, "disks[0].bad: unknown key"));
    control_response_free(&r);
    calls = lim_calls;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        control_handle(&ops, NULL, "PUT", "/v1/vm/disks/0/limits", bad[i].body, strlen(bad[i].body),
                       &r);
        CHECK(r.status == 400 && r.body && strstr(r.body, bad[i].want));
        if (r.status != 400 || !r.body || !strstr(r.body, bad[i].want))
            fprintf(stderr, "  limits body %zu: %u %s\n", i, r.status, r.body ? r.body : "");
        control_response_free(&r);
    }
    CHECK(lim_calls == calls); /* refused before the VMM saw them */
    for (size_t i = 0; i < sizeof(not_paths) / sizeof(not_paths[0]); i++) {
        control_handle(&ops, NULL, "PUT", not_paths[i], "{}", 2, &r);
        CHECK(r.status == 404);
        control_response_free(&r);
    }
    control_handle(&ops, NULL, "GET", "/v1/vm/disks/0/limits", NULL, 0, &r);
    CHECK(r.status == 405 && !strcmp(r.allow, "PUT"));
    control_response_free(&r);
    control_handle(&none, NULL, "PUT", "/v1/vm/disks/0/limits", "{\"iops\": 1}", 11, &r);
    CHECK(r.status == 501);
    control_response_free(&r);
}

/* ---- PUT /v1/vm/snapshot started on a worker: 202, then GET /v1/vm/snapshot ---- */

static int job_start_ret;

static int job_snapshot(void *vm, const char *file, json_t **out, char *err)
{
    if (job_start_ret < 0) {
        snprintf(err, CONTROL_ERR_LEN, "%s: exists; choose a new name", file);
        return job_start_ret;
    }
    *out = json_pack("{s:s, s:s, s:s}", "status", "active", "action", "snapshot", "file", file);
    return CONTROL_STARTED;
}

static int job_status(void *vm, json_t **out)
{
    *out = json_pack("{s:s, s:{s:i}}", "status", "completed", "result", "disks", 1);
    return 0;
}

static void test_snapshot_job_routes(void)
{
    static const struct control_ops ops = {.snapshot = job_snapshot, .snapshot_status = job_status};
    static const struct control_ops none = {0};
    const char *body = "{\"file\":\"/snaps/b.tsr\"}";
    struct control_response r;

    job_start_ret = 0;
    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot", body, strlen(body), &r);
    CHECK(r.status == 202 && strstr(r.body, "\"status\":\"active\"") &&
          strstr(r.body, "/snaps/b.tsr"));
    control_response_free(&r);
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshot", NULL, 0, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"completed\"") && strstr(r.body, "\"disks\":1"));
    control_response_free(&r);
    control_handle(&ops, NULL, "GET", "/v1/vm/snapshot", "{}", 2, &r);
    CHECK(r.status == 400);
    control_response_free(&r);
    /* A target that exists is a conflict, with the op's message. */
    job_start_ret = -EEXIST;
    control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot", body, strlen(body), &r);
    CHECK(r.status == 409 && strstr(r.body, "snapshot: /snaps/b.tsr: exists"));
    control_response_free(&r);
    control_handle(&none, NULL, "GET", "/v1/vm/snapshot", NULL, 0, &r);
    CHECK(r.status == 501);
    control_response_free(&r);
    control_handle(&ops, NULL, "DELETE", "/v1/vm/snapshot", NULL, 0, &r);
    CHECK(r.status == 405 && !strcmp(r.allow, "PUT, GET"));
    control_response_free(&r);
}

static void test_paths_and_methods(void)
{
    char *resp;

    CHECK(call("GET", "/v1/vms", NULL) == 404);
    CHECK(body_has("no such path '/v1/vms'"));
    CHECK(call("GET", "/v1/vm/", NULL) == 404);
    CHECK(call("GET", "/", NULL) == 404);
    CHECK(call("GET", "/v1/vm%2Fstats", NULL) == 404);
    CHECK(call("GET", "/v1/vm/stats%00", NULL) == 404);
    CHECK(call("GET", "/v1/VM", NULL) == 404);
    CHECK(call("DELETE", "/v1/vm", NULL) == 405);
    CHECK(body_has("DELETE /v1/vm: method not allowed (use GET)"));
    CHECK(call("POST", "/v1/vm/state", "{\"action\":\"pause\"}") == 405);
    CHECK(body_has("(use PUT)"));
    CHECK(call("GET", "/v1/vm/state", NULL) == 405);
    CHECK(call("PATCH", "/v1/vm/balloon", "{}") == 405);
    CHECK(body_has("(use GET, PUT)"));
    CHECK(call("get", "/v1/vm", NULL) == 405);

    /* 405 carries Allow; JSON answers carry their type. */
    CHECK(raw_req("DELETE /v1/vm/balloon HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                  &resp) == 405);
    CHECK(resp && strstr(resp, "\r\nAllow: GET, PUT\r\n"));
    free(resp);
    CHECK(raw_req("GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &resp) == 200);
    CHECK(resp && strstr(resp, "\r\nContent-Type: application/json\r\n"));
    free(resp);

    CHECK(raw_req("GET /v1/vm?verbose=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &resp) ==
          400);
    CHECK(resp && strstr(resp, "query parameters are not supported (got 'verbose')"));
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 18\r\n\r\n{\"action\":\"pause\"}",
                  &resp) == 415);
    CHECK(resp && strstr(resp, "Content-Type must be application/json (got 'text/plain')"));
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/json; charset=utf-8\r\nContent-Length: 18\r\n\r\n"
                  "{\"action\":\"pause\"}",
                  &resp) == 204);
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/jsonx\r\nContent-Length: 18\r\n\r\n"
                  "{\"action\":\"pause\"}",
                  &resp) == 415);
    free(resp);
    /* No Content-Type at all is accepted (curl --data-binary sets one; others may not). */
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Length: 18\r\n\r\n{\"action\":\"pause\"}",
                  &resp) == 204);
    free(resp);
    CHECK(raw_req("GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Length: 2\r\n\r\n{}",
                  &resp) == 400);
    CHECK(resp && strstr(resp, "GET /v1/vm takes no request body"));
    free(resp);
    /* Garbage instead of HTTP: an error status or a closed connection, never a crash. */
    resp = raw("\x01\x02\x03 garbage\r\n\r\n", 16);
    CHECK(resp && (!*resp || raw_status(resp) >= 400));
    free(resp);
    CHECK(call("GET", "/v1/vm", NULL) == 200);
}

static char *make_body(size_t size)
{
    static const char head[] = "{\"action\":\"pause\"}";
    char *b = malloc(size + 1);

    if (!b)
        return NULL;
    memset(b, ' ', size);
    memcpy(b, head, sizeof(head) - 1);
    b[size] = '\0';
    return b;
}

static void test_body_limits(struct fake *f)
{
    char *body, *req, *resp;
    int pauses = f->calls[OP_PAUSE], n;

    /* Exactly the limit is fine; one byte more is a 413 without calling the VMM. */
    body = make_body(CONTROL_BODY_MAX);
    CHECK(body && call("PUT", "/v1/vm/state", body) == 204);
    free(body);
    body = make_body(CONTROL_BODY_MAX + 1);
    CHECK(body && call("PUT", "/v1/vm/state", body) == 413);
    CHECK(body_has("request body is 65537 bytes; the limit is 65536"));
    free(body);
    CHECK_EQ_U64(f->calls[OP_PAUSE], pauses + 1);

    /* A huge Content-Length is refused from the headers alone, before the body is sent. */
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Length: 99999999999\r\n\r\n",
                  &resp) == 413);
    free(resp);

    /* Chunked has no length up front: counted as it arrives, 413 at the end. */
    req = malloc(200 + 2 * CONTROL_BODY_MAX);
    n = sprintf(req, "PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20; i++) {
        n += sprintf(req + n, "1000\r\n");
        memset(req + n, ' ', 0x1000);
        n += 0x1000;
        n += sprintf(req + n, "\r\n");
    }
    n += sprintf(req + n, "0\r\n\r\n");
    resp = raw(req, (size_t)n);
    CHECK(raw_status(resp) == 413);
    free(resp);
    /* A small chunked body is served. */
    resp =
        raw("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Transfer-Encoding: chunked\r\n\r\n8\r\n{\"action\r\na\r\n\":\"pause\"}\r\n0\r\n\r\n",
            strlen("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n8\r\n{\"action\r\na\r\n\":\"pause\"}"
                   "\r\n0\r\n\r\n"));
    CHECK(raw_status(resp) == 204);
    free(resp);

    /* Nesting deep enough to exhaust a recursive parser: refused, not a crash. */
    body = malloc(60001);
    memset(body, '[', 60000);
    body[60000] = '\0';
    CHECK(call("PUT", "/v1/vm/state", body) == 400);
    CHECK(body_has("not valid JSON"));
    free(body);

    /* Two requests on one kept-alive connection: each gets its own state and answer. */
    resp = raw("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}"
               "GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
               strlen("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}"
                      "GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    CHECK(raw_status(resp) == 400);
    CHECK(resp && strstr(resp, "\r\n\r\n{\"state\":\"paused\"") && strstr(resp, "HTTP/1.1 200 OK"));
    free(resp);

    /* Headers beyond the per-connection memory: refused by libmicrohttpd, server unharmed. */
    n = sprintf(req, "GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
    memset(req + n, 'a', 40000);
    n += 40000;
    n += sprintf(req + n, "\r\n\r\n");
    resp = raw(req, (size_t)n);
    CHECK(resp && (!*resp || raw_status(resp) >= 400));
    free(resp);
    free(req);
    CHECK(call("GET", "/v1/vm", NULL) == 200);
}

struct worker {
    pthread_t thread;
    int id, ok;
};

#define WORKERS      8
#define WORKER_CALLS 40

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char err[CONTROL_CLIENT_ERR_LEN];

    for (int i = 0; i < WORKER_CALLS; i++) {
        struct control_client_reply r;
        bool get = (i + w->id) % 2;
        int ret = control_client_call(sock_path, get ? "GET" : "PUT",
                                      get ? "/v1/vm/stats" : "/v1/vm/state",
                                      get ? NULL : "{\"action\":\"resume\"}", 10, &r, err);

        if (!ret && r.status == (get ? 200u : 204u))
            w->ok++;
        else
            fprintf(stderr, "  worker %d call %d: %d %s\n", w->id, i, ret, ret ? err : "");
        if (!ret)
            control_client_reply_free(&r);
    }
    return NULL;
}

static void test_concurrency(struct fake *f)
{
    struct worker w[WORKERS];
    int resumes = f->calls[OP_RESUME], stats = f->calls[OP_STATS], ok = 0;

    f->delay_us = 200;
    atomic_store(&f->max_inside, 0);
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){.id = i};
        pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(w[i].thread, NULL);
        ok += w[i].ok;
    }
    f->delay_us = 0;
    CHECK_EQ_U64(ok, WORKERS * WORKER_CALLS);
    CHECK_EQ_U64(f->calls[OP_RESUME] - resumes, WORKERS * WORKER_CALLS / 2);
    CHECK_EQ_U64(f->calls[OP_STATS] - stats, WORKERS * WORKER_CALLS / 2);
    CHECK_EQ_U64(atomic_load(&f->max_inside), 1); /* serialized */
}

static void test_connection_limit(void)
{
    static const char req[] = "GET /v1/vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct timeval tv = {.tv_usec = 300000};
    int fds[CONTROL_CONN_MAX], extra;
    char buf[1024];
    size_t got = 0;
    ssize_t n;

    for (int i = 0; i < CONTROL_CONN_MAX; i++)
        fds[i] = connect_sock(sock_path);
    usleep(100000);
    /* Every slot is held by an idle client: one more waits in the listen backlog, unserved. */
    extra = connect_sock(sock_path);
    CHECK(extra >= 0);
    CHECK(send(extra, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)sizeof(req) - 1);
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CHECK(recv(extra, buf, sizeof(buf), 0) < 0 && errno == EAGAIN);
    /* A slot frees: the waiting client is served. */
    for (int i = 0; i < CONTROL_CONN_MAX; i++) {
        CHECK(fds[i] >= 0);
        if (fds[i] >= 0)
            close(fds[i]);
    }
    tv.tv_sec = 5;
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < sizeof(buf) - 1 && (n = recv(extra, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(extra);
    CHECK(raw_status(buf) == 200);
}

static int count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A message an op builds from a long non-ASCII path is cut to CONTROL_ERR_LEN inside a
 * character: the answer is still the op's 400, as valid JSON, not a 500. */
static void test_utf8_messages(void)
{
    static const struct control_ops ops = {.snapshot_delete = snap_delete};
    struct control_response r;
    char body[2048];
    json_t *doc;

    /* 0..3 ASCII bytes before the two-byte characters move the cut onto each byte. */
    for (int k = 0; k < 4; k++) {
        int n = sprintf(body, "{\"file\":\"/%.*s", k, "xxx");

        for (int i = 0; i < 400; i++)
            n += sprintf(body + n, "\xc3\xa9"); /* U+00E9 */
        sprintf(body + n, "\"}");
        snap_ret = -EINVAL;
        control_handle(&ops, NULL, "PUT", "/v1/vm/snapshot-delete", body, strlen(body), &r);
        CHECK(r.status == 400);
        doc = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        CHECK(doc && json_is_string(json_object_get(doc, "error")));
        CHECK(r.body && strstr(r.body, "\xc3\xa9\xc3\xa9"));
        json_decref(doc);
        control_response_free(&r);
    }
    snap_ret = 0;
}

/* Request framing a client controls: a NUL inside the path, transfer and content codings. */
static void test_hostile_framing(struct fake *f)
{
    static const char nul_get[] = "GET /v1/vm\0/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    static const char nul_put[] =
        "PUT /v1/vm/state\0/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Length: 18\r\n\r\n{\"action\":\"pause\"}";
    int describes = f->calls[OP_DESCRIBE], pauses = f->calls[OP_PAUSE];
    double t;
    char *resp;

    resp = raw(nul_get, sizeof(nul_get) - 1);
    CHECK(raw_status(resp) == 400);
    CHECK(resp && strstr(resp, "NUL byte"));
    free(resp);
    resp = raw(nul_put, sizeof(nul_put) - 1);
    CHECK(raw_status(resp) == 400);
    free(resp);
    CHECK_EQ_U64(f->calls[OP_DESCRIBE], describes);
    CHECK_EQ_U64(f->calls[OP_PAUSE], pauses);

    /* A transfer coding we cannot read is answered at once, not after the idle timeout. */
    t = now_s();
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00",
                  &resp) == 501);
    CHECK(now_s() - t < 4.0);
    CHECK(resp && strstr(resp, "Transfer-Encoding 'gzip' is not supported"));
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                  &resp) == 501);
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "12\r\n{\"action\":\"pause\"}\r\n0\r\n\r\n",
                  &resp) == 204);
    free(resp);
    CHECK(raw_req("PUT /v1/vm/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                  "Content-Length: 18\r\n\r\n{\"action\":\"pause\"}",
                  &resp) == 415);
    CHECK(resp && strstr(resp, "Content-Encoding 'gzip' is not supported"));
    free(resp);
    CHECK_EQ_U64(f->calls[OP_PAUSE], pauses + 1);
}

/* Slow clients: another process holds 20 connections that each send a byte now and then and
 * never finish a request; a describe from here is still answered at once, and a connection
 * that dribbles is closed once it has had CONTROL_REQUEST_TIMEOUT_S for its request. */
static void test_slow_clients(void)
{
    static const char req[] = "GET /v1/vm HTTP/1.1\r\nHost: x\r\n";
    int ready[2], fd, st;
    double t, open_for;
    pid_t child;
    char b;

    CHECK(pipe(ready) == 0);
    child = fork();
    if (child == 0) {
        int fds[20];

        for (int i = 0; i < 20; i++)
            fds[i] = connect_sock(sock_path);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (int s = 0; s < 60; s++) {
            for (int i = 0; i < 20; i++)
                send(fds[i], req + s % (sizeof(req) - 1), 1, MSG_NOSIGNAL);
            usleep(500000);
        }
        _exit(0);
    }
    CHECK(child > 0);
    CHECK(read(ready[0], &b, 1) == 1);
    close(ready[0]);
    close(ready[1]);
    usleep(300000);
    t = now_s();
    CHECK(call("GET", "/v1/vm", NULL) == 200);
    CHECK(now_s() - t < 3.0);
    kill(child, SIGKILL);
    waitpid(child, &st, 0);

    /* One byte every half second keeps libmicrohttpd's idle timeout from ever firing. */
    fd = connect_sock(sock_path);
    CHECK(fd >= 0);
    t = now_s();
    for (size_t i = 0; fd >= 0 && now_s() - t < CONTROL_REQUEST_TIMEOUT_S + 10; i++) {
        struct pollfd pfd = {fd, POLLIN, 0};

        if (send(fd, req + i % (sizeof(req) - 1), 1, MSG_NOSIGNAL) != 1 || poll(&pfd, 1, 500) != 0)
            break;
    }
    open_for = now_s() - t;
    CHECK(open_for > CONTROL_REQUEST_TIMEOUT_S - 1 && open_for < CONTROL_REQUEST_TIMEOUT_S + 5);
    if (fd >= 0)
        close(fd);
    CHECK(call("GET", "/v1/vm", NULL) == 200);
}

static void test_stop_with_client(struct fake *f)
{
    char err[CONTROL_ERR_LEN], buf[64];
    struct control *c;
    int fd, fds_before = count_fds();
    double t;

    CHECK(control_start(sock_path, &fake_ops, f, &c, err) == 0);
    fd = connect_sock(sock_path);
    CHECK(fd >= 0);
    /* Half a request: the API thread is waiting for the rest when we stop. */
    CHECK(send(fd, "PUT /v1/vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"ac", 52,
               MSG_NOSIGNAL) == 52);
    usleep(50000);
    t = now_s();
    control_stop(c);
    CHECK(now_s() - t < 2.0);
    CHECK(recv(fd, buf, sizeof(buf), 0) <= 0); /* closed, not answered */
    close(fd);
    CHECK(access(sock_path, F_OK) != 0);   /* socket removed */
    CHECK_EQ_U64(count_fds(), fds_before); /* and the listening fd closed */
    CHECK(call("GET", "/v1/vm", NULL) == -ECONNREFUSED);
    control_stop(NULL);
}

static void test_socket_files(struct fake *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char err[CONTROL_ERR_LEN], longpath[200];
    struct control *c, *c2;
    struct stat st;
    int fd;

    /* Stale: bound once, nobody listening. Replaced. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(fd);
    CHECK(stat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK(control_start(sock_path, &fake_ops, f, &c, err) == 0);
    CHECK(call("GET", "/v1/vm", NULL) == 200);

    /* Live: a second server on the same path is refused; the first is unharmed. */
    CHECK(control_start(sock_path, &fake_ops, f, &c2, err) == -EADDRINUSE);
    CHECK(strstr(err, "another process is serving on this socket") != NULL);
    CHECK(call("GET", "/v1/vm", NULL) == 200);

    /* The path taken over by someone else meanwhile: stop leaves their file alone. */
    unlink(sock_path);
    fd = open(sock_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "data", 4) == 4);
    close(fd);
    control_stop(c);
    CHECK(stat(sock_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);

    /* Not a socket: refused, left as it was. */
    CHECK(control_start(sock_path, &fake_ops, f, &c, err) == -EEXIST);
    CHECK(strstr(err, "exists and is not a socket; refusing to replace it") != NULL);
    CHECK(stat(sock_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
    unlink(sock_path);

    /* A symlink to a socket is not a socket either. */
    CHECK(symlink("/nonexistent", sock_path) == 0);
    CHECK(control_start(sock_path, &fake_ops, f, &c, err) == -EEXIST);
    unlink(sock_path);

    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    CHECK(control_start(longpath, &fake_ops, f, &c, err) == -ENAMETOOLONG);
    CHECK(strstr(err, "must be shorter than 108 bytes") != NULL);
    CHECK(control_start("", &fake_ops, f, &c, err) == -EINVAL);
    CHECK(control_start("/nonexistent-dir/api.sock", &fake_ops, f, &c, err) == -ENOENT);
    CHECK(strstr(err, "/nonexistent-dir/api.sock: bind:") != NULL);
}

/* ---- Client tests ---- */

static void test_client_build(void)
{
    char *req;
    size_t len;

    CHECK(control_client_build("GET", "/v1/vm", NULL, &req, &len) == 0);
    CHECK(!strcmp(req, "GET /v1/vm HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tessera\r\n"
                       "Accept: application/json\r\nConnection: close\r\n\r\n"));
    CHECK_EQ_U64(len, strlen(req));
    free(req);
    CHECK(control_client_build("PUT", "/v1/vm/state", "{\"action\":\"stop\"}", &req, &len) == 0);
    CHECK(strstr(req, "\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
                      "{\"action\":\"stop\"}") != NULL);
    CHECK_EQ_U64(len, strlen(req));
    free(req);
    CHECK(control_client_build("GET", "/v1/vm x", NULL, &req, &len) == -EINVAL);
    CHECK(control_client_build("GET", "/v1\r\nX: y", NULL, &req, &len) == -EINVAL);
    CHECK(control_client_build("GET", "v1/vm", NULL, &req, &len) == -EINVAL);
    CHECK(control_client_build("", "/v1/vm", NULL, &req, &len) == -EINVAL);
}

struct parse_case {
    const char *resp;
    bool eof;
    int ret;
    unsigned status;
    const char *body;
};

static const struct parse_case parse_cases[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 0, 200, "{}"},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra", false, 0, 200, "{}"},
    {"HTTP/1.1 200 OK\r\ncontent-length:  2 \r\n\r\n{}", false, 0, 200, "{}"},
    {"HTTP/1.0 204 No Content\r\n\r\n", false, 0, 204, ""},
    {"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, 0, 404, ""},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, 0, 200,
     "x"},
    {"HTTP/1.1 200 OK\r\n\r\nuntil close", true, 0, 200, "until close"},
    {"HTTP/1.1 200 OK\r\n\r\nuntil close", false, -EAGAIN, 0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
     false, 0, 200, "abcde"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
     false, 0, 200, "0123456789"},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", false, -EAGAIN, 0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", true, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", false, -EPROTO,
     0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", false,
     -EMSGSIZE, 0, NULL},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", false, -EPROTO,
     0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false, -EMSGSIZE, 0,
     NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, -EAGAIN, 0, NULL},
    {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\n: x\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/2 200 OK\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 600 Nope\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 20 OK\r\n\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200OK\r\n\r\n", false, -EPROTO, 0, NULL},
    {"SSH-2.0-OpenSSH\r\n", false, -EPROTO, 0, NULL},
    {"HTTP/1.1 200 OK\r\n", false, -EAGAIN, 0, NULL},
    {"HTTP/1.1 200 OK\r\n", true, -EPROTO, 0, NULL},
    {"HTT", false, -EAGAIN, 0, NULL},
    {"", true, -ECONNRESET, 0, NULL},
    {"", false, -EAGAIN, 0, NULL},
};

static void test_client_parse(void)
{
    struct control_client_reply r;
    char err[CONTROL_CLIENT_ERR_LEN];
    char *big;
    int ret;

    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *pc = &parse_cases[i];

        err[0] = '\0';
        ret = control_client_parse(pc->resp, strlen(pc->resp), pc->eof, &r, err);
        if (ret != pc->ret)
            fprintf(stderr, "  parse case %zu: ret %d, want %d (%s)\n", i, ret, pc->ret, err);
        CHECK(ret == pc->ret);
        if (ret == 0) {
            CHECK(r.status == pc->status && r.len == strlen(pc->body) && !strcmp(r.body, pc->body));
            control_client_reply_free(&r);
        } else if (ret != -EAGAIN) {
            CHECK(err[0] != '\0');
        }
    }

    /* Arriving one byte at a time: -EAGAIN on every prefix, then the whole. */
    {
        static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        bool all_again = true;

        for (size_t n = 0; n < sizeof(resp) - 1; n++)
            all_again &= control_client_parse(resp, n, false, &r, err) == -EAGAIN;
        CHECK(all_again);
        CHECK(control_client_parse(resp, sizeof(resp) - 1, false, &r, err) == 0);
        CHECK(r.len == 7 && !strcmp(r.body, "{\"a\":1}"));
        control_client_reply_free(&r);
    }

    /* Headers that never end: bounded. */
    big = malloc(CONTROL_CLIENT_HEAD_MAX + 100);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', CONTROL_CLIENT_HEAD_MAX + 80);
    CHECK(control_client_parse(big, CONTROL_CLIENT_HEAD_MAX + 100, false, &r, err) == -EMSGSIZE);
    free(big);
    CHECK(control_client_parse("HTTP/1.1 200 OK\r\nContent-Length: 4194305\r\n\r\n", 43, false, &r,
                               err) == -EMSGSIZE);
}

static void test_client_misc(void)
{
    struct control_client_reply r = {409, NULL, 0};
    char buf[CONTROL_CLIENT_ERR_LEN], err[CONTROL_CLIENT_ERR_LEN];
    uint64_t v = 0;

    r.body = strdup("{\"error\":\"pause: \\u001b[31mnot possible\"}");
    r.len = strlen(r.body);
    CHECK(!strcmp(control_client_error(&r, buf, sizeof(buf)), "pause: ?[31mnot possible"));
    free(r.body);
    r.body = strdup("<html>oops</html>");
    r.len = strlen(r.body);
    CHECK(!strcmp(control_client_error(&r, buf, sizeof(buf)), "HTTP 409"));
    free(r.body);
    r.body = NULL;
    r.len = 0;
    CHECK(!strcmp(control_client_error(&r, buf, sizeof(buf)), "HTTP 409"));

    CHECK(control_client_parse_size("128M", &v) == 0 && v == 128ull << 20);
    CHECK(control_client_parse_size("1G", &v) == 0 && v == 1ull << 30);
    CHECK(control_client_parse_size("2g", &v) == 0 && v == 2ull << 30);
    CHECK(control_client_parse_size("512", &v) == 0 && v == 512ull << 20);
    CHECK(control_client_parse_size("4K", &v) == 0 && v == 4096);
    CHECK(control_client_parse_size("1T", &v) == 0 && v == 1ull << 40);
    CHECK(control_client_parse_size("1GiB", &v) == 0 && v == 1ull << 30);
    CHECK(control_client_parse_size("1GB", &v) == 0 && v == 1ull << 30);
    CHECK(control_client_parse_size("0", &v) == 0 && v == 0);
    CHECK(control_client_parse_size("", &v) == -EINVAL);
    CHECK(control_client_parse_size("M", &v) == -EINVAL);
    CHECK(control_client_parse_size("-1M", &v) == -EINVAL);
    CHECK(control_client_parse_size("+1M", &v) == -EINVAL);
    CHECK(control_client_parse_size(" 1M", &v) == -EINVAL);
    CHECK(control_client_parse_size("1X", &v) == -EINVAL);
    CHECK(control_client_parse_size("1Mx", &v) == -EINVAL);
    CHECK(control_client_parse_size("1.5G", &v) == -EINVAL);
    CHECK(control_client_parse_size("16777216T", &v) == -ERANGE);
    CHECK(control_client_parse_size("99999999999999999999999", &v) == -ERANGE);

    CHECK(control_client_call("/nonexistent/api.sock", "GET", "/v1/vm", NULL, 1, &r, err) ==
          -ECONNREFUSED);
    CHECK(!strcmp(err, "/nonexistent/api.sock: no VM is listening (is it started with "
                       "--api-sock?)"));
}

/* A server that accepts and closes without answering (as a VMM that exits on "stop"). */
static void *closer_main(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
    char buf[512];

    if (fd >= 0) {
        (void)recv(fd, buf, sizeof(buf), 0);
        close(fd);
    }
    return NULL;
}

static void test_client_unanswered(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct control_client_reply r;
    char err[CONTROL_CLIENT_ERR_LEN];
    pthread_t t;
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    unlink(sock_path);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0);
    pthread_create(&t, NULL, closer_main, &lfd);
    CHECK(control_client_call(sock_path, "PUT", "/v1/vm/state", "{\"action\":\"stop\"}", 5, &r,
                              err) == -ECONNRESET);
    CHECK(strstr(err, "closed the connection without answering") != NULL);
    pthread_join(t, NULL);
    close(lfd);
    unlink(sock_path);
}

int main(void)
{
    char dir[] = "/tmp/tessera-control-XXXXXX", err[CONTROL_ERR_LEN];
    struct fake *f = calloc(1, sizeof(*f));
    struct control *c = NULL;
    int ret;

    if (!mkdtemp(dir) || !f) {
        perror("test_control");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);

    ret = control_start(sock_path, &fake_ops, f, &c, err);
    CHECK(ret == 0);
    if (ret) {
        fprintf(stderr, "control_start: %s\n", err);
        return test_finish("control");
    }
    test_routes(f);
    test_bad_bodies(f);
    test_op_errors(f);
    test_missing_ops();
    test_snapshot_routes();
    test_migrate_routes();
    test_limits_routes();
    test_snapshot_job_routes();
    test_paths_and_methods();
    test_body_limits(f);
    test_concurrency(f);
    test_connection_limit();
    test_utf8_messages();
    test_hostile_framing(f);
    test_slow_clients();
    control_stop(c);

    test_stop_with_client(f);
    test_socket_files(f);
    test_client_build();
    test_client_parse();
    test_client_misc();
    test_client_unanswered();

    free(last_body);
    free(f);
    unlink(sock_path);
    rmdir(dir);
    return test_finish("control");
}
