/* The control API's client side (control_client.h): HTTP/1.1 over a unix socket, one request
 * per connection. RFC 9112 is the reference: §4 status line, §5 header fields, §6.3 message
 * body length, §7.1 chunked transfer coding. */
#include "vmm/control_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CONTROL_CLIENT_ERR_LEN, fmt, ap);
    va_end(ap);
}

void control_client_reply_free(struct control_client_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- The request ---- */

/* A method or path we can put on the request line as it is. */
static bool plain_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    }
    return true;
}

int control_client_build(const char *method, const char *path, const char *body, char **out,
                         size_t *len)
{
    size_t blen = body ? strlen(body) : 0;
    char *buf;
    int n;

    if (!plain_token(method) || !plain_token(path) || path[0] != '/')
        return -EINVAL;
    n = body ? snprintf(NULL, 0,
                        "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tessera\r\n"
                        "Accept: application/json\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        method, path, blen)
             : snprintf(NULL, 0,
                        "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tessera\r\n"
                        "Accept: application/json\r\nConnection: close\r\n\r\n",
                        method, path);
    if (n < 0)
        return -EINVAL;
    buf = malloc((size_t)n + blen + 1);
    if (!buf)
        return -ENOMEM;
    if (body)
        snprintf(buf, (size_t)n + 1,
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tessera\r\n"
                 "Accept: application/json\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 method, path, blen);
    else
        snprintf(buf, (size_t)n + 1,
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tessera\r\n"
                 "Accept: application/json\r\nConnection: close\r\n\r\n",
                 method, path);
    memcpy(buf + n, body ? body : "", blen + 1);
    *out = buf;
    *len = (size_t)n + blen;
    return 0;
}

/* ---- The response ---- */

#define CHUNK_LINE_MAX 1024 /* a chunk's size line, with any extensions */

/* The response head, parsed. */
struct head {
    unsigned status;
    size_t size;     /* bytes of status line and headers, with the blank line */
    bool has_length; /* Content-Length was given ... */
    size_t length;   /* ... as this */
    bool chunked;
};

/* Finds "\r\n" in [p, end). Returns its position or NULL. */
static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++) {
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    }
    return NULL;
}

/* Trims optional whitespace (RFC 9110 §5.6.3) from both ends of [*b, *e). */
static void trim_ows(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/* Parses decimal digits [b, e) into *v, refusing anything above max. Returns 0, -EINVAL
 * (empty or a non-digit) or -EMSGSIZE. */
static int parse_dec(const char *b, const char *e, size_t max, size_t *v)
{
    size_t n = 0;

    if (b == e)
        return -EINVAL;
    for (; b < e; b++) {
        if (*b < '0' || *b > '9')
            return -EINVAL;
        if (n > (max - (size_t)(*b - '0')) / 10)
            return -EMSGSIZE;
        n = n * 10 + (size_t)(*b - '0');
    }
    *v = n;
    return 0;
}

/* Parses one header field line [p, e) into h. Returns 0, -EPROTO or -EMSGSIZE with err. */
static int parse_field(const char *p, const char *e, struct head *h, char *err)
{
    const char *colon = memchr(p, ':', (size_t)(e - p)), *vb, *ve;
    size_t n;
    int ret;

    if (!colon || colon == p || p[0] == ' ' || p[0] == '\t') {
        set_err(err, "malformed header line in the response");
        return -EPROTO;
    }
    for (const char *q = p; q < colon; q++) {
        if (*q <= 0x20 || *q >= 0x7f) {
            set_err(err, "malformed header name in the response");
            return -EPROTO;
        }
    }
    vb = colon + 1;
    ve = e;
    trim_ows(&vb, &ve);
    n = (size_t)(colon - p);
    if (n == 14 && !strncasecmp(p, "Content-Length", 14)) {
        size_t v;

        ret = parse_dec(vb, ve, CONTROL_CLIENT_BODY_MAX, &v);
        if (ret == -EMSGSIZE) {
            set_err(err, "response body is larger than %u bytes", CONTROL_CLIENT_BODY_MAX);
            return ret;
        }
        if (ret || (h->has_length && h->length != v)) {
            set_err(err, "bad Content-Length in the response");
            return -EPROTO;
        }
        h->has_length = true;
        h->length = v;
    } else if (n == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) {
        if (ve - vb != 7 || strncasecmp(vb, "chunked", 7)) {
            set_err(err, "unsupported Transfer-Encoding in the response");
            return -EPROTO;
        }
        h->chunked = true;
    }
    return 0;
}

/* Parses a head at buf. Returns 0 and *h, -EAGAIN when incomplete, or -EPROTO / -EMSGSIZE. */
static int parse_head(const char *buf, size_t len, struct head *h, char *err)
{
    const char *end = buf + (len < CONTROL_CLIENT_HEAD_MAX ? len : CONTROL_CLIENT_HEAD_MAX);
    const char *p, *eol;
    int ret;

    memset(h, 0, sizeof(*h));
    /* Status line: "HTTP/1.x SSS[ reason]" (RFC 9112 §4). */
    eol = find_crlf(buf, end);
    if (!eol) {
        if (len >= 5 && memcmp(buf, "HTTP/", 5)) {
            set_err(err, "the server's answer is not HTTP");
            return -EPROTO;
        }
        goto incomplete;
    }
    if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) || buf[7] < '0' || buf[7] > '9' ||
        buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
        buf[11] < '0' || buf[11] > '9' || (eol - buf > 12 && buf[12] != ' ')) {
        set_err(err, "the server's answer has no valid HTTP/1.x status line");
        return -EPROTO;
    }
    h->status =
        (unsigned)(buf[9] - '0') * 100 + (unsigned)(buf[10] - '0') * 10 + (unsigned)(buf[11] - '0');
    for (p = eol + 2;; p = eol + 2) {
        eol = find_crlf(p, end);
        if (!eol)
            goto incomplete;
        if (eol == p)
            break;
        ret = parse_field(p, eol, h, err);
        if (ret)
            return ret;
    }
    if (h->has_length && h->chunked) {
        set_err(err, "the response has both Content-Length and Transfer-Encoding");
        return -EPROTO;
    }
    h->size = (size_t)(eol + 2 - buf);
    return 0;
incomplete:
    if (len >= CONTROL_CLIENT_HEAD_MAX) {
        set_err(err, "the response's headers are larger than %u bytes", CONTROL_CLIENT_HEAD_MAX);
        return -EMSGSIZE;
    }
    return -EAGAIN;
}

/* Decodes a chunked body (RFC 9112 §7.1) from [p, end) into out (room for the whole body, as
 * a first call with out NULL measures it). Returns 0 and *n, -EAGAIN, or
 * -EPROTO / -EMSGSIZE with err. Chunk extensions and trailer fields are skipped. */
static int decode_chunked(const char *p, const char *end, char *out, size_t *n, char *err)
{
    size_t total = 0;

    for (;;) {
        const char *eol = find_crlf(p, end), *q;
        size_t size = 0;

        if ((eol ? eol : end) - p > CHUNK_LINE_MAX) {
            set_err(err, "chunk size line too long in the response");
            return -EPROTO;
        }
        if (!eol)
            return -EAGAIN;
        for (q = p; q < eol; q++) {
            int d = (*q >= '0' && *q <= '9')   ? *q - '0'
                    : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
                    : (*q >= 'A' && *q <= 'F') ? *q - 'A' + 10
                                               : -1;
            if (d < 0)
                break;
            if (size > (CONTROL_CLIENT_BODY_MAX - total) >> 4) {
                set_err(err, "response body is larger than %u bytes", CONTROL_CLIENT_BODY_MAX);
                return -EMSGSIZE;
            }
            size = size * 16 + (size_t)d;
        }
        if (q == p || (q < eol && *q != ';' && *q != ' ' && *q != '\t')) {
            set_err(err, "bad chunk size in the response");
            return -EPROTO;
        }
        if (size > CONTROL_CLIENT_BODY_MAX - total) {
            set_err(err, "response body is larger than %u bytes", CONTROL_CLIENT_BODY_MAX);
            return -EMSGSIZE;
        }
        p = eol + 2;
        if (!size)
            break;
        if ((size_t)(end - p) < size + 2)
            return -EAGAIN;
        if (p[size] != '\r' || p[size + 1] != '\n') {
            set_err(err, "chunk data does not end in CRLF");
            return -EPROTO;
        }
        if (out)
            memcpy(out + total, p, size);
        total += size;
        p += size + 2;
    }
    /* Trailer fields, then the empty line: CONTROL_CLIENT_HEAD_MAX bytes at most. */
    for (const char *trailer = p;;) {
        const char *eol = find_crlf(p, end);

        if ((eol ? eol + 2 : end) - trailer > CONTROL_CLIENT_HEAD_MAX) {
            set_err(err, "trailer fields too long in the response");
            return -EPROTO;
        }
        if (!eol)
            return -EAGAIN;
        if (eol == p)
            break;
        p = eol + 2;
    }
    *n = total;
    return 0;
}

int control_client_parse(const char *buf, size_t len, bool eof, struct control_client_reply *out,
                         char *err)
{
    const char *end = buf + len, *body;
    struct head h;
    size_t n = 0;
    int ret;

    memset(out, 0, sizeof(*out));
    if (!len && eof) {
        set_err(err, "the server closed the connection without answering");
        return -ECONNRESET;
    }
    /* 1xx interim responses (RFC 9110 §15.2) carry no body: skip them. */
    for (;;) {
        ret = parse_head(buf, (size_t)(end - buf), &h, err);
        if (ret)
            goto fail;
        if (h.status >= 200)
            break;
        buf += h.size;
    }
    body = buf + h.size;
    if (h.status == 204 || h.status == 304) {
        n = 0;
    } else if (h.chunked) {
        ret = decode_chunked(body, end, NULL, &n, err);
        if (ret)
            goto fail;
    } else if (h.has_length) {
        if ((size_t)(end - body) < h.length) {
            ret = -EAGAIN;
            goto fail;
        }
        n = h.length;
    } else {
        /* Delimited by the server closing (RFC 9112 §6.3, rule 8). */
        n = (size_t)(end - body);
        if (n > CONTROL_CLIENT_BODY_MAX) {
            set_err(err, "response body is larger than %u bytes", CONTROL_CLIENT_BODY_MAX);
            return -EMSGSIZE;
        }
        if (!eof)
            return -EAGAIN;
    }
    out->body = malloc(n + 1);
    if (!out->body) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    if (h.chunked)
        decode_chunked(body, end, out->body, &n, err);
    else
        memcpy(out->body, body, n);
    out->body[n] = '\0';
    out->len = n;
    out->status = h.status;
    return 0;
fail:
    if (ret == -EAGAIN && eof) {
        set_err(err, "the server closed the connection in the middle of its answer");
        return -EPROTO;
    }
    return ret;
}

/* ---- The call ---- */

/* Reads until a whole response has arrived. Returns 0 and *out or -errno with err. */
static int call_read(int fd, const char *sock_path, unsigned timeout_s,
                     struct control_client_reply *out, char *err)
{
    const size_t max = CONTROL_CLIENT_HEAD_MAX + CONTROL_CLIENT_BODY_MAX + 1024;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap), *p;
    ssize_t got;
    int ret;

    if (!buf) {
        set_err(err, "out of memory");
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            cap = cap * 2 < max ? cap * 2 : max;
            if (len == cap) {
                set_err(err, "%s: the response is larger than %zu bytes", sock_path, max);
                ret = -EMSGSIZE;
                break;
            }
            p = realloc(buf, cap);
            if (!p) {
                set_err(err, "out of memory");
                ret = -ENOMEM;
                break;
            }
            buf = p;
        }
        got = recv(fd, buf + len, cap - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_err(err, "%s: the VM did not answer within %u s", sock_path, timeout_s);
            ret = -ETIMEDOUT;
            break;
        }
        if (got < 0 && errno == ECONNRESET && len == 0)
            got = 0; /* the same as a close without an answer */
        if (got < 0) {
            ret = -errno;
            set_err(err, "%s: recv: %s", sock_path, strerror(errno));
            break;
        }
        len += (size_t)got;
        ret = control_client_parse(buf, len, got == 0, out, err);
        if (ret != -EAGAIN) {
            if (ret) {
                char msg[CONTROL_CLIENT_ERR_LEN];

                snprintf(msg, sizeof(msg), "%s", err);
                set_err(err, "%s: %s", sock_path, msg);
            }
            break;
        }
    }
    free(buf);
    return ret;
}

int control_client_call(const char *sock_path, const char *method, const char *path,
                        const char *body, unsigned timeout_s, struct control_client_reply *out,
                        char *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = timeout_s};
    size_t len, off = 0;
    char *req;
    int fd, ret;

    memset(out, 0, sizeof(*out));
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        set_err(err, "%s: a unix socket path must be shorter than %zu bytes", sock_path,
                sizeof(sa.sun_path));
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    ret = control_client_build(method, path, body, &req, &len);
    if (ret) {
        set_err(err, "cannot build the request: %s", strerror(-ret));
        return ret;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        set_err(err, "socket: %s", strerror(errno));
        goto free_req;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
        ret = -errno;
        set_err(err, "setsockopt: %s", strerror(errno));
        goto close_fd;
    }
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa))) {
        ret = -errno;
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) {
            set_err(err, "%s: no VM is listening (is it started with --api-sock?)", sock_path);
            ret = -ECONNREFUSED;
        } else if (errno == EACCES || errno == EPERM) {
            set_err(err, "%s: permission denied (the socket belongs to another user)", sock_path);
        } else if (errno == EAGAIN) {
            set_err(err, "%s: the VM is too busy to accept a connection; try again", sock_path);
        } else {
            set_err(err, "%s: connect: %s", sock_path, strerror(errno));
        }
        goto close_fd;
    }
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_err(err, "%s: the VM did not take the request within %u s", sock_path,
                        timeout_s);
                ret = -ETIMEDOUT;
            } else if (errno == EPIPE || errno == ECONNRESET) {
                /* It may have answered (an early error) before closing: read that. */
                break;
            } else {
                set_err(err, "%s: send: %s", sock_path, strerror(errno));
            }
            goto close_fd;
        }
        off += (size_t)n;
    }
    ret = call_read(fd, sock_path, timeout_s, out, err);
close_fd:
    close(fd);
free_req:
    free(req);
    return ret;
}

const char *control_client_error(const struct control_client_reply *r, char *buf, size_t n)
{
    json_t *doc = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    json_t *msg = json_object_get(doc, "error");
    size_t i;

    if (json_is_string(msg) && *json_string_value(msg))
        snprintf(buf, n, "%s", json_string_value(msg));
    else
        snprintf(buf, n, "HTTP %u", r->status);
    json_decref(doc);
    for (i = 0; buf[i]; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?';
    }
    return buf;
}

int control_client_parse_size(const char *s, uint64_t *bytes)
{
    unsigned shift = 20;
    uint64_t v = 0;
    const char *p;

    for (p = s; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s)
        return -EINVAL;
    if (*p) {
        static const char units[] = "kmgt";
        const char *u = memchr(units, *p | 0x20, 4);

        if (!u)
            return -EINVAL;
        shift = 10 * (unsigned)(u - units + 1);
        if (p[1] && strcmp(p + 1, "iB") && strcmp(p + 1, "B"))
            return -EINVAL;
    }
    if (v > (UINT64_MAX >> shift))
        return -ERANGE;
    *bytes = v << shift;
    return 0;
}
