"""VM-to-VM network throughput on one host: Tessera against qemu-system-riscv64 (TCG), each
running the same two guests (the default kernel and BusyBox initramfs, virtio-net on tap
devices) on one Linux bridge, runs alternating between the two. Prints each run, then medians,
ratios, and the host CPU both VMMs spent per Gbit moved.

The bridge and taps are made here (a bridge with no uplink and no address: nothing leaves the
machine) and removed at the end; needs root and /dev/net/tun. Guest A sends N MiB of zeros
with BusyBox nc to guest B's nc, which throws them away; throughput is what B's tap carried
(its tx_bytes, Ethernet frames) over the wall time of the transfer, measured on the host, and
CPU is the two VMM processes' user+system time over the same interval (/proc/PID/stat), both
sampled every 50 ms from the first frame to the last.

    python3 bench/bench_net.py [--runs N] [--mib N] [--mem SIZE]
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchkit import READY, need_guest, qemu_argv, tessera_argv
from testkit import proc_cpu_seconds
from vmdrive import VM, poweroff

SUBNET = "10.98.0.%d"
BRIDGE = "tsrbench%d" % (os.getpid() % 100000)
TAPS = [BRIDGE + "a", BRIDGE + "b"]
MACS = ["52:54:00:98:00:01", "52:54:00:98:00:02"]
ENGINE = "jit" if platform.machine() == "x86_64" else "interp"


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True)


def net_up():
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("link", "set", BRIDGE, "up")
    for t in TAPS:
        ip("tuntap", "add", t, "mode", "tap")
        ip("link", "set", t, "master", BRIDGE)
        ip("link", "set", t, "up")


def net_down():
    for link in TAPS + [BRIDGE]:
        subprocess.run(["ip", "link", "delete", link], stderr=subprocess.DEVNULL)


def argv_for(vmm, mem, i):
    if vmm == "tessera":
        return tessera_argv(mem, ["--cpu-engine", ENGINE, "--net",
                                  "tap,ifname=%s,mac=%s" % (TAPS[i], MACS[i])])
    return qemu_argv(mem, ["-monitor", "none", "-netdev",
                           "tap,id=n0,ifname=%s,script=no,downscript=no" % TAPS[i], "-device",
                           "virtio-net-device,netdev=n0,mac=%s" % MACS[i]])


def tx_bytes(tap):
    with open("/sys/class/net/%s/statistics/tx_bytes" % tap) as f:
        return int(f.read())


def one_run(vmm, mem, mib, logdir, n):
    vms = []
    try:
        for i in range(2):
            vms.append(VM(argv_for(vmm, mem, i),
                          log_path=os.path.join(logdir, "net-%s-%d-%d.log" % (vmm, n, i))))
        for i, v in enumerate(vms):
            v.expect(READY, 300)
            # The guest's own DHCP client has nothing to ask here: a fixed address.
            v.run("killall udhcpc 2>/dev/null; ip addr flush dev eth0; "
                  "ip addr add %s/24 dev eth0 && ip link set eth0 up" % (SUBNET % (i + 1)))
        out = vms[0].run("ping -c 3 -W 3 %s && echo ping-ok" % (SUBNET % 2), timeout=60)
        if "ping-ok" not in out:
            raise RuntimeError("%s: the guests do not reach each other: %r" % (vmm, out[-300:]))
        vms[1].run("(nc -l -p 5001 > /dev/null &)")
        time.sleep(0.5)
        pids = [v.proc.pid for v in vms]
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.monotonic(), tx_bytes(TAPS[1]),
                                sum(proc_cpu_seconds(p, children=True) for p in pids)))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        vms[0].run("dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc -w 2 %s 5001" %
                   (mib * 16, SUBNET % 2), timeout=600)
        # What A's kernel still held when its nc exited is on its way: wait for quiet.
        while len(samples) < 25 or samples[-1][1] != samples[-21][1]:
            time.sleep(0.1)
        stop.set()
        sampler.join()
        # From the first sample that saw traffic to the first that saw all of it (nc lingers
        # idle before it exits: that is not transfer time).
        base, last = samples[0][1], samples[-1][1]
        start = next(i for i, x in enumerate(samples) if x[1] > base) - 1
        end = next(i for i, x in enumerate(samples) if x[1] == last)
        secs = max(samples[end][0] - samples[start][0], 1e-3)
        gbit = (last - samples[start][1]) * 8 / 1e9
        cpu = samples[end][2] - samples[start][2]
        return {"mbit": gbit * 1e3 / secs, "cpu_per_gbit": cpu / max(gbit, 1e-9),
                "mib": (last - base) / 2**20}
    finally:
        for v in vms:
            try:
                poweroff(v)
            except Exception:
                v.kill()
            v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=32, help="MiB sent per run")
    ap.add_argument("--mem", default="256M")
    args = ap.parse_args()
    need_guest()
    if os.geteuid() != 0 or not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        sys.exit("bench-net: needs root and /dev/net/tun (it makes a bridge and two taps)")
    logdir = "build/bench-logs"
    os.makedirs(logdir, exist_ok=True)
    res = {"tessera": [], "qemu": []}
    print("bench-net: %d runs each, %d MiB guest A -> guest B over a bridge, tap, virtio-net, "
          "tessera engine %s" % (args.runs, args.mib, ENGINE), flush=True)
    net_up()
    try:
        with tempfile.TemporaryDirectory(prefix="tessera-bench-net-"):
            for i in range(args.runs):
                for vmm in ("tessera", "qemu"):
                    r = one_run(vmm, args.mem, args.mib, logdir, i)
                    res[vmm].append(r)
                    print("  run %d/%d %-8s %7.1f Mbit/s  %6.2f CPU-s per Gbit  (%.1f MiB on "
                          "the wire)" % (i + 1, args.runs, vmm, r["mbit"], r["cpu_per_gbit"],
                                         r["mib"]), flush=True)
    finally:
        net_down()
    print()
    print("%-30s %10s %10s %10s" % ("metric (median)", "tessera", "qemu", "ratio"))
    for key, label in (("mbit", "VM->VM TCP Mbit/s"), ("cpu_per_gbit", "host CPU-s per Gbit")):
        t = statistics.median(r[key] for r in res["tessera"])
        q = statistics.median(r[key] for r in res["qemu"])
        print("%-30s %10.2f %10.2f %9.2fx" % (label, t, q, t / q if q else float("nan")))
    print("(throughput ratio above 1: Tessera faster; CPU ratio below 1: Tessera cheaper)")


if __name__ == "__main__":
    main()
