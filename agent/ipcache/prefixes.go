package ipcache

import (
	"context"
	"net/netip"

	"github.com/weftnet/weft/datapath"
)

// SetPrefix maps a policy's CIDR prefix to its identity in the BPF
// ipcache; Sync.prune keeps it.
func (s *Sync) SetPrefix(ctx context.Context, p netip.Prefix, identity uint32) {
	s.mu.Lock()
	if s.policy == nil {
		s.policy = map[netip.Prefix]uint32{}
	}
	s.policy[p] = identity
	_, isPod := s.pods[p.Addr()]
	_, isNode := s.nodes[p.Addr()]
	s.mu.Unlock()
	if p.IsSingleIP() && (isPod || isNode) {
		return // a pod's or node's own entry wins over a /32 CIDR rule
	}
	if err := s.dp.UpsertIPCache(ctx, p, datapath.IPCacheEntry{Identity: identity}); err != nil {
		s.log.Error("write BPF ipcache", "prefix", p, "err", err)
	}
}

// DeletePrefix removes a policy prefix no policy needs any more.
func (s *Sync) DeletePrefix(ctx context.Context, p netip.Prefix) {
	s.mu.Lock()
	delete(s.policy, p)
	_, isPod := s.pods[p.Addr()]
	_, isNode := s.nodes[p.Addr()]
	s.mu.Unlock()
	if p.IsSingleIP() && (isPod || isNode) {
		return // the /32 belongs to a pod or node again
	}
	if err := s.dp.DeleteIPCache(ctx, p); err != nil {
		s.log.Error("delete from BPF ipcache", "prefix", p, "err", err)
	}
}

// policyPrefixes lists the policy prefixes for prune; s.mu is held.
func (s *Sync) policyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.policy))
	for p := range s.policy {
		out = append(out, p)
	}
	return out
}
