#!/usr/bin/env python3
"""Shares, limits and reservations (issue 10) under a real tesserad with real cgroups: CPU-bound
BusyBox VMs, what each gets read from its control group. Bounds are generous (CI runs other
tests beside this one); bench/bench_resources.py reports the exact numbers. Skips cleanly where
tesserad finds no cgroups. Prints "resources: N passed, N failed".

    tests/system/test_resources.py [TEST...]   (limit, shares, reservation, tenant, refusals, io, memory)
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import mempressure  # noqa: E402
from cpuload import create_busy, measure, stats, wait_busy  # noqa: E402
from syskit import check, run_suite  # noqa: E402

TESSERA = os.path.join(os.path.dirname(__file__), "..", "..", "build", "tessera")


def pin_one_core(d):
    """All VMs on the host's last CPU, so that they compete whatever else runs."""
    host = d.ok("GET", "/api/v1/host")
    cpu = host["cpus"] - 1
    d.ok("PUT", "/api/v1/host", body={"vm_cpuset": str(cpu)})
    return cpu


def stop_all(d, tenant, names):
    for n in names:
        d.call("POST", "/api/v1/vms/%s/actions/stop?tenant=%s" % (n, tenant))
    deadline = time.time() + 60
    for n in names:
        while time.time() < deadline:
            if d.ok("GET", "/api/v1/vms/%s?tenant=%s" % (n, tenant))["state"] == "stopped":
                break
            time.sleep(0.5)


def test_limit(d):
    """A VM limited to 0.5 core never gets more, throttling shows in its stats, and a new
    limit set on the running VM holds within a second or two."""
    d.ok("POST", "/api/v1/tenants", body={"name": "lim"})
    create_busy(d, "lim", "l1", {"cpu": {"limit": 0.5}})
    check(not wait_busy(d, "lim", ["l1"]), "l1 runs its loop")
    got, st = measure(d, "lim", ["l1"], 5)
    print("  limit 0.5: used %.3f cores" % got["l1"])
    check(0.3 <= got["l1"] <= 0.6, "limit 0.5 core: used %.3f" % got["l1"])
    check(st["l1"]["cpu"].get("throttled_ns", 0) > 0 and st["l1"]["cpu"]["nr_throttled"] > 0,
          "throttled time is reported: %s" % st["l1"]["cpu"])
    _, _, text = d.call("GET", "/metrics")
    line = [ln for ln in text.decode().splitlines()
            if ln.startswith('tessera_vm_cpu_throttled_seconds_total{tenant="lim",vm="l1"}')]
    check(line and float(line[0].split()[-1]) > 0, "/metrics shows the throttled time: %s"
          % line)
    t0 = time.monotonic()
    d.ok("PUT", "/api/v1/vms/l1/resources?tenant=lim", body={"cpu": {"limit": 0.2}})
    time.sleep(max(0, 1 - (time.monotonic() - t0)))
    got, _ = measure(d, "lim", ["l1"], 3)
    print("  limit changed to 0.2 live: used %.3f cores in the 3 s after the first second"
          % got["l1"])
    check(got["l1"] <= 0.3, "live limit 0.2: used %.3f" % got["l1"])
    vm = d.ok("GET", "/api/v1/vms/l1?tenant=lim")
    check(vm["resources"]["cpu"]["limit"] == 0.2, "the VM document shows the new limit")
    # The same through the CLI: `tessera vm set` and `tessera vm stats`.
    cli = [TESSERA, "--host", "unix:" + d.sock, "--token", d.token]
    r = subprocess.run(cli + ["vm", "set", "l1", "--tenant", "lim", "--cpu-limit", "none",
                              "--cpu-shares", "3000"], capture_output=True, text=True)
    vm = d.ok("GET", "/api/v1/vms/l1?tenant=lim")
    check(r.returncode == 0 and vm["resources"]["cpu"]["limit"] is None and
          vm["resources"]["cpu"]["shares"] == 3000, "tessera vm set: %s %s" % (r.stderr, vm))
    r = subprocess.run(cli + ["vm", "stats", "l1", "--tenant", "lim", "--json"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and json.loads(r.stdout)["cpu"]["used_ns"] > 0,
          "tessera vm stats: %s %s" % (r.stdout[:200], r.stderr))
    r = subprocess.run(cli + ["vm", "set", "l1", "--tenant", "lim", "--cpu-limit", "lots"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--cpu-limit 'lots'" in r.stderr, "a bad --cpu-limit: %s"
          % r.stderr)
    stop_all(d, "lim", ["l1"])


def test_shares(d):
    """Two busy VMs on one core with shares 2:1 get CPU time near 2:1; the one that gets less
    reports the CPU it waited for."""
    pin_one_core(d)
    d.ok("POST", "/api/v1/tenants", body={"name": "sh"})
    create_busy(d, "sh", "s2", {"cpu": {"shares": 2000}})
    create_busy(d, "sh", "s1", {"cpu": {"shares": 1000}})
    check(not wait_busy(d, "sh", ["s1", "s2"]), "both loops run")
    got, st = measure(d, "sh", ["s1", "s2"], 6)
    ratio = got["s2"] / got["s1"] if got["s1"] > 0 else 0
    print("  shares 2000:1000 on one core: %.3f and %.3f cores, ratio %.2f"
          % (got["s2"], got["s1"], ratio))
    check(1.5 <= ratio <= 2.7, "shares 2:1 ratio %.2f" % ratio)
    check(st["s1"]["cpu"].get("wait_ns", 0) > 0, "the VM reports CPU it waited for")
    stop_all(d, "sh", ["s1", "s2"])
    d.ok("PUT", "/api/v1/host", body={"vm_cpuset": ""})


def test_reservation(d):
    """A VM with a reservation of 0.5 core keeps about that while three unreserved busy VMs
    compete on the same core."""
    cpu = pin_one_core(d)
    d.ok("POST", "/api/v1/tenants", body={"name": "res"})
    names = ["r0", "u1", "u2", "u3"]
    create_busy(d, "res", "r0", {"cpu": {"reservation": 0.5}})
    for n in names[1:]:
        create_busy(d, "res", n)
    check(not wait_busy(d, "res", names, timeout=180), "the four loops run")
    got, _ = measure(d, "res", names, 6)
    print("  reservation 0.5 on CPU %d against 3 busy VMs: %.3f cores (others %s)"
          % (cpu, got["r0"], ", ".join("%.3f" % got[n] for n in names[1:])))
    # The host's other work shares the core with the VMs' group: the reservation holds among
    # the VMs (theory: 0.5 + 0.5/4 = 62.5% of what they get), and in cores on a quiet host.
    total = sum(got.values())
    check(total > 0 and got["r0"] / total >= 0.5 and got["r0"] >= 0.3,
          "reserved VM kept %.3f cores, %.0f%% of the VMs' %.3f" % (
              got["r0"], 100 * got["r0"] / total if total else 0, total))
    stop_all(d, "res", names)
    d.ok("PUT", "/api/v1/host", body={"vm_cpuset": ""})


def test_tenant(d):
    """A tenant's pool limit bounds all its VMs together."""
    d.ok("POST", "/api/v1/tenants", body={"name": "pool"})
    pool = d.ok("PUT", "/api/v1/tenants/pool/resources", body={"cpu": {"limit": 0.4}})
    check(pool["cpu"]["limit"] == 0.4, "the tenant's pool: %s" % pool)
    create_busy(d, "pool", "p1")
    create_busy(d, "pool", "p2")
    check(not wait_busy(d, "pool", ["p1", "p2"]), "both loops run")
    got, _ = measure(d, "pool", ["p1", "p2"], 5)
    total = got["p1"] + got["p2"]
    print("  tenant limit 0.4: its two busy VMs use %.3f cores together" % total)
    check(total <= 0.5, "tenant pool limit 0.4: used %.3f" % total)
    stop_all(d, "pool", ["p1", "p2"])


def test_refusals(d):
    """Reservations that do not fit, and bad values, are refused naming the field and what is
    left."""
    d.ok("POST", "/api/v1/tenants", body={"name": "ref"})
    host = d.ok("GET", "/api/v1/host")
    cpus = host["cpus"]
    d.ok("POST", "/api/v1/vms?tenant=ref", body={
        "name": "big", "template": "busybox", "memory_bytes": 64 << 20, "cpus": cpus,
        "resources": {"cpu": {"reservation": cpus - 0.5}}})
    d.ok("POST", "/api/v1/vms?tenant=ref", body={
        "name": "more", "template": "busybox", "memory_bytes": 64 << 20,
        "resources": {"cpu": {"reservation": 1}}})
    op = d.wait_op(d.ok("POST", "/api/v1/vms/big/actions/start?tenant=ref"))
    check(op["status"] == "success", "the big reservation starts")
    st, doc, _ = d.call("POST", "/api/v1/vms/more/actions/start?tenant=ref")
    msg = (doc or {}).get("error", {}).get("message", "")
    check(st == 409 and doc["error"].get("field") == "resources.cpu.reservation" and
          "0.5 are left" in msg, "a reservation that does not fit: %d %s" % (st, msg))
    print("  refused: %s" % msg)
    st, doc, _ = d.call("PUT", "/api/v1/vms/big/resources?tenant=ref",
                        body={"cpu": {"reservation": cpus + 1}})
    check(st == 400 and doc["error"]["field"] == "resources.cpu.reservation",
          "a reservation above the VM's vCPUs: %d %s" % (st, doc))
    st, doc, _ = d.call("PUT", "/api/v1/vms/big/resources?tenant=ref",
                        body={"cpu": {"limit": "fast"}})
    check(st == 400 and doc["error"]["field"] == "resources.cpu.limit", "a limit that is text")
    st, doc, _ = d.call("PUT", "/api/v1/vms/big/resources?tenant=ref",
                        body={"gpu": {"count": 5}})
    check(st == 400, "an unknown resource group: %d %s" % (st, doc))
    st, doc, _ = d.call("PUT", "/api/v1/host", body={"vm_cpuset": "0-999"})
    check(st == 400 and doc["error"]["field"] == "vm_cpuset", "a cpuset beyond the host's CPUs")
    # Memory: a reservation beyond what VMs may hold.
    d.ok("PUT", "/api/v1/host", body={"vm_memory_bytes": 1 << 30})
    d.ok("PUT", "/api/v1/vms/more/resources?tenant=ref", body={"cpu": {"reservation": 0}})
    st, doc, _ = d.call("PUT", "/api/v1/vms/big/resources?tenant=ref",
                        body={"memory": {"reservation_bytes": 60 << 20}})
    check(st == 200, "a memory reservation that fits: %d %s" % (st, doc))
    stats_doc = stats(d, "ref", "big")
    check(stats_doc["memory"].get("cgroup_bytes", 0) > 0, "memory use is reported")
    stop_all(d, "ref", ["big"])
    d.ok("PUT", "/api/v1/host", body={"vm_memory_bytes": None})


def test_io(d):
    """Disk and NIC rate limits through the daemon: given at create they reach the VMM at its
    start, a change on the running VM reaches it at once, and 0 lifts one; the stopped VM's
    next start keeps the change; throughput stays under the disk's limit."""
    d.ok("POST", "/api/v1/tenants", body={"name": "io"})
    mib = 1 << 20
    fill = "#!/bin/sh\nwhile :; do dd if=/dev/vda of=/dev/null bs=1M iflag=direct 2>/dev/null; done\n"
    vm = d.ok("POST", "/api/v1/vms?tenant=io", body={
        "name": "disk", "template": "busybox", "memory_bytes": 64 * mib, "disk_bytes": 96 * mib,
        "cloud_init": {"user_data": fill}, "start": True,
        "resources": {"disk": {"bps": 4 * mib, "iops": 400}, "network": {"rx_bps": 2500000}}})
    op = d.wait_op(vm["operation"])
    check(op["status"] == "success", "started with limits: %s" % op)
    vmm = stats(d, "io", "disk")["vmm"]
    check(vmm["disks"][0]["limits"].get("bps") == 4 * mib and
          vmm["disks"][0]["limits"].get("iops") == 400, "the VMM's disk limits: %s"
          % vmm["disks"][0].get("limits"))
    check(vmm["nics"][0]["limits"].get("rx_bps") == 2500000, "the VMM's NIC limits: %s"
          % vmm["nics"][0].get("limits"))
    # The guest reads its disk as fast as it may: the VMM's counters say how fast that is.
    time.sleep(8)
    a = stats(d, "io", "disk")
    time.sleep(4)
    b = stats(d, "io", "disk")
    rate = (b["vmm"]["disks"][0]["read_bytes"] - a["vmm"]["disks"][0]["read_bytes"]) / (
        (b["sampled_ns"] - a["sampled_ns"]) / 1e9)
    print("  disk limited to 4 MiB/s: the guest read %.2f MiB/s" % (rate / mib))
    check(0.5 * 4 * mib < rate <= 1.25 * 4 * mib, "disk read rate %.2f MiB/s" % (rate / mib))
    check(b["vmm"]["disks"][0].get("throttled_ns", 0) > 0, "throttled time counted")
    _, _, text = d.call("GET", "/metrics")
    line = [ln for ln in text.decode().splitlines()
            if ln.startswith('tessera_vm_disk_throttled_seconds_total{tenant="io",vm="disk"}')]
    check(line and float(line[0].split()[-1]) > 0, "/metrics shows the disk's throttled time")
    d.ok("PUT", "/api/v1/vms/disk/resources?tenant=io", body={"disk": {"bps": 0, "iops": 200}})
    lim = stats(d, "io", "disk")["vmm"]["disks"][0]["limits"]
    check(lim.get("iops") == 200 and not lim.get("bps"), "a live change: %s" % lim)
    stop_all(d, "io", ["disk"])
    d.ok("PUT", "/api/v1/vms/disk/resources?tenant=io", body={"network": {"tx_bps": 1000000}})
    op = d.wait_op(d.ok("POST", "/api/v1/vms/disk/actions/start?tenant=io"))
    vmm = stats(d, "io", "disk")["vmm"]
    check(op["status"] == "success" and vmm["disks"][0]["limits"].get("iops") == 200 and
          vmm["nics"][0]["limits"].get("tx_bps") == 1000000,
          "the next start keeps them: %s %s" % (vmm["disks"][0].get("limits"),
                                                vmm["nics"][0].get("limits")))
    st, doc, _ = d.call("PUT", "/api/v1/vms/disk/resources?tenant=io",
                        body={"disk": {"bps": -1}})
    check(st == 400 and doc["error"]["field"] == "resources.disk.bps", "a negative bps")
    st, doc, _ = d.call("PUT", "/api/v1/vms/disk/resources?tenant=io",
                        body={"network": {"rx_mbit": 5}})
    check(st == 400, "an unknown network key: %s" % doc)
    stop_all(d, "io", ["disk"])


def test_memory(d):
    """Six 512 MiB VMs under a 2 GiB bound for all VMs, each reading 350 MiB of its disk into
    turn: the balloon policy takes the idle memory back, nobody is OOM-killed, every guest
    answers on its console, and the VM with a 400 MiB reservation keeps it."""
    d.ok("POST", "/api/v1/tenants", body={"name": "mem"})
    r = mempressure.run(d, "mem")
    reclaimed = r["peak_balloon"] >> 20
    print("  memory: peak use %d MiB of %d; balloons peaked at %d MiB; end use %d MiB; "
          "OOM kills %s" % (r["peak_used"] >> 20, r["bound"] >> 20, reclaimed,
                            r["used_end"] >> 20, r["oom_kills"]))
    print("  per VM (RSS/balloon MiB): %s" % ", ".join(
        "%s %d/%d" % (n, r["rss"][n] >> 20, r["balloons"][n] >> 20) for n in r["names"]))
    check(len(r["filled"]) == len(r["names"]), "every guest filled and freed: %s" % r["filled"])
    check(all(s == "running" for s in r["states"].values()), "all still run: %s" % r["states"])
    check(r["oom_kills"] in (0, None), "no OOM kill in the VMs' group: %s" % r["oom_kills"])
    check(all(r["responsive"].values()), "every console answers: %s" % r["responsive"])
    check(reclaimed > 0, "the balloons took memory back")
    check(r["peak_used"] <= r["bound"], "use stayed within the bound")
    check(r["balloons"][r["reserved_vm"]] <= r["memory"] - r["reserve"],
          "the reserved VM keeps its reservation: balloon %d MiB"
          % (r["balloons"][r["reserved_vm"]] >> 20))
    stop_all(d, "mem", r["names"])
    d.ok("PUT", "/api/v1/host", body={"vm_memory_bytes": None})


TESTS = [("limit", test_limit), ("shares", test_shares), ("reservation", test_reservation),
         ("tenant", test_tenant), ("refusals", test_refusals),
         ("io", test_io), ("memory", test_memory)]


def prepare(d):
    host = d.ok("GET", "/api/v1/host")
    if host["cgroups"] == "none":
        return "no cgroups (%s)" % host.get("cgroups_why")
    print("  cgroups %s, %d CPUs" % (host["cgroups"], host["cpus"]))
    d.ok("PUT", "/api/v1/host", body={"cpu_overcommit": 16, "memory_overcommit": 4})
    return None


def main():
    return run_suite("resources", TESTS, sys.argv[1:], prefix="tessera-res-", prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
