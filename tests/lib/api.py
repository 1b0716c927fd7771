"""A minimal client for a VM's control API (HTTP/1.1 + JSON over a unix socket), for tests."""

import json
import socket


def call(sock_path, method, path, body=None, timeout=30):
    """Returns (status, parsed JSON body or None)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    head = ("%s %s HTTP/1.1\r\nHost: vm\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (method, path, len(data)))
    s.sendall(head.encode() + data)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    head, _, payload = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, (json.loads(payload) if payload.strip() else None)
