#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running VM: installs the dependencies, builds Tessera,
# builds (or takes from the cache) the default guest, then boots it with the console on this
# terminal. Ctrl-A x leaves; `poweroff` in the guest ends it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies (Debian packages)"
scripts/install-deps.sh
step "Building tessera"
make -j"$(nproc)"
step "Building the default guest (first time: about 15 minutes; then cached)"
guest/build.sh
step "Booting the default guest: build/tessera run"
exec build/tessera run
