"""Memory pressure under tesserad's balloon policy, shared by tests/system/test_resources.py
(behaviour) and bench/bench_resources.py (the numbers). N BusyBox VMs share a bound on all
VMs' memory smaller than their sum; one after another each fills FILL MiB of its RAM file system
and frees it again, so that its host memory is idle but still held. The policy must take it
back through the balloons before the bound is reached, without killing or starving anyone."""

import os
import time

from websocket import WebSocket, unix_socket

MIB = 1 << 20


def parent_oom_kills(cgroup):
    """OOM kills recorded in the VMs' parent memory group (cgroup v1 memory.oom_control or v2
    memory.events), or None where neither is readable."""
    for path, key in (("/sys/fs/cgroup/memory/%s/memory.oom_control" % cgroup, "oom_kill"),
                      ("/sys/fs/cgroup/%s/memory.events" % cgroup, "oom_kill")):
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == key:
                        return int(v)
        except OSError:
            pass
    return None


def script(delay, fill):
    # Reading its disk fills the guest's page cache: memory the guest counts as available (it
    # can drop it) but the host holds, which free page reporting does not return (the pages
    # are not free) and only the balloon takes back.
    # (A block device's cache goes when its last opener closes it: a sleeper holds it open.)
    return ("#!/bin/sh\nsleep 100000 < /dev/vda &\nsleep %d\n"
            "dd if=/dev/vda of=/dev/null bs=1M count=%d 2>/dev/null\n"
            "echo CACHE-FILLED > /dev/console\n" % (delay, fill))


def run(d, tenant, n=6, memory=512 * MIB, bound=2 << 30, fill=350, reserve=400 * MIB,
        stagger=12, progress=print):
    """Runs the scenario; returns a dict of what happened (see the keys at the end)."""
    d.ok("PUT", "/api/v1/host", body={"vm_memory_bytes": bound})
    names = ["m%d" % i for i in range(n)]
    for i, name in enumerate(names):
        body = {"name": name, "template": "busybox", "memory_bytes": memory,
                "disk_bytes": (fill + 64) * MIB,
                "cloud_init": {"user_data": script(20 + i * stagger, fill)}, "start": True}
        if i == 0 and reserve:
            body["resources"] = {"memory": {"reservation_bytes": reserve}}
        op = d.wait_op(d.ok("POST", "/api/v1/vms?tenant=%s" % tenant, body=body)["operation"])
        assert op["status"] == "success", op
    progress("  %d VMs of %d MiB started under a %d MiB bound for all VMs"
             % (n, memory >> 20, bound >> 20))
    t0 = time.monotonic()
    deadline = t0 + 60 + n * stagger + 120
    filled, peak_used, peak_balloon = set(), 0, 0
    first_fill = None
    # Spells of pressure: from the first sample under the low watermark to the first one back
    # above it, the time the policy took to take memory back.
    spells, spell_start = [], None
    while time.monotonic() < deadline:
        host = d.ok("GET", "/api/v1/host")
        mem = host["memory"]
        peak_used = max(peak_used, mem["used_bytes"])
        if mem["limit_bytes"]:
            under = mem["limit_bytes"] - mem["used_bytes"] < mem["low_watermark_bytes"]
            if under and spell_start is None:
                spell_start = time.monotonic()
            elif not under and spell_start is not None:
                spells.append(time.monotonic() - spell_start)
                spell_start = None
        balloon = 0
        for name in names:
            if name not in filled and "CACHE-FILLED" in d.ok(
                    "GET", "/api/v1/vms/%s/log?tenant=%s" % (name, tenant))["log"]:
                filled.add(name)
                first_fill = first_fill or time.monotonic()
            st = d.ok("GET", "/api/v1/vms/%s/stats?tenant=%s" % (name, tenant))
            balloon += st["memory"].get("balloon_bytes") or 0
        peak_balloon = max(peak_balloon, balloon)
        if len(filled) == n:
            break
        time.sleep(1)
    all_filled = time.monotonic()
    # Settle: the last fill's memory is taken back too.
    time.sleep(8)
    states, rss, balloons = {}, {}, {}
    for name in names:
        vm = d.ok("GET", "/api/v1/vms/%s?tenant=%s" % (name, tenant))
        states[name] = vm["state"]
        st = d.ok("GET", "/api/v1/vms/%s/stats?tenant=%s" % (name, tenant))
        rss[name] = st["memory"].get("rss_bytes") or 0
        balloons[name] = st["memory"].get("balloon_bytes") or 0
    responsive = {}
    for name in names:
        ws = WebSocket(unix_socket(d.sock, timeout=60),
                       "/api/v1/vms/%s/console?tenant=%s" % (name, tenant), d.token)
        responsive[name] = ws.status == 101 and ws.run("echo al''ive-%s" % name,
                                                      "alive-%s" % name, timeout=60)
        ws.close()
    host = d.ok("GET", "/api/v1/host")
    return {"names": names, "filled": sorted(filled), "states": states, "rss": rss,
            "balloons": balloons, "responsive": responsive, "peak_used": peak_used,
            "peak_balloon": peak_balloon, "used_end": host["memory"]["used_bytes"],
            "oom_kills": parent_oom_kills(getattr(d, "cgroup", "tessera")),
            "fill_seconds": all_filled - (first_fill or all_filled), "bound": bound,
            "pressure_spells": spells,
            "reserved_vm": names[0], "reserve": reserve, "memory": memory}
