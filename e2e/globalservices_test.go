package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftnet/weft/api/agentapi"
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

	const name = svcNamespace + "/web"
	define := func(node, verb string, annotations ...string) {
		t.Helper()
		args := []string{"service", verb, name, "--port", "80:8080/TCP", "--selector", "app=web"}
		for _, a := range annotations {
			args = append(args, "--annotation", a)
		}
		if _, err := sx.weft(node, args...); err != nil {
			t.Fatal(err)
		}
	}
	const global, notShared = "service.cilium.io/global=true", "service.cilium.io/shared=false"
	define("c1-n1", "create", global)
	define("c2-n1", "create", global)
	ipC1, ipC2 := sx.globalIP(t, "c1-n1"), sx.globalIP(t, "c2-n1")

	t.Run("global-served-by-both-clusters", func(t *testing.T) {
		sx.waitServed(t, "client-c1", ipC1, []string{"web-c1", "web-c2"})
		sx.waitServed(t, "client-c2", ipC2, []string{"web-c1", "web-c2"})
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
	slices.Sort(want)
	eventually(t, time.Minute, fmt.Sprintf("%s reaches exactly %v through %v", client, want, ip), func() error {
		var seen []string
		for range 30 {
			name, err := sx.fetch(context.Background(), client, netip.AddrPortFrom(ip, 80))
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
