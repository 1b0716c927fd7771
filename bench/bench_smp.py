"""SMP scaling: N copies of a CPU-bound guest program on N harts, against one copy, on Tessera
(each CPU engine this host has) and on qemu-system-riscv64 (multi-threaded TCG), with the same
firmware, kernel, initramfs and memory, alternating runs so all see the same machine load.

Each run boots one VM with N harts, waits for the shell, runs the program once alone and then
N copies at once (each its own `sha256sum` of 16 MiB made in the guest), and times both on the
host between markers the guest prints. The speedup is the work done per second with N copies
against one: N x t(1) / t(N). Its ceiling is min(N, host cores): a 2-core host cannot run 4
harts' work faster than 2 cores do, whatever the VMM, so compare the VMMs' speedups, not the
speedup with N. Prints each run, then medians.
"""

import argparse
import os
import statistics
import time

from benchkit import READY, VMMS, need_guest, timed, vmm_argv
from vmdrive import VM

ONE = "dd if=/dev/zero bs=1M count=16 2>/dev/null | sha256sum >/dev/null"


def one_run(vmm, harts, mem, logdir, i):
    v = VM(vmm_argv(vmm, harts, mem), log_path=os.path.join(logdir, "smp-%s-%d.log" % (vmm, i)))
    try:
        v.expect(READY, 300)
        time.sleep(0.5)  # let the shell settle so the first timing sees no boot noise
        alone = timed(v, ONE, "ONE")
        # The copies run in the background and the shell waits for all of them.
        together = timed(v, " ".join(["(%s) &" % ONE] * harts) + " wait", "ALL")
        v.send("poweroff\n")
        v.wait(120)
        return alone, together
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--harts", type=int, default=4)
    ap.add_argument("--mem", default="256M")
    args = ap.parse_args()
    if not 1 <= args.harts <= 8:
        raise SystemExit("bench smp: --harts takes 1 to 8")
    need_guest()
    logdir = "build/bench-logs"
    os.makedirs(logdir, exist_ok=True)
    res = {vmm: {"one": [], "all": [], "speedup": []} for vmm in VMMS}
    print("bench smp: %d runs each, %d harts, %d host CPUs, mem=%s; each copy: %s"
          % (args.runs, args.harts, os.cpu_count(), args.mem, ONE), flush=True)
    for i in range(args.runs):
        for vmm in VMMS:
            alone, together = one_run(vmm, args.harts, args.mem, logdir, i)
            speedup = args.harts * alone / together
            res[vmm]["one"].append(alone)
            res[vmm]["all"].append(together)
            res[vmm]["speedup"].append(speedup)
            name = vmm if vmm == "qemu" else "tessera " + vmm
            print("  run %d/%d %-15s 1 copy %6.3fs  %d copies %6.3fs  speedup %.2f"
                  % (i + 1, args.runs, name, alone, args.harts, together, speedup), flush=True)
    print()
    print("%-16s %10s %10s %9s %14s" % ("median", "1 copy", "%d copies" % args.harts,
                                        "speedup", "vs qemu's"))
    q = statistics.median(res["qemu"]["speedup"])
    for vmm in VMMS:
        s = statistics.median(res[vmm]["speedup"])
        print("%-16s %9.3fs %9.3fs %9.2f %13.2fx" % (
            vmm if vmm == "qemu" else "tessera " + vmm, statistics.median(res[vmm]["one"]),
            statistics.median(res[vmm]["all"]), s, s / q))
    print("(speedup = %d x t(1 copy) / t(%d copies); its ceiling here is %d; above 1.00x means "
          "Tessera scales better than QEMU)" % (args.harts, args.harts,
                                                min(args.harts, os.cpu_count())))


if __name__ == "__main__":
    main()
