package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/proxy/httpproxy"
)

// TestObserveL7FromProxy: requests through the L7 proxy enforcing
// Cilium's deathstar rule show in weft observe as hubble shows them: the
// landing forwarded with its 200, the exhaust port dropped with its 403.
func TestObserveL7FromProxy(t *testing.T) {
	deathstar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Ship landed\n")
	}))
	defer deathstar.Close()
	doc, err := os.ReadFile("../policy/testdata/deathstar-l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.CompileHTTP(ps[0].Rules[0].Ingress[0].HTTP[0].HTTP)
	if err != nil {
		t.Fatal(err)
	}
	ring := flow.NewRing(64)
	cfg := httpproxy.DefaultConfig()
	cfg.Matcher, cfg.Flows = m, ring
	dst := netip.MustParseAddrPort(deathstar.Listener.Addr().String())
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return dst, nil }
	p, err := httpproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for _, req := range []struct{ method, path string }{{"POST", "/v1/request-landing"}, {"PUT", "/v1/exhaust-port"}} {
		r, _ := http.NewRequest(req.method, "http://deathstar.default.svc.cluster.local"+req.path, nil)
		r.URL.Host = l.Addr().String()
		r.Host = "deathstar.default.svc.cluster.local"
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var flows []*agentapi.Flow
	for seq := ring.Oldest(); seq < ring.Next(); seq++ {
		f, _, _, _ := ring.Read(seq)
		flows = append(flows, f)
	}
	socket := serveObserver(t, flows)
	res := runCLI(t, t.TempDir(), nil, "--socket", socket, "observe")
	if res.err != nil {
		t.Fatalf("weft observe: %v\n%s", res.err, res.stderr)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		_, rest, _ := strings.Cut(line, " -> ")
		_, rest, _ = strings.Cut(rest, " ")
		got = append(got, regexp.MustCompile(` [0-9]+ms `).ReplaceAllString(rest, " Nms "))
	}
	want := []string{
		"http-request FORWARDED (HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing)",
		"http-response FORWARDED (HTTP/1.1 200 Nms (POST http://deathstar.default.svc.cluster.local/v1/request-landing))",
		"http-request DROPPED policy denied (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)",
		"http-response FORWARDED (HTTP/1.1 403 Nms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port))",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("weft observe printed\n%s\nwant (after each line's source -> destination)\n%s", res.stdout, strings.Join(want, "\n"))
	}
}
