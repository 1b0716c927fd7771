"""Snapshot, restore, clone and migration tests with the default guest.

The guest runs tessera-memstress (guest/tools/tessera-memstress.c), which rewrites and checks a
buffer of guest RAM round after round and prints a checksum per round; memstress_sum() below
recomputes that checksum on the host, so a VM that comes back from a snapshot or a migration
with a lost, stale or misplaced page either makes the guest print CORRUPT or prints a wrong
sum. Disks are checked from the guest (files written before and after a snapshot) and with
qemu-img on the host.

    python3 tests/guest/test_migrate.py [NAME ...]

NAME is a test name or a prefix of some ("failures" runs every failures_* test). Hidden tests
(memstress_sums, which needs none of the snapshot or migration features) run only when named.
Each test prints PASS/FAIL; the last line is "migrate: N passed, N failed". VM console logs and
the output of every host command go to build/test-logs/migrate_*. Images and snapshots live in
a temporary directory removed at the end.
"""

import hashlib
import calendar
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from api import call  # noqa: E402
from testkit import free_port, run_tests  # noqa: E402
from tlscerts import make_certs, tls_args  # noqa: E402
from vmdrive import VM, VMError, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
# A migration or snapshot of 256 MiB on a loaded two-core host can take tens of seconds.
MIGRATE_TIMEOUT = float(os.environ.get("MIGRATE_TIMEOUT", "600"))
# Waiting for memstress rounds: one round of 64 MiB takes about a second in the guest, many
# more while a migration competes for the host's cores.
ROUND_TIMEOUT = float(os.environ.get("MEMSTRESS_ROUND_TIMEOUT", "180"))
READY = rb"TESSERA-GUEST-READY"
MEM, MEM_BYTES = "256M", 256 << 20
STRESS_MIB = 64

tmp = tempfile.mkdtemp(prefix="tessera-migtest-")


class CommandError(AssertionError):
    pass


def log_path(name):
    return "%s/migrate_%s.log" % (LOGS, name)


def path(name):
    return os.path.join(tmp, name)


def boot(name, *args):
    v = VM([TESSERA, "run", *args], log_path=log_path(name))
    v.expect(READY, BOOT)
    return v


def restore(name, snap, *args):
    """A new VMM process that continues the guest saved in `snap`. The guest does not boot
    again, so there is no READY line to wait for: the caller talks to the console."""
    return VM([TESSERA, "run", "--restore", snap, *args], log_path=log_path(name))


def qemu_img(*args):
    return subprocess.run(["qemu-img", *args], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT).stdout.decode()


def img_check(p, leaks_ok=True):
    r = subprocess.run(["qemu-img", "check", p], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # 0: clean; 3: leaked clusters only (possible after a kill -9)
    ok = (0, 3) if leaks_ok else (0,)
    assert r.returncode in ok, "qemu-img check %s: exit %d\n%s" % (p, r.returncode,
                                                                   r.stdout.decode())


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def listening(port):
    """Whether something listens on TCP `port`. Read from /proc rather than probed with a
    connection: a migration target takes the first connection as its stream."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


# ---- tessera-memstress ---------------------------------------------------------------------

M64 = (1 << 64) - 1
RX_ROUND = re.compile(rb"MEMSTRESS round (\d+) sum ([0-9a-f]{16}) ok")
RX_CORRUPT = re.compile(rb"MEMSTRESS CORRUPT[^\r\n]*")


def _mix(x):
    """SplitMix64's output function, as mix() in tessera-memstress.c."""
    z = (x + 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def memstress_sum(r, mib):
    """The sum tessera-memstress prints for round r of a buffer of `mib` MiB. Word i holds
    a + i*d (mod 2^64); the guest prints A ^ rotl(B, 29) with A = sum of the words and
    B = sum of i * word, which have closed forms here. Keep in step with the C file."""
    n = mib << 17
    a, d = _mix(r), _mix(r ^ 0x5bd1e9955bd1e995) | 1
    s1 = n * (n - 1) // 2
    s2 = (n - 1) * n * (2 * n - 1) // 6
    sum_w = (n * a + d * s1) & M64
    sum_iw = (a * s1 + d * s2) & M64
    return sum_w ^ (((sum_iw << 29) | (sum_iw >> 35)) & M64)


def rounds_in(v):
    """[(round, sum)] of the complete round lines in v's console output since the last
    start_memstress() (all of it in a VM that did not start memstress: a migration target or
    a restored VM)."""
    start = getattr(v, "stress_from", 0)
    return [(int(m.group(1)), int(m.group(2), 16)) for m in RX_ROUND.finditer(v.buf, start)]


def no_corrupt(v, what):
    m = RX_CORRUPT.search(v.buf)
    assert not m, "%s: %s" % (what, m.group().decode(errors="replace"))


def check_rounds(rounds, mib, what):
    """Every sum is right and the rounds follow each other without a gap or a repeat."""
    for r, s in rounds:
        want = memstress_sum(r, mib)
        assert s == want, "%s: round %d printed sum %016x, want %016x" % (what, r, s, want)
    for (a, _), (b, _) in zip(rounds, rounds[1:]):
        assert b == a + 1, "%s: round %d followed by round %d" % (what, a, b)


def pump(v, seconds):
    """Reads v's console for up to `seconds` (vmdrive's reader, which also writes the log)."""
    v._read(time.monotonic() + seconds)


def wait_until(v, cond, timeout, what):
    """Reads v's console until cond() is true (returns its value); fails at once on a CORRUPT
    line, on a VM that exits, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        no_corrupt(v, what)
        if v.proc.poll() is not None:
            v.wait(1)  # drains the rest of the output
            r = cond()
            if r:
                return r
            no_corrupt(v, what)
            raise VMError("%s: VM exited (status %s) while waiting" % (what, v.proc.returncode))
        if time.monotonic() >= deadline:
            raise VMError("%s: timed out after %ss" % (what, timeout))
        pump(v, deadline - time.monotonic())


def wait_rounds(v, count, after=0, timeout=ROUND_TIMEOUT, what="memstress"):
    """Waits until at least `count` rounds numbered above `after` are printed; returns them."""
    def enough():
        rs = [x for x in rounds_in(v) if x[0] > after]
        return rs if len(rs) >= count else None
    return wait_until(v, enough, timeout, "%s: %d rounds after round %d" % (what, count, after))


def max_round(v):
    rs = rounds_in(v)
    return rs[-1][0] if rs else 0


def start_memstress(v, mib=STRESS_MIB, what="memstress"):
    """Starts tessera-memstress in the background (printing to the console) and waits for two
    rounds; returns them."""
    v.stress_from = len(v.buf)
    v.send("tessera-memstress %d &\n" % mib)
    wait_until(v, lambda: b"MEMSTRESS start MiB %d" % mib in v.buf, 60, what + ": start")
    rs = wait_rounds(v, 2, what=what)
    check_rounds(rs, mib, what)
    return rs


# ---- host commands ---------------------------------------------------------------------------

class HostCommand:
    """A host command (tessera vm ...) run in the background; its output (stdout and stderr
    together) is collected line by line and written to build/test-logs/migrate_NAME.log."""

    def __init__(self, argv, name):
        self.argv = argv
        self.lines = []
        self.log = open(log_path(name), "w")
        self.log.write("$ %s\n" % " ".join(argv))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.lines.append(line)
            self.log.write(line + "\n")
            self.log.flush()

    def output(self):
        return "\n".join(self.lines)

    def finish(self, timeout, vms=()):
        """Waits for the command, reading the consoles of `vms` meanwhile so that no VM ever
        blocks on a full console pipe; returns the exit status (negative: killed by that
        signal). Kills it and fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.reader.join(5)
                raise CommandError("%s: still running after %ss; output:\n%s" % (
                    " ".join(self.argv[:3]), timeout, self.output()[-2000:]))
            live = [v for v in vms if v.proc.poll() is None]
            for v in live:
                pump(v, 0.1 / len(live))
            if not live:
                time.sleep(0.1)
        self.reader.join(10)
        self.log.write("exit status %d\n" % self.proc.returncode)
        self.log.close()
        return self.proc.returncode


def snapshot(sock, snap, name, vms=()):
    """`tessera vm snapshot`; checks its report line and returns the pause it reports (ms)."""
    cmd = HostCommand([TESSERA, "vm", "snapshot", "--api-sock", sock, snap], name + "_snapshot")
    rc = cmd.finish(MIGRATE_TIMEOUT, vms)
    out = cmd.output()
    assert rc == 0, "tessera vm snapshot: exit status %d:\n%s" % (rc, out[-2000:])
    m = re.search(r"snapshot (.+?): .*paused (\d+) ms", out)
    assert m, "tessera vm snapshot printed no 'snapshot FILE: ... paused N ms' line:\n%s" % out
    assert snap in m.group(1), "the snapshot line names %r, not %r" % (m.group(1), snap)
    assert os.path.getsize(snap) > 0, "%s is empty" % snap
    return int(m.group(2))


RX_DONE = re.compile(r"migration: completed in (\d+) ms, downtime (\d+) ms, "
                     r"(\d+(?:\.\d+)?) MiB sent, (\d+) rounds")


def start_migrate(sock, port, mode, name, *extra, scheme="tcp"):
    return HostCommand([TESSERA, "vm", "migrate", "--api-sock", sock,
                        "%s:127.0.0.1:%d" % (scheme, port), "--mode", mode, *extra],
                       name + "_migrate")


def start_target(name, port, *extra, scheme="tcp"):
    """A `tessera run --incoming` process, once it listens on `port`."""
    t = VM([TESSERA, "run", "--incoming", "%s:127.0.0.1:%d" % (scheme, port), *extra],
           log_path=log_path(name))
    wait_until(t, lambda: listening(port), 60, "%s: listening on %d" % (name, port))
    return t


def migrate_and_check(src, sock, mode, name, *extra, target_args=(), scheme="tcp",
                      before_migrate=None):
    """Migrates the VM `src` (running memstress of STRESS_MIB) to a new --incoming process and
    checks everything the tests expect of a successful migration. Returns the target VM,
    still running memstress, and (total ms, downtime ms, MiB sent, rounds). `scheme` is tcp
    or tls (then target_args and extra carry the --tls-* files); before_migrate(port, dst), if
    given, runs once the target listens."""
    port = free_port()
    tsock = path(name + "_target.sock")
    dst = start_target(name + "_target", port, "--api-sock", tsock, *target_args, scheme=scheme)
    try:
        if before_migrate:
            before_migrate(port, dst)
        before = max_round(src)
        cmd = start_migrate(sock, port, mode, name, *extra, scheme=scheme)
        rc = cmd.finish(MIGRATE_TIMEOUT, (src, dst))
        out = cmd.output()
        assert rc == 0, "tessera vm migrate: exit status %d:\n%s" % (rc, out[-2000:])
        m = RX_DONE.search(out)
        assert m, "no final 'migration: completed in T ms, downtime D ms, S MiB sent, " \
                  "R rounds' line:\n%s" % out[-2000:]
        total, downtime, sent, rounds = (int(m.group(1)), int(m.group(2)), float(m.group(3)),
                                         int(m.group(4)))
        assert rounds >= 1, "migration reports %d rounds" % rounds
        assert 0 <= downtime <= total, "downtime %d ms, total %d ms" % (downtime, total)
        # The memstress buffer alone holds STRESS_MIB MiB that are not zero.
        assert sent >= STRESS_MIB, "only %.1f MiB sent; the guest dirtied %d MiB" % (
            sent, STRESS_MIB)
        src_rc = src.wait(60)
        assert src_rc == 0, "the source VMM exited with status %d after the migration" % src_rc
        no_corrupt(src, name + " source")
        src_rounds = rounds_in(src)
        check_rounds(src_rounds, STRESS_MIB, name + " source")
        last = src_rounds[-1][0]
        during = last - before

        got = wait_rounds(dst, 2, after=last, what=name + " target")
        tgt = rounds_in(dst)
        check_rounds(tgt, STRESS_MIB, name + " target")
        # The first line on the target may be the end of one the source began: that round's
        # line is complete on neither side, hence + 2.
        assert last < tgt[0][0] <= last + 2, (
            "%s: the source printed up to round %d, the target went on with round %d" % (
                name, last, tgt[0][0]))
        out = dst.run("echo alive-$((6 * 7))", timeout=120)
        assert "alive-42" in out, "the target's console does not answer: %r" % out
        assert not re.search(READY, dst.buf), "the target booted the guest again"
        st, d = call(tsock, "GET", "/v1/vm")
        assert st == 200 and d["state"] == "running", "target API: %d %r" % (st, d)
        assert d["config"]["memory"] == "%dM" % (MEM_BYTES >> 20), "target config: %r" % d["config"]
        print("  %s: completed in %d ms, downtime %d ms, %.1f MiB sent, %d rounds; memstress "
              "rounds %d..%d on the source (%d during the migration), %d..%d on the target" % (
                  name, total, downtime, sent, rounds, src_rounds[0][0], last, during,
                  tgt[0][0], got[-1][0]), flush=True)
        return dst, (total, downtime, sent, rounds)
    except BaseException:
        dst.close()
        raise


# ---- tests ---------------------------------------------------------------------------------

def test_memstress_sums():
    """(hidden) memstress's sums equal memstress_sum() for several sizes and rounds, and a
    background memstress keeps verified rounds going while the console is used. Needs no
    snapshot or migration feature: it checks the tool and these helpers."""
    v = boot("memstress_sums")
    try:
        for mib in (1, 16):
            out = v.run("tessera-memstress %d --rounds 3; echo status=$?" % mib, timeout=120)
            got = [(int(r), int(s, 16)) for r, s in
                   re.findall(r"MEMSTRESS round (\d+) sum ([0-9a-f]{16}) ok", out)]
            assert [r for r, _ in got] == [1, 2, 3] and "status=0" in out, out
            check_rounds(got, mib, "%d MiB" % mib)
        first = start_memstress(v)
        out = v.run("echo alive-$((6 * 7))")
        assert "alive-42" in out, out
        more = wait_rounds(v, 2, after=first[-1][0])
        rs = rounds_in(v)
        check_rounds(rs, STRESS_MIB, "background")
        no_corrupt(v, "background")
        assert rs[0][0] == 1 and more[-1][0] >= 4, rs
        print("  memstress_sums: %d background rounds verified" % len(rs))
        poweroff(v)
    finally:
        v.close()


def live_or_suspend(mode, name, *extra):
    sock = path(name + ".sock")
    src = boot(name + "_source", "--mem", MEM, "--api-sock", sock)
    try:
        start_memstress(src, what=name + " source")
        dst, (total, downtime, _, _) = migrate_and_check(src, sock, mode, name, *extra)
        try:
            if mode == "suspend":
                # The guest is stopped for the whole transfer.
                assert downtime >= total / 2, "suspend: downtime %d ms of %d ms in all" % (
                    downtime, total)
            poweroff(dst)
        finally:
            dst.close()
    finally:
        src.close()


def test_live_migrate():
    """Live migration of a VM whose guest keeps rewriting 64 MiB: the source exits 0, the
    guest goes on on the target with every page intact and its console working."""
    live_or_suspend("live", "live_migrate", "--downtime-ms", "1000")


def test_suspend_migrate():
    """The same with --mode suspend (the VM is paused for the whole transfer)."""
    live_or_suspend("suspend", "suspend_migrate")


def reported_mib(sock):
    st, d = call(sock, "GET", "/v1/vm/stats")
    assert st == 200, "GET /v1/vm/stats: HTTP %d" % st
    return d["memory"]["balloon"]["reported_bytes"] >> 20, d["memory"]["rss_bytes"] >> 20


def test_reporting_migrate():
    """Live migration while the guest frees memory all the time, so free page reports are in
    flight: memstress's pages all arrive intact, and on the target free page reporting goes
    on (the negotiated feature and the reporting queue came across): 96 MiB freed there come
    back to the host within 15 s."""
    name = "reporting_migrate"
    sock = path(name + ".sock")
    src = boot(name + "_source", "--mem", MEM, "--device", "balloon", "--api-sock", sock)
    try:
        start_memstress(src, what=name + " source")
        src.send("(while [ ! -e /tmp/stop-churn ]; do dd if=/dev/zero of=/tmp/churn bs=1M "
                 "count=32 2>/dev/null; rm /tmp/churn; sleep 1; done) &\n")
        pump(src, 5)
        before, _ = reported_mib(sock)
        dst, _ = migrate_and_check(src, sock, "live", name, "--downtime-ms", "1000")
        try:
            tsock = path(name + "_target.sock")
            dst.run("touch /tmp/stop-churn; sleep 2; dd if=/dev/zero of=/tmp/fill bs=1M count=96 "
                    "2>/dev/null", timeout=120)
            rep0, full = reported_mib(tsock)
            dst.run("rm /tmp/fill")
            t0 = time.monotonic()
            while True:
                rep, rss = reported_mib(tsock)
                if rep - rep0 >= 64:
                    break
                assert time.monotonic() - t0 < 15, (
                    "target: 15 s after freeing 96 MiB, reported %d -> %d MiB, RSS %d -> %d "
                    "MiB" % (rep0, rep, full, rss))
                pump(dst, 0.5)
            no_corrupt(dst, name + " target")
            print("  %s: source reported %d MiB before the migration; target reported +%d MiB "
                  "(RSS %d -> %d MiB) within %.1f s" % (name, before, rep - rep0, full, rss,
                                                       time.monotonic() - t0))
            poweroff(dst)
        finally:
            dst.close()
    finally:
        src.close()


# The guest's disk writer for block migration: file N holds `seq N N+4000`, each synced,
# until /tmp/stop-writer exists; then it prints how many it wrote.
DISK_WRITER = ("(i=0; while [ ! -e /tmp/stop-writer ]; do seq $i $((i + 4000)) > /mnt/w$i; "
               "sync; i=$((i + 1)); done; echo WRITER-DONE $i) & echo $! > /tmp/writer.pid")
DISK_VERIFY = ("echo 3 > /proc/sys/vm/drop_caches; n=0; for f in /mnt/w*; do k=${f#/mnt/w}; "
               "seq $k $((k + 4000)) | cmp -s - $f || echo BAD-FILE $f; n=$((n + 1)); done; "
               "echo VERIFIED $n; dd if=/dev/vdb bs=1M count=8 2>/dev/null | sha256sum")


def test_block_migrate():
    """Live migration without shared storage (--copy-disks): a qcow2 disk that the guest keeps
    writing during the migration and a raw disk with random data arrive as new images in the
    target's --disk-dir; after dropping its caches the guest on the target reads back every
    file it wrote, before and during the migration, and the raw disk's bytes; the copies are
    clean standalone images and the source's images are untouched."""
    img, raw, sock = path("bm.qcow2"), path("bm.raw"), path("bm.sock")
    ddir = path("bm-target")
    os.makedirs(ddir)
    qemu_img("create", "-f", "qcow2", img, "64M")
    qemu_img("create", "-f", "raw", raw, "16M")
    src = boot("block_migrate_source", "--mem", MEM, "--disk", img, "--disk", raw,
               "--api-sock", sock)
    try:
        out = src.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && "
                      "dd if=/dev/urandom of=/dev/vdb bs=1M count=8 2>/dev/null && sync && "
                      "dd if=/dev/vdb bs=1M count=8 2>/dev/null | sha256sum", timeout=120)
        raw_sum = re.search(r"\b([0-9a-f]{64})\b", out).group(1)
        src.send(DISK_WRITER + "\n")
        start_memstress(src, what="block_migrate source")
        dst, (total, downtime, sent, rounds) = migrate_and_check(
            src, sock, "live", "block_migrate", "--copy-disks", target_args=("--disk-dir", ddir))
        try:
            out = dst.run("touch /tmp/stop-writer; while kill -0 $(cat /tmp/writer.pid) "
                          "2>/dev/null; do sleep 0.2; done; " + DISK_VERIFY, timeout=300)
            done = re.search(r"WRITER-DONE (\d+)", out)
            verified = re.search(r"VERIFIED (\d+)", out)
            assert done and verified, "the writer or the check did not finish: %r" % out
            assert "BAD-FILE" not in out, "files differ after the migration: %r" % out
            assert int(verified.group(1)) == int(done.group(1)) >= 1, out
            assert raw_sum in out, "the raw disk's data changed: %r (want %s)" % (out, raw_sum)
            poweroff(dst)
        finally:
            dst.close()
    finally:
        src.close()
    copies = sorted(os.listdir(ddir))
    assert copies == ["bm.qcow2", "bm.raw"], "the target's disk folder holds %s" % copies
    info = qemu_img("info", os.path.join(ddir, "bm.qcow2"))
    assert "file format: qcow2" in info and "backing file" not in info, info
    assert "file format: raw" in qemu_img("info", "-f", "raw", os.path.join(ddir, "bm.raw"))
    img_check(os.path.join(ddir, "bm.qcow2"), leaks_ok=False)
    img_check(img)
    print("  block_migrate: %d ms in all, downtime %d ms, %.1f MiB sent, %d rounds; %s files "
          "written and read back" % (total, downtime, sent, rounds, done.group(1)), flush=True)


def test_block_migrate_refused():
    """A block migration whose target would overwrite an existing file is refused by the
    target with a message naming it; the file is left alone and the source runs on."""
    img, sock = path("bmr.qcow2"), path("bmr.sock")
    ddir = path("bmr-target")
    os.makedirs(ddir)
    qemu_img("create", "-f", "qcow2", img, "64M")
    with open(os.path.join(ddir, "bmr.qcow2"), "wb") as f:
        f.write(b"precious")
    v = boot("block_migrate_refused_source", "--disk", img, "--api-sock", sock)
    port = free_port()
    t = start_target("block_migrate_refused_target", port, "--disk-dir", ddir)
    try:
        cmd = start_migrate(sock, port, "live", "block_migrate_refused", "--copy-disks")
        rc = cmd.finish(MIGRATE_TIMEOUT, (v, t))
        out = cmd.output()
        assert rc != 0, "the migration succeeded:\n%s" % out
        assert re.search(r"exists", out), "no reason given:\n%s" % out
        t.wait(30)
        assert t.proc.returncode not in (0, None), "the target did not exit with an error"
        with open(os.path.join(ddir, "bmr.qcow2"), "rb") as f:
            assert f.read() == b"precious", "the target overwrote an existing file"
        assert os.listdir(ddir) == ["bmr.qcow2"], os.listdir(ddir)
        out = v.run("echo alive-$((6 * 7))", timeout=120)
        assert "alive-42" in out, "the source does not answer after the refusal: %r" % out
        poweroff(v)
        print("  block_migrate_refused: %s" % [l for l in cmd.lines if "exists" in l][0],
              flush=True)
    finally:
        t.close()
        v.close()


def test_snapshot_restore():
    """A snapshot of a running VM with a qcow2 disk; the VM goes on and writes more, is killed,
    and a new process restores the snapshot: memstress continues from the rounds of the
    snapshot's time, the disk is back at its state of then (a file written before is there,
    one written after is not)."""
    img = path("snap.qcow2")
    snap = path("snap.tvs")
    sock = path("snap.sock")
    qemu_img("create", "-f", "qcow2", img, "64M")
    tag = "marker-%08x" % random.getrandbits(32)
    v = boot("snapshot_restore_source", "--mem", MEM, "--disk", img, "--api-sock", sock)
    try:
        v.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && "
              "echo %s > /mnt/marker && sync" % tag, timeout=120)
        start_memstress(v, what="source")
        k0 = max_round(v)
        paused = snapshot(sock, snap, "snapshot_restore", (v,))
        k1 = max_round(v)
        wait_rounds(v, 2, after=k1, what="source after the snapshot")
        v.run("echo after > /mnt/after && sync", timeout=120)
        v.kill()
        v.wait(5)  # reads what is left in the console pipe
        no_corrupt(v, "source")
        ksrc = max_round(v)
        check_rounds(rounds_in(v), STRESS_MIB, "source")
    finally:
        v.close()

    r = restore("snapshot_restore_restored", snap)
    try:
        got = wait_rounds(r, 2, what="restored")
        rs = rounds_in(r)
        check_rounds(rs, STRESS_MIB, "restored")
        assert k0 < rs[0][0] <= ksrc + 1, (
            "rounds before the snapshot: up to %d, before the kill: %d; the restored guest "
            "went on with round %d" % (k0, ksrc, rs[0][0]))
        out = r.run("echo 3 > /proc/sys/vm/drop_caches; cat /mnt/marker; ls /mnt", timeout=120)
        assert tag in out, "the file written before the snapshot is gone: %r" % out
        assert "after" not in out.split(), "the disk was not reverted to the snapshot: %r" % out
        assert not re.search(READY, r.buf), "the restored guest booted again"
        print("  snapshot_restore: paused %d ms; rounds %d at the snapshot request, %d after "
              "it, %d at the kill; restored went on with %d..%d" % (
                  paused, k0, k1, ksrc, rs[0][0], got[-1][0]), flush=True)
        poweroff(r)
    finally:
        r.close()
    img_check(img)


def test_revert():
    """Snapshots A and B of one VM with different contents in /tmp (RAM); each restore brings
    back its own, and a snapshot restores again after another was restored."""
    sock = path("revert.sock")
    snaps = {k: path("revert-%s.tvs" % k) for k in "AB"}
    vals = {k: "state-%s-%08x" % (k, random.getrandbits(32)) for k in "AB"}
    v = boot("revert_source", "--api-sock", sock)
    try:
        for k in "AB":
            v.run("echo %s > /tmp/state" % vals[k])
            snapshot(sock, snaps[k], "revert_" + k, (v,))
    finally:
        v.close()
    for i, k in enumerate("ABA"):
        r = restore("revert_restore_%d%s" % (i, k), snaps[k])
        try:
            out = r.run("cat /tmp/state", timeout=120).split()
            other = vals["B" if k == "A" else "A"]
            assert vals[k] in out and other not in out, "restore %s: /tmp/state is %r, want %r" % (
                k, out, vals[k])
            if i < 2:
                r.kill()
            else:
                poweroff(r)
        finally:
            r.close()


RX_HWCLOCK = re.compile(r"(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})")


def test_rtc_snapshot():
    """The time a guest sets in its RTC survives a snapshot: the guest sets its clock and the
    RTC to 2001, and after a restore in a new process the RTC still reads 2001 (plus the
    seconds that passed): the snapshot keeps the guest's offset from the host's clock."""
    sock = path("rtc.sock")
    snap = path("rtc.tvs")
    set_at = calendar.timegm((2001, 2, 3, 4, 5, 6))
    v = boot("rtc_source", "--api-sock", sock)
    try:
        out = v.run("date -u -s '2001-02-03 04:05:06' >/dev/null && hwclock -w -u && "
                    "hwclock -r -u")
        assert "2001" in out, "the guest could not set its RTC to 2001: %r" % out
        snapshot(sock, snap, "rtc", (v,))
    finally:
        v.close()
    r = restore("rtc_restored", snap)
    try:
        out = r.run("hwclock -r -u", timeout=120)
        m = RX_HWCLOCK.search(out)
        assert m, "hwclock -r printed no date: %r" % out
        got = calendar.timegm(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
        # Generous: the snapshot and the restore of a small guest take seconds.
        assert 0 <= got - set_at < 600, "the restored RTC reads %s, %d s after the time set" % (
            m.group(1), got - set_at)
        poweroff(r)
    finally:
        r.close()


def test_linked_clones():
    """Two linked clones of one snapshot run side by side: each has its own MAC, unlike the
    original's, and its own disk (qcow2 overlays in its --clone directory, backed by the
    snapshot's disk state); the files the snapshot references do not change."""
    d = path("lc")
    os.makedirs(d)
    img, snap, sock = os.path.join(d, "disk.qcow2"), os.path.join(d, "vm.tvs"), path("lc.sock")
    qemu_img("create", "-f", "qcow2", img, "64M")
    # The agent channel lets the clones' VMM hand their guests the new MAC.
    v = boot("linked_clones_original", "--disk", img, "--net", "user", "--api-sock", sock,
             "--agent-sock", path("lc-agent.sock"))
    try:
        v.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && "
              "echo from-original > /mnt/base && sync", timeout=120)
        macs = [read_mac(v, "original")]
        snapshot(sock, snap, "linked_clones", (v,))
        # Written after the snapshot: a clone must not see it.
        v.run("echo after > /mnt/after && sync", timeout=120)
        poweroff(v)
    finally:
        v.close()
    before = {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))}

    dirs = [path("clone1"), path("clone2")]
    clones = []
    try:
        for i, cd in enumerate(dirs, 1):
            os.makedirs(cd)
            clones.append(restore("linked_clones_clone%d" % i, snap, "--clone", cd))
        for i, c in enumerate(clones, 1):
            macs.append(read_mac(c, "clone %d" % i))
        assert len(set(macs)) == 3, "MACs of original, clone 1, clone 2: %s" % macs
        ls = "echo 3 > /proc/sys/vm/drop_caches; cat /mnt/base; ls /mnt | cat"
        for i, c in enumerate(clones, 1):
            out = c.run(ls, timeout=120).split()
            assert "from-original" in out, "clone %d: %r" % (i, out)
            assert "after" not in out, "clone %d sees a file written after the snapshot" % i
            assert not [f for f in out if f.startswith("own")], "clone %d: %r" % (i, out)
            c.run("echo clone-%d > /mnt/own%d && sync" % (i, i), timeout=120)
        for i, c in enumerate(clones, 1):
            out = c.run(ls + "; cat /mnt/own%d" % i, timeout=120).split()
            assert "own%d" % i in out and "clone-%d" % i in out, "clone %d: %r" % (i, out)
            assert "own%d" % (3 - i) not in out, "clone %d sees clone %d's file" % (i, 3 - i)
        for c in clones:
            poweroff(c)
    finally:
        for c in clones:
            c.close()
    for i, cd in enumerate(dirs, 1):
        overlays = qcow2_files(cd)
        assert overlays, "clone %d: no qcow2 image in %s: %s" % (i, cd, os.listdir(cd))
        for ov in overlays:
            assert "backing file:" in qemu_img("info", ov), "%s is not an overlay" % ov
            img_check(ov)
    # Restore records each clone's overlay beside the snapshot (for snapshot-delete); nothing
    # else there changes.
    with open(snap + ".deps") as f:
        deps = f.read().split("\n")
    for cd in dirs:
        assert os.path.join(cd, "disk.qcow2") in deps, "%s.deps lacks %s: %r" % (snap, cd, deps)
    after = {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))
             if f != "vm.tvs.deps"}
    before.pop("vm.tvs.deps", None)
    assert after == before, "the snapshot's files changed: %s" % sorted(
        f for f in set(before) | set(after) if before.get(f) != after.get(f))
    for f in qcow2_files(d):
        img_check(f, leaks_ok=False)
    print("  linked_clones: MACs %s" % ", ".join(macs), flush=True)


def test_full_clone():
    """--clone DIR --full: the clone's disk is a standalone copy (no backing file) holding the
    snapshot's data."""
    img, snap, sock = path("fc.qcow2"), path("fc.tvs"), path("fc.sock")
    qemu_img("create", "-f", "qcow2", img, "64M")
    v = boot("full_clone_original", "--disk", img, "--api-sock", sock)
    try:
        v.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && "
              "echo from-original > /mnt/base && sync", timeout=120)
        snapshot(sock, snap, "full_clone", (v,))
        poweroff(v)
    finally:
        v.close()
    cd = path("fullclone")
    os.makedirs(cd)
    c = restore("full_clone_clone", snap, "--clone", cd, "--full")
    try:
        out = c.run("echo 3 > /proc/sys/vm/drop_caches; cat /mnt/base", timeout=120)
        assert "from-original" in out, out
        poweroff(c)
    finally:
        c.close()
    images = qcow2_files(cd)
    assert images, "no qcow2 image in %s: %s" % (cd, os.listdir(cd))
    for f in images:
        assert "backing file:" not in qemu_img("info", f), "%s has a backing file" % f
        img_check(f)


def test_snapshot_describe_latency():
    """While a snapshot of a 1 GiB guest that writes memory (memstress) is written, the API
    keeps answering: `describe` within 50 ms at the 99th percentile over 100 calls made while
    GET /v1/vm/snapshot says the snapshot is active. PUT /v1/vm/snapshot answers 202 at once;
    the snapshot completes, the guest's memstress rounds stay right."""
    img = path("latency.qcow2")
    sock = path("latency.sock")
    qemu_img("create", "-q", "-f", "qcow2", img, "64M")
    v = boot("snapshot_describe_latency", "--mem", "1G", "--disk", img, "--api-sock", sock)
    samples, snaps = [], []
    try:
        start_memstress(v, 256, what="latency source")
        while len(samples) < 100 and len(snaps) < 6:
            snap = path("latency-%d.tsr" % len(snaps))
            t0 = time.monotonic()
            st, doc = call(sock, "PUT", "/v1/vm/snapshot", {"file": snap})
            put_ms = (time.monotonic() - t0) * 1000
            assert st == 202 and doc["status"] in ("active", "completed"), (st, doc)
            assert put_ms < 1000, "PUT /v1/vm/snapshot took %.0f ms: it must not wait" % put_ms
            snaps.append(snap)
            while len(samples) < 100:
                st, job = call(sock, "GET", "/v1/vm/snapshot")
                assert st == 200, (st, job)
                if job["status"] != "active":
                    break
                t0 = time.monotonic()
                st, d = call(sock, "GET", "/v1/vm")
                samples.append((time.monotonic() - t0) * 1000)
                assert st == 200 and d["state"] in ("running", "paused"), (st, d)
                pump(v, 0.005)
            deadline = time.monotonic() + MIGRATE_TIMEOUT
            while job["status"] == "active" and time.monotonic() < deadline:
                pump(v, 0.1)
                st, job = call(sock, "GET", "/v1/vm/snapshot")
            assert job["status"] == "completed", job
            assert job["result"]["disks"] == 1 and os.path.getsize(snap) > 0, job
        assert len(samples) >= 100, "only %d describe calls while %d snapshots ran" % (
            len(samples), len(snaps))
        samples.sort()
        p99 = samples[98]
        print("  snapshot_describe_latency: %d snapshots; describe p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms over %d calls" % (len(snaps), samples[49], p99, samples[-1],
                                             len(samples)))
        assert p99 < 50, "describe p99 %.1f ms while a snapshot is written (max 50)" % p99
        k = max_round(v)
        wait_rounds(v, 2, after=k, what="source after the snapshots")
        no_corrupt(v, "source")
        poweroff(v)
    finally:
        v.close()


def tessera_vm(args, name, vms=()):
    """`tessera vm ARGS` run to its end while the consoles of `vms` are read: (status, output)."""
    cmd = HostCommand([TESSERA, "vm", *args], name)
    rc = cmd.finish(MIGRATE_TIMEOUT, vms)
    return rc, cmd.output()


def snapshot_files(sock):
    """[(file, parent)] of GET /v1/vm/snapshots, checking each entry's fields."""
    st, doc = call(sock, "GET", "/v1/vm/snapshots")
    assert st == 200, "GET /v1/vm/snapshots: %d %r" % (st, doc)
    for e in doc["snapshots"]:
        assert e["bytes"] == os.path.getsize(e["file"]), "size of %s: %r" % (e["file"], e)
        assert abs(e["taken"] - time.time()) < 3600, "taken: %r" % e
        assert e["disks"] == [0], "disks: %r" % e
    return [(e["file"], e["parent"]) for e in doc["snapshots"]]


def test_snapshot_list_delete():
    """Snapshots s1 and s2 of a VM with a qcow2 disk, with files A, B and C written before,
    between and after them: `tessera vm snapshots` lists s1 then s2 with their parents.
    Deleting s1 merges it into s2's image, deleting s2 merges the VM's active overlay into its
    image (the guest pausing for the copy): the guest reads A, B and C after each, writes on,
    and the snapshots' files are gone; qemu-img finds the chain shorter and the images clean.
    A linked clone of a third snapshot makes its delete refuse with an error naming the
    clone's disk, until that disk is gone. The disk is the user's overlay naming its template
    relative to its folder, and s1 is kept in another folder: the template stays found."""
    d, sd = path("sld"), path("sld-snaps")
    os.makedirs(d)
    os.makedirs(sd)
    img, sock = os.path.join(d, "disk.qcow2"), path("sld.sock")
    base = os.path.join(d, "base.qcow2")
    s1, s2, s3 = [os.path.join(sd, "s1.tvs")] + [os.path.join(d, "s%d.tvs" % i) for i in (2, 3)]
    marks = {k: "%s-%08x" % (k, random.getrandbits(32)) for k in "ABCD"}
    qemu_img("create", "-f", "qcow2", base, "64M")
    qemu_img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", img)
    cd = path("sld-clone")
    os.makedirs(cd)
    clone_disk = os.path.join(cd, "disk.qcow2")
    pauses = []

    def reads(vm, keys, what):
        out = vm.run("echo 3 > /proc/sys/vm/drop_caches; cat %s" % " ".join(
            "/mnt/" + k.lower() for k in keys), timeout=120)
        for k in keys:
            assert marks[k] in out, "%s: /mnt/%s does not read %s: %r" % (
                what, k.lower(), marks[k], out)

    def delete(snap, name, vms):
        rc, out = tessera_vm(["snapshot-delete", "--api-sock", sock, snap], name, vms)
        assert rc == 0, "snapshot-delete %s: exit status %d:\n%s" % (snap, rc, out[-2000:])
        m = re.search(r"snapshot-delete (\S+): 1 disk image\(s\) merged .*paused (\d+) ms", out)
        assert m and m.group(1) == snap, "no 'snapshot-delete FILE: ... paused N ms' line: %r" % out
        pauses.append(int(m.group(2)))
        for suffix in ("", ".disk0", ".deps"):
            assert not os.path.exists(snap + suffix), "%s%s is still there" % (snap, suffix)

    v = boot("snapshot_list_delete", "--disk", img, "--api-sock", sock)
    clone = None
    try:
        v.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt && "
              "echo %s > /mnt/a && sync" % marks["A"], timeout=120)
        snapshot(sock, s1, "snapshot_list_delete_s1", (v,))
        v.run("echo %s > /mnt/b && sync" % marks["B"], timeout=120)
        snapshot(sock, s2, "snapshot_list_delete_s2", (v,))
        v.run("echo %s > /mnt/c && sync" % marks["C"], timeout=120)

        got = snapshot_files(sock)
        assert got == [(s1, None), (s2, s1)], "list: %r" % got
        rc, out = tessera_vm(["snapshots", "--api-sock", sock], "snapshot_list_delete_list",
                             (v,))
        assert rc == 0 and "s1.tvs" in out and out.index("s1.tvs") < out.index("s2.tvs"), out
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out), "no local time: %r" % out
        rc, out = tessera_vm(["snapshots", "--json", "--api-sock", sock],
                             "snapshot_list_delete_list_json", (v,))
        assert rc == 0 and [e["file"] for e in json.loads(out)["snapshots"]] == [s1, s2], out

        # The older one: its image takes s2's image's place with both snapshots' data.
        delete(s1, "snapshot_list_delete_delete_s1", (v,))
        got = snapshot_files(sock)
        assert got == [(s2, None)], "list after deleting s1: %r" % got
        reads(v, "ABC", "after deleting s1")
        chain = qemu_img("info", "-U", "--backing-chain", img)
        assert s2 + ".disk0" in chain and s1 not in chain, chain
        img_check(s2 + ".disk0", leaks_ok=False)

        # The newest: the active overlay merges into s2's image, which takes its place.
        delete(s2, "snapshot_list_delete_delete_s2", (v,))
        assert snapshot_files(sock) == [], "list after deleting s2"
        reads(v, "ABC", "after deleting s2")
        v.run("echo %s > /mnt/d && sync" % marks["D"], timeout=120)
        reads(v, "ABCD", "written after deleting s2")
        info = qemu_img("info", "-U", img)
        assert "backing file: %s\n" % base in info, "%s is not backed by %s: %s" % (img, base, info)

        # A linked clone of s3 depends on s3's image: the delete refuses and names it.
        snapshot(sock, s3, "snapshot_list_delete_s3", (v,))
        clone = restore("snapshot_list_delete_clone", s3, "--clone", cd)
        reads(clone, "ABCD", "the clone")
        rc, out = tessera_vm(["snapshot-delete", "--api-sock", sock, s3],
                             "snapshot_list_delete_refused", (v, clone))
        assert rc == 1, "snapshot-delete with a clone: exit status %d:\n%s" % (rc, out)
        line = [l for l in out.splitlines() if "tessera vm:" in l]
        assert line and clone_disk in line[0] and len(line[0]) < 700, out
        assert os.path.exists(s3) and os.path.exists(s3 + ".disk0"), "s3 lost files"
        reads(v, "ABCD", "after the refused delete")
        poweroff(clone)
        clone.close()
        clone = None
        os.unlink(clone_disk)
        delete(s3, "snapshot_list_delete_delete_s3", (v,))
        reads(v, "ABCD", "after deleting s3")
        print("  snapshot_list_delete: paused %s ms; refused with: %s" % (
            ", ".join(map(str, pauses)), line[0].strip()), flush=True)
        poweroff(v)
    finally:
        if clone:
            clone.close()
        v.close()
    img_check(img, leaks_ok=False)


def read_mac(v, what):
    out = v.run("cat /sys/class/net/eth0/address", timeout=120)
    m = re.search(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", out)
    assert m, "%s: no MAC in %r" % (what, out)
    return m.group()


def qcow2_files(d):
    found = []
    for f in sorted(os.listdir(d)):
        p = os.path.join(d, f)
        with open(p, "rb") as fh:
            if fh.read(4) == b"QFI\xfb":
                found.append(p)
    return found


class ThrottledProxy:
    """Forwards the first TCP connection to its port on to 127.0.0.1:`dst_port`, client to
    server at most `rate` bytes/s, and counts those bytes (`forwarded`). When either side
    closes or fails, both connections are reset, so the client sees the failure at once."""

    def __init__(self, dst_port, rate):
        self.dst_port, self.rate = dst_port, rate
        self.forwarded = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            c, _ = self.srv.accept()
            self.socks.append(c)
            s = socket.create_connection(("127.0.0.1", self.dst_port), timeout=10)
            s.settimeout(None)
            self.socks.append(s)
        except OSError:
            self.close()
            return
        threading.Thread(target=self._pipe, args=(s, c, False), daemon=True).start()
        self._pipe(c, s, True)

    def _pipe(self, a, b, throttle):
        t0 = time.monotonic()
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
                if throttle:
                    self.forwarded += len(data)
                    ahead = self.forwarded / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        self.close()

    def close(self):
        with self.lock:
            socks, self.socks = self.socks, []
            for s in socks + [self.srv]:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def test_failures_target_killed():
    """The target dies (kill -9) in the middle of a live migration: migrate fails with an error
    line, the source VM runs on (memstress rounds verified, console, API state), and a second
    migration to a new target then succeeds."""
    name = "failures_target_killed"
    sock = path(name + ".sock")
    src = boot(name + "_source", "--mem", MEM, "--api-sock", sock)
    try:
        start_memstress(src, what="source")
        port = free_port()
        dst = start_target(name + "_target", port)
        # Through a proxy at 32 MiB/s, so the kill surely lands mid-stream: the memstress
        # buffer alone is 64 MiB.
        proxy = ThrottledProxy(port, 32 << 20)
        try:
            cmd = start_migrate(sock, proxy.port, "live", name)
            deadline = time.monotonic() + MIGRATE_TIMEOUT
            while proxy.forwarded < (8 << 20):
                assert cmd.proc.poll() is None, "migrate ended (status %d) before the kill:\n%s" % (
                    cmd.proc.returncode, cmd.output()[-2000:])
                assert time.monotonic() < deadline, "only %d bytes reached the target" % (
                    proxy.forwarded)
                for v in (src, dst):
                    pump(v, 0.05)
            progress = len(cmd.lines)
            dst.kill()
            rc = cmd.finish(120, (src,))
        finally:
            proxy.close()
            dst.close()
        out = cmd.output()
        assert 0 < rc < 128, "migrate to a killed target: exit status %d:\n%s" % (rc, out[-2000:])
        assert re.search(r"(?i)error|fail", out), "migrate failed without an error line:\n" + out
        assert not RX_DONE.search(out), "migrate claims success:\n" + out
        assert src.proc.poll() is None, "the source VMM exited (status %s)" % src.proc.returncode
        st, d = call(sock, "GET", "/v1/vm")
        assert st == 200 and d["state"] == "running", "source API after the failure: %d %r" % (
            st, d)
        last = max_round(src)
        wait_rounds(src, 2, after=last, what="source after the failed migration")
        check_rounds(rounds_in(src), STRESS_MIB, "source")
        assert "alive-42" in src.run("echo alive-$((6 * 7))", timeout=120)
        print("  %s: killed after %.1f MiB and %d progress line(s); migrate said: %s" % (
            name, proxy.forwarded / (1 << 20), progress, cmd.lines[-1] if cmd.lines else ""),
            flush=True)
        dst2, _ = migrate_and_check(src, sock, "live", name + "_retry")
        try:
            poweroff(dst2)
        finally:
            dst2.close()
    finally:
        src.close()


# ---- TLS -------------------------------------------------------------------------------------

def untrusted_client(port, certs, cas, who):
    """Connects to a tls: target as a client with `who`'s certificate (None: none at all) and
    returns what the target sent after the handshake: b"" or an error when it refused."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cas["ca"])
    if who:
        ctx.load_cert_chain(*certs[who])
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        return t.recv(16)
    except (ssl.SSLError, OSError) as e:
        return repr(e).encode()
    finally:
        s.close()


def test_tls_migrate():
    """Live migration over tls: with mutual certificates. First to a target whose certificate
    comes from another CA: the source refuses it in the handshake, the migration fails and the
    VM runs on, and that target reads nothing. Then to a good target, which first refuses
    clients with a rogue certificate or none (and keeps waiting); the migration works, and
    memstress goes on verified on the target."""
    name = "tls_migrate"
    certs, cas = make_certs(path("certs"))
    sock = path(name + ".sock")
    src = boot(name + "_source", "--mem", MEM, "--api-sock", sock)
    try:
        start_memstress(src, what="source")
        port = free_port()
        rogue = start_target(name + "_rogue_target", port, *tls_args(certs, cas, "rogue"),
                             scheme="tls")
        try:
            cmd = start_migrate(sock, port, "live", name + "_rogue",
                                *tls_args(certs, cas, "source"), scheme="tls")
            rc = cmd.finish(120, (src, rogue))
            out = cmd.output()
            assert rc == 1, "migrate to a rogue target: exit status %d:\n%s" % (rc, out[-2000:])
            assert "certificate is not accepted" in out, "no certificate error:\n" + out
            assert not RX_DONE.search(out), "migrate claims success:\n" + out
            pump(rogue, 1)
            assert rogue.proc.poll() is None, "the rogue target exited"
            assert b"refused a connection" in rogue.buf, "the rogue target did not say it " \
                "refused:\n%s" % rogue.buf[-2000:].decode(errors="replace")
            assert b"migration received" not in rogue.buf
        finally:
            rogue.close()
        assert src.proc.poll() is None, "the source VMM exited (status %s)" % src.proc.returncode
        st, d = call(sock, "GET", "/v1/vm")
        assert st == 200 and d["state"] == "running", "source after the refusal: %d %r" % (st, d)
        last = max_round(src)
        wait_rounds(src, 2, after=last, what="source after the refused target")
        print("  %s: a target from another CA is refused: %s" % (name, cmd.lines[-1]), flush=True)

        def intruders(p, dst):
            for who in ("rogue", None):
                got = untrusted_client(p, certs, cas, who)
                assert b"READY" not in got, "a %s client got READY" % (who or "certless")
                pump(dst, 0.5)
                assert dst.proc.poll() is None, "the target exited after an untrusted client"
            assert dst.buf.count(b"refused a connection") >= 2, dst.buf[-2000:]

        dst, _ = migrate_and_check(src, sock, "live", name, *tls_args(certs, cas, "source"),
                                   "--downtime-ms", "1000",
                                   target_args=tls_args(certs, cas, "target"), scheme="tls",
                                   before_migrate=intruders)
        try:
            poweroff(dst)
        finally:
            dst.close()
    finally:
        src.close()


# ---- a target that accepts and never reads ---------------------------------------------------

class StuckTarget:
    """A TCP listener that accepts connections and never reads from them."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        for c in self.conns + [self.srv]:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def source_runs_on(src, sock, what):
    assert src.proc.poll() is None, "%s: the source VMM exited (status %s)" % (
        what, src.proc.returncode)
    st, d = call(sock, "GET", "/v1/vm")
    assert st == 200 and d["state"] == "running", "%s: source API %d %r" % (what, st, d)
    out = src.run("echo alive-$((6 * 7))", timeout=120)
    assert "alive-42" in out, "%s: the source's console does not answer: %r" % (what, out)


def test_failures_stuck_target():
    """A target that accepts the connection and never reads. (1) `migrate-cancel` cuts the
    migration: it fails saying so, the VM runs on, and a second cancel is a 409. (2) With
    --progress-timeout 3 the migration fails by itself, saying there was no progress, and the
    VM runs on. (3) `stop` while such a migration hangs (progress timeout 600 s) ends the
    process within seconds."""
    name = "failures_stuck_target"
    sock = path(name + ".sock")
    src = boot(name + "_source", "--mem", MEM, "--api-sock", sock)
    stuck = StuckTarget()
    try:
        # Incompressible data that cannot fit the socket buffers.
        src.run("dd if=/dev/urandom of=/tmp/fill bs=1M count=48; echo filled", timeout=300)

        def active_and_stuck():
            st, d = call(sock, "GET", "/v1/vm/migrate")
            assert st == 200, (st, d)
            # Stuck inside its first round, yet the bytes the connection took show.
            return d["status"] == "active" and d["total_ms"] >= 2000 and d["bytes"] > 0 and d

        # (1) cancel
        cmd = start_migrate(sock, stuck.port, "live", name + "_cancel", scheme="tcp")
        deadline = time.monotonic() + 120
        while not active_and_stuck():
            assert time.monotonic() < deadline, "the migration never got going"
            assert cmd.proc.poll() is None, "migrate ended early:\n" + cmd.output()
            pump(src, 0.5)
        st, d = call(sock, "DELETE", "/v1/vm/migrate")
        assert st == 204, "DELETE /v1/vm/migrate: %d %r" % (st, d)
        rc = cmd.finish(60, (src,))
        out = cmd.output()
        assert rc == 1 and "cancelled" in out, "migrate after cancel: %d\n%s" % (rc, out)
        source_runs_on(src, sock, "after cancel")
        st, d = call(sock, "DELETE", "/v1/vm/migrate")
        assert st == 409, "a second cancel: %d %r" % (st, d)
        c2 = HostCommand([TESSERA, "vm", "migrate-cancel", "--api-sock", sock],
                         name + "_cancel_again")
        assert c2.finish(30, (src,)) == 1 and "no migration is running" in c2.output(), \
            c2.output()
        print("  %s: cancelled: %s" % (name, cmd.lines[-1]), flush=True)

        # (2) progress timeout
        t0 = time.monotonic()
        cmd = start_migrate(sock, stuck.port, "live", name + "_timeout", "--progress-timeout",
                            "3")
        rc = cmd.finish(120, (src,))
        out = cmd.output()
        assert rc == 1 and "no progress for 3 s" in out, "migrate to a stuck target: %d\n%s" % (
            rc, out)
        source_runs_on(src, sock, "after the progress timeout")
        print("  %s: timed out after %.1fs: %s" % (name, time.monotonic() - t0, cmd.lines[-1]),
              flush=True)

        # (3) stop with a stuck migration
        cmd = start_migrate(sock, stuck.port, "live", name + "_stop", "--progress-timeout",
                            "600")
        deadline = time.monotonic() + 120
        while not active_and_stuck():
            assert time.monotonic() < deadline, "the migration never got going"
            pump(src, 0.5)
        t0 = time.monotonic()
        c3 = HostCommand([TESSERA, "vm", "stop", "--api-sock", sock], name + "_stop_cmd")
        assert c3.finish(30, (src,)) == 0, c3.output()
        try:
            rc = src.wait(30)
        except Exception as e:
            raise AssertionError("stop with a stuck migration: the VMM did not exit: %r" % e)
        print("  %s: stop exited the VMM (status %d) in %.1fs" % (
            name, rc, time.monotonic() - t0), flush=True)
        cmd.finish(30)
    finally:
        stuck.close()
        src.close()


_base_snapshot = {}


def base_snapshot():
    """A snapshot of an idle VM, made once, shown to restore intact before it is damaged."""
    if "path" not in _base_snapshot:
        snap, sock = path("base.tvs"), path("base.sock")
        v = boot("failures_base_source", "--api-sock", sock)
        try:
            v.run("echo base-state > /tmp/state")
            snapshot(sock, snap, "failures_base", (v,))
            poweroff(v)
        finally:
            v.close()
        r = restore("failures_base_restored", snap)
        try:
            assert "base-state" in r.run("cat /tmp/state", timeout=120), "intact restore"
            poweroff(r)
        finally:
            r.close()
        _base_snapshot["path"] = snap
    return _base_snapshot["path"]


def expect_clean_failure(argv, name, words, timeout=30, feed=None):
    """Runs argv, which must fail on its own within a few seconds: exit status 1..127 (no
    crash signal), and one line of its output holding one of `words` (regex, any case).
    `feed`, if given, is called with the process once it runs. Returns that line."""
    log = open(log_path(name), "wb")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        if feed:
            feed(p)
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: still running after %ss" % (" ".join(argv[1:4]), timeout))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()
    elapsed = time.monotonic() - t0
    with open(log_path(name), "rb") as f:
        out = f.read().decode(errors="replace")
    assert rc != 0, "%s: exit status 0\n%s" % (name, out[-2000:])
    assert 0 < rc < 128, "%s: exit status %d (killed by a signal?)\n%s" % (name, rc, out[-2000:])
    lines = [l for l in out.splitlines() if re.search(words, l, re.I)]
    assert lines, "%s: no line matching %r in the output:\n%s" % (name, words, out[-2000:])
    assert len(lines[0]) < 400, "%s: not a one-line error: %r" % (name, lines[0])
    print("  %s: exit %d after %.1fs: %s" % (name, rc, elapsed, lines[0].strip()), flush=True)
    return lines[0]


def test_failures_truncated():
    """A snapshot cut to half its size: restore fails at once, saying so."""
    bad = path("truncated.tvs")
    shutil.copyfile(base_snapshot(), bad)
    os.truncate(bad, os.path.getsize(bad) // 2)
    line = expect_clean_failure([TESSERA, "run", "--restore", bad], "failures_truncated",
                                r"truncat|end of file")
    assert os.path.basename(bad) in line, "the error does not name the file: %r" % line


def test_failures_checksum():
    """A snapshot with one byte flipped, early, in the middle, late or in the end record: restore
    fails at once and says the file is corrupt."""
    size = os.path.getsize(base_snapshot())
    for where in (size // 4, size // 2, size * 3 // 4, size - 2):
        bad = path("flipped-%d.tvs" % where)
        shutil.copyfile(base_snapshot(), bad)
        with open(bad, "r+b") as f:
            f.seek(where)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0xFF]))
        line = expect_clean_failure([TESSERA, "run", "--restore", bad], "failures_checksum",
                                    r"corrupt")
        assert os.path.basename(bad) in line, "the error does not name the file: %r" % line
        os.unlink(bad)


def test_failures_bad_stream():
    """An --incoming target fed bytes that are not a Tessera migration stream exits with an
    error that says so."""
    port = free_port()
    garbage = b"GET / HTTP/1.0\r\n\r\n" + random.Random(5).randbytes(256 << 10)

    def feed(p):
        deadline = time.monotonic() + 60
        while not listening(port):
            if p.poll() is not None:
                return  # exited before listening: expect_clean_failure reports its output
            assert time.monotonic() < deadline, "the target never listened on %d" % port
            time.sleep(0.05)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(garbage)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except OSError:
            pass  # the target may reset the connection as soon as it sees the header
        s.close()

    expect_clean_failure([TESSERA, "run", "--incoming", "tcp:127.0.0.1:%d" % port],
                         "failures_bad_stream", r"not a tessera|magic", timeout=90, feed=feed)


def main():
    os.makedirs(LOGS, exist_ok=True)
    only = sys.argv[1:]
    tests = [  # (name, function, hidden)
        ("memstress_sums", test_memstress_sums, True),
        ("live_migrate", test_live_migrate, False),
        ("suspend_migrate", test_suspend_migrate, False),
        ("reporting_migrate", test_reporting_migrate, False),
        ("block_migrate", test_block_migrate, False),
        ("block_migrate_refused", test_block_migrate_refused, False),
        ("snapshot_restore", test_snapshot_restore, False),
        ("revert", test_revert, False),
        ("rtc_snapshot", test_rtc_snapshot, False),
        ("linked_clones", test_linked_clones, False),
        ("full_clone", test_full_clone, False),
        ("snapshot_list_delete", test_snapshot_list_delete, False),
        ("tls_migrate", test_tls_migrate, False),
        ("snapshot_describe_latency", test_snapshot_describe_latency, False),
        ("failures_target_killed", test_failures_target_killed, False),
        ("failures_stuck_target", test_failures_stuck_target, False),
        ("failures_truncated", test_failures_truncated, False),
        ("failures_checksum", test_failures_checksum, False),
        ("failures_bad_stream", test_failures_bad_stream, False),
    ]
    try:
        return run_tests("migrate", tests, only, LOGS + "/migrate_%s*.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
