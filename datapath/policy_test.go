package datapath_test

import (
	"context"
	"testing"
	"time"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

func TestPolicy(t *testing.T) {
	testgate.Root(t)
	for _, mode := range []datapath.Mode{datapath.ModeTunnel, datapath.ModeNative} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			lab := datapathtest.New(t, mode, 2)
			n1, n2 := lab.Nodes[0], lab.Nodes[1]
			client, server := n1.AddPod("client", 1001), n2.AddPod("server", 1002)
			lab.Wire()
			client.ServeName(80)
			server.ServeName(80)
			mustReach(t, client, server)

			flows1, flows2 := flowReader(t, n1), flowReader(t, n2)

			// Server selected by an ingress policy without rules: deny.
			setPolicy(t, n2, server, datapath.Policy{IngressEnforced: true})
			mustNotReach(t, client, server)
			waitDrop(t, flows2, client, server, datapath.ReasonPolicyDenied, "to-endpoint")

			// Allow the client's identity on port 80: works, no reload.
			setPolicy(t, n2, server, datapath.Policy{IngressEnforced: true, Ingress: []datapath.Rule{
				{Identity: client.Identity, Port: 80, Proto: datapath.ProtoTCP},
			}})
			mustReach(t, client, server)

			// Node 1's host is the remote-node identity at the server:
			// not allowed by the rule above.
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if got, err := n1.Fetch(hctx, server.Addr(80)); err == nil {
				t.Fatalf("node 1's host reached the server (%q), want it denied", got)
			}
			cancel()
			readFlow(t, flows2, func(f datapath.Flow) bool {
				return f.Dropped && f.Reason == datapath.ReasonPolicyDenied && f.Source.Addr() == n1.UnderlayIP &&
					f.SourceIdentity == bpf.IdentityRemoteNode
			})

			// The server's own host is always allowed (Cilium's
			// allow-localhost), and is seen with the host identity.
			if got, err := n2.Fetch(ctx, server.Addr(80)); err != nil || got != server.Name {
				t.Fatalf("node 2's host -> its server under a deny-all-but-client policy: got %q, %v; want allowed", got, err)
			}
			readFlow(t, flows2, func(f datapath.Flow) bool {
				return !f.Dropped && f.Destination == server.Addr(80) && f.SourceIdentity == bpf.IdentityHost &&
					f.Point.String() == "to-endpoint"
			})

			// The client denies all ingress: its replies still pass, a new
			// flow from the server is dropped at the client.
			setPolicy(t, n1, client, datapath.Policy{IngressEnforced: true})
			mustReach(t, client, server)
			mustNotReach(t, server, client)
			waitDrop(t, flows1, server, client, datapath.ReasonPolicyDenied, "to-endpoint")

			// Egress at the source.
			setPolicy(t, n1, client, datapath.Policy{EgressEnforced: true})
			mustNotReach(t, client, server)
			waitDrop(t, flows1, client, server, datapath.ReasonPolicyDenied, "from-endpoint")

			setPolicy(t, n1, client, datapath.Policy{})
			mustReach(t, client, server)

			// Idle flows are collected; the next connection opens a new one.
			if n, err := n2.DP.PruneConntrack(ctx, time.Hour); err != nil || n != 0 {
				t.Fatalf("prune of flows idle for an hour deleted %d, %v; want 0", n, err)
			}
			if n, err := n2.DP.PruneConntrack(ctx, -1); err != nil || n == 0 {
				t.Fatalf("prune of every flow deleted %d, %v; want some", n, err)
			}
			mustReach(t, client, server)

			metrics, err := n2.DP.Metrics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if metrics[datapath.ReasonPolicyDenied].Packets == 0 || metrics[datapath.ReasonForwarded].Packets == 0 {
				t.Fatalf("server node metrics %v: want policy-denied and forwarded packets counted", metrics)
			}
		})
	}
}

func setPolicy(t *testing.T, n *datapathtest.Node, p *datapathtest.Pod, pol datapath.Policy) {
	t.Helper()
	if err := n.DP.SetPolicy(context.Background(), p.ID, pol); err != nil {
		t.Fatal(err)
	}
}

func mustReach(t *testing.T, from, to *datapathtest.Pod) {
	t.Helper()
	got, err := from.Fetch(context.Background(), to.Addr(80))
	if err != nil || got != to.Name {
		t.Fatalf("%s -> %s: got %q, %v; want %q", from.Name, to.Name, got, err, to.Name)
	}
}

func mustNotReach(t *testing.T, from, to *datapathtest.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got, err := from.Fetch(ctx, to.Addr(80)); err == nil {
		t.Fatalf("%s -> %s connected (got %q), want it denied", from.Name, to.Name, got)
	}
}

func flowReader(t *testing.T, n *datapathtest.Node) *datapath.FlowReader {
	t.Helper()
	r, err := n.DP.Flows()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitDrop reads flows until a drop from -> to with reason at point, and
// checks its source identity.
func waitDrop(t *testing.T, r *datapath.FlowReader, from, to *datapathtest.Pod, reason datapath.Reason, point string) {
	t.Helper()
	f := readFlow(t, r, func(f datapath.Flow) bool {
		return f.Dropped && f.Reason == reason && f.Source.Addr() == from.IP && f.Destination.Addr() == to.IP && f.Point.String() == point
	})
	if f.SourceIdentity != from.Identity {
		t.Fatalf("drop %v: source identity %d, want %d", f, f.SourceIdentity, from.Identity)
	}
}
