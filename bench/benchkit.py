"""What the benchmarks share: the guest both VMMs boot (the same OpenSBI, kernel and
initramfs), the command lines that boot it, and the check that it has been built."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))

BIOS = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
KERNEL = "build/guest/Image"
INITRD = "build/guest/initramfs.cpio.gz"
APPEND = "console=ttyS0"
READY = rb"TESSERA-GUEST-READY"
TESSERA = "build/tessera"


def tessera_argv(mem, extra=()):
    return [TESSERA, "run", "--bios", BIOS, "--kernel", KERNEL, "--initrd", INITRD, "--append",
            APPEND, "--mem", mem] + list(extra)


def qemu_argv(mem, extra=()):
    """QEMU's `virt` with the console on stdio; `extra` adds the monitor, devices, -smp."""
    return ["qemu-system-riscv64", "-M", "virt", "-m", mem, "-bios", BIOS, "-kernel", KERNEL,
            "-initrd", INITRD, "-append", APPEND, "-display", "none", "-serial",
            "stdio"] + list(extra)


def peak_rss_mb(pid):
    """The process's peak resident set (VmHWM of /proc/PID/status), in MB (10^6 bytes)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("/proc/%d/status has no VmHWM" % pid)


def need_guest():
    for f in (KERNEL, INITRD, BIOS, TESSERA):
        if not os.path.exists(f):
            sys.exit("bench: %s is missing (run `make` and guest/build.sh)" % f)
