/* `tessera vm`: controls a running VM through its API socket (`tessera run --api-sock PATH`).
 * Each command is one request (docs/api.md); the HTTP client is src/vmm/control_client.c. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "vmm/control.h"
#include "vmm/control_client.h"

#define VM_CALL_TIMEOUT_S 30 /* per send or receive; every op answers at once */

/* The request a command makes. */
struct vm_call {
    const char *method;
    const char *path;
    char path_buf[64];  /* where a command that builds its path keeps it */
    char body[4352];    /* "" for none */
    unsigned timeout_s; /* per send/receive; 0: VM_CALL_TIMEOUT_S */
    bool migrate;       /* then follow GET /v1/vm/migrate until it ends */
    bool print;         /* pretty-print the 200 body */
    bool exit_ok;       /* the VM closing the connection unanswered means success (stop) */
};

/* One command: prepare() checks its arguments (args[0..nargs), timeout_s when --timeout was
 * given, else 0) and fills the call. Returns 0, or 2 after printing a usage error. */
struct vm_command {
    const char *name;
    const char *args; /* usage, after the name */
    const char *summary;
    int (*prepare)(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                   struct vm_call *call);
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tessera vm: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try `tessera vm --help`)\n");
    return 2;
}

static int check_plain(const struct vm_command *cmd, int nargs, unsigned timeout_s)
{
    if (nargs)
        return usage_error("%s takes no arguments", cmd->name);
    if (timeout_s)
        return usage_error("--timeout applies only to shutdown");
    return 0;
}

static int prep_get(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                    struct vm_call *call)
{
    call->method = "GET";
    call->path = !strcmp(cmd->name, "stats") ? "/v1/vm/stats" : "/v1/vm";
    call->print = true;
    return check_plain(cmd, nargs, timeout_s);
}

static int prep_action(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                       struct vm_call *call)
{
    call->method = "PUT";
    call->path = "/v1/vm/state";
    call->exit_ok = !strcmp(cmd->name, "stop");
    snprintf(call->body, sizeof(call->body), "{\"action\":\"%s\"}", cmd->name);
    return check_plain(cmd, nargs, timeout_s);
}

static int prep_shutdown(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                         struct vm_call *call)
{
    if (nargs)
        return usage_error("shutdown takes no arguments (the timeout is --timeout S)");
    call->method = "PUT";
    call->path = "/v1/vm/state";
    if (timeout_s)
        snprintf(call->body, sizeof(call->body), "{\"action\":\"shutdown\",\"timeout_s\":%u}",
                 timeout_s);
    else
        snprintf(call->body, sizeof(call->body), "{\"action\":\"shutdown\"}");
    return 0;
}

static int prep_balloon(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                        struct vm_call *call)
{
    uint64_t bytes;
    int ret;

    if (timeout_s)
        return usage_error("--timeout applies only to shutdown");
    if (nargs > 1)
        return usage_error("balloon takes at most one SIZE");
    call->path = "/v1/vm/balloon";
    if (!nargs) {
        call->method = "GET";
        call->print = true;
        return 0;
    }
    ret = control_client_parse_size(args[0], &bytes);
    if (ret || bytes > CONTROL_BALLOON_MAX)
        return usage_error("balloon: SIZE '%s' is not a size such as 512M or 2G (at most 1P)",
                           args[0]);
    if (bytes % CONTROL_BALLOON_PAGE)
        return usage_error("balloon: SIZE '%s' is not a multiple of 4K", args[0]);
    call->method = "PUT";
    snprintf(call->body, sizeof(call->body), "{\"target_bytes\":%" PRIu64 "}", bytes);
    return 0;
}

/* A JSON body with one string field, escaped by jansson. */
static int body_with(struct vm_call *call, const char *fmt, ...)
{
    va_list ap;
    json_t *o;
    char *text;
    int ret = -1;

    va_start(ap, fmt);
    o = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text && strlen(text) < sizeof(call->body)) {
        strcpy(call->body, text);
        ret = 0;
    }
    free(text);
    json_decref(o);
    return ret ? usage_error("argument too long") : 0;
}

static bool print_as_json; /* --json */

/* The command's one FILE argument, absolute (the VMM may run in another folder), as the body
 * {"file": ...} of a long-running PUT to `path`. */
static int prep_file(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                     struct vm_call *call, const char *path)
{
    char abs[4096];

    if (nargs != 1)
        return usage_error("%s takes one FILE", cmd->name);
    if (timeout_s)
        return usage_error("--timeout applies only to shutdown");
    if (!args[0][0] || strlen(args[0]) >= sizeof(abs) - 2)
        return usage_error("%s: FILE is empty or too long", cmd->name);
    if (args[0][0] != '/') {
        if (!getcwd(abs, sizeof(abs) - 1 - strlen(args[0]) - 1))
            return usage_error("%s: cannot resolve '%s'", cmd->name, args[0]);
        strcat(abs, "/");
        strcat(abs, args[0]);
    } else {
        snprintf(abs, sizeof(abs), "%s", args[0]);
    }
    call->method = "PUT";
    call->path = path;
    call->timeout_s = 3600;
    return body_with(call, "{s:s}", "file", abs);
}

static int prep_snapshot(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                         struct vm_call *call)
{
    return prep_file(cmd, args, nargs, timeout_s, call, "/v1/vm/snapshot");
}

static int prep_snapshot_delete(const struct vm_command *cmd, char **args, int nargs,
                                unsigned timeout_s, struct vm_call *call)
{
    return prep_file(cmd, args, nargs, timeout_s, call, "/v1/vm/snapshot-delete");
}

static int prep_snapshots(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                          struct vm_call *call)
{
    call->method = "GET";
    call->path = "/v1/vm/snapshots";
    call->print = print_as_json;
    return check_plain(cmd, nargs, timeout_s);
}

/* A size for people: "812 B", "3.4 MiB", "1.2 GiB". */
static void human_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    unsigned u = 0;

    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* Prints s with control bytes as '?': a file name must not drive the terminal. */
static void print_plain(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* The answer of GET /v1/vm/snapshots as a table: taken (local time), size, disks, file. */
static int print_snapshots(const struct control_client_reply *r)
{
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    json_t *list = json_object_get(doc, "snapshots"), *e;
    size_t i;

    if (!json_is_array(list)) {
        fprintf(stderr, "tessera vm: snapshots: the VM's answer has no list\n");
        json_decref(doc);
        return 1;
    }
    if (json_array_size(list) == 0) {
        if (json_integer_value(json_object_get(doc, "writable_disks")) == 0)
            printf("no snapshots: this VM has no writable disk, so each of its snapshot files "
                   "stands alone\n");
        else
            printf("no snapshots: the VM's disks descend from none\n");
        json_decref(doc);
        return 0;
    }
    printf("%-19s  %10s  %-5s  %s\n", "TAKEN", "SIZE", "DISKS", "FILE");
    json_array_foreach(list, i, e)
    {
        time_t t = (time_t)json_integer_value(json_object_get(e, "taken"));
        const char *file = json_string_value(json_object_get(e, "file"));
        json_t *disks = json_object_get(e, "disks"), *d;
        char when[32] = "?", size[32], slots[32] = "";
        struct tm tm;
        size_t j, len = 0;

        if (localtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        human_size((uint64_t)json_integer_value(json_object_get(e, "bytes")), size, sizeof(size));
        json_array_foreach(disks, j, d)
        {
            if (len < sizeof(slots))
                len += (size_t)snprintf(slots + len, sizeof(slots) - len, "%s%" JSON_INTEGER_FORMAT,
                                        len ? "," : "", json_integer_value(d));
        }
        printf("%-19s  %10s  %-5s  ", when, size, slots);
        print_plain(file ? file : "?");
        putchar('\n');
    }
    printf("%zu snapshot(s), oldest first; each is the parent of the next\n",
           json_array_size(list));
    json_decref(doc);
    return 0;
}

static const char *migrate_mode = "live";
static unsigned migrate_downtime_ms;
static unsigned migrate_timeout_s;
static bool migrate_copy_disks;
static const char *migrate_tls[3]; /* --tls-cert, --tls-key, --tls-ca */

static int prep_migrate(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                        struct vm_call *call)
{
    static const char *const tls_keys[3] = {"tls_cert", "tls_key", "tls_ca"};
    static const char *const tls_opts[3] = {"--tls-cert", "--tls-key", "--tls-ca"};
    json_t *o;
    char *text;
    int ret = 0;

    if (nargs != 1)
        return usage_error("migrate takes one URI (tcp:HOST:PORT or tls:HOST:PORT)");
    if (timeout_s)
        return usage_error("--timeout applies only to shutdown");
    call->method = "PUT";
    call->path = "/v1/vm/migrate";
    call->migrate = true;
    o = json_pack("{s:s, s:s, s:b}", "uri", args[0], "mode", migrate_mode, "copy_disks",
                  migrate_copy_disks);
    if (o && migrate_downtime_ms)
        json_object_set_new(o, "downtime_ms", json_integer(migrate_downtime_ms));
    if (o && migrate_timeout_s)
        json_object_set_new(o, "progress_timeout_s", json_integer(migrate_timeout_s));
    /* The VMM opens the files, perhaps from another folder: absolute paths. */
    for (int i = 0; i < 3 && o && !ret; i++) {
        char *abs;

        if (!migrate_tls[i])
            continue;
        abs = realpath(migrate_tls[i], NULL);
        if (!abs) {
            ret = usage_error("%s %s: %s", tls_opts[i], migrate_tls[i], strerror(errno));
            break;
        }
        json_object_set_new(o, tls_keys[i], json_string(abs));
        free(abs);
    }
    text = o && !ret ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (ret)
        return ret;
    if (!text || strlen(text) >= sizeof(call->body)) {
        free(text);
        return usage_error("migrate: arguments too long");
    }
    strcpy(call->body, text);
    free(text);
    return 0;
}

/* DELETE /v1/vm/migrate. */
static int prep_migrate_cancel(const struct vm_command *cmd, char **args, int nargs,
                               unsigned timeout_s, struct vm_call *call)
{
    call->method = "DELETE";
    call->path = "/v1/vm/migrate";
    return check_plain(cmd, nargs, timeout_s);
}

/* Follows a started migration, printing each round, until it completes or fails. */
/* The result line of a finished snapshot or snapshot-delete, from its result object. */
static void print_snapshot_result(const char *name, const char *file, json_t *doc)
{
    if (!strcmp(name, "snapshot")) {
        printf("snapshot %s: %" JSON_INTEGER_FORMAT " MiB written (%" JSON_INTEGER_FORMAT
               " of %" JSON_INTEGER_FORMAT " RAM pages zero), %" JSON_INTEGER_FORMAT
               " disk(s) frozen, paused %.0f ms\n",
               file, json_integer_value(json_object_get(doc, "bytes")) >> 20,
               json_integer_value(json_object_get(doc, "zero_pages")),
               json_integer_value(json_object_get(doc, "ram_pages")),
               json_integer_value(json_object_get(doc, "disks")),
               json_number_value(json_object_get(doc, "paused_ms")));
    } else {
        const char *action = json_string_value(json_object_get(doc, "action"));
        char size[32];

        human_size((uint64_t)json_integer_value(json_object_get(doc, "bytes_merged")), size,
                   sizeof(size));
        if (action && !strcmp(action, "merged"))
            printf("snapshot-delete %s: %" JSON_INTEGER_FORMAT
                   " disk image(s) merged (%s copied), paused %.0f ms\n",
                   file, json_integer_value(json_object_get(doc, "disks")), size,
                   json_number_value(json_object_get(doc, "paused_ms")));
        else
            printf("snapshot-delete %s: removed with %" JSON_INTEGER_FORMAT
                   " disk image(s) (it was on another branch)\n",
                   file, json_integer_value(json_object_get(doc, "disks")));
    }
}

/* Follows GET /v1/vm/snapshot from the status `doc` (taken) of a job `name` started until it
 * ends. Returns its result object (a new reference), or NULL after printing why it failed. */
static json_t *follow_snapshot(const char *sock, const char *name, json_t *doc)
{
    char err[CONTROL_CLIENT_ERR_LEN];

    for (;;) {
        struct control_client_reply reply;
        const char *status = json_string_value(json_object_get(doc, "status"));
        struct timespec ts = {0, 50000000L};
        int ret;

        if (!status || strcmp(status, "active")) {
            json_t *result = json_object_get(doc, "result");
            const char *msg = json_string_value(json_object_get(doc, "error"));

            if (status && !strcmp(status, "completed") && json_is_object(result)) {
                json_incref(result);
                json_decref(doc);
                return result;
            }
            fprintf(stderr, "tessera vm: %s: %s\n", name, msg ? msg : "failed");
            json_decref(doc);
            return NULL;
        }
        json_decref(doc);
        nanosleep(&ts, NULL);
        ret = control_client_call(sock, "GET", "/v1/vm/snapshot", NULL, VM_CALL_TIMEOUT_S, &reply,
                                  err);
        if (ret) {
            fprintf(stderr, "tessera vm: %s: lost the VM's API: %s\n", name, err);
            return NULL;
        }
        doc = reply.status == 200 ? json_loadb(reply.body, reply.len, 0, NULL) : NULL;
        control_client_reply_free(&reply);
        if (!doc) {
            fprintf(stderr, "tessera vm: %s: the VM's answer has no status\n", name);
            return NULL;
        }
    }
}

static int follow_migration(const char *sock)
{
    char err[CONTROL_CLIENT_ERR_LEN];
    int last_rounds = -1;

    for (;;) {
        struct control_client_reply reply;
        json_t *doc;
        const char *status;
        int rounds, ret;
        struct timespec ts = {0, 200000000L};

        ret = control_client_call(sock, "GET", "/v1/vm/migrate", NULL, VM_CALL_TIMEOUT_S, &reply,
                                  err);
        if (ret) {
            fprintf(stderr, "tessera vm: migrate: lost the source VM's API: %s\n", err);
            return 1;
        }
        doc = json_loadb(reply.body, reply.len, 0, NULL);
        control_client_reply_free(&reply);
        status = json_string_value(json_object_get(doc, "status"));
        rounds = (int)json_integer_value(json_object_get(doc, "rounds"));
        if (!status) {
            json_decref(doc);
            fprintf(stderr, "tessera vm: migrate: the VM's answer has no status\n");
            return 1;
        }
        if (rounds != last_rounds && !strcmp(status, "active")) {
            printf("migration: round %d, %" JSON_INTEGER_FORMAT " MiB sent, %" JSON_INTEGER_FORMAT
                   " pages dirty, throttle %" JSON_INTEGER_FORMAT "%%\n",
                   rounds, json_integer_value(json_object_get(doc, "bytes")) >> 20,
                   json_integer_value(json_object_get(doc, "remaining_pages")),
                   json_integer_value(json_object_get(doc, "throttle_pct")));
            fflush(stdout);
            last_rounds = rounds;
        }
        if (strcmp(status, "active")) {
            bool ok = !strcmp(status, "completed");

            if (ok)
                printf("migration: completed in %" JSON_INTEGER_FORMAT
                       " ms, downtime %" JSON_INTEGER_FORMAT " ms, %" JSON_INTEGER_FORMAT
                       " MiB sent, %d rounds\n",
                       json_integer_value(json_object_get(doc, "total_ms")),
                       json_integer_value(json_object_get(doc, "downtime_ms")),
                       json_integer_value(json_object_get(doc, "bytes")) >> 20, rounds);
            else
                fprintf(stderr, "tessera vm: migrate: failed: %s (the VM keeps running)\n",
                        json_string_value(json_object_get(doc, "error"))
                            ? json_string_value(json_object_get(doc, "error"))
                            : "unknown error");
            json_decref(doc);
            return ok ? 0 : 1;
        }
        json_decref(doc);
        nanosleep(&ts, NULL);
    }
}

/* limits disk|nic INDEX KEY=VALUE...: PUT /v1/vm/{disks,nics}/INDEX/limits. A value of digits
 * goes as a number, anything else ("10M") as a string; the VMM checks keys and values. */
static int prep_limits(const struct vm_command *cmd, char **args, int nargs, unsigned timeout_s,
                       struct vm_call *call)
{
    const char *kind = nargs ? args[0] : "";
    json_t *body;
    char *text;
    char *end;
    unsigned long index;

    if (timeout_s)
        return usage_error("--timeout applies only to shutdown");
    if (nargs < 3 || (strcmp(kind, "disk") && strcmp(kind, "nic")))
        return usage_error("limits: expected disk|nic INDEX KEY=VALUE... (e.g. limits disk 0 "
                           "bps=10M iops=500)");
    errno = 0;
    index = strtoul(args[1], &end, 10);
    if (errno || end == args[1] || *end || args[1][0] == '-' || index > 63)
        return usage_error("limits: INDEX '%s' is not a device number (0 is the first)", args[1]);
    body = json_object();
    if (!body)
        return usage_error("out of memory");
    for (int i = 2; i < nargs; i++) {
        const char *eq = strchr(args[i], '=');
        char key[32];
        size_t klen = eq ? (size_t)(eq - args[i]) : 0;
        json_t *v;

        if (!eq || !klen || klen >= sizeof(key) || !eq[1]) {
            json_decref(body);
            return usage_error("limits: '%s' is not KEY=VALUE (e.g. bps=10M)", args[i]);
        }
        memcpy(key, args[i], klen);
        key[klen] = '\0';
        v = strspn(eq + 1, "0123456789") == strlen(eq + 1) && strlen(eq + 1) <= 18
                ? json_integer(strtoll(eq + 1, NULL, 10))
                : json_string(eq + 1);
        if (!v || json_object_set_new(body, key, v)) {
            json_decref(body);
            return usage_error("limits: '%s' is not a value the API can carry", args[i]);
        }
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text || strlen(text) >= sizeof(call->body)) {
        free(text);
        return usage_error("limits: too many settings");
    }
    snprintf(call->body, sizeof(call->body), "%s", text);
    free(text);
    snprintf(call->path_buf, sizeof(call->path_buf), "/v1/vm/%s/%lu/limits",
             !strcmp(kind, "disk") ? "disks" : "nics", index);
    call->path = call->path_buf;
    call->method = "PUT";
    call->print = true;
    return 0;
}

static const struct vm_command commands[] = {
    {"describe", "", "print the VM's state, uptime and configuration (JSON)", prep_get},
    {"pause", "", "pause every vCPU", prep_action},
    {"resume", "", "resume a paused VM", prep_action},
    {"shutdown", "[--timeout S]",
     "ask the guest to power off; stop it after S seconds (default 30)", prep_shutdown},
    {"stop", "", "stop the VM at once (the VMM process exits)", prep_action},
    {"reset", "", "reset the VM, as the reset button would", prep_action},
    {"balloon", "[SIZE]", "show the balloon, or set its target (e.g. 512M, 2G; plain: MiB)",
     prep_balloon},
    {"stats", "", "print per-vCPU, device and memory statistics (JSON)", prep_get},
    {"snapshot", "FILE", "save CPU, devices, RAM and disks to FILE; the VM runs on", prep_snapshot},
    {"snapshots", "[--json]", "list the snapshots the VM's disks descend from, oldest first",
     prep_snapshots},
    {"snapshot-delete", "FILE", "delete a snapshot; its disks' data merges into the newer layer",
     prep_snapshot_delete},
    {"migrate", "URI", "move the VM to `tessera run --incoming URI` (tcp: or tls:HOST:PORT)",
     prep_migrate},
    {"migrate-cancel", "", "cut a running migration; the VM runs on here", prep_migrate_cancel},
    {"limits", "disk|nic N K=V...",
     "change disk or NIC N's rate limits live (bps=10M iops=500, rx_bps=2500K; 0: none)",
     prep_limits},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void vm_usage(FILE *out)
{
    fprintf(out, "Usage: tessera vm COMMAND --api-sock PATH [ARGS]\n\n"
                 "Controls a VM started with `tessera run --api-sock PATH`. Commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        char head[40];

        snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
        fprintf(out, "  %-24s %s\n", head, commands[i].summary);
    }
    fprintf(out, "\n  --api-sock PATH          the VM's API socket (required)\n"
                 "  --mode MODE              migrate: live (default), suspend or cold\n"
                 "  --downtime-ms N          migrate: live mode's downtime limit (default 300)\n"
                 "  --json                   snapshots: print the JSON answer, not a table\n"
                 "  --copy-disks             migrate: send the disks too, for hosts without\n"
                 "                           shared storage (the target writes new images)\n"
                 "  --progress-timeout S     migrate: fail (the VM runs on here) when no byte\n"
                 "                           moves for S seconds, 1-3600 (default 30)\n"
                 "  --tls-cert FILE          migrate to tls:HOST:PORT (mutual TLS): this VM's\n"
                 "  --tls-key FILE           certificate and key, and the CA the target's\n"
                 "  --tls-ca FILE            certificate must chain to; it must name HOST. PEM\n"
                 "                           files, read by the VMM process\n"
                 "  -h, --help               this text\n"
                 "\nExit status: 0 on success, 1 when the VM refuses or cannot be reached,\n"
                 "2 for bad usage. The API itself is described in docs/api.md.\n");
}

/* Parses "--timeout S": 1..CONTROL_SHUTDOWN_TIMEOUT_MAX seconds. Returns 0 or -EINVAL. */
static int parse_timeout(const char *s, unsigned *out)
{
    unsigned long v;
    char *end;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < 1 || v > CONTROL_SHUTDOWN_TIMEOUT_MAX)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* Prints a 200 body as indented JSON (as it came, when it is not JSON), reals to 10
 * significant digits (uptime_s 3.002605198, not 3.0026051979999999). */
static void print_json(const struct control_client_reply *r)
{
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    char *text =
        doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) : NULL;

    if (text)
        printf("%s\n", text);
    else
        printf("%s\n", r->body);
    free(text);
    json_decref(doc);
}

int cli_vm(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"api-sock", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'},
        {"downtime-ms", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"copy-disks", no_argument, NULL, 'c'},
        {"progress-timeout", required_argument, NULL, 'p'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tls-ca", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct vm_command *cmd = NULL;
    struct control_client_reply reply;
    char err[CONTROL_CLIENT_ERR_LEN];
    struct vm_call call = {0};
    const char *sock = NULL;
    unsigned timeout_s = 0;
    int c, ret;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 't':
            if (parse_timeout(optarg, &timeout_s))
                return usage_error("--timeout '%s' is not a number of seconds in 1..%d", optarg,
                                   CONTROL_SHUTDOWN_TIMEOUT_MAX);
            break;
        case 'm':
            if (strcmp(optarg, "live") && strcmp(optarg, "suspend") && strcmp(optarg, "cold"))
                return usage_error("--mode '%s': expected live, suspend or cold", optarg);
            migrate_mode = optarg;
            break;
        case 'd': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > CONTROL_DOWNTIME_MAX_MS)
                return usage_error("--downtime-ms '%s' is not a number in 1..%d", optarg,
                                   CONTROL_DOWNTIME_MAX_MS);
            migrate_downtime_ms = (unsigned)v;
            break;
        }
        case 'p': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > CONTROL_MIGRATE_TIMEOUT_MAX)
                return usage_error("--progress-timeout '%s' is not a number in 1..%d", optarg,
                                   CONTROL_MIGRATE_TIMEOUT_MAX);
            migrate_timeout_s = (unsigned)v;
            break;
        }
        case 'C': migrate_tls[0] = optarg; break;
        case 'K': migrate_tls[1] = optarg; break;
        case 'A': migrate_tls[2] = optarg; break;
        case 'j': print_as_json = true; break;
        case 'c': migrate_copy_disks = true; break;
        case 'h': vm_usage(stdout); return 0;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) {
        vm_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (!strcmp(argv[optind], commands[i].name))
            cmd = &commands[i];
    }
    if (!cmd)
        return usage_error("unknown command '%s'", argv[optind]);
    if (print_as_json && strcmp(cmd->name, "snapshots"))
        return usage_error("--json applies only to snapshots");
    if ((migrate_timeout_s || migrate_tls[0] || migrate_tls[1] || migrate_tls[2]) &&
        strcmp(cmd->name, "migrate"))
        return usage_error("--progress-timeout and --tls-* apply only to migrate");
    ret = cmd->prepare(cmd, argv + optind + 1, argc - optind - 1, timeout_s, &call);
    if (ret)
        return ret;
    if (!sock)
        return usage_error("%s: --api-sock PATH is required", cmd->name);

    ret = control_client_call(sock, call.method, call.path, call.body[0] ? call.body : NULL,
                              call.timeout_s ? call.timeout_s : VM_CALL_TIMEOUT_S, &reply, err);
    if (ret == -ECONNRESET && call.exit_ok)
        return 0;
    if (ret) {
        fprintf(stderr, "tessera vm: %s\n", err);
        return 1;
    }
    /* The server's messages name the action themselves ("pause: already done ..."). */
    if (reply.status >= 300) {
        char msg[1024];

        fprintf(stderr, "tessera vm: %s\n", control_client_error(&reply, msg, sizeof(msg)));
        control_client_reply_free(&reply);
        return 1;
    }
    if (call.print && reply.status == 200)
        print_json(&reply);
    if (!strcmp(cmd->name, "snapshots") && !print_as_json && reply.status == 200)
        ret = print_snapshots(&reply);
    if (!strcmp(cmd->name, "snapshot") || !strcmp(cmd->name, "snapshot-delete")) {
        json_t *doc = json_loadb(reply.body, reply.len, 0, NULL);
        bool started = reply.status == 202;

        control_client_reply_free(&reply);
        /* 202: the VM works on it; the result comes when it is done. */
        if (doc && started)
            doc = follow_snapshot(sock, cmd->name, doc);
        if (!doc)
            return 1;
        print_snapshot_result(cmd->name, argv[argc - 1], doc);
        json_decref(doc);
        return 0;
    }
    control_client_reply_free(&reply);
    if (ret)
        return ret;
    if (call.migrate)
        return follow_migration(sock);
    return 0;
}
