/* The network spec parser: "kind,key=value,..." into a backend's configuration, without
 * opening anything. Outside input (command line, API, config file), so it is fuzzed
 * (tests/fuzz/fuzz_netspec.c) and every error is one line naming the key, with the offending
 * text quoted (non-printable bytes shown as '?', long values cut with "...").
 *
 * Grammar: the kind, then zero or more ",key=value" items. Keys are case-sensitive. A value
 * runs to the next ',' (there is no escaping: no value needs a comma). Pure functions, any
 * thread. */
#ifndef TESSERA_NET_NETSPEC_H
#define TESSERA_NET_NETSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_backend_ops;

#define NETSPEC_HOST_MAX 256 /* HOST of HOST:PORT, with its NUL */

struct net_spec {
    const struct net_backend_ops *ops;
    void *cfg; /* ops->cfg_size bytes, the backend's parsed configuration */
};

/* Parses spec. Returns 0 and *out (free it with netspec_free()), or -EINVAL (-ENOMEM) with
 * one line in err (NET_ERR_LEN bytes). */
int netspec_parse(const char *spec, struct net_spec *out, char *err);

/* Frees what netspec_parse() allocated; the struct may be zeroed or parsed. */
void netspec_free(struct net_spec *spec);

/* Helpers for the backends' parse_key() hooks. */

/* A TCP/UDP port: decimal digits only, 1..65535. Returns 0 or -EINVAL. */
int netspec_parse_port(const char *s, uint16_t *out);

/* A decimal number without sign or spaces, at most max. Returns 0 or -EINVAL. */
int netspec_parse_uint(const char *s, unsigned long max, unsigned long *out);

/* HOST:PORT where HOST is empty, a DNS name or IPv4 address (letters, digits, '-', '.', '_'),
 * or an IPv6 address in brackets ("[::1]:80"; host[] gets it without brackets). Returns 0 or
 * -EINVAL. */
int netspec_parse_hostport(const char *s, char host[NETSPEC_HOST_MAX], uint16_t *port);

/* Copies at most 48 bytes of s into buf (size n >= 52) for an error message: non-printable
 * bytes become '?', a longer s ends in "...". Returns buf. */
const char *netspec_quote(const char *s, char *buf, size_t n);

#endif
