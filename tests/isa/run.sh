#!/usr/bin/env bash
# Runs Tessera ISA tests: run.sh [--qemu | --tessera PATH] [--cpu-engine NAME] ELF...
# One line per test (PASS / FAIL / TIMEOUT), then "isa: N passed, N failed"; exits non-zero on
# any failure.  The default simulator is ${TESSERA:-build/tessera}.
set -u
mode=tessera
tessera=${TESSERA:-build/tessera}
qemu=${QEMU:-qemu-system-riscv64}
limit=${ISA_TIMEOUT:-20}
engine=()
while [ $# -gt 0 ]; do
    case "$1" in
        --qemu) mode=qemu; shift ;;
        --tessera) mode=tessera; tessera=$2; shift 2 ;;
        --cpu-engine) engine=(--cpu-engine "$2"); shift 2 ;;
        --) shift; break ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

describe() { # exit status -> reason
    local rc=$1
    if [ "$rc" -ge 129 ] && [ "$rc" -le 191 ]; then echo "check $rc (or killed by signal $((rc - 128)))"
    elif [ "$rc" -ge 1 ] && [ "$rc" -le 191 ]; then echo "check $rc"
    elif [ "$rc" -ge 240 ]; then echo "unexpected exception, mcause $((rc - 240)), in M"
    elif [ "$rc" -ge 224 ]; then echo "unexpected exception, scause $((rc - 224)), in S"
    elif [ "$rc" -ge 208 ]; then echo "unexpected interrupt, mcause $((rc - 208)), in M"
    else echo "unexpected interrupt, scause $((rc - 192)), in S"
    fi
}

if [ "$mode" = qemu ]; then sim=$qemu; else sim=$tessera; fi
if ! command -v "$sim" >/dev/null 2>&1; then
    echo "run.sh: simulator not found: $sim" >&2
    for elf in "$@"; do echo "FAIL $(basename "$elf" .elf): no simulator"; done
    echo "isa: 0 passed, $# failed"
    exit 1
fi

passed=0 failed=0
for elf in "$@"; do
    name=$(basename "$elf" .elf)
    if [ ! -f "$elf" ]; then
        echo "FAIL $name: no such file $elf"; failed=$((failed + 1)); continue
    fi
    if [ "$mode" = qemu ]; then
        cmd=("$qemu" -M virt -m 128M -nographic -bios "$elf")
    else
        cmd=("$tessera" run ${engine[@]+"${engine[@]}"} --bios "$elf" --mem 128M)
    fi
    errf=$(mktemp)
    timeout -v "$limit" "${cmd[@]}" </dev/null >/dev/null 2>"$errf"
    rc=$?
    if grep -q '^timeout: sending signal' "$errf"; then
        echo "TIMEOUT $name: no result after ${limit}s"
        failed=$((failed + 1))
    elif [ "$rc" -eq 0 ]; then
        echo "PASS $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name: $(describe "$rc") (exit $rc)"
        sed 's/^/    /' "$errf" | head -n 5
        failed=$((failed + 1))
    fi
    rm -f "$errf"
done
echo "isa: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $# -gt 0 ]
