package services

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/agent/endpoints"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// serviceDebounce bounds how long a burst of endpoint, identity or service
// changes is collected before the LB maps are recomputed.
const serviceDebounce = 5 * time.Millisecond

// serviceRetry is how long a failed datapath write waits to be retried.
const serviceRetry = time.Second

// gatePoll is how often a closed remote gate is looked at again (its
// timeout ends it even without a change).
const gatePoll = 250 * time.Millisecond

// Sync programs this node's LB maps from the cluster's service
// records: selector services get the cluster's pods (ipcache entries with
// their identities' labels) as backends, explicit backends are taken as
// given, and local endpoints' port mappings become HostPort frontends.
// Frontends that no longer exist are deleted; stale ones from the last run
// are pruned after the first full computation.
type Sync struct {
	cfg       Config
	dp        Datapath
	ipcache   Pods
	nodes     Nodes
	endpoints Endpoints
	keys      records.Keys
	log       *slog.Logger
	alloc     *services.Allocator
	svcs      *watchstore.Watcher[records.Service]
	ids       *watchstore.Watcher[records.Identity]
	kick      chan struct{}

	mu         sync.Mutex
	remote     map[string]Remote // by cluster name, see SetRemoteServices
	pullRemote func() map[string]Remote
	// The remote gate (SetRemoteGate): global services wait for it once.
	gate       func() (bool, []string)
	gateWait   time.Duration
	gateStart  time.Time // when the local records were synced
	gateOpen   bool
	gateReport string
	programmed map[datapath.ServiceKey]datapath.Service
	pruned     bool
	view       []serviceView
	numbers    map[string]uint32
	nextNumber uint32
	redirects  map[ServicePort]netip.AddrPort // SetL7Redirect
	byName     map[string]int                 // BackendsOf's index of view by "ns/name", built on first use
	l7ready    <-chan struct{}                // SetL7Ready
}

// Config is the node a Sync programs.
type Config struct {
	Node        string
	Cluster     string
	NodeIP      netip.Addr   // NodePort and HostPort frontends
	ServiceCIDR netip.Prefix // ClusterIPs are allocated from it
}

// Datapath is where frontends go (*datapath.Datapath).
type Datapath interface {
	UpsertService(ctx context.Context, s datapath.Service) error
	DeleteService(ctx context.Context, k datapath.ServiceKey) error
	PruneServices(ctx context.Context, keep []datapath.ServiceKey) error
}

// Pods is the cluster's ipcache as the store has it (*state/ipcache.Watcher).
type Pods interface {
	Snapshot() map[netip.Addr]records.IPCacheEntry
	Synced() <-chan struct{}
}

// Nodes lists the known nodes (*agent/nodes.Table).
type Nodes interface {
	List() []records.Node
}

// Endpoints lists this node's endpoints (*agent/endpoints.Manager).
type Endpoints interface {
	List() []*endpoints.Endpoint
}

// New returns the services component of the node cfg names.
func New(store kvstore.Client, keys records.Keys, cfg Config, dp Datapath, pods Pods, nodes Nodes, eps Endpoints, log *slog.Logger) (*Sync, error) {
	s := &Sync{cfg: cfg, keys: keys, dp: dp, ipcache: pods, nodes: nodes, endpoints: eps,
		log: log.With("component", "services"), kick: make(chan struct{}, 1),
		remote: map[string]Remote{}, programmed: map[datapath.ServiceKey]datapath.Service{},
		numbers: map[string]uint32{}, nextNumber: 1, redirects: map[ServicePort]netip.AddrPort{}}
	var err error
	if s.alloc, err = services.NewAllocator(store, cfg.Cluster, cfg.ServiceCIDR, log); err != nil {
		return nil, err
	}
	s.svcs = watchstore.New(store, watchstore.Config[records.Service]{
		Prefix: keys.ServicesPrefix(cfg.Cluster), Decode: keys.DecodeService,
		OnChange: func(watchstore.Change[records.Service]) { s.Changed() },
	}, s.log)
	s.ids = watchstore.New(store, watchstore.Config[records.Identity]{
		Prefix: keys.IdentitiesPrefix(), Decode: keys.DecodeIdentity,
		OnChange: func(watchstore.Change[records.Identity]) { s.Changed() },
	}, s.log)
	return s, nil
}

// Identities is the identity mirror the component watches; the agent's API
// lists identities from it rather than from the store.
func (s *Sync) Identities() *watchstore.Watcher[records.Identity] { return s.ids }

// Changed asks for a recomputation; it never blocks.
func (s *Sync) Changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Remote is what clustermesh knows of another cluster.
type Remote struct {
	Services []records.Service
	Pods     []services.Pod // its ipcache entries with their identities' labels
	// GlobalCIDR and PodCIDRs are the remote's global addressing
	// (docs/clustermesh.md): with a GlobalCIDR, its pods are known here
	// by their global addresses (Pods already are; a service's explicit
	// backends are mapped).
	GlobalCIDR netip.Prefix
	PodCIDRs   []netip.Prefix
}

// SetRemoteSource sets pull (agent/clustermesh), which returns every remote
// cluster's services and pods; desired calls it on every recompute, which
// clustermesh triggers through Changed.
func (s *Sync) SetRemoteSource(pull func() map[string]Remote) {
	s.mu.Lock()
	s.pullRemote = pull
	s.mu.Unlock()
	s.Changed()
}

// SetRemoteGate makes the services component wait, before it programs or
// prunes the frontends of global services, until synced reports that every
// remote cluster has listed what global services merge from it, or wait
// has passed since the local records were synced; until then the datapath
// keeps what it holds (a restarted agent keeps the pinned frontends with
// their remote backends), so a global service is never programmed with
// fewer backends than it will have once the remotes are synced. What
// happened is reported by GlobalServicesStatus.
func (s *Sync) SetRemoteGate(synced func() (bool, []string), wait time.Duration) {
	s.mu.Lock()
	s.gate, s.gateWait = synced, wait
	s.mu.Unlock()
}

// GlobalServicesStatus says whether global services wait for remote
// clusters, and how the wait ended.
func (s *Sync) GlobalServicesStatus() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gateReport
}

// remoteGate reports whether global services may be programmed now.
func (s *Sync) remoteGate() bool {
	s.mu.Lock()
	gate, wait, start, open := s.gate, s.gateWait, s.gateStart, s.gateOpen
	s.mu.Unlock()
	if gate == nil || open {
		return true
	}
	ok, waiting := gate()
	took := time.Since(start)
	var report string
	switch {
	case ok:
		report = fmt.Sprintf("programmed once every remote cluster was synced (waited %v)", took.Round(time.Millisecond))
		s.log.Info("remote clusters synced: programming global services", "waited", took.Round(time.Millisecond))
	case took >= wait:
		report = fmt.Sprintf("programmed after %v without %s (not synced)", wait, strings.Join(waiting, ", "))
		s.log.Warn("global services programmed before every remote cluster was synced", "waited", wait, "not-synced", waiting)
	default:
		s.mu.Lock()
		s.gateReport = fmt.Sprintf("waiting for %s (%v of %v)", strings.Join(waiting, ", "), took.Round(time.Second), wait)
		s.mu.Unlock()
		return false
	}
	s.mu.Lock()
	s.gateOpen, s.gateReport = true, report
	s.mu.Unlock()
	return true
}

// SetRemoteServices is the clustermesh hook: it replaces the service
// records and pods known from a remote cluster (nil services removes the
// cluster). Global services merge the shared backends of remote services
// of the same namespace/name (selector services select among the remote
// cluster's pods), honouring service.cilium.io/affinity.
func (s *Sync) SetRemoteServices(cluster string, svcs []records.Service, pods []services.Pod) {
	s.mu.Lock()
	if svcs == nil {
		delete(s.remote, cluster)
	} else {
		s.remote[cluster] = Remote{Services: slices.Clone(svcs), Pods: slices.Clone(pods)}
	}
	s.mu.Unlock()
	s.Changed()
}

// Run watches services and identities and reprograms the LB maps on every
// change, once services, identities and the ipcache have listed.
func (s *Sync) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.svcs.Run(ctx) })
	g.Go(func() error { return s.ids.Run(ctx) })
	g.Go(func() error {
		for _, ch := range append([]<-chan struct{}{s.svcs.Synced(), s.ids.Synced(), s.ipcache.Synced()}, s.l7Ready()...) {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil
			}
		}
		s.mu.Lock()
		s.gateStart = time.Now()
		s.mu.Unlock()
		// The first change of a burst arms the timer; later ones ride
		// along, so a steady stream of changes cannot postpone the update.
		timer, armed := time.NewTimer(0), true
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-s.kick:
				if !armed {
					timer.Reset(serviceDebounce)
					armed = true
				}
			case <-timer.C:
				armed = false
				s.reconcile(ctx)
			}
		}
	})
	return g.Wait()
}

// pods lists the cluster's endpoints from the ipcache with their labels.
func (s *Sync) pods() []services.Pod {
	nodeNames := map[netip.Addr]string{}
	for _, n := range s.nodes.List() {
		for _, ip := range n.Underlay {
			nodeNames[ip] = n.Name
		}
	}
	nodeNames[s.cfg.NodeIP] = s.cfg.Node
	var out []services.Pod
	for ip, e := range s.ipcache.Snapshot() {
		ident, ok := s.ids.Get(s.keys.Identity(e.Identity))
		if !ok || e.Namespace == "" {
			continue
		}
		out = append(out, services.Pod{IP: ip, Namespace: e.Namespace, Labels: ident.Labels, HostIP: e.HostIP,
			Node: nodeNames[e.HostIP], Cluster: s.cfg.Cluster})
	}
	return out
}

// reconcile computes every frontend of this node and writes the changes.
func (s *Sync) reconcile(ctx context.Context) {
	open := s.remoteGate()
	desired, view, global := s.desired()
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := false
	for key, svc := range desired {
		if !open && global[key] {
			continue // the datapath keeps what it has until the remotes are synced
		}
		if old, ok := s.programmed[key]; ok && sameService(old, svc) {
			continue
		}
		if err := s.dp.UpsertService(ctx, svc); err != nil {
			s.log.Error("program service frontend", "frontend", svc.Frontend, "err", err)
			failed = true
			continue
		}
		s.programmed[key] = svc
	}
	for key := range s.programmed {
		if _, ok := desired[key]; !ok {
			if err := s.dp.DeleteService(ctx, key); err != nil {
				s.log.Error("delete service frontend", "frontend", key.Frontend, "err", err)
				failed = true
				continue
			}
			delete(s.programmed, key)
		}
	}
	s.view, s.byName = view, nil // listed once programmed
	if !open {
		time.AfterFunc(gatePoll, s.Changed) // the wait's end is a change too
		return
	}
	if !s.pruned && !failed {
		if err := s.dp.PruneServices(ctx, slices.Collect(maps.Keys(desired))); err != nil {
			s.log.Error("prune stale service frontends", "err", err)
			return
		}
		s.pruned = true
	}
	if failed {
		time.AfterFunc(serviceRetry, s.Changed)
	}
}

func sameService(a, b datapath.Service) bool {
	return a.Frontend == b.Frontend && a.Proto == b.Proto && a.Type == b.Type &&
		a.SessionAffinity == b.SessionAffinity && slices.Equal(a.Backends, b.Backends)
}

// isProgrammed reports whether a frontend is in the LB maps (tests).
func (s *Sync) isProgrammed(k datapath.ServiceKey) (datapath.Service, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.programmed[k]
	return svc, ok
}
