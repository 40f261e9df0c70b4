package delivery_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/abseal/abseal/delivery"
)

func b64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestECDHVector opens the COSE working group's example
// p256-ss-wrap-128-01 (ECDH-SS + A128KW, A128GCM content) with the
// recipient's key.
func TestECDHVector(t *testing.T) {
	d := b64(t, "r_kHyZ-a06rmxM3yESK84r1otSg-aQcVStkRhA-iCM8")
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := hex.DecodeString("D903E08443A10101A1054C02D1F7E6F26C43D4868D87CE582464F84D913BA60A76070A9A48F26E97E863E28529BF9BE9DE3BEA1788F681200D875242F6818344A101381FA221A42001215820EDCBD809C754DB6582C16D6D65747C8AECC92D619C778EB17F13B55C9B3E48F52258200F38495E0CFD448E93B1E366C047CBA0D567B3C526BCE36C3F3403A29D9D2A8A01020458246D65726961646F632E6272616E64796275636B406275636B6C616E642E6578616D706C655818B6E2307054529BF65877C750BBD2303C0069332A78774E96")
	pt, err := delivery.DecryptPatternECDH(priv, msg)
	if err != nil || string(pt) != "This is the content." {
		t.Fatalf("vector: %q %v", pt, err)
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := delivery.DecryptPatternECDH(other, msg); !errors.Is(err, delivery.ErrPatternKey) {
		t.Fatalf("another edge key: %v", err)
	}
	msg[30] ^= 1 // in the content ciphertext
	if _, err := delivery.DecryptPatternECDH(priv, msg); err == nil {
		t.Fatal("a damaged message opened")
	}
}

func TestECDHPatternInToken(t *testing.T) {
	issuer, _ := ecdh.P256().GenerateKey(rand.Reader)
	edge, _ := ecdh.P256().GenerateKey(rand.Reader)
	c := direct()
	sealed, err := delivery.EncryptPatternECDH(issuer, edge.PublicKey(), []byte("edge-1"), c.Pattern)
	if err != nil {
		t.Fatal(err)
	}
	if !delivery.IsECDHPattern(sealed) {
		t.Fatal("not recognised as COSE_Encrypt")
	}
	ce := direct()
	ce.Pattern = sealed
	back, err := delivery.NewKeys(hmacKey(t)).Verify(mustMint(t, ce, hmacKey(t)), t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.SessionPatternWith(back, delivery.PatternKeys{ECDH: edge}, nil)
	if err != nil || !bytes.Equal(p, c.Pattern) {
		t.Fatalf("pattern %x %v", p, err)
	}
	wrong, _ := ecdh.P256().GenerateKey(rand.Reader)
	if _, err := delivery.SessionPatternWith(back, delivery.PatternKeys{ECDH: wrong}, nil); !errors.Is(err, delivery.ErrPatternKey) {
		t.Fatalf("wrong edge key: %v", err)
	}
}
