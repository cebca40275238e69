package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// TestServices brings up two nodes in tunnel and native mode on etcd, and
// in tunnel mode on Consul, runs backend pods on both, defines services
// with the weft CLI and checks them from pods and nodes: ClusterIP across
// nodes, ExternalIP, NodePort from the other node, session affinity,
// backend churn under a running client, refused input, HostPort, and an
// agent restart.
func TestServices(t *testing.T) {
	for _, tc := range []struct{ routing, store string }{
		{testenv.RoutingTunnel, testenv.StoreEtcd}, {testenv.RoutingNative, testenv.StoreEtcd}, {testenv.RoutingTunnel, testenv.StoreConsul},
	} {
		t.Run(tc.routing+"/"+tc.store, func(t *testing.T) {
			spec := testenv.DefaultSpec()
			spec.Nodes, spec.Routing, spec.KVStore = 2, tc.routing, tc.store
			sx := newServiceFixture(t, up(t, "svc-"+tc.routing[:3]+"-"+tc.store[:3], spec))
			sx.service(t, "create", "svc-e2e/web", "--port", "80:8080/TCP", "--selector", "app=web", "--external-ip", svcExternalIP.String())
			t.Run("clusterip-reaches-all-backends", sx.clusterIP)
			t.Run("external-ip", sx.externalIP)
			t.Run("nodeport-from-other-node", sx.nodePort)
			t.Run("apply-manifest", sx.applyManifest)
			t.Run("session-affinity", sx.affinity)
			t.Run("backend-churn", sx.churn)
			t.Run("bad-input-writes-nothing", sx.refused)
			t.Run("hostport", sx.hostPort)
			t.Run("restart-prunes-stale-frontends", sx.restart)
		})
	}
}

const svcNamespace = "svc-e2e"

var svcExternalIP = netip.MustParseAddr("192.0.2.80")

type serviceFixture struct {
	e    *testenv.Env
	pods map[string]testenv.Pod
	top  *testing.T // servers live as long as the environment
}

func newServiceFixture(t *testing.T, e *testenv.Env) *serviceFixture {
	sx := &serviceFixture{e: e, pods: map[string]testenv.Pod{}, top: t}
	sx.addPod(t, "web-1", e.Nodes[0].Name, map[string]string{"app": "web"})
	sx.addPod(t, "web-2", e.Nodes[1].Name, map[string]string{"app": "web"})
	sx.addPod(t, "client", e.Nodes[0].Name, map[string]string{"app": "client"})
	return sx
}

// addPod creates a pod and, for app=web, a server on 8080 that answers
// every connection with the pod's name, then echoes lines.
func (sx *serviceFixture) addPod(t *testing.T, name, node string, labels map[string]string) testenv.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := sx.e.AddPod(ctx, testenv.PodSpec{Name: name, Node: node, Namespace: svcNamespace, Labels: labels})
	if err != nil {
		t.Fatalf("add pod %s: %v", name, err)
	}
	sx.pods[name] = p
	if labels["app"] != "web" {
		return p
	}
	tgt, err := sx.e.Target("pod/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := tgt.Do(func() (err error) { ln, err = net.Listen("tcp4", p.IP+":8080"); return err }); err != nil {
		t.Fatalf("listen in %s: %v", name, err)
	}
	sx.top.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fmt.Fprintf(c, "%s\n", name); io.Copy(c, c) }()
		}
	}()
	return p
}

// weft runs the CLI against node; failures are returned with the output.
func (sx *serviceFixture) weft(node string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sx.e.Bin.Weft, append([]string{"--name", sx.e.Name, "--node", node}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("weft %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// service runs `weft service <args>` on the first node and registers the
// deletion of the service it names (through the second node).
func (sx *serviceFixture) service(t *testing.T, args ...string) {
	t.Helper()
	if _, err := sx.weft(sx.e.Nodes[0].Name, append([]string{"service"}, args...)...); err != nil {
		t.Fatal(err)
	}
	if args[0] == "create" {
		name := args[1]
		t.Cleanup(func() {
			if _, err := sx.weft(sx.e.Nodes[1].Name, "service", "delete", name); err != nil {
				t.Error(err)
			}
		})
	}
}

// spec reads a service definition through a node's agent.
func (sx *serviceFixture) spec(t *testing.T, name string) *agentapi.ServiceSpec {
	t.Helper()
	out, err := sx.weft(sx.e.Nodes[1].Name, "service", "get", name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var s agentapi.ServiceSpec
	if err := protojson.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return &s
}

// fetch connects from a pod's process (in its node's cgroup, so the socket
// load balancer applies) and returns the backend's name.
func (sx *serviceFixture) fetch(ctx context.Context, from string, addr netip.AddrPort) (string, error) {
	tgt, err := sx.e.Target("pod/" + from)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && head -n1 <&3", addr.Addr(), addr.Port())
	out, err := tgt.Output(ctx, "bash", "-c", script)
	return strings.TrimSpace(string(out)), err
}

// backendsSeen fetches up to n times and returns the distinct answers.
func (sx *serviceFixture) backendsSeen(t *testing.T, addr netip.AddrPort, n int, want int) []string {
	t.Helper()
	var seen []string
	for i := 0; i < n && len(seen) < want; i++ {
		name, err := sx.fetch(context.Background(), "client", addr)
		if err != nil {
			t.Fatalf("connect to %v from pod client: %v", addr, err)
		}
		if !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
	}
	slices.Sort(seen)
	return seen
}

func (sx *serviceFixture) clusterIPOf(t *testing.T, name string) netip.Addr {
	return netip.MustParseAddr(sx.spec(t, name).GetClusterIp())
}

func (sx *serviceFixture) clusterIP(t *testing.T) {
	ip := sx.clusterIPOf(t, "svc-e2e/web")
	sx.waitBackends(t, "web", []string{"web-1", "web-2"})
	if got := sx.backendsSeen(t, netip.AddrPortFrom(ip, 80), 60, 2); !slices.Equal(got, []string{"web-1", "web-2"}) {
		t.Fatalf("connections to ClusterIP %v reached %v, want both web-1 and web-2", ip, got)
	}
}

func (sx *serviceFixture) externalIP(t *testing.T) {
	sx.waitBackends(t, "web", []string{"web-1", "web-2"})
	if got := sx.backendsSeen(t, netip.AddrPortFrom(svcExternalIP, 80), 60, 2); len(got) == 0 {
		t.Fatalf("external IP %v reached no backend", svcExternalIP)
	}
}
