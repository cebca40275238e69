package clustermesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
)

// remoteKinds are the synced canaries a remote must have written before
// its records are trusted to be complete.
var remoteKinds = []string{records.KindNodes, records.KindIPCache, records.KindIdentities}

// remoteCluster is the connection to one remote cluster and what was
// learnt from it.
type remoteCluster struct {
	m    *Mesh
	name string
	keys records.Keys // of the remote's served store (always kvstore.DefaultPrefix)
	log  *slog.Logger

	runMu  sync.Mutex // serialises start and stop
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	rec       *records.Remote
	cfg       records.ClusterConfig // zero until its cluster-config was read
	connected bool
	listed    map[string]bool // kinds listed completely (in this or an earlier session)
	lastSync  time.Time       // when a listing last completed with every kind listed
	lastErr   string
	since     time.Time               // when connected last changed (or the first attempt began)
	rejected  map[string]uint64       // records refused, by reason (Reject*)
	nodes     map[string]records.Node // by remote store key
	ips       map[netip.Addr]records.IPCacheEntry
	ids       map[records.ID]records.Labels
	services  map[string]records.Service
}

func newRemoteCluster(m *Mesh, name string) *remoteCluster {
	return &remoteCluster{m: m, name: name, keys: records.NewKeys(kvstore.DefaultPrefix), log: m.log.With("remote", name), listed: map[string]bool{}, rejected: map[string]uint64{},
		nodes: map[string]records.Node{}, ips: map[netip.Addr]records.IPCacheEntry{}, ids: map[records.ID]records.Labels{},
		services: map[string]records.Service{}}
}

// start (re)connects with rec; an unchanged record keeps the connection.
func (r *remoteCluster) start(ctx context.Context, rec records.Remote) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	r.mu.Lock()
	same := r.rec != nil && sameRemote(*r.rec, rec) && r.cancel != nil
	r.rec = &rec
	r.mu.Unlock()
	if same {
		return
	}
	r.stopLocked()
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		r.loop(ctx)
	}(r.done)
}

func (r *remoteCluster) stop() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	r.stopLocked()
}

func (r *remoteCluster) stopLocked() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// loop connects, and reconnects with capped backoff, until ctx ends.
func (r *remoteCluster) loop(ctx context.Context) {
	backoff := kvstore.NewBackoff(meshBackoffMin, meshBackoffMax)
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		if r.connected || r.since.IsZero() {
			r.since = time.Now()
		}
		r.connected = false
		r.lastErr = err.Error()
		complete := len(r.listed) == len(remoteKinds)+1
		r.mu.Unlock()
		if complete {
			backoff.Reset()
		}
		delay := backoff.Next()
		r.log.Warn("remote cluster unreachable; keeping its last known state and retrying", "err", err, "retry-in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// session connects once, checks the remote's cluster-config, waits for
// its synced canaries, then follows its records until the connection or
// its heartbeat fails.
func (r *remoteCluster) session(ctx context.Context) error {
	r.mu.Lock()
	rec := *r.rec
	r.mu.Unlock()
	cfg, err := r.storeConfig(ctx, rec)
	if err != nil {
		return err
	}
	client, err := etcd.New(ctx, cfg, r.log)
	if err != nil {
		return fmt.Errorf("connect to %s at %v: %w", r.name, rec.Endpoints, err)
	}
	defer client.Close(context.WithoutCancel(ctx))
	cc, err := r.checkConfig(ctx, client)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cfg = cc
	r.mu.Unlock()
	if err := r.waitCanaries(ctx, client); err != nil {
		return err
	}
	r.mu.Lock()
	r.connected, r.lastErr, r.since = true, "", time.Now()
	r.mu.Unlock()
	r.log.Info("connected to remote cluster", "id", cc.ID, "endpoints", rec.Endpoints)
	keys := records.NewKeys(client.Prefix())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.watch(gctx, client, keys.NodesPrefix(r.name), records.KindNodes, r.nodeKind()) })
	g.Go(func() error {
		return r.watch(gctx, client, keys.IPCachePrefix(r.name), records.KindIPCache, r.ipKind())
	})
	g.Go(func() error {
		return r.watch(gctx, client, keys.IdentitiesPrefix(), records.KindIdentities, r.identityKind())
	})
	g.Go(func() error {
		return r.watch(gctx, client, keys.ServicesPrefix(r.name), records.KindServices, r.serviceKind())
	})
	g.Go(func() error { return r.monitor(gctx, client) })
	return g.Wait()
}

// storeConfig reaches the remote's served store with the credentials
// `weft clustermesh connect` left in rec.ClientRef, or, when that directory
// is not on this host, in clustermesh/v1/credentials/<remote> of the local
// store.
func (r *remoteCluster) storeConfig(ctx context.Context, rec records.Remote) (kvstore.Config, error) {
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints, cfg.Prefix, cfg.RateLimit = rec.Endpoints, kvstore.DefaultPrefix, kvstore.RateLimit{}
	dir := rec.ClientRef
	if !exists(filepath.Join(dir, clustermesh.ClientCert)) || !exists(filepath.Join(dir, clustermesh.ClientKey)) {
		var err error
		if dir, err = r.credentialsFromStore(ctx); err != nil {
			return cfg, fmt.Errorf("credentials for remote %s: no %s/%s, and %w", r.name, rec.ClientRef, clustermesh.ClientCert, err)
		}
	}
	cfg.TLS = kvstore.TLSFiles{CAFile: filepath.Join(dir, clustermesh.CAFile),
		CertFile: filepath.Join(dir, clustermesh.ClientCert), KeyFile: filepath.Join(dir, clustermesh.ClientKey)}
	if !exists(cfg.TLS.CAFile) && rec.CA != "" {
		// The record carries the CA: use it when the directory has none.
		p := filepath.Join(r.m.cfg.StateDir, r.name+"-ca.crt")
		if err := os.MkdirAll(r.m.cfg.StateDir, 0o700); err != nil {
			return cfg, fmt.Errorf("create %s: %w", r.m.cfg.StateDir, err)
		}
		if err := clustermesh.WriteFile(p, []byte(rec.CA), 0o644); err != nil {
			return cfg, err
		}
		cfg.TLS.CAFile = p
	}
	return cfg, nil
}

// credentialsFromStore writes the credentials kept in the local store into
// <state-dir>/clustermesh/<remote>/ and returns that directory.
func (r *remoteCluster) credentialsFromStore(ctx context.Context) (string, error) {
	key := clustermesh.CredentialsKey(r.m.store.Prefix(), r.name)
	kv, err := r.m.store.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("read %s from the local store: %w (run `weft clustermesh connect` again)", key, err)
	}
	c, err := clustermesh.DecodeCredentials(kv.Key, kv.Value)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(r.m.cfg.StateDir, r.name)
	if err := clustermesh.WritePair(dir, "client", []byte(c.Cert), []byte(c.Key)); err != nil {
		return "", err
	}
	if err := clustermesh.WriteFile(filepath.Join(dir, clustermesh.CAFile), []byte(c.CA), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// checkConfig reads the remote's cluster-config and refuses a cluster this
// mesh cannot hold: wrong name, this cluster's id, another remote's id,
// another routing mode.
func (r *remoteCluster) checkConfig(ctx context.Context, client kvstore.Client) (records.ClusterConfig, error) {
	keys := records.NewKeys(client.Prefix())
	kv, err := client.Get(ctx, keys.ClusterConfig(r.name))
	if err != nil {
		return records.ClusterConfig{}, fmt.Errorf("read cluster-config/%s of the remote: %w", r.name, err)
	}
	cc, err := keys.DecodeClusterConfig(kv.Key, kv.Value)
	if err == nil {
		err = cc.Validate()
	}
	if err != nil {
		return records.ClusterConfig{}, fmt.Errorf("remote %s: %w", r.name, err)
	}
	local := r.m.cfg.Cluster
	switch {
	case cc.ID == local.ID:
		return cc, fmt.Errorf("remote %s has cluster id %d, the id of this cluster %s: cluster ids must be unique in a mesh", r.name, cc.ID, local.Name)
	case cc.Routing != local.Routing:
		return cc, fmt.Errorf("remote %s uses %s routing, this cluster %s: a mesh uses one routing mode", r.name, cc.Routing, local.Routing)
	}
	if other := r.m.idInUse(r.name, cc.ID); other != "" {
		return cc, fmt.Errorf("remote %s has cluster id %d, already used by remote %s: cluster ids must be unique in a mesh", r.name, cc.ID, other)
	}
	return cc, nil
}

// waitCanaries returns once synced/<remote>/<kind> exists for every kind.
func (r *remoteCluster) waitCanaries(ctx context.Context, client kvstore.Client) error {
	keys := records.NewKeys(client.Prefix())
	want := map[string]bool{}
	for _, k := range remoteKinds {
		want[keys.Synced(r.name, k)] = true
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.setErr(fmt.Sprintf("waiting for the synced canaries of %s", r.name))
	for ev := range client.ListAndWatch(wctx, keys.Synced(r.name, "")) {
		if ev.Type == kvstore.EventUpsert && want[ev.Key] {
			delete(want, ev.Key)
			if len(want) == 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("wait for the synced canaries of %s: %w", r.name, errors.Join(ctx.Err(), errors.New("watch ended")))
}

// monitor fails the session when the remote stops delivering: its
// heartbeat cannot be read for unresponsiveAfter (each read bounded by the
// check interval: a paused or partitioned remote answers nothing), or it
// is read but unchanged for staleAfter (judged by change, so clock skew
// does not matter). The loop then reconnects, keeping the remote's state.
func (r *remoteCluster) monitor(ctx context.Context, client kvstore.Client) error {
	t := time.NewTicker(r.m.heartbeatCheck)
	defer t.Stop()
	var last, failingSince time.Time
	lastChange := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		started := time.Now()
		rctx, cancel := context.WithTimeout(ctx, r.m.heartbeatCheck)
		st := client.Status(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case st.Err != nil && failingSince.IsZero():
			failingSince = started
		case st.Err == nil:
			failingSince = time.Time{}
			if !st.Heartbeat.Equal(last) {
				last, lastChange = st.Heartbeat, time.Now()
			}
		}
		if !failingSince.IsZero() && time.Since(failingSince) > r.m.unresponsiveAfter {
			return fmt.Errorf("%s answered no heartbeat read for %v (%v): reconnecting", r.name, time.Since(failingSince).Round(time.Second), st.Err)
		}
		if since := time.Since(lastChange); since > r.m.staleAfter {
			seen := "none read in this session"
			if !last.IsZero() {
				seen = "last " + last.Format(time.RFC3339)
			}
			if st.Err != nil {
				seen += ", " + st.Err.Error()
			}
			return fmt.Errorf("heartbeat of %s unchanged for %v (%s): reconnecting", r.name, since.Round(time.Second), seen)
		}
	}
}
