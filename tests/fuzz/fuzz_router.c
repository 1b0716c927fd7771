// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Isrc -o build/fuzz_router tests/fuzz/fuzz_router.c src/daemon/net/router.c src/daemon/net/vnet.c src/daemon/net/netns.c src/daemon/net/netcmd.c src/daemon/net/dnsmasq.c src/daemon/net/portsec.c src/daemon/net/ovs.c src/daemon/net/vxlan.c src/base/fsdir.c -lgnutls
// clang-format on
/* libFuzzer target for the router's parsers and rules (src/daemon/net/router.h): the text a
 * request hands in (addresses, protocols, an external network's pool) and the nftables text
 * made from a spec built of the input's bytes. Nothing is run: router_rules_text() only
 * writes into a buffer.
 *
 * The input is split at its first two NUL bytes: a pool text, an address text, and the rest,
 * read as a spec (a count of networks, forwards and floating IPs and their fields). The
 * contract checked: every parser answers 0 or -EINVAL, a pool parsed is inside the subnet
 * and lowest first without the gateway; the rules are 0, -EINVAL or -ENOSPC, and on success a
 * NUL-terminated text of printable ASCII and newlines whose quoted words are only "ext0"
 * (nothing of the input reaches the text but numbers). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/router.h"

static const char *take(const uint8_t **p, size_t *n, char *buf, size_t cap)
{
    size_t i = 0;

    while (*n && **p && i + 1 < cap) {
        buf[i++] = (char)**p;
        (*p)++;
        (*n)--;
    }
    buf[i] = '\0';
    if (*n) {
        (*p)++;
        (*n)--;
    }
    return buf;
}

static uint32_t u32(const uint8_t **p, size_t *n)
{
    uint32_t v = 0;

    for (int i = 0; i < 4 && *n; i++, (*p)++, (*n)--)
        v = v << 8 | **p;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ids[] = {"0123456789abcdef", "fedcba9876543210", "bad id"};
    char pool[64], addr[64], err[NETCMD_ERR_LEN], out[16];
    struct router_net nets[ROUTER_NETS_MAX + 2];
    struct router_forward fwds[ROUTER_FORWARDS_MAX + 2];
    struct router_fip fips[ROUTER_FIPS_MAX + 2];
    struct router_ext ext;
    struct router_spec s = {0};
    struct vnet_subnet sn;
    uint32_t a, first, last;
    unsigned proto;
    static char text[16384];
    int r;

    take(&data, &size, pool, sizeof(pool));
    take(&data, &size, addr, sizeof(addr));
    r = router_addr_parse(addr, &a);
    if (r != 0 && r != -EINVAL)
        abort();
    if (!r) {
        router_addr_text(a, out);
        if (router_addr_parse(out, &first) || first != a)
            abort();
    }
    r = router_proto_parse(addr, &proto);
    if (r != 0 && r != -EINVAL)
        abort();
    if (vnet_subnet_parse("192.0.2.0/24", "192.0.2.1", &sn, err))
        abort();
    r = router_pool_parse(pool, &sn, &first, &last, err);
    if (r != 0 && r != -EINVAL)
        abort();
    if (!r && (first > last || (first & 0xffffff00) != sn.net || (last & 0xffffff00) != sn.net ||
               (sn.gateway >= first && sn.gateway <= last)))
        abort();

    ext = (struct router_ext){size & 1 ? "br-ext" : "", u32(&data, &size), 24, 0, size & 2};
    ext.prefix = size ? *data % 40 : 24;
    s.ext = size & 4 ? NULL : &ext;
    s.nnets = size ? data[0] % (ROUTER_NETS_MAX + 2) : 0;
    for (size_t i = 0; i < s.nnets; i++) {
        nets[i].id = ids[size % 3];
        nets[i].net = u32(&data, &size);
        nets[i].prefix = size ? *data % 40 : 24;
    }
    s.nets = nets;
    s.nfwds = size ? data[0] % (ROUTER_FORWARDS_MAX + 2) : 0;
    for (size_t i = 0; i < s.nfwds; i++) {
        fwds[i].proto = size & 8 ? 6 : size % 20;
        fwds[i].ext_port = u32(&data, &size) % 70000;
        fwds[i].ip = u32(&data, &size);
        fwds[i].port = u32(&data, &size) % 70000;
    }
    s.fwds = fwds;
    s.nfips = size ? data[0] % (ROUTER_FIPS_MAX + 2) : 0;
    for (size_t i = 0; i < s.nfips; i++) {
        fips[i].ext = u32(&data, &size);
        fips[i].ip = u32(&data, &size);
    }
    s.fips = fips;
    r = router_rules_text(&s, text, size % 2 ? sizeof(text) : 256);
    if (r != 0 && r != -EINVAL && r != -ENOSPC)
        abort();
    if (!r) {
        const char *q = text;

        if (!memchr(text, '\0', sizeof(text)))
            abort();
        for (const char *c = text; *c; c++)
            if ((*c < ' ' || *c > '~') && *c != '\n')
                abort();
        while ((q = strchr(q, '"'))) {
            if (strncmp(q, "\"ext0\"", 6))
                abort();
            q += 6;
        }
    }
    return 0;
}
