"""Boot time of the Debian 13 cloud template (docs/templates.md) to its first SSH login: host
wall time from the VMM's start until `ssh` with the seed's key succeeds through the port
forward, with cloud-init provisioning a new instance (hostname, user, key, SSH host keys) on
every run. Each run boots a fresh overlay of the cached disk with a fresh seed, then powers the
guest off. Prints each run, then the median, minimum and maximum. Console logs go to
build/bench-logs/debian-N.log.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
import cloudvm  # noqa: E402
from testkit import free_port  # noqa: E402


def one_run(tpl, d, i, cpus, timeout, logdir):
    key, pub = cloudvm.keypair(d)
    seed = cloudvm.make_seed(d, "run%d" % i, "bench-%d" % i, pub)
    port = free_port()
    v = cloudvm.boot(tpl, d, "run%d" % i, port, seed, os.path.join(logdir, "debian-%d.log" % i),
                     cpus=cpus)
    try:
        t = cloudvm.wait_for_ssh(v, port, key, timeout)
        # A login before cloud-init has set the hostname would not be the boot we measure.
        r = cloudvm.ssh_retry(v, port, key, "hostname")
        assert r.stdout.strip() == "bench-%d" % i, "hostname %r after the login" % r.stdout
        rc = cloudvm.poweroff(v, port, key)
        assert rc == 0, "exit status %d after poweroff" % rc
        return t
    finally:
        v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=None, help="harts (default: the template's)")
    ap.add_argument("--timeout", type=float, default=1500, help="seconds to wait for SSH")
    args = ap.parse_args()
    tpl = cloudvm.build_debian()
    logdir = os.path.join(cloudvm.REPO, "build/bench-logs")
    os.makedirs(logdir, exist_ok=True)
    d = tempfile.mkdtemp(prefix="tessera-bench-debian-")
    cpus = args.cpus or tpl["cpus"]
    print("bench debian: %d runs, %d harts, %d MiB, kernel %s" % (
        args.runs, cpus, tpl["memory_bytes"] >> 20, tpl.get("kernel_release", "?")), flush=True)
    times = []
    try:
        for i in range(args.runs):
            t = one_run(tpl, d, i, cpus, args.timeout, logdir)
            times.append(t)
            print("  run %d/%d: SSH login %.1fs after start" % (i + 1, args.runs, t), flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("boot to SSH login (s): median %.1f, min %.1f, max %.1f over %d runs" % (
        statistics.median(times), min(times), max(times), len(times)))


if __name__ == "__main__":
    main()
