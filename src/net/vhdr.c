/* The virtio-net header (virtio 1.2 §5.1.6): wire format and the checks every header from
 * the other side passes before anything acts on it. See net.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- software offload: for backends that carry no header ---- */

/* The ones' complement sum (RFC 1071) of p[0..len) added to sum, not folded. */
static uint64_t vhdr_sum(const uint8_t *p, size_t len, uint64_t sum)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < len)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t vhdr_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void vhdr_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t vhdr_get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Completes a partial checksum (what a NIC does for NEEDS_CSUM, §5.1.6.2): the sum from
 * csum_start to the end, which includes the pseudo-header sum the sender left in the field,
 * inverted into the field. The caller checked both offsets. */
static void vhdr_complete_csum(uint8_t *f, size_t len, size_t start, size_t field)
{
    uint16_t c = (uint16_t)~vhdr_fold(vhdr_sum(f + start, len - start, 0));

    /* 0 and 0xffff are the same in ones' complement, but a UDP checksum of 0 means "none"
     * (RFC 768), which IPv6 forbids: send 0xffff, as Linux does for UDP. */
    vhdr_put_be16(f + field, c ? c : 0xffff);
}

/* Where the IP header starts (after Ethernet and at most one 802.1Q tag), and its version,
 * or 0 when the frame carries neither IPv4 nor IPv6. */
static size_t vhdr_l3(const uint8_t *f, size_t len, unsigned *version)
{
    size_t off = 12;
    uint16_t type;

    if (len < off + 2)
        return 0;
    type = vhdr_get_be16(f + off);
    if (type == 0x8100) {
        off += 4;
        if (len < off + 2)
            return 0;
        type = vhdr_get_be16(f + off);
    }
    off += 2;
    *version = type == 0x0800 ? 4 : type == 0x86dd ? 6 : 0;
    return *version ? off : 0;
}

int net_vhdr_finish(const struct net_vhdr *h, const uint8_t *frame, size_t len,
                    net_vhdr_emit_fn emit, void *opaque, const char **why)
{
    unsigned gso = h->gso_type & (unsigned)~NET_VHDR_GSO_ECN, version = 0;
    size_t l3, l4, head, payload, mss, nseg;
    uint32_t seq;
    uint16_t ip_id;
    uint8_t *seg;
    int r = 0;

    if (net_vhdr_check(h, len,
                       NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_ECN,
                       false, why) < 0)
        return -EINVAL;
    if (gso == NET_VHDR_GSO_NONE) {
        if (!(h->flags & NET_VHDR_F_NEEDS_CSUM))
            return emit(opaque, frame, len);
        seg = malloc(len);
        if (!seg)
            return -ENOMEM;
        memcpy(seg, frame, len);
        vhdr_complete_csum(seg, len, h->csum_start, (size_t)h->csum_start + h->csum_offset);
        r = emit(opaque, seg, len);
        free(seg);
        return r;
    }
    /* TCP segmentation: the IP header right after Ethernet, the TCP header at csum_start
     * with its checksum at offset 16; IPv6 without extension headers. */
    l3 = vhdr_l3(frame, len, &version);
    l4 = h->csum_start;
    if (!l3 || version != (gso == NET_VHDR_GSO_TCPV4 ? 4u : 6u))
        return vhdr_bad(why, "a GSO frame that is not TCP over the IP version it names");
    if (version == 4) {
        if (l3 + 20 > len || frame[l3] >> 4 != 4 || (frame[l3] & 0xfu) < 5 ||
            l3 + (frame[l3] & 0xfu) * 4 != l4 || frame[l3 + 9] != 6)
            return vhdr_bad(why, "a TCPv4 GSO frame whose IPv4 header does not lead to TCP");
    } else if (l3 + 40 != l4 || frame[l3] >> 4 != 6 || frame[l3 + 6] != 6) {
        return vhdr_bad(why, "a TCPv6 GSO frame whose IPv6 header does not lead to TCP");
    }
    if (h->csum_offset != 16 || l4 + 20 > len || l4 + (frame[l4 + 12] >> 4) * 4u > len ||
        frame[l4 + 12] >> 4 < 5)
        return vhdr_bad(why, "a GSO frame with a bad TCP header");
    head = l4 + (frame[l4 + 12] >> 4) * 4u;
    payload = len - head;
    mss = h->gso_size;
    nseg = payload ? (payload + mss - 1) / mss : 1;
    seq = (uint32_t)frame[l4 + 4] << 24 | (uint32_t)frame[l4 + 5] << 16 |
          (uint32_t)frame[l4 + 6] << 8 | frame[l4 + 7];
    ip_id = version == 4 ? vhdr_get_be16(frame + l3 + 4) : 0;
    seg = malloc(head + (payload < mss ? payload : mss));
    if (!seg)
        return -ENOMEM;
    for (size_t i = 0; i < nseg && r == 0; i++) {
        size_t off = i * mss, n = payload - off < mss ? payload - off : mss;
        size_t slen = head + n, tcp_len = slen - l4;
        uint64_t pseudo;

        memcpy(seg, frame, head);
        memcpy(seg + head, frame + head + off, n);
        vhdr_put_be16(seg + l4 + 4, (uint16_t)((seq + off) >> 16));
        vhdr_put_be16(seg + l4 + 6, (uint16_t)(seq + off));
        /* FIN and PSH only on the last segment, CWR only on the first (RFC 3168 §6.1.2). */
        if (i + 1 < nseg)
            seg[l4 + 13] &= (uint8_t)~0x09;
        if (i > 0)
            seg[l4 + 13] &= (uint8_t)~0x80;
        if (version == 4) {
            vhdr_put_be16(seg + l3 + 2, (uint16_t)(slen - l3));
            vhdr_put_be16(seg + l3 + 4, (uint16_t)(ip_id + i));
            vhdr_put_be16(seg + l3 + 10, 0);
            vhdr_put_be16(seg + l3 + 10, (uint16_t)~vhdr_fold(vhdr_sum(seg + l3, l4 - l3, 0)));
            pseudo = vhdr_sum(seg + l3 + 12, 8, 6 + (uint64_t)tcp_len);
        } else {
            vhdr_put_be16(seg + l3 + 4, (uint16_t)(slen - l4));
            pseudo = vhdr_sum(seg + l3 + 8, 32, 6 + (uint64_t)tcp_len);
        }
        /* The field gets this segment's pseudo-header sum, then the usual completion. */
        vhdr_put_be16(seg + l4 + 16, vhdr_fold(pseudo));
        vhdr_complete_csum(seg, slen, l4, l4 + 16);
        r = emit(opaque, seg, slen);
    }
    free(seg);
    return r;
}
