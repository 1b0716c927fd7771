/*
 * cidata: reads a cloud-init NoCloud seed (an ISO 9660 image labelled "cidata") and the three
 * files on it, for the guest agent's `seed` command (seed.c).
 *
 * Pure code over a read callback: no file system, no global state, so the same source runs
 * in the guest, in the host unit test (tests/unit/test_seed.c, also under ASan+UBSan) and in
 * a fuzz target (tests/fuzz/fuzz_cidata.c). The image is untrusted: every offset and length
 * is checked against the image and the fixed caps below before use; a bad image is an error
 * message, never a crash or a read outside the buffers.
 *
 * What it understands (docs/daemon.md, "cloud-init"):
 *   - ISO 9660 (ECMA-119) primary volume, 2048-byte blocks, files in the root directory,
 *     named by Rock Ridge NM entries (IEEE P1282, as cloud-localds and xorriso -R write
 *     them) or by their ISO 9660 name without ";1".
 *   - meta-data: instance-id, local-hostname (or hostname), public-keys.
 *   - user-data: a script ("#!..."), or "#cloud-config" with hostname (or fqdn),
 *     ssh_authorized_keys and runcmd; any other format is ignored (cd->note says so).
 *   - network-config version 2 (optionally under "network:"): the first ethernet's
 *     match.macaddress, dhcp4, addresses, gateway4 or a default route, nameservers.
 * The YAML reader takes block mappings and sequences, flow [..] and {..}, plain, single- and
 * double-quoted scalars and literal block scalars (|, |-, |+); it refuses anchors, aliases,
 * tags, folded scalars and duplicate keys with a message naming the file and line.
 */
#ifndef TESSERA_AGENT_CIDATA_H
#define TESSERA_AGENT_CIDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CIDATA_ERR_LEN  256
#define CIDATA_MAX_FILE (256u << 10) /* bytes of one seed file */
#define CIDATA_MAX_KEYS 32
#define CIDATA_MAX_DNS  3

/* Reads len bytes at off into buf; returns 0 or -errno. The caller has checked that the
 * range lies within size. */
struct cidata_src {
    int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
    void *ctx;
    uint64_t size; /* bytes in the image */
};

/* Where the root directory is, from the primary volume descriptor. */
struct cidata_iso {
    uint32_t root_lba, root_len;
};

struct cidata_net {
    bool present; /* network-config named an ethernet with dhcp4 or an address */
    bool dhcp;
    char mac[18];     /* "" or lower-case aa:bb:cc:dd:ee:ff */
    char address[19]; /* "" or "A.B.C.D/N" */
    char gateway[16]; /* "" or "A.B.C.D" */
    char dns[CIDATA_MAX_DNS][16];
    unsigned n_dns;
};

struct cidata {
    char instance_id[129];
    char hostname[64]; /* "" or the host name to set: the first label of the name given */
    char *keys;        /* authorized_keys text, one checked key a line; NULL when none */
    size_t keys_len;
    unsigned n_keys;
    char *script; /* the user-data program to run once (starts with "#!"), or NULL */
    size_t script_len;
    struct cidata_net net;
    char note[160]; /* "" or one line about user data that was ignored */
};

/* Reads the volume descriptors: 0 when src holds an ISO 9660 volume labelled cidata (either
 * case), -ENOENT when it is not ISO 9660 or has another label (err is not set), -EINVAL when
 * the descriptor is malformed, or the read callback's -errno. */
int cidata_iso_open(const struct cidata_src *src, struct cidata_iso *iso, char *err);

/* Reads the root directory's file `name` into a new NUL-terminated buffer (*data, *len; the
 * caller frees it). -ENOENT when there is none, -EFBIG past CIDATA_MAX_FILE, -EINVAL for a
 * malformed directory. */
int cidata_iso_read(const struct cidata_src *src, const struct cidata_iso *iso, const char *name,
                    char **data, size_t *len, char *err);

/* Parses the three files (user and net may be NULL: absent) into cd, which it zeroes first.
 * Returns 0, -EINVAL with err naming the file, line and what was wrong, or -ENOMEM. On
 * success the caller releases cd with cidata_free(); on failure nothing is left to free. */
int cidata_parse(struct cidata *cd, const char *meta, size_t meta_len, const char *user,
                 size_t user_len, const char *net, size_t net_len, char *err);

/* cidata_iso_open + reading meta-data (required), user-data (required by NoCloud, may be
 * empty) and network-config (optional) + cidata_parse. */
int cidata_load(const struct cidata_src *src, struct cidata *cd, char *err);

void cidata_free(struct cidata *cd);

#endif
