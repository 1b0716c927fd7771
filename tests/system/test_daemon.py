#!/usr/bin/env python3
"""tesserad end to end: starts build/tesserad on a fresh state directory, reads admin.token,
creates two tenants each with an admin and a viewer, and checks over the real unix socket that
tenants are kept apart (404), viewers cannot change anything (403), revoked tokens are refused
(401), hostile requests get a 4xx with a JSON error, the audit log holds the changes, and the
data survives a restart. Prints "daemon: N passed, N failed"."""

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tesserad import TESSERAD, Daemon  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def call_raw(d, head, body):
    """Sends a request head and body on a raw socket, tolerating the server closing before the
    body is all sent (it answers an oversized body early); returns (status, parsed JSON)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(d.sock)
    try:
        s.sendall(head + body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    headers, _, payload = out.partition(b"\r\n\r\n")
    try:
        status = int(headers.split(b" ", 2)[1])
        doc = json.loads(payload)
    except (IndexError, ValueError):
        return 0, None
    return status, doc


def is_error(doc, code, field=None):
    e = doc.get("error") if isinstance(doc, dict) else None
    ok = isinstance(e, dict) and e.get("code") == code and isinstance(e.get("message"), str)
    if ok and field is not None:
        ok = e.get("field") == field
    return ok


def expect(d, method, path, token, status, body=None, raw=None, field=None, what=""):
    # No token is no Authorization header ("" to the shared client; None means the admin's).
    st, doc, payload = d.call(method, path, token or "", body=body, raw=raw)
    good = st == status and (status < 400 or is_error(doc, status, field))
    check(good, "%s %s %s: got %d %s, want %d%s" % (
        what, method, path, st, payload[:200], status, " field " + field if field else ""))
    return doc


def main():
    if not os.access(TESSERAD, os.X_OK):
        print("daemon: build/tesserad is missing (run make)")
        print("daemon: 0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="tessera-daemon-")
    state = os.path.join(tmp, "state")
    d = Daemon(state)
    try:
        d.start()
        run(d, state)
    except Exception as e:  # a daemon that does not start, or a request that hangs
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if failed:
            with open(os.path.join(tmp, "tesserad.log"), errors="replace") as f:
                print("tesserad's log:\n" + f.read()[-4000:])
        subprocess.run(["rm", "-rf", tmp])
    print("daemon: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def make_user(d, by, tenant, name, role):
    expect(d, "POST", "/api/v1/tenants/%s/users" % tenant, by, 201,
           {"name": name, "role": role})
    doc = expect(d, "POST", "/api/v1/tokens", by, 201, {"tenant": tenant, "user": name})
    return doc["token"], doc["id"]


def run(d, state):
    tok_path = os.path.join(state, "admin.token")
    check(os.path.exists(tok_path), "admin.token written")
    check(stat.S_IMODE(os.stat(tok_path).st_mode) == 0o600, "admin.token is mode 0600")
    check(stat.S_IMODE(os.stat(d.sock).st_mode) in (0o600, 0o660), "socket mode")
    admin = open(tok_path).read().strip()
    check(admin.startswith("tsr_"), "token has its prefix")

    # Authentication on every route.
    expect(d, "GET", "/api/v1/tenants", None, 401, what="no token")
    expect(d, "GET", "/api/v1/tenants", "tsr_0000000000000000_" + "0" * 64, 401, what="unknown")
    expect(d, "GET", "/api/v1/audit", admin[:-1] + ("0" if admin[-1] != "0" else "1"), 401,
           what="wrong secret")

    # Two tenants, each with an admin and a viewer.
    for t in ("alpha", "beta"):
        expect(d, "POST", "/api/v1/tenants", admin, 201, {"name": t})
    a_admin, _ = make_user(d, admin, "alpha", "ann", "tenant-admin")
    a_view, _ = make_user(d, a_admin, "alpha", "vic", "viewer")
    b_admin, _ = make_user(d, admin, "beta", "bob", "tenant-admin")
    b_view, b_view_id = make_user(d, b_admin, "beta", "val", "viewer")

    # Cross-tenant reads, changes and deletes: 404, as if absent.
    for tok in (a_admin, a_view):
        expect(d, "GET", "/api/v1/tenants/beta", tok, 404, what="cross read")
        expect(d, "GET", "/api/v1/tenants/beta/users", tok, 404, what="cross read users")
        expect(d, "POST", "/api/v1/tenants/beta/users", tok, 404,
               {"name": "mallory", "role": "viewer"}, what="cross change")
        expect(d, "DELETE", "/api/v1/tenants/beta", tok, 404, what="cross delete")
        expect(d, "DELETE", "/api/v1/tokens/" + b_view_id, tok, 404, what="cross revoke")
    expect(d, "POST", "/api/v1/tokens", a_admin, 404, {"tenant": "beta", "user": "bob"},
           what="cross token")
    doc = expect(d, "GET", "/api/v1/tenants", a_view, 200)
    check([t["name"] for t in doc["tenants"]] == ["alpha"], "a tenant lists only itself")
    doc = expect(d, "GET", "/api/v1/tokens", b_admin, 200)
    check(all(t["tenant"] == "beta" and "token" not in t for t in doc["tokens"]),
          "token list: own tenant, no secrets")

    # A viewer's change: 403.
    expect(d, "POST", "/api/v1/tenants/alpha/users", a_view, 403,
           {"name": "eve", "role": "viewer"}, what="viewer change")
    expect(d, "POST", "/api/v1/tokens", a_view, 403, {}, what="viewer token")
    expect(d, "POST", "/api/v1/tenants", a_admin, 403, {"name": "gamma"}, what="tenant-admin")

    # Hostile input: 4xx with a JSON error, naming the field.
    expect(d, "POST", "/api/v1/tenants", admin, 400, raw=b'{"name": "x"', what="malformed")
    expect(d, "POST", "/api/v1/tenants", admin, 400, raw=b"\xff\xfe", what="not UTF-8")
    expect(d, "POST", "/api/v1/tenants", admin, 400, {"name": 7}, field="name", what="type")
    expect(d, "POST", "/api/v1/tenants", admin, 400, {"name": ["x"]}, field="name")
    expect(d, "POST", "/api/v1/tenants", admin, 400, {"name": ".."}, field="name")
    expect(d, "POST", "/api/v1/tenants", admin, 400, {"name": "../etc"}, field="name")
    expect(d, "POST", "/api/v1/tenants", admin, 400, {"name": "a\nb"}, field="name")
    expect(d, "GET", "/api/v1/tenants/../users", admin, 400, field="tenant", what="traversal")
    expect(d, "GET", "/api/v1/tenants/%2e%2e/users", admin, 400, field="tenant")
    expect(d, "GET", "/api/v1/tenants/a%2fb", admin, 400, field="tenant")
    big = b"{" + b" " * (1 << 20) + b"}"
    head = ("POST /api/v1/tenants HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
            "Connection: close\r\nContent-Type: application/json\r\n" % admin).encode()
    st, doc = call_raw(d, head + b"Content-Length: %d\r\n\r\n" % len(big), big)
    check(st == 413 and is_error(doc, 413), "huge body: %d %s" % (st, doc))
    expect(d, "GET", "/api/v1/nowhere", admin, 404)
    expect(d, "PATCH", "/api/v1/tenants", admin, 405, {})
    chunked = b"".join(b"%x\r\n%s\r\n" % (8192, b" " * 8192) for _ in range(16)) + b"0\r\n\r\n"
    st, doc = call_raw(d, head + b"Transfer-Encoding: chunked\r\n\r\n", chunked)
    check(st == 413 and is_error(doc, 413), "chunked huge body: %d %s" % (st, doc))
    st, doc = call_raw(d, head + b"Content-Length: 5\r\n\r\n", b"[1,2]")
    check(st == 400 and is_error(doc, 400), "raw small body: %d" % st)

    # A user's role changes and a user goes, over HTTP: a demotion narrows its token at once,
    # a deleted user's token stops; another tenant's admin, a viewer and oneself are refused.
    o_tok, _ = make_user(d, a_admin, "alpha", "oli", "tenant-admin")
    expect(d, "PUT", "/api/v1/tenants/alpha/users/oli", b_admin, 404, {"role": "viewer"},
           what="cross role change")
    expect(d, "PUT", "/api/v1/tenants/alpha/users/oli", a_view, 403, {"role": "viewer"})
    expect(d, "PUT", "/api/v1/tenants/alpha/users/ann", a_admin, 409, {"role": "viewer"},
           field="user", what="own role")
    expect(d, "PUT", "/api/v1/tenants/alpha/users/..", a_admin, 400, {"role": "viewer"},
           field="user")
    doc = expect(d, "PUT", "/api/v1/tenants/alpha/users/oli", a_admin, 200, {"role": "operator"})
    check(doc.get("role") == "operator", "the user's new role is answered")
    expect(d, "POST", "/api/v1/tokens", o_tok, 403, {}, what="demoted token")
    expect(d, "DELETE", "/api/v1/tenants/alpha/users/oli", b_admin, 404, what="cross delete user")
    expect(d, "DELETE", "/api/v1/tenants/alpha/users/oli", admin, 204)
    expect(d, "GET", "/api/v1/tenants/alpha", o_tok, 401, what="deleted user's token")

    # Revoked token: 401.
    expect(d, "GET", "/api/v1/tenants/beta", b_view, 200)
    expect(d, "DELETE", "/api/v1/tokens/" + b_view_id, b_view, 403, what="viewer revoke")
    expect(d, "DELETE", "/api/v1/tokens/" + b_view_id, b_admin, 204)
    expect(d, "GET", "/api/v1/tenants/beta", b_view, 401, what="revoked")

    # The audit log holds the changes, refusals included.
    doc = expect(d, "GET", "/api/v1/audit", admin, 200)
    seen = {(a["action"], a["status"]) for a in doc["audit"]}
    for want in (("tenant.create", 201), ("user.create", 201), ("token.create", 201),
                 ("token.revoke", 204), ("user.create", 403), ("user.create", 404),
                 ("tenant.create", 400), ("tenant.delete", 404), ("user.set-role", 200),
                 ("user.delete", 204), ("user.set-role", 409)):
        check(want in seen, "audit holds %s %d" % want)
    doc = expect(d, "GET", "/api/v1/audit", a_view, 200)
    check(all(a["tenant"] == "alpha" for a in doc["audit"]) and doc["audit"],
          "a tenant's audit log is its own")
    check(all(a["actor"] for a in doc["audit"] if a["status"] != 401), "audit names the actor")

    # One daemon per state directory; a second one leaves the first serving.
    r = subprocess.run([TESSERAD, "--state-dir", state], capture_output=True, timeout=10)
    check(r.returncode != 0 and b"another tesserad" in r.stderr,
          "a second daemon on the same state dir is refused: %r" % r.stderr[-200:])
    expect(d, "GET", "/api/v1/tenants", admin, 200, what="first daemon still serves")

    # Restart: the data and the tokens are still there, the revoked one still refused.
    check(d.stop() == 0, "clean stop on SIGTERM")
    check(not os.path.exists(d.sock), "socket removed on stop")
    d.start()
    check(open(tok_path).read().strip() == admin, "admin.token kept across restarts")
    doc = expect(d, "GET", "/api/v1/tenants", admin, 200)
    check(sorted(t["name"] for t in doc["tenants"]) == ["alpha", "beta"], "tenants survive")
    doc = expect(d, "GET", "/api/v1/tenants/alpha/users", a_admin, 200)
    check(sorted(u["name"] for u in doc["users"]) == ["ann", "vic"], "users survive")
    expect(d, "GET", "/api/v1/tenants/beta", b_view, 401, what="revoked after restart")
    expect(d, "DELETE", "/api/v1/tenants/beta", admin, 204)
    expect(d, "GET", "/api/v1/tenants/beta", b_admin, 401, what="deleted tenant's token")
    check(d.stop() == 0, "clean stop")


if __name__ == "__main__":
    sys.exit(main())
