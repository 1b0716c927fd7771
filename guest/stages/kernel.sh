# shellcheck shell=bash
# Stage "kernel" of guest/build.sh (sourced, not run): Debian's Linux 6.1
# source, tinyconfig + guest/kernel.config, built for riscv64.
#
# Entry: Image (arch/riscv/boot/Image), kernel.config (the full .config) and
# gen_init_cpio (the kernel's host tool that packs the initramfs; the
# initramfs stage runs it from here).
#
# The key covers this file (build.sh hashes it), so any edit here rebuilds
# the kernel; nothing else in guest/ does, except kernel.config.

kernel_inputs() {
    hash_line kernel.config "$GUEST_DIR/kernel.config"
    echo "$KERNEL_PKG $KERNEL_VERSION"
    echo "cross-gcc $CROSS_GCC_VERSION"
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

# $1: the work tree. Leaves the entry's files in $1/entry.
kernel_build() {
    local work=$1
    local ksrc=$work/$KERNEL_PKG
    kmake() { make -C "$ksrc" ARCH=riscv CROSS_COMPILE="$CROSS" "$@"; }

    log "kernel 1/3: extracting $KERNEL_TARBALL"
    with_heartbeat "extracting the kernel source" tar -xJf "$KERNEL_TARBALL" -C "$work"
    [[ -f $ksrc/Makefile ]] || die "$KERNEL_TARBALL did not unpack to $ksrc"

    log "kernel 2/3: configuring: tinyconfig + guest/kernel.config"
    kmake -s tinyconfig
    (cd "$ksrc" && ARCH=riscv scripts/kconfig/merge_config.sh -m .config "$GUEST_DIR/kernel.config" |
        sed '/^$/d')
    kmake -s olddefconfig
    verify_kernel_config "$GUEST_DIR/kernel.config" "$ksrc/.config"
    log "  all lines of guest/kernel.config survived olddefconfig"

    log "kernel 3/3: building the Image"
    kmake -j"$JOBS" Image
    # gen_init_cpio is a host tool that the kernel build makes for usr/
    # (BLK_DEV_INITRD=y); build it by name in case that ever changes.
    [[ -x $ksrc/usr/gen_init_cpio ]] || kmake usr/gen_init_cpio

    cp "$ksrc/arch/riscv/boot/Image" "$work/entry/Image"
    cp "$ksrc/.config" "$work/entry/kernel.config"
    cp "$ksrc/usr/gen_init_cpio" "$work/entry/gen_init_cpio"
}
