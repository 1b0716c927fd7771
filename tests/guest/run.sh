#!/usr/bin/env bash
# Guest tests: boot the default guest (Linux + BusyBox) on Tessera and check what it sees.
set -u
cd "$(dirname "$0")/../.."
exec python3 tests/guest/test_guest.py "$@"
