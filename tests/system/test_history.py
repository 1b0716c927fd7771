#!/usr/bin/env python3
"""The daemon's metric history (docs/daemon.md, "Metric history"): a VM of the default
template boots idle and its history shows little CPU; a CPU-bound loop started on its console
(`while :; do :; done`) shows in GET /api/v1/vms/{name}/stats/history as CPU > 0.5 within 5 s
of being typed. The history is scoped like the VM (another tenant: 404; a viewer reads it),
?since= cuts it and is checked, the host's history is the platform's (a tenant's admin: 403)
and counts the running VM; a restart leaves a gap (a point with no rates) rather than a
spike; a deleted VM has none. Needs the default guest (guest/build.sh).
Prints "history: N passed, N failed".

    tests/system/test_history.py [TEST...]   (load, scope)
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import Console, check, run_suite, wait_booted  # noqa: E402

BOOT_TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "300"))
GUEST = os.path.join(os.path.dirname(__file__), "..", "..", "build", "guest", "Image")


def history(d, name, since=None, token=None):
    q = "?tenant=acme" if token is None else ""
    if since:
        q += ("&" if q else "?") + "since=%d" % since
    return d.ok("GET", "/api/v1/vms/%s/stats/history%s" % (name, q), token=token)


def latest_cpu(doc):
    """The newest point's time, CPU used and waited for (None when unknown)."""
    s = doc["series"]
    return (s["t"][-1], s["cpu"][-1], s["cpu_wait"][-1]) if s["t"] else (None, None, None)


def prepare(d):
    if not os.path.isfile(GUEST):
        return "the default guest is not built (guest/build.sh)"
    for t in ("acme", "other"):
        d.ok("POST", "/api/v1/tenants", body={"name": t})
    return None


def test_load(d):
    """Idle is low; a loop typed on the console shows as CPU > 0.5 within 5 s."""
    d.ok("POST", "/api/v1/vms?tenant=acme",
         body={"name": "spin", "template": "busybox", "memory_bytes": 64 << 20})
    d.wait_op(d.ok("POST", "/api/v1/vms/spin/actions/start?tenant=acme"))
    check(not wait_booted(d, "acme", ["spin"], BOOT_TIMEOUT), "spin booted")
    # Idle: the last 6 s (six points) once boot's own work has settled.
    time.sleep(8)
    doc = history(d, "spin", since=6)
    cpus = [c + (w or 0) for c, w in zip(doc["series"]["cpu"], doc["series"]["cpu_wait"])
            if c is not None]
    check(doc["interval_s"] == 1 and doc["consolidated_s"] == 30 and doc["cpus"] == 1 and
          doc["state"] == "running", "the answer's frame: %s" % {k: doc[k] for k in doc
                                                                 if k != "series"})
    check(4 <= len(doc["series"]["t"]) <= 7, "since=6 gives the last few 1 s points: %s" %
          doc["series"]["t"])
    check(cpus and max(cpus) < 0.3, "an idle guest shows little CPU: %s" % cpus)
    mem = [m for m in doc["series"]["memory_bytes"] if m is not None]
    check(mem and all(m > 1 << 20 for m in mem), "its memory (the VMM's RSS): %s" % mem)
    con = Console(d, "acme", "spin")
    out, ok = con.ask("echo ready")
    check(ok, "the console answers: %r" % out[-200:])
    t0 = time.time()
    con.ws.send_frame(2, b"while :; do :; done\n")
    # The load is what the guest used and what it waited for: on a busy host it gets only a
    # part of a core (docs/daemon.md, "Metric history").
    seen = None
    while time.time() < t0 + 15:
        t, cpu, wait = latest_cpu(history(d, "spin"))
        if t and t > t0 and cpu is not None and cpu + (wait or 0) > 0.5:
            seen = time.time() - t0
            break
        time.sleep(0.25)
    print("  CPU > 0.5 in the history %s s after the loop was typed (used %s, waited %s)" %
          ("%.1f" % seen if seen is not None else "never (15)", cpu, wait))
    check(seen is not None and seen <= 5.0, "the load shows within 5 s: %s" % seen)
    # Ctrl-C ends the loop; the host's history counts the VM.
    con.ws.send_frame(2, b"\x03")
    con.close()
    host = d.ok("GET", "/api/v1/host/stats/history?since=10")
    s = host["series"]
    check(s["t"] and s["vms_running"][-1] == 1 and 0 <= s["cpu"][-1] <= 1 and
          s["memory_used_bytes"][-1] > 0 and host["cpus"] >= 1,
          "the host's history: %s" % {k: v[-1:] for k, v in s.items()})
    # A restart: the first point of the new process has no rates (a gap, not a spike).
    before = len(history(d, "spin")["series"]["t"])
    d.wait_op(d.ok("POST", "/api/v1/vms/spin/actions/stop?tenant=acme"))
    d.wait_op(d.ok("POST", "/api/v1/vms/spin/actions/start?tenant=acme"))
    time.sleep(5)
    s = history(d, "spin")["series"]
    after = s["cpu"][before:]
    check(len(after) >= 2 and None in after and
          all(c is None or c < 4 for c in after), "a restart leaves a gap: %s" % after)
    d.wait_op(d.ok("POST", "/api/v1/vms/spin/actions/stop?tenant=acme"))


def test_scope(d):
    """Scoped as the VM: another tenant's gets 404, a viewer reads, the host's is the
    platform's; since is checked; a VM that never ran has an empty history."""
    d.ok("POST", "/api/v1/vms?tenant=acme", body={"name": "cold", "template": "busybox"})
    vic = d.user("acme", "vic", "viewer")
    ann = d.user("acme", "ann", "tenant-admin")
    olga = d.user("other", "olga", "tenant-admin")
    doc = history(d, "cold", token=vic)
    check(doc["series"]["t"] == [] and doc["series"]["cpu"] == [] and
          set(doc["series"]) >= {"t", "cpu", "memory_bytes", "balloon_bytes",
                                 "disk_read_bytes_per_s", "disk_write_bytes_per_s",
                                 "net_rx_bytes_per_s", "net_tx_bytes_per_s"},
          "a VM that never ran: empty columns: %s" % doc)
    st, doc, _ = d.call("GET", "/api/v1/vms/cold/stats/history", token=olga)
    check(st == 404, "another tenant's VM: 404: %d" % st)
    st, doc, _ = d.call("GET", "/api/v1/vms/nothing/stats/history", token=ann)
    check(st == 404, "no such VM: 404: %d" % st)
    for bad in ("0", "3601", "x", "-5", "10s"):
        st, doc, _ = d.call("GET", "/api/v1/vms/cold/stats/history?since=" + bad, token=ann)
        check(st == 400 and doc["error"]["field"] == "since", "since=%s: 400: %d %s" %
              (bad, st, doc))
    st, doc, _ = d.call("GET", "/api/v1/host/stats/history", token=ann)
    check(st == 403, "the host's history is the platform's: %d" % st)
    time.sleep(1.5)
    doc = d.ok("GET", "/api/v1/host/stats/history")
    check(len(doc["series"]["t"]) >= 1 and doc["series"]["vms_running"][-1] == 0,
          "the host's history runs with no VM: %s" % doc["series"])
    d.ok("DELETE", "/api/v1/vms/cold?tenant=acme")
    st, doc, _ = d.call("GET", "/api/v1/vms/cold/stats/history", token=ann)
    check(st == 404, "a deleted VM: 404: %d" % st)


if __name__ == "__main__":
    sys.exit(run_suite("history", [("scope", test_scope), ("load", test_load)], sys.argv[1:],
                       prefix="tsr-history-", daemon_args=["--no-cgroups"], prepare=prepare))
