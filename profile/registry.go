package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/abseal/abseal/asset"
)

// DefaultName is the name of the built-in ladder.
const DefaultName = "default"

// Registry resolves a job's profile name: NAME.json in Dir when there is
// one (a default.json there replaces the built-in ladder), else the
// built-in "default".
type Registry struct {
	Dir string // may be empty: only the built-in profile
}

// Lookup returns the named profile; a file that exists but does not parse
// is an error, never replaced by the default.
func (r Registry) Lookup(name string) (*Profile, error) {
	if r.Dir != "" {
		if !asset.ValidID(name) {
			return nil, fmt.Errorf("profile: %q is not a profile name", name)
		}
		p, err := Load(filepath.Join(r.Dir, name+".json"))
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return p, err
		}
	}
	if name == DefaultName {
		return Default(), nil
	}
	note := ""
	if r.Dir != "" {
		note = " and the files in " + r.Dir
	}
	return nil, fmt.Errorf("profile: no profile %q (have %q%s)", name, DefaultName, note)
}
