/* router.h: namespaces and veths with iproute2, the rules with `nft -f`. */
#include "daemon/net/router.h"

#include "base/fsdir.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUTER_RULES_MAX (64 * 1024)
#define ROUTER_TABLE     "tessera_router"

/* ---- Parsers ---- */

int router_addr_parse(const char *s, uint32_t *out)
{
    struct in_addr a;

    /* inet_pton takes exactly four decimal octets: no octal, no short forms, no trailing. */
    if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

void router_addr_text(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int router_proto_parse(const char *s, unsigned *out)
{
    if (s && !strcmp(s, "tcp"))
        *out = 6;
    else if (s && !strcmp(s, "udp"))
        *out = 17;
    else
        return -EINVAL;
    return 0;
}

static uint32_t router_mask(unsigned prefix)
{
    return prefix ? ~0u << (32 - prefix) : 0;
}

bool router_subnets_overlap(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
    uint32_t m = router_mask(pa < pb ? pa : pb);

    return (a & m) == (b & m);
}

int router_pool_parse(const char *text, const struct vnet_subnet *sn, uint32_t *first,
                      uint32_t *last, char *err)
{
    char a[16], b[16];
    const char *dash = text ? strchr(text, '-') : NULL;
    uint32_t m = router_mask(sn->prefix), bcast = sn->net | ~m;
    size_t n = dash ? (size_t)(dash - text) : 0;

    if (!dash || n >= sizeof(a) || strlen(dash + 1) >= sizeof(b))
        goto bad;
    memcpy(a, text, n);
    a[n] = '\0';
    snprintf(b, sizeof(b), "%s", dash + 1);
    if (router_addr_parse(a, first) || router_addr_parse(b, last))
        goto bad;
    if (*first > *last || (*first & m) != sn->net || (*last & m) != sn->net || *first == sn->net ||
        *last == bcast) {
        snprintf(err, NETCMD_ERR_LEN,
                 "pool: %.40s is not a range of host addresses of the subnet, lowest first", text);
        return -EINVAL;
    }
    if (sn->gateway >= *first && sn->gateway <= *last) {
        snprintf(err, NETCMD_ERR_LEN, "pool: %.40s holds the gateway", text);
        return -EINVAL;
    }
    return 0;
bad:
    snprintf(err, NETCMD_ERR_LEN, "pool: expected FIRST-LAST (e.g. 192.0.2.10-192.0.2.99)");
    return -EINVAL;
}

/* ---- Names ---- */

void router_names(const char *state_dir, const char *tenant, const char *name,
                  struct router_names *out)
{
    vnet_hash_id(state_dir, "rtr", tenant, name, out->id);
    snprintf(out->ns, sizeof(out->ns), ROUTER_NS_PREFIX "%s", out->id);
    snprintf(out->ext_host, sizeof(out->ext_host), ROUTER_EXT_PREFIX "%.11s", out->id);
    snprintf(out->dir, sizeof(out->dir), "%.3000s/routers/%s", state_dir, out->id);
}

static bool router_is_id(const char *s)
{
    return s && strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* A host bridge's name as ip(8) will see it: one word of safe characters. */
static bool router_ifname_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n < IFNAMSIZ && s[0] != '-' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* ---- The rules ---- */

struct router_buf {
    char *p;
    size_t len, n;
    bool full;
};

static void router_put(struct router_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void router_put(struct router_buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (b->full)
        return;
    va_start(ap, fmt);
    r = vsnprintf(b->p + b->n, b->len - b->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= b->len - b->n)
        b->full = true;
    else
        b->n += (size_t)r;
}

/* "{ 10.0.0.0/24, 10.1.0.0/24 }" of the attached subnets (nnets > 0). */
static void router_put_subnets(struct router_buf *b, const struct router_spec *s)
{
    char a[16];

    router_put(b, "{ ");
    for (size_t i = 0; i < s->nnets; i++) {
        router_addr_text(s->nets[i].net, a);
        router_put(b, "%s%s/%u", i ? ", " : "", a, s->nets[i].prefix);
    }
    router_put(b, " }");
}

static bool router_inside(const struct router_spec *s, uint32_t ip)
{
    for (size_t i = 0; i < s->nnets; i++)
        if (router_subnets_overlap(s->nets[i].net, s->nets[i].prefix, ip, 32))
            return true;
    return false;
}

static int router_spec_check(const struct router_spec *s)
{
    if (s->nnets > ROUTER_NETS_MAX || s->nfwds > ROUTER_FORWARDS_MAX || s->nfips > ROUTER_FIPS_MAX)
        return -EINVAL;
    if ((s->nfwds || s->nfips) && !s->ext)
        return -EINVAL;
    if (s->ext && (!router_ifname_ok(s->ext->bridge) || s->ext->prefix < 8 || s->ext->prefix > 30))
        return -EINVAL;
    for (size_t i = 0; i < s->nnets; i++)
        if (!router_is_id(s->nets[i].id) || s->nets[i].prefix < 8 || s->nets[i].prefix > 30)
            return -EINVAL;
    for (size_t i = 0; i < s->nfwds; i++) {
        const struct router_forward *f = &s->fwds[i];

        if ((f->proto != 6 && f->proto != 17) || f->ext_port < 1 || f->ext_port > 65535 ||
            f->port < 1 || f->port > 65535 || !router_inside(s, f->ip))
            return -EINVAL;
    }
    for (size_t i = 0; i < s->nfips; i++)
        if (!router_inside(s, s->fips[i].ip))
            return -EINVAL;
    return 0;
}

int router_rules_text(const struct router_spec *s, char *buf, size_t len)
{
    struct router_buf b = {buf, len, 0, len == 0};
    char ext[16], a[16], c[16];
    size_t i;

    if (router_spec_check(s))
        return -EINVAL;
    if (s->ext)
        router_addr_text(s->ext->addr, ext);
    /* "table" then "delete table": the delete never fails, whether the table existed or not,
     * and the new table follows in the same transaction. */
    router_put(&b, "table ip " ROUTER_TABLE "\n"
                   "delete table ip " ROUTER_TABLE "\n"
                   "table ip " ROUTER_TABLE " {\n");
    router_put(&b, "    chain nat_in {\n"
                   "        type nat hook prerouting priority dstnat; policy accept;\n");
    for (i = 0; i < s->nfwds; i++) {
        router_addr_text(s->fwds[i].ip, a);
        router_put(
            &b, "        iifname \"" ROUTER_EXT_IF "\" ip daddr %s %s dport %u dnat to %s:%u\n",
            ext, s->fwds[i].proto == 6 ? "tcp" : "udp", s->fwds[i].ext_port, a, s->fwds[i].port);
    }
    for (i = 0; i < s->nfips; i++) {
        router_addr_text(s->fips[i].ext, c);
        router_addr_text(s->fips[i].ip, a);
        router_put(&b, "        iifname \"" ROUTER_EXT_IF "\" ip daddr %s dnat to %s\n", c, a);
    }
    router_put(&b, "    }\n"
                   "    chain nat_out {\n"
                   "        type nat hook postrouting priority srcnat; policy accept;\n");
    /* Floating addresses first: their VMs go out as themselves, not as the router. */
    for (i = 0; i < s->nfips; i++) {
        router_addr_text(s->fips[i].ext, c);
        router_addr_text(s->fips[i].ip, a);
        router_put(&b, "        oifname \"" ROUTER_EXT_IF "\" ip saddr %s snat to %s\n", a, c);
    }
    if (s->ext && s->ext->snat && s->nnets) {
        router_put(&b, "        oifname \"" ROUTER_EXT_IF "\" ip saddr ");
        router_put_subnets(&b, s);
        router_put(&b, " snat to %s\n", ext);
    }
    /* Forwarding: replies, what a forward or a floating address let in (conntrack marks the
     * connection as DNATed), between the router's own networks, and out to the external
     * network only what leaves with an address of the router's (never a tenant's private
     * address on the shared external segment). */
    router_put(&b, "    }\n"
                   "    chain filter_fwd {\n"
                   "        type filter hook forward priority filter; policy drop;\n"
                   "        ct state established,related accept\n"
                   "        ct status dnat accept\n"
                   "        iifname != \"" ROUTER_EXT_IF "\" oifname != \"" ROUTER_EXT_IF
                   "\" accept\n");
    for (i = 0; i < s->nfips; i++) {
        router_addr_text(s->fips[i].ip, a);
        router_put(&b, "        oifname \"" ROUTER_EXT_IF "\" ip saddr %s accept\n", a);
    }
    if (s->ext && s->ext->snat && s->nnets) {
        router_put(&b, "        oifname \"" ROUTER_EXT_IF "\" ip saddr ");
        router_put_subnets(&b, s);
        router_put(&b, " accept\n");
    }
    router_put(&b, "    }\n}\n");
    return b.full ? -ENOSPC : 0;
}

/* ---- The host side ---- */

static int router_mkdir(const char *path, char *err)
{
    if (mkdir(path, 0700) && errno != EEXIST) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(errno));
        return -errno;
    }
    return 0;
}

/* Whether dev exists in ns (NULL: the host's namespace). */
static bool router_has_link(const char *ns, const char *dev)
{
    const char *there[] = {"ip", "-n", ns, "link", "show", "dev", dev, NULL};
    const char *host[] = {"ip", "link", "show", "dev", dev, NULL};
    char err[NETCMD_ERR_LEN];

    return !netcmd_run(ns ? there : host, err);
}

static int router_sysctl_forward(const char *ns, char *err)
{
    const char *argv[] = {"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                          NULL};

    return netcmd_run(argv, err);
}

/* The record of what the router was last told to hold (DIR/applied: lines "net ID" and
 * "fip A.B.C.D"): what a later change must take away. Written as the union before a change
 * and as the new set after it, so a daemon killed in between still knows every leftover. */
struct router_applied {
    char nets[2 * ROUTER_NETS_MAX][VNET_ID_LEN];
    size_t nnets;
    uint32_t fips[2 * ROUTER_FIPS_MAX];
    size_t nfips;
};

static void router_applied_read(const char *dir, struct router_applied *ap)
{
    char path[PATH_MAX], line[64], word[8], arg[32];
    uint32_t a;
    FILE *f;
    int fd;

    memset(ap, 0, sizeof(*ap));
    snprintf(path, sizeof(path), "%.4000s/applied", dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%7s %31s", word, arg) != 2)
            continue;
        if (!strcmp(word, "net") && router_is_id(arg) &&
            ap->nnets < sizeof(ap->nets) / sizeof(ap->nets[0]))
            snprintf(ap->nets[ap->nnets++], VNET_ID_LEN, "%.16s", arg);
        else if (!strcmp(word, "fip") && !router_addr_parse(arg, &a) &&
                 ap->nfips < sizeof(ap->fips) / sizeof(ap->fips[0]))
            ap->fips[ap->nfips++] = a;
    }
    fclose(f);
}

static int router_applied_write(const char *dir, const struct router_applied *old,
                                const struct router_spec *s, char *err)
{
    char path[PATH_MAX], tmp[PATH_MAX], a[16];
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "%.4000s/applied", dir);
    snprintf(tmp, sizeof(tmp), "%.4000s/applied.tmp", dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    for (size_t i = 0; old && i < old->nnets; i++)
        fprintf(f, "net %s\n", old->nets[i]);
    for (size_t i = 0; old && i < old->nfips; i++) {
        router_addr_text(old->fips[i], a);
        fprintf(f, "fip %s\n", a);
    }
    for (size_t i = 0; i < s->nnets; i++)
        fprintf(f, "net %s\n", s->nets[i].id);
    for (size_t i = 0; i < s->nfips; i++) {
        router_addr_text(s->fips[i].ext, a);
        fprintf(f, "fip %s\n", a);
    }
    if (fclose(f) || rename(tmp, path))
        goto fail;
    return 0;
fail:
    snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(errno));
    return -EIO;
}

void router_net_leg(const char *rid, char out[IFNAMSIZ])
{
    snprintf(out, IFNAMSIZ, "r%.12s", rid);
}

static void router_leg_names(const char *rid, const char *nid, char rleg[IFNAMSIZ],
                             char nleg[IFNAMSIZ], char nns[NETNS_NAME_MAX])
{
    snprintf(rleg, IFNAMSIZ, "n%.12s", nid);
    router_net_leg(rid, nleg);
    snprintf(nns, NETNS_NAME_MAX, VNET_NS_PREFIX "%.16s", nid);
}

/* Runs lines (ip(8) commands without the "ip", one a line) in namespace ns as one
 * `ip -n NS -batch DIR/NAME`: one program for many changes, each applied in order. */
static int router_batch(const char *ns, const char *dir, const char *name, const char *lines,
                        char *err)
{
    char path[PATH_MAX];
    const char *argv[] = {"ip", "-n", ns, "-batch", path, NULL};
    size_t len = strlen(lines);
    ssize_t w = -1;
    int fd;

    snprintf(path, sizeof(path), "%.4000s/%.32s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        w = write(fd, lines, len);
    if (fd < 0 || w != (ssize_t)len || close(fd)) {
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", path, strerror(errno));
        if (fd >= 0 && w != (ssize_t)len)
            close(fd);
        return -EIO;
    }
    return netcmd_run(argv, err);
}

/* A fixed MAC for one end of a veth: the locally administered prefix (first octet `kind`: 0a
 * the router's external end, 0e a leg's router end, 12 a leg's network end) and 10 hex digits
 * of an id. A veth made again after a crash or a repair keeps its MAC, so neighbours' ARP
 * caches (the outside's, the network's) stay right instead of pointing at a MAC that is gone
 * until they time out. */
static void router_mac(unsigned kind, const char *id, char out[18])
{
    snprintf(out, 18, "%02x:%.2s:%.2s:%.2s:%.2s:%.2s", kind, id, id + 2, id + 4, id + 6, id + 8);
}

/* The leg to network n: the veth pair, and in the network's namespace forwarding, the
 * transit address and the default route through the router. The router's side of it goes
 * into rb (its batch). */
static int router_leg_up(const struct router_names *rn, const struct router_net *n,
                         struct router_buf *rb, char *err)
{
    char rleg[IFNAMSIZ], nleg[IFNAMSIZ], nns[NETNS_NAME_MAX], a[16], lines[512];
    char rmac[18], nmac[18];
    const char *add[] = {"ip",   "-n",   rn->ns, "link", "add",     rleg, "address", rmac, "type",
                         "veth", "peer", "name", nleg,   "address", nmac, "netns",   nns,  NULL};
    const char *stale[] = {"ip", "-n", nns, "link", "delete", "dev", nleg, NULL};
    int ret = 0;

    router_leg_names(rn->id, n->id, rleg, nleg, nns);
    router_mac(0x0e, n->id, rmac);
    router_mac(0x12, rn->id, nmac);
    if (!netns_exists(nns)) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: network %s is not up", rn->id, n->id);
        return -ENOENT;
    }
    if (!router_has_link(rn->ns, rleg)) {
        /* A leftover end in the network (from a half-made add) would block the add. */
        if (router_has_link(nns, nleg))
            ret = netcmd_run(stale, err);
        if (!ret)
            ret = netcmd_run(add, err);
    }
    if (!ret)
        ret = router_sysctl_forward(nns, err);
    /* Up before the onlink route: the kernel takes no route through a device that is down. */
    snprintf(lines, sizeof(lines),
             "addr replace " ROUTER_TRANSIT_NETWORK "/32 dev %s\n"
             "link set %s up\n"
             "route replace default via " ROUTER_TRANSIT_ROUTER " dev %s onlink\n",
             nleg, nleg, nleg);
    if (!ret)
        ret = router_batch(nns, rn->dir, "leg.ip", lines, err);
    router_addr_text(n->net, a);
    router_put(rb,
               "addr replace " ROUTER_TRANSIT_ROUTER "/32 dev %s\n"
               "link set %s up\n"
               "route replace %s/%u via " ROUTER_TRANSIT_NETWORK " dev %s onlink\n",
               rleg, rleg, a, n->prefix, rleg);
    return ret;
}

/* The external leg: the veth pair and its host end on the bridge; the addresses and the
 * default route go into rb. */
static int router_ext_up(const struct router_names *rn, const struct router_spec *s,
                         struct router_buf *rb, char *err)
{
    char a[16];
    const char *bridge = s->ext->bridge;
    char mac[18];
    const char *add[] = {"ip",   "link",        "add",     rn->ext_host, "type",  "veth", "peer",
                         "name", ROUTER_EXT_IF, "address", mac,          "netns", rn->ns, NULL};
    const char *stale[] = {"ip", "link", "delete", "dev", rn->ext_host, NULL};
    const char *master[] = {"ip", "link", "set", "dev", rn->ext_host, "master", bridge, "up", NULL};
    int ret = 0;

    router_mac(0x0a, rn->id, mac);
    if (!router_has_link(NULL, bridge)) {
        snprintf(err, NETCMD_ERR_LEN, "external network: the host has no bridge '%s'", bridge);
        return -ENOENT;
    }
    if (!router_has_link(rn->ns, ROUTER_EXT_IF)) {
        if (router_has_link(NULL, rn->ext_host))
            ret = netcmd_run(stale, err);
        if (!ret)
            ret = netcmd_run(add, err);
    }
    if (!ret)
        ret = netcmd_run(master, err);
    router_addr_text(s->ext->addr, a);
    router_put(rb, "link set " ROUTER_EXT_IF " up\naddr replace %s/%u dev " ROUTER_EXT_IF "\n", a,
               s->ext->prefix);
    for (size_t i = 0; i < s->nfips; i++) {
        router_addr_text(s->fips[i].ext, a);
        router_put(rb, "addr replace %s/32 dev " ROUTER_EXT_IF "\n", a);
    }
    router_addr_text(s->ext->gateway, a);
    router_put(rb, "route replace default via %s dev " ROUTER_EXT_IF "\n", a);
    return ret;
}

/* Takes away what old held and s does not: legs of detached networks, dropped floating
 * addresses. What is gone already is no error. */
static void router_prune(const struct router_names *rn, const struct router_applied *old,
                         const struct router_spec *s)
{
    char rleg[IFNAMSIZ], nleg[IFNAMSIZ], nns[NETNS_NAME_MAX], cidr[24], a[16], err[NETCMD_ERR_LEN];
    const char *del[] = {"ip", "-n", rn->ns, "link", "delete", "dev", rleg, NULL};
    const char *deladdr[] = {"ip", "-n",  rn->ns,        "addr", "delete",
                             cidr, "dev", ROUTER_EXT_IF, NULL};
    size_t i, j;

    for (i = 0; i < old->nnets; i++) {
        for (j = 0; j < s->nnets && strcmp(s->nets[j].id, old->nets[i]); j++)
            ;
        router_leg_names(rn->id, old->nets[i], rleg, nleg, nns);
        if (j == s->nnets && router_has_link(rn->ns, rleg))
            netcmd_run(del, err);
    }
    for (i = 0; i < old->nfips; i++) {
        for (j = 0; j < s->nfips && s->fips[j].ext != old->fips[i]; j++)
            ;
        router_addr_text(old->fips[i], a);
        snprintf(cidr, sizeof(cidr), "%s/32", a);
        if (j == s->nfips && (!s->ext || s->ext->addr != old->fips[i]))
            netcmd_run(deladdr, err);
    }
}

static int router_rules_apply(const struct router_names *rn, const struct router_spec *s, char *err)
{
    char path[PATH_MAX];
    char *text = malloc(ROUTER_RULES_MAX);
    int ret;

    if (!text) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: out of memory", rn->id);
        return -ENOMEM;
    }
    ret = router_rules_text(s, text, ROUTER_RULES_MAX);
    if (ret) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: its rules are malformed", rn->id);
        goto free_text;
    }
    snprintf(path, sizeof(path), "%.4000s/rules.nft", rn->dir);
    ret = netcmd_nft_apply(rn->ns, path, text, err);
free_text:
    free(text);
    return ret;
}

int router_up(const char *state_dir, const char *tenant, const char *name,
              const struct router_spec *s, char *err)
{
    const char *del_ext[] = {"ip", "-n", NULL, "link", "delete", "dev", ROUTER_EXT_IF, NULL};
    const char *add[] = {"ip", "netns", "add", NULL, NULL};
    struct router_applied *old = malloc(sizeof(*old));
    char batch[8192];
    struct router_buf rb = {batch, sizeof(batch), 0, false};
    struct router_names rn;
    char top[PATH_MAX];
    int ret;

    router_names(state_dir, tenant, name, &rn);
    if (!old) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: out of memory", name);
        return -ENOMEM;
    }
    if (router_spec_check(s)) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: its description is malformed", name);
        ret = -EINVAL;
        goto free_old;
    }
    snprintf(top, sizeof(top), "%.3000s/routers", state_dir);
    ret = router_mkdir(top, err);
    if (!ret)
        ret = router_mkdir(rn.dir, err);
    if (ret)
        goto free_old;
    router_applied_read(rn.dir, old);
    ret = router_applied_write(rn.dir, old, s, err);
    if (ret)
        goto free_old;
    add[3] = rn.ns;
    batch[0] = '\0';
    if (!netns_exists(rn.ns))
        ret = netcmd_run(add, err);
    if (!ret)
        ret = router_sysctl_forward(rn.ns, err);
    if (ret)
        goto free_old;
    router_prune(&rn, old, s);
    del_ext[2] = rn.ns;
    router_put(&rb, "link set lo up\n");
    if (s->ext)
        ret = router_ext_up(&rn, s, &rb, err);
    else if (router_has_link(rn.ns, ROUTER_EXT_IF))
        ret = netcmd_run(del_ext, err);
    for (size_t i = 0; !ret && i < s->nnets; i++)
        ret = router_leg_up(&rn, &s->nets[i], &rb, err);
    if (!ret && rb.full) {
        snprintf(err, NETCMD_ERR_LEN, "router %s: its commands do not fit", name);
        ret = -ENOSPC;
    }
    if (!ret)
        ret = router_batch(rn.ns, rn.dir, "router.ip", rb.p, err);
    if (!ret)
        ret = router_rules_apply(&rn, s, err);
    if (!ret)
        ret = router_applied_write(rn.dir, NULL, s, err);
free_old:
    free(old);
    return ret;
}

/* Removes the router folder (all ours: no subfolders, no links followed). */
static int router_rmdir(const char *dir, char *err)
{
    int ret = fsdir_remove_flat(dir);

    if (ret)
        snprintf(err, NETCMD_ERR_LEN, "%.400s: %s", dir, strerror(-ret));
    return ret;
}

static int router_down_id(const char *state_dir, const char *id, char *err)
{
    char dir[PATH_MAX], ns[NETNS_NAME_MAX], host[IFNAMSIZ], rleg[IFNAMSIZ], nleg[IFNAMSIZ],
        nns[NETNS_NAME_MAX];
    const char *del[] = {"ip", "link", "delete", "dev", host, NULL};
    const char *del_leg[] = {"ip", "-n", nns, "link", "delete", "dev", nleg, NULL};
    struct router_applied *ap = malloc(sizeof(*ap));
    char err2[NETCMD_ERR_LEN];
    int ret;

    if (!ap) {
        snprintf(err, NETCMD_ERR_LEN, "router %.16s: out of memory", id);
        return -ENOMEM;
    }
    snprintf(dir, sizeof(dir), "%.3000s/routers/%.16s", state_dir, id);
    snprintf(ns, sizeof(ns), ROUTER_NS_PREFIX "%.16s", id);
    snprintf(host, sizeof(host), ROUTER_EXT_PREFIX "%.11s", id);
    router_applied_read(dir, ap);
    /* The namespace takes its veths with it, and so their other ends: the host's port on the
     * external bridge, each network's leg and its default route. But the kernel frees a
     * namespace after `ip netns delete` returns, in its own time: the other ends are deleted
     * here too, so none is left when this returns; one the kernel took first is no error. */
    ret = netns_delete(ns, err);
    if (!ret && router_has_link(NULL, host) && netcmd_run(del, err2) &&
        router_has_link(NULL, host)) {
        snprintf(err, NETCMD_ERR_LEN, "%s", err2);
        ret = -EIO;
    }
    for (size_t i = 0; !ret && i < ap->nnets; i++) {
        router_leg_names(id, ap->nets[i], rleg, nleg, nns);
        if (netns_exists(nns) && router_has_link(nns, nleg) && netcmd_run(del_leg, err2) &&
            router_has_link(nns, nleg)) {
            snprintf(err, NETCMD_ERR_LEN, "%s", err2);
            ret = -EIO;
        }
    }
    if (!ret)
        ret = router_rmdir(dir, err);
    free(ap);
    return ret;
}

int router_down(const char *state_dir, const char *tenant, const char *name, char *err)
{
    struct router_names rn;

    router_names(state_dir, tenant, name, &rn);
    return router_down_id(state_dir, rn.id, err);
}

int router_sweep(const char *state_dir, bool (*known)(void *arg, const char *id), void *arg,
                 char *err)
{
    char top[PATH_MAX];
    struct dirent *e;
    DIR *dp;
    int ret = 0;

    /* By folder, as vnet_sweep(): a router's folder is made before its namespace and removed
     * after it, and another daemon's namespaces are never touched. */
    snprintf(top, sizeof(top), "%.3000s/routers", state_dir);
    dp = opendir(top);
    if (!dp)
        return errno == ENOENT ? 0 : -errno;
    while (!ret && (e = readdir(dp)))
        if (router_is_id(e->d_name) && !known(arg, e->d_name))
            ret = router_down_id(state_dir, e->d_name, err);
    closedir(dp);
    return ret;
}
