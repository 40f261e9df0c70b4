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
	"os/exec"
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
	if root, ok := moduleAbove(dir); ok {
		return root, nil
	}
	return "", errors.New("devenv: abseal's go.mod not found above the working directory")
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
// error matching ErrToolMissing that lists where it looked and what to
// set. It looks in $ABSEAL_TOOLS_DIR/bin when that is set (and nowhere
// else); otherwise in .tools/bin of the checkout above the working
// directory, then of the checkout the running binary was built into (a
// worker run from another directory), then on $PATH.
func Tool(name string) (string, error) {
	if d := os.Getenv("ABSEAL_TOOLS_DIR"); d != "" {
		p := filepath.Join(d, "bin", name)
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("devenv: %s not found at %s (from ABSEAL_TOOLS_DIR): %w", name, p, ErrToolMissing)
	}
	var looked []string
	try := func(root string) string {
		p := filepath.Join(root, ".tools", "bin", name)
		if isExecutable(p) {
			return p
		}
		looked = append(looked, p)
		return ""
	}
	if root, err := ModuleRoot(); err == nil {
		if p := try(root); p != "" {
			return p, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if root, ok := moduleAbove(filepath.Dir(exe)); ok {
			if p := try(root); p != "" {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	looked = append(looked, "$PATH")
	return "", fmt.Errorf("devenv: %s not found in %s: %w; in the abseal checkout run make deps, then set ABSEAL_TOOLS_DIR=<checkout>/.tools (or put %s on PATH)",
		name, strings.Join(looked, ", "), ErrToolMissing, name)
}

// moduleAbove finds abseal's module root at or above dir.
func moduleAbove(dir string) (string, bool) {
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isAbsealModule(data) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
