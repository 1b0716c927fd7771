// clang-format off
// build: clang -std=c17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc src/daemon/net/secgroup.c src/daemon/net/netcmd.c tests/fuzz/fuzz_secgroup.c -o build/fuzz_secgroup
// run:   build/fuzz_secgroup -max_total_time=60 [corpus-dir]
// clang-format on
/* libFuzzer target for the security-group rule parser (daemon/net/secgroup.h), which reads
 * API requests: the input is up to four NUL-separated texts (direction, protocol, ports,
 * peer; a missing one is NULL). A rule it takes must come back the same from its own
 * canonical text, and render into a table whose text holds no group name and no quoted
 * string but the tap's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/net/secgroup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *text, err[NETCMD_ERR_LEN];
    char ports[SECGROUP_PORTS_LEN], peer[SECGROUP_PEER_LEN];
    const char *f[4] = {NULL, NULL, NULL, NULL};
    struct secgroup_rule r, again;
    size_t n = 0, at = 0;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    while (n < 4 && at <= size) {
        f[n++] = buf + at;
        at += strlen(buf + at) + 1;
    }
    if (secgroup_rule_parse(f[0], f[1], f[2], f[3], &r, err) == 0) {
        secgroup_rule_text(&r, ports, peer);
        if (secgroup_rule_parse(f[0], f[1], ports[0] ? ports : NULL, peer, &again, err) ||
            memcmp(&r, &again, sizeof(r)))
            abort();
        struct secgroup_group g = {"fuzzgroupname", &r, 1};
        struct secgroup_nic nic = {"tsrfuzz0", "10.0.0.2", {"fuzzgroupname"}, 1};

        if (secgroup_render(&g, 1, &nic, 1, &text, err) == 0) {
            /* No name, and no quote but those around the tap's name. */
            if (strstr(text, "fuzzgroupname") || strchr(text, '"') != strstr(text, "\"tsrfuzz0\""))
                abort();
            free(text);
        }
    }
    free(buf);
    return 0;
}
