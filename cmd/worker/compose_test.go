package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		User        string            `yaml:"user"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// TestComposeSettings keeps docker-compose.yml honest without a Docker
// engine: it reads the file and runs the same settings with native
// binaries (ports and paths aside): NATS with JetStream, `worker setup`,
// MinIO with the declared notification target, the mc-init buckets and
// event rule, and the worker with its declared environment. An upload then
// has to go all the way to an asset-ready event.
func TestComposeSettings(t *testing.T) {
	root, cf := readCompose(t)
	for _, name := range []string{"nats", "streams", "minio", "mc-init", "worker", "edge"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	minioSvc, initSvc, workerSvc := cf.Services["minio"], cf.Services["mc-init"], cf.Services["worker"]
	release := regexp.MustCompile(`^quay\.io/minio/minio:RELEASE\.(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$`).FindStringSubmatch(minioSvc.Image)
	if release == nil || release[1] < "2025-09-07T16-13-09Z" {
		t.Fatalf("minio image %q: want a pinned RELEASE of 2025-09-07T16-13-09Z or newer", minioSvc.Image)
	}
	if minioSvc.DependsOn["streams"].Condition != "service_completed_successfully" ||
		initSvc.DependsOn["minio"].Condition != "service_healthy" ||
		workerSvc.DependsOn["mc-init"].Condition != "service_completed_successfully" {
		t.Fatal("start order must be nats → streams → minio → mc-init → worker")
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil || !bytes.Contains(dockerfile, []byte("FROM debian:trixie")) || !bytes.Contains(dockerfile, []byte("libavcodec61")) {
		t.Fatalf("Dockerfile: the worker image runs on Debian 13 with its FFmpeg 7.1 (libavcodec61): %v", err)
	}
	// The edge's image is the cgo-free target: no FFmpeg in it.
	if b, _ := cf.Services["edge"].Build.(map[string]any); b["target"] != "edge" {
		t.Fatalf("the edge service builds %v, want the Dockerfile's cgo-free target edge", cf.Services["edge"].Build)
	}
	if i := bytes.Index(dockerfile, []byte(" AS edge\n")); i < 0 || bytes.Contains(dockerfile[i:bytes.Index(dockerfile, []byte(" AS worker\n"))], []byte("libav")) ||
		!bytes.Contains(dockerfile, []byte("CGO_ENABLED=0 go build -trimpath -o /out/edge ./cmd/edge")) {
		t.Fatal("Dockerfile: the edge target must build cmd/edge with CGO_ENABLED=0 on an image without FFmpeg")
	}

	// Secrets, as `make compose-secrets` makes them, and NATS with
	// deploy/nats.conf; then the streams service.
	secretDir, secrets := composeSecrets(t, root, cf)
	n := composeNATS(t, root, secretDir, cf)
	rewrite := func(v string) string {
		v = strings.ReplaceAll(v, "nats://nats:4222", n.URL)
		v = strings.ReplaceAll(v, "nats:4222", strings.TrimPrefix(n.URL, "nats://"))
		for name, path := range secrets {
			v = strings.ReplaceAll(v, "/run/secrets/"+name, path)
		}
		return v
	}
	envOf := func(svc map[string]string, over map[string]string) []string {
		var env []string
		for k, v := range svc {
			if o, ok := over[k]; ok {
				v = o
			}
			env = append(env, k+"="+rewrite(v))
		}
		return env
	}
	bin := fleet.WorkerBin(t)
	setup := exec.CommandContext(t.Context(), bin, cf.Services["streams"].Command...)
	setup.Env = append(os.Environ(), envOf(cf.Services["streams"].Environment, nil)...)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("streams service (worker %v): %v\n%s", cf.Services["streams"].Command, err, out)
	}

	// MinIO with the declared environment.
	var minioEnv []string
	mcfg := devenv.MinIOConfig{DataDir: t.TempDir()}
	for k, v := range minioSvc.Environment {
		switch {
		case k == "MINIO_ROOT_USER":
			mcfg.AccessKey = v
		case k == "MINIO_ROOT_PASSWORD_FILE":
			b, err := os.ReadFile(secrets[v])
			if err != nil {
				t.Fatalf("minio: %s names secret %q: %v", k, v, err)
			}
			mcfg.SecretKey = strings.TrimSpace(string(b))
		case strings.HasPrefix(k, "MINIO_NOTIFY_NATS_QUEUE_DIR_"):
			minioEnv = append(minioEnv, k+"="+t.TempDir())
		default:
			minioEnv = append(minioEnv, k+"="+rewrite(v))
		}
	}
	mcfg.Env = minioEnv
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	m, err := devenv.StartMinIO(ctx, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// mc-init: buckets and event rules.
	var script string
	if len(initSvc.Command) > 0 {
		script = initSvc.Command[0]
	}
	mb := regexp.MustCompile(`^mc mb (?:--ignore-existing )?local/([a-z0-9.-]+)$`)
	policy := regexp.MustCompile(`^mc admin policy create local ([a-z0-9-]+) /policies/([a-z0-9-]+\.json)$`)
	user := regexp.MustCompile(`^mc admin user add local ([a-z0-9-]+) "\$\$\(cat /run/secrets/([a-z0-9_]+)\)"$`)
	attach := regexp.MustCompile(`^mc admin policy attach local ([a-z0-9-]+) --user ([a-z0-9-]+)(?: \|\| true)?$`)
	adm, err := madmin.NewWithOptions(m.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ev := regexp.MustCompile(`^mc event add (?:--ignore-existing )?local/([a-z0-9.-]+) arn:minio:sqs::([A-Za-z0-9_]+):nats --event put$`)
	store := func(bucket string) *s3.Store {
		st, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: bucket, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	var buckets, notifying []string
	for line := range strings.Lines(script) {
		line = strings.TrimSpace(line)
		switch {
		case line == "", line == "set -e", strings.HasPrefix(line, "mc alias set local http://minio:9000 "):
		case mb.MatchString(line):
			b := mb.FindStringSubmatch(line)[1]
			if err := store(b).CreateBucket(t.Context()); err != nil {
				t.Fatal(err)
			}
			buckets = append(buckets, b)
		case policy.MatchString(line):
			sm := policy.FindStringSubmatch(line)
			doc, err := os.ReadFile(filepath.Join(root, "deploy", "minio", sm[2]))
			if err != nil || !slices.Contains(initSvc.Volumes, "./deploy/minio:/policies:ro") {
				t.Fatalf("mc-init: policy %s: %v (deploy/minio must be mounted at /policies)", sm[1], err)
			}
			if err := adm.AddCannedPolicy(t.Context(), sm[1], doc); err != nil {
				t.Fatalf("mc-init: %s: %v", line, err)
			}
		case user.MatchString(line):
			sm := user.FindStringSubmatch(line)
			b, err := os.ReadFile(secrets[sm[2]])
			if err != nil || !slices.Contains(initSvc.Secrets, sm[2]) {
				t.Fatalf("mc-init: %s: secret %s: %v", line, sm[2], err)
			}
			if err := adm.AddUser(t.Context(), sm[1], strings.TrimSpace(string(b))); err != nil {
				t.Fatalf("mc-init: %s: %v", line, err)
			}
		case attach.MatchString(line):
			sm := attach.FindStringSubmatch(line)
			if _, err := adm.AttachPolicy(t.Context(), madmin.PolicyAssociationReq{Policies: []string{sm[1]}, User: sm[2]}); err != nil {
				t.Fatalf("mc-init: %s: %v", line, err)
			}
		case ev.MatchString(line):
			sm := ev.FindStringSubmatch(line)
			if err := store(sm[1]).NotifyUploads(t.Context(), sm[2]); err != nil {
				t.Fatal(err)
			}
			notifying = append(notifying, sm[1])
		default:
			t.Fatalf("mc-init: this test does not know how to run %q", line)
		}
	}
	ingest, output := workerSvc.Environment["ABSEAL_INGEST_BUCKETS"], workerSvc.Environment["ABSEAL_OUTPUT_BUCKET"]
	if !slices.Equal(notifying, []string{ingest}) || !slices.Contains(buckets, output) {
		t.Fatalf("mc-init makes buckets %v with events on %v; the worker reads %q and writes %q", buckets, notifying, ingest, output)
	}
	checkMinIOUsers(t, cf, secrets, m.Endpoint, store(ingest), ingest, output)

	// The worker with its declared environment.
	tmp := t.TempDir()
	w := exec.Command(bin)
	w.Env = append(os.Environ(), envOf(workerSvc.Environment, map[string]string{
		"ABSEAL_S3_ENDPOINT": m.Endpoint, "ABSEAL_HTTP_ADDR": "127.0.0.1:0", "ABSEAL_TMP_DIR": tmp,
	})...)
	var logs bytes.Buffer
	w.Stdout, w.Stderr = &logs, &logs
	w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w.Wait() }()
	defer func() {
		w.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("worker exit after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			w.Process.Kill()
			t.Error("worker did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	}()

	// upload → event → job → asset-ready.
	// The test watches as the setup user: no service subscribes to
	// asset-ready events, and setup may read every stream.
	setupNATS := cliconf.NATS{URL: n.URL, User: cf.Services["streams"].Environment["ABSEAL_NATS_USER"], PasswordFile: secrets["nats_setup"]}
	nc, err := setupNATS.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := js.OrderedConsumer(t.Context(), queue.ReadyStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Attach(t.Context(), nc)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(testmedia.Clip(t, "main.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	info, err := store(ingest).Put(t.Context(), "uploads/compose.mp4", fh, storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := asset.Source{Bucket: ingest, Key: "uploads/compose.mp4", ETag: info.ETag}
	jobID, assetID := asset.JobID(src, asset.AssetIDFor(src), "default"), asset.AssetIDFor(src)
	msg, err := ready.Next(jetstream.FetchMaxWait(3 * time.Minute))
	if err != nil {
		b, _ := q.GetState(t.Context(), jobID)
		t.Fatalf("no asset-ready event: %v (job state %s)", err, b)
	}
	var evt asset.ReadyEvent
	if err := json.Unmarshal(msg.Data(), &evt); err != nil || evt.AssetID != assetID || evt.JobID != jobID || evt.Bucket != output {
		t.Fatalf("asset-ready event %s (%v)", msg.Data(), err)
	}
	if _, err := store(output).Stat(t.Context(), asset.ManifestKey(assetID)); err != nil {
		t.Fatalf("manifest: %v", err)
	}

	// The edge with its declared environment serves the asset to a session.
	edgeSvc := cf.Services["edge"]
	edgeBin := fleet.Binary(t, "edge")
	edgeEnv := append(os.Environ(), envOf(edgeSvc.Environment, map[string]string{
		"ABSEAL_S3_ENDPOINT": m.Endpoint, "ABSEAL_EDGE_ADDR": "127.0.0.1:0"})...)
	edgeEnv = append(edgeEnv, "ABSEAL_EDGE_ADMIN_ADDR=127.0.0.1:0") // a free port, not the fixed default
	ecmd := exec.Command(edgeBin, edgeSvc.Command...)
	ecmd.Env = edgeEnv
	var elogs fleet.LockedBuffer
	ecmd.Stdout, ecmd.Stderr = &elogs, &elogs
	ecmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ecmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ecmd.Process.Signal(syscall.SIGTERM)
		ecmd.Wait()
		if t.Failed() {
			t.Logf("edge log:\n%s", elogs.String())
		}
	}()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for line := range strings.Lines(elogs.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "edge listening" {
				addr, _ = rec["addr"].(string)
			}
		}
	}
	if addr == "" {
		t.Fatal("the edge did not start")
	}
	mint := exec.Command(edgeBin, "token", "--asset", assetID, "--wmid", "7")
	mint.Env = edgeEnv
	tok, err := mint.Output()
	if err != nil {
		t.Fatalf("edge token: %v", err)
	}
	seg := "/assets/" + assetID + "/360p/seg-00002.m4s"
	if resp, err := http.Get("http://" + addr + seg); err != nil || resp.StatusCode != 401 {
		t.Fatalf("without a token: %v %v", resp, err)
	}
	resp, err := http.Get("http://" + addr + "/t/" + strings.TrimSpace(string(tok)) + seg)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) < 1000 || !bytes.Contains(body[:64], []byte("moof")) && !bytes.Contains(body[:64], []byte("styp")) {
		t.Fatalf("segment through the edge: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// readCompose returns the module root and its docker-compose.yml.
func readCompose(t *testing.T) (string, composeFile) {
	t.Helper()
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return root, cf
}

// checkMinIOUsers checks the MinIO users mc-init made, with the
// credentials each service declares: the worker reads uploads and writes
// assets, the edge only reads assets, operators only read uploads.
func checkMinIOUsers(t *testing.T, cf composeFile, secrets map[string]string, endpoint string, root *s3.Store, ingest, output string) {
	t.Helper()
	if _, err := root.Put(t.Context(), "probe/source.mp4", strings.NewReader("probe"), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	as := func(service, bucket string) *s3.Store {
		t.Helper()
		env := cf.Services[service].Environment
		file, _ := strings.CutPrefix(env["ABSEAL_S3_SECRET_KEY_FILE"], "/run/secrets/")
		b, err := os.ReadFile(secrets[file])
		if err != nil || env["ABSEAL_S3_ACCESS_KEY"] == "abseal" || !slices.Contains(cf.Services[service].Secrets, file) {
			t.Fatalf("service %s: S3 user %q with secret %q (%v): want its own user and secret", service, env["ABSEAL_S3_ACCESS_KEY"], file, err)
		}
		st, err := s3.New(s3.Config{Endpoint: endpoint, Bucket: bucket, AccessKey: env["ABSEAL_S3_ACCESS_KEY"], SecretKey: strings.TrimSpace(string(b))})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	read := func(st *s3.Store) error {
		rc, err := st.Open(t.Context(), "probe/source.mp4", nil)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		return err
	}
	write := func(st *s3.Store) error {
		_, err := st.Put(t.Context(), "assets/probe/manifest.json", strings.NewReader("{}"), storage.PutOptions{})
		return err
	}
	for _, tc := range []struct {
		what string
		err  error
		ok   bool
	}{
		{"worker reads an upload", read(as("worker", ingest)), true},
		{"worker checks the output bucket", as("worker", output).Check(t.Context()), true},
		{"worker writes an asset", write(as("worker", output)), true},
		{"worker writes into the ingest bucket", write(as("worker", ingest)), false},
		{"edge reads an upload", read(as("edge", ingest)), false},
		{"edge writes an asset", write(as("edge", output)), false},
		{"operator checks an upload", func() error { _, err := as("operator", ingest).Stat(t.Context(), "probe/source.mp4"); return err }(), true},
		{"operator writes an upload", write(as("operator", ingest)), false},
		{"operator writes an asset", write(as("operator", output)), false},
	} {
		if (tc.err == nil) != tc.ok {
			t.Errorf("MinIO: %s: %v (want allowed: %v)", tc.what, tc.err, tc.ok)
		}
	}
	rc, err := as("edge", output).Open(t.Context(), "assets/probe/manifest.json", nil)
	if err != nil {
		t.Errorf("MinIO: edge reads an asset: %v", err)
	} else {
		rc.Close()
	}
}
