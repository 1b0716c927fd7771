/* The client's transport on libcurl (client_http.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/client_http.h"

#define CONNECT_TIMEOUT_S 10

struct client_http {
    CURL *curl;
    char sock_path[108]; /* sockaddr_un's sun_path; "" for https */
    char base_url[CLIENT_HTTP_URL_MAX];
    char host_header[CLIENT_HTTP_URL_MAX];
    char auth[256]; /* "Authorization: Bearer ..." */
    char curl_err[CURL_ERROR_SIZE];
    char *ca_cert;
    bool insecure;
};

/* libcurl's entry points, from dlopen() (client_http.h says why). The names are libcurl's
 * own: calls read as they would against the linked library. */
static struct {
    void *handle;
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *curl);
    void (*easy_reset)(CURL *curl);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_send)(CURL *curl, const void *buf, size_t n, size_t *sent);
    CURLcode (*easy_recv)(CURL *curl, void *buf, size_t n, size_t *got);
    const char *(*easy_strerror)(CURLcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
} lib;

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CLIENT_HTTP_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* The sonames of libcurl 4's builds on GnuTLS (Debian's libcurl3-gnutls, what
 * scripts/install-deps.sh installs) and on OpenSSL: one ABI. */
static const char *const curl_sonames[] = {"libcurl-gnutls.so.4", "libcurl.so.4"};

#define CURL_SYM(name)                                          \
    do {                                                        \
        *(void **)&lib.name = dlsym(lib.handle, "curl_" #name); \
        if (!lib.name) {                                        \
            set_err(err, "libcurl lacks curl_%s", #name);       \
            goto close_lib;                                     \
        }                                                       \
    } while (0)

int client_http_global_init(char *err)
{
    for (size_t i = 0; i < sizeof(curl_sonames) / sizeof(curl_sonames[0]) && !lib.handle; i++)
        lib.handle = dlopen(curl_sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib.handle) {
        set_err(err, "cannot load libcurl (%s or %s): install libcurl3-gnutls", curl_sonames[0],
                curl_sonames[1]);
        return -ENOENT;
    }
    CURL_SYM(global_init);
    CURL_SYM(global_cleanup);
    CURL_SYM(easy_init);
    CURL_SYM(easy_cleanup);
    CURL_SYM(easy_reset);
    CURL_SYM(easy_setopt);
    CURL_SYM(easy_getinfo);
    CURL_SYM(easy_perform);
    CURL_SYM(easy_send);
    CURL_SYM(easy_recv);
    CURL_SYM(easy_strerror);
    CURL_SYM(slist_append);
    CURL_SYM(slist_free_all);
    if (lib.global_init(CURL_GLOBAL_DEFAULT)) {
        set_err(err, "cannot start libcurl");
        goto close_lib;
    }
    return 0;

close_lib:
    dlclose(lib.handle);
    memset(&lib, 0, sizeof(lib));
    return -ENOENT;
}

void client_http_global_cleanup(void)
{
    if (!lib.handle)
        return;
    lib.global_cleanup();
    dlclose(lib.handle);
    memset(&lib, 0, sizeof(lib));
}

int client_http_parse_host(const char *host, char *sock_path, size_t sock_len, char *base_url,
                           size_t url_len, char *err)
{
    const char *path = NULL;

    if (!strncmp(host, "unix:", 5))
        path = host + 5;
    else if (host[0] == '/' || host[0] == '.')
        path = host;
    if (path) {
        if (!*path || strlen(path) >= sock_len || strlen(path) >= 108) {
            set_err(err, "--host %s: expected a socket path of 1 to 107 bytes", host);
            return -EINVAL;
        }
        snprintf(sock_path, sock_len, "%s", path);
        snprintf(base_url, url_len, "http://localhost");
        return 0;
    }
    if (!strncmp(host, "http://", 7)) {
        set_err(err,
                "--host %s: plain http is refused (the token would cross the network in "
                "clear); use https://HOST:PORT or unix:PATH",
                host);
        return -EINVAL;
    }
    if (strncmp(host, "https://", 8) || !host[8]) {
        set_err(err, "--host %s: expected unix:PATH, a socket path or https://HOST:PORT", host);
        return -EINVAL;
    }
    /* HOST:PORT or [V6]:PORT, nothing after it: paths are the client's to add. */
    for (const char *p = host + 8; *p; p++) {
        if (*p == '/' && !p[1])
            break;
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || (unsigned char)*p <= ' ') {
            set_err(err, "--host %s: expected https://HOST:PORT with no path, user or query", host);
            return -EINVAL;
        }
    }
    if (strlen(host) >= url_len) {
        set_err(err, "--host %s: too long", host);
        return -EINVAL;
    }
    snprintf(base_url, url_len, "%s", host);
    if (base_url[strlen(base_url) - 1] == '/')
        base_url[strlen(base_url) - 1] = 0;
    sock_path[0] = 0;
    return 0;
}

int client_http_open(const char *host, const char *token, const char *ca_cert, bool insecure,
                     struct client_http **out, char *err)
{
    struct client_http *h = calloc(1, sizeof(*h));
    int ret;

    if (!h) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    ret = client_http_parse_host(host, h->sock_path, sizeof(h->sock_path), h->base_url,
                                 sizeof(h->base_url), err);
    if (ret)
        goto free_h;
    /* A token goes into a header line: printable ASCII only, or it could add headers. */
    for (const char *p = token; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            set_err(err, "the token has a space or control character: expected tsr_...");
            ret = -EINVAL;
            goto free_h;
        }
    }
    if (!*token || strlen(token) > 200) {
        set_err(err, "the token is empty or longer than 200 characters: expected tsr_...");
        ret = -EINVAL;
        goto free_h;
    }
    snprintf(h->auth, sizeof(h->auth), "Authorization: Bearer %s", token);
    snprintf(h->host_header, sizeof(h->host_header), "%s",
             h->sock_path[0] ? "localhost" : h->base_url + 8);
    h->insecure = insecure;
    if (ca_cert && !(h->ca_cert = strdup(ca_cert))) {
        set_err(err, "out of memory");
        ret = -ENOMEM;
        goto free_h;
    }
    h->curl = lib.easy_init();
    if (!h->curl) {
        set_err(err, "cannot start libcurl");
        ret = -ENOMEM;
        goto free_h;
    }
    *out = h;
    return 0;
free_h:
    free(h->ca_cert);
    explicit_bzero(h->auth, sizeof(h->auth));
    free(h);
    return ret;
}

void client_http_close(struct client_http *h)
{
    if (!h)
        return;
    lib.easy_cleanup(h->curl);
    explicit_bzero(h->auth, sizeof(h->auth));
    free(h->ca_cert);
    free(h);
}

void client_http_reply_free(struct client_http_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

struct sink {
    char *buf;
    size_t len;
    bool too_big;
};

/* libcurl's write callback: appends to the reply, up to CLIENT_HTTP_BODY_MAX. */
static size_t sink_write(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    char *grown;

    n *= size; /* size is 1 (libcurl's contract), n the bytes */
    if (s->len + n > CLIENT_HTTP_BODY_MAX) {
        s->too_big = true;
        return 0;
    }
    grown = realloc(s->buf, s->len + n + 1);
    if (!grown)
        return 0;
    s->buf = grown;
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = 0;
    return n;
}

struct progress {
    curl_off_t total;
    int last; /* percent last shown */
};

/* The upload's progress on a terminal: one line rewritten in place. */
static int progress_show(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    struct progress *p = arg;
    int pct = p->total ? (int)(ulnow * 100 / p->total) : 100;

    if (pct != p->last) {
        fprintf(stderr, "\rtessera: uploaded %3d%% (%lld of %lld bytes)", pct, (long long)ulnow,
                (long long)p->total);
        p->last = pct;
    }
    return 0;
}

/* The options every connection takes: where, TLS, timeouts. */
static void setup(struct client_http *h)
{
    lib.easy_reset(h->curl);
    lib.easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->curl_err);
    if (h->sock_path[0])
        lib.easy_setopt(h->curl, CURLOPT_UNIX_SOCKET_PATH, h->sock_path);
    lib.easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    lib.easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    lib.easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (h->ca_cert)
        lib.easy_setopt(h->curl, CURLOPT_CAINFO, h->ca_cert);
    if (h->insecure) {
        lib.easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        lib.easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    h->curl_err[0] = 0;
}

/* A libcurl failure as -errno with err naming the daemon. */
static int failure(struct client_http *h, CURLcode rc, char *err)
{
    const char *where = h->sock_path[0] ? h->sock_path : h->base_url;
    const char *why = h->curl_err[0] ? h->curl_err : lib.easy_strerror(rc);

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        set_err(err, "cannot reach tesserad at %s: %s (is it running?)", where, why);
        return -ECONNREFUSED;
    case CURLE_PEER_FAILED_VERIFICATION:
        set_err(err,
                "%s: the daemon's certificate is not trusted: %s (name its CA with "
                "--ca-cert FILE)",
                where, why);
        return -EPROTO;
    case CURLE_SSL_CACERT_BADFILE:
        set_err(err, "--ca-cert %s: cannot be read as PEM certificates: %s",
                h->ca_cert ? h->ca_cert : "", why);
        return -ENOENT;
    case CURLE_OPERATION_TIMEDOUT: set_err(err, "%s: timed out: %s", where, why); return -ETIMEDOUT;
    default: set_err(err, "%s: %s", where, why); return -EPROTO;
    }
}

int client_http_call(struct client_http *h, const char *method, const char *path, const char *body,
                     const char *upload, struct client_http_reply *out, char *err)
{
    struct progress prog = {.last = -1};
    struct curl_slist *headers = NULL, *more;
    struct sink sink = {0};
    char url[CLIENT_HTTP_URL_MAX + 1100];
    FILE *file = NULL;
    struct stat st;
    CURLcode rc;
    long status = 0;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", h->base_url, path);
    setup(h);
    lib.easy_setopt(h->curl, CURLOPT_URL, url);
    lib.easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
    lib.easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, sink_write);
    lib.easy_setopt(h->curl, CURLOPT_WRITEDATA, &sink);
    headers = lib.slist_append(NULL, h->auth);
    more = headers ? lib.slist_append(headers, "Accept: application/json") : NULL;
    if (more && body)
        more = lib.slist_append(headers, "Content-Type: application/json");
    if (more && upload)
        more = lib.slist_append(headers, "Content-Type: application/octet-stream");
    if (!more) {
        set_err(err, "out of memory");
        ret = -ENOMEM;
        goto free_headers;
    }
    lib.easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
    if (body || (!upload && (!strcmp(method, "POST") || !strcmp(method, "PUT")))) {
        /* A change without a body still says Content-Length: 0. */
        lib.easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
        lib.easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                        (curl_off_t)(body ? strlen(body) : 0));
    } else if (upload) {
        file = fopen(upload, "rb");
        if (!file || fstat(fileno(file), &st)) {
            ret = -errno;
            set_err(err, "%s: %s", upload, strerror(errno));
            goto close_file;
        }
        prog.total = st.st_size;
        lib.easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
        lib.easy_setopt(h->curl, CURLOPT_READDATA, file);
        lib.easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
        if (isatty(STDERR_FILENO)) {
            lib.easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
            lib.easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, progress_show);
            lib.easy_setopt(h->curl, CURLOPT_XFERINFODATA, &prog);
        }
    }
    rc = lib.easy_perform(h->curl);
    if (prog.last >= 0)
        fputc('\n', stderr);
    if (rc == CURLE_WRITE_ERROR && sink.too_big) {
        set_err(err, "%s: the answer is larger than %u bytes", path, CLIENT_HTTP_BODY_MAX);
        ret = -EMSGSIZE;
        goto close_file;
    }
    if (rc) {
        ret = failure(h, rc, err);
        goto close_file;
    }
    lib.easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    out->status = (unsigned)status;
    out->body = sink.buf ? sink.buf : strdup("");
    out->len = sink.len;
    sink.buf = NULL;
    if (!out->body) {
        set_err(err, "out of memory");
        ret = -ENOMEM;
    }
close_file:
    if (file)
        fclose(file);
free_headers:
    lib.slist_free_all(headers);
    free(sink.buf);
    return ret;
}

int client_http_connect(struct client_http *h, int *fd, const char **host_header, char *err)
{
    curl_socket_t sock;
    CURLcode rc;

    setup(h);
    lib.easy_setopt(h->curl, CURLOPT_URL, h->base_url);
    lib.easy_setopt(h->curl, CURLOPT_CONNECT_ONLY, 1L);
    rc = lib.easy_perform(h->curl);
    if (rc)
        return failure(h, rc, err);
    rc = lib.easy_getinfo(h->curl, CURLINFO_ACTIVESOCKET, &sock);
    if (rc || sock == CURL_SOCKET_BAD) {
        set_err(err, "%s: libcurl gave no socket", h->base_url);
        return -EPROTO;
    }
    *fd = (int)sock;
    *host_header = h->host_header;
    return 0;
}

ssize_t client_http_send(void *arg, const void *buf, size_t n)
{
    struct client_http *h = arg;
    size_t sent = 0;
    CURLcode rc = lib.easy_send(h->curl, buf, n, &sent);

    if (rc == CURLE_AGAIN)
        return -EAGAIN;
    return rc ? -EIO : (ssize_t)sent;
}

ssize_t client_http_recv(void *arg, void *buf, size_t n)
{
    struct client_http *h = arg;
    size_t got = 0;
    CURLcode rc = lib.easy_recv(h->curl, buf, n, &got);

    if (rc == CURLE_AGAIN)
        return -EAGAIN;
    return rc ? -EIO : (ssize_t)got;
}
