/* The network spec parser against golden results (accepted, or the exact one-line error),
 * input that must be quoted safely in messages, the length limit, the port and HOST:PORT
 * helpers, and the errors that only opening can find (each naming the key and the fix). */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/loop.h"
#include "net/net.h"
#include "net/netspec.h"

struct golden {
    const char *spec;
    const char *err; /* "" when the spec must parse */
};

static const struct golden golden[] = {
    {"", "empty network spec (expected user, tap or socket)"},
    {"user", ""},
    {"user,hostfwd=tcp::2222-:22", ""},
    {"user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.0.2.15:53", ""},
    {"user,hostfwd=::8080-:80", ""},
    {"user,hostfwd=udp::2222-:22,hostfwd=tcp::2222-:22", ""},
    {"user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.2:2222-:23", ""},
    {"tap,ifname=tap0", ""},
    {"socket,fd=3", ""},
    {"socket,connect=127.0.0.1:1234", ""},
    {"socket,connect=[::1]:1234", ""},
    {"socket,connect=example.com:80", ""},
    {"socket,listen=:1234", ""},
    {"socket,listen=0.0.0.0:1234", ""},
    {"socket,udp=127.0.0.1:1234,localaddr=127.0.0.1:1235", ""},
    {"socket,udp=127.0.0.1:1234,localaddr=:1235", ""},
    {"foo", "unknown network backend 'foo' (expected user, tap or socket)"},
    {"foo,bar=1", "unknown network backend 'foo' (expected user, tap or socket)"},
    {"User", "unknown network backend 'User' (expected user, tap or socket)"},
    {"user,", "user: empty option (a stray ',')"},
    {"user,,hostfwd=tcp::1-:2", "user: empty option (a stray ',')"},
    {"user,hostfwd", "user: hostfwd: missing '=VALUE'"},
    {"user,=x", "user: option '=x' has no key"},
    {"user,restrict=on", "user: unknown key 'restrict' (valid keys: hostfwd)"},
    {"user,hostfwd=",
     "user: hostfwd: '' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"},
    {"user,hostfwd=tcp",
     "user: hostfwd: 'tcp' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"},
    {"user,hostfwd=sctp::1-:2", "user: hostfwd: protocol 'sctp' is neither tcp nor udp"},
    {"user,hostfwd=tcp::2222",
     "user: hostfwd: 'tcp::2222' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"},
    {"user,hostfwd=tcp:2222-:22", "user: hostfwd: host side '2222' lacks ':PORT' (expected "
                                  "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)"},
    {"user,hostfwd=tcp::0-:22", "user: hostfwd: host port '0' is not a number in 1..65535"},
    {"user,hostfwd=tcp::65536-:22", "user: hostfwd: host port '65536' is not a number in 1..65535"},
    {"user,hostfwd=tcp::22x-:22", "user: hostfwd: host port '22x' is not a number in 1..65535"},
    {"user,hostfwd=tcp::2222-:", "user: hostfwd: guest port '' is not a number in 1..65535"},
    {"user,hostfwd=tcp::2222-22", "user: hostfwd: guest side '22' lacks ':PORT' (expected "
                                  "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)"},
    {"user,hostfwd=tcp:localhost:2222-:22",
     "user: hostfwd: host address 'localhost' is not an IPv4 address"},
    {"user,hostfwd=tcp::2222-192.168.1.2:22",
     "user: hostfwd: guest address 192.168.1.2 is outside the guest network 10.0.2.0/24"},
    {"user,hostfwd=tcp:1.2.3.4.5:2222-:22",
     "user: hostfwd: host address '1.2.3.4.5' is not an IPv4 address"},
    {"user,hostfwd=tcp::2222-:22,hostfwd=tcp::2222-:23",
     "user: hostfwd: tcp host port 2222 is forwarded twice"},
    {"user,hostfwd=tcp::2222-:22,hostfwd=tcp:127.0.0.1:2222-:23",
     "user: hostfwd: tcp host port 2222 is forwarded twice"},
    {"tap", "tap: missing ifname=NAME (an existing tap interface)"},
    {"tap,ifname=",
     "tap: ifname: '' is not an interface name (1 to 15 characters, no '/', ':' or spaces)"},
    {"tap,ifname=a/b",
     "tap: ifname: 'a/b' is not an interface name (1 to 15 characters, no '/', ':' or spaces)"},
    {"tap,ifname=0123456789abcdef", "tap: ifname: '0123456789abcdef' is not an interface name (1 "
                                    "to 15 characters, no '/', ':' or spaces)"},
    {"tap,ifname=tap0,ifname=tap1", "tap: ifname: given twice"},
    {"tap,name=tap0", "tap: unknown key 'name' (valid keys: ifname)"},
    {"socket", "socket: needs one of fd=N, connect=HOST:PORT, listen=HOST:PORT or udp=HOST:PORT"},
    {"socket,fd=abc", "socket: fd: 'abc' is not a file descriptor number"},
    {"socket,fd=-1", "socket: fd: '-1' is not a file descriptor number"},
    {"socket,fd=99999999999", "socket: fd: '99999999999' is not a file descriptor number"},
    {"socket,fd=3,connect=1.2.3.4:5",
     "socket: connect: conflicts with fd= (give one of fd=, connect=, listen=, udp=)"},
    {"socket,connect=1.2.3.4",
     "socket: connect: '1.2.3.4' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])"},
    {"socket,connect=:5", "socket: connect: ':5' lacks the HOST"},
    {"socket,connect=1.2.3.4:0",
     "socket: connect: '1.2.3.4:0' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])"},
    {"socket,connect=[::1:5",
     "socket: connect: '[::1:5' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])"},
    {"socket,connect=[zz]:5",
     "socket: connect: '[zz]:5' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])"},
    {"socket,connect=a b:5",
     "socket: connect: 'a b:5' is not HOST:PORT (PORT 1..65535, an IPv6 HOST in [])"},
    {"socket,listen=:1,listen=:2", "socket: listen: given twice"},
    {"socket,udp=1.2.3.4:5", "socket: udp: needs localaddr=HOST:PORT too"},
    {"socket,localaddr=:5,connect=1.2.3.4:5", "socket: localaddr: only valid with udp="},
    {"socket,mcast=230.0.0.1:1234",
     "socket: unknown key 'mcast' (valid keys: fd, connect, listen, udp, localaddr)"},
};

static void test_golden(void)
{
    for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
        struct net_spec s;
        char err[NET_ERR_LEN];
        int r = netspec_parse(golden[i].spec, &s, err);

        if (golden[i].err[0]) {
            CHECK(r == -EINVAL);
            if (strcmp(err, golden[i].err)) {
                fprintf(stderr, "spec '%s':\n  got  '%s'\n  want '%s'\n", golden[i].spec, err,
                        golden[i].err);
                CHECK(!"golden error message");
            }
        } else {
            if (r != 0)
                fprintf(stderr, "spec '%s' rejected: %s\n", golden[i].spec, err);
            CHECK(r == 0);
            CHECK(s.ops != NULL && s.cfg != NULL);
            netspec_free(&s);
        }
    }
}

static void expect_err(const char *spec, const char *want)
{
    struct net_spec s;
    char err[NET_ERR_LEN];

    CHECK(netspec_parse(spec, &s, err) == -EINVAL);
    if (strcmp(err, want)) {
        fprintf(stderr, "got  '%s'\nwant '%s'\n", err, want);
        CHECK(!"error message");
    }
}

static void test_hostile_text(void)
{
    char spec[NET_SPEC_MAX + 64], want[NET_ERR_LEN];

    /* Control bytes and non-ASCII never reach the terminal ("?\?" is no trigraph). */
    expect_err("tap,ifname=a\x01\x1b[2J\xff",
               "tap: ifname: 'a?\?[2J?' is not an interface name (1 to 15 characters, no '/', "
               "':' or spaces)");
    expect_err("\x7f\x80", "unknown network backend '?\?' (expected user, tap or socket)");
    /* Long values are cut at 48 bytes. */
    snprintf(spec, sizeof(spec), "user,%0100d=1", 0);
    snprintf(want, sizeof(want), "user: unknown key '%048d...' (valid keys: hostfwd)", 0);
    expect_err(spec, want);
    /* 64 forwards are fine, the 65th is not. */
    strcpy(spec, "user");
    for (int i = 0; i < 64; i++)
        snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), ",hostfwd=tcp::%d-:22",
                 10000 + i);
    {
        struct net_spec s;
        char err[NET_ERR_LEN];

        CHECK(netspec_parse(spec, &s, err) == 0);
        netspec_free(&s);
    }
    strcat(spec, ",hostfwd=tcp::20000-:22");
    expect_err(spec, "user: hostfwd: more than 64 forwards");
    /* The length limit, and exactly at it. */
    memset(spec, 'x', NET_SPEC_MAX + 1);
    spec[NET_SPEC_MAX + 1] = '\0';
    expect_err(spec, "network spec is longer than 4096 bytes");
    memcpy(spec, "tap,ifname=", 11);
    spec[NET_SPEC_MAX] = '\0';
    expect_err(spec, "tap: ifname: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not an "
                     "interface name (1 to 15 characters, no '/', ':' or spaces)");
    expect_err(NULL, "empty network spec (expected user, tap or socket)");
}

static void test_helpers(void)
{
    char host[NETSPEC_HOST_MAX], buf[64], big[400];
    uint16_t port = 0;
    unsigned long v = 0;

    CHECK(netspec_parse_port("1", &port) == 0 && port == 1);
    CHECK(netspec_parse_port("65535", &port) == 0 && port == 65535);
    CHECK(netspec_parse_port("065535", &port) == 0 && port == 65535);
    CHECK(netspec_parse_port("65536", &port) == -EINVAL);
    CHECK(netspec_parse_port("0", &port) == -EINVAL);
    CHECK(netspec_parse_port("", &port) == -EINVAL);
    CHECK(netspec_parse_port("+1", &port) == -EINVAL);
    CHECK(netspec_parse_port(" 1", &port) == -EINVAL);
    CHECK(netspec_parse_uint("18446744073709551615", ~0ul, &v) == 0 && v == ~0ul);
    CHECK(netspec_parse_uint("18446744073709551616", ~0ul, &v) == -EINVAL);
    CHECK(netspec_parse_uint("2147483648", 2147483647, &v) == -EINVAL);

    CHECK(netspec_parse_hostport("h:1", host, &port) == 0 && !strcmp(host, "h") && port == 1);
    CHECK(netspec_parse_hostport(":80", host, &port) == 0 && !host[0] && port == 80);
    CHECK(netspec_parse_hostport("[fe80::1]:22", host, &port) == 0 && !strcmp(host, "fe80::1"));
    CHECK(netspec_parse_hostport("[]:22", host, &port) == -EINVAL);
    CHECK(netspec_parse_hostport("[::1]22", host, &port) == -EINVAL);
    CHECK(netspec_parse_hostport("::1:22", host, &port) == -EINVAL);
    CHECK(netspec_parse_hostport("h", host, &port) == -EINVAL);
    memset(big, 'a', sizeof(big));
    memcpy(big + 300, ":1", 3);
    CHECK(netspec_parse_hostport(big, host, &port) == -EINVAL); /* host too long */
    memcpy(big + 255, ":1", 3);
    CHECK(netspec_parse_hostport(big, host, &port) == 0 && strlen(host) == 255);

    CHECK(!strcmp(netspec_quote("ok", buf, sizeof(buf)), "ok"));
    CHECK(!strcmp(netspec_quote("", buf, sizeof(buf)), ""));
    CHECK(!strcmp(netspec_quote("x", buf, 10), "")); /* too small a buffer: empty */
}

/* Errors found only when opening: they name the key and say what to do. */
static void expect_open_err(struct loop *loop, const char *spec, int want_r, const char *want)
{
    struct net_backend *nb = NULL;
    char err[NET_ERR_LEN];
    int r = net_backend_open(spec, loop, &nb, err);
    size_t n = strlen(want);

    CHECK(r == want_r);
    CHECK(nb == NULL);
    /* A trailing '*' matches any rest (resolver wording varies between hosts). */
    if (n && want[n - 1] == '*' ? strncmp(err, want, n - 1) : strcmp(err, want)) {
        fprintf(stderr, "open '%s':\n  got  '%s' (%d)\n  want '%s'\n", spec, err, r, want);
        CHECK(!"open error message");
    }
}

static void test_open_errors(void)
{
    struct loop *loop;
    char spec[128], want[NET_ERR_LEN];
    int p[2], s, port;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);

    CHECK(loop_create(&loop) == 0);
    expect_open_err(loop, "bogus", -EINVAL,
                    "unknown network backend 'bogus' (expected user, tap or socket)");
    CHECK(pipe(p) == 0);
    snprintf(spec, sizeof(spec), "socket,fd=%d", p[0]);
    snprintf(want, sizeof(want), "socket: fd: %d is not a socket", p[0]);
    expect_open_err(loop, spec, -ENOTSOCK, want);
    CHECK(fcntl(p[0], F_GETFD) >= 0); /* not taken over on failure */
    close(p[0]);
    close(p[1]);
    /* A closed fd: not a low number, which opening itself may reuse for its eventfd. */
    close(999);
    expect_open_err(loop, "socket,fd=999", -EBADF,
                    "socket: fd: 999 is not an open file descriptor");

    /* A port nobody listens on: bind one, learn its number, close it. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    close(s);
    snprintf(spec, sizeof(spec), "socket,connect=127.0.0.1:%d", port);
    snprintf(want, sizeof(want),
             "socket: connect: cannot connect to 127.0.0.1:%d: Connection refused", port);
    expect_open_err(loop, spec, -ECONNREFUSED, want);

    /* A port in use, for listen= and for hostfwd. */
    s = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(s, 1) == 0);
    sl = sizeof(sa);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &sl) == 0);
    port = ntohs(sa.sin_port);
    snprintf(spec, sizeof(spec), "socket,listen=127.0.0.1:%d", port);
    snprintf(want, sizeof(want), "socket: listen: cannot bind 127.0.0.1:%d: Address already in use",
             port);
    expect_open_err(loop, spec, -EADDRINUSE, want);
    snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%d-:22", port);
    snprintf(want, sizeof(want),
             "user: hostfwd: cannot listen on tcp 127.0.0.1:%d: Address already in use", port);
    expect_open_err(loop, spec, -EADDRINUSE, want);
    close(s);

    expect_open_err(loop, "socket,connect=no-such-host.invalid:80", -EHOSTUNREACH,
                    "socket: connect: cannot resolve no-such-host.invalid:80: *");
    expect_open_err(loop, "tap,ifname=tsrnosuch0", -ENODEV,
                    "tap: ifname: there is no interface 'tsrnosuch0' (create it: ip tuntap add "
                    "dev tsrnosuch0 mode tap)");
    /* lo exists but is no tap: EINVAL from TUNSETIFF, or EPERM without CAP_NET_ADMIN, or no
     * /dev/net/tun at all. Whichever, the message names the interface or the device. */
    {
        struct net_backend *nb = NULL;
        char err[NET_ERR_LEN];

        CHECK(net_backend_open("tap,ifname=lo", loop, &nb, err) < 0);
        CHECK(strstr(err, "'lo'") != NULL || strstr(err, "/dev/net/tun") != NULL);
    }
    loop_destroy(loop);
}

int main(void)
{
    test_golden();
    test_hostile_text();
    test_helpers();
    test_open_errors();
    return test_finish("net_spec");
}
