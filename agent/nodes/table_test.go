package nodes

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

type noRoutes struct{}

func (noRoutes) UpsertNodeRoute(context.Context, datapath.NodeRoute) error { return nil }
func (noRoutes) DeleteNodeRoute(context.Context, netip.Prefix) error       { return nil }
func (noRoutes) PruneNodeRoutes(context.Context, []netip.Prefix) error     { return nil }

type noIPCache struct{}

func (noIPCache) SetNode(context.Context, netip.Addr, uint32) {}
func (noIPCache) DeleteNode(context.Context, netip.Addr)      {}
func (noIPCache) NodesSynced(context.Context)                 {}

// LocalNodeWith is what clustermesh refuses remote nodes by: it must name
// this cluster's node of an address, follow address changes and removals,
// and never name a remote cluster's node.
func TestLocalNodeWith(t *testing.T) {
	ctx := context.Background()
	keys := records.NewKeys("weft/")
	tab := New(nil, keys, "n1", "c1", noRoutes{}, noIPCache{}, slog.New(slog.DiscardHandler))
	a, b := netip.MustParseAddr("192.168.1.2"), netip.MustParseAddr("192.168.1.3")
	node := func(cluster, name string, ip netip.Addr) records.Node {
		return records.Node{Name: name, Cluster: cluster, Underlay: []netip.Addr{ip}}
	}
	want := func(ip netip.Addr, name string) {
		t.Helper()
		if got := tab.LocalNodeWith(ip); got != name {
			t.Errorf("LocalNodeWith(%v) = %q, want %q", ip, got, name)
		}
	}

	tab.Upsert(ctx, "c2/n2", node("c2", "n2", a))
	want(a, "") // a remote cluster's node
	tab.Upsert(ctx, "c1/n2", node("c1", "n2", a))
	want(a, "n2")
	tab.Upsert(ctx, "c1/n2", node("c1", "n2", b)) // its address changed
	want(a, "")
	want(b, "n2")
	tab.Upsert(ctx, "c1/n3", node("c1", "n3", b)) // a second node claims it
	tab.Remove(ctx, "c1/n2")
	want(b, "n3") // removing the first leaves the second's claim
	tab.Remove(ctx, "c2/n2")
	tab.Remove(ctx, "c1/n3")
	want(b, "")
}
