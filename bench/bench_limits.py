"""Disk and NIC rate limits: configured against measured, with the default guest.

Disk bandwidth: the guest's dd in 1 MiB O_DIRECT requests, write and read, on a disk with
bps=10M. Disk IOPS: the guest's tessera-diskbench, 4 KiB O_DIRECT requests at random offsets,
one at a time, on a disk with iops=500. NIC: 20 Mbit/s (rx_bps=2500000) host -> guest through
hostfwd, and tx_bps guest -> host (10 Mbit/s by default: the emulated guest sends only a little
faster than 20), as frame bytes the NIC moved (what the limit counts) and TCP payload the
receiver got. Live change: the time from the API's answer to the first 200 ms sample of the
device counters that shows the new rate (disk: 100 -> 1000 IOPS, seen at 500; NIC: 10 -> 40
Mbit/s, seen at 30). Each measurement repeats --runs times; the table shows medians.

    python3 bench/bench_limits.py [--runs N] [--tx-mbit N]
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

from benchkit import need_guest, tessera_argv  # puts tests/lib on the path
import limitsdrive as ld
from testkit import free_port
from vmdrive import poweroff


def disk_rows(tmp, runs):
    img = os.path.join(tmp, "disk.raw")
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    sock = os.path.join(tmp, "disk.sock")
    v = ld.boot(tessera_argv("256M", ["--disk", img + ",format=raw"]), sock,
                os.path.join(tmp, "disk.log"))
    rows = []
    try:
        ld.set_limits(sock, "disks", 0, {"bps": "10M"})
        for write in (True, False):
            got = [ld.disk_dd(v, write) for _ in range(runs)]
            rows.append(("disk dd %s (MiB/s)" % ("write" if write else "read"), 10.0, got))
        ld.set_limits(sock, "disks", 0, {"bps": 0, "iops": 500})
        for write in (False, True):
            got = [float(ld.disk_iops(v, write)) for _ in range(runs)]
            rows.append(("disk random 4K %s (IOPS)" % ("write" if write else "read"), 500.0,
                         got))
        got = []
        for _ in range(runs):
            v.run("(tessera-diskbench /dev/vda randread 8 > /dev/null 2>&1 &)")
            took = ld.live_change(sock, "disks", 0, "reads", {"iops": 100}, {"iops": 1000}, 500)
            got.append(took if took is not None else float("nan"))
            time.sleep(5)
        rows.append(("disk live change 100->1000 IOPS (s)", None, got))
    finally:
        poweroff(v)
    return rows


def nic_rows(tmp, runs, tx_mbit):
    fwd = free_port()
    sock = os.path.join(tmp, "nic.sock")
    v = ld.boot(tessera_argv("256M", ["--net", "user,hostfwd=tcp:127.0.0.1:%d-:5000" % fwd]),
                sock, os.path.join(tmp, "nic.log"))
    rows = []
    try:
        ld.wait_dhcp(v)
        ld.set_limits(sock, "nics", 0, {"rx_bps": 2500000})
        rx = [ld.nic_rx(v, sock, fwd) for _ in range(runs)]
        rows.append(("nic rx frames (Mbit/s)", 20.0, [f for _, f in rx]))
        rows.append(("nic rx TCP payload (Mbit/s)", None, [p for p, _ in rx]))
        ld.set_limits(sock, "nics", 0, {"rx_bps": 0, "tx_bps": int(tx_mbit * 1e6 / 8)})
        tx = [ld.nic_tx(v, sock, mib=4) for _ in range(runs)]
        rows.append(("nic tx frames (Mbit/s)", float(tx_mbit), [f for _, f in tx]))
        rows.append(("nic tx TCP payload (Mbit/s)", None, [p for p, _ in tx]))
        ld.set_limits(sock, "nics", 0, {"tx_bps": 0})
        got = []
        for _ in range(runs):
            ld.guest_listen(v)
            c = socket.create_connection(("127.0.0.1", fwd), timeout=60)
            t = threading.Thread(target=lambda c=c: (c.sendall(b"\x5a" * (32 << 20)), c.close()),
                                 daemon=True)
            t.start()
            took = ld.live_change(sock, "nics", 0, "rx_bytes", {"rx_bps": 1250000},
                                  {"rx_bps": 5000000}, 30e6 / 8)
            got.append(took if took is not None else float("nan"))
            ld.set_limits(sock, "nics", 0, {"rx_bps": 0})
            t.join(120)
            for _ in range(100):
                if "done" in v.run("pidof nc >/dev/null || echo done"):
                    break
                time.sleep(0.2)
        rows.append(("nic live change 10->40 Mbit/s (s)", None, got))
    finally:
        poweroff(v)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tx-mbit", type=float, default=10.0)
    args = ap.parse_args()
    need_guest()
    with tempfile.TemporaryDirectory(prefix="tessera-bench-limits-") as tmp:
        rows = disk_rows(tmp, args.runs) + nic_rows(tmp, args.runs, args.tx_mbit)
    print("\n%-38s %10s %10s %8s   %s" % ("measurement", "configured", "measured", "error",
                                          "runs"))
    for name, want, got in rows:
        med = statistics.median(got)
        err = "%+.1f%%" % ((med / want - 1) * 100) if want else ""
        print("%-38s %10s %10.2f %8s   %s" % (name, "%.2f" % want if want else "-", med, err,
                                               " ".join("%.2f" % g for g in got)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
