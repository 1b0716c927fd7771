/* The virtio-net header (virtio 1.2 §5.1.6): wire format and the checks every header from
 * the other side passes before anything acts on it. See net.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/net.h"

static uint16_t vhdr_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void vhdr_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void net_vhdr_from_le(struct net_vhdr *h, const uint8_t wire[NET_VHDR_LEN])
{
    h->flags = wire[0];
    h->gso_type = wire[1];
    h->hdr_len = vhdr_get_le16(wire + 2);
    h->gso_size = vhdr_get_le16(wire + 4);
    h->csum_start = vhdr_get_le16(wire + 6);
    h->csum_offset = vhdr_get_le16(wire + 8);
    h->num_buffers = vhdr_get_le16(wire + 10);
}

void net_vhdr_to_le(const struct net_vhdr *h, uint8_t wire[NET_VHDR_LEN])
{
    wire[0] = h->flags;
    wire[1] = h->gso_type;
    vhdr_put_le16(wire + 2, h->hdr_len);
    vhdr_put_le16(wire + 4, h->gso_size);
    vhdr_put_le16(wire + 6, h->csum_start);
    vhdr_put_le16(wire + 8, h->csum_offset);
    vhdr_put_le16(wire + 10, h->num_buffers);
}

static int vhdr_bad(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -EINVAL;
}

int net_vhdr_check(const struct net_vhdr *h, size_t len, unsigned allowed, bool incoming,
                   const char **why)
{
    /* A driver must not set DATA_VALID or RSC_INFO (§5.1.6.2.1); a device sets DATA_VALID
     * only with VIRTIO_NET_F_GUEST_CSUM (§5.1.6.4.1). */
    unsigned flags_ok = NET_VHDR_F_NEEDS_CSUM | (incoming ? NET_VHDR_F_DATA_VALID : 0);
    unsigned gso = h->gso_type & (unsigned)~NET_VHDR_GSO_ECN;

    if (h->flags & ~flags_ok)
        return vhdr_bad(why, "unknown flags");
    if (h->flags && !(allowed & NET_OFFLOAD_CSUM))
        return vhdr_bad(why, "checksum offload was not negotiated");
    if (h->flags & NET_VHDR_F_NEEDS_CSUM) {
        /* The two checksum bytes lie inside the frame; 32-bit sums cannot wrap. */
        if ((uint32_t)h->csum_start + h->csum_offset + 2 > len)
            return vhdr_bad(why, "csum_start + csum_offset is past the frame's end");
    }
    if (gso == NET_VHDR_GSO_NONE) {
        if (h->gso_type & NET_VHDR_GSO_ECN)
            return vhdr_bad(why, "GSO_ECN without a GSO type");
        return 0;
    }
    if (gso == NET_VHDR_GSO_TCPV4) {
        if (!(allowed & NET_OFFLOAD_TSO4))
            return vhdr_bad(why, "TCPv4 segmentation offload was not negotiated");
    } else if (gso == NET_VHDR_GSO_TCPV6) {
        if (!(allowed & NET_OFFLOAD_TSO6))
            return vhdr_bad(why, "TCPv6 segmentation offload was not negotiated");
    } else {
        /* UDP (UFO, USO) is never offered. */
        return vhdr_bad(why, "unknown gso_type");
    }
    if ((h->gso_type & NET_VHDR_GSO_ECN) && !(allowed & NET_OFFLOAD_ECN))
        return vhdr_bad(why, "ECN segmentation offload was not negotiated");
    /* Segmenting needs the TCP header's place, which csum_start gives (Linux always sends
     * GSO frames with NEEDS_CSUM). */
    if (!(h->flags & NET_VHDR_F_NEEDS_CSUM))
        return vhdr_bad(why, "a GSO frame without NEEDS_CSUM");
    if (h->gso_size < NET_VHDR_MIN_GSO)
        return vhdr_bad(why, "gso_size is below the smallest TCP MSS");
    if (h->hdr_len > len)
        return vhdr_bad(why, "hdr_len is past the frame's end");
    return 0;
}

unsigned net_vhdr_segments(const struct net_vhdr *h, size_t len)
{
    /* Each segment repeats the headers up to the TCP header at csum_start, whose smallest
     * size is 20 bytes; hdr_len is only the sender's hint, so a guest cannot shrink its
     * count with it (TCP options make this at most one segment too many). */
    size_t head = (size_t)h->csum_start + 20;

    if ((h->gso_type & (unsigned)~NET_VHDR_GSO_ECN) == NET_VHDR_GSO_NONE || !h->gso_size ||
        head >= len)
        return 1;
    return (unsigned)((len - head + h->gso_size - 1) / h->gso_size);
}
