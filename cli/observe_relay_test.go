package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/relay"
)

// serveTLS serves obs on loopback with mutual TLS until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config, obs agentapi.ObserverServer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- flow.Serve(ctx, l, cfg, obs) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// weft observe --relay reads two agents' flows through a real relay, over
// mutual TLS, merged in time order.
func TestObserveThroughRelay(t *testing.T) {
	dir := shortTempDir(t)
	ca, err := clustermesh.NewCA("cli-test")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, server bool) tls.Certificate {
		c, k, err := ca.Issue(cn, server, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := clustermesh.WritePair(dir, cn, c, k); err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	if err := clustermesh.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	server := &tls.Config{Certificates: []tls.Certificate{issue("server", true)}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client := &tls.Config{Certificates: []tls.Certificate{issue("relay", false)}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	issue("user", false)

	flows := observedFlows()
	cfg := relay.DefaultConfig()
	cfg.TLS = client
	for _, node := range []string{"c1-n1", "c1-n2"} {
		ring := flow.NewRing(16)
		for _, f := range flows {
			if f.GetNode() == node {
				ring.Write(f)
			}
		}
		cfg.Peers = append(cfg.Peers, relay.Peer{Node: node, Address: serveTLS(t, server, flow.NewObserver(ring, node))})
	}
	r, err := relay.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	addr := serveTLS(t, server, r)

	res := runCLI(t, t.TempDir(), nil, "observe", "--all", "--print-node-name", "--relay", addr,
		"--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "user.crt"), "--tls-key", filepath.Join(dir, "user.key"))
	if res.err != nil {
		t.Fatalf("weft observe --relay: %v\n%s", res.err, res.stderr)
	}
	var nodes []string
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		_, rest, _ := strings.Cut(line, " [")
		node, _, _ := strings.Cut(rest, "]")
		nodes = append(nodes, node)
	}
	// observedFlows alternate nodes in time: n2, n2, n1, n1.
	if got := strings.Join(nodes, " "); got != "c1-n2 c1-n2 c1-n1 c1-n1" {
		t.Errorf("flows through the relay came from %q, want c1-n2 c1-n2 c1-n1 c1-n1 (time order)\n%s", got, res.stdout)
	}
}
