/* The network spec parser. See netspec.h. */
#include "net/netspec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_priv.h"

const char *netspec_quote(const char *s, char *buf, size_t n)
{
    const size_t max = 48;
    size_t i;

    if (n < max + 4) {
        if (n)
            buf[0] = '\0';
        return buf;
    }
    for (i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s[i]) {
        memcpy(&buf[i], "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

int netspec_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return -EINVAL;
        d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int netspec_parse_port(const char *s, uint16_t *out)
{
    unsigned long v;

    if (netspec_parse_uint(s, 65535, &v) < 0 || v == 0)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

static bool netspec_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int netspec_parse_hostport(const char *s, char host[NETSPEC_HOST_MAX], uint16_t *port)
{
    const char *colon;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        struct in6_addr a6;

        if (!close || close[1] != ':')
            return -EINVAL;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= NETSPEC_HOST_MAX)
            return -EINVAL;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return -EINVAL;
        colon = close + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon)
            return -EINVAL;
        hlen = (size_t)(colon - s);
        if (hlen >= NETSPEC_HOST_MAX)
            return -EINVAL;
        for (size_t i = 0; i < hlen; i++) {
            if (!netspec_host_char(s[i]))
                return -EINVAL;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
    }
    return netspec_parse_port(colon + 1, port);
}

void netspec_free(struct net_spec *spec)
{
    if (spec->cfg && spec->ops && spec->ops->cfg_free)
        spec->ops->cfg_free(spec->cfg);
    free(spec->cfg);
    spec->cfg = NULL;
    spec->ops = NULL;
}

/* Parses the items after the kind: "key=value,key=value". `items` is a writable copy. */
static int netspec_parse_items(const struct net_backend_ops *ops, void *cfg, char *items, char *err)
{
    char q[64];

    while (items) {
        char *item = items, *comma = strchr(items, ','), *eq;
        int r;

        if (comma) {
            *comma = '\0';
            items = comma + 1;
        } else {
            items = NULL;
        }
        if (!*item) {
            net_err(err, "%s: empty option (a stray ',')", ops->name);
            return -EINVAL;
        }
        eq = strchr(item, '=');
        if (!eq) {
            net_err(err, "%s: %s: missing '=VALUE'", ops->name, netspec_quote(item, q, sizeof(q)));
            return -EINVAL;
        }
        *eq = '\0';
        if (!*item) {
            net_err(err, "%s: option '=%s' has no key", ops->name,
                    netspec_quote(eq + 1, q, sizeof(q)));
            return -EINVAL;
        }
        r = ops->parse_key(cfg, item, eq + 1, err);
        if (r == -ENOENT) {
            net_err(err, "%s: unknown key '%s' (valid keys: %s)", ops->name,
                    netspec_quote(item, q, sizeof(q)), ops->keys);
            return -EINVAL;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int netspec_parse(const char *spec, struct net_spec *out, char *err)
{
    char kinds[64], q[64];
    const struct net_backend_ops *ops;
    size_t len, kind_len;
    char *copy = NULL;
    void *cfg = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    net_backend_list(kinds, sizeof(kinds));
    len = spec ? strnlen(spec, NET_SPEC_MAX + 1) : 0;
    if (len > NET_SPEC_MAX) {
        net_err(err, "network spec is longer than %d bytes", NET_SPEC_MAX);
        return -EINVAL;
    }
    if (len == 0) {
        net_err(err, "empty network spec (expected %s)", kinds);
        return -EINVAL;
    }
    kind_len = strcspn(spec, ",");
    ops = net_backend_lookup(spec, kind_len);
    if (!ops) {
        char kind[NET_SPEC_MAX + 1];

        memcpy(kind, spec, kind_len);
        kind[kind_len] = '\0';
        net_err(err, "unknown network backend '%s' (expected %s)",
                netspec_quote(kind, q, sizeof(q)), kinds);
        return -EINVAL;
    }
    cfg = calloc(1, ops->cfg_size ? ops->cfg_size : 1);
    copy = strdup(spec);
    if (!cfg || !copy) {
        net_err(err, "%s: out of memory", ops->name);
        r = -ENOMEM;
        goto err_free;
    }
    if (spec[kind_len] == ',') {
        r = netspec_parse_items(ops, cfg, copy + kind_len + 1, err);
        if (r < 0)
            goto err_free;
    }
    r = ops->parse_done(cfg, err);
    if (r < 0)
        goto err_free;
    free(copy);
    out->ops = ops;
    out->cfg = cfg;
    return 0;

err_free:
    if (cfg && ops->cfg_free)
        ops->cfg_free(cfg);
    free(cfg);
    free(copy);
    return r;
}
