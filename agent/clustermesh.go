package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Clustermesh timing: how often a remote's heartbeat is read, when it
// counts as stale (the apiserver refreshes it every 5 s by default), and
// the capped backoff between connection attempts.
const (
	meshHeartbeatCheck = 2 * time.Second
	meshStaleAfter     = 20 * time.Second
	meshBackoffMin     = 500 * time.Millisecond
	meshBackoffMax     = 30 * time.Second
)

// clusterMesh follows clustermesh/v1/remotes/ in the local store and keeps
// one connection per remote cluster, whose nodes, ipcache entries and
// identities go through the agent's own node table, ipcache sync and
// policy engine. A remote's state is kept through outages and restarts
// until it has been listed again; a remote whose record is deleted is drained.
type clusterMesh struct {
	a        *Agent
	log      *slog.Logger
	stateDir string

	heartbeatCheck, staleAfter time.Duration

	mu      sync.Mutex
	remotes map[string]*remoteCluster
	// onServices, when set, is called after a remote cluster's services
	// changed (the hook global services build on; see remoteServices).
	onServices func()
}

func newClusterMesh(a *Agent, stateDir string, log *slog.Logger) *clusterMesh {
	return &clusterMesh{a: a, log: log.With("component", "clustermesh"), stateDir: stateDir,
		heartbeatCheck: meshHeartbeatCheck, staleAfter: meshStaleAfter, remotes: map[string]*remoteCluster{}}
}

// run watches the remote records until ctx ends.
func (m *clusterMesh) run(ctx context.Context) error {
	keys := m.a.keys
	listed := false
	for ev := range m.a.store.ListAndWatch(ctx, keys.Remote("")) {
		switch ev.Type {
		case kvstore.EventUpsert:
			r, err := keys.DecodeRemote(ev.Key, ev.Value)
			if err == nil {
				err = r.Validate()
			}
			if err != nil {
				m.log.Warn("ignoring a remote cluster record", "key", ev.Key, "err", err)
				continue
			}
			if r.Cluster == m.a.cluster.Name {
				m.log.Warn("ignoring a remote cluster record naming this cluster", "key", ev.Key)
				continue
			}
			m.upsert(ctx, r)
		case kvstore.EventDelete:
			name := ev.Key[len(keys.Remote("")):]
			m.remove(ctx, name)
		case kvstore.EventListDone:
			if !listed {
				listed = true
				m.dropUnlisted(ctx)
			}
		}
	}
	m.mu.Lock()
	rs := make([]*remoteCluster, 0, len(m.remotes))
	for _, r := range m.remotes {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	for _, r := range rs {
		r.stop() // state stays: the next start restores it
	}
	return ctx.Err()
}

// upsert starts a remote, or restarts it with a changed record.
func (m *clusterMesh) upsert(ctx context.Context, rec records.Remote) {
	m.mu.Lock()
	r, ok := m.remotes[rec.Cluster]
	if !ok {
		r = newRemoteCluster(m, rec.Cluster)
		m.remotes[rec.Cluster] = r
	}
	m.mu.Unlock()
	r.start(ctx, rec)
}

// remove disconnects a remote and drains everything learnt from it.
func (m *clusterMesh) remove(ctx context.Context, name string) {
	m.mu.Lock()
	r, ok := m.remotes[name]
	delete(m.remotes, name)
	m.mu.Unlock()
	if !ok {
		return
	}
	r.stop()
	r.drain(ctx)
	m.log.Info("remote cluster disconnected and drained", "remote", name)
}

// dropUnlisted drains remotes restored from the last run whose record is
// gone (disconnected while this agent was down).
func (m *clusterMesh) dropUnlisted(ctx context.Context) {
	m.mu.Lock()
	var gone []string
	for name, r := range m.remotes {
		if !r.hasRecord() {
			gone = append(gone, name)
		}
	}
	m.mu.Unlock()
	for _, name := range gone {
		m.remove(ctx, name)
	}
}

// idInUse names another remote already connected with cluster id id.
func (m *clusterMesh) idInUse(name string, id uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for other, r := range m.remotes {
		if other != name && r.clusterID() == id {
			return other
		}
	}
	return ""
}

// status reports every remote for StatusResponse.remote_clusters.
func (m *clusterMesh) status() []*agentapi.RemoteCluster {
	m.mu.Lock()
	rs := make([]*remoteCluster, 0, len(m.remotes))
	for _, r := range m.remotes {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]*agentapi.RemoteCluster, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.status())
	}
	slices.SortFunc(out, func(a, b *agentapi.RemoteCluster) int { return cmpString(a.Name, b.Name) })
	return out
}

// remoteServices returns, by cluster, every remote cluster's service
// records and pods (its ipcache entries with their identities' labels):
// what global services merge from. The services component pulls it when
// it recomputes.
func (m *clusterMesh) remoteServices() map[string]remoteServices {
	m.mu.Lock()
	rs := make(map[string]*remoteCluster, len(m.remotes))
	for name, r := range m.remotes {
		rs[name] = r
	}
	m.mu.Unlock()
	out := make(map[string]remoteServices, len(rs))
	for name, r := range rs {
		out[name] = remoteServices{services: r.serviceList(), pods: r.pods()}
	}
	return out
}

func (m *clusterMesh) servicesChanged() {
	if m.onServices != nil {
		m.onServices()
	}
}
