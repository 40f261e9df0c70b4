package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// The stop function of serveHTTP returns after the server's Serve has,
// also when it is called at once (before Serve's goroutine may have run).
func TestServeHTTPStopJoinsServe(t *testing.T) {
	for _, request := range []bool{true, false} {
		var logs bytes.Buffer
		s := &service{log: slog.New(slog.NewTextHandler(&logs, nil)), m: newMetrics()}
		addr, stop, err := s.serveHTTP("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if request {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok\n" {
				t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
			}
		}
		stop()
		buf := make([]byte, 1<<20)
		if stacks := buf[:runtime.Stack(buf, true)]; bytes.Contains(stacks, []byte("net/http.(*Server).Serve(")) {
			t.Fatalf("request %v: Serve still running after stop:\n%s", request, stacks)
		}
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			t.Fatalf("request %v: the listener still accepts after stop", request)
		}
		if logs.Len() > 0 {
			t.Errorf("request %v: log: %s", request, logs.String())
		}
	}
}
