// Package devenv starts the real services abseal talks to on one machine: an
// embedded NATS JetStream server and a local MinIO server process, each on a
// free loopback port with its own data directory. The worker's --dev mode and
// the test environment (internal/testenv) both use it.
package devenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrToolMissing is matched by errors for a tool binary that is not installed.
var ErrToolMissing = errors.New("tool not installed (run make deps)")

// ModuleRoot returns the directory holding abseal's go.mod, searching upwards
// from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isAbsealModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devenv: abseal's go.mod not found above the working directory")
		}
		dir = parent
	}
}

func isAbsealModule(gomod []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return f[1] == "github.com/abseal/abseal"
		}
	}
	return false
}

// ToolsDir is where make deps installs tool binaries: $ABSEAL_TOOLS_DIR, or
// .tools under the module root.
func ToolsDir() (string, error) {
	if d := os.Getenv("ABSEAL_TOOLS_DIR"); d != "" {
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools"), nil
}

// Tool returns the path of an installed tool binary (e.g. "minio"), or an
// error matching ErrToolMissing that says how to install it.
func Tool(name string) (string, error) {
	dir, err := ToolsDir()
	if err != nil {
		return "", fmt.Errorf("devenv: %s: %w (%v)", name, ErrToolMissing, err)
	}
	p := filepath.Join(dir, "bin", name)
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("devenv: %s not found at %s: %w", name, p, ErrToolMissing)
	}
	return p, nil
}
