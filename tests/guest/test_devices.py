"""Device tests with the default guest: disks (raw, qcow2, overlays, compressed), crash safety,
networks (user, hostfwd, socket pairs), entropy, the guest agent and the serial console.

Each test prints PASS/FAIL; the last line is "devices: N passed, N failed". VM console logs go
to build/test-logs/. Images live in a temporary directory removed at the end.
"""

import hashlib
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from testkit import free_port, proc_status_kb, run_tests  # noqa: E402
from vmdrive import VM, VMError, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
CRASH_ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
READY = rb"TESSERA-GUEST-READY"
BIG = 2 << 20  # bytes test_tap sends through the tap and back

tmp = tempfile.mkdtemp(prefix="tessera-devtest-")


def boot(name, *args, **kw):
    v = VM([TESSERA, "run", *args], log_path="%s/%s.log" % (LOGS, name), **kw)
    v.expect(READY, BOOT)
    return v


def path(name):
    return os.path.join(tmp, name)


def qemu_img(*args):
    return subprocess.run(["qemu-img", *args], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT).stdout.decode()


def img_check(p):
    r = subprocess.run(["qemu-img", "check", p], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # 0: clean; 3: leaked clusters only (allowed after a crash)
    assert r.returncode in (0, 3), "qemu-img check %s: exit %d\n%s" % (p, r.returncode, r.stdout.decode())


def test_qcow2_persist():
    """mkfs on a qemu-img-made qcow2, files written, power-off; a second boot reads them back;
    qemu-img check finds nothing wrong."""
    img = path("persist.qcow2")
    qemu_img("create", "-f", "qcow2", img, "64M")
    v = boot("qcow2_persist_1", "--disk", img)
    v.run("mkfs.ext2 -q /dev/vda && mkdir -p /mnt && mount /dev/vda /mnt")
    v.run("dd if=/dev/urandom of=/mnt/rand bs=1k count=3072 2>/dev/null; sha256sum /mnt/rand > /mnt/rand.sum")
    v.run("echo hello-persist > /mnt/hello; sync; umount /mnt")
    poweroff(v)
    img_check(img)
    v = boot("qcow2_persist_2", "--disk", img)
    out = v.run("mount /dev/vda /mnt && cat /mnt/hello && sha256sum -c /mnt/rand.sum")
    assert "hello-persist" in out and "/mnt/rand: OK" in out, out
    poweroff(v)
    img_check(img)


def make_ext2(name, files, size_mb=32):
    """A raw ext2 image holding `files` (name -> bytes), built on the host with mke2fs -d."""
    d = path(name + ".d")
    os.makedirs(d)
    for fname, content in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(content)
    img = path(name + ".raw")
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", d, img, "%dM" % size_mb], check=True,
                   stdout=subprocess.DEVNULL)
    return img


def test_overlays():
    """A template and two overlays backed by it, both VMs running side by side: each sees its
    own writes only and the template is untouched."""
    tpl_raw = make_ext2("tpl", {"base.txt": b"from-template\n"})
    tpl = path("tpl.qcow2")
    qemu_img("convert", "-O", "qcow2", tpl_raw, tpl)
    tpl_sum = hashlib.sha256(open(tpl, "rb").read()).hexdigest()
    ovs = []
    for i in (1, 2):
        ov = path("ov%d.qcow2" % i)
        qemu_img("create", "-f", "qcow2", "-b", tpl, "-F", "qcow2", ov)
        ovs.append(ov)
    vms = [boot("overlays_%d" % i, "--disk", ovs[i - 1]) for i in (1, 2)]
    for i, v in enumerate(vms, 1):
        v.run("mkdir -p /mnt && mount /dev/vda /mnt && echo mine-%d > /mnt/own.txt && sync" % i)
    for i, v in enumerate(vms, 1):
        out = v.run("cat /mnt/base.txt /mnt/own.txt")
        assert "from-template" in out and ("mine-%d" % i) in out, out
        assert ("mine-%d" % (3 - i)) not in out, out
        v.run("umount /mnt")
        poweroff(v)
    for ov in ovs:
        img_check(ov)
    assert hashlib.sha256(open(tpl, "rb").read()).hexdigest() == tpl_sum, "template changed"
    v = boot("overlays_3", "--disk", tpl + ",readonly=on")
    out = v.run("mount -o ro /dev/vda /mnt && ls /mnt")
    assert "own.txt" not in out, "template sees an overlay's write: %r" % out
    poweroff(v)


def test_compressed():
    """A qcow2 image made by `qemu-img convert -c` reads correctly (zlib and zstd)."""
    rnd = random.Random(7)
    files = {"f%d.bin" % i: rnd.randbytes(rnd.randint(1, 300000)) for i in range(12)}
    files["text.txt"] = b"compressible " * 40000
    raw = make_ext2("comp", files)
    sums = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    for kind in ("zlib", "zstd"):
        img = path("comp-%s.qcow2" % kind)
        qemu_img("convert", "-c", "-O", "qcow2", "-o", "compression_type=" + kind, raw, img)
        v = boot("compressed_" + kind, "--disk", img + ",readonly=on")
        out = v.run("mount -o ro /dev/vda /mnt && cd /mnt && sha256sum * && cd /")
        for k, s in sums.items():
            assert "%s  %s" % (s, k) in out, "%s: %s missing or wrong in %r" % (kind, k, out[-300:])
        poweroff(v)


def forget_overlapping(flushed, off, size):
    """A newer write replaces what older ones it overlaps promised."""
    for o in [o for o, (sz, _) in flushed.items() if o < off + size and off < o + sz]:
        del flushed[o]


def test_crash_safety():
    """kill -9 of the VMM while the guest writes and flushes in a loop, CRASH_ROUNDS times:
    every time, qemu-img check finds no corruption, and every write the guest saw flushed is
    there. The guest writes random blocks of 4 KiB to 64 KiB straight to /dev/vda at random
    offsets (so clusters and L2 tables are allocated all the time), each followed by a flush
    (dd conv=fsync); the host records the hash of every acknowledged block. A file system is
    deliberately not used: ext2 has no journal, so a crash can corrupt it whatever the disk
    does, which is not what this test is about."""
    img = path("crash.qcow2")
    qemu_img("create", "-f", "qcow2", img, "256M")
    rnd = random.Random(3)
    flushed = {}  # offset in KiB -> (size in KiB, sha256) of the last acknowledged write there
    acked = [0]
    for rnd_i in range(CRASH_ROUNDS):
        v = boot("crash_%d" % rnd_i, "--disk", img + ",format=qcow2")
        # The host picks each write's place before the guest starts it, so a write that the
        # kill interrupts is known even when its output never reached the console: whatever
        # it overlaps is undefined afterwards (old data, new data or a mix) and is not
        # checked. Offsets are 4 KiB aligned below 250 MiB, sizes 4 to 64 KiB.
        deadline = time.monotonic() + 2.0 + rnd.random() * 4.0
        pending = None
        while time.monotonic() < deadline:
            off, size = rnd.randrange(64000) * 4, 4 << rnd.randrange(5)
            pending = (off, size)
            v.send("head -c %d /dev/urandom > /tmp/x && "
                   "dd if=/tmp/x of=/dev/vda bs=1024 seek=%d conv=fsync,notrunc 2>/dev/null && "
                   "echo FLUSHED %d $(sha256sum /tmp/x | cut -c1-64)\n" % (size * 1024, off, off))
            try:
                m, _ = v.expect(rb"FLUSHED %d ([0-9a-f]{64})" % off,
                                max(0.05, deadline - time.monotonic()))
            except VMError:
                break
            forget_overlapping(flushed, off, size)
            flushed[off] = (size, m.group(1).decode())
            acked[0] += 1
            pending = None
        os.killpg(v.proc.pid, signal.SIGKILL)
        v.close()
        if pending:
            forget_overlapping(flushed, *pending)
        img_check(img)
        v = boot("crash_%d_verify" % rnd_i, "--disk", img + ",format=qcow2")
        items = sorted(flushed.items())
        for j in range(0, len(items), 6):  # BusyBox ash edits lines of at most 1024 bytes
            cmd = "; ".join("echo V%d $(dd if=/dev/vda bs=1024 skip=%d count=%d 2>/dev/null | "
                            "sha256sum | cut -c1-64)" % (o, o, sz) for o, (sz, _) in items[j:j + 6])
            out = v.run(cmd, timeout=120)
            for o, (sz, want) in items[j:j + 6]:
                assert "V%d %s" % (o, want) in out, \
                    "round %d: %d KiB flushed at %d KiB came back different" % (rnd_i, sz, o)
        poweroff(v)
        img_check(img)
    # A test that verified nothing must not pass.
    assert acked[0] >= 2 * CRASH_ROUNDS, "only %d flushed writes seen" % acked[0]
    print("  crash_safety: %d rounds, %d flushed writes acknowledged, %d still-current ones "
          "verified after each crash" % (CRASH_ROUNDS, acked[0], len(flushed)))


def test_socket_pair():
    """Two VMs joined by a connected socket pair ping each other and copy a file intact."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        fa, fb = a.fileno(), b.fileno()
        label = "dgram" if kind == socket.SOCK_DGRAM else "stream"
        v1 = VM([TESSERA, "run", "--net", "socket,fd=%d,mac=52:54:00:00:00:01" % fa],
                log_path="%s/socket_%s_1.log" % (LOGS, label), pass_fds=(fa,))
        v2 = VM([TESSERA, "run", "--net", "socket,fd=%d,mac=52:54:00:00:00:02" % fb],
                log_path="%s/socket_%s_2.log" % (LOGS, label), pass_fds=(fb,))
        a.close()
        b.close()
        try:
            for i, v in ((1, v1), (2, v2)):
                v.expect(READY, BOOT)
                v.run("pkill udhcpc; ip addr flush dev eth0; ip addr add 10.9.0.%d/24 dev eth0; "
                      "ip link set eth0 up" % i)
            out = v1.run("ping -c 3 -W 5 10.9.0.2", timeout=60)
            assert "3 packets received" in out, out
            v2.run("dd if=/dev/urandom of=/tmp/blob bs=1k count=512 2>/dev/null; "
                   "sha256sum /tmp/blob | cut -c1-64 > /tmp/blob.sum; "
                   "(nc -l -p 7000 -e cat /tmp/blob &) ; sleep 1")
            out = v1.run("nc -w 10 10.9.0.2 7000 > /tmp/got; sha256sum /tmp/got | cut -c1-64",
                         timeout=120)
            want = v2.run("cat /tmp/blob.sum")
            assert want.strip() and want.strip() in out, "copied file differs: %r vs %r" % (out, want)
            for v in (v1, v2):
                poweroff(v)
        finally:
            v1.close()
            v2.close()


def test_tap():
    """A tap made by the host (as root): the guest pings the host's end and fetches a file
    from it over TCP, through a VMM that runs sandboxed as an unprivileged user. The guest
    took checksum and TCP segmentation offload (the tap has IFF_VNET_HDR), and 2 MiB of
    random bytes go to the host and back intact in 64 KiB segments both ways."""
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tap: skipped (needs root and /dev/net/tun)")
        return
    name = "tsrtap%d" % (os.getpid() % 10000)
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    srv = socket.socket()
    big = socket.socket()
    try:
        subprocess.run(["ip", "addr", "add", "10.77.0.1/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        srv.bind(("10.77.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        got = {}

        def serve():
            c, _ = srv.accept()
            got["data"] = c.recv(100)
            c.sendall(b"hello-over-tap\n")
            c.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        big.bind(("10.77.0.1", 0))
        big.listen(1)
        bport = big.getsockname()[1]

        def echo_big():
            c, _ = big.accept()
            data = b""
            while len(data) < BIG:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            got["big"] = hashlib.md5(data).hexdigest()
            c.sendall(data)
            c.close()

        tb = threading.Thread(target=echo_big, daemon=True)
        tb.start()
        v = boot("tap", "--net", "tap,ifname=%s" % name)
        try:
            v.run("pkill udhcpc; ip addr flush dev eth0; ip addr add 10.77.0.2/24 dev eth0; "
                  "ip link set eth0 up")
            out = v.run("ping -c 3 -W 5 10.77.0.1", timeout=60)
            assert "3 packets received" in out, out
            out = v.run("echo via-tap | nc 10.77.0.1 %d" % port, timeout=60)
            assert "hello-over-tap" in out, out
            t.join(10)
            assert got.get("data", b"").startswith(b"via-tap"), got
            # virtio 1.2 §5.1.3: CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, HOST_TSO4 11.
            feats = v.run("cat /sys/class/net/eth0/device/features").strip().splitlines()[-1]
            assert all(feats[b] == "1" for b in (0, 1, 7, 11)), feats
            out = v.run("dd if=/dev/urandom of=/tmp/f bs=64k count=%d 2>/dev/null; "
                        "nc 10.77.0.1 %d < /tmp/f > /tmp/g; md5sum /tmp/f /tmp/g"
                        % (BIG // 65536, bport), timeout=120)
            sums = [ln.split()[0] for ln in out.splitlines() if "/tmp/" in ln]
            tb.join(10)
            assert len(sums) == 2 and sums[0] == sums[1] == got.get("big"), (out, got)
            poweroff(v)
        finally:
            v.close()
    finally:
        srv.close()
        big.close()
        subprocess.run(["ip", "link", "del", "dev", name], stderr=subprocess.DEVNULL)


def test_user_net():
    """DHCP on eth0 at boot; the guest reaches a TCP server on the host; a host client
    reaches a guest server through hostfwd."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    hport = srv.getsockname()[1]
    got = {}

    def serve():
        c, _ = srv.accept()
        got["data"] = c.recv(100)
        c.sendall(b"hello-from-host\n")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    fwd = free_port()
    v = boot("user_net", "--net", "user,hostfwd=tcp::%d-:8080" % fwd)
    try:
        out = ""
        for _ in range(30):
            out = v.run("ip -4 addr show eth0")
            if "10.0.2.15/24" in out:
                break
            time.sleep(1)
        assert "10.0.2.15/24" in out, "no DHCP address on eth0: %r" % out
        # Over slirp, transmit offload (CSUM bit 0, HOST_TSO4 11), done in the VMM, but no
        # receive offload (GUEST_CSUM 1, GUEST_TSO4 7): slirp hands over plain frames.
        feats = v.run("cat /sys/class/net/eth0/device/features").strip().splitlines()[-1]
        assert feats[0] == feats[11] == "1" and feats[1] == feats[7] == "0", feats
        out = v.run("echo from-guest | nc 10.0.2.2 %d" % hport, timeout=60)
        assert "hello-from-host" in out, out
        t.join(10)
        assert got.get("data", b"").startswith(b"from-guest"), got
        v.run("mkdir -p /tmp/www && echo served-by-guest > /tmp/www/index.html && "
              "httpd -p 8080 -h /tmp/www")
        body = b""
        for _ in range(20):
            try:
                c = socket.create_connection(("127.0.0.1", fwd), timeout=10)
                c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    body += d
                c.close()
                if b"served-by-guest" in body:
                    break
            except OSError:
                time.sleep(0.5)
        assert b"served-by-guest" in body, "hostfwd: %r" % body[:200]
        poweroff(v)
    finally:
        v.close()
        srv.close()


def test_rng():
    """virtio-rng feeds /dev/hwrng from the host."""
    v = boot("rng", "--device", "rng")
    out = v.run("cat /sys/class/misc/hw_random/rng_current; head -c 4096 /dev/hwrng | wc -c")
    assert "virtio_rng" in out and "4096" in out, out
    poweroff(v)


def test_jit():
    """The JIT engine boots the default guest on two harts and computes what the host does,
    on both harts at once (x86-64 hosts only: elsewhere there is no JIT to test)."""
    if platform.machine() != "x86_64":
        return
    v = boot("jit", "--cpu-engine", "jit", "--cpus", "2")
    try:
        assert v.run("nproc").split()[-1] == "2", "nproc"
        want = hashlib.sha256(bytes(4 << 20)).hexdigest()
        out = v.run("for i in 1 2; do (dd if=/dev/zero bs=1M count=4 2>/dev/null | sha256sum) & "
                    "done; wait", 300)
        assert out.count(want) == 2, out
        out = v.run("seq 1 20000 | awk '{s += $1 * $1} END {print s}'", 300)
        assert "2666866670000" in out, out
        poweroff(v)
    finally:
        v.close()


def vm_rss_mib(pid):
    return (proc_status_kb(pid, "VmRSS") or 0) // 1024


def test_balloon():
    """Inflating the balloon by 128 MiB lowers the VMM's RSS by at least 100 MiB; deflating
    gives the memory back to the guest."""
    from api import call
    sock = path("api.sock")
    # Free page reporting off: what is measured here is the balloon's inflation alone.
    v = boot("balloon", "--mem", "512M", "--device", "balloon,free_page_reporting=off",
             "--api-sock", sock)
    try:
        # Dirty 300 MiB in the guest and free it again: the host now backs those pages.
        v.run("dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>/dev/null; rm /tmp/fill")
        before = vm_rss_mib(v.proc.pid)
        st, _ = call(sock, "PUT", "/v1/vm/balloon", {"target_bytes": 128 << 20})
        assert st in (200, 204), "balloon set: HTTP %d" % st
        info = None
        for _ in range(30):
            time.sleep(0.5)
            _, info = call(sock, "GET", "/v1/vm/balloon")
            if info["actual_bytes"] == 128 << 20:
                break
        assert info["actual_bytes"] == 128 << 20, "guest did not inflate: %r" % info
        after = vm_rss_mib(v.proc.pid)
        assert before - after >= 100, "RSS %d MiB -> %d MiB: dropped less than 100 MiB" % (before, after)
        free_inflated = int(v.run("free -m | awk '/Mem:/ {print $4}'"))
        call(sock, "PUT", "/v1/vm/balloon", {"target_bytes": 0})
        for _ in range(30):
            time.sleep(0.5)
            _, info = call(sock, "GET", "/v1/vm/balloon")
            if info["actual_bytes"] == 0:
                break
        assert info["actual_bytes"] == 0, "guest did not deflate: %r" % info
        free_deflated = int(v.run("free -m | awk '/Mem:/ {print $4}'"))
        assert free_deflated - free_inflated >= 100, "guest free %d -> %d MiB after deflate" % (
            free_inflated, free_deflated)
        print("  balloon: RSS %d -> %d MiB; guest free %d -> %d MiB" % (
            before, after, free_inflated, free_deflated))
        poweroff(v)
    finally:
        v.close()


def stats_memory(sock):
    from api import call
    st, body = call(sock, "GET", "/v1/vm/stats")
    assert st == 200, "GET /v1/vm/stats: HTTP %d" % st
    return body["memory"]


def fill_and_free(v, sock, mib):
    """Writes `mib` MiB into a file of the guest's tmpfs, reads the VMM's RSS, removes the
    file. Returns (RSS with the file in MiB, reported MiB before the removal)."""
    v.run("dd if=/dev/zero of=/tmp/fill bs=1M count=%d 2>/dev/null" % mib)
    m = stats_memory(sock)
    v.run("rm /tmp/fill")
    return m["rss_bytes"] >> 20, m["balloon"]["reported_bytes"] >> 20


def test_balloon_reporting():
    """Free page reporting: a guest that fills and frees 200 MiB gives it back to the host
    within 15 s with no balloon target (the VMM's RSS drops, reported_bytes grows); with
    free_page_reporting off the RSS stays."""
    sock = path("report.sock")
    v = boot("balloon_reporting", "--mem", "512M", "--device", "balloon", "--api-sock", sock)
    try:
        m = stats_memory(sock)
        assert m["balloon"]["free_page_reporting"] is True, m
        full, rep0 = fill_and_free(v, sock, 200)
        t0 = time.monotonic()
        while True:
            m = stats_memory(sock)
            rss, rep = m["rss_bytes"] >> 20, m["balloon"]["reported_bytes"] >> 20
            if full - rss >= 150 and rep - rep0 >= 150:
                break
            assert time.monotonic() - t0 < 15, (
                "15 s after freeing 200 MiB: RSS %d -> %d MiB, reported %d -> %d MiB" % (
                    full, rss, rep0, rep))
            time.sleep(0.5)
        took = time.monotonic() - t0
        assert m["balloon"]["target_bytes"] == 0 and m["balloon"]["actual_bytes"] == 0, m
        print("  reporting on: RSS %d -> %d MiB in %.1f s, reported +%d MiB" % (
            full, rss, took, rep - rep0))
        poweroff(v)
    finally:
        v.close()

    sock = path("noreport.sock")
    v = boot("balloon_reporting_off", "--mem", "512M", "--device",
             "balloon,free_page_reporting=off", "--api-sock", sock)
    try:
        full, _ = fill_and_free(v, sock, 200)
        time.sleep(8)  # four times Linux's 2 s reporting delay
        m = stats_memory(sock)
        rss = m["rss_bytes"] >> 20
        assert m["balloon"]["free_page_reporting"] is False, m
        assert m["balloon"]["reported_bytes"] == 0, m
        assert full - rss < 50, "reporting off, yet RSS %d -> %d MiB" % (full, rss)
        print("  reporting off: RSS %d -> %d MiB after 8 s" % (full, rss))
        poweroff(v)
    finally:
        v.close()


KSM = "/sys/kernel/mm/ksm"


def ksm_settings(values=None):
    """Reads (values None) or writes the host's KSM knobs this test changes."""
    keys = ("pages_to_scan", "sleep_millisecs", "run")
    if values is None:
        return {k: open(os.path.join(KSM, k)).read().strip() for k in keys}
    for k in keys:  # run last: scanning starts with the speed already set
        if k in values:
            with open(os.path.join(KSM, k), "w") as f:
                f.write(str(values[k]))


def test_ksm():
    """Page sharing: with the host's KSM running, three VMs of the default guest each show
    merged pages (ksm_merging_pages > 0) within 60 s; a fourth with --mem-merge off shows 0."""
    if not os.path.isdir(KSM):
        print("  SKIP: %s is absent (a kernel without KSM)" % KSM)
        return
    saved = ksm_settings()
    vms = []
    try:
        ksm_settings({"pages_to_scan": 20000, "sleep_millisecs": 10, "run": 1})
        for i in range(4):
            sock = path("ksm%d.sock" % i)
            args = ["--mem", "256M", "--api-sock", sock] + (["--mem-merge", "off"] if i == 3 else [])
            vms.append((boot("ksm%d" % i, *args), sock))
        t0 = time.monotonic()
        while True:
            pages = [stats_memory(sock)["ksm_merging_pages"] for _, sock in vms]
            if pages[0] is None:
                print("  SKIP: this kernel has no /proc/PID/ksm_merging_pages (Linux < 5.19)")
                return
            if all(p > 0 for p in pages[:3]):
                break
            assert time.monotonic() - t0 < 60, "60 s of KSM: merged pages per VM %r" % pages
            time.sleep(1)
        took = time.monotonic() - t0
        m = stats_memory(vms[3][1])
        assert m["merge"] is False and m["ksm_merging_pages"] == 0, m
        assert stats_memory(vms[0][1])["merge"] is True
        print("  ksm: merged pages per VM %r after %.1f s; memory_merge off: 0" % (pages, took))
        for v, _ in vms:
            poweroff(v)
    finally:
        for v, _ in vms:
            v.close()
        ksm_settings(saved)


def test_pause_resume():
    """Pause stops the guest (its clock included), resume continues it."""
    from api import call
    sock = path("api2.sock")
    v = boot("pause_resume", "--api-sock", sock)
    try:
        st, _ = call(sock, "PUT", "/v1/vm/state", {"action": "pause"})
        assert st in (200, 204), st
        _, d = call(sock, "GET", "/v1/vm")
        assert d["state"] == "paused", d
        _, s1 = call(sock, "GET", "/v1/vm/stats")
        time.sleep(1.0)
        _, s2 = call(sock, "GET", "/v1/vm/stats")
        assert s1["vcpus"][0]["instructions"] == s2["vcpus"][0]["instructions"], "ran while paused"
        assert s1["guest_mtime"] == s2["guest_mtime"], "guest clock ran while paused"
        st, _ = call(sock, "PUT", "/v1/vm/state", {"action": "resume"})
        assert st in (200, 204), st
        assert "alive" in v.run("echo alive")
        poweroff(v)
    finally:
        v.close()


def test_agent():
    """The guest agent answers on --agent-sock: exec, files, memory statistics."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    try:
        from agent import Agent
    except ImportError:
        raise AssertionError("tests/lib/agent.py is missing")
    sock = path("agent.sock")
    v = boot("agent", "--agent-sock", sock)
    try:
        a = Agent(sock)
        a.ping()
        rc, out, err = a.exec(["uname", "-m"])
        assert rc == 0 and out.strip() == b"riscv64", (rc, out, err)
        rc, out, _ = a.exec(["sh", "-c", "cat; exit 3"], stdin=b"piped")
        assert rc == 3 and out == b"piped", (rc, out)
        blob = os.urandom(100000)
        a.write_file("/tmp/blob", blob)
        assert a.read_file("/tmp/blob") == blob, "file round trip differs"
        st = a.mem_stats()
        assert st and int(st.get("total", 0)) > 0, st
        a.close()
        poweroff(v)
    finally:
        v.close()


def test_api_shutdown():
    """A graceful shutdown through the control API: the guest agent powers the guest off and
    the VMM exits 0 well before the hard-stop timeout."""
    from api import call
    from agent import Agent
    api, agent = path("sd.api"), path("sd.agent")
    v = boot("api_shutdown", "--agent-sock", agent, "--api-sock", api)
    try:
        a = Agent(agent)
        a.ping()
        a.close()
        t0 = time.monotonic()
        st, _ = call(api, "PUT", "/v1/vm/state", {"action": "shutdown", "timeout_s": 60})
        assert st in (200, 204), "shutdown: HTTP %d" % st
        rc = v.wait(50)
        assert rc == 0, "exit status %d" % rc
        assert time.monotonic() - t0 < 30, "took the fallback path"
        assert b"Power down" in v.buf or b"going down" in v.buf, "the guest did not shut down"
    finally:
        v.close()


def test_console_stall():
    """A console reader that stops reading for 10 s does not stop the guest: a loop that
    prints and counts keeps counting (read through the agent), the VMM counts the output it
    dropped, and the console answers again once it is read."""
    from agent import Agent
    from api import call
    agent, api = path("stall.agent"), path("stall.api")
    v = boot("console_stall", "--agent-sock", agent, "--api-sock", api)
    try:
        a = Agent(agent)
        a.ping()
        # 1 KiB lines as fast as the guest prints (no fork in the loop: the UART is the
        # limit); the counter is what the test reads.
        v.send("sh -c 'l=$(printf %01000d 0); i=0; while :; do i=$((i+1)); "
               "echo $i > /tmp/count; echo \"tick $i $l\"; done' & echo $! > /tmp/loop.pid\n")
        v.expect(rb"tick 200 ", 60)

        def count():
            # The loop's `echo $i > /tmp/count` truncates before it writes, so a read can
            # land between the two and see an empty file: read again.
            for _ in range(50):
                rc, out, err = a.exec(["cat", "/tmp/count"])
                assert rc == 0, (rc, out, err)
                if out.strip():
                    return int(out.strip())
            raise AssertionError("/tmp/count stayed empty over 50 reads")

        def console_stats():
            st, stats = call(api, "GET", "/v1/vm/stats")
            assert st == 200, st
            return stats["console"]

        # From here nothing reads the console's pipe (vmdrive reads only inside expect()).
        c0, o0 = count(), console_stats()["output_bytes"]
        time.sleep(10)
        c1, con = count(), console_stats()
        o1 = con["output_bytes"]
        print("  during the 10 s stall: counter %d -> %d, console output %d KiB (dropped %d KiB)"
              % (c0, c1, (o1 - o0) >> 10, con["dropped_bytes"] >> 10))
        assert c1 - c0 >= 100, "the guest loop stalled with the console: %d -> %d" % (c0, c1)
        # A blocking console would have stopped the guest once the 64 KiB pipe was full.
        assert o1 - o0 > 4 * 65536, "the guest printed only %d bytes" % (o1 - o0)
        rc, _, _ = a.exec(["sh", "-c", "kill $(cat /tmp/loop.pid)"])
        assert rc == 0
        assert "alive-42" in v.run("echo alive-$((6*7))", timeout=60)
        # The stdout reader skipped what the ring could not keep, and that was counted.
        assert console_stats()["dropped_bytes"] > 0
        a.close()
        poweroff(v)
    finally:
        v.close()


class ConsoleClient:
    """One client of `--console sock=PATH`: a plain socket, or `tessera console` on a pty."""

    def __init__(self, sock=None, pty_argv=None):
        self.buf = b""
        self.proc = None
        if pty_argv:
            import pty
            master, slave = pty.openpty()
            self.proc = subprocess.Popen(pty_argv, stdin=slave, stdout=slave, stderr=slave,
                                         start_new_session=True)
            os.close(slave)
            self.fd = master
        else:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.connect(sock)
            self.fd = self.s.fileno()

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, pattern, timeout=60):
        import select
        deadline = time.monotonic() + timeout
        while pattern not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no %r in %r" % (pattern, self.buf[-500:])
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    d = os.read(self.fd, 65536)
                except OSError:  # a pty whose other side closed
                    d = b""
                assert d, "closed before %r: %r" % (pattern, self.buf[-500:])
                self.buf += d

    def close(self):
        if self.proc:
            os.close(self.fd)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        else:
            self.s.close()


def test_console_sock():
    """--console sock=PATH,log=FILE: two clients attach, both see the output and either can
    type; one detaches; output while none is attached is replayed on the next attach (and
    nothing from before it); `tessera console` attaches a terminal and Ctrl-A x detaches
    while the VM runs on; the log file holds everything; the socket is 0600 and removed at
    exit."""
    from agent import Agent
    sock, log, agent = path("con.sock"), path("con.log"), path("con.agent")
    out = open("%s/console_sock.log" % LOGS, "wb")
    proc = subprocess.Popen([TESSERA, "run", "--console", "sock=%s,log=%s" % (sock, log),
                             "--agent-sock", agent], stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    clients = []
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        assert os.stat(sock).st_mode & 0o777 == 0o600, oct(os.stat(sock).st_mode)
        a = ConsoleClient(sock)
        clients.append(a)
        a.expect(READY, BOOT)  # the boot, replayed to the first client
        b = ConsoleClient(sock)
        clients.append(b)
        # b's input is read only once b is attached, so both see what it makes the guest print.
        b.send(b"echo FROM-B-$((6*7))\n")
        a.expect(b"FROM-B-42")
        b.expect(b"FROM-B-42")
        a.send(b"echo FROM-A-$((7*7))\n")
        a.expect(b"FROM-A-49")
        b.expect(b"FROM-A-49")
        b.close()
        a.send(b"echo ONLY-A-$((8*8))\n")
        a.expect(b"ONLY-A-64")
        a.expect(b"# ")  # the prompt after it
        a.close()
        time.sleep(1)  # the VMM notices the hang-up on its own thread
        ag = Agent(agent)
        rc, _, _ = ag.exec(["sh", "-c", "echo REPLAY-$((9*9)) > /dev/ttyS0"])
        assert rc == 0
        c = ConsoleClient(pty_argv=[TESSERA, "console", "--sock", sock])
        clients.append(c)
        c.expect(b"REPLAY-81")
        assert b"ONLY-A" not in c.buf and b"FROM-B" not in c.buf, c.buf
        c.send(b"echo FROM-C-$((5*5))\r")
        c.expect(b"FROM-C-25")
        c.send(b"\x01x")
        c.expect(b"detached")
        assert c.proc.wait(10) == 0
        ag.ping()  # the VM runs on without clients
        ag.close()
        d = ConsoleClient(sock)
        clients.append(d)
        d.send(b"poweroff\n")
        assert proc.wait(60) == 0
        assert not os.path.exists(sock), "the socket outlived the VMM"
        with open(log, "rb") as f:
            text = f.read()
        for want in (READY, b"FROM-B-42", b"FROM-A-49", b"ONLY-A-64", b"REPLAY-81",
                     b"FROM-C-25", b"poweroff"):
            assert want in text, "the log lacks %r" % want
    finally:
        for cl in clients:
            try:
                cl.close()
            except OSError:
                pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


def test_api_shutdown_late_reply():
    """The flake 'VM did not exit within 50s' after a shutdown through the API: the VMM waits
    3 s for the agent's reply and then disconnects; a guest slow to answer (a loaded host, a
    long sync()) found the host gone, dropped the reply and with it the shutdown. Made
    certain here by pausing the VM across the request: the agent only sees it after the VMM
    gave up. The guest must still power off, long before the hard-stop fallback."""
    from api import call
    from agent import Agent
    api, agent = path("sdl.api"), path("sdl.agent")
    v = boot("api_shutdown_late_reply", "--agent-sock", agent, "--api-sock", api)
    try:
        a = Agent(agent)
        a.ping()
        a.close()
        st, _ = call(api, "PUT", "/v1/vm/state", {"action": "pause"})
        assert st == 204, "pause: HTTP %d" % st
        t0 = time.monotonic()
        st, _ = call(api, "PUT", "/v1/vm/state", {"action": "shutdown", "timeout_s": 90})
        assert st in (200, 204), "shutdown: HTTP %d" % st
        assert b"did not answer" in v.buf or time.monotonic() - t0 > 2.5, "the agent answered"
        st, _ = call(api, "PUT", "/v1/vm/state", {"action": "resume"})
        assert st == 204, "resume: HTTP %d" % st
        rc = v.wait(60)
        assert rc == 0, "exit status %d" % rc
        assert time.monotonic() - t0 < 60, "took the fallback path"
        assert b"Power down" in v.buf or b"going down" in v.buf, "the guest did not shut down"
    finally:
        v.close()

def main():
    os.makedirs(LOGS, exist_ok=True)
    only = sys.argv[1:]
    tests = [
        ("rng", test_rng),
        ("jit", test_jit),
        ("qcow2_persist", test_qcow2_persist),
        ("overlays", test_overlays),
        ("compressed", test_compressed),
        ("user_net", test_user_net),
        ("socket_pair", test_socket_pair),
        ("tap", test_tap),
        ("agent", test_agent),
        ("balloon", test_balloon),
        ("balloon_reporting", test_balloon_reporting),
        ("ksm", test_ksm),
        ("pause_resume", test_pause_resume),
        ("api_shutdown", test_api_shutdown),
        ("console_stall", test_console_stall),
        ("console_sock", test_console_sock),
        ("api_shutdown_late_reply", test_api_shutdown_late_reply),
        ("crash_safety", test_crash_safety),
    ]
    try:
        return run_tests("devices", tests, only, LOGS + "/%s*.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
