// Package watermark is abseal's A/B forensic watermark: keyed patterns that
// segment variants A and B carry with opposite signs, the embedding into
// 8-bit luma planes, the payload code that turns a session's wmid into the
// sequence of A/B choices, and the detector that reads it back. It works on
// plain planes and bits; it does not import FFmpeg.
package watermark
