/* The transport under the state stream: a state stream written over mutual TLS reads back
 * exactly; a peer whose certificate comes from another CA, or whose certificate does not name
 * the host dialled, is refused by the handshake, before any payload; a peer that never
 * answers times out; transport_shutdown() frees a writer blocked on a peer that never reads.
 * Certificates are made here, in a temporary folder, with GnuTLS's own X.509 calls. */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "vmm/stream.h"
#include "vmm/transport.h"

static char dir[] = "/tmp/tessera-transport-XXXXXX";

/* ---- certificates ---- */

struct cert {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
};

static void write_pem(const char *name, gnutls_datum_t *d)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    CHECK(f && fwrite(d->data, 1, d->size, f) == d->size);
    if (f)
        fclose(f);
    gnutls_free(d->data);
}

/* A new key and certificate for `cn`, signed by `ca` (NULL: self-signed CA), with the IP
 * 127.0.0.1 as its subject alternative name unless `ip_san` is false. Written as
 * NAME.crt and NAME.key. */
static void make_cert(struct cert *c, const char *name, const char *cn, const struct cert *ca,
                      bool ip_san)
{
    static unsigned serial = 1;
    const unsigned char ip[4] = {127, 0, 0, 1};
    time_t now = time(NULL);
    unsigned char sn[4] = {0, 0, 0, (unsigned char)serial++};
    gnutls_datum_t out;
    char file[64];

    CHECK(gnutls_x509_privkey_init(&c->key) == 0);
    CHECK(gnutls_x509_privkey_generate(c->key, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) == 0);
    CHECK(gnutls_x509_crt_init(&c->crt) == 0);
    gnutls_x509_crt_set_version(c->crt, 3);
    gnutls_x509_crt_set_serial(c->crt, sn, sizeof(sn));
    gnutls_x509_crt_set_activation_time(c->crt, now - 3600);
    gnutls_x509_crt_set_expiration_time(c->crt, now + 86400);
    gnutls_x509_crt_set_dn_by_oid(c->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
    CHECK(gnutls_x509_crt_set_key(c->crt, c->key) == 0);
    if (!ca) {
        gnutls_x509_crt_set_basic_constraints(c->crt, 1, -1);
        gnutls_x509_crt_set_key_usage(c->crt, GNUTLS_KEY_KEY_CERT_SIGN);
        CHECK(gnutls_x509_crt_sign2(c->crt, c->crt, c->key, GNUTLS_DIG_SHA256, 0) == 0);
    } else {
        gnutls_x509_crt_set_basic_constraints(c->crt, 0, -1);
        gnutls_x509_crt_set_key_usage(c->crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
        gnutls_x509_crt_set_key_purpose_oid(c->crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
        gnutls_x509_crt_set_key_purpose_oid(c->crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
        if (ip_san)
            gnutls_x509_crt_set_subject_alt_name(c->crt, GNUTLS_SAN_IPADDRESS, ip, sizeof(ip),
                                                 GNUTLS_FSAN_SET);
        CHECK(gnutls_x509_crt_sign2(c->crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0) == 0);
    }
    CHECK(gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_PEM, &out) == 0);
    snprintf(file, sizeof(file), "%s.crt", name);
    write_pem(file, &out);
    CHECK(gnutls_x509_privkey_export2(c->key, GNUTLS_X509_FMT_PEM, &out) == 0);
    snprintf(file, sizeof(file), "%s.key", name);
    write_pem(file, &out);
}

static void free_cert(struct cert *c)
{
    gnutls_x509_crt_deinit(c->crt);
    gnutls_x509_privkey_deinit(c->key);
}

/* The files of identity NAME trusting CA file CA. The strings live in static storage, one
 * set per slot. */
static struct transport_tls files(int slot, const char *name, const char *ca)
{
    static char p[4][3][256];

    snprintf(p[slot][0], sizeof(p[slot][0]), "%s/%s.crt", dir, name);
    snprintf(p[slot][1], sizeof(p[slot][1]), "%s/%s.key", dir, name);
    snprintf(p[slot][2], sizeof(p[slot][2]), "%s/%s.crt", dir, ca);
    return (struct transport_tls){p[slot][0], p[slot][1], p[slot][2]};
}

/* ---- a server on one end of a socketpair ---- */

struct server {
    int fd;
    struct transport_tls tls;
    int ret;
    char err[TRANSPORT_ERR_LEN];
    struct transport *t;
    bool echo_stream; /* after the handshake: read a state stream and check it */
    bool stream_ok;
};

static void *server_thread(void *opaque)
{
    struct server *s = opaque;
    struct stream_reader *r;
    char *json = NULL;

    s->ret = transport_tls_server(s->fd, &s->tls, &s->t, s->err);
    if (s->ret)
        close(s->fd);
    if (s->ret || !s->echo_stream)
        return NULL;
    if (stream_reader_create_on(s->t, "tls stream", &r) == 0) {
        struct stream_record rec;

        s->stream_ok = stream_read_header(r, &json) == 0 && !strcmp(json, "{\"cpus\": 2}") &&
                       stream_read_next(r, NULL, &rec) == 0 && rec.item == STREAM_ITEM_SECTION &&
                       rec.len == 300000 && rec.payload[299999] == (uint8_t)(299999 % 251) &&
                       stream_read_next(r, NULL, &rec) == 0 && rec.item == STREAM_ITEM_END;
        if (!s->stream_ok)
            fprintf(stderr, "server: %s\n", stream_reader_error(r));
        stream_reader_destroy(r);
    }
    free(json);
    transport_write_all(s->t, "OK\n", 3);
    return NULL;
}

static void set_timeouts(int fd, int secs)
{
    struct timeval tv = {secs, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Runs a handshake between a client with `ct` dialling `host` and a server with `st`. Returns
 * the client's result; *server_ret the server's. */
static int handshake(struct transport_tls ct, const char *host, struct transport_tls st,
                     int *server_ret, char *client_err, char *server_err)
{
    struct server s = {.tls = st};
    struct transport *t = NULL;
    int sv[2], ret;
    pthread_t th;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    set_timeouts(sv[0], 10);
    set_timeouts(sv[1], 10);
    s.fd = sv[1];
    CHECK(pthread_create(&th, NULL, server_thread, &s) == 0);
    ret = transport_tls_client(sv[0], &ct, host, &t, client_err);
    if (ret)
        close(sv[0]);
    /* In TLS 1.3 the client's handshake ends before the server has checked its certificate:
     * a read shows the server's verdict (an alert, or the close). */
    if (ret == 0) {
        char b;

        if (transport_read(t, &b, 1) < 0)
            ret = -EACCES;
    }
    transport_close(t);
    pthread_join(th, NULL);
    transport_close(s.t);
    *server_ret = s.ret;
    snprintf(server_err, TRANSPORT_ERR_LEN, "%s", s.err);
    return ret;
}

static void test_stream_over_tls(void)
{
    struct server s = {.tls = files(0, "target", "ca"), .echo_stream = true};
    struct transport_tls ct = files(1, "source", "ca");
    struct stream_writer *w;
    struct transport *t = NULL;
    char err[TRANSPORT_ERR_LEN], line[4] = "";
    uint8_t *payload = malloc(300000);
    int sv[2];
    pthread_t th;

    for (unsigned i = 0; i < 300000; i++)
        payload[i] = (uint8_t)(i % 251);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    set_timeouts(sv[0], 10);
    set_timeouts(sv[1], 10);
    s.fd = sv[1];
    CHECK(pthread_create(&th, NULL, server_thread, &s) == 0);
    CHECK(transport_tls_client(sv[0], &ct, "127.0.0.1", &t, err) == 0);
    CHECK(t && transport_is_tls(t));
    if (t) {
        CHECK(stream_writer_create_on(t, "tls stream", 1, &w) == 0);
        CHECK(stream_write_header(w, "{\"cpus\": 2}", 0) == 0);
        CHECK(stream_write_section(w, "big", 1, payload, 300000) == 0);
        CHECK(stream_write_end(w) == 0);
        stream_writer_destroy(w);
        CHECK(transport_bytes_written(t) > 300000); /* the payload and its framing */
        transport_end_writes(t);
        CHECK(transport_read(t, line, 3) == 3 && !memcmp(line, "OK\n", 3));
    }
    pthread_join(th, NULL);
    CHECK(s.ret == 0);
    CHECK(s.stream_ok);
    transport_close(t);
    transport_close(s.t);
    free(payload);
}

static void test_refusals(void)
{
    char cerr[TRANSPORT_ERR_LEN], serr[TRANSPORT_ERR_LEN];
    int sret;

    /* A target whose certificate is from another CA: the source refuses it. */
    CHECK(handshake(files(0, "source", "ca"), "127.0.0.1", files(1, "rogue", "rogue-ca"), &sret,
                    cerr, serr) == -EACCES);
    CHECK(strstr(cerr, "the target's certificate is not accepted") != NULL);
    CHECK(sret != 0);

    /* A source whose certificate is from another CA: the target refuses it (GnuTLS does not
     * even offer a certificate the server has not named a CA for). */
    CHECK(handshake(files(0, "rogue", "ca"), "127.0.0.1", files(1, "target", "ca"), &sret, cerr,
                    serr) != 0);
    CHECK(sret == -EACCES);
    CHECK(strstr(serr, "the source sent no certificate from a CA we trust") != NULL);

    /* A target with a good certificate that names another host. */
    CHECK(handshake(files(0, "source", "ca"), "127.0.0.1", files(1, "noname", "ca"), &sret, cerr,
                    serr) == -EACCES);
    CHECK(strstr(cerr, "not accepted") != NULL);

    /* Files that do not load are named. */
    {
        struct transport_tls bad = files(2, "missing", "ca");

        CHECK(transport_tls_check(&bad, cerr) == -ENOENT);
        CHECK(strstr(cerr, "missing.crt") != NULL);
        bad = files(2, "source", "source");     /* a leaf is not a CA, but it does load */
        bad.key = files(3, "target", "ca").key; /* the key of another certificate */
        CHECK(transport_tls_check(&bad, cerr) == -EINVAL);
        CHECK(strstr(cerr, "target.key") != NULL);
    }
}

/* A peer that accepts the connection and never answers: the handshake times out. */
static void test_handshake_timeout(void)
{
    struct transport_tls ct = files(0, "source", "ca");
    struct transport *t = NULL;
    char err[TRANSPORT_ERR_LEN];
    int sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    set_timeouts(sv[0], 1);
    CHECK(transport_tls_client(sv[0], &ct, "127.0.0.1", &t, err) == -ETIMEDOUT);
    CHECK(t == NULL);
    close(sv[0]);
    close(sv[1]);
}

struct blocked {
    struct transport *t;
    int ret;
};

static void *write_forever(void *opaque)
{
    struct blocked *b = opaque;
    static char chunk[65536];

    for (;;) {
        ssize_t n = transport_write(b->t, chunk, sizeof(chunk));

        if (n < 0) {
            b->ret = (int)n;
            return NULL;
        }
    }
}

/* A writer blocked on a peer that never reads: shutdown frees it at once, with no timeout. */
static void test_shutdown_frees_writer(void)
{
    struct blocked b = {NULL, 0};
    struct timespec ts = {0, 200000000L};
    int sv[2];
    pthread_t th;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(transport_plain(sv[0], true, &b.t) == 0);
    CHECK(pthread_create(&th, NULL, write_forever, &b) == 0);
    nanosleep(&ts, NULL); /* the buffer fills; the thread blocks (or will) */
    transport_shutdown(b.t);
    pthread_join(th, NULL);
    CHECK(b.ret == -EPIPE);
    transport_close(b.t);
    close(sv[1]);
}

/* Plain transport over a socket with a send timeout: a peer that never reads gives
 * -ETIMEDOUT, the progress timeout of a migration. */
static void test_plain_timeout(void)
{
    struct blocked b = {NULL, 0};
    int sv[2];
    pthread_t th;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    set_timeouts(sv[0], 1);
    CHECK(transport_plain(sv[0], true, &b.t) == 0);
    CHECK(pthread_create(&th, NULL, write_forever, &b) == 0);
    pthread_join(th, NULL);
    CHECK(b.ret == -ETIMEDOUT);
    CHECK(strstr(transport_error(b.t, b.ret), "no byte moved") != NULL);
    transport_close(b.t);
    close(sv[1]);
}

int main(void)
{
    struct cert ca, rogue_ca, target, source, rogue, noname;
    char cmd[300];

    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_cert(&ca, "ca", "Tessera test CA", NULL, false);
    make_cert(&rogue_ca, "rogue-ca", "Another CA", NULL, false);
    make_cert(&target, "target", "target", &ca, true);
    make_cert(&source, "source", "source", &ca, true);
    make_cert(&rogue, "rogue", "rogue", &rogue_ca, true);
    make_cert(&noname, "noname", "noname", &ca, false);

    test_stream_over_tls();
    test_refusals();
    test_handshake_timeout();
    test_shutdown_frees_writer();
    test_plain_timeout();

    free_cert(&ca);
    free_cert(&rogue_ca);
    free_cert(&target);
    free_cert(&source);
    free_cert(&rogue);
    free_cert(&noname);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("transport");
}
