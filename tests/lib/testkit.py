"""What the guest-level test programs share: picking tests by name from the command line,
running each with its time and a PASS/FAIL line that points at its logs, the closing
"SUITE: N passed, N failed" line that tests/run-all.sh counts, a free TCP port, and what
/proc says of a process (its memory, its CPU time), for the tests and the benchmarks."""

import os
import socket
import subprocess
import time

from vmdrive import VMError

FAILURES = (AssertionError, VMError, subprocess.CalledProcessError, OSError)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_status_kb(pid, field):
    """A size field of /proc/PID/status (VmHWM, VmRSS, ...) in kB; None where it has none (a
    process that has exited)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def proc_cpu_seconds(pid, children=False):
    """The user plus system CPU time process pid has used (all its threads), with that of its
    reaped children when `children` is set, in seconds (proc(5): stat fields 14 to 17)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def run_tests(suite, tests, only, logs):
    """Runs `tests`, a list of (name, function) or (name, function, hidden). With names in
    `only`, runs those (a name also selects every test named NAME_...); else every test that
    is not hidden. `logs` % name says where a failing test's logs are. Returns the exit
    status: 0 when all passed, 1 when one failed, 2 for an unknown name."""
    tests = [t if len(t) == 3 else (t[0], t[1], False) for t in tests]
    names = [t[0] for t in tests]

    def selects(o, n):
        return n == o or n.startswith(o + "_")

    unknown = [o for o in only if not any(selects(o, n) for n in names)]
    if unknown:
        print("unknown test(s) %s; tests: %s" % (", ".join(unknown), ", ".join(names)))
        return 2
    results = []
    for name, fn, hidden in tests:
        if (any(selects(o, name) for o in only)) if only else not hidden:
            t0 = time.monotonic()
            try:
                fn()
                results.append(True)
                print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            except FAILURES as e:
                results.append(False)
                print("FAIL %s: %s (logs: %s)" % (name, e, logs % name), flush=True)
            except Exception as e:  # a test's own bug fails that test, not the suite
                results.append(False)
                print("FAIL %s: %s: %s (logs: %s)" % (name, type(e).__name__, e, logs % name),
                      flush=True)
    passed = sum(results)
    print("%s: %d passed, %d failed" % (suite, passed, len(results) - passed))
    return 0 if passed == len(results) else 1
