package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/readproxy"
	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/kvstore/etcdserver"
	"github.com/weftnet/weft/state/records"
)

// Server is a running weft-apiserver.
type Server struct {
	cfg Config
	log *slog.Logger
	dir clustermesh.Dir
	ca  *clustermesh.CA
	// remoteCA signs remote clusters' certificates; only front trusts it.
	remoteCA *clustermesh.CA
	front    *readproxy.Proxy
	remoteL  []net.Listener
	cc       records.ClusterConfig
	m        *metrics

	etcd   *etcdserver.Server
	served *etcd.Client   // the served store, as root
	source kvstore.Client // the cluster store (= served when embedded)
	admin  []net.Listener
	k8s    *k8s.Source // nil unless the Kubernetes source is enabled

	compacted int64 // last compaction revision; only the collect loop uses it
}

// New loads the CA, starts the served store, turns its authentication on,
// connects to the cluster store, publishes cluster-config/<cluster> and
// opens the admin listeners. Nothing is served until Run.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.With("component", "apiserver", "cluster", cfg.ClusterName), dir: clustermesh.Dir(cfg.Dir), m: newMetrics(cfg.ClusterName)}
	s.cc = cfg.clusterConfig()
	var err error
	if s.ca, err = clustermesh.LoadCA(cfg.Dir); err != nil {
		return nil, fmt.Errorf("%w (create the cluster's clustermesh directory with `weft clustermesh enable %s`)", err, cfg.ClusterName)
	}
	if s.etcd, err = s.startStore(ctx); err != nil {
		return nil, err
	}
	if err := s.connect(ctx); err != nil {
		s.close()
		return nil, err
	}
	if err := s.startKubernetes(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *Server) connect(ctx context.Context) error {
	var err error
	if s.served, err = etcd.New(ctx, s.storeConfig(clustermesh.UserRoot), s.log); err != nil {
		return fmt.Errorf("connect to the served store: %w", err)
	}
	if err := ensureAuth(ctx, s.served.Raw(), s.served.Prefix(), s.cfg.ClusterName); err != nil {
		return err
	}
	if s.cfg.EmbeddedStore {
		s.source = s.served
	} else {
		s.log.Info("connecting to the cluster store", "backend", s.cfg.KVStore.Backend, "endpoints", s.cfg.KVStore.Endpoints)
		if s.source, err = dial.Open(ctx, s.cfg.KVStore, s.log); err != nil {
			return fmt.Errorf("connect to the cluster store: %w", err)
		}
	}
	for _, c := range slices.Compact([]kvstore.Client{s.source, s.served}) {
		if err := publishClusterConfig(ctx, c, s.cc); err != nil {
			return err
		}
	}
	if err := s.restoreReaders(ctx); err != nil {
		return err
	}
	if s.cfg.EmbeddedStore {
		// The store is the truth: every kind is complete by definition.
		for _, kind := range s.canaryKinds() {
			if err := writeCanary(ctx, s.served.Raw(), records.NewKeys(s.served.Prefix()), s.cc.Name, kind); err != nil {
				return fmt.Errorf("write synced canary %s: %w", kind, err)
			}
		}
	}
	for _, a := range s.cfg.AdminListen {
		network, addr, _ := splitListen(a)
		if network == "unix" {
			os.Remove(addr) // left by a killed apiserver
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			return fmt.Errorf("listen for the admin API on %s: %w", a, err)
		}
		if network == "unix" {
			if err := os.Chmod(addr, 0o600); err != nil {
				l.Close()
				return fmt.Errorf("restrict %s: %w", addr, err)
			}
		}
		s.admin = append(s.admin, l)
	}
	return s.openFront()
}

// publishClusterConfig creates cluster-config/<cluster>, or checks that the
// one in the store has the same id and routing mode.
func publishClusterConfig(ctx context.Context, c kvstore.Client, cc records.ClusterConfig) error {
	keys := records.NewKeys(c.Prefix())
	key := keys.ClusterConfig(cc.Name)
	val, err := records.Encode(key, &cc)
	if err != nil {
		return err
	}
	if _, err := c.Create(ctx, key, val); err == nil || !errors.Is(err, kvstore.ErrExists) {
		if err != nil {
			return fmt.Errorf("publish cluster configuration: %w", err)
		}
		return nil
	}
	kv, err := c.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read cluster configuration: %w", err)
	}
	have, err := keys.DecodeClusterConfig(key, kv.Value)
	if err != nil {
		return err
	}
	if have.ID != cc.ID || have.Routing != cc.Routing {
		return fmt.Errorf("cluster %s exists in the store with id %d and routing %s; this apiserver is configured with id %d and routing %s: give it the cluster's values",
			cc.Name, have.ID, have.Routing, cc.ID, cc.Routing)
	}
	if have.GlobalCIDR != cc.GlobalCIDR {
		if err := refuseGlobalChange(ctx, c, have, cc); err != nil {
			return err
		}
	}
	_, err = c.UpdateIfDifferent(ctx, key, val)
	return err
}

// refuseGlobalChange refuses a new global CIDR for a cluster that is
// connected to others (it reads them or they read it): they know its pods
// by addresses of the old range until connect runs again, so the change
// waits for a disconnect.
func refuseGlobalChange(ctx context.Context, c kvstore.Client, have, want records.ClusterConfig) error {
	connected, err := connectedClusters(ctx, c)
	if err != nil {
		return err
	}
	if len(connected) == 0 {
		return nil
	}
	show := func(p netip.Prefix) string {
		if !p.IsValid() {
			return "none"
		}
		return p.String()
	}
	return fmt.Errorf("--global-cidr %s: cluster %s has the global CIDR %s and is connected to %s, which know its pods by it; "+
		"disconnect first (weft clustermesh disconnect %s <cluster>, for each), then change it and connect again, or keep %s",
		show(want.GlobalCIDR), want.Name, show(have.GlobalCIDR), strings.Join(connected, ", "), want.Name, show(have.GlobalCIDR))
}

// connectedClusters lists the clusters this one reads (remotes) or that
// read it (readers), sorted.
func connectedClusters(ctx context.Context, c kvstore.Client) ([]string, error) {
	var out []string
	for _, dir := range []string{records.NewKeys(c.Prefix()).Remote(""), clustermesh.ReadersPrefix(c.Prefix())} {
		kvs, err := c.List(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("list connected clusters: %w", err)
		}
		for _, kv := range kvs {
			out = append(out, strings.TrimPrefix(kv.Key, dir))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	g, ctx := errgroup.WithContext(ctx)
	if !s.cfg.EmbeddedStore {
		mir := newMirror(s.source, s.served.Raw(), s.served.Prefix(), s.cc, s.m, s.log)
		for _, k := range mir.kinds {
			g.Go(func() error {
				if k.kind == records.KindServices && s.waitKubernetesSynced(ctx) != nil {
					return nil
				}
				return mir.run(ctx, k)
			})
		}
	} else if s.k8s != nil {
		g.Go(func() error { return s.embeddedServicesCanary(ctx) })
	}
	if s.k8s != nil {
		// The MCS-API importer learns other clusters' exports here.
		exports := newRemoteExports(s.source, s.dir, s.cc.Name, s.log)
		s.k8s.SetRemoteExports(exports)
		g.Go(func() error { return exports.run(ctx) })
		g.Go(func() error { return s.k8s.Run(ctx) })
	}
	g.Go(func() error { return s.heartbeat(ctx) })
	g.Go(func() error { return s.collect(ctx) })
	g.Go(func() error { return s.serveAdmin(ctx) })
	g.Go(func() error { return s.front.Serve(ctx, s.remoteL) })
	if s.cfg.MetricsListen != "" {
		g.Go(func() error { return s.m.serve(ctx, s.cfg.MetricsListen) })
	}
	if s.cfg.RelayListen != "" {
		g.Go(func() error { return s.runRelay(ctx) })
	}
	g.Go(func() error {
		select {
		case err := <-s.etcd.Err():
			return fmt.Errorf("served store failed: %w", err)
		case <-ctx.Done():
			return nil
		}
	})
	s.log.Info("apiserver ready", "store", s.cfg.StoreListen, "remotes", s.cfg.remoteListen(), "admin", s.cfg.AdminListen, "embedded-store", s.cfg.EmbeddedStore)
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// heartbeat refreshes the heartbeat key of both stores; remote agents
// reconnect when it goes stale.
func (s *Server) heartbeat(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		now := time.Now()
		for _, c := range slices.Compact([]kvstore.Client{s.source, s.served}) {
			if err := writeHeartbeat(ctx, c, now); err != nil && ctx.Err() == nil {
				s.log.Warn("write heartbeat", "err", err)
			}
		}
		s.m.heartbeat.Set(float64(now.Unix()))
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range append(s.admin, s.remoteL...) {
		l.Close()
	}
	if s.source != nil && s.source != kvstore.Client(s.served) {
		s.source.Close(ctx)
	}
	if s.served != nil {
		s.served.Close(ctx)
	}
	if s.etcd != nil {
		s.etcd.Stop()
	}
}
