# shellcheck shell=bash
# Stage "busybox" of guest/build.sh (sourced, not run): Debian's busybox
# source package, defconfig, linked statically for riscv64.
#
# Entry: install/ (what `make install` made: bin/busybox and the applet
# links, relative), busybox.config.
#
# The key covers this file (build.sh hashes it), the source package's files
# and the cross compiler.

busybox_inputs() {
    echo "busybox-source $BUSYBOX_VERSION"
    printf '%s\n' "$BUSYBOX_FILES" | sed 's/^/busybox-source-file /'
    echo "cross-gcc $CROSS_GCC_VERSION"
}

# $1: the work tree. Leaves the entry's files in $1/entry.
busybox_build() {
    local work=$1 downloads=$CACHE_ROOT/downloads/busybox_$BUSYBOX_VERSION tmp bbsrc
    log "busybox 1/2: fetching the source $BUSYBOX_VERSION"
    mkdir -p "$work/src"
    # apt-get source skips files already present with the right checksum, so
    # seeding the directory from the download cache avoids the network.
    if [[ -d $downloads ]]; then
        cp "$downloads"/* "$work/src/"
    fi
    (cd "$work/src" && apt_source busybox)
    if [[ ! -d $downloads ]]; then
        mkdir -p "$CACHE_ROOT/downloads"
        tmp=$(mktemp -d "$CACHE_ROOT/downloads/.tmp.XXXXXX")
        printf '%s\n' "$BUSYBOX_FILES" | while read -r name _; do
            cp "$work/src/$name" "$tmp/"
        done
        mv -T "$tmp" "$downloads" 2>/dev/null || rm -rf "$tmp"
    fi
    bbsrc=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*')
    [[ -f $bbsrc/Makefile ]] || die "apt-get source busybox did not unpack a source tree in $work/src"

    log "busybox 2/2: building (static)"
    bbmake() { make -C "$bbsrc" "$@"; }
    # defconfig answers every question on stdout; that is not progress.
    bbmake -s defconfig >/dev/null
    sed -i \
        -e 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' \
        -e "s/^CONFIG_CROSS_COMPILER_PREFIX=.*/CONFIG_CROSS_COMPILER_PREFIX=\"$CROSS\"/" \
        "$bbsrc/.config"
    # `yes` dies of SIGPIPE when oldconfig stops reading; that is not a failure.
    { yes "" || true; } | bbmake -s oldconfig >/dev/null
    grep -qx 'CONFIG_STATIC=y' "$bbsrc/.config" || die "busybox: CONFIG_STATIC=y did not stick"
    grep -qx "CONFIG_CROSS_COMPILER_PREFIX=\"$CROSS\"" "$bbsrc/.config" ||
        die "busybox: CONFIG_CROSS_COMPILER_PREFIX did not stick"
    # With Debian's busybox 1.35.0 and glibc 2.36 every defconfig applet links
    # statically; user and group look-ups use busybox's own /etc/passwd reader
    # (USE_BB_PWD_GRP), not glibc's NSS, which a static binary cannot load. If
    # an applet ever stops linking, turn off just that one in the sed above and
    # say why here.
    bbmake -j"$JOBS"
    bbmake -s install CONFIG_PREFIX="$work/entry/install" >/dev/null
    [[ -x $work/entry/install/bin/busybox ]] || die "busybox install left no bin/busybox"
    # /linuxrc is for initrd images; the initramfs runs /init.
    rm -f "$work/entry/install/linuxrc"
    cp "$bbsrc/.config" "$work/entry/busybox.config"
    log "  installed busybox and $(find "$work/entry/install" -type l | wc -l) applet links"
}
