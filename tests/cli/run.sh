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
expect_error mem-merge-garbage "--mem-merge 'maybe': expected on or off" --mem-merge maybe
expect_error balloon-reporting-garbage "--device balloon: free_page_reporting 'sometimes': expected on or off" --device balloon,free_page_reporting=sometimes
expect_error cpus-zero "--cpus '0'" --cpus 0
expect_error cpus-many "--cpus '99'" --cpus 99
expect_error cpus-garbage "--cpus 'four'" --cpus four
expect_error cpu-engine-unknown "--cpu-engine 'qemu': expected one of" --cpu-engine qemu
expect_error cpu-engine-empty "--cpu-engine '': expected one of" --cpu-engine ''
expect_error stray-arg "unexpected argument 'extra'" --bios "$tmp/ok.elf" extra
expect_error console-garbage "--console: 'tty': expected stdio" --console tty
expect_error console-log-dir "--console log=$tmp: Is a directory" --bios "$tmp/ok.elf" --console "stdio,log=$tmp"
expect_error console-sock-file "sock=$tmp/empty: exists and is not a socket" --bios "$tmp/ok.elf" --console "sock=$tmp/empty"

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
# Option values too long for their buffer are refused, never taken as "not given".
head -c $((1 << 20)) /dev/zero >"$tmp/small.img"
long_sock=$tmp/$(printf 's%.0s' $(seq 110)).sock
expect_error disk-readonly-garbage "readonly 'garbage1': expected on or off" \
    --bios "$tmp/ok.elf" --disk "$tmp/small.img",format=raw,readonly=garbage1
expect_error disk-format-16-chars "format 'qcow2qcow2qcow2qc': expected raw or qcow2" \
    --bios "$tmp/ok.elf" --disk "$tmp/small.img",format=qcow2qcow2qcow2qc
expect_error agent-sock-too-long "--agent-sock: the path must be 1 to 107 bytes" \
    --bios "$tmp/ok.elf" --agent-sock "$long_sock"
expect_error console-sock-too-long "--device console: sock" \
    --bios "$tmp/ok.elf" --device console,sock="$long_sock"
expect_error net-mac-too-long "mac '52:54:00:12:34:567'" --bios "$tmp/ok.elf" --net user,mac=52:54:00:12:34:567
expect_error net-link-garbage "link 'offffffff': expected on or off" --bios "$tmp/ok.elf" --net user,link=offffffff
expect_error disk-serial-too-long "serial '123456789012345678901': expected at most 20 bytes" \
    --bios "$tmp/ok.elf" --disk "$tmp/small.img",format=raw,serial=123456789012345678901
expect_error append-too-long "command line: boot.cmdline: expected a string of at most 4095 bytes" \
    --bios "$tmp/ok.elf" --append "$(printf 'a%.0s' $(seq 5000))"
expect_error disk-stray-comma "empty option" --bios "$tmp/ok.elf" --disk "$tmp/small.img",,format=raw
expect_error restore-missing "/nonexistent/s.tsr" --restore /nonexistent/s.tsr
expect_error restore-not-state "not a Tessera state stream" --restore "$tmp/random.bin"
expect_error restore-empty "truncated" --restore "$tmp/empty"
expect_error restore-with-disk "give no --kernel" --restore "$tmp/random.bin" --disk "$tmp/big.img"
expect_error restore-with-engine "--cpu-engine" --restore "$tmp/random.bin" --cpu-engine interp
expect_error incoming-bad-uri "expected tcp:HOST:PORT" --incoming udp:1.2.3.4:5
expect_error clone-without-restore "--clone and --full apply to --restore" --clone "$tmp"
expect_error disk-dir-without-incoming "--disk-dir applies to --incoming" --disk-dir "$tmp"
expect_error disk-dir-missing "/nonexistent/dir" --incoming tcp:127.0.0.1:1 --disk-dir /nonexistent/dir
expect_error incoming-tls-no-files "needs --tls-cert, --tls-key and --tls-ca" --incoming tls:127.0.0.1:1
expect_error incoming-tls-missing-file "/nonexistent/c.pem" --incoming tls:127.0.0.1:1 \
    --tls-cert /nonexistent/c.pem --tls-key /nonexistent/k.pem --tls-ca /nonexistent/ca.pem
expect_error incoming-tls-not-pem "no CA certificate in it" --incoming tls:127.0.0.1:1 \
    --tls-cert "$tmp/random.bin" --tls-key "$tmp/random.bin" --tls-ca "$tmp/ok.elf"
expect_error incoming-tcp-with-tls "plain TCP" --incoming tcp:127.0.0.1:1 --tls-cert "$tmp/empty" \
    --tls-key "$tmp/empty" --tls-ca "$tmp/empty"
expect_error tls-without-incoming "apply to --incoming" --tls-ca "$tmp/empty"
expect_error progress-timeout-range "--progress-timeout '0'" --incoming tcp:127.0.0.1:1 \
    --progress-timeout 0

# --config FILE: each kind of bad document is refused with the key path (docs/vm-config.md).
# expect_config NAME WANT_SUBSTRING JSON [ARGS...]
expect_config() {
    local name=$1 want=$2 json=$3; shift 3
    printf '%s\n' "$json" >"$tmp/vm.json"
    expect_error "$name" "$want" --config "$tmp/vm.json" "$@"
}
expect_config config-unknown-key "vm.json: disks[0].cache: unknown key" \
    '{"version": 1, "disks": [{"path": "d.img", "cache": "none"}]}'
expect_config config-wrong-type "vm.json: cpus: expected an integer from 1 to 8" \
    '{"version": 1, "cpus": "two"}'
expect_config config-cpu-engine "vm.json: cpu_engine: expected one of" \
    '{"version": 1, "cpu_engine": "kvm"}'
expect_config config-out-of-range "vm.json: memory: expected a size between 16M and 64G" \
    '{"version": 1, "memory": "128G"}'
expect_config config-bad-enum "vm.json: disks[1].format: expected raw or qcow2" \
    '{"version": 1, "disks": [{"path": "a.img"}, {"path": "b.img", "format": "vmdk"}]}'
expect_config config-missing-required "vm.json: nics[0].backend: missing (required)" \
    '{"version": 1, "nics": [{"mac": "52:54:00:12:34:56"}]}'
expect_config config-missing-version "vm.json: version: missing (required" '{"cpus": 1}'
expect_config config-bad-json "vm.json:2:12: not a JSON object (invalid JSON" \
    "$(printf '{"version": 1,\n "cpus": 1,,\n}')"
expect_config config-bad-mac "vm.json: nics[0].mac: expected a unicast address" \
    '{"version": 1, "nics": [{"backend": "user", "mac": "ff:ff:ff:ff:ff:ff"}]}'
expect_config config-bad-backend "vm.json: nics[0].backend: unknown network backend 'vde'" \
    '{"version": 1, "nics": [{"backend": "vde"}]}'
expect_config config-long-agent-sock "vm.json: agent_socket: expected a string of at most 107" \
    "{\"version\": 1, \"agent_socket\": \"$long_sock\"}"
expect_error config-missing-file "/nonexistent/vm.json: No such file or directory" \
    --config /nonexistent/vm.json
expect_error config-with-restore "give no --kernel" --config "$tmp/vm.json" --restore "$tmp/random.bin"
# The flags override the document: its bare-metal firmware runs with the --cpus given.
printf '{"version": 1, "cpus": 9}\n' >"$tmp/vm.json"
expect_error config-flag-does-not-hide-bad-doc "cpus: expected an integer" --config "$tmp/vm.json" --cpus 2
printf '{"version": 1, "cpus": 2, "boot": {"firmware": "%s"}}\n' "$tmp/ok.elf" >"$tmp/vm.json"
if timeout 20 "$T" run --config "$tmp/vm.json" --cpus 3 </dev/null >/dev/null 2>&1; then ok config-bare-metal
else bad config-bare-metal "exit status $?"; fi
# The engine when none is named: the JIT on x86-64 hosts (each hart's code cache reports at
# exit in the debug log), the interpreter elsewhere; --cpu-engine interp names the interpreter.
log=$(TESSERA_LOG=debug timeout 20 "$T" run --bios "$tmp/ok.elf" </dev/null 2>&1 >/dev/null)
ilog=$(TESSERA_LOG=debug timeout 20 "$T" run --bios "$tmp/ok.elf" --cpu-engine interp \
    </dev/null 2>&1 >/dev/null)
want=0
[ "$(uname -m)" = x86_64 ] && want=1
if [ "$(grep -c 'jit: .* blocks translated' <<<"$log")" -eq "$want" ] &&
    ! grep -q 'blocks translated' <<<"$ilog"; then ok default-engine
else bad default-engine "expected $want JIT report(s) by default, none with interp: $log / $ilog"; fi

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
# Rate limits changed live: shown in the answer and in describe, bad keys and values refused
# naming them, then removed again (describe below expects the disk as it started).
if "$T" vm limits --api-sock "$sock" disk 0 bps=10M iops=500 | tr -d ' \n' |
        grep -qF '{"iops":500,"bps":"10M"}' &&
    "$T" vm describe --api-sock "$sock" | tr -d ' \n' | grep -qF '"iops":500,"bps":"10M"' &&
    "$T" vm limits --api-sock "$sock" disk 0 bps=0 iops=0 | tr -d ' \n' | grep -qxF '{}'; then
    ok limits-set
else bad limits-set "tessera vm limits did not set and clear bps and iops"; fi
expect_vm_error limits-bad-value "disks[0].bps: expected bytes" limits disk 0 bps=ten
expect_vm_error limits-not-live "disks[0].path: cannot change while the VM runs" limits disk 0 path=/x
expect_vm_error limits-no-disk "this VM has 1 disk" limits disk 1 iops=5
expect_vm_error limits-no-nic "this VM has 0 nics" limits nic 0 rx_bps=1M
err=$("$T" vm limits --api-sock "$sock" disk 0 2>&1 >/dev/null); rc=$?
if [ "$rc" -eq 2 ] && grep -q "KEY=VALUE" <<<"$err"; then ok limits-usage
else bad limits-usage "exit $rc: $err"; fi
if "$T" vm snapshots --api-sock "$sock" | grep -q "no snapshots"; then ok snapshots-none
else bad snapshots-none "not an empty list"; fi
if "$T" vm snapshot --api-sock "$sock" "$tmp/s1.tsr" >/dev/null &&
    "$T" vm snapshots --api-sock "$sock" | grep -qF "$tmp/s1.tsr" &&
    "$T" vm snapshot-delete --api-sock "$sock" "$tmp/s1.tsr" | grep -q "merged" &&
    [ ! -e "$tmp/s1.tsr" ] && [ ! -e "$tmp/s1.tsr.disk0" ] &&
    "$T" vm describe --api-sock "$sock" | tr -d ' \n' | grep -qF "{\"path\":\"$tmp/disk.img\",\"format\":\"raw\"}" &&
    "$T" vm snapshot --api-sock "$sock" "$tmp/s2.tsr" >/dev/null &&
    "$T" vm snapshot-delete --api-sock "$sock" "$tmp/s2.tsr" >/dev/null &&
    [ "$(head -c 4 "$tmp/disk.img" | od -An -tx1 | tr -d ' ')" = "00000000" ]; then
    ok snapshot-delete-raw
else bad snapshot-delete-raw "see $tmp/vm.log"; cat "$tmp/vm.log"; fi
# describe's config is a document that the schema and --config both accept.
if "$T" vm describe --api-sock "$sock" >"$tmp/describe.json" &&
    python3 - "$tmp/describe.json" docs/vm-config.schema.json docs/vm-config.example.json <<'PY'
import json, sys
import jsonschema
doc = json.load(open(sys.argv[1]))["config"]
v = jsonschema.Draft202012Validator(json.load(open(sys.argv[2])))
for d in (doc, json.load(open(sys.argv[3]))):
    errs = [e.message for e in v.iter_errors(d)]
    assert not errs, errs
json.dump(doc, open(sys.argv[1] + ".config", "w"))
PY
then ok describe-matches-schema
else bad describe-matches-schema "describe's config or the example fails docs/vm-config.schema.json"; fi
# Snapshot targets refused before anything is touched: the VM's disk, a name taken by an older
# snapshot, a control character, a trailing slash, a folder.
mkdir "$tmp/snapdir"
expect_vm_error snap-own-disk "is an image of the VM's disk 0" snapshot "$tmp/disk.img"
if "$T" vm snapshot --api-sock "$sock" "$tmp/s3.tsr" >/dev/null; then
    expect_vm_error snap-twice "s3.tsr: exists" snapshot "$tmp/s3.tsr"
    if "$T" vm snapshot-delete --api-sock "$sock" "$tmp/s3.tsr" | grep -q "merged"; then
        ok snap-twice-intact
    else bad snap-twice-intact "the first snapshot no longer merges back"; fi
else bad snap-twice "the first snapshot failed"; fi
expect_vm_error snap-newline "control character (byte 0x0a" snapshot "$tmp/new
line.tsr"
expect_vm_error snap-slash "ends in '/'" snapshot "$tmp/snapdir/sub/"
expect_vm_error snap-folder "is a folder" snapshot "$tmp/snapdir"
if [ -z "$(ls -A "$tmp/snapdir")" ] && ! ls "$tmp" | grep -q "line.tsr"; then ok snap-refused-clean
else bad snap-refused-clean "a refused snapshot left files: $(ls "$tmp" "$tmp/snapdir")"; fi
kill "$vmpid" 2>/dev/null
wait "$vmpid" 2>/dev/null
# ... and, with the API socket moved, it runs the same machine.
if timeout 20 "$T" run --config "$tmp/describe.json.config" --api-sock "$tmp/vm2.sock" \
    </dev/null >/dev/null 2>"$tmp/vm2.log" & vm2=$!
    for _ in $(seq 100); do [ -S "$tmp/vm2.sock" ] && break; sleep 0.1; done
    "$T" vm describe --api-sock "$tmp/vm2.sock" >"$tmp/describe2.json" &&
    python3 -c 'import json,sys; a,b=(json.load(open(f))["config"] for f in sys.argv[1:]); a.pop("api_socket"); b.pop("api_socket"); sys.exit(a != b)' \
        "$tmp/describe.json" "$tmp/describe2.json"; then ok describe-config-runs
else bad describe-config-runs "$(cat "$tmp/vm2.log")"; fi
kill "$vm2" 2>/dev/null
wait "$vm2" 2>/dev/null
# A document's console socket and log are served, and describe gives them back.
printf '{"version": 1, "boot": {"firmware": "%s"}, "console": {"mode": "socket", "socket": "%s", "log": "%s"}}\n' \
    "$tmp/loop.elf" "$tmp/con.sock" "$tmp/con.log" >"$tmp/con.json"
"$T" run --config "$tmp/con.json" --api-sock "$tmp/vm3.sock" </dev/null >/dev/null 2>"$tmp/vm3.log" &
vm3=$!
for _ in $(seq 100); do [ -S "$tmp/vm3.sock" ] && [ -S "$tmp/con.sock" ] && break; sleep 0.1; done
if [ -S "$tmp/con.sock" ] && [ -f "$tmp/con.log" ] &&
    "$T" vm describe --api-sock "$tmp/vm3.sock" >"$tmp/describe3.json" &&
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]["console"]; sys.exit(c != {"mode": "socket", "socket": sys.argv[2], "log": sys.argv[3]})' \
        "$tmp/describe3.json" "$tmp/con.sock" "$tmp/con.log"; then ok config-console-socket
else bad config-console-socket "$(cat "$tmp/vm3.log" "$tmp/describe3.json" 2>/dev/null)"; fi
kill "$vm3" 2>/dev/null
wait "$vm3" 2>/dev/null

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
