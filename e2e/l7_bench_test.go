package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	l7bench "github.com/weftnet/weft/bench/l7"
	"github.com/weftnet/weft/testenv"
)

// l7BenchClients is how many keep-alive clients send at once, in
// l7BenchRounds rounds of the three variants.
const (
	l7BenchClients = 8
	l7BenchRounds  = 3
)

// BenchmarkL7Policy measures HTTP between two pods on two tunnel-mode
// nodes: keep-alive GETs with 1 KiB responses from 8 concurrent clients
// in pod l7b-client (n2) to a net/http server on port 8080 of pod
// l7b-web (n1), in one run:
//
//   - l3l4: an ingress policy admits the client on 8080/TCP (L3/L4 only);
//     the baseline;
//   - reverseproxy: the same policy, the requests sent to a plain
//     httputil.ReverseProxy on n1's address (in n1's namespace) that
//     forwards to the server: a user-space hop on the same path, the peer;
//   - l7: the same policy with rules.http (GET /public/.*), so the
//     datapath hands the connections to n1's L7 proxy, which decides every
//     request and records it.
//
// The policy is switched between the variants (the same name, imported
// again), and the next variant starts once it is in force. benchtable
// prints each as a ratio to l3l4.
func BenchmarkL7Policy(b *testing.B) {
	e := up(b, "l7bench", testenv.DefaultSpec())
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := map[string]testenv.Pod{}
	for _, d := range []struct{ name, node, app string }{
		{"l7b-web", n1, "l7b-web"}, {"l7b-client", n2, "l7b-client"}, {"l7b-other", n2, "l7b-other"},
	} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Labels: map[string]string{"app": d.app}})
		if err != nil {
			b.Fatalf("add pod %s: %v", d.name, err)
		}
		pods[d.name] = p
	}
	body := strings.Repeat("x", 1024)
	web := netip.AddrPortFrom(pods["l7b-web"].Addr(), 8080)
	serveIn(b, e, "pod/l7b-web", web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: web.String()})
	node := mustTarget(b, e, "node/"+n1)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 2 * l7BenchClients, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = node.Do(func() (err error) { // from n1's namespace, as the L7 proxy
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}
	rpAddr := netip.AddrPortFrom(e.Nodes[0].Addr(), 18080)
	serveIn(b, e, "node/"+n1, rpAddr, rp)

	client := func() *http.Client { // keeps a connection per client
		c := podClient(b, e, "pod/l7b-client", true)
		tr := c.Transport.(*http.Transport)
		tr.MaxIdleConnsPerHost, tr.DisableCompression = l7BenchClients, true
		return c
	}
	other := podClient(b, e, "pod/l7b-other", false)
	other.Timeout = 500 * time.Millisecond
	probe := podClient(b, e, "pod/l7b-client", false)

	policy := func(http string) string {
		return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: l7bench\nspec:\n" +
			"  endpointSelector: {matchLabels: {app: l7b-web}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: l7b-client}}]\n" +
			"    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]" + http + "}]\n"
	}
	l3l4 := func() {
		weftCLI(b, e, n1, policy(""), "policy", "import", "-f", "-")
		eventually(b, 30*time.Second, "the L3/L4 policy in force (GET /private answered by the server, l7b-other refused)", func() error {
			if code, _, err := call(probe, "GET", "http://"+web.String()+"/private"); err != nil || code != http.StatusOK {
				return fmt.Errorf("GET /private from l7b-client: %d %v", code, err)
			}
			if _, _, err := call(other, "GET", "http://"+web.String()+"/public/x"); err == nil {
				return fmt.Errorf("l7b-other reached %s", web)
			}
			return nil
		})
	}
	l7 := func() {
		weftCLI(b, e, n1, policy(", rules: {http: [{method: GET, path: \"/public/.*\"}]}"), "policy", "import", "-f", "-")
		eventually(b, 30*time.Second, "the L7 policy in force (GET /private gets 403)", func() error {
			code, got, err := call(probe, "GET", "http://"+web.String()+"/private")
			if err != nil || code != http.StatusForbidden || strings.TrimSpace(got) != "Access denied" {
				return fmt.Errorf("got %d %q %v", code, got, err)
			}
			return nil
		})
	}
	load := func(name string, at netip.AddrPort) {
		b.Run(fmt.Sprintf("%s/GET-1KiB-c%d", name, l7BenchClients), func(b *testing.B) {
			l7bench.Load(b, client(), "http://"+at.String()+"/public/index.html", len(body), l7BenchClients)
		})
	}
	// Rounds alternate the variants, so that each round's ratios compare
	// runs under the same load of the machine (benchtable prints a row per
	// round: GET-1KiB-c8, GET-1KiB-c8#01, ...).
	for range l7BenchRounds {
		l3l4()
		load("l3l4", web)
		load("reverseproxy", rpAddr)
		l7()
		load("l7", web)
	}
}
