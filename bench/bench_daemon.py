#!/usr/bin/env python3
"""tesserad's VM creation against the same work done by hand: N VMs created from the default
template (a linked qcow2 clone, a cloud-init seed, a config document, the rows), each timed
over the API socket, against `qemu-img create -b` plus `xorriso` making the same overlay and
seed. Prints medians and the ratio, the daemon's CPU time per create (its own and its
children's, from /proc), the disk each clone costs, and the time from a start request to the
guest's ready line.

    bench/run.sh daemon [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchkit import need_guest  # noqa: E402
from tesserad import Daemon  # noqa: E402
from testkit import proc_cpu_seconds  # noqa: E402


def by_hand(tmp, base, n):
    """The peer: the overlay and the seed, made by the field's tools."""
    times = []
    seed = os.path.join(tmp, "seed")
    os.makedirs(seed, exist_ok=True)
    for i in range(n):
        t0 = time.monotonic()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base,
                        os.path.join(tmp, "hand%d.qcow2" % i)], check=True)
        with open(os.path.join(seed, "meta-data"), "w") as f:
            f.write("instance-id: hand%d\nlocal-hostname: hand%d\n" % (i, i))
        with open(os.path.join(seed, "user-data"), "w") as f:
            f.write("#cloud-config\nhostname: hand%d\n" % i)
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-o",
                        os.path.join(tmp, "hand%d.iso" % i), seed], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.monotonic() - t0)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20, help="VMs to create (default 20)")
    args = ap.parse_args()
    need_guest()
    tmp = tempfile.mkdtemp(prefix="tsr-bench-daemon-")
    d = Daemon(os.path.join(tmp, "state"))
    d.start()
    try:
        d.ok("PUT", "/api/v1/host", body={"cpu_overcommit": 64, "memory_overcommit": 4})
        walls, cpus, sizes = [], [], []
        for i in range(args.runs):
            c0, t0 = proc_cpu_seconds(d.proc.pid, children=True), time.monotonic()
            d.ok("POST", "/api/v1/vms?tenant=", body={"name": "b%d" % i, "template": "busybox",
                                                      "memory_bytes": 64 << 20})
            walls.append(time.monotonic() - t0)
            cpus.append(proc_cpu_seconds(d.proc.pid, children=True) - c0)
            sizes.append(d.ok("GET", "/api/v1/volumes/vm-b%d?tenant=" % i)["allocated_bytes"])
        base = os.path.join(tmp, "state", "pools", "default", "_shared", "busybox.qcow2")
        hand = by_hand(tmp, base, args.runs)
        t0 = time.monotonic()
        d.ok("POST", "/api/v1/vms/b0/actions/start?tenant=")
        while "TESSERA-GUEST-READY" not in d.ok("GET", "/api/v1/vms/b0/log?tenant=")["log"]:
            if time.monotonic() - t0 > 300:
                raise SystemExit("bench: the VM did not boot in 300 s")
            time.sleep(0.05)
        boot = time.monotonic() - t0
        d.wait_op(d.ok("POST", "/api/v1/vms/b0/actions/stop?tenant="))
    finally:
        d.stop()
        subprocess.run(["pkill", "-9", "-f", "tessera run --config " + tmp])
    mt, mh = statistics.median(walls), statistics.median(hand)
    print("VM create from the default template, %d runs (medians):" % args.runs)
    print("  tesserad (API request, wall)     %7.1f ms   (max %.1f ms)" % (mt * 1e3,
                                                                          max(walls) * 1e3))
    print("  tesserad CPU (daemon + children) %7.1f ms" % (statistics.median(cpus) * 1e3))
    print("  qemu-img + xorriso by hand       %7.1f ms" % (mh * 1e3))
    print("  ratio tesserad / by hand         %7.2f" % (mt / mh))
    print("  linked clone on disk             %7.1f KiB (max %.1f KiB)" %
          (statistics.median(sizes) / 1024, max(sizes) / 1024))
    print("start request to the guest's ready line: %.2f s" % boot)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
