package devenv

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded NATS server with JetStream enabled.
type NATS struct {
	Server *server.Server
	// URL is the client URL (nats://127.0.0.1:port).
	URL string
}

// NATSConfig configures StartNATS.
type NATSConfig struct {
	// StoreDir holds JetStream's data. Required.
	StoreDir string
	// Port is the client port; 0 picks a free one.
	Port int
	// Host defaults to 127.0.0.1.
	Host string
	// ConfigFile, if set, is a nats-server configuration file (users,
	// permissions, includes); StoreDir, Host and Port override its
	// settings and its monitoring port is not opened.
	ConfigFile string
	// Cluster, if set, makes the server a node of a JetStream cluster.
	Cluster *ClusterConfig
}

// ClusterConfig is one node's place in a cluster of embedded servers on
// loopback (tests: a JetStream cluster is several nodes on one machine).
type ClusterConfig struct {
	Name   string   // the cluster's name
	Node   string   // this node's server name, unique in the cluster
	Port   int      // this node's route port
	Routes []string // every node's route URL, nats-route://127.0.0.1:port
}

// StartNATS starts an embedded JetStream server and waits until it accepts
// clients.
func StartNATS(cfg NATSConfig) (*NATS, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("devenv: nats: store dir is empty")
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("devenv: nats: %w", err)
		}
		opts.HTTPPort = 0
	}
	opts.ServerName = "abseal-dev"
	opts.Host, opts.Port = host, port
	if c := cfg.Cluster; c != nil {
		opts.ServerName = c.Node
		opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = c.Name, host, c.Port
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("devenv: nats: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	opts.JetStream, opts.StoreDir = true, cfg.StoreDir
	opts.NoSigs, opts.NoLog = true, true
	// Bounded so a runaway test cannot fill the disk.
	opts.JetStreamMaxStore, opts.JetStreamMaxMemory = 8<<30, 1<<30
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("devenv: nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("devenv: nats: not ready after 15s")
	}
	return &NATS{Server: s, URL: s.ClientURL()}, nil
}

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
}
