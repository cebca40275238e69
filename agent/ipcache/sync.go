package ipcache

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/internal/mapshrink"
	stateipcache "github.com/weftnet/weft/state/ipcache"
)

// Datapath is where the entries go (*datapath.Datapath).
type Datapath interface {
	UpsertIPCache(ctx context.Context, p netip.Prefix, e datapath.IPCacheEntry) error
	DeleteIPCache(ctx context.Context, p netip.Prefix) error
	PruneIPCache(ctx context.Context, keep []netip.Prefix) error
}

// Sync keeps the BPF ipcache equal to the union of two sources: pod
// entries from the store's ipcache and node underlay addresses from the node
// table. Stale BPF entries are pruned once both sources have listed.
type Sync struct {
	dp     Datapath
	nodeIP netip.Addr
	log    *slog.Logger

	mu          sync.Mutex
	pods        map[netip.Addr]datapath.IPCacheEntry
	podsPeak    int // for mapshrink
	nodes       map[netip.Addr]datapath.IPCacheEntry
	podsListed  bool
	nodesListed bool
	policy      map[netip.Prefix]uint32 // CIDR prefixes of policies (SetPrefix)
}

func New(dp Datapath, nodeIP netip.Addr, log *slog.Logger) *Sync {
	return &Sync{
		dp: dp, nodeIP: nodeIP, log: log.With("component", "ipcache"),
		pods:  map[netip.Addr]datapath.IPCacheEntry{},
		nodes: map[netip.Addr]datapath.IPCacheEntry{},
	}
}

// OnChange is the ipcache watcher's callback.
func (s *Sync) OnChange(c stateipcache.Change) {
	ctx := context.Background()
	ip := c.Entry.IP
	if c.Type == stateipcache.Delete {
		s.mu.Lock()
		delete(s.pods, ip)
		s.pods = mapshrink.Shrink(s.pods, &s.podsPeak)
		_, isNode := s.nodes[ip]
		s.mu.Unlock()
		if !isNode {
			s.write(ctx, ip, nil)
		}
		return
	}
	e := datapath.IPCacheEntry{Identity: uint32(c.Entry.Identity)}
	if c.Entry.HostIP.IsValid() && c.Entry.HostIP != s.nodeIP {
		e.TunnelEndpoint = c.Entry.HostIP
	}
	s.mu.Lock()
	s.pods[ip] = e
	s.mu.Unlock()
	s.write(ctx, ip, &e)
}

// PodsSynced is called once the store watcher's initial listing is complete.
func (s *Sync) PodsSynced(ctx context.Context) {
	s.mu.Lock()
	s.podsListed = true
	s.mu.Unlock()
	s.prune(ctx)
}

func (s *Sync) NodesSynced(ctx context.Context) {
	s.mu.Lock()
	s.nodesListed = true
	s.mu.Unlock()
	s.prune(ctx)
}

func (s *Sync) SetNode(ctx context.Context, ip netip.Addr, identity uint32) {
	e := datapath.IPCacheEntry{Identity: identity}
	s.mu.Lock()
	s.nodes[ip] = e
	s.mu.Unlock()
	s.write(ctx, ip, &e)
}

func (s *Sync) DeleteNode(ctx context.Context, ip netip.Addr) {
	s.mu.Lock()
	delete(s.nodes, ip)
	pod, isPod := s.pods[ip]
	s.mu.Unlock()
	if isPod {
		s.write(ctx, ip, &pod)
		return
	}
	s.write(ctx, ip, nil)
}

func (s *Sync) write(ctx context.Context, ip netip.Addr, e *datapath.IPCacheEntry) {
	p := netip.PrefixFrom(ip, ip.BitLen())
	var err error
	if e == nil {
		err = s.dp.DeleteIPCache(ctx, p)
	} else {
		err = s.dp.UpsertIPCache(ctx, p, *e)
	}
	if err != nil {
		s.log.Error("write BPF ipcache", "prefix", p, "err", err)
	}
}

func (s *Sync) prune(ctx context.Context) {
	s.mu.Lock()
	if !s.podsListed || !s.nodesListed {
		s.mu.Unlock()
		return
	}
	keep := make([]netip.Prefix, 0, len(s.pods)+len(s.nodes))
	for ip := range s.pods {
		keep = append(keep, netip.PrefixFrom(ip, ip.BitLen()))
	}
	for ip := range s.nodes {
		keep = append(keep, netip.PrefixFrom(ip, ip.BitLen()))
	}
	keep = append(keep, s.policyPrefixes()...) // policy: keep CIDR prefixes of policies
	s.mu.Unlock()
	if err := s.dp.PruneIPCache(ctx, keep); err != nil {
		s.log.Error("prune BPF ipcache", "err", err)
	}
}

func (s *Sync) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pods) + len(s.nodes)
}
