package clustermesh

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	svcsync "github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
)

// Clustermesh timing: how often a remote's heartbeat is read, when it
// counts as stale (the apiserver refreshes it every 5 s by default), and
// the capped backoff between connection attempts.
const (
	meshHeartbeatCheck = 1 * time.Second
	// A remote that answers no heartbeat read for this long is torn down
	// and reconnected (its state is kept meanwhile).
	meshUnresponsiveAfter = 5 * time.Second
	// A remote whose heartbeat is read but does not change for this long
	// (its apiserver's writer is stuck; it writes every 5 s by default).
	meshStaleAfter = 20 * time.Second
	meshBackoffMin = 500 * time.Millisecond
	// Reconnection attempts stay this frequent, so a remote that comes
	// back is re-established within seconds.
	meshBackoffMax = 5 * time.Second
)

// Mesh follows clustermesh/v1/remotes/ in the local store and keeps
// one connection per remote cluster, whose nodes, ipcache entries and
// identities go through the agent's own node table, ipcache sync and
// policy engine. A remote's state is kept through outages and restarts
// until it has been listed again; a remote whose record is deleted is drained.
type Mesh struct {
	cfg     Config
	store   kvstore.Client
	keys    records.Keys
	nodes   Nodes
	ipcache IPCache
	policy  Policy
	dp      PinnedMaps
	log     *slog.Logger

	heartbeatCheck, unresponsiveAfter, staleAfter time.Duration

	mu            sync.Mutex
	remotes       map[string]*remoteCluster
	remotesListed bool // the local store's remote records were listed once
	// onServices, when set, is called after a remote cluster's services
	// changed (the hook global services build on; see RemoteServices).
	onServices func()
}

// Config is the node and cluster a Mesh serves.
type Config struct {
	Node     string
	NodeIP   netip.Addr
	Cluster  records.ClusterConfig // this cluster
	StateDir string                // remote clusters' state and credentials
}

// Nodes is the node table remote nodes join (*agent/nodes.Table).
type Nodes interface {
	Upsert(ctx context.Context, key string, n records.Node)
	Remove(ctx context.Context, key string)
	LocalNodeWith(ip netip.Addr) string // the node of this cluster with that underlay address
}

// IPCache is where remote pods' entries go (*agent/ipcache.Sync).
type IPCache interface {
	OnChange(c ipcache.Change)
}

// Policy is the engine remote identities join (*agent/policy.Engine).
type Policy interface {
	UpsertRemoteIdentity(id records.ID, ls records.Labels)
	DeleteRemoteIdentity(id records.ID)
}

// PinnedMaps gives the pinned BPF maps, from which a restart restores what
// remote clusters had announced (*datapath.Datapath).
type PinnedMaps interface {
	Objects() *bpf.Objects
}

// New returns the clustermesh component of the node cfg names; keys are
// the local store's.
func New(store kvstore.Client, keys records.Keys, cfg Config, nodes Nodes, ipc IPCache, pol Policy, dp PinnedMaps, log *slog.Logger) *Mesh {
	return &Mesh{cfg: cfg, store: store, keys: keys, nodes: nodes, ipcache: ipc, policy: pol, dp: dp,
		log:            log.With("component", "clustermesh"),
		heartbeatCheck: meshHeartbeatCheck, unresponsiveAfter: meshUnresponsiveAfter, staleAfter: meshStaleAfter,
		remotes: map[string]*remoteCluster{}}
}

// Run watches the remote records until ctx ends.
func (m *Mesh) Run(ctx context.Context) error {
	keys := m.keys
	listed := false
	for ev := range m.store.ListAndWatch(ctx, keys.Remote("")) {
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
			if r.Cluster == m.cfg.Cluster.Name {
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
				m.mu.Lock()
				m.remotesListed = true
				m.mu.Unlock()
				m.servicesChanged()
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
func (m *Mesh) upsert(ctx context.Context, rec records.Remote) {
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
func (m *Mesh) remove(ctx context.Context, name string) {
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
func (m *Mesh) dropUnlisted(ctx context.Context) {
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
func (m *Mesh) idInUse(name string, id uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for other, r := range m.remotes {
		if other != name && r.clusterID() == id {
			return other
		}
	}
	return ""
}

// Status reports every remote for StatusResponse.remote_clusters.
func (m *Mesh) Status() []*agentapi.RemoteCluster {
	rs := m.remoteList()
	out := make([]*agentapi.RemoteCluster, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.status())
	}
	slices.SortFunc(out, func(a, b *agentapi.RemoteCluster) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// RemoteServices returns, by cluster, every remote cluster's service
// records and pods (its ipcache entries with their identities' labels):
// what global services merge from. The services component pulls it when
// it recomputes.
func (m *Mesh) RemoteServices() map[string]svcsync.Remote {
	m.mu.Lock()
	rs := make(map[string]*remoteCluster, len(m.remotes))
	for name, r := range m.remotes {
		rs[name] = r
	}
	m.mu.Unlock()
	out := make(map[string]svcsync.Remote, len(rs))
	for name, r := range rs {
		cc := r.config()
		out[name] = svcsync.Remote{Services: r.serviceList(), Pods: r.pods(), GlobalCIDR: cc.GlobalCIDR, PodCIDRs: cc.PodCIDRs}
	}
	return out
}

// globalServiceKinds are what a remote must have listed for global
// services to merge all of its backends: its services, and its pods
// (ipcache entries and the identities that label them).
var globalServiceKinds = []string{records.KindServices, records.KindIPCache, records.KindIdentities}

// ServicesSynced reports whether every remote cluster of this node has
// listed, in this run, what global services merge from it; it names those
// that have not. Before the local store's remote records are listed it
// reports false (the remotes are not known yet).
func (m *Mesh) ServicesSynced() (bool, []string) {
	m.mu.Lock()
	listed := m.remotesListed
	m.mu.Unlock()
	if !listed {
		return false, []string{"(the remote cluster records of the local store)"}
	}
	var waiting []string
	for _, r := range m.remoteList() {
		r.mu.Lock()
		for _, k := range globalServiceKinds {
			if !r.listed[k] {
				waiting = append(waiting, r.name)
				break
			}
		}
		r.mu.Unlock()
	}
	slices.Sort(waiting)
	return len(waiting) == 0, waiting
}

// OnServicesChanged sets the hook called after a remote cluster's services
// or pods changed; call it before Run.
func (m *Mesh) OnServicesChanged(f func()) { m.onServices = f }

func (m *Mesh) servicesChanged() {
	if m.onServices != nil {
		m.onServices()
	}
}

// RemoteEntry is one ipcache entry of a connected cluster.
type RemoteEntry struct {
	Cluster string
	records.IPCacheEntry
}

// IPCache returns every connected cluster's ipcache entries (what `weft
// ipcache list` shows next to the local cluster's), sorted by cluster and
// address.
func (m *Mesh) IPCache() []RemoteEntry {
	var out []RemoteEntry
	for _, r := range m.remoteList() {
		r.mu.Lock()
		for _, e := range r.ips {
			out = append(out, RemoteEntry{Cluster: r.name, IPCacheEntry: e})
		}
		r.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b RemoteEntry) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), a.IP.Compare(b.IP))
	})
	return out
}

// LookupIP returns the ipcache entry of a connected cluster's address.
func (m *Mesh) LookupIP(ip netip.Addr) (records.IPCacheEntry, bool) {
	return findRemote(m, func(r *remoteCluster) (records.IPCacheEntry, bool) { e, ok := r.ips[ip]; return e, ok })
}

// IdentityLabels returns the labels of a connected cluster's identity.
func (m *Mesh) IdentityLabels(id records.ID) (records.Labels, bool) {
	return findRemote(m, func(r *remoteCluster) (records.Labels, bool) { ls, ok := r.ids[id]; return ls, ok })
}

// findRemote returns what get finds in the first remote that has it (get
// runs under the remote's lock).
func findRemote[T any](m *Mesh, get func(*remoteCluster) (T, bool)) (T, bool) {
	for _, r := range m.remoteList() {
		r.mu.Lock()
		v, ok := get(r)
		r.mu.Unlock()
		if ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// IPCacheLen is how many ipcache entries the connected clusters have.
func (m *Mesh) IPCacheLen() int {
	n := 0
	for _, r := range m.remoteList() {
		r.mu.Lock()
		n += len(r.ips)
		r.mu.Unlock()
	}
	return n
}

// remoteList is the remotes known now.
func (m *Mesh) remoteList() []*remoteCluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := make([]*remoteCluster, 0, len(m.remotes))
	for _, r := range m.remotes {
		rs = append(rs, r)
	}
	return rs
}
