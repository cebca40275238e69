package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
)

// Collector collects one cluster's identities and dead nodes' pod CIDRs
// while it holds the cluster's collector lock.
type Collector struct {
	client kvstore.Client
	cc     records.ClusterConfig
	cfg    Config
	log    *slog.Logger
	ids    *identity.Collector
	cidrs  *podcidr.Allocator
	// missing records when each node owning a CIDR was first seen without
	// a record.
	missing map[string]time.Time
	freed   *Freed
	// OnPass, if set, is called after every pass (metrics).
	OnPass func(Freed, error)
}

// New returns a collector of cc's cluster.
func New(client kvstore.Client, cc records.ClusterConfig, cfg Config, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ids, err := identity.NewCollector(client, identity.CollectorConfig{ClusterID: cc.ID, Grace: cfg.IdentityGrace, Interval: cfg.Interval}, log)
	if err != nil {
		return nil, err
	}
	cidrs, err := podcidr.New(client, podcidr.ConfigFrom(cc), log)
	if err != nil {
		return nil, err
	}
	return &Collector{client: client, cc: cc, cfg: cfg, ids: ids, cidrs: cidrs, missing: map[string]time.Time{},
		log: log.With("component", "gc", "cluster", cc.Name, "runner", cfg.Runner)}, nil
}

// LockName is the store lock whose holder collects cluster.
func LockName(cluster string) string { return "gc/" + cluster }

// Run waits for the cluster's collector lock, then collects every
// Interval until ctx ends or the lock is lost, and waits for it again.
func (c *Collector) Run(ctx context.Context) error {
	for {
		lock, err := c.client.Lock(ctx, LockName(c.cc.Name))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("take the collector lock; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(c.cfg.Interval):
			}
			continue
		}
		c.log.Info("collecting for the cluster (holds the collector lock)", "interval", c.cfg.Interval,
			"identity-grace", c.cfg.IdentityGrace, "node-grace", c.cfg.NodeGrace)
		c.hold(ctx, lock.Done())
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			c.log.Warn("release the collector lock", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("lost the collector lock; waiting to take it again")
		// Another holder starts its grace clocks afresh; so does this one.
		c.missing = map[string]time.Time{}
	}
}

func (c *Collector) hold(ctx context.Context, lost <-chan struct{}) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("collection pass", "err", err)
		}
		select {
		case <-t.C:
		case <-lost:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Pass collects once and records it at Key; it returns what it freed.
// Callers of Pass, rather than Run, must make sure they are the only
// collector.
func (c *Collector) Pass(ctx context.Context) (Freed, error) {
	now := time.Now()
	f := Freed{Time: now}
	ids, err := c.ids.Collect(ctx)
	f.Identities = ids
	cidrs, nerr := c.collectNodes(ctx, now)
	f.CIDRs = cidrs
	err = errors.Join(err, nerr)
	if !f.Empty() {
		// The record keeps the last identities and the last CIDRs freed,
		// each from the last pass that freed some.
		if c.freed == nil {
			c.freed = &Freed{}
		}
		c.freed.Time = now
		if len(f.Identities) > 0 {
			c.freed.Identities = f.Identities
		}
		if len(f.CIDRs) > 0 {
			c.freed.CIDRs = f.CIDRs
		}
		c.log.Info("freed what dead nodes left", "identities", f.Identities, "cidrs", f.CIDRs)
	}
	rec := Record{Version: 1, Cluster: c.cc.Name, By: c.cfg.Runner, Time: time.Now(), Freed: c.freed}
	if err != nil {
		rec.Error = err.Error()
	}
	if raw, merr := json.Marshal(rec); merr == nil {
		if _, werr := c.client.Update(ctx, Key(c.client.Prefix(), c.cc.Name), raw); werr != nil {
			err = errors.Join(err, fmt.Errorf("record the collection: %w", werr))
		}
	}
	if c.OnPass != nil {
		c.OnPass(f, err)
	}
	return f, err
}

// collectNodes frees the CIDRs of nodes without a record for NodeGrace.
func (c *Collector) collectNodes(ctx context.Context, now time.Time) (map[string][]netip.Prefix, error) {
	keys := records.NewKeys(c.client.Prefix())
	nodes, err := c.client.List(ctx, keys.NodesPrefix(c.cc.Name))
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	alive := map[string]bool{}
	for _, kv := range nodes {
		if _, n, err := keys.ParseNodeKey(kv.Key); err == nil {
			alive[n] = true
		}
	}
	allocs, err := c.cidrs.Allocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pod CIDR allocations: %w", err)
	}
	owners := map[string]bool{}
	for _, a := range allocs {
		owners[a.Node] = true
	}
	for node := range c.missing {
		if alive[node] || !owners[node] {
			delete(c.missing, node)
		}
	}
	var out map[string][]netip.Prefix
	for node := range owners {
		if alive[node] {
			continue
		}
		first, seen := c.missing[node]
		if !seen {
			c.missing[node] = now
			continue
		}
		if now.Sub(first) < c.cfg.NodeGrace {
			continue
		}
		freed, err := c.cidrs.Free(ctx, node)
		if err != nil {
			return out, fmt.Errorf("free the pod CIDRs of %s: %w", node, err)
		}
		delete(c.missing, node)
		if out == nil {
			out = map[string][]netip.Prefix{}
		}
		out[node] = freed
	}
	return out, nil
}
