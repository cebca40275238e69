package agent

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/api/agentapi"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// serviceDebounce bounds how long a burst of endpoint, identity or service
// changes is collected before the LB maps are recomputed.
const serviceDebounce = 5 * time.Millisecond

// serviceRetry is how long a failed datapath write waits to be retried.
const serviceRetry = time.Second

// serviceSync programs this node's LB maps from the cluster's service
// records: selector services get the cluster's pods (ipcache entries with
// their identities' labels) as backends, explicit backends are taken as
// given, and local endpoints' port mappings become HostPort frontends.
// Frontends that no longer exist are deleted; stale ones from the last run
// are pruned after the first full computation.
type serviceSync struct {
	a     *Agent
	log   *slog.Logger
	alloc *services.Allocator
	svcs  *watchstore.Watcher[records.Service]
	ids   *watchstore.Watcher[records.Identity]
	kick  chan struct{}

	mu         sync.Mutex
	remote     map[string]remoteServices // by cluster name, see SetRemoteServices
	pullRemote func() map[string]remoteServices
	programmed map[datapath.ServiceKey]datapath.Service
	pruned     bool
	view       []serviceView
	numbers    map[string]uint32
	nextNumber uint32
}

func newServiceSync(a *Agent, cidr netip.Prefix) (*serviceSync, error) {
	s := &serviceSync{a: a, log: a.log.With("component", "services"), kick: make(chan struct{}, 1),
		remote: map[string]remoteServices{}, programmed: map[datapath.ServiceKey]datapath.Service{},
		numbers: map[string]uint32{}, nextNumber: 1}
	var err error
	if s.alloc, err = services.NewAllocator(a.store, a.cluster.Name, cidr, a.log); err != nil {
		return nil, err
	}
	s.svcs = watchstore.New(a.store, watchstore.Config[records.Service]{
		Prefix: a.keys.ServicesPrefix(a.cluster.Name), Decode: a.keys.DecodeService,
		OnChange: func(watchstore.Change[records.Service]) { s.changed() },
	}, s.log)
	s.ids = watchstore.New(a.store, watchstore.Config[records.Identity]{
		Prefix: a.keys.IdentitiesPrefix(), Decode: a.keys.DecodeIdentity,
		OnChange: func(watchstore.Change[records.Identity]) { s.changed() },
	}, s.log)
	return s, nil
}

// changed asks for a recomputation; it never blocks.
func (s *serviceSync) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// remoteServices is what clustermesh knows of another cluster.
type remoteServices struct {
	services []records.Service
	pods     []services.Pod // its ipcache entries with their identities' labels
}

// pullRemote, when set (by clustermesh), returns every remote cluster's
// services and pods; desired calls it on every recompute, which
// clustermesh triggers through changed.
func (s *serviceSync) setRemoteSource(pull func() map[string]remoteServices) {
	s.mu.Lock()
	s.pullRemote = pull
	s.mu.Unlock()
	s.changed()
}

// SetRemoteServices is the clustermesh hook: it replaces the service
// records and pods known from a remote cluster (nil services removes the
// cluster). Global services merge the shared backends of remote services
// of the same namespace/name (selector services select among the remote
// cluster's pods), honouring service.cilium.io/affinity.
func (s *serviceSync) SetRemoteServices(cluster string, svcs []records.Service, pods []services.Pod) {
	s.mu.Lock()
	if svcs == nil {
		delete(s.remote, cluster)
	} else {
		s.remote[cluster] = remoteServices{services: slices.Clone(svcs), pods: slices.Clone(pods)}
	}
	s.mu.Unlock()
	s.changed()
}

// run watches services and identities and reprograms the LB maps on every
// change, once services, identities and the ipcache have listed.
func (s *serviceSync) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.svcs.Run(ctx) })
	g.Go(func() error { return s.ids.Run(ctx) })
	g.Go(func() error {
		for _, ch := range []<-chan struct{}{s.svcs.Synced(), s.ids.Synced(), s.a.ipc.Synced()} {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil
			}
		}
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
func (s *serviceSync) pods() []services.Pod {
	nodeNames := map[netip.Addr]string{}
	for _, n := range s.a.nodes.list() {
		for _, ip := range n.Underlay {
			nodeNames[ip] = n.Name
		}
	}
	nodeNames[s.a.nodeIP] = s.a.cfg.NodeName
	var out []services.Pod
	for ip, e := range s.a.ipc.Snapshot() {
		ident, ok := s.ids.Get(s.a.keys.Identity(e.Identity))
		if !ok || e.Namespace == "" {
			continue
		}
		out = append(out, services.Pod{IP: ip, Namespace: e.Namespace, Labels: ident.Labels, HostIP: e.HostIP,
			Node: nodeNames[e.HostIP], Cluster: s.a.cluster.Name})
	}
	return out
}

// reconcile computes every frontend of this node and writes the changes.
func (s *serviceSync) reconcile(ctx context.Context) {
	desired, view := s.desired()
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := false
	for key, svc := range desired {
		if old, ok := s.programmed[key]; ok && sameService(old, svc) {
			continue
		}
		if err := s.a.dp.UpsertService(ctx, svc); err != nil {
			s.log.Error("program service frontend", "frontend", svc.Frontend, "err", err)
			failed = true
			continue
		}
		s.programmed[key] = svc
	}
	for key := range s.programmed {
		if _, ok := desired[key]; !ok {
			if err := s.a.dp.DeleteService(ctx, key); err != nil {
				s.log.Error("delete service frontend", "frontend", key.Frontend, "err", err)
				failed = true
				continue
			}
			delete(s.programmed, key)
		}
	}
	s.view = view // listed once programmed
	if !s.pruned && !failed {
		if err := s.a.dp.PruneServices(ctx, slices.Collect(maps.Keys(desired))); err != nil {
			s.log.Error("prune stale service frontends", "err", err)
			return
		}
		s.pruned = true
	}
	if failed {
		time.AfterFunc(serviceRetry, s.changed)
	}
}

func sameService(a, b datapath.Service) bool {
	return a.Frontend == b.Frontend && a.Proto == b.Proto && a.Type == b.Type &&
		a.SessionAffinity == b.SessionAffinity && slices.Equal(a.Backends, b.Backends)
}

// isProgrammed reports whether a frontend is in the LB maps (tests).
func (s *serviceSync) isProgrammed(k datapath.ServiceKey) (datapath.Service, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.programmed[k]
	return svc, ok
}

// portMapping is a HostPort of an endpoint (STABLE v1 in the endpoint's
// state file).
type portMapping struct {
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// portMappings keeps the valid TCP/UDP mappings of a CNI request (the
// plugin has checked them already).
func portMappings(pms []*agentapi.PortMapping) []portMapping {
	var out []portMapping
	for _, pm := range pms {
		proto := strings.ToUpper(pm.GetProtocol())
		if proto == "" {
			proto = records.ProtoTCP
		}
		if pm.GetHostPort() == 0 || pm.GetHostPort() > 65535 || pm.GetContainerPort() == 0 || pm.GetContainerPort() > 65535 ||
			(proto != records.ProtoTCP && proto != records.ProtoUDP) {
			continue
		}
		out = append(out, portMapping{HostPort: uint16(pm.GetHostPort()), ContainerPort: uint16(pm.GetContainerPort()), Protocol: proto, HostIP: pm.GetHostIp()})
	}
	return out
}
