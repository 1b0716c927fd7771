#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.c, each names its build command on a
# "// build:" line) and runs each for FUZZ_SECONDS (default 20) from its saved corpus. A target
# passes when libFuzzer finds no crash, leak, timeout or sanitizer report in that time.
# A build line must sanitize undefined behaviour and make every report fatal
# (-fsanitize=...undefined... -fno-sanitize-recover=all): UBSan otherwise prints and goes on,
# and libFuzzer never sees a report as a failure.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-20}
pass=0 fail=0
mkdir -p build/fuzz-corpus
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    cmd=$(sed -n 's|^// build: ||p' "$src" | head -n 1)
    if [ -z "$cmd" ]; then
        echo "FAIL $name: no '// build:' line"; fail=$((fail + 1)); continue
    fi
    if ! grep -qE -- '-fsanitize=[a-z,]*undefined' <<<"$cmd" ||
            ! grep -qE -- '-fno-sanitize-recover=all( |$)' <<<"$cmd"; then
        echo "FAIL $name: its '// build:' line needs -fsanitize=...,undefined and" \
            "-fno-sanitize-recover=all so that undefined behaviour fails the run"
        fail=$((fail + 1)); continue
    fi
    if ! eval "$cmd" >"build/$name.build.log" 2>&1; then
        echo "FAIL $name: build failed (build/$name.build.log)"; fail=$((fail + 1)); continue
    fi
    corpus=build/fuzz-corpus/$name
    mkdir -p "$corpus"
    echo "fuzzing $name for ${secs}s"
    if "build/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="build/$name-" "$corpus" \
            >"build/$name.log" 2>&1; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "build/$name.log" | grep -oE '[0-9]+$')
        echo "PASS $name (${runs:-?} runs)"; pass=$((pass + 1))
    else
        echo "FAIL $name: see build/$name.log"; tail -20 "build/$name.log"; fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
