"""Disk and NIC rate limits with the default guest: what the guest measures matches what was
configured (generous bounds, ±25%: this runs on a busy shared host), a limit changed on the
running VM shows within 2 s, and the stats count what waited. The bench (bench/bench_limits.py)
prints the same measurements as a table.

Each test prints PASS/FAIL; the last line is "limits: N passed, N failed". VM console logs go to
build/test-logs/.
"""

import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import api  # noqa: E402
import limitsdrive as ld  # noqa: E402
from testkit import free_port, run_tests  # noqa: E402
from vmdrive import VM, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
TOL = 0.25

tmp = tempfile.mkdtemp(prefix="tessera-limitstest-")


def near(got, want, what):
    assert want * (1 - TOL) <= got <= want * (1 + TOL), \
        "%s: measured %.2f, configured %.2f (±%d%%)" % (what, got, want, TOL * 100)
    print("  %s: %.2f (configured %.2f)" % (what, got, want))


def listening(port):
    """Whether something listens on TCP `port`, from /proc: a migration target takes the first
    connection as its stream, so a probe connection would end it."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def disk_vm(name, opts):
    img = os.path.join(tmp, name + ".raw")
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    sock = os.path.join(tmp, name + ".sock")
    v = ld.boot([TESSERA, "run", "--mem", "256M", "--disk", img + ",format=raw" + opts], sock,
                "%s/limits_%s.log" % (LOGS, name), BOOT)
    return v, sock


def test_disk_bps():
    """A disk limited to 10 MiB/s (bps=10M on --disk) writes and reads 32 MiB with dd at
    10 MiB/s ±25%; the stats show the limit and count the requests that waited, and describe
    carries the limit in the VM's config."""
    v, sock = disk_vm("bps", ",bps=10M")
    try:
        near(ld.disk_dd(v, write=True), 10, "dd write MiB/s")
        near(ld.disk_dd(v, write=False), 10, "dd read MiB/s")
        st = ld.stats(sock, "disks", 0)
        assert st["limits"] == {"bps": "10M"}, st
        assert st["throttled_requests"] > 0 and st["throttled_ns"] > 1e9, st
        status, d = api.call(sock, "GET", "/v1/vm")
        assert status == 200 and d["config"]["disks"][0].get("bps") == "10M", d
    finally:
        poweroff(v)


def test_disk_iops():
    """A disk limited to 500 IOPS serves 4 KiB random O_DIRECT reads and writes at 500 ±25%
    per second; the limit was set on the running VM, and bps stays unlimited."""
    v, sock = disk_vm("iops", "")
    try:
        assert ld.set_limits(sock, "disks", 0, {"iops": 500}) == {"iops": 500}
        near(ld.disk_iops(v, write=False), 500, "random 4 KiB read IOPS")
        near(ld.disk_iops(v, write=True), 500, "random 4 KiB write IOPS")
        # Separate read and write limits: writes at 200 while reads keep the total's 500.
        ld.set_limits(sock, "disks", 0, {"iops_wr": 200})
        near(ld.disk_iops(v, write=True), 200, "random 4 KiB write IOPS under iops_wr=200")
        near(ld.disk_iops(v, write=False), 500, "random 4 KiB read IOPS beside iops_wr=200")
    finally:
        poweroff(v)


def test_disk_live_change():
    """Random reads held to 100 IOPS go past 500 IOPS within 2 s of setting 1000 on the
    running VM; a bad value is refused naming the key and changes nothing."""
    v, sock = disk_vm("live", ",iops=100")
    try:
        v.run("(tessera-diskbench /dev/vda randread 12 > /tmp/db.out 2>&1 &)")
        took = ld.live_change(sock, "disks", 0, "reads", {"iops": 100}, {"iops": 1000}, 500)
        assert took is not None and took < 2.0, "the new limit showed after %r s" % took
        print("  100 -> 1000 IOPS showed after %.2f s" % took)
        status, body = api.call(sock, "PUT", "/v1/vm/disks/0/limits", {"bps": "ten"})
        assert status == 400 and "disks[0].bps" in body["error"], (status, body)
        status, body = api.call(sock, "PUT", "/v1/vm/disks/0/limits", {"path": "/etc/shadow"})
        assert status == 400 and "disks[0].path: cannot change" in body["error"], (status, body)
        status, body = api.call(sock, "PUT", "/v1/vm/disks/1/limits", {"iops": 1})
        assert status == 404, (status, body)
        assert ld.stats(sock, "disks", 0)["limits"] == {"iops": 1000}
        for _ in range(60):
            if "IOPS" in v.run("cat /tmp/db.out"):
                break
            time.sleep(0.5)
    finally:
        poweroff(v)


def test_disk_pause_snapshot_while_throttled():
    """A disk crawling at 2 IOPS with requests waiting: pause and resume, and a snapshot, go
    through at once (nothing waits for the throttled request) and the I/O finishes after. The
    snapshot restored runs on with the limit it was taken with (the config carries it) and the
    request that waited in the ring completes there too."""
    v, sock = disk_vm("snap", ",iops=2")
    v2 = None
    try:
        v.run("(sh -c 'dd if=/dev/vda of=/dev/null bs=4k count=12 iflag=direct > /tmp/dd.out "
              "2>&1; echo done >> /tmp/dd.out' &)")
        time.sleep(1.5)
        for action in ("pause", "resume"):
            t0 = time.monotonic()
            status, body = api.call(sock, "PUT", "/v1/vm/state", {"action": action}, timeout=10)
            assert status == 204 and time.monotonic() - t0 < 5, (action, status, body)
        snap = os.path.join(tmp, "throttled.tsr")
        t0 = time.monotonic()
        status, body = api.call(sock, "PUT", "/v1/vm/snapshot", {"file": snap}, timeout=60)
        assert status in (200, 202), (status, body)
        st = body
        for _ in range(240):
            status, st = api.call(sock, "GET", "/v1/vm/snapshot")
            if st.get("status") != "active":
                break
            time.sleep(0.25)
        assert st.get("status") == "completed", st
        print("  snapshot with a throttled request waiting: %.1f s" % (time.monotonic() - t0))
        ld.set_limits(sock, "disks", 0, {"iops": 0})
        out = ""
        for _ in range(40):
            out = v.run("cat /tmp/dd.out")
            if "done" in out:
                break
            time.sleep(0.5)
        assert "12+0 records in" in out and "done" in out, out
        poweroff(v)
        v = None

        sock2 = os.path.join(tmp, "snap2.sock")
        v2 = VM([TESSERA, "run", "--restore", snap, "--api-sock", sock2],
                   log_path="%s/limits_disk_pause_snapshot_restored.log" % LOGS)
        for _ in range(100):
            if os.path.exists(sock2):
                break
            time.sleep(0.1)
        status, d = api.call(sock2, "GET", "/v1/vm")
        assert status == 200 and d["config"]["disks"][0].get("iops") == 2, d
        assert ld.stats(sock2, "disks", 0)["limits"] == {"iops": 2}
        ld.set_limits(sock2, "disks", 0, {"iops": None})
        for _ in range(40):
            out = v2.run("cat /tmp/dd.out")
            if "done" in out:
                break
            time.sleep(0.5)
        assert "12+0 records in" in out and "done" in out, "restored: %r" % out
    finally:
        if v:
            poweroff(v)
        if v2:
            poweroff(v2)


def test_disk_migrate_while_throttled():
    """A live migration of a VM whose disk crawls at 2 IOPS with requests waiting completes,
    the target runs with the same limit, refuses nothing, and the waiting I/O finishes there;
    a limit change is refused on the source while the migration runs."""
    v, sock = disk_vm("mig", ",iops=2")
    t = None
    try:
        v.run("(sh -c 'dd if=/dev/vda of=/dev/null bs=4k count=12 iflag=direct > /tmp/dd.out "
              "2>&1; echo done >> /tmp/dd.out' &)")
        time.sleep(1.5)
        port = free_port()
        tsock = os.path.join(tmp, "mig-target.sock")
        t = VM([TESSERA, "run", "--incoming", "tcp:127.0.0.1:%d" % port, "--api-sock", tsock],
               log_path="%s/limits_disk_migrate_target.log" % LOGS)
        for _ in range(600):
            if listening(port):
                break
            time.sleep(0.1)
        status, body = api.call(sock, "PUT", "/v1/vm/migrate",
                                {"uri": "tcp:127.0.0.1:%d" % port, "mode": "live"})
        assert status == 204, (status, body)
        st = {}
        try:
            refused = api.call(sock, "PUT", "/v1/vm/disks/0/limits", {"iops": 0})
            status, st = api.call(sock, "GET", "/v1/vm/migrate")
            # Asked while it ran: refused (the target already has the config).
            if st.get("status") == "active":
                assert refused[0] == 409 and "migration" in refused[1]["error"], refused
            for _ in range(1200):
                status, st = api.call(sock, "GET", "/v1/vm/migrate")
                if st.get("status") != "active":
                    break
                time.sleep(0.1)
        except OSError:
            st = {"status": "completed"}  # the source has gone, as it does when done
        assert st.get("status") == "completed", st
        assert v.wait(60) == 0, "the source did not exit after the migration"
        status, d = api.call(tsock, "GET", "/v1/vm")
        assert status == 200 and d["config"]["disks"][0].get("iops") == 2, d
        ld.set_limits(tsock, "disks", 0, {"iops": 0})
        out = ""
        for _ in range(40):
            out = t.run("cat /tmp/dd.out")
            if "done" in out:
                break
            time.sleep(0.5)
        assert "12+0 records in" in out and "done" in out, "target: %r" % out
        poweroff(t)
        t = None
    finally:
        v.close()
        if t:
            t.close()


def test_nic_rates():
    """A NIC limited to 20 Mbit/s received (rx_bps=2500000, host -> guest through hostfwd)
    measures 20 Mbit/s ±25% at the NIC; sending (tx_bps, guest -> host) is held to its limit
    too (10 Mbit/s: the emulated guest sends little faster than 20); the stats count the
    frames that waited."""
    fwd = free_port()
    sock = os.path.join(tmp, "nic.sock")
    v = ld.boot([TESSERA, "run", "--mem", "256M", "--net",
                 "user,hostfwd=tcp:127.0.0.1:%d-:5000,rx_bps=2500000,tx_bps=1250000" % fwd],
                sock, "%s/limits_nic.log" % LOGS, BOOT)
    try:
        ld.wait_dhcp(v)
        _, frames = ld.nic_rx(v, sock, fwd)
        near(frames, 20, "rx Mbit/s (frames)")
        _, frames = ld.nic_tx(v, sock, mib=4)
        near(frames, 10, "tx Mbit/s (frames)")
        st = ld.stats(sock, "nics", 0)
        assert st["limits"] == {"rx_bps": 2500000, "tx_bps": 1250000}, st
        assert st["rx_throttled_frames"] > 0 and st["tx_throttled_frames"] > 0, st
        assert st["rx_throttled_ns"] > 0 and st["tx_throttled_ns"] > 0, st
    finally:
        poweroff(v)


def test_nic_live_change():
    """A host -> guest stream held to 10 Mbit/s goes past 30 Mbit/s within 2 s of setting
    rx_bps to 40 Mbit/s on the running VM."""
    fwd = free_port()
    sock = os.path.join(tmp, "nlive.sock")
    v = ld.boot([TESSERA, "run", "--mem", "256M", "--net",
                 "user,hostfwd=tcp:127.0.0.1:%d-:5000,rx_bps=1250000" % fwd],
                sock, "%s/limits_nic_live.log" % LOGS, BOOT)
    try:
        ld.wait_dhcp(v)
        ld.guest_listen(v)
        c = socket.create_connection(("127.0.0.1", fwd), timeout=60)
        sender = threading.Thread(target=lambda: (c.sendall(b"\x5a" * (48 << 20)), c.close()),
                                  daemon=True)
        sender.start()
        took = ld.live_change(sock, "nics", 0, "rx_bytes", {"rx_bps": 1250000},
                              {"rx_bps": 5000000}, 30e6 / 8)
        assert took is not None and took < 2.0, "the new limit showed after %r s" % took
        print("  10 -> 40 Mbit/s showed after %.2f s" % took)
        ld.set_limits(sock, "nics", 0, {"rx_bps": None})
        sender.join(60)
    finally:
        poweroff(v)


TESTS = [("disk_bps", test_disk_bps), ("disk_iops", test_disk_iops),
         ("disk_live_change", test_disk_live_change),
         ("disk_pause_snapshot", test_disk_pause_snapshot_while_throttled),
         ("disk_migrate", test_disk_migrate_while_throttled),
         ("nic_rates", test_nic_rates), ("nic_live_change", test_nic_live_change)]


def main():
    os.makedirs(LOGS, exist_ok=True)
    try:
        return run_tests("limits", TESTS, sys.argv[1:], LOGS + "/limits_%s*.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
