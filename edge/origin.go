package edge

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

// CDN origin mode. At scale a CDN edge picks A or B per request (ETSI TS
// 104 002) and caches both variants; the Go edge is then its origin. With
// Config.OriginSecret set, the edge serves
//
//	GET /origin/assets/<asset>/<rung>/<a|b>/seg-NNNNN.m4s   a variant, decrypted
//	GET /origin/assets/<asset>/<rung>/init.mp4              init segments
//	GET /origin/assets/<asset>/<rung>/WMPaceInfo/seg-NNNNN.m4s  the sidecar the CDN reads the position from
//	GET /origin/assets/<asset>/hls/…, /dash/manifest.mpd   the neutral playlists (variant-free)
//
// to requests that carry the shared secret in OriginSecretHeader, with
// cache headers a CDN keeps (media: a year, immutable; playlists: a
// minute). Without the secret (a player, anyone) every /origin/ path is
// 404, as it is when origin mode is off. Players keep using the token
// paths at the CDN, whose edge function checks their tokens and rewrites
// each segment request to the variant path.

// OriginSecretHeader carries the CDN's shared origin secret.
const OriginSecretHeader = "Abseal-Origin-Secret"

// What a CDN edge function needs besides the position, on the origin's
// sidecar and video segment responses: the asset's session code and
// pattern length (wmpatlen), so that it derives indirect-mode patterns
// with the right code and refuses a token minted for another pattern
// length, as the Go edge does from the manifest. Video segments also carry
// their WMPaceInfo in cmaf.PaceInfoEgressHeader (ETSI TS 104 002's
// origin-to-edge carriage), so a function can read the position from a
// HEAD of the segment instead of the sidecar.
const (
	SessionCodeHeader   = "Abseal-Session-Code"
	PatternLengthHeader = "Abseal-Pattern-Length"
)

// SessionCodeName is the SessionCodeHeader value of an asset: its
// session code (asset.WatermarkInfo.Code), "convolutional" for
// asset.CodeConvolutional, "none" for an asset without a watermark.
func SessionCodeName(m *asset.Manifest) string {
	switch {
	case m.Watermark == nil:
		return "none"
	case m.Watermark.Code == asset.CodeConvolutional:
		return "convolutional"
	}
	return m.Watermark.Code
}

// codeHeaders sets SessionCodeHeader and PatternLengthHeader.
func codeHeaders(w http.ResponseWriter, m *asset.Manifest) {
	n := 0
	if m.Watermark != nil {
		n = m.Watermark.PatternLen
	}
	w.Header().Set(SessionCodeHeader, SessionCodeName(m))
	w.Header().Set(PatternLengthHeader, strconv.Itoa(n))
}

// MinOriginSecret is the shortest origin secret accepted, in bytes.
const MinOriginSecret = 32

const (
	originMediaCache    = "public, max-age=31536000, immutable"
	originPlaylistCache = "public, max-age=60"
)

func (s *Server) originAllowed(r *http.Request) bool {
	if len(s.originSecret) == 0 {
		return false
	}
	got := sha256.Sum256([]byte(r.Header.Get(OriginSecretHeader)))
	return subtle.ConstantTimeCompare(got[:], s.originSecret) == 1
}

// serveOrigin answers a CDN's request for rest (the path after /origin/).
func (s *Server) serveOrigin(w http.ResponseWriter, r *http.Request, rest string) {
	start := time.Now()
	code, n := http.StatusOK, 0
	var err error
	if !s.originAllowed(r) {
		err = fail(http.StatusNotFound, "not found")
	} else {
		after, _ := strings.CutPrefix(rest, "assets/")
		assetID, _, _ := strings.Cut(after, "/")
		n, err = s.retryStale(assetID, func() (int, error) { return s.originObject(w, r, rest) })
	}
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("edge: origin: internal error", "stage", errorStage(err), "class", errorClass(err))
			he = &httpError{code: http.StatusBadGateway, msg: "upstream error"}
		}
		code = he.code
		w.Header().Del("Cache-Control")
		http.Error(w, he.msg, code)
	} else if r.Header.Get("Range") != "" && n >= 0 {
		code = http.StatusPartialContent
	}
	s.requests.WithLabelValues("origin", strconv.Itoa(code)).Inc()
	s.latency.WithLabelValues("origin").Observe(time.Since(start).Seconds())
}

func (s *Server) originObject(w http.ResponseWriter, r *http.Request, rest string) (int, error) {
	after, ok := strings.CutPrefix(rest, "assets/")
	assetID, object, _ := strings.Cut(after, "/")
	if !ok || assetID == "" || object == "" {
		return 0, fail(http.StatusNotFound, "not found")
	}
	ref, err := asset.Parse(object)
	if err != nil || ref.Kind == asset.KindManifest {
		return 0, fail(http.StatusNotFound, "no such object")
	}
	m, err := s.manifest(r.Context(), assetID)
	if err != nil {
		return 0, inStage("manifest", err)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch ref.Kind {
	case asset.KindHLS, asset.KindDASH, asset.KindPaceInfo:
		data, err := storage.ReadAll(r.Context(), s.cfg.Store, m.Key(ref))
		if errors.Is(err, storage.ErrNotFound) {
			return 0, missing(http.StatusNotFound, "no such object")
		}
		if err != nil {
			return 0, inStage("playlist", err)
		}
		cc := originPlaylistCache
		if ref.Kind == asset.KindPaceInfo {
			cc = originMediaCache
			codeHeaders(w, m)
		}
		w.Header().Set("Cache-Control", cc)
		return s.write(w, r, data, ref.ContentType()), nil
	}
	rend, dek, err := s.rendition(m, ref.Rung)
	if err != nil {
		return 0, err
	}
	ctype := asset.MediaType(rend.Kind)
	obj, place, size := rend.Init, ref, int64(0)
	if ref.Kind == asset.KindSegment {
		seg, ok := rend.Segment(ref.Number)
		if !ok {
			return 0, fail(http.StatusNotFound, "no such segment")
		}
		v := ref.Variant
		if rend.Kind != "video" && v == "" {
			v = asset.VariantA // audio has one variant, at its neutral name
		}
		o, ok := seg.Variants[v]
		if !ok || (rend.Kind == "video") != (ref.Variant != "") {
			return 0, fail(http.StatusNotFound, "no such object")
		}
		obj, size = o, seg.Size
		place = asset.Segment(ref.Rung, v, ref.Number)
		if rend.Kind != "video" {
			place = asset.Segment(ref.Rung, "", ref.Number)
		} else {
			pace, err := s.pace(r.Context(), m, asset.PaceInfo(ref.Rung, ref.Number))
			if err != nil {
				return 0, inStage("pace_info", err)
			}
			sidecar, err := cmaf.MarshalPaceInfo(pace.Position, pace.FileSize)
			if err != nil {
				return 0, inStage("pace_info", err)
			}
			w.Header().Set(cmaf.PaceInfoEgressHeader, cmaf.PaceInfoEgress(sidecar))
			codeHeaders(w, m)
		}
	}
	w.Header().Set("Cache-Control", originMediaCache)
	if ref.Kind == asset.KindSegment && r.Header.Get("Range") == "" && size > 0 {
		return s.stream(w, r, dek, assetID, place, obj, size, ctype)
	}
	data, err := sealed.OpenObjectFast(r.Context(), s.cfg.Store, dek, assetID, place, obj)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, missing(http.StatusNotFound, "no such object")
	}
	if err != nil {
		return 0, inStage("open", err)
	}
	return s.write(w, r, data, ctype), nil
}
