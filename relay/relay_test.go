package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/flow"
)

// pki holds the certificates of a test: agents serve 127.0.0.1, the relay
// is their client.
type pki struct{ server, client *tls.Config }

func newPKI(t testing.TB) pki {
	t.Helper()
	ca, err := clustermesh.NewCA("relay-test")
	if err != nil {
		t.Fatal(err)
	}
	pair := func(cn string, server bool) tls.Certificate {
		c, k, err := ca.Issue(cn, server, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pki{
		server: &tls.Config{Certificates: []tls.Certificate{pair("agent", true)}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13},
		client: &tls.Config{Certificates: []tls.Certificate{pair("relay", false)}, RootCAs: pool, MinVersion: tls.VersionTLS13},
	}
}

// agent is a real flow Observer served over TCP with mutual TLS, as an
// agent's --flows-listen-address serves it.
type agent struct {
	node string
	ring *flow.Ring
	addr string
	stop func()
}

func startAgent(t testing.TB, p pki, node, addr string) *agent {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{node: node, ring: flow.NewRing(4095), addr: l.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- flow.Serve(ctx, l, p.server, flow.NewObserver(a.ring, node)) }()
	a.stop = func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	t.Cleanup(a.stop)
	return a
}

func (a *agent) write(ns int64, verdict agentapi.Verdict) {
	a.ring.Write(&agentapi.Flow{TimeNs: ns, Node: a.node, Verdict: verdict, ObservationPoint: "to-endpoint",
		Source: &agentapi.FlowEndpoint{Ip: "10.0.0.1"}, Destination: &agentapi.FlowEndpoint{Ip: "10.0.0.2", Port: 80}})
}

func newRelay(t testing.TB, p pki, agents ...*agent) *Relay {
	t.Helper()
	cfg := DefaultConfig()
	cfg.TLS = p.client
	cfg.Retry = 50 * time.Millisecond
	for _, a := range agents {
		cfg.Peers = append(cfg.Peers, Peer{Node: a.node, Address: a.addr})
	}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// collect runs req through the relay until it ends (or stop says so).
func collect(t *testing.T, r *Relay, req *agentapi.GetFlowsRequest) []*agentapi.GetFlowsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*agentapi.GetFlowsResponse
	err := r.Stream(ctx, req, func(resp *agentapi.GetFlowsResponse) error {
		out = append(out, resp)
		return nil
	})
	if err != nil {
		t.Fatalf("relay stream: %v", err)
	}
	return out
}

func flowTimes(resps []*agentapi.GetFlowsResponse) (times []int64, nodes []string) {
	for _, r := range resps {
		if f := r.GetFlow(); f != nil {
			times = append(times, f.GetTimeNs())
			nodes = append(nodes, f.GetNode())
		}
	}
	return times, nodes
}

func TestRelayMergesAgentsInTimeOrder(t *testing.T) {
	p := newPKI(t)
	a, b, c := startAgent(t, p, "n1", "127.0.0.1:0"), startAgent(t, p, "n2", "127.0.0.1:0"), startAgent(t, p, "n3", "127.0.0.1:0")
	for i := int64(1); i <= 30; i++ {
		[]*agent{a, b, c}[i%3].write(i, agentapi.Verdict(1+i%2))
	}
	r := newRelay(t, p, a, b, c)

	times, _ := flowTimes(collect(t, r, &agentapi.GetFlowsRequest{}))
	if len(times) != 30 {
		t.Fatalf("got %d flows, want the 30 of three agents", len(times))
	}
	for i, ts := range times {
		if ts != int64(i+1) {
			t.Fatalf("flow %d has time %d, want %d: not merged in time order (%v)", i, ts, i+1, times)
		}
	}
	// The newest 4 of all agents; filters run on the agents.
	times, _ = flowTimes(collect(t, r, &agentapi.GetFlowsRequest{Number: 4}))
	if len(times) != 4 || times[0] != 27 || times[3] != 30 {
		t.Errorf("--last 4 gave %v, want [27 28 29 30]", times)
	}
	dropped := []*agentapi.FlowFilter{{Verdict: []agentapi.Verdict{agentapi.Verdict_DROPPED}}}
	times, _ = flowTimes(collect(t, r, &agentapi.GetFlowsRequest{Whitelist: dropped}))
	if len(times) != 15 || times[0]%2 != 1 {
		t.Errorf("dropped flows: %v, want the 15 odd times", times)
	}
}

func TestRelayRefusesBadFiltersNamingThem(t *testing.T) {
	p := newPKI(t)
	r := newRelay(t, p, startAgent(t, p, "n1", "127.0.0.1:0"))
	err := r.Stream(context.Background(), &agentapi.GetFlowsRequest{Whitelist: []*agentapi.FlowFilter{{Port: []uint32{70000}}}},
		func(*agentapi.GetFlowsResponse) error { return nil })
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "--port 70000: accepted: a port number 1 to 65535" {
		t.Fatalf("err = %v, want InvalidArgument naming port 70000", err)
	}
}

// A following reader is told an agent is down, still gets the others'
// flows, and gets the agent's flows once it is back.
func TestRelayReportsAgentsThatAreDown(t *testing.T) {
	p := newPKI(t)
	up := startAgent(t, p, "n1", "127.0.0.1:0")
	// n2's address is reserved, then closed: nothing listens there yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := l.Addr().String()
	l.Close()
	r := newRelay(t, p, up, &agent{node: "n2", addr: downAddr})
	start := time.Now().UnixNano()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps := make(chan *agentapi.GetFlowsResponse, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.Stream(ctx, &agentapi.GetFlowsRequest{Follow: true, SinceNs: start}, func(resp *agentapi.GetFlowsResponse) error {
			resps <- resp
			return nil
		})
	}()
	next := func(what string) *agentapi.GetFlowsResponse {
		t.Helper()
		for {
			select {
			case resp := <-resps:
				if resp.GetHeartbeat() != nil { // idle: readers skip them
					continue
				}
				return resp
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
			case err := <-done:
				t.Fatalf("waiting for %s: stream ended: %v", what, err)
			}
		}
	}
	st := next("n2's status").GetNodeStatus()
	if st.GetNode() != "n2" || st.GetConnected() || st.GetError() == "" {
		t.Fatalf("first message %v, want n2 reported unreachable with the error", st)
	}
	up.write(time.Now().UnixNano(), agentapi.Verdict_FORWARDED)
	if f := next("n1's flow").GetFlow(); f.GetNode() != "n1" {
		t.Fatalf("got %v, want n1's flow while n2 is down", f)
	}
	back := startAgent(t, p, "n2", downAddr)
	back.write(time.Now().UnixNano(), agentapi.Verdict_DROPPED)
	// n2 comes back: reported, then its flow (written before the relay
	// reconnected: it asks for what it missed).
	st = next("n2 back").GetNodeStatus()
	if st.GetNode() != "n2" || !st.GetConnected() {
		t.Fatalf("got %v, want n2 reported connected", st)
	}
	if f := next("n2's flow").GetFlow(); f.GetNode() != "n2" || f.GetVerdict() != agentapi.Verdict_DROPPED {
		t.Fatalf("got %v, want n2's drop", f)
	}

	status, err := r.ServerStatus(ctx, &agentapi.ServerStatusRequest{})
	if err != nil || len(status.GetNodes()) != 2 || status.GetNumFlows() != 2 {
		t.Fatalf("status = %v, %v; want 2 nodes and 2 flows", status, err)
	}
}

// serveRelay serves r over TCP with mutual TLS, as weft-apiserver does.
func serveRelay(t testing.TB, p pki, r *Relay) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- flow.Serve(ctx, l, p.server, r) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// Two clusters whose relays read each other: each shows both clusters'
// flows in time order, once, and neither asks the other in a circle.
func TestRelaysOfConnectedClusters(t *testing.T) {
	p := newPKI(t)
	a1, a2, b1 := startAgent(t, p, "a1", "127.0.0.1:0"), startAgent(t, p, "a2", "127.0.0.1:0"), startAgent(t, p, "b1", "127.0.0.1:0")
	for i := int64(1); i <= 9; i++ {
		[]*agent{a1, a2, b1}[i%3].write(i, agentapi.Verdict_FORWARDED)
	}
	ra, rb := newRelay(t, p, a1, a2), newRelay(t, p, b1)
	addrA, addrB := serveRelay(t, p, ra), serveRelay(t, p, rb)
	if err := ra.SetPeers([]Peer{{Node: "a1", Address: a1.addr}, {Node: "a2", Address: a2.addr}, {Node: "relay:b", Address: addrB, Relay: true}}); err != nil {
		t.Fatal(err)
	}
	if err := rb.SetPeers([]Peer{{Node: "b1", Address: b1.addr}, {Node: "relay:a", Address: addrA, Relay: true}}); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Relay{"a": ra, "b": rb} {
		times, nodes := flowTimes(collect(t, r, &agentapi.GetFlowsRequest{}))
		if !slices.Equal(times, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Errorf("relay %s: flows at %v from %v, want 1..9 once each, in time order", name, times, nodes)
		}
		st, err := r.ServerStatus(context.Background(), &agentapi.ServerStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range st.GetNodes() {
			names = append(names, n.GetNode())
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"a1", "a2", "b1"}) || st.GetNumFlows() != 9 {
			t.Errorf("relay %s status: nodes %v, %d flows; want a1 a2 b1 and 9 flows", name, names, st.GetNumFlows())
		}
	}
	// Following through a: b's flow written now arrives, in order after a's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *agentapi.Flow, 10)
	go ra.Stream(ctx, &agentapi.GetFlowsRequest{Follow: true, SinceNs: 10}, func(resp *agentapi.GetFlowsResponse) error {
		if f := resp.GetFlow(); f != nil {
			got <- f
		}
		return nil
	})
	a1.write(10, agentapi.Verdict_FORWARDED)
	b1.write(11, agentapi.Verdict_DROPPED)
	for _, want := range []string{"a1", "b1"} {
		select {
		case f := <-got:
			if f.GetNode() != want {
				t.Fatalf("followed flow from %s, want %s", f.GetNode(), want)
			}
		case <-ctx.Done():
			t.Fatalf("following through relay a: no flow from %s", want)
		}
	}
	// An agent of a that is down is reported through b.
	a2.stop()
	var down []string
	for _, resp := range collect(t, rb, &agentapi.GetFlowsRequest{Number: 3}) {
		if st := resp.GetNodeStatus(); st != nil && !st.GetConnected() {
			down = append(down, st.GetNode())
		}
	}
	if !slices.Equal(down, []string{"a2"}) {
		t.Errorf("through relay b, nodes reported down: %v, want a2", down)
	}
}
