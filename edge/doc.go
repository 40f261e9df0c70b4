// Package edge is abseal's reference delivery tier (ETSI TS 104 002) as a
// library: a Server checks each request's session token, picks variant A
// or B per segment from the token's pattern and the segment's WMPaceInfo,
// opens the sealed object with its rendition's data key and serves
// plaintext. It owns its caches (manifests, data keys, sidecars, patterns,
// verified tokens) and its revocation watch; cmd/edge wires flags to a
// Config. Integrators embed it with New, Handler and Close. It needs no
// cgo. Token minting for operators and tests is MintToken.
package edge
