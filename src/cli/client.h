/* `tessera --host URL NOUN VERB ...`: the CLI as tesserad's client (docs/cli.md). This header is
 * the door to its pieces that need no daemon: the command line (argv to options and words), the
 * request each command makes (method, path, JSON body, how to print the answer) and the output
 * (aligned tables, sizes for people). The transport is client_http.h (libcurl), the console's
 * websocket client_ws.h; cli_client() in client.c ties them together.
 *
 * The REST contract is docs/daemon.md and the list of routes: JSON under /api/v1/,
 * sizes in bytes, long actions answer 202 with an operation. Names typed by the user are
 * percent-encoded into paths (RFC 3986 §2.1), so a name can never add a path segment; the
 * daemon validates them.
 *
 * Everything here is pure but for reading the files that --ssh-key and --user-data name.
 * Any thread; no global state. */
#ifndef TESSERA_CLI_CLIENT_H
#define TESSERA_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define CLIENT_ERR_LEN   256  /* err buffers: one line with its NUL */
#define CLIENT_PATH_MAX  1024 /* a request's path and query */
#define CLIENT_WORDS_MAX 8    /* NOUN VERB and its positional arguments */
#define CLIENT_OPTS_MAX  64   /* options on one command line */

/* The options the client knows; each command accepts a subset (docs/cli.md lists them). */
enum client_opt {
    /* global: any command */
    CLIENT_OPT_HOST,
    CLIENT_OPT_TOKEN,
    CLIENT_OPT_TOKEN_FILE,
    CLIENT_OPT_CA_CERT,
    CLIENT_OPT_INSECURE,
    CLIENT_OPT_JSON,
    CLIENT_OPT_HELP,
    /* per command */
    CLIENT_OPT_NO_WAIT,
    CLIENT_OPT_TENANT,
    CLIENT_OPT_USER,
    CLIENT_OPT_ROLE,
    CLIENT_OPT_DESCRIPTION,
    CLIENT_OPT_TEMPLATE,
    CLIENT_OPT_CPUS,
    CLIENT_OPT_MEMORY,
    CLIENT_OPT_DISK,
    CLIENT_OPT_FULL,
    CLIENT_OPT_RESTART,
    CLIENT_OPT_FORWARD,
    CLIENT_OPT_HOSTNAME,
    CLIENT_OPT_SSH_KEY,
    CLIENT_OPT_USER_DATA,
    CLIENT_OPT_IP,
    CLIENT_OPT_GW,
    CLIENT_OPT_DNS,
    CLIENT_OPT_START,
    CLIENT_OPT_VOLUME,
    CLIENT_OPT_FROM_VM,
    CLIENT_OPT_KERNEL,
    CLIENT_OPT_INITRD,
    CLIENT_OPT_CMDLINE,
    CLIENT_OPT_SIZE,
    CLIENT_OPT_FORMAT,
    CLIENT_OPT_POOL,
    CLIENT_OPT_VCPUS,
    CLIENT_OPT_VMS,
    CLIENT_OPT_CPU_OVERCOMMIT,
    CLIENT_OPT_MEMORY_OVERCOMMIT,
    CLIENT_OPT_TIMEOUT,
    CLIENT_OPT_CPU_SHARES,
    CLIENT_OPT_CPU_LIMIT,
    CLIENT_OPT_CPU_RESERVATION,
    CLIENT_OPT_MEMORY_SHARES,
    CLIENT_OPT_MEMORY_LIMIT,
    CLIENT_OPT_MEMORY_RESERVATION,
    CLIENT_OPT_VM_CPUSET,
    CLIENT_OPT_VM_MEMORY,
    CLIENT_OPT_DISK_LIMIT,
    CLIENT_OPT_NET_LIMIT,
    CLIENT_OPT_SUBNET,
    CLIENT_OPT_GATEWAY,
    CLIENT_OPT_NO_DHCP,
    CLIENT_OPT_NETWORK,
    CLIENT_OPT_SECGROUP,
    CLIENT_OPT_PEER,
    CLIENT_OPT_BRIDGE,
    CLIENT_OPT_EXTERNAL,
    CLIENT_OPT_NO_SNAT,
    CLIENT_OPT_VLAN,
    CLIENT_OPT_VXLAN_VNI,
    CLIENT_OPT_VXLAN_PEER,
    CLIENT_OPT_COUNT
};

/* A parsed command line: the words (NOUN, VERB, positional arguments) in order and the options
 * in order (an option may repeat: --forward, --ssh-key, --dns). Values point into argv. */
struct client_args {
    const char *words[CLIENT_WORDS_MAX];
    int nwords;
    struct {
        enum client_opt opt;
        const char *value; /* NULL for a flag */
    } opts[CLIENT_OPTS_MAX];
    int nopts;
};

/* Splits argv[0..argc) (the words after `tessera`) into words and options. Options may come
 * anywhere, as `--name value` or `--name=value`; `--` ends them. Returns 0, or -EINVAL with err
 * naming the option (unknown, missing its value, a value given to a flag, too many). */
int client_args_parse(int argc, char **argv, struct client_args *a, char *err);

/* The last value of opt, or NULL; client_args_has() says whether it was given at all. */
const char *client_args_get(const struct client_args *a, enum client_opt opt);
bool client_args_has(const struct client_args *a, enum client_opt opt);

/* How an answer is printed (without --json). */
enum client_view {
    CLIENT_VIEW_NONE,   /* 204: print `done` */
    CLIENT_VIEW_TABLE,  /* the first array in the answer, one row each, with `columns` */
    CLIENT_VIEW_OBJECT, /* one object: "key: value" lines */
    CLIENT_VIEW_QUOTA,  /* {limits, usage}: one row per resource */
    CLIENT_VIEW_CHECK,  /* {network, ok, drift}: the drift as a table; exit status 1 if any */
};

/* A table column: the header, the object's key, how to show the value. */
/* TEXT as it is; SIZE: bytes for people ("512M"); TIME: seconds since 1970 as UTC;
 * PERCENT: a fraction 0..1 as "40%". */
enum client_cell { CLIENT_CELL_TEXT, CLIENT_CELL_SIZE, CLIENT_CELL_TIME, CLIENT_CELL_PERCENT };

struct client_column {
    const char *header;
    const char *key;
    enum client_cell cell;
};

/* The request one command makes. */
struct client_request {
    const char *method;
    char path[CLIENT_PATH_MAX]; /* from /api/v1/, percent-encoded, with its query */
    char *body;                 /* malloc'd JSON text, or NULL */
    const char *upload;         /* PUT this file as the body (volume upload), or NULL */
    bool operation;             /* answers 202 + an operation, which the client waits for */
    bool console;               /* a websocket to the VM's console, not a request */
    enum client_view view;
    const struct client_column *columns; /* CLIENT_VIEW_TABLE */
    size_t ncolumns;
    char done[128]; /* CLIENT_VIEW_NONE: what to print ("deleted vm web") */
};

/* The command a parsed command line names, e.g. "vm create": its request. self_tenant is the
 * caller's own tenant for the commands that need one when --tenant is not given (user list and
 * create): with self_tenant NULL they return -EAGAIN, for the caller to find it (from its
 * token) and call again. Returns 0 and *r (free with client_request_free()), or -EINVAL with a
 * usage error in err (exit status 2), or -errno with err when a named file cannot be read. */
int client_request_build(const struct client_args *a, const char *self_tenant,
                         struct client_request *r, char *err);

void client_request_free(struct client_request *r);

/* "NOUN VERB" of the command line, for messages ("vm create"; "tessera" when there is none). */
void client_args_command(const struct client_args *a, char *buf, size_t n);

/* Prints the usage of the client: every command when noun is NULL, else the noun's. */
void client_usage(FILE *out, const char *noun);

/* True when noun is one of the daemon's nouns (tenant, vm, ...). */
bool client_is_noun(const char *noun);

/* A size for people in the units --memory takes: "512M", "2G", "1.5G", "812B". */
void client_size_format(uint64_t bytes, char *buf, size_t n);

/* Prints rows (a JSON array of objects) as a table: a header line, then one line per row,
 * each column as wide as its widest cell, two spaces apart; a missing or null value is "-".
 * Control bytes in values are printed as '?': a name must not drive the terminal. Returns 0, or
 * -EPROTO when rows is not an array of objects. */
int client_table_print(FILE *out, const struct client_column *cols, size_t ncols, json_t *rows);

/* Prints one object as "key: value" lines (sizes of *_bytes keys for people, nested objects
 * and arrays as compact JSON). -EPROTO when obj is not an object. */
int client_object_print(FILE *out, json_t *obj);

/* Prints a quota {limits: {..}, usage: {..}} as a table RESOURCE LIMIT USED. -EPROTO when the
 * answer has another shape. */
int client_quota_print(FILE *out, json_t *quota);

#endif
