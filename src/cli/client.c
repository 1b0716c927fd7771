/* `tessera [--host URL] NOUN VERB ...`: the daemon's client (client.h, docs/cli.md). Parses the
 * command line, makes the command's request, waits for the operation a long action answers
 * with, and prints the answer: a table, an object, or the daemon's JSON as it is (--json). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/client_http.h"
#include "cli/client_ws.h"
#include "cli/console.h"

#define TOKEN_MAX       200 /* a token file's first line, at most */
#define WAIT_STEP_S     30  /* each GET /operations/{id}/wait asks for at most this long */
#define WS_ANSWER_S     10  /* the console's handshake answer */
#define TOKEN_ID_OFFSET 4   /* "tsr_" + 16 hex digits of id (src/daemon/token.h) */
#define TOKEN_ID_LEN    16

/* Everything one run of the client needs. */
struct client {
    struct client_args args;
    char cmd[64]; /* "vm create", for messages */
    char token[TOKEN_MAX + 1];
    struct client_http *http;
    bool json;
};

static int fail(const struct client *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "tessera: CMD: message" and returns status (1: refused or unreachable, 2: usage). */
static int fail(const struct client *c, int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tessera: %s: ", c->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* Reads the token from --token-file F: its first line, without surrounding blanks. */
static int token_from_file(struct client *c, const char *path)
{
    char buf[TOKEN_MAX + 2];
    size_t n;
    FILE *f = fopen(path, "re");

    if (!f)
        return fail(c, 2, "--token-file %s: %s", path, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    n = strlen(buf);
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = 0;
    if (!n || n > TOKEN_MAX)
        return fail(c, 2, "--token-file %s: expected a token (tsr_...) on its first line", path);
    snprintf(c->token, sizeof(c->token), "%s", buf + strspn(buf, " \t"));
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

/* Where and who: --host or TESSERA_HOST, --token, --token-file or TESSERA_TOKEN, --ca-cert or
 * TESSERA_CA_CERT, --insecure. Returns 0 with c->http open, or the exit status. */
static int connect_setup(struct client *c)
{
    const char *host = client_args_get(&c->args, CLIENT_OPT_HOST);
    const char *token = client_args_get(&c->args, CLIENT_OPT_TOKEN);
    const char *file = client_args_get(&c->args, CLIENT_OPT_TOKEN_FILE);
    const char *ca = client_args_get(&c->args, CLIENT_OPT_CA_CERT);
    bool insecure = client_args_has(&c->args, CLIENT_OPT_INSECURE);
    char err[CLIENT_HTTP_ERR_LEN];
    int ret;

    host = host ? host : getenv("TESSERA_HOST");
    if (!host || !*host)
        return fail(c, 2,
                    "no daemon named: give --host URL or set TESSERA_HOST (unix:PATH or "
                    "https://HOST:PORT)");
    if (token && file)
        return fail(c, 2, "give --token or --token-file, not both");
    if (file) {
        ret = token_from_file(c, file);
        if (ret)
            return ret;
    } else {
        token = token ? token : getenv("TESSERA_TOKEN");
        if (!token || !*token)
            return fail(c, 2,
                        "no token: give --token T, --token-file F or set TESSERA_TOKEN "
                        "(the first one is in the daemon's STATE_DIR/admin.token)");
        if (strlen(token) > TOKEN_MAX)
            return fail(c, 2, "the token is longer than %d characters", TOKEN_MAX);
        snprintf(c->token, sizeof(c->token), "%s", token);
    }
    ca = ca ? ca : getenv("TESSERA_CA_CERT");
    if (ca && !*ca)
        ca = NULL;
    if (ca && insecure)
        return fail(c, 2, "give --ca-cert or --insecure, not both");
    if (ca && access(ca, R_OK))
        return fail(c, 2, "--ca-cert %s: %s", ca, strerror(errno));
    if (client_http_open(host, c->token, ca, insecure, &c->http, err))
        return fail(c, 2, "%s", err);
    if (insecure && !strncmp(host, "https://", 8))
        fprintf(stderr, "tessera: WARNING: --insecure: the daemon's certificate is NOT checked; "
                        "anyone on the way can read your token and change what you see\n");
    return 0;
}

/* The daemon's error message of a 4xx/5xx answer, with control bytes as '?'. */
static int fail_reply(const struct client *c, const struct client_http_reply *r)
{
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    char text[512];
    size_t i;

    snprintf(text, sizeof(text), "%s", msg ? msg : "(no error message in the answer)");
    for (i = 0; text[i]; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            text[i] = '?';
    }
    json_decref(doc);
    return fail(c, 1, "%u: %s", r->status, text);
}

/* One request; a transport failure is reported and gives its exit status (1), else 0. */
static int call(struct client *c, const char *method, const char *path, const char *body,
                const char *upload, struct client_http_reply *r)
{
    char err[CLIENT_HTTP_ERR_LEN];

    if (client_http_call(c->http, method, path, body, upload, r, err))
        return fail(c, 1, "%s", err);
    return 0;
}

/* The caller's own tenant, from its token's row in GET /tokens (the token's id is its text's
 * "tsr_" + 16 hex digits). "" for a platform user. Returns 0 or the exit status. */
static int find_own_tenant(struct client *c, char *tenant, size_t n)
{
    struct client_http_reply r;
    json_t *doc, *tokens, *t;
    size_t i;
    int ret;

    ret = call(c, "GET", "/api/v1/tokens", NULL, NULL, &r);
    if (ret)
        return ret;
    if (r.status != 200) {
        ret = fail_reply(c, &r);
        client_http_reply_free(&r);
        return ret;
    }
    doc = json_loadb(r.body, r.len, 0, NULL);
    client_http_reply_free(&r);
    tokens = json_object_get(doc, "tokens");
    ret = 1;
    json_array_foreach(tokens, i, t)
    {
        const char *id = json_string_value(json_object_get(t, "id"));
        const char *ten = json_string_value(json_object_get(t, "tenant"));

        if (id && ten && strlen(c->token) > TOKEN_ID_OFFSET + TOKEN_ID_LEN &&
            strlen(id) == TOKEN_ID_LEN && !memcmp(c->token + TOKEN_ID_OFFSET, id, TOKEN_ID_LEN)) {
            snprintf(tenant, n, "%s", ten);
            ret = 0;
            break;
        }
    }
    json_decref(doc);
    if (ret)
        return fail(c, 1,
                    "cannot find your token in GET /api/v1/tokens: name the tenant with "
                    "--tenant T");
    return 0;
}

/* Prints a JSON answer as it came, ending with a newline. */
static void print_raw(const struct client_http_reply *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (!r->len || r->body[r->len - 1] != '\n')
        putchar('\n');
}

/* The first array in an answer ({"vms": [...]}), or the answer itself when it is one. */
static json_t *rows_of(json_t *doc)
{
    const char *key;
    json_t *v;

    if (json_is_array(doc))
        return doc;
    json_object_foreach(doc, key, v)
    {
        if (json_is_array(v))
            return v;
    }
    return NULL;
}

/* Prints a 200/201 answer the way the request says. Returns the exit status. */
static int print_answer(struct client *c, const struct client_request *req,
                        const struct client_http_reply *r)
{
    json_t *doc;
    int ret = 0;

    doc = json_loadb(r->body, r->len, 0, NULL);
    if (c->json) {
        print_raw(r);
        /* A check's verdict is the exit status, for scripts, whichever way it prints. */
        ret = req->view == CLIENT_VIEW_CHECK && json_is_false(json_object_get(doc, "ok"));
        json_decref(doc);
        return ret;
    }
    if (!doc)
        return fail(c, 1, "the daemon's answer is not JSON");
    switch (req->view) {
    case CLIENT_VIEW_CHECK:
        if (json_is_true(json_object_get(doc, "ok"))) {
            printf("%s: no drift\n", json_string_value(json_object_get(doc, "network")));
        } else if (json_is_false(json_object_get(doc, "ok"))) {
            ret = client_table_print(stdout, req->columns, req->ncolumns, rows_of(doc));
            if (!ret) {
                json_decref(doc);
                return fail(c, 1, "drift found (`network repair` brings it back)");
            }
        } else {
            ret = -EPROTO;
        }
        break;
    case CLIENT_VIEW_TABLE:
        ret = client_table_print(stdout, req->columns, req->ncolumns, rows_of(doc));
        break;
    case CLIENT_VIEW_QUOTA: ret = client_quota_print(stdout, doc); break;
    case CLIENT_VIEW_OBJECT:
    case CLIENT_VIEW_NONE: ret = client_object_print(stdout, doc); break;
    }
    json_decref(doc);
    return ret ? fail(c, 1, "the daemon's answer has an unexpected shape (try --json)") : 0;
}

/* An operation's id as text (a string or a number). */
static int operation_id(json_t *op, char *buf, size_t n)
{
    json_t *id = json_object_get(op, "id");

    if (json_is_string(id))
        snprintf(buf, n, "%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else
        return -EPROTO;
    return strlen(buf) && strlen(buf) < 100 ? 0 : -EPROTO;
}

/* The operation of a 202 answer: the answer itself, or its "operation" member when the answer
 * is the object acted on (vm create --start answers the VM with its start operation). */
static json_t *operation_of(json_t *doc)
{
    json_t *op = json_object_get(doc, "operation");

    return json_is_object(op) ? op : doc;
}

/* Waits until the operation op (borrowed) ends, within timeout_s (0: no limit), and prints it.
 * A failed operation is an error (1). Returns the exit status. */
static int wait_operation(struct client *c, json_t *first, unsigned timeout_s)
{
    time_t deadline = timeout_s ? time(NULL) + timeout_s : 0;
    json_t *op = json_incref(first);
    struct client_http_reply r = {0};
    char id[128], path[CLIENT_PATH_MAX];
    const char *status;
    int ret = 0;

    if (!op || operation_id(op, id, sizeof(id))) {
        json_decref(op);
        return fail(c, 1, "the daemon answered 202 without an operation id");
    }
    for (;;) {
        long step = WAIT_STEP_S;
        json_t *next;

        status = json_string_value(json_object_get(op, "status"));
        if (!status || strcmp(status, "running"))
            break;
        if (deadline) {
            step = (long)(deadline - time(NULL));
            if (step <= 0) {
                ret = fail(c, 1,
                           "operation %s still runs after %u s (see `tessera operation "
                           "show %s`)",
                           id, timeout_s, id);
                goto free_op;
            }
            step = step < WAIT_STEP_S ? step : WAIT_STEP_S;
        }
        /* The id is the daemon's; it is encoded as any name would be. */
        {
            struct client_args a = {.nwords = 3, .words = {"operation", "show", id}};
            struct client_request req;
            char err[CLIENT_ERR_LEN];

            if (client_request_build(&a, NULL, &req, err)) {
                ret = fail(c, 1, "operation id '%s': %s", id, err);
                goto free_op;
            }
            snprintf(path, sizeof(path), "%.*s/wait?timeout=%ld", (int)(sizeof(path) - 32),
                     req.path, step);
            client_request_free(&req);
        }
        ret = call(c, "GET", path, NULL, NULL, &r);
        if (ret)
            goto free_op;
        if (r.status != 200) {
            ret = fail_reply(c, &r);
            goto free_reply;
        }
        next = json_loadb(r.body, r.len, 0, NULL);
        if (!json_is_object(next)) {
            json_decref(next);
            ret = fail(c, 1, "GET %s: the answer is not an operation", path);
            goto free_reply;
        }
        json_decref(op);
        op = next;
        if (c->json) {
            client_http_reply_free(&r);
            continue;
        }
        client_http_reply_free(&r);
    }
    if (c->json) {
        char *text = json_dumps(op, JSON_COMPACT);

        printf("%s\n", text ? text : "");
        free(text);
    } else {
        client_object_print(stdout, op);
    }
    if (status && !strcmp(status, "failure")) {
        const char *e = json_string_value(json_object_get(op, "error"));

        if (!e)
            e = json_string_value(json_object_get(json_object_get(op, "error"), "message"));
        ret = fail(c, 1, "operation %s failed: %s", id, e ? e : "(no message)");
    }
    goto free_op;
free_reply:
    client_http_reply_free(&r);
free_op:
    json_decref(op);
    return ret;
}

/* `vm console NAME`: the websocket, the terminal in raw mode, the relay. */
static int run_console(struct client *c, const struct client_request *req)
{
    char herr[CLIENT_HTTP_ERR_LEN], err[CLIENT_WS_ERR_LEN];
    const char *host_header;
    struct client_ws_io io;
    struct client_ws ws;
    enum client_ws_end end;
    unsigned status;
    bool tty;
    int fd, ret;

    if (client_http_connect(c->http, &fd, &host_header, herr))
        return fail(c, 1, "%s", herr);
    io = (struct client_ws_io){
        .ctx = c->http, .fd = fd, .send = client_http_send, .recv = client_http_recv};
    ret =
        client_ws_handshake(&ws, &io, host_header, req->path, c->token, WS_ANSWER_S, &status, err);
    if (ret == -EPERM) {
        client_ws_free(&ws);
        return fail(c, 1, "%u: %s", status, err);
    }
    if (ret) {
        client_ws_free(&ws);
        return fail(c, 1, "%s", err);
    }
    tty = console_raw_mode();
    if (tty)
        fprintf(stderr, "tessera: attached to the console of vm %s; Ctrl-A x detaches\r\n",
                c->args.words[2]);
    ret = client_ws_relay(&ws, STDIN_FILENO, STDOUT_FILENO, tty, &end, err);
    console_restore();
    if (ret) {
        client_ws_free(&ws);
        return fail(c, 1, "%s", err);
    }
    if (end == CLIENT_WS_END_DETACHED)
        fprintf(stderr, "\ntessera: detached (the VM keeps running)\n");
    else if (end == CLIENT_WS_END_PEER_CLOSED)
        fprintf(stderr, "%stessera: the daemon closed the console%s%s\n", tty ? "\n" : "",
                ws.close_reason[0] ? ": " : "", ws.close_reason);
    client_ws_free(&ws);
    return 0;
}

/* Makes the request and prints its answer. Returns the exit status. */
static int run_request(struct client *c, struct client_request *req)
{
    const char *timeout = client_args_get(&c->args, CLIENT_OPT_TIMEOUT);
    unsigned timeout_s = 0;
    struct client_http_reply r;
    int ret;

    if (timeout) {
        char *end;
        unsigned long v = strtoul(timeout, &end, 10);

        if (*timeout < '0' || *timeout > '9' || *end || !v || v > 86400)
            return fail(c, 2, "--timeout '%s' is not a number of seconds in 1..86400", timeout);
        timeout_s = (unsigned)v;
    }
    if (req->console)
        return run_console(c, req);
    ret = call(c, req->method, req->path, req->body, req->upload, &r);
    if (ret)
        return ret;
    if (r.status >= 300) {
        ret = fail_reply(c, &r);
    } else if (r.status == 202 || req->operation) {
        json_t *doc = json_loadb(r.body, r.len, 0, NULL), *op = operation_of(doc);
        char id[128];

        if (client_args_has(&c->args, CLIENT_OPT_NO_WAIT)) {
            /* The id alone, for scripts: `tessera operation wait $(...)`. */
            if (c->json)
                print_raw(&r);
            else if (op && !operation_id(op, id, sizeof(id)))
                printf("%s\n", id);
            else
                ret = fail(c, 1, "the daemon answered 202 without an operation id");
        } else {
            ret = wait_operation(c, op, timeout_s);
        }
        json_decref(doc);
    } else if (r.status == 204 || !r.len) {
        if (!c->json && req->done[0])
            printf("%s\n", req->done);
    } else {
        ret = print_answer(c, req, &r);
        if (!ret && !c->json && strstr(req->path, "/tokens") && !strcmp(req->method, "POST"))
            fprintf(stderr, "tessera: keep the token now: its secret is never shown again\n");
    }
    client_http_reply_free(&r);
    return ret;
}

int cli_client(int argc, char **argv)
{
    struct client c = {0};
    struct client_request req;
    char err[CLIENT_ERR_LEN], herr[CLIENT_HTTP_ERR_LEN], tenant[128];
    int ret;

    snprintf(c.cmd, sizeof(c.cmd), "tessera");
    if (client_args_parse(argc, argv, &c.args, err)) {
        fprintf(stderr, "tessera: %s (try `tessera --help`)\n", err);
        return 2;
    }
    client_args_command(&c.args, c.cmd, sizeof(c.cmd));
    c.json = client_args_has(&c.args, CLIENT_OPT_JSON);
    if (client_args_has(&c.args, CLIENT_OPT_HELP) || !c.args.nwords) {
        client_usage(c.args.nwords || client_args_has(&c.args, CLIENT_OPT_HELP) ? stdout : stderr,
                     c.args.nwords && client_is_noun(c.args.words[0]) ? c.args.words[0] : NULL);
        return c.args.nwords || client_args_has(&c.args, CLIENT_OPT_HELP) ? 0 : 2;
    }
    /* Usage errors come first, before any connection is needed. */
    ret = client_request_build(&c.args, NULL, &req, err);
    if (ret && ret != -EAGAIN) {
        /* A bad argument, or a file named on the line that cannot be read: both usage. */
        fprintf(stderr, "tessera: %s%s\n", err, ret == -EINVAL ? " (try `tessera --help`)" : "");
        return ret == -ENOMEM ? 1 : 2;
    }
    if (client_http_global_init(herr)) {
        client_request_free(&req);
        return fail(&c, 1, "%s", herr);
    }
    ret = connect_setup(&c);
    if (ret)
        goto cleanup;
    if (!req.method) {
        /* The command needs the caller's tenant (user list/create without --tenant). */
        ret = find_own_tenant(&c, tenant, sizeof(tenant));
        if (ret)
            goto cleanup;
        ret = client_request_build(&c.args, tenant, &req, err);
        if (ret) {
            ret = fail(&c, ret == -ENOMEM ? 1 : 2, "%s", err);
            goto cleanup;
        }
    }
    ret = run_request(&c, &req);
cleanup:
    client_request_free(&req);
    client_http_close(c.http);
    explicit_bzero(c.token, sizeof(c.token));
    client_http_global_cleanup();
    return ret;
}
