#!/usr/bin/env bash
# Generates abseal's test clips with the ffmpeg CLI (make deps installs it):
# moving, textured pictures (a Mandelbrot zoom and test patterns with noise)
# and the odd cases uploads bring.
#
#   testdata/make-clips.sh OUTDIR [NAME...]
#
# Without names every clip is made. Clips are small and generated at test
# time (sample.mp4, make demo's, into testdata/), so none is committed. Existing files are kept (delete to remake).
set -euo pipefail

out=${1:?usage: make-clips.sh OUTDIR [NAME...]}
shift
mkdir -p "$out"
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }

# Textured, moving picture of W x H at RATE for DUR seconds.
picture() { # w h rate dur
	echo "mandelbrot=size=$1x$2:rate=$3:maxiter=64:start_scale=2.5:end_scale=0.02,trim=duration=$4,noise=alls=8:allf=t"
}
tone() { echo "sine=frequency=440:sample_rate=48000:duration=$1"; }

# Camera-like picture of 1920x1080 at 30 fps for DUR seconds: a still,
# many-scaled (Perlin, 1/f-like) landscape in colour, filmed with a slow pan
# and drift, two textured discs crossing it at different speeds, a little
# optical softness and a low, changing sensor grain. Smooth areas, edges and
# motion, none of the full-frame noise of picture(): what the watermark's
# cost is measured on (generated, not camera footage).
natural() { # dur [w h]: 1920x1080, or downscaled to w x h
	local d=$1 size=""
	[[ -n ${2:-} ]] && size=",scale=$2:$3:flags=area"
	echo "perlin=size=2400x1350:octaves=8:persistence=0.72:xscale=3:yscale=3:seed=11,trim=end_frame=1,format=yuv420p,geq=lum='clip((p(X,Y)-128)*2.2+120\,8\,245)':cb='128+22*sin(X/380)':cr='128+18*cos(Y/290+X/700)',loop=loop=-1:size=1,fps=30,trim=duration=$d,crop=1920:1080:x='240+200*sin(t/4)':y='135+110*sin(t/5.3)'[bg];\
perlin=size=420x420:octaves=5:persistence=0.7:seed=5,trim=end_frame=1,format=yuva420p,geq=lum='p(X,Y)*0.6+70':cb=150:cr=110:a='255*lt(hypot(X-210\,Y-210)\,200)',loop=loop=-1:size=1,fps=30,trim=duration=$d[o1];\
perlin=size=260x260:octaves=4:persistence=0.5:seed=9,trim=end_frame=1,format=yuva420p,geq=lum='p(X,Y)*0.5+110':cb=100:cr=160:a='255*lt(hypot(X-130\,Y-130)\,124)',loop=loop=-1:size=1,fps=30,trim=duration=$d[o2];\
[bg][o1]overlay=x='mod(90*t\,2400)-420':y='300+120*sin(t/2)':shortest=1[v1];[v1][o2]overlay=x='1700-mod(140*t\,2000)':y='620+60*cos(t/1.5)':shortest=1,gblur=sigma=0.7,noise=alls=2:allf=t,format=yuv420p$size"
}
x264() { echo -c:v libx264 -preset ultrafast -crf 23 -pix_fmt yuv420p; }

# Camera-like shots cut together: W x H at 30 fps for DUR seconds, shots of
# 4 to 12 s, each a still Perlin landscape of its own seed, brightness and
# colour, panned and drifting its own way, with a textured disc crossing it,
# softened, with a little grain; stereo tone. What a film's cuts and camera
# moves give the detector (and what a single textured pattern does not).
natural_shots() { # out dur w h
	local f=$1 dur=$2 w=$3 h=$4 tmp
	tmp=$(mktemp -d)
	local t=0 i=0 d sx sy r
	while ((t < dur)); do
		d=$((4 + (i * 7) % 9))
		((t + d > dur)) && d=$((dur - t))
		sx=$(((i * 37) % 11 - 5)) sy=$(((i * 53) % 7 - 3)) r=$((h / 4 + (i * 19) % (h / 5)))
		ff -filter_complex "perlin=size=$((w * 5 / 4))x$((h * 5 / 4)):octaves=7:persistence=0.7:xscale=2:yscale=2:seed=$((100 + i)),trim=end_frame=1,format=yuv420p,\
geq=lum='clip((p(X,Y)-128)*2.0+$((70 + (i * 13) % 90))\,8\,245)':cb='$((103 + (i * 29) % 50))+20*sin(X/$((200 + (i * 31) % 300)))':cr='$((103 + (i * 41) % 50))+16*cos(Y/$((180 + (i * 17) % 250)))',\
loop=loop=-1:size=1,fps=30,trim=duration=$d,crop=$w:$h:x='$((w / 8))+$((w / 10))*sin(t*$sx/20)':y='$((h / 8))+$((h / 10))*sin(t*$sy/15)'[bg];\
perlin=size=$((2 * r))x$((2 * r)):octaves=5:persistence=0.6:seed=$((500 + i)),trim=end_frame=1,format=yuva420p,\
geq=lum='p(X,Y)*0.6+$((40 + (i * 23) % 120))':cb=$((90 + (i * 11) % 80)):cr=$((90 + (i * 7) % 80)):a='255*lt(hypot(X-$r\,Y-$r)\,$((r - 2)))',loop=loop=-1:size=1,fps=30,trim=duration=$d[o];\
[bg][o]overlay=x='-$((2 * r))+($((w + 2 * r))/$d)*t':y='$((h / 3))+$((h / 6))*sin(t*$((1 + i % 3))/2)':shortest=1,\
gblur=sigma=0.7,noise=alls=2:allf=t,format=yuv420p" -c:v libx264 -preset veryfast -crf 16 -g 60 "$tmp/s$i.mp4"
		echo "file '$tmp/s$i.mp4'" >>"$tmp/list.txt"
		t=$((t + d)) i=$((i + 1))
	done
	ff -f concat -safe 0 -i "$tmp/list.txt" -f lavfi -i "$(tone "$dur")" -ac 2 -c:v copy -c:a aac -shortest "$f"
	rm -rf "$tmp"
}

make_clip() {
	local name=$1 f="$out/$1"
	[[ -s $f || ($name == empty.mp4 && -e $f) ]] && return 0
	case $name in
	sample.mp4) # 1280x720, 30 fps, 12 s, stereo audio: make demo's sample
		ff -f lavfi -i "$(picture 1280 720 30 12)" -f lavfi -i "$(tone 12)" -ac 2 $(x264) -c:a aac -shortest -movflags +faststart "$f" ;;
	main.mp4) # 640x360, 30 fps, 6 s, stereo audio
		ff -f lavfi -i "$(picture 640 360 30 6)" -f lavfi -i "$(tone 6)" -ac 2 $(x264) -c:a aac -shortest -movflags +faststart "$f" ;;
	hd-1080p30.mp4) # 1920x1080, 30 fps, 30 s: the benchmark's source
		ff -f lavfi -i "$(picture 1920 1080 30 30)" -f lavfi -i "$(tone 30)" -ac 2 $(x264) -c:a aac -shortest "$f" ;;
	hd-1080p30-120s.mp4) # 1920x1080, 30 fps, 2 min, stereo audio: the chunking benchmark's source
		ff -f lavfi -i "$(picture 1920 1080 30 120)" -f lavfi -i "$(tone 120)" -ac 2 $(x264) -c:a aac -shortest "$f" ;;
	natural-1080p30.mp4) # 1920x1080, 30 fps, 20 s, stereo audio: camera-like (smooth, moving, low noise)
		ff -filter_complex "$(natural 20)" -f lavfi -i "$(tone 20)" -ac 2 -c:v libx264 -preset fast -crf 16 -pix_fmt yuv420p -c:a aac -shortest "$f" ;;
	natural-360p.mp4) # natural-1080p30.mp4's picture at 640x360, 30 fps, 6 s, stereo audio
		ff -filter_complex "$(natural 6 640 360)" -f lavfi -i "$(tone 6)" -ac 2 -c:v libx264 -preset fast -crf 16 -pix_fmt yuv420p -c:a aac -shortest "$f" ;;
	natural-shots-300s.mp4) # 1280x720, 30 fps, 5 min, stereo audio: camera-like shots cut together (make wm-report at the defaults)
		natural_shots "$f" 300 1280 720 ;;
	natural-shots-40s.mp4) # the same at 640x360, 40 s (a fast test)
		natural_shots "$f" 40 640 360 ;;
	natural-shots-180s-180p.mp4) # the same at 320x180, 3 min: 359 marked 0.5 s segments (collusion tests)
		natural_shots "$f" 180 320 180 ;;
	natural-shots-480s-180p.mp4) # the same at 320x180, 8 min: 959 marked 0.5 s segments (four colluders through the edge)
		natural_shots "$f" 480 320 180 ;;
	forensic-56s.mp4) # 640x360, 25 fps, 56 s: long enough for a 108-segment pattern in 0.5 s segments
		ff -f lavfi -i "$(picture 640 360 25 56)" $(x264) "$f" ;;
	report-30fps-56s.mp4) # 640x360, 30 fps, 56 s: the watermark report's source
		ff -f lavfi -i "$(picture 640 360 30 56)" $(x264) "$f" ;;
	ntsc-2997.mp4) # 29.97 fps
		ff -f lavfi -i "$(picture 480 270 30000/1001 5)" -f lavfi -i "$(tone 5)" $(x264) -c:a aac -shortest "$f" ;;
	film-23976.mp4) # 23.976 fps
		ff -f lavfi -i "$(picture 480 270 24000/1001 5)" $(x264) "$f" ;;
	pal-25.mp4) # 25 fps, no audio
		ff -f lavfi -i "$(picture 480 270 25 5)" $(x264) "$f" ;;
	hfr-60.mp4) # 60 fps
		ff -f lavfi -i "$(picture 480 270 60 4)" $(x264) "$f" ;;
	vfr.mkv) # variable frame rate: irregular gaps between frames
		ff -f lavfi -i "$(picture 480 270 30 6),select='not(between(mod(n\,20)\,5\,9))'" -fps_mode vfr $(x264) "$f" ;;
	odd-853x480.mp4) # odd width (4:4:4 so the source itself can be odd)
		ff -f lavfi -i "$(picture 853 480 25 4)" -c:v libx264 -preset ultrafast -crf 18 -pix_fmt yuv444p "$f" ;;
	rotated.mp4) # phone video: 640x360 coded, display matrix turns it to portrait
		ff -f lavfi -i "$(picture 640 360 30 4)" $(x264) "$out/.rot-src.mp4"
		ff -display_rotation 90 -i "$out/.rot-src.mp4" -c copy "$f"
		rm -f "$out/.rot-src.mp4" ;;
	interlaced.ts) # 1080i-style interlaced coding (top field first), in MPEG-TS
		ff -f lavfi -i "$(picture 720 576 25 4)" -f lavfi -i "$(tone 4)" -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
			-flags +ilme+ildct -x264-params interlaced=1:tff=1 -c:a aac -shortest "$f" ;;
	noaudio.mp4)
		ff -f lavfi -i "$(picture 480 270 30 4)" $(x264) "$f" ;;
	audioonly.m4a)
		ff -f lavfi -i "$(tone 4)" -c:a aac "$f" ;;
	empty.mp4)
		: >"$f" ;;
	truncated.mp4) # the first 40% of a clip whose index is at the end
		ff -f lavfi -i "$(picture 480 270 30 5)" $(x264) "$out/.trunc-src.mp4"
		head -c $(($(stat -c %s "$out/.trunc-src.mp4") * 4 / 10)) "$out/.trunc-src.mp4" >"$f"
		rm -f "$out/.trunc-src.mp4" ;;
	cut-short.mp4) # the first 50% of a clip whose index is at the front: plays, then stops
		ff -f lavfi -i "$(picture 480 270 30 6)" $(x264) -movflags +faststart "$out/.cut-src.mp4"
		head -c $(($(stat -c %s "$out/.cut-src.mp4") / 2)) "$out/.cut-src.mp4" >"$f"
		rm -f "$out/.cut-src.mp4" ;;
	chunk-bframes.mp4) # 480x270, 30 fps, 20 s: 3 B-frames (pyramid), a keyframe every 2.5 s, off a 2 s segment grid
		ff -f lavfi -i "$(picture 480 270 30 20)" -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -bf 3 -g 75 -keyint_min 75 -sc_threshold 0 "$f" ;;
	chunk-opengop.mp4) # the same with open GOPs: the I-frames are recovery points, B-frames before them refer across
		ff -f lavfi -i "$(picture 480 270 30 20)" -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -bf 3 -g 75 -keyint_min 75 -sc_threshold 0 \
			-x264-params open_gop=1 "$f" ;;
	chunk-vfr.mkv) # 480x270, 20 s, variable frame rate: runs of frames missing, B-frames
		ff -f lavfi -i "$(picture 480 270 30 20),select='not(between(mod(n\,23)\,5\,11))'" -fps_mode vfr \
			-c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -bf 2 "$f" ;;
	chunk-editlist.mp4) # an MP4 cut without re-encoding 1.3 s into a GOP: its edit list hides the frames before the cut
		make_clip chunk-bframes.mp4
		ff -ss 1.3 -i "$out/chunk-bframes.mp4" -c copy "$f" ;;
	notvideo.txt)
		printf 'this is a text file, not a video\n%.0s' {1..50} >"$f" ;;
	huge-16000x16000.mkv) # declares 16000x16000 (a single tiny frame; FFV1 keeps it small)
		ff -f lavfi -i "color=black:size=16000x16000:rate=1:duration=1" -c:v ffv1 -frames:v 1 "$f" ;;
	*)
		echo "make-clips: unknown clip $name" >&2
		return 1 ;;
	esac
}

all=(main.mp4 ntsc-2997.mp4 film-23976.mp4 pal-25.mp4 hfr-60.mp4 vfr.mkv odd-853x480.mp4 rotated.mp4
	interlaced.ts noaudio.mp4 audioonly.m4a empty.mp4 truncated.mp4 cut-short.mp4 notvideo.txt)
(($#)) || set -- "${all[@]}"
for name in "$@"; do
	make_clip "$name"
done
