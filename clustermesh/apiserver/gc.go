package apiserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/kvstore"
)

// collect runs the cluster's collector (state/identity's and the dead
// nodes' pod CIDRs, clustermesh/gc) whenever this apiserver holds the
// cluster's collector lock (agents compete for it too: one collector per
// cluster), and compacts the served store every GCInterval.
func (s *Server) collect(ctx context.Context) error {
	name := s.cfg.StoreName
	if name == "" {
		name = "weft-apiserver-" + s.cfg.ClusterName
	}
	cfg := gc.Config{Runner: "apiserver " + name, Interval: s.cfg.GCInterval, IdentityGrace: s.cfg.IdentityGCGrace, NodeGrace: s.cfg.NodeGCGrace}
	col, err := gc.New(s.source, s.cc, cfg, s.log)
	if err != nil {
		return err
	}
	col.OnPass = func(f gc.Freed, _ error) {
		s.m.collectedIDs.Add(float64(len(f.Identities)))
		for _, cidrs := range f.CIDRs {
			s.m.freedNodes.Add(float64(len(cidrs)))
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		col.Run(ctx) //nolint:errcheck // returns nil when ctx ends
	}()
	defer func() { <-done }()
	s.compacted = 0
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
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
