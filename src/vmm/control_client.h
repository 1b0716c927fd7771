/* The control API's client side (the server is control.h): one HTTP/1.1 request over the
 * VM's unix socket, written by hand. A hand-written client instead of libcurl: we talk to one
 * known server over AF_UNIX with one request per connection, which takes ~300 lines we can
 * fuzz and test, and spares `tessera` a dependency (and its TLS stack) on the CLI path.
 *
 * The response is outside input: the parser checks every length and bounds what it buffers
 * (CONTROL_CLIENT_HEAD_MAX of headers, CONTROL_CLIENT_BODY_MAX of body). Any thread; no
 * global state. */
#ifndef TESSERA_VMM_CONTROL_CLIENT_H
#define TESSERA_VMM_CONTROL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_CLIENT_ERR_LEN  256         /* err buffers below: one line, with its NUL */
#define CONTROL_CLIENT_HEAD_MAX (16u << 10) /* status line and headers */
#define CONTROL_CLIENT_BODY_MAX (4u << 20)  /* response body */

struct control_client_reply {
    unsigned status; /* 200..599 (1xx interim responses are skipped) */
    char *body;      /* malloc'd and NUL-terminated; len bytes before the NUL */
    size_t len;
};

/* Builds the request: method and path must be plain tokens (no spaces or control bytes);
 * body is a JSON text or NULL. Sends "Connection: close". Returns 0 and *out (malloc'd, *len
 * bytes) or -EINVAL / -ENOMEM. */
int control_client_build(const char *method, const char *path, const char *body, char **out,
                         size_t *len);

/* Parses the len bytes of a response received so far; eof says the server has closed.
 * Returns 0 and *out (free it with control_client_reply_free()) once a whole response is in
 * buf (bytes after it are ignored); -EAGAIN when more must be read; -ECONNRESET when the
 * server closed without sending a byte; -EPROTO when buf is not a well-formed HTTP/1.x
 * response, -EMSGSIZE when it is beyond the limits, -ENOMEM: each with one line in err
 * (CONTROL_CLIENT_ERR_LEN bytes). Content-Length, chunked and close-delimited bodies. */
int control_client_parse(const char *buf, size_t len, bool eof, struct control_client_reply *out,
                         char *err);

/* Connects to sock_path, sends the request, reads the response (timeout_s seconds at most per
 * send or receive). Returns 0 and *out for any HTTP status, or -errno with one line in err
 * naming sock_path: -ECONNREFUSED "no VM is listening" (also for a missing socket), -EACCES,
 * -ETIMEDOUT, -ECONNRESET (closed without answering), and the parse errors above. */
int control_client_call(const char *sock_path, const char *method, const char *path,
                        const char *body, unsigned timeout_s, struct control_client_reply *out,
                        char *err);

/* The message of an error reply for a person: the body's "error" string (non-printable bytes
 * as '?') or, without one, "HTTP 409". Returns buf (n bytes). */
const char *control_client_error(const struct control_client_reply *r, char *buf, size_t n);

/* A size as `tessera run --mem` takes it: decimal digits with an optional K, M, G or T suffix
 * (any case, binary units); no suffix means MiB. Returns 0 and *bytes, -EINVAL for anything
 * else, -ERANGE on overflow. */
int control_client_parse_size(const char *s, uint64_t *bytes);

void control_client_reply_free(struct control_client_reply *r);

#endif
