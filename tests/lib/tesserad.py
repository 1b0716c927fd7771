"""A tesserad for tests: started on a fresh (or given) state directory, reached over its unix
socket with JSON requests and a bearer token; stopped with SIGTERM or killed with SIGKILL.
Used by tests/system/test_daemon*.py and bench/daemon.py."""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESSERAD = os.environ.get("TESSERAD", os.path.join(ROOT, "build", "tesserad"))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("tesserad", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def cgroup_dirs(name):
    """Every directory the control group NAME has, in each hierarchy mounted here."""
    out = []
    root = "/sys/fs/cgroup"
    if os.path.isdir(os.path.join(root, name)):
        out.append(os.path.join(root, name))
    for h in (os.listdir(root) if os.path.isdir(root) else []):
        d = os.path.join(root, h, name)
        if os.path.isdir(d):
            out.append(d)
    return out


def cgroup_cleanup(name):
    """Kills what still runs in the control group tree NAME and removes it, leaves first."""
    for top in cgroup_dirs(name):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except OSError:
                            pass
            except OSError:
                pass
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def procs(match):
    """The pids, sorted, of the live processes whose argv (a list of bytes, from
    /proc/PID/cmdline) match(argv) accepts; zombies have no command line and are left out."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0] and match(argv):
            out.append(int(pid))
    return sorted(out)


def network_missing(tools=()):
    """Why virtual networks cannot be made here (not root, a tool missing, no tun device), or
    None. tools: what the test needs beyond ip, dnsmasq and nft."""
    if os.geteuid() != 0:
        return "not root (network namespaces and taps need CAP_NET_ADMIN)"
    for tool in ("ip", "dnsmasq", "nft") + tuple(tools):
        if not shutil.which(tool):
            return "%s is not installed (scripts/install-deps.sh)" % tool
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "no /dev/net/tun"
    return None


def network_cleanup(state):
    """Removes what the virtual networks of the state directory STATE made, whatever the
    daemon left: their dnsmasq processes and namespaces (docs/networks.md: `tsrn-ID` for each
    folder STATE/networks/ID), and its Open vSwitch (STATE/ovs, for VLAN tags)."""
    top = os.path.join(state, "networks")
    ids = os.listdir(top) if os.path.isdir(top) else []
    ovs = os.path.join(state, "ovs") + "/"
    for pid in procs(lambda argv: (argv[0] == b"dnsmasq" and
                                   any((top + "/").encode() in a for a in argv)) or
                     (argv[0] in (b"ovsdb-server", b"ovs-vswitchd") and
                      any(ovs.encode() in a for a in argv))):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for i in ids:
        subprocess.run(["ip", "netns", "delete", "tsrn-" + i], stderr=subprocess.DEVNULL)
    # The switch's bridge device outlives a killed switch; its database names it.
    try:
        with open(os.path.join(state, "ovs", "conf.db"), errors="replace") as f:
            bridges = set(re.findall(r"\btsrs[0-9a-f]{11}\b", f.read()))
    except OSError:
        bridges = set()
    for b in bridges:
        subprocess.run(["ip", "link", "delete", b], stderr=subprocess.DEVNULL)


class Daemon:
    """tesserad on a state directory. Its VMs' control groups are its own (a parent named
    after this test process), removed when the test program exits."""
    _serial = 0

    def __init__(self, state, args=(), prefix=()):
        """prefix: a command that runs tesserad (e.g. nsenter into a network namespace)."""
        self.state = state
        self.prefix = list(prefix)
        self.sock = os.path.join(state, "tesserad.sock")
        self.args = list(args)
        if "--no-cgroups" not in self.args and "--cgroup-parent" not in self.args:
            Daemon._serial += 1
            self.cgroup = "tessera-test-%d-%d" % (os.getpid(), Daemon._serial)
            self.args += ["--cgroup-parent", self.cgroup]
            atexit.register(cgroup_cleanup, self.cgroup)
        self.proc = None
        self.token = None

    def start(self, timeout=20):
        self.log = open(os.path.join(os.path.dirname(self.state), "tesserad.log"), "ab")
        self.proc = subprocess.Popen(self.prefix + [TESSERAD, "--state-dir", self.state] + self.args,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                    with open(os.path.join(self.state, "admin.token")) as f:
                        self.token = f.read().strip()
                    return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("tesserad did not start (see %s)" % self.log.name)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()

    def call(self, method, path, token=None, body=None, raw=None, headers=None, timeout=30):
        """Returns (status, parsed JSON or None, raw body). token None: the administrator's."""
        c = UnixHTTPConnection(self.sock, timeout=timeout)
        h = {"Content-Type": "application/json"}
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        doc = None
        if payload:
            try:
                doc = json.loads(payload)
            except ValueError:
                doc = None
        return r.status, doc, payload

    def ok(self, method, path, token=None, body=None, want=(200, 201, 202, 204)):
        st, doc, payload = self.call(method, path, token, body)
        if st not in want:
            raise AssertionError("%s %s: %d %s" % (method, path, st, payload[:300]))
        return doc

    def wait_op(self, doc, token=None, timeout=120):
        """Waits for the operation a 202 answered with; returns it (raises on failure)."""
        op = doc.get("operation", doc)
        st, res, payload = self.call("GET", "/api/v1/operations/%s/wait?timeout=%d" %
                                     (op["id"], timeout), token, timeout=timeout + 10)
        if st != 200 or res.get("status") != "success":
            raise AssertionError("operation %s: %d %s" % (op["id"], st, payload[:300]))
        return res

    def user(self, tenant, name, role):
        """Creates a user in tenant and returns a token for it."""
        self.ok("POST", "/api/v1/tenants/%s/users" % tenant, body={"name": name, "role": role})
        return self.ok("POST", "/api/v1/tokens", body={"tenant": tenant, "user": name})["token"]
