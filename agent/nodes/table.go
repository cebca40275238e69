package nodes

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Routes is where routes to other nodes' pod CIDRs go in native routing
// (*datapath.Datapath).
type Routes interface {
	UpsertNodeRoute(ctx context.Context, r datapath.NodeRoute) error
	DeleteNodeRoute(ctx context.Context, podCIDR netip.Prefix) error
	PruneNodeRoutes(ctx context.Context, keep []netip.Prefix) error
}

// IPCache is where node underlay addresses go (*agent/ipcache.Sync).
type IPCache interface {
	SetNode(ctx context.Context, ip netip.Addr, identity uint32)
	DeleteNode(ctx context.Context, ip netip.Addr)
	NodesSynced(ctx context.Context)
}

// Table follows the cluster's node records and reconciles, for every
// other node, the route to its pod CIDR (native mode) and the ipcache entry
// of its underlay address (identity remote-node; this node's own: host).
type Table struct {
	store   kvstore.Watcher
	keys    records.Keys
	node    string // this node
	cluster string // this node's cluster
	routes  Routes
	ipcache IPCache
	log     *slog.Logger

	mu     sync.Mutex
	nodes  map[string]records.Node // by key
	local  map[netip.Addr]string   // underlay address → name, nodes of this cluster
	synced bool
}

// New returns the node table of node in cluster; keys name the store's layout.
func New(store kvstore.Watcher, keys records.Keys, node, cluster string, routes Routes, ipc IPCache, log *slog.Logger) *Table {
	return &Table{store: store, keys: keys, node: node, cluster: cluster, routes: routes, ipcache: ipc,
		log: log.With("component", "nodes"), nodes: map[string]records.Node{}, local: map[netip.Addr]string{}}
}

// Run follows the cluster's node records until ctx ends.
func (t *Table) Run(ctx context.Context) error {
	prefix := t.keys.NodesPrefix(t.cluster)
	for ev := range t.store.ListAndWatch(ctx, prefix) {
		switch ev.Type {
		case kvstore.EventUpsert:
			n, err := t.keys.DecodeNode(ev.Key, ev.Value)
			if err != nil {
				t.log.Warn("ignoring a node record", "err", err)
				continue
			}
			t.Upsert(ctx, ev.Key, n)
		case kvstore.EventDelete:
			t.Remove(ctx, ev.Key)
		case kvstore.EventListDone:
			t.prune(ctx)
		}
	}
	return ctx.Err()
}

// Upsert adds or changes a node (of this cluster, or of a remote one:
// agent/clustermesh feeds remote nodes through it).
func (t *Table) Upsert(ctx context.Context, key string, n records.Node) {
	t.mu.Lock()
	old, had := t.nodes[key]
	t.nodes[key] = n
	if had {
		t.unindexLocked(old)
	}
	if n.Cluster == t.cluster {
		for _, ip := range n.Underlay {
			t.local[ip] = n.Name
		}
	}
	t.mu.Unlock()
	if had {
		t.withdraw(ctx, old, n)
	}
	local := n.Name == t.node && n.Cluster == t.cluster // clustermesh: remote nodes may share a name
	for _, ip := range n.Underlay {
		id := uint32(bpf.IdentityRemoteNode)
		if local {
			id = bpf.IdentityHost
		}
		t.ipcache.SetNode(ctx, ip, id)
	}
	if local {
		return
	}
	for _, cidr := range n.PodCIDRs {
		if cidr.Addr().Is4() && len(n.Underlay) > 0 {
			if err := t.routes.UpsertNodeRoute(ctx, datapath.NodeRoute{PodCIDR: cidr, NodeIP: n.Underlay[0]}); err != nil {
				t.log.Error("route to node", "node", n.Name, "cidr", cidr, "err", err)
			}
		}
	}
	if !had {
		t.log.Info("node joined", "node", n.Name, "ip", n.Underlay, "pod-cidrs", n.PodCIDRs)
	}
}

// withdraw removes what old had and now does not.
func (t *Table) withdraw(ctx context.Context, old, now records.Node) {
	for _, ip := range old.Underlay {
		if !slices.Contains(now.Underlay, ip) {
			t.ipcache.DeleteNode(ctx, ip)
		}
	}
	for _, cidr := range old.PodCIDRs {
		if !slices.Contains(now.PodCIDRs, cidr) {
			if err := t.routes.DeleteNodeRoute(ctx, cidr); err != nil {
				t.log.Error("remove route to node", "node", old.Name, "cidr", cidr, "err", err)
			}
		}
	}
}

// Remove forgets the node of key and withdraws its route and address.
func (t *Table) Remove(ctx context.Context, key string) {
	t.mu.Lock()
	old, had := t.nodes[key]
	delete(t.nodes, key)
	if had {
		t.unindexLocked(old)
	}
	t.mu.Unlock()
	if had {
		t.withdraw(ctx, old, records.Node{})
		t.log.Info("node left", "node", old.Name)
	}
}

// prune removes routes of nodes that left while the agent was not watching.
func (t *Table) prune(ctx context.Context) {
	var keep []netip.Prefix
	for _, n := range t.List() {
		if n.Name != t.node || n.Cluster != t.cluster { // clustermesh: remote nodes' routes stay
			keep = append(keep, n.PodCIDRs...)
		}
	}
	if err := t.routes.PruneNodeRoutes(ctx, keep); err != nil {
		t.log.Error("prune node routes", "err", err)
	}
	t.mu.Lock()
	t.synced = true
	t.mu.Unlock()
	t.ipcache.NodesSynced(ctx)
}

// unindexLocked forgets the addresses of n, a node of this cluster, where
// they still name it; t.mu is held.
func (t *Table) unindexLocked(n records.Node) {
	if n.Cluster != t.cluster {
		return
	}
	for _, ip := range n.Underlay {
		if t.local[ip] == n.Name {
			delete(t.local, ip)
		}
	}
}

// LocalNodeWith names the node of this cluster with underlay address ip,
// "" when there is none. It is an index lookup: clustermesh checks every
// remote node's addresses with it.
func (t *Table) LocalNodeWith(ip netip.Addr) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local[ip]
}

// List returns the known nodes sorted by cluster and name.
func (t *Table) List() []records.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]records.Node, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b records.Node) int {
		if a.Cluster != b.Cluster {
			return cmp.Compare(a.Cluster, b.Cluster)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}
