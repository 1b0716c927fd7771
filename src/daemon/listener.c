/* The daemon's listening sockets (listener.h). */
#include "daemon/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* Creates the unix socket at path: 0 and l->fd, or -errno with err. */
static int open_unix(struct listener *l, const char *path, mode_t mode, char *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, probe, ret;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, LISTENER_ERR_LEN, "%s: socket path longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, LISTENER_ERR_LEN, "%s: exists and is not a socket; not replacing it",
                     path);
            return -EEXIST;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, LISTENER_ERR_LEN, "%s: another tesserad is listening there", path);
            return -EADDRINUSE;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, LISTENER_ERR_LEN, "%s: socket: %s", path, strerror(errno));
        return ret;
    }
    /* Nobody can connect before listen(), so the mode is right before anyone can. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, mode) || stat(path, &st) ||
        listen(fd, LISTENER_BACKLOG)) {
        ret = -errno;
        snprintf(err, LISTENER_ERR_LEN, "%s: cannot listen: %s", path, strerror(errno));
        close(fd);
        return ret;
    }
    l->is_unix = true;
    snprintf(l->path, sizeof(l->path), "%s", path);
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->fd = fd;
    snprintf(l->address, sizeof(l->address), "unix:%s", path);
    return 0;
}

/* Binds HOST:PORT (host a name, an IPv4 address or a bracketed IPv6 one): 0 and l->fd, or
 * -errno with err naming spec. */
static int open_tcp(struct listener *l, const char *spec, const char *scheme, const char *host,
                    const char *port, char *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct addrinfo *res, *ai;
    char h[INET6_ADDRSTRLEN], p[8];
    int fd = -1, ret, one = 1;

    ret = getaddrinfo(host, port, &hints, &res);
    if (ret) {
        snprintf(err, LISTENER_ERR_LEN, "--listen %s: %s: %s", spec, host, gai_strerror(ret));
        return -EINVAL;
    }
    ret = -EADDRNOTAVAIL;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            ret = -errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTENER_BACKLOG) == 0)
            break;
        ret = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, LISTENER_ERR_LEN, "--listen %s: cannot listen: %s", spec, strerror(-ret));
        return ret;
    }
    l->fd = fd;
    /* The address as bound: port 0 becomes the kernel's choice. */
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
                    NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(l->address, sizeof(l->address), "%s", spec);
    else
        snprintf(l->address, sizeof(l->address), ss.ss_family == AF_INET6 ? "%s[%s]:%s" : "%s%s:%s",
                 scheme, h, p);
    return 0;
}

/* Splits "HOST:PORT" or "[V6]:PORT" (after the scheme) into host and port. */
static int split_host_port(const char *spec, const char *rest, char *host, size_t hlen, char *port,
                           char *err)
{
    const char *colon;
    size_t n;

    if (rest[0] == '[') {
        const char *close_br = strchr(rest, ']');

        if (!close_br || close_br[1] != ':')
            goto bad;
        n = (size_t)(close_br - rest - 1);
        colon = close_br + 1;
        rest++;
    } else {
        colon = strrchr(rest, ':');
        if (!colon)
            goto bad;
        n = (size_t)(colon - rest);
    }
    if (!n || n >= hlen || strlen(colon + 1) < 1 || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535)
        goto bad;
    memcpy(host, rest, n);
    host[n] = '\0';
    snprintf(port, 8, "%s", colon + 1);
    return 0;
bad:
    snprintf(err, LISTENER_ERR_LEN,
             "--listen %s: expected unix:PATH, https://HOST:PORT or http://127.0.0.1:PORT", spec);
    return -EINVAL;
}

/* Reads a PEM file whole into *out (NUL-terminated). */
static int read_pem(const char *what, const char *path, char **out, size_t *len, char *err)
{
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd, ret = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, LISTENER_ERR_LEN, "%s %s: cannot read: %s", what, path, strerror(errno));
        return ret;
    }
    buf = malloc(LISTENER_PEM_MAX + 1);
    if (!buf) {
        close(fd);
        snprintf(err, LISTENER_ERR_LEN, "%s %s: out of memory", what, path);
        return -ENOMEM;
    }
    while ((r = read(fd, buf + n, LISTENER_PEM_MAX + 1 - n)) > 0)
        n += (size_t)r;
    if (r < 0) {
        ret = -errno;
        snprintf(err, LISTENER_ERR_LEN, "%s %s: cannot read: %s", what, path, strerror(errno));
    } else if (n > LISTENER_PEM_MAX) {
        ret = -EFBIG;
        snprintf(err, LISTENER_ERR_LEN, "%s %s: larger than %u bytes: not a PEM file", what, path,
                 LISTENER_PEM_MAX);
    }
    close(fd);
    if (ret) {
        free(buf);
        return ret;
    }
    buf[n] = '\0';
    /* Kept for the server's life: only what the file held. */
    *out = realloc(buf, n + 1) ?: buf;
    *len = n;
    return 0;
}

int listener_open(const char *spec, mode_t unix_mode, struct listener *l, char *err)
{
    char host[256], port[8];
    int ret;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (!strncmp(spec, "unix:", 5))
        return open_unix(l, spec + 5, unix_mode, err);
    if (!strncmp(spec, "https://", 8)) {
        l->tls = true;
        ret = split_host_port(spec, spec + 8, host, sizeof(host), port, err);
        return ret ? ret : open_tcp(l, spec, "https://", host, port, err);
    }
    if (!strncmp(spec, "http://", 7)) {
        ret = split_host_port(spec, spec + 7, host, sizeof(host), port, err);
        if (ret)
            return ret;
        /* Tokens in clear text stay on this host: loopback literals only (not "localhost",
         * whose resolution is configuration). */
        if (strcmp(host, "127.0.0.1") && strcmp(host, "::1")) {
            snprintf(err, LISTENER_ERR_LEN,
                     "--listen %s: plain HTTP would send bearer tokens in clear text; use "
                     "https:// with --tls-cert and --tls-key, or http://127.0.0.1:PORT or "
                     "http://[::1]:PORT for this host only",
                     spec);
            return -EINVAL;
        }
        return open_tcp(l, spec, "http://", host, port, err);
    }
    snprintf(err, LISTENER_ERR_LEN,
             "--listen %s: expected unix:PATH, https://HOST:PORT or http://127.0.0.1:PORT", spec);
    return -EINVAL;
}

void listener_remove(const struct listener *l)
{
    struct stat st;

    if (l->is_unix && stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
        unlink(l->path);
}

/* The certificate and key are checked here, so that a mistake is named before libmicrohttpd
 * sees them (it would only say it could not start). */
int listener_tls_load(const char *cert, const char *key, char **cert_pem, char **key_pem, char *err)
{
    gnutls_certificate_credentials_t cred;
    gnutls_x509_crt_t *crts = NULL;
    gnutls_x509_privkey_t pk;
    gnutls_datum_t dc, dk;
    unsigned ncrt = 0, i;
    size_t lc, lk;
    int ret;

    *cert_pem = *key_pem = NULL;
    if (!cert || !key) {
        snprintf(err, LISTENER_ERR_LEN,
                 "an https:// listener needs --tls-cert FILE and --tls-key FILE");
        return -EINVAL;
    }
    ret = read_pem("--tls-cert", cert, cert_pem, &lc, err);
    if (!ret)
        ret = read_pem("--tls-key", key, key_pem, &lk, err);
    if (ret)
        goto fail;
    dc = (gnutls_datum_t){(unsigned char *)*cert_pem, (unsigned)lc};
    dk = (gnutls_datum_t){(unsigned char *)*key_pem, (unsigned)lk};
    ret = gnutls_x509_crt_list_import2(&crts, &ncrt, &dc, GNUTLS_X509_FMT_PEM, 0);
    if (ret < 0) {
        snprintf(err, LISTENER_ERR_LEN, "--tls-cert %s: not a PEM certificate: %s", cert,
                 gnutls_strerror(ret));
        ret = -EINVAL;
        goto fail;
    }
    for (i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    ret = -ENOMEM;
    if (gnutls_x509_privkey_init(&pk) < 0)
        goto oom;
    ret = gnutls_x509_privkey_import2(pk, &dk, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(pk);
    if (ret < 0) {
        snprintf(err, LISTENER_ERR_LEN, "--tls-key %s: not an unencrypted PEM private key: %s", key,
                 gnutls_strerror(ret));
        ret = -EINVAL;
        goto fail;
    }
    ret = -ENOMEM;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        goto oom;
    ret = gnutls_certificate_set_x509_key_mem2(cred, &dc, &dk, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
        snprintf(err, LISTENER_ERR_LEN, "--tls-key %s: does not match the certificate in %s", key,
                 cert);
        ret = -EINVAL;
        goto fail;
    }
    if (ret < 0) {
        snprintf(err, LISTENER_ERR_LEN, "--tls-cert %s, --tls-key %s: %s", cert, key,
                 gnutls_strerror(ret));
        ret = -EINVAL;
        goto fail;
    }
    return 0;
oom:
    snprintf(err, LISTENER_ERR_LEN, "--tls-cert %s: out of memory", cert);
fail:
    if (*key_pem)
        explicit_bzero(*key_pem, strlen(*key_pem));
    free(*key_pem);
    free(*cert_pem);
    *cert_pem = *key_pem = NULL;
    return ret;
}
