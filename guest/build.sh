#!/usr/bin/env bash
# Build the Tessera default Linux guest: a riscv64 kernel Image and a BusyBox
# initramfs. See guest/README.md.
#
# The result is cached outside the clone, in
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/guest/<key>/
# where <key> hashes every input (see print_inputs). A cache entry is built in
# a work directory beside it and renamed into place only once complete, with
# the COMPLETE marker written last, so an interrupted build never leaves a half
# entry. Either way the script ends by pointing build/guest/{Image,
# initramfs.cpio.gz,kernel.config} in the repository at the entry.
#
# Environment:
#   TESSERA_CACHE        cache root (default $HOME/.cache/tessera)
#   TESSERA_GUEST_JOBS   make -j value (default: nproc)
set -euo pipefail
export LC_ALL=C
# Stray kbuild settings from the caller's shell would redirect the builds.
unset ARCH CROSS_COMPILE KBUILD_OUTPUT KCONFIG_CONFIG O MAKEFLAGS MFLAGS

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$GUEST_DIR")
CACHE_ROOT=${TESSERA_CACHE:-$HOME/.cache/tessera}
JOBS=${TESSERA_GUEST_JOBS:-$(nproc)}

KERNEL_PKG=linux-source-6.1
KERNEL_TARBALL=/usr/src/linux-source-6.1.tar.xz
CROSS=riscv64-linux-gnu-

START=$SECONDS

log() { printf '[guest %4ds] %s\n' "$((SECONDS - START))" "$*"; }

die() {
    printf 'guest/build.sh: error: %s\n' "$*" >&2
    exit 1
}

# Run "$@" (a step that prints nothing for a long time, like tar -xJ) in the
# foreground, with a background loop that prints a line every 15 s until it
# ends. Returns its exit status. on_exit stops the loop if we are killed.
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
    for tool in make:make gcc:gcc "${CROSS}gcc:gcc-riscv64-linux-gnu" bc:bc flex:flex \
        bison:bison tar:tar xz:xz-utils gzip:gzip flock:util-linux sha256sum:coreutils \
        dpkg-query:dpkg dpkg-source:dpkg-dev apt-get:apt; do
        pkg=${tool##*:}
        tool=${tool%:*}
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool (apt-get install $pkg)")
    done
    if ((${#missing[@]})); then
        die "missing tools: ${missing[*]}"
    fi
    [[ -r $KERNEL_TARBALL ]] ||
        die "$KERNEL_TARBALL not found; install it with: apt-get install $KERNEL_PKG"
}

# apt-get source as root downloads unsandboxed; say so up front instead of
# letting apt warn that user _apt cannot write to the cache directory.
apt_source() {
    if ((EUID == 0)); then
        apt-get -o APT::Sandbox::User=root source "$@"
    else
        apt-get source "$@"
    fi
}

# Sets BUSYBOX_FILES (lines "name size SHA256:...") and BUSYBOX_VERSION for
# the source package `apt-get source busybox` would fetch. Reads only the
# local apt lists; downloads nothing.
query_busybox_source() {
    local out
    if ! out=$(apt_source --print-uris busybox 2>&1); then
        printf '%s\n' "$out" | grep '^E:' >&2 || true
        die "'apt-get source busybox' does not work here. Fix: add a deb-src entry for" \
            "Debian bookworm, e.g. /etc/apt/sources.list.d/debian-src.sources with the lines" \
            "'Types: deb-src', 'URIs: http://deb.debian.org/debian'," \
            "'Suites: bookworm bookworm-updates', 'Components: main', then run apt-get update."
    fi
    BUSYBOX_FILES=$(printf '%s\n' "$out" | sed -n "s/^'[^']*' \(.*\)$/\1/p")
    BUSYBOX_VERSION=$(printf '%s\n' "$BUSYBOX_FILES" | sed -n 's/^busybox_\(.*\)\.dsc .*/\1/p')
    [[ -n $BUSYBOX_VERSION ]] ||
        die "could not find the busybox .dsc in the output of 'apt-get source --print-uris busybox'"
}

# The cache key is the sha256 of this text: one line per input.
print_inputs() {
    local kernel_version gcc_version path mode
    kernel_version=$(dpkg-query -W -f='${Version}' "$KERNEL_PKG" 2>/dev/null) ||
        die "$KERNEL_PKG is not installed (dpkg-query found no version); apt-get install $KERNEL_PKG"
    gcc_version=$("${CROSS}gcc" --version)
    gcc_version=${gcc_version%%$'\n'*}

    echo "build.sh $(sha256sum <"$GUEST_DIR/build.sh" | cut -c1-64)"
    echo "kernel.config $(sha256sum <"$GUEST_DIR/kernel.config" | cut -c1-64)"
    # Every file under guest/rootfs, with the mode it gets in the cpio.
    while IFS= read -r path; do
        if [[ -L $GUEST_DIR/rootfs/$path ]]; then
            echo "rootfs slink $path $(readlink "$GUEST_DIR/rootfs/$path")"
        elif [[ -d $GUEST_DIR/rootfs/$path ]]; then
            echo "rootfs dir $path"
        elif [[ -f $GUEST_DIR/rootfs/$path ]]; then
            mode=0644
            [[ -x $GUEST_DIR/rootfs/$path ]] && mode=0755
            echo "rootfs file $path $mode $(sha256sum <"$GUEST_DIR/rootfs/$path" | cut -c1-64)"
        else
            die "guest/rootfs/$path: only files, directories and symlinks can go into the initramfs"
        fi
    done < <(cd "$GUEST_DIR/rootfs" && find . -mindepth 1 | sort)
    echo "$KERNEL_PKG $kernel_version"
    echo "busybox-source $BUSYBOX_VERSION"
    printf '%s\n' "$BUSYBOX_FILES" | sed 's/^/busybox-source-file /'
    echo "cross-gcc $gcc_version"
}

link_results() {
    local entry=$1 f
    mkdir -p "$REPO_ROOT/build/guest"
    for f in Image initramfs.cpio.gz kernel.config; do
        ln -sfn "$entry/$f" "$REPO_ROOT/build/guest/$f"
    done
}

# Fails naming every line of the fragment $1 that did not make it into the
# kernel config $2: a `CONFIG_X=v` line that is not in $2 verbatim, or a
# `# CONFIG_X is not set` line whose symbol ended up set. Kconfig drops a
# symbol without a word when a dependency is missing, so this is the check
# that keeps the fragment honest. Symbols named in `# absent-ok: SYMBOL`
# comments (no CONFIG_ prefix) are skipped.
verify_kernel_config() {
    local fragment=$1 config=$2 line sym have
    local -a bad=()
    local -A absent_ok=()
    while read -r sym; do
        absent_ok[$sym]=1
    done < <(sed -n 's/^# absent-ok: \([A-Za-z0-9_]*\).*/CONFIG_\1/p' "$fragment")

    while IFS= read -r line; do
        case $line in
        CONFIG_*=*)
            sym=${line%%=*}
            [[ -n ${absent_ok[$sym]:-} ]] && continue
            grep -qxF -- "$line" "$config" && continue
            have=$(grep -E "^(# )?${sym}[= ]" "$config" || echo "absent from .config")
            bad+=("wanted $line, got: $have")
            ;;
        "# CONFIG_"*" is not set")
            sym=${line#\# }
            sym=${sym%% *}
            if have=$(grep -E "^$sym=" "$config"); then
                bad+=("wanted $sym off, got: $have")
            fi
            ;;
        esac
    done <"$fragment"

    if ((${#bad[@]})); then
        printf 'guest/build.sh: error: %s: %d line(s) did not survive olddefconfig\n' \
            "$fragment" "${#bad[@]}" >&2
        printf '  %s\n' "${bad[@]}" >&2
        printf '  Fix the missing dependency, or document the symbol as "# absent-ok: SYMBOL <why>".\n' >&2
        exit 1
    fi
}

# Writes the gen_init_cpio(1) file list for the tree $1 to stdout. Everything
# is owned by root; files are 0755 if executable, else 0644. Device nodes are
# added here because an unprivileged build cannot mknod them in the tree.
print_cpio_list() {
    local root=$1 path mode
    while IFS= read -r path; do
        path=${path#.}
        [[ $path =~ [[:space:]] ]] && die "rootfs path '$path' contains white space, gen_init_cpio cannot name it"
        if [[ -L $root$path ]]; then
            echo "slink $path $(readlink "$root$path") 0777 0 0"
        elif [[ -d $root$path ]]; then
            case $path in
            /tmp) mode=1777 ;;
            /root) mode=0700 ;;
            *) mode=0755 ;;
            esac
            echo "dir $path $mode 0 0"
        elif [[ -f $root$path ]]; then
            mode=0644
            [[ -x $root$path ]] && mode=0755
            echo "file $path $root$path $mode 0 0"
        else
            die "$root$path: not a file, directory or symlink"
        fi
    done < <(cd "$root" && find . -mindepth 1 | sort)
    echo "nod /dev/console 0600 0 0 c 5 1"
    echo "nod /dev/null 0666 0 0 c 1 3"
}

# ---------------------------------------------------------------------------

check_tools
query_busybox_source
INPUTS=$(print_inputs)
KEY=$(printf '%s\n' "$INPUTS" | sha256sum | cut -c1-16)
GUEST_CACHE=$CACHE_ROOT/guest
ENTRY=$GUEST_CACHE/$KEY

if [[ -f $ENTRY/COMPLETE ]]; then
    link_results "$ENTRY"
    log "cached guest $KEY: $ENTRY"
    exit 0
fi

WORK=
BUILT=
on_exit() {
    local rc=$?
    if [[ -n $HEARTBEAT_PID ]]; then
        kill "$HEARTBEAT_PID" 2>/dev/null || true
    fi
    if ((rc == 0)); then
        return
    elif [[ -n $BUILT ]]; then
        printf 'guest/build.sh: stopped while removing the build tree %s; the guest itself is complete\n' \
            "$WORK" >&2
    elif [[ -z $WORK ]]; then
        printf 'guest/build.sh: did not finish (exit %d) after %ds\n' "$rc" "$((SECONDS - START))" >&2
    else
        printf 'guest/build.sh: did not finish (exit %d) after %ds; build tree kept for debugging at %s (the next run deletes it)\n' \
            "$rc" "$((SECONDS - START))" "$WORK" >&2
    fi
}
trap on_exit EXIT
# Turn ^C and kill into an ordinary exit so that on_exit reports it.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mkdir -p "$GUEST_CACHE"
exec 9>"$GUEST_CACHE/.lock"
if ! flock -n 9; then
    log "another guest build holds $GUEST_CACHE/.lock; waiting for it"
    flock 9
fi
# The other build may have made our entry.
if [[ -f $ENTRY/COMPLETE ]]; then
    link_results "$ENTRY"
    log "cached guest $KEY: $ENTRY"
    exit 0
fi
# We hold the lock, so every work directory left is from a failed or killed
# build. Deleting a kernel tree takes a while on some disks; say so.
stale=("$GUEST_CACHE"/.work-*)
if [[ -e ${stale[0]} ]]; then
    log "removing ${#stale[@]} work tree(s) left by an earlier failed build"
    with_heartbeat "removing old work trees" rm -rf "${stale[@]}"
fi
rm -rf "$ENTRY"

WORK=$(mktemp -d "$GUEST_CACHE/.work-$KEY.XXXXXX")

log "building guest $KEY in $WORK (make -j$JOBS)"
printf '%s\n' "$INPUTS" | sed 's/^/    /'

# --- kernel ---------------------------------------------------------------
KSRC=$WORK/$KERNEL_PKG
kmake() { make -C "$KSRC" ARCH=riscv CROSS_COMPILE="$CROSS" "$@"; }

log "stage 1/6: extracting $KERNEL_TARBALL"
with_heartbeat "extracting the kernel source" tar -xJf "$KERNEL_TARBALL" -C "$WORK"
[[ -f $KSRC/Makefile ]] || die "$KERNEL_TARBALL did not unpack to $KSRC"

log "stage 2/6: configuring the kernel: tinyconfig + guest/kernel.config"
kmake -s tinyconfig
(cd "$KSRC" && ARCH=riscv scripts/kconfig/merge_config.sh -m .config "$GUEST_DIR/kernel.config" |
    sed '/^$/d')
kmake -s olddefconfig
verify_kernel_config "$GUEST_DIR/kernel.config" "$KSRC/.config"
log "  all lines of guest/kernel.config survived olddefconfig"

log "stage 3/6: building the kernel Image"
kmake -j"$JOBS" Image
# gen_init_cpio is a host tool that the kernel build makes for usr/
# (BLK_DEV_INITRD=y); build it by name in case that ever changes.
[[ -x $KSRC/usr/gen_init_cpio ]] || kmake usr/gen_init_cpio

# --- busybox --------------------------------------------------------------
BB_DOWNLOADS=$CACHE_ROOT/downloads/busybox_$BUSYBOX_VERSION
log "stage 4/6: fetching the busybox source $BUSYBOX_VERSION"
mkdir -p "$WORK/busybox"
# apt-get source skips files already present with the right checksum, so
# seeding the directory from the download cache avoids the network.
if [[ -d $BB_DOWNLOADS ]]; then
    cp "$BB_DOWNLOADS"/* "$WORK/busybox/"
fi
(cd "$WORK/busybox" && apt_source busybox)
if [[ ! -d $BB_DOWNLOADS ]]; then
    mkdir -p "$CACHE_ROOT/downloads"
    tmp=$(mktemp -d "$CACHE_ROOT/downloads/.tmp.XXXXXX")
    printf '%s\n' "$BUSYBOX_FILES" | while read -r name _; do
        cp "$WORK/busybox/$name" "$tmp/"
    done
    mv -T "$tmp" "$BB_DOWNLOADS" 2>/dev/null || rm -rf "$tmp"
fi
BBSRC=$(find "$WORK/busybox" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*')
[[ -f $BBSRC/Makefile ]] || die "apt-get source busybox did not unpack a source tree in $WORK/busybox"

log "stage 5/6: building busybox (static)"
bbmake() { make -C "$BBSRC" "$@"; }
# defconfig answers every question on stdout; that is not progress.
bbmake -s defconfig >/dev/null
sed -i \
    -e 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' \
    -e "s/^CONFIG_CROSS_COMPILER_PREFIX=.*/CONFIG_CROSS_COMPILER_PREFIX=\"$CROSS\"/" \
    "$BBSRC/.config"
# `yes` dies of SIGPIPE when oldconfig stops reading; that is not a failure.
{ yes "" || true; } | bbmake -s oldconfig >/dev/null
grep -qx 'CONFIG_STATIC=y' "$BBSRC/.config" || die "busybox: CONFIG_STATIC=y did not stick"
grep -qx "CONFIG_CROSS_COMPILER_PREFIX=\"$CROSS\"" "$BBSRC/.config" ||
    die "busybox: CONFIG_CROSS_COMPILER_PREFIX did not stick"
# With Debian's busybox 1.35.0 and glibc 2.36 every defconfig applet links
# statically; user and group look-ups use busybox's own /etc/passwd reader
# (USE_BB_PWD_GRP), not glibc's NSS, which a static binary cannot load. If an
# applet ever stops linking, turn off just that one in the sed above and say
# why here.
bbmake -j"$JOBS"
ROOTFS=$WORK/rootfs
bbmake -s install CONFIG_PREFIX="$ROOTFS" >/dev/null
[[ -x $ROOTFS/bin/busybox ]] || die "busybox install left no $ROOTFS/bin/busybox"
log "  installed busybox and $(find "$ROOTFS" -type l | wc -l) applet links"

# --- initramfs ------------------------------------------------------------
log "stage 6/6: packing the initramfs"
rm -f "$ROOTFS/linuxrc"
mkdir -p "$ROOTFS"/{dev,proc,sys,tmp,root,mnt,run,etc}
cp -R "$GUEST_DIR/rootfs/." "$ROOTFS/"
# The kernel runs /init from an initramfs; BusyBox picks the applet by
# argv[0]'s base name, so this is busybox init as PID 1.
[[ -e $ROOTFS/init || -L $ROOTFS/init ]] || ln -s /sbin/init "$ROOTFS/init"
# Fixed timestamps make the archive depend only on its contents.
find "$ROOTFS" -exec touch -h -d @0 {} +

OUT=$WORK/entry
mkdir "$OUT"
print_cpio_list "$ROOTFS" >"$OUT/initramfs.list"
"$KSRC/usr/gen_init_cpio" -t 0 "$OUT/initramfs.list" | gzip -9 -n >"$OUT/initramfs.cpio.gz"
# The list names files in the work tree, which is about to go away.
sed -i "s| $ROOTFS/| /|" "$OUT/initramfs.list"

cp "$KSRC/arch/riscv/boot/Image" "$OUT/Image"
cp "$KSRC/.config" "$OUT/kernel.config"
cp "$BBSRC/.config" "$OUT/busybox.config"
printf '%s\n' "$INPUTS" >"$OUT/inputs.txt"
# Written last: an entry without it is not an entry.
printf 'key %s\nbuilt %s in %ds\n' "$KEY" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$((SECONDS - START))" >"$OUT/COMPLETE"
mv -T "$OUT" "$ENTRY"
BUILT=1
link_results "$ENTRY"

log "removing the build tree"
with_heartbeat "removing the build tree" rm -rf "$WORK"
log "done: guest $KEY in $ENTRY"
log "  Image $(stat -c %s "$ENTRY/Image") bytes, initramfs.cpio.gz $(stat -c %s "$ENTRY/initramfs.cpio.gz") bytes"
