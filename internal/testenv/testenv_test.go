package testenv_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/internal/testenv"
)

func TestServicesWork(t *testing.T) {
	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("JetStream is not enabled: %v", err)
	}
	if _, err := js.Publish(t.Context(), "t.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}

	m := testenv.MinIO(t)
	st := testenv.Bucket(t, m, "check", 0)
	if err := st.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// helper mode: when ABSEAL_TESTENV_HELPER is set, this test is the child
// process of the tests below.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("ABSEAL_TESTENV_HELPER")
	if mode == "" {
		return // not a helper run: nothing to do
	}
	m := testenv.MinIO(t)
	pidFile := os.Getenv("ABSEAL_TESTENV_PIDFILE")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(minioPID(t, m.DataDir))), 0o600); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "fail":
		t.Fatal("failing on purpose with MinIO running")
	case "hang":
		time.Sleep(time.Minute)
	}
}

// minioPID finds the MinIO process serving dataDir.
func minioPID(t *testing.T, dataDir string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "minio") && strings.Contains(string(cmdline), dataDir) {
			return pid
		}
	}
	t.Fatalf("no minio process for %s", dataDir)
	return 0
}

func runHelper(t *testing.T, mode string, env ...string) (*exec.Cmd, string) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "ABSEAL_TESTENV_HELPER="+mode, "ABSEAL_TESTENV_PIDFILE="+pidFile)
	cmd.Env = append(cmd.Env, env...)
	return cmd, pidFile
}

func alive(pid int) bool {
	// A zombie still answers kill(0); read its state instead.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("minio (pid %d) outlived its test", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A failing test still stops its MinIO.
func TestNoOrphanOnFailure(t *testing.T) {
	cmd, pidFile := runHelper(t, "fail")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("helper: err %v\n%s", err, out)
	}
	pid, _ := strconv.Atoi(readFile(t, pidFile))
	waitGone(t, pid)
}

// A test process that is killed outright takes its MinIO with it.
func TestNoOrphanWhenKilled(t *testing.T) {
	cmd, pidFile := runHelper(t, "hang")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("helper did not start MinIO")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid, _ := strconv.Atoi(readFile(t, pidFile))
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, pid)
}

// A missing MinIO binary fails the test with the command that installs it.
func TestMissingBinaryFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd, _ := runHelper(t, "ok", "ABSEAL_TOOLS_DIR="+t.TempDir())
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	}()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "make deps") || !strings.Contains(string(out), "--- FAIL") {
		t.Fatalf("want a failed test naming `make deps`; err %v\n%s", err, out)
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
