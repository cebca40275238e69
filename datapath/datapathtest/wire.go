package datapathtest

import (
	"context"
	"net/netip"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
)

// Wire runs every reconciler of every node with the lab's full state:
// endpoints, ipcache (pods and nodes), node routes, and prunes the rest.
// Running it again changes nothing.
func (l *Lab) Wire() {
	l.t.Helper()
	if l.kernel {
		l.wireKernel()
		return
	}
	ctx := context.Background()
	for _, n := range l.Nodes {
		var prefixes, cidrs []netip.Prefix
		var ips []netip.Addr
		for _, p := range n.Pods {
			l.must(n.DP.UpsertEndpoint(ctx, p.Endpoint()))
			ips = append(ips, p.IP)
		}
		for _, m := range l.Nodes {
			id := uint32(bpf.IdentityRemoteNode)
			if m == n {
				id = bpf.IdentityHost
			}
			np := netip.PrefixFrom(m.UnderlayIP, 32)
			l.must(n.DP.UpsertIPCache(ctx, np, datapath.IPCacheEntry{Identity: id}))
			prefixes = append(prefixes, np)
			for _, p := range m.Pods {
				e := datapath.IPCacheEntry{Identity: p.Identity}
				if m != n {
					e.TunnelEndpoint = m.UnderlayIP
				}
				pp := netip.PrefixFrom(p.IP, 32)
				l.must(n.DP.UpsertIPCache(ctx, pp, e))
				prefixes = append(prefixes, pp)
			}
			if m != n {
				l.must(n.DP.UpsertNodeRoute(ctx, datapath.NodeRoute{PodCIDR: m.PodCIDR, NodeIP: m.UnderlayIP}))
				cidrs = append(cidrs, m.PodCIDR)
			}
		}
		l.must(n.DP.PruneEndpoints(ctx, ips))
		l.must(n.DP.PruneIPCache(ctx, prefixes))
		l.must(n.DP.PruneNodeRoutes(ctx, cidrs))
	}
}
