"""What the daemon-level system tests (tests/system/test_*.py) share: a tally of checks, and a
suite runner around one tesserad on a fresh state directory that runs the named tests, counts
any exception as its test's failure, and removes what the run made (the VMs are processes of
their own that outlive the daemon) or, after a failure, keeps it and says where. Each test
program is its own process, so the tally is this module's."""

import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback

from tesserad import Daemon
from websocket import WebSocket, unix_socket


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        """Counts one check; a failed one prints WHAT. Returns cond, so a test can stop
        early when later checks would only repeat the failure."""
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, flush=True)
        return cond


TALLY = Tally()
check = TALLY.check


def wait_booted(d, tenant, names, timeout):
    """Waits until each VM of names (tenant's) shows the default guest's ready line in its
    console log; returns the names that did not within timeout seconds."""
    left = set(names)
    deadline = time.time() + timeout
    while left and time.time() < deadline:
        for n in sorted(left):
            st, doc, _ = d.call("GET", "/api/v1/vms/%s/log?tenant=%s" % (n, tenant))
            if st == 200 and "TESSERA-GUEST-READY" in doc["log"]:
                left.discard(n)
        time.sleep(1)
    return left


class Console:
    """A VM's console over the daemon's websocket, for shell commands with a yes/no answer."""

    def __init__(self, d, tenant, vm):
        self.ws = WebSocket(unix_socket(d.sock, timeout=120),
                            "/api/v1/vms/%s/console?tenant=%s" % (vm, tenant), d.token)
        self.vm = vm
        self.seq = 0
        check(self.ws.status == 101, "console of %s: %d" % (vm, self.ws.status))

    def ask(self, command, timeout=60):
        """Runs command in the guest's shell; its stdout (up to a marker) and whether it
        exited 0. The marker is typed split ('MA''RK') so the echoed line never matches."""
        self.seq += 1
        tag = "%s-%d" % (self.vm, self.seq)
        self.ws.send_frame(2, ("%s; echo \"MA\"\"RK-%s-$?\"\n" % (command, tag)).encode())
        want = ("MARK-%s-" % tag).encode()
        got = self.ws.recv_until(want, timeout)
        got += self.ws.recv_until(b"\n", 5)
        m = re.search(rb"MARK-" + re.escape(tag.encode()) + rb"-(\d+)", got)
        return got.decode(errors="replace"), bool(m and m.group(1) == b"0")

    def close(self):
        self.ws.close()


def kill_vms(tmp):
    """Kills every VMM whose configuration lies under TMP (what a failed test left)."""
    subprocess.run(["pkill", "-9", "-f", "tessera run --config %s" % tmp],
                   stderr=subprocess.DEVNULL)


def summary(suite):
    print("%s: %d passed, %d failed" % (suite, TALLY.passed, TALLY.failed), flush=True)
    return 1 if TALLY.failed else 0


def skipped(suite, why):
    print("%s: skipped: %s" % (suite, why))
    return summary(suite)


def run_suite(suite, tests, only=(), prefix="tsr-sys-", daemon_args=(), prepare=None,
              cleanup=None):
    """Starts a tesserad on TMP/state (TMP a fresh folder named PREFIX...), then
    prepare(d) if given (a string it returns skips the suite with that reason), then each
    (name, fn) of TESTS that ONLY names (all when empty) as fn(d), printing "PASS|FAIL name
    (time)". Then stops the daemon, kills the VMs, calls cleanup(d) if given, and removes TMP
    unless something failed. A test finds TMP as os.path.dirname(d.state). Prints "SUITE: N
    passed, N failed" and returns the exit status."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    d = Daemon(os.path.join(tmp, "state"), daemon_args)
    try:
        d.start()
        why = prepare(d) if prepare else None
        if why:
            return skipped(suite, why)
        for name, fn in tests:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            before = TALLY.failed
            try:
                fn(d)
            except Exception as e:  # a test's exception fails that test, not the suite
                traceback.print_exc()
                check(False, "%s: %s: %s" % (name, type(e).__name__, e))
            print("%s %s (%.1fs)" % ("PASS" if TALLY.failed == before else "FAIL", name,
                                     time.monotonic() - t0), flush=True)
    except Exception as e:  # the daemon would not start, or prepare failed
        traceback.print_exc()
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        try:
            if d.proc and d.proc.poll() is None:
                d.stop()
        except Exception:
            pass
        kill_vms(tmp)
        if cleanup:
            cleanup(d)
        if TALLY.failed:
            log = os.path.join(tmp, "tesserad.log")
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    print("tesserad's log (end):\n" + f.read()[-3000:])
            print("logs in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary(suite)
