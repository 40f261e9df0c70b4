package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

// put stores v under key in cache m, starting the cache afresh when it is
// full (the caches hold what is cheap to fetch again).
func put[V any](s *Server, m *map[string]V, key string, v V) {
	s.mu.Lock()
	if len(*m) > s.cfg.CacheLimit {
		*m = map[string]V{}
	}
	(*m)[key] = v
	s.mu.Unlock()
}

func get[V any](s *Server, m map[string]V, key string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[key]
	return v, ok
}

// manifest returns an asset's manifest, cached for ManifestTTL.
func (s *Server) manifest(ctx context.Context, assetID string) (*asset.Manifest, error) {
	if cm, ok := get(s, s.manifests, assetID); ok && time.Since(cm.fetched) < s.cfg.ManifestTTL {
		return cm.m, nil
	}
	m, err := sealed.ReadManifest(ctx, s.cfg.Store, assetID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(http.StatusNotFound, "no such asset")
	}
	if err != nil {
		return nil, err
	}
	put(s, &s.manifests, assetID, &cachedManifest{m: m, fetched: time.Now()})
	return m, nil
}

// forgetManifest drops the cached manifest of assetID; it reports
// whether one was cached.
func (s *Server) forgetManifest(assetID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.manifests[assetID]
	delete(s.manifests, assetID)
	return ok
}

// dek unwraps a rendition's DEK once and keeps it in memory.
func (s *Server) dek(m *asset.Manifest, r *asset.Rendition) (*envelope.DEK, error) {
	key := m.AssetID + "/" + r.Name + "/" + string(r.DEK.Wrapped[:min(16, len(r.DEK.Wrapped))])
	if d, ok := get(s, s.deks, key); ok {
		return d, nil
	}
	d, err := sealed.RenditionDEK(s.cfg.KEK, m.AssetID, r)
	if err != nil {
		return nil, err
	}
	put(s, &s.deks, key, d)
	return d, nil
}

// pace reads a segment's WMPaceInfo sidecar (cached). A segment without
// one cannot be sequenced: 400.
func (s *Server) pace(ctx context.Context, m *asset.Manifest, ref asset.Ref) (cmaf.PaceInfo, error) {
	key := m.Key(ref)
	if p, ok := get(s, s.paces, key); ok {
		return p, nil
	}
	data, err := storage.ReadAll(ctx, s.cfg.Store, key)
	if errors.Is(err, storage.ErrNotFound) {
		return cmaf.PaceInfo{}, missing(http.StatusBadRequest, "no WMPaceInfo for this segment")
	}
	if err != nil {
		return cmaf.PaceInfo{}, err
	}
	p, err := cmaf.ParsePaceInfo(data)
	if err != nil {
		return p, fail(http.StatusBadRequest, "unusable WMPaceInfo for this segment")
	}
	put(s, &s.paces, key, p)
	return p, nil
}

// pattern returns the session's packed pattern (cached per token).
func (s *Server) pattern(token string, c *delivery.Claims, m *asset.Manifest) ([]byte, error) {
	if p, ok := get(s, s.patterns, token); ok {
		return p, nil
	}
	if m.Watermark == nil {
		return []byte{}, nil // nothing to sequence: every segment is variant A
	}
	if int(c.PatternLen) != m.Watermark.PatternLen {
		return nil, fail(http.StatusBadRequest, "wmpatlen %d does not match the asset's pattern length %d", c.PatternLen, m.Watermark.PatternLen)
	}
	var derive delivery.Deriver
	if s.cfg.WatermarkMaster != nil {
		derive = func(wmid, opID, keyVer uint64) ([]uint8, error) {
			code, err := sealed.SessionCode(s.cfg.WatermarkMaster, m, opID)
			if err != nil {
				return nil, err
			}
			return code.Pattern(wmid)
		}
	}
	p, err := delivery.SessionPatternWith(c, s.cfg.PatternKeys, derive)
	if err != nil {
		return nil, fail(http.StatusUnauthorized, "token pattern unusable: %s", publicReason(err))
	}
	put(s, &s.patterns, token, p)
	return p, nil
}

// verify checks a token, remembering tokens that verified so that a
// session's segment requests do not each redo the MAC or signature; the
// expiry is checked on every request.
func (s *Server) verify(token string) (*delivery.Claims, error) {
	now := s.now()
	if c, ok := get(s, s.tokens, token); ok {
		if now.Unix() > c.Expiry+int64(s.cfg.Tokens.Leeway/time.Second) {
			return nil, fmt.Errorf("delivery: %w", delivery.ErrExpired)
		}
		return c, nil
	}
	c, err := s.cfg.Tokens.Verify(token, now)
	if err != nil {
		return nil, err
	}
	put(s, &s.tokens, token, c)
	return c, nil
}
