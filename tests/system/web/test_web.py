#!/usr/bin/env python3
"""The web console in a real browser (docs/web.md): starts build/tesserad on a fresh state
directory with the console built (make: build/web/) on a loopback http:// listener beside its
unix socket, makes tenant acme (a tenant-admin, a viewer, a stopped VM 'keep') and tenant
other (a VM 'secret'), and runs drive.mjs in Debian's Chromium through playwright-core: log
in, create a VM from the busybox template and watch it reach running without a reload, its
console (the output since boot; `uname -m` prints riscv64), stop, snapshot, delete; then the
viewer finds no button to press; the other tenant's VM never shows; a list of 200 VMs renders
in under 1 s from the page load; the platform administrator switches tenants. Also: the
static files' types and Content-Security-Policy, no token needed for them, the console ticket
good once, and a daemon whose console was not built answering / with a 503 that says so.
Screenshots go to build/web-artifacts/. Skips without the built console; the browser part
alone is skipped (with the reason) without Chromium, node, playwright-core or the guest.
Prints "web: N passed, N failed"."""

import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
from syskit import TALLY, check, kill_vms, skipped, summary  # noqa: E402
from tesserad import ROOT, Daemon, UnixHTTPConnection  # noqa: E402
from webkit import WEB_DIR, drive, http_base, screenshots, why_no_browser  # noqa: E402

SUITE = "web"
ARTIFACTS = os.path.join(ROOT, "build", "web-artifacts")


def get(url, headers=None, method="GET", data=None):
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def static_files(base, d):
    """The files come without a token, typed, with the policy; the rest of the API does not."""
    st, h, body = get(base + "/")
    check(st == 200 and h.get("Content-Type") == "text/html; charset=utf-8" and
          b'src="/ui/app.js"' in body, "/ is the console's index.html: %d %s" % (st, h))
    csp = h.get("Content-Security-Policy", "")
    check("script-src 'self'" in csp and "default-src 'none'" in csp and
          "frame-ancestors 'none'" in csp, "a strict Content-Security-Policy: %r" % csp)
    check(h.get("X-Content-Type-Options") == "nosniff", "nosniff")
    st, h, _ = get(base + "/ui/app.js")
    check(st == 200 and h.get("Content-Type", "").startswith("text/javascript"), "app.js typed")
    st, h, _ = get(base + "/ui/app.css")
    check(st == 200 and h.get("Content-Type", "").startswith("text/css"), "app.css typed")
    for bad in ("/ui/%2e%2e%2fstate%2fadmin.token", "/ui/.hidden.js", "/ui/none.js"):
        st, _, _ = get(base + bad)
        check(st == 404, "%s: %d, want 404" % (bad, st))
    st, _, _ = get(base + "/api/v1/vms")
    check(st == 401, "the API still wants a token: %d" % st)
    # The unix socket serves the console too.
    c = UnixHTTPConnection(d.sock)
    c.request("GET", "/")
    r = c.getresponse()
    check(r.status == 200 and b"/ui/app.js" in r.read(), "the unix socket serves / too")
    c.close()


def ticket_rules(d, admin, viewer):
    """A ticket: operator and up, for a VM the caller sees; good once, for its own VM."""
    st, doc, _ = d.call("POST", "/api/v1/vms/keep/console-ticket", token=viewer)
    check(st == 403, "a viewer gets no console ticket: %d" % st)
    st, doc, _ = d.call("POST", "/api/v1/vms/secret/console-ticket", token=admin)
    check(st == 404, "no ticket for another tenant's VM: %d" % st)
    st, doc, _ = d.call("POST", "/api/v1/vms/keep/console-ticket", token=admin)
    check(st == 201 and re.fullmatch(r"[0-9a-f]{48}", doc["ticket"]) and
          doc["expires_in_s"] == 30, "a ticket for a stopped VM: %d %s" % (st, doc))
    t = doc["ticket"]
    hs = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    st, doc, _ = d.call("GET", "/api/v1/vms/other/console?ticket=" + t, token="", headers=hs)
    check(st == 401, "a ticket for another VM is refused: %d" % st)
    st, doc, _ = d.call("GET", "/api/v1/vms/keep/console?ticket=" + t, token="", headers=hs)
    check(st == 409, "the ticket passes (the VM is stopped: 409): %d %s" % (st, doc))
    st, doc, _ = d.call("GET", "/api/v1/vms/keep/console?ticket=" + t, token="", headers=hs)
    check(st == 401 and doc["error"]["field"] == "ticket", "a ticket is good once: %d" % st)


def not_built(tmp):
    """A daemon whose console folder is absent: / says the console was not built (503), and
    the API works as ever."""
    d = Daemon(os.path.join(tmp, "bare"), ["--no-cgroups", "--web-dir",
                                           os.path.join(tmp, "absent")])
    d.start()
    try:
        st, doc, _ = d.call("GET", "/", token="")
        check(st == 503 and "not built" in doc["error"]["message"],
              "/ without a built console: 503 saying so: %d %s" % (st, doc))
        st, _, _ = d.call("GET", "/ui/app.js", token="")
        check(st == 503, "its assets too: %d" % st)
        st, _, _ = d.call("GET", "/api/v1/vms")
        check(st == 200, "the API still answers: %d" % st)
    finally:
        d.stop()


VIEWER_PASSWORD = "viewer's own passphrase"


def browser(d, base, admin, viewer):
    """drive.mjs in Chromium; its checks count here. Tenant many gets 200 stopped VMs first,
    for the list's measurement."""
    d.ok("POST", "/api/v1/tenants", body={"name": "many"})
    many = d.user("many", "mia", "tenant-admin")
    for i in range(200):
        d.ok("POST", "/api/v1/vms", token=many, body={"name": "m%03d" % i,
                                                      "template": "busybox"})
    # The viewer logs in with a password (its own, set with its token).
    d.ok("PUT", "/api/v1/password", token=viewer, body={"password": VIEWER_PASSWORD})
    drive("drive.mjs", "drive", ARTIFACTS,
          dict(WEB_URL=base, WEB_ADMIN=admin, WEB_VIEWER=viewer, WEB_MANY=many,
               WEB_PLATFORM=d.token, WEB_VIEWER_PASSWORD=VIEWER_PASSWORD,
               WEB_VIEWER_PASSWORD2=VIEWER_PASSWORD + "2"))
    st, doc, _ = d.call("GET", "/api/v1/tokens", token=admin)
    sessions = [t for t in (doc or {}).get("tokens", []) if t["description"] == "password login"]
    check(st == 200 and len(sessions) == 1 and sessions[0]["user"] == "vic" and
          sessions[0]["revoked"] and sessions[0]["expires"],
          "the viewer's password login was a session, revoked by Log out: %s" % sessions)
    st, doc, _ = d.call("POST", "/api/v1/login", token="",
                        body={"tenant": "acme", "user": "vic", "password": VIEWER_PASSWORD + "2"})
    check(st == 201, "the viewer's new password, set in the browser, logs in: %d %s" % (st, doc))
    st, doc, _ = d.call("GET", "/api/v1/vms", token=admin)
    check(st == 200 and [v["name"] for v in doc["vms"]] == ["keep"],
          "the API agrees: only 'keep' is left in acme (%s)" % doc)
    screenshots(ARTIFACTS, 10)


def main():
    if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
        return skipped(SUITE, "the console is not built (make, where npm can reach its "
                       "registry)")
    tmp = tempfile.mkdtemp(prefix="tsr-web-")
    state = os.path.join(tmp, "state")
    d = Daemon(state, ["--listen", "unix:" + os.path.join(state, "tesserad.sock"),
                       "--listen", "http://127.0.0.1:0"])
    try:
        d.start()
        base = http_base(tmp)
        if not check(base, "tesserad names its http:// listener"):
            return summary(SUITE)
        for t in ("acme", "other"):
            d.ok("POST", "/api/v1/tenants", body={"name": t})
        admin = d.user("acme", "ann", "tenant-admin")
        viewer = d.user("acme", "vic", "viewer")
        olga = d.user("other", "olga", "tenant-admin")
        d.ok("POST", "/api/v1/vms", token=admin, body={"name": "keep", "template": "busybox"})
        d.ok("POST", "/api/v1/vms", token=olga, body={"name": "secret", "template": "busybox"})
        static_files(base, d)
        ticket_rules(d, admin, viewer)
        why = why_no_browser()
        if why:
            print("web: the browser part is skipped: %s" % why)
        else:
            browser(d, base, admin, viewer)
        d.stop()
        d.proc = None
        not_built(tmp)
    except Exception as e:  # the daemon would not start, a fixture failed
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d.proc:
            d.stop()
        kill_vms(tmp)
        if TALLY.failed:
            print("web: kept %s for a look" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(SUITE)


if __name__ == "__main__":
    sys.exit(main())
