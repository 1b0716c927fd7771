/* The NoCloud seed disk, both ends: seed_build() (src/daemon/seed.c) writes the ISO, which is
 * read back by xorriso (the field's tool, an independent reader) and by the guest agent's own
 * reader (guest/agent/cidata.c, compiled in here so that it also runs under ASan+UBSan).
 * Hostile specs are refused naming the field; hostile images and YAML give an error, never a
 * crash (a mutation loop over a real image). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/seed.h"
#include "test.h"

#include "../../guest/agent/cidata.c"

#define ED25519                                                                         \
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f " \
    "alice@example"
#define RSA                                                                                      \
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQBkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiY" \
    "qLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKj"

static char tmpdir[64];

static char *path_in_tmp(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
    return p[i];
}

/* The whole file, NUL-terminated; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    char *buf = NULL;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        ssize_t r = read(fd, buf, (size_t)st.st_size);
        if (r != st.st_size) {
            free(buf);
            buf = NULL;
        } else {
            buf[r] = '\0';
            *len = (size_t)r;
        }
    }
    close(fd);
    return buf;
}

/* Runs argv quietly; its exit status, or -1. */
static int run_quiet(char *const argv[])
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Extracts the image with xorriso into tmpdir/NAME/ and returns that directory. */
static const char *extract(const char *iso, const char *name)
{
    char *dir = path_in_tmp(name);
    char *argv[] = {"xorriso", "-osirrox", "on", "-indev", (char *)iso, "-extract", "/", dir, NULL};
    return run_quiet(argv) == 0 ? dir : NULL;
}

static bool file_is(const char *dir, const char *name, const char *want, size_t want_len)
{
    char p[512];
    size_t len = 0;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    char *got = slurp(p, &len);
    bool ok = got && len == want_len && memcmp(got, want, len) == 0;
    if (!ok)
        fprintf(stderr, "%s: got\n%s\n--- want\n%.*s\n", p, got ? got : "(unreadable)",
                (int)want_len, want);
    free(got);
    return ok;
}

struct membuf {
    const uint8_t *p;
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    memcpy(buf, ((struct membuf *)ctx)->p + off, len);
    return 0;
}

/* Reads the image at iso with the guest's reader. */
static int guest_load(const char *iso, struct cidata *cd, char *err)
{
    size_t len = 0;
    char *img = slurp(iso, &len);
    if (!img)
        return -EIO;
    struct membuf mb = {(const uint8_t *)img};
    struct cidata_src src = {.read = mem_read, .ctx = &mb, .size = len};
    int rc = cidata_load(&src, cd, err);
    free(img);
    return rc;
}

static void test_full_spec(void)
{
    const char *keys[] = {ED25519, RSA};
    const char *dns[] = {"10.0.2.3", "1.1.1.1"};
    const char *script = "echo \"hi\" > /tmp/x\n\tcat /etc/hostname\n";
    struct seed_spec spec = {
        .instance_id = "vm-0001",
        .hostname = "web-1",
        .ssh_keys = keys,
        .n_ssh_keys = 2,
        .user_data = (const uint8_t *)script,
        .user_data_len = strlen(script),
        .net_mode = SEED_NET_STATIC,
        .mac = "52:54:00:AB:cd:01",
        .address = "10.0.2.15/24",
        .gateway = "10.0.2.2",
        .dns = dns,
        .n_dns = 2,
    };
    char err[SEED_ERR_LEN] = "", gerr[CIDATA_ERR_LEN] = "";
    const char *iso = path_in_tmp("full.iso");
    struct stat st;
    struct cidata cd;

    CHECK(seed_build(&spec, iso, err) == 0);
    if (err[0])
        fprintf(stderr, "seed_build: %s\n", err);
    CHECK(stat(iso, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* What xorriso sees: the exact files. */
    const char *dir = extract(iso, "full");
    CHECK(dir != NULL);
    if (dir) {
        static const char meta[] = "instance-id: \"vm-0001\"\n"
                                   "local-hostname: \"web-1\"\n"
                                   "public-keys:\n"
                                   "  - \"" ED25519 "\"\n"
                                   "  - \"" RSA "\"\n";
        static const char user[] = "#cloud-config\n"
                                   "hostname: \"web-1\"\n"
                                   "ssh_authorized_keys:\n"
                                   "  - \"" ED25519 "\"\n"
                                   "  - \"" RSA "\"\n"
                                   "runcmd:\n"
                                   "  - \"echo \\\"hi\\\" > /tmp/x\\n\\tcat /etc/hostname\\n\"\n";
        static const char net[] = "version: 2\n"
                                  "ethernets:\n"
                                  "  eth0:\n"
                                  "    match:\n"
                                  "      macaddress: \"52:54:00:ab:cd:01\"\n"
                                  "    set-name: eth0\n"
                                  "    dhcp4: false\n"
                                  "    addresses:\n"
                                  "      - \"10.0.2.15/24\"\n"
                                  "    routes:\n"
                                  "      - to: \"0.0.0.0/0\"\n"
                                  "        via: \"10.0.2.2\"\n"
                                  "    nameservers:\n"
                                  "      addresses:\n"
                                  "        - \"10.0.2.3\"\n"
                                  "        - \"1.1.1.1\"\n";
        CHECK(file_is(dir, "meta-data", meta, sizeof(meta) - 1));
        CHECK(file_is(dir, "user-data", user, sizeof(user) - 1));
        CHECK(file_is(dir, "network-config", net, sizeof(net) - 1));
    }

    /* What the guest agent sees. */
    CHECK(guest_load(iso, &cd, gerr) == 0);
    if (gerr[0])
        fprintf(stderr, "cidata_load: %s\n", gerr);
    CHECK(strcmp(cd.instance_id, "vm-0001") == 0);
    CHECK(strcmp(cd.hostname, "web-1") == 0);
    /* meta-data's public-keys and user-data's are the same keys, written once. */
    CHECK(cd.n_keys == 2);
    CHECK(cd.keys && strcmp(cd.keys, ED25519 "\n" RSA "\n") == 0);
    CHECK(cd.script &&
          strcmp(cd.script, "#!/bin/sh\necho \"hi\" > /tmp/x\n\tcat /etc/hostname\n\n") == 0);
    CHECK(cd.net.present && !cd.net.dhcp);
    CHECK(strcmp(cd.net.mac, "52:54:00:ab:cd:01") == 0);
    CHECK(strcmp(cd.net.address, "10.0.2.15/24") == 0);
    CHECK(strcmp(cd.net.gateway, "10.0.2.2") == 0);
    CHECK(cd.net.n_dns == 2 && strcmp(cd.net.dns[1], "1.1.1.1") == 0);
    cidata_free(&cd);

    /* Nothing is left beside the image: the staging directory is gone. */
    char *argv[] = {"sh", "-c", NULL, NULL};
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "! ls -a '%s' | grep -q '^\\.seed-'", tmpdir);
    argv[2] = cmd;
    CHECK(run_quiet(argv) == 0);
}

/* A "#!" script passes byte for byte, even bytes that are not UTF-8; DHCP, no keys. */
static void test_script_verbatim(void)
{
    static const uint8_t script[] = "#!/bin/sh\necho \xff\xfe\x01 done\n";
    struct seed_spec spec = {
        .instance_id = "i-2",
        .hostname = "box.example.org",
        .user_data = script,
        .user_data_len = sizeof(script) - 1,
        .net_mode = SEED_NET_DHCP,
    };
    char err[SEED_ERR_LEN] = "", gerr[CIDATA_ERR_LEN] = "";
    const char *iso = path_in_tmp("script.iso");
    struct cidata cd;

    CHECK(seed_build(&spec, iso, err) == 0);
    const char *dir = extract(iso, "script");
    CHECK(dir && file_is(dir, "user-data", (const char *)script, sizeof(script) - 1));
    static const char dhcp[] = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";
    CHECK(dir && file_is(dir, "network-config", dhcp, sizeof(dhcp) - 1));
    CHECK(guest_load(iso, &cd, gerr) == 0);
    CHECK(strcmp(cd.hostname, "box") == 0); /* the first label, as cloud-init sets it */
    CHECK(cd.n_keys == 0 && cd.keys == NULL);
    CHECK(cd.script_len == sizeof(script) - 1 && memcmp(cd.script, script, cd.script_len) == 0);
    CHECK(cd.net.present && cd.net.dhcp && cd.net.mac[0] == '\0');
    cidata_free(&cd);
}

/* Strings that would break naive YAML round-trip exactly; the file has no extra keys. */
static void test_hostile_strings_round_trip(void)
{
    const char *id = "a\": b\\ #c '\xe2\x80\xa8' \xef\xbb\xbf ~ - [x] {y} & * ! | >";
    const char *text = "x: y\n---\n...\n\"\\\x7f\xc2\x85\xe2\x80\xa9\xf0\x9f\x98\x80\n";
    struct seed_spec spec = {
        .instance_id = id,
        .hostname = "h",
        .user_data = (const uint8_t *)text,
        .user_data_len = strlen(text),
    };
    char err[SEED_ERR_LEN] = "", gerr[CIDATA_ERR_LEN] = "";
    const char *iso = path_in_tmp("hostile.iso");
    struct cidata cd;

    CHECK(seed_build(&spec, iso, err) == 0);
    if (err[0])
        fprintf(stderr, "seed_build: %s\n", err);
    CHECK(guest_load(iso, &cd, gerr) == 0);
    if (gerr[0])
        fprintf(stderr, "cidata_load: %s\n", gerr);
    CHECK(strcmp(cd.instance_id, id) == 0);
    CHECK(strcmp(cd.hostname, "h") == 0);
    CHECK(cd.script && strncmp(cd.script, "#!/bin/sh\n", 10) == 0 &&
          strncmp(cd.script + 10, text, strlen(text)) == 0);
    cidata_free(&cd);
    /* No network-config without a network mode. */
    const char *dir = extract(iso, "hostile");
    char p[300];
    snprintf(p, sizeof(p), "%s/network-config", dir ? dir : "/nonexistent");
    CHECK(dir && access(p, F_OK) < 0);
}

struct refusal {
    const char *what;
    struct seed_spec spec;
    const char *field; /* the message must name it */
};

static void test_refused(void)
{
    static const char *nl_key[] = {ED25519 "\nssh-rsa AAAA evil"};
    static const char *bad_type[] = {"ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIAAB x"};
    static const char *mismatch[] = {
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"};
    static const char *options[] = {"command=\"/bin/sh\" " ED25519};
    static const char *ok_keys[] = {ED25519, "ssh-ed25519 !!notbase64"};
    static const char *bad_dns[] = {"10.0.2.3", "dns.example"};
    static const char *four_dns[] = {"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"};
    static uint8_t big[SEED_MAX_USER_DATA + 1];
    static const uint8_t not_utf8[] = "echo \xc3\x28";
    static const uint8_t nul[] = "echo a\0b";
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    memset(big, 'a', sizeof(big));

#define BASE .instance_id = "i", .hostname = "h"
    const struct refusal cases[] = {
        {"no instance id", {.hostname = "h"}, "instance_id"},
        {"newline in instance id", {.instance_id = "a\nb: c", .hostname = "h"}, "instance_id"},
        {"no hostname", {.instance_id = "i"}, "cloud_init.hostname"},
        {"underscore", {.instance_id = "i", .hostname = "bad_host"}, "cloud_init.hostname"},
        {"leading hyphen", {.instance_id = "i", .hostname = "-a"}, "cloud_init.hostname"},
        {"trailing hyphen", {.instance_id = "i", .hostname = "a-.b"}, "cloud_init.hostname"},
        {"empty label", {.instance_id = "i", .hostname = "a..b"}, "cloud_init.hostname"},
        {"64-char label", {.instance_id = "i", .hostname = long_label}, "cloud_init.hostname"},
        {"yaml in hostname", {.instance_id = "i", .hostname = "a\nb: c"}, "cloud_init.hostname"},
        {"key with newline", {BASE, .ssh_keys = nl_key, .n_ssh_keys = 1}, "cloud_init.ssh_keys[0]"},
        {"unknown key type",
         {BASE, .ssh_keys = bad_type, .n_ssh_keys = 1},
         "cloud_init.ssh_keys[0]"},
        {"blob of another type",
         {BASE, .ssh_keys = mismatch, .n_ssh_keys = 1},
         "cloud_init.ssh_keys[0]"},
        {"key options", {BASE, .ssh_keys = options, .n_ssh_keys = 1}, "cloud_init.ssh_keys[0]"},
        {"second key not base64",
         {BASE, .ssh_keys = ok_keys, .n_ssh_keys = 2},
         "cloud_init.ssh_keys[1]"},
        {"too much user data",
         {BASE, .user_data = big, .user_data_len = sizeof(big)},
         "cloud_init.user_data"},
        {"text not UTF-8",
         {BASE, .user_data = not_utf8, .user_data_len = sizeof(not_utf8) - 1},
         "cloud_init.user_data"},
        {"text with NUL",
         {BASE, .user_data = nul, .user_data_len = sizeof(nul) - 1},
         "cloud_init.user_data"},
        {"bad mode", {BASE, .net_mode = (enum seed_net_mode)7}, "cloud_init.network.mode"},
        {"static without address",
         {BASE, .net_mode = SEED_NET_STATIC},
         "cloud_init.network.address"},
        {"address without prefix",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15"},
         "cloud_init.network.address"},
        {"address out of range",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.300/24"},
         "cloud_init.network.address"},
        {"prefix 33",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/33"},
         "cloud_init.network.address"},
        {"address with a newline",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24\nx: y"},
         "cloud_init.network.address"},
        {"prefix with junk",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24x"},
         "cloud_init.network.address"},
        {"gateway elsewhere",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24", .gateway = "10.0.3.1"},
         "cloud_init.network.gateway"},
        {"gateway is the address",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24", .gateway = "10.0.2.15"},
         "cloud_init.network.gateway"},
        {"dns name",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24", .dns = bad_dns, .n_dns = 2},
         "cloud_init.network.dns[1]"},
        {"four dns",
         {BASE, .net_mode = SEED_NET_STATIC, .address = "10.0.2.15/24", .dns = four_dns,
          .n_dns = 4},
         "cloud_init.network.dns"},
        {"address with dhcp",
         {BASE, .net_mode = SEED_NET_DHCP, .address = "10.0.2.15/24"},
         "cloud_init.network"},
        {"multicast mac",
         {BASE, .net_mode = SEED_NET_DHCP, .mac = "01:00:5e:00:00:01"},
         "cloud_init.network.mac"},
        {"mac with junk",
         {BASE, .net_mode = SEED_NET_DHCP, .mac = "52:54:00:12:34:5g"},
         "cloud_init.network.mac"},
    };
#undef BASE
    const char *iso = path_in_tmp("refused.iso");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[SEED_ERR_LEN] = "";
        int rc = seed_build(&cases[i].spec, iso, err);
        bool named =
            strncmp(err, cases[i].field, strlen(cases[i].field)) == 0 && !strchr(err, '\n');
        if (rc != -EINVAL || !named)
            fprintf(stderr, "case '%s': rc %d, err '%s', want the field %s\n", cases[i].what, rc,
                    err, cases[i].field);
        CHECK(rc == -EINVAL && named);
        CHECK(access(iso, F_OK) < 0);
    }
}

/* Without xorriso the build fails saying so, and the old image stays as it was. */
static void test_no_xorriso_keeps_old(void)
{
    struct seed_spec spec = {.instance_id = "i", .hostname = "h"};
    char err[SEED_ERR_LEN] = "";
    const char *iso = path_in_tmp("old.iso");
    char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    size_t len = 0;
    int fd = open(iso, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "old", 3) == 3);
    close(fd);

    setenv("PATH", tmpdir, 1); /* holds no xorriso */
    int rc = seed_build(&spec, iso, err);
    if (old_path)
        setenv("PATH", old_path, 1);
    free(old_path);
    CHECK(rc == -ENOENT && strstr(err, "xorriso") != NULL);
    char *got = slurp(iso, &len);
    CHECK(got && len == 3 && memcmp(got, "old", 3) == 0);
    free(got);
    /* And with it, the same path is replaced by a whole image. */
    rc = seed_build(&spec, iso, err);
    if (rc)
        fprintf(stderr, "seed_build with xorriso on PATH again: %d %s\n", rc, err);
    CHECK(rc == 0);
    got = slurp(iso, &len);
    CHECK(got && len >= 32768 + 2048);
    free(got);
}

/* The guest's YAML reader on input written by people, not by seed_build. */
static void test_guest_yaml(void)
{
    char err[CIDATA_ERR_LEN];
    struct cidata cd;

    /* meta-data as JSON (a YAML flow mapping), public-keys EC2 style. */
    const char *meta = "{\"instance-id\": \"iid-1\", \"local-hostname\": \"node7.lan\",\n"
                       " \"public-keys\": {\"a\": \"" ED25519 "\", \"b\": [\"" RSA "\"]}}\n";
    const char *user = "#cloud-config\r\n"
                       "# a comment\r\n"
                       "hostname: override # trailing comment\r\n"
                       "runcmd:\r\n"
                       "- [ touch, \"/tmp/it's here\" ]\r\n"
                       "- |\r\n"
                       "    for i in 1 2; do\r\n"
                       "      echo $i\r\n"
                       "    done\r\n"
                       "\r\n"
                       "- 'single ''quoted'''\r\n"
                       "-     |-\r\n"
                       "   indented less than the bar\r\n"
                       "ssh_authorized_keys: []\r\n"
                       "packages: {a: [b, {c: d}]}\r\n";
    const char *net = "network:\n"
                      "  version: 2\n"
                      "  ethernets:\n"
                      "    id0:\n"
                      "      match: {macaddress: '52:54:00:00:00:09'}\n"
                      "      addresses: [fd00::1/64, 192.168.7.9/25]\n"
                      "      gateway4: 192.168.7.1\n"
                      "      nameservers:\n"
                      "        addresses: [192.168.7.1, 'fd00::53']\n";
    CHECK(cidata_parse(&cd, meta, strlen(meta), user, strlen(user), net, strlen(net), err) == 0);
    CHECK(strcmp(cd.instance_id, "iid-1") == 0);
    CHECK(strcmp(cd.hostname, "override") == 0);
    CHECK(cd.n_keys == 2);
    CHECK(cd.script && strcmp(cd.script, "#!/bin/sh\n'touch' '/tmp/it'\\''s here'\n"
                                         "for i in 1 2; do\n  echo $i\ndone\n\n"
                                         "single 'quoted'\n"
                                         "indented less than the bar\n") == 0);
    CHECK(strcmp(cd.net.mac, "52:54:00:00:00:09") == 0);
    CHECK(strcmp(cd.net.address, "192.168.7.9/25") == 0);
    CHECK(strcmp(cd.net.gateway, "192.168.7.1") == 0);
    CHECK(cd.net.n_dns == 1);
    cidata_free(&cd);

    /* Refused, each with the file and the line. */
    static const struct {
        const char *meta, *user, *want;
    } bad[] = {
        {"a: &x 1\nb: *x\n", NULL, "meta-data: line 1: '&'"},
        {"a: 1\na: 2\n", NULL, "meta-data: line 2: duplicate key"},
        {"a:\n\t- b\n", NULL, "meta-data: line 2: a tab"},
        {"a: \"unterminated\n", NULL, "meta-data: line 1: a double-quoted"},
        {"a: [1, 2\n", NULL, "meta-data: line 2: '[' is not closed"},
        {"a: b\n  c: d\n", NULL, "meta-data: line 2: bad indentation"},
        {"local-hostname: \"bad_name\"\n", NULL, "meta-data: local-hostname"},
        {"a: 1\n", "#cloud-config\nruncmd: >\n  x\n", "user-data: line 2: folded"},
        {"a: 1\n", "#cloud-config\nruncmd: echo\n", "user-data: runcmd: expected a list"},
        {"a: 1\n", "#cloud-config\nssh_authorized_keys:\n - \"ssh-rsa A\\nssh-rsa B\"\n",
         "user-data: ssh key 1"},
        {"a: 1\n", "#cloud-config\nruncmd: [\"a\\0b\"]\n", "user-data: runcmd: a NUL"},
        {"a: \"\\ud800\"\n", NULL, "meta-data: line 1: escape of a UTF-16"},
        /* Input quoted in a message cannot break its line. */
        {"\"a\\nb\": 1\n\"a\\nb\": 2\n", NULL, "meta-data: line 2: duplicate key 'a?b'"},
        {"a: 1\x01\n", NULL, "meta-data: byte 5 is a control"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = cidata_parse(&cd, bad[i].meta, strlen(bad[i].meta), bad[i].user,
                              bad[i].user ? strlen(bad[i].user) : 0, NULL, 0, err);
        bool named = rc == -EINVAL && strncmp(err, bad[i].want, strlen(bad[i].want)) == 0;
        if (!named)
            fprintf(stderr, "bad case %zu: rc %d, err '%s', want '%s'\n", i, rc, rc ? err : "",
                    bad[i].want);
        CHECK(named);
        if (rc == 0)
            cidata_free(&cd);
    }

    /* Nesting deeper than the reader's limit is an error, not a stack overflow. */
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "a: ");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    deep[n++] = '\n';
    CHECK(cidata_parse(&cd, deep, n, NULL, 0, NULL, 0, err) == -EINVAL &&
          strstr(err, "nested deeper") != NULL);
    /* An unknown user-data format is ignored with a note, not an error. */
    CHECK(cidata_parse(&cd, "{}", 2, "#include http://x\n", 18, NULL, 0, err) == 0 &&
          cd.script == NULL && cd.note[0] != '\0');
    cidata_free(&cd);
}

/* Every truncation and a few thousand random byte changes of a real image: the reader
 * answers each with 0 or an error, and ASan sees no bad access. */
static void test_guest_iso_mutations(void)
{
    static const char *keys[] = {ED25519};
    static const char *dns[] = {"10.0.2.3"};
    struct seed_spec spec = {
        .instance_id = "mut",
        .hostname = "mut",
        .ssh_keys = keys,
        .n_ssh_keys = 1,
        .user_data = (const uint8_t *)"#cloud-config\nruncmd: [[a, b], c]\n",
        .user_data_len = 34,
        .net_mode = SEED_NET_STATIC,
        .address = "10.0.2.15/24",
        .gateway = "10.0.2.2",
        .dns = dns,
        .n_dns = 1,
    };
    char err[SEED_ERR_LEN];
    const char *iso = path_in_tmp("mut.iso");
    size_t len = 0;
    unsigned ok = 0, refused = 0;

    CHECK(seed_build(&spec, iso, err) == 0);
    char *img = slurp(iso, &len);
    CHECK(img != NULL);
    if (!img)
        return;
    uint8_t *work = malloc(len);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(work, img, len);
        size_t size = len;
        if (iter < 200) {
            size = (size_t)iter * (len / 200);
        } else {
            for (int k = 0; k < 1 + iter % 8; k++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                /* Mostly the descriptors, the directory and the files (the first 48 KiB). */
                size_t at = (size_t)(seed >> 8) % (len < 49152 ? len : 49152);
                work[at] = (uint8_t)(seed >> 56);
            }
        }
        struct membuf mb = {work};
        struct cidata_src src = {.read = mem_read, .ctx = &mb, .size = size};
        struct cidata cd;
        char gerr[CIDATA_ERR_LEN];
        if (cidata_load(&src, &cd, gerr) == 0) {
            ok++;
            cidata_free(&cd);
        } else {
            refused++;
        }
    }
    CHECK(ok > 0 && refused > 0);
    free(work);
    free(img);
}

/* The REST API's cloud_init object: types, unknown fields and defaults, each error naming
 * its field path. */
static void test_from_json(void)
{
    struct seed_json sj;
    char err[SEED_ERR_LEN];
    json_error_t jerr;
    json_t *o = json_loads("{\"hostname\": \"web\", \"ssh_keys\": [\"" ED25519 "\"],"
                           " \"user_data\": \"#!/bin/sh\\u0000x\","
                           " \"network\": {\"mode\": \"static\", \"address\": \"10.0.2.9/24\","
                           " \"gateway\": \"10.0.2.2\", \"dns\": [\"10.0.2.3\"],"
                           " \"mac\": \"52:54:00:00:00:01\"}}",
                           JSON_ALLOW_NUL, &jerr);
    CHECK(o != NULL);
    if (!o)
        return;
    CHECK(seed_spec_from_json(o, "vm-1", "vmname", &sj, err) == 0);
    CHECK(strcmp(sj.spec.instance_id, "vm-1") == 0 && strcmp(sj.spec.hostname, "web") == 0);
    CHECK(sj.spec.n_ssh_keys == 1 && strcmp(sj.spec.ssh_keys[0], ED25519) == 0);
    CHECK(sj.spec.user_data_len == 11 && sj.spec.user_data[9] == 0); /* a script keeps NUL */
    CHECK(sj.spec.net_mode == SEED_NET_STATIC && strcmp(sj.spec.address, "10.0.2.9/24") == 0);
    CHECK(sj.spec.n_dns == 1 && strcmp(sj.spec.mac, "52:54:00:00:00:01") == 0);
    CHECK(seed_build(&sj.spec, path_in_tmp("json.iso"), err) == 0);
    json_decref(o);

    /* Everything optional: the VM's name is the host name, no network-config. */
    o = json_object();
    CHECK(seed_spec_from_json(o, "vm-2", "db-3", &sj, err) == 0);
    CHECK(strcmp(sj.spec.hostname, "db-3") == 0 && sj.spec.net_mode == SEED_NET_NONE);
    json_decref(o);

    static const struct {
        const char *json, *vm_name, *field;
    } bad[] = {
        {"[]", "vm", "cloud_init: expected an object"},
        {"{\"hostnme\": \"x\"}", "vm", "cloud_init.hostnme: unknown field"},
        {"{\"hostname\": 7}", "vm", "cloud_init.hostname: expected a string"},
        {"{\"hostname\": \"a\\u0000b\"}", "vm", "cloud_init.hostname: contains a NUL"},
        {"{}", "-vm", "cloud_init.hostname: the VM's name"},
        {"{\"ssh_keys\": \"" ED25519 "\"}", "vm", "cloud_init.ssh_keys: expected a list"},
        {"{\"ssh_keys\": [\"" ED25519 "\", 1]}", "vm", "cloud_init.ssh_keys[1]: expected"},
        {"{\"ssh_keys\": [\"ssh-rsa x\"]}", "vm", "cloud_init.ssh_keys[0]: the base64"},
        {"{\"user_data\": {}}", "vm", "cloud_init.user_data: expected a string"},
        {"{\"user_data\": \"echo \\u0000\"}", "vm", "cloud_init.user_data: byte 6 is NUL"},
        {"{\"network\": \"dhcp\"}", "vm", "cloud_init.network: expected an object"},
        {"{\"network\": {}}", "vm", "cloud_init.network.mode: expected dhcp or static"},
        {"{\"network\": {\"mode\": \"dhcp\", \"ip\": 1}}", "vm",
         "cloud_init.network.ip: unknown field"},
        {"{\"network\": {\"mode\": \"static\", \"address\": \"10.0.0.1/8\", \"dns\": "
         "[\"1.1.1.1\", \"1.1.1.2\", \"1.1.1.3\", \"1.1.1.4\"]}}",
         "vm", "cloud_init.network.dns: at most 3"},
        {"{\"network\": {\"mode\": \"static\", \"address\": \"10.0.0.1/8\", \"gateway\": "
         "\"11.0.0.1\"}}",
         "vm", "cloud_init.network.gateway: 11.0.0.1 is not"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = json_loads(bad[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!o) {
            fprintf(stderr, "json case %zu does not parse: %s\n", i, jerr.text);
            CHECK(o != NULL);
            continue;
        }
        int rc = seed_spec_from_json(o, "i", bad[i].vm_name, &sj, err);
        bool named = rc == -EINVAL && strncmp(err, bad[i].field, strlen(bad[i].field)) == 0;
        if (!named)
            fprintf(stderr, "json case %zu: rc %d, err '%s', want '%s'\n", i, rc, err,
                    bad[i].field);
        CHECK(named);
        json_decref(o);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tessera-seedtest-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_full_spec();
    test_script_verbatim();
    test_hostile_strings_round_trip();
    test_refused();
    test_no_xorriso_keeps_old();
    test_from_json();
    test_guest_yaml();
    test_guest_iso_mutations();

    char *argv[] = {"rm", "-rf", tmpdir, NULL};
    run_quiet(argv);
    return test_finish("seed");
}
