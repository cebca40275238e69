package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/dnstest"
	"github.com/weftnet/weft/testenv"
)

// serveDNS answers A queries on addr:53 (UDP) inside target from names
// (lowercase, with the trailing dot), NXDOMAIN for others, until the test
// ends. TTL 30 s.
func serveDNS(t *testing.T, e *testenv.Env, target string, addr netip.Addr, names map[string]netip.Addr) {
	t.Helper()
	var pc net.PacketConn
	if err := mustTarget(t, e, target).Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(addr, 53).String())
		return err
	}); err != nil {
		t.Fatalf("listen for DNS in %s: %v", target, err)
	}
	t.Cleanup(dnstest.Serve(pc, names, 30))
}

// resolve looks name up (A) from inside target at server:53.
func resolve(t *testing.T, e *testenv.Env, target string, server netip.Addr, name string) ([]netip.Addr, error) {
	tg := mustTarget(t, e, target)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := tg.Do(func() (err error) {
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err = d.DialContext(ctx, "udp4", netip.AddrPortFrom(server, 53).String())
			return err
		})
		return c, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.LookupNetIP(ctx, "ip4", name)
}

// TestFQDNPolicy: a client pod whose egress policy allows DNS (rules.dns,
// matchPattern "*.example") to a DNS server pod of the environment and
// toFQDNs matchName allowed.example. The node's DNS proxy answers
// allowed.example and other.example (both allowed by the DNS rule), and
// REFUSED for blocked.test; the client then reaches allowed.example's
// address (in the outside world) and not other.example's, which stays
// denied. weft fqdn cache list shows what was learnt; weft observe the
// dns-request/dns-response records. After kill -9 and restart of the
// client's agent, the learnt name is still in the cache and its address
// still reachable without asking again.
func TestFQDNPolicy(t *testing.T) {
	e := up(t, "fq", testenv.DefaultSpec())
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	px := &policyFixture{e: e, pods: map[string]testenv.Pod{}, flows: map[string]*flowLog{}, nodes: [2]testenv.Node{e.Nodes[0], e.Nodes[1]}}
	for _, d := range []podDef{
		{"client", n1, "default", map[string]string{"app": "client"}},
		{"dns", n2, "default", map[string]string{"app": "dns"}},
	} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod %s: %v", d.name, err)
		}
		px.pods[d.name] = p
	}
	px.world(t) // listens on worldIn and worldExcept
	px.flows[n1] = startFlows(t, e, n1)
	dnsIP := px.pods["dns"].Addr()
	serveDNS(t, e, "pod/dns", dnsIP, map[string]netip.Addr{"allowed.example.": worldIn, "other.example.": worldExcept, "blocked.test.": worldIn})

	// Without a policy: everything resolves and both addresses answer.
	if ips, err := resolve(t, e, "pod/client", dnsIP, "blocked.test"); err != nil || len(ips) != 1 || ips[0] != worldIn {
		t.Fatalf("before any policy, blocked.test: %v %v", ips, err)
	}
	px.allowed(t, "client", netip.AddrPortFrom(worldExcept, portAlt))

	px.apply(t, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: fqdn
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        app: dns
    toPorts:
    - ports:
      - port: "53"
        protocol: ANY
      rules:
        dns:
        - matchPattern: "*.example"
  - toFQDNs:
    - matchName: allowed.example
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
`, "default/fqdn")
	out := px.weft(t, n1, "", "policy", "get", "default/fqdn")
	for _, want := range []string{`53/ANY DNS {matchPattern: *.example}`, `fqdn matchName: allowed.example on 8080/TCP`} {
		if !strings.Contains(out, want) {
			t.Errorf("weft policy get fqdn lacks %q:\n%s", want, out)
		}
	}

	eventually(t, 20*time.Second, "blocked.test is refused by the DNS proxy", func() error {
		_, err := resolve(t, e, "pod/client", dnsIP, "blocked.test")
		var dnsErr *net.DNSError
		if err == nil || !errors.As(err, &dnsErr) {
			return fmt.Errorf("got %v", err)
		}
		return nil
	})
	ips, err := resolve(t, e, "pod/client", dnsIP, "allowed.example")
	if err != nil || len(ips) != 1 || ips[0] != worldIn {
		t.Fatalf("allowed.example: %v %v, want %s", ips, err, worldIn)
	}
	// The answer is passed on once the address is admitted: reachable at once.
	if err := px.connect("client", netip.AddrPortFrom(worldIn, portAlt)); err != nil {
		t.Errorf("allowed.example's address right after the answer: %v", err)
	}
	if ips, err := resolve(t, e, "pod/client", dnsIP, "other.example"); err != nil || len(ips) != 1 || ips[0] != worldExcept {
		t.Fatalf("other.example (allowed by the DNS rule): %v %v", ips, err)
	}
	px.denied(t, "client", netip.AddrPortFrom(worldExcept, portAlt), n1)

	list := px.weft(t, n1, "", "fqdn", "cache", "list")
	if !regexp.MustCompile(`(?m)^allowed\.example\s+` + regexp.QuoteMeta(worldIn.String()) + `\s+\S+ \(`).MatchString(list) {
		t.Errorf("weft fqdn cache list lacks allowed.example -> %s:\n%s", worldIn, list)
	}
	if strings.Contains(list, "blocked.test") {
		t.Errorf("weft fqdn cache list holds the refused name:\n%s", list)
	}
	eventually(t, 20*time.Second, "DNS records in weft observe", func() error {
		obs := px.weft(t, n1, "", "observe", "--last", "200")
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`default/client:\d+ -> default/dns:53 dns-request FORWARDED \(DNS Query allowed\.example\. A\)`),
			regexp.MustCompile(`default/dns:53 -> default/client:\d+ dns-response FORWARDED \(DNS Answer "` + regexp.QuoteMeta(worldIn.String()) + `" TTL: 30 \(Proxy allowed\.example\. A\)\)`),
			regexp.MustCompile(`default/client:\d+ -> default/dns:53 dns-request DROPPED policy denied \(DNS Query blocked\.test\. A\)`),
		} {
			if !want.MatchString(obs) {
				return fmt.Errorf("no line matches %s in:\n%s", want, obs)
			}
		}
		return nil
	})

	// The cache survives an agent restart: the address stays allowed.
	if err := e.StopAgent(ctx, n1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := e.StartAgent(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAgent(ctx, n1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if list := px.weft(t, n1, "", "fqdn", "cache", "list", "Allowed.Example."); !strings.Contains(list, worldIn.String()) {
		t.Errorf("after the restart, weft fqdn cache list Allowed.Example. lacks allowed.example:\n%s", list)
	}
	px.allowed(t, "client", netip.AddrPortFrom(worldIn, portAlt))
	if err := px.connect("client", netip.AddrPortFrom(worldExcept, portAlt)); err == nil {
		t.Error("after the restart, other.example's address was reached")
	}
}
