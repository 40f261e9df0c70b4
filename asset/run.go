package asset

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Runs: every attempt at a job (a run) writes its objects apart, under
// RunPrefix, and commits by putting the asset manifest, naming the run,
// only if the manifest is still the one the run started from (an If-Match
// on its ETag, or If-None-Match when there was none). A run that lost the
// race, or stalled past its lease and woke up after another run
// committed, cannot overwrite the committed manifest and never touches
// the committed run's objects; it deletes its own. After a commit, the
// committing run deletes the runs that can no longer commit: those whose
// marker names another base than the manifest just written.

// NewRunID returns a fresh run id: the UTC start time (sortable, for
// people reading a listing) and 48 random bits.
func NewRunID(now time.Time) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// RunMarker is a run's first object (RunMarkerKey): which job it runs and
// which manifest it started from.
type RunMarker struct {
	Run   string    `json:"run"`
	JobID string    `json:"job_id"`
	Start time.Time `json:"started_at"`
	// Base is the ETag of the asset manifest when the run started; empty
	// when there was none. The run can commit only over that manifest.
	Base string `json:"base_etag"`
}

// DecodeRunMarker parses a run marker.
func DecodeRunMarker(data []byte) (*RunMarker, error) {
	var m RunMarker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("asset: run marker: %w", err)
	}
	if !ValidID(m.Run) {
		return nil, fmt.Errorf("asset: run marker: run %q is not a valid id", m.Run)
	}
	return &m, nil
}
