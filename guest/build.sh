#!/usr/bin/env bash
# Build the Tessera default Linux guest: a riscv64 kernel Image and a BusyBox
# initramfs. See guest/README.md.
#
# The build has three stages, each cached on its own, outside the clone:
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/guest/kernel/<key>/
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/guest/busybox/<key>/
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/guest/initramfs/<key>/
# Each <key> hashes that stage's inputs only (its script in guest/stages/ and
# what that script's <stage>_inputs prints), so a change to rootfs/ or to the
# agent rebuilds the initramfs in seconds and reuses the kernel. The guest
# itself is the entry
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/guest/<key>/
# keyed on this script and the three stage keys; it holds hard links to the
# stage results, so deleting a stage entry never breaks it.
#
# Every entry is built in a work directory beside it and renamed into place
# only once complete, with the COMPLETE marker written last, so an interrupted
# build never leaves a half entry. Builds hold $CACHE_ROOT/guest/.lock. Either
# way the script ends by pointing build/guest/{Image,initramfs.cpio.gz,
# kernel.config} in the repository at the guest entry.
#
# This file is the driver: logging, keys, locking and entries. It is part of
# the final entry's key only: a change here that changes what a stage
# produces belongs in that stage's script instead.
#
# Environment:
#   TESSERA_CACHE        cache root (default $HOME/.cache/tessera)
#   TESSERA_GUEST_JOBS   make -j value (default: nproc)
# The stage scripts (sourced) call functions and read variables of this file.
# shellcheck disable=SC2317,SC2034
set -euo pipefail
# Keys are built in $(...); a failure there must stop the script.
shopt -s inherit_errexit
export LC_ALL=C
# Stray kbuild settings from the caller's shell would redirect the builds.
unset ARCH CROSS_COMPILE KBUILD_OUTPUT KCONFIG_CONFIG O MAKEFLAGS MFLAGS

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$GUEST_DIR")
CACHE_ROOT=${TESSERA_CACHE:-$HOME/.cache/tessera}
GUEST_CACHE=$CACHE_ROOT/guest
JOBS=${TESSERA_GUEST_JOBS:-$(nproc)}

KERNEL_PKG=linux-source-6.1
KERNEL_TARBALL=/usr/src/linux-source-6.1.tar.xz
CROSS=riscv64-linux-gnu-

# In build order: a stage may use the entries of the stages before it.
STAGES=(kernel busybox initramfs)

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

# Sets KERNEL_VERSION (the linux-source package version) and CROSS_GCC_VERSION
# (the first line of the cross compiler's --version), inputs of several stages.
query_versions() {
    KERNEL_VERSION=$(dpkg-query -W -f='${Version}' "$KERNEL_PKG" 2>/dev/null) ||
        die "$KERNEL_PKG is not installed (dpkg-query found no version); apt-get install $KERNEL_PKG"
    CROSS_GCC_VERSION=$("${CROSS}gcc" --version)
    CROSS_GCC_VERSION=${CROSS_GCC_VERSION%%$'\n'*}
}

# Prints "<what> <sha256>" for one file.
hash_line() {
    echo "$1 $(sha256sum <"$2" | cut -c1-64)"
}

# Prints one line per entry under the directory $2 (relative to GUEST_DIR),
# prefixed with $1: its kind, path, and for files the mode it gets in the
# cpio and its sha256. Entries whose name matches the glob $3 (optional) are
# left out. Fails on anything that is not a file, directory or symlink.
hash_tree() {
    local prefix=$1 dir=$GUEST_DIR/$2 skip=${3:-} path mode
    [[ -d $dir ]] || return 0
    while IFS= read -r path; do
        # shellcheck disable=SC2053 # $skip is a glob on purpose
        if [[ -n $skip && ${path##*/} == $skip ]]; then
            continue
        elif [[ -L $dir/$path ]]; then
            echo "$prefix slink $path $(readlink "$dir/$path")"
        elif [[ -d $dir/$path ]]; then
            echo "$prefix dir $path"
        elif [[ -f $dir/$path ]]; then
            mode=0644
            [[ -x $dir/$path ]] && mode=0755
            echo "$prefix file $path $mode $(sha256sum <"$dir/$path" | cut -c1-64)"
        else
            die "guest/$2/$path: only files, directories and symlinks can be inputs"
        fi
    done < <(cd "$dir" && find . -mindepth 1 | sort)
}

# The per-stage state, filled by compute_keys:
#   STAGE_INPUTS[s]  the text hashed into the key, one line per input
#   STAGE_KEY[s]     first 16 hex digits of its sha256
#   STAGE_ENTRY[s]   $GUEST_CACHE/<s>/<key>
declare -A STAGE_INPUTS=() STAGE_KEY=() STAGE_ENTRY=()

# Prints the key lines of stage $1: its script's hash, then what its
# <stage>_inputs prints.
stage_inputs() {
    hash_line "stages/$1.sh" "$GUEST_DIR/stages/$1.sh"
    "${1}_inputs"
}

compute_keys() {
    local s
    for s in "${STAGES[@]}"; do
        # shellcheck source=/dev/null
        source "$GUEST_DIR/stages/$s.sh"
        STAGE_INPUTS[$s]=$(stage_inputs "$s")
        STAGE_KEY[$s]=$(printf '%s\n' "${STAGE_INPUTS[$s]}" | sha256sum | cut -c1-16)
        STAGE_ENTRY[$s]=$GUEST_CACHE/$s/${STAGE_KEY[$s]}
    done
    GUEST_INPUTS=$(
        hash_line build.sh "$GUEST_DIR/build.sh"
        for s in "${STAGES[@]}"; do
            echo "stage $s ${STAGE_KEY[$s]}"
        done
    )
    KEY=$(printf '%s\n' "$GUEST_INPUTS" | sha256sum | cut -c1-16)
    ENTRY=$GUEST_CACHE/$KEY
}

link_results() {
    local entry=$1 f
    mkdir -p "$REPO_ROOT/build/guest"
    for f in Image initramfs.cpio.gz kernel.config; do
        ln -sfn "$entry/$f" "$REPO_ROOT/build/guest/$f"
    done
}

# Set while a work tree exists, for on_exit's message.
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
        printf 'guest/build.sh: stopped while removing the build tree %s; the entry itself is complete\n' \
            "$WORK" >&2
    elif [[ -z $WORK ]]; then
        printf 'guest/build.sh: did not finish (exit %d) after %ds\n' "$rc" "$((SECONDS - START))" >&2
    else
        printf 'guest/build.sh: did not finish (exit %d) after %ds; build tree kept for debugging at %s (the next run deletes it)\n' \
            "$rc" "$((SECONDS - START))" "$WORK" >&2
    fi
}

# Moves the finished $WORK/entry into place as $1, with inputs.txt ($2) and
# the COMPLETE marker ($3 is the key), then deletes the work tree.
commit_entry() {
    local dest=$1 inputs=$2 key=$3 out=$WORK/entry
    printf '%s\n' "$inputs" >"$out/inputs.txt"
    # Written last: an entry without it is not an entry.
    printf 'key %s\nbuilt %s in %ds\n' "$key" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "$((SECONDS - STAGE_START))" >"$out/COMPLETE"
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    mv -T "$out" "$dest"
    BUILT=1
    with_heartbeat "removing the build tree" rm -rf "$WORK"
    WORK=
    BUILT=
}

# Builds stage $1 unless its entry is complete. The stage's <s>_build gets
# the work tree as $1 and must leave the entry's files in $1/entry.
ensure_stage() {
    local s=$1 key=${STAGE_KEY[$1]} entry=${STAGE_ENTRY[$1]}
    if [[ -f $entry/COMPLETE ]]; then
        log "$s $key: cached"
        return
    fi
    STAGE_START=$SECONDS
    WORK=$(mktemp -d "$GUEST_CACHE/.work-$s-$key.XXXXXX")
    mkdir "$WORK/entry"
    log "$s $key: building in $WORK (make -j$JOBS)"
    printf '%s\n' "${STAGE_INPUTS[$s]}" | sed 's/^/    /'
    "${s}_build" "$WORK"
    # The stage read the working tree as it was during the build; an entry
    # under the key of the tree as it was before would be a lie.
    [[ $(stage_inputs "$s") == "${STAGE_INPUTS[$s]}" ]] ||
        die "inputs of the $s stage changed while it was building; run guest/build.sh again"
    commit_entry "$entry" "${STAGE_INPUTS[$s]}" "$key"
    log "$s $key: done in $((SECONDS - STAGE_START))s"
}

# Hard-links (or, across file systems, copies) file $1 to $2.
link_or_copy() {
    ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

# ---------------------------------------------------------------------------

# All of the work is in functions, and the last line calls main and exits:
# bash reads a script as it runs it, so this way an edit of this file (a git
# checkout) during a build cannot change what the running build does.
main() {
    local s stale
    check_tools
    query_versions
    query_busybox_source
    compute_keys

    if [[ -f $ENTRY/COMPLETE ]]; then
        link_results "$ENTRY"
        log "cached guest $KEY: $ENTRY"
        exit 0
    fi

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

    log "guest $KEY: stages ${STAGES[*]}"
    for s in "${STAGES[@]}"; do
        ensure_stage "$s"
    done

    # The guest entry: the files tests and people use, linked from the stages.
    STAGE_START=$SECONDS
    WORK=$(mktemp -d "$GUEST_CACHE/.work-guest-$KEY.XXXXXX")
    mkdir "$WORK/entry"
    link_or_copy "${STAGE_ENTRY[kernel]}/Image" "$WORK/entry/Image"
    link_or_copy "${STAGE_ENTRY[kernel]}/kernel.config" "$WORK/entry/kernel.config"
    link_or_copy "${STAGE_ENTRY[busybox]}/busybox.config" "$WORK/entry/busybox.config"
    link_or_copy "${STAGE_ENTRY[initramfs]}/initramfs.cpio.gz" "$WORK/entry/initramfs.cpio.gz"
    link_or_copy "${STAGE_ENTRY[initramfs]}/initramfs.list" "$WORK/entry/initramfs.list"
    commit_entry "$ENTRY" "$(
        printf '%s\n' "$GUEST_INPUTS"
        for s in "${STAGES[@]}"; do
            printf '%s\n' "${STAGE_INPUTS[$s]}" | sed "s/^/$s: /"
        done
    )" "$KEY"
    link_results "$ENTRY"

    log "done: guest $KEY in $ENTRY"
    log "  Image $(stat -c %s "$ENTRY/Image") bytes, initramfs.cpio.gz $(stat -c %s "$ENTRY/initramfs.cpio.gz") bytes"
}

main "$@"; exit
