#!/usr/bin/env bash
# Installs what etcdsnap needs on Debian 12 with Node 20, then builds it. Safe to run twice:
# each step is skipped when its result is already there.
#   scripts/setup.sh            npm packages, etcd-server/etcd-client, openssl, build (tsc, web UI)
#   scripts/setup.sh --browser  also Debian's chromium (for the web UI's browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for a in "$@"; do [ "$a" = "--browser" ] && want_browser=1; done

say() { printf '[setup] %s\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "[setup] Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pkgs=()
command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || pkgs+=(etcd-client)
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then pkgs+=(chromium); fi
if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; fi

# npm packages: reinstall only when package-lock.json changed since the last install.
# Native addons are built from source (no prebuilt binary is downloaded).
stamp=node_modules/.etcdsnap-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "npm ci"
  npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

say "build (tsc)"
npx tsc -p tsconfig.json

# Web UI (Vite → dist/ui, served by the server at /): rebuilt only when its sources, the
# src/core files it bundles, or the lock file changed (names and contents hashed).
ui_stamp=dist/ui/.build-stamp
ui_sum=$(find ui src/core package-lock.json -type f ! -name '*.test.ts' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f dist/ui/index.html ] && [ -f "$ui_stamp" ] && [ "$(cat "$ui_stamp")" = "$ui_sum" ]; then
  say "web UI up to date"
else
  say "build web UI (vite)"
  npx tsc -p ui/tsconfig.json
  npx vite build --config ui/vite.config.ts --logLevel warn
  echo "$ui_sum" > "$ui_stamp"
fi
say "ready: $(node bin/etcdsnap.js --version) with $(etcd --version | head -1)"
