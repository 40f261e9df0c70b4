package watermark

// DefaultIDBits is the default wmid size in bits.
const DefaultIDBits = 32

// SessionCode is the payload code of an asset's sessions: the code keyed
// by the asset's key (DeriveAssetKey of the master key) for wmids of
// idBits bits and operator opID. The worker (pattern length), the edge
// (indirect-mode patterns), assemble and the detector all make it here,
// so they agree bit for bit.
func SessionCode(master []byte, assetID string, idBits int, opID uint64) (*Code, error) {
	key, err := DeriveAssetKey(master, assetID)
	if err != nil {
		return nil, err
	}
	return NewCode(key, idBits, opID)
}
