"""The Debian 13 cloud template (templates/debian/build.sh, docs/templates.md) as a user gets
it: tesserad registers it as the shared template debian-13, a VM is created from it through the
API with a cloud_init object (hostname, SSH key) and a port forward, and cloud-init provisions
it from the NoCloud seed the daemon made: the VM takes the seed's hostname, runs systemd as PID
1, and the host logs in over SSH with the key the seed gave; a poweroff from inside ends the
VM's process with status 0, which the daemon records.

The template is built on first use and cached (cold: many minutes, mmdebstrap under
qemu-user). The VM boots Debian's own kernel and initrd directly, on a linked clone of the
template's disk.

Each test prints PASS/FAIL; the last line is "debian: N passed, N failed". The console log goes
to build/test-logs/debian-NAME.log. DEBIAN_BOOT_TIMEOUT (default 1500 s) bounds the wait for
SSH: systemd and cloud-init under an interpreter on a slow, shared CI machine take minutes.
TESSERA_DEBIAN_TEMPLATE=DIR tests the template in DIR instead of building one.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloudvm  # noqa: E402
from tesserad import Daemon  # noqa: E402
from testkit import free_port, run_tests  # noqa: E402

LOGS = os.path.join(cloudvm.REPO, "build/test-logs")
BOOT = float(os.environ.get("DEBIAN_BOOT_TIMEOUT", "1500"))
HOSTNAME = "deb-test"

tmp = tempfile.mkdtemp(prefix="tessera-debiantest-")


class DaemonVM:
    """A VM of tesserad, looked at as tests/lib/cloudvm.py looks at a VMM process."""

    def __init__(self, d, name):
        self.d, self.name, self.start, self.returncode = d, name, time.monotonic(), None
        self.proc = self

    def poll(self):
        vm = self.d.ok("GET", "/api/v1/vms/" + self.name)
        if vm["state"] in ("stopped", "error"):
            self.returncode = vm["exit_status"]
            return self.returncode if self.returncode is not None else -1
        return None

    def drain(self, seconds):
        time.sleep(seconds)

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        return self.returncode

    def close(self):
        if self.poll() is None:
            self.d.wait_op(self.d.ok("POST", "/api/v1/vms/%s/actions/stop" % self.name))


def test_ssh_login():
    """Hostname from the seed, login with the seed's key, systemd as PID 1, clean poweroff."""
    cloudvm.build_debian()
    key, pub = cloudvm.keypair(tmp)
    port = free_port()
    os.makedirs(LOGS, exist_ok=True)
    d = Daemon(os.path.join(tmp, "state"))
    d.start(timeout=300)  # the first start imports the template's disk into the pool
    v = None
    try:
        names = [t["name"] for t in d.ok("GET", "/api/v1/templates")["templates"]]
        assert "debian-13" in names, "tesserad registered %s, not debian-13" % names
        vm = d.ok("POST", "/api/v1/vms?tenant=", body={
            "name": "deb", "template": "debian-13", "start": True,
            "port_forwards": [{"host_port": port, "guest_port": 22}],
            "cloud_init": {"hostname": HOSTNAME, "ssh_keys": [pub.strip()]}})
        v = DaemonVM(d, "deb")
        d.wait_op(vm)
        t = cloudvm.wait_for_ssh(v, port, key, BOOT)
        print("  first SSH login %.0fs after the start request" % t, flush=True)
        # What the VM looks like once cloud-init has finished with the seed.
        r = cloudvm.ssh_retry(
            v, port, key, "cloud-init status --wait | tail -n 1 >&2; hostname; cat /proc/1/comm"
        )
        out = r.stdout.split()
        assert r.returncode == 0 and len(out) == 2, "ssh: status %d, output %r, errors %r" % (
            r.returncode, r.stdout, r.stderr)
        print("  cloud-init %s" % r.stderr.strip(), flush=True)
        assert out[0] == HOSTNAME, "hostname is %r, the seed says %r" % (out[0], HOSTNAME)
        assert out[1] == "systemd", "PID 1 is %r, not systemd" % out[1]
        rc = cloudvm.poweroff(v, port, key)
        assert rc == 0, "exit status %s after poweroff" % rc
        vm = d.ok("GET", "/api/v1/vms/deb")
        assert vm["state"] == "stopped" and vm["exit_status"] == 0, "the daemon says %s" % vm
    finally:
        try:
            if v:
                v.close()
        finally:
            with open(os.path.join(LOGS, "debian-ssh_login.log"), "w") as f:
                st, doc, _ = d.call("GET", "/api/v1/vms/deb/log")
                f.write(doc["log"] if st == 200 else "")
            d.stop()


TESTS = [("ssh_login", test_ssh_login)]

if __name__ == "__main__":
    try:
        rc = run_tests("debian", TESTS, sys.argv[1:], os.path.join(LOGS, "debian-%s.log"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)
