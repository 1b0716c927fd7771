/* mkseed: seed_build() (src/daemon/seed.h) from the command line, for tests/guest/test_seed.py.
 * Built by the test itself:  cc -std=c17 -D_GNU_SOURCE -Isrc -o build/tests/mkseed
 *                               tests/guest/mkseed.c src/daemon/seed.c -ljansson
 *
 *   mkseed OUT --id ID --hostname NAME [--key LINE]... [--user-data FILE]
 *          [--net dhcp|static] [--mac MAC] [--address A/N] [--gateway G] [--dns D]...
 *
 * Exits 0, or 1 with seed_build()'s message on stderr, 2 for a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/seed.h"

static int usage(void)
{
    fprintf(stderr, "usage: mkseed OUT --id ID --hostname NAME [--key LINE]... "
                    "[--user-data FILE] [--net dhcp|static] [--mac MAC] [--address A/N] "
                    "[--gateway G] [--dns D]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *keys[SEED_MAX_KEYS + 1], *dns[SEED_MAX_DNS + 1];
    static uint8_t data[SEED_MAX_USER_DATA + 1];
    struct seed_spec spec = {.ssh_keys = keys, .dns = dns};
    char err[SEED_ERR_LEN];

    if (argc < 2)
        return usage();
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage();
        i++;
        if (strcmp(opt, "--id") == 0) {
            spec.instance_id = val;
        } else if (strcmp(opt, "--hostname") == 0) {
            spec.hostname = val;
        } else if (strcmp(opt, "--key") == 0 && spec.n_ssh_keys <= SEED_MAX_KEYS) {
            keys[spec.n_ssh_keys++] = val;
        } else if (strcmp(opt, "--dns") == 0 && spec.n_dns <= SEED_MAX_DNS) {
            dns[spec.n_dns++] = val;
        } else if (strcmp(opt, "--user-data") == 0) {
            FILE *f = fopen(val, "rb");
            if (!f) {
                perror(val);
                return 1;
            }
            spec.user_data_len = fread(data, 1, sizeof(data), f);
            spec.user_data = data;
            fclose(f);
        } else if (strcmp(opt, "--net") == 0) {
            spec.net_mode = strcmp(val, "dhcp") == 0     ? SEED_NET_DHCP
                            : strcmp(val, "static") == 0 ? SEED_NET_STATIC
                                                         : (enum seed_net_mode)99;
        } else if (strcmp(opt, "--mac") == 0) {
            spec.mac = val;
        } else if (strcmp(opt, "--address") == 0) {
            spec.address = val;
        } else if (strcmp(opt, "--gateway") == 0) {
            spec.gateway = val;
        } else {
            return usage();
        }
    }
    if (seed_build(&spec, argv[1], err) < 0) {
        fprintf(stderr, "mkseed: %s\n", err);
        return 1;
    }
    return 0;
}
