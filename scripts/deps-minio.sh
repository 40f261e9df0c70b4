#!/usr/bin/env bash
# Installs the pinned MinIO server binary into the project's tools dir
# (.tools/bin, not on anyone's PATH) with `go install`. Idempotent: skipped
# when the pinned version is already there.
set -euo pipefail

version=${MINIO_VERSION:?MINIO_VERSION is not set}
tools=${ABSEAL_TOOLS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.tools}
stamp="$tools/minio.version"

say() { printf 'deps/minio: %s\n' "$*"; }

if [[ -x $tools/bin/minio && -f $stamp && $(cat "$stamp") == "$version" ]]; then
	say "minio $version already in $tools/bin; nothing to do"
	exit 0
fi
say "go install github.com/minio/minio@$version into $tools/bin (first time: a few minutes)"
mkdir -p "$tools/bin"
start=$(date +%s)
GOBIN="$tools/bin" GOFLAGS=-mod=mod go install "github.com/minio/minio@$version"
echo "$version" >"$stamp"
say "installed in $(($(date +%s) - start))s"
