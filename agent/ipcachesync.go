package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/ipcache"
)

// ipcacheSync keeps the BPF ipcache equal to the union of two sources: pod
// entries from the store's ipcache and node underlay addresses from the node
// table. Stale BPF entries are pruned once both sources have listed.
type ipcacheSync struct {
	dp     *datapath.Datapath
	nodeIP netip.Addr
	log    *slog.Logger

	mu          sync.Mutex
	pods        map[netip.Addr]datapath.IPCacheEntry
	nodes       map[netip.Addr]datapath.IPCacheEntry
	podsListed  bool
	nodesListed bool
	policy      map[netip.Prefix]uint32 // policy: CIDR prefixes of policies (agent/policy.go)
}

func newIPCacheSync(dp *datapath.Datapath, nodeIP netip.Addr, log *slog.Logger) *ipcacheSync {
	return &ipcacheSync{
		dp: dp, nodeIP: nodeIP, log: log.With("component", "ipcache"),
		pods:  map[netip.Addr]datapath.IPCacheEntry{},
		nodes: map[netip.Addr]datapath.IPCacheEntry{},
	}
}

// onChange is the ipcache watcher's callback.
func (s *ipcacheSync) onChange(c ipcache.Change) {
	ctx := context.Background()
	ip := c.Entry.IP
	if c.Type == ipcache.Delete {
		s.mu.Lock()
		delete(s.pods, ip)
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

// synced is called once the watcher's initial listing is complete.
func (s *ipcacheSync) podsSynced(ctx context.Context) {
	s.mu.Lock()
	s.podsListed = true
	s.mu.Unlock()
	s.prune(ctx)
}

func (s *ipcacheSync) nodesSynced(ctx context.Context) {
	s.mu.Lock()
	s.nodesListed = true
	s.mu.Unlock()
	s.prune(ctx)
}

func (s *ipcacheSync) setNode(ctx context.Context, ip netip.Addr, identity uint32) {
	e := datapath.IPCacheEntry{Identity: identity}
	s.mu.Lock()
	s.nodes[ip] = e
	s.mu.Unlock()
	s.write(ctx, ip, &e)
}

func (s *ipcacheSync) deleteNode(ctx context.Context, ip netip.Addr) {
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

func (s *ipcacheSync) write(ctx context.Context, ip netip.Addr, e *datapath.IPCacheEntry) {
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

func (s *ipcacheSync) prune(ctx context.Context) {
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

func (s *ipcacheSync) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pods) + len(s.nodes)
}
