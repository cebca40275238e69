package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// TestGlobalServicesOverlapping: a global service with a backend in each
// of three clusters that share the pod CIDR pool 10.100.0.0/16 (the three
// backends have the same pod address) behaves as on a mesh of disjoint
// pools (TestGlobalServices): affinity none reaches all three, local only
// c1's and fails over to the remote ones while c1 has none, remote only
// the other clusters'. The remote backends are reached at their global
// addresses, and `weft service list` shows those next to the pod
// addresses.
func TestGlobalServicesOverlapping(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.OverlappingPodCIDRs = 3, 1, true
	e := up(t, "gsov", spec)
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2", "c3"}, "c2": {"c1", "c3"}, "c3": {"c1", "c2"}})

	sx := &serviceFixture{e: e, pods: map[string]testenv.Pod{}, top: t}
	webs := map[string]testenv.Pod{}
	for _, c := range []string{"c1", "c2", "c3"} {
		webs[c] = sx.addPod(t, "web-"+c, c+"-n1", map[string]string{"app": "web"})
	}
	sx.addPod(t, "client-c1", "c1-n1", map[string]string{"app": "client"})
	if webs["c1"].IP != webs["c2"].IP || webs["c1"].IP != webs["c3"].IP {
		t.Logf("backend pod addresses %s, %s, %s (expected to coincide)", webs["c1"].IP, webs["c2"].IP, webs["c3"].IP)
	}

	define := func(node, verb string, annotations ...string) {
		t.Helper()
		sx.defineWeb(t, node, verb, annotations...)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		define(c+"-n1", "create", "service.cilium.io/global=true")
	}
	ip := sx.globalIP(t, "c1-n1")
	all := []string{"web-c1", "web-c2", "web-c3"}

	t.Run("affinity-none-served-by-all-three", func(t *testing.T) {
		sx.waitServed(t, "client-c1", ip, all)
	})
	t.Run("observe-names-global-addresses", func(t *testing.T) {
		// The flows of that traffic name each cluster's own pod with the
		// global address its packets crossed the mesh under: client-c1 on
		// c1-n1 (sent to web-c2), web-c2 on c2-n1 (reached from client-c1).
		for _, c := range []struct{ node, pod, to string }{{"c1-n1", "client-c1", "web-c2"}, {"c2-n1", "web-c2", ""}} {
			p := sx.pods[c.pod]
			g := globalOf(t, int(c.node[1]-'0'), p)
			eventually(t, 30*time.Second, fmt.Sprintf("weft observe on %s names %s with %s", c.node, c.pod, g), func() error {
				if _, err := sx.fetch(context.Background(), "client-c1", netip.AddrPortFrom(ip, 80)); err != nil {
					return err
				}
				out, err := sx.weft(c.node, "observe", "--last", "200", "--pod", svcNamespace+"/"+c.pod)
				if err != nil {
					return err
				}
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, svcNamespace+"/"+c.pod+":") && strings.Contains(line, "(global "+g.String()+")") {
						return nil
					}
				}
				return fmt.Errorf("no flow names %s (global %s):\n%s", c.pod, g, out)
			})
		}
	})
	t.Run("service-list-shows-both-addresses", func(t *testing.T) {
		// The remote backends by their global addresses, each with its
		// pod address, which is c1's own backend's too.
		var want []string
		for _, c := range []int{2, 3} {
			p := webs[fmt.Sprintf("c%d", c)]
			g := globalOf(t, c, p)
			want = append(want, fmt.Sprintf("%s:8080 (active; pod %s:8080)", g, p.IP))
		}
		want = append(want, fmt.Sprintf("=> %s:8080 (active)\n", webs["c1"].IP))
		eventually(t, 30*time.Second, "weft service list on c1-n1 shows both addresses of the remote backends", func() error {
			out, err := sx.weft("c1-n1", "service", "list")
			if err != nil {
				return err
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					return fmt.Errorf("weft service list lacks %q:\n%s", w, out)
				}
			}
			return nil
		})
	})
	t.Run("affinity-local-fails-over-and-back", func(t *testing.T) {
		define("c1-n1", "update", "service.cilium.io/affinity=local")
		sx.waitServed(t, "client-c1", ip, []string{"web-c1"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.DelPod(ctx, "web-c1"); err != nil {
			t.Fatal(err)
		}
		sx.waitServed(t, "client-c1", ip, []string{"web-c2", "web-c3"}) // failover to the remote clusters
		sx.addPod(t, "web-c1", "c1-n1", map[string]string{"app": "web"})
		sx.waitServed(t, "client-c1", ip, []string{"web-c1"}) // fail-back
	})
	t.Run("affinity-remote-prefers-other-clusters", func(t *testing.T) {
		define("c1-n1", "update", "service.cilium.io/affinity=remote")
		sx.waitServed(t, "client-c1", ip, []string{"web-c2", "web-c3"})
	})
	t.Run("affinity-none-again", func(t *testing.T) {
		define("c1-n1", "update", "service.cilium.io/affinity-")
		sx.waitServed(t, "client-c1", ip, all)
	})
}

// globalOf is the global address of pod p of cluster c<id> in testenv's
// overlapping mesh (pool 10.100.0.0/16, global CIDR 242.<id>.0.0/16).
func globalOf(t testing.TB, id int, p testenv.Pod) netip.Addr {
	t.Helper()
	g, ok := records.GlobalAddr(netip.MustParsePrefix(fmt.Sprintf("242.%d.0.0/16", id)), []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}, p.Addr())
	if !ok {
		t.Fatalf("pod %s at %s has no global address", p.Name, p.IP)
	}
	return g
}
