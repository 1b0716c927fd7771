// clang-format off
// build: clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Isrc $(pkg-config --cflags slirp) -o build/fuzz_netspec tests/fuzz/fuzz_netspec.c src/net/netspec.c src/net/net.c src/net/user.c src/net/tap.c src/net/socket.c src/net/fdnet.c src/net/vhdr.c src/base/loop.c src/base/log.c $(pkg-config --libs slirp) -pthread
// clang-format on
/* libFuzzer target for the network spec parser (src/net/netspec.c and the backends'
 * parse_key/parse_done hooks). Build and run from the repository root:
 *
 *   mkdir -p build/fuzz && clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=all -std=c17 -D_GNU_SOURCE -Isrc $(pkg-config --cflags slirp) \
 *       -o build/fuzz/fuzz_netspec tests/fuzz/fuzz_netspec.c src/net/netspec.c src/net/net.c \
 *       src/net/user.c src/net/tap.c src/net/socket.c src/net/fdnet.c src/base/loop.c \
 *       src/base/log.c $(pkg-config --libs slirp) -pthread
 *   mkdir -p build/fuzz/netspec-corpus
 *   build/fuzz/fuzz_netspec -max_total_time=60 -max_len=4200 build/fuzz/netspec-corpus
 *
 * Seeds are not required (the dictionary below is built in through -dict if wanted:
 * `user` `tap` `socket` `hostfwd=` `tcp:` `udp:` `ifname=` `fd=` `connect=` `listen=`
 * `udp=` `localaddr=` `[::1]` `127.0.0.1` `-:` `,`).
 *
 * Besides memory and UB errors it checks the parser's contract: the result is 0 or -EINVAL
 * (-ENOMEM aside); on success the error line is empty and the spec has a backend and a
 * config; on failure the error is one non-empty line of printable ASCII that fits
 * NET_ERR_LEN, because error lines are printed to terminals and logs and the input is not
 * trusted. The parser does no I/O, so nothing is opened. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "net/netspec.h"

static void check_error_line(const char *err)
{
    size_t n = strnlen(err, NET_ERR_LEN);

    if (n == 0 || n == NET_ERR_LEN)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)err[i];

        if (c < 0x20 || c >= 0x7f)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NET_ERR_LEN];
    struct net_spec spec;
    char *s;
    int r;

    /* Longer than the limit is allowed in: the limit itself is under test. */
    if (size > NET_SPEC_MAX + 64)
        size = NET_SPEC_MAX + 64;
    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    memset(err, 'X', sizeof(err));
    r = netspec_parse(s, &spec, err);
    if (r == 0) {
        if (err[0] != '\0' || !spec.ops || !spec.cfg)
            abort();
        netspec_free(&spec);
    } else if (r == -EINVAL) {
        check_error_line(err);
        if (spec.ops || spec.cfg)
            abort();
    } else if (r != -ENOMEM) {
        abort();
    }

    /* The helpers backends share, on the same bytes. */
    {
        char host[NETSPEC_HOST_MAX], q[64];
        uint16_t port;
        unsigned long v;

        if (netspec_parse_hostport(s, host, &port) == 0 &&
            (port == 0 || strnlen(host, NETSPEC_HOST_MAX) == NETSPEC_HOST_MAX))
            abort();
        if (netspec_parse_port(s, &port) == 0 && port == 0)
            abort();
        if (netspec_parse_uint(s, 1000, &v) == 0 && v > 1000)
            abort();
        netspec_quote(s, q, sizeof(q));
        if (strlen(q) > 51)
            abort();
    }
    free(s);
    return 0;
}
