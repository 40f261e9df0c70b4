package asset

import (
	"fmt"
	"strconv"
	"strings"
)

// Chunked runs. A long job's run is split into chunk tasks, each a window
// of whole segments of every rendition (both variants), encoded by any
// worker; the run's objects are still one run's (RunPrefix) and its
// manifest is still written once, last, by a conditional put:
//
//	runs/<run>/run.json                         the run's marker (first)
//	runs/<run>/plan.json                        the plan: chunks, data keys, source digest
//	runs/<run>/chunks/<chunk>/<attempt>/<path>  a chunk attempt's sealed objects
//	runs/<run>/chunks/<chunk>.json              the chunk's result: the attempt that
//	                                            won (written if absent) and its objects
//	runs/<run>/<path>                           playlists and WMPaceInfo, written
//	                                            when every chunk is done
//
// A chunk task that runs twice (a stalled worker, a redelivery) writes
// two attempts; the first result written wins and the other attempt
// deletes its objects, so no object the manifest names is ever
// overwritten.

// MaxChunks bounds a job's chunk count.
const MaxChunks = 10000

const (
	chunksDir = "chunks"
	planFile  = "plan.json"
	jsonExt   = ".json"
)

// ChunkTask is the part of a chunk task's job message that names its
// window.
type ChunkTask struct {
	// ParentID is the job that was split.
	ParentID string `json:"parent_id"`
	// Run is the run the chunk belongs to (RunPrefix).
	Run string `json:"run"`
	// Index and Count number the chunk among the run's.
	Index int `json:"index"`
	Count int `json:"count"`
	// From and To are the segments [From, To) (To 0: to the end).
	From int `json:"from"`
	To   int `json:"to"`
	// Audio: the task encodes the run's audio, all of it in one piece,
	// and no video (From and To are 0).
	Audio bool `json:"audio,omitempty"`
}

// ChunkJobID is the job id of a run's chunk task.
func ChunkJobID(parentID, run string, index int) string {
	return parentID + "." + run + ".c" + strconv.Itoa(index)
}

// RunPlanKey is the key of a chunked run's plan.
func RunPlanKey(assetID, run string) string { return RunPrefix(assetID, run) + planFile }

// ChunkResultKey is the key of a chunk's result.
func ChunkResultKey(assetID, run string, chunk int) string {
	return RunPrefix(assetID, run) + chunksDir + "/" + fmt.Sprintf("%05d", chunk) + jsonExt
}

// ChunkResultsPrefix is the prefix of a run's chunk results and attempts.
func ChunkResultsPrefix(assetID, run string) string { return RunPrefix(assetID, run) + chunksDir + "/" }

// ChunkOfResult returns the chunk whose result key is key.
func ChunkOfResult(assetID, run, key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, ChunkResultsPrefix(assetID, run))
	if !ok || !strings.HasSuffix(rest, jsonExt) || strings.Contains(rest, "/") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, jsonExt))
	if err != nil || n < 0 || ChunkResultKey(assetID, run, n) != key {
		return 0, false
	}
	return n, true
}

// ChunkAttemptPrefix is where one attempt at a chunk writes its objects.
func ChunkAttemptPrefix(assetID, run string, chunk int, attempt string) string {
	return RunPrefix(assetID, run) + chunksDir + "/" + fmt.Sprintf("%05d", chunk) + "/" + attempt + "/"
}

// ChunkKey is the key of r written by an attempt at a chunk.
func (r Ref) ChunkKey(assetID, run string, chunk int, attempt string) string {
	return ChunkAttemptPrefix(assetID, run, chunk, attempt) + r.Path()
}
