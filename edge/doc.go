// Package edge is abseal's reference delivery tier (ETSI TS 104 002) as a
// library: a Server checks each request's session token, picks variant A
// or B per segment from the token's pattern and the segment's WMPaceInfo,
// opens the sealed object with its rendition's data key and serves
// plaintext. It owns its caches (manifests, data keys, sidecars, patterns,
// verified tokens) and its deny-list watch, which Close ends and waits
// for; an edge that cannot confirm its deny-list for RevocationMaxStale
// refuses media. Handler is the public side (media and /healthz, no
// redirects), AdminHandler the operator's (/metrics, /readyz); cmd/edge
// wires flags to a Config and both handlers to their listeners.
// Integrators embed it with New, Handler, AdminHandler and Close. It needs
// no cgo. Token minting for operators and tests is MintToken; the
// deny-list keys of a token are RevocationKeys.
package edge
