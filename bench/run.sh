#!/usr/bin/env bash
# Tessera against QEMU (TCG) on the same guest, in one run; prints medians and ratios.
#   bench/run.sh            CPU: boot time and a CPU-bound program (bench/bench.py)
#   bench/run.sh cpu        bare-metal CPU kernels, interp vs jit vs QEMU (bench/cpu.py)
#   bench/run.sh io         disk and network throughput (bench/bench_io.py)
#   bench/run.sh net        VM-to-VM throughput over a bridge and taps (bench/bench_net.py)
#   bench/run.sh migrate    live migration and snapshot save/restore (bench/bench_migrate.py)
#   bench/run.sh daemon     tesserad creating VMs from a template (bench/bench_daemon.py)
#   bench/run.sh debian     the Debian template's boot to its first SSH login (bench/bench_debian.py)
#   bench/run.sh smp        N copies of a program on N harts against one (bench/bench_smp.py)
#   bench/run.sh resources  shares, limits and reservations measured (bench/bench_resources.py)
# Extra arguments go to the script (--runs N, --smp N, --mem SIZE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = migrate ]; then
    shift
    exec python3 bench/bench_migrate.py "$@"
fi
if [ "${1:-}" = daemon ]; then
    shift
    exec python3 bench/bench_daemon.py "$@"
fi
if [ "${1:-}" = cpu ]; then
    shift
    exec python3 bench/cpu.py "$@"
fi
if [ "${1:-}" = debian ]; then
    shift
    exec python3 bench/bench_debian.py "$@"
fi
if [ "${1:-}" = smp ]; then
    shift
    exec python3 bench/bench_smp.py "$@"
fi
if [ "${1:-}" = resources ]; then
    shift
    exec python3 bench/bench_resources.py "$@"
fi
if [ "${1:-}" = net ]; then
    shift
    exec python3 bench/bench_net.py "$@"
fi
if [ "${1:-}" = io ]; then
    shift
    exec python3 bench/bench_io.py "$@"
fi
exec python3 bench/bench.py "$@"
