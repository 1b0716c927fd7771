/* The virtio-net header (net.h): its wire format, net_vhdr_check()'s answer to every kind of
 * hostile field (and, for random headers, that whatever it accepts keeps its promises), and
 * the segment count rate limits charge. Where we are root with /dev/net/tun and ip(8), the
 * offload itself on real taps on a bridge: a 20000-byte TCP GSO frame sent by one backend
 * reaches a backend that takes no offload as MSS-sized segments whose IPv4 and TCP
 * checksums the kernel completed and whose payload is the original, reaches a backend that
 * set TSO4 as the one frame with its GSO header, and a frame with a bad header is dropped
 * and counted, never written. */
#include "test.h"

#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "test_net_common.h"

#define ALL (NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_ECN)

static struct net_vhdr gso4(uint16_t gso_size)
{
    return (struct net_vhdr){.flags = NET_VHDR_F_NEEDS_CSUM,
                             .gso_type = NET_VHDR_GSO_TCPV4,
                             .hdr_len = 54,
                             .gso_size = gso_size,
                             .csum_start = 34,
                             .csum_offset = 16};
}

static void test_wire(void)
{
    static const uint8_t wire[NET_VHDR_LEN] = {1, 4, 0x36, 0, 0xa8, 0x05, 0x22, 0, 0x10, 0, 1, 0};
    uint8_t back[NET_VHDR_LEN];
    struct net_vhdr h;

    net_vhdr_from_le(&h, wire);
    CHECK(h.flags == 1 && h.gso_type == NET_VHDR_GSO_TCPV6);
    CHECK(h.hdr_len == 54 && h.gso_size == 1448 && h.csum_start == 34 && h.csum_offset == 16);
    CHECK(h.num_buffers == 1);
    net_vhdr_to_le(&h, back);
    CHECK(!memcmp(back, wire, sizeof(wire)));
}

static bool ok(struct net_vhdr h, size_t len, unsigned allowed, bool incoming)
{
    const char *why = NULL;
    int r = net_vhdr_check(&h, len, allowed, incoming, &why);

    CHECK((r == 0) == (why == NULL));
    return r == 0;
}

static void test_check(void)
{
    struct net_vhdr plain = {0},
                    csum = {.flags = NET_VHDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
    struct net_vhdr h;

    /* Plain frames pass whatever was negotiated; hdr_len and gso_size are then ignored. */
    CHECK(ok(plain, 60, 0, false) && ok(plain, 60, ALL, true));
    h = plain;
    h.hdr_len = 0xffff;
    h.gso_size = 1;
    CHECK(ok(h, 60, 0, false));

    /* Checksum offload: negotiated, and its two bytes inside the frame. */
    CHECK(!ok(csum, 60, 0, false));
    CHECK(ok(csum, 52, NET_OFFLOAD_CSUM, false));
    CHECK(!ok(csum, 51, NET_OFFLOAD_CSUM, false));
    h = csum;
    h.csum_start = 0xffff;
    h.csum_offset = 0xffff; /* no wrap-around into "fits" */
    CHECK(!ok(h, NET_FRAME_MAX, ALL, false));

    /* DATA_VALID only towards the guest, with checksum offload; unknown flags never. */
    h = plain;
    h.flags = NET_VHDR_F_DATA_VALID;
    CHECK(!ok(h, 60, ALL, false));
    CHECK(ok(h, 60, NET_OFFLOAD_CSUM, true));
    CHECK(!ok(h, 60, 0, true));
    for (unsigned f = 4; f < 256; f <<= 1) {
        h.flags = (uint8_t)f;
        CHECK(!ok(h, 60, ALL, true));
    }

    /* GSO: the type negotiated, NEEDS_CSUM set, a real MSS, hdr_len inside the frame. */
    CHECK(ok(gso4(1448), 65000, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4, false));
    CHECK(!ok(gso4(1448), 65000, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6, false));
    h = gso4(1448);
    h.gso_type = NET_VHDR_GSO_TCPV6;
    CHECK(ok(h, 65000, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6, false));
    CHECK(!ok(h, 65000, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4, false));
    for (unsigned t = 0; t < 256; t++) {
        h.gso_type = (uint8_t)t;
        if (t != NET_VHDR_GSO_NONE && (t & 0x7f) != NET_VHDR_GSO_TCPV4 &&
            (t & 0x7f) != NET_VHDR_GSO_TCPV6)
            CHECK(!ok(h, 65000, ALL, false)); /* UDP (3), UDP_L4 (5), the rest */
    }
    h = gso4(1448);
    h.gso_type |= NET_VHDR_GSO_ECN;
    CHECK(ok(h, 65000, ALL, false));
    CHECK(!ok(h, 65000, ALL & ~NET_OFFLOAD_ECN, false));
    h = plain;
    h.gso_type = NET_VHDR_GSO_ECN;
    CHECK(!ok(h, 65000, ALL, false));
    h = gso4(1448);
    h.flags = 0;
    CHECK(!ok(h, 65000, ALL, false));
    CHECK(!ok(gso4(0), 65000, ALL, false));
    CHECK(!ok(gso4(NET_VHDR_MIN_GSO - 1), 65000, ALL, false));
    CHECK(ok(gso4(NET_VHDR_MIN_GSO), 65000, ALL, false));
    h = gso4(1448);
    h.hdr_len = 1001;
    CHECK(!ok(h, 1000, ALL, false));
    h.hdr_len = 1000;
    CHECK(ok(h, 1000, ALL, false));
}

/* Random headers and lengths: whatever passes keeps the promises the kernel and the
 * segment count rely on. */
static void test_random(void)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    unsigned passed = 0, broken = 0;

    for (int i = 0; i < 200000; i++) {
        uint8_t wire[NET_VHDR_LEN];
        struct net_vhdr h;
        size_t len;
        unsigned allowed;
        bool in;

        for (int k = 0; k < NET_VHDR_LEN; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            wire[k] = (uint8_t)x;
        }
        /* Bias towards plausible values, so that the accepting paths are reached too. */
        if (x & 1)
            wire[0] &= 3;
        if (x & 2)
            wire[1] &= 0x85;
        if (x & 4)
            wire[7] = 0;
        if (x & 8)
            wire[9] = 0;
        len = NET_FRAME_MIN + (size_t)(x >> 20) % (NET_FRAME_MAX - NET_FRAME_MIN + 1);
        allowed = (unsigned)(x >> 8) & ALL;
        in = (x >> 12) & 1;
        net_vhdr_from_le(&h, wire);
        if (net_vhdr_check(&h, len, allowed, in, NULL) < 0)
            continue;
        passed++;
        if ((h.flags & NET_VHDR_F_NEEDS_CSUM) && (size_t)h.csum_start + h.csum_offset + 2 > len)
            broken++;
        if (h.flags && !(allowed & NET_OFFLOAD_CSUM))
            broken++;
        if ((h.gso_type & 0x7f) != NET_VHDR_GSO_NONE &&
            (h.gso_size < NET_VHDR_MIN_GSO || h.hdr_len > len ||
             net_vhdr_segments(&h, len) > NET_FRAME_MAX / NET_VHDR_MIN_GSO + 1))
            broken++;
    }
    CHECK(passed > 1000);
    CHECK_EQ_U64(broken, 0);
}

static void test_segments(void)
{
    struct net_vhdr h = gso4(1448), plain = {0};

    CHECK_EQ_U64(net_vhdr_segments(&plain, 60000), 1);
    CHECK_EQ_U64(net_vhdr_segments(&h, 54 + 10 * 1448), 10);
    CHECK_EQ_U64(net_vhdr_segments(&h, 54 + 10 * 1448 + 1), 11);
    /* hdr_len is the guest's word: it cannot shrink the count. */
    h.hdr_len = 54 + 10 * 1448 - 1;
    CHECK_EQ_U64(net_vhdr_segments(&h, 54 + 10 * 1448), 10);
    CHECK_EQ_U64(net_vhdr_segments(&h, 40), 1);
}

/* ---- on real taps ---- */

static char br_name[IFNAMSIZ], tap_a[IFNAMSIZ], tap_b[IFNAMSIZ];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void cleanup(void)
{
    if (tap_a[0])
        sh("ip link del dev %s >/dev/null 2>&1", tap_a);
    if (tap_b[0])
        sh("ip link del dev %s >/dev/null 2>&1", tap_b);
    if (br_name[0])
        sh("ip link del dev %s >/dev/null 2>&1", br_name);
}

#define PAYLOAD 20000
#define MSS     1000
#define SEQ0    0x10000000u

/* What backend B received: frames of our flow (ethertype IPv4, protocol TCP) only. */
struct rx {
    pthread_mutex_t lock;
    atomic_uint frames;
    unsigned bad;     /* a checksum or a length that is wrong */
    unsigned gso;     /* frames that came with a GSO header */
    unsigned fins;    /* frames with FIN set */
    size_t bytes;     /* payload bytes */
    size_t max_frame; /* longest frame */
    uint8_t got[PAYLOAD];
};

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* The TCP pseudo-header sum (RFC 793) of an IPv4 packet at ip with tcp_len TCP bytes. */
static uint32_t pseudo(const uint8_t *ip, size_t tcp_len)
{
    return sum16(ip + 12, 8, 6 + (uint32_t)tcp_len);
}

static ssize_t rx_receive(void *opaque, const struct net_vhdr *hdr, const void *frame, size_t len)
{
    struct rx *r = opaque;
    const uint8_t *f = frame, *ip = f + 14, *tcp = f + 34;
    size_t tcp_len;
    uint32_t seq;

    if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || ip[9] != 6)
        return (ssize_t)len; /* not ours */
    pthread_mutex_lock(&r->lock);
    if (len > r->max_frame)
        r->max_frame = len;
    tcp_len = len - 34;
    if (hdr && hdr->gso_type != NET_VHDR_GSO_NONE) {
        r->gso++;
    } else if (fold(sum16(ip, 20, 0)) != 0xffff ||
               fold(sum16(tcp, tcp_len, pseudo(ip, tcp_len))) != 0xffff) {
        r->bad++; /* a segment's checksums must be complete and right */
    }
    if (tcp[13] & 0x01)
        r->fins++;
    seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
    if (seq - SEQ0 + (tcp_len - 20) <= PAYLOAD) {
        memcpy(r->got + (seq - SEQ0), tcp + 20, tcp_len - 20);
        r->bytes += tcp_len - 20;
    } else {
        r->bad++;
    }
    pthread_mutex_unlock(&r->lock);
    atomic_fetch_add(&r->frames, 1);
    return (ssize_t)len;
}

/* One IPv4 TCP packet of PAYLOAD bytes from 10.99.0.1 to 10.99.0.2, with the TCP checksum
 * field holding the pseudo-header sum, as a driver leaves it for NEEDS_CSUM. */
static size_t build_tcp(uint8_t *f, const uint8_t *payload)
{
    static const uint8_t eth[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00};
    size_t len = 54 + PAYLOAD;
    uint8_t *ip = f + 14, *tcp = f + 34;
    uint16_t c;

    memcpy(f, eth, 14);
    memset(ip, 0, 40);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((len - 14) >> 8);
    ip[3] = (uint8_t)(len - 14);
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, (uint8_t[]){10, 99, 0, 1, 10, 99, 0, 2}, 8);
    c = (uint16_t)~fold(sum16(ip, 20, 0));
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    tcp[0] = 0x30, tcp[1] = 0x39, tcp[2] = 0x1f, tcp[3] = 0x90; /* ports 12345 -> 8080 */
    tcp[4] = SEQ0 >> 24;
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; /* PSH, ACK */
    tcp[14] = 0xff;
    memcpy(f + 54, payload, PAYLOAD);
    c = fold(pseudo(ip, 20 + PAYLOAD));
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
    return len;
}

static bool wait_frames(struct rx *r, unsigned n)
{
    for (int i = 0; i < 3000 && atomic_load(&r->frames) < n; i++)
        tn_sleep_ms(1);
    tn_sleep_ms(20); /* and nothing more */
    return atomic_load(&r->frames) == n;
}

static void rx_reset(struct rx *r)
{
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->frames, 0);
    r->bad = r->gso = r->fins = 0;
    r->bytes = r->max_frame = 0;
    memset(r->got, 0, sizeof(r->got));
    pthread_mutex_unlock(&r->lock);
}

static int emit_rx(void *opaque, const uint8_t *frame, size_t len)
{
    return rx_receive(opaque, NULL, frame, len) == (ssize_t)len ? 0 : -EIO;
}

/* Software offload, for the user and socket backends: the same GSO frame cut here; a
 * checksum-only frame completed; frames it cannot finish refused. */
static void test_soft(void)
{
    static uint8_t payload[PAYLOAD], frame[54 + PAYLOAD];
    static struct rx r = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct net_vhdr h = gso4(MSS),
                    c = {.flags = NET_VHDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16};
    const char *why = NULL;
    size_t len;

    for (size_t i = 0; i < PAYLOAD; i++)
        payload[i] = (uint8_t)(i * 13 + i / 97);
    len = build_tcp(frame, payload);
    frame[34 + 13] |= 0x01; /* FIN: only the last segment keeps it */
    CHECK(net_vhdr_finish(&h, frame, len, emit_rx, &r, &why) == 0);
    CHECK_EQ_U64(atomic_load(&r.frames), PAYLOAD / MSS);
    CHECK_EQ_U64(r.bad, 0);
    CHECK_EQ_U64(r.bytes, PAYLOAD);
    CHECK_EQ_U64(r.max_frame, 54 + MSS);
    CHECK(!memcmp(r.got, payload, PAYLOAD));
    CHECK_EQ_U64(r.fins, 1);

    /* An odd last segment. */
    rx_reset(&r);
    h.gso_size = 1448;
    CHECK(net_vhdr_finish(&h, frame, len, emit_rx, &r, &why) == 0);
    CHECK_EQ_U64(atomic_load(&r.frames), (PAYLOAD + 1447) / 1448);
    CHECK_EQ_U64(r.bad, 0);
    CHECK(!memcmp(r.got, payload, PAYLOAD));

    /* Checksum only: one frame, completed. */
    rx_reset(&r);
    CHECK(net_vhdr_finish(&c, frame, len, emit_rx, &r, &why) == 0);
    CHECK_EQ_U64(atomic_load(&r.frames), 1);
    CHECK_EQ_U64(r.bad, 0);

    /* Not what it claims: a TCPv6 GSO frame that is IPv4, an IPv4 header length that does
     * not reach csum_start, a checksum field that is not TCP's. */
    h = gso4(MSS);
    h.gso_type = NET_VHDR_GSO_TCPV6;
    CHECK(net_vhdr_finish(&h, frame, len, emit_rx, &r, &why) == -EINVAL && why);
    h = gso4(MSS);
    h.csum_start = 38;
    CHECK(net_vhdr_finish(&h, frame, len, emit_rx, &r, &why) == -EINVAL && why);
    h = gso4(MSS);
    h.csum_offset = 6;
    CHECK(net_vhdr_finish(&h, frame, len, emit_rx, &r, &why) == -EINVAL && why);
    CHECK_EQ_U64(atomic_load(&r.frames), 1);
}

static void test_taps(void)
{
    static uint8_t payload[PAYLOAD], frame[54 + PAYLOAD];
    static struct rx r = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct net_vhdr h = gso4(MSS), bad;
    struct net_backend *a = NULL, *b = NULL;
    struct loop *loop;
    char spec[64], err[NET_ERR_LEN];
    struct net_stats st;
    struct iovec iov;
    size_t len;

    for (size_t i = 0; i < PAYLOAD; i++)
        payload[i] = (uint8_t)(i * 7 + i / 251);
    len = build_tcp(frame, payload);
    iov = (struct iovec){.iov_base = frame, .iov_len = len};

    CHECK(loop_create(&loop) == 0);
    CHECK(loop_start(loop) == 0);
    snprintf(spec, sizeof(spec), "tap,ifname=%s", tap_a);
    CHECK(net_backend_open(spec, loop, &a, err) == 0 || !fprintf(stderr, "%s\n", err));
    snprintf(spec, sizeof(spec), "tap,ifname=%s", tap_b);
    CHECK(net_backend_open(spec, loop, &b, err) == 0 || !fprintf(stderr, "%s\n", err));
    if (!a || !b)
        goto out;
    CHECK_EQ_U64(net_backend_offload_caps(a), ALL);
    net_backend_set_receiver(b, rx_receive, &r);
    CHECK(sh("ip link set dev %s up && ip link set dev %s up", tap_a, tap_b) == 0);

    /* B takes no offload: the kernel cuts the frame into MSS segments and completes their
     * checksums. */
    CHECK(net_backend_set_offload(b, 0) == 0);
    CHECK(net_backend_send_vhdr(a, &h, &iov, 1) == 0);
    CHECK(wait_frames(&r, PAYLOAD / MSS));
    CHECK_EQ_U64(r.bad, 0);
    CHECK_EQ_U64(r.gso, 0);
    CHECK_EQ_U64(r.bytes, PAYLOAD);
    CHECK_EQ_U64(r.max_frame, 54 + MSS);
    CHECK(!memcmp(r.got, payload, PAYLOAD));

    /* B takes TSO4: the frame arrives whole, with its GSO header. */
    rx_reset(&r);
    CHECK(net_backend_set_offload(b, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4) == 0);
    CHECK(net_backend_send_vhdr(a, &h, &iov, 1) == 0);
    CHECK(wait_frames(&r, 1));
    CHECK_EQ_U64(r.gso, 1);
    CHECK_EQ_U64(r.bytes, PAYLOAD);
    CHECK(!memcmp(r.got, payload, PAYLOAD));

    /* Offloads beyond the caps are refused: the user and socket backends have none. */
    CHECK(net_backend_set_offload(b, 1u << 7) == -EOPNOTSUPP);

    /* A hostile header is dropped and counted, never written. */
    rx_reset(&r);
    net_backend_get_stats(a, &st);
    bad = h;
    bad.csum_start = (uint16_t)(len - 17);
    CHECK(net_backend_send_vhdr(a, &bad, &iov, 1) == -EINVAL);
    bad = h;
    bad.gso_type = 3; /* UDP */
    CHECK(net_backend_send_vhdr(a, &bad, &iov, 1) == -EINVAL);
    {
        struct net_stats st2;

        net_backend_get_stats(a, &st2);
        CHECK_EQ_U64(st2.tx_dropped - st.tx_dropped, 2);
        CHECK_EQ_U64(st2.tx_frames, st.tx_frames);
    }
    CHECK(wait_frames(&r, 0));
out:
    net_backend_close(a);
    net_backend_close(b);
    loop_destroy(loop);
}

int main(void)
{
    unsigned id = (unsigned)getpid() % 100000;

    test_wire();
    test_check();
    test_random();
    test_segments();
    test_soft();
    if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 ||
        system("ip -V >/dev/null 2>&1") != 0) {
        printf("net_vhdr: taps skipped: needs root, /dev/net/tun and ip(8)\n");
        return test_finish("net_vhdr");
    }
    snprintf(br_name, sizeof(br_name), "tsrvbr%u", id);
    snprintf(tap_a, sizeof(tap_a), "tsrva%u", id);
    snprintf(tap_b, sizeof(tap_b), "tsrvb%u", id);
    if (sh("ip link add %s type bridge && ip link set %s up", br_name, br_name) != 0 ||
        sh("ip tuntap add dev %s mode tap && ip tuntap add dev %s mode tap", tap_a, tap_b) != 0 ||
        sh("ip link set %s master %s && ip link set %s master %s", tap_a, br_name, tap_b,
           br_name) != 0) {
        cleanup();
        printf("net_vhdr: taps skipped: cannot make a bridge and taps here\n");
        return test_finish("net_vhdr");
    }
    /* No IPv6 chatter on the test interfaces. */
    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 net.ipv6.conf.%s.disable_ipv6=1 "
       "net.ipv6.conf.%s.disable_ipv6=1 >/dev/null 2>&1",
       br_name, tap_a, tap_b);
    log_set_level(LOG_ERROR);
    test_taps();
    cleanup();
    return test_finish("net_vhdr");
}
