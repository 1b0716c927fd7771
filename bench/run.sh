#!/usr/bin/env bash
# Tessera against QEMU (TCG) on the same guest, in one run; prints medians and ratios.
#   bench/run.sh [--runs N] [--smp N] [--mem SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/bench.py "$@"
