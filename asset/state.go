package asset

import "time"

// Status is where a job is in its life.
type Status string

// Job statuses, as stored in the job-state bucket.
const (
	StatusQueued   Status = "queued"
	StatusRunning  Status = "running"
	StatusRetrying Status = "retrying" // failed transiently, will be redelivered
	StatusDone     Status = "done"
	StatusFailed   Status = "failed" // permanent: see Reason and the dead letters
)

// State is a job's state and progress, kept in the queue's job-state
// bucket under the job id for `enqueue --wait` and `enqueue status`.
type State struct {
	JobID    string  `json:"job_id"`
	AssetID  string  `json:"asset_id"`
	Source   string  `json:"source,omitempty"`
	Status   Status  `json:"status"`
	Stage    string  `json:"stage,omitempty"`
	Percent  float64 `json:"percent"`
	Attempt  int     `json:"attempt,omitempty"`
	Worker   string  `json:"worker,omitempty"`
	Manifest string  `json:"manifest,omitempty"` // bucket/key of the asset manifest when done
	Reason   string  `json:"reason,omitempty"`   // why it failed
	// Stages holds the seconds spent per stage of a finished job.
	Stages    map[string]float64 `json:"stages,omitempty"`
	Objects   int                `json:"objects,omitempty"`
	BytesOut  int64              `json:"bytes_out,omitempty"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// Final reports whether the state will not change any more.
func (s *State) Final() bool { return s.Status == StatusDone || s.Status == StatusFailed }
