"""The Debian 13 cloud template (templates/debian/build.sh, docs/templates.md) boots under
Tessera and cloud-init provisions it from a NoCloud seed: the VM takes the seed's hostname, runs
systemd as PID 1, and the host logs in over SSH, through a user-networking port forward, with
the key the seed gave; a poweroff from inside ends the VMM with status 0.

The template is built on first use and cached (cold: many minutes, mmdebstrap under
qemu-user). The VM boots Debian's own kernel and initrd directly, on a qcow2 overlay of the
cached disk (tests/lib/cloudvm.py).

Each test prints PASS/FAIL; the last line is "debian: N passed, N failed". The console log goes
to build/test-logs/debian-NAME.log. DEBIAN_BOOT_TIMEOUT (default 1500 s) bounds the wait for
SSH: systemd and cloud-init under an interpreter on a slow, shared CI machine take minutes.
TESSERA_DEBIAN_TEMPLATE=DIR tests the template in DIR instead of building one.
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloudvm  # noqa: E402
from testkit import free_port, run_tests  # noqa: E402

LOGS = os.path.join(cloudvm.REPO, "build/test-logs")
BOOT = float(os.environ.get("DEBIAN_BOOT_TIMEOUT", "1500"))
HOSTNAME = "deb-test"

tmp = tempfile.mkdtemp(prefix="tessera-debiantest-")


def test_ssh_login():
    """Hostname from the seed, login with the seed's key, systemd as PID 1, clean poweroff."""
    tpl = cloudvm.build_debian()
    key, pub = cloudvm.keypair(tmp)
    seed = cloudvm.make_seed(tmp, "ssh_login", HOSTNAME, pub)
    port = free_port()
    os.makedirs(LOGS, exist_ok=True)
    v = cloudvm.boot(tpl, tmp, "ssh_login", port, seed, os.path.join(LOGS, "debian-ssh_login.log"))
    try:
        t = cloudvm.wait_for_ssh(v, port, key, BOOT)
        print("  first SSH login %.0fs after the VMM started" % t, flush=True)
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
        assert rc == 0, "exit status %d after poweroff" % rc
    finally:
        v.close()


TESTS = [("ssh_login", test_ssh_login)]

if __name__ == "__main__":
    try:
        rc = run_tests("debian", TESTS, sys.argv[1:], os.path.join(LOGS, "debian-%s.log"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)
