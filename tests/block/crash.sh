#!/usr/bin/env bash
# Crash consistency of the qcow2 driver: tests/block/crash_writer.c writes and flushes in a
# loop and is killed with SIGKILL at a random moment, ITER times (default 20); then POINTS
# times (default 30) it dies by itself at a chosen write (the k-th pwrite, k log-uniform in
# 1..30000), which it tears in half as a power cut might. The rounds alternate between two
# images that carry their state from round to round (512-byte clusters, which makes the
# refcount table grow and the L2 cache evict; 64 KiB clusters over a raw backing file).
# After each crash:
#   - `qemu-img check` finds no corruption (exit 0, or 3 for leaked clusters only),
#   - every batch acknowledged with "flushed N" reads back exactly; sectors of the batch in
#     flight show some prefix of it (crash_writer verify),
#   - `qemu-img compare` agrees with what our driver reads.
# Closing line: "block-crash: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITER=${ITER:-20}
POINTS=${POINTS:-30}
BIN=build/tests/block_crash_writer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

finish() {
    echo "block-crash: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

if ! command -v qemu-img >/dev/null; then
    echo "block-crash: qemu-img not found"
    fail=1
    finish
fi
mkdir -p build/tests
if ! ${CC:-cc} -std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -D_GNU_SOURCE -Isrc -o "$BIN" \
    -Wl,--wrap=pwrite tests/block/crash_writer.c src/block/*.c src/base/log.c src/base/hostfs.c -lz -lzstd; then
    echo "block-crash: cannot build $BIN"
    fail=1
    finish
fi

# Image a: 512-byte clusters, no backing file; its shadow starts all zero.
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/a.qcow2" 64M
truncate -s 64M "$tmp/a.shadow"
# Image b: 64 KiB clusters over 40 MiB of random raw data; its shadow starts as that data.
head -c 40M /dev/urandom >"$tmp/b-base.raw"
qemu-img create -q -f qcow2 -b b-base.raw -F raw "$tmp/b.qcow2" 64M
cp "$tmp/b-base.raw" "$tmp/b.shadow" && truncate -s 64M "$tmp/b.shadow"

# check_round WHAT IMG SEED LAST: the image after a crash.
check_round() {
    local what=$1 img=$2 seed=$3 last=$4 crc leaks
    qemu-img check "$tmp/$img.qcow2" >"$tmp/check" 2>&1
    crc=$?
    if [ "$crc" -ne 0 ] && [ "$crc" -ne 3 ]; then
        echo "FAIL $what: qemu-img check exit $crc"
        cat "$tmp/check"
        fail=$((fail + 1))
        return 1
    fi
    if ! "$BIN" verify "$tmp/$img.qcow2" "$tmp/$img.shadow" "$seed" "$last" >"$tmp/verify" 2>&1; then
        echo "FAIL $what: data check"
        cat "$tmp/verify"
        fail=$((fail + 1))
        return 1
    fi
    if ! qemu-img compare -q -f qcow2 -F raw "$tmp/$img.qcow2" "$tmp/$img.shadow"; then
        echo "FAIL $what: qemu-img compare disagrees with our reads"
        fail=$((fail + 1))
        return 1
    fi
    leaks=$(grep -oE '^[0-9]+ leaked clusters' "$tmp/check" || true)
    echo "PASS $what: check exit $crc${leaks:+ ($leaks)}"
    pass=$((pass + 1))
}

last_flushed() {
    local n
    n=$(grep -oE '^flushed [0-9]+' "$tmp/out" | tail -n 1 | cut -d' ' -f2)
    echo "${n:-0}"
}

# Part 1: SIGKILL at a random moment.
for i in $(seq 1 "$ITER"); do
    if [ $((i % 2)) -eq 1 ]; then img=a; else img=b; fi
    seed=$(( (RANDOM << 15) | RANDOM ))
    delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.05 + (r % 1200) / 1000 }')
    "$BIN" write "$tmp/$img.qcow2" "$seed" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    last=$(last_flushed)
    what="kill $i ($img, seed $seed, after ${delay}s, flushed $last)"
    if [ "$rc" -ne 137 ]; then
        echo "FAIL $what: writer exited with $rc before the kill: $(cat "$tmp/err")"
        fail=$((fail + 1))
        continue
    fi
    check_round "$what" "$img" "$seed" "$last" || break
done

# Part 2: crash points: the k-th write is torn in half and the writer dies there.
for i in $(seq 1 "$POINTS"); do
    if [ $((i % 2)) -eq 1 ]; then img=a; else img=b; fi
    seed=$(( (RANDOM << 15) | RANDOM ))
    k=$(awk -v r="$RANDOM" 'BEGIN { printf "%d", exp(log(30000) * (r % 1000) / 1000) }')
    CRASH_AFTER_WRITES=$k timeout 60 "$BIN" write "$tmp/$img.qcow2" "$seed" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    last=$(last_flushed)
    what="crash point $i ($img, seed $seed, write $k torn, flushed $last)"
    if [ "$rc" -ne 137 ]; then
        echo "FAIL $what: writer exited with $rc: $(cat "$tmp/err")"
        fail=$((fail + 1))
        continue
    fi
    check_round "$what" "$img" "$seed" "$last" || break
done
finish
