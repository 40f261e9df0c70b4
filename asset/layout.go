package asset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The object layout of an asset in the output bucket (and of a local
// asset directory, without the prefix):
//
//	assets/<asset>/manifest.json                 the asset manifest (commit point)
//	assets/<asset>/hls/master.m3u8, <rung>.m3u8  neutral playlists (no A/B in names)
//	assets/<asset>/dash/manifest.mpd             neutral MPD
//	assets/<asset>/<rung>/init.mp4               sealed
//	assets/<asset>/<rung>/a/seg-00001.m4s        sealed, variant A
//	assets/<asset>/<rung>/b/seg-00001.m4s        sealed, variant B (same size as A)
//	assets/<asset>/<rung>/WMPaceInfo/seg-00001.m4s  position sidecar (CBOR)
//	assets/<asset>/audio/seg-00001.m4s           sealed, no variants
//
// A run of the job writes every path but the manifest under its own
// prefix, assets/<asset>/runs/<run>/<path> (Ref.RunKey, with its marker
// run.json), and the manifest names the run (Manifest.Key); manifests of
// schema 1 name none and their objects are at the paths above.
//
// Every key is built by Ref.Key or Ref.RunKey and read back by Parse;
// nothing else spells a path.
const (
	assetsDir    = "assets"
	manifestFile = "manifest.json"
	hlsDir       = "hls"
	masterFile   = "master.m3u8"
	hlsExt       = ".m3u8"
	dashDir      = "dash"
	mpdFile      = "manifest.mpd"
	paceInfoDir  = "WMPaceInfo" // ETSI TS 104 002: /pathname/WMPaceInfo/filename
	segPrefix    = "seg-"
	segExt       = ".m4s"

	// InitFile is the file name of a rendition's init segment.
	InitFile = "init.mp4"
)

// Variant names as they appear in keys.
const (
	VariantA = "a"
	VariantB = "b"
)

// Variants lists the variant names in order: index 0 is A, 1 is B.
var Variants = [2]string{VariantA, VariantB}

// Content types of the objects stored as they are (no media in them).
const (
	TypeHLS      = "application/vnd.apple.mpegurl"
	TypeDASH     = "application/dash+xml"
	TypePaceInfo = "application/cbor" // WMPaceInfo (ETSI TS 104 002)
	TypeManifest = "application/json"
	TypeSealed   = "application/octet-stream"
)

// Media types of a track's init and segments as players get them (CMAF,
// ISO BMFF): what the MPD's mimeType says and the edge's Content-Type.
const (
	TypeVideo = "video/mp4"
	TypeAudio = "audio/mp4"
)

// MediaType is the media type of a rendition of kind "video" or "audio".
func MediaType(kind string) string {
	if kind == "audio" {
		return TypeAudio
	}
	return TypeVideo
}

// DASH SegmentTemplate strings, relative to the MPD's BaseURL (the asset
// root).
const (
	DASHInitTemplate  = "$RepresentationID$/" + InitFile
	DASHMediaTemplate = "$RepresentationID$/" + segPrefix + "$Number%05d$" + segExt
)

// ErrNotInLayout is matched by errors for a path that names no object of
// an asset.
var ErrNotInLayout = errors.New("not an object of the asset layout")

// Kind is what an object of an asset holds.
type Kind int

// Object kinds.
const (
	KindManifest Kind = iota + 1 // manifest.json
	KindHLS                      // hls/master.m3u8 (Rung "") or hls/<rung>.m3u8
	KindDASH                     // dash/manifest.mpd
	KindInit                     // <rung>/init.mp4
	KindSegment                  // <rung>/<variant>/seg-NNNNN.m4s, or <rung>/seg-NNNNN.m4s (no variant)
	KindPaceInfo                 // <rung>/WMPaceInfo/seg-NNNNN.m4s
)

func (k Kind) String() string {
	switch k {
	case KindManifest:
		return "manifest"
	case KindHLS:
		return "hls"
	case KindDASH:
		return "dash"
	case KindInit:
		return "init"
	case KindSegment:
		return "segment"
	case KindPaceInfo:
		return "paceinfo"
	}
	return "unknown"
}

// Ref names one object of an asset. The zero Variant of a segment is the
// neutral name players request (and the name of a track without variants,
// such as audio).
type Ref struct {
	Kind    Kind
	Rung    string // rendition: init, segment, sidecar, media playlist
	Variant string // segment: VariantA, VariantB or ""
	Number  int    // segment and sidecar: 1-based segment number
}

// ManifestRef is the asset manifest.
func ManifestRef() Ref { return Ref{Kind: KindManifest} }

// HLSMaster is the multivariant playlist.
func HLSMaster() Ref { return Ref{Kind: KindHLS} }

// HLSMedia is a rendition's media playlist.
func HLSMedia(rung string) Ref { return Ref{Kind: KindHLS, Rung: rung} }

// DASH is the MPD.
func DASH() Ref { return Ref{Kind: KindDASH} }

// Init is a rendition's init segment.
func Init(rung string) Ref { return Ref{Kind: KindInit, Rung: rung} }

// Segment is media segment number (1-based) of a rendition's variant (""
// for a track without variants, or the neutral name).
func Segment(rung, variant string, number int) Ref {
	return Ref{Kind: KindSegment, Rung: rung, Variant: variant, Number: number}
}

// PaceInfo is the WMPaceInfo sidecar of a rendition's segment.
func PaceInfo(rung string, number int) Ref {
	return Ref{Kind: KindPaceInfo, Rung: rung, Number: number}
}

// SegmentFile is the file name of media segment number n (1-based).
func SegmentFile(number int) string { return fmt.Sprintf("%s%05d%s", segPrefix, number, segExt) }

// File is the object's file name (its last path element): the object name
// in its place's associated data.
func (r Ref) File() string {
	switch r.Kind {
	case KindManifest:
		return manifestFile
	case KindHLS:
		if r.Rung == "" {
			return masterFile
		}
		return r.Rung + hlsExt
	case KindDASH:
		return mpdFile
	case KindInit:
		return InitFile
	case KindSegment, KindPaceInfo:
		return SegmentFile(r.Number)
	}
	return ""
}

// Path is the object's path relative to the asset's root.
func (r Ref) Path() string {
	switch r.Kind {
	case KindHLS:
		return hlsDir + "/" + r.File()
	case KindDASH:
		return dashDir + "/" + r.File()
	case KindInit:
		return r.Rung + "/" + r.File()
	case KindSegment:
		if r.Variant == "" {
			return r.Rung + "/" + r.File()
		}
		return r.Rung + "/" + r.Variant + "/" + r.File()
	case KindPaceInfo:
		return r.Rung + "/" + paceInfoDir + "/" + r.File()
	}
	return r.File()
}

// Key is the object's key in the output bucket.
func (r Ref) Key(assetID string) string { return Prefix(assetID) + r.Path() }

// Sealed reports whether the object holds media and is sealed (init and
// media segments); playlists, sidecars and the manifest are stored as
// they are.
func (r Ref) Sealed() bool { return r.Kind == KindInit || r.Kind == KindSegment }

// ContentType is the type the object is stored with.
func (r Ref) ContentType() string {
	switch r.Kind {
	case KindHLS:
		return TypeHLS
	case KindDASH:
		return TypeDASH
	case KindPaceInfo:
		return TypePaceInfo
	case KindManifest:
		return TypeManifest
	}
	return TypeSealed
}

// Neutral is the name a player requests for this object: a segment
// without its variant.
func (r Ref) Neutral() Ref {
	if r.Kind == KindSegment {
		r.Variant = ""
	}
	return r
}

func (r Ref) String() string { return r.Path() }

// Prefix is the key prefix of an asset's objects in the output bucket.
func Prefix(assetID string) string { return assetsDir + "/" + assetID + "/" }

// ManifestKey is the key of an asset's manifest, its commit point.
func ManifestKey(assetID string) string { return ManifestRef().Key(assetID) }

// runsDir holds, under an asset's prefix, the objects of each run of its
// job when runs are kept apart (runs/<run>/<path>); the manifest, the
// commit point, names the run whose objects it uses.
const runsDir = "runs"

// RunKey is the key of r written by run (Key itself for run ""; the
// manifest always stays at ManifestKey).
func (r Ref) RunKey(assetID, run string) string {
	if run == "" || r.Kind == KindManifest {
		return r.Key(assetID)
	}
	return Prefix(assetID) + runsDir + "/" + run + "/" + r.Path()
}

// RunsPrefix is the key prefix under which an asset's runs write apart.
func RunsPrefix(assetID string) string { return Prefix(assetID) + runsDir + "/" }

// RunPrefix is the key prefix of one run's objects.
func RunPrefix(assetID, run string) string { return RunsPrefix(assetID) + run + "/" }

// runMarkerFile is a run's first object (RunMarker), beside its paths.
const runMarkerFile = "run.json"

// RunMarkerKey is the key of a run's marker: written before any other
// object of the run, deleted after all of them.
func RunMarkerKey(assetID, run string) string { return RunPrefix(assetID, run) + runMarkerFile }

// RunOf returns the run whose prefix holds key, or "" when key is not
// under assetID's runs.
func RunOf(assetID, key string) string {
	rest, ok := strings.CutPrefix(key, RunsPrefix(assetID))
	if !ok {
		return ""
	}
	run, _, ok := strings.Cut(rest, "/")
	if !ok || !ValidID(run) {
		return ""
	}
	return run
}

// Parse reads an asset-relative path back into the object it names; it
// accepts exactly the paths Ref.Path makes (Parse(r.Path()) == r).
func Parse(p string) (Ref, error) {
	bad := func() (Ref, error) { return Ref{}, fmt.Errorf("asset: %q: %w", p, ErrNotInLayout) }
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if s == "" || s == "." || s == ".." {
			return bad()
		}
	}
	var r Ref
	switch {
	case len(parts) == 1 && parts[0] == manifestFile:
		r = ManifestRef()
	case len(parts) == 2 && parts[0] == hlsDir && parts[1] == masterFile:
		r = HLSMaster()
	case len(parts) == 2 && parts[0] == hlsDir && strings.HasSuffix(parts[1], hlsExt):
		r = HLSMedia(strings.TrimSuffix(parts[1], hlsExt))
	case len(parts) == 2 && parts[0] == dashDir && parts[1] == mpdFile:
		r = DASH()
	case len(parts) == 2 && parts[1] == InitFile:
		r = Init(parts[0])
	case len(parts) == 2:
		n, ok := segmentNumber(parts[1])
		if !ok {
			return bad()
		}
		r = Segment(parts[0], "", n)
	case len(parts) == 3:
		n, ok := segmentNumber(parts[2])
		switch {
		case !ok:
			return bad()
		case parts[1] == paceInfoDir:
			r = PaceInfo(parts[0], n)
		case parts[1] == VariantA || parts[1] == VariantB:
			r = Segment(parts[0], parts[1], n)
		default:
			return bad()
		}
	default:
		return bad()
	}
	if r.Kind != KindManifest && r.Kind != KindDASH && r.Rung != "" && !ValidRung(r.Rung) || r.Path() != p {
		return bad()
	}
	return r, nil
}

// ParseKey reads a key of the output bucket back into the object it names
// in assetID's layout.
func ParseKey(assetID, key string) (Ref, error) {
	rest, ok := strings.CutPrefix(key, Prefix(assetID))
	if !ok {
		return Ref{}, fmt.Errorf("asset: %q is not under %s: %w", key, Prefix(assetID), ErrNotInLayout)
	}
	return Parse(rest)
}

// AudioRung is the rendition name of the audio track.
const AudioRung = "audio"

// ValidRung reports whether a rendition name can stand in a path without
// being mistaken for another part of the layout (hls, dash, assets and
// master, WMPaceInfo, runs, chunks, run.json and plan.json are taken).
func ValidRung(name string) bool {
	return ValidID(name) && name != hlsDir && name != dashDir && name != assetsDir && name != manifestFile &&
		name != paceInfoDir && name+hlsExt != masterFile && name != runsDir && name != chunksDir && name != runMarkerFile && name != planFile
}

func segmentNumber(file string) (int, bool) {
	digits, ok := strings.CutPrefix(file, segPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, segExt); !ok || digits == "" {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || SegmentFile(n) != file {
		return 0, false
	}
	return n, true
}

// DefaultUnmarked is how many leading segments an asset leaves unmarked
// unless told otherwise (every session gets variant A of them: a player's
// first segment is the same for all).
const DefaultUnmarked = 1

// Position is the watermark bit position of segment index i (0-based): -1
// for the first unmarked segments, then 0, 1, 2, … (a session gets
// pattern[position mod wmpatlen], see delivery.Variant).
func Position(segment, unmarked int) int {
	if segment < unmarked {
		return -1
	}
	return segment - unmarked
}
