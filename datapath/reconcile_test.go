package datapath_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

// TestPruneRemovesWhatIsNotDesired checks that each Prune reconciler takes
// away what is not in the desired set and that Upsert brings it back.
func TestPruneRemovesWhatIsNotDesired(t *testing.T) {
	testgate.Root(t)
	ctx := context.Background()
	lab := datapathtest.New(t, datapath.ModeNative, 2)
	n1, n2 := lab.Nodes[0], lab.Nodes[1]
	a, b := n1.AddPod("a", 1001), n1.AddPod("b", 1002)
	remote := n2.AddPod("remote", 1003)
	lab.Wire()
	for _, p := range []*datapathtest.Pod{a, b, remote} {
		p.ServeName(80)
	}
	svc := datapath.Service{Frontend: netip.MustParseAddrPort("10.96.0.10:80"), Proto: datapath.ProtoTCP, Type: datapath.ClusterIP,
		Backends: []datapath.Backend{{Addr: b.Addr(80)}}}
	upsertOn(t, n1, svc)
	reach := func(from *datapathtest.Pod, to netip.AddrPort, want string) {
		t.Helper()
		if got, err := from.Fetch(ctx, to); err != nil || got != want {
			t.Fatalf("%s -> %v: got %q, %v; want %q", from.Name, to, got, err, want)
		}
	}
	unreachable := func(from *datapathtest.Pod, to netip.AddrPort) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if got, err := from.Fetch(ctx, to); err == nil {
			t.Fatalf("%s -> %v answered %q after prune", from.Name, to, got)
		}
	}
	reach(a, b.Addr(80), "b")
	reach(a, svc.Frontend, "b")
	reach(a, remote.Addr(80), "remote")

	pin := filepath.Join(n1.Config.PinDir(), "links", "from_container@"+b.HostDevice)
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("endpoint link pin: %v", err)
	}
	must(t, n1.DP.PruneEndpoints(ctx, []netip.Addr{a.IP}))
	unreachable(a, b.Addr(80))
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Fatalf("link pin of a pruned endpoint: %v, want it gone", err)
	}
	must(t, n1.DP.PruneServices(ctx, nil))
	unreachable(a, svc.Frontend)
	must(t, n1.DP.PruneNodeRoutes(ctx, nil))
	unreachable(a, remote.Addr(80))

	// Re-running the reconcilers restores everything.
	lab.Wire()
	upsertOn(t, n1, svc)
	reach(a, b.Addr(80), "b")
	reach(a, svc.Frontend, "b")
	reach(a, remote.Addr(80), "remote")

	// Deletes are idempotent.
	for range 2 {
		must(t, n1.DP.DeleteService(ctx, datapath.ServiceKey{Frontend: svc.Frontend, Proto: svc.Proto}))
		must(t, n1.DP.DeleteEndpoint(ctx, b.IP))
		must(t, n1.DP.DeleteNodeRoute(ctx, n2.PodCIDR))
		must(t, n1.DP.DeleteIPCache(ctx, netip.PrefixFrom(remote.IP, 32)))
	}
	unreachable(a, b.Addr(80))
	unreachable(a, remote.Addr(80))
}

// TestDeleteEndpointRemovesItsRoute: deleting an endpoint whose veth is
// still there removes the host's route to it and no other pod's.
func TestDeleteEndpointRemovesItsRoute(t *testing.T) {
	testgate.Root(t)
	lab := datapathtest.New(t, datapath.ModeNative, 1)
	n := lab.Nodes[0]
	a, b := n.AddPod("a", 1001), n.AddPod("b", 1002)
	lab.Wire()
	h := nodeNetlink(t, n)
	routesTo := func(ip netip.Addr) int {
		t.Helper()
		rs, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if ra, rb := routesTo(a.IP), routesTo(b.IP); ra != 1 || rb != 1 {
		t.Fatalf("routes to a and b before the delete: %d and %d, want 1 each", ra, rb)
	}
	must(t, n.DP.DeleteEndpoint(context.Background(), b.IP))
	if rb := routesTo(b.IP); rb != 0 {
		t.Errorf("%d route(s) to the deleted endpoint b (%s) kept", rb, b.IP)
	}
	if ra := routesTo(a.IP); ra != 1 {
		t.Errorf("deleting b left %d routes to a, want 1", ra)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunCollectsIdleConntrack(t *testing.T) {
	testgate.Root(t)
	ctx, cancel := context.WithCancel(context.Background())
	lab := datapathtest.New(t, datapath.ModeNative, 1, func(c *datapath.Config) {
		c.ConntrackGCInterval, c.ConntrackMaxIdle = 100*time.Millisecond, 2*time.Second
	})
	n := lab.Nodes[0]
	a, b := n.AddPod("a", 1001), n.AddPod("b", 1002)
	lab.Wire()
	b.ServeName(80)
	if got, err := a.Fetch(ctx, b.Addr(80)); err != nil || got != "b" {
		t.Fatalf("a -> b: got %q, %v", got, err)
	}
	entries := func() int {
		var (
			k  bpf.CTKey
			v  bpf.CTEntry
			nr int
		)
		it := n.DP.Objects().WeftCt.Iterate()
		for it.Next(&k, &v) {
			nr++
		}
		return nr
	}
	if entries() == 0 {
		t.Fatal("no conntrack entry after a connection")
	}
	done := make(chan error, 1)
	go func() { done <- n.DP.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := datapathtest.Eventually(ctx, 15*time.Second, func(context.Context) error {
		if c := entries(); c != 0 {
			return fmt.Errorf("%d conntrack entries left", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUninstallRemovesProxyRouting checks that the policy routing SetProxy
// installs for the L7 proxy (a rule on the proxy mark, a local route in its
// table) is there once, however often SetProxy runs, and goes with
// Uninstall.
func TestUninstallRemovesProxyRouting(t *testing.T) {
	testgate.Root(t)
	lab := datapathtest.New(t, datapath.ModeTunnel, 1)
	n := lab.Nodes[0]
	h := nodeNetlink(t, n)
	ours := func() (rules, routes int) {
		t.Helper()
		rs, err := h.RuleList(netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Table == datapath.ProxyTable && r.Mark == bpf.MarkProxy {
				rules++
			}
		}
		rts, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: datapath.ProxyTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		return rules, len(rts)
	}
	for range 2 {
		if err := n.DP.SetProxy(datapath.ProxyPorts{Ingress: 15080, Egress: 15081, DNS: 15053}); err != nil {
			t.Fatal(err)
		}
	}
	if rules, routes := ours(); rules != 1 || routes != 1 {
		t.Fatalf("after SetProxy twice: %d proxy rules and %d routes in table %d; want 1 and 1", rules, routes, datapath.ProxyTable)
	}
	if err := n.DP.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.DP = nil // uninstalled: the lab's cleanup has nothing left to do
	if rules, routes := ours(); rules != 0 || routes != 0 {
		t.Fatalf("after Uninstall: %d proxy rules and %d routes in table %d are left", rules, routes, datapath.ProxyTable)
	}
}

// nodeNetlink is a netlink handle in node n's namespace, closed with t.
func nodeNetlink(t *testing.T, n *datapathtest.Node) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromName(n.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}
