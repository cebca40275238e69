package flow

import (
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
)

type ipTable map[netip.Addr]Endpoint

func (t ipTable) LookupIP(ip netip.Addr) (Endpoint, bool) { e, ok := t[ip]; return e, ok }

type labelTable map[uint32][]string

func (t labelTable) IdentityLabels(id uint32) ([]string, bool) { l, ok := t[id]; return l, ok }

type policyNames map[uint16]string // by destination port

func (p policyNames) PolicyOf(dir datapath.Direction, _, _ uint32, port uint16, _ uint8) string {
	if dir != datapath.Ingress {
		return "egress?"
	}
	return p[port]
}

type frontends map[netip.AddrPort]Service

func (f frontends) ServiceOfFrontend(ap netip.AddrPort, _ uint8) (Service, bool) {
	s, ok := f[ap]
	return s, ok
}

func TestClockTurnsMonotonicIntoWall(t *testing.T) {
	wall := time.Date(2026, 12, 18, 14, 7, 37, 0, time.UTC)
	mono := 5000 * time.Second
	c := &Clock{mono: func() time.Duration { return mono }, now: func() time.Time { return wall }, recalibrate: time.Minute}
	if got := c.Wall(mono - 200*time.Millisecond); !got.Equal(wall.Add(-200 * time.Millisecond)) {
		t.Errorf("Wall = %v, want %v", got, wall.Add(-200*time.Millisecond))
	}
	// The wall clock is stepped by 1 h: the next measurement follows it.
	wall, mono = wall.Add(time.Hour+2*time.Minute), mono+2*time.Minute
	if got := c.Wall(mono); !got.Equal(wall) {
		t.Errorf("after a step, Wall = %v, want %v", got, wall)
	}
}

func TestEnrichNamesPodsServiceAndVerdict(t *testing.T) {
	client, web := netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.1.1.7")
	e := &Enricher{
		Node: "c1-n2", Cluster: "c1",
		Endpoints: ipTable{
			client: {Identity: 300, Namespace: "dev", Pod: "client-1", Node: "c1-n1"},
			web:    {Identity: 301, Namespace: "dev", Pod: "web-1", Node: "c1-n2"},
		},
		Identities: labelTable{301: {"k8s:app=web", ClusterLabel + "=c1"}},
		Policies:   policyNames{8080: "default deny"},
		Services: frontends{netip.MustParseAddrPort("10.96.0.10:80"): {Namespace: "dev", Name: "web",
			Frontend: netip.MustParseAddrPort("10.96.0.10:80")}},
	}
	lbFlow := datapath.Flow{
		Source: netip.AddrPortFrom(client, 44805), Destination: netip.AddrPortFrom(web, 8080), Proto: ProtoTCP,
		DestinationIdentity: 301, Dropped: true, Reason: datapath.ReasonPolicyDenied, Point: 1, // to-endpoint
		TCPFlags: TCPSyn, Frontend: netip.MustParseAddrPort("10.96.0.10:80"), ServiceID: 7,
	}
	got := e.Enrich(lbFlow)
	want := &agentapi.Flow{
		Node: "c1-n2", Cluster: "c1", ObservationPoint: "to-endpoint", Verdict: agentapi.Verdict_DROPPED,
		DropReasonCode: uint32(datapath.ReasonPolicyDenied), DropReason: "policy denied", Protocol: "TCP", ProtocolNumber: 6,
		Direction: agentapi.Direction_INGRESS, TcpFlags: TCPSyn,
		Source: &agentapi.FlowEndpoint{Ip: "10.1.0.5", Port: 44805, Identity: 300, Namespace: "dev", PodName: "client-1", Node: "c1-n1"},
		Destination: &agentapi.FlowEndpoint{Ip: "10.1.1.7", Port: 8080, Identity: 301, Namespace: "dev", PodName: "web-1", Node: "c1-n2",
			Labels: []string{"k8s:app=web", ClusterLabel + "=c1"}, Cluster: "c1"},
		DestinationService: &agentapi.FlowService{Namespace: "dev", Name: "web", Frontend: "10.96.0.10:80"},
		Policy:             "default deny",
	}
	if !proto.Equal(got, want) {
		t.Errorf("record =\n%v\nwant\n%v", got, want)
	}
	// The same packet straight to the backend, not load-balanced, names
	// no service; a frontend no longer programmed is still shown.
	direct := lbFlow
	direct.Frontend, direct.ServiceID = netip.AddrPort{}, 0
	if got := e.Enrich(direct); got.GetDestinationService() != nil {
		t.Errorf("a flow the datapath did not load-balance names service %v", got.GetDestinationService())
	}
	gone := lbFlow
	gone.Frontend = netip.MustParseAddrPort("10.96.0.11:80")
	if got := e.Enrich(gone).GetDestinationService(); got.GetFrontend() != "10.96.0.11:80" || got.GetName() != "" {
		t.Errorf("flow load-balanced for an unknown frontend: service %v, want only the frontend", got)
	}
}

// TestEnrichGlobalAddress: with global addressing, a pod of the observing
// cluster talking to another cluster's pod is named with its global
// address, the one its packets cross the mesh under, at either end of
// the flow; traffic within the cluster or to the world, or without the
// translation, is not.
func TestEnrichGlobalAddress(t *testing.T) {
	pod, peer, remote := netip.MustParseAddr("10.100.1.5"), netip.MustParseAddr("10.100.2.7"), netip.MustParseAddr("242.2.1.5")
	world := netip.MustParseAddr("192.0.2.1")
	ids := labelTable{300: {ClusterLabel + "=c1"}, 301: {ClusterLabel + "=c1"}, 2<<16 | 300: {ClusterLabel + "=c2"}, 2: {"reserved:world"}}
	on := &Enricher{Cluster: "c1", Identities: ids, GlobalCIDR: netip.MustParsePrefix("242.1.0.0/16"), PodCIDR: netip.MustParsePrefix("10.100.0.0/16"),
		Endpoints: ipTable{pod: {Identity: 300}, peer: {Identity: 301}, remote: {Identity: 2<<16 | 300}, world: {Identity: 2}}}
	off := *on
	off.GlobalCIDR = netip.Prefix{}
	for _, tc := range []struct {
		name     string
		e        *Enricher
		src, dst netip.Addr
		want     [2]string // source's and destination's global_ip
	}{
		{"to another cluster", on, pod, remote, [2]string{"242.1.1.5", ""}},
		{"from another cluster", on, remote, pod, [2]string{"", "242.1.1.5"}},
		{"within the cluster", on, pod, peer, [2]string{"", ""}},
		{"to the world", on, pod, world, [2]string{"", ""}},
		{"translation off", &off, pod, remote, [2]string{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.e.Enrich(datapath.Flow{Source: netip.AddrPortFrom(tc.src, 40000), Destination: netip.AddrPortFrom(tc.dst, 80), Proto: ProtoTCP})
			if got := [2]string{r.GetSource().GetGlobalIp(), r.GetDestination().GetGlobalIp()}; got != tc.want {
				t.Errorf("global_ip of source and destination %q, want %q", got, tc.want)
			}
		})
	}
}
