package apiserver

import (
	"context"
	"time"

	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
)

// collect runs the identity collector and frees the pod CIDRs of nodes
// whose record has been gone longer than NodeGCGrace, every GCInterval.
func (s *Server) collect(ctx context.Context) error {
	ids, err := identity.NewCollector(s.source, identity.CollectorConfig{
		ClusterID: s.cc.ID, Grace: s.cfg.IdentityGCGrace, Interval: s.cfg.GCInterval}, s.log)
	if err != nil {
		return err
	}
	cidrs, err := podcidr.New(s.source, podcidr.ConfigFrom(s.cc), s.log)
	if err != nil {
		return err
	}
	missing := map[string]time.Time{} // node → first seen without a record
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		if deleted, err := ids.Collect(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("identity collection pass", "err", err)
		} else if len(deleted) > 0 {
			s.m.collectedIDs.Add(float64(len(deleted)))
			s.log.Info("collected unreferenced identities", "count", len(deleted))
		}
		if err := s.collectNodes(ctx, cidrs, missing); err != nil && ctx.Err() == nil {
			s.log.Warn("dead node collection pass", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// collectNodes frees the CIDRs of nodes without a record for the grace period.
func (s *Server) collectNodes(ctx context.Context, cidrs *podcidr.Allocator, missing map[string]time.Time) error {
	keys := records.NewKeys(s.source.Prefix())
	nodes, err := s.source.List(ctx, keys.NodesPrefix(s.cc.Name))
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, kv := range nodes {
		if _, n, err := keys.ParseNodeKey(kv.Key); err == nil {
			alive[n] = true
		}
	}
	allocs, err := cidrs.Allocations(ctx)
	if err != nil {
		return err
	}
	owners := map[string]bool{}
	for _, a := range allocs {
		owners[a.Node] = true
	}
	now := time.Now()
	for node := range missing {
		if alive[node] || !owners[node] {
			delete(missing, node)
		}
	}
	for node := range owners {
		if alive[node] {
			continue
		}
		first, seen := missing[node]
		if !seen {
			missing[node] = now
			continue
		}
		if now.Sub(first) < s.cfg.NodeGCGrace {
			continue
		}
		freed, err := cidrs.Free(ctx, node)
		if err != nil {
			return err
		}
		delete(missing, node)
		s.m.freedNodes.Add(float64(len(freed)))
		s.log.Info("freed the pod CIDRs of a node gone for longer than the grace period", "node", node, "cidrs", freed, "grace", s.cfg.NodeGCGrace)
	}
	return nil
}
