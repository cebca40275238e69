package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
)

// backend is a real HTTP server standing for the original destination; it
// remembers every request it was sent.
type backend struct {
	srv  *httptest.Server
	addr netip.AddrPort
	mu   sync.Mutex
	seen []string // "METHOD target header=value..."
}

func newBackend(t testing.TB) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, fmt.Sprintf("%s %s x-env=%q body=%q", r.Method, r.RequestURI, r.Header.Values("X-Env"), body))
		b.mu.Unlock()
		switch r.URL.Path {
		case "/v1/request-landing":
			io.WriteString(w, "Ship landed\n")
		default:
			fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.addr = netip.MustParseAddrPort(b.srv.Listener.Addr().String())
	return b
}

func (b *backend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// rig is a proxy listening on loopback whose original destination is the
// backend, recording flows into a real ring and metrics into a registry.
type rig struct {
	addr    string
	backend *backend
	ring    *flow.Ring
	reg     *prometheus.Registry
	metrics *Metrics
}

// records returns the flows the ring holds, oldest first.
func (r *rig) records() []*agentapi.Flow {
	var out []*agentapi.Flow
	for seq := r.ring.Oldest(); seq < r.ring.Next(); seq++ {
		if f, _, _, ok := r.ring.Read(seq); ok {
			out = append(out, f)
		}
	}
	return out
}

var latencyMs = regexp.MustCompile(` [0-9]+ms `)

func matcherOf(t testing.TB, file string) *policy.HTTPMatcher {
	t.Helper()
	b, err := os.ReadFile("../../policy/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := policy.CompileHTTP(ps[0].Rules[0].Ingress[0].HTTP[0].HTTP)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func startRig(t testing.TB, m *policy.HTTPMatcher, edit func(*Config)) *rig {
	t.Helper()
	r := &rig{backend: newBackend(t), ring: flow.NewRing(256), reg: prometheus.NewRegistry()}
	metrics, err := NewMetrics(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = metrics
	cfg := DefaultConfig()
	cfg.Matcher, cfg.Flows, cfg.Metrics = m, r.ring, metrics
	cfg.Enricher = &flow.Enricher{Node: "n1", Cluster: "c1"}
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return r.backend.addr, nil }
	if edit != nil {
		edit(&cfg)
	}
	r.addr = serve(t, cfg)
	return r
}

// serve runs a proxy of cfg on a loopback listener until the test ends
// and returns its address.
func serve(t testing.TB, cfg Config) string {
	t.Helper()
	p, err := New(cfg)
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l.Addr().String()
}

// flows returns the records of the ring as weft observe summarises them.
func (r *rig) flows() []string {
	var out []string
	for _, f := range r.records() {
		s := flow.L7Type(f) + " " + f.GetVerdict().String()
		if f.GetDropReason() != "" {
			s += " " + f.GetDropReason()
		}
		out = append(out, s+" ("+strings.Join(strings.Fields(flow.L7Summary(f)), " ")+")")
	}
	return out
}

func send(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestDeathstar: with Cilium's L7 deathstar rule, the landing request
// reaches the deathstar and the exhaust port request is answered 403
// "Access denied" without reaching it; both are L7 records and counted.
func TestDeathstar(t *testing.T) {
	r := startRig(t, matcherOf(t, "deathstar-l7.yaml"), nil)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	if code, body := send(t, c, "POST", "http://"+r.addr+"/v1/request-landing", ""); code != 200 || body != "Ship landed\n" {
		t.Errorf("POST /v1/request-landing: %d %q, want 200 \"Ship landed\"", code, body)
	}
	if code, body := send(t, c, "PUT", "http://"+r.addr+"/v1/exhaust-port", ""); code != 403 || body != "Access denied" {
		t.Errorf("PUT /v1/exhaust-port: %d %q, want 403 \"Access denied\"", code, body)
	}
	if code, _ := send(t, c, "POST", "http://"+r.addr+"/v1/request-landing?x=1", ""); code != 403 {
		t.Errorf("POST /v1/request-landing?x=1: %d, want 403 (the path regex covers the query)", code)
	}
	if got, want := r.backend.requests(), []string{`POST /v1/request-landing x-env=[] body=""`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the deathstar saw %q, want %q", got, want)
	}
	host := r.addr
	want := []string{
		"http-request FORWARDED (HTTP/1.1 POST http://" + host + "/v1/request-landing)",
		"http-response FORWARDED (HTTP/1.1 200 0ms (POST http://" + host + "/v1/request-landing))",
		"http-request DROPPED policy denied (HTTP/1.1 PUT http://" + host + "/v1/exhaust-port)",
		"http-response FORWARDED (HTTP/1.1 403 0ms (PUT http://" + host + "/v1/exhaust-port))",
		"http-request DROPPED policy denied (HTTP/1.1 POST http://" + host + "/v1/request-landing?x=1)",
		"http-response FORWARDED (HTTP/1.1 403 0ms (POST http://" + host + "/v1/request-landing?x=1))",
	}
	got := r.flows()
	for i := range got {
		got[i] = latencyMs.ReplaceAllString(got[i], " 0ms ")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	recs := r.records()
	f := recs[len(recs)-1]
	if f.GetNode() != "n1" || f.GetDestination().GetIp() != "127.0.0.1" || f.GetSource().GetPort() != uint32(r.backend.addr.Port()) ||
		f.GetDirection() != agentapi.Direction_INGRESS || f.GetObservationPoint() != "l7-proxy" {
		t.Errorf("response record %v: want node n1, from the backend to the client, ingress, l7-proxy", f)
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"POST", "200", "forwarded"}, 1},
		{[]string{"PUT", "403", "denied"}, 1},
		{[]string{"POST", "403", "denied"}, 1},
	} {
		if got := testutil.ToFloat64(r.metrics.requests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("weft_proxy_http_requests_total%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if n, err := testutil.GatherAndCount(r.reg, "weft_proxy_http_request_duration_seconds"); err != nil || n != 2 {
		t.Errorf("latency histograms: %d (%v), want 2 (forwarded, denied)", n, err)
	}
}

// TestKeepAlive: requests on one client connection, allowed and denied
// alike, keep it open.
func TestKeepAlive(t *testing.T) {
	r := startRig(t, matcherOf(t, "deathstar-l7.yaml"), nil)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	var reused []bool
	for _, method := range []string{"POST", "GET", "POST"} {
		req, _ := http.NewRequest(method, "http://"+r.addr+"/v1/request-landing", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if fmt.Sprint(reused) != "[false true true]" {
		t.Errorf("connection reused %v, want [false true true]", reused)
	}
}

// TestMalformed: requests that cannot be framed unambiguously are
// answered 400 and nothing reaches the destination, even when the rules
// allow every request.
func TestMalformed(t *testing.T) {
	all, err := policy.CompileHTTP([]policy.HTTPRule{{}})
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, all, func(c *Config) { c.MaxHeaderBytes = 4096 })
	for _, tc := range []struct{ name, raw, want string }{
		{"oversized header", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", "request header larger than the limit"},
		{"content-length and transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n", "both Content-Length and Transfer-Encoding"},
		{"transfer-encoding first", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n", "both Content-Length and Transfer-Encoding"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "read chunked body"},
		{"chunk longer than its size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n", "read chunked body"},
		{"other transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", `transfer coding "gzip, chunked"`},
		{"two content-lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", "several Content-Length headers"},
		{"obsolete folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "obsolete line folding"},
		{"HTTP/2 without the preface", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/2.0 is not supported; accepted are HTTP/1.x and HTTP/2 with prior knowledge (h2c)"},
		{"not HTTP", "hello\r\n\r\n", "Bad Request"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", `header name "Transfer-Encoding "`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rawExchange(t, r.addr, tc.raw)
			if code != 400 || !strings.Contains(body, tc.want) {
				t.Errorf("answer %d %q, want 400 naming %q", code, body, tc.want)
			}
		})
	}
	if got := r.backend.requests(); len(got) != 0 {
		t.Errorf("the destination was sent %q", got)
	}
	for _, f := range r.records() {
		if f.GetL7().GetType() == agentapi.L7FlowType_REQUEST && (f.GetVerdict() != agentapi.Verdict_DROPPED || f.GetDropReason() != "malformed HTTP request") {
			t.Errorf("record %v: want every request DROPPED as malformed HTTP request", f)
		}
	}
	// A good chunked body is forwarded whole.
	code, body := rawExchange(t, r.addr, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if code != 200 || body != "POST /up\n" {
		t.Errorf("chunked POST: %d %q", code, body)
	}
	if got := r.backend.requests(); len(got) != 1 || got[0] != `POST /up x-env=[] body="abcde"` {
		t.Errorf("the destination was sent %q, want the chunked body abcde", got)
	}
}

// rawExchange writes raw on a new connection and reads one response.
func rawExchange(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHeaderMismatchActions: a REPLACE action rewrites the header the
// destination sees, and the record names it.
func TestHeaderMismatchActions(t *testing.T) {
	m, err := policy.CompileHTTP([]policy.HTTPRule{{Method: "GET", HeaderMatches: []policy.HeaderMatch{{Name: "X-Env", Value: "prod", Mismatch: policy.MismatchReplace}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, m, nil)
	code, _ := rawExchange(t, r.addr, "GET /a HTTP/1.1\r\nHost: a\r\nX-Env: dev\r\nConnection: close\r\n\r\n")
	if code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if got := r.backend.requests(); len(got) != 1 || got[0] != `GET /a x-env=["prod"] body=""` {
		t.Errorf("the destination saw %q, want X-Env replaced by prod", got)
	}
	if got := r.flows()[0]; got != "http-request FORWARDED (HTTP/1.1 GET http://a/a [header mismatch: REPLACE X-Env])" {
		t.Errorf("record %q", got)
	}
}

// TestUpstreamUnavailable: a destination that refuses connections is
// answered 503 and recorded as such.
func TestUpstreamUnavailable(t *testing.T) {
	all, _ := policy.CompileHTTP([]policy.HTTPRule{{}})
	r := startRig(t, all, nil)
	r.backend.srv.Close()
	code, body := rawExchange(t, r.addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if code != 503 || !strings.Contains(body, "upstream unavailable") {
		t.Errorf("answer %d %q, want 503 upstream unavailable", code, body)
	}
	if got := r.flows(); len(got) != 2 || !strings.HasPrefix(got[1], "http-response DROPPED upstream unavailable (HTTP/1.1 503") {
		t.Errorf("records %q", got)
	}
}
