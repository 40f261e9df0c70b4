package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

// notifyTarget is the id of MinIO's NATS notification target.
const notifyTarget = "ABSEAL"

// runDev runs the embedded default: NATS JetStream in this process, a
// MinIO server process, and local keys, all under cfg.DataDir, with the
// worker on top. With --demo it processes one file and exits.
func runDev(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer) error {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev: data dir: %w", err)
	}
	if cfg.Demo != "" {
		if _, err := os.Stat(cfg.Demo); err != nil {
			return fmt.Errorf("%w: demo source: %v", errUsage, err)
		}
	}
	ns, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return err
	}
	defer ns.Close()
	// The streams exist before MinIO starts: its JetStream target checks.
	if err := openStreams(ctx, ns.URL); err != nil {
		return err
	}
	creds, err := devCredentials(filepath.Join(dir, "minio.credentials"))
	if err != nil {
		return err
	}
	mctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	m, err := devenv.StartMinIO(mctx, devenv.MinIOConfig{
		DataDir: filepath.Join(dir, "minio"), AccessKey: creds[0], SecretKey: creds[1],
		Env: devenv.NotifyEnv(notifyTarget, ns.URL, queue.UploadsSubject, filepath.Join(dir, "minio-events")),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	cfg.NATS.URL, cfg.S3.Endpoint, cfg.S3.AccessKey, cfg.S3SecretKey = ns.URL, m.Endpoint, m.AccessKey, m.SecretKey
	if len(cfg.IngestBuckets) == 0 {
		cfg.IngestBuckets = []string{"ingest"}
	}
	for _, b := range append([]string{cfg.OutputBucket}, cfg.IngestBuckets...) {
		st, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: b, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
		if err != nil {
			return err
		}
		if err := st.CreateBucket(ctx); err != nil {
			return err
		}
		if b != cfg.OutputBucket {
			if err := st.NotifyUploads(ctx, notifyTarget); err != nil {
				return err
			}
		}
	}
	if cfg.KEK.URI == "" {
		cfg.KEK.URI = filepath.Join(dir, "kek.json")
		if _, err := os.Stat(cfg.KEK.URI); errors.Is(err, os.ErrNotExist) {
			if err := envelope.CreateLocalKEK(cfg.KEK.URI); err != nil {
				return err
			}
			log.Info("dev: created a local KEK", "path", cfg.KEK.URI)
		}
	}
	if cfg.WatermarkKey.Path == "" {
		cfg.WatermarkKey.Path = filepath.Join(dir, "watermark.key")
		if _, err := os.Stat(cfg.WatermarkKey.Path); errors.Is(err, os.ErrNotExist) {
			kek, err := cfg.KEK.Open(ctx)
			if err != nil {
				return err
			}
			if err := kek.CreateWatermarkKey(cfg.WatermarkKey.Path); err != nil {
				return err
			}
			log.Info("dev: created a watermark master key, wrapped by the KEK", "path", cfg.WatermarkKey.Path)
		}
	}
	if cfg.Demo != "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	s, closeFn, err := newService(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	log.Info("dev: environment up", "nats", ns.URL, "s3", m.Endpoint, "ingest", cfg.IngestBuckets,
		"output", cfg.OutputBucket, "data_dir", dir)
	if cfg.Demo == "" {
		fmt.Fprintf(stdout, "abseal dev: NATS %s, MinIO %s (credentials in %s), upload to bucket %q to make jobs; Ctrl-C stops\n",
			ns.URL, m.Endpoint, filepath.Join(dir, "minio.credentials"), cfg.IngestBuckets[0])
		return s.serve(ctx, stdout)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.serve(sctx, stdout) }()
	derr := demo(ctx, s, cfg, m.Endpoint, stdout)
	stop()
	if err := <-done; derr == nil {
		derr = err
	}
	return derr
}

func openStreams(ctx context.Context, url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = queue.Open(ctx, nc, queue.Config{})
	return err
}

// devCredentials reads or creates the dev MinIO root credentials (0600).
func devCredentials(path string) ([2]string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			return [2]string{f[0], f[1]}, nil
		}
		return [2]string{}, fmt.Errorf("dev: %s is not \"ACCESS SECRET\"", path)
	}
	c := [2]string{"abseal-dev", randomHex(20)}
	if err := os.WriteFile(path, []byte(c[0]+" "+c[1]+"\n"), 0o600); err != nil {
		return c, fmt.Errorf("dev: %w", err)
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// demo uploads the file to the ingest bucket, follows its job (made by the
// upload event) to the end and prints what was made.
func demo(ctx context.Context, s *service, cfg *config, endpoint string, stdout io.Writer) error {
	start := time.Now()
	ingest, err := s3.New(s3.Config{Endpoint: endpoint, Bucket: cfg.IngestBuckets[0], AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3SecretKey})
	if err != nil {
		return err
	}
	f, err := os.Open(cfg.Demo)
	if err != nil {
		return err
	}
	defer f.Close()
	key := "demo/" + filepath.Base(cfg.Demo)
	info, err := ingest.Put(ctx, key, f, storage.PutOptions{ContentType: asset.TypeVideo})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: uploaded %s to s3://%s/%s (%d bytes); waiting for the upload event's job\n",
		cfg.Demo, cfg.IngestBuckets[0], key, info.Size)
	src := asset.Source{Bucket: cfg.IngestBuckets[0], Key: key, ETag: info.ETag}
	jobID := asset.JobID(src, asset.AssetIDFor(src), "default")
	var final asset.State
	lastLine := ""
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	err = s.q.WatchState(wctx, jobID, func(b []byte) bool {
		var st asset.State
		if json.Unmarshal(b, &st) != nil {
			return true
		}
		if line := fmt.Sprintf("demo: job %s %s %s %3.0f%%", st.JobID, st.Status, st.Stage, st.Percent); line != lastLine {
			fmt.Fprintln(stdout, line)
			lastLine = line
		}
		final = st
		return !st.Final()
	})
	if err != nil {
		return fmt.Errorf("demo: waiting for job %s: %w", jobID, err)
	}
	if final.Status != asset.StatusDone {
		return fmt.Errorf("demo: job %s failed: %s", jobID, final.Reason)
	}
	return printSummary(ctx, s, final.AssetID, time.Since(start), stdout)
}

// printSummary reads the asset manifest and prints renditions, segments,
// objects, bytes and stage times, and checks that one sealed segment opens.
func printSummary(ctx context.Context, s *service, assetID string, took time.Duration, stdout io.Writer) error {
	data, err := storage.ReadAll(ctx, s.out, asset.ManifestKey(assetID))
	if err != nil {
		return err
	}
	m, err := asset.DecodeManifest(data)
	if err != nil {
		return err
	}
	var objects int
	var bytes int64
	for oi, err := range s.out.List(ctx, asset.Prefix(assetID)) {
		if err != nil {
			return err
		}
		objects++
		bytes += oi.Size
	}
	fmt.Fprintf(stdout, "\nasset %s: %.1f s of video from %s (sha256 %s…)\n", m.AssetID, m.Duration, m.Source.Source, m.Source.SHA256[:12])
	if m.Watermark != nil {
		fmt.Fprintf(stdout, "  watermark: %s v%d, A/B variants, pattern length %d, %d unmarked segment(s)\n",
			m.Watermark.Scheme, m.Watermark.Version, m.Watermark.PatternLen, m.Watermark.Unmarked)
	}
	for _, r := range append(m.Video, derefR(m.Audio)...) {
		variants := 1
		if len(r.Segments) > 0 {
			variants = len(r.Segments[0].Variants)
		}
		dim := fmt.Sprintf("%dx%d", r.Width, r.Height)
		if r.Kind == "audio" {
			dim = fmt.Sprintf("%d Hz %dch", r.SampleRate, r.Channels)
		}
		fmt.Fprintf(stdout, "  %-6s %-12s %-22s %3d segments x %d variant(s)  avg %5d kb/s\n",
			r.Name, dim, r.Codecs, len(r.Segments), variants, r.Bitrate/1000)
	}
	fmt.Fprintf(stdout, "  %d objects, %d bytes in s3://%s/%s (segments sealed with a DEK per rendition)\n",
		objects, bytes, s.cfg.OutputBucket, asset.Prefix(assetID))
	if st, err := s.q.GetState(ctx, m.JobID); err == nil {
		var js asset.State
		if json.Unmarshal(st, &js) == nil && len(js.Stages) > 0 {
			fmt.Fprintf(stdout, "  stages:")
			for _, name := range []string{"fetch", "transcode", "manifest"} {
				if d, ok := js.Stages[name]; ok {
					fmt.Fprintf(stdout, " %s %.2fs", name, d)
				}
			}
			fmt.Fprintln(stdout, " (transcode includes watermark, packaging, sealing and uploads)")
		}
	}
	if err := verifyOne(ctx, s, m); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  verified: %s opens with its rendition's unwrapped DEK at its place\n", m.Video[0].Segments[0].Variants["a"].Key)
	fmt.Fprintf(stdout, "  manifest: s3://%s/%s\n  playlists: s3://%s/%s, s3://%s/%s\n  total %s\n",
		s.cfg.OutputBucket, asset.ManifestKey(assetID), s.cfg.OutputBucket, m.HLS, s.cfg.OutputBucket, m.DASH,
		took.Round(time.Millisecond))
	return nil
}

// verifyOne opens the first sealed segment of the top rendition with its
// unwrapped DEK, as the delivery tier will.
func verifyOne(ctx context.Context, s *service, m *asset.Manifest) error {
	if len(m.Video) == 0 || len(m.Video[0].Segments) == 0 {
		return errors.New("demo: the asset has no video segments")
	}
	r := m.Video[0]
	dek, err := s.runner.KEK.UnwrapDEK(r.DEK.Wrapped, envelope.RenditionAD(m.AssetID, r.Name))
	if err != nil {
		return err
	}
	seg := r.Segments[0]
	obj := seg.Variants["a"]
	rc, err := s.out.Open(ctx, obj.Key, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	pr, err := dek.Open(rc, envelope.Place{Asset: m.AssetID, Rung: r.Name, Variant: "a", Object: filepath.Base(obj.Key)}.AD())
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, pr)
	if err != nil {
		return fmt.Errorf("demo: %s does not open: %w", obj.Key, err)
	}
	if n != seg.Size {
		return fmt.Errorf("demo: %s opened to %d bytes, manifest says %d", obj.Key, n, seg.Size)
	}
	return nil
}

func derefR(r *asset.Rendition) []asset.Rendition {
	if r == nil {
		return nil
	}
	return []asset.Rendition{*r}
}
