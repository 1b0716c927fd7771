#!/usr/bin/env python3
"""`tessera` as tesserad's client, end to end: starts build/tesserad on a fresh state directory
and drives build/tessera against the routes the daemon serves (tenants, users, tokens, audit):
tables and --json, the daemon's errors as `tessera: NOUN VERB: STATUS: message` with exit status
1, usage errors with 2, the token from --token, --token-file and TESSERA_TOKEN, the host from
--host (unix:PATH or a path) and TESSERA_HOST, and https: plain http refused, a certificate
that does not chain to --ca-cert refused, --insecure warned about. Prints "cli-client: N
passed, N failed"."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESSERAD = os.environ.get("TESSERAD", os.path.join(ROOT, "build", "tesserad"))
TESSERA = os.environ.get("TESSERA", os.path.join(ROOT, "build", "tessera"))

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def tessera(*args, env=None, token=None, host=None):
    """Runs build/tessera; returns (exit status, stdout, stderr). host/token go in the
    environment unless None."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    if host is not None:
        e["TESSERA_HOST"] = host
    if token is not None:
        e["TESSERA_TOKEN"] = token
    e.update(env or {})
    p = subprocess.run([TESSERA] + list(args), env=e, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def expect(what, result, rc, out=None, err=None):
    """Checks an exit status and that stdout/stderr contain the given text."""
    got_rc, got_out, got_err = result
    ok = got_rc == rc and (out is None or out in got_out) and (err is None or err in got_err)
    check(ok, "%s: exit %d, stdout %r, stderr %r; want exit %d%s%s" % (
        what, got_rc, got_out[-300:], got_err[-300:], rc,
        ", stdout with %r" % out if out else "", ", stderr with %r" % err if err else ""))
    return got_out


def table(text):
    """A table's lines split into cells at runs of 2+ spaces; checks the columns line up."""
    lines = text.rstrip("\n").split("\n")
    head = lines[0]
    starts = [i for i in range(len(head)) if head[i] != " " and (i == 0 or head[i - 1] == " ")]
    rows = []
    for line in lines:
        cells = []
        for k, s in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(line)
            check(s == 0 or line[s - 1] == " ", "table column %d not aligned in %r" % (k, line))
            cells.append(line[s:end].strip())
        rows.append(cells)
    return rows


class Daemon:
    def __init__(self, state, args=()):
        self.state = state
        self.args = list(args)
        self.sock = os.path.join(state, "tesserad.sock")

    def start(self):
        self.log = open(self.state + ".log", "ab")
        self.proc = subprocess.Popen([TESSERAD, "--state-dir", self.state] + self.args,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tesserad did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.log.close()


def run(d, tmp):
    host = "unix:" + d.sock
    admin_file = os.path.join(d.state, "admin.token")
    admin = open(admin_file).read().strip()

    # Usage errors come before any connection: no host or token needed, exit 2.
    expect("no words", tessera(), 2, err="Usage")
    expect("noun help", tessera("tenant", "--help"), 0, out="tenant create NAME")
    expect("vm help", tessera("vm", "--help"), 0, out="vm create NAME --template T")
    expect("unknown verb", tessera("tenant", "frob"), 2,
           err="tessera: tenant: unknown verb 'frob'")
    expect("missing template", tessera("vm", "create", "web"), 2,
           err="--template T is required")
    expect("bad size", tessera("vm", "create", "web", "--template", "t", "--memory", "lots"), 2,
           err="--memory 'lots' is not a size")
    expect("option not for it", tessera("tenant", "list", "--role", "x"), 2,
           err="option '--role' does not apply")
    expect("no host", tessera("tenant", "list", token=admin), 2, err="no daemon named")
    expect("no token", tessera("tenant", "list", host=host), 2, err="no token")
    expect("http refused", tessera("--host", "http://127.0.0.1:8443", "tenant", "list",
                                   token=admin), 2, err="plain http is refused")
    expect("odd scheme", tessera("--host", "ftp://x", "tenant", "list", token=admin), 2,
           err="expected unix:PATH")
    expect("https path refused", tessera("--host", "https://h:1/api", "tenant", "list",
                                         token=admin), 2, err="no path")
    expect("token and file", tessera("--token", "a", "--token-file", admin_file, "tenant",
                                     "list", host=host), 2, err="not both")
    expect("missing token file", tessera("--token-file", "/nonexistent/t", "tenant", "list",
                                         host=host), 2, err="/nonexistent/t")
    # The VMM's own `tessera vm ... --api-sock` is not the client's.
    expect("local vm", tessera("vm", "describe", "--api-sock", os.path.join(tmp, "no.sock")),
           1, err="no.sock")

    # Tenants, as the platform administrator; the host from --host, TESSERA_HOST, a bare path.
    out = expect("tenant create", tessera("--host", host, "--token", admin, "tenant", "create",
                                          "acme"), 0, out="name:")
    check("acme" in out, "tenant create prints the tenant: %r" % out)
    expect("duplicate", tessera("tenant", "create", "acme", host=host, token=admin), 1)
    rc, _, err = tessera("tenant", "create", "acme", host=host, token=admin)
    check(err == "tessera: tenant create: 409: tenant 'acme' already exists\n",
          "409 message: %r" % err)
    expect("tenant create 2", tessera("tenant", "create", "beta-corp", host=d.sock,
                                      token=admin), 0)
    out = expect("tenant list", tessera("tenant", "list", host=host, token=admin), 0)
    rows = table(out)
    check(rows[0] == ["NAME", "CREATED"], "tenant list header: %r" % rows[0])
    check(sorted(r[0] for r in rows[1:]) == ["acme", "beta-corp"], "tenant rows: %r" % rows)
    check(all(r[1].endswith("Z") and len(r[1]) == 20 for r in rows[1:]),
          "created as UTC time: %r" % rows)
    out = expect("tenant list --json", tessera("tenant", "list", "--json", host=host,
                                               token=admin), 0)
    doc = json.loads(out)
    check(sorted(t["name"] for t in doc["tenants"]) == ["acme", "beta-corp"],
          "--json is the daemon's JSON: %r" % doc)
    out = expect("tenant show --json", tessera("--json", "tenant", "show", "acme", host=host,
                                               token=admin), 0)
    check(json.loads(out)["name"] == "acme", "show --json: %r" % out)
    expect("tenant show missing", tessera("tenant", "show", "nope", host=host, token=admin), 1,
           err="tessera: tenant show: 404: ")
    expect("bad name", tessera("tenant", "create", "Bad/Name", host=host, token=admin), 1,
           err="tessera: tenant create: 400: ")

    # Users and tokens; the token from a file and from the environment.
    expect("user create", tessera("user", "create", "alice", "--role", "tenant-admin",
                                  "--tenant", "acme", host=host, token=admin), 0,
           out="tenant-admin")
    expect("user create viewer", tessera("user", "create", "vic", "--role", "viewer",
                                         "--tenant", "acme", "--token-file", admin_file,
                                         host=host), 0)
    out = expect("token create", tessera("token", "create", "--tenant", "acme", "--user",
                                         "alice", "--description", "ci run", "--json",
                                         host=host, token=admin), 0)
    alice = json.loads(out)["token"]
    alice_id = json.loads(out)["id"]
    out = expect("token create viewer", tessera("token", "create", "--tenant", "acme", "--user",
                                                "vic", host=host, token=admin), 0,
                 err="never shown again")
    vic = [l.split()[-1] for l in out.splitlines() if l.startswith("token:")][0]
    check(vic.startswith("tsr_"), "the table view shows the new secret: %r" % out)
    vic_file = os.path.join(tmp, "vic.token")
    with open(vic_file, "w") as f:
        f.write("  " + vic + "  \n# comment\n")

    # user list without --tenant: the caller's own tenant, found from its token.
    out = expect("user list own", tessera("user", "list", host=host, token=alice), 0)
    rows = table(out)
    check(rows[0] == ["NAME", "TENANT", "ROLE", "CREATED"], "user header: %r" % rows[0])
    check(sorted((r[0], r[1], r[2]) for r in rows[1:]) ==
          [("alice", "acme", "tenant-admin"), ("vic", "acme", "viewer")], "users: %r" % rows)
    expect("user list platform", tessera("user", "list", host=host, token=admin), 2,
           err="--tenant T")
    # Another tenant's users answer 404, as if it did not exist.
    expect("user list other", tessera("user", "list", "--tenant", "beta-corp", host=host,
                                      token=alice), 1, err="404")
    # The viewer, by --token-file: reads yes, changes 403.
    out = expect("viewer reads", tessera("tenant", "list", "--token-file", vic_file,
                                         host=host), 0)
    check([r[0] for r in table(out)[1:]] == ["acme"], "a viewer sees its tenant: %r" % out)
    expect("viewer 403", tessera("user", "create", "eve", "--role", "viewer",
                                 "--token-file", vic_file, host=host), 1,
           err="tessera: user create: 403: ")
    # --token wins over TESSERA_TOKEN; a token nobody issued is a 401.
    expect("flag over env", tessera("--token", admin, "tenant", "list", host=host,
                                    token="tsr_bogus"), 0)
    expect("bad token", tessera("tenant", "list", host=host, token="tsr_" + "0" * 16 + "_" +
                                "0" * 64), 1, err="tessera: tenant list: 401: ")
    expect("token with newline", tessera("--token", "tsr_a\r\nX-Evil: 1", "tenant", "list",
                                         host=host), 2, err="control character")

    out = expect("token list", tessera("token", "list", host=host, token=alice), 0)
    rows = table(out)
    check(rows[0][:4] == ["ID", "TENANT", "USER", "ROLE"], "token header: %r" % rows[0])
    check(any(r[0] == alice_id and r[-1] == "ci run" for r in rows[1:]), "tokens: %r" % rows)
    check(not any(r[1] == "-" for r in rows[1:]), "a tenant-admin sees its tenant's only")
    check(alice not in out, "listings never show a secret")
    out = expect("token revoke", tessera("token", "revoke", alice_id, host=host, token=admin), 0)
    check(out.strip() == "revoked token " + alice_id, "revoke prints: %r" % out)
    expect("revoked", tessera("tenant", "list", host=host, token=alice), 1, err="401")

    # The audit log: a table, and --json as the daemon sent it.
    out = expect("audit", tessera("audit", host=host, token=admin), 0)
    rows = table(out)
    check(rows[0] == ["TIME", "TENANT", "ACTOR", "ACTION", "TARGET", "STATUS", "MESSAGE"],
          "audit header: %r" % rows[0])
    check(any(r[3] == "tenant.create" and r[5] == "409" for r in rows[1:]),
          "the refused create is audited: %r" % rows[:6])
    out = expect("audit --json", tessera("audit", "--json", host=host, token=admin), 0)
    check(any(a["action"] == "token.revoke" for a in json.loads(out)["audit"]),
          "audit --json holds the revoke")

    # Virtual networks (docs/networks.md; they need root, iproute2 and nftables on the host).
    if os.geteuid() == 0 and shutil.which("ip") and shutil.which("nft"):
        expect("network create", tessera("network", "create", "lan", "--subnet", "10.0.0.0/24",
                                         "--no-dhcp", "--tenant", "acme", host=host,
                                         token=admin), 0, out="10.0.0.1")
        expect("network bad subnet", tessera("network", "create", "x", "--subnet", "10.0.0.1/24",
                                             "--tenant", "acme", host=host, token=admin), 1,
               err="host bits set")
        out = expect("network list", tessera("network", "list", "--tenant", "acme", host=host,
                                             token=admin), 0)
        rows = table(out)
        check(rows[0][:5] == ["NAME", "TENANT", "SUBNET", "GATEWAY", "DHCP"] and
              rows[1][:4] == ["lan", "acme", "10.0.0.0/24", "10.0.0.1"], "networks: %r" % rows)
        expect("network delete", tessera("network", "delete", "lan", "--tenant", "acme",
                                         host=host, token=admin), 0, out="deleted network lan")
        expect("network gone", tessera("network", "show", "lan", "--tenant", "acme", host=host,
                                       token=admin), 1, err="404")
        # Across hosts (this daemon has --vxlan-local): VNI and peers, then peers replaced.
        vni = str(300000 + os.getpid() % 100000)
        out = expect("network create vxlan",
                     tessera("network", "create", "span", "--subnet", "10.6.0.0/24", "--no-dhcp",
                             "--vxlan-vni", vni, "--vxlan-peer", "192.0.2.2", "--vxlan-peer",
                             "192.0.2.3", "--tenant", "acme", "--json", host=host, token=admin), 0)
        check(json.loads(out or "{}").get("vxlan") == {"vni": int(vni),
                                                      "peers": ["192.0.2.2", "192.0.2.3"]},
              "the network spans hosts: %r" % out)
        out = expect("network peers", tessera("network", "peers", "span", "--vxlan-peer",
                                              "192.0.2.4", "--tenant", "acme", "--json",
                                              host=host, token=admin), 0)
        check(json.loads(out or "{}").get("vxlan", {}).get("peers") == ["192.0.2.4"],
              "peers replaced: %r" % out)
        expect("network peer without vni", tessera("network", "create", "x", "--subnet",
                                                   "10.7.0.0/24", "--vxlan-peer", "192.0.2.2",
                                                   "--tenant", "acme", host=host, token=admin),
               2, err="--vxlan-vni")
        expect("network bad vlan", tessera("network", "create", "x", "--subnet", "10.7.0.0/24",
                                           "--vlan", "4095", "--tenant", "acme", host=host,
                                           token=admin), 2, err="--vlan")
        expect("network vlan without trunk", tessera("network", "create", "x", "--subnet",
                                                     "10.7.0.0/24", "--vlan", "7", "--tenant",
                                                     "acme", host=host, token=admin), 1,
               err="--vlan-trunk")
        expect("network delete span", tessera("network", "delete", "span", "--tenant", "acme",
                                              host=host, token=admin), 0)
    expect("tenant delete", tessera("tenant", "delete", "beta-corp", host=host, token=admin), 0,
           out="deleted tenant beta-corp")
    expect("tenant delete again", tessera("tenant", "delete", "beta-corp", host=host,
                                          token=admin), 1, err="404")

    # The console's websocket handshake over the daemon's socket: a refusal is the daemon's
    # status and message (no VM "web" exists; test_cli_console.py attaches to a real one).
    expect("console 404", tessera("vm", "console", "web", host=host, token=admin), 1,
           err="tessera: vm console: 404: ")
    expect("console 401", tessera("vm", "console", "web", host=host, token="tsr_" + "1" * 16 +
                                  "_" + "1" * 64), 1, err="tessera: vm console: 401: ")

    # Nobody listening: exit 1 naming the socket.
    expect("no daemon", tessera("tenant", "list", host="unix:" + os.path.join(tmp, "none.sock"),
                                token=admin), 1, err="cannot reach tesserad")
    https_checks(tmp, admin)


def https_checks(tmp, admin):
    """A TLS server whose certificate is not from --ca-cert is refused; with the right CA the
    TLS handshake passes (the answer, from openssl's test server, is then not the daemon's
    JSON); --insecure warns. openssl s_server stands in for an https tesserad."""
    if not shutil.which("openssl"):
        check(False, "openssl is needed for the https checks (scripts/install-deps.sh)")
        return
    key, cert = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    other_key, other = os.path.join(tmp, "k2.pem"), os.path.join(tmp, "c2.pem")
    for k, c in ((key, cert), (other_key, other)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", k, "-out", c, "-days",
                        "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen(["openssl", "s_server", "-quiet", "-www", "-accept", str(port),
                            "-key", key, "-cert", cert], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "https://127.0.0.1:%d" % port
        expect("https untrusted", tessera("--host", url, "--ca-cert", other, "tenant", "list",
                                          token=admin), 1, err="not trusted")
        expect("https trusted", tessera("--host", url, "--ca-cert", cert, "tenant", "list",
                                        token=admin), 1, err="not JSON")
        expect("https CA from env", tessera("tenant", "list", host=url, token=admin,
                                            env={"TESSERA_CA_CERT": cert}), 1, err="not JSON")
        r = expect("https insecure", tessera("--host", url, "--insecure", "tenant", "list",
                                             token=admin), 1, err="WARNING: --insecure")
        expect("ca and insecure", tessera("--host", url, "--insecure", "--ca-cert", cert,
                                          "tenant", "list", token=admin), 2, err="not both")
        expect("missing ca", tessera("--host", url, "--ca-cert", "/nonexistent/ca.pem", "tenant",
                                     "list", token=admin), 2, err="/nonexistent/ca.pem")
    finally:
        srv.terminate()
        srv.wait(timeout=10)


def main():
    if not os.path.exists(TESSERAD) or not os.path.exists(TESSERA):
        print("cli-client: build/tesserad or build/tessera is missing (run make)")
        print("cli-client: 0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="tessera-cli-client-")
    d = Daemon(os.path.join(tmp, "state"), args=["--vxlan-local", "192.0.2.1"])
    try:
        d.start()
        try:
            run(d, tmp)
        finally:
            d.stop()
    except Exception as e:  # a crash of the test is a failure, with its reason
        check(False, "exception: %r" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("cli-client: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
