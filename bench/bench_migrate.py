"""Live migration and snapshot save/restore: Tessera against qemu-system-riscv64 (TCG) with the
same firmware, kernel, initrd and memory, alternating runs so both see the same machine load.

live migration  the guest runs tessera-memstress (rewrites 64 MiB per round) and is migrated to
                a second process on 127.0.0.1; each VMM reports its own total time and
                downtime (QEMU: `info migrate`, with auto-converge on and no bandwidth cap, as
                Tessera has; both with a 300 ms downtime limit). Tessera runs it twice, over
                tcp: and over tls: (mutual TLS with certificates made for the run), so the
                cost of TLS is measured on the same load.
snapshot        an idle booted guest is saved to a file (QEMU: `migrate "exec:cat > FILE"`,
                the usual way to snapshot a VM without a qcow2 disk) and restored in a new
                process (QEMU: `-incoming "exec:cat FILE"`); save is the VMM's reported pause
                (QEMU: its downtime) and total, restore is host wall time from process start to
                the guest answering a command on the console.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import benchkit
from benchkit import READY, TESSERA, need_guest, tessera_argv
from testkit import free_port
from tlscerts import make_certs, tls_args
from vmdrive import VM


class Hmp:
    """QEMU's human monitor on a unix socket: one command, its output up to the prompt."""

    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.buf = b""
        self._until_prompt()

    def _until_prompt(self):
        while b"(qemu) " not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("QEMU monitor closed")
            self.buf += d
        out, self.buf = self.buf.split(b"(qemu) ", 1)
        return out.decode(errors="replace")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self._until_prompt()


def qemu_argv(mem, extra):
    return benchkit.qemu_argv(mem, ["-nodefaults"] + extra)


def responds(v, timeout=120):
    """Returns once the guest answers on the console. A UART may drop what arrives while the
    machine is still loading, so the command is repeated every 0.2 s until it is answered."""
    deadline = time.monotonic() + timeout
    tag = "ALIVE%d" % int(time.monotonic() * 1000)
    while True:
        v.send("\necho %s$((6*7))\n" % tag)
        try:
            v.expect(("%s42" % tag).encode(), 0.2)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def qemu_wait_migration(hmp, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = hmp.cmd("info migrate")
        m = re.search(r"Migration status: (\w+)", out)
        if m and m.group(1) in ("completed", "failed", "cancelled"):
            if m.group(1) != "completed":
                raise RuntimeError("QEMU migration %s:\n%s" % (m.group(1), out))
            total = int(re.search(r"total time: (\d+) ms", out).group(1))
            down = int(re.search(r"downtime: (\d+) ms", out).group(1))
            return total, down
        time.sleep(0.1)
    raise RuntimeError("QEMU migration did not finish")


def live_run(vmm, mem, logs, i, tmp):
    """vmm: tessera, tessera-tls or qemu. Returns (total ms, downtime ms)."""
    port = free_port()
    sock = os.path.join(tmp, "%s-live.sock" % vmm)
    tls = vmm == "tessera-tls"
    if tls:
        certs, cas = make_certs(os.path.join(tmp, "certs"))
    uri = "%s:127.0.0.1:%d" % ("tls" if tls else "tcp", port)
    if vmm.startswith("tessera"):
        dst = VM([TESSERA, "run", "--incoming", uri] +
                 (tls_args(certs, cas, "target") if tls else []),
                 log_path="%s/live-%s-%d-dst.log" % (logs, vmm, i))
        src = VM(tessera_argv(mem, ["--api-sock", sock]),
                 log_path="%s/live-%s-%d-src.log" % (logs, vmm, i))
    else:
        dst = VM(qemu_argv(mem, ["-incoming", "tcp:127.0.0.1:%d" % port]),
                 log_path="%s/live-%s-%d-dst.log" % (logs, vmm, i))
        src = VM(qemu_argv(mem, ["-monitor", "unix:%s,server=on,wait=off" % sock]),
                 log_path="%s/live-%s-%d-src.log" % (logs, vmm, i))
    try:
        src.expect(READY, 300)
        src.send("tessera-memstress 64 &\n")
        src.expect(rb"MEMSTRESS round 2 ", 300)
        time.sleep(0.5)
        if vmm.startswith("tessera"):
            out = subprocess.run([TESSERA, "vm", "migrate", "--api-sock", sock, uri] +
                                 (tls_args(certs, cas, "source") if tls else []),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=600).stdout.decode()
            m = re.search(r"completed in (\d+) ms, downtime (\d+) ms", out)
            if not m:
                raise RuntimeError("tessera migration failed:\n%s" % out)
            total, down = int(m.group(1)), int(m.group(2))
        else:
            hmp = Hmp(sock)
            hmp.cmd("migrate_set_capability auto-converge on")
            hmp.cmd("migrate_set_parameter max-bandwidth 100G")
            hmp.cmd("migrate_set_parameter downtime-limit 300")
            hmp.cmd("migrate -d tcp:127.0.0.1:%d" % port)
            total, down = qemu_wait_migration(hmp)
        dst.expect(rb"MEMSTRESS round \d+ sum [0-9a-f]+ ok", 300)  # goes on over there
        return total, down
    finally:
        for v in (src, dst):
            v.close()


def snapshot_run(vmm, mem, logs, i, tmp):
    sock = os.path.join(tmp, "%s-snap.sock" % vmm)
    snap = os.path.join(tmp, "%s-%d.snap" % (vmm, i))
    if vmm == "tessera":
        v = VM(tessera_argv(mem, ["--api-sock", sock]),
               log_path="%s/snap-%s-%d.log" % (logs, vmm, i))
    else:
        v = VM(qemu_argv(mem, ["-monitor", "unix:%s,server=on,wait=off" % sock]),
               log_path="%s/snap-%s-%d.log" % (logs, vmm, i))
    try:
        v.expect(READY, 300)
        time.sleep(1.0)
        if vmm == "tessera":
            t0 = time.monotonic()
            out = subprocess.run([TESSERA, "vm", "snapshot", "--api-sock", sock, snap],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=600).stdout.decode()
            total = (time.monotonic() - t0) * 1000
            m = re.search(r"paused (\d+) ms", out)
            if not m:
                raise RuntimeError("tessera snapshot failed:\n%s" % out)
            pause = int(m.group(1))
        else:
            hmp = Hmp(sock)
            hmp.cmd("migrate_set_parameter max-bandwidth 100G")
            hmp.cmd('migrate -d "exec:cat > %s"' % snap)
            total, pause = qemu_wait_migration(hmp)
    finally:
        v.close()
    t0 = time.monotonic()
    if vmm == "tessera":
        r = VM([TESSERA, "run", "--restore", snap], log_path="%s/restore-%s-%d.log" % (logs, vmm, i))
    else:
        r = VM(qemu_argv(mem, ["-incoming", "exec:cat %s" % snap]),
               log_path="%s/restore-%s-%d.log" % (logs, vmm, i))
    try:
        responds(r)
        restore = (time.monotonic() - t0) * 1000
    finally:
        r.close()
    size = os.path.getsize(snap) >> 20
    os.unlink(snap)
    return pause, total, restore, size


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mem", default="256M")
    args = ap.parse_args()
    need_guest()
    logs = "build/bench-logs"
    os.makedirs(logs, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tessera-bench-")
    keys = ("live_total", "live_down", "snap_pause", "snap_total", "restore", "snap_mib")
    res = {vmm: {k: [] for k in keys} for vmm in ("tessera", "tessera-tls", "qemu")}
    print("bench: %d runs each, mem=%s; live migration under tessera-memstress 64, snapshot of "
          "an idle guest" % (args.runs, args.mem), flush=True)
    for i in range(args.runs):
        for vmm in ("tessera", "tessera-tls", "qemu"):
            total, down = live_run(vmm, args.mem, logs, i, tmp)
            if vmm == "tessera-tls":
                res[vmm]["live_total"].append(total)
                res[vmm]["live_down"].append(down)
                print("  run %d/%d %-11s live %5d ms (down %4d)" % (i + 1, args.runs, vmm, total,
                                                                   down), flush=True)
                continue
            pause, stotal, restore, size = snapshot_run(vmm, args.mem, logs, i, tmp)
            for k, val in zip(keys, (total, down, pause, stotal, restore, size)):
                res[vmm][k].append(val)
            print("  run %d/%d %-11s live %5d ms (down %4d)  snapshot %5.0f ms (pause %4d, %d MiB)"
                  "  restore %5.0f ms" % (i + 1, args.runs, vmm, total, down, stotal, pause, size,
                                          restore), flush=True)
    print()
    print("%-34s %10s %10s %10s" % ("metric (median)", "tessera", "qemu", "ratio"))
    for k, label in (("live_total", "live migration total (ms)"),
                     ("live_down", "live migration downtime (ms)"),
                     ("snap_total", "snapshot save total (ms)"),
                     ("snap_pause", "snapshot save pause (ms)"),
                     ("restore", "restore to console answer (ms)"),
                     ("snap_mib", "snapshot file (MiB)")):
        t = statistics.median(res["tessera"][k])
        q = statistics.median(res["qemu"][k])
        # A median of 0 (under the 1 ms resolution) has no meaningful ratio.
        ratio = "%.2fx" % (t / q) if q else "-"
        print("%-34s %10.0f %10.0f %10s" % (label, t, q, ratio))
    print("(ratio = tessera / qemu; below 1 means Tessera is faster or smaller)")
    print()
    print("%-34s %10s %10s %10s" % ("what TLS costs (median)", "tcp", "tls", "ratio"))
    for k, label in (("live_total", "live migration total (ms)"),
                     ("live_down", "live migration downtime (ms)")):
        t = statistics.median(res["tessera"][k])
        s = statistics.median(res["tessera-tls"][k])
        ratio = "%.2fx" % (s / t) if t else "-"
        print("%-34s %10.0f %10.0f %10s" % (label, t, s, ratio))
    print("(ratio = tls / tcp, both Tessera: the price of mutual TLS on the migration wire)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
