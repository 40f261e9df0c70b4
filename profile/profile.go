// Package profile describes how an upload is turned into renditions: the
// ladder of rungs with their encoder settings, the segment duration and the
// audio settings. Profiles are data (JSON files), validated when loaded; the
// built-in default is used when no file is given.
package profile

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/abseal/abseal/asset"
)

//go:embed default.json
var defaultJSON []byte

// Profile is a named ladder and its packaging settings.
type Profile struct {
	Name string `json:"name"`
	// SegmentDuration is the CMAF segment length (and the IDR interval).
	SegmentDuration Duration `json:"segment_duration"`
	Rungs           []Rung   `json:"rungs"`
	Audio           Audio    `json:"audio"`
}

// Rung is one video rendition.
type Rung struct {
	// Name is used in object keys and playlists ("720p").
	Name string `json:"name"`
	// Size is the length of the picture's shorter side (720 for 1280x720 and
	// for a portrait 720x1280); the other side follows the source's aspect.
	Size int `json:"size"`
	// Bitrate is the target average in bits/s (used for HLS/DASH signalling
	// and, without CRF, as the encoder's target).
	Bitrate int64 `json:"bitrate"`
	// MaxRate and BufSize cap the bitrate (VBV), in bits/s and bits.
	MaxRate int64 `json:"maxrate"`
	BufSize int64 `json:"bufsize"`
	// CRF selects capped constant-quality mode when > 0.
	CRF int `json:"crf,omitempty"`
	// Preset is the libx264 preset ("veryfast", "medium", …).
	Preset string `json:"preset"`
	// H264Profile is "baseline", "main" or "high".
	H264Profile string `json:"h264_profile"`
}

// Audio are the AAC settings (stereo); Bitrate 0 disables audio output.
type Audio struct {
	Bitrate    int64 `json:"bitrate"`
	SampleRate int   `json:"sample_rate"`
}

// Duration is a time.Duration written as a string in JSON ("2s").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
	h264    = []string{"baseline", "main", "high"}
)

// Default returns the built-in profile: 1080p/720p/480p/360p, 2 s segments,
// 128 kb/s AAC.
func Default() *Profile {
	p, err := Parse(defaultJSON)
	if err != nil {
		panic("profile: built-in default is invalid: " + err.Error())
	}
	return p
}

// Load reads and validates a profile file.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return p, nil
}

// Parse decodes and validates a profile. Unknown fields are rejected.
func Parse(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate names the first bad field.
func (p *Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("profile %q: "+format, append([]any{p.Name}, args...)...)
	}
	if !nameRE.MatchString(p.Name) {
		return bad("name must match %s", nameRE)
	}
	if sd := time.Duration(p.SegmentDuration); sd < 500*time.Millisecond || sd > 20*time.Second {
		return bad("segment_duration %s outside 0.5s..20s", sd)
	}
	if len(p.Rungs) == 0 {
		return bad("no rungs")
	}
	seen := map[string]bool{asset.AudioRung: true}
	for i, r := range p.Rungs {
		switch {
		case !nameRE.MatchString(r.Name):
			return bad("rungs[%d].name %q must match %s", i, r.Name, nameRE)
		case !asset.ValidRung(r.Name):
			return bad("rungs[%d].name %q is taken by the object layout", i, r.Name)
		case seen[r.Name]:
			return bad("rungs[%d].name %q is used twice (or reserved)", i, r.Name)
		case r.Size < 64 || r.Size > 4320 || r.Size%2 != 0:
			return bad("rungs[%d] (%s).size %d must be even and within 64..4320", i, r.Name, r.Size)
		case r.Bitrate <= 0:
			return bad("rungs[%d] (%s).bitrate must be positive", i, r.Name)
		case r.MaxRate < 0 || (r.MaxRate > 0 && r.MaxRate < r.Bitrate):
			return bad("rungs[%d] (%s).maxrate %d must be 0 or >= bitrate %d", i, r.Name, r.MaxRate, r.Bitrate)
		case r.MaxRate > 0 && r.BufSize <= 0:
			return bad("rungs[%d] (%s).bufsize must be positive with maxrate", i, r.Name)
		case r.CRF < 0 || r.CRF > 51:
			return bad("rungs[%d] (%s).crf %d outside 0..51", i, r.Name, r.CRF)
		case !slices.Contains(presets, r.Preset):
			return bad("rungs[%d] (%s).preset %q is not one of %v", i, r.Name, r.Preset, presets)
		case !slices.Contains(h264, r.H264Profile):
			return bad("rungs[%d] (%s).h264_profile %q is not one of %v", i, r.Name, r.H264Profile, h264)
		}
		seen[r.Name] = true
	}
	for i := 1; i < len(p.Rungs); i++ {
		if p.Rungs[i].Size >= p.Rungs[i-1].Size {
			return bad("rungs must be ordered from the largest to the smallest size (%s after %s)", p.Rungs[i].Name, p.Rungs[i-1].Name)
		}
	}
	if p.Audio.Bitrate < 0 || (p.Audio.Bitrate > 0 && (p.Audio.Bitrate < 16000 || p.Audio.Bitrate > 512000)) {
		return bad("audio.bitrate %d must be 0 (no audio) or within 16000..512000", p.Audio.Bitrate)
	}
	if p.Audio.Bitrate > 0 && !slices.Contains([]int{44100, 48000}, p.Audio.SampleRate) {
		return bad("audio.sample_rate %d must be 44100 or 48000", p.Audio.SampleRate)
	}
	return nil
}

// Output is a rung fitted to one source.
type Output struct {
	Rung
	Width, Height int
}

// ErrBadSource is matched by Ladder's error for unusable source dimensions.
var ErrBadSource = errors.New("unusable source dimensions")

// Ladder fits the rungs to a source of w×h (display orientation): rungs
// larger than the source are dropped (never upscale); if every rung is
// larger, the smallest is kept at the source's own size. Output sizes keep
// the aspect ratio and are even.
func (p *Profile) Ladder(w, h int) ([]Output, error) {
	if w < 2 || h < 2 {
		return nil, fmt.Errorf("profile: %w: %dx%d", ErrBadSource, w, h)
	}
	short := min(w, h)
	var out []Output
	for _, r := range p.Rungs {
		if r.Size > short {
			continue
		}
		out = append(out, fit(r, w, h, r.Size))
	}
	if len(out) == 0 {
		out = append(out, fit(p.Rungs[len(p.Rungs)-1], w, h, short&^1))
	}
	return out, nil
}

func fit(r Rung, w, h, size int) Output {
	even := func(v float64) int {
		n := int(v/2+0.5) * 2
		return max(n, 2)
	}
	o := Output{Rung: r}
	if w >= h {
		o.Height = size
		o.Width = even(float64(w) * float64(size) / float64(h))
	} else {
		o.Width = size
		o.Height = even(float64(h) * float64(size) / float64(w))
	}
	return o
}
