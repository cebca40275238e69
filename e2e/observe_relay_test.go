package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/relay"
	"github.com/weftnet/weft/testenv"
)

// flowsPort is where the agents of this test serve flows to the relay.
const flowsPort = "4244" // clustermesh.RelayAgentPort

// TestObserveThroughRelay: agents serve their flows on TCP with mutual
// TLS; a relay reading both nodes shows an allowed cross-node connection
// entering Weft at the client (from-endpoint on c1-n1), leaving its node
// (to-overlay), arriving at the server's node (from-overlay on c1-n2) and
// reaching the server (to-endpoint), in time order.
func TestObserveThroughRelay(t *testing.T) {
	dir := t.TempDir()
	ca, err := clustermesh.NewCA("e2e-relay")
	if err != nil {
		t.Fatal(err)
	}
	// One certificate for every agent, named weft-agent (the relay checks
	// that name, whatever the node's address).
	cert, key, err := ca.Issue("weft-agent", true, []string{"weft-agent"})
	if err != nil {
		t.Fatal(err)
	}
	if err := clustermesh.WritePair(dir, "agent", cert, key); err != nil {
		t.Fatal(err)
	}
	if err := clustermesh.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := testenv.DefaultSpec()
	spec.Nodes = 2
	spec.AgentArgs = []string{"--flows-listen-address", ":" + flowsPort,
		"--flows-tls-cert", filepath.Join(dir, "agent.crt"), "--flows-tls-key", filepath.Join(dir, "agent.key"),
		"--flows-tls-client-ca", filepath.Join(dir, "ca.crt")}
	e := up(t, "orel", spec)
	n1, n2 := e.Nodes[0], e.Nodes[1]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := e.AddPod(ctx, testenv.PodSpec{Name: "client-1", Node: n1.Name, Namespace: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	server, err := e.AddPod(ctx, testenv.PodSpec{Name: "web-1", Node: n2.Name, Namespace: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	listenIn(t, mustTarget(t, e, "pod/web-1").Do, server.Addr())
	// Records name pods from each node's ipcache: wait until each node
	// knows the other's pod.
	for node, ip := range map[string]string{n1.Name: server.IP, n2.Name: client.IP} {
		eventually(t, 30*time.Second, node+" knows "+ip, func() error {
			if out := weftCLI(t, e, node, "", "ipcache", "list"); !strings.Contains(out, ip+"/32") {
				return fmt.Errorf("no %s in\n%s", ip, out)
			}
			return nil
		})
	}

	// The relay runs in this process and reaches the agents from node
	// c1-n1's namespace, where the underlay is.
	rcert, rkey, err := ca.Issue("relay", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(rcert, rkey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := relay.DefaultConfig()
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "weft-agent", MinVersion: tls.VersionTLS13}
	cfg.Peers = []relay.Peer{{Node: n1.Name, Address: net.JoinHostPort(n1.IP, flowsPort)}, {Node: n2.Name, Address: net.JoinHostPort(n2.IP, flowsPort)}}
	from := mustTarget(t, e, "node/"+n1.Name)
	cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		return testenv.DialIn(ctx, from.NetNS, "tcp", addr)
	}
	r, err := relay.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	resps := make(chan *agentapi.GetFlowsResponse, 1000)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	// A little before now: the agents' wall-clock stamps may err by a
	// fraction of a millisecond (flow.Clock), the connection's flows are
	// told apart by pod and port anyway.
	since := time.Now().Add(-2 * time.Second).UnixNano()
	t.Logf("since %d", since)
	go func() {
		done <- r.Stream(sctx, &agentapi.GetFlowsRequest{Follow: true, SinceNs: since,
			Whitelist: []*agentapi.FlowFilter{{Pod: []string{"dev/web-1"}}}}, func(resp *agentapi.GetFlowsResponse) error {
			resps <- resp
			return nil
		})
	}()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the relay's stream did not end when cancelled")
		}
	}()

	dst := netip.AddrPortFrom(server.Addr(), portHTTP)
	if err := greet(e, client.Name, dst); err != nil {
		t.Fatalf("client -> web-1: %v", err)
	}

	// Both nodes' records of the connection, in time order.
	var seen []string
	var last int64
	deadline := time.After(30 * time.Second)
	for len(seen) < 4 {
		select {
		case resp := <-resps:
			t.Logf("relay sent: %v", resp)
			if st := resp.GetNodeStatus(); st != nil && !st.GetConnected() {
				t.Fatalf("relay reports %s unreachable: %s", st.GetNode(), st.GetError())
			}
			f := resp.GetFlow()
			if f == nil || f.GetDestination().GetPort() != portHTTP || f.GetSource().GetPodName() != "client-1" {
				continue
			}
			if f.GetTimeNs() < last {
				t.Errorf("flow at %s/%s came after a newer one: not in time order", f.GetNode(), f.GetObservationPoint())
			}
			last = f.GetTimeNs()
			got := f.GetNode() + " " + f.GetObservationPoint()
			if len(seen) == 0 || seen[len(seen)-1] != got {
				seen = append(seen, got)
			}
		case err := <-done:
			t.Fatalf("the relay's stream ended: %v", err)
		case <-deadline:
			st, err := r.ServerStatus(ctx, &agentapi.ServerStatusRequest{})
			t.Logf("relay status: %v %v", st, err)
			for _, n := range e.Nodes {
				t.Logf("weft observe on %s:\n%s", n.Name, weftCLI(t, e, n.Name, "", "observe", "--last", "10", "-o", "json"))
			}
			t.Fatalf("through the relay, saw only %v of the connection; want from-endpoint, to-overlay on %s, from-overlay, to-endpoint on %s", seen, n1.Name, n2.Name)
		}
	}
	want := []string{n1.Name + " from-endpoint", n1.Name + " to-overlay", n2.Name + " from-overlay", n2.Name + " to-endpoint"}
	if !slices.Equal(seen, want) {
		t.Errorf("through the relay: %v, want %v", seen, want)
	}
	st, err := r.ServerStatus(ctx, &agentapi.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.GetNodes() {
		if !n.GetConnected() {
			t.Errorf("relay status: %s not connected: %s", n.GetNode(), n.GetError())
		}
	}
	if len(st.GetNodes()) != 2 || st.GetSeenFlows() == 0 {
		t.Errorf("relay status %v: want 2 connected nodes and flows seen", st)
	}
}
