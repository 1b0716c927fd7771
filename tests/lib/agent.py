"""Talk to the Tessera guest agent from the host.

The agent (guest/agent/, protocol in guest/agent/README.md) serves JSON lines on the
virtio-console port "org.tessera.agent.0". The VMM exposes that port as a unix socket:

    tessera run --agent-sock /tmp/agent.sock ...
    qemu-system-riscv64 ... -device virtio-serial-device \\
        -chardev socket,path=/tmp/agent.sock,server=on,wait=off,id=a0 \\
        -device virtserialport,chardev=a0,name=org.tessera.agent.0

    from agent import Agent
    with Agent("/tmp/agent.sock", timeout=180) as a:   # waits for the guest to answer
        exit, out, err = a.exec(["uname", "-m"])
        a.write_file("/tmp/x", b"data")

Strings on the wire are byte strings: each code point 0-255 stands for one byte (the agent
writes every other byte as \\u00XX). This module turns bytes and str (UTF-8) into that form
and gives bytes back for command output and file data. Standard library only.

Also a small command line for poking a guest by hand:

    python3 tests/lib/agent.py SOCK ping
    python3 tests/lib/agent.py SOCK exec uname -a
    python3 tests/lib/agent.py SOCK raw '{"cmd":"mem-stats"}'
"""

import base64
import itertools
import json
import os
import select
import socket
import sys
import time

# The agent's limits (guest/agent/README.md).
FILE_READ_MAX = 4 << 20
# A file-write line carries base64 (4/3 of the data); 4 MiB of data stays well inside the
# agent's 8 MiB line limit.
FILE_WRITE_CHUNK = 4 << 20


class AgentError(Exception):
    """The agent answered {"ok": false} (the message is its "error"), or the conversation
    broke: the socket closed, or a reply was not JSON."""


class AgentTimeout(AgentError):
    """No reply in time."""


class ExecResult(tuple):
    """(exit, stdout, stderr) of an exec, unpackable as a tuple; stdout and stderr are bytes.
    exit is 128 + signal when the command died of a signal, as a shell reports it.
    Attributes: exit, stdout, stderr, signal (None or the number), timed_out (killed by the
    agent's timeout), stdout_truncated and stderr_truncated (output past 1 MiB dropped)."""

    def __new__(cls, reply):
        out = _from_wire(reply.get("stdout", ""))
        err = _from_wire(reply.get("stderr", ""))
        self = super().__new__(cls, (reply.get("exit"), out, err))
        self.signal = reply.get("signal")
        self.timed_out = bool(reply.get("timed_out", False))
        self.stdout_truncated = bool(reply.get("stdout_truncated", False))
        self.stderr_truncated = bool(reply.get("stderr_truncated", False))
        return self

    exit = property(lambda self: self[0])
    stdout = property(lambda self: self[1])
    stderr = property(lambda self: self[2])


def _to_wire(s):
    """bytes, or str (taken as UTF-8), as the agent's byte string."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    return bytes(s).decode("latin-1")


def _from_wire(s):
    """The agent's byte string as bytes."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        # Not from the agent's writer (it escapes every byte above 0x7e); keep what it says.
        return s.encode("utf-8")


class Agent:
    """One connection to a guest agent's socket. Not thread-safe: one request at a time,
    which is also how the agent serves them. The VMM serves one connection at a time (QEMU
    leaves a second one waiting unanswered until the first closes), so close() an Agent
    before making another for the same socket. A connection survives a guest reboot:
    call wait_ready() again."""

    def __init__(self, sock_path, timeout=180.0, wait=True):
        """Connects to the unix socket at sock_path, retrying while it does not exist yet
        (the VMM creates it when it starts), and, if wait, sends pings until the agent
        answers one (it starts when the guest has booted). Raises AgentTimeout if that
        takes longer than timeout seconds."""
        self.sock_path = sock_path
        self.sock = None
        self._buf = b""
        self._ids = itertools.count(1)
        self._prefix = os.urandom(3).hex()
        self.version = None
        deadline = time.monotonic() + timeout
        self._connect(deadline)
        if wait:
            self.wait_ready(max(0.0, deadline - time.monotonic()))

    # -- connection -----------------------------------------------------------------------

    def _connect(self, deadline):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
                self.sock = s
                return
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() >= deadline:
                    raise AgentTimeout("cannot connect to %s: %s" % (self.sock_path, e)) from None
                time.sleep(0.1)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout=180.0):
        """Pings once a second until the agent answers; returns its version. Replies to
        earlier pings (queued while the guest booted) count too."""
        deadline = time.monotonic() + timeout
        # End any partial line a previous client may have left in the guest's buffer.
        self._send_bytes(b"\n")
        sent = set()
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise AgentTimeout(
                    "the agent on %s did not answer a ping in %.0f s" % (self.sock_path, timeout)
                )
            rid = self._next_id()
            sent.add(rid)
            self._send({"id": rid, "cmd": "ping"})
            ping_deadline = min(deadline, now + 1.0)
            while True:
                try:
                    reply = self._recv_reply(ping_deadline)
                except AgentTimeout:
                    break
                if reply.get("id") in sent and reply.get("ok"):
                    self.version = reply.get("version")
                    return self.version

    # -- wire -----------------------------------------------------------------------------

    def _next_id(self):
        return "%s-%d" % (self._prefix, next(self._ids))

    def _send_bytes(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise AgentError("sending to %s: %s" % (self.sock_path, e)) from None

    def _send(self, obj):
        self._send_bytes(json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode() + b"\n")

    def _recv_line(self, deadline):
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentTimeout("no reply from the agent on %s" % self.sock_path)
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError as e:
                raise AgentError("reading %s: %s" % (self.sock_path, e)) from None
            if not chunk:
                raise AgentError("%s closed the connection" % self.sock_path)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def _recv_reply(self, deadline):
        line = self._recv_line(deadline)
        try:
            reply = json.loads(line)
        except ValueError as e:
            raise AgentError(
                "the agent sent a line that is not JSON (%s): %r" % (e, line[:200])
            ) from None
        if not isinstance(reply, dict):
            raise AgentError("the agent sent a reply that is not an object: %r" % line[:200])
        return reply

    def request(self, cmd, args=None, timeout=60.0):
        """Sends {"cmd": cmd, **args} and returns the reply as a dict. Raises AgentError with
        the agent's message if it says ok: false, AgentTimeout after timeout seconds.
        Replies with other ids (left over from an earlier client) are skipped."""
        rid = self._next_id()
        msg = {"id": rid, "cmd": cmd}
        msg.update(args or {})
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._recv_reply(deadline)
            if reply.get("id") != rid:
                continue
            if not reply.get("ok"):
                raise AgentError("%s: %s" % (cmd, reply.get("error", "failed without a message")))
            return reply

    def send_raw(self, line, timeout=10.0):
        """Sends one raw line (bytes; a newline is added if missing) and returns the next
        reply, whatever its id. For testing the agent's handling of bad input."""
        if not line.endswith(b"\n"):
            line += b"\n"
        self._send_bytes(line)
        return self._recv_reply(time.monotonic() + timeout)

    # -- commands -------------------------------------------------------------------------

    def ping(self, timeout=10.0):
        """The agent's protocol version ("1")."""
        return self.request("ping", timeout=timeout)["version"]

    def exec(self, argv, stdin=None, timeout=60):
        """Runs argv in the guest (PATH search, no shell: use ["sh", "-c", ...] for one) and
        returns ExecResult (exit, stdout, stderr) with bytes output. stdin: bytes or str.
        The agent kills the command after timeout seconds; the result then has timed_out."""
        args = {"argv": [_to_wire(a) for a in argv], "timeout": timeout}
        if stdin is not None:
            args["stdin"] = _to_wire(stdin)
        # The agent answers at most a few seconds after the command's own timeout.
        reply = self.request("exec", args, timeout=timeout + 30)
        return ExecResult(reply)

    def read_file(self, path, offset=0, length=None, timeout=60.0):
        """The file's bytes from offset, up to length bytes (None: to the end)."""
        parts = []
        got = 0
        while length is None or got < length:
            want = FILE_READ_MAX if length is None else min(FILE_READ_MAX, length - got)
            args = {"path": _to_wire(path), "offset": offset + got, "length": want}
            reply = self.request("file-read", args, timeout=timeout)
            data = base64.b64decode(reply["data_b64"])
            parts.append(data)
            got += len(data)
            if reply.get("eof") or not data:
                break
        return b"".join(parts)

    def write_file(self, path, data, mode=0o644, append=False, timeout=60.0):
        """Writes data (bytes or str) to path, creating or truncating it (appending if
        append); the file gets exactly mode. Big data goes in several requests."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        pos = 0
        while True:
            chunk = data[pos : pos + FILE_WRITE_CHUNK]
            args = {
                "path": _to_wire(path),
                "data_b64": base64.b64encode(chunk).decode("ascii"),
                "append": append or pos > 0,
                "mode": mode,
            }
            self.request("file-write", args, timeout=timeout)
            pos += len(chunk)
            if pos >= len(data):
                return len(data)

    def mem_stats(self, timeout=10.0):
        """The guest's memory figures in bytes: total, free, available, buffers, cached,
        swap_total, swap_free, page_size, and swap_in, swap_out, major_faults,
        minor_faults when the guest kernel counts them."""
        reply = self.request("mem-stats", timeout=timeout)
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def sync(self, timeout=60.0):
        self.request("sync", timeout=timeout)

    def freeze(self, timeout=60.0):
        """Freezes the guest's disk file systems; returns their mount points. They stay
        frozen until thaw(), even if this connection goes away."""
        return self.request("fs-freeze", timeout=timeout)["frozen"]

    def thaw(self, timeout=60.0):
        """Thaws frozen file systems; returns the mount points thawed."""
        return self.request("fs-thaw", timeout=timeout)["thawed"]

    def regenerate_identity(self, hostname=None, timeout=30.0):
        """New random /etc/machine-id and, if given, host name; returns {"machine_id",
        "hostname"}."""
        args = {}
        if hostname is not None:
            args["hostname"] = _to_wire(hostname)
        reply = self.request("regenerate-identity", args, timeout=timeout)
        return {"machine_id": reply["machine_id"], "hostname": reply.get("hostname")}

    def shutdown(self, mode="poweroff", timeout=30.0):
        """Asks the guest to power off ("poweroff"), reboot or halt. Returns once the agent
        has answered; the guest's init does the rest."""
        self.request("shutdown", {"mode": mode}, timeout=timeout)


def _main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__.split("Also a small command line")[1])
        return 2
    sock, cmd, rest = argv[1], argv[2], argv[3:]
    with Agent(sock, timeout=float(os.environ.get("AGENT_TIMEOUT", "180"))) as a:
        if cmd == "ping":
            print(a.ping())
        elif cmd == "exec":
            r = a.exec(rest)
            sys.stdout.buffer.write(r.stdout)
            sys.stderr.buffer.write(r.stderr)
            return r.exit
        elif cmd == "raw":
            print(json.dumps(a.send_raw(" ".join(rest).encode())))
        else:
            print(json.dumps(a.request(cmd, json.loads(rest[0]) if rest else None)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
