// Package sealed is the read side of a sealed asset: it reads the asset
// manifest, unwraps a rendition's data key through the KEK, opens an
// object at its place (the associated data the worker sealed it with) and
// writes the stream a session receives. It needs no cgo; the edge, the
// assemble command and the detector read assets through it, and the
// worker seals with the same Place.
package sealed
