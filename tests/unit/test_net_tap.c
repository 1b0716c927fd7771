/* The tap backend on a real tap. Needs root (CAP_NET_ADMIN) and /dev/net/tun; otherwise it
 * prints why it skips and passes. It creates a tap with `ip tuntap add`, brings it up, and
 * checks with an AF_PACKET socket on the host side: a frame the backend sends arrives on the
 * interface, a frame sent out of the interface reaches the receiver (on the loop thread),
 * back-pressure holds frames without loss, a second opener and a tun device are refused with
 * clear errors, and deleting the interface under the backend takes the link down cleanly. */
#include "test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "test_net_common.h"

#define ETH_P_TEST 0x88b5 /* IEEE 802 local experimental ethertype 1: no stack answers it */

static char tap_name[IFNAMSIZ], tun_name[IFNAMSIZ];

static int run(const char *fmt, const char *name)
{
    char cmd[160];

    snprintf(cmd, sizeof(cmd), fmt, name, name);
    return system(cmd);
}

static void cleanup(void)
{
    if (tap_name[0])
        run("ip link del dev %s >/dev/null 2>&1", tap_name);
    if (tun_name[0])
        run("ip link del dev %s >/dev/null 2>&1", tun_name);
}

/* Why the test cannot run here, or NULL. */
static const char *skip_reason(void)
{
    if (geteuid() != 0)
        return "not root";
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        return "no /dev/net/tun";
    if (system("ip -V >/dev/null 2>&1") != 0)
        return "no ip(8)";
    return NULL;
}

/* An AF_PACKET socket on the tap, for ETH_P_TEST frames only. */
static int host_socket(int ifindex)
{
    struct sockaddr_ll ll = {
        .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_TEST), .sll_ifindex = ifindex};
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_TEST));

    CHECK(s >= 0);
    CHECK(bind(s, (struct sockaddr *)&ll, sizeof(ll)) == 0);
    return s;
}

static ssize_t host_recv(int s, uint8_t *buf, size_t len)
{
    for (int i = 0; i < 2000; i++) {
        ssize_t n = recv(s, buf, len, 0);

        if (n >= 0 || errno != EAGAIN)
            return n;
        tn_sleep_ms(1);
    }
    return -1;
}

static void host_send(int s, int ifindex, uint32_t seq, size_t len)
{
    static uint8_t f[1514];
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};

    tf_fill(f, seq, len);
    CHECK(sendto(s, f, len, 0, (struct sockaddr *)&ll, sizeof(ll)) == (ssize_t)len);
}

static void test_tap(void)
{
    struct loop *loop;
    struct net_backend *nb = NULL, *nb2 = NULL;
    char spec[64], err[NET_ERR_LEN], want[NET_ERR_LEN];
    static uint8_t buf[2048];
    struct sink s;
    int hs, ifindex;
    ssize_t n;

    CHECK(loop_create(&loop) == 0);
    CHECK(loop_start(loop) == 0);
    snprintf(spec, sizeof(spec), "tap,ifname=%s", tap_name);
    CHECK(net_backend_open(spec, loop, &nb, err) == 0 || !fprintf(stderr, "%s\n", err));
    if (!nb)
        goto out;
    CHECK(!strcmp(net_backend_kind(nb), "tap"));
    sink_init(&s, loop, nb);
    net_backend_set_receiver(nb, sink_receive, &s);
    CHECK(run("ip link set dev %s up", tap_name) == 0);
    ifindex = (int)if_nametoindex(tap_name);
    hs = host_socket(ifindex);

    /* Backend -> host. */
    CHECK(tf_send(nb, 7, 1000) == 0);
    n = host_recv(hs, buf, sizeof(buf));
    CHECK(n == 1000);
    CHECK_EQ_U64(tf_check(buf, (size_t)n), 7);

    /* Host -> backend, many, in order. */
    for (uint32_t i = 0; i < 50; i++)
        host_send(hs, ifindex, i, tf_len(i, 1514));
    CHECK(tn_wait(&s.taken, 50, 3000));
    CHECK_EQ_U64(atomic_load(&s.bad), 0);
    CHECK_EQ_U64(atomic_load(&s.out_of_order), 0);
    CHECK_EQ_U64(atomic_load(&s.off_thread), 0);

    /* Back-pressure: one offer, nothing lost, resumed by rx_ready. */
    atomic_store(&s.mode, SINK_REFUSE);
    {
        unsigned c0 = atomic_load(&s.calls);

        for (uint32_t i = 50; i < 70; i++)
            host_send(hs, ifindex, i, 200);
        CHECK(tn_wait(&s.calls, c0 + 1, 3000));
        tn_sleep_ms(50);
        CHECK(atomic_load(&s.calls) - c0 >= 1 && atomic_load(&s.calls) - c0 <= 2);
        CHECK_EQ_U64(atomic_load(&s.taken), 50);
        atomic_store(&s.mode, SINK_ACCEPT);
        net_backend_rx_ready(nb);
        CHECK(tn_wait(&s.taken, 70, 3000));
        CHECK_EQ_U64(atomic_load(&s.out_of_order), 0);
    }

    /* A second opener is refused. */
    snprintf(want, sizeof(want), "tap: ifname: '%s' is in use by another process", tap_name);
    CHECK(net_backend_open(spec, loop, &nb2, err) == -EBUSY);
    CHECK(!strcmp(err, want) || !fprintf(stderr, "got '%s'\n", err));

    /* A tun is no tap. */
    CHECK(run("ip tuntap add dev %s mode tun", tun_name) == 0);
    snprintf(spec, sizeof(spec), "tap,ifname=%s", tun_name);
    snprintf(want, sizeof(want),
             "tap: ifname: '%s' is not a tap interface (a tun, or another kind of device?)",
             tun_name);
    CHECK(net_backend_open(spec, loop, &nb2, err) == -EINVAL);
    CHECK(!strcmp(err, want) || !fprintf(stderr, "got '%s'\n", err));

    /* The interface deleted under the backend: the link goes down, nothing spins. */
    close(hs);
    /* `ip tuntap del` would need to attach to it, which our open fd prevents. */
    CHECK(run("ip link del dev %s", tap_name) == 0);
    {
        uint8_t f[60] = {0};
        struct iovec iov = {.iov_base = f, .iov_len = sizeof(f)};
        int r = 0;

        for (int i = 0; i < 2000 && r != -ENOTCONN; i++) {
            r = net_backend_send(nb, &iov, 1);
            tn_sleep_ms(1);
        }
        CHECK(r == -ENOTCONN);
    }
    net_backend_close(nb);
out:
    loop_destroy(loop);
}

int main(void)
{
    const char *why = skip_reason();

    if (why) {
        printf("net_tap: skipped (%s): needs root, /dev/net/tun and ip(8)\n", why);
        return test_finish("net_tap");
    }
    snprintf(tap_name, sizeof(tap_name), "tsrtap%u", (unsigned)getpid() % 100000);
    snprintf(tun_name, sizeof(tun_name), "tsrtun%u", (unsigned)getpid() % 100000);
    if (run("ip tuntap add dev %s mode tap", tap_name) != 0) {
        tap_name[0] = '\0';
        printf("net_tap: skipped: 'ip tuntap add' failed (no CAP_NET_ADMIN in this namespace?)\n");
        return test_finish("net_tap");
    }
    /* No IPv6 chatter (router solicitations, MLD) on the test interface. */
    run("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1 >/dev/null 2>&1", tap_name);
    log_set_level(LOG_ERROR);
    test_tap();
    cleanup();
    return test_finish("net_tap");
}
