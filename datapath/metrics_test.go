package datapath_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

// deniedPackets reads weft_datapath_packets_total{reason="policy_denied",
// direction} the way Prometheus would: through a registry.
func deniedPackets(t *testing.T, reg *prometheus.Registry, direction string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "weft_datapath_packets_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == "policy_denied" && labels["direction"] == direction {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no weft_datapath_packets_total{reason=\"policy_denied\",direction=%q} exported", direction)
	return 0
}

// The exported drop counter rises by exactly the datagrams sent to a pod
// whose ingress policy denies them, in direction ingress; a client whose
// egress policy denies them counts them in direction egress.
func TestCollectorCountsEveryDeniedPacket(t *testing.T) {
	testgate.Root(t)
	lab := datapathtest.New(t, datapath.ModeTunnel, 1)
	n := lab.Nodes[0]
	client, server := n.AddPod("client", 1001), n.AddPod("server", 1002)
	lab.Wire()
	server.ServeName(80)
	mustReach(t, client, server)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(datapath.NewCollector(n.DP, slog.New(slog.DiscardHandler)))
	setPolicy(t, n, server, datapath.Policy{IngressEnforced: true})
	const sent = 7
	expectDenied(t, reg, client, server, sent, "ingress", "egress")
	setPolicy(t, n, server, datapath.Policy{})
	setPolicy(t, n, client, datapath.Policy{EgressEnforced: true})
	expectDenied(t, reg, client, server, sent, "egress", "ingress")
}

// expectDenied sends sent datagrams from client to server and checks that
// the denied counter of direction dir rises by exactly sent, other's not.
func expectDenied(t *testing.T, reg *prometheus.Registry, client, server *datapathtest.Pod, sent int, dir, other string) {
	t.Helper()
	before, otherBefore := deniedPackets(t, reg, dir), deniedPackets(t, reg, other)
	err := datapathtest.InNS(client.NS, func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server.Addr(9)))
		if err != nil {
			return err
		}
		defer c.Close()
		for range sent {
			if _, err := c.Write([]byte("weft")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from the client: %v", err)
	}
	var got float64
	err = datapathtest.Eventually(context.Background(), 10*time.Second, func(context.Context) error {
		if got = deniedPackets(t, reg, dir) - before; got < float64(sent) {
			return fmt.Errorf("%v denied packets counted so far", got)
		}
		return nil
	})
	if err != nil || got != float64(sent) {
		t.Fatalf("policy-denied %s packets rose by %v after %d datagrams to a denied port, want exactly %d (%v)", dir, got, sent, sent, err)
	}
	if rose := deniedPackets(t, reg, other) - otherBefore; rose != 0 {
		t.Fatalf("policy-denied %s packets rose by %v, want 0: the drops were %s", other, rose, dir)
	}
}

// A flow event of TCP carries the packet's flags: a denied connection
// attempt is a SYN, an allowed one's first packet too.
func TestFlowEventsCarryTCPFlags(t *testing.T) {
	testgate.Root(t)
	lab := datapathtest.New(t, datapath.ModeTunnel, 1)
	n := lab.Nodes[0]
	client, server := n.AddPod("client", 1001), n.AddPod("server", 1002)
	lab.Wire()
	server.ServeName(80)
	flows := flowReader(t, n)
	mustReach(t, client, server)
	const syn = 0x02
	readFlow(t, flows, func(f datapath.Flow) bool {
		return !f.Dropped && f.Destination == server.Addr(80) && f.Point.String() == "to-endpoint" && f.TCPFlags == syn
	})
	setPolicy(t, n, server, datapath.Policy{IngressEnforced: true})
	mustNotReach(t, client, server)
	readFlow(t, flows, func(f datapath.Flow) bool {
		return f.Dropped && f.Reason == datapath.ReasonPolicyDenied && f.Destination == server.Addr(80) && f.TCPFlags == syn
	})
}
