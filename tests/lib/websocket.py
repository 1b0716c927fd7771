"""A websocket client (RFC 6455), the client's side, written here for tests of tesserad's
GET /api/v1/vms/{name}/console: binary frames carry the console's bytes both ways. Used by
tests/system/test_daemon_http.py and test_daemon_vms.py."""

import base64
import hashlib
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def unix_socket(path, timeout=10):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    return s


class WebSocket:
    """The upgrade is sent on sock (already connected: unix, tcp or TLS) at construction;
    .status, .headers and .accept_ok tell how it was answered."""

    def __init__(self, sock, path, token, version="13"):
        self.sock = sock
        key = base64.b64encode(os.urandom(16)).decode()
        head = ("GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n" % (path, key, version))
        if token:
            head += "Authorization: Bearer %s\r\n" % token
        self.sock.sendall((head + "\r\n").encode())
        self.buf, self.data, self.pongs, self.closed, self.masked = b"", b"", [], None, False
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else 0
        self.headers = {k.lower(): v.strip() for k, _, v in
                        (ln.partition(":") for ln in lines[1:])}
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.accept_ok = self.headers.get("sec-websocket-accept") == want

    def send_frame(self, opcode, payload, fin=True, masked=True):
        hdr = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        m = 0x80 if masked else 0
        if n < 126:
            hdr += bytes([m | n])
        elif n < 65536:
            hdr += bytes([m | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([m | 127]) + struct.pack(">Q", n)
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            hdr += mask
        self.sock.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv_frame(self):
        """(opcode, payload); server frames are unmasked and never fragmented here."""
        self._need(2)
        op, n = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        self.masked |= bool(self.buf[1] & 0x80)
        hl = 2
        if n == 126:
            self._need(4)
            n, hl = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, hl = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(hl + n)
        payload, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
        return op, payload

    def recv_until(self, want, timeout=None):
        """Reads frames until the console bytes (binary payloads) received hold want; returns
        them up to and including want (or all received when it never came). Pongs are kept in
        .pongs; a close, the end of the connection or timeout seconds end the wait."""
        deadline = time.monotonic() + timeout if timeout else None
        try:
            while want not in self.data:
                if deadline:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.sock.settimeout(left)
                op, p = self.recv_frame()
                if op == 2:
                    self.data += p
                elif op == 10:
                    self.pongs.append(p)
                elif op == 8:
                    self.closed = p
                    break
        except (EOFError, socket.timeout):
            pass
        i = self.data.find(want)
        got, self.data = (self.data[:i + len(want)], self.data[i + len(want):]) if i >= 0 \
            else (self.data, b"")
        return got

    def recv_control(self):
        """The next pong or close frame, console bytes meanwhile kept for recv_until()."""
        while True:
            op, p = self.recv_frame()
            if op == 2:
                self.data += p
            else:
                return op, p

    def run(self, command, want, timeout=60):
        """Types command and a newline on the console; True when want came back in time."""
        self.send_frame(2, command.encode() + b"\n")
        return want.encode() in self.recv_until(want.encode(), timeout)

    def close(self):
        self.sock.close()
