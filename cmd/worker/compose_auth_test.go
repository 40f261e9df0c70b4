package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/queue"
)

// composeSecrets runs scripts/compose-secrets.sh (what `make
// compose-secrets` runs) into a temp dir, checks that every secret is
// mode 0600 in a 0700 directory and that the KEK loader accepts the KEK,
// and returns the path of each of cf's secrets.
func composeSecrets(t *testing.T, root string, cf composeFile) (dir string, secrets map[string]string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "secrets")
	envFile := filepath.Join(t.TempDir(), "env")
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "compose-secrets.sh"), dir, envFile)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compose-secrets: %v\n%s", err, out)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("compose-secrets: directory %s: %v, %v (want mode 0700)", dir, fi.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("compose-secrets: %s is %v (%v), want mode 0600", e.Name(), fi.Mode(), err)
		}
	}
	env, err := os.ReadFile(envFile)
	if err != nil || !strings.Contains(string(env), "ABSEAL_UID=") || !strings.Contains(string(env), "ABSEAL_GID=") {
		t.Fatalf("compose-secrets: env file %q (%v): want ABSEAL_UID and ABSEAL_GID for the services' user", env, err)
	}
	secrets = map[string]string{}
	for name, s := range cf.Secrets {
		rel, ok := strings.CutPrefix(s.File, "./deploy/secrets/")
		if !ok {
			t.Fatalf("secret %s: file %s is not in deploy/secrets", name, s.File)
		}
		secrets[name] = filepath.Join(dir, rel)
		if _, err := os.Stat(secrets[name]); err != nil {
			t.Fatalf("secret %s: compose-secrets did not write it: %v", name, err)
		}
	}
	if _, err := envelope.OpenKEK(t.Context(), secrets["kek"], envelope.KEKOptions{}); err != nil {
		t.Fatalf("the KEK loader refuses what compose-secrets wrote: %v", err)
	}
	for name, svc := range cf.Services {
		if svc.Image == "" && !strings.HasPrefix(svc.User, "${ABSEAL_UID") {
			t.Errorf("service %s (an abseal image) runs as %q, want the secrets' owner ${ABSEAL_UID…}:${ABSEAL_GID…}", name, svc.User)
		}
	}
	return dir, secrets
}

// composeNATS starts NATS with deploy/nats.conf and the nats-users.conf
// compose-secrets wrote, mounted as the nats service declares.
func composeNATS(t *testing.T, root, secretDir string, cf composeFile) *devenv.NATS {
	t.Helper()
	svc := cf.Services["nats"]
	if !slices.Equal(svc.Command, []string{"-c", "/etc/nats/nats.conf"}) {
		t.Fatalf("nats runs %v, want -c /etc/nats/nats.conf", svc.Command)
	}
	for _, v := range []string{"./deploy/nats.conf:/etc/nats/nats.conf:ro", "./deploy/secrets/nats-users.conf:/etc/nats/nats-users.conf:ro"} {
		if !slices.Contains(svc.Volumes, v) {
			t.Fatalf("nats volumes %v: want %s", svc.Volumes, v)
		}
	}
	etc := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	users, err := os.ReadFile(filepath.Join(secretDir, "nats-users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"nats.conf": conf, "nats-users.conf": users} {
		if err := os.WriteFile(filepath.Join(etc, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(etc, "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats.conf: %v", err)
	}
	if !opts.JetStream || opts.StoreDir != "/data" || !slices.Contains(svc.Volumes, "nats-data:/data") {
		t.Fatalf("deploy/nats.conf: JetStream %v in %q: want it on, in /data (the nats-data volume)", opts.JetStream, opts.StoreDir)
	}
	if len(opts.Users) == 0 || opts.NoAuthUser != "" {
		t.Fatalf("deploy/nats.conf: users %d, no-auth user %q: want users and no anonymous access", len(opts.Users), opts.NoAuthUser)
	}
	n, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: t.TempDir(), ConfigFile: filepath.Join(etc, "nats.conf")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// TestComposeNATSPermissions runs deploy/nats.conf with the secrets
// compose-secrets writes and checks each role's rights: no anonymous
// clients; the edge reads the deny-list and nothing else; only the worker
// and operators publish jobs; the MinIO notifier publishes upload events
// only; the worker consumes jobs but cannot change the deny-list.
func TestComposeNATSPermissions(t *testing.T) {
	root, cf := readCompose(t)
	secretDir, secrets := composeSecrets(t, root, cf)
	n := composeNATS(t, root, secretDir, cf)

	for name, svc := range cf.Services {
		if len(svc.Ports) > 0 && name != "edge" && !allLoopback(svc.Ports) {
			t.Errorf("service %s publishes %v on every interface: only the edge may", name, svc.Ports)
		}
	}
	if nc, err := nats.Connect(n.URL); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was let in")
	}
	if nc, err := nats.Connect(n.URL, nats.UserInfo("edge", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was let in")
	}
	// Each abseal service connects with the user and password file its
	// compose environment names.
	conn := func(service string) *nats.Conn {
		t.Helper()
		env := cf.Services[service].Environment
		file, ok := strings.CutPrefix(env["ABSEAL_NATS_PASSWORD_FILE"], "/run/secrets/")
		if !ok || !slices.Contains(cf.Services[service].Secrets, file) || env["ABSEAL_NATS_USER"] == "" {
			t.Fatalf("service %s: NATS user %q, password file %q: want a user and one of its secrets", service, env["ABSEAL_NATS_USER"], env["ABSEAL_NATS_PASSWORD_FILE"])
		}
		c := cliconf.NATS{URL: n.URL, User: env["ABSEAL_NATS_USER"], PasswordFile: secrets[file]}
		nc, err := c.Connect(nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatalf("service %s: %v", service, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	denied := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: allowed, want it refused", what)
		}
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	// setup creates everything.
	if _, err := queue.Open(t.Context(), conn("streams"), queue.Config{}); err != nil {
		t.Fatalf("setup: %v", err)
	}

	// operator: submit a job, revoke and reinstate, read dead letters.
	opnc := conn("operator")
	op, err := queue.Attach(t.Context(), opnc)
	if err != nil {
		t.Fatalf("operator: attach: %v", err)
	}
	if _, err := op.Submit(t.Context(), "normal", "job-operator", []byte(`{}`)); err != nil {
		t.Fatalf("operator: submit: %v", err)
	}
	if _, err := op.DeadLetters(t.Context()); err != nil {
		t.Fatalf("operator: dead letters: %v", err)
	}
	if _, err := op.GetState(t.Context(), "job-operator"); err != nil && !errors.Is(err, queue.ErrNoState) {
		t.Fatalf("operator: job state: %v", err)
	}
	watch, cancelWatch := context.WithTimeout(t.Context(), 500*time.Millisecond)
	if err := op.WatchState(watch, "job-operator", func([]byte) bool { return true }); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("operator: watch job state: %v", err)
	}
	cancelWatch()
	oprev, err := queue.OpenRevocations(t.Context(), opnc, queue.RevocationsConfig{})
	if err != nil {
		t.Fatalf("operator: deny-list: %v", err)
	}
	for _, key := range []string{"wmid-1", "wmid-2"} {
		if err := oprev.Revoke(t.Context(), key, "test"); err != nil {
			t.Fatalf("operator: revoke: %v", err)
		}
	}
	if err := oprev.Reinstate(t.Context(), "wmid-2"); err != nil {
		t.Fatalf("operator: reinstate: %v", err)
	}

	// edge: watches the deny-list; cannot change it, publish jobs or read
	// the jobs.
	ednc := conn("edge")
	erev, err := queue.OpenRevocations(t.Context(), ednc, queue.RevocationsConfig{})
	if err != nil {
		t.Fatalf("edge: deny-list: %v", err)
	}
	if err := watchRevocations(t, erev); err != nil {
		t.Fatalf("edge: watch the deny-list: %v", err)
	}
	if !erev.Revoked("wmid-1") || erev.Revoked("wmid-2") {
		t.Fatal("edge: the deny-list it sees is not the operator's")
	}
	denied("edge: reinstate a revoked session", erev.Reinstate(short(), "wmid-1"))
	denied("edge: revoke", erev.Revoke(short(), "wmid-3", "x"))
	ejs, err := jetstream.New(ednc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ejs.Publish(short(), queue.JobsSubject+".normal", []byte(`{}`))
	denied("edge: publish a job", err)
	denied("edge: delete the deny-list", ejs.DeleteKeyValue(short(), queue.RevokedBucket))
	_, err = queue.Attach(short(), ednc)
	denied("edge: attach to the jobs", err)
	_, err = ejs.Publish(short(), "$KV."+queue.RevokedBucket+".wmid-1", nil, jetstream.WithMsgID("x"))
	denied("edge: write the deny-list's subject", err)
	// edge (minting): allocates wmids and records sessions; cannot read,
	// purge or delete the records.
	ereg, err := queue.OpenRegistry(t.Context(), ednc)
	if err != nil {
		t.Fatalf("edge: open the session registry: %v", err)
	}
	for want := uint64(1); want <= 2; want++ {
		if w, err := ereg.Allocate(t.Context(), "film"); err != nil || w != want {
			t.Fatalf("edge: allocate a wmid: %d, %v", w, err)
		}
	}
	if err := ereg.Record(t.Context(), queue.SessionRecord{Asset: "film", WMID: 1, Subject: "alice", Mode: "indirect"}); err != nil {
		t.Fatalf("edge: record a session: %v", err)
	}
	_, err = ereg.Sessions(short(), "film")
	denied("edge: read the recorded sessions", err)
	denied("edge: purge the session registry", ejs.DeleteStream(short(), queue.SessionsStream))
	sst, err := ejs.Stream(t.Context(), queue.SessionsStream)
	if err != nil {
		t.Fatalf("edge: stream info: %v", err)
	}
	denied("edge: purge the recorded sessions", sst.Purge(short()))
	denied("edge: delete a recorded session", sst.DeleteMsg(short(), 1))
	// operator (detect): reads the recorded sessions; cannot write them.
	oreg, err := queue.OpenRegistry(t.Context(), opnc)
	if err != nil {
		t.Fatalf("operator: open the session registry: %v", err)
	}
	if recs, err := oreg.Sessions(t.Context(), "film"); err != nil || len(recs) != 1 || recs[0].Subject != "alice" {
		t.Fatalf("operator: read the recorded sessions: %+v, %v", recs, err)
	}
	denied("operator: record a session", oreg.Record(short(), queue.SessionRecord{Asset: "film", WMID: 2, Mode: "indirect"}))

	// notifier (MinIO): publishes upload events, nothing else.
	mn := cf.Services["minio"]
	seed, ok := strings.CutPrefix(mn.Environment["MINIO_NOTIFY_NATS_NKEY_SEED_ABSEAL"], "/run/secrets/")
	if !ok || !slices.Contains(mn.Secrets, seed) {
		t.Fatalf("minio: MINIO_NOTIFY_NATS_NKEY_SEED_ABSEAL %q: want one of its secrets", mn.Environment["MINIO_NOTIFY_NATS_NKEY_SEED_ABSEAL"])
	}
	nkey, err := nats.NkeyOptionFromSeed(secrets[seed])
	if err != nil {
		t.Fatal(err)
	}
	nnc, err := nats.Connect(n.URL, nkey, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("notifier: %v", err)
	}
	defer nnc.Close()
	njs, err := jetstream.New(nnc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := njs.Publish(t.Context(), mn.Environment["MINIO_NOTIFY_NATS_SUBJECT_ABSEAL"], []byte(`{"Records":[]}`)); err != nil {
		t.Fatalf("notifier: publish an upload event: %v", err)
	}
	_, err = njs.Publish(short(), queue.JobsSubject+".normal", []byte(`{}`))
	denied("notifier: publish a job", err)
	_, err = njs.Publish(short(), "$KV."+queue.RevokedBucket+".wmid-1", nil)
	denied("notifier: write the deny-list", err)
	_, err = njs.Publish(short(), queue.ReadySubject+".x", nil)
	denied("notifier: publish an asset-ready event", err)

	// worker: opens the queue as it does at start, consumes the job,
	// submits jobs, but cannot change the deny-list.
	wnc := conn("worker")
	wq, err := queue.Open(t.Context(), wnc, queue.Config{})
	if err != nil {
		t.Fatalf("worker: open the queue: %v", err)
	}
	if _, err := wq.Submit(t.Context(), "normal", "job-worker", []byte(`{}`)); err != nil {
		t.Fatalf("worker: submit: %v", err)
	}
	got := make(chan string, 2)
	cctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- wq.Consume(cctx, t.Context(), 1, slog.New(slog.NewTextHandler(io.Discard, nil)), func(ctx context.Context, m *queue.Msg) {
			if err := m.Ack(ctx); err != nil {
				t.Errorf("worker: ack: %v", err)
			}
			got <- m.JobID()
		})
	}()
	for _, want := range []string{"job-operator", "job-worker"} {
		select {
		case id := <-got:
			if id != want {
				t.Errorf("worker consumed %s, want %s", id, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("worker: no job %s within 10s", want)
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("worker: consume: %v", err)
	}
	// The worker's dead-letter feed: MaxDeliver advisories.
	subErrs := make(chan error, 1)
	anc := conn("worker")
	anc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case subErrs <- err:
		default:
		}
	})
	aq, err := queue.Attach(t.Context(), anc)
	if err != nil {
		t.Fatal(err)
	}
	stopExhausted, err := aq.WatchExhausted(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context, queue.Exhausted) {})
	if err != nil {
		t.Fatalf("worker: watch exhausted jobs: %v", err)
	}
	if err := anc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-subErrs:
		t.Fatalf("worker: subscribe to MaxDeliver advisories: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	stopExhausted()
	wrev, err := queue.OpenRevocations(t.Context(), wnc, queue.RevocationsConfig{})
	if err != nil {
		t.Fatalf("worker: deny-list: %v", err)
	}
	denied("worker: reinstate a revoked session", wrev.Reinstate(short(), "wmid-1"))
	wjs, err := jetstream.New(wnc)
	if err != nil {
		t.Fatal(err)
	}
	denied("worker: delete the deny-list", wjs.DeleteKeyValue(short(), queue.RevokedBucket))
	denied("worker: delete the session registry", wjs.DeleteStream(short(), queue.SessionsStream))
	_, err = wjs.UpdateStream(short(), jetstream.StreamConfig{Name: queue.SessionsStream, Subjects: []string{queue.SessionsSubject + ".>"}, MaxAge: time.Second})
	denied("worker: age out the recorded sessions", err)
	wreg, err := queue.OpenRegistry(t.Context(), wnc)
	if err != nil {
		t.Fatalf("worker: open the session registry: %v", err)
	}
	denied("worker: record a session", wreg.Record(short(), queue.SessionRecord{Asset: "film", WMID: 9, Mode: "indirect"}))
	_, err = wreg.Allocate(short(), "film")
	denied("worker: allocate a wmid", err)
	if recs, err := oreg.Sessions(t.Context(), "film"); err != nil || len(recs) != 1 {
		t.Fatalf("the recorded sessions changed: %+v, %v", recs, err)
	}
	if !erev.Revoked("wmid-1") {
		t.Fatal("the revoked session is no longer on the deny-list")
	}
}

func allLoopback(ports []string) bool {
	for _, p := range ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			return false
		}
	}
	return true
}

// watchRevocations runs rev's watch until the test ends and waits for its
// first complete load.
func watchRevocations(t *testing.T, rev *queue.Revocations) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rev.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := rev.Confirmed()
		if !c.IsZero() && err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deny-list not loaded after 10s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
