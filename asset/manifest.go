package asset

import (
	"encoding/json"
	"fmt"
	"time"
)

// ManifestVersion is the schema version of the manifests abseal writes:
// 2 names the run whose objects the manifest uses (Run). Schema 1 (no run,
// objects at Ref.Key) is still read.
const ManifestVersion = 2

// manifestV1 is the schema of manifests written before runs wrote apart.
const manifestV1 = 1

// WatermarkScheme names abseal's A/B watermark in asset manifests.
const WatermarkScheme = "abseal-luma-ab"

// Manifest describes a finished asset: everything the delivery tier and
// the detector need. It is written last; a reader that sees it sees a
// complete asset. It holds wrapped keys only, never a key.
type Manifest struct {
	Schema    int            `json:"schema"`
	AssetID   string         `json:"asset_id"`
	JobID     string         `json:"job_id"`
	Source    SourceInfo     `json:"source"`
	Profile   string         `json:"profile"`
	CreatedAt time.Time      `json:"created_at"`
	Duration  float64        `json:"duration"`         // seconds
	SegDur    float64        `json:"segment_duration"` // seconds
	Watermark *WatermarkInfo `json:"watermark,omitempty"`
	Video     []Rendition    `json:"video"`
	Audio     *Rendition     `json:"audio,omitempty"`
	HLS       string         `json:"hls"`  // key of the multivariant playlist
	DASH      string         `json:"dash"` // key of the MPD
	// Run names the run of the job whose objects this manifest uses, when
	// runs write apart (Ref.RunKey); empty: the objects are at Ref.Key.
	Run string `json:"run,omitempty"`
}

// Key is where the object r of this manifest's asset is stored: under its
// run when it names one. Readers take every key from here (or from the
// objects the manifest lists), never from the layout alone.
func (m *Manifest) Key(r Ref) string { return r.RunKey(m.AssetID, m.Run) }

// SourceInfo identifies the source an asset was made from.
type SourceInfo struct {
	Source
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// WatermarkInfo describes the A/B watermark scheme of an asset (never its
// key).
type WatermarkInfo struct {
	Scheme     string `json:"scheme"`
	Version    int    `json:"version"`
	PatternLen int    `json:"pattern_length"` // wmpatlen
	IDBits     int    `json:"wmid_bits"`
	KeyID      string `json:"key_id"`
	Unmarked   int    `json:"unmarked"` // leading segments at position -1
	// Code is the session code that maps a wmid to its pattern:
	// CodeConvolutional (empty: assets sealed before the field existed)
	// or CodeTardos.
	Code string `json:"code,omitempty"`
}

// Session codes (WatermarkInfo.Code).
const (
	// CodeConvolutional: the wmid and a keyed tag, convolutionally
	// encoded into a pattern of PatternLen bits repeated over the
	// positions (package watermark); a leak decodes to one wmid.
	CodeConvolutional = ""
	// CodeTardos: a collusion-resistant codeword with one bit per marked
	// position, PatternLen = the asset's marked positions (package
	// forensic); a leak is scored against the issued sessions.
	CodeTardos = "tardos-v1"
)

// Rendition describes one sealed track.
type Rendition struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"` // video or audio
	Codecs      string  `json:"codecs"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
	FrameRate   float64 `json:"frame_rate,omitempty"`
	SampleRate  int     `json:"sample_rate,omitempty"`
	Channels    int     `json:"channels,omitempty"`
	Bitrate     int64   `json:"bitrate"`      // average, bits/s
	PeakBitrate int64   `json:"peak_bitrate"` // bits/s
	Timescale   uint32  `json:"timescale"`
	DEK         DEKInfo `json:"dek"`
	Init        Object  `json:"init"`
	Segments    []Seg   `json:"segments"`
}

// DEKInfo is a rendition's data key, wrapped by the KEK, with the
// associated data envelope.RenditionAD(asset, rendition).
type DEKInfo struct {
	KEKURI  string `json:"kek_uri"`
	Wrapped []byte `json:"wrapped"` // base64 in JSON
}

// Seg is one media segment of a rendition.
type Seg struct {
	Index    int               `json:"index"`  // 0-based
	Number   int               `json:"number"` // 1-based, as in object names
	Time     int64             `json:"time"`   // start, in the timescale
	Duration int64             `json:"duration"`
	Size     int64             `json:"size"`     // plaintext bytes (A and B are equal)
	Position int               `json:"position"` // watermark bit position, -1 for none
	Variants map[string]Object `json:"variants"` // "a" (always), "b" (watermarked)
}

// Object is a sealed object in the output bucket.
type Object struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`   // ciphertext bytes
	SHA256 string `json:"sha256"` // of the ciphertext
}

// DecodeManifest parses an asset manifest, rejecting unknown schemas and
// a created_at that could not be written again.
func DecodeManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("asset: manifest: %w", err)
	}
	switch {
	case m.Schema != ManifestVersion && m.Schema != manifestV1:
		return nil, fmt.Errorf("asset: manifest: schema %d is not supported (want %d or %d)", m.Schema, manifestV1, ManifestVersion)
	case m.Schema == ManifestVersion && m.Run == "":
		return nil, fmt.Errorf("asset: manifest: schema %d names no run", m.Schema)
	case m.Schema == manifestV1 && m.Run != "":
		return nil, fmt.Errorf("asset: manifest: schema %d cannot name a run", m.Schema)
	}
	// RFC 3339 parsing accepts zone offsets (such as +24:00) that JSON
	// encoding refuses; no writer makes such a manifest.
	if _, err := m.CreatedAt.MarshalText(); err != nil {
		return nil, fmt.Errorf("asset: manifest: created_at: %w", err)
	}
	if m.Run != "" && !ValidID(m.Run) {
		return nil, fmt.Errorf("asset: manifest: run %q is not a valid id", m.Run)
	}
	if w := m.Watermark; w != nil {
		if w.Code != CodeConvolutional && w.Code != CodeTardos {
			return nil, fmt.Errorf("asset: manifest: session code %q is not supported (want %q or none)", w.Code, CodeTardos)
		}
		if w.PatternLen < 1 || w.PatternLen > 65535 {
			return nil, fmt.Errorf("asset: manifest: pattern length %d, want 1..65535", w.PatternLen)
		}
	}
	return &m, nil
}

// FindRendition returns the named rendition of the manifest, or the first
// (largest) video rendition when name is empty.
func (m *Manifest) FindRendition(name string) (*Rendition, error) {
	for i := range m.Video {
		if name == "" || m.Video[i].Name == name {
			return &m.Video[i], nil
		}
	}
	if m.Audio != nil && name != "" && m.Audio.Name == name {
		return m.Audio, nil
	}
	return nil, fmt.Errorf("asset: %s has no rendition %q", m.AssetID, name)
}

// Segment returns the rendition's segment with this number.
func (r *Rendition) Segment(number int) (Seg, bool) {
	if i := number - 1; i >= 0 && i < len(r.Segments) && r.Segments[i].Number == number {
		return r.Segments[i], true
	}
	for _, s := range r.Segments {
		if s.Number == number {
			return s, true
		}
	}
	return Seg{}, false
}
