/* The NoCloud seed disk: validation, the three YAML files, and the ISO made by xorriso.
 * The contract is in seed.h. */
#include "daemon/seed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int seed_fail(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A message may quote the caller's value; control bytes become '?' so it stays one line. */
static int seed_fail(char *err, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SEED_ERR_LEN, fmt, ap);
    va_end(ap);
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return rc;
}

/* ---- validation ------------------------------------------------------------------------ */

/* Decodes one UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). Returns its length and the code point, or 0 when it is not UTF-8. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, c &= 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, c &= 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Checks that s[0..n) is UTF-8 without control characters (C0, DEL, C1). Gives the offset
 * of the first bad byte. */
static bool text_is_clean(const uint8_t *s, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
            *bad = i;
            return false;
        }
        i += len;
    }
    return true;
}

/* RFC 1123 §2.1 host name: dot-separated labels of letters, digits and hyphens, not starting
 * or ending with a hyphen, 1..63 each, at most 253 in all. */
static int check_hostname(const char *h, char *err)
{
    size_t n = h ? strlen(h) : 0, label = 0;
    if (n == 0 || n > 253)
        return seed_fail(err, -EINVAL, "cloud_init.hostname: expected 1 to 253 characters");
    for (size_t i = 0; i <= n; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                return seed_fail(err, -EINVAL,
                                 "cloud_init.hostname: each dot-separated label must have 1 to "
                                 "63 characters");
            if (h[i - 1] == '-')
                return seed_fail(err, -EINVAL,
                                 "cloud_init.hostname: a label must not end with '-'");
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return seed_fail(err, -EINVAL,
                             "cloud_init.hostname: character %zu is not a letter, digit, '-' "
                             "or '.' (or a label starts with '-')",
                             i + 1);
        }
    }
    return 0;
}

/* The key types OpenSSH's sshd accepts in authorized_keys (sshd(8) "AUTHORIZED_KEYS FILE
 * FORMAT"). */
static const char *const ssh_key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
};

static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes the first `want` bytes of the base64 text s[0..n) into out. Returns how many it
 * decoded (fewer when the text is shorter), or -1 on a character that is not base64. */
static long b64_decode_prefix(const char *s, size_t n, uint8_t *out, size_t want)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t got = 0;
    for (size_t i = 0; i < n && got < want; i++) {
        if (s[i] == '=')
            break;
        int v = b64_value((uint8_t)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[got++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)got;
}

/* One authorized_keys line: "TYPE BASE64 [COMMENT]", no options, no control characters, and
 * the blob must name the same type (RFC 4253 §6.6: the blob starts with the type string). */
static int check_ssh_key(const char *k, size_t idx, char *err)
{
    size_t n = k ? strlen(k) : 0, bad, tlen = 0;
    const char *type = NULL;
    if (n == 0 || n > SEED_MAX_KEY_LEN)
        return seed_fail(err, -EINVAL, "cloud_init.ssh_keys[%zu]: expected 1 to %d bytes", idx,
                         SEED_MAX_KEY_LEN);
    if (!text_is_clean((const uint8_t *)k, n, &bad))
        return seed_fail(err, -EINVAL,
                         "cloud_init.ssh_keys[%zu]: byte %zu is a control character (a newline?) "
                         "or not UTF-8; give one key per line",
                         idx, bad + 1);
    for (size_t i = 0; i < sizeof(ssh_key_types) / sizeof(ssh_key_types[0]); i++) {
        size_t l = strlen(ssh_key_types[i]);
        if (strncmp(k, ssh_key_types[i], l) == 0 && k[l] == ' ') {
            type = ssh_key_types[i];
            tlen = l;
            break;
        }
    }
    if (!type)
        return seed_fail(err, -EINVAL,
                         "cloud_init.ssh_keys[%zu]: expected a public key line starting with "
                         "its type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...) and a space",
                         idx);
    const char *blob = k + tlen + 1;
    size_t blen = strcspn(blob, " ");
    uint8_t head[4 + 40];
    long got = b64_decode_prefix(blob, blen, head, 4 + tlen);
    if (got < 0 || (size_t)got < 4 + tlen ||
        ((uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3]) !=
            tlen ||
        memcmp(head + 4, type, tlen) != 0)
        return seed_fail(err, -EINVAL,
                         "cloud_init.ssh_keys[%zu]: the base64 key after '%s ' is not a %s key",
                         idx, type, type);
    return 0;
}

/* "A.B.C.D" (inet_pton's strict dotted quad). */
static bool parse_ipv4(const char *s, struct in_addr *a)
{
    return s && inet_pton(AF_INET, s, a) == 1;
}

static int check_address(const char *s, struct in_addr *addr, unsigned *prefix, char *err)
{
    char ip[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    char *end;
    if (!slash || (size_t)(slash - s) >= sizeof(ip))
        return seed_fail(err, -EINVAL,
                         "cloud_init.network.address: expected an IPv4 address and prefix "
                         "length, like 10.0.2.15/24");
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    errno = 0;
    unsigned long p = strtoul(slash + 1, &end, 10);
    if (!parse_ipv4(ip, addr) || slash[1] < '0' || slash[1] > '9' || *end || errno || p < 1 ||
        p > 32)
        return seed_fail(err, -EINVAL,
                         "cloud_init.network.address: '%.64s' is not an IPv4 address with a "
                         "prefix length 1..32, like 10.0.2.15/24",
                         s);
    *prefix = (unsigned)p;
    return 0;
}

static int check_mac(const char *m, char *err)
{
    unsigned v[6];
    char tail;
    if (strlen(m) != 17 || sscanf(m, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                                  &v[5], &tail) != 6)
        return seed_fail(err, -EINVAL,
                         "cloud_init.network.mac: expected six hex pairs like 52:54:00:12:34:56");
    for (int i = 0; i < 17; i++)
        if ((i % 3 == 2) != (m[i] == ':') ||
            (i % 3 != 2 && !((m[i] >= '0' && m[i] <= '9') || (m[i] >= 'a' && m[i] <= 'f') ||
                             (m[i] >= 'A' && m[i] <= 'F'))))
            return seed_fail(err, -EINVAL,
                             "cloud_init.network.mac: expected six hex pairs like "
                             "52:54:00:12:34:56");
    if (v[0] & 1)
        return seed_fail(err, -EINVAL, "cloud_init.network.mac: %s is a multicast address", m);
    return 0;
}

static int check_network(const struct seed_spec *spec, char *err)
{
    struct in_addr addr, gw, dns;
    unsigned prefix = 0;
    int rc;

    if (spec->net_mode != SEED_NET_NONE && spec->net_mode != SEED_NET_DHCP &&
        spec->net_mode != SEED_NET_STATIC)
        return seed_fail(err, -EINVAL, "cloud_init.network.mode: expected dhcp or static");
    if (spec->mac && (rc = check_mac(spec->mac, err)) < 0)
        return rc;
    if (spec->net_mode != SEED_NET_STATIC) {
        if (spec->address || spec->gateway || spec->n_dns)
            return seed_fail(err, -EINVAL,
                             "cloud_init.network: address, gateway and dns need mode static");
        return 0;
    }
    if ((rc = check_address(spec->address, &addr, &prefix, err)) < 0)
        return rc;
    if (spec->gateway) {
        uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
        if (!parse_ipv4(spec->gateway, &gw))
            return seed_fail(err, -EINVAL,
                             "cloud_init.network.gateway: expected an IPv4 address like "
                             "10.0.2.2");
        if ((ntohl(gw.s_addr) & mask) != (ntohl(addr.s_addr) & mask) || gw.s_addr == addr.s_addr)
            return seed_fail(err, -EINVAL,
                             "cloud_init.network.gateway: %s is not another address in %s's "
                             "network",
                             spec->gateway, spec->address);
    }
    if (spec->n_dns > SEED_MAX_DNS)
        return seed_fail(err, -EINVAL, "cloud_init.network.dns: at most %d name servers",
                         SEED_MAX_DNS);
    for (size_t i = 0; i < spec->n_dns; i++)
        if (!parse_ipv4(spec->dns[i], &dns))
            return seed_fail(err, -EINVAL,
                             "cloud_init.network.dns[%zu]: expected an IPv4 address like "
                             "10.0.2.3",
                             i);
    return 0;
}

/* Whether user data goes into user-data as it is: a script (cloud-init runs a part that
 * starts with "#!" as a per-instance script) or the user's own cloud-config. */
static bool user_data_verbatim(const struct seed_spec *spec)
{
    const char *u = (const char *)spec->user_data;
    size_t n = spec->user_data_len;
    return (n >= 2 && memcmp(u, "#!", 2) == 0) || (n >= 13 && memcmp(u, "#cloud-config", 13) == 0);
}

int seed_check(const struct seed_spec *spec, char *err)
{
    size_t n, bad;
    int rc;

    n = spec->instance_id ? strlen(spec->instance_id) : 0;
    if (n == 0 || n > SEED_MAX_ID_LEN)
        return seed_fail(err, -EINVAL, "instance_id: expected 1 to %d bytes", SEED_MAX_ID_LEN);
    if (!text_is_clean((const uint8_t *)spec->instance_id, n, &bad))
        return seed_fail(err, -EINVAL, "instance_id: byte %zu is a control character or not UTF-8",
                         bad + 1);
    if ((rc = check_hostname(spec->hostname, err)) < 0)
        return rc;
    if (spec->n_ssh_keys > SEED_MAX_KEYS)
        return seed_fail(err, -EINVAL, "cloud_init.ssh_keys: at most %d keys", SEED_MAX_KEYS);
    for (size_t i = 0; i < spec->n_ssh_keys; i++)
        if ((rc = check_ssh_key(spec->ssh_keys[i], i, err)) < 0)
            return rc;
    if (spec->user_data_len > SEED_MAX_USER_DATA)
        return seed_fail(err, -EINVAL, "cloud_init.user_data: %zu bytes, at most %u",
                         spec->user_data_len, SEED_MAX_USER_DATA);
    if (spec->user_data_len && !spec->user_data)
        return seed_fail(err, -EINVAL, "cloud_init.user_data: no data for %zu bytes",
                         spec->user_data_len);
    /* Text that becomes a runcmd entry must be representable in YAML: UTF-8, and no NUL
     * (a script with a NUL byte is no shell script). Tabs and newlines are escaped. */
    if (spec->user_data_len && !user_data_verbatim(spec)) {
        const uint8_t *u = spec->user_data;
        for (size_t i = 0; i < spec->user_data_len;) {
            uint32_t cp;
            size_t len = utf8_decode(u + i, spec->user_data_len - i, &cp);
            if (len == 0 || cp == 0)
                return seed_fail(err, -EINVAL,
                                 "cloud_init.user_data: byte %zu is %s; a script that is not "
                                 "UTF-8 text must start with '#!'",
                                 i + 1, len == 0 ? "not UTF-8" : "NUL");
            i += len;
        }
    }
    return check_network(spec, err);
}

/* ---- the REST API's cloud_init object ---------------------------------------------------- */

/* A string member of obj (NULL when absent); -EINVAL when present but not a string. */
static int json_str(const json_t *obj, const char *key, const char *field, const char **out,
                    char *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return seed_fail(err, -EINVAL, "%s: expected a string", field);
    /* jansson allows "\u0000"; a C string cannot hold it, and no field wants it. */
    if (strlen(json_string_value(v)) != json_string_length(v))
        return seed_fail(err, -EINVAL, "%s: contains a NUL character", field);
    *out = json_string_value(v);
    return 0;
}

/* A list of strings (at most max) into out[]; *n is how many. */
static int json_str_list(const json_t *obj, const char *key, const char *field, const char **out,
                         size_t max, size_t *n, char *err)
{
    const json_t *v = json_object_get(obj, key), *item;
    size_t i;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return seed_fail(err, -EINVAL, "%s: expected a list of strings", field);
    if (json_array_size(v) > max)
        return seed_fail(err, -EINVAL, "%s: at most %zu entries", field, max);
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item))
            return seed_fail(err, -EINVAL, "%s[%zu]: expected a string without NUL", field, i);
        out[(*n)++] = json_string_value(item);
    }
    return 0;
}

/* Refuses a member of obj not in the NUL-separated list `known`. */
static int json_known(const json_t *obj, const char *field, const char *known, const char *names,
                      char *err)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const char *k = known;
        while (*k && strcmp(k, key) != 0)
            k += strlen(k) + 1;
        if (!*k)
            return seed_fail(err, -EINVAL, "%s.%.64s: unknown field (expected %s)", field, key,
                             names);
    }
    return 0;
}

int seed_spec_from_json(const json_t *obj, const char *instance_id, const char *default_hostname,
                        struct seed_json *out, char *err)
{
    struct seed_spec *spec = &out->spec;
    const json_t *net;
    const char *user_data, *mode;
    int rc;

    memset(out, 0, sizeof(*out));
    spec->instance_id = instance_id;
    spec->ssh_keys = out->keys;
    spec->dns = out->dns;
    if (!json_is_object(obj))
        return seed_fail(err, -EINVAL, "cloud_init: expected an object");
    if ((rc = json_known(obj, "cloud_init", "hostname\0ssh_keys\0user_data\0network\0",
                         "hostname, ssh_keys, user_data, network", err)) < 0 ||
        (rc = json_str(obj, "hostname", "cloud_init.hostname", &spec->hostname, err)) < 0 ||
        (rc = json_str_list(obj, "ssh_keys", "cloud_init.ssh_keys", out->keys, SEED_MAX_KEYS,
                            &spec->n_ssh_keys, err)) < 0)
        return rc;
    /* user_data is a JSON string: UTF-8 text. It may hold "\u0000" (a script's bytes). */
    const json_t *ud = json_object_get(obj, "user_data");
    if (ud && !json_is_string(ud))
        return seed_fail(err, -EINVAL, "cloud_init.user_data: expected a string");
    user_data = ud ? json_string_value(ud) : NULL;
    spec->user_data = (const uint8_t *)user_data;
    spec->user_data_len = ud ? json_string_length(ud) : 0;
    if (!spec->hostname) {
        spec->hostname = default_hostname;
        if (check_hostname(default_hostname, err) < 0)
            return seed_fail(err, -EINVAL,
                             "cloud_init.hostname: the VM's name '%.64s' is no host name; give "
                             "one",
                             default_hostname ? default_hostname : "");
    }
    net = json_object_get(obj, "network");
    if (net) {
        if (!json_is_object(net))
            return seed_fail(err, -EINVAL, "cloud_init.network: expected an object");
        if ((rc = json_known(net, "cloud_init.network", "mode\0address\0gateway\0dns\0mac\0",
                             "mode, address, gateway, dns, mac", err)) < 0 ||
            (rc = json_str(net, "mode", "cloud_init.network.mode", &mode, err)) < 0 ||
            (rc = json_str(net, "address", "cloud_init.network.address", &spec->address, err)) <
                0 ||
            (rc = json_str(net, "gateway", "cloud_init.network.gateway", &spec->gateway, err)) <
                0 ||
            (rc = json_str(net, "mac", "cloud_init.network.mac", &spec->mac, err)) < 0 ||
            (rc = json_str_list(net, "dns", "cloud_init.network.dns", out->dns, SEED_MAX_DNS,
                                &spec->n_dns, err)) < 0)
            return rc;
        if (mode && strcmp(mode, "dhcp") == 0)
            spec->net_mode = SEED_NET_DHCP;
        else if (mode && strcmp(mode, "static") == 0)
            spec->net_mode = SEED_NET_STATIC;
        else
            return seed_fail(err, -EINVAL, "cloud_init.network.mode: expected dhcp or static");
    }
    return seed_check(spec, err);
}

/* ---- the YAML files ---------------------------------------------------------------------- */

/* A growing text buffer; a failed allocation is remembered and reported once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sbuf_add(struct sbuf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

/* YAML 1.2 §5.1: printable characters; everything else must be escaped, and "\" and '"'
 * must be escaped inside a double-quoted scalar (§7.3.1). Also escaped: U+FEFF, which a
 * reader may take for a byte order mark, and U+2028/U+2029, which YAML 1.1 readers (PyYAML,
 * that cloud-init uses) take for line breaks and would fold. */
static bool yaml_printable(uint32_t cp)
{
    return (cp >= 0x20 && cp <= 0x7e) ||
           (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 && cp != 0x2029) ||
           (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/* Appends s[0..n) (checked UTF-8 by seed_check) as a YAML double-quoted scalar. */
static void sbuf_yaml_quoted(struct sbuf *b, const uint8_t *s, size_t n)
{
    char esc[12];
    sbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) /* unreachable after seed_check; never emit a raw bad byte */
            len = 1, cp = 0xfffd;
        if (cp == '"' || cp == '\\') {
            esc[0] = '\\', esc[1] = (char)cp;
            sbuf_add(b, esc, 2);
        } else if (cp == '\n') {
            sbuf_add(b, "\\n", 2);
        } else if (cp == '\t') {
            sbuf_add(b, "\\t", 2);
        } else if (yaml_printable(cp)) {
            sbuf_add(b, s + i, len);
        } else if (cp < 0x100) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
            sbuf_str(b, esc);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
            sbuf_str(b, esc);
        }
        i += len;
    }
    sbuf_add(b, "\"", 1);
}

static void sbuf_yaml_str(struct sbuf *b, const char *s)
{
    sbuf_yaml_quoted(b, (const uint8_t *)s, strlen(s));
}

/* meta-data: what the EC2 metadata service would say (NoCloud reads instance-id,
 * local-hostname and public-keys). */
static void render_meta_data(const struct seed_spec *spec, struct sbuf *b)
{
    sbuf_str(b, "instance-id: ");
    sbuf_yaml_str(b, spec->instance_id);
    sbuf_str(b, "\nlocal-hostname: ");
    sbuf_yaml_str(b, spec->hostname);
    sbuf_str(b, "\n");
    if (spec->n_ssh_keys) {
        sbuf_str(b, "public-keys:\n");
        for (size_t i = 0; i < spec->n_ssh_keys; i++) {
            sbuf_str(b, "  - ");
            sbuf_yaml_str(b, spec->ssh_keys[i]);
            sbuf_str(b, "\n");
        }
    }
}

static void render_user_data(const struct seed_spec *spec, struct sbuf *b)
{
    if (user_data_verbatim(spec)) {
        sbuf_add(b, spec->user_data, spec->user_data_len);
        return;
    }
    sbuf_str(b, "#cloud-config\nhostname: ");
    sbuf_yaml_str(b, spec->hostname);
    sbuf_str(b, "\n");
    if (spec->n_ssh_keys) {
        sbuf_str(b, "ssh_authorized_keys:\n");
        for (size_t i = 0; i < spec->n_ssh_keys; i++) {
            sbuf_str(b, "  - ");
            sbuf_yaml_str(b, spec->ssh_keys[i]);
            sbuf_str(b, "\n");
        }
    }
    if (spec->user_data_len) {
        /* cc_runcmd writes a string entry as it is into a /bin/sh script that runs once per
         * instance, so the whole text runs as one shell script. */
        sbuf_str(b, "runcmd:\n  - ");
        sbuf_yaml_quoted(b, spec->user_data, spec->user_data_len);
        sbuf_str(b, "\n");
    }
}

/* network-config, version 2 (cloud-init "Networking config Version 2", a subset of netplan's).
 * With a MAC the ethernet is matched by it and named eth0 (names differ between guests);
 * without one the entry names eth0 itself. */
static void render_network_config(const struct seed_spec *spec, struct sbuf *b)
{
    sbuf_str(b, "version: 2\nethernets:\n  eth0:\n");
    if (spec->mac) {
        char mac[18];
        for (int i = 0; i < 17; i++)
            mac[i] = (spec->mac[i] >= 'A' && spec->mac[i] <= 'F') ? (char)(spec->mac[i] + 32)
                                                                  : spec->mac[i];
        mac[17] = '\0';
        sbuf_str(b, "    match:\n      macaddress: ");
        sbuf_yaml_str(b, mac);
        sbuf_str(b, "\n    set-name: eth0\n");
    }
    if (spec->net_mode == SEED_NET_DHCP) {
        sbuf_str(b, "    dhcp4: true\n");
        return;
    }
    sbuf_str(b, "    dhcp4: false\n    addresses:\n      - ");
    sbuf_yaml_str(b, spec->address);
    sbuf_str(b, "\n");
    if (spec->gateway) {
        sbuf_str(b, "    routes:\n      - to: \"0.0.0.0/0\"\n        via: ");
        sbuf_yaml_str(b, spec->gateway);
        sbuf_str(b, "\n");
    }
    if (spec->n_dns) {
        sbuf_str(b, "    nameservers:\n      addresses:\n");
        for (size_t i = 0; i < spec->n_dns; i++) {
            sbuf_str(b, "        - ");
            sbuf_yaml_str(b, spec->dns[i]);
            sbuf_str(b, "\n");
        }
    }
}

/* ---- the image ----------------------------------------------------------------------------- */

/* Writes n bytes to dir/name, a new 0600 file. */
static int stage_write(int dirfd, const char *name, const void *data, size_t n)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Runs argv (argv[0] looked up in PATH) with stdin from /dev/null and its stdout and stderr
 * into one pipe, of which the first bytes go to out (NUL-terminated). Returns the wait status
 * in *status, or -errno when it could not start (-ENOENT: not installed). */
static int run_tool(char *const argv[], char *out, size_t out_len, int *status)
{
    posix_spawn_file_actions_t fa;
    int pipefd[2], rc;
    pid_t pid;
    size_t got = 0;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        goto close_pipe;
    if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2)) != 0)
        goto destroy_actions;
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
destroy_actions:
    posix_spawn_file_actions_destroy(&fa);
close_pipe:
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return -rc;
    }
    for (;;) {
        char buf[512];
        ssize_t r = read(pipefd[0], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < out_len - 1 - got ? (size_t)r : out_len - 1 - got;
        memcpy(out + got, buf, take);
        got += take;
    }
    out[got] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* The first line of a tool's output, for an error message. */
static const char *first_line(char *s)
{
    while (*s == '\n')
        s++;
    s[strcspn(s, "\n")] = '\0';
    return *s ? s : "(no output)";
}

int seed_build(const struct seed_spec *spec, const char *out_path, char *err)
{
    struct sbuf meta = {0}, user = {0}, net = {0};
    char stage[PATH_MAX], iso[PATH_MAX + 16], out[1024];
    const char *slash;
    int rc, dirfd, status;

    if ((rc = seed_check(spec, err)) < 0)
        return rc;
    render_meta_data(spec, &meta);
    render_user_data(spec, &user);
    if (spec->net_mode != SEED_NET_NONE)
        render_network_config(spec, &net);
    if (meta.oom || user.oom || net.oom) {
        rc = seed_fail(err, -ENOMEM, "%s: out of memory rendering the seed files", out_path);
        goto free_bufs;
    }

    /* The staging directory sits beside out_path, so the final rename stays on one file
     * system; mkdtemp makes it 0700 with a name nobody can guess. */
    slash = strrchr(out_path, '/');
    if (slash)
        rc = snprintf(stage, sizeof(stage), "%.*s/.seed-XXXXXX", (int)(slash - out_path), out_path);
    else
        rc = snprintf(stage, sizeof(stage), ".seed-XXXXXX");
    if (rc < 0 || (size_t)rc >= sizeof(stage)) {
        rc = seed_fail(err, -ENAMETOOLONG, "%s: path too long", out_path);
        goto free_bufs;
    }
    if (!mkdtemp(stage)) {
        rc = -errno;
        seed_fail(err, rc, "%s: cannot make a staging directory beside it: %s", out_path,
                  strerror(-rc));
        goto free_bufs;
    }
    dirfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rc = -errno;
        seed_fail(err, rc, "%s: %s", stage, strerror(-rc));
        goto remove_stage;
    }
    if ((rc = stage_write(dirfd, "meta-data", meta.p, meta.len)) < 0 ||
        (rc = stage_write(dirfd, "user-data", user.p ? user.p : "", user.len)) < 0 ||
        (spec->net_mode != SEED_NET_NONE &&
         (rc = stage_write(dirfd, "network-config", net.p, net.len)) < 0)) {
        seed_fail(err, rc, "%s: writing the seed files: %s", stage, strerror(-rc));
        goto close_stage;
    }

    {
        char f_meta[PATH_MAX + 16], f_user[PATH_MAX + 16], f_net[PATH_MAX + 16];
        snprintf(iso, sizeof(iso), "%s/seed.iso", stage);
        snprintf(f_meta, sizeof(f_meta), "%s/meta-data", stage);
        snprintf(f_user, sizeof(f_user), "%s/user-data", stage);
        snprintf(f_net, sizeof(f_net), "%s/network-config", stage);
        /* cloud-localds's options: Joliet and Rock Ridge keep the lower-case names with
         * their hyphens, which plain ISO 9660 level 1 names could not. */
        char *argv[] = {"xorriso", "-as",     "mkisofs", "-quiet", "-volid", "cidata", "-joliet",
                        "-rock",   "-output", iso,       f_meta,   f_user,   f_net,    NULL};
        if (spec->net_mode == SEED_NET_NONE)
            argv[12] = NULL; /* no network-config */
        rc = run_tool(argv, out, sizeof(out), &status);
    }
    if (rc == -ENOENT) {
        seed_fail(err, rc,
                  "xorriso is not installed; the seed disk needs it (apt-get install xorriso)");
        goto unlink_files;
    } else if (rc < 0) {
        seed_fail(err, rc, "cannot run xorriso: %s", strerror(-rc));
        goto unlink_files;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = seed_fail(err, -EIO, "xorriso failed (%s %d): %s",
                       WIFEXITED(status) ? "exit status" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), first_line(out));
        goto unlink_iso;
    }

    {
        int fd = open(iso, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0) {
            rc = -errno;
            seed_fail(err, rc, "%s: %s", iso, strerror(-rc));
            if (fd >= 0)
                close(fd);
            goto unlink_iso;
        }
        close(fd);
    }
    if (chmod(iso, 0600) < 0 || rename(iso, out_path) < 0) {
        rc = -errno;
        seed_fail(err, rc, "%s: %s", out_path, strerror(-rc));
        goto unlink_iso;
    }
    /* The rename is durable once the directory holding out_path is on disk too (the
     * staging directory's parent is that directory). */
    {
        char parent[PATH_MAX + 4];
        snprintf(parent, sizeof(parent), "%s/..", stage);
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            fsync(pfd);
            close(pfd);
        }
    }
    rc = 0;
unlink_iso:
    unlinkat(dirfd, "seed.iso", 0);
unlink_files:
    unlinkat(dirfd, "network-config", 0);
close_stage:
    unlinkat(dirfd, "meta-data", 0);
    unlinkat(dirfd, "user-data", 0);
    close(dirfd);
remove_stage:
    rmdir(stage);
free_bufs:
    free(meta.p);
    free(user.p);
    free(net.p);
    return rc;
}
