package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// nodeTable follows the cluster's node records and reconciles, for every
// other node, the route to its pod CIDR (native mode) and the ipcache entry
// of its underlay address (identity remote-node; this node's own: host).
type nodeTable struct {
	a   *Agent
	log *slog.Logger

	mu     sync.Mutex
	nodes  map[string]records.Node // by key
	synced bool
}

func newNodeTable(a *Agent, log *slog.Logger) *nodeTable {
	return &nodeTable{a: a, log: log.With("component", "nodes"), nodes: map[string]records.Node{}}
}

func (t *nodeTable) run(ctx context.Context) error {
	prefix := t.a.keys.NodesPrefix(t.a.cluster.Name)
	for ev := range t.a.store.ListAndWatch(ctx, prefix) {
		switch ev.Type {
		case kvstore.EventUpsert:
			n, err := t.a.keys.DecodeNode(ev.Key, ev.Value)
			if err != nil {
				t.log.Warn("ignoring a node record", "err", err)
				continue
			}
			t.upsert(ctx, ev.Key, n)
		case kvstore.EventDelete:
			t.remove(ctx, ev.Key)
		case kvstore.EventListDone:
			t.prune(ctx)
		}
	}
	return ctx.Err()
}

func (t *nodeTable) upsert(ctx context.Context, key string, n records.Node) {
	t.mu.Lock()
	old, had := t.nodes[key]
	t.nodes[key] = n
	t.mu.Unlock()
	if had {
		t.withdraw(ctx, old, n)
	}
	local := n.Name == t.a.cfg.NodeName && n.Cluster == t.a.cluster.Name // clustermesh: remote nodes may share a name
	for _, ip := range n.Underlay {
		id := uint32(bpf.IdentityRemoteNode)
		if local {
			id = bpf.IdentityHost
		}
		t.a.ipcache.setNode(ctx, ip, id)
	}
	if local {
		return
	}
	for _, cidr := range n.PodCIDRs {
		if cidr.Addr().Is4() && len(n.Underlay) > 0 {
			if err := t.a.dp.UpsertNodeRoute(ctx, datapath.NodeRoute{PodCIDR: cidr, NodeIP: n.Underlay[0]}); err != nil {
				t.log.Error("route to node", "node", n.Name, "cidr", cidr, "err", err)
			}
		}
	}
	if !had {
		t.log.Info("node joined", "node", n.Name, "ip", n.Underlay, "pod-cidrs", n.PodCIDRs)
	}
}

// withdraw removes what old had and now does not.
func (t *nodeTable) withdraw(ctx context.Context, old, now records.Node) {
	for _, ip := range old.Underlay {
		if !slices.Contains(now.Underlay, ip) {
			t.a.ipcache.deleteNode(ctx, ip)
		}
	}
	for _, cidr := range old.PodCIDRs {
		if !slices.Contains(now.PodCIDRs, cidr) {
			if err := t.a.dp.DeleteNodeRoute(ctx, cidr); err != nil {
				t.log.Error("remove route to node", "node", old.Name, "cidr", cidr, "err", err)
			}
		}
	}
}

func (t *nodeTable) remove(ctx context.Context, key string) {
	t.mu.Lock()
	old, had := t.nodes[key]
	delete(t.nodes, key)
	t.mu.Unlock()
	if had {
		t.withdraw(ctx, old, records.Node{})
		t.log.Info("node left", "node", old.Name)
	}
}

// prune removes routes of nodes that left while the agent was not watching.
func (t *nodeTable) prune(ctx context.Context) {
	var keep []netip.Prefix
	for _, n := range t.list() {
		if n.Name != t.a.cfg.NodeName || n.Cluster != t.a.cluster.Name { // clustermesh: remote nodes' routes stay
			keep = append(keep, n.PodCIDRs...)
		}
	}
	if err := t.a.dp.PruneNodeRoutes(ctx, keep); err != nil {
		t.log.Error("prune node routes", "err", err)
	}
	t.mu.Lock()
	t.synced = true
	t.mu.Unlock()
	t.a.ipcache.nodesSynced(ctx)
}

// list returns the known nodes sorted by name.
func (t *nodeTable) list() []records.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]records.Node, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b records.Node) int {
		if a.Cluster != b.Cluster {
			return cmpString(a.Cluster, b.Cluster)
		}
		return cmpString(a.Name, b.Name)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
