"""cloud-init NoCloud seed disks (src/daemon/seed.c) and the default guest applying them
(guest/agent/seed.c, run by rcS as `tessera-agent seed`).

- seed_yaml: blkid finds the image as cloud-init looks for it (iso9660, LABEL=cidata), and
  cloud-init's own YAML parser (PyYAML) reads back exactly the hostile strings seed_build()
  wrote; no guest.
- seed_boot: the default guest boots with the seed as its second disk (raw, read-only): the
  host name, root's authorized_keys (content and modes), a static address, route and name
  server, and the user-data (plain text, delivered as cloud-config runcmd) ran once.
- seed_script_boot: a "#!" user-data script runs as given, once DHCP has given a default
  route; a corrupt cidata disk is reported on the console and the guest still boots.

Each test prints PASS/FAIL; the last line is "seed: N passed, N failed". Console logs go to
build/test-logs/seed_*.log.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from testkit import run_tests  # noqa: E402
from vmdrive import VM, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
READY = rb"TESSERA-GUEST-READY"
MKSEED = os.path.abspath("build/tests/mkseed")

ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
           " alice@example")
RSA = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAQQBkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoe"
       "IiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKj bob's \"key\": #1")

tmp = tempfile.mkdtemp(prefix="tessera-seedtest-")


def path(name):
    return os.path.join(tmp, name)


def build_mkseed():
    if not os.path.exists(MKSEED) or os.path.getmtime(MKSEED) < max(
            os.path.getmtime(f) for f in ("tests/guest/mkseed.c", "src/daemon/seed.c",
                                          "src/daemon/seed.h")):
        os.makedirs(os.path.dirname(MKSEED), exist_ok=True)
        subprocess.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                        "-Isrc", "-o", MKSEED, "tests/guest/mkseed.c", "src/daemon/seed.c", "-ljansson"],
                       check=True)


def mkseed(name, *args):
    out = path(name)
    r = subprocess.run([MKSEED, out, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, "mkseed %s: %s" % (" ".join(args), r.stdout.decode())
    return out


def extract(iso, name):
    d = path(name)
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", d],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


def boot(name, *args):
    blank = path(name + "-root.img")
    with open(blank, "wb") as f:
        f.truncate(8 << 20)
    # As the daemon attaches it: the VM's own disk first, the seed second.
    v = VM([TESSERA, "run", "--disk", blank, *args], log_path="%s/seed_%s.log" % (LOGS, name))
    m, _ = v.expect(rb"tessera-agent seed: [^\n]*\n", BOOT)
    v.expect(READY, BOOT)
    return v, m.group(0).decode(errors="replace").strip()


def wait_file(v, p, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = v.run("cat %s 2>/dev/null" % p)
        if out:
            return out
        time.sleep(1)
    raise AssertionError("%s did not appear in the guest within %ss" % (p, timeout))


def test_seed_yaml():
    """PyYAML, the parser cloud-init uses, reads the hostile values back unchanged."""
    try:
        import yaml
    except ImportError:
        raise AssertionError("python3-yaml is missing (scripts/install-deps.sh installs it)")
    iid = "a\": b\\ #c '\u2028' \ufeff ~ - [x] {y} & * ! | >"
    text = "x: y\n---\n...\n\"\\\x7f\x85\u2029\U0001F600\n"
    with open(path("hostile.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    iso = mkseed("hostile.iso", "--id", iid, "--hostname", "h.example", "--key", RSA,
                 "--user-data", path("hostile.txt"), "--net", "static", "--mac",
                 "52:54:00:AA:bb:01", "--address", "10.0.2.77/24", "--gateway", "10.0.2.2",
                 "--dns", "10.0.2.3")
    # cloud-init finds the disk with blkid (util.find_devs_with "LABEL=cidata", TYPE iso9660).
    probe = subprocess.run(["blkid", "-p", "-o", "export", iso], stdout=subprocess.PIPE,
                           check=True).stdout.decode().split("\n")
    assert "LABEL=cidata" in probe and "TYPE=iso9660" in probe, probe
    d = extract(iso, "hostile")
    with open(os.path.join(d, "meta-data"), "rb") as f:
        meta = yaml.safe_load(f)
    with open(os.path.join(d, "user-data"), "rb") as f:
        raw = f.read()
    with open(os.path.join(d, "network-config"), "rb") as f:
        net = yaml.safe_load(f)
    user = yaml.safe_load(raw)
    assert raw.startswith(b"#cloud-config\n"), raw[:40]
    assert meta == {"instance-id": iid, "local-hostname": "h.example", "public-keys": [RSA]}, meta
    assert user == {"hostname": "h.example", "ssh_authorized_keys": [RSA], "runcmd": [text]}, user
    assert net == {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": "52:54:00:aa:bb:01"}, "set-name": "eth0", "dhcp4": False,
        "addresses": ["10.0.2.77/24"], "routes": [{"to": "0.0.0.0/0", "via": "10.0.2.2"}],
        "nameservers": {"addresses": ["10.0.2.3"]}}}}, net
    # A refused value names its field and leaves no file.
    r = subprocess.run([MKSEED, path("bad.iso"), "--id", "i", "--hostname", "h", "--key",
                        ED25519 + "\nssh-rsa AAAA injected"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert r.returncode == 1 and b"cloud_init.ssh_keys[0]" in r.stdout, r.stdout
    assert not os.path.exists(path("bad.iso"))


def test_seed_boot():
    """Host name, keys, static network and user data reach the default guest."""
    script = ("echo \"ran as $(id -u) on $(hostname)\" >> /root/seed-ran\n"
              "ip -4 addr show dev eth0 >> /root/seed-net\n")
    with open(path("script.txt"), "w") as f:
        f.write(script)
    iso = mkseed("boot.iso", "--id", "vm-7", "--hostname", "seeded-vm.example.org",
                 "--key", ED25519, "--key", RSA, "--user-data", path("script.txt"),
                 "--net", "static", "--address", "10.0.2.77/24", "--gateway", "10.0.2.2",
                 "--dns", "10.0.2.3")
    v, line = boot("boot", "--disk", iso + ",format=raw,readonly=on", "--net", "user")
    try:
        assert "/dev/vdb" in line and "hostname seeded-vm" in line and "2 ssh keys" in line \
            and "static 10.0.2.77/24 on eth0" in line, line
        assert v.run("hostname") == "seeded-vm"
        assert v.run("cat /etc/hostname") == "seeded-vm"
        assert v.run("cat /root/.ssh/authorized_keys") == ED25519 + "\n" + RSA, \
            "authorized_keys differs"
        modes = v.run("stat -c '%a %U' /root/.ssh /root/.ssh/authorized_keys").split("\n")
        assert modes == ["700 root", "600 root"], modes
        assert wait_file(v, "/run/tessera-seed/user-data.status") == "exit 0"
        assert v.run("cat /root/seed-ran") == "ran as 0 on seeded-vm", "the script ran other than once"
        assert "inet 10.0.2.77/24" in v.run("cat /root/seed-net")
        assert "default via 10.0.2.2 dev eth0" in v.run("ip route")
        assert v.run("cat /etc/resolv.conf") == "nameserver 10.0.2.3"
        assert v.run("cat /run/tessera-seed/instance-id") == "vm-7"
        # DHCP stayed off: the seed's address is the only one.
        assert v.run("pidof udhcpc || echo none") == "none"
    finally:
        poweroff(v)


def test_seed_script_boot():
    """A "#!" script runs as given; a corrupt cidata disk is an error line, not a hang."""
    with open(path("script.sh"), "wb") as f:
        f.write(b"#!/bin/sh\nprintf '%s\\n' \"$0\" > /tmp/script-ran\n"
                b"ip route > /tmp/script-route\nexit 3\n")
    iso = mkseed("script.iso", "--id", "vm-8", "--hostname", "scripted", "--user-data",
                 path("script.sh"), "--net", "dhcp")
    # A copy whose root directory lies past the end of the image (both byte orders agree).
    with open(iso, "rb") as f:
        img = bytearray(f.read())
    bad = bytearray(img)
    lba = (len(bad) // 2048 + 5).to_bytes(4, "little")
    bad[32768 + 156 + 2:32768 + 156 + 10] = lba + lba[::-1]
    with open(path("corrupt.iso"), "wb") as f:
        f.write(bytes(bad))
    v, line = boot("script", "--disk", path("corrupt.iso") + ",format=raw,readonly=on")
    try:
        assert "/dev/vdb: root directory lies past the end of the image" in line, line
        assert v.run("hostname") == "tessera"
    finally:
        poweroff(v)
    v, line = boot("script2", "--disk", iso + ",format=raw,readonly=on", "--net", "user")
    try:
        assert "hostname scripted, 0 ssh keys, user-data script started" in line, line
        assert wait_file(v, "/run/tessera-seed/user-data.status") == "exit 3"
        assert v.run("cat /tmp/script-ran") == "/run/tessera-seed/user-data"
        # It waited for DHCP's default route, as cloud-init runs scripts once networked.
        assert "default via 10.0.2.2" in v.run("cat /tmp/script-route"), "ran before the network"
        assert v.run("test -e /root/.ssh/authorized_keys && echo yes || echo no") == "no"
    finally:
        poweroff(v)


def main():
    os.makedirs(LOGS, exist_ok=True)
    build_mkseed()
    tests = [
        ("seed_yaml", test_seed_yaml),
        ("seed_boot", test_seed_boot),
        ("seed_script_boot", test_seed_script_boot),
    ]
    try:
        return run_tests("seed", tests, sys.argv[1:], LOGS + "/seed_*.log (%s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
