// Package asset holds the contracts every part of abseal shares about an
// asset: the job message that makes it, the job's state, the asset
// manifest (the commit point), the ready event, the object layout (the one
// place that builds and parses every object key) and the rule that numbers
// watermark positions. It needs no cgo and does no I/O, so the edge, the
// enqueue CLI and CDN-side code build without FFmpeg.
package asset
