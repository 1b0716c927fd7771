/* The VMM's side of the guest agent channel (guest/agent/README.md): one JSON request line,
 * one reply line, over the unix socket the console device serves (`--agent-sock PATH`, or
 * `--device console,agent=PATH`). Used for graceful shutdown and for telling a clone to take
 * a new identity. The VMM connects to its own socket, so a request succeeds only while no
 * other client holds the channel. */
#ifndef TESSERA_VMM_AGENT_CLIENT_H
#define TESSERA_VMM_AGENT_CLIENT_H

#include <stddef.h>

struct virt_config;

/* The agent socket's path from the console device's options into buf; 0 or -ENODEV. */
int agent_client_path(const struct virt_config *cfg, char *buf, size_t len);

/* Sends `line` (one JSON object ending in '\n') and waits up to timeout_ms for the reply.
 * 0 when the agent answered "ok":true; -EIO when it answered otherwise (the reply, NUL-
 * terminated, is in reply if given, `len` bytes); -ETIMEDOUT when it did not answer; or the
 * -errno of connecting (-ECONNREFUSED, -ENOENT while the VMM has not made the socket yet). */
int agent_client_request(const char *path, const char *line, unsigned timeout_ms, char *reply,
                         size_t len);

#endif
