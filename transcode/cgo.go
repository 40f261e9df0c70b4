package transcode

// Fields and functions of FFmpeg that go-astiav does not expose. This is the only
// cgo in abseal besides go-astiav itself.

/*
#cgo pkg-config: libavformat libavcodec libavutil
#include <errno.h>
#include <stdlib.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <malloc.h>

static const char *abseal_probe(unsigned char *buf, int size, int *score) {
	AVProbeData pd = { .filename = "", .buf = buf, .buf_size = size };
	const AVInputFormat *f = av_probe_input_format3(&pd, 1, score);
	return f ? f->name : NULL;
}

static int abseal_no_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags, AVDictionary **options) {
	av_log(s, AV_LOG_ERROR, "refused to open a file named by the input\n");
	return AVERROR(EPERM);
}

static void abseal_deny_opens(AVFormatContext *s) { s->io_open = abseal_no_open; }

static int abseal_find_stream_info(AVFormatContext *s, const char *max_pixels) {
	unsigned n = s->nb_streams;
	AVDictionary **opts = NULL;
	if (n > 0 && !(opts = av_calloc(n, sizeof(*opts))))
		return AVERROR(ENOMEM);
	for (unsigned i = 0; i < n; i++) {
		av_dict_set(&opts[i], "max_pixels", max_pixels, 0);
		av_dict_set(&opts[i], "threads", "1", 0);
	}
	int ret = avformat_find_stream_info(s, opts);
	for (unsigned i = 0; i < n; i++)
		av_dict_free(&opts[i]);
	av_free(opts);
	return ret;
}

typedef struct {
	AVCodecParserContext *parser;
	AVCodecContext *ctx;
} abseal_sizer;

static abseal_sizer *abseal_sizer_new(const AVCodecContext *dec) {
	abseal_sizer *s = av_mallocz(sizeof(*s));
	AVCodecParameters *par = avcodec_parameters_alloc();
	if (!s || !par)
		goto fail;
	if (!(s->parser = av_parser_init(dec->codec_id)))
		goto fail;
	s->parser->flags |= PARSER_FLAG_COMPLETE_FRAMES;
	if (!(s->ctx = avcodec_alloc_context3(NULL)))
		goto fail;
	if (avcodec_parameters_from_context(par, dec) < 0 || avcodec_parameters_to_context(s->ctx, par) < 0)
		goto fail;
	avcodec_parameters_free(&par);
	return s;
fail:
	avcodec_parameters_free(&par);
	if (s) {
		av_parser_close(s->parser);
		avcodec_free_context(&s->ctx);
		av_free(s);
	}
	return NULL;
}

static void abseal_sizer_parse(abseal_sizer *s, const uint8_t *data, int size, int *w, int *h) {
	uint8_t *out;
	int out_size;
	av_parser_parse2(s->parser, s->ctx, &out, &out_size, data, size, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
	*w = s->parser->width;
	*h = s->parser->height;
}

// abseal_pair makes b the second variant of a: b's luma is a buffer of its
// own from pool (its bytes undefined), its chroma planes are a's, shared by
// reference. a's buffers are first made writable if anything else holds
// them; after the call only a's luma may be written (b reads a's chroma,
// never a's luma).
static int abseal_pair(AVFrame *a, AVFrame *b, AVBufferPool *pool, int size) {
	int ret;
	if (!av_frame_is_writable(a) && (ret = av_frame_make_writable(a)) < 0)
		return ret;
	if (a->linesize[0] <= 0 || (size_t)a->linesize[0] * a->height > (size_t)size)
		return AVERROR(EINVAL);
	av_frame_unref(b);
	if ((ret = av_frame_copy_props(b, a)) < 0)
		return ret;
	b->format = a->format;
	b->width = a->width;
	b->height = a->height;
	if (!(b->buf[0] = av_buffer_pool_get(pool)))
		return AVERROR(ENOMEM);
	b->data[0] = b->buf[0]->data;
	b->linesize[0] = a->linesize[0];
	int nb = 1;
	for (int i = 1; i < AV_NUM_DATA_POINTERS && a->data[i]; i++) {
		AVBufferRef *pb = av_frame_get_plane_buffer(a, i);
		if (!pb) {
			av_frame_unref(b);
			return AVERROR(EINVAL);
		}
		int have = 0;
		for (int k = 1; k < nb; k++)
			if (b->buf[k]->buffer == pb->buffer)
				have = 1;
		if (!have) {
			if (!(b->buf[nb] = av_buffer_ref(pb))) {
				av_frame_unref(b);
				return AVERROR(ENOMEM);
			}
			nb++;
		}
		b->data[i] = a->data[i];
		b->linesize[i] = a->linesize[i];
	}
	b->extended_data = b->data;
	return 0;
}

static void abseal_sizer_free(abseal_sizer *s) {
	av_parser_close(s->parser);
	avcodec_free_context(&s->ctx);
	av_free(s);
}
*/
import "C"

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// probeScoreRetry is FFmpeg's AVPROBE_SCORE_RETRY: a container guess at or
// below it is tried again with more data.
const probeScoreRetry = C.AVPROBE_SCORE_RETRY

// probePadding is FFmpeg's AVPROBE_PADDING_SIZE: zero bytes the probe may
// read past the data.
const probePadding = C.AVPROBE_PADDING_SIZE

// probeFormat names the demuxer that fits data best, from its content
// alone, with FFmpeg's score (0 when none fits).
func probeFormat(data []byte) (string, int) {
	buf := C.malloc(C.size_t(len(data) + probePadding))
	defer C.free(buf)
	b := unsafe.Slice((*byte)(buf), len(data)+probePadding)
	clear(b[copy(b, data):])
	var score C.int
	name := C.abseal_probe((*C.uchar)(buf), C.int(len(data)), &score)
	if name == nil {
		return "", 0
	}
	return C.GoString(name), int(score)
}

// cformat returns fc's AVFormatContext. go-astiav keeps the pointer as the
// only field of FormatContext without an accessor; the AVClass check turns
// a change of that layout into an error rather than a crash.
func cformat(fc *astiav.FormatContext) (*C.AVFormatContext, error) {
	p := *(**C.AVFormatContext)(unsafe.Pointer(fc))
	if p == nil || p.av_class != C.avformat_get_class() {
		return nil, errors.New("transcode: go-astiav FormatContext has an unexpected layout")
	}
	return p, nil
}

// denyOpens makes every attempt of fc's demuxer to open another file or
// URL (a playlist's segment, a reference, a nested list) fail.
func denyOpens(fc *astiav.FormatContext) error {
	c, err := cformat(fc)
	if err != nil {
		return err
	}
	C.abseal_deny_opens(c)
	return nil
}

// findStreamInfo is FormatContext.FindStreamInfo with every stream's probe
// decoder limited to maxPixels per picture and one thread: learning the
// parameters of a stream of huge pictures fails instead of allocating them.
func findStreamInfo(fc *astiav.FormatContext, maxPixels int64) error {
	c, err := cformat(fc)
	if err != nil {
		return err
	}
	mp := C.CString(strconv.FormatInt(maxPixels, 10))
	defer C.free(unsafe.Pointer(mp))
	if ret := C.abseal_find_stream_info(c, mp); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

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

// lumaPool holds the luma planes of variant B frames of one rendition:
// allocated once, reused frame after frame (a fresh allocation per frame
// costs page faults at every frame).
type lumaPool struct {
	p    *C.AVBufferPool
	size int
}

func newLumaPool(size int) *lumaPool {
	return &lumaPool{p: C.av_buffer_pool_init(C.size_t(size), nil), size: size}
}

// free releases the pool; buffers still in use are freed when returned.
func (lp *lumaPool) free() {
	if lp.p != nil {
		C.av_buffer_pool_uninit(&lp.p)
	}
}

// pairFrames makes b the second variant of a: a luma plane of its own from
// lp (its bytes undefined: the pair hook writes it), the chroma planes of a
// shared by reference. a is made writable first if its buffer is shared.
func pairFrames(a, b *astiav.Frame, lp *lumaPool) error {
	if lp.p == nil {
		return errors.New("transcode: luma pool allocation failed")
	}
	if ret := C.abseal_pair(cframe(a), cframe(b), lp.p, C.int(lp.size)); ret < 0 {
		return astiav.Error(ret)
	}
	return nil
}

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

// sizer reads the picture size from a video stream's packets with FFmpeg's
// parser for the codec (from the sequence headers, H.264's and HEVC's SPS),
// before the decoder sees them: a stream that switches to pictures over
// the limits is stopped before any is allocated.
type sizer struct{ c *C.abseal_sizer }

// newSizer returns nil when FFmpeg has no parser for dec's codec.
func newSizer(dec *astiav.CodecContext) *sizer {
	c := C.abseal_sizer_new((*C.AVCodecContext)(dec.UnsafePointer()))
	if c == nil {
		return nil
	}
	return &sizer{c: c}
}

// size parses one packet and returns the picture size the stream declares
// so far (0, 0 when not known yet).
func (s *sizer) size(data []byte) (w, h int) {
	if len(data) == 0 {
		return 0, 0
	}
	var cw, ch C.int
	C.abseal_sizer_parse(s.c, (*C.uint8_t)(unsafe.Pointer(&data[0])), C.int(len(data)), &cw, &ch)
	return int(cw), int(ch)
}

func (s *sizer) free() {
	if s.c != nil {
		C.abseal_sizer_free(s.c)
		s.c = nil
	}
}
