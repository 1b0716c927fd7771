#!/usr/bin/env bash
# Writes seed inputs for tests/fuzz/fuzz_qcow2.c into folder $1: small qcow2 images made by
# qemu-img (versions 2 and 3, 512-byte to 64 KiB clusters, several refcount widths, a backing
# file name, internal snapshots, zlib and zstd compressed clusters, zero clusters), each
# prefixed with the fuzzer's mode byte (0: read-only, 1: read-write).
set -eu
out=${1:?usage: fuzz_seeds.sh OUTDIR}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0

seed() { # seed IMAGE: add it twice, read-only and read-write
    for mode in 00 01; do
        { printf "\\x$mode"; cat "$1"; } >"$out/seed-$n-$mode"
    done
    n=$((n + 1))
}

data() { # data IMAGE: write a few patterns through qemu-io
    qemu-io -f qcow2 -c 'write -P 0x5a 0 3k' -c 'write -P 0x11 70k 2k' \
        -c 'write -z 140k 1k' "$1" >/dev/null
}

for opts in "cluster_size=512" "cluster_size=512,compat=0.10" "cluster_size=1024,refcount_bits=1" \
    "cluster_size=2048,refcount_bits=64" "cluster_size=4096,lazy_refcounts=on" "cluster_size=65536"; do
    qemu-img create -q -f qcow2 -o "$opts" "$tmp/i.qcow2" 1M
    data "$tmp/i.qcow2"
    seed "$tmp/i.qcow2"
done
# A backing file name and format extension.
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/base.qcow2" 1M
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 "$tmp/i.qcow2" 1M
data "$tmp/i.qcow2"
seed "$tmp/i.qcow2"
# Internal snapshots.
qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/i.qcow2" 512k
data "$tmp/i.qcow2"
qemu-img snapshot -c one "$tmp/i.qcow2"
qemu-io -f qcow2 -c 'write -P 0x77 1k 1k' "$tmp/i.qcow2" >/dev/null
qemu-img snapshot -c two "$tmp/i.qcow2"
seed "$tmp/i.qcow2"
# Compressed clusters, zlib and zstd.
{ head -c 20000 /dev/urandom; yes compressible | head -c 40000; } >"$tmp/src.raw"
truncate -s 64k "$tmp/src.raw"
for ct in zlib zstd; do
    qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=$ct "$tmp/src.raw" \
        "$tmp/i.qcow2"
    seed "$tmp/i.qcow2"
done
# 64-bit refcounts in 512-byte clusters: a refcount block covers 32 KiB, so the fuzzer's
# writes often need a new block.
for w in 20k 23k 25k 27k 29k; do
    qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 "$tmp/i.qcow2" 1M
    qemu-io -f qcow2 -c "write -P 0x33 0 $w" "$tmp/i.qcow2" >/dev/null
    seed "$tmp/i.qcow2"
done
# Every refcount table entry points to one block of refcounts 1: the next allocation lies
# past the table's reach and must grow it.
python3 - "$tmp/i.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
hdr = f.read(72)
rt_off, rt_clusters = struct.unpack('>QI', hdr[48:60])
f.seek(rt_off)
blk = struct.unpack('>Q', f.read(8))[0]
f.seek(rt_off)
f.write(struct.pack('>Q', blk) * (rt_clusters * 512 // 8))
f.seek(blk)
f.write(struct.pack('>Q', 1) * 64)
PY
seed "$tmp/i.qcow2"
echo "fuzz_seeds: $((n * 2)) seeds in $out"
