"""The VM config document on the default guest (docs/vm-config.md): `tessera run --config`
boots it, and what `tessera vm describe` prints boots the same VM again.

Each test prints PASS/FAIL with a reason; the last line is "config: N passed, N failed".
Console logs go to build/test-logs/config_*.log.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from testkit import run_tests  # noqa: E402
from vmdrive import VM, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
GUEST = os.path.join(os.path.dirname(TESSERA), "guest")
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
READY = rb"TESSERA-GUEST-READY"

tmp = tempfile.mkdtemp(prefix="tessera-configtest-")


def path(name):
    return os.path.join(tmp, name)


def boot(name, *args):
    v = VM([TESSERA, "run", *args], log_path="%s/config_%s.log" % (LOGS, name))
    v.expect(READY, BOOT)
    return v


def describe(sock):
    out = subprocess.run([TESSERA, "vm", "describe", "--api-sock", sock], check=True,
                         stdout=subprocess.PIPE, timeout=30).stdout
    return json.loads(out)["config"]


def raw_disk(name, mib=8):
    with open(path(name), "wb") as f:
        f.truncate(mib << 20)
    return path(name)


def guest_view(v):
    """What the guest sees of the config: harts, RAM, its disk and its NIC."""
    cpus = v.run("grep -c ^processor /proc/cpuinfo").strip()
    mem_kib = int(v.run("awk '/MemTotal/ {print $2}' /proc/meminfo").strip())
    vda = v.run("cat /sys/block/vda/size").strip()
    eth0 = v.run("cat /sys/class/net/eth0/address").strip()
    return cpus, mem_kib, vda, eth0


def test_config_boot():
    """A hand-written document boots the default guest: 2 harts, 192M, a raw disk as vda,
    a user-mode NIC with the MAC it names, the command line it gives."""
    doc = {
        "version": 1,
        "cpus": 2,
        "memory": "192M",
        "boot": {
            "kernel": os.path.join(GUEST, "Image"),
            "initrd": os.path.join(GUEST, "initramfs.cpio.gz"),
            "cmdline": "console=ttyS0 tessera.config=yes",
        },
        "disks": [{"path": raw_disk("boot.img"), "format": "raw"}],
        "nics": [{"backend": "user", "mac": "52:54:00:ab:cd:ef"}],
    }
    with open(path("vm.json"), "w") as f:
        json.dump(doc, f, indent=2)
    v = boot("boot", "--config", path("vm.json"))
    try:
        cpus, mem_kib, vda, eth0 = guest_view(v)
        assert cpus == "2", "guest sees %r harts, want 2" % cpus
        assert 150 * 1024 < mem_kib <= 192 * 1024, "MemTotal %d KiB for 192M" % mem_kib
        assert vda == str((8 << 20) // 512), "vda has %r sectors, want 8 MiB" % vda
        assert eth0 == "52:54:00:ab:cd:ef", "eth0 address %r" % eth0
        cmdline = v.run("cat /proc/cmdline")
        assert "tessera.config=yes" in cmdline, "kernel command line %r" % cmdline
        out = v.run("echo config-ok-$((6 * 7))")
        assert "config-ok-42" in out, "console command printed %r" % out
    finally:
        poweroff(v)


def test_describe_roundtrip():
    """VM A from flags (a disk, a user NIC, an agent socket); its describe, saved as a file,
    boots VM B with --config; B describes itself exactly as A did and the guest sees the
    same machine."""
    api = path("api.sock")
    disk = raw_disk("rt.img")
    a = boot("roundtrip_a", "--cpus", "2", "--mem", "160M", "--disk", disk + ",format=raw",
             "--net", "user", "--agent-sock", path("agent.sock"), "--api-sock", api)
    try:
        doc_a = describe(api)
        view_a = guest_view(a)
    finally:
        poweroff(a)
    assert doc_a["disks"] == [{"path": disk, "format": "raw"}], "A's disks: %r" % doc_a["disks"]
    assert doc_a["nics"] == [{"backend": "user"}], "A's NICs: %r" % doc_a["nics"]
    assert doc_a["api_socket"] == api and doc_a["agent_socket"] == path("agent.sock")
    with open(path("described.json"), "w") as f:
        json.dump(doc_a, f)
    b = boot("roundtrip_b", "--config", path("described.json"))
    try:
        doc_b = describe(api)
        view_b = guest_view(b)
    finally:
        poweroff(b)
    assert doc_b == doc_a, "B describes\n%s\nA described\n%s" % (
        json.dumps(doc_b, indent=1), json.dumps(doc_a, indent=1))
    assert view_b == view_a, "B's guest sees %r, A's saw %r" % (view_b, view_a)


def main():
    os.makedirs(LOGS, exist_ok=True)
    tests = [
        ("config_boot", test_config_boot),
        ("describe_roundtrip", test_describe_roundtrip),
    ]
    try:
        return run_tests("config", tests, sys.argv[1:], LOGS + "/config_*.log (%s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
