"""Boot time and a CPU-bound guest program: Tessera (both CPU engines: the interpreter and,
on x86-64 hosts, the JIT) against qemu-system-riscv64 (TCG), with the same firmware, kernel,
initrd, memory and hart count, alternating runs so all see the same machine load. Prints each
run as it finishes, then medians and ratios to QEMU.

Boot time is host wall time from process start to the guest's TESSERA-GUEST-READY line. The
CPU-bound program is BusyBox sha256sum over data generated in the guest, timed on the host
between two markers the guest prints. Peak RSS is the VMM process's VmHWM when the guest
prints TESSERA-GUEST-READY (the issue's goal: 40 MB for a 256 MiB guest with the JIT).
"""

import argparse
import os
import statistics
import time

from benchkit import READY, VMMS, need_guest, peak_rss_mb, timed, vmm_argv
from vmdrive import VM

WORKLOAD = "dd if=/dev/zero bs=1M count=16 2>/dev/null | sha256sum"


def one_run(vmm, smp, mem, logdir, i):
    v = VM(vmm_argv(vmm, smp, mem), log_path=os.path.join(logdir, "%s-%d.log" % (vmm, i)))
    try:
        _, boot = v.expect(READY, 300)
        rss = peak_rss_mb(v.proc.pid)
        time.sleep(0.5)  # let the shell settle so the workload timing sees no boot noise
        cpu = timed(v, WORKLOAD, "WL")
        v.send("poweroff\n")
        v.wait(120)
        return boot, cpu, rss
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--mem", default="256M")
    args = ap.parse_args()
    need_guest()
    logdir = "build/bench-logs"
    os.makedirs(logdir, exist_ok=True)
    res = {vmm: {"boot": [], "cpu": [], "rss": []} for vmm in VMMS}
    print("bench: %d runs each, smp=%d, mem=%s; workload: %s" % (args.runs, args.smp, args.mem, WORKLOAD))
    for i in range(args.runs):
        for vmm in VMMS:
            boot, cpu, rss = one_run(vmm, args.smp, args.mem, logdir, i)
            res[vmm]["boot"].append(boot)
            res[vmm]["cpu"].append(cpu)
            res[vmm]["rss"].append(rss)
            name = vmm if vmm == "qemu" else "tessera " + vmm
            print("  run %d/%d %-15s boot %6.3fs  cpu %6.3fs  peak RSS %5.1f MB"
                  % (i + 1, args.runs, name, boot, cpu, rss), flush=True)
    print()
    engines = [v for v in VMMS if v != "qemu"]
    print("%-22s" % "metric (median)" + "".join("%15s %7s" % ("tessera " + e, "ratio") for e in engines)
          + "%10s" % "qemu")
    for key, label in (("boot", "boot to READY (s)"), ("cpu", "sha256 16 MiB (s)"),
                       ("rss", "peak RSS at READY (MB)")):
        q = statistics.median(res["qemu"][key])
        row = "%-22s" % label
        for e in engines:
            t = statistics.median(res[e][key])
            row += "%15.3f %6.2fx" % (t, t / q)
        print(row + "%10.3f" % q)
    print("(ratio = tessera / qemu; below 1 means Tessera is faster or smaller)")


if __name__ == "__main__":
    main()
