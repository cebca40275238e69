package flows

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/state/records"
)

// IPCache finds the ipcache entry of an address (ipcache.Watcher).
type IPCache interface {
	Get(ip netip.Addr) (records.IPCacheEntry, bool)
}

type endpointLookup struct {
	ipc    IPCache
	remote IPCache // connected clusters' entries; nil: none
	node   string
	nodeIP netip.Addr
}

// Endpoints looks addresses up in the ipcache, then in the connected
// clusters' (remote, may be nil); entries whose host is nodeIP (or none:
// a local endpoint) live on node.
func Endpoints(ipc, remote IPCache, node string, nodeIP netip.Addr) flow.EndpointLookup {
	return endpointLookup{ipc: ipc, remote: remote, node: node, nodeIP: nodeIP}
}

func (l endpointLookup) LookupIP(ip netip.Addr) (flow.Endpoint, bool) {
	e, ok := l.ipc.Get(ip)
	if !ok && l.remote != nil {
		e, ok = l.remote.Get(ip)
	}
	if !ok {
		return flow.Endpoint{}, false
	}
	ep := flow.Endpoint{Identity: uint32(e.Identity), Namespace: e.Namespace, Pod: e.Pod}
	if !e.HostIP.IsValid() || e.HostIP == l.nodeIP {
		ep.Node = l.node
	}
	return ep, true
}

// IdentityCache returns an identity's labels (identity.Allocator).
type IdentityCache interface {
	Lookup(id records.ID) (records.Labels, bool)
}

type identityLookup struct{ ids, remote IdentityCache }

// Identities reads labels from the identity cache, then from the
// connected clusters' identities (remote, may be nil).
func Identities(ids, remote IdentityCache) flow.IdentityLookup { return identityLookup{ids, remote} }

func (l identityLookup) IdentityLabels(id uint32) ([]string, bool) {
	ls, ok := l.ids.Lookup(records.ID(id))
	if !ok && l.remote != nil {
		ls, ok = l.remote.Lookup(records.ID(id))
	}
	if !ok {
		return nil, false
	}
	return ls.Display(), true
}

// ServiceLister lists the services the node programmed (services.Sync).
type ServiceLister interface {
	List() *agentapi.ListServicesResponse
}

// serviceIndex maps frontends to their service, rebuilt from the lister
// at most once per refresh (flows come much more often than services
// change).
type serviceIndex struct {
	list    ServiceLister
	refresh time.Duration

	mu    sync.Mutex
	built time.Time
	index map[frontendKey]flow.Service
}

type frontendKey struct {
	addr  netip.AddrPort
	proto uint8
}

// Services finds the service of a frontend among the programmed ones.
func Services(l ServiceLister) flow.ServiceLookup {
	return &serviceIndex{list: l, refresh: time.Second}
}

func (s *serviceIndex) ServiceOfFrontend(frontend netip.AddrPort, proto uint8) (flow.Service, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.index[frontendKey{frontend, proto}]
	if !ok && (s.index == nil || time.Since(s.built) > s.refresh) {
		s.index, s.built = buildIndex(s.list.List()), time.Now()
		svc, ok = s.index[frontendKey{frontend, proto}]
	}
	return svc, ok
}

var protoNumbers = map[string]uint8{"TCP": flow.ProtoTCP, "UDP": flow.ProtoUDP, "SCTP": flow.ProtoSCTP}

func buildIndex(resp *agentapi.ListServicesResponse) map[frontendKey]flow.Service {
	index := map[frontendKey]flow.Service{}
	for _, svc := range resp.GetServices() {
		for _, f := range svc.GetFrontends() {
			addr, proto, _ := strings.Cut(f.GetAddress(), "/")
			ap, err := netip.ParseAddrPort(addr)
			if p, ok := protoNumbers[strings.ToUpper(proto)]; ok && err == nil {
				index[frontendKey{ap, p}] = flow.Service{Namespace: svc.GetNamespace(), Name: svc.GetName(), Frontend: ap}
			}
		}
	}
	return index
}
