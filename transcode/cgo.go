package transcode

// Fields of FFmpeg structs that go-astiav does not expose. This is the only
// cgo in abseal besides go-astiav itself.

/*
#cgo pkg-config: libavcodec libavutil
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <malloc.h>
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"
)

func cframe(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// lumaPlane returns the first plane of f in place: no copy. The slice is
// only valid while f holds its buffer.
func lumaPlane(f *astiav.Frame) (plane []byte, stride int) {
	c := cframe(f)
	stride = int(c.linesize[0])
	h := int(c.height)
	if c.data[0] == nil || stride <= 0 || h <= 0 {
		return nil, 0
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(c.data[0])), stride*h), stride
}

func bestEffortTimestamp(f *astiav.Frame) int64 { return int64(cframe(f).best_effort_timestamp) }

func frameDuration(f *astiav.Frame) int64 { return int64(cframe(f).duration) }

func setFrameDuration(f *astiav.Frame, d int64) { cframe(f).duration = C.int64_t(d) }

// fieldOrderInterlaced reports whether a decoder's stream is coded as fields.
func fieldOrderInterlaced(cc *astiav.CodecContext) bool {
	fo := (*C.AVCodecContext)(cc.UnsafePointer()).field_order
	return fo != C.AV_FIELD_PROGRESSIVE && fo != C.AV_FIELD_UNKNOWN
}

// frameInterlaced reports the decoded frame's interlaced flag.
func frameInterlaced(f *astiav.Frame) bool {
	return cframe(f).flags&C.AV_FRAME_FLAG_INTERLACED != 0
}

// ReleaseMemory hands the C heap that FFmpeg and x264 freed back to the
// operating system (glibc keeps freed blocks in per-thread arenas, so a
// process's RSS otherwise stays at its high-water mark). The worker calls
// it between jobs.
func ReleaseMemory() { C.malloc_trim(0) }
