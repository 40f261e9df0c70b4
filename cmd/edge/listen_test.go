package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/cliconf"
)

// testListenConfig is the production listener configuration with
// loopback addresses.
func testListenConfig(t *testing.T) listenConfig {
	t.Helper()
	var c listenConfig
	c.flags(flag.NewFlagSet("test", flag.ContinueOnError), &cliconf.Env{})
	c.Addr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	return c
}

func startListeners(t *testing.T, c listenConfig, public, admin http.Handler) *listeners {
	t.Helper()
	ls, err := listen(c, public, admin, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ls.Close(); err != nil {
			t.Error(err)
		}
	})
	return ls
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
}

// closedWithin reads conn until the server closes it and returns how long
// that took; it fails the test if the server keeps it open for limit.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s", limit)
	}
	return time.Since(start)
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	c := testListenConfig(t)
	c.IdleTimeout = 300 * time.Millisecond
	ls := startListeners(t, c, okHandler(), nil)
	conn, err := net.Dial("tcp", ls.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if d := closedWithin(t, conn, 3*time.Second); d < 250*time.Millisecond {
		t.Fatalf("closed after %s, before IdleTimeout", d)
	}
}

// A client that sends its headers a line at a time, never finishing, is
// cut off after ReadHeaderTimeout.
func TestSlowHeadersCut(t *testing.T) {
	c := testListenConfig(t)
	c.ReadHeaderTimeout = 300 * time.Millisecond
	ls := startListeners(t, c, okHandler(), nil)
	conn, err := net.Dial("tcp", ls.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: edge\r\n")
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, "X-Slow: 1\r\n"); err != nil {
				return
			}
		}
	}()
	closedWithin(t, conn, 3*time.Second)
}

// Request headers beyond MaxHeaderBytes are refused.
func TestHeaderTooLarge(t *testing.T) {
	c := testListenConfig(t)
	ls := startListeners(t, c, okHandler(), nil)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ls.Addr()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 2*c.MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("%d-byte header: %d", 2*c.MaxHeaderBytes, resp.StatusCode)
	}
}

// /metrics and /readyz are served on the admin listener only.
func TestMetricsOnAdminListener(t *testing.T) {
	v := newFixtureEdge(t, false, nil)
	ls := startListeners(t, testListenConfig(t), v.e.Handler(), v.e.AdminHandler())
	pub, adm := "http://"+ls.Addr(), "http://"+ls.AdminAddr()
	for _, p := range []string{"/metrics", "/readyz"} {
		if r, _ := get(t, http.DefaultClient, pub+p); r.StatusCode != 404 {
			t.Errorf("public %s: %d, want 404", p, r.StatusCode)
		}
		if r, _ := get(t, http.DefaultClient, adm+p); r.StatusCode != 200 {
			t.Errorf("admin %s: %d, want 200", p, r.StatusCode)
		}
	}
	if r, _ := get(t, http.DefaultClient, pub+"/healthz"); r.StatusCode != 200 {
		t.Errorf("public /healthz: %d", r.StatusCode)
	}
	if _, m := get(t, http.DefaultClient, adm+"/metrics"); !strings.Contains(string(m), "abseal_edge_requests_total") {
		t.Error("admin /metrics lacks the edge's metrics")
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "abseal edge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With --tls-cert and --tls-key the public listener speaks HTTPS only;
// one of the two alone is a usage error.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	c := testListenConfig(t)
	c.TLSCert, c.TLSKey = certFile, keyFile
	ls := startListeners(t, c, okHandler(), okHandler())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	r, body := get(t, &http.Client{Transport: tr}, "https://"+ls.Addr()+"/healthz")
	if r.StatusCode != 200 || string(body) != "ok\n" || r.TLS == nil || r.ProtoMajor != 2 {
		t.Fatalf("https: %d %q %s", r.StatusCode, body, r.Proto)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ls.Addr()+"/healthz", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP to the TLS port got 200")
		}
	}
	if r, _ := get(t, http.DefaultClient, "http://"+ls.AdminAddr()+"/healthz"); r.StatusCode != 200 {
		t.Fatalf("admin listener (plain HTTP): %d", r.StatusCode)
	}

	for _, half := range []listenConfig{{TLSCert: certFile}, {TLSKey: keyFile}} {
		c := testListenConfig(t)
		c.TLSCert, c.TLSKey = half.TLSCert, half.TLSKey
		if _, err := listen(c, okHandler(), nil, slog.New(slog.DiscardHandler)); err == nil || !errors.Is(err, errUsage) {
			t.Errorf("tls-cert %q tls-key %q: %v, want a usage error", c.TLSCert, c.TLSKey, err)
		}
	}
}

// Close ends both listeners, lets a request in flight finish, and returns
// once the Serve goroutines have.
func TestListenersClose(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done\n")
	})
	ls, err := listen(testListenConfig(t), slow, okHandler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ls.Addr() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- ls.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if b := <-got; b != "done\n" {
		t.Fatalf("the request in flight got %q", b)
	}
	for _, a := range []string{ls.Addr(), ls.AdminAddr()} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still accepts after Close", a)
		}
	}
}
