# shellcheck shell=bash
# Stage "initramfs" of guest/build.sh (sourced, not run): BusyBox from the
# busybox stage, the files in guest/rootfs/, and the guest programs built
# here from guest/agent/ and guest/tools/, packed into a gzip'd newc cpio with
# the kernel stage's gen_init_cpio.
#
# Entry: initramfs.cpio.gz, initramfs.list (the gen_init_cpio list, with the
# paths the files have in the guest).
#
# The key covers this file (build.sh hashes it), every file under rootfs/,
# agent/ and tools/ but *.md, the busybox stage's key, the linux-source version that
# gen_init_cpio comes from, and the cross compiler. It takes seconds.

# Static riscv64 programs: "source files -> path in the guest". Paths of
# sources are relative to guest/.
GUEST_PROGRAMS=(
    "agent/tessera-agent.c agent/json.c agent/seed.c agent/cidata.c -> /sbin/tessera-agent"
    "tools/tessera-fault.c -> /bin/tessera-fault"
    "tools/tessera-diskbench.c -> /bin/tessera-diskbench"
    "tools/tessera-memstress.c -> /bin/tessera-memstress"
)
GUEST_CFLAGS=(-static -Os -s -std=gnu11 -Wall -Wextra -Werror)

initramfs_inputs() {
    hash_tree rootfs rootfs
    # Documentation changes nothing in the guest.
    hash_tree agent agent '*.md'
    hash_tree tools tools '*.md'
    echo "busybox-stage ${STAGE_KEY[busybox]}"
    echo "gen_init_cpio $KERNEL_PKG $KERNEL_VERSION"
    echo "cross-gcc $CROSS_GCC_VERSION"
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

# The agent's JSON code is also built for the host, with the sanitizers, and
# its tests (golden cases and a mutation fuzz loop) run before it goes into
# the guest. Skipped, with a line saying so, if the host compiler cannot
# link sanitized programs.
initramfs_test_json() {
    local work=$1 bin=$1/json_test
    local -a cc=(gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -I"$GUEST_DIR/agent")
    if ! echo 'int main(void){return 0;}' |
        "${cc[@]}" -fsanitize=address,undefined -x c - -o "$work/sanity" 2>/dev/null; then
        log "  host gcc cannot build with -fsanitize=address,undefined; testing without"
    else
        # shellcheck disable=SC2054 # one option with a comma in it
        cc+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
    fi
    "${cc[@]}" "$GUEST_DIR/agent/json.c" "$GUEST_DIR/agent/json_test.c" -o "$bin"
    "$bin" || die "guest/agent/json_test.c failed (see above)"
}

# $1: the work tree. Leaves the entry's files in $1/entry.
initramfs_build() {
    local work=$1 root=$1/rootfs prog srcs dest src
    local -a paths

    log "initramfs 1/3: building the guest programs"
    initramfs_test_json "$work"
    mkdir -p "$root"/{bin,sbin}
    for prog in "${GUEST_PROGRAMS[@]}"; do
        srcs=${prog% -> *}
        dest=${prog#* -> }
        paths=()
        for src in $srcs; do
            paths+=("$GUEST_DIR/$src")
        done
        "${CROSS}gcc" "${GUEST_CFLAGS[@]}" -I"$GUEST_DIR/agent" "${paths[@]}" -o "$root$dest"
        log "  $dest $(stat -c %s "$root$dest") bytes"
    done

    log "initramfs 2/3: assembling the tree"
    cp -a "${STAGE_ENTRY[busybox]}/install/." "$root/"
    [[ -x $root/bin/busybox ]] || die "${STAGE_ENTRY[busybox]} has no install/bin/busybox"
    mkdir -p "$root"/{dev,proc,sys,tmp,root,mnt,run,etc}
    cp -R "$GUEST_DIR/rootfs/." "$root/"
    # The kernel runs /init from an initramfs; BusyBox picks the applet by
    # argv[0]'s base name, so this is busybox init as PID 1.
    [[ -e $root/init || -L $root/init ]] || ln -s /sbin/init "$root/init"
    # Fixed timestamps make the archive depend only on its contents.
    find "$root" -exec touch -h -d @0 {} +

    log "initramfs 3/3: packing"
    print_cpio_list "$root" >"$work/entry/initramfs.list"
    "${STAGE_ENTRY[kernel]}/gen_init_cpio" -t 0 "$work/entry/initramfs.list" |
        gzip -9 -n >"$work/entry/initramfs.cpio.gz"
    # The list names files in the work tree, which is about to go away.
    sed -i "s| $root/| /|" "$work/entry/initramfs.list"
}
