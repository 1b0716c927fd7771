#!/usr/bin/env bash
# Every test level, cheapest first; one closing line "N passed, N failed" for the whole run.
# Each stage prints its own result line; a stage that cannot run counts as failed.
set -u
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
total_pass=0 total_fail=0
start=$(date +%s)

stage() {
    local name=$1; shift
    local log; log=$(mktemp)
    printf '\n=== %s (%ds elapsed)\n' "$name" $(( $(date +%s) - start ))
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -n "$line" ]; then
        local p f
        p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
        f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
        total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then total_fail=$((total_fail + 1)); fi
    else
        if [ "$rc" -eq 0 ]; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); fi
    fi
}

stage "format"      make -s check-format
stage "layering"    python3 tests/layering/check.py
stage "build"       make -s -j"$JOBS"
# Before the unit tests: test_vmproc boots the default guest (cached, seconds once built).
stage "guest build" guest/build.sh
# The Debian template (cached outside the clone; a cold build is mostly downloads and
# qemu-user) builds in the background while the other stages run; stage "debian" waits for it.
# (A stage runs in a pipeline's subshell, which cannot wait for this shell's children: the
# build leaves its exit status in a file instead.)
debian_log=$(mktemp) debian_rc=$(mktemp)
(nice -n 10 templates/debian/build.sh >"$debian_log" 2>&1; echo $? >"$debian_rc") &
debian_stage() {
    while [ ! -s "$debian_rc" ]; do sleep 5; done
    if [ "$(cat "$debian_rc")" != 0 ]; then
        tail -n 40 "$debian_log"
        echo "debian: 0 passed, 1 failed (templates/debian/build.sh failed)"
        return 1
    fi
    tail -n 3 "$debian_log"
    python3 tests/guest/test_debian.py
}
stage "unit"        make -s -j"$JOBS" unit
stage "unit (ASan+UBSan)" make -s -j"$JOBS" unit-asan
stage "isa"         make -s -j"$JOBS" isa
stage "isa (ASan+UBSan)" make -s -j"$JOBS" isa-asan
if [ "$(uname -m)" = x86_64 ]; then # the JIT engine exists on x86-64 hosts only
    stage "isa (jit)" make -s -j"$JOBS" isa-jit
fi
stage "web"         make -s web-test
stage "cli"         tests/cli/run.sh
stage "daemon"      python3 tests/system/test_daemon.py
stage "cli client"  python3 tests/system/test_cli_client.py
stage "openapi"     python3 tests/system/test_openapi.py
stage "daemon http" python3 tests/system/test_daemon_http.py
stage "cli console" python3 tests/system/test_cli_console.py
stage "daemon vms"  python3 tests/system/test_daemon_vms.py
stage "resources"   python3 tests/system/test_resources.py
stage "history"     python3 tests/system/test_history.py
stage "networks"    python3 tests/system/test_networks.py
stage "secgroups"   python3 tests/system/test_secgroups.py
stage "routers"     python3 tests/system/test_routers.py
stage "web browser" python3 tests/system/web/test_web.py
stage "web admin"   python3 tests/system/web/test_web_admin.py
stage "web metrics" python3 tests/system/web/test_web_metrics.py
stage "overlay"     python3 tests/system/test_overlay.py
stage "fuzz"        tests/fuzz/run.sh
stage "hostile"     tests/hostile/run.sh
stage "block crash" tests/block/crash.sh
stage "guest"       tests/guest/run.sh
stage "devices"     python3 tests/guest/test_devices.py
stage "net"         python3 tests/guest/test_net.py
stage "limits"      python3 tests/guest/test_limits.py
stage "migrate"     python3 tests/guest/test_migrate.py
stage "config"      python3 tests/guest/test_config.py
stage "pool"        python3 tests/guest/test_pool.py
stage "seed"        python3 tests/guest/test_seed.py
stage "debian"      debian_stage

printf '\n=== total (%ds)\n' $(( $(date +%s) - start ))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
