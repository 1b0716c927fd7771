#!/usr/bin/env bash
# Bad input to `tessera run`: every case must end with exactly one line on stderr that names
# the file or option and what was wrong, a non-zero exit status, and no crash (no status from
# a signal). A guest that runs garbage must never crash the VMM.
set -u
cd "$(dirname "$0")/../.."
T=${TESSERA:-build/tessera}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok()  { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# expect_error NAME WANT_SUBSTRING ARGS...
expect_error() {
    local name=$1 want=$2; shift 2
    local err rc lines
    err=$(timeout 20 "$T" run "$@" 2>&1 >/dev/null </dev/null); rc=$?
    lines=$(printf '%s\n' "$err" | grep -c .)
    if [ "$rc" -eq 0 ]; then bad "$name" "exit status 0"; return; fi
    if [ "$rc" -ge 124 ]; then bad "$name" "exit status $rc (timeout or signal)"; return; fi
    if [ "$lines" -ne 1 ]; then bad "$name" "expected one line on stderr, got $lines: $err"; return; fi
    if ! grep -qF -- "$want" <<<"$err"; then bad "$name" "message '$err' lacks '$want'"; return; fi
    ok "$name"
}

riscv_elf() { # a minimal valid bare-metal ELF, built from tests/isa's link script
    printf '.globl _start\n_start:\n li t0, 0x100000\n li t1, 0x5555\n sw t1, 0(t0)\n1: j 1b\n' >"$tmp/ok.S"
    riscv64-linux-gnu-gcc -march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -static \
        -T tests/isa/link.ld -o "$1" "$tmp/ok.S" 2>/dev/null
}

riscv_elf "$tmp/ok.elf"
: >"$tmp/empty"
head -c 100 "$tmp/ok.elf" >"$tmp/truncated.elf"
head -c 4096 /dev/urandom >"$tmp/random.bin"
head -c $((24 << 20)) /dev/zero >"$tmp/big.img"

expect_error missing-bios "/nonexistent/fw.bin" --bios /nonexistent/fw.bin
expect_error empty-bios "$tmp/empty: file is empty" --bios "$tmp/empty"
expect_error truncated-elf "$tmp/truncated.elf" --bios "$tmp/truncated.elf"
expect_error x86-elf-bios "expected 243 (RISC-V)" --bios /bin/true
expect_error missing-kernel "/nonexistent/Image" --kernel /nonexistent/Image
expect_error empty-kernel "file is empty" --kernel "$tmp/empty"
expect_error non-riscv-kernel "not a RISC-V Linux kernel" --kernel "$tmp/random.bin"
expect_error x86-kernel "expected 243 (RISC-V)" --kernel /bin/true
expect_error missing-initrd "/nonexistent/initrd" --bios "$tmp/ok.elf" --kernel "$tmp/ok.elf" --initrd /nonexistent/initrd
expect_error initrd-too-big "does not fit in RAM" --kernel "$tmp/ok.elf" --initrd "$tmp/big.img" --mem 16M
expect_error bios-too-big "does not fit in RAM" --bios "$tmp/big.img" --mem 16M
expect_error unknown-option "unknown option '--frobnicate'" --frobnicate
expect_error missing-value "option '--mem' needs a value" --mem
expect_error mem-garbage "--mem 'lots'" --mem lots
expect_error mem-zero "--mem '0'" --mem 0
expect_error mem-huge "--mem '99999G'" --mem 99999G
expect_error cpus-zero "--cpus '0'" --cpus 0
expect_error cpus-many "--cpus '99'" --cpus 99
expect_error cpus-garbage "--cpus 'four'" --cpus four
expect_error stray-arg "unexpected argument 'extra'" --bios "$tmp/ok.elf" extra

# The good case still works and exits with the guest's status.
if timeout 20 "$T" run --bios "$tmp/ok.elf" </dev/null >/dev/null 2>&1; then ok bare-metal-pass
else bad bare-metal-pass "exit status $?"; fi

# Garbage as firmware: the guest traps forever, the VMM keeps running until killed.
timeout 3 "$T" run --bios "$tmp/random.bin" </dev/null >/dev/null 2>&1; rc=$?
if [ "$rc" -eq 124 ]; then ok garbage-firmware-contained
else bad garbage-firmware-contained "exit status $rc, want 124 (still running at the timeout)"; fi

# The control client: a socket nobody serves is one clear line and exit status 1.
err=$("$T" vm describe --api-sock "$tmp/none.sock" 2>&1 >/dev/null); rc=$?
if [ "$rc" -eq 1 ] && [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] && grep -q "no VM is listening" <<<"$err"; then
    ok vm-client-no-vm
else bad vm-client-no-vm "exit $rc: $err"; fi
"$T" vm frobnicate --api-sock "$tmp/none.sock" >/dev/null 2>&1; rc=$?
if [ "$rc" -eq 2 ]; then ok vm-client-bad-command; else bad vm-client-bad-command "exit $rc"; fi
expect_error disk-missing "/nonexistent/disk.img" --bios "$tmp/ok.elf" --disk /nonexistent/disk.img
expect_error disk-bad-format "format 'vmdk'" --bios "$tmp/ok.elf" --disk "$tmp/empty",format=vmdk
expect_error net-bad-backend "nosuch" --bios "$tmp/ok.elf" --net nosuch
expect_error device-unknown "unknown device type" --device frobnicator
expect_error restore-missing "/nonexistent/s.tsr" --restore /nonexistent/s.tsr
expect_error restore-not-state "not a Tessera state stream" --restore "$tmp/random.bin"
expect_error restore-empty "truncated" --restore "$tmp/empty"
expect_error restore-with-disk "give no --kernel" --restore "$tmp/random.bin" --disk "$tmp/big.img"
expect_error incoming-bad-uri "expected tcp:HOST:PORT" --incoming udp:1.2.3.4:5
expect_error clone-without-restore "--clone and --full apply to --restore" --clone "$tmp"
expect_error disk-dir-without-incoming "--disk-dir applies to --incoming" --disk-dir "$tmp"
expect_error disk-dir-missing "/nonexistent/dir" --incoming tcp:127.0.0.1:1 --disk-dir /nonexistent/dir

# Snapshot list and delete against a running bare-metal VM with a raw disk: hostile files get
# one clear line each and exit status 1; a snapshot merges back into the raw disk.
printf '.globl _start\n_start:\n1: j 1b\n' >"$tmp/loop.S"
riscv64-linux-gnu-gcc -march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -static \
    -T tests/isa/link.ld -o "$tmp/loop.elf" "$tmp/loop.S" 2>/dev/null
head -c $((4 << 20)) /dev/zero >"$tmp/disk.img"
sock=$tmp/vm.sock
"$T" run --bios "$tmp/loop.elf" --disk "$tmp/disk.img",format=raw --api-sock "$sock" \
    </dev/null >"$tmp/vm.log" 2>&1 &
vmpid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
# expect_vm_error NAME WANT_SUBSTRING ARGS...: `tessera vm ARGS --api-sock S` fails with one line.
expect_vm_error() {
    local name=$1 want=$2; shift 2
    local err rc
    err=$(timeout 20 "$T" vm "$@" --api-sock "$sock" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne 1 ]; then bad "$name" "exit status $rc: $err"; return; fi
    if [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then bad "$name" "not one line: $err"; return; fi
    if ! grep -qF -- "$want" <<<"$err"; then bad "$name" "message '$err' lacks '$want'"; return; fi
    ok "$name"
}
ln -s "$tmp/random.bin" "$tmp/link.tsr"
mkfifo "$tmp/fifo.tsr"
long=$tmp/$(printf 'x%.0s' $(seq 5000))
expect_vm_error snapdel-not-state "$tmp/random.bin: not a Tessera state stream" snapshot-delete "$tmp/random.bin"
expect_vm_error snapdel-truncated "truncated" snapshot-delete "$tmp/empty"
expect_vm_error snapdel-no-folder "/nonexistent" snapshot-delete /nonexistent/s.tsr
expect_vm_error snapdel-missing "no such snapshot" snapshot-delete "$tmp/nosuch.tsr"
expect_vm_error snapdel-symlink "symbolic link" snapshot-delete "$tmp/link.tsr"
expect_vm_error snapdel-fifo "not a regular file" snapshot-delete "$tmp/fifo.tsr"
err=$("$T" vm snapshot-delete --api-sock "$sock" "$long" 2>&1 >/dev/null); rc=$?
if [ "$rc" -eq 2 ] && grep -q "too long" <<<"$err"; then ok snapdel-long
else bad snapdel-long "exit $rc: $err"; fi
expect_vm_error snapdel-disk-image "not a Tessera state stream" snapshot-delete "$tmp/disk.img"
if "$T" vm snapshots --api-sock "$sock" | grep -q "no snapshots"; then ok snapshots-none
else bad snapshots-none "not an empty list"; fi
if "$T" vm snapshot --api-sock "$sock" "$tmp/s1.tsr" >/dev/null &&
    "$T" vm snapshots --api-sock "$sock" | grep -qF "$tmp/s1.tsr" &&
    "$T" vm snapshot-delete --api-sock "$sock" "$tmp/s1.tsr" | grep -q "merged" &&
    [ ! -e "$tmp/s1.tsr" ] && [ ! -e "$tmp/s1.tsr.disk0" ] &&
    "$T" vm describe --api-sock "$sock" | grep -q "disk.img,format=raw" &&
    "$T" vm snapshot --api-sock "$sock" "$tmp/s2.tsr" >/dev/null &&
    "$T" vm snapshot-delete --api-sock "$sock" "$tmp/s2.tsr" >/dev/null &&
    [ "$(head -c 4 "$tmp/disk.img" | od -An -tx1 | tr -d ' ')" = "00000000" ]; then
    ok snapshot-delete-raw
else bad snapshot-delete-raw "see $tmp/vm.log"; cat "$tmp/vm.log"; fi
kill "$vmpid" 2>/dev/null
wait "$vmpid" 2>/dev/null

# The sandbox (docs/sandbox.md): bad values are refused; the test hook's forbidden system
# call kills the VMM with SIGSYS (status 128+31 from the shell) before the guest runs.
expect_error sandbox-bad-value "--sandbox 'maybe'" --sandbox maybe
if [ "$(id -u)" -eq 0 ]; then
    expect_error sandbox-no-user "--user no-such-user-tessera: no such user" --user no-such-user-tessera
    expect_error sandbox-root-user "is root" --user root
else
    expect_error sandbox-user-not-root "only root can switch users" --user nobody
fi
rc=$( { timeout 20 "$T" run --bios "$tmp/ok.elf" --sandbox selftest </dev/null >/dev/null; echo $?; } 2>/dev/null)
if [ "$rc" -eq 159 ]; then ok sandbox-selftest-sigsys
else bad sandbox-selftest-sigsys "exit status $rc, want 159 (SIGSYS)"; fi
timeout 20 "$T" run --bios "$tmp/ok.elf" --sandbox off </dev/null >/dev/null 2>&1; rc=$?
if [ "$rc" -eq 0 ]; then ok sandbox-off-runs
else bad sandbox-off-runs "exit status $rc"; fi

# --help texts exist and exit 0.
if "$T" --help | grep -q "run" && "$T" run --help | grep -q -- "--cpus"; then ok help
else bad help "--help output incomplete"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
