#!/usr/bin/env python3
"""The web console's admin and network views in a real browser (docs/web.md): starts
build/tesserad on a fresh state directory with a loopback http:// listener (as test_web.py),
makes tenant `other` with a VM, a security group and (where networks can be made) a network
that must never show to anyone else, and runs drive_admin.mjs in Debian's Chromium through
playwright-core: the platform administrator creates tenant corp and its tenant-admin, sets
its quota, creates the admin's token (shown once) and is refused deleting a tenant that
still owns a VM with the API's message; the tenant-admin logs in with that token, creates an
operator and a viewer and their tokens, revokes one, changes a role, deletes a user, sees its
quota read-only, creates a VM through the dialog whose quota preview then refuses the next
one, creates a network, a security group with a rule and a router, sets a NIC's groups on a
VM's page; the viewer finds no admin or network control. No guest boots.

Networks need root, iproute2, dnsmasq, nft and /dev/net/tun (as tests/system/test_networks.py);
without them the network and router steps are skipped with the reason, the rest runs.
Screenshots go to build/web-artifacts/admin/. Skips without the built console, Chromium, node,
playwright-core or the default guest (the busybox template is made from it). Prints
"web-admin: N passed, N failed"."""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from syskit import TALLY, check, kill_vms, skipped, summary  # noqa: E402
from tesserad import ROOT, Daemon, network_cleanup, network_missing  # noqa: E402
from webkit import WEB_DIR, drive, http_base, why_no_browser  # noqa: E402

SUITE = "web-admin"
ARTIFACTS = os.path.join(ROOT, "build", "web-artifacts", "admin")


def run_browser(d, base, nets):
    drive("drive_admin.mjs", "drive-admin", ARTIFACTS,
          dict(WEB_URL=base, WEB_PLATFORM=d.token, WEB_NETWORKS="1" if nets else ""),
          timeout=600)


def api_agrees(d, nets):
    """What the browser did is what the API holds."""
    st, doc, _ = d.call("GET", "/api/v1/tenants/corp/users")
    users = {u["name"]: u["role"] for u in doc.get("users", [])} if st == 200 else {}
    check(users == {"boss": "tenant-admin", "opal": "viewer", "vera": "viewer"},
          "corp's users as the browser left them: %s" % users)
    st, doc, _ = d.call("POST", "/api/v1/login", token="",
                        body={"tenant": "corp", "user": "vera", "password": "vera-password-1"})
    check(st == 201 and doc["role"] == "viewer",
          "vera logs in with the password her tenant-admin set in the browser: %d %s" % (st, doc))
    st, doc, _ = d.call("GET", "/api/v1/tenants/corp/quota")
    check(st == 200 and doc["limits"] == {"vcpus": 2, "memory_bytes": 384 << 20,
                                          "disk_bytes": None, "vms": 4},
          "corp's quota as the form set it: %s" % doc)
    st, doc, _ = d.call("GET", "/api/v1/security-groups?tenant=corp")
    groups = {g["name"]: g["rules"] for g in doc.get("security_groups", [])}
    check(list(groups) == ["web"] and [(r["direction"], r["protocol"], r.get("ports"))
                                       for r in groups["web"]] == [("ingress", "tcp", "80")],
          "corp's group web with its one rule: %s" % groups)
    if nets:
        st, doc, _ = d.call("GET", "/api/v1/vms/nicvm?tenant=corp")
        check(st == 200 and doc["nics"][0].get("security_groups") == ["web"],
              "the NIC's groups as the VM page set them: %s" % doc.get("nics"))
    st, doc, _ = d.call("GET", "/api/v1/tenants")
    check(sorted(t["name"] for t in doc["tenants"]) == ["corp", "other"],
          "the tenant 'other' survived the refused delete")


def main():
    if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
        return skipped(SUITE, "the console is not built (make, where npm can reach its registry)")
    why = why_no_browser()
    if why:
        return skipped(SUITE, why)
    no_nets = network_missing()
    if no_nets:
        print("web-admin: networks and routers are skipped: %s" % no_nets)
    tmp = tempfile.mkdtemp(prefix="tsr-webadm-")
    state = os.path.join(tmp, "state")
    d = Daemon(state, ["--listen", "unix:" + os.path.join(state, "tesserad.sock"),
                       "--listen", "http://127.0.0.1:0"])
    try:
        d.start()
        base = http_base(tmp)
        if not check(base, "tesserad names its http:// listener"):
            return summary(SUITE)
        # Another tenant's objects, which no page of corp's may show.
        d.ok("POST", "/api/v1/tenants", body={"name": "other"})
        olga = d.user("other", "olga", "tenant-admin")
        d.ok("POST", "/api/v1/vms", token=olga, body={"name": "secret", "template": "busybox"})
        d.ok("POST", "/api/v1/security-groups", token=olga, body={"name": "hidden-sg"})
        if not no_nets:
            d.ok("POST", "/api/v1/networks", token=olga,
                 body={"name": "hidden", "subnet": "10.62.0.0/24", "dhcp": False})
        run_browser(d, base, not no_nets)
        api_agrees(d, not no_nets)
        d.stop()
        d.proc = None
    except Exception as e:  # the daemon would not start, a fixture failed
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d.proc:
            d.stop()
        kill_vms(tmp)
        network_cleanup(state)
        if TALLY.failed:
            print("web-admin: kept %s for a look" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(SUITE)


if __name__ == "__main__":
    sys.exit(main())
