package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/testenv"
)

// Addresses of "the outside" in the underlay namespace: outsideIP has no
// route back to the pods (only masquerading lets their replies return);
// directIP has one and is in the agents' --non-masquerade-cidrs.
var (
	outsideIP = netip.MustParseAddr("198.51.100.1")
	directIP  = netip.MustParseAddr("203.0.113.1")
)

const outsidePort = 7080

// TestMasquerade: pods reach an address outside the cluster by TCP, UDP
// and ping, seen there as their node's address and a masquerade port;
// many connections of two pods to one destination never collide; a
// --non-masquerade-cidrs range sees the pod's own address; an egress
// policy that allows only the cluster drops traffic to the outside before
// it is masqueraded; weft status says masquerading is on.
func TestMasquerade(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		t.Run(routing, func(t *testing.T) {
			t.Parallel()
			spec := testenv.DefaultSpec()
			spec.Nodes, spec.Routing = 2, routing
			spec.AgentArgs = []string{"--non-masquerade-cidrs", "203.0.113.0/24"}
			masquerade(t, up(t, "mq"+routing[:1], spec))
		})
	}
}

func masquerade(t *testing.T, e *testenv.Env) {
	n1, n2 := e.Nodes[0], e.Nodes[1]
	a := addPod(t, e, "mqa", n1.Name)
	b := addPod(t, e, "mqb", n2.Name)
	outside(t, e)

	t.Run("tcp-udp-icmp", func(t *testing.T) {
		for _, p := range []testenv.Pod{a, b} {
			node, _ := e.Node(p.Node)
			seen, err := outsideTCP(e, p.Name, outsideIP)
			if err != nil {
				t.Fatalf("pod %s to %s TCP: %v", p.Name, outsideIP, err)
			}
			ap, err := netip.ParseAddrPort(seen)
			if err != nil || ap.Addr() != node.Addr() || ap.Port() < 61000 {
				t.Errorf("pod %s reached %s as %s, want its node's address %s and a port of 61000-65535", p.Name, outsideIP, seen, node.IP)
			}
			if seen, err := outsideUDP(e, p.Name, outsideIP); err != nil || !strings.HasPrefix(seen, node.IP+":") {
				t.Errorf("pod %s to %s UDP: seen as %q (%v), want its node's address %s", p.Name, outsideIP, seen, err, node.IP)
			}
			if out, err := mustTarget(t, e, "pod/"+p.Name).Output(context.Background(), "ping", "-n", "-c", "1", "-W", "2", outsideIP.String()); err != nil {
				t.Errorf("pod %s pings %s: %v\n%s", p.Name, outsideIP, err, out)
			}
		}
	})

	t.Run("many-connections-no-collision", func(t *testing.T) {
		var (
			mu   sync.Mutex
			seen = map[string]string{}
			errs []error
			wg   sync.WaitGroup
		)
		for i := range 40 {
			pod := []string{a.Name, b.Name}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := outsideTCP(e, pod, outsideIP)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if other, dup := seen[s]; dup {
					errs = append(errs, fmt.Errorf("%s and %s were both seen as %s", other, pod, s))
				}
				seen[s] = pod
			}()
		}
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
	})

	t.Run("non-masquerade-range", func(t *testing.T) {
		seen, err := outsideTCP(e, a.Name, directIP)
		if err != nil {
			t.Fatal(err)
		}
		if ap, err := netip.ParseAddrPort(seen); err != nil || ap.Addr() != a.Addr() {
			t.Errorf("pod %s reached %s (--non-masquerade-cidrs) as %s, want its own address %s", a.Name, directIP, seen, a.IP)
		}
	})

	t.Run("status", func(t *testing.T) {
		out := weftCLI(t, e, n1.Name, "", "status")
		if !strings.Contains(out, "Masquerading:") || !strings.Contains(out, "BPF (not to 10.100.0.0/16, 203.0.113.0/24") {
			t.Errorf("weft status does not show masquerading with its ranges:\n%s", out)
		}
	})

	t.Run("egress-policy-drops-world-first", func(t *testing.T) {
		weftCLI(t, e, n1.Name, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: mqa-cluster-only
spec:
  endpointSelector:
    matchLabels:
      app: mqa
  egress:
  - toEntities: [cluster]
`, "policy", "import", "-f", "-")
		eventually(t, 30*time.Second, "mqa can no longer reach the outside", func() error {
			if _, err := outsideTCP(e, a.Name, outsideIP); err == nil {
				return fmt.Errorf("mqa still reaches %s", outsideIP)
			}
			return nil
		})
		out := weftCLI(t, e, n1.Name, "", "observe", "--verdict", "DROPPED", "--ip", outsideIP.String(), "--last", "5")
		if !strings.Contains(out, "policy denied") || !strings.Contains(out, "from-endpoint") {
			t.Errorf("no from-endpoint policy drop towards %s in weft observe:\n%s", outsideIP, out)
		}
		if _, err := outsideTCP(e, b.Name, outsideIP); err != nil {
			t.Errorf("mqb, not selected by the policy, no longer reaches the outside: %v", err)
		}
	})
}

// outside makes the underlay namespace hold outsideIP (no route back to
// the pods) and directIP (with routes back to every node's pod CIDR), each
// with a TCP and a UDP server that answer with the client's address.
func outside(t *testing.T, e *testenv.Env) {
	var routes []*netlink.Route
	for _, n := range e.Nodes {
		st := weftCLI(t, e, n.Name, "", "status", "-o", "json")
		for _, c := range podCIDRsOf(st) {
			routes = append(routes, &netlink.Route{Dst: &net.IPNet{IP: c.Addr().AsSlice(), Mask: net.CIDRMask(c.Bits(), 32)}, Gw: n.Addr().AsSlice(),
				Table: 100})
		}
	}
	err := testenv.InNetNS(e.Underlay, func() error {
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		for _, ip := range []netip.Addr{outsideIP, directIP} {
			if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
				return fmt.Errorf("add %s: %w", ip, err)
			}
		}
		// Replies from directIP find the pods (table 100); replies from
		// outsideIP do not: only a masqueraded flow gets one back.
		for _, r := range routes {
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("route %s: %w", r.Dst, err)
			}
		}
		rule := netlink.NewRule()
		rule.Src = &net.IPNet{IP: directIP.AsSlice(), Mask: net.CIDRMask(32, 32)}
		rule.Table = 100
		return netlink.RuleAdd(rule)
	})
	if err != nil {
		t.Fatalf("prepare the outside in the underlay namespace: %v", err)
	}
	for _, ip := range []netip.Addr{outsideIP, directIP} {
		serveSourceEcho(t, e, ip)
	}
}

// serveSourceEcho answers TCP connections with "from <client ip:port>" and
// UDP datagrams with the client's ip:port, on ip:outsidePort.
func serveSourceEcho(t *testing.T, e *testenv.Env, ip netip.Addr) {
	var (
		ln net.Listener
		pc net.PacketConn
	)
	addr := netip.AddrPortFrom(ip, outsidePort).String()
	err := testenv.InNetNS(e.Underlay, func() (err error) {
		if ln, err = net.Listen("tcp4", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("serve on %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "from %s\n", c.RemoteAddr())
			c.Close()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.String()), from) //nolint:errcheck // the client retries
		}
	}()
	t.Cleanup(func() { ln.Close(); pc.Close(); wg.Wait() })
}

// outsideTCP connects from pod to ip:outsidePort and returns the address
// the server saw.
func outsideTCP(e *testenv.Env, pod string, ip netip.Addr) (string, error) {
	tg, err := e.Target("pod/" + pod)
	if err != nil {
		return "", err
	}
	var line string
	err = tg.Do(func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(ip, outsidePort).String(), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "from "), nil
}

// outsideUDP sends a datagram from pod to ip:outsidePort and returns the
// address the server saw.
func outsideUDP(e *testenv.Env, pod string, ip netip.Addr) (string, error) {
	tg, err := e.Target("pod/" + pod)
	if err != nil {
		return "", err
	}
	var seen string
	err = tg.Do(func() error {
		c, err := net.Dial("udp4", netip.AddrPortFrom(ip, outsidePort).String())
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 100)
		for try := 0; try < 3; try++ {
			c.Write([]byte("hello")) //nolint:errcheck // the read says
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil {
				seen = string(buf[:n])
				return nil
			}
		}
		return fmt.Errorf("no answer from %s", ip)
	})
	return seen, err
}

// podCIDRsOf reads pod_cidrs out of `weft status -o json`.
func podCIDRsOf(statusJSON string) []netip.Prefix {
	var out []netip.Prefix
	_, rest, ok := strings.Cut(statusJSON, `"pod_cidrs"`)
	if !ok {
		return nil
	}
	rest = rest[strings.Index(rest, "[")+1:]
	rest = rest[:strings.Index(rest, "]")]
	for _, f := range strings.Split(rest, ",") {
		if p, err := netip.ParsePrefix(strings.Trim(strings.TrimSpace(f), `"`)); err == nil {
			out = append(out, p)
		}
	}
	return out
}
