/* The client's command line: argv to options and words, and each command's request
 * (client.h). One table of commands; each row's build() maps its words and options to a
 * method, a path and a JSON body. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ratelimit.h"
#include "cli/client.h"
#include "vmm/control_client.h"

#define FILE_MAX (64u << 10) /* --ssh-key and --user-data files: the daemon's body cap */

struct opt_def {
    const char *name;
    bool value;
};

static const struct opt_def opt_defs[CLIENT_OPT_COUNT] = {
    [CLIENT_OPT_HOST] = {"host", true},
    [CLIENT_OPT_TOKEN] = {"token", true},
    [CLIENT_OPT_TOKEN_FILE] = {"token-file", true},
    [CLIENT_OPT_CA_CERT] = {"ca-cert", true},
    [CLIENT_OPT_INSECURE] = {"insecure", false},
    [CLIENT_OPT_JSON] = {"json", false},
    [CLIENT_OPT_HELP] = {"help", false},
    [CLIENT_OPT_NO_WAIT] = {"no-wait", false},
    [CLIENT_OPT_TENANT] = {"tenant", true},
    [CLIENT_OPT_USER] = {"user", true},
    [CLIENT_OPT_ROLE] = {"role", true},
    [CLIENT_OPT_DESCRIPTION] = {"description", true},
    [CLIENT_OPT_TEMPLATE] = {"template", true},
    [CLIENT_OPT_CPUS] = {"cpus", true},
    [CLIENT_OPT_MEMORY] = {"memory", true},
    [CLIENT_OPT_DISK] = {"disk", true},
    [CLIENT_OPT_FULL] = {"full", false},
    [CLIENT_OPT_RESTART] = {"restart", true},
    [CLIENT_OPT_FORWARD] = {"forward", true},
    [CLIENT_OPT_HOSTNAME] = {"hostname", true},
    [CLIENT_OPT_SSH_KEY] = {"ssh-key", true},
    [CLIENT_OPT_USER_DATA] = {"user-data", true},
    [CLIENT_OPT_IP] = {"ip", true},
    [CLIENT_OPT_GW] = {"gw", true},
    [CLIENT_OPT_DNS] = {"dns", true},
    [CLIENT_OPT_START] = {"start", false},
    [CLIENT_OPT_VOLUME] = {"volume", true},
    [CLIENT_OPT_FROM_VM] = {"from-vm", true},
    [CLIENT_OPT_KERNEL] = {"kernel", true},
    [CLIENT_OPT_INITRD] = {"initrd", true},
    [CLIENT_OPT_CMDLINE] = {"cmdline", true},
    [CLIENT_OPT_SIZE] = {"size", true},
    [CLIENT_OPT_FORMAT] = {"format", true},
    [CLIENT_OPT_POOL] = {"pool", true},
    [CLIENT_OPT_VCPUS] = {"vcpus", true},
    [CLIENT_OPT_VMS] = {"vms", true},
    [CLIENT_OPT_CPU_OVERCOMMIT] = {"cpu-overcommit", true},
    [CLIENT_OPT_MEMORY_OVERCOMMIT] = {"memory-overcommit", true},
    [CLIENT_OPT_TIMEOUT] = {"timeout", true},
    [CLIENT_OPT_CPU_SHARES] = {"cpu-shares", true},
    [CLIENT_OPT_CPU_LIMIT] = {"cpu-limit", true},
    [CLIENT_OPT_CPU_RESERVATION] = {"cpu-reservation", true},
    [CLIENT_OPT_MEMORY_SHARES] = {"memory-shares", true},
    [CLIENT_OPT_MEMORY_LIMIT] = {"memory-limit", true},
    [CLIENT_OPT_MEMORY_RESERVATION] = {"memory-reservation", true},
    [CLIENT_OPT_VM_CPUSET] = {"vm-cpuset", true},
    [CLIENT_OPT_VM_MEMORY] = {"vm-memory", true},
    [CLIENT_OPT_DISK_LIMIT] = {"disk-limit", true},
    [CLIENT_OPT_NET_LIMIT] = {"net-limit", true},
    [CLIENT_OPT_SUBNET] = {"subnet", true},
    [CLIENT_OPT_GATEWAY] = {"gateway", true},
    [CLIENT_OPT_NO_DHCP] = {"no-dhcp", false},
    [CLIENT_OPT_NETWORK] = {"network", true},
    [CLIENT_OPT_SECGROUP] = {"secgroup", true},
    [CLIENT_OPT_PEER] = {"peer", true},
    [CLIENT_OPT_BRIDGE] = {"bridge", true},
    [CLIENT_OPT_EXTERNAL] = {"external", true},
    [CLIENT_OPT_NO_SNAT] = {"no-snat", false},
    [CLIENT_OPT_VLAN] = {"vlan", true},
    [CLIENT_OPT_VXLAN_VNI] = {"vxlan-vni", true},
    [CLIENT_OPT_VXLAN_PEER] = {"vxlan-peer", true},
};

#define BIT(o) (UINT64_C(1) << (o))
#define GLOBAL_OPTS                                                              \
    (BIT(CLIENT_OPT_HOST) | BIT(CLIENT_OPT_TOKEN) | BIT(CLIENT_OPT_TOKEN_FILE) | \
     BIT(CLIENT_OPT_CA_CERT) | BIT(CLIENT_OPT_INSECURE) | BIT(CLIENT_OPT_JSON) | \
     BIT(CLIENT_OPT_HELP))
#define WAIT   BIT(CLIENT_OPT_NO_WAIT)
#define TENANT BIT(CLIENT_OPT_TENANT)

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CLIENT_ERR_LEN, fmt, ap);
    va_end(ap);
}

int client_args_parse(int argc, char **argv, struct client_args *a, char *err)
{
    bool options_end = false;

    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq;
        size_t len;
        int o;

        if (options_end || arg[0] != '-' || !arg[1]) {
            if (a->nwords == CLIENT_WORDS_MAX) {
                set_err(err, "too many arguments ('%s')", arg);
                return -EINVAL;
            }
            a->words[a->nwords++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            options_end = true;
            continue;
        }
        if (!strcmp(arg, "-h"))
            arg = "--help";
        if (arg[1] != '-') {
            set_err(err, "unknown option '%s'", arg);
            return -EINVAL;
        }
        eq = strchr(arg + 2, '=');
        len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        for (o = 0; o < CLIENT_OPT_COUNT; o++) {
            if (strlen(opt_defs[o].name) == len && !memcmp(opt_defs[o].name, arg + 2, len))
                break;
        }
        if (o == CLIENT_OPT_COUNT) {
            set_err(err, "unknown option '%.*s'", (int)len + 2, arg);
            return -EINVAL;
        }
        if (a->nopts == CLIENT_OPTS_MAX) {
            set_err(err, "too many options");
            return -EINVAL;
        }
        a->opts[a->nopts].opt = (enum client_opt)o;
        if (opt_defs[o].value && eq) {
            a->opts[a->nopts].value = eq + 1;
        } else if (opt_defs[o].value) {
            if (i + 1 == argc) {
                set_err(err, "option '--%s' needs a value", opt_defs[o].name);
                return -EINVAL;
            }
            a->opts[a->nopts].value = argv[++i];
        } else if (eq) {
            set_err(err, "option '--%s' takes no value", opt_defs[o].name);
            return -EINVAL;
        }
        a->nopts++;
    }
    return 0;
}

const char *client_args_get(const struct client_args *a, enum client_opt opt)
{
    for (int i = a->nopts - 1; i >= 0; i--) {
        if (a->opts[i].opt == opt)
            return a->opts[i].value;
    }
    return NULL;
}

bool client_args_has(const struct client_args *a, enum client_opt opt)
{
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].opt == opt)
            return true;
    }
    return false;
}

/* ---- Paths and bodies ---- */

/* Appends s to the request's path; with encode, every byte but RFC 3986's unreserved ones
 * (ALPHA DIGIT - . _ ~, §2.3) as %XX, so that a name is always one segment or value. */
static int path_add(struct client_request *r, const char *s, bool encode, char *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(r->path);

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = !encode || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';

        if (n + 4 > sizeof(r->path)) {
            set_err(err, "the request's path is longer than %d bytes", CLIENT_PATH_MAX - 1);
            return -EINVAL;
        }
        if (plain) {
            r->path[n++] = (char)c;
        } else {
            r->path[n++] = '%';
            r->path[n++] = hex[c >> 4];
            r->path[n++] = hex[c & 15];
        }
    }
    r->path[n] = 0;
    return 0;
}

/* Sets the path to "/api/v1" followed by parts: literal pieces ("/vms") and, for each "%s" in
 * the list, the next name (encoded). The list ends with NULL. With a, a tenant-scoped
 * collection: `?tenant=T` when --tenant T was given (a platform-admin's choice of tenant). */
static int path_set(struct client_request *r, const struct client_args *a, char *err, ...)
{
    const char *part, *tenant = a ? client_args_get(a, CLIENT_OPT_TENANT) : NULL;
    va_list ap;
    int ret = 0;

    snprintf(r->path, sizeof(r->path), "/api/v1");
    va_start(ap, err);
    while (!ret && (part = va_arg(ap, const char *))) {
        if (!strcmp(part, "%s")) {
            ret = path_add(r, "/", false, err);
            if (!ret)
                ret = path_add(r, va_arg(ap, const char *), true, err);
        } else {
            ret = path_add(r, part, false, err);
        }
    }
    va_end(ap);
    if (!ret && tenant)
        ret = path_add(r, "?tenant=", false, err);
    if (!ret && tenant)
        ret = path_add(r, tenant, true, err);
    return ret;
}

/* Ends a build: with ret 0, takes body over (NULL: none) and stores its text in r->body;
 * otherwise drops body. Returns ret, or -ENOMEM. */
static int finish(struct client_request *r, json_t *body, int ret, char *err)
{
    if (ret || !body) {
        json_decref(body);
        return ret;
    }
    r->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!r->body) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int set_str(json_t *o, const char *key, const char *v)
{
    return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

/* A size option ("512M", "2G"; bytes in the body). */
static int opt_size(const struct client_args *a, enum client_opt opt, json_t *o, const char *key,
                    char *err)
{
    const char *v = client_args_get(a, opt);
    uint64_t bytes;

    if (!v)
        return 0;
    if (control_client_parse_size(v, &bytes) || !bytes || bytes > INT64_MAX) {
        set_err(err, "--%s '%s' is not a size such as 512M or 2G (K, M, G or T; no suffix: M)",
                opt_defs[opt].name, v);
        return -EINVAL;
    }
    return json_object_set_new(o, key, json_integer((json_int_t)bytes)) ? -ENOMEM : 0;
}

/* A whole-number option in 1..max, or "unlimited" (null) when allow_null. */
static int opt_count(const struct client_args *a, enum client_opt opt, json_t *o, const char *key,
                     long long max, bool allow_null, char *err)
{
    const char *v = client_args_get(a, opt);
    long long n;
    char *end;

    if (!v)
        return 0;
    if (allow_null && !strcmp(v, "unlimited"))
        return json_object_set_new(o, key, json_null()) ? -ENOMEM : 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno || n < (allow_null ? 0 : 1) || n > max) {
        set_err(err, "--%s '%s' is not a number in %d..%lld%s", opt_defs[opt].name, v,
                allow_null ? 0 : 1, max, allow_null ? " or 'unlimited'" : "");
        return -EINVAL;
    }
    return json_object_set_new(o, key, json_integer(n)) ? -ENOMEM : 0;
}

static int opt_resources(const struct client_args *a, json_t *o, bool vm, char *err);
static int opt_io_limits(const struct client_args *a, enum client_opt opt, json_t *o,
                         const char *group, char *err);

/* Reads a small text file (--ssh-key, --user-data) into a JSON string. */
static int read_text(const char *opt, const char *path, json_t **out, char *err)
{
    char *buf = NULL;
    struct stat st;
    ssize_t n;
    int fd, ret = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st)) {
        ret = -errno;
        set_err(err, "--%s %s: %s", opt, path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        ret = -EINVAL;
        set_err(err, "--%s %s: expected a regular file of at most %u bytes", opt, path, FILE_MAX);
        goto close_fd;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        ret = -ENOMEM;
        set_err(err, "out of memory");
        goto close_fd;
    }
    n = read(fd, buf, (size_t)st.st_size);
    if (n < 0) {
        ret = -errno;
        set_err(err, "--%s %s: %s", opt, path, strerror(errno));
        goto free_buf;
    }
    /* A public key file ends with a newline that is not part of the key. */
    while (!strcmp(opt, "ssh-key") && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    *out = json_stringn(buf, (size_t)n);
    if (!*out) {
        ret = -EINVAL;
        set_err(err, "--%s %s: expected UTF-8 text", opt, path);
    }
free_buf:
    free(buf);
close_fd:
    if (fd >= 0)
        close(fd);
    return ret;
}

/* ---- The commands ---- */

struct command;
typedef int build_fn(const struct command *c, const struct client_args *a, const char *self_tenant,
                     struct client_request *r, char *err);

struct command {
    const char *noun;
    const char *verb;         /* NULL: the noun alone (audit) */
    int min_words, max_words; /* positional arguments after the verb */
    uint64_t opts;            /* the options it takes, besides the global ones */
    const char *args;         /* usage, after "NOUN VERB" */
    const char *summary;
    build_fn *build;
};

/* The positional arguments of the command (after NOUN [VERB]). */
static const char *word(const struct command *c, const struct client_args *a, int i)
{
    int first = c->verb ? 2 : 1;

    return first + i < a->nwords ? a->words[first + i] : NULL;
}

static const struct client_column tenant_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column user_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"ROLE", "role", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column token_cols[] = {
    {"ID", "id", CLIENT_CELL_TEXT},
    {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"USER", "user", CLIENT_CELL_TEXT},
    {"ROLE", "role", CLIENT_CELL_TEXT},
    {"REVOKED", "revoked", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
    {"DESCRIPTION", "description", CLIENT_CELL_TEXT},
};
static const struct client_column audit_cols[] = {
    {"TIME", "time", CLIENT_CELL_TIME},       {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"ACTOR", "actor", CLIENT_CELL_TEXT},     {"ACTION", "action", CLIENT_CELL_TEXT},
    {"TARGET", "target", CLIENT_CELL_TEXT},   {"STATUS", "status", CLIENT_CELL_TEXT},
    {"MESSAGE", "message", CLIENT_CELL_TEXT},
};
static const struct client_column vm_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"STATE", "state", CLIENT_CELL_TEXT},
    {"CPUS", "cpus", CLIENT_CELL_TEXT},
    {"MEMORY", "memory_bytes", CLIENT_CELL_SIZE},
    {"DISK", "disk_bytes", CLIENT_CELL_SIZE},
    {"TEMPLATE", "template", CLIENT_CELL_TEXT},
    {"RESTART", "restart_policy", CLIENT_CELL_TEXT},
};
static const struct client_column snapshot_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column template_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},       {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"CPUS", "cpus", CLIENT_CELL_TEXT},       {"MEMORY", "memory_bytes", CLIENT_CELL_SIZE},
    {"DISK", "disk_bytes", CLIENT_CELL_SIZE}, {"VOLUME", "volume", CLIENT_CELL_TEXT},
    {"OS", "os", CLIENT_CELL_TEXT},
};
static const struct client_column volume_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},       {"FORMAT", "format", CLIENT_CELL_TEXT},
    {"SIZE", "size_bytes", CLIENT_CELL_SIZE}, {"ALLOCATED", "allocated_bytes", CLIENT_CELL_SIZE},
    {"POOL", "pool", CLIENT_CELL_TEXT},       {"BACKING", "backing", CLIENT_CELL_TEXT},
    {"USED-BY", "used_by", CLIENT_CELL_TEXT},
};
static const struct client_column secgroup_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"DESCRIPTION", "description", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column network_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},     {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"SUBNET", "subnet", CLIENT_CELL_TEXT}, {"GATEWAY", "gateway", CLIENT_CELL_TEXT},
    {"DHCP", "dhcp", CLIENT_CELL_TEXT},     {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column drift_cols[] = {
    {"OBJECT", "object", CLIENT_CELL_TEXT},
    {"PROBLEM", "problem", CLIENT_CELL_TEXT},
};
static const struct client_column router_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"TENANT", "tenant", CLIENT_CELL_TEXT},
    {"EXTERNAL", "external_network", CLIENT_CELL_TEXT},
    {"EXTERNAL-IP", "external_ip", CLIENT_CELL_TEXT},
    {"SNAT", "snat", CLIENT_CELL_TEXT},
    {"CREATED", "created", CLIENT_CELL_TIME},
};
static const struct client_column ext_network_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},       {"SUBNET", "subnet", CLIENT_CELL_TEXT},
    {"GATEWAY", "gateway", CLIENT_CELL_TEXT}, {"BRIDGE", "bridge", CLIENT_CELL_TEXT},
    {"POOL", "pool", CLIENT_CELL_TEXT},
};
static const struct client_column pool_cols[] = {
    {"NAME", "name", CLIENT_CELL_TEXT},
    {"PATH", "path", CLIENT_CELL_TEXT},
    {"CAPACITY", "capacity_bytes", CLIENT_CELL_SIZE},
    {"USED", "used_bytes", CLIENT_CELL_SIZE},
};
static const struct client_column operation_cols[] = {
    {"ID", "id", CLIENT_CELL_TEXT},
    {"ACTION", "action", CLIENT_CELL_TEXT},
    {"TARGET", "target", CLIENT_CELL_TEXT},
    {"STATUS", "status", CLIENT_CELL_TEXT},
    {"PROGRESS", "progress", CLIENT_CELL_PERCENT},
    {"CREATED", "created", CLIENT_CELL_TIME},
    {"ERROR", "error", CLIENT_CELL_TEXT},
};

#define COLS(c) c, sizeof(c) / sizeof(c[0])

static void view_table(struct client_request *r, const struct client_column *cols, size_t n)
{
    r->view = CLIENT_VIEW_TABLE;
    r->columns = cols;
    r->ncolumns = n;
}

/* The nouns with a collection of their own: where it lives and how `list` shows it. */
struct noun {
    const char *name;
    const char *collection; /* "/vms" */
    const struct client_column *cols;
    size_t ncols;
};

static const struct noun nouns[] = {
    {"tenant", "/tenants", COLS(tenant_cols)},
    {"token", "/tokens", COLS(token_cols)},
    {"vm", "/vms", COLS(vm_cols)},
    {"template", "/templates", COLS(template_cols)},
    {"volume", "/volumes", COLS(volume_cols)},
    {"pool", "/pools", COLS(pool_cols)},
    {"network", "/networks", COLS(network_cols)},
    {"secgroup", "/security-groups", COLS(secgroup_cols)},
    {"router", "/routers", COLS(router_cols)},
    {"external-network", "/external-networks", COLS(ext_network_cols)},
    {"operation", "/operations", COLS(operation_cols)},
};

/* The collection of a noun of the table above ("/vms" for vm). */
static const struct noun *noun_find(const char *name)
{
    for (size_t i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++) {
        if (!strcmp(nouns[i].name, name))
            return &nouns[i];
    }
    return NULL;
}

static const char *collection(const char *name)
{
    const struct noun *n = noun_find(name);

    return n ? n->collection : NULL;
}

/* NOUN list: GET the collection. */
static int build_list(const struct command *c, const struct client_args *a, const char *self,
                      struct client_request *r, char *err)
{
    const struct noun *n = noun_find(c->noun);

    r->method = "GET";
    view_table(r, n->cols, n->ncols);
    return path_set(r, a, err, n->collection, NULL);
}

/* NOUN show NAME: GET the object. */
static int build_show(const struct command *c, const struct client_args *a, const char *self,
                      struct client_request *r, char *err)
{
    r->method = "GET";
    r->view = CLIENT_VIEW_OBJECT;
    return path_set(r, a, err, collection(c->noun), "%s", word(c, a, 0), NULL);
}

/* NOUN delete NAME (and token revoke ID). */
static int build_delete(const struct command *c, const struct client_args *a, const char *self,
                        struct client_request *r, char *err)
{
    r->method = "DELETE";
    r->view = CLIENT_VIEW_NONE;
    snprintf(r->done, sizeof(r->done), "%s %s %s",
             !strcmp(c->verb, "revoke") ? "revoked" : "deleted", c->noun, word(c, a, 0));
    return path_set(r, a, err, collection(c->noun), "%s", word(c, a, 0), NULL);
}

static int build_tenant_create(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    if (!body || set_str(body, "name", word(c, a, 0))) {
        json_decref(body);
        return -ENOMEM;
    }
    return finish(r, body, path_set(r, NULL, err, "/tenants", NULL), err);
}

/* user list|create: the users of --tenant T, or of the caller's own tenant. */
static int build_user(const struct command *c, const struct client_args *a, const char *self,
                      struct client_request *r, char *err)
{
    const char *tenant = client_args_get(a, CLIENT_OPT_TENANT);
    json_t *body;

    if (!strcmp(c->verb, "create") && !client_args_get(a, CLIENT_OPT_ROLE)) {
        set_err(err, "--role R is required (tenant-admin, operator or viewer)");
        return -EINVAL;
    }
    if (!tenant && !self)
        return -EAGAIN;
    if (!tenant && !*self) {
        set_err(err, "a platform user has no tenant of its own: name one with --tenant T");
        return -EINVAL;
    }
    tenant = tenant ? tenant : self;
    if (!strcmp(c->verb, "list")) {
        r->method = "GET";
        view_table(r, COLS(user_cols));
        return path_set(r, NULL, err, "/tenants", "%s", tenant, "/users", NULL);
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    body = json_object();
    if (!body || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "role", client_args_get(a, CLIENT_OPT_ROLE))) {
        json_decref(body);
        return -ENOMEM;
    }
    return finish(r, body, path_set(r, NULL, err, "/tenants", "%s", tenant, "/users", NULL), err);
}

static int build_token_create(const struct command *c, const struct client_args *a,
                              const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    if (!body || set_str(body, "tenant", client_args_get(a, CLIENT_OPT_TENANT)) ||
        set_str(body, "user", client_args_get(a, CLIENT_OPT_USER)) ||
        set_str(body, "role", client_args_get(a, CLIENT_OPT_ROLE)) ||
        set_str(body, "description", client_args_get(a, CLIENT_OPT_DESCRIPTION))) {
        json_decref(body);
        return -ENOMEM;
    }
    return finish(r, body, path_set(r, NULL, err, "/tokens", NULL), err);
}

static int build_audit(const struct command *c, const struct client_args *a, const char *self,
                       struct client_request *r, char *err)
{
    r->method = "GET";
    view_table(r, COLS(audit_cols));
    return path_set(r, a, err, "/audit", NULL);
}

/* "tcp:8022:22", "udp:5353:53", "tcp:127.0.0.1:8022:22": a port forward. */
static int parse_forward(const char *s, json_t *arr, char *err)
{
    char proto[8], addr[64] = "";
    unsigned host_port, guest_port;
    char tail;
    json_t *fw;

    if (sscanf(s, "%7[a-z]:%u:%u%c", proto, &host_port, &guest_port, &tail) != 3 &&
        sscanf(s, "%7[a-z]:%63[0-9.]:%u:%u%c", proto, addr, &host_port, &guest_port, &tail) != 4) {
        set_err(err, "--forward '%s': expected PROTO:[ADDR:]HOST_PORT:GUEST_PORT (tcp:8022:22)", s);
        return -EINVAL;
    }
    if ((strcmp(proto, "tcp") && strcmp(proto, "udp")) || !host_port || host_port > 65535 ||
        !guest_port || guest_port > 65535) {
        set_err(err, "--forward '%s': expected tcp or udp and ports in 1..65535", s);
        return -EINVAL;
    }
    fw = json_pack("{s:s,s:i,s:i}", "proto", proto, "host_port", (int)host_port, "guest_port",
                   (int)guest_port);
    if (!fw || (addr[0] && set_str(fw, "host_addr", addr)) || json_array_append_new(arr, fw))
        return -ENOMEM;
    return 0;
}

/* The cloud_init object of vm create, or NULL when no option asks for one. */
static int vm_cloud_init(const struct client_args *a, json_t *body, char *err)
{
    json_t *ci = json_object(), *keys = json_array(), *dns = json_array(), *net = NULL, *v;
    const char *ip = client_args_get(a, CLIENT_OPT_IP);
    int ret = -ENOMEM;

    if (!ci || !keys || !dns)
        goto free_all;
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].opt == CLIENT_OPT_SSH_KEY) {
            ret = read_text("ssh-key", a->opts[i].value, &v, err);
            if (ret || json_array_append_new(keys, v))
                goto free_all;
        } else if (a->opts[i].opt == CLIENT_OPT_DNS) {
            if (json_array_append_new(dns, json_string(a->opts[i].value)))
                goto free_all;
        }
    }
    ret = -ENOMEM;
    if (set_str(ci, "hostname", client_args_get(a, CLIENT_OPT_HOSTNAME)))
        goto free_all;
    if (json_array_size(keys) && json_object_set(ci, "ssh_keys", keys))
        goto free_all;
    if (client_args_get(a, CLIENT_OPT_USER_DATA)) {
        ret = read_text("user-data", client_args_get(a, CLIENT_OPT_USER_DATA), &v, err);
        if (ret)
            goto free_all;
        ret = -ENOMEM;
        if (json_object_set_new(ci, "user_data", v))
            goto free_all;
    }
    if (!ip && (client_args_has(a, CLIENT_OPT_GW) || json_array_size(dns))) {
        set_err(err, "--gw and --dns need --ip ADDRESS/PREFIX (a static address)");
        ret = -EINVAL;
        goto free_all;
    }
    if (ip) {
        if (!strchr(ip, '/')) {
            set_err(err, "--ip '%s': expected ADDRESS/PREFIX such as 10.0.2.15/24", ip);
            ret = -EINVAL;
            goto free_all;
        }
        net = json_pack("{s:s,s:s}", "mode", "static", "address", ip);
        if (!net || set_str(net, "gateway", client_args_get(a, CLIENT_OPT_GW)) ||
            (json_array_size(dns) && json_object_set(net, "dns", dns)) ||
            json_object_set_new(ci, "network", net))
            goto free_all;
    }
    ret = json_object_size(ci) && json_object_set(body, "cloud_init", ci) ? -ENOMEM : 0;
free_all:
    json_decref(ci);
    json_decref(keys);
    json_decref(dns);
    return ret;
}

static int build_vm_create(const struct command *c, const struct client_args *a, const char *self,
                           struct client_request *r, char *err)
{
    const char *restart = client_args_get(a, CLIENT_OPT_RESTART);
    json_t *body = json_object(), *forwards = json_array(), *res;
    int ret = -ENOMEM;

    if (!client_args_get(a, CLIENT_OPT_TEMPLATE)) {
        set_err(err, "--template T is required (see `tessera template list`)");
        ret = -EINVAL;
        goto free_body;
    }
    if (restart && strcmp(restart, "always") && strcmp(restart, "on-failure") &&
        strcmp(restart, "never")) {
        set_err(err, "--restart '%s': expected always, on-failure or never", restart);
        ret = -EINVAL;
        goto free_body;
    }
    if (!body || !forwards || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "template", client_args_get(a, CLIENT_OPT_TEMPLATE)))
        goto free_body;
    ret = opt_count(a, CLIENT_OPT_CPUS, body, "cpus", 64, false, err);
    if (!ret)
        ret = opt_size(a, CLIENT_OPT_MEMORY, body, "memory_bytes", err);
    if (!ret)
        ret = opt_size(a, CLIENT_OPT_DISK, body, "disk_bytes", err);
    if (ret)
        goto free_body;
    ret = -ENOMEM;
    if (set_str(body, "clone", client_args_has(a, CLIENT_OPT_FULL) ? "full" : "linked") ||
        set_str(body, "restart_policy", restart))
        goto free_body;
    for (int i = 0; i < a->nopts; i++) {
        if (a->opts[i].opt == CLIENT_OPT_FORWARD) {
            ret = parse_forward(a->opts[i].value, forwards, err);
            if (ret)
                goto free_body;
        }
    }
    ret = -ENOMEM;
    if (json_array_size(forwards) && json_object_set(body, "port_forwards", forwards))
        goto free_body;
    /* Each --network NAME is one NIC on that virtual network, in order; each --secgroup G
     * puts the NIC of the --network before it in group G. */
    for (int i = 0; i < a->nopts; i++) {
        json_t *nics = json_object_get(body, "nics"), *nic, *groups;

        if (a->opts[i].opt == CLIENT_OPT_SECGROUP) {
            nic = json_array_get(nics, json_array_size(nics) - 1);
            if (!nic) {
                set_err(err, "--secgroup %s: name the NIC's --network before its groups",
                        a->opts[i].value);
                ret = -EINVAL;
                goto free_body;
            }
            groups = json_object_get(nic, "security_groups");
            if (!groups && json_object_set_new(nic, "security_groups", groups = json_array()))
                goto free_body;
            if (json_array_append_new(groups, json_string(a->opts[i].value)))
                goto free_body;
            continue;
        }
        if (a->opts[i].opt != CLIENT_OPT_NETWORK)
            continue;
        if (!nics && json_object_set_new(body, "nics", nics = json_array()))
            goto free_body;
        if (json_array_append_new(nics, json_pack("{s:s}", "network", a->opts[i].value)))
            goto free_body;
    }
    ret = vm_cloud_init(a, body, err);
    if (ret)
        goto free_body;
    res = json_object();
    ret = res ? opt_resources(a, res, true, err) : -ENOMEM;
    if (!ret && json_object_size(res))
        ret = json_object_set(body, "resources", res) ? -ENOMEM : 0;
    json_decref(res);
    if (ret)
        goto free_body;
    ret = -ENOMEM;
    if (json_object_set_new(body, "start", json_boolean(client_args_has(a, CLIENT_OPT_START))))
        goto free_body;
    json_decref(forwards);
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/vms", NULL), err);
free_body:
    json_decref(forwards);
    json_decref(body);
    return ret;
}

/* vm start|stop|shutdown|reboot|pause|resume NAME */
static int build_vm_action(const struct command *c, const struct client_args *a, const char *self,
                           struct client_request *r, char *err)
{
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return path_set(r, a, err, "/vms", "%s", word(c, a, 0), "/actions/", c->verb, NULL);
}

static int build_vm_console(const struct command *c, const struct client_args *a, const char *self,
                            struct client_request *r, char *err)
{
    r->method = "GET";
    r->console = true;
    return path_set(r, a, err, "/vms", "%s", word(c, a, 0), "/console", NULL);
}

/* NOUN snapshot NAME create|list|revert|delete [SNAP], for vm and volume. */
static int build_snapshot(const struct command *c, const struct client_args *a, const char *self,
                          struct client_request *r, char *err)
{
    const char *name = word(c, a, 0), *verb = word(c, a, 1), *snap = word(c, a, 2);
    const char *coll = collection(c->noun);
    json_t *body;

    if (!strcmp(verb, "list")) {
        if (snap) {
            set_err(err, "snapshot list takes no SNAP");
            return -EINVAL;
        }
        r->method = "GET";
        view_table(r, COLS(snapshot_cols));
        return path_set(r, a, err, coll, "%s", name, "/snapshots", NULL);
    }
    if (strcmp(verb, "create") && strcmp(verb, "revert") && strcmp(verb, "delete")) {
        set_err(err, "snapshot '%s': expected create, list, revert or delete", verb);
        return -EINVAL;
    }
    if (!snap) {
        set_err(err, "snapshot %s needs the snapshot's name", verb);
        return -EINVAL;
    }
    if (!strcmp(verb, "create")) {
        r->method = "POST";
        r->view = CLIENT_VIEW_OBJECT;
        body = json_object();
        if (!body || set_str(body, "name", snap)) {
            json_decref(body);
            return -ENOMEM;
        }
        return finish(r, body, path_set(r, a, err, coll, "%s", name, "/snapshots", NULL), err);
    }
    if (!strcmp(verb, "revert")) {
        r->method = "POST";
        r->view = CLIENT_VIEW_OBJECT;
        return path_set(r, a, err, coll, "%s", name, "/snapshots", "%s", snap, "/revert", NULL);
    }
    r->method = "DELETE";
    r->view = CLIENT_VIEW_NONE;
    snprintf(r->done, sizeof(r->done), "deleted snapshot %s of %s %s", snap, c->noun, name);
    return path_set(r, a, err, coll, "%s", name, "/snapshots", "%s", snap, NULL);
}

/* vm clone NAME NEW, volume clone SRC DST [--full] */
static int build_clone(const struct command *c, const struct client_args *a, const char *self,
                       struct client_request *r, char *err)
{
    json_t *body = json_object();

    if (!body || set_str(body, "name", word(c, a, 1)) ||
        (!strcmp(c->noun, "volume") &&
         set_str(body, "mode", client_args_has(a, CLIENT_OPT_FULL) ? "full" : "linked"))) {
        json_decref(body);
        return -ENOMEM;
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body,
                  path_set(r, a, err, collection(c->noun), "%s", word(c, a, 0), "/clone", NULL),
                  err);
}

static int build_template_create(const struct command *c, const struct client_args *a,
                                 const char *self, struct client_request *r, char *err)
{
    const char *volume = client_args_get(a, CLIENT_OPT_VOLUME);
    const char *vm = client_args_get(a, CLIENT_OPT_FROM_VM);
    const char *kernel = client_args_get(a, CLIENT_OPT_KERNEL);
    json_t *body = json_object(), *boot;
    int ret = -ENOMEM;

    if (!volume == !vm) {
        set_err(err, "expected one of --volume V or --from-vm VM");
        ret = -EINVAL;
        goto free_body;
    }
    if (!kernel &&
        (client_args_has(a, CLIENT_OPT_INITRD) || client_args_has(a, CLIENT_OPT_CMDLINE))) {
        set_err(err, "--initrd and --cmdline need --kernel");
        ret = -EINVAL;
        goto free_body;
    }
    if (!body || set_str(body, "name", word(c, a, 0)) || set_str(body, "volume", volume) ||
        set_str(body, "from_vm", vm))
        goto free_body;
    ret = opt_count(a, CLIENT_OPT_CPUS, body, "cpus", 64, false, err);
    if (!ret)
        ret = opt_size(a, CLIENT_OPT_MEMORY, body, "memory_bytes", err);
    if (!ret)
        ret = opt_size(a, CLIENT_OPT_DISK, body, "disk_bytes", err);
    if (ret)
        goto free_body;
    ret = -ENOMEM;
    if (kernel) {
        boot = json_object();
        if (!boot || set_str(boot, "kernel", kernel) ||
            set_str(boot, "initrd", client_args_get(a, CLIENT_OPT_INITRD)) ||
            set_str(boot, "cmdline", client_args_get(a, CLIENT_OPT_CMDLINE)) ||
            json_object_set_new(body, "boot", boot))
            goto free_body;
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/templates", NULL), err);
free_body:
    json_decref(body);
    return ret;
}

/* network check NAME, network repair NAME: the drift, before or after a repair. */
static int build_network_check(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    bool repair = !strcmp(c->verb, "repair");

    (void)self;
    r->method = repair ? "POST" : "GET";
    r->view = CLIENT_VIEW_CHECK;
    r->columns = drift_cols;
    r->ncolumns = sizeof(drift_cols) / sizeof(drift_cols[0]);
    return path_set(r, a, err, "/networks", "%s", word(c, a, 0), repair ? "/repair" : "/check",
                    NULL);
}

/* external-network create NAME --bridge BR --subnet CIDR --pool FIRST-LAST [--gateway ADDR] */
static int build_ext_network_create(const struct command *c, const struct client_args *a,
                                    const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    if (!client_args_get(a, CLIENT_OPT_BRIDGE) || !client_args_get(a, CLIENT_OPT_SUBNET) ||
        !client_args_get(a, CLIENT_OPT_POOL)) {
        json_decref(body);
        set_err(err, "--bridge, --subnet and --pool are required");
        return -EINVAL;
    }
    if (!body || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "bridge", client_args_get(a, CLIENT_OPT_BRIDGE)) ||
        set_str(body, "subnet", client_args_get(a, CLIENT_OPT_SUBNET)) ||
        set_str(body, "gateway", client_args_get(a, CLIENT_OPT_GATEWAY)) ||
        set_str(body, "pool", client_args_get(a, CLIENT_OPT_POOL))) {
        json_decref(body);
        return -ENOMEM;
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, NULL, err, "/external-networks", NULL), err);
}

/* router create NAME [--external EXT --no-snat --network NET ...] */
static int build_router_create(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object(), *nets = json_array();
    const char *ext = client_args_get(a, CLIENT_OPT_EXTERNAL);

    if (!body || !nets || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "external_network", ext))
        goto nomem;
    for (int i = 0; i < a->nopts; i++)
        if (a->opts[i].opt == CLIENT_OPT_NETWORK &&
            json_array_append_new(nets, json_string(a->opts[i].value)))
            goto nomem;
    if (json_object_set_new(body, "networks", nets))
        goto nomem_body;
    if (client_args_has(a, CLIENT_OPT_NO_SNAT) && json_object_set_new(body, "snat", json_false()))
        goto nomem_body;
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/routers", NULL), err);
nomem:
    json_decref(nets);
nomem_body:
    json_decref(body);
    return -ENOMEM;
}

/* A port: 1..65535 in decimal. */
static int cli_port(const char *s, json_int_t *out)
{
    char *end;
    long v;

    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 5)
        return -EINVAL;
    v = strtol(s, &end, 10);
    if (v < 1 || v > 65535)
        return -EINVAL;
    *out = v;
    return 0;
}

/* router attach|detach NAME NET, forward-add NAME tcp|udp PORT TARGET[:PORT], forward-delete
 * NAME tcp|udp PORT, floating-add NAME TARGET, floating-delete NAME ADDRESS. A TARGET is a VM's
 * name or an address (it has dots). */
static int build_router_sub(const struct command *c, const struct client_args *a, const char *self,
                            struct client_request *r, char *err)
{
    const char *name = word(c, a, 0), *w1 = word(c, a, 1), *w2 = word(c, a, 2);
    const char *w3 = word(c, a, 3);
    char target[128], *colon;
    json_int_t ext_port, port;
    json_t *body = NULL;

    r->view = CLIENT_VIEW_OBJECT;
    if (!strcmp(c->verb, "attach")) {
        r->method = "POST";
        body = json_pack("{s:s}", "network", w1);
        return finish(
            r, body,
            body ? path_set(r, a, err, "/routers", "%s", name, "/networks", NULL) : -ENOMEM, err);
    }
    if (!strcmp(c->verb, "detach")) {
        r->method = "DELETE";
        return path_set(r, a, err, "/routers", "%s", name, "/networks", "%s", w1, NULL);
    }
    if (!strcmp(c->verb, "floating-delete")) {
        r->method = "DELETE";
        return path_set(r, a, err, "/routers", "%s", name, "/floating-ips", "%s", w1, NULL);
    }
    if (!strcmp(c->verb, "floating-add")) {
        r->method = "POST";
        body = json_pack("{s:s}", strchr(w1, '.') ? "ip" : "vm", w1);
        return finish(r, body,
                      body ? path_set(r, a, err, "/routers", "%s", name, "/floating-ips", NULL)
                           : -ENOMEM,
                      err);
    }
    if (strcmp(w1, "tcp") && strcmp(w1, "udp")) {
        set_err(err, "the protocol is tcp or udp, not '%s'", w1);
        return -EINVAL;
    }
    if (cli_port(w2, &ext_port)) {
        set_err(err, "'%s' is not a port (1 to 65535)", w2);
        return -EINVAL;
    }
    if (!strcmp(c->verb, "forward-delete")) {
        r->method = "DELETE";
        return path_set(r, a, err, "/routers", "%s", name, "/port-forwards", "%s", w1, "%s", w2,
                        NULL);
    }
    /* forward-add: TARGET[:PORT], the port the external one when absent. */
    snprintf(target, sizeof(target), "%s", w3 ? w3 : "");
    colon = strchr(target, ':');
    port = ext_port;
    if (colon) {
        *colon = '\0';
        if (cli_port(colon + 1, &port)) {
            set_err(err, "'%s' is not a port (1 to 65535)", colon + 1);
            return -EINVAL;
        }
    }
    if (!target[0]) {
        set_err(err, "expected TARGET: a VM's name or an address, then :PORT if it differs");
        return -EINVAL;
    }
    body = json_pack("{s:s,s:I,s:s,s:I}", "protocol", w1, "external_port", ext_port,
                     strchr(target, '.') ? "ip" : "vm", target, "port", port);
    r->method = "POST";
    return finish(
        r, body,
        body ? path_set(r, a, err, "/routers", "%s", name, "/port-forwards", NULL) : -ENOMEM, err);
}

/* Every --vxlan-peer ADDR, in order, as a new array (NULL: out of memory). */
static json_t *vxlan_peers(const struct client_args *a)
{
    json_t *peers = json_array();

    for (int i = 0; peers && i < a->nopts; i++) {
        if (a->opts[i].opt == CLIENT_OPT_VXLAN_PEER &&
            json_array_append_new(peers, json_string(a->opts[i].value))) {
            json_decref(peers);
            return NULL;
        }
    }
    return peers;
}

/* network create NAME --subnet CIDR [--gateway ADDR --no-dhcp --vlan N
 * --vxlan-vni N --vxlan-peer ADDR...] */
static int build_network_create(const struct command *c, const struct client_args *a,
                                const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object(), *vx = NULL;
    int ret = -ENOMEM;

    if (client_args_has(a, CLIENT_OPT_VXLAN_PEER) && !client_args_has(a, CLIENT_OPT_VXLAN_VNI)) {
        set_err(err, "--vxlan-peer goes with --vxlan-vni N (the network's VXLAN id)");
        ret = -EINVAL;
        goto free_body;
    }
    if (body && client_args_has(a, CLIENT_OPT_VXLAN_VNI)) {
        vx = json_object();
        if (!vx || json_object_set_new(vx, "peers", vxlan_peers(a)) ||
            json_object_set_new(body, "vxlan", vx))
            goto free_body;
        ret = opt_count(a, CLIENT_OPT_VXLAN_VNI, vx, "vni", 16777215, false, err);
        if (ret)
            goto free_body;
        ret = -ENOMEM;
    }
    if (body) {
        ret = opt_count(a, CLIENT_OPT_VLAN, body, "vlan", 4094, false, err);
        if (ret)
            goto free_body;
        ret = -ENOMEM;
    }

    if (!client_args_get(a, CLIENT_OPT_SUBNET)) {
        set_err(err, "--subnet A.B.C.D/N is required (such as 10.0.0.0/24)");
        ret = -EINVAL;
        goto free_body;
    }
    if (!body || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "subnet", client_args_get(a, CLIENT_OPT_SUBNET)) ||
        set_str(body, "gateway", client_args_get(a, CLIENT_OPT_GATEWAY)) ||
        json_object_set_new(body, "dhcp", json_boolean(!client_args_has(a, CLIENT_OPT_NO_DHCP))))
        goto free_body;
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/networks", NULL), err);
free_body:
    json_decref(body);
    return ret;
}

/* secgroup create NAME: a group with no rules yet (ingress from its members only). */
static int build_secgroup_create(const struct command *c, const struct client_args *a,
                                 const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    if (!body || set_str(body, "name", word(c, a, 0))) {
        json_decref(body);
        return -ENOMEM;
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/security-groups", NULL), err);
}

/* secgroup rule-add NAME ingress|egress tcp|udp|icmp|any [PORTS] [--peer CIDR|group:G] */
static int build_secgroup_rule_add(const struct command *c, const struct client_args *a,
                                   const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    if (!body || set_str(body, "direction", word(c, a, 1)) ||
        set_str(body, "protocol", word(c, a, 2)) || set_str(body, "ports", word(c, a, 3)) ||
        set_str(body, "peer", client_args_get(a, CLIENT_OPT_PEER))) {
        json_decref(body);
        return -ENOMEM;
    }
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(
        r, body, path_set(r, a, err, "/security-groups", "%s", word(c, a, 0), "/rules", NULL), err);
}

/* secgroup rule-delete NAME ID */
static int build_secgroup_rule_delete(const struct command *c, const struct client_args *a,
                                      const char *self, struct client_request *r, char *err)
{
    r->method = "DELETE";
    r->view = CLIENT_VIEW_NONE;
    snprintf(r->done, sizeof(r->done), "secgroup %s rule %s deleted", word(c, a, 0), word(c, a, 1));
    return path_set(r, a, err, "/security-groups", "%s", word(c, a, 0), "/rules", "%s",
                    word(c, a, 1), NULL);
}

/* vm secgroups NAME NIC [GROUP...]: the NIC's groups, all at once (none: unfiltered). */
static int build_vm_secgroups(const struct command *c, const struct client_args *a,
                              const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object(), *groups = json_array();
    int ret = body && groups && !json_object_set(body, "security_groups", groups) ? 0 : -ENOMEM;

    for (int i = 2; !ret && word(c, a, i); i++)
        ret = json_array_append_new(groups, json_string(word(c, a, i))) ? -ENOMEM : 0;
    json_decref(groups);
    if (ret) {
        json_decref(body);
        return ret;
    }
    r->method = "PUT";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body,
                  path_set(r, a, err, "/vms", "%s", word(c, a, 0), "/nics", "%s", word(c, a, 1),
                           "/security-groups", NULL),
                  err);
}

/* network peers NAME [--vxlan-peer ADDR]...: the VXLAN peers replaced, live */
static int build_network_peers(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();

    if (!body || json_object_set_new(body, "peers", vxlan_peers(a))) {
        json_decref(body);
        return -ENOMEM;
    }
    r->method = "PUT";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/networks", "%s", word(c, a, 0), "/vxlan", NULL),
                  err);
}

static int build_volume_create(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    const char *format = client_args_get(a, CLIENT_OPT_FORMAT);
    json_t *body = json_object();
    int ret = -ENOMEM;

    if (!client_args_get(a, CLIENT_OPT_SIZE)) {
        set_err(err, "--size SIZE is required (such as 1G)");
        ret = -EINVAL;
        goto free_body;
    }
    if (format && strcmp(format, "qcow2") && strcmp(format, "raw")) {
        set_err(err, "--format '%s': expected qcow2 or raw", format);
        ret = -EINVAL;
        goto free_body;
    }
    if (!body || set_str(body, "name", word(c, a, 0)) ||
        set_str(body, "format", format ? format : "qcow2") ||
        set_str(body, "pool", client_args_get(a, CLIENT_OPT_POOL)))
        goto free_body;
    ret = opt_size(a, CLIENT_OPT_SIZE, body, "size_bytes", err);
    if (ret)
        goto free_body;
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/volumes", NULL), err);
free_body:
    json_decref(body);
    return ret;
}

static int build_volume_resize(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    const char *size = word(c, a, 1);
    uint64_t bytes;
    json_t *body;

    if (control_client_parse_size(size, &bytes) || !bytes || bytes > INT64_MAX) {
        set_err(err, "SIZE '%s' is not a size such as 512M or 2G (K, M, G or T; no suffix: M)",
                size);
        return -EINVAL;
    }
    body = json_pack("{s:I}", "size_bytes", (json_int_t)bytes);
    if (!body)
        return -ENOMEM;
    r->method = "POST";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/volumes", "%s", word(c, a, 0), "/resize", NULL),
                  err);
}

static int build_volume_upload(const struct command *c, const struct client_args *a,
                               const char *self, struct client_request *r, char *err)
{
    struct stat st;

    if (stat(word(c, a, 1), &st) || !S_ISREG(st.st_mode)) {
        set_err(err, "%s: %s", word(c, a, 1),
                errno && !S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file");
        return -EINVAL;
    }
    r->method = "PUT";
    r->upload = word(c, a, 1);
    r->view = CLIENT_VIEW_OBJECT;
    return path_set(r, a, err, "/volumes", "%s", word(c, a, 0), "/data", NULL);
}

static int build_quota(const struct command *c, const struct client_args *a, const char *self,
                       struct client_request *r, char *err)
{
    json_t *body;
    int ret;

    if (!strcmp(c->verb, "show")) {
        r->method = "GET";
        r->view = CLIENT_VIEW_QUOTA;
        return path_set(r, NULL, err, "/tenants", "%s", word(c, a, 0), "/quota", NULL);
    }
    body = json_object();
    if (!body)
        return -ENOMEM;
    ret = opt_count(a, CLIENT_OPT_VCPUS, body, "vcpus", 1 << 20, true, err);
    if (!ret)
        ret = opt_count(a, CLIENT_OPT_VMS, body, "vms", 1 << 20, true, err);
    if (!ret && client_args_has(a, CLIENT_OPT_MEMORY) &&
        !strcmp(client_args_get(a, CLIENT_OPT_MEMORY), "unlimited"))
        ret = json_object_set_new(body, "memory_bytes", json_null());
    else if (!ret)
        ret = opt_size(a, CLIENT_OPT_MEMORY, body, "memory_bytes", err);
    if (!ret && client_args_has(a, CLIENT_OPT_DISK) &&
        !strcmp(client_args_get(a, CLIENT_OPT_DISK), "unlimited"))
        ret = json_object_set_new(body, "disk_bytes", json_null());
    else if (!ret)
        ret = opt_size(a, CLIENT_OPT_DISK, body, "disk_bytes", err);
    if (!ret && !json_object_size(body)) {
        set_err(err, "quota set: give at least one of --vcpus, --memory, --disk, --vms");
        ret = -EINVAL;
    }
    if (ret) {
        json_decref(body);
        return ret;
    }
    r->method = "PUT";
    r->view = CLIENT_VIEW_QUOTA;
    return finish(r, body, path_set(r, NULL, err, "/tenants", "%s", word(c, a, 0), "/quota", NULL),
                  err);
}

/* An overcommit ratio: a number in (0, 100]. */
static int opt_ratio(const struct client_args *a, enum client_opt opt, json_t *o, const char *key,
                     char *err)
{
    const char *v = client_args_get(a, opt);
    char *end;
    double d;

    if (!v)
        return 0;
    errno = 0;
    d = strtod(v, &end);
    if (!*v || *end || errno || !(d > 0 && d <= 100)) {
        set_err(err, "--%s '%s' is not a ratio such as 1.5 (above 0, at most 100)",
                opt_defs[opt].name, v);
        return -EINVAL;
    }
    /* A whole ratio goes as an integer: the daemon may take only those. */
    if (d == (double)(long long)d)
        return json_object_set_new(o, key, json_integer((json_int_t)d)) ? -ENOMEM : 0;
    return json_object_set_new(o, key, json_real(d)) ? -ENOMEM : 0;
}

static int build_host(const struct command *c, const struct client_args *a, const char *self,
                      struct client_request *r, char *err)
{
    json_t *body;
    int ret;

    r->view = CLIENT_VIEW_OBJECT;
    if (!strcmp(c->verb, "show")) {
        r->method = "GET";
        return path_set(r, NULL, err, "/host", NULL);
    }
    body = json_object();
    if (!body)
        return -ENOMEM;
    ret = opt_ratio(a, CLIENT_OPT_CPU_OVERCOMMIT, body, "cpu_overcommit", err);
    if (!ret)
        ret = opt_ratio(a, CLIENT_OPT_MEMORY_OVERCOMMIT, body, "memory_overcommit", err);
    if (!ret && client_args_has(a, CLIENT_OPT_VM_CPUSET))
        ret = json_object_set_new(body, "vm_cpuset",
                                  json_string(client_args_get(a, CLIENT_OPT_VM_CPUSET)))
                  ? -EINVAL
                  : 0;
    if (!ret && client_args_has(a, CLIENT_OPT_VM_MEMORY) &&
        !strcmp(client_args_get(a, CLIENT_OPT_VM_MEMORY), "none"))
        ret = json_object_set_new(body, "vm_memory_bytes", json_null());
    else if (!ret)
        ret = opt_size(a, CLIENT_OPT_VM_MEMORY, body, "vm_memory_bytes", err);
    if (ret == -EINVAL && !err[0])
        set_err(err, "--vm-cpuset: not text");
    if (!ret && !json_object_size(body)) {
        set_err(err, "host set: give --cpu-overcommit R, --memory-overcommit R, --vm-cpuset "
                     "LIST or --vm-memory SIZE");
        ret = -EINVAL;
    }
    if (ret) {
        json_decref(body);
        return ret;
    }
    r->method = "PUT";
    return finish(r, body, path_set(r, NULL, err, "/host", NULL), err);
}

/* A number of cores (0.5), or "none" (null) where allow_null. */
static int opt_cores(const struct client_args *a, enum client_opt opt, json_t *o, const char *key,
                     bool allow_null, char *err)
{
    const char *v = client_args_get(a, opt);
    char *end;
    double d;

    if (!v)
        return 0;
    if (allow_null && !strcmp(v, "none"))
        return json_object_set_new(o, key, json_null()) ? -ENOMEM : 0;
    errno = 0;
    d = strtod(v, &end);
    if (!*v || *end || errno || !(d >= 0 && d <= 1024)) {
        set_err(err, "--%s '%s' is not a number of cores such as 0.5%s", opt_defs[opt].name, v,
                allow_null ? " (or 'none')" : "");
        return -EINVAL;
    }
    return json_object_set_new(o, key, json_real(d)) ? -ENOMEM : 0;
}

/* The member `group` of o, made when absent (borrowed). */
static json_t *sub(json_t *o, const char *group)
{
    json_t *g = json_object_get(o, group);

    if (!g && !json_object_set_new(o, group, json_object()))
        g = json_object_get(o, group);
    return g;
}

/* --cpu-* and --memory-* into a resources object ({"cpu": {...}, "memory": {...}}); a VM
 * takes all six, a tenant's pool the shares and limits. */
static int opt_resources(const struct client_args *a, json_t *o, bool vm, char *err)
{
    json_t *cpu = sub(o, "cpu"), *mem = sub(o, "memory");
    int ret;

    if (!cpu || !mem)
        return -ENOMEM;
    ret = opt_count(a, CLIENT_OPT_CPU_SHARES, cpu, "shares", 100000, false, err);
    if (!ret)
        ret = opt_cores(a, CLIENT_OPT_CPU_LIMIT, cpu, "limit", true, err);
    if (!ret && vm)
        ret = opt_cores(a, CLIENT_OPT_CPU_RESERVATION, cpu, "reservation", false, err);
    if (!ret && vm)
        ret = opt_count(a, CLIENT_OPT_MEMORY_SHARES, mem, "shares", 100000, false, err);
    if (!ret && client_args_has(a, CLIENT_OPT_MEMORY_LIMIT) &&
        !strcmp(client_args_get(a, CLIENT_OPT_MEMORY_LIMIT), "none"))
        ret = json_object_set_new(mem, "limit_bytes", json_null());
    else if (!ret)
        ret = opt_size(a, CLIENT_OPT_MEMORY_LIMIT, mem, "limit_bytes", err);
    if (!ret && vm)
        ret = opt_size(a, CLIENT_OPT_MEMORY_RESERVATION, mem, "reservation_bytes", err);
    if (!ret && vm)
        ret = opt_io_limits(a, CLIENT_OPT_DISK_LIMIT, o, "disk", err);
    if (!ret && vm)
        ret = opt_io_limits(a, CLIENT_OPT_NET_LIMIT, o, "network", err);
    if (!json_object_size(cpu))
        json_object_del(o, "cpu");
    if (!json_object_size(mem))
        json_object_del(o, "memory");
    return ret;
}

/* --disk-limit / --net-limit K=V[,K=V]: the VMM's rate-limit keys (iops, bps, rx_bps, ...)
 * into the object `group`; a bps or burst value may have a K, M, G or T suffix. */
static int opt_io_limits(const struct client_args *a, enum client_opt opt, json_t *o,
                         const char *group, char *err)
{
    const char *v = client_args_get(a, opt), *p;
    json_t *g;

    if (!v)
        return 0;
    g = sub(o, group);
    if (!g)
        return -ENOMEM;
    for (p = v; *p;) {
        char key[32], val[64];
        size_t klen = strcspn(p, "="), vlen;
        uint64_t n;

        if (p[klen] != '=' || klen >= sizeof(key))
            goto bad;
        memcpy(key, p, klen);
        key[klen] = '\0';
        p += klen + 1;
        vlen = strcspn(p, ",");
        if (!vlen || vlen >= sizeof(val))
            goto bad;
        memcpy(val, p, vlen);
        val[vlen] = '\0';
        p += vlen + (p[vlen] == ',');
        if (ratelimit_parse(val, strstr(key, "bps") || strstr(key, "burst"), &n)) {
            set_err(err, "--%s %s=%s: expected a whole number%s (0: none)", opt_defs[opt].name, key,
                    val, strstr(key, "bps") ? " of bytes, with an optional K, M, G or T" : "");
            return -EINVAL;
        }
        if (json_object_set_new(g, key, json_integer((json_int_t)n)))
            return -ENOMEM;
    }
    return 0;
bad:
    set_err(err, "--%s '%s': expected KEY=VALUE[,KEY=VALUE]... such as bps=10M,iops=500",
            opt_defs[opt].name, v);
    return -EINVAL;
}

/* vm set NAME --cpu-shares ...: PUT /vms/NAME/resources. */
static int build_vm_set(const struct command *c, const struct client_args *a, const char *self,
                        struct client_request *r, char *err)
{
    json_t *body = json_object();
    int ret;

    (void)self;
    if (!body)
        return -ENOMEM;
    ret = opt_resources(a, body, true, err);
    if (!ret && !json_object_size(body)) {
        set_err(err, "vm set: give at least one of --cpu-shares, --cpu-limit, --cpu-reservation, "
                     "--memory-shares, --memory-limit, --memory-reservation, --disk-limit, "
                     "--net-limit");
        ret = -EINVAL;
    }
    if (ret) {
        json_decref(body);
        return ret;
    }
    r->method = "PUT";
    r->view = CLIENT_VIEW_OBJECT;
    return finish(r, body, path_set(r, a, err, "/vms", "%s", word(c, a, 0), "/resources", NULL),
                  err);
}

/* vm stats NAME: GET /vms/NAME/stats. */
static int build_vm_stats(const struct command *c, const struct client_args *a, const char *self,
                          struct client_request *r, char *err)
{
    (void)self;
    r->method = "GET";
    r->view = CLIENT_VIEW_OBJECT;
    return path_set(r, a, err, "/vms", "%s", word(c, a, 0), "/stats", NULL);
}

/* tenant resources T [--cpu-shares N --cpu-limit C --memory-limit SIZE]: shows the tenant's
 * pool, or sets what the options give. */
static int build_tenant_resources(const struct command *c, const struct client_args *a,
                                  const char *self, struct client_request *r, char *err)
{
    json_t *body = json_object();
    int ret;

    (void)self;
    if (!body)
        return -ENOMEM;
    r->view = CLIENT_VIEW_OBJECT;
    ret = opt_resources(a, body, false, err);
    if (ret || !json_object_size(body)) {
        json_decref(body);
        if (ret)
            return ret;
        r->method = "GET";
        return path_set(r, NULL, err, "/tenants", "%s", word(c, a, 0), "/resources", NULL);
    }
    r->method = "PUT";
    return finish(r, body,
                  path_set(r, NULL, err, "/tenants", "%s", word(c, a, 0), "/resources", NULL), err);
}

/* operation wait ID: GET it; the client then waits while it runs. */
static int build_operation_wait(const struct command *c, const struct client_args *a,
                                const char *self, struct client_request *r, char *err)
{
    r->method = "GET";
    r->view = CLIENT_VIEW_OBJECT;
    r->operation = true;
    return path_set(r, a, err, "/operations", "%s", word(c, a, 0), NULL);
}

#define RESOURCE_OPTS                                                                           \
    (BIT(CLIENT_OPT_CPU_SHARES) | BIT(CLIENT_OPT_CPU_LIMIT) | BIT(CLIENT_OPT_CPU_RESERVATION) | \
     BIT(CLIENT_OPT_MEMORY_SHARES) | BIT(CLIENT_OPT_MEMORY_LIMIT) |                             \
     BIT(CLIENT_OPT_MEMORY_RESERVATION) | BIT(CLIENT_OPT_DISK_LIMIT) | BIT(CLIENT_OPT_NET_LIMIT))
#define VM_CREATE_OPTS                                                                            \
    (BIT(CLIENT_OPT_TEMPLATE) | BIT(CLIENT_OPT_CPUS) | BIT(CLIENT_OPT_MEMORY) |                   \
     BIT(CLIENT_OPT_DISK) | BIT(CLIENT_OPT_FULL) | BIT(CLIENT_OPT_RESTART) |                      \
     BIT(CLIENT_OPT_FORWARD) | BIT(CLIENT_OPT_HOSTNAME) | BIT(CLIENT_OPT_SSH_KEY) |               \
     BIT(CLIENT_OPT_USER_DATA) | BIT(CLIENT_OPT_IP) | BIT(CLIENT_OPT_GW) | BIT(CLIENT_OPT_DNS) |  \
     BIT(CLIENT_OPT_START) | BIT(CLIENT_OPT_NETWORK) | BIT(CLIENT_OPT_SECGROUP) | RESOURCE_OPTS | \
     WAIT | TENANT)
#define TEMPLATE_CREATE_OPTS                                                   \
    (BIT(CLIENT_OPT_VOLUME) | BIT(CLIENT_OPT_FROM_VM) | BIT(CLIENT_OPT_CPUS) | \
     BIT(CLIENT_OPT_MEMORY) | BIT(CLIENT_OPT_DISK) | BIT(CLIENT_OPT_KERNEL) |  \
     BIT(CLIENT_OPT_INITRD) | BIT(CLIENT_OPT_CMDLINE) | WAIT | TENANT)

static const struct command commands[] = {
    {"tenant", "list", 0, 0, 0, "", "the tenants you can see", build_list},
    {"tenant", "create", 1, 1, 0, "NAME", "create a tenant (platform-admin)", build_tenant_create},
    {"tenant", "show", 1, 1, 0, "NAME", "one tenant", build_show},
    {"tenant", "resources", 1, 1,
     BIT(CLIENT_OPT_CPU_SHARES) | BIT(CLIENT_OPT_CPU_LIMIT) | BIT(CLIENT_OPT_MEMORY_LIMIT),
     "NAME [--cpu-shares N --cpu-limit CORES|none --memory-limit SIZE|none]",
     "a tenant's resource pool; with options, set it (platform-admin)", build_tenant_resources},
    {"tenant", "delete", 1, 1, 0, "NAME", "delete a tenant with its users and tokens",
     build_delete},
    {"user", "list", 0, 0, TENANT, "[--tenant T]", "a tenant's users (default: your own)",
     build_user},
    {"user", "create", 1, 1, TENANT | BIT(CLIENT_OPT_ROLE), "NAME --role R [--tenant T]",
     "create a user with a role", build_user},
    {"token", "list", 0, 0, 0, "", "API tokens (never their secrets)", build_list},
    {"token", "create", 0, 0,
     TENANT | BIT(CLIENT_OPT_USER) | BIT(CLIENT_OPT_ROLE) | BIT(CLIENT_OPT_DESCRIPTION),
     "[--user U --tenant T --role R --description D]",
     "create a token; its secret is shown this once", build_token_create},
    {"token", "revoke", 1, 1, 0, "ID", "revoke a token at once", build_delete},
    {"audit", NULL, 0, 0, TENANT, "[--tenant T]", "the audit log, newest first", build_audit},
    {"vm", "list", 0, 0, TENANT, "", "the VMs", build_list},
    {"vm", "show", 1, 1, TENANT, "NAME", "one VM", build_show},
    {"vm", "create", 1, 1, VM_CREATE_OPTS, "NAME --template T [OPTIONS]",
     "create a VM from a template (options below)", build_vm_create},
    {"vm", "start", 1, 1, WAIT | TENANT, "NAME", "start a VM", build_vm_action},
    {"vm", "stop", 1, 1, WAIT | TENANT, "NAME", "stop a VM at once (power off)", build_vm_action},
    {"vm", "shutdown", 1, 1, WAIT | TENANT, "NAME", "ask the guest to power off", build_vm_action},
    {"vm", "reboot", 1, 1, WAIT | TENANT, "NAME", "reboot a VM", build_vm_action},
    {"vm", "pause", 1, 1, WAIT | TENANT, "NAME", "pause a VM's CPUs", build_vm_action},
    {"vm", "resume", 1, 1, WAIT | TENANT, "NAME", "resume a paused VM", build_vm_action},
    {"vm", "delete", 1, 1, WAIT | TENANT, "NAME", "delete a VM and its disk", build_delete},
    {"vm", "console", 1, 1, TENANT, "NAME", "attach this terminal to a VM's console",
     build_vm_console},
    {"vm", "snapshot", 2, 3, WAIT | TENANT, "NAME create|list|revert|delete [SNAP]",
     "a VM's snapshots", build_snapshot},
    {"vm", "clone", 2, 2, WAIT | TENANT, "NAME NEW", "clone a stopped VM", build_clone},
    {"vm", "stats", 1, 1, TENANT, "NAME",
     "what a VM uses: CPU used, throttled and waited for, memory, its VMM's counters",
     build_vm_stats},
    {"vm", "secgroups", 2, 6, TENANT, "NAME NIC [GROUP...]",
     "set the security groups of the VM's NIC (index from 0; none: unfiltered), live",
     build_vm_secgroups},
    {"vm", "set", 1, 1, TENANT | RESOURCE_OPTS,
     "NAME [--cpu-shares N --cpu-limit CORES|none --cpu-reservation CORES --memory-shares N "
     "--memory-limit SIZE|none --memory-reservation SIZE --disk-limit K=V,... "
     "--net-limit K=V,...]",
     "change a VM's shares, limits and reservations (live when it runs)", build_vm_set},
    {"template", "list", 0, 0, TENANT, "", "templates (yours and the shared ones)", build_list},
    {"template", "show", 1, 1, TENANT, "NAME", "one template", build_show},
    {"template", "create", 1, 1, TEMPLATE_CREATE_OPTS,
     "NAME --volume V|--from-vm VM [--cpus N --memory M --disk D --kernel K --initrd I "
     "--cmdline C]",
     "make a template from a volume or a stopped VM", build_template_create},
    {"template", "delete", 1, 1, WAIT | TENANT, "NAME", "delete a template", build_delete},
    {"volume", "list", 0, 0, TENANT, "", "the volumes", build_list},
    {"volume", "show", 1, 1, TENANT, "NAME", "one volume", build_show},
    {"volume", "create", 1, 1,
     BIT(CLIENT_OPT_SIZE) | BIT(CLIENT_OPT_FORMAT) | BIT(CLIENT_OPT_POOL) | WAIT | TENANT,
     "NAME --size SIZE [--format qcow2|raw --pool P]", "create an empty volume (thin)",
     build_volume_create},
    {"volume", "resize", 2, 2, WAIT | TENANT, "NAME SIZE", "grow a volume", build_volume_resize},
    {"volume", "upload", 2, 2, WAIT | TENANT, "NAME FILE",
     "write a raw image file into a volume (streamed)", build_volume_upload},
    {"volume", "clone", 2, 2, BIT(CLIENT_OPT_FULL) | WAIT | TENANT, "SRC DST [--full]",
     "clone a volume (linked unless --full)", build_clone},
    {"volume", "snapshot", 2, 3, WAIT | TENANT, "NAME create|list|revert|delete [SNAP]",
     "a volume's snapshots", build_snapshot},
    {"volume", "delete", 1, 1, WAIT | TENANT, "NAME", "delete a volume", build_delete},
    {"quota", "show", 1, 1, 0, "TENANT", "a tenant's limits and usage", build_quota},
    {"quota", "set", 1, 1,
     BIT(CLIENT_OPT_VCPUS) | BIT(CLIENT_OPT_MEMORY) | BIT(CLIENT_OPT_DISK) | BIT(CLIENT_OPT_VMS),
     "TENANT [--vcpus N --memory SIZE --disk SIZE --vms N]",
     "set limits ('unlimited' lifts one; platform-admin)", build_quota},
    {"pool", "list", 0, 0, 0, "", "storage pools", build_list},
    {"secgroup", "list", 0, 0, TENANT, "", "the security groups", build_list},
    {"secgroup", "show", 1, 1, TENANT, "NAME", "one security group with its rules", build_show},
    {"secgroup", "create", 1, 1, TENANT, "NAME",
     "create a security group (its members reach each other; add rules for the rest)",
     build_secgroup_create},
    {"secgroup", "delete", 1, 1, TENANT, "NAME", "delete a security group (no NIC may be in it)",
     build_delete},
    {"secgroup", "rule-add", 3, 4, BIT(CLIENT_OPT_PEER) | TENANT,
     "NAME ingress|egress tcp|udp|icmp|any [PORT|LOW-HIGH] [--peer A.B.C.D/N|group:G]",
     "allow traffic, live", build_secgroup_rule_add},
    {"secgroup", "rule-delete", 2, 2, TENANT, "NAME ID", "delete a rule by its id, live",
     build_secgroup_rule_delete},
    {"network", "list", 0, 0, TENANT, "", "the virtual networks", build_list},
    {"network", "show", 1, 1, TENANT, "NAME", "one virtual network", build_show},
    {"network", "create", 1, 1,
     BIT(CLIENT_OPT_SUBNET) | BIT(CLIENT_OPT_GATEWAY) | BIT(CLIENT_OPT_NO_DHCP) |
         BIT(CLIENT_OPT_VLAN) | BIT(CLIENT_OPT_VXLAN_VNI) | BIT(CLIENT_OPT_VXLAN_PEER) | TENANT,
     "NAME --subnet A.B.C.D/N [--gateway ADDR --no-dhcp --vlan N --vxlan-vni N "
     "--vxlan-peer ADDR...]",
     "create an isolated network with DHCP and DNS for its VMs", build_network_create},
    {"network", "peers", 1, 1, BIT(CLIENT_OPT_VXLAN_PEER) | TENANT, "NAME [--vxlan-peer ADDR...]",
     "replace a VXLAN network's peer hosts, live", build_network_peers},
    {"network", "delete", 1, 1, TENANT, "NAME", "delete a network (no VM may be on it)",
     build_delete},
    {"network", "check", 1, 1, TENANT, "NAME",
     "compare a network's namespace, bridge, taps, rules and dnsmasq with what they should be "
     "(exit status 1 on drift)",
     build_network_check},
    {"network", "repair", 1, 1, TENANT, "NAME", "bring a network back to what it should be",
     build_network_check},
    {"external-network", "list", 0, 0, 0, "", "the ways out (names and subnets)", build_list},
    {"external-network", "show", 1, 1, 0, "NAME", "one external network", build_show},
    {"external-network", "create", 1, 1,
     BIT(CLIENT_OPT_BRIDGE) | BIT(CLIENT_OPT_SUBNET) | BIT(CLIENT_OPT_GATEWAY) |
         BIT(CLIENT_OPT_POOL),
     "NAME --bridge BR --subnet A.B.C.D/N --pool FIRST-LAST [--gateway ADDR]",
     "a host bridge as a way out (platform-admin)", build_ext_network_create},
    {"external-network", "delete", 1, 1, 0, "NAME", "delete an external network (no router on it)",
     build_delete},
    {"router", "list", 0, 0, TENANT, "", "the routers", build_list},
    {"router", "show", 1, 1, TENANT, "NAME", "one router: networks, forwards, floating IPs",
     build_show},
    {"router", "create", 1, 1,
     BIT(CLIENT_OPT_EXTERNAL) | BIT(CLIENT_OPT_NO_SNAT) | BIT(CLIENT_OPT_NETWORK) | TENANT,
     "NAME [--external EXT --no-snat --network NET ...]",
     "join networks and (--external) the outside, with source NAT", build_router_create},
    {"router", "delete", 1, 1, TENANT, "NAME", "delete a router", build_delete},
    {"router", "attach", 2, 2, TENANT, "NAME NET", "join a network to a router", build_router_sub},
    {"router", "detach", 2, 2, TENANT, "NAME NET", "take a network off a router (and its forwards)",
     build_router_sub},
    {"router", "forward-add", 4, 4, TENANT, "NAME tcp|udp PORT VM|ADDR[:PORT]",
     "forward the router's external PORT to a VM's port", build_router_sub},
    {"router", "forward-delete", 3, 3, TENANT, "NAME tcp|udp PORT", "delete a port forward",
     build_router_sub},
    {"router", "floating-add", 2, 2, TENANT, "NAME VM|ADDR",
     "give a VM an external address of its own (in and out)", build_router_sub},
    {"router", "floating-delete", 2, 2, TENANT, "NAME ADDRESS", "release a floating IP",
     build_router_sub},
    {"host", "show", 0, 0, 0, "", "the host's capacity, overcommit and allocation", build_host},
    {"host", "set", 0, 0,
     BIT(CLIENT_OPT_CPU_OVERCOMMIT) | BIT(CLIENT_OPT_MEMORY_OVERCOMMIT) |
         BIT(CLIENT_OPT_VM_CPUSET) | BIT(CLIENT_OPT_VM_MEMORY),
     "[--cpu-overcommit R --memory-overcommit R --vm-cpuset LIST --vm-memory SIZE|none]",
     "set overcommit ratios and the CPUs and memory all VMs may use (platform-admin)", build_host},
    {"operation", "list", 0, 0, TENANT, "", "recent long actions", build_list},
    {"operation", "show", 1, 1, TENANT, "ID", "one operation", build_show},
    {"operation", "wait", 1, 1, TENANT | BIT(CLIENT_OPT_TIMEOUT), "ID [--timeout S]",
     "wait until an operation ends", build_operation_wait},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

bool client_is_noun(const char *noun)
{
    for (size_t i = 0; noun && i < COMMAND_COUNT; i++) {
        if (!strcmp(commands[i].noun, noun))
            return true;
    }
    return false;
}

void client_args_command(const struct client_args *a, char *buf, size_t n)
{
    if (!a->nwords)
        snprintf(buf, n, "tessera");
    else if (a->nwords == 1 || !client_is_noun(a->words[0]) || !strcmp(a->words[0], "audit"))
        snprintf(buf, n, "%s", a->words[0]);
    else
        snprintf(buf, n, "%s %s", a->words[0], a->words[1]);
}

void client_usage(FILE *out, const char *noun)
{
    const char *last = NULL;

    fprintf(out, "Usage: tessera [--host URL] [--token T] NOUN VERB [ARGS] [--json]\n\n"
                 "Talks to tesserad (docs/cli.md). Commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct command *c = &commands[i];
        char head[160];

        if (noun && strcmp(noun, c->noun))
            continue;
        if (last && strcmp(last, c->noun))
            fputc('\n', out);
        last = c->noun;
        snprintf(head, sizeof(head), "%s%s%s %s", c->noun, c->verb ? " " : "",
                 c->verb ? c->verb : "", c->args);
        if (strlen(head) > 38)
            fprintf(out, "  %s\n  %-38s %s\n", head, "", c->summary);
        else
            fprintf(out, "  %-38s %s\n", head, c->summary);
    }
    if (!noun || !strcmp(noun, "vm"))
        fprintf(out,
                "\nvm create options: --cpus N --memory SIZE --disk SIZE --full (a full copy,\n"
                "  not a linked clone) --restart always|on-failure|never --forward\n"
                "  tcp:HOST_PORT:GUEST_PORT (repeat) --hostname H --ssh-key FILE (repeat)\n"
                "  --user-data FILE --ip ADDR/PREFIX --gw ADDR --dns ADDR (repeat) --start\n"
                "  --network NET (repeat: a NIC on each virtual network instead of user-mode)\n"
                "  --secgroup G (repeat: a security group of the NIC of the --network before)\n"
                "(`tessera vm COMMAND --api-sock PATH` still talks to one VMM directly: see\n"
                "`tessera vm --api-sock x --help`.)\n");
    fprintf(
        out,
        "\nConnection: --host URL or TESSERA_HOST: unix:PATH (or a path) or https://HOST:PORT;\n"
        "  --token T, TESSERA_TOKEN or --token-file FILE; --ca-cert FILE or TESSERA_CA_CERT:\n"
        "  the CA the daemon's certificate must chain to; --insecure: do not check it.\n"
        "Output: a table by default, --json for the daemon's JSON as it is. Actions that\n"
        "  answer with an operation wait for it unless --no-wait (which prints its id).\n"
        "Sizes: digits with K, M, G or T (binary units; no suffix means M).\n"
        "Exit status: 0 on success, 1 when the daemon refuses or cannot be reached, 2 for\n"
        "  bad usage.\n");
}

/* Finds the command of a's words; NULL with err when there is none. */
static const struct command *command_find(const struct client_args *a, char *err)
{
    const char *noun = a->nwords ? a->words[0] : NULL;
    const char *verb = a->nwords > 1 ? a->words[1] : NULL;

    if (!client_is_noun(noun)) {
        set_err(err, noun ? "unknown command '%s'" : "expected a command", noun);
        return NULL;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].noun, noun))
            continue;
        if (!commands[i].verb || (verb && !strcmp(commands[i].verb, verb)))
            return &commands[i];
    }
    if (verb)
        set_err(err, "%s: unknown verb '%s' (try `tessera %s --help`)", noun, verb, noun);
    else
        set_err(err, "%s: expected a verb (try `tessera %s --help`)", noun, noun);
    return NULL;
}

int client_request_build(const struct client_args *a, const char *self_tenant,
                         struct client_request *r, char *err)
{
    const struct command *c = command_find(a, err);
    int nargs, ret;

    memset(r, 0, sizeof(*r));
    if (!c)
        return -EINVAL;
    nargs = a->nwords - (c->verb ? 2 : 1);
    if (nargs < c->min_words || nargs > c->max_words) {
        set_err(err, "%s%s%s: expected %s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
                c->args[0] ? c->args : "no arguments", nargs > c->max_words ? " (too many)" : "");
        return -EINVAL;
    }
    for (int i = 0; i < a->nopts; i++) {
        uint64_t bit = BIT(a->opts[i].opt);

        if (!(bit & (GLOBAL_OPTS | c->opts))) {
            set_err(err, "%s%s%s: option '--%s' does not apply", c->noun, c->verb ? " " : "",
                    c->verb ? c->verb : "", opt_defs[a->opts[i].opt].name);
            return -EINVAL;
        }
    }
    ret = c->build(c, a, self_tenant, r, err);
    if (ret == -ENOMEM)
        set_err(err, "out of memory");
    if (ret)
        client_request_free(r);
    return ret;
}

void client_request_free(struct client_request *r)
{
    free(r->body);
    r->body = NULL;
}
