package delivery_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/delivery"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

var (
	hmacSecret = []byte("abseal test HMAC key, 32 bytes!!")
	patKey     = []byte("abseal test pattern key 32 bytes")
	t0         = time.Unix(1_800_000_000, 0)
)

func u64(v uint64) *uint64 { return &v }

func hmacKey(t testing.TB) *delivery.Key {
	k, err := delivery.NewHMACKey([]byte("k1"), hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func direct() *delivery.Claims {
	return &delivery.Claims{Subject: "session-1", Audience: "asset-1", Expiry: t0.Add(time.Hour).Unix(), IssuedAt: t0.Unix(),
		Version: 1, PatternLen: 12, Pattern: []byte{0b1010_0000, 0b1111_0000}}
}

func indirect() *delivery.Claims {
	return &delivery.Claims{Audience: "asset-1", Expiry: t0.Add(time.Hour).Unix(), IssuedAt: t0.Unix(),
		Version: 1, PatternLen: 108, WMID: u64(0xBEEF), OpID: u64(7), KeyVer: u64(1), SegDur: []uint64{2, 1}}
}

// TestVectors: HMAC tokens are deterministic; the committed vectors pin
// the encoding (claim keys, deterministic CBOR, COSE_Mac0 layout).
func TestVectors(t *testing.T) {
	ks := delivery.NewKeys(hmacKey(t))
	for name, c := range map[string]*delivery.Claims{"hmac-direct": direct(), "hmac-indirect": indirect()} {
		tok, err := delivery.Mint(c, hmacKey(t))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name+".token")
		if *update {
			os.WriteFile(path, []byte(tok+"\n"), 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./delivery -run TestVectors -update)", err)
		}
		if tok != strings.TrimSpace(string(want)) {
			t.Errorf("%s: token changed:\n got %s\nwant %s", name, tok, want)
		}
		got, err := ks.Verify(strings.TrimSpace(string(want)), t0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Audience != "asset-1" || got.PatternLen != c.PatternLen {
			t.Fatalf("%s: claims %+v", name, got)
		}
	}
	// The claim keys are the spec's integers.
	raw, _ := base64.RawURLEncoding.DecodeString(mustMint(t, indirect(), hmacKey(t)))
	for _, key := range [][]byte{{0x19, 0x01, 0x2c}, {0x19, 0x01, 0x2e}, {0x19, 0x01, 0x31}, {0x19, 0x01, 0x32}, {0x19, 0x01, 0x33}} {
		if !strings.Contains(string(raw), string(key)) {
			t.Errorf("claim key %x (300/302/305/306/307) not found", key)
		}
	}
}

func mustMint(t testing.TB, c *delivery.Claims, k *delivery.Key) string {
	t.Helper()
	tok, err := delivery.Mint(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestES256(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := delivery.NewES256Key([]byte("es1"), priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := delivery.ES256Verifier([]byte("es1"), &priv.PublicKey)
	tok := mustMint(t, direct(), k)
	c, err := delivery.NewKeys(pub).Verify(tok, t0)
	if err != nil || c.Subject != "session-1" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrong, _ := delivery.ES256Verifier([]byte("es1"), &other.PublicKey)
	if _, err := delivery.NewKeys(wrong).Verify(tok, t0); !errors.Is(err, delivery.ErrSignature) {
		t.Fatalf("another key: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ks := delivery.NewKeys(hmacKey(t))
	tok := mustMint(t, direct(), hmacKey(t))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-40] ^= 1
	otherKey, _ := delivery.NewHMACKey([]byte("k1"), []byte("another HMAC key of 32 bytes....."))
	unknownKid, _ := delivery.NewHMACKey([]byte("k9"), hmacSecret)
	noExp := direct()
	for name, tc := range map[string]struct {
		tok  string
		now  time.Time
		want error
	}{
		"expired":      {tok, t0.Add(2 * time.Hour), delivery.ErrExpired},
		"future iat":   {tok, t0.Add(-time.Hour), delivery.ErrNotYet},
		"flipped byte": {base64.RawURLEncoding.EncodeToString(flipped), t0, nil},
		"other key":    {mustMint(t, direct(), otherKey), t0, delivery.ErrSignature},
		"unknown kid":  {mustMint(t, direct(), unknownKid), t0, delivery.ErrUnknownKey},
		"not base64":   {"!!!", t0, delivery.ErrMalformed},
		"not cbor":     {base64.RawURLEncoding.EncodeToString([]byte{0xff, 0x00}), t0, delivery.ErrMalformed},
		"truncated":    {tok[:len(tok)/2], t0, delivery.ErrMalformed},
		"huge":         {strings.Repeat("A", delivery.MaxTokenSize+1), t0, delivery.ErrMalformed},
	} {
		_, err := ks.Verify(tc.tok, tc.now)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	noExp.Expiry = 0
	if _, err := delivery.Mint(noExp, hmacKey(t)); !errors.Is(err, delivery.ErrClaims) {
		t.Errorf("a token without exp was minted: %v", err)
	}
	neither := direct()
	neither.Pattern = nil
	if _, err := delivery.Mint(neither, hmacKey(t)); !errors.Is(err, delivery.ErrClaims) {
		t.Errorf("a token with neither wmpattern nor wmid was minted: %v", err)
	}
	longID := direct()
	longID.ID = make([]byte, delivery.MaxTokenIDSize+1)
	if _, err := delivery.Mint(longID, hmacKey(t)); !errors.Is(err, delivery.ErrClaims) {
		t.Errorf("a token with a %d-byte cti was minted: %v", len(longID.ID), err)
	}
	// A direct-mode token may name its wmid (for revocation) and carry a
	// token id; its pattern is still the one it carries.
	both := direct()
	both.WMID, both.ID = u64(1), delivery.NewTokenID()
	c, err := ks.Verify(mustMint(t, both, hmacKey(t)), t0)
	if err != nil || *c.WMID != 1 || len(c.ID) != delivery.TokenIDSize {
		t.Fatalf("direct token with wmid and cti: %+v %v", c, err)
	}
	if p, err := delivery.SessionPattern(c, nil, nil); err != nil || string(p) != string(both.Pattern) {
		t.Errorf("direct token with wmid: pattern %x %v, want the carried %x", p, err, both.Pattern)
	}
}

func TestSessionPatternAndSequencing(t *testing.T) {
	// Direct, clear.
	c := direct()
	p, err := delivery.SessionPattern(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for pos := range 12 {
		got += delivery.Variant(p, 12, pos, true)
	}
	if got != "babaaaaabbbb" { // 1010 0000 1111, MSB first
		t.Fatalf("variants %s", got)
	}
	if delivery.Variant(p, 12, 12, true) != "b" || delivery.Variant(p, 12, -1, true) != "a" || delivery.Variant(p, 12, 0, false) != "a" {
		t.Fatal("wrap-around, position -1 or sequencing off")
	}
	// A clear pattern whose first byte is a COSE_Encrypt0 tag (0xd0) or
	// whose first bytes are a COSE_Encrypt tag (0xd8 0x60) is a pattern,
	// not a ciphertext: it has the clear size.
	for _, head := range [][]byte{{0xd0, 0x0f}, {0xd8, 0x60}} {
		cd := direct()
		cd.Pattern = head
		if p, err := delivery.SessionPattern(cd, nil, nil); err != nil || string(p) != string(head) {
			t.Fatalf("clear pattern %x: %x %v", head, p, err)
		}
	}
	// Direct, encrypted.
	sealed, err := delivery.EncryptPattern(patKey, c.Pattern)
	if err != nil {
		t.Fatal(err)
	}
	ce := direct()
	ce.Pattern = sealed
	tok := mustMint(t, ce, hmacKey(t))
	back, err := delivery.NewKeys(hmacKey(t)).Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := delivery.SessionPattern(back, patKey, nil); err != nil || string(p2) != string(c.Pattern) {
		t.Fatalf("encrypted pattern: %x %v", p2, err)
	}
	if _, err := delivery.SessionPattern(back, []byte("a wrong pattern key of 32 bytes!"), nil); !errors.Is(err, delivery.ErrPatternKey) {
		t.Fatalf("wrong pattern key: %v", err)
	}
	// Indirect.
	ci := indirect()
	bits := make([]uint8, 108)
	bits[0], bits[107] = 1, 1
	derive := func(wmid, op, kv uint64) ([]uint8, error) {
		if wmid != 0xBEEF || op != 7 || kv != 1 {
			t.Fatalf("derive(%d, %d, %d)", wmid, op, kv)
		}
		return bits, nil
	}
	pi, err := delivery.SessionPattern(ci, nil, derive)
	if err != nil || delivery.Variant(pi, 108, 0, true) != "b" || delivery.Variant(pi, 108, 1, true) != "a" || delivery.Variant(pi, 108, 107, true) != "b" {
		t.Fatalf("indirect: %x %v", pi, err)
	}
	ci.PatternLen = 100
	if _, err := delivery.SessionPattern(ci, nil, derive); !errors.Is(err, delivery.ErrClaims) {
		t.Fatalf("wmpatlen mismatch: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	ks := delivery.NewKeys(hmacKey(f))
	// The committed vectors verify, so the fuzzer starts from tokens that
	// reach the claims and SessionPattern.
	for _, name := range []string{"hmac-direct", "hmac-indirect"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".token"))
		if err != nil {
			f.Fatalf("seed: %v (run go test ./delivery -run TestVectors -update)", err)
		}
		tok := strings.TrimSpace(string(b))
		if _, err := ks.Verify(tok, t0); err != nil {
			f.Fatalf("seed %s does not verify: %v", name, err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("2BFY")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ks.Verify(tok, t0)
		if err == nil {
			if _, err := delivery.SessionPattern(c, patKey, func(uint64, uint64, uint64) ([]uint8, error) {
				return make([]uint8, c.PatternLen), nil
			}); err != nil && !errors.Is(err, delivery.ErrClaims) && !errors.Is(err, delivery.ErrPatternKey) && !errors.Is(err, delivery.ErrMalformed) {
				t.Fatalf("SessionPattern: %v", err)
			}
		}
	})
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	signer, err := delivery.LoadKey(write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := delivery.LoadKey(write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))
	if err != nil {
		t.Fatal(err)
	}
	if string(signer.ID) != string(verifier.ID) {
		t.Fatal("the private and public key files have different key ids")
	}
	if _, err := delivery.NewKeys(verifier).Verify(mustMint(t, direct(), signer), t0); err != nil {
		t.Fatalf("ES256 from PEM files: %v", err)
	}
	if _, err := delivery.Mint(direct(), verifier); err == nil {
		t.Fatal("a public key signed")
	}
	hk, err := delivery.LoadKey(write("hmac.key", []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := delivery.NewKeys(hk).Verify(mustMint(t, indirect(), hk), t0); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"short.key": "0011", "junk.key": "not a key", "cert.pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := delivery.LoadKey(write(name, []byte(data))); err == nil {
			t.Errorf("%s loaded", name)
		}
	}
}
