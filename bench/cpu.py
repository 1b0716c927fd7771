"""A CPU-bound bare-metal program (bench/cpu/kernels.c: sieve, CRC-32, integer matrix multiply,
a double-precision Mandelbrot loop) on Tessera with each CPU engine (the interpreter and, on
x86-64 hosts, the JIT) and on qemu-system-riscv64 (TCG), alternating runs so all see the same machine load. Each run is the
host wall time of the whole process and must end with the program's own pass code, so a wrong
result is a failure, not a number. A program that only reports success measures each VMM's
start-up and shut-down, which the "net" column subtracts. Prints each run, then medians and
ratios to QEMU.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from benchkit import VMMS

TESSERA = os.environ.get("TESSERA", "build/tessera")
SRC = "bench/cpu/kernels.c"
ELF = "build/bench/kernels.elf"
NULL_ELF = "build/bench/null.elf"
NULL_SRC = ".globl _start\n_start:\n li t0, 0x100000\n li t1, 0x5555\n sw t1, 0(t0)\n1: j 1b\n"
CROSS = os.environ.get("ISA_CROSS", "riscv64-linux-gnu-")


def build():
    cc = [CROSS + "gcc", "-O2", "-march=rv64gc", "-mabi=lp64d", "-nostdlib", "-nostartfiles",
          "-static", "-fno-pie", "-no-pie", "-mcmodel=medany", "-ffreestanding",
          "-ffp-contract=off", "-fno-math-errno",
          "-Wl,--no-relax", "-Wl,--build-id=none", "-T", "tests/isa/link.ld"]
    os.makedirs(os.path.dirname(ELF), exist_ok=True)
    if not os.path.exists(ELF) or os.path.getmtime(ELF) < os.path.getmtime(SRC):
        subprocess.run(cc + ["-o", ELF, SRC], check=True)
    if not os.path.exists(NULL_ELF):
        subprocess.run(cc + ["-x", "assembler", "-o", NULL_ELF, "-"], input=NULL_SRC.encode(),
                       check=True)


def argv_for(vmm, elf):
    if vmm == "qemu":
        return ["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-bios", elf]
    return [TESSERA, "run", "--cpu-engine", vmm, "--bios", elf, "--mem", "128M"]


def one_run(vmm, elf=ELF):
    t0 = time.monotonic()
    r = subprocess.run(argv_for(vmm, elf), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=600)
    t = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit("bench cpu: %s exited %d (1 sieve, 2 crc32, 3 matmul, 4 fploop wrong)\n%s"
                 % (vmm, r.returncode, r.stderr.decode(errors="replace")))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build()
    res = {vmm: [] for vmm in VMMS}
    null = {vmm: [] for vmm in VMMS}
    print("bench cpu: %d runs each; %s (sieve 2^22, CRC-32 of 4 MiB, 96x96 int matmul x12, "
          "Mandelbrot 256x160 x256 doubles)"
          % (args.runs, ELF))
    for i in range(args.runs):
        for vmm in VMMS:
            t = one_run(vmm)
            n = one_run(vmm, NULL_ELF)
            res[vmm].append(t)
            null[vmm].append(n)
            name = vmm if vmm == "qemu" else "tessera " + vmm
            print("  run %d/%d %-15s %7.3fs  (start-up %.3fs)" % (i + 1, args.runs, name, t, n),
                  flush=True)
    q = statistics.median(res["qemu"])
    qn = q - statistics.median(null["qemu"])
    print()
    print("%-16s %9s %6s %9s %6s" % ("median", "total", "ratio", "net", "ratio"))
    for vmm in VMMS:
        t = statistics.median(res[vmm])
        n = t - statistics.median(null[vmm])
        name = vmm if vmm == "qemu" else "tessera " + vmm
        print("%-16s %8.3fs %5.2fx %8.3fs %5.2fx" % (name, t, t / q, n, n / qn))
    print("(ratio = time / qemu time; below 1 means faster than QEMU)")


if __name__ == "__main__":
    main()
