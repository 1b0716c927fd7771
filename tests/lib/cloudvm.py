"""Boot a cloud template (docs/templates.md) under Tessera with a NoCloud seed and log in over
SSH: what tests/guest/test_debian.py and bench/bench_debian.py share, so that the test and the
benchmark boot the same VM the same way.

The seed is made with xorriso, as any NoCloud seed is: an ISO 9660 volume labelled "cidata"
holding meta-data and user-data. The VM runs on a qcow2 overlay of the template's disk, so the
cached template is never written.
"""

import json
import os
import subprocess
import time

from vmdrive import VM

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESSERA = os.path.abspath(os.environ.get("TESSERA", os.path.join(REPO, "build/tessera")))
DEBIAN = os.path.join(REPO, "build/templates/debian-13")
DEBIAN_USER = "debian"  # cloud-init's default user on Debian; the seed's keys go to it


def build_debian():
    """Builds the Debian template, or links the cached one; returns its template.json, read,
    with "dir" added: the directory its files are in. With TESSERA_DEBIAN_TEMPLATE set to a
    template's directory, uses that one and builds nothing."""
    d = os.environ.get("TESSERA_DEBIAN_TEMPLATE")
    if not d:
        subprocess.run([os.path.join(REPO, "templates/debian/build.sh")], check=True)
        d = DEBIAN
    d = os.path.realpath(d)
    with open(os.path.join(d, "template.json")) as f:
        tpl = json.load(f)
    tpl["dir"] = d
    return tpl


def keypair(d):
    """An ed25519 key pair in directory d: (private key path, public key line)."""
    key = os.path.join(d, "id_ed25519")
    if not os.path.exists(key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tessera-test", "-f", key],
            check=True,
        )
    with open(key + ".pub") as f:
        return key, f.read().strip()


def make_seed(d, name, hostname, pubkey):
    """Writes d/name.iso, a NoCloud seed: meta-data names the instance (a new id each time, so
    cloud-init treats every boot as a first boot) and its hostname; user-data (cloud-config)
    gives the default user the key. Returns its path."""
    src = os.path.join(d, name + "-seed")
    os.mkdir(src)
    with open(os.path.join(src, "meta-data"), "w") as f:
        f.write("instance-id: %s-%d\nlocal-hostname: %s\n" % (name, time.time_ns(), hostname))
    with open(os.path.join(src, "user-data"), "w") as f:
        f.write(
            "#cloud-config\nhostname: %s\nssh_pwauth: false\nssh_authorized_keys:\n  - %s\n"
            % (hostname, pubkey)
        )
    iso = os.path.join(d, name + ".iso")
    r = subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o", iso, src],
        capture_output=True, text=True,
    )
    # xorriso prints its banner even when quiet: show its output only when it fails.
    assert r.returncode == 0, "xorriso failed (status %d): %s" % (r.returncode, r.stderr.strip())
    return iso


def ssh(port, key, command, timeout=60):
    """Runs command as the template's user over SSH; returns the CompletedProcess."""
    return subprocess.run(
        [
            "ssh", "-i", key, "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR",
            "%s@127.0.0.1" % DEBIAN_USER, command,
        ],
        capture_output=True, text=True, timeout=timeout,
    )


def ssh_retry(v, port, key, command, timeout=300):
    """Runs command like ssh(), again while ssh itself fails (status 255): cloud-init restarts
    sshd after the first login can already have worked, and a connection made then is closed
    during the key exchange. Returns the first CompletedProcess whose status is not 255."""
    deadline = time.monotonic() + timeout
    while True:
        r = ssh(port, key, command, timeout=timeout)
        if r.returncode != 255 or time.monotonic() >= deadline or v.proc.poll() is not None:
            return r
        v.drain(2)


def boot(tpl, d, name, port, seed, log_path, cpus=None, vmm="tessera"):
    """Starts the template's VM (build_debian()'s result: template.json's defaults) on a new overlay d/name.qcow2 of its
    disk, with the seed as a second, read-only disk and host port `port` forwarded to the
    guest's SSH port. Returns the VM."""
    overlay = os.path.join(d, name + ".qcow2")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
         "-b", os.path.join(tpl["dir"], tpl["volume"]), overlay],
        check=True,
    )
    if vmm == "qemu":
        return VM(qemu_argv(tpl, overlay, seed, port, cpus), log_path=log_path)
    argv = [
        TESSERA, "run",
        "--kernel", os.path.join(tpl["dir"], tpl["boot"]["kernel"]),
        "--initrd", os.path.join(tpl["dir"], tpl["boot"]["initrd"]),
        "--append", tpl["boot"]["cmdline"],
        "--cpus", str(cpus or tpl["cpus"]),
        "--mem", "%dM" % (tpl["memory_bytes"] >> 20),
        "--disk", overlay + ",format=qcow2",
        "--disk", seed + ",format=raw,readonly=on",
        "--net", "user,hostfwd=tcp:127.0.0.1:%d-:22" % port,
        "--device", "rng",
    ]
    return VM(argv, log_path=log_path)


def qemu_argv(tpl, overlay, seed, port, cpus):
    """The same machine under qemu-system-riscv64 (TCG), for bench/bench_debian.py: Debian's
    OpenSBI (what Tessera loads when no --bios is given), the template's kernel, initrd and
    command line, the overlay then the seed as virtio-mmio disks (QEMU's virt board gives the
    first -device the first disk name, so root=/dev/vda is the overlay under both), user
    networking with the same port forward, and a virtio RNG."""
    return [
        "qemu-system-riscv64", "-M", "virt", "-display", "none", "-serial", "stdio",
        "-monitor", "none",
        "-bios", "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
        "-kernel", os.path.join(tpl["dir"], tpl["boot"]["kernel"]),
        "-initrd", os.path.join(tpl["dir"], tpl["boot"]["initrd"]),
        "-append", tpl["boot"]["cmdline"],
        "-smp", str(cpus or tpl["cpus"]),
        "-m", "%dM" % (tpl["memory_bytes"] >> 20),
        "-drive", "if=none,id=root,format=qcow2,file=" + overlay,
        "-device", "virtio-blk-device,drive=root",
        "-drive", "if=none,id=seed,format=raw,readonly=on,file=" + seed,
        "-device", "virtio-blk-device,drive=seed",
        "-netdev", "user,id=net,hostfwd=tcp:127.0.0.1:%d-:22" % port,
        "-device", "virtio-net-device,netdev=net",
        "-device", "virtio-rng-device",
    ]


def wait_for_ssh(v, port, key, timeout):
    """Tries to log in until it works; returns the seconds from the VM's start to the first
    login. Raises AssertionError when the VM exits or `timeout` seconds pass, with the last ssh
    error."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if v.proc.poll() is not None:
            raise AssertionError("the VM exited (status %s) before SSH answered" % v.proc.returncode)
        try:
            r = ssh(port, key, "true", timeout=90)
            if r.returncode == 0:
                return time.monotonic() - v.start
            last = r.stderr.strip()
        except subprocess.TimeoutExpired:
            last = "ssh timed out"
        # Read the console meanwhile: the log shows where the boot is, and output never backs up.
        v.drain(2)
    raise AssertionError("no SSH login within %ds; last ssh error: %s" % (timeout, last))


def poweroff(v, port, key):
    """Powers the guest off over SSH; returns the VMM's exit status."""
    # The poweroff closes the connection under ssh; its status does not matter, the VMM's does.
    # A connection that cloud-init's restart of sshd closed before the command ran fails the
    # same way (ssh's 255), so it is tried again until the VMM exits (ssh_retry stops then).
    try:
        ssh_retry(v, port, key, "sudo systemctl poweroff", timeout=120)
    except subprocess.TimeoutExpired:
        pass
    return v.wait(300)
