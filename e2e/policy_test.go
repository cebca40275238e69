package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// TestPolicy brings up two nodes in tunnel and in native mode, places pods
// of the deathstar and team-isolation examples on them, and checks each
// policy scenario end to end: policies imported with the weft CLI, TCP
// connections that get through or not, and a policy-denied drop event for
// every expected drop.
func TestPolicy(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		t.Run(routing, func(t *testing.T) {
			spec := testenv.DefaultSpec()
			spec.Nodes, spec.Routing = 2, routing
			px := newPolicyFixture(t, up(t, "pol-"+routing[:3], spec))
			t.Run("deathstar", px.deathstar)
			t.Run("team-isolation", px.teamIsolation)
			t.Run("team-isolation-k8s", px.teamIsolationK8s)
			t.Run("default-deny", px.defaultDeny)
			t.Run("deny-overrides-allow", px.denyOverridesAllow)
			t.Run("cidr-except", px.cidrExcept)
			t.Run("entities-world-host", px.entitiesWorldHost)
			t.Run("refused", px.refused)
			t.Run("survives-agent-restart", px.survivesRestart)
		})
	}
}

// Ports every pod (and the outside listeners) accept TCP on.
const (
	portHTTP = 80
	portAlt  = 8080
)

// Addresses in the underlay namespace standing for the world: the gateway,
// and one added address inside the except range of the CIDR scenario.
var (
	worldIn     = netip.MustParseAddr("192.168.0.1")
	worldExcept = netip.MustParseAddr("192.168.0.200")
)

type policyFixture struct {
	e     *testenv.Env
	pods  map[string]testenv.Pod
	flows map[string]*flowLog // by node
	nodes [2]testenv.Node
}

type podDef struct {
	name, node, ns string
	labels         map[string]string
}

func newPolicyFixture(t *testing.T, e *testenv.Env) *policyFixture {
	px := &policyFixture{e: e, pods: map[string]testenv.Pod{}, flows: map[string]*flowLog{}, nodes: [2]testenv.Node{e.Nodes[0], e.Nodes[1]}}
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	defs := []podDef{
		{"deathstar", n1, "default", map[string]string{"org": "empire", "class": "deathstar"}},
		{"tiefighter", n2, "default", map[string]string{"org": "empire", "class": "tiefighter"}},
		{"xwing", n2, "default", map[string]string{"org": "alliance", "class": "xwing"}},
		{"a-frontend", n1, "team-a", map[string]string{"app": "frontend"}},
		{"a-db", n2, "team-a", map[string]string{"app": "db"}},
		{"b-api", n1, "team-b", map[string]string{"app": "api"}},
		{"b-other", n2, "team-b", map[string]string{"app": "other"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, d := range defs {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod: %v", err)
		}
		px.pods[d.name] = p
		px.listen(t, "pod/"+d.name, p.Addr())
	}
	for _, n := range e.Nodes {
		px.listen(t, "node/"+n.Name, n.Addr())
		px.flows[n.Name] = startFlows(t, e, n.Name)
	}
	px.world(t)
	return px
}

// listen accepts TCP on addr:80 and addr:8080 inside target until the
// test ends; each connection gets "ok\n".
func (px *policyFixture) listen(t *testing.T, target string, addr netip.Addr) {
	tg, err := px.e.Target(target)
	if err != nil {
		t.Fatal(err)
	}
	listenIn(t, tg.Do, addr)
}

func listenIn(t *testing.T, do func(func() error) error, addr netip.Addr) {
	for _, port := range []uint16{portHTTP, portAlt} {
		var ln net.Listener
		err := do(func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(addr, port).String())
			return err
		})
		if err != nil {
			t.Fatalf("listen on %s:%d: %v", addr, port, err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "ok\n")
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
	}
}

// world makes the underlay namespace stand for the outside world: the
// pods' traffic to its addresses is answered (routes back to every node's
// pod CIDR), and it listens on worldIn and worldExcept.
func (px *policyFixture) world(t *testing.T) {
	var routes []*netlink.Route
	for _, n := range px.e.Nodes {
		cidrs := px.podCIDRs(t, n.Name)
		for _, c := range cidrs {
			routes = append(routes, &netlink.Route{Dst: &net.IPNet{IP: c.Addr().AsSlice(), Mask: net.CIDRMask(c.Bits(), 32)}, Gw: n.Addr().AsSlice()})
		}
	}
	err := testenv.InNetNS(px.e.Underlay, func() error {
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: worldExcept.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return fmt.Errorf("add %s: %w", worldExcept, err)
		}
		for _, r := range routes {
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("route %s: %w", r.Dst, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("prepare the underlay namespace as the world: %v", err)
	}
	do := func(fn func() error) error { return testenv.InNetNS(px.e.Underlay, fn) }
	listenIn(t, do, worldIn)
	listenIn(t, do, worldExcept)
}

func (px *policyFixture) podCIDRs(t *testing.T, node string) []netip.Prefix {
	c, closeFn, err := px.e.Agent(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx, &agentapi.StatusRequest{})
	if err != nil {
		t.Fatalf("status of %s: %v", node, err)
	}
	var out []netip.Prefix
	for _, s := range st.GetPodCidrs() {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// weft runs the weft CLI against node and returns its output.
func (px *policyFixture) weft(t *testing.T, node string, stdin string, args ...string) string {
	t.Helper()
	out, err := px.weftErr(node, stdin, args...)
	if err != nil {
		t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// weftErr runs the weft CLI against node and returns its output and error.
func (px *policyFixture) weftErr(node string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, px.e.Bin.Weft, append([]string{"--name", px.e.Name, "--node", node}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply imports doc through the first node and registers its deletion and
// the wait for every node to lift it.
func (px *policyFixture) apply(t *testing.T, doc string, names ...string) {
	t.Helper()
	out := px.weft(t, px.nodes[0].Name, doc, "policy", "import", "-f", "-")
	for _, n := range names {
		if !strings.Contains(out, " "+n+"\n") {
			t.Fatalf("weft policy import did not report %s:\n%s", n, out)
		}
	}
	t.Cleanup(func() {
		for _, n := range names {
			px.weft(t, px.nodes[1].Name, "", "policy", "delete", n)
		}
		for name := range px.pods {
			eventually(t, 20*time.Second, "policy lifted from pod "+name, func() error {
				if ep := px.endpoint(name); ep.GetPolicy() != nil {
					return fmt.Errorf("still %v", ep.GetPolicy())
				}
				return nil
			})
		}
	})
}

func (px *policyFixture) endpoint(pod string) *agentapi.Endpoint {
	p := px.pods[pod]
	c, closeFn, err := px.e.Agent(context.Background(), p.Node)
	if err != nil {
		return nil
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ep, _ := c.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: p.IP})
	return ep
}

// connect opens a TCP connection from pod src (or node/<name>) to dst and
// reads the listener's greeting.
func (px *policyFixture) connect(src string, dst netip.AddrPort) error {
	if !strings.Contains(src, "/") {
		src = "pod/" + src
	}
	tg, err := px.e.Target(src)
	if err != nil {
		return err
	}
	var c net.Conn
	err = tg.Do(func() (err error) {
		d := net.Dialer{Timeout: 1500 * time.Millisecond}
		c, err = d.Dial("tcp4", dst.String())
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ok\n" {
		return fmt.Errorf("connected, but no greeting: %q %v", line, err)
	}
	return nil
}

func (px *policyFixture) addr(pod string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(px.pods[pod].Addr(), port)
}

// allowed waits until src reaches dst.
func (px *policyFixture) allowed(t *testing.T, src string, dst netip.AddrPort) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%s reaches %s", src, dst), func() error { return px.connect(src, dst) })
}

// denied waits until src no longer reaches dst, then for the drop event
// with reason policy-denied on node.
func (px *policyFixture) denied(t *testing.T, src string, dst netip.AddrPort, node string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("%s is refused by %s", src, dst), func() error {
		if err := px.connect(src, dst); err == nil {
			return fmt.Errorf("connection got through")
		}
		return nil
	})
	srcIP := px.pods[src].Addr()
	eventually(t, 10*time.Second, fmt.Sprintf("a policy-denied drop of %s -> %s on %s", srcIP, dst, node), func() error {
		return px.flows[node].find(srcIP, dst)
	})
}
