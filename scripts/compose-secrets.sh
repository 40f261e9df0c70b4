#!/bin/sh
# Writes the secrets docker-compose.yml mounts into DIR (default
# deploy/secrets), once: the KEK, the wrapped watermark key, the edge's
# token key, the MinIO root, worker and edge secrets, the NATS users'
# passwords, the MinIO notifier's nkey seed and the NATS server's include
# of their hashes. Existing secrets are kept (nats-users.conf is rewritten
# from them).
#
# Every file is mode 0600 in a 0700 directory. The abseal containers run as
# the files' owner (compose's user: ${ABSEAL_UID}:${ABSEAL_GID}, which this
# script writes to ENV_FILE, default .env, when it does not exist); NATS,
# MinIO and mc run as root in their images and read them as root. Run as
# root, the files are given to the images' own user, 10001.
set -eu
dir=${1:-deploy/secrets}
env_file=${2:-.env}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
[ -f "$dir/kek.json" ] || go run ./cmd/kek create "$dir/kek.json"
[ -f "$dir/watermark.key" ] || go run ./cmd/kek watermark-key "$dir/watermark.key" "$dir/kek.json"
[ -f "$dir/token.key" ] || go run ./cmd/edge keygen "$dir/token.key"
for f in s3_secret s3_worker_secret s3_edge_secret s3_operator_secret; do
	[ -f "$dir/$f" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; } > "$dir/$f"
done
go run ./cmd/kek nats-users "$dir"
chmod 600 "$dir"/*
uid=$(id -u) gid=$(id -g)
if [ "$uid" = 0 ]; then
	uid=10001 gid=10001
	chown -R "$uid:$gid" "$dir"
fi
[ -f "$env_file" ] || printf 'ABSEAL_UID=%s\nABSEAL_GID=%s\n' "$uid" "$gid" > "$env_file"
echo "$dir ready (never commit it); the abseal containers run as $(cat "$env_file" | tr '\n' ' ')"
