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

#include <jansson.h>

#include "cli/cli.h"
#include "vmm/control.h"
#include "vmm/control_client.h"

#define VM_CALL_TIMEOUT_S 30 /* per send or receive; every op answers at once */

/* The request a command makes. */
struct vm_call {
    const char *method;
    const char *path;
    char body[128]; /* "" for none */
    bool print;     /* pretty-print the 200 body */
    bool exit_ok;   /* the VM closing the connection unanswered means success (stop) */
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
    ret = cmd->prepare(cmd, argv + optind + 1, argc - optind - 1, timeout_s, &call);
    if (ret)
        return ret;
    if (!sock)
        return usage_error("%s: --api-sock PATH is required", cmd->name);

    ret = control_client_call(sock, call.method, call.path, call.body[0] ? call.body : NULL,
                              VM_CALL_TIMEOUT_S, &reply, err);
    if (ret == -ECONNRESET && call.exit_ok)
        return 0;
    if (ret) {
        fprintf(stderr, "tessera vm: %s\n", err);
        return 1;
    }
    /* The server's messages name the action themselves ("pause: already done ..."). */
    if (reply.status >= 300) {
        fprintf(stderr, "tessera vm: %s\n", control_client_error(&reply, err, sizeof(err)));
        control_client_reply_free(&reply);
        return 1;
    }
    if (call.print && reply.status == 200)
        print_json(&reply);
    control_client_reply_free(&reply);
    return 0;
}
