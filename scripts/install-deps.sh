#!/usr/bin/env bash
# Installs everything Tessera needs to build, test and benchmark on Debian 12 (bookworm), from
# Debian's own repositories. Safe to run again. Needs root (uses sudo when not root).
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The guest's BusyBox is built from Debian's source package (`apt-get source busybox`),
# which needs a deb-src entry.
if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "install-deps: adding a deb-src entry for bookworm (needed by apt-get source)"
    $SUDO tee /etc/apt/sources.list.d/tessera-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

packages=(
    # building tessera
    build-essential make gcc clang clang-format pkg-config libfdt-dev git
    # device backends: libslirp (user networking), zlib and zstd (compressed qcow2 clusters)
    libslirp-dev libglib2.0-dev zlib1g-dev libzstd-dev
    # the control API: HTTP server and JSON
    libmicrohttpd-dev libjansson-dev
    # tesserad's store; users' password hashes (libxcrypt's yescrypt, as /etc/shadow has)
    libsqlite3-dev libcrypt-dev
    # the CLI as tesserad's client: HTTP over a unix socket or HTTPS (GnuTLS flavour, the TLS
    # stack the rest of tessera uses)
    libcurl4-gnutls-dev
    # migration over mutual TLS (GnuTLS, which libmicrohttpd is built on); test certificates
    libgnutls28-dev gnutls-bin openssl
    # the VMM's sandbox: seccomp filters
    libseccomp-dev
    # fuzzing runtime for libFuzzer targets built with clang
    libclang-rt-14-dev
    # the guest: cross compiler, kernel source and what a kernel build needs
    gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross
    linux-source-6.1 bc flex bison cpio dpkg-dev libelf-dev libssl-dev xz-utils
    # firmware, the reference peer and test tools
    opensbi qemu-system-misc qemu-utils device-tree-compiler python3 iproute2
    # the CLI test checks describe's document against docs/vm-config.schema.json
    python3-jsonschema
    # cloud-init seed disks: tesserad makes the ISO 9660 image with xorriso (as cloud-localds
    # does); the seed test reads our YAML back with PyYAML, the parser cloud-init uses
    xorriso python3-yaml
    # the Debian template (templates/debian/build.sh): a riscv64 root file system from Debian's
    # packages, whose scripts run under qemu-user through binfmt_misc; its test makes a NoCloud
    # seed ISO and logs in over SSH
    mmdebstrap arch-test qemu-user-static binfmt-support e2fsprogs openssh-client
    # virtual networks (docs/networks.md): each network's DHCP and DNS server is a dnsmasq in
    # its namespace; nftables holds each port to its VM's MAC (and the routers' NAT and the
    # security groups that come next).
    # The switch is a Linux bridge (iproute2, above): untagged networks need nothing more
    dnsmasq-base nftables
    # security groups and routers: sysctl sets net.bridge.bridge-nf-call-iptables and IPv4
    # forwarding in the networks' and routers' namespaces; modprobe loads br_netfilter where
    # it is a module (Debian's kernel)
    procps kmod
    # the web console (docs/web.md): node and npm bundle web/ (its tools need node 20.19 or
    # later; with bookworm's own nodejs 18, scripts/web-build.sh fetches a pinned node from the
    # npm registry); its browser test drives Debian's Chromium headless
    nodejs chromium
    # VLAN networks' tags: tesserad runs its own Open vSwitch with the userspace datapath
    # (ovsdb-server and ovs-vswitchd, not the system service), since this CI's kernel has
    # neither 802.1Q devices nor bridge VLAN filtering (docs/networks.md "VLAN tags")
    openvswitch-switch
)

echo "install-deps: apt-get update"
$SUDO apt-get update -q
echo "install-deps: installing ${#packages[@]} packages"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
# Debian's nodejs comes without npm (a package of its own); NodeSource's brings it.
if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
fi
