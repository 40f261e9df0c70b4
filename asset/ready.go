package asset

// ReadyEvent is published on abseal.assets.ready.<asset> when an asset is
// complete: its manifest is written and every object it names is stored.
type ReadyEvent struct {
	V        int     `json:"v"`
	AssetID  string  `json:"asset_id"`
	JobID    string  `json:"job_id"`
	Bucket   string  `json:"bucket"`
	Manifest string  `json:"manifest"`
	HLS      string  `json:"hls"`
	DASH     string  `json:"dash"`
	Source   string  `json:"source"`
	Duration float64 `json:"duration"`
}

// ReadyEventVersion is the schema version of ReadyEvent.
const ReadyEventVersion = 1
