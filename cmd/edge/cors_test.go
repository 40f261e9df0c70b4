package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abseal/abseal/edge"
)

// edge serve refuses a bad --cors-origins (or ABSEAL_EDGE_CORS_ORIGINS)
// entry before it connects anywhere, naming it.
func TestServeCORSOriginsChecked(t *testing.T) {
	for _, tc := range []struct{ flag, env string }{
		{"https://player.example.com,player.example.com", ""},
		{"", "https://player.example.com/app"},
	} {
		t.Setenv("ABSEAL_EDGE_CORS_ORIGINS", tc.env)
		args := []string{"serve"}
		if tc.flag != "" {
			args = append(args, "--cors-origins", tc.flag)
		}
		err := run(t.Context(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "cors-origins") || !strings.Contains(err.Error(), "allowed origin") {
			t.Errorf("%v (env %q): err = %v", args, tc.env, err)
		}
	}
}

// Through the real listeners, a page's preflight and its media request
// from an allowed origin get their CORS answers.
func TestCORSThroughListeners(t *testing.T) {
	var s settings
	s.corsOrigins = " https://player.example.com , http://127.0.0.1:9000"
	if got := s.origins(); len(got) != 2 || got[0] != "https://player.example.com" {
		t.Fatalf("origins %q", got)
	}
	v := newFixtureEdge(t, false, func(c *edge.Config) { c.AllowedOrigins = s.origins() })
	ls := startListeners(t, testListenConfig(t), v.e.Handler(), v.e.AdminHandler())
	req, _ := http.NewRequestWithContext(t.Context(), "OPTIONS", "http://"+ls.Addr()+"/assets/"+v.m.AssetID+"/hls/master.m3u8", nil)
	req.Header.Set("Origin", "http://127.0.0.1:9000")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "wmt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:9000" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	r, _ := get(t, http.DefaultClient, "http://"+ls.Addr()+"/assets/"+v.m.AssetID+"/hls/master.m3u8", "Origin", "https://player.example.com", "WMT", v.token(edge.Session{WMID: 5}, false))
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://player.example.com" {
		t.Fatalf("playlist: %d %v", r.StatusCode, r.Header)
	}
}

// edge serve checks --origin-secret-file before it connects anywhere.
func TestServeOriginSecretChecked(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	for _, tc := range []struct{ file, want string }{
		{short, "9 bytes, want at least 32"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		err := run(t.Context(), []string{"serve", "--origin-secret-file", tc.file}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %s", tc.file, err, tc.want)
		}
	}
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(strings.Repeat("s", 40)+"\n"), 0o600)
	s := settings{originSecretFile: good}
	if b, err := s.originSecret(); err != nil || len(b) != 40 {
		t.Errorf("good secret: %d bytes, %v", len(b), err)
	}
}
