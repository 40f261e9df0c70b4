package asset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// JobVersion is the schema version of Job.
const JobVersion = 1

// ErrBadJob is matched by errors for a job message that cannot be run as
// written: malformed JSON, an unknown field or version, a missing field.
// Such jobs are permanent failures.
var ErrBadJob = errors.New("bad job")

// Job is one unit of work: turn a source object into a sealed asset. It
// travels as JSON on the jobs stream.
type Job struct {
	V           int       `json:"v"`
	JobID       string    `json:"job_id"`
	AssetID     string    `json:"asset_id"`
	Source      Source    `json:"source"`
	Profile     string    `json:"profile"`
	RequestedBy string    `json:"requested_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Chunk, when set, makes this a chunk task of the job ParentID: one
	// window of segments of a run that a long job was split into
	// (chunk.go).
	Chunk *ChunkTask `json:"chunk,omitempty"`
}

// Source names the uploaded object a job reads.
type Source struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	ETag      string `json:"etag,omitempty"`
}

func (s Source) String() string { return "s3://" + s.Bucket + "/" + s.Key }

// idPattern is what job and asset ids may hold: they become object-key
// elements and NATS message ids.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidID reports whether id may be a job, asset or profile id: 1-128
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// NewJob makes a job for src. An empty assetID becomes AssetIDFor(src), an
// empty profile "default". The job id is deterministic (see JobID), so the
// same request submitted twice is one job.
func NewJob(src Source, assetID, profile, requestedBy string, now time.Time) (*Job, error) {
	if assetID == "" {
		assetID = AssetIDFor(src)
	}
	if profile == "" {
		profile = "default"
	}
	j := &Job{
		V: JobVersion, AssetID: assetID, Source: src, Profile: profile,
		RequestedBy: requestedBy, CreatedAt: now.UTC(),
	}
	j.JobID = JobID(src, assetID, profile)
	return j, j.Validate()
}

// JobID is a job's deterministic id: a hash of the source (bucket, key,
// version, etag), the asset id and the profile. A duplicate upload event or
// a double enqueue yields the same id, which the queue deduplicates.
func JobID(src Source, assetID, profile string) string {
	return "job-" + digest(src.Bucket, src.Key, src.VersionID, src.ETag, assetID, profile)[:32]
}

// AssetIDFor derives an asset id from a source's bucket and key: the key's
// base name (cleaned) and a short hash, e.g. "intro-mp4-3f2a9c1d0b7e".
func AssetIDFor(src Source) string {
	base := src.Key
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 48 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "asset"
	}
	return name + "-" + digest(src.Bucket, src.Key)[:12]
}

func digest(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DecodeJob parses a job message strictly: unknown fields, unknown schema
// versions and trailing data are rejected, never guessed.
func DecodeJob(data []byte) (*Job, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j Job
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("asset: %w: %v", ErrBadJob, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("asset: %w: trailing data after the job object", ErrBadJob)
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &j, nil
}

// Validate names the first bad field of j.
func (j *Job) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("asset: %w: "+format, append([]any{ErrBadJob}, args...)...)
	}
	switch {
	case j.V != JobVersion:
		return bad("schema version %d is not supported (want %d)", j.V, JobVersion)
	case !ValidID(j.JobID):
		return bad("job_id %q is not 1-128 letters, digits, '.', '_' or '-'", j.JobID)
	case !ValidID(j.AssetID):
		return bad("asset_id %q is not 1-128 letters, digits, '.', '_' or '-'", j.AssetID)
	case j.Source.Bucket == "":
		return bad("source.bucket is empty")
	case j.Source.Key == "":
		return bad("source.key is empty")
	case !ValidID(j.Profile):
		return bad("profile %q is not a profile name", j.Profile)
	case j.CreatedAt.IsZero():
		return bad("created_at is missing")
	}
	// RFC 3339 parsing accepts zone offsets (such as +24:00) that JSON
	// encoding refuses; such a job could not be written again.
	if _, err := j.CreatedAt.MarshalText(); err != nil {
		return bad("created_at: %v", err)
	}
	if c := j.Chunk; c != nil {
		switch {
		case !ValidID(c.Run) || !ValidID(c.ParentID):
			return bad("chunk: run %q or parent job %q is not an id", c.Run, c.ParentID)
		case c.Count < 1 || c.Count > MaxChunks || c.Index < 0 || c.Index >= c.Count:
			return bad("chunk: index %d of %d", c.Index, c.Count)
		case c.From < 0 || c.To < 0 || c.To != 0 && c.To <= c.From || c.Audio && (c.From != 0 || c.To != 0):
			return bad("chunk: segments [%d, %d)", c.From, c.To)
		case j.JobID != ChunkJobID(c.ParentID, c.Run, c.Index):
			return bad("chunk: job_id %q is not the chunk's id", j.JobID)
		}
	}
	return nil
}

// Encode returns the job's JSON.
func (j *Job) Encode() []byte {
	data, err := json.Marshal(j)
	if err != nil {
		panic(err) // a valid Job always marshals (Validate checks created_at)
	}
	return data
}
