"""Measuring disk and NIC rate limits from inside the default guest, for
tests/guest/test_limits.py (which checks the numbers) and bench/bench_limits.py (which prints
them). Every figure is measured: the guest's dd and tessera-diskbench time their own I/O,
network rates are bytes counted over wall time on the host, and a live change is timed from the
API's answer to the first sample that shows the new rate.
"""

import re
import socket
import threading
import time

import api
from vmdrive import VM

READY = rb"TESSERA-GUEST-READY"


def boot(argv, sock, log_path, boot_timeout=180):
    """Boots `argv` (a `tessera run` command line without --api-sock) with its API on sock."""
    v = VM(list(argv) + ["--api-sock", sock], log_path=log_path)
    v.expect(READY, boot_timeout)
    return v


def wait_dhcp(v, timeout=30):
    out = ""
    for _ in range(timeout):
        out = v.run("ip -4 addr show eth0")
        if "10.0.2.15/24" in out:
            return
        time.sleep(1)
    raise AssertionError("no DHCP address on eth0: %r" % out)


def set_limits(sock, kind, index, limits):
    """PUT /v1/vm/{disks,nics}/N/limits; returns the limits in force."""
    status, body = api.call(sock, "PUT", "/v1/vm/%s/%d/limits" % (kind, index), limits)
    assert status == 200, "limits %r: %d %r" % (limits, status, body)
    return body


def stats(sock, kind, index):
    status, body = api.call(sock, "GET", "/v1/vm/stats")
    assert status == 200, body
    return body[kind][index]


def disk_dd(v, write, mib=32, dev="/dev/vda"):
    """dd of `mib` MiB in 1 MiB O_DIRECT requests; MiB/s as the guest's dd timed it."""
    cmd = ("dd if=/dev/zero of=%s bs=1M count=%d oflag=direct" if write else
           "dd if=%s of=/dev/null bs=1M count=%d iflag=direct") % (dev, mib)
    out = v.run(cmd + " 2>&1", timeout=600)
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) seconds", out)
    assert m, "dd said: %r" % out
    return int(m.group(1)) / float(m.group(2)) / (1 << 20)


def disk_iops(v, write, secs=4, dev="/dev/vda"):
    """4 KiB O_DIRECT requests at random offsets, one at a time, for secs seconds: IOPS as
    the guest's tessera-diskbench counted them."""
    out = v.run("tessera-diskbench %s %s %d" % (dev, "randwrite" if write else "randread", secs),
                timeout=secs + 120)
    m = re.search(r"(\d+) IOPS", out)
    assert m, "tessera-diskbench said: %r" % out
    return int(m.group(1))


def _sink(srv, res, timeout):
    srv.settimeout(timeout)
    try:
        c, _ = srv.accept()
    except socket.timeout:
        res["error"] = "the guest never connected"
        return
    c.settimeout(timeout)
    n, t0 = 0, None
    try:
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            if t0 is None:
                t0 = time.monotonic()
            n += len(d)
    except socket.timeout:
        res["error"] = "stalled after %d bytes" % n
    c.close()
    res["bytes"] = n
    res["secs"] = time.monotonic() - t0 if t0 else 0


def nic_tx(v, sock, mib=8, nic=0, timeout=300):
    """The guest sends `mib` MiB to the host (nc to 10.0.2.2). Returns (payload Mbit/s, frame
    Mbit/s): TCP bytes the host got over the time from its first byte to the last, and the
    NIC's transmitted frame bytes (what tx_bps limits) over the same time."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    res = {}
    t = threading.Thread(target=_sink, args=(srv, res, timeout), daemon=True)
    t.start()
    s0 = stats(sock, "nics", nic)
    v.run("dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc -w 5 10.0.2.2 %d" %
          (mib * 16, srv.getsockname()[1]), timeout=timeout)
    t.join(timeout)
    srv.close()
    s1 = stats(sock, "nics", nic)
    assert not res.get("error") and res.get("bytes") == mib << 20, "guest -> host: %r" % res
    return (res["bytes"] * 8 / res["secs"] / 1e6,
            (s1["tx_bytes"] - s0["tx_bytes"]) * 8 / res["secs"] / 1e6)


def guest_listen(v, port=5000):
    v.run("(nc -l -p %d > /dev/null &); for i in $(seq 100); do "
          "netstat -ltn | grep -q ':%d ' && break; usleep 100000; done" % (port, port))


def nic_rx(v, sock, fwd, mib=8, nic=0, timeout=300):
    """The host sends `mib` MiB into the guest through hostfwd port fwd (a guest nc -l).
    Returns (payload Mbit/s, frame Mbit/s): from the connection to the moment the NIC has
    delivered that many frame bytes (what rx_bps limits)."""
    guest_listen(v)
    s0 = stats(sock, "nics", nic)
    blob = b"\x5a" * (mib << 20)
    c = socket.create_connection(("127.0.0.1", fwd), timeout=timeout)
    t0 = time.monotonic()
    c.sendall(blob)
    c.close()
    deadline = t0 + timeout
    while True:
        s1 = stats(sock, "nics", nic)
        if s1["rx_bytes"] - s0["rx_bytes"] >= len(blob):
            break
        assert time.monotonic() < deadline, "host -> guest stalled"
        time.sleep(0.02)
    secs = time.monotonic() - t0
    for _ in range(100):
        if "done" in v.run("pidof nc >/dev/null || echo done"):
            break
        time.sleep(0.2)
    return len(blob) * 8 / secs / 1e6, (s1["rx_bytes"] - s0["rx_bytes"]) * 8 / secs / 1e6


def live_change(sock, kind, index, counter, before, after, want_rate, settle=1.5,
                window=0.2, timeout=5.0):
    """With traffic running, sets `before`, lets it settle, then `after`; returns the seconds
    from the API's answer to the end of the first `window`-second sample of stats[counter]
    whose rate reaches `want_rate` per second (None when it never does within timeout)."""
    set_limits(sock, kind, index, before)
    time.sleep(settle)
    set_limits(sock, kind, index, after)
    t_set = time.monotonic()
    prev, t_prev = stats(sock, kind, index)[counter], t_set
    while time.monotonic() - t_set < timeout:
        time.sleep(window)
        cur, t_cur = stats(sock, kind, index)[counter], time.monotonic()
        if (cur - prev) / (t_cur - t_prev) >= want_rate:
            return t_cur - t_set
        prev, t_prev = cur, t_cur
    return None
