package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/testenv"
)

// TestGlobalServices: the same service in two connected clusters, marked
// service.cilium.io/global, is served by the backends of both; shared=false
// keeps a cluster's backends to itself; affinity local uses remote backends
// only while no local one exists (and returns when one does); affinity
// remote prefers the other cluster.
func TestGlobalServices(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		t.Run(routing, func(t *testing.T) { globalServices(t, routing) })
	}
}

func globalServices(t *testing.T, routing string) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.Routing = 2, 2, routing
	e := up(t, "gs"+routing[:3], spec)
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})

	sx := &serviceFixture{e: e, pods: map[string]testenv.Pod{}, top: t}
	sx.addPod(t, "web-c1", "c1-n1", map[string]string{"app": "web"})
	sx.addPod(t, "web-c2", "c2-n1", map[string]string{"app": "web"})
	sx.addPod(t, "client-c1", "c1-n2", map[string]string{"app": "client"})
	sx.addPod(t, "client-c2", "c2-n2", map[string]string{"app": "client"})

	define := func(node, verb string, annotations ...string) {
		t.Helper()
		sx.defineWeb(t, node, verb, annotations...)
	}
	const global, notShared = "service.cilium.io/global=true", "service.cilium.io/shared=false"
	define("c1-n1", "create", global)
	define("c2-n1", "create", global)
	ipC1, ipC2 := sx.globalIP(t, "c1-n1"), sx.globalIP(t, "c2-n1")

	t.Run("global-served-by-both-clusters", func(t *testing.T) {
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1", "web-c2"})
		sx.waitServed(t, "client-c2", ipC2, []string{"web-c1", "web-c2"})
	})
	t.Run("agent-restart-keeps-remote-backends", func(t *testing.T) {
		restartKeepsGlobalBackends(t, e, "c1-n2", netip.AddrPortFrom(ipC1, 80), 2)
	})
	t.Run("shared-false-keeps-backends-home", func(t *testing.T) {
		define("c2-n1", "update", notShared) // one annotation changes; global=true stays
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1"})
		sx.waitServed(t, "client-c2", ipC2, []string{"web-c1", "web-c2"}) // c1's are still shared
		define("c2-n1", "update", "service.cilium.io/shared-")            // removes the one key
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1", "web-c2"})
	})
	t.Run("affinity-local-fails-over-and-back", func(t *testing.T) {
		define("c1-n1", "update", "service.cilium.io/affinity=local")
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.DelPod(ctx, "web-c1"); err != nil {
			t.Fatal(err)
		}
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c2"}) // failover to c2
		sx.addPod(t, "web-c1", "c1-n1", map[string]string{"app": "web"})
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1"}) // fail-back
	})
	t.Run("affinity-remote-prefers-other-cluster", func(t *testing.T) {
		define("c1-n1", "update", "service.cilium.io/affinity=remote")
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c2"})
	})
}

// defineWeb creates or updates (verb) the service svcNamespace/web, port
// 80 to 8080 of the pods app=web, through node, with annotations.
func (sx *serviceFixture) defineWeb(t *testing.T, node, verb string, annotations ...string) {
	t.Helper()
	args := []string{"service", verb, svcNamespace + "/web", "--port", "80:8080/TCP", "--selector", "app=web"}
	for _, a := range annotations {
		args = append(args, "--annotation", a)
	}
	if _, err := sx.weft(node, args...); err != nil {
		t.Fatal(err)
	}
}

// globalIP is the service's ClusterIP in the cluster of node.
func (sx *serviceFixture) globalIP(t *testing.T, node string) netip.Addr {
	t.Helper()
	out, err := sx.weft(node, "service", "get", svcNamespace+"/web", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var spec agentapi.ServiceSpec
	if err := protojson.Unmarshal([]byte(out), &spec); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	ip, err := netip.ParseAddr(spec.GetClusterIp())
	if err != nil {
		t.Fatalf("cluster IP of %s/web in %s's cluster: %v", svcNamespace, node, err)
	}
	return ip
}

// waitServed waits until connections from client to ip:80 reach exactly
// the backends want (every one of them, and no other within 30 tries).
func (sx *serviceFixture) waitServed(t *testing.T, client string, ip netip.Addr, want []string) {
	t.Helper()
	waitBackends(t, fmt.Sprintf("%s reaches exactly %v through %v", client, want, ip), want, func() (string, error) {
		return sx.fetch(context.Background(), client, netip.AddrPortFrom(ip, 80))
	})
}

// waitBackends waits until 30 answers of fetch (the name of the backend
// that answered) are exactly want: every one of them and no other.
func waitBackends(t *testing.T, what string, want []string, fetch func() (string, error)) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	eventually(t, time.Minute, what, func() error {
		var seen []string
		for range 30 {
			name, err := fetch()
			if err != nil {
				return err
			}
			if !slices.Contains(seen, name) {
				seen = append(seen, name)
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, want) {
			return fmt.Errorf("reached %v", seen)
		}
		return nil
	})
}

// restartKeepsGlobalBackends kills node's agent with -9 and starts it
// again while it reads the node's pinned LB map every few milliseconds:
// the global service's frontend must never hold fewer than want backends
// (the restarted agent waits for its remotes' sync before it programs
// global services), and the agent says how global services waited.
func restartKeepsGlobalBackends(t *testing.T, e *testenv.Env, node string, frontend netip.AddrPort, want int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := ebpf.LoadPinnedMap(filepath.Join(e.BPFFS, "weft", node, "weft_lb_services"), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	key := bpf.NewServiceKey(frontend, 6)
	count := func() int {
		var v bpf.ServiceValue
		if err := m.Lookup(&key, &v); err != nil {
			return 0
		}
		return int(v.Count)
	}
	if n := count(); n != want {
		t.Fatalf("before the restart %s of %s has %d backends, want %d", frontend, node, n, want)
	}
	low, samples := want, 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			samples++
			if n := count(); n < low {
				low = n
			}
		}
	}()
	t0 := time.Now()
	if err := e.StopAgent(ctx, node, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := e.StartAgent(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAgent(ctx, node, time.Minute); err != nil {
		t.Fatal(err)
	}
	var report string
	eventually(t, time.Minute, node+" programs global services after its remotes synced", func() error {
		a, closeFn, err := e.Agent(ctx, node)
		if err != nil {
			return err
		}
		defer closeFn()
		st, err := a.Status(ctx, &agentapi.StatusRequest{})
		if err != nil {
			return err
		}
		if report = st.GetGlobalServices(); !strings.HasPrefix(report, "programmed") {
			return fmt.Errorf("global services: %q", report)
		}
		return nil
	})
	time.Sleep(time.Second) // keep watching a little after the gate opened
	close(stop)
	<-done
	if !strings.Contains(report, "once every remote cluster was synced") {
		t.Errorf("%s: global services %q, want them programmed once the remotes were synced", node, report)
	}
	if low < want {
		t.Errorf("%s's LB map held %d backends of %s during the restart (%d samples), want never fewer than %d", node, low, frontend, samples, want)
	}
	t.Logf("FIGURE global-services-restart: %s: %s; %d samples of the LB map over %v, fewest backends %d",
		node, report, samples, time.Since(t0).Round(time.Millisecond), low)
}
