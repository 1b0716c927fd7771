"""Boot time of the Debian 13 cloud template (docs/templates.md) to its first SSH login, on
Tessera and on qemu-system-riscv64 (TCG) in alternating runs: host wall time from the VMM's
start until `ssh` with the seed's key succeeds through the port forward, with cloud-init
provisioning a new instance (hostname, user, key, SSH host keys) on every run. Each run boots a
fresh overlay of the cached disk with a fresh seed, both VMMs with the same firmware, kernel,
initrd, command line, harts, memory and devices, then powers the guest off. Prints each run,
then per VMM the median, minimum and maximum of the wall time and of the host CPU time it
used to get there (the steadier figure on a shared host), with Tessera's ratios to QEMU.
Console logs go to build/bench-logs/debian-VMM-N.log.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
import cloudvm  # noqa: E402
from testkit import free_port, proc_cpu_seconds  # noqa: E402


def one_run(tpl, d, vmm, i, cpus, timeout, logdir):
    key, pub = cloudvm.keypair(d)
    name = "%s%d" % (vmm, i)
    seed = cloudvm.make_seed(d, name, "bench-%d" % i, pub)
    port = free_port()
    v = cloudvm.boot(tpl, d, name, port, seed, os.path.join(logdir, "debian-%s.log" % name),
                     cpus=cpus, vmm=vmm)
    try:
        t = cloudvm.wait_for_ssh(v, port, key, timeout)
        cpu = proc_cpu_seconds(v.proc.pid)
        # A login before cloud-init has set the hostname would not be the boot we measure.
        r = cloudvm.ssh_retry(v, port, key, "hostname")
        assert r.stdout.strip() == "bench-%d" % i, "hostname %r after the login" % r.stdout
        rc = cloudvm.poweroff(v, port, key)
        assert rc == 0, "exit status %d after poweroff" % rc
        return t, cpu
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=None, help="harts (default: the template's)")
    ap.add_argument("--timeout", type=float, default=1500, help="seconds to wait for SSH")
    ap.add_argument("--vmm", default="tessera,qemu",
                    help="comma-separated VMMs to run, of tessera and qemu (default both)")
    args = ap.parse_args()
    tpl = cloudvm.build_debian()
    logdir = os.path.join(cloudvm.REPO, "build/bench-logs")
    os.makedirs(logdir, exist_ok=True)
    d = tempfile.mkdtemp(prefix="tessera-bench-debian-")
    cpus = args.cpus or tpl["cpus"]
    print("bench debian: %d runs, %d harts, %d MiB, kernel %s" % (
        args.runs, cpus, tpl["memory_bytes"] >> 20, tpl.get("kernel_release", "?")), flush=True)
    vmms = [x for x in args.vmm.split(",") if x]
    if not vmms or set(vmms) - {"tessera", "qemu"}:
        sys.exit("bench debian: --vmm takes tessera, qemu or both, not %r" % args.vmm)
    times = {vmm: [] for vmm in vmms}
    cpu = {vmm: [] for vmm in vmms}
    try:
        for i in range(args.runs):
            for vmm in vmms:
                t, c = one_run(tpl, d, vmm, i, cpus, args.timeout, logdir)
                times[vmm].append(t)
                cpu[vmm].append(c)
                print("  run %d/%d %-8s SSH login %.1fs after start, %.1f CPU-s used"
                      % (i + 1, args.runs, vmm, t, c), flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # On a shared host the wall time moves with other work; the CPU the VMM used to get there
    # moves much less, so both are reported.
    print("boot to SSH login, over %d runs:" % args.runs)
    for vmm in vmms:
        row = "  %-8s" % vmm
        for label, v in (("wall s", times), ("CPU s", cpu)):
            ratio = ""
            if vmm != "qemu" and "qemu" in v:
                ratio = " (%.2fx QEMU)" % (statistics.median(v[vmm]) / statistics.median(v["qemu"]))
            row += "  %s median %.1f [%.1f-%.1f]%s" % (label, statistics.median(v[vmm]),
                                                       min(v[vmm]), max(v[vmm]), ratio)
        print(row)


if __name__ == "__main__":
    main()
