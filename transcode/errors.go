package transcode

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of bad input. Errors about the input match one of them (errors.Is)
// and are *InputError: permanent, retrying cannot help.
var (
	ErrEmpty     = errors.New("empty file")
	ErrNotVideo  = errors.New("not a video")
	ErrCorrupt   = errors.New("corrupt")
	ErrOverLimit = errors.New("over limit")
)

// InputError is a permanent problem with the input file.
type InputError struct {
	Kind   error  // one of ErrEmpty, ErrNotVideo, ErrCorrupt, ErrOverLimit
	Detail string // what exactly, e.g. "resolution 16000x16000 over limit 7680x4320"
	Cause  error  // FFmpeg's error, if any
}

func (e *InputError) Error() string {
	s := "transcode: " + e.Detail
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Is matches the error's kind.
func (e *InputError) Is(target error) bool { return target == e.Kind }

// Unwrap returns FFmpeg's error.
func (e *InputError) Unwrap() error { return e.Cause }

// Permanent marks input errors as not worth a retry.
func (e *InputError) Permanent() bool { return true }

func inputErr(kind error, cause error, format string, args ...any) error {
	return &InputError{Kind: kind, Detail: fmt.Sprintf(format, args...), Cause: cause}
}

// clock formats a media time as HH:MM:SS(.mmm when not whole).
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	h, m := int(d/time.Hour), int(d/time.Minute)%60
	s := d - time.Duration(h)*time.Hour - time.Duration(m)*time.Minute
	if s%time.Second == 0 {
		return fmt.Sprintf("%02d:%02d:%02d", h, m, int(s/time.Second))
	}
	return fmt.Sprintf("%02d:%02d:%06.3f", h, m, s.Seconds())
}
