"""What the benchmarks share: the guest both VMMs boot (the same OpenSBI, kernel and
initramfs), the command lines that boot it, and the check that it has been built."""

import os
import platform
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "lib"))
from testkit import proc_status_kb  # noqa: E402

BIOS = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
KERNEL = "build/guest/Image"
INITRD = "build/guest/initramfs.cpio.gz"
APPEND = "console=ttyS0"
READY = rb"TESSERA-GUEST-READY"
# The VMMs compared: Tessera with each CPU engine this host has, then QEMU.
VMMS = ["interp"] + (["jit"] if platform.machine() == "x86_64" else []) + ["qemu"]
TESSERA = "build/tessera"


def tessera_argv(mem, extra=()):
    return [TESSERA, "run", "--bios", BIOS, "--kernel", KERNEL, "--initrd", INITRD, "--append",
            APPEND, "--mem", mem] + list(extra)


def qemu_argv(mem, extra=()):
    """QEMU's `virt` with the console on stdio; `extra` adds the monitor, devices, -smp."""
    return ["qemu-system-riscv64", "-M", "virt", "-m", mem, "-bios", BIOS, "-kernel", KERNEL,
            "-initrd", INITRD, "-append", APPEND, "-display", "none", "-serial",
            "stdio"] + list(extra)


def vmm_argv(vmm, harts, mem):
    """The default guest with `harts` harts and `mem` of RAM, on Tessera with CPU engine `vmm`
    ("interp" or "jit") or, for "qemu", on QEMU."""
    if vmm != "qemu":
        return tessera_argv(mem, ["--cpus", str(harts), "--cpu-engine", vmm])
    return qemu_argv(mem, ["-smp", str(harts), "-monitor", "none"])


def timed(v, command, tag):
    """Runs command in the guest's shell; returns the host seconds between the markers the
    guest prints before and after it (tag-BEGIN, tag-END)."""
    v.send("echo %s-BEGIN; %s; echo %s-END\n" % (tag, command, tag))
    _, t0 = v.expect(rb"\n" + tag.encode() + rb"-BEGIN", 120)
    _, t1 = v.expect(rb"\n" + tag.encode() + rb"-END", 900)
    return t1 - t0


def peak_rss_mb(pid):
    """The process's peak resident set (VmHWM of /proc/PID/status), in MB (10^6 bytes)."""
    return proc_status_kb(pid, "VmHWM") * 1024 / 1e6


def need_guest():
    for f in (KERNEL, INITRD, BIOS, TESSERA):
        if not os.path.exists(f):
            sys.exit("bench: %s is missing (run `make` and guest/build.sh)" % f)
