#!/usr/bin/env python3
"""The web console's dashboard, graphs and console fit in a real browser (docs/web.md):
starts build/tesserad with the console built, on a loopback http:// listener beside its unix
socket, makes tenants acme and other, acme's tenant-admin and a running VM 'spin' of the
default template (booted before the browser starts), and runs drive_metrics.mjs in Debian's
Chromium through playwright-core: the platform administrator's dashboard (tenants, the host's
CPU graph, VMs by state, allocation bars), the tenant's (quota, recent changes), the VM's
graphs filling from the daemon's history, the console's columns following the window, and a
loop typed in the console showing on the CPU graph within 5 s. Screenshots go to
build/web-artifacts/metrics/. Skips (saying why) without the built console, Chromium, node,
playwright-core or the guest. Prints "web-metrics: N passed, N failed"."""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
from syskit import TALLY, check, kill_vms, skipped, summary, wait_booted  # noqa: E402
from tesserad import ROOT, Daemon  # noqa: E402
from webkit import WEB_DIR, drive, http_base, screenshots, why_no_browser  # noqa: E402

SUITE = "web-metrics"
ARTIFACTS = os.path.join(ROOT, "build", "web-artifacts", "metrics")
BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))


def main():
    if not os.path.isfile(os.path.join(WEB_DIR, "index.html")):
        return skipped(SUITE, "the console is not built (make, where npm can reach its "
                       "registry)")
    why = why_no_browser()
    if why:
        return skipped(SUITE, why)
    tmp = tempfile.mkdtemp(prefix="tsr-webm-")
    state = os.path.join(tmp, "state")
    d = Daemon(state, ["--no-cgroups", "--listen", "unix:" + os.path.join(state, "tesserad.sock"),
                       "--listen", "http://127.0.0.1:0"])
    try:
        d.start()
        base = http_base(tmp)
        if not check(base, "tesserad names its http:// listener"):
            return summary(SUITE)
        for t in ("acme", "other"):
            d.ok("POST", "/api/v1/tenants", body={"name": t})
        admin = d.user("acme", "ann", "tenant-admin")
        d.wait_op(d.ok("POST", "/api/v1/vms", token=admin,
                       body={"name": "spin", "template": "busybox", "memory_bytes": 64 << 20,
                             "start": True}),
                  token=admin)
        if not check(not wait_booted(d, "acme", ["spin"], BOOT_TIMEOUT), "spin booted"):
            return summary(SUITE)
        drive("drive_metrics.mjs", "drive-metrics", ARTIFACTS,
              dict(WEB_URL=base, WEB_ADMIN=admin, WEB_PLATFORM=d.token), timeout=600)
        screenshots(ARTIFACTS, 6)
    except Exception as e:  # the daemon would not start, a fixture failed
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if d.proc:
            d.stop()
        kill_vms(tmp)
        if TALLY.failed:
            print("%s: kept %s for a look" % (SUITE, tmp))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(SUITE)


if __name__ == "__main__":
    sys.exit(main())
