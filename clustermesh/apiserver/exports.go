package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
)

// remoteExports follows the service records of every connected cluster (in
// its served store, with the credentials `clustermesh connect` left in the
// clustermesh directory) and keeps those a ServiceExport exported, for the
// Kubernetes source's MCS-API importer (k8s.RemoteExports).
type remoteExports struct {
	local   kvstore.Client // this cluster's store: the Remote records
	dir     clustermesh.Dir
	self    string
	log     *slog.Logger
	changed chan struct{}

	mu       sync.Mutex
	services map[string]map[string]records.Service // cluster → key → exported record
	running  map[string]context.CancelFunc         // by cluster
}

func newRemoteExports(local kvstore.Client, dir clustermesh.Dir, self string, log *slog.Logger) *remoteExports {
	return &remoteExports{local: local, dir: dir, self: self, log: log.With("component", "mcs-exports"),
		changed: make(chan struct{}, 1), services: map[string]map[string]records.Service{}, running: map[string]context.CancelFunc{}}
}

// Exported lists the exported services of every connected cluster.
func (r *remoteExports) Exported() []records.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []records.Service
	for _, c := range slices.Sorted(maps.Keys(r.services)) {
		for _, k := range slices.Sorted(maps.Keys(r.services[c])) {
			out = append(out, r.services[c][k])
		}
	}
	return out
}

// Changed is signalled when Exported changed.
func (r *remoteExports) Changed() <-chan struct{} { return r.changed }

func (r *remoteExports) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// run follows the Remote records until ctx ends.
func (r *remoteExports) run(ctx context.Context) error {
	keys := records.NewKeys(r.local.Prefix())
	for ev := range r.local.ListAndWatch(ctx, keys.Remote("")) {
		switch ev.Type {
		case kvstore.EventUpsert:
			rec, err := keys.DecodeRemote(ev.Key, ev.Value)
			if err == nil {
				err = rec.Validate()
			}
			if err != nil || rec.Cluster == r.self {
				continue
			}
			r.start(ctx, rec)
		case kvstore.EventDelete:
			r.stop(ev.Key[len(keys.Remote("")):])
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cancel := range r.running {
		cancel()
	}
	return nil
}

func (r *remoteExports) stop(cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel := r.running[cluster]; cancel != nil {
		cancel()
		delete(r.running, cluster)
	}
	if len(r.services[cluster]) > 0 {
		r.notify()
	}
	delete(r.services, cluster)
}

// start (re)connects to rec's served store and follows its services.
func (r *remoteExports) start(ctx context.Context, rec records.Remote) {
	r.stop(rec.Cluster)
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.running[rec.Cluster] = cancel
	r.mu.Unlock()
	go func() {
		for ctx.Err() == nil {
			if err := r.follow(ctx, rec); err != nil && ctx.Err() == nil {
				r.log.Warn("follow a remote cluster's exported services; retrying", "remote", rec.Cluster, "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
}

func (r *remoteExports) follow(ctx context.Context, rec records.Remote) error {
	dir := rec.ClientRef
	if dir == "" || !fileExists(filepath.Join(dir, clustermesh.ClientCert)) {
		// Another apiserver of the cluster connected it (on another host):
		// its credentials are in the cluster's store.
		var err error
		if dir, err = r.credentialsFromStore(ctx, rec.Cluster); err != nil {
			return err
		}
	}
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints, cfg.Prefix = rec.Endpoints, kvstore.DefaultPrefix
	cfg.TLS = kvstore.TLSFiles{CAFile: filepath.Join(dir, clustermesh.CAFile),
		CertFile: filepath.Join(dir, clustermesh.ClientCert), KeyFile: filepath.Join(dir, clustermesh.ClientKey)}
	client, err := etcd.New(ctx, cfg, r.log)
	if err != nil {
		return err
	}
	defer client.Close(context.WithoutCancel(ctx))
	keys := records.NewKeys(client.Prefix())
	seen := map[string]bool{}
	listing := true
	for ev := range client.ListAndWatch(ctx, keys.ServicesPrefix(rec.Cluster)) {
		r.mu.Lock()
		have := r.services[rec.Cluster]
		if have == nil {
			have = map[string]records.Service{}
			r.services[rec.Cluster] = have
		}
		changed := false
		switch ev.Type {
		case kvstore.EventUpsert:
			s, err := keys.DecodeService(ev.Key, ev.Value)
			_, had := have[ev.Key]
			if listing {
				seen[ev.Key] = true
			}
			switch {
			case err == nil && s.Exported && s.Cluster == rec.Cluster:
				have[ev.Key], changed = s, true
			case had:
				delete(have, ev.Key)
				changed = true
			}
		case kvstore.EventDelete:
			if _, had := have[ev.Key]; had {
				delete(have, ev.Key)
				changed = true
			}
		case kvstore.EventListDone:
			if listing {
				for k := range have {
					if !seen[k] {
						delete(have, k)
						changed = true
					}
				}
				listing, seen = false, nil
			}
		}
		r.mu.Unlock()
		if changed {
			r.notify()
		}
	}
	return ctx.Err()
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// credentialsFromStore writes the credentials `clustermesh connect` kept
// in the cluster's store for remote into this apiserver's clustermesh
// directory and returns where.
func (r *remoteExports) credentialsFromStore(ctx context.Context, remote string) (string, error) {
	key := clustermesh.CredentialsKey(r.local.Prefix(), remote)
	kv, err := r.local.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("no credentials for %s here or in the store (%s): %w", remote, key, err)
	}
	c, err := clustermesh.DecodeCredentials(kv.Key, kv.Value)
	if err != nil {
		return "", err
	}
	dir := r.dir.Remote(remote)
	if err := clustermesh.WritePair(dir, "client", []byte(c.Cert), []byte(c.Key)); err != nil {
		return "", err
	}
	return dir, clustermesh.WriteFile(filepath.Join(dir, clustermesh.CAFile), []byte(c.CA), 0o644)
}
