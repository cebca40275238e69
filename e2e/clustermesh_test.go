package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// TestClusterMesh: two clusters of two nodes, connected by testenv up
// (tunnel and native routing on etcd; tunnel on Consul cluster stores).
// Pods reach pods across clusters; a TCP stream across clusters survives a
// kill -9 of a cluster's apiserver and new endpoints propagate after it;
// records a remote may not announce are rejected; disconnect drains every
// remote node, endpoint and route from every node; reconnect restores.
func TestClusterMesh(t *testing.T) {
	for _, tc := range []struct{ name, routing, kvstore string }{
		{"tunnel", "tunnel", testenv.StoreEtcd},
		{"native", "native", testenv.StoreEtcd},
		{"consul", "tunnel", testenv.StoreConsul},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meshBinaries(t)
			spec := testenv.DefaultSpec()
			spec.Clusters, spec.Nodes, spec.Routing, spec.KVStore = 2, 2, tc.routing, tc.kvstore
			e := up(t, "cm"+tc.name[:1], spec)
			meshScenario(t, e)
		})
	}
}

func meshScenario(t *testing.T, e *testenv.Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	pa := addPod(t, e, "pa", "c1-n1")
	pb := addPod(t, e, "pb", "c2-n2")
	waitReachable(t, e, pa, pb)
	waitReachable(t, e, pb, pa)
	s := startFlow(t, e, pa, pb, 7100, 30*time.Second)
	s.advance(t, 5, time.Minute, "cross-cluster stream before the apiserver restart")

	// kill -9 of c2's apiserver: the stream goes on; after its restart a
	// new endpoint of c2 reaches c1.
	if err := e.StopAPIServer(ctx, "c2", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.advance(t, 10, time.Minute, "cross-cluster stream while c2's apiserver is down")
	// kill -9 of pa's agent while c2 is unreachable: the restarted agent
	// keeps c2's state (restored from its state file and pinned maps).
	if err := e.StopAgent(ctx, "c1-n1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := e.StartAgent(ctx, "c1-n1"); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAgent(ctx, "c1-n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the restarted agent synced its own cluster", func() error {
		a, closeFn, err := e.Agent(ctx, "c1-n1")
		if err != nil {
			return err
		}
		defer closeFn()
		st, err := a.Status(ctx, &agentapi.StatusRequest{})
		if err == nil && !st.Store.GetSynced() {
			err = fmt.Errorf("not synced yet")
		}
		return err
	})
	s.advance(t, 25, time.Minute, "cross-cluster stream after the agent restarted while c2 is unreachable")
	if rows, err := bpfIPCache(ctx, e, "c1-n1", pb.IP, "-"); err != nil || len(rows) != 1 {
		t.Fatalf("c1-n1's BPF ipcache after its restart holds %v for %s (%v), want c2's entry kept", rows, pb.IP, err)
	}
	if err := e.StartAPIServer(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAPIServer(ctx, "c2", time.Minute); err != nil {
		t.Fatal(err)
	}
	pd := addPod(t, e, "pd", "c2-n1")
	waitReachable(t, e, pa, pd)
	waitReachable(t, e, pd, pa)
	s.advance(t, 5, time.Minute, "cross-cluster stream after the apiserver restart")

	meshPolicy(t, e, pa, pb, addPod(t, e, "pc", "c1-n2"))

	// Records c2 may not announce: an identity of c1's range (the mirror
	// drops it) and an address in c1's pool (c1's agents reject it).
	c2store := hostStore(t, e, "c2")
	keys := records.NewKeys(c2store.Prefix())
	foreignID := records.IPCacheEntry{IP: netip.MustParseAddr("10.101.200.1"), Identity: records.ClusterIdentity(1, 400), HostIP: netip.MustParseAddr("192.168.2.1")}
	hijack := records.IPCacheEntry{IP: netip.MustParseAddr("10.100.77.7"), Identity: records.ClusterIdentity(2, 400), HostIP: netip.MustParseAddr("192.168.2.1")}
	for _, en := range []records.IPCacheEntry{foreignID, hijack} {
		key := keys.IPCache("c2", en.IP)
		val, err := records.Encode(key, &en)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c2store.Update(ctx, key, val); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c2store.Delete(context.Background(), key) })
	}
	// A node of c2 claiming c1-n1's underlay address.
	evil := records.Node{Name: "evil", Cluster: "c2", ClusterID: 2, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")},
		PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.101.99.0/24")}}
	evilKey := keys.Node("c2", "evil")
	if val, err := records.Encode(evilKey, &evil); err != nil {
		t.Fatal(err)
	} else if _, err := c2store.Update(ctx, evilKey, val); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2store.Delete(context.Background(), evilKey) })
	eventually(t, time.Minute, "c1's agents count the rejected record", func() error {
		for _, n := range nodesOf(e, "c1") {
			rc, err := remoteStatus(ctx, e, n, "c2")
			if err != nil {
				return err
			}
			if !strings.Contains(rc.Error, "rejected") {
				return fmt.Errorf("%s: remote c2 reports %q, want a rejection count", n, rc.Error)
			}
		}
		return nil
	})
	for _, n := range nodesOf(e, "c1") {
		for _, en := range []records.IPCacheEntry{foreignID, hijack} {
			rows, err := bpfIPCache(ctx, e, n, en.IP.String(), "-")
			if err != nil || len(rows) > 0 {
				t.Errorf("%s: BPF ipcache holds %v (%v) from a record c2 may not announce", n, rows, err)
			}
		}
	}
	eventually(t, time.Minute, "c1's agents reject the node claiming c1-n1's address", func() error {
		for _, n := range nodesOf(e, "c1") {
			rc, err := remoteStatus(ctx, e, n, "c2")
			if err != nil {
				return err
			}
			if rc.Nodes != 2 {
				t.Fatalf("%s accepted c2's node claiming c1-n1's address: %d nodes of c2", n, rc.Nodes)
			}
			// The mirror never serves foreignID: the agents reject hijack
			// (an address in c1's pool) and evil (c1-n1's underlay address),
			// each counted under its reason.
			if rejected(rc.Error) < 2 || rc.Rejected["pod-cidr"] < 1 || rc.Rejected["address-conflict"] < 1 {
				return fmt.Errorf("%s: remote c2 reports %q and rejections %v, want pod-cidr and address-conflict", n, rc.Error, rc.Rejected)
			}
		}
		return nil
	})
	if err := c2store.Delete(ctx, evilKey); err != nil {
		t.Fatal(err)
	}

	for _, en := range []records.IPCacheEntry{foreignID, hijack} {
		if err := c2store.Delete(ctx, keys.IPCache("c2", en.IP)); err != nil {
			t.Fatal(err)
		}
	}

	// Disconnect: nothing of c2 is left on c1's nodes, nor of c1 on c2's.
	ta, tb := target(t, e, "c1"), target(t, e, "c2")
	if err := clustermesh.Disconnect(ctx, ta, tb, t.Logf); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "every node drained the other cluster", func() error {
		for _, pair := range [][2]string{{"c1", "c2"}, {"c2", "c1"}} {
			for _, n := range nodesOf(e, pair[0]) {
				if err := drained(ctx, e, n, pair[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})

	// Reconnect: reachable again.
	if err := clustermesh.Connect(ctx, ta, tb, t.Logf); err != nil {
		t.Fatal(err)
	}
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	waitReachable(t, e, pa, pb)
	waitReachable(t, e, pd, pa)
	if e.Routing == "tunnel" {
		meshHungAPIServer(t, e, pa, pd)
	}
}

// meshHungAPIServer: c2's apiserver stops answering without closing its
// connections (SIGSTOP); c1's agents notice the stale heartbeat, keep c2's
// state (a stream to c2 goes on) and reconnect once it answers again.
func meshHungAPIServer(t *testing.T, e *testenv.Env, pa, pd testenv.Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startFlow(t, e, pa, pd, 7100, 30*time.Second)
	s.advance(t, 5, time.Minute, "stream to c2 before its apiserver hangs")
	tg := target(t, e, "c2")
	pid, err := os.ReadFile(tg.Dir.Path("apiserver.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
	defer resume()
	eventually(t, time.Minute, "c1's agents notice c2's stale heartbeat", func() error {
		for _, n := range nodesOf(e, "c1") {
			rc, err := remoteStatus(ctx, e, n, "c2")
			if err != nil {
				return err
			}
			if rc.Connected {
				return fmt.Errorf("%s: still connected to c2", n)
			}
			if rc.Endpoints == 0 {
				t.Fatalf("%s dropped c2's endpoints while c2 hangs", n)
			}
		}
		return nil
	})
	s.advance(t, 10, time.Minute, "stream to c2 while its apiserver hangs")
	resume()
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}})
	s.advance(t, 5, time.Minute, "stream to c2 after its apiserver answers again")
}

// onlyC2 admits into pods labelled app=pa only pods of cluster c2.
const onlyC2 = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: only-c2
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: pa
  ingress:
  - fromEndpoints:
    - matchLabels:
        k8s:io.cilium.k8s.policy.cluster: c2
`

// meshPolicy: a policy on c1 allowing only pods of cluster c2 into pa
// admits pb (c2) and refuses pc (c1): remote identities carry their labels.
func meshPolicy(t *testing.T, e *testenv.Env, pa, pb, pc testenv.Pod) {
	tg, err := e.Target("pod/" + pa.Name)
	if err != nil {
		t.Fatal(err)
	}
	listenIn(t, tg.Do, pa.Addr())
	dst := netip.AddrPortFrom(pa.Addr(), portHTTP)
	eventually(t, 30*time.Second, "pc reaches pa before the policy", func() error { return greet(e, pc.Name, dst) })
	weftCLI(t, e, "c1-n1", onlyC2, "policy", "import", "-f", "-")
	defer weftCLI(t, e, "c1-n1", "", "policy", "delete", "default/only-c2")
	eventually(t, 30*time.Second, "pc (cluster c1) is refused by pa", func() error {
		if err := greet(e, pc.Name, dst); err == nil {
			return fmt.Errorf("pc still reaches %s", dst)
		}
		return nil
	})
	eventually(t, 30*time.Second, "pb (cluster c2) reaches pa", func() error { return greet(e, pb.Name, dst) })
}
