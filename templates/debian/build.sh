#!/usr/bin/env bash
# Build the Debian 13 (trixie) riscv64 cloud template: a root disk (qcow2, whole-disk ext4),
# Debian's own kernel and initrd to boot directly, and template.json with the VM defaults.
# See docs/templates.md.
#
# The root file system is made by mmdebstrap from Debian's riscv64 packages; their maintainer
# scripts run under qemu-user-static through binfmt_misc (mounted and registered here when
# missing). The result is one cache entry, outside the clone:
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/templates/debian-13/<key>/
# <key> hashes the inputs: this script (which holds the package list, suite and mirror), the
# files of initramfs-tools/ and rootfs/ copied into the image, and the versions of mmdebstrap
# and qemu-user-static.
# Debian's archive is not pinned to a snapshot, so two builds with the same key may get newer
# package versions; each entry's manifest.txt records the versions it holds.
#
# The entry is built in a work directory beside it and renamed into place only once complete,
# with the COMPLETE marker written last, so an interrupted build never leaves a half entry.
# Builds hold templates/debian-13/.lock. Either way the script ends by pointing
# build/templates/debian-13 in the repository at the entry.
#
# Needs root: mmdebstrap's root mode, binfmt_misc, and an image tree owned by its real users
# for mkfs.ext4 -d.
#
# Environment:
#   TESSERA_CACHE           cache root (default $HOME/.cache/tessera)
#   TESSERA_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
# shellcheck disable=SC2317
set -euo pipefail
# Keys are built in $(...); a failure there must stop the script.
shopt -s inherit_errexit
export LC_ALL=C

TEMPLATE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TEMPLATE_DIR/../.." && pwd)
CACHE_ROOT=${TESSERA_CACHE:-$HOME/.cache/tessera}
NAME=debian-13
TEMPLATE_CACHE=$CACHE_ROOT/templates/$NAME
SUITE=trixie
ARCH=riscv64
MIRROR=${TESSERA_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The root file system's size. The daemon may give a VM a larger disk: cloud-init's
# resize_rootfs grows the file system to fill it on the first boot.
FS_SIZE_MIB=2048

# The template's defaults (template.json). The Debian kernel needs its initrd for the
# virtio-mmio, virtio-blk and ext4 modules (all =m in its config).
DEFAULT_CPUS=2
DEFAULT_MEMORY_MIB=1024
DEFAULT_CMDLINE="root=/dev/vda rw console=ttyS0"

# On top of the minbase variant (Essential and apt). Why each is here:
PACKAGES=(
    # Debian's kernel, and the initrd that loads its virtio and ext4 modules
    linux-image-riscv64 initramfs-tools kmod
    # systemd as PID 1, udev for /dev, D-Bus for hostnamectl (cloud-init sets the hostname
    # through it), networkd (in the systemd package) and resolved for DNS from DHCP
    systemd-sysv udev dbus systemd-resolved
    # provisioning from the NoCloud seed, and the login it provisions
    cloud-init openssh-server sudo
    # cloud-init's tools: ip for the network, resize2fs for resize_rootfs, blkid (util-linux,
    # Essential) to find the "cidata" disk
    iproute2 e2fsprogs
    # what makes the VM usable beyond the login: TLS roots for apt, /etc/services
    ca-certificates netbase
)

START=$SECONDS

log() { printf '[debian %4ds] %s\n' "$((SECONDS - START))" "$*"; }

die() {
    printf 'templates/debian/build.sh: error: %s\n' "$*" >&2
    exit 1
}

# Run "$@" (a step that prints nothing for a long time) in the foreground, with a background
# loop that prints a line every 15 s until it ends. Returns its exit status. on_exit stops the
# loop if we are killed.
HEARTBEAT_PID=
with_heartbeat() {
    local what=$1 rc=0
    shift
    (while sleep 15; do log "  ... still $what"; done) &
    HEARTBEAT_PID=$!
    "$@" || rc=$?
    kill "$HEARTBEAT_PID" 2>/dev/null || true
    wait "$HEARTBEAT_PID" 2>/dev/null || true
    HEARTBEAT_PID=
    return "$rc"
}

check_tools() {
    local missing=() tool pkg
    # tool:Debian package that provides it
    for tool in mmdebstrap:mmdebstrap arch-test:arch-test update-binfmts:binfmt-support \
        mkfs.ext4:e2fsprogs qemu-img:qemu-utils flock:util-linux sha256sum:coreutils \
        dpkg-query:dpkg; do
        pkg=${tool##*:}
        tool=${tool%:*}
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool (apt-get install $pkg)")
    done
    [[ -x /usr/libexec/qemu-binfmt/riscv64-binfmt-P || -x /usr/bin/qemu-riscv64-static ]] ||
        missing+=("qemu-riscv64-static (apt-get install qemu-user-static)")
    if ((${#missing[@]})); then
        die "missing tools: ${missing[*]}"
    fi
    ((EUID == 0)) || die "must run as root (mmdebstrap's root mode, binfmt_misc, mkfs.ext4 -d)"
}

# The kernel runs riscv64 programs of the build (maintainer scripts) through binfmt_misc and
# qemu-user-static. On these machines binfmt_misc is not mounted until someone mounts it, and
# after mounting it the qemu formats are not registered until update-binfmts enables them.
ensure_binfmt() {
    local bm=/proc/sys/fs/binfmt_misc
    if [[ ! -e $bm/register ]]; then
        log "mounting binfmt_misc on $bm"
        mount -t binfmt_misc binfmt_misc "$bm" ||
            die "cannot mount binfmt_misc on $bm (is the binfmt_misc module available?)"
    fi
    if [[ ! -e $bm/qemu-riscv64 ]]; then
        log "registering qemu-riscv64 with binfmt_misc"
        update-binfmts --enable qemu-riscv64 ||
            die "update-binfmts --enable qemu-riscv64 failed (is qemu-user-static installed?)"
    fi
    grep -qx enabled "$bm/qemu-riscv64" ||
        die "$bm/qemu-riscv64 is registered but disabled; enable it: echo 1 >$bm/qemu-riscv64"
    arch-test "$ARCH" >/dev/null ||
        die "riscv64 programs do not run here although qemu-riscv64 is registered (arch-test $ARCH)"
}

# Prints "<what> <sha256>" for one file.
hash_line() {
    echo "$1 $(sha256sum <"$2" | cut -c1-64)"
}

# Prints one line per entry under templates/debian/$1: its kind, path, and for files their
# mode and sha256. Fails on anything that is not a file, directory or symlink.
hash_tree() {
    local dir=$TEMPLATE_DIR/$1 path
    while IFS= read -r path; do
        if [[ -L $dir/$path ]]; then
            echo "$1 slink $path $(readlink "$dir/$path")"
        elif [[ -d $dir/$path ]]; then
            echo "$1 dir $path"
        elif [[ -f $dir/$path ]]; then
            echo "$1 file $path $(stat -c %a "$dir/$path") $(sha256sum <"$dir/$path" | cut -c1-64)"
        else
            die "templates/debian/$1/$path: only files, directories and symlinks can be inputs"
        fi
    done < <(cd "$dir" && find . -mindepth 1 | sort)
}

compute_key() {
    INPUTS=$(
        hash_line build.sh "$TEMPLATE_DIR/build.sh"
        hash_tree initramfs-tools
        hash_tree rootfs
        echo "suite $SUITE $ARCH"
        echo "mirror $MIRROR"
        echo "mmdebstrap $(dpkg-query -W -f='${Version}' mmdebstrap)"
        echo "qemu-user-static $(dpkg-query -W -f='${Version}' qemu-user-static 2>/dev/null || echo none)"
    )
    KEY=$(printf '%s\n' "$INPUTS" | sha256sum | cut -c1-16)
    ENTRY=$TEMPLATE_CACHE/$KEY
}

link_results() {
    mkdir -p "$REPO_ROOT/build/templates"
    ln -sfn "$1" "$REPO_ROOT/build/templates/$NAME"
}

# Set while a work tree exists, for on_exit's message.
WORK=
on_exit() {
    local rc=$?
    if [[ -n $HEARTBEAT_PID ]]; then
        kill "$HEARTBEAT_PID" 2>/dev/null || true
    fi
    if ((rc == 0)); then
        return
    elif [[ -z $WORK ]]; then
        printf 'templates/debian/build.sh: did not finish (exit %d) after %ds\n' "$rc" \
            "$((SECONDS - START))" >&2
    else
        printf 'templates/debian/build.sh: did not finish (exit %d) after %ds; build tree kept for debugging at %s (the next run deletes it)\n' \
            "$rc" "$((SECONDS - START))" "$WORK" >&2
    fi
}

# Runs a command inside the image tree (riscv64 programs, through qemu-user).
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"
}

# mmdebstrap with its log in $WORK/mmdebstrap.log and its "I:" steps shown as progress.
run_mmdebstrap() {
    local line
    mmdebstrap "$@" 2>&1 | tee "$WORK/mmdebstrap.log" | while IFS= read -r line; do
        if [[ $line == I:* ]]; then
            log "  mmdebstrap: ${line#I: }"
        fi
    done
    # With pipefail the pipeline fails when mmdebstrap or tee does; the loop ends with 0.
}

bootstrap() {
    local include
    include=$(
        IFS=,
        echo "${PACKAGES[*]}"
    )
    log "mmdebstrap $SUITE $ARCH from $MIRROR (${#PACKAGES[@]} packages on minbase)"
    # Documentation, manual pages and translations are dropped as dpkg unpacks (the copyright
    # files stay): a third of the image, and nobody reads them on a cloud VM.
    # initramfs-tools/ goes in before any package, so that the kernel's postinst makes the
    # small initrd once instead of Debian's default one that would then be made again.
    # shellcheck disable=SC2016 # mmdebstrap gives a hook the tree as $1; it is not ours to expand
    with_heartbeat "bootstrapping (the packages' scripts run under qemu-user)" \
        run_mmdebstrap --mode=root --variant=minbase --arch="$ARCH" --include="$include" \
        --setup-hook='mkdir -p "$1/etc/initramfs-tools"' \
        --setup-hook="cp -a --no-preserve=ownership '$TEMPLATE_DIR/initramfs-tools/.' \"\$1/etc/initramfs-tools/\"" \
        --aptopt='Acquire::Languages "none"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$SUITE" "$ROOT" "$MIRROR" ||
        {
            tail -n 30 "$WORK/mmdebstrap.log" >&2
            die "mmdebstrap failed; its log is $WORK/mmdebstrap.log"
        }
}

# What makes the tree a cloud template rather than a chroot.
customize() {
    log "customizing the tree (rootfs/, services, first-boot identity)"
    cp -a --no-preserve=ownership "$TEMPLATE_DIR/rootfs/." "$ROOT/"
    echo debian >"$ROOT/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    in_root systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1 ||
        die "systemctl enable systemd-networkd systemd-resolved failed in the image"
    # Identity made on each VM's first boot, never shared by the VMs of one template: an
    # empty machine-id makes systemd generate one; cloud-init generates the SSH host keys.
    : >"$ROOT/etc/machine-id"
    rm -f "$ROOT/var/lib/dbus/machine-id" "$ROOT"/etc/ssh/ssh_host_*
    # The package lists and downloaded .debs are of the build, not of the VM.
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
    rm -f "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/*
    # The boot's "update" units (ldconfig, the journal catalog, ...) run when /usr is newer than
    # these stamps (systemd.unit(5), ConditionNeedsUpdate=); the build has done their work, and
    # under an interpreter they cost the first boot a minute. The stamp is a second newer than
    # /usr, as systemd-update-done writes it.
    local stamp f
    stamp=$(($(stat -c %Y "$ROOT/usr") + 1))
    for f in "$ROOT/etc/.updated" "$ROOT/var/.updated"; do
        printf '# Written by templates/debian/build.sh for systemd (ConditionNeedsUpdate=)\nTIMESTAMP_NSEC=%d000000000\n' \
            "$stamp" >"$f"
        touch -d "@$stamp" "$f"
    done
}

# Copies the kernel, its config and initrd out of /boot. Debian's riscv64 vmlinux-* is the
# uncompressed Image with its EFI stub ("MZ", then the "RSC\x05" Image magic at 0x38), which
# Tessera's loader boots as an Image.
extract_boot() {
    local kernels initrds
    kernels=("$ROOT"/boot/vmlinux-*)
    initrds=("$ROOT"/boot/initrd.img-*)
    [[ ${#kernels[@]} -eq 1 && -f ${kernels[0]} ]] ||
        die "expected one kernel in the image's /boot, found: ${kernels[*]}"
    [[ ${#initrds[@]} -eq 1 && -f ${initrds[0]} ]] ||
        die "expected one initrd in the image's /boot, found: ${initrds[*]}"
    KERNEL_RELEASE=${kernels[0]##*/vmlinux-}
    [[ $(dd if="${kernels[0]}" bs=1 skip=56 count=4 status=none) == $'RSC\x05' ]] ||
        die "${kernels[0]##*/}: no RISC-V Image magic at offset 56; Debian changed the kernel format"
    cp "${kernels[0]}" "$OUT/Image"
    cp "${initrds[0]}" "$OUT/initrd.img"
    cp "$ROOT/boot/config-$KERNEL_RELEASE" "$OUT/kernel.config"
}

make_disk() {
    local used_mib
    used_mib=$(du -sm "$ROOT" | cut -f1)
    ((used_mib < FS_SIZE_MIB * 3 / 4)) ||
        die "the tree holds ${used_mib} MiB, too much for a ${FS_SIZE_MIB} MiB file system; raise FS_SIZE_MIB"
    log "making the ext4 root file system (${used_mib} MiB used of ${FS_SIZE_MIB} MiB)"
    with_heartbeat "making the file system" \
        mkfs.ext4 -q -F -L debian-root -E root_owner=0:0 -d "$ROOT" "$WORK/disk.raw" "${FS_SIZE_MIB}M" ||
        die "mkfs.ext4 -d $ROOT failed"
    log "converting to qcow2"
    qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$OUT/disk.qcow2" ||
        die "qemu-img convert of $WORK/disk.raw failed"
    rm -f "$WORK/disk.raw"
}

write_manifest() {
    {
        echo "# Debian $SUITE $ARCH packages in this template, as dpkg-query -W lists them"
        dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package} ${Version}\n'
    } >"$OUT/manifest.txt"
}

# The template's VM defaults, in the shape of the daemon's POST /templates body (sizes in
# bytes), with the files relative to this directory.
write_template_json() {
    cat >"$OUT/template.json" <<EOF
{
  "name": "$NAME",
  "os": "debian-13-$ARCH",
  "cpus": $DEFAULT_CPUS,
  "memory_bytes": $((DEFAULT_MEMORY_MIB * 1024 * 1024)),
  "disk_bytes": $((FS_SIZE_MIB * 1024 * 1024)),
  "volume": "disk.qcow2",
  "boot": {
    "kernel": "Image",
    "initrd": "initrd.img",
    "cmdline": "$DEFAULT_CMDLINE"
  },
  "kernel_release": "$KERNEL_RELEASE"
}
EOF
}

# ---------------------------------------------------------------------------

# All of the work is in functions, and the last line calls main and exits: bash reads a
# script as it runs it, so an edit of this file during a build cannot change the build.
main() {
    local stale
    check_tools
    compute_key

    if [[ -f $ENTRY/COMPLETE ]]; then
        link_results "$ENTRY"
        log "cached template $NAME $KEY: $ENTRY"
        exit 0
    fi

    trap on_exit EXIT
    # Turn ^C and kill into an ordinary exit so that on_exit reports it.
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP

    mkdir -p "$TEMPLATE_CACHE"
    exec 9>"$TEMPLATE_CACHE/.lock"
    if ! flock -n 9; then
        log "another build holds $TEMPLATE_CACHE/.lock; waiting for it"
        flock 9
    fi
    # The other build may have made our entry.
    if [[ -f $ENTRY/COMPLETE ]]; then
        link_results "$ENTRY"
        log "cached template $NAME $KEY: $ENTRY"
        exit 0
    fi
    # We hold the lock, so every work directory left is from a failed or killed build.
    stale=("$TEMPLATE_CACHE"/.work-*)
    if [[ -e ${stale[0]} ]]; then
        log "removing ${#stale[@]} work tree(s) left by an earlier failed build"
        with_heartbeat "removing old work trees" rm -rf "${stale[@]}"
    fi

    ensure_binfmt
    WORK=$(mktemp -d "$TEMPLATE_CACHE/.work-$KEY.XXXXXX")
    ROOT=$WORK/root
    OUT=$WORK/entry
    mkdir "$OUT"
    log "template $NAME $KEY: building in $WORK"
    printf '%s\n' "$INPUTS" | sed 's/^/    /'

    bootstrap
    customize
    extract_boot
    write_manifest
    make_disk
    write_template_json
    # The build read the working tree as it was; an entry under the key of another is a lie.
    local now
    now=$(compute_key && echo "$KEY")
    [[ $now == "$KEY" ]] || die "inputs changed while building; run templates/debian/build.sh again"

    printf '%s\n' "$INPUTS" >"$OUT/inputs.txt"
    # Written last: an entry without it is not an entry.
    printf 'key %s\nbuilt %s in %ds\n' "$KEY" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "$((SECONDS - START))" >"$OUT/COMPLETE"
    rm -rf "$ENTRY"
    mv -T "$OUT" "$ENTRY"
    with_heartbeat "removing the build tree" rm -rf "$WORK"
    WORK=
    link_results "$ENTRY"
    log "done: template $NAME $KEY in $ENTRY ($((SECONDS - START))s)"
    log "  kernel $KERNEL_RELEASE; disk.qcow2 $(stat -c %s "$ENTRY/disk.qcow2") bytes," \
        "$(grep -vc '^#' "$ENTRY/manifest.txt") packages"
}

main "$@"
exit
