package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// TestFaultsNodeDeathGC (part of the fault suite, docs/reliability.md): in
// a cluster without a weft-apiserver, a node is killed and never returns.
// The surviving agent, elected by the cluster's collector lock, frees the
// dead node's pod CIDR and the identity only its pod used once their grace
// periods have passed, and records the collection in the store. The time
// from the kill to both being reclaimed is a FIGURE line.
func TestFaultsNodeDeathGC(t *testing.T) {
	t.Parallel()
	spec := testenv.DefaultSpec()
	spec.Nodes, spec.LeaseTTL = 2, 10*time.Second
	spec.AgentArgs = []string{"--gc-interval=1s", "--node-gc-grace=5s", "--identity-gc-grace=5s"}
	e := up(t, "fg", spec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A pod whose labels no other pod has: its identity dies with the node.
	lonely, err := e.AddPod(ctx, testenv.PodSpec{Name: "lonely", Node: "c1-n2", Labels: map[string]string{"app": "only-on-n2"}})
	if err != nil {
		t.Fatal(err)
	}
	a, closeFn, err := e.Agent(ctx, "c1-n2")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := a.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: lonely.IP})
	if err != nil {
		closeFn()
		t.Fatal(err)
	}
	st, err := a.Status(ctx, &agentapi.StatusRequest{})
	closeFn()
	if err != nil || len(st.PodCidrs) != 1 {
		t.Fatalf("status of c1-n2: %v %v", st, err)
	}
	id, cidr := records.ID(ep.Identity), netip.MustParsePrefix(st.PodCidrs[0])
	store := hostStore(t, e, "c1")
	k := records.NewKeys(store.Prefix())
	for _, key := range []string{k.IPAM("c1", cidr), k.Identity(id)} {
		if _, err := store.Get(ctx, key); err != nil {
			t.Fatalf("%s before the node died: %v", key, err)
		}
	}

	killed := time.Now()
	if err := e.StopAgent(ctx, "c1-n2", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone := func(key string) error {
		if _, err := store.Get(ctx, key); !errors.Is(err, kvstore.ErrNotFound) {
			return fmt.Errorf("%s still there (%v)", key, err)
		}
		return nil
	}
	eventually(t, 3*time.Minute, "the dead node's pod CIDR and its pod's identity are reclaimed", func() error {
		return errors.Join(gone(k.IPAM("c1", cidr)), gone(k.Identity(id)))
	})
	figure(t, "node-death-gc", "the dead node's pod CIDR and lone identity reclaimed after kill -9 in (lease 10 s + graces 5 s)", time.Since(killed))
	// The pass that freed the last of them records it when it ends.
	eventually(t, time.Minute, "the collection is recorded", func() error {
		rec, err := gc.Last(ctx, store, store.Prefix(), "c1")
		if err == nil && (rec.By != "agent c1-n1" || rec.Freed.Empty() || len(rec.Freed.CIDRs["c1-n2"]) != 1) {
			err = fmt.Errorf("last collection %+v (freed %+v), want one by agent c1-n1 that freed c1-n2's pod CIDR", rec, rec.Freed)
		}
		return err
	})
	if _, err := store.Get(ctx, k.IPAM("c1", mustPodCIDR(t, e, "c1-n1"))); err != nil {
		t.Errorf("the live node's pod CIDR: %v", err)
	}
	// weft status on the survivor shows the collection and what it freed.
	out, _ := weftStatus(ctx, e, "c1-n1")
	for _, want := range []string{"Collection:", "by agent c1-n1", fmt.Sprintf("pod CIDRs of dead nodes (c1-n2 %s)", cidr)} {
		if !strings.Contains(out, want) {
			t.Errorf("weft status on c1-n1 lacks %q:\n%s", want, out)
		}
	}
}

// weftStatus runs `weft status` against node and returns its output and
// exit error.
func weftStatus(ctx context.Context, e *testenv.Env, node string) (string, error) {
	out, err := exec.CommandContext(ctx, e.Bin.Weft, "--name", e.Name, "--node", node, "status").CombinedOutput()
	return string(out), err
}

func mustPodCIDR(t *testing.T, e *testenv.Env, node string) netip.Prefix {
	t.Helper()
	a, closeFn, err := e.Agent(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	st, err := a.Status(context.Background(), &agentapi.StatusRequest{})
	if err != nil || len(st.PodCidrs) != 1 {
		t.Fatalf("status of %s: %v %v", node, st, err)
	}
	return netip.MustParsePrefix(st.PodCidrs[0])
}
