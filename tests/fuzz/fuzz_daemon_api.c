// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc $(pkg-config --cflags slirp gnutls) $(find src -name '*.c' ! -name main.c | sort) tests/fuzz/fuzz_daemon_api.c -o build/fuzz_daemon_api $(make -s --no-print-directory print-libs)
// run:   build/fuzz_daemon_api -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for tesserad's request core (api_handle()) on a real daemon (SQLite store,
 * default pool, VM runtime in a temporary state directory): random methods, paths, queries,
 * Authorization values and bodies, as a hostile client sends them. VMs are created (linked
 * clones and seeds are real files) but never started: there is no `tessera` beside the
 * fuzzer's executable.
 *
 * Input layout: [0] who asks (low 2 bits: no token, the platform admin, a tenant's viewer, a
 * malformed token; bit 2: the path gets the "/api/v1/" prefix; bit 3: the path also gets a
 * known route's first segment), [1] the method (of 6), then the path up to the first '\n', then
 * the body. Every response is checked against api.h's contract: a known status, a JSON object
 * body (none only for 204), and for every error {"error": {"code": the status, "message": a
 * string, "field": a string or null}}. A violation traps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "daemon/net/vnet.h"
#include "daemon/store.h"

static struct daemon dm;
static struct store *st;
static char admin[TOKEN_TEXT_LEN + 8], viewer[TOKEN_TEXT_LEN + 8];
static char dir[] = "/tmp/tessera-fuzz-daemon-XXXXXX";

static bool no_network(void *arg, const char *id)
{
    return false;
}

/* libFuzzer ends with exit(): the store's files go with it, and what the networks a request
 * made hold on the host (namespaces, dnsmasq processes). */
static void cleanup(void)
{
    char cmd[64], err[NETCMD_ERR_LEN];

    daemon_fini(&dm);
    if (vnet_sweep(dir, no_network, NULL, err))
        fprintf(stderr, "networks of %s: %s\n", dir, err);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
}

/* A request as the platform admin. */
static void request(const char *method, const char *path, const char *body, struct api_response *r)
{
    struct api_request rq = {
        .method = method, .path = path, .authorization = admin, .body = body, .len = strlen(body)};

    /* api.h: callers hold the daemon's lock (its threads, the balloon policy's and the
     * metric history's, take it to read the store). */
    pthread_mutex_lock(&dm.lock);
    api_handle(&dm, &rq, r);
    pthread_mutex_unlock(&dm.lock);
}

static void setup(void)
{
    char err[STORE_ERR_LEN], tok[TOKEN_TEXT_LEN + 1];
    struct api_response r;
    bool created;
    json_t *doc;

    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    if (daemon_init(&dm, dir, NULL, err) || api_bootstrap(dm.store, &created, tok, err) || !created)
        abort();
    st = dm.store;
    snprintf(admin, sizeof(admin), "Bearer %s", tok);
    request("POST", "/api/v1/tenants", "{\"name\":\"t\"}", &r);
    api_response_free(&r);
    request("POST", "/api/v1/tenants/t/users", "{\"name\":\"v\",\"role\":\"viewer\"}", &r);
    api_response_free(&r);
    /* Something to aim at: a shared template and a VM of tenant t. */
    request("POST", "/api/v1/volumes", "{\"name\":\"base\",\"size_bytes\":1048576}", &r);
    api_response_free(&r);
    request("POST", "/api/v1/templates",
            "{\"name\":\"busybox\",\"volume\":\"base\",\"boot\":{\"kernel\":\"/no/Image\"}}", &r);
    api_response_free(&r);
    request("POST", "/api/v1/tokens", "{\"tenant\":\"t\",\"user\":\"v\"}", &r);
    doc = json_loadb(r.body, r.len, 0, NULL);
    if (r.status != 201 || !json_is_string(json_object_get(doc, "token")))
        abort();
    snprintf(viewer, sizeof(viewer), "Bearer %s", json_string_value(json_object_get(doc, "token")));
    json_decref(doc);
    api_response_free(&r);
}

static void check_response(const struct api_response *r)
{
    static const unsigned ok[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 507};
    json_t *doc, *err, *field;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]) && ok[i] != r->status; i++)
        ;
    if (i == sizeof(ok) / sizeof(ok[0]))
        __builtin_trap();
    if (r->status == 204) {
        if (r->body)
            __builtin_trap();
        return;
    }
    doc = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    if (!json_is_object(doc))
        __builtin_trap();
    if (r->status >= 400) {
        err = json_object_get(doc, "error");
        field = json_object_get(err, "field");
        if (json_integer_value(json_object_get(err, "code")) != (json_int_t)r->status ||
            !json_is_string(json_object_get(err, "message")) ||
            !(json_is_string(field) || json_is_null(field)))
            __builtin_trap();
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT", "HEAD", "PATCH"};
    static const char *const heads[] = {"tenants/", "tokens/", "vms/", "volumes/"};
    const char *auth, *nl, *body;
    char path[512];
    struct api_response r;
    size_t plen, n;

    if (!st)
        setup();
    if (size < 2)
        return 0;
    switch (data[0] & 3) {
    case 0: auth = NULL; break;
    case 1: auth = admin; break;
    case 2: auth = viewer; break;
    default: auth = "Bearer tsr_0123456789abcdef_zz"; break;
    }
    nl = memchr(data + 2, '\n', size - 2);
    plen = nl ? (size_t)(nl - (const char *)data - 2) : size - 2;
    body = nl ? nl + 1 : NULL;
    n = 0;
    if (data[0] & 4)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "/api/v1/");
    if (data[0] & 8)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "%s", heads[(data[0] >> 4) & 3]);
    if (plen > sizeof(path) - 1 - n)
        plen = sizeof(path) - 1 - n;
    memcpy(path + n, data + 2, plen);
    path[n + plen] = '\0'; /* a NUL inside cuts the path, as an HTTP server's would */
    {
        struct api_request rq = {.method = methods[data[1] % 6],
                                 .path = path,
                                 .authorization = auth,
                                 .body = body,
                                 .len = body ? size - (size_t)(body - (const char *)data) : 0};
        char *qs = strchr(path, '?');

        /* A query: the front end hands ?tenant=, ?timeout= and ?since= over apart. */
        if (qs) {
            *qs++ = '\0';
            if (data[1] & 8)
                rq.tenant = qs;
            else if (data[1] & 16)
                rq.since = qs;
            else
                rq.timeout = qs;
        }
        pthread_mutex_lock(&dm.lock);
        api_handle(&dm, &rq, &r);
        pthread_mutex_unlock(&dm.lock);
    }
    check_response(&r);
    api_response_free(&r);
    return 0;
}
