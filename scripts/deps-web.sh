#!/usr/bin/env bash
# Installs what the real-browser playback test (cmd/edge TestBrowserPlayback)
# and the CDN tests (TestCDNCachesVariants, BenchmarkCDNShape) need: Debian's
# Chromium and nginx, and the web players pinned in web/package-lock.json
# (hls.js, Shaka Player, dash.js) from the npm registry, and the CDN edge
# function's dependency (cdn/package-lock.json) for its tests
# (go test ./cdn, cmd/edge TestCDNEdgeFunction).
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

# npm ci in dir, unless its package-lock.json is unchanged since the last.
npm_ci() {
	local dir=$root/$1 what=$2
	local stamp=$dir/node_modules/.abseal-lock.sha256
	local want
	want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		say "$1/ up to date ($1/package-lock.json unchanged)"
		return
	fi
	say "npm ci in $1/ ($what, as pinned)"
	(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
	echo "$want" >"$stamp"
}
npm_ci web "hls.js, Shaka Player, dash.js"
npm_ci cdn "the CDN edge function's CBOR library"
