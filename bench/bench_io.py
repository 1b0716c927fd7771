"""Disk and network throughput: Tessera against qemu-system-riscv64 (TCG) with the same raw
image, guest, memory and virtio-mmio devices (virtio-blk, virtio-net on user networking), runs
alternating between the two. Prints each measurement, then medians and ratios.

Disk: the guest's tessera-diskbench (O_DIRECT, one request at a time) for sequential 1 MiB and
random 4 KiB reads and writes. Network: guest-to-host TCP, the guest's nc sending zeros to a
host socket that counts bytes; throughput measured on the host.
"""

import argparse
import os
import re
import socket
import statistics
import tempfile
import threading
import time

from benchkit import READY, need_guest, qemu_argv, tessera_argv
from vmdrive import VM
MODES = ("seqread", "seqwrite", "randread", "randwrite")


def argv_for(vmm, img, mem):
    if vmm == "tessera":
        return tessera_argv(mem, ["--disk", img + ",format=raw", "--net", "user"])
    return qemu_argv(mem, ["-monitor", "none", "-drive", "file=%s,if=none,format=raw,id=d0" % img,
                           "-device", "virtio-blk-device,drive=d0", "-netdev", "user,id=n0",
                           "-device", "virtio-net-device,netdev=n0"])


def tcp_sink(results):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        total, t0 = 0, None
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            if t0 is None:
                t0 = time.monotonic()
            total += len(d)
        results["bytes"] = total
        results["secs"] = time.monotonic() - (t0 or time.monotonic())
        c.close()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


def one_run(vmm, img, mem, secs, logdir, i):
    v = VM(argv_for(vmm, img, mem), log_path=os.path.join(logdir, "io-%s-%d.log" % (vmm, i)))
    res = {}
    try:
        v.expect(READY, 300)
        for mode in MODES:
            out = v.run("tessera-diskbench /dev/vda %s %s" % (mode, secs), timeout=120)
            # Kernel messages may share the console: pick the tool's own line.
            m = re.search(r"%s ([0-9.]+) MB/s ([0-9.]+) IOPS" % mode, out)
            res[mode] = float(m.group(1)) if m else float("nan")
            if mode.startswith("rand"):
                res[mode + "_iops"] = float(m.group(2)) if m else float("nan")
        for _ in range(30):
            if "10.0.2.15" in v.run("ip -4 addr show eth0"):
                break
            time.sleep(1)
        sink = {}
        port = tcp_sink(sink)
        v.run("dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc -w 5 10.0.2.2 %d" % (1024, port),
              timeout=300)
        for _ in range(100):
            if "secs" in sink:
                break
            time.sleep(0.1)
        res["tcp"] = sink["bytes"] / max(sink["secs"], 1e-6) / 1e6 if sink.get("bytes") else float("nan")
        v.send("poweroff\n")
        v.wait(60)
    finally:
        v.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3.0, help="seconds per disk measurement")
    ap.add_argument("--mem", default="256M")
    args = ap.parse_args()
    need_guest()
    logdir = "build/bench-logs"
    os.makedirs(logdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tessera-bench-")
    img = os.path.join(tmp, "disk.raw")
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    keys = list(MODES) + ["randread_iops", "randwrite_iops", "tcp"]
    res = {"tessera": {k: [] for k in keys}, "qemu": {k: [] for k in keys}}
    print("bench-io: %d runs each, %gs per disk measurement, raw 256 MiB image, user net" % (
        args.runs, args.secs))
    for i in range(args.runs):
        for vmm in ("tessera", "qemu"):
            r = one_run(vmm, img, args.mem, args.secs, logdir, i)
            for k in keys:
                res[vmm][k].append(r.get(k, float("nan")))
            print("  run %d/%d %-8s " % (i + 1, args.runs, vmm) +
                  "  ".join("%s %.1f" % (k, r.get(k, float("nan"))) for k in keys), flush=True)
    os.unlink(img)
    os.rmdir(tmp)
    print()
    print("%-26s %10s %10s %10s" % ("metric (median)", "tessera", "qemu", "ratio"))
    labels = {"seqread": "seq read MB/s", "seqwrite": "seq write MB/s", "randread": "4K rand read MB/s",
              "randwrite": "4K rand write MB/s", "randread_iops": "4K rand read IOPS",
              "randwrite_iops": "4K rand write IOPS", "tcp": "guest->host TCP MB/s"}
    for k in keys:
        t = statistics.median(res["tessera"][k])
        q = statistics.median(res["qemu"][k])
        print("%-26s %10.1f %10.1f %9.2fx" % (labels[k], t, q, t / q if q else float("nan")))
    print("(ratio = tessera / qemu throughput; above 1 means Tessera is faster)")


if __name__ == "__main__":
    main()
