"""Drive a VM's serial console from a script: start it, wait for text, send input, time it.

Used by the guest tests and the benchmarks, for Tessera and QEMU alike, so both are measured
by the same code. Output is copied to a log file as it arrives, so a failing test can show
what the guest printed.
"""

import os
import re
import select
import signal
import subprocess
import time


class VMError(Exception):
    pass


# CPU_ENGINE=NAME: every `tessera run` started here that names no engine and takes its
# machine from no stream (--restore, --incoming carry theirs) runs on that engine, so that
# a whole guest test file runs on the interpreter with CPU_ENGINE=interp (the default engine
# is the JIT on x86-64 hosts).
CPU_ENGINE = os.environ.get("CPU_ENGINE")


def with_engine(argv):
    if (CPU_ENGINE and len(argv) > 1 and argv[1] == "run"
            and os.path.basename(argv[0]).startswith("tessera")
            and not {"--cpu-engine", "--restore", "--incoming"} & set(argv)):
        return [argv[0], "run", "--cpu-engine", CPU_ENGINE, *argv[2:]]
    return argv


class VM:
    def __init__(self, argv, log_path=None, echo=False, pass_fds=()):
        argv = with_engine(argv)
        self.argv = argv
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self.buf = b""
        self.pos = 0  # everything before pos has been consumed by expect()
        self.log = open(log_path, "wb") if log_path else None
        self.echo = echo
        os.set_blocking(self.proc.stdout.fileno(), False)

    def _read(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ready, _, _ = select.select([self.proc.stdout], [], [], min(remaining, 0.5))
        if not ready:
            return
        chunk = self.proc.stdout.read()
        if not chunk:
            time.sleep(0.01)  # EOF: the process is exiting; expect() notices via poll()
            return
        self.buf += chunk
        if self.log:
            self.log.write(chunk)
            self.log.flush()
        if self.echo:
            os.write(1, chunk)

    def expect(self, pattern, timeout):
        """Waits until `pattern` (bytes regex) appears after the last match. Returns
        (match, seconds since start)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m, time.monotonic() - self.start
            if self.proc.poll() is not None:
                # drain what is left
                try:
                    rest = self.proc.stdout.read()
                except Exception:
                    rest = None
                if rest:
                    self.buf += rest
                    if self.log:
                        self.log.write(rest)
                    continue
                raise VMError("VM exited (status %s) before %r appeared" % (self.proc.returncode, pattern))
            if time.monotonic() >= deadline:
                raise VMError("timed out after %ss waiting for %r" % (timeout, pattern))
            self._read(deadline)

    def drain(self, seconds):
        """Reads console output for `seconds` (into the log), waiting for nothing in it: for a
        caller that watches the guest some other way, so the output never backs up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            self._read(deadline)

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def run(self, command, timeout=60, marker=None):
        """Runs a shell command in the guest and returns its output (between two markers)."""
        tag = marker or "TSR%d" % int(time.monotonic() * 1000)
        self.send("echo %s-BEGIN; %s; echo %s-END\n" % (tag, command, tag))
        self.expect(("\n%s-BEGIN" % tag).encode(), timeout)
        m, _ = self.expect(("(?s)(.*?)\n%s-END" % tag).encode(), timeout)
        return m.group(1).decode(errors="replace").replace("\r", "").strip("\n")

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise VMError("VM did not exit within %ss" % timeout)
        try:
            rest = self.proc.stdout.read()
            if rest:
                self.buf += rest
                if self.log:
                    self.log.write(rest)
        except Exception:
            pass
        return rc

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self):
        self.kill()
        if self.log:
            self.log.close()


def poweroff(v):
    """Powers the guest off from its shell and checks that the VMM exits with status 0."""
    v.send("poweroff\n")
    rc = v.wait(60)
    v.close()
    assert rc == 0, "exit status %d after poweroff" % rc
