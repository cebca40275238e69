package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// TestOverlappingPodCIDRs: `testenv up --overlapping-pod-cidrs` brings up
// three clusters that all use the pod CIDR pool 10.100.0.0/16, with global
// CIDRs 242.<id>.0.0/16, and connects them (connect refuses overlapping
// pools without global addressing). Every node syncs with both remotes;
// a node knows the remote clusters' pods by their global addresses (weft
// ipcache list, the BPF ipcache with the owning node as tunnel endpoint),
// never by their pod addresses, which are its own cluster's; and pods of
// one cluster still reach each other across nodes although every remote
// cluster has nodes with the same pod CIDRs.
func TestOverlappingPodCIDRs(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.OverlappingPodCIDRs = 3, 2, true
	e := up(t, "ov", spec)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, c := range e.Clusters {
		if c.PodCIDRPool != "10.100.0.0/16" {
			t.Fatalf("cluster %s has pod CIDR pool %s, want the shared 10.100.0.0/16", c.Name, c.PodCIDRPool)
		}
	}
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2", "c3"}, "c2": {"c1", "c3"}, "c3": {"c1", "c2"}})

	pa := addPod(t, e, "pa", "c1-n1")
	pa2 := addPod(t, e, "pa2", "c1-n2")
	pb := addPod(t, e, "pb", "c2-n1")
	pc := addPod(t, e, "pc", "c3-n1")
	// The first pod of each cluster's first node: the same address.
	if pa.IP != pb.IP || pa.IP != pc.IP {
		t.Logf("pod addresses pa %s, pb %s, pc %s (expected to coincide)", pa.IP, pb.IP, pc.IP)
	}
	global := func(cluster int, p testenv.Pod) string {
		g, ok := records.GlobalAddr(netip.MustParsePrefix(fmt.Sprintf("242.%d.0.0/16", cluster)), []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}, p.Addr())
		if !ok {
			t.Fatalf("pod %s at %s has no global address", p.Name, p.IP)
		}
		return g.String()
	}
	gb, gc := global(2, pb), global(3, pc)
	c2n1, _ := e.Node("c2-n1")
	c3n1, _ := e.Node("c3-n1")

	// weft ipcache list on c1-n1: the remote pods with their global addresses.
	eventually(t, time.Minute, "c1-n1 lists pb and pc with their global addresses", func() error {
		out, err := exec.CommandContext(ctx, e.Bin.Weft, "--name", e.Name, "--node", "c1-n1", "ipcache", "list").CombinedOutput()
		if err != nil {
			return fmt.Errorf("weft ipcache list: %v: %s", err, out)
		}
		for _, want := range []string{"GLOBAL ADDRESS", "default/pb", gb, "default/pc", gc, "default/pa"} {
			if !strings.Contains(string(out), want) {
				return fmt.Errorf("weft ipcache list lacks %q:\n%s", want, out)
			}
		}
		return nil
	})
	// The BPF ipcache: the global addresses behind their nodes; pa's own
	// address is local (no tunnel endpoint), not a remote pod's.
	eventually(t, time.Minute, "c1-n1's BPF ipcache holds the global addresses", func() error {
		for _, want := range []struct{ ip, tep string }{{gb, c2n1.IP}, {gc, c3n1.IP}} {
			rows, err := bpfIPCache(ctx, e, "c1-n1", want.ip, "none")
			if err != nil {
				return err
			}
			if len(rows) != 1 || !strings.Contains(rows[0], want.tep) {
				return fmt.Errorf("BPF ipcache rows for %s: %v, want one behind %s", want.ip, rows, want.tep)
			}
		}
		rows, err := bpfIPCache(ctx, e, "c1-n1", pa.IP, "none")
		if err != nil {
			return err
		}
		if len(rows) != 1 || strings.Contains(rows[0], c2n1.IP) || strings.Contains(rows[0], c3n1.IP) {
			return fmt.Errorf("BPF ipcache rows for pa's address %s: %v, want c1's own entry only", pa.IP, rows)
		}
		return nil
	})
	// Routes to nodes: the remote nodes' ranges are their global ones, so
	// c1-n2's pod CIDR, which c2-n2 and c3-n2 have too, keeps its route.
	eventually(t, time.Minute, "c1-n1 routes every other node's range", func() error {
		want, err := nodeRanges(ctx, e, "c1-n1")
		if err != nil {
			return err
		}
		if len(want) != 5 {
			return fmt.Errorf("node ranges %v, want 5 other nodes' ranges", want)
		}
		for p, cluster := range want {
			if cluster != "c1" && !strings.HasPrefix(p, fmt.Sprintf("242.%s.", cluster[1:])) {
				return fmt.Errorf("a node of %s is routed by %s, want a range of 242.%s.0.0/16", cluster, p, cluster[1:])
			}
		}
		return routesPresent(ctx, e, "c1-n1", want)
	})
	// Pods reach pods of other clusters by their global addresses, though
	// all three pods have the same pod address: the sender's node gives
	// the packet the sender's global address, the owner's node delivers it
	// to the pod address, and replies go the same way back.
	for _, p := range []testenv.Pod{pa, pb} {
		tg, err := e.Target("pod/" + p.Name)
		if err != nil {
			t.Fatal(err)
		}
		listenIn(t, tg.Do, p.Addr())
	}
	ga := global(1, pa)
	for _, c := range []struct {
		src string
		dst string
	}{{"pb", ga}, {"pc", ga}, {"pa", gb}} {
		dst := netip.AddrPortFrom(netip.MustParseAddr(c.dst), portHTTP)
		eventually(t, time.Minute, fmt.Sprintf("%s greeted by %s", c.src, dst), func() error { return greet(e, c.src, dst) })
	}
	// A policy admitting only cluster c2 on pa, enforced on c1: the source
	// identity comes from the tunnel, not from the translated address.
	weftCLI(t, e, "c1-n1", onlyC2, "policy", "import", "-f", "-")
	toPA := netip.AddrPortFrom(netip.MustParseAddr(ga), portHTTP)
	eventually(t, 30*time.Second, "pc (cluster c3) is refused by pa", func() error {
		if err := greet(e, "pc", toPA); err == nil {
			return fmt.Errorf("pc still reaches %s", toPA)
		}
		return nil
	})
	eventually(t, 30*time.Second, "pb (cluster c2) reaches pa", func() error { return greet(e, "pb", toPA) })
	weftCLI(t, e, "c1-n1", "", "policy", "delete", "default/only-c2")
	eventually(t, 30*time.Second, "pc reaches pa again", func() error { return greet(e, "pc", toPA) })
	// A TCP stream from pb to pa's global address survives kill -9 of the
	// agents at both ends: the translation is in pinned maps, and the
	// restarted agents restore the remotes' global entries.
	s := startFlowTo(t, e, pb, pa, ga, 7100, 30*time.Second)
	s.advance(t, 5, time.Minute, "stream from pb to pa's global address")
	for _, node := range []string{"c1-n1", "c2-n1"} {
		if err := e.StopAgent(ctx, node, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := e.StartAgent(ctx, node); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitAgent(ctx, node, time.Minute); err != nil {
			t.Fatal(err)
		}
		s.advance(t, 10, time.Minute, "stream to pa's global address after kill -9 of "+node+"'s agent")
	}
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2", "c3"}, "c2": {"c1", "c3"}})
	eventually(t, time.Minute, "pc greeted by pa after the restarts", func() error { return greet(e, "pc", toPA) })
	// c1's pods reach each other across nodes.
	waitReachable(t, e, pa, pa2)
	waitReachable(t, e, pa2, pa)
	// Disconnecting c2 removes its routes and entries from c1-n1 and
	// leaves c1's own route to c1-n2's pod CIDR, which c2-n2 shares.
	local, err := nodeRanges(ctx, e, "c1-n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := clustermesh.Disconnect(ctx, target(t, e, "c1"), target(t, e, "c2"), func(f string, a ...any) { t.Logf(f, a...) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "c1-n1 drained c2 and kept its own routes", func() error {
		for p, cluster := range local {
			if cluster == "c2" {
				delete(local, p)
			}
		}
		if err := routesPresent(ctx, e, "c1-n1", local); err != nil {
			return err
		}
		var out strings.Builder
		if err := e.Exec(ctx, "node/c1-n1", nil, &out, &out, "ip", "route", "show"); err != nil {
			return err
		}
		if strings.Contains(out.String(), "242.2.") {
			return fmt.Errorf("a route to c2's global range is left:\n%s", out.String())
		}
		if rows, err := bpfIPCache(ctx, e, "c1-n1", gb, "none"); err != nil || len(rows) != 0 {
			return fmt.Errorf("BPF ipcache still holds %v for pb's global address %s (%v)", rows, gb, err)
		}
		return nil
	})
	waitReachable(t, e, pa, pa2)
	for _, n := range []string{"c1-n1", "c2-n1", "c3-n2"} {
		for _, r := range []string{"c1", "c2", "c3"} {
			if strings.HasPrefix(n, r+"-") || (n == "c1-n1" && r == "c2") || (n == "c2-n1" && r == "c1") {
				continue // itself, or disconnected
			}
			rc, err := remoteStatus(ctx, e, n, r)
			if err != nil {
				t.Fatal(err)
			}
			if rejected(rc.Error) != 0 {
				t.Errorf("%s: remote %s: %s, want nothing rejected", n, r, rc.Error)
			}
		}
	}
}

// nodeRanges maps every other node's pod CIDR, as node knows it, to the
// node's cluster.
func nodeRanges(ctx context.Context, e *testenv.Env, node string) (map[string]string, error) {
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	nodes, err := a.ListNodes(ctx, &agentapi.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range nodes.Nodes {
		if !n.Local {
			for _, p := range n.PodCidrs {
				out[p] = n.Cluster
			}
		}
	}
	return out, nil
}

// routesPresent says which of ranges node has no route for.
func routesPresent(ctx context.Context, e *testenv.Env, node string, ranges map[string]string) error {
	var out strings.Builder
	if err := e.Exec(ctx, "node/"+node, nil, &out, &out, "ip", "route", "show"); err != nil {
		return fmt.Errorf("ip route in %s: %w: %s", node, err, out.String())
	}
	have := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			have[f[0]] = true
		}
	}
	for p := range ranges {
		if !have[p] {
			return fmt.Errorf("%s has no route to %s (of %s):\n%s", node, p, ranges[p], out.String())
		}
	}
	return nil
}
