/* The TLS kind of transport (transport.h): a GnuTLS session over a connected socket, with
 * mutual certificate checks in the handshake. */
#include "vmm/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "base/hostfs.h"
#include "vmm/transport_int.h"

struct tls_state {
    gnutls_session_t session; /* NULL until made */
    gnutls_certificate_credentials_t cred;
};

static struct tls_state *tls_of(struct transport *t)
{
    return t->priv;
}

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, TRANSPORT_ERR_LEN, fmt, ap);
    va_end(ap);
}

#define TLS_FILE_MAX (1u << 20) /* a PEM file larger than this is not a certificate or key */

/* Reads a whole PEM file through the host-file door (base/hostfs.h), so that a sandboxed VMM
 * reads the files its original user can (the broker opens them). 0 and d (free d->data), or
 * -errno with err naming the file. */
static int read_pem(const char *path, gnutls_datum_t *d, char *err)
{
    int fd = hostfs_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    unsigned char *buf = NULL;
    size_t len = 0;
    int ret;

    if (fd < 0) {
        ret = -errno;
        set_err(err, "%s: %s", path, strerror(errno));
        return ret;
    }
    buf = malloc(TLS_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, TLS_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            set_err(err, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > TLS_FILE_MAX) {
            ret = -EFBIG;
            set_err(err, "%s: larger than %u bytes: not a PEM certificate or key", path,
                    TLS_FILE_MAX);
            goto fail;
        }
    }
    close(fd);
    d->data = buf;
    d->size = (unsigned)len;
    return 0;

fail:
    close(fd);
    free(buf);
    return ret;
}

/* Loads the three files into new credentials. 0 or -errno with err naming the file. */
static int load_cred(const struct transport_tls *tls, gnutls_certificate_credentials_t *out,
                     char *err)
{
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0}, ca = {NULL, 0};
    int e, ret = -EINVAL;

    if (!tls->cert || !tls->key || !tls->ca) {
        set_err(err, "TLS needs a certificate, its key and a CA file");
        return -EINVAL;
    }
    if ((ret = read_pem(tls->cert, &cert, err)) || (ret = read_pem(tls->key, &key, err)) ||
        (ret = read_pem(tls->ca, &ca, err)))
        goto free_files;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        set_err(err, "out of memory");
        ret = -ENOMEM;
        goto free_files;
    }
    ret = -EINVAL;
    e = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
    if (e <= 0) {
        set_err(err, "%s: no CA certificate in it (%s)", tls->ca,
                e < 0 ? gnutls_strerror(e) : "expected PEM");
        goto free_cred;
    }
    e = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (e < 0) {
        set_err(err, "%s with key %s: %s (expected a PEM certificate and its unencrypted key)",
                tls->cert, tls->key, gnutls_strerror(e));
        goto free_cred;
    }
    *out = cred;
    ret = 0;
    goto free_files;

free_cred:
    gnutls_certificate_free_credentials(cred);
free_files:
    free(cert.data);
    if (key.data)
        explicit_bzero(key.data, key.size); /* the private key does not linger in the heap */
    free(key.data);
    free(ca.data);
    return ret;
}

int transport_tls_check(const struct transport_tls *tls, char *err)
{
    gnutls_certificate_credentials_t cred;
    int ret = load_cred(tls, &cred, err);

    if (ret == 0)
        gnutls_certificate_free_credentials(cred);
    return ret;
}

/* Why the handshake failed, in words, and the errno that fits. */
static int handshake_error(struct transport *t, int e, bool server, char *err)
{
    const char *peer = server ? "the source" : "the target";

    if (e == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t why = {NULL, 0};
        unsigned status = gnutls_session_get_verify_cert_status(tls_of(t)->session);

        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) < 0)
            why.data = NULL;
        /* GnuTLS ends its sentences with ". ": keep the line tidy. */
        while (why.data && why.size &&
               (why.data[why.size - 1] == ' ' || why.data[why.size - 1] == 0))
            why.data[--why.size] = 0;
        set_err(err, "TLS: %s's certificate is not accepted: %s", peer,
                why.data ? (const char *)why.data : "verification failed");
        gnutls_free(why.data);
        return -EACCES;
    }
    if (e == GNUTLS_E_NO_CERTIFICATE_FOUND || e == GNUTLS_E_CERTIFICATE_REQUIRED) {
        set_err(err, "TLS: %s sent no certificate from a CA we trust", peer);
        return -EACCES;
    }
    if (e == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        set_err(err,
                "TLS: %s refused the handshake (alert: %s; is our certificate from the CA it "
                "trusts?)",
                peer, gnutls_alert_get_name(gnutls_alert_get(tls_of(t)->session)));
        return -EACCES;
    }
    if (e == GNUTLS_E_AGAIN) {
        set_err(err, "TLS: %s did not complete the handshake in time", peer);
        return -ETIMEDOUT;
    }
    if (e == GNUTLS_E_PREMATURE_TERMINATION || e == GNUTLS_E_PUSH_ERROR ||
        e == GNUTLS_E_PULL_ERROR) {
        set_err(err,
                "TLS handshake with %s failed: it closed the connection (did it refuse our "
                "certificate?)",
                peer);
        return -ECONNRESET;
    }
    set_err(err, "TLS handshake with %s failed: %s", peer, gnutls_strerror(e));
    return -EPROTO;
}

/* A GnuTLS record error as -errno, keeping its words in t->msg. */
static ssize_t tls_errno(struct transport *t, ssize_t e)
{
    if (e == GNUTLS_E_AGAIN)
        return -ETIMEDOUT;
    snprintf(t->msg, sizeof(t->msg), "TLS: %s", gnutls_strerror((int)e));
    if (e == GNUTLS_E_PUSH_ERROR || e == GNUTLS_E_PULL_ERROR)
        return -EPIPE;
    return -EPROTO;
}

static ssize_t tls_read(struct transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = gnutls_record_recv(tls_of(t)->session, buf, len);

        if (n == GNUTLS_E_INTERRUPTED)
            continue;
        /* A peer that closed without close_notify: the stream's own end record says whether
         * anything is missing. */
        if (n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return n < 0 ? tls_errno(t, n) : n;
    }
}

static ssize_t tls_write(struct transport *t, const void *buf, size_t len)
{
    for (;;) {
        ssize_t n = gnutls_record_send(tls_of(t)->session, buf, len);

        if (n == GNUTLS_E_INTERRUPTED)
            continue;
        return n < 0 ? tls_errno(t, n) : n;
    }
}

static void tls_end_writes(struct transport *t)
{
    gnutls_bye(tls_of(t)->session, GNUTLS_SHUT_WR);
}

static void tls_destroy(struct transport *t)
{
    struct tls_state *s = tls_of(t);

    if (!s)
        return;
    if (s->session)
        gnutls_deinit(s->session);
    if (s->cred)
        gnutls_certificate_free_credentials(s->cred);
    free(s);
}

static const struct transport_ops tls_ops = {
    .tls = true,
    .read = tls_read,
    .write = tls_write,
    .end_writes = tls_end_writes,
    .destroy = tls_destroy,
};

static int tls_open(int fd, const struct transport_tls *tls, const char *server_name,
                    struct transport **out, char *err)
{
    bool server = server_name == NULL;
    struct transport *t = transport_new(&tls_ops, fd);
    struct tls_state *s = calloc(1, sizeof(*s));
    int e, ret;

    if (!t || !s) {
        free(t);
        free(s);
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    t->priv = s;
    ret = load_cred(tls, &s->cred, err);
    if (ret)
        goto fail;
    if (gnutls_init(&s->session, server ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0) {
        s->session = NULL;
        set_err(err, "out of memory");
        ret = -ENOMEM;
        goto fail;
    }
    if ((e = gnutls_set_default_priority(s->session)) < 0 ||
        (e = gnutls_credentials_set(s->session, GNUTLS_CRD_CERTIFICATE, s->cred)) < 0) {
        set_err(err, "TLS set-up: %s", gnutls_strerror(e));
        ret = -EPROTO;
        goto fail;
    }
    /* Mutual: the server demands a certificate; both check the peer's chain against the CA
     * (and the client the name it dialled) inside the handshake, which fails otherwise. */
    if (server)
        gnutls_certificate_server_set_request(s->session, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(s->session, server_name, 0);
    gnutls_transport_set_int(s->session, fd);
    do
        e = gnutls_handshake(s->session);
    while (e == GNUTLS_E_INTERRUPTED);
    if (e < 0) {
        ret = handshake_error(t, e, server, err);
        goto fail;
    }
    t->owns_fd = true;
    *out = t;
    return 0;

fail:
    transport_close(t); /* not fd: it stays the caller's */
    return ret;
}

int transport_tls_client(int fd, const struct transport_tls *tls, const char *server_name,
                         struct transport **out, char *err)
{
    return tls_open(fd, tls, server_name ? server_name : "", out, err);
}

int transport_tls_server(int fd, const struct transport_tls *tls, struct transport **out, char *err)
{
    return tls_open(fd, tls, NULL, out, err);
}
