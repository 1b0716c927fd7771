/* The tap backend: an existing tap interface (`ip tuntap add dev NAME mode tap [user U]`),
 * opened through /dev/net/tun with IFF_TAP | IFF_NO_PI, so every read and write is one
 * Ethernet frame without a packet-info header (Documentation/networking/tuntap.rst). The
 * backend never creates, configures or brings the interface up: that is the host
 * administrator's job. The data path is fdnet's (fdnet.h), datagram framing.
 *
 * Offload: where the kernel has IFF_VNET_HDR (TUNGETFEATURES) the tap is opened with it and
 * TUNSETVNETHDRSZ 12 (the virtio 1.x header, the only one a VERSION_1 device uses), little-
 * endian (TUNSETVNETLE, as virtio 1.x is), so every read and write starts with a struct
 * virtio_net_hdr: the kernel completes checksums and segments GSO frames we write (or hands
 * them whole to a bridge port that takes them), and sends us such frames only as far as
 * TUNSETOFFLOAD allows, which starts at 0 (plain frames) and follows what the guest
 * negotiated (net_backend_set_offload()). Without IFF_VNET_HDR the backend has no caps. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "net/fdnet.h"
#include "net/net_priv.h"
#include "net/netspec.h"

struct tap_cfg {
    bool have_ifname;
    char ifname[IFNAMSIZ];
};

struct tap_backend {
    struct fdnet *io;
    bool vhdr;               /* opened with IFF_VNET_HDR */
    char what[IFNAMSIZ + 8]; /* "tap NAME" */
};

/* Linux's dev_valid_name(): 1..IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or space.
 * Printable ASCII only on top, so the name can be echoed safely. */
static bool tap_valid_ifname(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':')
            return false;
    }
    return true;
}

static int tap_parse_key(void *opaque, const char *key, const char *value, char *err)
{
    struct tap_cfg *c = opaque;
    char q[64];

    if (strcmp(key, "ifname"))
        return -ENOENT;
    if (c->have_ifname) {
        net_err(err, "tap: ifname: given twice");
        return -EINVAL;
    }
    if (!tap_valid_ifname(value)) {
        net_err(err,
                "tap: ifname: '%s' is not an interface name (1 to %d characters, no '/', "
                "':' or spaces)",
                netspec_quote(value, q, sizeof(q)), IFNAMSIZ - 1);
        return -EINVAL;
    }
    strcpy(c->ifname, value);
    c->have_ifname = true;
    return 0;
}

static int tap_parse_done(void *opaque, char *err)
{
    const struct tap_cfg *c = opaque;

    if (!c->have_ifname) {
        net_err(err, "tap: missing ifname=NAME (an existing tap interface)");
        return -EINVAL;
    }
    return 0;
}

/* Turns on the virtio-net header on a tap fd opened with IFF_VNET_HDR; see the top
 * comment. Returns 0 or -errno. */
static int tap_setup_vhdr(int fd)
{
    int sz = NET_VHDR_LEN, le = 1;

    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 || ioctl(fd, TUNSETVNETLE, &le) < 0 ||
        ioctl(fd, TUNSETOFFLOAD, 0ul) < 0)
        return -errno;
    return 0;
}

/* Opens /dev/net/tun and attaches it to the tap `name`, with the virtio-net header when the
 * kernel has it (*vhdr). Returns the fd or -errno. */
static int tap_open_fd(const char *name, bool *vhdr, char *err)
{
    struct ifreq ifr = {0};
    unsigned features = 0;
    int fd, e;

    if (if_nametoindex(name) == 0) {
        net_err(err,
                "tap: ifname: there is no interface '%s' (create it: ip tuntap add dev %s "
                "mode tap)",
                name, name);
        return -ENODEV;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        if (e == ENOENT || e == ENXIO || e == ENODEV)
            net_err(err, "tap: /dev/net/tun is missing: %s (load the tun module)", strerror(e));
        else
            net_err(err, "tap: cannot open /dev/net/tun: %s", strerror(e));
        return -e;
    }
    *vhdr = ioctl(fd, TUNGETFEATURES, &features) == 0 && (features & IFF_VNET_HDR);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (*vhdr ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name, strlen(name) + 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        e = errno;
        if (e == EPERM || e == EACCES)
            net_err(err,
                    "tap: ifname: no permission to use '%s' (needs CAP_NET_ADMIN, or a tap "
                    "made with: ip tuntap add dev %s mode tap user %u)",
                    name, name, (unsigned)getuid());
        else if (e == EBUSY)
            net_err(err, "tap: ifname: '%s' is in use by another process", name);
        else if (e == EINVAL)
            net_err(err,
                    "tap: ifname: '%s' is not a tap interface (a tun, or another kind of "
                    "device?)",
                    name);
        else
            net_err(err, "tap: ifname: cannot attach to '%s': %s", name, strerror(e));
        close(fd);
        return -e;
    }
    if (*vhdr) {
        e = -tap_setup_vhdr(fd);
        if (e) {
            net_err(err, "tap: ifname: cannot set up the virtio-net header on '%s': %s", name,
                    strerror(e));
            close(fd);
            return -e;
        }
    }
    return fd;
}

static void tap_down_cb(void *opaque)
{
    struct tap_backend *tb = opaque;

    log_warn("%s: the link stays down", tb->what);
}

static int tap_open(struct net_backend *nb, const void *opaque, char *err)
{
    const struct tap_cfg *c = opaque;
    struct tap_backend *tb = calloc(1, sizeof(*tb));
    int fd, r;

    if (!tb) {
        net_err(err, "tap: out of memory");
        return -ENOMEM;
    }
    snprintf(tb->what, sizeof(tb->what), "tap %s", c->ifname);
    r = fdnet_create(nb, tb->what, tap_down_cb, tb, &tb->io);
    if (r < 0) {
        net_err(err, "tap: out of memory");
        goto err_free;
    }
    fd = tap_open_fd(c->ifname, &tb->vhdr, err);
    if (fd < 0) {
        r = fd;
        goto err_io;
    }
    fdnet_set_vhdr(tb->io, tb->vhdr);
    r = fdnet_attach(tb->io, fd, FDNET_DGRAM, false);
    if (r < 0) {
        net_err(err, "tap: cannot watch the tap fd: %s", strerror(-r));
        close(fd);
        goto err_io;
    }
    nb->priv = tb;
    if (tb->vhdr)
        nb->offload_caps = NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_ECN;
    return 0;

err_io:
    fdnet_destroy(tb->io);
err_free:
    free(tb);
    return r;
}

static int tap_send(struct net_backend *nb, const struct net_vhdr *hdr, const struct iovec *iov,
                    int iovcnt, size_t len)
{
    struct tap_backend *tb = nb->priv;
    struct iovec v[NET_IOV_MAX + 1];
    uint8_t wire[NET_VHDR_LEN] = {0};

    if (!tb->vhdr)
        return fdnet_send(tb->io, iov, iovcnt, len);
    /* A plain frame goes with an all-zero header: no checksum to complete, no GSO. */
    if (hdr) {
        struct net_vhdr h = *hdr;

        h.num_buffers = 0;
        net_vhdr_to_le(&h, wire);
    }
    v[0] = (struct iovec){.iov_base = wire, .iov_len = sizeof(wire)};
    memcpy(&v[1], iov, (size_t)iovcnt * sizeof(*iov));
    return fdnet_send(tb->io, v, iovcnt + 1, NET_VHDR_LEN + len);
}

/* TUNSETOFFLOAD: what the kernel may hand us. The kernel takes TSO bits only with
 * TUN_F_CSUM (segments need their checksums filled in), which the device's feature
 * dependencies guarantee (GUEST_TSO4 requires GUEST_CSUM, §5.1.3.1). */
static int tap_set_offload(struct net_backend *nb, unsigned offloads)
{
    struct tap_backend *tb = nb->priv;
    unsigned long tun = 0;

    if (offloads & NET_OFFLOAD_CSUM) {
        tun |= TUN_F_CSUM;
        if (offloads & NET_OFFLOAD_TSO4)
            tun |= TUN_F_TSO4;
        if (offloads & NET_OFFLOAD_TSO6)
            tun |= TUN_F_TSO6;
        if ((offloads & NET_OFFLOAD_ECN) && (tun & (TUN_F_TSO4 | TUN_F_TSO6)))
            tun |= TUN_F_TSO_ECN;
    }
    return fdnet_ioctl(tb->io, TUNSETOFFLOAD, (void *)tun);
}

static void tap_kick(struct net_backend *nb)
{
    struct tap_backend *tb = nb->priv;

    fdnet_kick(tb->io);
}

static void tap_close(struct net_backend *nb)
{
    struct tap_backend *tb = nb->priv;

    fdnet_destroy(tb->io);
    free(tb);
}

const struct net_backend_ops tap_backend_ops = {
    .name = "tap",
    .keys = "ifname",
    .cfg_size = sizeof(struct tap_cfg),
    .parse_key = tap_parse_key,
    .parse_done = tap_parse_done,
    .open = tap_open,
    .send = tap_send,
    .set_offload = tap_set_offload,
    .kick = tap_kick,
    .close = tap_close,
};
