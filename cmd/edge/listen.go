package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/abseal/abseal/internal/cliconf"
)

// listenConfig is the edge's two listeners: the public one (media and
// /healthz, optionally TLS) and the admin one (/metrics, /readyz).
//
// The timeouts are sized for a segment at slow speeds: a top-rung segment
// is at most about 8 MB (10 Mbit/s for 6 s); WriteTimeout (90 s, from the
// end of the request headers to the end of the response) lets that reach
// a client at 0.75 Mbit/s, which could not play the rung anyway and
// whose player steps down. Requests are GETs without bodies, so
// ReadTimeout is short; IdleTimeout (30 s) outlasts the few seconds
// between a player's segment requests. MaxHeaderBytes leaves room for an
// 8 KB token in a header besides the usual ones.
type listenConfig struct {
	Addr, AdminAddr   string
	TLSCert, TLSKey   string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// ShutdownGrace is how long Close lets requests in flight finish.
	ShutdownGrace time.Duration
}

func (c *listenConfig) flags(fl *flag.FlagSet, e *cliconf.Env) {
	fl.StringVar(&c.Addr, "addr", e.String("ABSEAL_EDGE_ADDR", ":8443"), "public listen address (media, /healthz)")
	fl.StringVar(&c.AdminAddr, "admin-addr", e.String("ABSEAL_EDGE_ADMIN_ADDR", "127.0.0.1:9091"), `admin listen address (/metrics, /readyz, /healthz); "" turns it off`)
	fl.StringVar(&c.TLSCert, "tls-cert", e.String("ABSEAL_EDGE_TLS_CERT", ""), "PEM certificate (chain) of the public listener: serve HTTPS (with --tls-key)")
	fl.StringVar(&c.TLSKey, "tls-key", e.String("ABSEAL_EDGE_TLS_KEY", ""), "PEM private key of --tls-cert")
	fl.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", e.Duration("ABSEAL_EDGE_READ_HEADER_TIMEOUT", 5*time.Second), "time to read a request's headers")
	fl.DurationVar(&c.ReadTimeout, "read-timeout", e.Duration("ABSEAL_EDGE_READ_TIMEOUT", 15*time.Second), "time to read a whole request")
	fl.DurationVar(&c.WriteTimeout, "write-timeout", e.Duration("ABSEAL_EDGE_WRITE_TIMEOUT", 90*time.Second), "time to write a response (a segment to a slow client)")
	fl.DurationVar(&c.IdleTimeout, "idle-timeout", e.Duration("ABSEAL_EDGE_IDLE_TIMEOUT", 30*time.Second), "keep-alive connections idle this long are closed")
	fl.IntVar(&c.MaxHeaderBytes, "max-header-bytes", e.Int("ABSEAL_EDGE_MAX_HEADER_BYTES", 32<<10), "request header size limit")
	c.ShutdownGrace = 10 * time.Second
}

// validate names the first bad setting.
func (c *listenConfig) validate() error {
	switch {
	case c.Addr == "":
		return errors.New("addr is empty")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("tls-cert and tls-key go together: give both or neither")
	case c.ReadHeaderTimeout <= 0, c.ReadTimeout <= 0, c.WriteTimeout <= 0, c.IdleTimeout <= 0:
		return errors.New("read-header-timeout, read-timeout, write-timeout and idle-timeout must be positive")
	case c.ReadHeaderTimeout > c.ReadTimeout:
		return fmt.Errorf("read-header-timeout %s is longer than read-timeout %s", c.ReadHeaderTimeout, c.ReadTimeout)
	case c.MaxHeaderBytes < 8<<10:
		return fmt.Errorf("max-header-bytes %d: at least 8192 (a token may be 8 KB)", c.MaxHeaderBytes)
	}
	return nil
}

// listeners serves the public and admin handlers until Close. Its Serve
// goroutines are joined by Close.
type listeners struct {
	cfg     listenConfig
	log     *slog.Logger
	servers []*http.Server
	addrs   []string
	wg      sync.WaitGroup
	failed  chan error // a listener that stopped on its own
}

// listen opens the listeners and starts serving. admin may be nil when
// AdminAddr is empty.
func listen(cfg listenConfig, public, admin http.Handler, log *slog.Logger) (*listeners, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	l := &listeners{cfg: cfg, log: log, failed: make(chan error, 2)}
	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("edge: tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, a := range []struct {
		addr string
		h    http.Handler
		tls  *tls.Config
	}{{cfg.Addr, public, tlsConf}, {cfg.AdminAddr, admin, nil}} {
		if a.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("edge: listen: %w", err)
		}
		lns = append(lns, ln)
		l.servers = append(l.servers, &http.Server{
			Handler: a.h, TLSConfig: a.tls,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
			WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		})
		l.addrs = append(l.addrs, ln.Addr().String())
		srv := l.servers[len(l.servers)-1]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			serve := srv.Serve
			if srv.TLSConfig != nil {
				// ServeTLS offers HTTP/2 as well as HTTP/1.1.
				serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
			}
			if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
				l.failed <- fmt.Errorf("edge: serve %s: %w", ln.Addr(), err)
			}
		}()
	}
	return l, nil
}

// Addr is the public listener's address, AdminAddr the admin one's (""
// when it is off).
func (l *listeners) Addr() string { return l.addrs[0] }
func (l *listeners) AdminAddr() string {
	if len(l.addrs) < 2 {
		return ""
	}
	return l.addrs[1]
}

// Failed delivers the error of a listener that stopped before Close.
func (l *listeners) Failed() <-chan error { return l.failed }

// Close stops accepting, lets requests in flight finish for
// ShutdownGrace, closes what is left and waits for the Serve goroutines.
func (l *listeners) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.ShutdownGrace)
	defer cancel()
	var errs []error
	for _, srv := range l.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("edge: shutdown: %w", err))
			srv.Close()
		}
	}
	l.wg.Wait()
	return errors.Join(errs...)
}
