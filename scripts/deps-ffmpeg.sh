#!/usr/bin/env bash
# Installs the FFmpeg 7.1 shared libraries (libavcodec 61) with libx264 that
# go-astiav v0.39 links against, plus the ffmpeg/ffprobe programs used by tests
# and benchmarks.
#
# - When pkg-config already finds libavcodec 61.x with libx264, nothing is done.
# - Otherwise (Debian 12 ships FFmpeg 5.1) Debian 13's ffmpeg source package is
#   fetched through a deb-src line for trixie and built into /usr/local.
#
# Idempotent and safe to run twice. Needs root for apt-get and /usr/local.
set -euo pipefail

PREFIX=${FFMPEG_PREFIX:-/usr/local}
CACHE=${ABSEAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/abseal}
JOBS=${JOBS:-$(nproc)}

say() { printf 'deps/ffmpeg: %s\n' "$*"; }

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

have_ffmpeg() {
	local v
	v=$(pkg-config --modversion libavcodec 2>/dev/null) || return 1
	[[ $v == 61.* ]] || return 1
	command -v ffmpeg >/dev/null 2>&1 || return 1
	command -v ffprobe >/dev/null 2>&1 || return 1
	# (output captured first: grep -q on a pipe would SIGPIPE the writer under pipefail)
	local encoders
	encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null) || return 1
	[[ $encoders == *libx264* ]] || return 1
	# The DASH demuxer (libxml2) lets tests play back the MPDs abseal writes.
	local demuxers
	demuxers=$(ffmpeg -hide_banner -demuxers 2>/dev/null) || return 1
	[[ $demuxers == *" dash "* ]] || return 1
	say "found libavcodec $v with libx264 and the DASH demuxer ($(command -v ffmpeg)); nothing to do"
}

if command -v pkg-config >/dev/null 2>&1 && have_ffmpeg; then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	say "FFmpeg 7.1 (libavcodec 61) is missing and building it needs root: run 'sudo make deps'" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() {
	if [[ $apt_updated -eq 0 ]]; then
		say "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
}

install_pkgs() {
	local missing=() p
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *'install ok installed'* ]] || missing+=("$p")
	done
	if ((${#missing[@]})); then
		apt_update
		say "apt-get install ${missing[*]}"
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# Debian 13, Ubuntu 25.04 and later package FFmpeg 7.1: install it as is.
apt_update
candidate=$(apt-cache policy libavcodec-dev 2>/dev/null | awk '/Candidate:/{print $2}')
if [[ $candidate == *:7.1.* || $candidate == 7.1.* ]]; then
	say "the distribution packages FFmpeg $candidate; installing it"
	install_pkgs gcc libc6-dev pkg-config ffmpeg libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev \
		libswresample-dev libswscale-dev libavutil-dev
	have_ffmpeg && exit 0
	say "packaged FFmpeg $candidate lacks libavcodec 61 or libx264" >&2
	exit 1
fi

install_pkgs build-essential pkg-config nasm dpkg-dev xz-utils libx264-dev libx265-dev zlib1g-dev libxml2-dev

src_list=/etc/apt/sources.list.d/abseal-trixie-src.sources
ffmpeg_src_version() {
	local info
	info=$(apt-cache showsrc ffmpeg 2>/dev/null) || true
	awk '/^Version: 7:7\.1\./{print $2; exit}' <<<"$info"
}
if [[ -z $(ffmpeg_src_version) && ! -f $src_list ]]; then
	say "adding Debian 13 (trixie) source packages: $src_list"
	cat >"$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	apt_updated=0
fi
apt_update

version=$(ffmpeg_src_version)
if [[ -z $version ]]; then
	say "no ffmpeg 7.1.x source package found in the apt sources (is the trixie deb-src line reachable?)" >&2
	exit 1
fi
upstream=${version#*:}
upstream=${upstream%%-*}
srcdir="$CACHE/ffmpeg-$upstream"

mkdir -p "$CACHE"
if [[ ! -x $srcdir/configure ]]; then
	say "fetching ffmpeg source package $version into $CACHE"
	rm -rf "$srcdir"
	(cd "$CACHE" && apt-get source -qq "ffmpeg=$version" >/dev/null)
	[[ -x $srcdir/configure ]] || {
		say "expected $srcdir/configure after apt-get source" >&2
		exit 1
	}
fi

builddir="$CACHE/build-ffmpeg-$upstream"
mkdir -p "$builddir"
cd "$builddir"

# All native decoders, demuxers, parsers and filters stay in (uploads can be
# anything); encoders and muxers are limited to what abseal, its tests and its
# benchmarks use. No network protocols, no docs.
configure_args=(
	--prefix="$PREFIX"
	--enable-shared --disable-static
	--enable-gpl --enable-libx264 --enable-libx265 --enable-zlib --enable-libxml2
	--disable-doc --disable-debug --disable-ffplay
	--disable-network --disable-autodetect
	--disable-encoders
	--enable-encoder=libx264,libx265,aac,pcm_s16le,rawvideo,wrapped_avframe,mpeg4,mjpeg,png,ffv1
	--disable-muxers
	--enable-muxer=mp4,mov,ipod,matroska,webm,mpegts,null,rawvideo,image2,image2pipe,adts,wav,h264,hevc,segment,framemd5,md5,ismv,ffmetadata
	--disable-indevs --enable-indev=lavfi --disable-outdevs
	--disable-protocols --enable-protocol=file,pipe,concat,concatf,data,subfile,md5
)
stamp="configured.$(printf '%s ' "${configure_args[@]}" | md5sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
	say "configuring FFmpeg $upstream for $PREFIX"
	rm -f configured.*
	"$srcdir/configure" "${configure_args[@]}" >configure.log 2>&1 || {
		tail -30 configure.log >&2
		exit 1
	}
	touch "$stamp"
fi

say "building FFmpeg $upstream with $JOBS jobs (the first build takes a while; log: $builddir/build.log)"
start=$(date +%s)
make -j"$JOBS" >build.log 2>&1 || {
	tail -40 build.log >&2
	exit 1
}
say "installing into $PREFIX"
make install >install.log 2>&1 || {
	tail -40 install.log >&2
	exit 1
}
ldconfig
say "built and installed FFmpeg $upstream in $(($(date +%s) - start))s"

have_ffmpeg || {
	say "FFmpeg was installed but pkg-config/ffmpeg checks still fail" >&2
	exit 1
}
