// Package fleet runs abseal's real worker binary in tests, against a real
// NATS JetStream (embedded in the test process) and a real MinIO process
// with upload notifications, and checks what the workers leave behind:
// sealed assets, one manifest each, no plaintext media, no temp files.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

var (
	binMu  sync.Mutex
	binDir = map[string]string{}
)

// WorkerBin builds the worker once per test binary.
func WorkerBin(t testing.TB) string { return Binary(t, "worker") }

// Binary builds ./cmd/<name> once per test binary into .tools/test-bin
// (incremental; replaced atomically, so test binaries of several packages
// can build it at once) and returns its path.
func Binary(t testing.TB, name string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binDir[name]; ok {
		return p
	}
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".tools", "test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	p := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), p); err != nil {
		t.Fatal(err)
	}
	binDir[name] = p
	return p
}

// FastProfile replaces the built-in default ladder in the fleet tests.
const FastProfile = `{"name":"default","segment_duration":"2s","rungs":[
 {"name":"360p","size":360,"bitrate":800000,"crf":28,"preset":"ultrafast","h264_profile":"main"},
 {"name":"180p","size":180,"bitrate":300000,"crf":28,"preset":"ultrafast","h264_profile":"main"}],
 "audio":{"bitrate":96000,"sample_rate":48000}}`

type Fleet struct {
	t        testing.TB
	natsDir  string
	natsPort int
	nodeCfg  []devenv.NATSConfig
	// Nodes are the servers of a cluster fleet (NewWith, Options.Nodes);
	// a stopped node is nil.
	Nodes []*devenv.NATS
	// NATSURL is the servers' client URLs, comma-separated.
	NATSURL  string
	NATS     *devenv.NATS
	minioCfg devenv.MinIOConfig
	MinIO    *devenv.MinIO
	Ingest   *s3.Store
	Out      *s3.Store
	NC       *nats.Conn
	Q        *queue.Queue
	KEK      *envelope.KEK
	KEKPath  string
	WMKey    string
	Profiles string
	Tmp      string // the workers' temp dir
	mu       sync.Mutex
	workers  []*Worker
}

func New(t testing.TB) *Fleet {
	t.Helper()
	return NewWith(t, Options{})
}

// Options configure NewWith.
type Options struct {
	// Nodes above 1 run a JetStream cluster of that many embedded servers
	// on loopback (Fleet.Nodes; Fleet.NATS is the first), with abseal's
	// streams and buckets at that many replicas.
	Nodes int
}

// NewWith is New with options.
func NewWith(t testing.TB, o Options) *Fleet {
	t.Helper()
	f := &Fleet{t: t, natsDir: t.TempDir(), Tmp: t.TempDir()}
	var err error
	replicas := 1
	if o.Nodes > 1 {
		f.startCluster(o.Nodes)
		replicas = o.Nodes
	} else {
		port, err := devenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		f.natsPort = port
		f.StartNATS()
		f.NATSURL = f.NATS.URL
		t.Cleanup(func() { f.NATS.Close() })
	}
	f.NC, err = nats.Connect(f.NATSURL, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.NC.Close)
	f.Q = f.openQueue(replicas)
	mport, err := devenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	f.minioCfg = devenv.MinIOConfig{DataDir: t.TempDir(), Port: mport, AccessKey: "fleet-test", SecretKey: "fleet-test-secret-0123",
		Env: devenv.NotifyEnv("ABSEAL", f.NATS.URL, queue.UploadsSubject, t.TempDir())}
	f.StartMinIO()
	t.Cleanup(func() { f.MinIO.Close() })
	f.Ingest = testenv.Bucket(t, f.MinIO, "ingest", 0)
	f.Out = testenv.Bucket(t, f.MinIO, "assets", 0)
	if err := f.Ingest.NotifyUploads(t.Context(), "ABSEAL"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f.KEKPath = filepath.Join(dir, "kek.json")
	if err := envelope.CreateLocalKEK(f.KEKPath); err != nil {
		t.Fatal(err)
	}
	if f.KEK, err = envelope.OpenKEK(t.Context(), f.KEKPath, envelope.KEKOptions{}); err != nil {
		t.Fatal(err)
	}
	f.WMKey = filepath.Join(dir, "watermark.key")
	if err := f.KEK.CreateWatermarkKey(f.WMKey); err != nil {
		t.Fatal(err)
	}
	f.Profiles = filepath.Join(dir, "profiles")
	os.Mkdir(f.Profiles, 0o755)
	os.WriteFile(filepath.Join(f.Profiles, "default.json"), []byte(FastProfile), 0o644)
	t.Cleanup(func() {
		f.stopAll()
		f.checkClean()
	})
	return f
}

// openQueue opens the queue as worker setup does (the consumer's
// owner), retrying while a new cluster elects its leaders.
func (f *Fleet) openQueue(replicas int) *queue.Queue {
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := queue.Open(f.t.Context(), f.NC, queue.Config{AckWait: 3 * time.Second, MaxDeliver: 3, Replicas: replicas})
		if err == nil {
			return q
		}
		if time.Now().After(deadline) {
			f.t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startCluster starts n embedded JetStream servers routed to each other
// on loopback ports.
func (f *Fleet) startCluster(n int) {
	var routes, urls []string
	for i := range n {
		cp, err := devenv.FreePort()
		if err != nil {
			f.t.Fatal(err)
		}
		port, err := devenv.FreePort()
		if err != nil {
			f.t.Fatal(err)
		}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cp))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", port))
		f.nodeCfg = append(f.nodeCfg, devenv.NATSConfig{StoreDir: f.t.TempDir(), Port: port,
			Cluster: &devenv.ClusterConfig{Name: "abseal-test", Node: fmt.Sprintf("n%d", i+1), Port: cp}})
	}
	f.Nodes = make([]*devenv.NATS, n)
	var wg sync.WaitGroup
	for i := range n {
		f.nodeCfg[i].Cluster.Routes = routes
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.StartNode(i)
		}()
	}
	wg.Wait()
	f.NATS = f.Nodes[0]
	f.NATSURL = strings.Join(urls, ",")
	f.t.Cleanup(func() {
		for i := range f.Nodes {
			f.StopNode(i)
		}
	})
}

// StartNode (re)starts cluster node i with its store and ports.
func (f *Fleet) StartNode(i int) {
	n, err := devenv.StartNATS(f.nodeCfg[i])
	if err != nil {
		f.t.Error(err)
		return
	}
	f.mu.Lock()
	f.Nodes[i] = n
	f.mu.Unlock()
}

// StopNode shuts cluster node i down (no-op if it is down).
func (f *Fleet) StopNode(i int) {
	f.mu.Lock()
	n := f.Nodes[i]
	f.Nodes[i] = nil
	f.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// Node is the index of the cluster node named name (-1: none).
func (f *Fleet) Node(name string) int {
	for i, c := range f.nodeCfg {
		if c.Cluster.Node == name {
			return i
		}
	}
	return -1
}

func (f *Fleet) StartNATS() {
	n, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: f.natsDir, Port: f.natsPort})
	if err != nil {
		f.t.Fatal(err)
	}
	f.NATS = n
}

func (f *Fleet) StartMinIO() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := devenv.StartMinIO(ctx, f.minioCfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.MinIO = m
}

type Worker struct {
	Name string
	cmd  *exec.Cmd
	Logs *LockedBuffer
	done chan struct{}
	err  error
}

// LockedBuffer is a bytes.Buffer a process can write while a test reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log records with the given message.
func (w *Worker) Lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(w.Logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// startWorker runs a worker process on the fleet.
func (f *Fleet) StartWorker(name string, extra ...string) *Worker {
	f.t.Helper()
	return f.StartWorkerEnv(name, nil, extra...)
}

// StartWorkerEnv is StartWorker with extra environment variables
// (NAME=value).
func (f *Fleet) StartWorkerEnv(name string, env []string, extra ...string) *Worker {
	f.t.Helper()
	args := append([]string{
		"--nats-url", f.NATSURL, "--s3-endpoint", f.MinIO.Endpoint, "--s3-access-key", f.MinIO.AccessKey,
		"--kek-uri", f.KEKPath, "--watermark-key-file", f.WMKey, "--profiles-dir", f.Profiles,
		"--tmp-dir", f.Tmp, "--http-addr", "127.0.0.1:0", "--ack-wait", "3s", "--max-deliver", "3",
		"--threads", "1", "--shutdown-grace", "5s", "--name", name, "--log-level", "debug",
	}, extra...)
	cmd := exec.Command(WorkerBin(f.t), args...)
	cmd.Env = append(append(os.Environ(), "ABSEAL_S3_SECRET_KEY="+f.MinIO.SecretKey), env...)
	w := &Worker{Name: name, cmd: cmd, Logs: &LockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.Logs, w.Logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { w.err = cmd.Wait(); close(w.done) }()
	f.mu.Lock()
	f.workers = append(f.workers, w)
	f.mu.Unlock()
	return w
}

// PID is the worker process's id.
func (w *Worker) PID() int { return w.cmd.Process.Pid }

// Signal sends sig to the worker process.
func (w *Worker) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("worker %s: %v: %v", w.Name, sig, err)
	}
}

// CPU is the CPU time (user + system) the worker process has used so
// far, from /proc (clock ticks of 1/100 s).
func (w *Worker) CPU() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.PID()))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Stopped reports whether the worker process is stopped (SIGSTOP): its
// state in /proc is T.
func (w *Worker) Stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.PID()))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// stop sends sig and waits for the worker to exit.
func (w *Worker) Stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	select {
	case <-w.done:
		return
	default:
	}
	w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
		t.Errorf("worker %s did not exit within 30s of %v", w.Name, sig)
	}
}

func (f *Fleet) stopAll() {
	f.mu.Lock()
	ws := f.workers
	f.mu.Unlock()
	for _, w := range ws {
		w.Stop(f.t, syscall.SIGTERM)
		if f.t.Failed() {
			f.t.Logf("worker %s log:\n%s", w.Name, tail(w.Logs.String(), 6000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// upload puts a clip into the ingest bucket and returns the job id its
// upload event makes.
func (f *Fleet) Upload(key, clip string) (jobID, assetID string) {
	f.t.Helper()
	fh, err := os.Open(clip)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	info, err := f.Ingest.Put(f.t.Context(), key, fh, storage.PutOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	src := asset.Source{Bucket: "ingest", Key: key, ETag: info.ETag}
	assetID = asset.AssetIDFor(src)
	return asset.JobID(src, assetID, "default"), assetID
}

// waitState waits until the job's state satisfies ok.
func (f *Fleet) WaitState(jobID string, timeout time.Duration, ok func(asset.State) bool) asset.State {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), timeout)
	defer cancel()
	var last asset.State
	err := f.Q.WatchState(ctx, jobID, func(b []byte) bool {
		json.Unmarshal(b, &last)
		return !ok(last)
	})
	if err != nil {
		f.t.Fatalf("job %s: waited %s, last state %+v: %v", jobID, timeout, last, err)
	}
	return last
}

func Final(s asset.State) bool { return s.Final() }

// SessionCode is the session code of the asset of m under the fleet's
// watermark key (operator id 0), as the edge and the detector derive it.
func (f *Fleet) SessionCode(m *asset.Manifest) sealed.PatternCode {
	f.t.Helper()
	master, _, err := envelope.ReadWatermarkKey(f.WMKey, f.KEK, false)
	if err != nil {
		f.t.Fatal(err)
	}
	code, err := sealed.SessionCode(master, m, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return code
}

// CheckAsset verifies a finished asset: exactly one manifest, every object
// it names is stored with its digest, opens at its place and only there,
// A and B have equal sizes, and nothing plaintext is in the bucket.
func (f *Fleet) CheckAsset(assetID string) *asset.Manifest {
	f.t.Helper()
	ctx := f.t.Context()
	data, err := storage.ReadAll(ctx, f.Out, asset.ManifestKey(assetID))
	if err != nil {
		f.t.Fatalf("manifest: %v", err)
	}
	m, err := asset.DecodeManifest(data)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(m.Video) == 0 || m.Watermark == nil {
		f.t.Fatalf("manifest: %d video renditions, watermark %v", len(m.Video), m.Watermark)
	}
	named := map[string]bool{asset.ManifestKey(assetID): true}
	for _, r := range append(m.Video, audio(m)...) {
		dek, err := f.KEK.UnwrapDEK(r.DEK.Wrapped, envelope.RenditionAD(assetID, r.Name))
		if err != nil {
			f.t.Fatalf("%s: %v", r.Name, err)
		}
		check := func(o asset.Object, variant string, size int64) {
			ct, err := storage.ReadAll(ctx, f.Out, o.Key)
			if err != nil {
				f.t.Fatalf("%s: %v", o.Key, err)
			}
			sum := sha256.Sum256(ct)
			if hex.EncodeToString(sum[:]) != o.SHA256 || int64(len(ct)) != o.Size {
				f.t.Fatalf("%s: stored bytes do not match the manifest's digest", o.Key)
			}
			plainLooking(f.t, o.Key, ct)
			place := envelope.Place{Asset: assetID, Rung: r.Name, Variant: variant, Object: filepath.Base(o.Key)}
			pr, err := dek.Open(bytes.NewReader(ct), place.AD())
			if err != nil {
				f.t.Fatal(err)
			}
			plain, err := io.ReadAll(pr)
			if err != nil {
				f.t.Fatalf("%s does not open at its place: %v", o.Key, err)
			}
			if size >= 0 && int64(len(plain)) != size {
				f.t.Fatalf("%s: %d plaintext bytes, manifest says %d", o.Key, len(plain), size)
			}
			// Only there: the same bytes at another variant (A and B
			// objects) or under another object name do not open.
			wrong := place
			switch variant {
			case "a":
				wrong.Variant = "b"
			case "b":
				wrong.Variant = "a"
			default:
				wrong.Object = "moved-" + place.Object
			}
			pr, err = dek.Open(bytes.NewReader(ct), wrong.AD())
			if err == nil {
				_, err = io.ReadAll(pr)
			}
			if !errors.Is(err, envelope.ErrAuthentication) {
				f.t.Fatalf("%s opened at %s: %v, want ErrAuthentication", o.Key, wrong, err)
			}
			named[o.Key] = true
		}
		check(r.Init, "", -1)
		for _, s := range r.Segments {
			for v, o := range s.Variants {
				if r.Kind == "audio" {
					v = ""
				}
				check(o, v, s.Size)
			}
			if r.Kind == "video" && len(s.Variants) != 2 {
				f.t.Fatalf("%s segment %d: %d variants, want a and b", r.Name, s.Number, len(s.Variants))
			}
			if r.Kind == "video" {
				key := m.Key(asset.PaceInfo(r.Name, s.Number))
				b, err := storage.ReadAll(ctx, f.Out, key)
				if err != nil {
					f.t.Fatalf("WMPaceInfo: %v", err)
				}
				pi, err := cmaf.ParsePaceInfo(b)
				if err != nil || pi.Position != s.Position || pi.FileSize != s.Size {
					f.t.Fatalf("%s: %+v (%v), manifest says position %d size %d", key, pi, err, s.Position, s.Size)
				}
				named[key] = true
			}
		}
	}
	// The run's playlists and marker (and a chunked run's plan and chunk
	// results) are not in the manifest's object list; every other object
	// of the asset is, and no other run's
	// objects are left (a stale run deletes its own, a commit collects
	// the runs it superseded).
	if m.Run == "" {
		f.t.Fatalf("manifest schema %d names no run", m.Schema)
	}
	named[m.HLS], named[m.DASH], named[asset.RunMarkerKey(assetID, m.Run)] = true, true, true
	for _, r := range m.Video {
		named[m.Key(asset.HLSMedia(r.Name))] = true
	}
	for _, r := range audio(m) {
		named[m.Key(asset.HLSMedia(r.Name))] = true
	}
	for oi, err := range f.Out.List(ctx, asset.Prefix(assetID)) {
		if err != nil {
			f.t.Fatal(err)
		}
		if _, result := asset.ChunkOfResult(assetID, m.Run, oi.Key); !named[oi.Key] && !result && oi.Key != asset.RunPlanKey(assetID, m.Run) {
			f.t.Errorf("object %s is not the manifest's (its run is %s)", oi.Key, m.Run)
		}
	}
	return m
}

// plainLooking fails on bytes that look like plaintext CMAF.
func plainLooking(t testing.TB, key string, b []byte) {
	t.Helper()
	for _, box := range []string{"ftyp", "styp", "moof", "mdat", "moov"} {
		if len(b) >= 8 && string(b[4:8]) == box || bytes.Contains(b, []byte(box+"\x00\x00")) && bytes.Count(b, []byte(box)) > 2 {
			t.Fatalf("%s looks like plaintext media (%q box)", key, box)
		}
	}
}

// checkClean asserts that the workers left no temp files and the bucket
// holds no plaintext media.
func (f *Fleet) checkClean() {
	entries, err := os.ReadDir(f.Tmp)
	if err != nil {
		f.t.Errorf("temp dir: %v", err)
	}
	for _, e := range entries {
		f.t.Errorf("temp file left behind: %s", filepath.Join(f.Tmp, e.Name()))
	}
	// The fault tests bring MinIO back before they end, so a listing or
	// read error here means the bucket went unchecked: a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for oi, err := range f.Out.List(ctx, "") {
		if err != nil {
			f.t.Errorf("clean-up: plaintext scan of the output bucket: %v", err)
			return
		}
		if strings.HasSuffix(oi.Key, ".m4s") || strings.HasSuffix(oi.Key, ".mp4") {
			b, err := storage.ReadAll(ctx, f.Out, oi.Key)
			if err != nil {
				f.t.Errorf("clean-up: plaintext scan: %s: %v", oi.Key, err)
				continue
			}
			plainLooking(f.t, oi.Key, b)
		}
	}
}

// manifests counts the asset manifests in the output bucket.
func (f *Fleet) Manifests() int {
	n := 0
	for oi, err := range f.Out.List(f.t.Context(), "assets/") {
		if err != nil {
			f.t.Fatal(err)
		}
		if strings.HasSuffix(oi.Key, "/manifest.json") {
			n++
		}
	}
	return n
}

// readyEvents returns the asset-ready events published so far.
func (f *Fleet) ReadyEvents() []map[string]any {
	f.t.Helper()
	var out []map[string]any
	js, err := f.NC.JetStream()
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := js.StreamInfo(queue.ReadyStream)
	if err != nil {
		f.t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := js.GetMsg(queue.ReadyStream, seq)
		if err != nil {
			continue
		}
		var ev map[string]any
		if json.Unmarshal(m.Data, &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

func WriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func audio(m *asset.Manifest) []asset.Rendition {
	if m.Audio == nil {
		return nil
	}
	return []asset.Rendition{*m.Audio}
}
