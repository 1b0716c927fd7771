"""A VM boots with a linked clone from a storage pool (src/daemon/pool.h) as its disk.

An ext2 image is imported into a pool as the template `_shared/base` (qcow2); `t1/vm` is a
linked clone of it, which must cost under 1 MiB and name its backing file relative to the
pool, as `tessera run` and `qemu-img` resolve it. The default guest boots with the clone,
mounts it, reads the template's file and writes its own; afterwards `qemu-img check` is clean,
the template is unchanged, and a full clone of the VM's disk reads the same as it without a
backing file. The pool is driven by tests/guest/pool_tool.c, built here against the library.

Prints PASS/FAIL per test; the last line is "pool: N passed, N failed"."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from testkit import run_tests  # noqa: E402
from vmdrive import VM, poweroff  # noqa: E402

TESSERA = os.path.abspath(os.environ.get("TESSERA", "build/tessera"))
LOGS = os.path.abspath("build/test-logs")
BOOT = float(os.environ.get("GUEST_BOOT_TIMEOUT", "180"))
TOOL = os.path.abspath("build/pool_tool")

tmp = tempfile.mkdtemp(prefix="tessera-pooltest-")
pool = os.path.join(tmp, "pool")


def build_tool():
    libs = subprocess.run(["make", "-s", "print-libs"], check=True,
                          stdout=subprocess.PIPE).stdout.decode().split()
    subprocess.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-Isrc", "-o", TOOL,
                    "tests/guest/pool_tool.c", "-Wl,--whole-archive", "build/libtessera.a",
                    "-Wl,--no-whole-archive", *libs], check=True)


def tool(*args):
    r = subprocess.run([TOOL, pool, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.returncode == 0, "pool_tool %s: %s" % (" ".join(args), r.stdout.decode())
    return r.stdout.decode().strip()


def test_linked_clone_boot():
    d = os.path.join(tmp, "base.d")
    os.makedirs(d)
    with open(os.path.join(d, "base.txt"), "w") as f:
        f.write("from-pool-template\n")
    raw = os.path.join(tmp, "base.raw")
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", d, raw, "32M"], check=True,
                   stdout=subprocess.DEVNULL)
    tool("import", "_shared/base", "qcow2", raw)
    tool("clone-linked", "_shared/base", "t1/vm")
    base, disk = tool("path", "_shared/base"), tool("path", "t1/vm")
    assert os.stat(disk).st_blocks * 512 < 1 << 20, "linked clone costs %d bytes" % (
        os.stat(disk).st_blocks * 512)
    info = subprocess.run(["qemu-img", "info", disk], check=True,
                          stdout=subprocess.PIPE).stdout.decode()
    assert "backing file: ../_shared/base.qcow2" in info, info
    base_sum = hashlib.sha256(open(base, "rb").read()).hexdigest()
    v = VM([TESSERA, "run", "--disk", disk], log_path="%s/pool_boot.log" % LOGS)
    try:
        v.expect(rb"TESSERA-GUEST-READY", BOOT)
        out = v.run("mkdir -p /mnt && mount /dev/vda /mnt && cat /mnt/base.txt && "
                    "echo mine > /mnt/own.txt && sync && umount /mnt && echo DONE")
        assert "from-pool-template" in out and "DONE" in out, out
        poweroff(v)
    finally:
        v.close()
    subprocess.run(["qemu-img", "check", "-q", disk], check=True)
    assert hashlib.sha256(open(base, "rb").read()).hexdigest() == base_sum, "template changed"
    tool("clone-full", "t1/vm", "t1/copy")
    copy = tool("path", "t1/copy")
    subprocess.run(["qemu-img", "compare", "-q", disk, copy], check=True)
    info = subprocess.run(["qemu-img", "info", copy], check=True,
                          stdout=subprocess.PIPE).stdout.decode()
    assert "backing file" not in info, info


def main():
    os.makedirs(LOGS, exist_ok=True)
    build_tool()
    try:
        return run_tests("pool", [("linked_clone_boot", test_linked_clone_boot)], sys.argv[1:],
                         LOGS + "/pool_*.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
