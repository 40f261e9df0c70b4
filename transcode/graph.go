package transcode

import (
	"errors"
	"fmt"
	"strings"

	"github.com/asticode/go-astiav"
)

// videoGraph is one FFmpeg filter graph for the whole ladder: the decoded
// picture is deinterlaced and rotated once if needed, converted to 8-bit
// 4:2:0, split, and scaled once per rendition.
type videoGraph struct {
	graph *astiav.FilterGraph
	src   *astiav.BuffersrcFilterContext
	sinks []*astiav.BuffersinkFilterContext
	desc  string
}

// orient is the start of every graph: the picture deinterlaced and rotated
// once if needed, in 8-bit 4:2:0.
func orient(v VideoInfo) string {
	var pre []string
	if v.Interlaced {
		pre = append(pre, "bwdif=mode=send_frame:parity=auto:deint=all")
	}
	switch v.Rotation {
	case 90:
		pre = append(pre, "transpose=clock")
	case 180:
		pre = append(pre, "hflip", "vflip")
	case 270:
		pre = append(pre, "transpose=cclock")
	}
	pre = append(pre, "format=yuv420p")
	return "[in]" + strings.Join(pre, ",")
}

// graphDescription is the filter graph text for a source and a ladder.
func graphDescription(v VideoInfo, rends []Rendition) string {
	var b strings.Builder
	b.WriteString(orient(v))
	if len(rends) == 1 {
		fmt.Fprintf(&b, ",scale=%d:%d:flags=bicubic,setsar=1[o0]", rends[0].Width, rends[0].Height)
		return b.String()
	}
	fmt.Fprintf(&b, ",split=%d", len(rends))
	for i := range rends {
		fmt.Fprintf(&b, "[s%d]", i)
	}
	for i, rd := range rends {
		fmt.Fprintf(&b, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1[o%d]", i, rd.Width, rd.Height, i)
	}
	return b.String()
}

func newVideoGraph(in *input, rends []Rendition, threads int) (*videoGraph, error) {
	return newGraphDesc(in, graphDescription(in.info.Video, rends), len(rends), threads)
}

// newGraph is a single-output graph: the source's orientation and
// interlacing fixed, then tail.
func newGraph(in *input, tail string, threads int) (*videoGraph, error) {
	return newGraphDesc(in, orient(in.info.Video)+","+tail+"[o0]", 1, threads)
}

func newGraphDesc(in *input, desc string, outputs, threads int) (_ *videoGraph, err error) {
	g := &videoGraph{graph: astiav.AllocFilterGraph()}
	if g.graph == nil {
		return nil, errors.New("transcode: alloc filter graph failed")
	}
	defer func() {
		if err != nil {
			g.free()
		}
	}()
	g.graph.SetThreadCount(threads)
	if g.src, err = g.graph.NewBuffersrcFilterContext(astiav.FindFilterByName("buffer"), "in"); err != nil {
		return nil, fmt.Errorf("transcode: buffer source: %w", err)
	}
	params := astiav.AllocBuffersrcFilterContextParameters()
	defer params.Free()
	params.SetWidth(in.vdec.Width())
	params.SetHeight(in.vdec.Height())
	params.SetPixelFormat(in.vdec.PixelFormat())
	params.SetSampleAspectRatio(in.vdec.SampleAspectRatio())
	params.SetTimeBase(in.vs.TimeBase())
	params.SetColorSpace(in.vdec.ColorSpace())
	params.SetColorRange(in.vdec.ColorRange())
	if in.rate.Num() > 0 {
		params.SetFramerate(in.rate)
	}
	if err = g.src.SetParameters(params); err != nil {
		return nil, fmt.Errorf("transcode: buffer source parameters: %w", err)
	}
	if err = g.src.Initialize(nil); err != nil {
		return nil, fmt.Errorf("transcode: buffer source: %w", err)
	}

	outs := astiav.AllocFilterInOut()
	outs.SetName("in")
	outs.SetFilterContext(g.src.FilterContext())
	outs.SetPadIdx(0)
	outs.SetNext(nil)
	defer outs.Free()

	var inputs *astiav.FilterInOut
	for i := outputs - 1; i >= 0; i-- {
		sink, err := g.graph.NewBuffersinkFilterContext(astiav.FindFilterByName("buffersink"), fmt.Sprintf("o%d", i))
		if err != nil {
			return nil, fmt.Errorf("transcode: buffer sink: %w", err)
		}
		g.sinks = append([]*astiav.BuffersinkFilterContext{sink}, g.sinks...)
		io := astiav.AllocFilterInOut()
		io.SetName(fmt.Sprintf("o%d", i))
		io.SetFilterContext(sink.FilterContext())
		io.SetPadIdx(0)
		io.SetNext(inputs)
		inputs = io
	}
	defer inputs.Free()

	g.desc = desc
	if err = g.graph.Parse(g.desc, inputs, outs); err != nil {
		return nil, fmt.Errorf("transcode: filter graph %q: %w", g.desc, err)
	}
	if err = g.graph.Configure(); err != nil {
		return nil, fmt.Errorf("transcode: configure filter graph %q: %w", g.desc, err)
	}
	return g, nil
}

func (g *videoGraph) free() {
	if g.graph != nil {
		g.graph.Free()
		g.graph = nil
	}
}
