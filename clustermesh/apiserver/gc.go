package apiserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
)

// collect runs the identity collector, frees the pod CIDRs of nodes whose
// record has been gone longer than NodeGCGrace and compacts the served
// store, every GCInterval.
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
	s.compacted = 0
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
		if err := s.compact(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("compact the served store", "err", err)
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

// compact drops the served store's history older than StoreHistory
// revisions (etcd keeps every revision until compacted).
func (s *Server) compact(ctx context.Context) error {
	cli := s.served.Raw()
	resp, err := cli.Get(ctx, kvstore.HeartbeatKey(s.served.Prefix()))
	if err != nil {
		return err
	}
	rev := resp.Header.Revision - s.cfg.StoreHistory
	if rev <= s.compacted {
		return nil
	}
	if _, err := cli.Compact(ctx, rev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("compact at revision %d: %w", rev, err)
	}
	s.compacted = rev
	return nil
}
