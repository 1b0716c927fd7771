#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running platform: installs the dependencies, builds
# Tessera, builds (or takes from the cache) the default guest, starts tesserad on its embedded
# SQLite store (state in $TESSERA_STATE, default /var/lib/tesserad as root, else
# ~/.local/share/tesserad), and boots a VM "demo" from the default template. The web console
# listens on http://127.0.0.1:$TESSERA_WEB_PORT (default 8006; loopback only), where the
# administrator logs in with the password this script makes (STATE/admin.password). Prints how
# to reach the console, the VM's console, the API and the administrator's token. Run it again at
# any time: what is there already (the daemon, the VM, the password) is kept.
#
# The Debian 13 cloud template builds in the background (templates/debian/build.sh, about half
# an hour the first time, cached like the guest); tesserad registers it when it is done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" = 0 ]; then
    STATE=${TESSERA_STATE:-/var/lib/tesserad}
else
    STATE=${TESSERA_STATE:-$HOME/.local/share/tesserad}
fi
SOCK=$STATE/tesserad.sock
WEB=http://127.0.0.1:${TESSERA_WEB_PORT:-8006}

step "Installing dependencies (Debian packages)"
scripts/install-deps.sh
step "Building tessera and tesserad"
make -j"$(nproc)"
step "Building the default guest (first time: about 15 minutes; then cached)"
guest/build.sh

export TESSERA_HOST=unix:$SOCK
cli() { build/tessera --token-file "$STATE/admin.token" "$@"; }

if cli host show >/dev/null 2>&1; then
    step "tesserad already runs (state in $STATE)"
else
    step "Starting tesserad (state in $STATE)"
    mkdir -p "$STATE"
    if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then
        # KillMode=process: stopping or restarting the daemon leaves the VMs running; it
        # finds them again when it starts. Delegate=yes: the VMs' control groups below the
        # service's are tesserad's to manage (docs/resources.md).
        cat >/etc/systemd/system/tesserad.service <<UNIT
[Unit]
Description=Tessera host daemon
After=network.target

[Service]
ExecStart=$ROOT/build/tesserad --state-dir $STATE --listen unix:$SOCK --listen $WEB
KillMode=process
Delegate=yes
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
        systemctl daemon-reload
        systemctl enable --now tesserad.service
        LOG="journalctl -u tesserad"
    else
        setsid build/tesserad --state-dir "$STATE" --listen "unix:$SOCK" --listen "$WEB" \
            >>"$STATE/tesserad.log" 2>&1 </dev/null &
        LOG="$STATE/tesserad.log"
    fi
    for _ in $(seq 100); do
        [ -S "$SOCK" ] && [ -f "$STATE/admin.token" ] && cli host show >/dev/null 2>&1 && break
        sleep 0.1
    done
    cli host show >/dev/null || { echo "setup: tesserad did not start (see $LOG)" >&2; exit 1; }
fi

if [ ! -s "$STATE/admin.password" ]; then
    step "Giving the administrator a password for the web console ($STATE/admin.password)"
    # Kept only once the daemon took it, so a failed run leaves no password that is not set.
    pw=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    curl -fsS --unix-socket "$SOCK" -X PUT -H "Authorization: Bearer $(cat "$STATE/admin.token")" \
        -H 'Content-Type: application/json' -d "{\"password\": \"$pw\"}" \
        http://localhost/api/v1/password
    (umask 077 && printf '%s\n' "$pw" >"$STATE/admin.password")
fi

if [ -e build/templates/debian-13/template.json ]; then
    pkill -HUP -x tesserad || true
else
    step "Building the Debian 13 template in the background (log: $STATE/debian-template.log)"
    # When it is built, SIGHUP makes tesserad register it.
    setsid bash -c 'templates/debian/build.sh && pkill -HUP -x tesserad' \
        >>"$STATE/debian-template.log" 2>&1 </dev/null &
fi

if cli vm show demo >/dev/null 2>&1; then
    step "The VM 'demo' exists already"
    state=$(cli vm show demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = running ] || cli vm start demo
else
    step "Creating the VM 'demo' from the default template and starting it"
    cli vm create demo --template busybox --start
fi
printf 'Waiting for it to boot'
for _ in $(seq 600); do
    if curl -fsS --unix-socket "$SOCK" -H "Authorization: Bearer $(cat "$STATE/admin.token")" \
        http://localhost/api/v1/vms/demo/log | grep -q TESSERA-GUEST-READY; then
        break
    fi
    printf '.'
    sleep 0.5
done
echo
cli vm list

cat <<EOF2

tesserad runs (state in $STATE, its SQLite database $STATE/tesserad.db) and the VM 'demo'
booted from the default template.

  web console: $WEB/   (tenant empty, user admin, the password in $STATE/admin.password)

  export TESSERA_HOST=unix:$SOCK
  export TESSERA_TOKEN=\$(cat $STATE/admin.token)   # the platform administrator's token
  build/tessera vm console demo                     # its console (Ctrl-A x detaches)
  build/tessera vm list                             # tenants, templates, volumes: docs/cli.md
  curl --unix-socket $SOCK -H "Authorization: Bearer \$TESSERA_TOKEN" \\
       http://localhost/api/v1/vms                  # the REST API: docs/daemon.md

The Debian 13 cloud template appears in 'build/tessera template list' once its build is done
($STATE/debian-template.log); docs/templates.md says what it holds.
EOF2
