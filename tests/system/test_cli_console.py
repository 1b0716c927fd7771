#!/usr/bin/env python3
"""`tessera vm console NAME` end to end (issue 9, docs/cli.md "The console"): build/tesserad on a
fresh state directory starts a VM from the shipped busybox template (guest/build.sh first), and
build/tessera, on a pseudo-terminal as a user would run it, attaches over the daemon's unix
socket with --token-file: the guest's output shows, a command typed runs in the guest and its
output comes back, Ctrl-A x detaches with exit status 0, the terminal's modes restored, and the
VM runs on. From a pipe, the input is sent and the end of input ends the session with exit
status 0. The VM stopping ends an attached session with the daemon's reason; a stopped VM's
console is refused with 409.
Prints "cli-console: N passed, N failed"."""

import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from syskit import check, run_suite, summary  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESSERA = os.environ.get("TESSERA", os.path.join(ROOT, "build", "tessera"))
TIMEOUT = float(os.environ.get("TESSERA_BOOT_TIMEOUT", "120"))



def read_until(fd, want, timeout):
    """Reads fd until want shows (or the end, or timeout seconds); returns all read."""
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side closed
            break
        if not chunk:
            break
        got += chunk
    return got


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def attach(argv, env):
    """build/tessera on a new pseudo-terminal: (process, master fd, slave fd, the terminal's
    modes before it started)."""
    master, slave = pty.openpty()
    modes = termios.tcgetattr(slave)
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    return p, master, slave, modes


def detach(p, master, slave):
    if p.poll() is None:
        p.kill()
        p.wait()
    os.close(master)
    os.close(slave)


def run(d, tmp):
    d.ok("POST", "/api/v1/tenants", body={"name": "acme"})
    d.wait_op(d.ok("POST", "/api/v1/vms?tenant=acme",
                   body={"name": "web", "template": "busybox", "start": True}))
    tok = d.user("acme", "opal", "operator")
    opfile = os.path.join(tmp, "operator.token")
    with open(opfile, "w") as f:
        f.write(tok + "\n")
    argv = [TESSERA, "--host", "unix:" + d.sock, "--token-file", opfile, "vm", "console", "web"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}

    # On a terminal, as an operator of the VM's tenant.
    p, master, slave, before = attach(argv, env)
    try:
        out = read_until(master, b"TESSERA-GUEST-READY", TIMEOUT)
        check(b"TESSERA-GUEST-READY" in out, "the guest's boot output on the terminal: %r"
              % out[-300:])
        os.write(master, b"echo con''sole-ok\r")
        out = read_until(master, b"console-ok", 60)
        check(b"console-ok" in out, "a typed command's output: %r" % out[-300:])
        check(termios.tcgetattr(slave) != before, "the terminal is in raw mode while attached")
        os.write(master, b"\x01x")
        rc = wait_exit(p, 20)
        check(rc == 0, "Ctrl-A x detaches with exit status 0: %s" % rc)
        out = read_until(master, b"keeps running", 5)
        check(b"detached (the VM keeps running)" in out, "the detach is said: %r" % out[-200:])
        check(termios.tcgetattr(slave) == before, "the terminal's modes are restored")
    finally:
        detach(p, master, slave)
    vm = d.ok("GET", "/api/v1/vms/web?tenant=acme")
    check(vm["state"] == "running", "the VM runs on after a detach: %s" % vm["state"])

    # From a pipe: the input is sent as it is, the end of input ends the session. The output
    # may come after the close, so the console log (GET .../log) shows that the command ran.
    r = subprocess.run(argv, input=b"echo pi''ped\n", capture_output=True, env=env, timeout=60)
    check(r.returncode == 0, "piped console: exit %d, stderr %r" % (r.returncode, r.stderr))
    log, deadline = "", time.time() + 60
    while "\npiped" not in log and time.time() < deadline:
        log = d.ok("GET", "/api/v1/vms/web/log?tenant=acme")["log"]
        time.sleep(0.5)
    check("\npiped" in log, "the piped command ran in the guest: %r" % log[-300:])

    # The VM stopping ends the session: the daemon's reason is printed, exit status 0.
    p, master, slave, _ = attach(argv, env)
    try:
        read_until(master, b"Ctrl-A x detaches", 20)
        os.write(master, b"echo st''ill-here\r")
        check(b"still-here" in read_until(master, b"still-here", 60), "attached again")
        d.wait_op(d.ok("POST", "/api/v1/vms/web/actions/stop?tenant=acme"))
        rc = wait_exit(p, 30)
        out = read_until(master, b"console closed", 5)
        check(rc == 0 and b"the daemon closed the console: the VM's console closed" in out,
              "the VM's stop ends the session: exit %s, %r" % (rc, out[-200:]))
    finally:
        detach(p, master, slave)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=30)
    check(r.returncode == 1 and b"tessera: vm console: 409: " in r.stderr,
          "a stopped VM's console: exit %d, stderr %r" % (r.returncode, r.stderr))


def kill_by_pidfiles(d):
    # The VM is a process of its own that outlives the daemon: end any left.
    for root, _, files in os.walk(d.state):
        if "pid" in files:
            try:
                with open(os.path.join(root, "pid")) as f:
                    os.kill(int(f.read().split()[0]), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass


def main():
    for exe in (TESSERA, os.path.join(ROOT, "build", "tesserad")):
        if not os.access(exe, os.X_OK):
            print("cli-console: %s is missing (run make)" % exe)
            check(False, "%s is built" % exe)
            return summary("cli-console")
    return run_suite("cli-console",
                     [("console", lambda d: run(d, os.path.dirname(d.state)))],
                     prefix="tsr-clicon-", cleanup=kill_by_pidfiles)


if __name__ == "__main__":
    sys.exit(main())
