package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Options configure one member.
type Options struct {
	Name    string // member name, default "default"
	DataDir string // required; survives Stop so a restart keeps the data

	// ClientURLs and PeerURLs the member listens on and advertises.
	// Empty: one free loopback port each.
	ClientURLs []string
	PeerURLs   []string

	// InitialCluster is "name=peerURL,…" for a static multi-member cluster;
	// empty for a single member. ClusterToken tells clusters apart.
	InitialCluster string
	ClusterToken   string

	// ClientTLS serves clients over TLS; with ClientCertAuth a client must
	// present a certificate signed by TrustedCAFile.
	ClientTLS TLS
	PeerTLS   TLS

	// StartTimeout bounds waiting for the member to serve (default 30s).
	StartTimeout time.Duration
	// LogLevel of etcd's own logger: "error" unless set.
	LogLevel string
	// QuotaBackendBytes caps the database size (default etcd's 2 GiB).
	QuotaBackendBytes int64
	// AuthToken selects etcd's auth token type ("simple" default, or
	// "jwt,..."); only relevant once auth is enabled.
	AuthToken string
}

// TLS names the PEM files of a listener.
type TLS struct {
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
}

func (t TLS) enabled() bool { return t.CertFile != "" }

// Server is a running member.
type Server struct {
	opts    Options
	mu      sync.Mutex
	etcd    *embed.Etcd
	stopped bool
}

// pickURLs chooses free local URLs for Start (a variable for tests).
var pickURLs = freeURLs

// Start starts a member and returns once it serves clients (for a cluster
// member: once the cluster has a leader), or fails within StartTimeout.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start etcd: a data directory is required")
	}
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "error"
	}
	// Ports chosen here are free when chosen, not when bound: another
	// process may take one in between. Then new ones, a few times.
	pickClient, pickPeer := len(opts.ClientURLs) == 0, len(opts.PeerURLs) == 0
	var e *embed.Etcd
	for attempt := 0; ; attempt++ {
		var err error
		if pickClient {
			if opts.ClientURLs, err = pickURLs(scheme(opts.ClientTLS), 1); err != nil {
				return nil, err
			}
		}
		if pickPeer {
			if opts.PeerURLs, err = pickURLs(scheme(opts.PeerTLS), 1); err != nil {
				return nil, err
			}
		}
		cfg, err := opts.embedConfig()
		if err != nil {
			return nil, err
		}
		if e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
		if attempt == 3 || !(pickClient || pickPeer) || !(errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")) {
			return nil, fmt.Errorf("start etcd member %s (client %s): %w", opts.Name, strings.Join(opts.ClientURLs, ","), err)
		}
	}
	timer := time.NewTimer(opts.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return &Server{opts: opts, etcd: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("start etcd member %s: %w", opts.Name, err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("start etcd member %s: not ready after %v", opts.Name, opts.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("start etcd member %s: %w", opts.Name, ctx.Err())
	}
}

func (o Options) embedConfig() (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = o.Name
	cfg.Dir = o.DataDir
	cfg.LogLevel = o.LogLevel
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	cfg.QuotaBackendBytes = o.QuotaBackendBytes
	if o.AuthToken != "" {
		cfg.AuthToken = o.AuthToken
	}
	var err error
	if cfg.ListenClientUrls, err = parseURLs(o.ClientURLs); err != nil {
		return nil, fmt.Errorf("client URLs: %w", err)
	}
	if cfg.ListenPeerUrls, err = parseURLs(o.PeerURLs); err != nil {
		return nil, fmt.Errorf("peer URLs: %w", err)
	}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	if o.InitialCluster != "" {
		cfg.InitialCluster = o.InitialCluster
	} else {
		cfg.InitialCluster = cfg.InitialClusterFromName(o.Name)
	}
	if o.ClusterToken != "" {
		cfg.InitialClusterToken = o.ClusterToken
	}
	if o.ClientTLS.enabled() {
		cfg.ClientTLSInfo.CertFile = o.ClientTLS.CertFile
		cfg.ClientTLSInfo.KeyFile = o.ClientTLS.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile = o.ClientTLS.TrustedCAFile
		cfg.ClientTLSInfo.ClientCertAuth = o.ClientTLS.ClientCertAuth
	}
	if o.PeerTLS.enabled() {
		cfg.PeerTLSInfo.CertFile = o.PeerTLS.CertFile
		cfg.PeerTLSInfo.KeyFile = o.PeerTLS.KeyFile
		cfg.PeerTLSInfo.TrustedCAFile = o.PeerTLS.TrustedCAFile
		cfg.PeerTLSInfo.ClientCertAuth = o.PeerTLS.ClientCertAuth
	}
	return cfg, nil
}

// Endpoints are the client URLs.
func (s *Server) Endpoints() []string { return append([]string(nil), s.opts.ClientURLs...) }

// Options returns the options the member runs with (free ports resolved),
// so it can be restarted identically.
func (s *Server) Options() Options { return s.opts }

// Err reports a fatal server error after start.
func (s *Server) Err() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd.Err()
}

// Stop shuts the member down; its data stays in DataDir. Stop is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		s.etcd.Close()
	}
}

// Restart stops the member and starts it again with the same options.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// start starts a stopped member again.
func (s *Server) start(ctx context.Context) error {
	n, err := Start(ctx, s.opts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etcd, s.stopped = n.etcd, false
	return nil
}

func scheme(t TLS) string {
	if t.enabled() {
		return "https"
	}
	return "http"
}

func parseURLs(raw []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(raw))
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("URL %q: expected scheme://host:port", r)
		}
		out = append(out, *u)
	}
	return out, nil
}

// freeURLs reserves n free loopback ports (closed again before etcd binds them).
func freeURLs(scheme string, n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		out = append(out, scheme+"://127.0.0.1:"+strconv.Itoa(port))
	}
	return out, nil
}

// FreeURL returns one free loopback URL, for callers laying out a cluster.
func FreeURL(scheme string) (string, error) {
	urls, err := freeURLs(scheme, 1)
	if err != nil {
		return "", err
	}
	return urls[0], nil
}
