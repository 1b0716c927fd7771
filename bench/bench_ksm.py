"""Memory given back to the host: page sharing (KSM) across VMs of one guest, and free page
reporting (virtio-balloon) inside one VM. Runs on its own (as root, like the guest tests) or
from `bench/run.sh resources`.

KSM: boots N VMs of the default guest (and, with --debian when the Debian template is
cached, --debian-vms VMs of it, 1 GiB and 2 harts each: heavy on a small host) with the host's KSM stopped, then starts it (pages_to_scan and
sleep_millisecs as given; the host's settings are saved and restored) and samples
/sys/kernel/mm/ksm and each VM's GET /v1/vm/stats every half second until pages_sharing has
grown by less than 1% over the last --settle seconds. Prints the host memory saved (pages_sharing: the pages that
are now stored once instead of twice or more, in pages and MiB), each VM's ksm_merging_pages,
and how long merging took (to the first shared page, to 90% of the final saving, to settled).

Free page reporting: one VM with a balloon writes --fill MiB into a tmpfs file and removes it;
prints the MiB the VMM's RSS dropped and how long after the removal, against the same with
free_page_reporting=off. Console logs go to build/bench-logs/ksm-*.log.
"""

import argparse
import glob
import os
import sys
import tempfile
import time

import benchkit
from api import call  # noqa: E402  (benchkit puts tests/lib on the path)
from vmdrive import VM, poweroff  # noqa: E402

KSM = "/sys/kernel/mm/ksm"
KNOBS = ("pages_to_scan", "sleep_millisecs", "run")
LOGDIR = "build/bench-logs"


def ksm_read(name):
    with open(os.path.join(KSM, name)) as f:
        return int(f.read().split()[0]) if name != "advisor_mode" else f.read()


def ksm_write(values):
    for k in KNOBS:  # run last: scanning starts with the speed already set
        if k in values:
            with open(os.path.join(KSM, k), "w") as f:
                f.write(str(values[k]))


def memory(sock):
    st, body = call(sock, "GET", "/v1/vm/stats")
    if st != 200:
        raise RuntimeError("GET /v1/vm/stats on %s: HTTP %d" % (sock, st))
    return body["memory"]


def boot_default(d, name, mem, extra=()):
    sock = os.path.join(d, name + ".sock")
    v = VM(benchkit.tessera_argv(mem, ["--api-sock", sock] + list(extra)),
           log_path=os.path.join(LOGDIR, "ksm-%s.log" % name))
    try:
        v.expect(benchkit.READY, 300)
    except BaseException:
        v.close()
        raise
    return v, sock


def debian_template():
    """The cached Debian template's directory, or None (this bench never builds it)."""
    d = os.environ.get("TESSERA_DEBIAN_TEMPLATE")
    cands = [d] if d else (glob.glob("build/templates/debian-13") +
                           glob.glob(os.path.expanduser("~/.cache/tessera/templates/debian-*/*")))
    for c in cands:
        if c and os.path.exists(os.path.join(c, "template.json")):
            return os.path.realpath(c)
    return None


def start_debian(d, tdir, name):
    """Starts a Debian VM on a fresh overlay of the template's disk, no network and no seed
    (page sharing needs only the boot)."""
    import json
    import subprocess
    with open(os.path.join(tdir, "template.json")) as f:
        tpl = json.load(f)
    overlay = os.path.join(d, name + ".qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.join(tdir, tpl["volume"]), overlay], check=True)
    sock = os.path.join(d, name + ".sock")
    v = VM([benchkit.TESSERA, "run", "--kernel", os.path.join(tdir, tpl["boot"]["kernel"]),
            "--initrd", os.path.join(tdir, tpl["boot"]["initrd"]), "--append",
            tpl["boot"]["cmdline"], "--cpus", str(tpl["cpus"]), "--mem",
            "%dM" % (tpl["memory_bytes"] >> 20), "--disk", overlay + ",format=qcow2",
            "--api-sock", sock], log_path=os.path.join(LOGDIR, "ksm-%s.log" % name))
    return v, sock


def measure_ksm(label, vms, args):
    """Starts KSM over running VMs and follows it until it settles; prints and returns the
    final pages_sharing."""
    page = os.sysconf("SC_PAGE_SIZE")
    base = ksm_read("pages_sharing")
    rss0 = sum(memory(s)["rss_bytes"] for _, s in vms)
    ksm_write({"pages_to_scan": args.pages_to_scan, "sleep_millisecs": args.sleep_ms, "run": 1})
    t0 = time.monotonic()
    samples = []  # (t, pages_sharing)
    settled = None
    while True:
        time.sleep(0.5)
        now = time.monotonic()
        sharing = ksm_read("pages_sharing") - base
        samples.append((now - t0, sharing))
        back = [s for t, s in samples if t <= now - t0 - args.settle]
        if sharing > 0 and back and sharing - back[-1] <= 0.01 * sharing:
            # Settled: the time it reached what it has now, within 1%.
            settled = next(t for t, s in samples if s >= 0.99 * sharing)
            break
        if now - t0 > args.timeout:
            print("  %s: KSM did not settle in %d s" % (label, args.timeout))
            break
    final = samples[-1][1]
    first = next((t for t, s in samples if s > 0), None)
    ninety = next((t for t, s in samples if s >= 0.9 * final), None)
    per_vm = [memory(s)["ksm_merging_pages"] for _, s in vms]
    rss1 = sum(memory(s)["rss_bytes"] for _, s in vms)
    print("  %s: %d VMs; host saved %d pages = %.1f MiB (pages_sharing, host-wide: any other "
          "process's MADV_MERGEABLE memory counts too; pages_shared %d)" % (
              label, len(vms), final, final * page / 2**20, ksm_read("pages_shared")))
    print("  %s: ksm_merging_pages per VM %s; VMs' RSS %.1f -> %.1f MiB (RSS counts a shared "
          "page in every VM)" % (label, per_vm, rss0 / 2**20, rss1 / 2**20))
    fmt = lambda t: "%.1f s" % t if t is not None else "-"  # noqa: E731
    print("  %s: merging took: first shared page %s, 90%% of the saving %s, 99%% %s (then less "
          "than 1%% more in %d s)" % (label, fmt(first), fmt(ninety), fmt(settled), args.settle),
          flush=True)
    ksm_write({"run": 2})  # unmerge, so the next set starts from nothing
    while ksm_read("pages_sharing") > base and time.monotonic() - t0 < args.timeout * 2:
        time.sleep(0.2)
    ksm_write({"run": 0})
    return final


def bench_ksm(args, d):
    if not os.path.isdir(KSM):
        print("ksm: %s is absent (a kernel without KSM): skipped" % KSM)
        return
    saved = {k: ksm_read(k) for k in KNOBS}
    vms = []
    try:
        ksm_write({"run": 0})
        print("ksm: %d VMs of the default guest, %s each, KSM pages_to_scan %d, "
              "sleep_millisecs %d" % (args.vms, args.mem, args.pages_to_scan, args.sleep_ms),
              flush=True)
        for i in range(args.vms):
            vms.append(boot_default(d, "default%d" % i, args.mem))
        time.sleep(2)  # past the boot's last writes
        measure_ksm("default guest", vms, args)
        for v, _ in vms:
            poweroff(v)
        vms = []
        tdir = debian_template() if args.debian else None
        if args.debian and not tdir:
            print("ksm: --debian: no cached Debian template (templates/debian/build.sh): skipped")
        if tdir:
            print("ksm: %d Debian VMs from %s, booting together" % (args.debian_vms, tdir),
                  flush=True)
            for i in range(args.debian_vms):
                vms.append(start_debian(d, tdir, "debian%d" % i))
            t0 = time.monotonic()
            for i, (v, _) in enumerate(vms):
                left = args.debian_timeout - (time.monotonic() - t0)
                try:
                    v.expect(rb"login:", max(left, 1))
                except Exception:  # measured anyway: the kernel and what booted so far
                    print("  debian%d: no login prompt in %d s (booting on)" % (
                        i, args.debian_timeout))
            print("  debian: booted in %.0f s" % (time.monotonic() - t0), flush=True)
            measure_ksm("debian", vms, args)
            for v, _ in vms:
                v.close()
            vms = []
    finally:
        for v, _ in vms:
            v.close()
        ksm_write(saved)


def bench_reporting(args, d):
    print("free page reporting: a %s VM writes %d MiB to tmpfs and removes it" % (
        args.report_mem, args.fill), flush=True)
    for on in (True, False):
        name = "report-%s" % ("on" if on else "off")
        v, sock = boot_default(d, name, args.report_mem,
                               ["--device", "balloon,free_page_reporting=%s" % (
                                   "on" if on else "off")])
        try:
            time.sleep(4)  # the boot's own free memory is reported first
            v.run("dd if=/dev/zero of=/tmp/fill bs=1M count=%d 2>/dev/null" % args.fill)
            m = memory(sock)
            full, rep0 = m["rss_bytes"], m["balloon"]["reported_bytes"]
            v.run("rm /tmp/fill")
            t0 = time.monotonic()
            took = None
            while time.monotonic() - t0 < args.report_wait:
                m = memory(sock)
                if full - m["rss_bytes"] >= 0.9 * (args.fill << 20) and took is None:
                    took = time.monotonic() - t0
                    break
                time.sleep(0.1)
            m = memory(sock)
            print("  reporting %s: RSS %.1f -> %.1f MiB, %.1f MiB returned %s; reported_bytes "
                  "+%.1f MiB" % ("on " if on else "off", full / 2**20, m["rss_bytes"] / 2**20,
                                 (full - m["rss_bytes"]) / 2**20,
                                 "%.2f s after the removal" % took if took is not None
                                 else "(within %d s: less than 90%%)" % args.report_wait,
                                 (m["balloon"]["reported_bytes"] - rep0) / 2**20), flush=True)
            poweroff(v)
        finally:
            v.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vms", type=int, default=4)
    ap.add_argument("--mem", default="256M", help="RAM of each default-guest VM")
    ap.add_argument("--pages-to-scan", type=int, default=10000)
    ap.add_argument("--sleep-ms", type=int, default=10)
    ap.add_argument("--settle", type=int, default=5, help="seconds without growth = settled")
    ap.add_argument("--timeout", type=int, default=180, help="seconds KSM may take to settle")
    ap.add_argument("--debian", action="store_true", help="also Debian VMs, if cached")
    ap.add_argument("--debian-vms", type=int, default=4)
    ap.add_argument("--debian-timeout", type=int, default=900,
                    help="seconds for all to reach a login prompt")
    ap.add_argument("--fill", type=int, default=200, help="MiB the guest writes and frees")
    ap.add_argument("--report-mem", default="512M")
    ap.add_argument("--report-wait", type=int, default=15)
    ap.add_argument("--skip-ksm", action="store_true")
    ap.add_argument("--skip-reporting", action="store_true")
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    benchkit.need_guest()
    os.makedirs(LOGDIR, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tessera-bench-ksm-") as d:
        if not args.skip_ksm:
            bench_ksm(args, d)
        if not args.skip_reporting:
            bench_reporting(args, d)


if __name__ == "__main__":
    sys.exit(main())
