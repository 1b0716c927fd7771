"""Bulk TCP through user networking (libslirp) while the guest's disk is busy: the transfer
`bench/run.sh io` makes (the guest's nc sending to 10.0.2.2), and the other way through a
hostfwd port, many times each, every byte counted and checksummed. A stall (a lost wake-up,
back-pressure that never clears) shows as a transfer that does not finish in time.

Each test prints PASS/FAIL; the last line is "net: N passed, N failed". VM console logs go to
build/test-logs/. ROUNDS (default 6) sets the transfers per direction, BULK_MIB (default 8)
their size.
"""

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from testkit import free_port, run_tests  # noqa: E402
from vmdrive import VM  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
ROUNDS = int(os.environ.get("ROUNDS", "6"))
BULK_MIB = int(os.environ.get("BULK_MIB", "8"))
STALL_S = float(os.environ.get("STALL_S", "120"))  # one transfer, at the slowest we accept
READY = rb"TESSERA-GUEST-READY"

tmp = tempfile.mkdtemp(prefix="tessera-nettest-")


def sink(srv, results):
    """Accepts one connection on srv, reads to EOF; results gets bytes and sha256."""
    srv.settimeout(STALL_S)
    try:
        c, _ = srv.accept()
    except socket.timeout:
        results["error"] = "the guest never connected"
        return
    c.settimeout(STALL_S)
    h, n = hashlib.sha256(), 0
    try:
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
    except socket.timeout:
        results["error"] = "stalled after %d bytes" % n
    c.close()
    results["bytes"] = n
    results["sha256"] = h.hexdigest()


def guest_listen(v, dest):
    """Starts `nc -l -p 5000 > dest` in the guest and waits until it listens: slirp accepts a
    hostfwd connection at once and resets it when the guest port is closed."""
    v.run("rm -f %s; (nc -l -p 5000 > %s &); for i in $(seq 100); do "
          "netstat -ltn | grep -q ':5000 ' && break; usleep 100000; done" % (dest, dest))


def test_bulk_tcp():
    """With dd writing /dev/vda in a loop, ROUNDS transfers of BULK_MIB MiB guest -> host
    (nc to 10.0.2.2) and ROUNDS host -> guest (through hostfwd to a guest nc -l) each arrive
    whole, with the sender's checksum."""
    img = os.path.join(tmp, "load.raw")
    with open(img, "wb") as f:
        f.truncate(128 << 20)
    fwd = free_port()
    v = VM([TESSERA, "run", "--mem", "256M", "--disk", img + ",format=raw", "--net",
            "user,hostfwd=tcp:127.0.0.1:%d-:5000" % fwd], log_path="%s/net_bulk_tcp.log" % LOGS)
    try:
        v.expect(READY, BOOT)
        out = ""
        for _ in range(30):
            out = v.run("ip -4 addr show eth0")
            if "10.0.2.15/24" in out:
                break
            time.sleep(1)
        assert "10.0.2.15/24" in out, "no DHCP address on eth0: %r" % out
        blob = os.urandom(BULK_MIB << 20)
        want = hashlib.sha256(blob).hexdigest()
        with open(os.path.join(tmp, "blob"), "wb") as f:
            f.write(blob)
        # The same bytes in the guest: sent in through hostfwd once, checked there.
        guest_listen(v, "/tmp/blob")
        sent = False
        for _ in range(30):
            try:
                c = socket.create_connection(("127.0.0.1", fwd), timeout=STALL_S)
                c.sendall(blob)
                c.close()
                sent = True
                break
            except OSError:
                time.sleep(1)
        assert sent, "cannot connect to the guest through hostfwd"
        for _ in range(int(STALL_S)):
            if v.run("pidof nc >/dev/null || echo done").strip() == "done":
                break
            time.sleep(1)
        got = v.run("sha256sum /tmp/blob", timeout=120).split()
        assert got and got[0] == want, "the guest got other bytes: %r" % got
        # Disk load for the rest of the test.
        v.run("(while :; do dd if=/dev/zero of=/dev/vda bs=1M count=64 conv=fsync "
              "2>/dev/null; done) > /dev/null 2>&1 & true")
        for i in range(ROUNDS):
            # Guest -> host, as bench/run.sh io does it.
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            res = {}
            t = threading.Thread(target=sink, args=(srv, res), daemon=True)
            t.start()
            t0 = time.monotonic()
            v.run("nc -w 5 10.0.2.2 %d < /tmp/blob" % srv.getsockname()[1], timeout=STALL_S)
            t.join(STALL_S)
            srv.close()
            assert not res.get("error"), "round %d, guest -> host: %s" % (i, res["error"])
            assert res.get("bytes") == len(blob) and res.get("sha256") == want, \
                "round %d, guest -> host: %r bytes, sha256 %s" % (i, res.get("bytes"),
                                                                   res.get("sha256"))
            up = time.monotonic() - t0
            # Host -> guest through hostfwd.
            guest_listen(v, "/tmp/recv")
            t0 = time.monotonic()
            c = None
            for _ in range(30):
                try:
                    c = socket.create_connection(("127.0.0.1", fwd), timeout=STALL_S)
                    break
                except OSError:
                    time.sleep(0.5)
            assert c, "round %d: cannot connect through hostfwd" % i
            c.sendall(blob)
            c.close()
            for _ in range(int(STALL_S * 2)):
                if v.run("pidof nc >/dev/null || echo done").strip() == "done":
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("round %d, host -> guest: the guest's nc did not finish "
                                     "in %d s" % (i, STALL_S))
            got = v.run("wc -c < /tmp/recv; sha256sum /tmp/recv", timeout=120).split()
            assert got[:2] == [str(len(blob)), want], "round %d, host -> guest: %r" % (i, got)
            print("  round %d: guest->host %.1f s, host->guest %.1f s" %
                  (i, up, time.monotonic() - t0), flush=True)
        v.send("poweroff\n")
        assert v.wait(60) == 0, "exit status after poweroff"
    finally:
        v.close()


def main():
    os.makedirs(LOGS, exist_ok=True)
    try:
        return run_tests("net", [("bulk_tcp", test_bulk_tcp)], sys.argv[1:], LOGS + "/net_%s*.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
