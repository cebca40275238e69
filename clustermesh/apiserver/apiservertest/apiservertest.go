// Package apiservertest runs weft-apiservers in the test process: a
// clustermesh directory made by clustermesh.Enable in a temporary
// directory, a served etcd on free loopback ports, the admin API on a unix
// socket, and a real cluster store (embedded etcd) it mirrors.
//
// It depends on apiserver, clustermesh and kvstore/kvstoretest.
package apiservertest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcdserver"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/statetest"
)

// Cluster is one cluster: its store and its apiserver.
type Cluster struct {
	Name  string
	ID    uint32
	Dir   clustermesh.Dir
	Store kvstoretest.Server // the cluster store
	Cfg   apiserver.Config

	t      testing.TB
	cancel context.CancelFunc
	done   chan error
}

// Options tune Start.
type Options struct {
	Routing  string // default tunnel
	PodCIDR  string // default 10.<99+id>.0.0/16
	Modify   func(*apiserver.Config)
	NoServer bool   // only enable, do not start
	Root     string // parent of the cluster's directory (default: a temporary one)
	// Store is the cluster store to mirror (default: a new embedded etcd).
	Store kvstoretest.Server
}

// Start enables cluster name/id in a temporary directory, starts a cluster
// store and the apiserver; both stop when the test ends.
func Start(t testing.TB, name string, id uint32, o Options) *Cluster {
	t.Helper()
	if o.Routing == "" {
		o.Routing = "tunnel"
	}
	if o.PodCIDR == "" {
		o.PodCIDR = fmt.Sprintf("10.%d.0.0/16", 99+id)
	}
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.Store == nil {
		o.Store = kvstoretest.StartEtcd(t)
	}
	c := &Cluster{Name: name, ID: id, Dir: clustermesh.Dir(filepath.Join(o.Root, name)), Store: o.Store, t: t}
	store, err := etcdserver.FreeURL("https")
	if err != nil {
		t.Fatal(err)
	}
	// The peer URL is the client port + 1: take a port whose successor is free too.
	cfg := apiserver.DefaultConfig()
	cfg.ClusterName, cfg.ClusterID, cfg.RoutingMode = name, id, o.Routing
	cfg.PodCIDRPool = []string{o.PodCIDR}
	cfg.Dir = string(c.Dir)
	cfg.StoreListen = []string{store}
	front, err := etcdserver.FreeURL("https")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteListen = []string{front}
	cfg.AdminListen = []string{"unix://" + c.Dir.Path(clustermesh.AdminSocket)}
	cfg.MetricsListen = ""
	cfg.KVStore = c.Store.Config()
	cfg.HeartbeatInterval = 500 * time.Millisecond
	cfg.GCInterval = time.Second
	if o.Modify != nil {
		o.Modify(&cfg)
	}
	c.Cfg = cfg
	file := map[string]any{"routing-mode": cfg.RoutingMode, "pod-cidr-pool": cfg.PodCIDRPool, "store-listen": cfg.StoreListen,
		"remote-listen": cfg.RemoteListen, "admin-listen": cfg.AdminListen, "kvstore-endpoints": cfg.KVStore.Endpoints}
	if err := clustermesh.Enable(clustermesh.EnableOptions{Dir: c.Dir, Cluster: name, ID: id, Hosts: []string{"127.0.0.1"}, Config: file}); err != nil {
		t.Fatal(err)
	}
	if o.NoServer {
		return c
	}
	for attempt := 0; ; attempt++ {
		err := c.start(t)
		if err == nil {
			return c
		}
		// The peer port (client port + 1) may be taken: new ports.
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start apiserver of %s: %v", name, err)
		}
		if c.Cfg.StoreListen[0], err = etcdserver.FreeURL("https"); err != nil {
			t.Fatal(err)
		}
	}
}

// Restart starts the apiserver (again), stopping a running one first.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	if err := c.start(t); err != nil {
		t.Fatalf("restart apiserver of %s: %v", c.Name, err)
	}
}

func (c *Cluster) start(t testing.TB) error {
	srv, err := apiserver.New(context.Background(), c.Cfg, statetest.Logger(t))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan error, 1)
	go func() { c.done <- srv.Run(ctx) }()
	t.Cleanup(c.Stop)
	return nil
}

// Stop stops the apiserver (idempotent) and fails the test if Run failed.
func (c *Cluster) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil && !errors.Is(err, context.Canceled) {
		c.t.Errorf("apiserver of %s: %v", c.Name, err)
	}
	c.cancel = nil
}

// Admin is an admin API client with the admin certificate.
func (c *Cluster) Admin(t testing.TB) adminapi.AdminClient {
	t.Helper()
	cl, closeFn, err := clustermesh.DialAdmin(c.Dir, c.Cfg.AdminListen[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	return cl
}

// RemoteConfig reaches the read-only front, the way a remote cluster
// does, with the certificate pair certFile/keyFile (signed by SignRemote).
func (c *Cluster) RemoteConfig(certFile, keyFile string) kvstore.Config {
	cfg := c.ServedConfig(certFile, keyFile)
	cfg.Endpoints = c.Cfg.RemoteListen
	return cfg
}

// ServedConfig reaches the served store with the certificate pair
// <dir>/<name>.crt/.key (or certFile/keyFile when given).
func (c *Cluster) ServedConfig(certFile, keyFile string) kvstore.Config {
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints = c.Cfg.StoreListen
	cfg.DialTimeout = 5 * time.Second
	cfg.RateLimit = kvstore.RateLimit{}
	cfg.TLS = kvstore.TLSFiles{CAFile: c.Dir.Path(clustermesh.CAFile), CertFile: certFile, KeyFile: keyFile}
	return cfg
}
