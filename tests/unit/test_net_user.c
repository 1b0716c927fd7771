/* The user (libslirp) backend, with the test playing the guest: an ARP request for 10.0.2.2
 * gets a well-formed reply, a DHCP DISCOVER gets an OFFER of 10.0.2.15 from 10.0.2.2, all
 * delivered on the loop thread. With hostfwd=tcp::PORT-:22 on a free port, a TCP connect to
 * 127.0.0.1:PORT makes slirp send a SYN to 10.0.2.15:22; the test completes the handshake and
 * moves bytes both ways, which only works if slirp's sockets are polled through the loop.
 * Then malformed frames, closing with an open connection, back-pressure (a bounded queue,
 * drops counted), and the life cycle. No root, no network beyond loopback. */
#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "test_net_common.h"

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static uint8_t slirp_mac[6];

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define GUEST_IP       IP(10, 0, 2, 15)
#define HOST_IP        IP(10, 0, 2, 2)

/* ---- frames collected by the receiver ---- */

#define MAX_FRAMES 512

struct collector {
    struct loop *loop;
    pthread_mutex_t lock;
    uint8_t *frame[MAX_FRAMES];
    size_t len[MAX_FRAMES];
    unsigned n;
    atomic_uint off_thread;
    atomic_uint calls;
    atomic_int refuse;
};

static struct collector col = {.lock = PTHREAD_MUTEX_INITIALIZER};

static ssize_t collect(void *opaque, const struct net_vhdr *hdr, const void *frame, size_t len)
{
    struct collector *c = opaque;

    atomic_fetch_add(&c->calls, 1);
    if (!loop_in_thread(c->loop))
        atomic_fetch_add(&c->off_thread, 1);
    if (atomic_load(&c->refuse))
        return 0;
    pthread_mutex_lock(&c->lock);
    if (c->n < MAX_FRAMES) {
        c->frame[c->n] = malloc(len);
        memcpy(c->frame[c->n], frame, len);
        c->len[c->n] = len;
        c->n++;
    }
    pthread_mutex_unlock(&c->lock);
    return (ssize_t)len;
}

static void collector_reset(void)
{
    pthread_mutex_lock(&col.lock);
    for (unsigned i = 0; i < col.n; i++)
        free(col.frame[i]);
    col.n = 0;
    pthread_mutex_unlock(&col.lock);
}

typedef bool (*frame_pred)(const uint8_t *f, size_t len, void *arg);

/* Waits up to 3 s for a frame matching pred among those from index *from on; copies it into
 * out (size outsz) and returns its length, or 0. *from moves past the match. */
static size_t wait_frame(unsigned *from, frame_pred pred, void *arg, uint8_t *out, size_t outsz)
{
    for (int t = 0; t < 3000; t++) {
        pthread_mutex_lock(&col.lock);
        for (; *from < col.n; (*from)++) {
            if (pred(col.frame[*from], col.len[*from], arg)) {
                size_t len = col.len[*from] < outsz ? col.len[*from] : outsz;

                memcpy(out, col.frame[*from], len);
                (*from)++;
                pthread_mutex_unlock(&col.lock);
                return len;
            }
        }
        pthread_mutex_unlock(&col.lock);
        tn_sleep_ms(1);
    }
    return 0;
}

/* ---- building and checking packets ---- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* RFC 1071 one's-complement sum, folded, not inverted. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static size_t eth_hdr(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, type);
    return 14;
}

/* An IPv4 header at ip for `payload` bytes of protocol proto; checksum filled. */
static void ip_hdr(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst, size_t payload)
{
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + payload));
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
}

static bool ip_ok(const uint8_t *f, size_t len, uint8_t proto)
{
    const uint8_t *ip = f + 14;

    return len >= 34 && get16(f + 12) == 0x0800 && ip[0] == 0x45 && ip[9] == proto &&
           get16(ip + 2) <= len - 14 && csum_fold(csum_add(0, ip, 20)) == 0;
}

static int send_frame(struct net_backend *nb, const uint8_t *f, size_t len)
{
    struct iovec iov = {.iov_base = (void *)f, .iov_len = len};

    return net_backend_send(nb, &iov, 1);
}

/* ---- ARP ---- */

static size_t build_arp(uint8_t *f, uint16_t op, const uint8_t *tha, uint32_t spa, uint32_t tpa)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t n = eth_hdr(f, op == 1 ? bcast : tha, 0x0806);
    uint8_t *a = f + n;

    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, guest_mac, 6);
    put32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    put32(a + 24, tpa);
    return n + 28;
}

static bool is_arp_reply(const uint8_t *f, size_t len, void *arg)
{
    const uint8_t *a = f + 14;

    return len >= 42 && get16(f + 12) == 0x0806 && get16(a + 6) == 2 && get32(a + 14) == HOST_IP &&
           get32(a + 24) == GUEST_IP && !memcmp(a + 18, guest_mac, 6) && !memcmp(f, guest_mac, 6);
}

static bool is_arp_request_for_guest(const uint8_t *f, size_t len, void *arg)
{
    return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 1 && get32(f + 38) == GUEST_IP;
}

/* ---- DHCP (RFC 2131) ---- */

#define BOOTP_LEN (236 + 312) /* fixed part + options area, as libslirp's struct bootp_t */

static size_t build_dhcp_discover(uint8_t *f, uint32_t xid)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t n = eth_hdr(f, bcast, 0x0800);
    uint8_t *ip = f + n, *udp = ip + 20, *b = udp + 8, *opt;

    memset(udp, 0, 8 + BOOTP_LEN);
    b[0] = 1; /* BOOTREQUEST */
    b[1] = 1; /* Ethernet */
    b[2] = 6;
    put32(b + 4, xid);
    put16(b + 10, 0x8000); /* broadcast flag */
    memcpy(b + 28, guest_mac, 6);
    opt = b + 236;
    put32(opt, 0x63825363); /* magic cookie */
    opt[4] = 53;            /* DHCP message type */
    opt[5] = 1;
    opt[6] = 1; /* DISCOVER */
    opt[7] = 255;
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, 8 + BOOTP_LEN);
    /* UDP checksum 0: none (RFC 768). */
    ip_hdr(ip, 17, 0, 0xffffffff, 8 + BOOTP_LEN);
    return n + 20 + 8 + BOOTP_LEN;
}

struct dhcp_want {
    uint32_t xid;
};

static bool is_dhcp_offer(const uint8_t *f, size_t len, void *arg)
{
    const struct dhcp_want *w = arg;
    const uint8_t *udp = f + 34, *b = udp + 8, *opt;
    bool offer = false, server = false;

    if (!ip_ok(f, len, 17) || len < 34 + 8 + 240 || get16(udp) != 67 || get16(udp + 2) != 68)
        return false;
    if (get16(udp + 4) != get16(f + 16) - 20 || b[0] != 2 || get32(b + 4) != w->xid ||
        get32(b + 16) != GUEST_IP || get32(b + 236) != 0x63825363 || memcmp(b + 28, guest_mac, 6))
        return false;
    /* Walk the options: message type OFFER, server identifier 10.0.2.2. */
    for (opt = b + 240; opt + 2 <= f + len && opt[0] != 255;) {
        if (opt[0] == 0) {
            opt++;
            continue;
        }
        if (opt + 2 + opt[1] > f + len)
            return false;
        if (opt[0] == 53 && opt[1] == 1 && opt[2] == 2)
            offer = true;
        if (opt[0] == 54 && opt[1] == 4 && get32(opt + 2) == HOST_IP)
            server = true;
        opt += 2 + opt[1];
    }
    return offer && server;
}

/* ---- TCP ---- */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

struct tcp_want {
    uint16_t dport;
    uint8_t flags_set, flags_clear;
    size_t min_payload;
};

static bool is_tcp(const uint8_t *f, size_t len, void *arg)
{
    const struct tcp_want *w = arg;
    const uint8_t *ip = f + 14, *tcp = ip + 20;
    size_t iplen, hl;
    uint32_t sum;

    if (!ip_ok(f, len, 6) || len < 54 || get32(ip + 16) != GUEST_IP || get32(ip + 12) != HOST_IP)
        return false;
    iplen = get16(ip + 2);
    hl = (size_t)(tcp[12] >> 4) * 4;
    if (hl < 20 || 20 + hl > iplen)
        return false;
    /* The checksum over the pseudo-header and the segment must verify. */
    sum = csum_add(0, ip + 12, 8) + 6 + (uint32_t)(iplen - 20);
    if (csum_fold(csum_add(sum, tcp, iplen - 20)) != 0)
        return false;
    return get16(tcp + 2) == w->dport && (tcp[13] & w->flags_set) == w->flags_set &&
           !(tcp[13] & w->flags_clear) && iplen - 20 - hl >= w->min_payload &&
           !memcmp(f, guest_mac, 6);
}

static size_t build_tcp(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                        uint8_t flags, const void *data, size_t dlen)
{
    size_t n = eth_hdr(f, slirp_mac, 0x0800);
    uint8_t *ip = f + n, *tcp = ip + 20;
    uint32_t sum;

    memset(tcp, 0, 20);
    put16(tcp, sport);
    put16(tcp + 2, dport);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    if (dlen)
        memcpy(tcp + 20, data, dlen);
    ip_hdr(ip, 6, GUEST_IP, HOST_IP, 20 + dlen);
    sum = csum_add(0, ip + 12, 8) + 6 + (uint32_t)(20 + dlen);
    put16(tcp + 16, csum_fold(csum_add(sum, tcp, 20 + dlen)));
    return n + 20 + 20 + dlen;
}

/* ---- the tests ---- */

static int free_tcp_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int s = socket(AF_INET, SOCK_STREAM, 0), port;

    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    close(s);
    return port;
}

static void test_user(void)
{
    struct loop *loop;
    struct net_backend *nb = NULL;
    char spec[96], err[NET_ERR_LEN];
    static uint8_t f[2048], got[2048];
    static const uint8_t zero_mac[6];
    unsigned from = 0;
    size_t n;
    int port = free_tcp_port(), cs, r = -1;
    uint32_t slirp_seq, guest_seq = 1000000;
    uint16_t slirp_port;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port)};

    CHECK(loop_create(&loop) == 0);
    col.loop = loop;
    snprintf(spec, sizeof(spec), "user,hostfwd=tcp::%d-:22,hostfwd=udp:127.0.0.1:%d-:53", port,
             port);
    CHECK(net_backend_open(spec, loop, &nb, err) == 0 || !fprintf(stderr, "%s\n", err));
    CHECK(!strcmp(net_backend_kind(nb), "user"));
    net_backend_set_receiver(nb, collect, &col);
    CHECK(loop_start(loop) == 0);

    /* ARP: who has 10.0.2.2? Also teaches slirp the guest's MAC for 10.0.2.15. */
    n = build_arp(f, 1, zero_mac, GUEST_IP, HOST_IP);
    CHECK(send_frame(nb, f, n) == 0);
    CHECK(wait_frame(&from, is_arp_reply, NULL, got, sizeof(got)) > 0);
    memcpy(slirp_mac, got + 22, 6);
    CHECK(!memcmp(got + 6, slirp_mac, 6));
    CHECK(memcmp(slirp_mac, zero_mac, 6) != 0);

    /* DHCP: DISCOVER -> OFFER of 10.0.2.15. */
    {
        struct dhcp_want w = {.xid = 0x1234abcd};

        n = build_dhcp_discover(f, w.xid);
        CHECK(send_frame(nb, f, n) == 0);
        CHECK(wait_frame(&from, is_dhcp_offer, &w, got, sizeof(got)) > 0);
    }

    /* hostfwd: a connection to the host port becomes a SYN toward 10.0.2.15:22. */
    cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(connect(cs, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
    {
        struct tcp_want w = {.dport = 22, .flags_set = TCP_SYN, .flags_clear = TCP_ACK};
        unsigned arp_from = from;

        n = wait_frame(&from, is_tcp, &w, got, sizeof(got));
        if (n == 0 && wait_frame(&arp_from, is_arp_request_for_guest, NULL, got, sizeof(got)))
            fprintf(stderr, "slirp asked for the guest's MAC although it was told\n");
        CHECK(n > 0);
    }
    slirp_port = get16(got + 34);
    slirp_seq = get32(got + 38);

    /* Complete the handshake as the guest; then bytes flow both ways. */
    n = build_tcp(f, 22, slirp_port, guest_seq, slirp_seq + 1, TCP_SYN | TCP_ACK, NULL, 0);
    CHECK(send_frame(nb, f, n) == 0);
    guest_seq++;
    for (int i = 0; i < 3000 && r != 5; i++) {
        r = (int)write(cs, "hello", 5);
        if (r != 5)
            tn_sleep_ms(1);
    }
    CHECK(r == 5);
    {
        struct tcp_want w = {.dport = 22, .flags_set = TCP_ACK, .min_payload = 5};

        n = wait_frame(&from, is_tcp, &w, got, sizeof(got));
        CHECK(n > 0);
        CHECK(n >= 54 + 5 && !memcmp(got + 54 + (size_t)((got[46] >> 4) * 4 - 20), "hello", 5));
    }
    n = build_tcp(f, 22, slirp_port, guest_seq, slirp_seq + 1 + 5, TCP_ACK | TCP_PSH, "world", 5);
    CHECK(send_frame(nb, f, n) == 0);
    {
        char buf[8] = {0};
        ssize_t k = -1;

        for (int i = 0; i < 3000 && k != 5; i++) {
            k = read(cs, buf, 5);
            if (k != 5)
                tn_sleep_ms(1);
        }
        CHECK(k == 5 && !memcmp(buf, "world", 5));
    }
    CHECK_EQ_U64(atomic_load(&col.off_thread), 0);

    /* Malformed frames from the guest: runts and lies in headers, dropped somewhere. */
    memset(f, 0, sizeof(f));
    n = build_arp(f, 1, zero_mac, GUEST_IP, HOST_IP);
    CHECK(send_frame(nb, f, 20) == 0); /* truncated ARP */
    n = build_tcp(f, 22, slirp_port, 0, 0, TCP_ACK, NULL, 0);
    f[14] = 0x4f; /* IHL 60 bytes, longer than the packet */
    CHECK(send_frame(nb, f, n) == 0);
    put16(f + 16, 0xffff); /* total length beyond the frame */
    CHECK(send_frame(nb, f, n) == 0);
    CHECK(send_frame(nb, f, 14) == 0); /* only an Ethernet header */
    CHECK(send_frame(nb, f, 13) == -EMSGSIZE);

    /* Still alive afterwards. */
    from = 0;
    collector_reset();
    n = build_arp(f, 1, zero_mac, GUEST_IP, HOST_IP);
    CHECK(send_frame(nb, f, n) == 0);
    CHECK(wait_frame(&from, is_arp_reply, NULL, got, sizeof(got)) > 0);

    /* Closing with the connection open: the host side sees it end. */
    net_backend_close(nb);
    {
        char c;
        ssize_t k = -1;

        for (int i = 0; i < 3000; i++) {
            k = read(cs, &c, 1);
            if (k == 0 || (k < 0 && errno != EAGAIN))
                break;
            tn_sleep_ms(1);
        }
        CHECK(k == 0 || (k < 0 && errno == ECONNRESET));
    }
    close(cs);
    CHECK_EQ_U64(atomic_load(&col.off_thread), 0);
    loop_destroy(loop);
    collector_reset();
}

/* Back-pressure, on a backend of its own (no TCP connection that could add frames): with
 * the device full, replies queue up to a bound, the rest are dropped and counted; once the
 * device has room the queue drains in order. */
static void test_user_backpressure(void)
{
    struct loop *loop;
    struct net_backend *nb = NULL;
    char err[NET_ERR_LEN];
    static uint8_t f[2048], got[2048];
    static const uint8_t zero_mac[6];
    unsigned from = 0, got_replies = 0;
    struct net_stats st;
    size_t n;

    CHECK(loop_create(&loop) == 0);
    col.loop = loop;
    collector_reset();
    CHECK(net_backend_open("user", loop, &nb, err) == 0);
    net_backend_set_receiver(nb, collect, &col);
    atomic_store(&col.refuse, 1);
    CHECK(loop_start(loop) == 0);
    for (int i = 0; i < 100; i++) {
        n = build_arp(f, 1, zero_mac, GUEST_IP, HOST_IP);
        CHECK(send_frame(nb, f, n) == 0);
    }
    for (int i = 0; i < 3000; i++) {
        net_backend_get_stats(nb, &st);
        if (st.rx_dropped >= 36)
            break;
        tn_sleep_ms(1);
    }
    tn_sleep_ms(20);
    net_backend_get_stats(nb, &st);
    CHECK_EQ_U64(st.rx_dropped, 36); /* 100 replies, 64 held */
    CHECK_EQ_U64(st.tx_frames, 100);
    pthread_mutex_lock(&col.lock);
    CHECK_EQ_U64(col.n, 0);
    pthread_mutex_unlock(&col.lock);
    atomic_store(&col.refuse, 0);
    net_backend_rx_ready(nb);
    while (got_replies < 64 && wait_frame(&from, is_arp_reply, NULL, got, sizeof(got)))
        got_replies++;
    CHECK_EQ_U64(got_replies, 64);
    net_backend_get_stats(nb, &st);
    CHECK_EQ_U64(st.rx_frames, 64);
    CHECK_EQ_U64(atomic_load(&col.off_thread), 0);
    net_backend_close(nb);
    loop_destroy(loop);
    collector_reset();
}

/* A user backend opened and closed on a loop that never runs, and several on one loop. */
static void test_user_lifecycle(void)
{
    struct loop *loop;
    struct net_backend *nb[3];
    char err[NET_ERR_LEN];

    CHECK(loop_create(&loop) == 0);
    CHECK(net_backend_open("user", loop, &nb[0], err) == 0);
    net_backend_close(nb[0]);
    CHECK(loop_start(loop) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(net_backend_open("user", loop, &nb[i], err) == 0);
    tn_sleep_ms(20);
    /* Idle, the loop sleeps: slirp's rounds come at most once a second (its slow timer)
     * plus whatever its TCP timers ask for, not in a busy loop. */
    {
        struct timespec c0, c1;
        uint64_t cpu_ns;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        tn_sleep_ms(300);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        cpu_ns = (uint64_t)(c1.tv_sec - c0.tv_sec) * 1000000000u + (uint64_t)c1.tv_nsec -
                 (uint64_t)c0.tv_nsec;
        CHECK(cpu_ns < 30000000u ||
              !fprintf(stderr, "idle CPU: %llu ns\n", (unsigned long long)cpu_ns));
    }
    for (int i = 0; i < 3; i++)
        net_backend_close(nb[i]);
    loop_destroy(loop);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    test_user();
    test_user_backpressure();
    test_user_lifecycle();
    return test_finish("net_user");
}
