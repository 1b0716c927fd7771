#!/usr/bin/env bash
# Runs unit-test programs and sums their "N passed, N failed" lines into one closing line.
set -u
passed=0 failed=0 broken=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out"
        echo "unit: $t printed no result line (exit $rc)"
        broken=$((broken + 1))
        continue
    fi
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
    passed=$((passed + p)) failed=$((failed + f))
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out"
        [ "$f" -eq 0 ] && broken=$((broken + 1))
    else
        echo "$line"
    fi
done
failed=$((failed + broken))
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
