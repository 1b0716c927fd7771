#!/usr/bin/env python3
"""Shares, limits and reservations, measured (issue 10; docs/resources.md): what busy VMs get
under a real tesserad with real cgroups, printed as a table of what was set against what was
measured. Windows are longer than the system test's and repeated (medians).

    bench/run.sh resources [--runs N] [--window S] [--only cpu,memory,io,ksm]

CPU: a VM limited to 0.5 core on an otherwise idle host; two VMs pinned to one core with shares
2:1; a VM reserving 0.5 core against three busy ones on one core; how long a limit changed on a
running VM takes to show. Memory: six 512 MiB VMs under a 2 GiB bound each filling and freeing
350 MiB (reclaimed MiB, time under pressure, OOM kills). Disk, network and page sharing come
from bench/bench_limits.py and bench/bench_ksm.py when present."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from benchkit import need_guest  # noqa: E402
from cpuload import cores, create_busy, measure, stats, wait_busy  # noqa: E402
import mempressure  # noqa: E402
from tesserad import Daemon  # noqa: E402

rows = []


def row(what, setting, measured, note=""):
    rows.append((what, setting, measured, note))
    print("  %-44s %-16s %-22s %s" % (what, setting, measured, note), flush=True)


def stop(d, tenant, names):
    for n in names:
        d.call("POST", "/api/v1/vms/%s/actions/stop?tenant=%s" % (n, tenant))
    time.sleep(2)


def pin(d, on):
    host = d.ok("GET", "/api/v1/host")
    d.ok("PUT", "/api/v1/host", body={"vm_cpuset": str(host["cpus"] - 1) if on else ""})


def windows(d, tenant, names, runs, window):
    out = {n: [] for n in names}
    for _ in range(runs):
        got, _ = measure(d, tenant, names, window)
        for n in names:
            out[n].append(got[n])
    return out


def bench_cpu(d, runs, window):
    d.ok("POST", "/api/v1/tenants", body={"name": "bl"})
    create_busy(d, "bl", "lim", {"cpu": {"limit": 0.5}})
    wait_busy(d, "bl", ["lim"])
    w = windows(d, "bl", ["lim"], runs, window)["lim"]
    row("limit, host otherwise idle", "0.5 core", "%.3f cores" % statistics.median(w),
        "min %.3f max %.3f" % (min(w), max(w)))
    # A live change: sample every 100 ms until a 300 ms window shows the new limit.
    a = stats(d, "bl", "lim")
    d.ok("PUT", "/api/v1/vms/lim/resources?tenant=bl", body={"cpu": {"limit": 0.1}})
    t0 = time.monotonic()
    seen = None
    hist = [a]
    while time.monotonic() - t0 < 5:
        time.sleep(0.1)
        hist.append(stats(d, "bl", "lim"))
        if len(hist) >= 4 and cores(hist[-4], hist[-1]) <= 0.15:
            seen = time.monotonic() - t0
            break
    row("live change 0.5 -> 0.1 core shows in", "", "%.2f s" % seen if seen else "> 5 s",
        "a 300 ms window at <= 0.15 cores")
    stop(d, "bl", ["lim"])

    pin(d, True)
    create_busy(d, "bl", "s2", {"cpu": {"shares": 2000}})
    create_busy(d, "bl", "s1", {"cpu": {"shares": 1000}})
    wait_busy(d, "bl", ["s1", "s2"])
    w = windows(d, "bl", ["s1", "s2"], runs, window)
    ratios = [a / b for a, b in zip(w["s2"], w["s1"]) if b > 0]
    row("shares 2000:1000, one core", "2:1", "%.2f:1" % statistics.median(ratios),
        "%.3f and %.3f cores" % (statistics.median(w["s2"]), statistics.median(w["s1"])))
    stop(d, "bl", ["s1", "s2"])

    names = ["r0", "u1", "u2", "u3"]
    create_busy(d, "bl", "r0", {"cpu": {"reservation": 0.5}})
    for n in names[1:]:
        create_busy(d, "bl", n)
    wait_busy(d, "bl", names, timeout=240)
    w = windows(d, "bl", names, runs, window)
    total = [sum(x) for x in zip(*(w[n] for n in names))]
    share = [r / t for r, t in zip(w["r0"], total) if t > 0]
    row("reservation vs 3 busy VMs, one core", "0.5 core", "%.3f cores" % statistics.median(w["r0"]),
        "%.0f%% of what the VMs got (%.3f)" % (100 * statistics.median(share),
                                               statistics.median(total)))
    stop(d, "bl", names)
    pin(d, False)


def bench_memory(d):
    d.ok("POST", "/api/v1/tenants", body={"name": "bm"})
    r = mempressure.run(d, "bm", progress=lambda s: print(s, flush=True))
    row("memory: six 512 MiB VMs, 2 GiB bound", "2048 MiB", "peak %d MiB" % (r["peak_used"] >> 20),
        "OOM kills %s; all running: %s; all answer: %s" % (
            r["oom_kills"], all(s == "running" for s in r["states"].values()),
            all(r["responsive"].values())))
    row("memory: reclaimed by balloons (peak)", "", "%d MiB" % (r["peak_balloon"] >> 20),
        "end: %s MiB in balloons" % (sum(r["balloons"].values()) >> 20))
    sp = r["pressure_spells"]
    row("memory: time under the low watermark", "", "%s" % (
        "median %.1f s, max %.1f s (%d spells)" % (statistics.median(sp), max(sp), len(sp))
        if sp else "never"), "")
    row("memory: reserved VM's balloon", "<= %d MiB" % ((r["memory"] - r["reserve"]) >> 20),
        "%d MiB" % (r["balloons"][r["reserved_vm"]] >> 20), "")
    stop(d, "bm", r["names"])
    d.ok("PUT", "/api/v1/host", body={"vm_memory_bytes": None})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=float, default=6.0)
    ap.add_argument("--only", default="cpu,memory,io,ksm")
    args = ap.parse_args()
    only = args.only.split(",")
    need_guest()
    tmp = tempfile.mkdtemp(prefix="tsr-bench-res-")
    d = Daemon(os.path.join(tmp, "state"))
    try:
        d.start()
        host = d.ok("GET", "/api/v1/host")
        if host["cgroups"] == "none":
            print("resources: no cgroups here (%s)" % host.get("cgroups_why"))
            return 1
        print("resources on %d CPUs, cgroup %s; %d runs of %.0f s (medians)" % (
            host["cpus"], host["cgroups"], args.runs, args.window))
        print("  %-44s %-16s %-22s %s" % ("what", "set", "measured", ""))
        d.ok("PUT", "/api/v1/host", body={"cpu_overcommit": 16, "memory_overcommit": 4})
        if "cpu" in only:
            bench_cpu(d, args.runs, args.window)
        if "memory" in only:
            bench_memory(d)
    finally:
        d.stop()
        os.system("pkill -9 -f 'tessera run --config %s' 2>/dev/null" % tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    for script, key in (("bench_limits.py", "io"), ("bench_ksm.py", "ksm")):
        path = os.path.join(HERE, script)
        if key in only and os.path.exists(path):
            print("\n== %s" % script, flush=True)
            subprocess.run([sys.executable, path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
