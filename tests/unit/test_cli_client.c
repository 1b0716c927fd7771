/* The daemon client's command line without a daemon: argv to options and words, the request
 * each command makes (method, path, JSON body), sizes for people and the aligned tables. The
 * requests are checked against the REST contract of docs/daemon.md and the routes. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/client.h"
#include "cli/client_http.h"
#include "test.h"

/* Builds the request of a command line given as one string of words split at spaces. */
static int build(const char *line, const char *self, struct client_request *r, char *err)
{
    static char copy[1024];
    char *argv[64], *save = NULL;
    struct client_args a;
    int argc = 0, ret;

    snprintf(copy, sizeof(copy), "%s", line);
    for (char *w = strtok_r(copy, " ", &save); w && argc < 64; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    err[0] = 0;
    ret = client_args_parse(argc, argv, &a, err);
    if (ret)
        return ret;
    return client_request_build(&a, self, r, err);
}

/* The request of line is method path with a body equal to the JSON text want_body (NULL: no
 * body). */
static void check_request(const char *line, const char *method, const char *path,
                          const char *want_body)
{
    char err[CLIENT_ERR_LEN];
    struct client_request r;
    int ret = build(line, "acme", &r, err);

    CHECK(ret == 0);
    if (ret) {
        fprintf(stderr, "  '%s': %s\n", line, err);
        return;
    }
    CHECK(!strcmp(r.method, method));
    CHECK(!strcmp(r.path, path));
    if (strcmp(r.path, path))
        fprintf(stderr, "  '%s': path %s, want %s\n", line, r.path, path);
    if (!want_body) {
        CHECK(r.body == NULL);
    } else {
        json_t *got = r.body ? json_loads(r.body, 0, NULL) : NULL;
        json_t *want = json_loads(want_body, 0, NULL);

        CHECK(want != NULL);
        CHECK(got && json_equal(got, want));
        if (!got || !json_equal(got, want))
            fprintf(stderr, "  '%s': body %s, want %s\n", line, r.body ? r.body : "(none)",
                    want_body);
        json_decref(got);
        json_decref(want);
    }
    client_request_free(&r);
}

/* line is a usage error whose message holds want. */
static void check_usage_error(const char *line, const char *want)
{
    char err[CLIENT_ERR_LEN];
    struct client_request r;
    int ret = build(line, "acme", &r, err);

    CHECK(ret == -EINVAL);
    CHECK(strstr(err, want) != NULL);
    if (ret != -EINVAL || !strstr(err, want))
        fprintf(stderr, "  '%s': ret %d, err '%s', want '%s'\n", line, ret, err, want);
    if (!ret)
        client_request_free(&r);
}

static void test_args(void)
{
    char *argv[] = {"--host=unix:/s", "vm", "--json", "list", "--tenant", "acme", "--", "--odd"};
    char err[CLIENT_ERR_LEN];
    struct client_args a;

    CHECK(client_args_parse(8, argv, &a, err) == 0);
    CHECK(a.nwords == 3);
    CHECK(!strcmp(a.words[0], "vm") && !strcmp(a.words[1], "list"));
    CHECK(!strcmp(a.words[2], "--odd")); /* after "--", a word */
    CHECK(!strcmp(client_args_get(&a, CLIENT_OPT_HOST), "unix:/s"));
    CHECK(!strcmp(client_args_get(&a, CLIENT_OPT_TENANT), "acme"));
    CHECK(client_args_has(&a, CLIENT_OPT_JSON));
    CHECK(!client_args_has(&a, CLIENT_OPT_NO_WAIT));
    CHECK(client_args_get(&a, CLIENT_OPT_TOKEN) == NULL);

    check_usage_error("vm list --frobnicate", "unknown option '--frobnicate'");
    check_usage_error("vm list --tenant", "option '--tenant' needs a value");
    check_usage_error("vm list --json=yes", "'--json' takes no value");
    check_usage_error("vm list -x", "unknown option '-x'");
    check_usage_error("frob list", "unknown command 'frob'");
    check_usage_error("vm frob", "vm: unknown verb 'frob'");
    check_usage_error("vm", "vm: expected a verb");
    check_usage_error("vm show", "vm show: expected NAME");
    check_usage_error("vm show a b", "(too many)");
    check_usage_error("tenant list --role viewer", "option '--role' does not apply");
    check_usage_error("tenant create acme --no-wait", "option '--no-wait' does not apply");
}

static void test_tenants_users_tokens(void)
{
    char err[CLIENT_ERR_LEN];
    struct client_request r;

    check_request("tenant list", "GET", "/api/v1/tenants", NULL);
    check_request("tenant create acme", "POST", "/api/v1/tenants", "{\"name\": \"acme\"}");
    check_request("tenant show acme", "GET", "/api/v1/tenants/acme", NULL);
    check_request("tenant delete acme", "DELETE", "/api/v1/tenants/acme", NULL);
    check_request("user list --tenant beta", "GET", "/api/v1/tenants/beta/users", NULL);
    check_request("user list", "GET", "/api/v1/tenants/acme/users", NULL); /* own tenant */
    check_request("user create bob --role viewer --tenant beta", "POST",
                  "/api/v1/tenants/beta/users", "{\"name\": \"bob\", \"role\": \"viewer\"}");
    check_usage_error("user create bob", "--role R is required");
    check_request("token list", "GET", "/api/v1/tokens", NULL);
    check_request("token create", "POST", "/api/v1/tokens", "{}");
    check_request("token create --user bob --tenant beta --role viewer --description ci", "POST",
                  "/api/v1/tokens",
                  "{\"user\": \"bob\", \"tenant\": \"beta\", \"role\": \"viewer\", "
                  "\"description\": \"ci\"}");
    check_request("token revoke 0123456789abcdef", "DELETE", "/api/v1/tokens/0123456789abcdef",
                  NULL);
    check_request("audit", "GET", "/api/v1/audit", NULL);
    check_request("audit --tenant beta", "GET", "/api/v1/audit?tenant=beta", NULL);

    /* Without --tenant, user list needs the caller's tenant: first -EAGAIN, then a platform
     * user (tenant "") is told to name one. */
    CHECK(build("user list", NULL, &r, err) == -EAGAIN);
    /* ...but a missing --role is said before anything is asked of the daemon. */
    CHECK(build("user create bob", NULL, &r, err) == -EINVAL);
    CHECK(strstr(err, "--role R is required") != NULL);
    CHECK(build("user list", "", &r, err) == -EINVAL);
    CHECK(strstr(err, "--tenant T") != NULL);
}

static void test_names_are_one_segment(void)
{
    /* A name can never add a path segment or a query: everything but RFC 3986's unreserved
     * characters is percent-encoded; the daemon then refuses the name. */
    check_request("vm show ../../tenants", "GET", "/api/v1/vms/..%2F..%2Ftenants", NULL);
    check_request("vm show a?tenant=x", "GET", "/api/v1/vms/a%3Ftenant%3Dx", NULL);
    check_request("tenant show %2e%2e", "GET", "/api/v1/tenants/%252e%252e", NULL);
    check_request("vm list --tenant a&b", "GET", "/api/v1/vms?tenant=a%26b", NULL);
}

static void test_vms(void)
{
    char err[CLIENT_ERR_LEN], key[] = "/tmp/tessera-test-key-XXXXXX";
    char ud[] = "/tmp/tessera-test-ud-XXXXXX", line[512];
    struct client_request r;
    int fd;

    check_request("vm list", "GET", "/api/v1/vms", NULL);
    CHECK(build("vm list", "acme", &r, err) == 0);
    CHECK(r.view == CLIENT_VIEW_TABLE && r.ncolumns == 7);
    CHECK(!strcmp(r.columns[0].key, "name") && !strcmp(r.columns[1].key, "state"));
    CHECK(r.columns[3].cell == CLIENT_CELL_SIZE);
    client_request_free(&r);
    check_request("vm list --tenant acme", "GET", "/api/v1/vms?tenant=acme", NULL);
    check_request("vm show web", "GET", "/api/v1/vms/web", NULL);
    check_request("vm create web --template debian", "POST", "/api/v1/vms",
                  "{\"name\": \"web\", \"template\": \"debian\", \"clone\": \"linked\", "
                  "\"start\": false}");
    check_request("vm create web --template debian --cpus 2 --memory 512M --disk 2G --full "
                  "--restart on-failure --forward tcp:8022:22 --forward udp:127.0.0.1:5353:53 "
                  "--hostname web1 --ip 10.0.2.15/24 --gw 10.0.2.2 --dns 10.0.2.3 --start",
                  "POST", "/api/v1/vms",
                  "{\"name\": \"web\", \"template\": \"debian\", \"cpus\": 2, "
                  "\"memory_bytes\": 536870912, \"disk_bytes\": 2147483648, \"clone\": \"full\", "
                  "\"restart_policy\": \"on-failure\", \"port_forwards\": ["
                  "{\"proto\": \"tcp\", \"host_port\": 8022, \"guest_port\": 22}, "
                  "{\"proto\": \"udp\", \"host_addr\": \"127.0.0.1\", \"host_port\": 5353, "
                  "\"guest_port\": 53}], "
                  "\"cloud_init\": {\"hostname\": \"web1\", \"network\": {\"mode\": \"static\", "
                  "\"address\": \"10.0.2.15/24\", \"gateway\": \"10.0.2.2\", \"dns\": "
                  "[\"10.0.2.3\"]}}, \"start\": true}");

    /* Virtual networks: one NIC per --network, in order. */
    check_request("vm create web --template t --network lan --network dmz", "POST", "/api/v1/vms",
                  "{\"name\": \"web\", \"template\": \"t\", \"clone\": \"linked\", "
                  "\"start\": false, \"nics\": [{\"network\": \"lan\"}, "
                  "{\"network\": \"dmz\"}]}");
    check_request("network list", "GET", "/api/v1/networks", NULL);
    check_request("network show lan --tenant acme", "GET", "/api/v1/networks/lan?tenant=acme",
                  NULL);
    check_request("network create lan --subnet 10.0.0.0/24", "POST", "/api/v1/networks",
                  "{\"name\": \"lan\", \"subnet\": \"10.0.0.0/24\", \"dhcp\": true}");
    check_request("network create lan --subnet 10.0.0.0/24 --gateway 10.0.0.254 --no-dhcp", "POST",
                  "/api/v1/networks",
                  "{\"name\": \"lan\", \"subnet\": \"10.0.0.0/24\", "
                  "\"gateway\": \"10.0.0.254\", \"dhcp\": false}");
    check_request("network delete lan", "DELETE", "/api/v1/networks/lan", NULL);
    check_request("network check lan --tenant acme", "GET",
                  "/api/v1/networks/lan/check?tenant=acme", NULL);
    check_request("network repair lan", "POST", "/api/v1/networks/lan/repair", NULL);
    check_usage_error("network create lan", "--subnet A.B.C.D/N is required");

    /* Security groups: --secgroup belongs to the NIC of the --network before it. */
    check_request("vm create web --template t --network lan --secgroup web --secgroup ssh "
                  "--network dmz",
                  "POST", "/api/v1/vms",
                  "{\"name\": \"web\", \"template\": \"t\", \"clone\": \"linked\", "
                  "\"start\": false, \"nics\": [{\"network\": \"lan\", \"security_groups\": "
                  "[\"web\", \"ssh\"]}, {\"network\": \"dmz\"}]}");
    check_usage_error("vm create web --template t --secgroup web --network lan",
                      "name the NIC's --network before");
    check_request("secgroup list", "GET", "/api/v1/security-groups", NULL);
    check_request("secgroup create web", "POST", "/api/v1/security-groups", "{\"name\": \"web\"}");
    check_request("secgroup rule-add web ingress tcp 80", "POST",
                  "/api/v1/security-groups/web/rules",
                  "{\"direction\": \"ingress\", \"protocol\": \"tcp\", \"ports\": \"80\"}");
    check_request("secgroup rule-add web ingress icmp --peer group:ssh", "POST",
                  "/api/v1/security-groups/web/rules",
                  "{\"direction\": \"ingress\", \"protocol\": \"icmp\", \"peer\": \"group:ssh\"}");
    check_request("secgroup rule-delete web 3", "DELETE", "/api/v1/security-groups/web/rules/3",
                  NULL);
    check_request("secgroup delete web", "DELETE", "/api/v1/security-groups/web", NULL);
    check_request("vm secgroups web 0 web ssh", "PUT", "/api/v1/vms/web/nics/0/security-groups",
                  "{\"security_groups\": [\"web\", \"ssh\"]}");
    check_request("vm secgroups web 0", "PUT", "/api/v1/vms/web/nics/0/security-groups",
                  "{\"security_groups\": []}");
    /* Routers and external networks (docs/networks.md, "Routers and NAT"). */
    check_request("external-network create ext --bridge br-ext --subnet 192.0.2.0/24 --pool "
                  "192.0.2.10-192.0.2.99",
                  "POST", "/api/v1/external-networks",
                  "{\"name\": \"ext\", \"bridge\": \"br-ext\", \"subnet\": \"192.0.2.0/24\", "
                  "\"pool\": \"192.0.2.10-192.0.2.99\"}");
    check_usage_error("external-network create ext --bridge br-ext",
                      "--bridge, --subnet and --pool are required");
    check_request("router create gw --external ext --network lan --network dmz", "POST",
                  "/api/v1/routers",
                  "{\"name\": \"gw\", \"external_network\": \"ext\", "
                  "\"networks\": [\"lan\", \"dmz\"]}");
    check_request("router create gw --no-snat --tenant acme", "POST", "/api/v1/routers?tenant=acme",
                  "{\"name\": \"gw\", \"networks\": [], \"snat\": false}");
    check_request("router list", "GET", "/api/v1/routers", NULL);
    check_request("router attach gw lan", "POST", "/api/v1/routers/gw/networks",
                  "{\"network\": \"lan\"}");
    check_request("router detach gw lan", "DELETE", "/api/v1/routers/gw/networks/lan", NULL);
    check_request("router forward-add gw tcp 8080 web:80", "POST",
                  "/api/v1/routers/gw/port-forwards",
                  "{\"protocol\": \"tcp\", \"external_port\": 8080, \"vm\": \"web\", "
                  "\"port\": 80}");
    check_request("router forward-add gw udp 53 10.0.0.5", "POST",
                  "/api/v1/routers/gw/port-forwards",
                  "{\"protocol\": \"udp\", \"external_port\": 53, \"ip\": \"10.0.0.5\", "
                  "\"port\": 53}");
    check_request("router forward-delete gw tcp 8080", "DELETE",
                  "/api/v1/routers/gw/port-forwards/tcp/8080", NULL);
    check_request("router floating-add gw web", "POST", "/api/v1/routers/gw/floating-ips",
                  "{\"vm\": \"web\"}");
    check_request("router floating-delete gw 192.0.2.11", "DELETE",
                  "/api/v1/routers/gw/floating-ips/192.0.2.11", NULL);
    check_usage_error("router forward-add gw icmp 8080 web", "the protocol is tcp or udp");
    check_usage_error("router forward-add gw tcp 0 web", "'0' is not a port");
    check_usage_error("router forward-add gw tcp 80 web:99999", "'99999' is not a port");
    check_usage_error("router forward-delete gw tcp 8080x", "'8080x' is not a port");

    /* --ssh-key and --user-data read their files; the key's newline is not part of it. */
    fd = mkstemp(key);
    CHECK(fd >= 0 && write(fd, "ssh-ed25519 AAAA me@host\n", 25) == 25);
    close(fd);
    fd = mkstemp(ud);
    CHECK(fd >= 0 && write(fd, "#!/bin/sh\necho hi\n", 18) == 18);
    close(fd);
    snprintf(line, sizeof(line), "vm create web --template t --ssh-key %s --user-data %s", key, ud);
    check_request(
        line, "POST", "/api/v1/vms",
        "{\"name\": \"web\", \"template\": \"t\", \"clone\": \"linked\", \"start\": false,"
        " \"cloud_init\": {\"ssh_keys\": [\"ssh-ed25519 AAAA me@host\"], "
        "\"user_data\": \"#!/bin/sh\\necho hi\\n\"}}");
    unlink(key);
    unlink(ud);
    CHECK(build("vm create web --template t --ssh-key /nonexistent/key", "acme", &r, err) ==
          -ENOENT);
    CHECK(strstr(err, "--ssh-key /nonexistent/key") != NULL);

    check_usage_error("vm create web", "--template T is required");
    check_usage_error("vm create web --template t --memory lots", "--memory 'lots'");
    check_usage_error("vm create web --template t --memory 0", "--memory '0'");
    check_usage_error("vm create web --template t --disk 99999999T", "--disk '99999999T'");
    check_usage_error("vm create web --template t --cpus 0", "--cpus '0'");
    check_usage_error("vm create web --template t --cpus two", "--cpus 'two'");
    check_usage_error("vm create web --template t --restart sometimes", "--restart 'sometimes'");
    check_usage_error("vm create web --template t --forward 8022:22", "--forward '8022:22'");
    check_usage_error("vm create web --template t --forward tcp:0:22", "ports in 1..65535");
    check_usage_error("vm create web --template t --forward sctp:1:2", "expected tcp or udp");
    check_usage_error("vm create web --template t --dns 1.1.1.1", "need --ip");
    check_usage_error("vm create web --template t --ip 10.0.2.15", "ADDRESS/PREFIX");

    check_request("vm start web", "POST", "/api/v1/vms/web/actions/start", NULL);
    check_request("vm stop web --no-wait", "POST", "/api/v1/vms/web/actions/stop", NULL);
    check_request("vm shutdown web", "POST", "/api/v1/vms/web/actions/shutdown", NULL);
    check_request("vm reboot web", "POST", "/api/v1/vms/web/actions/reboot", NULL);
    check_request("vm pause web", "POST", "/api/v1/vms/web/actions/pause", NULL);
    check_request("vm resume web --tenant acme", "POST",
                  "/api/v1/vms/web/actions/resume?tenant=acme", NULL);
    check_request("vm delete web", "DELETE", "/api/v1/vms/web", NULL);
    check_request("vm clone web web2", "POST", "/api/v1/vms/web/clone", "{\"name\": \"web2\"}");
    check_request("vm snapshot web list", "GET", "/api/v1/vms/web/snapshots", NULL);
    check_request("vm snapshot web create s1", "POST", "/api/v1/vms/web/snapshots",
                  "{\"name\": \"s1\"}");
    check_request("vm snapshot web revert s1", "POST", "/api/v1/vms/web/snapshots/s1/revert", NULL);
    check_request("vm snapshot web delete s1", "DELETE", "/api/v1/vms/web/snapshots/s1", NULL);
    check_usage_error("vm snapshot web create", "needs the snapshot's name");
    check_usage_error("vm snapshot web undo s1", "snapshot 'undo'");
    check_usage_error("vm snapshot web list s1", "takes no SNAP");

    CHECK(build("vm console web", "acme", &r, err) == 0);
    CHECK(r.console && !strcmp(r.path, "/api/v1/vms/web/console"));
    client_request_free(&r);
}

static void test_templates_volumes_quotas(void)
{
    char err[CLIENT_ERR_LEN], img[] = "/tmp/tessera-test-img-XXXXXX", line[256];
    struct client_request r;
    int fd;

    check_request("template list", "GET", "/api/v1/templates", NULL);
    check_request("template show debian", "GET", "/api/v1/templates/debian", NULL);
    check_request("template create t1 --volume base --cpus 2 --memory 1G --disk 4G", "POST",
                  "/api/v1/templates",
                  "{\"name\": \"t1\", \"volume\": \"base\", \"cpus\": 2, "
                  "\"memory_bytes\": 1073741824, \"disk_bytes\": 4294967296}");
    check_request("template create t2 --from-vm web", "POST", "/api/v1/templates",
                  "{\"name\": \"t2\", \"from_vm\": \"web\"}");
    check_request("template create t3 --volume v --kernel k --initrd i --cmdline console=ttyS0",
                  "POST", "/api/v1/templates",
                  "{\"name\": \"t3\", \"volume\": \"v\", \"boot\": {\"kernel\": \"k\", "
                  "\"initrd\": \"i\", \"cmdline\": \"console=ttyS0\"}}");
    check_usage_error("template create t", "one of --volume V or --from-vm VM");
    check_usage_error("template create t --volume v --from-vm w", "one of --volume");
    check_usage_error("template create t --volume v --initrd i", "need --kernel");
    check_request("template delete t1", "DELETE", "/api/v1/templates/t1", NULL);

    check_request("volume list", "GET", "/api/v1/volumes", NULL);
    check_request("volume show data", "GET", "/api/v1/volumes/data", NULL);
    check_request("volume create data --size 1G", "POST", "/api/v1/volumes",
                  "{\"name\": \"data\", \"size_bytes\": 1073741824, \"format\": \"qcow2\"}");
    check_request("volume create data --size 10 --format raw --pool fast", "POST",
                  "/api/v1/volumes",
                  "{\"name\": \"data\", \"size_bytes\": 10485760, \"format\": \"raw\", "
                  "\"pool\": \"fast\"}");
    check_usage_error("volume create data", "--size SIZE is required");
    check_usage_error("volume create data --size 1G --format vmdk", "--format 'vmdk'");
    check_request("volume resize data 2G", "POST", "/api/v1/volumes/data/resize",
                  "{\"size_bytes\": 2147483648}");
    check_usage_error("volume resize data big", "SIZE 'big'");
    check_request("volume clone data copy", "POST", "/api/v1/volumes/data/clone",
                  "{\"name\": \"copy\", \"mode\": \"linked\"}");
    check_request("volume clone data copy --full", "POST", "/api/v1/volumes/data/clone",
                  "{\"name\": \"copy\", \"mode\": \"full\"}");
    check_request("volume snapshot data create s", "POST", "/api/v1/volumes/data/snapshots",
                  "{\"name\": \"s\"}");
    check_request("volume delete data", "DELETE", "/api/v1/volumes/data", NULL);

    fd = mkstemp(img);
    CHECK(fd >= 0);
    close(fd);
    snprintf(line, sizeof(line), "volume upload data %s", img);
    CHECK(build(line, "acme", &r, err) == 0);
    CHECK(!strcmp(r.method, "PUT") && !strcmp(r.path, "/api/v1/volumes/data/data"));
    CHECK(r.upload && !strcmp(r.upload, img) && !r.body);
    client_request_free(&r);
    unlink(img);
    check_usage_error("volume upload data /nonexistent.img", "/nonexistent.img");

    check_request("quota show acme", "GET", "/api/v1/tenants/acme/quota", NULL);
    check_request("quota set acme --vcpus 8 --memory 8G --disk 100G --vms 10", "PUT",
                  "/api/v1/tenants/acme/quota",
                  "{\"vcpus\": 8, \"memory_bytes\": 8589934592, \"disk_bytes\": 107374182400, "
                  "\"vms\": 10}");
    check_request("quota set acme --vms unlimited --memory unlimited", "PUT",
                  "/api/v1/tenants/acme/quota", "{\"vms\": null, \"memory_bytes\": null}");
    check_usage_error("quota set acme", "at least one of");
    check_usage_error("quota set acme --vcpus -1", "--vcpus '-1'");

    check_request("pool list", "GET", "/api/v1/pools", NULL);
    check_request("host show", "GET", "/api/v1/host", NULL);
    check_request("host set --cpu-overcommit 4 --memory-overcommit 1.5", "PUT", "/api/v1/host",
                  "{\"cpu_overcommit\": 4, \"memory_overcommit\": 1.5}");
    check_usage_error("host set --cpu-overcommit 0", "--cpu-overcommit '0'");
    check_usage_error("host set", "host set: give");
    check_request("operation list", "GET", "/api/v1/operations", NULL);
    check_request("operation show 42", "GET", "/api/v1/operations/42", NULL);
    CHECK(build("operation wait 42 --timeout 5", "acme", &r, err) == 0);
    CHECK(r.operation && !strcmp(r.path, "/api/v1/operations/42"));
    client_request_free(&r);
}

static void test_sizes(void)
{
    static const struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0B"},
        {812, "812B"},
        {1024, "1K"},
        {1536, "1.5K"},
        {512ull << 20, "512M"},
        {2ull << 30, "2G"},
        {(3ull << 30) / 2, "1.5G"},
        {100ull << 30, "100G"},
        {1ull << 40, "1T"},
        {UINT64_MAX, "16.0E"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        client_size_format(cases[i].bytes, buf, sizeof(buf));
        CHECK(!strcmp(buf, cases[i].text));
        if (strcmp(buf, cases[i].text))
            fprintf(stderr, "  %" PRIu64 ": '%s', want '%s'\n", cases[i].bytes, buf, cases[i].text);
    }
}

/* Runs print into a memory stream and compares what it wrote with want. */
static void check_printed(int (*print)(FILE *, json_t *), const char *json, const char *want)
{
    json_t *doc = json_loads(json, 0, NULL);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    CHECK(doc && f);
    CHECK(print(f, doc) == 0);
    fclose(f);
    CHECK(out && !strcmp(out, want));
    if (!out || strcmp(out, want))
        fprintf(stderr, "  printed:\n%s  want:\n%s", out ? out : "", want);
    free(out);
    json_decref(doc);
}

static int print_operation_table(FILE *f, json_t *rows)
{
    static const struct client_column cols[] = {
        {"ID", "id", CLIENT_CELL_TEXT},
        {"PROGRESS", "progress", CLIENT_CELL_PERCENT},
        {"ERROR", "error", CLIENT_CELL_TEXT},
    };

    return client_table_print(f, cols, 3, rows);
}

static int print_vm_table(FILE *f, json_t *rows)
{
    static const struct client_column cols[] = {
        {"NAME", "name", CLIENT_CELL_TEXT},
        {"STATE", "state", CLIENT_CELL_TEXT},
        {"MEMORY", "memory_bytes", CLIENT_CELL_SIZE},
        {"CREATED", "created", CLIENT_CELL_TIME},
    };

    return client_table_print(f, cols, 4, rows);
}

static void test_tables(void)
{
    json_t *bad;

    check_printed(print_vm_table,
                  "[{\"name\": \"web\", \"state\": \"running\", \"memory_bytes\": 536870912, "
                  "\"created\": 0},"
                  " {\"name\": \"database-1\", \"state\": null, \"memory_bytes\": 1610612736,"
                  " \"created\": 1796576633},"
                  " {\"name\": \"evil\\u001b[2J\", \"state\": \"\"}]",
                  "NAME        STATE    MEMORY  CREATED\n"
                  "web         running  512M    1970-01-01 00:00:00Z\n"
                  "database-1  -        1.5G    2026-12-06 17:03:53Z\n"
                  "evil?[2J    -        -       -\n");
    check_printed(print_vm_table, "[]", "NAME  STATE  MEMORY  CREATED\n");
    check_printed(print_operation_table,
                  "[{\"id\": 7, \"progress\": 0.4, \"error\": null},"
                  " {\"id\": \"op-8\", \"progress\": 1, \"error\": {\"code\": 409}}]",
                  "ID    PROGRESS  ERROR\n"
                  "7     40%       -\n"
                  "op-8  100%      {\"code\":409}\n");
    bad = json_loads("[1, 2]", 0, NULL);
    CHECK(client_table_print(stdout, NULL, 0, bad) == -EPROTO);
    json_decref(bad);
    bad = json_loads("{\"vms\": 1}", 0, NULL);
    CHECK(client_table_print(stdout, NULL, 0, bad) == -EPROTO);
    json_decref(bad);

    check_printed(client_object_print,
                  "{\"name\": \"web\", \"memory_bytes\": 1073741824, \"pid\": null, "
                  "\"port_forwards\": [{\"proto\": \"tcp\"}], \"running\": true, "
                  "\"template\": {\"tenant\": \"\", \"name\": \"busybox\"}, "
                  "\"backing\": {\"tenant\": \"acme\", \"name\": \"data\"}}",
                  "name:           web\n"
                  "memory_bytes:   1G\n"
                  "pid:            -\n"
                  "port_forwards:  [{\"proto\":\"tcp\"}]\n"
                  "running:        yes\n"
                  "template:       busybox\n"
                  "backing:        acme/data\n");
    check_printed(client_quota_print,
                  "{\"limits\": {\"vcpus\": 8, \"memory_bytes\": 8589934592, \"disk_bytes\": null,"
                  " \"vms\": 10}, \"usage\": {\"vcpus\": 2, \"memory_bytes\": 536870912, "
                  "\"disk_bytes\": 1048576, \"vms\": 1}}",
                  "RESOURCE  LIMIT      USED\n"
                  "vcpus     8          2\n"
                  "memory    8G         512M\n"
                  "disk      unlimited  1M\n"
                  "vms       10         1\n");
    bad = json_loads("{\"limits\": 1}", 0, NULL);
    CHECK(client_quota_print(stdout, bad) == -EPROTO);
    json_decref(bad);
}

/* --host: the socket forms and https; plain http and anything else refused. */
static void test_hosts(void)
{
    static const struct {
        const char *host, *sock, *url; /* sock NULL: refused, with url in the message */
    } cases[] = {
        {"unix:/run/tesserad.sock", "/run/tesserad.sock", "http://localhost"},
        {"/var/lib/t/tesserad.sock", "/var/lib/t/tesserad.sock", "http://localhost"},
        {"./tesserad.sock", "./tesserad.sock", "http://localhost"},
        {"https://tessera.example:8443", "", "https://tessera.example:8443"},
        {"https://[::1]:8443/", "", "https://[::1]:8443"},
        {"http://tessera.example:8080", NULL, "plain http is refused"},
        {"https://h:1/api/v1", NULL, "no path"},
        {"https://user@h:1", NULL, "no path, user"},
        {"https://", NULL, "expected unix:PATH"},
        {"unix:", NULL, "1 to 107 bytes"},
        {"tessera.example:8443", NULL, "expected unix:PATH"},
    };
    char sock[108], url[CLIENT_HTTP_URL_MAX], err[CLIENT_HTTP_ERR_LEN], longpath[200];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ret = client_http_parse_host(cases[i].host, sock, sizeof(sock), url, sizeof(url), err);

        if (cases[i].sock) {
            CHECK(ret == 0 && !strcmp(sock, cases[i].sock) && !strcmp(url, cases[i].url));
        } else {
            CHECK(ret == -EINVAL && strstr(err, cases[i].url));
            if (ret != -EINVAL || !strstr(err, cases[i].url))
                fprintf(stderr, "  --host %s: %d '%s'\n", cases[i].host, ret, err);
        }
    }
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = 0;
    CHECK(client_http_parse_host(longpath, sock, sizeof(sock), url, sizeof(url), err) == -EINVAL);
}

int main(void)
{
    test_hosts();
    test_args();
    test_tenants_users_tokens();
    test_names_are_one_segment();
    test_vms();
    test_templates_volumes_quotas();
    test_sizes();
    test_tables();
    return test_finish("cli_client");
}
