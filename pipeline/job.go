package pipeline

import (
	"errors"

	"github.com/abseal/abseal/asset"
)

// permanent marks errors that retrying cannot help.
type permanent interface{ Permanent() bool }

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Permanent marks err as not worth a retry.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err is permanent: a bad job, bad input (not a
// video, corrupt, over limits), a missing source or an unknown profile.
// Everything else (network, S3 5xx, NATS timeouts) is transient.
func IsPermanent(err error) bool {
	if errors.Is(err, asset.ErrBadJob) {
		return true
	}
	var p permanent
	return errors.As(err, &p) && p.Permanent()
}
