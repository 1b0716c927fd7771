"""CPU-bound VMs under tesserad and what they get: shared by tests/system/test_resources.py
(behaviour, generous bounds) and bench/bench_resources.py (the numbers, longer windows).
A busy VM is the default BusyBox template whose cloud-init user data spins `while :; do :; done`
after boot; what it gets is read from GET /vms/{name}/stats (its control group's CPU time)."""

import time

BUSY = "#!/bin/sh\nwhile :; do :; done\n"


def create_busy(d, tenant, name, resources=None, start=True):
    """Creates (and starts) a busy VM; returns its document once its start operation ended."""
    body = {"name": name, "template": "busybox", "memory_bytes": 64 << 20,
            "cloud_init": {"user_data": BUSY}, "start": start}
    if resources:
        body["resources"] = resources
    vm = d.ok("POST", "/api/v1/vms?tenant=%s" % tenant, body=body)
    if start:
        op = d.wait_op(vm["operation"])
        assert op["status"] == "success", op
    return vm


def stats(d, tenant, name):
    return d.ok("GET", "/api/v1/vms/%s/stats?tenant=%s" % (name, tenant))


def wait_busy(d, tenant, names, timeout=120):
    """Waits until every VM burns at least half a core's worth over a second (its loop runs)."""
    deadline = time.time() + timeout
    left = set(names)
    while left and time.time() < deadline:
        a = {n: stats(d, tenant, n) for n in left}
        time.sleep(1.0)
        for n in list(left):
            b = stats(d, tenant, n)
            if cores(a[n], b) > 0.05 and "TESSERA-GUEST-READY" in d.ok(
                    "GET", "/api/v1/vms/%s/log?tenant=%s" % (n, tenant))["log"]:
                left.discard(n)
    return left


def cores(a, b):
    """CPU cores used between two stats samples."""
    dt = b["sampled_ns"] - a["sampled_ns"]
    return (b["cpu"]["used_ns"] - a["cpu"]["used_ns"]) / dt if dt > 0 else 0.0


def measure(d, tenant, names, seconds):
    """Cores each VM used over `seconds` (all sampled together), and the stats at the end."""
    a = {n: stats(d, tenant, n) for n in names}
    time.sleep(seconds)
    b = {n: stats(d, tenant, n) for n in names}
    return {n: cores(a[n], b[n]) for n in names}, b
