/* The cloud-init NoCloud seed disk of a VM (docs/daemon.md, "cloud-init").
 *
 * seed_build() writes an ISO 9660 image whose volume id is "cidata", holding the three files
 * the NoCloud data source reads (cloud-init docs, datasources/nocloud):
 *   meta-data       instance-id, local-hostname and public-keys (YAML);
 *   user-data       the user's data as given when it starts with "#!" (a script) or
 *                   "#cloud-config"; otherwise a "#cloud-config" document with hostname,
 *                   ssh_authorized_keys and, when the user gave text, that text as the one
 *                   runcmd entry (cloud-init runs it with sh once per instance);
 *   network-config  network config version 2 for one ethernet: DHCP, or a static address,
 *                   default route and name servers. Left out when no network mode is given,
 *                   so the guest keeps its own default (DHCP in both shipped templates).
 * Hostname and keys are always in meta-data too, so a script or a cloud-config of the user's
 * own still gets them (NoCloud honours local-hostname and public-keys).
 *
 * Every string is validated first and written as a YAML double-quoted scalar with every
 * character outside YAML's printable set escaped, so no value can add a key, end a document
 * or change another value; what YAML cannot carry (text that is not UTF-8) is refused.
 *
 * The image is made by xorriso (`xorriso -as mkisofs -V cidata -J -R`, as cloud-localds
 * does), run with posix_spawn (no shell) on files staged in a private 0700 directory made
 * beside out_path; the result is renamed onto out_path only when complete, so out_path is
 * either the old file or the whole new image (mode 0600: user-data may hold secrets).
 *
 * Thread-safe (no global state; posix_spawn is safe in a threaded daemon). Blocks for the
 * run of xorriso: 10-20 ms of CPU, but 130-660 ms of wall time measured on a 2-core host at
 * load 11 (tests/guest/mkseed, 6 runs), mostly xorriso's start. Call it off any event loop
 * thread, and where a request has a latency budget, in the operation that follows it.
 */
#ifndef TESSERA_DAEMON_SEED_H
#define TESSERA_DAEMON_SEED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SEED_ERR_LEN       256
#define SEED_MAX_KEYS      32
#define SEED_MAX_KEY_LEN   8192        /* one authorized_keys line, bytes */
#define SEED_MAX_USER_DATA (64u << 10) /* bytes */
#define SEED_MAX_DNS       3           /* resolv.conf(5) uses three */
#define SEED_MAX_ID_LEN    128         /* instance_id, bytes */

enum seed_net_mode {
    SEED_NET_NONE,   /* no network-config file */
    SEED_NET_DHCP,   /* DHCPv4 */
    SEED_NET_STATIC, /* address (+ gateway, dns) */
};

/* What the VM gets. The caller owns every pointer; seed_build() only reads them. Field names
 * in error messages are the REST API's (cloud_init.hostname, cloud_init.ssh_keys[2], ...). */
struct seed_spec {
    const char *instance_id;     /* required: 1..SEED_MAX_ID_LEN printable UTF-8, e.g. a VM id */
    const char *hostname;        /* required: RFC 1123 name, labels 1..63, at most 253 */
    const char *const *ssh_keys; /* n_ssh_keys authorized_keys lines: "TYPE BASE64 [COMMENT]" */
    size_t n_ssh_keys;
    const uint8_t *user_data; /* user_data_len bytes, may hold any byte; NULL when 0 */
    size_t user_data_len;
    enum seed_net_mode net_mode;
    const char *mac;        /* optional (NULL): the NIC to configure, "52:54:00:12:34:56" */
    const char *address;    /* SEED_NET_STATIC: "10.0.2.15/24" (IPv4, prefix 1..32) */
    const char *gateway;    /* optional: IPv4 default route, inside address's network */
    const char *const *dns; /* n_dns IPv4 name servers */
    size_t n_dns;
};

/* A spec read from the REST API's `cloud_init` object, with the arrays it points into. */
struct seed_json {
    struct seed_spec spec;
    const char *keys[SEED_MAX_KEYS];
    const char *dns[SEED_MAX_DNS];
};

/* Fills out from obj, the `cloud_init` object of POST /vms: {hostname, ssh_keys: [..],
 * user_data, network: {mode: dhcp|static, address, gateway, dns: [..], mac}}; every member is
 * optional, an unknown one or a wrong type is refused. hostname defaults to default_hostname
 * (the VM's name). The strings stay owned by obj and instance_id: out is valid while they
 * live. Then runs seed_check(). Returns 0, or -EINVAL with err starting with the field
 * ("cloud_init.network.dns[1]: ..."), so that api.c can put the part before ':' in the
 * error's "field". */
int seed_spec_from_json(const json_t *obj, const char *instance_id, const char *default_hostname,
                        struct seed_json *out, char *err);

/* Checks every field of spec; nothing is written. Returns 0, or -EINVAL with err
 * (SEED_ERR_LEN bytes) naming the field and what it must be. */
int seed_check(const struct seed_spec *spec, char *err);

/* seed_check(), then writes the seed image to out_path (replacing it atomically). Returns 0;
 * -EINVAL for a bad spec; -ENOENT when xorriso is not installed; -EIO when it fails; another
 * -errno from the file system. err (SEED_ERR_LEN bytes) says what and where. */
int seed_build(const struct seed_spec *spec, const char *out_path, char *err);

#endif
