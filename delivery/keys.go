package delivery

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
)

// LoadKey reads a token key file: a PEM EC P-256 private key (signs and
// verifies, ES256), a PEM public key (verifies only), or the hex of an
// HMAC secret of at least 32 bytes. The key id is the first 8 bytes of
// the SHA-256 of the public key or of the secret.
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("delivery: token key: %w", err)
	}
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "EC PRIVATE KEY", "PRIVATE KEY":
			priv, err := parsePrivate(block)
			if err != nil {
				return nil, fmt.Errorf("delivery: token key %s: %w", path, err)
			}
			return NewES256Key(pubKID(&priv.PublicKey), priv)
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("delivery: token key %s: %w", path, err)
			}
			pub, ok := k.(*ecdsa.PublicKey)
			if !ok {
				return nil, fmt.Errorf("delivery: token key %s: not an EC public key", path)
			}
			return ES256Verifier(pubKID(pub), pub)
		}
		return nil, fmt.Errorf("delivery: token key %s: PEM %q is not an EC key", path, block.Type)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("delivery: token key %s: neither PEM nor a hex HMAC secret", path)
	}
	sum := sha256.Sum256(append([]byte("abseal.wmt.kid.v1:"), secret...))
	return NewHMACKey(sum[:8], secret)
}

func parsePrivate(b *pem.Block) (*ecdsa.PrivateKey, error) {
	if b.Type == "EC PRIVATE KEY" {
		return x509.ParseECPrivateKey(b.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an EC private key")
	}
	return priv, nil
}

func pubKID(pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:8]
}

// Public returns a verify-only copy of the key (itself for HMAC keys).
func (k *Key) Public() *Key {
	if k.priv == nil {
		return k
	}
	return &Key{ID: k.ID, pub: k.pub}
}

// LoadPatternKey reads an edge's pattern key file: the hex of a 32-byte
// A256GCM key, or a PEM EC P-256 private key (ECDH-SS + A128KW; its public
// half is what token issuers encrypt to) or public key (issuers only).
func LoadPatternKey(path string) (PatternKeys, *ecdh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key: %w", err)
	}
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "EC PRIVATE KEY", "PRIVATE KEY":
			priv, err := parsePrivate(block)
			if err != nil {
				return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: %w", path, err)
			}
			k, err := priv.ECDH()
			if err != nil {
				return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: %w", path, err)
			}
			return PatternKeys{ECDH: k}, k.PublicKey(), nil
		case "PUBLIC KEY":
			pk, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: %w", path, err)
			}
			ep, ok := pk.(*ecdsa.PublicKey)
			if !ok {
				return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: not an EC key", path)
			}
			pub, err := ep.ECDH()
			return PatternKeys{}, pub, err
		}
		return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: PEM %q is not an EC key", path, block.Type)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(k) != 32 {
		return PatternKeys{}, nil, fmt.Errorf("delivery: pattern key %s: neither PEM nor the hex of 32 bytes", path)
	}
	return PatternKeys{AES: k}, nil, nil
}

// LoadECDHKey reads a PEM EC P-256 private key for ECDH (a token issuer's
// static key).
func LoadECDHKey(path string) (*ecdh.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("delivery: %s: not PEM", path)
	}
	priv, err := parsePrivate(block)
	if err != nil {
		return nil, fmt.Errorf("delivery: %s: %w", path, err)
	}
	return priv.ECDH()
}
