#!/usr/bin/env python3
"""tesserad's HTTP front end end to end (docs/daemon.md: listening, events, metrics, console,
uploads): build/tesserad with three listeners at once (a unix socket, https with a self-signed
certificate made here by openssl, plain http on 127.0.0.1) and the checks a user cares about:

- every listener serves the API; plain http beyond loopback, a missing, unreadable, non-PEM or
  mismatched certificate or key are refused at start with a message naming the file;
- GET /api/v1/events streams a tenant's events and never another tenant's, resumes from
  Last-Event-ID, and needs a token;
- GET /metrics is Prometheus text that parses, counts requests by route template and status,
  and shows a tenant no host-wide series;
- PUT /api/v1/volumes/{name}/data streams a 50 MiB body to disk (same bytes, the daemon's
  memory does not grow with it), refuses a body over --upload-max, removes the file of a
  client that went away, and answers 507 on a full disk (a 1 MiB tmpfs);
- GET /api/v1/vms/{name}/console is a websocket onto a real VM's console (a VM from the
  shipped busybox template; guest/build.sh first): its boot output, a command typed and its
  output, ping/pong, fragments, close, protocol errors, over the unix socket and over https;
  the VM stopping closes it; a viewer 403, another tenant 404, a stopped VM 409.
Prints "daemon-http: N passed, N failed"."""

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from websocket import WebSocket  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESSERAD = os.environ.get("TESSERAD", os.path.join(ROOT, "build", "tesserad"))
MiB = 1 << 20

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)
    return cond


# ---- Connections to each kind of listener ----

class Target:
    """One listener: ('unix', path), ('https', host, port, cafile) or ('http', host, port)."""

    def __init__(self, kind, *args):
        self.kind, self.args = kind, args

    def socket(self, timeout=10):
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(timeout)
            s.connect(self.args[0])
            return s
        s = socket.create_connection((self.args[0], self.args[1]), timeout=timeout)
        if self.kind == "https":
            ctx = ssl.create_default_context(cafile=self.args[2])
            s = ctx.wrap_socket(s, server_hostname=self.args[0])
        return s

    def conn(self, timeout=10):
        c = http.client.HTTPConnection("tesserad", timeout=timeout)
        c.sock = self.socket(timeout)
        return c


def call(t, method, path, token=None, body=None, headers=None, timeout=10):
    c = t.conn(timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        doc = None
    return r.status, doc, payload, r


def is_error(doc, code):
    e = doc.get("error") if isinstance(doc, dict) else None
    return isinstance(e, dict) and e.get("code") == code and isinstance(e.get("message"), str)


# ---- The daemon ----

class Daemon:
    def __init__(self, tmp, args):
        self.state = os.path.join(tmp, "state")
        self.logpath = os.path.join(tmp, "tesserad.log")
        self.args = args
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "ab")
        start = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen([TESSERAD, "--state-dir", self.state] + self.args,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(self.logpath, errors="replace") as f:
                f.seek(start)
                text = f.read()
            addrs = re.findall(r"serving the API on (\S+)", text)
            if len(addrs) == len([a for a in self.args if a.startswith(("unix:", "http"))]):
                self.addrs = addrs
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("tesserad did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        return rc

    def rss_peak_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


def refused(tmp, args, want, what):
    """tesserad with args must exit non-zero at once, its message containing each of want."""
    r = subprocess.run([TESSERAD, "--state-dir", os.path.join(tmp, "refused")] + args,
                       capture_output=True, timeout=10)
    err = r.stderr.decode(errors="replace")
    check(r.returncode != 0 and all(w in err for w in want),
          "%s: exit %d, %r lacks %r" % (what, r.returncode, err[-300:], want))


def make_cert(tmp, name, cn="127.0.0.1"):
    cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=" + cn, "-addext", "subjectAltName=IP:" + cn],
                   check=True, capture_output=True)
    return cert, key


# ---- Server-sent events ----

class EventStream:
    """GET /api/v1/events read in a thread of its own: .events collects (id, type, data)."""

    def __init__(self, t, token, query="", last_id=None):
        self.events, self.comments, self.status = [], 0, None
        self.sock = t.socket(timeout=60)
        head = "GET /api/v1/events%s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n" % (
            query, token)
        if last_id is not None:
            head += "Last-Event-ID: %s\r\n" % last_id
        self.sock.sendall((head + "\r\n").encode())
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def run(self):
        f = self.sock.makefile("rb")
        try:
            self.status = int(f.readline().split()[1])
            chunked = False
            while True:
                line = f.readline().strip()
                if not line:
                    break
                if line.lower() == b"transfer-encoding: chunked":
                    chunked = True
            buf = b""
            while True:
                if chunked:
                    size = int(f.readline().strip() or b"0", 16)
                    if not size:
                        break
                    buf += f.read(size)
                    f.readline()
                else:
                    chunk = f.read1(4096)
                    if not chunk:
                        break
                    buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    self.parse(block.decode())
        except (OSError, ValueError, IndexError):
            pass
        finally:
            self.ready.set()

    def parse(self, block):
        ev = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments += 1
                self.ready.set()
                continue
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v
        if "event" in ev:
            self.events.append((ev.get("id"), ev["event"], json.loads(ev.get("data", "null"))))

    def wait_for(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(pred(e) for e in self.events):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---- The checks ----

def setup_tenants(t, admin):
    toks = {}
    for tenant, user, role in (("alpha", "ann", "tenant-admin"), ("alpha", "vic", "viewer"),
                               ("beta", "bob", "tenant-admin")):
        call(t, "POST", "/api/v1/tenants", admin, {"name": tenant})
        call(t, "POST", "/api/v1/tenants/%s/users" % tenant, admin, {"name": user, "role": role})
        st, doc, _, _ = call(t, "POST", "/api/v1/tokens", admin, {"tenant": tenant, "user": user})
        check(st == 201, "token for %s/%s: %d" % (tenant, user, st))
        toks[user] = doc["token"]
    return toks


def check_listeners(d, targets, admin):
    for name, t in targets.items():
        st, doc, _, _ = call(t, "GET", "/api/v1/tenants", admin)
        check(st == 200 and "tenants" in doc, "%s listener serves the API: %d" % (name, st))
        st, doc, _, r = call(t, "GET", "/api/v1/tenants")
        check(st == 401 and is_error(doc, 401), "%s listener wants a token: %d" % (name, st))
    # A client that does not trust the certificate cannot talk to the https listener.
    https = targets["https"]
    raw = socket.create_connection((https.args[0], https.args[1]), timeout=10)
    try:
        ssl.create_default_context().wrap_socket(raw, server_hostname=https.args[0])
        check(False, "an untrusted certificate is refused by a verifying client")
    except ssl.SSLError:
        check(True, "")
    finally:
        raw.close()


def upload(t, token, volume, size, chunk=MiB, content_length=True, query=""):
    """Streams size bytes (a repeating pattern) as the body; returns (status, doc, sha256)."""
    c = t.conn(timeout=60)
    c.putrequest("PUT", "/api/v1/volumes/%s/data%s" % (volume, query))
    c.putheader("Authorization", "Bearer " + token)
    c.putheader("Content-Type", "application/octet-stream")
    if content_length:
        c.putheader("Content-Length", str(size))
    else:
        c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    h = hashlib.sha256()
    block = hashlib.sha256(volume.encode()).digest() * (chunk // 32)
    sent = 0
    try:
        while sent < size:
            part = block[:min(chunk, size - sent)]
            h.update(part)
            c.send(part if content_length else b"%x\r\n%s\r\n" % (len(part), part))
            sent += len(part)
        if not content_length:
            c.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = c.getresponse()
    payload = r.read()
    c.close()
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = None
    return r.status, doc, h.hexdigest()


def volume(t, token, name, size=MiB, fmt="raw"):
    """Makes an empty volume for an upload to land in."""
    st, doc, _, _ = call(t, "POST", "/api/v1/volumes", token,
                         {"name": name, "size_bytes": size, "format": fmt})
    check(st == 201, "volume %s: %d %s" % (name, st, doc))


def landed(t, token, st, doc, what):
    """An upload's 202: waits for its import operation; returns the volume's document."""
    if not check(st == 202 and doc and doc.get("status") in ("running", "success"),
                 "%s: %d %s" % (what, st, doc)):
        return {}
    st, op, _, _ = call(t, "GET", "/api/v1/operations/%s/wait?timeout=60" % doc["id"], token)
    check(st == 200 and op["status"] == "success", "%s: the import: %s" % (what, op))
    st, vol, _, _ = call(t, "GET", "/api/v1/volumes/%s" % op["target"], token)
    check(st == 200, "%s: the volume: %d %s" % (what, st, vol))
    return vol or {}


def check_uploads(d, t, toks, admin):
    up = os.path.join(d.state, "uploads")
    for name in ("disk1", "disk2", "big", "gone", "full"):
        volume(t, toks["ann"], name)
    before = d.rss_peak_kib()
    st, doc, digest = upload(t, toks["ann"], "disk1", 50 * MiB)
    after = d.rss_peak_kib()
    vol = landed(t, toks["ann"], st, doc, "50 MiB upload")
    check(vol.get("size_bytes") == 50 * MiB, "the volume takes the upload's size: %s" % vol)
    check(not os.listdir(up), "the upload's file is gone once imported: %s" % os.listdir(up))
    path = os.path.join(d.state, "pools", "default", "alpha", "disk1.raw")
    if os.path.exists(path):
        with open(path, "rb") as f:
            got = hashlib.sha256()
            for b in iter(lambda: f.read(MiB), b""):
                got.update(b)
        check(got.hexdigest() == digest and os.path.getsize(path) == 50 * MiB,
              "the volume holds the bytes sent")
    else:
        check(False, "the upload landed in %s" % path)
    print("upload: 50 MiB streamed; tesserad's peak RSS %d KiB -> %d KiB" % (before, after))
    check(after - before < 16 * 1024, "50 MiB upload grows the daemon by under 16 MiB: %d KiB"
          % (after - before))
    st, doc, _ = upload(t, toks["ann"], "disk2", 3 * MiB, content_length=False, chunk=64 << 10)
    vol = landed(t, toks["ann"], st, doc, "chunked upload")
    check(vol.get("size_bytes") == 3 * MiB, "chunked upload: %s" % vol)
    # A hostile image: a qcow2 whose backing file is /etc/shadow is refused by the import.
    bad = os.path.join(os.path.dirname(d.state), "evil.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow",
                    bad, "1M"], check=True)
    with open(bad, "rb") as f:
        evil = f.read()
    st, doc, _, _ = call(t, "PUT", "/api/v1/volumes/disk2/data", toks["ann"], evil)
    if check(st == 202, "hostile upload accepted for import: %d" % st):
        st, op, _, _ = call(t, "GET", "/api/v1/operations/%s/wait?timeout=60" % doc["id"],
                            toks["ann"])
        check(op["status"] == "failure" and "backing" in (op["error"] or ""),
              "a qcow2 naming a backing file is refused: %s" % op)

    # Over --upload-max (60 MiB): refused from Content-Length, or as the chunked body passes it.
    st, doc, _ = upload(t, toks["ann"], "big", 61 * MiB)
    check(st == 413 and is_error(doc, 413), "upload over the cap (Content-Length): %d" % st)
    st, doc, _ = upload(t, toks["ann"], "big", 61 * MiB, content_length=False)
    check(st == 413 and is_error(doc, 413), "upload over the cap (chunked): %d" % st)
    check(not [f for f in os.listdir(up) if f.endswith(".part")], "a refused upload leaves no file")

    st, doc, _, _ = call(t, "PUT", "/api/v1/volumes/disk1/data", toks["vic"], b"x")
    check(st == 403 and is_error(doc, 403), "a viewer's upload: %d" % st)
    st, doc, _, _ = call(t, "PUT", "/api/v1/volumes/..%2fx/data", toks["ann"], b"x")
    check(st == 400 and is_error(doc, 400), "an upload to a bad name: %d" % st)
    st, doc, _, _ = call(t, "PUT", "/api/v1/volumes/disk3/data", None, b"x")
    check(st == 401, "an upload without a token: %d" % st)
    st, doc, _, _ = call(t, "PUT", "/api/v1/volumes/disk3/data?tenant=beta", toks["ann"], b"x")
    check(st == 404, "an upload into another tenant: %d" % st)

    # A client that goes away mid-upload: its file is removed.
    s = t.socket()
    s.sendall(("PUT /api/v1/volumes/gone/data HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
               "Content-Length: %d\r\n\r\n" % (toks["ann"], 20 * MiB)).encode() + b"x" * MiB)
    part = os.path.join(up, "alpha.gone.part")
    deadline = time.time() + 5
    while not os.path.exists(part) and time.time() < deadline:
        time.sleep(0.05)
    check(os.path.exists(part), "an upload in progress has its file")
    s.close()
    deadline = time.time() + 10
    while os.path.exists(part) and time.time() < deadline:
        time.sleep(0.05)
    check(not os.path.exists(part), "the file of an upload whose client went away is removed")

    # A full disk: a 1 MiB tmpfs under the uploads directory.
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", up],
                      capture_output=True).returncode:
        check(False, "mount a 1 MiB tmpfs for the disk-full check (needs root)")
        return
    try:
        st, doc, _ = upload(t, toks["ann"], "full", 4 * MiB)
        check(st == 507 and is_error(doc, 507), "upload onto a full disk: %d %s" % (st, doc))
        check(not os.listdir(up), "a disk-full upload leaves nothing: %s" % os.listdir(up))
    finally:
        subprocess.run(["umount", up])


def check_events(d, t, toks, admin):
    a = EventStream(t, toks["ann"])
    b = EventStream(t, toks["bob"])
    p = EventStream(t, admin)
    pb = EventStream(t, admin, "?tenant=beta")
    check(a.status == 200 and a.comments >= 1, "an event stream opens: %s" % a.status)
    volume(t, toks["ann"], "ev1")
    volume(t, toks["bob"], "ev2")
    st, doc, _ = upload(t, toks["ann"], "ev1", 1024)
    check(st == 202, "upload for an event: %d" % st)
    check(a.wait_for(lambda e: e[1] == "volume.upload" and e[2].get("name") == "ev1"),
          "alpha's stream gets alpha's event: %s" % a.events)
    st, doc, _ = upload(t, toks["bob"], "ev2", 1024)
    check(b.wait_for(lambda e: e[2].get("name") == "ev2"), "beta's stream gets beta's event")
    check(p.wait_for(lambda e: e[2].get("name") == "ev2") and
          any(e[2].get("name") == "ev1" for e in p.events), "the platform admin's stream gets both")
    check(pb.wait_for(lambda e: e[2].get("name") == "ev2") and
          all(e[2].get("name") != "ev1" for e in pb.events), "?tenant=beta gets only beta's")
    time.sleep(0.3)
    check(all("ev2" not in json.dumps(e[2]) for e in a.events), "alpha never sees beta's events")
    check(all("ev1" not in json.dumps(e[2]) for e in b.events), "beta never sees alpha's events")
    first = a.events[0][0]
    for s in (a, b, p, pb):
        s.close()

    # Resuming: after id first-1, alpha gets ev1 again; beta's ev2 stays hidden.
    r = EventStream(t, toks["ann"], last_id=str(int(first) - 1))
    check(r.wait_for(lambda e: e[0] == first), "Last-Event-ID resumes within the ring")
    r.close()
    r = EventStream(t, toks["ann"], "?tenant=beta")
    check(r.status == 404, "a tenant naming another tenant's events: %s" % r.status)
    r.close()
    st, _, _, _ = call(t, "GET", "/api/v1/events")
    check(st == 401, "events without a token: %d" % st)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (\S+)$')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; None when a line is not exposition format 0.0.4."""
    out, typed = {}, set()
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            if typ not in ("counter", "gauge", "untyped", "summary", "histogram"):
                return None
            typed.add(name)
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m or m.group(1) not in typed:
            return None
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def check_metrics(d, targets, toks, admin):
    t = targets["unix"]
    for tt in targets.values():
        call(tt, "GET", "/api/v1/tenants", admin)
    call(t, "GET", "/api/v1/tenants/nosuch", admin)
    st, _, payload, r = call(t, "GET", "/metrics", admin)
    check(st == 200 and r.getheader("Content-Type", "").startswith("text/plain; version=0.0.4"),
          "/metrics answers Prometheus text: %d %s" % (st, r.getheader("Content-Type")))
    m = parse_prometheus(payload.decode())
    check(m is not None, "/metrics parses as exposition format 0.0.4:\n" + payload.decode()[:600])
    m = m or {}

    def count(route, status, method="GET"):
        return m.get(("tessera_api_requests_total", frozenset(
            {("method", method), ("route", route), ("status", str(status))})), 0)

    check(count("/api/v1/tenants", 200) >= 3, "requests counted on every listener")
    check(count("/api/v1/tenants/{tenant}", 404) >= 1, "a route template, not the raw path")
    check(count("/api/v1/volumes/{name}/data", 202, "PUT") >= 2, "uploads counted")
    check(not any("nosuch" in v for k in m for _, v in k[1]), "no raw path names in labels")
    st, _, payload, _ = call(t, "GET", "/metrics", toks["ann"])
    m2 = parse_prometheus(payload.decode())
    check(st == 200 and m2 is not None and not any(k[0] == "tessera_api_requests_total"
                                                   for k in m2),
          "a tenant sees no host-wide request counters")
    st, doc, _, _ = call(t, "GET", "/metrics")
    check(st == 401 and is_error(doc, 401), "/metrics without a token: %d" % st)


def console(t, vm, token, version="13"):
    return WebSocket(t.socket(timeout=30), "/api/v1/vms/%s/console" % vm, token, version)


def check_console(d, targets, toks, admin):
    """A real VM from the shipped busybox template (build/guest from guest/build.sh)."""
    u = targets["unix"]
    st, doc, payload, _ = call(u, "POST", "/api/v1/vms", toks["ann"],
                               {"name": "web", "template": "busybox", "start": True})
    if not check(st in (201, 202) and "operation" in doc, "create and start a VM: %d %s"
                 % (st, payload[:300])):
        return
    st, op, _, _ = call(u, "GET", "/api/v1/operations/%s/wait?timeout=120"
                        % doc["operation"]["id"], toks["ann"], timeout=130)
    vm_pid = call(u, "GET", "/api/v1/vms/web", toks["ann"])[1]["pid"]
    check(st == 200 and op["status"] == "success", "the VM started: %s" % op)
    call(u, "POST", "/api/v1/vms", toks["ann"], {"name": "down", "template": "busybox"})
    for name in ("unix", "https"):
        t = targets[name]
        ws = console(t, "web", toks["ann"])
        check(ws.status == 101 and ws.accept_ok, "%s: websocket handshake: %d %s"
              % (name, ws.status, ws.headers))
        if ws.status != 101:
            continue
        if name == "unix":
            # The first client gets the output kept while none was attached: the boot.
            check(b"TESSERA-GUEST-READY" in ws.recv_until(b"TESSERA-GUEST-READY", 120),
                  "%s: the guest's boot output" % name)
        # Each listener's own words: nothing replayed from an earlier client can match.
        check(ws.run("echo hel''lo-" + name, "hello-" + name), "%s: a command and its output"
              % name)
        ws.send_frame(9, b"are you there")
        op, p = ws.recv_control()
        check(op == 10 and p == b"are you there", "%s: ping answered by pong" % name)
        # A text message in three fragments, a ping between them: the shell runs it (the
        # quotes keep the terminal's echo of the line from matching).
        ws.send_frame(1, b"echo %s fr''ag" % name.encode(), fin=False)
        ws.send_frame(9, b"x")
        ws.send_frame(0, "mé".encode(), fin=False)
        ws.send_frame(0, b"nt\n")
        op, p = ws.recv_control()
        check(op == 10 and p == b"x", "%s: ping between fragments" % name)
        want = ("%s fragmént" % name).encode()
        check(want in ws.recv_until(want, 60),
              "%s: fragments reassembled, run by the guest's shell" % name)
        ws.send_frame(8, struct.pack(">H", 1000) + b"bye")
        op, p = ws.recv_control()
        check(op == 8 and p[:2] == struct.pack(">H", 1000), "%s: close echoed" % name)
        check(not ws.masked, "%s: server frames are unmasked" % name)
        ws.close()

    # Two clients at once (docs/console.md): both see the output of what one typed.
    # ws2's command coming back shows the VMM has taken it in before ws1 types.
    ws1, ws2 = console(u, "web", toks["ann"]), console(targets["https"], "web", toks["ann"])
    check(ws2.run("echo rea''dy", "ready"), "a second client's command")
    check(ws1.run("echo tw''o", "two") and b"two" in ws2.recv_until(b"two", 30),
          "two clients see the output of a command one of them typed")
    ws1.close()
    ws2.close()

    t = u
    for payload, opcode, masked, code, what in (
            (b"unmasked", 2, False, 1002, "an unmasked frame"),
            (b"x" * 70000, 2, True, 1009, "an oversized frame"),
            (b"\xff\xfe", 1, True, 1007, "invalid UTF-8 text")):
        ws = console(t, "web", toks["ann"])
        ws.send_frame(opcode, payload, masked=masked)
        op, p = ws.recv_control()
        check(op == 8 and p[:2] == struct.pack(">H", code), "%s is a %d close: %d %r"
              % (what, code, op, p[:2]))
        ws.close()
    # The VM still answers after those.
    ws = console(t, "web", toks["ann"])
    check(ws.run("echo al''ive", "alive"), "the console works after the refusals")
    ws.close()

    for path, tok, want, what in (
            ("/api/v1/vms/web/console", None, 401, "no token"),
            ("/api/v1/vms/web/console", toks["vic"], 403, "a viewer"),
            ("/api/v1/vms/web/console", toks["bob"], 404, "another tenant"),
            ("/api/v1/vms/nosuch/console", toks["ann"], 404, "no such VM"),
            ("/api/v1/vms/down/console", toks["ann"], 409, "a VM not running"),
            ("/api/v1/vms/a%2e%2e/console", toks["ann"], 400, "a bad name")):
        ws = WebSocket(t.socket(), path, tok)
        check(ws.status == want, "console, %s: %d, want %d" % (what, ws.status, want))
        ws.close()
    ws = console(t, "web", toks["ann"], version="8")
    check(ws.status == 426 and ws.headers.get("sec-websocket-version") == "13",
          "console, websocket version 8: %d" % ws.status)
    ws.close()
    st, doc, _, _ = call(t, "GET", "/api/v1/vms/web/console", toks["ann"])
    check(st == 400 and is_error(doc, 400), "console without an upgrade: %d" % st)

    # The VM stopping ends the websocket with a close; a stopped VM's console is 409.
    ws = console(t, "web", toks["ann"])
    st, doc, _, _ = call(t, "POST", "/api/v1/vms/web/actions/stop", toks["ann"])
    check(st == 202, "stop: %d" % st)
    op, p = 0, b""
    try:
        op, p = ws.recv_control()
    except (EOFError, OSError):
        pass
    check(op == 8, "the VM stopping closes the websocket: %d %r" % (op, p))
    ws.close()
    if st == 202:
        call(t, "GET", "/api/v1/operations/%s/wait?timeout=60" % doc.get("operation", doc)["id"],
             toks["ann"], timeout=70)
    ws = console(t, "web", toks["ann"])
    check(ws.status == 409, "console of a stopped VM: %d" % ws.status)
    ws.close()
    check(not os.path.exists("/proc/%d" % vm_pid), "the VM's process is gone")


def run(tmp):
    cert, key = make_cert(tmp, "server")
    _, other_key = make_cert(tmp, "other")
    bad = os.path.join(tmp, "bad.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")

    refused(tmp, ["--listen", "http://0.0.0.0:1"], ["http://0.0.0.0:1", "clear text"],
            "plain http beyond loopback")
    refused(tmp, ["--listen", "http://localhost:1"], ["clear text"], "plain http by name")
    refused(tmp, ["--listen", "https://127.0.0.1:0"], ["--tls-cert"], "https without a cert")
    refused(tmp, ["--listen", "https://127.0.0.1:0", "--tls-cert", tmp + "/none.crt",
                  "--tls-key", key], [tmp + "/none.crt", "cannot read"], "unreadable cert")
    refused(tmp, ["--listen", "https://127.0.0.1:0", "--tls-cert", bad, "--tls-key", key],
            [bad, "not a PEM certificate"], "a cert that is not PEM")
    refused(tmp, ["--listen", "https://127.0.0.1:0", "--tls-cert", cert, "--tls-key", bad],
            [bad, "private key"], "a key that is not PEM")
    refused(tmp, ["--listen", "https://127.0.0.1:0", "--tls-cert", cert, "--tls-key",
                  other_key], [other_key, "does not match", cert], "a mismatched key")
    refused(tmp, ["--listen", "ftp://x"], ["ftp://x", "expected"], "an unknown scheme")

    sock = os.path.join(tmp, "api.sock")
    d = Daemon(tmp, ["--listen", "unix:" + sock, "--listen", "https://127.0.0.1:0",
                     "--listen", "http://127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
                     "--upload-max", str(60 * MiB)])
    try:
        d.start()
        check(len(d.addrs) == 3, "three listeners: %s" % d.addrs)
        https_port = int(d.addrs[1].rsplit(":", 1)[1])
        http_port = int(d.addrs[2].rsplit(":", 1)[1])
        targets = {"unix": Target("unix", sock),
                   "https": Target("https", "127.0.0.1", https_port, cert),
                   "http": Target("http", "127.0.0.1", http_port)}
        admin = open(os.path.join(d.state, "admin.token")).read().strip()
        check_listeners(d, targets, admin)
        toks = setup_tenants(targets["unix"], admin)
        check_uploads(d, targets["unix"], toks, admin)
        check_events(d, targets["https"], toks, admin)
        check_console(d, targets, toks, admin)
        check_metrics(d, targets, toks, admin)
        # A stop with an event stream and a console open still ends promptly and cleanly.
        s = EventStream(targets["unix"], admin)
        t0 = time.time()
        check(d.stop() == 0, "clean stop with an event stream open")
        print("stop with an open event stream took %.2f s" % (time.time() - t0))
        check(time.time() - t0 < 10, "stop does not wait for the heartbeat")
        s.close()
        check(not os.path.exists(sock), "the unix socket is removed on stop")
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def main():
    if not os.access(TESSERAD, os.X_OK):
        print("daemon-http: build/tesserad is missing (run make)")
        print("daemon-http: 0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="tessera-http-")
    try:
        run(tmp)
    except Exception as e:  # a daemon that does not start, or a request that hangs
        import traceback
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if failed and os.path.exists(os.path.join(tmp, "tesserad.log")):
            with open(os.path.join(tmp, "tesserad.log"), errors="replace") as f:
                print("tesserad's log:\n" + f.read()[-4000:])
        subprocess.run(["umount", os.path.join(tmp, "state", "uploads")], capture_output=True)
        # A VM is a process of its own that outlives the daemon: end any a failure left.
        for root, _, files in os.walk(os.path.join(tmp, "state")):
            if "pid" in files:
                try:
                    os.kill(int(open(os.path.join(root, "pid")).read().split()[0]), 9)
                except (OSError, ValueError, IndexError):
                    pass
        subprocess.run(["rm", "-rf", tmp])
    print("daemon-http: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
