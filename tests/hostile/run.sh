#!/usr/bin/env bash
# Hostile-guest tests for Tessera's virtio devices: builds the bare-metal ELFs into
# build/hostile/, prepares disk images, runs every test against every device configuration and
# prints one line per run, then "hostile: N passed, N failed"; exits non-zero on any failure.
#
#   tests/hostile/run.sh [--tessera PATH] [--build-only] [TEST[/CONFIG]...]
#
# TEST is a file name without .c (sane, loops, ...); TEST/CONFIG picks one configuration
# (rng, blk, blk-ro, net, console, balloon, all). Environment: TESSERA (default build/tessera),
# HOSTILE_TIMEOUT (seconds per run, default 30), HOSTILE_VALGRIND=1 (each run once more under
# valgrind, slow), CROSS (default riscv64-linux-gnu-). See README.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 2

tessera=${TESSERA:-build/tessera}
out=build/hostile
limit=${HOSTILE_TIMEOUT:-30}
cross=${CROSS:-riscv64-linux-gnu-}
build_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --tessera) tessera=$2; shift 2 ;;
        --build-only) build_only=1; shift ;;
        --) shift; break ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

tests=(sane loops outside indirect rings devices reset rtc)
configs=(rng blk blk-ro net console balloon all)

# ---- build ---------------------------------------------------------------------------------
cflags=(-march=rv64gc -mabi=lp64d -mcmodel=medany -ffreestanding -fno-builtin
        -fno-tree-loop-distribute-patterns -nostdlib -nostartfiles -static -fno-pie -no-pie
        -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -I"$here"
        -Wl,--build-id=none -T "$here/link.ld")
lib=("$here/crt0.S" "$here/hostile.c" "$here/virtio_drv.c" "$here/common.c")
mkdir -p "$out"

# Check numbers: 1..127 (128 and up would read like a signal in the exit status), not 99
# (valgrind's error status in HOSTILE_VALGRIND runs). A number may
# be used by several CHECKs in a row (one check, several conditions) but nowhere else in the
# file, so "check 12 of loops" names one place.
lint_ok=1
for t in "${tests[@]}"; do
    nums=$(grep -o 'CHECK([0-9]*,' "$here/$t.c" | tr -dc '0-9\n')
    dup=$(printf '%s\n' "$nums" | uniq | sort -n | uniq -d | tr '\n' ' ')
    bad=$(printf '%s\n' "$nums" | awk 'NF && ($1 < 1 || $1 > 127 || $1 == 99)' | tr '\n' ' ')
    if [ -n "$dup" ] || [ -n "$bad" ]; then
        echo "run.sh: $t.c: duplicate check numbers: ${dup:-none}; not in 1..127 or 99: ${bad:-none}" >&2
        lint_ok=0
    fi
done
[ "$lint_ok" = 1 ] || exit 2

if ! command -v "${cross}gcc" >/dev/null 2>&1; then
    echo "run.sh: ${cross}gcc not found (set CROSS)" >&2
    exit 2
fi
# build/hostile/slow/: the same tests with 10x the timeouts, for runs under valgrind.
mkdir -p "$out/slow"
for t in "${tests[@]}"; do
    for v in "" slow/; do
        elf="$out/$v$t.elf"
        if [ ! -f "$elf" ] || [ -n "$(find "$here" -newer "$elf" -type f | head -n 1)" ]; then
            # Built under a private name and renamed: another run.sh may be using the ELF.
            "${cross}gcc" "${cflags[@]}" ${v:+-DTMO_US=20000000} -o "$elf.$$" "${lib[@]}" \
                "$here/$t.c" || exit 2
            "${cross}objdump" -d "$elf.$$" > "$out/$v$t.dump.$$"
            mv -f "$elf.$$" "$elf" && mv -f "$out/$v$t.dump.$$" "$out/$v$t.dump"
        fi
    done
done
[ "$build_only" = 1 ] && exit 0

if [ ! -x "$tessera" ]; then
    echo "run.sh: $tessera not found (make, or --tessera PATH)" >&2
    exit 2
fi

# ---- images ------------------------------------------------------------------------------
# 1 MiB raw image; byte at offset o is ((o * 7) ^ (o >> 9) ^ 0x5a) & 0xff (disk_pattern() in
# hostile.h).
make_image() {
    python3 -c '
import sys
n = 1 << 20
sys.stdout.buffer.write(bytes(((o * 7) ^ (o >> 9) ^ 0x5a) & 0xff for o in range(n)))' > "$1"
}
# Everything a run writes (images, the console socket, logs) lives in a directory of its own,
# so that several run.sh can work side by side. It is removed when everything passed.
run=$(mktemp -d "$out/run.XXXXXX") || exit 2
make_image "$run/pattern.img" || exit 2
mkdir -p "$run/logs"

# The configurations a test runs with: reset needs a writable disk to tell its two boots apart;
# rtc drives a board device and needs no virtio device, so one configuration is enough.
test_configs() {
    case "$1" in
        reset) echo "blk all" ;;
        rtc) echo "rng" ;;
        *) echo "${configs[*]}" ;;
    esac
}

# Device arguments of a configuration; images are fresh copies for every run.
config_args() {
    case "$1" in
        rng) echo "--device rng" ;;
        blk) echo "--disk $run/rw.img" ;;
        blk-ro) echo "--disk $run/ro.img,readonly=on" ;;
        net) echo "--net user" ;;
        console) echo "--device console,sock=$run/console.sock" ;;
        balloon) echo "--device balloon" ;;
        all) echo "--device rng --disk $run/rw.img --disk $run/ro.img,readonly=on" \
                  "--net user --device console,sock=$run/console.sock --device balloon" ;;
    esac
}

describe() { # exit status -> words
    local rc=$1
    if [ "$rc" -ge 1 ] && [ "$rc" -le 127 ]; then echo "check $rc failed"
    elif [ "$rc" -ge 128 ] && [ "$rc" -le 191 ]; then echo "VMM killed by signal $((rc - 128)) (crash)"
    elif [ "$rc" -ge 240 ]; then echo "unexpected exception in the guest, mcause $((rc - 240))"
    elif [ "$rc" -ge 208 ] && [ "$rc" -lt 224 ]; then echo "unexpected interrupt in the guest, mcause $((rc - 208))"
    elif [ "$rc" -eq 200 ]; then echo "guest ran out of DMA arena"
    else echo "exit status $rc"
    fi
}

passed=0 failed=0
selected=()
if [ $# -eq 0 ]; then
    for t in "${tests[@]}"; do for c in $(test_configs "$t"); do selected+=("$t/$c"); done; done
else
    for a in "$@"; do
        case "$a" in
            */*) selected+=("$a") ;;
            *) for c in $(test_configs "$a"); do selected+=("$a/$c"); done ;;
        esac
    done
fi

run_one() { # name elf config [wrapper...]
    local name=$1 elf=$2 cfg=$3; shift 3
    local log="$run/logs/${name//\//-}" rc t0 t1 client=""
    cp "$run/pattern.img" "$run/rw.img" && cp "$run/pattern.img" "$run/ro.img" || return 1
    # A host client on the console socket, which the console checks expect.
    rm -f "$run/console.sock"
    case "$(config_args "$cfg")" in
        *console.sock*)
            # It must outlive the VMM (killed at $limit s, +5 s for its SIGKILL): a client that
            # stopped first left the last console checks of a slow run without host bytes. It
            # is killed below once the VMM ends; its own deadline only bounds an orphan.
            python3 "$here/console_client.py" "$run/console.sock" "$((limit + 30))" &
            client=$!
            ;;
    esac
    t0=$(date +%s)
    # The guest's serial console goes to $log.out, the VMM's own messages to $log.err. The
    # subshell waits for the VMM, so a crash report ("Segmentation fault") lands in $log.err.
    # shellcheck disable=SC2046
    (timeout -v -k 5 "$limit" "$@" "$tessera" run --bios "$elf" --mem 128M \
        $(config_args "$cfg") </dev/null; exit $?) >"$log.out" 2>"$log.err"
    rc=$?
    t1=$(date +%s)
    if [ -n "$client" ]; then
        kill "$client" 2>/dev/null
        wait "$client" 2>/dev/null
    fi
    if grep -q '^timeout: sending signal' "$log.err"; then
        echo "FAIL $name: VMM hung (no result after ${limit}s)"
    elif [ "$rc" -eq 0 ]; then
        echo "PASS $name ($((t1 - t0))s)"
        return 0
    elif [ "$rc" -eq 99 ] && [ "${1:-}" = valgrind ]; then
        echo "FAIL $name: valgrind reported errors in the VMM (exit 99)"
    else
        echo "FAIL $name: $(describe "$rc") (exit $rc)"
    fi
    echo "    guest (last lines of $log.out):"
    tr -d '\r' <"$log.out" | grep -v -E '^(found slot|[a-z]+: slot [0-9]+ virtio-[a-z]+$|hostile: )' |
        tail -n 6 | sed 's/^/      /'
    echo "    VMM (last lines of $log.err):"
    tail -n 6 "$log.err" | sed 's/^/      /'
    return 1
}

for s in "${selected[@]}"; do
    t=${s%%/*} c=${s#*/}
    elf="$out/$t.elf"
    if [ ! -f "$elf" ] || [ -z "$(config_args "$c")" ]; then
        echo "FAIL $s: no such test or configuration"; failed=$((failed + 1)); continue
    fi
    if run_one "$s" "$elf" "$c"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    if [ "${HOSTILE_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null 2>&1; then
        if limit=$((limit * 10)) run_one "$s/valgrind" "$out/slow/$t.elf" "$c" \
            valgrind --error-exitcode=99 -q; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    fi
done
if [ "$failed" -eq 0 ]; then
    rm -rf "$run"
else
    echo "logs: $run/logs"
fi
echo "hostile: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "${#selected[@]}" -gt 0 ]
