#!/usr/bin/env bash
# Installs what the real-browser playback test (cmd/edge TestBrowserPlayback)
# and the CDN tests (TestCDNCachesVariants, BenchmarkCDNShape) need: Debian's
# Chromium and nginx, and the web players pinned in web/package-lock.json
# (hls.js, Shaka Player, dash.js) from the npm registry.
#
# Idempotent: apt-get runs only for a missing package, npm ci only when the
# lock file changed since the last install. Needs root for apt-get.
set -euo pipefail

say() { printf 'deps/web: %s\n' "$*"; }
root=$(cd "$(dirname "$0")/.." && pwd)

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		say "${missing[*]} missing and installing needs root: run 'sudo make deps'" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	say "apt-get install ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	say "chromium, nginx and npm found; nothing to install"
fi

web=$root/web
stamp=$web/node_modules/.abseal-lock.sha256
want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
	say "web players up to date (web/package-lock.json unchanged)"
	exit 0
fi
say "npm ci in web/ (hls.js, Shaka Player, dash.js as pinned)"
(cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "$want" >"$stamp"
