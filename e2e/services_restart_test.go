package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// restart kills the first node's agent, deletes a service it had programmed
// while it is down, and checks the restarted agent prunes the stale
// frontend from its LB maps and still serves the remaining service.
func (sx *serviceFixture) restart(t *testing.T) {
	sx.service(t, "create", "svc-e2e/stale", "--port", "80:8080", "--selector", "app=web")
	sx.waitBackends(t, "stale", sx.webPods())
	stale := sx.clusterIPOf(t, "svc-e2e/stale").String() + ":80"
	node := sx.e.Nodes[0].Name
	if !strings.Contains(sx.lbMap(t, node), stale) {
		t.Fatalf("node %s does not have %s in its LB maps", node, stale)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sx.e.StopAgent(ctx, node, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sx.e.AgentPID(node) == 0 {
			sx.e.StartAgent(context.Background(), node)
		}
	})
	if _, err := sx.weft(sx.e.Nodes[1].Name, "service", "delete", "svc-e2e/stale"); err != nil {
		t.Fatal(err)
	}
	if err := sx.e.StartAgent(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := sx.e.WaitAgent(ctx, node, time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "stale frontend "+stale+" pruned on "+node, func() error {
		if m := sx.lbMap(t, node); strings.Contains(m, stale) {
			return fmt.Errorf("still in the LB maps")
		}
		return nil
	})
	sx.waitBackends(t, "web", sx.webPods())
	ip := sx.clusterIPOf(t, "svc-e2e/web")
	if got := sx.backendsSeen(t, netip.AddrPortFrom(ip, 80), 60, 2); len(got) != 2 {
		t.Fatalf("after the restart ClusterIP %v reached %v, want two backends", ip, got)
	}
}

// webPods are the app=web pods that exist now.
func (sx *serviceFixture) webPods() []string {
	var out []string
	for name := range sx.pods {
		if strings.HasPrefix(name, "web-") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// lbMap is the node's weft_lb_services map as text.
func (sx *serviceFixture) lbMap(t *testing.T, node string) string {
	t.Helper()
	a, closeFn, err := sx.e.Agent(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	tbl, err := a.DumpBPF(context.Background(), &agentapi.DumpBPFRequest{Map: "lb"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range tbl.GetRows() {
		b.WriteString(strings.Join(r.GetCells(), " ") + "\n")
	}
	return b.String()
}
