// Package cdn holds abseal's reference CDN edge function (abseal-edge.mjs,
// JavaScript: Web Crypto and fetch only) and the Go tests that keep it in
// step with the Go edge: the committed vectors (testdata/vectors.json),
// written here from the Go implementation, and the Node test suite run
// against them.
package cdn_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/watermark"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the Go implementation")

const vectorsPath = "testdata/vectors.json"

// Vectors is testdata/vectors.json: what the Go edge decides, for the
// JavaScript function to decide the same.
type Vectors struct {
	Comment string `json:"comment"`
	// Now is the clock (Unix seconds) the tokens are checked at.
	Now int64 `json:"now"`
	// Asset is a tardos-v1 asset of PatternLen positions.
	Asset      string `json:"asset"`
	PatternLen int    `json:"pattern_length"`
	// Keys, as their files hold them (test keys, nothing else uses them).
	TokenKeys       []string `json:"token_keys"`
	PatternKeyAES   string   `json:"pattern_key_aes"`
	PatternKeyECDH  string   `json:"pattern_key_ecdh"`
	WatermarkMaster string   `json:"watermark_master"`
	Tokens          []TokenVector
	Codes           []CodeVector
	Paths           []PathVector
	Paces           []PaceVector
}

// TokenVector is a token and what the Go edge answers a segment request
// of Asset with it: Status 200 and the session's Pattern (bits, "0"/"1"),
// or the refusal.
type TokenVector struct {
	Name    string `json:"name"`
	Token   string `json:"token"`
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	// Reason is the token check's own outcome (delivery.Keys.Verify):
	// "" when the token verifies.
	Reason string `json:"reason,omitempty"`
}

// CodeVector is a tardos-v1 codeword.
type CodeVector struct {
	Asset string `json:"asset"`
	N     int    `json:"n"`
	OpID  string `json:"opid"` // decimal (uint64)
	WMID  string `json:"wmid"` // decimal (uint64)
	Bits  string `json:"bits"`
}

// PathVector is an asset-relative path and what a player may fetch there:
// Kind "" for a path players are refused (404).
type PathVector struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Rung   string `json:"rung,omitempty"`
	Number int    `json:"number,omitempty"`
}

// PaceVector is a WMPaceInfo sidecar (hex) and its position; OK false
// for one the edge refuses.
type PaceVector struct {
	Hex      string `json:"hex"`
	Egress   string `json:"egress"`
	OK       bool   `json:"ok"`
	Position int    `json:"position"`
}

func TestVectors(t *testing.T) {
	if *update {
		v, err := makeVectors()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.MarshalIndent(v, "", " ")
		if err := os.WriteFile(vectorsPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v Vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	checkVectors(t, &v)
}

// checkVectors: the committed vectors are what the Go implementation
// decides today (a change in Go that would split the two fails here).
func checkVectors(t *testing.T, v *Vectors) {
	env, err := loadEnv(v)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tv := range v.Tokens {
		seen[tv.Name] = true
		st, msg, pat, reason := env.decide(tv.Token)
		if st != tv.Status || msg != tv.Message || pat != tv.Pattern || reason != tv.Reason {
			t.Errorf("token %s: Go decides %d %q %q (%s), the vectors say %d %q %q (%s)", tv.Name, st, msg, reason, pat, tv.Status, tv.Message, tv.Reason, tv.Pattern)
		}
	}
	// Every kind of answer is covered.
	for _, name := range []string{"hmac direct", "hmac indirect", "es256 direct", "es256 indirect opid 7", "hmac direct A256GCM",
		"es256 direct ECDH-SS+A128KW", "expired", "not yet valid", "another asset", "tampered", "unknown key", "wmpatlen mismatch",
		"not base64url", "ECDH for another edge", "indirect wmid 2^63+5", "hmac direct pattern 0xd0"} {
		if !seen[name] {
			t.Errorf("no token vector %q", name)
		}
	}
	for _, cv := range v.Codes {
		if got := codeBits(t, env.master, cv); got != cv.Bits {
			t.Errorf("code %s n=%d opid=%s wmid=%s: Go derives other bits", cv.Asset, cv.N, cv.OpID, cv.WMID)
		}
	}
	for _, pv := range v.Paths {
		if got := playerObject(pv.Path); got != pv {
			t.Errorf("path %q: Go reads %+v, the vectors say %+v", pv.Path, got, pv)
		}
	}
	for _, pv := range v.Paces {
		b, _ := hex.DecodeString(pv.Hex)
		p, err := cmaf.ParsePaceInfo(b)
		if (err == nil) != pv.OK || err == nil && p.Position != pv.Position || pv.Egress != cmaf.PaceInfoEgress(b) {
			t.Errorf("pace %s: Go reads %+v %v", pv.Hex, p, err)
		}
	}
}

type vecEnv struct {
	v      *Vectors
	keys   *delivery.Keys
	pkeys  delivery.PatternKeys
	master []byte
}

func loadEnv(v *Vectors) (*vecEnv, error) {
	dir, err := os.MkdirTemp("", "abseal-vectors")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	var keys []*delivery.Key
	for i, k := range v.TokenKeys {
		key, err := delivery.LoadKey(write(fmt.Sprint("tk", i), k))
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	aes, _, err := delivery.LoadPatternKey(write("aes", v.PatternKeyAES))
	if err != nil {
		return nil, err
	}
	ec, _, err := delivery.LoadPatternKey(write("ecdh", v.PatternKeyECDH))
	if err != nil {
		return nil, err
	}
	master, err := hex.DecodeString(v.WatermarkMaster)
	if err != nil {
		return nil, err
	}
	ak, err := watermark.DeriveAssetKey(master, v.Asset)
	if err != nil {
		return nil, err
	}
	if _, err := forensic.NewCode(ak, v.PatternLen, 0); err != nil {
		return nil, err
	}
	return &vecEnv{v: v, keys: delivery.NewKeys(keys...), pkeys: delivery.PatternKeys{AES: aes.AES, ECDH: ec.ECDH}, master: master}, nil
}

func bitString(bits []uint8) string {
	var b strings.Builder
	for _, x := range bits {
		b.WriteByte('0' + x)
	}
	return b.String()
}

// decide is what the Go edge answers a video segment request of the
// vectors' asset with token: as edge.Server's serveObject and pattern do
// (delivery.Keys.Verify, the audience, wmpatlen against the asset's,
// delivery.SessionPatternWith with the asset's session code).
func (e *vecEnv) decide(token string) (status int, msg, pattern, reason string) {
	c, err := e.keys.Verify(token, time.Unix(e.v.Now, 0))
	if err != nil {
		r := edge.PublicReason(err)
		return 401, "token refused: " + r, "", r
	}
	if c.Audience != e.v.Asset {
		return 403, "the token is not for this asset", "", ""
	}
	if int(c.PatternLen) != e.v.PatternLen {
		return 400, fmt.Sprintf("wmpatlen %d does not match the asset's pattern length %d", c.PatternLen, e.v.PatternLen), "", ""
	}
	derive := func(wmid, opID, _ uint64) ([]uint8, error) {
		ak, err := watermark.DeriveAssetKey(e.master, e.v.Asset)
		if err != nil {
			return nil, err
		}
		code, err := forensic.NewCode(ak, e.v.PatternLen, opID)
		if err != nil {
			return nil, err
		}
		return code.Pattern(wmid)
	}
	packed, err := delivery.SessionPatternWith(c, e.pkeys, derive)
	if err != nil {
		return 401, "token pattern unusable: " + edge.PublicReason(err), "", ""
	}
	bits := make([]uint8, c.PatternLen)
	for i := range bits {
		bits[i] = delivery.Bit(packed, i)
	}
	return 200, "", bitString(bits), ""
}

func codeBits(t *testing.T, master []byte, cv CodeVector) string {
	var op, wmid uint64
	fmt.Sscan(cv.OpID, &op)
	fmt.Sscan(cv.WMID, &wmid)
	ak, err := watermark.DeriveAssetKey(master, cv.Asset)
	if err != nil {
		t.Fatal(err)
	}
	code, err := forensic.NewCode(ak, cv.N, op)
	if err != nil {
		t.Fatal(err)
	}
	bits, _ := code.Pattern(wmid)
	return bitString(bits)
}

// playerObject is what a player may fetch at an asset-relative path
// (asset.Parse, neutral objects only).
func playerObject(p string) PathVector {
	out := PathVector{Path: p}
	r, err := asset.Parse(p)
	if err != nil {
		return out
	}
	switch {
	case r.Kind == asset.KindHLS, r.Kind == asset.KindDASH, r.Kind == asset.KindInit:
		out.Kind, out.Rung = r.Kind.String(), r.Rung
	case r.Kind == asset.KindSegment && r.Variant == "":
		out.Kind, out.Rung, out.Number = r.Kind.String(), r.Rung, r.Number
	}
	return out
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func makeVectors() (*Vectors, error) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v := &Vectors{
		Comment: "Written by `go test ./cdn -run TestVectors -update` from the Go implementation; abseal-edge.test.mjs checks the JavaScript edge function against it. Test keys only.",
		Now:     now.Unix(), Asset: "vectors-asset", PatternLen: 100,
	}
	hmacSecret := []byte("the cdn vectors' HMAC token key (test only)")
	v.TokenKeys = append(v.TokenKeys, hex.EncodeToString(hmacSecret))
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, _ := x509.MarshalPKIXPublicKey(&es.PublicKey)
	v.TokenKeys = append(v.TokenKeys, pemOf("PUBLIC KEY", spki))
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	v.PatternKeyAES = hex.EncodeToString(aesKey)
	edgeEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(edgeEC)
	v.PatternKeyECDH = pemOf("PRIVATE KEY", p8)
	master := make([]byte, 32)
	rand.Read(master)
	v.WatermarkMaster = hex.EncodeToString(master)

	env, err := loadEnv(v)
	if err != nil {
		return nil, err
	}
	hk := keyLike(hmacSecret)
	ek, _ := delivery.NewES256Key(esKID(&es.PublicKey), es)
	other := keyLike([]byte("another HMAC key no edge was given, 32b+"))
	issuer, _ := ecdh.P256().GenerateKey(rand.Reader)
	edgePub, _ := edgeEC.PublicKey.ECDH()
	strangerEdge, _ := ecdh.P256().GenerateKey(rand.Reader)

	session := func(wmid, op uint64) edge.Session {
		return edge.Session{Asset: v.Asset, WMID: wmid, OpID: op, Subject: fmt.Sprint("viewer-", wmid), TTL: time.Hour}
	}
	direct := func(seal func([]byte) ([]byte, error)) edge.TokenOptions {
		return edge.TokenOptions{Manifest: vectorManifest(v), Direct: true, WatermarkMaster: master, SealPattern: seal}
	}
	indirect := edge.TokenOptions{PatternLen: v.PatternLen}
	mint := func(name string, s edge.Session, o edge.TokenOptions, k *delivery.Key, at time.Time) {
		tok, err := edge.MintToken(s, o, k, at)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
		v.Tokens = append(v.Tokens, TokenVector{Name: name, Token: tok})
	}
	mint("hmac direct", session(1001, 0), direct(nil), hk, now)
	mint("hmac indirect", session(1002, 0), indirect, hk, now)
	mint("es256 direct", session(1003, 0), direct(nil), ek, now)
	mint("es256 indirect opid 7", session(1004, 7), indirect, ek, now)
	mint("hmac direct A256GCM", session(1005, 0), direct(func(p []byte) ([]byte, error) { return delivery.EncryptPattern(aesKey, p) }), hk, now)
	mint("es256 direct ECDH-SS+A128KW", session(1006, 0), direct(func(p []byte) ([]byte, error) {
		return delivery.EncryptPatternECDH(issuer, edgePub, []byte("edge-1"), p)
	}), ek, now)
	mint("ECDH for another edge", session(1007, 0), direct(func(p []byte) ([]byte, error) {
		return delivery.EncryptPatternECDH(issuer, strangerEdge.PublicKey(), nil, p)
	}), hk, now)
	mint("indirect wmid 2^63+5", session(1<<63+5, 0), indirect, hk, now)
	// A session whose clear pattern starts with 0xd0, the first byte of a
	// COSE_Encrypt0: still a clear pattern (it has the clear size).
	code, _ := forensic.NewCode(mustAssetKey(master, v.Asset), v.PatternLen, 0)
	for wmid := uint64(2000); ; wmid++ {
		bits, _ := code.Pattern(wmid)
		if delivery.PackBits(bits)[0] == 0xd0 {
			mint("hmac direct pattern 0xd0", session(wmid, 0), direct(nil), hk, now)
			break
		}
	}
	mint("expired", session(1008, 0), indirect, hk, now.Add(-2*time.Hour))
	mint("not yet valid", session(1009, 0), indirect, hk, now.Add(10*time.Minute))
	s := session(1010, 0)
	s.Asset = "another-asset"
	mint("another asset", s, indirect, hk, now)
	mint("unknown key", session(1011, 0), indirect, other, now)
	mint("wmpatlen mismatch", session(1012, 0), edge.TokenOptions{PatternLen: v.PatternLen + 1}, hk, now)
	// Tampered: one claim byte changed after the MAC.
	tok, _ := edge.MintToken(session(1013, 0), indirect, hk, now)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	i := strings.Index(string(raw), "viewer-1013")
	raw[i+7] = '9'
	v.Tokens = append(v.Tokens, TokenVector{Name: "tampered", Token: base64.RawURLEncoding.EncodeToString(raw)})
	v.Tokens = append(v.Tokens, TokenVector{Name: "not base64url", Token: "not a token!"})
	for i := range v.Tokens {
		tv := &v.Tokens[i]
		tv.Status, tv.Message, tv.Pattern, tv.Reason = env.decide(tv.Token)
	}

	for _, cv := range []CodeVector{
		{Asset: v.Asset, N: 100, OpID: "0", WMID: "1002"},
		{Asset: v.Asset, N: 1, OpID: "0", WMID: "1"},
		{Asset: v.Asset, N: 7, OpID: "18446744073709551615", WMID: "18446744073709551615"},
		{Asset: "film-2026", N: 3600, OpID: "3", WMID: "123456789"},
	} {
		cv.Bits = codeBits(nil, master, cv)
		v.Codes = append(v.Codes, cv)
	}

	for _, p := range []string{
		"hls/master.m3u8", "hls/720p.m3u8", "hls/audio.m3u8", "dash/manifest.mpd", "720p/init.mp4", "audio/init.mp4",
		"720p/seg-00001.m4s", "720p/seg-99999.m4s", "720p/seg-123456.m4s", "audio/seg-00002.m4s", "v.1_x-2/seg-00003.m4s",
		"manifest.json", "720p/a/seg-00001.m4s", "720p/b/seg-00001.m4s", "720p/WMPaceInfo/seg-00001.m4s",
		"720p/seg-00000.m4s", "720p/seg-1.m4s", "720p/seg-0001.m4s", "720p/seg-000001.m4s", "720p/seg-00001.mp4", "720p/seg-+0001.m4s",
		"hls/master.m3u8x", "hls/hls.m3u8", "hls/dash.m3u8", "hls/.m3u8", "hls/master", "dash/init.mp4", "dash/manifest.m3u8",
		"hls/init.mp4", "WMPaceInfo/init.mp4", "master/init.mp4", "assets/init.mp4", "manifest.json/init.mp4",
		".720p/init.mp4", "-720p/init.mp4", "720p//init.mp4", "720p/./init.mp4", "../720p/init.mp4", "720p/init.mp4/",
		"720p", "", "720p/c/seg-00001.m4s", strings.Repeat("r", 128) + "/init.mp4", strings.Repeat("r", 129) + "/init.mp4",
	} {
		v.Paths = append(v.Paths, playerObject(p))
	}

	for _, pos := range []int{-1, 0, 1, 99, cmaf.MaxPosition} {
		b, err := cmaf.MarshalPaceInfo(pos, 123456)
		if err != nil {
			return nil, err
		}
		v.Paces = append(v.Paces, PaceVector{Hex: hex.EncodeToString(b), Egress: cmaf.PaceInfoEgress(b), OK: true, Position: pos})
	}
	for _, h := range []string{
		"a20102063a",                 // version 2
		"a2010106390000",             // position -1 as a 2-byte negative: still -1
		"a20101061a00010000",         // position 65536
		"a201010620",                 // position -1 in its one-byte form
		"a1", "", "ff", "a201010101", // truncated, empty, break, duplicate key
		"a2010106f5", // position true
	} {
		b, _ := hex.DecodeString(h)
		p, err := cmaf.ParsePaceInfo(b)
		v.Paces = append(v.Paces, PaceVector{Hex: h, Egress: cmaf.PaceInfoEgress(b), OK: err == nil, Position: p.Position})
	}
	return v, nil
}

func mustAssetKey(master []byte, assetID string) []byte {
	k, err := watermark.DeriveAssetKey(master, assetID)
	if err != nil {
		panic(err)
	}
	return k
}

// keyLike is the HMAC key `edge serve` loads from a file holding the hex
// of secret (its kid included).
func keyLike(secret []byte) *delivery.Key {
	dir, _ := os.MkdirTemp("", "abseal-key")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "k")
	os.WriteFile(p, []byte(hex.EncodeToString(secret)), 0o600)
	k, err := delivery.LoadKey(p)
	if err != nil {
		panic(err)
	}
	return k
}

func esKID(pub *ecdsa.PublicKey) []byte {
	dir, _ := os.MkdirTemp("", "abseal-key")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "k.pem")
	der, _ := x509.MarshalPKIXPublicKey(pub)
	os.WriteFile(p, []byte(pemOf("PUBLIC KEY", der)), 0o600)
	k, err := delivery.LoadKey(p)
	if err != nil {
		panic(err)
	}
	return k.ID
}

// vectorManifest is the manifest of the vectors' asset, as far as
// minting direct-mode tokens reads it.
func vectorManifest(v *Vectors) *asset.Manifest {
	return &asset.Manifest{AssetID: v.Asset, SegDur: 2, Watermark: &asset.WatermarkInfo{
		Scheme: "abseal-ab", Version: 1, PatternLen: v.PatternLen, IDBits: 32, Code: asset.CodeTardos,
	}}
}
